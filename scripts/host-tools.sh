#!/usr/bin/env bash
# Makes sure the host tools the node service and its tests use are installed.
# On Debian/Ubuntu as root it installs what is missing; elsewhere it names it.
set -euo pipefail

declare -A package_of=(
  [mkfs.ext4]=e2fsprogs [resize2fs]=e2fsprogs [mkfs.xfs]=xfsprogs [xfs_growfs]=xfsprogs
  [blkid]=util-linux [losetup]=mount [mount]=mount [umount]=mount [fsfreeze]=util-linux
  [blockdev]=util-linux [cryptsetup]=cryptsetup-bin
  # tests only: test/deploy runs `kubectl kustomize` over the manifests
  [kubectl]=kubernetes-client
  # tests only: test/interop builds a grpc-go client (Debian's grpc-go sources come with golang-google-grpc-dev)
  [go]=golang-go
  # the build: dist/malloc-trim.node (src/native/malloc-trim.c; malloc.h comes with libc6-dev)
  [cc]=gcc
)
missing=()
for tool in "${!package_of[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$tool" >/dev/null 2>&1 || missing+=("${package_of[$tool]}")
done
[ -d /usr/share/gocode/src/google.golang.org/grpc ] || missing+=(golang-google-grpc-dev)
[ -f /usr/include/malloc.h ] || missing+=(libc6-dev)
[ ${#missing[@]} -eq 0 ] && exit 0

packages=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing host tools: $packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $packages >/dev/null
else
  echo "missing host tools; install the packages: $packages" >&2
  exit 1
fi
