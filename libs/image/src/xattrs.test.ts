import { test } from "node:test";
import assert from "node:assert/strict";
import { pack } from "tar-stream";
import { checkXattr, PaxXattrs } from "./xattrs.ts";

async function tar(entries: { name: string; body?: string; pax?: Record<string, string> }[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on("data", (c: unknown) => void chunks.push(c as Buffer));
  const ended = new Promise<void>((resolve) => p.on("end", () => resolve()));
  for (const e of entries) p.entry({ name: e.name, mode: 0o644, ...(e.pax ? { pax: e.pax } : {}) }, e.body ?? "");
  p.finalize();
  await ended;
  return Buffer.concat(chunks);
}

test("PAX xattr records are read by entry number, as bytes, however the stream is cut", async () => {
  const data = await tar([
    { name: "a", body: "x".repeat(700), pax: { "SCHILY.xattr.user.one": "1", path: "a" } },
    { name: "b", body: "plain" },
    { name: "c", pax: { "SCHILY.xattr.security.capability": "caps", "SCHILY.xattr.user.two": "é" } },
  ]);
  for (const size of [1, 7, 512, data.length]) {
    const x = new PaxXattrs("t.tar");
    for (let at = 0; at < data.length; at += size) x.write(data.subarray(at, at + size));
    assert.deepEqual(x.entryXattrs(0), new Map([["user.one", Buffer.from("1")]]), `chunks of ${size}`);
    assert.equal(x.entryXattrs(1), undefined);
    assert.deepEqual(x.entryXattrs(2), new Map([["security.capability", Buffer.from("caps")], ["user.two", Buffer.from("é")]]));
  }
});

test("a malformed PAX record and overlayfs's own attributes are refused in one line", () => {
  const header = Buffer.alloc(512);
  header.write("PaxHeader/x", 0);
  header.write("00000000010\0", 124);
  header.write("x", 156);
  const x = new PaxXattrs("t.tar");
  assert.throws(() => x._transform(Buffer.concat([header, Buffer.from("99 a=b\n\n\0\0\0"), Buffer.alloc(502)]), "latin1", (err) => {
    if (err) throw err;
  }), /t\.tar: a PAX header record is malformed; refused/);
  assert.throws(() => checkXattr("trusted.overlay.redirect", "etc", "t.tar"), /entry "etc" sets trusted\.overlay\.redirect, overlayfs's own attribute/);
  checkXattr("security.capability", "bin/ping", "t.tar");
});
