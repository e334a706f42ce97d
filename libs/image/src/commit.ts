import { createHash } from "node:crypto";
import { closeSync, createReadStream, createWriteStream, mkdtempSync, openSync, fsyncSync, renameSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { pack as tarPack, type Pack } from "tar-stream";
import { UsageError } from "@corerun/cli";
import type { Syscall } from "@corerun/syscall";
import { _addImage, _ingestLayer, ociArch, type _Ctx } from "./import.ts";
import { packTree, type PackOptions } from "./pack.ts";
import { checkReference } from "./paths.ts";
import { MEDIA } from "./schema.ts";
import { readImage, readLayer, readRefs, requireImage, storePaths, tagsOf, withStoreLock, writeRefs, layerDir } from "./store.ts";
import { digester } from "./unpack.ts";

export interface CommitOptions {
  /** The container's overlayfs upper directory. */
  upper: string;
  /** Paths (relative to the root) that corerun made as mount points: not the container's data. */
  exclude: ReadonlySet<string>;
  /** The image the container runs. */
  parent: string;
  ref: string;
  /** What history says made the layer. */
  createdBy: string;
  /** The container's user namespace: its upper directory holds host ids, the layer container ids. */
  ids?: PackOptions["ids"];
  /** Run as root of a rootless store's user namespace with these maps (see ImportOptions). */
  userns?: string | undefined;
  sys?: Syscall;
}

/**
 * `corerun commit`: the container's upper directory becomes one more layer (gzip; whiteouts and
 * opaque directories in their tar form) on top of its image's, and a new config the image's
 * with that diff id and a history entry. Tagged REF.
 */
export async function commitImage(root: string, opts: CommitOptions): Promise<{ id: string; ref: string }> {
  const ref = checkReference(opts.ref, "image reference");
  const parent = readImage(root, opts.parent);
  return withStoreLock(root, async () => {
    const tmp = mkdtempSync(join(storePaths(root).layers, ".tmp-commit-"));
    const ctx: _Ctx = { root, input: `commit ${ref}`, opts: { sys: opts.sys, userns: opts.userns }, added: [], events: () => undefined };
    try {
      const blob = join(tmp, "layer.tar.gz");
      const pack = tarPack();
      const inner = digester();
      const written = pipeline(pack as unknown as NodeJS.ReadableStream, inner, createGzip(), createWriteStream(blob));
      await packTree(opts.upper, pack, { overlay: true, exclude: opts.exclude, ids: opts.ids, sys: opts.sys });
      await written;
      const diffId = inner.digest();
      await _ingestLayer(ctx, blob, { diffId, mediaType: MEDIA.ociLayerGzip }, 0, 1);
      const now = new Date().toISOString();
      const config = JSON.parse(parent.configText) as Record<string, unknown> & { rootfs: { diff_ids: string[] }; history?: unknown[] };
      const next = {
        ...config,
        created: now,
        rootfs: { ...config.rootfs, diff_ids: [...config.rootfs.diff_ids, diffId] },
        history: [...(config.history ?? []), { created: now, created_by: opts.createdBy }],
      };
      const configText = JSON.stringify(next);
      const id = `sha256:${createHash("sha256").update(configText).digest("hex")}`;
      _addImage(root, { id, configText, layers: [...parent.record.layers, diffId], refs: [ref] });
      writeRefs(root, { ...readRefs(root), [ref]: id });
      return { id, ref };
    } catch (err) {
      for (const l of ctx.added) rmSync(layerDir(root, l), { recursive: true, force: true });
      throw err;
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }, opts.sys);
}

/**
 * `corerun image export REF FILE`: an OCI image layout as a tar (what `skopeo copy … oci-archive:`
 * writes and `corerun image import` reads): the config byte for byte, so the image keeps its id,
 * each layer's blob as it was imported, and the references in index.json's annotations.
 */
export async function exportImage(root: string, refOrId: string, file: string): Promise<{ id: string; refs: string[] }> {
  const id = requireImage(root, refOrId);
  const image = readImage(root, id);
  const refs = tagsOf(readRefs(root), id);
  const layers = image.record.layers.map((d) => ({ ...readLayer(root, d), path: join(layerDir(root, d), "blob") }));
  const json = (v: unknown) => Buffer.from(JSON.stringify(v));
  const digest = (b: Buffer | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
  const configDigest = digest(image.configText);
  if (configDigest !== id) throw new UsageError(`image ${refOrId}: its config in the store no longer has the digest ${id}; the store was altered`);
  const manifest = json({
    schemaVersion: 2,
    mediaType: MEDIA.ociManifest,
    config: { mediaType: MEDIA.ociConfig, digest: id, size: Buffer.byteLength(image.configText) },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  });
  const manifestDesc = { mediaType: MEDIA.ociManifest, digest: digest(manifest), size: manifest.length, platform: { architecture: image.config.architecture ?? ociArch(), os: image.config.os ?? "linux" } };
  const index = json({
    schemaVersion: 2,
    mediaType: MEDIA.ociIndex,
    manifests: (refs.length ? refs : [undefined]).map((r) => ({
      ...manifestDesc,
      ...(r ? { annotations: { "org.opencontainers.image.ref.name": r, "io.containerd.image.name": r } } : {}),
    })),
  });
  const tmp = join(dirname(file), `.${process.pid}.export.tmp`);
  let out: number;
  try {
    out = openSync(tmp, "wx", 0o644);
  } catch (err) {
    throw new UsageError(`${file}: cannot write it (${(err as NodeJS.ErrnoException).code}); give a FILE in a directory you can write`);
  }
  const pack = tarPack();
  const written = pipeline(pack as unknown as NodeJS.ReadableStream, createWriteStream("", { fd: out }));
  try {
    const add = (name: string, body: Buffer | string) => new Promise<void>((res, rej) => void pack.entry({ name, mode: 0o644, mtime: new Date(0) }, body, (e) => (e ? rej(e) : res())));
    await add("oci-layout", json({ imageLayoutVersion: "1.0.0" }));
    await add("index.json", index);
    await add(`blobs/sha256/${manifestDesc.digest.slice(7)}`, manifest);
    await add(`blobs/sha256/${id.slice(7)}`, image.configText);
    const seen = new Set<string>();
    for (const l of layers) {
      if (seen.has(l.digest)) continue;
      seen.add(l.digest);
      await blobEntry(pack, `blobs/sha256/${l.digest.slice(7)}`, l.path, l.size);
    }
    pack.finalize();
    await written;
    const fd = openSync(tmp, "r");
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, file);
  } catch (err) {
    pack.destroy();
    rmSync(tmp, { force: true });
    throw err;
  }
  return { id, refs };
}

function blobEntry(pack: Pack, name: string, path: string, size: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const source = createReadStream(path);
    const sink = pack.entry({ name, size, mode: 0o644, mtime: new Date(0) }, (err) => (err ? reject(err) : resolve()));
    source.on("error", reject);
    (sink as unknown as NodeJS.EventEmitter).on("error", reject);
    source.pipe(sink as unknown as NodeJS.WritableStream);
  });
}
