import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { bytes, parseNetDev, statsRows, statsTable, type Sample } from "./stats.ts";

const NET_DEV = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:   12838     187    0    0    0     0          0         0    12838     187    0    0    0     0       0          0
  eth0:    1000      10    0    0    0     0          0         0      250       3    0    0    0     0       0          0
  eth1:      24       1    0    0    0     0          0         0       26       1    0    0    0     0       0          0
`;

const at = (s: Partial<Sample>): Sample => ({ id: "abc123456789", name: "web", at: 0, cpuUsec: 0, memory: 0, memoryLimit: null, pids: 1, net: { rx: 0, tx: 0 }, block: { read: 0, write: 0 }, ...s });

describe("corerun stats", () => {
  test("network bytes: every interface but lo", () => {
    assert.deepEqual(parseNetDev(NET_DEV), { rx: 1024, tx: 276 });
  });

  test("CPU % is CPU time over wall time, of one core; an unlimited container's limit is the host's memory", () => {
    const [row] = statsRows([at({ at: 1_000_000, cpuUsec: 500_000 })], [at({ at: 2_000_000, cpuUsec: 2_000_000, memory: 256 << 20 })], 1 << 30);
    assert.equal(row!.cpuPercent, 150);
    assert.equal(row!.memoryLimit, 1 << 30);
    assert.equal(row!.memoryPercent, 25);
    const [limited] = statsRows([at({})], [at({ at: 1, memory: 32 << 20, memoryLimit: 64 << 20 })], 1 << 30);
    assert.equal(limited!.memoryPercent, 50);
  });

  test("a container sampled once is left out; unknown values print as -", () => {
    assert.deepEqual(statsRows([], [at({})]), []);
    const [row] = statsRows([at({ cpuUsec: null, net: undefined })], [at({ at: 1, cpuUsec: null, memory: null, pids: null, net: undefined, block: null })], 1 << 30);
    assert.match(statsTable([row!]), /^abc123456789 +web +- +- \/ 1GiB +- +- +- +-\n$/m);
  });

  test("block I/O in decimal units, as Docker's BLOCK I/O column", () => {
    const [row] = statsRows([at({})], [at({ at: 1, block: { read: 4096, write: 8_393_000 } })], 1 << 30);
    assert.match(statsTable([row!]), /^CONTAINER ID +NAME +CPU % +MEM USAGE \/ LIMIT +MEM % +NET I\/O +BLOCK I\/O +PIDS$/m);
    assert.match(statsTable([row!]), / 4\.1kB \/ 8\.39MB +1$/m);
  });

  test("Docker's units", () => {
    assert.equal(bytes(512, true), "512B");
    assert.equal(bytes(1536, true), "1.5KiB");
    assert.equal(bytes(64 << 20, true), "64MiB");
    assert.equal(bytes(204_800, true), "200KiB");
    assert.equal(bytes(1_250_000, false), "1.25MB");
  });
});
