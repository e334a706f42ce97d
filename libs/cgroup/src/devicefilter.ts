/**
 * Device rules on cgroup v2, which has no devices.allow/deny files: an eBPF program of type
 * BPF_PROG_TYPE_CGROUP_DEVICE attached to the cgroup's directory (BPF_CGROUP_DEVICE). The kernel
 * runs it on every open and mknod of a device node by a process of the cgroup (or of one below
 * it), and the access is allowed when it returns 1. The rules keep the v1 meaning they have in
 * `Limits.devices`: `a *:* rwm` resets to allow or deny everything, and among the rules after
 * the last reset the last one that matches decides.
 */
import { closeSync, openSync } from "node:fs";
import { linuxSyscall, type Syscall } from "@corerun/syscall";
import type { DeviceRule } from "./limits.ts";

const BPF_PROG_TYPE_CGROUP_DEVICE = 15;
const BPF_CGROUP_DEVICE = 6;
/** struct bpf_cgroup_dev_ctx { u32 access_type (access << 16 | type); u32 major; u32 minor; } */
const DEV_TYPE: Record<"b" | "c", number> = { b: 1, c: 2 };
const DEV_ACCESS: Record<string, number> = { m: 1, r: 2, w: 4 };

/** One 8-byte instruction: opcode, dst and src registers, 16-bit offset, 32-bit immediate. */
function insn(code: number, dst: number, src: number, off: number, imm: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt8(code, 0);
  b.writeUInt8((src << 4) | dst, 1);
  b.writeInt16LE(off, 2);
  b.writeInt32LE(imm, 4);
  return b;
}

const LDX_W = 0x61; // dst = *(u32 *)(src + off)
const AND32_K = 0x54;
const RSH32_K = 0x74;
const MOV32_X = 0xbc;
const MOV64_K = 0xb7;
const JNE_K = 0x55;
const EXIT = 0x95;

function accessBits(access: string): number {
  let bits = 0;
  for (const ch of access) {
    const bit = DEV_ACCESS[ch];
    if (bit === undefined) throw new Error(`device access "${access}": use letters of rwm`);
    bits |= bit;
  }
  return bits;
}

/** The rules after the last `a *:* rwm` reset, and the verdict of that reset (deny-all when none). */
export function effectiveRules(rules: readonly DeviceRule[]): { allowAll: boolean; exceptions: DeviceRule[] } {
  let allowAll = false;
  let exceptions: DeviceRule[] = [];
  for (const r of rules) {
    if (r.type === "a" && r.major < 0 && r.minor < 0 && accessBits(r.access) === 7) {
      allowAll = r.allow;
      exceptions = [];
    } else {
      exceptions.push(r);
    }
  }
  return { allowAll, exceptions };
}

/**
 * The program for a list of rules. r2 = type, r3 = access, r4 = major, r5 = minor; then one
 * block per rule, the last rule first, each returning its verdict when every field matches
 * (the requested access a subset of the rule's) and jumping over itself otherwise; then the
 * default.
 */
export function deviceFilterProgram(rules: readonly DeviceRule[]): Buffer {
  const { allowAll, exceptions } = effectiveRules(rules);
  const out: Buffer[] = [
    insn(LDX_W, 2, 1, 0, 0), insn(AND32_K, 2, 0, 0, 0xffff),
    insn(LDX_W, 3, 1, 0, 0), insn(RSH32_K, 3, 0, 0, 16),
    insn(LDX_W, 4, 1, 4, 0), insn(LDX_W, 5, 1, 8, 0),
  ];
  for (const r of [...exceptions].reverse()) {
    // Each test is a jump past the block's end, built once the block's length is known.
    const tests: ((skip: number) => Buffer[])[] = [];
    const type = r.type;
    if (type !== "a") tests.push((skip) => [insn(JNE_K, 2, 0, skip, DEV_TYPE[type])]);
    const bits = accessBits(r.access);
    if (bits !== 7) tests.push((skip) => [insn(MOV32_X, 1, 3, 0, 0), insn(AND32_K, 1, 0, 0, ~bits & 7), insn(JNE_K, 1, 0, skip, 0)]);
    if (r.major >= 0) tests.push((skip) => [insn(JNE_K, 4, 0, skip, r.major)]);
    if (r.minor >= 0) tests.push((skip) => [insn(JNE_K, 5, 0, skip, r.minor)]);
    const sizes = tests.map((t) => t(0).length);
    const verdict = [insn(MOV64_K, 0, 0, 0, r.allow ? 1 : 0), insn(EXIT, 0, 0, 0, 0)];
    let remaining = sizes.reduce((a, b) => a + b, 0) + verdict.length;
    tests.forEach((t, i) => {
      remaining -= sizes[i]!;
      // The offset counts from the instruction after the jump, which is the test's last.
      out.push(...t(remaining));
    });
    out.push(...verdict);
  }
  out.push(insn(MOV64_K, 0, 0, 0, allowAll ? 1 : 0), insn(EXIT, 0, 0, 0, 0));
  return Buffer.concat(out);
}

/**
 * Loads the program for these rules and attaches it to the cgroup v2 directory. Attached without
 * BPF_F_ALLOW_MULTI, a later call replaces it (an update); the kernel detaches it when the
 * cgroup is removed.
 */
export function attachDeviceFilter(dir: string, rules: readonly DeviceRule[], sys: Syscall = linuxSyscall): void {
  const prog = sys.bpfProgLoad(BPF_PROG_TYPE_CGROUP_DEVICE, deviceFilterProgram(rules), BPF_CGROUP_DEVICE);
  try {
    const cg = openSync(dir, "r");
    try {
      sys.bpfProgAttach(cg, prog, BPF_CGROUP_DEVICE, 0);
    } finally {
      closeSync(cg);
    }
  } finally {
    closeSync(prog);
  }
}
