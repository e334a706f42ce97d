/**
 * The OCI runtime commands (runc's command line, as containerd's shim, conmon and Docker call
 * it) on a container that exists: start, state, kill, delete, ps, pause, resume, stats. They run
 * on the same state machine, state files and tools as `corerun run`: an OCI container is a
 * corerun container whose name is its OCI id and whose state keeps its bundle. create, update
 * and features are in oci-create.ts: this module is also the engine's bundle's (engine.ts), which
 * leaves out the code of create.
 */
import { spawnSync } from "node:child_process";
import { closeSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { CgroupManager } from "@corerun/cgroup";
import { errorLine, faultPoint, saveCodeCache, span, UsageError, signalNumber, writeErr } from "@corerun/cli";
import { findByRef, findOciContainer, mayBeRef, isAlive, OCI_ID_PATTERN, openRecorded, readStates, sameNamespace, setStatus, type State, type Status } from "@corerun/state";
import { sendGo } from "@corerun/sync";
import { linuxSyscall as sys } from "@corerun/syscall";
import { runHooks } from "./hooks.ts";
import { recordedCgroup, teardown } from "./teardown.ts";

/** The runtime-spec version corerun implements and reports. */
export const OCI_VERSION = "1.2.0";

/** runc's error wording, which engines match on (containerd's shim, Docker, podman). */
export const notExist = (id: string) => new UsageError(`container "${id}" does not exist; see corerun ps -a`);

export function checkId(id: string | undefined): string {
  if (id === undefined || id === "") throw new UsageError("container id cannot be empty; give the container's id");
  if (!OCI_ID_PATTERN.test(id)) throw new UsageError(`invalid container id "${id}": use letters, digits, "_", "+", "-" and "." (not first)`);
  return id;
}

/** A container by OCI id (its name), corerun id or, unless exact, a unique prefix of that id. */
export function findContainer(root: string, ref: string, exact = false): State | undefined {
  return findOciContainer(root, ref) ?? findByRef(readStates(root, (raw) => mayBeRef(raw, ref, exact)), ref, exact);
}

export function mustFind(root: string, ref: string, exact = false): State {
  const s = findContainer(root, ref, exact);
  if (!s) throw notExist(ref);
  return s;
}

/**
 * The containers named, each taken on its own (Docker's rule for stop, kill and rm): a name that
 * names none, or that `refuse` turns down, is refused alone and the rest go on, as is one whose
 * step fails (fail). report() then writes each refusal on stderr, one line each, the last as the
 * command's error (an engine's --log gets it too): status 125 if there was any.
 */
export function eachNamed(root: string, refs: readonly string[], refuse?: (s: State, ref: string) => string | undefined) {
  const found: { ref: string; state: State }[] = [];
  const refused: string[] = [];
  for (const ref of refs) {
    const state = findContainer(root, ref);
    const why = state ? refuse?.(state, ref) : notExist(ref).message;
    if (why !== undefined) refused.push(why);
    else found.push({ ref, state: state! });
  }
  return {
    found,
    fail(err: unknown): void {
      refused.push(errorLine(err));
    },
    report(): number {
      for (const why of refused.slice(0, -1)) writeErr(`corerun: ${why}\n`);
      if (refused.length) throw new UsageError(refused.at(-1)!);
      return 0;
    },
  };
}

/** The status as the kernel has it: a container whose first process is gone has stopped. */
export function liveStatus(s: State): Status {
  if ((s.status === "created" || s.status === "running" || s.status === "paused") && !isAlive(s.init)) return "stopped";
  return s.status;
}

/**
 * start: the waiting first process runs the startContainer hooks (inside) and execs the
 * config's program; then the poststart hooks run here. A failing poststart hook stops the
 * container, as runc does. s: the container named id, as the caller found it.
 */
export async function ociStart(root: string, id: string, s: State): Promise<void> {
  const status = liveStatus(s);
  if (status !== "created") throw new UsageError(`cannot start a container that is ${status === "stopped" ? "stopped" : `not in created state (${status})`}`);
  const dir = join(root, s.id);
  const running = setStatus(join(dir, "state.json"), "running");
  faultPoint("oci:running");
  try {
    span("start", { fifo: "go" }, () => sendGo(dir, s.oci?.startContainer.length ? ociState(s) : undefined));
    faultPoint("oci:go");
  } catch (err) {
    throw new Error(`container "${id}" is not running: its first process no longer waits for start`, { cause: err });
  }
  try {
    if (s.oci?.poststart.length) await span("poststart hooks", { hooks: s.oci.poststart.length }, () => runHooks("poststart", s.oci?.poststart, ociState(running)));
  } catch (err) {
    ociKill(root, id, 9, true);
    throw err;
  }
  saveCodeCache("start");
}

/** The containers start names, each found in a span of the trace. */
export function findEach(root: string, refs: readonly string[]): { ref: string; s: State }[] {
  return refs.map((ref) => ({ ref, s: span("find container", { id: ref }, () => mustFind(root, ref)) }));
}

/**
 * start's form for an OCI container (runc's): found names one, alone and without -a. False when
 * found names none (start's other form is the caller's).
 */
export async function startOci(root: string, found: readonly { ref: string; s: State }[], attach: boolean): Promise<boolean> {
  const oci = found.find((f) => f.s.oci);
  if (!oci) return false;
  if (found.length > 1 || attach) throw new UsageError(`container ${oci.ref} is an OCI container: start it alone and without -a (corerun start ID), as runc does`);
  await ociStart(root, checkId(oci.ref), oci.s);
  return true;
}

/** runc's `state` JSON: the runtime-spec's fields, plus rootfs, created and owner. */
export function ociState(s: State): Record<string, unknown> {
  const status = liveStatus(s);
  return {
    ociVersion: s.oci?.ociVersion ?? OCI_VERSION,
    id: s.config.name ?? s.id,
    pid: status === "stopped" ? 0 : (s.init?.pid ?? 0),
    status: status === "creating" ? "creating" : status,
    bundle: s.oci?.bundle ?? "",
    rootfs: s.config.rootfs,
    created: s.created,
    ...(s.oci?.annotations && Object.keys(s.oci.annotations).length ? { annotations: s.oci.annotations } : {}),
    owner: "",
  };
}

/** A signal as runc takes it: a number, KILL or SIGKILL; SIGTERM when absent. */
export function parseSignal(text: string | undefined): number {
  if (text === undefined) return 15;
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    if (n < 1 || n > 64) throw new UsageError(`signal ${text}: give a number from 1 to 64 or a name such as TERM`);
    return n;
  }
  const name = text.toUpperCase();
  return signalNumber(name.startsWith("SIG") ? name : `SIG${name}`);
}

/**
 * kill: the first process, or with all every process of the container's cgroup. SIGKILL to a
 * container without a PID namespace of its own goes to all of them, as runc sends it: there the
 * first process's end does not end the rest. Every SIGKILL to all is the cgroup's kill (cgroup.kill,
 * or frozen while each is killed), which a fork cannot escape.
 */
export function ociKill(root: string, id: string, sig: number, all: boolean): void {
  const s = mustFind(root, id);
  const status = liveStatus(s);
  const everyone = all || (sig === 9 && s.init !== undefined && isAlive(s.init) && sharesPidNamespace(s.init.pid));
  if (everyone && s.cgroup) {
    const cg = recordedCgroup(s.cgroup);
    if (!cg.exists()) return;
    if (sig === 9) {
      cg.killAll();
      return;
    }
    for (const pid of cg.pids()) {
      try {
        process.kill(pid, sig);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
      }
    }
    return;
  }
  if (status === "stopped" || status === "creating") throw new UsageError(`container "${id}" not running`);
  const fd = openRecorded(sys, s.init);
  if (fd === undefined) throw new UsageError(`container "${id}" not running`);
  try {
    sys.pidfdSendSignal(fd, sig);
  } finally {
    closeSync(fd);
  }
}

/** Whether a process is in corerun's own PID namespace (a container started without one). */
function sharesPidNamespace(pid: number): boolean {
  try {
    return sameNamespace("pid", pid, "self");
  } catch {
    return false;
  }
}

/** delete: what create made goes; a running container only with force. */
export async function ociDelete(root: string, id: string, force: boolean): Promise<void> {
  // Whole ids only: a forced delete of a container that is gone must not reach another one.
  const s = span("find container", { id }, () => findContainer(root, id, true));
  if (!s) {
    if (force) return;
    throw notExist(id);
  }
  const status = liveStatus(s);
  if ((status === "running" || status === "paused") && !force) throw new UsageError(`cannot delete container "${id}" that is not stopped: ${status}`);
  const failures = teardown(root, s.id, join(root, s.id, "state.json"));
  if (failures.length) throw failures[0]!;
  // After the container is gone; a failure is only a warning (runtime.md).
  try {
    await runHooks("poststop", s.oci?.poststop, { ...ociState(s), status: "stopped", pid: 0 });
  } catch (err) {
    writeErr(`corerun delete: warning: ${(err as Error).message}\n`);
  }
  saveCodeCache("delete");
}

export function ociPause(root: string, id: string, pause: boolean): void {
  const s = mustFind(root, id);
  const status = liveStatus(s);
  if (pause && status !== "running") throw new UsageError(`container "${id}" not running`);
  if (!pause && status !== "paused") throw new UsageError(`container "${id}" not paused`);
  if (!s.cgroup) throw new UsageError(`container "${id}" has no cgroup to freeze`);
  const cg = recordedCgroup(s.cgroup);
  if (pause) cg.freeze();
  else cg.thaw();
  setStatus(join(root, s.id, "state.json"), pause ? "paused" : "running");
}

/** The pids of every process in the container's cgroup. */
export function ociPids(root: string, id: string): number[] {
  const s = mustFind(root, id);
  if (!s.cgroup) return s.init && isAlive(s.init) ? pidNamespaceMembers(s.init.pid) : [];
  const cg = recordedCgroup(s.cgroup);
  return cg.exists() ? cg.pids() : [];
}

/**
 * The processes of a container without a cgroup (a rootless one): those in its first process's
 * PID namespace, which every process of the container is in (exec's too).
 */
function pidNamespaceMembers(pid: number): number[] {
  const ns = (p: string) => {
    try {
      return statSync(`/proc/${p}/ns/pid`).ino;
    } catch {
      // Gone meanwhile, or not ours to look at: not the container's.
      return -1;
    }
  };
  const own = ns(String(pid));
  if (own < 0) return [];
  return readdirSync("/proc").filter((p) => /^\d+$/.test(p) && ns(p) === own).map(Number).sort((a, b) => a - b);
}

/** `ps --format table`: the host's ps, keeping the header and the container's processes. */
export function psTable(pids: readonly number[], psArgs: readonly string[]): string {
  const r = spawnSync("ps", psArgs.length ? [...psArgs] : ["-ef"], { encoding: "utf8" });
  if (r.error || r.status !== 0) throw new Error(`ps ${psArgs.join(" ")} failed: ${(r.stderr || String(r.error)).trim()}`);
  const [header, ...lines] = r.stdout.trimEnd().split("\n");
  const col = (header ?? "").trim().split(/\s+/).indexOf("PID");
  if (col < 0) throw new UsageError(`ps ${psArgs.join(" ")}: its output has no PID column`);
  const keep = lines.filter((l) => pids.includes(Number(l.trim().split(/\s+/)[col])));
  return `${[header, ...keep].join("\n")}\n`;
}

/** The container's cgroup, for the commands that read or change it. */
export function cgroupOf(s: State, id: string): CgroupManager {
  if (!s.cgroup) throw new UsageError(`container "${id}" has no cgroup`);
  return recordedCgroup(s.cgroup);
}

export { recordedCgroup };

/** runc's stats event (types/events.go), from the cgroup's files. */
export function ociStats(root: string, id: string): Record<string, unknown> {
  const s = mustFind(root, id);
  if (liveStatus(s) === "stopped") throw new UsageError(`container with id "${id}" is not running`);
  const st = cgroupOf(s, id).stats();
  return {
    type: "stats",
    id,
    data: {
      cpu: { usage: { total: st.cpu.usageUsec === null ? 0 : st.cpu.usageUsec * 1000 }, throttling: {} },
      memory: { usage: { usage: st.memory.current ?? 0, limit: st.memory.limit ?? 0, max: st.memory.peak ?? 0 }, raw: {} },
      pids: { current: st.pids.current ?? st.processes, limit: st.pids.limit ?? 0 },
      blkio: {},
      hugetlb: {},
    },
  };
}

/** The OOM kills counted so far in the container's cgroup. */
export function oomKills(root: string, id: string): number {
  return cgroupOf(mustFind(root, id), id).stats().oomKills ?? 0;
}
