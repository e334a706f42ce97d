import { resolve } from "node:path";
import { UsageError, type ToolContext } from "@corerun/cli";
import { checkRootfs, parseDevice, parseTmpfs, parseVolume, type DeviceSpec, type TmpfsSpec, type VolumeSpec } from "@corerun/rootfs";
import type { ArgsDef } from "citty";

export const args = {
  pid: { type: "string", valueHint: "PID", description: "the waiting process whose mount namespace to build (required)" },
  rootfs: { type: "string", valueHint: "DIR", description: "the container's root filesystem (required)" },
  volume: { type: "string", alias: "v", valueHint: "HOST:CTR[:ro|rw]", description: "bind-mount a host path (repeatable)" },
  "sync-dir": { type: "string", valueHint: "DIR", description: "wait for corerun-exec's ready on DIR/ready before pivot_root" },
  idmap: { type: "boolean", description: "idmap the rootfs (and volumes marked idmap) through PID's user namespace" },
  "rootfs-mapped": { type: "boolean", description: "with --idmap, bind the rootfs as it is: it shows the user namespace's ids already (an image's overlayfs of idmapped layers)" },
  "overlay-lower": { type: "string", valueHint: "DIR", description: "first mount an overlayfs at --rootfs inside PID's namespaces: a lower directory, top first (repeatable; rootless image containers)" },
  "overlay-upper": { type: "string", valueHint: "DIR", description: "the overlayfs's upper directory (with --overlay-lower)" },
  "overlay-work": { type: "string", valueHint: "DIR", description: "the overlayfs's work directory (with --overlay-lower)" },
  proc: { type: "boolean", description: "move the target's own /proc (from corerun-exec --mount-proc) into the rootfs before pivot_root" },
  unmasked: { type: "boolean", description: "a read-write /sys without Docker's masks (what Docker's --privileged gives)" },
  device: { type: "string", valueHint: "HOST[:CTR]", description: "give the container a host device node (or a directory's nodes) at CTR under /dev (default: the same path), repeatable" },
  dev: { type: "boolean", description: "device nodes open on /dev, the rootfs and volumes, and /dev's nodes are made with mknod, as in Docker: only for a container whose device cgroup decides what opens (corerun-cgroup create --docker-devices); without it all is nodev and the nodes are read-only bind mounts of the host's" },
  tmpfs: { type: "string", valueHint: "PATH[:OPTIONS]", description: "mount a tmpfs at PATH (repeatable): noexec, nosuid and nodev unless OPTIONS say exec, suid or dev; ro, size=, mode=, uid=, gid=, nr_inodes= as Docker's --tmpfs" },
  "shm-size": { type: "string", valueHint: "BYTES", description: "size of the /dev/shm tmpfs (default 67108864, 64 MiB)" },
  "dev-shm": { type: "string", valueHint: "tmpfs|none|PATH", description: "/dev/shm: a tmpfs of its own (default), none, or a bind of PATH (the host's /dev/shm, or another container's through /proc/PID/root/dev/shm, for a shared IPC namespace)" },
  "host-devices": { type: "boolean", description: "also bind every device node of the host's /dev into the container's /dev (Docker's --privileged)" },
  "read-only": { type: "boolean", description: "remount the container's / read-only after pivot_root (the mounts on it, /dev, /proc, /sys and volumes, stay as they are)" },
  "die-with-parent": { type: "boolean", description: "get SIGKILL when the parent process dies (as bubblewrap's option)" },
  oci: { type: "string", valueHint: "CONFIG", description: "mount what an OCI config.json lists (mounts, devices, root.readonly) instead of corerun's /dev, /sys and volumes" },
  "hook-pause": { type: "boolean", description: "once the tree is built, write \"built\" on stdout and wait for a line on stdin before pivot_root (for OCI hooks)" },
  "console-socket": { type: "string", valueHint: "PATH", description: "with --oci and process.terminal: send a pty master from the container's devpts to this AF_UNIX socket, its peer on /dev/console" },
  "cgroup-dir": { type: "string", valueHint: "NAME=DIR", description: "with --oci: the container's cgroup directory of hierarchy NAME, for a cgroup mount (repeatable; NAME empty for v2)" },
} as const satisfies ArgsDef;

export interface MountOptions {
  pid: number;
  rootfs: string;
  volumes: VolumeSpec[];
  syncDir: string | undefined;
  dieWithParent: boolean;
  proc: boolean;
  idmap: boolean;
  oci: string | undefined;
  consoleSocket: string | undefined;
  hookPause: boolean;
  cgroupDirs: { name: string; dir: string }[];
  unmasked: boolean;
  hostDevices: boolean;
  /** --device: host nodes at their container paths. */
  devices: DeviceSpec[];
  /** --dev: nodes made with mknod, and no nodev: a device cgroup guards the container. */
  dev: boolean;
  /** --dev-shm: a tmpfs of its own, none, or a bind of this path. */
  devShm?: string | undefined;
  /** --shm-size: bytes of /dev/shm's tmpfs. */
  shmSize?: number | undefined;
  /** --tmpfs: tmpfs mounts, with the volumes. */
  tmpfs?: TmpfsSpec[];
  rootfsMapped?: boolean;
  /** --overlay-*: an overlayfs mounted at rootfs first, inside the target's namespaces. */
  overlay?: { lower: string[]; upper: string; work: string } | undefined;
  /** --read-only: / remounted read-only after pivot_root. */
  readOnly?: boolean;
}

export function parseMountOptions(ctx: Pick<ToolContext, "values" | "flags">): MountOptions {
  const pid = ctx.values.pid?.at(-1);
  if (pid === undefined || !/^[1-9]\d*$/.test(pid)) throw new UsageError(`--pid ${pid ?? "is required"}${pid === undefined ? "" : ": not a process id"}: the pid of the waiting container process`);
  const volumes = (ctx.values.volume ?? []).map((v) => parseVolume(v));
  if (ctx.values.oci !== undefined && volumes.length) throw new UsageError("--oci takes the mounts from config.json; drop -v");
  if (ctx.flags["read-only"] && ctx.values.oci !== undefined) throw new UsageError("--oci takes root.readonly from config.json; drop --read-only");
  if (ctx.values["console-socket"] !== undefined && ctx.values.oci === undefined) throw new UsageError("--console-socket needs --oci (the terminal comes from config.json's process.terminal)");
  const lower = (ctx.values["overlay-lower"] ?? []).map((d) => resolve(d));
  const upper = ctx.values["overlay-upper"]?.at(-1);
  const work = ctx.values["overlay-work"]?.at(-1);
  if ((lower.length > 0) !== (upper !== undefined) || (upper !== undefined) !== (work !== undefined)) {
    throw new UsageError("--overlay-lower, --overlay-upper and --overlay-work go together: the layers, the upper and the work directory of the overlayfs to mount at --rootfs");
  }
  if (lower.length && ctx.values.oci !== undefined) throw new UsageError("--oci takes its root from config.json; drop --overlay-*");
  const devices = (ctx.values.device ?? []).flatMap((spec) => {
    const parts = spec.split(":");
    if (parts.length > 2 || (parts[1] !== undefined && /^[rwm]+$/.test(parts[1]))) {
      throw new UsageError(`--device "${spec}": corerun-mount makes the node; what the container may do with it is the device cgroup's (corerun-cgroup create --device-cgroup-rule); give HOST[:CONTAINER]`);
    }
    return parseDevice(spec);
  });
  if (ctx.values.oci !== undefined && (devices.length || ctx.flags.dev)) throw new UsageError("--oci takes the devices and their rules from config.json; drop --device and --dev");
  const devShm = ctx.values["dev-shm"]?.at(-1);
  if (devShm !== undefined && devShm !== "tmpfs" && devShm !== "none" && !devShm.startsWith("/")) throw new UsageError(`--dev-shm ${devShm}: give tmpfs, none or an absolute path to bind`);
  if (devShm !== undefined && ctx.values.oci !== undefined) throw new UsageError("--oci takes /dev/shm from config.json's mounts; drop --dev-shm");
  const tmpfs = (ctx.values.tmpfs ?? []).map((t) => parseTmpfs(t));
  if (ctx.values.oci !== undefined && tmpfs.length) throw new UsageError("--oci takes the mounts from config.json; drop --tmpfs");
  const shmSize = ctx.values["shm-size"]?.at(-1);
  if (shmSize !== undefined && (!/^[1-9]\d*$/.test(shmSize) || !Number.isSafeInteger(Number(shmSize)))) throw new UsageError(`--shm-size ${shmSize}: give the size of /dev/shm in bytes, such as 134217728`);
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
    oci: ctx.values.oci === undefined ? undefined : resolve(ctx.values.oci.at(-1)!),
    hookPause: ctx.flags["hook-pause"] ?? false,
    consoleSocket: ctx.values["console-socket"] === undefined ? undefined : resolve(ctx.values["console-socket"].at(-1)!),
    cgroupDirs: (ctx.values["cgroup-dir"] ?? []).map((text) => {
      const eq = text.indexOf("=");
      if (eq < 0 || !text.slice(eq + 1).startsWith("/")) throw new UsageError(`--cgroup-dir ${text}: expected NAME=DIR with an absolute DIR, e.g. memory=/sys/fs/cgroup/memory/corerun/web`);
      return { name: text.slice(0, eq), dir: text.slice(eq + 1) };
    }),
    unmasked: ctx.flags.unmasked ?? false,
    hostDevices: ctx.flags["host-devices"] ?? false,
    devices,
    dev: ctx.flags.dev ?? false,
    devShm: devShm === "tmpfs" ? undefined : devShm,
    shmSize: shmSize === undefined ? undefined : Number(shmSize),
    tmpfs,
    rootfsMapped: ctx.flags["rootfs-mapped"] ?? false,
    readOnly: ctx.flags["read-only"] ?? false,
    // Resolved now: after setns the working directory is the container's /.
    overlay: lower.length ? { lower, upper: resolve(upper!), work: resolve(work!) } : undefined,
  };
}
