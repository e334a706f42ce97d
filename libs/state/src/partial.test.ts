import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";
import { after, describe, test } from "node:test";
import { judgePartial, removePartial, sweepUnpublished } from "./partial.ts";
import { procStartTime } from "./proc.ts";
import type { ContainerConfig } from "./schema.ts";
import { createContainer, OWNER_FILE, readState } from "./store.ts";

const base = mkdtempSync(join(tmpdir(), "corerun-partial-test-"));
after(() => {
  if (base.startsWith(tmpdir() + sep) && base.includes("corerun-partial-test-")) rmSync(base, { recursive: true, force: true });
});

let n = 0;
function freshRoot(): string {
  const root = join(base, `root${n++}`);
  mkdirSync(root);
  return root;
}

const config: ContainerConfig = {
  rootfs: "/srv/rootfs", command: ["sh"], hostname: undefined, env: [], cwd: "/", volumes: [], network: { mode: "none", ports: [] },
  limits: {}, cgroupParent: "corerun",
};

const self = { pid: process.pid, startTime: procStartTime(process.pid)! };

/** A process that has exited and been reaped: its pid and the start time it had. */
function deadRef(): { pid: number; startTime: number } {
  const r = spawnSync(process.execPath, ["-e", "process.stdout.write(require('fs').readFileSync('/proc/self/stat','utf8'))"], { encoding: "utf8" });
  return { pid: r.pid, startTime: Number(r.stdout.slice(r.stdout.lastIndexOf(")") + 2).split(" ")[19]) };
}

/** A container directory as a corerun killed halfway through writing it would leave it. */
function partialDir(root: string, id: string, owner: unknown, files: Record<string, string> = {}): string {
  const dir = join(root, id);
  mkdirSync(dir);
  if (owner !== undefined) writeFileSync(join(dir, OWNER_FILE), JSON.stringify(owner));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

describe("a container directory appears whole", () => {
  test("createContainer leaves the directory with its owner and state, and nothing else", () => {
    const root = freshRoot();
    const { id, dir, path } = createContainer(root, config, { owner: self });
    assert.deepEqual(readdirSync(root), [id]);
    assert.deepEqual(readdirSync(dir).sort(), [OWNER_FILE, "state.json"]);
    assert.equal(readState(path).owner?.pid, process.pid);
    assert.deepEqual(judgePartial(root, id), { owner: "alive", ref: self });
  });
});

describe("judgePartial and removePartial", () => {
  test("a directory whose owner died is removed, whatever is left in it", () => {
    const root = freshRoot();
    const dead = deadRef();
    for (const [id, files] of [
      ["aaaaaaaaaaaa", {}],
      ["bbbbbbbbbbbb", { "state.json.tmp": '{"version":1,"status":"creating"' }],
      ["cccccccccccc", { "state.json": "{not json" }],
    ] as const) {
      partialDir(root, id, dead, files);
      assert.deepEqual(removePartial(root, id), { owner: "dead", ref: dead });
      assert.equal(existsSync(join(root, id)), false);
    }
  });

  test("a directory whose owner lives is kept", () => {
    const root = freshRoot();
    const dir = partialDir(root, "dddddddddddd", self, { "state.json.tmp": "{" });
    assert.deepEqual(removePartial(root, "dddddddddddd"), { owner: "alive", ref: self });
    assert.ok(existsSync(dir));
  });

  test("a live pid with another start time is a reused pid: its owner is dead", () => {
    const root = freshRoot();
    partialDir(root, "eeeeeeeeeeee", { pid: process.pid, startTime: self.startTime + 1 });
    assert.equal(removePartial(root, "eeeeeeeeeeee").owner, "dead");
  });

  test("without a readable owner nothing is proven, and nothing is removed", () => {
    const root = freshRoot();
    partialDir(root, "ffffffffffff", undefined);
    partialDir(root, "111111111111", "not an owner");
    for (const id of ["ffffffffffff", "111111111111"]) {
      assert.deepEqual(removePartial(root, id), { owner: "unknown" });
      assert.ok(existsSync(join(root, id)));
    }
  });
});

describe("sweepUnpublished", () => {
  test("removes the .new- directories of dead makers only, and nothing else", () => {
    const root = freshRoot();
    const dead = deadRef();
    const gone = `.new-222222222222-${dead.pid}-${dead.startTime}`;
    const mine = `.new-333333333333-${self.pid}-${self.startTime}`;
    for (const d of [gone, mine, ".new-junk", "444444444444"]) mkdirSync(join(root, d));
    writeFileSync(join(root, gone, "state.json.tmp"), "{");
    assert.deepEqual(sweepUnpublished(root), [gone]);
    assert.deepEqual(readdirSync(root).sort(), [".new-junk", mine, "444444444444"].sort());
  });

  test("a missing root has nothing to sweep", () => {
    assert.deepEqual(sweepUnpublished(join(base, "missing")), []);
  });
});
