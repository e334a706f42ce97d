#!/usr/bin/env bash
# Start+stop latency of corerun next to runc and podman, in one hyperfine run;
# with --scenario oci, the OCI lifecycle (create, start, delete of one bundle)
# of corerun, runc and crun, and podman with corerun or runc as its runtime.
# This is a benchmark, not a test: it never fails because one runtime is
# slower, and runtimes that are missing or broken are left out with a message.
#
#   tools/bench/run.sh [--runs N] [--warmup N] [--rounds N] [--scenario NAME]
#
# See tools/bench/README.md.
set -euo pipefail

script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
repo_root="$(cd -- "${script_dir}/../.." && pwd -P)"
readonly out_dir="${repo_root}/build/bench"
# CORERUN lets another build of corerun be compared without moving it.
readonly corerun="${CORERUN:-${repo_root}/bin/corerun}"
readonly podman_install_hint="DEBIAN_FRONTEND=noninteractive apt-get install -y podman"

# One arm per scenario. Each sets the flags that express the same container
# for every runtime:
#   corerun_flags  arguments for bin/corerun before --rootfs
#   runc_patch     JSON merged into the runc config.json "linux" object,
#                  or empty when runc has no equivalent (runc is then skipped)
#   podman_flags   arguments for podman run before --rootfs
# The oci scenario times engines' calls instead of `corerun run`: see oci_rows.
readonly scenarios="none limits bridge port userns oci"
define_scenario() {
  case "$1" in
    none)
      corerun_flags=(--network none)
      runc_patch='{}'
      podman_flags=(--network none)
      ;;
    limits)
      corerun_flags=(--network none --memory 64 --pids 50 --cpu 50)
      runc_patch='{"resources":{"memory":{"limit":67108864},"pids":{"limit":50},"cpu":{"quota":50000,"period":100000}}}'
      podman_flags=(--network none --memory 64m --pids-limit 50 --cpus 0.5)
      ;;
    bridge)
      # runc has no networking of its own: it sits this one out.
      corerun_flags=(--network bridge)
      runc_patch=''
      podman_flags=(--network bridge)
      ;;
    port)
      corerun_flags=(--network bridge -P 18080:80)
      runc_patch=''
      podman_flags=(--network bridge -p 18080:80)
      ;;
    userns)
      # A user namespace with a free range of ids from /etc/subuid, chosen by
      # the runtime; runc has no such choice of its own and sits this one out.
      corerun_flags=(--network none --userns auto)
      runc_patch=''
      podman_flags=(--network none --userns auto)
      ;;
    oci)
      corerun_flags=()
      runc_patch='{}'
      podman_flags=(--network none)
      ;;
    *)
      return 1
      ;;
  esac
}

die() {
  printf 'bench: %s\n' "$*" >&2
  exit 1
}

note() {
  printf 'bench: %s\n' "$*" >&2
}

usage() {
  cat <<EOF
usage: tools/bench/run.sh [--runs N] [--warmup N] [--rounds N] [--scenario NAME]

Times container start+stop of corerun, runc and podman (plus a "node -e 0"
baseline) in one hyperfine run and prints medians as ratios to corerun.
Scenario oci: create+start+delete of one bundle by corerun, runc and crun, and
podman --runtime corerun next to podman --runtime runc.

  --runs N         timed runs per command (default 20)
  --warmup N       untimed runs per command first (default 3)
  --rounds N       split the runs into N hyperfine runs, one after the other, and
                   take the medians of all their times (default 1): hyperfine
                   times one command's runs, then the next's, so a machine whose
                   speed drifts favours whichever command ran in its fast spell
  --scenario NAME  one of: ${scenarios}, or all of them in turn (default none)

Environment: CORERUN=PATH times that binary instead of bin/corerun.

Results: build/bench/<scenario>.md and build/bench/<scenario>.json
EOF
}

runs=20
warmup=3
rounds=1
scenario="none"
while (($# > 0)); do
  case "$1" in
    --runs)
      [[ $# -ge 2 ]] || die "--runs needs a value"
      runs="$2"
      shift
      ;;
    --runs=*) runs="${1#*=}" ;;
    --warmup)
      [[ $# -ge 2 ]] || die "--warmup needs a value"
      warmup="$2"
      shift
      ;;
    --warmup=*) warmup="${1#*=}" ;;
    --rounds)
      [[ $# -ge 2 ]] || die "--rounds needs a value"
      rounds="$2"
      shift
      ;;
    --rounds=*) rounds="${1#*=}" ;;
    --scenario)
      [[ $# -ge 2 ]] || die "--scenario needs a value"
      scenario="$2"
      shift
      ;;
    --scenario=*) scenario="${1#*=}" ;;
    -h | --help)
      usage
      exit 0
      ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
  shift
done

[[ "${runs}" =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer"
[[ "${warmup}" =~ ^[0-9]+$ ]] || die "--warmup must be a non-negative integer"
[[ "${rounds}" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"
((runs % rounds == 0)) || die "--runs ${runs} is not a multiple of --rounds ${rounds}; each round times runs/rounds of each command"
# all: every scenario in turn, each its own hyperfine run, one after the other.
if [[ "${scenario}" == all ]]; then
  for s in ${scenarios}; do
    "${BASH_SOURCE[0]}" --runs "${runs}" --warmup "${warmup}" --rounds "${rounds}" --scenario "${s}"
  done
  exit 0
fi
define_scenario "${scenario}" || die "unknown scenario '${scenario}' (known: ${scenarios})"

# Every runtime compared here needs root for namespaces and cgroups, so a
# non-root run would only measure error paths.
[[ "$(id -u)" -eq 0 ]] || die "must run as root"
command -v hyperfine >/dev/null || die "hyperfine is not installed; install it with: apt-get install -y hyperfine"
command -v node >/dev/null || die "node is not on PATH"

mkdir -p -- "${out_dir}"

work="$(mktemp -d -t corerun-bench.XXXXXX)"
[[ -n "${work}" && -d "${work}" ]] || die "mktemp failed"
runc_id="corerun-bench-$$"
runc_used=0
hyperfine_pid=""
# The oci scenario's `delete --force` commands, run on exit for the
# containers an interrupted run left.
oci_used=()
cleanup() {
  # A TERM sent to this script alone would otherwise leave hyperfine running.
  if [[ -n "${hyperfine_pid}" ]] && kill -0 "${hyperfine_pid}" 2>/dev/null; then
    kill "${hyperfine_pid}" 2>/dev/null || true
    wait "${hyperfine_pid}" 2>/dev/null || true
  fi
  if [[ "${runc_used}" -eq 1 ]] && runc state "${runc_id}" >/dev/null 2>&1; then
    runc delete -f "${runc_id}" >/dev/null 2>&1 || true
  fi
  local delete
  for delete in "${oci_used[@]}"; do
    sh -c "${delete}" >/dev/null 2>&1 || true
  done
  if [[ -n "${work}" && -d "${work}" ]]; then
    # podman's overlay driver leaves its storage directory (podman-root/overlay) mounted on
    # itself, notably when its command failed: deepest first, or rm stops at a busy mount point.
    local m
    while read -r m; do
      umount "${m}" 2>/dev/null || umount -l "${m}" 2>/dev/null || true
    done < <(awk -v w="${work}/" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
    rm -rf -- "${work:?}"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Each runtime gets its own copy: podman creates mount-point files such as
# etc/hostname inside the rootfs it is given, and that must not leak into the
# tree the others (or the e2e tests) use.
rootfs_for() {
  "${repo_root}/tools/rootfs/build.sh" "${out_dir}/rootfs-$1" | tail -n 1
}

names=()
commands=()

# Runs the command once untimed; only a command that succeeds is timed, so a
# broken runtime can never show up as a fast one.
add_candidate() {
  local name="$1" cmd="$2" err="${work}/preflight.err" rc=0
  sh -c "${cmd}" >/dev/null 2>"${err}" || rc=$?
  if [[ "${rc}" -ne 0 ]]; then
    note "skipping ${name}: its command failed (exit ${rc}) and is not timed:"
    printf '    %s\n' "${cmd}" >&2
    sed -e 's/^/    | /' -- "${err}" >&2
    return 0
  fi
  names+=("${name}")
  commands+=("${cmd}")
}

quote() {
  local out="" arg
  for arg in "$@"; do
    out+="${out:+ }$(printf '%q' "${arg}")"
  done
  printf '%s' "${out}"
}

# A bundle from `runc spec` around ROOTFS running /bin/true without a
# terminal; PATCH (JSON) is merged into its "linux" object. podman and corerun
# mount the rootfs writable; runc's default read-only root would add a remount
# the others do not pay for.
make_bundle() {
  local bundle="$1" rootfs="$2" patch="$3"
  mkdir -p -- "${bundle}"
  runc spec --bundle "${bundle}"
  node -e '
    const fs = require("node:fs");
    const [file, rootfs, patch] = process.argv.slice(1);
    const spec = JSON.parse(fs.readFileSync(file, "utf8"));
    spec.root = { path: rootfs, readonly: false };
    spec.process.args = ["/bin/true"];
    spec.process.terminal = false;
    const extra = JSON.parse(patch);
    for (const [key, value] of Object.entries(extra)) {
      spec.linux[key] = { ...(spec.linux[key] ?? {}), ...value };
    }
    fs.writeFileSync(file, JSON.stringify(spec, null, 2));
  ' "${bundle}/config.json" "${rootfs}" "${patch}"
}

# The oci scenario: what an engine asks of its runtime for one container.
# Each OCI row is one lifecycle, run by lifecycle.sh: create (the process
# waits), start, wait until the process has exited (create's caller is not its
# parent: the init it was orphaned to reaps it), delete. Every runtime gets the
# same bundle (from runc spec) around its own rootfs copy and its own state root.
write_lifecycle() {
  cat >"$1" <<'EOS'
#!/bin/sh
# lifecycle.sh ROOT BUNDLE ID RUNTIME [ARGS...]
root=$1 bundle=$2 id=$3
shift 3
"$@" --root "$root" create --bundle "$bundle" --pid-file "$bundle/init.pid" "$id" || exit
"$@" --root "$root" start "$id" || exit
read -r pid <"$bundle/init.pid" || [ -n "$pid" ] || exit
while read -r _ _ st _ <"/proc/$pid/stat" 2>/dev/null && [ "$st" != Z ]; do :; done
"$@" --root "$root" delete "$id"
EOS
  chmod +x -- "$1"
}

# crun refuses hybrid hosts (a cgroup v2 hierarchy with controllers next to
# the v1 ones). This wrapper runs each crun call in a private mount namespace
# in which the unified hierarchy is unmounted, so that crun sees a v1 host;
# the host keeps its mount.
write_crun_v1() {
  cat >"$1" <<'EOS'
#!/bin/sh
exec unshare --mount --propagation private sh -c 'umount /sys/fs/cgroup/unified && exec crun "$@"' crun "$@"
EOS
  chmod +x -- "$1"
}

oci_row() {
  local name="$1" runtime="$2"
  local bundle="${work}/bundle-${name}" root="${work}/state-${name}"
  make_bundle "${bundle}" "$(rootfs_for "oci-${name}")" '{}'
  oci_used+=("${runtime} --root $(quote "${root}") delete --force $(quote "${runc_id}")")
  add_candidate "${name}" "$(quote "${work}/lifecycle.sh" "${root}" "${bundle}" "${runc_id}") ${runtime}"
}

# Both podman rows run the same container, with podman's default seccomp profile
# in linux.seccomp, which each runtime loads.
podman_row() {
  local name="$1" runtime="$2"
  add_candidate "podman ${name}" "$(quote podman --runtime "${runtime}" --cgroup-manager=cgroupfs run --rm \
    --ulimit nofile=20000:20000 --ulimit nproc=20000:20000 \
    "${podman_flags[@]}" --rootfs "$(rootfs_for "podman-${name}")" /bin/true)"
}

oci_rows() {
  command -v runc >/dev/null || die "scenario oci makes its bundle with runc spec: apt-get install -y runc"
  write_lifecycle "${work}/lifecycle.sh"
  if [[ -x "${corerun}" ]]; then
    oci_row corerun "$(quote "${corerun}")"
  else
    note "skipping corerun: ${corerun} does not exist yet (build it first)"
  fi
  oci_row runc runc
  if ! command -v crun >/dev/null; then
    note "skipping crun: not installed (apt-get install -y crun)"
  elif mountpoint -q /sys/fs/cgroup/unified; then
    write_crun_v1 "${work}/crun-v1"
    note "crun: each call runs where /sys/fs/cgroup/unified is unmounted (a private mount namespace), as this hybrid host needs"
    oci_row crun "$(quote "${work}/crun-v1")"
  else
    oci_row crun crun
  fi
  if ! command -v podman >/dev/null; then
    note "skipping podman: not installed; install it with: ${podman_install_hint}"
    return 0
  fi
  [[ -x "${corerun}" ]] && podman_row corerun "${corerun}"
  podman_row runc runc
}

# The other scenarios: one `corerun run` next to `runc run` and `podman run`.
run_rows() {
  local rootfs bundle
  # corerun
  if [[ -x "${corerun}" ]]; then
    rootfs="$(rootfs_for corerun)"
    add_candidate corerun \
      "$(quote "${corerun}" --rootfs "${rootfs}" "${corerun_flags[@]}" /bin/true)"
  else
    note "skipping corerun: ${corerun} does not exist yet (build it first)"
  fi

  # runc
  if [[ -z "${runc_patch}" ]]; then
    note "skipping runc: scenario '${scenario}' has no runc equivalent"
  elif ! command -v runc >/dev/null; then
    note "skipping runc: not installed (apt-get install -y runc)"
  else
    bundle="${work}/runc-bundle"
    make_bundle "${bundle}" "$(rootfs_for runc)" "${runc_patch}"
    # runc run in the foreground deletes the container when it exits, so one
    # id can be reused across runs; the exit trap covers an interrupted run.
    runc_used=1
    add_candidate runc "$(quote runc run --bundle "${bundle}" "${runc_id}")"
  fi

  # podman
  if ! command -v podman >/dev/null; then
    note "skipping podman: not installed; install it with: ${podman_install_hint}"
  else
    rootfs="$(rootfs_for podman)"
    # crun, podman's default runtime, refuses this hybrid-cgroup host; the
    # explicit ulimits avoid raising RLIMIT_NOFILE, which fails because the
    # bounding set lacks CAP_SYS_RESOURCE.
    local podman_cmd=(podman --runtime runc --cgroup-manager=cgroupfs)
    local podman_what=(--rootfs "${rootfs}")
    if [[ "${scenario}" == userns ]]; then
      # podman 4.3 sets up no id map for --userns auto with --rootfs ("no uid
      # mappings found"); with an image it does. So podman runs the same
      # rootfs imported as an image, in a store of this run's own.
      podman_cmd+=(--root "${work}/podman-root" --runroot "${work}/podman-runroot")
      tar -C "${rootfs}" -cf "${work}/rootfs.tar" .
      "${podman_cmd[@]}" import --quiet "${work}/rootfs.tar" corerun-bench-rootfs >/dev/null
      podman_what=(corerun-bench-rootfs)
      grep -q '^containers:' /etc/subuid 2>/dev/null ||
        note "podman --userns auto takes its ids from the 'containers' entries of /etc/subuid and /etc/subgid (e.g. containers:2000000:2000000)"
    fi
    add_candidate podman "$(quote "${podman_cmd[@]}" run --rm \
      --ulimit nofile=20000:20000 --ulimit nproc=20000:20000 \
      "${podman_flags[@]}" "${podman_what[@]}" /bin/true)"
  fi
}

if [[ "${scenario}" == oci ]]; then
  oci_rows
else
  run_rows
fi

runtime_count="${#names[@]}"
((runtime_count > 0)) || die "no runtime could run a container; nothing to compare"

# One Node start is part of every corerun invocation; this row shows its size.
add_candidate "node -e 0" "node -e 0"

results_json="${out_dir}/${scenario}.json"
results_md="${out_dir}/${scenario}.md"
printf '\nscenario %s: %s runs each in %s round(s), %s warmup each round, %s cores\n\n' \
  "${scenario}" "${runs}" "${rounds}" "${warmup}" "$(nproc)"
round_files=()
for ((round = 1; round <= rounds; round++)); do
  round_json="${out_dir}/${scenario}.round-${round}.json"
  round_files+=("${round_json}")
  hyperfine_args=(--runs "$((runs / rounds))" --warmup "${warmup}" --export-json "${round_json}")
  ((rounds > 1)) || hyperfine_args+=(--export-markdown "${results_md}")
  for i in "${!names[@]}"; do
    hyperfine_args+=(--command-name "${names[$i]}" "${commands[$i]}")
  done
  ((rounds == 1)) || printf 'round %s of %s\n' "${round}" "${rounds}"
  # In the background so that the signal traps run while it is timing.
  hyperfine "${hyperfine_args[@]}" &
  hyperfine_pid=$!
  wait "${hyperfine_pid}"
  hyperfine_pid=""
done

# The rounds' times of each command together, as one hyperfine result (its JSON
# shape); with more than one round, the markdown table is made from them.
# shellcheck disable=SC2016 # ${} here is JavaScript template syntax
node -e '
  const fs = require("node:fs");
  const [json, md, multi, ...files] = process.argv.slice(1);
  const rounds = files.map((f) => JSON.parse(fs.readFileSync(f, "utf8")).results);
  const sorted = (a) => [...a].sort((x, y) => x - y);
  const median = (a) => { const s = sorted(a); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
  const mean = (a) => a.reduce((x, y) => x + y, 0) / a.length;
  const results = rounds[0].map((first, i) => {
    const times = rounds.flatMap((r) => r[i].times);
    const m = mean(times);
    const stddev = Math.sqrt(times.reduce((x, t) => x + (t - m) ** 2, 0) / Math.max(times.length - 1, 1));
    return { command: first.command, mean: m, stddev, median: median(times), min: Math.min(...times), max: Math.max(...times), user: mean(rounds.map((r) => r[i].user)), system: mean(rounds.map((r) => r[i].system)), times };
  });
  fs.writeFileSync(json, JSON.stringify({ results }, null, 2) + "\n");
  if (multi === "1") {
    const ms = (s) => (s * 1000).toFixed(1);
    const rows = results.map((r) => `| \`${r.command}\` | ${ms(r.median)} | ${ms(r.mean)} ± ${ms(r.stddev)} | ${ms(r.min)} | ${ms(r.max)} |`);
    fs.writeFileSync(md, ["| Command | Median [ms] | Mean [ms] | Min [ms] | Max [ms] |", "|:---|---:|---:|---:|---:|", ...rows].join("\n") + "\n");
  }
' "${results_json}" "${results_md}" "$((rounds > 1 ? 1 : 0))" "${round_files[@]}"

# hyperfine's own summary is relative to the fastest command and uses means;
# medians relative to corerun are what the README reports (the oci scenario's
# podman rows: relative to podman with corerun as its runtime).
printf '\nmedians (scenario %s):\n' "${scenario}"
# shellcheck disable=SC2016 # ${} here is JavaScript template syntax
node -e '
  const fs = require("node:fs");
  const { results } = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
  const runtimes = results.filter((r) => r.command !== "node -e 0");
  const corerun =
    results.find((r) => r.command === "corerun") ??
    runtimes.reduce((a, b) => (b.median < a.median ? b : a));
  const podmanCorerun = results.find((r) => r.command === "podman corerun");
  for (const r of results) {
    const ref = podmanCorerun && r.command.startsWith("podman ") ? podmanCorerun : corerun;
    const ms = (r.median * 1000).toFixed(1).padStart(8);
    const ratio = (r.median / ref.median).toFixed(2).padStart(6);
    console.log(`  ${r.command.padEnd(14)} ${ms} ms  ${ratio}x ${ref.command}`);
  }
' "${results_json}"
printf '\nresults: %s\n         %s\n' "${results_md}" "${results_json}"
