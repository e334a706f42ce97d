/**
 * The trace of a start (corerun run --trace FILE, CORERUN_TRACE=FILE): one Chrome trace-event
 * file with a track for corerun and for every tool it ran, each step a span with its arguments,
 * nested and ordered as the start ran them. No time is asserted: only order, nesting and overlap.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";
import { busyboxRootfs, isRoot, leftoverState, pathThroughATool, removeStateRoot, stateRoot, tool } from "./helpers.ts";

interface Ev {
  name: string;
  ph: string;
  ts: number;
  dur?: number;
  pid: number;
  tid: number;
  args?: Record<string, unknown>;
}

let rootfs = "";
let root = "";
let scratch = "";

function readTrace(file: string): Ev[] {
  const doc = JSON.parse(readFileSync(file, "utf8")) as { traceEvents: Ev[] };
  assert.ok(Array.isArray(doc.traceEvents));
  return doc.traceEvents;
}

/** The spans of one process, by its track name. */
function trackOf(events: Ev[], name: string): { pid: number; ppid: number; spans: Ev[]; marks: Ev[] } {
  const meta = events.filter((e) => e.ph === "M" && e.name === "process_name" && e.args?.name === name);
  assert.equal(meta.length, 1, `one ${name} track`);
  const pid = meta[0]!.pid;
  return { pid, ppid: Number(meta[0]!.args!.ppid), spans: events.filter((e) => e.pid === pid && e.ph === "X"), marks: events.filter((e) => e.pid === pid && e.ph === "i") };
}

function one(spans: Ev[], name: string): Ev {
  const found = spans.filter((s) => s.name === name);
  assert.equal(found.length, 1, `one span ${name}: ${spans.map((s) => s.name).join(", ")}`);
  return found[0]!;
}

const end = (s: Ev) => s.ts + (s.dur ?? 0);
const within = (outer: Ev, inner: Ev) => outer.ts <= inner.ts && end(inner) <= end(outer);

/** The named spans exist and each starts after the previous one ended. */
function inOrder(spans: Ev[], names: string[]): void {
  const found = names.map((n) => one(spans, n));
  for (let i = 1; i < found.length; i++) assert.ok(end(found[i - 1]!) <= found[i]!.ts, `${names[i - 1]} before ${names[i]}`);
}

describe("corerun run --trace", { skip: !isRoot && "needs root" }, () => {
  before(() => {
    rootfs = busyboxRootfs();
    root = stateRoot();
    scratch = mkdtempSync(join(tmpdir(), "corerun-trace-e2e-"));
  });
  after(() => {
    try {
      assert.deepEqual(leftoverState(root), []);
    } finally {
      removeStateRoot(root);
      if (scratch.startsWith(tmpdir() + sep) && scratch.includes("corerun-trace-e2e-")) rmSync(scratch, { recursive: true, force: true });
    }
  });

  test("a bridge run's trace has every tool's track, every step nested and ordered, and the tree and network built at once", () => {
    const file = join(scratch, "bridge.json");
    const r = tool("corerun", ["run", "--root", root, "--rootfs", rootfs, "--trace", file, "--memory", "16", "/bin/true"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(readdirSync(scratch), ["bridge.json"], "only the trace is left: the parts were merged and removed");
    const events = readTrace(file);

    const corerun = trackOf(events, "corerun");
    const mount = trackOf(events, "corerun-mount");
    const net = trackOf(events, "corerun-net");
    const exec = trackOf(events, "corerun-exec");
    for (const t of [mount, net, exec]) assert.equal(t.ppid, corerun.pid, "corerun ran each tool");

    // corerun: its own start, then the steps of the run, in order, inside the run's span.
    inOrder(corerun.spans, ["node start", "load bundle", "corerun run"]);
    const runSpan = one(corerun.spans, "corerun run");
    // corerun-mount and corerun-net are started first, and load while corerun makes the state, the
    // cgroup and the first process: the build's span holds those steps, then waits for the tools.
    inOrder(corerun.spans, ["parse options", "build tree and network", "start", "tools exit", "container runs", "teardown"]);
    // The mount points are claimed (an fsync) once the first process runs, before corerun-mount gets its words.
    inOrder(corerun.spans, ["create state", "create cgroup", "start first process", "record first process", "claim mount points"]);
    for (const s of corerun.spans.filter((s) => !["node start", "load bundle", "corerun run"].includes(s.name))) assert.ok(within(runSpan, s), `${s.name} in the run`);
    assert.match(String(one(corerun.spans, "create cgroup").args?.id), /^[0-9a-f]{12}$/);
    const build = one(corerun.spans, "build tree and network");
    for (const name of ["create state", "create cgroup", "start first process", "record first process", "claim mount points"]) assert.ok(within(build, one(corerun.spans, name)), `${name} in the build`);

    for (const t of [mount, net]) {
      const name = t === mount ? "corerun-mount" : "corerun-net";
      const ran = one(corerun.spans, name);
      assert.ok(within(build, ran), `${name} within the build`);
      // Started before the first process is cloned; its command line (read argv) only after.
      assert.ok(ran.ts < one(corerun.spans, "create state").ts, `${name} started before the state is made`);
      assert.ok(ran.ts <= one(t.spans, "node start").ts, `${name}'s Node starts once corerun has started it`);
      assert.ok(end(one(corerun.spans, "record first process")) <= end(one(t.spans, "read argv")), `${name} has its command line once the first process is recorded`);
      if (t === mount) assert.ok(end(one(corerun.spans, "claim mount points")) <= end(one(t.spans, "read argv")), "corerun-mount has its command line once its mount points are claimed");
      // Its whole trace lies within corerun's step for it: it says done after its work, then its Node process exits.
      for (const s of t.spans) assert.ok(within(ran, s), `${s.name} of ${name} within corerun's step`);
    }
    // Run in parallel: the two tools' lives overlap.
    const life = (t: { spans: Ev[] }) => [Math.min(...t.spans.map((s) => s.ts)), Math.max(...t.spans.map(end))] as const;
    const [m0, m1] = life(mount);
    const [n0, n1] = life(net);
    assert.ok(m0 < n1 && n0 < m1, "corerun-mount and corerun-net overlap");

    inOrder(mount.spans, ["node start", "load bundle", "read argv", "corerun-mount"]);
    inOrder(mount.spans, ["enter namespaces", "create mount points", "bind rootfs", "mount /dev", "mount /sys", "mount volumes", "wait for ready", "move /proc", "pivot_root"]);
    assert.equal(one(mount.spans, "bind rootfs").args?.rootfs, rootfs);
    // Its steps lie within its own span; before it, its start and the reading of its words (with their slow calls, if any).
    const top = one(mount.spans, "corerun-mount");
    const handoff = one(mount.spans, "read argv");
    for (const s of mount.spans.filter((s) => s !== top && !["node start", "load bundle"].includes(s.name) && !within(handoff, s))) assert.ok(within(top, s), `${s.name} within corerun-mount's span`);

    inOrder(net.spans, ["node start", "load bundle", "read argv", "corerun-net setup"]);
    inOrder(net.spans, ["veth pair", "container address", "nft ruleset", "write /etc files"]);
    const veth = one(net.spans, "veth pair");
    assert.match(String(veth.args?.veth), /^cr[0-9a-f]{12}$/);
    assert.equal(veth.args?.peer, "eth0");

    // corerun-exec: the steps that need no reader while corerun-mount mounts, /proc only once
    // corerun-mount has opened ready, ready once /proc is mounted, its hostname, its capabilities
    // and the masks of /proc while corerun-mount pivots, the last steps after go, then the exec.
    inOrder(exec.spans, ["node start", "load bundle", "open sync fifos", "begin cgroup join", "open ready", "mount /proc", "send ready", "set hostname", "drop capabilities", "mask /proc", "wait for go", "join cgroup"]);
    assert.ok(end(one(exec.spans, "open ready")) >= one(mount.spans, "wait for ready").ts, "/proc is mounted after the reader opened ready");
    assert.ok(exec.marks.some((m) => m.name === "execve" && m.args?.file === "/bin/true"));
    assert.ok(one(mount.spans, "pivot_root").ts >= one(exec.spans, "send ready").ts, "the root moves after ready");
    assert.ok(end(one(exec.spans, "wait for go")) >= one(corerun.spans, "start").ts, "go comes from corerun's start");

    // Lanes: on every track, the spans of one tid nest properly (what trace viewers need).
    const tids = new Map<number, Ev[]>();
    for (const e of events.filter((e) => e.ph === "X")) tids.set(e.tid, [...(tids.get(e.tid) ?? []), e]);
    for (const [tid, spans] of tids) {
      const open: Ev[] = [];
      for (const s of spans.sort((a, b) => a.ts - b.ts || (b.dur ?? 0) - (a.dur ?? 0))) {
        while (open.length && end(open.at(-1)!) <= s.ts) open.pop();
        assert.ok(!open.length || end(s) <= end(open.at(-1)!), `${s.name} nests on track ${tid}`);
        open.push(s);
      }
    }
  });

  // The run above, under 16 MiB of memory, joins from corerun-exec; these from corerun.
  for (const limits of [[], ["--memory", "64", "--pids", "50", "--cpu", "50"]]) {
    test(`${limits.length ? "with pids and CPU limits (written once its Node has loaded)" : "without limits"} corerun joins the first process into its cgroups as it clones it, and the join is over before go`, () => {
      const file = join(scratch, "none.json");
      const r = tool("corerun", ["run", "--root", root, "--rootfs", rootfs, "--network", "none", ...limits, "--trace", file, "/bin/true"]);
      assert.equal(r.code, 0, r.stderr);
      const events = readTrace(file);
      rmSync(file);
      const corerun = trackOf(events, "corerun");
      const exec = trackOf(events, "corerun-exec");
      const startSpan = one(corerun.spans, "start");
      const join_ = one(corerun.spans, "join cgroup");
      assert.ok(within(startSpan, join_), "the join is waited for in corerun's start, before go");
      assert.ok(one(corerun.spans, "start first process").ts < join_.ts);
      const applied = corerun.spans.filter((s) => s.name === "apply limits");
      if (limits.length) {
        assert.equal(applied.length, 1, "one apply limits");
        assert.ok(within(startSpan, applied[0]!) && end(join_) <= applied[0]!.ts, "the limits are written in start, after the join");
        // The ready message exists once the span's write has begun; the span itself may end after
        // corerun-mount has read it, pivoted and said done, and corerun has written the limits.
        assert.ok(one(exec.spans, "send ready").ts <= applied[0]!.ts, "once corerun-exec has loaded and said ready");
      } else {
        assert.equal(applied.length, 0, "no limits to apply");
      }
      for (const name of ["begin cgroup join", "join cgroup"]) assert.ok(!exec.spans.some((s) => s.name === name), `corerun-exec has no ${name}`);
      inOrder(exec.spans, ["send ready", "drop capabilities", "cgroup tree", "mask /proc", "wait for go", "cgroup namespace", "mount /sys/fs/cgroup"]);
    });
  }

  test("CORERUN_TRACE traces the same way, and trace summary prints the critical path", () => {
    const file = join(scratch, "env.json");
    const r = tool("corerun", ["--root", root, "--rootfs", rootfs, "--network", "none", "/bin/true"], { env: { ...process.env, CORERUN_TRACE: file } });
    assert.equal(r.code, 0, r.stderr);
    const events = readTrace(file);
    for (const name of ["corerun", "corerun-mount", "corerun-exec"]) trackOf(events, name);
    assert.equal(events.some((e) => e.args?.name === "corerun-net"), false, "no network tool without a network");
    const s = tool("corerun", ["trace", "summary", file]);
    assert.equal(s.code, 0, s.stderr);
    const lines = s.stdout.trim().split("\n");
    assert.match(lines[0]!, /^STEP\s+PROCESS\s+START MS\s+DURATION MS\s+SHARE %$/);
    assert.match(lines[1]!, /^corerun\s+-\s+0\.0\s+[\d.]+\s+100\.0$/);
    const steps = lines.slice(1).map((l) => l.trim().split(/\s{2,}/)[0]!);
    for (const step of ["node start", "load bundle", "corerun", "parse options", "teardown"]) assert.ok(steps.includes(step), `${step} on the critical path:\n${s.stdout}`);
    assert.ok(pathThroughATool(steps), `neither corerun-mount's pivot nor corerun-exec's wait for go on the critical path:\n${s.stdout}`);
    rmSync(file);
  });

  test("a --trace path that cannot be written is refused before anything starts", () => {
    const r = tool("corerun", ["run", "--root", root, "--rootfs", rootfs, "--trace", join(scratch, "missing", "t.json"), "/bin/true"]);
    assert.equal(r.code, 125);
    assert.match(r.stderr, /^corerun: --trace .*missing\/t\.json: cannot write it \(ENOENT\); give a path in a writable directory\n$/);
    assert.deepEqual(leftoverState(root), []);
    assert.equal(existsSync(join(scratch, "missing")), false);
  });

  test("trace summary refuses a file that is not a trace", () => {
    const r = tool("corerun", ["trace", "summary", join(scratch, "none.json")]);
    assert.equal(r.code, 125);
    assert.match(r.stderr, /none\.json: cannot read it \(ENOENT\)/);
  });
});
