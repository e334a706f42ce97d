import { closeSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import type { Script } from "node:vm";

/**
 * What the loader (dist/NAME.cjs, made by tools/build.mjs) compiled the bundle with: the run
 * cache the first start on this machine left, the build's cache, a cache V8 refused (another
 * Node, another bundle), or none. Without a run cache, the script and an fd of its directory.
 */
interface CodeCache {
  cache: "run" | "build" | "rejected" | "none";
  script?: Script;
  dir?: number;
  name?: string;
}

const KEY = Symbol.for("corerun.codeCache");

function loaded(): CodeCache | undefined {
  return (process as unknown as Record<symbol, CodeCache | undefined>)[KEY];
}

/** Which code cache this process's bundle was compiled with ("run", "build", ...), for the trace. */
export function codeCacheUsed(): string | undefined {
  return loaded()?.cache;
}

/**
 * Leaves NAME.bundle.run-cache beside the bundle, once per build and machine, at the end of a
 * tool's start: V8's code cache made now holds every function the start ran, where the build's
 * (made after --version or --help) holds those that run as the modules load. A start compiles
 * the rest from source as it first calls each; with the run cache it does not (corerun and
 * corerun-exec: ~15 ms of a start, see the README). Written through the fd of the directory the
 * loader opened (/proc/self/fd: corerun-exec and corerun-mount have moved to the container's
 * root by now), to a temporary name then renamed, so a reader sees all of it or none. A
 * directory this process cannot write (a user namespace's corerun-exec, a read-only install)
 * keeps the build's cache. Nothing is done with a run cache in use, or a second time.
 */
export function saveCodeCache(): void {
  const c = loaded();
  if (!c?.script || c.dir === undefined || c.name === undefined) return;
  const { script, dir, name } = c;
  delete c.script;
  delete c.dir;
  const at = `/proc/self/fd/${dir}`;
  const tmp = `${at}/${name}.${process.pid}`;
  try {
    writeFileSync(tmp, script.createCachedData(), { mode: 0o644 });
    renameSync(tmp, `${at}/${name}`);
  } catch {
    try {
      unlinkSync(tmp);
    } catch {
      // never made
    }
  } finally {
    try {
      closeSync(dir);
    } catch {
      // closed already: nothing of it is left open
    }
  }
}
