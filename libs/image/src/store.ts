import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { UsageError } from "@corerun/cli";
import { linuxSyscall, LOCK_EX, LOCK_SH, LOCK_UN, type Syscall } from "@corerun/syscall";
import { readStates, writeJsonAtomic } from "@corerun/state";
import { parseReference } from "./paths.ts";
import { ImageConfig, ImageRecord, LayerRecord, parseJson, Refs, type LayerRecord as Layer } from "./schema.ts";

/**
 * The image store under a state root:
 *
 *   ROOT/images/refs.json                     NAME:TAG → image id
 *   ROOT/images/sha256/HEX/config.json        the config blob, byte for byte (HEX is its digest)
 *   ROOT/images/sha256/HEX/image.json         its layers' diff ids, bottom first
 *   ROOT/layers/sha256/HEX/diff/              a layer unpacked (HEX is its diff id), an overlayfs lower
 *   ROOT/layers/sha256/HEX/blob, layer.json   the blob it came from, kept for export
 *   ROOT/images.lock                          held by every change
 *
 * Every image and layer is built in a `.tmp-*` directory beside its final place and renamed into
 * it once complete and verified: only a final name is ever trusted, and the `.tmp-*` leftovers of
 * a killed import are removed by the next change, under the lock.
 */
export interface StorePaths {
  images: string;
  layers: string;
  refs: string;
  lock: string;
  /** Held shared by a container while it records and mounts its image, exclusive by a removal. */
  removal: string;
}

export function storePaths(root: string): StorePaths {
  return {
    images: join(root, "images"), layers: join(root, "layers"), refs: join(root, "images", "refs.json"), lock: join(root, "images.lock"),
    removal: join(root, "images.removal.lock"),
  };
}

/** Runs fn holding an flock of `path` (LOCK_SH or LOCK_EX). */
function withFlock<T>(path: string, op: number, fn: () => T, sys: Syscall): T {
  const fd = openSync(path, "a", 0o600);
  try {
    sys.flock(fd, op);
    return fn();
  } finally {
    closeSync(fd);
  }
}

/**
 * A container takes its image under the removal lock, shared: `image rm` and `prune` hold it
 * exclusive while they look for users and delete, so an image is either seen as used (the
 * container recorded it first) or gone before the container records it (then refused here).
 */
export function withImageInUse<T>(root: string, id: string, ref: string, fn: () => T, sys: Syscall = linuxSyscall): T {
  mkdirSync(root, { recursive: true, mode: 0o700 });
  return withFlock(storePaths(root).removal, LOCK_SH, () => {
    if (!existsSync(imageDir(root, id))) throw new UsageError(`image ${ref} was removed while the container was being created; import it again`);
    return fn();
  }, sys);
}

/** For image rm and prune: no container takes an image meanwhile. */
function withRemoval<T>(root: string, fn: () => T, sys: Syscall = linuxSyscall): T {
  return withFlock(storePaths(root).removal, LOCK_EX, fn, sys);
}

const hex = (digest: string) => digest.slice("sha256:".length);

export function imageDir(root: string, id: string): string {
  return join(storePaths(root).images, "sha256", hex(id));
}

export function layerDir(root: string, diffId: string): string {
  return join(storePaths(root).layers, "sha256", hex(diffId));
}

/** The unpacked layer, an overlayfs lower directory. */
export function layerDiff(root: string, diffId: string): string {
  return join(layerDir(root, diffId), "diff");
}

/**
 * Runs fn holding the store's lock (flock, so a killed holder releases it). Leftovers of killed
 * imports are removed first: no one else can be writing them while the lock is held.
 */
export async function withStoreLock<T>(root: string, fn: () => Promise<T> | T, sys: Syscall = linuxSyscall): Promise<T> {
  const p = storePaths(root);
  mkdirSync(join(p.images, "sha256"), { recursive: true, mode: 0o700 });
  mkdirSync(join(p.layers, "sha256"), { recursive: true, mode: 0o711 });
  const fd = openSync(p.lock, "a", 0o600);
  try {
    sys.flock(fd, LOCK_EX);
    try {
      for (const dir of [p.images, p.layers]) {
        for (const n of readdirSync(dir)) if (n.startsWith(".tmp-")) rmSync(join(dir, n), { recursive: true, force: true });
      }
      return await fn();
    } finally {
      sys.flock(fd, LOCK_UN);
    }
  } finally {
    closeSync(fd);
  }
}

export function readRefs(root: string): Record<string, string> {
  const path = storePaths(root).refs;
  if (!existsSync(path)) return {};
  return parseJson(Refs, readFileSync(path, "utf8"), path);
}

export function writeRefs(root: string, refs: Record<string, string>): void {
  writeJsonAtomic(storePaths(root).refs, Object.fromEntries(Object.entries(refs).sort(([a], [b]) => a.localeCompare(b))));
}

export interface StoredImage {
  record: ImageRecord;
  /** The config blob's text; its sha256 is the id. */
  configText: string;
  config: ImageConfig;
}

export function readImage(root: string, id: string): StoredImage {
  const dir = imageDir(root, id);
  const record = parseJson(ImageRecord, readFileSync(join(dir, "image.json"), "utf8"), join(dir, "image.json"));
  const configText = readFileSync(join(dir, "config.json"), "utf8");
  return { record, configText, config: parseJson(ImageConfig, configText, join(dir, "config.json")) };
}

export function readLayer(root: string, diffId: string): Layer {
  const path = join(layerDir(root, diffId), "layer.json");
  return parseJson(LayerRecord, readFileSync(path, "utf8"), path);
}

/** Every image id in the store. */
export function listImageIds(root: string): string[] {
  const dir = join(storePaths(root).images, "sha256");
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((n) => /^[0-9a-f]{64}$/.test(n)).map((n) => `sha256:${n}`).sort();
}

/**
 * An image by reference: NAME[:TAG] through refs.json (one file read, whatever the store holds),
 * else its id, in full or as a unique prefix of at least 4 hex digits (sha256: optional).
 */
export function findImage(root: string, ref: string): string | undefined {
  const key = parseReference(ref);
  if (key !== undefined) {
    const id = readRefs(root)[key];
    if (id !== undefined) return id;
  }
  const m = /^(?:sha256:)?([0-9a-f]{4,64})$/.exec(ref);
  if (!m) return undefined;
  const matches = listImageIds(root).filter((id) => hex(id).startsWith(m[1]!));
  if (matches.length > 1) throw new UsageError(`image id prefix "${ref}" matches ${matches.length} images; give more digits`);
  return matches[0];
}

/** findImage, or a refusal that says where to look. */
export function requireImage(root: string, ref: string): string {
  const id = findImage(root, ref);
  if (id === undefined) throw new UsageError(`no image "${ref}" in the store ${storePaths(root).images}; see corerun image ls, or corerun image import FILE`);
  return id;
}

/** The tags of an image. */
export function tagsOf(refs: Record<string, string>, id: string): string[] {
  return Object.entries(refs).filter(([, v]) => v === id).map(([k]) => k);
}

/** Containers of this state root (running or not yet removed) that run on an image, by image id. */
export function imageUsers(root: string): Map<string, string[]> {
  const users = new Map<string, string[]>();
  for (const s of readStates(root)) {
    const id = s.image?.id;
    if (id) users.set(id, [...(users.get(id) ?? []), s.id]);
  }
  return users;
}

/** Layers no image refers to, for removal. */
function unusedLayers(root: string): string[] {
  const used = new Set(listImageIds(root).flatMap((id) => readImage(root, id).record.layers));
  const dir = join(storePaths(root).layers, "sha256");
  return readdirSync(dir).filter((n) => /^[0-9a-f]{64}$/.test(n)).map((n) => `sha256:${n}`).filter((d) => !used.has(d));
}

/** Removes a directory of the store by renaming it to a .tmp- name first: never half a trusted entry. */
function discard(parent: string, dir: string): void {
  const tmp = join(parent, `.tmp-rm-${process.pid}-${Date.now()}`);
  renameSync(dir, tmp);
  rmSync(tmp, { recursive: true, force: true });
}

export interface RemoveResult {
  untagged: string[];
  deleted: string[];
  layers: string[];
}

/**
 * `image rm REF`: a tag loses that tag (the image goes with its last one); an id removes the
 * image and all its tags. An image a container uses stays, and the whole call is refused.
 * Layers no image uses any more are removed with it.
 */
export function removeImage(root: string, ref: string, force = false): RemoveResult {
  return withRemoval(root, () => removeImage_(root, ref, force));
}

function removeImage_(root: string, ref: string, force: boolean): RemoveResult {
  const id = requireImage(root, ref);
  const refs = readRefs(root);
  const key = parseReference(ref);
  const byTag = key !== undefined && refs[key] === id;
  const remaining = byTag && !force ? tagsOf(refs, id).filter((t) => t !== key) : [];
  const users = imageUsers(root).get(id) ?? [];
  if (!remaining.length && users.length) {
    throw new UsageError(`image ${ref} (${hex(id).slice(0, 12)}) is used by container${users.length > 1 ? "s" : ""} ${users.join(", ")}; remove ${users.length > 1 ? "them" : "it"} first (corerun rm -f; an exited container keeps its image until rm, as in Docker)`);
  }
  const untagged = byTag && remaining.length ? [key!] : tagsOf(refs, id);
  for (const t of untagged) delete refs[t];
  writeRefs(root, refs);
  if (remaining.length) return { untagged, deleted: [], layers: [] };
  discard(storePaths(root).images, imageDir(root, id));
  const layers = unusedLayers(root);
  for (const l of layers) discard(storePaths(root).layers, layerDir(root, l));
  return { untagged, deleted: [id], layers };
}

/** `image prune`: images without a tag that no container uses, then layers no image uses. */
export function pruneImages(root: string): RemoveResult {
  return withRemoval(root, () => pruneImages_(root));
}

function pruneImages_(root: string): RemoveResult {
  const refs = readRefs(root);
  const tagged = new Set(Object.values(refs));
  const users = imageUsers(root);
  const deleted = listImageIds(root).filter((id) => !tagged.has(id) && !users.has(id));
  for (const id of deleted) discard(storePaths(root).images, imageDir(root, id));
  const layers = unusedLayers(root);
  for (const l of layers) discard(storePaths(root).layers, layerDir(root, l));
  return { untagged: [], deleted, layers };
}

/** `image tag SOURCE TARGET`: TARGET (NAME[:TAG]) names SOURCE's image, moved from any other. */
export function tagImage(root: string, source: string, target: string, what = "target"): string {
  const id = requireImage(root, source);
  const key = parseReference(target);
  if (key === undefined) throw new UsageError(`${what} "${target}" is not an image reference; use NAME[:TAG] with lowercase letters, digits and . _ - / (e.g. busybox:1.36)`);
  writeRefs(root, { ...readRefs(root), [key]: id });
  return key;
}
