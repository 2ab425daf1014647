#!/bin/sh
# The plain-script baseline of the "local volume life" row: the host tool calls
# the driver makes for create -> stage -> publish -> unpublish -> unstage ->
# delete of one 1 GiB ext4 volume, with the driver's own arguments:
#   create:    a sparse image file         (driver: open O_EXCL + ftruncate)
#   stage:     losetup --find --show; blkid -p (the driver probes before formatting);
#              mkfs.ext4 with the driver's options (MKFS_EXT4_OPTIONS, which the
#              benchmark takes from src/mounter/format.ts's mkfsCommand); mkdir; mount -t ext4
#   publish:   mkdir; mount --bind
#   unpublish: umount; rmdir
#   unstage:   umount; rmdir; losetup --detach
#   delete:    rm
# What the script does NOT do and the driver does: record metadata (state.json
# written atomically with fsync), read 1 MiB at each end of the device to check
# it is blank, read /proc/self/mountinfo and sysfs, and serve gRPC.
#
# Usage: local-life.sh <work dir> <name> [all|create|stage|publish|unpublish|unstage|delete]
# "all" (the default) runs the whole life in one process: the row's baseline.
# The phases, run one after the other, give the per-step comparison.
set -eu
dir=$1
name=$2
phase=${3:-all}
img=$dir/$name.img
staging=$dir/$name-staging
target=$dir/$name-target
devfile=$dir/$name.dev
mkfs_options=${MKFS_EXT4_OPTIONS:--F -q -m 0 -E lazy_itable_init=1,lazy_journal_init=1}

create() {
	truncate -s 1G -- "$img"
}
stage() {
	dev=$(losetup --find --show -- "$img")
	# Phases run as separate processes hand the device over in a file (shell builtins only).
	[ "$phase" = all ] || echo "$dev" >"$devfile"
	rc=0
	blkid -p -o export -- "$dev" >/dev/null || rc=$?
	[ "$rc" -eq 2 ] || { echo "blkid found a signature on a new device ($rc)" >&2; exit 1; }
	# shellcheck disable=SC2086 # the options are words
	mkfs.ext4 $mkfs_options -- "$dev"
	mkdir -- "$staging"
	mount -t ext4 -- "$dev" "$staging"
}
publish() {
	mkdir -- "$target"
	mount --bind -- "$staging" "$target"
}
unpublish() {
	umount -- "$target"
	rmdir -- "$target"
}
unstage() {
	umount -- "$staging"
	rmdir -- "$staging"
	[ "$phase" = all ] || read -r dev <"$devfile"
	losetup --detach "$dev"
}
delete() {
	if [ "$phase" = all ]; then rm -- "$img"; else rm -- "$img" "$devfile"; fi
}

case $phase in
all) create; stage; publish; unpublish; unstage; delete ;;
create | stage | publish | unpublish | unstage | delete) "$phase" ;;
*) echo "unknown phase $phase" >&2; exit 2 ;;
esac
