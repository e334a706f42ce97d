/**
 * `run -d --restart`, with real containers: corerun-monitor starts the same container again by
 * its policy (Docker's: on-failure[:N], always, unless-stopped) with a growing delay; stop, kill
 * and rm end the restarting for good; a restarted bridged container keeps its address and host
 * port; a monitor killed while it waits leaves nothing for cleanup to miss.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { get } from "node:http";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { BIN, busyboxRootfs, isRoot, removeStateRoot, spawn, stateRoot, tool, until as waitUntil, type Result } from "./helpers.ts";
import { alive, assertHostClean, hierarchies, leases, type HostScope } from "./host.ts";

const tag = randomBytes(3).toString("hex");
const PARENT = `corerun-restart-${tag}`;
const BRIDGE = `crr${tag}`;
const MARKER = `restart-${tag}`;

let root = "";
let rootfs = "";
let work = "";

function corerun(args: string[]): Result {
  return tool("corerun", [...args.slice(0, 1), "--root", root, ...args.slice(1)]);
}

function runDetached(args: string[], script: string): string {
  const r = corerun(["run", "-d", "--rootfs", rootfs, "--cgroup-parent", PARENT, ...args, "/bin/sh", "-c", script, MARKER]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

interface Entry {
  id: string;
  statusText: string;
  exitCode?: number;
  detached: { monitor: { pid: number }; restartCount?: number; restarting?: boolean; lastNetwork?: { address: string; ports: string[] } };
}

function entry(id: string): Entry {
  const r = corerun(["ps", "-a", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const e = (JSON.parse(r.stdout) as Entry[]).find((s) => s.id === id);
  assert.ok(e, `${id} is not listed`);
  return e;
}

function inspect(id: string): { State: { Status: string; Restarting: boolean; ExitCode: number }; RestartCount: number; HostConfig: { RestartPolicy: { Name: string; MaximumRetryCount: number } }; NetworkSettings: { Networks: Record<string, { IPAddress: string }> } } {
  const r = corerun(["inspect", id]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout)[0];
}

/** Restarts take seconds: up to 30 s, looking every 100 ms. */
const until = (what: string, check: () => boolean, ms = 30_000) => waitUntil(what, check, ms, 100);

function fetchText(port: number, path: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = get({ host: "127.0.0.1", port, path, timeout: 2000 }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve(body));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(undefined));
  });
}

function scope(): HostScope {
  return { root, parent: PARENT, bridge: BRIDGE, markers: [MARKER] };
}

describe("run -d --restart", { skip: !isRoot && "needs root" }, () => {
  before(() => {
    rootfs = busyboxRootfs();
    root = stateRoot();
    work = mkdtempSync(join(tmpdir(), "corerun-restart-e2e-"));
  });
  after(() => {
    try {
      // The network first: corerun-net makes ROOT/networks again for its lock, and would leave
      // the removed root behind.
      tool("corerun-net", ["rm", "--root", root, BRIDGE]);
      removeStateRoot(root);
    } finally {
      if (work.includes("corerun-restart-e2e-")) rmSync(work, { recursive: true, force: true });
      for (const h of hierarchies()) {
        const parent = join(h, PARENT);
        if (existsSync(parent)) rmdirSync(parent);
      }
    }
  });

  test("on-failure:2 with a command that fails: it runs exactly 3 times, RestartCount 2, then stays exited", async () => {
    const id = runDetached(["--network", "none", "--restart", "on-failure:2", "--memory", "64"], "echo run; exit 3");
    const monitor = entry(id).detached.monitor.pid;
    await until("the monitor to give up", () => !alive(monitor));
    const e = entry(id);
    assert.equal(e.statusText, "exited (3)");
    assert.equal(e.detached.restartCount, 2);
    const logs = corerun(["logs", id]);
    assert.equal(logs.code, 0, logs.stderr);
    const lines = logs.stdout.split("\n").filter(Boolean);
    assert.equal(lines.length, 3, `three runs in one log: ${logs.stdout}`);
    assert.ok(lines.every((l) => l === "run"), logs.stdout);
    const i = inspect(id);
    assert.equal(i.RestartCount, 2);
    assert.deepEqual(i.HostConfig.RestartPolicy, { Name: "on-failure:2", MaximumRetryCount: 2 });
    assert.equal(i.State.ExitCode, 3);
    assert.equal(i.State.Restarting, false);
    // A success ends on-failure at once.
    const ok = runDetached(["--network", "none", "--restart", "on-failure"], "echo once");
    const okMonitor = entry(ok).detached.monitor.pid;
    await until("the monitor of a successful run to exit", () => !alive(okMonitor));
    assert.equal(entry(ok).detached.restartCount ?? 0, 0);
    assert.equal(corerun(["logs", ok]).stdout, "once\n");
    assert.equal(corerun(["rm", id, ok]).code, 0);
    await assertHostClean(scope(), [monitor, okMonitor], "after on-failure:2");
  });

  test("always with a command that exits 0: restarted until stop, which ends it for good; rm leaves nothing", async () => {
    const id = runDetached(["--network", "none", "--restart", "always"], "echo run");
    const monitor = entry(id).detached.monitor.pid;
    await until("three restarts", () => (entry(id).detached.restartCount ?? 0) >= 3);
    const stop = corerun(["stop", "-t", "1", id]);
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal(alive(monitor), false, "stop returns once the monitor has gone: nothing starts the container again");
    const e = entry(id);
    assert.match(e.statusText, /^exited \(\d+\)$/);
    assert.equal(e.detached.restarting, false);
    const count = e.detached.restartCount!;
    assert.equal(corerun(["logs", id]).stdout.split("\n").filter(Boolean).length, count + 1, "one line per run, all in one log");
    assert.equal(corerun(["rm", id]).code, 0);
    await assertHostClean(scope(), [monitor], "after always, stop and rm");
  });

  test("a bridged container with -P keeps its address and host port across a restart, and serves on them", async () => {
    const data = mkdtempSync(join(work, "data-"));
    // The first run fails at once; the next one serves /etc on port 80.
    const id = runDetached(["-N", BRIDGE, "-P", "80", "-v", `${data}:/data`, "--restart", "on-failure"],
      "if [ -e /data/ran ]; then echo serving; exec httpd -f -p 80 -h /etc; fi; touch /data/ran; exit 1");
    await until("the restarted run to serve", () => entry(id).statusText === "running" && (entry(id).detached.restartCount ?? 0) === 1 && corerun(["logs", id]).stdout.includes("serving"));
    const e = entry(id);
    const last = e.detached.lastNetwork;
    assert.ok(last, "the first run's address and ports are recorded at its exit");
    const now = inspect(id).NetworkSettings.Networks[BRIDGE]!.IPAddress;
    assert.equal(now, last.address, "the same address");
    const ps = corerun(["ps"]).stdout;
    const port = /0\.0\.0\.0:(\d+)->80\/tcp/.exec(ps.split("\n").find((l) => l.startsWith(id)) ?? "")?.[1];
    assert.ok(port, `ps shows the leased port: ${ps}`);
    assert.deepEqual(last.ports, [`${port}:80/tcp`], "the same host port");
    let body: string | undefined;
    for (let i = 0; i < 100 && body === undefined; i++) {
      body = await fetchText(Number(port), "/hostname");
      if (body === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(body?.trim(), id, "the restarted container answers on its published port");
    const rm = corerun(["rm", "-f", id]);
    assert.equal(rm.code, 0, rm.stderr);
    assert.deepEqual(leases(root), []);
    await assertHostClean(scope(), [e.detached.monitor.pid], "after rm -f of a restarted bridged container");
  });

  test("ps shows restarting while the monitor waits; kill and rm -f end the restarting; kill -9 of a waiting monitor, then cleanup, leaves nothing", async () => {
    // Runs of no time: the delay doubles from 100 ms, so the monitor soon waits for seconds.
    // Each check takes a corerun ps (a few hundred ms on a busy machine): a wait of 6.4 s leaves room to act.
    const waitLong = async (id: string) => {
      let e: Entry | undefined;
      await until("a wait of 6.4 s or more", () => {
        e = entry(id);
        return e.statusText === "restarting (0)" && (e.detached.restartCount ?? 0) >= 7;
      }, 60_000);
      return e!;
    };
    const a = runDetached(["--network", "none", "--restart", "unless-stopped"], "true");
    const monitor = (await waitLong(a)).detached.monitor.pid;
    assert.match(corerun(["ps"]).stdout, new RegExp(`^${a}\\s+-\\s+restarting \\(0\\)\\s`, "m"), "ps without -a lists a container that will run again");
    assert.equal(inspect(a).State.Restarting, true);
    const attach = corerun(["attach", a]);
    assert.equal(attach.code, 125);
    assert.equal(attach.stderr, `corerun: cannot attach to container ${a}: it is restarting (0) (attach again once it runs)\n`);
    process.kill(monitor, "SIGKILL");
    await until("the monitor to be gone", () => !alive(monitor));
    const c = corerun(["cleanup"]);
    assert.equal(c.code, 0, c.stderr);
    // Everything of the last run was released at its exit: only the state and log are left, for rm.
    assert.equal(entry(a).statusText, "exited (0)");
    assert.equal(corerun(["rm", a]).code, 0);
    await assertHostClean(scope(), [monitor], "after kill -9 of a waiting monitor and cleanup");

    const b = runDetached(["--network", "none", "--restart", "always"], "true");
    const bMonitor = (await waitLong(b)).detached.monitor.pid;
    const rm = corerun(["rm", "-f", b]);
    assert.equal(rm.code, 0, rm.stderr);
    assert.equal(alive(bMonitor), false, "rm -f ends a waiting monitor");
    await assertHostClean(scope(), [bMonitor], "after rm -f of a restarting container");

    const k = runDetached(["--network", "none", "--restart", "always"], "exec sleep 100");
    const kMonitor = entry(k).detached.monitor.pid;
    assert.equal(corerun(["kill", k]).code, 0);
    await until("the monitor to exit after kill", () => !alive(kMonitor));
    assert.equal(entry(k).statusText, "exited (137)");
    assert.equal(entry(k).detached.restartCount ?? 0, 0, "a container killed by its user is not started again");
    assert.equal(corerun(["rm", k]).code, 0);
    await assertHostClean(scope(), [kMonitor], "after kill");
  });

  test("kill of a restarting container ends the restarting: exit 0, it stays exited with its last status; start runs it again by its policy", async () => {
    const id = runDetached(["--network", "none", "--restart", "always"], "echo run; exit 5");
    // A wait of 3.2 s or more, so that kill comes while the monitor waits.
    await until("a long wait to restart", () => {
      const e = entry(id);
      return e.statusText === "restarting (5)" && (e.detached.restartCount ?? 0) >= 6;
    }, 60_000);
    const waiting = entry(id);
    const monitor = waiting.detached.monitor.pid;
    const k = corerun(["kill", id]);
    assert.deepEqual([k.code, k.stdout, k.stderr], [0, "", ""], "docker kill of a restarting container succeeds: there is nothing to signal, its restarting ends");
    await until("the waiting monitor to exit", () => !alive(monitor));
    const e = entry(id);
    assert.equal(e.statusText, "exited (5)", "the last run's status");
    assert.equal(e.detached.restarting, false);
    assert.equal(e.detached.restartCount, waiting.detached.restartCount! - 1, "the restart that will not begin is not counted");
    assert.equal(inspect(id).State.Restarting, false);
    const again = corerun(["kill", id]);
    assert.equal(again.code, 125, "an exited container is not running");
    assert.match(again.stderr, /not running/);
    // start: the policy applies again, from its first delay and count.
    const st = corerun(["start", id]);
    assert.equal(st.code, 0, st.stderr);
    await until("restarts after start", () => (entry(id).detached.restartCount ?? 0) >= 2 && entry(id).detached.restartCount! < waiting.detached.restartCount!);
    const rm = corerun(["rm", "-f", id]);
    assert.equal(rm.code, 0, rm.stderr);
    await assertHostClean(scope(), [monitor], "after kill of a restarting container, start and rm -f");
  });

  test("a restart and a start read the command line in the directory of the first run (a relative --rootfs)", async () => {
    const r = tool("corerun", ["run", "--root", root, "-d", "--rootfs", basename(rootfs), "--cgroup-parent", PARENT, "--network", "none", "--restart", "on-failure:1", "/bin/sh", "-c", "echo ran; exit 1", MARKER],
      { cwd: dirname(rootfs) });
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.trim();
    const monitor = entry(id).detached.monitor.pid;
    await until("the policy to give up", () => !alive(monitor));
    assert.deepEqual([entry(id).statusText, entry(id).detached.restartCount, corerun(["logs", id]).stdout], ["exited (1)", 1, "ran\nran\n"]);
    const st = corerun(["start", id]);
    assert.equal(st.code, 0, st.stderr);
    const again = entry(id).detached.monitor.pid;
    await until("the policy to give up after start", () => !alive(again));
    assert.deepEqual([entry(id).statusText, corerun(["logs", id]).stdout], ["exited (1)", "ran\nran\nran\nran\n"]);
    assert.equal(corerun(["rm", id]).code, 0);
    await assertHostClean(scope(), [monitor, again], "after restarts of a container with a relative --rootfs");
  });

  test("-dit with on-failure:2: each run gets a new pty; attach ends with its run, and attaches to the next one; rm -f leaves nothing", async () => {
    const data = mkdtempSync(join(work, "tty-"));
    // Run 1 exits at once; runs 2 and 3 wait for a line typed into their pty.
    const id = runDetached(["-t", "-i", "--network", "none", "-v", `${data}:/data`, "--restart", "on-failure:2"],
      "echo x >> /data/runs; n=$(wc -l < /data/runs); tty; echo run=$n; [ $n -eq 1 ] && exit 1; read line; echo got=$line; exit $n");
    const monitor = entry(id).detached.monitor.pid;
    const attachTyping = async (line: string) => {
      const child = spawn(join(BIN, "corerun"), ["attach", "--root", root, id], { stdio: ["pipe", "pipe", "pipe"] });
      let out = "";
      child.stdout.on("data", (d) => (out += d));
      child.stderr.on("data", (d) => (out += d));
      const code = new Promise<number | null>((resolve) => child.once("exit", resolve));
      child.stdin.write(`${line}\n`);
      return { code: await code, out };
    };
    for (const run of [2, 3]) {
      await until(`run ${run} to be up`, () => entry(id).statusText === "running" && entry(id).detached.restartCount === run - 1);
      const a = await attachTyping(`line${run}`);
      // Docker's attach ends when the run it attached to exits, with that run's status.
      assert.equal(a.code, run, a.out);
      assert.match(a.out, new RegExp(`got=line${run}\r\n`));
    }
    await until("the monitor to give up", () => !alive(monitor));
    const e = entry(id);
    assert.equal(e.statusText, "exited (3)");
    assert.equal(e.detached.restartCount, 2);
    const logs = corerun(["logs", id]).stdout;
    assert.deepEqual(logs.match(/^(\/dev\/pts\/\d+|run=\d)\r$/gm), ["/dev/pts/0\r", "run=1\r", "/dev/pts/0\r", "run=2\r", "/dev/pts/0\r", "run=3\r"], `every run sees a tty: ${logs}`);
    const rm = corerun(["rm", "-f", id]);
    assert.equal(rm.code, 0, rm.stderr);
    await assertHostClean(scope(), [monitor], "after rm -f of a restarted -dit container");
  });

  test("a restart that cannot start is recorded and retried by the policy", async () => {
    // The volume's source is gone by the second run: corerun-mount refuses it; the error goes to the log.
    const data = mkdtempSync(join(work, "gone-"));
    writeFileSync(join(data, "keep"), "");
    // The first run ends once the host has removed the directory.
    const id = runDetached(["--network", "none", "-v", `${data}:/data`, "--restart", "on-failure:1"], "echo first; while [ -e /data/keep ]; do sleep 0.1; done; exit 1");
    rmSync(data, { recursive: true, force: true });
    const monitor = entry(id).detached.monitor.pid;
    await until("the monitor to give up", () => !alive(monitor));
    const e = entry(id);
    assert.equal(e.statusText, "exited (125)", "the failed start's status");
    assert.equal(e.detached.restartCount, 1);
    const logs = corerun(["logs", id]);
    assert.match(logs.stdout, /^first\n$/);
    assert.match(logs.stderr, new RegExp(data.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")), "the start's error is in the container's log");
    assert.equal(corerun(["rm", id]).code, 0);
    await assertHostClean(scope(), [monitor], "after a failed restart");
  });
});
