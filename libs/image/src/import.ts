import { createHash } from "node:crypto";
import { copyFileSync, createReadStream, existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, join, relative } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { Writable } from "node:stream";
import { extract as tarExtract } from "tar-stream";
import { UsageError } from "@corerun/cli";
import type { Syscall } from "@corerun/syscall";
import { checkReference, parseReference } from "./paths.ts";
import {
  DockerManifest, ImageConfig, ImageIndex, ImageManifest, LAYER_MEDIA_TYPES, MEDIA, parseJson, type Descriptor, type LayerRecord,
} from "./schema.ts";
import { imageDir, layerDir, readLayer, readRefs, storePaths, withStoreLock, writeRefs } from "./store.ts";
import { digester, sniffCompression, unpackBlob } from "./unpack.ts";

/** What an import reports as it goes: one event per layer, then one per image. */
export type ImportEvent =
  | { t: "layer"; index: number; count: number; diffId: string; size: number; status: "unpacking" | "exists" | "done" }
  | { t: "bytes"; done: number; total: number }
  | { t: "image"; id: string; refs: string[] };

export interface ImportOptions {
  /** --name: the reference the (single) image gets, instead of the archive's own. */
  name?: string | undefined;
  onEvent?: (e: ImportEvent) => void;
  /**
   * The import runs as root of a rootless user's user namespace with these maps (mapsKey): owners
   * are set through them, and opaque directories are marked user.overlay.opaque.
   */
  userns?: string | undefined;
  sys?: Syscall;
}

export interface Imported {
  id: string;
  refs: string[];
}

/** The architecture names of the image-spec (Go's GOARCH) for Node's process.arch. */
export function ociArch(arch = process.arch): string {
  return ({ x64: "amd64", ia32: "386", arm: "arm", arm64: "arm64", ppc64: "ppc64le", s390x: "s390x", riscv64: "riscv64" } as Record<string, string>)[arch] ?? arch;
}

const sha256 = (data: string | Buffer) => `sha256:${createHash("sha256").update(data).digest("hex")}`;

/**
 * `corerun image import`: an OCI image layout (a directory, or a tar of one: oci-archive), a
 * docker-archive (`docker save`), or a root filesystem tarball (`docker export`, a minirootfs),
 * plain, gzip or zstd. Every blob is checked against its digest (or its diff id, where
 * docker-archive gives only that), every layer is unpacked once into the store, and the image
 * is added last. A failure leaves the store as it was: the layers this import added are removed.
 */
export async function importImage(root: string, input: string, opts: ImportOptions = {}): Promise<Imported[]> {
  const name = opts.name === undefined ? undefined : checkReference(opts.name, "--name");
  let st;
  try {
    st = statSync(input);
  } catch (err) {
    throw new UsageError(`${input}: cannot read it (${(err as NodeJS.ErrnoException).code}); give an OCI layout, a docker-archive or a rootfs tarball`);
  }
  return withStoreLock(root, async () => {
    const ctx: Ctx = { root, input, opts, added: [], events: opts.onEvent ?? (() => undefined) };
    let tmp: string | undefined;
    try {
      let images: Pending[];
      if (st.isDirectory()) images = await fromLayout(ctx, input);
      else if (await isImageArchive(input)) {
        tmp = mkdtempSync(join(storePaths(root).images, ".tmp-"));
        ctx.scratch = realpathSync(tmp);
        await unpackBlob(input, tmp, { what: input, layer: false, sys: opts.sys });
        images = await fromLayout(ctx, tmp);
      } else images = [await fromRootfsTar(ctx)];
      if (name !== undefined && images.length !== 1) throw new UsageError(`--name ${opts.name}: ${input} holds ${images.length} images; import it without --name`);
      const refs = readRefs(root);
      const out = images.map((img) => {
        const tags = name !== undefined ? [name] : img.refs;
        addImage(root, img);
        for (const t of tags) refs[t] = img.id;
        ctx.events({ t: "image", id: img.id, refs: tags });
        return { id: img.id, refs: tags };
      });
      writeRefs(root, refs);
      return out;
    } catch (err) {
      // Nothing this import added stays: an image is only added after every layer is in.
      for (const l of ctx.added) rmSync(layerDir(root, l), { recursive: true, force: true });
      throw err;
    } finally {
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    }
  }, opts.sys);
}

interface Ctx {
  root: string;
  input: string;
  opts: ImportOptions;
  /** Layers this import created, removed again if it fails. */
  added: string[];
  /** Where an archive was unpacked: its files are this import's to move. */
  scratch?: string | undefined;
  events: (e: ImportEvent) => void;
}

/** An image read and its layers stored, to be added to the store. */
interface Pending {
  id: string;
  configText: string;
  layers: string[];
  refs: string[];
}

/** A tar whose top level has oci-layout or manifest.json is an image archive; any other tar is a rootfs. */
async function isImageArchive(file: string): Promise<boolean> {
  const extract = tarExtract();
  const source = createReadStream(file);
  const gz = sniffCompression(file);
  let found = false;
  const piping = gz === "gzip" ? pipeline(source, createGunzip(), extract) : gz === "none" ? pipeline(source, extract) : undefined;
  if (!piping) return false;
  try {
    for await (const entry of extract) {
      const n = entry.header.name.replace(/^\.\//, "");
      entry.resume();
      if (n === "oci-layout" || n === "manifest.json") {
        found = true;
        break;
      }
    }
    if (!found) await piping;
  } catch (err) {
    throw new UsageError(`${file}: not an image: not a tar archive, an OCI layout or a docker-archive (${(err as Error).message})`);
  } finally {
    source.destroy();
    piping.catch(() => undefined);
  }
  return found;
}

/** A path inside the layout, which may not leave it (through .. or a symlink). */
function inside(dir: string, rel: string, what: string): string {
  const base = realpathSync(dir);
  let real: string;
  try {
    real = realpathSync(join(base, rel));
  } catch {
    throw new UsageError(`${what}: ${rel.startsWith("blobs/") ? `the blob ${rel}` : rel} is missing from the image`);
  }
  const r = relative(base, real);
  if (r.startsWith("..") || r === "") throw new UsageError(`${what}: ${rel} points outside the image; refused`);
  return real;
}

function blobPath(dir: string, digest: string, what: string): string {
  return inside(dir, `blobs/sha256/${digest.slice(7)}`, what);
}

/** A small blob (index, manifest, config), checked against its descriptor's digest and size. */
function readBlob(dir: string, d: Pick<Descriptor, "digest" | "size">, what: string): string {
  const data = readFileSync(blobPath(dir, d.digest, what));
  const actual = sha256(data);
  if (actual !== d.digest) throw new UsageError(`${what}: blob ${d.digest} has the digest ${actual}; the image is corrupt or was altered`);
  if (data.length !== d.size) throw new UsageError(`${what}: blob ${d.digest} has ${data.length} bytes, its descriptor says ${d.size}`);
  return data.toString("utf8");
}

async function fromLayout(ctx: Ctx, dir: string): Promise<Pending[]> {
  if (existsSync(join(dir, "oci-layout"))) return fromOci(ctx, dir);
  if (existsSync(join(dir, "manifest.json"))) return fromDocker(ctx, dir);
  throw new UsageError(`${ctx.input}: not an image: no oci-layout (OCI layout) or manifest.json (docker-archive) in it`);
}

const INDEX_TYPES: readonly string[] = [MEDIA.ociIndex, MEDIA.dockerList];
const MANIFEST_TYPES: readonly string[] = [MEDIA.ociManifest, MEDIA.dockerManifest];

async function fromOci(ctx: Ctx, dir: string): Promise<Pending[]> {
  const what = ctx.input;
  let layout: { imageLayoutVersion?: unknown };
  try {
    layout = JSON.parse(readFileSync(inside(dir, "oci-layout", what), "utf8")) as { imageLayoutVersion?: unknown };
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`${what}: oci-layout is not JSON`);
  }
  if (layout.imageLayoutVersion !== "1.0.0") throw new UsageError(`${what}: oci-layout: imageLayoutVersion ${JSON.stringify(layout.imageLayoutVersion)} is not 1.0.0`);
  const index = parseJson(ImageIndex, readFileSync(inside(dir, "index.json", what), "utf8"), `${what}: index.json`);
  const manifests: { desc: Descriptor; refs: string[] }[] = [];
  const visit = (list: Descriptor[], depth: number, refs: string[]) => {
    const linux = list.filter((d) => !d.platform || (d.platform.os === "linux" && d.platform.architecture === ociArch()));
    if (list.length && !linux.length) throw new UsageError(`${what}: no image for linux/${ociArch()} in it (it has ${list.map((d) => `${d.platform?.os}/${d.platform?.architecture}`).join(", ")})`);
    for (const d of linux) {
      const own = refsOf(d);
      if (INDEX_TYPES.includes(d.mediaType)) {
        if (depth > 3) throw new UsageError(`${what}: image indexes nested too deep at ${d.digest}`);
        visit(parseJson(ImageIndex, readBlob(dir, d, what), `${what}: index ${d.digest}`).manifests, depth + 1, own.length ? own : refs);
      } else if (MANIFEST_TYPES.includes(d.mediaType)) manifests.push({ desc: d, refs: own.length ? own : refs });
      else throw new UsageError(`${what}: index entry ${d.digest} has the unsupported media type ${d.mediaType}`);
    }
  };
  visit(index.manifests, 0, []);
  if (!manifests.length) throw new UsageError(`${what}: index.json names no image manifest`);
  const out: Pending[] = [];
  for (const { desc, refs } of manifests) {
    const m = parseJson(ImageManifest, readBlob(dir, desc, what), `${what}: manifest ${desc.digest}`);
    if (m.config.mediaType !== MEDIA.ociConfig && m.config.mediaType !== MEDIA.dockerConfig) {
      throw new UsageError(`${what}: manifest ${desc.digest}: config has the unsupported media type ${m.config.mediaType} (not a container image)`);
    }
    const configText = readBlob(dir, m.config, what);
    const config = parseJson(ImageConfig, configText, `${what}: config ${m.config.digest}`);
    if (config.rootfs.diff_ids.length !== m.layers.length) {
      throw new UsageError(`${what}: manifest ${desc.digest} has ${m.layers.length} layers, its config ${config.rootfs.diff_ids.length} diff ids`);
    }
    for (const l of m.layers) {
      if (!(l.mediaType in LAYER_MEDIA_TYPES)) throw new UsageError(`${what}: layer ${l.digest} has the unsupported media type ${l.mediaType}`);
    }
    const layers: string[] = [];
    for (const [i, l] of m.layers.entries()) {
      const diffId = config.rootfs.diff_ids[i]!;
      await ingestLayer(ctx, blobPath(dir, l.digest, what), { digest: l.digest, size: l.size, diffId, mediaType: l.mediaType }, i, m.layers.length);
      layers.push(diffId);
    }
    out.push({ id: m.config.digest, configText, layers, refs });
  }
  return out;
}

/** A descriptor's references: containerd's full name, else an OCI ref.name that is a full reference. */
function refsOf(d: Descriptor): string[] {
  const a = d.annotations ?? {};
  const full = a["io.containerd.image.name"];
  const name = a["org.opencontainers.image.ref.name"];
  for (const r of [full, name]) {
    if (r !== undefined && /[:/]/.test(r)) {
      const key = parseReference(r.replace(/^docker\.io\/library\//, "").replace(/^docker\.io\//, ""));
      if (key !== undefined) return [key];
    }
  }
  return [];
}

async function fromDocker(ctx: Ctx, dir: string): Promise<Pending[]> {
  const what = ctx.input;
  const entries = parseJson(DockerManifest, readFileSync(inside(dir, "manifest.json", what), "utf8"), `${what}: manifest.json`);
  if (!entries.length) throw new UsageError(`${what}: manifest.json lists no image`);
  const out: Pending[] = [];
  for (const e of entries) {
    const configBytes = readFileSync(inside(dir, e.Config, what));
    const configText = configBytes.toString("utf8");
    const id = sha256(configBytes);
    const named = /(?:^|\/)([0-9a-f]{64})(?:\.json)?$/.exec(e.Config)?.[1];
    if (named && `sha256:${named}` !== id) throw new UsageError(`${what}: config ${e.Config} has the digest ${id}; the image is corrupt or was altered`);
    const config = parseJson(ImageConfig, configText, `${what}: ${e.Config}`);
    if (config.rootfs.diff_ids.length !== e.Layers.length) throw new UsageError(`${what}: ${e.Config} has ${config.rootfs.diff_ids.length} diff ids, manifest.json ${e.Layers.length} layers`);
    const layers: string[] = [];
    for (const [i, rel] of e.Layers.entries()) {
      const path = inside(dir, rel, what);
      // Newer archives name layers by digest (blobs/sha256/HEX): that is checked too.
      const digest = /(?:^|\/)blobs\/sha256\/([0-9a-f]{64})$/.exec(rel)?.[1];
      const compression = sniffCompression(path);
      const mediaType = compression === "gzip" ? MEDIA.dockerLayerGzip : compression === "zstd" ? MEDIA.ociLayerZstd : MEDIA.dockerLayer;
      await ingestLayer(ctx, path, { digest: digest && `sha256:${digest}`, diffId: config.rootfs.diff_ids[i]!, mediaType }, i, e.Layers.length);
      layers.push(config.rootfs.diff_ids[i]!);
    }
    const refs = (e.RepoTags ?? []).map((t) => parseReference(t.replace(/^docker\.io\/library\//, "").replace(/^docker\.io\//, ""))).filter((t): t is string => t !== undefined);
    out.push({ id, configText, layers, refs });
  }
  return out;
}

/** A root filesystem tarball: one layer, and a config that gives only what is known. */
async function fromRootfsTar(ctx: Ctx): Promise<Pending> {
  const compression = sniffCompression(ctx.input);
  const mediaType = compression === "gzip" ? MEDIA.ociLayerGzip : compression === "zstd" ? MEDIA.ociLayerZstd : MEDIA.ociLayer;
  const layer = await ingestLayer(ctx, ctx.input, { mediaType }, 0, 1);
  const now = new Date().toISOString();
  const config = {
    architecture: ociArch(),
    os: "linux",
    created: now,
    config: {},
    rootfs: { type: "layers", diff_ids: [layer.diffId] },
    history: [{ created: now, created_by: `corerun image import ${basename(ctx.input)}` }],
  };
  const configText = JSON.stringify(config);
  return { id: sha256(configText), configText, layers: [layer.diffId], refs: [] };
}

interface Expect {
  digest?: string | undefined;
  size?: number | undefined;
  diffId?: string | undefined;
  mediaType: string;
}

/** Reads a blob only to hash it: its digest, and its diff id when `uncompressed` is asked for. */
async function hashBlob(path: string, uncompressed: boolean): Promise<{ digest: string; diffId?: string }> {
  const outer = digester();
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  if (!uncompressed) {
    await pipeline(createReadStream(path), outer, sink);
    return { digest: outer.digest() };
  }
  const inner = digester();
  const kind = sniffCompression(path);
  if (kind === "zstd") throw new UsageError(`${path}: a zstd layer needs its digest in a manifest`);
  await pipeline(createReadStream(path), outer, ...(kind === "gzip" ? [createGunzip()] : []), inner, sink);
  return { digest: outer.digest(), diffId: inner.digest() };
}

/**
 * One layer into the store, keyed by its diff id: unpacked into ROOT/layers/.tmp-*, checked
 * (blob digest and size, diff id), then renamed into place. A layer already there is only
 * checked: the blob must still be the one its descriptor names.
 */
async function ingestLayer(ctx: Ctx, blob: string, expect: Expect, index: number, count: number): Promise<LayerRecord> {
  const what = `${ctx.input}: layer ${index + 1}/${count}${expect.digest ? ` ${expect.digest}` : ""}`;
  const size = statSync(blob).size;
  if (expect.diffId && existsSync(layerDir(ctx.root, expect.diffId))) {
    checkLayerUserns(readLayer(ctx.root, expect.diffId), ctx.opts.userns, what);
    const h = await hashBlob(blob, !expect.digest);
    if (expect.digest && h.digest !== expect.digest) throw new UsageError(`${what}: the blob's digest is ${h.digest}; the image is corrupt or was altered`);
    if (!expect.digest && h.diffId !== expect.diffId) throw new UsageError(`${what}: its content's digest is ${h.diffId}, the config's diff id ${expect.diffId}; the image is corrupt or was altered`);
    ctx.events({ t: "layer", index, count, diffId: expect.diffId, size, status: "exists" });
    return { diffId: expect.diffId, digest: h.digest, mediaType: expect.mediaType, size };
  }
  ctx.events({ t: "layer", index, count, diffId: expect.diffId ?? "", size, status: "unpacking" });
  const layers = storePaths(ctx.root).layers;
  const tmp = mkdtempSync(join(layers, ".tmp-"));
  try {
    mkdirSync(join(tmp, "diff"), { mode: 0o755 });
    const onBytes = (done: number) => ctx.events({ t: "bytes", done, total: size });
    const r = await unpackBlob(blob, join(tmp, "diff"), { what, layer: true, sys: ctx.opts.sys, onBytes, userns: ctx.opts.userns !== undefined });
    if (expect.digest && r.digest !== expect.digest) throw new UsageError(`${what}: the blob's digest is ${r.digest}; the image is corrupt or was altered`);
    if (expect.size !== undefined && r.size !== expect.size) throw new UsageError(`${what}: the blob has ${r.size} bytes, its descriptor says ${expect.size}`);
    if (expect.diffId && r.diffId !== expect.diffId) throw new UsageError(`${what}: its content's digest is ${r.diffId}, the config's diff id ${expect.diffId}; the image is corrupt or was altered`);
    if (!r.entries) throw new UsageError(`${what}: an empty archive, not an image or a root filesystem`);
    const record: LayerRecord = { diffId: r.diffId, digest: r.digest, mediaType: expect.mediaType, size: r.size, ...(ctx.opts.userns ? { userns: ctx.opts.userns } : {}) };
    // A blob of the archive corerun unpacked itself is linked (it may serve another image of the
    // archive too); the user's own files are copied, so that changing them cannot change the store.
    if (ctx.scratch && blob.startsWith(`${ctx.scratch}/`)) linkSync(blob, join(tmp, "blob"));
    else copyFileSync(blob, join(tmp, "blob"));
    // No fsync of its own: the directory's rename is what makes the layer count, and its files
    // are not synced either (a store on tmpfs, the default, has nothing to sync).
    writeFileSync(join(tmp, "layer.json"), `${JSON.stringify(record, null, 2)}\n`);
    const final = layerDir(ctx.root, r.diffId);
    const known = existsSync(final);
    if (known) rmSync(tmp, { recursive: true, force: true });
    else {
      renameSync(tmp, final);
      ctx.added.push(r.diffId);
    }
    ctx.events({ t: "layer", index, count, diffId: r.diffId, size, status: known ? "exists" : "done" });
    return record;
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    if (err instanceof UsageError || !isDataError(err)) throw err;
    // A blob that fails to decompress or parse: when its digest is known, say that it does not
    // match (the likely cause), otherwise what the decoder said.
    if (expect.digest) {
      const h = await hashBlob(blob, false);
      if (h.digest !== expect.digest) throw new UsageError(`${what}: the blob's digest is ${h.digest}; the image is corrupt or was altered`);
    }
    throw new UsageError(`${what}: not a valid layer (${(err as Error).message})`);
  }
}

/** A layer of the store serves containers of the user namespace maps it was unpacked with. */
function checkLayerUserns(layer: LayerRecord, userns: string | undefined, what: string): void {
  if (layer.userns === userns) return;
  throw new UsageError(`${what}: the store holds this layer unpacked ${layer.userns ? `for the user namespace maps ${layer.userns}` : "by host root"}, and this import runs ${userns ? `with the maps ${userns}` : "as host root"}; remove the images that use it (corerun image rm) and import again`);
}

/** zlib's and tar-stream's complaints about their input, as opposed to a failure of the host. */
function isDataError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code ?? "";
  return code.startsWith("Z_") || /tar|header|unexpected end/i.test((err as Error).message ?? "");
}

/** The image's own directory: config bytes and record, renamed into place once written. */
function addImage(root: string, img: Pending): void {
  const final = imageDir(root, img.id);
  if (existsSync(final)) return;
  const tmp = mkdtempSync(join(storePaths(root).images, ".tmp-"));
  writeFileSync(join(tmp, "config.json"), img.configText);
  writeFileSync(join(tmp, "image.json"), `${JSON.stringify({ id: img.id, imported: new Date().toISOString(), layers: img.layers }, null, 2)}\n`);
  renameSync(tmp, final);
}



// For commit (commit.ts): the same ingest and add steps as an import.
export { addImage as _addImage, ingestLayer as _ingestLayer, type Ctx as _Ctx, type Pending as _Pending };
