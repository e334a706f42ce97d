import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import type { ArgsDef } from "citty";
import { splitArgv } from "./argv.ts";
import { UsageError } from "./exit.ts";

const def = {
  volume: { type: "string", alias: "v" },
  name: { type: "string" },
  detach: { type: "boolean", alias: "d" },
} as const satisfies ArgsDef;

const word = fc.string({ maxLength: 12 });
const option = fc.oneof(
  fc.tuple(fc.constantFrom("-v", "--volume", "--name"), word.filter((w) => !w.startsWith("-"))).map(([o, v]) => [o, v]),
  fc.constantFrom(["-d"], ["--detach"], ["--no-detach"]),
);

describe("argv splitting, on generated input", () => {
  test("everything after -- is the command, untouched, whatever it holds", () => {
    fc.assert(fc.property(fc.array(option, { maxLength: 4 }), fc.array(word, { maxLength: 6 }), (opts, command) => {
      const r = splitArgv([...opts.flat(), "--", ...command], def, { tail: "command" });
      assert.deepEqual(r.tail, command);
    }));
  });

  test("repeated values are all kept, in order", () => {
    fc.assert(fc.property(fc.array(word.filter((w) => !w.startsWith("-")), { maxLength: 5 }), (values) => {
      const r = splitArgv(values.flatMap((v) => ["-v", v]), def, { tail: "none" });
      assert.deepEqual(r.values.volume ?? [], values);
    }));
  });

  test("a tool that takes no words refuses them after -- too", () => {
    fc.assert(fc.property(fc.array(word, { minLength: 1, maxLength: 3 }), (extra) => {
      assert.throws(() => splitArgv(["--", ...extra], def, { tail: "none" }), { message: `unexpected argument "${extra[0]}"; see --help` });
    }));
  });

  test("arbitrary words split or fail with a one-line UsageError", () => {
    fc.assert(fc.property(fc.array(fc.oneof(word, fc.constantFrom("-v", "--name", "-d", "--", "--help", "-x", "--no-detach")), { maxLength: 8 }), fc.constantFrom("command" as const, "none" as const), (argv, tail) => {
      try {
        const r = splitArgv(argv, def, { tail });
        if (tail === "none") assert.deepEqual(r.tail, []);
      } catch (err) {
        assert.ok(err instanceof UsageError, String(err));
        assert.ok(!err.message.includes("\n"), err.message);
      }
    }));
  });
});
