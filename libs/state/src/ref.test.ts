import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { UsageError } from "@corerun/cli";
import { findByRef } from "./ref.ts";
import type { State } from "./schema.ts";

function state(id: string, name?: string): State {
  return {
    version: 1, id, status: "running", created: "2026-01-01T00:00:00Z", mountPoints: [],
    config: { rootfs: "/r", command: ["sh"], env: [], cwd: "/", volumes: [], network: { mode: "none", ports: [] }, name, limits: {}, cgroupParent: "corerun" },
  };
}

const states = [state("abc123456789", "web"), state("abd000000000"), state("0123456789ab", "abc")];

describe("findByRef", () => {
  test("a name, then a whole id", () => {
    assert.equal(findByRef(states, "web")?.id, "abc123456789");
    assert.equal(findByRef(states, "abd000000000")?.id, "abd000000000");
  });
  test("a unique prefix of an id", () => {
    assert.equal(findByRef(states, "abd")?.id, "abd000000000");
    assert.equal(findByRef(states, "012")?.id, "0123456789ab");
  });
  test("an exact name wins over an id prefix", () => {
    assert.equal(findByRef(states, "abc")?.id, "0123456789ab");
  });
  test("an ambiguous prefix is refused, naming the candidates", () => {
    assert.throws(() => findByRef(states, "ab"), (e: Error) => e instanceof UsageError && /ambiguous \(abc123456789, abd000000000\)/.test(e.message));
  });
  test("exact: no prefixes; unknown refs are undefined", () => {
    assert.equal(findByRef(states, "abd", true), undefined);
    assert.equal(findByRef(states, "ffff"), undefined);
    assert.equal(findByRef(states, "nope"), undefined);
  });
});
