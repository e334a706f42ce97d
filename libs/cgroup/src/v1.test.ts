import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { cgroupManager, listCgroups, type CgroupOptions } from "./manager.ts";
import { parseLimits } from "./limits.ts";
import { FixtureHost, type FixtureOptions } from "./_fixture.ts";

const hosts: FixtureHost[] = [];
function fixture(setup: "hybrid" | "legacy", opts: FixtureOptions = {}): FixtureHost {
  const h = new FixtureHost(setup, opts);
  hosts.push(h);
  return h;
}
after(() => hosts.forEach((h) => h.cleanup()));

/** A manager placing the cgroup in every hierarchy, as for an OCI container (runc's placement). */
function manager(h: FixtureHost, extra: Partial<CgroupOptions> = {}) {
  return cgroupManager({ name: "c1", root: h.root, mountinfo: h.mountinfo, fs: h, everyHierarchy: true, ...extra });
}

const MiB = 1024 * 1024;
const limits = parseLimits({ memory: "64", cpu: "50", pids: "20" }, { cpuCount: 2 });

describe("v1 backend on a fixture tree (legacy host)", () => {
  it("creates the cgroup in the memory, cpu, cpuacct, pids, devices, cpuset, blkio and freezer hierarchies", () => {
    const h = fixture("legacy");
    assert.deepEqual(manager(h).create(), {
      memory: h.at("memory/corerun/c1"),
      cpu: h.at("cpu/corerun/c1"),
      pids: h.at("pids/corerun/c1"),
      devices: h.at("devices/corerun/c1"),
      cpuset: h.at("cpuset/corerun/c1"),
      blkio: h.at("blkio/corerun/c1"),
      cpuacct: h.at("cpuacct/corerun/c1"),
      freezer: h.at("freezer/corerun/c1"),
    });
    assert.equal(h.exists(h.at("systemd/corerun")), false, "hierarchies it does not use are left alone");
  });

  it("without everyHierarchy, devices only for device rules, which go in after a deny of everything", () => {
    const h = fixture("legacy");
    assert.equal(manager(h, { everyHierarchy: false }).create().devices, undefined);
    const rules = parseLimits({ dockerDevices: true, deviceCgroupRules: ["c 10:200 r"] });
    const h2 = fixture("legacy");
    assert.equal(manager(h2, { everyHierarchy: false, limits: rules }).create(rules).devices, h2.at("devices/corerun/c1"));
    const writes = h2.writes.filter(([p]) => p.startsWith("devices/corerun/c1/")).map(([p, d]) => `${p.split("/").at(-1)} ${d}`);
    assert.deepEqual(writes.slice(0, 4), ["devices.deny a", "devices.deny a *:* rwm", "devices.allow c 10:200 r", "devices.allow c *:* m"]);
  });

  it("writes memory.limit_in_bytes and an equal memsw limit, cfs period then quota, pids.max", () => {
    const h = fixture("legacy");
    manager(h).create(limits);
    assert.deepEqual(h.written("memory/corerun/c1/memory.limit_in_bytes"), [String(64 * MiB)]);
    assert.deepEqual(h.written("memory/corerun/c1/memory.memsw.limit_in_bytes"), [String(64 * MiB)]);
    const cpuWrites = h.writes.filter(([p]) => p.startsWith("cpu/corerun/c1/")).map(([p, d]) => `${p.split("/").at(-1)}=${d}`);
    assert.deepEqual(cpuWrites, ["cpu.cfs_period_us=100000", "cpu.cfs_quota_us=50000"]);
    assert.equal(h.file("pids/corerun/c1/pids.max"), "20");
  });

  it("keeps memsw >= memory at each step: raises memsw first, lowers it last", () => {
    const h = fixture("legacy");
    const m = manager(h);
    m.create({ memory: 64 * MiB });
    h.writes.length = 0;
    m.apply({ memory: 128 * MiB });
    m.apply({ memory: 32 * MiB });
    assert.deepEqual(
      h.writes.map(([p, d]) => `${p.split("/").at(-1)}=${Number(d) / MiB}`),
      ["memory.memsw.limit_in_bytes=128", "memory.limit_in_bytes=128", "memory.limit_in_bytes=32", "memory.memsw.limit_in_bytes=32"],
    );
  });

  it("writes no memsw limit where the kernel does not account swap", () => {
    const h = fixture("legacy", { swap: false });
    manager(h).create(limits);
    assert.deepEqual(h.written("memory/corerun/c1/memory.memsw.limit_in_bytes"), []);
    assert.equal(h.file("memory/corerun/c1/memory.limit_in_bytes"), String(64 * MiB));
  });

  it("shares one directory between co-mounted controllers", () => {
    const h = fixture("legacy", { v1: [["cpu", "cpuacct"], ["memory"], ["pids"], ["freezer"]] });
    const paths = manager(h).create(limits);
    assert.equal(paths.cpu, h.at("cpu,cpuacct/corerun/c1"));
    assert.equal(paths.cpuacct, paths.cpu);
    assert.equal(h.file("cpu,cpuacct/corerun/c1/cpu.cfs_quota_us"), "50000");
  });

  it("refuses a limit whose hierarchy is not mounted, naming the controller, and creates nothing", () => {
    const h = fixture("legacy", { v1: [["cpu"], ["memory"], ["freezer"]] });
    assert.throws(() => manager(h).create(limits), /^Error: the pids limit needs the pids controller, which this host does not offer: no v1 hierarchy under .* mounts pids$/);
    assert.equal(h.exists(h.at("memory/corerun")), false);
  });

  it("reads stats from usage_in_bytes, max_usage_in_bytes, oom_control, cpuacct.usage and pids.current", () => {
    const h = fixture("legacy");
    const m = manager(h);
    m.create(limits);
    h.set("memory/corerun/c1/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
    h.set("pids/corerun/c1/pids.current", "4\n");
    assert.deepEqual(m.stats(), {
      memory: { current: 4096, peak: 8192, limit: 64 * MiB },
      cpu: { usageUsec: 2500, limitPercent: 50 },
      pids: { current: 4, limit: 20 },
      blockIO: { readBytes: 4096, writeBytes: 8192 },
      oomKills: 2,
      processes: 0,
    });
  });

  it("reports no limit as null (the v1 page counter ceiling, quota -1, pids max)", () => {
    const h = fixture("legacy");
    const m = manager(h);
    m.create();
    const s = m.stats();
    assert.equal(s.memory.limit, null);
    assert.equal(s.cpu.limitPercent, null);
    assert.equal(s.pids.limit, null);
  });

  it("freezes through freezer.state and kills each pid between freeze and thaw", async () => {
    const h = fixture("legacy");
    const m = manager(h);
    m.create();
    const sleeper = spawn("sleep", ["10"]);
    const ended = new Promise((resolve) => sleeper.once("exit", (_code, signal) => resolve(signal)));
    m.addTask(sleeper.pid!);
    m.killAll();
    assert.deepEqual(h.written("freezer/corerun/c1/freezer.state"), ["FROZEN", "THAWED"]);
    assert.equal(await ended, "SIGKILL");
    m.remove();
    assert.equal(m.exists(), false);
  });

  it("removes child cgroups the container made, deepest first", () => {
    const h = fixture("legacy");
    const m = manager(h);
    m.create();
    for (const dir of Object.values(m.paths())) {
      h.mkdir(`${dir}/child`);
      h.mkdir(`${dir}/child/grandchild`);
    }
    m.remove();
    assert.equal(m.exists(), false);
  });

  it("says which processes keep a cgroup from being removed", () => {
    const h = fixture("legacy");
    const m = manager(h);
    m.create();
    const sleeper = spawn("sleep", ["10"]);
    try {
      m.addTask(sleeper.pid!);
      assert.throws(() => m.remove(), new RegExp(`cannot remove cgroup .*/c1: it still has processes ${sleeper.pid}$`));
    } finally {
      sleeper.kill("SIGKILL");
    }
  });
});

describe("per-controller backends on a fixture tree (hybrid host like this one)", () => {
  it("puts memory, cpu, pids, devices, cpuset and blkio in v1, the process in cpuacct too (where engines read CPU time) and in a controller-less v2 cgroup", () => {
    const h = fixture("hybrid");
    const paths = manager(h).create(limits);
    assert.deepEqual(paths, {
      "": h.at("unified/corerun/c1"),
      memory: h.at("memory/corerun/c1"),
      cpu: h.at("cpu/corerun/c1"),
      cpuacct: h.at("cpuacct/corerun/c1"),
      pids: h.at("pids/corerun/c1"),
      devices: h.at("devices/corerun/c1"),
      cpuset: h.at("cpuset/corerun/c1"),
      blkio: h.at("blkio/corerun/c1"),
    });
    assert.equal(h.file("memory/corerun/c1/memory.limit_in_bytes"), String(64 * MiB));
    assert.equal(h.file("pids/corerun/c1/pids.max"), "20");
    assert.equal(h.exists(h.at("freezer/corerun")), false, "v2 freezes, so the v1 freezer is not needed");
    assert.deepEqual(h.written("unified/cgroup.subtree_control"), [], "nothing to enable in a controller-less v2");
  });

  it("takes a controller from v2 when the unified hierarchy has it", () => {
    const h = fixture("hybrid", { v2Controllers: ["pids"], v1: [["cpu"], ["memory"], ["freezer"]] });
    const paths = manager(h).create(limits);
    assert.equal(paths.pids, undefined);
    assert.equal(h.file("unified/corerun/c1/pids.max"), "20");
    assert.deepEqual(h.written("unified/corerun/cgroup.subtree_control"), ["+pids"]);
  });

  it("reads CPU time from the v2 cpu.stat and OOM kills from v1, freezes and kills through v2", async () => {
    const h = fixture("hybrid");
    const m = manager(h);
    m.create(limits);
    const s = m.stats();
    assert.equal(s.cpu.usageUsec, 1500);
    assert.equal(s.oomKills, 0);
    const sleeper = spawn("sleep", ["10"]);
    const ended = new Promise((resolve) => sleeper.once("exit", (_code, signal) => resolve(signal)));
    m.addTask(sleeper.pid!);
    assert.equal(h.file("unified/corerun/c1/cgroup.procs").trim(), String(sleeper.pid));
    assert.equal(h.file("memory/corerun/c1/cgroup.procs").trim(), String(sleeper.pid));
    m.freeze();
    m.thaw();
    assert.deepEqual(h.written("unified/corerun/c1/cgroup.freeze"), ["1", "0"]);
    m.killAll();
    assert.deepEqual(h.written("unified/corerun/c1/cgroup.kill"), ["1"]);
    assert.equal(await ended, "SIGKILL");
    m.remove();
    assert.equal(m.exists(), false);
    assert.deepEqual(listCgroups({ root: h.root, mountinfo: h.mountinfo, fs: h }), []);
  });

  it("lists the cgroups under a parent", () => {
    const h = fixture("hybrid");
    manager(h, { name: "b" }).create();
    manager(h, { name: "a" }).create();
    assert.deepEqual(listCgroups({ root: h.root, mountinfo: h.mountinfo, fs: h }), ["a", "b"]);
  });

  it("rejects names and parents that would leave the hierarchy", () => {
    const h = fixture("hybrid");
    assert.throws(() => manager(h, { name: "../x" }), /cgroup name "\.\.\/x" is not valid/);
    assert.throws(() => manager(h, { parent: "a/../../b" }), /--cgroup-parent "a\/\.\.\/\.\.\/b" is not valid/);
    assert.equal(manager(h, { parent: "/corerun/" }).paths()[""], h.at("unified/corerun/c1"));
  });
});

describe("v1 cpuset, blkio and memory files on a fixture tree", () => {
  const host = { cpuCount: 2, onlineCpus: "0-1", onlineMems: "0", blockDevice: (p: string) => (p === "/dev/vda" ? { major: 254, minor: 0 } : `${p} is not a block device`) };

  it("gives each new cpuset level its parent's CPUs and nodes, so that a task may enter it, then the limit; a level it makes clones them for its children", () => {
    const h = fixture("hybrid");
    const m = manager(h, { parent: "corerun/pod" });
    m.create({}, {});
    assert.equal(h.file("cpuset/corerun/cpuset.cpus"), "0-1");
    assert.equal(h.file("cpuset/corerun/pod/c1/cpuset.mems"), "0");
    assert.equal(h.file("cpuset/corerun/pod/cgroup.clone_children"), "1");
    assert.deepEqual(h.written("cpuset/corerun/pod/c1/cpuset.cpus"), [], "the kernel copied them");
    h.set("cpuset/corerun/pod/cgroup.clone_children", "0\n");
    manager(h, { name: "c2", parent: "corerun/pod" }).create();
    assert.deepEqual(h.written("cpuset/corerun/pod/c2/cpuset.cpus"), ["0-1"], "copied by hand under a parent that does not clone");
    const sleeper = spawn("sleep", ["10"]);
    try {
      m.addTask(sleeper.pid!);
      m.apply(parseLimits({ cpusetCpus: "1" }, host));
      assert.equal(h.file("cpuset/corerun/pod/c1/cpuset.cpus"), "1");
    } finally {
      sleeper.kill("SIGKILL");
    }
  });

  it("writes a reservation, a swappiness and the OOM killer switch to the memory hierarchy", () => {
    const h = fixture("hybrid");
    manager(h).create(parseLimits({ memory: "64", memoryReservation: "32m", memorySwappiness: "10", oomKillDisable: true }, host));
    assert.equal(h.file("memory/corerun/c1/memory.soft_limit_in_bytes"), String(32 * MiB));
    assert.equal(h.file("memory/corerun/c1/memory.swappiness"), "10");
    assert.equal(h.file("memory/corerun/c1/memory.oom_control"), "1");
  });

  it("writes throttles per device as MAJ:MIN RATE", () => {
    const h = fixture("hybrid");
    manager(h).create(parseLimits({ deviceReadBps: ["/dev/vda:1mb"], deviceWriteIops: ["/dev/vda:100"] }, host));
    assert.equal(h.file("blkio/corerun/c1/blkio.throttle.read_bps_device"), "254:0 1048576");
    assert.equal(h.file("blkio/corerun/c1/blkio.throttle.write_iops_device"), "254:0 100");
  });

  it("refuses a weight where no scheduler weighs I/O, and leaves no cgroup", () => {
    const h = fixture("hybrid");
    assert.throws(() => manager(h).create(parseLimits({ blkioWeight: "500" }, host)), /a block I\/O weight needs .*blkio\.bfq\.weight or .*blkio\.weight, which this kernel lacks: the BFQ I\/O scheduler is not loaded/);
    assert.equal(manager(h).exists(), false);
  });

  it("without everyHierarchy, joins the cpuset hierarchy only for a cpuset limit (blkio always, for block I/O numbers)", () => {
    const h = fixture("hybrid");
    const plain = manager(h, { name: "plain", everyHierarchy: false }).create();
    assert.deepEqual(Object.keys(plain).sort(), ["", "blkio", "cpu", "cpuacct", "memory", "pids"]);
    const limits = parseLimits({ cpusetCpus: "1" }, host);
    const pinned = manager(h, { name: "pinned", everyHierarchy: false, limits }).create(limits);
    assert.deepEqual(Object.keys(pinned).sort(), ["", "blkio", "cpu", "cpuacct", "cpuset", "memory", "pids"]);
    assert.throws(() => manager(h, { name: "plain", everyHierarchy: false, paths: plain }).apply(parseLimits({ cpusetCpus: "0" }, host)), /the cpuset limit needs the cgroup in the cpuset hierarchy, and plain's was made without it/);
    // Found again by its recorded paths (no limits known then), it is removed from every one of them.
    const again = manager(h, { name: "pinned", everyHierarchy: false, paths: pinned });
    assert.deepEqual(again.paths(), pinned);
    again.remove();
    assert.equal(h.exists(pinned.cpuset!), false);
  });

  it("joins and removes an existing cgroup where its state recorded it: one made before cpuset and blkio placement has neither", () => {
    const h = fixture("hybrid");
    const old = manager(h);
    const paths = old.create();
    h.rmdir(paths.cpuset!);
    h.rmdir(paths.blkio!);
    const { cpuset: _c, blkio: _b, ...recorded } = paths;
    const m = manager(h, { paths: recorded });
    assert.deepEqual(m.paths(), recorded);
    const sleeper = spawn("sleep", ["10"]);
    try {
      m.addTask(sleeper.pid!);
      assert.equal(h.file("memory/corerun/c1/cgroup.procs").trim(), String(sleeper.pid));
      m.killAll();
      m.remove();
      assert.equal(m.exists(), false);
    } finally {
      sleeper.kill("SIGKILL");
    }
  });

  it("writes a weight to BFQ's file where it exists", () => {
    const h = fixture("hybrid");
    const m = manager(h);
    m.create();
    h.set("blkio/corerun/c1/blkio.bfq.weight", "100\n");
    m.apply(parseLimits({ blkioWeight: "300" }, host));
    assert.equal(h.file("blkio/corerun/c1/blkio.bfq.weight"), "300");
  });
});
