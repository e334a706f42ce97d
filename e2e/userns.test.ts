/**
 * User namespaces with a mapped root, for real: container root is an unprivileged uid on the
 * host, the rootfs is idmapped so that it still looks (and is written) as root's, and volumes are
 * idmapped only when asked.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { busyboxRootfs, isRoot, leftoverState, removeStateRoot, REPO, stateRoot, tool } from "./helpers.ts";

let rootfs = "";
let root = "";

function corerun(args: string[]) {
  const r = tool("corerun", ["--root", root, "--rootfs", rootfs, "--network", "none", ...args]);
  assert.deepEqual(leftoverState(root), []);
  return r;
}

async function background(args: string[]) {
  const child = spawn(join(REPO, "bin/corerun"), ["--root", root, "--rootfs", rootfs, "--network", "none", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  await new Promise((resolve) => child.stdout.once("data", resolve));
  return { child, output: () => out };
}

function states(): { id: string; init: { pid: number }; config: { name?: string } }[] {
  return JSON.parse(tool("corerun", ["ps", "--root", root, "--json"]).stdout);
}

describe("user namespaces (mapped root)", { skip: !isRoot && "needs root" }, () => {
  let scratch = "";
  before(() => {
    rootfs = busyboxRootfs();
    root = stateRoot();
    scratch = mkdtempSync(join(tmpdir(), "corerun-userns-"));
    chmodSync(scratch, 0o755);
  });
  after(() => {
    try {
      assert.deepEqual(leftoverState(root), []);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
      removeStateRoot(root);
    }
  });

  test("inside, id -u is 0 and uid_map shows the map; the host sees the mapped uid", async () => {
    const { child, output } = await background(["--uidmap", "0:100000:65536", "--name", "mapped", "/bin/sh", "-c", "id -u; cat /proc/self/uid_map /proc/self/gid_map; sleep 30"]);
    await new Promise((r) => setTimeout(r, 200));
    const [state] = states();
    const status = readFileSync(`/proc/${state!.init.pid}/status`, "utf8");
    assert.match(status, /^Uid:\t100000\t100000\t100000\t100000$/m);
    assert.match(status, /^Gid:\t100000\t100000\t100000\t100000$/m);
    tool("corerun", ["kill", "--root", root, "mapped"]);
    await new Promise((resolve) => child.once("exit", resolve));
    const lines = output().trim().split("\n").map((l) => l.trim().split(/\s+/).join(" "));
    assert.deepEqual(lines, ["0", "0 100000 65536", "0 100000 65536"]);
  });

  test("the rootfs is idmapped: root's files look like container root's, and its writes land as host root's", (t) => {
    const name = `userns-${process.pid}`;
    t.after(() => rmSync(join(rootfs, "tmp", name), { force: true }));
    const r = corerun(["--uidmap", "0:100000:65536", "/bin/sh", "-c", `stat -c '%u:%g' /bin/busybox; echo written > /tmp/${name}; stat -c '%u:%g' /tmp/${name}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "0:0\n0:0\n");
    const st = statSync(join(rootfs, "tmp", name));
    assert.equal(`${st.uid}:${st.gid}`, "0:0");
  });

  test("a volume that is not idmapped keeps host root's files out of container root's reach; an idmapped one does not", () => {
    writeFileSync(join(scratch, "owned-by-host-root"), "host\n");
    const r = corerun(["--uidmap", "0:100000:65536", "-v", `${scratch}:/plain`, "-v", `${scratch}:/mapped:idmap`, "/bin/sh", "-c",
      "stat -c '%u' /plain/owned-by-host-root /mapped/owned-by-host-root; echo x >> /plain/owned-by-host-root && echo wrote-plain; echo y >> /mapped/owned-by-host-root && echo wrote-mapped; touch /mapped/new"]);
    assert.equal(r.stdout, "65534\n0\nwrote-mapped\n");
    assert.match(r.stderr, /Permission denied/);
    assert.equal(readFileSync(join(scratch, "owned-by-host-root"), "utf8"), "host\ny\n");
    assert.equal(statSync(join(scratch, "new")).uid, 0);
  });

  test("--userns auto gives two concurrent containers ranges that do not overlap", async () => {
    const a = await background(["--userns", "auto", "--name", "auto-a", "/bin/sh", "-c", "cat /proc/self/uid_map; sleep 30"]);
    const b = await background(["--userns", "auto", "--name", "auto-b", "/bin/sh", "-c", "cat /proc/self/uid_map; sleep 30"]);
    tool("corerun", ["kill", "--root", root, "auto-a", "auto-b"]);
    await Promise.all([a, b].map(({ child }) => new Promise((resolve) => child.once("exit", resolve))));
    const range = (out: string) => out.trim().split(/\s+/).map(Number) as [number, number, number];
    const [ra, rb] = [range(a.output()), range(b.output())];
    assert.equal(ra[0], 0);
    assert.equal(ra[2], 65536);
    assert.ok(ra[1] + ra[2] <= rb[1] || rb[1] + rb[2] <= ra[1], `ranges overlap: ${ra} and ${rb}`);
  });

  test("a user-namespace container keeps everything else: PID 1, hostname, its own network, limits", () => {
    const r = tool("corerun", ["--root", root, "--rootfs", rootfs, "--userns", "auto", "--hostname", "mapped", "--memory", "64", "/bin/sh", "-c", "echo $$; hostname; ip -4 -o addr show eth0 | wc -l; cat /proc/self/cgroup | head -1"]);
    assert.equal(r.code, 0, r.stderr);
    const [pid, host, addrs, cgroup] = r.stdout.trim().split("\n");
    assert.deepEqual([pid, host, addrs], ["1", "mapped", "1"]);
    assert.match(cgroup!, /:\/$/);
    assert.equal(existsSync(join(root, "runtime")), true, "corerun-exec runs from its world-readable copy");
  });
});
