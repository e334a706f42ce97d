import { createConsola, type ConsolaInstance, type LogObject } from "consola/core";
import { errorLine } from "./exit.ts";
import { writeErr } from "./output.ts";

const LEVELS: Record<string, number> = { silent: -999, error: 0, warn: 1, info: 3, debug: 4, trace: 5 };

export const LOG_LEVELS = Object.keys(LEVELS);

/**
 * Resolves the log level from --log-level, --log true|false, and CORERUN_LOG, in that
 * order. The default shows warnings and errors only, so a container's stdout and stderr stay its own.
 */
export function logLevel(opts: { log?: string | undefined; logLevel?: string | undefined }, env = process.env): number {
  const name = opts.logLevel ?? (opts.log === "true" ? "info" : opts.log === "false" ? "error" : undefined) ?? env.CORERUN_LOG ?? "warn";
  const level = LEVELS[name];
  if (level === undefined) throw new Error(`unknown log level "${name}"; use one of ${LOG_LEVELS.join(", ")}`);
  return level;
}

/** Every line goes to stderr, one line each: "corerun-ns: info: created namespaces". */
export function createLogger(tool: string, level = 1): ConsolaInstance {
  return createConsola({
    level,
    reporters: [
      {
        log(obj: LogObject) {
          const msg = obj.args.map((a) => (a instanceof Error ? errorLine(a) : typeof a === "string" ? a : JSON.stringify(a))).join(" ");
          const type = obj.type === "log" || obj.type === "error" ? "" : `${obj.type}: `;
          writeErr(`${tool}: ${type}${msg}\n`);
        },
      },
    ],
  });
}
