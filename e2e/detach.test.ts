/**
 * Detached containers (`corerun run -d`), real ones: the monitor keeps their output and exit
 * status, stop/rm/--rm end them, a killed monitor is reported and cleaned up, and 20 at once
 * leave nothing on the host once stopped and removed.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { randomBytes } from "node:crypto";
import { dirname, join } from "node:path";
import { createServer } from "node:net";
import { busyboxRootfs, isRoot, removeStateRoot, REPO, stateRoot, tool, until, type Result } from "./helpers.ts";
import { assertHostClean, cgroupsUnder, hierarchies, leases, type HostScope } from "./host.ts";
import type { SpawnSyncOptions } from "node:child_process";

const tag = randomBytes(3).toString("hex");
const PARENT = `corerun-detach-${tag}`;
const BRIDGE = `crd${tag}`;
const PORT = 20000 + ((parseInt(tag, 16) + 5000) % 10000);
const MARKER = `detach-${tag}`;

let root = "";
let rootfs = "";

function corerun(args: string[], opts: SpawnSyncOptions & { input?: string } = {}): Result {
  return tool("corerun", [...args.slice(0, 1), "--root", root, ...args.slice(1)], opts);
}

/** run -d with this file's cgroup parent; the command line carries the marker. */
function runDetached(args: string[], script: string): Result {
  return corerun(["run", "-d", "--rootfs", rootfs, "--cgroup-parent", PARENT, ...args, "/bin/sh", "-c", script, MARKER]);
}

interface PsEntry {
  id: string;
  statusText: string;
  exitCode?: number;
  detached?: { monitor: { pid: number }; log?: string; finished?: string };
  init?: { pid: number };
}

function psAll(): PsEntry[] {
  const r = corerun(["ps", "-a", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as PsEntry[];
}

function entry(id: string): PsEntry | undefined {
  return psAll().find((e) => e.id === id);
}

function scope(): HostScope {
  return { root, parent: PARENT, bridge: BRIDGE, port: PORT, markers: [MARKER] };
}

describe("detached containers", { skip: !isRoot && "needs root" }, () => {
  before(() => {
    rootfs = busyboxRootfs();
    root = stateRoot();
  });
  after(() => {
    try {
      removeStateRoot(root);
    } finally {
      for (const h of hierarchies()) {
        const parent = join(h, PARENT);
        if (existsSync(parent)) rmdirSync(parent);
      }
    }
  });

  test("run -d prints the id; logs -f follows until stop; the exit is recorded; rm removes it", async () => {
    const script = 'trap "echo term; exit 0" TERM; echo out; echo err >&2; while :; do sleep 0.1; done';
    const r = runDetached(["--name", `web-${tag}`, "-N", BRIDGE, "-P", `${PORT}:80`], script);
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.trim();
    assert.match(id, /^[0-9a-f]{12}$/);
    const ps = corerun(["ps"]);
    assert.match(ps.stdout, new RegExp(`^${id}\\s+web-${tag}\\s+running\\s+\\d+\\s+${BRIDGE}\\s+0\\.0\\.0\\.0:${PORT}->80\\/tcp\\s+\\d+s ago\\s`, "m"));
    const ids = (args: string[]) => corerun(["ps", ...args]).stdout.split("\n").filter(Boolean);
    assert.ok(ids(["-q"]).includes(id) && ids(["-q"]).every((l) => /^[0-9a-f]{12}$/.test(l)), "ps -q prints ids only");
    const running = entry(id)!;
    assert.ok(cgroupsUnder(PARENT).length > 0, "a running container has its cgroup");
    assert.equal(leases(root).length, 1, "and its address");
    type Inspected = { State: { Status: string; Pid: number; ExitCode: number; FinishedAt: string }; NetworkSettings: { Networks: Record<string, { IPAddress: string }>; Ports: unknown }; Cgroup: { Paths: Record<string, string> } };
    const [live] = JSON.parse(corerun(["inspect", id]).stdout) as Inspected[];
    // Docker's values, which scripts compare: exit code 0 and its "never" while it runs; the published port by its container port.
    assert.deepEqual([live!.State.Status, live!.State.ExitCode, live!.State.FinishedAt], ["running", 0, "0001-01-01T00:00:00Z"]);
    assert.deepEqual(live!.NetworkSettings.Ports, { "80/tcp": [{ HostIp: "0.0.0.0", HostPort: String(PORT) }] });
    assert.equal(live!.State.Pid, running.init!.pid);
    assert.match(live!.NetworkSettings.Networks[BRIDGE]?.IPAddress ?? "", /^\d+\.\d+\.\d+\.\d+$/);
    assert.ok(Object.values(live!.Cgroup.Paths).every((p) => p.includes(PARENT)), "inspect shows the cgroup paths");
    // A v1 cpuacct hierarchy, where the engines read CPU time, holds the container too (as runc places it).
    if (existsSync("/sys/fs/cgroup/cpuacct/cgroup.procs")) {
      assert.ok(live!.Cgroup.Paths.cpuacct?.includes(PARENT), JSON.stringify(live!.Cgroup.Paths));
      assert.match(readFileSync(`/proc/${running.init!.pid}/cgroup`, "utf8"), new RegExp(`^\\d+:[a-z,]*cpuacct[a-z,]*:/${PARENT}/`, "m"));
    }

    const follow = spawn(join(REPO, "bin/corerun"), ["logs", "--root", root, "-f", "--timestamps", `web-${tag}`], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    follow.stdout.on("data", (d) => (out += d));
    follow.stderr.on("data", (d) => (err += d));
    const followed = new Promise((resolve) => follow.once("exit", resolve));
    await until("logs -f to print the first line", () => out.includes("out"));

    const stop = corerun(["stop", "-t", "5", `web-${tag}`]);
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal(stop.stdout, `web-${tag}\n`);
    assert.equal(await followed, 0, "logs -f ends once the container has stopped");
    const stamp = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z /;
    assert.deepEqual(out.split("\n").filter(Boolean).map((l) => [stamp.test(l), l.replace(stamp, "")]), [[true, "out"], [true, "term"]]);
    assert.match(err, /Z err\n$/);

    // Stopped: exit code and time recorded, resources released, state and log kept.
    const stopped = entry(id)!;
    assert.equal(stopped.statusText, "exited (0)");
    assert.equal(stopped.exitCode, 0);
    assert.ok(stopped.detached?.finished);
    assert.equal(corerun(["ps"]).stdout.includes(id), false, "ps without -a lists running containers only");
    assert.equal(ids(["-q"]).includes(id), false, "and so does ps -q");
    assert.ok(ids(["-aq"]).includes(id), "ps -aq lists it");
    assert.deepEqual(cgroupsUnder(PARENT), [], "the cgroup is released at the exit");
    assert.deepEqual(leases(root), [], "and the address");
    const lines = readFileSync(stopped.detached!.log!, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { log: string; stream: string; time: string });
    assert.deepEqual(lines.map((l) => [l.stream, l.log]), [["stdout", "out\n"], ["stderr", "err\n"], ["stdout", "term\n"]]);
    const logs = corerun(["logs", "--tail", "1", id]);
    assert.equal(logs.stdout, "term\n", "--tail 1 prints the last line only");

    const [inspected] = JSON.parse(corerun(["inspect", `web-${tag}`]).stdout) as { State: { ExitCode: number; Status: string; StatusText: string }; LogPath: string; Monitor: { Pid: number; Alive: boolean } }[];
    assert.deepEqual([inspected!.State.Status, inspected!.State.StatusText, inspected!.State.ExitCode], ["exited", "exited (0)", 0]);
    assert.equal(inspected!.LogPath, stopped.detached!.log);
    assert.equal(inspected!.Monitor.Pid, running.detached!.monitor.pid);
    assert.equal(inspected!.Monitor.Alive, false, "the monitor exits after the container");

    const again = runDetached(["--name", `web-${tag}`, "--network", "none"], "true");
    assert.equal(again.code, 125);
    assert.match(again.stderr, new RegExp(`--name web-${tag} is already used by container ${id}`), "a name is kept until rm");
    const rm = corerun(["rm", `web-${tag}`]);
    assert.equal(rm.code, 0, rm.stderr);
    await assertHostClean(scope(), [running.init!.pid, running.detached!.monitor.pid], "after stop and rm");
  });

  test("start: an exited container runs again with its id, log, address and host port; start -a prints its output and exits with its status", async () => {
    const name = `again-${tag}`;
    const r = runDetached(["--name", name, "-N", BRIDGE, "-P", "80"], 'trap "exit 4" TERM; echo run; while :; do sleep 0.1; done');
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.trim();
    // Running already: left as it is, its name printed, as docker start does.
    const before = entry(id)?.init?.pid;
    assert.ok(before, "it runs");
    const noop = corerun(["start", name]);
    assert.deepEqual([noop.code, noop.stdout, noop.stderr], [0, `${name}\n`, ""]);
    assert.equal(entry(id)?.init?.pid, before, "the same first process");
    assert.equal(corerun(["stop", "-t", "5", name]).code, 0);
    const first = entry(id) as PsEntry & { detached: { lastNetwork?: { address: string; ports: string[] } } };
    assert.equal(first.statusText, "exited (4)");
    const last = first.detached.lastNetwork;
    assert.ok(last, "the address and host port are recorded at the exit");

    const st = corerun(["start", name]);
    assert.equal(st.code, 0, st.stderr);
    assert.equal(st.stdout, `${name}\n`);
    await until("the container to run again", () => entry(id)?.statusText === "running");
    const [live] = JSON.parse(corerun(["inspect", name]).stdout) as { Id: string; NetworkSettings: { Networks: Record<string, { IPAddress: string }> } }[];
    assert.equal(live!.Id, id, "the same container");
    assert.equal(live!.NetworkSettings.Networks[BRIDGE]?.IPAddress, last.address, "the same address");
    assert.match(corerun(["ps"]).stdout, new RegExp(`^${id}\\s.*0\\.0\\.0\\.0:${last.ports[0]!.split(":")[0]}->80/tcp`, "m"), "the same host port");
    await until("the second run's output", () => corerun(["logs", name]).stdout === "run\nrun\n");
    assert.equal(corerun(["stop", "-t", "5", name]).code, 0);

    const job = `job-${tag}`;
    // -e NAME takes the caller's value: a later start (without it in its environment) keeps it.
    const pass = `PASS_${tag}`;
    const j = corerun(["run", "-d", "--rootfs", rootfs, "--cgroup-parent", PARENT, "--name", job, "--network", "none", "-e", pass, "/bin/sh", "-c", `echo out $${pass}; echo err >&2; exit 3`, MARKER],
      { env: { ...process.env, [pass]: "given" } });
    assert.equal(j.code, 0, j.stderr);
    await until("the job to exit", () => entry(j.stdout.trim())?.statusText === "exited (3)" && !existsSync(`/proc/${entry(j.stdout.trim())!.detached!.monitor.pid}`));
    const attached = corerun(["start", "-a", job]);
    assert.deepEqual([attached.code, attached.stdout, attached.stderr], [3, "out given\n", "err\n"], "docker start -a: the output, then the container's status");
    assert.equal(corerun(["logs", job]).stdout, "out given\nout given\n", "the log is appended to");

    const many = corerun(["start", "-a", job, name]);
    assert.equal(many.code, 125);
    assert.match(many.stderr, /^corerun: start -a attaches to one container; name one\n$/);
    const unknown = corerun(["start", `nosuch-${tag}`]);
    assert.equal(unknown.code, 125);
    assert.equal(unknown.stderr.trim().split("\n").length, 1, unknown.stderr);
    // A foreground container is its corerun's: it cannot be started again.
    const fg = spawn(join(REPO, "bin/corerun"), ["run", "--root", root, "--rootfs", rootfs, "--cgroup-parent", PARENT, "--name", `fg-${tag}`, "--network", "none", "/bin/sh", "-c", "sleep 30", MARKER], { stdio: "ignore" });
    const fgDone = new Promise((resolve) => fg.once("exit", resolve));
    await until("the foreground container to run", () => psAll().some((e) => e.statusText === "running" && corerun(["inspect", `fg-${tag}`]).code === 0));
    const fgStart = corerun(["start", `fg-${tag}`]);
    assert.equal(fgStart.code, 125);
    assert.match(fgStart.stderr, /^corerun: container fg-\w+ is running in the foreground .*\n$/);
    assert.equal(corerun(["kill", `fg-${tag}`]).code, 0);
    await fgDone;
    assert.equal(corerun(["rm", name, job]).code, 0);
    await assertHostClean(scope(), [], "after start, start -a and rm");
  });

  test("start: the restart policy applies again, from its first count", async () => {
    const r = runDetached(["--network", "none", "--restart", "on-failure:1"], "echo try; exit 3");
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.trim();
    const gone = () => !existsSync(`/proc/${entry(id)!.detached!.monitor.pid}`);
    await until("the policy to give up", () => entry(id)?.statusText === "exited (3)" && gone(), 20_000);
    const st = corerun(["start", id]);
    assert.equal(st.code, 0, st.stderr);
    await until("the policy to give up again", () => corerun(["logs", id]).stdout === "try\ntry\ntry\ntry\n" && entry(id)?.statusText === "exited (3)" && gone(), 20_000);
    const [i] = JSON.parse(corerun(["inspect", id]).stdout) as { RestartCount: number }[];
    assert.equal(i!.RestartCount, 1, "one restart after the start, as after the first run");
    assert.equal(corerun(["rm", id]).code, 0);
    await assertHostClean(scope(), [], "after start of a container with a policy");
  });

  test("a start killed at its steps leaves the container exited (137), held by nothing, and start runs it again", async () => {
    const r = runDetached(["--network", "none"], "echo run");
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.trim();
    const settled = () => entry(id)?.statusText.startsWith("exited") === true && !existsSync(`/proc/${entry(id)!.detached!.monitor.pid}`);
    await until("the first run to end", settled);
    for (const step of ["corerun:restart-state", "corerun:image-mounted", "corerun:tree-built", "detach:id-reported"]) {
      const killed = corerun(["start", id], { env: { ...process.env, CORERUN_FAULT: step } });
      assert.equal(killed.code, 137, `${step}: ${killed.stderr}`);
      await until(`the exit at ${step} to be recorded`, settled);
      assert.equal(entry(id)!.statusText, "exited (137)", step);
      assert.deepEqual(cgroupsUnder(PARENT), [], `${step}: nothing held`);
      const again = corerun(["start", id]);
      assert.equal(again.code, 0, `${step}: ${again.stderr}`);
      await until("the run after it to end", () => settled() && entry(id)!.statusText === "exited (0)");
    }
    assert.equal(corerun(["rm", id]).code, 0);
    await assertHostClean(scope(), [], "after starts killed at their steps");
  });

  test("rm refuses a running container; rm -f kills and removes it, paused too", async () => {
    const r = runDetached(["--network", "none"], "exec sleep 100");
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.trim();
    const refused = corerun(["rm", id]);
    assert.equal(refused.code, 125);
    assert.match(refused.stderr, new RegExp(`container ${id} is running: stop it first \\(corerun stop ${id}\\) or remove it with rm -f`));
    assert.equal(corerun(["rm", "nosuch"]).code, 125);
    // Paused, it takes no signal until thawed: rm -f thaws it first.
    assert.equal(corerun(["pause", id]).code, 0);
    assert.equal(entry(id)?.statusText, "paused");
    const forced = corerun(["rm", "-f", id]);
    assert.equal(forced.code, 0, forced.stderr);
    await assertHostClean(scope(), [], "after rm -f");
  });

  test("an OOM kill is recorded: exited (137) and inspect's State.OOMKilled, as Docker's; a run within its limit is not", async () => {
    const oom = runDetached(["--network", "none", "-m", "16"], "exec dd if=/dev/zero of=/dev/null bs=64M count=1");
    const fine = runDetached(["--network", "none", "-m", "16"], "exit 0");
    for (const r of [oom, fine]) assert.equal(r.code, 0, r.stderr);
    const [a, b] = [oom.stdout.trim(), fine.stdout.trim()];
    await until("both exits to be recorded", () => entry(a)?.statusText === "exited (137)" && entry(b)?.statusText === "exited (0)");
    const states = JSON.parse(corerun(["inspect", a, b]).stdout) as { State: { OOMKilled: boolean; ExitCode: number } }[];
    assert.deepEqual(states.map((st) => [st.State.OOMKilled, st.State.ExitCode]), [[true, 137], [false, 0]]);
    assert.equal(corerun(["rm", a, b]).code, 0);
    await assertHostClean(scope(), [], "after the OOM kill");
  });

  test("stop, kill and rm take each name on its own: one that names no container is refused alone and the others go on", async () => {
    const ids = [0, 1, 2].map(() => {
      const r = runDetached(["--network", "none"], "exec sleep 100");
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.trim();
    });
    for (const [args, id] of [[["stop", "-t", "0"], ids[0]!], [["kill"], ids[1]!], [["rm", "-f"], ids[2]!]] as const) {
      const r = corerun([...args, "corerun-no-such", id]);
      assert.equal(r.code, 125, `${args[0]}: ${r.stderr}`);
      assert.equal(r.stderr, 'corerun: container "corerun-no-such" does not exist; see corerun ps -a\n');
    }
    await until("the stopped and killed ones to be recorded", () => ids.slice(0, 2).every((id) => entry(id)?.statusText.startsWith("exited")));
    assert.equal(entry(ids[2]!), undefined, "rm -f removed the one it found");
    assert.equal(corerun(["rm", ids[0]!, ids[1]!]).code, 0);
    await assertHostClean(scope(), [], "after stop, kill and rm with an unknown name");
  });

  test("--stop-signal and --stop-timeout: stop sends the container's signal, then SIGKILL after its own grace period unless -t is given; inspect shows both", async () => {
    const trapping = runDetached(["--network", "none", "--stop-signal", "USR1", "--env-file", join(REPO, "e2e/fixtures/stop.env")], 'trap "echo got \$SIGNAL_NAME; exit 3" USR1; trap "echo got TERM; exit 4" TERM; while :; do sleep 0.1; done');
    assert.equal(trapping.code, 0, trapping.stderr);
    const id = trapping.stdout.trim();
    const config = (JSON.parse(corerun(["inspect", id]).stdout) as { Config: { StopSignal?: string; StopTimeout?: number } }[])[0]!.Config;
    assert.deepEqual([config.StopSignal, config.StopTimeout], ["SIGUSR1", undefined]);
    await until("the trap to be set", () => /sleep/.test(corerun(["ps", id]).stdout));
    assert.equal(corerun(["stop", id]).code, 0);
    assert.equal(entry(id)?.statusText, "exited (3)", "the handler of USR1 ran, not SIGTERM's default");
    assert.equal(corerun(["logs", id]).stdout, "got USR1\n", "--env-file's variable reached the detached container");
    // PID 1 ignores SIGTERM without a handler: only the SIGKILL after --stop-timeout ends it.
    const ignoring = runDetached(["--network", "none", "--stop-timeout", "1"], "exec sleep 100");
    assert.equal(ignoring.code, 0, ignoring.stderr);
    const slow = ignoring.stdout.trim();
    assert.equal((JSON.parse(corerun(["inspect", slow]).stdout) as { Config: { StopTimeout?: number } }[])[0]!.Config.StopTimeout, 1);
    assert.equal(corerun(["stop", slow]).code, 0);
    assert.equal(entry(slow)?.statusText, "exited (137)");
    assert.equal(corerun(["rm", id, slow]).code, 0);
    assert.match(corerun(["stop", "-t", "1x", "nosuch"]).stderr, /^corerun: -t 1x: give the grace period in whole seconds \(at most 2147483\), or -1 to wait for good\n$/);
    await assertHostClean(scope(), [], "after --stop-signal and --stop-timeout");
  });

  test("--group-add and --oom-score-adj reach the first process and every process corerun exec adds; exec takes --env-file", async () => {
    const r = runDetached(["--network", "none", "--group-add", "nogroup", "--group-add", "4242", "--oom-score-adj", "321"], "exec sleep 100");
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.trim();
    try {
      const first = corerun(["exec", id, "cat", "/proc/1/status", "/proc/1/oom_score_adj"]);
      assert.match(first.stdout, /^Groups:\t0 4242 65534 ?$/m, first.stderr);
      assert.match(first.stdout, /^321$/m);
      const exec = corerun(["exec", "--env-file", join(REPO, "e2e/fixtures/stop.env"), id, "sh", "-c", "id -G; cat /proc/self/oom_score_adj; echo $SIGNAL_NAME"]);
      assert.equal(exec.stdout, "0 4242 65534\n321\nUSR1\n", exec.stderr);
      const inspect = (JSON.parse(corerun(["inspect", id]).stdout) as { HostConfig: { GroupAdd: string[]; OomScoreAdj: number } }[])[0]!.HostConfig;
      assert.deepEqual([inspect.GroupAdd, inspect.OomScoreAdj], [["nogroup", "4242"], 321]);
    } finally {
      corerun(["rm", "-f", id]);
    }
    await assertHostClean(scope(), [], "after --group-add and --oom-score-adj");
  });

  test("--env-file and --label-file are read once: <(...) reaches a detached start, and a restart keeps what they held after the file is gone", async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "corerun-envonce-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, "vars.env");
    writeFileSync(file, "FROM_FILE=kept\n");
    const script = `exec ${join(REPO, "bin/corerun")} run -d --root ${root} --rootfs ${rootfs} --cgroup-parent ${PARENT} --network none --env-file <(echo SUBST=yes) --label-file <(echo from=subst) --env-file ${file} /bin/sh -c 'echo $SUBST $FROM_FILE; exec sleep 100' ${MARKER}`;
    const r = spawnSync("bash", ["-c", script], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const id = r.stdout.trim();
    try {
      await until("the output", () => corerun(["logs", id]).stdout === "yes kept\n");
      assert.deepEqual((JSON.parse(corerun(["inspect", id]).stdout) as { Config: { Labels: Record<string, string> } }[])[0]!.Config.Labels, { from: "subst" });
      rmSync(file);
      const again = corerun(["restart", "-t", "0", id]);
      assert.equal(again.code, 0, again.stderr);
      await until("the second run's output", () => corerun(["logs", id]).stdout === "yes kept\nyes kept\n");
    } finally {
      corerun(["rm", "-f", id]);
    }
    await assertHostClean(scope(), [], "after --env-file read once");
  });

  test("--log-opt max-size and max-file rotate the log through container.log.1 and .2, and logs prints them in order; --log-driver none keeps none", async () => {
    const r = runDetached(["--network", "none", "--log-opt", "max-size=4k", "--log-opt", "max-file=3"], "i=0; while [ $i -lt 300 ]; do echo line-$i-padding-padding-padding-padding; i=$((i+1)); done");
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.trim();
    try {
      await until("the run to end", () => entry(id)?.statusText === "exited (0)");
      const dir = dirname(entry(id)!.detached!.log!);
      assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith("container.log")).sort(), ["container.log", "container.log.1", "container.log.2"]);
      const lines = corerun(["logs", id]).stdout.trim().split("\n");
      const numbers = lines.map((l) => Number(/^line-(\d+)-/.exec(l)![1]));
      assert.equal(numbers.at(-1), 299, "the last line is there");
      assert.ok(numbers.length < 300 && numbers.length > 50, String(numbers.length));
      assert.deepEqual(numbers, numbers.map((_, i) => numbers[0]! + i), "the kept lines follow on from each other, oldest file first");
      const logConfig = (JSON.parse(corerun(["inspect", id]).stdout) as { HostConfig: { LogConfig: unknown } }[])[0]!.HostConfig.LogConfig;
      assert.deepEqual(logConfig, { Type: "json-file", Config: { "max-size": "4096", "max-file": "3" } });
    } finally {
      corerun(["rm", "-f", id]);
    }
    // logs -f across rotations: every line, in order, once.
    const slow = runDetached(["--network", "none", "--log-opt", "max-size=4k", "--log-opt", "max-file=2"], "i=0; while [ $i -lt 200 ]; do echo line-$i-padding-padding-padding-padding; i=$((i+1)); sleep 0.005; done");
    assert.equal(slow.code, 0, slow.stderr);
    const slowId = slow.stdout.trim();
    try {
      const followed = corerun(["logs", "-f", slowId], { timeout: 60_000 });
      assert.equal(followed.code, 0, followed.stderr);
      const seen = followed.stdout.trim().split("\n").map((l) => Number(/^line-(\d+)-/.exec(l)![1]));
      assert.deepEqual(seen, seen.map((_, i) => seen[0]! + i), "no line lost or repeated at a rotation");
      assert.equal(seen.at(-1), 199);
    } finally {
      corerun(["rm", "-f", slowId]);
    }
    const none = runDetached(["--network", "none", "--log-driver", "none"], "echo unseen");
    assert.equal(none.code, 0, none.stderr);
    const noneId = none.stdout.trim();
    try {
      await until("the run to end", () => entry(noneId)?.statusText === "exited (0)");
      const logs = corerun(["logs", noneId]);
      assert.deepEqual([logs.code, logs.stderr], [125, `corerun: container ${noneId} was run with --log-driver none: it keeps no log (corerun attach shows its output from now on)\n`]);
      assert.equal(readdirSync(join(root, noneId)).some((n) => n.startsWith("container.log")), false);
    } finally {
      corerun(["rm", "-f", noneId]);
    }
    await assertHostClean(scope(), [], "after the log options");
  });

  test("--label and --label-file: inspect's Config.Labels; --cidfile; ps --filter label=, name=, id= and status= (which lists exited ones without -a)", async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "corerun-labels-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, "labels"), "# team\ncom.example.team=ops\napp=overridden\n");
    const web = runDetached(["--network", "none", "--name", `web-${tag}`, "--label-file", join(dir, "labels"), "--label", "app=web", "--label", "canary", "--cidfile", join(dir, "web.cid")], "exec sleep 100");
    const db = runDetached(["--network", "none", "--name", `db-${tag}`, "--label", "app=db"], "exit 0");
    assert.equal(web.code, 0, web.stderr);
    assert.equal(db.code, 0, db.stderr);
    const [webId, dbId] = [web.stdout.trim(), db.stdout.trim()];
    try {
      assert.equal(readFileSync(join(dir, "web.cid"), "utf8"), webId, "run -d --cidfile");
      const labels = (JSON.parse(corerun(["inspect", webId]).stdout) as { Config: { Labels: Record<string, string> } }[])[0]!.Config.Labels;
      assert.deepEqual(labels, { "com.example.team": "ops", app: "web", canary: "" });
      await until("db to exit", () => entry(dbId)?.statusText === "exited (0)");
      const ids = (...filters: string[]) => corerun(["ps", "-q", ...filters.flatMap((f) => ["--filter", f])]).stdout.trim().split("\n").filter(Boolean).sort();
      assert.deepEqual(ids("label=app=web"), [webId]);
      assert.deepEqual(ids("label=canary", "label=com.example.team=ops"), [webId]);
      assert.deepEqual(ids("label=app"), [webId], "without -a or a status filter, only running ones");
      assert.deepEqual(ids("status=exited", "label=app"), [dbId]);
      assert.deepEqual(ids(`name=^(web|db)-${tag}$`, "status=running", "status=exited"), [dbId, webId].sort());
      assert.deepEqual(ids(`id=${webId.slice(0, 5)}`), [webId]);
      const bad = corerun(["ps", "--filter", "ancestor=busybox"]);
      assert.equal(bad.code, 125);
      assert.equal(bad.stderr, 'corerun: --filter "ancestor=busybox": give label=KEY[=VALUE], name=NAME, id=ID, status=STATUS or health=STATUS\n');
    } finally {
      corerun(["rm", "-f", webId, dbId]);
    }
    await assertHostClean(scope(), [], "after --label");
  });

  test("wait prints each exit status once the run ends (an exited one's at once); restart stops and starts again with the same id, address and host port; port lists what is published", async () => {
    const job = runDetached(["--network", "none", "--restart", "on-failure:1"], "sleep 0.3; exit 5");
    assert.equal(job.code, 0, job.stderr);
    const jobId = job.stdout.trim();
    const web = runDetached(["-N", BRIDGE, "-P", `${PORT}:80`, "-P", "53/udp", "--stop-timeout", "1"], "exec sleep 100");
    assert.equal(web.code, 0, web.stderr);
    const webId = web.stdout.trim();
    try {
      // The first run's end, then (wait again) the restart's; after it, at once.
      assert.equal(corerun(["wait", jobId]).stdout, "5\n");
      assert.equal(corerun(["wait", jobId, jobId]).stdout, "5\n5\n");
      await until("the restart to be used up", () => entry(jobId)?.statusText === "exited (5)");
      const ports = corerun(["port", webId]).stdout.trim().split("\n");
      assert.equal(ports[0], `80/tcp -> 0.0.0.0:${PORT}`);
      assert.match(ports[1]!, /^53\/udp -> 0\.0\.0\.0:\d+$/);
      assert.equal(corerun(["port", webId, "80"]).stdout, `0.0.0.0:${PORT}\n`);
      const missing = corerun(["port", webId, "81/udp"]);
      assert.deepEqual([missing.code, missing.stderr], [125, `corerun: container ${webId} has no published port 81/udp\n`]);
      const inspectOf = (id: string) => (JSON.parse(corerun(["inspect", id]).stdout) as { State: { Pid: number }; NetworkSettings: { Networks: Record<string, { IPAddress: string }> } }[])[0]!;
      const before = inspectOf(webId);
      const r = corerun(["restart", webId]);
      assert.deepEqual([r.code, r.stdout], [0, `${webId}\n`], r.stderr);
      const after = inspectOf(webId);
      assert.notEqual(after.State.Pid, before.State.Pid, "a new first process");
      assert.deepEqual(after.NetworkSettings.Networks, before.NetworkSettings.Networks, "the same address");
      assert.equal(corerun(["port", webId, "80/tcp"]).stdout, `0.0.0.0:${PORT}\n`);
      const foreground = corerun(["wait", "no-such-container"]);
      assert.deepEqual([foreground.code, foreground.stderr], [125, 'corerun: container "no-such-container" does not exist; see corerun ps -a\n']);
      // A --rm container's status comes from its monitor, before it is removed; restart refuses it.
      const gone = runDetached(["--network", "none", "--rm"], "sleep 0.5; exit 9");
      assert.equal(gone.code, 0, gone.stderr);
      const goneId = gone.stdout.trim();
      const refused = corerun(["restart", goneId]);
      assert.deepEqual([refused.code, refused.stderr], [125, `corerun: container ${goneId} was run with --rm: a stop removes it, so it cannot be started again; stop it and run it anew\n`]);
      assert.equal(corerun(["wait", goneId]).stdout, "9\n");
      await until("the --rm container to be removed", () => entry(goneId) === undefined);
    } finally {
      corerun(["rm", "-f", jobId, webId]);
    }
    await assertHostClean(scope(), [], "after wait, port and restart");
  });

  test("--health-cmd: the monitor probes every interval (starting, healthy, unhealthy after the retries, a slow probe killed at the timeout); ps, inspect's State.Health, ps --filter health=, healthcheck run", async () => {
    // /tmp a tmpfs of its own: the probe's file is not written into the shared rootfs.
    const r = runDetached(["--network", "none", "--tmpfs", "/tmp", "--health-cmd", "test -f /tmp/ok || { echo not yet; exit 1; }", "--health-interval", "200ms", "--health-retries", "2", "--health-timeout", "2s"], "touch /tmp/ok; exec sleep 100");
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.trim();
    const health = () => (JSON.parse(corerun(["inspect", id]).stdout) as { State: { Health?: { Status: string; FailingStreak: number; Log: { ExitCode: number; Output: string }[] } } }[])[0]!.State.Health!;
    const filtered = (status: string) => corerun(["ps", "-q", "--filter", `health=${status}`]).stdout.split("\n").includes(id);
    try {
      await until("the container to become healthy", () => health().Status === "healthy");
      assert.match(corerun(["ps"]).stdout, new RegExp(`^${id}\\s+\\S+\\s+running \\(healthy\\)\\s`, "m"));
      assert.equal(filtered("healthy"), true);
      assert.equal(corerun(["exec", id, "rm", "/tmp/ok"]).code, 0);
      await until("two failures in a row to make it unhealthy", () => health().Status === "unhealthy");
      const h = health();
      assert.ok(h.FailingStreak >= 2, String(h.FailingStreak));
      assert.deepEqual([h.Log.at(-1)!.ExitCode, h.Log.at(-1)!.Output], [1, "not yet\n"]);
      assert.ok(h.Log.length <= 5);
      assert.equal(filtered("unhealthy"), true);
      assert.equal(filtered("healthy"), false);
      // By hand: one probe, its status printed, 1 while not healthy.
      const byHand = corerun(["healthcheck", "run", id]);
      assert.deepEqual([byHand.code, byHand.stdout], [1, "unhealthy\n"], byHand.stderr);
      // Paused past a few intervals: the monitor probes again once it is resumed.
      assert.equal(corerun(["pause", id]).code, 0);
      await new Promise((resolve) => setTimeout(resolve, 700));
      assert.equal(corerun(["unpause", id]).code, 0);
      assert.equal(corerun(["exec", id, "touch", "/tmp/ok"]).code, 0);
      await until("the monitor's probes to find it healthy again after the pause", () => health().Status === "healthy");
      const again = corerun(["healthcheck", "run", id]);
      assert.deepEqual([again.code, again.stdout], [0, "healthy\n"], again.stderr);
    } finally {
      corerun(["rm", "-f", id]);
    }
    const slow = runDetached(["--network", "none", "--health-cmd", "sleep 5", "--health-timeout", "300ms", "--health-interval", "1h"], "exec sleep 100");
    assert.equal(slow.code, 0, slow.stderr);
    const slowId = slow.stdout.trim();
    try {
      const timedOut = corerun(["healthcheck", "run", slowId]);
      assert.equal(timedOut.code, 1, timedOut.stderr);
      const last = (JSON.parse(corerun(["inspect", slowId]).stdout) as { State: { Health: { Log: { ExitCode: number; Output: string }[] } } }[])[0]!.State.Health.Log.at(-1)!;
      assert.deepEqual([last.ExitCode, last.Output], [-1, "Health check exceeded timeout (300 ms)"]);
      assert.equal(corerun(["ps", slowId]).stdout.includes("sleep 5"), false, "the probe was killed");
    } finally {
      corerun(["rm", "-f", slowId]);
    }
    const foreground = corerun(["run", "--rootfs", rootfs, "--network", "none", "--health-cmd", "true", "/bin/true"]);
    assert.deepEqual([foreground.code, foreground.stderr], [125, "corerun: --health-cmd: health checks are run by a detached container's monitor; add -d (or run -it)\n"]);
    await assertHostClean(scope(), [], "after the health checks");
  });

  test("--rm: a detached container that exits leaves nothing; its exit code is recorded without --rm", async () => {
    const gone = runDetached(["--rm", "-N", BRIDGE], "exit 0");
    assert.equal(gone.code, 0, gone.stderr);
    // stdin is /dev/null: cat ends at once.
    const kept = runDetached(["--network", "none"], "cat; echo bye; exit 7");
    assert.equal(kept.code, 0, kept.stderr);
    const id = kept.stdout.trim();
    await until("the exit to be recorded", () => entry(id)?.statusText === "exited (7)");
    assert.equal(entry(gone.stdout.trim()), undefined, "--rm removed the state");
    assert.equal(corerun(["logs", id]).stdout, "bye\n");
    assert.equal(corerun(["rm", id]).code, 0);
    await assertHostClean(scope(), [], "after --rm");
  });

  test("a start that fails after its state exists returns the start's status and leaves nothing", async () => {
    // The published port is taken on the host: corerun-net refuses it during the start.
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(PORT + 1, "0.0.0.0", resolve));
    try {
      const r = runDetached(["-N", BRIDGE, "-P", `${PORT + 1}:80`], "true");
      assert.equal(r.code, 125, r.stderr);
      assert.match(r.stderr, new RegExp(`${PORT + 1}`), "the start's error reaches the caller");
      assert.equal(r.stdout, "", "no id is printed");
    } finally {
      server.close();
    }
    await assertHostClean(scope(), [], "after a failed start");
  });

  test("a start that fails after go (a working directory that is a file, a user the image lacks, a file the kernel cannot exec) returns that failure, not an id, and leaves nothing", async () => {
    const vol = mkdtempSync(join(tmpdir(), "corerun-detach-"));
    try {
      writeFileSync(join(vol, "not-a-program"), "echo no #! line\n", { mode: 0o755 });
      const cases: [string[], string, number, RegExp][] = [
        [["-w", "/etc/passwd"], "true", 125, /^corerun-exec: working directory \/etc\/passwd: \/etc\/passwd is not a directory \(ENOTDIR\)/m],
        [["-u", "corerun-no-such-user"], "true", 125, /^corerun-exec: --user corerun-no-such-user: no user/m],
        [["-v", `${vol}:/v:ro`, "--entrypoint", "/v/not-a-program"], "", 126, /^corerun: execve \/v\/not-a-program: ENOEXEC/m],
      ];
      for (const [args, script, code, said] of cases) {
        const r = runDetached(["--network", "none", ...args], script);
        assert.equal(r.code, code, `${args.join(" ")}: ${r.stderr}`);
        assert.match(r.stderr, said);
        assert.equal(r.stdout, "", "no id is printed");
      }
    } finally {
      rmSync(vol, { recursive: true, force: true });
    }
    await assertHostClean(scope(), [], "after starts that failed after go");
  });

  test("a monitor killed with SIGKILL: ps shows monitor-lost, cleanup removes the container and all it had", async () => {
    const r = runDetached(["-N", BRIDGE, "-P", `${PORT}:80`], "exec sleep 100");
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.trim();
    const e = entry(id)!;
    process.kill(e.detached!.monitor.pid, "SIGKILL");
    await until("ps to report the lost monitor", () => entry(id)?.statusText === "monitor-lost");
    assert.match(corerun(["ps"]).stdout, new RegExp(`^${id}\\s+-\\s+monitor-lost\\s`, "m"));
    const c = corerun(["cleanup"]);
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stdout, new RegExp(`^${id}$`, "m"));
    await assertHostClean(scope(), [e.init!.pid, e.detached!.monitor.pid], "after cleanup of a lost monitor");
  });

  test("-dit: stop then rm, rm -f, and cleanup after a killed monitor each take the pty and the attach socket with the rest", async () => {
    for (const end of ["stop", "rm -f", "monitor killed"]) {
      const r = runDetached(["-t", "-i", "--network", "none"], "exec sleep 100");
      assert.equal(r.code, 0, r.stderr);
      const id = r.stdout.trim();
      const e = entry(id)!;
      const sock = join(root, id, "attach.sock");
      assert.ok(existsSync(sock), `${end}: the monitor listens for attach`);
      if (end === "stop") {
        assert.equal(corerun(["stop", "-t", "0", id]).code, 0);
        assert.equal(entry(id)?.statusText, "exited (137)");
        assert.ok(!existsSync(sock), "the socket goes at the exit; the state stays for rm");
        assert.equal(corerun(["rm", id]).code, 0);
      } else if (end === "rm -f") {
        assert.equal(corerun(["rm", "-f", id]).code, 0);
      } else {
        process.kill(e.detached!.monitor.pid, "SIGKILL");
        await until("ps to report the lost monitor", () => entry(id)?.statusText === "monitor-lost");
        const a = corerun(["attach", id]);
        assert.equal(a.code, 125);
        assert.equal(a.stderr, `corerun: cannot attach to container ${id}: it is monitor-lost\n`);
        assert.equal(corerun(["cleanup"]).code, 0);
      }
      await assertHostClean(scope(), [e.init!.pid, e.detached!.monitor.pid], `after ${end}`);
    }
  });

  test("run -dit: an fd its caller left open without close-on-exec is held by neither the monitor nor the container", async () => {
    // A caller's shell leaves fd 200 open: corerun (Node) keeps it across exec, knowing nothing of it.
    const child = spawn("bash", ["-c", 'exec 200>&3 3>&-; exec "$0" "$@"', join(REPO, "bin/corerun"),
      "run", "--root", root, "-dit", "--rootfs", rootfs, "--cgroup-parent", PARENT, "--network", "none", "/bin/sh", "-c", "exec sleep 100", MARKER], { stdio: ["ignore", "pipe", "pipe", "pipe"] });
    let out = "";
    child.stdout!.on("data", (d) => (out += d));
    const extra = child.stdio[3] as NodeJS.ReadableStream;
    const released = new Promise<boolean>((resolve) => {
      extra.on("end", () => resolve(true));
      extra.on("close", () => resolve(true));
      extra.resume();
    });
    assert.equal(await new Promise((resolve) => child.once("exit", resolve)), 0);
    const id = out.trim();
    // Once corerun has exited, nobody else may hold the caller's fd: its reader sees the end.
    const timeout = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5000).unref());
    assert.equal(await Promise.race([released, timeout]), true, "the caller's fd is still held after corerun run -d exited");
    const e = entry(id)!;
    assert.deepEqual(readdirSync(`/proc/${e.init!.pid}/fd`).sort(), ["0", "1", "2"], "the container's first process has its stdio only");
    assert.equal(corerun(["rm", "-f", id]).code, 0);
    await assertHostClean(scope(), [e.init!.pid, e.detached!.monitor.pid], "after rm -f");
  });

  test("20 detached containers at once, all stopped and removed: nothing left on the host", async () => {
    const starts = Array.from({ length: 20 }, () => new Promise<Result>((resolve) => {
      const child = spawn(join(REPO, "bin/corerun"), ["run", "--root", root, "-d", "--rootfs", rootfs, "--cgroup-parent", PARENT, "--network", "none", "/bin/sh", "-c", "exec sleep 100", MARKER], { stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d) => (stdout += d));
      child.stderr.on("data", (d) => (stderr += d));
      child.once("exit", (code, signal) => resolve({ code, signal, stdout, stderr }));
    }));
    const results = await Promise.all(starts);
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    const ids = results.map((r) => r.stdout.trim());
    assert.equal(new Set(ids).size, 20);
    const states = psAll();
    const ours = states.filter((s) => ids.includes(s.id));
    assert.deepEqual(ours.filter((s) => s.statusText !== "running").map((s) => ({ id: s.id, status: s.statusText, exitCode: s.exitCode, init: s.init, monitor: s.detached?.monitor })), [], "each container runs once its run -d has returned");
    assert.equal(ours.length, 20);
    const pids = states.flatMap((s) => [s.init!.pid, s.detached!.monitor.pid]);
    const stop = corerun(["stop", "-t", "0", ...ids], { timeout: 120_000 });
    assert.equal(stop.code, 0, stop.stderr);
    assert.deepEqual(psAll().filter((s) => ids.includes(s.id)).map((s) => s.statusText), ids.map(() => "exited (137)"));
    assert.equal(corerun(["rm", ...ids]).code, 0);
    await assertHostClean(scope(), pids, "after 20 detached containers");
  });
});
