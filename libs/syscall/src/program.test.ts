/**
 * runProgram with the native helper compiled here from native/clone.c (no root): a program's
 * status, signal and both outputs, as spawnSync reports them, without a deadlock on output
 * larger than a pipe holds, and a program that overstays its timeout killed and reaped. And
 * runContainerProgram: its input, its status, its timeout, and corerun-exe as the image it is
 * exec'd from.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { linuxSyscall } from "./linux.ts";
import { findProgram, runContainerProgram, runProgram } from "./spawn.ts";
import { compileNativeHelper } from "./testing.ts";

const dir = mkdtempSync(join(tmpdir(), "corerun-program-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let compiled = true;
before(() => {
  compiled = compileNativeHelper(dir);
});

describe("runProgram", () => {

  test("the exit status and what it wrote on stdout and stderr; stdin is /dev/null", (t) => {
    if (!compiled) return t.skip("no C compiler");
    const r = runProgram(linuxSyscall, ["sh", "-c", "echo out; echo err >&2; cat; exit 3"]);
    assert.deepEqual(r, { exitCode: 3, signal: undefined, stdout: "out\n", stderr: "err\n" });
  });

  test("a program killed by a signal reports it, with no exit status", (t) => {
    if (!compiled) return t.skip("no C compiler");
    const r = runProgram(linuxSyscall, ["sh", "-c", "kill -9 $$"]);
    assert.equal(r.exitCode, undefined);
    assert.equal(r.signal, 9);
  });

  test("more output than a pipe holds, on both streams at once, is read whole", (t) => {
    if (!compiled) return t.skip("no C compiler");
    const r = runProgram(linuxSyscall, ["sh", "-c", "head -c 300000 /dev/zero | tr '\\0' a; head -c 200000 /dev/zero | tr '\\0' b >&2"]);
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout.length, 300000);
    assert.equal(r.stderr.length, 200000);
    assert.match(r.stdout, /^a+$/);
  });

  test("a program that is not in PATH throws ENOENT; findProgram finds one that is", (t) => {
    if (!compiled) return t.skip("no C compiler");
    assert.throws(() => runProgram(linuxSyscall, ["corerun-no-such-program"]), (e: NodeJS.ErrnoException) => e.code === "ENOENT" && /corerun-no-such-program: not found in PATH/.test(e.message));
    assert.equal(findProgram("sh", "/nonexistent:/bin"), "/bin/sh");
    assert.equal(findProgram("sh", "/nonexistent"), undefined);
  });

  test("a program that overstays its timeout is killed and reaped, and throws ETIMEDOUT", (t) => {
    if (!compiled) return t.skip("no C compiler");
    const started = Date.now();
    const pidFile = join(dir, "sleep.pid");
    assert.throws(() => runProgram(linuxSyscall, ["sh", "-c", `echo $$ > ${pidFile}; exec sleep 30`], { timeoutMs: 300 }), (e: NodeJS.ErrnoException) => e.code === "ETIMEDOUT");
    assert.ok(Date.now() - started < 10_000, "it did not wait for the program's end");
    // Killed and reaped: not even a zombie is left.
    assert.ok(!existsSync(`/proc/${readFileSync(pidFile, "utf8").trim()}`));
  });
});

describe("runContainerProgram", () => {

  test("the input on its stdin, its environment and its exit status", (t) => {
    if (!compiled) return t.skip("no C compiler");
    const out = join(dir, "input");
    const r = runContainerProgram(linuxSyscall, "/bin/sh", ["sh", "-c", `cat > ${out}; echo "$HOOK" >> ${out}; exit 5`], ["HOOK=yes"], '{"status":"created"}\n');
    assert.equal(r.exitCode, 5);
    assert.equal(readFileSync(out, "utf8"), '{"status":"created"}\nyes\n');
  });

  test("a script whose interpreter is /proc/self/exe runs corerun-exe, which refuses: 125", (t) => {
    if (!compiled) return t.skip("no C compiler");
    const script = join(dir, "self-exe");
    writeFileSync(script, "#!/proc/self/exe\n", { mode: 0o755 });
    assert.equal(runContainerProgram(linuxSyscall, script, [script], [], "").exitCode, 125);
  });

  test("a program that overstays its timeout is killed and reaped, and throws ETIMEDOUT", (t) => {
    if (!compiled) return t.skip("no C compiler");
    const pidFile = join(dir, "hook-sleep.pid");
    assert.throws(() => runContainerProgram(linuxSyscall, "/bin/sh", ["sh", "-c", `echo $$ > ${pidFile}; exec sleep 30`], [], "", 300), (e: NodeJS.ErrnoException) => e.code === "ETIMEDOUT");
    assert.ok(!existsSync(`/proc/${readFileSync(pidFile, "utf8").trim()}`));
  });
});
