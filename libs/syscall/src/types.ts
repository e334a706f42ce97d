export type WaitResult =
  | { pid: number; exitCode: number; signal?: undefined; stopped?: undefined }
  | { pid: number; signal: number; exitCode?: undefined; stopped?: undefined }
  | { pid: number; stopped: number; exitCode?: undefined; signal?: undefined };

/**
 * Every kernel call corerun makes outside node:fs. Steps take a `Syscall` so that unit tests can
 * pass `recordingSyscall()` and assert on the sequence without root.
 */
export interface Syscall {
  unshare(flags: number): void;
  setns(fd: number, nstype: number, path?: string): void;
  pidfdOpen(pid: number): number;
  pidfdSendSignal(pidfd: number, sig: number): void;
  kill(pid: number, sig: number): void;
  mount(source: string | null, target: string, fstype: string | null, flags: number, data?: string | null): void;
  umount2(target: string, flags: number): void;
  pivotRoot(newRoot: string, putOld: string): void;
  sethostname(name: string): void;
  /**
   * execve(2) of path (searched in envp's PATH when it holds no '/') through corerun-exe, a
   * sealed in-memory copy of a small static stub, so that the program's /proc/self/exe never
   * leads to the host's Node (CVE-2019-5736; libs/syscall/native/exe.c). A seccomp filter is
   * loaded by the stub right before its exec when no_new_privs is set, else right before the
   * exec into the stub (the kernel then wants CAP_SYS_ADMIN, which this process may hold and
   * the stub not). With goFd, the stub first waits for {"t":"go"} on it (libs/sync), so that
   * this process's teardown is over before start. A failed exec is reported by the stub on
   * stderr, or with errFd as {step, errno} (two ints) on it, exit status 127 (ENOENT) or 126;
   * errFd is close-on-exec at the program's exec.
   */
  execStub(path: string, argv: readonly string[], envp: readonly string[], seccomp?: { program: Uint8Array; flags: number }, goFd?: number, errFd?: number): never;
  getFdFlags(fd: number): number;
  setFdFlags(fd: number, flags: number): void;
  getFileFlags(fd: number): number;
  setFileFlags(fd: number, flags: number): void;
  closeRange(first: number, last: number, flags: number): void;
  /** fcntl(F_DUPFD_CLOEXEC): a close-on-exec copy of fd, numbered 3 or higher. */
  dup(fd: number): number;
  /** dup2(2): newfd becomes a copy of oldfd (inheritable, as dup2 leaves it). */
  dup2(oldfd: number, newfd: number): void;
  /** _exit(2): the process ends now, without Node's teardown or libc's exit handlers. */
  exit(status: number): never;
  prctl(option: number, arg: number, arg3?: number): void;
  setsid(): void;
  /** Keeps only `keep` (capability numbers) in the inheritable set. */
  limitInheritable(keep: readonly number[]): void;
  /** waitid(P_PID, pid) decoded; null when WNOHANG finds nothing to report. */
  waitid(pid: number, options: number): WaitResult | null;
  flock(fd: number, op: number): void;
  mkfifo(path: string, mode: number): void;
  /**
   * clone(2) with namespace flags and execve in the child, through the native helper: the child
   * is created in its namespaces (PID 1 of a new PID namespace) and runs no JavaScript; a new
   * mount namespace gets private propagation. With `sync` (a pipe from pipe()), it first waits
   * for one byte on its read end; becomeRoot makes it uid/gid 0 of a new user namespace; `join`
   * makes it setns(fd, flags) first, into another process's namespaces (a pidfd); nullStdio
   * gives it /dev/null as fds 0-2 instead of the caller's; stdinFd becomes its stdin;
   * dieWithParent gives it SIGKILL when the calling process dies (or has died before it could be set).
   * Returns the child's pid.
   */
  cloneExec(
    flags: number, path: string, argv: readonly string[], envp: readonly string[],
    opts?: { sync?: [number, number]; becomeRoot?: boolean; join?: { fd: number; flags: number }; nullStdio?: boolean; stdinFd?: number; dieWithParent?: boolean; usernsFd?: number },
  ): number;
  /**
   * The native helper's start of a program beside the caller, in no new namespace: fds[i]
   * becomes its fd i (-1: /dev/null), no other fd reaches it, and with newSession it leads a
   * session of its own. No child_process module and no fork of the whole heap. Returns the pid;
   * the caller waits for it (waitid). viaStub: a container's program, exec'd as execStub's are.
   */
  spawn(path: string, argv: readonly string[], envp: readonly string[], fds: readonly number[], newSession: boolean, viaStub?: boolean): number;
  /**
   * bpf(BPF_PROG_LOAD) of a program (8-byte instructions) of a BPF_PROG_TYPE_*; returns its fd.
   * A refusal carries the first line of the verifier's log.
   */
  bpfProgLoad(type: number, program: Buffer, expectedAttachType: number): number;
  /** bpf(BPF_PROG_ATTACH) of a loaded program to a target (a cgroup directory's fd). */
  bpfProgAttach(targetFd: number, progFd: number, attachType: number, flags: number): void;
  /** poll(2) on fds for POLLIN (or `events`); returns the revents of each, all 0 on a timeout (ms, -1 for none). */
  poll(fds: readonly number[], timeoutMs: number, events?: number): number[];
  /** pipe2(O_CLOEXEC): [read end, write end]. */
  pipe(): [number, number];
  /**
   * statx(2)'s st_mode of path (relative to dirfd when given), not following a last symlink;
   * undefined when it does not exist. No exception for a missing path: node:fs builds an Error
   * with its stack for each (~25 µs), and lookups of what a kernel may lack run on the start path.
   */
  statMode(path: string, dirfd?: number): number | undefined;
  /** Brings a network interface of the calling thread's network namespace up. */
  setLinkUp(name: string): void;
  /** mount_setattr(2) on a path: set and clear MOUNT_ATTR_* bits, on the whole subtree if recursive. */
  mountSetattr(path: string, attrSet: number, attrClr: number, recursive: boolean, opts?: { fd?: number; usernsFd?: number }): void;
  /** open_tree(OPEN_TREE_CLONE): a detached copy of the mount tree at path; returns its fd. */
  openTree(path: string, recursive: boolean): number;
  /** move_mount of a detached tree (from openTree) onto target. */
  moveMount(fd: number, target: string): void;
  setresuid(uid: number): void;
  /**
   * seccomp(SECCOMP_SET_MODE_FILTER, flags) with a compiled BPF program (struct sock_filter[]).
   * The kernel takes it without no_new_privs only from a process with CAP_SYS_ADMIN.
   */
  seccompFilter(program: Uint8Array, flags: number): void;
  /** lsetxattr(2): an extended attribute of a path, not followed through a symlink. */
  lsetxattr(path: string, name: string, value: string | Buffer): void;
  /** lgetxattr(2): the attribute's value, or undefined when the path has none (ENODATA). */
  lgetxattr(path: string, name: string): string | undefined;
  /** lgetxattr(2) as bytes (a binary value such as security.capability), or undefined (ENODATA). */
  lgetxattrBytes(path: string, name: string): Buffer | undefined;
  /** llistxattr(2): the names of a path's extended attributes that the caller may see. */
  llistxattr(path: string): string[];
  /** Default disposition for every signal and an empty mask, for the process about to exec. */
  resetSignals(): void;
  // Credentials of the thread about to exec: setresuid, setresgid and setgroups change the
  // calling thread's only (the kernel keeps them per thread), as the bounding set, capset,
  // no_new_privs and the seccomp filter are. execve, called on the same (JavaScript's) thread,
  // passes them on and ends the other threads; none of those runs a system call that depends
  // on them in between (no asynchronous work is under way then).
  setresgid(gid: number): void;
  setgroups(gids: readonly number[]): void;
  /** mknod(2): mode carries the type (S_IFCHR, S_IFBLK, S_IFIFO); overlayfs whiteouts are character devices 0/0. */
  mknod(path: string, mode: number, major: number, minor: number): void;
  /** prlimit(2) on the calling process (or pid); values above 2^53 mean unlimited. */
  setrlimit(resource: number, soft: number, hard: number, pid?: number): void;
  /** capset(2) of the calling thread's effective, permitted and inheritable sets. */
  capset(sets: { effective: readonly number[]; permitted: readonly number[]; inheritable: readonly number[] }): void;
  setdomainname(name: string): void;
  /** A new anonymous session keyring (keyctl JOIN_SESSION_KEYRING), as runc gives each container. */
  joinSessionKeyring(name: string): void;
  /**
   * The native helper's exec into a running container: a child that waits on sync, joins
   * nsFlags of pidfd's process, takes ttyFd as its controlling terminal and stdio, changes to
   * cwd, credentials and capabilities, and execs argv[0] through the PATH of env. A failing step
   * writes two ints {step, errno} on errFd. Returns the child's pid.
   */
  enterExec(opts: EnterExecArgs): number;
}

export interface EnterExecArgs {
  argv: readonly string[];
  env: readonly string[];
  cwd: string;
  pidfd: number;
  nsFlags: number;
  sync: [number, number];
  errFd: number;
  ttyFd: number;
  uid: number;
  gid: number;
  groups: readonly number[];
  /** bounding, effective, permitted, inheritable, ambient as capability numbers. */
  caps: { bounding: readonly number[]; effective: readonly number[]; permitted: readonly number[]; inheritable: readonly number[]; ambient: readonly number[] };
  lastCap: number;
  noNewPrivs: boolean;
  umask: number | undefined;
  /** The container's compiled seccomp program (8-byte BPF instructions) and seccomp(2)'s flags. */
  seccomp?: { program: Uint8Array; flags: number } | undefined;
  /** Without a terminal: its stdin (/dev/null when exec has no -i); the caller's when absent. */
  stdinFd?: number | undefined;
  /** Born in the PID namespace of pidfd's process too (through a first child that joins it). */
  pidNamespace: boolean;
}
