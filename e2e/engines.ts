/**
 * Real container engines around corerun, for the e2e suite: a private containerd (its own root,
 * state and sockets under a temporary directory), an OCI image made offline from the busybox
 * rootfs, a private dockerd on top of it, and podman pointed at corerun with a private state root.
 * Everything lives under one mkdtemp directory that `removeWorkDir` removes again.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, closeSync, constants, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { BIN, hostMountsUnder, run, type Result } from "./helpers.ts";

/** Whether an executable is on PATH. */
export function onPath(name: string): boolean {
  return (process.env.PATH ?? "/usr/bin:/bin").split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, name), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** The first missing command of a list, for a skip message. */
export function missing(commands: string[]): string | undefined {
  return commands.find((c) => !onPath(c));
}

const WORK_PREFIX = join(tmpdir(), "corerun-e2e-eng-");

/** A private working directory for one engine's daemon, bundles and state. */
export function workDir(): string {
  return mkdtempSync(WORK_PREFIX);
}

/**
 * Removes a work directory made by `workDir`. Mounts a failed test left under it are detached
 * first, so that the removal cannot reach through them into a lower layer or a host path.
 */
export function removeWorkDir(dir: string): void {
  if (!dir.startsWith(WORK_PREFIX) || dir.length <= WORK_PREFIX.length) throw new Error(`refusing to remove ${dir}`);
  const mounts = hostMountsUnder(dir).map((l) => l.split(" ")[4]!).filter((p) => p.startsWith(`${dir}/`));
  for (const m of mounts.sort().reverse()) run("umount", ["-l", m]);
  if (hostMountsUnder(dir).some((l) => l.split(" ")[4]!.startsWith(`${dir}/`))) throw new Error(`mounts are left under ${dir}; not removing it`);
  rmSync(dir, { recursive: true, force: true });
}

/** Shell quoting for a command line handed to `script -c` or `sh -c`. */
export function shq(args: string[]): string {
  return args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`)).join(" ");
}

/**
 * Runs a command line on a pty, as a user's terminal would: `script -qec CMD /dev/null`. When its
 * own stdin ends, script writes the EOF character to the pty, which is NUL without a terminal to
 * take it from; the pty echoes it as "^@", removed here with the carriage returns.
 */
export function onPty(args: string[], timeout = 60_000): Result {
  const r = run("script", ["-qec", shq(args), "/dev/null"], { timeout });
  return { ...r, stdout: r.stdout.replaceAll("\r", "").replaceAll("^@", "") };
}

/** cgroup directories on the host (every hierarchy, five levels deep) whose name contains `fragment`. */
export function cgroupsNamed(fragment: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, depth: number) => {
    let entries: string[];
    try {
      entries = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    } catch {
      return;
    }
    for (const name of entries) {
      if (name.includes(fragment)) out.push(join(dir, name));
      if (depth < 5) walk(join(dir, name), depth + 1);
    }
  };
  walk("/sys/fs/cgroup", 0);
  return out;
}

/** The container ids corerun still has under a state root (`corerun list -q`); none when it does not exist. */
export function corerunContainers(root: string): string[] {
  if (!existsSync(root)) return [];
  const r = run(join(BIN, "corerun"), ["--root", root, "list", "-q"]);
  if (r.code !== 0) throw new Error(`corerun list --root ${root}: ${r.stderr}`);
  return r.stdout.split("\n").filter(Boolean);
}

/**
 * Whether this host's capability bounding set has CAP_SYS_RESOURCE. Without it no runtime can
 * raise RLIMIT_NOFILE above the current hard limit, which podman asks for by default.
 */
export function hasSysResource(): boolean {
  const line = readFileSync("/proc/self/status", "utf8").split("\n").find((l) => l.startsWith("CapBnd:"));
  return line !== undefined && ((BigInt(`0x${line.split(/\s+/)[1]}`) >> 24n) & 1n) === 1n;
}

/** A daemon started by a test, its output in a log file (never a pipe the runner would wait on). */
export interface Daemon {
  proc: ChildProcess;
  log: string;
  exited: boolean;
}

function startDaemon(program: string, args: string[], log: string): Daemon {
  const fd = openSync(log, "a");
  try {
    const proc = spawn(program, args, { stdio: ["ignore", fd, fd] });
    const d: Daemon = { proc, log, exited: false };
    proc.once("exit", () => {
      d.exited = true;
    });
    return d;
  } finally {
    closeSync(fd);
  }
}

/** Polls `ready` until it succeeds, the daemon exits, or the time is up. */
async function waitReady(d: Daemon, ready: () => boolean, seconds: number): Promise<boolean> {
  for (let i = 0; i < seconds * 10; i++) {
    if (d.exited) return false;
    if (ready()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/** Ends a daemon: SIGTERM, then SIGKILL after ten seconds. */
export async function stopDaemon(d: Daemon): Promise<void> {
  if (d.exited) return;
  const gone = new Promise((r) => d.proc.once("exit", r));
  d.proc.kill("SIGTERM");
  const timer = setTimeout(() => d.proc.kill("SIGKILL"), 10_000);
  await gone;
  clearTimeout(timer);
}

/** The last lines of a daemon's log, for a failure or skip message. */
export function logTail(d: Daemon, lines = 5): string {
  return existsSync(d.log) ? readFileSync(d.log, "utf8").trim().split("\n").slice(-lines).join("\n") : "(no log)";
}

export interface Containerd extends Daemon {
  dir: string;
  sock: string;
  config: string;
  /** Runs `ctr -a SOCK ARGS`. */
  ctr(args: string[], timeout?: number): Result;
}

/**
 * Starts containerd with its own root, state, sockets and opt directory under `dir`; `extra` is
 * appended to its config.toml (version 2). The CRI plugin is disabled unless `cri` is true.
 */
export async function startContainerd(dir: string, extra = "", cri = false): Promise<Containerd> {
  const sock = join(dir, "containerd.sock");
  const config = join(dir, "containerd.toml");
  writeFileSync(config, [
    "version = 2",
    `root = "${join(dir, "containerd-root")}"`,
    `state = "${join(dir, "containerd-state")}"`,
    cri ? "" : 'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
    "[grpc]",
    `  address = "${sock}"`,
    "[ttrpc]",
    `  address = "${sock}.ttrpc"`,
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = "${join(dir, "containerd-opt")}"`,
    extra,
  ].join("\n"));
  const d = startDaemon("containerd", ["--config", config], join(dir, "containerd.log"));
  const ctr = (args: string[], timeout = 60_000) => run("ctr", ["-a", sock, ...args], { timeout });
  const c: Containerd = Object.assign(d, { dir, sock, config, ctr });
  if (!(await waitReady(d, () => ctr(["version"], 5_000).code === 0, 30))) {
    await stopDaemon(d);
    throw new Error(`containerd did not start:\n${logTail(d)}`);
  }
  return c;
}

/** Removes every container of every namespace of a test's containerd (their tasks killed first), then stops it. */
export async function stopContainerd(c: Containerd): Promise<void> {
  if (!c.exited) {
    for (const ns of c.ctr(["namespaces", "ls", "-q"]).stdout.split("\n").filter(Boolean)) {
      for (const id of c.ctr(["-n", ns, "containers", "ls", "-q"]).stdout.split("\n").filter(Boolean)) {
        c.ctr(["-n", ns, "tasks", "rm", "-f", id]);
        c.ctr(["-n", ns, "containers", "rm", id]);
      }
    }
  }
  await stopDaemon(c);
}

/**
 * An OCI image archive of the busybox rootfs, made offline with umoci: a layout with one layer
 * holding the whole rootfs, tagged `busybox`, as `ctr images import` and `docker load` take it.
 * With `pause`, the same layer is also tagged `pause` with a long sleep as its entrypoint, to
 * stand in for a pod sandbox's pause image.
 */
export function busyboxImage(dir: string, rootfs: string, pause = false): string {
  const layout = join(dir, "oci-layout");
  const steps = [["init", "--layout", layout], ["new", "--image", `${layout}:busybox`], ["insert", "--image", `${layout}:busybox`, rootfs, "/"]];
  if (pause) steps.push(["config", "--image", `${layout}:busybox`, "--tag", "pause", "--config.entrypoint", "/bin/sleep", "--config.cmd", "2147483647"]);
  for (const args of steps) {
    const r = run("umoci", args);
    if (r.code !== 0) throw new Error(`umoci ${args.join(" ")}: ${r.stderr}`);
  }
  const tar = join(dir, "busybox-oci.tar");
  const r = run("tar", ["-C", layout, "-cf", tar, "."]);
  if (r.code !== 0) throw new Error(`tar: ${r.stderr}`);
  return tar;
}

/**
 * Imports the image archive into containerd and returns its name. `baseName` names the images
 * (BASE:busybox, BASE:pause) where a configuration must name them in advance.
 */
export function importImage(c: Containerd, tar: string, ns = "default", baseName?: string): string {
  const r = c.ctr(["-n", ns, "images", "import", ...(baseName ? ["--base-name", baseName] : []), tar]);
  if (r.code !== 0) throw new Error(`ctr images import: ${r.stderr}`);
  const name = c.ctr(["-n", ns, "images", "ls", "-q"]).stdout.split("\n").find((n) => n.endsWith(":busybox"));
  if (!name) throw new Error(`ctr images import: no busybox image after import:\n${r.stdout}`);
  return name;
}

/**
 * containerd's CRI plugin as a Kubernetes node would configure it (config version 2), with
 * corerun as the runc binary of its default runtime and its state under `runcRoot`:
 * - sandbox_image: the pause stand-in imported offline (nothing is pulled);
 * - restrict_oom_score_adj: a sandbox asks for oom_score_adj -998, which needs CAP_SYS_RESOURCE,
 *   missing from some hosts' bounding set; containerd then keeps its own value as the floor;
 * - disable_apparmor: nothing to load where the host has no AppArmor;
 * - cni: an empty private directory; pods on the node's network need no plugin.
 */
export function criConfig(o: { binary: string; runcRoot: string; sandboxImage: string; cniDir: string }): string {
  return [
    '[plugins."io.containerd.grpc.v1.cri"]',
    `  sandbox_image = "${o.sandboxImage}"`,
    "  restrict_oom_score_adj = true",
    "  disable_apparmor = true",
    '  [plugins."io.containerd.grpc.v1.cri".cni]',
    `    conf_dir = "${o.cniDir}"`,
    `    bin_dir = "${o.cniDir}"`,
    '  [plugins."io.containerd.grpc.v1.cri".containerd]',
    '    default_runtime_name = "runc"',
    '    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]',
    '      runtime_type = "io.containerd.runc.v2"',
    '      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]',
    `        BinaryName = "${o.binary}"`,
    `        Root = "${o.runcRoot}"`,
  ].join("\n");
}

/**
 * An executable that runs bin/corerun with a private state root in front of the engine's own
 * arguments, and records each call's arguments in `calls`. Podman 4.3 does not hand
 * `--runtime-flag` to the cleanup process it starts after a container exits (that one runs
 * `delete --force` with no flags), so a root given as a runtime flag would lose containers.
 */
export function corerunWithRoot(dir: string, root: string): { path: string; calls: string } {
  mkdirSync(root, { recursive: true, mode: 0o700 });
  const path = join(dir, "corerun");
  const calls = join(dir, "corerun-calls.log");
  writeFileSync(path, `#!/bin/sh\necho "$*" >> ${shq([calls])}\nexec ${shq([join(BIN, "corerun")])} --root ${shq([root])} "$@"\n`, { mode: 0o755 });
  return { path, calls };
}

/** A copy of the rootfs for an engine that writes into the rootfs it is given (podman's mount points). */
export function rootfsCopy(dir: string, rootfs: string): string {
  const copy = join(dir, "rootfs");
  const r = run("cp", ["-a", rootfs, copy]);
  if (r.code !== 0) throw new Error(`cp -a ${rootfs}: ${r.stderr}`);
  return copy;
}

/** A TCP port nobody listens on right now, for a published port. */
export async function freePort(): Promise<number> {
  const { createServer } = await import("node:net");
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** GETs a URL, retrying while the server comes up; the body, or the last error. */
export async function httpGet(url: string, seconds = 10): Promise<string> {
  let last: unknown;
  for (let i = 0; i < seconds * 5; i++) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      return await res.text();
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  throw new Error(`GET ${url}: ${String(last)}`);
}

export interface Dockerd extends Daemon {
  sock: string;
  /** Runs `docker -H unix://SOCK ARGS`. */
  docker(args: string[], opts?: { input?: string; timeout?: number }): Result;
}

/**
 * Starts dockerd on a test's containerd with its own data root, exec root, socket and pid file,
 * no bridge and no iptables rules. Returns undefined, with the reason, when dockerd cannot run here.
 */
export async function startDockerd(dir: string, containerd: Containerd, args: string[]): Promise<Dockerd | string> {
  const sock = join(dir, "docker.sock");
  const d = startDaemon("dockerd", [
    "--containerd", containerd.sock, "--data-root", join(dir, "docker-data"), "--exec-root", join(dir, "docker-exec"),
    "--pidfile", join(dir, "docker.pid"), "--host", `unix://${sock}`, "--bridge", "none", "--iptables=false", ...args,
  ], join(dir, "dockerd.log"));
  const docker = (a: string[], opts: { input?: string; timeout?: number } = {}) => run("docker", ["-H", `unix://${sock}`, ...a], opts);
  if (!(await waitReady(d, () => docker(["version"], { timeout: 5_000 }).code === 0, 30))) {
    await stopDaemon(d);
    return `dockerd could not start on this machine:\n${logTail(d)}`;
  }
  return Object.assign(d, { sock, docker });
}
