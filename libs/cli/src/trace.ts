import { chmodSync, closeSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { basename, join } from "node:path";
import { instrumentSyscalls, linuxSyscall } from "@corerun/syscall";
import { writeErr } from "./output.ts";
import { bundleRun, codeCacheUsed } from "./codecache.ts";
import { UsageError } from "./exit.ts";

/**
 * A trace of every step, in Chrome's trace-event format (Perfetto and chrome://tracing open it).
 *
 * `CORERUN_TRACE=FILE` (or `corerun run --trace FILE`) turns it on for the process that sees it
 * first, the root, and for every tool it runs, which inherit the variable. Each process keeps its
 * events in memory and writes them at its end (or right before an execve) as JSON lines to a file
 * of its own in FILE.parts/, through an fd opened at its start: a tool may pivot_root or change
 * mount namespace before it ends. The root merges the parts into FILE when it ends.
 *
 * Timestamps are CLOCK_MONOTONIC in µs (process.hrtime is that clock on Linux, shared by every
 * process of the machine), so the tracks of different processes line up. Off, a span costs one
 * test of a module variable.
 */
export const TRACE_ENV = "CORERUN_TRACE";
/** Set by the root for the processes it runs: they write parts, the root merges. */
const PARTS_ENV = "CORERUN_TRACE_PARTS";
/** Kernel calls at least this slow (µs) become spans of their own. */
export const SLOW_SYSCALL_US = 200;

export interface TraceEvent {
  name: string;
  cat?: string;
  ph: "X" | "M" | "i";
  ts: number;
  dur?: number;
  pid: number;
  tid: number;
  s?: "p" | "t" | "g";
  args?: Record<string, unknown>;
}

interface Tracer {
  pid: number;
  events: TraceEvent[];
  /** The root's output file, or the fd of this process's part. */
  file?: string;
  parts: string;
  fd?: number;
  /** The root's start: events in the parts directory from before it belong to a killed run. */
  since?: number;
  /** Spans not ended yet: written as ended when the process writes its events (an execve, an exit inside a step). */
  open: Set<TraceEvent>;
}

let tracer: Tracer | undefined;

/** Microseconds of CLOCK_MONOTONIC. */
export function nowUs(): number {
  return Number(process.hrtime.bigint()) / 1000;
}

/**
 * The clock and the time since the process's origin, read together: the origin is the one less
 * the other. A process preempted between the two reads (a loaded machine) would place its origin
 * earlier by that pause, before the span of the parent that started it; a reading whose
 * bracketing performance.now() calls lie further apart than 50 µs is taken again.
 */
function originReading(): { now: number; sinceOrigin: number } {
  let best = { now: 0, sinceOrigin: 0, gap: Infinity };
  for (let i = 0; i < 20 && best.gap > 50; i++) {
    const before = performance.now() * 1000;
    const now = nowUs();
    const after = performance.now() * 1000;
    if (after - before < best.gap) best = { now, sinceOrigin: (before + after) / 2, gap: after - before };
  }
  return best;
}

export function tracing(): boolean {
  return tracer !== undefined;
}

/**
 * The pid and parent pid as the host sees them: inside a new PID namespace (corerun-exec is PID 1
 * there) process.pid says 1, while the host's /proc, still mounted at the start, names the process
 * by its host pid.
 */
function hostIds(): { pid: number; ppid: number } {
  try {
    const pid = Number(readlinkSync("/proc/self"));
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (pid > 0) return { pid, ppid };
  } catch {
    // no /proc: the process's own view
  }
  return { pid: process.pid, ppid: process.ppid };
}

/**
 * Starts tracing in this process when CORERUN_TRACE (or `file`) names a file. `name` is the
 * process's track name. Records the Node start (from the process's time origin to the end of
 * Node's bootstrap) and the bundle load (from there to now) as the first spans.
 */
export function startTrace(name: string, file: string | undefined = process.env[TRACE_ENV]): void {
  if (tracer || !file) return;
  const { now, sinceOrigin } = originReading();
  const { pid, ppid } = hostIds();
  const partsFromParent = process.env[PARTS_ENV];
  const parts = partsFromParent ?? `${file}.parts`;
  const t: Tracer = { pid, events: [], parts, open: new Set() };
  if (partsFromParent) {
    try {
      t.fd = openSync(join(parts, `${pid}.jsonl`), "a", 0o644);
    } catch (err) {
      // A mapped uid may not reach the root's directory: this process is left out, and says so.
      writeErr(`${name}: trace: cannot write to ${parts} (${(err as NodeJS.ErrnoException).code}); this process is not traced\n`);
      return;
    }
  } else {
    // World-writable and sticky, as /tmp: a tool running as a container's mapped uid writes its part here.
    try {
      mkdirSync(parts);
      // Not through mkdir's mode, which the umask narrows.
      chmodSync(parts, 0o1733);
    } catch (err) {
      // Left by a run that was killed: its events are older than this process and left out.
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw new UsageError(`${TRACE_ENV}=${file}: cannot make ${parts} (${(err as NodeJS.ErrnoException).code}); give a path in a writable directory`);
    }
    t.file = file;
    process.env[TRACE_ENV] = file;
    process.env[PARTS_ENV] = parts;
  }
  tracer = t;
  t.events.push({ name: "process_name", ph: "M", ts: 0, pid, tid: pid, args: { name, ppid } });
  // performance.now() counts from the process's time origin, taken as Node starts.
  const origin = now - sinceOrigin;
  if (!partsFromParent) t.since = origin;
  const boot = performance.nodeTiming.bootstrapComplete * 1000;
  t.events.push({ name: "node start", cat: "node", ph: "X", ts: origin, dur: boot, pid, tid: pid, args: { v8Start: round(performance.nodeTiming.v8Start) } });
  t.events.push({ name: "load bundle", cat: "node", ph: "X", ts: origin + boot, dur: now - origin - boot, pid, tid: pid, args: { script: basename(process.argv[1] ?? ""), bundle: bundleRun() ?? "none", cache: codeCacheUsed() ?? "none" } });
  instrumentSyscalls(linuxSyscall, (call, args, ts, dur) => {
    if (dur >= SLOW_SYSCALL_US) t.events.push({ name: call, cat: "syscall", ph: "X", ts, dur, pid, tid: pid, args: describeArgs(args) });
  });
  process.on("exit", () => endTrace());
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** Arguments as short, readable values: strings and numbers as they are, buffers by their size. */
function describeArgs(args: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  args.forEach((a, i) => {
    if (typeof a === "string" || typeof a === "number" || typeof a === "boolean" || a === null) out[`arg${i}`] = a;
    else if (Array.isArray(a)) out[`arg${i}`] = a.slice(0, 8).map(String).join(" ");
    else if (Buffer.isBuffer(a)) out[`arg${i}`] = `<${a.length} bytes>`;
  });
  return out;
}

/**
 * Runs `fn` as a span named `name`, with `args` (which cgroup, which mount, which veth). A
 * promise ends the span when it settles. A span that fails records the error line.
 */
export function span<T>(name: string, args: Record<string, unknown> | undefined, fn: () => T): T {
  const t = tracer;
  if (!t) return fn();
  const e: TraceEvent = { name, cat: "step", ph: "X", ts: nowUs(), pid: t.pid, tid: t.pid, ...(args ? { args } : {}) };
  t.open.add(e);
  const end = (err?: unknown) => {
    if (!t.open.delete(e)) return;
    if (err !== undefined) e.args = { ...args, error: err instanceof Error ? err.message : String(err) };
    e.dur = nowUs() - e.ts;
    t.events.push(e);
  };
  let out: T;
  try {
    out = fn();
  } catch (err) {
    end(err);
    throw err;
  }
  if (out instanceof Promise) {
    return out.then((v) => {
      end();
      return v;
    }, (err: unknown) => {
      end(err);
      throw err;
    }) as T;
  }
  end();
  return out;
}

/** A moment worth seeing on the timeline (a fault point, "go" sent). */
export function mark(name: string, args?: Record<string, unknown>): void {
  const t = tracer;
  if (t) t.events.push({ name, cat: "mark", ph: "i", s: "t", ts: nowUs(), pid: t.pid, tid: t.pid, ...(args ? { args } : {}) });
}

/**
 * A tool writes the spans it has ended so far to its part, keeping those still open: for a
 * process that goes on after the root has merged the parts (an OCI create's first process, which
 * waits for start), what it did before it let the root go on is then in the root's trace.
 */
export function flushTrace(): void {
  const t = tracer;
  if (t?.fd === undefined || !t.events.length) return;
  const events = t.events.splice(0);
  try {
    writeSync(t.fd, events.map((e) => `${JSON.stringify(e)}\n`).join(""));
  } catch {
    // the parts directory went away (the root has ended): nothing left to write to
  }
}

/**
 * Writes this process's events: to its part (a tool; before an execve too, which keeps no
 * JavaScript to run at the exit), or, in the root, merges every part into the trace file.
 */
export function endTrace(): void {
  const t = tracer;
  if (!t) return;
  const now = nowUs();
  for (const e of t.open) t.events.push({ ...e, dur: now - e.ts });
  t.open.clear();
  const events = t.events.splice(0);
  if (t.fd !== undefined) {
    try {
      if (events.length) writeSync(t.fd, events.map((e) => `${JSON.stringify(e)}\n`).join(""));
    } catch {
      // refused by the container's seccomp filter (loaded before the exec on some paths): lost
    }
    return;
  }
  tracer = undefined;
  const parts = readParts(t.parts);
  const fresh = parts.filter((e) => e.ph !== "M" && e.ts >= t.since!);
  const live = new Set(fresh.map((e) => e.pid));
  const all = [...events, ...fresh, ...parts.filter((e) => e.ph === "M" && live.has(e.pid))];
  writeFileSync(t.file!, renderTrace(all));
  rmSync(t.parts, { recursive: true, force: true });
}

/** Every event of the parts in DIR; a line cut short by a killed process is skipped. */
function readParts(dir: string): TraceEvent[] {
  const out: TraceEvent[] = [];
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const n of names.filter((x) => x.endsWith(".jsonl"))) {
    for (const line of readFileSync(join(dir, n), "utf8").split("\n")) {
      try {
        if (line) out.push(JSON.parse(line) as TraceEvent);
      } catch {
        // the end of a process that was killed while writing
      }
    }
  }
  return out;
}

/**
 * The trace file: events in time order, each process's overlapping spans (steps that run at the
 * same time, awaited together) put on lanes of their own so that every lane nests properly, as
 * trace viewers require of a thread's spans.
 */
export function renderTrace(events: readonly TraceEvent[]): string {
  const out = laneSpans(events);
  return `{"displayTimeUnit":"ms","traceEvents":[\n${out.map((e) => JSON.stringify(e)).join(",\n")}\n]}\n`;
}

/** A lane's tid: the process's pid for the first, pid + n·10⁷ (above any pid) for the others. */
const LANE = 10_000_000;

export function laneSpans(events: readonly TraceEvent[]): TraceEvent[] {
  const meta = events.filter((e) => e.ph === "M");
  const timed = events.filter((e) => e.ph !== "M").sort((a, b) => a.ts - b.ts || (b.dur ?? 0) - (a.dur ?? 0));
  const lanes = new Map<number, { end: number }[][]>();
  const out: TraceEvent[] = [];
  const used = new Set<string>();
  for (const e of timed) {
    let stacks = lanes.get(e.pid);
    if (!stacks) lanes.set(e.pid, (stacks = [[]]));
    const end = e.ts + (e.dur ?? 0);
    let lane = 0;
    for (; lane < stacks.length; lane++) {
      const stack = stacks[lane]!;
      while (stack.length && stack.at(-1)!.end <= e.ts) stack.pop();
      if (!stack.length || stack.at(-1)!.end >= end) break;
    }
    if (lane === stacks.length) stacks.push([]);
    if (e.ph === "X") stacks[lane]!.push({ end });
    const tid = lane === 0 ? e.pid : e.pid + lane * LANE;
    if (lane > 0 && !used.has(`${e.pid}:${lane}`)) {
      used.add(`${e.pid}:${lane}`);
      meta.push({ name: "thread_name", ph: "M", ts: 0, pid: e.pid, tid, args: { name: `parallel ${lane}` } });
    }
    out.push({ ...e, tid });
  }
  return [...meta, ...out];
}

/** Opens and closes FILE for writing, so that a bad --trace path is refused before anything starts. */
export function checkTraceFile(file: string): void {
  closeSync(openSync(file, "w"));
}
