/**
 * The built-in modules that the build loads on first use (tools/lazy-modules.json: node:crypto,
 * node:child_process, ...) cost ~2-5 ms each to load, in the process that first uses one. No
 * container start or teardown loads one, in any process: a `--require` hook in NODE_OPTIONS,
 * which every Node process of the start inherits, logs each require of one to a file.
 *
 * The bridge cases use the default state root: another root's table and network are named by a
 * sha256 of its path (see netPaths), which loads node:crypto by design. The default network is
 * removed afterwards when this file made it, and the network of its own always.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { netPaths, readRecords } from "@corerun/net";
import { DEFAULT_ROOT } from "@corerun/state";
import { busyboxRootfs, isRoot, leftoverState, removeStateRoot, REPO, run, stateRoot, tool } from "./helpers.ts";

/** A network this file makes in the default root, and removes. */
const NETWORK = "crlazy0";

let rootfs = "";
let root = "";
let dir = "";
let log = "";
let env: NodeJS.ProcessEnv = {};
let hadDefaultNetwork = false;

function defaultNetworkExists(): boolean {
  const paths = netPaths(DEFAULT_ROOT);
  return readRecords(paths.records).networks.some((n) => n.name === paths.defaultNetwork);
}

describe("no start or teardown loads a module the build loads on first use", { skip: !isRoot && "needs root" }, () => {
  before(() => {
    rootfs = busyboxRootfs();
    root = stateRoot();
    hadDefaultNetwork = defaultNetworkExists();
    // Readable, and the log writable, by a user namespace's mapped root (corerun-exec runs as it).
    dir = mkdtempSync(join(tmpdir(), "corerun-e2e-lazy-"));
    chmodSync(dir, 0o755);
    log = join(dir, "loads");
    writeFileSync(log, "");
    chmodSync(log, 0o666);
    const hook = join(dir, "hook.cjs");
    const pattern = (JSON.parse(readFileSync(join(REPO, "tools/lazy-modules.json"), "utf8")) as { pattern: string }).pattern;
    writeFileSync(hook, `const Module = require("node:module");
const { appendFileSync } = require("node:fs");
const lazy = new RegExp(${JSON.stringify(pattern)});
const require_ = Module.prototype.require;
Module.prototype.require = function (id) {
  if (lazy.test(id)) appendFileSync(${JSON.stringify(log)}, require("node:path").basename(process.argv[1] ?? "node") + " " + id + "\\n");
  return require_.apply(this, arguments);
};
`);
    chmodSync(hook, 0o644);
    env = { ...process.env, NODE_OPTIONS: `--require ${hook}` };
  });

  after(() => {
    try {
      run(join(REPO, "bin/corerun-net"), ["rm", NETWORK]);
      if (!hadDefaultNetwork && defaultNetworkExists()) run(join(REPO, "bin/corerun-net"), ["rm", netPaths(DEFAULT_ROOT).defaultNetwork]);
    } finally {
      removeStateRoot(root);
      if (dir.startsWith(join(tmpdir(), "corerun-e2e-lazy-"))) rmSync(dir, { recursive: true, force: true });
    }
  });

  const cases: [string, () => string[]][] = [
    ["--network none", () => ["--root", root, "--network", "none"]],
    ["limits", () => ["--root", root, "--network", "none", "--memory", "64", "--pids", "50", "--cpu", "50"]],
    ["--userns auto", () => ["--root", root, "--network", "none", "--userns", "auto"]],
    ["a bridge (the default root)", () => ["--network", "bridge"]],
    ["a bridge with a published port (the default root)", () => ["--network", "bridge", "-P", "127.0.0.1:18097:80"]],
    // Its bridge, subnet, MAC address and nftables set made by this start.
    ["a network of its own, new (the default root)", () => ["--network", "bridge", "-N", NETWORK]],
  ];
  for (const [name, args] of cases) {
    test(`${name}: the start and the teardown load none`, () => {
      writeFileSync(log, "");
      const r = tool("corerun", ["run", "--rootfs", rootfs, ...args(), "/bin/sh", "-c", "echo ran"], { env });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "ran\n");
      assert.equal(readFileSync(log, "utf8"), "", "modules loaded on first use (process, module)");
      assert.deepEqual(leftoverState(root), []);
    });
  }

  test("the hook sees a load: --print-script makes its container id with node:crypto's randomBytes", () => {
    writeFileSync(log, "");
    const r = tool("corerun", ["run", "--root", root, "--rootfs", rootfs, "--network", "none", "--print-script", "/bin/true"], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(log, "utf8"), "corerun.cjs node:crypto\n");
  });
});
