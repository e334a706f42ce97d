import {
  chmodSync, chownSync, closeSync, cpSync, openSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync,
  read, statSync, write, writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { envp, FD_CLOEXEC, inNetworkNamespace, koffiModulesDir, linuxSyscall as sys, namespaceFlags, startInNamespaces, type NamespaceName } from "@corerun/syscall";
import { ARGV_FD_ENV, DONE_FD_ENV, encodeArgv, faultPoint, PARENT_PID_ENV, span, UsageError, waitChild, type ProcessEnd } from "@corerun/cli";
import { missingMountPoints, mountPointPaths, type VolumeSpec } from "@corerun/rootfs";
import { ETC_FILES, etcFilesFor, teardown as netTeardown, writeEtcFiles } from "@corerun/net";
import { cgroupManager, createForClone, oomReport, openCgroupProcs, startJoinCgroupFds, type CgroupManager } from "@corerun/cgroup";
import type { ConsolaInstance } from "consola";
import {
  createContainer, restartContainer, isAlive, procStartTime, readStates, removeContainer, setStatus, updateState,
  withLock, checkStateRoot, openRecorded, allocateAutoUserns, claimCreatedPaths, type CreatedPath, hostIdOf, idMapText, type IdRange, type State,
} from "@corerun/state";
import { goPath, readyPath, sendGo } from "@corerun/sync";
import type { RunConfig } from "./args.ts";
import { securityExecArgs, securityMountArgs } from "./security.ts";
import { mountImage, overlayArgs, unmountImage } from "./image.ts";
import { runProcess } from "./exec.ts";
import { teardown, teardownParts } from "./teardown.ts";

export { teardown };

// What a teardown reaches beyond the container's own records: its bridge network and its image's
// layers (see teardownParts).
teardownParts.network = (root, id) => void netTeardown({ root, id });
teardownParts.image = unmountImage;

/** The bundled tools sit next to corerun's own bundle. */
const DIST = dirname(process.argv[1] ?? ".");

export function toolScript(name: string): string {
  return join(DIST, `${name}.cjs`);
}

/**
 * Node's command line for a tool's loader. --preserve-symlinks-main: Node would otherwise resolve
 * the script's path with realpath, one lstat a component in JavaScript (~0.5 ms of every start);
 * the loader finds its bundle and caches beside the path it was given, and the launchers and
 * execRuntime give it one whose directory is dist/ itself.
 */
export function nodeArgv(script: string): string[] {
  return [process.execPath, "--preserve-symlinks-main", script];
}

export interface Container {
  id: string;
  dir: string;
  path: string;
  hostname: string;
  /** The cgroup directories the first process joins right before the exec. */
  cgroupDirs: string[];
  /** Or fds of their cgroup.procs, opened here and inherited (what corerun itself uses). */
  cgroupFds?: number[];
  /** The wait for a join begun as the first process was cloned (cloneJoin). */
  joining?: (() => void) | undefined;
  /**
   * Set by createCgroup when the first process joins as it is cloned (cloneJoin): writes, before
   * go, the limits its Node loaded without (pids, CPU). Unset, it joins right before its exec.
   */
  limitsBeforeGo?: (() => void) | undefined;
  /** The user namespace's maps, when the container has one. */
  userns?: { uidMap: IdRange[]; gidMap: IdRange[] } | undefined;
  /** A restarted container's last address and host ports, asked of corerun-net again. */
  prefer?: { address: string; ports: string[] } | undefined;
  /** /dev/null, opened for the first process's stdin (no -i) until it is cloned. */
  nullStdin?: number | undefined;
  /** Its cgroup's manager, when createState recorded the cgroup with the state's first write. */
  cgroup?: CgroupManager;
  /** The mount points the rootfs lacks and those it is to hold, for claimMountPoints. */
  mountPoints: { missing: CreatedPath[]; wanted: string[] };
}

/** The container's own /etc/hosts, /etc/resolv.conf and /etc/hostname, bind-mounted over the rootfs's. */
export function etcVolumes(dir: string, user: readonly VolumeSpec[] = []): (VolumeSpec & { kind: "file" })[] {
  // A file the user mounts there, or a whole /etc, wins, as in Docker.
  const taken = (target: string) => user.some((v) => v.target === target || v.target === "/etc");
  return Object.values(ETC_FILES)
    .map((f) => ({ source: join(dir, "etc", f), target: `/etc/${f}`, readonly: false, kind: "file" as const }))
    .filter((v) => !taken(v.target));
}

/**
 * Records the container, then the mount points it will add to the rootfs, before creating any.
 * A --name is claimed under the state root's lock, so two containers never get the same one.
 */
export function createState(cfg: RunConfig, extra: Partial<Pick<State, "owner" | "detached">> = {}): Container {
  checkStateRoot(cfg.root);
  const owner = extra.owner ?? { pid: process.pid, startTime: procStartTime(process.pid) ?? 0 };
  const { mode, net, subnet, ports, container } = cfg.network;
  const config = {
    rootfs: cfg.rootfs, command: cfg.command, hostname: cfg.hostname, env: cfg.env, cwd: cfg.workdir,
    volumes: cfg.volumes, network: { mode, net, subnet, ports, container }, name: cfg.name, limits: cfg.limits,
    cgroupParent: cfg.cgroupParent, process: runProcess(cfg), ...(cfg.restart ? { restart: cfg.restart } : {}),
  };
  // The name and an automatic uid range are claimed under one lock, and recorded in the new
  // state before it is released.
  const { id, dir, path, userns, cg } = withLock(join(cfg.root, "names.lock"), () => {
    const holder = cfg.name === undefined ? undefined : findRunningOrStarting(cfg.root, cfg.name);
    if (holder) throw new UsageError(`--name ${cfg.name} is already used by container ${holder}; pick another name`);
    const maps = cfg.userns?.auto ? allocateAutoUserns(cfg.root) : cfg.userns;
    const userns = maps ? { uidMap: maps.uidMap, gidMap: maps.gidMap, auto: cfg.userns?.auto ?? false } : undefined;
    // The cgroup is recorded in the first write of the state, before createCgroup makes it.
    let cg: CgroupManager | undefined;
    const byId = cfg.rootless ? undefined : (cid: string) => ({ cgroup: cgroupRecord((cg = cgroupManager({ name: cid, parent: cfg.cgroupParent }))) });
    return { ...createContainer(cfg.root, { ...config, userns }, { owner, ...(extra.detached ? { detached: extra.detached } : {}) }, byId), userns, cg };
  });
  return { ...prepareContainer(cfg, id, dir, path, userns, false), cgroup: cg };
}

/**
 * A detached container started again by its monitor (--restart): the same state, id and name,
 * back to "creating" with everything of its last run released; its directory is made ready for
 * a new first process as createState does. undefined when the user stopped it meanwhile.
 */
export function restartState(cfg: RunConfig, id: string, owner: State["owner"]): Container | undefined {
  const dir = join(cfg.root, id);
  const path = join(dir, "state.json");
  const s = restartContainer(path, owner);
  faultPoint("corerun:restart-state");
  if (!s) return undefined;
  // The environment it was created with: `-e NAME` took its value from the first start's caller,
  // whose environment a later `corerun start` does not have.
  cfg.env = s.config.env;
  const userns = s.config.userns;
  const c = prepareContainer(cfg, id, dir, path, userns && { uidMap: userns.uidMap, gidMap: userns.gidMap }, true);
  return { ...c, prefer: s.detached?.lastNetwork };
}

/** The container directory's sync FIFOs and /etc files, the image's overlayfs and the mount points, each recorded first. */
function prepareContainer(cfg: RunConfig, id: string, dir: string, path: string, userns: Container["userns"], again: boolean): Container {
  const targets = [...cfg.volumes, ...etcVolumes(dir, cfg.volumes), { source: "", target: cfg.workdir, readonly: false, kind: "dir" as const }];
  try {
    if (cfg.image) cfg.rootfs = mountImage(cfg.root, cfg.image, { dir, path }, userns, targets, cfg.rootless);
  } catch (err) {
    teardown(cfg.root, id, path, undefined, again);
    throw err;
  }
  faultPoint("corerun:image-mounted");
  try {
    // A run before this one left its FIFOs (and whatever was said on them).
    if (again) for (const f of [readyPath(dir), goPath(dir)]) rmSync(f, { force: true });
    sys.mkfifo(readyPath(dir), 0o600);
    sys.mkfifo(goPath(dir), 0o600);
    mkdirSync(join(dir, "etc"), { recursive: again });
    for (const v of etcVolumes(dir)) writeFileSync(v.source, "");
    if (userns) handToContainerRoot(cfg.root, dir, userns);
    faultPoint("corerun:sync-files");
    // A rootless image container's tree is mounted later, inside its namespaces, where corerun-mount
    // makes the missing mount points in its upper directory, which goes with the container.
    const wanted = mountPointPaths(cfg.rootfs, targets);
    const missing = cfg.image && cfg.rootless ? [] : missingMountPoints(cfg.rootfs, targets, wanted);
    return { id, dir, path, hostname: cfg.hostname ?? id, cgroupDirs: [], userns, mountPoints: { missing, wanted } };
  } catch (err) {
    // Nothing outside the directory exists yet (a mount point is only claimed here, and made by
    // corerun-mount) but an image's overlayfs: a rootfs refused here leaves nothing behind.
    if (again) teardown(cfg.root, id, path, undefined, true);
    else if (cfg.image) teardown(cfg.root, id, path);
    else removeContainer(cfg.root, id);
    throw err;
  }
}

/**
 * The mount points corerun-mount is to make in the rootfs are claimed in the state root's registry
 * (fsynced: on disk before they exist) and recorded in the state, after the clone and before
 * corerun-mount gets its words: the fsync then runs while corerun-exec's Node starts. Until the
 * claim, nothing has made them, so a start killed before it leaves none.
 */
export function claimMountPoints(cfg: RunConfig, c: Container): void {
  const held = claimCreatedPaths(cfg.root, c.id, c.mountPoints.missing, c.mountPoints.wanted);
  faultPoint("corerun:mount-points-claimed");
  updateState(c.path, () => ({ mountPoints: held }));
  faultPoint("corerun:mount-points-recorded");
}

/**
 * In a user namespace the first process runs as the host uid that container root maps to: it
 * must reach the sync FIFOs (and may write its /etc files), but nothing else of the state. The
 * directories become traversable, not listable; state.json stays root's.
 */
export function handToContainerRoot(root: string, dir: string, userns: { uidMap: IdRange[]; gidMap: IdRange[] }, files = [readyPath(dir), goPath(dir), ...etcVolumes(dir).map((v) => v.source)]): void {
  const uid = hostIdOf(userns.uidMap, 0)!;
  const gid = hostIdOf(userns.gidMap, 0)!;
  chmodSync(root, 0o711);
  chmodSync(dir, 0o711);
  for (const f of files) chownSync(f, uid, gid);
}

/**
 * The files corerun-exec runs from, readable by a mapped uid: the checkout may sit where only
 * host root can read (under /root, or a 0700 temporary directory). The bundle (koffi's JavaScript
 * is in it), koffi's native addon and corerun's native helper are copied once per build into
 * ROOT/runtime/KEY, owned by root and world-readable, as dist/ and node_modules/ are laid out in
 * the checkout: the bundle dlopens koffi's addon by its path from dist/, else runs koffi's own
 * lookup (~1 ms more of each start).
 */
export function execRuntime(root: string): string {
  // The loader, the bundle it compiles, the bundle's code caches (tools/build.mjs, and the run
  // caches of its kinds, exec and oci, that starts have left) and the native helper, which
  // corerun-exec loads from beside its script (its cgroup join).
  const files = ["corerun-exec.cjs", "corerun-exec.bundle.cjs", "corerun-exec.bundle.cache", "corerun-exec.bundle.run-cache.exec", "corerun-exec.bundle.run-cache.oci", "libcorerun.so"].filter((f) => existsSync(join(DIST, f)));
  // The build and the Node it runs on, as they are: no digest of them, which would load
  // node:crypto (~5 ms) before the clone of every start in a user namespace.
  const st = statSync(join(DIST, "corerun-exec.bundle.cjs"));
  const key = `${st.size}-${Math.trunc(st.mtimeMs * 1000)}-node${process.versions.node}-dist`;
  const dest = join(root, "runtime", key);
  const script = join(dest, "dist", "corerun-exec.cjs");
  if (existsSync(script)) return script;
  mkdirSync(join(root, "runtime"), { recursive: true, mode: 0o755 });
  chmodSync(root, 0o711);
  const tmp = mkdtempSync(join(root, "runtime", ".tmp-"));
  try {
    const modules = koffiModulesDir();
    mkdirSync(join(tmp, "dist"), { mode: 0o755 });
    for (const f of files) cpSync(join(DIST, f), join(tmp, "dist", f));
    cpSync(join(modules, "@koromix"), join(tmp, "node_modules", "@koromix"), { recursive: true });
    chmodSync(tmp, 0o755);
    renameSync(tmp, dest);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    if (!existsSync(script)) throw new Error(`cannot stage corerun-exec in ${dest}`, { cause: err });
  }
  return script;
}

/** A container holding `name`: its corerun is alive, whatever its status, or it is detached and not removed yet. */
function findRunningOrStarting(root: string, name: string): string | undefined {
  return readStates(root, (raw) => raw.config?.name === name).find((s) => s.config.name === name && (s.detached !== undefined || (s.status !== "stopped" && (isAlive(s.owner) || isAlive(s.init)))))?.id;
}

/**
 * Every container gets a cgroup, limits or not: it is how every process of the container is
 * found and killed at the end. It is made here, in-process with the library corerun-cgroup is
 * built on, before corerun-exec starts: corerun moves it in as it clones it, with the limits its
 * Node's load could feel (pids, CPU) written before go; under a limit that could stop that load
 * (cloneJoin), corerun-exec joins through cgroup.procs fds opened here right before its exec.
 * Recorded in the state first, so that cleanup finds it after a crash.
 */
export function createCgroup(cfg: RunConfig, c: Container): CgroupManager {
  const cg = c.cgroup ?? cgroupManager({ name: c.id, parent: cfg.cgroupParent });
  if (!c.cgroup) updateState(c.path, () => ({ cgroup: cgroupRecord(cg) }));
  faultPoint("corerun:cgroup-recorded");
  const beforeGo = createForClone(cg, cfg.limits);
  if (beforeGo) c.limitsBeforeGo = () => {
    if (Object.keys(beforeGo).length) span("apply limits", undefined, () => cg.apply(beforeGo));
  };
  faultPoint("corerun:cgroup");
  c.cgroupDirs = cg.dirs();
  return cg;
}

/** How the state records a cgroup: enough for cleanup to find and remove it. */
function cgroupRecord(cg: CgroupManager): NonNullable<State["cgroup"]> {
  return { name: cg.name, parent: cg.parent, paths: cg.paths() };
}

/** One line when the kernel's OOM killer acted in the container's cgroup. */
export function reportOom(cg: CgroupManager, limits: RunConfig["limits"], log: ConsolaInstance): void {
  const line = oomReport(cg, limits.memory, "the container");
  if (line) log.error(line);
}

/**
 * The cgroup namespace is not among them: corerun-exec creates it after joining the container's
 * cgroup, so that the container sees that cgroup as its root.
 */
export function namespacesFor(cfg: RunConfig): string {
  const ownNet = cfg.network.mode === "bridge" || cfg.network.mode === "none";
  return ["pid", "mount", "uts", "ipc", ownNet ? "net" : undefined].filter(Boolean).join(",");
}

/** corerun-ns's options: the namespaces, and another container's network to join. */
export function nsArgs(cfg: RunConfig): string[] {
  const join_ = cfg.network.mode === "container" ? ["--net-ns", `/proc/${cfg.network.containerPid}/ns/net`] : [];
  return ["--ns", namespacesFor(cfg), ...join_];
}

/** corerun-exec's command line: the last step, then the user's command. */
export function execArgs(cfg: RunConfig, c: Pick<Container, "dir" | "hostname" | "cgroupDirs" | "cgroupFds">): string[] {
  const cgroups = c.cgroupFds ? c.cgroupFds.flatMap((fd) => ["--cgroup-fd", String(fd)]) : c.cgroupDirs.flatMap((d) => ["--cgroup", d]);
  return [
    "--sync-dir", c.dir, "--mount-proc", "--hostname", c.hostname, ...cgroups, "--cgroupns", "--mount-cgroup",
    ...(cfg.network.mode === "none" ? ["--lo-up"] : []),
    ...cfg.capAdd.flatMap((cap) => ["--cap-add", cap]), ...cfg.capDrop.flatMap((cap) => ["--cap-drop", cap]), ...securityExecArgs(cfg.security),
    ...cfg.env.flatMap((e) => ["-e", e]), "-w", cfg.workdir, ...(cfg.user === undefined ? [] : ["--user", cfg.user]), "--", ...cfg.command,
  ];
}

export function mountArgs(cfg: RunConfig, pid: number | string, dir: string): string[] {
  const volumes = [...cfg.volumes, ...etcVolumes(dir, cfg.volumes)];
  const spec = (v: VolumeSpec) => `${v.source}:${v.target}:${v.readonly ? "ro" : "rw"}${v.idmap ? ",idmap" : ""}`;
  // Rootless, an image's overlayfs is corerun-mount's to mount, with an upper directory even for
  // --read-only (mount points are made in it), and / is remounted read-only after pivot_root.
  const overlay = cfg.image && cfg.rootless ? overlayArgs(cfg.image.lower, dir) : [];
  const readOnly = cfg.readOnly && (!cfg.image || cfg.rootless);
  return [
    "--pid", String(pid), "--rootfs", cfg.rootfs, ...overlay, ...volumes.flatMap((v) => ["-v", spec(v)]), ...(cfg.userns && !cfg.rootless ? ["--idmap"] : []),
    ...(cfg.userns && cfg.image && !cfg.rootless ? ["--rootfs-mapped"] : []), ...securityMountArgs(cfg.security), ...(readOnly ? ["--read-only"] : []), "--proc", "--sync-dir", dir,
  ];
}

/** corerun-net setup's options for a bridge container. */
export function netArgs(cfg: RunConfig, c: Pick<Container, "id" | "dir" | "hostname" | "prefer">, pid: number | string): string[] {
  const n = cfg.network;
  const prefer = c.prefer ? ["--prefer-address", c.prefer.address, ...c.prefer.ports.flatMap((p) => ["--prefer-port", p])] : [];
  return [
    "setup", ...prefer, "--pid", String(pid), "--id", c.id, "--root", cfg.root, "--hostname", c.hostname, "--etc-dir", join(c.dir, "etc"),
    ...(n.net ? ["-N", n.net] : []), ...(n.subnet ? ["--subnet", n.subnet] : []), ...n.ports.flatMap((p) => ["-P", p]),
    ...(cfg.name ? ["--name", cfg.name] : []),
  ];
}

/**
 * The tools that build a container, started as soon as corerun knows it will run one, before
 * the container exists: their Node start overlaps corerun's own steps, and each gets its
 * command line once the first process exists (buildTree, setupNetwork).
 */
export interface Builders {
  mount: EarlyTool;
  /** corerun-net, for a bridge. */
  net: EarlyTool | undefined;
}

export function startBuilders(cfg: RunConfig, tools: Tools): Builders {
  return { mount: startTool(tools, "corerun-mount"), net: cfg.network.mode === "bridge" ? startTool(tools, "corerun-net") : undefined };
}

/**
 * The container's network: for a bridge, corerun-net sets up the veth, address, routes, NAT and
 * ports (and writes the /etc files); for the other modes only the /etc files are written, here,
 * with the library corerun-net is built on.
 */
export async function setupNetwork(cfg: RunConfig, c: Container, pid: number, net: EarlyTool | undefined): Promise<void> {
  const n = cfg.network;
  if (n.mode !== "bridge") {
    const mode = n.mode === "container" ? { mode: "container" as const, container: n.container! } : { mode: n.mode };
    span("write /etc files", { dir: join(c.dir, "etc") }, () => writeEtcFiles(join(c.dir, "etc"), etcFilesFor({ root: cfg.root, id: c.id, hostname: c.hostname, name: cfg.name, ...mode })));
    return;
  }
  await net!.run([...netArgs(cfg, c, pid), "--die-with-parent"]);
}

export async function buildTree(cfg: RunConfig, c: Container, pid: number, mount: EarlyTool): Promise<void> {
  span("claim mount points", undefined, () => claimMountPoints(cfg, c));
  await mount.run([...mountArgs(cfg, pid, c.dir), "--die-with-parent"]);
}

/**
 * Starts corerun-exec as PID 1 of the container's new namespaces, with the native clone helper
 * that corerun-ns is built on: in-process, this saves a Node start (~70 ms) on every container
 * start, and the container is corerun's own child. `corerun --print-script` shows the same step
 * as a corerun-ns command. corerun-exec then waits for "go" on the sync FIFO.
 */
export function startFirstProcess(cfg: RunConfig, c: Container): number {
  const node = process.execPath;
  // Rootless, corerun-exec runs as the user who can read the checkout already.
  const exec = c.userns && !cfg.rootless ? execRuntime(cfg.root) : toolScript("corerun-exec");
  // corerun-exec joins through fds opened here, by root: in a user namespace it could not open
  // the host's cgroup files itself, and the kernel checks a write against the opener.
  c.cgroupFds = openCgroupProcs(c.cgroupDirs);
  // The cgroups take the first process as it is cloned, from here, unless a limit could stop its
  // Node's load (createCgroup left no limitsBeforeGo); then it joins itself right before the exec.
  const early = c.cgroupFds.length > 0 && c.limitsBeforeGo !== undefined;
  const inherited = early ? [] : c.cgroupFds;
  try {
    const argv = [...nodeArgv(exec), ...execArgs(cfg, { ...c, cgroupFds: inherited })];
    const flags = namespaceFlags(namespacesFor(cfg).split(",") as NamespaceName[]);
    const helpers = cfg.rootless && c.userns !== undefined && (c.userns.uidMap.length > 1 || c.userns.gidMap.length > 1);
    const userns = c.userns && { uidMap: idMapText(c.userns.uidMap), gidMap: idMapText(c.userns.gidMap), helpers };
    // -t: no caller's stdio at all until it takes its pty; without -i, stdin is /dev/null (Docker's rule).
    const stdio = cfg.tty ? { nullStdio: true } : cfg.interactive ? {} : { stdinFd: c.nullStdin = openSync("/dev/null", "r") };
    const clone = () => {
      const pid = withInheritedFds(inherited, () => startInNamespaces(sys, { flags, path: node, argv, env: envp(), userns, dieWithParent: true, ...stdio }));
      if (early) {
        // The join owns the fds from here: it closes them once it is over, or as it fails.
        const fds = c.cgroupFds!;
        c.cgroupFds = [];
        try {
          c.joining = startJoinCgroupFds(fds, pid);
        } catch (err) {
          signalChild(pid, "SIGKILL");
          throw err;
        }
      }
      return pid;
    };
    // The child inherits the network namespace of the thread that clones it.
    if (cfg.network.mode !== "container") return clone();
    // Joined through a pidfd checked against the recorded start time: not a process that got the
    // pid of a container that has exited since.
    const other = openRecorded(sys, { pid: cfg.network.containerPid!, startTime: cfg.network.containerStartTime! });
    if (other === undefined) throw new UsageError(`--network container:${cfg.network.container}: that container has exited`);
    try {
      return inNetworkNamespace(sys, { pidfd: other }, clone);
    } finally {
      closeSync(other);
    }
  } finally {
    for (const fd of c.cgroupFds) closeSync(fd);
    if (c.nullStdin !== undefined) closeSync(c.nullStdin);
  }
}

/** Node opens every fd close-on-exec; these few are let through one clone, and no other spawn. */
export function withInheritedFds<T>(fds: readonly number[], fn: () => T): T {
  for (const fd of fds) sys.setFdFlags(fd, 0);
  try {
    return fn();
  } finally {
    for (const fd of fds) sys.setFdFlags(fd, FD_CLOEXEC);
  }
}


/** A tool failed and has already said why on stderr; corerun exits with its status. */
export class ToolFailed extends Error {
  override name = "ToolFailed";
  /** `said`: the tool's own error line, when corerun captured it (the OCI commands log it). */
  constructor(readonly tool: string, readonly exitCode: number, said?: string) {
    super(said || `${tool} failed`);
  }
}

export function recordInit(c: Pick<Container, "path">, pid: number): State {
  const state = updateState(c.path, () => ({ init: { pid, startTime: procStartTime(pid) ?? 0 } }));
  faultPoint("corerun:init-recorded");
  return state;
}

/**
 * The tools corerun runs during a start: stopped when the start ends early, and waited for once
 * they have said done (their exit status still counts).
 */
export type Tools = RunningTool[];

export interface RunningTool {
  name: string;
  pid: number;
  /** Its exit, reaped (waitid). */
  end: Promise<ProcessEnd>;
  /** Set once it has exited. */
  ended?: ProcessEnd;
  /** What it said on stderr, when corerun captures it: all of it once the pipe has closed. */
  said(): Promise<string>;
}

/**
 * A tool started before its command line is known (CORERUN_ARGV_FD, libs/cli handoff.ts): its
 * Node start overlaps corerun's own steps until `run` hands it its words.
 */
export interface EarlyTool {
  /** Gives the tool its words (once); resolves when it has done its work: said done, or exited 0. */
  run(args: string[]): Promise<void>;
}

/** The fds a started tool gets after stdio: its words, then where it says done. */
const ARGV_FD = 3;
const DONE_FD = 4;

/**
 * Starts a tool now, to run it later: the trace's span for it (in the parallel lane of corerun's
 * track) goes from this start to its done. It gets a session of its own: a Ctrl-C on the
 * terminal reaches corerun, which aborts the start, instead of killing the tool halfway.
 */
export function startTool(tools: Tools, name: string, opts: { captureErrors?: boolean; onPause?: () => Promise<void> } = {}): EarlyTool {
  const spanArgs: Record<string, unknown> = {};
  let give!: (args: string[]) => void;
  const words = new Promise<string[]>((resolve) => (give = resolve));
  const done = span(name, spanArgs, () => runEarly(tools, name, words, opts));
  // Awaited through run; a start aborted before it never asks, and stopTools ends the tool.
  done.catch(() => {});
  return {
    run(args) {
      spanArgs.argv = args.join(" ");
      give(args);
      return done;
    },
  };
}

/**
 * Reads a pipe to its end in libuv's thread pool, passing on each chunk, and closes it. The
 * pipes corerun reads from its tools are few (done, and in `create` stderr and stdout), each a
 * thread until the tool closes its end; node:net would read them on the event loop, but loads in
 * ~5 ms on the start path.
 */
function readPipe(fd: number, onChunk: (chunk: Buffer) => void): Promise<void> {
  const buf = Buffer.alloc(4096);
  return new Promise((resolve) => {
    const next = () =>
      read(fd, buf, 0, buf.length, null, (err, n) => {
        if (err || n === 0) {
          closeSync(fd);
          resolve();
          return;
        }
        onChunk(Buffer.from(buf.subarray(0, n)));
        next();
      });
    next();
  });
}

/** Writes all of data on a pipe in the thread pool (a reader that is still starting does not block corerun) and closes it; a reader gone is no error. */
function writePipe(fd: number, data: Buffer): void {
  const from = (at: number) =>
    write(fd, data, at, data.length - at, null, (err, n) => {
      if (!err && at + n < data.length) return from(at + n);
      closeSync(fd);
    });
  from(0);
}

async function runEarly(tools: Tools, name: string, words: Promise<string[]>, opts: { captureErrors?: boolean; onPause?: () => Promise<void> }): Promise<void> {
  const [node, ...script] = nodeArgv(toolScript(name));
  const env = envp({ ...process.env, [PARENT_PID_ENV]: String(process.pid), [ARGV_FD_ENV]: String(ARGV_FD), [DONE_FD_ENV]: String(DONE_FD) });
  // [read end, write end] of each pipe; the tool's ends are closed here once it has them.
  const argvPipe = sys.pipe();
  const donePipe = sys.pipe();
  const errPipe = opts.captureErrors ? sys.pipe() : undefined;
  const outPipe = opts.onPause ? sys.pipe() : undefined;
  const inPipe = opts.onPause ? sys.pipe() : undefined;
  const stdout = outPipe ? outPipe[1] : name === "corerun-net" ? -1 : 1;
  const fds = [inPipe ? inPipe[0] : -1, stdout, errPipe ? errPipe[1] : 2, argvPipe[0], donePipe[1]];
  let pid: number;
  try {
    pid = sys.spawn(node!, [node!, ...script], env, fds, true);
  } catch (err) {
    // corerun's own ends; the tool's go below.
    for (const fd of [argvPipe[1], donePipe[0], errPipe?.[0], outPipe?.[0], inPipe?.[1]]) if (fd !== undefined) closeSync(fd);
    throw err;
  } finally {
    for (const fd of [argvPipe[0], donePipe[1], errPipe?.[1], outPipe?.[1], inPipe?.[0]]) if (fd !== undefined) closeSync(fd);
  }
  // The reads of its pipes and the wait for its exit begin once the caller's synchronous steps
  // are over (up to the clone of the first process): the first read starts libuv's thread pool,
  // which waits until its four threads run, and the first wait for a child sets up Node's SIGCHLD
  // handling, ~3 ms before the clone in traces. A tool that dies meanwhile is a zombie that the
  // wait finds at once; its pipes keep what it wrote.
  const later = <T>(begin: () => Promise<T>): Promise<T> => Promise.resolve().then(begin);
  let said = "";
  const saidAll = errPipe ? later(() => readPipe(errPipe[0], (chunk) => (said += chunk.toString("utf8")))) : Promise.resolve();
  const running: RunningTool = { name, pid, end: later(() => waitChild(sys, pid, [])), said: () => saidAll.then(() => said) };
  void running.end.then((end) => (running.ended = end));
  tools.push(running);
  faultPoint(`corerun:${name}-started`);
  // Done as soon as the word is read, not at the pipe's end (one more read in the thread pool).
  let text = "";
  const isDone = () => text.startsWith("done\n");
  const saidDone = new Promise<"done" | ProcessEnd>((resolve) => {
    void later(() => readPipe(donePipe[0], (chunk) => {
      text += chunk.toString("utf8");
      if (isDone()) resolve("done");
    })).then(() => resolve(isDone() ? "done" : running.end));
  });
  // A tool that pauses (corerun-mount --hook-pause) says "built"; it goes on when answered.
  let paused: Promise<void> | undefined;
  if (outPipe) {
    void later(() => readPipe(outPipe[0], (chunk) => {
      if (!paused && chunk.toString("utf8").includes("built")) {
        paused = opts.onPause!().then(() => writePipe(inPipe![1], Buffer.from("go\n")), (err: unknown) => {
          signalChild(pid, "SIGKILL");
          throw err;
        });
        // Awaited after the done below; until then a failure must not count as unhandled.
        paused.catch(() => {});
      }
    }));
  }
  const args = await Promise.race([words, running.end.then(async () => Promise.reject(await failure(running)))]).catch((err: unknown) => {
    closeSync(argvPipe[1]);
    if (inPipe && !paused) closeSync(inPipe[1]);
    throw err;
  });
  writePipe(argvPipe[1], encodeArgv(args));
  const end = await saidDone;
  if (inPipe && !paused) closeSync(inPipe[1]);
  if (paused) await paused;
  if (end !== "done" && end.exitCode !== 0) throw await failure(running);
}

/** A signal to a child that may have exited already (its pid is not reused before it is reaped). */
export function signalChild(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone already
  }
}

/** An ended tool's failure, with the last line it said when corerun captured its stderr. */
async function failure(t: RunningTool): Promise<ToolFailed> {
  const end = await t.end;
  return new ToolFailed(t.name, typeof end.exitCode === "number" ? end.exitCode : 125, (await t.said()).trim().split("\n").at(-1));
}

/**
 * The tools that said done have exited with status 0: waited for after go, before the start
 * counts as made. A tool that fails after saying done is reported as any other failure.
 */
export async function toolsExited(tools: Tools): Promise<void> {
  for (const t of tools) if ((await t.end).exitCode !== 0) throw await failure(t);
}

/** Kills the tools still running and waits for them, before their work is cleaned up. */
export async function stopTools(tools: Tools): Promise<void> {
  await Promise.all(tools.map((t) => {
    if (!t.ended) signalChild(t.pid, "SIGKILL");
    return t.end;
  }));
}

export function start(c: Container, tty?: number): void {
  // The end of a join begun at the clone (startFirstProcess), and the limits its Node has loaded
  // without, before go.
  if (c.joining) span("join cgroup", undefined, c.joining);
  c.limitsBeforeGo?.();
  setStatus(c.path, "running");
  faultPoint("corerun:running");
  sendGo(c.dir, undefined, tty);
  faultPoint("corerun:go");
}

