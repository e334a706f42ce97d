import { spawnSync } from "node:child_process";
import { closeSync, writeFileSync, writeSync } from "node:fs";
import { CLONE_NEWUSER } from "./constants.ts";
import type { Syscall } from "./types.ts";

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
  /** Work on the new namespaces from outside (a loopback to bring up) before the process runs. */
  prepare?: ((pid: number) => void) | undefined;
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
  if (!opts.userns && !opts.prepare) return sys.cloneExec(flags, opts.path, opts.argv, opts.env, { dieWithParent });
  const sync = sys.pipe();
  let pid: number | undefined;
  try {
    pid = sys.cloneExec(flags, opts.path, opts.argv, opts.env, { sync, becomeRoot: opts.userns !== undefined, dieWithParent });
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
