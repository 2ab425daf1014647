import { describe, expect, it } from "vitest";
import {
  containingMount,
  isPathWithin,
  isReadOnlyFilesystem,
  isReadOnlyMount,
  mountAt,
  mountsAt,
  mountsOfDevice,
  parseMountInfo,
  propagationOf,
} from "../../src/mounter/mountinfo.js";

const TABLE = parseMountInfo(
  [
    "27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw",
    "24 27 0:6 / /dev rw,relatime shared:2 - devtmpfs udev rw,size=100k",
    "60 27 0:50 / /var/lib/kubelet rw,relatime master:7 - tmpfs tmpfs rw",
    "61 60 7:3 / /var/lib/kubelet/plugins/x/globalmount rw,relatime shared:30 - ext4 /dev/loop3 rw",
    "62 60 7:3 / /var/lib/kubelet/pods/p1/volumes/v/mount ro,nosuid,relatime shared:30 - ext4 /dev/loop3 ro,errors=remount-ro",
    "63 60 0:6 /loop4 /var/lib/kubelet/plugins/y/staging/vol-y rw,relatime shared:2 - devtmpfs udev rw",
    "64 60 0:6 /loop40 /var/lib/kubelet/other rw,relatime - devtmpfs udev rw",
    "65 27 0:51 / /mnt/with\\040space rw,relatime - tmpfs tmpfs rw",
    "66 65 0:52 / /mnt/with\\040space rw,relatime - tmpfs tmpfs rw",
  ].join("\n"),
);

describe("mountinfo helpers", () => {
  it("parses escaped mount points and finds the topmost mount at a path", () => {
    expect(mountsAt(TABLE, "/mnt/with space").map((m) => m.id)).toEqual([65, 66]);
    expect(mountAt(TABLE, "/mnt/with space")?.id).toBe(66);
  });

  it("compares paths component by component", () => {
    expect(isPathWithin("/a/b", "/a/b")).toBe(true);
    expect(isPathWithin("/a/b/c", "/a/b")).toBe(true);
    expect(isPathWithin("/a/bc", "/a/b")).toBe(false);
    expect(isPathWithin("/anything", "/")).toBe(true);
  });

  it("finds the mount that holds a path", () => {
    expect(containingMount(TABLE, "/var/lib/kubelet/pods/p1")?.mountPoint).toBe("/var/lib/kubelet");
    expect(containingMount(TABLE, "/var/lib/kubeletx")?.mountPoint).toBe("/");
    expect(containingMount(TABLE, "/mnt/with space/x")?.id).toBe(66);
  });

  it("finds every mount of a device: filesystems by number, device-node binds by their devtmpfs path", () => {
    expect(mountsOfDevice(TABLE, "7:3", "/dev/loop3").map((m) => m.id)).toEqual([61, 62]);
    expect(mountsOfDevice(TABLE, "7:4", "/dev/loop4").map((m) => m.id)).toEqual([63]);
    expect(mountsOfDevice(TABLE, "7:4", "loop4").map((m) => m.id)).toEqual([63]);
    expect(mountsOfDevice(TABLE, "7:9", "/dev/loop9")).toEqual([]);
  });

  it("reads propagation and read-only state", () => {
    const byId = (id: number) => TABLE.find((m) => m.id === id)!;
    expect(propagationOf(byId(27))).toBe("shared");
    expect(propagationOf(byId(60))).toBe("slave");
    expect(propagationOf(byId(65))).toBe("private");
    expect(isReadOnlyMount(byId(62))).toBe(true);
    expect(isReadOnlyFilesystem(byId(62))).toBe(true);
    expect(isReadOnlyMount(byId(61))).toBe(false);
    expect(isReadOnlyFilesystem(byId(61))).toBe(false);
  });
});
