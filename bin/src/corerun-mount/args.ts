import { UsageError, type ToolContext } from "@corerun/cli";
import { checkRootfs, parseVolume, type VolumeSpec } from "@corerun/rootfs";
import type { ArgsDef } from "citty";

export const args = {
  pid: { type: "string", valueHint: "PID", description: "the waiting process whose mount namespace to build (required)" },
  rootfs: { type: "string", valueHint: "DIR", description: "the container's root filesystem (required)" },
  volume: { type: "string", alias: "v", valueHint: "HOST:CTR[:ro|rw]", description: "bind-mount a host path (repeatable)" },
  "sync-dir": { type: "string", valueHint: "DIR", description: "wait for corerun-exec's ready on DIR/ready before pivot_root" },
  "die-with-parent": { type: "boolean", description: "get SIGKILL when the parent process dies (as bubblewrap's option)" },
} as const satisfies ArgsDef;

export interface MountOptions {
  pid: number;
  rootfs: string;
  volumes: VolumeSpec[];
  syncDir: string | undefined;
  dieWithParent: boolean;
}

export function parseMountOptions(ctx: Pick<ToolContext, "values" | "flags">): MountOptions {
  const pid = ctx.values.pid?.at(-1);
  if (pid === undefined || !/^[1-9]\d*$/.test(pid)) throw new UsageError(`--pid ${pid ?? "is required"}${pid === undefined ? "" : ": not a process id"}: the pid of the waiting container process`);
  return {
    pid: Number(pid),
    rootfs: checkRootfs(ctx.values.rootfs?.at(-1)),
    volumes: (ctx.values.volume ?? []).map((v) => parseVolume(v)),
    syncDir: ctx.values["sync-dir"]?.at(-1),
    dieWithParent: ctx.flags["die-with-parent"] ?? false,
  };
}
