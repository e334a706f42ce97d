import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { UsageError } from "@corerun/cli";
import { checkGroupName, checkHostname, checkWorkdir, parseEnvFile, parseEnvVars, parseLabels, parseOomScoreAdj, readLabelFiles } from "./config.ts";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";

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

describe("parseEnvFile", () => {
  test("Docker's format: KEY=VALUE as written, KEY alone, comments, blank lines and leading blanks skipped, CRLF and a BOM taken away", () => {
    assert.deepEqual(parseEnvFile("\uFEFFA=1\r\n  # note\n\n\tB= spaced = x \nC\nD='q'\n", "f"), ["A=1", "B= spaced = x ", "C", "D='q'"]);
    assert.deepEqual(parseEnvFile("", "f"), []);
  });

  test("a line without a name, or a name with blanks, is refused with its line number", () => {
    assert.throws(() => parseEnvFile("A=1\n=2\n", "f.env"), /^UsageError: --env-file f\.env: line 2 has no name before "="/);
    assert.throws(() => parseEnvFile("MY VAR=1\n", "f.env"), /--env-file f\.env: line 1: name "MY VAR" contains whitespace/);
    assert.throws(() => parseEnvFile("TRAILING \n", "f.env"), /name "TRAILING " contains whitespace/);
    assert.throws(() => parseEnvFile("my.var=1\n", "f.env"), /--env-file f\.env: line 1: "my\.var" is not a valid variable name/);
  });
});

describe("checkGroupName and parseOomScoreAdj", () => {
  test("a group is a name or a gid; the OOM score adjustment is -1000 to 1000", () => {
    for (const g of ["wheel", "1000", "0", "_x.y-z", "machine$"]) assert.equal(checkGroupName(g), g);
    for (const g of ["", "a:b", "-x", "4294967295", "a b"]) assert.throws(() => checkGroupName(g), /--group-add .*: give a group name/);
    assert.equal(parseOomScoreAdj(undefined), undefined);
    assert.equal(parseOomScoreAdj("-1000"), -1000);
    assert.equal(parseOomScoreAdj("1000"), 1000);
    for (const v of ["1001", "-1001", "x", "", "1e3"]) assert.throws(() => parseOomScoreAdj(v), /--oom-score-adj .*: give a whole number from -1000 to 1000/);
  });
});

describe("parseLabels", () => {
  test("--label-file lines first, then --label; KEY alone is an empty value; a later one wins", () => {
    const dir = mkdtempSync(join(tmpdir(), "corerun-labels-test-"));
    try {
      const file = join(dir, "labels");
      writeFileSync(file, "# labels\ncom.example.app=web\ntier=front\nflag\n");
      assert.deepEqual(parseLabels(["tier=back", "owner=ops=team", "empty="], readLabelFiles([file])), { "com.example.app": "web", tier: "back", flag: "", owner: "ops=team", empty: "" });
      assert.throws(() => readLabelFiles([join(dir, "none")]), /^UsageError: --label-file .*none: cannot be read \(ENOENT\); give a file of KEY=VALUE lines$/);
      assert.throws(() => parseLabels(["=x"], {}), /^UsageError: --label "=x": give KEY=VALUE with a name without whitespace/);
      assert.throws(() => parseLabels(["a b=1"], {}), /--label "a b=1"/);
    } finally {
      if (dir.startsWith(tmpdir() + sep) && dir.includes("corerun-labels-test-")) rmSync(dir, { recursive: true, force: true });
    }
  });
});
