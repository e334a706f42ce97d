#!/usr/bin/env bash
# TCP throughput into a corerun container through a published port (nftables
# DNAT) next to straight to the container's address, measured with iperf3.
# This is a benchmark, not a test: it reports the ratio published/direct
# against the 90 % target and does not fail when the target is missed.
#
#   tools/bench/throughput.sh [--time SECONDS] [--rounds N] [--port PORT] [--pin CPU]
#
# See tools/bench/README.md.
set -euo pipefail

script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
repo_root="$(cd -- "${script_dir}/../.." && pwd -P)"
readonly out_dir="${repo_root}/build/bench"
# CORERUN lets another build of corerun be measured without moving it.
readonly corerun="${CORERUN:-${repo_root}/bin/corerun}"
# The server always listens on iperf3's default port inside the container;
# only the host side of the published port is configurable.
readonly ctr_port=5201
readonly target_percent=90

die() {
  printf 'bench: %s\n' "$*" >&2
  exit 1
}

note() {
  printf 'bench: %s\n' "$*" >&2
}

usage() {
  cat <<EOF
usage: tools/bench/throughput.sh [--time SECONDS] [--rounds N] [--port PORT] [--pin CPU]

Starts an iperf3 server in a corerun container (bridge network, host port
PORT published to container port ${ctr_port}) and measures TCP throughput from
the host to it three ways:

  published  127.0.0.1:PORT, through the DNAT and masquerade
  gateway    the host's own bridge address:PORT, through the DNAT only
  direct     the container's address:${ctr_port}, no NAT

and reports published/direct as a percentage (target >= ${target_percent} %).

  --time SECONDS  measured seconds per iperf3 run, after 1 s that iperf3
                  leaves out for TCP ramp-up (default 5)
  --rounds N      runs per path, interleaved; medians are reported (default 5)
  --port PORT     host port to publish (default ${ctr_port})
  --pin CPU       run the iperf3 client and server on CPU CPU only: steadier
                  numbers that show the CPU cost of each path on one core
                  (default: the scheduler places them)

Environment: CORERUN=PATH measures that binary instead of bin/corerun.

Results: build/bench/throughput.md and build/bench/throughput.json
EOF
}

seconds=5
rounds=5
host_port="${ctr_port}"
pin=""
while (($# > 0)); do
  case "$1" in
    --time)
      [[ $# -ge 2 ]] || die "--time needs a value"
      seconds="$2"
      shift
      ;;
    --time=*) seconds="${1#*=}" ;;
    --rounds)
      [[ $# -ge 2 ]] || die "--rounds needs a value"
      rounds="$2"
      shift
      ;;
    --rounds=*) rounds="${1#*=}" ;;
    --port)
      [[ $# -ge 2 ]] || die "--port needs a value"
      host_port="$2"
      shift
      ;;
    --port=*) host_port="${1#*=}" ;;
    --pin)
      [[ $# -ge 2 ]] || die "--pin needs a value"
      pin="$2"
      shift
      ;;
    --pin=*) pin="${1#*=}" ;;
    -h | --help)
      usage
      exit 0
      ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
  shift
done

[[ "${seconds}" =~ ^[1-9][0-9]*$ ]] || die "--time must be a positive integer"
[[ "${rounds}" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"
if ! [[ "${host_port}" =~ ^[1-9][0-9]*$ ]] || ((host_port > 65535)); then
  die "--port must be between 1 and 65535"
fi
affinity=()
if [[ -n "${pin}" ]]; then
  if ! [[ "${pin}" =~ ^[0-9]+$ ]] || ((pin >= $(nproc))); then
    die "--pin must be a CPU number below $(nproc)"
  fi
  # iperf3's client passes the second number on to the server.
  affinity=(--affinity "${pin},${pin}")
fi

# Namespaces, cgroups, veths and nftables rules all need root.
[[ "$(id -u)" -eq 0 ]] || die "must run as root"
if ! iperf3_bin="$(command -v iperf3)"; then
  printf 'bench: iperf3 is not installed; install it with: apt-get install -y iperf3\n' >&2
  exit 1
fi
command -v node >/dev/null || die "node is not on PATH"
command -v nsenter >/dev/null || die "nsenter is not on PATH (util-linux)"
command -v ip >/dev/null || die "ip is not on PATH (iproute2)"
[[ -x "${corerun}" ]] || die "${corerun} does not exist (build it first: npm run build)"

mkdir -p -- "${out_dir}"

work="$(mktemp -d -t corerun-throughput.XXXXXX)"
[[ -n "${work}" && -d "${work}" ]] || die "mktemp failed"
# The PID makes the name unique among concurrent runs of this script.
readonly name="corerun-bench-tp-$$"
server_pid=""
server_id=""
client_pid=""
server_log="${work}/server.log"

# Reads the state of our container from `corerun ps --json`; prints
# "ID INIT_PID" or nothing while it is not listed (yet or any more).
container_state() {
  # shellcheck disable=SC2016 # ${} here is JavaScript template syntax
  "${corerun}" ps --json 2>/dev/null | node -e '
    let text = "";
    process.stdin.on("data", (d) => (text += d));
    process.stdin.on("end", () => {
      const list = JSON.parse(text || "[]");
      const c = list.find((x) => x.config && x.config.name === process.argv[1]);
      if (c && c.init) console.log(`${c.id} ${c.init.pid}`);
    });
  ' "${name}" || true
}

# True while the server's corerun process, our own child, has not exited.
server_running() {
  [[ -n "${server_pid}" ]] && kill -0 "${server_pid}" 2>/dev/null
}

# Waits up to $1 tenths of a second for the server's corerun to exit.
wait_server_exit() {
  local tenths="$1"
  while server_running && ((tenths > 0)); do
    sleep 0.1
    tenths=$((tenths - 1))
  done
  ! server_running
}

stop_server() {
  [[ -n "${server_pid}" ]] || return 0
  if server_running; then
    # A container that is still starting may not be listed under its name
    # yet, so the kill is retried for a few seconds.
    local tries=30
    until "${corerun}" kill "${name}" >/dev/null 2>&1 || ! server_running || ((tries == 0)); do
      sleep 0.2
      tries=$((tries - 1))
    done
    if ! wait_server_exit 150; then
      # corerun forwards TERM to the container's first process, and iperf3
      # exits on TERM.
      note "corerun kill ${name} did not stop the server; sending TERM to corerun (pid ${server_pid})"
      kill -TERM "${server_pid}" 2>/dev/null || true
      if ! wait_server_exit 100; then
        note "corerun (pid ${server_pid}) still running; killing it"
        kill -KILL "${server_pid}" 2>/dev/null || true
        wait_server_exit 50 || true
        # A corerun that was SIGKILLed cannot tear down its container.
        if [[ -n "${server_id}" ]]; then
          "${corerun}" cleanup "${server_id}" >&2 || true
        fi
      fi
    fi
  fi
  # Reaps it; its exit status is 137 after the SIGKILL, which is expected.
  wait "${server_pid}" 2>/dev/null || true
  server_pid=""
}

# Lists anything of our container that outlived its corerun.
leftovers() {
  local state
  state="$(container_state)"
  [[ -z "${state}" ]] || printf 'container %s is still listed by corerun ps\n' "${name}"
  [[ -n "${server_id}" ]] || return 0
  # corerun names the host end of a container's veth "cr" + its id.
  if ip link show "cr${server_id}" >/dev/null 2>&1; then
    printf 'veth cr%s still exists\n' "${server_id}"
  fi
  # corerun tags each published port's DNAT rule with the container id.
  if nft list ruleset 2>/dev/null | grep -qF "\"${server_id}\""; then
    printf 'an nftables rule tagged %s still exists\n' "${server_id}"
  fi
  # corerun's state root, as corerun itself chooses it.
  local root="${CORERUN_ROOT:-/run/corerun}"
  if [[ -e "${root}/${server_id}" ]]; then
    printf 'state directory %s/%s still exists\n' "${root}" "${server_id}"
  fi
  return 0
}

cleanup() {
  local status=$? left
  if [[ -n "${client_pid}" ]] && kill -0 "${client_pid}" 2>/dev/null; then
    kill "${client_pid}" 2>/dev/null || true
    wait "${client_pid}" 2>/dev/null || true
  fi
  stop_server
  left="$(leftovers)"
  if [[ -n "${left}" ]]; then
    note "left behind after the server stopped:"
    printf '    %s\n' "${left}" >&2
    ((status != 0)) || status=1
  fi
  if [[ -n "${work}" && -d "${work}" ]]; then
    rm -rf -- "${work:?}"
  fi
  exit "${status}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A private copy of the rootfs: corerun creates the -v mount points that are
# missing (lib, lib64, usr/bin/iperf3) in the rootfs while the container runs,
# which must not show up in the tree the e2e tests use.
rootfs="$("${repo_root}/tools/rootfs/build.sh" "${out_dir}/rootfs-throughput" | tail -n 1)"

# iperf3 is dynamically linked and the busybox rootfs has no libraries: the
# binary and, read-only, every directory its libraries are loaded from go in.
# Each library's directory is mounted both where ldd found it and where its
# symlinks resolve to, because the loader and the libraries can be reached
# through symlinks such as /lib64/ld-linux-x86-64.so.2 -> /lib/x86_64-linux-gnu/.
lib_paths="$(ldd "${iperf3_bin}" | awk '
  $2 == "=>" && $3 == "not" { print "missing:" $1; next }
  $2 == "=>" && $3 ~ /^\// { print $3; next }
  $1 ~ /^\// { print $1 }
')"
if grep -q '^missing:' <<<"${lib_paths}"; then
  die "iperf3 needs libraries that ldd cannot find: $(grep '^missing:' <<<"${lib_paths}" | cut -d: -f2 | tr '\n' ' ')"
fi
lib_dirs="$(
  while IFS= read -r path; do
    [[ -n "${path}" ]] || continue
    dirname -- "${path}"
    dirname -- "$(readlink -f -- "${path}")"
  done <<<"${lib_paths}" | sort -u
)"
volumes=(-v "$(readlink -f -- "${iperf3_bin}"):/usr/bin/iperf3:ro")
while IFS= read -r dir; do
  [[ -n "${dir}" ]] || continue
  volumes+=(-v "$(readlink -f -- "${dir}"):${dir}:ro")
done <<<"${lib_dirs}"

# corerun checks that the command exists in the rootfs before the volumes are
# mounted, so iperf3 is started through the rootfs's own /bin/sh.
if ! "${corerun}" --rootfs "${rootfs}" --network none "${volumes[@]}" \
  /bin/sh -c 'exec /usr/bin/iperf3 --version' >/dev/null 2>"${work}/preflight.err"; then
  note "iperf3 does not run in the container with these mounts: ${volumes[*]}"
  sed -e 's/^/    | /' -- "${work}/preflight.err" >&2
  exit 1
fi

# --forceflush: the accepted-connection lines are read while the server runs.
"${corerun}" --rootfs "${rootfs}" --network bridge --name "${name}" \
  -P "${host_port}:${ctr_port}" "${volumes[@]}" \
  /bin/sh -c "exec /usr/bin/iperf3 --server --port ${ctr_port} --forceflush" \
  >"${server_log}" 2>&1 &
server_pid=$!

server_failed() {
  note "$1; server output:"
  sed -e 's/^/    | /' -- "${server_log}" >&2
  exit 1
}

# Up to 30 s: the first start after boot also creates the bridge network.
init_pid=""
for ((tenths = 300; tenths > 0; tenths--)); do
  server_running || server_failed "the server container exited"
  if [[ -z "${server_id}" ]]; then
    read -r server_id init_pid <<<"$(container_state)" || true
  fi
  if [[ -n "${server_id}" ]] && grep -q 'Server listening' -- "${server_log}"; then
    break
  fi
  sleep 0.1
done
((tenths > 0)) || server_failed "the server did not start listening within 30 s"

# The container's own view of its network: eth0's address and its default
# gateway, which is the host's address on the bridge.
ctr_addr="$(nsenter -t "${init_pid}" -n ip -4 -o addr show dev eth0 |
  awk '{ split($4, a, "/"); print a[1]; exit }')"
gateway="$(nsenter -t "${init_pid}" -n ip -4 route show default |
  awk '{ print $3; exit }')"
[[ -n "${ctr_addr}" ]] || server_failed "could not read the container's eth0 address"
[[ -n "${gateway}" ]] || server_failed "could not read the container's default gateway"

paths=(published gateway direct)
declare -A path_host=([published]=127.0.0.1 [gateway]="${gateway}" [direct]="${ctr_addr}")
declare -A path_port=([published]="${host_port}" [gateway]="${host_port}" [direct]="${ctr_port}")

accepted() {
  grep -c '^Accepted connection from' -- "${server_log}" || true
}

# One iperf3 run; the result is the JSON file $2. The server's log must show
# one more accepted connection afterwards, which proves that the run reached
# the container and not something else listening on the host.
measure() {
  local path="$1" out="$2" before attempt rc
  before="$(accepted)"
  for attempt in 1 2; do
    # -O 1 leaves the first second (slow start) out of the result. In the
    # background so that the signal traps run while it is measuring.
    iperf3 --client "${path_host[${path}]}" --port "${path_port[${path}]}" \
      --time "${seconds}" --omit 1 "${affinity[@]}" --json >"${out}" 2>"${work}/client.err" &
    client_pid=$!
    rc=0
    wait "${client_pid}" || rc=$?
    client_pid=""
    ((rc != 0)) || break
    if ((attempt == 2)); then
      note "iperf3 to ${path_host[${path}]}:${path_port[${path}]} failed (exit ${rc}):"
      sed -e 's/^/    | /' -- "${work}/client.err" "${out}" >&2
      exit 1
    fi
    # The server takes a moment to accept the next test after the last.
    sleep 1
  done
  (($(accepted) > before)) ||
    die "the ${path} run did not reach the container's server (${path_host[${path}]}:${path_port[${path}]})"
}

gbps() {
  node -e '
    const r = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8"));
    console.log((r.end.sum_received.bits_per_second / 1e9).toFixed(2));
  ' "$1"
}

printf '\ncorerun throughput: container %s at %s, host port %s published; %s s per run (+1 s omitted), %s rounds, %s cores%s\n\n' \
  "${name}" "${ctr_addr}" "${host_port}" "${seconds}" "${rounds}" "$(nproc)" "${pin:+, pinned to CPU ${pin}}"

# Rounds are interleaved so that a slow phase of the machine hits every path
# alike instead of one.
for ((round = 1; round <= rounds; round++)); do
  for path in "${paths[@]}"; do
    out="${work}/${path}-${round}.json"
    measure "${path}" "${out}"
    printf '  round %d/%d  %-9s  %-15s  %6s Gbit/s\n' "${round}" "${rounds}" "${path}" \
      "${path_host[${path}]}:${path_port[${path}]}" "$(gbps "${out}")"
  done
done

stop_server

# A pinned run answers another question, so it does not overwrite the
# default run's results.
result_base="${out_dir}/throughput${pin:+-pinned}"
results_json="${result_base}.json"
results_md="${result_base}.md"
# Receiver-side throughput is what arrived in the container; medians per path
# and the ratio of the published path's median to the direct one's.
# shellcheck disable=SC2016 # ${} here is JavaScript template syntax
BENCH_KERNEL="$(uname -r)" BENCH_CORES="$(nproc)" BENCH_CORERUN="${corerun}" \
  BENCH_NAME="${name}" BENCH_ADDRESS="${ctr_addr}" BENCH_GATEWAY="${gateway}" \
  BENCH_PUBLISHED="${host_port}:${ctr_port}/tcp" BENCH_PIN="${pin}" \
  BENCH_SECONDS="${seconds}" BENCH_ROUNDS="${rounds}" BENCH_TARGET="${target_percent}" \
  BENCH_PATHS="$(for path in "${paths[@]}"; do
    printf '%s %s %s\n' "${path}" "${path_host[${path}]}" "${path_port[${path}]}"
  done)" \
  node -e '
  const fs = require("node:fs");
  const [work, jsonOut, mdOut] = process.argv.slice(1);
  const env = process.env;
  const rounds = Number(env.BENCH_ROUNDS);
  const target = Number(env.BENCH_TARGET);
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    const mid = s.length >> 1;
    return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  };
  const gb = (bps) => Math.round(bps / 1e7) / 100;
  const route = {
    published: "127.0.0.1, through DNAT and masquerade",
    gateway: "host bridge address, through DNAT",
    direct: "container address, no NAT",
  };
  let iperf3 = "";
  const medianBps = {};
  const paths = env.BENCH_PATHS.trim().split("\n").map((line) => {
    const [name, host, port] = line.split(" ");
    const runs = [];
    for (let r = 1; r <= rounds; r++) {
      const j = JSON.parse(fs.readFileSync(`${work}/${name}-${r}.json`, "utf8"));
      iperf3 ||= j.start.version;
      runs.push(j.end);
    }
    medianBps[name] = median(runs.map((e) => e.sum_received.bits_per_second));
    return {
      name,
      route: route[name],
      target: `${host}:${port}`,
      median_gbps: gb(medianBps[name]),
      runs: runs.map((e) => ({
        received_gbps: gb(e.sum_received.bits_per_second),
        sent_gbps: gb(e.sum_sent.bits_per_second),
        retransmits: e.sum_sent.retransmits ?? null,
      })),
    };
  });
  const ratio = Math.round((medianBps.published / medianBps.direct) * 1000) / 10;
  const pin = env.BENCH_PIN === "" ? null : Number(env.BENCH_PIN);
  const result = {
    date: new Date().toISOString(),
    machine: { kernel: env.BENCH_KERNEL, cores: Number(env.BENCH_CORES), node: process.version, iperf3 },
    corerun: env.BENCH_CORERUN,
    seconds_per_run: Number(env.BENCH_SECONDS),
    omitted_seconds: 1,
    rounds,
    pinned_cpu: pin,
    container: {
      name: env.BENCH_NAME,
      address: env.BENCH_ADDRESS,
      gateway: env.BENCH_GATEWAY,
      published: env.BENCH_PUBLISHED,
    },
    paths,
    published_vs_direct_percent: ratio,
    target_percent: target,
    target_met: ratio >= target,
  };
  fs.writeFileSync(jsonOut, JSON.stringify(result, null, 2) + "\n");
  const md = [
    "# corerun throughput: published port vs. container address",
    "",
    `${result.date}; Linux ${env.BENCH_KERNEL}, ${env.BENCH_CORES} cores, ${iperf3}; ` +
      `${env.BENCH_SECONDS} s per run after 1 s omitted, ${rounds} rounds interleaved, ` +
      (pin === null ? "client and server placed by the scheduler" : `client and server pinned to CPU ${pin}`) +
      "; TCP from the host into the container, receiver-side throughput.",
    "",
    "| Path | Route | Target | Median Gbit/s | Runs Gbit/s |",
    "| ---- | ----- | ------ | ------------: | ----------- |",
    ...paths.map(
      (p) =>
        `| ${p.name} | ${p.route} | ${p.target} | ${p.median_gbps.toFixed(2)} | ` +
        `${p.runs.map((r) => r.received_gbps.toFixed(2)).join(", ")} |`,
    ),
    "",
    `published / direct: **${ratio.toFixed(1)} %** ` +
      `(target >= ${target} %: ${result.target_met ? "met" : "not met"})`,
    "",
  ].join("\n");
  fs.writeFileSync(mdOut, md);
  process.stdout.write("\n" + md);
' "${work}" "${results_json}" "${results_md}"
printf '\nresults: %s\n         %s\n' "${results_md}" "${results_json}"
