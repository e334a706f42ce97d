import { lstatIfAny } from "./resolve.ts";
import { MOUNT_ATTR_RDONLY, MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REC, type Syscall } from "@corerun/syscall";

/**
 * Paths Docker hides from a container: kernel memory, keys, timers and hardware details that
 * leak host information or allow attacks (e.g. /proc/kcore). Directories get an empty read-only
 * tmpfs over them, files /dev/null.
 */
export const MASKED_PATHS = [
  "/proc/asound",
  "/proc/acpi",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/proc/scsi",
  "/sys/firmware",
  "/sys/devices/virtual/powercap",
] as const;

/** Paths Docker makes read-only: writes there would reconfigure the host's kernel. */
export const READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"] as const;

/** Masks every path of `paths` under `prefix` that exists in the tree at `root`. */
export function maskPaths(sys: Syscall, root: string, paths: readonly string[]): void {
  for (const p of paths) {
    const host = `${root === "/" ? "" : root}${p}`;
    const st = lstatIfAny(host);
    if (!st) continue;
    if (st.isDirectory()) maskDir(sys, host);
    else maskFile(sys, host, `${root === "/" ? "" : root}/dev/null`);
  }
}

/** An empty read-only tmpfs over a directory. */
export function maskDir(sys: Syscall, path: string): void {
  sys.mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0,mode=0555");
}

/** A file covered by devNull, a path to a /dev/null. */
export function maskFile(sys: Syscall, path: string, devNull: string): void {
  sys.mount(devNull, path, null, MS_BIND);
}

/** Makes every existing path of `paths` in the tree at `root` read-only, submounts included. */
export function readonlyPaths(sys: Syscall, root: string, paths: readonly string[]): void {
  for (const p of paths) {
    const host = `${root === "/" ? "" : root}${p}`;
    if (lstatIfAny(host)) readonlyPath(sys, host);
  }
}

/** A path made read-only by a bind mount of itself, submounts included. */
export function readonlyPath(sys: Syscall, path: string): void {
  sys.mount(path, path, null, MS_BIND | MS_REC);
  sys.mountSetattr(path, MOUNT_ATTR_RDONLY, 0, true);
}

/** The masks and read-only paths that live under `prefix` ("/proc" or "/sys"). */
export function pathsUnder<T extends string>(paths: readonly T[], prefix: string): T[] {
  return paths.filter((p) => p === prefix || p.startsWith(`${prefix}/`));
}
