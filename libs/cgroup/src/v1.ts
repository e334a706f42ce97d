/**
 * cgroup v1: one directory per hierarchy (memory, cpu, cpuacct, pids, freezer), each with its own
 * controller's files.
 */
import { join } from "node:path";
import type { CgroupFs } from "./fs.ts";
import { waitFor } from "./fs.ts";
import { readNumber, readOptional, writeValue } from "./files.ts";
import type { ControllerUnit } from "./v2.ts";
import { deviceRuleText, expandIdList } from "./limits.ts";

export const v1Memory: ControllerUnit = {
  apply(fs, dir, limits) {
    if (limits.memoryReservation !== undefined) writeValue(fs, dir, "memory.soft_limit_in_bytes", String(limits.memoryReservation));
    if (limits.swappiness !== undefined) writeValue(fs, dir, "memory.swappiness", String(limits.swappiness));
    if (limits.oomKillDisable !== undefined) writeValue(fs, dir, "memory.oom_control", limits.oomKillDisable ? "1" : "0");
    if (limits.memory === undefined) return;
    const value = String(limits.memory);
    const memsw = limits.swap === undefined ? value : String(limits.swap);
    // memsw (memory + swap) exists when the kernel accounts swap; set equal to the memory limit, so
    // swap does not extend it. The kernel keeps memsw >= memory at every step: raise memsw first
    // when raising, lower it last when lowering.
    const hasMemsw = fs.exists(join(dir, "memory.memsw.limit_in_bytes"));
    const current = readNumber(fs, dir, "memory.limit_in_bytes") ?? Infinity;
    // Unlimited swap (-1) is what a kernel that does not account swap gives anyway.
    if (!hasMemsw && limits.swap !== undefined && limits.swap !== -1) throw new Error(`a swap limit needs ${join(dir, "memory.memsw.limit_in_bytes")}, which this kernel lacks (swap accounting is off)`);
    if (hasMemsw && limits.memory > current) writeValue(fs, dir, "memory.memsw.limit_in_bytes", memsw);
    writeValue(fs, dir, "memory.limit_in_bytes", value);
    if (hasMemsw && limits.memory <= current) writeValue(fs, dir, "memory.memsw.limit_in_bytes", memsw);
  },
  stats(fs, dir, out) {
    out.memory.current = readNumber(fs, dir, "memory.usage_in_bytes");
    out.memory.peak = readNumber(fs, dir, "memory.max_usage_in_bytes");
    out.memory.limit = readNumber(fs, dir, "memory.limit_in_bytes");
  },
};

export const v1Cpu: ControllerUnit = {
  apply(fs, dir, limits) {
    if (limits.cpuShares !== undefined) writeValue(fs, dir, "cpu.shares", String(limits.cpuShares));
    if (!limits.cpu) return;
    writeValue(fs, dir, "cpu.cfs_period_us", String(limits.cpu.period));
    writeValue(fs, dir, "cpu.cfs_quota_us", String(limits.cpu.quota));
  },
  stats(fs, dir, out) {
    const quota = Number(readOptional(fs, dir, "cpu.cfs_quota_us")?.trim() ?? "-1");
    const period = readNumber(fs, dir, "cpu.cfs_period_us");
    out.cpu.limitPercent = quota > 0 && period ? (quota / period) * 100 : null;
  },
};

export const v1Pids: ControllerUnit = {
  apply(fs, dir, limits) {
    if (limits.pids !== undefined) writeValue(fs, dir, "pids.max", String(limits.pids));
  },
  stats(fs, dir, out) {
    out.pids.current = readNumber(fs, dir, "pids.current");
    out.pids.limit = readNumber(fs, dir, "pids.max");
  },
};

/**
 * The device cgroup: everything denied first, then the rules in order, as runc writes them. A
 * child starts with its parent's list, so the leading deny is what makes the rules the whole list.
 */
export const v1Devices: ControllerUnit = {
  apply(fs, dir, limits) {
    if (!limits.devices) return;
    writeValue(fs, dir, "devices.deny", "a");
    for (const r of limits.devices) writeValue(fs, dir, r.allow ? "devices.allow" : "devices.deny", deviceRuleText(r));
  },
  stats() {},
};

/**
 * cpuset.cpus and cpuset.mems: the same files in v1 and v2. A list outside the parent's is
 * refused first: v1 answers EINVAL, and v2 takes it but runs the tasks on the parent's CPUs.
 */
export const cpusetUnit: ControllerUnit = {
  apply(fs, dir, limits) {
    for (const [key, file, what] of [["cpus", "cpuset.cpus", "CPUs"], ["mems", "cpuset.mems", "memory nodes"]] as const) {
      const list = limits.cpuset?.[key];
      if (list === undefined) continue;
      const parent = join(dir, "..");
      const effective = (readOptional(fs, parent, `cpuset.effective_${key}`) ?? readOptional(fs, parent, `${file}.effective`))?.trim();
      const have = new Set(expandIdList(effective ?? "") ?? []);
      const outside = effective === undefined ? [] : (expandIdList(list) ?? []).filter((i) => !have.has(i));
      if (outside.length) throw new Error(`cpuset ${key} "${list}": the parent cgroup ${parent} has ${what} ${effective || "none"} only, not ${outside.join(",")}`);
      writeValue(fs, dir, file, list);
    }
  },
  stats() {},
};

/**
 * A new v1 cpuset starts with empty cpuset.cpus and cpuset.mems, and the kernel refuses a task
 * into it (ENOSPC) until both are set: it gets its parent's, as runc copies them, unless the
 * parent's cgroup.clone_children had the kernel copy them as it made the directory.
 */
export function initV1Cpuset(fs: CgroupFs, dir: string): void {
  for (const file of ["cpuset.cpus", "cpuset.mems"]) {
    if (readOptional(fs, dir, file)?.trim()) continue;
    const parent = readOptional(fs, join(dir, ".."), file)?.trim();
    if (!parent) throw new Error(`cannot set ${join(dir, file)}: its parent's ${file} is empty`);
    writeValue(fs, dir, file, parent);
  }
}

/**
 * A parent level corerun has just made: its parent's CPUs and nodes, and cgroup.clone_children,
 * so that the kernel gives each container's directory the parent's as it makes it (a start then
 * reads two files instead of reading four and writing two).
 */
export function initV1CpusetParent(fs: CgroupFs, dir: string): void {
  initV1Cpuset(fs, dir);
  writeValue(fs, dir, "cgroup.clone_children", "1");
}

/**
 * A weight goes to BFQ's file where the disk's scheduler is BFQ, else to CFQ's (kernels before
 * 5.0); with neither scheduler there is nothing that weighs I/O, and the weight is refused.
 */
function weightFile(fs: CgroupFs, dir: string, files: readonly string[], what: string): string {
  const file = files.find((f) => fs.exists(join(dir, f)));
  if (!file) throw new Error(`${what} needs ${files.map((f) => join(dir, f)).join(" or ")}, which this kernel lacks: the BFQ I/O scheduler is not loaded (modprobe bfq; echo bfq > /sys/block/DISK/queue/scheduler)`);
  return file;
}

export const v1Blkio: ControllerUnit = {
  apply(fs, dir, limits) {
    const io = limits.blockIO;
    if (!io) return;
    if (io.weight !== undefined) writeValue(fs, dir, weightFile(fs, dir, ["blkio.bfq.weight", "blkio.weight"], "a block I/O weight"), String(io.weight));
    for (const d of io.weightDevice ?? []) writeValue(fs, dir, weightFile(fs, dir, ["blkio.bfq.weight_device", "blkio.weight_device"], "a block I/O weight per device"), `${d.major}:${d.minor} ${d.weight}`);
    const throttle = [["read_bps_device", io.readBps], ["write_bps_device", io.writeBps], ["read_iops_device", io.readIops], ["write_iops_device", io.writeIops]] as const;
    for (const [file, rates] of throttle) for (const r of rates ?? []) writeValue(fs, dir, `blkio.throttle.${file}`, `${r.major}:${r.minor} ${r.rate}`);
  },
  stats(fs, dir, out) {
    // "MAJ:MIN Read N" lines per device, then "Total N"; the throttle file counts every I/O, whichever the scheduler.
    const text = readOptional(fs, dir, "blkio.throttle.io_service_bytes_recursive");
    if (text === undefined) return;
    out.blockIO = { readBytes: 0, writeBytes: 0 };
    for (const line of text.split("\n")) {
      const [dev, op, n] = line.trim().split(/\s+/);
      if (!dev?.includes(":") || n === undefined) continue;
      if (op === "Read") out.blockIO.readBytes += Number(n);
      if (op === "Write") out.blockIO.writeBytes += Number(n);
    }
  },
};

export const V1_UNITS = { memory: v1Memory, cpu: v1Cpu, pids: v1Pids, devices: v1Devices, cpuset: cpusetUnit, io: v1Blkio } as const;

/** cpuacct.usage is in nanoseconds. */
export function v1CpuUsage(fs: CgroupFs, dir: string): number | null {
  const ns = readNumber(fs, dir, "cpuacct.usage");
  return ns === null ? null : Math.round(ns / 1000);
}

/**
 * freezer.state goes FREEZING -> FROZEN once every task has stopped; wait for the final state so
 * that a kill loop that follows sees a process list that cannot grow.
 */
export function v1Freeze(fs: CgroupFs, dir: string, frozen: boolean, timeoutMs = 2_000): void {
  const want = frozen ? "FROZEN" : "THAWED";
  writeValue(fs, dir, "freezer.state", want);
  if (!waitFor(() => readOptional(fs, dir, "freezer.state")?.trim() === want, timeoutMs)) {
    throw new Error(`${join(dir, "freezer.state")} did not become ${want} within ${timeoutMs} ms`);
  }
}
