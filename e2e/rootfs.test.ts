/**
 * tools/rootfs/build.sh: the rootfs every e2e file shares, and --check, which tells whether it
 * is still as built. Built here in a directory of the test's own, never build/rootfs.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO, requiresRoot, run } from "./helpers.ts";

const BUILD = join(REPO, "tools/rootfs/build.sh");

describe("tools/rootfs/build.sh --check", () => {
  let scratch: string;
  let dir: string;

  before(() => {
    scratch = mkdtempSync(join(tmpdir(), "corerun-e2e-rootfs-"));
    dir = join(scratch, "rootfs");
  });

  after(() => {
    if (scratch?.startsWith(join(tmpdir(), "corerun-e2e-rootfs-"))) rmSync(scratch, { recursive: true, force: true });
  });

  test("a new rootfs records its tree beside it and passes the check", (t) => {
    if (requiresRoot(t)) return;
    const b = run(BUILD, [dir]);
    assert.equal(b.code, 0, b.stderr);
    assert.equal(b.stdout.trim().split("\n").at(-1), dir);
    const tree = readFileSync(`${dir}.tree`, "utf8");
    assert.match(tree, /^bin\/busybox f 755 0:0 \d+ $/m);
    assert.match(tree, /^bin\/sh l 777 0:0 7 busybox$/m);
    assert.match(tree, /^tmp d 1777 0:0$/m);
    const c = run(BUILD, ["--check", dir]);
    assert.equal(c.code, 0, c.stderr);
    assert.equal(c.stdout.trim(), dir);
  });

  test("a file added, a mode changed or a file removed fails the check, each named", (t) => {
    if (requiresRoot(t)) return;
    writeFileSync(join(dir, "etc/mtab"), "");
    chmodSync(join(dir, "tmp"), 0o700);
    unlinkSync(join(dir, "var/www/index.html"));
    const c = run(BUILD, ["--check", dir]);
    assert.equal(c.code, 1);
    assert.equal(c.stdout, "");
    assert.match(c.stderr, /^ {2}found: etc\/mtab f 644 0:0 0 $/m);
    assert.match(c.stderr, /^ {2}built: tmp d 1777 0:0$/m);
    assert.match(c.stderr, /^ {2}found: tmp d 700 0:0$/m);
    assert.match(c.stderr, /^ {2}built: var\/www\/index.html f 644 0:0 19 $/m);
    assert.match(c.stderr, new RegExp(`rootfs: ${dir} is no longer as it was built .*: rebuild it with tools/rootfs/build.sh --force ${dir}\n$`));
  });

  test("--force builds it again, which then passes; --force and --check together are refused", (t) => {
    if (requiresRoot(t)) return;
    const both = run(BUILD, ["--force", "--check", dir]);
    assert.equal(both.code, 1);
    assert.equal(both.stderr, "rootfs: --force and --check exclude each other; give one\n");
    const b = run(BUILD, ["--force", dir]);
    assert.equal(b.code, 0, b.stderr);
    assert.ok(!existsSync(join(dir, "etc/mtab")));
    const c = run(BUILD, ["--check", dir]);
    assert.equal(c.code, 0, c.stderr);
  });

  test("a rootfs without a recorded tree cannot be checked, and says how to rebuild it", (t) => {
    if (requiresRoot(t)) return;
    unlinkSync(`${dir}.tree`);
    const c = run(BUILD, ["--check", dir]);
    assert.equal(c.code, 1);
    assert.equal(c.stderr, `rootfs: ${dir} was built before its tree was recorded; rebuild it: tools/rootfs/build.sh --force ${dir}\n`);
  });
});
