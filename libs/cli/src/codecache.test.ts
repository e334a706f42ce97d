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


describe("the run code cache", () => {
  test("saved once through the loader's directory fd: a cache V8 takes for the same source, no temporary file left, the fd closed", () => {
    const dir = mkdtempSync(join(base, "dist-"));
    const script = new Script(SOURCE, { filename: "x.bundle.cjs" });
    assert.equal((script.runInThisContext() as () => number)(), 42);
    const fd = openSync(dir, "r");
    slot[KEY] = { cache: "build", script, dir: fd, name: "x.bundle.run-cache" };
    assert.equal(codeCacheUsed(), "build");
    saveCodeCache();
    assert.deepEqual(readdirSync(dir), ["x.bundle.run-cache"]);
    const data = readFileSync(join(dir, "x.bundle.run-cache"));
    assert.ok(data.length > 0);
    assert.equal(new Script(SOURCE, { filename: "x.bundle.cjs", cachedData: data }).cachedDataRejected, false);
    assert.equal(isOpen(fd), false, "the directory fd is closed");
    // A second call in the same process writes nothing.
    rmSync(join(dir, "x.bundle.run-cache"));
    saveCodeCache();
    assert.deepEqual(readdirSync(dir), []);
  });

  test("a process compiled with a run cache, or by hand without the loader, saves nothing", () => {
    slot[KEY] = { cache: "run" };
    assert.equal(codeCacheUsed(), "run");
    saveCodeCache();
    delete slot[KEY];
    assert.equal(codeCacheUsed(), undefined);
    saveCodeCache();
  });

  test("a directory that cannot take the file (gone meanwhile) is no error: nothing is left, the fd is closed", () => {
    const dir = join(base, "gone");
    mkdirSync(dir);
    const fd = openSync(dir, "r");
    rmdirSync(dir);
    slot[KEY] = { cache: "build", script: new Script(SOURCE), dir: fd, name: "x.bundle.run-cache" };
    saveCodeCache();
    assert.equal(existsSync(dir), false);
    assert.equal(isOpen(fd), false);
    delete slot[KEY];
  });
});
