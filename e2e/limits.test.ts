/**
 * Resource limits through corerun, on this host's cgroups (hybrid here: memory, cpu and pids are
 * v1 hierarchies; the unified v2 hierarchy holds the process for cgroup.kill and cpu.stat).
 * Every container gets a cgroup; none may be left in any hierarchy after it ends.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { busyboxRootfs, devText, diskUnder, hasBfq, isRoot, leftoverState, removeStateRoot, REPO, stateRoot, tool } from "./helpers.ts";

let rootfs = "";
let root = "";

/** This test's own cgroup parent, so that other containers on the host do not count. */
const PARENT = `corerun-e2e-${process.pid}`;

/** Container cgroups under this test's parent, in every hierarchy. */
function containerCgroups(): string[] {
  const out: string[] = [];
  for (const h of readdirSync("/sys/fs/cgroup")) {
    const parent = join("/sys/fs/cgroup", h, PARENT);
    if (!existsSync(parent)) continue;
    for (const d of readdirSync(parent, { withFileTypes: true })) if (d.isDirectory() && /^[0-9a-f]{12}$/.test(d.name)) out.push(join(parent, d.name));
  }
  return out;
}

/** The parent directories this test made, once empty. */
function removeParents(): void {
  for (const h of readdirSync("/sys/fs/cgroup")) {
    const parent = join("/sys/fs/cgroup", h, PARENT);
    if (existsSync(parent)) rmdirSync(parent);
  }
}

function corerun(args: string[]) {
  const r = tool("corerun", ["--root", root, "--rootfs", rootfs, "--cgroup-parent", PARENT, ...args]);
  assert.deepEqual(leftoverState(root), []);
  assert.deepEqual(containerCgroups(), [], "a container cgroup is left");
  return r;
}

/** The v1 hierarchy directory of a controller ("memory", "blkio") of a running container, if the host has one. */
function v1Dir(id: string, controller: string): string | undefined {
  const dir = join("/sys/fs/cgroup", controller, PARENT, id);
  return existsSync(dir) ? dir : undefined;
}

describe("corerun with limits (cgroup v1 controllers on this hybrid host, v2 core on /sys/fs/cgroup/unified)", { skip: !isRoot && "needs root" }, () => {
  before(() => {
    rootfs = busyboxRootfs();
    root = stateRoot();
  });
  after(() => {
    try {
      removeStateRoot(root);
    } finally {
      removeParents();
    }
  });

  test("a process allocating beyond --memory is OOM-killed: exit 137 and a line on stderr", () => {
    const r = corerun(["--memory", "16", "/bin/sh", "-c", "x=$(head -c 64000000 /dev/zero | tr '\\0' a); echo survived"]);
    assert.equal(r.code, 137, r.stderr);
    assert.doesNotMatch(r.stdout, /survived/);
    // The pipeline's two processes may both be chosen, one after the other.
    assert.match(r.stderr, /^corerun: out of memory: the kernel's OOM killer killed [12] process(es)? in the container \(memory limit 16 MiB\)$/m);
  });

  test("--memory accepts Docker sizes and the container fits under a generous one", () => {
    const r = corerun(["--memory", "64m", "/bin/sh", "-c", "x=$(head -c 1000000 /dev/zero | tr '\\0' a); echo ok"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "ok\n");
  });

  test("--pids 20 stops a fork loop; the container's shell survives and exits normally", () => {
    const script = 'n=0; (while [ $n -lt 100 ]; do sleep 5 & n=$((n+1)); echo $n > /dev/shm/n; done) 2>/dev/null; read n < /dev/shm/n; echo "forks: $n"; exit 0';
    const started = Date.now();
    const r = corerun(["--pids", "20", "/bin/sh", "-c", script]);
    assert.equal(r.code, 0, r.stderr);
    const forks = Number(/^forks: (\d+)$/m.exec(r.stdout)?.[1]);
    assert.ok(forks >= 1 && forks < 20, `forks: ${forks}`);
    // The sleeps would hold the output pipe for 5 s: they died with the container.
    assert.ok(Date.now() - started < 4_500);
  });

  test("--cpu 50 holds a busy loop near half a core, by the cgroup's own usage counter", async () => {
    const child = spawn(join(REPO, "bin/corerun"), ["--root", root, "--rootfs", rootfs, "--cgroup-parent", PARENT, "--cpu", "50", "/bin/sh", "-c", "echo go; timeout 3 sh -c 'while :; do :; done'; true"], { stdio: ["ignore", "pipe", "pipe"] });
    await new Promise((resolve) => child.stdout.once("data", resolve));
    const [state] = JSON.parse(tool("corerun", ["ps", "--root", root, "--json"]).stdout) as { cgroup: { paths: Record<string, string> } }[];
    const stat = join(state!.cgroup.paths[""]!, "cpu.stat");
    const usage = () => Number(/usage_usec (\d+)/.exec(readFileSync(stat, "utf8"))![1]);
    await new Promise((r) => setTimeout(r, 300));
    const [u0, t0] = [usage(), performance.now()];
    await new Promise((r) => setTimeout(r, 2000));
    const percent = ((usage() - u0) / 1000 / (performance.now() - t0)) * 100;
    await new Promise((resolve) => child.once("exit", resolve));
    assert.ok(Math.abs(percent - 50) <= 15, `the busy loop used ${percent.toFixed(1)}% of a core`);
    assert.deepEqual(containerCgroups(), []);
  });

  test("corerun-cgroup stats reports plausible usage for a running container", async () => {
    const child = spawn(join(REPO, "bin/corerun"), ["--root", root, "--rootfs", rootfs, "--cgroup-parent", PARENT, "--memory", "64", "--pids", "50", "/bin/sh", "-c", "echo up; sleep 30; true"], { stdio: ["ignore", "pipe", "pipe"] });
    await new Promise((resolve) => child.stdout.once("data", resolve));
    const [state] = JSON.parse(tool("corerun", ["ps", "--root", root, "--json"]).stdout) as { id: string }[];
    const r = tool("corerun-cgroup", ["stats", state!.id, "--cgroup-parent", PARENT]);
    tool("corerun", ["kill", "--root", root, state!.id]);
    await new Promise((resolve) => child.once("exit", resolve));
    assert.equal(r.code, 0, r.stderr);
    const stats = JSON.parse(r.stdout) as { memory: { current: number; limit: number }; pids: { current: number; limit: number }; cpu: { usageUsec: number }; oomKills: number };
    assert.ok(stats.memory.current > 0 && stats.memory.current < 64 * 1024 * 1024, `memory ${stats.memory.current}`);
    assert.equal(stats.memory.limit, 64 * 1024 * 1024);
    assert.ok(stats.pids.current >= 2 && stats.pids.current <= 5, `pids ${stats.pids.current}`);
    assert.equal(stats.pids.limit, 50);
    assert.ok(stats.cpu.usageUsec > 0);
    assert.equal(stats.oomKills, 0);
    assert.deepEqual(containerCgroups(), []);
  });

  test("--cpus 0.5 is Docker's spelling of --cpu 50", () => {
    const r = corerun(["--cpus", "0.5", "--print-script", "/bin/true"]);
    assert.match(r.stdout, /corerun-cgroup" create \w+ --cpu 50 --docker-devices --cgroup-parent /);
  });

  test("every container gets a cgroup and sees it as its root (cgroup namespace)", () => {
    const r = corerun(["/bin/sh", "-c", "cat /proc/self/cgroup"]);
    assert.equal(r.code, 0, r.stderr);
    for (const line of r.stdout.trim().split("\n")) assert.match(line, /:\/$/, line);
  });

  // corerun moves the first process into its cgroups as it clones it, and writes the pids and CPU
  // limits once its Node has loaded; under less than 32 MiB of memory corerun-exec moves itself
  // right before the exec. Either way the command runs in all of them, under every limit.
  for (const [limits, how] of [[[], "no limits: joined at the clone"], [["--memory", "64", "--pids", "50", "--cpu", "50"], "with limits: joined at the clone"], [["--memory", "16", "--pids", "50"], "16 MiB: joined by corerun-exec"]] as const) {
    test(`the command runs in the container's cgroup in every hierarchy, seen from the host (${how})`, async () => {
      const trace = join(root, `join-${how.split(":")[0]!.replace(/\W+/g, "-")}.json`);
      const child = spawn(join(REPO, "bin/corerun"), ["--root", root, "--rootfs", rootfs, "--cgroup-parent", PARENT, "--trace", trace, ...limits, "/bin/sh", "-c", "echo up; sleep 30; true"], { stdio: ["ignore", "pipe", "pipe"] });
      await new Promise((resolve) => child.stdout.once("data", resolve));
      const [state] = JSON.parse(tool("corerun", ["ps", "--root", root, "--json"]).stdout) as { id: string; init: { pid: number }; cgroup: { paths: Record<string, string> } }[];
      const paths = Object.values(state!.cgroup.paths);
      const members = paths.map((dir) => readFileSync(join(dir, "cgroup.procs"), "utf8").split("\n"));
      const pidsMax = readFileSync(join(state!.cgroup.paths.pids!, "pids.max"), "utf8").trim();
      // Joined right before the exec, the cgroup is charged for the command only, not for
      // corerun-exec's Node as it loaded (~6 MiB). Joined at the clone, how much of that load it
      // is charged for depends on how long the move waits for an RCU grace period on its thread
      // (1.3-6 MiB seen): which process joined is read from the trace instead.
      const peak = Number(readFileSync(join(state!.cgroup.paths.memory!, "memory.max_usage_in_bytes"), "utf8"));
      tool("corerun", ["kill", "--root", root, state!.id]);
      await new Promise((resolve) => child.once("exit", resolve));
      assert.ok(paths.length >= 4, `hierarchies: ${paths.join(" ")}`);
      paths.forEach((dir, i) => assert.ok(members[i]!.includes(String(state!.init.pid)), `${state!.init.pid} in ${dir}/cgroup.procs`));
      assert.equal(pidsMax, limits.length ? "50" : "max");
      if (!how.endsWith("at the clone")) assert.ok(peak < 2 << 20, `peak ${peak}`);
      const events = (JSON.parse(readFileSync(trace, "utf8")) as { traceEvents: { name: string; ph: string; pid: number; args?: Record<string, unknown> }[] }).traceEvents;
      const tracks = new Map(events.filter((e) => e.ph === "M" && e.name === "process_name").map((e) => [e.pid, String(e.args?.name)]));
      const joined = events.filter((e) => e.ph === "X" && e.name === "join cgroup").map((e) => tracks.get(e.pid));
      assert.deepEqual(joined, [how.endsWith("at the clone") ? "corerun" : "corerun-exec"], "the process whose trace has the join");
      assert.deepEqual(containerCgroups(), []);
    });
  }

  test("--pids 2, below the threads of corerun-exec's Node in the cgroup until its exec: the command runs, and a third task cannot start", () => {
    // The outer shell and the inner one are two tasks; the inner one's fork is the third.
    const r = corerun(["--pids", "2", "/bin/sh", "-c", 'cat /sys/fs/cgroup/pids/pids.max; sh -c "sleep 1 & wait"; echo "inner $?"']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "2\ninner 2\n");
    assert.match(r.stderr, /can't fork: Resource temporarily unavailable/);
  });

  test("update of a detached container: a reservation and a disk throttle (the blkio hierarchy it always joins) take; a cpuset, whose hierarchy it joined only with a cpuset option, is refused in one line; a failed update leaves the limits as they were", { skip: !existsSync("/sys/fs/cgroup/blkio") && "needs the v1 blkio hierarchy" }, () => {
    const base = ["--root", root, "--rootfs", rootfs, "--cgroup-parent", PARENT];
    const d = tool("corerun", [...base, "-d", "--network", "none", "--memory", "64", "/bin/sh", "-c", "exec sleep 600"]);
    assert.equal(d.code, 0, d.stderr);
    const id = d.stdout.trim();
    try {
      const disk = diskUnder(REPO);
      const numbers = disk && devText(statSync(disk).rdev);
      const [major, minor] = (numbers ?? "0:0").split(":").map(Number);
      const resources = JSON.stringify({ memory: { reservation: 16 << 20 }, ...(disk ? { blockIO: { throttleReadBpsDevice: [{ major, minor, rate: 1 << 20 }] } } : {}) });
      const u = tool("corerun", ["update", "--root", root, "--resources", "-", id], { input: resources });
      assert.equal(u.code, 0, u.stderr);
      assert.equal(readFileSync(join(v1Dir(id, "memory")!, "memory.soft_limit_in_bytes"), "utf8").trim(), String(16 << 20));
      if (disk) assert.equal(readFileSync(join(v1Dir(id, "blkio")!, "blkio.throttle.read_bps_device"), "utf8").trim(), `${numbers} 1048576`);
      const refused = tool("corerun", ["update", "--root", root, "--cpuset-cpus", "0", id]);
      assert.equal(refused.code, 125);
      assert.match(refused.stderr, /^corerun: the cpuset limit needs the cgroup in the cpuset hierarchy, and \w+'s was made without it .*\n$/);
      if (!hasBfq()) {
        // The reservation is written first, then the weight is refused: the reservation goes back.
        const partial = tool("corerun", ["update", "--root", root, "--resources", "-", id], { input: JSON.stringify({ memory: { reservation: 8 << 20 }, blockIO: { weight: 300 } }) });
        assert.equal(partial.code, 125);
        assert.match(partial.stderr, /a block I\/O weight needs/);
        assert.equal(readFileSync(join(v1Dir(id, "memory")!, "memory.soft_limit_in_bytes"), "utf8").trim(), String(16 << 20), "the refused update's reservation was put back");
      }
      const [info] = JSON.parse(tool("corerun", ["inspect", "--root", root, id]).stdout) as { HostConfig: Record<string, unknown> }[];
      assert.equal(info!.HostConfig.MemoryReservation, 16 << 20);
    } finally {
      assert.equal(tool("corerun", ["rm", "-f", "--root", root, id]).code, 0);
    }
    assert.deepEqual(containerCgroups(), []);
  });

  test("after kill -9 of corerun, cleanup removes the container's cgroup in every hierarchy", async () => {
    const child = spawn(join(REPO, "bin/corerun"), ["--root", root, "--rootfs", rootfs, "--cgroup-parent", PARENT, "--memory", "32", "/bin/sh", "-c", "echo started; sleep 30"], { stdio: ["ignore", "pipe", "pipe"] });
    await new Promise((resolve) => child.stdout.once("data", resolve));
    child.kill("SIGKILL");
    await new Promise((resolve) => child.once("exit", resolve));
    assert.ok(containerCgroups().length >= 4, "the cgroup outlives a killed corerun");
    const r = tool("corerun", ["cleanup", "--root", root]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(containerCgroups(), []);
    assert.deepEqual(leftoverState(root), []);
  });

  test("--cpuset-cpus and --cpuset-mems: the command runs on the CPUs given (nproc, Cpus_allowed_list), its cgroup's cpuset says so", () => {
    const last = readFileSync("/sys/devices/system/cpu/online", "utf8").trim().split(/[-,]/).at(-1)!;
    const r = corerun(["--cpuset-cpus", last, "--cpuset-mems", "0", "/bin/sh", "-c", "nproc; grep Cpus_allowed_list /proc/self/status; cat /sys/fs/cgroup/cpuset/cpuset.cpus /sys/fs/cgroup/cpuset/cpuset.mems 2>/dev/null || cat /sys/fs/cgroup/cpuset.cpus /sys/fs/cgroup/cpuset.mems"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n"), ["1", `Cpus_allowed_list:\t${last}`, last, "0"]);
  });

  test("--memory-reservation, --memory-swap, --memory-swappiness, --oom-kill-disable and --cpu-shares: the container reads them in its own cgroup (cgroup v1 files on this host)", { skip: !existsSync("/sys/fs/cgroup/memory/memory.swappiness") && "needs the v1 memory hierarchy" }, () => {
    const swap = existsSync("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes");
    const files = ["memory/memory.soft_limit_in_bytes", "memory/memory.swappiness", "memory/memory.oom_control", "cpu/cpu.shares", ...(swap ? ["memory/memory.memsw.limit_in_bytes"] : [])];
    const r = corerun(["--memory", "64", "--memory-reservation", "32m", ...(swap ? ["--memory-swap", "128m"] : []), "--memory-swappiness", "10", "--oom-kill-disable", "--cpu-shares", "512", "/bin/sh", "-c", `cd /sys/fs/cgroup && cat ${files.join(" ")}`]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.deepEqual(lines.slice(0, 3), [String(32 << 20), "10", "oom_kill_disable 1"]);
    assert.equal(lines.at(swap ? -2 : -1), "512");
    if (swap) assert.equal(lines.at(-1), String(128 << 20));
  });

  test("--oom-kill-disable: at its limit the task waits (under_oom 1) instead of being killed; rm -f ends it and leaves nothing", { skip: !existsSync("/sys/fs/cgroup/memory/memory.oom_control") && "needs the v1 memory hierarchy" }, async () => {
    const base = ["--root", root, "--rootfs", rootfs, "--cgroup-parent", PARENT];
    const d = tool("corerun", [...base, "-d", "--network", "none", "-m", "16", "--oom-kill-disable", "/bin/sh", "-c", "x=$(head -c 64000000 /dev/zero | tr '\\0' a); echo survived"]);
    assert.equal(d.code, 0, d.stderr);
    const id = d.stdout.trim();
    try {
      const control = join(v1Dir(id, "memory")!, "memory.oom_control");
      let text = "";
      for (let i = 0; i < 100 && !/under_oom 1/.test(text); i++) {
        await new Promise((r) => setTimeout(r, 100));
        text = readFileSync(control, "utf8");
      }
      assert.match(text, /oom_kill_disable 1\nunder_oom 1\noom_kill 0/);
      assert.match(tool("corerun", ["ps", "--root", root]).stdout, new RegExp(`^${id} .* running `, "m"));
    } finally {
      const rm = tool("corerun", ["rm", "-f", "--root", root, id]);
      assert.equal(rm.code, 0, rm.stderr);
    }
    assert.deepEqual(leftoverState(root), []);
    assert.deepEqual(containerCgroups(), []);
  });

  const disk = diskUnder(REPO);
  test(`--device-read-bps, --device-write-bps, --device-read-iops, --device-write-iops on the disk under the checkout (${disk ?? "none"}): its throttle files hold MAJ:MIN RATE`, { skip: !disk && "the checkout is on no block device" }, () => {
    const numbers = devText(statSync(disk!).rdev);
    const files = ["read_bps_device", "write_bps_device", "read_iops_device", "write_iops_device"];
    const v1 = existsSync("/sys/fs/cgroup/blkio");
    const read = v1 ? `cd /sys/fs/cgroup/blkio && cat ${files.map((f) => `blkio.throttle.${f}`).join(" ")}` : "cat /sys/fs/cgroup/io.max";
    const r = corerun(["--device-read-bps", `${disk}:1mb`, "--device-write-bps", `${disk}:2mb`, "--device-read-iops", `${disk}:100`, "--device-write-iops", `${disk}:200`, "/bin/sh", "-c", read]);
    assert.equal(r.code, 0, r.stderr);
    const want = v1 ? [`${numbers} 1048576`, `${numbers} 2097152`, `${numbers} 100`, `${numbers} 200`] : [`${numbers} rbps=1048576 wbps=2097152 riops=100 wiops=200`];
    assert.deepEqual(r.stdout.trim().split("\n"), want);
  });

  test(`--blkio-weight: ${hasBfq() ? "written to BFQ's weight (BFQ is loaded here)" : "refused naming the files the kernel lacks, as no disk can use BFQ here (exit 125, one line, nothing left)"}`, () => {
    // The weight files are in every cgroup but the root once BFQ's module is loaded.
    const bfq = hasBfq();
    const r = corerun(["--blkio-weight", "300", "/bin/sh", "-c", "cat /sys/fs/cgroup/blkio/blkio.bfq.weight 2>/dev/null || cat /sys/fs/cgroup/blkio/blkio.weight 2>/dev/null || cat /sys/fs/cgroup/io.bfq.weight"]);
    if (bfq) {
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /300/);
      return;
    }
    assert.equal(r.code, 125);
    assert.match(r.stderr, /^corerun: a block I\/O weight needs \S+blkio\.bfq\.weight or \S+blkio\.weight, which this kernel lacks: the BFQ I\/O scheduler is not loaded .*\n$/);
  });

  test("--print-script gives corerun-cgroup the same resource options", () => {
    const r = corerun(["--cpus", "0.5", "--cpuset-cpus", "0", "--memory", "64", "--memory-reservation", "32", "--oom-kill-disable", "--print-script", "/bin/true"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /corerun-cgroup" create \w+ --memory 67108864b --memory-reservation 33554432b --oom-kill-disable --cpu 50 --cpuset-cpus 0 --docker-devices --cgroup-parent /);
  });

  for (const [flag, value, message] of [
    ["--memory", "-5", /--memory "-5" is not a size/],
    ["--cpuset-cpus", "4095", /--cpuset-cpus "4095": this host has no CPU 4095; it has /],
    ["--cpuset-mems", "0-", /--cpuset-mems "0-" is not a list of memory node/],
    ["--memory-swap", "128m", /--memory-swap "128m" is memory plus swap: give --memory too/],
    ["--memory-swappiness", "101", /--memory-swappiness "101": give .* from 0 to 100/],
    ["--memory-reservation", "1m", /--memory-reservation "1m" is below the minimum of 6 MiB/],
    ["--device-read-bps", "/dev/null:1mb", /--device-read-bps "\/dev\/null:1mb": \/dev\/null is not a block device/],
    ["--blkio-weight", "5", /--blkio-weight "5": give a relative block I\/O weight \(0 for none\), an integer from 10 to 1000/],
    ["--memory", "0", /--memory "0" is below the minimum of 6 MiB/],
    ["--cpu", "abc", /--cpu "abc" is not a number/],
    ["--pids", "0", /--pids/],
    ["--cpus", "0.5", /--cpu and --cpus set the same limit/],
  ] as const) {
    test(`${flag} ${value} is refused: exit 125, one line, nothing created`, () => {
      const extra = flag === "--cpus" ? ["--cpu", "50"] : [];
      const r = corerun([...extra, flag, value, "/bin/true"]);
      assert.equal(r.code, 125);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.match(r.stderr, message);
    });
  }
});
