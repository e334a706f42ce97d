#!/usr/bin/env bash
# Images: import of one docker-archive by corerun, podman load and ctr images import, then the
# start+stop of a container of that image by corerun and podman run, side by side as ratios,
# and corerun's start with 1 and with N+1 images in its store (which should not grow).
# A benchmark, not a test: it never fails because one runtime is slower; a peer that is
# missing or broken is left out with a message.
#
#   tools/bench/image.sh [--runs N] [--images N]
#
# See tools/bench/README.md.
set -euo pipefail

script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
repo_root="$(cd -- "${script_dir}/../.." && pwd -P)"
readonly out_dir="${repo_root}/build/bench"
readonly corerun="${CORERUN:-${repo_root}/bin/corerun}"

die() {
  printf 'bench: %s\n' "$*" >&2
  exit 1
}
note() {
  printf 'bench: %s\n' "$*" >&2
}

runs=10
images=50
while (($# > 0)); do
  case "$1" in
    --runs) [[ $# -ge 2 ]] || die "--runs needs a value"; runs="$2"; shift ;;
    --images) [[ $# -ge 2 ]] || die "--images needs a value"; images="$2"; shift ;;
    -h | --help)
      sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
  shift
done
[[ "${runs}" =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer"
[[ "${images}" =~ ^[1-9][0-9]*$ ]] || die "--images must be a positive integer"
[[ "$(id -u)" -eq 0 ]] || die "must run as root"
for c in hyperfine node umoci skopeo; do
  command -v "${c}" >/dev/null || die "${c} is not installed (apt-get install -y ${c})"
done

mkdir -p -- "${out_dir}"
work="$(mktemp -d -t corerun-bench-image.XXXXXX)"
[[ -n "${work}" && -d "${work}" ]] || die "mktemp failed"
containerd_pid=""
cleanup() {
  if [[ -n "${containerd_pid}" ]] && kill -0 "${containerd_pid}" 2>/dev/null; then
    kill "${containerd_pid}" 2>/dev/null || true
    wait "${containerd_pid}" 2>/dev/null || true
  fi
  if [[ -d "${work}/podman" ]]; then
    podman --root "${work}/podman/root" --runroot "${work}/podman/run" rmi -af >/dev/null 2>&1 || true
    podman --root "${work}/podman/root" --runroot "${work}/podman/run" system reset -f >/dev/null 2>&1 || true
  fi
  rm -rf -- "${work:?}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The image: the busybox rootfs as one layer, made offline with umoci, written by skopeo as a
# docker-archive (what `docker save` writes), which all three import.
rootfs="$("${repo_root}/tools/rootfs/build.sh" | tail -n 1)"
(
  cd -- "${work}"
  umoci init --layout oci >/dev/null
  umoci new --image oci:latest >/dev/null
  umoci unpack --image oci:latest bundle >/dev/null
  cp -a -- "${rootfs}/." bundle/rootfs/
  umoci repack --image oci:latest bundle >/dev/null
  umoci config --image oci:latest --config.cmd /bin/true >/dev/null
  skopeo copy -q oci:oci:latest docker-archive:image.tar:bench:latest
  tar -C "${rootfs}" -czf rootfs.tar.gz .
)
archive="${work}/image.tar"
note "archive: $(du -h "${archive}" | cut -f1) docker-archive of the busybox rootfs"

q() { printf '%q ' "$@"; }
podman_=(podman --root "${work}/podman/root" --runroot "${work}/podman/run" --runtime runc --cgroup-manager=cgroupfs)

import_args=(--runs "${runs}" --export-json "${out_dir}/image-import.json")
add_import() {
  local name="$1" prepare="$2" cmd="$3"
  if ! sh -c "${prepare}; ${cmd}" >/dev/null 2>"${work}/err"; then
    note "skipping ${name}: its import failed:"
    sed -e 's/^/    | /' -- "${work}/err" >&2
    return 0
  fi
  import_args+=(--command-name "${name}" --prepare "${prepare}" "${cmd}")
}

add_import corerun "rm -rf -- $(q "${work}/cr-import") && mkdir $(q "${work}/cr-import")" \
  "$(q "${corerun}" image import --root "${work}/cr-import" "${archive}") >/dev/null"
add_import podman "$(q "${podman_[@]}") rmi -af >/dev/null 2>&1 || true" "$(q "${podman_[@]}" load -q -i "${archive}") >/dev/null"

# A containerd of its own (no CRI), so that the host's, if any, is left alone.
if command -v containerd >/dev/null && command -v ctr >/dev/null; then
  mkdir -p -- "${work}/containerd"
  printf 'version = 2\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n' >"${work}/containerd/config.toml"
  sock="${work}/containerd/sock"
  containerd --config "${work}/containerd/config.toml" --root "${work}/containerd/root" --state "${work}/containerd/state" \
    --address "${sock}" >"${work}/containerd/log" 2>&1 &
  containerd_pid=$!
  for _ in $(seq 50); do [[ -S "${sock}" ]] && break; sleep 0.1; done
  ctr_=(ctr --address "${sock}" -n bench)
  add_import "ctr" "$(q "${ctr_[@]}") images rm --sync docker.io/library/bench:latest >/dev/null 2>&1 || true" \
    "$(q "${ctr_[@]}" images import "${archive}") >/dev/null"
else
  note "skipping ctr: containerd is not installed (apt-get install -y containerd)"
fi

printf '\nimport of %s (%s runs each)\n\n' "${archive##*/}" "${runs}"
hyperfine "${import_args[@]}"

# Start+stop of a container of the image: one image in corerun's store, then N more.
"${corerun}" image import --root "${work}/cr-one" "${archive}" >/dev/null
"${corerun}" image import --root "${work}/cr-many" "${archive}" >/dev/null
for i in $(seq "${images}"); do
  "${corerun}" image import --root "${work}/cr-many" --name "filler${i}" "${work}/rootfs.tar.gz" >/dev/null
done
"${podman_[@]}" load -q -i "${archive}" >/dev/null
run_args=(--runs "${runs}" --warmup 2 --export-json "${out_dir}/image-run.json"
  --command-name "corerun" "$(q "${corerun}" run --root "${work}/cr-one" --network none bench:latest /bin/true)"
  --command-name "corerun, $((images + 1)) images" "$(q "${corerun}" run --root "${work}/cr-many" --network none bench:latest /bin/true)")
if "${podman_[@]}" run --rm --ulimit nofile=20000:20000 --ulimit nproc=20000:20000 --network none bench:latest /bin/true >/dev/null 2>"${work}/err"; then
  run_args+=(--command-name "podman" "$(q "${podman_[@]}" run --rm --ulimit nofile=20000:20000 --ulimit nproc=20000:20000 --network none bench:latest /bin/true)")
else
  note "skipping podman run:"
  sed -e 's/^/    | /' -- "${work}/err" >&2
fi
printf '\nstart+stop of a container of the image (%s runs each)\n\n' "${runs}"
hyperfine "${run_args[@]}"

printf '\nmedians, as ratios to corerun:\n'
# shellcheck disable=SC2016 # ${} here is JavaScript template syntax
node -e '
  const fs = require("node:fs");
  for (const file of process.argv.slice(1)) {
    const { results } = JSON.parse(fs.readFileSync(file, "utf8"));
    const ref = results.find((r) => r.command === "corerun");
    console.log(`  ${file.split("/").pop()}`);
    for (const r of results) console.log(`    ${r.command.padEnd(20)} ${(r.median * 1000).toFixed(1).padStart(8)} ms  ${(r.median / ref.median).toFixed(2).padStart(6)}x`);
  }
' "${out_dir}/image-import.json" "${out_dir}/image-run.json"
