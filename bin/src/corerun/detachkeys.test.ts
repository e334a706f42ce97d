import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DetachScanner, parseDetachKeys } from "./detachkeys.ts";

describe("--detach-keys", () => {
  test("Docker's spellings: ctrl-<c> for the control codes, single characters, comma separated", () => {
    assert.deepEqual(parseDetachKeys("ctrl-p,ctrl-q"), [16, 17]);
    assert.deepEqual(parseDetachKeys("ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_,CTRL-A"), [0, 27, 28, 29, 30, 31, 1]);
    assert.deepEqual(parseDetachKeys("a,ctrl-x"), [97, 24]);
    assert.deepEqual(parseDetachKeys(""), []);
  });

  test("bad keys are refused, naming the key", () => {
    for (const bad of ["ctrl-", "ctrl-1", "ab", "ctrl-p,", "ctrl-p,,ctrl-q", "alt-p"]) {
      assert.throws(() => parseDetachKeys(bad), /^UsageError: --detach-keys .*unknown key/, bad);
    }
  });

  test("the scanner holds a possible start back, passes it on when the sequence breaks, detaches when complete", () => {
    const s = new DetachScanner([16, 17]);
    assert.deepEqual(s.feed(Buffer.from("ab\x10")), { out: Buffer.from("ab"), detach: false });
    assert.deepEqual(s.feed(Buffer.from("c")), { out: Buffer.from("\x10c"), detach: false });
    assert.deepEqual(s.feed(Buffer.from("\x10\x10")), { out: Buffer.from("\x10"), detach: false });
    assert.deepEqual(s.feed(Buffer.from("\x11rest")), { out: Buffer.from(""), detach: true });
    assert.deepEqual(new DetachScanner([]).feed(Buffer.from("\x10\x11")), { out: Buffer.from("\x10\x11"), detach: false });
    assert.deepEqual(new DetachScanner([3]).feed(Buffer.from("x\x03y")), { out: Buffer.from("x"), detach: true });
  });
});
