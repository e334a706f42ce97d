import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { pack } from "tar-stream";
import { checkXattr, layerCapability, layerXattr, paxHeader, paxRecords, paxXattrs } from "./xattrs.ts";

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
    const x = paxXattrs("t.tar");
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
  const x = paxXattrs("t.tar");
  assert.throws(() => x._transform(Buffer.concat([header, Buffer.from("99 a=b\n\n\0\0\0"), Buffer.alloc(502)]), "latin1", (err) => {
    if (err) throw err;
  }), /t\.tar: a PAX header record is malformed; refused/);
  assert.throws(() => checkXattr("trusted.overlay.redirect", "etc", "t.tar"), /entry "etc" sets trusted\.overlay\.redirect, overlayfs's own attribute/);
  checkXattr("security.capability", "bin/ping", "t.tar");
});

test("paxRecords writes binary values byte for byte, each record's length counting its own digits; paxXattrs reads them back", async () => {
  // A capability value: bytes that are no UTF-8 text.
  const cap = Buffer.from([0x01, 0x00, 0x00, 0x02, 0x80, 0x20, 0x00, 0x00, 0xff, 0xfe, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  const data = paxRecords([["SCHILY.xattr.security.capability", cap], ["path", "a".repeat(95)]]);
  let at = 0;
  for (const expected of [`SCHILY.xattr.security.capability=`, `path=`]) {
    const space = data.indexOf(0x20, at);
    const len = Number(data.subarray(at, space).toString());
    assert.equal(data[at + len - 1], 0x0a, "a record ends where its length says");
    assert.ok(data.subarray(space + 1).toString("latin1").startsWith(expected));
    at += len;
  }
  assert.equal(at, data.length);
  const p = pack();
  const chunks: Buffer[] = [];
  p.on("data", (c: unknown) => void chunks.push(c as Buffer));
  const ended = new Promise<void>((resolve) => p.on("end", () => resolve()));
  p.push(paxHeader("PaxHeaders/f", data));
  p.entry({ name: "f", mode: 0o755 }, "body");
  p.finalize();
  await ended;
  const x = paxXattrs("t.tar");
  x.write(Buffer.concat(chunks));
  assert.deepEqual(x.entryXattrs(0), new Map([["security.capability", cap]]));
  // GNU tar reads the header as its own: the path record names the entry after it.
  const listed = spawnSync("tar", ["--xattrs", "-tvf", "-"], { input: Buffer.concat(chunks), encoding: "utf8" });
  assert.equal(listed.status, 0, listed.stderr);
  assert.match(listed.stdout, /^-rwxr-xr-x .* a{95}\n$/);
});

test("layerCapability: revision 2 stays; revision 3 of the container's root becomes revision 2, of another root is dropped; user.overlay.* is refused", () => {
  const v2 = Buffer.alloc(20);
  v2.writeUInt32LE(0x02000001, 0);
  v2.writeUInt32LE(0x2080, 4);
  assert.equal(layerCapability(v2, 0), v2);
  const v3 = Buffer.alloc(24);
  v2.copy(v3);
  v3.writeUInt32LE(0x03000001, 0);
  v3.writeUInt32LE(100000, 20);
  assert.deepEqual(layerCapability(v3, 100000), v2);
  assert.equal(layerCapability(v3, 0), undefined);
  assert.ok(layerXattr("security.capability") && layerXattr("user.mime_type"));
  assert.ok(!layerXattr("user.overlay.opaque") && !layerXattr("trusted.overlay.opaque") && !layerXattr("security.selinux") && !layerXattr("system.posix_acl_access"));
  assert.throws(() => checkXattr("user.overlay.opaque", "etc", "t.tar"), /entry "etc" sets user\.overlay\.opaque, overlayfs's own attribute/);
});
