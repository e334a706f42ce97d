#!/usr/bin/env node
// Soak: many containers, one after another and at once, each on a bridge with a published port
// and limits; then the host must be as before. Reports whether the state root, the nftables
// table and corerun's own memory grow with the count, and the start-time median at 1, 10 and 50
// containers starting at once, next to podman's with --podman. A benchmark, not a test: run it by
// hand (as root), not in CI.
//
//   sudo tools/bench/soak.mjs [--sequential 1000] [--concurrent 50] [--churn 20] [--podman]
//
// --sequential 0 and --churn 0 leave those parts out (the concurrent part alone, for instance).
import { spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { benchArgs } from "./args.mjs";

const repo = join(dirname(fileURLToPath(import.meta.url)), "../..");
const corerunBin = process.env.CORERUN ?? join(repo, "bin/corerun");
const values = benchArgs(import.meta.url, {
  sequential: { type: "string", default: "1000" },
  concurrent: { type: "string", default: "50" },
  churn: { type: "string", default: "20" },
  podman: { type: "boolean", default: false },
});
const SEQUENTIAL = Number(values.sequential);
const CONCURRENT = Number(values.concurrent);
const CHURN = Number(values.churn);
for (const [name, n, min] of [["--sequential", SEQUENTIAL, 0], ["--concurrent", CONCURRENT, 1], ["--churn", CHURN, 0]]) {
  if (!Number.isInteger(n) || n < min) {
    console.error(`soak: ${name} ${n}: give a whole number of at least ${min}`);
    process.exit(125);
  }
}
const PODMAN = values.podman;
if (PODMAN && spawnSync("podman", ["--version"]).status !== 0) {
  console.error("soak: --podman: podman is not installed; install it with apt-get install -y podman");
  process.exit(125);
}
if (process.geteuid() !== 0) {
  console.error("soak: containers on a bridge need root; run with sudo");
  process.exit(125);
}

const tag = randomBytes(3).toString("hex");
const NET = `crsoak${tag}`;
const PARENT = `corerun-soak-${tag}`;
const BASE_PORT = 30000 + (parseInt(tag, 16) % 20000);
const root = mkdtempSync(join(tmpdir(), "corerun-soak-"));
const rootfs = spawnSync(join(repo, "tools/rootfs/build.sh"), { encoding: "utf8" }).stdout.trim().split("\n").at(-1);
const timeBin = existsSync("/usr/bin/time") ? "/usr/bin/time" : undefined;
// podman as tools/bench/run.sh runs it (runc: crun refuses hybrid cgroup hosts), on a rootfs of its own.
const PODMAN_RUN = ["--runtime", "runc", "--cgroup-manager=cgroupfs", "run", "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=20000:20000"];
const podmanRootfs = PODMAN ? mkdtempSync(join(tmpdir(), "corerun-soak-podman-rootfs-")) : undefined;
if (podmanRootfs) spawnSync(join(repo, "tools/rootfs/build.sh"), [podmanRootfs], { stdio: "ignore" });
const failures = [];

/**
 * One container: bridge, a published port (a given one, or "80": a free host port corerun picks),
 * limits. Resolves its wall time, address and peak RSS; onFirstLine runs when it has printed.
 */
function container(i, command, { publish = `${BASE_PORT + (i % 20000)}:80`, onFirstLine = () => {}, volume = [], podman = false } = {}) {
  const args = podman
    ? [
      ...PODMAN_RUN, "--rm", "--name", `soak-${tag}-${i}`, "--network", "bridge", "-p", publish, ...volume,
      "--memory", "64m", "--pids-limit", "50", "--cpus", "0.5", "--rootfs", podmanRootfs, "/bin/sh", "-c", command,
    ]
    : [
      "--root", root, "--rootfs", rootfs, "-N", NET, "-P", publish, "--cgroup-parent", PARENT, ...volume,
      "--memory", "64", "--pids", "50", "--cpu", "50", "/bin/sh", "-c", command,
    ];
  const bin = podman ? "podman" : corerunBin;
  const [file, argv] = timeBin ? [timeBin, ["-f", "rss=%M", bin, ...args]] : [bin, args];
  const start = process.hrtime.bigint();
  return new Promise((resolve) => {
    const child = spawn(file, argv, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    let firstLine;
    child.stdout.on("data", (d) => {
      out += d;
      if (firstLine === undefined) {
        firstLine = Number(process.hrtime.bigint() - start) / 1e6;
        onFirstLine();
      }
    });
    child.stderr.on("data", (d) => (err += d));
    child.on("exit", (code) => {
      const rss = /rss=(\d+)/.exec(err)?.[1];
      resolve({ code, ms: Number(process.hrtime.bigint() - start) / 1e6, startMs: firstLine, out: out.trim(), err: err.replace(/rss=\d+\n?/, "").trim(), rssKiB: rss ? Number(rss) : undefined });
    });
  });
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : NaN;
}

function tableName() {
  return `corerun_${createHash("sha256").update(root).digest("hex").slice(0, 8)}`;
}

/** What must not grow with the number of containers run. */
function footprint() {
  const entries = readdirSync(root);
  const bytes = entries.reduce((n, e) => {
    const p = join(root, e);
    const st = statSync(p);
    return n + (st.isDirectory() ? readdirSync(p).reduce((m, f) => m + statSync(join(p, f)).size, 0) : st.size);
  }, 0);
  // This root's own table: other roots on the host change theirs meanwhile.
  const nft = spawnSync("nft", ["list", "table", "ip", tableName()], { encoding: "utf8" }).stdout.split("\n").length;
  return { entries: entries.length, bytes, nftLines: nft };
}

function leases() {
  const p = join(root, "networks/networks.json");
  return existsSync(p) ? JSON.parse(readFileSync(p, "utf8")).leases : [];
}

function hostLeftovers() {
  const left = [];
  const ids = readdirSync(root).filter((n) => /^[0-9a-f]{12}$|^\.new-/.test(n));
  if (ids.length) left.push(`state directories: ${ids.join(" ")}`);
  if (leases().length) left.push(`${leases().length} leases`);
  const brif = `/sys/class/net/${NET}/brif`;
  if (existsSync(brif) && readdirSync(brif).length) left.push(`veths on ${NET}: ${readdirSync(brif).join(" ")}`);
  for (const h of readdirSync("/sys/fs/cgroup")) {
    const p = join("/sys/fs/cgroup", h, PARENT);
    if (existsSync(p) && readdirSync(p, { withFileTypes: true }).some((d) => d.isDirectory())) left.push(`cgroups under ${p}`);
  }
  const rules = spawnSync("nft", ["list", "table", "ip", tableName()], { encoding: "utf8" }).stdout;
  if (/dnat to/.test(rules)) left.push(`published-port rules in table ip ${tableName()}`);
  if (PODMAN) {
    const names = spawnSync("podman", ["ps", "-a", "--filter", `name=^soak-${tag}-`, "--format", "{{.Names}}"], { encoding: "utf8" }).stdout.trim();
    if (names) left.push(`podman containers: ${names.split("\n").join(" ")}`);
  }
  return left;
}

function check(what, ok, detail = "") {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}${detail ? `: ${detail}` : ""}`);
  if (!ok) failures.push(what);
}

try {
  // 1. One after another: nothing may grow with the count.
  if (SEQUENTIAL > 0) {
    const samples = [];
    const rss = [];
    const seqTimes = [];
    for (let i = 0; i < SEQUENTIAL; i++) {
      const r = await container(i, "ip -4 -o addr show eth0 | awk '{print $4}'");
      if (r.code !== 0) failures.push(`sequential ${i}: exit ${r.code}: ${r.err}`);
      seqTimes.push(r.ms);
      if (r.rssKiB) rss.push(r.rssKiB);
      if (i === 9 || i === SEQUENTIAL - 1 || (i + 1) % 100 === 0) samples.push({ after: i + 1, ...footprint() });
    }
    console.log(`\n${SEQUENTIAL} sequential containers: median ${median(seqTimes).toFixed(0)} ms start to end`);
    console.log("after\tentries\tbytes\tnft lines");
    for (const s of samples) console.log(`${s.after}\t${s.entries}\t${s.bytes}\t${s.nftLines}`);
    const [first, last] = [samples[0], samples.at(-1)];
    check("the state root does not grow", last.entries <= first.entries && last.bytes <= first.bytes * 1.5 + 4096, `${first.bytes} -> ${last.bytes} bytes`);
    check("the nftables ruleset does not grow", last.nftLines <= first.nftLines, `${first.nftLines} -> ${last.nftLines} lines`);
    if (rss.length >= 20) {
      const early = median(rss.slice(0, 10));
      const late = median(rss.slice(-10));
      check("corerun's own peak memory does not grow", late <= early * 1.2, `median peak RSS ${early} KiB first, ${late} KiB last`);
    } else {
      console.log("(corerun's memory is not measured: /usr/bin/time is missing or too few runs)");
    }
  }

  // 2. At once: distinct addresses and ports; the start-time median next to podman's.
  console.log("\nruntime\tat once\tmedian start (ms, to the first line)");
  const medians = [];
  for (const n of [...new Set([1, 10, CONCURRENT].filter((x) => x <= CONCURRENT))]) for (const podman of PODMAN ? [false, true] : [false]) {
    const who = podman ? "podman" : "corerun";
    // All n hold their address and their free host port (chosen by corerun) until every one has
    // started (or failed): then the leases are read, and a file in a shared volume lets them end.
    const barrier = mkdtempSync(join(tmpdir(), "corerun-soak-barrier-"));
    let settled = 0;
    let ports = [];
    const settle = () => {
      if (++settled !== n) return;
      ports = podman
        ? spawnSync("podman", ["ps", "--filter", `name=^soak-${tag}-`, "--format", "{{.Ports}}"], { encoding: "utf8" }).stdout.split("\n").filter(Boolean)
          .map((p) => /:(\d+)->\d+\/(tcp|udp)/.exec(p)).map((m) => (m ? `${m[1]}/${m[2]}` : "none"))
        : leases().flatMap((l) => l.ports.map((p) => `${p.hostPort}/${p.protocol}`));
      writeFileSync(join(barrier, "go"), "");
    };
    const wait = "ip -4 -o addr show eth0 | awk '{print $4}'; until [ -e /barrier/go ]; do sleep 0.2; done";
    const runs = await Promise.all(Array.from({ length: n }, (_, i) => container(i, wait, { publish: "80", onFirstLine: settle, volume: ["-v", `${barrier}:/barrier:ro`], podman })
      .then((r) => {
        if (r.startMs === undefined) settle();
        return r;
      })));
    if (barrier.startsWith(join(tmpdir(), "corerun-soak-barrier-"))) rmSync(barrier, { recursive: true, force: true });
    const bad = runs.filter((r) => r.code !== 0);
    if (bad.length) failures.push(`${who}: ${bad.length} of ${n} concurrent containers failed: ${bad[0].err}`);
    const addresses = runs.map((r) => r.out);
    check(`${who}, ${n} at once: ${n} distinct addresses`, new Set(addresses).size === n && addresses.every(Boolean), addresses.filter((a, i) => addresses.indexOf(a) !== i).join(" "));
    check(`${who}, ${n} at once: ${n} distinct free host ports`, ports.length === n && new Set(ports).size === n, `${ports.length} published: ${ports.filter((a, i) => ports.indexOf(a) !== i).join(" ")}`);
    const ms = median(runs.map((r) => r.startMs ?? r.ms));
    medians.push({ who, n, ms });
    console.log(`${who}\t${n}\t${ms.toFixed(0)}`);
  }
  if (PODMAN) {
    console.log("\n| at once | corerun | podman | corerun/podman |\n|---:|---:|---:|---:|");
    for (const n of [...new Set(medians.map((m) => m.n))]) {
      const [c, p] = ["corerun", "podman"].map((who) => medians.find((m) => m.who === who && m.n === n).ms);
      console.log(`| ${n} | ${c.toFixed(0)} ms | ${p.toFixed(0)} ms | ${(c / p).toFixed(2)} |`);
    }
  }

  // 3. cleanup and ps while containers start and stop: no error, no running container torn down.
  if (CHURN > 0) {
    const churn = Promise.all(Array.from({ length: CHURN }, (_, i) => container(i, "sleep 2; echo done")));
    const probes = [];
    for (let i = 0; i < 20; i++) {
      probes.push(new Promise((resolve) => {
        const args = i % 2 ? ["ps", "--root", root] : ["cleanup", "--root", root];
        const c = spawn(corerunBin, args, { stdio: ["ignore", "ignore", "pipe"] });
        let err = "";
        c.stderr.on("data", (d) => (err += d));
        c.on("exit", (code) => resolve({ args, code, err }));
      }));
      await new Promise((r) => setTimeout(r, 50));
    }
    const [ended, probed] = await Promise.all([churn, Promise.all(probes)]);
    const probeErrors = probed.filter((p) => p.code !== 0);
    check("20 concurrent cleanup and ps while containers start and stop: no error", probeErrors.length === 0, probeErrors.map((p) => `${p.args[0]}: ${p.err.trim()}`).join("; "));
    const cut = ended.filter((r) => r.code !== 0 || r.out !== "done");
    check(`no running container torn down (${CHURN} started)`, cut.length === 0, cut.map((r) => `exit ${r.code} ${r.err}`).join("; "));
  }

  // 4. The host as before.
  const left = hostLeftovers();
  check("nothing left: state, leases, veths, cgroups, published-port rules", left.length === 0, left.join("; "));
} finally {
  spawnSync(corerunBin, ["cleanup", "--force", "--root", root], { stdio: "inherit" });
  spawnSync(join(repo, "bin/corerun-net"), ["prune", "--root", root], { stdio: "ignore" });
  for (const h of readdirSync("/sys/fs/cgroup")) {
    const p = join("/sys/fs/cgroup", h, PARENT);
    try {
      if (existsSync(p)) rmdirSync(p);
    } catch {
      // not empty: reported above
    }
  }
  if (root.startsWith(join(tmpdir(), "corerun-soak-"))) rmSync(root, { recursive: true, force: true });
  if (podmanRootfs?.startsWith(join(tmpdir(), "corerun-soak-podman-rootfs-"))) {
    // build.sh records the tree it built beside the directory (DIR.tree).
    rmSync(podmanRootfs, { recursive: true, force: true });
    rmSync(`${podmanRootfs}.tree`, { force: true });
  }
}
if (failures.length) {
  console.error(`soak: ${failures.length} check(s) failed:\n${failures.slice(0, 10).join("\n")}`);
  process.exit(1);
}
