import { statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { NAMESPACES, type NamespaceName } from "@corerun/syscall";
import { UsageError, type ToolContext } from "@corerun/cli";
import { parseIdMap, type IdRange } from "@corerun/state";
import type { ArgsDef } from "citty";

export const args = {
  ns: { type: "string", valueHint: "LIST", description: "namespaces to create, comma-separated: pid,mount,uts,ipc,net,cgroup (default all)" },
  "net-ns": { type: "string", valueHint: "PATH", description: "join the network namespace at PATH (/proc/PID/ns/net) instead of creating one" },
  "ipc-ns": { type: "string", valueHint: "PATH", description: "join the IPC namespace at PATH (/proc/PID/ns/ipc) instead of creating one" },
  "pid-ns": { type: "string", valueHint: "PATH", description: "start CMD in the PID namespace at PATH (/proc/PID/ns/pid) instead of a new one" },
  uidmap: { type: "string", valueHint: "CTR:HOST:SIZE", description: "also create a user namespace with this uid map (repeatable); CMD runs as its root" },
  gidmap: { type: "string", valueHint: "CTR:HOST:SIZE", description: "gid map of the user namespace (repeatable; defaults to the uid map)" },
  detach: { type: "boolean", description: "exit once CMD has started instead of waiting for it" },
  "pid-file": { type: "string", valueHint: "PATH", description: "write CMD's pid (as seen from outside) to PATH" },
  "json-status-fd": { type: "string", valueHint: "FD", description: 'write {"pid":N} when CMD starts and {"exitCode":N} when it ends to FD' },
  "preserve-fds": { type: "string", valueHint: "N", description: "pass fds 3 to 3+N-1 on to CMD (default 0)" },
} as const satisfies ArgsDef;

export interface NsOptions {
  namespaces: NamespaceName[];
  netNs: string | undefined;
  /** --ipc-ns, --pid-ns: namespaces joined by path, as --net-ns. */
  ipcNs?: string | undefined;
  pidNs?: string | undefined;
  uidMap: IdRange[];
  gidMap: IdRange[];
  detach: boolean;
  pidFile: string | undefined;
  statusFd: number | undefined;
  preserveFds: number;
  command: string[];
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function fdNumber(value: string | undefined, option: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) > 1024) throw new UsageError(`${option} "${value}" is not a file descriptor number`);
  return Number(value);
}

export function parseNsOptions(ctx: Pick<ToolContext, "values" | "flags" | "tail">): NsOptions {
  const all = NAMESPACES.map((n) => n.name);
  const list = ctx.values.ns?.at(-1);
  const namespaces = list === undefined ? all : list.split(",").map((s) => s.trim()).filter(Boolean);
  for (const n of namespaces) {
    if (!all.includes(n as NamespaceName)) throw new UsageError(`--ns: unknown namespace "${n}"; use ${all.join(",")}`);
  }
  if (ctx.tail.length === 0) throw new UsageError("no command given; usage: corerun-ns [options] -- CMD [ARGS...]");
  const netNs = ctx.values["net-ns"]?.at(-1);
  if (netNs !== undefined && namespaces.includes("net")) throw new UsageError("--net-ns joins a network namespace: leave net out of --ns");
  const ipcNs = ctx.values["ipc-ns"]?.at(-1);
  if (ipcNs !== undefined && namespaces.includes("ipc")) throw new UsageError("--ipc-ns joins an IPC namespace: leave ipc out of --ns");
  const pidNs = ctx.values["pid-ns"]?.at(-1);
  if (pidNs !== undefined && namespaces.includes("pid")) throw new UsageError("--pid-ns joins a PID namespace: leave pid out of --ns");
  const uidMap = parseIdMap(ctx.values.uidmap ?? [], "--uidmap");
  const gidMap = parseIdMap(ctx.values.gidmap ?? [], "--gidmap");
  const preserve = fdNumber(ctx.values["preserve-fds"]?.at(-1), "--preserve-fds") ?? 0;
  const pidFile = ctx.values["pid-file"]?.at(-1);
  // Checked before the command starts: a pid file that cannot be written would otherwise fail
  // after it runs.
  if (pidFile !== undefined && !isDirectory(dirname(resolve(pidFile)))) {
    throw new UsageError(`--pid-file ${pidFile}: ${dirname(resolve(pidFile))} is not a directory; give a path in an existing directory`);
  }
  return {
    namespaces: namespaces as NamespaceName[],
    netNs,
    ipcNs,
    pidNs,
    uidMap: uidMap.length ? uidMap : gidMap,
    gidMap: gidMap.length ? gidMap : uidMap,
    detach: ctx.flags.detach ?? false,
    pidFile,
    statusFd: fdNumber(ctx.values["json-status-fd"]?.at(-1), "--json-status-fd"),
    preserveFds: preserve,
    command: ctx.tail,
  };
}
