import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { refusesCleanly } from "@corerun/cli/testing";
import { UsageError } from "@corerun/cli";
import { parseV1Mounts } from "./detect.ts";
import { CPU_PERIOD, MEMORY_FLOOR, parseCpuPercent, parseMemory, parsePids, PIDS_CEILING } from "./limits.ts";

const MiB = 1024 * 1024;
describe("limit parsers, on generated input", () => {
  test("a plain number of MiB at or above the floor is that many MiB; m and g suffixes agree", () => {
    fc.assert(fc.property(fc.integer({ min: 6, max: 1024 * 1024 }), (n) => {
      assert.equal(parseMemory(String(n)), n * MiB);
      assert.equal(parseMemory(`${n}m`), n * MiB);
      assert.equal(parseMemory(`${n}MiB`), n * MiB);
      if (n <= 1024) assert.equal(parseMemory(`${n}g`), n * 1024 * MiB);
    }));
  });

  test("any size below 6 MiB is refused, in any unit", () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: MEMORY_FLOOR - 1 }), (bytes) => {
      assert.throws(() => parseMemory(`${bytes}b`), /is below the minimum of 6 MiB/);
    }));
  });

  test("arbitrary text is a size or a one-line refusal", () => {
    fc.assert(fc.property(fc.string({ maxLength: 40 }), (s) => refusesCleanly(() => parseMemory(s), s)));
  });

  test("--pids takes exactly the positive integers up to the kernel's ceiling", () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: PIDS_CEILING }), (n) => assert.equal(parsePids(String(n)), n)));
    fc.assert(fc.property(fc.string({ maxLength: 20 }), (s) => {
      if (/^\d+$/.test(s.trim()) && Number(s) >= 1 && Number(s) <= PIDS_CEILING) return;
      assert.throws(() => parsePids(s), UsageError);
    }));
  });

  test("--cpu P gives a quota of P % of the period, for every P a host of that many cores allows", () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 6400 }), (cores, percent) => {
      fc.pre(percent <= cores * 100);
      const { quota, period } = parseCpuPercent(String(percent), "--cpu", cores);
      assert.equal(period, CPU_PERIOD);
      assert.equal(quota, percent * 1000);
    }));
  });

  test("--cpu and --cpus on arbitrary text return or refuse in one line", () => {
    fc.assert(fc.property(fc.string({ maxLength: 20 }), (s) => {
      refusesCleanly(() => parseCpuPercent(s, "--cpu", 4), s);
      refusesCleanly(() => parseCpuPercent(s, "--cpus", 4), s);
    }));
  });

  test("mountinfo: a cgroup v1 line under the root is found whatever else surrounds it; other text never throws", () => {
    const line = (point: string, controller: string) => `35 25 0:30 / ${point} rw,nosuid shared:15 - cgroup cgroup rw,${controller}`;
    fc.assert(fc.property(fc.array(fc.string({ maxLength: 60 }).map((l) => l.replaceAll("\n", " ")), { maxLength: 5 }), fc.constantFrom("memory", "pids", "cpu"), (noise, controller) => {
      const text = [...noise, line(`/sys/fs/cgroup/${controller}`, controller), ...noise].join("\n");
      assert.equal(parseV1Mounts(text, "/sys/fs/cgroup")[controller], `/sys/fs/cgroup/${controller}`);
      parseV1Mounts(noise.join("\n"), "/sys/fs/cgroup");
    }));
  });
});
