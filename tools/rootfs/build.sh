#!/usr/bin/env bash
# Builds the minimal busybox root filesystem used by demos and the e2e tests.
#
#   tools/rootfs/build.sh [--force | --check] [DIR]
#
# DIR defaults to build/rootfs under the repository root. The absolute path of
# the rootfs is printed as the last line of stdout; everything else goes to
# stderr so callers can use "$(tools/rootfs/build.sh)".
#
# DIR.tree, beside it, records the tree as built (every path with its type,
# mode, owner, and a file's size or a link's target). --check compares an
# existing rootfs with that record and fails, naming what differs: the e2e suite
# shares one rootfs, so a file one test leaves in it would change what the next
# sees.
set -euo pipefail

readonly MARKER_REL="etc/corerun-rootfs"
readonly MARKER_TEXT="corerun busybox rootfs"
readonly BUSYBOX_SRC="/bin/busybox"

die() {
  printf 'rootfs: %s\n' "$*" >&2
  exit 1
}

usage() {
  cat >&2 <<'EOF'
usage: tools/rootfs/build.sh [--force | --check] [DIR]

Builds a busybox-static root filesystem in DIR (default: build/rootfs in the
repository root) and prints its absolute path. An existing rootfs is reused
unless --force is given. With --check, an existing rootfs must still be as it
was built (nothing added, removed or changed), or the script fails and names
what differs.
EOF
}

script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
repo_root="$(cd -- "${script_dir}/../.." && pwd -P)"

force=0
check=0
dir=""
while (($# > 0)); do
  case "$1" in
    --force) force=1 ;;
    --check) check=1 ;;
    -h | --help)
      usage
      exit 0
      ;;
    --) shift; [[ $# -gt 0 ]] && dir="$1"; break ;;
    -*)
      usage
      die "unknown option: $1"
      ;;
    *)
      [[ -z "${dir}" ]] || die "only one DIR may be given"
      dir="$1"
      ;;
  esac
  shift
done
if [[ -z "${dir}" ]]; then
  dir="${repo_root}/build/rootfs"
  # Containers write to their rootfs as root: a setuid file one of them leaves there must not be
  # reachable by the host's other users.
  mkdir -p -- "${repo_root}/build"
  chmod 0700 -- "${repo_root}/build"
fi

# Relative DIRs are taken from the caller's working directory, like any other
# path argument; the result is made absolute because runtimes need that.
parent="$(dirname -- "${dir}")"
mkdir -p -- "${parent}"
parent="$(cd -- "${parent}" && pwd -P)"
dir="${parent}/$(basename -- "${dir}")"
[[ "${dir}" != "/" ]] || die "refusing to use / as the rootfs directory"

((force + check < 2)) || die "--force and --check exclude each other; give one"

# What the tree holds, one sorted line per path: a directory's size and every time change as
# containers use it, so they are not part of it.
tree_record() {
  (
    cd -- "$1"
    find . -mindepth 1 \( -type d -printf '%P d %m %U:%G\n' -o -printf '%P %y %m %U:%G %s %l\n' \)
  ) | LC_ALL=C sort
}

if [[ -f "${dir}/${MARKER_REL}" && "${force}" -eq 0 ]]; then
  if ((check)); then
    [[ -f "${dir}.tree" ]] || die "${dir} was built before its tree was recorded; rebuild it: tools/rootfs/build.sh --force ${dir}"
    if ! differs="$(diff -- "${dir}.tree" <(tree_record "${dir}"))"; then
      printf '%s\n' "${differs}" | grep '^[<>]' | sed 's/^</  built:/; s/^>/  found:/' | head -n 20 >&2
      die "${dir} is no longer as it was built (lines above: path type mode owner size target); something wrote to it: rebuild it with tools/rootfs/build.sh --force ${dir}"
    fi
  fi
  printf '%s\n' "${dir}"
  exit 0
fi

# Never delete a directory this script did not produce: without the marker it
# may hold someone's data.
if [[ -e "${dir}" && ! -f "${dir}/${MARKER_REL}" ]]; then
  if [[ -d "${dir}" && -z "$(ls -A -- "${dir}")" ]]; then
    rmdir -- "${dir}"
  else
    die "${dir} exists and is not a corerun rootfs (no ${MARKER_REL}); remove it or pick another DIR"
  fi
fi

busybox_static_installed() {
  [[ "$(dpkg-query -W -f='${Status}' busybox-static 2>/dev/null || true)" == "install ok installed" ]]
}

# The dynamic busybox would need the host's libc inside the rootfs, so only
# the static build is acceptable.
if ! busybox_static_installed; then
  if [[ "$(id -u)" -ne 0 ]]; then
    die "busybox-static is not installed; run as root: apt-get install busybox-static"
  fi
  printf 'rootfs: installing busybox-static\n' >&2
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y busybox-static >&2; then
    # A fresh container often has no package lists yet.
    apt-get update >&2
    apt-get install -y busybox-static >&2
  fi
  busybox_static_installed || die "busybox-static could not be installed"
fi
[[ -x "${BUSYBOX_SRC}" ]] || die "${BUSYBOX_SRC} is missing although busybox-static is installed"

umask 022

# Built next to DIR so the final rename stays on one filesystem and is atomic;
# a half-built tree therefore never appears under DIR.
tmp="$(mktemp -d -- "${parent}/.rootfs.tmp.XXXXXX")"
[[ -n "${tmp}" && -d "${tmp}" ]] || die "mktemp failed"
old=""
record=""
cleanup() {
  if [[ -n "${record}" && -f "${record}" ]]; then
    rm -f -- "${record:?}"
  fi
  if [[ -n "${tmp}" && -d "${tmp}" ]]; then
    rm -rf -- "${tmp:?}"
  fi
  if [[ -n "${old}" && -d "${old}" ]]; then
    rm -rf -- "${old:?}"
  fi
}
trap cleanup EXIT

# mktemp creates 0700, which would make / unreadable for non-root users
# inside the container.
chmod 0755 -- "${tmp}"

mkdir -p -- \
  "${tmp}"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,etc,root,home,run,mnt,var/www,tmp}
chmod 1777 -- "${tmp}/tmp"
chmod 0700 -- "${tmp}/root"

cp -- "${BUSYBOX_SRC}" "${tmp}/bin/busybox"
chmod 0755 -- "${tmp}/bin/busybox"

# Relative links keep the tree valid wherever it is mounted or copied.
while IFS= read -r applet; do
  [[ -n "${applet}" && "${applet}" != "bin/busybox" ]] || continue
  if [[ "${applet}" == */* ]]; then
    applet_dir="${applet%/*}"
  else
    applet_dir="."
  fi
  case "${applet_dir}" in
    .) target="bin/busybox" ;;
    bin) target="busybox" ;;
    *)
      up="${applet_dir//[!\/]/}"
      target="../${up//\//../}bin/busybox"
      ;;
  esac
  [[ -d "${tmp}/${applet_dir}" ]] || mkdir -p -- "${tmp}/${applet_dir}"
  ln -s -- "${target}" "${tmp}/${applet}"
done < <("${tmp}/bin/busybox" --list-full)

[[ -L "${tmp}/bin/sh" ]] || die "busybox --list-full did not provide bin/sh"

cat >"${tmp}/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"${tmp}/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
printf '%s\n' "${MARKER_TEXT}" >"${tmp}/${MARKER_REL}"
printf 'hello from corerun\n' >"${tmp}/var/www/index.html"

# Deliberately lacks the execute bit: tests expect exit code 126 from it.
printf '#!/bin/sh\necho no\n' >"${tmp}/bin/not-executable"
chmod 0644 -- "${tmp}/bin/not-executable"

if [[ "$(id -u)" -eq 0 ]]; then
  chown -R -h 0:0 -- "${tmp}"
fi
# Once the tree is final: its record, for --check, moved beside DIR with it.
record="$(mktemp -- "${parent}/.rootfs.tree.XXXXXX")"
[[ -n "${record}" && -f "${record}" ]] || die "mktemp failed"
chmod 0644 -- "${record}"
tree_record "${tmp}" >"${record}"

if [[ -e "${dir}" ]]; then
  # --force on an existing rootfs: swap it aside first, then drop it.
  old="$(mktemp -d -- "${parent}/.rootfs.old.XXXXXX")"
  [[ -n "${old}" && -d "${old}" ]] || die "mktemp failed"
  mv -T -- "${dir}" "${old}/rootfs"
fi

if mv -T -- "${tmp}" "${dir}" 2>/dev/null; then
  tmp=""
  mv -f -- "${record}" "${dir}.tree"
  record=""
else
  # A concurrent run may have finished first; its tree is equally good and
  # ours is discarded by the exit trap.
  [[ -f "${dir}/${MARKER_REL}" ]] || die "could not move the new rootfs into ${dir}"
fi

printf '%s\n' "${dir}"
