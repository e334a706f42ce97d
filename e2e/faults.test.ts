/**
 * Nothing is lost however a start ends: corerun, each tool and the container's first process are
 * stopped dead (CORERUN_FAULT, the same as kill -9 at that instant) at every step they trace,
 * one step at a time; then `corerun cleanup` runs, and the host must be as before: no state
 * directory, no process (by pid and by command line, in every PID namespace), no cgroup in any
 * hierarchy, no mount, no veth on the test's bridge, no lease, no nftables rule, no mount point
 * left in the rootfs. The steps are not listed here: a first start with CORERUN_FAULT_TRACE
 * records every point it passes, so a new step is walked as soon as it exists.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { busyboxRootfs, isRoot, pausedProcess, processesWith, REPO, removeStateRoot, stateRoot, tool } from "./helpers.ts";
import { assertHostClean as assertScopeClean, hierarchies } from "./host.ts";

const tag = randomBytes(3).toString("hex");
/** This file's own cgroup parent, bridge and published port: nothing else on the host counts. */
const PARENT = `corerun-faults-${tag}`;
const BRIDGE = `crf${tag}`;
const PORT = 20000 + (parseInt(tag, 16) % 10000);
const TARGET = `/fault-${tag}`;

let rootfs = "";
let work = "";
let volume = "";

interface Mode {
  name: string;
  args: string[];
  /** Also kill the container's first process while corerun or a tool stands at each step. */
  killFirstProcess: boolean;
}

const MODES: Mode[] = [
  { name: "network none", args: ["--network", "none"], killFirstProcess: true },
  { name: "bridge with a published port", args: ["-N", BRIDGE, "-P", `${PORT}:80`], killFirstProcess: true },
  { name: "user namespace (--userns auto)", args: ["--network", "none", "--userns", "auto"], killFirstProcess: false },
];

function corerunArgs(root: string, mode: Mode): string[] {
  return [
    "--root", root, "--rootfs", rootfs, "--cgroup-parent", PARENT, "-v", `${volume}:${TARGET}`, "--memory", "64", "--pids", "50",
    ...mode.args, "/bin/sh", "-c", "exit 0", `marker-${tag}`,
  ];
}

/** Runs corerun to its end with the given fault environment; resolves its pid and status. */
function start(root: string, mode: Mode, env: Record<string, string>): Promise<{ pid: number; code: number | null; signal: string | null; stderr: string }> {
  const child = spawn(join(REPO, "bin/corerun"), corerunArgs(root, mode), { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, ...env } });
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += d));
  return new Promise((resolve) => child.once("exit", (code, signal) => resolve({ pid: child.pid!, code, signal, stderr })));
}

/** Every first process recorded under the root: checked by pid after the cleanup. */
function recordedPids(root: string): number[] {
  return readdirSync(root).filter((n) => /^[0-9a-f]{12}$/.test(n)).flatMap((id) => {
    try {
      const s = JSON.parse(readFileSync(join(root, id, "state.json"), "utf8")) as { init?: { pid: number } };
      return s.init ? [s.init.pid] : [];
    } catch {
      return [];
    }
  });
}

/** Without its network, a bridged start passes the steps that create the bridge too. */
function removeNetworks(root: string, mode: Mode): void {
  if (!mode.args.includes("-N")) return;
  const r = tool("corerun-net", ["prune", "--root", root]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(existsSync(`/sys/class/net/${BRIDGE}`), false, `${BRIDGE} is left after prune`);
}

async function assertHostClean(root: string, pids: number[], what: string): Promise<void> {
  await assertScopeClean({ root, parent: PARENT, bridge: BRIDGE, port: PORT, markers: [`marker-${tag}`], mounts: [volume, TARGET], absent: [join(rootfs, TARGET)] }, pids, what);
}

/** Sends sig to pid unless it has already gone (ESRCH). */
function signalIfAlive(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
  }
}

/** The fault points one start passes, in the order first reached, from every process of it. */
async function tracePoints(root: string, mode: Mode): Promise<string[]> {
  const file = join(work, `trace-${mode.name.replace(/\W+/g, "-")}`);
  writeFileSync(file, "");
  // A corerun-exec running as a mapped uid appends to it too.
  chmodSync(file, 0o666);
  const r = await start(root, mode, { CORERUN_FAULT_TRACE: file });
  assert.equal(r.code, 0, r.stderr);
  return [...new Set(readFileSync(file, "utf8").split("\n").filter(Boolean))];
}

/** The walks' own directory (with a volume) and cgroup parent. */
function makeWork(): void {
  rootfs = busyboxRootfs();
  work = mkdtempSync(join(tmpdir(), "corerun-faults-"));
  // Traversable by a mapped uid, for the trace file.
  chmodSync(work, 0o755);
  volume = join(work, "volume");
  mkdirSync(volume);
}

function removeWork(): void {
  for (const h of hierarchies()) {
    const parent = join(h, PARENT);
    if (existsSync(parent)) rmdirSync(parent);
  }
  if (work.startsWith(join(tmpdir(), "corerun-faults-"))) rmSync(work, { recursive: true, force: true });
}

describe("kill at every step, then corerun cleanup: the host is as before", { skip: !isRoot && "needs root" }, () => {
  before(makeWork);
  after(removeWork);

  for (const mode of MODES) {
    describe(mode.name, () => {
      let root = "";
      let points: string[] = [];
      before(async () => {
        root = stateRoot();
        points = await tracePoints(root, mode);
      });
      after(() => {
        removeNetworks(root, mode);
        removeStateRoot(root);
      });

      test("the trace covers every process of a start and its teardown", async () => {
        for (const p of ["state:dir", "corerun:cloned", "mount:pivot", "exec:ready", "exec:exec", "corerun:exited", "teardown:mount-points"]) {
          assert.ok(points.includes(p), `${p} not reached: ${points.join(" ")}`);
        }
        if (mode.args.includes("-P")) assert.ok(points.includes("net:nft"), points.join(" "));
        await assertHostClean(root, [], "after a start that ran to its end");
      });

      test("each step in turn", async () => {
        for (const point of points) {
          removeNetworks(root, mode);
          const r = await start(root, mode, { CORERUN_FAULT: point });
          const pids = recordedPids(root);
          // A tool or the first process dying makes corerun fail and clean up after itself;
          // corerun dying leaves the rest to cleanup.
          assert.notEqual(r.code, 0, `${point}: corerun exited 0`);
          const c = tool("corerun", ["cleanup", "--root", root]);
          assert.equal(c.code, 0, `${point}: cleanup failed: ${c.stderr}`);
          await assertHostClean(root, [r.pid, ...pids], `killed at ${point}`);
        }
      });

      test("the container's first process killed while corerun or a tool stands at each step", { skip: !mode.killFirstProcess && "covered by the modes above" }, async () => {
        // From the moment the first process exists until it is told to go (after that, the
        // command may be done before it can be killed); its own steps (exec:*) are walked
        // above, by stopping it dead there.
        const from = points.indexOf("corerun:init-recorded");
        const to = points.indexOf("corerun:go");
        assert.ok(from >= 0 && to > from, points.join(" "));
        for (const point of points.slice(from, to).filter((p) => !p.startsWith("exec:"))) {
          removeNetworks(root, mode);
          const ended = start(root, mode, { CORERUN_FAULT_PAUSE: point });
          const paused = await pausedProcess(root);
          const pids = recordedPids(root);
          assert.equal(pids.length, 1, `${point}: no first process recorded`);
          process.kill(pids[0]!, "SIGKILL");
          // corerun may see the first process die and kill the paused tool before the SIGCONT.
          signalIfAlive(paused, "SIGCONT");
          const r = await ended;
          assert.notEqual(r.code, 0, `${point}: corerun exited 0 with its first process killed`);
          const c = tool("corerun", ["cleanup", "--root", root]);
          assert.equal(c.code, 0, `${point}: cleanup failed: ${c.stderr}`);
          await assertHostClean(root, [r.pid, ...pids], `first process killed at ${point}`);
        }
      });

      test("corerun cleanup killed at each of its own steps, then run again", async () => {
        for (const point of points.filter((p) => p.startsWith("teardown:") || p === "net:teardown-veth")) {
          const r = await start(root, mode, { CORERUN_FAULT: "corerun:tree-built" });
          assert.equal(r.signal, "SIGKILL", r.stderr);
          const pids = recordedPids(root);
          const killed = tool("corerun", ["cleanup", "--root", root], { env: { ...process.env, CORERUN_FAULT: point } });
          assert.equal(killed.signal, "SIGKILL", `${point}: ${killed.stderr}`);
          const c = tool("corerun", ["cleanup", "--root", root]);
          assert.equal(c.code, 0, `${point}: cleanup failed: ${c.stderr}`);
          await assertHostClean(root, [r.pid, ...pids], `cleanup killed at ${point}`);
        }
      });
    });
  }
});

/**
 * The OCI path, as engines drive it: create, start, then delete once the program is done. Each
 * point any of them (or the tools and the first process they start) passes is walked: the
 * commands run with CORERUN_FAULT set to it, then the engine's own recovery (containerd's shim
 * runs `delete --force` after a failed create) and `corerun cleanup` must leave the host as before.
 */
describe("OCI create, start and delete killed at every step, then delete --force and cleanup", { skip: !isRoot && "needs root" }, () => {
  let root = "";
  let bundle = "";
  const id = `oci-fault-${tag}`;
  const env = (extra: Record<string, string>) => ({ env: { ...process.env, ...extra }, stdio: "ignore" as const });

  before(() => {
    rootfs = busyboxRootfs();
    root = stateRoot();
    bundle = mkdtempSync(join(tmpdir(), "corerun-faults-oci-"));
    chmodSync(bundle, 0o755);
    const config = {
      ociVersion: "1.0.2",
      process: { user: { uid: 0, gid: 0 }, args: ["/bin/sh", "-c", `exit 0; marker-${tag}`], env: ["PATH=/bin"], cwd: "/", capabilities: { bounding: ["CAP_KILL"] } },
      root: { path: rootfs },
      hostname: "fault",
      mounts: [
        { destination: "/proc", type: "proc", source: "proc" },
        { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "mode=755"] },
        { destination: "/dev/pts", type: "devpts", source: "devpts", options: ["newinstance", "ptmxmode=0666"] },
      ],
      linux: {
        cgroupsPath: `/${PARENT}/${id}`,
        resources: { memory: { limit: 64 << 20 }, pids: { limit: 50 }, devices: [{ allow: false, access: "rwm" }] },
        namespaces: [{ type: "pid" }, { type: "network" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }],
        maskedPaths: ["/proc/kcore"],
        readonlyPaths: ["/proc/sys"],
      },
    };
    writeFileSync(join(bundle, "config.json"), JSON.stringify(config));
  });
  after(() => {
    removeStateRoot(root);
    for (const h of hierarchies()) {
      const parent = join(h, PARENT);
      if (existsSync(parent)) rmdirSync(parent);
    }
    if (bundle.startsWith(join(tmpdir(), "corerun-faults-oci-"))) rmSync(bundle, { recursive: true, force: true });
  });

  /** create, start, a wait for the program's end, delete: each with the fault environment. */
  async function lifecycle(faults: Record<string, string>): Promise<{ create: number | null }> {
    const create = tool("corerun", ["--root", root, "create", "--bundle", bundle, id], env(faults));
    if (create.code === 0) {
      tool("corerun", ["--root", root, "start", id], env(faults));
      for (let i = 0; i < 50; i++) {
        const s = tool("corerun", ["--root", root, "state", id]);
        if (s.code !== 0 || JSON.parse(s.stdout).status === "stopped") break;
        await new Promise((r) => setTimeout(r, 100));
      }
      tool("corerun", ["--root", root, "delete", id], env(faults));
    }
    return { create: create.code };
  }

  test("every step of create, start and delete", async () => {
    const trace = join(bundle, "trace");
    writeFileSync(trace, "");
    chmodSync(trace, 0o666);
    const clean = await lifecycle({ CORERUN_FAULT_TRACE: trace });
    assert.equal(clean.create, 0);
    const points = [...new Set(readFileSync(trace, "utf8").split("\n").filter(Boolean))];
    for (const p of ["oci:state", "oci:cloned", "mount:pivot", "exec:ready", "oci:created", "oci:go", "exec:exec", "teardown:mount-points"]) {
      assert.ok(points.includes(p), `${p} not reached: ${points.join(" ")}`);
    }
    await assertHostClean(root, [], "after a lifecycle that ran to its end");
    for (const point of points) {
      await lifecycle({ CORERUN_FAULT: point });
      const pids = recordedPids(root);
      const d = tool("corerun", ["--root", root, "delete", "--force", id]);
      assert.equal(d.code, 0, `${point}: delete --force failed: ${d.stderr}`);
      const c = tool("corerun", ["cleanup", "--root", root]);
      assert.equal(c.code, 0, `${point}: cleanup failed: ${c.stderr}`);
      await assertHostClean(root, pids, `killed at ${point}`);
    }
  });
});

/**
 * The detached path: the hidden start that corerun-monitor runs, corerun-monitor itself (its
 * own steps: the start forked, the client answered, the first log line copied, before and after
 * the exit handler) and the exit handler (`corerun __monitor-exit`), each stopped dead at every
 * step it traces. Once nothing of the run is left running, `corerun cleanup`, then `rm -f` of
 * whatever is still recorded (an exited container is kept for its log), must leave the host as
 * before.
 */
describe("run -d killed at every step, then cleanup and rm -f", { skip: !isRoot && "needs root" }, () => {
  /**
   * network none walks every step; the bridged walk, the steps of its own (the monitor's, the
   * exit handler's, the network's): the start's other steps are those the foreground walk takes.
   */
  const DETACHED: (Mode & { only?: RegExp })[] = [MODES[0]!, { ...MODES[1]!, only: /^(monitor|detach|monitor-exit|teardown|net):/ }];
  before(makeWork);
  after(removeWork);

  /** run -d to the client's end; then waits (at most 10 s) until no process of the run is left. */
  async function runDetached(root: string, mode: Mode, env: Record<string, string>, extra: string[] = [], script = "echo out; echo err >&2; exit 0"): Promise<{ pid: number; code: number | null }> {
    const args = [
      "run", "-d", "--root", root, "--rootfs", rootfs, "--cgroup-parent", PARENT, "-v", `${volume}:${TARGET}`, "--memory", "64", "--pids", "50",
      ...mode.args, ...extra, "/bin/sh", "-c", script, `marker-${tag}`,
    ];
    const child = spawn(join(REPO, "bin/corerun"), args, { stdio: ["ignore", "ignore", "ignore"], env: { ...process.env, ...env } });
    const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
    for (let i = 0; i < 200 && [root, `marker-${tag}`].some((m) => processesWith(m).length); i++) await new Promise((r) => setTimeout(r, 50));
    return { pid: child.pid!, code };
  }

  function recorded(root: string): string[] {
    return readdirSync(root).filter((n) => /^[0-9a-f]{12}$/.test(n));
  }

  for (const mode of DETACHED) {
    test(mode.name, async () => {
      const root = stateRoot();
      try {
        const file = join(work, `trace-detached-${mode.name.replace(/\W+/g, "-")}`);
        writeFileSync(file, "");
        chmodSync(file, 0o666);
        const clean = await runDetached(root, mode, { CORERUN_FAULT_TRACE: file });
        assert.equal(clean.code, 0);
        const points = [...new Set(readFileSync(file, "utf8").split("\n").filter(Boolean))];
        for (const p of ["monitor:forked", "state:dir", "detach:id-reported", "corerun:go", "detach:pid-reported", "monitor:reported", "monitor:log",
          "monitor:exit-handler", "monitor-exit:begin", "teardown:cgroup", "monitor-exit:recorded", "monitor:exit-handler-done"]) {
          assert.ok(points.includes(p), `${p} not reached: ${points.join(" ")}`);
        }
        const [id] = recorded(root);
        assert.ok(id, "the exited container is kept");
        assert.match(readFileSync(join(root, id, "container.log"), "utf8"), /"log":"out\\n","stream":"stdout"/);
        const r = tool("corerun", ["rm", "--root", root, id]);
        assert.equal(r.code, 0, r.stderr);
        await assertHostClean(root, [], "after a detached run that ran to its end");
        for (const point of points.filter((p) => !mode.only || mode.only.test(p))) {
          removeNetworks(root, mode);
          const run = await runDetached(root, mode, { CORERUN_FAULT: point });
          const pids = recordedPids(root);
          const c = tool("corerun", ["cleanup", "--root", root]);
          assert.equal(c.code, 0, `${point}: cleanup failed: ${c.stderr}`);
          for (const left of recorded(root)) {
            const rm = tool("corerun", ["rm", "-f", "--root", root, left]);
            assert.equal(rm.code, 0, `${point}: rm -f ${left} failed: ${rm.stderr}`);
          }
          await assertHostClean(root, [run.pid, ...pids], `run -d killed at ${point}`);
        }
      } finally {
        removeNetworks(root, mode);
        removeStateRoot(root);
      }
    });
  }
  /**
   * --restart on-failure:1 with a command that fails: the monitor waits, then starts the same
   * container again. Its own new steps (the wait, the restart) are walked with CORERUN_FAULT; the
   * restarted run's start and exit handler, which pass the first run's steps again, with
   * CORERUN_FAULT_RESTART (the monitor hands it to them as their CORERUN_FAULT).
   */
  test("--restart: the monitor's wait and restart, and every step of the restarted run", async () => {
    const root = stateRoot();
    const mode = MODES[0]!;
    const restart = ["--restart", "on-failure:1"];
    try {
      const file = join(work, "trace-restart");
      writeFileSync(file, "");
      chmodSync(file, 0o666);
      const clean = await runDetached(root, mode, { CORERUN_FAULT_TRACE: file }, restart, "echo run; exit 1");
      assert.equal(clean.code, 0);
      const points = [...new Set(readFileSync(file, "utf8").split("\n").filter(Boolean))];
      for (const p of ["monitor:restart-wait", "monitor:restarted", "corerun:restart-state"]) assert.ok(points.includes(p), `${p} not reached: ${points.join(" ")}`);
      const [id] = recorded(root);
      assert.equal((readFileSync(join(root, id!, "container.log"), "utf8").match(/"log":"run\\n"/g) ?? []).length, 2, "two runs in one log");
      assert.equal(tool("corerun", ["rm", "--root", root, id!]).code, 0);
      await assertHostClean(root, [], "after a restarted run that ran to its end");
      const walks = [
        ...["monitor:restart-wait", "monitor:restarted"].map((p) => ({ CORERUN_FAULT: p })),
        ...points.filter((p) => !p.startsWith("monitor:")).map((p) => ({ CORERUN_FAULT_RESTART: p })),
      ];
      for (const env of walks) {
        const what = Object.entries(env).map(([k, v]) => `${k}=${v}`).join("");
        const run = await runDetached(root, mode, env, restart, "echo run; exit 1");
        const pids = recordedPids(root);
        const c = tool("corerun", ["cleanup", "--root", root]);
        assert.equal(c.code, 0, `${what}: cleanup failed: ${c.stderr}`);
        for (const left of recorded(root)) {
          const rm = tool("corerun", ["rm", "-f", "--root", root, left]);
          assert.equal(rm.code, 0, `${what}: rm -f ${left} failed: ${rm.stderr}`);
        }
        await assertHostClean(root, [run.pid, ...pids], `run -d --restart killed at ${what}`);
      }
    } finally {
      removeStateRoot(root);
    }
  });
});
