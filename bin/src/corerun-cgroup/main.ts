import { defineTool, helpText, printJson, runTool, writeOut, type ToolContext, type ToolSpec } from "@corerun/cli";
import { listCgroups } from "@corerun/cgroup";
import type { ArgsDef } from "citty";
import { addArgs, createArgs, parseLimitValues, parsePid, parsePlace, parseRun, placeArgs, rmArgs, runArgs, withName } from "./args.ts";
import { createCgroup, destroyCgroup, mustExist, openCgroup, runInCgroup } from "./steps.ts";

const LIMIT_NOTES = [
  "Limits: --memory is MiB or a Docker size (6 MiB at least); --cpu is percent of one core, --cpus the\nsame in CPUs; --pids counts processes and threads. Bad values exit 125 before anything is created.\nA limit whose controller the host lacks is an error naming the controller.",
];

/** A subcommand of the form `corerun-cgroup VERB NAME [options]`. */
function named(verb: string, description: string, def: ArgsDef, examples: string[], act: (ctx: ToolContext & { name: string }) => number, notes: string[] = []): ToolSpec {
  const usage = `${verb} NAME [options]`;
  const spec: ToolSpec = {
    name: "corerun-cgroup",
    description,
    usage,
    args: def,
    tail: "command",
    notes,
    examples,
    run(ctx) {
      const full = withName(ctx, def, usage);
      if (!full) {
        writeOut(helpText(spec));
        return 0;
      }
      return act(full);
    },
  };
  return spec;
}

const run: ToolSpec = {
  name: "corerun-cgroup",
  description: "Run CMD in a new cgroup with limits; remove the cgroup when CMD ends and exit with its status.",
  usage: "run [options] [--] CMD [ARGS...]",
  args: runArgs,
  tail: "command",
  notes: [
    ...LIMIT_NOTES,
    "CMD is started through /bin/sh, which joins the cgroup and execs CMD: CMD is in the cgroup from its\nfirst instruction. corerun-cgroup forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 to it.\nWhen CMD ends, processes it left behind are killed and the cgroup is removed.",
    "Exit status: CMD's own (128+N when it died of signal N: 137 after an OOM kill, which is also\nreported on stderr); 125 when corerun-cgroup fails; 126/127 when CMD cannot be run.",
  ],
  examples: [
    "corerun-cgroup run --memory 64 --cpu 50 --pids 100 -- /bin/sh -c 'echo limited'",
    "corerun-cgroup --memory 512m --cpus 0.5 -- make -j2          # the same without 'run'",
  ],
  run: (ctx) => runInCgroup(parseRun(ctx), ctx.log),
};

export const tool = defineTool({
  ...run,
  description: "Create a cgroup with limits, move processes in, report usage, freeze, kill all, remove; or run CMD in one.",
  usage: "COMMAND NAME [options]  |  [run] [options] [--] CMD [ARGS...]",
  examples: [
    "corerun-cgroup run --memory 64 --cpu 50 --pids 100 -- /bin/sh -c 'echo limited'",
    "corerun-cgroup --memory 512m --cpus 0.5 -- make -j2          # 'run' may be left out",
    "corerun-cgroup create web --memory 512m --pids 100 && corerun-cgroup add web --pid 4242",
    "corerun-cgroup stats web && corerun-cgroup rm web",
  ],
  subCommands: {
    create: named("create", "Create cgroup NAME with limits and print its directories as JSON.", createArgs, [
      "corerun-cgroup create web --memory 512m --cpu 50 --pids 100",
      '# prints {"paths":{"":"/sys/fs/cgroup/unified/corerun/web","memory":"/sys/fs/cgroup/memory/corerun/web",...}}',
    ], (ctx) => {
      const place = parsePlace(ctx);
      const limits = parseLimitValues(ctx);
      printJson({ paths: createCgroup(openCgroup(place), limits, ctx.log) });
      return 0;
    }, [...LIMIT_NOTES, 'Paths: "" is the cgroup v2 directory, other keys are v1 controllers. A process joins by writing\n"0" to cgroup.procs in each (joinCgroups in @corerun/cgroup).']),
    add: named("add", "Move process N (all its threads) into cgroup NAME.", addArgs, ["corerun-cgroup add web --pid 4242"], (ctx) => {
      const place = parsePlace(ctx);
      const pid = parsePid(ctx);
      const m = openCgroup(place);
      mustExist(m);
      m.addTask(pid);
      return 0;
    }),
    stats: named("stats", "Print cgroup NAME's usage as JSON: memory, CPU time, tasks, OOM kills.", placeArgs, ["corerun-cgroup stats web"], (ctx) => {
      printJson(openCgroup(parsePlace(ctx)).stats());
      return 0;
    }, ["Fields: memory.current/peak/limit in bytes, cpu.usageUsec (CPU time used) and cpu.limitPercent,\npids.current/limit (tasks), oomKills, processes; null where the host has no controller to tell."]),
    freeze: named("freeze", "Stop every process in cgroup NAME until thaw.", placeArgs, ["corerun-cgroup freeze web"], (ctx) => {
      openCgroup(parsePlace(ctx)).freeze();
      return 0;
    }),
    thaw: named("thaw", "Let the processes of a frozen cgroup NAME run again.", placeArgs, ["corerun-cgroup thaw web"], (ctx) => {
      openCgroup(parsePlace(ctx)).thaw();
      return 0;
    }),
    kill: named("kill", "SIGKILL every process in cgroup NAME and wait until it is empty.", placeArgs, ["corerun-cgroup kill web"], (ctx) => {
      const m = openCgroup(parsePlace(ctx));
      mustExist(m);
      m.killAll();
      return 0;
    }, ["cgroup v2 uses cgroup.kill; v1 freezes, kills each process, thaws."]),
    rm: named("rm", "Kill what is left in cgroup NAME and remove it from every hierarchy.", rmArgs, ["corerun-cgroup rm web", "corerun-cgroup rm -f web     # no error when it is gone already"], (ctx) => {
      const m = openCgroup(parsePlace(ctx));
      if (!m.exists() && ctx.flags.force) return 0;
      mustExist(m);
      destroyCgroup(m, ctx.log);
      return 0;
    }),
    ls: {
      name: "corerun-cgroup",
      description: "Print the names of the cgroups under the parent as a JSON array.",
      usage: "ls [options]",
      args: placeArgs,
      tail: "none",
      examples: ["corerun-cgroup ls", "corerun-cgroup ls --cgroup-parent corerun/web"],
      run(ctx) {
        const parent = ctx.values["cgroup-parent"]?.at(-1);
        const root = ctx.values["cgroup-root"]?.at(-1);
        printJson(listCgroups({ ...(parent ? { parent } : {}), ...(root ? { root } : {}) }));
        return 0;
      },
    },
    run,
  },
  run(ctx) {
    // Bare `corerun-cgroup` shows the help; with options or a command it is `run`.
    if (!ctx.tail.length && !Object.keys(ctx.values).length && !Object.keys(ctx.flags).length) {
      writeOut(helpText(tool));
      return 0;
    }
    return runInCgroup(parseRun(ctx), ctx.log);
  },
});

void runTool(tool);
