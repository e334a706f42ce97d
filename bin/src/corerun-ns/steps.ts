import { spawn, type ChildProcess } from "node:child_process";
import { writeFileSync, writeSync, renameSync } from "node:fs";
import { FD_CLOEXEC, MS_PRIVATE, MS_REC, namespaceFlags, type Syscall } from "@corerun/syscall";
import { CommandError, exitCodeOf } from "@corerun/cli";
import type { NsOptions } from "./args.ts";

/**
 * unshare(2) on Node's main thread moves that thread and every child it spawns afterwards; the
 * first child after CLONE_NEWPID is PID 1 of the new namespace.
 */
export function createNamespaces(sys: Syscall, opts: NsOptions): void {
  sys.unshare(namespaceFlags(opts.namespaces));
  if (opts.namespaces.includes("mount")) {
    // The copied mount table keeps the host's shared propagation; without this, every mount the
    // container makes would appear on the host too.
    sys.mount(null, "/", null, MS_REC | MS_PRIVATE);
  }
  if (opts.namespaces.includes("net")) sys.setLinkUp("lo");
}

/** Keeps the status fd out of the child: only 0-2 and the preserved fds go on. */
export function protectStatusFd(sys: Syscall, fd: number | undefined): void {
  if (fd !== undefined) sys.setFdFlags(fd, sys.getFdFlags(fd) | FD_CLOEXEC);
}

export function startCommand(opts: NsOptions): Promise<ChildProcess> {
  const extra = Array.from({ length: opts.preserveFds }, (_, i) => 3 + i);
  const child = spawn(opts.command[0]!, opts.command.slice(1), { stdio: ["inherit", "inherit", "inherit", ...extra] });
  return new Promise((resolve, reject) => {
    child.once("spawn", () => resolve(child));
    child.once("error", (err: NodeJS.ErrnoException) => {
      const code = err.code === "ENOENT" ? 127 : 126;
      reject(new CommandError(`cannot run ${opts.command[0]}: ${err.code ?? err.message}`, code));
    });
  });
}

export function reportStart(opts: NsOptions, pid: number): void {
  if (opts.pidFile) {
    writeFileSync(`${opts.pidFile}.tmp`, `${pid}\n`);
    renameSync(`${opts.pidFile}.tmp`, opts.pidFile);
  }
  if (opts.statusFd !== undefined) writeSync(opts.statusFd, `${JSON.stringify({ pid })}\n`);
}

const FORWARDED = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"] as const;

/** Waits for the command, forwarding signals to it, and returns the status to exit with. */
export function waitCommand(opts: NsOptions, child: ChildProcess): Promise<number> {
  for (const sig of FORWARDED) process.on(sig, () => child.kill(sig));
  return new Promise((resolve) => {
    child.once("exit", (exitCode, signal) => {
      const code = exitCodeOf({ exitCode, signal });
      if (opts.statusFd !== undefined) writeSync(opts.statusFd, `${JSON.stringify({ exitCode: code })}\n`);
      resolve(code);
    });
  });
}
