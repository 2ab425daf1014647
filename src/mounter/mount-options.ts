/**
 * Mount flags as a CO passes them in a volume capability: validated, split into
 * single options, and sorted into per-mount flags (which a bind mount can
 * carry) and filesystem options (which only the staging mount can apply).
 */

/** Flags the kernel applies per mount point, so every bind mount of a volume can carry its own. */
const PER_MOUNT_FLAGS = new Set([
  "ro",
  "rw",
  "nosuid",
  "suid",
  "nodev",
  "dev",
  "noexec",
  "exec",
  "noatime",
  "atime",
  "nodiratime",
  "diratime",
  "relatime",
  "norelatime",
  "strictatime",
  "nostrictatime",
  "nosymfollow",
]);

/** Per-mount flags that /proc/self/mountinfo shows literally, so a repeated request can be compared with them. */
export const VISIBLE_MOUNT_FLAGS: ReadonlySet<string> = new Set(["nosuid", "nodev", "noexec", "noatime", "nodiratime"]);

/**
 * Options that would change what the operation does rather than how the
 * filesystem behaves: bind/move/remount, propagation changes, loop setup, and
 * util-linux extensions that run helpers or create directories.
 */
const FORBIDDEN = new Set([
  "bind",
  "rbind",
  "remount",
  "move",
  "shared",
  "rshared",
  "slave",
  "rslave",
  "private",
  "rprivate",
  "unbindable",
  "runbindable",
  "loop",
]);
const FORBIDDEN_PREFIXES = ["make-", "loop=", "offset=", "sizelimit=", "encryption=", "helper=", "x-mount.", "x-systemd."];

export class MountFlagError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MountFlagError";
  }
}

/** Split "a,b" entries into single options, keeping commas inside double quotes (SELinux contexts). */
export function splitMountFlags(flags: readonly string[]): string[] {
  const out: string[] = [];
  for (const flag of flags) {
    let current = "";
    let quoted = false;
    for (const ch of flag) {
      if (ch === '"') quoted = !quoted;
      if (ch === "," && !quoted) {
        out.push(current);
        current = "";
      } else {
        current += ch;
      }
    }
    out.push(current);
  }
  return out.map((f) => f.trim()).filter((f) => f !== "" && f !== "defaults");
}

/**
 * An option as an error may show it: its name, with any value elided, since
 * mount flags may carry credentials (CSI: they MUST NOT be leaked).
 */
function shownOption(option: string): string {
  const equals = option.indexOf("=");
  return JSON.stringify(equals === -1 ? option : `${option.slice(0, equals)}=…`);
}

/** The single options of `flags`, or a MountFlagError naming the first one that is not acceptable. */
export function validateMountFlags(flags: readonly string[]): string[] {
  const options = splitMountFlags(flags);
  for (const option of options) {
    if (/[\s\u0000-\u001f\u007f]/.test(option))
      throw new MountFlagError(`mount flag ${shownOption(option)} contains whitespace or control characters`);
    const name = option.toLowerCase();
    if (FORBIDDEN.has(name) || FORBIDDEN_PREFIXES.some((p) => name.startsWith(p))) {
      throw new MountFlagError(`mount flag ${shownOption(option)} is not allowed: the driver decides how volumes are mounted and bound`);
    }
  }
  return [...new Set(options)];
}

/** The per-mount flags among `options` (the ones a bind mount can apply). */
export function perMountFlags(options: readonly string[]): string[] {
  return options.filter((o) => PER_MOUNT_FLAGS.has(o));
}
