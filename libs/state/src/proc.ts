import { closeSync, existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { constants as osConstants } from "node:os";
import { SyscallError } from "@corerun/syscall";

/**
 * A process's pid in each PID namespace it is in, outermost (that of the /proc it is read from)
 * first: the NSpid line of /proc/PID/status. Empty when it is gone.
 */
export function nsPids(pid: number | "self", proc = "/proc"): number[] {
  let status: string;
  try {
    status = readFileSync(`${proc}/${pid}/status`, "utf8");
  } catch {
    return [];
  }
  const line = status.split("\n").find((l) => l.startsWith("NSpid:"));
  return line ? line.slice(6).trim().split(/\s+/).map(Number) : [];
}

/**
 * A process's start time in clock ticks since boot (field 22 of /proc/PID/stat), or undefined
 * when it is gone. Recorded next to each pid, it tells a live process from a reused pid.
 */
export function procStartTime(pid: number, proc = "/proc"): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`${proc}/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: count fields after the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const value = Number(fields[19]);
  return Number.isFinite(value) ? value : undefined;
}

/**
 * Whether the recorded process is still the same live process. A zombie is not: it has exited
 * and waits only for its parent (often the host's init, which may take its time) to reap it.
 */
export function isAlive(ref: { pid: number; startTime: number } | undefined, proc = "/proc"): boolean {
  if (ref === undefined || procStartTime(ref.pid, proc) !== ref.startTime) return false;
  try {
    const stat = readFileSync(`${proc}/${ref.pid}/stat`, "utf8");
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(")") + 2));
  } catch {
    return false;
  }
}

/**
 * A pidfd of the recorded process, or undefined when it is gone. The start time is checked after
 * the pidfd is open: from then on the fd names that process even if its pid is reused.
 */
export function openRecorded(sys: { pidfdOpen(pid: number): number }, ref: { pid: number; startTime: number } | undefined): number | undefined {
  if (!ref) return undefined;
  // Gone, as at most teardowns: no pidfd_open, whose ESRCH would cost a SyscallError (~0.5 ms).
  if (!existsSync(`/proc/${ref.pid}`)) return undefined;
  let fd: number;
  try {
    fd = sys.pidfdOpen(ref.pid);
  } catch {
    return undefined;
  }
  if (procStartTime(ref.pid) !== ref.startTime) {
    closeSync(fd);
    return undefined;
  }
  return fd;
}

/**
 * Whether two processes are in the same namespace of a kind ("mnt", "pid", "net", ...): the
 * device and inode of /proc/PID/ns/KIND name the namespace (namespaces(7)). A process that does
 * not exist throws ENOENT.
 */
export function sameNamespace(kind: string, a: number | "self", b: number | "self", proc = "/proc"): boolean {
  return sameInode(`${proc}/${a}/ns/${kind}`, `${proc}/${b}/ns/${kind}`);
}

/** Whether two paths name one file (two namespace files one namespace). */
export function sameInode(a: string, b: string): boolean {
  const [x, y] = [statSync(a), statSync(b)];
  return x.ino === y.ino && x.dev === y.dev;
}

/**
 * A process's OOM score adjustment (its children inherit it). Lowering it below the current value
 * needs CAP_SYS_RESOURCE, which a host's bounding set may lack (containerd's
 * restrict_oom_score_adj).
 */
export function setOomScoreAdj(pid: number | "self", value: number | undefined, option: string): void {
  if (value === undefined) return;
  const file = `/proc/${pid}/oom_score_adj`;
  try {
    writeFileSync(file, String(value));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "EACCES" && code !== "EPERM") throw err;
    throw new SyscallError({ syscall: "write", errno: osConstants.errno[code], path: file, context: `${option} ${value} (below the current value needs CAP_SYS_RESOURCE)` });
  }
}
