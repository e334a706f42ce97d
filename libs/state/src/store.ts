import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, accessSync, constants } from "node:fs";
import { randomBytes } from "node:crypto";
import { join, resolve } from "node:path";
import { linuxSyscall, LOCK_EX, LOCK_UN, type Syscall } from "@corerun/syscall";
import { canTransition, ID_PATTERN, parseState, STATE_VERSION, type ContainerConfig, type State, type Status } from "./schema.ts";

export const DEFAULT_ROOT = "/run/corerun";

/** --root, then CORERUN_ROOT, then /run/corerun. */
export function stateRoot(flag?: string, env = process.env, uid = process.geteuid?.() ?? 0): string {
  return resolve(flag ?? env.CORERUN_ROOT ?? (uid === 0 ? DEFAULT_ROOT : rootlessRoot(env, uid)));
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
    const code = (err as NodeJS.ErrnoException).code ?? "error";
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

/** Writes JSON through a temp file, fsync and rename, so a reader never sees half a file. */
export function writeJsonAtomic(path: string, value: unknown): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, "w", 0o600);
  try {
    writeFileSync(fd, `${JSON.stringify(value, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

export function writeStateFile(path: string, state: State): void {
  writeJsonAtomic(path, state);
}

export function readState(path: string): State {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new Error(`no container state at ${path}`);
    throw err;
  }
  return parseState(JSON.parse(text), path);
}

/** Runs fn while holding an exclusive flock on `path` (created if missing). */
export function withLock<T>(path: string, fn: () => T, sys: Syscall = linuxSyscall): T {
  const fd = openSync(path, "a", 0o600);
  try {
    sys.flock(fd, LOCK_EX);
    try {
      return fn();
    } finally {
      sys.flock(fd, LOCK_UN);
    }
  } finally {
    closeSync(fd);
  }
}

/** Creates the container's directory and first state, status "creating". */
export function createContainer(
  root: string,
  config: ContainerConfig,
  extra: Partial<Pick<State, "owner" | "mountPoints" | "oci">> = {},
): { id: string; dir: string; path: string; state: State } {
  checkStateRoot(root);
  for (;;) {
    const id = randomBytes(6).toString("hex");
    const dir = containerDir(root, id);
    try {
      mkdirSync(dir, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") continue;
      throw err;
    }
    const state: State = { version: STATE_VERSION, id, status: "creating", created: new Date().toISOString(), config, mountPoints: [], ...extra };
    const path = join(dir, "state.json");
    writeStateFile(path, state);
    return { id, dir, path, state };
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

/** The state of every container under the root that can be read (one being removed is skipped). */
export function readStates(root: string): State[] {
  return listContainers(root).flatMap((id) => {
    try {
      return [readState(statePath(root, id))];
    } catch {
      return [];
    }
  });
}

/** Removes a container's directory; the id pattern guarantees the path is one container's. */
export function removeContainer(root: string, id: string): void {
  rmSync(containerDir(root, id), { recursive: true, force: true });
}
