import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { State } from "@corerun/state";
import { age, displayStatus, psFilter, shownByDefault } from "./lifecycle.ts";

const base: State = {
  version: 1, id: "0123456789ab", status: "running", created: "2026-01-01T00:00:00.000Z", mountPoints: [],
  config: { rootfs: "/r", command: ["sh"], env: [], cwd: "/", volumes: [], network: { mode: "none", ports: [] }, limits: {}, cgroupParent: "corerun" },
};
// A process that is certainly gone: pid 1 with an impossible start time.
const dead = { pid: 1, startTime: -1 };

describe("ps statuses", () => {
  test("an exited detached container shows its exit code and is listed only with -a", () => {
    const s: State = { ...base, status: "stopped", exitCode: 3, detached: { monitor: dead, rm: false, finished: "2026-01-01T00:00:01.000Z" } };
    assert.equal(displayStatus(s), "exited (3)");
    assert.equal(shownByDefault(s), false);
  });

  test("a running detached container whose monitor is gone is monitor-lost", () => {
    const s: State = { ...base, detached: { monitor: dead, rm: false } };
    assert.equal(displayStatus(s), "monitor-lost");
    assert.equal(shownByDefault(s), true);
  });

  test("a foreground container whose corerun is gone is orphaned", () => {
    assert.equal(displayStatus({ ...base, owner: dead }), "orphaned");
  });

  test("age is given in its largest whole unit", () => {
    const t = Date.parse(base.created);
    assert.equal(age(base.created, t + 5_000), "5s ago");
    assert.equal(age(base.created, t + 125_000), "2m ago");
    assert.equal(age(base.created, t + 3 * 3600_000), "3h ago");
    assert.equal(age(base.created, t + 49 * 3600_000), "2d ago");
  });
});

describe("ps --filter", () => {
  const exited: State = { ...base, id: "abcdef012345", status: "stopped", exitCode: 0, config: { ...base.config, name: "web-1", labels: { app: "web", tier: "front" } }, detached: { monitor: dead, rm: false, finished: "2026-01-01T00:00:01.000Z" } };
  const orphan: State = { ...base, owner: dead, config: { ...base.config, name: "db", labels: { app: "db" } } };
  const pick = (...f: string[]) => [exited, orphan].filter(psFilter(f).match).map((s) => s.config.name);

  test("labels must all match; names by regular expression, ids by prefix, Docker's statuses; one key's values match when any does", () => {
    assert.deepEqual(pick("label=app"), ["web-1", "db"]);
    assert.deepEqual(pick("label=app=web"), ["web-1"]);
    assert.deepEqual(pick("label=app", "label=tier=front"), ["web-1"]);
    assert.deepEqual(pick("label=app=web", "label=app=db"), []);
    assert.deepEqual(pick("name=^web-\\d$"), ["web-1"]);
    assert.deepEqual(pick("name=web", "name=db"), ["web-1", "db"]);
    assert.deepEqual(pick("id=abc"), ["web-1"]);
    assert.deepEqual(pick("status=exited"), ["web-1"]);
    assert.deepEqual(pick("status=dead", "label=app"), ["db"]);
    assert.equal(psFilter(["status=exited"]).anyStatus, true, "a status filter looks at exited containers without -a");
    assert.equal(psFilter(["label=x"]).anyStatus, false);
    const checked: State = { ...base, health: { status: "healthy", failingStreak: 0, log: [] } };
    assert.deepEqual([psFilter(["health=healthy"]).match(checked), psFilter(["health=none"]).match(checked), psFilter(["health=none"]).match(base)], [true, false, true]);
    assert.throws(() => psFilter(["health=sick"]), /^UsageError: --filter health=sick: give one of starting, healthy, unhealthy, none$/);
  });

  test("an unknown key, status or a bad expression is refused in one line", () => {
    assert.throws(() => psFilter(["ancestor=busybox"]), /^UsageError: --filter "ancestor=busybox": give label=KEY\[=VALUE\], name=NAME, id=ID, status=STATUS or health=STATUS$/);
    assert.throws(() => psFilter(["label"]), /--filter "label": give label=KEY/);
    assert.throws(() => psFilter(["status=stopped"]), /^UsageError: --filter status=stopped: give one of created, restarting, running, paused, exited, dead$/);
    assert.throws(() => psFilter(["name=("]), /^UsageError: --filter name=\(: not a regular expression$/);
  });
});
