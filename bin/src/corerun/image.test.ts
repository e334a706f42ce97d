import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { imageRun, withEntrypoint } from "./image.ts";

const root = mkdtempSync(join(tmpdir(), "corerun-image-test-"));
after(() => rmSync(root, { recursive: true, force: true }));

/** A store with one image, written as the import writes it. */
function addImage(ref: string, config: Record<string, unknown>): string {
  const diff = `sha256:${"b".repeat(64)}`;
  const text = JSON.stringify({ architecture: "amd64", os: "linux", config, rootfs: { type: "layers", diff_ids: [diff] } });
  const id = `sha256:${createHash("sha256").update(text).digest("hex")}`;
  const dir = join(root, "images/sha256", id.slice(7));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), text);
  writeFileSync(join(dir, "image.json"), JSON.stringify({ id, imported: "now", layers: [diff] }));
  writeFileSync(join(root, "images/refs.json"), JSON.stringify({ [ref]: id }));
  return id;
}

const ctx = (tail: string[], values: Record<string, string[]> = {}, flags: Record<string, boolean> = {}) => ({ tail, values, flags });

describe("imageRun", () => {
  const id = addImage("app:latest", { Entrypoint: ["/bin/app"], Cmd: ["--serve"], Env: ["A=1"], WorkingDir: "/srv", User: "app" });

  test("a word naming an image runs it: Entrypoint + Cmd, Env, WorkingDir, User, its layers top first", () => {
    const r = imageRun(ctx(["app"]), root, { rootless: false });
    assert.deepEqual(r?.command, ["/bin/app", "--serve"]);
    assert.deepEqual(r?.env, ["A=1"]);
    assert.equal(r?.workdir, "/srv");
    assert.equal(r?.user, "app");
    assert.equal(r?.image.id, id);
    assert.deepEqual(r?.image.lower, [join(root, "layers/sha256", "b".repeat(64), "diff")]);
    assert.equal(imageRun(ctx([id.slice(7, 15)]), root, { rootless: false })?.image.id, id, "an id prefix names it too");
  });
  test("words after the image replace Cmd; --entrypoint replaces Entrypoint and drops Cmd", () => {
    assert.deepEqual(imageRun(ctx(["app", "--debug"]), root, { rootless: false })?.command, ["/bin/app", "--debug"]);
    assert.deepEqual(imageRun(ctx(["app"], { entrypoint: ["/bin/sh"] }), root, { rootless: false })?.command, ["/bin/sh"]);
    assert.deepEqual(imageRun(ctx(["app", "-c", "x"], { entrypoint: ["/bin/sh"] }), root, { rootless: false })?.command, ["/bin/sh", "-c", "x"]);
    assert.deepEqual(imageRun(ctx(["app", "ls"], { entrypoint: [""] }), root, { rootless: false })?.command, ["ls"]);
  });
  test("a path, an unknown word, or --rootfs means a command", () => {
    assert.equal(imageRun(ctx(["/bin/app"]), root, { rootless: false }), undefined);
    assert.equal(imageRun(ctx(["./app"]), root, { rootless: false }), undefined);
    assert.equal(imageRun(ctx(["sh"]), root, { rootless: false }), undefined);
    assert.equal(imageRun(ctx(["app"], { rootfs: ["/r"] }), root, { rootless: false }), undefined);
    assert.deepEqual(withEntrypoint({ values: { entrypoint: ["/bin/sh"] } }, ["-c", "x"]), ["/bin/sh", "-c", "x"]);
  });
  test("refusals: a rootless container on layers unpacked through other maps, an image with nothing to run", () => {
    const layer = join(root, "layers/sha256", "b".repeat(64));
    mkdirSync(layer, { recursive: true });
    const record = (userns?: string) => writeFileSync(join(layer, "layer.json"), JSON.stringify({ diffId: `sha256:${"b".repeat(64)}`, digest: `sha256:${"b".repeat(64)}`, mediaType: "t", size: 1, ...(userns ? { userns } : {}) }));
    const own = { uidMap: [{ container: 0, host: 1000, size: 1 }], gidMap: [{ container: 0, host: 1000, size: 1 }] };
    record();
    assert.throws(() => imageRun(ctx(["app"]), root, { rootless: true, userns: own }), /^UsageError: image app: its layer bbbbbbbbbbbb was unpacked by host root, and this rootless container maps uid 0:1000:1 gid 0:1000:1; /);
    record("uid 0:1000:1,1:100000:65536 gid 0:1000:1,1:100000:65536");
    assert.throws(() => imageRun(ctx(["app"]), root, { rootless: true, userns: own }), /was unpacked for the maps uid 0:1000:1,1:100000:65536 gid 0:1000:1,1:100000:65536, and this rootless container maps uid 0:1000:1 gid 0:1000:1/);
    record("uid 0:1000:1 gid 0:1000:1");
    assert.equal(imageRun(ctx(["app"]), root, { rootless: true, userns: own })?.image.id, id, "the same maps: it runs");
    addImage("empty:1", {});
    assert.throws(() => imageRun(ctx(["empty:1"]), root, { rootless: false }), /image empty:1 has no Entrypoint or Cmd; give a command/);
  });
});
