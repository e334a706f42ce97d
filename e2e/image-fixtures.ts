/**
 * Images for the e2e tests, made offline from the busybox rootfs: a two-layer image whose second
 * layer whites out a file of the first and makes a directory opaque, written as an OCI image
 * layout, as an oci-archive, as a docker-archive (`docker save`'s format) and as a rootfs tarball.
 * The first layer is made by GNU tar, the second entry by entry, so that neither comes from the
 * code under test.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { pack as tarPack } from "tar-stream";
import { busyboxRootfs } from "./helpers.ts";

export const sha256 = (data: Buffer | string) => `sha256:${createHash("sha256").update(data).digest("hex")}`;

export interface TarEntry {
  name: string;
  type?: "file" | "directory" | "symlink" | "link";
  body?: string;
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  /** PAX records of the entry (ASCII values: tar-stream writes them as UTF-8). */
  pax?: Record<string, string>;
}

/** A tar archive from entries given one by one. */
export async function tarOf(entries: TarEntry[]): Promise<Buffer> {
  const p = tarPack();
  const chunks: Buffer[] = [];
  p.on("data", (c: unknown) => chunks.push(c as Buffer));
  const ended = new Promise<void>((resolve) => p.on("end", () => resolve()));
  for (const e of entries) {
    const type = e.type ?? "file";
    const mode = e.mode ?? (type === "directory" ? 0o755 : 0o644);
    const header = { name: e.name, type, mode, uid: e.uid ?? 0, gid: e.gid ?? 0, linkname: e.linkname, mtime: new Date(0), ...(e.pax ? { pax: e.pax } : {}) };
    if (type === "file") p.entry(header, e.body ?? "");
    else p.entry(header);
  }
  p.finalize();
  await ended;
  return Buffer.concat(chunks);
}

/** The image's execution defaults, as `docker run` takes them. */
export const FIXTURE_CONFIG = {
  Env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GREETING=from-the-image"],
  Entrypoint: ["/bin/sh", "-c"],
  Cmd: ["echo \"$GREETING in $(pwd) as $(id -u):$(id -g)\""],
  WorkingDir: "/data",
  User: "1000:1000",
  ExposedPorts: { "8080/tcp": {}, "9090/udp": {} },
  StopSignal: "SIGQUIT",
  Labels: { "org.opencontainers.image.title": "fixture", tier: "image" },
};

export interface Fixtures {
  dir: string;
  /** The OCI image layout directory (ref.name fixture:oci). */
  oci: string;
  /** The same layout as a tar (oci-archive). */
  ociArchive: string;
  /** docker-archive with RepoTags fixture:docker; its layers are plain tars. */
  dockerArchive: string;
  /** The first layer alone, gzipped: a rootfs tarball. */
  rootfsTar: string;
  configDigest: string;
  diffIds: string[];
  layers: { digest: string; size: number; mediaType: string; path: string }[];
  remove(): void;
}

/**
 * Layer 1: the busybox rootfs plus /etc/doomed and /data/old/file. Layer 2 (gzip): a whiteout of
 * /etc/doomed, /data made opaque with a new file in it, and /etc/added.
 */
export async function makeFixtures(config: Record<string, unknown> = FIXTURE_CONFIG): Promise<Fixtures> {
  const dir = mkdtempSync(join(tmpdir(), "corerun-e2e-img-"));
  const tree = join(dir, "tree");
  cpSync(busyboxRootfs(), tree, { recursive: true, verbatimSymlinks: true });
  writeFileSync(join(tree, "etc/doomed"), "whited out by layer 2\n");
  mkdirSync(join(tree, "data/old"), { recursive: true });
  writeFileSync(join(tree, "data/old/file"), "hidden by the opaque data/\n");
  const layer1 = execFileSync("tar", ["-C", tree, "--numeric-owner", "--sort=name", "-cf", "-", "."], { maxBuffer: 256 << 20 });
  const layer2 = await tarOf([
    { name: "etc/", type: "directory" },
    { name: "etc/.wh.doomed" },
    { name: "etc/added", body: "added by layer 2\n" },
    { name: "data/", type: "directory", mode: 0o777 },
    { name: "data/.wh..wh..opq" },
    { name: "data/new", body: "new in layer 2\n" },
  ]);
  const oci = join(dir, "oci");
  const diffIds = [sha256(layer1), sha256(layer2)];
  const written = writeOci(oci, [{ data: layer1 }, { data: gzipSync(layer2), mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", diffId: diffIds[1] }], config, "fixture:oci");
  const [l1, l2] = written.layers as [Written, Written];
  const cfg = written.config;
  const configText = written.configText;
  const ociArchive = join(dir, "oci.tar");
  execFileSync("tar", ["-C", oci, "-cf", ociArchive, "oci-layout", "index.json", "blobs"]);
  const docker = join(dir, "docker");
  mkdirSync(join(docker, "l1"), { recursive: true });
  mkdirSync(join(docker, "l2"));
  writeFileSync(join(docker, "l1/layer.tar"), layer1);
  writeFileSync(join(docker, "l2/layer.tar"), layer2);
  writeFileSync(join(docker, `${cfg.digest.slice(7)}.json`), configText);
  writeFileSync(join(docker, "manifest.json"), JSON.stringify([{ Config: `${cfg.digest.slice(7)}.json`, RepoTags: ["fixture:docker"], Layers: ["l1/layer.tar", "l2/layer.tar"] }]));
  const dockerArchive = join(dir, "docker.tar");
  execFileSync("tar", ["-C", docker, "-cf", dockerArchive, "."]);
  const rootfsTar = join(dir, "rootfs.tar.gz");
  writeFileSync(rootfsTar, gzipSync(layer1));
  return {
    dir, oci, ociArchive, dockerArchive, rootfsTar, configDigest: cfg.digest, diffIds, layers: [l1, l2],
    remove() {
      if (!dir.startsWith(join(tmpdir(), "corerun-e2e-img-"))) throw new Error(`refusing to remove ${dir}`);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

interface Written {
  digest: string;
  size: number;
  mediaType: string;
  path: string;
}

/**
 * An OCI image layout in `dir` from layer blobs (uncompressed unless a mediaType says otherwise,
 * in which case diffId gives the uncompressed digest) and an execution config.
 */
export function writeOci(
  dir: string, layers: { data: Buffer; mediaType?: string; diffId?: string | undefined }[], config: Record<string, unknown>, ref = "fixture:oci",
): { config: Written; configText: string; manifest: Written; layers: Written[] } {
  const blobs = join(dir, "blobs", "sha256");
  mkdirSync(blobs, { recursive: true });
  const put = (data: Buffer | string, mediaType: string): Written => {
    const d = sha256(data);
    writeFileSync(join(blobs, d.slice(7)), data);
    return { digest: d, size: Buffer.byteLength(data), path: join(blobs, d.slice(7)), mediaType };
  };
  const written = layers.map((l) => put(l.data, l.mediaType ?? "application/vnd.oci.image.layer.v1.tar"));
  const configText = JSON.stringify({
    architecture: ({ x64: "amd64", arm64: "arm64" } as Record<string, string>)[process.arch] ?? process.arch,
    os: "linux",
    config,
    rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId ?? sha256(l.data)) },
    history: layers.map((_, i) => ({ created_by: `layer ${i + 1}` })),
  });
  const cfg = put(configText, "application/vnd.oci.image.config.v1+json");
  const manifest = put(JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: cfg.mediaType, digest: cfg.digest, size: cfg.size },
    layers: written.map(({ digest, size, mediaType }) => ({ mediaType, digest, size })),
  }), "application/vnd.oci.image.manifest.v1+json");
  writeFileSync(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  writeFileSync(join(dir, "index.json"), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size, annotations: { "org.opencontainers.image.ref.name": ref } }],
  }));
  return { config: cfg, configText, manifest, layers: written };
}

/** Reads a blob of the fixture's OCI layout. */
export function blob(f: Fixtures, digest: string): Buffer {
  return readFileSync(join(f.oci, "blobs/sha256", digest.slice(7)));
}

/**
 * A layer of one file, bin/busybox-capped, with CAP_NET_RAW and CAP_SETUID as its file
 * capabilities (bits 13 and 7: CapEff 0000000000002080 for the user that runs it), written by
 * GNU tar --xattrs as a PAX SCHILY.xattr.security.capability record.
 */
export function cappedLayer(f: Fixtures, dir: string): Buffer {
  const tree = join(dir, "tree");
  mkdirSync(join(tree, "bin"), { recursive: true });
  cpSync(join(f.dir, "tree/bin/busybox"), join(tree, "bin/busybox-capped"));
  execFileSync("setcap", ["cap_net_raw,cap_setuid+ep", join(tree, "bin/busybox-capped")], { stdio: ["ignore", "ignore", "inherit"] });
  // GNU tar writes the binary value as it is; CAP_SETUID is bit 7, a byte UTF-8 cannot carry alone.
  return execFileSync("tar", ["-C", tree, "--numeric-owner", "--owner=0", "--group=0", "--xattrs", "--xattrs-include=security.capability", "-cf", "-", "bin/busybox-capped"], { maxBuffer: 64 << 20 });
}
