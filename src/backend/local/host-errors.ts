import { OutOfRange, ResourceExhausted } from "../../errors.js";

function errnoOf(err: unknown): string | undefined {
  return err instanceof Error && "code" in err && typeof err.code === "string" ? err.code : undefined;
}

/** Host errors a client can act on, as status errors; anything else stays INTERNAL. */
export function clientVisible(err: unknown): unknown {
  const message = err instanceof Error ? err.message : String(err);
  if (errnoOf(err) === "ENOSPC" || /No space left on device/.test(message)) {
    return ResourceExhausted("the data dir's filesystem is full: %s", message);
  }
  if (errnoOf(err) === "EFBIG") return OutOfRange("the data dir's filesystem cannot hold a file this large: %s", message);
  return err;
}
