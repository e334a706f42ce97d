/* eslint-disable @typescript-eslint/no-explicit-any -- bundles are written and changed as plain JSON, field by field */
/**
 * corerun as an OCI runtime, driven the way engines drive runc: bundles with a config.json,
 * create (the process waits), start, state, exec, kill, pause, delete, with --root, --log and
 * --log-format json. Each test checks what the container saw and that delete left nothing: no
 * state, no cgroup, no process.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { ociIds } from "@corerun/state";
import { BIN, busyboxRootfs, hostMountsUnder, isRoot, leftoverState, removeStateRoot, run, stateRoot, tool, until, type Result } from "./helpers.ts";

let rootfs = "";
let root = "";
let work = "";
const PARENT = `corerun-e2e-oci-${process.pid}`;

interface TraceEv {
  name: string;
  ph: string;
  ts: number;
  dur?: number;
  pid: number;
  args?: Record<string, unknown>;
}
const CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_CHROOT", "CAP_MKNOD", "CAP_AUDIT_WRITE", "CAP_SETFCAP"];

/** A config.json as `runc spec` and containerd write them, around the busybox rootfs. */
function config(id: string, args: string[], change: (c: Record<string, any>) => void = () => {}): Record<string, any> {
  const c: Record<string, any> = {
    ociVersion: "1.0.2",
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args,
      env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
      cwd: "/",
      capabilities: { bounding: [...CAPS], effective: [...CAPS], permitted: [...CAPS] },
      rlimits: [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: rootfs, readonly: false },
    hostname: "oci",
    mounts: [
      { destination: "/proc", type: "proc", source: "proc" },
      { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
      { destination: "/dev/pts", type: "devpts", source: "devpts", options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
      { destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
      { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
      { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
    ],
    linux: {
      resources: { devices: [{ allow: false, access: "rwm" }] },
      cgroupsPath: `/${PARENT}/${id}`,
      namespaces: [{ type: "pid" }, { type: "network" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }],
      maskedPaths: ["/proc/kcore", "/proc/keys", "/sys/firmware"],
      readonlyPaths: ["/proc/sys", "/proc/sysrq-trigger"],
    },
  };
  change(c);
  return c;
}

/** A bundle directory holding config.json (the rootfs is shared, by absolute path). */
function bundle(id: string, args: string[], change?: (c: Record<string, any>) => void): string {
  const dir = mkdtempSync(join(work, "bundle-"));
  writeFileSync(join(dir, "config.json"), JSON.stringify(config(id, args, change), null, 2));
  return dir;
}

function corerun(args: string[], opts: Parameters<typeof tool>[2] = {}): Result {
  return tool("corerun", ["--root", root, ...args], opts);
}

/** create with the container's stdout and stderr going to a file, as a shim gives it pipes. */
function create(id: string, dir: string, extra: string[] = []): { r: Result; out: string } {
  const out = join(dir, "out.txt");
  const fd = openSync(out, "w");
  try {
    const r = tool("corerun", ["--root", root, "create", "--bundle", dir, "--pid-file", join(dir, "init.pid"), ...extra, id], { stdio: ["ignore", fd, fd] });
    return { r: { ...r, stderr: readFileSync(out, "utf8") }, out };
  } finally {
    closeSync(fd);
  }
}

function state(id: string): Record<string, any> {
  const r = corerun(["state", id]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

async function waitStatus(id: string, want: string): Promise<Record<string, any>> {
  for (let i = 0; i < 100; i++) {
    const s = state(id);
    if (s.status === want) return s;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`${id} did not become ${want}: ${JSON.stringify(state(id))}`);
}

/** The container's cgroup directories that still exist, in any hierarchy. */
function cgroupsLeft(id: string): string[] {
  return readdirSync("/sys/fs/cgroup").map((h) => join("/sys/fs/cgroup", h, PARENT, id)).filter((d) => existsSync(d));
}

/** The pid is a member of the container's cgroup in every hierarchy it has one in (at least the unified one and memory, cpu, pids). */
function assertInCgroups(id: string, pid: string): void {
  const dirs = cgroupsLeft(id);
  assert.ok(dirs.length >= 4, `hierarchies: ${dirs.join(" ")}`);
  for (const d of dirs) assert.ok(readFileSync(join(d, "cgroup.procs"), "utf8").split("\n").includes(pid), `${pid} in ${d}/cgroup.procs`);
}

function assertGone(id: string, dir: string): void {
  assert.deepEqual(leftoverState(root), [], "a state directory is left");
  assert.deepEqual(cgroupsLeft(id), [], "a cgroup is left");
  assert.deepEqual(hostMountsUnder(dir), [], "a mount of the bundle is left");
  assert.equal(corerun(["state", id]).code === 0, false, "state still answers");
}

describe("corerun as an OCI runtime", { skip: !isRoot && "needs root" }, () => {
  before(() => {
    rootfs = busyboxRootfs();
    root = stateRoot();
    work = mkdtempSync(join(tmpdir(), "corerun-e2e-oci-"));
  });
  after(() => {
    try {
      assert.deepEqual(leftoverState(root), []);
    } finally {
      removeStateRoot(root);
      // Only what this file made: its bundles, and its cgroup parent in each hierarchy.
      if (work.startsWith(join(tmpdir(), "corerun-e2e-oci-"))) rmSync(work, { recursive: true, force: true });
      for (const h of readdirSync("/sys/fs/cgroup")) {
        const p = join("/sys/fs/cgroup", h, PARENT);
        if (existsSync(p)) rmdirSync(p);
      }
    }
  });

  test("create leaves the process waiting in its cgroup; start runs it; delete leaves nothing", async () => {
    const dir = bundle("life", ["/bin/sh", "-c", "echo hello from $(hostname) as $$; exit 3"]);
    const { r, out } = create("life", dir);
    assert.equal(r.code, 0, r.stderr);
    const pid = readFileSync(join(dir, "init.pid"), "utf8");
    assert.match(pid, /^\d+$/, "the pid file holds digits only");
    const s = state("life");
    assert.equal(s.status, "created");
    assert.equal(s.pid, Number(pid));
    assert.equal(s.bundle, dir);
    assert.equal(s.id, "life");
    assert.match(readFileSync(`/proc/${pid}/cgroup`, "utf8"), new RegExp(`/${PARENT}/life$`, "m"), "in its cgroup before start");
    // Device rules only: it was moved as it was cloned (cloneJoin); in every hierarchy once create returns.
    assertInCgroups("life", pid);
    // With no startContainer hook, the process waits for start as corerun-exe (its sealed copy):
    // one thread, only the exec left; not corerun-exec's Node.
    await until("the first process to wait as corerun-exe", () => readlinkSync(`/proc/${pid}/exe`).startsWith("/memfd:corerun-exe"), 5_000, 20);
    assert.match(readFileSync(`/proc/${pid}/status`, "utf8"), /^Threads:\s+1$/m);
    assert.equal(corerun(["start", "life"]).code, 0);
    const done = await waitStatus("life", "stopped");
    assert.equal(done.pid, 0);
    assert.equal(readFileSync(out, "utf8"), "hello from oci as 1\n");
    const d = corerun(["delete", "life"]);
    assert.equal(d.code, 0, d.stderr);
    assertGone("life", dir);
  });

  test("with pids, CPU, cpuset and memory limits, the process is in the container's cgroups and the limits written before create returns; under 32 MiB of memory it moves once loaded (none of its load charged there)", () => {
    const limitOf = (id: string, controller: string, file: string) => {
      const d = cgroupsLeft(id).find((p) => p.includes(`/${controller}/`));
      assert.ok(d, `a ${controller} hierarchy: ${cgroupsLeft(id).join(" ")}`);
      return readFileSync(join(d, file), "utf8").trim();
    };
    const limited = (id: string, memory: number) =>
      bundle(id, ["/bin/true"], (c) => (c.linux.resources = { ...c.linux.resources, pids: { limit: 3 }, cpu: { quota: 50_000, period: 100_000, cpus: "0" }, memory: { limit: memory, reservation: 8 << 20 } }));
    for (const [id, memory] of [["limited", 64 << 20], ["small", 16 << 20]] as const) {
      const dir = limited(id, memory);
      const { r } = create(id, dir);
      assert.equal(r.code, 0, r.stderr);
      try {
        const pid = readFileSync(join(dir, "init.pid"), "utf8");
        assertInCgroups(id, pid);
        // pids.max below the waiting Node's threads: the kernel takes it, and the exec ends them.
        assert.equal(limitOf(id, "pids", "pids.max"), "3");
        assert.equal(limitOf(id, "cpu", "cpu.cfs_quota_us"), "50000");
        assert.equal(limitOf(id, "memory", "memory.limit_in_bytes"), String(memory));
        assert.equal(limitOf(id, "memory", "memory.soft_limit_in_bytes"), String(8 << 20));
        assert.equal(limitOf(id, "cpuset", "cpuset.cpus"), "0");
        // No memory.swap in the config: memory+swap left unlimited, as runc leaves it.
        if (existsSync("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")) assert.equal(limitOf(id, "memory", "memory.memsw.limit_in_bytes"), "9223372036854771712");
        // Moved once loaded, the memory its Node took to load is charged where it was (v1 moves no
        // charge). Moved at the clone, it is charged here as far as the move (which waits for an
        // RCU grace period) came before the load: how far is the kernel's timing, not asserted.
        const peak = Number(limitOf(id, "memory", "memory.max_usage_in_bytes"));
        if (id === "small") assert.ok(peak < 1 << 20, `${id}: peak ${peak}`);
        assert.equal(corerun(["start", id]).code, 0);
      } finally {
        const d = corerun(["delete", "--force", id]);
        assert.equal(d.code, 0, d.stderr);
      }
      assertGone(id, dir);
    }
  });

  test("CORERUN_TRACE: create, start and delete each trace their steps in order, create's with the first process's up to ready; the corerun id derives from the OCI id; create, start and delete run in the engine's bundles", async () => {
    const dir = bundle("traced", ["/bin/true"]);
    const traced = (what: string) => ({ env: { ...process.env, CORERUN_TRACE: join(dir, `${what}.json`) } });
    const spansOf = (what: string, track: string) => {
      const events = (JSON.parse(readFileSync(join(dir, `${what}.json`), "utf8")) as { traceEvents: TraceEv[] }).traceEvents;
      const meta = events.find((e) => e.ph === "M" && e.name === "process_name" && e.args?.name === track);
      assert.ok(meta, `a ${track} track in ${what}'s trace`);
      return events.filter((e) => e.pid === meta.pid && e.ph === "X");
    };
    const inOrder = (spans: TraceEv[], names: string[]) => {
      const found = names.map((n) => {
        const all = spans.filter((e) => e.name === n);
        assert.equal(all.length, 1, `one span ${n}: ${spans.map((e) => e.name).join(", ")}`);
        return all[0]!;
      });
      for (let i = 1; i < found.length; i++) assert.ok(found[i - 1]!.ts + (found[i - 1]!.dur ?? 0) <= found[i]!.ts, `${names[i - 1]} before ${names[i]}`);
      return found;
    };
    const out = openSync(join(dir, "out.txt"), "w");
    try {
      const r = tool("corerun", ["--root", root, "create", "--bundle", dir, "traced"], { stdio: ["ignore", out, out], ...traced("create") });
      assert.equal(r.code, 0, readFileSync(join(dir, "out.txt"), "utf8"));
    } finally {
      closeSync(out);
    }
    const [, made] = inOrder(spansOf("create", "corerun"), ["read bundle", "create state", "create cgroup", "start first process", "join cgroup", "tools exit", "record created"]);
    assert.equal(made!.args?.id, "traced");
    const [, , pivot] = inOrder(spansOf("create", "corerun-mount"), ["enter namespaces", "wait for ready", "pivot_root"]);
    // The first process goes on waiting after create: its steps up to ready are in create's trace.
    const [, , , opened] = inOrder(spansOf("create", "corerun-exec"), ["node start", "load bundle", "open sync fifos", "open ready"]);
    assert.ok(opened!.ts + (opened!.dur ?? 0) <= pivot!.ts, "corerun-exec opened ready before corerun-mount's pivot_root");
    assert.equal(corerun(["start", "traced"], traced("start")).code, 0);
    inOrder(spansOf("start", "corerun"), ["find container", "start"]);
    await waitStatus("traced", "stopped");
    const d = corerun(["delete", "traced"], traced("delete"));
    assert.equal(d.code, 0, d.stderr);
    const [, teardown] = inOrder(spansOf("delete", "corerun"), ["find container", "cgroup", "state"]);
    assert.equal(teardown!.args?.id, ociIds("traced")[0], "the state's directory is the OCI id's first slot");
    assertGone("traced", dir);
    // start and delete of an OCI container run in the bundle of the engine's calls, create in one
    // of its own; a command line those hand on (start --help), in the whole one.
    assert.equal(corerun(["start", "--help"], traced("help")).code, 0);
    const bundleOf = (what: string) => spansOf(what, "corerun").find((e) => e.name === "load bundle")?.args?.bundle;
    assert.deepEqual(["create", "start", "delete", "help"].map(bundleOf), ["corerun.engine-create.bundle", "corerun.engine.bundle", "corerun.engine.bundle", "corerun.bundle"]);
  });

  test("config.json's process, hostname, masks and limits are what the container gets; hostname, sysctl and masks are in place before start", async () => {
    const script = [
      "id -u; id -g; id -G; pwd; echo $FOO; hostname; ulimit -n; umask",
      "grep -E '^(CapBnd|NoNewPrivs)' /proc/self/status",
      "cat /proc/sys/net/ipv4/ip_forward",
      "cat /proc/keys | wc -c",
      "touch /proc/sys/x 2>/dev/null || echo proc-sys-ro",
      "touch /ro-test 2>/dev/null || echo root-ro",
      "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max",
    ].join("; ");
    const dir = bundle("proc", ["/bin/sh", "-c", script], (c) => {
      c.process.user = { uid: 1000, gid: 1000, additionalGids: [10, 20], umask: 0o027 };
      c.process.env.push("FOO=bar");
      c.process.cwd = "/tmp";
      c.process.capabilities = { bounding: ["CAP_KILL", "CAP_NET_BIND_SERVICE"], effective: ["CAP_KILL"], permitted: ["CAP_KILL"] };
      c.process.rlimits = [{ type: "RLIMIT_NOFILE", hard: 512, soft: 256 }];
      c.hostname = "custom";
      c.root.readonly = true;
      c.linux.sysctl = { "net.ipv4.ip_forward": "1", "net.ipv4.tcp_keepalive_time": "7211" };
      c.linux.resources.pids = { limit: 42 };
      c.mounts.push({ destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid", "noexec", "nodev", "ro"] });
    });
    const { r, out } = create("proc", dir);
    assert.equal(r.code, 0, r.stderr);
    // Before start, as runc's init: the waiting process has its hostname, sysctl and masks (it
    // sets up the root once corerun-mount says pivoted, while create ends: looked at until then).
    const pid = readFileSync(join(dir, "init.pid"), "utf8");
    const before = () => ({
      hostname: run("nsenter", ["-t", pid, "-u", "hostname"]).stdout.trim(),
      keepalive: run("nsenter", ["-t", pid, "-n", "cat", "/proc/sys/net/ipv4/tcp_keepalive_time"]).stdout.trim(),
      keys: readFileSync(`/proc/${pid}/mountinfo`, "utf8").split("\n").some((l) => l.split(" ")[4] === "/proc/keys"),
    });
    const ready = { hostname: "custom", keepalive: "7211", keys: true };
    for (let i = 0; i < 50 && JSON.stringify(before()) !== JSON.stringify(ready); i++) await new Promise((res) => setTimeout(res, 100));
    assert.deepEqual(before(), ready);
    assert.equal(state("proc").status, "created");
    assert.equal(corerun(["start", "proc"]).code, 0);
    await waitStatus("proc", "stopped");
    const lines = readFileSync(out, "utf8").trim().split("\n");
    assert.deepEqual(lines.slice(0, 8), ["1000", "1000", "1000 10 20", "/tmp", "bar", "custom", "256", "0027"]);
    assert.equal(lines[8], "CapBnd:\t0000000000000420");
    assert.equal(lines[9], "NoNewPrivs:\t1");
    assert.equal(lines[10], "1", "the sysctl was set in the container's network namespace");
    assert.equal(lines[11]!.trim(), "0", "/proc/keys is masked");
    assert.ok(lines.includes("proc-sys-ro"));
    assert.ok(lines.includes("root-ro"));
    assert.equal(lines.at(-1), "42", "the pids limit, seen through the container's own cgroup mount");
    assert.equal(corerun(["delete", "proc"]).code, 0);
    assertGone("proc", dir);
  });

  test("exec: output and status, --detach with a pid file, a process.json; ps and kill --all", async () => {
    const dir = bundle("ex", ["/bin/sleep", "60"]);
    assert.equal(create("ex", dir).r.code, 0);
    assert.equal(corerun(["start", "ex"]).code, 0);
    assert.equal(state("ex").status, "running");
    const e = corerun(["exec", "ex", "/bin/sh", "-c", "echo in $(hostname); echo $$; exit 5"]);
    assert.equal(e.code, 5, e.stderr);
    assert.match(e.stdout, /^in oci\n\d+\n$/);
    assert.notEqual(e.stdout.split("\n")[1], "1", "a new process, not PID 1");
    const proc = join(dir, "process.json");
    writeFileSync(proc, JSON.stringify({ args: ["/bin/sleep", "30"], env: ["PATH=/bin"], cwd: "/", user: { uid: 0, gid: 0 } }));
    // Detached, the process keeps exec's stdio, as a shim's pipes: give it none to hold.
    const d = corerun(["exec", "--detach", "--pid-file", join(dir, "exec.pid"), "--process", proc, "ex"], { stdio: "ignore" });
    assert.equal(d.code, 0, d.stderr);
    const execPid = Number(readFileSync(join(dir, "exec.pid"), "utf8"));
    const ps = corerun(["ps", "--format", "json", "ex"]);
    assert.equal(ps.code, 0, ps.stderr);
    const pids: number[] = JSON.parse(ps.stdout);
    assert.ok(pids.includes(state("ex").pid) && pids.includes(execPid), `${ps.stdout} lacks the processes`);
    const missing = corerun(["exec", "ex", "/no/such/program"]);
    assert.equal(missing.code, 127);
    assert.match(missing.stderr, /no such file or directory/);
    assert.equal(corerun(["kill", "--all", "ex", "9"]).code, 0);
    await waitStatus("ex", "stopped");
    assert.equal(corerun(["delete", "ex"]).code, 0);
    assertGone("ex", dir);
  });

  test("kill, pause and resume, list, and delete --force of a running container", async () => {
    const dir = bundle("pk", ["/bin/sleep", "60"]);
    assert.equal(create("pk", dir).r.code, 0);
    const listed = JSON.parse(corerun(["list", "--format", "json"]).stdout);
    assert.deepEqual(listed.map((c: { id: string; status: string }) => [c.id, c.status]), [["pk", "created"]]);
    assert.equal(corerun(["cleanup"]).code, 0);
    assert.equal(state("pk").status, "created", "cleanup leaves an OCI container to its engine");
    assert.equal(corerun(["start", "pk"]).code, 0);
    assert.equal(corerun(["pause", "pk"]).code, 0);
    assert.equal(state("pk").status, "paused");
    assert.match(corerun(["pause", "pk"]).stderr, /not running/);
    assert.equal(corerun(["resume", "pk"]).code, 0);
    assert.equal(state("pk").status, "running");
    const refused = corerun(["delete", "pk"]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /cannot delete container "pk" that is not stopped: running/);
    assert.equal(state("pk").status, "running", "a refused delete changes nothing");
    assert.equal(corerun(["delete", "--force", "pk"]).code, 0);
    assertGone("pk", dir);
    // A created container goes too, with its waiting process.
    const dir2 = bundle("pk2", ["/bin/true"]);
    assert.equal(create("pk2", dir2).r.code, 0);
    const pid = state("pk2").pid;
    assert.equal(corerun(["kill", "pk2", "KILL"]).code, 0);
    await waitStatus("pk2", "stopped");
    assert.equal(existsSync(`/proc/${pid}/cmdline`) && readFileSync(`/proc/${pid}/cmdline`).length > 0, false);
    assert.equal(corerun(["delete", "pk2"]).code, 0);
    assertGone("pk2", dir2);
  });

  test("process.terminal: the pty master arrives on --console-socket, the process has /dev/console", async () => {
    const dir = bundle("tty", ["/bin/sh", "-c", "tty; stty size; echo tty-done"], (c) => {
      c.process.terminal = true;
      c.process.consoleSize = { height: 33, width: 99 };
    });
    // A receiver as engines have it: accept, recvmsg one fd, read the master until the output ends.
    const receiver = join(dir, "recv.py");
    writeFileSync(receiver, [
      "import socket, sys, os, array, time",
      "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.bind(sys.argv[1]); s.listen(1)",
      "print('listening', flush=True)",
      "c, _ = s.accept()",
      "msg, anc, _, _ = c.recvmsg(4096, socket.CMSG_SPACE(4))",
      "fds = array.array('i'); fds.frombytes(anc[0][2][:4])",
      "print('name', msg.decode(), 'fds', len(anc), flush=True)",
      "out = b''; end = time.time() + 20",
      "while time.time() < end and b'tty-done' not in out:",
      "    try: out += os.read(fds[0], 4096)",
      "    except OSError: time.sleep(0.05)",
      "print(out.decode().replace('\\r', ''), flush=True)",
    ].join("\n"));
    const sock = join(dir, "console.sock");
    const py = spawn("python3", [receiver, sock], { stdio: ["ignore", "pipe", "inherit"] });
    let got = "";
    py.stdout.on("data", (d: Buffer) => (got += d.toString()));
    while (!got.includes("listening")) await new Promise((res) => setTimeout(res, 50));
    const { r } = create("tty", dir, ["--console-socket", sock]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(corerun(["start", "tty"]).code, 0);
    await new Promise((res) => py.on("exit", res));
    assert.match(got, /name \/dev\/pts\/ptmx fds 1/);
    assert.match(got, /\/dev\/pts\/\d+\n33 99\ntty-done/, "the pty by its own name, as runc gives it");
    await waitStatus("tty", "stopped");
    assert.equal(corerun(["delete", "tty"]).code, 0);
    assertGone("tty", dir);
  });

  test("hooks run at the moments runtime.md gives, with the state on stdin; a failing one undoes create", async () => {
    const notes = mkdtempSync(join(work, "hooks-"));
    const dir = bundle("hk", ["/bin/sh", "-c", "cat /tmp/hook-start"], (c) => {
      // The rootfs is shared by the suite: what the hooks write inside goes to a tmpfs.
      c.mounts.push({ destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev"] });
      const note = (name: string) => ({ path: "/bin/sh", args: ["sh", "-c", `cat > ${notes}/${name}.json; echo ${name} >> ${notes}/order`], timeout: 10 });
      c.hooks = {
        prestart: [note("prestart")], createRuntime: [note("createRuntime")],
        createContainer: [{ path: "/bin/sh", args: ["sh", "-c", `readlink /proc/self/ns/mnt > ${notes}/cc-mnt; echo createContainer >> ${notes}/order`] }],
        // Inside the container: its path and its output are the container's.
        startContainer: [{ path: "/bin/sh", args: ["sh", "-c", "cat > /tmp/hook-state; grep -o '\"status\":\"[a-z]*\"' /tmp/hook-state > /tmp/hook-start"] }],
        poststart: [note("poststart")], poststop: [note("poststop")],
      };
    });
    const { r, out } = create("hk", dir);
    assert.equal(r.code, 0, r.stderr);
    const pid = state("hk").pid;
    assert.equal(readFileSync(join(notes, "cc-mnt"), "utf8").trim(), readlinkSync(`/proc/${pid}/ns/mnt`), "createContainer ran in the container's mount namespace");
    assert.equal(corerun(["start", "hk"]).code, 0);
    await waitStatus("hk", "stopped");
    assert.equal(readFileSync(out, "utf8"), '"status":"created"\n', "startContainer ran inside, before the program, with the state");
    assert.equal(corerun(["delete", "hk"]).code, 0);
    assert.deepEqual(readFileSync(join(notes, "order"), "utf8").trim().split("\n"), ["prestart", "createRuntime", "createContainer", "poststart", "poststop"]);
    const hookState = (name: string) => JSON.parse(readFileSync(join(notes, `${name}.json`), "utf8"));
    assert.equal(hookState("createRuntime").status, "creating");
    assert.equal(hookState("createRuntime").pid, pid);
    assert.equal(hookState("poststart").status, "running");
    assert.equal(hookState("poststop").status, "stopped");
    assert.equal(hookState("poststop").id, "hk");
    assertGone("hk", dir);

    const failing = bundle("hkf", ["/bin/true"], (c) => (c.hooks = { createRuntime: [{ path: "/bin/sh", args: ["sh", "-c", "echo nope >&2; exit 4"] }] }));
    const f = create("hkf", failing);
    assert.notEqual(f.r.code, 0);
    assert.match(f.r.stderr, /hooks\.createRuntime\[0\] \/bin\/sh exited with status 4: nope/);
    assertGone("hkf", failing);
    const slow = bundle("hks", ["/bin/true"], (c) => (c.hooks = { prestart: [{ path: "/bin/sleep", args: ["sleep", "30"], timeout: 1 }] }));
    const t = create("hks", slow);
    assert.match(t.r.stderr, /hooks\.prestart\[0\] \/bin\/sleep did not finish within its timeout of 1 s/);
    assertGone("hks", slow);
  });

  test("a startContainer hook whose interpreter is /proc/self/exe gets corerun's sealed stub, not the host's Node (CVE-2019-5736)", async () => {
    const probe = mkdtempSync(join(work, "probe-"));
    writeFileSync(join(probe, "self-exe"), "#!/proc/self/exe\nthis line is never read\n", { mode: 0o755 });
    const dir = bundle("hkx", ["/bin/true"], (c) => {
      // On a directory the shared rootfs has: a new mount point would stay in it, as runc's do.
      c.mounts.push({ destination: "/mnt", type: "bind", source: probe, options: ["rbind", "ro"] });
      c.hooks = { startContainer: [{ path: "/mnt/self-exe" }] };
    });
    const { r, out } = create("hkx", dir);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(corerun(["start", "hkx"]).code, 0);
    await waitStatus("hkx", "stopped");
    const said = readFileSync(out, "utf8");
    assert.match(said, /^corerun-exe: not a program to run by hand or as an interpreter/m);
    assert.match(said, /hooks\.startContainer\[0\] \/mnt\/self-exe exited with status 125/);
    assert.equal(corerun(["delete", "hkx"]).code, 0);
    assertGone("hkx", dir);
  });

  test("exec and exec --process get the container's seccomp filter; capabilities and noNewPrivileges as config.json gives them", async () => {
    const seccomp = { defaultAction: "SCMP_ACT_ALLOW", architectures: ["SCMP_ARCH_X86_64"], syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 122 }] };
    const dir = bundle("xsc", ["/bin/sleep", "60"], (c) => {
      c.linux.seccomp = seccomp;
      c.process.capabilities = { bounding: ["CAP_KILL", "CAP_CHOWN"], effective: ["CAP_KILL"], permitted: ["CAP_KILL"] };
      c.mounts.push({ destination: "/tmp", type: "tmpfs", source: "tmpfs" });
    });
    assert.equal(create("xsc", dir).r.code, 0);
    assert.equal(corerun(["start", "xsc"]).code, 0);
    const script = "grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status; mkdir /tmp/x 2>&1; true";
    const e = corerun(["exec", "xsc", "/bin/sh", "-c", script]);
    assert.equal(e.code, 0, e.stderr);
    assert.match(e.stdout, /^CapEff:\t0000000000000020$/m);
    assert.match(e.stdout, /^CapBnd:\t0000000000000021$/m);
    assert.match(e.stdout, /^NoNewPrivs:\t1$/m);
    assert.match(e.stdout, /^Seccomp:\t2$/m);
    assert.match(e.stdout, /Disk quota exceeded/, "errno 122 (EDQUOT) from the container's filter");
    // runc's --process form, as engines call it: the filter is the container's whatever process.json says.
    const proc = join(dir, "process.json");
    writeFileSync(proc, JSON.stringify({ args: ["/bin/sh", "-c", script], env: ["PATH=/bin"], cwd: "/", user: { uid: 0, gid: 0 }, noNewPrivileges: false,
      capabilities: { bounding: ["CAP_KILL"], effective: ["CAP_KILL"], permitted: ["CAP_KILL"] } }));
    const p = corerun(["exec", "--process", proc, "xsc"]);
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, /^CapBnd:\t0000000000000020$/m);
    assert.match(p.stdout, /^NoNewPrivs:\t0$/m, "process.json's noNewPrivileges");
    assert.match(p.stdout, /^Seccomp:\t2$/m);
    assert.match(p.stdout, /Disk quota exceeded/);
    assert.equal(corerun(["kill", "xsc", "9"]).code, 0);
    await waitStatus("xsc", "stopped");
    assert.equal(corerun(["delete", "xsc"]).code, 0);
    assertGone("xsc", dir);
  });

  test("linux.seccomp is compiled and loaded: a denied syscall fails with the errno the config gives", async () => {
    const seccomp = { defaultAction: "SCMP_ACT_ALLOW", architectures: ["SCMP_ARCH_X86_64"], syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 122 }] };
    const dir = bundle("sc", ["/bin/sh", "-c", "grep Seccomp: /proc/self/status; mkdir /tmp/x 2>&1; true"], (c) => {
      c.linux.seccomp = seccomp;
      c.mounts.push({ destination: "/tmp", type: "tmpfs", source: "tmpfs" });
    });
    const { r, out } = create("sc", dir);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(corerun(["start", "sc"]).code, 0);
    await waitStatus("sc", "stopped");
    const text = readFileSync(out, "utf8");
    assert.match(text, /^Seccomp:\t2$/m);
    assert.match(text, /Disk quota exceeded/, "errno 122 (EDQUOT) from the filter");
    assert.equal(corerun(["delete", "sc"]).code, 0);
    assertGone("sc", dir);
    const bad = create("sc2", bundle("sc2", ["/bin/true"], (c) => (c.linux.seccomp = { ...seccomp, syscalls: [{ names: ["mkdri"], action: "SCMP_ACT_ERRNO" }] })));
    assert.notEqual(bad.r.code, 0);
    assert.match(bad.r.stderr, /linux\.seccomp: syscalls\[0\] \(mkdri\): unknown syscall "mkdri"/);
    assert.deepEqual(leftoverState(root), []);
  });

  test("--preserve-fds and LISTEN_FDS pass the caller's fds 3.. on to the program, nothing more", async () => {
    const dir = bundle("pf", ["/bin/sh", "-c", "cat <&3; cat <&4; echo LISTEN_FDS=$LISTEN_FDS LISTEN_PID=$LISTEN_PID; ls /proc/self/fd | sort -n | tr '\\n' ' '"]);
    writeFileSync(join(dir, "three"), "from fd 3\n");
    writeFileSync(join(dir, "four"), "from fd 4\n");
    const out = join(dir, "out.txt");
    const fds = [openSync(out, "w"), openSync(join(dir, "three"), "r"), openSync(join(dir, "four"), "r")];
    try {
      // As conmon does it: LISTEN_FDS with LISTEN_PID naming the runtime itself, then --preserve-fds.
      const r = run("bash", ["-c", `export LISTEN_FDS=1 LISTEN_PID=$$; exec "$0" --root "$1" run --bundle "$2" --preserve-fds 1 pf`, join(BIN, "corerun"), root, dir], {
        stdio: ["ignore", fds[0], fds[0], fds[1], fds[2]],
      });
      assert.equal(r.code, 0, readFileSync(out, "utf8"));
    } finally {
      for (const fd of fds) closeSync(fd);
    }
    assert.equal(readFileSync(out, "utf8"), "from fd 3\nfrom fd 4\nLISTEN_FDS=1 LISTEN_PID=1\n0 1 2 3 4 5 ", "fds 3 and 4 (5 is ls's own on /proc/self/fd), none of corerun's");
    assertGone("pf", dir);
  });

  test("a pod's namespaces joined by path: user (mappings checked), PID with its own /proc, IPC, UTS, network", async () => {
    const maps = { uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }], gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }] };
    // The sandbox: new namespaces, a user namespace among them, as a pod with user namespaces has.
    const sandboxDir = bundle("pod", ["/bin/sleep", "1000"], (c) => {
      c.hostname = "pod";
      c.linux.namespaces.push({ type: "user" });
      Object.assign(c.linux, maps);
    });
    let r = create("pod", sandboxDir).r;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(corerun(["start", "pod"]).code, 0);
    const podPid = state("pod").pid;
    const joined = ["user", "pid", "ipc", "uts", "network"];
    const byPath = (c: Record<string, any>) => {
      c.hostname = undefined;
      c.linux.namespaces = [{ type: "mount" }, ...joined.map((type) => ({ type, path: `/proc/${podPid}/ns/${type === "network" ? "net" : type}` }))];
      Object.assign(c.linux, maps);
    };
    // The pod's own state stays until its delete: only the member's cgroup, mounts and state are checked here.
    const memberGone = (id: string, dir: string) => {
      assert.deepEqual(cgroupsLeft(id), [], "a cgroup is left");
      assert.deepEqual(hostMountsUnder(dir), [], "a mount of the bundle is left");
      assert.notEqual(corerun(["state", id]).code, 0, "state still answers");
      assert.equal(readdirSync(root).filter((n) => /^[0-9a-f]{12}$/.test(n)).length, 1, "only the pod's state directory is left");
    };
    const script = "cat /proc/self/uid_map; id -u; hostname; tr '\\0' ' ' < /proc/1/cmdline; echo; echo pid $$; for ns in user pid ipc uts net; do readlink /proc/self/ns/$ns; done";
    const dir = bundle("member", ["/bin/sh", "-c", script], byPath);
    try {
      const c = create("member", dir);
      assert.equal(c.r.code, 0, c.r.stderr);
      assert.equal(corerun(["start", "member"]).code, 0);
      await waitStatus("member", "stopped");
      const [map, uid, host, init, pid, ...ns] = readFileSync(c.out, "utf8").trim().split("\n");
      assert.equal(map!.trim().split(/\s+/).join(" "), "0 100000 65536", "the pod's user namespace");
      assert.equal(uid, "0");
      assert.equal(host, "pod", "the pod's UTS namespace");
      assert.equal(init, "/bin/sleep 1000 ", "its /proc shows the pod's PID namespace: PID 1 is the sandbox's sleep");
      assert.notEqual(pid, "pid 1");
      const podNs = ["user", "pid", "ipc", "uts", "net"].map((n) => readlinkSync(`/proc/${podPid}/ns/${n}`));
      assert.deepEqual(ns, podNs);
      assert.equal(corerun(["delete", "member"]).code, 0);
      memberGone("member", dir);

      // Mappings that are not the joined namespace's: refused by name, nothing left.
      const wrong = bundle("wrong", ["/bin/true"], (c) => {
        byPath(c);
        c.linux.uidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
      });
      r = create("wrong", wrong).r;
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /linux\.uidMappings: the user namespace \/proc\/\d+\/ns\/user maps "0 100000 65536"/);
      memberGone("wrong", wrong);
    } finally {
      corerun(["delete", "--force", "member"]);
      corerun(["delete", "--force", "wrong"]);
      corerun(["delete", "--force", "pod"]);
    }
    assertGone("pod", sandboxDir);
  });

  test("SIGTERM ends a created container's waiting process, as PID 1 that handles it", async () => {
    const dir = bundle("term", ["/bin/true"]);
    const { r } = create("term", dir);
    assert.equal(r.code, 0, r.stderr);
    const pid = readFileSync(join(dir, "init.pid"), "utf8");
    await until("the first process to wait as corerun-exe", () => readlinkSync(`/proc/${pid}/exe`).startsWith("/memfd:corerun-exe"), 5_000, 20);
    assert.equal(corerun(["kill", "term", "TERM"]).code, 0);
    await waitStatus("term", "stopped");
    const d = corerun(["delete", "term"]);
    assert.equal(d.code, 0, d.stderr);
    assertGone("term", dir);
  });

  test("linux.devices: each node has the config's mode whatever the umask, and a device allowed \"r\" opens for reading only (no rule of its own)", async () => {
    // /dev/fuse (10:229) opens without a capability; the deny-all rule of the base config stands
    // before these. (Not tun, 10:200, which runc's defaults, appended after, allow whatever the config says.)
    const script = "stat -c '%a %t:%T' /dev/myfuse; exec 3</dev/myfuse && echo read-ok; (exec 4>/dev/myfuse) 2>/dev/null && echo write-ok || echo write-refused";
    const dir = bundle("devs", ["/bin/sh", "-c", script], (c) => {
      c.linux.devices = [{ path: "/dev/myfuse", type: "c", major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0 }];
      c.linux.resources.devices.push({ allow: true, type: "c", major: 10, minor: 229, access: "r" });
    });
    const { r, out } = create("devs", dir);
    assert.equal(r.code, 0, r.stderr);
    try {
      assert.equal(corerun(["start", "devs"]).code, 0);
      await waitStatus("devs", "stopped");
      assert.deepEqual(readFileSync(out, "utf8").trim().split("\n"), ["666 a:e5", "read-ok", "write-refused"]);
    } finally {
      corerun(["delete", "--force", "devs"]);
    }
    assertGone("devs", dir);
  });

  test("tight limits (8 MiB, 5 pids) hold the program, not the runtime's waiting process", () => {
    const dir = bundle("tight", ["/bin/sh", "-c", "echo within; grep -c . /proc/self/status > /dev/null && echo limits-ok"], (c) => {
      c.linux.resources.memory = { limit: 8 << 20 };
      c.linux.resources.pids = { limit: 5 };
    });
    const out = join(dir, "out.txt");
    const fd = openSync(out, "w");
    try {
      const r = tool("corerun", ["--root", root, "run", "--bundle", dir, "tight"], { stdio: ["ignore", fd, fd] });
      assert.equal(r.code, 0, readFileSync(out, "utf8"));
    } finally {
      closeSync(fd);
    }
    assert.equal(readFileSync(out, "utf8"), "within\nlimits-ok\n");
    assertGone("tight", dir);
  });

  test("bad bundles and bad commands: one clear line, an error in the JSON log, nothing created", () => {
    const log = join(work, "log.json");
    const bad: [string, () => string[], RegExp][] = [
      ["no config.json", () => ["create", "--bundle", mkdtempSync(join(work, "empty-")), "b1"], /config\.json: cannot be read \(ENOENT\)/],
      ["config.json is not JSON", () => {
        const d = mkdtempSync(join(work, "badjson-"));
        writeFileSync(join(d, "config.json"), "{ nope");
        return ["create", "--bundle", d, "b2"];
      }, /config\.json: not valid JSON/],
      ["an unsupported field", () => ["create", "--bundle", bundle("b3", ["/bin/true"], (c) => (c.linux.intelRdt = { closID: "x" })), "b3"], /linux\.intelRdt: corerun does not support this field/],
      ["an unknown namespace", () => ["create", "--bundle", bundle("b4", ["/bin/true"], (c) => c.linux.namespaces.push({ type: "time" })), "b4"], /linux\.namespaces\[5\]\.type: a namespace type is one of/],
      ["an unknown capability", () => ["create", "--bundle", bundle("b5", ["/bin/true"], (c) => c.process.capabilities.bounding.push("CAP_FLY")), "b5"], /unknown capability "CAP_FLY"/],
      ["a systemd cgroup path", () => ["create", "--bundle", bundle("b6", ["/bin/true"], (c) => (c.linux.cgroupsPath = "system.slice:corerun:b6")), "b6"], /systemd slice:prefix:name path/],
      ["an unknown mount type", () => ["create", "--bundle", bundle("b7", ["/bin/true"], (c) => c.mounts.push({ destination: "/x", type: "nfs", source: "h:/x" })), "b7"], /mount type "nfs" is not supported/],
      ["a program that is not there", () => ["create", "--bundle", bundle("b8", ["nosuchprog"]), "b8"], /exec: "nosuchprog": executable file not found in \$PATH/],
      ["a bad id", () => ["create", "--bundle", bundle("x", ["/bin/true"]), "../etc"], /invalid container id "\.\.\/etc"/],
      ["state of an unknown id", () => ["state", "nope"], /container "nope" does not exist/],
      ["start of an unknown id", () => ["start", "nope"], /container "nope" does not exist/],
      ["kill of an unknown id", () => ["kill", "nope", "9"], /container "nope" does not exist/],
      ["delete of an unknown id", () => ["delete", "nope"], /container "nope" does not exist/],
      ["--systemd-cgroup", () => ["--systemd-cgroup", "create", "--bundle", bundle("b9", ["/bin/true"]), "b9"], /--systemd-cgroup: corerun manages cgroups itself/],
      // Written as root from inside: the host's own would change (runc's validator refuses them too).
      ["a global sysctl", () => ["create", "--bundle", bundle("b10", ["/bin/true"], (c) => (c.linux.sysctl = { "kernel.core_pattern": "|/tmp/x" })), "b10"], /linux\.sysctl kernel\.core_pattern: not a sysctl of a namespace the container can have of its own; it would be set for the whole host/],
      ["a net sysctl without a network namespace", () => ["create", "--bundle", bundle("b11", ["/bin/true"], (c) => {
        c.linux.namespaces = c.linux.namespaces.filter((n: { type: string }) => n.type !== "network");
        c.linux.sysctl = { "net.ipv4.ip_forward": "1" };
      }), "b11"], /linux\.sysctl net\.ipv4\.ip_forward: needs a network namespace in linux\.namespaces/],
      ["a hostname without a uts namespace", () => ["create", "--bundle", bundle("b12", ["/bin/true"], (c) => (c.linux.namespaces = c.linux.namespaces.filter((n: { type: string }) => n.type !== "uts"))), "b12"], /hostname "\S+": needs a uts namespace in linux\.namespaces; without one it would be the host's/],
    ];
    for (const [what, args, message] of bad) {
      rmSync(log, { force: true });
      const r = tool("corerun", ["--root", root, "--log", log, "--log-format", "json", ...args()]);
      assert.notEqual(r.code, 0, `${what}: exit status`);
      assert.match(r.stderr, message, what);
      assert.equal(r.stderr.trim().split("\n").length, 1, `${what}: one line: ${r.stderr}`);
      if (existsSync(log)) {
        const entry = JSON.parse(readFileSync(log, "utf8").trim().split("\n").at(-1)!);
        assert.equal(entry.level, "error", what);
        assert.match(entry.msg, message, what);
        assert.ok(!Number.isNaN(Date.parse(entry.time)), `${what}: an RFC 3339 time`);
      } else {
        assert.match(what, /--systemd-cgroup/, `${what}: no log line`);
      }
      assert.deepEqual(leftoverState(root), [], `${what}: state left`);
    }
    assert.deepEqual(readdirSync("/sys/fs/cgroup").flatMap((h) => (existsSync(join("/sys/fs/cgroup", h, PARENT)) ? readdirSync(join("/sys/fs/cgroup", h, PARENT), { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name) : [])), [], "a cgroup is left");
    assert.equal(corerun(["delete", "--force", "nope"]).code, 0, "delete --force of an unknown id is not an error");
  });

  test("one id, one container; start only from created", async () => {
    const dir = bundle("dup", ["/bin/true"]);
    assert.equal(create("dup", dir).r.code, 0);
    const again = create("dup", bundle("dup", ["/bin/true"]));
    assert.notEqual(again.r.code, 0);
    assert.match(again.r.stderr, /container with id "dup" already exists/);
    assert.equal(corerun(["start", "dup"]).code, 0);
    await waitStatus("dup", "stopped");
    const twice = corerun(["start", "dup"]);
    assert.notEqual(twice.code, 0);
    assert.match(twice.stderr, /cannot start a container that is stopped/);
    assert.equal(corerun(["delete", "dup"]).code, 0);
    assertGone("dup", dir);
  });

  test("features and --version describe this runtime", () => {
    const f = JSON.parse(corerun(["features"]).stdout);
    assert.equal(f.ociVersionMin, "1.0.0");
    assert.ok(f.linux.namespaces.includes("user"));
    assert.ok(f.mountOptions.includes("rbind") && f.mountOptions.includes("rro"));
    const version = tool("corerun", ["--version"]);
    assert.match(version.stdout, /^corerun version \S+\nspec: 1\.\d+\.\d+\n$/);
  });
});
