import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { UsageError } from "@corerun/cli";
import { checkHostname, checkWorkdir, parseEnvVars } from "./config.ts";

describe("checkHostname", () => {
  test("accepts RFC 1123 names up to 64 characters", () => {
    for (const name of ["box", "my-box", "a", "Web01", "a.b.c", "0abc", `${"a".repeat(63)}`, `${"a".repeat(31)}.${"b".repeat(32)}`]) {
      assert.equal(checkHostname(name), name);
    }
  });

  test("no hostname stays undefined", () => {
    assert.equal(checkHostname(undefined), undefined);
  });

  test("65 characters are too long, and the message gives the length", () => {
    const name = `${"a".repeat(32)}.${"b".repeat(32)}`;
    assert.equal(name.length, 65);
    assert.throws(() => checkHostname(name), (e: unknown) => e instanceof UsageError && /is 65 characters long; the limit is 64/.test(e.message));
  });

  test("a label longer than 63 characters is refused", () => {
    assert.throws(() => checkHostname("a".repeat(64)), UsageError);
  });

  for (const name of ["under_score", "-leading", "trailing-", "a..b", ".a", "a.", "", "sp ace", "a.-b", "ü"]) {
    test(`refuses ${JSON.stringify(name)}`, () => {
      assert.throws(() => checkHostname(name), { name: "UsageError", message: /may hold only letters, digits, '-' and '\.'/ });
    });
  }
});

describe("parseEnvVars", () => {
  test("keeps KEY=VALUE as given, including = and empty values", () => {
    assert.deepEqual(parseEnvVars(["A=1", "B=x=y", "C=", "_D=2"], {}), ["A=1", "B=x=y", "C=", "_D=2"]);
  });

  test("a bare KEY takes the host's value, and is left out when the host has none (Docker's rule)", () => {
    assert.deepEqual(parseEnvVars(["HOME", "NOPE", "EMPTY"], { HOME: "/root", EMPTY: "" }), ["HOME=/root", "EMPTY="]);
  });

  test("keeps order and repeats", () => {
    assert.deepEqual(parseEnvVars(["A=1", "A=2"], {}), ["A=1", "A=2"]);
  });

  for (const bad of ["1A=x", "=x", "A-B=1", "", "A B=1"]) {
    test(`refuses ${JSON.stringify(bad)}, naming it`, () => {
      assert.throws(() => parseEnvVars([bad], {}), { name: "UsageError", message: new RegExp(`^-e "${bad}": .* is not a valid variable name$`) });
    });
  }
});

describe("checkWorkdir", () => {
  test("defaults to /", () => {
    assert.equal(checkWorkdir(undefined), "/");
  });

  test("accepts an absolute path", () => {
    assert.equal(checkWorkdir("/srv/app"), "/srv/app");
  });

  test("refuses a relative path", () => {
    assert.throws(() => checkWorkdir("srv"), { name: "UsageError", message: '--workdir "srv" must be an absolute path' });
  });
});
