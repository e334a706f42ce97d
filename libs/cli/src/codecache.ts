import { accessSync, closeSync, constants, openSync, renameSync, unlinkSync } from "node:fs";
import type { Script } from "node:vm";
import { writeAll } from "./output.ts";

/**
 * What the loader (dist/NAME.cjs, made by tools/build.mjs) compiled the bundle with: the run
 * cache the starts on this machine left, the build's cache, a cache V8 refused (another Node,
 * another bundle), or none; the script, an fd of its directory, the build it is (the bundle's
 * sha256), the kind of command the loader took from the command line (whose run cache is
 * the one it tried), and for an engine's bundle (corerun's engine.ts, engine-create.ts) how to
 * run the whole one.
 */
interface CodeCache {
  cache: "run" | "build" | "rejected" | "none";
  script?: Script;
  dir?: number;
  name?: string;
  build?: string;
  kind?: string;
  whole?: () => void;
}

const KEY = Symbol.for("corerun.codeCache");

function loaded(): CodeCache | undefined {
  return (process as unknown as Record<symbol, CodeCache | undefined>)[KEY];
}

/**
 * The build this process runs (a hash of its bundle, from the loader); undefined when it runs
 * from source (tsx). What a build holds, corerun's built-in seccomp profile among it, is the same
 * for every process of that build.
 */
export function buildId(): string | undefined {
  return loaded()?.build;
}

/** Which code cache this process's bundle was compiled with ("run", "build", ...), for the trace. */
export function codeCacheUsed(): string | undefined {
  return loaded()?.cache;
}

/** The bundle this process runs ("corerun.bundle", "corerun.engine.bundle", ...), for the trace. */
export function bundleRun(): string | undefined {
  return loaded()?.name?.replace(/\.run-cache$/, "");
}

/**
 * Runs the executable's whole bundle in this process, as its loader would have: what an engine's
 * bundle (corerun's engine.ts, engine-create.ts) does with a command line it does not take,
 * before it has run anything of its own.
 */
export function runWholeBundle(): void {
  const whole = loaded()?.whole;
  if (!whole) throw new Error("no whole bundle to run: this bundle is run by its loader (dist/NAME.cjs), which names one");
  whole();
}

/**
 * Leaves NAME.bundle.run-cache.KIND beside the bundle at the end of a start of a `kind` whose
 * run cache this process was not compiled with (corerun's run, create, start, state, delete; a
 * tool's one): V8's code cache made now holds every function the process ran, those it was
 * compiled with included, where the build's (made after --version or --help) holds those that
 * run as the modules load. A start compiles the rest from source as it first calls each; with
 * the run cache it does not (corerun and corerun-exec: ~15 ms of a start, see the README). One
 * file per kind, chosen by the loader from the command line: a cache of every kind a machine
 * runs made each of them deserialize the functions of all the others (corerun's `run`, ~385 kB
 * alone, ~480 kB with the OCI commands').
 *
 * A line "corerun-code-cache BUILD LENGTH KIND" (the loader uses it only for the same build, the
 * kind it chose and whole), then V8's data. Written through the fd of the directory the loader
 * opened (/proc/self/fd: corerun-exec and corerun-mount have moved to the container's root by
 * now), under a name of its own (O_EXCL: every corerun-exec is PID 1), then renamed over the
 * last, so that a reader sees one whole file. A directory this process cannot write (a user
 * namespace's corerun-exec, a read-only install) is seen before anything is made. The fd is
 * closed: nothing is done a second time in one process.
 */
export function saveCodeCache(kind: string): void {
  const c = loaded();
  if (!c?.script || c.dir === undefined || c.name === undefined || c.build === undefined) return;
  const { script, dir, name, build } = c;
  delete c.script;
  delete c.dir;
  const at = `/proc/self/fd/${dir}`;
  let tmp: string | undefined;
  try {
    if (c.cache === "run" && c.kind === kind) return;
    accessSync(at, constants.W_OK);
    const data = script.createCachedData();
    tmp = `${at}/${name}.${kind}.${process.pid}-${Math.random().toString(36).slice(2)}`;
    const fd = openSync(tmp, "wx", 0o644);
    try {
      writeAll(fd, `corerun-code-cache ${build} ${data.length} ${kind}\n`);
      writeAll(fd, data);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, `${at}/${name}.${kind}`);
    tmp = undefined;
  } catch {
    // a directory this process cannot write: the cache stays as it is
  } finally {
    if (tmp !== undefined) {
      try {
        unlinkSync(tmp);
      } catch {
        // never made
      }
    }
    try {
      closeSync(dir);
    } catch {
      // closed already: nothing of it is left open
    }
  }
}
