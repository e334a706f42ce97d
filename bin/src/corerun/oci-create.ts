/**
 * OCI create: builds a container from a bundle and leaves its first process (corerun-exec)
 * waiting on its go FIFO with the tree built, the cgroup joined and the pid file written, then
 * exits: no corerun process stays between create and start, and the engine's subreaper inherits
 * the container. Also update and features, which read a config's fields as create does, and
 * create's command, which the engine's bundle runs as the whole corerun does.
 */
import { closeSync, copyFileSync, openSync, readFileSync, realpathSync, renameSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { cgroupManager, createForClone, mergeLimits, openCgroupProcs, startJoinCgroupFds, type CgroupManager, type Limits } from "@corerun/cgroup";
import { defineTool, faultPoint, fdCount, nodeCommand, saveCodeCache, span, tracing, UsageError, type ToolContext } from "@corerun/cli";
import {
  checkKernelSettings, MOUNT_OPTIONS, NAMESPACE_TYPES, planCapabilities, type ResourcesConfig, planCgroupPath, planLimits, planMounts, planNamespaces, readSpec, rootPath, type Spec,
  type NamespaceType,
} from "@corerun/oci";
import { checkStateRoot, createContainer, idMapText, ociIds, ociIdTaken, procStartTime, readState, sameInode, sameNamespace, setOomScoreAdj, setStatus, stateRoot, updateState, withLock, type State } from "@corerun/state";
import { goPath, readyPath } from "@corerun/sync";
import {
  envp, inNamespaces, linuxSyscall as sys, namespaceFlags, startInNamespaces, CAPABILITIES, SCMP_CMP, CLONE_NEWCGROUP, CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWUTS,
  type NamespaceName,
} from "@corerun/syscall";
import { runHooks } from "./hooks.ts";
import { prepareSeccompProgram, SECCOMP_ACTIONS, seccompFlags, storeSeccompProgram, type CachedProgram } from "@corerun/seccomp";
import { execRuntime, handToContainerRoot, recordInit, startTool, stopTools, toolScript, toolsExited, withInheritedFds, type Tools } from "./tools.ts";
import { teardown } from "./teardown.ts";
import { cgroupOf, liveStatus, mustFind, OCI_VERSION, ociState } from "./oci.ts";
import { one, rootArg } from "./oci-calls.ts";

export interface CreateOptions {
  id: string;
  bundle: string;
  pidFile: string | undefined;
  consoleSocket: string | undefined;
  noNewKeyring: boolean;
  root: string;
  /** Inherited fds 3.. passed on to the container; the first listenFds are socket activation's. */
  preserveFds: number;
  listenFds: number;
}

/** What create takes from a config.json, every refusal made before anything exists. */
export interface CreatePlan {
  spec: Spec;
  rootfs: string;
  namespaces: ReturnType<typeof planNamespaces>;
  limits: ReturnType<typeof planLimits>;
  cgroup: { parent: string; name: string };
  seccomp: { program: CachedProgram; flags: string[] } | undefined;
  /**
   * A proc mount at /proc: corerun-exec mounts it (--mount-proc) from inside the container's PID
   * namespace, or the host's without one, and corerun-mount moves that one into the root (--proc).
   */
  proc: boolean;
}

/** Whether a namespace file (linux.namespaces' path) is corerun's own, the host's. */
function ownNamespace(type: NamespaceType, path: string): boolean {
  try {
    return sameInode(path, `/proc/self/ns/${({ network: "net", mount: "mnt" } as Record<string, string>)[type] ?? type}`);
  } catch {
    // A path that is not there is refused where it is joined.
    return false;
  }
}

export function planCreate(o: CreateOptions): CreatePlan {
  if (process.geteuid?.() !== 0) throw new UsageError("corerun's OCI commands need root: rootless OCI containers are not supported yet");
  const spec = readSpec(o.bundle);
  const p = spec.process;
  if (!p?.args?.length) throw new UsageError(`${o.bundle}/config.json: process.args is empty; name the program to run`);
  if (p.terminal && !o.consoleSocket) throw new UsageError("cannot allocate tty if corerun will detach without setting console socket (process.terminal is true: pass --console-socket)");
  if (!p.terminal && o.consoleSocket) throw new UsageError("--console-socket needs process.terminal true in config.json");
  if (spec.linux?.rootfsPropagation && !["private", "rprivate"].includes(spec.linux.rootfsPropagation)) {
    throw new UsageError(`linux.rootfsPropagation "${spec.linux.rootfsPropagation}": corerun keeps the container's mounts private; use rprivate`);
  }
  const namespaces = planNamespaces(spec);
  checkKernelSettings(spec, namespaces, ownNamespace);
  planCapabilities(spec);
  const mounts = planMounts(spec);
  const proc = mounts.some((m) => m.type === "proc" && m.destination.replace(/\/+$/, "") === "/proc");
  // A /proc shows the PID namespace of the process that mounts it (corerun-exec): without a new
  // or joined one, the host's (podman --pid host, a pod's hostPID), which the kernel lets only the
  // host's user namespace mount.
  const hostPid = !namespaces.create.includes("pid") && !namespaces.join.some((j) => j.type === "pid");
  if (proc && hostPid && (namespaces.create.includes("user") || namespaces.join.some((j) => j.type === "user"))) {
    throw new UsageError("mounts: a /proc of the host's PID namespace cannot be mounted from a user namespace; add a pid namespace to linux.namespaces or drop the user namespace");
  }
  const rootfs = rootPath(spec, o.bundle);
  let isDir = false;
  try {
    isDir = statSync(rootfs).isDirectory();
  } catch {
    // reported below
  }
  if (!isDir) throw new UsageError(`root.path ${rootfs} is not a directory; the bundle needs its root filesystem there`);
  // As runc: every later path is derived from this one, so it must be the real one, not a link
  // that could be pointed elsewhere between create and start.
  const real = realpathSync(rootfs);
  if (real !== rootfs) throw new UsageError(`root.path ${rootfs} is a symlink or passes through one (to ${real}); give the real path in config.json, as runc requires`);
  // Compiled (or found in the cache) now, so that a bad filter is refused before anything exists.
  let seccomp: CreatePlan["seccomp"];
  if (spec.linux?.seccomp !== undefined) {
    const source = `${o.bundle}/config.json: linux.seccomp`;
    seccompFlags(spec.linux.seccomp, source);
    seccomp = { program: prepareSeccompProgram(o.root, spec.linux.seccomp, source), flags: spec.linux.seccomp.flags ?? [] };
  }
  return { spec, rootfs, namespaces, limits: createLimits(spec.linux?.resources), cgroup: planCgroupPath(spec, o.id), seccomp, proc };
}

/**
 * Records the container (its id claimed under the state root's lock, as runc refuses a second
 * container of one id), with the bundle and a copy of config.json that later commands use: the
 * bundle may change or go after create.
 */
function createOciState(o: CreateOptions, plan: CreatePlan): { id: string; dir: string; path: string; cg: CgroupManager } {
  checkStateRoot(o.root);
  const { spec } = plan;
  const owner = { pid: process.pid, startTime: procStartTime(process.pid) ?? 0 };
  const joinsNet = plan.namespaces.join.some((j) => j.type === "network");
  const config = {
    rootfs: plan.rootfs, command: spec.process!.args!, hostname: spec.hostname, env: spec.process!.env ?? [], cwd: spec.process!.cwd, volumes: [],
    network: { mode: plan.namespaces.create.includes("network") ? ("none" as const) : joinsNet ? ("external" as const) : ("host" as const), ports: [] },
    name: o.id, limits: plan.limits, cgroupParent: plan.cgroup.parent,
  };
  // The filter the first process gets, for exec to give every process it starts in the container.
  const seccomp = plan.seccomp && { program: storeSeccompProgram(plan.seccomp.program), flags: plan.seccomp.flags };
  const oci = { bundle: o.bundle, ociVersion: spec.ociVersion, annotations: spec.annotations ?? {}, ...(seccomp ? { seccomp } : {}) };
  // The cgroup is recorded in the state's first write, before createCgroup makes it: cleanup
  // finds it after a crash. Its path is the config's, whatever id the container gets here.
  const devices = plan.limits.devices !== undefined;
  const cg = cgroupManager({ ...plan.cgroup, devices, everyHierarchy: true });
  const cgroup = { name: cg.name, parent: cg.parent, paths: cg.paths(), devices };
  const made = withLock(join(o.root, "names.lock"), () => {
    if (ociIdTaken(o.root, o.id)) throw new UsageError(`container with id "${o.id}" already exists`);
    const hooks = { poststop: spec.hooks?.poststop ?? [], startContainer: spec.hooks?.startContainer ?? [], poststart: spec.hooks?.poststart ?? [] };
    return createContainer(o.root, config, { owner, oci: { ...oci, ...hooks } }, () => ({ cgroup }), ociIds(o.id));
  });
  copyFileSync(join(o.bundle, "config.json"), join(made.dir, "config.json"));
  sys.mkfifo(readyPath(made.dir), 0o600);
  sys.mkfifo(goPath(made.dir), 0o600);
  return { id: made.id, dir: made.dir, path: made.path, cg };
}

/** The config's uid and gid mappings as /proc/PID/uid_map and gid_map text. */
function mapsOf(spec: Spec): { uidMap: string; gidMap: string } {
  return { uidMap: idMapText(spec.linux!.uidMappings!.map(toRange)), gidMap: idMapText((spec.linux!.gidMappings ?? spec.linux!.uidMappings!).map(toRange)) };
}

/**
 * A user namespace joined by path has its mappings already: the config's must be the same, or
 * the files handed to the container's root (and the engine's idea of its ids) would be wrong.
 */
function checkJoinedMaps(spec: Spec, pid: number, path: string): void {
  const want = mapsOf(spec);
  const lines = (text: string) => text.trim().split("\n").map((l) => l.trim().split(/\s+/).join(" ")).filter(Boolean);
  for (const [kind, file] of [["uid", want.uidMap], ["gid", want.gidMap]] as const) {
    const has = lines(readFileSync(`/proc/${pid}/${kind}_map`, "utf8"));
    if (lines(file).join("; ") !== has.join("; ")) {
      throw new UsageError(`linux.${kind}Mappings: the user namespace ${path} maps "${has.join("; ")}" (container host size), not "${lines(file).join("; ")}"; give its own mappings`);
    }
  }
}

/** corerun-exec as the first process, in the config's namespaces, waiting for go. */
function startFirstProcess(o: CreateOptions, plan: CreatePlan, dir: string, prepare: (pid: number) => void): number {
  const { spec, namespaces } = plan;
  const userns = namespaces.create.includes("user") ? mapsOf(spec) : undefined;
  // Node's threads keep it out of a user namespace: the native helper's child joins it.
  const joinedUser = namespaces.join.find((j) => j.type === "user");
  const exec = userns || joinedUser ? execRuntime(o.root) : toolScript("corerun-exec");
  const argv = [
    ...nodeCommand(exec), "--sync-dir", dir, "--oci", join(dir, "config.json"),
    ...(plan.proc ? ["--mount-proc"] : []),
    ...(namespaces.create.includes("cgroup") ? ["--cgroupns"] : []),
    ...(namespaces.create.includes("network") ? ["--lo-up"] : []),
    ...(o.noNewKeyring ? [] : ["--keyring", o.id]),
    ...(o.preserveFds ? ["--preserve-fds", String(o.preserveFds)] : []), ...(o.listenFds ? ["--listen-fds", String(o.listenFds)] : []),
    ...(plan.seccomp ? ["--seccomp", storeSeccompProgram(plan.seccomp.program), ...plan.seccomp.flags.flatMap((f) => ["--seccomp-flag", f])] : []),
  ];
  // The cgroup namespace is made by corerun-exec once in its cgroup, so that it is the root there.
  const names = namespaces.create.filter((t) => t !== "cgroup" && t !== "user").map((t) => (t === "network" ? "net" : t)) as NamespaceName[];
  // With a joined user namespace, the native helper's child joins the PID namespace too: the
  // pid it gets back is then one of corerun's namespace, not the pod's.
  const joinedPid = joinedUser ? namespaces.join.find((j) => j.type === "pid") : undefined;
  const fds: number[] = [];
  try {
    const joinUserns = joinedUser ? { userns: fds[fds.push(openNamespace(joinedUser)) - 1]!, pidns: joinedPid ? fds[fds.push(openNamespace(joinedPid)) - 1] : undefined } : undefined;
    const clone = () => startInNamespaces(sys, {
      flags: namespaceFlags(names), path: process.execPath, argv, env: envp(), userns, joinUserns, nullStdio: spec.process!.terminal ?? false,
      prepare: (child) => {
        if (joinedUser) checkJoinedMaps(spec, child, joinedUser.path);
        prepare(child);
      },
    });
    // Node marks the fds it inherited close-on-exec; the preserved ones must reach corerun-exec.
    const preserved = Array.from({ length: o.preserveFds }, (_, i) => 3 + i);
    return withInheritedFds(preserved, () => inNamespaces(sys, namespaces.join.filter((j) => j.type !== "user" && j !== joinedPid), clone));
  } finally {
    for (const fd of fds) closeSync(fd);
  }
}

function openNamespace(ns: { type: string; path: string }): number {
  try {
    return openSync(ns.path, "r");
  } catch (err) {
    throw new UsageError(`linux.namespaces: cannot open the ${ns.type} namespace ${ns.path} (${(err as NodeJS.ErrnoException).code})`);
  }
}

const toRange = (m: { containerID: number; hostID: number; size: number }) => ({ container: m.containerID, host: m.hostID, size: m.size });

/** runc writes the pid file as digits only, through a rename: a reader never sees half of it. */
export function writePidFile(file: string, pid: number): void {
  const tmp = join(dirname(file), `.${file.split("/").at(-1)}.tmp`);
  writeFileSync(tmp, String(pid));
  renameSync(tmp, file);
}

/** The cgroup directories a cgroup mount binds: hierarchy name (its mount point's base) → dir. */
function cgroupDirArgs(cg: CgroupManager): string[] {
  const paths = cg.paths();
  const seen = new Set<string>();
  const out: string[] = [];
  for (const [controller, dir] of Object.entries(paths)) {
    if (seen.has(dir)) continue;
    seen.add(dir);
    const mount = controller === "" ? cg.layout.unified : cg.layout.v1[controller];
    const name = controller === "" && cg.layout.setup === "unified" ? "" : mount ? mount.split("/").at(-1)! : controller;
    out.push("--cgroup-dir", `${name}=${dir}`);
  }
  return out;
}

export async function ociCreate(o: CreateOptions): Promise<State> {
  const plan = span("read bundle", { bundle: o.bundle }, () => planCreate(o));
  const tools: Tools = [];
  let made: ReturnType<typeof createOciState> | undefined;
  let joining: (() => void) | undefined;
  try {
    const hooks = plan.spec.hooks;
    const pause = Boolean(hooks?.prestart?.length || hooks?.createRuntime?.length || hooks?.createContainer?.length);
    // Started once the config is known to be good, its command line given once the first process
    // exists: its Node start and load, with corerun-exec's the longest steps of a create, run
    // beside the state, the cgroup and the clone. With hooks, it pauses before pivot_root until
    // they have run.
    const mount = startTool(tools, "corerun-mount", {
      captureErrors: true,
      ...(pause ? {
        // async: a failed join then rejects the pause (and the create is torn down) instead of
        // throwing out of the pipe's read callback.
        onPause: async () => {
          enterCgroup();
          await createHooks(state.path, plan.spec, pid);
        },
      } : {}),
    });
    made = span("create state", { root: o.root, id: o.id }, () => createOciState(o, plan));
    const state = made;
    faultPoint("oci:state");
    if (plan.namespaces.create.includes("user") || plan.namespaces.join.some((j) => j.type === "user")) {
      const maps = { uidMap: plan.spec.linux!.uidMappings!.map(toRange), gidMap: (plan.spec.linux!.gidMappings ?? plan.spec.linux!.uidMappings!).map(toRange) };
      handToContainerRoot(o.root, state.dir, maps, [readyPath(state.dir), goPath(state.dir), join(state.dir, "config.json")]);
    }
    // The limits to write once the process has loaded; undefined: the cgroup has them all now,
    // and the process moves only once loaded.
    const { cg } = made;
    const beforeGo = span("create cgroup", { parent: plan.cgroup.parent, name: plan.cgroup.name, limits: plan.limits }, () => createForClone(cg, plan.limits));
    faultPoint("oci:cgroup");
    // Recorded before the process runs at all: a create killed at any moment leaves either no
    // process (it waits on a pipe that closes with create) or one that cleanup finds.
    const pid = span("start first process", { exec: "corerun-exec" }, () => startFirstProcess(o, plan, state.dir, (child) => void recordInit({ path: state.path }, child)));
    faultPoint("oci:cloned");
    // In its cgroup before any hook and before create returns: the engine reads the cgroup from
    // /proc/PID/cgroup for stats and OOM events. The move begins now, on a thread, and its RCU
    // grace period passes while corerun-exec and corerun-mount load; the limits that could slow
    // that load (pids, CPU) are written once it has loaded (it said ready). Under a limit that
    // could stop the load (cloneJoin) it moves only then, so that the memory the waiting Node
    // process took to load stays charged where it was.
    if (beforeGo) joining = startJoinCgroupFds(openCgroupProcs(cg.dirs()), pid);
    const enterCgroup = () =>
      span("join cgroup", { pid }, () => {
        if (joining) {
          joining();
          cg.apply(beforeGo!);
        } else {
          cg.addTask(pid);
        }
        setOomScoreAdj(pid, plan.spec.process!.oomScoreAdj, "process.oomScoreAdj");
        faultPoint("oci:cgroup-joined");
      });
    const mountArgs = [
      "--pid", String(pid), "--rootfs", plan.rootfs, "--oci", join(state.dir, "config.json"), "--sync-dir", state.dir, ...cgroupDirArgs(cg),
      ...(plan.proc ? ["--proc"] : []), "--die-with-parent",
      ...(o.consoleSocket ? ["--console-socket", resolve(o.consoleSocket)] : []),
    ];
    await mount.run(pause ? [...mountArgs, "--hook-pause"] : mountArgs);
    if (!pause) enterCgroup();
    // corerun-mount has said done, its last act before process.exit(0): its exit (~4 ms of Node's
    // and the kernel's teardown) is neither waited for nor checked, as the engine waits for
    // create. It dies with create at the latest (--die-with-parent), and the engine's subreaper
    // reaps it. A traced create waits, so that the tool's part of the trace is written before
    // create puts the trace together.
    if (tracing()) await span("tools exit", undefined, () => toolsExited(tools));
    if (o.pidFile) writePidFile(resolve(o.pidFile), pid);
    faultPoint("oci:pid-file");
    const created = span("record created", { pid }, () => setStatus(state.path, "created"));
    faultPoint("oci:created");
    saveCodeCache("create");
    return created;
  } catch (err) {
    await stopTools(tools);
    // A move still under way would race the removal of the cgroups.
    try {
      joining?.();
    } catch {
      // the create has failed already
    }
    if (made) teardown(o.root, made.id, made.path);
    throw err;
  }
}

/**
 * prestart (deprecated, still used by GPU hooks) and createRuntime in corerun's namespaces,
 * then createContainer in the container's, while corerun-mount waits before pivot_root.
 */
async function createHooks(path: string, spec: Spec, pid: number): Promise<void> {
  const state = ociState(readState(path));
  await runHooks("prestart", spec.hooks?.prestart, state);
  await runHooks("createRuntime", spec.hooks?.createRuntime, state);
  if (!spec.hooks?.createContainer?.length) return;
  const pidfd = sys.pidfdOpen(pid);
  try {
    await runHooks("createContainer", spec.hooks.createContainer, state, { pidfd, ...joinableNamespaces(pid) });
  } finally {
    closeSync(pidfd);
  }
}

/**
 * The namespaces of pid that differ from corerun's own: as CLONE_NEW* flags for setns, and
 * whether its PID namespace does (joined apart: a process is born into a PID namespace).
 */
export function joinableNamespaces(pid: number): { flags: number; pid: boolean } {
  const differs = (ns: string) => !sameNamespace(ns, pid, "self");
  const table: [string, number][] = [["user", CLONE_NEWUSER], ["mnt", CLONE_NEWNS], ["uts", CLONE_NEWUTS], ["ipc", CLONE_NEWIPC], ["net", CLONE_NEWNET], ["cgroup", CLONE_NEWCGROUP]];
  return { flags: table.filter(([ns]) => differs(ns)).reduce((f, [, flag]) => f | flag, 0), pid: differs("pid") };
}

/** runtime-spec features.md: what this build of corerun implements. */
export function features(): Record<string, unknown> {
  return {
    ociVersionMin: "1.0.0",
    ociVersionMax: OCI_VERSION,
    hooks: ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
    mountOptions: MOUNT_OPTIONS,
    linux: {
      namespaces: [...NAMESPACE_TYPES],
      capabilities: Object.keys(CAPABILITIES).map((c) => `CAP_${c}`),
      cgroup: { v1: true, v2: true, systemd: false, systemdUser: false },
      seccomp: {
        enabled: true,
        actions: [...SECCOMP_ACTIONS],
        operators: Object.keys(SCMP_CMP).sort(),
        knownFlags: ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        supportedFlags: ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
      },
      apparmor: { enabled: false },
      selinux: { enabled: false },
      mountExtensions: { idmap: { enabled: false } },
    },
    annotations: { "io.github.corerun.version": "0.1.0" },
  };
}

/**
 * A new container's limits: a memory limit without memory.swap leaves memory+swap unlimited, as
 * runc leaves it (podman --memory-swap -1 sends no swap); corerun run's own --memory gives no swap.
 */
export function createLimits(resources: ResourcesConfig | undefined): Limits {
  const limits = planLimits(resources);
  return limits.memory !== undefined && limits.swap === undefined ? { ...limits, swap: -1 } : limits;
}

/** update: new limits for a live container's cgroup (runc's LinuxResources JSON and flags). */
export function ociUpdate(root: string, id: string, resources: ResourcesConfig): void {
  const s = mustFind(root, id);
  const status = liveStatus(s);
  if (status === "stopped") throw new UsageError(`container "${id}" not running`);
  if (resources.devices?.length) throw new UsageError("update: device rules cannot be changed after create");
  const limits = planLimits(resources);
  const cg = cgroupOf(s, id);
  try {
    cg.apply(limits);
  } catch (err) {
    // As runc: the limits written before the refusal go back to what they were.
    try {
      cg.apply(s.config.limits);
    } catch {
      // the refusal above is the error to report
    }
    throw err;
  }
  updateState(join(root, s.id, "state.json"), ({ config: cur }) => ({ config: { ...cur, limits: mergeLimits(cur.limits, limits) } }));
}

/** create's options, shared with run --bundle. */
export function createOptions(ctx: ToolContext, id: string): CreateOptions {
  if (ctx.flags["no-pivot"]) throw new UsageError("--no-pivot: corerun always pivots the root (pivot_root); drop --no-pivot");
  // Socket activation as runc does it: LISTEN_FDS sockets meant for this process come first,
  // then the --preserve-fds ones; the container sees LISTEN_FDS with LISTEN_PID, its program's pid.
  const listenFds = process.env.LISTEN_FDS !== undefined && process.env.LISTEN_PID === String(process.pid) ? fdCount(process.env.LISTEN_FDS, "LISTEN_FDS") : 0;
  const preserveFds = fdCount(ctx.values["preserve-fds"]?.at(-1), "--preserve-fds");
  return {
    id, bundle: resolve(ctx.values.bundle?.at(-1) ?? "."), pidFile: ctx.values["pid-file"]?.at(-1), consoleSocket: ctx.values["console-socket"]?.at(-1),
    noNewKeyring: ctx.flags["no-new-keyring"] ?? false, root: stateRoot(ctx.values.root?.at(-1)), listenFds, preserveFds: listenFds + preserveFds,
  };
}

export const create = defineTool({
  name: "corerun create",
  description: "Create a container from an OCI bundle: everything set up, its process waiting for start.",
  usage: "[options] ID",
  args: {
    ...rootArg,
    bundle: { type: "string", alias: "b", valueHint: "DIR", description: "the bundle: config.json and the root filesystem (default: the current directory)" },
    "pid-file": { type: "string", valueHint: "FILE", description: "write the container process's host pid to FILE (digits only)" },
    "console-socket": { type: "string", valueHint: "PATH", description: "send the pty master to this AF_UNIX socket (process.terminal)" },
    "no-pivot": { type: "boolean", description: "refused: corerun always uses pivot_root" },
    "no-new-keyring": { type: "boolean", description: "keep the caller's session keyring instead of a new one" },
    "preserve-fds": { type: "string", valueHint: "N", description: "pass fds 3 to 3+N-1 (after LISTEN_FDS ones) on to the container's process" },
  },
  tail: "command",
  notes: ["create returns once the container is created; its first process then waits for `corerun start ID`.\nNo corerun process stays behind: the caller's subreaper (containerd's shim, conmon) inherits it."],
  examples: ["sudo corerun create --bundle ./bundle --pid-file ./init.pid web && sudo corerun start web"],
  async run(ctx) {
    const id = one(ctx.tail, "create");
    await ociCreate(createOptions(ctx, id));
    return 0;
  },
});
