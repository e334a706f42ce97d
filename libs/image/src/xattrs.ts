import { Transform, type TransformCallback } from "node:stream";
import { UsageError } from "@corerun/cli";

const BLOCK = 512;
const PREFIX = "SCHILY.xattr.";
/** Header types that describe the next entry rather than being one (tar-stream yields no entry for them). */
const META = new Set(["x", "g", "L", "K"]);

/**
 * The extended attributes of a tar stream's entries, from their PAX `SCHILY.xattr.NAME` records
 * (what GNU tar --xattrs and containerd write: file capabilities are `security.capability`). A
 * pass-through stage before the tar parser: tar-stream decodes PAX values as UTF-8, which loses
 * the bytes of a binary value, so the records are read here, as bytes, by entry number (the Nth
 * entry the parser yields is the Nth non-meta header seen here). Made by a function, not a
 * subclass of Transform: a class declaration would load node:stream as every tool's bundle loads.
 */
export type PaxXattrs = Transform & Pick<PaxScanner, "entryXattrs">;

export function paxXattrs(what: string): PaxXattrs {
  const scanner = new PaxScanner(what);
  const t = new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback) {
      try {
        scanner.scan(chunk);
      } catch (err) {
        done(err as Error);
        return;
      }
      done(null, chunk);
    },
  });
  return Object.defineProperty(t, "entryXattrs", { value: (index: number) => scanner.entryXattrs(index) }) as PaxXattrs;
}

/** The PAX records of a tar stream, read from its bytes as they pass, by entry number. */
class PaxScanner {
  private readonly byEntry = new Map<number, Map<string, Buffer>>();
  private pending: Map<string, Buffer> | undefined;
  private entries = 0;
  private header: Buffer = Buffer.alloc(0);
  /** Bytes of entry data still to pass before the next header (padding included). */
  private skip = 0;
  /** The data of a PAX header being collected, and its size. */
  private pax: { chunks: Buffer[]; size: number; got: number } | undefined;

  constructor(private readonly what: string) {}

  /** The attributes of the entry with this index (0-based), once its header has passed. */
  entryXattrs(index: number): Map<string, Buffer> | undefined {
    const x = this.byEntry.get(index);
    this.byEntry.delete(index);
    return x;
  }

  scan(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - at);
        if (this.pax && this.pax.got < this.pax.size) {
          const part = chunk.subarray(at, at + Math.min(n, this.pax.size - this.pax.got));
          this.pax.chunks.push(part);
          this.pax.got += part.length;
        }
        this.skip -= n;
        at += n;
        if (this.skip === 0 && this.pax) {
          this.records(Buffer.concat(this.pax.chunks));
          this.pax = undefined;
        }
        continue;
      }
      const n = Math.min(BLOCK - this.header.length, chunk.length - at);
      this.header = this.header.length ? Buffer.concat([this.header, chunk.subarray(at, at + n)]) : chunk.subarray(at, at + n);
      at += n;
      if (this.header.length === BLOCK) {
        const h = this.header;
        this.header = Buffer.alloc(0);
        this.onHeader(h);
      }
    }
  }

  private onHeader(h: Buffer): void {
    if (h.every((b) => b === 0)) return;
    const type = String.fromCharCode(h[156] || 0x30);
    const size = headerSize(h);
    this.skip = Math.ceil(size / BLOCK) * BLOCK;
    if (type === "x" && size > 0) this.pax = { chunks: [], size, got: 0 };
    if (META.has(type)) return;
    if (this.pending) this.byEntry.set(this.entries, this.pending);
    this.pending = undefined;
    this.entries++;
  }

  /** "LEN KEY=VALUE\n" records; only the xattr ones are kept, with their values as bytes. */
  private records(data: Buffer): void {
    let at = 0;
    while (at < data.length) {
      const space = data.indexOf(0x20, at);
      const len = space < 0 ? NaN : Number(data.subarray(at, space).toString("latin1"));
      if (!Number.isInteger(len) || len <= 0 || at + len > data.length) throw new UsageError(`${this.what}: a PAX header record is malformed; refused`);
      const record = data.subarray(space + 1, at + len - 1);
      const eq = record.indexOf(0x3d);
      const key = record.subarray(0, eq < 0 ? record.length : eq).toString("utf8");
      if (key.startsWith(PREFIX) && eq >= 0) {
        this.pending ??= new Map();
        this.pending.set(key.slice(PREFIX.length), Buffer.from(record.subarray(eq + 1)));
      }
      at += len;
    }
  }
}

/** The size field: octal text, or GNU's base-256 for large files. */
function headerSize(h: Buffer): number {
  const field = h.subarray(124, 136);
  if (field[0]! & 0x80) {
    let n = 0;
    for (const b of field.subarray(1)) n = n * 256 + b;
    return n;
  }
  const text = field.toString("latin1").replace(/[\0 ]+$/, "").trim();
  return text ? parseInt(text, 8) : 0;
}

/**
 * Which attributes a layer may set: overlayfs reads its own trusted.overlay.* ones (opaque
 * directories, redirects, metacopy) from the layers, user.overlay.* in a user namespace, so a layer that brings them could make the
 * merged tree show what its tar does not say; they come only from whiteout entries.
 */
export function checkXattr(name: string, entry: string, what: string): void {
  if (name.startsWith("trusted.overlay.") || name.startsWith("user.overlay.")) throw new UsageError(`${what}: entry "${entry}" sets ${name}, overlayfs's own attribute; a layer says that with a whiteout entry; refused`);
}

/**
 * The attributes a layer carries from a directory tree (the way back, for commit): file
 * capabilities and user.* attributes. overlayfs's own attributes become whiteout entries instead,
 * and trusted.*, security.selinux and ACLs (system.*) describe the host, not the image.
 */
export function layerXattr(name: string): boolean {
  return name === "security.capability" || (name.startsWith("user.") && !name.startsWith("user.overlay."));
}

const VFS_CAP_REVISION_MASK = 0xff000000;
const VFS_CAP_REVISION_2 = 0x02000000;
const VFS_CAP_REVISION_3 = 0x03000000;
const VFS_CAP_FLAGS_EFFECTIVE = 0x000001;

/**
 * security.capability as a layer holds it: revision 2, valid in whatever user namespace runs the
 * image. A revision 3 value names the host uid of the root it applies to (written inside a user
 * namespace): it becomes revision 2 when that is the container's root (`rootid`), and is dropped
 * otherwise (undefined), since the kernel ignores it in the container as well.
 */
export function layerCapability(value: Buffer, rootid: number): Buffer | undefined {
  if (value.length < 4) return undefined;
  const magic = value.readUInt32LE(0);
  const revision = (magic & VFS_CAP_REVISION_MASK) >>> 0;
  if (revision !== VFS_CAP_REVISION_3) return value;
  if (value.length < 24 || value.readUInt32LE(20) !== rootid) return undefined;
  const v2 = Buffer.from(value.subarray(0, 20));
  v2.writeUInt32LE((VFS_CAP_REVISION_2 | (magic & VFS_CAP_FLAGS_EFFECTIVE)) >>> 0, 0);
  return v2;
}

/**
 * The data of a PAX extended header ("LEN KEY=VALUE\n" records, LEN counting itself) with
 * binary-safe values: tar-stream writes PAX values as UTF-8 text, which would change the bytes
 * of a capability. `SCHILY.xattr.NAME` for each attribute, as GNU tar --xattrs writes them.
 */
export function paxRecords(records: readonly (readonly [string, Buffer | string])[]): Buffer {
  const out: Buffer[] = [];
  for (const [key, raw] of records) {
    const value = typeof raw === "string" ? Buffer.from(raw) : raw;
    const body = Buffer.byteLength(key) + value.length + 3; // " " "=" "\n"
    let len = body + String(body).length;
    if (String(len).length !== String(len - body).length) len = body + String(len).length;
    out.push(Buffer.from(`${len} ${key}=`), value, Buffer.from("\n"));
  }
  return Buffer.concat(out);
}

/**
 * A whole PAX extended header ('x'): its ustar header block, the records, and the padding to a
 * block. Pushed into tar-stream's pack between two entries (its own entry() takes no body for
 * this type).
 */
export function paxHeader(name: string, records: Buffer): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(name.slice(0, 99), 0, "utf8");
  h.write("0000644\0", 100, "latin1");
  h.write("0000000\0", 108, "latin1");
  h.write("0000000\0", 116, "latin1");
  h.write(`${records.length.toString(8).padStart(11, "0")}\0`, 124, "latin1");
  h.write("00000000000\0", 136, "latin1");
  h.write("x", 156, "latin1");
  h.write("ustar\0" + "00", 257, "latin1");
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "latin1");
  const pad = (BLOCK - (records.length % BLOCK)) % BLOCK;
  return Buffer.concat([h, records, Buffer.alloc(pad)]);
}

export const XATTR_PREFIX = PREFIX;
