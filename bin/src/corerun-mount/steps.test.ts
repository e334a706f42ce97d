import assert from "node:assert/strict";
import { closeSync, fstatSync, lstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";
import { after, describe, test } from "node:test";
import {
  CLONE_FS, CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS, MNT_DETACH, MOUNT_ATTR_NODEV, MOUNT_ATTR_RDONLY, MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID,
  MS_PRIVATE, MS_RDONLY, MS_REC, recordingSyscall, SyscallError, type Syscall,
} from "@corerun/syscall";
import { parseTmpfs } from "@corerun/rootfs";
import type { MountOptions } from "./args.ts";
import { bindRootfs, createMountPoints, enterNamespaces, makeNode, mountDev, mountSys, mountVolumes, pivot } from "./steps.ts";

const base = mkdtempSync(join(tmpdir(), "corerun-mount-steps-test-"));
after(() => {
  if (base.startsWith(tmpdir() + sep) && base.includes("corerun-mount-steps-test-")) rmSync(base, { recursive: true, force: true });
});

let n = 0;
function rootfs(...dirs: string[]): string {
  const root = join(base, `rootfs${n++}`);
  mkdirSync(root);
  for (const d of dirs) mkdirSync(join(root, d), { recursive: true });
  return root;
}

function options(root: string, volumes: MountOptions["volumes"]): MountOptions {
  return { pid: 4242, rootfs: root, volumes, syncDir: undefined, dieWithParent: false, proc: false, idmap: false, oci: undefined, consoleSocket: undefined, hookPause: false, cgroupDirs: [], unmasked: false, hostDevices: false, devices: [], dev: false };
}

describe("mountVolumes", () => {
  test("with --dev (a device cgroup guards the container) volumes are not nodev: only ro ones get an attribute", () => {
    const root = rootfs("data", "conf");
    const { sys, calls } = recordingSyscall();
    mountVolumes(sys, root, { ...options(root, [{ source: "/srv/data", target: "/data", readonly: false }, { source: "/srv/conf", target: "/conf", readonly: true }]), dev: true });
    assert.deepEqual(calls, [
      { name: "mount", args: ["/srv/data", join(root, "data"), null, MS_BIND | MS_REC] },
      { name: "mount", args: ["/srv/conf", join(root, "conf"), null, MS_BIND | MS_REC] },
      { name: "mountSetattr", args: [join(root, "conf"), MOUNT_ATTR_RDONLY, 0, true] },
    ]);
  });

  test("binds each volume recursively, then makes it nodev, and the ro ones read-only, down the whole subtree", () => {
    const root = rootfs("data", "conf");
    const { sys, calls } = recordingSyscall();
    mountVolumes(sys, root, options(root, [
      { source: "/srv/data", target: "/data", readonly: false },
      { source: "/srv/conf", target: "/conf", readonly: true },
    ]));
    assert.deepEqual(calls, [
      { name: "mount", args: ["/srv/data", join(root, "data"), null, MS_BIND | MS_REC] },
      { name: "mountSetattr", args: [join(root, "data"), MOUNT_ATTR_NODEV, 0, true] },
      { name: "mount", args: ["/srv/conf", join(root, "conf"), null, MS_BIND | MS_REC] },
      { name: "mountSetattr", args: [join(root, "conf"), MOUNT_ATTR_NODEV | MOUNT_ATTR_RDONLY, 0, true] },
    ]);
  });

  test("--tmpfs mounts go with the volumes, the shallower first (a tmpfs at /run before a volume at /run/app); noexec, nosuid and nodev unless asked", () => {
    const root = rootfs("run/app", "cache");
    const { sys, calls } = recordingSyscall();
    mountVolumes(sys, root, {
      ...options(root, [{ source: "/srv/app", target: "/run/app", readonly: false }]),
      tmpfs: [parseTmpfs("/run:size=1m"), parseTmpfs("/cache:exec,ro")],
    });
    assert.deepEqual(calls, [
      { name: "mount", args: ["tmpfs", join(root, "run"), "tmpfs", MS_NOEXEC | MS_NOSUID | MS_NODEV, "size=1m"] },
      { name: "mount", args: ["tmpfs", join(root, "cache"), "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, ""] },
      { name: "mount", args: ["/srv/app", join(root, "run/app"), null, MS_BIND | MS_REC] },
      { name: "mountSetattr", args: [join(root, "run/app"), MOUNT_ATTR_NODEV, 0, true] },
    ]);
  });

  test("a target behind a rootfs symlink lands inside the rootfs", () => {
    const root = rootfs("etc");
    symlinkSync("/etc", join(root, "data"));
    const { sys, calls } = recordingSyscall();
    mountVolumes(sys, root, options(root, [{ source: "/srv/data", target: "/data", readonly: true }]));
    assert.deepEqual(calls, [
      { name: "mount", args: ["/srv/data", join(root, "etc"), null, MS_BIND | MS_REC] },
      { name: "mountSetattr", args: [join(root, "etc"), MOUNT_ATTR_NODEV | MOUNT_ATTR_RDONLY, 0, true] },
    ]);
  });

  test("a failing bind stops before the read-only step", () => {
    const root = rootfs("data");
    const { sys, calls } = recordingSyscall({ mount: new SyscallError({ syscall: "mount", errno: 2 }) });
    assert.throws(() => mountVolumes(sys, root, options(root, [{ source: "/gone", target: "/data", readonly: true }])), SyscallError);
    assert.deepEqual(calls.map((c) => c.name), ["mount"]);
  });

  test("no volumes, no calls", () => {
    const root = rootfs();
    const { sys, calls } = recordingSyscall();
    mountVolumes(sys, root, options(root, []));
    assert.deepEqual(calls, []);
  });
});

describe("pivot", () => {
  test("pivot_root(\".\", \".\") from inside the rootfs, then detaches the old root and moves to /", () => {
    const root = rootfs();
    const { sys, calls } = recordingSyscall();
    let cwdAtPivot: string | undefined;
    const spy: Syscall = new Proxy(sys, {
      get(target, prop: keyof Syscall) {
        if (prop === "pivotRoot") cwdAtPivot = process.cwd();
        return target[prop];
      },
    });
    const cwd = process.cwd();
    try {
      pivot(spy, root);
      assert.equal(process.cwd(), "/");
    } finally {
      process.chdir(cwd);
    }
    assert.equal(cwdAtPivot, root);
    assert.deepEqual(calls, [
      { name: "pivotRoot", args: [".", "."] },
      { name: "umount2", args: [".", MNT_DETACH] },
    ]);
  });
});

describe("enterNamespaces", () => {
  test("opens a pidfd, unshares fs state, joins mnt+net+ipc, makes / private, and closes the pidfd", () => {
    const { sys, calls } = recordingSyscall();
    // A real fd stands in for the pidfd so that the step's close can be observed.
    const fd = openSync("/dev/null", "r");
    const withFd: Syscall = new Proxy(sys, {
      get: (target, prop: keyof Syscall) => (prop === "pidfdOpen" ? (pid: number) => (target.pidfdOpen(pid), fd) : target[prop]),
    });
    enterNamespaces(withFd, 4242);
    assert.deepEqual(calls, [
      { name: "pidfdOpen", args: [4242] },
      { name: "unshare", args: [CLONE_FS] },
      { name: "setns", args: [fd, CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC, "pid 4242"] },
      { name: "mount", args: [null, "/", null, MS_REC | MS_PRIVATE] },
    ]);
    assert.throws(() => fstatSync(fd), { code: "EBADF" });
  });

  test("closes the pidfd when setns fails, and mounts nothing", () => {
    const { sys, calls } = recordingSyscall({ setns: new SyscallError({ syscall: "setns", errno: 22 }) });
    const fd = openSync("/dev/null", "r");
    const withFd: Syscall = new Proxy(sys, {
      get: (target, prop: keyof Syscall) => (prop === "pidfdOpen" ? (pid: number) => (target.pidfdOpen(pid), fd) : target[prop]),
    });
    assert.throws(() => enterNamespaces(withFd, 4242), SyscallError);
    assert.deepEqual(calls.map((c) => c.name), ["pidfdOpen", "unshare", "setns"]);
    assert.throws(() => fstatSync(fd), { code: "EBADF" });
  });
});

describe("bindRootfs", () => {
  test("binds the rootfs onto itself recursively so pivot_root accepts it", () => {
    const { sys, calls } = recordingSyscall();
    bindRootfs(sys, "/srv/rootfs", undefined);
    assert.deepEqual(calls, [
      { name: "mount", args: ["/srv/rootfs", "/srv/rootfs", null, MS_BIND | MS_REC] },
      { name: "mountSetattr", args: ["/srv/rootfs", MOUNT_ATTR_NODEV, 0, true] },
    ]);
  });

  test("with a user namespace, clones the tree, idmaps it and attaches it in place", () => {
    const { sys, calls } = recordingSyscall();
    bindRootfs(sys, "/srv/rootfs", 7);
    assert.deepEqual(calls.map((c) => c.name), ["openTree", "mountSetattr", "moveMount", "mountSetattr"]);
    assert.deepEqual(calls[0]!.args, ["/srv/rootfs", true]);
    assert.deepEqual(calls[1]!.args, ["", 0x100000, 0, true, { fd: 0, usernsFd: 7 }]);
    assert.deepEqual(calls[2]!.args, [0, "/srv/rootfs"]);
  });
});

describe("createMountPoints", () => {
  test("creates directories and empty files in the order given", () => {
    const root = rootfs();
    createMountPoints([
      { path: join(root, "a"), kind: "dir" },
      { path: join(root, "a/b"), kind: "dir" },
      { path: join(root, "a/b/f.conf"), kind: "file" },
    ]);
    assert.ok(statSync(join(root, "a/b")).isDirectory());
    assert.ok(statSync(join(root, "a/b/f.conf")).isFile());
    assert.equal(statSync(join(root, "a/b/f.conf")).size, 0);
  });

  test("leaves a path that already exists as it is (another container made it)", () => {
    const root = rootfs("a");
    writeFileSync(join(root, "f"), "user data");
    createMountPoints([{ path: join(root, "a"), kind: "dir" }, { path: join(root, "f"), kind: "file" }]);
    assert.equal(readFileSync(join(root, "f"), "utf8"), "user data");
  });
});

describe("makeNode", () => {
  test("where mknod is refused (EPERM: corerun in a container without CAP_MKNOD), a read-only bind of the host's node", () => {
    const dir = rootfs("dev");
    const { sys, calls } = recordingSyscall({ mknod: new SyscallError({ syscall: "mknod", errno: 1 }) });
    makeNode(sys, "/dev/null", join(dir, "dev/null"), { mknod: true });
    assert.deepEqual(calls.slice(1), [
      { name: "mount", args: ["/dev/null", join(dir, "dev/null"), null, MS_BIND] },
      { name: "mountSetattr", args: [join(dir, "dev/null"), MOUNT_ATTR_RDONLY, 0, false] },
    ]);
  });

  test("a plain file in the way (an earlier bind's mount point in a rootfs) is bound over; the same device is kept; another device is refused", () => {
    const dir = rootfs("dev");
    writeFileSync(join(dir, "dev/null"), "");
    const exists = { mknod: new SyscallError({ syscall: "mknod", errno: 17 }) };
    const a = recordingSyscall(exists);
    makeNode(a.sys, "/dev/null", join(dir, "dev/null"), { mknod: true });
    assert.deepEqual(a.calls.slice(1).map((c) => c.name), ["mount", "mountSetattr"]);
    // /dev/zero stands in for a node made already: the same device needs nothing more.
    const b = recordingSyscall(exists);
    makeNode(b.sys, "/dev/zero", "/dev/zero", { mknod: true });
    assert.deepEqual(b.calls.map((c) => c.name), ["mknod"]);
    assert.throws(() => makeNode(recordingSyscall(exists).sys, "/dev/null", "/dev/zero", { mknod: true }), /\/dev\/zero is another device already/);
  });
});

describe("mountDev", () => {
  test("without --dev: a nodev tmpfs, six devices bound read-only (chmod through them would change the host's), devpts, shm and mqueue, and the standard links", () => {
    const root = rootfs("dev");
    const dev = join(root, "dev");
    const { sys, calls } = recordingSyscall();
    mountDev(sys, root);
    const devices = ["null", "zero", "full", "random", "urandom", "tty"];
    assert.ok(Number(calls[0]!.args[3]) & MS_NODEV);
    assert.deepEqual(calls.map((c) => [c.args[0], c.args[1], c.args[2]]), [
      ["tmpfs", dev, "tmpfs"],
      ...devices.flatMap((d) => [[`/dev/${d}`, `${dev}/${d}`, null], [`${dev}/${d}`, MOUNT_ATTR_RDONLY, 0]]),
      ["devpts", `${dev}/pts`, "devpts"],
      ["shm", `${dev}/shm`, "tmpfs"],
      ["mqueue", `${dev}/mqueue`, "mqueue"],
    ]);
    // A private devpts instance: the container must not reach the host's terminals.
    assert.match(String(calls.find((c) => c.args[2] === "devpts")?.args[4]), /\bnewinstance\b/);
    for (const d of devices) assert.ok(statSync(`${dev}/${d}`).isFile(), d);
    assert.equal(readlinkSync(`${dev}/fd`), "/proc/self/fd");
    assert.equal(readlinkSync(`${dev}/ptmx`), "pts/ptmx");
    assert.ok(lstatSync(`${dev}/stdin`).isSymbolicLink());
    assert.equal(statSync(dev).mode & 0o777, 0o755);
  });
});

describe("mountSys", () => {
  test("a read-only sysfs, then tmpfs over the masked directories that exist", () => {
    const root = rootfs("sys/firmware");
    const { sys, calls } = recordingSyscall();
    mountSys(sys, root);
    assert.deepEqual(calls.map((c) => [c.args[0], c.args[1], c.args[2]]), [
      ["sysfs", join(root, "sys"), "sysfs"],
      ["tmpfs", join(root, "sys/firmware"), "tmpfs"],
    ]);
    const flags = calls[0]!.args[3] as number;
    assert.equal(flags & MS_RDONLY, MS_RDONLY);
    assert.equal(flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC), MS_NOSUID | MS_NODEV | MS_NOEXEC);
  });

  test("a masked path that is a file gets /dev/null bound over it", () => {
    const root = rootfs("sys/devices/virtual", "dev");
    closeSync(openSync(join(root, "sys/devices/virtual/powercap"), "w"));
    const { sys, calls } = recordingSyscall();
    mountSys(sys, root);
    assert.deepEqual(calls[1]?.args, [join(root, "dev/null"), join(root, "sys/devices/virtual/powercap"), null, MS_BIND]);
  });
});
