import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cloneJoin, EARLY_JOIN_MEMORY, EARLY_JOIN_QUOTA, JOIN_SCRIPT, joinCgroupFds, joinCgroups, joinCommand, openCgroupProcs } from "./join.ts";
import { FixtureHost } from "./_fixture.ts";

const h = new FixtureHost("hybrid");
const tmp = mkdtempSync(join(tmpdir(), "corerun-cgroup-join-"));
after(() => {
  h.cleanup();
  if (tmp.startsWith(join(tmpdir(), "corerun-cgroup-join-"))) rmSync(tmp, { recursive: true, force: true });
});

describe("joinCgroups on a fixture tree", () => {
  it('writes "0" to cgroup.procs once per directory', () => {
    h.mkdir(h.at("memory/x"));
    h.mkdir(h.at("pids/x"));
    joinCgroups([h.at("memory/x"), h.at("pids/x"), h.at("memory/x")], h);
    assert.deepEqual(h.writes, [["memory/x/cgroup.procs", "0"], ["pids/x/cgroup.procs", "0"]]);
  });
  it("names the directory it could not join", () => {
    assert.throws(() => joinCgroups([h.at("memory/none")], h), /cannot write "0" to .*memory\/none\/cgroup\.procs: the file does not exist/);
  });
});

describe("cloneJoin: which limits a loading Node process may start under", () => {
  const deny = [{ allow: false, type: "a" as const, major: -1, minor: -1, access: "rwm" }];
  it("none, device rules, and memory from EARLY_JOIN_MEMORY up: at the clone, in full", () => {
    assert.deepEqual(cloneJoin({}), { create: {}, beforeGo: {} });
    assert.deepEqual(cloneJoin({ devices: deny }), { create: { devices: deny }, beforeGo: {} });
    assert.deepEqual(cloneJoin({ memory: EARLY_JOIN_MEMORY, swap: -1 }), { create: { memory: EARLY_JOIN_MEMORY, swap: -1 }, beforeGo: {} });
    assert.deepEqual(cloneJoin({ memory: 1 << 30, swap: 2 << 30 }), { create: { memory: 1 << 30, swap: 2 << 30 }, beforeGo: {} });
  });
  it("pids, CPU quotas from EARLY_JOIN_QUOTA up and CPU weights: at the clone, written before go", () => {
    const cpu = { quota: EARLY_JOIN_QUOTA, period: 100_000 };
    assert.deepEqual(cloneJoin({ memory: 64 << 20, pids: 1, cpu, cpuShares: 2, devices: deny }), { create: { memory: 64 << 20, devices: deny }, beforeGo: { pids: 1, cpu, cpuShares: 2 } });
    assert.deepEqual(cloneJoin({ cpuShares: 4096 }), { create: {}, beforeGo: { cpuShares: 4096 } });
  });
  it("a cpuset and block I/O limits wait for go too; a reservation, swappiness and the OOM switch are there from the start", () => {
    const blockIO = { readIops: [{ major: 254, minor: 0, rate: 10 }] };
    const cpuset = { cpus: "0" };
    const memory = { memory: 64 << 20, memoryReservation: 32 << 20, swappiness: 0, oomKillDisable: true };
    assert.deepEqual(cloneJoin({ ...memory, cpuset, blockIO }), { create: memory, beforeGo: { cpuset, blockIO } });
  });
  it("memory or swap below EARLY_JOIN_MEMORY, or a quota below EARLY_JOIN_QUOTA: right before the exec", () => {
    for (const limits of [{ memory: 6 << 20 }, { memory: EARLY_JOIN_MEMORY - 1 }, { memory: 1 << 30, swap: 16 << 20 }, { pids: 20, cpu: { quota: EARLY_JOIN_QUOTA - 1, period: 100_000 } }]) {
      assert.equal(cloneJoin(limits), undefined, JSON.stringify(limits));
    }
  });
});

describe("joinCommand: the shell step, run on plain files", () => {
  const dirs = ["a", "b"].map((n) => {
    mkdirSync(join(tmp, n));
    writeFileSync(join(tmp, n, "cgroup.procs"), "");
    return join(tmp, n);
  });

  it("builds sh -c SCRIPT NAME DIRS -- CMD", () => {
    assert.deepEqual(joinCommand(["/x", "/y", "/x"], ["echo", "--", "hi"]), ["/bin/sh", "-c", JOIN_SCRIPT, "corerun-cgroup-join", "/x", "/y", "--", "echo", "--", "hi"]);
    assert.throws(() => joinCommand(["rel"], ["true"]), /"rel" is not an absolute path/);
  });

  it("joins every directory, then execs the command with its arguments untouched", () => {
    const [sh, ...args] = joinCommand(dirs, ["/bin/sh", "-c", 'echo "$0|$1"; exit 7', "--", "--help"]);
    const r = spawnSync(sh!, args, { encoding: "utf8" });
    assert.equal(r.stdout, "--|--help\n");
    assert.equal(r.status, 7);
    for (const d of dirs) assert.equal(readFileSync(join(d, "cgroup.procs"), "utf8"), "0\n");
  });

  it("exits 125 without running the command when a directory cannot be joined", () => {
    const [sh, ...args] = joinCommand([join(tmp, "missing")], ["/bin/echo", "ran"]);
    const r = spawnSync(sh!, args, { encoding: "utf8" });
    assert.equal(r.status, 125);
    assert.equal(r.stdout, "");
  });

  it("exits 127 when the command is not found", () => {
    const [sh, ...args] = joinCommand(dirs, ["corerun-no-such-command"]);
    assert.equal(spawnSync(sh!, args, { env: { PATH: "/usr/bin:/bin" } }).status, 127);
  });
});

describe("openCgroupProcs and joinCgroupFds, on plain files", () => {
  it('opens each cgroup.procs once and later writes "0" through the fds and closes them', () => {
    const dirs = ["c", "d"].map((n) => {
      mkdirSync(join(tmp, n));
      writeFileSync(join(tmp, n, "cgroup.procs"), "");
      return join(tmp, n);
    });
    const fds = openCgroupProcs([...dirs, dirs[0]!]);
    assert.equal(fds.length, 2);
    joinCgroupFds(fds);
    for (const d of dirs) assert.equal(readFileSync(join(d, "cgroup.procs"), "utf8"), "0");
  });
  it("writes another process's pid the same way; a failed write still closes every fd", () => {
    const dirs = ["e", "f"].map((n) => {
      mkdirSync(join(tmp, n));
      writeFileSync(join(tmp, n, "cgroup.procs"), "");
      return join(tmp, n);
    });
    joinCgroupFds(openCgroupProcs(dirs), 4242);
    for (const d of dirs) assert.equal(readFileSync(join(d, "cgroup.procs"), "utf8"), "4242");
    // A read-only fd in the middle: its write fails (EBADF), and the fds after it are closed too.
    const ro = openSync(join(dirs[0]!, "cgroup.procs"), "r");
    const [a, b] = openCgroupProcs(dirs);
    assert.throws(() => joinCgroupFds([a!, ro, b!]), /cannot join the cgroup through fd/);
    for (const fd of [a!, ro, b!]) assert.throws(() => fstatSync(fd), /EBADF/, `fd ${fd} closed`);
  });
  it("opens nothing when one directory is missing", () => {
    assert.throws(() => openCgroupProcs([join(tmp, "a"), join(tmp, "missing")]), /cannot open cgroup\.procs to join later/);
  });
});
