/* eslint-disable @typescript-eslint/no-explicit-any -- configs are built and changed as plain JSON */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { checkKernelSettings, hookArgv, parseSpec, planCapabilities, planCgroupPath, planLimits, planMount, planNamespaces, MOUNT_FLAGS as MS } from "./index.ts";
import type { NamespaceType, Spec } from "./spec.ts";

const base = () => ({
  ociVersion: "1.2.0",
  process: { user: { uid: 0, gid: 0 }, args: ["/bin/sh"], cwd: "/" },
  root: { path: "rootfs" },
  linux: { namespaces: [{ type: "pid" }, { type: "mount" }, { type: "network", path: "/run/netns/x" }] },
});

describe("parseSpec", () => {
  test("accepts a runc-spec style config", () => {
    const s = parseSpec(base(), "config.json");
    assert.equal(s.process!.args![0], "/bin/sh");
  });

  const bad: [string, (c: Record<string, any>) => void, RegExp][] = [
    ["an unknown top-level field", (c) => (c.vm = {}), /config\.json: vm: corerun does not support this field; remove it$/],
    ["an unsupported linux field", (c) => (c.linux.intelRdt = {}), /linux\.intelRdt: corerun does not support this field/],
    ["a relative cwd", (c) => (c.process.cwd = "tmp"), /process\.cwd: cwd must be an absolute path/],
    ["an env entry without =", (c) => (c.process.env = ["FOO"]), /process\.env\[0\]: an env entry must be KEY=VALUE/],
    ["an AppArmor profile", (c) => (c.process.apparmorProfile = "docker-default"), /process\.apparmorProfile: an AppArmor profile is not supported/],
    ["a 2.x version", (c) => (c.ociVersion = "2.0.0"), /ociVersion: corerun runs runtime-spec 1\.x bundles/],
    ["an unknown rlimit", (c) => (c.process.rlimits = [{ type: "RLIMIT_FOO", hard: 1, soft: 1 }]), /process\.rlimits\[0\]\.type/],
    ["a relative hook path", (c) => (c.hooks = { poststop: [{ path: "hook" }] }), /hooks\.poststop\[0\]\.path: a hook's path must be absolute/],
  ];
  for (const [what, change, message] of bad) {
    test(`refuses ${what}, naming the field`, () => {
      const c: Record<string, any> = base();
      change(c);
      assert.throws(() => parseSpec(c, "config.json"), message);
    });
  }
});

describe("hookArgv", () => {
  test("a hook's args, or its path alone when args is missing or empty (runc's {path})", () => {
    assert.deepEqual(hookArgv({ path: "/bin/hook", args: ["hook", "-v"] }), ["hook", "-v"]);
    assert.deepEqual(hookArgv({ path: "/bin/hook", args: [] }), ["/bin/hook"]);
    assert.deepEqual(hookArgv({ path: "/bin/hook" }), ["/bin/hook"]);
  });
});

describe("planMount", () => {
  test("a read-only recursive bind: flags for the remount, propagation apart", () => {
    const p = planMount({ destination: "/data", type: "bind", source: "/srv", options: ["rbind", "ro", "nosuid", "rprivate"] }, "mounts[0]");
    assert.equal(p.type, "bind");
    assert.equal(p.flags, MS.BIND | MS.REC | MS.RDONLY | MS.NOSUID);
    assert.equal(p.propagation, MS.PRIVATE | MS.REC);
    assert.equal(p.data, "");
  });

  test("filesystem options become the data string; rw after ro clears it", () => {
    const p = planMount({ destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "ro", "rw", "mode=755", "size=65536k"] }, "mounts[1]");
    assert.equal(p.flags, MS.NOSUID);
    assert.equal(p.cleared, MS.RDONLY);
    assert.equal(p.data, "mode=755,size=65536k");
  });

  test("tmpcopyup (podman's --read-only, --tmpfs) is the plan's copyUp, not a filesystem option; notmpcopyup turns it off", () => {
    const p = planMount({ destination: "/etc", type: "tmpfs", source: "tmpfs", options: ["rw", "tmpcopyup", "size=65536k"] }, "m");
    assert.deepEqual([p.copyUp, p.data], [true, "size=65536k"]);
    assert.equal(planMount({ destination: "/etc", type: "tmpfs", options: ["tmpcopyup", "notmpcopyup"] }, "m").copyUp, false);
  });

  test("recursive attributes for mount_setattr", () => {
    const p = planMount({ destination: "/x", type: "bind", source: "/x", options: ["rbind", "rro", "rnoexec"] }, "m");
    assert.equal(p.recursiveSet, 0x1 | 0x8);
  });

  test("refuses what it does not implement, by name", () => {
    assert.throws(() => planMount({ destination: "/x", type: "nfs", source: "h:/x" }, "mounts[2]"), /mounts\[2\] \(\/x\): mount type "nfs" is not supported/);
    assert.throws(() => planMount({ destination: "/x", type: "bind", source: "/y", options: ["rbind", "tmpcopyup"] }, "m"), /tmpcopyup copies into a tmpfs; this mount is bind/);
    assert.throws(() => planMount({ destination: "/x", type: "bind", source: "/y", options: ["bind", "mode=1"] }, "m"), /unknown option "mode=1" for a bind mount/);
    assert.throws(() => planMount({ destination: "x", type: "tmpfs" }, "m"), /must be an absolute path/);
    assert.throws(() => planMount({ destination: "/x", type: "bind" }, "m"), /a bind mount needs a source/);
  });
});

describe("the rest of config.json as corerun's steps", () => {
  test("namespaces: created, joined by path; mount required; user needs mappings", () => {
    const s = parseSpec(base(), "c");
    assert.deepEqual(planNamespaces(s), { create: ["pid", "mount"], join: [{ type: "network", path: "/run/netns/x" }] });
    const noMount = { ...base(), linux: { namespaces: [{ type: "pid" }] } };
    assert.throws(() => planNamespaces(parseSpec(noMount, "c")), /needs a new mount namespace/);
    const user = { ...base(), linux: { namespaces: [{ type: "mount" }, { type: "user" }] } };
    assert.throws(() => planNamespaces(parseSpec(user, "c")), /a new user namespace needs uid and gid mappings/);
    const joinMount = { ...base(), linux: { namespaces: [{ type: "mount", path: "/proc/1/ns/mnt" }] } };
    assert.throws(() => planNamespaces(parseSpec(joinMount, "c")), /joining an existing mount namespace by path is not supported/);
    const joinUser = { ...base(), linux: { namespaces: [{ type: "mount" }, { type: "user", path: "/proc/7/ns/user" }] } };
    assert.throws(() => planNamespaces(parseSpec(joinUser, "c")), /joined by path needs its uid and gid mappings/);
    const maps = { uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }], gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }] };
    assert.deepEqual(planNamespaces(parseSpec({ ...base(), linux: { ...joinUser.linux, ...maps } }, "c")), { create: ["mount"], join: [{ type: "user", path: "/proc/7/ns/user" }] });
    assert.throws(() => planNamespaces(parseSpec({ ...base(), linux: { namespaces: [{ type: "mount" }], ...maps } }, "c")), /mappings need a user namespace/);
  });

  test("capabilities: names to numbers, unknown names refused", () => {
    const s = parseSpec({ ...base(), process: { ...base().process, capabilities: { bounding: ["CAP_KILL", "CAP_CHOWN"], ambient: ["CAP_KILL"] } } }, "c");
    assert.deepEqual(planCapabilities(s), { bounding: [0, 5], effective: [], permitted: [], inheritable: [], ambient: [5] });
    const bad = parseSpec({ ...base(), process: { ...base().process, capabilities: { bounding: ["KILL"] } } }, "c");
    assert.throws(() => planCapabilities(bad), /unknown capability "KILL"; names look like CAP_NET_ADMIN/);
  });

  test("cgroupsPath: PARENT/NAME, a default under corerun, systemd paths refused", () => {
    const s = (cgroupsPath?: string) => parseSpec({ ...base(), linux: { ...base().linux, cgroupsPath } }, "c");
    assert.deepEqual(planCgroupPath(s("/default/web"), "web"), { parent: "default", name: "web" });
    assert.deepEqual(planCgroupPath(s("/kubepods/besteffort/pod1/abc"), "abc"), { parent: "kubepods/besteffort/pod1", name: "abc" });
    assert.deepEqual(planCgroupPath(s(undefined), "web"), { parent: "corerun", name: "web" });
    assert.throws(() => planCgroupPath(s("system.slice:docker:web"), "web"), /systemd slice:prefix:name/);
    assert.throws(() => planCgroupPath(s("/web"), "web"), /give PARENT\/NAME/);
  });

  test("resources: limits in kernel units, device rules with runc's defaults after them", () => {
    const limits = planLimits({ memory: { limit: 64 << 20, swap: 128 << 20 }, cpu: { quota: 50000, period: 100000, shares: 512 }, pids: { limit: 10 }, devices: [{ allow: false, access: "rwm" }] });
    assert.equal(limits.memory, 64 << 20);
    assert.equal(limits.swap, 128 << 20);
    assert.deepEqual(limits.cpu, { quota: 50000, period: 100000 });
    assert.equal(limits.cpuShares, 512);
    assert.equal(limits.pids, 10);
    assert.deepEqual(limits.devices![0], { allow: false, type: "a", major: -1, minor: -1, access: "rwm" });
    assert.ok(limits.devices!.some((d) => d.allow && d.type === "c" && d.major === 1 && d.minor === 3), "/dev/null stays usable");
    assert.throws(() => planLimits({ memory: { limit: 64 << 20, swap: 1 << 20 } }), /must be at least memory\.limit/);
    assert.deepEqual(planLimits({ memory: { limit: 0 }, pids: { limit: -1 } }), {}, "0 and -1 mean no limit");
  });

  test("hostname, domainname and sysctls need the namespaces they live in, as runc's validator says", () => {
    const ns = (...create: NamespaceType[]) => ({ create: ["mount", ...create] as NamespaceType[], join: [] });
    const spec = (extra: Partial<Spec["linux"]> & { hostname?: string }) => ({ ...base(), hostname: extra.hostname, linux: { ...base().linux, ...extra } }) as Spec;
    checkKernelSettings(spec({ hostname: "web", sysctl: { "net.ipv4.ip_forward": "1", "kernel.shmmax": "1", "fs.mqueue.msg_max": "10", "kernel.domainname": "d" } }), ns("uts", "network", "ipc"));
    assert.throws(() => checkKernelSettings(spec({ hostname: "web" }), ns()), /hostname "web": needs a uts namespace/);
    assert.throws(() => checkKernelSettings(spec({ sysctl: { "kernel.shmmax": "1" } }), ns("uts")), /kernel\.shmmax: needs a ipc namespace/);
    assert.throws(() => checkKernelSettings(spec({ sysctl: { "vm.swappiness": "1" } }), ns("uts", "ipc", "network")), /vm\.swappiness: not a sysctl of a namespace the container can have of its own/);
    assert.throws(() => checkKernelSettings(spec({ sysctl: { "kernel/hostname": "x" } }), ns("uts")), /give the hostname field \(config\.json\) or --hostname instead/);
    assert.throws(() => checkKernelSettings(spec({ sysctl: { "net..x": "1" } }), ns("network")), /net\.\.x: not a sysctl name/);
    checkKernelSettings(spec({ sysctl: { "net.core.somaxconn": "512" } }), { create: ["mount"], join: [{ type: "network", path: "/run/netns/pod" }] });
    assert.throws(() => checkKernelSettings(spec({ sysctl: { "net.core.somaxconn": "512" } }), { create: ["mount"], join: [{ type: "network", path: "/proc/1/ns/net" }] }, (_t, path) => path === "/proc/1/ns/net"),
      /net\.core\.somaxconn: needs a network namespace in linux\.namespaces; without one it would be set for the whole host/, "joining the runtime's own namespace is no namespace of the container's");
  });

  test("resources: cpuset, memory reservation, swappiness, the OOM switch and block I/O, as runc reads them", () => {
    assert.deepEqual(planLimits({ cpu: { cpus: "0-1", mems: "0" } }).cpuset, { cpus: "0-1", mems: "0" });
    assert.throws(() => planLimits({ cpu: { cpus: "1-0" } }), /linux\.resources\.cpu\.cpus "1-0" is not a list such as 0-2,4/);
    const mem = planLimits({ memory: { reservation: 32 << 20, swappiness: 0, disableOOMKiller: true } });
    assert.deepEqual([mem.memoryReservation, mem.swappiness, mem.oomKillDisable], [32 << 20, 0, true]);
    assert.deepEqual(planLimits({ memory: { swappiness: -1, disableOOMKiller: false, reservation: 0 } }), {}, "-1, false and 0 leave the host's values");
    assert.throws(() => planLimits({ memory: { swappiness: 101 } }), /swappiness 101: give 0 to 100/);
    const io = planLimits({ blockIO: { weight: 300, weightDevice: [{ major: 8, minor: 0, weight: 200 }], throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1 << 20 }], throttleWriteIOPSDevice: [{ major: 8, minor: 0, rate: 0 }] } }).blockIO;
    assert.deepEqual(io, { weight: 300, weightDevice: [{ major: 8, minor: 0, weight: 200 }], readBps: [{ major: 8, minor: 0, rate: 1 << 20 }], writeIops: [{ major: 8, minor: 0, rate: 0 }] });
    assert.throws(() => planLimits({ blockIO: { leafWeight: 500 } }), /leafWeight is CFQ's, which Linux 5\.0 removed/);
    assert.throws(() => planLimits({ blockIO: { weight: 5 } }), /blockIO\.weight 5: give 10 to 1000/);
    assert.deepEqual(planLimits({ memory: { swappiness: 2 ** 64 - 1 } }), {}, "moby's -1 as a uint64");
  });
});
