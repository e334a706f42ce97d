import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { closeSync, fstatSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { constants, tmpdir } from "node:os";
import { join, sep } from "node:path";
import { after, describe, test } from "node:test";
import { FD_CLOEXEC, MNT_DETACH, MS_BIND, MS_REC } from "./constants.ts";
import { isErrno, SyscallError } from "./error.ts";
import { linuxSyscall } from "./linux.ts";
import { recordingSyscall } from "./recording.ts";

const { errno } = constants;

describe("recordingSyscall", () => {
  test("records every call with its arguments, in order", () => {
    const { sys, calls } = recordingSyscall();
    sys.mount("/src", "/dst", null, MS_BIND | MS_REC);
    sys.pivotRoot(".", ".");
    sys.umount2(".", MNT_DETACH);
    assert.deepEqual(calls, [
      { name: "mount", args: ["/src", "/dst", null, MS_BIND | MS_REC] },
      { name: "pivotRoot", args: [".", "."] },
      { name: "umount2", args: [".", MNT_DETACH] },
    ]);
  });

  test("returns 0, and null for waitid", () => {
    const { sys } = recordingSyscall();
    assert.equal(sys.pidfdOpen(1), 0);
    assert.equal(sys.waitid(1, 0), null);
  });

  test("fail makes that call throw its error after recording it; others still succeed", () => {
    const err = new SyscallError({ syscall: "mount", errno: errno.EPERM, path: "/proc" });
    const { sys, calls } = recordingSyscall({ mount: err });
    sys.unshare(0);
    assert.throws(() => sys.mount("proc", "/proc", "proc", 0), (e) => e === err);
    sys.sethostname("box");
    assert.deepEqual(calls.map((c) => c.name), ["unshare", "mount", "sethostname"]);
  });

  test("each recorder has its own log", () => {
    const a = recordingSyscall();
    const b = recordingSyscall();
    a.sys.unshare(1);
    assert.equal(a.calls.length, 1);
    assert.equal(b.calls.length, 0);
  });
});

describe("SyscallError", () => {
  test("reads: syscall, path, errno name, text, then the hint", () => {
    const e = new SyscallError({ syscall: "mount", errno: errno.EPERM, path: "/proc" });
    assert.equal(e.message, "mount /proc: EPERM (operation not permitted); run as root (sudo) or grant the missing capability");
    assert.equal(e.name, "SyscallError");
    assert.equal(e.code, "EPERM");
    assert.equal(e.errno, errno.EPERM);
    assert.equal(e.syscall, "mount");
    assert.equal(e.path, "/proc");
    assert.ok(e instanceof Error);
  });

  test("a syscall-specific hint wins over the errno's general one", () => {
    const e = new SyscallError({ syscall: "unshare", errno: errno.EPERM });
    assert.equal(e.message, "unshare: EPERM (operation not permitted); creating namespaces needs root (CAP_SYS_ADMIN); run with sudo");
  });

  test("without a hint the message ends after the errno text", () => {
    const e = new SyscallError({ syscall: "fcntl", errno: errno.EBADF, path: "fd 99" });
    assert.equal(e.message, "fcntl fd 99: EBADF (bad file descriptor)");
    assert.equal(e.hint, undefined);
  });

  test("context comes first", () => {
    const e = new SyscallError({ syscall: "setns", errno: errno.EINVAL, context: "joining pid 7" });
    assert.match(e.message, /^joining pid 7: setns: EINVAL \(invalid argument\); the fd is not a namespace/);
  });

  test("an errno the system does not know still gives a message", () => {
    const e = new SyscallError({ syscall: "x", errno: 999 });
    assert.equal(e.code, "E999");
    assert.equal(e.message, "x: E999 (errno 999)");
  });

  test("isErrno matches a SyscallError by code only", () => {
    const e = new SyscallError({ syscall: "mount", errno: errno.ENOENT });
    assert.equal(isErrno(e, "ENOENT"), true);
    assert.equal(isErrno(e, "EPERM", "ENOENT"), true);
    assert.equal(isErrno(e, "EPERM"), false);
    assert.equal(isErrno(Object.assign(new Error("x"), { code: "ENOENT" }), "ENOENT"), false);
    assert.equal(isErrno(undefined, "ENOENT"), false);
  });
});

describe("linuxSyscall without root", () => {
  const base = mkdtempSync(join(tmpdir(), "corerun-syscall-test-"));
  after(() => {
    if (base.startsWith(tmpdir() + sep) && base.includes("corerun-syscall-test-")) rmSync(base, { recursive: true, force: true });
  });

  /** The pid of a process that has exited and been reaped. */
  function deadPid(): number {
    const r = spawnSync("true");
    assert.equal(r.status, 0);
    return r.pid;
  }

  test("getFdFlags on fd 1 returns the descriptor flags", () => {
    const flags = linuxSyscall.getFdFlags(1);
    assert.ok(Number.isInteger(flags) && (flags & ~FD_CLOEXEC) === 0, String(flags));
  });

  test("Node opens files close-on-exec, and setFdFlags clears it", () => {
    const fd = openSync(join(base, "f"), "w");
    try {
      assert.equal(linuxSyscall.getFdFlags(fd) & FD_CLOEXEC, FD_CLOEXEC);
      linuxSyscall.setFdFlags(fd, 0);
      assert.equal(linuxSyscall.getFdFlags(fd) & FD_CLOEXEC, 0);
    } finally {
      closeSync(fd);
    }
  });

  test("a closed fd is EBADF, naming the fd", () => {
    const fd = openSync(join(base, "g"), "w");
    closeSync(fd);
    assert.throws(() => linuxSyscall.getFdFlags(fd), (e: unknown) => {
      assert.ok(isErrno(e, "EBADF"), String(e));
      assert.equal(e.syscall, "fcntl");
      assert.equal(e.path, `fd ${fd}`);
      return true;
    });
  });

  test("mount on a missing target is ENOENT with the path and hint", () => {
    const target = join(base, "missing");
    assert.throws(() => linuxSyscall.mount("none", target, "tmpfs", 0), (e: unknown) => {
      assert.ok(e instanceof SyscallError, String(e));
      assert.equal(e.code, "ENOENT");
      assert.equal(e.message, `mount ${target}: ENOENT (no such file or directory); the mount source or target does not exist`);
      return true;
    });
  });

  test("pidfdOpen of this process gives an fd; of a dead pid, ESRCH", () => {
    const fd = linuxSyscall.pidfdOpen(process.pid);
    assert.ok(fd > 2);
    assert.ok(fstatSync(fd));
    closeSync(fd);
    const dead = deadPid();
    assert.throws(() => linuxSyscall.pidfdOpen(dead), (e: unknown) => {
      assert.ok(isErrno(e, "ESRCH"), String(e));
      assert.equal(e.message, `pidfd_open pid ${dead}: ESRCH (no such process); no process has that pid; it may have exited`);
      return true;
    });
  });

  test("kill with signal 0 checks a pid", () => {
    linuxSyscall.kill(process.pid, 0);
    assert.throws(() => linuxSyscall.kill(deadPid(), 0), (e: unknown) => isErrno(e, "ESRCH"));
  });
});
