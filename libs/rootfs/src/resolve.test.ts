import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";
import { after, before, describe, test } from "node:test";
import { lstatIfAny, resolveInRoot, statIfAny } from "./resolve.ts";

let base: string;
let root: string;

// A rootfs whose links try to leave it the ways a hostile image would.
before(() => {
  base = mkdtempSync(join(tmpdir(), "corerun-resolve-test-"));
  root = join(base, "rootfs");
  for (const d of ["etc", "bin", "usr/lib", "srv/data"]) mkdirSync(join(root, d), { recursive: true });
  symlinkSync("/etc", join(root, "escape"));
  symlinkSync("../../..", join(root, "usr/lib/up"));
  symlinkSync("../../../../../../../etc", join(root, "srv/deep"));
  symlinkSync("busybox", join(root, "bin/sh"));
  symlinkSync("/srv/data", join(root, "data"));
  symlinkSync("data", join(root, "chain"));
  symlinkSync("loop-b", join(root, "loop-a"));
  symlinkSync("loop-a", join(root, "loop-b"));
  symlinkSync("self", join(root, "self"));
  symlinkSync("./.", join(root, "dot"));
});

after(() => {
  if (base.startsWith(tmpdir() + sep) && base.includes("corerun-resolve-test-")) rmSync(base, { recursive: true, force: true });
});

describe("resolveInRoot", () => {
  test("a plain path is joined to the root", () => {
    assert.equal(resolveInRoot(root, "/etc/passwd"), join(root, "etc/passwd"));
    assert.equal(resolveInRoot(root, "etc//./passwd"), join(root, "etc/passwd"));
    assert.equal(resolveInRoot(root, "/"), root);
  });

  test("an absolute link target restarts at the root, not at the host's /", () => {
    assert.equal(resolveInRoot(root, "/escape"), join(root, "etc"));
    assert.equal(resolveInRoot(root, "/escape/shadow"), join(root, "etc/shadow"));
  });

  test("a relative link that climbs with .. stops at the root", () => {
    assert.equal(resolveInRoot(root, "/usr/lib/up"), root);
    assert.equal(resolveInRoot(root, "/usr/lib/up/etc/passwd"), join(root, "etc/passwd"));
    assert.equal(resolveInRoot(root, "/srv/deep"), join(root, "etc"));
  });

  test(".. in the path itself stops at the root", () => {
    assert.equal(resolveInRoot(root, "/../../../etc"), join(root, "etc"));
    assert.equal(resolveInRoot(root, "/bin/../../etc"), join(root, "etc"));
  });

  test("relative and chained links resolve inside the root", () => {
    assert.equal(resolveInRoot(root, "/bin/sh"), join(root, "bin/busybox"));
    assert.equal(resolveInRoot(root, "/chain/file"), join(root, "srv/data/file"));
    assert.equal(resolveInRoot(root, "/dot/etc"), join(root, "etc"));
  });

  test("missing components are appended as they are", () => {
    assert.equal(resolveInRoot(root, "/nope/a/b"), join(root, "nope/a/b"));
    assert.equal(resolveInRoot(root, "/escape/new/dir"), join(root, "etc/new/dir"));
  });

  test("a link loop is an error, not a hang", () => {
    assert.throws(() => resolveInRoot(root, "/loop-a"), /^UsageError: \/loop-a in the root filesystem .*: too many levels of symbolic links \(a loop/);
    assert.throws(() => resolveInRoot(root, "/self/x"), /too many levels of symbolic links/);
  });

  test("the result is always inside the root", () => {
    for (const p of ["/escape", "/usr/lib/up/..", "/srv/deep/..", "/../..", "/chain/../../.."]) {
      const r = resolveInRoot(root, p);
      assert.ok(r === root || r.startsWith(root + sep), `${p} -> ${r}`);
    }
  });

  // Once a component is missing, the rest of the path (".." included) is appended and then
  // normalised by path.join, so it can climb out of the root.
  test("a missing component followed by .. stays inside the root", () => {
    symlinkSync("missing/../../../../../../../etc", join(root, "sneaky"));
    for (const p of ["/missing/../../../../../../../etc", "/sneaky"]) {
      const r = resolveInRoot(root, p);
      assert.ok(r === root || r.startsWith(root + sep), `${p} -> ${r}`);
    }
  });
});

describe("lstatIfAny and statIfAny", () => {
  test("a path that exists: its stats, the link itself for lstat and its target for stat", () => {
    assert.equal(lstatIfAny(join(root, "etc"))?.isDirectory(), true);
    assert.equal(lstatIfAny(join(root, "bin/sh"))?.isSymbolicLink(), true);
    assert.equal(statIfAny(join(root, "usr/lib"))?.isDirectory(), true);
  });

  test("a missing path, a path below a file and a dangling link: undefined, not an exception", () => {
    writeFileSync(join(root, "etc/file"), "");
    assert.equal(lstatIfAny(join(root, "etc/none")), undefined);
    assert.equal(lstatIfAny(join(root, "etc/file/below")), undefined);
    assert.equal(statIfAny(join(root, "etc/file/below")), undefined);
    assert.equal(statIfAny(join(root, "bin/sh")), undefined);
  });
});
