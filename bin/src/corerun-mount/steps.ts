import { chmodSync, chownSync, closeSync, constants, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, statfsSync, statSync, symlinkSync, type Stats } from "node:fs";
import { dirname } from "node:path";
import { nodeCommand, exitCodeOf, UsageError, waitChild } from "@corerun/cli";
import {
  envp, isErrno, CLONE_FS, CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWUSER, MNT_DETACH, MOUNT_ATTR_IDMAP, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY, MS_BIND, MS_MOVE, MS_NODEV, MS_NOEXEC,
  MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC, MS_STRICTATIME, type Syscall,
} from "@corerun/syscall";
import { DEFAULT_DEV_NODES, DEFAULT_SHM_SIZE, MASKED_PATHS, maskPaths, missingMountPoints, pathsUnder, resolveInRoot, tmpfsPoints, type DeviceSpec, type MountPoint } from "@corerun/rootfs";
import { procStartTime, sameNamespace } from "@corerun/state";
import { devNumbers, TMPFS_MAGIC } from "@corerun/cgroup";
import type { MountOptions } from "./args.ts";

/**
 * Joins the container's mount, network and IPC namespaces through a pidfd. The kernel refuses
 * setns(CLONE_NEWNS) while threads share fs state, so Node's main thread first takes its own
 * (unshare(CLONE_FS)); only that thread moves, so everything after this is synchronous.
 * Network and IPC come along because sysfs and mqueue show the namespace of whoever mounts them.
 */
/** pivot_root in corerun-mount's own mount namespace would move the root of every process. */
export function checkOwnMountNamespace(pid: number): void {
  let same: boolean;
  try {
    same = sameNamespace("mnt", pid, "self");
  } catch {
    throw new UsageError(`--pid ${pid}: no such process`);
  }
  if (same) {
    throw new UsageError(`--pid ${pid}: the process shares corerun-mount's mount namespace; give the pid of a process in a new one (corerun-ns)`);
  }
}

export function enterNamespaces(sys: Syscall, pid: number): void {
  const pidfd = sys.pidfdOpen(pid);
  try {
    sys.unshare(CLONE_FS);
    sys.setns(pidfd, CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC, `pid ${pid}`);
  } finally {
    closeSync(pidfd);
  }
  makePrivate(sys);
}

/** Nothing mounted from here on may propagate back to the host. */
export function makePrivate(sys: Syscall): void {
  sys.mount(null, "/", null, MS_REC | MS_PRIVATE);
}

const JOINED = "CORERUN_MOUNT_JOINED";

/** Whether this is the copy runJoined started inside PID's namespaces (the marker is consumed). */
export function takeJoined(pid: number): boolean {
  const marker = process.env[JOINED];
  delete process.env[JOINED];
  return marker === String(pid);
}

/**
 * Runs corerun-mount again, with the same arguments, inside PID's user, mount, network and IPC
 * namespaces: the native helper's child joins them with setns before it execs, which a
 * single-threaded process may do and Node may not. Returns the copy's status.
 */
export async function runJoined(sys: Syscall, pid: number): Promise<number> {
  const pidfd = sys.pidfdOpen(pid);
  let child: number;
  try {
    const argv = nodeCommand(process.argv[1]!, process.argv.slice(2));
    const env = [...envp(), `${JOINED}=${pid}`];
    const flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC;
    child = sys.cloneExec(0, process.execPath, argv, env, { join: { fd: pidfd, flags } });
  } finally {
    closeSync(pidfd);
  }
  return exitCodeOf(await waitChild(sys, child));
}

/**
 * pivot_root needs the new root to be a mount point; a recursive bind makes it one. With a user
 * namespace, the bind is an idmapped mount instead, so that files owned by host root appear owned
 * by container root and container root's writes land as host root's.
 */
export function bindRootfs(sys: Syscall, rootfs: string, userns: number | undefined, opts = { nodev: true }): void {
  if (userns === undefined) sys.mount(rootfs, rootfs, null, MS_BIND | MS_REC);
  else idmappedBind(sys, rootfs, rootfs, userns);
  // Container root keeps CAP_MKNOD, as in Docker. Without a device cgroup to stop it from opening
  // a node it makes for the host's disk (no --dev), no device node works on the rootfs or volumes.
  if (opts.nodev) sys.mountSetattr(rootfs, MOUNT_ATTR_NODEV, 0, true);
}

/** The user namespace to idmap through, opened while /proc/PID is still the host's. */
export function openUserns(pid: number): number {
  return openSync(`/proc/${pid}/ns/user`, "r");
}

/** open_tree + mount_setattr(MOUNT_ATTR_IDMAP) + move_mount: a bind seen through the map. */
function idmappedBind(sys: Syscall, source: string, target: string, userns: number): void {
  const tree = sys.openTree(source, true);
  try {
    try {
      sys.mountSetattr("", MOUNT_ATTR_IDMAP, 0, true, { fd: tree, usernsFd: userns });
    } catch (err) {
      throw new Error(`${source}: its filesystem cannot be idmapped here; chown it to the container's uid range instead`, { cause: err });
    }
    sys.moveMount(tree, target);
  } finally {
    closeSync(tree);
  }
}

/** Another container started from the same rootfs may have made a mount point already. */
export function createMountPoints(points: readonly MountPoint[]): void {
  for (const p of points) {
    try {
      if (p.kind === "dir") mkdirSync(p.path, { mode: 0o755 });
      else closeSync(openSync(p.path, "wx", 0o644));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
  }
}

const DEVICES = Object.keys(DEFAULT_DEV_NODES);

const DEV_LINKS: [string, string][] = [
  ["fd", "/proc/self/fd"],
  ["stdin", "/proc/self/fd/0"],
  ["stdout", "/proc/self/fd/1"],
  ["stderr", "/proc/self/fd/2"],
  ["ptmx", "pts/ptmx"],
  ["core", "/proc/kcore"],
];

/**
 * /dev as Docker builds it: a small tmpfs with the six harmless device nodes, a private devpts
 * instance so the container cannot reach the host's terminals, shm and mqueue. With `dev` (a
 * device cgroup guards the container) nodes open on it, as in Docker; without, it is nodev and
 * its nodes are read-only bind mounts of the host's (see makeNode).
 */
export function mountDev(sys: Syscall, rootfs: string, nodes: NodeOptions = { mknod: false }, shm?: string, shmSize = DEFAULT_SHM_SIZE): void {
  const dir = resolveInRoot(rootfs, "/dev");
  sys.mount("tmpfs", dir, "tmpfs", MS_NOSUID | (nodes.mknod ? 0 : MS_NODEV) | MS_STRICTATIME, "mode=755,size=65536k");
  makeDevices(sys, dir, nodes);
  mkdirSync(`${dir}/pts`);
  try {
    sys.mount("devpts", `${dir}/pts`, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5");
  } catch (err) {
    // In a user namespace that does not map gid 5 (tty), the kernel refuses the option.
    if (!isErrno(err, "EINVAL")) throw err;
    sys.mount("devpts", `${dir}/pts`, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620");
  }
  // --dev-shm: none (Docker's --ipc none), or the /dev/shm of the IPC namespace joined (the
  // host's, or another container's through /proc/PID/root), which holds its POSIX shared memory.
  if (shm !== "none") {
    mkdirSync(`${dir}/shm`);
    if (shm === undefined) sys.mount("shm", `${dir}/shm`, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, `mode=1777,size=${shmSize}`);
    else bindShm(sys, shm, `${dir}/shm`);
  }
  mkdirSync(`${dir}/mqueue`);
  sys.mount("mqueue", `${dir}/mqueue`, "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC);
  for (const [name, target] of DEV_LINKS) symlinkSync(target, `${dir}/${name}`);
  chmodSync(dir, 0o755);
}

/**
 * Binds the /dev/shm of a shared IPC namespace, through an fd checked to be on a tmpfs: a
 * shareable container that ends meanwhile unmounts its own, and the bind must not then take the
 * directory left under it (a /dev/shm on the state root's disk, shared with no one).
 */
function bindShm(sys: Syscall, source: string, target: string): void {
  let fd: number;
  try {
    fd = openSync(source, constants.O_RDONLY | constants.O_DIRECTORY);
  } catch (err) {
    throw new Error(`--dev-shm ${source}: ${(err as NodeJS.ErrnoException).code}: the container whose IPC namespace this one joins has exited`);
  }
  try {
    if (statfsSync(`/proc/self/fd/${fd}`).type !== TMPFS_MAGIC) throw new Error(`--dev-shm ${source}: no tmpfs is mounted there: the container whose IPC namespace this one joins has exited`);
    sys.mount(`/proc/self/fd/${fd}`, target, null, MS_BIND);
  } finally {
    closeSync(fd);
  }
  sys.mountSetattr(target, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, 0, false);
}

/** How makeNode gives a container a device: mknod (with an owner other than the host node's), or a bind mount. */
export interface NodeOptions {
  mknod: boolean;
  /** In a user namespace: its root's host ids, which own the nodes made for it. */
  owner?: { uid: number; gid: number } | undefined;
}

/** The six harmless devices (see makeNode). */
function makeDevices(sys: Syscall, dir: string, nodes: NodeOptions): void {
  for (const name of DEVICES) makeNode(sys, `/dev/${name}`, `${dir}/${name}`, nodes);
}

/**
 * The host ids of root in PID's user namespace when it has one: the nodes made for the container
 * are its root's, as they are container root's in Docker without one (the host's root, unmapped
 * there, would show as nobody and a 0600 node would not open).
 */
export function containerRootIds(pid: number): NodeOptions["owner"] {
  const root = (file: string) => {
    for (const line of readFileSync(`/proc/${pid}/${file}`, "utf8").trim().split("\n")) {
      const [inside, outside, count] = line.trim().split(/\s+/).map(Number);
      if (inside === 0 && count! > 0) return outside;
    }
    return undefined;
  };
  const uid = root("uid_map");
  const gid = root("gid_map");
  return uid === undefined || gid === undefined || (uid === 0 && gid === 0) ? undefined : { uid, gid };
}

/**
 * The host's device node `source` at `target` in the container. With mknod, a node of its own
 * with the host node's numbers, mode and owner (or container root's, see containerRootIds), for a
 * /dev where nodes open: a device cgroup decides which. Otherwise, and where mknod is refused
 * (corerun itself in a container without CAP_MKNOD), a bind mount of the host's node, which works
 * without it (rootless too), made read-only: through a writable bind, container root's chmod,
 * chown or touch would change the host's node itself (its reads and writes are the device's,
 * which a read-only mount lets through). A target there already is kept when it is the same
 * device, and bound over when it is a plain file (one an earlier bind left in a rootfs).
 */
export function makeNode(sys: Syscall, source: string, target: string, nodes: NodeOptions): void {
  const st = statSync(source);
  if (nodes.mknod) {
    try {
      const { major, minor } = devNumbers(st.rdev);
      sys.mknod(target, st.mode & 0o177777, major, minor);
      // mknod's mode passes through the umask.
      chmodSync(target, st.mode & 0o7777);
      chownSync(target, nodes.owner?.uid ?? st.uid, nodes.owner?.gid ?? st.gid);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EEXIST" && keep(target, st)) return;
      if (code !== "EEXIST" && code !== "EPERM") throw err;
    }
  }
  try {
    closeSync(openSync(target, "wx", 0o600));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    if (keep(target, st)) return;
  }
  sys.mount(source, target, null, MS_BIND);
  sys.mountSetattr(target, MOUNT_ATTR_RDONLY, 0, false);
}

/** Whether a target that exists is that device already (true), a plain file to bind over (false), or else in the way. */
function keep(target: string, st: Stats): boolean {
  const there = lstatSync(target);
  if (there.isFile()) return false;
  if (there.rdev === st.rdev && (there.mode & 0o170000) === (st.mode & 0o170000)) return true;
  throw new Error(`${target} is another device already; the host's node cannot go there`);
}

/** --device: each node at its place under the container's /dev. */
export function makeGivenDevices(sys: Syscall, rootfs: string, devices: readonly Pick<DeviceSpec, "source" | "target">[], nodes: NodeOptions): void {
  for (const d of devices) {
    const target = resolveInRoot(rootfs, d.target);
    mkdirSync(dirname(target), { recursive: true, mode: 0o755 });
    makeNode(sys, d.source, target, nodes);
  }
}

/**
 * The devices and links runtime-linux.md requires in a /dev that an OCI bundle mounts itself:
 * null, zero, full, random, urandom, tty, and /dev/fd, stdin, stdout, stderr, ptmx.
 */
export function populateDev(sys: Syscall, dev: string): void {
  mkdirSync(dev, { recursive: true });
  // As runc outside a user namespace: nodes of its own, which config.json's device cgroup guards.
  makeDevices(sys, dev, { mknod: true });
  for (const [name, target] of DEV_LINKS) {
    if (name === "core") continue;
    try {
      symlinkSync(target, `${dev}/${name}`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
  }
}

/** A read-only sysfs of the container's network namespace, with Docker's /sys masks; unmasked, read-write and whole. */
export function mountSys(sys: Syscall, rootfs: string, unmasked = false): void {
  const path = resolveInRoot(rootfs, "/sys");
  sys.mount("sysfs", path, "sysfs", (unmasked ? 0 : MS_RDONLY) | MS_NOSUID | MS_NODEV | MS_NOEXEC);
  if (!unmasked) maskPaths(sys, rootfs, pathsUnder(MASKED_PATHS, "/sys"));
}

/** Host /dev entries a container never gets: its own devpts, shm and mqueue stand in for them. */
const NOT_HOST_DEVICES = new Set(["pts", "shm", "mqueue", "console", ".lxc", ".udev", ...DEVICES, ...DEV_LINKS.map(([name]) => name)]);

/**
 * Docker's --privileged: every character and block device of the host's /dev (as seen from the
 * mount namespace, which is still the host's tree before pivot_root), at the same path in the
 * container's /dev (see makeNode).
 */
export function hostDevices(sys: Syscall, rootfs: string, nodes: NodeOptions, dir = "/dev"): void {
  const dev = resolveInRoot(rootfs, "/dev");
  for (const name of readdirSync(dir)) {
    if (dir === "/dev" && NOT_HOST_DEVICES.has(name)) continue;
    const host = `${dir}/${name}`;
    const st = lstatSync(host);
    const target = `${dev}${host.slice("/dev".length)}`;
    if (st.isDirectory()) {
      mkdirSync(target, { recursive: true, mode: 0o755 });
      hostDevices(sys, rootfs, nodes, host);
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      makeNode(sys, host, target, nodes);
    }
  }
}

/**
 * The volumes and --tmpfs mounts, the shallower first (as Docker sorts them), so that one below
 * another lands on it rather than under it. A volume's "ro" is recursive (mount_setattr), so
 * submounts of the volume are read-only too. Without --dev every one is nodev.
 */
export function mountVolumes(sys: Syscall, rootfs: string, opts: MountOptions, userns?: number): void {
  const depth = (p: string) => p.split("/").filter(Boolean).length;
  const mounts = [...opts.volumes.map((v) => ({ target: v.target, v })), ...(opts.tmpfs ?? []).map((t) => ({ target: t.target, t }))];
  const tmpfsDone: string[] = [];
  for (const m of mounts.sort((a, b) => depth(a.target) - depth(b.target))) {
    const target = resolveInRoot(rootfs, m.target);
    // A mount point below a tmpfs mounted here is gone with the rootfs's copy of it: it is made
    // again in that tmpfs, which is the container's own.
    if (tmpfsDone.some((t) => target.startsWith(`${t}/`)) && !existsSync(target)) {
      mkdirSync(dirname(target), { recursive: true });
      if ("v" in m && !statSync(m.v.source).isDirectory()) closeSync(openSync(target, "w", 0o644));
      else mkdirSync(target);
    }
    if ("t" in m) {
      tmpfsDone.push(target);
      const t = m.t;
      const flags = (t.readonly ? MS_RDONLY : 0) | (t.exec ? 0 : MS_NOEXEC) | (t.suid ? 0 : MS_NOSUID) | (t.dev && opts.dev ? 0 : MS_NODEV);
      sys.mount("tmpfs", target, "tmpfs", flags, t.data.join(","));
      continue;
    }
    const v = m.v;
    if (v.idmap && userns !== undefined) idmappedBind(sys, v.source, target, userns);
    else sys.mount(v.source, target, null, MS_BIND | MS_REC);
    const attrs = (opts.dev ? 0 : MOUNT_ATTR_NODEV) | (v.readonly ? MOUNT_ATTR_RDONLY : 0);
    if (attrs) sys.mountSetattr(target, attrs, 0, true);
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

/**
 * Moves the container's own /proc, which corerun-exec --mount-proc mounted from inside its PID
 * namespace, into the rootfs. The top mount on /proc must be that one and not the host's copy,
 * which would show every host process: the target must be there under its own namespace's pid
 * (`nsPid`: 1 in a new PID namespace, another number in one joined by path), with its start time.
 */
export function moveProc(sys: Syscall, rootfs: string, target: { nsPid: number | undefined; startTime: number | undefined }): void {
  const seen = target.nsPid === undefined ? undefined : procStartTime(target.nsPid, "/proc");
  if (target.startTime === undefined || seen !== target.startTime) {
    throw new Error("the /proc of the target's mount namespace is not its own; start it with corerun-exec --mount-proc");
  }
  sys.mount("/proc", resolveInRoot(rootfs, "/proc"), null, MS_MOVE);
}

export function mountPointsFor(opts: MountOptions): MountPoint[] {
  return missingMountPoints(opts.rootfs, [...opts.volumes, ...tmpfsPoints(opts.tmpfs ?? [])]);
}
