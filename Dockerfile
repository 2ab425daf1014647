# syntax=docker/dockerfile:1
# do-csi-plugin: the CSI driver for DigitalOcean Block Storage and local block volumes.
#
#   docker build -t do-csi-plugin:v$(node -p 'require("./package.json").version') .
#
# The image runs every part of the driver (controller, node, local backend); the
# manifests in deploy/ choose with flags. Base images are pinned to exact tags;
# bump NODE_VERSION together with package.json's node-image devDependency, the
# Node the tests run the bundle on (a test checks that the two agree).

ARG NODE_VERSION=22.23.3
ARG DEBIAN_RELEASE=bookworm

# --- build: the dev toolchain compiles and bundles the driver into dist/ -------
FROM node:${NODE_VERSION}-${DEBIAN_RELEASE}-slim AS build
# gcc and libc6-dev: the build compiles dist/malloc-trim.node, glibc's malloc_trim
# for the heap trimmer (src/native/malloc-trim.c), against this Node's own headers.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
# No install scripts: esbuild and tsc find their platform binaries without them.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts/build.mjs ./scripts/
COPY src ./src
# Type-checks src/ and writes the self-contained esbuild bundle to dist/
# (node: built-ins only; nothing from node_modules is needed at run time),
# with the addon beside it (the build skips it where it cannot be made: not here).
RUN npm run build && test -f dist/malloc-trim.node

# --- runtime: Node, the bundle, and the host tools the node service runs --------
FROM node:${NODE_VERSION}-${DEBIAN_RELEASE}-slim
# e2fsprogs:      mkfs.ext4/ext3, resize2fs, e2fsck, dumpe2fs
# xfsprogs:       mkfs.xfs, xfs_growfs, xfs_info
# util-linux:     blkid, flock, fsfreeze, blockdev, fallocate, fstrim
# mount:          mount, umount, losetup
# cryptsetup-bin: cryptsetup, for inspecting LUKS signatures on volumes
# The bundle needs no node_modules, nor npm, yarn or corepack: they are removed (less to patch).
RUN apt-get update \
 && apt-get install -y --no-install-recommends e2fsprogs xfsprogs util-linux mount cryptsetup-bin \
 && rm -rf /var/lib/apt/lists/* \
 && rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack /usr/local/bin/npm /usr/local/bin/npx \
           /usr/local/bin/corepack /opt/yarn-* /usr/local/bin/yarn /usr/local/bin/yarnpkg
WORKDIR /opt/do-csi-plugin
COPY --from=build /src/dist ./dist
# The start-up snapshot the entrypoint starts from (src/cli/snapshot.ts): the
# protobuf descriptors built and the node plugin's modules loaded, once, here,
# with the Node that runs it (a snapshot is bound to the binary that built it).
# build-snapshot.js starts the plugin from it once (--version) to prove it loads.
RUN node dist/build-snapshot.js /opt/do-csi-plugin/do-csi-plugin.blob \
 && ln -s /opt/do-csi-plugin/dist/do-csi-plugin.js /usr/local/bin/do-csi-plugin \
 && ln -s /opt/do-csi-plugin/dist/csictl.js /usr/local/bin/csictl \
 && do-csi-plugin --version \
 && csictl --help > /dev/null
LABEL org.opencontainers.image.title="do-csi-plugin" \
      org.opencontainers.image.description="CSI driver for DigitalOcean Block Storage and local block volumes (drop-in for csi-digitalocean)" \
      org.opencontainers.image.licenses="Apache-2.0"
# No V8 flags (no NODE_OPTIONS): under any flag away from V8's defaults Node
# compiles its own module loader from source before the program's first line,
# 12-17 ms of every start. The plugin bounds its heap itself: its young
# generation never grows past 2 MiB (V8 would take 32), its old generation grows by
# at most 30% over its live size between full collections, and once quiet
# after a burst it gives back what the burst grew the heap by (src/cli/v8-flags.ts,
# src/cli/heap-trim.ts). bench/RESULTS.md ("Against the runtime's floor")
# measures the plugin as shipped against the heap flags the image used to set.
# Root: the node service formats, mounts and attaches loop devices.
# The plugin starts from the snapshot: the same program as the do-csi-plugin
# command (dist/do-csi-plugin.js), answering its first call 45-60 ms sooner, and
# smaller at rest and after a burst of calls (bench/RESULTS.md). The container's
# arguments follow the `--`.
# --no-concurrent-recompilation: V8 optimizes hot functions on the main thread
# instead of handing them to helper threads, whose malloc arenas kept 2-4 MiB of
# the compilers' memory after a burst of calls (V8 reads it only at start, so the
# plugin cannot set it itself; a V8 flag costs this start nothing, as the
# snapshot holds no code cache for the flags to invalidate).
# glibc.malloc.tcache_count=0: no per-thread cache of freed blocks in glibc's
# malloc. The heap trimmer has glibc hand its free pages back once a burst of
# calls is over (src/cli/malloc-trim.ts), and a block held in that cache is not
# free to glibc: the cache's blocks kept another 0.6-0.7 MiB of its heap resident
# after 20,000 Probes (bench/RESULTS.md).
ENV GLIBC_TUNABLES=glibc.malloc.tcache_count=0
ENTRYPOINT ["node", "--no-concurrent-recompilation", "--snapshot-blob", "/opt/do-csi-plugin/do-csi-plugin.blob", "--"]
