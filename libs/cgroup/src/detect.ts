import { join } from "node:path";
import { nodeCgroupFs, type CgroupFs } from "./fs.ts";

export const CGROUP2_SUPER_MAGIC = 0x63677270;
export const CGROUP_SUPER_MAGIC = 0x27e0eb;
export const TMPFS_MAGIC = 0x01021994;

export const DEFAULT_ROOT = "/sys/fs/cgroup";
export const DEFAULT_MOUNTINFO = "/proc/self/mountinfo";

/**
 * How the host mounts its cgroups:
 * - "unified": root is a cgroup2 filesystem; every controller lives in that one hierarchy.
 * - "hybrid": root is a tmpfs of v1 hierarchies (root/memory, root/cpu, ...) and root/unified is
 *   cgroup2, usually with few or no controllers but with the v2 core files (cgroup.kill, ...).
 * - "legacy": root is a tmpfs of v1 hierarchies only.
 */
export type CgroupSetup = "unified" | "hybrid" | "legacy";

/** Reads the setup from the filesystem types at root and root/unified (statfs magic). */
export function detectCgroupSetup(root = DEFAULT_ROOT, fs: CgroupFs = nodeCgroupFs): CgroupSetup {
  const type = fs.fsType(root);
  if (type === CGROUP2_SUPER_MAGIC) return "unified";
  if (type === TMPFS_MAGIC) return fs.fsType(join(root, "unified")) === CGROUP2_SUPER_MAGIC ? "hybrid" : "legacy";
  const found = type === undefined ? "it does not exist" : `statfs type 0x${type.toString(16)}`;
  throw new Error(`${root} is neither cgroup2 nor a tmpfs of cgroup hierarchies (${found})`);
}

/** Controllers a v1 mount can carry; anything else in its options (rw, name=systemd) is not one. */
const V1_CONTROLLERS = new Set([
  "cpuset", "cpu", "cpuacct", "blkio", "io", "memory", "devices", "freezer", "net_cls", "perf_event", "net_prio", "hugetlb", "pids", "rdma", "misc",
]);

/** Everything a cgroup manager needs to know about the host, found once. */
export interface CgroupLayout {
  setup: CgroupSetup;
  root: string;
  /** Mount point of the cgroup2 hierarchy: root ("unified") or root/unified ("hybrid"). */
  unified: string | undefined;
  /** Controllers the v2 hierarchy offers (its root's cgroup.controllers). */
  v2Controllers: string[];
  /** v1 controller name -> mount point of its hierarchy (co-mounted controllers share one). */
  v1: Record<string, string>;
}

/** mountinfo escapes space, tab, newline and backslash in paths as octal (\040). */
function unescapeMountPath(s: string): string {
  if (!s.includes("\\")) return s;
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** The v1 hierarchies mounted below root, from /proc/self/mountinfo: controller -> mount point. */
export function parseV1Mounts(mountinfo: string, root: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of mountinfo.split("\n")) {
    // Most lines are other filesystems: passed over before they are split.
    if (!line.includes(" - cgroup ")) continue;
    const sep = line.indexOf(" - ");
    if (sep < 0) continue;
    const pre = line.slice(0, sep).split(" ");
    const [fstype, , superOpts] = line.slice(sep + 3).split(" ");
    const mountPoint = pre[4] === undefined ? undefined : unescapeMountPath(pre[4]);
    if (fstype !== "cgroup" || !mountPoint || !mountPoint.startsWith(`${root}/`)) continue;
    for (const opt of (superOpts ?? "").split(",")) {
      if (V1_CONTROLLERS.has(opt) && out[opt] === undefined) out[opt] = mountPoint;
    }
  }
  return out;
}

function words(text: string): string[] {
  return text.split(/\s+/).filter(Boolean);
}

export interface LayoutOptions {
  root?: string;
  mountinfo?: string;
  fs?: CgroupFs;
}

/** The host's layout, once a process has read it: corerun run reads it to create the cgroup and again to remove it. */
let hostLayout: CgroupLayout | undefined;

/**
 * Finds the setup, the v2 hierarchy and its controllers, and every v1 hierarchy under root. The
 * host's (no option given) is read once per process: its hierarchies are mounted at boot and
 * do not move while a corerun command runs.
 */
export function discoverLayout(opts: LayoutOptions = {}): CgroupLayout {
  const host = opts.root === undefined && opts.mountinfo === undefined && opts.fs === undefined;
  if (host && hostLayout) return hostLayout;
  const mounts = readHostCgroupMounts(opts);
  const { setup, root } = mounts;
  const { unified, v1 } = mountLayout(mounts);
  const v2Controllers = unified ? words((opts.fs ?? nodeCgroupFs).read(join(unified, "cgroup.controllers"))) : [];
  const layout = Object.freeze({ setup, root, unified, v2Controllers: Object.freeze(v2Controllers) as string[], v1: Object.freeze(v1) });
  if (host) hostLayout = layout;
  return layout;
}

/** What the hierarchies' mounts need of the host (cgroupTree), as read, to be parsed later. */
export interface HostCgroupMounts {
  root: string;
  setup: CgroupSetup;
  /** /proc/self/mountinfo; "" on a pure v2 host. */
  mountinfo: string;
}

/**
 * The host's hierarchies as the kernel shows them, read without parsing (mountLayout parses
 * them): discoverLayout does both at once; corerun-exec reads them while the host's /proc and
 * /sys are in reach, before it says ready, and parses them while it waits for go.
 */
export function readHostCgroupMounts(opts: LayoutOptions = {}): HostCgroupMounts {
  const root = (opts.root ?? DEFAULT_ROOT).replace(/\/+$/, "") || "/";
  const fs = opts.fs ?? nodeCgroupFs;
  const setup = detectCgroupSetup(root, fs);
  return { root, setup, mountinfo: setup === "unified" ? "" : fs.read(opts.mountinfo ?? DEFAULT_MOUNTINFO) };
}

/** The layout of HostCgroupMounts, as discoverLayout finds it but for the v2 controllers. */
export function mountLayout(m: HostCgroupMounts): MountLayout {
  const unified = m.setup === "unified" ? m.root : m.setup === "hybrid" ? join(m.root, "unified") : undefined;
  return { setup: m.setup, unified, v1: m.setup === "unified" ? {} : parseV1Mounts(m.mountinfo, m.root) };
}

export type MountLayout = Pick<CgroupLayout, "setup" | "unified" | "v1">;
