import { check, fn } from "./_libc.ts";

/** struct utsname on Linux: six fields of 65 bytes (__NEW_UTS_LEN + 1), each NUL-terminated. */
const UTS_FIELD = 65;

export interface Uname {
  sysname: string;
  /** The hostname of the caller's UTS namespace. */
  nodename: string;
  release: string;
  machine: string;
}

/**
 * uname(2), as node:os's hostname() and release() read it: node:os costs ~0.5 ms of load in the
 * process that imports it, on a container's start path (corerun, corerun-exec).
 */
export function uname(): Uname {
  const buf = Buffer.alloc(6 * UTS_FIELD);
  check(fn("int uname(_Out_ void *buf)")(buf), "uname");
  const field = (i: number) => {
    const b = buf.subarray(i * UTS_FIELD, (i + 1) * UTS_FIELD);
    const end = b.indexOf(0);
    return b.subarray(0, end < 0 ? b.length : end).toString("utf8");
  };
  return { sysname: field(0), nodename: field(1), release: field(2), machine: field(4) };
}

/**
 * The CPUs this process may run on: the bits of its sched_getaffinity(2) mask, as node:os's
 * availableParallelism() counts them. The mask is sized for 8192 CPUs.
 */
export function cpuCount(): number {
  const mask = Buffer.alloc(1024);
  check(fn("int sched_getaffinity(int pid, size_t size, _Out_ void *mask)")(0, mask.length, mask), "sched_getaffinity");
  let n = 0;
  for (const byte of mask) for (let b = byte; b; b &= b - 1) n++;
  return Math.max(n, 1);
}
