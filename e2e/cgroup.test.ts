/**
 * corerun-cgroup on this host's real kernel, as root. The host is hybrid: memory, cpu and pids are
 * v1 hierarchies and /sys/fs/cgroup/unified is a v2 hierarchy without controllers, so the v2
 * backend's limit files are covered by the unit tests' fixture tree and its core (cgroup.procs,
 * cgroup.freeze, cgroup.events, cgroup.kill, rmdir) is tested here on /sys/fs/cgroup/unified.
 *
 * Every cgroup these tests make lives under a parent of their own (corerun-e2e-PID), except the
 * documentation's examples, which use the default parent and the name "demo"; after each test no
 * directory of theirs is left in any hierarchy, and at the end the parents they made are removed.
 */
import { after, afterEach, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, statfsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CGROUP2_SUPER_MAGIC, CGROUP_SUPER_MAGIC, cgroupManager, discoverLayout, joinCommand, openCgroupProcs, type CgroupLayout } from "@corerun/cgroup";
import { BIN, isRoot, REPO, run, tool, until } from "./helpers.ts";

const ROOT = "/sys/fs/cgroup";
const UNIFIED = join(ROOT, "unified");
const PARENT = `corerun-e2e-${process.pid}`;
const MiB = 1024 * 1024;
const CGROUP = join(BIN, "corerun-cgroup");

/** Names of cgroups the current test makes; checked for leftovers after it. */
const mine = new Set<string>();
let counter = 0;
function uniq(label: string): string {
  const name = `${label}-${process.pid}-${++counter}`;
  mine.add(name);
  return name;
}

/** The mount points of every cgroup hierarchy under ROOT (v1 and v2). */
function hierarchies(): string[] {
  return readdirSync(ROOT)
    .map((n) => join(ROOT, n))
    .filter((p) => [CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC].includes(statfsSync(p).type));
}

/** Every cgroup directory in every hierarchy whose name is one of names, or that lies under PARENT. */
function leftovers(names: Set<string>): string[] {
  const out: string[] = [];
  const walk = (dir: string, depth: number) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      const p = join(dir, e.name);
      if (names.has(e.name) || p.includes(`/${PARENT}/`)) out.push(p);
      if (depth < 6) walk(p, depth + 1);
    }
  };
  for (const h of hierarchies()) walk(h, 0);
  return out;
}

/** The hierarchies where a parent did not exist before this suite: only those are removed after it. */
const parentsBefore = new Map<string, boolean>();
function notePrexisting(parent: string): void {
  for (const h of hierarchies()) parentsBefore.set(join(h, parent), existsSync(join(h, parent)));
}

function removeParentsWeMade(): void {
  for (const [dir, existed] of parentsBefore) {
    if (existed || !existsSync(dir)) continue;
    try {
      rmdirSync(dir);
    } catch (err) {
      // Another user's cgroup appeared under the default parent meanwhile: it is not ours to remove.
      if ((err as NodeJS.ErrnoException).code !== "EBUSY") throw err;
    }
  }
}

function cg(args: string[], opts: Parameters<typeof tool>[2] = {}) {
  return tool("corerun-cgroup", args, opts);
}

function background(args: string[]): { child: ChildProcess; stdout: () => string; stderr: () => string; exit: Promise<number | null> } {
  const child = spawn(CGROUP, args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
  return { child, stdout: () => out, stderr: () => err, exit };
}

function events(dir: string): Record<string, string> {
  return Object.fromEntries(readFileSync(join(dir, "cgroup.events"), "utf8").trim().split("\n").map((l) => l.split(" ") as [string, string]));
}

function cpuUsec(dir: string): number {
  return Number(/usage_usec (\d+)/.exec(readFileSync(join(dir, "cpu.stat"), "utf8"))![1]);
}

/** The fenced block after `<!-- e2e:NAME -->` in README.md. */
function docBlock(name: string): string {
  const m = new RegExp(`<!-- e2e:${name} -->\\n\`\`\`\\w*\\n([\\s\\S]*?)\`\`\``).exec(readFileSync(join(REPO, "README.md"), "utf8"));
  if (!m) throw new Error(`no block marked e2e:${name} in README.md`);
  return m[1]!;
}

function sh(script: string) {
  // The README writes root's commands with sudo; the suite already runs as root.
  return run("/bin/sh", ["-eu", "-c", script.replace(/\bsudo /g, "")], { cwd: REPO, env: { ...process.env, PATH: `${BIN}:${process.env.PATH}` } });
}

describe("corerun-cgroup on this host's kernel", { skip: !isRoot && "needs root" }, () => {
  let layout: CgroupLayout;
  before(() => {
    layout = discoverLayout();
    notePrexisting(PARENT);
    notePrexisting("corerun");
  });
  afterEach(() => {
    const left = leftovers(mine);
    mine.clear();
    assert.deepEqual(left, [], "no cgroup directory is left in any hierarchy");
  });
  after(() => removeParentsWeMade());

  test("the host is hybrid: memory, cpu and pids are v1, the unified hierarchy has none of them", () => {
    assert.equal(layout.setup, "hybrid");
    assert.equal(layout.unified, UNIFIED);
    for (const c of ["memory", "cpu", "pids"]) {
      assert.ok(layout.v1[c], `v1 ${c}`);
      assert.ok(!layout.v2Controllers.includes(c), `v2 ${c}`);
    }
  });

  test("run --memory: a process allocating beyond the limit is OOM-killed, exits 137, and the OOM kill is reported on stderr", () => {
    const name = uniq("oom");
    const r = cg(["run", "--name", name, "--cgroup-parent", PARENT, "--memory", "16", "--", "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"]);
    assert.equal(r.code, 137, r.stderr);
    assert.match(r.stderr, new RegExp(`^corerun-cgroup: out of memory: the kernel's OOM killer killed 1 process in cgroup ${name} \\(memory limit 16 MiB\\)$`, "m"));
  });

  test("run --memory: a process within the limit is not killed and nothing is reported", () => {
    const r = cg(["run", "--name", uniq("fits"), "--cgroup-parent", PARENT, "--memory", "64", "--", "dd", "if=/dev/zero", "of=/dev/null", "bs=8M", "count=4"]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /out of memory/);
  });

  test("run --pids 20 stops a fork loop: forks fail, the shell survives and exits normally, the forked processes are killed", () => {
    const scratch = mkdtempSync(join(tmpdir(), "corerun-cgroup-e2e-"));
    try {
      const count = join(scratch, "count");
      const script = 'n=0; (while [ $n -lt 100 ]; do sleep 5 & n=$((n+1)); echo $n > "$1"; done); read n < "$1"; echo "forks: $n"; exit 0';
      const started = Date.now();
      const r = cg(["run", "--name", uniq("pids"), "--cgroup-parent", PARENT, "--pids", "20", "--", "/bin/sh", "-c", script, "sh", count]);
      assert.equal(r.code, 0, r.stderr);
      const forks = Number(/^forks: (\d+)$/m.exec(r.stdout)?.[1]);
      assert.ok(forks >= 1 && forks < 20, `forks: ${forks}`);
      assert.match(r.stderr, /[Cc]an(no|')t fork/);
      // The sleeps hold the output pipe: returning before they end means they were killed.
      assert.ok(Date.now() - started < 4_500, "the leftover sleeps were killed when the command ended");
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  test("run --cpu 50 holds a busy loop near half a core over 2 s, by the cgroup's own usage counter (±15 points)", async (t) => {
    const name = uniq("cpu");
    const bg = background(["run", "--name", name, "--cgroup-parent", PARENT, "--cpu", "50", "--", "/bin/sh", "-c", "while :; do :; done"]);
    const m = cgroupManager({ name, parent: PARENT });
    try {
      await until("the busy loop to start", () => m.exists() && m.pids().length > 0, 10_000, 20);
      await sleep(300);
      const u0 = m.stats().cpu.usageUsec!;
      const t0 = process.hrtime.bigint();
      await sleep(2_000);
      const u1 = m.stats().cpu.usageUsec!;
      const t1 = process.hrtime.bigint();
      const percent = ((u1 - u0) / (Number(t1 - t0) / 1_000)) * 100;
      assert.ok(Math.abs(percent - 50) <= 15, `the busy loop used ${percent.toFixed(1)} % of a core`);
      t.diagnostic(`the busy loop used ${percent.toFixed(1)} % of a core`);
      assert.equal(m.stats().cpu.limitPercent, 50);
    } finally {
      bg.child.kill("SIGTERM");
    }
    assert.equal(await bg.exit, 143, bg.stderr());
  });

  test("stats prints plausible numbers for a running process; kill ends it and run removes the cgroup", async () => {
    const name = uniq("stats");
    const script = 'x=$(head -c 10000000 /dev/zero | tr "\\0" a); echo ready; sleep 30; echo ${#x}';
    const bg = background(["run", "--name", name, "--cgroup-parent", PARENT, "--memory", "64", "--pids", "50", "--", "/bin/sh", "-c", script]);
    try {
      await until("the shell to fill its memory", () => bg.stdout().includes("ready"), 10_000, 20);
      const r = cg(["stats", name, "--cgroup-parent", PARENT]);
      assert.equal(r.code, 0, r.stderr);
      const s = JSON.parse(r.stdout);
      assert.ok(s.memory.current >= 10_000_000 && s.memory.current <= 64 * MiB, `memory.current ${s.memory.current}`);
      assert.ok(s.memory.peak >= s.memory.current, `memory.peak ${s.memory.peak}`);
      assert.equal(s.memory.limit, 64 * MiB);
      assert.ok(s.cpu.usageUsec > 1_000 && s.cpu.usageUsec < 10_000_000, `cpu.usageUsec ${s.cpu.usageUsec}`);
      assert.equal(s.cpu.limitPercent, null);
      assert.equal(s.pids.current, 2, "the shell and its sleep");
      assert.equal(s.pids.limit, 50);
      assert.equal(s.oomKills, 0);
      assert.equal(s.processes, 2);
      const killed = cg(["kill", name, "--cgroup-parent", PARENT]);
      assert.equal(killed.code, 0, killed.stderr);
    } finally {
      bg.child.kill("SIGTERM");
    }
    assert.equal(await bg.exit, 137, bg.stderr());
    assert.doesNotMatch(bg.stderr(), /out of memory/);
  });

  test("create writes the limits to the v1 hierarchies and a v2 cgroup; add, freeze, thaw, rm act on a real process", async () => {
    const name = uniq("steps");
    const r = cg(["create", name, "--cgroup-parent", PARENT, "-m", "64", "-c", "50", "-p", "20", "--cpuset-cpus", "0", "--memory-reservation", "32"]);
    assert.equal(r.code, 0, r.stderr);
    const at = (h: string) => join(ROOT, h, PARENT, name);
    // devices, cpuset and blkio always, and cpuacct: where the engines read CPU time and block I/O
    // (podman stats), and what a later update may limit, as runc places a container.
    assert.deepEqual(JSON.parse(r.stdout), { paths: { "": at("unified"), memory: at("memory"), cpu: at("cpu"), pids: at("pids"), devices: at("devices"), cpuset: at("cpuset"), blkio: at("blkio"), cpuacct: at("cpuacct") } });
    const file = (h: string, f: string) => readFileSync(join(at(h), f), "utf8").trim();
    assert.equal(file("memory", "memory.limit_in_bytes"), String(64 * MiB));
    assert.equal(file("memory", "memory.memsw.limit_in_bytes"), String(64 * MiB), "swap does not extend the limit");
    assert.equal(file("cpu", "cpu.cfs_quota_us"), "50000");
    assert.equal(file("cpu", "cpu.cfs_period_us"), "100000");
    assert.equal(file("pids", "pids.max"), "20");
    assert.equal(file("cpuset", "cpuset.cpus"), "0");
    assert.equal(file("memory", "memory.soft_limit_in_bytes"), String(32 * MiB));
    assert.equal(file("devices", "devices.list"), "a *:* rwm", "no device rules without --docker-devices");

    const loop = spawn("/bin/sh", ["-c", "while :; do :; done"]);
    const ended = new Promise((resolve) => loop.once("exit", (_c, signal) => resolve(signal)));
    try {
      assert.equal(cg(["add", name, "--cgroup-parent", PARENT, "--pid", String(loop.pid)]).code, 0);
      const own = readFileSync(`/proc/${loop.pid}/cgroup`, "utf8");
      for (const line of [`0::/${PARENT}/${name}`, `memory:/${PARENT}/${name}`, `cpu:/${PARENT}/${name}`, `pids:/${PARENT}/${name}`, `cpuset:/${PARENT}/${name}`, `blkio:/${PARENT}/${name}`]) assert.match(own, new RegExp(line));
      assert.match(readFileSync(`/proc/${loop.pid}/status`, "utf8"), /^Cpus_allowed_list:\t0$/m);

      assert.equal(cg(["freeze", name, "--cgroup-parent", PARENT]).code, 0);
      assert.equal(events(at("unified")).frozen, "1");
      const frozenAt = cpuUsec(at("unified"));
      await sleep(300);
      assert.ok(cpuUsec(at("unified")) - frozenAt < 5_000, "a frozen loop does not run");
      assert.equal(cg(["thaw", name, "--cgroup-parent", PARENT]).code, 0);
      assert.equal(events(at("unified")).frozen, "0");
      await sleep(300);
      assert.ok(cpuUsec(at("unified")) - frozenAt > 50_000, "a thawed loop runs again");

      const rm = cg(["rm", name, "--cgroup-parent", PARENT]);
      assert.equal(rm.code, 0, rm.stderr);
      assert.equal(await ended, "SIGKILL");
      assert.equal(cg(["rm", name, "--cgroup-parent", PARENT]).code, 125, "rm of a cgroup that is gone");
      assert.equal(cg(["rm", "-f", name, "--cgroup-parent", PARENT]).code, 0, "rm -f of a cgroup that is gone");
    } finally {
      loop.kill("SIGKILL");
    }
  });

  test("create --docker-devices --device-cgroup-rule: Docker's device cgroup and one more device; run under it cannot open another", () => {
    const name = uniq("devices");
    const r = cg(["create", name, "--cgroup-parent", PARENT, "--device-cgroup-rule", "c 10:229 r"]);
    assert.equal(r.code, 0, r.stderr);
    try {
      const list = readFileSync(join(ROOT, "devices", PARENT, name, "devices.list"), "utf8").trim().split("\n");
      assert.deepEqual(list, ["c 10:229 r", "c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm", "c 5:2 rwm", "c 136:* rwm", "c 10:200 rwm"]);
    } finally {
      assert.equal(cg(["rm", name, "--cgroup-parent", PARENT]).code, 0);
    }
    // The host's /dev/loop0 (b 7:0) opens for root outside, not under --docker-devices; /dev/null does.
    const run = cg(["run", "--cgroup-parent", PARENT, "--docker-devices", "--", "/bin/sh", "-c", "head -c0 /dev/loop0 2>/dev/null || echo loop0-refused; echo x > /dev/null && echo null-ok"]);
    assert.equal(run.stdout, "loop0-refused\nnull-ok\n", run.stderr);
  });

  test("v2 core for real on /sys/fs/cgroup/unified (no v2 controllers here): create, move a process, cgroup.freeze, cgroup.events, cgroup.kill, remove", async () => {
    const name = uniq("v2core");
    const m = cgroupManager({ name, parent: PARENT, root: UNIFIED });
    assert.equal(m.layout.setup, "unified", "a cgroup2 root is a unified setup");
    const dir = join(UNIFIED, PARENT, name);
    assert.deepEqual(m.create(), { "": dir });
    assert.deepEqual(events(dir), { populated: "0", frozen: "0" });

    const loop = spawn("/bin/sh", ["-c", "while :; do :; done"]);
    const ended = new Promise((resolve) => loop.once("exit", (_c, signal) => resolve(signal)));
    try {
      m.addTask(loop.pid!);
      assert.deepEqual(m.pids(), [loop.pid]);
      assert.match(readFileSync(`/proc/${loop.pid}/cgroup`, "utf8"), new RegExp(`^0::/${PARENT}/${name}$`, "m"));
      assert.equal(events(dir).populated, "1");

      m.freeze();
      assert.equal(events(dir).frozen, "1");
      const frozenAt = cpuUsec(dir);
      await sleep(300);
      assert.ok(cpuUsec(dir) - frozenAt < 5_000, "a frozen loop does not run");
      m.thaw();
      assert.equal(events(dir).frozen, "0");

      m.killAll();
      assert.equal(events(dir).populated, "0");
      assert.equal(await ended, "SIGKILL");
      m.remove();
      assert.equal(existsSync(dir), false);
    } finally {
      loop.kill("SIGKILL");
    }
  });

  test("device rules on cgroup v2 are an eBPF filter (on /sys/fs/cgroup/unified): what it denies cannot be opened or made, the rest can", () => {
    const name = uniq("v2dev");
    const m = cgroupManager({ name, parent: PARENT, root: UNIFIED, devices: true });
    assert.equal(m.layout.setup, "unified");
    // Deny everything, then /dev/null for all access and /dev/zero for reading only.
    const rules = [
      { allow: false, type: "a" as const, major: -1, minor: -1, access: "rwm" },
      { allow: true, type: "c" as const, major: 1, minor: 3, access: "rwm" },
      { allow: true, type: "c" as const, major: 1, minor: 5, access: "r" },
    ];
    assert.deepEqual(m.create({ devices: rules }), { "": join(UNIFIED, PARENT, name) });
    const scratch = mkdtempSync(join(tmpdir(), "corerun-e2e-dev-"));
    try {
      const script = [
        "echo x > /dev/null && echo null-write ok", "head -c1 /dev/zero >/dev/null && echo zero-read ok",
        "{ echo x > /dev/zero; } 2>/dev/null && echo zero-write ok", "{ head -c1 /dev/urandom >/dev/null; } 2>/dev/null && echo urandom-read ok",
        `mknod ${scratch}/null c 1 3 && echo mknod-null ok`, `mknod ${scratch}/full c 1 7 2>/dev/null && echo mknod-full ok`, "true",
      ].join("; ");
      const inside = joinCommand(m.dirs(), ["/bin/sh", "-c", script]);
      const r = spawnSync(inside[0]!, inside.slice(1), { encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(r.stdout.trim().split("\n"), ["null-write ok", "zero-read ok", "mknod-null ok"]);
      // The same script outside the cgroup: everything works, so the refusals were the filter's.
      rmSync(join(scratch, "null"));
      const outside = spawnSync("/bin/sh", ["-c", script], { encoding: "utf8" });
      assert.deepEqual(outside.stdout.trim().split("\n"), ["null-write ok", "zero-read ok", "zero-write ok", "urandom-read ok", "mknod-null ok", "mknod-full ok"]);
      m.remove();
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  test("v2 core for real through the tool: run --cgroup-root /sys/fs/cgroup/unified joins only the v2 hierarchy", () => {
    const name = uniq("v2run");
    const r = cg(["run", "--cgroup-root", UNIFIED, "--name", name, "--cgroup-parent", PARENT, "--", "cat", "/proc/self/cgroup"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^0::/${PARENT}/${name}$`, "m"));
    assert.doesNotMatch(r.stdout, new RegExp(`memory:/${PARENT}`));
  });

  test("a limit whose controller the host lacks is an error naming it (memory in /sys/fs/cgroup/unified), nothing created", () => {
    const name = uniq("nomem");
    const r = cg(["run", "--cgroup-root", UNIFIED, "--name", name, "--cgroup-parent", PARENT, "--memory", "64", "--", "true"]);
    assert.equal(r.code, 125);
    assert.equal(r.stderr, "corerun-cgroup: the memory limit needs the memory controller, which this host does not offer: /sys/fs/cgroup/unified/cgroup.controllers offers hugetlb\n");
  });

  test("v1 backend for real (unified left out of the layout): freezer.state, then kill each pid between freeze and thaw, then rmdir in eight hierarchies", async () => {
    const name = uniq("v1");
    const legacy: CgroupLayout = { ...layout, setup: "legacy", unified: undefined, v2Controllers: [] };
    const m = cgroupManager({ name, parent: PARENT, layout: legacy, everyHierarchy: true });
    const paths = m.create({ pids: 10 });
    let child: ReturnType<typeof spawn> | undefined;
    try {
      assert.deepEqual(Object.keys(paths).sort(), ["blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "memory", "pids"]);
      const [shell, ...args] = joinCommand(m.dirs(), ["/bin/sh", "-c", "sleep 30 & sleep 30 & wait"]);
      child = spawn(shell!, args, { stdio: "ignore" });
      const ended = new Promise((resolve) => child!.once("exit", (_c, signal) => resolve(signal)));
      await until("the shell and its two sleeps", () => m.pids().length === 3, 10_000, 20);
      assert.equal(m.stats().pids.current, 3);
      assert.ok(m.stats().cpu.usageUsec! > 0, "cpuacct.usage");
      m.freeze();
      assert.equal(readFileSync(join(paths.freezer!, "freezer.state"), "utf8").trim(), "FROZEN");
      m.thaw();
      m.killAll();
      assert.deepEqual(m.pids(), []);
      assert.equal(await ended, "SIGKILL");
      m.remove();
      for (const p of Object.values(paths)) assert.equal(existsSync(p), false, p);
    } finally {
      child?.kill("SIGKILL");
      // A failure above must not leave the cgroup for the tests after it.
      if (m.exists()) {
        m.killAll();
        m.remove();
      }
    }
  });

  test("joinCgroupFds: a Node process joins through cgroup.procs fds opened by another process, even with more threads than --pids allows", () => {
    const name = uniq("fds");
    const m = cgroupManager({ name, parent: PARENT });
    m.create({ pids: 5, memory: 6 * MiB });
    const fds = openCgroupProcs(m.dirs());
    try {
      const script = [
        'import { joinCgroupFds } from "@corerun/cgroup";',
        'import { readFileSync } from "node:fs";',
        `joinCgroupFds([${fds.map((_, i) => 3 + i).join(", ")}]);`,
        'process.stdout.write(readFileSync("/proc/self/cgroup", "utf8"));',
        'process.stdout.write(/Threads:\\s+(\\d+)/.exec(readFileSync("/proc/self/status", "utf8"))[1] + "\\n");',
      ].join("\n");
      const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { cwd: REPO, stdio: ["ignore", "pipe", "pipe", ...fds], encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      for (const h of ["0:", "memory", "cpu", "pids"]) assert.match(r.stdout, new RegExp(`${h}:/${PARENT}/${name}$`, "m"));
      // Moving in is not forking: pids.max limits forks and clones, not migration.
      assert.ok(Number(r.stdout.trim().split("\n").at(-1)) > 5, "Node runs more threads than pids.max");
    } finally {
      for (const fd of fds) closeSync(fd);
      m.killAll();
      m.remove();
    }
  });

  for (const [flag, value, message] of [
    ["--memory", "-5", 'corerun-cgroup: --memory "-5" is not a size; give MiB (512) or a Docker size (512m, 1g)'],
    ["--memory", "0", 'corerun-cgroup: --memory "0" is below the minimum of 6 MiB; give 6 or more (MiB), or a size such as 64m'],
    ["--cpu", "abc", 'corerun-cgroup: --cpu "abc" is not a number; give 50 for half a core, 200 for two cores'],
    ["--pids", "0", 'corerun-cgroup: --pids "0" is not a positive integer; give the most tasks the cgroup may hold, e.g. 100'],
  ] as const) {
    test(`bad value ${flag} ${value}: exit 125, one line, nothing created (create and run)`, () => {
      const name = uniq("bad");
      for (const args of [["create", name, flag, value], ["run", "--name", name, flag, value, "--", "/bin/echo", "ran"]]) {
        const r = cg([...args, "--cgroup-parent", PARENT]);
        assert.equal(r.code, 125, args.join(" "));
        assert.equal(r.stderr, `${message}\n`);
        assert.equal(r.stdout, "");
      }
    });
  }

  test("run exits with the command's status: its own, 128+N on signal N, 127 when not found", () => {
    assert.equal(cg(["run", "--name", uniq("st"), "--cgroup-parent", PARENT, "--", "/bin/sh", "-c", "exit 3"]).code, 3);
    assert.equal(cg(["run", "--name", uniq("sig"), "--cgroup-parent", PARENT, "--", "/bin/sh", "-c", "kill -TERM $$"]).code, 143);
    const r = cg(["run", "--name", uniq("nf"), "--cgroup-parent", PARENT, "--", "corerun-no-such-command"]);
    assert.equal(r.code, 127);
    assert.match(r.stderr, /^corerun-cgroup: cannot run corerun-no-such-command: command not found/);
  });

  describe("the documentation's examples, run as written", () => {
    before(() => {
      assert.equal(leftovers(new Set(["demo"])).length, 0, "a cgroup named demo exists already; remove it first");
    });

    /** run-* cgroups under the default parent: run names its cgroups so when --name is not given. */
    const runDirs = () => hierarchies().flatMap((h) => (existsSync(join(h, "corerun")) ? readdirSync(join(h, "corerun")).filter((n) => n.startsWith("run-")).map((n) => join(h, "corerun", n)) : []));

    test("run with limits, with and without the word run", () => {
      const before = new Set(runDirs());
      const r = sh(docBlock("cgroup-run"));
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^limited$/m);
      assert.match(r.stdout, /^0::\/corerun\/run-\d+-[0-9a-f]{6}$/m);
      assert.match(r.stdout, /^the same without run$/m);
      assert.deepEqual(runDirs().filter((d) => !before.has(d)), []);
    });

    test("an OOM kill exits 137 and says so", () => {
      const before = new Set(runDirs());
      const r = sh(docBlock("cgroup-oom"));
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "exit status 137\n");
      assert.match(r.stderr, /^corerun-cgroup: out of memory: the kernel's OOM killer killed 1 process in cgroup run-\d+-[0-9a-f]{6} \(memory limit 16 MiB\)$/m);
      assert.deepEqual(runDirs().filter((d) => !before.has(d)), []);
    });

    test("create, add, stats, freeze, thaw, ls, rm", () => {
      mine.add("demo");
      const r = sh(docBlock("cgroup-steps"));
      assert.equal(r.code, 0, r.stderr);
      const [created, stats, list] = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
      assert.deepEqual(Object.keys(created.paths), ["", "memory", "cpu", "pids", "devices", "cpuset", "blkio", "cpuacct"]);
      assert.equal(created.paths[""], join(UNIFIED, "corerun", "demo"));
      assert.equal(stats.memory.limit, 512 * MiB);
      assert.equal(stats.cpu.limitPercent, 50);
      assert.equal(stats.pids.limit, 100);
      assert.equal(stats.processes, 1);
      assert.ok(list.includes("demo"));
    });

    test("bad values exit 125", () => {
      mine.add("demo");
      const r = sh(docBlock("cgroup-bad"));
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "exit status 125\n");
      assert.equal(r.stderr, 'corerun-cgroup: --memory "0" is below the minimum of 6 MiB; give 6 or more (MiB), or a size such as 64m\n');
    });
  });
});

