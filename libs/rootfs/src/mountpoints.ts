import { statSync } from "node:fs";
import { lstatIfAny, resolveInRoot } from "./resolve.ts";
import type { VolumeSpec } from "./volume.ts";

export interface MountPoint {
  /** The host path inside the rootfs. */
  path: string;
  kind: "dir" | "file";
}

/** Directories every container tree mounts something on. */
export const BASE_MOUNT_POINTS = ["/proc", "/sys", "/dev"] as const;

/**
 * Where the tree's mount points land in the rootfs (its links followed inside it): the base ones,
 * then one for each volume, in order. missingMountPoints takes them, so that a caller that also
 * needs them resolves each path once.
 */
export function mountPointPaths(rootfs: string, volumes: readonly Pick<VolumeSpec, "target">[]): string[] {
  return [...BASE_MOUNT_POINTS, ...volumes.map((v) => v.target)].map((p) => resolveInRoot(rootfs, p));
}

/**
 * The mount points that do not exist yet in the rootfs and must be created to build the tree.
 * Computed before anything is created so that the state records them first and cleanup can
 * remove them again, leaving the user's rootfs as it was.
 */
export function missingMountPoints(
  rootfs: string,
  volumes: readonly (VolumeSpec & { kind?: MountPoint["kind"] })[],
  paths: readonly string[] = mountPointPaths(rootfs, volumes),
): MountPoint[] {
  const wanted: MountPoint[] = paths.map((path, i) => {
    const v = volumes[i - BASE_MOUNT_POINTS.length];
    return { path, kind: v ? (v.kind ?? (statSync(v.source).isDirectory() ? "dir" : "file")) : "dir" };
  });
  const missing: MountPoint[] = [];
  for (const m of wanted) {
    if (lstatIfAny(m.path)) continue;
    // Parents that are missing too are created and recorded as well, outermost first.
    for (let p = m.path; p.length > rootfs.length; p = p.slice(0, p.lastIndexOf("/"))) {
      if (lstatIfAny(p)) break;
      if (!missing.some((x) => x.path === p)) missing.unshift({ path: p, kind: p === m.path ? m.kind : "dir" });
    }
  }
  return missing.sort((a, b) => a.path.length - b.path.length);
}
