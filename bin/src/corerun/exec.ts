/**
 * `corerun exec`: a new process in every namespace and the cgroup of a running container, with
 * the process config of runc's exec (a process.json, or arguments and flags over the
 * container's own process). The native helper does the entering (see libs/syscall/native); this
 * file decides what it enters with.
 */
import { closeSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import * as v from "valibot";
import { cgroupManager } from "@corerun/cgroup";
import { exitCodeOf, UsageError, waitChild } from "@corerun/cli";
import { parseOci, planCapabilities, Process, readSpec, type Spec } from "@corerun/oci";
import { openRecorded, type State } from "@corerun/state";
import {
  connectUnix, enterContainer, fdSender, linuxSyscall as sys, openPty, setWindowSize, CAPABILITIES, RLIMIT_NUMBERS,
} from "@corerun/syscall";
import { joinableNamespaces, liveStatus, mustFind, setOomScoreAdj, writePidFile } from "./oci.ts";

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
  detach: boolean;
  pidFile: string | undefined;
  consoleSocket: string | undefined;
}

/** The process to start: process.json as given, or the container's own with the flags over it. */
export function execProcess(req: ExecRequest, base: Spec): ExecProcess {
  if (req.processFile !== undefined) {
    if (req.args.length || req.env.length || req.cwd || req.user || req.caps.length) throw new UsageError("--process gives the whole process; drop the command and --env, --cwd, --user, --cap");
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
  if (req.user !== undefined) {
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

/** Runs `exec`; returns the exit status (exec's own unless detached). */
export async function ociExec(req: ExecRequest): Promise<number> {
  const s: State = mustFind(req.root, req.id);
  const status = liveStatus(s);
  if (status !== "running") throw new UsageError(`cannot exec in a container that is ${status === "stopped" ? "stopped" : `not running (${status})`}`);
  const configPath = join(req.root, s.id, "config.json");
  let base: Spec;
  try {
    base = readSpec(join(req.root, s.id), configPath);
  } catch {
    throw new UsageError(`container "${req.id}" was not made from an OCI bundle (corerun create); exec into it is not supported yet`);
  }
  const proc = execProcess(req, base);
  if (proc.terminal && req.detach && !req.consoleSocket) throw new UsageError("cannot allocate tty if corerun will detach without setting console socket");
  if (proc.terminal && !req.detach) throw new UsageError("exec -t without --detach: corerun does not relay a terminal yet; use --detach with --console-socket");
  if (!proc.terminal && req.consoleSocket) throw new UsageError("--console-socket needs a terminal (-t or process.terminal)");
  const caps = planCapabilities({ ...base, process: proc });
  const pidfd = openRecorded(sys, s.init);
  if (pidfd === undefined) throw new UsageError(`container "${req.id}" not running`);
  let tty: { master: number; peer: number } | undefined;
  let sock: number | undefined;
  try {
    if (proc.terminal) {
      sock = connectUnix(resolve(req.consoleSocket!));
      tty = openPty(`/proc/${s.init!.pid}/root/dev/pts`);
      if (proc.consoleSize) setWindowSize(tty.master, proc.consoleSize.height, proc.consoleSize.width);
    }
    const ns = joinableNamespaces(s.init!.pid);
    const cg = s.cgroup ? cgroupManager({ name: s.cgroup.name, parent: s.cgroup.parent, devices: s.cgroup.devices }) : undefined;
    const lastCap = Number(readFileSync("/proc/sys/kernel/cap_last_cap", "utf8"));
    const pid = enterContainer(sys, {
      argv: proc.args!, env: proc.env ?? [], cwd: proc.cwd, pidfd, nsFlags: ns.flags, pidNamespace: ns.pid, ttyFd: tty?.peer ?? -1,
      uid: proc.user.uid, gid: proc.user.gid, groups: proc.user.additionalGids ?? [], caps, lastCap: Math.min(lastCap, Math.max(...Object.values(CAPABILITIES))),
      noNewPrivs: proc.noNewPrivileges ?? false, umask: proc.user.umask,
      prepare(child) {
        cg?.addTask(child);
        for (const r of proc.rlimits ?? []) sys.setrlimit(RLIMIT_NUMBERS[r.type]!, r.soft, r.hard, child);
        setOomScoreAdj(child, proc.oomScoreAdj);
      },
    });
    if (tty && sock !== undefined) fdSender()(sock, tty.master, "/dev/pts/ptmx");
    if (req.pidFile) writePidFile(resolve(req.pidFile), pid);
    if (req.detach) return 0;
    return exitCodeOf(await waitChild(sys, pid));
  } finally {
    closeSync(pidfd);
    if (tty) {
      closeSync(tty.master);
      closeSync(tty.peer);
    }
    if (sock !== undefined) closeSync(sock);
  }
}
