import { describe, test, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { pack } from "tar-stream";
import { unpackBlob } from "./unpack.ts";

const dir = mkdtempSync(join(tmpdir(), "corerun-unpack-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));

type Entry = { name: string; type?: "file" | "directory" | "symlink" | "link"; body?: string; linkname?: string };

async function tarOf(entries: Entry[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on("data", (c) => void chunks.push(c as Buffer));
  const ended = new Promise<void>((r) => p.on("end", () => r()));
  for (const e of entries) {
    const header = { name: e.name, type: e.type ?? "file", linkname: e.linkname, mode: e.type === "directory" ? 0o755 : 0o644 } as const;
    if (e.type) p.entry(header);
    else p.entry(header, e.body ?? "");
  }
  p.finalize();
  await ended;
  return Buffer.concat(chunks);
}

let n = 0;
/** Unpacks entries as an archive's plain files (no owners or devices: no root needed). */
async function unpack(entries: Entry[], gzip = false) {
  const blob = join(dir, `blob-${++n}`);
  const data = await tarOf(entries);
  writeFileSync(blob, gzip ? gzipSync(data) : data);
  const dest = join(dir, `dest-${n}`);
  mkdirSync(dest);
  return { dest, data, result: await unpackBlob(blob, dest, { what: "t", layer: false }) };
}

describe("unpackBlob", () => {
  test("files, directories, links; the digests of the blob and of its tar", async () => {
    const { dest, result, data } = await unpack([
      { name: "./a/", type: "directory" }, { name: "a/f", body: "hi" }, { name: "a/l", type: "symlink", linkname: "f" }, { name: "a/h", type: "link", linkname: "a/f" },
    ], true);
    assert.equal(readFileSync(join(dest, "a/f"), "utf8"), "hi");
    assert.equal(readlinkSync(join(dest, "a/l")), "f");
    assert.equal(readFileSync(join(dest, "a/h"), "utf8"), "hi");
    assert.equal(result.entries, 4);
    assert.match(result.digest, /^sha256:[0-9a-f]{64}$/);
    assert.notEqual(result.digest, result.diffId);
    const { createHash } = await import("node:crypto");
    assert.equal(result.diffId, `sha256:${createHash("sha256").update(data).digest("hex")}`);
  });
  test("a later entry of the same name replaces the earlier one", async () => {
    const { dest } = await unpack([{ name: "f", body: "one" }, { name: "f", body: "two" }]);
    assert.equal(readFileSync(join(dest, "f"), "utf8"), "two");
  });
  test("nothing is written through a symlink, even one that stays inside", async () => {
    await assert.rejects(unpack([{ name: "d/", type: "directory" }, { name: "l", type: "symlink", linkname: "d" }, { name: "l/x", body: "x" }]),
      /entry "l\/x" goes through the symlink "l"; refused/);
  });
  test("a directory replaced by a symlink is forgotten: a later entry under its name does not go through the link", async () => {
    const outside = mkdtempSync(join(dir, "outside-"));
    await assert.rejects(unpack([
      { name: "a/", type: "directory" }, { name: "a/f", body: "in" }, { name: "d/", type: "directory" },
      { name: "a", type: "symlink", linkname: "d" }, { name: "a/g", body: "through the link" },
    ]), /entry "a\/g" goes through the symlink "a"; refused/);
    assert.deepEqual(readdirSync(outside), []);
  });
  test("a later directory entry over a file, and a file over a directory, replace it", async () => {
    const { dest } = await unpack([{ name: "x", body: "file" }, { name: "x/", type: "directory" }, { name: "x/in", body: "in" }, { name: "y/", type: "directory" }, { name: "y/z", body: "z" }, { name: "y", body: "now a file" }]);
    assert.equal(readFileSync(join(dest, "x/in"), "utf8"), "in");
    assert.equal(readFileSync(join(dest, "y"), "utf8"), "now a file");
  });
  test("an archive's absolute symlinks are refused: its files are read on the host", async () => {
    const outside = mkdtempSync(join(dir, "outside-"));
    await assert.rejects(unpack([{ name: "l", type: "symlink", linkname: outside }, { name: "l/x", body: "escaped" }]), /symlink "l" -> ".*" points out of the archive; refused/);
    assert.equal(existsSync(join(outside, "x")), false);
  });
  test("a hard link to a file that is not in the layer is refused", async () => {
    await assert.rejects(unpack([{ name: "h", type: "link", linkname: "etc/passwd" }]), /hard link "h" -> "etc\/passwd" names no earlier file of this layer; refused/);
  });
  test("data that is not a tar is bad input", async () => {
    const blob = join(dir, "not-tar");
    writeFileSync(blob, "this is not a tar archive at all ".repeat(40));
    mkdirSync(join(dir, "not-tar-dest"));
    await assert.rejects(unpackBlob(blob, join(dir, "not-tar-dest"), { what: "t", layer: false }), /^UsageError: t: not a tar archive/);
  });
});
