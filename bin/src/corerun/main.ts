import { dirname } from "node:path";
import { defineTool, errorLine, runTool, type ToolContext } from "@corerun/cli";
import { isAlive, listContainers, readState, stateRoot, statePath } from "@corerun/state";
import type { ArgsDef } from "citty";
import { parseRunConfig, runArgs } from "./args.ts";
import { binDirOf, renderScript } from "./script.ts";
import {
  buildTree, createCgroup, createState, reportOom, exitStatus, recordInit, start, startNamespaces, teardown, ToolFailed, waitContainer, type Container,
} from "./steps.ts";

async function run(ctx: ToolContext): Promise<number> {
  const cfg = parseRunConfig(ctx);
  if (cfg.printScript) {
    process.stdout.write(renderScript(cfg, binDirOf(dirname(process.argv[1]!)), cfg.hostname));
    return 0;
  }
  if (process.geteuid?.() !== 0) {
    throw new Error("corerun needs root to create namespaces and mounts; run it with sudo (rootless containers are not available yet)");
  }
  let c: Container | undefined;
  // A signal during the start aborts it; once the container runs, signals are forwarded to it.
  let aborted: NodeJS.Signals | undefined;
  const abort = (sig: NodeJS.Signals) => (aborted = sig);
  const starting = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
  for (const sig of starting) process.on(sig, abort);
  try {
    c = createState(cfg);
    ctx.log.info(`container ${c.id}: state ${c.path}`);
    const cg = createCgroup(cfg, c);
    const { pid } = await startNamespaces(cfg, c);
    recordInit(c, pid);
    ctx.log.info(`container ${c.id}: first process ${pid}`);
    const ended = waitContainer(pid);
    const built = buildTree(cfg, c, pid);
    // If the first process dies while the tree is being built, the build can never finish.
    const first = await Promise.race([built.then(() => undefined), ended]);
    if (first) return exitStatus(first);
    if (aborted) return 128 + (aborted === "SIGINT" ? 2 : aborted === "SIGTERM" ? 15 : 1);
    for (const sig of starting) process.off(sig, abort);
    start(c);
    const end = await ended;
    ctx.log.info(`container ${c.id}: exited ${JSON.stringify(end)}`);
    reportOom(cg, cfg.limits, ctx.log);
    return exitStatus(end);
  } catch (err) {
    if (err instanceof ToolFailed) return err.exitCode;
    throw err;
  } finally {
    if (c) teardown(cfg.root, c.id, c.path);
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
    const root = stateRoot(ctx.values.root?.at(-1));
    const ids = ctx.tail.length ? ctx.tail : listContainers(root);
    let failed = 0;
    for (const id of ids) {
      try {
        const path = statePath(root, id);
        const state = readState(path);
        if (isAlive(state.owner) && !ctx.flags.force) {
          ctx.log.info(`${id}: still managed by corerun pid ${state.owner!.pid}; skipped (use --force)`);
          continue;
        }
        teardown(root, id, path);
        process.stdout.write(`${id}\n`);
      } catch (err) {
        failed++;
        ctx.log.error(`${id}: ${errorLine(err)}`);
      }
    }
    return failed ? 125 : 0;
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
    const states = listContainers(root).flatMap((id) => {
      try {
        return [readState(statePath(root, id))];
      } catch {
        return [];
      }
    });
    if (ctx.flags.json) {
      process.stdout.write(`${JSON.stringify(states, null, 2)}\n`);
      return 0;
    }
    process.stdout.write(`${"ID".padEnd(14)}${"STATUS".padEnd(10)}${"PID".padEnd(8)}COMMAND\n`);
    for (const s of states) {
      const status = s.status === "running" && !isAlive(s.owner) ? "orphaned" : s.status;
      process.stdout.write(`${s.id.padEnd(14)}${status.padEnd(10)}${String(s.init?.pid ?? "-").padEnd(8)}${s.config.command.join(" ")}\n`);
    }
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
    "corerun chains its tools: corerun-ns (namespaces, first process), corerun-mount (filesystem\ntree, pivot_root) and corerun-exec (/proc, hostname, exec CMD). --print-script shows the chain.",
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
runTool_.subCommands = { run: runCmd, ps, cleanup };

void runTool(runTool_);
