import { posix } from "node:path";
import { UsageError } from "@corerun/cli";

/** Docker's default size of /dev/shm: 64 MiB. */
export const DEFAULT_SHM_SIZE = 64 * 1024 * 1024;

/** Docker's --tmpfs PATH[:OPTIONS]: a tmpfs of the container's own at PATH. */
export interface TmpfsSpec {
  target: string;
  readonly: boolean;
  exec: boolean;
  suid: boolean;
  dev: boolean;
  /** tmpfs's own options, as mount(2)'s data: size=, mode=, uid=, gid=, nr_inodes=, nr_blocks=. */
  data: string[];
}

const DATA: Record<string, RegExp> = {
  size: /^\d+[kKmMgG%]?$/,
  nr_blocks: /^\d+[kKmMgG]?$/,
  nr_inodes: /^\d+[kKmMgG]?$/,
  mode: /^[0-7]{3,4}$/,
  uid: /^\d+$/,
  gid: /^\d+$/,
};

/** Paths the container's own mounts take: a tmpfs over them would hide or break them. */
const OWN = ["/proc", "/sys", "/dev"];

/**
 * Parses --tmpfs as Docker does: noexec, nosuid and nodev unless the options say exec, suid or
 * dev, read-write unless ro; later options win. The size is tmpfs's own default (half of RAM)
 * unless size= gives one.
 */
export function parseTmpfs(spec: string, option = "--tmpfs"): TmpfsSpec {
  const at = spec.indexOf(":");
  return tmpfsOf(at < 0 ? spec : spec.slice(0, at), at < 0 ? [] : spec.slice(at + 1).split(","), `${option} "${spec}"`);
}

/** A tmpfs at target with --tmpfs's options; `option` names the input in refusals. */
export function tmpfsOf(target: string, options: readonly string[], option: string): TmpfsSpec {
  if (!target.startsWith("/") || target.split("/").includes("..")) throw new UsageError(`${option}: the container path "${target}" must be absolute, without ".."`);
  const path = posix.normalize(target).replace(/(.)\/+$/, "$1");
  if (path === "/") throw new UsageError(`${option}: a tmpfs cannot replace the container's /; use --read-only and a tmpfs below it`);
  const own = OWN.find((p) => path === p || (p !== "/dev" && path.startsWith(`${p}/`)));
  if (own) throw new UsageError(`${option}: ${own} is the container's own mount; give another path`);
  const t: TmpfsSpec = { target: path, readonly: false, exec: false, suid: false, dev: false, data: [] };
  for (const o of options) {
    const eq = o.indexOf("=");
    const key = eq < 0 ? o : o.slice(0, eq);
    if (eq < 0 && ["rw", "ro", "exec", "noexec", "suid", "nosuid", "dev", "nodev"].includes(o)) {
      if (o === "rw" || o === "ro") t.readonly = o === "ro";
      else if (o.endsWith("exec")) t.exec = o === "exec";
      else if (o.endsWith("suid")) t.suid = o === "suid";
      else t.dev = o === "dev";
      continue;
    }
    const valid = DATA[key];
    if (!valid) throw new UsageError(`${option}: unknown option "${o}"; use rw, ro, exec, noexec, suid, nosuid, dev, nodev, size=, mode=, uid=, gid=, nr_inodes= or nr_blocks=`);
    const value = o.slice(eq + 1);
    if (eq < 0 || !valid.test(value)) throw new UsageError(`${option}: ${key}=${eq < 0 ? "" : value} is not valid (size=64m, mode=1777, uid=1000)`);
    t.data = [...t.data.filter((d) => !d.startsWith(`${key}=`)), `${key}=${value}`];
  }
  return t;
}

/** The spec as --tmpfs takes it again (corerun passes it to corerun-mount). */
export function tmpfsText(t: TmpfsSpec): string {
  return `${t.target}:${[t.readonly ? "ro" : "rw", t.exec ? "exec" : "noexec", t.suid ? "suid" : "nosuid", t.dev ? "dev" : "nodev", ...t.data].join(",")}`;
}

/** Mount points the tmpfs mounts need in the rootfs: directories, as missingMountPoints takes them. */
export function tmpfsPoints(tmpfs: readonly TmpfsSpec[]): { source: string; target: string; readonly: boolean; kind: "dir" }[] {
  return tmpfs.map((t) => ({ source: "", target: t.target, readonly: false, kind: "dir" as const }));
}
