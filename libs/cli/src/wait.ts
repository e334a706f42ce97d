import { isErrno, WEXITED, WNOHANG, WNOWAIT, type Syscall, type WaitResult } from "@corerun/syscall";
import type { ProcessEnd } from "./exit.ts";

/** The signals a parent passes on to the process it runs, as Docker's and Podman's clients do. */
export const FORWARDED_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"] as const;

/**
 * Waits for a child that libuv did not start (it came from clone(2)), forwarding signals to it.
 * SIGCHLD triggers waitid(WNOHANG) on that one pid, so libuv still reaps its own children.
 * Signal listeners do not keep Node's event loop alive; the interval does, and doubles as a
 * safety net for a SIGCHLD that arrives while libuv handles its own. With `leaveZombie` the
 * child is seen but not reaped: a subreaper above (a detached container's monitor) reaps it
 * once this process has exited, and learns its status.
 */
export function waitChild(sys: Syscall, pid: number, forward: readonly NodeJS.Signals[] = FORWARDED_SIGNALS, leaveZombie = false): Promise<ProcessEnd> {
  const pass = (sig: NodeJS.Signals) => {
    try {
      process.kill(pid, sig);
    } catch {
      // Already gone: the SIGCHLD that follows ends the wait.
    }
  };
  for (const sig of forward) process.on(sig, pass);
  return new Promise((resolve) => {
    const check = () => {
      let r: WaitResult | null;
      try {
        r = sys.waitid(pid, WEXITED | WNOHANG | (leaveZombie ? WNOWAIT : 0));
      } catch (err) {
        if (!isErrno(err, "ECHILD")) throw err;
        r = { pid, exitCode: 125 };
      }
      if (!r || r.stopped !== undefined) return;
      clearInterval(keepAlive);
      process.off("SIGCHLD", check);
      for (const sig of forward) process.off(sig, pass);
      resolve(r.signal !== undefined ? { signal: r.signal } : { exitCode: r.exitCode });
    };
    const keepAlive = setInterval(check, 1000);
    process.on("SIGCHLD", check);
    check();
  });
}
