import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { cgroupManager, type CgroupOptions } from "./manager.ts";
import { parseLimits } from "./limits.ts";
import { FixtureHost, type FixtureOptions } from "./_fixture.ts";

const hosts: FixtureHost[] = [];
function v2Host(opts: FixtureOptions = {}): FixtureHost {
  const h = new FixtureHost("unified", opts);
  hosts.push(h);
  return h;
}
after(() => hosts.forEach((h) => h.cleanup()));

function manager(h: FixtureHost, extra: Partial<CgroupOptions> = {}) {
  return cgroupManager({ name: "c1", root: h.root, mountinfo: h.mountinfo, fs: h, ...extra });
}

const limits = parseLimits({ memory: "64", cpu: "50", pids: "20" }, { cpuCount: 2 });

describe("v2 backend on a fixture tree (pure v2 host)", () => {
  it("creates corerun/NAME and reports one path under the v2 key", () => {
    const h = v2Host();
    const paths = manager(h).create();
    assert.deepEqual(paths, { "": h.at("corerun/c1") });
  });

  it("writes memory.max, memory.swap.max 0, cpu.max and pids.max", () => {
    const h = v2Host();
    manager(h).create(limits);
    assert.equal(h.file("corerun/c1/memory.max"), String(64 * 1024 * 1024));
    assert.equal(h.file("corerun/c1/memory.swap.max"), "0");
    assert.equal(h.file("corerun/c1/cpu.max"), "50000 100000");
    assert.equal(h.file("corerun/c1/pids.max"), "20");
  });

  it("leaves memory.swap.max alone where the kernel does not account swap", () => {
    const h = v2Host({ swap: false });
    manager(h).create(limits);
    assert.deepEqual(h.written("corerun/c1/memory.swap.max"), []);
  });

  it("enables the controllers in the root's and the parent's cgroup.subtree_control, not the leaf's", () => {
    const h = v2Host();
    manager(h, { parent: "corerun/web" }).create(limits);
    for (const level of ["cgroup.subtree_control", "corerun/cgroup.subtree_control", "corerun/web/cgroup.subtree_control"]) {
      assert.deepEqual(h.written(level), ["+memory", "+cpu", "+pids", "+cpuset", "+io"], level);
    }
    assert.deepEqual(h.written("corerun/web/c1/cgroup.subtree_control"), []);
  });

  it("does not enable a controller twice", () => {
    const h = v2Host();
    manager(h, { name: "a" }).create(limits);
    manager(h, { name: "b" }).create(limits);
    assert.equal(h.written("corerun/cgroup.subtree_control").length, 5);
  });

  it("refuses a limit whose controller the host does not offer, naming it, and creates nothing", () => {
    const h = v2Host({ v2Controllers: ["cpu", "pids"] });
    assert.throws(() => manager(h).create(limits), /^Error: the memory limit needs the memory controller, which this host does not offer: .*cgroup\.controllers offers cpu pids$/);
    assert.equal(h.exists(h.at("corerun")), false);
  });

  it("explains the no-internal-processes rule when the parent has processes, and removes the leaf", () => {
    const h = v2Host();
    const sleeper = spawn("sleep", ["10"]);
    try {
      h.mkdir(h.at("corerun"));
      h.set("corerun/cgroup.procs", `${sleeper.pid}\n`);
      assert.throws(() => manager(h).create(limits), /cannot enable the memory controller in .*corerun\/cgroup\.subtree_control: .* has processes of its own.*no-internal-processes rule/);
      assert.equal(h.exists(h.at("corerun/c1")), false);
      // Without limits the controllers are only for usage numbers: the cgroup is made without them.
      assert.deepEqual(manager(h).create(), { "": h.at("corerun/c1") });
    } finally {
      sleeper.kill("SIGKILL");
    }
  });

  it("refuses an existing name and leaves the existing cgroup alone", () => {
    const h = v2Host();
    manager(h).create();
    assert.throws(() => manager(h).create(limits), /^Error: cgroup c1 exists already: .*corerun\/c1$/);
    assert.equal(h.exists(h.at("corerun/c1")), true);
  });

  it("reads stats from memory.current, memory.peak, memory.events, cpu.stat, io.stat and pids.current", () => {
    const h = v2Host();
    const m = manager(h);
    m.create(limits);
    h.set("corerun/c1/memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n");
    h.set("corerun/c1/pids.current", "3\n");
    assert.deepEqual(m.stats(), {
      memory: { current: 4096, peak: 8192, limit: 64 * 1024 * 1024 },
      cpu: { usageUsec: 1500, limitPercent: 50 },
      pids: { current: 3, limit: 20 },
      blockIO: { readBytes: 4196, writeBytes: 8192 },
      oomKills: 1,
      processes: 0,
    });
  });

  it("adds a task, freezes through cgroup.freeze, kills through cgroup.kill and removes", () => {
    const h = v2Host();
    const m = manager(h);
    m.create();
    const sleeper = spawn("sleep", ["10"]);
    m.addTask(sleeper.pid!);
    assert.deepEqual(m.pids(), [sleeper.pid]);
    m.freeze();
    assert.deepEqual(h.written("corerun/c1/cgroup.freeze"), ["1"]);
    m.thaw();
    assert.deepEqual(h.written("corerun/c1/cgroup.freeze"), ["1", "0"]);
    m.killAll();
    assert.deepEqual(h.written("corerun/c1/cgroup.kill"), ["1"]);
    m.remove();
    assert.equal(m.exists(), false);
    assert.equal(h.exists(h.at("corerun")), true, "the parent stays");
  });

  const host = { cpuCount: 2, onlineCpus: "0-1", onlineMems: "0", blockDevice: () => ({ major: 254, minor: 0 }) };
  it("writes a cpuset, memory.low, io.max and, where iocost is on, a weight scaled onto io.weight's 1-10000", () => {
    const h = v2Host();
    h.set("io.cost.qos", "254:0 enable=1 ctrl=auto rpct=0.00 rlat=250000 wpct=0.00 wlat=250000 min=1.00 max=10000.00\n");
    manager(h).create(parseLimits({ cpusetCpus: "0", cpusetMems: "0", memoryReservation: "16m", blkioWeight: "500", deviceWriteBps: ["/dev/vda:2mb"], deviceReadIops: ["/dev/vda:50"] }, host));
    assert.equal(h.file("corerun/c1/cpuset.cpus"), "0");
    assert.equal(h.file("corerun/c1/cpuset.mems"), "0");
    assert.equal(h.file("corerun/c1/memory.low"), String(16 * 1024 * 1024));
    assert.deepEqual(h.written("corerun/c1/io.weight"), ["default 4950"]);
    assert.deepEqual(h.written("corerun/c1/io.max"), ["254:0 wbps=2097152", "254:0 riops=50"]);
  });

  it("refuses a weight where neither BFQ nor iocost weighs I/O, and a cpuset outside the parent's; leaves no cgroup", () => {
    const h = v2Host();
    assert.throws(() => manager(h).create(parseLimits({ blkioWeight: "500" }, host)), /a block I\/O weight needs .*io\.bfq\.weight \(the BFQ I\/O scheduler\) or iocost enabled in the root's io\.cost\.qos, and this host has neither/);
    assert.equal(manager(h).exists(), false);
    const m = manager(h, { name: "narrow" });
    m.create();
    h.set("corerun/narrow/cpuset.cpus.effective", "0\n");
    const child = manager(h, { parent: "corerun/narrow" });
    assert.throws(() => child.create(parseLimits({ cpusetCpus: "1" }, host)), /cpuset cpus "1": the parent cgroup .*corerun\/narrow has CPUs 0 only, not 1/);
    assert.equal(child.exists(), false);
  });

  it("refuses what only cgroup v1 has (swappiness, the OOM killer switch), naming the file, and leaves no cgroup", () => {
    const h = v2Host();
    assert.throws(() => manager(h).create(parseLimits({ memorySwappiness: "0" })), /a swappiness needs cgroup v1's memory\.swappiness; cgroup v2 .* has no such file/);
    assert.throws(() => manager(h).create(parseLimits({ oomKillDisable: true })), /turning the OOM killer off needs cgroup v1's memory\.oom_control/);
    assert.equal(manager(h).exists(), false);
  });

  it("names the missing process when adding a pid that does not exist", () => {
    const h = v2Host();
    const m = manager(h);
    m.create();
    assert.throws(() => m.addTask(2 ** 22 + 1), /^Error: no process 4194305$/);
  });
});
