/**
 * `corerun exec`: a new process in every namespace and the cgroup of a running container, with
 * the process config of runc's exec (a process.json, or arguments and flags over the
 * container's own process). The native helper does the entering (see libs/syscall/native); this
 * file decides what it enters with. An OCI container's own process is its config.json's; a
 * `corerun run` container's is made from what its state recorded (RunProcess), so that both
 * take one path.
 */
import { closeSync, openSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import * as v from "valibot";
import { exitCodeOf, UsageError, waitChild } from "@corerun/cli";
import { parseOci, planCapabilities, Process, readSpec, type Rlimit, type Spec } from "@corerun/oci";
import { containerEnv, resolveUser } from "@corerun/rootfs";
import { capabilitySet, openRecorded, setOomScoreAdj, type RunProcess, type State } from "@corerun/state";
import {
  connectUnix, enterContainer, fdSender, linuxSyscall as sys, CAPABILITIES, RLIMIT_NUMBERS, SECCOMP_FILTER_FLAGS,
} from "@corerun/syscall";
import { liveStatus, mustFind, recordedCgroup } from "./oci.ts";
import { joinableNamespaces, writePidFile } from "./oci-create.ts";
import { holdTerminal, openTerminal, relayTerminal } from "./tty.ts";
import { DEFAULT_DETACH_KEYS, parseDetachKeys } from "./detachkeys.ts";
import type { RunConfig } from "./args.ts";
import { storeSeccompProgram } from "@corerun/seccomp";

type ExecProcess = v.InferOutput<typeof Process>;

export interface ExecRequest {
  root: string;
  id: string;
  /** A process.json (runtime-spec Process), or undefined for args and flags. */
  processFile: string | undefined;
  args: string[];
  env: string[];
  cwd: string | undefined;
  user: string | undefined;
  additionalGids: string[];
  caps: string[];
  noNewPrivs: boolean;
  tty: boolean;
  /** -i: corerun's stdin reaches the process (relayed into its pty with -t). */
  interactive: boolean;
  detach: boolean;
  pidFile: string | undefined;
  consoleSocket: string | undefined;
  /** --detach-keys as given (default ctrl-p,ctrl-q with -it). */
  detachKeys?: string | undefined;
  /** Kill the process (SIGKILL) once it has run this long; expired is set when it was (health checks). */
  timeout?: { ms: number; expired: boolean } | undefined;
}

/** The process to start: process.json as given, or the container's own with the flags over it. */
export function execProcess(req: ExecRequest, base: Spec, users?: (spec: string) => ExecProcess["user"]): ExecProcess {
  if (req.processFile !== undefined) {
    if (req.args.length || req.env.length || req.cwd || req.user || req.caps.length) throw new UsageError("--process gives the whole process; drop the command and --env, --env-file, --cwd, --user, --cap");
    let data: unknown;
    try {
      data = JSON.parse(readFileSync(req.processFile, "utf8"));
    } catch (err) {
      throw new UsageError(`--process ${req.processFile}: cannot be read as JSON (${(err as Error).message})`);
    }
    return parseOci(Process, data, `--process ${req.processFile}`);
  }
  if (!req.args.length) throw new UsageError("exec needs a command after the container id, or --process FILE");
  const own = base.process!;
  let user = own.user;
  if (req.user !== undefined && users) user = users(req.user);
  else if (req.user !== undefined) {
    const m = /^(\d+)(?::(\d+))?$/.exec(req.user);
    if (!m) throw new UsageError(`--user ${req.user}: give UID[:GID] as numbers`);
    user = { uid: Number(m[1]), gid: Number(m[2] ?? 0) };
  }
  if (req.additionalGids.length) user = { ...user, additionalGids: req.additionalGids.map((g) => (/^\d+$/.test(g) ? Number(g) : badGid(g))) };
  const caps = own.capabilities && req.caps.length
    ? Object.fromEntries(Object.entries(own.capabilities).map(([set, list]) => [set, set === "ambient" ? list : [...new Set([...(list ?? []), ...req.caps])]]))
    : own.capabilities;
  return {
    ...own,
    args: req.args,
    env: [...(own.env ?? []), ...req.env],
    cwd: req.cwd ?? own.cwd,
    user,
    capabilities: caps,
    terminal: req.tty,
    noNewPrivileges: req.noNewPrivs || own.noNewPrivileges,
  };
}

function badGid(g: string): never {
  throw new UsageError(`--additional-gids ${g}: give a numeric gid`);
}

/** What `corerun run` records for exec: its first process's capabilities, user, no_new_privs, seccomp. */
export function runProcess(cfg: RunConfig): RunProcess {
  const { security } = cfg;
  return {
    capabilities: capabilitySet(cfg.capAdd, cfg.capDrop),
    ...(cfg.user === undefined ? {} : { user: cfg.user }),
    noNewPrivs: security.noNewPrivs,
    rlimits: cfg.ulimits,
    ...(cfg.groupAdd.length ? { groupAdd: cfg.groupAdd } : {}),
    ...(cfg.oomScoreAdj === undefined ? {} : { oomScoreAdj: cfg.oomScoreAdj }),
    ...(security.seccomp ? { seccomp: { program: storeSeccompProgram(security.seccomp.program), flags: security.seccomp.flags } } : {}),
  };
}

/**
 * Docker's rule for a process's capabilities: root holds its set in every set but ambient; any
 * other user keeps it as the bounding set only.
 */
export function capabilitiesFor(set: readonly number[], uid: number): NonNullable<ExecProcess["capabilities"]> {
  const names = Object.entries(CAPABILITIES).filter(([, n]) => set.includes(n)).map(([name]) => `CAP_${name}`);
  return { bounding: names, effective: uid === 0 ? names : [], permitted: uid === 0 ? names : [], inheritable: [], ambient: [] };
}

/** Reads a file of the container's root, "" when it has none. */
function readEtc(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

interface Base {
  spec: Spec;
  /** USER[:GROUP] by name, in the container's /etc (run containers; OCI's exec takes numbers). */
  users?: (spec: string) => ExecProcess["user"];
  /** A run container's capability set, given again for the final user. */
  capabilities?: number[];
  seccomp?: { program: Uint8Array; flags: number };
}

/** A `corerun run` container's own process as runtime-spec, from its state and its /etc. */
function runBase(s: State, p: RunProcess): Base {
  const root = `/proc/${s.init!.pid}/root`;
  // --group-add's groups go to every user, as in Docker's exec.
  const resolve = (spec: string) => resolveUser(spec, readEtc(`${root}/etc/passwd`), readEtc(`${root}/etc/group`), p.groupAdd);
  const users = (spec: string) => {
    const c = resolve(spec);
    return { uid: c.uid, gid: c.gid, additionalGids: c.groups };
  };
  const own = resolve(p.user ?? "0");
  const spec: Spec = {
    ociVersion: "1.2.0",
    process: {
      args: s.config.command,
      env: containerEnv(s.config.env, s.config.hostname ?? s.id, own.home),
      cwd: s.config.cwd,
      user: { uid: own.uid, gid: own.gid, additionalGids: own.groups },
      capabilities: capabilitiesFor(p.capabilities, own.uid),
      noNewPrivileges: p.noNewPrivs,
      rlimits: p.rlimits.map((r) => ({ ...r, type: r.type as Rlimit["type"] })),
      ...(p.oomScoreAdj === undefined ? {} : { oomScoreAdj: p.oomScoreAdj }),
    },
  };
  const seccomp = p.seccomp && loadSeccomp(p.seccomp);
  return { spec, users, capabilities: p.capabilities, ...(seccomp ? { seccomp } : {}) };
}

/** A recorded filter (a compiled program in the state root's cache) as enterContainer installs it. */
function loadSeccomp(recorded: { program: string; flags: string[] }): NonNullable<Base["seccomp"]> {
  return {
    program: new Uint8Array(readFileSync(recorded.program)),
    flags: recorded.flags.reduce((f, name) => f | (SECCOMP_FILTER_FLAGS[name] ?? 0), 0),
  };
}

function baseOf(root: string, s: State, ref: string): Base {
  if (s.config.process) return runBase(s, s.config.process);
  let spec: Spec;
  try {
    spec = readSpec(join(root, s.id), join(root, s.id, "config.json"));
  } catch {
    throw new UsageError(`container "${ref}" has neither config.json nor a recorded process (it was started by an older corerun); exec cannot enter it`);
  }
  // An OCI container's: capabilities, user and noNewPrivileges are config.json's process; its
  // seccomp filter was compiled and recorded by create, as runc's exec applies the container's.
  const seccomp = s.oci?.seccomp && loadSeccomp(s.oci.seccomp);
  return { spec, ...(seccomp ? { seccomp } : {}) };
}

/** Runs `exec`; returns the exit status (exec's own unless detached). */
export async function ociExec(req: ExecRequest): Promise<number> {
  const given = req.detachKeys === undefined ? undefined : parseDetachKeys(req.detachKeys);
  const s: State = mustFind(req.root, req.id);
  const status = liveStatus(s);
  if (status !== "running") throw new UsageError(`cannot exec in container "${req.id}": it is ${status === "stopped" ? "stopped" : `not running (${status})`}`);
  const base = baseOf(req.root, s, req.id);
  const proc = execProcess(req, base.spec, base.users);
  // A run container's process follows Docker: its user decides which sets hold the capabilities.
  if (base.capabilities) {
    const added = req.caps.map((c) => CAPABILITIES[c.toUpperCase().replace(/^CAP_/, "")] ?? badCap(c));
    proc.capabilities = capabilitiesFor([...new Set([...base.capabilities, ...added])], proc.user.uid);
  }
  if (proc.terminal && req.detach && !req.consoleSocket) throw new UsageError("cannot allocate tty if corerun will detach without setting console socket");
  if (!proc.terminal && req.consoleSocket) throw new UsageError("--console-socket needs a terminal (-t or process.terminal)");
  if (req.consoleSocket && !req.detach) throw new UsageError("--console-socket hands the terminal to its listener: add --detach, or drop it to use corerun's own terminal");
  const relayed = proc.terminal && req.interactive && !req.detach;
  if (req.detachKeys !== undefined && !relayed) throw new UsageError("--detach-keys: only exec -it (without --detach) relays typed keys; add -i and -t, or drop --detach-keys");
  const keys = relayed ? (given ?? parseDetachKeys(DEFAULT_DETACH_KEYS)) : [];
  const caps = planCapabilities({ ...base.spec, process: proc });
  const pidfd = openRecorded(sys, s.init);
  if (pidfd === undefined) throw new UsageError(`container "${req.id}" not running`);
  let tty: { master: number; peer: number } | undefined;
  let sock: number | undefined;
  // Docker's rule for `corerun run` containers: stdin only with -i. An OCI container's exec keeps
  // runc's (the caller's stdio as given: engines pass their pipes).
  const nullIn = !proc.terminal && !req.interactive && base.capabilities ? openSync("/dev/null", "r") : undefined;
  let relaying = false;
  try {
    if (proc.terminal) {
      if (req.consoleSocket) sock = connectUnix(resolve(req.consoleSocket));
      tty = openTerminal(s.init!.pid, proc.consoleSize ?? undefined);
    }
    const ns = joinableNamespaces(s.init!.pid);
    const cg = s.cgroup ? recordedCgroup(s.cgroup) : undefined;
    const lastCap = Number(readFileSync("/proc/sys/kernel/cap_last_cap", "utf8"));
    const pid = enterContainer(sys, {
      argv: proc.args!, env: proc.env ?? [], cwd: proc.cwd, pidfd, nsFlags: ns.flags, pidNamespace: ns.pid, ttyFd: tty?.peer ?? -1,
      uid: proc.user.uid, gid: proc.user.gid, groups: proc.user.additionalGids ?? [], caps, lastCap: Math.min(lastCap, Math.max(...Object.values(CAPABILITIES))),
      noNewPrivs: proc.noNewPrivileges ?? false, umask: proc.user.umask, seccomp: base.seccomp, stdinFd: nullIn,
      prepare(child) {
        cg?.addTask(child);
        for (const r of proc.rlimits ?? []) sys.setrlimit(RLIMIT_NUMBERS[r.type]!, r.soft, r.hard, child);
        setOomScoreAdj(child, proc.oomScoreAdj, "process.oomScoreAdj");
      },
    });
    if (tty && sock !== undefined) fdSender()(sock, tty.master, "/dev/pts/ptmx");
    if (req.pidFile) writePidFile(resolve(req.pidFile), pid);
    if (req.detach) return 0;
    if (!tty) {
      const limit = req.timeout;
      const timer = limit && setTimeout(() => {
        limit.expired = true;
        sys.kill(pid, 9);
      }, limit.ms);
      try {
        return exitCodeOf(await waitChild(sys, pid));
      } finally {
        clearTimeout(timer);
      }
    }
    // The relay owns the master from here; the peer is the process's now.
    closeSync(tty.peer);
    const master = tty.master;
    let detached: (() => void) | undefined;
    const detaching = new Promise<number>((resolve) => (detached = () => resolve(0)));
    const relay = relayTerminal(master, {
      input: req.interactive ? process.stdin : undefined,
      output: process.stdout,
      // The process keeps its terminal: a small holder reads it from now on.
      detach: { keys, onDetach: () => (holdTerminal(master), relay.detach(), detached!()) },
    });
    relaying = true;
    const ended = waitChild(sys, pid).then(async (end) => {
      await relay.finish();
      return exitCodeOf(end);
    });
    return await Promise.race([ended, detaching]);
  } finally {
    closeSync(pidfd);
    if (tty && !relaying) {
      closeSync(tty.master);
      closeSync(tty.peer);
    }
    if (sock !== undefined) closeSync(sock);
    if (nullIn !== undefined) closeSync(nullIn);
  }
}

function badCap(c: string): never {
  throw new UsageError(`--cap ${c}: unknown capability; give a name such as CAP_NET_ADMIN`);
}
