import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { deviceFilterProgram, effectiveRules } from "./devicefilter.ts";
import type { DeviceRule } from "./limits.ts";

/**
 * Runs a device program the way the kernel would for one request, over the few instructions the
 * generator emits (an unknown one fails the test): the verdict, 1 to allow.
 */
function runProgram(prog: Buffer, req: { type: 1 | 2; access: number; major: number; minor: number }): number {
  const ctx = [(req.access << 16) | req.type, req.major, req.minor];
  const r = new Array<number>(11).fill(0);
  for (let pc = 0; pc < prog.length / 8; pc++) {
    const code = prog.readUInt8(pc * 8);
    const regs = prog.readUInt8(pc * 8 + 1);
    const [dst, src] = [regs & 0xf, regs >> 4];
    const off = prog.readInt16LE(pc * 8 + 2);
    const imm = prog.readInt32LE(pc * 8 + 4);
    switch (code) {
      case 0x61: assert.equal(src, 1); r[dst] = ctx[off / 4]!; break;
      case 0x54: r[dst] = (r[dst]! & imm) >>> 0; break;
      case 0x74: r[dst] = r[dst]! >>> imm; break;
      case 0xbc: r[dst] = r[src]!; break;
      case 0xb7: r[dst] = imm; break;
      case 0x55: if (r[dst] !== imm >>> 0) pc += off; break;
      case 0x95: return r[0]!;
      default: assert.fail(`unexpected opcode 0x${code.toString(16)} at ${pc}`);
    }
    assert.ok(pc + 1 <= prog.length / 8, `a jump past the end at ${pc}`);
  }
  return assert.fail("the program ran off its end");
}

const ACCESS: Record<string, number> = { m: 1, r: 2, w: 4 };
const bits = (a: string) => [...a].reduce((b, c) => b | ACCESS[c]!, 0);

/** The v1 devices controller's meaning, written plainly: the last matching rule after the last reset. */
function reference(rules: DeviceRule[], req: { type: 1 | 2; access: number; major: number; minor: number }): number {
  const { allowAll, exceptions } = effectiveRules(rules);
  for (const r of [...exceptions].reverse()) {
    const typeOk = r.type === "a" || (r.type === "b" ? 1 : 2) === req.type;
    if (typeOk && (req.access & ~bits(r.access)) === 0 && (r.major < 0 || r.major === req.major) && (r.minor < 0 || r.minor === req.minor)) return r.allow ? 1 : 0;
  }
  return allowAll ? 1 : 0;
}

const rule = (allow: boolean, type: "a" | "b" | "c", major: number, minor: number, access: string): DeviceRule => ({ allow, type, major, minor, access });

describe("the cgroup v2 device filter program", () => {
  test("runc's defaults after deny-all: /dev/null rwm and /dev/pts allowed, /dev/sda and mknod of /dev/mem denied", () => {
    const rules = [rule(false, "a", -1, -1, "rwm"), rule(true, "c", 1, 3, "rwm"), rule(true, "c", 136, -1, "rwm"), rule(true, "c", -1, -1, "m"), rule(true, "b", -1, -1, "m")];
    const prog = deviceFilterProgram(rules);
    assert.equal(runProgram(prog, { type: 2, access: 6, major: 1, minor: 3 }), 1, "/dev/null rw");
    assert.equal(runProgram(prog, { type: 2, access: 2, major: 136, minor: 9 }), 1, "/dev/pts/9");
    assert.equal(runProgram(prog, { type: 1, access: 2, major: 8, minor: 0 }), 0, "/dev/sda");
    assert.equal(runProgram(prog, { type: 2, access: 1, major: 1, minor: 1 }), 1, "mknod of any char device");
    assert.equal(runProgram(prog, { type: 2, access: 2, major: 1, minor: 1 }), 0, "reading /dev/mem");
  });

  test("a reset rule drops the rules before it; no rules is deny-all", () => {
    assert.deepEqual(effectiveRules([rule(true, "c", 1, 3, "r"), rule(true, "a", -1, -1, "rwm"), rule(false, "c", 1, 5, "w")]), { allowAll: true, exceptions: [rule(false, "c", 1, 5, "w")] });
    assert.equal(runProgram(deviceFilterProgram([]), { type: 2, access: 2, major: 1, minor: 3 }), 0);
  });

  test("for any rules and request, the program decides as the v1 controller's rules read", () => {
    const arbRule = fc.record({
      allow: fc.boolean(), type: fc.constantFrom("a" as const, "b" as const, "c" as const), major: fc.integer({ min: -1, max: 3 }), minor: fc.integer({ min: -1, max: 3 }),
      access: fc.subarray(["r", "w", "m"], { minLength: 1 }).map((a) => a.join("")),
    });
    const arbReq = fc.record({ type: fc.constantFrom(1 as const, 2 as const), access: fc.integer({ min: 1, max: 7 }), major: fc.integer({ min: 0, max: 3 }), minor: fc.integer({ min: 0, max: 3 }) });
    fc.assert(fc.property(fc.array(arbRule, { maxLength: 8 }), arbReq, (rules, req) => runProgram(deviceFilterProgram(rules), req) === reference(rules, req)), { numRuns: 500 });
  });
});
