import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { splitArgv } from "@corerun/cli";
import { limitArgv, RESOURCE_ARGS, resourceInput } from "./args.ts";
import { DEFAULT_DEVICE_RULES, deviceRuleText, dockerDeviceRules, parseDeviceCgroupRule, parseLimits, type Limits } from "./limits.ts";

const host = { cpuCount: 2, onlineCpus: "0-1", onlineMems: "0", blockDevice: (p: string) => (p === "/dev/vda" ? { major: 254, minor: 0 } : `${p} is not a block device`) };
const def = { memory: { type: "string" }, cpu: { type: "string" }, pids: { type: "string" }, ...RESOURCE_ARGS, "docker-devices": { type: "boolean" } } as const;

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
      "--device-cgroup-rule", "c 10:229 rwm", "--device-cgroup-rule", "b 7:* r",
    ]);
    assert.equal(Object.keys(limits).length, 11, "every option read");
    assert.deepEqual(parseWords(limitArgv(limits, () => "/dev/vda")), limits);
    assert.deepEqual(limitArgv({}), []);
  });
  it("takes repeated device options all, and the last of any other", () => {
    const limits = parseWords(["--device-read-bps", "/dev/vda:1mb", "--device-read-bps", "/dev/vda:2mb", "--cpuset-cpus", "0", "--cpuset-cpus", "1"]);
    assert.deepEqual(limits.blockIO?.readBps?.map((r) => r.rate), [1 << 20, 2 << 20]);
    assert.equal(limits.cpuset?.cpus, "1");
  });
});

describe("device cgroup rules", () => {
  it("reads Docker's --device-cgroup-rule, * for any number", () => {
    assert.deepEqual(parseDeviceCgroupRule("c 10:200 rwm"), { allow: true, type: "c", major: 10, minor: 200, access: "rwm" });
    assert.deepEqual(parseDeviceCgroupRule(" b 8:* r "), { allow: true, type: "b", major: 8, minor: -1, access: "r" });
    assert.equal(deviceRuleText(parseDeviceCgroupRule("a *:* rwm")), "a *:* rwm");
    // v1 would read these as every device, the v2 filter as one.
    for (const bad of ["a 1:3 r", "a *:* m", "a 1:* rwm"]) assert.throws(() => parseDeviceCgroupRule(bad), /type a means every device: give "a \*:\* rwm"/, bad);
  });
  it("refuses anything else in one line that shows the form", () => {
    for (const bad of ["c 10:200", "x 1:3 r", "c 1:3 rx", "c 1:3 rr", "c -1:3 r", "c 1 r", "c 1:3:4 r", ""]) {
      assert.throws(() => parseDeviceCgroupRule(bad), (e: Error) => e.message.includes(`"${bad}"`) && e.message.includes("TYPE MAJOR:MINOR ACCESS") && !e.message.includes("\n"), bad);
    }
  });
  it("Docker's device cgroup: every device denied first, then the rules given, then the defaults", () => {
    const rules = dockerDeviceRules([parseDeviceCgroupRule("c 10:200 rw")]);
    assert.deepEqual(rules[0], { allow: false, type: "a", major: -1, minor: -1, access: "rwm" });
    assert.equal(deviceRuleText(rules[1]!), "c 10:200 rw");
    assert.deepEqual(rules.slice(2), [...DEFAULT_DEVICE_RULES]);
    assert.deepEqual(DEFAULT_DEVICE_RULES.map(deviceRuleText), ["c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm", "c 5:2 rwm", "c 136:* rwm", "c 10:200 rwm"]);
  });
  it("--docker-devices alone, or implied by a rule; neither, no device rules", () => {
    assert.deepEqual(parseWords(["--docker-devices"]).devices, dockerDeviceRules());
    assert.deepEqual(parseWords(["--device-cgroup-rule", "c 10:229 rwm"]).devices, dockerDeviceRules([parseDeviceCgroupRule("c 10:229 rwm")]));
    assert.equal(parseWords(["--memory", "64"]).devices, undefined);
    assert.deepEqual(limitArgv({ devices: dockerDeviceRules() }), ["--docker-devices"]);
  });
});
