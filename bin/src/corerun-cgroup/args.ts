import { randomBytes } from "node:crypto";
import { COMMON_ARGS, createLogger, logLevel, splitArgv, UsageError, type ToolContext } from "@corerun/cli";
import { DEFAULT_PARENT, DEFAULT_ROOT, normalizeParent, parseLimits, RESOURCE_ARGS, resourceInput, validateName, type Limits } from "@corerun/cgroup";
import type { ArgsDef } from "citty";

export const limitArgs = {
  memory: { type: "string", alias: "m", valueHint: "SIZE", description: "memory limit: MiB (64) or a Docker size (512m, 1g); at least 6 MiB; swap does not extend it" },
  cpu: { type: "string", alias: "c", valueHint: "PERCENT", description: "CPU limit in percent of one core (50 = half a core, 200 = two cores)" },
  cpus: { type: "string", valueHint: "N", description: "the same limit the Docker way: CPUs (0.5 = half a core)" },
  pids: { type: "string", alias: "p", valueHint: "N", description: "most tasks (processes and threads) the cgroup may hold" },
  ...RESOURCE_ARGS,
  "docker-devices": { type: "boolean", description: "Docker's device cgroup: deny every device but null, zero, full, random, urandom, tty, ptmx, the ptys and tun/tap (and mknod of any node), and those of --device-cgroup-rule, which implies it" },
} as const satisfies ArgsDef;

export const placeArgs = {
  "cgroup-parent": { type: "string", valueHint: "PATH", description: `parent cgroup below each hierarchy's root (default ${DEFAULT_PARENT})` },
  "cgroup-root": { type: "string", valueHint: "DIR", description: `where the cgroup hierarchies are mounted (default ${DEFAULT_ROOT})` },
} as const satisfies ArgsDef;

export const createArgs = { ...limitArgs, ...placeArgs } as const satisfies ArgsDef;
export const addArgs = { pid: { type: "string", valueHint: "N", description: "the process to move in (with all its threads)" }, ...placeArgs } as const satisfies ArgsDef;
export const rmArgs = { force: { type: "boolean", alias: "f", description: "succeed when the cgroup does not exist" }, ...placeArgs } as const satisfies ArgsDef;
export const runArgs = { ...limitArgs, name: { type: "string", valueHint: "NAME", description: "name of the cgroup (default run-PID-RANDOM)" }, ...placeArgs } as const satisfies ArgsDef;

/** Where a cgroup lives: its name, its parent, the root of the hierarchies. */
export interface Place {
  name: string;
  parent: string;
  root: string;
}

type Ctx = Pick<ToolContext, "values" | "flags" | "tail" | "log">;

const last = (ctx: Ctx, key: string): string | undefined => ctx.values[key]?.at(-1);

function placeOf(ctx: Ctx, name: string): Place {
  return {
    name: validateName(name),
    parent: normalizeParent(last(ctx, "cgroup-parent") ?? DEFAULT_PARENT),
    root: last(ctx, "cgroup-root") ?? DEFAULT_ROOT,
  };
}

/**
 * Subcommands take NAME first and options after it (`create web --memory 64`). The shared argv
 * splitter stops at the first plain word, so the words after NAME are split here with the same
 * rules. Returns undefined when they asked for --help.
 */
export function withName(ctx: Ctx, def: ArgsDef, usage: string): Ctx & { name: string } | undefined {
  const [name, ...rest] = ctx.tail;
  if (name === undefined) throw new UsageError(`no cgroup name given; usage: corerun-cgroup ${usage}`);
  const more = splitArgv(rest, { ...def, ...COMMON_ARGS }, { tail: "none", optionalValues: { log: ["true", "false"] } });
  if (more.help) return undefined;
  const values = { ...ctx.values };
  for (const [k, v] of Object.entries(more.values)) values[k] = [...(values[k] ?? []), ...v];
  const flags = { ...ctx.flags, ...more.flags };
  const log = more.values.log || more.values["log-level"] ? createLogger("corerun-cgroup", logLevel({ log: values.log?.at(-1), logLevel: values["log-level"]?.at(-1) })) : ctx.log;
  return { values, flags, tail: [], log, name };
}

export function parsePlace(ctx: Ctx & { name: string }): Place {
  return placeOf(ctx, ctx.name);
}

export function parseLimitValues(ctx: Ctx): Limits {
  return parseLimits(resourceInput(ctx.values, ctx.flags));
}

export function parsePid(ctx: Ctx): number {
  const value = last(ctx, "pid");
  if (value === undefined) throw new UsageError("--pid is required: give the process to move into the cgroup");
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new UsageError(`--pid "${value}" is not a process id`);
  return Number(value);
}

export interface RunOptions extends Place {
  limits: Limits;
  command: string[];
}

/** Validates everything `run` needs before anything is created. */
export function parseRun(ctx: Ctx): RunOptions {
  const limits = parseLimitValues(ctx);
  const place = placeOf(ctx, last(ctx, "name") ?? `run-${process.pid}-${randomBytes(3).toString("hex")}`);
  if (!ctx.tail.length) throw new UsageError("no command given; usage: corerun-cgroup run [options] -- CMD [ARGS...]");
  return { ...place, limits, command: ctx.tail };
}
