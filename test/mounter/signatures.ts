import { open } from "node:fs/promises";

/** Test fixtures: on-disk signatures that must stop the driver from formatting a device. */

async function writeAt(file: string, offset: number, data: Buffer): Promise<void> {
  const handle = await open(file, "r+");
  try {
    await handle.write(data, 0, data.length, offset);
  } finally {
    await handle.close();
  }
}

/** A DOS/MBR partition table with one Linux partition (what `sfdisk` writes for "2048,,L"). */
export async function writeMbrPartitionTable(file: string): Promise<void> {
  const entry = Buffer.alloc(16);
  entry[4] = 0x83; // Linux
  entry.writeUInt32LE(2048, 8); // first LBA
  entry.writeUInt32LE(4096, 12); // sectors
  await writeAt(file, 446, entry);
  await writeAt(file, 510, Buffer.from([0x55, 0xaa]));
}

/** LVM's label checksum: CRC-32 (reflected 0xEDB88320) seeded with 0xf597a6cf, no final xor. */
function lvmCrc(data: Buffer): number {
  let crc = 0xf597a6cf;
  for (const byte of data) {
    crc ^= byte;
    for (let i = 0; i < 8; i++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return crc >>> 0;
}

/** An LVM2 physical-volume label in sector 1 (what `pvcreate` writes first). */
export async function writeLvmLabel(file: string): Promise<void> {
  const sector = Buffer.alloc(512);
  sector.write("LABELONE", 0, "ascii");
  sector.writeBigUInt64LE(1n, 8);
  sector.writeUInt32LE(32, 20);
  sector.write("LVM2 001", 24, "ascii");
  sector.write("abcdefghijklmnopqrstuvwxyz012345", 32, "ascii");
  sector.writeBigUInt64LE(64n * 1024n * 1024n, 64);
  sector.writeUInt32LE(lvmCrc(sector.subarray(20)), 16);
  await writeAt(file, 512, sector);
}
