import { mkdirSync, symlinkSync } from "node:fs";
import { basename } from "node:path";
import { MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REMOUNT, type Syscall } from "@corerun/syscall";
import type { MountLayout } from "./detect.ts";

export interface CgroupTree {
  /** In order: a tmpfs to hold the v1 hierarchies (not on a pure v2 host), then each hierarchy. */
  mounts: { fstype: "tmpfs" | "cgroup" | "cgroup2"; target: string; options?: string }[];
  /** Names of co-mounted controllers, pointing at their hierarchy (cpu -> cpu,cpuacct), as on the host. */
  links: { path: string; target: string }[];
}

/**
 * The host's cgroup hierarchies, mounted again at `target` the way the host has them: cgroup2
 * alone on a pure v2 host; a tmpfs with each v1 hierarchy (by its co-mounted controllers) and the
 * v2 one at unified/ on a hybrid host. Mounted from inside a cgroup namespace, every hierarchy
 * shows the namespace's root, the container's own cgroup, as Docker's /sys/fs/cgroup does.
 */
export function cgroupTree(layout: MountLayout, target = "/sys/fs/cgroup"): CgroupTree {
  if (layout.setup === "unified") return { mounts: [{ fstype: "cgroup2", target }], links: [] };
  const byMount = new Map<string, string[]>();
  for (const [controller, mountPoint] of Object.entries(layout.v1)) byMount.set(mountPoint, [...(byMount.get(mountPoint) ?? []), controller]);
  const tree: CgroupTree = { mounts: [{ fstype: "tmpfs", target, options: "mode=755,size=64k" }], links: [] };
  // A code-unit order, not localeCompare: its first call sets up an ICU collator (~5 ms), and
  // this runs on every container's start path.
  for (const [mountPoint, controllers] of [...byMount].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const dir = basename(mountPoint);
    tree.mounts.push({ fstype: "cgroup", target: `${target}/${dir}`, options: controllers.sort().join(",") });
    for (const c of controllers) if (c !== dir) tree.links.push({ path: `${target}/${c}`, target: dir });
  }
  if (layout.unified) tree.mounts.push({ fstype: "cgroup2", target: `${target}/unified` });
  return tree;
}

/**
 * Mounts a cgroupTree; read-only unless asked (Docker makes it writable for --privileged only).
 * The kernel lets a cgroup namespace mount a v1 hierarchy only when it matches an existing one
 * exactly, which the host's own controller sets do.
 */
export function mountCgroupTree(sys: Syscall, tree: CgroupTree, readonly: boolean): void {
  const base = MS_NOSUID | MS_NODEV | MS_NOEXEC;
  const ro = readonly ? MS_RDONLY : 0;
  const [holder] = tree.mounts;
  for (const m of tree.mounts) {
    if (m.fstype === "tmpfs") {
      sys.mount("tmpfs", m.target, "tmpfs", base, m.options);
      continue;
    }
    if (m !== holder) mkdirSync(m.target, { mode: 0o755 });
    sys.mount(m.fstype, m.target, m.fstype, base | ro, m.options ?? null);
  }
  for (const l of tree.links) symlinkSync(l.target, l.path);
  if (holder?.fstype === "tmpfs" && readonly) sys.mount(null, holder.target, null, MS_REMOUNT | MS_RDONLY | base);
}
