import { existsSync } from "node:fs";
import type { ArgsDef } from "citty";
import { UsageError } from "./exit.ts";

export interface SplitOptions {
  /** Whether words after the options form a command line (split there) or are an error. */
  tail: "command" | "none";
  /** Options whose value is optional: consumed only when the next word is one of these. */
  optionalValues?: Record<string, readonly string[]>;
}

export interface SplitArgv {
  /** Every value of each string option, in order (options repeat: `-v a -v b`). */
  values: Record<string, string[]>;
  /** Boolean options that were given (`--no-x` gives false). */
  flags: Record<string, boolean>;
  tail: string[];
  help: boolean;
}

/** An option's aliases as a list (citty allows one string or several). */
export function aliasesOf(arg: ArgsDef[string]): string[] {
  if (!("alias" in arg) || arg.alias === undefined) return [];
  return Array.isArray(arg.alias) ? arg.alias : [arg.alias];
}

function optionTable(def: ArgsDef): Map<string, { name: string; takesValue: boolean }> {
  const table = new Map<string, { name: string; takesValue: boolean }>();
  for (const [name, arg] of Object.entries(def)) {
    if (arg.type === "positional") continue;
    const entry = { name, takesValue: arg.type === "string" || arg.type === "enum" };
    table.set(name, entry);
    const aliases = aliasesOf(arg);
    for (const a of aliases) table.set(a, entry);
    if (arg.type === "boolean") table.set(`no-${name}`, { name, takesValue: false });
  }
  return table;
}

/**
 * Splits argv at the first `--` or at the first word that is not an option or an option's value.
 * Everything after belongs to the container command, untouched: `corerun R sh --help` runs
 * `sh --help` (citty alone would print corerun's help, as it scans every word).
 */
export function splitArgv(argv: readonly string[], def: ArgsDef, opts: SplitOptions): SplitArgv {
  const table = optionTable(def);
  const values: Record<string, string[]> = {};
  const flags: Record<string, boolean> = {};
  let help = false;
  const done = (tail: string[]): SplitArgv => ({ values, flags, tail, help });
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === "--") {
      // A tool that takes no words would otherwise ignore what follows.
      if (opts.tail === "none" && i + 1 < argv.length) throw new UsageError(`unexpected argument "${argv[i + 1]}"; see --help`);
      return done(argv.slice(i + 1));
    }
    if (word === "-h" || word === "--help") {
      help = true;
      continue;
    }
    if (!word.startsWith("-") || word === "-") {
      if (opts.tail === "none") throw new UsageError(`unexpected argument "${word}"; see --help`);
      return done(argv.slice(i));
    }
    const long = word.startsWith("--");
    const eq = word.indexOf("=");
    const key = long ? word.slice(2, eq > 0 ? eq : undefined) : word.slice(1, 2);
    const entry = table.get(key);
    if (!entry) throw new UsageError(`unknown option ${long ? `--${key}` : `-${key}`}; see --help`);
    // Short flags bundle as in Docker's CLI: -it is -i -t; -it VALUE-TAKING must come last.
    if (!long && !entry.takesValue && word.length > 2 && /^-[A-Za-z]+$/.test(word)) {
      const bundle = [...word.slice(1)].map((k) => [k, table.get(k)] as const);
      const bad = bundle.find(([, e], j) => !e || (e.takesValue && j < bundle.length - 1));
      if (bad) throw new UsageError(bad[1] ? `option -${bad[0]} takes a value: put it last in ${word}; see --help` : `unknown option -${bad[0]} in ${word}; see --help`);
      for (const [, e] of bundle.filter(([, e]) => !e!.takesValue)) flags[e!.name] = true;
      const last = bundle.at(-1)![1]!;
      if (last.takesValue) {
        if (argv[i + 1] === undefined) throw new UsageError(`option -${word.at(-1)} needs a value; see --help`);
        (values[last.name] ??= []).push(argv[++i]!);
      }
      continue;
    }
    if (!entry.takesValue) {
      if ((long && eq > 0) || (!long && word.length > 2)) throw new UsageError(`option ${long ? `--${key}` : `-${key}`} takes no value; see --help`);
      flags[entry.name] = !key.startsWith("no-") || key === entry.name;
      continue;
    }
    const inline = long ? (eq > 0 ? word.slice(eq + 1) : undefined) : word.length > 2 ? word.slice(2).replace(/^=/, "") : undefined;
    let value = inline;
    if (value === undefined) {
      const optional = opts.optionalValues?.[entry.name];
      const next = argv[i + 1];
      if (optional) {
        value = next !== undefined && optional.includes(next) ? argv[++i]! : optional[0]!;
      } else {
        if (next === undefined) throw new UsageError(`option ${word} needs a value; see --help`);
        value = argv[++i]!;
      }
    }
    (values[entry.name] ??= []).push(value);
  }
  return done([]);
}


/** A count of inherited fds from 3 on, each of which must be open. */
export function fdCount(value: string | undefined, option: string): number {
  if (value === undefined) return 0;
  if (!/^\d+$/.test(value) || Number(value) > 1024) throw new UsageError(`${option} ${value}: give a count of fds (0 to 1024)`);
  for (let fd = 3; fd < 3 + Number(value); fd++) {
    if (!existsSync(`/proc/self/fd/${fd}`)) throw new UsageError(`${option} ${value}: fd ${fd} is not open; pass the fds from 3 on`);
  }
  return Number(value);
}
