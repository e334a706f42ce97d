import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { UsageError } from "@corerun/cli";
import { findByRef, mayBeRef } from "./ref.ts";
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

describe("mayBeRef: readStates' pick for a lookup", () => {
  // The states findByRef can return for a ref, or the refusal it gives, are the same from the
  // states mayBeRef keeps as from all of them: every ref against every subset of a set of states.
  const pool = [...states, state("abc999999999", "abd000000000"), state("ffffffffffff", "web"), state("a00000000000", "0")];
  const refs = ["web", "abc", "abd", "ab", "a", "0", "012", "abd000000000", "abc123456789", "ffff", "nope", "", "0123456789ab", "ABC"];
  const outcome = (f: () => State | undefined) => {
    try {
      return f()?.id ?? "none";
    } catch (err) {
      return `refused: ${(err as Error).message}`;
    }
  };
  for (const exact of [false, true]) {
    test(`the same container or refusal as from every state${exact ? " (exact)" : ""}`, () => {
      for (let mask = 0; mask < 1 << pool.length; mask++) {
        const some = pool.filter((_, i) => mask & (1 << i));
        for (const ref of refs) {
          const kept = some.filter((s) => mayBeRef(s, ref, exact));
          assert.equal(outcome(() => findByRef(kept, ref, exact)), outcome(() => findByRef(some, ref, exact)), `${ref} in ${some.map((s) => s.id).join(",")}`);
        }
      }
    });
  }
  test("a state without an id or config is kept by no ref", () => {
    assert.equal(mayBeRef({}, "web"), false);
    assert.equal(mayBeRef({ config: null }, "a"), false);
  });
});
