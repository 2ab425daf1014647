import { Unavailable, Internal } from "../../../csi/errors.js";
import type { Logger } from "../../../log/logger.js";
import { NO_METRICS, type DriverMetrics } from "../../../util/metrics.js";
import { abortedError, DoApiError } from "./errors.js";
import { RateLimiter } from "./rate-limiter.js";
import { jitter, sleep } from "./sleep.js";

export interface TransportOptions {
  /** API base URL ending in "/", e.g. https://api.digitalocean.com/ */
  readonly baseUrl: string;
  /** Bearer token; never logged. */
  readonly token: string;
  readonly userAgent: string;
  /** Client-side requests per second shared by every call; 0 for none. */
  readonly rateLimit: number;
  readonly log: Logger;
  /** Bound of one HTTP attempt, besides the caller's signal. */
  readonly attemptTimeoutMs?: number;
  /** Retries after a 5xx answer or a connection error. */
  readonly maxRetries?: number;
  /** Retries after 429 answers. */
  readonly max429Retries?: number;
  /** First back-off after a 5xx or a connection error; doubles per retry, with jitter. */
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
  /** Requests by route and status, retries and 429 waits are reported here. */
  readonly metrics?: DriverMetrics;
}

export interface ApiRequest {
  readonly method: "GET" | "POST" | "DELETE" | "PUT";
  /** Relative to the base URL, e.g. "v2/volumes". */
  readonly path: string;
  /** Route template for messages and logs, e.g. "GET /v2/volumes/{id}". */
  readonly route: string;
  readonly query?: Readonly<Record<string, string | number | undefined>>;
  readonly body?: unknown;
  readonly signal: AbortSignal;
}

export interface ApiResponse {
  readonly status: number;
  readonly headers: Headers;
  /** Parsed JSON, or undefined for an empty body (204). */
  readonly body: unknown;
}

const DEFAULTS = {
  attemptTimeoutMs: 30_000,
  maxRetries: 5,
  max429Retries: 10,
  backoffBaseMs: 100,
  backoffMaxMs: 5_000,
  metrics: NO_METRICS,
};

/** Shortest wait after a 429 whose headers say "now" (or nothing). */
const MIN_RATE_LIMIT_WAIT_MS = 50;

/**
 * HTTP to the DigitalOcean API: bearer token, User-Agent, JSON, the shared
 * client-side rate limit, waiting out 429s (`Retry-After` / `ratelimit-reset`),
 * and retries with exponential back-off and jitter on 5xx answers and
 * connection errors. Every wait ends when the caller's signal aborts. Error
 * answers become DoApiError (a CSI status error); retries that run out become
 * UNAVAILABLE.
 */
export class Transport {
  readonly #options: Required<TransportOptions>;
  readonly #limiter: RateLimiter;
  #lastAnsweredAt = 0;

  constructor(options: TransportOptions) {
    this.#options = { ...DEFAULTS, ...options };
    this.#limiter = new RateLimiter(options.rateLimit);
  }

  /** When the API last answered a request with something other than a server or credentials error (epoch ms, 0 if never). */
  get lastAnsweredAt(): number {
    return this.#lastAnsweredAt;
  }

  async request(req: ApiRequest): Promise<ApiResponse> {
    const o = this.#options;
    const url = new URL(req.path, o.baseUrl);
    for (const [key, value] of Object.entries(req.query ?? {})) {
      if (value !== undefined && value !== "") url.searchParams.set(key, String(value));
    }
    const headers: Record<string, string> = {
      authorization: `Bearer ${o.token}`,
      "user-agent": o.userAgent,
      accept: "application/json",
    };
    if (req.body !== undefined) headers["content-type"] = "application/json";
    const payload = req.body === undefined ? undefined : JSON.stringify(req.body);

    let failures = 0;
    let limited = 0;
    for (;;) {
      await this.#limiter.acquire(req.signal);
      const started = performance.now();
      let status: number;
      let responseHeaders: Headers;
      let text: string;
      try {
        const res = await fetch(url, {
          method: req.method,
          headers,
          body: payload,
          signal: AbortSignal.any([req.signal, AbortSignal.timeout(o.attemptTimeoutMs)]),
        });
        status = res.status;
        responseHeaders = res.headers;
        text = await res.text();
      } catch (err) {
        const seconds = (performance.now() - started) / 1000;
        if (req.signal.aborted) {
          o.metrics.apiRequest(req.route, "cancelled", seconds);
          throw abortedError(req.signal, `calling ${req.route}`);
        }
        o.metrics.apiRequest(req.route, "error", seconds);
        failures++;
        const reason = describeFailure(err);
        o.log.debug({ route: req.route, attempt: failures, error: reason }, "DigitalOcean API request failed");
        if (failures > o.maxRetries) {
          throw Unavailable("DigitalOcean API %s: %s (gave up after %d attempts)", req.route, reason, failures);
        }
        o.metrics.apiRetry(req.route, "connection_error");
        await sleep(this.#backoff(failures), req.signal, `retrying ${req.route} after: ${reason}`);
        continue;
      }
      const seconds = (performance.now() - started) / 1000;
      o.metrics.apiRequest(req.route, String(status), seconds);
      o.log.debug({ route: req.route, status, durationMs: Math.round(seconds * 1000) }, "DigitalOcean API request");

      if (status === 429) {
        limited++;
        const waitMs = rateLimitWait(responseHeaders);
        this.#limiter.pauseUntil(Date.now() + waitMs);
        if (limited > o.max429Retries) {
          throw Unavailable("DigitalOcean API %s: rate limit exceeded (429) %d times in a row; giving up", req.route, limited);
        }
        o.metrics.apiRateLimited(req.route, waitMs / 1000);
        continue; // acquire() waits out the pause
      }
      if (status >= 500) {
        failures++;
        if (failures > o.maxRetries) {
          const { message } = parseError(text, status);
          throw Unavailable("DigitalOcean API %s: %d %s (gave up after %d attempts)", req.route, status, message, failures);
        }
        o.metrics.apiRetry(req.route, "server_error");
        await sleep(this.#backoff(failures), req.signal, `retrying ${req.route} after a ${status} answer`);
        continue;
      }
      if (status !== 401 && status !== 403) this.#lastAnsweredAt = Date.now();
      if (status >= 400) {
        const { id, message } = parseError(text, status);
        throw new DoApiError(status, id, message, req.route);
      }
      let body: unknown;
      if (text !== "") {
        try {
          body = JSON.parse(text);
        } catch {
          throw Internal("DigitalOcean API %s: answer %d is not JSON: %s", req.route, status, text.slice(0, 200));
        }
      }
      return { status, headers: responseHeaders, body };
    }
  }

  #backoff(failures: number): number {
    const o = this.#options;
    return jitter(Math.min(o.backoffMaxMs, o.backoffBaseMs * 2 ** (failures - 1)));
  }
}

/** How long a 429 answer asks us to wait: Retry-After (seconds or a date), else until ratelimit-reset (epoch seconds). */
function rateLimitWait(headers: Headers): number {
  const now = Date.now();
  const retryAfter = headers.get("retry-after");
  let wait: number | undefined;
  if (retryAfter !== null && retryAfter.trim() !== "") {
    const seconds = Number(retryAfter);
    if (Number.isFinite(seconds)) wait = seconds * 1000;
    else {
      const date = Date.parse(retryAfter);
      if (Number.isFinite(date)) wait = date - now;
    }
  }
  if (wait === undefined) {
    const reset = Number(headers.get("ratelimit-reset") ?? "");
    if (Number.isFinite(reset) && reset > 0) wait = reset * 1000 - now;
  }
  return Math.max(MIN_RATE_LIMIT_WAIT_MS, jitter(wait ?? 1000, 0.1));
}

function parseError(text: string, status: number): { id: string; message: string } {
  try {
    const body = JSON.parse(text) as unknown;
    if (typeof body === "object" && body !== null) {
      const { id, message } = body as { id?: unknown; message?: unknown };
      if (typeof message === "string") return { id: typeof id === "string" ? id : String(status), message };
    }
  } catch {
    // not JSON
  }
  return { id: String(status), message: text.trim().slice(0, 200) || `HTTP ${status}` };
}

function describeFailure(err: unknown): string {
  if (err instanceof Error) {
    if (err.name === "TimeoutError") return "no answer within the attempt timeout";
    const cause: unknown = err.cause;
    if (cause instanceof Error) {
      const code = (cause as { code?: unknown }).code;
      return `${err.message}: ${typeof code === "string" ? `${code} ` : ""}${cause.message}`;
    }
    return err.message;
  }
  return String(err);
}
