import { chownSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { nodeCommand, defineTool, exitCodeOf, printJson, UsageError, waitChild, writeOut, type ToolContext, type ToolSpec } from "@corerun/cli";
import {
  commitImage, exportImage, findImage, importImage, imageUsers, layerDiff, listImageIds, pruneImages, readImage, readLayer, readRefs, removeImage,
  requireImage, storePaths, tagImage, tagsOf, withImageInUse, withStoreLock, type ExecConfig, type ImportEvent, type RemoveResult,
} from "@corerun/image";
import {
  checkStateRoot, containerDir, containerIdOf, hostIdOf, idMapText, mapsKey, parseIdMapText, readStates, stateRoot, updateState, type IdRange, type State,
} from "@corerun/state";
import { envp, isErrno, linuxSyscall as sys, MNT_DETACH, MOUNT_ATTR_IDMAP, startInNamespaces, WEXITED } from "@corerun/syscall";
import { rootlessMaps } from "./rootless.ts";
import { missingMountPoints, mountOverlay, type VolumeSpec } from "@corerun/rootfs";
import type { ArgsDef } from "citty";

/** What `corerun run IMAGE` takes from the image, merged with the flags as Docker does. */
export interface ImageRun {
  /** readOnly: --read-only, no upper directory. */
  image: { id: string; ref: string; lower: string[]; readOnly: boolean };
  command: string[];
  env: string[];
  workdir: string | undefined;
  user: string | undefined;
  /** The config's ExposedPorts ("80/tcp"), which --publish-all publishes on free host ports. */
  exposed: string[];
  /** The config's StopSignal, which corerun stop sends first unless --stop-signal is given. */
  stopSignal: string | undefined;
  /** The config's Labels, under the container's own (--label). */
  labels: Record<string, string>;
  /** The config's HEALTHCHECK, which --health-* options change and --no-healthcheck turns off. */
  healthcheck: ExecConfig["Healthcheck"];
}

/**
 * Whether `corerun run WORD …` runs an image, and with what. WORD names an image when no
 * --rootfs is given, it does not start with / or . (a path is always a command), and the store
 * has an image of that reference or id; otherwise it is a command on --rootfs or the default
 * rootfs, as before. The image's Entrypoint and Cmd make the command: words after the image
 * replace Cmd, --entrypoint replaces Entrypoint and drops Cmd; its Env comes before -e values,
 * its WorkingDir and User are used unless -w and --user are given, its StopSignal unless
 * --stop-signal is.
 */
export function imageRun(
  ctx: Pick<ToolContext, "values" | "tail"> & { flags?: Record<string, boolean> }, root: string,
  mode: { rootless: boolean; userns?: { uidMap: IdRange[]; gidMap: IdRange[] } | undefined; pin?: { id: string; ref: string } | undefined },
): ImageRun | undefined {
  const first = ctx.tail[0];
  const word = !ctx.values.rootfs?.length && first !== undefined && !/^[/.]/.test(first) ? first : undefined;
  // A container started again keeps the image it was created from (its writable layer lies on
  // that image's layers), also when its reference has been given to another image since.
  const id = word === undefined ? undefined : mode.pin?.ref === word ? mode.pin.id : findImage(root, word);
  // A --rootfs container's --read-only is corerun-mount's (its / remounted read-only).
  if (word === undefined || id === undefined) return undefined;
  const { record, config } = readImage(root, id);
  if (mode.rootless && mode.userns) checkRootlessLayers(root, word, record.layers, mode.userns);
  const exec = config.config ?? {};
  const ep = ctx.values.entrypoint?.at(-1);
  const entrypoint = ep !== undefined ? (ep === "" ? [] : [ep]) : (exec.Entrypoint ?? []);
  const args = ctx.tail.length > 1 ? ctx.tail.slice(1) : ep !== undefined ? [] : (exec.Cmd ?? []);
  const command = [...entrypoint, ...args];
  if (!command.length) throw new UsageError(`image ${word} has no Entrypoint or Cmd; give a command: corerun run ${word} CMD [ARGS...]`);
  return {
    image: { id, ref: word, lower: [...record.layers].reverse().map((d) => layerDiff(root, d)), readOnly: ctx.flags?.["read-only"] ?? false },
    command,
    env: exec.Env ?? [],
    workdir: exec.WorkingDir || undefined,
    user: exec.User || undefined,
    exposed: Object.keys(exec.ExposedPorts ?? {}),
    stopSignal: exec.StopSignal || undefined,
    labels: exec.Labels ?? {},
    healthcheck: exec.Healthcheck,
  };
}

/**
 * A rootless container runs on layers unpacked through its own maps: its user namespace shows
 * their files with the ids the image gives them. (An unprivileged user cannot idmap a mount of
 * the host's filesystem: mount_setattr needs CAP_SYS_ADMIN over the filesystem's user namespace.)
 */
function checkRootlessLayers(root: string, ref: string, layers: readonly string[], userns: { uidMap: IdRange[]; gidMap: IdRange[] }): void {
  const key = mapsKey(userns.uidMap, userns.gidMap);
  for (const d of layers) {
    const had = readLayer(root, d).userns;
    if (had === key) continue;
    throw new UsageError(`image ${ref}: its layer ${short(d)} was unpacked ${had ? `for the maps ${had}` : "by host root"}, and this rootless container maps ${key}; run it with the maps it was imported with (drop --uidmap/--gidmap, or restore /etc/subuid), or remove and import it again`);
  }
}

/** The variable that tells a command it runs as root of the store's user namespace (storeOwner). */
const STORE_USERNS_ENV = "CORERUN_STORE_USERNS";

/** Inside the store's user namespace: its maps as a layer records them; undefined elsewhere. */
function storeUserns(): string | undefined {
  if (process.env[STORE_USERNS_ENV] !== "1" || process.geteuid?.() !== 0) return undefined;
  const uidMap = parseIdMapText(readFileSync("/proc/self/uid_map", "utf8"));
  // The host's own namespace (the variable set by hand): host root's store, as without it.
  if (uidMap.length === 1 && uidMap[0]!.host === 0 && uidMap[0]!.size === 4294967295) return undefined;
  return mapsKey(uidMap, parseIdMapText(readFileSync("/proc/self/gid_map", "utf8")));
}

/**
 * Rootless, a command that writes the image store runs again, with the same arguments, as root of
 * a new user namespace with the user's maps (its own uid as root, its /etc/subuid range for ids 1
 * and up): there it may give unpacked files the image's owners (which land as the user's ids),
 * read and remove every file of the store, and set file capabilities. Node cannot enter a user
 * namespace itself; the native helper starts the copy in one. Returns its status, or undefined
 * to go on here (as root, or already inside).
 */
async function asStoreOwner(ctx: ToolContext): Promise<number | undefined> {
  const uid = process.geteuid?.() ?? 0;
  if (uid === 0) return undefined;
  const root = rootOf(ctx);
  checkStateRoot(root);
  const { maps, helpers } = rootlessMaps(uid, process.getegid?.() ?? 0);
  const argv = nodeCommand(process.argv[1]!, process.argv.slice(2));
  const pid = startInNamespaces(sys, {
    flags: 0, path: process.execPath, argv, env: [...envp(), `CORERUN_ROOT=${root}`, `${STORE_USERNS_ENV}=1`],
    userns: { uidMap: idMapText(maps.uidMap), gidMap: idMapText(maps.gidMap), helpers },
  });
  return exitCodeOf(await waitChild(sys, pid));
}

/** RunConfig's image and user, present only when there are some. */
export function imageAndUser(ctx: Pick<ToolContext, "values">, img: ImageRun | undefined): { image?: ImageRun["image"]; user?: string } {
  const user = ctx.values.user?.at(-1) ?? img?.user;
  return { ...(img ? { image: img.image } : {}), ...(user !== undefined ? { user } : {}) };
}

/** The command of a --rootfs container: --entrypoint, when given, goes first. */
export function withEntrypoint(ctx: Pick<ToolContext, "values">, tail: string[]): string[] {
  const ep = ctx.values.entrypoint?.at(-1);
  return ep ? [ep, ...tail] : tail;
}

/**
 * The container's own overlayfs: the image's layers as read-only lowers, an upper and a work
 * directory of its own under its state directory, merged at ROOT/ID/rootfs, which becomes its
 * rootfs. Recorded in the state before anything is made, so that teardown and `corerun cleanup`
 * find it after a crash. Returns the merged directory.
 *
 * In a user namespace the overlayfs itself cannot be idmapped (mount_setattr refuses it with
 * EINVAL), but its layers can (Linux 5.19+): each lower is an idmapped mount of the store's
 * layer at ROOT/ID/lower/N, through a user namespace with the container's maps, so that files
 * of host root show as container root's; the upper directory belongs to container root.
 *
 * Rootless, nothing is mounted here (the host's mount namespace is not the user's to change):
 * the directories are made and recorded, and corerun-mount mounts the overlayfs inside the
 * container's user and mount namespaces (overlayfs allows that since Linux 5.11), where it goes
 * with the namespace. The store of a rootless user holds its layers with the ids of its own user
 * namespace already (see `corerun image import`), so no layer needs an idmap.
 */
export function mountImage(
  root: string, image: ImageRun["image"], c: { dir: string; path: string }, userns: { uidMap: IdRange[]; gidMap: IdRange[] } | undefined,
  targets: readonly (VolumeSpec & { kind?: "dir" | "file" })[], rootless = false,
): string {
  return withImageInUse(root, image.id, image.ref, () => (rootless ? prepareRootless(image, c) : mountImage_(root, image, c, userns, targets)));
}

/** The rootless container's upper, work and merged directories, recorded; corerun-mount mounts them. */
function prepareRootless(image: ImageRun["image"], c: { dir: string; path: string }): string {
  const target = join(c.dir, "rootfs");
  const { upper, work } = rootlessDirs(c.dir);
  const { id, ref, lower } = image;
  updateState(c.path, (s) => ({ image: { id, ref, lower, target, upper, work }, config: { ...s.config, rootfs: target } }));
  // A start again (corerun start, a restart) finds the writable layer of the last run, kept.
  for (const d of [target, upper, work]) mkdirSync(d, { recursive: true, mode: 0o755 });
  return target;
}

const rootlessDirs = (dir: string) => ({ upper: join(dir, "upper"), work: join(dir, "work") });

/** corerun-mount's options for a rootless image container: the overlayfs it mounts first. */
export function overlayArgs(lower: readonly string[], dir: string): string[] {
  const { upper, work } = rootlessDirs(dir);
  return [...lower.flatMap((l) => ["--overlay-lower", l]), "--overlay-upper", upper, "--overlay-work", work];
}

function mountImage_(
  root: string, image: ImageRun["image"], c: { dir: string; path: string }, userns: { uidMap: IdRange[]; gidMap: IdRange[] } | undefined,
  targets: readonly (VolumeSpec & { kind?: "dir" | "file" })[],
): string {
  const target = join(c.dir, "rootfs");
  const upper = image.readOnly ? undefined : join(c.dir, "upper");
  const work = image.readOnly ? undefined : join(c.dir, "work");
  const init = image.readOnly ? join(c.dir, "init") : undefined;
  const layers = userns ? image.lower.map((_, i) => join(c.dir, "lower", String(i))) : image.lower;
  const lower = init ? [init, ...layers] : layers;
  const { id, ref } = image;
  updateState(c.path, (s) => ({ image: { id, ref, lower, target, upper, work }, config: { ...s.config, rootfs: target } }));
  // A container started again (start, --restart) finds its upper and work directories as its last
  // run left them: its writes are kept, as Docker keeps them.
  for (const d of [target, upper, work, init]) if (d) mkdirSync(d, { recursive: true, mode: 0o755 });
  if (userns) {
    const uid = hostIdOf(userns.uidMap, 0);
    const gid = hostIdOf(userns.gidMap, 0);
    if (uid === undefined || gid === undefined) throw new UsageError(`image ${image.ref}: the user namespace maps no host id to container root; map container id 0`);
    if (upper) chownSync(upper, uid, gid);
    idmapLayers(image, layers, userns);
  }
  // Relative paths: every lower of a deep image fits in the one page of mount options.
  const base = userns ? c.dir : storePaths(root).layers;
  const mount = (o: { upper?: string; work?: string }) => mountOverlay(sys, target, { lower, ...o }, base, `image ${image.ref}`);
  if (init) {
    // Without an upper nothing can be created in the tree, so the mount points corerun needs and
    // the image lacks go into a small layer of the container's own, on top: found through a
    // first mount, made in the layer, then mounted again.
    mount({});
    let missing: ReturnType<typeof missingMountPoints>;
    try {
      missing = missingMountPoints(target, targets);
    } finally {
      sys.umount2(target, MNT_DETACH);
    }
    for (const m of missing) {
      const p = join(init, relative(target, m.path));
      if (m.kind === "dir") mkdirSync(p, { recursive: true, mode: 0o755 });
      else {
        mkdirSync(dirname(p), { recursive: true, mode: 0o755 });
        writeFileSync(p, "", { mode: 0o644 });
      }
    }
    mount({});
  } else mount({ upper, work });
  return target;
}

/** Each layer of the store, idmapped through a user namespace with the container's maps, at its lower path. */
function idmapLayers(image: ImageRun["image"], lower: string[], userns: { uidMap: IdRange[]; gidMap: IdRange[] }): void {
  const ns = usernsWithMaps(userns);
  try {
    for (const [i, layer] of image.lower.entries()) {
      mkdirSync(lower[i]!, { recursive: true, mode: 0o755 });
      const tree = sys.openTree(layer, false);
      try {
        try {
          sys.mountSetattr("", MOUNT_ATTR_IDMAP, 0, false, { fd: tree, usernsFd: ns });
        } catch (err) {
          throw new Error(`image ${image.ref}: the kernel refuses to idmap its layer ${layer} (idmapped overlayfs layers need Linux 5.19 and a filesystem that supports idmapped mounts); run it without --userns/--uidmap`, { cause: err });
        }
        sys.moveMount(tree, lower[i]!);
      } finally {
        closeSync(tree);
      }
    }
  } finally {
    closeSync(ns);
  }
}

/**
 * A user namespace with these maps, as an fd: its process is killed before it runs anything (the
 * namespace lives on through the fd). Node cannot create one itself; the native helper can.
 */
function usernsWithMaps(userns: { uidMap: IdRange[]; gidMap: IdRange[] }): number {
  let fd: number | undefined;
  const pid = startInNamespaces(sys, {
    flags: 0, path: "/bin/true", argv: ["true"], env: [],
    userns: { uidMap: idMapText(userns.uidMap), gidMap: idMapText(userns.gidMap) },
    prepare(p) {
      fd = openSync(`/proc/${p}/ns/user`, "r");
      sys.kill(p, 9);
    },
  });
  sys.waitid(pid, WEXITED);
  return fd!;
}

/**
 * Teardown's step for an image container: the overlayfs goes (detached: the container's own
 * mount namespace may still hold a reference while its last process dies), then its idmapped
 * lowers, then the upper and work directories, unless keepLayer (an exited detached container
 * keeps its writable layer until rm, as Docker does; nothing stays mounted). Only paths inside
 * the container's own state directory are unmounted or removed. A rootless container's overlayfs
 * was mounted in its own mount namespace and went with it; its upper directory holds files of
 * every id of its user namespace, which only container root may remove (removeAsContainerRoot).
 */
export function unmountImage(root: string, id: string, image: NonNullable<State["image"]>, userns?: { uidMap: IdRange[]; gidMap: IdRange[] }, keepLayer = false): void {
  const own = containerDir(root, id);
  for (const p of [image.target, image.upper, image.work]) {
    if (p !== undefined && dirname(resolve(p)) !== own) throw new Error(`state of ${id} names ${p} for its overlayfs, outside ${own}; left alone`);
  }
  const rootless = process.geteuid?.() !== 0;
  const ownLowers = image.lower.filter((l) => dirname(dirname(resolve(l))) === own);
  for (const m of rootless ? [] : [image.target, ...ownLowers]) {
    try {
      sys.umount2(m, MNT_DETACH);
    } catch (err) {
      // EINVAL: not mounted (the crash came before the mount); ENOENT: gone already.
      if (!isErrno(err, "EINVAL", "ENOENT")) throw err;
    }
  }
  for (const l of ownLowers) if (existsSync(l)) rmdirSync(l);
  if (existsSync(join(own, "lower"))) rmdirSync(join(own, "lower"));
  // --read-only: the container's own layer of mount points.
  rmSync(join(own, "init"), { recursive: true, force: true });
  const written = keepLayer ? [] : [image.upper, image.work].filter((d): d is string => d !== undefined && existsSync(d));
  if (rootless && userns && written.length) removeAsContainerRoot(written, userns);
  else for (const d of written) rmSync(d, { recursive: true, force: true });
  if (existsSync(image.target)) rmdirSync(image.target);
}

/**
 * rm -rf of paths, run as root of a new user namespace with these maps: a rootless user owns only
 * some of the ids its containers write with, and may not remove the files of the others itself.
 */
export function removeAsContainerRoot(paths: string[], userns: { uidMap: IdRange[]; gidMap: IdRange[] }): void {
  if (!paths.length) return;
  // rm -rf as a (mapped) root: never an empty, relative or root path.
  for (const p of paths) if (!p.startsWith("/") || resolve(p) === "/") throw new Error(`refusing to remove ${JSON.stringify(p)}: not a container's own directory`);
  const helpers = userns.uidMap.length > 1 || userns.gidMap.length > 1;
  const pid = startInNamespaces(sys, {
    flags: 0, path: "/bin/rm", argv: ["rm", "-rf", "--", ...paths], env: [], nullStdio: true,
    userns: { uidMap: idMapText(userns.uidMap), gidMap: idMapText(userns.gidMap), helpers },
  });
  const r = sys.waitid(pid, WEXITED);
  if (r?.exitCode !== 0 || paths.some((p) => existsSync(p))) throw new Error(`removing ${paths.join(" ")} as the container's root failed (${r?.exitCode !== undefined ? `status ${r.exitCode}` : `signal ${r?.signal}`}); remove them with corerun cleanup`);
}

const rootArg = { root: { type: "string", valueHint: "DIR", description: "state directory, which holds the store (default /run/corerun; env CORERUN_ROOT)" } } as const satisfies ArgsDef;
const rootOf = (ctx: ToolContext) => stateRoot(ctx.values.root?.at(-1));
const short = (id: string) => id.slice(7, 19);

function humanSize(n: number): string {
  const units = ["B", "kB", "MB", "GB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${i ? n.toFixed(n < 10 ? 2 : 1) : n} ${units[i]}`;
}

/**
 * Progress of an import on stdout, beside its result (as `docker load` does; stderr keeps only
 * errors): on a terminal a bar per layer that redraws in place, otherwise one plain line per layer.
 */
export function progress(stream: NodeJS.WriteStream = process.stdout): (e: ImportEvent) => void {
  const tty = stream.isTTY === true;
  let current = "";
  const bar = (done: number, total: number) => {
    const width = 30;
    const filled = total > 0 ? Math.min(width, Math.round((done / total) * width)) : width;
    return `[${"=".repeat(Math.max(0, filled - 1))}${filled ? ">" : ""}${" ".repeat(width - filled)}] ${humanSize(done)}/${humanSize(total)}`;
  };
  return (e) => {
    if (e.t === "image") return;
    if (e.t === "bytes") {
      if (tty) stream.write(`\r\x1b[2K${current} ${bar(e.done, e.total)}`);
      return;
    }
    current = `layer ${e.index + 1}/${e.count} ${e.diffId ? short(e.diffId) : ""}`.trimEnd();
    if (e.status === "unpacking") {
      if (tty) stream.write(`\r\x1b[2K${current} ${bar(0, e.size)}`);
      return;
    }
    const what = e.status === "exists" ? "already in the store" : `${humanSize(e.size)} unpacked`;
    stream.write(tty ? `\r\x1b[2K${current}: ${what}\n` : `${current}: ${what}\n`);
  };
}

const importCmd = defineTool({
  name: "corerun image import",
  description: "Import an image: an OCI layout (directory or oci-archive tar), a docker-archive, or a rootfs tarball.",
  usage: "[options] FILE|DIR",
  args: { ...rootArg, name: { type: "string", valueHint: "NAME[:TAG]", description: "the reference the image gets (default: the archive's own; none for a rootfs tarball)" } },
  tail: "command",
  notes: [
    "Every blob is checked against its digest, every layer unpacked once into ROOT/layers and\nshared by the images that have it; gzip and zstd layers; whiteouts as overlayfs reads them.\nEntries with absolute paths, .., or symlinks and hard links out of the layer are refused.",
  ],
  examples: ["sudo corerun image import busybox.tar", "sudo corerun image import --name alpine:3.20 alpine-minirootfs.tar.gz"],
  async run(ctx) {
    if (ctx.tail.length !== 1) throw new UsageError("give one FILE or DIR to import; usage: corerun image import [--name REF] FILE|DIR");
    const input = resolve(ctx.tail[0]!);
    const owner = await asStoreOwner(ctx);
    if (owner !== undefined) return owner;
    const out = await importImage(rootOf(ctx), input, { name: ctx.values.name?.at(-1), onEvent: progress(), userns: storeUserns() });
    for (const img of out) {
      if (img.refs.length) for (const r of img.refs) writeOut(`Loaded image: ${r}\n`);
      else writeOut(`Loaded image ID: ${img.id}\n`);
    }
    return 0;
  },
});

const lsCmd = defineTool({
  name: "corerun image ls",
  description: "List the images of the store: reference, id, creation time, size of the layers' blobs.",
  usage: "[options]",
  args: { ...rootArg, json: { type: "boolean", description: "print a JSON array" } },
  tail: "none",
  run(ctx) {
    const root = rootOf(ctx);
    const refs = readRefs(root);
    const images = listImageIds(root).map((id) => {
      const { record, config } = readImage(root, id);
      const size = record.layers.reduce((n, d) => n + readLayer(root, d).size, 0);
      return { id, tags: tagsOf(refs, id), created: config.created ?? null, size, layers: record.layers.length };
    });
    if (ctx.flags.json) {
      printJson(images);
      return 0;
    }
    const rows = [["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]];
    for (const img of images) {
      const tags = img.tags.length ? img.tags : ["<none>:<none>"];
      for (const t of tags) {
        const colon = t.lastIndexOf(":");
        rows.push([t.slice(0, colon), t.slice(colon + 1), short(img.id), img.created?.replace(/\.\d+Z$/, "Z") ?? "-", humanSize(img.size)]);
      }
    }
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)) + 3);
    for (const r of rows) writeOut(`${r.map((cell, i) => (i < r.length - 1 ? cell.padEnd(widths[i]!) : cell)).join("")}\n`);
    return 0;
  },
});

const inspectCmd = defineTool({
  name: "corerun image inspect",
  description: "Print images as JSON: id, references, config (Entrypoint, Cmd, Env, …), layers and where they are stored.",
  usage: "[options] REF...",
  args: rootArg,
  tail: "command",
  run(ctx) {
    const root = rootOf(ctx);
    if (!ctx.tail.length) throw new UsageError("name the images to inspect; see corerun image ls");
    const refs = readRefs(root);
    const users = imageUsers(root);
    const out = ctx.tail.map((ref) => {
      const id = requireImage(root, ref);
      const { record, config } = readImage(root, id);
      return {
        Id: id, RepoTags: tagsOf(refs, id), Created: config.created ?? null, Architecture: config.architecture ?? null, Os: config.os ?? null,
        Config: config.config ?? {}, RootFS: { Type: "layers", Layers: record.layers }, History: config.history ?? [],
        LayerDirs: record.layers.map((d) => layerDiff(root, d)), Containers: users.get(id) ?? [],
      };
    });
    writeOut(`${JSON.stringify(out, null, 2)}\n`);
    return 0;
  },
});

function printRemoved(r: RemoveResult): void {
  for (const t of r.untagged) writeOut(`Untagged: ${t}\n`);
  for (const id of r.deleted) writeOut(`Deleted: ${id}\n`);
  for (const l of r.layers) writeOut(`Deleted layer: ${l}\n`);
}

const rmCmd = defineTool({
  name: "corerun image rm",
  description: "Remove images: a reference loses that tag (the image goes with its last one), an id removes the image; refused while a container uses it.",
  usage: "[options] REF...",
  args: { ...rootArg, force: { type: "boolean", alias: "f", description: "remove the image behind a tag with all its tags" } },
  tail: "command",
  async run(ctx) {
    const root = rootOf(ctx);
    if (!ctx.tail.length) throw new UsageError("name the images to remove; see corerun image ls");
    const owner = await asStoreOwner(ctx);
    if (owner !== undefined) return owner;
    await withStoreLock(root, () => {
      for (const ref of ctx.tail) printRemoved(removeImage(root, ref, ctx.flags.force ?? false));
    });
    return 0;
  },
});

const tagCmd = defineTool({
  name: "corerun image tag",
  description: "Give an image another reference, NAME[:TAG] (moved from the image that had it).",
  usage: "[options] SOURCE TARGET",
  args: rootArg,
  tail: "command",
  async run(ctx) {
    const root = rootOf(ctx);
    if (ctx.tail.length !== 2) throw new UsageError("usage: corerun image tag SOURCE TARGET (SOURCE a reference or id, TARGET NAME[:TAG])");
    const owner = await asStoreOwner(ctx);
    if (owner !== undefined) return owner;
    await withStoreLock(root, () => tagImage(root, ctx.tail[0]!, ctx.tail[1]!));
    return 0;
  },
});

const pruneCmd = defineTool({
  name: "corerun image prune",
  description: "Remove images that have no reference and no container, the layers no image uses, and what killed imports left.",
  usage: "[options]",
  args: rootArg,
  tail: "none",
  async run(ctx) {
    const root = rootOf(ctx);
    const owner = await asStoreOwner(ctx);
    if (owner !== undefined) return owner;
    printRemoved(await withStoreLock(root, () => pruneImages(root)));
    return 0;
  },
});

const exportCmd = defineTool({
  name: "corerun image export",
  description: "Write an image as an OCI layout in a tar (oci-archive), which corerun image import, skopeo and podman load read.",
  usage: "[options] REF FILE",
  args: rootArg,
  tail: "command",
  async run(ctx) {
    if (ctx.tail.length !== 2) throw new UsageError("usage: corerun image export REF FILE");
    const file = resolve(ctx.tail[1]!);
    if (!existsSync(dirname(file))) throw new UsageError(`${file}: its directory does not exist`);
    const r = await exportImage(rootOf(ctx), ctx.tail[0]!, file);
    writeOut(`${r.id}\n`);
    return 0;
  },
});

export const imageTool: ToolSpec = defineTool({
  name: "corerun image",
  description: "Manage the images of the store: import, ls, inspect, rm, tag, prune, export.",
  usage: "COMMAND [options]",
  args: rootArg,
  tail: "none",
  examples: ["sudo corerun image import busybox-oci.tar", "sudo corerun image ls", "sudo corerun run busybox:latest echo hi"],
  subCommands: { import: importCmd, ls: lsCmd, inspect: inspectCmd, rm: rmCmd, tag: tagCmd, prune: pruneCmd, export: exportCmd },
});

export const commitTool: ToolSpec = defineTool({
  name: "corerun commit",
  description: "Make a new image from an image container, running or exited (run -d, until rm): its writes become one more layer on its image's.",
  usage: "[options] NAME|ID REF",
  args: rootArg,
  tail: "command",
  examples: ["sudo corerun commit web web:snapshot", "sudo corerun commit setup busybox:ready   # setup ran with run -d and has exited"],
  async run(ctx) {
    const root = rootOf(ctx);
    if (ctx.tail.length !== 2) throw new UsageError("usage: corerun commit NAME|ID REF");
    const [name, ref] = ctx.tail as [string, string];
    // An exited detached container keeps its upper directory until rm: it is committed as it was left.
    const state = readStates(root, (raw) => raw.id === name || raw.config?.name === name).find((s) => (s.id === name || s.config.name === name) && (s.status === "running" || (s.status === "stopped" && s.detached?.finished !== undefined)));
    if (!state) throw new UsageError(`no running or exited container has the name or id "${name}"; see corerun ps -a`);
    if (!state.image?.upper) throw new UsageError(`container ${name} does not run on an image's overlayfs with an upper directory (it has --rootfs or --read-only); nothing to commit`);
    const owner = await asStoreOwner(ctx);
    if (owner !== undefined) return owner;
    const target = state.image.target;
    const exclude = new Set((state.mountPoints ?? []).map((m) => relative(target, m.path)).filter((p) => !p.startsWith("..")));
    // As root of the store's user namespace, the upper directory shows container ids already.
    const userns = storeUserns();
    const ns = userns === undefined ? state.config.userns : undefined;
    const ids = ns && { uid: (h: number) => containerIdOf(ns.uidMap, h), gid: (h: number) => containerIdOf(ns.gidMap, h), rootUid: hostIdOf(ns.uidMap, 0) ?? 0 };
    const r = await commitImage(root, {
      upper: state.image.upper, exclude, parent: state.image.id, ref, createdBy: `corerun commit ${name} (${state.config.command.join(" ")})`, ids, userns,
    });
    writeOut(`${r.id}\n`);
    return 0;
  },
});
