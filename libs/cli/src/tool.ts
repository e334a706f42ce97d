import { defineCommand, type ArgsDef, type CommandDef } from "citty";
import type { ConsolaInstance } from "consola";
import { aliasesOf, splitArgv } from "./argv.ts";
import { errorLine, exitCodeForError, UsageError } from "./exit.ts";
import { createLogger, logLevel, LOG_LEVELS } from "./log.ts";
import { span, startTrace } from "./trace.ts";
import { ARGV_FD_ENV, sayDone, takeArgvFd, takeDoneFd } from "./handoff.ts";
import { OutputClosed, quickExit, writeErr, writeOut } from "./output.ts";

/** Options every tool accepts. */
export const COMMON_ARGS = {
  log: { type: "string", alias: "l", valueHint: "true|false", description: "log what the tool does (info level), or only errors" },
  "log-level": { type: "string", valueHint: LOG_LEVELS.join("|"), description: "log level (default warn; env CORERUN_LOG)" },
} as const satisfies ArgsDef;

export interface ToolContext {
  /** Every value given for each string option, in order. */
  values: Record<string, string[]>;
  /** Boolean options that were given. */
  flags: Record<string, boolean>;
  /** The words after the options: the command to run, untouched. */
  tail: string[];
  log: ConsolaInstance;
}

export interface ToolSpec {
  name: string;
  description: string;
  /** What follows the name on the usage line, e.g. "[options] [--] CMD [ARGS...]". */
  usage: string;
  args: ArgsDef;
  tail: "command" | "none";
  /** Paragraphs after the options in --help: conventions, fds, exit codes. */
  notes?: string[];
  examples?: string[];
  subCommands?: Record<string, ToolSpec>;
  run?(ctx: ToolContext): Promise<number> | number;
}

/** Machine-readable output: one line of JSON on stdout (logs go to stderr). */
export function printJson(value: unknown): void {
  writeOut(`${JSON.stringify(value)}\n`);
}

/** Rows as aligned columns, the first row a header (ps, list): two spaces between columns. */
export function printTable(rows: readonly (readonly string[])[]): void {
  writeOut(formatTable(rows));
}

/** Rows as columns padded to their widest cell, one line each. */
export function formatTable(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)) + 2);
  return rows.map((r) => `${r.map((cell, i) => (i < r.length - 1 ? cell.padEnd(widths[i]!) : cell)).join("")}\n`).join("");
}

/** The citty command definition behind a tool: its name, description and typed options. */
export function defineTool(spec: ToolSpec): ToolSpec & { command: CommandDef } {
  return { ...spec, command: defineCommand({ meta: { name: spec.name, description: spec.description }, args: { ...spec.args, ...COMMON_ARGS } }) as CommandDef };
}

function optionLines(args: ArgsDef): string[] {
  const rows: [string, string][] = [];
  for (const [name, a] of Object.entries(args)) {
    if (a.type === "positional") continue;
    const aliases = aliasesOf(a);
    const short = aliases.filter((x) => x.length === 1).map((x) => `-${x}, `).join("");
    const long = [name, ...aliases.filter((x) => x.length > 1)].map((x) => `--${x}`).join(", ");
    const hint = a.type === "string" || a.type === "enum" ? ` ${a.valueHint ?? "VALUE"}` : "";
    const dflt = "default" in a && a.default !== undefined && a.type !== "boolean" ? ` (default ${String(a.default)})` : "";
    rows.push([`  ${short || "    "}${long}${hint}`, `${a.description ?? ""}${dflt}`]);
  }
  rows.push(["  -h, --help", "show this help and exit"]);
  const width = Math.min(34, Math.max(...rows.map(([l]) => l.length)) + 2);
  return rows.map(([l, d]) => (l.length >= width ? `${l}\n${" ".repeat(width)}${d}` : `${l.padEnd(width)}${d}`));
}

/** The fixed --help format: usage line, one-line description, options, notes, examples. */
export function helpText(spec: ToolSpec): string {
  const out = [`Usage: ${spec.name} ${spec.usage}`, "", spec.description, ""];
  if (spec.subCommands) {
    out.push("Commands:");
    for (const [name, sub] of Object.entries(spec.subCommands)) out.push(`  ${name.padEnd(12)}${sub.description}`);
    out.push("", `Run '${spec.name} COMMAND --help' for a command's options.`, "");
  }
  out.push("Options:", ...optionLines({ ...spec.args, ...COMMON_ARGS }));
  for (const n of spec.notes ?? []) out.push("", n);
  if (spec.examples?.length) out.push("", "Examples:", ...spec.examples.map((e) => `  ${e}`));
  return `${out.join("\n")}\n`;
}

/**
 * A tool's command line as runTool reads it: the subcommand it names (they nest, `corerun image
 * ls`: each word that names one descends a level), its words, and them split into options and
 * tail. Throws a UsageError for an option it does not take.
 */
export function parseToolArgv(spec: ToolSpec, argv: string[]): { active: ToolSpec; words: string[]; split: ReturnType<typeof splitArgv> } {
  let active = spec;
  let words = argv;
  // --root DIR before a subcommand's name is that subcommand's (`corerun-net --root DIR ls`, as
  // `corerun --root DIR ps`): every subcommand with a state root takes it.
  const lead: string[] = [];
  for (;;) {
    const subs = active.subCommands;
    const skip = words[0] === "--root" ? 2 : words[0]?.startsWith("--root=") ? 1 : 0;
    if (subs && skip && words[skip] !== undefined && Object.hasOwn(subs, words[skip]!)) {
      lead.push(...words.slice(0, skip));
      words = words.slice(skip);
    }
    if (!subs || words[0] === undefined || !Object.hasOwn(subs, words[0])) break;
    active = subs[words[0]]!;
    words = words.slice(1);
  }
  words = [...lead, ...words];
  const split = splitArgv(words, { ...active.args, ...COMMON_ARGS }, { tail: active.tail, optionalValues: { log: ["true", "false"], "sig-proxy": ["true", "false"] } });
  return { active, words, split };
}

/**
 * Runs a tool: parses argv, runs it, exits with the status from the one exit-code table. Errors
 * print as one line "tool: message" and exit 125 (126/127 when the command cannot be run).
 */
export async function runTool(spec: ToolSpec, argv: string[] = process.argv.slice(2), opts: { onError?: (line: string) => void; logName?: string } = {}): Promise<never> {
  const name = opts.logName ?? spec.name;
  let log = createLogger(name);
  let code: number;
  let done: number | undefined;
  quickExit();
  try {
    startTrace(name);
    // CORERUN_ARGV_FD, CORERUN_DONE_FD (handoff.ts): words after those of the command line, and
    // the fd to say done on. Both are taken in the one span, so that the tool's steps follow it.
    const handoff = () => {
      done = takeDoneFd();
      return takeArgvFd();
    };
    const more = process.env[ARGV_FD_ENV] === undefined ? handoff() : span("read argv", undefined, handoff);
    if (more) {
      argv = [...argv, ...more];
      // As if given on the command line: a tool that runs itself again (corerun-mount, rootless) passes them on.
      process.argv.push(...more);
    }
    const { active, words, split } = parseToolArgv(spec, argv);
    if (split.help || !active.run) {
      writeOut(helpText(active));
      if (!split.help && !active.run && words.length) throw new UsageError(`unknown command "${words[0]}"; see --help`);
      process.exit(split.help || !words.length ? 0 : 125);
    }
    log = createLogger(name, logLevel({ log: split.values.log?.at(-1), logLevel: split.values["log-level"]?.at(-1) }));
    code = await span(active.name, { argv: words.join(" ") }, () => active.run!({ values: split.values, flags: split.flags, tail: split.tail, log }));
  } catch (err) {
    // stdout's reader has gone (`corerun ps | head -1`): a stop, not a failure to report.
    if (!(err instanceof OutputClosed)) {
      log.error(errorLine(err));
      opts.onError?.(errorLine(err));
    }
    if (process.env.CORERUN_LOG === "debug" && err instanceof Error && err.stack) writeErr(`${err.stack}\n`);
    code = exitCodeForError(err);
  }
  if (done !== undefined && code === 0) sayDone(done);
  process.exit(code);
}
