import * as v from "valibot";
import { lazy, nulByteRefusal, UsageError } from "@corerun/cli";

/**
 * The parts of the OCI image-spec (v1.1) and of Docker's `docker save` format that an import
 * reads. Objects are loose: fields this code does not read are kept as they are, because the
 * config's bytes are the image's identity (its digest is the image id).
 */

/** Only sha256 is used by the formats corerun reads; another algorithm is refused by name. */
export const DIGEST = /^sha256:[0-9a-f]{64}$/;
export const Digest = lazy(() => v.pipe(v.string(), v.regex(DIGEST, "not a sha256 digest (sha256: and 64 lowercase hex digits)")));

export const MEDIA = {
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociLayer: "application/vnd.oci.image.layer.v1.tar",
  ociLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  ociLayerZstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  dockerList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayer: "application/vnd.docker.image.rootfs.diff.tar",
  dockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  dockerForeignGzip: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
} as const;

/** Layer media types and how their blob is compressed. */
export const LAYER_MEDIA_TYPES: Record<string, Compression> = {
  [MEDIA.ociLayer]: "none",
  [MEDIA.ociLayerGzip]: "gzip",
  [MEDIA.ociLayerZstd]: "zstd",
  "application/vnd.oci.image.layer.nondistributable.v1.tar": "none",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "gzip",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": "zstd",
  [MEDIA.dockerLayer]: "none",
  [MEDIA.dockerLayerGzip]: "gzip",
  [MEDIA.dockerForeignGzip]: "gzip",
};
export type Compression = "none" | "gzip" | "zstd";

export const Platform = lazy(() => v.looseObject({ architecture: v.string(), os: v.string(), variant: v.optional(v.string()) }));

export const Descriptor = lazy(() => v.looseObject({
  mediaType: v.string(),
  digest: Digest,
  size: v.pipe(v.number(), v.integer(), v.minValue(0)),
  annotations: v.optional(v.record(v.string(), v.string())),
  platform: v.optional(Platform),
}));
export type Descriptor = v.InferOutput<typeof Descriptor>;

/** index.json of an image layout, or an image index blob. */
export const ImageIndex = lazy(() => v.looseObject({
  schemaVersion: v.literal(2),
  mediaType: v.optional(v.string()),
  manifests: v.array(Descriptor),
}));
export type ImageIndex = v.InferOutput<typeof ImageIndex>;

export const ImageManifest = lazy(() => v.looseObject({
  schemaVersion: v.literal(2),
  mediaType: v.optional(v.string()),
  config: Descriptor,
  layers: v.array(Descriptor),
}));
export type ImageManifest = v.InferOutput<typeof ImageManifest>;

const Strings = lazy(() => v.nullish(v.array(v.string())));

/** The execution defaults of an image: what `docker run IMAGE` takes from it. */
export const ExecConfig = lazy(() => v.looseObject({
  User: v.optional(v.string()),
  Env: Strings,
  Entrypoint: Strings,
  Cmd: Strings,
  WorkingDir: v.optional(v.string()),
  ExposedPorts: v.nullish(v.record(v.string(), v.unknown())),
  Labels: v.nullish(v.record(v.string(), v.string())),
  StopSignal: v.optional(v.string()),
  /** Durations in nanoseconds, 0 for the default; Test ["NONE"] turns an inherited one off. */
  Healthcheck: v.nullish(v.looseObject({
    Test: Strings,
    Interval: v.optional(v.number()),
    Timeout: v.optional(v.number()),
    StartPeriod: v.optional(v.number()),
    StartInterval: v.optional(v.number()),
    Retries: v.optional(v.number()),
  })),
}));
export type ExecConfig = v.InferOutput<typeof ExecConfig>;

export const ImageConfig = lazy(() => v.looseObject({
  architecture: v.optional(v.string()),
  os: v.optional(v.string()),
  created: v.optional(v.string()),
  config: v.nullish(ExecConfig),
  rootfs: v.looseObject({ type: v.literal("layers"), diff_ids: v.array(Digest) }),
  history: v.optional(v.array(v.looseObject({ created: v.optional(v.string()), created_by: v.optional(v.string()), empty_layer: v.optional(v.boolean()) }))),
}));
export type ImageConfig = v.InferOutput<typeof ImageConfig>;

/** manifest.json of `docker save`: one entry per image, paths relative to the archive's root. */
export const DockerManifest = lazy(() => v.array(v.looseObject({
  Config: v.string(),
  RepoTags: v.nullish(v.array(v.string())),
  Layers: v.array(v.string()),
})));
export type DockerManifest = v.InferOutput<typeof DockerManifest>;

/** One layer of an image as the store keeps it: unpacked once per diff id, whatever blob brought it. */
export const LayerRecord = lazy(() => v.object({
  diffId: Digest,
  /** The blob kept for export, its digest and media type. */
  digest: Digest,
  mediaType: v.string(),
  size: v.number(),
  /**
   * A rootless store's layer: unpacked as root of a user namespace with these maps (mapsKey), so
   * its files have the host ids its containers see through the same maps, and its opaque
   * directories user.overlay.opaque. Absent: unpacked by host root.
   */
  userns: v.optional(v.string()),
}));
export type LayerRecord = v.InferOutput<typeof LayerRecord>;

export const ImageRecord = lazy(() => v.object({
  /** The digest of the config blob: the image id, as in Docker and containerd. */
  id: Digest,
  imported: v.string(),
  layers: v.array(Digest),
}));
export type ImageRecord = v.InferOutput<typeof ImageRecord>;

/** NAME:TAG → image id. */
export const Refs = lazy(() => v.record(v.string(), Digest));

/** The first schema issue, as "where: what". */
export function issueText(issues: readonly v.BaseIssue<unknown>[]): string {
  const issue = issues[0]!;
  const where = issue.path?.map((p) => String(p.key)).join(".") ?? "";
  return `${where ? `${where}: ` : ""}${issue.message}`;
}

/** Parses JSON text against a schema; `what` names the file and is in every error. */
export function parseJson<S extends v.GenericSchema>(schema: S, text: string, what: string): v.InferOutput<S> {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    // Not the parser's message: it quotes the text, which need not be the image's own.
    void err;
    throw new UsageError(`${what}: not JSON`);
  }
  const nul = nulByteRefusal(data, what);
  if (nul) throw new UsageError(nul);
  const r = v.safeParse(schema, data);
  if (!r.success) throw new UsageError(`${what}: ${issueText(r.issues)}`);
  return r.output;
}
