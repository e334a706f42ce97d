import { closeSync, constants, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import { writeInBackground, type SyscallError } from "@corerun/syscall";
import { nodeCgroupFs, type CgroupFs } from "./fs.ts";
import { writeValue } from "./files.ts";
import type { Limits } from "./limits.ts";

/**
 * Moves the calling process into each cgroup directory: writing "0" to cgroup.procs means "me"
 * (in v1 and v2 alike). Meant for the last step before execve, so that no Node code runs under the
 * cgroup's limits: its threads would count against pids.max and its allocations against the
 * memory limit. The directories may be /proc/self/fd/N paths of directory fds opened before a
 * pivot_root.
 */
export function joinCgroups(dirs: readonly string[], fs: CgroupFs = nodeCgroupFs): void {
  for (const dir of new Set(dirs)) writeValue(fs, dir, "cgroup.procs", "0");
}

/**
 * Whether a process may enter cgroups with these limits as it is cloned, before its Node has
 * loaded: a memory or pids limit, a CPU quota or a CPU weight below the default could make that
 * load fail or crawl (a 6 MiB limit; its ~10 threads against pids.max; Kubernetes gives a
 * BestEffort pod 2 shares of 1024), so under those it joins right before its exec. Device rules
 * cannot: they always allow what Node opens (/dev/null, /dev/urandom), as runc's defaults do.
 * Entering early, its Node counts in the cgroups' usage numbers, and the move's RCU grace period
 * passes while it loads. Limits of the parent cgroups apply to it either way.
 */
export function joinsAtClone(limits: Limits): boolean {
  const weight = limits.cpuShares === undefined || limits.cpuShares >= DEFAULT_CPU_SHARES;
  return limits.memory === undefined && limits.swap === undefined && limits.pids === undefined && limits.cpu === undefined && weight;
}

/** cgroup v1's cpu.shares of a cgroup nobody set (v2's cpu.weight 100). */
const DEFAULT_CPU_SHARES = 1024;

/**
 * Opens cgroup.procs of each directory for writing, for a process that will join later from
 * where the paths are out of reach (after pivot_root into the container's root). Since Linux 5.16
 * the kernel checks a write to cgroup.procs against the credentials and cgroup namespace of the
 * opener, so fds opened here by root in the host's namespaces keep working after the process has
 * entered its own. Node opens every fd close-on-exec; a child that should inherit one gets it through
 * spawn's stdio.
 */
export function openCgroupProcs(dirs: readonly string[]): number[] {
  const fds: number[] = [];
  try {
    for (const dir of new Set(dirs)) fds.push(openSync(join(dir, "cgroup.procs"), constants.O_WRONLY));
  } catch (err) {
    for (const fd of fds) closeSync(fd);
    throw new Error(`cannot open cgroup.procs to join later`, { cause: err });
  }
  return fds;
}

/**
 * Joins through fds from openCgroupProcs: writes "0" (this process), or another process's pid,
 * to each; closes them all, also when one fails.
 */
export function joinCgroupFds(fds: readonly number[], pid = 0): void {
  try {
    for (const fd of fds) {
      try {
        writeSync(fd, String(pid));
      } catch (err) {
        throw new Error(`cannot join the cgroup through fd ${fd}`, { cause: err });
      }
    }
  } finally {
    for (const fd of fds) closeSync(fd);
  }
}

/**
 * joinCgroupFds begun on a thread: the kernel makes a move into a cgroup wait for an RCU grace
 * period (5-15 ms), which a caller that has other things to wait for (corerun-exec, for "go")
 * need not spend doing nothing. With a pid, that process moves instead of the caller. The
 * returned function waits for the join, throws as joinCgroupFds does, and closes the fds; called
 * again (a teardown after a failed start), it returns at once.
 */
export function startJoinCgroupFds(fds: readonly number[], pid = 0): () => void {
  let wait: () => void;
  try {
    wait = writeInBackground(fds, String(pid));
  } catch {
    // No thread to be had (pthread_create's EAGAIN under a pids limit or RLIMIT_NPROC): the move
    // is made here and now, and its wait has nothing left to do.
    joinCgroupFds(fds, pid);
    return () => {};
  }
  let over = false;
  return () => {
    if (over) return;
    over = true;
    try {
      wait();
    } catch (err) {
      throw new Error(`cannot join the cgroup through ${(err as SyscallError).path ?? "an fd"}`, { cause: err });
    } finally {
      for (const fd of fds) closeSync(fd);
    }
  };
}

/**
 * The shell step that runs a command inside the cgroup from its first instruction: the shell moves
 * itself into each directory (the echo is a builtin, so the writer is the shell), then execs the
 * command, which inherits every membership. A failed join exits 125 before the command runs; a
 * command that cannot be found or run exits 127 or 126, the shell's own codes.
 */
export const JOIN_SCRIPT = 'while [ "$1" != -- ]; do echo 0 > "$1/cgroup.procs" || exit 125; shift; done; shift; exec "$@"';

/** argv that runs command inside the cgroup directories: [shell, -c, JOIN_SCRIPT, ..., dirs, --, command]. */
export function joinCommand(dirs: readonly string[], command: readonly string[], shell = "/bin/sh"): string[] {
  for (const d of dirs) if (!d.startsWith("/")) throw new Error(`cgroup directory "${d}" is not an absolute path`);
  return [shell, "-c", JOIN_SCRIPT, "corerun-cgroup-join", ...new Set(dirs), "--", ...command];
}
