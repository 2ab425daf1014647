/**
 * Holds a fake backend's calls of one method until the test lets them go, so a
 * test can keep an operation in flight (for ABORTED and deadline rules) and
 * know the service has reached the backend.
 */
export class CallGate {
  readonly #waiting = new Set<() => void>();
  readonly #watchers: { readonly count: number; readonly resolve: () => void }[] = [];
  #entries = 0;
  #open = false;

  /** Resolves once `count` calls in all have arrived at the gate. */
  entered(count = 1): Promise<void> {
    if (this.#entries >= count) return Promise.resolve();
    return new Promise<void>((resolve) => this.#watchers.push({ count, resolve }));
  }

  /** How many calls are waiting now. */
  get waiting(): number {
    return this.#waiting.size;
  }

  /** Wait here until `release`, or reject with the signal's reason when the caller gives up. */
  pass(signal: AbortSignal): Promise<void> {
    if (this.#open) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const leave = () => {
        this.#waiting.delete(leave);
        signal.removeEventListener("abort", abandon);
        resolve();
      };
      const abandon = () => {
        this.#waiting.delete(leave);
        reject(signal.reason);
      };
      if (signal.aborted) {
        abandon();
        return;
      }
      signal.addEventListener("abort", abandon, { once: true });
      this.#waiting.add(leave);
      this.#entries += 1;
      for (const watcher of this.#watchers.filter((w) => w.count <= this.#entries)) {
        this.#watchers.splice(this.#watchers.indexOf(watcher), 1);
        watcher.resolve();
      }
    });
  }

  /** Let every waiting call (and every later one) through. */
  release(): void {
    this.#open = true;
    for (const leave of [...this.#waiting]) leave();
  }
}
