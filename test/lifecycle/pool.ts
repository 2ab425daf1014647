/**
 * Run `work` over `items` with at most `workers` at a time, as a sidecar's
 * worker threads do. Every item is attempted; the failures are returned.
 */
export async function runPool<T, R>(
  items: readonly T[],
  workers: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<{ results: (R | undefined)[]; errors: { index: number; error: unknown }[] }> {
  const results: (R | undefined)[] = new Array<R | undefined>(items.length).fill(undefined);
  const errors: { index: number; error: unknown }[] = [];
  let next = 0;
  async function worker(): Promise<void> {
    for (;;) {
      const index = next++;
      if (index >= items.length) return;
      try {
        results[index] = await work(items[index] as T, index);
      } catch (error) {
        errors.push({ index, error });
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(workers, items.length) }, () => worker()));
  return { results, errors };
}

/** Throw one error describing every failure of a pool run. */
export function throwIfFailed(what: string, errors: readonly { index: number; error: unknown }[]): void {
  if (errors.length === 0) return;
  const lines = errors.slice(0, 10).map(({ index, error }) => `  #${index}: ${error instanceof Error ? error.message : String(error)}`);
  throw new Error(`${what}: ${errors.length} failed\n${lines.join("\n")}${errors.length > 10 ? "\n  ..." : ""}`);
}
