import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, rmdirSync, statSync, unlinkSync } from "node:fs";
import { dirname, join } from "node:path";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { linuxSyscall as sys, PR_SET_CHILD_SUBREAPER, WEXITED, WNOHANG, isErrno, type WaitResult } from "@corerun/syscall";
import { exitCodeOf, type ProcessEnd } from "@corerun/cli";
import { missingMountPoints } from "@corerun/rootfs";
import { cgroupManager, formatBytes, type CgroupManager } from "@corerun/cgroup";
import type { ConsolaInstance } from "consola";
import {
  createContainer, isAlive, procStartTime, readState, removeContainer, setStatus, updateState, type State,
} from "@corerun/state";
import { goPath, readyPath, sendGo } from "@corerun/sync";
import type { RunConfig } from "./args.ts";

/** The bundled tools sit next to corerun's own bundle. */
const DIST = dirname(process.argv[1] ?? ".");

export function toolCommand(name: string): string[] {
  return [process.execPath, join(DIST, `${name}.cjs`)];
}

export interface Container {
  id: string;
  dir: string;
  path: string;
  hostname: string;
  /** The cgroup directories the first process joins right before the exec. */
  cgroupDirs: string[];
}

/** Records the container, and the mount points it will add to the rootfs, before creating any. */
export function createState(cfg: RunConfig): Container {
  const owner = { pid: process.pid, startTime: procStartTime(process.pid) ?? 0 };
  const mountPoints = missingMountPoints(cfg.rootfs, cfg.volumes);
  const config = {
    rootfs: cfg.rootfs, command: cfg.command, hostname: cfg.hostname, env: cfg.env, cwd: cfg.workdir,
    volumes: cfg.volumes, network: cfg.network, limits: cfg.limits, cgroupParent: cfg.cgroupParent,
  };
  const { id, dir, path } = createContainer(cfg.root, config, { owner, mountPoints });
  sys.mkfifo(readyPath(dir), 0o600);
  sys.mkfifo(goPath(dir), 0o600);
  return { id, dir, path, hostname: cfg.hostname ?? id, cgroupDirs: [] };
}

/**
 * Every container gets a cgroup, limits or not: it is how every process of the container is
 * found and killed at the end. It is made here, in-process with the library corerun-cgroup is
 * built on, before corerun-exec starts, because corerun-exec opens its cgroup.procs files while
 * the host's paths are still in reach (before pivot_root) and joins through them right before
 * the exec. Recorded in the state first, so that cleanup finds it after a crash.
 */
export function createCgroup(cfg: RunConfig, c: Container): CgroupManager {
  const cg = cgroupManager({ name: c.id, parent: cfg.cgroupParent });
  updateState(c.path, () => ({ cgroup: { name: cg.name, parent: cg.parent, paths: cg.paths() } }));
  cg.create(cfg.limits);
  c.cgroupDirs = cg.dirs();
  return cg;
}

/** One line when the kernel's OOM killer acted in the container's cgroup. */
export function reportOom(cg: CgroupManager, limits: RunConfig["limits"], log: ConsolaInstance): void {
  const kills = cg.stats().oomKills ?? 0;
  if (kills > 0) {
    const limit = limits.memory ? ` (memory limit ${formatBytes(limits.memory)})` : "";
    log.error(`out of memory: the kernel's OOM killer killed ${kills} process${kills > 1 ? "es" : ""} in the container${limit}`);
  }
}

/**
 * The cgroup namespace is not among them: corerun-exec creates it after joining the container's
 * cgroup, so that the container sees that cgroup as its root.
 */
export function namespacesFor(cfg: RunConfig): string {
  return ["pid", "mount", "uts", "ipc", cfg.network === "host" ? undefined : "net"].filter(Boolean).join(",");
}

/** corerun-exec's command line: the last step, then the user's command. */
export function execArgs(cfg: RunConfig, c: Pick<Container, "dir" | "hostname" | "cgroupDirs">): string[] {
  return [
    "--sync-dir", c.dir, "--mount-proc", "--hostname", c.hostname,
    ...c.cgroupDirs.flatMap((d) => ["--cgroup", d]), "--cgroupns",
    ...cfg.env.flatMap((e) => ["-e", e]), "-w", cfg.workdir, "--", ...cfg.command,
  ];
}

export function mountArgs(cfg: RunConfig, pid: number | string, syncDir: string): string[] {
  return ["--pid", String(pid), "--rootfs", cfg.rootfs, ...cfg.volumes.flatMap((v) => ["-v", `${v.source}:${v.target}:${v.readonly ? "ro" : "rw"}`]), "--sync-dir", syncDir];
}

/**
 * Starts corerun-ns, which starts corerun-exec as PID 1 of the new namespaces and exits; the
 * container's first process is then re-parented to corerun, a child subreaper, which reaps it.
 */
export async function startNamespaces(cfg: RunConfig, c: Container): Promise<{ ns: ChildProcess; pid: number }> {
  sys.prctl(PR_SET_CHILD_SUBREAPER, 1);
  const [node, ns] = toolCommand("corerun-ns");
  const exec = toolCommand("corerun-exec");
  const child = spawn(node!, [ns!, "--detach", "--json-status-fd", "3", "--ns", namespacesFor(cfg), "--", ...exec, ...execArgs(cfg, c)], {
    stdio: ["inherit", "inherit", "inherit", "pipe"],
  });
  const lines = createInterface({ input: child.stdio[3] as NodeJS.ReadableStream });
  const first = new Promise<string | undefined>((resolve) => {
    lines.once("line", resolve);
    lines.once("close", () => resolve(undefined));
  });
  const [line] = await Promise.all([first, once(child, "exit")]);
  lines.close();
  const pid = line ? (JSON.parse(line) as { pid?: number }).pid : undefined;
  if (!pid) throw new ToolFailed("corerun-ns", child.exitCode ?? 125);
  return { ns: child, pid };
}

/** A tool failed and has already said why on stderr; corerun exits with its status. */
export class ToolFailed extends Error {
  override name = "ToolFailed";
  constructor(readonly tool: string, readonly exitCode: number) {
    super(`${tool} failed`);
  }
}

export function recordInit(c: Container, pid: number): State {
  return updateState(c.path, () => ({ init: { pid, startTime: procStartTime(pid) ?? 0 } }));
}

export async function buildTree(cfg: RunConfig, c: Container, pid: number): Promise<void> {
  const [node, tool] = toolCommand("corerun-mount");
  const child = spawn(node!, [tool!, ...mountArgs(cfg, pid, c.dir), "--die-with-parent"], { stdio: ["ignore", "inherit", "inherit"] });
  const [code] = (await once(child, "exit")) as [number | null, NodeJS.Signals | null];
  if (code !== 0) throw new ToolFailed("corerun-mount", code ?? 125);
}

export function start(c: Container): void {
  setStatus(c.path, "running");
  sendGo(c.dir);
}

const FORWARDED = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"] as const;

/**
 * Waits for the container's first process. It is not a child libuv knows about, so SIGCHLD is
 * watched here and waitid(WNOHANG) asks about that one pid only; libuv still reaps its own
 * children. Signal listeners do not keep Node's event loop alive, so an interval does, and
 * doubles as a safety net for a SIGCHLD that arrives while libuv is handling its own.
 * Signals corerun receives go on to the container.
 */
export function waitContainer(pid: number): Promise<ProcessEnd> {
  const forward = (sig: NodeJS.Signals) => {
    try {
      process.kill(pid, sig);
    } catch {
      // Already gone: the SIGCHLD that follows ends the wait.
    }
  };
  for (const sig of FORWARDED) process.on(sig, forward);
  return new Promise((resolve) => {
    const check = () => {
      let r: WaitResult | null;
      try {
        r = sys.waitid(pid, WEXITED | WNOHANG);
      } catch (err) {
        if (!isErrno(err, "ECHILD")) throw err;
        r = { pid, exitCode: 125 };
      }
      if (!r) return;
      clearInterval(keepAlive);
      process.off("SIGCHLD", check);
      for (const sig of FORWARDED) process.off(sig, forward);
      resolve(r.signal !== undefined ? { signal: r.signal } : { exitCode: r.exitCode ?? 125 });
    };
    const keepAlive = setInterval(check, 1000);
    process.on("SIGCHLD", check);
    check();
  });
}

/** Removes the mount points corerun added to the rootfs, if they are still empty. */
export function removeMountPoints(state: Pick<State, "mountPoints">): void {
  for (const m of [...(state.mountPoints ?? [])].reverse()) {
    try {
      if (m.kind === "dir") rmdirSync(m.path);
      else if (statSync(m.path).size === 0) unlinkSync(m.path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOENT" && code !== "ENOTEMPTY" && code !== "EBUSY") throw err;
    }
  }
}

/**
 * Ends whatever is left of a container and removes everything recorded for it: a live first
 * process is killed (its PID namespace dies with it), mount points go, then the state directory.
 */
export function teardown(root: string, id: string, statePath: string): void {
  let state: State | undefined;
  try {
    state = readState(statePath);
  } catch {
    state = undefined;
  }
  if (state && isAlive(state.init)) {
    try {
      process.kill(state.init!.pid, "SIGKILL");
    } catch {
      // exited meanwhile
    }
  }
  if (state?.cgroup) {
    const cg = cgroupManager({ name: state.cgroup.name, parent: state.cgroup.parent });
    cg.killAll();
    cg.remove();
  }
  if (state) removeMountPoints(state);
  removeContainer(root, id);
}

export function exitStatus(end: ProcessEnd): number {
  return exitCodeOf(end);
}

export function readPidOf(path: string): number {
  return Number(readFileSync(path, "utf8").trim());
}
