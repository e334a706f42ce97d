import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { splitArgv } from "@corerun/cli";
import { limitArgv, RESOURCE_ARGS, resourceInput } from "./args.ts";
import { parseLimits, type Limits } from "./limits.ts";

const host = { cpuCount: 2, onlineCpus: "0-1", onlineMems: "0", blockDevice: (p: string) => (p === "/dev/vda" ? { major: 254, minor: 0 } : `${p} is not a block device`) };
const def = { memory: { type: "string" }, cpu: { type: "string" }, pids: { type: "string" }, ...RESOURCE_ARGS } as const;

/** corerun-cgroup's reading of words: the base limits and Docker's other options. */
function parseWords(words: string[]): Limits {
  const { values, flags } = splitArgv(words, def, { tail: "none" });
  return parseLimits(resourceInput(values, flags), host);
}

describe("limitArgv: limits as corerun-cgroup's words", () => {
  it("gives back the same limits when corerun-cgroup reads them", () => {
    const limits = parseWords([
      "--memory", "64", "--memory-swap", "-1", "--memory-reservation", "32m", "--memory-swappiness", "0", "--oom-kill-disable", "--cpu", "50", "--cpu-shares", "512",
      "--pids", "20", "--cpuset-cpus", "1", "--cpuset-mems", "0", "--blkio-weight", "300", "--blkio-weight-device", "/dev/vda:200",
      "--device-read-bps", "/dev/vda:1mb", "--device-write-bps", "/dev/vda:2mb", "--device-read-iops", "/dev/vda:10", "--device-write-iops", "/dev/vda:20",
    ]);
    assert.equal(Object.keys(limits).length, 10, "every option read");
    assert.deepEqual(parseWords(limitArgv(limits, () => "/dev/vda")), limits);
    assert.deepEqual(limitArgv({}), []);
  });
  it("takes repeated device options all, and the last of any other", () => {
    const limits = parseWords(["--device-read-bps", "/dev/vda:1mb", "--device-read-bps", "/dev/vda:2mb", "--cpuset-cpus", "0", "--cpuset-cpus", "1"]);
    assert.deepEqual(limits.blockIO?.readBps?.map((r) => r.rate), [1 << 20, 2 << 20]);
    assert.equal(limits.cpuset?.cpus, "1");
  });
});
