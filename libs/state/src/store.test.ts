import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";
import { after, describe, test } from "node:test";
import type { ContainerConfig, ProcessRef, State } from "./schema.ts";
import {
  checkStateRoot, containerDir, createContainer, DEFAULT_ROOT, listContainers, readState, readStates, removeContainer, requestStart, restartContainer, setStatus, startRefusal,
  stateRoot, updateState, writeStateFile,
} from "./store.ts";

const base = mkdtempSync(join(tmpdir(), "corerun-state-test-"));
after(() => {
  // Only ever the directory this file created.
  if (base.startsWith(tmpdir() + sep) && base.includes("corerun-state-test-")) rmSync(base, { recursive: true, force: true });
});

let n = 0;
function freshRoot(): string {
  return join(base, `root${n++}`);
}

const config: ContainerConfig = {
  rootfs: "/srv/rootfs",
  command: ["sh"],
  hostname: undefined,
  env: [],
  cwd: "/",
  volumes: [],
  network: { mode: "none", ports: [] },
      limits: {},
      cgroupParent: "corerun",
};

/** Every path under `dir`, relative, sorted. */
function tree(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).sort();
}

describe("stateRoot", () => {
  test("--root wins over CORERUN_ROOT, which wins over the default", () => {
    assert.equal(stateRoot("/a", { CORERUN_ROOT: "/b" }), "/a");
    assert.equal(stateRoot(undefined, { CORERUN_ROOT: "/b" }), "/b");
    assert.equal(stateRoot(undefined, {}), DEFAULT_ROOT);
  });

  test("a relative root is made absolute", () => {
    assert.equal(stateRoot("rel", {}), join(process.cwd(), "rel"));
  });

  test("an empty --root is refused and an empty CORERUN_ROOT is unset: neither is the working directory", () => {
    assert.throws(() => stateRoot("", {}), { name: "UsageError", message: /^--root "": give the state directory/ });
    assert.equal(stateRoot(undefined, { CORERUN_ROOT: "" }, 0), DEFAULT_ROOT);
  });
});

describe("checkStateRoot", () => {
  test("creates a missing root with mode 0700", () => {
    const root = join(freshRoot(), "nested", "state");
    checkStateRoot(root);
    assert.equal(statSync(root).mode & 0o777, 0o700);
  });

  test("a root that cannot be created names --root and CORERUN_ROOT", () => {
    // Under a regular file, even root cannot create a directory, so this holds for every user.
    const file = join(base, "a-file");
    writeFileSync(file, "");
    const root = join(file, "x");
    assert.throws(() => checkStateRoot(root), (e: unknown) => {
      assert.ok(e instanceof Error);
      assert.match(e.message, new RegExp(`^state root ${root} cannot be written \\(ENOTDIR\\)`));
      assert.match(e.message, /--root DIR/);
      assert.match(e.message, /CORERUN_ROOT/);
      return true;
    });
  });
});

describe("container state", () => {
  test("createContainer writes a creating state that readState returns", () => {
    const root = freshRoot();
    const { id, dir, path, state } = createContainer(root, config, { owner: { pid: process.pid, startTime: 1 } });
    assert.match(id, /^[0-9a-f]{12}$/);
    assert.equal(dir, join(root, id));
    assert.equal(path, join(root, id, "state.json"));
    assert.equal(state.status, "creating");
    assert.deepEqual(state.owner, { pid: process.pid, startTime: 1 });
    // JSON drops the undefined hostname; everything else comes back as written.
    assert.deepEqual(readState(path), JSON.parse(JSON.stringify(state)));
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.deepEqual(tree(dir), ["owner", "state.json"]);
    assert.equal(statSync(path).mode & 0o777, 0o600);
  });

  test("two containers get different ids and both are listed", () => {
    const root = freshRoot();
    const a = createContainer(root, config);
    const b = createContainer(root, config);
    assert.notEqual(a.id, b.id);
    assert.deepEqual(listContainers(root), [a.id, b.id].sort());
  });

  test("updateState applies a valid transition atomically and leaves no temp file", () => {
    const root = freshRoot();
    const { dir, path } = createContainer(root, config);
    const next = updateState(path, () => ({ status: "running", init: { pid: 42, startTime: 7 } }));
    assert.equal(next.status, "running");
    assert.deepEqual(readState(path).init, { pid: 42, startTime: 7 });
    setStatus(path, "stopped", { exitCode: 3 });
    assert.equal(readState(path).status, "stopped");
    assert.equal(readState(path).exitCode, 3);
    assert.ok(!tree(dir).some((f) => f.endsWith(".tmp")), tree(dir).join(" "));
  });

  test("updateState refuses an invalid transition and keeps the old state", () => {
    const root = freshRoot();
    const { id, path } = createContainer(root, config);
    setStatus(path, "stopped");
    assert.throws(() => setStatus(path, "running"), new RegExp(`container ${id} cannot go from stopped to running`));
    assert.equal(readState(path).status, "stopped");
  });

  test("a patch that keeps the status is not a transition", () => {
    const root = freshRoot();
    const { path } = createContainer(root, config);
    assert.equal(updateState(path, () => ({ status: "creating", exitCode: 1 })).exitCode, 1);
  });

  test("writeStateFile replaces the whole file", () => {
    const root = freshRoot();
    const { path, state } = createContainer(root, config);
    writeStateFile(path, { ...state, config: { ...config, command: ["a", "b"] } });
    assert.deepEqual(JSON.parse(readFileSync(path, "utf8")).config.command, ["a", "b"]);
  });

  test("readState of a missing container names the path", () => {
    const path = join(freshRoot(), "0123456789ab", "state.json");
    assert.throws(() => readState(path), { message: `no container state at ${path}` });
  });

  test("a state read back as this process wrote it is taken as it is; one another writer changed is checked", () => {
    const root = freshRoot();
    const { path, state } = createContainer(root, config);
    // A value the schema refuses, written by this process (as no typed caller can): read back unchecked.
    const odd = { ...state, status: "zombie" } as unknown as State;
    writeStateFile(path, odd);
    assert.equal(readState(path).status, "zombie");
    // The same JSON in another layout is another writer's file: checked, and refused.
    writeFileSync(path, JSON.stringify(odd));
    assert.throws(() => readState(path), new RegExp(`invalid state file ${path}: status: `));
  });

  test("readState of a corrupt file names the field", () => {
    const root = freshRoot();
    const { path, state } = createContainer(root, config);
    writeFileSync(path, JSON.stringify({ ...state, status: "zombie" }));
    assert.throws(() => readState(path), new RegExp(`invalid state file ${path}: status: `));
  });

  test("readStates: every readable state, or those pick keeps on the file's JSON; only kept ones must match the schema", () => {
    const root = freshRoot();
    const a = createContainer(root, { ...config, name: "a" });
    const b = createContainer(root, { ...config, name: "b" });
    const bad = createContainer(root, { ...config, name: "bad" });
    writeFileSync(bad.path, JSON.stringify({ ...bad.state, status: "zombie" }));
    const junk = createContainer(root, config);
    writeFileSync(junk.path, "[1, 2");
    assert.deepEqual(readStates(root).map((s) => s.id), [a.id, b.id].sort());
    const seen: unknown[] = [];
    const picked = readStates(root, (raw) => {
      seen.push(raw.config?.name);
      return raw.config?.name === "b" || raw.config?.name === "bad";
    });
    assert.deepEqual(picked.map((s) => s.id), [b.id]);
    // The corrupt file is skipped before pick; the others all reach it.
    assert.deepEqual(seen.sort(), ["a", "b", "bad"]);
  });

  test("listContainers ignores what is not a container and a missing root", () => {
    const root = freshRoot();
    const { id } = createContainer(root, config);
    mkdirSync(join(root, "not-a-container"));
    writeFileSync(join(root, "0123456789AB"), "");
    assert.deepEqual(listContainers(root), [id]);
    assert.deepEqual(listContainers(join(root, "missing")), []);
  });

  test("removeContainer removes that container only", () => {
    const root = freshRoot();
    const a = createContainer(root, config);
    const b = createContainer(root, config);
    updateState(a.path, () => ({}));
    removeContainer(root, a.id);
    assert.deepEqual(listContainers(root), [b.id]);
    assert.deepEqual(readState(b.path).id, b.id);
  });

  test("removeContainer removes what a run leaves in the directory, and no file a symlink in it points to", () => {
    const root = freshRoot();
    const a = createContainer(root, config);
    const outside = join(root, "outside");
    mkdirSync(outside);
    writeFileSync(join(outside, "keep"), "x");
    mkdirSync(join(a.dir, "etc", "deeper"), { recursive: true });
    writeFileSync(join(a.dir, "etc", "hosts"), "");
    writeFileSync(join(a.dir, "etc", "deeper", "file"), "");
    execFileSync("mkfifo", [join(a.dir, "ready")]);
    symlinkSync(outside, join(a.dir, "link"));
    removeContainer(root, a.id);
    assert.deepEqual(listContainers(root), []);
    assert.equal(readFileSync(join(outside, "keep"), "utf8"), "x");
    removeContainer(root, a.id);
  });

  test("an id that is not 12 hex digits never becomes a path", () => {
    assert.throws(() => containerDir("/run/corerun", "../../etc"), /invalid container id "..\/..\/etc"/);
    assert.throws(() => removeContainer(freshRoot(), ".."), /invalid container id/);
  });
});

describe("starting an exited detached container again", () => {
  const monitor: ProcessRef = { pid: 4242, startTime: 7 };
  const gone = () => false;
  const image = { id: "sha256:abc", ref: "busybox", target: "/r/x/rootfs", lower: ["/r/layers/l1"], upper: "/r/x/upper", work: "/r/x/work" };

  /** A run -d container as its monitor leaves it at the exit: stopped, finished, its layer recorded. */
  function exited(root: string, change: (s: State) => Partial<State> = () => ({})): { path: string } {
    const c = createContainer(root, config, { owner: monitor, detached: { monitor, rm: false, start: { argv: ["run", "-d", "busybox"], cwd: "/" } } });
    updateState(c.path, () => ({ status: "running" }));
    updateState(c.path, (s) => ({ status: "stopped", exitCode: 3, image, detached: { ...s.detached!, finished: "2026-01-01T00:00:00.000Z", restartCount: 4, backoffMs: 800, stoppedByUser: true } }));
    updateState(c.path, change);
    return c;
  }

  test("requestStart marks it to start again with its policy afresh; restartContainer then takes it, keeping its image record", () => {
    const c = exited(freshRoot());
    const asked = requestStart(c.path, "web", gone);
    assert.deepEqual([asked.status, asked.detached?.restarting, asked.detached?.stoppedByUser, asked.detached?.restartCount, asked.detached?.backoffMs], ["stopped", true, false, 0, 0]);
    const owner = { pid: 5000, startTime: 9 };
    const again = restartContainer(c.path, owner);
    assert.ok(again);
    assert.deepEqual([again.status, again.owner, again.exitCode, again.detached?.restarting, again.detached?.finished], ["creating", owner, undefined, false, undefined]);
    assert.deepEqual(again.image, image, "the writable layer's record stays until the new run mounts it");
    assert.deepEqual([readState(c.path).status, readState(c.path).image], ["creating", image], "as written");
  });

  const refused: [string, (s: State) => Partial<State>, boolean, RegExp][] = [
    ["a running one", () => ({ status: "running" as never }), true, /^container web is running; corerun stop web stops it$/],
    ["one whose monitor died while it ran", () => ({ status: "running" as never }), false, /lost its monitor while it ran; corerun rm -f web/],
    ["a restarting one", (s) => ({ detached: { ...s.detached!, restarting: true } }), true, /^container web is restarting: .*corerun stop web ends that$/],
    ["one whose monitor is still finishing", () => ({}), true, /still finishing/],
    ["a --rm one", (s) => ({ detached: { ...s.detached!, rm: true } }), false, /was run with --rm/],
    ["one of a corerun that recorded no command line", (s) => ({ detached: { ...s.detached!, start: undefined } }), false, /did not record its command line/],
    ["a foreground one", () => ({ detached: undefined }), false, /ran in the foreground/],
  ];
  for (const [what, change, monitorAlive, message] of refused) {
    test(`refuses ${what} in one line, changing nothing`, () => {
      const c = exited(freshRoot(), (s) => (change(s).status === "running" ? {} : change(s)));
      // A status back from stopped is no transition: it is written as such, as a crash would leave it.
      const patch = change(readState(c.path));
      if (patch.status) writeStateFile(c.path, { ...readState(c.path), ...patch });
      const before = readFileSync(c.path, "utf8");
      assert.match(startRefusal(readState(c.path), "web", () => monitorAlive) ?? "", message);
      assert.throws(() => requestStart(c.path, "web", () => monitorAlive), (e: unknown) => e instanceof Error && message.test(e.message) && !e.message.includes("\n"));
      assert.equal(readFileSync(c.path, "utf8"), before);
    });
  }

  test("a foreground container still running is named as such", () => {
    const root = freshRoot();
    const c = createContainer(root, config);
    updateState(c.path, () => ({ status: "running" }));
    assert.match(startRefusal(readState(c.path), "fg", gone) ?? "", /^container fg is running in the foreground/);
  });
});
