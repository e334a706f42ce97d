import { lstatSync, readdirSync, realpathSync, statSync, type Stats } from "node:fs";
import { posix } from "node:path";
import { UsageError } from "@corerun/cli";
import { devNumbers } from "@corerun/cgroup";

/** One host device node given to a container (Docker's --device). */
export interface DeviceSpec {
  /** The node on the host, symlinks resolved. */
  source: string;
  /** Its path in the container: under /dev. */
  target: string;
  type: "b" | "c";
  major: number;
  minor: number;
  /** What the device cgroup allows of it: r, w and m (mknod). */
  permissions: string;
}

/** Nodes every container's /dev has (corerun-mount makes these), by their numbers. */
export const DEFAULT_DEV_NODES: Readonly<Record<string, string>> = { null: "c 1:3", zero: "c 1:5", full: "c 1:7", random: "c 1:8", urandom: "c 1:9", tty: "c 5:0" };
/** What else /dev holds of its own: mounts (devpts, shm, mqueue) and links. */
const DEV_OWN = ["pts", "shm", "mqueue", "fd", "stdin", "stdout", "stderr", "ptmx", "core"];

/** Docker's validDeviceMode: r, w and m, each at most once. */
function isPermissions(text: string): boolean {
  return /^[rwm]{1,3}$/.test(text) && new Set(text).size === text.length;
}

function nodeOf(st: Stats): { type: "b" | "c"; major: number; minor: number } | undefined {
  if (!st.isCharacterDevice() && !st.isBlockDevice()) return undefined;
  return { type: st.isBlockDevice() ? "b" : "c", ...devNumbers(st.rdev) };
}

/**
 * Docker's --device HOST[:CONTAINER][:PERMISSIONS] (PERMISSIONS of r, w and m, default rwm; a
 * second part that reads as permissions is permissions). HOST is a character or block device, or
 * a directory whose device nodes are all given, at the same places under CONTAINER (default:
 * HOST's own path). The container's nodes live in its /dev, a tmpfs of its own: elsewhere they
 * would be made in the rootfs, which other containers share and which outlives the container.
 */
export function parseDevice(spec: string, option = "--device"): DeviceSpec[] {
  const parts = spec.split(":");
  if (parts.length > 3 || parts.some((p) => p === "")) throw new UsageError(`${option} "${spec}": expected HOST_PATH[:CONTAINER_PATH][:PERMISSIONS], such as /dev/fuse or /dev/sdb:/dev/xvdb:r`);
  const [host, second, third] = parts as [string, string | undefined, string | undefined];
  const secondIsPerms = third === undefined && second !== undefined && isPermissions(second);
  const target = second === undefined || secondIsPerms ? undefined : second;
  const permissions = third ?? (secondIsPerms ? second! : "rwm");
  if (!isPermissions(permissions)) throw new UsageError(`${option} "${spec}": permissions "${permissions}" are not r, w and m (each at most once), such as rw or rwm`);
  if (target !== undefined && !target.startsWith("/")) throw new UsageError(`${option} "${spec}": "${target}" is neither an absolute container path nor permissions of r, w and m`);
  if (!host.startsWith("/")) throw new UsageError(`${option} "${spec}": host path "${host}" must be absolute`);
  let source = host;
  let st: Stats;
  try {
    if (lstatSync(host).isSymbolicLink()) source = realpathSync(host);
    st = statSync(source);
  } catch (err) {
    throw new UsageError(`${option} "${spec}": cannot stat ${host} (${(err as NodeJS.ErrnoException).code}); give a device node of the host, such as /dev/fuse`);
  }
  const node = nodeOf(st);
  if (!node && !st.isDirectory()) throw new UsageError(`${option} "${spec}": ${source} is not a device node (nor a directory of them); give one such as /dev/fuse`);
  const dest = posix.normalize(target ?? host).replace(/\/+$/, "");
  if ((target ?? host).split("/").includes("..") || !dest.startsWith("/dev/")) {
    throw new UsageError(`${option} "${spec}": the container path ${target ?? host} must be under /dev (the container's own tmpfs; elsewhere the node would be left in the rootfs): give HOST:/dev/NAME`);
  }
  const own = DEV_OWN.find((name) => dest === `/dev/${name}` || dest.startsWith(`/dev/${name}/`));
  if (own) throw new UsageError(`${option} "${spec}": /dev/${own} is the container's own (${own === "pts" || own === "shm" || own === "mqueue" ? "a mount" : "a link"}); give another container path under /dev`);
  if (node) {
    const given = DEFAULT_DEV_NODES[dest.slice("/dev/".length)];
    if (given !== undefined && given !== `${node.type} ${node.major}:${node.minor}`) throw new UsageError(`${option} "${spec}": ${dest} is the container's ${given} device already; give another container path`);
    return [{ source, target: dest, ...node, permissions }];
  }
  // A directory (/dev/snd): each node under it, symlinks left out, as Docker walks it.
  const found: DeviceSpec[] = [];
  for (const rel of (readdirSync(source, { recursive: true }) as string[]).sort()) {
    const path = posix.join(source, rel);
    const sub = lstatSync(path, { throwIfNoEntry: false });
    const n = sub && nodeOf(sub);
    if (n) found.push({ source: path, target: posix.join(dest, rel), ...n, permissions });
  }
  if (!found.length) throw new UsageError(`${option} "${spec}": the directory ${source} holds no device node`);
  return found;
}
