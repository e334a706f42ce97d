// The command line of a bench script: node:util's parseArgs, with --help printing the script's
// header comment, and a bad option reported in one line (exit status 125), not a stack trace.
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

/** `scriptUrl`: the script's import.meta.url; `options`: parseArgs's. Returns the values. */
export function benchArgs(scriptUrl, options) {
  const file = fileURLToPath(scriptUrl);
  const name = basename(file, ".mjs");
  let parsed;
  try {
    parsed = parseArgs({ options: { ...options, help: { type: "boolean", short: "h", default: false } } });
  } catch (err) {
    // parseArgs's messages go on with advice about "--" that does not apply here.
    console.error(`${name}: ${String(err.message).split(". ")[0]}; see --help`);
    process.exit(125);
  }
  if (parsed.values.help) {
    const lines = readFileSync(file, "utf8").split("\n").slice(1);
    const end = lines.findIndex((l) => !l.startsWith("//"));
    console.log(lines.slice(0, end < 0 ? lines.length : end).map((l) => l.replace(/^\/\/ ?/, "")).join("\n"));
    process.exit(0);
  }
  return parsed.values;
}
