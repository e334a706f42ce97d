import { closeSync, constants, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import { writeInBackground, type SyscallError } from "@corerun/syscall";
import { nodeCgroupFs, type CgroupFs } from "./fs.ts";
import { writeValue } from "./files.ts";
import type { Limits } from "./limits.ts";
import type { CgroupManager } from "./manager.ts";

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
 * How a process may enter cgroups with these limits as it is cloned, before its Node has loaded:
 * the limits the cgroups are created with, and those written only once that Node has loaded
 * (before go). Entering early, the move's RCU grace period passes while Node loads, and Node
 * counts in the cgroups' usage numbers.
 *
 * - A pids limit, a CPU quota, a CPU weight, a cpuset and block I/O limits wait: Node's ~7
 *   threads could exceed pids.max (the kernel takes a pids.max below the count, and the exec ends
 *   the threads), and a quota, a weight, fewer CPUs or a disk throttle would slow its load, which
 *   reads its binary and bundle from disk when they are not cached (a cpuset written later moves
 *   the tasks already in it onto its CPUs).
 * - A memory limit (and swap) from EARLY_JOIN_MEMORY up is there from the start: it holds Node's
 *   load with room to spare, and written later it would make the kernel reclaim or refuse.
 * - Device rules are there from the start: they always allow what Node opens (/dev/null,
 *   /dev/urandom), as runc's defaults do.
 *
 * undefined: the process joins right before its exec, under every limit, because one of them
 * could stop or stall its Node (a memory limit below EARLY_JOIN_MEMORY, Docker's floor being
 * 6 MiB), or the steps between go and the exec (a CPU quota below EARLY_JOIN_QUOTA: ~3 ms of
 * CPU would wait for the next periods). Limits of the parent cgroups apply either way.
 */
export function cloneJoin(limits: Limits): { create: Limits; beforeGo: Limits } | undefined {
  const small = (bytes: number | undefined) => bytes !== undefined && bytes >= 0 && bytes < EARLY_JOIN_MEMORY;
  if (small(limits.memory) || small(limits.swap) || (limits.cpu && limits.cpu.quota < EARLY_JOIN_QUOTA)) return undefined;
  const { pids, cpu, cpuShares, cpuset, blockIO, ...create } = limits;
  const beforeGo: Limits = {};
  if (pids !== undefined) beforeGo.pids = pids;
  if (cpu !== undefined) beforeGo.cpu = cpu;
  if (cpuShares !== undefined) beforeGo.cpuShares = cpuShares;
  if (cpuset !== undefined) beforeGo.cpuset = cpuset;
  if (blockIO !== undefined) beforeGo.blockIO = blockIO;
  return { create, beforeGo };
}

/**
 * Creates the cgroup of a process that enters it as it is cloned, where its limits allow
 * (cloneJoin): returns the limits left to apply() once its Node has loaded (before go), or
 * undefined when the cgroup has them all and the process joins right before its exec.
 */
export function createForClone(cg: Pick<CgroupManager, "create">, limits: Limits): Limits | undefined {
  const split = cloneJoin(limits);
  cg.create(split?.create ?? limits, split?.beforeGo);
  return split?.beforeGo;
}

/**
 * 32 MiB: corerun-exec's Node, loading inside the cgroup, was charged ~6 MiB at its peak on the
 * test machine (memory.max_usage_in_bytes, also with its bundle read cold), most of it anonymous
 * memory the kernel could not reclaim to stay under a smaller limit. The move ends an RCU grace
 * period into that load, so on a host where moves are quicker (cgroup v2's favordynmods) more
 * of it is charged: all of Node's anonymous memory once loaded is ~7 MiB (RssAnon).
 */
export const EARLY_JOIN_MEMORY = 32 * 1024 * 1024;

/** 10 ms of CPU per period: the steps from go to the exec (~3 ms) within the quota of one period. */
export const EARLY_JOIN_QUOTA = 10_000;

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
