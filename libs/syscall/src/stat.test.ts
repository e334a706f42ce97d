import { test } from "node:test";
import assert from "node:assert/strict";
import { closeSync, mkdtempSync, openSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { linuxSyscall as sys } from "./linux.ts";
import { O_DIRECTORY, O_PATH, S_IFDIR, S_IFMT } from "./constants.ts";

test("statMode: the file type, relative to a directory fd, not through a last symlink; undefined when missing", () => {
  const dir = mkdtempSync(join(tmpdir(), "corerun-statmode-"));
  try {
    writeFileSync(join(dir, "file"), "");
    symlinkSync("/", join(dir, "link"));
    assert.equal(sys.statMode(dir)! & S_IFMT, S_IFDIR);
    assert.equal(sys.statMode(join(dir, "file"))! & S_IFMT, 0o100000);
    assert.equal(sys.statMode(join(dir, "missing")), undefined);
    const fd = openSync(dir, O_PATH | O_DIRECTORY);
    try {
      assert.equal(sys.statMode("file", fd)! & S_IFMT, 0o100000);
      assert.equal(sys.statMode("link", fd)! & S_IFMT, 0o120000);
      assert.equal(sys.statMode("missing", fd), undefined);
    } finally {
      closeSync(fd);
    }
    assert.throws(() => sys.statMode(join(dir, "file", "below")), /statx.*ENOTDIR/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
