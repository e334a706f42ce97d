#!/usr/bin/env node
// Host memory of detached containers: the resident memory (RSS, and PSS, which splits shared
// pages between their users) of every corerun process that stays while 1 and then 20 detached
// containers run (`corerun run -d`: one corerun-monitor each), next to podman's conmon under
// `podman run -d`. Reported as MB per extra container. The containers' own processes (sleep)
// are not counted. A benchmark, not a test: run it by hand, as root.
//
// With --tty the containers are started with -dit (a pty each, held by the monitor, and stdin
// kept open), on both sides.
//
//   sudo tools/bench/detached.mjs [--count 20] [--tty]
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { benchArgs } from "./args.mjs";

const repo = join(dirname(fileURLToPath(import.meta.url)), "../..");
const corerun = process.env.CORERUN ?? join(repo, "bin/corerun");
const values = benchArgs(import.meta.url, { count: { type: "string", default: "20" }, tty: { type: "boolean", default: false } });
const detach = values.tty ? "-dit" : "-d";
const COUNT = Number(values.count);
if (!Number.isInteger(COUNT) || COUNT < 2) {
  console.error(`detached: --count ${values.count}: give a whole number of at least 2`);
  process.exit(125);
}
if (process.geteuid() !== 0) {
  console.error("detached: containers need root; run with sudo");
  process.exit(125);
}
const tag = randomBytes(3).toString("hex");

function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: "utf8", ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.error ?? r.stderr}`);
  return r.stdout;
}

/** RSS and PSS (kB) of every process whose command (exe basename or argv) `matches`. */
function memoryOf(matches) {
  let rss = 0;
  let pss = 0;
  let count = 0;
  for (const pid of readdirSync("/proc").filter((n) => /^\d+$/.test(n))) {
    try {
      const exe = readlinkSync(`/proc/${pid}/exe`);
      const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      if (!matches(exe, argv)) continue;
      const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
      rss += Number(/^Rss:\s+(\d+)/m.exec(rollup)?.[1] ?? 0);
      pss += Number(/^Pss:\s+(\d+)/m.exec(rollup)?.[1] ?? 0);
      count++;
    } catch {
      // gone, or a kernel thread
    }
  }
  return { rss, pss, count };
}

const mb = (kb) => (kb / 1024).toFixed(2);

/** Starts containers up to each count in `at`, measuring after each; then removes them all. */
function measure(name, start, removeAll, matches) {
  const rows = [];
  let started = 0;
  try {
    for (const n of [1, COUNT]) {
      for (; started < n; started++) start(started);
      // Let the start's transient processes (Node, podman) exit.
      spawnSync("sleep", ["1"]);
      rows.push({ n, ...memoryOf(matches) });
    }
  } finally {
    removeAll(started);
  }
  const [one, many] = rows;
  return {
    name,
    one,
    many,
    rssPer: (many.rss - one.rss) / (COUNT - 1),
    pssPer: (many.pss - one.pss) / (COUNT - 1),
  };
}

const results = [];

// corerun: a private state root and the repository's busybox rootfs.
const root = mkdtempSync(join(tmpdir(), "corerun-bench-detached-"));
const rootfs = sh(join(repo, "tools/rootfs/build.sh"), []).trim().split("\n").at(-1);
const ids = [];
try {
  results.push(measure(
    `corerun run ${detach} (corerun-monitor)`,
    () => ids.push(sh(corerun, ["run", "--root", root, detach, "--network", "none", "--rootfs", rootfs, "/bin/sleep", "1000"]).trim()),
    () => {
      if (ids.length) sh(corerun, ["stop", "--root", root, "-t", "0", ...ids]);
      if (ids.length) sh(corerun, ["rm", "--root", root, ...ids]);
    },
    (exe, argv) => argv.some((a) => a.startsWith(root)) && !exe.endsWith("/sleep"),
  ));
} finally {
  rmSync(root, { recursive: true, force: true });
}

// podman with runc (crun refuses this hybrid-cgroup host), as tools/bench/run.sh calls it.
if (spawnSync("podman", ["--version"]).status === 0) {
  const podRootfs = mkdtempSync(join(tmpdir(), "corerun-bench-podman-rootfs-"));
  sh(join(repo, "tools/rootfs/build.sh"), [podRootfs]);
  const names = [];
  try {
    results.push(measure(
      `podman run ${detach} (conmon)`,
      (i) => {
        const name = `corerun-bench-${tag}-${i}`;
        sh("podman", ["--runtime", "runc", "--cgroup-manager=cgroupfs", "run", detach, "--name", name, "--network", "none",
          "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=20000:20000", "--rootfs", podRootfs, "/bin/sleep", "1000"]);
        names.push(name);
      },
      () => {
        if (names.length) spawnSync("podman", ["--runtime", "runc", "--cgroup-manager=cgroupfs", "rm", "-f", "-t", "0", ...names], { stdio: "ignore" });
      },
      (exe, argv) => exe.endsWith("/conmon") && argv.some((a) => a.includes(`corerun-bench-${tag}-`)),
    ));
  } finally {
    // build.sh records the tree it built beside the directory (DIR.tree).
    if (existsSync(podRootfs)) rmSync(podRootfs, { recursive: true, force: true });
    rmSync(`${podRootfs}.tree`, { force: true });
  }
} else {
  console.error("detached: skipping podman: not installed; install it with: DEBIAN_FRONTEND=noninteractive apt-get install -y podman");
}

console.log(`| what stays per container | processes (1 / ${COUNT}) | RSS with 1 | RSS with ${COUNT} | RSS per extra container | PSS per extra container |`);
console.log("|---|---|---|---|---|---|");
for (const r of results) {
  console.log(`| ${r.name} | ${r.one.count} / ${r.many.count} | ${mb(r.one.rss)} MB | ${mb(r.many.rss)} MB | ${mb(r.rssPer)} MB | ${mb(r.pssPer)} MB |`);
}
if (results.length === 2) console.log(`\nRSS per extra container, corerun / podman: ${(results[0].rssPer / results[1].rssPer).toFixed(2)}`);
