import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as v from "valibot";
import { lazy } from "./lazy.ts";

describe("lazy", () => {
  test("builds its value on first use, once", () => {
    let made = 0;
    const value = lazy(() => {
      made++;
      return { a: 1, b: [2] };
    });
    assert.equal(made, 0);
    assert.equal(value.a, 1);
    assert.deepEqual(value.b, [2]);
    assert.equal(made, 1);
    assert.ok("a" in value);
    assert.deepEqual(Object.keys(value), ["a", "b"]);
    assert.deepEqual({ ...value }, { a: 1, b: [2] });
    assert.equal(made, 1);
  });

  test("a lazy valibot schema parses, nests and refuses as the schema itself", () => {
    let made = 0;
    const Inner = lazy(() => {
      made++;
      return v.object({ pid: v.pipe(v.number(), v.integer(), v.minValue(1)) });
    });
    const Outer = lazy(() => v.object({ id: v.string(), procs: v.array(Inner), status: v.picklist(["a", "b"]) }));
    assert.equal(made, 0);
    const ok = { id: "x", procs: [{ pid: 3 }], status: "a" };
    assert.deepEqual(v.parse(Outer, ok), ok);
    assert.equal(made, 1);
    const bad = v.safeParse(Outer, { id: "x", procs: [{ pid: 0 }], status: "a" });
    assert.equal(bad.success, false);
    assert.deepEqual(bad.issues?.[0]?.path?.map((p) => p.key), ["procs", 0, "pid"]);
    assert.deepEqual(Object.keys(Outer.entries), ["id", "procs", "status"]);
  });

  test("the value cannot be changed through it", () => {
    const value = lazy(() => ({ a: 1 }));
    assert.throws(() => {
      (value as { a: number }).a = 2;
    }, TypeError);
    assert.equal(value.a, 1);
  });
});
