import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseUlimits, UNLIMITED } from "./ulimit.ts";

describe("--ulimit", () => {
  test("Docker's spellings: SOFT alone sets both, -1 and unlimited are RLIM_INFINITY, the last of a name wins", () => {
    assert.deepEqual(parseUlimits(["nofile=1024:2048", "core=0", "memlock=-1:unlimited", "core=1"]), [
      { type: "RLIMIT_NOFILE", soft: 1024, hard: 2048 },
      { type: "RLIMIT_CORE", soft: 1, hard: 1 },
      { type: "RLIMIT_MEMLOCK", soft: UNLIMITED, hard: UNLIMITED },
    ]);
  });
  test("refusals name the option and the fix", () => {
    assert.throws(() => parseUlimits(["nofile"]), /--ulimit nofile: give NAME=SOFT\[:HARD\]/);
    assert.throws(() => parseUlimits(["files=1"]), /unknown limit "files"; use one of as, core/);
    assert.throws(() => parseUlimits(["nofile=2048:1024"]), /soft limit is above the hard one/);
    assert.throws(() => parseUlimits(["nofile=many"]), /many is not a limit/);
  });
});
