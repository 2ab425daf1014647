import { describe, expect, it } from "vitest";
import { MountFlagError, perMountFlags, splitMountFlags, validateMountFlags } from "../../src/mounter/mount-options.js";

describe("mount flags", () => {
  it("splits comma lists, keeps quoted commas, drops empties and 'defaults'", () => {
    expect(splitMountFlags(["noatime,nodev", " discard ", "", "defaults"])).toEqual(["noatime", "nodev", "discard"]);
    expect(splitMountFlags(['context="system_u:object_r:container_file_t:s0:c1,c2",ro'])).toEqual([
      'context="system_u:object_r:container_file_t:s0:c1,c2"',
      "ro",
    ]);
  });

  it("accepts filesystem and per-mount options, deduplicated", () => {
    expect(validateMountFlags(["noatime", "data=ordered", "noatime", "errors=remount-ro", "nouuid"])).toEqual([
      "noatime",
      "data=ordered",
      "errors=remount-ro",
      "nouuid",
    ]);
  });

  it.each([
    "bind",
    "rbind",
    "remount",
    "move",
    "make-rshared",
    "shared",
    "rprivate",
    "loop",
    "loop=/dev/loop1",
    "offset=4096",
    "helper=foo",
    "X-mount.mkdir",
    "x-mount.owner=root",
    "BIND",
    "no atime",
    "a\tb",
  ])("rejects %j", (flag) => {
    expect(() => validateMountFlags([flag])).toThrow(MountFlagError);
  });

  it("names a rejected option without its value, which may be a credential", () => {
    expect(() => validateMountFlags(["password=hunter2 x"])).toThrow('mount flag "password=…" contains whitespace');
    expect(() => validateMountFlags(["loop=/dev/secret"])).toThrow('mount flag "loop=…" is not allowed');
    expect(() => validateMountFlags(["password=hunter2 x"])).not.toThrow(/hunter2/);
  });

  it("rejects a forbidden flag hidden in a comma list", () => {
    expect(() => validateMountFlags(["noatime,bind"])).toThrow(/"bind" is not allowed/);
  });

  it("tells per-mount flags (which a bind mount can carry) from filesystem options", () => {
    expect(perMountFlags(["ro", "nosuid", "discard", "noatime", "data=journal", "nodev", "noexec"])).toEqual([
      "ro",
      "nosuid",
      "noatime",
      "nodev",
      "noexec",
    ]);
  });
});
