import { existsSync, writeFileSync, writeSync, renameSync } from "node:fs";
import { CLOSE_RANGE_CLOEXEC, envp, FD_CLOEXEC, inNamespaces, inNetworkNamespace, namespaceFlags, startInNamespaces, type Syscall } from "@corerun/syscall";
import { idMapText } from "@corerun/state";
import { exitCodeOf, UsageError, waitChild } from "@corerun/cli";
import { findCommand } from "@corerun/rootfs";
import type { NsOptions } from "./args.ts";

/** Keeps the status fd out of the child: only 0-2 and the preserved fds go on. */
export function protectStatusFd(sys: Syscall, fd: number | undefined): void {
  if (fd !== undefined) sys.setFdFlags(fd, sys.getFdFlags(fd) | FD_CLOEXEC);
}

/** The namespaces joined by path (--net-ns, --ipc-ns, --pid-ns), each there. */
export function joinedPaths(opts: Pick<NsOptions, "netNs" | "ipcNs" | "pidNs">): { type: string; path: string }[] {
  const joins = [["network", "net", opts.netNs], ["ipc", "ipc", opts.ipcNs], ["pid", "pid", opts.pidNs]] as const;
  return joins.flatMap(([type, name, path]) => {
    if (path === undefined) return [];
    if (!existsSync(path)) throw new UsageError(`--${name}-ns ${path}: no such namespace file; give /proc/PID/ns/${name} of a running process${name === "net" ? " or a /run/netns file" : ""}`);
    return [{ type, path }];
  });
}

/**
 * Starts the command in new namespaces with clone(2) through the native helper: Node cannot
 * unshare a PID or user namespace for itself, and the child must run no JavaScript. It waits
 * until its maps are written and its loopback is up.
 */
export function startCommand(sys: Syscall, opts: NsOptions): number {
  // Node marks the fds it inherits close-on-exec; the preserved ones must reach the command, and
  // nothing else may.
  sys.closeRange(3 + opts.preserveFds, 0xffffffff, CLOSE_RANGE_CLOEXEC);
  for (let fd = 3; fd < 3 + opts.preserveFds; fd++) sys.setFdFlags(fd, 0);
  const path = findCommand("/", opts.command[0]!, process.env.PATH);
  const userns = opts.uidMap.length ? { uidMap: idMapText(opts.uidMap), gidMap: idMapText(opts.gidMap) } : undefined;
  const prepare = opts.namespaces.includes("net") ? (pid: number) => inNetworkNamespace(sys, pid, () => sys.setLinkUp("lo")) : undefined;
  const start = () => startInNamespaces(sys, { flags: namespaceFlags(opts.namespaces), path, argv: opts.command, env: envp(), userns, prepare });
  // Joined namespaces are the child's from the thread that clones it (a PID namespace as its
  // pid_for_children).
  const joins = joinedPaths(opts);
  return joins.length ? inNamespaces(sys, joins, start) : start();
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
