import { realpathSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { UsageError } from "@corerun/cli";

export interface VolumeSpec {
  source: string;
  target: string;
  readonly: boolean;
  /** Mapped through the container's user namespace (Podman's idmap option). */
  idmap?: boolean;
}

/**
 * Parses -v HOST:CTR[:OPTIONS] as Docker does, OPTIONS being ro or rw and, as in Podman, idmap
 * (comma-separated): a relative host path is resolved against the current directory; the
 * container path must be absolute and may not climb with "..".
 */
export function parseVolume(spec: string, cwd = process.cwd()): VolumeSpec {
  const parts = spec.split(":");
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === "")) {
    throw new UsageError(`-v "${spec}": expected HOST_PATH:CONTAINER_PATH[:ro|rw][,idmap]`);
  }
  const [host, target, mode] = parts as [string, string, string | undefined];
  const options = mode === undefined ? [] : mode.split(",");
  for (const o of options) {
    if (o !== "ro" && o !== "rw" && o !== "idmap") throw new UsageError(`-v "${spec}": unknown mode "${o}"; use ro or rw, and idmap`);
  }
  if (options.includes("ro") && options.includes("rw")) throw new UsageError(`-v "${spec}": ro and rw together; give one`);
  return bindOf(host, target, { readonly: options.includes("ro"), idmap: options.includes("idmap") }, `-v "${spec}"`, cwd);
}

/**
 * A bind mount of an existing host path (relative to cwd) at an absolute container path without
 * ".." (-v, --mount type=bind); `option` names the input in refusals.
 */
export function bindOf(host: string, target: string, opts: { readonly: boolean; idmap: boolean }, option: string, cwd = process.cwd()): VolumeSpec {
  if (!target.startsWith("/")) throw new UsageError(`${option}: container path "${target}" must be absolute`);
  if (target.split("/").includes("..")) throw new UsageError(`${option}: container path may not contain ".."`);
  if (target.replace(/\/+$/, "") === "") throw new UsageError(`${option}: cannot mount over the container's /`);
  const source = resolve(cwd, host);
  try {
    statSync(source);
  } catch {
    throw new UsageError(`${option}: host path ${source} does not exist; create it first`);
  }
  return { source, target: target.replace(/\/+$/, ""), readonly: opts.readonly, idmap: opts.idmap };
}

/** Checks a --rootfs value: it must be a directory. Shared by corerun and corerun-mount. */
export function checkRootfs(value: string | undefined): string {
  if (value === undefined) throw new UsageError("--rootfs is required: the directory to use as the container's /");
  const path = resolve(value);
  let isDir = false;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    throw new UsageError(`--rootfs ${value}: no such directory; build one with tools/rootfs/build.sh`);
  }
  if (!isDir) throw new UsageError(`--rootfs ${value}: not a directory`);
  // Symlinks resolved once, so that every path corerun derives inside the rootfs is a real one.
  return realpathSync(path);
}

