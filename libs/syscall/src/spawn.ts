import { spawnSync } from "node:child_process";
import { closeSync, openSync, readSync, writeFileSync, writeSync } from "node:fs";
import { CLONE_NEWPID, CLONE_NEWUSER } from "./constants.ts";
import { SyscallError } from "./error.ts";
import type { EnterExecArgs, Syscall } from "./types.ts";

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
      mapWith("newuidmap", pid, opts.userns.uidMap);
      mapWith("newgidmap", pid, opts.userns.gidMap);
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

function mapWith(helper: string, pid: number, map: string): void {
  const r = spawnSync(helper, [String(pid), ...map.trim().split(/\s+/)], { encoding: "utf8" });
  if (r.error || r.status !== 0) {
    const why = r.error ? (r.error as NodeJS.ErrnoException).code : (r.stderr || "").trim().split("\n")[0];
    throw new Error(`${helper} ${pid} failed (${why}); install the uidmap package and check /etc/subuid and /etc/subgid`);
  }
}

const ENTER_STEPS = ["", "wait for the caller", "setns", "set up the terminal", "chdir", "shrink the capability bounding set", "change user", "capset", "raise ambient capabilities", "set no_new_privs", "load the seccomp filter", "execve"];

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
    if (got === 8) {
      const step = msg.readInt32LE(0);
      throw new SyscallError({ syscall: step === ENTER_STEPS.length - 1 ? "execve" : ENTER_STEPS[step] ?? "enter", errno: msg.readInt32LE(4), path: o.argv[0] });
    }
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
