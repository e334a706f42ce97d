import { join } from "node:path";
import { errnoOf, type CgroupFs } from "./fs.ts";

/** Writes one value to an interface file, naming the file and value when the kernel says no. */
export function writeValue(fs: CgroupFs, dir: string, file: string, value: string): void {
  const path = join(dir, file);
  try {
    fs.write(path, value);
  } catch (err) {
    if (errnoOf(err) === "ENOENT") throw new Error(`cannot write "${value}" to ${path}: the file does not exist`, { cause: err });
    throw new Error(`cannot write "${value}" to ${path}`, { cause: err });
  }
}

/** Reads an interface file, or undefined when this kernel or controller does not provide it. */
export function readOptional(fs: CgroupFs, dir: string, file: string): string | undefined {
  try {
    return fs.read(join(dir, file));
  } catch (err) {
    if (errnoOf(err) === "ENOENT") return undefined;
    throw err;
  }
}

/**
 * A single-number file: null when absent or unlimited ("max" in v2; v1 reports "unlimited" as
 * the page counter's ceiling, about 2^63, and a quota of -1).
 */
export function readNumber(fs: CgroupFs, dir: string, file: string): number | null {
  const text = readOptional(fs, dir, file)?.trim();
  if (text === undefined || text === "" || text === "max") return null;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0 || n >= 2 ** 62) return null;
  return n;
}

/** A flat-keyed file ("key value" per line: memory.events, cpu.stat, cgroup.events). */
export function readKeyed(fs: CgroupFs, dir: string, file: string): Record<string, number> | undefined {
  const text = readOptional(fs, dir, file);
  if (text === undefined) return undefined;
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const [key, value] = line.trim().split(/\s+/);
    if (key && value !== undefined) out[key] = Number(value);
  }
  return out;
}

/** The pids in a cgroup.procs file. */
export function readPids(fs: CgroupFs, dir: string): number[] {
  return (readOptional(fs, dir, "cgroup.procs") ?? "").split("\n").filter(Boolean).map(Number);
}
