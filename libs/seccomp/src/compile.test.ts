/**
 * The compiler, with the real libseccomp: programs are checked by running them on a small
 * classic-BPF interpreter over struct seccomp_data, the way the kernel runs them.
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, sep } from "node:path";
import { UsageError } from "@corerun/cli";
import { libseccomp } from "@corerun/syscall";
import { binaryTreeSupported, cacheKey, compileSeccomp, prepareSeccompProgram, prepareSeccompProgramById, seccompFlags, seccompProgram, storeSeccompProgram } from "./compile.ts";
import { defaultProfile, profileToOci } from "./profile.ts";
import type { OciSeccomp } from "./oci.ts";

const X86_64 = 0xc000003e;
const I386 = 0x40000003;
const X32_BIT = 0x40000000;
const ALLOW = 0x7fff0000;
const ERRNO = (e: number) => 0x00050000 | e;

/** Runs a seccomp BPF program on one syscall: struct seccomp_data { nr, arch, ip, args[6] }. */
function evaluate(prog: Buffer, arch: number, nr: number, args: readonly number[] = [], counter?: { steps: number }): number {
  const data = Buffer.alloc(64);
  data.writeUInt32LE(nr >>> 0, 0);
  data.writeUInt32LE(arch >>> 0, 4);
  args.forEach((a, i) => data.writeBigUInt64LE(BigInt(a), 16 + 8 * i));
  const mem = new Array<number>(16).fill(0);
  let a = 0;
  let x = 0;
  for (let pc = 0; pc < prog.length / 8;) {
    const code = prog.readUInt16LE(pc * 8);
    const jt = prog[pc * 8 + 2]!;
    const jf = prog[pc * 8 + 3]!;
    const k = prog.readUInt32LE(pc * 8 + 4);
    const jump = (cond: boolean) => (pc += 1 + (cond ? jt : jf));
    if (counter) counter.steps++;
    switch (code) {
      case 0x20: a = data.readUInt32LE(k); pc++; break;
      case 0x00: a = k; pc++; break;
      case 0x01: x = k; pc++; break;
      case 0x60: a = mem[k]!; pc++; break;
      case 0x61: x = mem[k]!; pc++; break;
      case 0x02: mem[k] = a; pc++; break;
      case 0x03: mem[k] = x; pc++; break;
      case 0x07: x = a; pc++; break;
      case 0x87: a = x; pc++; break;
      case 0x54: a = (a & k) >>> 0; pc++; break;
      case 0x05: pc += 1 + k; break;
      case 0x15: jump(a === k); break;
      case 0x25: jump(a > k); break;
      case 0x35: jump(a >= k); break;
      case 0x45: jump((a & k) !== 0); break;
      case 0x1d: jump(a === x); break;
      case 0x2d: jump(a > x); break;
      case 0x3d: jump(a >= x); break;
      case 0x06: return k;
      case 0x16: return a;
      default: throw new Error(`opcode 0x${code.toString(16)} at ${pc} is not interpreted here`);
    }
  }
  throw new Error("the program ran off its end");
}

function usageError(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof UsageError, String(e));
    assert.match(e.message, message);
    return true;
  });
}

const DOCKER_CAPS = [
  "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_CHROOT", "CAP_MKNOD", "CAP_AUDIT_WRITE", "CAP_SETFCAP",
];

const native = process.arch === "x64";

describe("compileSeccomp", { skip: !native && "the syscall numbers below are x86_64's" }, () => {
  const oci = profileToOci(defaultProfile(), { capabilities: DOCKER_CAPS, arch: "amd64", kernel: "6.18" }, "default")!;
  const prog = compileSeccomp(oci, "default");

  test("the default profile: allowed calls pass, the rest get EPERM", () => {
    assert.equal(prog.length % 8, 0);
    assert.equal(evaluate(prog, X86_64, 83 /* mkdir */), ALLOW);
    assert.equal(evaluate(prog, X86_64, 0 /* read */), ALLOW);
    for (const nr of [272 /* unshare */, 165 /* mount */, 166 /* umount2 */, 248 /* add_key */, 250 /* keyctl */, 246 /* kexec_load */, 321 /* bpf */, 298 /* perf_event_open */, 323 /* userfaultfd */, 304 /* open_by_handle_at */]) {
      assert.equal(evaluate(prog, X86_64, nr), ERRNO(1), `syscall ${nr}`);
    }
  });

  test("argument rules: clone without namespace flags, socket but AF_VSOCK, personality's exact values", () => {
    assert.equal(evaluate(prog, X86_64, 56, [0x11 /* SIGCHLD */]), ALLOW);
    assert.equal(evaluate(prog, X86_64, 56, [0x10000000 | 0x11 /* CLONE_NEWUSER */]), ERRNO(1));
    assert.equal(evaluate(prog, X86_64, 435 /* clone3 */), ERRNO(38));
    assert.equal(evaluate(prog, X86_64, 41, [2 /* AF_INET */]), ALLOW);
    assert.equal(evaluate(prog, X86_64, 41, [40 /* AF_VSOCK */]), ERRNO(1));
    assert.equal(evaluate(prog, X86_64, 135, [0x0008 /* PER_LINUX32 */]), ALLOW);
    assert.equal(evaluate(prog, X86_64, 135, [0x0008 | 0x40000 /* ADDR_NO_RANDOMIZE */]), ERRNO(1));
  });

  const noTree = !binaryTreeSupported() && `libseccomp ${libseccomp.version()} builds sequences only`;

  test("the syscalls are a binary tree: no syscall of any architecture walks more than a few dozen instructions", { skip: noTree }, () => {
    let longest = 0;
    for (const arch of [X86_64, I386]) {
      for (let nr = 0; nr < 470; nr++) {
        const counter = { steps: 0 };
        evaluate(prog, arch, nr, [], counter);
        longest = Math.max(longest, counter.steps);
      }
    }
    // One comparison after another, the longest path was 620 instructions.
    assert.ok(longest < 60, `longest path ${longest} instructions`);
  });

  test("the tree decides every syscall of every architecture as the sequence does", { skip: noTree }, () => {
    const sequence = compileSeccomp(oci, "default", false);
    assert.notDeepEqual(sequence, prog);
    const argSets = [[], [0x11], [0x10000000 | 0x11], [2], [40], [0x0008], [0xffffffff], [1, 2, 3], [0x40000]];
    for (const [arch, bit] of [[X86_64, 0], [X86_64, X32_BIT], [I386, 0]] as const) {
      for (let nr = 0; nr < 470; nr++) {
        for (const args of argSets) assert.equal(evaluate(prog, arch, nr | bit, args), evaluate(sequence, arch, nr | bit, args), `arch ${arch.toString(16)} nr ${nr | bit} args ${args}`);
      }
    }
  });

  test("binary trees only from libseccomp 2.5.4 (2.5.0-2.5.3 build broken ones, before 2.5 there are none)", () => {
    for (const v of ["2.5.4", "2.5.5", "2.6.0", "3.0.0"]) assert.equal(binaryTreeSupported(v), true, v);
    for (const v of ["2.5.3", "2.5.0", "2.4.4", "1.0.0"]) assert.equal(binaryTreeSupported(v), false, v);
  });

  test("i386 and x32 programs are filtered too, by their own numbers", () => {
    assert.equal(evaluate(prog, I386, 39 /* mkdir */), ALLOW);
    assert.equal(evaluate(prog, I386, 212 /* chown32 */), ALLOW);
    assert.equal(evaluate(prog, I386, 310 /* unshare */), ERRNO(1));
    assert.equal(evaluate(prog, X86_64, (83 | X32_BIT) >>> 0), ALLOW);
    assert.equal(evaluate(prog, X86_64, (272 | X32_BIT) >>> 0), ERRNO(1));
  });

  test("a syscall newer than libseccomp (mseal) is allowed by number", () => {
    assert.equal(evaluate(prog, X86_64, 462), ALLOW);
  });

  test("a custom profile: mkdir fails with the profile's errno, everything else is allowed", () => {
    const p = compileSeccomp({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 13 }] }, "deny.json");
    assert.equal(evaluate(p, X86_64, 83), ERRNO(13));
    assert.equal(evaluate(p, X86_64, 258 /* mkdirat */), ERRNO(13));
    assert.equal(evaluate(p, X86_64, 0), ALLOW);
  });

  test("two conditions on one argument are alternatives, as runc makes them", () => {
    const p = compileSeccomp({
      defaultAction: "SCMP_ACT_ERRNO",
      syscalls: [{ names: ["personality"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: 0, op: "SCMP_CMP_EQ" }, { index: 0, value: 8, op: "SCMP_CMP_EQ" }] }],
    }, "p.json");
    assert.equal(evaluate(p, X86_64, 135, [0]), ALLOW);
    assert.equal(evaluate(p, X86_64, 135, [8]), ALLOW);
    assert.equal(evaluate(p, X86_64, 135, [9]), ERRNO(1));
  });

  test("a rule with the default action changes nothing and is not an error", () => {
    const p = compileSeccomp({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["read"], action: "SCMP_ACT_ALLOW" }] }, "same.json");
    assert.equal(evaluate(p, X86_64, 0), ALLOW);
  });

  test("what cannot be honoured is refused, naming the source and the entry", () => {
    const base: OciSeccomp = { defaultAction: "SCMP_ACT_ALLOW" };
    usageError(() => compileSeccomp({ ...base, syscalls: [{ names: ["mkdri"], action: "SCMP_ACT_ERRNO" }] }, "bad.json"), /^bad\.json: syscalls\[0\] \(mkdri\): unknown syscall "mkdri" \(libseccomp [\d.]+ does not know it\); check its spelling$/);
    usageError(() => compileSeccomp({ ...base, syscalls: [{ names: ["mkdir"], action: "SCMP_ACT_DENY" }] }, "bad.json"), /^bad\.json: syscalls\[0\] \(mkdir\): unknown action "SCMP_ACT_DENY"; use one of SCMP_ACT_ALLOW/);
    usageError(() => compileSeccomp({ defaultAction: "ALLOW" }, "bad.json"), /^bad\.json: defaultAction: unknown action "ALLOW"/);
    usageError(() => compileSeccomp({ ...base, syscalls: [{ names: ["mkdir"], action: "SCMP_ACT_NOTIFY" }] }, "bad.json"), /SCMP_ACT_NOTIFY needs a seccomp agent/);
    usageError(() => compileSeccomp({ ...base, architectures: ["SCMP_ARCH_PDP11"] }, "bad.json"), /^bad\.json: architectures: SCMP_ARCH_PDP11 is not an architecture libseccomp [\d.]+ knows/);
    usageError(() => compileSeccomp({ ...base, syscalls: [{ names: ["kill"], action: "SCMP_ACT_ERRNO", args: [{ index: 0, value: 1, op: "SCMP_CMP_ABOUT" }] }] }, "bad.json"), /^bad\.json: syscalls\[0\] \(kill\): unknown comparison "SCMP_CMP_ABOUT"/);
    usageError(() => seccompFlags({ ...base, flags: ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"] }, "bad.json"), /seccomp agent/);
    usageError(() => compileSeccomp({ ...base, listenerPath: "/run/agent.sock" }, "bad.json"), /listenerPath/);
  });

  test("flags become seccomp(2) flag bits", () => {
    assert.equal(seccompFlags({ defaultAction: "SCMP_ACT_ALLOW", flags: ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"] }), 6);
  });
});

describe("the program cache", () => {
  const root = mkdtempSync(join(tmpdir(), "corerun-seccomp-test-"));
  after(() => {
    if (root.startsWith(tmpdir() + sep) && root.includes("corerun-seccomp-test-")) rmSync(root, { recursive: true, force: true });
  });

  test("compiles once per input; preparing writes nothing; stored world-readable", () => {
    const oci: OciSeccomp = { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["mkdir"], action: "SCMP_ACT_ERRNO" }] };
    const prepared = prepareSeccompProgram(root, oci);
    assert.ok(prepared.compiled);
    assert.equal(existsSync(join(root, "runtime", "seccomp")), false);
    const path = seccompProgram(root, oci);
    assert.equal(path, prepared.path);
    assert.deepEqual(readFileSync(path), prepared.compiled);
    assert.equal(statSync(path).mode & 0o777, 0o644);
    assert.equal(statSync(join(root, "runtime", "seccomp")).mode & 0o777, 0o755);
    assert.equal(prepareSeccompProgram(root, oci).compiled, undefined, "a cached program is not compiled again");
    assert.notEqual(seccompProgram(root, { ...oci, defaultErrnoRet: 13 }), path);
  });

  test("a hit is checked against the stored input: another input under the same key takes the next slot", () => {
    const oci: OciSeccomp = { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["rmdir"], action: "SCMP_ACT_ERRNO" }] };
    const first = prepareSeccompProgram(root, oci);
    // What another input of the same hash would have left in the first slot.
    mkdirSync(dirname(first.path), { recursive: true });
    writeFileSync(first.path.replace(/\.bpf$/, ".json"), "another input");
    writeFileSync(first.path, "another program");
    const path = seccompProgram(root, oci);
    assert.equal(path, first.path.replace(/\.bpf$/, "-1.bpf"));
    assert.deepEqual(readFileSync(path), first.compiled);
    assert.equal(readFileSync(path.replace(/\.bpf$/, ".json"), "utf8"), first.input);
    assert.equal(prepareSeccompProgram(root, oci).compiled, undefined, "found in its slot, not compiled again");
    assert.equal(readFileSync(first.path, "utf8"), "another program", "the other input's program is left as it was");
  });

  test("by id: the profile is resolved only to compile; a stored program of the same id is found without it", () => {
    const oci: OciSeccomp = { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["chdir"], action: "SCMP_ACT_ERRNO" }] };
    let resolved = 0;
    const resolve = () => (resolved++, oci);
    const id = { profile: "default", build: "0123456789abcdef", capabilities: ["CAP_CHOWN"], arch: "amd64", kernel: "6.1.0" };
    const first = prepareSeccompProgramById(root, id, resolve);
    assert.equal(resolved, 1);
    assert.deepEqual(first.compiled, prepareSeccompProgram(root, oci).compiled, "the program of the resolved profile");
    storeSeccompProgram(first);
    const again = prepareSeccompProgramById(root, id, resolve);
    assert.equal(resolved, 1, "not resolved again");
    assert.equal(again.compiled, undefined);
    assert.equal(again.path, first.path);
    const other = prepareSeccompProgramById(root, { ...id, build: "fedcba9876543210" }, resolve);
    assert.equal(resolved, 2, "another build resolves its own");
    assert.notEqual(other.path, first.path);
  });

  test("a state root under a file is no cache: the program is compiled, the root's own check reports it later", () => {
    const file = join(root, "a-file");
    writeFileSync(file, "");
    const oci: OciSeccomp = { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["mkdir"], action: "SCMP_ACT_ERRNO" }] };
    assert.ok(prepareSeccompProgram(join(file, "sub"), oci).compiled);
  });

  test("cacheKey: 16 hex digits, the same for the same input, apart for inputs one character apart", () => {
    assert.match(cacheKey("x"), /^[0-9a-f]{16}$/);
    assert.equal(cacheKey('{"a":1}'), cacheKey('{"a":1}'));
    const keys = new Set(Array.from({ length: 1000 }, (_, i) => cacheKey(`{"n":${i}}`)));
    assert.equal(keys.size, 1000);
  });

  test("a bad profile is refused before anything is written", () => {
    const empty = mkdtempSync(join(tmpdir(), "corerun-seccomp-test-"));
    try {
      assert.throws(() => seccompProgram(empty, { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["nope"], action: "SCMP_ACT_ERRNO" }] }), UsageError);
      assert.equal(existsSync(join(empty, "runtime", "seccomp")), false);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
