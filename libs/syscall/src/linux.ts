import { check, fn, lastErrno, nativeFn, nr, struct } from "./_libc.ts";
import { CLD_DUMPED, CLD_EXITED, CLD_KILLED, F_DUPFD_CLOEXEC, F_GETFD, F_GETFL, F_SETFD, F_SETFL, P_PID, POLLIN } from "./constants.ts";
import { isErrno, SyscallError } from "./error.ts";
import type { Syscall, WaitResult } from "./types.ts";

/** A BPF program's length in instructions (8 bytes each), refusing a length that is not one. */
function instructions(program: Uint8Array, what: string): number {
  if (program.length === 0 || program.length % 8 !== 0) throw new Error(`a ${what} program of ${program.length} bytes is not a sequence of 8-byte BPF instructions`);
  return program.length / 8;
}

/** The raw entry point, for calls glibc has no wrapper for. */
const SYSCALL = "long syscall(long number, ...)";

/** XATTR_SIZE_MAX (64 KiB), and the list's limit too: one scratch buffer, the calls being synchronous. */
const XATTR_BUF = Buffer.alloc(65536);

function lgetxattrBytes(path: string, name: string): Buffer | undefined {
  const buf = XATTR_BUF;
  try {
    const n = check(fn("long lgetxattr(const char *path, const char *name, _Out_ void *value, size_t size)")(path, name, buf, buf.length), "lgetxattr", `${path} ${name}`);
    return Buffer.from(buf.subarray(0, n));
  } catch (err) {
    if (isErrno(err, "ENODATA")) return undefined;
    throw err;
  }
}

export const linuxSyscall: Syscall = {
  unshare(flags) {
    check(fn("int unshare(int flags)")(flags), "unshare");
  },
  setns(fd, nstype, path) {
    check(fn("int setns(int fd, int nstype)")(fd, nstype), "setns", path);
  },
  pidfdOpen(pid) {
    return check(fn(SYSCALL)(nr("pidfd_open"), "int", pid, "unsigned int", 0), "pidfd_open", `pid ${pid}`);
  },
  pidfdSendSignal(pidfd, sig) {
    check(fn(SYSCALL)(nr("pidfd_send_signal"), "int", pidfd, "int", sig, "void *", null, "unsigned int", 0), "pidfd_send_signal");
  },
  kill(pid, sig) {
    check(fn("int kill(int pid, int sig)")(pid, sig), "kill", `pid ${pid}`);
  },
  mount(source, target, fstype, flags, data) {
    check(fn("int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)")(source, target, fstype, flags, data ?? null), "mount", target);
  },
  umount2(target, flags) {
    check(fn("int umount2(const char *target, int flags)")(target, flags), "umount2", target);
  },
  pivotRoot(newRoot, putOld) {
    check(fn(SYSCALL)(nr("pivot_root"), "const char *", newRoot, "const char *", putOld), "pivot_root", newRoot);
  },
  sethostname(name) {
    check(fn("int sethostname(const char *name, size_t len)")(name, Buffer.byteLength(name)), "sethostname", name);
  },
  execStub(path, argv, envp, seccomp, goFd, errFd) {
    const exec = nativeFn("int corerun_exec_stub(const char *file, const char **argv, const char **envp, int err_fd, const void *filter, int filter_len, unsigned int seccomp_flags, int go_fd)");
    const rc = exec(path, [...argv, null], [...envp, null], errFd ?? -1, seccomp?.program ?? null, seccomp ? instructions(seccomp.program, "seccomp") : 0, seccomp?.flags ?? 0, goFd ?? -1);
    if (rc === -2) throw new SyscallError({ syscall: "memfd_create", errno: lastErrno(), path: "corerun-exe" });
    if (rc === -3) throw new SyscallError({ syscall: "seccomp", errno: lastErrno() });
    check(rc, "execve", path);
    throw new Error("execve returned without an error");
  },
  getFdFlags(fd) {
    return check(fn("int fcntl(int fd, int cmd, ...)")(fd, F_GETFD), "fcntl", `fd ${fd}`);
  },
  setFdFlags(fd, flags) {
    check(fn("int fcntl(int fd, int cmd, ...)")(fd, F_SETFD, "int", flags), "fcntl", `fd ${fd}`);
  },
  getFileFlags(fd) {
    return check(fn("int fcntl(int fd, int cmd, ...)")(fd, F_GETFL), "fcntl", `fd ${fd}`);
  },
  setFileFlags(fd, flags) {
    check(fn("int fcntl(int fd, int cmd, ...)")(fd, F_SETFL, "int", flags), "fcntl", `fd ${fd}`);
  },
  dup(fd) {
    return check(fn("int fcntl(int fd, int cmd, ...)")(fd, F_DUPFD_CLOEXEC, "int", 3), "fcntl", `fd ${fd}`);
  },
  dup2(oldfd, newfd) {
    check(fn("int dup2(int oldfd, int newfd)")(oldfd, newfd), "dup2", `fd ${oldfd} to ${newfd}`);
  },
  exit(status) {
    fn("void _exit(int status)")(status);
    throw new Error("_exit returned");
  },
  closeRange(first, last, flags) {
    check(fn("int close_range(unsigned int first, unsigned int last, int flags)")(first, last, flags), "close_range");
  },
  prctl(option, arg, arg3 = 0) {
    check(fn("int prctl(int option, ...)")(option, "unsigned long", arg, "unsigned long", arg3, "unsigned long", 0, "unsigned long", 0), "prctl");
  },
  setsid() {
    check(fn("int setsid(void)")(), "setsid");
  },
  limitInheritable(keep) {
    // struct __user_cap_header_struct { u32 version, pid } and two data words of
    // { u32 effective, permitted, inheritable } (_LINUX_CAPABILITY_VERSION_3).
    const header = Buffer.alloc(8);
    header.writeUInt32LE(0x20080522, 0);
    const data = Buffer.alloc(24);
    check(fn("int capget(void *header, _Inout_ uint8_t *data)")(header, data), "capget");
    for (const word of [0, 1]) {
      const mask = keep.filter((c) => c >= word * 32 && c < word * 32 + 32).reduce((m, c) => m | (1 << (c % 32)), 0) >>> 0;
      data.writeUInt32LE((data.readUInt32LE(word * 12 + 8) & mask) >>> 0, word * 12 + 8);
    }
    check(fn("int capset(void *header, const uint8_t *data)")(header, data), "capset");
  },
  waitid(pid, options) {
    // siginfo_t is 128 bytes; si_pid, si_code and si_status sit at the same offsets on x86-64 and arm64.
    const info = Buffer.alloc(128);
    check(fn("int waitid(int idtype, int id, _Out_ uint8_t *info, int options)")(P_PID, pid, info, options), "waitid", `pid ${pid}`);
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
  statMode(path, dirfd = -100 /* AT_FDCWD */) {
    // struct statx: stx_mode is a u16 at offset 28 on every architecture (Linux 4.11+).
    const buf = Buffer.alloc(256);
    const rc = fn("int statx(int dirfd, const char *path, int flags, unsigned int mask, _Out_ void *buf)")(dirfd, path, 0x100 /* AT_SYMLINK_NOFOLLOW */, 0x1 /* STATX_TYPE */, buf);
    if (rc < 0 && lastErrno() === 2 /* ENOENT */) return undefined;
    check(rc, "statx", path);
    return buf.readUInt16LE(28);
  },
  setLinkUp(name) {
    // SIOCGIFFLAGS/SIOCSIFFLAGS on a datagram socket: the socket lives in the caller's network
    // namespace, so this reaches the interface of the namespace the calling thread is in.
    const fd = check(fn("int socket(int domain, int type, int protocol)")(2 /* AF_INET */, 2 | 0o2000000 /* SOCK_DGRAM|SOCK_CLOEXEC */, 0), "socket");
    try {
      const ifr = Buffer.alloc(40);
      ifr.write(name, 0, 15, "utf8");
      check(fn("int ioctl(int fd, unsigned long request, ...)")(fd, 0x8913 /* SIOCGIFFLAGS */, "void *", ifr), "ioctl SIOCGIFFLAGS", name);
      ifr.writeUInt16LE(ifr.readUInt16LE(16) | 1 /* IFF_UP */, 16);
      check(fn("int ioctl(int fd, unsigned long request, ...)")(fd, 0x8914 /* SIOCSIFFLAGS */, "void *", ifr), "ioctl SIOCSIFFLAGS", name);
    } finally {
      fn("int close(int fd)")(fd);
    }
  },
  mountSetattr(path, attrSet, attrClr, recursive, opts = {}) {
    // struct mount_attr { u64 attr_set, attr_clr, propagation, userns_fd } (Linux 5.12+).
    const attr = Buffer.alloc(32);
    attr.writeBigUInt64LE(BigInt(attrSet), 0);
    attr.writeBigUInt64LE(BigInt(attrClr), 8);
    if (opts.usernsFd !== undefined) attr.writeBigUInt64LE(BigInt(opts.usernsFd), 24);
    const dirfd = opts.fd ?? -100; /* AT_FDCWD */
    const flags = (recursive ? 0x8000 /* AT_RECURSIVE */ : 0) | (opts.fd !== undefined ? 0x1000 /* AT_EMPTY_PATH */ : 0);
    check(fn(SYSCALL)(nr("mount_setattr"), "int", dirfd, "const char *", path, "unsigned int", flags, "void *", attr, "size_t", 32), "mount_setattr", path || `fd ${dirfd}`);
  },
  openTree(path, recursive) {
    // OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC: a detached copy of the mount at path, to change and attach.
    const flags = 1 | 0o2000000 | (recursive ? 0x8000 /* AT_RECURSIVE */ : 0);
    return check(fn(SYSCALL)(nr("open_tree"), "int", -100, "const char *", path, "unsigned int", flags), "open_tree", path);
  },
  moveMount(fd, target) {
    check(fn(SYSCALL)(nr("move_mount"), "int", fd, "const char *", "", "int", -100, "const char *", target, "unsigned int", 0x4 /* MOVE_MOUNT_F_EMPTY_PATH */), "move_mount", target);
  },
  // The system calls themselves, not glibc's wrappers: the kernel keeps credentials per thread,
  // and glibc makes each of the process's threads repeat the call (the setxid broadcast: a
  // signal to each of Node's ~10 threads and a wait for it), 1.6-3.3 ms of an OCI start's
  // three calls. The calling thread's credentials are the ones execve passes on (see types.ts).
  setresuid(uid) {
    check(fn(SYSCALL)(nr("setresuid"), "unsigned int", uid, "unsigned int", uid, "unsigned int", uid), "setresuid", `uid ${uid}`);
  },
  setresgid(gid) {
    check(fn(SYSCALL)(nr("setresgid"), "unsigned int", gid, "unsigned int", gid, "unsigned int", gid), "setresgid", `gid ${gid}`);
  },
  setgroups(gids) {
    check(fn(SYSCALL)(nr("setgroups"), "size_t", gids.length, "const unsigned int *", Uint32Array.from(gids)), "setgroups", `groups ${gids.join(",")}`);
  },
  mknod(path, mode, major, minor) {
    // dev_t as glibc's makedev() builds it.
    const dev = (BigInt(major & 0xfff) << 8n) | BigInt(minor & 0xff) | (BigInt(minor & ~0xff) << 12n) | (BigInt(major & ~0xfff) << 32n);
    check(fn("int mknod(const char *path, unsigned int mode, uint64_t dev)")(path, mode, dev), "mknod", path);
  },
  lsetxattr(path, name, value) {
    const data = Buffer.from(value);
    check(fn("int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)")(path, name, data, data.length, 0), "lsetxattr", `${path} ${name}`);
  },
  lgetxattr(path, name) {
    return lgetxattrBytes(path, name)?.toString();
  },
  lgetxattrBytes,
  llistxattr(path) {
    const buf = XATTR_BUF;
    const n = check(fn("long llistxattr(const char *path, _Out_ void *list, size_t size)")(path, buf, buf.length), "llistxattr", path);
    return buf.subarray(0, n).toString("latin1").split("\0").filter((x) => x !== "");
  },
  cloneExec(flags, path, argv, envp, opts = {}) {
    const clone = nativeFn("int corerun_clone_exec(int flags, const char *path, const char **argv, const char **envp, int join_fd, int join_flags, int sync_fd, int sync_close_fd, int become_root, int null_stdio, int stdin_fd, int die_with_parent, int userns_fd)");
    const { sync, join } = opts;
    return check(clone(flags, path, [...argv, null], [...envp, null], join?.fd ?? -1, join?.flags ?? 0, sync?.[0] ?? -1, sync?.[1] ?? -1, opts.becomeRoot ? 1 : 0, opts.nullStdio ? 1 : 0, opts.stdinFd ?? -1, opts.dieWithParent ? 1 : 0, opts.usernsFd ?? -1), "clone", path);
  },
  spawn(path, argv, envp, fds, newSession, viaStub = false) {
    const spawn = nativeFn("int corerun_spawn(const char *path, const char **argv, const char **envp, const int *fds, int nfds, int new_session, int via_stub)");
    return check(spawn(path, [...argv, null], [...envp, null], Int32Array.from(fds), fds.length, newSession ? 1 : 0, viaStub ? 1 : 0), "clone", path);
  },
  poll(fds, timeoutMs, events = POLLIN) {
    // struct pollfd { int fd; short events; short revents; }
    const buf = Buffer.alloc(8 * fds.length);
    fds.forEach((fd, i) => {
      buf.writeInt32LE(fd, 8 * i);
      buf.writeInt16LE(events, 8 * i + 4);
    });
    for (;;) {
      try {
        check(fn("int poll(void *fds, unsigned long n, int timeout)")(buf, fds.length, timeoutMs), "poll");
        return fds.map((_, i) => buf.readInt16LE(8 * i + 6));
      } catch (err) {
        if (!isErrno(err, "EINTR")) throw err;
      }
    }
  },
  pipe() {
    const fds = new Int32Array(2);
    check(fn("int pipe2(_Out_ int *fds, int flags)")(fds, 0o2000000 /* O_CLOEXEC */), "pipe2");
    return [fds[0]!, fds[1]!];
  },
  mkfifo(path, mode) {
    check(fn("int mkfifo(const char *path, unsigned int mode)")(path, mode), "mkfifo", path);
  },
  flock(fd, op) {
    check(fn("int flock(int fd, int op)")(fd, op), "flock");
  },
  seccompFilter(program, flags) {
    // struct sock_fprog { unsigned short len; struct sock_filter *filter; }, 8 bytes an instruction.
    struct("sock_fprog", { len: "uint16_t", filter: "void *" });
    const prog = { len: instructions(program, "seccomp"), filter: program };
    check(fn(SYSCALL)(nr("seccomp"), "unsigned int", 1 /* SECCOMP_SET_MODE_FILTER */, "unsigned int", flags, "sock_fprog *", prog), "seccomp");
  },
  bpfProgLoad(type, program, expectedAttachType) {
    const count = instructions(program, "BPF");
    // union bpf_attr for BPF_PROG_LOAD, up to expected_attach_type; pointers are 64-bit fields.
    struct("bpf_prog_load_attr", {
      prog_type: "uint32_t", insn_cnt: "uint32_t", insns: "void *", license: "const char *", log_level: "uint32_t", log_size: "uint32_t",
      log_buf: "void *", kern_version: "uint32_t", prog_flags: "uint32_t", prog_name: "char[16]", prog_ifindex: "uint32_t", expected_attach_type: "uint32_t",
    });
    const log = Buffer.alloc(4096);
    const attr = {
      prog_type: type, insn_cnt: count, insns: program, license: "Apache-2.0", log_level: 1, log_size: log.length, log_buf: log,
      kern_version: 0, prog_flags: 0, prog_name: "corerun", prog_ifindex: 0, expected_attach_type: expectedAttachType,
    };
    try {
      return check(fn(SYSCALL)(nr("bpf"), "int", 5 /* BPF_PROG_LOAD */, "bpf_prog_load_attr *", attr, "unsigned int", 48 + 16 + 8), "bpf(BPF_PROG_LOAD)");
    } catch (err) {
      // The verifier says why in its log; its first line is enough to act on.
      const why = log.subarray(0, Math.max(0, log.indexOf(0))).toString().trim().split("\n")[0];
      if (why && err instanceof Error) err.message += ` (verifier: ${why})`;
      throw err;
    }
  },
  bpfProgAttach(targetFd, progFd, attachType, flags) {
    struct("bpf_prog_attach_attr", { target_fd: "uint32_t", attach_bpf_fd: "uint32_t", attach_type: "uint32_t", attach_flags: "uint32_t", replace_bpf_fd: "uint32_t" });
    const attr = { target_fd: targetFd, attach_bpf_fd: progFd, attach_type: attachType, attach_flags: flags, replace_bpf_fd: 0 };
    check(fn(SYSCALL)(nr("bpf"), "int", 8 /* BPF_PROG_ATTACH */, "bpf_prog_attach_attr *", attr, "unsigned int", 20), "bpf(BPF_PROG_ATTACH)");
  },
  resetSignals() {
    // An ignored signal stays ignored across execve; Node ignores SIGPIPE, which would make
    // `yes | head` in the container spin instead of dying. Reset every signal and the mask.
    for (let sig = 1; sig < 32; sig++) {
      if (sig === 9 || sig === 19) continue;
      fn("void *signal(int sig, void *handler)")(sig, null);
    }
    check(fn("int sigprocmask(int how, const uint8_t *set, uint8_t *oldset)")(2 /* SIG_SETMASK */, Buffer.alloc(128), null), "sigprocmask");
  },
  setrlimit(resource, soft, hard, pid = 0) {
    // struct rlimit64 { u64 cur, max }; RLIM_INFINITY is ~0.
    const lim = Buffer.alloc(16);
    const u64 = (n: number) => (n >= 2 ** 53 ? 0xffffffffffffffffn : BigInt(n));
    lim.writeBigUInt64LE(u64(soft), 0);
    lim.writeBigUInt64LE(u64(hard), 8);
    check(fn("int prlimit(int pid, int resource, const uint8_t *limit, uint8_t *old)")(pid, resource, lim, null), "prlimit", `resource ${resource}`);
  },
  capset(sets) {
    const header = Buffer.alloc(8);
    header.writeUInt32LE(0x20080522, 0);
    const data = Buffer.alloc(24);
    const mask = (caps: readonly number[], word: number) => caps.filter((c) => c >= word * 32 && c < word * 32 + 32).reduce((m, c) => m | (1 << (c % 32)), 0) >>> 0;
    for (const word of [0, 1]) {
      data.writeUInt32LE(mask(sets.effective, word), word * 12);
      data.writeUInt32LE(mask(sets.permitted, word), word * 12 + 4);
      data.writeUInt32LE(mask(sets.inheritable, word), word * 12 + 8);
    }
    check(fn("int capset(void *header, const uint8_t *data)")(header, data), "capset");
  },
  setdomainname(name) {
    check(fn("int setdomainname(const char *name, size_t len)")(name, Buffer.byteLength(name)), "setdomainname", name);
  },
  joinSessionKeyring(name) {
    check(fn(SYSCALL)(nr("keyctl"), "int", 1 /* KEYCTL_JOIN_SESSION_KEYRING */, "const char *", name), "keyctl", name);
  },
  enterExec(o) {
    const enter = nativeFn(
      "int corerun_enter_exec(const char **argv, const char **envp, const char *cwd, int pidfd, int ns_flags, int sync_fd, int sync_close_fd, int err_fd, int tty_fd, unsigned int uid, unsigned int gid, int ngroups, const uint32_t *groups, const uint32_t *caps, int last_cap, int no_new_privs, int umask_value, const void *filter, int filter_len, unsigned int seccomp_flags, int stdin_fd, int join_pid)",
    );
    const words = (set: readonly number[]) => [0, 1].map((w) => set.filter((c) => c >= w * 32 && c < w * 32 + 32).reduce((m, c) => m | (1 << (c % 32)), 0) >>> 0);
    const caps = Uint32Array.from([o.caps.bounding, o.caps.effective, o.caps.permitted, o.caps.inheritable, o.caps.ambient].flatMap(words));
    return check(
      enter([...o.argv, null], [...o.env, null], o.cwd, o.pidfd, o.nsFlags, o.sync[0], o.sync[1], o.errFd, o.ttyFd, o.uid, o.gid, o.groups.length, Uint32Array.from(o.groups), caps, o.lastCap, o.noNewPrivs ? 1 : 0, o.umask ?? -1,
        o.seccomp?.program ?? null, (o.seccomp?.program.length ?? 0) / 8, o.seccomp?.flags ?? 0, o.stdinFd ?? -1, o.pidNamespace ? 1 : 0),
      "clone",
      o.argv[0],
    );
  },
};
