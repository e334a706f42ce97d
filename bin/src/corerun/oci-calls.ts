/**
 * runc's command line: global options before the subcommand (`corerun --root R --log L
 * --log-format json create --bundle B --pid-file P ID`), long options with one dash or two, with
 * `=` or a separate value. The subcommands are corerun's own tools in citty's form; only the
 * globals and the error log are runc's. Here: the globals, the runner of a subcommand, and the
 * subcommands an engine calls most on a container it made (state, delete, and start's options
 * and help), which the engine's bundle (engine.ts) runs too; the others are in oci-cli.ts.
 */
import { appendFileSync } from "node:fs";
import { resolve } from "node:path";
import { defineTool, runTool, saveCodeCache, UsageError, writeOut, type ToolSpec } from "@corerun/cli";
import { stateRoot } from "@corerun/state";
import type { ArgsDef } from "citty";
import { checkId, mustFind, ociDelete, ociState } from "./oci.ts";

export interface Globals {
  root: string | undefined;
  log: string | undefined;
  logFormat: "text" | "json";
  debug: boolean;
}

/** Global options and whether each takes a value. */
const GLOBAL_OPTIONS: Record<string, boolean> = { root: true, log: true, "log-format": true, debug: false, "systemd-cgroup": false, rootless: true, criu: true };

/**
 * Splits runc-style global options off argv when they are followed by one of `subcommands`
 * (or `--version`). Anything else (the seed form `corerun [options] CMD`) returns undefined and
 * is parsed as `corerun run` is.
 */
export function splitGlobals(argv: readonly string[], subcommands: readonly string[]): { globals: Globals; sub: string; rest: string[] } | { version: true } | undefined {
  const values: Record<string, string> = {};
  let i = 0;
  for (; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === "--version") return { version: true };
    if (!word.startsWith("-") || word === "-" || word === "--") break;
    const body = word.replace(/^--?/, "");
    const eq = body.indexOf("=");
    const name = eq < 0 ? body : body.slice(0, eq);
    if (!(name in GLOBAL_OPTIONS)) return undefined;
    if (GLOBAL_OPTIONS[name]) {
      if (eq >= 0) values[name] = body.slice(eq + 1);
      else if (i + 1 < argv.length) values[name] = argv[++i]!;
      else return undefined;
    } else {
      values[name] = eq < 0 ? "true" : body.slice(eq + 1);
    }
  }
  const sub = argv[i];
  if (sub === undefined || !subcommands.includes(sub)) return undefined;
  if (values["systemd-cgroup"] !== undefined && values["systemd-cgroup"] !== "false") {
    throw new UsageError("--systemd-cgroup: corerun manages cgroups itself and does not create systemd units; use the cgroupfs manager (podman --cgroup-manager=cgroupfs, containerd SystemdCgroup = false)");
  }
  const rootless = values.rootless;
  if (rootless !== undefined && !["auto", "false", "true"].includes(rootless)) throw new UsageError(`--rootless ${rootless}: use auto, true or false`);
  if (rootless === "true" && process.geteuid?.() === 0) throw new UsageError("--rootless true: corerun's OCI commands do not run rootless containers as root; use --rootless auto");
  if (values.criu !== undefined) throw new UsageError("--criu: checkpoint and restore are not supported by corerun");
  const format = values["log-format"] ?? "text";
  if (format !== "text" && format !== "json") throw new UsageError(`--log-format ${format}: use text or json`);
  return {
    globals: { root: values.root === undefined ? undefined : resolve(values.root), log: values.log, logFormat: format, debug: values.debug === "true" },
    sub,
    rest: argv.slice(i + 1),
  };
}

/** One log line as runc writes it: logrus's JSON (containerd reads level, msg, time) or text. */
export function logLine(format: "text" | "json", level: string, msg: string, time = new Date()): string {
  if (format === "json") return `${JSON.stringify({ level, msg, time: time.toISOString() })}\n`;
  return `time="${time.toISOString()}" level=${level} msg=${JSON.stringify(msg)}\n`;
}

/** Single-dash long options (go-runc passes `-no-subreaper`) as citty expects them. */
export function normalizeDashes(words: readonly string[], spec: ToolSpec): string[] {
  const longs = new Set(Object.keys(spec.args));
  const out: string[] = [];
  for (const [i, w] of words.entries()) {
    if (w === "--" || !w.startsWith("-")) return [...out, ...words.slice(i)];
    const m = /^-([a-z][a-z-]+)(=.*)?$/.exec(w);
    out.push(m && longs.has(m[1]!) ? `-${w}` : w);
  }
  return out;
}

/** An OCI subcommand's words as its tool takes them: a global option reaches the subcommands that have it (features has no state root). */
export function ociWords(spec: ToolSpec, words: string[], g: Globals): string[] {
  const root = g.root && "root" in spec.args ? ["--root", g.root] : [];
  const debug = g.debug ? ["--log-level", "debug"] : [];
  return [...root, ...debug, ...normalizeDashes(words, spec)];
}

/** Runs one OCI subcommand: errors go to stderr and, with --log, to the log file too. */
export function runOci(spec: ToolSpec, words: string[], g: Globals): Promise<never> {
  const onError = (line: string) => {
    if (g.log) appendFileSync(g.log, logLine(g.logFormat, "error", line), { mode: 0o644 });
  };
  return runTool(spec, ociWords(spec, words, g), { onError, logName: "corerun" });
}

export const rootArg = { root: { type: "string", valueHint: "DIR", description: "state directory (default /run/corerun; env CORERUN_ROOT)" } } as const satisfies ArgsDef;

export const one = (tail: string[], what: string) => {
  if (tail.length !== 1) throw new UsageError(`${what} takes exactly one container id; see --help`);
  return checkId(tail[0]);
};

export const state = defineTool({
  name: "corerun state",
  description: "Print a container's state as the runtime-spec's JSON (id, status, pid, bundle, ...).",
  usage: "[options] ID",
  args: rootArg,
  tail: "command",
  run(ctx) {
    const s = mustFind(stateRoot(ctx.values.root?.at(-1)), one(ctx.tail, "state"));
    writeOut(JSON.stringify(ociState(s), null, 2));
    saveCodeCache("state");
    return 0;
  },
});

export const del = defineTool({
  name: "corerun delete",
  description: "Delete a stopped or created container: its process, cgroup, mounts and state.",
  usage: "[options] ID",
  args: { ...rootArg, force: { type: "boolean", alias: "f", description: "also kill and delete a running container; an unknown id is not an error" } },
  tail: "command",
  async run(ctx) {
    await ociDelete(stateRoot(ctx.values.root?.at(-1)), one(ctx.tail, "delete"), ctx.flags.force ?? false);
    return 0;
  },
});

/** `corerun start`'s name, options and help: start.ts runs both of its forms, engine.ts the OCI one. */
export const startSpec = {
  name: "corerun start",
  description: "Start containers again: an exited detached one (run -d) as it was, or a created OCI one (corerun create).",
  usage: "[options] NAME|ID...",
  args: {
    ...rootArg,
    attach: { type: "boolean", alias: "a", description: "attach to its output (its pty with -t) and exit with its status, as docker start -a" },
  },
  tail: "command",
  notes: [
    "An exited container of run -d (without --rm) starts again with the same id, name, config,\nenvironment and image, its image's writable layer (what it wrote is there), its log file\n(appended to) and, on a bridge, the same address and host ports when they are still free; its\n--restart policy applies again, from its first delay and count. Its run command line is read\nagain in the directory it was run from. start prints each name and returns once the command\nruns; with -a it prints the container's output until it exits and exits with its status (-a\ntakes one container, and does not pass input).",
    "A created OCI container (corerun create ID, as engines call it) is started as runc starts it:\nits process execs the bundle's program. A detached container that runs already is left as it is\n(its name printed; -a attaches to it), as docker start does. A restarting or foreground\ncontainer, or an unknown or ambiguous name, is refused in one line, exit 125.",
  ],
  examples: ["sudo corerun start web", "sudo corerun start -a job          # its output, then its exit status", "sudo corerun start ID              # an OCI container (after corerun create)"],
} satisfies Omit<ToolSpec, "run">;
