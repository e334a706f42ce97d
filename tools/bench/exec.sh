#!/usr/bin/env bash
# `exec CMD` latency into a running container: corerun exec (into a `corerun run`
# container), runc exec (into a `runc run -d` bundle) and podman exec (podman
# with runc as its runtime), side by side in one hyperfine run. Each exec runs
# /bin/true and is waited for. A benchmark, not a test: a missing runtime is
# left out with a message.
#
#   tools/bench/exec.sh [--runs N] [--warmup N]
#
# Run it as root, under the shared lock: it starts containers. See tools/bench/README.md.
set -euo pipefail

script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
repo_root="$(cd -- "${script_dir}/../.." && pwd -P)"
readonly out_dir="${repo_root}/build/bench"
readonly corerun="${CORERUN:-${repo_root}/bin/corerun}"
runs=30
warmup=3
while [ $# -gt 0 ]; do
  case "$1" in
    --runs | --warmup)
      [ $# -ge 2 ] || { echo "exec.sh: $1 needs a value" >&2; exit 125; }
      if [ "$1" = --runs ]; then runs="$2"; else warmup="$2"; fi
      shift 2
      ;;
    # The header comment above, without its marks.
    -h | --help) sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
    *) echo "exec.sh: unknown argument $1; use --runs N, --warmup N" >&2; exit 125 ;;
  esac
done
[[ "${runs}" =~ ^[1-9][0-9]*$ ]] || { echo "exec.sh: --runs ${runs}: give a positive whole number" >&2; exit 125; }
[[ "${warmup}" =~ ^[0-9]+$ ]] || { echo "exec.sh: --warmup ${warmup}: give a whole number" >&2; exit 125; }
command -v hyperfine >/dev/null || { echo "exec.sh: needs hyperfine: apt-get install -y hyperfine" >&2; exit 125; }
[ "$(id -u)" = 0 ] || { echo "exec.sh: run as root: it starts containers" >&2; exit 125; }

rootfs="$("${repo_root}/tools/rootfs/build.sh" | tail -n 1)"
work="$(mktemp -d /tmp/corerun-bench-exec.XXXXXX)"
mkdir -p -- "${out_dir}"
corerun_root="${work}/corerun"
runc_root="${work}/runc"
runc_id="bench-exec-$$"
podman_name="bench-exec-$$"
corerun_pid=""
cleanup() {
  "${corerun}" kill --root "${corerun_root}" bench-exec >/dev/null 2>&1 || true
  [ -n "${corerun_pid}" ] && wait "${corerun_pid}" 2>/dev/null || true
  runc --root "${runc_root}" delete --force "${runc_id}" >/dev/null 2>&1 || true
  podman --runtime runc --cgroup-manager=cgroupfs rm -f -t 0 "${podman_name}" >/dev/null 2>&1 || true
  rm -rf -- "${work:?}"
}
trap cleanup EXIT

args=(--runs "${runs}" --warmup "${warmup}" --export-json "${out_dir}/exec.json" --export-markdown "${out_dir}/exec.md" -N)

"${corerun}" run --root "${corerun_root}" --name bench-exec --network none --rootfs "${rootfs}" /bin/sleep 3600 >/dev/null 2>&1 &
corerun_pid=$!
until "${corerun}" exec --root "${corerun_root}" bench-exec /bin/true 2>/dev/null; do sleep 0.1; done
args+=(-n "corerun exec" "${corerun} exec --root ${corerun_root} bench-exec /bin/true")

if command -v runc >/dev/null; then
  bundle="${work}/bundle"
  mkdir -p -- "${bundle}"
  cp -a -- "${rootfs}" "${bundle}/rootfs"
  runc spec --bundle "${bundle}"
  node -e '
    const fs = require("node:fs");
    const file = process.argv[1];
    const spec = JSON.parse(fs.readFileSync(file, "utf8"));
    spec.root.readonly = false;
    spec.process.args = ["/bin/sleep", "3600"];
    spec.process.terminal = false;
    fs.writeFileSync(file, JSON.stringify(spec, null, 2));
  ' "${bundle}/config.json"
  runc --root "${runc_root}" run -d -b "${bundle}" "${runc_id}" </dev/null >/dev/null 2>&1
  args+=(-n "runc exec" "runc --root ${runc_root} exec ${runc_id} /bin/true")
else
  echo "exec.sh: runc is not installed; its row is left out" >&2
fi

# podman writes its own files into the rootfs it runs: a copy of its own.
if command -v podman >/dev/null && cp -a -- "${rootfs}" "${work}/podman-rootfs" && podman --runtime runc --cgroup-manager=cgroupfs run -d --name "${podman_name}" --network none \
  --ulimit nofile=20000:20000 --ulimit nproc=20000:20000 --rootfs "${work}/podman-rootfs" /bin/sleep 3600 >/dev/null; then
  args+=(-n "podman exec" "podman --runtime runc --cgroup-manager=cgroupfs exec ${podman_name} /bin/true")
else
  echo "exec.sh: podman is missing or cannot start a container here; its row is left out" >&2
fi

hyperfine "${args[@]}"
