import { join } from "node:path";
import { UsageError } from "@corerun/cli";
import { discoverLayout, type CgroupLayout, type LayoutOptions } from "./detect.ts";
import { errnoOf, nodeCgroupFs, waitFor, type CgroupFs } from "./fs.ts";
import { readKeyed, readPids, writeValue } from "./files.ts";
import { attachDeviceFilter } from "./devicefilter.ts";
import { formatBytes, type DeviceRule, type Limits } from "./limits.ts";
import { emptyStats, type CgroupStats } from "./stats.ts";
import { initV1Cpuset, initV1CpusetParent, v1CpuUsage, v1Freeze, V1_UNITS } from "./v1.ts";
import { enableController, v2CanKill, v2CpuUsage, v2Freeze, v2Kill, V2_UNITS } from "./v2.ts";

export const DEFAULT_PARENT = "corerun";

/** The controllers a limit can need; "io" is cgroup v1's "blkio". */
export type LimitController = "memory" | "cpu" | "pids" | "devices" | "cpuset" | "io";
const LIMIT_CONTROLLERS: readonly LimitController[] = ["memory", "cpu", "pids", "devices", "cpuset", "io"];
const V1_NAME: Record<LimitController, string> = { memory: "memory", cpu: "cpu", pids: "pids", devices: "devices", cpuset: "cpuset", io: "blkio" };

/** One directory of the cgroup: in the v2 hierarchy, or in one v1 hierarchy. */
interface CgroupDir {
  kind: "v1" | "v2";
  /** Mount point of the hierarchy. */
  mount: string;
  path: string;
  /** v1: controllers of this hierarchy the cgroup uses; v2: controllers it gets enabled. */
  controllers: string[];
}

/**
 * One container's cgroup across every hierarchy the host has. On a hybrid host a v2 directory
 * holds the process for cgroup.kill, cgroup.freeze and cgroup.events, and each limit goes to
 * whichever hierarchy carries its controller.
 */
export interface CgroupManager {
  readonly name: string;
  readonly parent: string;
  readonly layout: CgroupLayout;
  /** Hierarchy -> directory, as runc's GetPaths: "" for v2, the controller name for v1. */
  paths(): Record<string, string>;
  /** The distinct directories: what a process writes "0" to (cgroup.procs) to join. */
  dirs(): string[];
  exists(): boolean;
  /**
   * Creates the cgroup in every hierarchy and applies limits; on failure removes what it made.
   * later: limits to apply() afterwards, whose controllers must be there now all the same.
   */
  create(limits?: Limits, later?: Limits): Record<string, string>;
  apply(limits: Limits): void;
  addTask(pid: number): void;
  pids(): number[];
  stats(): CgroupStats;
  /** The OOM killer's kills in the cgroup (what stats() reports as oomKills), read alone. */
  oomKills(): number | null;
  freeze(): void;
  thaw(): void;
  /** SIGKILLs every process and waits until the cgroup is empty. */
  killAll(): void;
  /** rmdir in every hierarchy; waits briefly while the kernel finishes tearing down killed tasks. */
  remove(): void;
}

export interface CgroupOptions extends LayoutOptions {
  name: string;
  /** Path of the parent below each hierarchy's root (default "corerun"). */
  parent?: string;
  /** The host's layout, when already discovered (or made up for a test). */
  layout?: CgroupLayout;
  /**
   * Device rules will be applied: the cgroup goes into the v1 devices hierarchy where the host
   * mounts one, else its v2 directory gets an eBPF device filter.
   */
  devices?: boolean;
  /** Loads and attaches the v2 device filter (the kernel's; unit tests record the call). */
  attachDeviceFilter?: (dir: string, rules: readonly DeviceRule[]) => void;
  /**
   * An existing cgroup's directories as its state recorded them: only those are used, so that a
   * cgroup made in fewer hierarchies is joined, limited and removed where it is.
   */
  paths?: Record<string, string>;
  /**
   * The v1 cpuset and devices hierarchies in every case, as runc places a container (an engine's
   * update may limit it later), or else only for a cpuset limit and device rules. Each v1 hierarchy is one more migration when
   * the process joins, which holds the kernel's cgroup_threadgroup_rwsem for writing: forks and
   * exits on the host wait meanwhile, on a start's critical path.
   */
  everyHierarchy?: boolean;
  /** The limits the cgroup is made for, which decide the optional hierarchies without everyHierarchy. */
  limits?: Limits;
}

/** The controllers limits need. */
export function controllersFor(limits: Limits): LimitController[] {
  const need: LimitController[] = [];
  if (limits.memory !== undefined || limits.memoryReservation !== undefined || limits.swappiness !== undefined || limits.oomKillDisable !== undefined) need.push("memory");
  if (limits.cpu || limits.cpuShares !== undefined) need.push("cpu");
  if (limits.devices) need.push("devices");
  if (limits.pids !== undefined) need.push("pids");
  if (limits.cpuset) need.push("cpuset");
  if (limits.blockIO) need.push("io");
  return need;
}

/**
 * v1 hierarchies a container joins only when asked to or when its limits need them: cpuset,
 * which holds no usage numbers. blkio is joined in every case, for the block I/O that stats show.
 */
const OPTIONAL_V1: readonly LimitController[] = ["cpuset"];

const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export function validateName(name: string): string {
  if (!SEGMENT.test(name)) throw new UsageError(`cgroup name "${name}" is not valid; use letters, digits, ".", "_" and "-", starting with a letter or digit`);
  return name;
}

/** "corerun", "/corerun", "a/b/" -> "corerun", "corerun", "a/b"; no "..", nothing absolute outside root. */
export function normalizeParent(parent: string): string {
  const parts = parent.split("/").filter(Boolean);
  if (!parts.length || parts.some((p) => !SEGMENT.test(p))) {
    throw new UsageError(`--cgroup-parent "${parent}" is not valid; give a path below the cgroup root such as corerun or corerun/web`);
  }
  return parts.join("/");
}

const TEARDOWN_MS = 2_000;
// An upper bound, reached only on a loaded machine: a killed process with a large heap can take
// seconds to exit there.
const KILL_WAIT_MS = 10_000;

class Manager implements CgroupManager {
  readonly name: string;
  readonly parent: string;
  readonly layout: CgroupLayout;
  private readonly fs: CgroupFs;
  private readonly v2: CgroupDir | undefined;
  private v1: CgroupDir[] = [];
  private readonly route: Partial<Record<LimitController, CgroupDir>> = {};
  private readonly cpuacct: CgroupDir | undefined;
  private readonly freezer: CgroupDir | undefined;
  private readonly attachDeviceFilter: (dir: string, rules: readonly DeviceRule[]) => void;

  constructor(opts: CgroupOptions) {
    this.name = validateName(opts.name);
    this.parent = normalizeParent(opts.parent ?? DEFAULT_PARENT);
    this.fs = opts.fs ?? nodeCgroupFs;
    this.attachDeviceFilter = opts.attachDeviceFilter ?? attachDeviceFilter;
    this.layout = opts.layout ?? discoverLayout(opts);
    const { unified, v2Controllers, v1 } = this.layout;
    const at = (mount: string) => join(mount, this.parent, this.name);
    this.v2 = unified ? { kind: "v2", mount: unified, path: at(unified), controllers: [] } : undefined;
    const v1Dir = (controller: string): CgroupDir | undefined => {
      const mount = v1[controller];
      if (!mount) return undefined;
      let dir = this.v1.find((d) => d.mount === mount);
      if (!dir) this.v1.push((dir = { kind: "v1", mount, path: at(mount), controllers: [] }));
      dir.controllers.push(controller);
      return dir;
    };
    // Per controller: the v2 hierarchy when it offers it, else the v1 hierarchy that mounts it.
    for (const c of LIMIT_CONTROLLERS) {
      if (c === "devices") {
        // A recorded cgroup is in the devices hierarchy if its paths say so (dropped below if not).
        if (!opts.devices && !opts.everyHierarchy && !opts.limits?.devices && !opts.paths) continue;
        // cgroup v2 has no devices files: where no v1 hierarchy takes the rules, an eBPF filter
        // on the v2 directory does (no controller to enable for it).
        const d = v1Dir(c) ?? this.v2;
        if (d) this.route[c] = d;
        continue;
      }
      if (this.v2 && v2Controllers.includes(c)) {
        this.v2.controllers.push(c);
        this.route[c] = this.v2;
      } else {
        // With recorded paths every hierarchy is considered, then those not recorded are dropped.
        if (OPTIONAL_V1.includes(c) && !opts.everyHierarchy && !opts.paths && !controllersFor(opts.limits ?? {}).includes(c)) continue;
        const d = v1Dir(V1_NAME[c]);
        if (d) this.route[c] = d;
      }
    }
    // With a v2 directory, CPU time (cpu.stat) and freezing (cgroup.freeze) are core v2 files;
    // only a pure v1 host needs the freezer hierarchy for them. The container goes into a v1
    // cpuacct hierarchy all the same where the host has one: the engines read its CPU time there
    // (podman stats, cAdvisor), as runc places it.
    this.cpuacct = v1Dir("cpuacct");
    this.freezer = this.v2 ? undefined : v1Dir("freezer");
    if (opts.paths) {
      const recorded = new Set(Object.values(opts.paths));
      this.v1 = this.v1.filter((d) => recorded.has(d.path));
      for (const c of LIMIT_CONTROLLERS) if (this.route[c]?.kind === "v1" && !recorded.has(this.route[c]!.path)) delete this.route[c];
    }
  }

  private all(): CgroupDir[] {
    return this.v2 ? [...this.v1, this.v2] : [...this.v1];
  }

  paths(): Record<string, string> {
    const out: Record<string, string> = {};
    if (this.v2) out[""] = this.v2.path;
    for (const d of this.v1) for (const c of d.controllers) out[c] = d.path;
    return out;
  }

  dirs(): string[] {
    return this.all().map((d) => d.path);
  }

  exists(): boolean {
    return this.all().some((d) => this.fs.exists(d.path));
  }

  private unavailable(c: LimitController): Error {
    const name = this.layout.setup === "unified" ? c : V1_NAME[c];
    if (this.layout.v1[V1_NAME[c]]) {
      return new Error(`the ${name} limit needs the cgroup in the ${name} hierarchy, and ${this.name}'s was made without it (no ${name} limit when it was created): give the limit when the container is created`);
    }
    if (c === "devices") return new Error(`device rules need the v1 devices hierarchy or cgroup v2 (for an eBPF filter), and this host mounts neither under ${this.layout.root}`);
    const why: string[] = [];
    if (this.layout.unified) {
      const offered = this.layout.v2Controllers.join(" ") || "none";
      why.push(`${join(this.layout.unified, "cgroup.controllers")} offers ${offered}`);
    }
    if (this.layout.setup !== "unified") why.push(`no v1 hierarchy under ${this.layout.root} mounts ${V1_NAME[c]}`);
    return new Error(`the ${name} limit needs the ${name} controller, which this host does not offer: ${why.join(", and ")}`);
  }

  /** Which controllers the limits need; each must be there. */
  private needed(limits: Limits): LimitController[] {
    const need = controllersFor(limits);
    for (const c of need) if (!this.route[c]) throw this.unavailable(c);
    // cgroup v2 has no files for these: refused before anything is made.
    if (this.route.memory?.kind === "v2") {
      if (limits.swappiness !== undefined) throw new Error(`a swappiness needs cgroup v1's memory.swappiness; cgroup v2 (${this.route.memory.mount}) has no such file: the host's vm.swappiness applies`);
      if (limits.oomKillDisable) throw new Error(`turning the OOM killer off needs cgroup v1's memory.oom_control; cgroup v2 (${this.route.memory.mount}) has no such switch`);
    }
    return need;
  }

  /** mkdir of each parent level that is missing; parents are shared and never removed. */
  private makeParents(dir: CgroupDir, needed: LimitController[]): void {
    let level = dir.mount;
    const levels = [level];
    for (const part of this.parent.split("/")) {
      level = join(level, part);
      levels.push(level);
      try {
        this.fs.mkdir(level);
      } catch (err) {
        if (errnoOf(err) !== "EEXIST") throw new Error(`cannot create the parent cgroup ${level}`, { cause: err });
        continue;
      }
      if (dir.kind === "v1" && dir.controllers.includes("cpuset")) initV1CpusetParent(this.fs, level);
    }
    if (dir.kind !== "v2") return;
    // A v2 controller reaches a cgroup only if every ancestor lists it in cgroup.subtree_control.
    for (const c of [...dir.controllers]) {
      try {
        for (const l of levels) enableController(this.fs, l, c);
      } catch (err) {
        if (needed.includes(c as LimitController)) throw err;
        // Not needed for a limit (only for usage numbers): go on without it.
        dir.controllers.splice(dir.controllers.indexOf(c), 1);
        delete this.route[c as LimitController];
      }
    }
  }

  create(limits: Limits = {}, later: Limits = {}): Record<string, string> {
    const needed = this.needed({ ...later, ...limits });
    const dirs = this.all();
    if (!dirs.length) throw new Error(`no cgroup hierarchy under ${this.layout.root} to create ${this.name} in`);
    const made: string[] = [];
    try {
      for (const d of dirs) {
        this.makeParents(d, needed);
        try {
          this.fs.mkdir(d.path);
        } catch (err) {
          if (errnoOf(err) === "EEXIST") throw new Error(`cgroup ${this.name} exists already: ${d.path}`);
          throw new Error(`cannot create cgroup ${d.path}`, { cause: err });
        }
        made.push(d.path);
        if (d.kind === "v1" && d.controllers.includes("cpuset")) initV1Cpuset(this.fs, d.path);
      }
      this.apply(limits);
    } catch (err) {
      // Only what this call made: a name collision must not remove someone else's cgroup.
      for (const p of made.reverse()) {
        try {
          this.fs.rmdir(p);
        } catch {
          // reported through err below
        }
      }
      throw err;
    }
    return this.paths();
  }

  apply(limits: Limits): void {
    for (const c of this.needed(limits)) {
      const dir = this.route[c]!;
      if (c === "devices" && dir.kind === "v2") this.attachDeviceFilter(dir.path, limits.devices!);
      else (dir.kind === "v2" && c !== "devices" ? V2_UNITS[c] : V1_UNITS[c]).apply(this.fs, dir.path, limits);
    }
  }

  addTask(pid: number): void {
    for (const d of this.all()) {
      try {
        writeValue(this.fs, d.path, "cgroup.procs", String(pid));
      } catch (err) {
        if ((err as { cause?: NodeJS.ErrnoException }).cause?.code === "ESRCH") throw new Error(`no process ${pid}`);
        throw err;
      }
    }
  }

  pids(): number[] {
    const all = new Set<number>();
    for (const d of this.all()) for (const p of readPids(this.fs, d.path)) all.add(p);
    return [...all].sort((a, b) => a - b);
  }

  private mustExist(): void {
    if (!this.exists()) throw new Error(`no cgroup ${this.name} under ${this.parent} in ${this.layout.root}`);
  }

  stats(): CgroupStats {
    this.mustExist();
    const out = emptyStats();
    for (const c of LIMIT_CONTROLLERS) {
      const dir = this.route[c];
      if (dir) (dir.kind === "v2" && c !== "devices" ? V2_UNITS[c] : V1_UNITS[c]).stats(this.fs, dir.path, out);
    }
    out.cpu.usageUsec = this.v2 ? v2CpuUsage(this.fs, this.v2.path) : this.cpuacct ? v1CpuUsage(this.fs, this.cpuacct.path) : null;
    out.processes = this.pids().length;
    out.oomKills = this.oomKills();
    return out;
  }

  oomKills(): number | null {
    const dir = this.route.memory;
    if (!dir) return null;
    return readKeyed(this.fs, dir.path, dir.kind === "v2" ? "memory.events" : "memory.oom_control")?.oom_kill ?? null;
  }

  private setFrozen(frozen: boolean): void {
    this.mustExist();
    if (this.v2) v2Freeze(this.fs, this.v2.path, frozen);
    else if (this.freezer) v1Freeze(this.fs, this.freezer.path, frozen);
    else throw new Error(`cannot ${frozen ? "freeze" : "thaw"} ${this.name}: the host has neither cgroup v2 nor the v1 freezer hierarchy`);
  }

  freeze(): void {
    this.setFrozen(true);
  }

  thaw(): void {
    this.setFrozen(false);
  }

  killAll(): void {
    if (!this.exists()) return;
    if (this.v2 && v2CanKill(this.fs, this.v2.path)) {
      v2Kill(this.fs, this.v2.path, KILL_WAIT_MS);
      return;
    }
    // Without cgroup.kill: freeze so that no process forks between reading the list and the
    // signal, SIGKILL each, thaw so the signals are delivered. Repeat for stragglers.
    const canFreeze = Boolean(this.v2 ?? this.freezer);
    for (let round = 0; round < 10; round++) {
      const pids = this.pids();
      if (!pids.length) return;
      if (canFreeze) this.freeze();
      for (const pid of pids) {
        try {
          process.kill(pid, "SIGKILL");
        } catch (err) {
          if (errnoOf(err) !== "ESRCH") throw new Error(`cannot kill process ${pid} of cgroup ${this.name}`, { cause: err });
        }
      }
      if (canFreeze) this.thaw();
      if (waitFor(() => this.pids().length === 0, TEARDOWN_MS / 4)) return;
    }
    throw new Error(`cgroup ${this.name} still has processes ${this.pids().join(" ")} after SIGKILL`);
  }

  remove(): void {
    const failures: Error[] = [];
    for (const d of this.all().reverse()) {
      let busy: unknown;
      let gone: boolean;
      try {
        gone = waitFor(() => {
          try {
            // A container with a writable cgroupfs (--privileged) may have made child cgroups.
            this.removeChildren(d.path);
            this.fs.rmdir(d.path);
            return true;
          } catch (err) {
            if (errnoOf(err) === "ENOENT") return true;
            if (errnoOf(err) !== "EBUSY") throw err;
            busy = err;
            return false;
          }
        }, TEARDOWN_MS);
      } catch (err) {
        failures.push(new Error(`cannot remove cgroup ${d.path}`, { cause: err }));
        continue;
      }
      if (!gone) {
        const left = readPids(this.fs, d.path);
        const what = left.length ? `processes ${left.join(" ")}` : "child cgroups or dying tasks";
        failures.push(new Error(`cannot remove cgroup ${d.path}: it still has ${what}`, { cause: busy }));
      }
    }
    if (failures.length) throw failures[0]!;
  }

  /** Child cgroups, deepest first; each must be empty of processes, as killAll leaves them. */
  private removeChildren(dir: string): void {
    let children: string[];
    try {
      children = this.fs.subdirs(dir);
    } catch (err) {
      if (errnoOf(err) === "ENOENT") return;
      throw err;
    }
    for (const name of children) {
      const child = `${dir}/${name}`;
      this.removeChildren(child);
      try {
        this.fs.rmdir(child);
      } catch (err) {
        if (errnoOf(err) !== "ENOENT") throw err;
      }
    }
  }
}

/** A manager for cgroup NAME under the parent; creates nothing until create(). */
export function cgroupManager(opts: CgroupOptions): CgroupManager {
  return new Manager(opts);
}

/** Names of the cgroups under a parent, in any hierarchy. */
export function listCgroups(opts: Omit<CgroupOptions, "name"> = {}): string[] {
  const fs = opts.fs ?? nodeCgroupFs;
  const layout = opts.layout ?? discoverLayout(opts);
  const parent = normalizeParent(opts.parent ?? DEFAULT_PARENT);
  const mounts = new Set([...(layout.unified ? [layout.unified] : []), ...Object.values(layout.v1)]);
  const names = new Set<string>();
  for (const m of mounts) {
    const dir = join(m, parent);
    if (fs.exists(dir)) for (const n of fs.subdirs(dir)) names.add(n);
  }
  return [...names].sort();
}

/** The line both tools print when the kernel's OOM killer acted in a cgroup, or undefined. */
export function oomReport(m: CgroupManager, memoryLimit: number | undefined, where: string): string | undefined {
  const kills = m.oomKills() ?? 0;
  if (!kills) return undefined;
  const limit = memoryLimit === undefined ? "" : ` (memory limit ${formatBytes(memoryLimit)})`;
  return `out of memory: the kernel's OOM killer killed ${kills} process${kills > 1 ? "es" : ""} in ${where}${limit}`;
}
