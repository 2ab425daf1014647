/**
 * Where log lines go: a file descriptor written synchronously, so the line that
 * explains a crash is out before the process ends, or a stream (tests, and the
 * pretty renderer).
 *
 * Standard error may be a non-blocking pipe whose reader is slow: a write then
 * fails with EAGAIN or writes part of the line. The rest is retried, sleeping
 * 1 ms between tries, for up to a second per line; a line that still cannot be
 * written is dropped, and until a write succeeds again later lines get one try
 * each, so a stalled log reader cannot stall the calls that log. A closed
 * standard error (EPIPE, EBADF) drops lines the same way and never throws.
 */
import { writeSync } from "node:fs";

export type LineSink = (line: string) => void;

const RETRY_FOR_MS = 1000;
/** What `Atomics.wait` sleeps on; made at the first retry (a start-up snapshot cannot hold a SharedArrayBuffer). */
let pause: Int32Array | undefined;

export function fdSink(fd: number): LineSink {
  let stalled = false;
  return (line) => {
    const whole = Buffer.from(line, "utf8");
    let rest = whole;
    let waitedMs = 0;
    while (rest.length > 0) {
      try {
        rest = rest.subarray(writeSync(fd, rest));
      } catch (err) {
        // A line begun is finished if it can be (the next must not run into it).
        const begun = rest.length < whole.length;
        if ((err as NodeJS.ErrnoException).code !== "EAGAIN" || (stalled && !begun) || waitedMs >= RETRY_FOR_MS) {
          stalled = true;
          return;
        }
        pause ??= new Int32Array(new SharedArrayBuffer(4));
        Atomics.wait(pause, 0, 0, 1);
        waitedMs += 1;
      }
    }
    stalled = false;
  };
}

export function streamSink(stream: NodeJS.WritableStream): LineSink {
  return (line) => {
    stream.write(line);
  };
}
