import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, unlinkSync, writeFileSync, accessSync, constants, type Dirent } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { kernelRandom, linuxSyscall, LOCK_EX, LOCK_UN, type Syscall } from "@corerun/syscall";
import { faultPoint, UsageError } from "@corerun/cli";
import { procStartTime } from "./proc.ts";
import { canTransition, ID_PATTERN, parseState, STATE_VERSION, type ContainerConfig, type ProcessRef, type State, type Status } from "./schema.ts";

export const DEFAULT_ROOT = "/run/corerun";

/**
 * --root, then CORERUN_ROOT, then /run/corerun. An empty --root is refused, and an empty
 * CORERUN_ROOT is taken as unset: resolved, either would be the working directory, and the
 * state (networks/, the locks) would land wherever the command was run.
 */
export function stateRoot(flag?: string, env = process.env, uid = process.geteuid?.() ?? 0): string {
  if (flag === "") throw new UsageError('--root "": give the state directory (default /run/corerun)');
  return resolve(flag ?? (env.CORERUN_ROOT || undefined) ?? (uid === 0 ? DEFAULT_ROOT : rootlessRoot(env, uid)));
}

/** A user's own state root: $XDG_RUNTIME_DIR/corerun, else /tmp/corerun-UID. */
export function rootlessRoot(env: NodeJS.ProcessEnv, uid: number): string {
  return env.XDG_RUNTIME_DIR ? join(env.XDG_RUNTIME_DIR, "corerun") : `/tmp/corerun-${uid}`;
}

/** Fails early, before anything is created, when the state root cannot be written. */
export function checkStateRoot(root: string): void {
  try {
    mkdirSync(root, { recursive: true, mode: 0o700 });
    accessSync(root, constants.W_OK);
  } catch (err) {
    let code = (err as NodeJS.ErrnoException).code ?? "error";
    // A recursive mkdir reports ENOENT for a parent it could not create on its way (EROFS,
    // EACCES): one step at the last level names the real reason.
    if (code === "ENOENT" && existsSync(dirname(root))) {
      try {
        mkdirSync(root, { mode: 0o700 });
      } catch (again) {
        code = (again as NodeJS.ErrnoException).code ?? code;
      }
    }
    throw new Error(`state root ${root} cannot be written (${code}); pass --root DIR or set CORERUN_ROOT to a writable directory`);
  }
}

export function containerDir(root: string, id: string): string {
  if (!ID_PATTERN.test(id)) throw new Error(`invalid container id "${id}"`);
  return join(root, id);
}

export function statePath(root: string, id: string): string {
  return join(containerDir(root, id), "state.json");
}

/**
 * Writes JSON through a temp file and rename, so a reader never sees half a file. `durable`
 * adds an fsync before the rename, for what must survive a power loss (images, the records of
 * paths made in a rootfs); it costs ~6 ms on an ext4 root, once per write.
 */
export function writeJsonAtomic(path: string, value: unknown, opts: { durable?: boolean } = {}): string {
  const tmp = `${path}.tmp`;
  const text = `${JSON.stringify(value, null, 2)}\n`;
  const fd = openSync(tmp, "w", 0o600);
  try {
    writeFileSync(fd, text);
    if (opts.durable ?? true) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  return text;
}

/**
 * A container's state is written without fsync: the rename alone keeps it whole for readers, a
 * killed corerun (even with -9) loses nothing the kernel has been given, and what the state
 * describes (processes, namespaces, cgroups, veths, mounts) does not outlive the machine, so a
 * power loss leaves nothing for it to describe. A start writes it five times before the command
 * runs.
 */
export function writeStateFile(path: string, state: State): void {
  ownWrites.set(path, writeJsonAtomic(path, state, { durable: false }));
}

/**
 * The text this process last wrote to each state file. A state it reads back unchanged, as a
 * start does after each of its writes, is its own typed State: the schema's check is for a file
 * another process wrote, or that changed since. (A start's first check compiles the schema's
 * code: its "record first process" went from 2.4 to 0.9 ms, beside corerun-exec's Node start.)
 */
const ownWrites = new Map<string, string>();

export function readState(path: string): State {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new Error(`no container state at ${path}`);
    throw err;
  }
  if (ownWrites.get(path) === text) return JSON.parse(text) as State;
  return parseState(JSON.parse(text), path);
}

/**
 * Runs fn while holding an exclusive flock on `path` (created if missing). fn gets the lock's fd:
 * a process it starts that inherits it holds the lock until its own end, should this one die.
 */
export function withLock<T>(path: string, fn: (fd: number) => T, sys: Syscall = linuxSyscall): T {
  const fd = openSync(path, "a", 0o600);
  try {
    sys.flock(fd, LOCK_EX);
    try {
      return fn(fd);
    } finally {
      sys.flock(fd, LOCK_UN);
    }
  } finally {
    closeSync(fd);
  }
}

/** The file in a container's directory that names the process that made it. */
export const OWNER_FILE = "owner";

/** A directory being made: `.new-ID-PID-STARTTIME`, its maker's pid and start time in its name. */
export const NEW_DIR_PATTERN = /^\.new-([0-9a-f]{12})-([1-9]\d*)-(\d+)$/;

/**
 * Makes a container's directory appear whole: it is filled under a temporary name that records
 * its maker (so `corerun cleanup` can tell an abandoned one from one still being made, whatever
 * instant its maker died at), then renamed to the id. The directory under its id therefore always
 * holds the owner file and a complete state.json. Returns false when the id is taken.
 */
export function publishContainerDir(root: string, id: string, owner: ProcessRef, state: State): boolean {
  const dir = containerDir(root, id);
  const tmp = join(root, `.new-${id}-${owner.pid}-${owner.startTime}`);
  try {
    mkdirSync(tmp, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  }
  faultPoint("state:new-dir");
  try {
    writeJsonAtomic(join(tmp, OWNER_FILE), owner, { durable: false });
    const text = writeJsonAtomic(join(tmp, "state.json"), state, { durable: false });
    faultPoint("state:new-files");
    renameSync(tmp, dir);
    ownWrites.set(join(dir, "state.json"), text);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    // rename(2) replaces only an empty directory: a non-empty one is another container's.
    if (["ENOTEMPTY", "EEXIST"].includes((err as NodeJS.ErrnoException).code ?? "")) return false;
    throw err;
  }
  faultPoint("state:dir");
  return true;
}

/**
 * Creates the container's directory and first state, status "creating". `byId` adds what
 * depends on the id (its cgroup, recorded before it is made) to that first write. The id is
 * random, or the first of `ids` that no directory holds (an OCI container's, see oci-ids.ts).
 */
export function createContainer(
  root: string,
  config: ContainerConfig,
  extra: Partial<Pick<State, "owner" | "mountPoints" | "oci" | "detached">> = {},
  byId: (id: string) => Partial<Pick<State, "cgroup">> = () => ({}),
  ids?: readonly string[],
): { id: string; dir: string; path: string; state: State } {
  checkStateRoot(root);
  const owner = extra.owner ?? { pid: process.pid, startTime: procStartTime(process.pid) ?? 0 };
  for (let i = 0; ; i++) {
    const id = ids ? ids[i] : kernelRandom(6).toString("hex");
    if (id === undefined) throw new UsageError(`container "${config.name ?? ""}": every id it may have here (${ids!.join(", ")}) is another container's under ${root}; choose another id`);
    const state: State = { version: STATE_VERSION, id, status: "creating", created: new Date().toISOString(), config, mountPoints: [], ...extra, ...byId(id) };
    if (!publishContainerDir(root, id, owner, state)) continue;
    const dir = containerDir(root, id);
    return { id, dir, path: join(dir, "state.json"), state };
  }
}

/** Read, change and write the state under the container's lock; checks status transitions. */
export function updateState(path: string, change: (s: State) => Partial<State>): State {
  return withLock(`${path}.lock`, () => {
    const current = readState(path);
    const patch = change(current);
    if (patch.status && patch.status !== current.status && !canTransition(current.status, patch.status)) {
      throw new Error(`container ${current.id} cannot go from ${current.status} to ${patch.status}`);
    }
    const next = { ...current, ...patch };
    writeStateFile(path, next);
    return next;
  });
}

/**
 * The one way back from stopped: a detached container with a restart policy, started again by
 * its monitor, becomes "creating" once more with its id, name, config and log. What its last run
 * held was released at its exit, but for an image's writable layer, which the new run mounts
 * again (its record stays until then); what the new run makes is recorded anew. undefined (and
 * nothing changed) when the user has stopped it meanwhile or it is not waiting for a restart.
 */
export function restartContainer(path: string, owner: State["owner"]): State | undefined {
  return withLock(`${path}.lock`, () => {
    const current = readState(path);
    const d = current.detached;
    if (current.status !== "stopped" || !d?.restarting || d.stoppedByUser) return undefined;
    const next: State = {
      ...current, status: "creating", owner, init: undefined, exitCode: undefined, cgroup: undefined, mountPoints: [],
      detached: { ...d, finished: undefined, restarting: false },
    };
    writeStateFile(path, next);
    return next;
  });
}

/**
 * `corerun start` of an exited detached container: it is marked to be started again now, as a
 * restart is (the new monitor's start goes through restartContainer), with its restart policy in
 * force again from its first delay and count, as Docker resets them at a start. A container that
 * cannot be started (startRefusal) is left unchanged and the reason thrown as one UsageError line.
 */
export function requestStart(path: string, ref: string, monitorAlive: (m: ProcessRef) => boolean): State {
  return withLock(`${path}.lock`, () => {
    const current = readState(path);
    const d = current.detached;
    const why = startRefusal(current, ref, monitorAlive);
    if (why) throw new UsageError(why);
    const next: State = { ...current, detached: { ...d!, restarting: true, stoppedByUser: false, restartCount: 0, backoffMs: 0 } };
    writeStateFile(path, next);
    return next;
  });
}

/** Why `corerun start` refuses a container, or undefined when it may start it. */
export function startRefusal(s: State, ref: string, monitorAlive: (m: ProcessRef) => boolean): string | undefined {
  const d = s.detached;
  if (!d) {
    return s.status === "stopped"
      ? `container ${ref} ran in the foreground and is being removed; only a container of run -d (without --rm) can be started again`
      : `container ${ref} is running in the foreground (its corerun holds it); only a container of run -d can be started again, once it has exited`;
  }
  if (s.status !== "stopped") return monitorAlive(d.monitor) ? `container ${ref} is ${s.status === "creating" ? "starting" : s.status}; corerun stop ${ref} stops it` : `container ${ref} lost its monitor while it ran; corerun rm -f ${ref} removes it`;
  if (d.rm) return `container ${ref} was run with --rm and is being removed; it cannot be started again`;
  if (d.restarting && monitorAlive(d.monitor)) return `container ${ref} is restarting: its monitor starts it again (its --restart policy); corerun stop ${ref} ends that`;
  if (monitorAlive(d.monitor)) return `container ${ref} has exited but its monitor is still finishing; try again in a moment`;
  if (!d.start) return `container ${ref} was created by a corerun that did not record its command line; run it anew (corerun rm ${ref}, then corerun run -d ...)`;
  return undefined;
}

export function setStatus(path: string, status: Status, extra: Partial<State> = {}): State {
  return updateState(path, () => ({ ...extra, status }));
}

/** The ids of every container directory under the root. */
export function listContainers(root: string): string[] {
  try {
    return readdirSync(root).filter((n) => ID_PATTERN.test(n)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
}

/** What a state file holds before it is checked against the schema: enough to pick it by. */
export interface RawState {
  id?: unknown;
  config?: { name?: unknown } | null;
}

/**
 * The state of every container under the root that can be read (one being removed is skipped),
 * or of those `pick` keeps, judged on each file's JSON before the schema: a lookup by name or id
 * checks only the states it may return against the schema, which is about a third of the time
 * a state takes to read.
 */
export function readStates(root: string, pick?: (raw: RawState) => boolean): State[] {
  return listContainers(root).flatMap((id) => {
    const path = statePath(root, id);
    try {
      const raw: unknown = JSON.parse(readFileSync(path, "utf8"));
      if (pick && !(typeof raw === "object" && raw !== null && pick(raw as RawState))) return [];
      return [parseState(raw, path)];
    } catch {
      return [];
    }
  });
}

/** Removes a container's directory; the id pattern guarantees the path is one container's. */
export function removeContainer(root: string, id: string): void {
  removeTree(containerDir(root, id));
}

/**
 * rm -rf of a tree that nothing else writes to: entries by their readdir type, never followed
 * through a symlink, and one already gone (a concurrent cleanup) is no error. Unlike rmSync's
 * recursion, which lstats every entry and tries each directory's rmdir before reading it, it
 * takes one readdir per directory and one unlink per file (1.4 to 0.5 ms for a container's
 * directory at the end of every run).
 */
function removeTree(path: string): void {
  const gone = (err: unknown) => (err as NodeJS.ErrnoException).code === "ENOENT";
  let entries: Dirent[];
  try {
    entries = readdirSync(path, { withFileTypes: true });
  } catch (err) {
    if (gone(err)) return;
    throw err;
  }
  for (const e of entries) {
    const child = join(path, e.name);
    if (e.isDirectory()) removeTree(child);
    else {
      try {
        unlinkSync(child);
      } catch (err) {
        if (!gone(err)) throw err;
      }
    }
  }
  try {
    rmdirSync(path);
  } catch (err) {
    if (!gone(err)) throw err;
  }
}
