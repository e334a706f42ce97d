/**
 * Detached containers: `run -d` under corerun-monitor, and the commands that act on a container
 * after its start (logs, stop, rm, inspect; ps's statuses).
 *
 *   client (corerun run -d)          corerun-monitor (C, setsid, subreaper)      start (corerun run -d)
 *   spawn monitor ─────────────────► fork+exec the start ───────────────────────► createState (owner: monitor)
 *                                    ◄──────────────── "id ID" on CORERUN_REPORT_FD
 *                                                                                cgroup, first process
 *                                                                                (stdout/stderr: the monitor's
 *                                                                                pipes), tree, network, go
 *                                    ◄──────────────── "pid PID"; the start exits, nothing torn down
 *                                    ◄──────────────── with -t: "tty master", "tty peer" (SCM_RIGHTS);
 *                                                      with -i: "stdin"
 *   ◄──────── "ok ID" | "fail CODE"  first process re-parented to the monitor
 *   prints ID, exits 0               log lines → ROOT/ID/container.log (json-file)
 *                                    attach clients ↔ ROOT/ID/attach.sock (corerun attach)
 *                                    first process exits → corerun __monitor-exit ROOT ID STATUS MS rm|keep
 *                                    (records exitCode and finished, releases or removes), monitor exits
 */
import { spawn } from "node:child_process";
import { closeSync, existsSync, fstatSync, openSync, readdirSync, readSync, statSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { CPU_PERIOD, devicePath } from "@corerun/cgroup";
import { DEFAULT_SHM_SIZE } from "@corerun/rootfs";
import { nodeCommand, defineTool, faultPoint, printJson, printTable, signalName, UsageError, writeErr, writeOut, type ToolContext } from "@corerun/cli";
import { netPaths, portString, publishedPorts, readRecords, type PublishedPort } from "@corerun/net";
import {
  isAlive, openRecorded, procStartTime, readState, readStates, stateRoot, statePath, updateState, type Detached, type ProcessRef, type State,
} from "@corerun/state";
import { FD_CLOEXEC, fdSender, isErrno, linuxSyscall as sys } from "@corerun/syscall";
import { FILES_ENV, type RunConfig } from "./args.ts";
import { eachNamed, liveStatus, mustFind, ociPause, recordedCgroup } from "./oci.ts";
import { rootArg } from "./oci-calls.ts";
import { teardown, type Container } from "./steps.ts";
import type { Terminal } from "./tty.ts";
import { LOG_MAX_BYTES, parseGraceSeconds, RESTART_ENV, restartDelay, restartText, timeArg } from "./restart.ts";
import { nextProbeMs } from "./health.ts";

/** The hidden word by which corerun-monitor runs corerun at the container's exit. */
export const MONITOR_EXIT = "__monitor-exit";

const DIST = dirname(process.argv[1] ?? ".");

/** The fds corerun-monitor hands to the start it runs (see monitor.c). */
interface MonitorFds {
  stdout: number;
  stderr: number;
  report: number;
}

const FD_ENV = { stdout: "CORERUN_STDOUT_FD", stderr: "CORERUN_STDERR_FD", report: "CORERUN_REPORT_FD" } as const;

/**
 * The monitor's fds, taken out of the environment (the tools must not see them) and marked
 * close-on-exec (no process but the container's first gets its output pipes, through dup2).
 * undefined when this process is not a start run by corerun-monitor.
 */
function takeMonitorFds(env = process.env): MonitorFds | undefined {
  if (env[FD_ENV.report] === undefined) return undefined;
  const fds = {} as Record<keyof MonitorFds, number>;
  for (const [key, name] of Object.entries(FD_ENV) as [keyof MonitorFds, string][]) {
    const value = env[name];
    if (value === undefined || !/^\d+$/.test(value)) throw new Error(`unable to convert ${name}=${value ?? ""} to an fd`);
    fds[key] = Number(value);
    delete env[name];
    sys.setFdFlags(fds[key], FD_CLOEXEC);
  }
  return fds;
}

/** The start of a detached container, as run by corerun-monitor: what run() does differently. */
export interface DetachedStart {
  /** The monitor owns the container: cleanup leaves it alone while the monitor lives. */
  extra: Pick<State, "owner" | "detached">;
  /** --restart: the id of the container the monitor starts again (its state is reused). */
  restartOf: string | undefined;
  /** The pty's window size: the terminal of the client that ran run -t (-dt, -it), else the default. */
  size: { height: number; width: number } | undefined;
  created(c: Container): void;
  /** Runs fn (the clone of the first process) with the container's output pipes as fds 1 and 2. */
  withOutput<T>(fn: () => T): T;
  /** Hands the container's pty (-t) to the monitor; the start keeps no copy. */
  terminal(t: Terminal): void;
  started(pid: number, c: Container): void;
}

function killRecorded(ref: ProcessRef | undefined): void {
  const fd = openRecorded(sys, ref);
  if (fd === undefined) return;
  try {
    signal(fd, 9);
  } finally {
    closeSync(fd);
  }
}

/**
 * A foreground run -it runs under corerun-monitor too, its corerun attached to it: the detach keys
 * then leave it running, as Docker's. Rootless too: the monitor needs no privilege.
 */
export function attachedRun(cfg: RunConfig): boolean {
  return !cfg.detach && cfg.tty && cfg.interactive;
}

/**
 * The size of the terminal of the client that ran `run -t` (-dt, -it), which the start gives the
 * pty before the container runs, as Docker's client passes its ConsoleSize. The monitor keeps its
 * environment, so every run of a restarted container begins at that size too, as Docker's.
 */
const SIZE_ENV = "CORERUN_CONSOLE_SIZE";

export function detachedStart(cfg: RunConfig): DetachedStart | undefined {
  if (!cfg.detach && !attachedRun(cfg)) return undefined;
  const fds = takeMonitorFds();
  if (!fds) return undefined;
  const restartOf = process.env[RESTART_ENV];
  delete process.env[RESTART_ENV];
  // Read by parseRunConfig already; the tools this start runs have no use for it.
  delete process.env[FILES_ENV];
  if (restartOf !== undefined && !/^[0-9a-f]{12}$/.test(restartOf)) throw new Error(`unable to take ${RESTART_ENV}=${restartOf} as a container id`);
  const sizeText = process.env[SIZE_ENV];
  delete process.env[SIZE_ENV];
  const sized = /^(\d+)x(\d+)$/.exec(sizeText ?? "");
  const monitor: ProcessRef = { pid: process.ppid, startTime: procStartTime(process.ppid) ?? 0 };
  const report = (line: string) => writeAll(fds.report, `${line}\n`);
  // The monitor knows an existing container at once: a start that then fails or is killed, before
  // it would report the id, is still recorded as that container's exit (it stays, exited).
  if (restartOf !== undefined) report(`id ${restartOf}`);
  return {
    size: sized ? { height: Number(sized[1]), width: Number(sized[2]) } : undefined,
    extra: { owner: monitor, detached: { monitor, rm: cfg.rm, tty: cfg.tty, stdin: cfg.interactive, start: { argv: process.argv.slice(2), cwd: process.cwd() } } },
    restartOf,
    created(c) {
      updateState(c.path, (s) => ({ detached: { ...s.detached!, monitor, ...(cfg.log?.driver === "none" ? {} : { log: join(c.dir, "container.log") }), attach: join(c.dir, "attach.sock") } }));
      report(`id ${c.id}`);
      faultPoint("detach:id-reported");
    },
    withOutput(fn) {
      const saved = [sys.dup(1), sys.dup(2)];
      try {
        sys.dup2(fds.stdout, 1);
        sys.dup2(fds.stderr, 2);
        return fn();
      } finally {
        sys.dup2(saved[0]!, 1);
        sys.dup2(saved[1]!, 2);
        for (const fd of saved) closeSync(fd);
        closeSync(fds.stdout);
        closeSync(fds.stderr);
      }
    },
    terminal(t) {
      const send = fdSender();
      send(fds.report, t.master, "tty master\n");
      send(fds.report, t.peer, "tty peer\n");
      closeSync(t.master);
      closeSync(t.peer);
    },
    started(pid, c) {
      if (cfg.interactive) report("stdin");
      // A run's health starts again, as in Docker: starting, until its first probe.
      const s = updateState(c.path, (s) => ({ detached: { ...s.detached!, started: new Date().toISOString() }, ...(cfg.health ? { health: { status: "starting" as const, failingStreak: 0, log: [] } } : {}) }));
      // stop, kill or rm came while this start ran: it found no first process to signal, so the
      // start ends it; the monitor then records the exit and does not restart it.
      if (s.detached!.stoppedByUser) killRecorded(s.init);
      // The monitor runs the first probe after this long (nextProbeMs of a run just begun).
      if (cfg.health) report(`health ${nextProbeMs(cfg.health, undefined, 0)}`);
      report(`pid ${pid}`);
      faultPoint("detach:pid-reported");
      closeSync(fds.report);
    },
  };
}

function writeAll(fd: number, text: string): void {
  const buf = Buffer.from(text);
  for (let off = 0; off < buf.length;) off += writeSync(fd, buf, off);
}

/**
 * `run -d` itself: corerun-monitor runs this same command line as the start, in a session of
 * its own, and answers once the command runs. The start's errors reach this stderr directly.
 */
export async function runDetached(cfg: RunConfig): Promise<number> {
  const started = await startMonitored(cfg, false);
  if (typeof started === "number") return started;
  started.release();
  writeOut(`${started.id}\n`);
  return 0;
}

/**
 * Starts the container under corerun-monitor; its id, or the start's exit status when it failed.
 * hold (run -it): the monitor holds the container's output and exit until this process attaches
 * and says its terminal is up; if this process goes before that (a Ctrl-C while it starts, a
 * kill, `release` called without attaching), the monitor kills and removes the container.
 */
export function startMonitored(cfg: RunConfig, hold: boolean): Promise<Monitored> {
  // The files behind --env-file and --label-file were read here; the start takes what they held.
  const env = cfg.files.env.length || Object.keys(cfg.files.labels).length ? { ...process.env, [FILES_ENV]: JSON.stringify(cfg.files) } : undefined;
  return launchMonitor({ root: cfg.root, mode: hold ? (cfg.rm ? "hold-rm" : "hold") : cfg.rm ? "rm" : "keep", words: process.argv.slice(2), sized: cfg.tty, what: hold ? "-it" : "-d", env, log: cfg.log });
}

export type Monitored = number | { id: string; release: () => void };

/** How corerun-monitor is started: its mode, the start's words (corerun's, after its script), and where. */
export interface MonitorLaunch {
  root: string;
  /** keep, rm: run -d; hold, hold-rm: run -it; hold-keep: start -a (held for its client, kept at the exit). */
  mode: "keep" | "rm" | "hold" | "hold-rm" | "hold-keep";
  words: readonly string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** The pty takes this terminal's size (run -t, or start -a of a -t container). */
  sized: boolean;
  /** The command that needs the monitor, for the error when it is not built. */
  what: string;
  /** --log-driver, --log-opt. */
  log: State["config"]["log"];
}

/** The monitor's LOG argument: none, or MAX_BYTES:FILES. */
function monitorLog(log: State["config"]["log"]): string {
  if (log?.driver === "none") return "none";
  return `${log?.maxSize ?? LOG_MAX_BYTES}:${log?.maxFile ?? 2}`;
}

/** Runs corerun-monitor, which runs the start; resolves once it has answered. */
export async function launchMonitor(l: MonitorLaunch): Promise<Monitored> {
  const monitor = join(DIST, "corerun-monitor");
  if (!existsSync(monitor)) throw new UsageError(`${l.what} needs ${monitor}, which is not built; run npm run build`);
  const argv = [l.root, monitorLog(l.log), l.mode, "--", ...nodeCommand(process.argv[1]!, l.words)];
  const base = l.env ?? process.env;
  const out = l.sized ? process.stdout : undefined;
  const env = out?.isTTY && out.rows > 0 && out.columns > 0 ? { ...base, [SIZE_ENV]: `${out.rows}x${out.columns}` } : base;
  const child = spawn(monitor, argv, { detached: true, stdio: ["ignore", "pipe", "inherit"], env, ...(l.cwd !== undefined ? { cwd: l.cwd } : {}) });
  let said = "";
  const answered = new Promise<void>((resolve) => {
    child.stdout.on("data", (chunk: Buffer) => {
      said += chunk.toString("utf8");
      if (/^(ok|fail) .*\n/m.test(said)) resolve();
    });
    child.stdout.on("end", () => resolve());
  });
  await answered;
  child.unref();
  const release = () => child.stdout.destroy();
  const ok = /^ok ([0-9a-f]{12})$/m.exec(said);
  if (ok) return { id: ok[1]!, release };
  release();
  const fail = /^fail (\d+)$/m.exec(said);
  if (fail) return Number(fail[1]);
  throw new Error(`corerun-monitor ended without saying whether the container started${child.exitCode !== null ? ` (status ${child.exitCode})` : ""}`);
}

/**
 * `corerun __monitor-exit ROOT ID STATUS FINISHED_MS rm|keep`, run by corerun-monitor when the
 * first process has exited: the network, cgroup and mounts go as a foreground run's teardown
 * takes them; the state and log stay (keep) until `rm`, or go too (rm).
 */
export function monitorExit(args: readonly string[]): number {
  const [root, id, status, finished, mode] = args;
  if (root === undefined || id === undefined || !/^\d+$/.test(status ?? "") || !/^\d+$/.test(finished ?? "") || (mode !== "rm" && mode !== "keep")) {
    writeErr(`corerun ${MONITOR_EXIT}: usage: ROOT ID STATUS FINISHED_MS rm|keep (run by corerun-monitor)\n`);
    return 125;
  }
  const path = statePath(root, id);
  faultPoint("monitor-exit:begin");
  if (!existsSync(path)) return 0;
  // The monitor removes a container whose first start failed; one that `corerun start` runs again
  // (its monitor has RESTART_ENV from its birth) was there before and stays, exited.
  const startFailed = mode === "rm" && process.env[RESTART_ENV] === id;
  if (mode === "rm" && !startFailed) return teardown(root, id, path).length ? 125 : 0;
  // A restart the user stopped before it began: the last run's exit is recorded already. (A
  // restart whose start failed before it took the state is recorded below, with the start's status.)
  const before = readState(path);
  if (before.status === "stopped" && before.detached?.stoppedByUser) return 0;
  // Read before the lease goes: a restart asks for the same address and host ports.
  const lease = readRecords(netPaths(root).records).leases.find((l) => l.id === id && l.state === "active");
  // And before the cgroup goes: inspect's OOMKilled, as Docker's.
  const oomKilled = before.cgroup ? oomKillsOf(before.cgroup) > 0 : false;
  const lastNetwork = lease && { address: lease.address, ports: lease.ports.map(portString) };
  const failures = teardown(root, id, path, undefined, true);
  // What was released is dropped from the state, so that rm does not release it twice; what
  // failed stays for rm and cleanup to retry.
  // The image record stays with the writable layer: rm removes it, and its image stays in use.
  const released = failures.length ? {} : { cgroup: undefined, mountPoints: [] };
  let delay: number | undefined;
  updateState(path, (s) => {
    const d = s.detached;
    const exitCode = Number(status);
    // Decided under the lock that stop, kill and rm take to set stoppedByUser.
    delay = d && !failures.length && !startFailed ? restartDelay(s.config.restart, {
      exitCode, restartCount: d.restartCount ?? 0, stoppedByUser: d.stoppedByUser ?? false, lastDelayMs: d.backoffMs ?? 0,
      ranMs: d.started ? Number(finished) - Date.parse(d.started) : 0,
    }) : undefined;
    return {
      ...released,
      status: "stopped",
      exitCode,
      detached: d && {
        ...d, finished: new Date(Number(finished)).toISOString(), restarting: delay !== undefined, backoffMs: delay ?? d.backoffMs, ...(lastNetwork ? { lastNetwork } : {}),
        oomKilled,
        // Counted when decided, as Docker does: a start that then fails counts too.
        restartCount: (d.restartCount ?? 0) + (delay === undefined ? 0 : 1),
      },
    };
  });
  faultPoint("monitor-exit:recorded");
  // corerun-monitor reads this on the handler's stdout, waits, and starts the container again.
  if (delay !== undefined) writeAll(1, `restart ${delay}\n`);
  return failures.length ? 125 : 0;
}

/**
 * stop, kill and rm: a container with a restart policy is not started again. A monitor waiting
 * to restart it is told to give up (SIGUSR1) and exits; a start under way ends what it started.
 * Returns the state as it is now, and whether the container was waiting to restart (nothing of
 * it runs then: its restarting has simply ended).
 */
export function stopRestarting(root: string, s: State): { state: State; wasWaiting: boolean } {
  if (!s.detached || !s.config.restart || s.config.restart.name === "no") return { state: s, wasWaiting: false };
  let waiting = false;
  const now = updateState(statePath(root, s.id), (cur) => {
    const d = cur.detached!;
    waiting = (d.restarting ?? false) && cur.status === "stopped";
    // A restart that was decided but will not begin is not counted.
    return { detached: { ...d, stoppedByUser: true, restarting: false, ...(waiting ? { restartCount: Math.max(0, (d.restartCount ?? 0) - 1) } : {}) } };
  });
  if (waiting) {
    const fd = openRecorded(sys, now.detached!.monitor);
    if (fd !== undefined) {
      try {
        signal(fd, 10);
      } finally {
        closeSync(fd);
      }
    }
  }
  return { state: now, wasWaiting: waiting };
}

/** The status as ps shows it: running, paused, created, exited (N), monitor-lost, orphaned. */
export function displayStatus(s: State): string {
  if (s.oci) return liveStatus(s);
  if (s.detached) {
    if (s.status === "stopped" && s.detached.restarting && isAlive(s.detached.monitor)) return `restarting (${s.exitCode ?? "?"})`;
    if (s.status === "stopped") return `exited (${s.exitCode ?? "?"})`;
    if (!isAlive(s.detached.monitor)) return "monitor-lost";
    return s.status === "creating" ? "created" : s.status;
  }
  if (s.status === "running" && !isAlive(s.owner)) return "orphaned";
  return s.status;
}

/**
 * Docker's word for a status as ps shows it (displayStatus), for inspect's State.Status, which
 * scripts compare: created, running, paused, restarting, exited, or dead for a container whose
 * keeper was killed (orphaned, monitor-lost: corerun cleanup removes it).
 */
export function dockerStatus(text: string): string {
  if (text.startsWith("restarting")) return "restarting";
  if (text.startsWith("exited") || text === "stopped") return "exited";
  if (text === "orphaned" || text === "monitor-lost") return "dead";
  return text === "creating" ? "created" : text;
}

/** How many processes the OOM killer killed in a container's cgroup; 0 when it cannot be read. */
function oomKillsOf(cg: NonNullable<State["cgroup"]>): number {
  try {
    return recordedCgroup(cg).oomKills() ?? 0;
  } catch {
    return 0;
  }
}

/** Docker's time for "never" (State.StartedAt, FinishedAt). */
const NEVER = "0001-01-01T00:00:00Z";

/** How long ago, in the largest whole unit: "12s ago", "3m ago", "5h ago", "2d ago". */
export function age(iso: string, now = Date.now()): string {
  const s = Math.max(0, Math.floor((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

/** Whether ps shows it without -a: everything that has not exited (restarting has not), as Docker's ps. */
export function shownByDefault(s: State): boolean {
  return (s.oci ? liveStatus(s) : s.status) !== "stopped" || displayStatus(s).startsWith("restarting");
}

export function psRows(root: string, states: readonly State[]): string[][] {
  const network = (s: State) => (s.config.network.mode === "bridge" ? (s.config.network.net ?? netPaths(root).defaultNetwork) : s.config.network.mode);
  // A running container's ports as leased (with the host ports chosen for -P PORT); an exited
  // one's as it was given.
  const leased = publishedPorts(root);
  return [["ID", "NAME", "STATUS", "PID", "NETWORK", "PORTS", "CREATED", "COMMAND"], ...states.map((s) => [
    s.id,
    s.config.name ?? "-",
    `${displayStatus(s)}${shownHealth(s) === "none" ? "" : ` (${shownHealth(s)})`}`,
    String(s.init && isAlive(s.init) ? s.init.pid : "-"),
    network(s),
    leased.get(s.id) || s.config.network.ports.join(",") || "-",
    age(s.created),
    s.config.command.join(" "),
  ])];
}

/** One json-file entry. */
interface LogEntry {
  log: string;
  stream: "stdout" | "stderr";
  time: string;
}

function parseEntries(text: string): LogEntry[] {
  return text.split("\n").filter((l) => l !== "").flatMap((l) => {
    try {
      return [JSON.parse(l) as LogEntry];
    } catch {
      return [];
    }
  });
}

function logFileOf(s: State, ref: string): string {
  if (s.config.log?.driver === "none") throw new UsageError(`container ${ref} was run with --log-driver none: it keeps no log (corerun attach shows its output from now on)`);
  if (!s.detached?.log) throw new UsageError(`container ${ref} was not started with -d: only detached containers keep a log (its output went to its terminal)`);
  return s.detached.log;
}

/** The rotated files of a log (container.log.1, .2, ...), the oldest first. */
function rotatedLogs(file: string): string[] {
  const base = basename(file);
  let names: string[];
  try {
    names = readdirSync(dirname(file));
  } catch {
    return [];
  }
  const numbers = names.map((n) => (n.startsWith(`${base}.`) && /^\d+$/.test(n.slice(base.length + 1)) ? Number(n.slice(base.length + 1)) : 0)).filter((k) => k > 0);
  return numbers.sort((a, b) => b - a).map((k) => `${file}.${k}`);
}

/**
 * Each whole entry of a log file from byte `from` up to `to` (its size when opened), a block at a
 * time: a long log's files never sit in memory together. Returns the offset after its last whole
 * line (a line being written is left for later); `from` when the file is not there.
 */
function eachEntry(path: string, each: (e: LogEntry) => void, from = 0, to?: number): number {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return from;
    throw err;
  }
  try {
    return eachEntryOf(fd, each, from, to ?? fstatSync(fd).size);
  } finally {
    closeSync(fd);
  }
}

function eachEntryOf(fd: number, each: (e: LogEntry) => void, from: number, to = Infinity): number {
  const buf = Buffer.alloc(1 << 20);
  let pos = from;
  let rest = Buffer.alloc(0);
  for (let n; pos < to && (n = readSync(fd, buf, 0, Math.min(buf.length, to - pos), pos)) > 0;) {
    pos += n;
    const data = rest.length ? Buffer.concat([rest, buf.subarray(0, n)]) : buf.subarray(0, n);
    const cut = data.lastIndexOf(10) + 1;
    for (const e of parseEntries(data.subarray(0, cut).toString("utf8"))) each(e);
    rest = Buffer.from(data.subarray(cut));
  }
  return pos - rest.length;
}

function printEntry(e: LogEntry, timestamps: boolean): void {
  (e.stream === "stderr" ? writeErr : writeOut)(timestamps ? `${e.time} ${e.log}` : e.log);
}

/** Whether the container's log can still grow: its monitor lives. */
function logOpen(root: string, id: string): boolean {
  try {
    const s = readState(statePath(root, id));
    return s.detached !== undefined && isAlive(s.detached.monitor);
  } catch {
    return false;
  }
}

/**
 * Prints what is added to the log from byte `from` on, across rotations, until the monitor is
 * gone. At a rotation the old file is read to its end once more (the monitor wrote to it until it
 * renamed it), then the rotated files newer than it (more than one rotation between two looks),
 * then the new log from its start.
 */
async function followLog(root: string, s: State, file: string, timestamps: boolean, from: number): Promise<void> {
  let fd = -1;
  let ino = -1;
  let pos = from;
  const print = (e: LogEntry) => printEntry(e, timestamps);
  const inode = (path: string) => {
    try {
      return statSync(path).ino;
    } catch {
      return -1;
    }
  };
  const open = () => {
    try {
      fd = openSync(file, "r");
      ino = fstatSync(fd).ino;
    } catch {
      fd = -1;
    }
  };
  open();
  for (;;) {
    // Read before looking: output written before the monitor exited is printed.
    const more = logOpen(root, s.id);
    if (fd >= 0) pos = eachEntryOf(fd, print, pos);
    if (inode(file) !== ino) {
      if (fd >= 0) {
        pos = eachEntryOf(fd, print, pos);
        closeSync(fd);
      }
      const rotated = rotatedLogs(file);
      const at = rotated.findIndex((f) => inode(f) === ino);
      for (const f of fd >= 0 ? rotated.slice(at + 1) : []) eachEntry(f, print);
      open();
      pos = fd >= 0 ? eachEntryOf(fd, print, 0) : 0;
    }
    if (!more) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  if (fd >= 0) closeSync(fd);
}

export const logs = defineTool({
  name: "corerun logs",
  description: "Print a detached container's output (stdout to stdout, stderr to stderr), also after it has exited.",
  usage: "[options] NAME|ID",
  args: {
    ...rootArg,
    follow: { type: "boolean", alias: "f", description: "keep printing new output until the container stops" },
    timestamps: { type: "boolean", alias: "t", description: "begin each line with the time it was written (RFC 3339, nanoseconds)" },
    tail: { type: "string", alias: "n", valueHint: "N|all", description: "only the last N lines (default all)" },
  },
  tail: "command",
  notes: [
    `The log is Docker's json-file format, one {"log","stream","time"} object per line, in\nROOT/ID/container.log (corerun inspect shows the path). Past ${LOG_MAX_BYTES / 1024 / 1024} MiB (run's --log-opt max-size) it is\nrenamed to container.log.1 (the older ones to .2 and on, up to --log-opt max-file files; 2\nwithout --log-opt) and a new file begun. logs prints the rotated files, then the log.`,
  ],
  examples: ["sudo corerun logs web", "sudo corerun logs -f --tail 10 web", "sudo corerun logs --timestamps web"],
  async run(ctx) {
    const root = stateRoot(ctx.values.root?.at(-1));
    if (ctx.tail.length !== 1) throw new UsageError("logs takes one container name or id; see corerun ps -a");
    const tailValue = ctx.values.tail?.at(-1) ?? "all";
    if (tailValue !== "all" && !/^\d+$/.test(tailValue)) throw new UsageError(`--tail ${tailValue}: give a number of lines or all`);
    const s = mustFind(root, ctx.tail[0]!);
    const file = logFileOf(s, ctx.tail[0]!);
    const timestamps = ctx.flags.timestamps ?? false;
    // The rotated files oldest first, then the log's whole lines (a line being written is printed
    // by -f once it is complete); --tail keeps only the last N entries in memory.
    const keep = tailValue === "all" ? undefined : Number(tailValue);
    const last: LogEntry[] = [];
    const each = (e: LogEntry) => {
      if (keep === undefined) return printEntry(e, timestamps);
      last.push(e);
      if (last.length > 2 * keep + 1024) last.splice(0, last.length - keep);
    };
    for (const f of rotatedLogs(file)) eachEntry(f, each);
    const end = eachEntry(file, each);
    for (const e of last.slice(Math.max(0, last.length - (keep ?? 0)))) printEntry(e, timestamps);
    if (ctx.flags.follow) await followLog(root, s, file, timestamps, end);
    return 0;
  },
});

/** Waits up to ms for the process behind pidfd to end; true when it has. */
function endedWithin(pidfd: number, ms: number): boolean {
  return sys.poll([pidfd], ms)[0] !== 0;
}

/**
 * Once the first process is gone, waits (up to 15 s) until whoever owns the container has
 * finished with it: the monitor has recorded the exit and released everything, or the
 * foreground corerun has torn it down.
 */
async function settled(root: string, s: State): Promise<void> {
  const keeper = s.detached?.monitor ?? (s.oci ? undefined : s.owner);
  for (let i = 0; i < 300 && isAlive(keeper) && existsSync(statePath(root, s.id)); i++) await new Promise((r) => setTimeout(r, 50));
}

/** A signal through a pidfd; a process that has ended (and been reaped) meanwhile is no error. */
function signal(pidfd: number, sig: number): void {
  try {
    sys.pidfdSendSignal(pidfd, sig);
  } catch (err) {
    if (!isErrno(err, "ESRCH")) throw err;
  }
}

/**
 * Ends the containers' first processes together: each its signal (stop: its --stop-signal,
 * SIGTERM by default), then SIGKILL to those still there after their grace period (stop: -t, else
 * its --stop-timeout, else 10 s; -1: none, wait for good); then waits until each container's
 * owner has finished with it.
 */
async function endFirstProcesses(root: string, found: readonly State[], how: (s: State) => { sig: number; graceMs: number }): Promise<void> {
  // A frozen process takes no signal: a paused container is thawed first, as Docker's stop does.
  for (const s of found) if (s.status === "paused" && isAlive(s.init)) ociPause(root, s.id, false);
  const fds = found.map((s) => openRecorded(sys, s.init));
  const plans = found.map(how);
  try {
    for (const [i, fd] of fds.entries()) if (fd !== undefined) signal(fd, plans[i]!.sig);
    const start = Date.now();
    for (const [i, fd] of fds.entries()) {
      const { sig, graceMs } = plans[i]!;
      if (fd === undefined || sig === 9) continue;
      // poll(2)'s -1 waits for good.
      const left = graceMs < 0 ? -1 : Math.max(0, start + graceMs - Date.now());
      if (!endedWithin(fd, left)) signal(fd, 9);
    }
    for (const fd of fds) if (fd !== undefined) endedWithin(fd, 10_000);
  } finally {
    for (const fd of fds) if (fd !== undefined) closeSync(fd);
  }
  await Promise.all(found.map((s) => settled(root, s)));
}

/** A stop's -t (parseGraceSeconds); undefined for each container's own. */
export function graceOption(time: string | undefined): number | undefined {
  return time === undefined ? undefined : parseGraceSeconds(time, "-t");
}

/**
 * Stops detached containers as `corerun stop` does: not started again by their restart policy,
 * each sent its --stop-signal (SIGTERM), then SIGKILL after -t or its --stop-timeout (10 s);
 * returns once each owner has finished with it.
 */
export async function stopContainers(root: string, found: readonly State[], time: number | undefined): Promise<void> {
  const now = found.map((state) => stopRestarting(root, state).state);
  await endFirstProcesses(root, now, (s) => ({ sig: s.config.stopSignal ?? 15, graceMs: (time ?? s.config.stopTimeout ?? 10) * 1000 }));
}

export const stop = defineTool({
  name: "corerun stop",
  description: "Stop containers: SIGTERM (or the container's --stop-signal) to the first process, SIGKILL after the grace period; returns once each has stopped.",
  usage: "[options] NAME|ID...",
  args: { ...rootArg, ...timeArg },
  tail: "command",
  notes: ["A detached container's monitor records the exit status (corerun ps -a) and releases its\nnetwork, cgroup and mounts; its state and log stay until corerun rm. A stopped container is\nleft as it is. A container with a --restart policy is not started again (also when stop\ncomes while its monitor waits to restart it)."],
  examples: ["sudo corerun stop web", "sudo corerun stop -t 0 web db"],
  async run(ctx) {
    const root = stateRoot(ctx.values.root?.at(-1));
    if (!ctx.tail.length) throw new UsageError("name the containers to stop; see corerun ps");
    const time = graceOption(ctx.values.time?.at(-1));
    const each = eachNamed(root, ctx.tail, (s, ref) => (s.oci ? `container ${ref} is an OCI container: its engine stops it (corerun kill)` : undefined));
    await stopContainers(root, each.found.map(({ state }) => state), time);
    for (const { ref } of each.found) writeOut(`${ref}\n`);
    return each.report();
  },
});

export const rm = defineTool({
  name: "corerun rm",
  description: "Remove containers: their state, log and image's writable layer, and whatever they still hold. A running one only with -f.",
  usage: "[options] NAME|ID...",
  args: { ...rootArg, force: { type: "boolean", alias: "f", description: "kill a running container (SIGKILL) and remove it" } },
  tail: "command",
  notes: ["A container whose monitor was killed (monitor-lost) is removed with everything it had by rm -f\n(or corerun cleanup). OCI containers are their engine's: corerun delete."],
  examples: ["sudo corerun rm web", "sudo corerun rm -f web"],
  async run(ctx) {
    const root = stateRoot(ctx.values.root?.at(-1));
    if (!ctx.tail.length) throw new UsageError("name the containers to remove; see corerun ps -a");
    const force = ctx.flags.force ?? false;
    const each = eachNamed(root, ctx.tail, (s, ref) => {
      if (s.oci) return `container ${ref} is an OCI container: its engine deletes it (corerun delete ${s.config.name})`;
      if (!force && isAlive(s.init)) return `container ${ref} is ${displayStatus(s)}: stop it first (corerun stop ${ref}) or remove it with rm -f`;
      return undefined;
    });
    const now = each.found.map(({ state }) => stopRestarting(root, state).state);
    await endFirstProcesses(root, now, () => ({ sig: 9, graceMs: 0 }));
    for (const [i, s] of now.entries()) {
      const failures = teardown(root, s.id, statePath(root, s.id));
      if (failures.length) throw failures[0]!;
      writeOut(`${each.found[i]!.ref}\n`);
    }
    return each.report();
  },
});

/** Published ports as Docker's inspect has them: {"80/tcp": [{HostIp, HostPort}]}. */
export function dockerPorts(ports: readonly PublishedPort[]): Record<string, { HostIp: string; HostPort: string }[]> {
  const out: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const p of ports) (out[`${p.containerPort}/${p.protocol}`] ??= []).push({ HostIp: p.hostIp ?? "0.0.0.0", HostPort: String(p.hostPort) });
  return out;
}

/**
 * The cgroup limits under Docker's HostConfig names and values (0, "" or null for none).
 * Without --memory-swap, swap does not extend corerun's --memory where the kernel accounts swap
 * (MemorySwap equals Memory), and is unlimited where it does not (-1). A CPU limit over the
 * default period is --cpus (NanoCpus); another period is a config's quota (CpuQuota, CpuPeriod).
 */
export function dockerResources(l: State["config"]["limits"], swapAccounted: boolean): Record<string, unknown> {
  const nano = l.cpu?.period === CPU_PERIOD;
  const devices = (list: { major: number; minor: number; rate: number }[] | undefined) => (list ?? []).map((r) => ({ Path: devicePath(r.major, r.minor), Rate: r.rate }));
  return {
    Memory: l.memory ?? 0,
    MemoryReservation: l.memoryReservation ?? 0,
    MemorySwap: l.swap ?? (l.memory === undefined ? 0 : swapAccounted ? l.memory : -1),
    MemorySwappiness: l.swappiness ?? null,
    OomKillDisable: l.oomKillDisable ?? false,
    NanoCpus: nano ? Math.round((l.cpu!.quota / l.cpu!.period) * 1e9) : 0,
    CpuShares: l.cpuShares ?? 0,
    CpuPeriod: nano ? 0 : (l.cpu?.period ?? 0),
    CpuQuota: nano ? 0 : (l.cpu?.quota ?? 0),
    CpusetCpus: l.cpuset?.cpus ?? "",
    CpusetMems: l.cpuset?.mems ?? "",
    PidsLimit: l.pids ?? null,
    BlkioWeight: l.blockIO?.weight ?? 0,
    BlkioWeightDevice: (l.blockIO?.weightDevice ?? []).map((d) => ({ Path: devicePath(d.major, d.minor), Weight: d.weight })),
    BlkioDeviceReadBps: devices(l.blockIO?.readBps),
    BlkioDeviceWriteBps: devices(l.blockIO?.writeBps),
    BlkioDeviceReadIOps: devices(l.blockIO?.readIops),
    BlkioDeviceWriteIOps: devices(l.blockIO?.writeIops),
  };
}

/** Whether the kernel accounts swap in the container's recorded memory cgroup (v1 memsw, v2 swap.max). */
function swapAccounted(cg: State["cgroup"]): boolean {
  const dir = cg?.paths.memory ?? cg?.paths[""];
  return dir !== undefined && (existsSync(join(dir, "memory.memsw.limit_in_bytes")) || existsSync(join(dir, "memory.swap.max")));
}

/** What inspect prints of one container. */
export function inspectOne(root: string, s: State): Record<string, unknown> {
  const leases = s.config.network.mode === "bridge" ? readRecords(netPaths(root).records).leases.filter((l) => l.id === s.id) : [];
  const alive = isAlive(s.init);
  const d: Detached | undefined = s.detached;
  const text = displayStatus(s);
  const status = dockerStatus(text);
  return {
    Id: s.id,
    Name: s.config.name ?? null,
    Created: s.created,
    Path: s.config.command[0],
    Args: s.config.command.slice(1),
    // Docker's fields and values; corerun's own status text (ps's) in StatusText.
    State: {
      Status: status,
      StatusText: text,
      Running: alive && s.status === "running",
      Paused: s.status === "paused",
      Restarting: status === "restarting",
      Dead: status === "dead",
      OOMKilled: d?.oomKilled ?? false,
      Pid: alive ? s.init!.pid : 0,
      ExitCode: s.exitCode ?? 0,
      StartedAt: d?.started ?? (s.status === "created" || s.status === "creating" ? NEVER : s.created),
      FinishedAt: d?.finished ?? NEVER,
      ...(s.health ? {
        Health: {
          Status: s.health.status, FailingStreak: s.health.failingStreak,
          Log: s.health.log.map((l) => ({ Start: l.start, End: l.end, ExitCode: l.exitCode, Output: l.output })),
        },
      } : {}),
    },
    RestartCount: d?.restartCount ?? 0,
    HostConfig: {
      RestartPolicy: { Name: restartText(s.config.restart), MaximumRetryCount: s.config.restart?.maxRetries ?? 0 },
      LogConfig: s.config.log?.driver === "none" ? { Type: "none", Config: {} } : { Type: "json-file", Config: { "max-size": String(s.config.log?.maxSize ?? LOG_MAX_BYTES), "max-file": String(s.config.log?.maxFile ?? 2) } },
      PidMode: s.config.pidHost ? "host" : s.config.pidContainer ? `container:${s.config.pidContainer}` : "",
      IpcMode: s.config.ipc ?? "private",
      ExtraHosts: s.config.network.extraHosts ?? null,
      Dns: s.config.network.dns ?? [],
      DnsSearch: s.config.network.dnsSearch ?? [],
      DnsOptions: s.config.network.dnsOptions ?? [],
      UTSMode: s.config.utsHost ? "host" : "",
      ShmSize: s.config.ipc === undefined || s.config.ipc === "shareable" ? (s.config.shmSize ?? DEFAULT_SHM_SIZE) : 0,
      Tmpfs: Object.fromEntries((s.config.tmpfs ?? []).map((t) => [t.slice(0, t.indexOf(":")), t.slice(t.indexOf(":") + 1)])),
      Devices: (s.config.devices ?? []).map((d) => ({ PathOnHost: d.source, PathInContainer: d.target, CgroupPermissions: d.permissions })),
      DeviceCgroupRules: s.config.deviceCgroupRules ?? null,
      Sysctls: s.config.sysctls ?? null,
      GroupAdd: s.config.process?.groupAdd ?? null,
      OomScoreAdj: s.config.process?.oomScoreAdj ?? 0,
      ...dockerResources(s.config.limits, swapAccounted(s.cgroup)),
    },
    // Docker's names for -t and -i (recorded for detached containers, whose monitor holds them).
    Config: {
      ...s.config, Tty: d?.tty ?? false, OpenStdin: d?.stdin ?? false, Labels: s.config.labels ?? {}, Domainname: s.config.domainname ?? "",
      ...(s.config.stopSignal === undefined ? {} : { StopSignal: signalName(s.config.stopSignal) }), ...(s.config.stopTimeout === undefined ? {} : { StopTimeout: s.config.stopTimeout }),
    },
    NetworkSettings: {
      Mode: s.config.network.mode,
      Networks: Object.fromEntries(leases.map((l) => [l.network, { IPAddress: l.address, Interface: "eth0", HostVeth: l.veth, Aliases: l.aliases ?? null, IPAMConfig: s.config.network.ip ? { IPv4Address: s.config.network.ip } : null }])),
      // Docker's map: "80/tcp" to the host addresses and ports it is published on (the ones
      // chosen for -P PORT included), while the container holds its lease.
      Ports: dockerPorts(leases.flatMap((l) => l.ports)),
    },
    Mounts: [
      ...s.config.volumes.map((v) => ({ Type: "bind", Source: v.source, Destination: v.target, RW: !v.readonly })),
      ...(s.config.tmpfs ?? []).map((t) => ({ Type: "tmpfs", Source: "", Destination: t.slice(0, t.indexOf(":")), RW: !t.slice(t.indexOf(":") + 1).split(",").includes("ro") })),
      ...(s.image ? [{ Type: "overlay", Destination: "/", Source: s.image.target, Image: s.image.ref }] : [{ Type: "rootfs", Destination: "/", Source: s.config.rootfs }]),
    ],
    Cgroup: s.cgroup ? { Name: s.cgroup.name, Parent: s.cgroup.parent, Paths: s.cgroup.paths } : null,
    LogPath: d?.log ?? null,
    AttachSocket: d?.attach && alive && d.finished === undefined ? d.attach : null,
    Monitor: d ? { Pid: d.monitor.pid, Alive: isAlive(d.monitor), Remove: d.rm } : null,
    Owner: s.owner ? { Pid: s.owner.pid, Alive: isAlive(s.owner) } : null,
    Oci: s.oci ?? null,
  };
}

/**
 * `corerun port`: a container's published ports as docker port prints them, "80/tcp ->
 * 0.0.0.0:8080" a line, or for one container port only its host addresses.
 */
export const port = defineTool({
  name: "corerun port",
  description: "List a container's published ports, or the host address of one container port.",
  usage: "[options] NAME|ID [PORT[/tcp|udp]]",
  args: rootArg,
  tail: "command",
  examples: ["sudo corerun port web", "sudo corerun port web 80/tcp"],
  run(ctx) {
    const root = stateRoot(ctx.values.root?.at(-1));
    const [ref, which, ...more] = ctx.tail;
    if (ref === undefined || more.length) throw new UsageError("give one container and at most one port: corerun port NAME [PORT[/tcp|udp]]");
    const s = mustFind(root, ref);
    const m = which === undefined ? undefined : /^(\d{1,5})(?:\/(tcp|udp))?$/.exec(which);
    if (which !== undefined && (!m || Number(m[1]) < 1 || Number(m[1]) > 65535)) throw new UsageError(`${which}: give a container port such as 80 or 53/udp`);
    const leases = s.config.network.mode === "bridge" && isAlive(s.init) ? readRecords(netPaths(root).records).leases.filter((l) => l.id === s.id) : [];
    const ports = Object.entries(dockerPorts(leases.flatMap((l) => l.ports)));
    const key = m && `${m[1]}/${m[2] ?? "tcp"}`;
    if (key) {
      const hosts = ports.find(([k]) => k === key)?.[1];
      if (!hosts) throw new UsageError(`container ${ref} has no published port ${key}`);
      writeOut(hosts.map((h) => `${h.HostIp}:${h.HostPort}\n`).join(""));
      return 0;
    }
    writeOut(ports.flatMap(([k, hosts]) => hosts.map((h) => `${k} -> ${h.HostIp}:${h.HostPort}\n`)).join(""));
    return 0;
  },
});

export const inspect = defineTool({
  name: "corerun inspect",
  description: "Print containers as a JSON array: config, state, network addresses, mounts, cgroup paths, log path, monitor.",
  usage: "[options] NAME|ID...",
  args: rootArg,
  tail: "command",
  examples: ["sudo corerun inspect web", "sudo corerun inspect web | jq -r '.[0].NetworkSettings.Networks[].IPAddress'"],
  run(ctx: ToolContext) {
    const root = stateRoot(ctx.values.root?.at(-1));
    if (!ctx.tail.length) throw new UsageError("name the containers to inspect; see corerun ps -a");
    // Each name on its own, as Docker's: the containers found are printed, the rest refused.
    const each = eachNamed(root, ctx.tail);
    writeOut(`${JSON.stringify(each.found.map(({ state }) => inspectOne(root, state)), null, 2)}\n`);
    return each.report();
  },
});

/**
 * ps --filter, Docker's: label=KEY or label=KEY=VALUE (each must match), name=REGEX (the name
 * holds a match), id=PREFIX and status=STATUS (Docker's status words; a status filter lists
 * exited containers without -a too). Filters of one key match when any does, of different keys
 * when all do.
 */
export function psFilter(values: readonly string[]): { match: (s: State) => boolean; anyStatus: boolean } {
  const by = new Map<string, string[]>();
  for (const value of values) {
    const eq = value.indexOf("=");
    const key = value.slice(0, eq);
    if (eq <= 0 || !["label", "name", "id", "status", "health"].includes(key)) throw new UsageError(`--filter "${value}": give label=KEY[=VALUE], name=NAME, id=ID, status=STATUS or health=STATUS`);
    by.set(key, [...(by.get(key) ?? []), value.slice(eq + 1)]);
  }
  const statuses = by.get("status") ?? [];
  const bad = statuses.find((st) => !DOCKER_STATUSES.includes(st));
  if (bad !== undefined) throw new UsageError(`--filter status=${bad}: give one of ${DOCKER_STATUSES.join(", ")}`);
  const names = (by.get("name") ?? []).map((n) => {
    try {
      return new RegExp(n);
    } catch {
      throw new UsageError(`--filter name=${n}: not a regular expression`);
    }
  });
  const labels = (by.get("label") ?? []).map((l) => (l.includes("=") ? { key: l.slice(0, l.indexOf("=")), value: l.slice(l.indexOf("=") + 1) } : { key: l, value: undefined }));
  const ids = by.get("id") ?? [];
  const health = by.get("health") ?? [];
  const badHealth = health.find((h) => !["starting", "healthy", "unhealthy", "none"].includes(h));
  if (badHealth !== undefined) throw new UsageError(`--filter health=${badHealth}: give one of starting, healthy, unhealthy, none`);
  return {
    anyStatus: statuses.length > 0,
    match: (s) => labels.every((l) => s.config.labels?.[l.key] !== undefined && (l.value === undefined || s.config.labels[l.key] === l.value))
      && (!names.length || names.some((re) => re.test(s.config.name ?? "")))
      && (!ids.length || ids.some((id) => s.id.startsWith(id)))
      && (!statuses.length || statuses.includes(dockerStatus(displayStatus(s))))
      && (!health.length || health.includes(shownHealth(s))),
  };
}

/** A running container's health (ps, ps --filter health=): none without a health check. */
function shownHealth(s: State): string {
  return s.health && s.status === "running" ? s.health.status : "none";
}

/** Docker's State.Status words, as inspect and ps --filter status= use them. */
const DOCKER_STATUSES = ["created", "restarting", "running", "paused", "exited", "dead"];

/** ps's container list: running ones, or with all every one; as a table or the state files. */
export function listContainers(root: string, all: boolean, as: "table" | "json" | "ids", filters: readonly string[] = []): void {
  const filter = psFilter(filters);
  const states = readStates(root).filter((s) => (all || filter.anyStatus || shownByDefault(s)) && filter.match(s));
  if (as === "json") printJson(states.map((s) => ({ ...s, statusText: displayStatus(s) })));
  else if (as === "ids") writeOut(states.map((s) => `${s.id}\n`).join(""));
  else printTable(psRows(root, states));
}
