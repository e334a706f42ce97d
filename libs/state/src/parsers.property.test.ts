import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { refusesCleanly } from "@corerun/cli/testing";
import { UsageError } from "@corerun/cli";
import { checkHostname, checkWorkdir, hostIdOf, idMapText, parseEnvVars, parseIdMap } from "./config.ts";
import { NEW_DIR_PATTERN } from "./store.ts";
import { parseState } from "./schema.ts";

const label = fc.stringMatching(/^[A-Za-z0-9]([A-Za-z0-9-]{0,10}[A-Za-z0-9])?$/);

describe("state and config parsers, on generated input", () => {
  test("a hostname of RFC 1123 labels within 64 characters is accepted as it is", () => {
    fc.assert(fc.property(fc.array(label, { minLength: 1, maxLength: 5 }), (labels) => {
      const name = labels.join(".");
      fc.pre(name.length <= 64);
      assert.equal(checkHostname(name), name);
    }));
  });

  test("any hostname over 64 characters, or with a character outside the rules, is refused", () => {
    fc.assert(fc.property(fc.string({ minLength: 65, maxLength: 200 }), (s) => assert.throws(() => checkHostname(s), /the limit is 64/)));
    fc.assert(fc.property(fc.string({ maxLength: 30 }), (s) => {
      fc.pre(/[^A-Za-z0-9.-]/.test(s) && s.length <= 64);
      assert.throws(() => checkHostname(s), UsageError);
    }));
  });

  test("-e KEY=VALUE with a valid key passes unchanged; any other key is refused", () => {
    fc.assert(fc.property(fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,10}$/), fc.string({ maxLength: 20 }), (key, value) => {
      assert.deepEqual(parseEnvVars([`${key}=${value}`], {}), [`${key}=${value}`]);
      assert.deepEqual(parseEnvVars([key], { [key]: value }), [`${key}=${value}`]);
    }));
    fc.assert(fc.property(fc.string({ maxLength: 20 }), (s) => refusesCleanly(() => parseEnvVars([s], {}))));
  });

  test("--workdir takes absolute paths only", () => {
    fc.assert(fc.property(fc.string({ maxLength: 30 }), (s) => {
      if (s.startsWith("/")) assert.equal(checkWorkdir(s), s);
      else assert.throws(() => checkWorkdir(s), UsageError);
    }));
  });

  test("a valid id map survives parsing and maps every container id of each range", () => {
    const range = fc.record({ host: fc.integer({ min: 0, max: 4_000_000_000 }), size: fc.integer({ min: 1, max: 100_000 }) });
    fc.assert(fc.property(range, ({ host, size }) => {
      const map = parseIdMap([`0:${host}:${size}`], "--uidmap");
      assert.deepEqual(map, [{ container: 0, host, size }]);
      assert.equal(idMapText(map), `0 ${host} ${size}\n`);
      assert.equal(hostIdOf(map, size - 1), host + size - 1);
      assert.equal(hostIdOf(map, size), undefined);
    }));
  });

  test("--uidmap on arbitrary text returns ranges or refuses in one line", () => {
    fc.assert(fc.property(fc.array(fc.string({ maxLength: 20 }), { maxLength: 3 }), (values) => refusesCleanly(() => parseIdMap(values, "--uidmap"))));
  });

  test("a state file of arbitrary JSON is a state or one error naming the file", () => {
    fc.assert(fc.property(fc.jsonValue(), (value) => {
      try {
        parseState(value, "/x/state.json");
      } catch (err) {
        assert.ok(err instanceof Error && err.message.startsWith("invalid state file /x/state.json"), String(err));
      }
    }));
  });

  test("the name of a directory being made carries its maker: id, pid and start time", () => {
    fc.assert(fc.property(fc.stringMatching(/^[0-9a-f]{12}$/), fc.integer({ min: 1, max: 4_194_304 }), fc.nat(), (id, pid, start) => {
      const m = NEW_DIR_PATTERN.exec(`.new-${id}-${pid}-${start}`);
      assert.deepEqual(m?.slice(1), [id, String(pid), String(start)]);
    }));
    fc.assert(fc.property(fc.string({ maxLength: 40 }), (s) => {
      const m = NEW_DIR_PATTERN.exec(s);
      if (m) assert.ok(Number(m[2]) >= 1 && /^\d+$/.test(m[3]!));
    }));
  });
});
