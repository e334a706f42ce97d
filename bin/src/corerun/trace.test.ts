import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { TraceEvent } from "@corerun/cli";
import { criticalPath, parseTrace, spanTree, summaryRows } from "./trace.ts";

const proc = (pid: number, name: string, ppid: number): TraceEvent => ({ name: "process_name", ph: "M", ts: 0, pid, tid: pid, args: { name, ppid } });
const x = (name: string, pid: number, ts: number, dur: number): TraceEvent => ({ name, ph: "X", ts, dur, pid, tid: pid });

// corerun (pid 10) runs the tree and the network in parallel: the network (pid 12) ends last,
// so the start waited for it, not for corerun-mount (pid 11).
const events: TraceEvent[] = [
  proc(10, "corerun", 1), proc(11, "corerun-mount", 10), proc(12, "corerun-net", 10),
  x("node start", 10, 0, 50_000), x("load bundle", 10, 50_000, 20_000), x("corerun run", 10, 70_000, 130_000),
  x("create state", 10, 71_000, 4_000),
  x("build tree and network", 10, 80_000, 100_000),
  x("corerun-mount", 10, 81_000, 60_000), x("corerun-net", 10, 82_000, 97_000),
  x("node start", 11, 82_000, 40_000), x("mount /dev", 11, 125_000, 2_000),
  x("node start", 12, 83_000, 45_000), x("veth pair", 12, 130_000, 40_000), x("nft ruleset", 12, 171_000, 7_000),
  { name: "tree-built", ph: "i", ts: 180_000, pid: 10, tid: 10 },
  x("start", 10, 181_000, 1_000), x("teardown", 10, 185_000, 14_000),
];

describe("trace summary", () => {
  test("a tool's spans hang under the step of corerun that ran it", () => {
    const root = spanTree(events);
    const find = (s: typeof root, name: string, process: string): typeof root | undefined =>
      s.name === name && s.process === process ? s : s.children.map((c) => find(c, name, process)).find(Boolean);
    assert.deepEqual(find(root, "corerun-net", "corerun")!.children.map((c) => `${c.process}:${c.name}`), ["corerun-net:node start", "corerun-net:veth pair", "corerun-net:nft ruleset"]);
    assert.deepEqual(find(root, "build tree and network", "corerun")!.children.map((c) => c.name), ["corerun-mount", "corerun-net"]);
    assert.equal(root.ts, 0);
    assert.equal(root.end, 200_000);
  });

  test("the critical path follows what each step waited for: the tool that ended last", () => {
    const path = criticalPath(spanTree(events)).map(({ depth, step }) => `${depth} ${step.process}:${step.name}`);
    assert.deepEqual(path, [
      "0 :corerun",
      "1 corerun:node start", "1 corerun:load bundle", "1 corerun:corerun run",
      "2 corerun:create state", "2 corerun:build tree and network",
      "3 corerun:corerun-net",
      "4 corerun-net:node start", "4 corerun-net:veth pair", "4 corerun-net:nft ruleset",
      "2 corerun:start", "2 corerun:teardown",
    ]);
  });

  test("the table gives start and duration in ms from the first event, and the share of the whole", () => {
    const rows = summaryRows(events);
    assert.deepEqual(rows[0], ["STEP", "PROCESS", "START MS", "DURATION MS", "SHARE %"]);
    assert.deepEqual(rows.find((r) => r[0]!.trim() === "veth pair"), ["        veth pair", "corerun-net", "130.0", "40.0", "20.0"]);
    assert.deepEqual(rows[1], ["corerun", "-", "0.0", "200.0", "100.0"]);
  });

  test("a file that is not a trace is refused with its name", () => {
    assert.throws(() => parseTrace("{", "t.json"), /^UsageError: t\.json: not JSON/);
    assert.throws(() => parseTrace('{"a":1}', "t.json"), /t\.json: no traceEvents array/);
    assert.throws(() => spanTree([proc(1, "x", 0)]), /the trace has no spans/);
    assert.equal(parseTrace('[{"name":"a","ph":"X","ts":0,"dur":1,"pid":1,"tid":1}]', "t.json").length, 1);
  });
});
