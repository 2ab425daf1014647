/** Byte counts as people read them, exact and rounded, for messages and logs. */

const UNITS = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];

/** "1073741824 bytes (1 GiB)": exact, and readable. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  if (unit === 0) return `${bytes} bytes`;
  const shown = Number.isInteger(value) ? String(value) : value.toFixed(2);
  return `${bytes} bytes (${shown} ${UNITS[unit]})`;
}
