import { UsageError } from "@corerun/cli";
import { cpuCount } from "@corerun/syscall";

const KiB = 1024;
const MiB = 1024 * KiB;

/** Limits in the kernel's units, validated. An absent field means "no limit". */
export interface Limits {
  /** memory.max / memory.limit_in_bytes, in bytes. */
  memory?: number;
  /** CPU bandwidth: quota microseconds of CPU time per period microseconds of wall time. */
  cpu?: { quota: number; period: number };
  /** pids.max: tasks (processes and threads) the cgroup may hold. */
  pids?: number;
  /**
   * Memory plus swap in bytes (the OCI and v1 memsw meaning), -1 for no swap limit. Absent: swap
   * does not extend the memory limit.
   */
  swap?: number;
  /** Relative CPU weight, in v1 cpu.shares units (2-262144; v2 converts to cpu.weight). */
  cpuShares?: number;
  /** Device access rules, in order: the v1 devices hierarchy's files, or cgroup v2's eBPF filter. */
  devices?: DeviceRule[];
}

/** One device cgroup rule: type a|b|c, -1 for any major or minor, access a subset of rwm. */
export interface DeviceRule {
  allow: boolean;
  type: "a" | "b" | "c";
  major: number;
  minor: number;
  access: string;
}

/** A rule as devices.allow and devices.deny take it: "c 1:3 rwm", "a *:* rwm". */
export function deviceRuleText(r: DeviceRule): string {
  const n = (x: number) => (x < 0 ? "*" : String(x));
  return `${r.type} ${n(r.major)}:${n(r.minor)} ${r.access}`;
}

/** The limits as a user spells them (flag values); each field is optional. */
export interface LimitInput {
  memory?: string | number | undefined;
  cpu?: string | number | undefined;
  cpus?: string | number | undefined;
  pids?: string | number | undefined;
}

/**
 * 6 MiB, Docker's minimum: below it the kernel's own per-cgroup charges (page tables, the
 * process's first pages) leave no room for a program to start.
 */
export const MEMORY_FLOOR = 6 * MiB;
/** The kernel's default CFS period, the one Docker's --cpus uses. */
export const CPU_PERIOD = 100_000;
/** The kernel refuses a quota below 1 ms: that is 1 % of one core at the default period. */
export const CPU_MIN_QUOTA = 1_000;
/** PID_MAX_LIMIT on 64-bit kernels: no pids.max above it can ever be reached. */
export const PIDS_CEILING = 4_194_304;

const UNITS: Record<string, number> = { b: 1, k: KiB, m: MiB, g: 1024 * MiB, t: 1024 * 1024 * MiB };

/** "64 MiB", "1.5 GiB", "512 KiB", "100 B" */
export function formatBytes(n: number): string {
  for (const [unit, size] of [["GiB", 1024 * MiB], ["MiB", MiB], ["KiB", KiB]] as const) {
    if (n >= size) return `${Number((n / size).toFixed(2))} ${unit}`;
  }
  return `${n} B`;
}

/** Plain numbers are MiB (corerun's --memory 512); Docker sizes carry a unit: 512m, 1g, 1.5G, 65536k, 100mb. */
export function parseMemory(value: string | number): number {
  const text = String(value).trim();
  const m = /^(\d+(?:\.\d+)?)(?:([kmgt])(?:i?b)?|(b))?$/i.exec(text);
  if (!m) throw new UsageError(`--memory "${text}" is not a size; give MiB (512) or a Docker size (512m, 1g)`);
  const unit = m[3] ? UNITS.b! : m[2] ? UNITS[m[2].toLowerCase()]! : MiB;
  const bytes = Math.floor(Number(m[1]) * unit);
  if (bytes < MEMORY_FLOOR) throw new UsageError(`--memory "${text}" is below the minimum of 6 MiB; give 6 or more (MiB), or a size such as 64m`);
  if (!Number.isSafeInteger(bytes)) throw new UsageError(`--memory "${text}" is too large`);
  return bytes;
}

/** Percent of one core: 50 is half a core, 150 one and a half cores. */
export function parseCpuPercent(value: string | number, option: "--cpu" | "--cpus", cpuCount: number): { quota: number; period: number } {
  const text = String(value).trim();
  const example = option === "--cpu" ? "50 for half a core, 200 for two cores" : "0.5 for half a core, 2 for two cores";
  if (!/^\d+(\.\d+)?$/.test(text)) throw new UsageError(`${option} "${text}" is not a number; give ${example}`);
  const percent = option === "--cpu" ? Number(text) : Number(text) * 100;
  const quota = Math.round((percent * CPU_PERIOD) / 100);
  if (quota < CPU_MIN_QUOTA) throw new UsageError(`${option} "${text}" is below the minimum of ${option === "--cpu" ? "1 (percent of one core)" : "0.01"}; give ${example}`);
  if (percent > cpuCount * 100) {
    const max = option === "--cpu" ? `${cpuCount * 100}` : `${cpuCount}`;
    throw new UsageError(`${option} "${text}" is more than the ${cpuCount} CPUs of this host can give; give at most ${max}`);
  }
  return { quota, period: CPU_PERIOD };
}

export function parsePids(value: string | number): number {
  const text = String(value).trim();
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new UsageError(`--pids "${text}" is not a positive integer; give the most tasks the cgroup may hold, e.g. 100`);
  if (Number(text) > PIDS_CEILING) throw new UsageError(`--pids "${text}" is above the kernel's ceiling of ${PIDS_CEILING}`);
  return Number(text);
}

/**
 * Validates the limit flags and converts them to kernel units. Throws a UsageError naming the flag
 * and the fix; nothing is touched, so callers run it before creating anything.
 */
export function parseLimits(input: LimitInput, opts: { cpuCount?: number } = {}): Limits {
  const cpus = () => opts.cpuCount ?? cpuCount();
  const limits: Limits = {};
  if (input.memory !== undefined) limits.memory = parseMemory(input.memory);
  if (input.cpu !== undefined && input.cpus !== undefined) throw new UsageError("--cpu and --cpus set the same limit; give one of them");
  if (input.cpu !== undefined) limits.cpu = parseCpuPercent(input.cpu, "--cpu", cpus());
  if (input.cpus !== undefined) limits.cpu = parseCpuPercent(input.cpus, "--cpus", cpus());
  if (input.pids !== undefined) limits.pids = parsePids(input.pids);
  return limits;
}

/** The limits as one short phrase for logs and errors: "memory 64 MiB, cpu 50%, pids 20". */
export function describeLimits(limits: Limits): string {
  const parts: string[] = [];
  if (limits.memory !== undefined) parts.push(`memory ${formatBytes(limits.memory)}`);
  if (limits.cpu) parts.push(`cpu ${Number(((limits.cpu.quota / limits.cpu.period) * 100).toFixed(1))}%`);
  if (limits.pids !== undefined) parts.push(`pids ${limits.pids}`);
  if (limits.cpuShares !== undefined) parts.push(`cpu shares ${limits.cpuShares}`);
  return parts.join(", ") || "no limits";
}
