#!/bin/sh
# The plain-script baseline of the "local volume life" row: the host tool calls
# the driver makes for create -> stage -> publish -> unpublish -> unstage ->
# delete of one 1 GiB ext4 volume, with the driver's own arguments:
#   create:  a sparse image file            (driver: open O_EXCL + ftruncate)
#   stage:   losetup --find --show; blkid -p (the driver probes before formatting);
#            mkfs.ext4 with src/mounter/format.ts's options; mkdir; mount -t ext4
#   publish: mkdir; mount --bind
#   unpublish: umount; rmdir     unstage: umount; rmdir; losetup --detach
#   delete:  rm
# What the script does NOT do and the driver does: record metadata (state.json
# written atomically with fsync), read 1 MiB at each end of the device to check
# it is blank, read /proc/self/mountinfo and sysfs, and serve gRPC.
# Usage: local-life.sh <work dir> <name>
set -eu
dir=$1
img=$dir/$2.img
staging=$dir/$2-staging
target=$dir/$2-target

truncate -s 1G -- "$img"
dev=$(losetup --find --show -- "$img")
rc=0
blkid -p -o export -- "$dev" >/dev/null || rc=$?
[ "$rc" -eq 2 ] || { echo "blkid found a signature on a new device ($rc)" >&2; exit 1; }
mkfs.ext4 -F -q -m 0 -E lazy_itable_init=1,lazy_journal_init=1 -- "$dev"
mkdir -- "$staging"
mount -t ext4 -- "$dev" "$staging"
mkdir -- "$target"
mount --bind -- "$staging" "$target"

umount -- "$target"
rmdir -- "$target"
umount -- "$staging"
rmdir -- "$staging"
losetup --detach "$dev"
rm -- "$img"
