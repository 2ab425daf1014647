import { open } from "node:fs/promises";
import { run } from "../util/exec.js";
import { blockDeviceSize } from "./loop.js";

/**
 * What a block device holds, as far as formatting is concerned. Only "blank"
 * may ever be formatted; "filesystem" may be mounted; everything else is
 * somebody's data in a form this driver does not manage.
 */
export type DeviceContent =
  | { readonly kind: "blank" }
  | { readonly kind: "filesystem"; readonly fsType: string; readonly uuid: string }
  | { readonly kind: "partitioned"; readonly description: string }
  | { readonly kind: "encrypted"; readonly description: string }
  | { readonly kind: "volume-member"; readonly description: string }
  | { readonly kind: "unknown"; readonly description: string };

/** How much of each end of the device must read as zeros for it to count as blank. */
const BLANK_CHECK_BYTES = 1024 * 1024;

/** Parse `blkid -o export` output (KEY=value lines). */
export function parseBlkidExport(text: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const line of text.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) values.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return values;
}

/** Classify blkid's low-level probe result; undefined when it found nothing. */
export function classifySignatures(values: ReadonlyMap<string, string>): DeviceContent | undefined {
  const ptType = values.get("PTTYPE");
  if (ptType) return { kind: "partitioned", description: `a ${ptType} partition table` };
  const type = values.get("TYPE");
  if (!type) return undefined;
  const usage = values.get("USAGE") ?? "";
  if (usage === "crypto" || type.startsWith("crypto_")) return { kind: "encrypted", description: `an encrypted container (${type})` };
  if (usage === "raid" || type === "LVM2_member" || type.endsWith("_member")) {
    return {
      kind: "volume-member",
      description: type === "LVM2_member" ? "an LVM physical volume (LVM2_member)" : `a RAID/volume-manager member (${type})`,
    };
  }
  if (usage === "filesystem") return { kind: "filesystem", fsType: type, uuid: values.get("UUID") ?? "" };
  return { kind: "unknown", description: `a ${type} signature` };
}

/**
 * Look at a device before deciding to format it. blkid's low-level probe
 * (`-p`, bypassing its cache) finds filesystems, partition tables, LUKS, LVM,
 * RAID and swap signatures; a device where it finds nothing must also read as
 * zeros at both ends (where partition tables, boot sectors and most metadata
 * live) to count as blank, so data without a known signature is never
 * formatted over.
 */
export async function probeDevice(device: string, signal?: AbortSignal): Promise<DeviceContent> {
  // exit 2: nothing found; 8: ambivalent result (several signatures).
  const result = await run("blkid", ["-p", "-o", "export", "--", device], { signal, timeoutMs: 60_000, okExitCodes: [2, 8] });
  if (result.exitCode === 8) {
    return {
      kind: "unknown",
      description: `several conflicting signatures (${result.stderr.trim() || "blkid -p reports an ambivalent result"})`,
    };
  }
  if (result.exitCode === 0) {
    const found = classifySignatures(parseBlkidExport(result.stdout));
    if (found) return found;
  }
  signal?.throwIfAborted();
  return (await readsAsZeros(device)) ? { kind: "blank" } : { kind: "unknown", description: "data without a recognised signature" };
}

/** True when the first and last BLANK_CHECK_BYTES of the device are all zero. */
export async function readsAsZeros(device: string): Promise<boolean> {
  const size = await blockDeviceSize(device);
  const length = Math.min(BLANK_CHECK_BYTES, size);
  const offsets = size > length ? [0, size - length] : [0];
  const handle = await open(device, "r");
  try {
    const buffer = Buffer.alloc(length);
    const zeros = Buffer.alloc(length);
    for (const offset of offsets) {
      const { bytesRead } = await handle.read(buffer, 0, length, offset);
      if (!buffer.subarray(0, bytesRead).equals(zeros.subarray(0, bytesRead))) return false;
    }
    return true;
  } finally {
    await handle.close();
  }
}
