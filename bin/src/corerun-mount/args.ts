import { resolve } from "node:path";
import { UsageError, type ToolContext } from "@corerun/cli";
import { checkRootfs, parseVolume, type VolumeSpec } from "@corerun/rootfs";
import type { ArgsDef } from "citty";

export const args = {
  pid: { type: "string", valueHint: "PID", description: "the waiting process whose mount namespace to build (required)" },
  rootfs: { type: "string", valueHint: "DIR", description: "the container's root filesystem (required)" },
  volume: { type: "string", alias: "v", valueHint: "HOST:CTR[:ro|rw]", description: "bind-mount a host path (repeatable)" },
  "sync-dir": { type: "string", valueHint: "DIR", description: "wait for corerun-exec's ready on DIR/ready before pivot_root" },
  idmap: { type: "boolean", description: "idmap the rootfs (and volumes marked idmap) through PID's user namespace" },
  proc: { type: "boolean", description: "move the target's own /proc (from corerun-exec --mount-proc) into the rootfs before pivot_root" },
  unmasked: { type: "boolean", description: "a read-write /sys without Docker's masks (what Docker's --privileged gives)" },
  "host-devices": { type: "boolean", description: "also bind every device node of the host's /dev into the container's /dev (Docker's --privileged)" },
  "die-with-parent": { type: "boolean", description: "get SIGKILL when the parent process dies (as bubblewrap's option)" },
} as const satisfies ArgsDef;

export interface MountOptions {
  pid: number;
  rootfs: string;
  volumes: VolumeSpec[];
  syncDir: string | undefined;
  dieWithParent: boolean;
  proc: boolean;
  idmap: boolean;
  unmasked: boolean;
  hostDevices: boolean;
}

export function parseMountOptions(ctx: Pick<ToolContext, "values" | "flags">): MountOptions {
  const pid = ctx.values.pid?.at(-1);
  if (pid === undefined || !/^[1-9]\d*$/.test(pid)) throw new UsageError(`--pid ${pid ?? "is required"}${pid === undefined ? "" : ": not a process id"}: the pid of the waiting container process`);
  const volumes = (ctx.values.volume ?? []).map((v) => parseVolume(v));
  const idmapped = volumes.find((v) => v.idmap);
  if (idmapped && !ctx.flags.idmap) throw new UsageError(`-v ${idmapped.source}:${idmapped.target}: idmap needs --idmap (a target in its own user namespace)`);
  return {
    pid: Number(pid),
    rootfs: checkRootfs(ctx.values.rootfs?.at(-1)),
    volumes,
    // Resolved now: after setns the working directory is the container's /.
    syncDir: ctx.values["sync-dir"] === undefined ? undefined : resolve(ctx.values["sync-dir"].at(-1)!),
    dieWithParent: ctx.flags["die-with-parent"] ?? false,
    proc: ctx.flags.proc ?? false,
    idmap: ctx.flags.idmap ?? false,
    unmasked: ctx.flags.unmasked ?? false,
    hostDevices: ctx.flags["host-devices"] ?? false,
  };
}
