import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { claimCreatedPaths, releaseCreatedPaths } from "./mountpoints.ts";

let root: string;
const A = "aaaaaaaaaaaa";
const B = "bbbbbbbbbbbb";
const hosts = { path: "/rootfs/etc/hosts", kind: "file" as const };
const etc = { path: "/rootfs/etc", kind: "dir" as const };

before(() => {
  root = mkdtempSync(join(tmpdir(), "corerun-mountpoints-test-"));
  for (const id of [A, B]) mkdirSync(join(root, id));
});
after(() => {
  if (root.startsWith(join(tmpdir(), "corerun-mountpoints-test-"))) rmSync(root, { recursive: true, force: true });
});

const holders = () => JSON.parse(readFileSync(join(root, "mountpoints.json"), "utf8")) as Record<string, { holders: string[] }>;

describe("the mount points registry", () => {
  test("a path made by one container and used by another is freed by the last to release it", () => {
    assert.deepEqual(claimCreatedPaths(root, A, [etc, hosts], [etc.path, hosts.path]), [etc, hosts]);
    // B makes nothing (A made both) but holds what it uses below them.
    assert.deepEqual(claimCreatedPaths(root, B, [], [hosts.path]), [etc, hosts]);
    assert.deepEqual(holders()[hosts.path]?.holders, [A, B]);
    assert.deepEqual(releaseCreatedPaths(root, A, [etc, hosts]), []);
    assert.deepEqual(releaseCreatedPaths(root, B, [etc, hosts]), [hosts, etc]);
    assert.deepEqual(holders(), {});
  });

  test("a holder whose container directory is gone holds nothing", () => {
    claimCreatedPaths(root, A, [hosts], [hosts.path]);
    rmSync(join(root, A), { recursive: true });
    const tmp = { path: "/rootfs/tmp", kind: "dir" as const };
    // B does not take over what A made (corerun cleanup removes it); A is dropped as B writes.
    assert.deepEqual(claimCreatedPaths(root, B, [tmp], [hosts.path, tmp.path]), [tmp]);
    assert.deepEqual(holders()[hosts.path]?.holders, []);
    assert.deepEqual(holders()[tmp.path]?.holders, [B]);
    assert.deepEqual(releaseCreatedPaths(root, B, [tmp]), [tmp]);
    mkdirSync(join(root, A));
  });
});
