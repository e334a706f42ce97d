import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";
import { after, before, describe, test } from "node:test";
import { CommandError } from "@corerun/cli";
import { DEFAULT_PATH, findCommand } from "./command.ts";

let base: string;
let root: string;

function file(path: string, mode: number): void {
  mkdirSync(join(root, path, ".."), { recursive: true });
  writeFileSync(join(root, path), "#!/bin/sh\n");
  chmodSync(join(root, path), mode);
}

/** Asserts that `fn` throws a CommandError with that exit code and a message matching `message`. */
function throwsCommand(fn: () => unknown, exitCode: number, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CommandError, String(e));
    assert.equal(e.exitCode, exitCode);
    assert.match(e.message, message);
    return true;
  });
}

// A busybox-style tree: applets are relative or absolute links to one binary.
before(() => {
  base = mkdtempSync(join(tmpdir(), "corerun-command-test-"));
  root = join(base, "rootfs");
  file("bin/busybox", 0o755);
  symlinkSync("busybox", join(root, "bin/sh"));
  mkdirSync(join(root, "usr/bin"), { recursive: true });
  symlinkSync("../../bin/busybox", join(root, "usr/bin/env"));
  symlinkSync("/bin/busybox", join(root, "usr/bin/awk"));
  file("bin/not-executable", 0o644);
  file("opt/tools/tool", 0o755);
  file("usr/local/bin/first", 0o755);
  file("bin/first", 0o755);
  mkdirSync(join(root, "usr/bin/adir"));
  symlinkSync("/nowhere", join(root, "usr/bin/dangling"));
  // A link that points at a host binary by a host-looking path must not find the host's copy.
  symlinkSync("/usr/bin/node-on-host", join(root, "bin/hostlink"));
});

after(() => {
  if (base.startsWith(tmpdir() + sep) && base.includes("corerun-command-test-")) rmSync(base, { recursive: true, force: true });
});

describe("findCommand", () => {
  test("finds a command through PATH, following relative links", () => {
    assert.equal(findCommand(root, "sh"), "/bin/sh");
    assert.equal(findCommand(root, "env"), "/usr/bin/env");
  });

  test("an absolute link target resolves inside the rootfs", () => {
    assert.equal(findCommand(root, "awk"), "/usr/bin/awk");
  });

  test("takes the first match in PATH order", () => {
    assert.equal(findCommand(root, "first"), "/usr/local/bin/first");
    assert.equal(findCommand(root, "first", "/bin:/usr/local/bin"), "/bin/first");
  });

  test("uses the PATH it is given, skipping empty entries", () => {
    assert.equal(findCommand(root, "tool", "::/opt/tools"), "/opt/tools/tool");
    throwsCommand(() => findCommand(root, "tool"), 127, new RegExp(`not found in PATH ${DEFAULT_PATH.replaceAll("/", "\\/")}`));
  });

  test("a path with a slash is taken as is, not searched", () => {
    assert.equal(findCommand(root, "/opt/tools/tool", "/bin"), "/opt/tools/tool");
    assert.equal(findCommand(root, "/bin/sh", ""), "/bin/sh");
  });

  test("a missing command is 127 and names the rootfs", () => {
    throwsCommand(() => findCommand(root, "nope"), 127, new RegExp(`^nope: not found in PATH .* in the root filesystem ${root}$`));
    throwsCommand(() => findCommand(root, "/bin/nope"), 127, /^\/bin\/nope: no such file in the root filesystem /);
    throwsCommand(() => findCommand(root, "dangling"), 127, /not found/);
  });

  test("a host binary is not found in a rootfs that lacks it", () => {
    assert.ok(existsSync(process.execPath));
    throwsCommand(() => findCommand(root, process.execPath), 127, /no such file/);
    throwsCommand(() => findCommand(root, "hostlink", "/bin"), 127, /not found/);
  });

  test("a file without execute bits is 126 and says so", () => {
    throwsCommand(() => findCommand(root, "not-executable"), 126, /^not-executable: \/bin\/not-executable in the root filesystem .* is not an executable file$/);
    throwsCommand(() => findCommand(root, "/bin/not-executable"), 126, /is not an executable file/);
  });

  test("a directory is not a command", () => {
    throwsCommand(() => findCommand(root, "adir"), 126, /\/usr\/bin\/adir .* is not an executable file/);
  });

  test("an executable later in PATH wins over a non-executable earlier one", () => {
    file("early/sh", 0o644);
    assert.equal(findCommand(root, "sh", "/early:/bin"), "/bin/sh");
  });

  test('with root "/" it searches the running system', { skip: !existsSync("/bin/sh") && "no /bin/sh on this host" }, () => {
    assert.equal(findCommand("/", "sh", "/nonexistent:/bin"), "/bin/sh");
    throwsCommand(() => findCommand("/", "corerun-no-such-command", "/bin"), 127, /in the container$/);
  });
});
