import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { canTransition, parseState, STATE_VERSION, Status, type State } from "./schema.ts";

function validState(): State {
  return {
    version: STATE_VERSION,
    id: "0123456789ab",
    status: "running",
    created: "2026-01-01T00:00:00.000Z",
    config: {
      rootfs: "/srv/rootfs",
      command: ["sh", "-c", "true"],
      hostname: "box",
      env: ["A=1"],
      cwd: "/",
      volumes: [{ source: "/data", target: "/data", readonly: true }],
      network: { mode: "none", ports: [] },
      limits: {},
      cgroupParent: "corerun",
    },
    owner: { pid: 100, startTime: 12345 },
    init: { pid: 101, startTime: 12346 },
    mountPoints: [{ path: "/srv/rootfs/proc", kind: "dir" }],
  };
}

/** A valid state with one change; `as never` lets a change put in a value the type forbids. */
function withChange(change: (s: State) => void): unknown {
  const s = structuredClone(validState());
  change(s);
  return s;
}

describe("parseState", () => {
  test("accepts a valid state unchanged", () => {
    assert.deepEqual(parseState(validState(), "/run/corerun/x/state.json"), validState());
  });

  test("fills in mountPoints when an older file has none", () => {
    const parsed = parseState(withChange((s) => Reflect.deleteProperty(s, "mountPoints")), "p");
    assert.deepEqual(parsed.mountPoints, []);
  });

  test("a detached container's recorded start (argv and cwd) is kept; a file from before it has none", () => {
    const start = { argv: ["run", "-d", "--name", "web", "busybox:latest"], cwd: "/home/u" };
    const detached = { monitor: { pid: 200, startTime: 1 }, rm: false, start };
    assert.deepEqual(parseState(withChange((s) => (s.detached = detached)), "p").detached?.start, start);
    assert.equal(parseState(withChange((s) => (s.detached = { monitor: { pid: 200, startTime: 1 }, rm: false })), "p").detached?.start, undefined);
  });

  const bad: [string, (s: State) => void, RegExp][] = [
    ["a recorded start without its directory", (s) => (s.detached = { monitor: { pid: 200, startTime: 1 }, rm: false, start: { argv: ["run"] } as never }), /: detached\.start\.cwd: /],
    ["a recorded start whose words are not strings", (s) => (s.detached = { monitor: { pid: 200, startTime: 1 }, rm: false, start: { argv: [1] as never, cwd: "/" } }), /: detached\.start\.argv\.0: /],
    ["an unknown status", (s) => (s.status = "exited" as never), /: status: /],
    ["an id that is not 12 hex digits", (s) => (s.id = "../../etc"), /: id: /],
    ["another version", (s) => (s.version = 2 as never), /: version: /],
    ["an empty command", (s) => (s.config.command = []), /: config\.command: /],
    ["a volume without readonly", (s) => Reflect.deleteProperty(s.config.volumes[0]!, "readonly"), /: config\.volumes\.0\.readonly: /],
    ["a pid of 0", (s) => (s.init!.pid = 0), /: init\.pid: /],
    ["a fractional pid", (s) => (s.owner!.pid = 1.5), /: owner\.pid: /],
    ["an unknown network mode", (s) => (s.config.network = "bridge" as never), /: config\.network: /],
    ["an unknown mount point kind", (s) => (s.mountPoints[0]!.kind = "fifo" as never), /: mountPoints\.0\.kind: /],
  ];
  for (const [what, change, field] of bad) {
    test(`rejects ${what}, naming the file and the field`, () => {
      assert.throws(() => parseState(withChange(change), "/run/corerun/x/state.json"), (e: unknown) => {
        assert.ok(e instanceof Error);
        assert.match(e.message, /^invalid state file \/run\/corerun\/x\/state\.json/);
        assert.match(e.message, field);
        return true;
      });
    });
  }

  test("rejects something that is not an object", () => {
    assert.throws(() => parseState(null, "p"), /invalid state file p: /);
    assert.throws(() => parseState([], "p"), /invalid state file p: /);
  });
});

describe("status transitions", () => {
  const all = Status.options;

  test("the runtime-spec's lifecycle with runc's paused: creating → created → running ⇄ paused → stopped", () => {
    const allowed = all.flatMap((from) => all.filter((to) => canTransition(from, to)).map((to) => `${from}->${to}`));
    assert.deepEqual(allowed.sort(), [
      "created->running", "created->stopped", "creating->created", "creating->running", "creating->stopped",
      "paused->running", "paused->stopped", "running->paused", "running->stopped",
    ]);
  });

  test("no status goes back or stays put through a transition", () => {
    for (const s of all) assert.equal(canTransition(s, s), false, s);
    assert.equal(canTransition("running", "creating"), false);
    assert.equal(canTransition("stopped", "running"), false);
  });
});
