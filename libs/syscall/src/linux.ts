import koffi from "koffi";
import { SyscallError } from "./error.ts";
import { CLD_DUMPED, CLD_EXITED, CLD_KILLED, F_GETFD, F_GETFL, F_SETFD, F_SETFL, P_PID } from "./constants.ts";
import type { Syscall, WaitResult } from "./types.ts";

type Fn = (...args: unknown[]) => number;

/** Syscall numbers for calls without a glibc wrapper on every supported glibc. */
const NR: Record<string, Record<string, number>> = {
  x64: { pivot_root: 155, pidfd_open: 434, pidfd_send_signal: 424, pidfd_getfd: 438, mount_setattr: 442 },
  arm64: { pivot_root: 41, pidfd_open: 434, pidfd_send_signal: 424, pidfd_getfd: 438, mount_setattr: 442 },
};

function nr(name: string): number {
  const n = NR[process.arch]?.[name];
  if (n === undefined) throw new Error(`${name} has no syscall number for architecture ${process.arch}`);
  return n;
}

let libc: Record<string, Fn> | undefined;

/** Declarations are made on first use, so a tool that never calls into libc never loads it. */
function c(): Record<string, Fn> {
  if (libc) return libc;
  const lib = koffi.load("libc.so.6");
  const decl = (proto: string): Fn => lib.func(proto) as unknown as Fn;
  libc = {
    unshare: decl("int unshare(int flags)"),
    setns: decl("int setns(int fd, int nstype)"),
    mount: decl("int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)"),
    umount2: decl("int umount2(const char *target, int flags)"),
    sethostname: decl("int sethostname(const char *name, size_t len)"),
    execve: decl("int execve(const char *path, const char **argv, const char **envp)"),
    fcntl: decl("int fcntl(int fd, int cmd, ...)"),
    close_range: decl("int close_range(unsigned int first, unsigned int last, int flags)"),
    prctl: decl("int prctl(int option, ...)"),
    waitid: decl("int waitid(int idtype, int id, _Out_ uint8_t *info, int options)"),
    kill: decl("int kill(int pid, int sig)"),
    flock: decl("int flock(int fd, int op)"),
    signal: decl("void *signal(int sig, void *handler)"),
    sigprocmask: decl("int sigprocmask(int how, const uint8_t *set, uint8_t *oldset)"),
    syscall: decl("long syscall(long number, ...)"),
    socket: decl("int socket(int domain, int type, int protocol)"),
    ioctl: decl("int ioctl(int fd, unsigned long request, ...)"),
    close: decl("int close(int fd)"),
    mkfifo: decl("int mkfifo(const char *path, unsigned int mode)"),
  };
  return libc;
}

/** Turns a -1 return into a SyscallError, reading errno before anything else can change it. */
function check(rc: number, syscall: string, path?: string): number {
  if (rc < 0) {
    const errno = koffi.errno();
    throw new SyscallError({ syscall, errno, path });
  }
  return rc;
}

export const linuxSyscall: Syscall = {
  unshare(flags) {
    check(c().unshare!(flags), "unshare");
  },
  setns(fd, nstype, path) {
    check(c().setns!(fd, nstype), "setns", path);
  },
  pidfdOpen(pid) {
    return check(c().syscall!(nr("pidfd_open"), "int", pid, "unsigned int", 0), "pidfd_open", `pid ${pid}`);
  },
  pidfdGetfd(pidfd, fd) {
    return check(c().syscall!(nr("pidfd_getfd"), "int", pidfd, "int", fd, "unsigned int", 0), "pidfd_getfd", `fd ${fd}`);
  },
  pidfdSendSignal(pidfd, sig) {
    check(c().syscall!(nr("pidfd_send_signal"), "int", pidfd, "int", sig, "void *", null, "unsigned int", 0), "pidfd_send_signal");
  },
  kill(pid, sig) {
    check(c().kill!(pid, sig), "kill", `pid ${pid}`);
  },
  mount(source, target, fstype, flags, data) {
    check(c().mount!(source, target, fstype, flags, data ?? null), "mount", target);
  },
  umount2(target, flags) {
    check(c().umount2!(target, flags), "umount2", target);
  },
  pivotRoot(newRoot, putOld) {
    check(c().syscall!(nr("pivot_root"), "const char *", newRoot, "const char *", putOld), "pivot_root", newRoot);
  },
  sethostname(name) {
    check(c().sethostname!(name, Buffer.byteLength(name)), "sethostname", name);
  },
  execve(path, argv, envp) {
    check(c().execve!(path, [...argv, null], [...envp, null]), "execve", path);
    throw new Error("execve returned without an error");
  },
  getFdFlags(fd) {
    return check(c().fcntl!(fd, F_GETFD), "fcntl", `fd ${fd}`);
  },
  setFdFlags(fd, flags) {
    check(c().fcntl!(fd, F_SETFD, "int", flags), "fcntl", `fd ${fd}`);
  },
  getFileFlags(fd) {
    return check(c().fcntl!(fd, F_GETFL), "fcntl", `fd ${fd}`);
  },
  setFileFlags(fd, flags) {
    check(c().fcntl!(fd, F_SETFL, "int", flags), "fcntl", `fd ${fd}`);
  },
  closeRange(first, last, flags) {
    check(c().close_range!(first, last, flags), "close_range");
  },
  prctl(option, arg) {
    check(c().prctl!(option, "unsigned long", arg), "prctl");
  },
  waitid(pid, options) {
    // siginfo_t is 128 bytes; si_pid, si_code and si_status sit at the same offsets on x86-64 and arm64.
    const info = Buffer.alloc(128);
    check(c().waitid!(P_PID, pid, info, options), "waitid", `pid ${pid}`);
    const got = info.readInt32LE(16);
    if (got === 0) return null;
    const code = info.readInt32LE(8);
    const status = info.readInt32LE(24);
    const result: WaitResult =
      code === CLD_EXITED ? { pid: got, exitCode: status } :
      code === CLD_KILLED || code === CLD_DUMPED ? { pid: got, signal: status } :
      { pid: got, stopped: status };
    return result;
  },
  setLinkUp(name) {
    // SIOCGIFFLAGS/SIOCSIFFLAGS on a datagram socket: the socket lives in the caller's network
    // namespace, so this reaches the interface of the namespace the calling thread is in.
    const fd = check(c().socket!(2 /* AF_INET */, 2 | 0o2000000 /* SOCK_DGRAM|SOCK_CLOEXEC */, 0), "socket");
    try {
      const ifr = Buffer.alloc(40);
      ifr.write(name, 0, 15, "utf8");
      check(c().ioctl!(fd, 0x8913 /* SIOCGIFFLAGS */, "void *", ifr), "ioctl SIOCGIFFLAGS", name);
      ifr.writeUInt16LE(ifr.readUInt16LE(16) | 1 /* IFF_UP */, 16);
      check(c().ioctl!(fd, 0x8914 /* SIOCSIFFLAGS */, "void *", ifr), "ioctl SIOCSIFFLAGS", name);
    } finally {
      c().close!(fd);
    }
  },
  mountSetattr(path, attrSet, attrClr, recursive) {
    // struct mount_attr { u64 attr_set, attr_clr, propagation, userns_fd } (Linux 5.12+).
    const attr = Buffer.alloc(32);
    attr.writeBigUInt64LE(BigInt(attrSet), 0);
    attr.writeBigUInt64LE(BigInt(attrClr), 8);
    const flags = recursive ? 0x8000 /* AT_RECURSIVE */ : 0;
    check(c().syscall!(nr("mount_setattr"), "int", -100 /* AT_FDCWD */, "const char *", path, "unsigned int", flags, "void *", attr, "size_t", 32), "mount_setattr", path);
  },
  mkfifo(path, mode) {
    check(c().mkfifo!(path, mode), "mkfifo", path);
  },
  flock(fd, op) {
    check(c().flock!(fd, op), "flock");
  },
  resetSignals() {
    // An ignored signal stays ignored across execve; Node ignores SIGPIPE, which would make
    // `yes | head` in the container spin instead of dying. Reset every signal and the mask.
    for (let sig = 1; sig < 32; sig++) {
      if (sig === 9 || sig === 19) continue;
      c().signal!(sig, null);
    }
    check(c().sigprocmask!(2 /* SIG_SETMASK */, Buffer.alloc(128), null), "sigprocmask");
  },
};
