import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { withLock, writeJsonAtomic } from "./store.ts";

export interface CreatedPath {
  path: string;
  kind: "dir" | "file";
}

type Registry = Record<string, { kind: CreatedPath["kind"]; holders: string[] }>;

/**
 * Mount points corerun adds to a rootfs are shared by every container of the state root that
 * starts from that rootfs: the last one to end removes them. Removing one while another
 * container runs would detach that container's mount on it (the kernel lazily unmounts what sits
 * on an unlinked path in every namespace).
 */
function registryPath(root: string): string {
  return join(root, "mountpoints.json");
}

function load(root: string): Registry {
  let registry: Registry;
  try {
    registry = JSON.parse(readFileSync(registryPath(root), "utf8")) as Registry;
  } catch {
    return {};
  }
  // A holder whose container directory is gone (removed by hand, or a lost cleanup) holds nothing.
  // One readdir of the root, not a lookup for each holder: a rootfs that n containers run from
  // has each of its mount points held n times (an access(2) for each was ~18 ms of a start
  // with 50 containers running).
  const live = new Set(readdirSync(root));
  for (const entry of Object.values(registry)) entry.holders = entry.holders.filter((id) => live.has(id));
  return registry;
}

/**
 * Registers container `id` as a holder of the paths it is about to create (`missing`) and of the
 * paths other containers created that it will use too (`wanted`); returns what it holds, to be
 * recorded in its state.
 */
export function claimCreatedPaths(root: string, id: string, missing: readonly CreatedPath[], wanted: readonly string[]): CreatedPath[] {
  return withLock(join(root, "names.lock"), () => {
    const registry = load(root);
    const held: CreatedPath[] = [];
    for (const m of missing) held.push(m);
    for (const [path, entry] of Object.entries(registry)) {
      if (entry.holders.length && wanted.some((w) => w === path || w.startsWith(`${path}/`)) && !held.some((h) => h.path === path)) held.push({ path, kind: entry.kind });
    }
    for (const h of held) {
      const entry = (registry[h.path] ??= { kind: h.kind, holders: [] });
      if (!entry.holders.includes(id)) entry.holders.push(id);
    }
    // Nothing to hold (the rootfs has every mount point): the registry stays as it is.
    if (held.length) writeJsonAtomic(registryPath(root), registry);
    return held.sort((a, b) => a.path.length - b.path.length);
  });
}

/** Drops container `id` as a holder; returns the paths nobody holds any more, deepest first. */
export function releaseCreatedPaths(root: string, id: string, paths: readonly CreatedPath[]): CreatedPath[] {
  return withLock(join(root, "names.lock"), () => {
    const registry = load(root);
    const free: CreatedPath[] = [];
    for (const p of paths) {
      const entry = registry[p.path];
      if (entry) entry.holders = entry.holders.filter((h) => h !== id);
      if (!entry || entry.holders.length === 0) {
        free.push(p);
        delete registry[p.path];
      }
    }
    // No fsync, unlike a claim (which must reach the disk before the paths it records are made):
    // the paths are removed after this write, and an fsync would make neither their removal nor
    // the state directory's durable. A kill -9 loses nothing the kernel has; a power loss that
    // undoes this release leaves the container a holder, whose cleanup releases it again.
    if (paths.length) writeJsonAtomic(registryPath(root), registry, { durable: false });
    return free.sort((a, b) => b.path.length - a.path.length);
  });
}
