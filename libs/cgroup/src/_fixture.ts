/**
 * A fixture host for unit tests: a temporary directory laid out like /sys/fs/cgroup, and a
 * CgroupFs that plays the kernel's part on it (mkdir fills in a controller's files, rmdir refuses a
 * populated cgroup, cgroup.subtree_control enforces the no-internal-processes rule). Internal: not
 * exported from index.ts.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, relative } from "node:path";
import { CGROUP2_SUPER_MAGIC, CGROUP_SUPER_MAGIC, TMPFS_MAGIC, type CgroupSetup } from "./detect.ts";
import type { CgroupFs } from "./fs.ts";

export interface FixtureOptions {
  /** Controllers of the v2 hierarchy (its root's cgroup.controllers). */
  v2Controllers?: string[];
  /** v1 hierarchies, each a list of co-mounted controllers. */
  v1?: string[][];
  /** Whether the kernel accounts swap (memory.swap.max, memory.memsw.*). */
  swap?: boolean;
}

interface Mount {
  path: string;
  kind: "v1" | "v2";
  controllers: string[];
}

function errno(code: string, op: string, path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${op} '${path}'`), { code });
}

function alive(pid: number): boolean {
  try {
    // A zombie has left its cgroup already; the kernel lists only live tasks in cgroup.procs.
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

export class FixtureHost implements CgroupFs {
  readonly root: string;
  readonly mountinfo: string;
  readonly mounts: Mount[] = [];
  /** Every write, path relative to root: what the backends told the "kernel". */
  readonly writes: [string, string][] = [];
  private readonly swap: boolean;

  constructor(readonly setup: CgroupSetup, opts: FixtureOptions = {}) {
    this.root = mkdtempSync(join(tmpdir(), "corerun-cgroup-fixture-"));
    this.swap = opts.swap ?? true;
    const v2Controllers = opts.v2Controllers ?? (setup === "unified" ? ["cpuset", "cpu", "io", "memory", "hugetlb", "pids"] : ["hugetlb"]);
    const v1 = setup === "unified" ? [] : opts.v1 ?? [["cpu"], ["cpuacct"], ["memory"], ["pids"], ["freezer"], ["devices"], ["cpuset"], ["blkio"]];
    const lines: string[] = [];
    if (setup !== "unified") {
      lines.push(`31 23 0:28 / ${this.root} rw,relatime - tmpfs tmpfs rw,mode=755`);
      for (const [i, ctrls] of v1.entries()) {
        const path = join(this.root, ctrls.join(","));
        mkdirSync(path);
        this.mounts.push({ path, kind: "v1", controllers: ctrls });
        this.populate(path, { path, kind: "v1", controllers: ctrls }, true);
        lines.push(`${32 + i} 31 0:${29 + i} / ${path} rw,relatime - cgroup cgroup rw,${ctrls.join(",")}`);
      }
      lines.push(`90 31 0:90 / ${join(this.root, "systemd")} rw,relatime - cgroup cgroup rw,name=systemd`);
    }
    if (setup !== "legacy") {
      const path = setup === "unified" ? this.root : join(this.root, "unified");
      if (path !== this.root) mkdirSync(path);
      const m: Mount = { path, kind: "v2", controllers: v2Controllers };
      this.mounts.push(m);
      this.populate(path, m, true);
      lines.push(`41 31 0:38 / ${path} rw,relatime - cgroup2 cgroup2 rw`);
    }
    this.mountinfo = join(tmpdir(), `${basename(this.root)}.mountinfo`);
    writeFileSync(this.mountinfo, `${lines.join("\n")}\n`);
  }

  /** Removes the fixture: only the mkdtemp directory and the mountinfo file this host made. */
  cleanup(): void {
    if (!basename(this.root).startsWith("corerun-cgroup-fixture-")) throw new Error(`refusing to remove ${this.root}`);
    rmSync(this.root, { recursive: true, force: true });
    rmSync(this.mountinfo, { force: true });
  }

  /** A path below root: fixture(`memory/corerun/x`) */
  at(rel: string): string {
    return join(this.root, rel);
  }

  file(rel: string): string {
    return readFileSync(this.at(rel), "utf8");
  }

  set(rel: string, content: string): void {
    writeFileSync(this.at(rel), content);
  }

  written(rel: string): string[] {
    return this.writes.filter(([p]) => p === rel).map(([, d]) => d);
  }

  private mountOf(path: string): Mount | undefined {
    return this.mounts.filter((m) => path === m.path || path.startsWith(`${m.path}/`)).sort((a, b) => b.path.length - a.path.length)[0];
  }

  private populate(dir: string, m: Mount, isRoot: boolean): void {
    const put = (name: string, content = "") => writeFileSync(join(dir, name), content);
    put("cgroup.procs");
    if (m.kind === "v2") {
      const enabled = isRoot ? m.controllers : readFileSync(join(dirname(dir), "cgroup.subtree_control"), "utf8").split(/\s+/).filter(Boolean);
      if (isRoot) put("cgroup.controllers", `${enabled.join(" ")}\n`);
      else put("cgroup.controllers");
      put("cgroup.subtree_control", "\n");
      put("cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n");
      if (isRoot && m.controllers.includes("cpuset")) {
        put("cpuset.cpus.effective", "0-1\n");
        put("cpuset.mems.effective", "0\n");
      }
      if (isRoot) return;
      put("cgroup.events", "populated 0\nfrozen 0\n");
      put("cgroup.freeze", "0\n");
      put("cgroup.kill");
      if (enabled.includes("memory")) {
        put("memory.max", "max\n");
        put("memory.low", "0\n");
        put("memory.current", "4096\n");
        put("memory.peak", "8192\n");
        put("memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n");
        if (this.swap) put("memory.swap.max", "max\n");
      }
      if (enabled.includes("cpu")) put("cpu.max", "max 100000\n");
      if (enabled.includes("cpuset")) {
        // An empty v2 cpuset takes its parent's: the effective lists say so.
        put("cpuset.cpus", "\n");
        put("cpuset.mems", "\n");
        // The nearest ancestor with the file (one made before the controller was enabled has none).
        const inherited = (file: string): string => {
          let d = dirname(dir);
          while (!existsSync(join(d, file))) d = dirname(d);
          return readFileSync(join(d, file), "utf8");
        };
        put("cpuset.cpus.effective", inherited("cpuset.cpus.effective"));
        put("cpuset.mems.effective", inherited("cpuset.mems.effective"));
      }
      if (enabled.includes("io")) {
        put("io.max");
        put("io.weight", "default 100\n");
        put("io.stat", "254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n8:0 rbytes=100 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n");
      }
      if (enabled.includes("pids")) {
        put("pids.max", "max\n");
        put("pids.current", "0\n");
      }
      return;
    }
    put("tasks");
    put("cgroup.clone_children", "0\n");
    for (const c of m.controllers) {
      if (c === "memory") {
        put("memory.limit_in_bytes", "9223372036854771712\n");
        put("memory.usage_in_bytes", "4096\n");
        put("memory.max_usage_in_bytes", "8192\n");
        put("memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n");
        put("memory.soft_limit_in_bytes", "9223372036854771712\n");
        put("memory.swappiness", "60\n");
        if (this.swap) put("memory.memsw.limit_in_bytes", "9223372036854771712\n");
      }
      if (c === "cpu") {
        put("cpu.cfs_quota_us", "-1\n");
        put("cpu.cfs_period_us", "100000\n");
      }
      if (c === "cpuacct") put("cpuacct.usage", "2500000\n");
      if (c === "pids" && !isRoot) {
        put("pids.max", "max\n");
        put("pids.current", "0\n");
      }
      if (c === "freezer" && !isRoot) put("freezer.state", "THAWED\n");
      if (c === "devices") {
        put("devices.allow");
        put("devices.deny");
        put("devices.list", "a *:* rwm\n");
      }
      if (c === "cpuset") {
        // A new v1 cpuset is empty, unless its parent's cgroup.clone_children is 1; the kernel
        // refuses tasks until both files are set.
        const cloned = !isRoot && readFileSync(join(dirname(dir), "cgroup.clone_children"), "utf8").trim() === "1";
        for (const [key, all] of [["cpus", "0-1"], ["mems", "0"]]) {
          const value = isRoot ? `${all}\n` : cloned ? readFileSync(join(dirname(dir), `cpuset.${key}`), "utf8") : "\n";
          put(`cpuset.${key}`, value);
          put(`cpuset.effective_${key}`, value);
        }
      }
      if (c === "blkio") {
        for (const f of ["read_bps_device", "write_bps_device", "read_iops_device", "write_iops_device"]) put(`blkio.throttle.${f}`);
        put("blkio.throttle.io_service_bytes_recursive", "254:0 Read 4096\n254:0 Write 8192\n254:0 Sync 0\n254:0 Async 12288\n254:0 Total 12288\nTotal 12288\n");
      }
    }
  }

  // ---- CgroupFs: the "kernel" ----

  fsType(path: string): number | undefined {
    if (!existsSync(path)) return undefined;
    const m = this.mountOf(path);
    if (m) return m.kind === "v2" ? CGROUP2_SUPER_MAGIC : CGROUP_SUPER_MAGIC;
    return path.startsWith(this.root) ? TMPFS_MAGIC : 0xef53;
  }

  exists(path: string): boolean {
    return existsSync(path);
  }

  read(path: string): string {
    if (!existsSync(path)) throw errno("ENOENT", "open", path);
    const m = this.mountOf(path);
    if (basename(path) === "cgroup.controllers" && m?.kind === "v2" && dirname(path) !== m.path) {
      // The kernel shows a child the controllers its parent enables, as they are now.
      return this.read(join(dirname(dirname(path)), "cgroup.subtree_control"));
    }
    if (basename(path) === "cgroup.procs") {
      return readFileSync(path, "utf8").split("\n").filter((l) => l && alive(Number(l))).map((l) => `${l}\n`).join("");
    }
    return readFileSync(path, "utf8");
  }

  write(path: string, data: string): void {
    if (!existsSync(path)) throw errno("ENOENT", "open", path);
    this.writes.push([relative(this.root, path), data]);
    const dir = dirname(path);
    const m = this.mountOf(dir)!;
    switch (basename(path)) {
      case "cgroup.subtree_control": {
        const set = new Set(readFileSync(path, "utf8").split(/\s+/).filter(Boolean));
        const offered = this.read(join(dir, "cgroup.controllers")).split(/\s+/);
        for (const tok of data.trim().split(/\s+/)) {
          const c = tok.slice(1);
          if (!offered.includes(c)) throw errno("ENOENT", "write", path);
          if (tok.startsWith("+") && dir !== m.path && this.read(join(dir, "cgroup.procs")).trim()) throw errno("EBUSY", "write", path);
          if (tok.startsWith("+")) set.add(c);
          else set.delete(c);
        }
        writeFileSync(path, `${[...set].join(" ")}\n`);
        return;
      }
      case "cgroup.procs": {
        if (m.kind === "v2" && dir !== m.path && readFileSync(join(dir, "cgroup.subtree_control"), "utf8").trim()) throw errno("EBUSY", "write", path);
        if (m.kind === "v1" && m.controllers.includes("cpuset") && !readFileSync(join(dir, "cpuset.cpus"), "utf8").trim()) throw errno("ENOSPC", "write", path);
        const pid = data.trim() === "0" ? process.pid : Number(data);
        if (!alive(pid)) throw errno("ESRCH", "write", path);
        writeFileSync(path, `${readFileSync(path, "utf8")}${pid}\n`);
        if (m.kind === "v2") writeFileSync(join(dir, "cgroup.events"), "populated 1\nfrozen 0\n");
        return;
      }
      case "cgroup.freeze": {
        writeFileSync(path, data);
        const populated = this.read(join(dir, "cgroup.procs")).trim() ? 1 : 0;
        writeFileSync(join(dir, "cgroup.events"), `populated ${populated}\nfrozen ${data.trim()}\n`);
        return;
      }
      case "cpuset.cpus":
      case "cpuset.mems": {
        writeFileSync(path, data);
        const key = basename(path).slice("cpuset.".length);
        writeFileSync(join(dir, m.kind === "v1" ? `cpuset.effective_${key}` : `cpuset.${key}.effective`), data);
        return;
      }
      case "cgroup.kill": {
        for (const pid of this.read(join(dir, "cgroup.procs")).split("\n").filter(Boolean)) process.kill(Number(pid), "SIGKILL");
        writeFileSync(join(dir, "cgroup.procs"), "");
        writeFileSync(join(dir, "cgroup.events"), "populated 0\nfrozen 0\n");
        return;
      }
      default:
        writeFileSync(path, data);
    }
  }

  mkdir(path: string): void {
    const m = this.mountOf(path);
    mkdirSync(path);
    if (m) this.populate(path, m, false);
  }

  rmdir(path: string): void {
    if (!existsSync(path)) throw errno("ENOENT", "rmdir", path);
    const m = this.mountOf(path);
    if (!m || path === m.path || !path.startsWith(`${this.root}/`)) throw errno("EPERM", "rmdir", path);
    if (readdirSync(path, { withFileTypes: true }).some((e) => e.isDirectory())) throw errno("EBUSY", "rmdir", path);
    if (this.read(join(path, "cgroup.procs")).trim()) throw errno("EBUSY", "rmdir", path);
    // cgroupfs rmdir removes a directory together with its interface files.
    rmSync(path, { recursive: true });
  }

  subdirs(dir: string): string[] {
    return readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  }
}
