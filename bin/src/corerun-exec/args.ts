import { readlinkSync } from "node:fs";
import { UsageError, type ToolContext } from "@corerun/cli";
import { DEFAULT_PATH } from "@corerun/rootfs";
import { capabilitySet, checkHostname, checkWorkdir, parseEnvVars } from "@corerun/state";
import type { ArgsDef } from "citty";

export const args = {
  hostname: { type: "string", valueHint: "NAME", description: "set the hostname (needs a UTS namespace)" },
  env: { type: "string", alias: "e", valueHint: "KEY=VALUE", description: "set an environment variable (repeatable); KEY alone takes corerun-exec's own value" },
  workdir: { type: "string", alias: "w", valueHint: "DIR", description: "working directory inside the container, created if missing (default /)" },
  "mount-proc": { type: "boolean", description: "mount a new /proc and apply Docker's /proc masks (needs its own PID and mount namespaces)" },
  cgroup: { type: "string", valueHint: "DIR", description: "join the cgroup DIR right before the exec (repeatable: one per hierarchy); opened at start, so it works after pivot_root" },
  "cgroup-fd": { type: "string", valueHint: "FD", description: "join a cgroup through an inherited fd of its cgroup.procs, opened by the caller (repeatable)" },
  cgroupns: { type: "boolean", description: "after joining, create a cgroup namespace, so the command sees its cgroup as the root" },
  "cap-add": { type: "string", valueHint: "CAP", description: "keep a capability beyond Docker's default set (repeatable; ALL keeps every one)" },
  "cap-drop": { type: "string", valueHint: "CAP", description: "drop a capability of Docker's default set (repeatable; ALL drops every one)" },
  "lo-up": { type: "boolean", description: "bring the loopback interface of its network namespace up" },
  user: { type: "string", alias: "u", valueHint: "USER[:GROUP]", description: "run the command as this user: a name or uid, and a group name or gid (names from the container's /etc/passwd and /etc/group)" },
  "sync-dir": { type: "string", valueHint: "DIR", description: "say ready on DIR/ready once loaded, then wait for go on DIR/go (FIFOs)" },
} as const satisfies ArgsDef;

export interface ExecOptions {
  hostname: string | undefined;
  env: string[];
  workdir: string;
  mountProc: boolean;
  cgroups: string[];
  cgroupFds: number[];
  cgroupns: boolean;
  syncDir: string | undefined;
  loUp: boolean;
  /** --user as given; resolved against the container's /etc files once its root is in place. */
  user: string | undefined;
  /** The capabilities the command keeps (its bounding set). */
  capabilities: number[];
  command: string[];
}

/** An inherited fd that must be open on a cgroup.procs file: writing elsewhere would be harmful. */
function cgroupFd(value: string): number {
  let target = "";
  try {
    if (/^\d+$/.test(value) && Number(value) >= 3) target = readlinkSync(`/proc/self/fd/${value}`);
  } catch {
    // not open
  }
  if (!target.endsWith("/cgroup.procs")) {
    throw new UsageError(`--cgroup-fd ${value}: not an inherited fd open on a cgroup.procs file (pass it with, e.g., 3>DIR/cgroup.procs and corerun-ns --preserve-fds)`);
  }
  return Number(value);
}

export function parseExecOptions(ctx: Pick<ToolContext, "values" | "flags" | "tail">, hostEnv = process.env): ExecOptions {
  const hostname = checkHostname(ctx.values.hostname?.at(-1));
  const env = parseEnvVars(ctx.values.env ?? [], hostEnv);
  const workdir = checkWorkdir(ctx.values.workdir?.at(-1));
  if (ctx.tail.length === 0) throw new UsageError("no command given; usage: corerun-exec [options] -- CMD [ARGS...]");
  // A new /proc over the host's would hide the host's processes from everyone in this namespace.
  if (ctx.flags["mount-proc"] && process.pid !== 1) throw new UsageError("--mount-proc needs corerun-exec to be PID 1 of a new PID namespace (start it with corerun-ns)");
  return {
    hostname,
    env,
    workdir,
    mountProc: ctx.flags["mount-proc"] ?? false,
    cgroups: ctx.values.cgroup ?? [],
    cgroupFds: (ctx.values["cgroup-fd"] ?? []).map(cgroupFd),
    cgroupns: ctx.flags.cgroupns ?? false,
    syncDir: ctx.values["sync-dir"]?.at(-1),
    loUp: ctx.flags["lo-up"] ?? false,
    user: ctx.values.user?.at(-1),
    capabilities: capabilitySet(ctx.values["cap-add"] ?? [], ctx.values["cap-drop"] ?? []),
    command: ctx.tail,
  };
}

/**
 * The container's environment: nothing from the host unless asked for, then Docker's defaults
 * (PATH, HOSTNAME, HOME) and the -e values, later ones winning.
 */
export function containerEnv(opts: ExecOptions, hostname: string, home = "/root"): string[] {
  const env = new Map<string, string>([
    ["PATH", DEFAULT_PATH],
    ["HOSTNAME", hostname],
    ["HOME", home],
  ]);
  for (const e of opts.env) {
    const eq = e.indexOf("=");
    env.set(e.slice(0, eq), e.slice(eq + 1));
  }
  return [...env].map(([k, v]) => `${k}=${v}`);
}
