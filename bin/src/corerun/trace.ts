import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { checkTraceFile, defineTool, printTable, span, startTrace, tracing, TRACE_ENV, UsageError, type ToolContext, type ToolSpec, type TraceEvent } from "@corerun/cli";

/**
 * `corerun run --trace FILE`: the run traced as CORERUN_TRACE=FILE traces it, for this one
 * command. A path that cannot be written is refused before anything starts.
 */
export function withTraceFlag(run: (ctx: ToolContext) => Promise<number>): (ctx: ToolContext) => Promise<number> {
  return (ctx) => {
    const file = ctx.values.trace?.at(-1);
    if (file === undefined) return run(ctx);
    if (tracing()) throw new UsageError(`--trace ${file}: ${TRACE_ENV} already traces this run; use one of them`);
    const path = resolve(file);
    try {
      checkTraceFile(path);
    } catch (err) {
      throw new UsageError(`--trace ${file}: cannot write it (${(err as NodeJS.ErrnoException).code}); give a path in a writable directory`);
    }
    startTrace("corerun", path);
    return span("corerun run", undefined, () => run(ctx));
  };
}

export interface Step {
  name: string;
  process: string;
  pid: number;
  ts: number;
  end: number;
  args?: Record<string, unknown> | undefined;
  children: Step[];
}

export interface PathRow {
  depth: number;
  step: Step;
}

/** The trace's events, from the JSON object Chrome's format names (or a bare array of events). */
export function parseTrace(text: string, file: string): TraceEvent[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${file}: not JSON (${(err as Error).message}); give a file corerun run --trace wrote`);
  }
  const events = Array.isArray(doc) ? doc : (doc as { traceEvents?: unknown } | null)?.traceEvents;
  if (!Array.isArray(events)) throw new UsageError(`${file}: no traceEvents array; give a file corerun run --trace wrote`);
  return events as TraceEvent[];
}

/**
 * The spans as one tree. Within a process a span's parent is the shortest span that contains
 * it; a process's outermost spans hang under the span of its parent process that ran it (named
 * after the tool, as corerun's are) or else the shortest that contains them (or, for a process
 * that outlives that step, its start), so a tool's work sits under the step that ran it. The root is the process whose parent is not in the trace.
 */
export function spanTree(events: readonly TraceEvent[]): Step {
  const procs = new Map<number, { name: string; ppid: number }>();
  for (const e of events) if (e.ph === "M" && e.name === "process_name") procs.set(e.pid, { name: String(e.args?.name ?? e.pid), ppid: Number(e.args?.ppid ?? 0) });
  const steps: Step[] = events
    .filter((e) => e.ph === "X")
    .map((e) => ({ name: e.name, process: procs.get(e.pid)?.name ?? String(e.pid), pid: e.pid, ts: e.ts, end: e.ts + (e.dur ?? 0), args: e.args, children: [] }))
    .sort((a, b) => a.ts - b.ts || b.end - a.end);
  if (!steps.length) throw new UsageError("the trace has no spans; give a file corerun run --trace wrote");
  const contains = (p: Step, s: Step) => p !== s && p.ts <= s.ts && s.end <= p.end;
  const shortest = (cands: Step[]) => cands.reduce<Step | undefined>((best, p) => (!best || p.end - p.ts < best.end - best.ts ? p : best), undefined);
  const parentOf = new Map<Step, Step>();
  for (const s of steps) {
    const p = shortest(steps.filter((p) => p.pid === s.pid && contains(p, s)));
    if (p) parentOf.set(s, p);
  }
  const rootPid = steps.find((s) => !procs.has(procs.get(s.pid)?.ppid ?? 0))?.pid ?? steps[0]!.pid;
  const root: Step = { name: procs.get(rootPid)?.name ?? String(rootPid), process: "", pid: rootPid, ts: Infinity, end: -Infinity, children: [] };
  // A process's outermost spans go together under one step of its parent, chosen by the
  // process's whole life: a tool's start (node start, load bundle) belongs where its work does.
  const anchors = new Map<number, Step | undefined>();
  const anchorOf = (pid: number): Step | undefined => {
    if (anchors.has(pid)) return anchors.get(pid);
    const own = steps.filter((c) => c.pid === pid);
    const life: Step = { ...own[0]!, ts: Math.min(...own.map((c) => c.ts)), end: Math.max(...own.map((c) => c.end)) };
    const inParent = steps.filter((c) => c.pid === procs.get(pid)?.ppid);
    const around = inParent.filter((c) => contains(c, life));
    const p = shortest(around.filter((c) => c.name === life.process)) ?? shortest(around) ?? shortest(inParent.filter((c) => c.ts <= life.ts && life.ts <= c.end));
    anchors.set(pid, p);
    return p;
  };
  for (const s of steps) (parentOf.get(s) ?? (s.pid === rootPid ? undefined : anchorOf(s.pid)) ?? root).children.push(s);
  for (const s of root.children) {
    root.ts = Math.min(root.ts, s.ts);
    root.end = Math.max(root.end, s.end);
  }
  return root;
}

/**
 * The critical path: from the end of a step back to its start, the child that ended last
 * (before the one after it began) is what the step waited for; the walk goes down each.
 */
export function criticalPath(root: Step): PathRow[] {
  const rows: PathRow[] = [];
  const walk = (s: Step, depth: number) => {
    rows.push({ depth, step: s });
    const chain: Step[] = [];
    let cursor = s.end;
    for (;;) {
      let best: Step | undefined;
      // 1 µs of slack: a span that ends where the next begins is computed from two clock reads.
      for (const c of s.children) if (c.end <= cursor + 1 && !chain.includes(c) && (!best || c.end > best.end)) best = c;
      if (!best) break;
      chain.push(best);
      cursor = best.ts;
    }
    for (const c of chain.reverse()) walk(c, depth + 1);
  };
  walk(root, 0);
  return rows;
}

/** The critical path as a table: step (indented by depth), process, start and duration in ms, share of the whole. */
export function summaryRows(events: readonly TraceEvent[]): string[][] {
  const root = spanTree(events);
  const total = root.end - root.ts;
  const ms = (us: number) => (us / 1000).toFixed(1);
  return [
    ["STEP", "PROCESS", "START MS", "DURATION MS", "SHARE %"],
    ...criticalPath(root).map(({ depth, step }) => [
      `${"  ".repeat(depth)}${step.name}`, step.process || "-", ms(step.ts - root.ts), ms(step.end - step.ts), total > 0 ? (((step.end - step.ts) / total) * 100).toFixed(1) : "100.0",
    ]),
  ];
}

const summary: ToolSpec = defineTool({
  name: "corerun trace summary",
  description: "Print a trace's critical path as a table: each step the start waited for, its start, duration and share.",
  usage: "[options] FILE",
  args: {},
  tail: "command",
  notes: ["FILE is a trace written by corerun run --trace FILE (or CORERUN_TRACE=FILE). Times are in ms\nfrom the first event; SHARE is a step's duration over the whole trace's."],
  examples: ["sudo corerun run --trace /tmp/start.json --network none /bin/true && corerun trace summary /tmp/start.json"],
  run(ctx) {
    if (ctx.tail.length !== 1) throw new UsageError("name one trace file: corerun trace summary FILE");
    const file = ctx.tail[0]!;
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      throw new UsageError(`${file}: cannot read it (${(err as NodeJS.ErrnoException).code}); give a file corerun run --trace wrote`);
    }
    printTable(summaryRows(parseTrace(text, file)));
    return 0;
  },
});

export const traceCommand: ToolSpec = defineTool({
  name: "corerun trace",
  description: "Read a trace of a container's start (corerun run --trace FILE).",
  usage: "COMMAND [options]",
  args: {},
  tail: "none",
  subCommands: { summary },
});
