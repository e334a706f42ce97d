import { existsSync, readFileSync, statSync } from "node:fs";
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
  /** cpuset.cpus and cpuset.mems: the CPUs and memory nodes the tasks may run on ("0-3,6"). */
  cpuset?: { cpus?: string; mems?: string };
  /** A soft memory limit in bytes, what the kernel reclaims toward under pressure (v1 memory.soft_limit_in_bytes, v2 memory.low). */
  memoryReservation?: number;
  /** v1 memory.swappiness, 0-100: how readily the cgroup's pages go to swap (cgroup v2 has no such file). */
  swappiness?: number;
  /** v1 memory.oom_control: at the limit, tasks wait instead of being killed (cgroup v2 has no such switch). */
  oomKillDisable?: boolean;
  /** Block I/O weights and throttles. */
  blockIO?: BlockIO;
}

/** A rate for one block device, as blkio.throttle.* and io.max take it. */
export interface DeviceRate {
  major: number;
  minor: number;
  rate: number;
}

export interface BlockIO {
  /** Relative weight 10-1000 (BFQ's, or CFQ's on old kernels; cgroup v2's io.weight scales it to 1-10000). */
  weight?: number;
  weightDevice?: { major: number; minor: number; weight: number }[];
  /** Bytes per second. */
  readBps?: DeviceRate[];
  writeBps?: DeviceRate[];
  /** I/O operations per second. */
  readIops?: DeviceRate[];
  writeIops?: DeviceRate[];
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

/**
 * The devices every container may use whatever its rules say, as runc (1.2.4 and later) appends
 * them: mknod of any node (opening it is what the rules guard), null, zero, full, random,
 * urandom and tty, the pty multiplexer and its slaves (a terminal's /dev/console is one of
 * those, not the host's console, 5:1), and tun/tap, which Docker has always allowed.
 */
export const DEFAULT_DEVICE_RULES: readonly DeviceRule[] = [
  { allow: true, type: "c", major: -1, minor: -1, access: "m" },
  { allow: true, type: "b", major: -1, minor: -1, access: "m" },
  ...[[1, 3], [1, 5], [1, 7], [1, 8], [1, 9], [5, 0], [5, 2]].map(([major, minor]): DeviceRule => ({ allow: true, type: "c", major: major!, minor: minor!, access: "rwm" })),
  { allow: true, type: "c", major: 136, minor: -1, access: "rwm" },
  { allow: true, type: "c", major: 10, minor: 200, access: "rwm" },
];

/**
 * Docker's device cgroup: every device denied but the defaults and the rules given (--device,
 * --device-cgroup-rule). Without it, container root (which keeps CAP_MKNOD, as in Docker) could
 * make a node for the host's disk and open it.
 */
export function dockerDeviceRules(allow: readonly DeviceRule[] = []): DeviceRule[] {
  return [{ allow: false, type: "a", major: -1, minor: -1, access: "rwm" }, ...allow, ...DEFAULT_DEVICE_RULES];
}

/** Docker's --device-cgroup-rule: "TYPE MAJOR:MINOR ACCESS", type a, b or c, * for any number, access of r, w and m. */
export function parseDeviceCgroupRule(text: string, option = "--device-cgroup-rule"): DeviceRule {
  const m = /^([abc]) (\d+|\*):(\d+|\*) ([rwm]{1,3})$/.exec(text.trim());
  if (!m || new Set(m[4]).size !== m[4]!.length) {
    throw new UsageError(`${option} "${text}": give TYPE MAJOR:MINOR ACCESS, such as "c 10:200 rwm" (type a, b or c; * for any number; access of r, w and m)`);
  }
  // The kernel's v1 devices.allow reads any rule of type a as "every device" whatever follows,
  // where the v2 filter would read numbers: only the one meaning both agree on is taken.
  if (m[1] === "a" && (m[2] !== "*" || m[3] !== "*" || m[4]!.length !== 3)) {
    throw new UsageError(`${option} "${text}": type a means every device: give "a *:* rwm", or a rule of type b or c`);
  }
  const n = (x: string) => (x === "*" ? -1 : Number(x));
  return { allow: true, type: m[1] as DeviceRule["type"], major: n(m[2]!), minor: n(m[3]!), access: m[4]! };
}

/** The limits as a user spells them (flag values); each field is optional. */
export interface LimitInput {
  memory?: string | number | undefined;
  cpu?: string | number | undefined;
  cpus?: string | number | undefined;
  pids?: string | number | undefined;
  memoryReservation?: string | undefined;
  memorySwap?: string | undefined;
  memorySwappiness?: string | undefined;
  oomKillDisable?: boolean | undefined;
  cpuShares?: string | undefined;
  cpusetCpus?: string | undefined;
  cpusetMems?: string | undefined;
  blkioWeight?: string | undefined;
  /** DEVICE:WEIGHT, repeatable. */
  blkioWeightDevice?: readonly string[] | undefined;
  /** DEVICE:RATE, repeatable: bytes per second (Docker sizes: 1mb), or operations per second. */
  deviceReadBps?: readonly string[] | undefined;
  deviceWriteBps?: readonly string[] | undefined;
  deviceReadIops?: readonly string[] | undefined;
  deviceWriteIops?: readonly string[] | undefined;
  /** Docker's device cgroup (dockerDeviceRules), with these rules allowed too ("c 10:200 rwm"). */
  dockerDevices?: boolean | undefined;
  /** Rules allowed on top of Docker's defaults; they imply dockerDevices. */
  deviceCgroupRules?: readonly string[] | undefined;
}

/** What parseLimits checks against: the host's CPUs, memory nodes and block devices. */
export interface LimitHost {
  cpuCount?: number;
  /** The host's online CPUs and memory nodes as lists ("0-1", "0"). */
  onlineCpus?: string;
  onlineMems?: string;
  /** A block device's numbers, or an error message naming what is wrong with the path. */
  blockDevice?: (path: string) => { major: number; minor: number } | string;
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

/**
 * A size: a Docker size with a unit (512m, 1g, 1.5G, 65536k, 100mb, 4096b), or a plain number in
 * `plain` units (MiB for corerun's memory options, bytes for a device rate as Docker reads it).
 */
function parseSize(value: string | number, option: string, plain: number): number {
  const text = String(value).trim();
  const m = /^(\d+(?:\.\d+)?)(?:([kmgt])(?:i?b)?|(b))?$/i.exec(text);
  if (!m) throw new UsageError(`${option} "${text}" is not a size; give ${plain === MiB ? "MiB (512)" : "bytes (1048576)"} or a Docker size (512m, 1g)`);
  const unit = m[3] ? UNITS.b! : m[2] ? UNITS[m[2].toLowerCase()]! : plain;
  const bytes = Math.floor(Number(m[1]) * unit);
  if (!Number.isSafeInteger(bytes)) throw new UsageError(`${option} "${text}" is too large`);
  return bytes;
}

/** A Docker size in bytes, plain numbers being bytes as Docker reads --shm-size; above 0. */
export function parseBytes(value: string, option: string): number {
  const bytes = parseSize(value, option, 1);
  if (bytes < 1) throw new UsageError(`${option} "${value.trim()}" is not above 0; give a size such as 64m`);
  return bytes;
}

/** Plain numbers are MiB (corerun's --memory 512); Docker sizes carry a unit: 512m, 1g, 1.5G, 65536k, 100mb. */
export function parseMemory(value: string | number, option = "--memory"): number {
  const bytes = parseSize(value, option, MiB);
  if (bytes < MEMORY_FLOOR) throw new UsageError(`${option} "${String(value).trim()}" is below the minimum of 6 MiB; give 6 or more (MiB), or a size such as 64m`);
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

/** Above any CPU or memory node number a kernel has (NR_CPUS is at most 8192): bounds a list's expansion. */
const MAX_ID = 65_535;

/** "0-2,4" -> [0, 1, 2, 4]; undefined when it is not such a list (or a range runs backwards). */
export function expandIdList(text: string): number[] | undefined {
  if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(text)) return undefined;
  const ids: number[] = [];
  for (const part of text.split(",")) {
    const [a, b = a] = part.split("-").map(Number) as [number, number?];
    if (b! < a || b! > MAX_ID) return undefined;
    for (let i = a; i <= b!; i++) ids.push(i);
  }
  return ids;
}

/** A cpuset list, each number one the host has online. */
function parseIdList(value: string, option: string, what: string, online: string): string {
  const text = value.trim();
  const ids = expandIdList(text);
  if (!ids) throw new UsageError(`${option} "${text}" is not a list of ${what}; give numbers and ascending ranges such as 0-2,4`);
  const have = new Set(expandIdList(online) ?? []);
  const missing = ids.filter((i) => !have.has(i));
  if (missing.length) throw new UsageError(`${option} "${text}": this host has no ${what} ${missing.join(",")}; it has ${online}`);
  return text;
}

function parseIntIn(value: string, option: string, min: number, max: number, what: string): number {
  const text = value.trim();
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) throw new UsageError(`${option} "${text}": give ${what}, an integer from ${min} to ${max}`);
  return Number(text);
}

/** DEVICE:VALUE, DEVICE the path of a whole block device on the host. */
type DeviceLookup = NonNullable<LimitHost["blockDevice"]>;

function parseDeviceValue(spec: string, option: string, lookup: DeviceLookup): { major: number; minor: number; value: string } {
  const at = spec.lastIndexOf(":");
  const path = spec.slice(0, Math.max(at, 0));
  if (at < 0 || !path.startsWith("/") || at === spec.length - 1) throw new UsageError(`${option} "${spec}": give DEVICE:VALUE with DEVICE a block device's path, such as /dev/sda:1mb`);
  const dev = lookup(path);
  if (typeof dev === "string") throw new UsageError(`${option} "${spec}": ${dev}`);
  return { ...dev, value: spec.slice(at + 1) };
}

function deviceRates(specs: readonly string[] | undefined, option: string, lookup: DeviceLookup, bytes: boolean): DeviceRate[] | undefined {
  if (!specs?.length) return undefined;
  return specs.map((spec) => {
    const { major, minor, value } = parseDeviceValue(spec, option, lookup);
    const rate = bytes ? parseSize(value, option, 1) : /^\d+$/.test(value) ? Number(value) : NaN;
    if (!(rate > 0) || !Number.isSafeInteger(rate)) throw new UsageError(`${option} "${spec}": give ${bytes ? "a rate in bytes per second above 0 (1048576, 1mb)" : "operations per second, an integer above 0"}`);
    return { major, minor, rate };
  });
}

/** A list file of /sys (online CPUs or memory nodes); a kernel without NUMA has no node directory: node 0 is all there is. */
function onlineList(path: string): string {
  try {
    return readFileSync(path, "utf8").trim() || "0";
  } catch {
    return "0";
  }
}

/** glibc's major() and minor() of a dev_t: major in bits 8-19 and 44-63, minor in bits 0-7 and 20-43. */
export function devNumbers(dev: number): { major: number; minor: number } {
  return { major: (Math.floor(dev / 256) & 0xfff) | (Math.floor(dev / 2 ** 32) & ~0xfff), minor: (dev & 0xff) | (Math.floor(dev / 4096) & ~0xff) };
}

/** A block device's numbers from its path on the host, or what is wrong with the path. */
export function blockDevice(path: string): { major: number; minor: number } | string {
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    return `cannot stat ${path} (${(err as NodeJS.ErrnoException).code})`;
  }
  if (!st.isBlockDevice()) return `${path} is not a block device`;
  const { major, minor } = devNumbers(st.rdev);
  // blk-throttle and the I/O schedulers take whole disks: the kernel answers EINVAL for a partition.
  if (existsSync(`/sys/dev/block/${major}:${minor}/partition`)) {
    return `${path} (${major}:${minor}) is a partition; the kernel weighs and throttles whole disks: give the disk it is on`;
  }
  return { major, minor };
}

/**
 * Validates the limit flags and converts them to kernel units. Throws a UsageError naming the flag
 * and the fix; nothing is touched, so callers run it before creating anything.
 */
export function parseLimits(input: LimitInput, opts: LimitHost = {}): Limits {
  const lookup = opts.blockDevice ?? blockDevice;
  const cpus = () => opts.cpuCount ?? cpuCount();
  const limits: Limits = {};
  if (input.memory !== undefined) limits.memory = parseMemory(input.memory);
  if (input.cpu !== undefined && input.cpus !== undefined) throw new UsageError("--cpu and --cpus set the same limit; give one of them");
  if (input.cpu !== undefined) limits.cpu = parseCpuPercent(input.cpu, "--cpu", cpus());
  if (input.cpus !== undefined) limits.cpu = parseCpuPercent(input.cpus, "--cpus", cpus());
  if (input.pids !== undefined) limits.pids = parsePids(input.pids);
  const mem = limits.memory === undefined ? undefined : formatBytes(limits.memory);
  if (input.memorySwap !== undefined) {
    const text = input.memorySwap.trim();
    // -1 (unlimited swap) is what a container without --memory has already, as in Docker.
    if (limits.memory === undefined && text !== "-1") throw new UsageError(`--memory-swap "${text}" is memory plus swap: give --memory too`);
    if (limits.memory !== undefined) limits.swap = text === "-1" ? -1 : parseMemory(text, "--memory-swap");
    if (limits.swap !== undefined && limits.swap !== -1 && limits.swap < limits.memory!) {
      throw new UsageError(`--memory-swap "${text}" is less than --memory (${mem}): it is memory plus swap; give at least the memory limit, or -1 for unlimited swap`);
    }
  }
  if (input.memoryReservation !== undefined) {
    limits.memoryReservation = parseMemory(input.memoryReservation, "--memory-reservation");
    if (limits.memory !== undefined && limits.memoryReservation > limits.memory) {
      throw new UsageError(`--memory-reservation "${input.memoryReservation.trim()}" is above --memory (${mem}): a soft limit above the hard one never acts; give at most the memory limit`);
    }
  }
  if (input.memorySwappiness !== undefined && input.memorySwappiness.trim() !== "-1") limits.swappiness = parseIntIn(input.memorySwappiness, "--memory-swappiness", 0, 100, "how readily pages go to swap (-1 for the host's default)");
  if (input.oomKillDisable) limits.oomKillDisable = true;
  // 0 is Docker's "the default" for a weight.
  if (input.cpuShares !== undefined && input.cpuShares.trim() !== "0") limits.cpuShares = parseIntIn(input.cpuShares, "--cpu-shares", 2, 262_144, "a relative CPU weight (1024 is the default; 0 for none)");
  if (input.cpusetCpus !== undefined || input.cpusetMems !== undefined) {
    limits.cpuset = {};
    if (input.cpusetCpus !== undefined) limits.cpuset.cpus = parseIdList(input.cpusetCpus, "--cpuset-cpus", "CPU", opts.onlineCpus ?? onlineList("/sys/devices/system/cpu/online"));
    if (input.cpusetMems !== undefined) limits.cpuset.mems = parseIdList(input.cpusetMems, "--cpuset-mems", "memory node", opts.onlineMems ?? onlineList("/sys/devices/system/node/online"));
  }
  const blockIO: BlockIO = {};
  if (input.blkioWeight !== undefined && input.blkioWeight.trim() !== "0") blockIO.weight = parseIntIn(input.blkioWeight, "--blkio-weight", 10, 1000, "a relative block I/O weight (0 for none)");
  if (input.blkioWeightDevice?.length) {
    blockIO.weightDevice = input.blkioWeightDevice.map((spec) => {
      const { major, minor, value } = parseDeviceValue(spec, "--blkio-weight-device", lookup);
      return { major, minor, weight: parseIntIn(value, `--blkio-weight-device "${spec}":`, 10, 1000, "a relative weight") };
    });
  }
  const rates = {
    readBps: deviceRates(input.deviceReadBps, "--device-read-bps", lookup, true),
    writeBps: deviceRates(input.deviceWriteBps, "--device-write-bps", lookup, true),
    readIops: deviceRates(input.deviceReadIops, "--device-read-iops", lookup, false),
    writeIops: deviceRates(input.deviceWriteIops, "--device-write-iops", lookup, false),
  };
  for (const [k, v] of Object.entries(rates)) if (v) blockIO[k as keyof typeof rates] = v;
  if (Object.keys(blockIO).length) limits.blockIO = blockIO;
  const rules = (input.deviceCgroupRules ?? []).map((r) => parseDeviceCgroupRule(r));
  if (input.dockerDevices || rules.length) limits.devices = dockerDeviceRules(rules);
  return limits;
}

/** The limits as one short phrase for logs and errors: "memory 64 MiB, cpu 50%, pids 20". */
export function describeLimits(limits: Limits): string {
  const parts: string[] = [];
  if (limits.memory !== undefined) parts.push(`memory ${formatBytes(limits.memory)}`);
  if (limits.cpu) parts.push(`cpu ${Number(((limits.cpu.quota / limits.cpu.period) * 100).toFixed(1))}%`);
  if (limits.pids !== undefined) parts.push(`pids ${limits.pids}`);
  if (limits.cpuShares !== undefined) parts.push(`cpu shares ${limits.cpuShares}`);
  if (limits.cpuset?.cpus !== undefined) parts.push(`cpus ${limits.cpuset.cpus}`);
  if (limits.cpuset?.mems !== undefined) parts.push(`memory nodes ${limits.cpuset.mems}`);
  if (limits.memoryReservation !== undefined) parts.push(`memory reservation ${formatBytes(limits.memoryReservation)}`);
  if (limits.swappiness !== undefined) parts.push(`swappiness ${limits.swappiness}`);
  if (limits.oomKillDisable) parts.push("OOM killer off");
  if (limits.blockIO) parts.push("block I/O limits");
  return parts.join(", ") || "no limits";
}

/**
 * A live cgroup's limits after an update: what the update names replaces what was; a cpuset
 * keeps the list it does not name, and a per-device weight or throttle changes that device's
 * rule only, as its file does (a rate of 0 lifts the throttle).
 */
export function mergeLimits(cur: Limits, next: Limits): Limits {
  const out: Limits = { ...cur, ...next };
  if (next.cpuset) out.cpuset = { ...cur.cpuset, ...next.cpuset };
  if (next.blockIO) {
    const was = cur.blockIO ?? {};
    const now = next.blockIO;
    const byDevice = <T extends { major: number; minor: number }>(a: T[] | undefined, b: T[] | undefined, keep: (x: T) => boolean): T[] | undefined => {
      if (!b) return a;
      const rules = new Map((a ?? []).map((x) => [`${x.major}:${x.minor}`, x]));
      for (const x of b) rules.set(`${x.major}:${x.minor}`, x);
      const list = [...rules.values()].filter(keep);
      return list.length ? list : undefined;
    };
    const io: BlockIO = {};
    const weight = now.weight ?? was.weight;
    if (weight !== undefined) io.weight = weight;
    const lists = {
      weightDevice: byDevice(was.weightDevice, now.weightDevice, () => true),
      readBps: byDevice(was.readBps, now.readBps, (r) => r.rate > 0),
      writeBps: byDevice(was.writeBps, now.writeBps, (r) => r.rate > 0),
      readIops: byDevice(was.readIops, now.readIops, (r) => r.rate > 0),
      writeIops: byDevice(was.writeIops, now.writeIops, (r) => r.rate > 0),
    };
    for (const [k, v] of Object.entries(lists)) if (v) Object.assign(io, { [k]: v });
    out.blockIO = io;
  }
  return out;
}
