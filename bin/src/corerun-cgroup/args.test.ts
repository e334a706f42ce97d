import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger, CommandError, UsageError } from "@corerun/cli";
import { createArgs, parseLimitValues, parsePid, parsePlace, parseRun, withName } from "./args.ts";
import { checkCommand } from "./steps.ts";

const log = createLogger("corerun-cgroup", -999);
const ctx = (tail: string[], values: Record<string, string[]> = {}) => ({ values, flags: {}, tail, log });

describe("corerun-cgroup arguments", () => {
  it("reads options after NAME as well as before it", () => {
    const c = withName(ctx(["web", "--memory", "64", "-c", "50", "--cgroup-parent", "a/b"], { pids: ["20"] }), createArgs, "create NAME")!;
    assert.deepEqual(parsePlace(c), { name: "web", parent: "a/b", root: "/sys/fs/cgroup" });
    assert.deepEqual(parseLimitValues(c), { memory: 64 * 1024 * 1024, cpu: { quota: 50_000, period: 100_000 }, pids: 20 });
  });

  it("returns undefined for --help after NAME, and refuses a missing NAME or a stray word", () => {
    assert.equal(withName(ctx(["web", "--help"]), createArgs, "create NAME"), undefined);
    assert.throws(() => withName(ctx([]), createArgs, "create NAME [options]"), /^UsageError: no cgroup name given; usage: corerun-cgroup create NAME \[options\]$/);
    assert.throws(() => withName(ctx(["web", "extra"]), createArgs, "create NAME"), /unexpected argument "extra"/);
    assert.throws(() => withName(ctx(["web", "--frob"]), createArgs, "create NAME"), /unknown option --frob/);
  });

  it("validates NAME, --cgroup-parent and --pid", () => {
    assert.throws(() => parsePlace({ ...ctx([]), name: "a/b" }), UsageError);
    assert.throws(() => parsePlace({ ...ctx([], { "cgroup-parent": [".."] }), name: "x" }), /--cgroup-parent "\.\." is not valid/);
    assert.equal(parsePid(ctx([], { pid: ["42"] })), 42);
    assert.throws(() => parsePid(ctx([])), /--pid is required/);
    assert.throws(() => parsePid(ctx([], { pid: ["0"] })), /--pid "0" is not a process id/);
  });

  it("run: names the cgroup run-PID-RANDOM by default and needs a command", () => {
    const opts = parseRun(ctx(["sleep", "1"], { memory: ["64"] }));
    assert.match(opts.name, new RegExp(`^run-${process.pid}-[0-9a-f]{6}$`));
    assert.deepEqual(opts.command, ["sleep", "1"]);
    assert.throws(() => parseRun(ctx([])), /^UsageError: no command given; usage: corerun-cgroup run \[options\] -- CMD \[ARGS\.\.\.\]$/);
    assert.throws(() => parseRun(ctx(["true"], { memory: ["0"] })), /--memory "0" is below the minimum/);
  });
});

describe("checkCommand", () => {
  const dir = mkdtempSync(join(tmpdir(), "corerun-cgroup-cmd-"));
  writeFileSync(join(dir, "plain"), "");
  writeFileSync(join(dir, "tool"), "#!/bin/sh\n");
  chmodSync(join(dir, "tool"), 0o755);

  it("finds commands on PATH and by path", () => {
    checkCommand("tool", { PATH: `/nonexistent:${dir}` });
    checkCommand(join(dir, "tool"), {});
  });
  it("fails with 127 for a missing command and 126 for one that cannot be executed", () => {
    assert.throws(() => checkCommand("nope", { PATH: dir }), (e: unknown) => e instanceof CommandError && e.exitCode === 127 && /command not found; to use a subcommand/.test(e.message));
    assert.throws(() => checkCommand(join(dir, "nope"), {}), (e: unknown) => e instanceof CommandError && e.exitCode === 127 && !/subcommand/.test(e.message));
    assert.throws(() => checkCommand(join(dir, "plain"), {}), (e: unknown) => e instanceof CommandError && e.exitCode === 126);
    assert.throws(() => checkCommand("plain", { PATH: dir }), (e: unknown) => e instanceof CommandError && e.exitCode === 126);
    rmSync(dir, { recursive: true, force: true });
  });
});
