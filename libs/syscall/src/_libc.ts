import koffi from "koffi";
import { SyscallError } from "./error.ts";

export type Fn = (...args: unknown[]) => number;

/** Syscall numbers for calls without a glibc wrapper on every supported glibc. */
const NR: Record<string, Record<string, number>> = {
  x64: { pivot_root: 155, pidfd_open: 434, pidfd_send_signal: 424, pidfd_getfd: 438, mount_setattr: 442 },
  arm64: { pivot_root: 41, pidfd_open: 434, pidfd_send_signal: 424, pidfd_getfd: 438, mount_setattr: 442 },
};

export function nr(name: string): number {
  const n = NR[process.arch]?.[name];
  if (n === undefined) throw new Error(`${name} has no syscall number for architecture ${process.arch}`);
  return n;
}

let lib: ReturnType<typeof koffi.load> | undefined;
const cache = new Map<string, Fn>();

/**
 * A libc function from its C prototype, declared on first use so that a tool that never calls
 * into libc never loads it. Files of this library declare what they need through this; nothing
 * outside libs/syscall touches koffi.
 */
export function fn(proto: string): Fn {
  let f = cache.get(proto);
  if (!f) {
    lib ??= koffi.load("libc.so.6");
    f = lib.func(proto) as unknown as Fn;
    cache.set(proto, f);
  }
  return f;
}

/** Turns a -1 return into a SyscallError, reading errno before anything else can change it. */
export function check(rc: number, syscall: string, path?: string): number {
  if (rc < 0) {
    const errno = koffi.errno();
    throw new SyscallError({ syscall, errno, path });
  }
  return rc;
}
