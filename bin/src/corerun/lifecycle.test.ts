import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { State } from "@corerun/state";
import { age, displayStatus, shownByDefault } from "./lifecycle.ts";

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
