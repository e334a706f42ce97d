import { createReadStream, lstatSync, readdirSync, readlinkSync, type Stats } from "node:fs";
import { join } from "node:path";
import type { Pack } from "tar-stream";
import { linuxSyscall, type Syscall } from "@corerun/syscall";
import { opaqueEntry, whiteoutEntry } from "./paths.ts";

export interface PackOptions {
  /**
   * The tree is an overlayfs upper directory: its whiteouts (character devices 0/0) become
   * `.wh.NAME` entries and its opaque directories (trusted.overlay.opaque=y) get a
   * `.wh..wh..opq` entry, the form a layer tar carries.
   */
  overlay?: boolean;
  /** Relative paths left out (with what is below them). */
  exclude?: ReadonlySet<string>;
  sys?: Syscall;
}

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
      const base = { name: path, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtime };
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
      if (st.isDirectory()) {
        await entry({ ...base, type: "directory" });
        if (opts.overlay && sys.lgetxattr(abs, "trusted.overlay.opaque") === "y") await entry({ ...base, name: opaqueEntry(path), type: "file", size: 0, mode: 0o600 });
        await walk(path);
      } else if (st.isSymbolicLink()) await entry({ ...base, type: "symlink", linkname: readlinkSync(abs) });
      else if (st.isFile()) await fileEntry(pack, { ...base, type: "file", size: st.size }, abs);
      else await entry({ ...base, ...deviceOf(st) });
    }
  };
  await walk("");
  pack.finalize();
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
    source.pipe(sink as unknown as NodeJS.WritableStream);
  });
}
