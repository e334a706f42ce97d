/**
 * The run code cache: the first start from a build leaves NAME.bundle.run-cache.KIND beside each
 * bundle it ran (corerun's run, corerun-mount's mount, corerun-exec's exec), and the starts after
 * it compile with those, as their traces' "load bundle" spans say; another kind of command
 * (corerun create, start, delete; corerun-exec --oci) leaves and uses a file of its own. Run on a copy of bin/ and dist/, so that the
 * checkout's own caches are not touched.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";
import { busyboxRootfs, isRoot, leftoverState, REPO, removeStateRoot, run, stateRoot } from "./helpers.ts";

let rootfs = "";
let root = "";
let copy = "";

const RUN_CACHES = ["corerun-exec.bundle.run-cache.exec", "corerun-mount.bundle.run-cache.mount", "corerun.bundle.run-cache.run"];
const runCaches = () => readdirSync(join(copy, "dist")).filter((f) => /\.run-cache\.[a-z]+$/.test(f)).sort();
/** A run cache's first line: "corerun-code-cache BUILD LENGTH KIND". */
const head = (file: string) => {
  const data = readFileSync(join(copy, "dist", file));
  return data.subarray(0, data.indexOf(10)).toString("latin1").split(" ");
};

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
    assert.deepEqual(runCaches(), RUN_CACHES, "one each");
    assert.deepEqual(readdirSync(join(copy, "dist")).filter((f) => /\.run-cache\.[a-z]+\./.test(f)), [], "no temporary file left");
    for (const f of RUN_CACHES) assert.ok(statSync(join(copy, "dist", f)).size > 0, `${f} is not empty`);
    assert.deepEqual(RUN_CACHES.map((f) => head(f).at(-1)), ["exec", "mount", "run"]);
    // The build it was made from: the loader's, which names the sha256 of the bundle.
    assert.match(readFileSync(join(copy, "dist", "corerun.cjs"), "utf8"), new RegExp(`"base":"corerun.bundle","encoding":"[a-z0-9]+","build":"${head("corerun.bundle.run-cache.run")[1]}"`));

    const trace = join(copy, "trace.json");
    const second = run(join(copy, "bin/corerun"), ["run", "--root", root, "--rootfs", rootfs, "--network", "none", "--trace", trace, "/bin/true"]);
    assert.equal(second.code, 0, second.stderr);
    const events = (JSON.parse(readFileSync(trace, "utf8")) as { traceEvents: { name: string; ph: string; pid: number; args?: Record<string, unknown> }[] }).traceEvents;
    const tracks = new Map(events.filter((e) => e.ph === "M" && e.name === "process_name").map((e) => [e.pid, String(e.args?.name)]));
    const used = Object.fromEntries(events.filter((e) => e.name === "load bundle").map((e) => [tracks.get(e.pid), e.args?.cache]));
    assert.deepEqual(used, { corerun: "run", "corerun-mount": "run", "corerun-exec": "run" });
    assert.deepEqual(runCaches(), RUN_CACHES, "nothing is written for a kind that has its cache");
  });

  test("in a user namespace, corerun-exec runs from its copy under the state root, run cache included", () => {
    // The trace's parts directory must be reachable by the container's root (a host uid of the map).
    const dir = mkdtempSync(join(tmpdir(), "corerun-codecache-userns-"));
    try {
      chmodSync(dir, 0o755);
      const trace = join(dir, "trace.json");
      const r = run(join(copy, "bin/corerun"), ["run", "--root", root, "--rootfs", rootfs, "--network", "none", "--uidmap", "0:300000:65536", "--gidmap", "0:300000:65536", "--trace", trace, "/bin/true"]);
      assert.equal(r.code, 0, r.stderr);
      const events = (JSON.parse(readFileSync(trace, "utf8")) as { traceEvents: { name: string; ph: string; pid: number; args?: Record<string, unknown> }[] }).traceEvents;
      const tracks = new Map(events.filter((e) => e.ph === "M" && e.name === "process_name").map((e) => [e.pid, String(e.args?.name)]));
      const exec = events.find((e) => e.name === "load bundle" && tracks.get(e.pid) === "corerun-exec");
      assert.equal(exec?.args?.cache, "run", JSON.stringify(exec));
    } finally {
      if (dir.startsWith(tmpdir() + sep) && dir.includes("corerun-codecache-userns-")) rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a command of another kind leaves a cache of its own, once, and compiles with it after: an OCI create, start and delete after run, create in a bundle of its own, start and delete in the engine's, the first process's of kind oci; ps leaves nothing", () => {
    const bundle = mkdtempSync(join(copy, "bundle-"));
    const parent = `corerun-e2e-codecache-${process.pid}`;
    writeFileSync(join(bundle, "config.json"), JSON.stringify({
      ociVersion: "1.0.2",
      process: { terminal: false, user: { uid: 0, gid: 0 }, args: ["/bin/true"], env: ["PATH=/bin"], cwd: "/" },
      root: { path: rootfs, readonly: false },
      // /dev on a tmpfs of its own, as engines give it: the devices' mount points are made in it, not in the shared rootfs.
      mounts: [
        { destination: "/proc", type: "proc", source: "proc" },
        { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
      ],
      linux: { namespaces: [{ type: "pid" }, { type: "mount" }, { type: "ipc" }, { type: "uts" }, { type: "network" }], cgroupsPath: `/${parent}/cc` },
    }));
    const corerun = (args: string[]) => run(join(copy, "bin/corerun"), ["--root", root, ...args]);
    try {
      const ours = () => runCaches().filter((f) => f.startsWith("corerun."));
      assert.equal(corerun(["ps"]).code, 0);
      assert.deepEqual(ours(), ["corerun.bundle.run-cache.run"], "ps is not a kind with a cache");
      const c = corerun(["create", "--bundle", bundle, "cc"]);
      assert.equal(c.code, 0, c.stderr);
      // An OCI create runs in a bundle of its own (bin/src/corerun/engine-create.ts).
      assert.deepEqual(ours(), ["corerun.bundle.run-cache.run", "corerun.engine-create.bundle.run-cache.create"]);
      assert.equal(head("corerun.engine-create.bundle.run-cache.create")[3], "create");
      // The first process (corerun-exec --oci) keeps a cache of its own kind, next to a run's.
      const s = corerun(["start", "cc"]);
      assert.equal(s.code, 0, s.stderr);
      for (let i = 0; i < 100 && !existsSync(join(copy, "dist", "corerun-exec.bundle.run-cache.oci")); i++) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
      assert.deepEqual(runCaches().filter((f) => f.startsWith("corerun-exec.")), ["corerun-exec.bundle.run-cache.exec", "corerun-exec.bundle.run-cache.oci"]);
      assert.equal(head("corerun-exec.bundle.run-cache.oci")[3], "oci");
      const d = corerun(["delete", "--force", "cc"]);
      assert.equal(d.code, 0, d.stderr);
      // An OCI container's start and delete are commands of the engine's bundle (bin/src/corerun/engine.ts).
      assert.deepEqual(ours(), ["corerun.bundle.run-cache.run", "corerun.engine-create.bundle.run-cache.create", "corerun.engine.bundle.run-cache.delete", "corerun.engine.bundle.run-cache.start"]);
      const kept = readFileSync(join(copy, "dist", "corerun.engine.bundle.run-cache.delete"));
      const trace = join(copy, "trace-delete.json");
      const again = run(join(copy, "bin/corerun"), ["--root", root, "delete", "--force", "cc"], { env: { ...process.env, CORERUN_TRACE: trace } });
      assert.equal(again.code, 0, again.stderr);
      assert.ok(readFileSync(join(copy, "dist", "corerun.engine.bundle.run-cache.delete")).equals(kept), "a delete compiled with delete's cache writes nothing");
      const events = (JSON.parse(readFileSync(trace, "utf8")) as { traceEvents: { name: string; args?: Record<string, unknown> }[] }).traceEvents;
      assert.deepEqual(events.find((e) => e.name === "load bundle")?.args, { script: "corerun.cjs", bundle: "corerun.engine.bundle", cache: "run" });
    } finally {
      corerun(["delete", "--force", "cc"]);
      for (const h of readdirSync("/sys/fs/cgroup")) {
        const p = join("/sys/fs/cgroup", h, parent);
        if (existsSync(p)) rmdirSync(p);
      }
    }
  });

  for (const [what, spoil] of [
    ["of another build", (file: Buffer) => Buffer.from(file.toString("latin1").replace(/^corerun-code-cache [0-9a-f]+/, "corerun-code-cache 0000000000000000"), "latin1")],
    ["cut short", (file: Buffer) => file.subarray(0, file.length - 1000)],
    ["of another kind", (file: Buffer) => Buffer.concat([Buffer.from(file.subarray(0, file.indexOf(10)).toString("latin1").replace(/ run$/, " state"), "latin1"), file.subarray(file.indexOf(10))])],
  ] as const) {
    test(`a run cache ${what} is not used: the build's cache is, and the start replaces it with its own`, () => {
      const cache = join(copy, "dist", "corerun.bundle.run-cache.run");
      const spoilt = spoil(readFileSync(cache));
      writeFileSync(cache, spoilt);
      const trace = join(copy, `trace-${what.replaceAll(" ", "-")}.json`);
      const r = run(join(copy, "bin/corerun"), ["run", "--root", root, "--rootfs", rootfs, "--network", "none", "--trace", trace, "/bin/true"]);
      assert.equal(r.code, 0, r.stderr);
      const events = (JSON.parse(readFileSync(trace, "utf8")) as { traceEvents: { name: string; args?: Record<string, unknown> }[] }).traceEvents;
      assert.equal(events.find((e) => e.name === "load bundle" && e.args?.script === "corerun.cjs")?.args?.cache, "build");
      assert.ok(!readFileSync(cache).equals(spoilt), "replaced");
      assert.equal(head("corerun.bundle.run-cache.run")[3], "run");
    });
  }
});
