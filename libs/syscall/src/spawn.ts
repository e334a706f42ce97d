import { accessSync, closeSync, constants as fsConstants, openSync, readSync, writeFileSync, writeSync } from "node:fs";
import { CLONE_NEWPID, CLONE_NEWUSER, WEXITED } from "./constants.ts";
import { isErrno, SyscallError } from "./error.ts";
import type { EnterExecArgs, Syscall, WaitResult } from "./types.ts";

export interface IdMapText {
  /** /proc/PID/uid_map and gid_map contents: "CTR HOST SIZE" lines. */
  uidMap: string;
  gidMap: string;
  /**
   * Write them through newuidmap/newgidmap (setuid helpers of the uidmap package that check
   * /etc/subuid and /etc/subgid): an unprivileged user may write only a map of its own ids.
   */
  helpers?: boolean;
}

/** An environment as execve takes it: KEY=VALUE strings. */
export function envp(env: NodeJS.ProcessEnv = process.env): string[] {
  return Object.entries(env).map(([k, v]) => `${k}=${v ?? ""}`);
}

export interface StartOptions {
  /** CLONE_NEW* flags; CLONE_NEWUSER is added when `userns` is given. */
  flags: number;
  path: string;
  argv: readonly string[];
  env: readonly string[];
  /** A new user namespace with these maps, in which the process becomes uid and gid 0. */
  userns?: IdMapText | undefined;
  /**
   * A user namespace to join instead (a pod's, by path), in which the process becomes uid and
   * gid 0; the namespaces of `flags` are made inside it. `pidns`: a PID namespace (owned by it)
   * for the process to be born in; the caller must not have joined that one itself.
   */
  joinUserns?: { userns: number; pidns?: number | undefined } | undefined;
  /** Work on the new namespaces from outside (a loopback to bring up) before the process runs. */
  prepare?: ((pid: number) => void) | undefined;
  /** /dev/null as its stdio instead of the caller's. */
  nullStdio?: boolean;
  /** This fd as its stdin instead of the caller's (/dev/null for `corerun run` without -i). */
  stdinFd?: number | undefined;
  /**
   * SIGKILL for the process when the caller dies, from its first instruction: for a start that
   * must not outlive the process driving it. Without it, the process may wait for a later one.
   */
  dieWithParent?: boolean | undefined;
}

/**
 * Starts a process in new namespaces through the native clone helper. When its user namespace
 * needs maps or its namespaces need work from outside, it waits on a pipe until both are done
 * here (by root, setgroups may stay allowed), then runs. A failure kills it.
 */
export function startInNamespaces(sys: Syscall, opts: StartOptions): number {
  const flags = opts.flags | (opts.userns ? CLONE_NEWUSER : 0);
  const dieWithParent = opts.dieWithParent ?? false;
  const nullStdio = opts.nullStdio ?? false;
  if (opts.userns && opts.joinUserns !== undefined) throw new Error("a process gets a new user namespace or joins one, not both");
  const usernsFd = opts.joinUserns?.userns;
  const join = opts.joinUserns?.pidns === undefined ? undefined : { fd: opts.joinUserns.pidns, flags: CLONE_NEWPID };
  const stdinFd = opts.stdinFd;
  if (!opts.userns && !opts.prepare) return sys.cloneExec(flags, opts.path, opts.argv, opts.env, { nullStdio, stdinFd, dieWithParent, usernsFd, join, becomeRoot: usernsFd !== undefined });
  const sync = sys.pipe();
  let pid: number | undefined;
  try {
    pid = sys.cloneExec(flags, opts.path, opts.argv, opts.env, { sync, becomeRoot: opts.userns !== undefined || usernsFd !== undefined, nullStdio, stdinFd, dieWithParent, usernsFd, join });
    if (opts.userns?.helpers) {
      mapWith(sys, "newuidmap", pid, opts.userns.uidMap);
      mapWith(sys, "newgidmap", pid, opts.userns.gidMap);
    } else if (opts.userns) {
      // An unprivileged writer may map its gid only once setgroups is denied (Linux 3.19+).
      if (process.geteuid?.() !== 0) writeFileSync(`/proc/${pid}/setgroups`, "deny");
      writeFileSync(`/proc/${pid}/uid_map`, opts.userns.uidMap);
      writeFileSync(`/proc/${pid}/gid_map`, opts.userns.gidMap);
    }
    opts.prepare?.(pid);
    writeSync(sync[1], "1");
    return pid;
  } catch (err) {
    if (pid !== undefined) sys.kill(pid, 9);
    throw err;
  } finally {
    closeSync(sync[0]);
    closeSync(sync[1]);
  }
}

function mapWith(sys: Syscall, helper: string, pid: number, map: string): void {
  let why: string | undefined;
  try {
    const r = runProgram(sys, [helper, String(pid), ...map.trim().split(/\s+/)]);
    if (r.exitCode !== 0) why = r.stderr.trim().split("\n")[0] || (r.signal ? `killed by signal ${r.signal}` : `exit ${r.exitCode}`);
  } catch (err) {
    why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  }
  if (why !== undefined) throw new Error(`${helper} ${pid} failed (${why}); install the uidmap package and check /etc/subuid and /etc/subgid`);
}

/** execvp's PATH when none is set (and Docker's default PATH in a container). */
export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Where execvp looks for `command`, in order: the name itself when it holds a slash, else each PATH directory. */
export function pathCandidates(command: string, pathEnv: string): string[] {
  return command.includes("/") ? [command] : pathEnv.split(":").filter(Boolean).map((d) => `${d}/${command}`);
}

/** The path of a program as execvp would find it in PATH; undefined when no directory has it. */
export function findProgram(name: string, path = process.env.PATH ?? DEFAULT_PATH): string | undefined {
  return pathCandidates(name, path).find((file) => {
    try {
      accessSync(file, fsConstants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

export interface ProgramResult {
  exitCode?: number | undefined;
  signal?: number | undefined;
  stdout: string;
  stderr: string;
}

/**
 * Runs a program to its end, its stdin /dev/null, and returns its status and what it wrote,
 * as child_process.spawnSync does, through the native helper (Syscall.spawn): without
 * node:child_process's ~5 ms load, on the paths of a container's start and teardown that run
 * nft or newuidmap. A program not found in PATH throws an error with code ENOENT; one that has
 * not ended after timeoutMs is killed and throws with code ETIMEDOUT. `inherit`: fds the program
 * gets from 3 on (a lock it must hold until its end, should its caller die first).
 */
export function runProgram(sys: Syscall, argv: readonly string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; inherit?: readonly number[] } = {}): ProgramResult {
  const file = findProgram(argv[0]!);
  if (file === undefined) throw Object.assign(new Error(`${argv[0]}: not found in PATH`), { code: "ENOENT" });
  const out = sys.pipe();
  const err = sys.pipe();
  let pid: number;
  try {
    pid = sys.spawn(file, argv, envp(opts.env), [-1, out[1], err[1], ...(opts.inherit ?? [])], false);
  } catch (e) {
    for (const fd of [out[0], err[0]]) closeSync(fd);
    throw e;
  } finally {
    for (const fd of [out[1], err[1]]) closeSync(fd);
  }
  const text: Record<number, Buffer[]> = { [out[0]]: [], [err[0]]: [] };
  const open = new Set([out[0], err[0]]);
  const deadline = opts.timeoutMs === undefined ? undefined : Date.now() + opts.timeoutMs;
  const buf = Buffer.alloc(65536);
  try {
    while (open.size) {
      const fds = [...open];
      const left = deadline === undefined ? -1 : Math.max(0, deadline - Date.now());
      const ready = sys.poll(fds, left);
      if (ready.every((r) => r === 0)) {
        sys.kill(pid, 9);
        waitFor(sys, pid);
        throw Object.assign(new Error(`${argv[0]}: did not end within ${opts.timeoutMs} ms; killed`), { code: "ETIMEDOUT" });
      }
      fds.forEach((fd, i) => {
        if (ready[i] === 0) return;
        const n = readSync(fd, buf, 0, buf.length, null);
        if (n === 0) open.delete(fd);
        else text[fd]!.push(Buffer.from(buf.subarray(0, n)));
      });
    }
  } finally {
    for (const fd of [out[0], err[0]]) closeSync(fd);
  }
  const end = waitFor(sys, pid);
  return { exitCode: end.exitCode, signal: end.signal, stdout: Buffer.concat(text[out[0]]!).toString("utf8"), stderr: Buffer.concat(text[err[0]]!).toString("utf8") };
}

/** waitid for one child, blocking, again after a signal interrupted it. */
function waitFor(sys: Syscall, pid: number): WaitResult {
  for (;;) {
    try {
      return sys.waitid(pid, WEXITED)!;
    } catch (e) {
      if (!isErrno(e, "EINTR")) throw e;
    }
  }
}

/**
 * Runs path with argv and env, input on its stdin and the caller's stdout and stderr, to its end,
 * as child_process.spawnSync does, but exec'd from corerun-exe (Syscall.spawn's viaStub): for a
 * program of the container's own run by a process whose image is Node (an OCI startContainer
 * hook, run by corerun-exec), so that it never gets Node as /proc/self/exe. One that has not
 * ended after timeoutMs is killed and throws with code ETIMEDOUT. Returns how it ended; a
 * program that cannot be exec'd ends with 127 (not found) or 126, corerun-exe's line on stderr.
 */
export function runContainerProgram(sys: Syscall, path: string, argv: readonly string[], env: readonly string[], input: string, timeoutMs?: number): WaitResult {
  const stdin = sys.pipe();
  let pid: number;
  try {
    pid = sys.spawn(path, argv, env, [stdin[0], 1, 2], false, true);
  } catch (e) {
    closeSync(stdin[1]);
    throw e;
  } finally {
    closeSync(stdin[0]);
  }
  try {
    writeSync(stdin[1], input);
  } catch {
    // It need not read its stdin (EPIPE once it has ended).
  } finally {
    closeSync(stdin[1]);
  }
  if (timeoutMs !== undefined) {
    const pidfd = sys.pidfdOpen(pid);
    try {
      const [ended] = sys.poll([pidfd], timeoutMs);
      if (!ended) {
        sys.kill(pid, 9);
        waitFor(sys, pid);
        throw Object.assign(new Error(`${path}: did not end within ${timeoutMs} ms; killed`), { code: "ETIMEDOUT" });
      }
    } finally {
      closeSync(pidfd);
    }
  }
  return waitFor(sys, pid);
}

/** native/exe.h's enter_step, by number. */
const ENTER_STEPS = ["", "wait for the caller", "setns", "set up the terminal", "chdir", "shrink the capability bounding set", "change user", "capset", "raise ambient capabilities", "set no_new_privs", "load the seccomp filter", "execve", "memfd_create", "prctl(PR_SET_DUMPABLE)"];

/**
 * A failed step as the native entry and corerun-exe write it on their error fd: {step, errno},
 * two ints; named after the program, or the working directory for chdir.
 */
export function stepError(msg: Buffer, file: string, cwd?: string): SyscallError {
  const syscall = ENTER_STEPS[msg.readInt32LE(0)] ?? "enter";
  const path = syscall === "memfd_create" ? "corerun-exe" : syscall === "chdir" && cwd !== undefined ? cwd : file;
  return new SyscallError({ syscall, errno: msg.readInt32LE(4), path });
}

export interface EnterOptions extends Omit<EnterExecArgs, "sync" | "errFd" | "nsFlags" | "pidfd" | "pidNamespace"> {
  /** A pidfd of the container's first process; its namespaces are joined. */
  pidfd: number;
  /** Namespaces to join besides the PID namespace: CLONE_NEW* flags. */
  nsFlags: number;
  /** Also join its PID namespace (the new process is born in it). */
  pidNamespace: boolean;
  /** Work on the new process before it enters (cgroup, rlimits), while it waits. */
  prepare?: ((pid: number) => void) | undefined;
}

/**
 * Starts a process inside a running container through the native helper, and returns its pid
 * once it has exec'd. A step that failed inside is thrown as a SyscallError naming it; the exec
 * itself failing (no such program) carries errno ENOENT or EACCES for the 127/126 statuses.
 */
export function enterContainer(sys: Syscall, o: EnterOptions): number {
  const sync = sys.pipe();
  const err = sys.pipe();
  let pid: number | undefined;
  try {
    // The PID namespace is joined by the native helper, not set for Node's children: without root
    // that setns needs the container's user namespace joined first, which Node cannot do.
    pid = sys.enterExec({ ...o, sync, errFd: err[1] });
    closeSync(err[1]);
    err[1] = -1;
    o.prepare?.(pid);
    writeSync(sync[1], "1");
  } catch (e) {
    if (pid !== undefined) sys.kill(pid, 9);
    throw e;
  } finally {
    closeSync(sync[0]);
    closeSync(sync[1]);
    if (err[1] >= 0) closeSync(err[1]);
  }
  try {
    const msg = Buffer.alloc(8);
    let got = 0;
    for (;;) {
      const n = readSync(err[0], msg, got, 8 - got, null);
      if (n === 0) break;
      got += n;
      if (got === 8) break;
    }
    if (got === 8) throw stepError(msg, o.argv[0]!, o.cwd);
  } finally {
    closeSync(err[0]);
  }
  return pid;
}

/** The PID namespace of the calling thread's next children, set for the clone inside fn. */
export function inPidNamespace<T>(sys: Syscall, pidfd: number, fn: () => T): T {
  const own = openSync("/proc/thread-self/ns/pid_for_children", "r");
  try {
    sys.setns(pidfd, CLONE_NEWPID, "pidfd");
    try {
      return fn();
    } finally {
      sys.setns(own, CLONE_NEWPID, "/proc/thread-self/ns/pid_for_children");
    }
  } finally {
    closeSync(own);
  }
}
