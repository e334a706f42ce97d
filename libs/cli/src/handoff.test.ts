import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { ARGV_FD_ENV, decodeArgv, DONE_FD_ENV, encodeArgv, takeArgvFd, takeDoneFd } from "./handoff.ts";
import { UsageError } from "./exit.ts";
import { isOpen, refusesCleanly } from "./testing.ts";

const toolTs = fileURLToPath(new URL("./tool.ts", import.meta.url));

/** An fd of a file holding `bytes`, as a writer that has closed its end leaves a pipe. */
function fdWith(bytes: Buffer): { fd: number; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "corerun-handoff-"));
  const file = join(dir, "argv");
  writeFileSync(file, bytes);
  const fd = openSync(file, "r");
  return { fd, done: () => rmSync(dir, { recursive: true, force: true }) };
}


describe("argv over an fd: the encoding", () => {
  test("each word ends with a NUL byte, as printf '%s\\0' writes them; any other byte passes as it is", () => {
    const words = ["--pid", "42", "-v", "/a b:/c", "", "line\nbreak", "ünï", "--"];
    assert.deepEqual(encodeArgv(["a", "b c"]), Buffer.from("a\0b c\0"));
    assert.deepEqual(decodeArgv(encodeArgv(words), "fd"), words);
  });

  test("a word with a NUL byte cannot be sent", () => {
    assert.throws(() => encodeArgv(["a\0b"]), UsageError);
  });

  test("nothing written (the writer went away) and a cut last word are refused in one line", () => {
    assert.throws(() => decodeArgv(Buffer.alloc(0), "CORERUN_ARGV_FD=3"), /^UsageError: CORERUN_ARGV_FD=3: closed before any word was written/);
    assert.throws(() => decodeArgv(Buffer.from("--pid\x0042"), "CORERUN_ARGV_FD=3"), /the last word ends without a NUL byte/);
    for (const bytes of ["", "a", "a\0b", "\0\0x"]) refusesCleanly(() => decodeArgv(Buffer.from(bytes), "fd"), bytes);
  });
});

describe("takeArgvFd", () => {
  test("reads the words to the end, then closes the fd and takes the variable out of the environment", () => {
    const f = fdWith(encodeArgv(["setup", "--id", "x"]));
    try {
      const env: NodeJS.ProcessEnv = { [ARGV_FD_ENV]: String(f.fd), OTHER: "1" };
      assert.deepEqual(takeArgvFd(env), ["setup", "--id", "x"]);
      assert.deepEqual(env, { OTHER: "1" });
      assert.equal(isOpen(f.fd), false);
    } finally {
      f.done();
    }
  });

  test("without the variable there are no words to read", () => {
    assert.equal(takeArgvFd({}), undefined);
  });

  test("stdio, a word that is not an fd and an fd that is not open are refused, and the variable goes", () => {
    for (const value of ["0", "2", "x", "-3", "3.5", "99999"]) {
      const env: NodeJS.ProcessEnv = { [ARGV_FD_ENV]: value };
      assert.throws(() => takeArgvFd(env), new RegExp(`^UsageError: ${ARGV_FD_ENV}=${value.replace(".", "\\.")}: give an inherited fd from 3 on$`));
      assert.deepEqual(env, {});
    }
    assert.throws(() => takeArgvFd({ [ARGV_FD_ENV]: "1000" }), /CORERUN_ARGV_FD=1000: cannot read it \(EBADF\); pass an open fd/);
  });
});

describe("takeDoneFd", () => {
  test("takes the fd, close-on-exec, out of the environment", () => {
    const f = fdWith(Buffer.alloc(0));
    try {
      const env: NodeJS.ProcessEnv = { [DONE_FD_ENV]: String(f.fd) };
      assert.equal(takeDoneFd(env), f.fd);
      assert.deepEqual(env, {});
    } finally {
      closeSync(f.fd);
      f.done();
    }
    assert.throws(() => takeDoneFd({ [DONE_FD_ENV]: "1000" }), /CORERUN_DONE_FD=1000: not an open fd/);
  });
});

/** A tool run by runTool that prints what it parsed and what of the handoff it can still see. */
function runToolChild(words: Buffer | undefined, commandLine: string[] = []) {
  const script = `import { runTool, defineTool } from ${JSON.stringify(toolTs)};
import { readlinkSync } from "node:fs";
const fd3 = () => { try { return readlinkSync("/proc/self/fd/3"); } catch { return "closed"; } };
void runTool(defineTool({ name: "t", description: "d", usage: "", tail: "command", args: { pid: { type: "string" }, flag: { type: "boolean" } },
  run(ctx) { console.log(JSON.stringify({ values: ctx.values, flags: ctx.flags, tail: ctx.tail, env: process.env.${ARGV_FD_ENV} ?? null, done: process.env.${DONE_FD_ENV} ?? null, socket: fd3().startsWith("socket:"), argv: process.argv.slice(2) })); return 0; } }));`;
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script, "--", "t", ...commandLine], {
    stdio: ["ignore", "pipe", "pipe", "pipe", "pipe"], env: { ...process.env, [ARGV_FD_ENV]: "3", [DONE_FD_ENV]: "4" },
  });
  let stdout = "";
  let stderr = "";
  let said = "";
  const events: string[] = [];
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  (child.stdio[4] as Readable).on("data", (d: Buffer) => {
    said += d.toString();
    events.push("done");
  });
  // A child that ends before it has read everything resets the socket: its status tells.
  (child.stdio[3] as Writable).on("error", () => {});
  (child.stdio[4] as Readable).on("error", () => {});
  (child.stdio[3] as Writable).end(words ?? Buffer.alloc(0));
  return new Promise<{ code: number | null; stdout: string; stderr: string; said: string; events: string[] }>((resolve) => {
    child.on("exit", () => events.push("exit"));
    child.on("close", (code) => resolve({ code, stdout, stderr, said, events }));
  });
}

describe("runTool with CORERUN_ARGV_FD and CORERUN_DONE_FD", () => {
  test("the words follow the command line's and are parsed as one; nothing of the handoff is left; done comes before the exit", async () => {
    const r = await runToolChild(encodeArgv(["--pid", "7", "--", "sh", "-c", "echo $0"]), ["--flag"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), {
      values: { pid: ["7"] }, flags: { flag: true }, tail: ["sh", "-c", "echo $0"], env: null, done: null, socket: false, argv: ["--flag", "--pid", "7", "--", "sh", "-c", "echo $0"],
    });
    assert.equal(r.said, "done\n");
    assert.deepEqual(r.events, ["done", "exit"]);
  });

  test("a bad word is refused as on a command line: one line, status 125, no done", async () => {
    const r = await runToolChild(encodeArgv(["--nope"]));
    assert.equal(r.code, 125);
    assert.equal(r.stderr, "t: unknown option --nope; see --help\n");
    assert.equal(r.said, "");
  });

  test("a writer that closes without a word: one line, status 125", async () => {
    const r = await runToolChild(undefined);
    assert.equal(r.code, 125);
    assert.equal(r.stderr, "t: CORERUN_ARGV_FD=3: closed before any word was written (its writer went away)\n");
  });
});
