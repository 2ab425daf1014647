/**
 * Named points between the steps of an operation where the crash-safety tests
 * kill the process (SIGKILL, as `kill -9` would), to prove that a restart
 * reconciles whatever state the steps left.
 *
 * Only the test suite sets DO_CSI_TEST_CRASH_AT, in the environment of a driver
 * process it spawned; when unset (always, in production) a crash point does
 * nothing and changes no behaviour.
 */
export type CrashPoint =
  | "volume-create:recorded"
  | "volume-create:written"
  | "volume-create:renamed"
  | "volume-create:ready"
  | "volume-delete:marked"
  | "volume-delete:unlinked"
  | "volume-expand:grown"
  | "volume-modify:allocated"
  | "volume-modify:recorded"
  | "snapshot-create:recorded"
  | "snapshot-create:frozen"
  | "snapshot-create:written"
  | "snapshot-create:renamed"
  | "snapshot-create:ready"
  | "snapshot-delete:marked"
  | "group-snapshot-create:recorded"
  | "group-snapshot-create:frozen"
  | "group-snapshot-create:written"
  | "group-snapshot-delete:marked"
  | "snapshot-delete:unlinked";

export function crashPoint(point: CrashPoint): void {
  // Read at each point, not when the module loads: a start-up snapshot would keep the builder's environment.
  if (process.env.DO_CSI_TEST_CRASH_AT === point) process.kill(process.pid, "SIGKILL");
}
