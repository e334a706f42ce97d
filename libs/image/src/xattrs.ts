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
 * entry the parser yields is the Nth non-meta header seen here).
 */
export class PaxXattrs extends Transform {
  private readonly byEntry = new Map<number, Map<string, Buffer>>();
  private pending: Map<string, Buffer> | undefined;
  private entries = 0;
  private header: Buffer = Buffer.alloc(0);
  /** Bytes of entry data still to pass before the next header (padding included). */
  private skip = 0;
  /** The data of a PAX header being collected, and its size. */
  private pax: { chunks: Buffer[]; size: number; got: number } | undefined;

  constructor(private readonly what: string) {
    super();
  }

  /** The attributes of the entry with this index (0-based), once its header has passed. */
  entryXattrs(index: number): Map<string, Buffer> | undefined {
    const x = this.byEntry.get(index);
    this.byEntry.delete(index);
    return x;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    try {
      this.scan(chunk);
    } catch (err) {
      done(err as Error);
      return;
    }
    done(null, chunk);
  }

  private scan(chunk: Buffer): void {
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
 * directories, redirects, metacopy) from the layers, so a layer that brings them could make the
 * merged tree show what its tar does not say; they come only from whiteout entries.
 */
export function checkXattr(name: string, entry: string, what: string): void {
  if (name.startsWith("trusted.overlay.")) throw new UsageError(`${what}: entry "${entry}" sets ${name}, overlayfs's own attribute; a layer says that with a whiteout entry; refused`);
}
