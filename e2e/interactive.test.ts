/**
 * Entering and talking to containers: names and id prefixes, `corerun exec` into `corerun run`
 * containers, and -t/-i under a real pty (script(1) from util-linux holds the terminal the user
 * would, and the test types into it). Real containers on the busybox rootfs, as root.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { BIN, busyboxRootfs, diskUnder, hostMountsUnder, isRoot, leftoverState, pausedProcess, processesWith, removeStateRoot, stateRoot, tool, type Result } from "./helpers.ts";
import { assertHostClean, hierarchies } from "./host.ts";

let rootfs = "";
let root = "";

function corerun(args: string[], input?: string): Result {
  return tool("corerun", ["--root", root, ...args], input === undefined ? {} : { input });
}

/** A container that runs until stopped, started by an attached corerun in the background. */
async function background(args: string[]): Promise<{ id: string; stop: () => Promise<void> }> {
  const child = spawn(join(BIN, "corerun"), ["--root", root, "--rootfs", rootfs, ...args, "/bin/sh", "-c", "echo started; exec sleep 600"], { stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  child.stderr.on("data", (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  const first = await Promise.race([new Promise((resolve) => child.stdout.once("data", resolve)), exited.then(() => undefined)]);
  assert.ok(first !== undefined, `the container did not start: ${err}`);
  const states = JSON.parse(corerun(["ps", "--json"]).stdout) as { id: string; owner: { pid: number } }[];
  const id = states.find((s) => s.owner.pid === child.pid)!.id;
  return {
    id,
    async stop() {
      corerun(["kill", id]);
      await exited;
    },
  };
}

/**
 * Runs a command under script(1) and plays a dialogue with it: each step waits until the
 * terminal's output matches (and, given a delay, a little longer: a shell echoes a line before it
 * runs it), then types. Returns the output and script's exit status.
 */
async function underPty(command: string, steps: [RegExp, string, number?][], timeoutMs = 20_000): Promise<{ out: string; code: number | null }> {
  const child: ChildProcessWithoutNullStreams = spawn("script", ["-qec", command, "/dev/null"], { stdio: "pipe" });
  let out = "";
  const waiters: (() => void)[] = [];
  child.stdout.on("data", (d) => {
    out += d;
    for (const w of waiters.splice(0)) w();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  try {
    let from = 0;
    for (const [expect, type, delayMs] of steps) {
      while (!expect.test(out.slice(from))) {
        const more = new Promise<void>((resolve) => waiters.push(resolve));
        if ((await Promise.race([more.then(() => false), exited.then(() => true)])) && !expect.test(out.slice(from))) {
          assert.fail(`the terminal ended before ${expect}: ${JSON.stringify(out)}`);
        }
      }
      from = out.length;
      if (delayMs) await new Promise((resolve) => setTimeout(resolve, delayMs));
      child.stdin.write(type);
    }
    const code = await exited;
    return { out, code };
  } finally {
    clearTimeout(timer);
    child.stdin.end();
  }
}

function assertClean(): void {
  assert.deepEqual(leftoverState(root), [], "a state directory is left");
  assert.deepEqual(hostMountsUnder(rootfs), [], "a mount of the rootfs is left on the host");
}

const status = (text: string, key: string) => new RegExp(`^${key}:\\s*(.*)$`, "m").exec(text)?.[1];

describe("corerun exec, -t and -i", { skip: !isRoot && "needs root" }, () => {
  before(() => {
    rootfs = busyboxRootfs();
    root = stateRoot();
  });
  after(() => {
    try {
      assertClean();
    } finally {
      removeStateRoot(root);
    }
  });

  test("exec into a bridged container: its eth0, hostname, environment, capabilities, seccomp and exit code; by name or id prefix", async () => {
    const c = await background(["--name", "ex-web", "--hostname", "webhost", "-e", "GREETING=hi", "-w", "/tmp"]);
    try {
      const own = corerun(["exec", "ex-web", "cat", "/proc/1/status"]).stdout;
      const r = corerun(["exec", "ex-web", "/bin/sh", "-c", "ls /sys/class/net; hostname; echo $GREETING $HOSTNAME; pwd; cat /proc/self/status"]);
      assert.equal(r.code, 0, r.stderr);
      const [, eth0] = /^(eth0)$/m.exec(r.stdout) ?? [];
      assert.equal(eth0, "eth0");
      assert.match(r.stdout, /^webhost\nhi webhost\n\/tmp$/m);
      for (const key of ["CapBnd", "CapEff", "CapPrm", "NoNewPrivs", "Seccomp", "Seccomp_filters"]) assert.equal(status(r.stdout, key), status(own, key), key);
      assert.equal(status(r.stdout, "Seccomp"), "2");
      // Its cgroup is the container's: the same line as PID 1's.
      assert.equal(corerun(["exec", "ex-web", "cat", "/proc/self/cgroup"]).stdout, corerun(["exec", "ex-web", "cat", "/proc/1/cgroup"]).stdout);
      assert.equal(corerun(["exec", c.id.slice(0, 5), "/bin/sh", "-c", "exit 3"]).code, 3);
      assert.equal(corerun(["exec", c.id, "/bin/sh", "-c", "kill -9 $$"]).code, 137);
      // -u by name from the container's /etc/passwd: no capabilities left, as in Docker; -e and -w.
      const u = corerun(["exec", "-u", "nobody", "-e", "X=1", "-w", "/", "ex-web", "/bin/sh", "-c", "id -u; echo $X; pwd; grep CapEff /proc/self/status"]);
      assert.equal(u.code, 0, u.stderr);
      assert.match(u.stdout, /^65534\n1\n\/\nCapEff:\s*0+$/m);
      // stdin: /dev/null without -i, corerun's with it.
      assert.equal(corerun(["exec", "ex-web", "cat"], "typed\n").stdout, "");
      assert.equal(corerun(["exec", "-i", "ex-web", "cat"], "typed\n").stdout, "typed\n");
    } finally {
      await c.stop();
    }
    assertClean();
  });

  test("exec's refusals: an unknown name, a missing command (127), a container that has ended", async () => {
    const unknown = corerun(["exec", "ex-none", "true"]);
    assert.equal(unknown.code, 125);
    assert.equal(unknown.stderr, 'corerun: container "ex-none" does not exist; see corerun ps -a\n');
    const c = await background(["--name", "ex-gone", "--network", "none"]);
    try {
      const missing = corerun(["exec", "ex-gone", "nosuch"]);
      assert.equal(missing.code, 127);
      assert.match(missing.stderr, /^corerun: execve nosuch: ENOENT/);
      assert.equal(missing.stderr.split("\n").length, 2, "one line");
      const noDir = corerun(["exec", "-w", "/nonexistent", "ex-gone", "pwd"]);
      assert.equal(noDir.code, 125);
      assert.match(noDir.stderr, /^corerun: chdir \/nonexistent: ENOENT/, "the directory is named, not the command");
    } finally {
      await c.stop();
    }
    const gone = corerun(["exec", c.id, "true"]);
    assert.equal(gone.code, 125);
    assert.equal(gone.stderr.split("\n").length, 2, "one line");
  });

  test("run -it under a real terminal: a prompt, the terminal's size and a resize, Ctrl-C interrupts the foreground job", async () => {
    const cmd = `stty rows 30 cols 100; (sleep 3; stty rows 40 cols 120 </dev/tty) & ${join(BIN, "corerun")} run --root ${root} --rootfs ${rootfs} --network none -it /bin/sh; echo "outer=$?"`;
    const { out, code } = await underPty(cmd, [
      [/\/ # /, "stty size; tty; echo pid=$$\n"],
      [/pid=1\r*\n/, "sleep 3.5; stty size\n"],
      [/40 120\r*\n/, "sleep 30\n"],
      // Ctrl-C as a byte: corerun's terminal is raw; the container's line discipline sends SIGINT.
      [/sleep 30\r*\n/, "\x03", 500],
      [/\/ # /, "echo rc=$?\n"],
      [/rc=130/, "exit 5\n"],
    ]);
    assert.equal(code, 0, out);
    assert.match(out, /30 100\r*\n\/dev\/pts\/0\r*\npid=1/);
    assert.match(out, /\^C/);
    assert.match(out, /outer=5/);
    assertClean();
  });

  test("run -it: ctrl-p ctrl-q detaches and the container runs on; attach again until its exit; --detach-keys; an early exit's output and status", async () => {
    const run = `stty rows 30 cols 100; ${join(BIN, "corerun")} run --root ${root} --rootfs ${rootfs} --network none -it --name fg-box /bin/sh; echo "outer=$?"`;
    const first = await underPty(run, [
      [/\/ # /, "echo fi''rst; stty size\n"],
      [/first\r\n30 100\r\n/, "\x10\x11"],
    ]);
    assert.equal(first.code, 0, first.out);
    assert.match(first.out, /outer=0/, "ctrl-p ctrl-q: run -it ends with 0");
    const states = JSON.parse(corerun(["ps", "--json"]).stdout) as { id: string; config: { name?: string }; statusText: string }[];
    const box = states.find((s) => s.config.name === "fg-box");
    assert.equal(box?.statusText, "running", "the container runs on");
    const again = await underPty(`${join(BIN, "corerun")} attach --root ${root} fg-box; echo "outer=$?"`, [[/(?:)/, "echo ag''ain; exit 5\n"]]);
    assert.match(again.out, /again\r\n/);
    assert.match(again.out, /outer=5/, "attach ends with the container's status");
    const exited = JSON.parse(corerun(["ps", "-a", "--json"]).stdout) as { id: string; statusText: string }[];
    assert.equal(exited.find((s) => s.id === box!.id)?.statusText, "exited (5)", "a detached run -it is kept as exited, as run -d");
    assert.equal(corerun(["rm", "fg-box"]).code, 0);

    // --detach-keys: ctrl-p ctrl-q then reach the shell, ctrl-x detaches; stop and rm end it.
    const keyed = await underPty(`${join(BIN, "corerun")} run --root ${root} --rootfs ${rootfs} --network none -it --detach-keys ctrl-x --name fg-keys /bin/sh; echo "outer=$?"`, [
      [/\/ # /, "\x10\x11echo st''ill\n"],
      [/still\r\n/, "\x18"],
    ]);
    assert.match(keyed.out, /outer=0/, keyed.out);
    assert.equal(corerun(["stop", "-t", "1", "fg-keys"]).code, 0);
    assert.equal(corerun(["rm", "fg-keys"]).code, 0);

    // Output written before the client could read it, and the status of a command that ends at once;
    // --rm or not, an attached run -it leaves nothing.
    for (const rm of [[], ["--rm"]]) {
      const early = await underPty(`${join(BIN, "corerun")} run --root ${root} --rootfs ${rootfs} --network none -it ${rm.join(" ")} /bin/sh -c 'echo early; exit 3'; echo "outer=$?"`, []);
      assert.match(early.out, /^early\r\n/m, early.out);
      assert.match(early.out, /outer=3/, early.out);
      assertClean();
      assert.deepEqual(JSON.parse(corerun(["ps", "-a", "--json"]).stdout), []);
    }
    assertClean();
  });

  test("run -it interrupted while it starts (SIGINT, SIGTERM; before and after its container runs): the container is killed and removed, nothing left", async () => {
    const parent = `corerun-int-${process.pid}`;
    const marker = `int-marker-${process.pid}`;
    const scope = { root, parent, markers: [marker] };
    const start = (env: NodeJS.ProcessEnv = {}) => {
      const child = spawn(join(BIN, "corerun"), ["run", "--root", root, "--rootfs", rootfs, "--network", "none", "--cgroup-parent", parent, "-it", "/bin/sh", "-c", "echo up; while :; do sleep 1; done", marker],
        { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, ...env } });
      let out = "";
      child.stdout.on("data", (d) => (out += d));
      child.stderr.on("data", (d) => (out += d));
      const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.once("exit", (code, sig) => resolve(sig ?? code)));
      return { child, exited, out: () => out };
    };
    const settledClean = async (what: string) => {
      // The monitor notices the client's end, kills the first process and removes the container.
      for (let i = 0; i < 100 && (processesWith(root).length || leftoverState(root).length); i++) await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(JSON.parse(corerun(["ps", "-a", "--json"]).stdout), [], `${what}: no container is left, running or exited`);
      await assertHostClean(scope, [], what);
    };
    try {
      // Its container runs, its client has not attached: the start is held at its last step (the
      // first process runs its command) while the client gets a SIGINT, as a Ctrl-C typed then.
      const held = start({ CORERUN_FAULT_PAUSE: "detach:pid-reported" });
      const paused = await pausedProcess(root);
      assert.ok(leftoverState(root).length === 1 && processesWith(marker).length > 0, "the container runs");
      held.child.kill("SIGINT");
      assert.equal(await held.exited, "SIGINT");
      process.kill(paused, "SIGCONT");
      await settledClean("after SIGINT once the container ran, before the attach");
      assert.doesNotMatch(held.out(), /up/, "its output was never shown");
      // At once, then with the start held at its steps before the client says its terminal is up
      // (the monitor forked, the tree cloned, the id reported, the client connected): each is
      // before the attach, so each must end the container. After the attach, the client going is a
      // detach (the container runs on, as Docker's), which a timed kill could reach on a fast start.
      const now = start();
      now.child.kill("SIGINT");
      await now.exited;
      await settledClean("after SIGINT at once");
      for (const [sig, point] of [["SIGTERM", "monitor:forked"], ["SIGINT", "corerun:cloned"], ["SIGTERM", "detach:id-reported"], ["SIGINT", "attach:connected"]] as const) {
        const run = start({ CORERUN_FAULT_PAUSE: point });
        const paused = await pausedProcess(root);
        run.child.kill(sig);
        // The client itself may be the one held: the signal is delivered when it goes on.
        if (paused === run.child.pid) process.kill(paused, "SIGCONT");
        await run.exited;
        if (paused !== run.child.pid) process.kill(paused, "SIGCONT");
        await settledClean(`after ${sig} with the start held at ${point}`);
      }
    } finally {
      // A failed check leaves its container: it goes first, then the cgroup parent it was in.
      if (leftoverState(root).length) corerun(["cleanup", "--force"]);
      for (const h of hierarchies()) if (existsSync(join(h, parent))) rmdirSync(join(h, parent));
    }
  });

  test("run -dt under a real terminal: the pty starts at the client terminal's size", async () => {
    const { out, code } = await underPty(`stty rows 33 cols 101; ${join(BIN, "corerun")} run --root ${root} --rootfs ${rootfs} --network none -dt --name dt-size /bin/sh -c 'stty size'`, []);
    assert.equal(code, 0, out);
    const id = out.trim();
    for (let i = 0; i < 100 && !/^exited/.test(JSON.parse(corerun(["ps", "-a", "--json"]).stdout).find((s: { id: string }) => s.id === id)?.statusText ?? ""); i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(corerun(["logs", "dt-size"]).stdout, "33 101\r\n");
    assert.equal(corerun(["rm", "dt-size"]).code, 0);
    assertClean();
  });

  test("exec -it under a real terminal: a prompt, job control's Ctrl-C, its exit code; -t without a terminal relays as it is", async () => {
    const c = await background(["--name", "ex-tty", "--network", "none"]);
    try {
      const cmd = `stty rows 25 cols 90; ${join(BIN, "corerun")} exec --root ${root} -it ex-tty /bin/sh; echo "outer=$?"`;
      const { out, code } = await underPty(cmd, [
        [/\/ # /, "stty size; tty\n"],
        [/\/dev\/pts\/\d+\r*\n/, "sleep 30\n"],
        [/sleep 30\r*\n/, "\x03", 500],
        [/\/ # /, "echo rc=$?\n"],
        [/rc=130/, "exit 6\n"],
      ]);
      assert.equal(code, 0, out);
      assert.match(out, /25 90\r*\n/);
      assert.match(out, /outer=6/);
      // No terminal to take a size from: 24x80, not 0x0.
      const piped = corerun(["exec", "-t", "ex-tty", "/bin/sh", "-c", "tty; stty size; echo out"]);
      assert.equal(piped.code, 0, piped.stderr);
      assert.match(piped.stdout, /^\/dev\/pts\/\d+\r\n24 80\r\nout\r\n$/);
    } finally {
      await c.stop();
    }
    assertClean();
  });

  test("run -dit and attach under a real terminal: typed commands, its size and a resize, ctrl-p ctrl-q detaches, two clients, attach again until the exit", async () => {
    const started = corerun(["run", "--rootfs", rootfs, "--network", "none", "-dit", "--name", "at-box", "/bin/sh"]);
    assert.equal(started.code, 0, started.stderr);
    const id = started.stdout.trim();
    assert.match(id, /^[0-9a-f]{12}$/);
    const attach = `${join(BIN, "corerun")} attach --root ${root} at-box; echo "outer=$?"`;
    // What is typed before attach runs waits in the terminal (and is echoed there, quotes and all).
    const first = await underPty(`stty rows 30 cols 100; (sleep 3; stty rows 40 cols 120 </dev/tty) & ${attach}`, [
      [/(?:)/, "echo hel''lo; tty; stty size\n"],
      // Unchanged bytes: the pty's own \r\n, not \r\r\n (the attach terminal's output processing is off).
      [/hello\r\n\/dev\/pts\/0\r\n30 100\r\n/, "sleep 3.5; stty size\n"],
      [/40 120\r\n/, "\x10\x11"],
    ]);
    assert.equal(first.code, 0, first.out);
    assert.match(first.out, /outer=0/, "ctrl-p ctrl-q: attach ends with 0");
    const states = JSON.parse(corerun(["ps", "--json"]).stdout) as { id: string; statusText: string }[];
    assert.equal(states.find((s) => s.id === id)?.statusText, "running", "the container runs on");
    const [info] = JSON.parse(corerun(["inspect", "at-box"]).stdout) as { Config: { Tty: boolean; OpenStdin: boolean }; AttachSocket: string }[];
    assert.deepEqual([info!.Config.Tty, info!.Config.OpenStdin, info!.AttachSocket], [true, true, join(root, id, "attach.sock")]);

    // Two clients at once: what the container writes reaches both.
    const clients = [0, 1].map(() => {
      const child = spawn(join(BIN, "corerun"), ["attach", "--root", root, "--no-stdin", "at-box"], { stdio: ["ignore", "pipe", "pipe"] });
      const seen = { out: "", exited: new Promise((resolve) => child.once("exit", resolve)) };
      child.stdout.on("data", (d) => (seen.out += d));
      return { child, seen };
    });
    try {
      while (!clients.every((c) => c.seen.out.includes("to-both"))) {
        const w = corerun(["exec", "at-box", "/bin/sh", "-c", "echo to-both > /proc/1/fd/0"]);
        assert.equal(w.code, 0, w.stderr);
        // The clients' output is read between the (synchronous) execs.
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } finally {
      for (const c of clients) c.child.kill("SIGTERM");
      await Promise.all(clients.map((c) => c.seen.exited));
    }

    const second = await underPty(attach, [[/(?:)/, "echo ag''ain; exit 7\n"]]);
    assert.match(second.out, /again\r\n/);
    assert.match(second.out, /outer=7/, "attach ends with the container's status");
    const exited = JSON.parse(corerun(["ps", "-a", "--json"]).stdout) as { id: string; statusText: string }[];
    assert.equal(exited.find((s) => s.id === id)?.statusText, "exited (7)");
    assert.ok(!existsSync(join(root, id, "attach.sock")), "the attach socket goes at the exit");
    const logs = corerun(["logs", "at-box"]);
    assert.match(logs.stdout, /^hello\r$/m, "the pty's output is logged as stdout");
    assert.match(logs.stdout, /^again\r$/m);
    const late = corerun(["attach", "at-box"]);
    assert.equal(late.code, 125);
    assert.equal(late.stderr, "corerun: cannot attach to container at-box: it is exited (7) (corerun logs shows its output)\n");
    assert.equal(corerun(["rm", "at-box"]).code, 0);
    assertClean();
  });

  test("run -di: attach types into the container's stdin; --sig-proxy passes a signal to it", async () => {
    const started = corerun(["run", "--rootfs", rootfs, "--network", "none", "-di", "--init", "--name", "at-cat", "/bin/cat"]);
    assert.equal(started.code, 0, started.stderr);
    const child = spawn(join(BIN, "corerun"), ["attach", "--root", root, "at-cat"], { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    const echoed = new Promise<void>((resolve) => child.stdout.on("data", (d) => ((out += d), out.includes("typed line\n") && resolve())));
    child.stdin.write("typed line\n");
    await echoed;
    child.kill("SIGTERM");
    assert.equal(await exited, 143, "cat got the SIGTERM attach received, and attach exits with its status");
    assert.equal(corerun(["logs", "at-cat"]).stdout, "typed line\n");
    assert.equal(corerun(["rm", "at-cat"]).code, 0);
    assertClean();
  });

  test("exec -it: ctrl-p ctrl-q detaches and leaves the process running; --detach-keys changes the keys", async () => {
    const c = await background(["--name", "ex-det", "--network", "none"]);
    try {
      const exec = (keys: string) => `${join(BIN, "corerun")} exec --root ${root} -it ${keys} ex-det /bin/sh; echo "outer=$?"`;
      const first = await underPty(exec(""), [
        [/\/ # /, "echo in-exec $$\n"],
        [/in-exec \d+\r\n/, "\x10\x11"],
      ]);
      assert.match(first.out, /outer=0/);
      const pid = /in-exec (\d+)\r\n/.exec(first.out)![1]!;
      assert.equal(corerun(["exec", "ex-det", "kill", "-0", pid]).code, 0, "the detached shell runs on");
      // Other keys: ctrl-x alone detaches.
      const second = await underPty(exec("--detach-keys ctrl-x"), [
        [/\/ # /, "echo other-keys $$\n"],
        [/other-keys \d+\r\n/, "\x18"],
      ]);
      assert.match(second.out, /outer=0/);
    } finally {
      await c.stop();
    }
    // The holders of the detached shells' terminals end with them.
    while (processesWith("corerun-monitor --drain").length) await new Promise((resolve) => setTimeout(resolve, 50));
    assertClean();
  });

  test("stats --no-stream: a busy container's CPU %, its memory limit, its network bytes, the bytes it wrote to disk and its tasks; --json; an unknown name", async () => {
    const busy = await background(["--name", "st-busy", "-m", "64", "--network", "none"]);
    const idle = await background(["--name", "st-idle"]);
    try {
      // Load after the start: the busy loop runs in an exec'd shell of the same cgroup.
      const loop = spawn(join(BIN, "corerun"), ["exec", "--root", root, "-d", "st-busy", "/bin/sh", "-c", "while :; do :; done"], { stdio: "ignore" });
      await new Promise((resolve) => loop.once("exit", resolve));
      // 4 MiB past the page cache, so that the disk's counters see them now; the file goes again,
      // as the rootfs is shared with the other tests. On no block device (tmpfs) nothing counts.
      const onDisk = diskUnder(rootfs) !== undefined;
      if (onDisk) {
        const dd = corerun(["exec", "st-busy", "/bin/sh", "-c", "dd if=/dev/zero of=/st-written bs=1M count=4 oflag=direct && rm /st-written"]);
        assert.equal(dd.code, 0, dd.stderr);
      }
      const r = corerun(["stats", "--no-stream"]);
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trim().split("\n");
      assert.match(lines[0]!, /^CONTAINER ID +NAME +CPU % +MEM USAGE \/ LIMIT +MEM % +NET I\/O +BLOCK I\/O +PIDS$/);
      const row = (name: string) => lines.find((l) => l.split(/\s+/)[1] === name)!.split(/\s{2,}/);
      const [, , cpu, mem, , net, block, pids] = row("st-busy");
      const written = /^\S+ \/ (\d+(?:\.\d+)?)MB$/.exec(block!);
      if (onDisk) assert.ok(written && Number(written[1]) >= 4.19, `4 MiB written with O_DIRECT: ${block}`);
      assert.ok(Number(cpu!.replace("%", "")) > 50, `a busy loop uses most of a core: ${cpu}`);
      assert.match(mem!, / \/ 64MiB$/);
      assert.equal(net, "0B / 0B", "--network none: lo only, which is not counted");
      assert.equal(pids, "2");
      const [, , idleCpu, , , idleNet] = row("st-idle");
      assert.ok(Number(idleCpu!.replace("%", "")) < 20, `an idle container: ${idleCpu}`);
      assert.match(idleNet!, /^\d+(\.\d+)?k?B \/ \d+(\.\d+)?k?B$/);
      const j = corerun(["stats", "--no-stream", "--json", "st-idle"]);
      const objs = j.stdout.trim().split("\n").map((l) => JSON.parse(l) as { id: string; name: string; pids: number });
      assert.deepEqual(objs.map((o) => [o.id, o.name, o.pids]), [[idle.id, "st-idle", 1]]);
      const unknown = corerun(["stats", "--no-stream", "st-none"]);
      assert.equal(unknown.code, 125);
      assert.equal(unknown.stderr, 'corerun: container "st-none" does not exist; see corerun ps -a\n');
    } finally {
      await busy.stop();
      await idle.stop();
    }
    assertClean();
  });

  test("--ulimit: the command's limits, and exec's; a bad name is refused before anything exists", async () => {
    const r = corerun(["--rootfs", rootfs, "--network", "none", "--ulimit", "nofile=512:1024", "--ulimit", "core=0", "/bin/sh", "-c", "ulimit -n; ulimit -Hn; ulimit -c"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "512\n1024\n0\n");
    const c = await background(["--name", "ul", "--network", "none", "--ulimit", "nproc=100:200"]);
    try {
      const e = corerun(["exec", "ul", "/bin/sh", "-c", "grep 'Max processes' /proc/self/limits"]);
      assert.match(e.stdout, /^Max processes\s+100\s+200\s+processes/);
    } finally {
      await c.stop();
    }
    const bad = corerun(["--rootfs", rootfs, "--ulimit", "files=1", "/bin/true"]);
    assert.equal(bad.code, 125);
    assert.match(bad.stderr, /^corerun: --ulimit files=1: unknown limit "files"; use one of as, core, /);
    assertClean();
  });

  test("--init: a reaper as PID 1, the command its child; SIGTERM reaches a command that ignores it as PID 1; statuses pass through", async () => {
    const r = corerun(["--rootfs", rootfs, "--network", "none", "--init", "/bin/sh", "-c", "echo $$; cat /proc/1/comm; touch /sbin/docker-init 2> /dev/null || echo read-only; exit 7"]);
    assert.equal(r.code, 7, r.stderr);
    const [pid, comm, ro] = r.stdout.trim().split("\n");
    assert.notEqual(pid, "1");
    assert.equal(comm, "docker-init");
    assert.match(ro!, /read-only/);
    const child = spawn(join(BIN, "corerun"), ["--root", root, "--rootfs", rootfs, "--network", "none", "--init", "/bin/sh", "-c", "echo started; exec sleep 600"], { stdio: ["ignore", "pipe", "pipe"] });
    await new Promise((resolve) => child.stdout.once("data", resolve));
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    assert.equal(await exited, 143);
    assertClean();
  });

  test("--pid host: the command sees the host's processes; what it leaves behind is killed at its end, and by kill of a detached one; --init is its parent there; with a user namespace, refused", () => {
    const r = corerun(["--rootfs", rootfs, "--network", "none", "--pid", "host", "/bin/sh", "-c", "echo $$; cat /proc/1/comm; test -d /proc/$PPID && echo parent-seen; sleep 600 & echo $!"]);
    assert.equal(r.code, 0, r.stderr);
    const [pid, comm, parent, left] = r.stdout.trim().split("\n");
    assert.equal(readFileSync("/proc/1/comm", "utf8").trim(), comm, "the host's PID 1");
    assert.notEqual(pid, "1");
    assert.equal(parent, "parent-seen", "its parent, outside the container, is in its /proc");
    // Killed with the cgroup: gone, or a zombie the host's init has yet to reap.
    const state = (() => {
      try {
        return readFileSync(`/proc/${left}/stat`, "utf8").split(" ")[2];
      } catch {
        return "gone";
      }
    })();
    assert.ok(state === "gone" || state === "Z", `the background sleep ${left} is ${state}`);
    const init = corerun(["--rootfs", rootfs, "--network", "none", "--pid", "host", "--init", "/bin/sh", "-c", "cat /proc/$PPID/comm"]);
    assert.equal(init.code, 0, init.stderr);
    assert.equal(init.stdout, "docker-init\n");
    // kill ends every process of the cgroup, not only the first (whose end alone would not).
    const d = corerun(["--rootfs", rootfs, "--network", "none", "--pid", "host", "-d", "--name", "ph-kill", "/bin/sh", "-c", "sleep 600 & exec sleep 601"]);
    assert.equal(d.code, 0, d.stderr);
    try {
      const [info] = JSON.parse(corerun(["inspect", "ph-kill"]).stdout) as { Cgroup: { Paths: Record<string, string> } }[];
      const procs = join(info!.Cgroup.Paths[""] ?? info!.Cgroup.Paths.pids!, "cgroup.procs");
      let pids: string[] = [];
      for (let i = 0; i < 100 && pids.length < 2; i++) {
        pids = readFileSync(procs, "utf8").trim().split("\n").filter(Boolean);
        if (pids.length < 2) spawnSync("sleep", ["0.05"]);
      }
      assert.equal(pids.length, 2, `the shell's sleeps: ${pids.join(" ")}`);
      assert.equal(corerun(["kill", "ph-kill"]).code, 0);
      const alive = () => pids.filter((p) => existsSync(`/proc/${p}`) && readFileSync(`/proc/${p}/stat`, "utf8").split(" ")[2] !== "Z");
      for (let i = 0; i < 100 && alive().length; i++) spawnSync("sleep", ["0.05"]);
      assert.deepEqual(alive(), [], "both sleeps ended");
    } finally {
      corerun(["rm", "-f", "ph-kill"]);
    }
    const refused = corerun(["--rootfs", rootfs, "--network", "none", "--pid", "host", "--userns", "auto", "/bin/true"]);
    assert.equal(refused.code, 125);
    assert.match(refused.stderr, /^corerun: --pid host: a container with a user namespace cannot mount that PID namespace's \/proc/);
    assert.equal(refused.stderr.split("\n").length, 2, "one line");
    assertClean();
  });

  test("--ipc, --uts and --pid container: the host's IPC namespace and /dev/shm, none, a shareable container's (both ways), its PID namespace; the host's hostname; refusals in one line", () => {
    const run = (args: string[], script: string) => corerun(["--rootfs", rootfs, "--network", "none", ...args, "/bin/sh", "-c", script]);
    const ns = (t: string) => readlinkSync(`/proc/self/ns/${t}`);
    const hostFile = `/dev/shm/corerun-e2e-${process.pid}`;
    writeFileSync(hostFile, "from the host\n");
    try {
      const host = run(["--ipc", "host", "--uts", "host"], `readlink /proc/self/ns/ipc; readlink /proc/self/ns/uts; cat ${hostFile}; hostname`);
      assert.equal(host.code, 0, host.stderr);
      assert.deepEqual(host.stdout.trim().split("\n"), [ns("ipc"), ns("uts"), "from the host", hostname()]);
    } finally {
      rmSync(hostFile, { force: true });
    }
    const none = run(["--ipc", "none"], "readlink /proc/self/ns/ipc; grep -c ' /dev/shm ' /proc/self/mounts; test -e /dev/shm || echo no-shm");
    assert.deepEqual(none.stdout.trim().split("\n").slice(1), ["0", "no-shm"], none.stderr);
    assert.notEqual(none.stdout.split("\n")[0], ns("ipc"));

    const d = corerun(["--rootfs", rootfs, "--network", "none", "-d", "--name", "ipc-donor", "--ipc", "shareable", "/bin/sh", "-c", "echo hello > /dev/shm/greet; exec sleep 600"]);
    assert.equal(d.code, 0, d.stderr);
    const donor = d.stdout.trim();
    try {
      const inDonor = (script: string) => corerun(["exec", "ipc-donor", "/bin/sh", "-c", script]).stdout.trim();
      const joined = run(["--ipc", "container:ipc-donor", "--pid", "container:ipc-donor"], "readlink /proc/self/ns/ipc; readlink /proc/self/ns/pid; cat /dev/shm/greet; echo back > /dev/shm/reply; cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$");
      assert.equal(joined.code, 0, joined.stderr);
      const [ipc, pid, greet, one, self] = joined.stdout.trim().split("\n");
      assert.deepEqual([ipc, pid], inDonor("readlink /proc/self/ns/ipc; readlink /proc/self/ns/pid").split("\n"));
      assert.equal(greet, "hello");
      assert.equal(one, "sleep 600 ", "the donor's first process is PID 1");
      assert.notEqual(self, "1");
      assert.equal(inDonor("cat /dev/shm/reply"), "back");
      // The same through --print-script's chain: corerun-ns --ipc-ns and --pid-ns.
      const script = run(["--print-script", "--ipc", "container:ipc-donor", "--pid", "container:ipc-donor"], "readlink /proc/self/ns/ipc; readlink /proc/self/ns/pid; cat /dev/shm/greet");
      assert.equal(script.code, 0, script.stderr);
      assert.match(script.stdout, /--ipc-ns \/proc\/\d+\/ns\/ipc --pid-ns \/proc\/\d+\/ns\/pid/);
      const chained = spawnSync("bash", ["-c", script.stdout], { encoding: "utf8" });
      assert.equal(chained.status, 0, chained.stderr);
      assert.deepEqual(chained.stdout.trim().split("\n"), [ipc, pid, "hello"]);
      const [info] = JSON.parse(corerun(["inspect", "ipc-donor"]).stdout) as { HostConfig: { IpcMode: string } }[];
      assert.equal(info!.HostConfig.IpcMode, "shareable");

      const p = corerun(["--rootfs", rootfs, "--network", "none", "-d", "--name", "ipc-private", "sleep", "600"]);
      assert.equal(p.code, 0, p.stderr);
      try {
        const refusals: [string[], RegExp][] = [
          [["--ipc", "container:ipc-private"], /^corerun: --ipc container:ipc-private: container [0-9a-f]{12}'s IPC namespace is not shareable; start it with --ipc shareable$/m],
          [["--ipc", "container:nope"], /^corerun: --ipc container:nope: no running container has the name or id "nope"; see corerun ps$/m],
          [["--ipc", "bogus"], /^corerun: --ipc bogus: unknown mode; use private, shareable, none, host or container:NAME$/m],
          [["--uts", "host", "--hostname", "x"], /^corerun: --hostname and --uts host exclude each other/],
          [["--uts", "container:ipc-donor"], /^corerun: --uts container:ipc-donor: unknown mode; give host$/m],
          [["--pid", "container:ipc-donor", "--userns", "auto"], /^corerun: --pid container:ipc-donor: a container with a user namespace cannot mount that PID namespace's \/proc/],
        ];
        for (const [args, message] of refusals) {
          const r = run(args, "true");
          assert.equal(r.code, 125, args.join(" "));
          assert.match(r.stderr, message);
          assert.equal(r.stderr.split("\n").length, 2, "one line");
        }
      } finally {
        corerun(["rm", "-f", "ipc-private"]);
      }
    } finally {
      corerun(["rm", "-f", "ipc-donor"]);
    }
    assert.ok(!readFileSync("/proc/self/mounts", "utf8").includes(join(root, donor, "shm")), "the shareable /dev/shm is unmounted");
    assertClean();
  });

  test("--read-only with --rootfs: / cannot be written, a volume and /dev can be written; the rootfs is left as it was", () => {
    const vol = mkdtempSync(join(tmpdir(), "corerun-ro-"));
    try {
      // mountinfo's fields 4 and 5 are the mount's root and mount point, 6 its options.
      const r = corerun(["--rootfs", rootfs, "--network", "none", "--read-only", "-v", `${vol}:/data`, "/bin/sh", "-c",
        "touch /x 2> /dev/null || echo root-ro; touch /tmp/x 2> /dev/null || echo tmp-ro; echo hi > /data/f && echo data-rw; echo > /dev/null && echo dev-ok; " +
          "awk '$5 == \"/\" { print $6 }' /proc/self/mountinfo"]);
      assert.equal(r.code, 0, r.stderr);
      const [flags, ...said] = r.stdout.trim().split("\n").reverse();
      assert.deepEqual(said.reverse(), ["root-ro", "tmp-ro", "data-rw", "dev-ok"]);
      // Not nodev: as in Docker, the device cgroup decides which nodes open (security.test.ts).
      assert.deepEqual(flags!.split(",").filter((f) => ["ro", "rw", "nodev", "nosuid"].includes(f)).sort(), ["ro"], flags);
      assert.equal(readFileSync(join(vol, "f"), "utf8"), "hi\n");
      assert.ok(!existsSync(join(rootfs, "x")));
    } finally {
      rmSync(vol, { recursive: true, force: true });
    }
    assertClean();
  });

  test("run -t without a terminal: the command has a pty; -t with --print-script is refused", () => {
    const r = corerun(["--rootfs", rootfs, "--network", "none", "-t", "/bin/sh", "-c", "tty; test -t 0 && echo stdin-is-a-tty; stty size"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "/dev/pts/0\r\nstdin-is-a-tty\r\n24 80\r\n");
    const s = corerun(["--print-script", "-t", "/bin/true"]);
    assert.equal(s.code, 125);
    assert.match(s.stderr, /^corerun: --print-script does not print -t/);
    assertClean();
  });
});
