import { getSystemErrorMap } from "node:util";

/** Hints for the refusals a user can act on, keyed by "syscall:ERRNO" or by "ERRNO". */
const HINTS: Record<string, string> = {
  EPERM: "run as root (sudo) or grant the missing capability",
  "unshare:EPERM": "creating namespaces needs root (CAP_SYS_ADMIN); run with sudo",
  "unshare:ENOSPC": "a namespace limit is reached; see /proc/sys/user/max_*_namespaces",
  "unshare:EINVAL": "this kernel or process cannot create that namespace here",
  "setns:EINVAL": "the fd is not a namespace of that type, or the process is multithreaded",
  "mount:ENOENT": "the mount source or target does not exist",
  "mount:EACCES": "a path component is not searchable or the filesystem is mounted noexec/ro",
  "pivot_root:EINVAL": "the new root must be a mount point and not on the same mount as the current root",
  "pidfd_open:ESRCH": "no process has that pid; it may have exited",
  "sethostname:EINVAL": "the hostname is longer than 64 bytes",
  "execve:ENOENT": "the command (or its interpreter) does not exist in the container's root filesystem",
  "execve:EACCES": "the command is not executable (mode bits or a noexec mount)",
  "seccomp:EACCES": "loading a filter needs no_new_privs or CAP_SYS_ADMIN",
  "seccomp:EINVAL": "the program is longer than the kernel's 4096 instructions, or this kernel lacks a flag",
  "execve:ENOEXEC": "the file is not a valid executable for this machine",
  "memfd_create:EACCES": "vm.memfd_noexec is 2, which forbids the executable memfd container programs are exec'd from (see Security in the README); set it to 1: sysctl vm.memfd_noexec=1",
};

/** Linux errnos that libuv's map (Node's) leaves out. */
const MORE_ERRNOS: Record<number, [string, string]> = { 8: ["ENOEXEC", "exec format error"], 10: ["ECHILD", "no child processes"] };

function errnoName(errno: number): { code: string; text: string } {
  const entry = getSystemErrorMap().get(-errno) ?? MORE_ERRNOS[errno];
  return entry ? { code: entry[0], text: entry[1] } : { code: `E${errno}`, text: `errno ${errno}` };
}

export interface SyscallErrorInit {
  syscall: string;
  errno: number;
  path?: string | undefined;
  context?: string | undefined;
}

/**
 * The one error type for a kernel refusal. Its message reads
 * "mount /proc: EPERM (operation not permitted): run as root…", so a user sees the syscall,
 * the errno name and what to do in one line.
 */
export class SyscallError extends Error {
  readonly syscall: string;
  readonly errno: number;
  readonly code: string;
  readonly path: string | undefined;
  readonly hint: string | undefined;

  constructor(init: SyscallErrorInit) {
    const { code, text } = errnoName(init.errno);
    const hint = HINTS[`${init.syscall}:${code}`] ?? HINTS[code];
    const where = init.path ? ` ${init.path}` : "";
    const context = init.context ? `${init.context}: ` : "";
    super(`${context}${init.syscall}${where}: ${code} (${text.toLowerCase()})${hint ? `; ${hint}` : ""}`);
    this.name = "SyscallError";
    this.syscall = init.syscall;
    this.errno = init.errno;
    this.code = code;
    this.path = init.path;
    this.hint = hint;
  }
}

export function isErrno(e: unknown, ...codes: string[]): e is SyscallError {
  return e instanceof SyscallError && codes.includes(e.code);
}
