import { closeSync, existsSync, writeFileSync, writeSync, renameSync } from "node:fs";
import { FD_CLOEXEC, inNetworkNamespace, namespaceFlags, type Syscall } from "@corerun/syscall";
import { exitCodeOf, UsageError, waitChild } from "@corerun/cli";
import { findCommand } from "@corerun/rootfs";
import type { NsOptions } from "./args.ts";

/** Keeps the status fd out of the child: only 0-2 and the preserved fds go on. */
export function protectStatusFd(sys: Syscall, fd: number | undefined): void {
  if (fd !== undefined) sys.setFdFlags(fd, sys.getFdFlags(fd) | FD_CLOEXEC);
}

export function checkNetNs(path: string | undefined): void {
  if (path !== undefined && !existsSync(path)) {
    throw new UsageError(`--net-ns ${path}: no such namespace file; give /proc/PID/ns/net of a running process or a /run/netns file`);
  }
}

/**
 * Starts the command in new namespaces with clone(2) through the native helper: Node cannot
 * unshare a PID namespace for itself, and the child must run no JavaScript. When the command gets
 * a network namespace of its own, it waits on a pipe until its loopback is up.
 */
export function startCommand(sys: Syscall, opts: NsOptions): number {
  const path = findCommand("/", opts.command[0]!, process.env.PATH);
  const env = Object.entries(process.env).map(([k, v]) => `${k}=${v ?? ""}`);
  const flags = namespaceFlags(opts.namespaces);
  const clone = (): number => {
    if (!opts.namespaces.includes("net")) return sys.cloneExec(flags, path, opts.command, env);
    const sync = sys.pipe();
    let pid: number | undefined;
    try {
      pid = sys.cloneExec(flags, path, opts.command, env, { sync });
      const child = pid;
      inNetworkNamespace(sys, child, () => sys.setLinkUp("lo"));
      writeSync(sync[1], "1");
      return pid;
    } catch (err) {
      if (pid !== undefined) sys.kill(pid, 9);
      throw err;
    } finally {
      closeSync(sync[0]);
      closeSync(sync[1]);
    }
  };
  // A joined network namespace is inherited by the child from the thread that clones it.
  return opts.netNs ? inNetworkNamespace(sys, opts.netNs, clone) : clone();
}

export function reportStart(opts: NsOptions, pid: number): void {
  if (opts.pidFile) {
    writeFileSync(`${opts.pidFile}.tmp`, `${pid}\n`);
    renameSync(`${opts.pidFile}.tmp`, opts.pidFile);
  }
  if (opts.statusFd !== undefined) writeSync(opts.statusFd, `${JSON.stringify({ pid })}\n`);
}

/** Waits for the command, forwarding signals to it, and returns the status to exit with. */
export async function waitCommand(sys: Syscall, opts: NsOptions, pid: number): Promise<number> {
  const code = exitCodeOf(await waitChild(sys, pid));
  if (opts.statusFd !== undefined) writeSync(opts.statusFd, `${JSON.stringify({ exitCode: code })}\n`);
  return code;
}
