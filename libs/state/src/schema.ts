import * as v from "valibot";

export const STATE_VERSION = 1;

/** creating → running → stopped; creating → stopped when the start fails. */
export const Status = v.picklist(["creating", "running", "stopped"]);
export type Status = v.InferOutput<typeof Status>;

const TRANSITIONS: Record<Status, readonly Status[]> = {
  creating: ["running", "stopped"],
  running: ["stopped"],
  stopped: [],
};

export function canTransition(from: Status, to: Status): boolean {
  return TRANSITIONS[from].includes(to);
}

export const ID_PATTERN = /^[0-9a-f]{12}$/;

const Pid = v.pipe(v.number(), v.integer(), v.minValue(1));

/** A process as seen when it was recorded: the start time tells a reused pid apart. */
export const ProcessRef = v.object({ pid: Pid, startTime: v.number() });
export type ProcessRef = v.InferOutput<typeof ProcessRef>;

export const Volume = v.object({ source: v.string(), target: v.string(), readonly: v.boolean(), idmap: v.optional(v.boolean()) });
export type Volume = v.InferOutput<typeof Volume>;

/** none: own namespace, loopback only; host: the host's; bridge: a veth on a bridge; container: another's. */
export const Network = v.object({
  mode: v.picklist(["none", "host", "bridge", "container"]),
  /** bridge: the network (bridge) name. */
  net: v.optional(v.string()),
  subnet: v.optional(v.string()),
  /** bridge: published ports as given (-P). */
  ports: v.optional(v.array(v.string()), []),
  /** container: the id of the container whose network namespace is shared. */
  container: v.optional(v.string()),
});
export type Network = v.InferOutput<typeof Network>;

/** Limits as applied: bytes, CFS quota/period in microseconds, a process count. */
export const Limits = v.object({
  memory: v.optional(v.number()),
  cpu: v.optional(v.object({ quota: v.number(), period: v.number() })),
  pids: v.optional(v.number()),
});

const IdRangeSchema = v.object({ container: v.number(), host: v.number(), size: v.number() });

/** A user namespace: the maps written for the first process; auto when corerun chose the range. */
export const Userns = v.object({ uidMap: v.array(IdRangeSchema), gidMap: v.array(IdRangeSchema), auto: v.boolean() });
export type Userns = v.InferOutput<typeof Userns>;

export const ContainerConfig = v.object({
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
});
export type ContainerConfig = v.InferOutput<typeof ContainerConfig>;

export const State = v.object({
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
  /** The container's cgroup, recorded before it is created: hierarchy → directory ("" is v2). */
  cgroup: v.optional(v.object({ name: v.string(), parent: v.string(), paths: v.record(v.string(), v.string()) })),
  /**
   * Mount points corerun creates in the user's rootfs because they were missing; recorded before
   * they are created and removed again (when still empty) when the container ends.
   */
  mountPoints: v.optional(v.array(v.object({ path: v.string(), kind: v.picklist(["dir", "file"]) })), []),
  /**
   * A container of an image: its overlayfs, recorded before it is mounted. `target` is the merged
   * tree (the rootfs), `lower` the store's layer directories, top first; `upper` and `work` are
   * the container's own (absent with --read-only). All of it goes with the container.
   */
  image: v.optional(v.object({
    id: v.string(), ref: v.string(), target: v.string(), lower: v.array(v.string()), upper: v.optional(v.string()), work: v.optional(v.string()),
  })),
});
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
