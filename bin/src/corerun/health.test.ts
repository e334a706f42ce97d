import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { afterProbe, healthConfig, nextProbeMs, parseDuration, probeArgv, type HealthConfig } from "./health.ts";

describe("health checks", () => {
  test("durations as Docker (Go) writes them", () => {
    assert.equal(parseDuration("30s", "--x"), 30_000);
    assert.equal(parseDuration("1m30s", "--x"), 90_000);
    assert.equal(parseDuration("1.5s", "--x"), 1500);
    assert.equal(parseDuration("250ms", "--x"), 250);
    assert.equal(parseDuration("1h", "--x"), 3_600_000);
    assert.equal(parseDuration("0", "--x"), 0);
    for (const bad of ["30", "s", "1x", "-1s", "1s2", "", "1µs"]) assert.throws(() => parseDuration(bad, "--health-interval"), /^UsageError: --health-interval .*: not a duration; give one such as 30s, 1m30s or 500ms$/, bad);
  });

  test("--health-cmd over the image's HEALTHCHECK, each value over the image's over Docker's defaults", () => {
    assert.deepEqual(healthConfig({ "health-cmd": ["curl -f localhost"] }, false, undefined), {
      test: ["CMD-SHELL", "curl -f localhost"], intervalMs: 30_000, timeoutMs: 30_000, startPeriodMs: 0, startIntervalMs: 5_000, retries: 3,
    });
    const image = { Test: ["CMD", "/bin/check", "-q"], Interval: 10e9, Timeout: 2e9, StartPeriod: 60e9, StartInterval: 0, Retries: 5 };
    assert.deepEqual(healthConfig({}, false, image), { test: ["CMD", "/bin/check", "-q"], intervalMs: 10_000, timeoutMs: 2_000, startPeriodMs: 60_000, startIntervalMs: 5_000, retries: 5 });
    assert.deepEqual(healthConfig({ "health-interval": ["1s"], "health-retries": ["1"] }, false, image), { test: ["CMD", "/bin/check", "-q"], intervalMs: 1_000, timeoutMs: 2_000, startPeriodMs: 60_000, startIntervalMs: 5_000, retries: 1 });
    assert.equal(healthConfig({}, false, { Test: ["NONE"] }), undefined, "NONE turns an inherited one off");
    assert.equal(healthConfig({}, true, image), undefined, "--no-healthcheck");
    assert.equal(healthConfig({}, false, undefined), undefined);
  });

  test("refusals: --no-healthcheck with --health-*, timings without a check, bad values", () => {
    assert.throws(() => healthConfig({ "health-cmd": ["true"] }, true, undefined), /^UsageError: --no-healthcheck and --health-cmd exclude each other; drop one$/);
    assert.throws(() => healthConfig({ "health-interval": ["1s"] }, false, undefined), /^UsageError: --health-interval: the container has no health check; give --health-cmd/);
    assert.equal(healthConfig({ "health-cmd": ["true"], "health-interval": ["0s"] }, false, undefined)!.intervalMs, 30_000, "0 is the default, as in Docker");
    assert.throws(() => healthConfig({ "health-cmd": ["true"], "health-interval": ["500us"] }, false, undefined), /--health-interval 500us: give 0 for the default, or at least 1 ms/);
    assert.throws(() => healthConfig({}, false, { Test: ["CMD", "x"], Interval: 400_000 }), /^UsageError: the image's Healthcheck\.Interval 400000 ns: give 0 for the default, or at least 1 ms$/);
    assert.throws(() => parseDuration("597h", "--health-interval"), /--health-interval 597h: give at most 596h/);
    assert.throws(() => healthConfig({ "health-cmd": ["true"], "health-retries": ["x"] }, false, undefined), /--health-retries x: give a whole number/);
    assert.throws(() => healthConfig({ "health-cmd": [""] }, false, undefined), /--health-cmd: give the command/);
  });

  test("the probe: CMD's words, CMD-SHELL's through /bin/sh -c", () => {
    assert.deepEqual(probeArgv(["CMD", "/bin/check", "-q"]), ["/bin/check", "-q"]);
    assert.deepEqual(probeArgv(["CMD-SHELL", "test -f /ok"]), ["/bin/sh", "-c", "test -f /ok"]);
  });

  test("Docker's rules: healthy at a success; failures count toward retries, not in the start period before a success", () => {
    const h: HealthConfig = { test: ["CMD", "x"], intervalMs: 1000, timeoutMs: 1000, startPeriodMs: 10_000, startIntervalMs: 100, retries: 2 };
    const r = (exitCode: number) => ({ start: "s", end: "e", exitCode, output: "" });
    let health = afterProbe(h, undefined, r(1), 500);
    assert.deepEqual([health.status, health.failingStreak], ["starting", 0], "a failure in the start period does not count");
    assert.equal(nextProbeMs(h, health, 500), 100, "start-interval while starting in the start period");
    health = afterProbe(h, health, r(0), 600);
    assert.deepEqual([health.status, health.failingStreak], ["healthy", 0]);
    assert.equal(nextProbeMs(h, health, 700), 1000);
    health = afterProbe(h, health, r(1), 800);
    assert.deepEqual([health.status, health.failingStreak], ["healthy", 1], "after a success, failures count also in the start period");
    health = afterProbe(h, health, r(-1), 900);
    assert.deepEqual([health.status, health.failingStreak], ["unhealthy", 2]);
    for (let i = 0; i < 5; i++) health = afterProbe(h, health, r(1), 20_000);
    assert.equal(health.log.length, 5, "the last five results are kept");
    assert.deepEqual([afterProbe(h, undefined, r(1), 20_000).status, afterProbe(h, undefined, r(1), 20_000).failingStreak], ["starting", 1], "after the start period a failure counts");
  });
});
