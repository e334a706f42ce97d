import { createReadStream, lstatSync, readdirSync, readlinkSync, type Stats } from "node:fs";
import { join } from "node:path";
import type { Pack } from "tar-stream";
import { linuxSyscall, type Syscall } from "@corerun/syscall";
import { opaqueEntry, whiteoutEntry } from "./paths.ts";
import { layerCapability, layerXattr, paxHeader, paxRecords, XATTR_PREFIX } from "./xattrs.ts";

export interface PackOptions {
  /**
   * The tree is an overlayfs upper directory: its whiteouts (character devices 0/0) become
   * `.wh.NAME` entries and its opaque directories (trusted.overlay.opaque=y) get a
   * `.wh..wh..opq` entry, the form a layer tar carries.
   */
  overlay?: boolean;
  /** Relative paths left out (with what is below them). */
  exclude?: ReadonlySet<string>;
  /**
   * The tree's owners as the layer gives them: a container in a user namespace writes host ids
   * (its container ids shifted by its map), which go back to container ids here.
   */
  ids?: { uid: (host: number) => number; gid: (host: number) => number; rootUid: number };
  sys?: Syscall;
}

/** overlayfs marks an opaque directory with trusted.overlay.opaque, or user.overlay.opaque when mounted with userxattr (in a user namespace). */
const OPAQUE_XATTRS = ["trusted.overlay.opaque", "user.overlay.opaque"];

/** Longest name and link name a ustar header holds without an extended header. */
const USTAR_NAME = 100;

/**
 * Writes a directory tree into a tar pack, names sorted, owners, modes and times as they are,
 * hard links as links to the first name. Ends the pack.
 */
export async function packTree(dir: string, pack: Pack, opts: PackOptions = {}): Promise<void> {
  const sys = opts.sys ?? linuxSyscall;
  const seen = new Map<string, string>();
  const entry = (header: Parameters<Pack["entry"]>[0], body?: string | Buffer) =>
    new Promise<void>((resolve, reject) => void pack.entry(header, body ?? "", (err) => (err ? reject(err) : resolve())));
  const walk = async (rel: string): Promise<void> => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      if (opts.exclude?.has(path)) continue;
      const abs = join(dir, path);
      const st = lstatSync(abs);
      const base = { name: path, mode: st.mode & 0o7777, uid: opts.ids?.uid(st.uid) ?? st.uid, gid: opts.ids?.gid(st.gid) ?? st.gid, mtime: st.mtime };
      if (opts.overlay && st.isCharacterDevice() && st.rdev === 0) {
        await entry({ ...base, name: whiteoutEntry(path), type: "file", size: 0, mode: 0o600 });
        continue;
      }
      const key = `${st.dev}:${st.ino}`;
      if (!st.isDirectory() && st.nlink > 1 && seen.has(key)) {
        await entry({ ...base, type: "link", linkname: seen.get(key)!, size: 0 });
        continue;
      }
      if (!st.isDirectory() && st.nlink > 1) seen.set(key, path);
      const linkname = st.isSymbolicLink() ? readlinkSync(abs) : undefined;
      const named = await withXattrs(pack, abs, { ...base, ...(linkname !== undefined ? { linkname } : {}) }, sys, opts.ids?.rootUid ?? 0);
      if (st.isDirectory()) {
        await entry({ ...named, type: "directory" });
        if (opts.overlay && OPAQUE_XATTRS.some((x) => sys.lgetxattr(abs, x) === "y")) await entry({ ...base, name: opaqueEntry(path), type: "file", size: 0, mode: 0o600 });
        await walk(path);
      } else if (st.isSymbolicLink()) await entry({ ...named, type: "symlink" });
      else if (st.isFile()) await fileEntry(pack, { ...named, type: "file", size: st.size }, abs);
      else await entry({ ...named, ...deviceOf(st) });
    }
  };
  await walk("");
  pack.finalize();
}

type Header = Parameters<Pack["entry"]>[0];

/**
 * Writes the PAX extended header of an entry that has attributes a layer carries (see
 * layerXattr), before the entry itself, and returns the entry's header. The values go in as
 * bytes (paxRecords); a name or link name too long for the ustar header goes in the same PAX
 * header, so that tar-stream does not write a second one.
 */
async function withXattrs(pack: Pack, abs: string, header: Header & { name: string; linkname?: string }, sys: Syscall, rootUid: number): Promise<Header> {
  const records: [string, Buffer | string][] = [];
  for (const name of sys.llistxattr(abs).filter(layerXattr).sort()) {
    let value = sys.lgetxattrBytes(abs, name);
    if (value !== undefined && name === "security.capability") value = layerCapability(value, rootUid);
    if (value !== undefined) records.push([`${XATTR_PREFIX}${name}`, value]);
  }
  if (!records.length) return header;
  const out: Header = { ...header };
  if (Buffer.byteLength(header.name) >= USTAR_NAME) {
    records.unshift(["path", header.name]);
    out.name = `PaxHeaders/${header.name.length}`;
  }
  if (header.linkname !== undefined && Buffer.byteLength(header.linkname) >= USTAR_NAME) {
    records.unshift(["linkpath", header.linkname]);
    out.linkname = "PaxHeaders/linkpath";
  }
  // Between two entries (each one awaited), so the header lands right before its entry.
  pack.push(paxHeader(`PaxHeaders/${header.name.split("/").at(-1)!.slice(0, 80)}`, paxRecords(records)));
  return out;
}

function deviceOf(st: Stats): { type: "character-device" | "block-device" | "fifo"; devmajor: number; devminor: number } {
  const type = st.isCharacterDevice() ? "character-device" : st.isBlockDevice() ? "block-device" : "fifo";
  const rdev = st.rdev;
  return { type, devmajor: ((rdev >> 8) & 0xfff) | ((rdev / 2 ** 32) & ~0xfff), devminor: (rdev & 0xff) | ((rdev >> 12) & 0xfff00) };
}

function fileEntry(pack: Pack, header: Parameters<Pack["entry"]>[0], abs: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const source = createReadStream(abs);
    const sink = pack.entry(header, (err) => (err ? reject(err) : resolve()));
    source.on("error", reject);
    (sink as unknown as NodeJS.EventEmitter).on("error", reject);
    source.pipe(sink as unknown as NodeJS.WritableStream);
  });
}
