/**
 * cgroup v2: the controller files of one cgroup directory in the unified hierarchy, and the core
 * files every v2 cgroup has even when no controller is enabled (this host's /sys/fs/cgroup/unified).
 */
import { join } from "node:path";
import type { CgroupFs } from "./fs.ts";
import { waitFor } from "./fs.ts";
import { readKeyed, readNumber, readOptional, writeValue } from "./files.ts";
import type { Limits } from "./limits.ts";
import type { CgroupStats } from "./stats.ts";
import { cpusetUnit } from "./v1.ts";

/** One controller's files: how a limit is written and how usage is read back. */
export interface ControllerUnit {
  apply(fs: CgroupFs, dir: string, limits: Limits): void;
  stats(fs: CgroupFs, dir: string, out: CgroupStats): void;
}

export const v2Memory: ControllerUnit = {
  apply(fs, dir, limits) {
    if (limits.memoryReservation !== undefined) writeValue(fs, dir, "memory.low", String(limits.memoryReservation));
    if (limits.memory === undefined) return;
    writeValue(fs, dir, "memory.max", String(limits.memory));
    // v2 accounts swap apart from memory.max: without swap.max 0, a process could use its limit a
    // second time in swap. The file exists only when the kernel accounts swap.
    const swap = limits.swap === undefined ? "0" : limits.swap < 0 ? "max" : String(limits.swap - limits.memory);
    if (fs.exists(join(dir, "memory.swap.max"))) writeValue(fs, dir, "memory.swap.max", swap);
    else if (limits.swap !== undefined) throw new Error(`a swap limit needs ${join(dir, "memory.swap.max")}, which this kernel lacks (swap accounting is off)`);
  },
  stats(fs, dir, out) {
    out.memory.current = readNumber(fs, dir, "memory.current");
    out.memory.peak = readNumber(fs, dir, "memory.peak");
    out.memory.limit = readNumber(fs, dir, "memory.max");
  },
};

export const v2Cpu: ControllerUnit = {
  apply(fs, dir, limits) {
    if (limits.cpu) writeValue(fs, dir, "cpu.max", `${limits.cpu.quota} ${limits.cpu.period}`);
    // The conversion runc and crun use: shares 2..262144 onto weight 1..10000.
    if (limits.cpuShares !== undefined) writeValue(fs, dir, "cpu.weight", String(1 + Math.floor(((limits.cpuShares - 2) * 9999) / 262142)));
  },
  stats(fs, dir, out) {
    const [quota, period] = (readOptional(fs, dir, "cpu.max") ?? "").trim().split(/\s+/);
    out.cpu.limitPercent = quota && quota !== "max" && period ? (Number(quota) / Number(period)) * 100 : null;
  },
};

export const v2Pids: ControllerUnit = {
  apply(fs, dir, limits) {
    if (limits.pids !== undefined) writeValue(fs, dir, "pids.max", String(limits.pids));
  },
  stats(fs, dir, out) {
    out.pids.current = readNumber(fs, dir, "pids.current");
    out.pids.limit = readNumber(fs, dir, "pids.max");
  },
};

export const v2Io: ControllerUnit = {
  apply(fs, dir, limits) {
    const io = limits.blockIO;
    if (!io) return;
    // BFQ's io.bfq.weight takes blkio's 10-1000 as it is; io.weight (blk-iocost) is 1-10000,
    // onto which runc and crun scale it, and weighs nothing unless the root's io.cost.qos enables
    // iocost on a disk: without either, a weight would be written and do nothing.
    const bfq = fs.exists(join(dir, "io.bfq.weight"));
    const file = bfq ? "io.bfq.weight" : "io.weight";
    const weight = (w: number) => String(bfq ? w : 1 + Math.floor(((w - 10) * 9999) / 990));
    if ((io.weight !== undefined || io.weightDevice?.length) && !bfq && !iocostEnabled(fs, dir)) {
      throw new Error(`a block I/O weight needs ${join(dir, "io.bfq.weight")} (the BFQ I/O scheduler) or iocost enabled in the root's io.cost.qos, and this host has neither`);
    }
    if (io.weight !== undefined) writeValue(fs, dir, file, bfq ? weight(io.weight) : `default ${weight(io.weight)}`);
    for (const d of io.weightDevice ?? []) writeValue(fs, dir, file, `${d.major}:${d.minor} ${weight(d.weight)}`);
    const throttle = [["rbps", io.readBps], ["wbps", io.writeBps], ["riops", io.readIops], ["wiops", io.writeIops]] as const;
    // A rate of 0 lifts the throttle, as in blkio.throttle.*: io.max spells it "max".
    for (const [key, rates] of throttle) for (const r of rates ?? []) writeValue(fs, dir, "io.max", `${r.major}:${r.minor} ${key}=${r.rate || "max"}`);
  },
  stats(fs, dir, out) {
    // "MAJ:MIN rbytes=N wbytes=N rios=N wios=N ..." per device.
    const text = readOptional(fs, dir, "io.stat");
    if (text === undefined) return;
    out.blockIO = { readBytes: 0, writeBytes: 0 };
    for (const m of text.matchAll(/\b([rw])bytes=(\d+)/g)) {
      if (m[1] === "r") out.blockIO.readBytes += Number(m[2]);
      else out.blockIO.writeBytes += Number(m[2]);
    }
  },
};

export const V2_UNITS = { memory: v2Memory, cpu: v2Cpu, pids: v2Pids, cpuset: cpusetUnit, io: v2Io } as const;

/** Whether io.cost.qos, in the root of the hierarchy above dir, enables iocost on some disk. */
function iocostEnabled(fs: CgroupFs, dir: string): boolean {
  for (let d = dir, i = 0; i < 64 && d !== "/"; d = join(d, ".."), i++) {
    const qos = readOptional(fs, d, "io.cost.qos");
    if (qos !== undefined) return /\benable=1\b/.test(qos);
  }
  return false;
}

/** cpu.stat's usage_usec is core (no controller needed): every v2 cgroup counts its CPU time. */
export function v2CpuUsage(fs: CgroupFs, dir: string): number | null {
  return readKeyed(fs, dir, "cpu.stat")?.usage_usec ?? null;
}

/** cgroup.events: "populated" (any process in the subtree) and "frozen". */
export function v2Events(fs: CgroupFs, dir: string): { populated: boolean; frozen: boolean } {
  const ev = readKeyed(fs, dir, "cgroup.events") ?? {};
  return { populated: ev.populated === 1, frozen: ev.frozen === 1 };
}

/**
 * cgroup.freeze is asynchronous: the kernel sets "frozen 1" in cgroup.events once every task has
 * stopped, so wait for it before reporting the cgroup frozen.
 */
export function v2Freeze(fs: CgroupFs, dir: string, frozen: boolean, timeoutMs = 2_000): void {
  writeValue(fs, dir, "cgroup.freeze", frozen ? "1" : "0");
  if (!waitFor(() => v2Events(fs, dir).frozen === frozen, timeoutMs)) {
    throw new Error(`${join(dir, "cgroup.events")} did not report frozen ${frozen ? 1 : 0} within ${timeoutMs} ms`);
  }
}

/** Whether this kernel has cgroup.kill (Linux 5.14+). */
export function v2CanKill(fs: CgroupFs, dir: string): boolean {
  return fs.exists(join(dir, "cgroup.kill"));
}

/**
 * cgroup.kill sends SIGKILL to every process in the subtree at once, including those forked while
 * it runs, which a loop over cgroup.procs cannot promise. Waits until the kernel reports the
 * cgroup unpopulated.
 */
export function v2Kill(fs: CgroupFs, dir: string, timeoutMs = 10_000): void {
  // Empty already (a container whose processes all ended): one read instead of a write and a read.
  if (fs.exists(dir) && !v2Events(fs, dir).populated) return;
  try {
    writeValue(fs, dir, "cgroup.kill", "1");
  } catch (err) {
    // Removed meanwhile (its last process ended and its owner cleaned up): nothing to kill.
    if (!fs.exists(dir)) return;
    throw err;
  }
  if (!waitFor(() => !v2Events(fs, dir).populated, timeoutMs)) {
    throw new Error(`${dir} still has processes ${timeoutMs} ms after cgroup.kill`);
  }
}

/** Controllers enabled for the children of dir (its cgroup.subtree_control). */
export function subtreeControl(fs: CgroupFs, dir: string): string[] {
  return (readOptional(fs, dir, "cgroup.subtree_control") ?? "").split(/\s+/).filter(Boolean);
}

/**
 * Enables a controller for dir's children. The kernel answers EBUSY when dir (other than the root)
 * has processes of its own: a v2 controller goes only to cgroups whose processes all live in
 * leaves (the no-internal-processes rule).
 */
export function enableController(fs: CgroupFs, dir: string, controller: string): void {
  if (subtreeControl(fs, dir).includes(controller)) return;
  try {
    writeValue(fs, dir, "cgroup.subtree_control", `+${controller}`);
  } catch (err) {
    const code = (err as { cause?: NodeJS.ErrnoException }).cause?.code;
    if (code === "ENOENT") {
      throw new Error(`cannot enable the ${controller} controller in ${join(dir, "cgroup.subtree_control")}: it is not in ${join(dir, "cgroup.controllers")}, so the parent does not delegate it`, { cause: err });
    }
    if (code === "EBUSY") {
      throw new Error(
        `cannot enable the ${controller} controller in ${join(dir, "cgroup.subtree_control")}: ${dir} has processes of its own, and cgroup v2 gives controllers only to cgroups without them (no-internal-processes rule); move them to a child cgroup or choose another --cgroup-parent`,
        { cause: err },
      );
    }
    throw err;
  }
}
