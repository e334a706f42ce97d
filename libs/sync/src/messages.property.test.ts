import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { decode, encode, type SyncMessage } from "./index.ts";

const message: fc.Arbitrary<SyncMessage> = fc.oneof(
  fc.constant({ t: "ready" as const }),
  fc.constant({ t: "go" as const }),
  fc.record({ t: fc.constant("error" as const), message: fc.string(), exitCode: fc.integer({ min: 0, max: 255 }) }).map((m) => ({ ...m })),
);

describe("sync messages, on generated input", () => {
  test("every message is one line and decodes to itself", () => {
    fc.assert(fc.property(message, (m) => {
      const line = encode(m);
      assert.ok(line.endsWith("\n") && !line.slice(0, -1).includes("\n"));
      assert.deepEqual(decode(line.slice(0, -1)), m);
    }));
  });

  test("arbitrary text decodes to a message or to an error that says sync: and quotes at most 80 characters", () => {
    fc.assert(fc.property(fc.oneof(fc.string({ maxLength: 300 }), fc.json()), (s) => {
      try {
        const m = decode(s);
        assert.ok(["ready", "go", "error"].includes(m.t));
      } catch (err) {
        assert.ok(err instanceof Error && err.message.startsWith("sync: "), String(err));
        assert.ok(err.message.length < 140, err.message);
      }
    }));
  });
});
