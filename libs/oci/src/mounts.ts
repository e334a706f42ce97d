/**
 * OCI mount options, as runc reads them (mount(8) names): flags for mount(2), a propagation
 * change, recursive attributes for mount_setattr(2), and the rest as the filesystem's data string.
 */
import type { Mount } from "./spec.ts";

// mount(2) flags, spelled out here so that this module stays pure (no libc).
const MS = {
  RDONLY: 0x1, NOSUID: 0x2, NODEV: 0x4, NOEXEC: 0x8, SYNCHRONOUS: 0x10, REMOUNT: 0x20, MANDLOCK: 0x40, DIRSYNC: 0x80,
  NOSYMFOLLOW: 0x100, NOATIME: 0x400, NODIRATIME: 0x800, BIND: 0x1000, REC: 0x4000, SILENT: 0x8000, UNBINDABLE: 0x20000,
  PRIVATE: 0x40000, SLAVE: 0x80000, SHARED: 0x100000, RELATIME: 0x200000, STRICTATIME: 0x1000000,
} as const;

// MOUNT_ATTR_* of mount_setattr(2).
const ATTR = { RDONLY: 0x1, NOSUID: 0x2, NODEV: 0x4, NOEXEC: 0x8, RELATIME: 0x0, NOATIME: 0x10, STRICTATIME: 0x20, NODIRATIME: 0x80, NOSYMFOLLOW: 0x200000 } as const;
const ATIME_MASK = 0x70;

/** [set?, flag]: set or clear a mount(2) flag. */
const FLAGS: Record<string, [boolean, number]> = {
  defaults: [true, 0], ro: [true, MS.RDONLY], rw: [false, MS.RDONLY], nosuid: [true, MS.NOSUID], suid: [false, MS.NOSUID],
  nodev: [true, MS.NODEV], dev: [false, MS.NODEV], noexec: [true, MS.NOEXEC], exec: [false, MS.NOEXEC],
  sync: [true, MS.SYNCHRONOUS], async: [false, MS.SYNCHRONOUS], dirsync: [true, MS.DIRSYNC], remount: [true, MS.REMOUNT],
  mand: [true, MS.MANDLOCK], nomand: [false, MS.MANDLOCK], atime: [false, MS.NOATIME], noatime: [true, MS.NOATIME],
  diratime: [false, MS.NODIRATIME], nodiratime: [true, MS.NODIRATIME], relatime: [true, MS.RELATIME], norelatime: [false, MS.RELATIME],
  strictatime: [true, MS.STRICTATIME], nostrictatime: [false, MS.STRICTATIME], bind: [true, MS.BIND], rbind: [true, MS.BIND | MS.REC],
  silent: [true, MS.SILENT], loud: [false, MS.SILENT], nosymfollow: [true, MS.NOSYMFOLLOW], symfollow: [false, MS.NOSYMFOLLOW],
};

const PROPAGATION: Record<string, number> = {
  private: MS.PRIVATE, rprivate: MS.PRIVATE | MS.REC, shared: MS.SHARED, rshared: MS.SHARED | MS.REC,
  slave: MS.SLAVE, rslave: MS.SLAVE | MS.REC, unbindable: MS.UNBINDABLE, runbindable: MS.UNBINDABLE | MS.REC,
};

/** [set?, attribute] of the recursive options (runc 1.1+, kernel 5.12+). */
const RECURSIVE: Record<string, [boolean, number]> = {
  rro: [true, ATTR.RDONLY], rrw: [false, ATTR.RDONLY], rnosuid: [true, ATTR.NOSUID], rsuid: [false, ATTR.NOSUID],
  rnodev: [true, ATTR.NODEV], rdev: [false, ATTR.NODEV], rnoexec: [true, ATTR.NOEXEC], rexec: [false, ATTR.NOEXEC],
  rnodiratime: [true, ATTR.NODIRATIME], rdiratime: [false, ATTR.NODIRATIME], rnosymfollow: [true, ATTR.NOSYMFOLLOW], rsymfollow: [false, ATTR.NOSYMFOLLOW],
  rrelatime: [true, ATTR.RELATIME], rnoatime: [true, ATTR.NOATIME], rstrictatime: [true, ATTR.STRICTATIME],
};

/** Options corerun knows and does not implement: refused by name rather than passed on. */
const UNSUPPORTED: Record<string, string> = {
  idmap: "idmapped mounts in OCI bundles",
  ridmap: "idmapped mounts in OCI bundles",
};

/** Every option name corerun recognizes, for `corerun features`. */
export const MOUNT_OPTIONS = [...Object.keys(FLAGS), ...Object.keys(PROPAGATION), ...Object.keys(RECURSIVE), "tmpcopyup", "notmpcopyup"].sort();

/** The filesystems corerun mounts from a bundle; anything else is refused by name. */
export const MOUNT_TYPES = ["bind", "proc", "sysfs", "tmpfs", "devpts", "mqueue", "cgroup", "cgroup2", "none"] as const;

export interface MountPlan {
  destination: string;
  /** "bind" for bind mounts (whatever the type field says), else the filesystem type. */
  type: string;
  source: string;
  /** mount(2) flags, MS_BIND and MS_REC included. */
  flags: number;
  /** Flags the options clear (rw, suid, ...), relevant when a bind is remounted. */
  cleared: number;
  /** Propagation to apply after mounting (MS_PRIVATE etc., with MS_REC for the r- forms). */
  propagation: number;
  /** mount_setattr(AT_RECURSIVE) attributes to set and clear. */
  recursiveSet: number;
  recursiveClear: number;
  /** The rest: the filesystem's own options (mode=755, size=65536k, newinstance, ...). */
  data: string;
  /** tmpcopyup (a tmpfs only): the target's contents are copied into the new tmpfs, as runc does. */
  copyUp: boolean;
}

/** The plan for one mount; `where` names it in errors (e.g. "mounts[3]"). */
export function planMount(m: Mount, where: string): MountPlan {
  let flags = 0;
  let cleared = 0;
  let propagation = 0;
  let recursiveSet = 0;
  let recursiveClear = 0;
  const data: string[] = [];
  let copyUp = false;
  for (const opt of m.options ?? []) {
    if (opt === "tmpcopyup" || opt === "notmpcopyup") {
      copyUp = opt === "tmpcopyup";
      continue;
    }
    const unsupported = UNSUPPORTED[opt];
    if (unsupported) throw new Error(`${where} (${m.destination}): option "${opt}" (${unsupported}) is not supported by corerun; remove it`);
    const flag = FLAGS[opt];
    if (flag) {
      if (flag[0]) {
        flags |= flag[1];
        cleared &= ~flag[1];
      } else {
        flags &= ~flag[1];
        cleared |= flag[1];
      }
      continue;
    }
    const prop = PROPAGATION[opt];
    if (prop !== undefined) {
      propagation = prop;
      continue;
    }
    const rec = RECURSIVE[opt];
    if (rec) {
      if (rec[1] === ATTR.RELATIME || rec[1] === ATTR.NOATIME || rec[1] === ATTR.STRICTATIME) {
        recursiveClear |= ATIME_MASK;
        recursiveSet = (recursiveSet & ~ATIME_MASK) | rec[1];
      } else if (rec[0]) {
        recursiveSet |= rec[1];
        recursiveClear &= ~rec[1];
      } else {
        recursiveClear |= rec[1];
        recursiveSet &= ~rec[1];
      }
      continue;
    }
    data.push(opt);
  }
  const isBind = (flags & MS.BIND) !== 0 || m.type === "bind";
  const type = isBind ? "bind" : (m.type ?? "");
  if (!(MOUNT_TYPES as readonly string[]).includes(type)) {
    throw new Error(`${where} (${m.destination}): mount type "${m.type ?? ""}" is not supported by corerun; use one of ${MOUNT_TYPES.join(", ")}`);
  }
  if (isBind) {
    flags |= MS.BIND;
    if (!m.source) throw new Error(`${where} (${m.destination}): a bind mount needs a source`);
    if (data.length) throw new Error(`${where} (${m.destination}): unknown option "${data[0]}" for a bind mount`);
  }
  if (copyUp && type !== "tmpfs") throw new Error(`${where} (${m.destination}): tmpcopyup copies into a tmpfs; this mount is ${type}`);
  if (!m.destination.startsWith("/")) throw new Error(`${where}: destination "${m.destination}" must be an absolute path`);
  return { destination: m.destination, type, source: m.source ?? type, flags, cleared, propagation, recursiveSet, recursiveClear, data: data.join(","), copyUp };
}

/** The flags a bind mount needs in a remount to take its per-mount options (ro, nosuid, ...). */
export function bindRemountFlags(p: MountPlan): number {
  return p.flags & ~(MS.BIND | MS.REC | MS.REMOUNT);
}

export { MS as MOUNT_FLAGS };
