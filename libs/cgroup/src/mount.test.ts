import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readlinkSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REMOUNT, recordingSyscall } from "@corerun/syscall";
import { cgroupTree, mountCgroupTree } from "./mount.ts";
import type { CgroupLayout } from "./detect.ts";

const HYBRID: CgroupLayout = {
  setup: "hybrid", root: "/sys/fs/cgroup", unified: "/sys/fs/cgroup/unified", v2Controllers: [],
  v1: { cpu: "/sys/fs/cgroup/cpu,cpuacct", cpuacct: "/sys/fs/cgroup/cpu,cpuacct", memory: "/sys/fs/cgroup/memory", pids: "/sys/fs/cgroup/pids" },
};

describe("cgroupTree", () => {
  test("a pure v2 host: cgroup2 alone", () => {
    assert.deepEqual(cgroupTree({ setup: "unified", unified: "/sys/fs/cgroup", v1: {} }), {
      mounts: [{ fstype: "cgroup2", target: "/sys/fs/cgroup" }], links: [],
    });
  });

  test("a hybrid host: a tmpfs, each v1 hierarchy by its controllers, links for co-mounted ones, cgroup2 at unified", () => {
    assert.deepEqual(cgroupTree(HYBRID, "/x"), {
      mounts: [
        { fstype: "tmpfs", target: "/x", options: "mode=755,size=64k" },
        { fstype: "cgroup", target: "/x/cpu,cpuacct", options: "cpu,cpuacct" },
        { fstype: "cgroup", target: "/x/memory", options: "memory" },
        { fstype: "cgroup", target: "/x/pids", options: "pids" },
        { fstype: "cgroup2", target: "/x/unified" },
      ],
      links: [{ path: "/x/cpu", target: "cpu,cpuacct" }, { path: "/x/cpuacct", target: "cpu,cpuacct" }],
    });
  });
});

describe("mountCgroupTree", () => {
  test("read-only: each hierarchy ro, the holding tmpfs remounted ro once the links exist", () => {
    const dir = mkdtempSync(join(tmpdir(), "corerun-cgroup-mount-test-"));
    try {
      const { sys, calls } = recordingSyscall();
      mountCgroupTree(sys, cgroupTree(HYBRID, dir), true);
      const base = MS_NOSUID | MS_NODEV | MS_NOEXEC;
      assert.deepEqual(calls.map((c) => c.args), [
        ["tmpfs", dir, "tmpfs", base, "mode=755,size=64k"],
        ["cgroup", `${dir}/cpu,cpuacct`, "cgroup", base | MS_RDONLY, "cpu,cpuacct"],
        ["cgroup", `${dir}/memory`, "cgroup", base | MS_RDONLY, "memory"],
        ["cgroup", `${dir}/pids`, "cgroup", base | MS_RDONLY, "pids"],
        ["cgroup2", `${dir}/unified`, "cgroup2", base | MS_RDONLY, null],
        [null, dir, null, MS_REMOUNT | MS_RDONLY | base],
      ]);
      assert.equal(readlinkSync(join(dir, "cpu")), "cpu,cpuacct");
      assert.ok(existsSync(join(dir, "unified")));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("writable (--privileged): no read-only flag and no remount", () => {
    const { sys, calls } = recordingSyscall();
    mountCgroupTree(sys, { mounts: [{ fstype: "cgroup2", target: "/sys/fs/cgroup" }], links: [] }, false);
    assert.deepEqual(calls.map((c) => c.args), [["cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, null]]);
  });
});
