import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";
import { engineCall } from "./engine-call.ts";
import { create } from "./oci-create.ts";

const root = mkdtempSync(join(tmpdir(), "corerun-engine-call-"));
after(() => {
  if (root.startsWith(tmpdir() + sep) && root.includes("corerun-engine-call-")) rmSync(root, { recursive: true, force: true });
});

/** The command engineCall takes the line for, or undefined when it goes to the whole corerun. */
const taken = (...argv: string[]) => engineCall(argv)?.spec.name;

describe("which command lines the engine's bundle runs", () => {
  test("state, in runc's form, whatever it names: its code is the whole corerun's", () => {
    assert.equal(taken("--root", root, "state", "web"), "corerun state");
    assert.equal(taken("state", "--help"), "corerun state");
    assert.equal(taken("--root", root, "--log", join(root, "log"), "--log-format", "json", "state", "web"), "corerun state");
  });

  test("delete of an unknown id (refused, or with --force passed over, by the same code)", () => {
    assert.equal(taken("--root", root, "delete", "web"), "corerun delete");
    assert.equal(taken("--root", root, "delete", "--force", "web"), "corerun delete");
  });

  test("start only of an OCI container: an unknown one, -a, --help or two names go to the whole corerun", () => {
    assert.equal(taken("--root", root, "start", "web"), undefined);
    assert.equal(taken("--root", root, "start", "-a", "web"), undefined);
    assert.equal(taken("start", "--help"), undefined);
    assert.equal(taken("--root", root, "start", "a", "b"), undefined);
  });

  test("create's bundle takes create in runc's form, whatever it names, and nothing else", () => {
    const taken = (...argv: string[]) => engineCall(argv, { create: { spec: create } })?.spec.name;
    assert.equal(taken("--root", root, "create", "--bundle", root, "web"), "corerun create");
    assert.equal(taken("create", "--help"), "corerun create");
    assert.equal(taken("--root", root, "state", "web"), undefined);
    assert.equal(taken("--systemd-cgroup", "create", "web"), undefined);
  });

  test("anything else goes to the whole corerun: other commands, the seed form, --version, a global option runc's form refuses", () => {
    assert.equal(taken("create", "--bundle", root, "web"), undefined);
    assert.equal(taken("ps"), undefined);
    assert.equal(taken("--rootfs", root, "state"), undefined);
    assert.equal(taken("--version"), undefined);
    assert.equal(taken("--systemd-cgroup", "state", "web"), undefined);
    assert.equal(taken("--root", root, "delete", "--bogus", "web"), undefined);
  });
});
