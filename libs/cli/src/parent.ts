import { PR_SET_PDEATHSIG, type Syscall } from "@corerun/syscall";

/** Set by a parent that starts a tool with --die-with-parent: its own pid. */
export const PARENT_PID_ENV = "CORERUN_PARENT_PID";

/**
 * SIGKILL for this process when its parent dies (as bubblewrap's --die-with-parent), set before
 * anything can block. A parent that died earlier, while Node was still starting, would never
 * send it: the process is already reparented. A parent that names itself in CORERUN_PARENT_PID
 * is checked against the current parent, and the process stops dead when they differ. The
 * variable is removed, so that the tool's own children do not check against the wrong parent.
 */
export function dieWithParent(sys: Pick<Syscall, "prctl">, env: NodeJS.ProcessEnv = process.env): void {
  sys.prctl(PR_SET_PDEATHSIG, 9);
  const expected = env[PARENT_PID_ENV];
  delete env[PARENT_PID_ENV];
  if (expected !== undefined && process.ppid !== Number(expected)) process.kill(process.pid, "SIGKILL");
}
