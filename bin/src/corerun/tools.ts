/**
 * The tools a start runs, from corerun's side: where their scripts are and how Node starts them,
 * corerun-exec's copy for a user namespace, a tool started before its words are known (startTool)
 * and the end of those a start ran. Shared by `corerun run` (steps.ts) and an OCI create
 * (oci-create.ts), which the engine's bundle runs without the network and image code steps.ts
 * reaches.
 */
import { chmodSync, chownSync, closeSync, cpSync, existsSync, mkdirSync, mkdtempSync, read, readFileSync, renameSync, rmSync, statSync, write } from "node:fs";
import { dirname, join } from "node:path";
import { envp, FD_CLOEXEC, koffiModulesDir, linuxSyscall as sys, stepError } from "@corerun/syscall";
import { ARGV_FD_ENV, DONE_FD_ENV, encodeArgv, errorLine, exitCodeForError, faultPoint, nodeCommand, PARENT_PID_ENV, span, waitChild, type ProcessEnd } from "@corerun/cli";
import { decode } from "@corerun/sync";
import { hostIdOf, procStartTime, updateState, type IdRange, type State } from "@corerun/state";

/** The bundled tools sit next to corerun's own bundle. */
const DIST = dirname(process.argv[1] ?? ".");

export function toolScript(name: string): string {
  return join(DIST, `${name}.cjs`);
}

/**
 * In a user namespace the first process runs as the host uid that container root maps to: it
 * must reach the sync FIFOs (and may write its /etc files), but nothing else of the state. The
 * directories become traversable, not listable; state.json stays root's. `files`: the sync FIFOs
 * and what else of the state the first process opens.
 */
export function handToContainerRoot(root: string, dir: string, userns: { uidMap: IdRange[]; gidMap: IdRange[] }, files: readonly string[]): void {
  const uid = hostIdOf(userns.uidMap, 0)!;
  const gid = hostIdOf(userns.gidMap, 0)!;
  chmodSync(root, 0o711);
  chmodSync(dir, 0o711);
  for (const f of files) chownSync(f, uid, gid);
}

/**
 * The files corerun-exec runs from, readable by a mapped uid: the checkout may sit where only
 * host root can read (under /root, or a 0700 temporary directory). The bundle (koffi's JavaScript
 * is in it), koffi's native addon and corerun's native helper are copied once per build into
 * ROOT/runtime/KEY, owned by root and world-readable, as dist/ and node_modules/ are laid out in
 * the checkout: the bundle dlopens koffi's addon by its path from dist/, else runs koffi's own
 * lookup (~1 ms more of each start).
 */
export function execRuntime(root: string): string {
  // The loader, the bundle it compiles, the bundle's code caches (tools/build.mjs, and the run
  // caches of its kinds, exec and oci, that starts have left) and the native helper, which
  // corerun-exec loads from beside its script (its cgroup join).
  const files = ["corerun-exec.cjs", "corerun-exec.bundle.cjs", "corerun-exec.bundle.cache", "corerun-exec.bundle.run-cache.exec", "corerun-exec.bundle.run-cache.oci", "libcorerun.so"].filter((f) => existsSync(join(DIST, f)));
  // The build and the Node it runs on, as they are: no digest of them, which would load
  // node:crypto (~5 ms) before the clone of every start in a user namespace.
  const st = statSync(join(DIST, "corerun-exec.bundle.cjs"));
  const key = `${st.size}-${Math.trunc(st.mtimeMs * 1000)}-node${process.versions.node}-dist`;
  const dest = join(root, "runtime", key);
  const script = join(dest, "dist", "corerun-exec.cjs");
  if (existsSync(script)) return script;
  mkdirSync(join(root, "runtime"), { recursive: true, mode: 0o755 });
  chmodSync(root, 0o711);
  const tmp = mkdtempSync(join(root, "runtime", ".tmp-"));
  try {
    const modules = koffiModulesDir();
    mkdirSync(join(tmp, "dist"), { mode: 0o755 });
    for (const f of files) cpSync(join(DIST, f), join(tmp, "dist", f));
    cpSync(join(modules, "@koromix"), join(tmp, "node_modules", "@koromix"), { recursive: true });
    chmodSync(tmp, 0o755);
    renameSync(tmp, dest);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    if (!existsSync(script)) throw new Error(`cannot stage corerun-exec in ${dest}`, { cause: err });
  }
  return script;
}

/** Node opens every fd close-on-exec; these few are let through one clone, and no other spawn. */
export function withInheritedFds<T>(fds: readonly number[], fn: () => T): T {
  for (const fd of fds) sys.setFdFlags(fd, 0);
  try {
    return fn();
  } finally {
    for (const fd of fds) sys.setFdFlags(fd, FD_CLOEXEC);
  }
}


/**
 * What the first process said on its report pipe (corerun-exec --report-fd) by the time the
 * pipe closed: nothing when the command was exec'd; else the step that failed after go, as
 * corerun-exec's {"t":"error",...} line or corerun-exe's {step, errno}, with the status the
 * process ends with. Read to the end: the command's exec closes the pipe.
 */
export function execReport(fd: number, file: string): { message: string; exitCode: number } | undefined {
  const data = readFileSync(fd);
  if (data.length === 0) return undefined;
  if (data[0] === 0x7b) {
    const msg = decode(data.toString("utf8").split("\n")[0]!);
    if (msg.t === "error") return { message: `corerun-exec: ${msg.message}`, exitCode: msg.exitCode };
  } else if (data.length >= 8) {
    const err = stepError(data, file);
    return { message: `corerun: ${errorLine(err)}`, exitCode: exitCodeForError(err) };
  }
  return { message: `corerun: the container's first process reported a failure it could not name (${data.length} bytes)`, exitCode: 125 };
}

/** A tool failed and has already said why on stderr; corerun exits with its status. */
export class ToolFailed extends Error {
  override name = "ToolFailed";
  /** `said`: the tool's own error line, when corerun captured it (the OCI commands log it). */
  constructor(readonly tool: string, readonly exitCode: number, said?: string) {
    super(said || `${tool} failed`);
  }
}

export function recordInit(c: { path: string }, pid: number): State {
  const state = updateState(c.path, () => ({ init: { pid, startTime: procStartTime(pid) ?? 0 } }));
  faultPoint("corerun:init-recorded");
  return state;
}

/**
 * The tools corerun runs during a start: stopped when the start ends early, and waited for once
 * they have said done (their exit status still counts).
 */
export type Tools = RunningTool[];

export interface RunningTool {
  name: string;
  pid: number;
  /** Its exit, reaped (waitid). */
  end: Promise<ProcessEnd>;
  /** Set once it has exited. */
  ended?: ProcessEnd;
  /** What it said on stderr, when corerun captures it: all of it once the pipe has closed. */
  said(): Promise<string>;
}

/**
 * A tool started before its command line is known (CORERUN_ARGV_FD, libs/cli handoff.ts): its
 * Node start overlaps corerun's own steps until `run` hands it its words.
 */
export interface EarlyTool {
  /** Gives the tool its words (once); resolves when it has done its work: said done, or exited 0. */
  run(args: string[]): Promise<void>;
}

/** The fds a started tool gets after stdio: its words, then where it says done. */
const ARGV_FD = 3;
const DONE_FD = 4;

/**
 * Starts a tool now, to run it later: the trace's span for it (in the parallel lane of corerun's
 * track) goes from this start to its done. It gets a session of its own: a Ctrl-C on the
 * terminal reaches corerun, which aborts the start, instead of killing the tool halfway.
 */
export function startTool(tools: Tools, name: string, opts: { captureErrors?: boolean; onPause?: () => Promise<void> } = {}): EarlyTool {
  const spanArgs: Record<string, unknown> = {};
  let give!: (args: string[]) => void;
  const words = new Promise<string[]>((resolve) => (give = resolve));
  const done = span(name, spanArgs, () => runEarly(tools, name, words, opts));
  // Awaited through run; a start aborted before it never asks, and stopTools ends the tool.
  done.catch(() => {});
  return {
    run(args) {
      spanArgs.argv = args.join(" ");
      give(args);
      return done;
    },
  };
}

/**
 * Reads a pipe to its end in libuv's thread pool, passing on each chunk, and closes it. The
 * pipes corerun reads from its tools are few (done, and in `create` stderr and stdout), each a
 * thread until the tool closes its end; node:net would read them on the event loop, but loads in
 * ~5 ms on the start path.
 */
function readPipe(fd: number, onChunk: (chunk: Buffer) => void): Promise<void> {
  const buf = Buffer.alloc(4096);
  return new Promise((resolve) => {
    const next = () =>
      read(fd, buf, 0, buf.length, null, (err, n) => {
        if (err || n === 0) {
          closeSync(fd);
          resolve();
          return;
        }
        onChunk(Buffer.from(buf.subarray(0, n)));
        next();
      });
    next();
  });
}

/** Writes all of data on a pipe in the thread pool (a reader that is still starting does not block corerun) and closes it; a reader gone is no error. */
function writePipe(fd: number, data: Buffer): void {
  const from = (at: number) =>
    write(fd, data, at, data.length - at, null, (err, n) => {
      if (!err && at + n < data.length) return from(at + n);
      closeSync(fd);
    });
  from(0);
}

async function runEarly(tools: Tools, name: string, words: Promise<string[]>, opts: { captureErrors?: boolean; onPause?: () => Promise<void> }): Promise<void> {
  const [node, ...script] = nodeCommand(toolScript(name));
  const env = envp({ ...process.env, [PARENT_PID_ENV]: String(process.pid), [ARGV_FD_ENV]: String(ARGV_FD), [DONE_FD_ENV]: String(DONE_FD) });
  // [read end, write end] of each pipe; the tool's ends are closed here once it has them.
  const argvPipe = sys.pipe();
  const donePipe = sys.pipe();
  const errPipe = opts.captureErrors ? sys.pipe() : undefined;
  const outPipe = opts.onPause ? sys.pipe() : undefined;
  const inPipe = opts.onPause ? sys.pipe() : undefined;
  const stdout = outPipe ? outPipe[1] : name === "corerun-net" ? -1 : 1;
  const fds = [inPipe ? inPipe[0] : -1, stdout, errPipe ? errPipe[1] : 2, argvPipe[0], donePipe[1]];
  let pid: number;
  try {
    pid = sys.spawn(node!, [node!, ...script], env, fds, true);
  } catch (err) {
    // corerun's own ends; the tool's go below.
    for (const fd of [argvPipe[1], donePipe[0], errPipe?.[0], outPipe?.[0], inPipe?.[1]]) if (fd !== undefined) closeSync(fd);
    throw err;
  } finally {
    for (const fd of [argvPipe[0], donePipe[1], errPipe?.[1], outPipe?.[1], inPipe?.[0]]) if (fd !== undefined) closeSync(fd);
  }
  // The reads of its pipes and the wait for its exit begin once the caller's synchronous steps
  // are over (up to the clone of the first process): the first read starts libuv's thread pool,
  // which waits until its four threads run, and the first wait for a child sets up Node's SIGCHLD
  // handling, ~3 ms before the clone in traces. A tool that dies meanwhile is a zombie that the
  // wait finds at once; its pipes keep what it wrote.
  const later = <T>(begin: () => Promise<T>): Promise<T> => Promise.resolve().then(begin);
  let said = "";
  const saidAll = errPipe ? later(() => readPipe(errPipe[0], (chunk) => (said += chunk.toString("utf8")))) : Promise.resolve();
  const running: RunningTool = { name, pid, end: later(() => waitChild(sys, pid, [])), said: () => saidAll.then(() => said) };
  void running.end.then((end) => (running.ended = end));
  tools.push(running);
  faultPoint(`corerun:${name}-started`);
  // Done as soon as the word is read, not at the pipe's end (one more read in the thread pool).
  let text = "";
  const isDone = () => text.startsWith("done\n");
  const saidDone = new Promise<"done" | ProcessEnd>((resolve) => {
    void later(() => readPipe(donePipe[0], (chunk) => {
      text += chunk.toString("utf8");
      if (isDone()) resolve("done");
    })).then(() => resolve(isDone() ? "done" : running.end));
  });
  // A tool that pauses (corerun-mount --hook-pause) says "built"; it goes on when answered.
  let paused: Promise<void> | undefined;
  if (outPipe) {
    void later(() => readPipe(outPipe[0], (chunk) => {
      if (!paused && chunk.toString("utf8").includes("built")) {
        paused = opts.onPause!().then(() => writePipe(inPipe![1], Buffer.from("go\n")), (err: unknown) => {
          signalChild(pid, "SIGKILL");
          throw err;
        });
        // Awaited after the done below; until then a failure must not count as unhandled.
        paused.catch(() => {});
      }
    }));
  }
  const args = await Promise.race([words, running.end.then(async () => Promise.reject(await failure(running)))]).catch((err: unknown) => {
    closeSync(argvPipe[1]);
    if (inPipe && !paused) closeSync(inPipe[1]);
    throw err;
  });
  writePipe(argvPipe[1], encodeArgv(args));
  const end = await saidDone;
  if (inPipe && !paused) closeSync(inPipe[1]);
  if (paused) await paused;
  if (end !== "done" && end.exitCode !== 0) throw await failure(running);
}

/** A signal to a child that may have exited already (its pid is not reused before it is reaped). */
export function signalChild(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone already
  }
}

/** An ended tool's failure, with the last line it said when corerun captured its stderr. */
async function failure(t: RunningTool): Promise<ToolFailed> {
  const end = await t.end;
  return new ToolFailed(t.name, typeof end.exitCode === "number" ? end.exitCode : 125, (await t.said()).trim().split("\n").at(-1));
}

/**
 * The tools that said done have exited with status 0: waited for after go, before the start
 * counts as made. A tool that fails after saying done is reported as any other failure.
 */
export async function toolsExited(tools: Tools): Promise<void> {
  for (const t of tools) if ((await t.end).exitCode !== 0) throw await failure(t);
}

/** Kills the tools still running and waits for them, before their work is cleaned up. */
export async function stopTools(tools: Tools): Promise<void> {
  await Promise.all(tools.map((t) => {
    if (!t.ended) signalChild(t.pid, "SIGKILL");
    return t.end;
  }));
}
