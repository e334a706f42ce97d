import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { linuxSyscall, O_NONBLOCK, POLLOUT } from "@corerun/syscall";
import { writeAll } from "./output.ts";

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

describe("no fsync of a redirected stdout at exit", () => {
  test("a regular file at fd 1 gets /dev/null after the exit listeners, which still write to it; a pipe at fd 2 stays", async () => {
    const dir = mkdtempSync(join(tmpdir(), "corerun-output-test-"));
    try {
      const file = join(dir, "out");
      const out = openSync(file, "w");
      const script = `
        import { writeSync } from "node:fs";
        import { linuxSyscall } from "@corerun/syscall";
        import { noFsyncAtExit, writeOut } from ${JSON.stringify(outputTs)};
        noFsyncAtExit({ dup2: (from, to) => { writeSync(2, "dup2 over " + to + "\\n"); linuxSyscall.dup2(from, to); } });
        writeOut("before\\n");
        process.on("exit", () => writeOut("listener\\n"));
        process.exit(3);
      `;
      const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { stdio: ["ignore", out, "pipe"] });
      closeSync(out);
      let err = "";
      child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
      const code = await new Promise((resolve) => child.on("close", resolve));
      assert.equal(code, 3);
      assert.equal(err, "dup2 over 1\n");
      assert.equal(readFileSync(file, "utf8"), "before\nlistener\n");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
