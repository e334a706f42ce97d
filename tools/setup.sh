#!/usr/bin/env bash
# Prepares a fresh Debian/Ubuntu machine to build, run and test corerun: Debian packages,
# npm packages, the bundled tools and the busybox rootfs. Idempotent; run as root.
set -euo pipefail

repo="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$repo"

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: run as root (sudo tools/setup.sh): it installs Debian packages" >&2
  exit 1
fi

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "setup: corerun needs Node.js 20 or newer (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

# busybox-static: the default rootfs and test containers; iproute2 and nftables: networking and
# its tests; util-linux: setpriv and runuser for the tests that run as an unprivileged user;
# uidmap: newuidmap/newgidmap, which map /etc/subuid ranges for rootless containers;
# libseccomp2: compiles seccomp profiles into the filters containers run under; zstd:
# zstd-compressed image layers (Node 20's zlib has no zstd); containerd (with ctr and the runc
# shim), podman (with conmon, netavark and iptables for its bridge) and umoci (OCI images made
# offline from the rootfs): the engines that drive corerun as their OCI runtime in
# e2e/engines.test.ts. gcc and libc6-dev: the native helper, the monitor, and corerun-init (run
# --init), which is linked statically against libc.a. libcap2-bin (setcap, getcap): the image
# test's file capabilities. time: the soak benchmark's memory figures.
packages=(gcc libc6-dev busybox-static iproute2 nftables util-linux uidmap libseccomp2 zstd libcap2-bin time containerd podman conmon netavark iptables umoci)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 || {
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}"
  }
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build
tools/rootfs/build.sh >/dev/null
echo "setup: ready ($(node --version), rootfs $(tools/rootfs/build.sh))" >&2
