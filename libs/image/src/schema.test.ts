import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { DockerManifest, ImageConfig, ImageIndex, ImageManifest, LAYER_MEDIA_TYPES, MEDIA, parseJson } from "./schema.ts";

const D = `sha256:${"a".repeat(64)}`;

describe("image-spec schemas", () => {
  test("an OCI index and manifest parse; unknown fields are kept", () => {
    const index = parseJson(ImageIndex, JSON.stringify({
      schemaVersion: 2, manifests: [{ mediaType: MEDIA.ociManifest, digest: D, size: 10, annotations: { "org.opencontainers.image.ref.name": "x:1" }, extra: 1 }],
    }), "index.json");
    assert.equal(index.manifests[0]!.annotations?.["org.opencontainers.image.ref.name"], "x:1");
    assert.equal((index.manifests[0] as Record<string, unknown>).extra, 1);
    const m = parseJson(ImageManifest, JSON.stringify({ schemaVersion: 2, config: { mediaType: MEDIA.ociConfig, digest: D, size: 1 }, layers: [] }), "m");
    assert.equal(m.config.digest, D);
  });
  test("a bad digest, a missing field or a wrong version names the file and the field", () => {
    assert.throws(() => parseJson(ImageIndex, JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: "x", digest: "sha512:00", size: 1 }] }), "f: index.json"),
      /^UsageError: f: index\.json: manifests\.0\.digest: not a sha256 digest/);
    assert.throws(() => parseJson(ImageManifest, JSON.stringify({ schemaVersion: 2, layers: [] }), "m"), /^UsageError: m: config: /);
    assert.throws(() => parseJson(ImageIndex, JSON.stringify({ schemaVersion: 1, manifests: [] }), "i"), /^UsageError: i: schemaVersion: /);
    assert.throws(() => parseJson(ImageIndex, "{", "i"), /^UsageError: i: not JSON/);
  });
  test("a config: the execution defaults, null Entrypoint/Cmd as Docker writes them, diff ids", () => {
    const c = parseJson(ImageConfig, JSON.stringify({
      architecture: "amd64", os: "linux",
      config: { Env: ["A=1"], Entrypoint: null, Cmd: ["sh"], WorkingDir: "/w", User: "1:2", ExposedPorts: { "80/tcp": {} } },
      rootfs: { type: "layers", diff_ids: [D] },
    }), "c");
    assert.equal(c.config?.Entrypoint, null);
    assert.deepEqual(c.config?.Cmd, ["sh"]);
    assert.deepEqual(c.rootfs.diff_ids, [D]);
    assert.throws(() => parseJson(ImageConfig, JSON.stringify({ rootfs: { type: "other", diff_ids: [] } }), "c"), /rootfs\.type/);
  });
  test("docker save's manifest.json", () => {
    const m = parseJson(DockerManifest, JSON.stringify([{ Config: "x.json", RepoTags: null, Layers: ["a/layer.tar"] }]), "manifest.json");
    assert.equal(m[0]!.Layers[0], "a/layer.tar");
  });
  test("layer media types and their compression", () => {
    assert.equal(LAYER_MEDIA_TYPES[MEDIA.ociLayerGzip], "gzip");
    assert.equal(LAYER_MEDIA_TYPES[MEDIA.ociLayerZstd], "zstd");
    assert.equal(LAYER_MEDIA_TYPES[MEDIA.dockerLayer], "none");
    assert.equal(LAYER_MEDIA_TYPES["application/vnd.oci.image.layer.v1.tar+bzip2"], undefined);
  });
});
