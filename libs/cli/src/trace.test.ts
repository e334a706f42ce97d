import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { laneSpans, renderTrace, span, tracing, type TraceEvent } from "./trace.ts";

const base = mkdtempSync(join(tmpdir(), "corerun-trace-test-"));
after(() => {
  if (base.startsWith(tmpdir() + sep) && base.includes("corerun-trace-test-")) rmSync(base, { recursive: true, force: true });
});

const traceTs = fileURLToPath(new URL("./trace.ts", import.meta.url));

/** Runs a module script in a Node process of its own, with CORERUN_TRACE set to `file` (or unset). */
function node(script: string, file: string | undefined) {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.CORERUN_TRACE;
  delete env.CORERUN_TRACE_PARTS;
  if (file !== undefined) env.CORERUN_TRACE = file;
  return spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { encoding: "utf8", env });
}

const x = (name: string, pid: number, ts: number, dur: number): TraceEvent => ({ name, ph: "X", ts, dur, pid, tid: pid });

describe("trace writer", () => {
  test("off, a span only runs its function, sync or async, and no file appears", async () => {
    assert.equal(tracing(), false);
    assert.equal(span("a", undefined, () => 7), 7);
    assert.equal(await span("b", { k: 1 }, () => Promise.resolve(8)), 8);
    assert.throws(() => span("c", undefined, () => {
      throw new Error("boom");
    }), /boom/);
    const r = node(`import { span } from ${JSON.stringify(traceTs)}; span("x", undefined, () => 0);`, undefined);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(readdirSync(base), []);
  });

  test("a root and the process it runs write one trace: both tracks, nested spans, parts removed", () => {
    const file = join(base, "two.json");
    const child = `import { startTrace, span } from ${JSON.stringify(traceTs)}; startTrace("child"); span("inner", { which: "mount" }, () => {});`;
    const root = [
      `import { startTrace, span, mark } from ${JSON.stringify(traceTs)};`,
      `import { spawnSync } from "node:child_process";`,
      `startTrace("root");`,
      `span("outer", { n: 1 }, () => { mark("here"); const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", ${JSON.stringify(child)}], { stdio: "inherit" }); if (r.status) process.exit(3); });`,
      `await span("later", undefined, () => new Promise((res) => setTimeout(res, 5)));`,
    ].join("\n");
    const r = node(root, file);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(readdirSync(base).sort(), ["two.json"], "the parts directory is gone");
    const events = (JSON.parse(readFileSync(file, "utf8")) as { traceEvents: TraceEvent[] }).traceEvents;
    const names = new Map(events.filter((e) => e.ph === "M" && e.name === "process_name").map((e) => [String(e.args!.name), e]));
    assert.deepEqual([...names.keys()].sort(), ["child", "root"]);
    const rootPid = names.get("root")!.pid;
    assert.equal(names.get("child")!.args!.ppid, rootPid, "the child names its parent");
    const get = (name: string, pid: number) => events.find((e) => e.name === name && e.pid === pid && e.ph !== "M")!;
    const childPid = names.get("child")!.pid;
    for (const [name, pid] of [["node start", rootPid], ["load bundle", rootPid], ["outer", rootPid], ["later", rootPid], ["node start", childPid], ["inner", childPid]] as const) {
      assert.ok(get(name, pid), `${name} in ${pid}`);
    }
    const outer = get("outer", rootPid);
    const inner = get("inner", childPid);
    assert.deepEqual(outer.args, { n: 1 });
    assert.deepEqual(inner.args, { which: "mount" });
    assert.ok(outer.ts <= get("node start", childPid).ts && inner.ts + inner.dur! <= outer.ts + outer.dur!, "the child's spans lie within the span that ran it");
    assert.ok(get("load bundle", rootPid).ts + get("load bundle", rootPid).dur! <= outer.ts, "the start comes before the work");
    assert.ok(get("later", rootPid).ts >= outer.ts + outer.dur!, "spans are ordered");
    assert.equal(get("here", rootPid).ph, "i");
  });

  test("a process that ends inside a span (an exec, an exit) still writes it, ended there", () => {
    const file = join(base, "cut.json");
    const r = node(`import { startTrace, span } from ${JSON.stringify(traceTs)}; startTrace("cut"); span("never ends", undefined, () => process.exit(0));`, file);
    assert.equal(r.status, 0, r.stderr);
    const events = (JSON.parse(readFileSync(file, "utf8")) as { traceEvents: TraceEvent[] }).traceEvents;
    const cut = events.find((e) => e.name === "never ends");
    assert.ok(cut && cut.ph === "X" && cut.dur! >= 0);
    rmSync(file);
  });

  test("flushTrace writes a tool's ended spans before the root merges; the rest only at its end, after the merge, are not in the trace", () => {
    const file = join(base, "flush.json");
    // The child flushes, tells the root it may end, and goes on once the root has merged the parts.
    const child = [
      `import { startTrace, span, flushTrace } from ${JSON.stringify(traceTs)};`,
      `import { writeSync, readSync } from "node:fs";`,
      `startTrace("waiter");`,
      `span("open", undefined, () => { span("before", undefined, () => {}); flushTrace(); writeSync(1, "flushed\\n"); readSync(0, Buffer.alloc(1)); span("after", undefined, () => {}); });`,
    ].join("\n");
    const root = [
      `import { startTrace } from ${JSON.stringify(traceTs)};`,
      `import { spawn } from "node:child_process";`,
      `startTrace("root");`,
      `const c = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", ${JSON.stringify(child)}], { stdio: ["pipe", "pipe", "inherit"] });`,
      `await new Promise((res) => c.stdout.once("data", res));`,
      // Its stdin closes as the root exits, after the merge: then it goes on.
      `c.stdout.destroy(); c.stdin.unref(); c.unref();`,
    ].join("\n");
    const r = node(root, file);
    assert.equal(r.status, 0, r.stderr);
    const events = (JSON.parse(readFileSync(file, "utf8")) as { traceEvents: TraceEvent[] }).traceEvents;
    const waiter = events.find((e) => e.ph === "M" && e.name === "process_name" && e.args?.name === "waiter");
    assert.ok(waiter, "the waiter's track is in the root's trace");
    const names = events.filter((e) => e.pid === waiter.pid && e.ph === "X").map((e) => e.name).sort();
    assert.deepEqual(names, ["before", "load bundle", "node start"], "its ended spans; the one still open and those after the merge are not");
    rmSync(file);
  });

  test("a parts directory the process cannot write to leaves it untraced, with one line on stderr", () => {
    const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", `import { startTrace, tracing } from ${JSON.stringify(traceTs)}; startTrace("t"); process.stdout.write(String(tracing()) + "\\n");`], {
      encoding: "utf8", env: { ...process.env, CORERUN_TRACE: join(base, "x.json"), CORERUN_TRACE_PARTS: join(base, "missing", "parts") },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, "false\n");
    assert.match(r.stderr, /^t: trace: cannot write to .*missing\/parts \(ENOENT\); this process is not traced\n$/);
    assert.equal(existsSync(join(base, "x.json")), false);
  });
});

describe("a parts directory left by a killed run", () => {
  test("its events are left out of the next trace, and the directory is removed", () => {
    const file = join(base, "stale.json");
    mkdirSync(`${file}.parts`);
    writeFileSync(join(`${file}.parts`, "4242.jsonl"), [
      JSON.stringify({ name: "process_name", ph: "M", ts: 0, pid: 4242, tid: 4242, args: { name: "old" } }),
      JSON.stringify({ name: "old step", ph: "X", ts: 1, dur: 1, pid: 4242, tid: 4242 }),
      '{"name":"cut sh',
    ].join("\n"));
    const r = node(`import { startTrace, span } from ${JSON.stringify(traceTs)}; startTrace("new"); span("new step", undefined, () => {});`, file);
    assert.equal(r.status, 0, r.stderr);
    const events = (JSON.parse(readFileSync(file, "utf8")) as { traceEvents: TraceEvent[] }).traceEvents;
    assert.ok(events.some((e) => e.name === "new step"));
    assert.equal(events.some((e) => e.pid === 4242), false);
    assert.equal(existsSync(`${file}.parts`), false);
    rmSync(file);
  });
});

describe("laneSpans", () => {
  test("nested spans share the process's track; overlapping ones get lanes of their own", () => {
    const out = laneSpans([x("run", 5, 0, 100), x("mount", 5, 10, 50), x("net", 5, 12, 70), x("step", 5, 20, 5), x("start", 5, 85, 5), x("other", 6, 0, 10)]);
    const tid = (n: string) => out.find((e) => e.name === n)!.tid;
    assert.equal(tid("run"), 5);
    assert.equal(tid("mount"), 5);
    assert.equal(tid("step"), 5);
    assert.notEqual(tid("net"), 5);
    assert.equal(tid("start"), 5, "once the overlap is over, the main track again");
    assert.equal(tid("other"), 6);
    assert.deepEqual(out.filter((e) => e.ph === "M").map((e) => [e.name, e.tid, e.args!.name]), [["thread_name", tid("net"), "parallel 1"]]);
  });

  test("renderTrace writes JSON that parses back to the events, in time order", () => {
    const events = [x("b", 1, 20, 1), x("a", 1, 10, 30)];
    const doc = JSON.parse(renderTrace(events)) as { traceEvents: TraceEvent[]; displayTimeUnit: string };
    assert.equal(doc.displayTimeUnit, "ms");
    assert.deepEqual(doc.traceEvents.map((e) => e.name), ["a", "b"]);
  });
});

describe("CORERUN_TRACE in a directory that does not exist", () => {
  test("a tool says so in one line and exits 125", () => {
    const tool = fileURLToPath(new URL("./tool.ts", import.meta.url));
    const script = `import { runTool } from ${JSON.stringify(tool)}; void runTool({ name: "t", description: "", usage: "", args: {}, tail: "none", run: () => 0 }, []);`;
    const r = node(script, join(base, "missing", "t.json"));
    assert.equal(r.status, 125);
    assert.match(r.stderr, /^t: CORERUN_TRACE=.*missing\/t\.json: cannot make .*missing\/t\.json\.parts \(ENOENT\); give a path in a writable directory\n$/);
  });
});
