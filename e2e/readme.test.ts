/**
 * The README's examples and its hand-composed script, run as written (minus `sudo`: the suite
 * already runs as root), so the documentation cannot drift from what the tools do.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { busyboxRootfs, isRoot, leftoverState, processesWith, removeStateRoot, REPO, run, stateRoot, tool } from "./helpers.ts";

/** The fenced block that follows `<!-- e2e:NAME -->` in README.md. */
export function readmeBlock(name: string): string {
  const text = readFileSync(join(REPO, "README.md"), "utf8");
  const match = new RegExp(`<!-- e2e:${name} -->\\n\`\`\`\\w*\\n([\\s\\S]*?)\`\`\``).exec(text);
  if (!match) throw new Error(`README.md has no block marked e2e:${name}`);
  return match[1]!;
}

let root = "";
let rootfs = "";

function bash(script: string, input?: string) {
  const env = { ...process.env, CORERUN_ROOT: root };
  return run("bash", ["-euo", "pipefail", "-c", script.replace(/\bsudo /g, "")], { cwd: REPO, env, ...(input === undefined ? {} : { input }) });
}

describe("README", { skip: !isRoot && "needs root" }, () => {
  before(() => {
    rootfs = busyboxRootfs();
    root = stateRoot();
  });
  after(() => {
    try {
      assert.deepEqual(leftoverState(root), []);
    } finally {
      removeStateRoot(root);
    }
  });

  test("the first command's demo prints demo, 1 and the rootfs's directories", () => {
    const text = readFileSync(join(REPO, "README.md"), "utf8");
    const first = /```sh\n(sudo tools\/setup\.sh && (sudo bin\/corerun [^\n]*))\n```/.exec(text);
    assert.ok(first, "the README starts with the setup-and-demo command");
    const r = bash(first[2]!);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n"), ["demo", "1", ...readdirSync(rootfs).sort()]);
  });

  test("the second command runs the checks through Nx, and CI runs exactly it", () => {
    const text = readFileSync(join(REPO, "README.md"), "utf8");
    const second = /```sh\n(sudo tools\/setup\.sh && sudo npx nx run-many -t typecheck lint test && sudo npx nx run e2e:e2e)\n```/.exec(text);
    assert.ok(second, "the README's second command runs typecheck, lint and test with nx run-many, then e2e:e2e");
    const ci = readFileSync(join(REPO, ".ci/run"), "utf8").split("\n");
    assert.ok(ci.includes(second[1]!.replaceAll("sudo ", "")), ".ci/run runs the README's command without sudo");
    // Every project has the targets the command runs, as Nx sees them: none escapes a check.
    const nx = (...args: string[]) => {
      const r = run("npx", ["nx", "show", "projects", "--json", ...args], { cwd: REPO, env: { ...process.env, NX_DAEMON: "false", NX_NO_CLOUD: "true" } });
      assert.equal(r.code, 0, r.stderr);
      return (JSON.parse(r.stdout) as string[]).sort();
    };
    const all = nx();
    assert.deepEqual(nx("--with-target", "typecheck"), all);
    assert.deepEqual(nx("--with-target", "lint"), all);
    assert.deepEqual(nx("--with-target", "e2e"), ["e2e"]);
    // A project with unit tests has a test target that runs them.
    const tested = nx("--with-target", "test");
    for (const p of all.filter((name) => name !== "e2e" && !tested.includes(name))) {
      const dir = existsSync(join(REPO, "libs", p)) ? join(REPO, "libs", p) : join(REPO, "bin/src", p);
      const tests = (readdirSync(dir, { recursive: true }) as string[]).filter((f) => f.endsWith(".test.ts"));
      assert.deepEqual(tests, [], `${p} has unit tests but no test target`);
    }
  });

  test("the corerun examples", () => {
    const r = bash(readmeBlock("examples"));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^demo\n1\n/);
    assert.match(r.stdout, /^hello$/m);
    assert.match(r.stdout, /^lo$/m);
    assert.match(r.stdout, /^hi from \/tmp$/m);
  });

  test("the network example: a published port, a peer by name, a shared network namespace", () => {
    const r = bash(readmeBlock("network"));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n"), ["hello from corerun", "hello from corerun", "hello from corerun"]);
  });

  test("the user namespace examples", () => {
    const r = bash(readmeBlock("userns"));
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n").map((l) => l.trim().split(/\s+/).join(" "));
    assert.deepEqual(lines.slice(0, 3), ["0", "0 100000 65536", "0"]);
    assert.match(lines[3]!, /^0 \d+ 65536$/);
  });

  test("the corerun-ns examples", () => {
    const r = bash(readmeBlock("corerun-ns"));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^pid 1\n lo\n/);
    assert.match(r.stdout, /^inside\n1$/m);
  });

  test("the corerun-exec example", () => {
    const r = bash(readmeBlock("corerun-exec"));
    assert.equal(r.code, 0, r.stderr);
    const [name, a, count] = r.stdout.trim().split("\n");
    assert.equal(name, "demo");
    assert.equal(a, "1");
    assert.ok(Number(count) <= 4, `the new /proc shows ${count} processes`);
  });

  test("the hand-composed script builds the same container as corerun", () => {
    const r = bash(readmeBlock("hand-script"));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n"), ["demo", "1", ...readdirSync(rootfs).sort()]);
  });

  test("--print-script prints a script that does what corerun does", () => {
    const args = ["--rootfs", rootfs, "--hostname", "printed", "-e", "X=it's", "/bin/sh", "-c", "hostname; echo $$ \"$X\""];
    const script = tool("corerun", ["--root", root, "--print-script", ...args]);
    assert.equal(script.code, 0, script.stderr);
    const direct = tool("corerun", ["--root", root, ...args]);
    const scripted = run("bash", ["-c", script.stdout]);
    assert.equal(scripted.code, 0, scripted.stderr);
    assert.equal(scripted.stdout, direct.stdout);
    assert.equal(direct.stdout, "printed\n1 it's\n");
  });

  test("after kill -9 of corerun, ps shows the container orphaned and cleanup removes it", async () => {
    const marker = `sleep 3${Math.floor(Math.random() * 1000)}`;
    const child = spawn(join(REPO, "bin/corerun"), ["--root", root, "/bin/sh", "-c", `echo started; ${marker}`], { stdio: ["ignore", "pipe", "pipe"] });
    await new Promise((resolve) => child.stdout.once("data", resolve));
    child.kill("SIGKILL");
    await new Promise((resolve) => child.once("exit", resolve));
    assert.equal(leftoverState(root).length, 1);
    assert.equal(processesWith(marker).length, 1, "the container outlives a killed corerun");
    const r = bash(readmeBlock("cleanup"));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /orphaned/);
    assert.match(r.stdout, /^[0-9a-f]{12}$/m);
    assert.deepEqual(leftoverState(root), []);
    for (let i = 0; i < 50 && processesWith(marker).length; i++) await new Promise((res) => setTimeout(res, 20));
    assert.deepEqual(processesWith(marker), []);
  });

  for (const name of ["corerun", "corerun-ns", "corerun-mount", "corerun-exec", "corerun-cgroup", "corerun-net"]) {
    test(`${name} --help`, () => {
      const r = tool(name, ["--help"]);
      assert.equal(r.code, 0);
      assert.match(r.stdout, new RegExp(`^Usage: ${name} `));
      assert.match(r.stdout, /Options:/);
    });
  }
});
