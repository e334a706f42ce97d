import koffi from "koffi";
import { realpathSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { createRequire } from "node:module";
import { SyscallError } from "./error.ts";

export type Fn = (...args: unknown[]) => number;

/**
 * Syscall numbers for calls without a glibc wrapper on every supported glibc, and for calls
 * whose wrapper does more than the call (setresuid, setresgid, setgroups: see linux.ts).
 */
const NR: Record<string, Record<string, number>> = {
  x64: { bpf: 321, keyctl: 250, seccomp: 317, pivot_root: 155, pidfd_open: 434, pidfd_send_signal: 424, mount_setattr: 442, open_tree: 428, move_mount: 429, setgroups: 116, setresuid: 117, setresgid: 119 },
  arm64: { bpf: 280, keyctl: 219, seccomp: 277, pivot_root: 41, pidfd_open: 434, pidfd_send_signal: 424, mount_setattr: 442, open_tree: 428, move_mount: 429, setresuid: 147, setresgid: 149, setgroups: 159 },
};

export function nr(name: string): number {
  const n = NR[process.arch]?.[name];
  if (n === undefined) throw new Error(`${name} has no syscall number for architecture ${process.arch}`);
  return n;
}

let lib: ReturnType<typeof koffi.load> | undefined;
const cache = new Map<string, Fn>();
let used = false;

/** koffi for the files of this library, noted as used: its first use loads its native addon. */
export function ffi(): typeof koffi {
  used = true;
  return koffi;
}

/**
 * What this process has loaded: koffi's native addon (whose destructors fsync fds 1 and 2 as
 * libc's exit runs them) and libc through it.
 */
export function ffiLoaded(): { addon: boolean; libc: boolean } {
  return { addon: used, libc: lib !== undefined };
}

/**
 * A libc function from its C prototype, declared on first use so that a tool that never calls
 * into libc never loads it. Files of this library declare what they need through this; nothing
 * outside libs/syscall touches koffi.
 */
export function fn(proto: string): Fn {
  let f = cache.get(proto);
  if (!f) {
    lib ??= ffi().load("libc.so.6");
    f = lib.func(proto) as unknown as Fn;
    cache.set(proto, f);
  }
  return f;
}

const structs = new Set<string>();

/** Declares a C struct for prototypes and variadic arguments ("NAME *"), once. */
export function struct(name: string, fields: Record<string, string>): void {
  if (structs.has(name)) return;
  ffi().struct(name, fields);
  structs.add(name);
}

/** errno of the last call made through fn or nativeFn. */
export function lastErrno(): number {
  return ffi().errno();
}

/** Turns a -1 return into a SyscallError, reading errno before anything else can change it. */
export function check(rc: number, syscall: string, path?: string): number {
  if (rc < 0) throw new SyscallError({ syscall, errno: lastErrno(), path });
  return rc;
}

let native: ReturnType<typeof koffi.load> | undefined;

/**
 * corerun's native helper (libs/syscall/native/*.c), built next to the bundles by
 * `npm run build`; CORERUN_NATIVE overrides where it is looked for.
 */
export function nativeFn(proto: string): Fn {
  let f = cache.get(`native:${proto}`);
  if (!f) {
    f = loadNative().func(proto) as unknown as Fn;
    cache.set(`native:${proto}`, f);
  }
  return f;
}

/** Loads the native helper once; a process whose root moves loads it before (corerun-exec). */
export function loadNative(): ReturnType<typeof koffi.load> {
  if (!native) {
    const path = process.env.CORERUN_NATIVE ?? join(dirname(realpathSync(process.argv[1] ?? ".")), "libcorerun.so");
    try {
      native = ffi().load(path);
    } catch {
      throw new Error(`corerun's native helper ${path} is missing: run npm run build (it needs a C compiler: apt-get install gcc)`);
    }
  }
  return native;
}

/** The node_modules directory koffi (and its native addon package) is installed in, seen from the running script. */
export function koffiModulesDir(): string {
  let dir = dirname(createRequire(realpathSync(process.argv[1] ?? ".")).resolve("koffi"));
  while (basename(dir) !== "node_modules" && dir !== dirname(dir)) dir = dirname(dir);
  return dir;
}
