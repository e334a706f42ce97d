import * as v from "valibot";
import { lazy } from "@corerun/cli";

export const STATE_VERSION = 1;

/**
 * The runtime-spec's lifecycle, with runc's paused: creating → created (everything set up, the
 * first process waiting for start) → running ⇄ paused → stopped. `corerun run` goes from
 * creating straight to running; a failed start goes to stopped from anywhere.
 */
export const Status = lazy(() => v.picklist(["creating", "created", "running", "paused", "stopped"]));
export type Status = v.InferOutput<typeof Status>;

const TRANSITIONS: Record<Status, readonly Status[]> = {
  creating: ["created", "running", "stopped"],
  created: ["running", "stopped"],
  running: ["paused", "stopped"],
  paused: ["running", "stopped"],
  stopped: [],
};

export function canTransition(from: Status, to: Status): boolean {
  return TRANSITIONS[from].includes(to);
}

export const ID_PATTERN = /^[0-9a-f]{12}$/;

/** runc's container ids, which engines choose: an OCI container's id is its corerun name. */
export const OCI_ID_PATTERN = /^[A-Za-z0-9_+-][A-Za-z0-9_+.-]{0,1023}$/;

const HookRef = lazy(() => v.object({ path: v.string(), args: v.optional(v.array(v.string())), env: v.optional(v.array(v.string())), timeout: v.optional(v.number()) }));

/** What an OCI container keeps from its bundle: `state` reports it, `delete` runs poststop. */
export const OciState = lazy(() => v.object({
  bundle: v.string(),
  ociVersion: v.string(),
  annotations: v.optional(v.record(v.string(), v.string()), {}),
  /** The poststop hooks, as config.json had them at create (config.json may change or go). */
  poststop: v.optional(v.array(HookRef), []),
  /** startContainer and poststart hooks, run by `start`. */
  startContainer: v.optional(v.array(HookRef), []),
  poststart: v.optional(v.array(HookRef), []),
  /** linux.seccomp compiled at create (a file of the state root's cache): exec installs it too. */
  seccomp: v.optional(v.object({ program: v.string(), flags: v.array(v.string()) })),
}));
export type OciState = v.InferOutput<typeof OciState>;

const Pid = lazy(() => v.pipe(v.number(), v.integer(), v.minValue(1)));

/** A process as seen when it was recorded: the start time tells a reused pid apart. */
export const ProcessRef = lazy(() => v.object({ pid: Pid, startTime: v.number() }));
export type ProcessRef = v.InferOutput<typeof ProcessRef>;

export const Volume = lazy(() => v.object({ source: v.string(), target: v.string(), readonly: v.boolean(), idmap: v.optional(v.boolean()) }));
export type Volume = v.InferOutput<typeof Volume>;

/** none: own namespace, loopback only; host: the host's; bridge: a veth on a bridge; container: another's. */
export const Network = lazy(() => v.object({
  /** external: namespaces an OCI bundle joins by path (a netns an engine set up). */
  mode: v.picklist(["none", "host", "bridge", "container", "external"]),
  /** bridge: the network (bridge) name. */
  net: v.optional(v.string()),
  subnet: v.optional(v.string()),
  /** bridge: published ports as given (-P). */
  ports: v.optional(v.array(v.string()), []),
  /** container: the id of the container whose network namespace is shared. */
  container: v.optional(v.string()),
  /** --add-host (NAME:ADDRESS), --dns, --dns-search, --dns-option as given. */
  extraHosts: v.optional(v.array(v.string())),
  dns: v.optional(v.array(v.string())),
  dnsSearch: v.optional(v.array(v.string())),
  dnsOptions: v.optional(v.array(v.string())),
  /** bridge: --ip and --network-alias as given. */
  ip: v.optional(v.string()),
  aliases: v.optional(v.array(v.string())),
}));
export type Network = v.InferOutput<typeof Network>;

const DeviceRate = lazy(() => v.object({ major: v.number(), minor: v.number(), rate: v.number() }));

/** Limits as applied (libs/cgroup's Limits): bytes, CFS quota/period in microseconds, a process count, cpuset lists, block I/O per device. */
export const Limits = lazy(() => v.object({
  memory: v.optional(v.number()),
  cpu: v.optional(v.object({ quota: v.number(), period: v.number() })),
  pids: v.optional(v.number()),
  swap: v.optional(v.number()),
  cpuShares: v.optional(v.number()),
  cpuset: v.optional(v.object({ cpus: v.optional(v.string()), mems: v.optional(v.string()) })),
  memoryReservation: v.optional(v.number()),
  swappiness: v.optional(v.number()),
  oomKillDisable: v.optional(v.boolean()),
  blockIO: v.optional(v.object({
    weight: v.optional(v.number()),
    weightDevice: v.optional(v.array(v.object({ major: v.number(), minor: v.number(), weight: v.number() }))),
    readBps: v.optional(v.array(DeviceRate)),
    writeBps: v.optional(v.array(DeviceRate)),
    readIops: v.optional(v.array(DeviceRate)),
    writeIops: v.optional(v.array(DeviceRate)),
  })),
}));

const IdRangeSchema = lazy(() => v.object({ container: v.number(), host: v.number(), size: v.number() }));

/** A user namespace: the maps written for the first process; auto when corerun chose the range. */
export const Userns = lazy(() => v.object({ uidMap: v.array(IdRangeSchema), gidMap: v.array(IdRangeSchema), auto: v.boolean() }));
export type Userns = v.InferOutput<typeof Userns>;

/**
 * How `corerun run` started the first process, for the processes `corerun exec` adds: the
 * capability set (numbers), the user as given (resolved in the container's /etc at exec time, as
 * Docker does), no_new_privs, the compiled seccomp program with its flags, and --ulimit.
 */
export const RunProcess = lazy(() => v.object({
  capabilities: v.array(v.number()),
  user: v.optional(v.string()),
  noNewPrivs: v.boolean(),
  seccomp: v.optional(v.object({ program: v.string(), flags: v.array(v.string()) })),
  /** --ulimit: RLIMIT_* names, values as prlimit takes them (2^64 for unlimited). */
  rlimits: v.optional(v.array(v.object({ type: v.string(), soft: v.number(), hard: v.number() })), []),
  /** --group-add, as given: resolved in the container's /etc/group with the user. */
  groupAdd: v.optional(v.array(v.string())),
  /** --oom-score-adj: the first process's, and every exec'd process's. */
  oomScoreAdj: v.optional(v.number()),
}));
export type RunProcess = v.InferOutput<typeof RunProcess>;

/** Docker's restart policies; maxRetries counts for on-failure only (0: no limit). */
export const RestartPolicy = lazy(() => v.object({
  name: v.picklist(["no", "on-failure", "always", "unless-stopped"]),
  maxRetries: v.pipe(v.number(), v.integer(), v.minValue(0)),
}));
export type RestartPolicy = v.InferOutput<typeof RestartPolicy>;

export const ContainerConfig = lazy(() => v.object({
  rootfs: v.string(),
  command: v.pipe(v.array(v.string()), v.minLength(1)),
  hostname: v.optional(v.string()),
  env: v.array(v.string()),
  cwd: v.string(),
  volumes: v.array(Volume),
  network: Network,
  /** --name: unique among running containers. */
  name: v.optional(v.string()),
  limits: v.optional(Limits, {}),
  cgroupParent: v.optional(v.string(), "corerun"),
  userns: v.optional(Userns),
  /** `corerun run` containers: what exec gives a new process (OCI containers have config.json). */
  process: v.optional(RunProcess),
  /** --restart (detached containers): when corerun-monitor starts the container again. */
  restart: v.optional(RestartPolicy),
  /** --pid host: no PID namespace of its own. */
  pidHost: v.optional(v.boolean()),
  /** --pid container:ID: that container's PID namespace. */
  pidContainer: v.optional(v.string()),
  /** --ipc as Docker's IpcMode: shareable, none, host or container:ID (private when absent). */
  ipc: v.optional(v.string()),
  /** --uts host: the host's UTS namespace. */
  utsHost: v.optional(v.boolean()),
  /** --tmpfs, each as PATH:OPTIONS. */
  tmpfs: v.optional(v.array(v.string())),
  /** --shm-size, in bytes. */
  shmSize: v.optional(v.number()),
  /** --device: each host node given, its path in the container and its device cgroup permissions. */
  devices: v.optional(v.array(v.object({ source: v.string(), target: v.string(), permissions: v.string() }))),
  /** --device-cgroup-rule, as given. */
  deviceCgroupRules: v.optional(v.array(v.string())),
  /** --sysctl, as given. */
  sysctls: v.optional(v.record(v.string(), v.string())),
  /** --stop-signal (or the image's StopSignal) as a number, and --stop-timeout in seconds: what corerun stop uses. */
  stopSignal: v.optional(v.number()),
  stopTimeout: v.optional(v.number()),
  /** --label, --label-file and the image's Labels. */
  labels: v.optional(v.record(v.string(), v.string())),
  /** --domainname. */
  domainname: v.optional(v.string()),
  /** --log-driver and --log-opt (max-size in bytes, max-file); absent: json-file, 10 MiB, 2 files. */
  log: v.optional(v.object({ driver: v.picklist(["json-file", "none"]), maxSize: v.number(), maxFile: v.number() })),
  /** The health check (--health-*, or the image's HEALTHCHECK), durations in ms. */
  health: v.optional(v.object({
    test: v.array(v.string()),
    intervalMs: v.number(),
    timeoutMs: v.number(),
    startPeriodMs: v.number(),
    startIntervalMs: v.number(),
    retries: v.number(),
  })),
}));
export type ContainerConfig = v.InferOutput<typeof ContainerConfig>;

/**
 * A detached container (`run -d`): corerun-monitor holds its output (json-file log) and records
 * its end. `finished` is set, with the state's exitCode, once the first process has exited and
 * the container's resources are released; the state and its log stay until `rm` (or go at once
 * with `rm`). The attach socket lives in the container's directory and goes with it.
 */
export const Detached = lazy(() => v.object({
  monitor: ProcessRef,
  rm: v.boolean(),
  log: v.optional(v.string()),
  finished: v.optional(v.string()),
  /** -t: the monitor holds the container's pty; -i: it keeps the container's input open. */
  tty: v.optional(v.boolean()),
  stdin: v.optional(v.boolean()),
  /** The monitor's socket for `corerun attach`, there while the container runs. */
  attach: v.optional(v.string()),
  /** When the current (or last) run's command began: a run of 10 s resets the restart delay. */
  started: v.optional(v.string()),
  /** --restart: how often the container was started again, and the last delay before a start. */
  restartCount: v.optional(v.number()),
  backoffMs: v.optional(v.number()),
  /** The monitor waits backoffMs before starting it again (ps: restarting). */
  restarting: v.optional(v.boolean()),
  /** stop, kill or rm by the user: never started again. */
  stoppedByUser: v.optional(v.boolean()),
  /** The kernel's OOM killer killed a process of the last run (its cgroup's oom_kill count). */
  oomKilled: v.optional(v.boolean()),
  /** The last run's bridge address and host ports (as -P specs), taken again by a restart when free. */
  lastNetwork: v.optional(v.object({ address: v.string(), ports: v.array(v.string()) })),
  /**
   * The start's command line (corerun's words after its script, as `run -d` was given them) and
   * the directory it ran in: what its monitor runs for each restart, and what `corerun start`
   * runs again under a new monitor once the container has exited.
   */
  start: v.optional(v.object({ argv: v.array(v.string()), cwd: v.string() })),
}));
export type Detached = v.InferOutput<typeof Detached>;

export const State = lazy(() => v.object({
  version: v.literal(STATE_VERSION),
  id: v.pipe(v.string(), v.regex(ID_PATTERN)),
  status: Status,
  created: v.string(),
  config: ContainerConfig,
  /** The corerun process that owns the container; cleanup treats its death as a crash. */
  owner: v.optional(ProcessRef),
  /** The container's first process (PID 1 inside). */
  init: v.optional(ProcessRef),
  exitCode: v.optional(v.number()),
  /** The container's cgroup, recorded before it is created: hierarchy -> directory ("" is v2). */
  cgroup: v.optional(v.object({ name: v.string(), parent: v.string(), paths: v.record(v.string(), v.string()), devices: v.optional(v.boolean()) })),
  detached: v.optional(Detached),
  /** Containers made by the OCI commands (create, run --bundle): their bundle and hooks. */
  oci: v.optional(OciState),
  /**
   * Mount points corerun creates in the user's rootfs because they were missing; recorded before
   * they are created and removed again (when still empty) when the container ends.
   */
  mountPoints: v.optional(v.array(v.object({ path: v.string(), kind: v.picklist(["dir", "file"]) })), []),
  /**
   * A container of an image: its overlayfs, recorded before it is mounted. `target` is the merged
   * tree (the rootfs), `lower` the store's layer directories, top first; `upper` and `work` are
   * the container's own (absent with --read-only). The mount goes when the container ends; an
   * exited detached container keeps upper and work (its writable layer, which `commit` reads and
   * `start` mounts again) and this record, by which its image stays in use, until it is removed.
   */
  image: v.optional(v.object({
    id: v.string(), ref: v.string(), target: v.string(), lower: v.array(v.string()), upper: v.optional(v.string()), work: v.optional(v.string()),
  })),
  /** The current run's health (Docker's State.Health), with the last five probes. */
  health: v.optional(v.object({
    status: v.picklist(["starting", "healthy", "unhealthy"]),
    failingStreak: v.number(),
    log: v.array(v.object({ start: v.string(), end: v.string(), exitCode: v.number(), output: v.string() })),
  })),
}));
export type State = v.InferOutput<typeof State>;

export function parseState(data: unknown, path: string): State {
  const result = v.safeParse(State, data);
  if (!result.success) {
    const issue = result.issues[0];
    const where = issue.path?.map((p) => String(p.key)).join(".") ?? "";
    throw new Error(`invalid state file ${path}: ${where ? `${where}: ` : ""}${issue.message}`);
  }
  return result.output;
}
