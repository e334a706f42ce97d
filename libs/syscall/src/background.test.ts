/**
 * writeInBackground with the native helper compiled here from native/clone.c (no root): the
 * writes land in order, and a failing one is reported with its fd and errno.
 */
import assert from "node:assert/strict";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { writeInBackground } from "./background.ts";
import { isErrno } from "./error.ts";
import { compileNativeHelper } from "./testing.ts";

const dir = mkdtempSync(join(tmpdir(), "corerun-background-"));
after(() => rmSync(dir, { recursive: true, force: true }));

describe("writeInBackground", () => {
  let compiled = true;
  before(() => {
    compiled = compileNativeHelper(dir);
  });

  test("writes the data to every fd, in order, while the caller goes on", (t) => {
    if (!compiled) return t.skip("no C compiler");
    const paths = ["a", "b", "c"].map((n) => join(dir, n));
    const fds = paths.map((p) => openSync(p, "w"));
    try {
      const wait = writeInBackground(fds, "0");
      wait();
      assert.deepEqual(paths.map((p) => readFileSync(p, "utf8")), ["0", "0", "0"]);
      // A second round after the first has been waited for.
      writeInBackground(fds, "12")();
      assert.deepEqual(paths.map((p) => readFileSync(p, "utf8")), ["012", "012", "012"]);
    } finally {
      for (const fd of fds) closeSync(fd);
    }
  });

  test("stops at the first failing write and reports its fd and errno", (t) => {
    if (!compiled) return t.skip("no C compiler");
    const good = openSync(join(dir, "good"), "w");
    const readOnly = openSync(join(dir, "good"), "r");
    const after = openSync(join(dir, "after"), "w");
    try {
      const wait = writeInBackground([good, readOnly, after], "x");
      assert.throws(wait, (err: unknown) => isErrno(err, "EBADF") && (err as Error).message.includes(`fd ${readOnly}`));
      assert.equal(readFileSync(join(dir, "good"), "utf8"), "x");
      assert.equal(readFileSync(join(dir, "after"), "utf8"), "");
    } finally {
      for (const fd of [good, readOnly, after]) closeSync(fd);
    }
  });
});
