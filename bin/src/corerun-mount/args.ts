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
  "rootfs-mapped": { type: "boolean", description: "with --idmap, bind the rootfs as it is: it shows the user namespace's ids already (an image's overlayfs of idmapped layers)" },
  proc: { type: "boolean", description: "move the target's own /proc (from corerun-exec --mount-proc) into the rootfs before pivot_root" },
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
  rootfsMapped?: boolean;
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
    rootfsMapped: ctx.flags["rootfs-mapped"] ?? false,
  };
}
