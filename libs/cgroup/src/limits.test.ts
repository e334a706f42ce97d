import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { UsageError } from "@corerun/cli";
import { blockDevice, describeLimits, devNumbers, formatBytes, mergeLimits, parseLimits } from "./limits.ts";

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

describe("parseLimits: Docker's other resource options", () => {
  const vda = (p: string) => (p === "/dev/vda" ? { major: 254, minor: 0 } : p === "/dev/vda1" ? "/dev/vda1 (254:1) is a partition; the kernel weighs and throttles whole disks: give the disk it is on" : `${p} is not a block device`);
  const host = { cpuCount: 2, onlineCpus: "0-1", onlineMems: "0", blockDevice: vda };
  const refuses = (input: Parameters<typeof parseLimits>[0], pattern: RegExp) =>
    assert.throws(() => parseLimits(input, host), (err: unknown) => err instanceof UsageError && pattern.test(err.message) && !err.message.includes("\n"));

  it("takes a cpuset of CPUs and memory nodes the host has", () => {
    assert.deepEqual(parseLimits({ cpusetCpus: "1", cpusetMems: "0" }, host).cpuset, { cpus: "1", mems: "0" });
    assert.deepEqual(parseLimits({ cpusetCpus: "0-1" }, host).cpuset, { cpus: "0-1" });
    refuses({ cpusetCpus: "2" }, /^--cpuset-cpus "2": this host has no CPU 2; it has 0-1$/);
    refuses({ cpusetCpus: "1-0" }, /--cpuset-cpus "1-0" is not a list of CPU; give numbers and ascending ranges/);
    refuses({ cpusetCpus: "a" }, /is not a list/);
    refuses({ cpusetCpus: "0-99999999" }, /is not a list/);
    refuses({ cpusetMems: "1" }, /^--cpuset-mems "1": this host has no memory node 1; it has 0$/);
  });
  it("takes a reservation at most the memory limit, and memory+swap at least it", () => {
    assert.equal(parseLimits({ memory: "64", memoryReservation: "32" }, host).memoryReservation, 32 * MiB);
    assert.equal(parseLimits({ memoryReservation: "1g" }, host).memoryReservation, 1024 * MiB);
    refuses({ memory: "64", memoryReservation: "128m" }, /--memory-reservation "128m" is above --memory \(64 MiB\)/);
    refuses({ memoryReservation: "1m" }, /--memory-reservation "1m" is below the minimum of 6 MiB/);
    assert.equal(parseLimits({ memory: "64", memorySwap: "128m" }, host).swap, 128 * MiB);
    assert.equal(parseLimits({ memory: "64", memorySwap: "-1" }, host).swap, -1);
    refuses({ memorySwap: "128m" }, /--memory-swap "128m" is memory plus swap: give --memory too/);
    refuses({ memory: "64", memorySwap: "32m" }, /--memory-swap "32m" is less than --memory \(64 MiB\)/);
  });
  it("takes a swappiness 0-100 (-1: the host's), the OOM switch and CPU shares", () => {
    assert.equal(parseLimits({ memorySwappiness: "0" }, host).swappiness, 0);
    assert.equal(parseLimits({ memorySwappiness: "-1" }, host).swappiness, undefined);
    refuses({ memorySwappiness: "101" }, /--memory-swappiness "101": give how readily pages go to swap .*, an integer from 0 to 100/);
    assert.equal(parseLimits({ oomKillDisable: true }, host).oomKillDisable, true);
    assert.equal(parseLimits({ oomKillDisable: false }, host).oomKillDisable, undefined);
    assert.equal(parseLimits({ cpuShares: "512" }, host).cpuShares, 512);
    refuses({ cpuShares: "1" }, /--cpu-shares "1": give a relative CPU weight/);
  });
  it("takes block I/O weights and rates per whole disk, by its path", () => {
    assert.deepEqual(parseLimits({ blkioWeight: "300", blkioWeightDevice: ["/dev/vda:200"], deviceReadBps: ["/dev/vda:1mb"], deviceWriteBps: ["/dev/vda:4096"], deviceReadIops: ["/dev/vda:10"], deviceWriteIops: ["/dev/vda:20"] }, host).blockIO, {
      weight: 300,
      weightDevice: [{ major: 254, minor: 0, weight: 200 }],
      readBps: [{ major: 254, minor: 0, rate: 1048576 }],
      writeBps: [{ major: 254, minor: 0, rate: 4096 }],
      readIops: [{ major: 254, minor: 0, rate: 10 }],
      writeIops: [{ major: 254, minor: 0, rate: 20 }],
    });
    refuses({ blkioWeight: "5" }, /--blkio-weight "5": give a relative block I\/O weight \(0 for none\), an integer from 10 to 1000/);
    assert.equal(parseLimits({ blkioWeight: "0", cpuShares: "0" }, host).blockIO, undefined, "0 is Docker's none");
    refuses({ deviceReadBps: ["/dev/vda1:1mb"] }, /--device-read-bps "\/dev\/vda1:1mb": \/dev\/vda1 \(254:1\) is a partition/);
    refuses({ deviceReadBps: ["/dev/null:1mb"] }, /--device-read-bps "\/dev\/null:1mb": \/dev\/null is not a block device/);
    refuses({ deviceReadBps: ["vda:1mb"] }, /give DEVICE:VALUE with DEVICE a block device's path/);
    refuses({ deviceReadBps: ["/dev/vda:0"] }, /give a rate in bytes per second above 0/);
    refuses({ deviceReadIops: ["/dev/vda:1k"] }, /give operations per second, an integer above 0/);
  });
  it("reads a real block device's numbers, and refuses what is not one", () => {
    assert.match(String(blockDevice("/dev/null")), /\/dev\/null is not a block device/);
    assert.match(String(blockDevice("/nonexistent")), /cannot stat \/nonexistent \(ENOENT\)/);
  });
});

describe("devNumbers and mergeLimits", () => {
  it("splits a dev_t as glibc's major() and minor() do", () => {
    assert.deepEqual(devNumbers(0xfe00), { major: 254, minor: 0 });
    assert.deepEqual(devNumbers(0x10301), { major: 259, minor: 1 });
    assert.deepEqual(devNumbers(0x700 + 0x100000), { major: 7, minor: 256 });
    assert.deepEqual(devNumbers(2 ** 32 * 0x1000 + 0xfff00 + 0xff), { major: 4096 + 0xfff, minor: 0xff });
  });
  it("an update changes the fields and devices it names, keeps the rest, and a rate of 0 lifts that device's throttle", () => {
    const was = { memory: 64 << 20, cpuset: { cpus: "0", mems: "0" }, blockIO: { weight: 300, readBps: [{ major: 8, minor: 0, rate: 1 }, { major: 8, minor: 16, rate: 2 }] } };
    assert.deepEqual(mergeLimits(was, { cpuset: { cpus: "1" }, blockIO: { readBps: [{ major: 8, minor: 0, rate: 0 }], writeIops: [{ major: 8, minor: 0, rate: 5 }] } }), {
      memory: 64 << 20,
      cpuset: { cpus: "1", mems: "0" },
      blockIO: { weight: 300, readBps: [{ major: 8, minor: 16, rate: 2 }], writeIops: [{ major: 8, minor: 0, rate: 5 }] },
    });
    assert.deepEqual(mergeLimits(was, { pids: 5 }), { ...was, pids: 5 });
  });
});
