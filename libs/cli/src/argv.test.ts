import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { ArgsDef } from "citty";
import { splitArgv, type SplitOptions } from "./argv.ts";
import { UsageError } from "./exit.ts";
import { parseToolArgv } from "./tool.ts";

// The shape of a real tool's options: repeatable strings with short aliases, a boolean, and the
// common --log whose value is optional.
const def = {
  hostname: { type: "string" },
  volume: { type: "string", alias: "v" },
  env: { type: "string", alias: "e" },
  port: { type: "string", alias: ["P", "publish"] },
  "print-script": { type: "boolean" },
  detach: { type: "boolean", alias: "d" },
  tty: { type: "boolean", alias: "t" },
  log: { type: "string" },
} as const satisfies ArgsDef;

const cmd: SplitOptions = { tail: "command", optionalValues: { log: ["true", "false"] } };

function split(argv: string[], opts: SplitOptions = cmd) {
  return splitArgv(argv, def, opts);
}

describe("splitArgv", () => {
  test("splits at -- and keeps everything after it verbatim", () => {
    const r = split(["-v", "a:/b", "--", "sh", "-c", "echo --", "--help"]);
    assert.deepEqual(r.values, { volume: ["a:/b"] });
    assert.deepEqual(r.tail, ["sh", "-c", "echo --", "--help"]);
    assert.equal(r.help, false);
  });

  test("only the first -- splits", () => {
    assert.deepEqual(split(["--", "--", "x"]).tail, ["--", "x"]);
  });

  test("splits at the first word that is not an option", () => {
    const r = split(["--hostname", "box", "sh", "-v", "x"]);
    assert.deepEqual(r.values, { hostname: ["box"] });
    assert.deepEqual(r.tail, ["sh", "-v", "x"]);
  });

  test("a container command's own --help is left to the command", () => {
    const r = split(["sh", "--help"]);
    assert.equal(r.help, false);
    assert.deepEqual(r.tail, ["sh", "--help"]);
  });

  test("--help and -h before the command ask for the tool's help", () => {
    assert.equal(split(["--help"]).help, true);
    const r = split(["-h", "sh"]);
    assert.equal(r.help, true);
    assert.deepEqual(r.tail, ["sh"]);
  });

  test("a lone - is a word, not an option", () => {
    assert.deepEqual(split(["-", "x"]).tail, ["-", "x"]);
  });

  test("no words give an empty result", () => {
    assert.deepEqual(split([]), { values: {}, flags: {}, tail: [], help: false });
  });

  describe("--log with an optional value", () => {
    test("alone it means true and does not swallow the command", () => {
      const r = split(["--log", "sh"]);
      assert.deepEqual(r.values.log, ["true"]);
      assert.deepEqual(r.tail, ["sh"]);
    });

    test("takes true or false as the next word", () => {
      assert.deepEqual(split(["--log", "false", "sh"]).values.log, ["false"]);
      assert.deepEqual(split(["--log", "true", "sh"]).tail, ["sh"]);
    });

    test("takes an inline value", () => {
      assert.deepEqual(split(["--log=false"]).values.log, ["false"]);
    });

    test("at the end of argv it means true", () => {
      assert.deepEqual(split(["--log"]).values.log, ["true"]);
    });
  });

  test("repeated options are collected in order, across spellings", () => {
    const r = split(["-e", "A=1", "-v", "x:/x", "--env", "B=2", "-e", "C=3", "--volume=y:/y", "sh"]);
    assert.deepEqual(r.values.env, ["A=1", "B=2", "C=3"]);
    assert.deepEqual(r.values.volume, ["x:/x", "y:/y"]);
  });

  test("--name=value keeps everything after the first =", () => {
    assert.deepEqual(split(["--env=A=b=c"]).values.env, ["A=b=c"]);
  });

  test("a long alias maps to its option", () => {
    assert.deepEqual(split(["--publish", "80:80", "-P", "81:81"]).values.port, ["80:80", "81:81"]);
  });

  test("-vVALUE and -v=VALUE attach the value to a short option", () => {
    assert.deepEqual(split(["-vdata:/data"]).values.volume, ["data:/data"]);
    assert.deepEqual(split(["-e=A=1"]).values.env, ["A=1"]);
  });

  test("an option's value may start with a dash", () => {
    assert.deepEqual(split(["--hostname", "-x", "sh"]).values.hostname, ["-x"]);
  });

  test("booleans: --x sets true, --no-x sets false, an alias works", () => {
    assert.deepEqual(split(["--print-script"]).flags, { "print-script": true });
    assert.deepEqual(split(["--no-print-script"]).flags, { "print-script": false });
    assert.deepEqual(split(["-d"]).flags, { detach: true });
    assert.deepEqual(split(["--print-script", "--no-print-script"]).flags, { "print-script": false });
  });

  test("short flags bundle as in Docker: -dt, and a value-taking flag last takes the next word", () => {
    assert.deepEqual(split(["-dt", "sh"]).flags, { detach: true, tty: true });
    const r = split(["-tv", "a:/b", "sh"]);
    assert.deepEqual([r.flags, r.values, r.tail], [{ tty: true }, { volume: ["a:/b"] }, ["sh"]]);
    assert.throws(() => split(["-dvt", "x"]), { name: "UsageError", message: /option -v takes a value: put it last in -dvt/ });
    assert.throws(() => split(["-dZ"]), { name: "UsageError", message: /unknown option -Z in -dZ/ });
  });

  test("a boolean given a value is a usage error", () => {
    assert.throws(() => split(["--print-script=yes"]), { name: "UsageError", message: /--print-script takes no value/ });
  });

  test("an unknown option is a usage error naming it", () => {
    assert.throws(() => split(["--frobnicate"]), (e: unknown) => e instanceof UsageError && /unknown option --frobnicate/.test(e.message));
    assert.throws(() => split(["-Z", "sh"]), { name: "UsageError", message: /unknown option -Z/ });
    assert.throws(() => split(["--no-hostname"]), { name: "UsageError", message: /unknown option --no-hostname/ });
  });

  test("a missing value is a usage error naming the option", () => {
    assert.throws(() => split(["--hostname"]), { name: "UsageError", message: /option --hostname needs a value/ });
    assert.throws(() => split(["-e"]), { name: "UsageError", message: /option -e needs a value/ });
  });

  test("with tail none, a stray word is a usage error", () => {
    assert.throws(() => split(["--hostname", "h", "extra"], { tail: "none" }), { name: "UsageError", message: /unexpected argument "extra"/ });
    assert.throws(() => split(["--", "x"], { tail: "none" }), { name: "UsageError", message: /unexpected argument "x"/ });
  });

  // Short booleans are not bundled: the characters after the first are dropped without a word.
  test("-dX (a short boolean with trailing characters) is rejected", () => {
    assert.throws(() => split(["-dfoo", "sh"]), UsageError);
  });
});

describe("parseToolArgv", () => {
  const ls = { name: "t ls", description: "", args: { root: { type: "string" } }, tail: "none", run: () => 0 } as const;
  const spec = { name: "t", description: "", args: {}, tail: "none", subCommands: { ls } } as unknown as Parameters<typeof parseToolArgv>[0];

  test("--root before a subcommand's name is that subcommand's, in both spellings", () => {
    for (const argv of [["--root", "/r", "ls"], ["--root=/r", "ls"], ["ls", "--root", "/r"]]) {
      const { active, split } = parseToolArgv(spec, argv);
      assert.equal(active.name, "t ls", argv.join(" "));
      assert.deepEqual(split.values.root, ["/r"], argv.join(" "));
    }
  });

  test("--root before a word that names no subcommand stays where it is", () => {
    assert.throws(() => parseToolArgv(spec, ["--root", "/r", "nosuch"]), UsageError);
  });
});
