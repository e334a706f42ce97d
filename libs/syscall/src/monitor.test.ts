/**
 * corerun-monitor (native/monitor.c) with a stand-in for corerun: a shell script that plays the
 * start (reports an id and the pid of a "first process" that writes to the output pipes) and
 * the exit handler (records its arguments). No root, no container: the log format, the line
 * splitting, the rotation and the exit status the monitor passes on.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { createConnection } from "node:net";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compileNative } from "./testing.ts";

const ID = "0123456789ab";

const STAND_IN = `
if [ "$1" = "__monitor-exit" ]; then echo "$@" > "$2/$3/handler"; exit 0; fi
mkdir -p "$ROOT/${ID}"
echo "id ${ID}" >&5
(
  exec 1>&3 2>&4 3>&- 4>&- 5>&-
  printf 'a"b\\\\c\\t\\001\\n'
  printf 'partial' >&2
  head -c 20000 /dev/zero | tr '\\0' x; echo
  i=0; while [ $i -lt 200 ]; do echo "line $i"; i=$((i+1)); done
  exit 3
) &
echo "pid $!" >&5
`;

interface Entry {
  log: string;
  stream: string;
  time: string;
}

describe("corerun-monitor", () => {
  test("json-file lines, long lines split, one rotation, and the first process's status passed to the handler", (t) => {
    const dir = mkdtempSync(join(tmpdir(), "corerun-monitor-test-"));
    try {
      const monitor = join(dir, "corerun-monitor");
      if (!compileNative(dir, ["corerun-monitor"])) return t.skip("no C compiler");
      const root = join(dir, "root");
      const script = join(dir, "stand-in.sh");
      writeFileSync(script, STAND_IN);
      const r = spawnSync(monitor, [root, "4096", "keep", "--", "/bin/sh", script], { encoding: "utf8", env: { ...process.env, ROOT: root }, timeout: 20_000 });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, `ok ${ID}\n`, "the client is told the start worked");
      const handler = readFileSync(join(root, ID, "handler"), "utf8").trim().split(" ");
      assert.deepEqual([handler[0], handler[1], handler[2], handler[3], handler[5]], ["__monitor-exit", root, ID, "3", "keep"]);
      assert.ok(Math.abs(Number(handler[4]) - Date.now()) < 20_000, "the exit time is in ms since the epoch");

      const log = join(root, ID, "container.log");
      assert.ok(existsSync(`${log}.1`), "the log was rotated once past its size");
      const parse = (f: string) => readFileSync(f, "utf8").trim().split("\n").map((l) => JSON.parse(l) as Entry);
      const current = parse(log);
      assert.ok(readFileSync(log).length <= 4096 + 128, "a file holds at most LOG_MAX bytes plus one entry");
      // The stderr's partial line is written at its EOF, which may come before or after this.
      const last = current.filter((e) => e.stream === "stdout").at(-1)!;
      assert.deepEqual([last.stream, last.log], ["stdout", "line 199\n"]);
      assert.match(last.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
      // The start of the output went with the first file replaced by a later rotation; a run
      // with a larger size keeps it all.
      rmSync(join(root, ID), { recursive: true });
      const all = spawnSync(monitor, [root, "10000000", "keep", "--", "/bin/sh", script], { encoding: "utf8", env: { ...process.env, ROOT: root }, timeout: 20_000 });
      assert.equal(all.status, 0, all.stderr);
      const entries = parse(log);
      const out = entries.filter((e) => e.stream === "stdout").map((e) => e.log);
      assert.equal(out[0], 'a"b\\c\t\u0001\n', "quotes, backslashes and control characters survive");
      assert.equal(out[1]!.length, 16384, "a line longer than 16 KiB is split");
      assert.equal(out[2], `${"x".repeat(20000 - 16384)}\n`);
      assert.equal(out.length, 3 + 200);
      assert.deepEqual(entries.filter((e) => e.stream === "stderr").map((e) => e.log), ["partial"], "a last line without a newline is kept");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a start that fails is reported with its status, and the client's pipe is closed", () => {
    const dir = mkdtempSync(join(tmpdir(), "corerun-monitor-test-"));
    try {
      const monitor = join(dir, "corerun-monitor");
      const cc = spawnSync(process.env.CC ?? "cc", ["-O2", "-o", monitor, join(import.meta.dirname, "../native/monitor.c")], { encoding: "utf8" });
      assert.equal(cc.status, 0, cc.stderr);
      const r = spawnSync(monitor, [join(dir, "root"), "4096", "rm", "--", "/bin/sh", "-c", "echo 'corerun: it failed' >&2; exit 126"], { encoding: "utf8", timeout: 20_000 });
      assert.equal(r.status, 0);
      assert.equal(r.stdout, "fail 126\n");
      assert.equal(r.stderr, "corerun: it failed\n", "the start's own error reaches the client");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the attach socket: input frames reach the container's stdin (-i), its output comes back as frames, then its exit status", async () => {
    const dir = mkdtempSync(join(tmpdir(), "corerun-monitor-test-"));
    try {
      const monitor = join(dir, "corerun-monitor");
      const cc = spawnSync(process.env.CC ?? "cc", ["-O2", "-o", monitor, join(import.meta.dirname, "../native/monitor.c")], { encoding: "utf8" });
      assert.equal(cc.status, 0, cc.stderr);
      const root = join(dir, "root");
      const script = join(dir, "stand-in.sh");
      // The first process reads one line from its stdin (fd 0 of the start: the monitor's pipe;
      // kept through 6, since an asynchronous list's stdin is otherwise /dev/null).
      writeFileSync(script, `
if [ "$1" = "__monitor-exit" ]; then echo "$@" > "$2/$3/handler"; exit 0; fi
mkdir -p "$ROOT/${ID}"
echo "id ${ID}" >&5
echo stdin >&5
exec 6<&0
( exec 0<&6 1>&3 2>&4 3>&- 4>&- 5>&- 6<&-; read line; echo "got $line"; echo "to stderr" >&2; exit 3 ) &
echo "pid $!" >&5
`);
      const m = spawn(monitor, [root, "100000", "keep", "--", "/bin/sh", script], { env: { ...process.env, ROOT: root }, stdio: ["ignore", "pipe", "inherit"] });
      // Listened for from the start: the monitor may exit before the socket's close is seen.
      const exited = once(m, "exit");
      const [said] = (await once(m.stdout, "data")) as [Buffer];
      assert.equal(said.toString(), `ok ${ID}\n`);
      const sock = createConnection(join(root, ID, "attach.sock"));
      await once(sock, "connect");
      const frames: [string, string][] = [];
      let pending = Buffer.alloc(0);
      sock.on("data", (d: Buffer) => {
        pending = Buffer.concat([pending, d]);
        while (pending.length >= 3 && pending.length >= 3 + pending.readUInt16BE(1)) {
          frames.push([String.fromCharCode(pending[0]!), pending.subarray(3, 3 + pending.readUInt16BE(1)).toString()]);
          pending = pending.subarray(3 + pending.readUInt16BE(1));
        }
      });
      const text = Buffer.from("hello\n");
      sock.write(Buffer.concat([Buffer.from([0x77, 0, 4, 0, 24, 0, 80]), Buffer.from([0x69, 0, text.length]), text]));
      await once(sock, "close");
      assert.deepEqual(frames.filter(([t]) => t !== "e"), [["o", "got hello\n"], ["x", "3"]], "a window size without a pty is ignored");
      assert.deepEqual(frames.filter(([t]) => t === "e"), [["e", "to stderr\n"]]);
      await exited;
      assert.ok(!existsSync(join(root, ID, "attach.sock")), "the socket goes at the end");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
