#!/usr/bin/env node
// Start+stop time of one container while N other containers run, and while N networks exist,
// for corerun and podman side by side. Issue 11's "start time flat in the number of running
// containers and networks" means: the N others sit idle, and one more start costs what it cost
// with one. (N starts at once is another question, CPU-bound on a small machine: soak.mjs.)
//
//   sudo tools/bench/flat.mjs [--counts 1,10,50] [--runs 10] [--warmup 1] [--phases containers,networks] [--descending] [--no-podman]
//
// Each count times four commands in rounds (each command once per round, in turn): corerun and
// podman, each with a bridge, a published port and limits, and with --network none and limits,
// and `node -e 0` as a gauge of the machine's load. The N others are added between
// counts (never removed and restarted), each `run -d` on the bridge with a published port of its
// own (-P 80: a free host port) and the same limits, so leases, nftables rules, veths, cgroups and
// state records grow with N. A benchmark, not a test: it reports numbers and never fails because
// one runtime is slower. See tools/bench/README.md.
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { benchArgs } from "./args.mjs";

const repo = join(dirname(fileURLToPath(import.meta.url)), "../..");
const corerun = process.env.CORERUN ?? join(repo, "bin/corerun");
const outDir = join(repo, "build/bench");
const values = benchArgs(import.meta.url, {
  counts: { type: "string", default: "1,10,50" },
  runs: { type: "string", default: "10" },
  warmup: { type: "string", default: "1" },
  phases: { type: "string", default: "containers,networks" },
  "no-podman": { type: "boolean", default: false },
  descending: { type: "boolean", default: false },
});
const COUNTS = values.counts.split(",").map(Number);
const RUNS = Number(values.runs);
const WARMUP = Number(values.warmup);
const PHASES = values.phases.split(",");
// Largest count first, then others removed: a load on the machine that falls during the run then
// favours the small counts instead of the large ones; run both ways to see through it.
const ORDER = values.descending ? [...COUNTS].reverse() : COUNTS;
function usage(msg) {
  console.error(`flat: ${msg}`);
  process.exit(125);
}
if (!COUNTS.every((n) => Number.isInteger(n) && n >= 0) || COUNTS.some((n, i) => i > 0 && n <= COUNTS[i - 1])) usage(`--counts ${values.counts}: give increasing whole numbers, e.g. 1,10,50`);
if (!Number.isInteger(RUNS) || RUNS < 2) usage(`--runs ${values.runs}: give a whole number of at least 2`);
if (!Number.isInteger(WARMUP) || WARMUP < 0) usage(`--warmup ${values.warmup}: give a whole number`);
for (const p of PHASES) if (p !== "containers" && p !== "networks") usage(`--phases ${values.phases}: use containers, networks or both`);
if (process.geteuid() !== 0) usage("containers on a bridge need root; run with sudo");
const withPodman = !values["no-podman"] && spawnSync("podman", ["--version"]).status === 0;
if (!values["no-podman"] && !withPodman) console.error("flat: podman is not installed: corerun only (apt-get install -y podman)");

const tag = randomBytes(3).toString("hex");
const PARENT = `corerun-flat-${tag}`;
const PORT = 18000 + (parseInt(tag, 16) % 2000);
const work = mkdtempSync(join(tmpdir(), "corerun-flat-"));
const root = join(work, "root");
const crRootfs = join(work, "rootfs-corerun");
const podRootfs = join(work, "rootfs-podman");
// Each runtime gets its own copy: both add mount-point files (etc/hostname, …) to the rootfs.
for (const dir of [crRootfs, podRootfs]) sh(join(repo, "tools/rootfs/build.sh"), [dir]);

function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: "utf8", ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: exit ${r.status}: ${(r.stderr ?? "").trim() || r.error}`);
  return r.stdout;
}

const q = (a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`);
const limits = ["--memory", "64", "--pids", "50", "--cpu", "50"];
const podLimits = ["--memory", "64m", "--pids-limit", "50", "--cpus", "0.5"];
const cr = (...args) => [corerun, "--root", root, "--rootfs", crRootfs, "--cgroup-parent", PARENT, ...args];
const podman = ["podman", "--runtime", "runc", "--cgroup-manager=cgroupfs"];
const pod = (...args) => [...podman, "run", "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=20000:20000", ...args];

/** The four timed commands: one container running /bin/true, started and removed. */
function probes() {
  const rows = [
    ["corerun port", cr("-P", `${PORT}:80`, ...limits, "/bin/true")],
    ["corerun none", cr("--network", "none", ...limits, "/bin/true")],
  ];
  if (withPodman) {
    rows.push(
      ["podman port", pod("--rm", "--network", "bridge", "-p", `${PORT + 1}:80`, ...podLimits, "--rootfs", podRootfs, "/bin/true")],
      ["podman none", pod("--rm", "--network", "none", ...podLimits, "--rootfs", podRootfs, "/bin/true")],
    );
  }
  return rows;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/**
 * Times the probes: every round runs each command once, in turn, so that a change in the load of
 * the (shared) machine falls on all of them alike; the median of the rounds is reported. Each
 * command is tried once first, so a failing one never shows up as a fast one.
 */
function time(label) {
  const rows = [...probes(), ["node -e 0", [process.execPath, "-e", "0"]]];
  for (const [, argv] of rows) sh(argv[0], argv.slice(1), { stdio: ["ignore", "ignore", "pipe"] });
  const samples = Object.fromEntries(rows.map(([name]) => [name, []]));
  for (let round = -WARMUP; round < RUNS; round++) {
    for (const [name, argv] of rows) {
      const t = process.hrtime.bigint();
      sh(argv[0], argv.slice(1), { stdio: ["ignore", "ignore", "pipe"] });
      if (round >= 0) samples[name].push(Number(process.hrtime.bigint() - t) / 1e6);
    }
  }
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, `flat-${label}.json`), `${JSON.stringify(samples)}\n`);
  // One more start of each corerun row with its trace, to see which step grows with N.
  for (const [name, argv] of rows.filter(([n]) => n.startsWith("corerun"))) {
    const trace = join(outDir, `flat-${label}-${name.replace(" ", "-")}.trace.json`);
    sh(argv[0], [...argv.slice(1, -1), "--trace", trace, argv.at(-1)], { stdio: ["ignore", "ignore", "pipe"] });
  }
  const medians = Object.fromEntries(Object.entries(samples).map(([name, xs]) => [name, median(xs)]));
  console.log(Object.entries(medians).map(([name, ms]) => `  ${name.padEnd(14)} ${ms.toFixed(0)} ms`).join("\n"));
  return medians;
}

const loadavg = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
const table = [];
const crIds = [];
const podNames = [];
const crNets = [];
const podNets = [];

/** What must be gone at the end: container state, leases, veths, cgroups, rules, podman's containers. */
function leftovers() {
  const left = [];
  const ids = existsSync(root) ? readdirSync(root).filter((n) => /^[0-9a-f]{12}$|^\.new-/.test(n)) : [];
  if (ids.length) left.push(`state directories: ${ids.join(" ")}`);
  const records = join(root, "networks/networks.json");
  if (existsSync(records)) {
    const r = JSON.parse(readFileSync(records, "utf8"));
    if (r.leases.length) left.push(`${r.leases.length} leases`);
    if (r.networks.length) left.push(`networks ${r.networks.map((n) => n.name).join(" ")}`);
  }
  const veths = readdirSync("/sys/class/net").filter((n) => crIds.some((id) => n === `cr${id.slice(0, 12)}`));
  if (veths.length) left.push(`veths ${veths.join(" ")}`);
  for (const h of readdirSync("/sys/fs/cgroup")) {
    const p = join("/sys/fs/cgroup", h, PARENT);
    if (existsSync(p)) left.push(`cgroup ${p}`);
  }
  const table_ = `corerun_${createHash("sha256").update(root).digest("hex").slice(0, 8)}`;
  if (spawnSync("nft", ["list", "table", "ip", table_]).status === 0) left.push(`nft table ip ${table_}`);
  if (withPodman) {
    const names = sh(podman[0], [...podman.slice(1), "ps", "-a", "--format", "{{.Names}}"]).split("\n").filter((n) => n.includes(`flat-${tag}`));
    if (names.length) left.push(`podman containers ${names.join(" ")}`);
    const nets = sh(podman[0], [...podman.slice(1), "network", "ls", "--format", "{{.Name}}"]).split("\n").filter((n) => n.startsWith(`pf${tag}`));
    if (nets.length) left.push(`podman networks ${nets.join(" ")}`);
  }
  return left;
}

function removeAll() {
  if (crIds.length) spawnSync(corerun, ["rm", "-f", "--root", root, ...crIds], { stdio: "ignore" });
  spawnSync(corerun, ["cleanup", "--force", "--root", root], { stdio: "inherit" });
  spawnSync(join(repo, "bin/corerun-net"), ["prune", "--root", root], { stdio: "inherit" });
  if (withPodman) {
    if (podNames.length) spawnSync(podman[0], [...podman.slice(1), "rm", "-f", "-t", "0", ...podNames], { stdio: "ignore" });
    if (podNets.length) spawnSync(podman[0], [...podman.slice(1), "network", "rm", "-f", ...podNets], { stdio: "ignore" });
  }
  for (const h of readdirSync("/sys/fs/cgroup")) {
    const p = join("/sys/fs/cgroup", h, PARENT);
    try {
      if (existsSync(p)) rmdirSync(p);
    } catch {
      // not empty: reported by leftovers()
    }
  }
}

let failed = false;
try {
  if (PHASES.includes("containers")) {
    for (const n of ORDER) {
      // N others: detached, bridged, a free published port each, limits.
      while (crIds.length > n) {
        sh(corerun, ["rm", "-f", "--root", root, crIds.pop()]);
        if (withPodman) sh(podman[0], [...podman.slice(1), "rm", "-f", "-t", "0", podNames.pop()], { stdio: ["ignore", "ignore", "pipe"] });
      }
      for (let i = crIds.length; i < n; i++) {
        crIds.push(sh(corerun, ["run", "-d", ...cr("-P", "80", ...limits, "/bin/sleep", "1000000").slice(1)]).trim());
        if (withPodman) {
          const name = `flat-${tag}-${i}`;
          sh(podman[0], [...pod("-d", "--name", name, "--network", "bridge", "-p", "80", ...podLimits, "--rootfs", podRootfs, "/bin/sleep", "1000000").slice(1)]);
          podNames.push(name);
        }
      }
      const running = sh(corerun, ["ps", "--root", root, "--json"]);
      const count = JSON.parse(running).filter((s) => s.status === "running").length;
      if (count !== n) throw new Error(`expected ${n} running corerun containers, found ${count}`);
      console.log(`\n== ${n} running containers each (load average ${loadavg()})`);
      table.push({ phase: "containers", n, load: loadavg(), ...time(`containers-${n}`) });
    }
    removeAll();
    crIds.length = 0;
    podNames.length = 0;
  }
  if (PHASES.includes("networks")) {
    for (const n of ORDER) {
      // corerun makes a network with its first container (the bridge and its record stay);
      // podman's `network create` writes its config, and netavark makes the bridge on first use.
      while (crNets.length > n) {
        sh(join(repo, "bin/corerun-net"), ["rm", "--root", root, crNets.pop()], { stdio: ["ignore", "ignore", "pipe"] });
        if (withPodman) sh(podman[0], [...podman.slice(1), "network", "rm", podNets.pop()], { stdio: ["ignore", "ignore", "pipe"] });
      }
      for (let i = crNets.length; i < n; i++) {
        const name = `cf${tag}${i}`;
        sh(corerun, cr("-N", name, "/bin/true").slice(1));
        crNets.push(name);
        if (withPodman) {
          const pname = `pf${tag}${i}`;
          sh(podman[0], [...podman.slice(1), "network", "create", pname], { stdio: ["ignore", "ignore", "pipe"] });
          podNets.push(pname);
        }
      }
      console.log(`\n== ${n} networks each besides the default (load average ${loadavg()})`);
      table.push({ phase: "networks", n, load: loadavg(), ...time(`networks-${n}`) });
    }
  }
} catch (err) {
  console.error(`flat: ${err.message}`);
  failed = true;
} finally {
  removeAll();
  const left = leftovers();
  if (left.length) {
    console.error(`flat: left on the host: ${left.join("; ")}`);
    failed = true;
  } else if (work.startsWith(join(tmpdir(), "corerun-flat-"))) {
    rmSync(work, { recursive: true, force: true });
  }
}

const f = (ms) => (ms === undefined ? "–" : `${ms.toFixed(0)} ms`);
const ratio = (a, b) => (a === undefined || b === undefined ? "–" : (a / b).toFixed(2));
const lines = [
  "| what exists | N | corerun port | podman port | corerun/podman | corerun none | podman none | corerun/podman | `node -e 0` | load average |",
  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
  ...table.map((r) => `| ${r.phase === "containers" ? "running containers" : "networks"} | ${r.n} | ${f(r["corerun port"])} | ${f(r["podman port"])} | ${ratio(r["corerun port"], r["podman port"])} | ${f(r["corerun none"])} | ${f(r["podman none"])} | ${ratio(r["corerun none"], r["podman none"])} | ${f(r["node -e 0"])} | ${r.load} |`),
];
for (const phase of ["containers", "networks"]) {
  const rows = table.filter((r) => r.phase === phase).sort((a, b) => a.n - b.n);
  if (rows.length < 2) continue;
  const [first, last] = [rows[0], rows.at(-1)];
  const growth = (k) => ratio(last[k], first[k]);
  lines.push("", `${phase}: N=${last.n} against N=${first.n}: corerun port ${growth("corerun port")}x, corerun none ${growth("corerun none")}x${withPodman ? `, podman port ${growth("podman port")}x, podman none ${growth("podman none")}x` : ""}`);
}
console.log(`\nMedians of ${RUNS} rounds, one container started and removed:\n`);
console.log(lines.join("\n"));
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, "flat.md"), `${lines.join("\n")}\n`);
writeFileSync(join(outDir, "flat.json"), `${JSON.stringify(table, null, 2)}\n`);
process.exit(failed ? 1 : 0);
