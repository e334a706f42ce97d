/**
 * corerun-exe (native/exe.c), compiled here with the native helper and run as a program (no
 * root): its search of PATH, which `corerun exec` and startContainer hooks rely on, and the go
 * line it waits for.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { linuxSyscall } from "./linux.ts";
import { runContainerProgram } from "./spawn.ts";
import { compileNativeHelper } from "./testing.ts";

const dir = mkdtempSync(join(tmpdir(), "corerun-exe-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let compiled = true;
before(() => {
  compiled = compileNativeHelper(dir);
});

/** corerun-exe - - 0 GO FILE ARG0 ARGS..., with env as its whole environment and input on stdin. */
function stub(file: string, args: string[], env: string[], opts: { go?: boolean; input?: string } = {}) {
  const r = spawnSync(join(dir, "corerun-exe"), ["-", "-", "0", opts.go ? "0" : "-", file, file, ...args], {
    env: Object.fromEntries(env.map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)])),
    input: opts.input ?? "",
    encoding: "utf8",
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A directory of PATH holding one executable file. */
function pathDir(name: string, file: string, text: string): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, file), text);
  chmodSync(join(d, file), 0o755);
  return d;
}

describe("corerun-exe", () => {
  test("an empty PATH entry is skipped, not taken as /", (t) => {
    if (!compiled) return t.skip("no C compiler");
    // /bin exists and cannot be executed: taking "" as "/" would make this EACCES (126).
    const r = stub("bin", [], ["PATH=::"]);
    assert.equal(r.code, 127, r.stderr);
    assert.match(r.stderr, /^corerun-exe: execve bin: ENOENT\n$/);
  });

  test("the search stops at a file that is there but cannot run, as execvp does", (t) => {
    if (!compiled) return t.skip("no C compiler");
    const a = pathDir("noexec", "prog", "echo not a script\n");
    const b = pathDir("script", "prog", "#!/bin/sh\necho the second\n");
    const r = stub("prog", [], [`PATH=${a}:${b}`]);
    assert.equal(r.code, 126, r.stderr);
    assert.match(r.stderr, /ENOEXEC/);
    assert.equal(stub("prog", [], [`PATH=/nonexistent:${b}`]).stdout, "the second\n");
  });

  test("the first PATH of the environment is the one searched; an empty name is not found", (t) => {
    if (!compiled) return t.skip("no C compiler");
    const a = pathDir("first", "which", "#!/bin/sh\nexit 3\n");
    const b = pathDir("second", "which", "#!/bin/sh\nexit 4\n");
    // An environment with PATH twice: the native spawn passes the list as it is.
    assert.equal(runContainerProgram(linuxSyscall, "which", ["which"], [`PATH=${a}`, `PATH=${b}`], "").exitCode, 3);
    assert.equal(stub("", [], [`PATH=${a}`]).code, 127);
  });

  test("a program with more arguments than the spawn's own stack would hold gets them all", (t) => {
    if (!compiled) return t.skip("no C compiler");
    // corerun-exe's argv is built on the stack of the child, which shares the caller's memory.
    const many = Array.from({ length: 50_000 }, (_, i) => String(i));
    assert.equal(runContainerProgram(linuxSyscall, "/bin/sh", ["sh", "-c", '[ $# -eq 50000 ] && [ "$1" = 0 ] && [ "${50000}" = 49999 ] && exit 7', "sh", ...many], [], "").exitCode, 7);
  });

  test("with GO_FD it runs the program once a whole go line comes, and refuses anything else", (t) => {
    if (!compiled) return t.skip("no C compiler");
    const env = ["PATH=/usr/bin:/bin"];
    assert.equal(stub("echo", ["ran"], env, { go: true, input: '{"t":"go"}\n' }).stdout, "ran\n");
    assert.equal(stub("echo", ["ran"], env, { go: true, input: '{"t":"go","state":{"id":"x"}}\n' }).stdout, "ran\n");
    for (const input of ['{"t":"go"JUNK\n', '{"t":"go"}', '{"t":"gone"}\n']) {
      const r = stub("echo", ["ran"], env, { go: true, input });
      assert.equal(r.code, 125, input);
      assert.equal(r.stdout, "", input);
      assert.match(r.stderr, /expected \{"t":"go"\} from start/, input);
    }
    const closed = stub("echo", ["ran"], env, { go: true, input: "" });
    assert.equal(closed.code, 125);
    assert.match(closed.stderr, /no start came/);
  });
});
