import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { detectCgroupSetup, discoverLayout, mountLayout, parseV1Mounts, readHostCgroupMounts } from "./detect.ts";
import { FixtureHost } from "./_fixture.ts";

const hosts: FixtureHost[] = [];
function host(...args: ConstructorParameters<typeof FixtureHost>): FixtureHost {
  const h = new FixtureHost(...args);
  hosts.push(h);
  return h;
}
after(() => hosts.forEach((h) => h.cleanup()));

describe("detectCgroupSetup on a fixture tree", () => {
  it("says unified when the root is cgroup2", () => {
    const h = host("unified");
    assert.equal(detectCgroupSetup(h.root, h), "unified");
  });
  it("says hybrid when the root is tmpfs and root/unified is cgroup2", () => {
    const h = host("hybrid");
    assert.equal(detectCgroupSetup(h.root, h), "hybrid");
  });
  it("says legacy when the root is tmpfs without a cgroup2 unified", () => {
    const h = host("legacy");
    assert.equal(detectCgroupSetup(h.root, h), "legacy");
  });
  it("refuses a root that is no cgroup filesystem, naming it", () => {
    const h = host("legacy");
    assert.throws(() => detectCgroupSetup("/", h), /^Error: \/ is neither cgroup2 nor a tmpfs of cgroup hierarchies \(statfs type 0xef53\)$/);
    assert.throws(() => detectCgroupSetup(join(h.root, "nope"), h), /nope is neither .*\(it does not exist\)/);
  });
});

describe("parseV1Mounts", () => {
  const mountinfo = [
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755",
    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct",
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory",
    "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids",
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd",
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw",
    "50 22 0:40 / /mnt/other\\040cgroup rw - cgroup cgroup rw,freezer",
    "51 31 0:41 / /sys/fs/cgroup/net\\040cls rw - cgroup cgroup rw,net_cls",
  ].join("\n");
  it("maps each controller to its mount under root, co-mounted ones to the same", () => {
    assert.deepEqual(parseV1Mounts(mountinfo, "/sys/fs/cgroup"), {
      cpu: "/sys/fs/cgroup/cpu,cpuacct",
      cpuacct: "/sys/fs/cgroup/cpu,cpuacct",
      memory: "/sys/fs/cgroup/memory",
      pids: "/sys/fs/cgroup/pids",
      net_cls: "/sys/fs/cgroup/net cls",
    });
  });
});

describe("discoverLayout on a fixture tree", () => {
  it("finds this host's hybrid shape: v1 memory/cpu/pids, a controller-less unified", () => {
    const h = host("hybrid");
    const l = discoverLayout({ root: h.root, mountinfo: h.mountinfo, fs: h });
    assert.equal(l.setup, "hybrid");
    assert.equal(l.unified, join(h.root, "unified"));
    assert.deepEqual(l.v2Controllers, ["hugetlb"]);
    assert.equal(l.v1.memory, join(h.root, "memory"));
    assert.equal(l.v1.pids, join(h.root, "pids"));
    assert.equal(l.v1.freezer, join(h.root, "freezer"));
  });
  it("finds a pure v2 host's controllers and no v1", () => {
    const h = host("unified");
    const l = discoverLayout({ root: h.root, mountinfo: h.mountinfo, fs: h });
    assert.deepEqual(l, { setup: "unified", root: h.root, unified: h.root, v2Controllers: ["cpuset", "cpu", "io", "memory", "hugetlb", "pids"], v1: {} });
  });
  it("finds a legacy host's hierarchies", () => {
    const h = host("legacy", { v1: [["cpu", "cpuacct"], ["memory"]] });
    const l = discoverLayout({ root: h.root, mountinfo: h.mountinfo, fs: h });
    assert.equal(l.unified, undefined);
    assert.deepEqual(l.v1, { cpu: join(h.root, "cpu,cpuacct"), cpuacct: join(h.root, "cpu,cpuacct"), memory: join(h.root, "memory") });
  });
});

describe("readHostCgroupMounts and mountLayout", () => {
  it("read now and parsed later, give what discoverLayout finds of the mounts", () => {
    for (const setup of ["hybrid", "unified", "legacy"] as const) {
      const h = host(setup);
      const { unified, v1 } = discoverLayout({ root: h.root, mountinfo: h.mountinfo, fs: h });
      const read = readHostCgroupMounts({ root: h.root, mountinfo: h.mountinfo, fs: h });
      assert.equal(read.setup, setup);
      assert.deepEqual(mountLayout(read), { setup, unified, v1 });
    }
  });
});

describe("discoverLayout of the host", () => {
  it("reads the host's layout once per process and reads a given tree every time", () => {
    assert.equal(discoverLayout(), discoverLayout());
    const h = host("hybrid");
    assert.notEqual(discoverLayout({ root: h.root, fs: h }), discoverLayout({ root: h.root, fs: h }));
  });
});
