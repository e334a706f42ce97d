/**
 * corerun-mount --oci CONFIG: the container's tree as an OCI bundle's config.json lists it, in
 * order, instead of corerun's own /dev, /sys and volumes. Each destination is resolved inside the
 * rootfs (a symlink in the image cannot send a mount onto the host, CVE-2021-30465).
 */
import {
  chmodSync, closeSync, copyFileSync, lchownSync, lutimesSync, mkdirSync, mkdtempSync, openSync, readdirSync, readlinkSync, readSync, rmdirSync,
  statSync, lstatSync, symlinkSync, writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { bindRemountFlags, planMounts, type MountPlan, type Spec, MOUNT_FLAGS } from "@corerun/oci";
import { DEFAULT_PATH, findCommand, resolveInRoot } from "@corerun/rootfs";
import { CommandError, EXIT_NOT_FOUND } from "@corerun/cli";
import { isErrno, openPty, setWindowSize, type FdSender, MOUNT_ATTR_RDONLY, MS_BIND, MS_MOVE, MS_RDONLY, MS_REC, MS_REMOUNT, type Syscall } from "@corerun/syscall";
import { populateDev } from "./steps.ts";

/** Makes the mount point: a directory, or an empty file when a file is bind-mounted. */
function mountPoint(target: string, file: boolean): void {
  try {
    lstatSync(target);
    return;
  } catch {
    // missing: made below
  }
  mkdirSync(file ? dirname(target) : target, { recursive: true, mode: 0o755 });
  if (file) closeSync(openSync(target, "a", 0o644));
}

/** A cgroup mount: the container's own cgroup directories, one per hierarchy, as runc binds them on v1. */
function mountCgroups(sys: Syscall, target: string, plan: MountPlan, dirs: readonly { name: string; dir: string }[]): void {
  const ro = (plan.flags & MS_RDONLY) !== 0;
  const flags = plan.flags & ~(MS_RDONLY | MOUNT_FLAGS.BIND | MS_REC | MOUNT_FLAGS.REMOUNT);
  if (dirs.length === 1 && dirs[0]!.name === "") {
    sys.mount(dirs[0]!.dir, target, null, MS_BIND);
    sys.mount(null, target, null, MS_BIND | MS_REMOUNT | flags | (ro ? MS_RDONLY : 0));
    return;
  }
  sys.mount("tmpfs", target, "tmpfs", flags, "mode=755");
  for (const { name, dir } of dirs) {
    const at = `${target}/${name}`;
    mkdirSync(at, { recursive: true });
    sys.mount(dir, at, null, MS_BIND);
    sys.mount(null, at, null, MS_BIND | MS_REMOUNT | flags | (ro ? MS_RDONLY : 0));
  }
  if (ro) sys.mount(null, target, null, MS_REMOUNT | MS_RDONLY | flags);
}

function mountOne(sys: Syscall, rootfs: string, plan: MountPlan, cgroupDirs: readonly { name: string; dir: string }[]): void {
  const target = resolveInRoot(rootfs, plan.destination);
  if (plan.type === "bind") {
    let sourceIsDir = true;
    try {
      sourceIsDir = statSync(plan.source).isDirectory();
    } catch (err) {
      throw new Error(`bind mount source ${plan.source} (for ${plan.destination}) is missing (${(err as NodeJS.ErrnoException).code})`);
    }
    mountPoint(target, !sourceIsDir);
    sys.mount(plan.source, target, null, MS_BIND | (plan.flags & MS_REC));
    // A bind takes its per-mount flags (ro, nosuid, ...) only in a remount.
    const extra = bindRemountFlags(plan);
    if (extra) sys.mount(null, target, null, MS_BIND | MS_REMOUNT | extra);
  } else if (plan.type === "cgroup" || plan.type === "cgroup2") {
    mountPoint(target, false);
    mountCgroups(sys, target, plan, cgroupDirs);
  } else if (plan.copyUp) {
    mountPoint(target, false);
    copyUpTmpfs(sys, target, plan);
  } else {
    mountPoint(target, false);
    try {
      sys.mount(plan.source, target, plan.type, plan.flags, plan.data || null);
    } catch (err) {
      // devpts refuses gid=5 in a user namespace that does not map gid 5 (tty).
      if (plan.type !== "devpts" || !isErrno(err, "EINVAL") || !/gid=/.test(plan.data)) throw err;
      sys.mount(plan.source, target, plan.type, plan.flags, plan.data.split(",").filter((o) => !o.startsWith("gid=")).join(",") || null);
    }
  }
  if (plan.recursiveSet || plan.recursiveClear) sys.mountSetattr(target, plan.recursiveSet, plan.recursiveClear, true);
  if (plan.propagation) sys.mount(null, target, null, plan.propagation);
}

/**
 * tmpcopyup (podman's --read-only and --tmpfs ask for it): a tmpfs whose first contents are the
 * directory it covers, as runc makes it. The tmpfs is mounted on a directory of its own first
 * (in this mount namespace, private: the host sees none of it), the target's tree copied in with
 * its modes, owners, links and times, its root given the target's mode and owner, and the tmpfs
 * then moved onto the target.
 */
function copyUpTmpfs(sys: Syscall, target: string, plan: MountPlan): void {
  const stage = mkdtempSync(join(tmpdir(), "corerun-copyup-"));
  try {
    sys.mount(plan.source, stage, "tmpfs", plan.flags & ~MS_RDONLY, plan.data || null);
    try {
      copyTree(target, stage);
      const st = statSync(target);
      if (!/(^|,)mode=/.test(plan.data)) chmodSync(stage, st.mode & 0o7777);
      lchownSync(stage, st.uid, st.gid);
      if (plan.flags & MS_RDONLY) sys.mount(null, stage, null, MS_REMOUNT | plan.flags);
      sys.mount(stage, target, null, MS_MOVE);
    } catch (err) {
      sys.umount2(stage, 2 /* MNT_DETACH */);
      throw err;
    }
  } finally {
    rmdirSync(stage);
  }
}

/** What a directory holds, copied into another: directories, files and links, with modes, owners and times. */
function copyTree(from: string, to: string): void {
  for (const e of readdirSync(from, { withFileTypes: true })) {
    const src = join(from, e.name);
    const dst = join(to, e.name);
    const st = lstatSync(src);
    if (e.isDirectory()) {
      mkdirSync(dst);
      copyTree(src, dst);
    } else if (e.isSymbolicLink()) {
      symlinkSync(readlinkSync(src), dst);
    } else if (e.isFile()) {
      copyFileSync(src, dst);
    } else {
      // A fifo, socket or device node: not what a copied-up directory holds (runc copies files, links and directories too).
      continue;
    }
    lchownSync(dst, st.uid, st.gid);
    if (!e.isSymbolicLink()) chmodSync(dst, st.mode & 0o7777);
    lutimesSync(dst, st.atime, st.mtime);
  }
}

/**
 * Every mount of the config except /proc, which corerun-exec mounted from inside the PID
 * namespace (moved in by --proc); then the devices the spec requires and linux.devices. The
 * rootfs itself is not made nodev: config.json's mounts and device cgroup decide.
 */
export function mountOciTree(sys: Syscall, rootfs: string, spec: Spec, cgroupDirs: readonly { name: string; dir: string }[]): void {
  const plans = planMounts(spec);
  for (const plan of plans) {
    if (plan.type === "proc" && plan.destination.replace(/\/+$/, "") === "/proc") continue;
    mountOne(sys, rootfs, plan, cgroupDirs);
  }
  // A bind-mounted host /dev already has its devices; a tmpfs one gets those runtime-linux.md requires.
  const devBind = plans.some((p) => p.destination.replace(/\/+$/, "") === "/dev" && p.type === "bind");
  if (!devBind) populateDev(sys, resolveInRoot(rootfs, "/dev"));
  for (const d of spec.linux?.devices ?? []) {
    const target = resolveInRoot(rootfs, d.path);
    mkdirSync(dirname(target), { recursive: true });
    try {
      const kind = d.type === "b" ? 0o060000 : d.type === "p" ? 0o010000 : 0o020000;
      const mode = (d.fileMode ?? 0o666) & 0o7777;
      sys.mknod(target, kind | mode, d.major ?? 0, d.minor ?? 0);
      // mknod's mode passes through the umask (022: a 0666 node came out 0644, closed to users
      // other than root): the config's mode is set as given.
      chmodSync(target, mode);
    } catch (err) {
      if (!isErrno(err, "EEXIST")) throw new Error(`linux.devices ${d.path}`, { cause: err });
    }
    if (d.uid !== undefined || d.gid !== undefined) lchownSync(target, d.uid ?? 0, d.gid ?? 0);
  }
}

/**
 * root.readonly: the container's / read-only, after pivot_root (runc does it from init).
 * mount_setattr adds the one attribute: a bind remount sets the mount's flags to exactly those
 * it is given, and would clear the nodev that keeps device nodes in the rootfs from opening.
 */
export function readonlyRoot(sys: Syscall): void {
  sys.mountSetattr("/", MOUNT_ATTR_RDONLY, 0, false);
}

/**
 * process.terminal: a pty from the container's own devpts (after pivot_root, so /dev/pts is
 * the container's instance), its peer bound on /dev/console, the master sent to the caller's
 * console socket (connected before the namespaces changed: the path is the host's). Only the
 * engine holds the master afterwards.
 */
export function sendConsole(sys: Syscall, spec: Spec, socket: number, sendFd: FdSender): void {
  const { master, peer, index } = openPty("/dev/pts");
  try {
    const size = spec.process?.consoleSize;
    if (size) setWindowSize(master, size.height, size.width);
    mountPoint("/dev/console", true);
    sys.mount(`/dev/pts/${index}`, "/dev/console", null, MS_BIND);
    sendFd(socket, master, "/dev/pts/ptmx");
  } finally {
    closeSync(master);
    closeSync(peer);
    closeSync(socket);
  }
}

/**
 * The program must exist in the finished tree, checked where runc checks it (at create), so
 * that an engine reports a bad command on create, in runc's words, which podman and Docker map
 * to exit statuses 127 and 126.
 */
export function checkProgram(spec: Spec): void {
  const args = spec.process?.args;
  const cmd = args?.[0];
  if (!cmd || (cmd.includes("/") && !cmd.startsWith("/"))) return;
  const path = spec.process!.env?.find((e) => e.startsWith("PATH="))?.slice(5);
  try {
    findCommand("/", cmd, path ?? DEFAULT_PATH);
  } catch (err) {
    if (!(err instanceof CommandError)) throw err;
    const why = err.exitCode === EXIT_NOT_FOUND ? (cmd.includes("/") ? "no such file or directory" : "executable file not found in $PATH") : "permission denied";
    throw new CommandError(`exec: "${cmd}": ${why} (${err.message})`, err.exitCode);
  }
}

/**
 * The moment the runtime-spec gives createRuntime and createContainer hooks: the tree is built
 * and the container's process is ready, the root not yet pivoted. The caller runs them and
 * answers with a line.
 */
export function pauseForHooks(): void {
  writeSync(1, "built\n");
  const buf = Buffer.alloc(64);
  let line = "";
  while (!line.includes("\n")) {
    const n = readSync(0, buf, 0, buf.length, null);
    if (n === 0) throw new Error("the hooks' caller went away before the pivot");
    line += buf.toString("utf8", 0, n);
  }
}
