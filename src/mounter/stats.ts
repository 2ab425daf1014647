import { statfs } from "node:fs/promises";

export interface Usage {
  readonly total: bigint;
  readonly used: bigint;
  readonly available: bigint;
}

export interface FilesystemUsage {
  readonly bytes: Usage;
  readonly inodes: Usage;
}

/**
 * Bytes and inodes of the filesystem mounted at `path`, computed as df does:
 * used = total - free, available = what an unprivileged writer may still use.
 */
export async function filesystemUsage(path: string): Promise<FilesystemUsage> {
  const st = await statfs(path, { bigint: true });
  const clamp = (n: bigint): bigint => (n < 0n ? 0n : n);
  return {
    bytes: {
      total: st.blocks * st.bsize,
      used: clamp((st.blocks - st.bfree) * st.bsize),
      available: clamp(st.bavail * st.bsize),
    },
    inodes: {
      total: st.files,
      used: clamp(st.files - st.ffree),
      available: st.ffree,
    },
  };
}
