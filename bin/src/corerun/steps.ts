import { closeSync, openSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { hostname as osHostname } from "node:os";
import { join } from "node:path";
import { envp, inNamespaces, isErrno, linuxSyscall as sys, MS_NODEV, MS_NOEXEC, MS_NOSUID, namespaceFlags, startInNamespaces, type NamespaceName } from "@corerun/syscall";
import { faultPoint, nodeCommand, span, UsageError } from "@corerun/cli";
import { DEFAULT_SHM_SIZE, missingMountPoints, mountPointPaths, tmpfsPoints, tmpfsText, type VolumeSpec } from "@corerun/rootfs";
import { ETC_FILES, etcExtrasArgv, etcFilesFor, teardown as netTeardown, writeEtcFiles } from "@corerun/net";
import { cgroupManager, createForClone, oomReport, openCgroupProcs, startJoinCgroupFds, type CgroupManager } from "@corerun/cgroup";
import type { ConsolaInstance } from "consola";
import {
  createContainer, restartContainer, isAlive, procStartTime, readStates, removeContainer, setStatus, updateState,
  withLock, checkHostname, checkStateRoot, openRecorded, allocateAutoUserns, claimCreatedPaths, type CreatedPath, idMapText, type IdRange, type State,
} from "@corerun/state";
import { goPath, readyPath, sendGo } from "@corerun/sync";
import type { RunConfig } from "./args.ts";
import { securityExecArgs, securityMountArgs } from "./security.ts";
import { mountImage, overlayArgs, unmountImage } from "./image.ts";
import { runProcess } from "./exec.ts";
import { teardown, teardownParts } from "./teardown.ts";
import { execRuntime, handToContainerRoot, signalChild, startTool, toolScript, withInheritedFds, type EarlyTool, type Tools } from "./tools.ts";

export { teardown };

// What a teardown reaches beyond the container's own records: its bridge network and its image's
// layers (see teardownParts).
teardownParts.network = (root, id) => void netTeardown({ root, id });
teardownParts.image = unmountImage;

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

/**
 * A container's hostname without --hostname: its id, or with --network host or --uts host the
 * host's own (as Docker's), unless that is no name sethostname and corerun-exec take.
 */
export function defaultHostname(cfg: Pick<RunConfig, "network" | "utsHost">, id: string): string {
  if (cfg.network.mode !== "host" && !cfg.utsHost) return id;
  try {
    // node:os loads on first use (tools/lazy-modules.json): a start on another network never does.
    return checkHostname(osHostname()) ?? id;
  } catch {
    return id;
  }
}

/** The container's own /etc/hosts, /etc/resolv.conf and /etc/hostname, bind-mounted over the rootfs's. */
export function etcVolumes(dir: string, user: readonly VolumeSpec[] = []): (VolumeSpec & { kind: "file" })[] {
  // A file the user mounts there, or a whole /etc, wins, as in Docker.
  const taken = (target: string) => user.some((v) => v.target === target || v.target === "/etc");
  return Object.values(ETC_FILES)
    .map((f) => ({ source: join(dir, "etc", f), target: `/etc/${f}`, readonly: false, kind: "file" as const }))
    .filter((v) => !taken(v.target));
}

/** --add-host and the --dns options as the state records them (inspect shows them in Docker's names). */
function dockerExtras(e: RunConfig["network"]["extras"]): { extraHosts?: string[]; dns?: string[]; dnsSearch?: string[]; dnsOptions?: string[] } {
  return {
    ...(e.hosts?.length ? { extraHosts: e.hosts.map((h) => `${h.name}:${h.address}`) } : {}),
    ...(e.dns?.length ? { dns: e.dns } : {}), ...(e.dnsSearch?.length ? { dnsSearch: e.dnsSearch } : {}), ...(e.dnsOptions?.length ? { dnsOptions: e.dnsOptions } : {}),
  };
}

/**
 * Records the container, then the mount points it will add to the rootfs, before creating any.
 * A --name is claimed under the state root's lock, so two containers never get the same one.
 */
export function createState(cfg: RunConfig, extra: Partial<Pick<State, "owner" | "detached">> = {}): Container {
  checkStateRoot(cfg.root);
  const owner = extra.owner ?? { pid: process.pid, startTime: procStartTime(process.pid) ?? 0 };
  const { mode, net, subnet, ports, container, extras, ip, aliases } = cfg.network;
  const config = {
    rootfs: cfg.rootfs, command: cfg.command, hostname: cfg.hostname, env: cfg.env, cwd: cfg.workdir,
    volumes: cfg.volumes, network: { mode, net, subnet, ports, container, ...dockerExtras(extras), ...(ip ? { ip } : {}), ...(aliases?.length ? { aliases } : {}) }, name: cfg.name, limits: cfg.limits,
    cgroupParent: cfg.cgroupParent, process: runProcess(cfg),
    ...(cfg.devices.length ? { devices: cfg.devices.map(({ source, target, permissions }) => ({ source, target, permissions })) } : {}),
    ...(cfg.deviceCgroupRules.length ? { deviceCgroupRules: cfg.deviceCgroupRules } : {}), ...(cfg.restart ? { restart: cfg.restart } : {}), ...(cfg.pidHost ? { pidHost: true } : {}),
    ...(cfg.pidContainer ? { pidContainer: cfg.pidContainer.container } : {}), ...(cfg.ipc.mode === "private" ? {} : { ipc: ipcModeText(cfg.ipc) }), ...(cfg.utsHost ? { utsHost: true } : {}),
    ...(cfg.tmpfs.length ? { tmpfs: cfg.tmpfs.map(tmpfsText) } : {}), ...(cfg.shmSize === undefined ? {} : { shmSize: cfg.shmSize }),
    ...(cfg.sysctls.length ? { sysctls: Object.fromEntries(cfg.sysctls.map((x) => [x.key, x.value])) } : {}),
    ...(cfg.stopSignal === undefined ? {} : { stopSignal: cfg.stopSignal }), ...(cfg.stopTimeout === undefined ? {} : { stopTimeout: cfg.stopTimeout }),
    ...(Object.keys(cfg.labels).length ? { labels: cfg.labels } : {}), ...(cfg.domainname === undefined ? {} : { domainname: cfg.domainname }), ...(cfg.health ? { health: cfg.health } : {}), ...(cfg.log ? { log: cfg.log } : {}),
  };
  // The name and an automatic uid range are claimed under one lock, and recorded in the new
  // state before it is released.
  const { id, dir, path, userns, cg } = withLock(join(cfg.root, "names.lock"), () => {
    const holder = cfg.name === undefined ? undefined : findRunningOrStarting(cfg.root, cfg.name);
    if (holder) throw new UsageError(`--name ${cfg.name} is already used by container ${holder}; pick another name, or remove that container first (corerun rm -f ${holder})`);
    const maps = cfg.userns?.auto ? allocateAutoUserns(cfg.root) : cfg.userns;
    const userns = maps ? { uidMap: maps.uidMap, gidMap: maps.gidMap, auto: cfg.userns?.auto ?? false } : undefined;
    // The cgroup is recorded in the first write of the state, before createCgroup makes it.
    let cg: CgroupManager | undefined;
    const byId = cfg.rootless ? undefined : (cid: string) => ({ cgroup: cgroupRecord((cg = cgroupManager({ name: cid, parent: cfg.cgroupParent, limits: cfg.limits }))) });
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
  const targets = [...cfg.volumes, ...etcVolumes(dir, cfg.volumes), ...tmpfsPoints(cfg.tmpfs), { source: "", target: cfg.workdir, readonly: false, kind: "dir" as const }];
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
    if (cfg.ipc.mode === "shareable") mountShareableShm(dir, cfg.shmSize ?? DEFAULT_SHM_SIZE);
    if (userns) handToContainerRoot(cfg.root, dir, userns, [readyPath(dir), goPath(dir), ...etcVolumes(dir).map((v) => v.source)]);
    faultPoint("corerun:sync-files");
    // A rootless image container's tree is mounted later, inside its namespaces, where corerun-mount
    // makes the missing mount points in its upper directory, which goes with the container.
    const wanted = mountPointPaths(cfg.rootfs, targets);
    const missing = cfg.image && cfg.rootless ? [] : missingMountPoints(cfg.rootfs, targets, wanted);
    return { id, dir, path, hostname: cfg.hostname ?? defaultHostname(cfg, id), cgroupDirs: [], userns, mountPoints: { missing, wanted } };
  } catch (err) {
    // Nothing outside the directory exists yet (a mount point is only claimed here, and made by
    // corerun-mount) but an image's overlayfs: a rootfs refused here leaves nothing behind.
    if (again) teardown(cfg.root, id, path, undefined, true);
    else if (cfg.image || cfg.ipc.mode === "shareable") teardown(cfg.root, id, path);
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
  const cg = c.cgroup ?? cgroupManager({ name: c.id, parent: cfg.cgroupParent, limits: cfg.limits });
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
  const ownIpc = cfg.ipc.mode !== "host" && cfg.ipc.mode !== "container";
  return [cfg.pidHost || cfg.pidContainer ? undefined : "pid", "mount", cfg.utsHost ? undefined : "uts", ownIpc ? "ipc" : undefined, ownNet ? "net" : undefined].filter(Boolean).join(",");
}

/**
 * --ipc shareable: the container's /dev/shm is a tmpfs in the host's mount namespace, in its
 * directory (where Docker keeps a shareable one too), which the containers that join its IPC
 * namespace bind as well; teardown unmounts it. Mounted before the clone: a mount made after it
 * would reach the container's copy of the tree only through propagation.
 */
function mountShareableShm(dir: string, size: number): void {
  const shm = join(dir, "shm");
  mkdirSync(shm, { recursive: true });
  sys.mount("shm", shm, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, `mode=1777,size=${size}`);
}

/** --ipc as Docker's IpcMode reads. */
export function ipcModeText(ipc: RunConfig["ipc"]): string {
  return ipc.mode === "container" ? `container:${ipc.container}` : ipc.mode;
}

/**
 * The namespaces the first process is cloned into from another container's (--network, --ipc,
 * --pid container:NAME), each through a pidfd checked against that container's recorded first
 * process: not a process that got its pid since it exited.
 */
function joinedNamespaces(cfg: RunConfig): { type: string; option: string; other: { container: string; pid: number; startTime: number } }[] {
  const n = cfg.network;
  return [
    ...(n.mode === "container" ? [{ type: "network", option: "--network", other: { container: n.container!, pid: n.containerPid!, startTime: n.containerStartTime! } }] : []),
    ...(cfg.ipc.mode === "container" ? [{ type: "ipc", option: "--ipc", other: cfg.ipc }] : []),
    ...(cfg.pidContainer ? [{ type: "pid", option: "--pid", other: cfg.pidContainer }] : []),
  ];
}

/** corerun-ns's options: the namespaces, and another container's network to join. */
export function nsArgs(cfg: RunConfig): string[] {
  const option: Record<string, string> = { network: "--net-ns", ipc: "--ipc-ns", pid: "--pid-ns" };
  const file: Record<string, string> = { network: "net", ipc: "ipc", pid: "pid" };
  return ["--ns", namespacesFor(cfg), ...joinedNamespaces(cfg).flatMap((j) => [option[j.type]!, `/proc/${j.other.pid}/ns/${file[j.type]}`])];
}

/** corerun-exec's command line: the last step, then the user's command. */
export function execArgs(cfg: RunConfig, c: Pick<Container, "dir" | "hostname" | "cgroupDirs" | "cgroupFds">, reportFd?: number): string[] {
  const cgroups = c.cgroupFds ? c.cgroupFds.flatMap((fd) => ["--cgroup-fd", String(fd)]) : c.cgroupDirs.flatMap((d) => ["--cgroup", d]);
  return [
    "--sync-dir", c.dir, "--mount-proc", ...(cfg.utsHost ? [] : ["--hostname", c.hostname]), ...(cfg.domainname === undefined ? [] : ["--domainname", cfg.domainname]), ...cgroups, "--cgroupns", "--mount-cgroup", ...(reportFd === undefined ? [] : ["--report-fd", String(reportFd)]),
    ...(cfg.network.mode === "none" ? ["--lo-up"] : []),
    ...cfg.capAdd.flatMap((cap) => ["--cap-add", cap]), ...cfg.capDrop.flatMap((cap) => ["--cap-drop", cap]), ...securityExecArgs(cfg.security),
    ...cfg.env.flatMap((e) => ["-e", e]), "-w", cfg.workdir, ...(cfg.user === undefined ? [] : ["--user", cfg.user]), ...cfg.groupAdd.flatMap((g) => ["--group-add", g]),
    ...cfg.sysctls.flatMap((x) => ["--sysctl", `${x.key}=${x.value}`]), ...(cfg.oomScoreAdj === undefined ? [] : ["--oom-score-adj", String(cfg.oomScoreAdj)]), "--", ...cfg.command,
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
    // Made by root, the container has a device cgroup (runLimits), which decides what opens.
    ...(cfg.rootless ? [] : ["--dev"]), ...cfg.devices.flatMap((d) => ["--device", `${d.source}:${d.target}`]), ...devShmArgs(cfg.ipc, dir),
    ...cfg.tmpfs.flatMap((t) => ["--tmpfs", tmpfsText(t)]), ...(cfg.shmSize !== undefined && cfg.ipc.mode === "private" ? ["--shm-size", String(cfg.shmSize)] : []),
  ];
}

/** /dev/shm goes with the IPC namespace, as in Docker: none, the host's, a shareable one's (its own or the joined container's). */
function devShmArgs(ipc: RunConfig["ipc"], dir: string): string[] {
  if (ipc.mode === "none") return ["--dev-shm", "none"];
  if (ipc.mode === "host") return ["--dev-shm", "/dev/shm"];
  if (ipc.mode === "container") return ["--dev-shm", join(ipc.dir, "shm")];
  if (ipc.mode === "shareable") return ["--dev-shm", join(dir, "shm")];
  return [];
}

/** corerun-net setup's options for a bridge container. */
export function netArgs(cfg: RunConfig, c: Pick<Container, "id" | "dir" | "hostname" | "prefer">, pid: number | string): string[] {
  const n = cfg.network;
  const prefer = c.prefer ? ["--prefer-address", c.prefer.address, ...c.prefer.ports.flatMap((p) => ["--prefer-port", p])] : [];
  return [
    "setup", ...prefer, "--pid", String(pid), "--id", c.id, "--root", cfg.root, "--hostname", c.hostname, "--etc-dir", join(c.dir, "etc"),
    ...(n.net ? ["-N", n.net] : []), ...(n.subnet ? ["--subnet", n.subnet] : []), ...n.ports.flatMap((p) => ["-P", p]),
    ...(cfg.name ? ["--name", cfg.name] : []), ...(n.ip ? ["--ip", n.ip] : []), ...(n.aliases ?? []).flatMap((a) => ["--alias", a]), ...etcExtrasArgv(n.extras),
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
    span("write /etc files", { dir: join(c.dir, "etc") }, () => writeEtcFiles(join(c.dir, "etc"), etcFilesFor({ root: cfg.root, id: c.id, hostname: c.hostname, name: cfg.name, extras: n.extras, ...mode })));
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
export function startFirstProcess(cfg: RunConfig, c: Container, reportFd?: number): number {
  const node = process.execPath;
  // Rootless, corerun-exec runs as the user who can read the checkout already.
  const exec = c.userns && !cfg.rootless ? execRuntime(cfg.root) : toolScript("corerun-exec");
  // corerun-exec joins through fds opened here, by root: in a user namespace it could not open
  // the host's cgroup files itself, and the kernel checks a write against the opener.
  c.cgroupFds = openCgroupProcs(c.cgroupDirs);
  // The cgroups take the first process as it is cloned, from here, unless a limit could stop its
  // Node's load (createCgroup left no limitsBeforeGo); then it joins itself right before the exec.
  const early = c.cgroupFds.length > 0 && c.limitsBeforeGo !== undefined;
  const joinAtExec = early ? [] : c.cgroupFds;
  const inherited = [...joinAtExec, ...(reportFd === undefined ? [] : [reportFd])];
  try {
    const argv = [...nodeCommand(exec), ...execArgs(cfg, { ...c, cgroupFds: joinAtExec }, reportFd)];
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
    // The child is born in the namespaces of the thread that clones it.
    const joins = joinedNamespaces(cfg);
    if (!joins.length) return clone();
    const pidfds: number[] = [];
    try {
      const targets = joins.map((j) => {
        const fd = openRecorded(sys, j.other);
        if (fd === undefined) throw new UsageError(`${j.option} container:${j.other.container}: that container has exited`);
        pidfds.push(fd);
        return { type: j.type, pidfd: fd, label: `container ${j.other.container}` };
      });
      try {
        return inNamespaces(sys, targets, clone);
      } catch (err) {
        // A container whose first process ended after its pidfd was opened.
        if (isErrno(err, "ESRCH")) throw new UsageError(`${joins.map((j) => `${j.option} container:${j.other.container}`).join(", ")}: that container has exited`);
        throw err;
      }
    } finally {
      for (const fd of pidfds) closeSync(fd);
    }
  } finally {
    for (const fd of c.cgroupFds) closeSync(fd);
    if (c.nullStdin !== undefined) closeSync(c.nullStdin);
  }
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

