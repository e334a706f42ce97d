import { closeSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import {
  defineTool, errorLine, exitCodeForError, exitCodeOf, faultPoint, printJson, runTool, saveCodeCache, signalNumber, span, UsageError, waitChild, writeErr, writeOut,
  type ProcessEnd, type ToolContext, type ToolSpec,
} from "@corerun/cli";
import type { CgroupManager } from "@corerun/cgroup";
import { traceCommand, withTraceFlag } from "./trace.ts";
import { linuxSyscall as sys } from "@corerun/syscall";
import { goTaken } from "@corerun/sync";
import { stateRoot } from "@corerun/state";
import { parseRunConfig, runArgs, startedAgain } from "./args.ts";
import { eachNamed, findContainer, ociKill, ociPids, parseSignal, psTable } from "./oci.ts";
import { events, exec, featuresTool, isOciRun, ociRun, update, list, pause, printVersion, resume, unpause } from "./oci-cli.ts";
import { del, rootArg, runOci, splitGlobals, state } from "./oci-calls.ts";
import { create } from "./oci-create.ts";
import { restart, start as startTool } from "./start.ts";
import { HEALTH_WORD, healthcheck, healthHandler } from "./health.ts";
import { binDirOf, renderScript } from "./script.ts";
import { openTerminal, relayTerminal } from "./tty.ts";
import { statsTool } from "./stats.ts";
import { attach, runAttached, wait } from "./attach.ts";
import { applyUlimits } from "./ulimit.ts";
import { seccompCommand } from "./security.ts";
import { commitTool, imageTool } from "./image.ts";
import { cleanupContainers } from "./cleanup.ts";
import { attachedRun, detachedStart, inspect, listContainers, logs, MONITOR_EXIT, monitorExit, port, rm, runDetached, stop, stopRestarting } from "./lifecycle.ts";
import { buildTree, createCgroup, createState, restartState, reportOom, setupNetwork, start, startBuilders, startFirstProcess, teardown, type Container } from "./steps.ts";
import { execReport, recordInit, signalChild, stopTools, ToolFailed, toolsExited, type Tools } from "./tools.ts";

async function run(ctx: ToolContext): Promise<number> {
  // A container started again (a restart, corerun start) reads its command line in the directory
  // it was first run from: its relative paths (--rootfs ./dir, -v ./data:/data) are that one's.
  const again = startedAgain(stateRoot(ctx.values.root?.at(-1)))?.detached?.start?.cwd;
  if (again !== undefined) {
    try {
      process.chdir(again);
    } catch (err) {
      throw new UsageError(`the directory this container was run from, ${again}, is gone (${(err as NodeJS.ErrnoException).code}); its command line is read there`);
    }
  }
  const cfg = span("parse options", undefined, () => parseRunConfig(ctx));
  if (cfg.printScript) {
    writeOut(renderScript(cfg, binDirOf(dirname(process.argv[1]!)), cfg.hostname));
    return 0;
  }
  // -d: this process is either the client, which hands the start to corerun-monitor, or that start.
  const detached = detachedStart(cfg);
  if (cfg.detach && !detached) return runDetached(cfg);
  // -it: the same start, with this process attached to it (the detach keys leave it running).
  if (attachedRun(cfg) && !detached) return runAttached(cfg, ctx.values["detach-keys"]?.at(-1));
  let c: Container | undefined;
  let cg: CgroupManager | undefined;
  let pid: number | undefined;
  const tools: Tools = [];
  // A restarted container's state outlives a failed start: its monitor records the failure.
  let keepState = false;
  // A signal during the start aborts it (the first process, still waiting, is killed); once the
  // container runs, signals are forwarded to it.
  let aborted: NodeJS.Signals | undefined;
  const abort = (sig: NodeJS.Signals) => {
    aborted = sig;
    if (pid !== undefined) signalChild(pid, "SIGKILL");
  };
  const starting = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
  for (const sig of starting) process.on(sig, abort);
  let ended: Promise<ProcessEnd> | undefined;
  // Set once the command runs: the start was whole, and its code is worth a run cache.
  let started = false;
  let report: [number, number] | undefined;
  let cidfile: string | undefined;
  try {
    // corerun-mount (and corerun-net) start loading now, and get their command lines once the
    // first process exists: their Node start runs alongside corerun's steps up to the clone,
    // which all lie within this span.
    const first = await span("build tree and network", undefined, () => {
      const builders = startBuilders(cfg, tools);
      if (detached?.restartOf) {
        c = span("restart state", { id: detached.restartOf }, () => restartState(cfg, detached.restartOf!, detached.extra.owner));
        // Stopped by the user while it waited: it stays as it is.
        if (!c) return "stopped" as const;
        keepState = true;
      } else {
        c = span("create state", { root: cfg.root }, () => createState(cfg, detached?.extra));
        if (cfg.cidfile) cidfile = writeCidfile(cfg.cidfile, c.id);
      }
      detached?.created(c);
      ctx.log.info(`container ${c.id}: state ${c.path}`);
      cg = cfg.rootless ? undefined : span("create cgroup", { id: c.id, limits: cfg.limits }, () => createCgroup(cfg, c!));
      // A detached start answers for its container only once the command runs: corerun-exec
      // reports a failure after go, and corerun-exe a failed exec, on this pipe, which closes
      // (without a word) as the command is exec'd.
      if (detached) report = sys.pipe();
      try {
        pid = span("start first process", { exec: "corerun-exec" }, () => (detached ? detached.withOutput(() => startFirstProcess(cfg, c!, report![1])) : startFirstProcess(cfg, c!)));
      } finally {
        if (report) closeSync(report[1]);
      }
      faultPoint("corerun:cloned");
      span("record first process", { pid }, () => recordInit(c!, pid!));
      ctx.log.info(`container ${c.id}: first process ${pid}`);
      if (aborted) signalChild(pid, "SIGKILL");
      // A detached container's first process is left for corerun-monitor to reap: its status is the monitor's to record.
      ended = waitChild(sys, pid, undefined, detached !== undefined);
      // If the first process dies while the tree is being built, the build can never finish.
      const built = Promise.all([buildTree(cfg, c, pid, builders.mount), setupNetwork(cfg, c, pid, builders.net)]);
      return Promise.race([built.then(() => undefined), ended]);
    });
    if (first === "stopped") return 0;
    if (aborted) return 128 + signalNumber(aborted);
    if (first) return exitCodeOf(first);
    faultPoint("corerun:tree-built");
    for (const sig of starting) process.off(sig, abort);
    // -t: the pty comes from the container's devpts, mounted now; corerun-exec takes it after go.
    applyUlimits(pid!, cfg.ulimits);
    const term = cfg.tty ? openTerminal(pid!, detached?.size) : undefined;
    span("start", { fifo: "go" }, () => start(c!, term?.index));
    // corerun-mount and corerun-net said done before their exit: it is awaited now, while the
    // container starts, and its status checked.
    await span("tools exit", undefined, () => toolsExited(tools));
    if (detached) {
      // The first process dies with this start until it has taken go: not a moment sooner may it exit.
      await goTaken(c!.dir);
      const failed = report && execReport(report[0], cfg.command[0]!);
      if (failed) {
        writeErr(`${failed.message}\n`);
        return failed.exitCode;
      }
      if (term) detached.terminal(term);
      detached.started(pid!, c!);
      c = undefined;
      started = true;
      return 0;
    }
    const relay = term && relayTerminal(term.master, { input: cfg.interactive ? process.stdin : undefined, output: process.stdout });
    started = true;
    const end = await span("container runs", { pid }, () => ended!);
    // The peer stays open here until the end: a pty whose peer nobody holds yet reads as ended.
    await relay?.finish(term!.peer);
    faultPoint("corerun:exited");
    ctx.log.info(`container ${c!.id}: exited ${JSON.stringify(end)}`);
    if (cg) reportOom(cg, cfg.limits, ctx.log);
    return exitCodeOf(end);
  } catch (err) {
    if (aborted) return 128 + signalNumber(aborted);
    if (err instanceof ToolFailed) return err.exitCode;
    throw err;
  } finally {
    if (report) closeSync(report[0]);
    await stopTools(tools);
    // A join still under way would race the teardown's removal of the cgroups (after go the
    // wait returns at once); its failure was not the cause of this end.
    try {
      c?.joining?.();
    } catch {
      // the start has failed already
    }
    // A failed cleanup step is reported, and left for `corerun cleanup`; the status stays the command's.
    if (c) span("teardown", { id: c.id }, () => teardown(cfg.root, c!.id, c!.path, ctx.log, keepState));
    if (started) saveCodeCache("run");
    // A start that failed before its command ran leaves no id behind (its container is gone).
    else if (cidfile) rmSync(cidfile, { force: true });
  }
}

/** --cidfile: created here (O_EXCL: another start's file is never overwritten) with the new id. */
function writeCidfile(path: string, id: string): string {
  try {
    writeFileSync(path, id, { flag: "wx" });
  } catch (err) {
    throw new UsageError(`--cidfile ${path}: cannot be created (${(err as NodeJS.ErrnoException).code}); give a path that does not exist yet, in a directory corerun may write`);
  }
  return path;
}


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
  description: "Send a signal (default SIGKILL, as docker kill) to containers' first process, or with --all to every process.",
  usage: "[options] NAME|ID... | NAME|ID SIG",
  args: {
    ...rootArg,
    signal: { type: "string", alias: "s", valueHint: "SIG", description: "signal name or number (default KILL)" },
    all: { type: "boolean", alias: "a", description: "signal every process of the container's cgroup" },
  },
  tail: "command",
  notes: [
    "runc's form `kill ID SIG` (a number or a name as second word) is taken as -s SIG ID.",
    "A detached container killed here is not started again by its --restart policy (Docker's rule).\nOne that is restarting (its monitor waits to start it again) stays exited, with its last run's\nstatus, and kill exits 0, as docker kill does; corerun start starts it again.",
  ],
  examples: ["sudo corerun kill web", "sudo corerun kill -s TERM web   # PID 1 ignores it unless it handles it", "sudo corerun kill --all web 9"],
  run(ctx) {
    const root = stateRoot(ctx.values.root?.at(-1));
    if (!ctx.tail.length) throw new UsageError("name the containers to signal; see corerun ps");
    const runcForm = ctx.tail.length === 2 && ctx.values.signal === undefined && /^(\d+|(SIG)?[A-Z][A-Z0-9+-]*)$/i.test(ctx.tail[1]!) && !findContainer(root, ctx.tail[1]!, true);
    const sig = parseSignal(runcForm ? ctx.tail[1] : (ctx.values.signal?.at(-1) ?? "KILL"));
    const refs = runcForm ? [ctx.tail[0]!] : ctx.tail;
    const each = eachNamed(root, refs);
    // A container killed by its user is not started again by its restart policy (Docker's rule).
    // One that was waiting to restart has nothing running to signal: ending its restarting is the
    // kill (as Docker's), and it stays exited with its last run's status.
    const waited = each.found.map(({ state }) => stopRestarting(root, state).wasWaiting);
    // Through a pidfd checked against the recorded start time: never a reused pid.
    for (const [i, { ref }] of each.found.entries()) {
      try {
        if (!waited[i]) ociKill(root, ref, sig, ctx.flags.all ?? false);
      } catch (err) {
        each.fail(err);
      }
    }
    return each.report();
  },
});

const ps = defineTool({
  name: "corerun ps",
  description: "List containers (id, name, status, first process, network, ports, age, command), or with an id the processes of that container.",
  usage: "[options] [ID [PS-ARGS...]]",
  args: {
    ...rootArg,
    all: { type: "boolean", alias: "a", description: "also list exited containers (kept by run -d until corerun rm)" },
    json: { type: "boolean", description: "print the state files as a JSON array, each with its statusText" },
    quiet: { type: "boolean", alias: "q", description: "print the ids only, one a line, in the table's order (for scripts: corerun rm -f $(corerun ps -aq))" },
    format: { type: "string", alias: "f", valueHint: "table|json", description: "with an ID: its processes as ps prints them (table, default) or a JSON array of host pids" },
    filter: { type: "string", valueHint: "KEY=VALUE", description: "list only the containers that match (repeatable): label=KEY[=VALUE], name=REGEX, id=PREFIX, status=running|exited|paused|created|restarting|dead, health=starting|healthy|unhealthy|none" },
  },
  tail: "command",
  notes: ["STATUS: running, paused, created, restarting (CODE) (its monitor waits to start it again;\nCODE is the last run's), exited (CODE), orphaned (its foreground corerun was killed) or\nmonitor-lost (a detached container's monitor was killed); corerun cleanup removes the last two."],
  examples: ["sudo corerun ps", "sudo corerun ps -a", "sudo corerun ps -aq", "sudo corerun ps -q --filter label=app=web", "sudo corerun ps --format json web"],
  run(ctx) {
    const root = stateRoot(ctx.values.root?.at(-1));
    const list = [...["all", "json", "quiet"].filter((f) => ctx.flags[f]), ...(ctx.values.filter?.length ? ["filter"] : [])].map((f) => `--${f}`);
    if (ctx.tail.length && list.length) throw new UsageError(`${list.join(", ")}: ${list.length > 1 ? "they apply" : "it applies"} to the list of containers; with an ID, ps lists that container's processes (--format table|json)`);
    if (!ctx.tail.length && ctx.values.format) throw new UsageError("--format: it applies to an ID's processes; for the list of containers use --json or -q");
    if (ctx.flags.json && ctx.flags.quiet) throw new UsageError("--json and -q: give one of them");
    if (ctx.tail.length) {
      const pids = ociPids(root, ctx.tail[0]!);
      const format = ctx.values.format?.at(-1) ?? "table";
      if (format === "json") printJson(pids);
      else if (format === "table") writeOut(psTable(pids, ctx.tail.slice(1)));
      else throw new UsageError(`--format ${format}: use table or json`);
      return 0;
    }
    listContainers(root, ctx.flags.all ?? false, ctx.flags.json ? "json" : ctx.flags.quiet ? "ids" : "table", ctx.values.filter ?? []);
    return 0;
  },
});

const runTool_ = defineTool({
  name: "corerun",
  description: "Run a command in a new container: its own namespaces, root filesystem, /dev, /proc and /sys.",
  usage: "[run] [options] [--] CMD [ARGS...] | [run] [options] IMAGE [CMD [ARGS...]]",
  args: runArgs,
  tail: "command",
  notes: [
    "corerun chains its tools: the cgroup (corerun-cgroup) and the first process in new namespaces\n(corerun-ns), made in-process with their libraries; corerun-net (network, /etc files) and\ncorerun-mount (filesystem tree, pivot_root) as processes; then corerun-exec (/proc, cgroup,\nhostname, capabilities, exec CMD). --print-script prints the chain as a script of the tools.",
    "-it runs the container under its monitor, as -dit, attached to this terminal: the\ndetach keys (--detach-keys, default ctrl-p,ctrl-q) leave it running for corerun attach; until\nthen it ends as any foreground run, removed, also when it is interrupted while it starts.",
    "Exit status: CMD's own; 128+N when CMD died of signal N; 125 when corerun fails;\n126 when CMD cannot be executed; 127 when CMD is not found.",
    "IMAGE: without --rootfs, a first word that names an image of the store (corerun image ls)\nruns that image on an overlayfs of its own, with its Entrypoint, Cmd, Env, WorkingDir,\nUser and StopSignal; words after it replace Cmd. A word starting with / or . is always a command.",
  ],
  examples: [
    "sudo corerun --rootfs ./rootfs --hostname demo /bin/sh -c 'hostname; echo $$; ls /'",
    "sudo corerun -v /srv/data:/data:ro --network host /bin/ls /data",
    "corerun --print-script --hostname demo /bin/true > steps.sh",
    "sudo corerun run --network none busybox:latest sh -c 'echo from an image'",
    "sudo corerun run -d --name web -P 80 --restart on-failure:5 /bin/httpd -f -p 80",
    "sudo corerun start -a web   # an exited run -d container again: same id, writable layer and log",
    "sudo corerun run -it --name box busybox:latest sh   # ctrl-p ctrl-q detaches; corerun attach box",
  ],
  subCommands: {},
  run: withTraceFlag(run),
});

const runCmd = { ...runTool_, name: "corerun run", usage: "[options] [--] CMD [ARGS...] | [options] IMAGE [CMD [ARGS...]]", subCommands: undefined };
const subCommands: Record<string, ToolSpec> = {
  run: runCmd, ps, kill, cleanup, logs, attach, stop, restart, wait, port, rm, inspect, create, start: startTool, state, delete: del, list, pause, resume, unpause, exec, update, events, features: featuresTool, seccomp: seccompCommand,
  image: imageTool, commit: commitTool, trace: traceCommand, stats: statsTool, healthcheck,
};
runTool_.subCommands = subCommands;

// corerun-monitor's call at a detached container's exit; not a command for users.
if (process.argv[2] === MONITOR_EXIT) process.exit(monitorExit(process.argv.slice(3)));
// corerun-monitor's call when a health check is due; not a command for users either.
else if (process.argv[2] === HEALTH_WORD) void healthHandler(process.argv.slice(3)).then((code) => process.exit(code));
else dispatch();

function dispatch(): void {
  // runc's form first: global options, then a subcommand. Everything else is `corerun [run] ...`.
  let oci: ReturnType<typeof splitGlobals>;
  try {
    oci = splitGlobals(process.argv.slice(2), Object.keys(subCommands));
  } catch (err) {
    writeErr(`corerun: ${errorLine(err)}\n`);
    process.exit(125);
  }
  if (oci && "version" in oci) {
    try {
      printVersion();
    } catch (err) {
      process.exit(exitCodeForError(err));
    }
    process.exit(0);
  } else if (oci) {
    void runOci(oci.sub === "run" && isOciRun(oci.rest) ? ociRun : subCommands[oci.sub]!, oci.rest, oci.globals);
  } else if (process.argv[2] === "run" && isOciRun(process.argv.slice(3))) {
    void runOci(ociRun, process.argv.slice(3), { root: undefined, log: undefined, logFormat: "text", debug: false });
  } else {
    void runTool(runTool_);
  }
}
