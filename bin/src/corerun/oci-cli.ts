/**
 * runc's subcommands but those of oci-calls.ts (the globals, state and delete) and oci-create.ts
 * (create).
 */
import { readFileSync } from "node:fs";
import { defineTool, exitCodeOf, printJson, printTable, UsageError, waitChild, writeOut } from "@corerun/cli";
import { linuxSyscall as sys } from "@corerun/syscall";
import { readEnvFiles, stateRoot } from "@corerun/state";
import { checkId, liveStatus, ociDelete, ociPause, ociStart, ociState, ociStats, oomKills, OCI_VERSION } from "./oci.ts";
import { create, createOptions, features, ociCreate, ociUpdate } from "./oci-create.ts";
import { parseOci, Resources } from "@corerun/oci";
import { readStates } from "@corerun/state";
import { ociExec } from "./exec.ts";
import { one, rootArg } from "./oci-calls.ts";

const pauseTool = (pause: boolean, name = pause ? "pause" : "resume") =>
  defineTool({
    name: `corerun ${name}`,
    description: pause ? "Freeze every process of a running container (cgroup freezer)." : `Thaw a paused container${name === "unpause" ? " (corerun resume, in Docker's word)" : ""}.`,
    usage: "[options] ID",
    args: rootArg,
    tail: "command",
    run(ctx) {
      ociPause(stateRoot(ctx.values.root?.at(-1)), one(ctx.tail, name), pause);
      return 0;
    },
  });
export const pause = pauseTool(true);
export const resume = pauseTool(false);
/** Docker's name for resume. */
export const unpause = pauseTool(false, "unpause");

export const list = defineTool({
  name: "corerun list",
  description: "List containers as runc does: id, pid, status, bundle, created.",
  usage: "[options]",
  args: {
    ...rootArg,
    format: { type: "string", alias: "f", valueHint: "table|json", description: "output format (default table)" },
    quiet: { type: "boolean", alias: "q", description: "print only the ids" },
  },
  tail: "none",
  run(ctx) {
    const format = ctx.values.format?.at(-1) ?? "table";
    if (format !== "table" && format !== "json") throw new UsageError(`--format ${format}: use table or json`);
    const states = readStates(stateRoot(ctx.values.root?.at(-1))).map(ociState);
    if (ctx.flags.quiet) {
      for (const s of states) writeOut(`${String(s.id)}\n`);
    } else if (format === "json") {
      printJson(states);
    } else {
      printTable([["ID", "PID", "STATUS", "BUNDLE", "CREATED"], ...states.map((s) => [String(s.id), String(s.pid), String(s.status), String(s.bundle) || "-", String(s.created)])]);
    }
    return 0;
  },
});

export const featuresTool = defineTool({
  name: "corerun features",
  description: "Print what this corerun implements, as the runtime-spec's features JSON.",
  usage: "",
  args: {},
  tail: "none",
  run() {
    writeOut(`${JSON.stringify(features(), null, 4)}\n`);
    return 0;
  },
});

export const exec = defineTool({
  name: "corerun exec",
  description: "Run a new process in a running container: its namespaces, cgroup, capabilities and environment.",
  usage: "[options] ID [CMD [ARGS...]]",
  args: {
    ...rootArg,
    process: { type: "string", alias: "p", valueHint: "FILE", description: "the process as runtime-spec JSON (args, env, cwd, user, capabilities, terminal, ...)" },
    detach: { type: "boolean", alias: "d", description: "return once the process runs instead of waiting for it" },
    "pid-file": { type: "string", valueHint: "FILE", description: "write the process's host pid to FILE" },
    "console-socket": { type: "string", valueHint: "PATH", description: "send the pty master to this AF_UNIX socket (with -t and --detach)" },
    tty: { type: "boolean", alias: "t", description: "give the process a pty from the container's devpts (relayed to corerun's terminal unless --detach)" },
    interactive: { type: "boolean", alias: "i", description: "pass corerun's stdin to the process (into its pty with -t); a corerun run container's process otherwise reads /dev/null" },
    cwd: { type: "string", alias: ["w", "workdir"], valueHint: "DIR", description: "working directory inside (default: the container's)" },
    env: { type: "string", alias: "e", valueHint: "KEY=VALUE", description: "add an environment variable (repeatable)" },
    "env-file": { type: "string", valueHint: "FILE", description: "add the environment variables of FILE's KEY=VALUE lines (repeatable; KEY alone passes corerun's own value), before -e's" },
    user: { type: "string", alias: "u", valueHint: "USER[:GROUP]", description: "run as this user (default: the container's); names from the container's /etc for corerun run containers, uid[:gid] for OCI ones" },
    "additional-gids": { type: "string", alias: "g", valueHint: "GID", description: "a supplementary group (repeatable)" },
    cap: { type: "string", alias: "c", valueHint: "CAP", description: "add a capability (repeatable, e.g. CAP_NET_ADMIN)" },
    "no-new-privs": { type: "boolean", description: "set no_new_privs for the process" },
    "detach-keys": { type: "string", valueHint: "KEYS", description: "with -it: keys that detach, leaving the process running (default ctrl-p,ctrl-q; \"\" for none)" },
  },
  tail: "command",
  notes: [
    "ID is a name, an id or a unique prefix of an id. The process joins every namespace and the\ncgroup of the container, with its capabilities, seccomp filter, no_new_privs, environment,\nworking directory and user; -e, -w, -u and --cap change them.",
    "Without --detach, exec waits and exits with the process's status (128+N for signal N);\n125 when the container is not running, 126 when CMD cannot be executed, 127 when not found.",
    "-t gives the process a pty from the container's devpts as its controlling terminal; corerun\nrelays it to its own terminal (raw while it runs, window size passed through; 24x80 when\ncorerun's side is no terminal), or sends the master to --console-socket with --detach.\nWith -it the detach keys end the relay and leave the process running (its output discarded).",
  ],
  examples: ["sudo corerun exec web /bin/ps", "sudo corerun exec -it web sh", "sudo corerun exec --detach --pid-file p.pid --process proc.json web"],
  async run(ctx) {
    const [id, ...args] = ctx.tail;
    return ociExec({
      root: stateRoot(ctx.values.root?.at(-1)), id: checkId(id), processFile: ctx.values.process?.at(-1), args, env: [...readEnvFiles(ctx.values["env-file"] ?? []), ...(ctx.values.env ?? [])],
      cwd: ctx.values.cwd?.at(-1), user: ctx.values.user?.at(-1), additionalGids: ctx.values["additional-gids"] ?? [], caps: ctx.values.cap ?? [],
      noNewPrivs: ctx.flags["no-new-privs"] ?? false, tty: ctx.flags.tty ?? false, interactive: ctx.flags.interactive ?? false, detach: ctx.flags.detach ?? false,
      pidFile: ctx.values["pid-file"]?.at(-1), consoleSocket: ctx.values["console-socket"]?.at(-1), detachKeys: ctx.values["detach-keys"]?.at(-1),
    });
  },
});

export const update = defineTool({
  name: "corerun update",
  description: "Change a running container's cgroup limits (runc's LinuxResources JSON, or flags).",
  usage: "[options] ID",
  args: {
    ...rootArg,
    resources: { type: "string", alias: "r", valueHint: "FILE|-", description: "the runtime-spec's linux.resources as JSON, from a file or stdin" },
    memory: { type: "string", valueHint: "BYTES", description: "memory limit in bytes" },
    "memory-swap": { type: "string", valueHint: "BYTES", description: "memory plus swap in bytes (-1 for no limit)" },
    "cpu-quota": { type: "string", valueHint: "USEC", description: "CPU time per period, in microseconds" },
    "cpu-period": { type: "string", valueHint: "USEC", description: "the CPU period, in microseconds" },
    "cpu-share": { type: "string", valueHint: "N", description: "relative CPU weight (2-262144)" },
    "pids-limit": { type: "string", valueHint: "N", description: "most tasks the container may hold" },
    "memory-reservation": { type: "string", valueHint: "BYTES", description: "soft memory limit in bytes" },
    "cpuset-cpus": { type: "string", valueHint: "LIST", description: "CPUs the container may run on (0-2,4)" },
    "cpuset-mems": { type: "string", valueHint: "LIST", description: "memory nodes it may allocate from" },
    "blkio-weight": { type: "string", valueHint: "N", description: "relative block I/O weight (10-1000)" },
  },
  tail: "command",
  examples: ["sudo corerun update --memory 268435456 --pids-limit 100 web", "echo '{\"memory\":{\"limit\":134217728}}' | sudo corerun update --resources - web"],
  run(ctx) {
    const id = one(ctx.tail, "update");
    const file = ctx.values.resources?.at(-1);
    let data: Record<string, Record<string, unknown>> = {};
    if (file !== undefined) {
      try {
        data = JSON.parse(readFileSync(file === "-" ? 0 : file, "utf8"));
      } catch (err) {
        throw new UsageError(`--resources ${file}: cannot be read as JSON (${(err as Error).message})`);
      }
    }
    const num = (flag: string) => {
      const value = ctx.values[flag]?.at(-1);
      if (value === undefined) return undefined;
      if (!/^-?\d+$/.test(value)) throw new UsageError(`--${flag} ${value}: not a number`);
      return Number(value);
    };
    const set = (section: string, key: string, value: number | undefined) => {
      if (value !== undefined) data[section] = { ...data[section], [key]: value };
    };
    set("memory", "limit", num("memory"));
    set("memory", "swap", num("memory-swap"));
    set("cpu", "quota", num("cpu-quota"));
    set("cpu", "period", num("cpu-period"));
    set("cpu", "shares", num("cpu-share"));
    set("pids", "limit", num("pids-limit"));
    set("memory", "reservation", num("memory-reservation"));
    set("blockIO", "weight", num("blkio-weight"));
    for (const key of ["cpus", "mems"] as const) {
      const list = ctx.values[`cpuset-${key}`]?.at(-1);
      if (list !== undefined) data.cpu = { ...data.cpu, [key]: list };
    }
    ociUpdate(stateRoot(ctx.values.root?.at(-1)), id, parseOci(Resources, data, "--resources"));
    return 0;
  },
});

export const events = defineTool({
  name: "corerun events",
  description: "Print a container's usage (cpu, memory, pids) as runc's JSON events, once or every interval, and its OOM kills.",
  usage: "[options] ID",
  args: {
    ...rootArg,
    stats: { type: "boolean", description: "print one stats event and exit" },
    interval: { type: "string", valueHint: "DURATION", description: "time between stats events, e.g. 5s or 500ms (default 5s)" },
  },
  tail: "command",
  async run(ctx) {
    const root = stateRoot(ctx.values.root?.at(-1));
    const id = one(ctx.tail, "events");
    if (ctx.flags.stats) {
      printJson(ociStats(root, id));
      return 0;
    }
    const text = ctx.values.interval?.at(-1) ?? "5s";
    const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(text);
    if (!m || Number(m[1]) <= 0) throw new UsageError(`--interval ${text}: give a duration such as 5s or 500ms`);
    const ms = Number(m[1]) * (m[2] === "ms" ? 1 : m[2] === "s" ? 1000 : 60_000);
    let ooms = oomKills(root, id);
    for (;;) {
      let stats: Record<string, unknown>;
      try {
        stats = ociStats(root, id);
      } catch {
        return 0;
      }
      const now = oomKills(root, id);
      if (now > ooms) printJson({ type: "oom", id });
      ooms = now;
      printJson(stats);
      await new Promise((res) => setTimeout(res, ms));
    }
  },
});

/** runc's `run`: create, start, wait for the process, delete; with --detach, create and start. */
export const ociRun = defineTool({
  name: "corerun run --bundle",
  description: "Create and start a container from an OCI bundle, wait for it and delete it (runc's run).",
  usage: "--bundle DIR [options] ID",
  args: {
    ...create.args,
    detach: { type: "boolean", alias: "d", description: "return once the container runs; delete it later with corerun delete" },
  },
  tail: "command",
  notes: ["Told apart from `corerun run [options] CMD` by --bundle (or -b), which it requires."],
  examples: ["sudo corerun run --bundle ./bundle web"],
  async run(ctx) {
    const id = one(ctx.tail, "run");
    const o = createOptions(ctx, id);
    const { root } = o;
    const s = await ociCreate(o);
    try {
      await ociStart(root, id, s);
    } catch (err) {
      await ociDelete(root, id, true);
      throw err;
    }
    if (ctx.flags.detach) return 0;
    // The container's first process is this process's child: its status is run's.
    const end = await waitChild(sys, s.init!.pid);
    await ociDelete(root, id, true);
    return exitCodeOf(end);
  },
});

/** Whether `run`'s words are runc's form (they name a bundle) rather than `run [options] CMD`. */
export function isOciRun(words: readonly string[]): boolean {
  for (const w of words) {
    if (!w.startsWith("-") || w === "--") return false;
    if (/^--?(bundle|b)(=|$)/.test(w)) return true;
  }
  return false;
}

export function printVersion(): void {
  writeOut(`corerun version 0.1.0\nspec: ${OCI_VERSION}\n`);
}

export { liveStatus };
