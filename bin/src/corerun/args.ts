import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { UsageError, type ToolContext } from "@corerun/cli";
import { checkRootfs, DEFAULT_PATH, findCommand, parseVolume, type VolumeSpec } from "@corerun/rootfs";
import { checkHostname, checkWorkdir, parseEnvVars, stateRoot } from "@corerun/state";
import { normalizeParent, parseLimits, type Limits } from "@corerun/cgroup";
import type { ArgsDef } from "citty";

export const runArgs = {
  rootfs: { type: "string", valueHint: "DIR", description: "the container's root filesystem (default: the busybox rootfs that tools/rootfs/build.sh makes)" },
  hostname: { type: "string", valueHint: "NAME", description: "the container's hostname (default: its id)" },
  volume: { type: "string", alias: "v", valueHint: "HOST:CTR[:ro|rw]", description: "bind-mount a host path (repeatable)" },
  network: { type: "string", valueHint: "MODE", description: "none (loopback only, up) or host (default none)" },
  env: { type: "string", alias: "e", valueHint: "KEY=VALUE", description: "set an environment variable (repeatable); KEY alone passes corerun's own value" },
  workdir: { type: "string", alias: "w", valueHint: "DIR", description: "working directory inside the container (default /)" },
  root: { type: "string", valueHint: "DIR", description: "state directory (default /run/corerun; env CORERUN_ROOT)" },
  "print-script": { type: "boolean", description: "print the tool invocations as a shell script instead of running them" },
  memory: { type: "string", alias: "m", valueHint: "MB", description: "memory limit in MiB, or a Docker size (512m, 1g); at least 6 MiB; swap does not extend it" },
  cpu: { type: "string", alias: "c", valueHint: "PERCENT", description: "CPU limit in percent of one core (150 = one and a half cores)" },
  cpus: { type: "string", valueHint: "N", description: "CPU limit in cores, Docker's spelling (0.5 = --cpu 50)" },
  pids: { type: "string", alias: "p", valueHint: "N", description: "maximum number of processes" },
  "cgroup-parent": { type: "string", valueHint: "PATH", description: "parent of the container's cgroup in every hierarchy (default corerun)" },
  // Options of features that are not built yet: rejected with a clear error, never ignored.
  port: { type: "string", alias: ["P", "publish"], valueHint: "[IP:]HOST:CTR[/tcp|udp]", description: "publish a port (not available yet)" },
  net: { type: "string", alias: "N", valueHint: "BRIDGE", description: "bridge network name (not available yet)" },
  name: { type: "string", valueHint: "NAME", description: "container name (not available yet)" },
  uidmap: { type: "string", valueHint: "CTR:HOST:SIZE", description: "user namespace uid map (not available yet)" },
  gidmap: { type: "string", valueHint: "CTR:HOST:SIZE", description: "user namespace gid map (not available yet)" },
  userns: { type: "string", valueHint: "MODE", description: "user namespace mode (not available yet)" },
} as const satisfies ArgsDef;

const NOT_YET: Record<string, string> = {
  port: "published ports", net: "bridge networks", name: "container names",
  uidmap: "user namespaces", gidmap: "user namespaces", userns: "user namespaces",
};

export type NetworkMode = "none" | "host";

export interface RunConfig {
  rootfs: string;
  command: string[];
  hostname: string | undefined;
  env: string[];
  workdir: string;
  volumes: VolumeSpec[];
  network: NetworkMode;
  limits: Limits;
  cgroupParent: string;
  root: string;
  printScript: boolean;
}

/** The repository's own build of the busybox rootfs, the default for a demo. */
export function defaultRootfs(): string {
  return join(dirname(process.argv[1] ?? "."), "..", "build", "rootfs");
}

function parseNetwork(value: string | undefined): NetworkMode {
  if (value === undefined || value === "none" || value === "host") return value ?? "none";
  if (value === "bridge" || value === "multi" || value.startsWith("container:")) {
    throw new UsageError(`--network ${value}: bridge and container networking are not available yet; use none or host`);
  }
  throw new UsageError(`--network ${value}: unknown mode; use none or host`);
}

/** Every check that can be made before anything is created. */
export function parseRunConfig(ctx: Pick<ToolContext, "values" | "flags" | "tail">, env = process.env): RunConfig {
  for (const [option, feature] of Object.entries(NOT_YET)) {
    if (ctx.values[option]?.length) throw new UsageError(`--${option}: ${feature} are not available yet in this version of corerun`);
  }
  const given = ctx.values.rootfs?.at(-1);
  if (given === undefined && !existsSync(defaultRootfs())) {
    throw new UsageError(`no --rootfs given and the default rootfs ${defaultRootfs()} is not built; run tools/rootfs/build.sh`);
  }
  const rootfs = checkRootfs(given ?? defaultRootfs());
  if (ctx.tail.length === 0) throw new UsageError("no command given; usage: corerun [options] CMD [ARGS...]");
  const hostname = checkHostname(ctx.values.hostname?.at(-1));
  const vars = parseEnvVars(ctx.values.env ?? [], env);
  const workdir = checkWorkdir(ctx.values.workdir?.at(-1));
  const volumes = (ctx.values.volume ?? []).map((v) => parseVolume(v));
  const path = vars.findLast((e) => e.startsWith("PATH="))?.slice(5) ?? DEFAULT_PATH;
  findCommand(rootfs, ctx.tail[0]!, path);
  return {
    rootfs,
    command: ctx.tail,
    hostname,
    env: vars,
    workdir,
    volumes,
    network: parseNetwork(ctx.values.network?.at(-1)),
    limits: parseLimits({ memory: ctx.values.memory?.at(-1), cpu: ctx.values.cpu?.at(-1), cpus: ctx.values.cpus?.at(-1), pids: ctx.values.pids?.at(-1) }),
    cgroupParent: normalizeParent(ctx.values["cgroup-parent"]?.at(-1) ?? "corerun"),
    root: stateRoot(ctx.values.root?.at(-1), env),
    printScript: ctx.flags["print-script"] ?? false,
  };
}
