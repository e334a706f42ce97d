import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { UsageError } from "@corerun/cli";
import { describeLimits, formatBytes, parseLimits } from "./limits.ts";

const MiB = 1024 * 1024;
const two = { cpuCount: 2 };

function rejects(input: Parameters<typeof parseLimits>[0], pattern: RegExp): void {
  assert.throws(() => parseLimits(input, two), (err: unknown) => {
    assert.ok(err instanceof UsageError, `expected a UsageError, got ${String(err)}`);
    assert.match(err.message, pattern);
    assert.ok(!err.message.includes("\n"), "one line");
    assert.ok(!err.message.endsWith("."), "no trailing period");
    return true;
  });
}

describe("parseLimits: memory", () => {
  it("reads a plain number as MiB", () => {
    assert.equal(parseLimits({ memory: "512" }).memory, 512 * MiB);
    assert.equal(parseLimits({ memory: 64 }).memory, 64 * MiB);
  });
  it("accepts Docker sizes", () => {
    assert.equal(parseLimits({ memory: "512m" }).memory, 512 * MiB);
    assert.equal(parseLimits({ memory: "512M" }).memory, 512 * MiB);
    assert.equal(parseLimits({ memory: "1g" }).memory, 1024 * MiB);
    assert.equal(parseLimits({ memory: "1.5G" }).memory, 1536 * MiB);
    assert.equal(parseLimits({ memory: "65536k" }).memory, 64 * MiB);
    assert.equal(parseLimits({ memory: "100mb" }).memory, 100 * MiB);
    assert.equal(parseLimits({ memory: "100MiB" }).memory, 100 * MiB);
    assert.equal(parseLimits({ memory: `${6 * MiB}b` }).memory, 6 * MiB);
  });
  it("has a floor of 6 MiB", () => {
    assert.equal(parseLimits({ memory: "6" }).memory, 6 * MiB);
    rejects({ memory: "5" }, /--memory "5" is below the minimum of 6 MiB/);
    rejects({ memory: "6291455b" }, /below the minimum of 6 MiB/);
    rejects({ memory: "0" }, /--memory "0" is below the minimum/);
  });
  it("rejects what is not a size", () => {
    rejects({ memory: "-5" }, /--memory "-5" is not a size; give MiB \(512\) or a Docker size/);
    rejects({ memory: "abc" }, /--memory "abc" is not a size/);
    rejects({ memory: "5x" }, /is not a size/);
    rejects({ memory: "" }, /is not a size/);
    rejects({ memory: "1e9" }, /is not a size/);
  });
});

describe("parseLimits: cpu", () => {
  it("reads --cpu as percent of one core over a 100 ms period", () => {
    assert.deepEqual(parseLimits({ cpu: "50" }, two).cpu, { quota: 50_000, period: 100_000 });
    assert.deepEqual(parseLimits({ cpu: "150" }, two).cpu, { quota: 150_000, period: 100_000 });
    assert.deepEqual(parseLimits({ cpu: "12.5" }, two).cpu, { quota: 12_500, period: 100_000 });
  });
  it("reads --cpus the Docker way", () => {
    assert.deepEqual(parseLimits({ cpus: "0.5" }, two).cpu, { quota: 50_000, period: 100_000 });
    assert.deepEqual(parseLimits({ cpus: "2" }, two).cpu, { quota: 200_000, period: 100_000 });
  });
  it("rejects bad values, values below the kernel's 1 ms quota and more CPUs than the host has", () => {
    rejects({ cpu: "abc" }, /--cpu "abc" is not a number; give 50 for half a core/);
    rejects({ cpu: "-5" }, /--cpu "-5" is not a number/);
    rejects({ cpu: "0" }, /--cpu "0" is below the minimum of 1/);
    rejects({ cpu: "0.5" }, /below the minimum/);
    rejects({ cpu: "250" }, /--cpu "250" is more than the 2 CPUs of this host can give; give at most 200/);
    rejects({ cpus: "3" }, /--cpus "3" is more than the 2 CPUs.*at most 2$/);
    rejects({ cpus: "0.001" }, /--cpus "0.001" is below the minimum of 0.01/);
    rejects({ cpu: "50", cpus: "0.5" }, /--cpu and --cpus set the same limit/);
  });
});

describe("parseLimits: pids", () => {
  it("takes a positive integer", () => {
    assert.equal(parseLimits({ pids: "20" }).pids, 20);
    assert.equal(parseLimits({ pids: 1 }).pids, 1);
  });
  it("rejects anything else", () => {
    rejects({ pids: "0" }, /--pids "0" is not a positive integer/);
    rejects({ pids: "-1" }, /--pids "-1" is not a positive integer/);
    rejects({ pids: "1.5" }, /is not a positive integer/);
    rejects({ pids: "many" }, /is not a positive integer/);
    rejects({ pids: "99999999" }, /above the kernel's ceiling/);
  });
});

describe("parseLimits: as a whole", () => {
  it("gives no fields for no flags", () => {
    assert.deepEqual(parseLimits({}), {});
  });
  it("describes limits in one phrase", () => {
    assert.equal(describeLimits(parseLimits({ memory: "64", cpu: "50", pids: "20" }, two)), "memory 64 MiB, cpu 50%, pids 20");
    assert.equal(describeLimits({}), "no limits");
    assert.equal(formatBytes(1536 * MiB), "1.5 GiB");
  });
});
