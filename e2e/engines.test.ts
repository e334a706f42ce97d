/**
 * corerun as the OCI runtime of real engines: containerd (through ctr and its runc shim), podman
 * (through conmon) and, where it can start, dockerd. Each engine runs from private directories
 * made here (containerd's root, state and socket; podman's corerun state root; dockerd's data and
 * exec roots), and each test checks what the container printed and that corerun left nothing of
 * it behind: no state, no cgroup named after it, no mount of its bundle, no process.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, readlinkSync, rmdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BIN, busyboxRootfs, devText, diskUnder, hostMountsUnder, isRoot, leftoverState, processesWith, run, until, type Result } from "./helpers.ts";
import { expandIdList } from "@corerun/cgroup";
import {
  busyboxImage, cgroupsNamed, corerunContainers, corerunWithRoot, criConfig, freePort, hasSysResource, httpGet, importImage, missing, onPty, removeWorkDir,
  rootfsCopy, startContainerd, startDockerd, stopContainerd, stopDaemon, workDir, type Containerd,
} from "./engines.ts";
import { criRuntime, type CriRuntime } from "./cri.ts";

const CORERUN = join(BIN, "corerun");
const TAG = `e2e${process.pid}`;

function ok(r: Result, what: string): Result {
  assert.equal(r.code, 0, `${what} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** Nothing of a container is left: no corerun state, no cgroup, no mount, no process. */
function assertGone(root: string, id: string, bundleMark: string, processMark?: string): void {
  assert.deepEqual(corerunContainers(root), [], `corerun state left in ${root}`);
  assert.deepEqual(leftoverState(root), [], `container directories left in ${root}`);
  assert.deepEqual(cgroupsNamed(id), [], `cgroups named after ${id}`);
  assert.deepEqual(hostMountsUnder(bundleMark), [], `mounts of ${bundleMark}`);
  if (processMark) assert.deepEqual(processesWith(processMark), [], `processes with ${processMark}`);
}

const ctrMissing = missing(["containerd", "ctr", "umoci", "script"]);

describe("containerd drives corerun through ctr", { skip: (!isRoot && "needs root") || (ctrMissing && `${ctrMissing} is not installed (tools/setup.sh installs it)`) }, () => {
  let dir = "";
  let c: Containerd | undefined;
  let image = "";
  let runcRoot = "";
  // ctr's runtime options: corerun as the runc binary, its state under a private root (the shim adds the namespace).
  const runtime = () => ["--runc-binary", CORERUN, "--runc-root", runcRoot];
  const bundle = (id: string) => join(dir, "containerd-state", "io.containerd.runtime.v2.task", "default", id);
  const root = () => join(runcRoot, "default");

  before(async () => {
    dir = workDir();
    runcRoot = join(dir, "corerun-state");
    c = await startContainerd(dir);
    image = importImage(c, busyboxImage(dir, busyboxRootfs()));
  });
  after(async () => {
    try {
      if (c) await stopContainerd(c);
    } finally {
      removeWorkDir(dir);
    }
  });

  test("ctr run --rm: the container's output and exit status", () => {
    const id = `${TAG}-rm`;
    const r = c!.ctr(["run", "--rm", ...runtime(), image, id, "/bin/sh", "-c", "echo hello from corerun; echo pid $$; cat /proc/self/cgroup; exit 3"]);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stdout, /^hello from corerun\npid 1\n/);
    assert.match(r.stdout, new RegExp(`/default/${id}$`, "m"), "the container's cgroup is the one containerd asked for");
    assertGone(root(), id, bundle(id));
  });

  test("ctr run -d, task exec, task ps, task kill -s SIGKILL, task rm", async () => {
    const id = `${TAG}-d`;
    const mark = `corerun-${TAG}-loop`;
    try {
      // Two processes that stay until the kill: the shell and its sleep.
      ok(c!.ctr(["run", "-d", ...runtime(), image, id, "/bin/sh", "-c", `: ${mark}; sleep 1000 & wait`]), "ctr run -d");
      const [, pid, status] = c!.ctr(["task", "ls"]).stdout.split("\n").find((l) => l.startsWith(`${id} `))!.trim().split(/\s+/);
      assert.equal(status, "RUNNING");
      // `start` returns once the first process was told to go; it execs the command a moment later.
      for (let i = 0; i < 50 && !processesWith(mark).length; i++) await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(processesWith(mark), [Number(pid)], "the task's pid is the container's first process on the host");

      const e = c!.ctr(["task", "exec", "--exec-id", "e1", id, "/bin/sh", "-c", "echo from exec; ls /proc | grep -c '^[0-9]'; exit 5"]);
      assert.equal(e.code, 5, e.stderr);
      const [said, count] = e.stdout.trim().split("\n");
      assert.equal(said, "from exec");
      assert.ok(Number(count) >= 2 && Number(count) <= 8, `exec sees the container's PID namespace (${count} processes)`);

      const ps = ok(c!.ctr(["task", "ps", id]), "ctr task ps");
      const pids = ps.stdout.trim().split("\n").slice(1).map((l) => Number(l.trim().split(/\s+/)[0]));
      assert.equal(pids.length, 2, ps.stdout);
      assert.ok(pids.includes(Number(pid)), `task ps lists the first process ${pid}: ${ps.stdout}`);
      for (const p of pids) assert.match(readFileSync(`/proc/${p}/cgroup`, "utf8"), new RegExp(`/default/${id}$`, "m"));

      ok(c!.ctr(["task", "kill", "-s", "SIGKILL", id]), "ctr task kill");
      let stopped = false;
      for (let i = 0; i < 100 && !stopped; i++) {
        stopped = /\bSTOPPED\b/.test(c!.ctr(["task", "ls"]).stdout.split("\n").find((l) => l.startsWith(`${id} `)) ?? "");
        if (!stopped) await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(stopped, "the task is stopped after SIGKILL");
      ok(c!.ctr(["task", "rm", id]), "ctr task rm");
      ok(c!.ctr(["containers", "rm", id]), "ctr containers rm");
      assertGone(root(), id, bundle(id), mark);
    } finally {
      c!.ctr(["task", "rm", "-f", id]);
      c!.ctr(["containers", "rm", id]);
    }
  });

  test("ctr run -t on a pty: the container's stdio is a terminal", () => {
    const id = `${TAG}-tty`;
    const r = onPty(["ctr", "-a", c!.sock, "run", "-t", "--rm", ...runtime(), image, id, "/bin/sh", "-c", "test -t 0 && test -t 1 && echo on a tty; exit 7"]);
    assert.equal(r.code, 7, r.stdout + r.stderr);
    assert.match(r.stdout, /on a tty/);
    assertGone(root(), id, bundle(id));
  });
});

/** A pod's cgroup parent, made by corerun below each hierarchy as the kubelet's would be. */
const POD_CGROUP = `corerun-${TAG}-pod`;

describe("Kubernetes' CRI: containerd's CRI plugin runs a pod on corerun", { skip: (!isRoot && "needs root") || (ctrMissing && `${ctrMissing} is not installed (tools/setup.sh installs it)`) }, () => {
  let dir = "";
  let c: Containerd | undefined;
  let cri: CriRuntime | undefined;
  let runcRoot = "";
  let image = "";
  // The shim hands corerun a root per containerd namespace; the CRI plugin's is k8s.io.
  const root = () => join(runcRoot, "k8s.io");

  before(async () => {
    dir = workDir();
    runcRoot = join(dir, "corerun-state");
    const cniDir = join(dir, "cni");
    mkdirSync(cniDir);
    mkdirSync(join(dir, "pod-logs"));
    const base = `corerun.test/${TAG}`;
    c = await startContainerd(dir, criConfig({ binary: CORERUN, runcRoot, sandboxImage: `${base}:pause`, cniDir }), true);
    image = importImage(c, busyboxImage(dir, busyboxRootfs(), true), "k8s.io", base);
    cri = criRuntime(c.sock);
  });
  after(async () => {
    try {
      cri?.close();
      if (c) await stopContainerd(c);
      // The pod's cgroup parent is the kubelet's to remove once the pod is gone; here, the test's.
      for (const cg of cgroupsNamed(POD_CGROUP).sort().reverse()) rmdirSync(cg);
    } finally {
      removeWorkDir(dir);
    }
  });

  test("RunPodSandbox, CreateContainer, StartContainer, ExecSync, ContainerStatus, StopPodSandbox, RemovePodSandbox: the container shares the sandbox's PID and IPC namespaces", async () => {
    const mark = `corerun-${TAG}-cri`;
    // As the kubelet sends a hostNetwork pod: the node's network and UTS namespaces, the pod's PID and IPC ones.
    const namespaces = { network: "NODE", pid: "POD", ipc: "POD" };
    const sandboxConfig = {
      metadata: { name: "web", uid: `uid-${TAG}`, namespace: "default", attempt: 0 },
      log_directory: join(dir, "pod-logs"),
      linux: { cgroup_parent: `/${POD_CGROUP}`, security_context: { namespace_options: namespaces } },
    };
    assert.equal((await cri!.call<{ runtime_api_version: string }>("Version", {})).runtime_api_version, "v1");
    const { pod_sandbox_id: pod } = await cri!.call<{ pod_sandbox_id: string }>("RunPodSandbox", { config: sandboxConfig });
    let container = "";
    let sandboxPid = 0;
    try {
      const status = await cri!.call<{ status: { state: string } }>("PodSandboxStatus", { pod_sandbox_id: pod });
      assert.equal(status.status.state, "SANDBOX_READY");
      assert.deepEqual(corerunContainers(root()), [pod], "the sandbox is a corerun container");
      sandboxPid = JSON.parse(ok(run(CORERUN, ["--root", root(), "state", pod]), "corerun state").stdout).pid;

      // The container reports what it shares, then waits for ExecSync to tell it to exit 3.
      const script = [
        `: ${mark}`, "echo pid $$", "echo init $(cat /proc/1/cmdline | tr '\\0' ' ')",
        "[ $(readlink /proc/self/ns/ipc) = $(readlink /proc/1/ns/ipc) ] && echo ipc shared",
        "echo net $(readlink /proc/self/ns/net)", "echo cgroup $(grep -m1 -o 'corerun-[^/]*-pod/.*' /proc/self/cgroup)",
        "while [ ! -e /dev/shm/stop ]; do sleep 0.1; done", "exit 3",
      ].join("; ");
      ({ container_id: container } = await cri!.call<{ container_id: string }>("CreateContainer", {
        pod_sandbox_id: pod, sandbox_config: sandboxConfig,
        config: {
          metadata: { name: "main", attempt: 0 }, image: { image }, command: ["/bin/sh", "-c", script], log_path: "main.log",
          envs: [{ key: "GREETING", value: Buffer.from("from the pod spec") }], linux: { security_context: { namespace_options: namespaces } },
        },
      }));
      await cri!.call("StartContainer", { container_id: container });
      assert.deepEqual(corerunContainers(root()).sort(), [pod, container].sort());

      const e = await cri!.call<{ stdout: Buffer; stderr: Buffer; exit_code: number }>("ExecSync", {
        container_id: container, timeout: 30, cmd: ["/bin/sh", "-c", "echo $GREETING; ps -o pid,args | grep -c sleep; touch /dev/shm/stop"],
      });
      assert.equal(e.exit_code, 0, String(e.stderr));
      const [greeting, sleeps] = String(e.stdout).trim().split("\n");
      assert.equal(greeting, "from the pod spec");
      assert.ok(Number(sleeps) >= 1, "exec sees the sandbox's sleep: one PID namespace for the pod");

      let state = { state: "", exit_code: -1, reason: "" };
      for (let i = 0; i < 100 && state.state !== "CONTAINER_EXITED"; i++) {
        ({ status: state } = await cri!.call<{ status: typeof state }>("ContainerStatus", { container_id: container }));
        if (state.state !== "CONTAINER_EXITED") await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(state.state, "CONTAINER_EXITED");
      assert.equal(state.exit_code, 3);

      // The kubelet's log format: TIME STREAM F|P LINE.
      const log = readFileSync(join(dir, "pod-logs", "main.log"), "utf8").trim().split("\n").map((l) => l.split(" ").slice(3).join(" "));
      assert.notEqual(log[0], "pid 1", "the container's shell is not PID 1: the pod's sandbox is");
      assert.match(log[0]!, /^pid \d+$/);
      assert.equal(log[1], "init /bin/sleep 2147483647", "PID 1 is the sandbox's pause stand-in");
      assert.equal(log[2], "ipc shared");
      assert.equal(log[3], `net ${readlinkSync("/proc/self/ns/net")}`, "a hostNetwork pod is on the node's network");
      assert.equal(log[4], `cgroup ${POD_CGROUP}/${container}`, "the container's cgroup is below the pod's");
    } finally {
      await cri!.call("StopPodSandbox", { pod_sandbox_id: pod });
      await cri!.call("RemovePodSandbox", { pod_sandbox_id: pod });
    }
    // Nothing of the pod is left: no corerun state, cgroup, mount (the sandbox's /dev/shm included) or process.
    assert.deepEqual(corerunContainers(root()), []);
    assert.deepEqual(leftoverState(root()), []);
    for (const id of [pod, container]) {
      assert.deepEqual(cgroupsNamed(id), [], `cgroups named after ${id}`);
      assert.deepEqual(hostMountsUnder(id), [], `mounts of ${id}`);
    }
    assert.deepEqual(processesWith(mark), []);
    let cmdline = "";
    try {
      cmdline = readFileSync(`/proc/${sandboxPid}/cmdline`, "utf8");
    } catch {
      // gone, as it should be
    }
    assert.ok(sandboxPid > 0 && cmdline !== "/bin/sleep\x002147483647\x00", `the sandbox's first process ${sandboxPid} is gone`);
  });
});

const podmanMissing = missing(["podman", "conmon", "script"]);

describe("podman drives corerun", { skip: (!isRoot && "needs root") || (podmanMissing && `${podmanMissing} is not installed (tools/setup.sh installs it)`) }, () => {
  let dir = "";
  let root = "";
  let rootfs = "";
  let runtime = { path: "", calls: "" };
  const names: string[] = [];
  // Until the seccomp work lands corerun refuses a config with linux.seccomp. Where the bounding
  // set lacks CAP_SYS_RESOURCE, podman's default RLIMIT_NOFILE cannot be set by any runtime.
  const runFlags = () => [...(hasSysResource() ? [] : ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=20000:20000"])];
  const podman = (args: string[], timeout = 60_000) => run("podman", ["--runtime", runtime.path, "--cgroup-manager=cgroupfs", ...args], { timeout });
  const podmanCmd = (args: string[]) => ["podman", "--runtime", runtime.path, "--cgroup-manager=cgroupfs", ...args];
  const name = (what: string) => {
    const n = `corerun-${TAG}-${what}`;
    names.push(n);
    return n;
  };
  /** podman's bundle and cgroups are named after the container id, of which the hostname is the start. */
  const gone = (shortId: string, mark?: string) => {
    assert.match(shortId, /^[0-9a-f]{12}$/);
    assertGone(root, shortId, shortId, mark);
  };

  before(() => {
    dir = workDir();
    root = join(dir, "corerun-state");
    runtime = corerunWithRoot(dir, root);
    rootfs = rootfsCopy(dir, busyboxRootfs());
    writeFileSync(join(dir, "shared.txt"), "from the host\n");
  });
  after(() => {
    try {
      for (const n of names) podman(["rm", "-f", "-t", "0", "--ignore", n]);
    } finally {
      removeWorkDir(dir);
    }
  });

  test("run --rm --network none: output, exit status, only lo; corerun was the runtime", () => {
    const r = podman(["run", "--rm", ...runFlags(), "--network", "none", "--rootfs", rootfs, "/bin/sh", "-c", "hostname; echo pid $$; ls /sys/class/net; exit 3"]);
    assert.equal(r.code, 3, r.stderr);
    const [host, pid, ...links] = r.stdout.trim().split("\n");
    assert.equal(pid, "pid 1");
    assert.deepEqual(links, ["lo"]);
    assert.match(readFileSync(runtime.calls, "utf8"), /^create --bundle /m);
    gone(host!);
  });

  test("run --rm -v DIR:/hosttmp:ro and --memory 64m: the volume is read-only, the limit is in the container's cgroup", () => {
    const script = [
      "hostname", "cat /hosttmp/shared.txt", "touch /hosttmp/new 2>/dev/null && echo writable || echo read-only",
      "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max",
    ].join("; ");
    const r = podman(["run", "--rm", ...runFlags(), "--network", "none", "-v", `${dir}:/hosttmp:ro`, "--memory", "64m", "--rootfs", rootfs, "/bin/sh", "-c", script]);
    assert.equal(r.code, 0, r.stderr);
    const [host, shared, rw, limit] = r.stdout.trim().split("\n");
    assert.equal(shared, "from the host");
    assert.equal(rw, "read-only");
    assert.equal(limit, String(64 * 1024 * 1024));
    gone(host!);
  });

  test("run --rm --read-only and --tmpfs (podman's tmpcopyup): / refuses writes, /tmp and /run take them, a tmpfs over /etc starts with its files", () => {
    const script = "touch /x 2>/dev/null || echo root-ro; touch /tmp/x /run/x && echo tmp-rw; cat /etc/passwd | head -1; touch /etc/new && echo etc-rw";
    const r = podman(["run", "--rm", ...runFlags(), "--network", "none", "--read-only", "--mount", "type=tmpfs,destination=/etc", "--rootfs", rootfs, "/bin/sh", "-c", script]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n"), ["root-ro", "tmp-rw", readFileSync(join(rootfs, "etc/passwd"), "utf8").split("\n")[0], "etc-rw"]);
    assert.equal(existsSync(join(rootfs, "etc/new")), false, "the rootfs's /etc is left as it was");
  });

  test("run with --cpuset-cpus, --memory-reservation, --memory-swappiness, --oom-kill-disable, --device-write-bps on the rootfs's disk; update --cpuset-cpus; stats' BLOCK I/O (cgroup v1 files on this host)", { skip: !existsSync("/sys/fs/cgroup/memory/memory.swappiness") && "needs the v1 memory hierarchy" }, async (t) => {
    const disk = diskUnder(rootfs);
    if (!disk) return t.skip(`the rootfs copy ${rootfs} is on no block device: no disk to throttle or count`);
    const n = name("res");
    const cpus = readFileSync("/sys/devices/system/cpu/online", "utf8").trim();
    const last = cpus.split(/[-,]/).at(-1)!;
    try {
      const script = "dd if=/dev/zero of=/written bs=1M count=4 oflag=direct 2>/dev/null; echo up; exec sleep 600";
      const flags = ["--cpuset-cpus", last, "--memory", "64m", "--memory-reservation", "32m", "--memory-swappiness", "10", "--oom-kill-disable", "--device-write-bps", `${disk}:2mb`];
      ok(podman(["run", "-d", "--name", n, ...runFlags(), "--network", "none", ...flags, "--rootfs", rootfs, "/bin/sh", "-c", script]), "podman run -d");
      const read = "cd /sys/fs/cgroup && nproc && cat memory/memory.soft_limit_in_bytes memory/memory.swappiness blkio/blkio.throttle.write_bps_device && grep oom_kill_disable memory/memory.oom_control";
      const seen = ok(podman(["exec", n, "/bin/sh", "-c", read]), "podman exec").stdout.trim().split("\n");
      assert.deepEqual(seen, ["1", String(32 << 20), "10", `${devText(statSync(disk).rdev)} 2097152`, "oom_kill_disable 1"]);
      ok(podman(["update", "--cpuset-cpus", cpus, n]), "podman update");
      assert.equal(ok(podman(["exec", n, "nproc"]), "podman exec nproc").stdout.trim(), String(expandIdList(cpus)!.length));
      // The 4 MiB written past the page cache (at 2 MB/s), read by podman from the blkio hierarchy corerun placed the container in.
      await until("the 4 MiB written", () => podman(["logs", n]).stdout.includes("up"), 20_000, 200);
      const io = ok(podman(["stats", "--no-stream", "--format", "{{.BlockIO}}", n]), "podman stats").stdout.trim();
      const written = /^\S+ \/ (\d+(?:\.\d+)?)MB$/.exec(io);
      assert.ok(written && Number(written[1]) >= 4.19, `written: ${io}`);
    } finally {
      podman(["rm", "-f", "-t", "0", "--ignore", n]);
    }
  });

  test("run --rm --pid host: the container sees the host's processes, as with runc", () => {
    const r = podman(["run", "--rm", ...runFlags(), "--network", "none", "--pid", "host", "--rootfs", rootfs, "/bin/sh", "-c", "echo $$; cat /proc/1/comm"]);
    assert.equal(r.code, 0, r.stderr);
    const [pid, comm] = r.stdout.trim().split("\n");
    assert.notEqual(pid, "1");
    assert.equal(comm, readFileSync("/proc/1/comm", "utf8").trim());
  });

  test("run -d on the default bridge with -p: busybox httpd answers from the host", async () => {
    const n = name("web");
    const port = await freePort();
    try {
      const id = ok(podman(["run", "-d", "--name", n, ...runFlags(), "-p", `${port}:80`, "--rootfs", rootfs, "httpd", "-f", "-p", "80", "-h", "/var/www"]), "podman run -d").stdout.trim();
      assert.equal(await httpGet(`http://127.0.0.1:${port}/`), readFileSync(join(rootfs, "var/www/index.html"), "utf8"));
      const addr = ok(podman(["inspect", "--format", "{{.NetworkSettings.IPAddress}}", n]), "podman inspect").stdout.trim();
      assert.match(addr, /^\d+\.\d+\.\d+\.\d+$/, "the container has an address on podman's bridge");
      ok(podman(["rm", "-f", "-t", "0", n]), "podman rm -f");
      gone(id.slice(0, 12));
    } finally {
      podman(["rm", "-f", "-t", "0", "--ignore", n]);
    }
  });

  test("run --rm -it on a pty: the container's stdio is a terminal", () => {
    // The program stays a moment after its output: podman loses the output of an -it program
    // that ends within a few ms of start (with runc as its runtime too, about 1 run in 15 here).
    const r = onPty(podmanCmd(["run", "--rm", "-it", ...runFlags(), "--network", "none", "--rootfs", rootfs, "/bin/sh", "-c", "hostname; test -t 0 && test -t 1 && echo on a tty; sleep 0.2; exit 4"]));
    assert.equal(r.code, 4, r.stdout + r.stderr);
    assert.match(r.stdout, /^on a tty$/m);
    const host = /^([0-9a-f]{12})$/m.exec(r.stdout)?.[1];
    assert.ok(host, r.stdout);
    gone(host);
  });

  test("run -d, exec, exec -it, ps, top, stop, rm", () => {
    const n = name("life");
    const mark = `corerun-${TAG}-life`;
    try {
      const id = ok(podman(["run", "-d", "--name", n, ...runFlags(), "--network", "none", "--rootfs", rootfs, "/bin/sh", "-c", `: ${mark}; trap 'exit 0' TERM; while :; do sleep 0.2; done`]), "podman run -d").stdout.trim();
      const e = podman(["exec", n, "/bin/sh", "-c", "echo from exec; exit 5"]);
      assert.equal(e.code, 5, e.stderr);
      assert.equal(e.stdout, "from exec\n");

      const t = onPty(podmanCmd(["exec", "-it", n, "/bin/sh", "-c", "test -t 0 && test -t 1 && echo exec on a tty"]));
      assert.equal(t.code, 0, t.stdout + t.stderr);
      assert.match(t.stdout, /^exec on a tty$/m);

      const ps = ok(podman(["ps", "--filter", `name=^${n}$`, "--format", "{{.Names}} {{.Status}}"]), "podman ps").stdout;
      assert.match(ps, new RegExp(`^${n} Up `, "m"));
      const top = ok(podman(["top", n, "pid", "args"]), "podman top").stdout;
      assert.match(top, new RegExp(`^1 .*${mark}`, "m"), top);

      ok(podman(["stop", "-t", "10", n]), "podman stop");
      assert.equal(ok(podman(["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", n]), "podman inspect").stdout.trim(), "exited 0", "SIGTERM reached the shell's trap");
      ok(podman(["rm", n]), "podman rm");
      gone(id.slice(0, 12), mark);
    } finally {
      podman(["rm", "-f", "-t", "0", "--ignore", n]);
    }
  });
});

const dockerMissing = missing(["dockerd", "docker", "containerd", "ctr"]);

describe("dockerd drives corerun", { skip: !isRoot && "needs root" }, () => {
  test("docker run --runtime corerun: output and exit status", async (t) => {
    if (dockerMissing) return t.skip(`${dockerMissing} is not installed: Docker's engine is not tested on this machine`);
    const dir = workDir();
    let c: Containerd | undefined;
    try {
      c = await startContainerd(dir);
      const d = await startDockerd(dir, c, ["--add-runtime", `corerun=${CORERUN}`]);
      if (typeof d === "string") return t.skip(d);
      try {
        const tar = join(dir, "rootfs.tar");
        ok(run("tar", ["-C", busyboxRootfs(), "-cf", tar, "."]), "tar");
        ok(d.docker(["import", tar, `corerun-${TAG}:busybox`]), "docker import");
        const r = d.docker(["run", "--rm", "--runtime", "corerun", "--network", "none", `corerun-${TAG}:busybox`, "/bin/sh", "-c", "echo hello from corerun; echo pid $$; exit 3"]);
        assert.equal(r.code, 3, r.stderr);
        assert.equal(r.stdout, "hello from corerun\npid 1\n");
        assert.deepEqual(corerunContainers(join(dir, "docker-exec", "runtime-runc", "moby")), []);
      } finally {
        await stopDaemon(d);
      }
    } finally {
      try {
        if (c) await stopContainerd(c);
      } finally {
        removeWorkDir(dir);
      }
    }
  });
});
