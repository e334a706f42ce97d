import { closeSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { joinCgroupFds } from "@corerun/cgroup";
import {
  isErrno, CLONE_NEWCGROUP, CLOSE_RANGE_CLOEXEC, FD_CLOEXEC, PR_CAPBSET_DROP, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, PR_SET_NO_NEW_PRIVS, MS_NODEV, MS_NOEXEC, MS_NOSUID, O_DIRECTORY, O_NONBLOCK, O_PATH, S_IFDIR, S_IFMT, uname, type Syscall,
} from "@corerun/syscall";
import { endTrace, mark, UsageError } from "@corerun/cli";
import { sysctlNamespace } from "@corerun/oci";
import { findCommand, type Credentials, MASKED_PATHS, maskDir, maskFile, pathsUnder, READONLY_PATHS, readonlyPath } from "@corerun/rootfs";
import type { ExecOptions } from "./args.ts";

/**
 * procfs shows the PID namespace of the process that mounts it, so this mount must be made from
 * inside the container's PID namespace: a /proc mounted from outside lists the host's processes.
 * It is made before "ready", over the /proc the mount namespace started with: in a user
 * namespace the kernel refuses a new procfs unless one is already fully visible
 * (mount_too_revealing), which is no longer so once the old root is gone. corerun-mount --proc
 * moves it into the rootfs before pivot_root.
 */
export function mountProc(sys: Syscall): void {
  mkdirSync("/proc", { recursive: true });
  sys.mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC);
}

/** What maskProcAt needs, taken before ready: the new /proc, and a copy of /dev/null. */
export interface ProcMasks {
  proc: number;
  /** A detached bind mount of /dev/null (open_tree), for the first file masked. */
  devNull: number;
}

const MASKED_IN_PROC = pathsUnder(MASKED_PATHS, "/proc").map((p) => p.slice("/proc".length));
const READONLY_IN_PROC = pathsUnder(READONLY_PATHS, "/proc").map((p) => p.slice("/proc".length));

/**
 * Right after mountProc, before ready: from then on corerun-mount may move /proc, pivot the root
 * and detach the old one, and with it the host's /dev, which a bind mount made later could no
 * longer take /dev/null from (the container's /dev is not in reach before the pivot).
 */
export function openProcMasks(sys: Syscall): ProcMasks {
  const proc = openSync("/proc", O_PATH | O_DIRECTORY);
  try {
    return { proc, devNull: sys.openTree("/dev/null", false) };
  } catch (err) {
    closeSync(proc);
    throw err;
  }
}

/**
 * Docker's /proc masks, made after ready while corerun-mount moves /proc into the rootfs and
 * pivots: each path is reached through the fd of the new procfs (statx relative to it,
 * /proc/self/fd/N for the mounts) wherever it is mounted at that moment, and MS_MOVE takes the
 * masks made before it along. The first file masked gets the copy of /dev/null, the others a bind
 * mount of it (attached by then, so in reach whatever the root is).
 */
export function maskProcAt(sys: Syscall, m: ProcMasks, readonly = true): void {
  const root = `/proc/self/fd/${m.proc}`;
  let devNull: string | undefined;
  try {
    for (const p of MASKED_IN_PROC) {
      const mode = sys.statMode(p.slice(1), m.proc);
      if (mode === undefined) continue;
      const path = `${root}${p}`;
      if ((mode & S_IFMT) === S_IFDIR) maskDir(sys, path);
      else if (devNull) maskFile(sys, path, devNull);
      else {
        sys.moveMount(m.devNull, path);
        devNull = path;
      }
    }
    if (readonly) readonlyProcAt(sys, m.proc);
  } finally {
    closeSync(m.proc);
    closeSync(m.devNull);
  }
}

/**
 * Docker's read-only paths of /proc (/proc/sys among them), through an fd of the procfs. A
 * container with --sysctl gets them after its sysctls are written, after go.
 */
export function readonlyProcAt(sys: Syscall, proc: number): void {
  for (const p of READONLY_IN_PROC) if (sys.statMode(p.slice(1), proc) !== undefined) readonlyPath(sys, `/proc/self/fd/${proc}${p}`);
}

/** What the kernel's refusal of a sysctl's write means. */
const SYSCTL_HINTS: Record<string, string> = {
  ENOENT: "this kernel has no such sysctl (sysctl -a lists them)",
  EINVAL: "the kernel refused the value",
  EACCES: "read-only here (in a user namespace some are the host's to set)",
  EPERM: "read-only here (in a user namespace some are the host's to set)",
};

/**
 * Namespaced sysctls (checked by parseSysctl), written as root through /proc/sys, whose files
 * show the writer's own namespaces. A key with a slash is a path (an interface named eth0.100
 * keeps its dot), else its dots are.
 */
export function writeSysctls(entries: readonly { key: string; value: string }[], option: string): void {
  for (const { key, value } of entries) {
    // Checked again here: a config given to corerun-exec by hand has not been through create.
    const kind = sysctlNamespace(key);
    if ("refused" in kind) throw new Error(`${option} ${key}: ${kind.refused}`);
    const path = `/proc/sys/${key.includes("/") ? key : key.replaceAll(".", "/")}`;
    try {
      writeFileSync(path, value);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? "EIO";
      throw new Error(`${option} ${key}=${value}: write ${path}: ${code}; ${SYSCTL_HINTS[code] ?? "only a sysctl of the container's own namespaces can be set"}`);
    }
  }
}

export function setHostname(sys: Syscall, name: string | undefined): string {
  if (name !== undefined) sys.sethostname(name);
  return name ?? uname().nodename;
}

export function enterWorkdir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
    process.chdir(dir);
  } catch (err) {
    throw new Error(`working directory ${dir}: ${workdirRefusal(dir, err as NodeJS.ErrnoException)}; give -w a directory the container has, or one it can create`);
  }
}

/**
 * Why a working directory could not be made or entered, in the kernel's words: a recursive mkdir
 * reports ENOENT for a parent it could not make (on a read-only root, EROFS), and EEXIST for a
 * file in the way; the first component that is missing or no directory names the real cause.
 */
function workdirRefusal(dir: string, err: NodeJS.ErrnoException): string {
  const parts = dir.split("/").filter(Boolean);
  for (let i = 1; i <= parts.length; i++) {
    const path = `/${parts.slice(0, i).join("/")}`;
    let st;
    try {
      st = statSync(path);
    } catch {
      try {
        mkdirSync(path);
      } catch (e) {
        return `cannot create ${path} (${(e as NodeJS.ErrnoException).code ?? "error"})`;
      }
      continue;
    }
    if (!st.isDirectory()) return `${path} is not a directory (ENOTDIR)`;
  }
  return `${err.syscall ?? "chdir"}: ${err.code ?? err.message}`;
}

/**
 * Joining right before the exec keeps corerun-exec's own threads and heap out of the limits (what
 * corerun asks under a limit that could stop its Node's load: cloneJoin); the cgroup namespace
 * comes after the join so that its root is the container's cgroup. `join` is the fds to join
 * through now, or the wait for a join begun earlier (startJoinCgroupFds).
 */
export function joinCgroup(sys: Syscall, join: readonly number[] | (() => void), newNamespace: boolean): void {
  if (typeof join === "function") join();
  else joinCgroupFds(join);
  if (newNamespace) sys.unshare(CLONE_NEWCGROUP);
}

/**
 * Node marks 0-2 close-on-exec and non-blocking, and holds other fds of its own (epoll, signal
 * pipes, the sync FIFOs). Only 0-2 may reach the container: every other fd is marked
 * close-on-exec (runc CVE-2024-21626 was a leaked host fd). O_NONBLOCK lives on the shared open
 * file description, so clearing it also restores blocking I/O for the processes sharing it.
 */
export function prepareFds(sys: Syscall, preserve = 0): void {
  sys.closeRange(3 + preserve, 0xffffffff, CLOSE_RANGE_CLOEXEC);
  // --preserve-fds: the caller's fds 3..3+N-1 (socket activation, podman --preserve-fds).
  for (let fd = 3; fd < 3 + preserve; fd++) sys.setFdFlags(fd, 0);
  for (const fd of [0, 1, 2]) {
    try {
      sys.setFdFlags(fd, sys.getFdFlags(fd) & ~FD_CLOEXEC);
      sys.setFileFlags(fd, sys.getFileFlags(fd) & ~O_NONBLOCK);
    } catch {
      // A closed stdio fd stays closed: the command gets what the caller gave.
    }
  }
}

/**
 * Shrinks the bounding set to the container's capabilities. A root process that execs gets the
 * bounding set as its permitted and effective sets, so this is what the command can do: without
 * it, container root could mount, load modules or reconfigure the host's network. It comes last
 * because corerun-exec itself still needs CAP_SYS_ADMIN for /proc and the hostname.
 */
export function dropCapabilities(sys: Syscall, keep: readonly number[], last: number): void {
  for (let cap = 0; cap <= last; cap++) if (!keep.includes(cap)) sys.prctl(PR_CAPBSET_DROP, cap);
  // The inheritable and ambient sets would otherwise carry a capability past the bounding set.
  sys.limitInheritable(keep);
  sys.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL);
}

export { resolveUser, type Credentials } from "@corerun/rootfs";

/** Reads a file of the container's root, "" when it has none. */
export function readEtc(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/**
 * Groups first, then gid, then uid: once the uid is not 0 the process may change neither. A
 * non-root uid also empties the permitted and effective capability sets, as in Docker.
 */
export function switchUser(sys: Syscall, c: Credentials): void {
  setGroups(sys, c.groups);
  sys.setresgid(c.gid);
  sys.setresuid(c.uid);
}

/**
 * setgroups(2) is refused for good in a user namespace whose /proc/self/setgroups says "deny":
 * an unprivileged user's namespace without subordinate ids, whose gid map the kernel accepts only
 * then (Linux 3.19, CVE-2014-8989). There, as in runc, the process keeps the groups it has: the
 * groups of /etc/group, or an OCI process's additionalGids, are passed over.
 */
export function setGroups(sys: Syscall, groups: readonly number[]): void {
  let policy = "allow";
  try {
    policy = readFileSync("/proc/self/setgroups", "utf8").trim();
  } catch {
    // No user namespace support in the kernel: nothing denies setgroups.
  }
  if (policy !== "deny") sys.setgroups(groups);
}

/**
 * The supplementary groups the process can take in its user namespace: setgroups(2) refuses a
 * gid the namespace does not map (EINVAL), and a namespace that denies setgroups (an unprivileged
 * user's) takes none. The container's /etc/group gids it does not map are left out; --group-add's
 * (`added`) are refused in one line.
 */
export function groupsInNamespace(groups: readonly number[], added: readonly number[], gidMap: string, setgroups: string): number[] {
  if (setgroups === "deny" && added.length) throw new UsageError("--group-add: this user namespace denies setgroups (a rootless container without /etc/subgid ranges); drop --group-add");
  const ranges = gidMap.split("\n").filter((l) => l.trim()).map((l) => l.trim().split(/\s+/).map(Number) as [number, number, number]);
  const mapped = (g: number) => ranges.some(([inside, , count]) => g >= inside && g < inside + count);
  const unmapped = added.find((g) => !mapped(g));
  if (unmapped !== undefined) throw new UsageError(`--group-add: gid ${unmapped} is not mapped in the container's user namespace; give a gid its --gidmap maps`);
  return groups.filter(mapped);
}

export function lastCapability(): number {
  return Number(readFileSync("/proc/sys/kernel/cap_last_cap", "utf8"));
}

/** goFd: the stub waits for go there (an OCI container's start) before its exec. */
export function execCommand(sys: Syscall, opts: Pick<ExecOptions, "command" | "noNewPrivs" | "seccomp"> & Partial<Pick<ExecOptions, "reportFd">>, env: string[], goFd?: number): never {
  const path = env.find((e) => e.startsWith("PATH="))?.slice(5);
  const file = findCommand("/", opts.command[0]!, path);
  // Nothing of this process runs after the exec; a seccomp filter may refuse the write after lockDown.
  mark("execve", { file, seccomp: opts.seccomp !== undefined });
  endTrace();
  // A session of its own, as runc's init makes: the container may not reach the caller's
  // terminal (TIOCSTI) or signal its process group.
  try {
    sys.setsid();
  } catch (err) {
    // EPERM: already a process group leader (run by hand from a shell); it keeps its session.
    if (!isErrno(err, "EPERM")) throw err;
  }
  sys.resetSignals();
  if (opts.noNewPrivs) sys.prctl(PR_SET_NO_NEW_PRIVS, 1);
  return sys.execStub(file, opts.command, env, opts.seccomp, goFd, opts.reportFd);
}

/**
 * no_new_privs, then the seccomp filter: every syscall made after the filter is in place must
 * pass it, so it goes in as late as it can. The kernel takes a filter without no_new_privs only
 * from a process with CAP_SYS_ADMIN in its user namespace: a user other than root loses it, so
 * the filter goes in before the user changes (runc's order). Otherwise execCommand's exec loads
 * it last (corerun-exec keeps its effective capabilities until then; only the bounding set
 * shrinks before).
 */
export function lockDown(sys: Syscall, opts: Pick<ExecOptions, "noNewPrivs" | "seccomp">): void {
  if (opts.noNewPrivs) sys.prctl(PR_SET_NO_NEW_PRIVS, 1);
  if (opts.seccomp) sys.seccompFilter(opts.seccomp.program, opts.seccomp.flags);
}
