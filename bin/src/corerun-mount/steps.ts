import { chmodSync, closeSync, mkdirSync, openSync, symlinkSync } from "node:fs";
import {
  CLONE_FS, CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS, MNT_DETACH, MOUNT_ATTR_RDONLY, MS_BIND, MS_NODEV, MS_NOEXEC,
  MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC, MS_STRICTATIME, type Syscall,
} from "@corerun/syscall";
import { MASKED_PATHS, maskPaths, missingMountPoints, pathsUnder, resolveInRoot, type MountPoint } from "@corerun/rootfs";
import type { MountOptions } from "./args.ts";

/**
 * Joins the container's mount, network and IPC namespaces through a pidfd. The kernel refuses
 * setns(CLONE_NEWNS) while threads share fs state, so Node's main thread first takes its own
 * (unshare(CLONE_FS)); only that thread moves, so everything after this is synchronous.
 * Network and IPC come along because sysfs and mqueue show the namespace of whoever mounts them.
 */
export function enterNamespaces(sys: Syscall, pid: number): void {
  const pidfd = sys.pidfdOpen(pid);
  try {
    sys.unshare(CLONE_FS);
    sys.setns(pidfd, CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC, `pid ${pid}`);
  } finally {
    closeSync(pidfd);
  }
  // Nothing mounted from here on may propagate back to the host.
  sys.mount(null, "/", null, MS_REC | MS_PRIVATE);
}

/** pivot_root needs the new root to be a mount point; a recursive bind makes it one. */
export function bindRootfs(sys: Syscall, rootfs: string): void {
  sys.mount(rootfs, rootfs, null, MS_BIND | MS_REC);
}

export function createMountPoints(points: readonly MountPoint[]): void {
  for (const p of points) {
    if (p.kind === "dir") mkdirSync(p.path, { mode: 0o755 });
    else closeSync(openSync(p.path, "wx", 0o644));
  }
}

const DEVICES = ["null", "zero", "full", "random", "urandom", "tty"] as const;

const DEV_LINKS: [string, string][] = [
  ["fd", "/proc/self/fd"],
  ["stdin", "/proc/self/fd/0"],
  ["stdout", "/proc/self/fd/1"],
  ["stderr", "/proc/self/fd/2"],
  ["ptmx", "pts/ptmx"],
  ["core", "/proc/kcore"],
];

/**
 * /dev as Docker builds it: a small tmpfs with the six harmless device nodes (bind-mounted from
 * the host's, which also works where mknod is not allowed), a private devpts instance so the
 * container cannot reach the host's terminals, shm and mqueue.
 */
export function mountDev(sys: Syscall, rootfs: string): void {
  const dev = resolveInRoot(rootfs, "/dev");
  sys.mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k");
  for (const name of DEVICES) {
    closeSync(openSync(`${dev}/${name}`, "w", 0o666));
    sys.mount(`/dev/${name}`, `${dev}/${name}`, null, MS_BIND);
  }
  mkdirSync(`${dev}/pts`);
  sys.mount("devpts", `${dev}/pts`, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5");
  mkdirSync(`${dev}/shm`);
  sys.mount("shm", `${dev}/shm`, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k");
  mkdirSync(`${dev}/mqueue`);
  sys.mount("mqueue", `${dev}/mqueue`, "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC);
  for (const [name, target] of DEV_LINKS) symlinkSync(target, `${dev}/${name}`);
  chmodSync(dev, 0o755);
}

/** A read-only sysfs of the container's network namespace, with Docker's /sys masks. */
export function mountSys(sys: Syscall, rootfs: string): void {
  const path = resolveInRoot(rootfs, "/sys");
  sys.mount("sysfs", path, "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);
  maskPaths(sys, rootfs, pathsUnder(MASKED_PATHS, "/sys"));
}

/** Bind mounts; "ro" is recursive (mount_setattr), so submounts of the volume are read-only too. */
export function mountVolumes(sys: Syscall, rootfs: string, opts: MountOptions): void {
  for (const v of opts.volumes) {
    const target = resolveInRoot(rootfs, v.target);
    sys.mount(v.source, target, null, MS_BIND | MS_REC);
    if (v.readonly) sys.mountSetattr(target, MOUNT_ATTR_RDONLY, 0, true);
  }
}

/**
 * pivot_root(".", ".") stacks the old root on the new one without needing a directory for it in
 * the user's rootfs; unmounting "." then detaches the old root (runc does the same). Every
 * process whose root was the old root moves with it, including the waiting corerun-exec.
 */
export function pivot(sys: Syscall, rootfs: string): void {
  process.chdir(rootfs);
  sys.pivotRoot(".", ".");
  sys.umount2(".", MNT_DETACH);
  process.chdir("/");
}

export function mountPointsFor(opts: MountOptions): MountPoint[] {
  return missingMountPoints(opts.rootfs, opts.volumes);
}
