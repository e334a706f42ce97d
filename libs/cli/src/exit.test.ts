import assert from "node:assert/strict";
import { constants } from "node:os";
import { describe, test } from "node:test";
import { SyscallError } from "@corerun/syscall";
import { CommandError, errorLine, exitCodeForError, exitCodeOf, signalName, signalNumber, UsageError } from "./exit.ts";

describe("exitCodeOf", () => {
  test("passes the command's own status through", () => {
    assert.equal(exitCodeOf({ exitCode: 0 }), 0);
    assert.equal(exitCodeOf({ exitCode: 3 }), 3);
    assert.equal(exitCodeOf({ exitCode: 255, signal: null }), 255);
  });

  test("a death by signal N is 128+N, by number or by name", () => {
    assert.equal(exitCodeOf({ signal: 9 }), 137);
    assert.equal(exitCodeOf({ exitCode: null, signal: "SIGTERM" }), 143);
    assert.equal(exitCodeOf({ signal: "SIGINT" }), 130);
  });

  test("the signal wins over an exit code reported alongside it", () => {
    assert.equal(exitCodeOf({ exitCode: 0, signal: "SIGKILL" }), 137);
  });

  test("neither status nor signal is a runtime error", () => {
    assert.equal(exitCodeOf({}), 125);
    assert.equal(exitCodeOf({ exitCode: null, signal: null }), 125);
  });
});

describe("signalNumber", () => {
  test("agrees with the kernel's numbering for every named signal", () => {
    for (const [name, n] of Object.entries(constants.signals)) {
      if (n >= 32) continue;
      // SIGIOT and SIGPOLL are aliases Node lists alongside SIGABRT and SIGIO.
      if (name === "SIGIOT" || name === "SIGPOLL" || name === "SIGUNUSED") continue;
      assert.equal(signalNumber(name), n, name);
    }
  });

  test("an unknown name is a usage error", () => {
    assert.throws(() => signalNumber("SIGNOPE"), UsageError);
  });

  test("real-time signals as Docker names them (systemd images stop with SIGRTMIN+3), and back", () => {
    assert.deepEqual(["SIGRTMIN", "SIGRTMIN+3", "SIGRTMAX-1", "SIGRTMAX"].map((n) => signalNumber(n)), [34, 37, 63, 64]);
    assert.deepEqual([34, 37, 49, 50, 63, 64, 15].map(signalName), ["SIGRTMIN", "SIGRTMIN+3", "SIGRTMIN+15", "SIGRTMAX-14", "SIGRTMAX-1", "SIGRTMAX", "SIGTERM"]);
    for (const bad of ["SIGRTMIN+31", "SIGRTMIN-1", "SIGRTMAX+1", "SIGRTMIN+"]) assert.throws(() => signalNumber(bad), UsageError, bad);
  });
});

describe("exitCodeForError", () => {
  test("CommandError carries 126 or 127", () => {
    assert.equal(exitCodeForError(new CommandError("sh: not executable", 126)), 126);
    assert.equal(exitCodeForError(new CommandError("sh: not found", 127)), 127);
  });

  test("execve ENOENT is 127, any other execve failure 126", () => {
    assert.equal(exitCodeForError(new SyscallError({ syscall: "execve", errno: constants.errno.ENOENT, path: "/bin/x" })), 127);
    assert.equal(exitCodeForError(new SyscallError({ syscall: "execve", errno: constants.errno.EACCES, path: "/bin/x" })), 126);
    assert.equal(exitCodeForError(new SyscallError({ syscall: "execve", errno: constants.errno.ENOEXEC })), 126);
  });

  test("an errno that libuv's table lacks is still named: ENOEXEC, with its hint", () => {
    assert.match(new SyscallError({ syscall: "execve", errno: constants.errno.ENOEXEC, path: "/x.sh" }).message, /^execve \/x\.sh: ENOEXEC \(exec format error\); the file is not a valid executable/);
  });

  test("a SyscallError from another syscall is a runtime error", () => {
    assert.equal(exitCodeForError(new SyscallError({ syscall: "mount", errno: constants.errno.ENOENT })), 125);
  });

  test("usage and generic errors are 125", () => {
    assert.equal(exitCodeForError(new UsageError("bad")), 125);
    assert.equal(exitCodeForError(new Error("boom")), 125);
    assert.equal(exitCodeForError("a string"), 125);
    assert.equal(exitCodeForError(null), 125);
    assert.equal(exitCodeForError(undefined), 125);
  });

  test("an error reported by another tool keeps the status it carries", () => {
    assert.equal(exitCodeForError(Object.assign(new Error("reported"), { exitCode: 42 })), 42);
    assert.equal(exitCodeForError({ exitCode: 127 }), 127);
  });

  test("a carried status outside 1..255 does not leak out as success or overflow", () => {
    assert.equal(exitCodeForError(Object.assign(new Error("x"), { exitCode: 0 })), 125);
    assert.equal(exitCodeForError(Object.assign(new Error("x"), { exitCode: 256 })), 125);
    assert.equal(exitCodeForError(Object.assign(new Error("x"), { exitCode: "127" })), 125);
  });
});

describe("errorLine", () => {
  test("joins the message and every cause", () => {
    const err = new Error("failed to start", { cause: new Error("mount /proc", { cause: "EPERM" }) });
    assert.equal(errorLine(err), "failed to start: mount /proc: EPERM");
  });

  test("stops on a cause cycle", () => {
    const a = new Error("a");
    const b = new Error("b", { cause: a });
    a.cause = b;
    assert.equal(errorLine(a).split(": ").length, 8);
  });
});
