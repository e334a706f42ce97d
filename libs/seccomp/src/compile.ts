import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { UsageError } from "@corerun/cli";
import { libseccomp, SCMP_ACT, SCMP_CMP, SECCOMP_FILTER_FLAGS, SyscallError, type SeccompArgCmp, type SeccompContext } from "@corerun/syscall";
import type { OciSeccomp, OciSeccompArg } from "./oci.ts";

const EPERM = 1;

/** The runtime spec's actions this compiler builds; SCMP_ACT_NOTIFY needs an agent and is refused. */
export const SECCOMP_ACTIONS = ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP", "SCMP_ACT_TRACE", "SCMP_ACT_LOG"];

function actionCode(action: string, errnoRet: number | undefined, source: string, where: string): number {
  switch (action) {
    case "SCMP_ACT_ALLOW": return SCMP_ACT.ALLOW;
    // runc's default for an ERRNO without errnoRet: EPERM.
    case "SCMP_ACT_ERRNO": return SCMP_ACT.ERRNO(errnoRet ?? EPERM);
    case "SCMP_ACT_KILL":
    case "SCMP_ACT_KILL_THREAD": return SCMP_ACT.KILL_THREAD;
    case "SCMP_ACT_KILL_PROCESS": return SCMP_ACT.KILL_PROCESS;
    case "SCMP_ACT_TRAP": return SCMP_ACT.TRAP;
    case "SCMP_ACT_TRACE": return SCMP_ACT.TRACE(errnoRet ?? EPERM);
    case "SCMP_ACT_LOG": return SCMP_ACT.LOG;
    case "SCMP_ACT_NOTIFY":
      throw new UsageError(`${source}: ${where}: SCMP_ACT_NOTIFY needs a seccomp agent (listenerPath), which corerun does not support yet; use another action`);
    default:
      throw new UsageError(`${source}: ${where}: unknown action "${action}"; use one of ${SECCOMP_ACTIONS.join(", ")}`);
  }
}

/** The kernel's seccomp(2) flags for a profile's `flags`. */
export function seccompFlags(oci: OciSeccomp, source = "linux.seccomp"): number {
  let flags = 0;
  for (const name of oci.flags ?? []) {
    const bit = SECCOMP_FILTER_FLAGS[name];
    if (bit === undefined) {
      const hint = name === "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" ? "it applies to a seccomp agent, which corerun does not support yet" : `use ${Object.keys(SECCOMP_FILTER_FLAGS).join(", ")}`;
      throw new UsageError(`${source}: flags: ${name} is not supported; ${hint}`);
    }
    flags |= bit;
  }
  return flags;
}

function argRules(args: readonly OciSeccompArg[], source: string, where: string): SeccompArgCmp[][] {
  const cmps = args.map((a) => {
    const op = SCMP_CMP[a.op];
    if (op === undefined) throw new UsageError(`${source}: ${where}: unknown comparison "${a.op}"; use one of ${Object.keys(SCMP_CMP).join(", ")}`);
    return { index: a.index, op, value: BigInt(a.value), valueTwo: BigInt(a.valueTwo ?? 0) };
  });
  // Conditions on one argument cannot be combined in one libseccomp rule; as runc does, each
  // then becomes a rule of its own (any of them matches).
  const indexes = cmps.map((c) => c.index);
  if (new Set(indexes).size !== indexes.length) return cmps.map((c) => [c]);
  return [cmps];
}

/** libseccomp's name for a runtime-spec architecture: SCMP_ARCH_X86_64 → x86_64. */
function archName(spec: string): string {
  return spec.replace(/^SCMP_ARCH_/, "").toLowerCase();
}

/** libseccomp's SCMP_FLTATR_CTL_OPTIMIZE attribute, and its value for a binary tree. */
const SCMP_FLTATR_CTL_OPTIMIZE = 8;
const BINARY_TREE = 2;

/**
 * Whether this libseccomp builds binary trees soundly: 2.5.0-2.5.3 build a broken one for an
 * architecture without rules (libseccomp issue #370, fixed in 2.5.4), and before 2.5 there is none.
 */
export function binaryTreeSupported(version = libseccomp.version()): boolean {
  const [major = 0, minor = 0, micro = 0] = version.split(".").map((n) => Number.parseInt(n, 10) || 0);
  return major > 2 || (major === 2 && (minor > 5 || (minor === 5 && micro >= 4)));
}

/**
 * A libseccomp filter, with its syscalls sorted into a binary tree instead of tested one after
 * another when `tree`: a syscall the kernel's cache of always-allowed calls cannot decide (one
 * with argument rules, or one that is denied) walks O(log n) comparisons, not hundreds
 * (personality() 310 to 160 ns with the default profile here), and the kernel takes the program
 * in 0.45 instead of 1.1 ms (it runs every syscall through it to fill that cache), on the
 * start's path right before the exec. A tree is ~280 instructions longer; where it would pass the
 * kernel's 4096, libseccomp 2.5.4 builds the sequence instead (measured: 2800 argument rules
 * gave a tree of 4039 and a sequence of 3754 instructions, 2900 gave 3848 for both).
 */
function newContext(defaultAction: number, tree: boolean): SeccompContext {
  const ctx = libseccomp.init(defaultAction);
  try {
    if (tree) libseccomp.attrSet(ctx, SCMP_FLTATR_CTL_OPTIMIZE, BINARY_TREE);
  } catch (err) {
    libseccomp.release(ctx);
    throw err;
  }
  return ctx;
}

/**
 * Compiles the runtime spec's `linux.seccomp` into a BPF program (struct sock_filter[]) with
 * libseccomp, ready for seccomp(SECCOMP_SET_MODE_FILTER). A syscall name, action, comparison,
 * flag or architecture that cannot be honoured is refused with one error naming the entry.
 *
 * The native architecture gets a filter of its own, merged with the one for the others (x86 and
 * x32 beside x86_64): syscalls newer than libseccomp are added there by number, and libseccomp
 * can translate only names it knows to another architecture. On those, a newer syscall gets the
 * default action. `tree`: sorted into a binary tree (newContext), where this libseccomp can.
 */
export function compileSeccomp(oci: OciSeccomp, source = "linux.seccomp", tree = binaryTreeSupported()): Buffer {
  if (oci.listenerPath) throw new UsageError(`${source}: listenerPath: a seccomp agent is not supported yet; remove listenerPath and SCMP_ACT_NOTIFY rules`);
  seccompFlags(oci, source);
  const defaultAction = actionCode(oci.defaultAction, oci.defaultErrnoRet, source, "defaultAction");
  const native = libseccomp.nativeArchName();
  const arches = [...new Set((oci.architectures ?? []).map((a) => {
    const name = archName(a);
    if (!a.startsWith("SCMP_ARCH_") || libseccomp.archToken(name) === 0) {
      throw new UsageError(`${source}: architectures: ${a} is not an architecture libseccomp ${libseccomp.version()} knows; use names such as SCMP_ARCH_X86_64, SCMP_ARCH_X86, SCMP_ARCH_X32`);
    }
    return name;
  }))];
  const others = arches.filter((a) => a !== native);
  const withNative = arches.length === 0 || arches.includes(native);
  const contexts: { ctx: SeccompContext; native: boolean }[] = [];
  try {
    if (withNative) contexts.push({ ctx: newContext(defaultAction, tree), native: true });
    if (others.length) {
      const ctx = newContext(defaultAction, tree);
      contexts.push({ ctx, native: false });
      for (const a of others) libseccomp.archAdd(ctx, libseccomp.archToken(a));
      libseccomp.archRemove(ctx, libseccomp.archToken(native));
    }
    for (const [i, rule] of (oci.syscalls ?? []).entries()) {
      const where = `syscalls[${i}] (${rule.names.join(", ")})`;
      const action = actionCode(rule.action, rule.errnoRet, source, where);
      // libseccomp refuses a rule whose action is the default one; it would change nothing.
      if (action === defaultAction) continue;
      const argSets = argRules(rule.args ?? [], source, where);
      for (const name of rule.names) {
        const known = libseccomp.knows(name);
        const onNative = libseccomp.resolve(name, native);
        if (!known && onNative.kind === "unknown") {
          throw new UsageError(`${source}: ${where}: unknown syscall "${name}" (libseccomp ${libseccomp.version()} does not know it); check its spelling`);
        }
        for (const c of contexts) {
          // A name libseccomp knows goes in as its native (pseudo-)number, which it translates
          // for each architecture of the context; a newer one only by number, natively.
          let nr: number;
          if (known) nr = libseccomp.resolveNative(name);
          else if (c.native && onNative.kind === "number") nr = onNative.nr;
          else continue;
          for (const args of argSets) {
            try {
              libseccomp.ruleAdd(c.ctx, action, nr, args, name);
            } catch (err) {
              if (err instanceof SyscallError) throw new UsageError(`${source}: ${where}: libseccomp refused the rule for ${name} (${err.code}); check its action and args`, { cause: err });
              throw err;
            }
          }
        }
      }
    }
    const [first, second] = contexts;
    if (second) {
      libseccomp.merge(first!.ctx, second.ctx);
      contexts.pop();
    }
    return libseccomp.exportBpf(first!.ctx);
  } finally {
    for (const c of contexts) libseccomp.release(c.ctx);
  }
}

/** Bump when the compiled form of the same input changes. */
const CACHE_FORMAT = 3;

/** A program's place in the cache, and the program itself when it is not stored there yet. */
export interface CachedProgram {
  path: string;
  compiled: Buffer | undefined;
  /** The input it was compiled from, stored beside it (KEY.json) and compared on every hit. */
  input: string;
}

/**
 * A cache key: FNV-1a over the input's UTF-8 bytes taken as 32-bit words, in two lanes of
 * different bases (a quarter of the rounds of a byte loop, which runs interpreted once per start).
 * Not a digest: every hit is checked against the stored input, so a collision only moves the
 * program to the next slot. node:crypto's sha256 would cost its ~4 ms load on every start.
 */
export function cacheKey(s: string): string {
  const length = Buffer.byteLength(s);
  // Zero-padded to whole words; Buffer.alloc is never a slice of the pool, so the view is aligned.
  const buf = Buffer.alloc((length + 3) & ~3);
  buf.write(s);
  const words = new Uint32Array(buf.buffer, buf.byteOffset, buf.length / 4);
  let a = 0x811c9dc5 ^ length;
  let b = 0x01000193;
  for (const w of words) {
    a = Math.imul(a ^ w, 0x01000193);
    b = Math.imul(b ^ w, 0x01000193) + (a >>> 11);
  }
  return (a >>> 0).toString(16).padStart(8, "0") + (b >>> 0).toString(16).padStart(8, "0");
}

/**
 * Where the program for `oci` is cached under the state root (ROOT/runtime/seccomp/KEY.bpf with
 * its input in KEY.json, KEY a hash of the input, then KEY-1, KEY-2... for inputs of the same
 * hash); compiled now, in memory, when it is not there yet. Writes nothing: a profile that cannot
 * be compiled is refused before anything exists.
 */
export function prepareSeccompProgram(root: string, oci: OciSeccomp, source = "linux.seccomp"): CachedProgram {
  return prepareByInput(root, JSON.stringify({ format: CACHE_FORMAT, arch: process.arch, oci }), () => oci, source);
}

/**
 * prepareSeccompProgram for a profile known by what determines its program (`id`: corerun's
 * built-in profile by its build, the capability set, the architecture and the kernel): a cached
 * program is found without resolving the profile, which `resolve` does only to compile it. A start
 * with the default profile resolved it (~300 rules), wrote it as JSON, hashed that and compared it
 * with the stored input: ~1.6 ms before its first process, now a read of a short file.
 */
export function prepareSeccompProgramById(root: string, id: Record<string, unknown>, resolve: () => OciSeccomp, source = "linux.seccomp"): CachedProgram {
  return prepareByInput(root, JSON.stringify({ format: CACHE_FORMAT, arch: process.arch, id }), resolve, source);
}

function prepareByInput(root: string, input: string, oci: () => OciSeccomp, source: string): CachedProgram {
  // Beside the copy of corerun-exec in ROOT/runtime: what the start path reads, kept across containers.
  const base = join(root, "runtime", "seccomp", cacheKey(input));
  for (let slot = 0; ; slot++) {
    const path = `${base}${slot ? `-${slot}` : ""}.bpf`;
    const stored = readStoredInput(path);
    if (stored === undefined || stored === input) {
      return { path, input, compiled: stored === input && existsSync(path) ? undefined : compileSeccomp(oci(), source) };
    }
  }
}

/** Where the input of a cached program is kept: KEY.json beside KEY.bpf. */
function inputPathOf(program: string): string {
  return program.replace(/\.bpf$/, ".json");
}

function readStoredInput(program: string): string | undefined {
  try {
    return readFileSync(inputPathOf(program), "utf8");
  } catch (err) {
    // Not there, or no state root there: the root's own check reports that, later.
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw err;
  }
}

/**
 * Stores a prepared program and its input (each atomically: a reader sees the whole file or none;
 * the input first, so that a program is never found without it) and returns its path. The
 * directory and files are world-readable: in a user namespace the process that loads the
 * program runs as the mapped uid.
 */
export function storeSeccompProgram(p: CachedProgram): string {
  // Compiled: its slot had no input stored, or a program without one (written again, the same).
  if (!p.compiled) return p.path;
  const dir = dirname(p.path);
  mkdirSync(dirname(dirname(dir)), { recursive: true, mode: 0o700 });
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  chmodSync(dirname(dir), 0o755);
  chmodSync(dir, 0o755);
  for (const [path, data] of [[inputPathOf(p.path), p.input], [p.path, p.compiled]] as const) {
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, data, { mode: 0o644 });
    renameSync(tmp, path);
  }
  return p.path;
}

/**
 * The compiled program for `oci`, from the cache under the state root, compiled and stored on
 * first use. A container start then only reads a file: libseccomp is not on the start path.
 */
export function seccompProgram(root: string, oci: OciSeccomp, source = "linux.seccomp"): string {
  return storeSeccompProgram(prepareSeccompProgram(root, oci, source));
}
