import { spawn } from "node:child_process";
import { createHash, type Hash } from "node:crypto";
import {
  chmodSync, closeSync, createReadStream, createWriteStream, lchownSync, linkSync, lstatSync, lutimesSync, mkdirSync, openSync, readSync, rmSync, symlinkSync,
  unlinkSync, type Stats,
} from "node:fs";
import { join, posix } from "node:path";
import { Duplex, PassThrough, Transform, type Readable, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { extract as tarExtract, type Header } from "tar-stream";
import { UsageError } from "@corerun/cli";
import { isErrno, linuxSyscall, type Syscall } from "@corerun/syscall";
import { checkSymlink, classifyEntry, entryPath, hardlinkTarget } from "./paths.ts";
import type { Compression } from "./schema.ts";
import { checkXattr, paxXattrs } from "./xattrs.ts";

const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;

/** A pass-through stream that takes its data's sha256 and byte count. */
export type Digester = Transform & { readonly bytes: number; digest(): string };

/**
 * A Digester; onBytes is called with the byte count every 10 ms at most, for a progress bar.
 * Made by a function, not a subclass of Transform: a class declaration would load node:stream as
 * every tool's bundle loads, where a container start never streams.
 */
export function digester(onBytes?: (bytes: number) => void): Digester {
  const hash: Hash = createHash("sha256");
  let bytes = 0;
  let reported = 0;
  const t = new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback) {
      hash.update(chunk);
      bytes += chunk.length;
      if (onBytes && Date.now() - reported >= 10) {
        reported = Date.now();
        onBytes(bytes);
      }
      done(null, chunk);
    },
  });
  return Object.defineProperties(t, {
    bytes: { get: () => bytes },
    digest: { value: () => `sha256:${hash.digest("hex")}` },
  }) as Digester;
}

/** The compression of a blob, from its first bytes (gzip 1f 8b, zstd 28 b5 2f fd). */
export function sniffCompression(path: string): Compression {
  const head = Buffer.alloc(4);
  const fd = openSync(path, "r");
  try {
    readSync(fd, head, 0, 4, 0);
  } finally {
    closeSync(fd);
  }
  if (head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (head.readUInt32BE(0) === 0x28b52ffd) return "zstd";
  return "none";
}

/**
 * A decompressing stage. zstd goes through the system's `zstd` binary (Debian's zstd package):
 * Node 20 has no zstd in zlib.
 */
function decompressor(kind: Compression, what: string): { stream: Duplex; done: Promise<void> } {
  if (kind === "gzip") return { stream: createGunzip(), done: Promise.resolve() };
  if (kind === "none") return { stream: new PassThrough(), done: Promise.resolve() };
  const child = spawn("zstd", ["-d", "-c", "-q"], { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<void>((resolve, reject) => {
    child.on("error", (err) => reject(new UsageError(`${what}: a zstd layer needs the zstd program (apt-get install zstd): ${(err as NodeJS.ErrnoException).code}`)));
    child.on("close", (code) => (code === 0 ? resolve() : reject(new UsageError(`${what}: not valid zstd data (${stderr.trim().split("\n")[0] || `zstd exited ${code}`})`))));
  });
  child.stdin.on("error", () => undefined);
  // Writes go to zstd's stdin, reads come from its stdout.
  return { stream: Duplex.from({ writable: child.stdin, readable: child.stdout }), done };
}

export interface UnpackOptions {
  /** Names the blob in messages: "FILE: layer sha256:…". */
  what: string;
  /** Apply owners, device nodes and whiteouts (a layer); false for an archive's plain files. */
  layer: boolean;
  sys?: Syscall;
  /** Bytes of the blob read so far, now and then. */
  onBytes?: (bytes: number) => void;
  /**
   * Unpacked as root of a rootless user's user namespace: opaque directories get
   * user.overlay.opaque (what overlayfs reads with userxattr), and an owner the namespace does not
   * map or a device node is refused in one line.
   */
  userns?: boolean;
}

export interface UnpackResult {
  /** sha256 of the blob as read (compressed). */
  digest: string;
  size: number;
  /** sha256 of the uncompressed tar stream: the layer's diff id. */
  diffId: string;
  entries: number;
}

/**
 * Unpacks a tar blob (plain, gzip or zstd) into `dest`, an empty directory, and hashes it on the
 * way. Nothing is written outside `dest`: names are checked (entryPath), parents are walked with
 * lstat and never through a symlink, hard links name entries already unpacked, and a relative
 * symlink may not climb above the layer. With `layer`, whiteouts become what overlayfs reads:
 * `.wh.NAME` a character device 0/0 named NAME, `.wh..wh..opq` the xattr
 * trusted.overlay.opaque=y on its directory.
 */
export async function unpackBlob(blob: string, dest: string, opts: UnpackOptions): Promise<UnpackResult> {
  const sys = opts.sys ?? linuxSyscall;
  const compression = sniffCompression(blob);
  const outer = digester(opts.onBytes);
  const inner = digester();
  const dec = decompressor(compression, opts.what);
  const extract = tarExtract();
  const xattrs = paxXattrs(opts.what);
  const piping = pipeline(createReadStream(blob), outer, dec.stream, inner, xattrs, extract);
  const dirTimes: [string, Date][] = [];
  const tree: Tree = { dirs: new Set([dest]), setgid: new Set(), uid: process.geteuid?.() ?? 0, gid: process.getegid?.() ?? 0 };
  let entries = 0;
  try {
    for await (const entry of extract) {
      await applyEntry(dest, entry.header, entry as unknown as Readable, opts, sys, dirTimes, xattrs.entryXattrs(entries), tree);
      entries++;
    }
    await piping;
    await dec.done;
  } catch (err) {
    extract.destroy();
    piping.catch(() => undefined);
    dec.done.catch(() => undefined);
    if (err instanceof UsageError) throw err;
    const msg = (err as Error).message ?? String(err);
    if (/tar header|Unexpected end|incorrect header|unexpected end of file|invalid/i.test(msg)) {
      throw new UsageError(`${opts.what}: not a tar archive${compression === "none" ? "" : ` (${compression})`}: ${msg}`);
    }
    throw err;
  }
  // Later entries change their directory's mtime; the recorded times go back last, deepest first.
  for (const [path, time] of dirTimes.reverse()) lutimesSync(path, time, time);
  return { digest: outer.digest(), size: outer.bytes, diffId: inner.digest(), entries };
}

/** lstat, or undefined when nothing is there. */
function lstatOrNone(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/**
 * What this unpack knows of the tree it writes, to save a syscall or two per entry (a layer is
 * mostly small files and symlinks, each an inode the kernel creates): the directories it made or
 * found to be real directories (forgotten when an entry replaces one), those with the set-group-ID
 * bit (their new entries take the directory's group), and the ids a new inode gets here.
 */
interface Tree {
  dirs: Set<string>;
  setgid: Set<string>;
  uid: number;
  gid: number;
}

/** Creates the parents of `rel` under `root` as real directories; a symlink on the way is refused. */
function parentDir(root: string, rel: string, what: string, tree?: Tree): string {
  let dir = root;
  const parts = rel.split("/").slice(0, -1);
  for (const part of parts) {
    dir = join(dir, part);
    if (tree?.dirs.has(dir)) continue;
    const st = lstatOrNone(dir);
    if (!st) mkdirSync(dir, { mode: 0o755 });
    else if (st.isSymbolicLink()) throw new UsageError(`${what}: entry "${rel}" goes through the symlink "${posix.relative("", dir.slice(root.length + 1))}"; refused`);
    else if (!st.isDirectory()) throw new UsageError(`${what}: entry "${rel}" needs "${dir.slice(root.length + 1)}" to be a directory, but it is a file`);
    tree?.dirs.add(dir);
  }
  return dir;
}

/** Makes room for a new entry at `path`: a later entry of the same name replaces the earlier one. */
function clear(path: string, keepDir: boolean, tree?: Tree): void {
  const st = lstatOrNone(path);
  if (!st) return;
  if (st.isDirectory()) {
    if (keepDir) return;
    rmSync(path, { recursive: true, force: true });
    if (tree) for (const d of [...tree.dirs]) if (d === path || d.startsWith(`${path}/`)) tree.dirs.delete(d);
  } else unlinkSync(path);
}

/** Creates an entry, assuming the name is free (the common case); an earlier entry of that name goes first. */
function create<T>(path: string, make: () => T, tree: Tree): T {
  try {
    return make();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  }
  clear(path, false, tree);
  return make();
}

/** An entry's owner; in a user namespace, one it does not map is refused in one line (lchown: EINVAL). */
function chown(path: string, h: Header, opts: UnpackOptions, rel: string): void {
  try {
    lchownSync(path, h.uid ?? 0, h.gid ?? 0);
  } catch (err) {
    if (!opts.userns || (err as NodeJS.ErrnoException).code !== "EINVAL") throw err;
    throw new UsageError(`${opts.what}: entry "${rel}" is owned by ${h.uid ?? 0}:${h.gid ?? 0}, which the rootless store's user namespace does not map (lchown: EINVAL); give the user a range in /etc/subuid and /etc/subgid (and install uidmap), or import as root`);
  }
}

async function applyEntry(
  root: string, h: Header, body: Readable, opts: UnpackOptions, sys: Syscall, dirTimes: [string, Date][], xattrs: Map<string, Buffer> | undefined, tree: Tree,
): Promise<void> {
  const { what } = opts;
  const rel = entryPath(h.name, what);
  const drain = async () => {
    body.resume();
    await new Promise<void>((resolve, reject) => {
      body.once("end", resolve);
      body.once("error", reject);
    });
  };
  if (opts.layer) {
    const k = classifyEntry(rel);
    if (k.kind === "skip") return drain();
    if (k.kind === "opaque") {
      const dir = k.dir ? join(parentDir(root, `${k.dir}/x`, what, tree), "") : root;
      if (!lstatOrNone(dir)) mkdirSync(dir, { mode: 0o755 });
      sys.lsetxattr(dir, opts.userns ? "user.overlay.opaque" : "trusted.overlay.opaque", "y");
      return drain();
    }
    if (k.kind === "whiteout") {
      const path = join(parentDir(root, k.path, what, tree), posix.basename(k.path));
      clear(path, false, tree);
      sys.mknod(path, S_IFCHR | 0o000, 0, 0);
      return drain();
    }
  }
  if (rel === "") {
    // The layer's root itself ("./"): its mode and owner, not a new directory.
    if (h.type === "directory" && opts.layer) {
      chown(root, h, opts, "./");
      chmodSync(root, (h.mode ?? 0o755) & 0o7777);
      if ((h.mode ?? 0) & 0o2000) tree.setgid.add(root);
    }
    return drain();
  }
  const parent = parentDir(root, rel, what, tree);
  const path = join(parent, posix.basename(rel));
  const mode = (h.mode ?? 0o644) & 0o7777;
  switch (h.type) {
    case "file":
    case "contiguous-file": {
      const fd = create(path, () => openSync(path, "wx", 0o600), tree);
      await pipeline(body, createWriteStream("", { fd }));
      break;
    }
    case "directory":
      if (!tree.dirs.has(path)) {
        try {
          mkdirSync(path, { mode: 0o700 });
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
          clear(path, true, tree);
          if (!lstatOrNone(path)) mkdirSync(path, { mode: 0o700 });
        }
        tree.dirs.add(path);
      }
      if (mode & 0o2000) tree.setgid.add(path);
      else tree.setgid.delete(path);
      await drain();
      break;
    case "symlink":
      checkSymlink(rel, h.linkname ?? "", what);
      // An archive's files are read on the host, where an absolute target is the host's.
      if (!opts.layer && (h.linkname ?? "").startsWith("/")) throw new UsageError(`${what}: symlink "${rel}" -> "${h.linkname}" points out of the archive; refused`);
      create(path, () => symlinkSync(h.linkname ?? "", path), tree);
      await drain();
      break;
    case "link": {
      const target = join(root, hardlinkTarget(rel, h.linkname ?? "", what));
      const st = lstatOrNone(target);
      // The target is an entry already unpacked here, reached without a symlink on the way.
      parentDir(root, posix.relative(root, target), what, tree);
      if (!st || st.isDirectory()) throw new UsageError(`${what}: hard link "${rel}" -> "${h.linkname}" names no earlier file of this layer; refused`);
      create(path, () => linkSync(target, path), tree);
      await drain();
      return;
    }
    case "character-device":
    case "block-device":
    case "fifo":
      if (!opts.layer) throw new UsageError(`${what}: entry "${rel}" is a device or FIFO, which an image archive does not hold; refused`);
      clear(path, false, tree);
      try {
        sys.mknod(path, (h.type === "fifo" ? S_IFIFO : h.type === "block-device" ? S_IFBLK : S_IFCHR) | mode, h.devmajor ?? 0, h.devminor ?? 0);
      } catch (err) {
        if (!opts.userns || !isErrno(err, "EPERM")) throw err;
        throw new UsageError(`${what}: entry "${rel}" is a device node, which a rootless import cannot make (mknod: EPERM: device nodes need CAP_MKNOD of the host); import the image as root`);
      }
      await drain();
      break;
    default:
      throw new UsageError(`${what}: entry "${rel}" has the unsupported tar type ${h.type ?? "?"}; refused`);
  }
  // A new inode (not a directory, which may have been made earlier; hard links returned above)
  // has the ids of its creator, unless a set-group-ID parent gives it its group.
  const fresh = h.type !== "directory";
  const owned = fresh && (h.uid ?? 0) === tree.uid && (h.gid ?? 0) === tree.gid && !tree.setgid.has(parent);
  if (opts.layer && !owned) chown(path, h, opts, rel);
  // After chown, which clears set-id bits; a symlink's mode means nothing on Linux.
  if (h.type !== "symlink") chmodSync(path, opts.layer ? mode : mode & 0o777);
  // After chown too, which clears security.capability: file capabilities are kept as the layer has them.
  if (opts.layer) {
    for (const [name, value] of xattrs ?? []) {
      checkXattr(name, rel, what);
      try {
        sys.lsetxattr(path, name, value);
      } catch (err) {
        throw new UsageError(`${what}: entry "${rel}": the store's filesystem refuses its attribute ${name} (lsetxattr: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); keep the state root on a filesystem with extended attributes`);
      }
    }
  }
  const mtime = h.mtime ?? new Date(0);
  if (h.type === "directory") dirTimes.push([path, mtime]);
  else lutimesSync(path, mtime, mtime);
}
