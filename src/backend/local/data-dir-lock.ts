import { spawn } from "../../util/spawn.js";
import { constants } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { findExecutable } from "../../util/executables.js";
import { lockFilePath } from "./layout.js";

/** Exit code flock(1) uses for "held by someone else" (we choose it, to tell it from other failures). */
const CONFLICT_EXIT_CODE = 75;
const FLOCK_TIMEOUT_MS = 10_000;

/** Another live process holds the data dir. */
export class DataDirInUseError extends Error {
  constructor(
    readonly dataDir: string,
    readonly holderPid: number | undefined,
  ) {
    super(
      `data dir ${dataDir} is in use by another do-csi-plugin controller${holderPid ? ` (pid ${holderPid})` : ""}: ` +
        `two processes must never share one; stop the other one or give this one another --data-dir`,
    );
    this.name = "DataDirInUseError";
  }
}

/**
 * flock(2) the open file description behind `handle`, without blocking.
 *
 * Node has no flock, so flock(1) does it on a descriptor we hand it as its
 * fd 3: the lock belongs to the open file description we share, so it stays
 * ours after flock(1) exits and the kernel drops it when this process closes
 * the file or dies, even by SIGKILL: a stale lock cannot exist. (This is why
 * util/exec.run, which passes no extra descriptors, is not used here.)
 */
async function tryFlock(handle: FileHandle, path: string): Promise<"locked" | "held-elsewhere"> {
  const flock = await findExecutable("flock");
  if (!flock) throw new Error("flock (util-linux) is not installed; the local backend needs it to lock its data dir");
  return new Promise((resolve, reject) => {
    const child = spawn(flock, ["--exclusive", "--nonblock", "--conflict-exit-code", String(CONFLICT_EXIT_CODE), "3"], {
      stdio: ["ignore", "ignore", "pipe", handle.fd],
      timeout: FLOCK_TIMEOUT_MS,
      killSignal: "SIGKILL",
    });
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve("locked");
      else if (code === CONFLICT_EXIT_CODE) resolve("held-elsewhere");
      else reject(new Error(`flock on ${path} failed (exit ${code ?? "signal"}): ${stderr.trim()}`));
    });
  });
}

/**
 * Exclusive ownership of a data dir by one process, held for its lifetime:
 * <data-dir>/.lock is flock'ed (and holds the owner's pid, for messages).
 */
export class DataDirLock {
  readonly #handle: FileHandle;
  #released = false;

  private constructor(handle: FileHandle) {
    this.#handle = handle;
  }

  static async acquire(dataDir: string): Promise<DataDirLock> {
    const path = lockFilePath(dataDir);
    const handle = await open(path, constants.O_RDWR | constants.O_CREAT, 0o644);
    try {
      if ((await tryFlock(handle, path)) === "held-elsewhere") {
        const text = (await handle.readFile("utf8")).trim();
        const pid = /^\d+$/.test(text) ? Number(text) : undefined;
        throw new DataDirInUseError(dataDir, pid);
      }
      await handle.truncate(0);
      await handle.write(`${process.pid}\n`, 0, "utf8");
      await handle.sync();
    } catch (err) {
      await handle.close();
      throw err;
    }
    return new DataDirLock(handle);
  }

  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    await this.#handle.close();
  }
}
