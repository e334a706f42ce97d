import { closeSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import type { Script } from "node:vm";

/**
 * What the loader (dist/NAME.cjs, made by tools/build.mjs) compiled the bundle with: the run
 * cache the starts on this machine left, the build's cache, a cache V8 refused (another Node,
 * another bundle), or none; the script, an fd of its directory, and the kinds of command whose
 * functions the run cache holds.
 */
interface CodeCache {
  cache: "run" | "build" | "rejected" | "none";
  script?: Script;
  dir?: number;
  name?: string;
  kinds?: string[];
}

const KEY = Symbol.for("corerun.codeCache");

function loaded(): CodeCache | undefined {
  return (process as unknown as Record<symbol, CodeCache | undefined>)[KEY];
}

/** Which code cache this process's bundle was compiled with ("run", "build", ...), for the trace. */
export function codeCacheUsed(): string | undefined {
  return loaded()?.cache;
}

/** Writes a file whole: a temporary name in the same directory, then rename. */
function writeWhole(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.${process.pid}`;
  try {
    writeFileSync(tmp, data, { mode: 0o644 });
    renameSync(tmp, path);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // never made
    }
    throw err;
  }
}

/**
 * Adds this command's functions to NAME.bundle.run-cache beside the bundle, at the end of a start
 * of a `kind` the cache does not hold yet (corerun's run, create, start, ...; a tool's one): V8's
 * code cache made now holds every function the process ran, those it was compiled with included,
 * where the build's (made after --version or --help) holds those that run as the modules load. A
 * start compiles the rest from source as it first calls each; with the run cache it does not
 * (corerun and corerun-exec: ~15 ms of a start, see the README). The kinds it holds are listed in
 * NAME.bundle.run-cache.kinds, written after it. Both are written through the fd of the directory
 * the loader opened (/proc/self/fd: corerun-exec and corerun-mount have moved to the container's
 * root by now), to a temporary name then renamed, so that a reader sees all of a file or none. A
 * directory this process cannot write (a user namespace's corerun-exec, a read-only install)
 * keeps what it has. The fd is closed: nothing is done a second time in one process.
 */
export function saveCodeCache(kind: string): void {
  const c = loaded();
  if (!c?.script || c.dir === undefined || c.name === undefined) return;
  const { script, dir, name } = c;
  const kinds = c.kinds ?? [];
  delete c.script;
  delete c.dir;
  try {
    if (kinds.includes(kind)) return;
    const at = `/proc/self/fd/${dir}`;
    writeWhole(`${at}/${name}`, script.createCachedData());
    writeWhole(`${at}/${name}.kinds`, `${[...kinds, kind].join(" ")}\n`);
  } catch {
    // a directory this process cannot write: the cache stays as it is
  } finally {
    try {
      closeSync(dir);
    } catch {
      // closed already: nothing of it is left open
    }
  }
}
