/**
 * The run code cache: the first start from a build leaves NAME.bundle.run-cache beside each
 * bundle it ran (corerun, corerun-mount, corerun-exec), and the starts after it compile with
 * those, as their traces' "load bundle" spans say. Run on a copy of bin/ and dist/, so that the
 * checkout's own caches are not touched.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";
import { busyboxRootfs, isRoot, leftoverState, REPO, removeStateRoot, run, stateRoot } from "./helpers.ts";

let rootfs = "";
let root = "";
let copy = "";

const RUN_CACHES = ["corerun-exec.bundle.run-cache", "corerun-mount.bundle.run-cache", "corerun.bundle.run-cache"];
const runCaches = () => readdirSync(join(copy, "dist")).filter((f) => f.includes(".run-cache")).sort();

describe("the run code cache", { skip: !isRoot && "needs root" }, () => {
  before(() => {
    rootfs = busyboxRootfs();
    root = stateRoot();
    copy = mkdtempSync(join(tmpdir(), "corerun-codecache-e2e-"));
    cpSync(join(REPO, "bin"), join(copy, "bin"), { recursive: true });
    cpSync(join(REPO, "dist"), join(copy, "dist"), { recursive: true, filter: (src) => !src.includes(".run-cache") });
    // koffi's addon is found relative to dist/, in the checkout's node_modules.
    symlinkSync(join(REPO, "node_modules"), join(copy, "node_modules"));
  });
  after(() => {
    try {
      assert.deepEqual(leftoverState(root), []);
    } finally {
      removeStateRoot(root);
      if (copy.startsWith(tmpdir() + sep) && copy.includes("corerun-codecache-e2e-")) rmSync(copy, { recursive: true, force: true });
    }
  });

  test("the first start leaves a run cache beside each bundle it ran; the next start is compiled with them", () => {
    assert.deepEqual(runCaches(), []);
    const first = run(join(copy, "bin/corerun"), ["run", "--root", root, "--rootfs", rootfs, "--network", "none", "/bin/sh", "-c", "ls /proc/self/fd"]);
    assert.equal(first.code, 0, first.stderr);
    // The container's own fds only: the directory fd its loader opened to save through did not reach it.
    assert.deepEqual(first.stdout.trim().split("\n").sort(), ["0", "1", "2", "3"]);
    assert.deepEqual(runCaches(), RUN_CACHES, "one file each, no temporary file left");
    for (const f of RUN_CACHES) assert.ok(statSync(join(copy, "dist", f)).size > 0, `${f} is not empty`);

    const trace = join(copy, "trace.json");
    const second = run(join(copy, "bin/corerun"), ["run", "--root", root, "--rootfs", rootfs, "--network", "none", "--trace", trace, "/bin/true"]);
    assert.equal(second.code, 0, second.stderr);
    const events = (JSON.parse(readFileSync(trace, "utf8")) as { traceEvents: { name: string; ph: string; pid: number; args?: Record<string, unknown> }[] }).traceEvents;
    const tracks = new Map(events.filter((e) => e.ph === "M" && e.name === "process_name").map((e) => [e.pid, String(e.args?.name)]));
    const used = Object.fromEntries(events.filter((e) => e.name === "load bundle").map((e) => [tracks.get(e.pid), e.args?.cache]));
    assert.deepEqual(used, { corerun: "run", "corerun-mount": "run", "corerun-exec": "run" });
    assert.deepEqual(runCaches(), RUN_CACHES, "nothing is written once they exist");
  });

  test("npm run build's loaders fall back to the build's cache when a run cache is not V8's (another bundle, another Node)", () => {
    const cache = join(copy, "dist", "corerun.bundle.run-cache");
    cpSync(join(copy, "dist", "corerun-exec.bundle.run-cache"), cache);
    const trace = join(copy, "trace2.json");
    const r = run(join(copy, "bin/corerun"), ["run", "--root", root, "--rootfs", rootfs, "--network", "none", "--trace", trace, "/bin/true"]);
    assert.equal(r.code, 0, r.stderr);
    const events = (JSON.parse(readFileSync(trace, "utf8")) as { traceEvents: { name: string; args?: Record<string, unknown> }[] }).traceEvents;
    assert.equal(events.find((e) => e.name === "load bundle" && e.args?.script === "corerun.cjs")?.args?.cache, "build");
    // That start replaced the refused cache with its own.
    assert.ok(existsSync(cache));
    assert.ok(!readFileSync(cache).equals(readFileSync(join(copy, "dist", "corerun-exec.bundle.run-cache"))));
  });
});
