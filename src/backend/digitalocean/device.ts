import { readFile, realpath, stat } from "node:fs/promises";
import { basename } from "node:path";
import { FailedPrecondition, NotFound } from "../../errors.js";
import { sleep } from "./api/sleep.js";

const POLL_MS = 50;

export interface DeviceWait {
  /** How long a link may take to appear after the attach (udev runs after the API said "completed"). */
  readonly timeoutMs: number;
  /** --validate-attachment: also require the kernel to report the device attached. */
  readonly validate: boolean;
}

/**
 * Wait, briefly and within the caller's deadline, until `link` resolves to a
 * block device (and, with `validate`, one the kernel reports attached).
 */
export async function waitForDevice(link: string, volumeId: string, wait: DeviceWait, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + wait.timeoutMs;
  let problem = "";
  for (;;) {
    problem = await deviceProblem(link, wait.validate);
    if (problem === "") return;
    if (Date.now() >= deadline) break;
    await sleep(POLL_MS, signal, `waiting for ${link} of volume ${volumeId} to appear`);
  }
  if (problem.startsWith("missing")) {
    throw NotFound(
      "device %s of volume %s did not appear within %d s: is the volume attached to this droplet?",
      link,
      volumeId,
      Math.round(wait.timeoutMs / 1000),
    );
  }
  throw FailedPrecondition("device %s of volume %s is not ready: %s", link, volumeId, problem);
}

/** "" when the device is usable, otherwise why not. */
async function deviceProblem(link: string, validate: boolean): Promise<string> {
  let info;
  try {
    info = await stat(link);
  } catch {
    return "missing";
  }
  if (!info.isBlockDevice()) return `${link} is not a block device`;
  if (!validate) return "";
  return attachmentProblem(link);
}

/**
 * The Go driver's --validate-attachment check: the device's SCSI state in
 * sysfs must be "running". A loop device (the simulator's stand-in for a
 * volume) has no SCSI state; it counts as attached while it has a backing file.
 */
async function attachmentProblem(link: string): Promise<string> {
  const name = basename(await realpath(link));
  try {
    const state = (await readFile(`/sys/class/block/${name}/device/state`, "utf8")).trim();
    return state === "running" ? "" : `its state is ${JSON.stringify(state)}, not "running"`;
  } catch {
    // no SCSI state: a loop device?
  }
  try {
    await readFile(`/sys/block/${name}/loop/backing_file`, "utf8");
    return "";
  } catch {
    return `cannot read the attachment state of ${name} from /sys/class/block/${name}/device/state`;
  }
}
