import { test } from "node:test";
import assert from "node:assert/strict";
import { nulBytePath, nulByteRefusal } from "./json.ts";

test("nulBytePath names the first string holding a NUL byte", () => {
  assert.equal(nulBytePath({ process: { args: ["/bin/true", "a\0b"] } }), "process.args[1]");
  assert.equal(nulBytePath({ Env: ["A=1"], Cmd: ["x\0"] }), "Cmd[0]");
  assert.equal(nulBytePath({ "bad\0key": 1 }), '"bad\\u0000key" (a key)');
  assert.equal(nulBytePath("\0"), "(top level)");
  assert.equal(nulBytePath({ a: [1, null, true, { b: "ok" }] }), undefined);
});

test("nulByteRefusal is one line naming the file and the field", () => {
  assert.equal(nulByteRefusal({ hostname: "a\0" }, "b/config.json"), "b/config.json: hostname holds a NUL byte, which no path, argument or name can carry; remove it");
  assert.equal(nulByteRefusal({ hostname: "a" }, "b/config.json"), undefined);
});
