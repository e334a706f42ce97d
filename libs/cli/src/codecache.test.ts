import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";
import { after, describe, test } from "node:test";
import { Script } from "node:vm";
import { codeCacheUsed, saveCodeCache } from "./codecache.ts";
import { isOpen } from "./testing.ts";

const base = mkdtempSync(join(tmpdir(), "corerun-codecache-test-"));
after(() => {
  // Only ever the directory this file created.
  if (base.startsWith(tmpdir() + sep) && base.includes("corerun-codecache-test-")) rmSync(base, { recursive: true, force: true });
});

const KEY = Symbol.for("corerun.codeCache");
const slot = process as unknown as Record<symbol, unknown>;
const SOURCE = "(function () { function lazy(n) { return n * 2; } return lazy(21); })";


/** The run cache's first line and V8's data after it. */
function parse(file: Buffer): { head: string[]; data: Buffer } {
  const nl = file.indexOf(10);
  return { head: file.subarray(0, nl).toString("latin1").split(" "), data: file.subarray(nl + 1) };
}

describe("the run code cache", () => {
  test("a kind without a run cache leaves one: a file of its own, its build, length and kind first, then a cache V8 takes; no temporary file; the fd closed", () => {
    const dir = mkdtempSync(join(base, "dist-"));
    const script = new Script(SOURCE, { filename: "x.bundle.cjs" });
    assert.equal((script.runInThisContext() as () => number)(), 42);
    const fd = openSync(dir, "r");
    slot[KEY] = { cache: "build", script, dir: fd, name: "x.bundle.run-cache", build: "b1" };
    assert.equal(codeCacheUsed(), "build");
    saveCodeCache("run");
    assert.deepEqual(readdirSync(dir), ["x.bundle.run-cache.run"]);
    const { head, data } = parse(readFileSync(join(dir, "x.bundle.run-cache.run")));
    assert.deepEqual(head, ["corerun-code-cache", "b1", String(data.length), "run"]);
    assert.ok(data.length > 0);
    assert.equal(new Script(SOURCE, { filename: "x.bundle.cjs", cachedData: data }).cachedDataRejected, false);
    assert.equal(isOpen(fd), false, "the directory fd is closed");
    // A second call in the same process writes nothing.
    rmSync(join(dir, "x.bundle.run-cache.run"));
    saveCodeCache("create");
    assert.deepEqual(readdirSync(dir), []);
  });

  test("a process compiled with its kind's run cache writes nothing; one compiled with another kind's leaves a file for its own, beside the other", () => {
    const dir = mkdtempSync(join(base, "dist-"));
    const script = new Script(SOURCE, { filename: "x.bundle.cjs" });
    const held = openSync(dir, "r");
    slot[KEY] = { cache: "run", script, dir: held, name: "x.bundle.run-cache", build: "b1", kind: "run" };
    saveCodeCache("run");
    assert.deepEqual(readdirSync(dir), [], "run is held: nothing written");
    assert.equal(isOpen(held), false);
    const fd = openSync(dir, "r");
    slot[KEY] = { cache: "run", script, dir: fd, name: "x.bundle.run-cache", build: "b1", kind: "run" };
    saveCodeCache("create");
    assert.deepEqual(readdirSync(dir), ["x.bundle.run-cache.create"]);
    assert.deepEqual(parse(readFileSync(join(dir, "x.bundle.run-cache.create"))).head.slice(3), ["create"]);
  });

  test("without the loader (a test, tsx) nothing is saved", () => {
    delete slot[KEY];
    assert.equal(codeCacheUsed(), undefined);
    saveCodeCache("run");
  });

  test("a directory this process may not write to: the cache is not even made; the fd is closed", () => {
    // /proc/self refuses writes even to root (EPERM), as a read-only install or another owner's dist/ would.
    const fd = openSync("/proc/self", "r");
    let made = false;
    const script = new Script(SOURCE);
    script.createCachedData = () => {
      made = true;
      return Buffer.alloc(0);
    };
    slot[KEY] = { cache: "build", script, dir: fd, name: "x.bundle.run-cache", build: "b1" };
    saveCodeCache("run");
    assert.equal(made, false);
    assert.equal(isOpen(fd), false);
    delete slot[KEY];
  });

  test("a directory that cannot take the file (gone meanwhile) is no error: nothing is left, the fd is closed", () => {
    const dir = join(base, "gone");
    mkdirSync(dir);
    const fd = openSync(dir, "r");
    rmdirSync(dir);
    slot[KEY] = { cache: "build", script: new Script(SOURCE), dir: fd, name: "x.bundle.run-cache", build: "b1" };
    saveCodeCache("run");
    assert.equal(existsSync(dir), false);
    assert.equal(isOpen(fd), false);
    delete slot[KEY];
  });
});
