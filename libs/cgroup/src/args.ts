/**
 * Docker's resource options beyond --memory, --cpus and --pids, as corerun run and corerun-cgroup
 * both take them, how their values become a LimitInput for parseLimits, and limits as
 * corerun-cgroup's words again (corerun run --print-script).
 */
import { readFileSync } from "node:fs";
import type { ArgsDef } from "citty";
import { DEFAULT_DEVICE_RULES, deviceRuleText, type LimitInput, type Limits } from "./limits.ts";

export const RESOURCE_ARGS = {
  "memory-reservation": { type: "string", valueHint: "SIZE", description: "soft memory limit, MiB (32) or a Docker size (32m): v1 reclaims toward it under pressure, v2 protects it (memory.low)" },
  "memory-swap": { type: "string", valueHint: "SIZE", description: "memory plus swap (with --memory; -1 for unlimited swap); without it swap does not extend --memory" },
  "memory-swappiness": { type: "string", valueHint: "0-100", description: "how readily the container's pages go to swap (cgroup v1; -1 for the host's)" },
  "oom-kill-disable": { type: "boolean", description: "at the memory limit, tasks wait instead of being killed by the OOM killer (cgroup v1)" },
  "cpu-shares": { type: "string", valueHint: "N", description: "relative CPU weight against other cgroups (default 1024; 2-262144)" },
  "cpuset-cpus": { type: "string", valueHint: "LIST", description: "the CPUs it may run on (0-2,4)" },
  "cpuset-mems": { type: "string", valueHint: "LIST", description: "the memory nodes it may allocate from (0)" },
  "blkio-weight": { type: "string", valueHint: "10-1000", description: "relative block I/O weight (needs the BFQ I/O scheduler, or iocost on cgroup v2; 0 for none)" },
  "blkio-weight-device": { type: "string", valueHint: "DEVICE:WEIGHT", description: "relative block I/O weight on one disk (repeatable)" },
  "device-read-bps": { type: "string", valueHint: "DEVICE:RATE", description: "limit reads from a disk to RATE bytes per second, 1mb, 10m (repeatable)" },
  "device-write-bps": { type: "string", valueHint: "DEVICE:RATE", description: "limit writes to a disk to RATE bytes per second (repeatable)" },
  "device-read-iops": { type: "string", valueHint: "DEVICE:N", description: "limit reads from a disk to N operations per second (repeatable)" },
  "device-write-iops": { type: "string", valueHint: "DEVICE:N", description: "limit writes to a disk to N operations per second (repeatable)" },
  "device-cgroup-rule": { type: "string", valueHint: "RULE", description: "allow a device beyond Docker's defaults in the device cgroup: \"TYPE MAJOR:MINOR ACCESS\", such as \"c 10:200 rwm\" (repeatable)" },
} as const satisfies ArgsDef;

/** The options' names, for a caller that refuses them all at once (a rootless run). */
export const RESOURCE_OPTIONS = Object.keys(RESOURCE_ARGS);

/**
 * A tool's parsed words (last value wins, repeatable ones all kept) as parseLimits' input: these
 * options and the tool's own --memory, --cpu, --cpus and --pids.
 */
export function resourceInput(values: Record<string, string[] | undefined>, flags: Record<string, boolean | undefined>): LimitInput {
  const last = (k: string) => values[k]?.at(-1);
  return {
    memory: last("memory"),
    cpu: last("cpu"),
    cpus: last("cpus"),
    pids: last("pids"),
    memoryReservation: last("memory-reservation"),
    memorySwap: last("memory-swap"),
    memorySwappiness: last("memory-swappiness"),
    oomKillDisable: flags["oom-kill-disable"],
    cpuShares: last("cpu-shares"),
    cpusetCpus: last("cpuset-cpus"),
    cpusetMems: last("cpuset-mems"),
    blkioWeight: last("blkio-weight"),
    blkioWeightDevice: values["blkio-weight-device"],
    deviceReadBps: values["device-read-bps"],
    deviceWriteBps: values["device-write-bps"],
    deviceReadIops: values["device-read-iops"],
    deviceWriteIops: values["device-write-iops"],
    dockerDevices: flags["docker-devices"],
    deviceCgroupRules: values["device-cgroup-rule"],
  };
}

/** A disk's path under /dev from its numbers (the kernel's DEVNAME), for a command line. */
export function devicePath(major: number, minor: number): string {
  try {
    const name = /^DEVNAME=(.+)$/m.exec(readFileSync(`/sys/dev/block/${major}:${minor}/uevent`, "utf8"))?.[1];
    if (name) return `/dev/${name}`;
  } catch {
    // fall through: the numbers alone name it in the error corerun-cgroup will print
  }
  return `/dev/block/${major}:${minor}`;
}

/** Limits as corerun-cgroup's options: the words that make the same cgroup again. */
export function limitArgv(l: Limits, path = devicePath): string[] {
  const words: string[] = [];
  const opt = (name: string, value: string | number | undefined) => {
    if (value !== undefined) words.push(`--${name}`, String(value));
  };
  opt("memory", l.memory === undefined ? undefined : `${l.memory}b`);
  opt("memory-swap", l.swap === undefined ? undefined : l.swap < 0 ? "-1" : `${l.swap}b`);
  opt("memory-reservation", l.memoryReservation === undefined ? undefined : `${l.memoryReservation}b`);
  opt("memory-swappiness", l.swappiness);
  if (l.oomKillDisable) words.push("--oom-kill-disable");
  opt("cpu", l.cpu && (l.cpu.quota / l.cpu.period) * 100);
  opt("cpu-shares", l.cpuShares);
  opt("pids", l.pids);
  opt("cpuset-cpus", l.cpuset?.cpus);
  opt("cpuset-mems", l.cpuset?.mems);
  const io = l.blockIO;
  opt("blkio-weight", io?.weight);
  for (const d of io?.weightDevice ?? []) opt("blkio-weight-device", `${path(d.major, d.minor)}:${d.weight}`);
  const rates = [["device-read-bps", io?.readBps], ["device-write-bps", io?.writeBps], ["device-read-iops", io?.readIops], ["device-write-iops", io?.writeIops]] as const;
  for (const [name, list] of rates) for (const r of list ?? []) opt(name, `${path(r.major, r.minor)}:${r.rate}`);
  if (l.devices) {
    // Docker's device cgroup (dockerDeviceRules): its defaults are corerun-cgroup's own.
    const defaults = new Set(DEFAULT_DEVICE_RULES.map(deviceRuleText));
    words.push("--docker-devices");
    for (const r of l.devices) if (r.allow && !defaults.has(deviceRuleText(r))) opt("device-cgroup-rule", deviceRuleText(r));
  }
  return words;
}
