import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { UsageError, type ToolContext } from "@corerun/cli";
import { checkRootfs, DEFAULT_PATH, findCommand, parseDevice, parseMount, parseTmpfs, parseVolume, type DeviceSpec, type TmpfsSpec, type VolumeSpec } from "@corerun/rootfs";
import {
  capabilitySet, checkGroupName, checkHostname, findByRef, parseLabels, parseOomScoreAdj, readEnvFiles, readLabelFiles, checkWorkdir, ID_PATTERN, isAlive, mayBeRef, parseEnvVars, parseIdMap, readState, readStates, stateRoot, statePath, type IdRange, type RestartPolicy, type State,
} from "@corerun/state";
import { checkName, checkNetworkName, checkOwnPorts, ETC_ARGS, etcExtrasFor, hasEtcExtras, parseIp, parsePublish, parseSubnet, type EtcExtras } from "@corerun/net";
import { normalizeParent, parseBytes, parseDeviceCgroupRule, parseLimits, RESOURCE_ARGS, RESOURCE_OPTIONS, resourceInput, type Limits } from "@corerun/cgroup";
import { parseSysctl, type Sysctl } from "@corerun/oci";
import type { ArgsDef } from "citty";
import { parseSecurity, securityArgs, type Security } from "./security.ts";
import { rootlessMaps } from "./rootless.ts";
import { imageAndUser, imageRun, withEntrypoint, type ImageRun } from "./image.ts";
import { parseUlimits, type Ulimit } from "./ulimit.ts";
import { LOG_MAX_BYTES, parseGraceSeconds, parseRestart, RESTART_ENV } from "./restart.ts";
import { parseDetachKeys } from "./detachkeys.ts";
import { parseSignal } from "./oci.ts";
import { HEALTH_OPTIONS, healthConfig, type HealthConfig } from "./health.ts";

export const runArgs = {
  rootfs: { type: "string", valueHint: "DIR", description: "the container's root filesystem (default: the busybox rootfs that tools/rootfs/build.sh makes)" },
  hostname: { type: "string", valueHint: "NAME", description: "the container's hostname (default: its id; with --network host, the host's)" },
  domainname: { type: "string", valueHint: "NAME", description: "the container's NIS domain name (not with --uts host)" },
  volume: { type: "string", alias: "v", valueHint: "HOST:CTR[:ro|rw]", description: "bind-mount a host path (repeatable)" },
  mount: { type: "string", valueHint: "type=bind|tmpfs,...", description: "Docker's --mount (repeatable): type=bind,source=HOST,target=CTR[,readonly] or type=tmpfs,target=CTR[,tmpfs-size=64m][,tmpfs-mode=1770][,readonly]" },
  tmpfs: { type: "string", valueHint: "PATH[:OPTIONS]", description: "mount a tmpfs at PATH (repeatable): noexec, nosuid and nodev unless OPTIONS say exec, suid or dev; ro, size=64m, mode=1777, uid=, gid=" },
  "shm-size": { type: "string", valueHint: "SIZE", description: "size of /dev/shm (default 64m; bytes, or a Docker size)" },
  pid: { type: "string", valueHint: "host|container:NAME", description: "host: no PID namespace of its own, the command sees (and as root may signal) the host's processes; container:NAME: another running container's, as docker run --pid" },
  ipc: { type: "string", valueHint: "MODE", description: "private (default): an IPC namespace and /dev/shm of its own; shareable: the same, which others may join; none: no /dev/shm; host: the host's, with its /dev/shm; container:NAME: a shareable container's, with its /dev/shm" },
  uts: { type: "string", valueHint: "host", description: "host: the host's hostname and domain name, no UTS namespace of its own (not with --hostname)" },
  network: { type: "string", alias: "n", valueHint: "MODE", description: "bridge (default; multi is the same), none (loopback only), host, or container:NAME|ID" },
  net: { type: "string", alias: "N", valueHint: "NAME", description: "bridge network to join, created when missing (default corerun0)" },
  subnet: { type: "string", valueHint: "CIDR", description: "subnet for a new bridge network (default: the first free 10.77.N.0/24)" },
  port: { type: "string", alias: ["P", "publish"], valueHint: "[[IP:]HOST:]CTR[/tcp|udp]", description: "publish a container port on the host (repeatable); without HOST, on a free host port (see corerun ps)" },
  ...ETC_ARGS,
  "publish-all": { type: "boolean", description: "publish every port of the image's ExposedPorts on a free host port (docker run -P)" },
  ip: { type: "string", valueHint: "IP", description: "with a bridge: this address in the network (free, in its subnet), not the next free one" },
  "network-alias": { type: "string", valueHint: "NAME", description: "with a bridge: another name its network's peers resolve it by (repeatable)" },
  name: { type: "string", valueHint: "NAME", description: "the container's name: unique among running containers, resolvable by its network's peers" },
  cidfile: { type: "string", valueHint: "FILE", description: "write the container's id to FILE once it is created; FILE must not exist (removed again if the start fails)" },
  label: { type: "string", valueHint: "KEY=VALUE", description: "set a label on the container (repeatable; KEY alone is an empty value), shown by inspect and matched by ps --filter label=" },
  "label-file": { type: "string", valueHint: "FILE", description: "set the labels of FILE's KEY=VALUE lines (repeatable), before --label's" },
  env: { type: "string", alias: "e", valueHint: "KEY=VALUE", description: "set an environment variable (repeatable); KEY alone passes corerun's own value (none when corerun has none)" },
  "env-file": { type: "string", valueHint: "FILE", description: "set the environment variables of FILE's KEY=VALUE lines (repeatable; KEY alone passes corerun's own value, # starts a comment), before -e's" },
  workdir: { type: "string", alias: "w", valueHint: "DIR", description: "working directory inside the container (default /)" },
  root: { type: "string", valueHint: "DIR", description: "state directory (default /run/corerun; env CORERUN_ROOT)" },
  "cap-add": { type: "string", valueHint: "CAP", description: "give the container a capability beyond Docker's default set (repeatable; ALL for every one)" },
  "cap-drop": { type: "string", valueHint: "CAP", description: "take a capability of Docker's default set away (repeatable; ALL for every one)" },
  "print-script": { type: "boolean", description: "print the tool invocations as a shell script instead of running them" },
  trace: { type: "string", valueHint: "FILE", description: "write a trace of every step of every tool to FILE (Chrome trace-event JSON; env CORERUN_TRACE)" },
  memory: { type: "string", alias: "m", valueHint: "MB", description: "memory limit in MiB, or a Docker size (512m, 1g); at least 6 MiB; swap does not extend it" },
  cpu: { type: "string", alias: "c", valueHint: "PERCENT", description: "CPU limit in percent of one core (150 = one and a half cores)" },
  cpus: { type: "string", valueHint: "N", description: "CPU limit in cores, Docker's spelling (0.5 = --cpu 50)" },
  pids: { type: "string", alias: "p", valueHint: "N", description: "maximum number of processes" },
  ...RESOURCE_ARGS,
  device: { type: "string", valueHint: "HOST[:CTR][:PERMS]", description: "give the container a host device (or a directory's devices) at CTR under /dev, with PERMS of r, w and m in its device cgroup (default rwm), repeatable" },
  "cgroup-parent": { type: "string", valueHint: "PATH", description: "parent of the container's cgroup in every hierarchy (default corerun)" },
  ...securityArgs,
  user: { type: "string", alias: "u", valueHint: "USER[:GROUP]", description: "run the command as this user and group (names from the container's /etc/passwd and /etc/group; default: the image's User, else root)" },
  "group-add": { type: "string", valueHint: "GROUP", description: "a supplementary group for the command beyond the user's (repeatable): a group of the container's /etc/group, or a gid" },
  sysctl: { type: "string", valueHint: "KEY=VALUE", description: "set a sysctl of the container's own namespaces (repeatable): net.* (not with --network host or container:), kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.* (not with --ipc host or container:)" },
  "oom-score-adj": { type: "string", valueHint: "N", description: "the container's OOM score adjustment, -1000 (never killed) to 1000 (killed first)" },
  "stop-signal": { type: "string", valueHint: "SIGNAL", description: "the signal corerun stop sends first (default SIGTERM, or the image's StopSignal)" },
  "stop-timeout": { type: "string", valueHint: "SECONDS", description: "how long corerun stop waits before SIGKILL (default 10; -1 waits for good)" },
  "health-cmd": { type: "string", valueHint: "CMD", description: "with -d: a health check, run by /bin/sh -c in the container every --health-interval; status 0 is healthy (ps, inspect's State.Health)" },
  "health-interval": { type: "string", valueHint: "DURATION", description: "time between health checks (default 30s, or the image's)" },
  "health-timeout": { type: "string", valueHint: "DURATION", description: "a health check running longer is killed and fails (default 30s)" },
  "health-retries": { type: "string", valueHint: "N", description: "failures in a row that make the container unhealthy (default 3)" },
  "health-start-period": { type: "string", valueHint: "DURATION", description: "time after the start in which failures do not count until a check succeeds (default 0s)" },
  "health-start-interval": { type: "string", valueHint: "DURATION", description: "time between health checks in the start period (default 5s)" },
  "no-healthcheck": { type: "boolean", description: "run no health check, not even the image's HEALTHCHECK" },
  "log-driver": { type: "string", valueHint: "json-file|none", description: "with -d: json-file (default: the output kept for corerun logs) or none (no log)" },
  "log-opt": { type: "string", valueHint: "KEY=VALUE", description: "with -d and json-file (repeatable): max-size=SIZE (10m), the size at which the log is rotated; max-file=N, how many files are kept (default 1 with max-size; without either 10m and 2)" },
  "read-only": { type: "boolean", description: "a root filesystem that cannot be written (an image's overlayfs without an upper directory; a --rootfs remounted read-only); volumes, /dev, /proc stay as they are" },
  detach: { type: "boolean", alias: "d", description: "run in the background: print the container's id once its command runs; corerun-monitor keeps its output (corerun logs) and exit status; once exited it keeps its writable layer until corerun rm, and corerun start runs it again" },
  rm: { type: "boolean", description: "remove the container when it exits (a run in the foreground always does; with -d the monitor does)" },
  restart: { type: "string", valueHint: "POLICY", description: "with -d: no (default), on-failure[:N] (non-zero exits, at most N restarts), always, or unless-stopped; the monitor starts the container again after 100 ms, doubled each time" },
  init: { type: "boolean", description: "run a tiny init as PID 1 that forwards signals to the command and reaps zombies (Docker's docker-init, at /sbin/docker-init)" },
  ulimit: { type: "string", valueHint: "NAME=SOFT[:HARD]", description: "a resource limit in Docker's names (nofile, nproc, core, memlock, stack, ...; -1 or unlimited), repeatable" },
  tty: { type: "boolean", alias: "t", description: "give the command a pty from the container's devpts as its controlling terminal, relayed to corerun's terminal (with -d or -it, held by the container's monitor for corerun attach)" },
  interactive: { type: "boolean", alias: "i", description: "pass corerun's stdin to the command (into its pty with -t); without it the command reads /dev/null; with -d its input stays open for corerun attach" },
  "detach-keys": { type: "string", valueHint: "KEYS", description: "with -it: keys that detach, leaving the container running for corerun attach (default ctrl-p,ctrl-q; \"\" for none)" },
  entrypoint: { type: "string", valueHint: "CMD", description: "the program to run, before the command's words (replaces an image's Entrypoint and drops its Cmd)" },
  // Options of features that are not built yet: rejected with a clear error, never ignored.
  uidmap: { type: "string", valueHint: "CTR:HOST:SIZE", description: "run in a user namespace with this uid map (repeatable; the gid map defaults to it)" },
  gidmap: { type: "string", valueHint: "CTR:HOST:SIZE", description: "gid map of the user namespace (repeatable; defaults to the uid map)" },
  userns: { type: "string", valueHint: "auto|host", description: "auto: a user namespace with a free range of 65536 ids; host: none (default)" },
} as const satisfies ArgsDef;


/** Another running container whose namespace a container shares: its id and its first process. */
export interface JoinedContainer {
  container: string;
  pid: number;
  startTime: number;
}

/** --ipc: a namespace of its own (shareable: others may join it; none: no /dev/shm), the host's, or a shareable container's. */
export type IpcConfig = { mode: "private" | "shareable" | "none" | "host" } | ({ mode: "container"; dir: string } & JoinedContainer);

export interface NetworkConfig {
  mode: "none" | "host" | "bridge" | "container";
  net?: string | undefined;
  subnet?: string | undefined;
  ports: string[];
  /** container mode: the other container's id and its first process. */
  container?: string | undefined;
  containerPid?: number | undefined;
  containerStartTime?: number | undefined;
  /** --add-host, --dns, --dns-search, --dns-option: for its /etc files. */
  extras: EtcExtras;
  /** bridge: --ip and --network-alias. */
  ip?: string | undefined;
  aliases?: string[] | undefined;
}

export interface RunConfig {
  rootfs: string;
  command: string[];
  hostname: string | undefined;
  env: string[];
  workdir: string;
  volumes: VolumeSpec[];
  network: NetworkConfig;
  name: string | undefined;
  limits: Limits;
  /** --device: host device nodes, each at its place in the container's /dev. */
  devices: DeviceSpec[];
  /** --device-cgroup-rule, as given (checked). */
  deviceCgroupRules: string[];
  /** Run by a user other than root: no cgroup, no idmapped mounts, tools that join from inside. */
  rootless: boolean;
  /** auto: corerun picks the range when it creates the container. */
  userns: { auto: true } | { auto: false; uidMap: IdRange[]; gidMap: IdRange[] } | undefined;
  capAdd: string[];
  capDrop: string[];
  security: Security;
  cgroupParent: string;
  root: string;
  printScript: boolean;
  /** -d: started under corerun-monitor, which outlives this process. */
  detach: boolean;
  /** --rm: a detached container is removed at its exit instead of kept for logs and inspect. */
  rm: boolean;
  /** --restart: corerun-monitor starts a detached container again by this policy. */
  restart?: RestartPolicy | undefined;
  /** The image whose layers make the rootfs (an overlayfs made when the container is created). */
  image?: ImageRun["image"] | undefined;
  /** --user, or the image's User. */
  user?: string | undefined;
  /** --read-only: the container's / cannot be written. */
  readOnly: boolean;
  /** --ulimit: resource limits of every process of the container. */
  ulimits: Ulimit[];
  /** --pid host: the container shares the host's PID namespace (its /proc shows the host's processes). */
  pidHost: boolean;
  /** --pid container:NAME: it shares that container's PID namespace. */
  pidContainer?: JoinedContainer | undefined;
  ipc: IpcConfig;
  /** --uts host: the host's UTS namespace (hostname), none of its own. */
  utsHost: boolean;
  /** --tmpfs: tmpfs mounts of its own, with the volumes. */
  tmpfs: TmpfsSpec[];
  /** --shm-size: bytes of its own /dev/shm. */
  shmSize?: number | undefined;
  /** -t: a pty of the container's devpts, relayed to corerun's terminal. */
  tty: boolean;
  /** -i: corerun's stdin reaches the command; otherwise it reads /dev/null. */
  interactive: boolean;
  /** --group-add, as given (names resolved in the container's /etc/group at its start). */
  groupAdd: string[];
  /** --sysctl: each of a namespace the container has of its own. */
  sysctls: Sysctl[];
  oomScoreAdj?: number | undefined;
  /** --stop-signal (or the image's StopSignal) and --stop-timeout, for corerun stop. */
  stopSignal?: number | undefined;
  stopTimeout?: number | undefined;
  /** The image's Labels, --label-file's and --label's, the later winning. */
  labels: Record<string, string>;
  /** What --env-file and --label-file held: read once, by the command the user ran (FILES_ENV). */
  files: OptionFiles;
  domainname?: string | undefined;
  /** --log-driver and --log-opt; undefined: json-file of 10 MiB and one rotated file. */
  log?: LogConfig | undefined;
  /** --health-* or the image's HEALTHCHECK: run by the monitor of a detached (or -it) container. */
  health?: HealthConfig | undefined;
  /** --cidfile, absolute; not on a restart (the first start wrote it). */
  cidfile?: string | undefined;
}

/** The repository's own build of the busybox rootfs, the default for a demo. */
export function defaultRootfs(): string {
  return join(dirname(process.argv[1] ?? "."), "..", "build", "rootfs");
}

/** A running container of this state root, by --name, id or id prefix, or undefined. */
export function findRunning(root: string, ref: string): State | undefined {
  return findByRef(readStates(root, (raw) => mayBeRef(raw, ref)).filter((s) => s.status === "running" && isAlive(s.init)), ref);
}

function parseNetwork(ctx: Pick<ToolContext, "values" | "flags">, root: string, img: ImageRun | undefined): NetworkConfig {
  const value = ctx.values.network?.at(-1) ?? "bridge";
  if (ctx.flags["publish-all"] && !img) throw new UsageError("--publish-all publishes an image's ExposedPorts, and a --rootfs container has none; give each port with -P CONTAINER_PORT");
  if (ctx.flags["publish-all"] && value !== "bridge" && value !== "multi") throw new UsageError(`--publish-all needs --network bridge (it is ${value})`);
  const ports = [...(ctx.values.port ?? []), ...(ctx.flags["publish-all"] ? img!.exposed : [])];
  const net = ctx.values.net?.at(-1);
  const subnet = ctx.values.subnet?.at(-1);
  const extras = etcExtrasFor(ctx.values, value);
  const ip = parseIp(ctx.values.ip?.at(-1));
  const aliases = (ctx.values["network-alias"] ?? []).map((a) => checkName(a, "--network-alias")!);
  if (value === "bridge" || value === "multi") {
    const published = ports.map(parsePublish);
    checkOwnPorts(published);
    parseSubnet(subnet);
    return { mode: "bridge", net: net === undefined ? undefined : checkNetworkName(net), subnet, ports, extras, ...(ip ? { ip } : {}), ...(aliases.length ? { aliases } : {}) };
  }
  const only = ports.length ? "-P" : net !== undefined ? "--net" : subnet !== undefined ? "--subnet" : ip !== undefined ? "--ip" : aliases.length ? "--network-alias" : undefined;
  if (only) throw new UsageError(`${only} needs --network bridge (it is ${value})`);
  if (value === "none" || value === "host") return { mode: value, ports: [], extras };
  const other = joinedContainer(root, "--network", value);
  if (other && hasEtcExtras(extras)) throw new UsageError(`--add-host and the --dns options exclude --network ${value}: the container shares that container's network, its names and nameservers`);
  if (other) return { mode: "container", ports: [], container: other.container, containerPid: other.pid, containerStartTime: other.startTime, extras };
  throw new UsageError(`--network ${value}: unknown mode; use bridge, none, host or container:NAME`);
}

/** --userns auto|host and --uidmap/--gidmap; a map alone implies a user namespace. */
function parseUserns(ctx: Pick<ToolContext, "values">): RunConfig["userns"] {
  const mode = ctx.values.userns?.at(-1);
  const uidMap = parseIdMap(ctx.values.uidmap ?? [], "--uidmap");
  const gidMap = parseIdMap(ctx.values.gidmap ?? [], "--gidmap");
  if (mode !== undefined && mode !== "auto" && mode !== "host") throw new UsageError(`--userns ${mode}: unknown mode; use auto or host`);
  const maps = uidMap.length > 0 || gidMap.length > 0;
  if (mode !== undefined && maps) throw new UsageError(`--userns ${mode} and --uidmap/--gidmap exclude each other; give one`);
  if (mode === "auto") return { auto: true };
  if (!maps) return undefined;
  return { auto: false, uidMap: uidMap.length ? uidMap : gidMap, gidMap: gidMap.length ? gidMap : uidMap };
}

/**
 * A user other than root runs rootless: always in a user namespace that maps that user to root
 * (the one mapping that needs no privilege), on --network none, without cgroups. What needs
 * privileges the host does not give is refused, never dropped.
 */
function rootless(ctx: Pick<ToolContext, "values" | "flags">, uid: number, gid: number, files = { subuid: "/etc/subuid", subgid: "/etc/subgid" }): RunConfig["userns"] {
  const who = `corerun run as uid ${uid}`;
  for (const option of ["memory", "cpu", "cpus", "pids", ...RESOURCE_OPTIONS, "cgroup-parent"]) {
    if (ctx.values[option]?.length || ctx.flags[option]) throw new UsageError(`--${option}: cgroup limits of rootless containers (${who}) need a delegated cgroup, which corerun does not use yet; run as root for limits`);
  }
  const network = ctx.values.network?.at(-1);
  if ((network !== undefined && network !== "none") || ctx.values.port?.length || ctx.values.net?.length || ctx.values.subnet?.length) {
    throw new UsageError(`rootless containers (${who}) get --network none only; bridge networking and published ports need root`);
  }
  const mode = ctx.values.userns?.at(-1);
  if (mode === "host") throw new UsageError(`--userns host: a rootless container (${who}) always has a user namespace`);
  if (mode === "auto") throw new UsageError(`--userns auto: ranges from /etc/subuid (newuidmap) are not used yet; rootless containers map uid ${uid} to root`);
  const { maps: full, helpers, subuid, subgid } = rootlessMaps(uid, gid, files);
  const given = parseUserns(ctx);
  const maps = given && !given.auto ? given : full;
  for (const [option, map, self, sub] of [["--uidmap", maps.uidMap, uid, subuid], ["--gidmap", maps.gidMap, gid, subgid]] as const) {
    for (const r of map) {
      const allowed = (r.host === self && r.size === 1) || (helpers && sub.some((x) => r.host >= x.host && r.host + r.size <= x.host + x.size));
      if (!allowed) {
        const ranges = [`${self} (yours)`, ...(helpers ? sub.map((x) => `${x.host}-${x.host + x.size - 1}`) : [])].join(", ");
        throw new UsageError(`${option} ${r.container}:${r.host}:${r.size}: ${who} may not use host ids ${r.host}-${r.host + r.size - 1}; it may use ${ranges}${helpers ? "" : " (ranges need /etc/subuid, /etc/subgid and the uidmap package)"}`);
      }
    }
  }
  return { auto: false, uidMap: maps.uidMap, gidMap: maps.gidMap };
}

/**
 * The cgroup limits, with Docker's device cgroup for a container made by root: every device
 * denied but Docker's defaults, --device's nodes (with their permissions) and the
 * --device-cgroup-rule rules. --privileged allows every device, as in Docker (its rules are
 * checked and add nothing), and a rootless container has no cgroup: its devices are the host's
 * nodes as its user may open them.
 */
function runLimits(ctx: Pick<ToolContext, "values" | "flags">, devices: readonly DeviceSpec[], open: boolean): Limits {
  const input = resourceInput(ctx.values, ctx.flags);
  const given = input.deviceCgroupRules ?? [];
  for (const rule of given) parseDeviceCgroupRule(rule);
  if (open) return parseLimits({ ...input, deviceCgroupRules: undefined });
  return parseLimits({ ...input, dockerDevices: true, deviceCgroupRules: [...devices.map((d) => `${d.type} ${d.major}:${d.minor} ${d.permissions}`), ...given] });
}

/** The binary `--init` mounts, next to corerun's bundles (tools/build.mjs makes it). */
export function initBinary(): string {
  return join(dirname(process.argv[1] ?? "."), "corerun-init");
}

/** Where Docker mounts its init: the command becomes its argument. */
export const INIT_PATH = "/sbin/docker-init";

function withInit(command: string[], volumes: VolumeSpec[]): { command: string[]; volumes: VolumeSpec[] } {
  const source = initBinary();
  if (!existsSync(source)) throw new UsageError(`--init: ${source} is not built; run npm run build (it needs gcc and libc6-dev for a static binary)`);
  if (volumes.some((v) => v.target === INIT_PATH)) throw new UsageError(`--init mounts ${INIT_PATH}; a volume there excludes it`);
  return { command: [INIT_PATH, "--", ...command], volumes: [...volumes, { source, target: INIT_PATH, readonly: true }] };
}

/** container:NAME|ID of a running container, for an option that shares one of its namespaces. */
function joinedContainer(root: string, option: string, value: string): (JoinedContainer & { state: State }) | undefined {
  if (!value.startsWith("container:")) return undefined;
  const ref = value.slice("container:".length);
  const other = ref ? findRunning(root, ref) : undefined;
  if (!other) throw new UsageError(`${option} ${value}: no running container has the name or id "${ref}"; see corerun ps`);
  return { container: other.id, pid: other.init!.pid, startTime: other.init!.startTime, state: other };
}

/**
 * --pid host or container:NAME. A /proc of a PID namespace can be mounted only from a user
 * namespace that owns it (the kernel wants CAP_SYS_ADMIN over its owner), so a container with a
 * user namespace of its own (--userns, --uidmap, rootless) is refused, as Docker refuses
 * --pid host with userns-remap.
 */
function parsePidMode(root: string, mode: string | undefined, userns: boolean): { pidHost: boolean; pidContainer?: JoinedContainer } {
  if (mode === undefined) return { pidHost: false };
  const joined = joinedContainer(root, "--pid", mode);
  if (mode !== "host" && !joined) throw new UsageError(`--pid ${mode}: unknown mode; give host or container:NAME`);
  if (userns) throw new UsageError(`--pid ${mode}: a container with a user namespace cannot mount that PID namespace's /proc; drop --userns/--uidmap (rootless containers always have one)`);
  if (!joined) return { pidHost: true };
  const { state: _state, ...pidContainer } = joined;
  return { pidHost: false, pidContainer };
}

/**
 * --ipc, Docker's modes. Joining another container's IPC namespace takes one started with
 * --ipc shareable, as in Docker (a private one's semaphores and shared memory stay its own); a
 * rootless container cannot join one (setns needs CAP_SYS_ADMIN over its owner).
 */
function parseIpcMode(root: string, mode: string | undefined, rootless: boolean): IpcConfig {
  if (mode === "shareable" && rootless) throw new UsageError("--ipc shareable: its /dev/shm is mounted in the host's mount namespace, which a rootless container cannot; run as root");
  if (mode === "host" && rootless) throw new UsageError("--ipc host: corerun-mount, inside a rootless container's user namespace, cannot join the host's IPC namespace (sysfs and mqueue are mounted from it); run as root");
  if (mode === undefined || mode === "private" || mode === "shareable" || mode === "none" || mode === "host") return { mode: mode ?? "private" };
  const joined = joinedContainer(root, "--ipc", mode);
  if (!joined) throw new UsageError(`--ipc ${mode}: unknown mode; use private, shareable, none, host or container:NAME`);
  if (rootless) throw new UsageError(`--ipc ${mode}: a rootless container cannot join another container's IPC namespace; run as root`);
  const { state, ...other } = joined;
  if (state.config.ipc !== "shareable") throw new UsageError(`--ipc ${mode}: container ${other.container}'s IPC namespace is not shareable; start it with --ipc shareable`);
  // Its /dev/shm, in its directory (see mountShareableShm).
  return { mode: "container", dir: join(root, other.container), ...other };
}

/** --uts host; a hostname or domain name of its own needs a UTS namespace of its own. */
function parseUtsMode(mode: string | undefined, names: { hostname: string | undefined; domainname: string | undefined }): boolean {
  if (mode === undefined) return false;
  if (mode !== "host") throw new UsageError(`--uts ${mode}: unknown mode; give host`);
  for (const [key, name] of Object.entries(names)) {
    if (name !== undefined) throw new UsageError(`--${key} and --uts host exclude each other: with the host's UTS namespace the container has the host's ${key}; drop one`);
  }
  return true;
}

/**
 * --cidfile, as Docker's: a file that does not exist yet (one left by another container would
 * be taken for this one's), written once the container is created. A restart (or corerun start)
 * of a detached container has it already.
 */
function cidfileOf(file: string | undefined, restart: boolean): string | undefined {
  if (file === undefined || restart) return undefined;
  const path = resolve(file);
  if (existsSync(path)) throw new UsageError(`--cidfile ${file}: the file exists; remove it if no container it names is running, or give another path`);
  if (!existsSync(dirname(path))) throw new UsageError(`--cidfile ${file}: its directory ${dirname(path)} does not exist`);
  return path;
}

/**
 * --sysctl, as Docker takes it: a sysctl of a namespace the container has of its own (with a
 * shared one it would change the host's, or the other container's, setting).
 */
function parseRunSysctls(values: readonly string[], shared: Record<Sysctl["ns"], string | undefined>): Sysctl[] {
  return values.map((text) => {
    const sysctl = parseSysctl(text);
    const with_ = shared[sysctl.ns];
    if (with_ !== undefined) throw new UsageError(`--sysctl ${text}: the container shares ${with_}, whose setting this would change; drop one of them`);
    return sysctl;
  });
}

/** --stop-signal, or an image's StopSignal: a name (TERM, SIGTERM) or a number. */
function stopSignalOf(given: string | undefined, image: string | undefined): number | undefined {
  const text = given ?? image;
  if (text === undefined) return undefined;
  try {
    return parseSignal(text);
  } catch (err) {
    const fix = given !== undefined ? "give a name such as SIGQUIT or SIGRTMIN+3, or a number from 1 to 64" : "give --stop-signal to run it with another";
    throw new UsageError(`${given !== undefined ? "--stop-signal" : "the image's StopSignal"} ${text}: not a signal; ${fix}`, { cause: err });
  }
}


export type LogConfig = NonNullable<State["config"]["log"]>;

/**
 * --log-driver and --log-opt, as Docker's json-file driver takes them: max-size (a size, plain
 * bytes or 10m) and max-file (how many files, with max-size; 1 unless given). A foreground run's
 * output goes to its terminal: it keeps no log, and the options are refused there.
 */
function parseLog(values: Record<string, string[] | undefined>, monitored: boolean): LogConfig | undefined {
  const driver = values["log-driver"]?.at(-1);
  const opts = values["log-opt"] ?? [];
  if (driver === undefined && !opts.length) return undefined;
  const option = driver !== undefined ? `--log-driver ${driver}` : `--log-opt ${opts[0]}`;
  if (!monitored) throw new UsageError(`${option}: a foreground run's output goes to this terminal; only a detached container (-d, or run -it) keeps a log`);
  if (driver !== undefined && driver !== "json-file" && driver !== "none") throw new UsageError(`--log-driver ${driver}: corerun keeps json-file logs, or none; ${driver} is not built`);
  if (driver === "none") {
    if (opts.length) throw new UsageError(`--log-opt ${opts[0]}: --log-driver none keeps no log; drop one of them`);
    return { driver: "none", maxSize: 0, maxFile: 0 };
  }
  const given = new Map<string, string>();
  for (const o of opts) {
    const eq = o.indexOf("=");
    const key = o.slice(0, eq);
    if (eq <= 0 || (key !== "max-size" && key !== "max-file")) throw new UsageError(`--log-opt ${o}: json-file takes max-size=SIZE and max-file=N`);
    given.set(key, o.slice(eq + 1));
  }
  const size = given.get("max-size");
  const files = given.get("max-file");
  if (files !== undefined && size === undefined) throw new UsageError(`--log-opt max-file=${files}: it needs max-size, the size at which the log is rotated`);
  if (files !== undefined && (!/^\d+$/.test(files) || Number(files) < 1 || Number(files) > 100)) throw new UsageError(`--log-opt max-file=${files}: give a number of files from 1 to 100`);
  const maxSize = size === undefined ? LOG_MAX_BYTES : parseBytes(size, "--log-opt max-size");
  if (maxSize < 4096) throw new UsageError(`--log-opt max-size=${size}: give at least 4k`);
  return { driver: "json-file", maxSize, maxFile: files === undefined ? (size === undefined ? 2 : 1) : Number(files) };
}

/** --env-file's variables and --label-file's labels. */
export interface OptionFiles {
  env: string[];
  labels: Record<string, string>;
}

/**
 * The contents of --env-file and --label-file, read once, as Docker reads them at create: a
 * detached container's start, under its monitor, takes them from FILES_ENV, which the command
 * the user ran sets (a file such as <(...) is gone by then), and a restart takes its recorded
 * config, whatever the files hold now or whether they are there.
 */
function optionFiles(ctx: Pick<ToolContext, "values">, env: NodeJS.ProcessEnv, userEnv: NodeJS.ProcessEnv, start: { underMonitor: boolean; monitored: boolean; restart: boolean }): OptionFiles {
  const handed = start.underMonitor ? env[FILES_ENV] : undefined;
  if (handed !== undefined) {
    const files = (() => {
      try {
        return JSON.parse(handed) as unknown;
      } catch {
        return undefined;
      }
    })() as Partial<OptionFiles> | undefined;
    const strings = (a: unknown) => Array.isArray(a) && a.every((x) => typeof x === "string");
    if (!files || !strings(files.env) || typeof files.labels !== "object" || files.labels === null || !strings(Object.values(files.labels))) {
      throw new UsageError(`${FILES_ENV}: not the contents of --env-file and --label-file as corerun hands them to a detached start; unset it`);
    }
    return files as OptionFiles;
  }
  if (start.restart) return { env: [], labels: {} };
  const files = { env: readEnvFiles(ctx.values["env-file"] ?? [], userEnv), labels: readLabelFiles(ctx.values["label-file"] ?? []) };
  // Handed over in one environment string, which the kernel takes up to 128 KiB (MAX_ARG_STRLEN).
  if (start.monitored && JSON.stringify(files).length > FILES_MAX) {
    throw new UsageError(`--env-file, --label-file: ${Math.ceil(JSON.stringify(files).length / 1024)} KiB of variables and labels in all; a detached start takes up to ${FILES_MAX / 1024} KiB of them`);
  }
  return files;
}

/** How the command the user ran hands --env-file's and --label-file's contents to a detached start. */
export const FILES_ENV = "CORERUN_OPTION_FILES";
const FILES_MAX = 120 * 1024;

/**
 * What one corerun start hands the next through the environment (restart, files, fds, the
 * terminal's size): no -e KEY of the container takes them from there.
 */
const HANDOFF_ENV = [FILES_ENV, RESTART_ENV, "CORERUN_STDOUT_FD", "CORERUN_STDERR_FD", "CORERUN_REPORT_FD", "CORERUN_CONSOLE_SIZE"];

/** The environment as the user's command had it, without corerun's handoffs. */
function withoutHandoffs(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([k]) => !HANDOFF_ENV.includes(k)));
}

/** The container a start runs again (RESTART_ENV: a restart, or corerun start), as its state is now. */
export function startedAgain(root: string, env: NodeJS.ProcessEnv = process.env): State | undefined {
  const id = env[RESTART_ENV];
  if (id === undefined || !ID_PATTERN.test(id)) return undefined;
  try {
    return readState(statePath(root, id));
  } catch {
    // No such container: the start says so when it takes the state.
    return undefined;
  }
}

/** The image of the container a start runs again, as its state records it. */
function pinnedImage(root: string, env: NodeJS.ProcessEnv): { id: string; ref: string } | undefined {
  const image = startedAgain(root, env)?.image;
  return image && { id: image.id, ref: image.ref };
}

/** A command whose path, or one of whose PATH candidates, lies on a volume (-v ...:TARGET). */
export function mayBeOnVolume(command: string, pathEnv: string, volumes: readonly { target: string }[]): boolean {
  const under = (p: string) => volumes.some((v) => p === v.target || p.startsWith(`${v.target.replace(/\/+$/, "")}/`));
  return command.includes("/") ? under(command.startsWith("/") ? command : `/${command}`) : pathEnv.split(":").some((d) => d !== "" && under(d));
}

/** Every check that can be made before anything is created. */
export function parseRunConfig(ctx: Pick<ToolContext, "values" | "flags" | "tail">, env = process.env, uid = process.geteuid?.() ?? 0, gid = process.getegid?.() ?? 0): RunConfig {
  const isRootless = uid !== 0;
  const userns = isRootless ? rootless(ctx, uid, gid) : parseUserns(ctx);
  const root = stateRoot(ctx.values.root?.at(-1), env, uid);
  const img = imageRun(ctx, root, { rootless: isRootless, userns: userns && !userns.auto ? userns : undefined, pin: pinnedImage(root, env) });
  const given = ctx.values.rootfs?.at(-1);
  if (!img && given === undefined && !existsSync(defaultRootfs())) {
    throw new UsageError(`no --rootfs given and the default rootfs ${defaultRootfs()} is not built; run tools/rootfs/build.sh`);
  }
  if (ctx.flags.detach && ctx.flags["print-script"]) throw new UsageError("--print-script prints a start in the foreground; drop -d");
  if (ctx.values["detach-keys"] !== undefined) {
    if (!ctx.flags.tty || !ctx.flags.interactive || ctx.flags.detach) throw new UsageError("--detach-keys: only run -it (in the foreground) reads typed keys; add -i and -t, or with -d give it to corerun attach");
    parseDetachKeys(ctx.values["detach-keys"].at(-1)!);
  }
  const restartGiven = ctx.values.restart?.at(-1);
  const restart = restartGiven === undefined ? undefined : parseRestart(restartGiven);
  if (restart && restart.name !== "no") {
    if (ctx.flags.rm) throw new UsageError(`Conflicting options: --restart ${restartGiven} and --rm; a container that is started again cannot be removed at its exit, drop one`);
    // Docker's daemon restarts a foreground container after its client has gone; corerun's
    // restarts are kept by a detached container's monitor only.
    if (!ctx.flags.detach) throw new UsageError(`--restart ${restartGiven} needs -d: only a detached container's monitor starts it again; add -d, or drop --restart`);
  }
  const ulimits = parseUlimits(ctx.values.ulimit ?? []);
  if (ulimits.length && ctx.flags["print-script"]) throw new UsageError("--print-script does not print --ulimit yet (prlimit on the waiting process); leave it out of the script");
  if (ctx.flags.tty && ctx.flags["print-script"]) throw new UsageError("--print-script does not print -t (corerun relays the pty itself); leave -t out of the script");
  // An image container's rootfs is its overlayfs, made with its state (createState).
  const rootfs = img ? "" : checkRootfs(given ?? defaultRootfs());
  const command = img ? img.command : withEntrypoint(ctx, ctx.tail);
  if (command.length === 0) throw new UsageError("no command given; usage: corerun [options] CMD [ARGS...] or corerun [options] IMAGE [CMD...]");
  const hostname = checkHostname(ctx.values.hostname?.at(-1));
  // run -d and run -it run under a monitor, whose start gets what the command the user ran handed it.
  const monitored = (ctx.flags.detach ?? false) || ((ctx.flags.tty ?? false) && (ctx.flags.interactive ?? false));
  const isRestart = env[RESTART_ENV] !== undefined;
  const userEnv = withoutHandoffs(env);
  const files = optionFiles(ctx, env, userEnv, { underMonitor: env.CORERUN_REPORT_FD !== undefined, monitored, restart: isRestart });
  const vars = [...parseEnvVars(img?.env ?? [], userEnv), ...files.env, ...parseEnvVars(ctx.values.env ?? [], userEnv)];
  const workdir = checkWorkdir(ctx.values.workdir?.at(-1) ?? img?.workdir);
  const mounts = (ctx.values.mount ?? []).map((m) => parseMount(m));
  const volumes = [...(ctx.values.volume ?? []).map((v) => parseVolume(v)), ...mounts.flatMap((m) => (m.type === "bind" ? [m.bind] : []))];
  const idmapped = volumes.find((v) => v.idmap);
  if (idmapped && !userns) throw new UsageError(`-v ${idmapped.source}:${idmapped.target}: idmap maps through a user namespace; add --userns auto or --uidmap, or drop idmap`);
  capabilitySet(ctx.values["cap-add"] ?? [], ctx.values["cap-drop"] ?? []);
  const path = vars.findLast((e) => e.startsWith("PATH="))?.slice(5) ?? DEFAULT_PATH;
  // An image's command is looked up by corerun-exec in the merged tree (127 when missing), as is
  // one that may live on a volume, which the rootfs does not show.
  if (!img && !mayBeOnVolume(command[0]!, path, volumes)) findCommand(rootfs, command[0]!, path);
  // --init: corerun-init as PID 1, bind-mounted read-only where Docker puts docker-init.
  const init = ctx.flags.init ? withInit(command, volumes) : undefined;
  const devices = (ctx.values.device ?? []).flatMap((d) => parseDevice(d));
  const tmpfs = [...(ctx.values.tmpfs ?? []).map((t) => parseTmpfs(t)), ...mounts.flatMap((m) => (m.type === "tmpfs" ? [m.tmpfs] : []))];
  const taken = [...volumes, ...tmpfs].map((m) => m.target).find((t, i, all) => all.indexOf(t) !== i);
  if (taken !== undefined) throw new UsageError(`${taken} is the target of two mounts (-v, --mount, --tmpfs); give each path once`);
  const pid = parsePidMode(root, ctx.values.pid?.at(-1), userns !== undefined);
  const ipc = parseIpcMode(root, ctx.values.ipc?.at(-1), isRootless);
  const shmGiven = ctx.values["shm-size"]?.at(-1);
  const shmSize = shmGiven === undefined ? undefined : parseBytes(shmGiven, "--shm-size");
  if (shmSize !== undefined && ipc.mode !== "private" && ipc.mode !== "shareable") throw new UsageError(`--shm-size sizes a /dev/shm of the container's own, and with --ipc ${ctx.values.ipc!.at(-1)} it has none; drop one`);
  if (ctx.flags["print-script"] && ipc.mode === "shareable") {
    throw new UsageError("--print-script does not print --ipc shareable yet (its /dev/shm is mounted by corerun in the host's mount namespace); leave it out of the script");
  }
  const network = isRootless ? { mode: "none" as const, ports: [], extras: etcExtrasFor(ctx.values, "none") } : parseNetwork(ctx, root, img);
  const domainname = checkHostname(ctx.values.domainname?.at(-1), "--domainname");
  const utsHost = parseUtsMode(ctx.values.uts?.at(-1), { hostname, domainname });
  if (ctx.flags["print-script"] && ctx.values.cidfile?.length) throw new UsageError("--print-script does not print --cidfile (corerun writes it once the state exists); leave it out of the script");
  const cidfile = cidfileOf(ctx.values.cidfile?.at(-1), isRestart);
  const sharedNs = (option: string, value: string | undefined) => value === "host" ? `the host's namespace (${option} host)` : value?.startsWith("container:") ? `${value.slice(10)}'s namespace (${option} ${value})` : undefined;
  const sysctls = parseRunSysctls(ctx.values.sysctl ?? [], {
    network: sharedNs("--network", network.mode === "host" ? "host" : network.mode === "container" ? ctx.values.network!.at(-1) : undefined),
    ipc: sharedNs("--ipc", ipc.mode === "host" ? "host" : ipc.mode === "container" ? ctx.values.ipc!.at(-1) : undefined),
    uts: utsHost ? "the host's namespace (--uts host)" : undefined,
  });
  const groupAdd = (ctx.values["group-add"] ?? []).map((g) => checkGroupName(g));
  const oomScoreAdj = parseOomScoreAdj(ctx.values["oom-score-adj"]?.at(-1));
  const stopSignal = stopSignalOf(ctx.values["stop-signal"]?.at(-1), img?.stopSignal);
  const stopTimeoutText = ctx.values["stop-timeout"]?.at(-1);
  const stopTimeout = stopTimeoutText === undefined ? undefined : parseGraceSeconds(stopTimeoutText, "--stop-timeout");
  const labels = { ...img?.labels, ...parseLabels(ctx.values.label ?? [], files.labels) };
  const health = healthConfig(ctx.values, ctx.flags["no-healthcheck"] ?? false, img?.healthcheck);
  const log = parseLog(ctx.values, monitored);
  const healthGiven = HEALTH_OPTIONS.find((o) => ctx.values[o]?.length);
  if (healthGiven && !monitored) throw new UsageError(`--${healthGiven}: health checks are run by a detached container's monitor; add -d (or run -it)`);
  if (healthGiven && ctx.flags["print-script"]) throw new UsageError(`--print-script does not print --${healthGiven} (a detached container's monitor runs the health check); leave it out of the script`);
  // Last: a profile is compiled into the state root's cache once everything else is known good.
  const security = parseSecurity(ctx, root);
  return {
    rootfs,
    command: init?.command ?? command,
    hostname,
    env: vars,
    workdir,
    volumes: init?.volumes ?? volumes,
    network,
    rootless: isRootless,
    name: checkName(ctx.values.name?.at(-1)),
    limits: runLimits(ctx, devices, isRootless || security.privileged),
    devices,
    deviceCgroupRules: ctx.values["device-cgroup-rule"] ?? [],
    userns,
    capAdd: security.privileged ? ["ALL"] : (ctx.values["cap-add"] ?? []),
    capDrop: security.privileged ? [] : (ctx.values["cap-drop"] ?? []),
    security,
    cgroupParent: normalizeParent(ctx.values["cgroup-parent"]?.at(-1) ?? "corerun"),
    root,
    printScript: ctx.flags["print-script"] ?? false,
    detach: ctx.flags.detach ?? false,
    rm: ctx.flags.rm ?? false,
    ...(restart && restart.name !== "no" ? { restart } : {}),
    ulimits,
    readOnly: ctx.flags["read-only"] ?? false,
    ...pid,
    ipc,
    tmpfs,
    ...(shmSize === undefined ? {} : { shmSize }),
    utsHost,
    groupAdd,
    sysctls,
    ...(oomScoreAdj === undefined ? {} : { oomScoreAdj }),
    ...(stopSignal === undefined ? {} : { stopSignal }),
    ...(stopTimeout === undefined ? {} : { stopTimeout }),
    labels,
    files,
    ...(domainname === undefined ? {} : { domainname }),
    ...(health && monitored ? { health } : {}),
    ...(log ? { log } : {}),
    ...(cidfile === undefined ? {} : { cidfile }),
    tty: ctx.flags.tty ?? false,
    interactive: ctx.flags.interactive ?? false,
    ...imageAndUser(ctx, img),
  };
}
