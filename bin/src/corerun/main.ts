import { closeSync } from "node:fs";
import { dirname } from "node:path";
import { defineTool, exitCodeOf, faultPoint, runTool, signalNumber, UsageError, waitChild, type ToolContext } from "@corerun/cli";
import { linuxSyscall as sys } from "@corerun/syscall";
import { netPaths } from "@corerun/net";
import { isAlive, openRecorded, readStates, stateRoot } from "@corerun/state";
import type { ArgsDef } from "citty";
import { findRunning, parseRunConfig, runArgs } from "./args.ts";
import { binDirOf, renderScript } from "./script.ts";
import { cleanupContainers } from "./cleanup.ts";
import {
  buildTree, createCgroup, createState, reportOom, setupNetwork, recordInit, start, startFirstProcess, stopTools, teardown, ToolFailed, type Container, type Tools,
} from "./steps.ts";

async function run(ctx: ToolContext): Promise<number> {
  const cfg = parseRunConfig(ctx);
  if (cfg.printScript) {
    process.stdout.write(renderScript(cfg, binDirOf(dirname(process.argv[1]!)), cfg.hostname));
    return 0;
  }
  let c: Container | undefined;
  let pid: number | undefined;
  const tools: Tools = [];
  // A signal during the start aborts it (the first process, still waiting, is killed); once the
  // container runs, signals are forwarded to it.
  let aborted: NodeJS.Signals | undefined;
  const kill = (p: number) => {
    try {
      process.kill(p, "SIGKILL");
    } catch {
      // gone already
    }
  };
  const abort = (sig: NodeJS.Signals) => {
    aborted = sig;
    if (pid !== undefined) kill(pid);
  };
  const starting = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
  for (const sig of starting) process.on(sig, abort);
  try {
    c = createState(cfg);
    ctx.log.info(`container ${c.id}: state ${c.path}`);
    const cg = cfg.rootless ? undefined : createCgroup(cfg, c);
    pid = startFirstProcess(cfg, c);
    faultPoint("corerun:cloned");
    recordInit(c, pid);
    ctx.log.info(`container ${c.id}: first process ${pid}`);
    if (aborted) kill(pid);
    const ended = waitChild(sys, pid);
    const built = Promise.all([buildTree(cfg, c, pid, tools), setupNetwork(cfg, c, pid, tools)]);
    // If the first process dies while the tree is being built, the build can never finish.
    const first = await Promise.race([built.then(() => undefined), ended]);
    if (aborted) return 128 + signalNumber(aborted);
    if (first) return exitCodeOf(first);
    faultPoint("corerun:tree-built");
    for (const sig of starting) process.off(sig, abort);
    start(c);
    const end = await ended;
    faultPoint("corerun:exited");
    ctx.log.info(`container ${c.id}: exited ${JSON.stringify(end)}`);
    if (cg) reportOom(cg, cfg.limits, ctx.log);
    return exitCodeOf(end);
  } catch (err) {
    if (aborted) return 128 + signalNumber(aborted);
    if (err instanceof ToolFailed) return err.exitCode;
    throw err;
  } finally {
    await stopTools(tools);
    // A failed cleanup step is reported, and left for `corerun cleanup`; the status stays the command's.
    if (c) teardown(cfg.root, c.id, c.path, ctx.log);
  }
}

const rootArg = { root: { type: "string", valueHint: "DIR", description: "state directory (default /run/corerun; env CORERUN_ROOT)" } } as const satisfies ArgsDef;

const cleanup = defineTool({
  name: "corerun cleanup",
  description: "Remove what containers left behind when their corerun was killed: processes, mount points, state.",
  usage: "[options] [ID...]",
  args: { ...rootArg, force: { type: "boolean", description: "also remove containers whose corerun is still running" } },
  tail: "command",
  examples: ["sudo corerun cleanup            # every container whose corerun is gone"],
  run(ctx) {
    return cleanupContainers(stateRoot(ctx.values.root?.at(-1)), ctx.tail, ctx.flags.force ?? false, ctx.log) ? 125 : 0;
  },
});

const kill = defineTool({
  name: "corerun kill",
  description: "Send a signal (default SIGKILL, as docker kill) to running containers' first process.",
  usage: "[options] NAME|ID...",
  args: { ...rootArg, signal: { type: "string", alias: "s", valueHint: "SIG", description: "signal name or number (default KILL)" } },
  tail: "command",
  examples: ["sudo corerun kill web", "sudo corerun kill -s TERM web   # PID 1 ignores it unless it handles it"],
  run(ctx) {
    const root = stateRoot(ctx.values.root?.at(-1));
    const given = ctx.values.signal?.at(-1) ?? "KILL";
    const sig = /^\d+$/.test(given) ? Number(given) : signalNumber(given.toUpperCase().startsWith("SIG") ? given.toUpperCase() : `SIG${given.toUpperCase()}`);
    if (!ctx.tail.length) throw new UsageError("name the containers to signal; see corerun ps");
    const targets = ctx.tail.map((ref) => {
      const state = findRunning(root, ref);
      if (!state) throw new UsageError(`no running container has the name or id "${ref}"; see corerun ps`);
      return state;
    });
    // Through a pidfd checked against the recorded start time: never a reused pid.
    for (const t of targets) {
      const fd = openRecorded(sys, t.init);
      if (fd === undefined) continue;
      try {
        sys.pidfdSendSignal(fd, sig);
      } finally {
        closeSync(fd);
      }
    }
    return 0;
  },
});

const ps = defineTool({
  name: "corerun ps",
  description: "List containers: id, status, first process, command.",
  usage: "[options]",
  args: { ...rootArg, json: { type: "boolean", description: "print the state files as a JSON array" } },
  tail: "none",
  run(ctx) {
    const root = stateRoot(ctx.values.root?.at(-1));
    const states = readStates(root);
    if (ctx.flags.json) {
      process.stdout.write(`${JSON.stringify(states, null, 2)}\n`);
      return 0;
    }
    const rows = [["ID", "NAME", "STATUS", "PID", "NETWORK", "COMMAND"], ...states.map((s) => [
      s.id,
      s.config.name ?? "-",
      s.status === "running" && !isAlive(s.owner) ? "orphaned" : s.status,
      String(s.init?.pid ?? "-"),
      s.config.network.mode === "bridge" ? (s.config.network.net ?? netPaths(root).defaultNetwork) : s.config.network.mode,
      s.config.command.join(" "),
    ])];
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)) + 2);
    for (const r of rows) process.stdout.write(`${r.map((cell, i) => (i < r.length - 1 ? cell.padEnd(widths[i]!) : cell)).join("")}\n`);
    return 0;
  },
});

const runTool_ = defineTool({
  name: "corerun",
  description: "Run a command in a new container: its own namespaces, root filesystem, /dev, /proc and /sys.",
  usage: "[run] [options] [--] CMD [ARGS...]",
  args: runArgs,
  tail: "command",
  notes: [
    "corerun chains its tools: the cgroup (corerun-cgroup) and the first process in new namespaces\n(corerun-ns), made in-process with their libraries; corerun-net (network, /etc files) and\ncorerun-mount (filesystem tree, pivot_root) as processes; then corerun-exec (/proc, cgroup,\nhostname, capabilities, exec CMD). --print-script prints the chain as a script of the tools.",
    "Exit status: CMD's own; 128+N when CMD died of signal N; 125 when corerun fails;\n126 when CMD cannot be executed; 127 when CMD is not found.",
  ],
  examples: [
    "sudo corerun --rootfs ./rootfs --hostname demo /bin/sh -c 'hostname; echo $$; ls /'",
    "sudo corerun -v /srv/data:/data:ro --network host /bin/ls /data",
    "corerun --print-script --hostname demo /bin/true > steps.sh",
  ],
  subCommands: {},
  run,
});

const runCmd = { ...runTool_, name: "corerun run", usage: "[options] [--] CMD [ARGS...]", subCommands: undefined };
runTool_.subCommands = { run: runCmd, ps, kill, cleanup };

void runTool(runTool_);
