/**
 * What corerun's steps take from a config.json: namespaces as clone flags and paths to join,
 * capabilities as numbers, resources as cgroup limits, the cgroup's place. Pure: every refusal
 * happens here, before anything is created.
 */
import { posix } from "node:path";
import { UsageError } from "@corerun/cli";
import { CAPABILITIES } from "@corerun/syscall";
import { DEFAULT_DEVICE_RULES, expandIdList, type BlockIO, type DeviceRule, type Limits } from "@corerun/cgroup";
import { planMount, type MountPlan } from "./mounts.ts";
import type { NamespaceType, Resources, Spec } from "./spec.ts";

export interface NamespacePlan {
  /** Namespaces created new for the container. */
  create: NamespaceType[];
  /** Namespaces joined by path (e.g. a netns made by CNI, a pod's /proc/PID/ns/ipc). */
  join: { type: NamespaceType; path: string }[];
}

export function planNamespaces(spec: Spec): NamespacePlan {
  const create: NamespaceType[] = [];
  const join: NamespacePlan["join"] = [];
  const seen = new Set<string>();
  for (const [i, ns] of (spec.linux?.namespaces ?? []).entries()) {
    if (seen.has(ns.type)) throw new Error(`linux.namespaces[${i}]: the ${ns.type} namespace is listed twice`);
    seen.add(ns.type);
    if (ns.path) {
      if (!ns.path.startsWith("/")) throw new Error(`linux.namespaces[${i}]: path "${ns.path}" must be absolute`);
      if (ns.type === "mount") {
        // pivot_root would move the root of every process sharing that namespace, not only ours.
        throw new Error(`linux.namespaces[${i}]: joining an existing mount namespace by path is not supported by corerun (it builds the root with pivot_root, which would move every other process's root there); let it create a new one`);
      }
      join.push({ type: ns.type, path: ns.path });
    } else {
      create.push(ns.type);
    }
  }
  if (!create.includes("mount")) throw new Error("linux.namespaces: corerun needs a new mount namespace (add {\"type\": \"mount\"}) to build the container's root");
  const maps = (spec.linux?.uidMappings?.length ?? 0) + (spec.linux?.gidMappings?.length ?? 0);
  const joinsUser = join.some((j) => j.type === "user");
  // A joined namespace's mappings are checked against the kernel's once the process is in it.
  if (create.includes("user") && !spec.linux?.uidMappings?.length) throw new Error("linux.uidMappings: a new user namespace needs uid and gid mappings");
  if (joinsUser && !spec.linux?.uidMappings?.length) throw new Error("linux.uidMappings: a user namespace joined by path needs its uid and gid mappings, as the engine knows them");
  if (!create.includes("user") && !joinsUser && maps) throw new Error("linux.uidMappings: mappings need a user namespace in linux.namespaces");
  return { create, join };
}

/** The IPC sysctls runc and Docker take with an IPC namespace (fs.mqueue.* too). */
const IPC_SYSCTLS = new Set(["kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"]);

/**
 * The namespace a sysctl belongs to, as runc's validator (and Docker's --sysctl) decides it, or
 * a reason it cannot be set for one container. Sysctls are written as root from inside the
 * container, where a namespace it does not have of its own (or a global sysctl such as
 * kernel.core_pattern) is the host's. Names take dots or slashes (kernel/shmmax).
 */
export function sysctlNamespace(key: string): { ns: "ipc" | "network" | "uts" } | { refused: string } {
  const name = key.replaceAll("/", ".");
  if (!/^[A-Za-z0-9_.-]+$/.test(name) || name.split(".").some((part) => part === "" || part === "..")) return { refused: "not a sysctl name (such as net.ipv4.ip_forward)" };
  if (name === "kernel.hostname") return { refused: "the hostname: give the hostname field (config.json) or --hostname instead" };
  if (IPC_SYSCTLS.has(name) || name.startsWith("fs.mqueue.")) return { ns: "ipc" };
  if (name.startsWith("net.")) return { ns: "network" };
  if (name === "kernel.domainname") return { ns: "uts" };
  return { refused: "not a sysctl of a namespace the container can have of its own; it would be set for the whole host" };
}

export interface Sysctl {
  key: string;
  value: string;
  ns: "ipc" | "network" | "uts";
}

/** --sysctl KEY=VALUE (corerun run, corerun-exec), as Docker takes it: a namespaced sysctl only. */
export function parseSysctl(text: string, option = "--sysctl"): Sysctl {
  const eq = text.indexOf("=");
  if (eq <= 0) throw new UsageError(`${option} ${text}: give KEY=VALUE, such as net.ipv4.ip_unprivileged_port_start=0`);
  const key = text.slice(0, eq);
  const kind = sysctlNamespace(key);
  if ("refused" in kind) throw new UsageError(`${option} ${text}: ${key} is ${kind.refused}`);
  return { key, value: text.slice(eq + 1), ns: kind.ns };
}

/**
 * hostname, domainname and linux.sysctl against the namespaces, as runc's validator checks them
 * (see sysctlNamespace); isOwn says whether a namespace to join is the runtime's own.
 */
export function checkKernelSettings(spec: Spec, ns: NamespacePlan, isOwn: (type: NamespaceType, path: string) => boolean = () => false): void {
  // A joined namespace that is the runtime's own (the host's, runc's isHostNetNS) is no container's.
  const has = (t: NamespaceType) => ns.create.includes(t) || ns.join.some((j) => j.type === t && !isOwn(t, j.path));
  for (const field of ["hostname", "domainname"] as const) {
    if (spec[field] && !has("uts")) throw new Error(`${field} "${spec[field]}": needs a uts namespace in linux.namespaces; without one it would be the host's`);
  }
  for (const key of Object.keys(spec.linux?.sysctl ?? {})) {
    const kind = sysctlNamespace(key);
    if ("refused" in kind) throw new Error(`linux.sysctl ${key}: ${kind.refused}`);
    if (!has(kind.ns)) throw new Error(`linux.sysctl ${key}: needs a ${kind.ns} namespace in linux.namespaces; without one it would be set for the whole host`);
  }
}

export interface CapabilityPlan {
  bounding: number[];
  effective: number[];
  permitted: number[];
  inheritable: number[];
  ambient: number[];
}

function capNumbers(names: readonly string[] | undefined, set: string): number[] {
  return [...new Set((names ?? []).map((name) => {
    const n = CAPABILITIES[name.replace(/^CAP_/, "")];
    if (n === undefined || !name.startsWith("CAP_")) throw new Error(`process.capabilities.${set}: unknown capability "${name}"; names look like CAP_NET_ADMIN`);
    return n;
  }))].sort((a, b) => a - b);
}

export function planCapabilities(spec: Spec): CapabilityPlan {
  const c = spec.process?.capabilities;
  return {
    bounding: capNumbers(c?.bounding, "bounding"),
    effective: capNumbers(c?.effective, "effective"),
    permitted: capNumbers(c?.permitted, "permitted"),
    inheritable: capNumbers(c?.inheritable, "inheritable"),
    ambient: capNumbers(c?.ambient, "ambient"),
  };
}

/** Where the container's cgroup goes: PARENT/NAME below each hierarchy's root. */
export function planCgroupPath(spec: Spec, id: string): { parent: string; name: string } {
  const path = spec.linux?.cgroupsPath;
  if (path === undefined || path === "") return { parent: "corerun", name: id };
  if (path.includes(":")) {
    throw new Error(`linux.cgroupsPath "${path}" is a systemd slice:prefix:name path; corerun manages cgroups itself (cgroupfs): give a path such as /corerun/${id} (podman: --cgroup-manager=cgroupfs)`);
  }
  const parts = posix.normalize(path).split("/").filter(Boolean);
  if (parts.length < 2 || parts.includes("..")) throw new Error(`linux.cgroupsPath "${path}": give PARENT/NAME below the cgroup root, such as /corerun/${id}`);
  return { parent: parts.slice(0, -1).join("/"), name: parts.at(-1)! };
}

/** linux.resources as corerun's limits; what corerun cannot apply is refused by name. */
export function planLimits(resources: Resources | undefined): Limits {
  const limits: Limits = {};
  const mem = resources?.memory;
  if (mem) {
    if (mem.limit !== undefined && mem.limit > 0) limits.memory = mem.limit;
    if (mem.swap !== undefined && mem.swap !== 0) {
      if (mem.swap !== -1 && limits.memory !== undefined && mem.swap < limits.memory) {
        throw new Error(`linux.resources.memory.swap (${mem.swap}) is memory plus swap and must be at least memory.limit (${limits.memory}), or -1 for no limit`);
      }
      if (limits.memory === undefined && mem.swap !== -1) throw new Error("linux.resources.memory.swap needs memory.limit");
      limits.swap = mem.swap;
    }
    if (mem.reservation !== undefined && mem.reservation > 0) limits.memoryReservation = mem.reservation;
    // runc's reading: absent or -1 leaves the host's value; an engine that sends -1 as the uint64
    // the spec says (moby) sends 2^64-1.
    if (mem.swappiness !== undefined && mem.swappiness !== null && mem.swappiness !== -1 && mem.swappiness < 2 ** 63) {
      if (mem.swappiness < 0 || mem.swappiness > 100) throw new Error(`linux.resources.memory.swappiness ${mem.swappiness}: give 0 to 100`);
      limits.swappiness = mem.swappiness;
    }
    if (mem.disableOOMKiller) limits.oomKillDisable = true;
  }
  const cpu = resources?.cpu;
  if (cpu) {
    if (cpu.quota !== undefined && cpu.quota > 0) limits.cpu = { quota: cpu.quota, period: cpu.period && cpu.period > 0 ? cpu.period : 100_000 };
    if (cpu.shares !== undefined && cpu.shares !== 0) {
      if (cpu.shares < 2 || cpu.shares > 262144) throw new Error(`linux.resources.cpu.shares ${cpu.shares}: give a value from 2 to 262144`);
      limits.cpuShares = cpu.shares;
    }
    for (const key of ["cpus", "mems"] as const) {
      const list = cpu[key];
      if (!list) continue;
      if (!expandIdList(list)) throw new Error(`linux.resources.cpu.${key} "${list}" is not a list such as 0-2,4`);
      limits.cpuset = { ...limits.cpuset, [key]: list };
    }
  }
  const io = resources?.blockIO;
  if (io) {
    if (io.leafWeight || io.weightDevice?.some((d) => d.leafWeight)) throw new Error("linux.resources.blockIO leafWeight is CFQ's, which Linux 5.0 removed: remove it");
    const blockIO: BlockIO = {};
    const checked = (w: number, what: string) => {
      if (w < 10 || w > 1000) throw new Error(`linux.resources.blockIO.${what} ${w}: give 10 to 1000`);
      return w;
    };
    if (io.weight) blockIO.weight = checked(io.weight, "weight");
    const weights = io.weightDevice?.filter((d) => d.weight).map((d) => ({ major: d.major, minor: d.minor, weight: checked(d.weight!, "weightDevice weight") }));
    if (weights?.length) blockIO.weightDevice = weights;
    const rates = { readBps: io.throttleReadBpsDevice, writeBps: io.throttleWriteBpsDevice, readIops: io.throttleReadIOPSDevice, writeIops: io.throttleWriteIOPSDevice };
    for (const [key, list] of Object.entries(rates)) if (list?.length) blockIO[key as keyof typeof rates] = list.map((d) => ({ major: d.major, minor: d.minor, rate: d.rate }));
    if (Object.keys(blockIO).length) limits.blockIO = blockIO;
  }
  const pids = resources?.pids?.limit;
  if (pids !== undefined && pids > 0) limits.pids = pids;
  // The config's rules, then runc's defaults. linux.devices only makes nodes: what the container
  // may do with them is the rules' to say (a device given read-only, "access": "r", stays so).
  if (resources?.devices?.length) {
    const rules = resources.devices.map((d): DeviceRule => ({ allow: d.allow, type: d.type ?? ("a" as const), major: d.major ?? -1, minor: d.minor ?? -1, access: d.access ?? "rwm" }));
    limits.devices = [...rules, ...DEFAULT_DEVICE_RULES];
  }
  return limits;
}

/** Every mount of the config, checked, in order. */
export function planMounts(spec: Spec): MountPlan[] {
  return (spec.mounts ?? []).map((m, i) => planMount(m, `mounts[${i}]`));
}

/** The container's root directory: root.path, relative to the bundle or absolute. */
export function rootPath(spec: Spec, bundle: string): string {
  if (!spec.root) throw new Error("root: config.json needs root.path, the container's root filesystem");
  return posix.resolve(bundle, spec.root.path);
}
