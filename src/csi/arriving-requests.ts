/**
 * The requests a server is still receiving, each refused once it has taken
 * longer than the bound to arrive whole.
 *
 * One timer serves them all, due when the oldest request's time is up. Calls
 * arrive whole within a millisecond, and a timer of their own, set and
 * cleared for every call, cost more than the rest of this bookkeeping.
 * Requests join in arrival order,
 * so the oldest is the list's head; each request carries its own links, so
 * joining and leaving allocate nothing.
 */

/** What the list keeps on each request it holds. */
export interface ArrivingRequest {
  /** When the request started to arrive (epoch ms); undefined while it is not in the list. */
  arrivingSince: number | undefined;
  newerArriving: ArrivingRequest | undefined;
  olderArriving: ArrivingRequest | undefined;
  /** Its time is up (it has left the list already). */
  arrivalTimedOut(): void;
}

export class ArrivingRequests {
  readonly timeoutMs: number;
  #oldest: ArrivingRequest | undefined;
  #newest: ArrivingRequest | undefined;
  #timer: NodeJS.Timeout | undefined;
  #size = 0;

  constructor(timeoutMs: number) {
    this.timeoutMs = timeoutMs;
  }

  /** Requests in the list (for tests and diagnostics). */
  get size(): number {
    return this.#size;
  }

  /** `request` starts to arrive at `now` (epoch ms; no later than any request added before). */
  add(request: ArrivingRequest, now: number): void {
    if (request.arrivingSince !== undefined) return;
    request.arrivingSince = now;
    request.olderArriving = this.#newest;
    request.newerArriving = undefined;
    if (this.#newest === undefined) this.#oldest = request;
    else this.#newest.newerArriving = request;
    this.#newest = request;
    this.#size++;
    if (this.#timer === undefined) this.#arm(this.timeoutMs);
  }

  /** `request` arrived, was refused or is gone; nothing when it is not in the list. The timer is left to find the next oldest. */
  remove(request: ArrivingRequest): void {
    if (request.arrivingSince === undefined) return;
    const { olderArriving: older, newerArriving: newer } = request;
    if (older === undefined) this.#oldest = newer;
    else older.newerArriving = newer;
    if (newer === undefined) this.#newest = older;
    else newer.olderArriving = older;
    request.arrivingSince = undefined;
    request.olderArriving = undefined;
    request.newerArriving = undefined;
    this.#size--;
  }

  #arm(delayMs: number): void {
    this.#timer = setTimeout(() => this.#due(), delayMs);
    this.#timer.unref();
  }

  #due(): void {
    this.#timer = undefined;
    const now = Date.now();
    for (let oldest = this.#oldest; oldest !== undefined; oldest = this.#oldest) {
      const since = oldest.arrivingSince ?? now;
      if (now - since < this.timeoutMs) {
        // A clock set back makes `since` look newer than it is: never wait longer than the bound.
        this.#arm(Math.min(since + this.timeoutMs - now, this.timeoutMs));
        return;
      }
      this.remove(oldest);
      oldest.arrivalTimedOut();
    }
  }

  /** No timer left behind (server shutdown). The requests stay; their streams close with their connections. */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
