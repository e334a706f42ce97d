import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";
import { after, describe, test } from "node:test";
import { isAlive, openRecorded, procStartTime } from "./proc.ts";

const base = mkdtempSync(join(tmpdir(), "corerun-proc-test-"));
after(() => {
  if (base.startsWith(tmpdir() + sep) && base.includes("corerun-proc-test-")) rmSync(base, { recursive: true, force: true });
});

/** The pid of a process that has exited and been reaped. */
function deadPid(): number {
  const r = spawnSync("true");
  assert.equal(r.status, 0);
  return r.pid;
}

describe("procStartTime", () => {
  test("is a positive tick count for this process, and stable", () => {
    const t = procStartTime(process.pid);
    assert.ok(t !== undefined && Number.isInteger(t) && t > 0, String(t));
    assert.equal(procStartTime(process.pid), t);
  });

  test("a process started later has a later or equal start time", () => {
    const r = spawnSync(process.execPath, ["-e", "process.stdout.write(require('fs').readFileSync('/proc/self/stat','utf8'))"], { encoding: "utf8" });
    const child = Number(r.stdout.slice(r.stdout.lastIndexOf(")") + 2).split(" ")[19]);
    assert.ok(child >= procStartTime(process.pid)!, `${child}`);
  });

  test("is undefined for a pid that is gone", () => {
    assert.equal(procStartTime(deadPid()), undefined);
  });

  test("reads field 22 even when the command name holds spaces and parentheses", () => {
    const proc = join(base, "proc");
    mkdirSync(join(proc, "4242"), { recursive: true });
    // Fields 3..52 after "(comm) "; field 22 (index 19 here) is the start time.
    const rest = Array.from({ length: 50 }, (_, i) => (i === 0 ? "S" : i === 19 ? "987654" : String(i)));
    writeFileSync(join(proc, "4242", "stat"), `4242 (a) b (c)) ${rest.join(" ")}\n`);
    assert.equal(procStartTime(4242, proc), 987654);
  });
});

describe("isAlive", () => {
  test("is true for this process with its recorded start time", () => {
    assert.equal(isAlive({ pid: process.pid, startTime: procStartTime(process.pid)! }), true);
  });

  test("is false when the pid was reused by a process started at another time", () => {
    assert.equal(isAlive({ pid: process.pid, startTime: procStartTime(process.pid)! + 1 }), false);
  });

  test("is false for a dead pid and for no record", () => {
    assert.equal(isAlive({ pid: deadPid(), startTime: 1 }), false);
    assert.equal(isAlive(undefined), false);
  });
});

describe("openRecorded", () => {
  // Stands in for pidfd_open: an fd that is really open (closed by openRecorded on a reused pid), and a record of the calls.
  const calls: number[] = [];
  const sys = {
    pidfdOpen(pid: number) {
      calls.push(pid);
      return openSync("/dev/null", "r");
    },
  };

  test("opens the recorded live process", () => {
    calls.length = 0;
    const fd = openRecorded(sys, { pid: process.pid, startTime: procStartTime(process.pid)! });
    assert.ok(fd !== undefined);
    closeSync(fd);
    assert.deepEqual(calls, [process.pid]);
  });

  test("a gone process is not asked of the kernel at all; a reused pid is no match", () => {
    calls.length = 0;
    assert.equal(openRecorded(sys, { pid: deadPid(), startTime: 1 }), undefined);
    assert.deepEqual(calls, [], "no pidfd_open for a pid without /proc/PID");
    assert.equal(openRecorded(sys, { pid: process.pid, startTime: procStartTime(process.pid)! + 1 }), undefined);
    assert.deepEqual(calls, [process.pid]);
    assert.equal(openRecorded(sys, undefined), undefined);
  });
});
