/**
 * Shared helpers for the e2e suite: real containers, as root, on the busybox rootfs that
 * tools/rootfs/build.sh makes. Each test uses its own state root so that it can check that
 * nothing is left behind by the containers it started, and only by those.
 */
import { spawn, spawnSync, execFileSync, type SpawnSyncOptions } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { TestContext } from "node:test";
import { devNumbers } from "@corerun/cgroup";
import { netPaths, readRecords } from "@corerun/net";

export const REPO = join(dirname(fileURLToPath(import.meta.url)), "..");
export const BIN = join(REPO, "bin");

let rootfs: string | undefined;
/**
 * The busybox rootfs, built once per run (offline, idempotent). Every test file shares it, so
 * each checks at its first use that it is still as built (build.sh --check names what differs):
 * a file that an earlier test left in it fails the next file, not some later assertion.
 */
export function busyboxRootfs(): string {
  rootfs ??= execFileSync(join(REPO, "tools/rootfs/build.sh"), ["--check"], { encoding: "utf8" }).trim().split("\n").at(-1)!;
  return rootfs;
}

export const isRoot = process.geteuid?.() === 0;

/** Skips the test unless running as root: e2e tests start real containers. */
export function requiresRoot(t: TestContext): boolean {
  if (!isRoot) t.skip("needs root");
  return isRoot;
}

export interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a program with args and waits; input is piped to its stdin. */
export function run(program: string, args: string[], opts: SpawnSyncOptions & { input?: string } = {}): Result {
  const r = spawnSync(program, args, { encoding: "utf8", timeout: 60_000, ...opts });
  return { code: r.status, signal: r.signal, stdout: String(r.stdout ?? ""), stderr: String(r.stderr ?? "") };
}

/** Runs bin/<tool> with args and waits. */
export function tool(name: string, args: string[], opts: SpawnSyncOptions & { input?: string } = {}): Result {
  return run(join(BIN, name), args, opts);
}

/** A fresh state root for one test; removed by the returned cleanup after checking it is empty. */
export function stateRoot(): string {
  return mkdtempSync(join(tmpdir(), "corerun-e2e-"));
}

/** The container directories left under a state root (should be none after a container ends). */
export function leftoverState(root: string): string[] {
  return existsSync(root) ? readdirSync(root).filter((n) => /^[0-9a-f]{12}$/.test(n)) : [];
}

/**
 * Removes a state root the test created (only a mkdtemp path under the temp dir). Containers a
 * failed test left running are ended first: they hold the test runner's pipes open.
 */
export function removeStateRoot(root: string): void {
  if (!root.startsWith(join(tmpdir(), "corerun-e2e-"))) throw new Error(`refusing to remove ${root}`);
  if (leftoverState(root).length) tool("corerun", ["cleanup", "--force", "--root", root]);
  // The root's bridge and nftables table outlive its containers, as Docker's networks do.
  if (existsSync(join(root, "networks"))) pruneNetworks(root);
  rmSync(root, { recursive: true, force: true });
}

/**
 * Prunes a test root's networks, and fails when one stays: its records go with the root, and
 * its bridge and nftables table would be left on the host with nothing to remove them. A lease
 * whose container is gone may read as held for a moment (the kernel removes a dead network
 * namespace's veth asynchronously), so the prune is retried for up to 5 s first.
 */
function pruneNetworks(root: string): void {
  const { records } = netPaths(root);
  for (let i = 0; ; i++) {
    const r = tool("corerun-net", ["prune", "--root", root]);
    if (r.code !== 0) throw new Error(`corerun-net prune --root ${root}: exit ${r.code}: ${r.stderr.trim()}`);
    const left = readRecords(records);
    if (!left.networks.length) return;
    if (i === 50) throw new Error(`${root}: networks ${left.networks.map((n) => n.name).join(", ")} still in use after their containers were removed; leases: ${JSON.stringify(left.leases)}`);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
  }
}

/** Mount points in the host's mount table that mention a path. */
export function hostMountsUnder(path: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8").split("\n").filter((l) => l.includes(path));
}

/** Processes on the host whose command line mentions a marker string. */
export function processesWith(marker: string): number[] {
  const out: number[] = [];
  for (const pid of readdirSync("/proc").filter((n) => /^\d+$/.test(n))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").includes(marker) && Number(pid) !== process.pid) out.push(Number(pid));
    } catch {
      // gone already
    }
  }
  return out;
}

/** Each live process's parent, from /proc/PID/stat. */
function parents(): Map<number, number> {
  const out = new Map<number, number>();
  for (const pid of readdirSync("/proc").filter((n) => /^\d+$/.test(n))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      out.set(Number(pid), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {
      // gone already
    }
  }
  return out;
}

/**
 * The processes whose command line names `marker`, and their descendants: a tool corerun starts
 * before its command line is known (CORERUN_ARGV_FD) has only its script on it.
 */
export function processesUnder(marker: string): number[] {
  const found = new Set(processesWith(marker));
  const ppids = parents();
  for (let grew = true; grew;) {
    grew = false;
    for (const [pid, ppid] of ppids) {
      if (found.has(ppid) && !found.has(pid)) {
        found.add(pid);
        grew = true;
      }
    }
  }
  return [...found];
}

/**
 * The live processes a corerun of `pids` started as its tools: each names its parent in its
 * initial environment (CORERUN_PARENT_PID), which outlives a corerun killed with -9.
 */
export function toolsStartedBy(pids: readonly number[]): number[] {
  const names = new Set(pids.map((p) => `CORERUN_PARENT_PID=${p}`));
  const out: number[] = [];
  for (const pid of readdirSync("/proc").filter((n) => /^\d+$/.test(n))) {
    try {
      if (readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").some((v) => names.has(v)) && !readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z ")) out.push(Number(pid));
    } catch {
      // gone already
    }
  }
  return out;
}

/** Waits until check() holds, looking every everyMs, or fails naming what it waited for after ms. */
export async function until(what: string, check: () => boolean, ms = 10_000, everyMs = 50): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A process of a start (its command line names `marker`, a state root, or it descends from one) that stopped itself at a CORERUN_FAULT_PAUSE point. */
export async function pausedProcess(marker: string): Promise<number> {
  for (let i = 0; i < 600; i++) {
    for (const pid of processesUnder(marker)) {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("T")) return pid;
      } catch {
        // gone
      }
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error("no process stopped at the pause point");
}

export { spawn };

/**
 * The steps of a start's critical path (`corerun trace summary`'s first column) run through
 * whichever tool finished its part later: corerun-mount's pivot, after its wait for corerun-exec's
 * ready, or corerun-exec's own steps between ready and go when they outlast the pivot and go.
 */
export function pathThroughATool(steps: readonly string[]): boolean {
  const throughMount = ["build tree and network", "corerun-mount", "wait for ready", "pivot_root"].every((s) => steps.includes(s));
  const throughExec = ["corerun-exec", "send ready", "wait for go"].every((s) => steps.includes(s));
  return throughMount || throughExec;
}

/**
 * The whole disk under a directory (/dev/vda for a file system on /dev/vda or on /dev/vda1), or
 * undefined for a file system on no block device (tmpfs, overlayfs).
 */
export function diskUnder(path: string): string | undefined {
  const sys = `/sys/dev/block/${devText(statSync(path).dev)}`;
  if (!existsSync(sys)) return undefined;
  const real = realpathSync(sys);
  const disk = existsSync(join(real, "partition")) ? basename(join(real, "..")) : basename(real);
  return existsSync(`/dev/${disk}`) ? `/dev/${disk}` : undefined;
}

/** A dev_t as the kernel's files write it: "MAJ:MIN". */
export function devText(dev: number): string {
  const { major, minor } = devNumbers(dev);
  return `${major}:${minor}`;
}

/** Whether a disk of this host can use the BFQ I/O scheduler (its module loaded), which block I/O weights need. */
export function hasBfq(): boolean {
  try {
    return readdirSync("/sys/block").some((d) => {
      try {
        return /\bbfq\b/.test(readFileSync(`/sys/block/${d}/queue/scheduler`, "utf8"));
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}
