import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";
import { after, describe, test } from "node:test";
import { COMMON_ARGS, splitArgv, UsageError } from "@corerun/cli";
import { runArgs } from "./args.ts";
import { parseSecurity, securityExecArgs, securityMountArgs } from "./security.ts";

const base = mkdtempSync(join(tmpdir(), "corerun-security-test-"));
after(() => {
  if (base.startsWith(tmpdir() + sep) && base.includes("corerun-security-test-")) rmSync(base, { recursive: true, force: true });
});

let n = 0;
function parse(argv: string[]) {
  const root = join(base, `root${n++}`);
  const ctx = splitArgv([...argv, "sh"], { ...runArgs, ...COMMON_ARGS }, { tail: "command" });
  return { root, security: parseSecurity(ctx, root) };
}

function usageError(argv: string[], message: RegExp): void {
  assert.throws(() => parse(argv), (e: unknown) => {
    assert.ok(e instanceof UsageError, String(e));
    assert.match(e.message, message);
    return true;
  });
}

describe("parseSecurity", () => {
  test("by default: the default profile, compiled but not stored until corerun-exec's arguments are made", () => {
    const { root, security } = parse([]);
    assert.equal(security.privileged, false);
    assert.equal(security.noNewPrivs, false);
    assert.ok(security.seccomp?.program.compiled);
    assert.equal(existsSync(join(root, "runtime", "seccomp")), false);
    const args = securityExecArgs(security);
    assert.deepEqual(args, ["--seccomp", security.seccomp.program.path]);
    assert.deepEqual(readFileSync(security.seccomp.program.path), security.seccomp.program.compiled);
    assert.deepEqual(securityMountArgs(security), []);
  });

  test("the profile follows the capabilities: --cap-add SYS_ADMIN compiles another program", () => {
    const plain = parse([]).security.seccomp!.program.path;
    const admin = parse(["--cap-add", "SYS_ADMIN"]).security.seccomp!.program.path;
    assert.notEqual(admin.split("/").at(-1), plain.split("/").at(-1));
  });

  test("no-new-privileges in Docker's spellings; seccomp=unconfined and seccomp:unconfined", () => {
    assert.equal(parse(["--security-opt", "no-new-privileges"]).security.noNewPrivs, true);
    assert.equal(parse(["--security-opt", "no-new-privileges=true"]).security.noNewPrivs, true);
    assert.equal(parse(["--security-opt", "no-new-privileges:true"]).security.noNewPrivs, true);
    assert.equal(parse(["--security-opt", "no-new-privileges", "--security-opt", "no-new-privileges=false"]).security.noNewPrivs, false);
    assert.equal(parse(["--security-opt", "seccomp=unconfined"]).security.seccomp, undefined);
    assert.equal(parse(["--security-opt", "seccomp:unconfined"]).security.seccomp, undefined);
    assert.deepEqual(securityExecArgs(parse(["--security-opt", "no-new-privileges", "--security-opt", "seccomp=unconfined"]).security), ["--no-new-privs"]);
  });

  test("--privileged: no filter unless a profile is named, unmasked, the host's devices", () => {
    const { security } = parse(["--privileged"]);
    assert.equal(security.seccomp, undefined);
    assert.deepEqual(securityExecArgs(security), ["--unmasked"]);
    assert.deepEqual(securityMountArgs(security), ["--unmasked", "--host-devices"]);
    const profile = join(base, "flags.json");
    writeFileSync(profile, JSON.stringify({ defaultAction: "SCMP_ACT_ALLOW", flags: ["SECCOMP_FILTER_FLAG_LOG"], syscalls: [{ names: ["mkdir"], action: "SCMP_ACT_ERRNO" }] }));
    const named = parse(["--privileged", "--security-opt", `seccomp=${profile}`]).security;
    assert.deepEqual(securityExecArgs(named).filter((a) => !a.endsWith(".bpf")), ["--unmasked", "--seccomp", "--seccomp-flag", "SECCOMP_FILTER_FLAG_LOG"]);
  });

  test("bad options and profiles are refused with one line naming them", () => {
    usageError(["--security-opt", "apparmor=unconfined"], /^--security-opt apparmor=unconfined: not supported; corerun takes seccomp=unconfined\|PROFILE\.json and no-new-privileges\[=true\|false\]$/);
    usageError(["--security-opt", "no-new-privileges=maybe"], /^--security-opt no-new-privileges=maybe: use no-new-privileges/);
    usageError(["--security-opt", "seccomp="], /give seccomp=unconfined or seccomp=PROFILE\.json/);
    usageError(["--security-opt", `seccomp=${join(base, "missing.json")}`], /missing\.json: cannot be read \(ENOENT\)/);
    const bad = join(base, "bad.json");
    writeFileSync(bad, '{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdri"],"action":"SCMP_ACT_ERRNO"}]}');
    usageError(["--security-opt", `seccomp=${bad}`], new RegExp(`^${bad}: syscalls\\[0\\] \\(mkdri\\): unknown syscall "mkdri"`));
  });
});
