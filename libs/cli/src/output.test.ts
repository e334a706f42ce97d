import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { linuxSyscall, O_NONBLOCK, POLLOUT } from "@corerun/syscall";
import { nodeExitNeeded, writeAll } from "./output.ts";

const toolTs = fileURLToPath(new URL("./tool.ts", import.meta.url));
const outputTs = fileURLToPath(new URL("./output.ts", import.meta.url));

/** Runs `script` (an ES module) with fd 1 or fd 2 the write end of a pipe whose read end is closed. */
function withClosedReader(script: string, fd: 1 | 2): Promise<{ code: number | null; other: string }> {
  const [r, w] = linuxSyscall.pipe();
  closeSync(r);
  const stdio: ("ignore" | "pipe" | number)[] = ["ignore", "pipe", "pipe"];
  stdio[fd] = w;
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { stdio });
  closeSync(w);
  let other = "";
  child.stdio[fd === 1 ? 2 : 1]!.on("data", (d: Buffer) => (other += d.toString()));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, other })));
}

describe("output written straight to the fd", () => {
  test("a non-blocking pipe that fills is waited on with POLLOUT, and every byte arrives in order", () => {
    const [r, w] = linuxSyscall.pipe();
    try {
      linuxSyscall.setFileFlags(w, linuxSyscall.getFileFlags(w) | O_NONBLOCK);
      // Four times a pipe's default capacity (64 KiB): the writer must wait for the reader.
      const data = Buffer.alloc(4 * 65536);
      for (let i = 0; i < data.length; i++) data[i] = i % 251;
      const got: Buffer[] = [];
      const polls: number[] = [];
      const drain = Buffer.alloc(65536);
      writeAll(w, data, {
        poll(fds, _timeout, events) {
          polls.push(events ?? 0);
          assert.deepEqual(fds, [w]);
          const n = readSync(r, drain, 0, drain.length, null);
          got.push(Buffer.from(drain.subarray(0, n)));
          return [POLLOUT];
        },
      });
      closeSync(w);
      for (;;) {
        const n = readSync(r, drain, 0, drain.length, null);
        if (n === 0) break;
        got.push(Buffer.from(drain.subarray(0, n)));
      }
      assert.ok(polls.length >= 3, `waited ${polls.length} times`);
      assert.ok(polls.every((e) => e === POLLOUT));
      assert.ok(Buffer.concat(got).equals(data));
    } finally {
      for (const fd of [r, w]) {
        try {
          closeSync(fd);
        } catch {
          // closed above
        }
      }
    }
  });

  test("a tool whose stdout reader has gone stops with status 141, as after SIGPIPE, and says nothing", async () => {
    const script = `import { runTool, defineTool, printJson } from ${JSON.stringify(toolTs)};
void runTool(defineTool({ name: "t", description: "d", usage: "", tail: "none", args: {}, run() { printJson({ a: 1 }); return 0; } }), []);`;
    const r = await withClosedReader(script, 1);
    assert.equal(r.other, "");
    assert.equal(r.code, 141);
  });

  test("a message for a closed stderr is dropped: the command goes on", async () => {
    const script = `import { writeErr } from ${JSON.stringify(outputTs)};
writeErr("nobody reads this\\n");
process.stdout.write("went on\\n");`;
    const r = await withClosedReader(script, 2);
    assert.equal(r.other, "went on\n");
    assert.equal(r.code, 0);
  });
});

/**
 * Runs `body` (ES module code after quickExit's import) under tsx with fd 1 a regular file and fd
 * 2 a pipe; quickExit's calls of dup2 and _exit are written to fd 2 as they happen.
 */
async function exitChild(body: string, launchFlags = "process.execArgv"): Promise<{ code: number | null; err: string; out: string }> {
  const dir = mkdtempSync(join(tmpdir(), "corerun-output-test-"));
  try {
    const file = join(dir, "out");
    const out = openSync(file, "w");
    const script = `
      import { writeSync } from "node:fs";
      import { linuxSyscall } from "@corerun/syscall";
      import { quickExit, writeOut } from ${JSON.stringify(outputTs)};
      quickExit({
        dup2: (from, to) => { writeSync(2, "dup2 over " + to + "\\n"); linuxSyscall.dup2(from, to); },
        exit: (code) => { writeSync(2, "_exit " + code + "\\n"); return linuxSyscall.exit(code); },
      }, ${launchFlags});
      ${body}
    `;
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { stdio: ["ignore", out, "pipe"] });
    closeSync(out);
    let err = "";
    child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    return { code, err, out: readFileSync(file, "utf8") };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const WRITES = `
  writeOut("before\\n");
  process.on("exit", () => writeOut("listener\\n"));
`;

describe("a tool's exit", () => {
  test("with libc loaded and nothing for Node's exit to do: _exit(2) with the status, after the exit listeners, every byte written", async () => {
    const r = await exitChild(`linuxSyscall.getFileFlags(1); ${WRITES} process.exit(3);`);
    assert.deepEqual(r, { code: 3, err: "_exit 3\n", out: "before\nlistener\n" });
  });

  test("a process that used process.stdout exits through Node (which puts fds 0-2 back), a regular file at fd 1 swapped for /dev/null first", async () => {
    const r = await exitChild(`linuxSyscall.getFileFlags(1); void process.stdout.isTTY; ${WRITES} process.exit(3);`);
    assert.deepEqual(r, { code: 3, err: "dup2 over 1\n", out: "before\nlistener\n" });
  });

  test("Node flags the launchers do not pass (here tsx's) leave the exit to Node", async () => {
    const r = await exitChild(`linuxSyscall.getFileFlags(1); ${WRITES} process.exit(4);`, "[]");
    assert.deepEqual(r, { code: 4, err: "dup2 over 1\n", out: "before\nlistener\n" });
  });

  test("a process that never used koffi exits through Node, with nothing swapped", async () => {
    const r = await exitChild(`${WRITES} process.exit(5);`);
    assert.deepEqual(r, { code: 5, err: "", out: "before\nlistener\n" });
  });

  test("what Node's exit is needed for: stdio streams used, another Node flag, NODE_OPTIONS, NODE_V8_COVERAGE", () => {
    const base = { execArgv: ["--preserve-symlinks-main"], env: {}, stdioUsed: false, launchFlags: ["--preserve-symlinks-main"] };
    assert.equal(nodeExitNeeded(base), false);
    assert.equal(nodeExitNeeded({ ...base, execArgv: [] }), false);
    assert.equal(nodeExitNeeded({ ...base, stdioUsed: true }), true);
    assert.equal(nodeExitNeeded({ ...base, execArgv: ["--preserve-symlinks-main", "--cpu-prof"] }), true);
    assert.equal(nodeExitNeeded({ ...base, env: { NODE_OPTIONS: "--heap-prof" } }), true);
    assert.equal(nodeExitNeeded({ ...base, env: { NODE_OPTIONS: "" } }), false);
    assert.equal(nodeExitNeeded({ ...base, env: { NODE_V8_COVERAGE: "/tmp/cov" } }), true);
  });
});
