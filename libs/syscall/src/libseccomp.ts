import koffi from "koffi";
import { closeSync, fstatSync, readSync } from "node:fs";
import { check, ffi, fn } from "./_libc.ts";
import { SyscallError } from "./error.ts";

type Fn = (...args: unknown[]) => number;

let lib: ReturnType<typeof koffi.load> | undefined;
const cache = new Map<string, Fn>();

/**
 * A libseccomp function, declared on first use: only the tool that compiles a filter loads the
 * library; the process that installs a compiled program needs nothing but seccomp(2).
 */
function sfn(proto: string): Fn {
  let f = cache.get(proto);
  if (!f) {
    if (!lib) {
      try {
        lib = ffi().load("libseccomp.so.2");
      } catch {
        throw new Error("libseccomp.so.2 is missing: install Debian's libseccomp2 package (apt-get install libseccomp2)");
      }
    }
    f = lib.func(proto) as unknown as Fn;
    cache.set(proto, f);
  }
  return f;
}

/** libseccomp returns a negative errno instead of setting errno. */
function checkNeg(rc: number, call: string, what?: string): number {
  if (rc < 0) throw new SyscallError({ syscall: call, errno: -rc, path: what });
  return rc;
}

/** A libseccomp filter context (scmp_filter_ctx). */
export type SeccompContext = unknown;

/** One argument comparison of a rule: struct scmp_arg_cmp. */
export interface SeccompArgCmp {
  index: number;
  /** enum scmp_compare: SCMP_CMP_NE = 1 … SCMP_CMP_MASKED_EQ = 7. */
  op: number;
  value: bigint;
  valueTwo: bigint;
}

/** Actions (SCMP_ACT_*), as the kernel's SECCOMP_RET_* values. */
export const SCMP_ACT = {
  KILL_PROCESS: 0x80000000,
  KILL_THREAD: 0x00000000,
  TRAP: 0x00030000,
  ERRNO: (errno: number) => 0x00050000 | (errno & 0xffff),
  TRACE: (msg: number) => 0x7ff00000 | (msg & 0xffff),
  LOG: 0x7ffc0000,
  ALLOW: 0x7fff0000,
} as const;

/** enum scmp_compare. */
export const SCMP_CMP: Record<string, number> = {
  SCMP_CMP_NE: 1, SCMP_CMP_LT: 2, SCMP_CMP_LE: 3, SCMP_CMP_EQ: 4, SCMP_CMP_GE: 5, SCMP_CMP_GT: 6, SCMP_CMP_MASKED_EQ: 7,
};

/** What a name resolves to on one architecture. */
export type SyscallNumber =
  | { kind: "number"; nr: number }
  /** A real syscall that this architecture does not have (libseccomp's negative pseudo-numbers). */
  | { kind: "absent" }
  | { kind: "unknown" };

/**
 * Syscalls newer than the libseccomp that Debian 12 ships, by number. From Linux 5.1 on, a new
 * syscall gets the same number on every architecture (asm-generic's unified table), so one number
 * serves x86_64, i386, aarch64 and arm; the few that exist on one architecture only say which.
 */
const NEWER_SYSCALLS: Record<string, number | Record<string, number>> = {
  statmount: 457, listmount: 458, lsm_get_self_attr: 459, lsm_set_self_attr: 460, lsm_list_modules: 461, mseal: 462,
  setxattrat: 463, getxattrat: 464, listxattrat: 465, removexattrat: 466, open_tree_attr: 467,
  uretprobe: { x86_64: 335 },
  riscv_hwprobe: { riscv64: 258 },
};

/** libseccomp's architecture tokens (AUDIT_ARCH_*) for the architectures Node runs on. */
const NATIVE_ARCH: Record<string, string> = { x64: "x86_64", arm64: "aarch64", ia32: "x86", arm: "arm", riscv64: "riscv64", s390x: "s390x", ppc64: "ppc64le" };

export const libseccomp = {
  version(): string {
    const v = sfn("const void *seccomp_version(void)")() as unknown;
    const fields = ffi().decode(v, ffi().array("unsigned int", 3)) as number[];
    return fields.join(".");
  },
  /** libseccomp's name for the architecture this process runs on ("x86_64"). */
  nativeArchName(): string {
    const name = NATIVE_ARCH[process.arch];
    if (!name) throw new Error(`seccomp filters are not supported on ${process.arch}`);
    return name;
  },
  /** The token of an architecture name ("x86_64", "x32", "aarch64"), or 0 when libseccomp lacks it. */
  archToken(name: string): number {
    return (sfn("uint32_t seccomp_arch_resolve_name(const char *name)")(name) as number) >>> 0;
  },
  init(defaultAction: number): SeccompContext {
    const ctx = sfn("void *seccomp_init(uint32_t def_action)")(defaultAction) as unknown;
    if (!ctx) throw new Error(`seccomp_init: libseccomp refused the default action 0x${defaultAction.toString(16)}`);
    return ctx;
  },
  release(ctx: SeccompContext): void {
    sfn("void seccomp_release(void *ctx)")(ctx);
  },
  archAdd(ctx: SeccompContext, token: number): void {
    checkNeg(sfn("int seccomp_arch_add(void *ctx, uint32_t arch)")(ctx, token), "seccomp_arch_add");
  },
  archRemove(ctx: SeccompContext, token: number): void {
    checkNeg(sfn("int seccomp_arch_remove(void *ctx, uint32_t arch)")(ctx, token), "seccomp_arch_remove");
  },
  /**
   * A syscall's number on an architecture (a libseccomp name such as "x86"): libseccomp's own
   * table first, then the syscalls newer than it.
   */
  resolve(name: string, arch: string): SyscallNumber {
    const nr = sfn("int seccomp_syscall_resolve_name_arch(uint32_t arch, const char *name)")(this.archToken(arch), name) as number;
    if (nr >= 0) return { kind: "number", nr };
    if (nr !== -1) return { kind: "absent" };
    const newer = NEWER_SYSCALLS[name];
    if (newer === undefined) return { kind: "unknown" };
    const n = typeof newer === "number" ? newer : newer[arch];
    return n === undefined ? { kind: "absent" } : { kind: "number", nr: n };
  },
  /**
   * The native number libseccomp gives a name: negative pseudo-numbers stand for syscalls that
   * other architectures have (chown32), which it translates per architecture; -1 for unknown.
   */
  resolveNative(name: string): number {
    return sfn("int seccomp_syscall_resolve_name(const char *name)")(name) as number;
  },
  /** Whether libseccomp itself knows the name (it can then translate it to other architectures). */
  knows(name: string): boolean {
    return this.resolveNative(name) !== -1;
  },
  ruleAdd(ctx: SeccompContext, action: number, nr: number, args: readonly SeccompArgCmp[], what: string): void {
    // struct scmp_arg_cmp { unsigned int arg; enum scmp_compare op; scmp_datum_t datum_a, datum_b; }
    const buf = Buffer.alloc(24 * Math.max(args.length, 1));
    args.forEach((a, i) => {
      buf.writeUInt32LE(a.index, i * 24);
      buf.writeUInt32LE(a.op, i * 24 + 4);
      buf.writeBigUInt64LE(a.value, i * 24 + 8);
      buf.writeBigUInt64LE(a.valueTwo, i * 24 + 16);
    });
    const add = sfn("int seccomp_rule_add_array(void *ctx, uint32_t action, int syscall, unsigned int arg_cnt, const uint8_t *arg_array)");
    checkNeg(add(ctx, action, nr, args.length, buf), "seccomp_rule_add", what);
  },
  /** Moves every rule of `src` (other architectures, same attributes) into `dst`; src is gone. */
  merge(dst: SeccompContext, src: SeccompContext): void {
    checkNeg(sfn("int seccomp_merge(void *dst, void *src)")(dst, src), "seccomp_merge");
  },
  attrSet(ctx: SeccompContext, attr: number, value: number): void {
    checkNeg(sfn("int seccomp_attr_set(void *ctx, int attr, uint32_t value)")(ctx, attr, value), "seccomp_attr_set");
  },
  /** The filter as the kernel takes it: an array of struct sock_filter, through a memfd. */
  exportBpf(ctx: SeccompContext): Buffer {
    const fd = check(fn("int memfd_create(const char *name, unsigned int flags)")("seccomp", 1 /* MFD_CLOEXEC */), "memfd_create");
    try {
      checkNeg(sfn("int seccomp_export_bpf(void *ctx, int fd)")(ctx, fd), "seccomp_export_bpf");
      const out = Buffer.alloc(fstatSync(fd).size);
      let got = 0;
      while (got < out.length) got += readSync(fd, out, got, out.length - got, got);
      return out;
    } finally {
      closeSync(fd);
    }
  },
};
