import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { closeSync, constants, mkdirSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, test } from "node:test";
import { linuxSyscall } from "@corerun/syscall";
import { decode, encode, ExecSide, goPath, openGo, readyPath, ReportedError, goTaken, sendGo, UnexpectedMessage, waitReady, writeGo, type SyncMessage } from "./index.ts";

const base = mkdtempSync(join(tmpdir(), "corerun-sync-test-"));
after(() => {
  if (base.startsWith(tmpdir() + sep) && base.includes("corerun-sync-test-")) rmSync(base, { recursive: true, force: true });
});

describe("encode and decode", () => {
  const messages: SyncMessage[] = [{ t: "ready" }, { t: "pivoted" }, { t: "go" }, { t: "go", tty: 3 }, { t: "error", message: "mount /proc: EPERM", exitCode: 125 }];
  for (const msg of messages) {
    test(`round-trips ${JSON.stringify(msg)} as one line`, () => {
      const line = encode(msg);
      assert.ok(line.endsWith("\n") && !line.slice(0, -1).includes("\n"));
      assert.deepEqual(decode(line.trimEnd()), msg);
    });
  }

  test("an error message without fields gets defaults", () => {
    assert.deepEqual(decode('{"t":"error"}'), { t: "error", message: "unknown error", exitCode: 125 });
    assert.deepEqual(decode('{"t":"error","message":"x","exitCode":"127"}'), { t: "error", message: "x", exitCode: 125 });
  });

  test("go names a pty by a whole number only", () => {
    assert.throws(() => decode('{"t":"go","tty":"3"}'), /sync: go names no pty/);
    assert.throws(() => decode('{"t":"go","tty":-1}'), /sync: go names no pty/);
  });

  test("extra fields are dropped", () => {
    assert.deepEqual(decode('{"t":"ready","pid":3}'), { t: "ready" });
  });

  test("an unknown message is an error that quotes it", () => {
    assert.throws(() => decode('{"t":"usermap-please"}'), /^Error: sync: unknown message "\{\\"t\\":\\"usermap-please\\"\}"$/);
    assert.throws(() => decode("5"), /sync: unknown message/);
  });

  test("text that is not JSON is an error that quotes it", () => {
    assert.throws(() => decode("ok"), { message: 'sync: not a message: "ok"' });
  });

  test("JSON null is an unknown message, not a TypeError", () => {
    assert.throws(() => decode("null"), /sync: unknown message/);
  });

  test("UnexpectedMessage says what was expected and what came", () => {
    assert.equal(new UnexpectedMessage("go", '{"t":"ready"}').message, 'sync: expected "go", received {"t":"ready"}');
    assert.equal(new UnexpectedMessage("ready", "").message, 'sync: expected "ready", received end of file');
  });
});

const fixture = fileURLToPath(new URL("./__fixtures__/exec-side.ts", import.meta.url));
const repoRoot = fileURLToPath(new URL("../../..", import.meta.url));

/** A sync directory with both FIFOs, as corerun makes it. */
function syncDir(name: string): string {
  const dir = join(base, name);
  mkdirSync(dir);
  execFileSync("mkfifo", ["-m", "600", readyPath(dir), goPath(dir)]);
  return dir;
}

/** Starts the corerun-exec side in its own process; resolves with its exit status and stdout. */
function startExecSide(dir: string, mode: "ok" | "fail"): { child: ChildProcess; done: Promise<{ code: number | null; out: string }> } {
  const child = spawn(process.execPath, ["--import", "tsx", fixture, dir, mode], { cwd: repoRoot, stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  const done = new Promise<{ code: number | null; out: string }>((resolve) => child.on("close", (code) => resolve({ code, out })));
  return { child, done };
}

/**
 * waitReady blocks the whole test process, so no timer can rescue it. This separate process
 * kills the exec side after `seconds` and opens `ready` once, which ends the blocked read with
 * end of file: a broken handshake fails the test instead of hanging it.
 */
function watchdog(dir: string, child: ChildProcess, seconds = 20): ChildProcess {
  const script = 'sleep "$1"; kill -9 "$2" 2>/dev/null; exec 3<>"$3"';
  return spawn("sh", ["-c", script, "watchdog", String(seconds), String(child.pid), readyPath(dir)], { stdio: "ignore" });
}

describe("the FIFO handshake between two processes", () => {
  test("goTaken waits while the waiting side holds go open, and resolves once it lets go", async () => {
    const dir = syncDir("taken");
    const reader = openSync(goPath(dir), constants.O_RDWR);
    let resolved = false;
    const taken = goTaken(dir).then(() => (resolved = true));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(resolved, false);
    closeSync(reader);
    await taken;
    assert.equal(resolved, true);
  });

  test("waitReady sees ready, and sendGo releases the waiting side", async () => {
    const dir = syncDir("ok");
    const exec = startExecSide(dir, "ok");
    const dog = watchdog(dir, exec.child);
    try {
      waitReady(dir);
      sendGo(dir);
      const { code, out } = await exec.done;
      assert.equal(out, "after ready, fail gives false\nwent\n");
      assert.equal(code, 0);
    } finally {
      dog.kill("SIGKILL");
      exec.child.kill("SIGKILL");
    }
  });

  test("the waiting side opens go without a reader of ready; ready opens once a reader is there", { timeout: 20_000 }, () => {
    const dir = syncDir("barrier");
    // No reader of ready exists here: a constructor that opened ready would block for ever.
    const side = new ExecSide(dir);
    const reader = openSync(readyPath(dir), constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      side.openReady();
      side.sendReady();
      assert.equal(side.fail("too late", 125), false);
      const buf = Buffer.alloc(64);
      const n = readSync(reader, buf, 0, buf.length, null);
      assert.deepEqual(decode(buf.toString("utf8", 0, n).trim()), { t: "ready" });
    } finally {
      closeSync(reader);
      side.release();
    }
  });

  test("a failure before ready arrives as a ReportedError with its exit status, once", async () => {
    const dir = syncDir("fail");
    const exec = startExecSide(dir, "fail");
    const dog = watchdog(dir, exec.child);
    try {
      assert.throws(() => waitReady(dir), (e: unknown) => {
        assert.ok(e instanceof ReportedError, String(e));
        assert.equal(e.message, "sh: not found in the root filesystem");
        assert.equal(e.exitCode, 127);
        return true;
      });
      const { code, out } = await exec.done;
      assert.equal(out, "fail true false\n");
      assert.equal(code, 0);
    } finally {
      dog.kill("SIGKILL");
      exec.child.kill("SIGKILL");
    }
  });

  test("the waiting side refuses a message other than go", async () => {
    const dir = syncDir("wrong");
    const exec = startExecSide(dir, "ok");
    const dog = watchdog(dir, exec.child);
    try {
      waitReady(dir);
      const fd = openSync(goPath(dir), constants.O_WRONLY | constants.O_NONBLOCK);
      writeSync(fd, encode({ t: "ready" }));
      closeSync(fd);
      const { code, out } = await exec.done;
      assert.equal(code, 3);
      assert.match(out, /UnexpectedMessage: sync: expected "go", received \{"t":"ready"\}\n$/);
    } finally {
      dog.kill("SIGKILL");
      exec.child.kill("SIGKILL");
    }
  });

  test("pivoted and go written back to back reach the waiting side as two messages, in order", () => {
    const dir = syncDir("pivoted");
    const side = new ExecSide(dir);
    try {
      // One write holding both lines: the first read brings the second message along.
      const fd = openGo(dir);
      writeSync(fd, encode({ t: "pivoted" }) + encode({ t: "go", tty: 2 }));
      closeSync(fd);
      assert.deepEqual(side.waitPivotedOrGo(), { t: "pivoted" });
      assert.deepEqual(side.waitGo(), { t: "go", tty: 2 });
    } finally {
      side.release();
    }
  });

  test("without pivoted, go comes first; pivoted where go is due is an UnexpectedMessage", () => {
    const dir = syncDir("pivoted-go");
    const side = new ExecSide(dir);
    try {
      sendGo(dir);
      assert.deepEqual(side.waitPivotedOrGo(), { t: "go" });
      writeGo(openGo(dir), { t: "pivoted" });
      assert.throws(() => side.waitGo(), (e: unknown) => e instanceof UnexpectedMessage && e.message === 'sync: expected "go", received {"t":"pivoted"}');
    } finally {
      side.release();
    }
  });

  test("ready that ends without a message is an UnexpectedMessage", () => {
    const dir = syncDir("eof");
    // A writer that opens and closes ready without writing, as a crashed exec side would.
    const writer = spawn("sh", ["-c", 'exec 3>"$1"', "writer", readyPath(dir)], { stdio: "ignore" });
    try {
      assert.throws(() => waitReady(dir), { name: "UnexpectedMessage", message: 'sync: expected "ready", received end of file' });
    } finally {
      writer.kill("SIGKILL");
    }
  });

  test("sendGo with nobody holding go fails at once instead of blocking", () => {
    const dir = syncDir("nobody");
    assert.throws(() => sendGo(dir), { name: "PeerGone", message: `the process waiting on ${goPath(dir)} exited before go` });
  });

  test("waitReady with the writer's pidfd ends when the writer dies without writing", async () => {
    const dir = syncDir("peer-dies");
    const peer = spawn("sleep", ["0.3"], { stdio: "ignore" });
    const pidfd = linuxSyscall.pidfdOpen(peer.pid!);
    try {
      assert.throws(() => waitReady(dir, { pidfd, name: `sleep (pid ${peer.pid})`, sys: linuxSyscall }), {
        name: "PeerGone", message: `sleep (pid ${peer.pid}) exited before it said ready`,
      });
    } finally {
      closeSync(pidfd);
    }
  });

  test("waitReady with the writer's pidfd reads its ready", () => {
    const dir = syncDir("peer-ready");
    const peer = spawn("sh", ["-c", 'sleep 0.2; printf \'{"t":"ready"}\\n\' > "$1"; sleep 5', "writer", readyPath(dir)], { stdio: "ignore" });
    const pidfd = linuxSyscall.pidfdOpen(peer.pid!);
    try {
      waitReady(dir, { pidfd, name: "sh", sys: linuxSyscall });
    } finally {
      closeSync(pidfd);
      peer.kill("SIGKILL");
    }
  });
});
