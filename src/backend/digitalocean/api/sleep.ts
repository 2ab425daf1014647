import { abortedError } from "./errors.js";

/** Wait `ms` milliseconds, or reject with the call's abort error as soon as the signal aborts. */
export function sleep(ms: number, signal: AbortSignal, doing: string): Promise<void> {
  if (signal.aborted) return Promise.reject(abortedError(signal, doing));
  if (ms <= 0) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortedError(signal, doing));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** `ms` spread by +/- `fraction` at random, so that many waiters do not retry in step. */
export function jitter(ms: number, fraction = 0.2): number {
  return Math.max(0, ms * (1 - fraction + Math.random() * 2 * fraction));
}
