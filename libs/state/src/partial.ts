import { readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import { isAlive } from "./proc.ts";
import { ProcessRef } from "./schema.ts";
import { containerDir, NEW_DIR_PATTERN, OWNER_FILE, removeContainer } from "./store.ts";

/**
 * What is known of a directory under the state root that holds no readable state: a container's
 * directory whose state.json is missing or broken, or a `.new-…` directory its maker never
 * published. It may be removed only when its owner is proven dead; "unknown" means no record of
 * an owner, and such a directory is left for a person to judge.
 */
export type PartialDir = { owner: "dead" | "alive"; ref: ProcessRef } | { owner: "unknown" };

/** The owner recorded in a container's directory (its owner file). */
export function readOwner(root: string, id: string): ProcessRef | undefined {
  try {
    const r = v.safeParse(ProcessRef, JSON.parse(readFileSync(join(containerDir(root, id), OWNER_FILE), "utf8")));
    return r.success ? r.output : undefined;
  } catch {
    return undefined;
  }
}

function judge(ref: ProcessRef | undefined, proc?: string): PartialDir {
  if (!ref) return { owner: "unknown" };
  return { owner: isAlive(ref, proc) ? "alive" : "dead", ref };
}

/** Judges a container directory that has no readable state.json by its owner file. */
export function judgePartial(root: string, id: string, proc?: string): PartialDir {
  return judge(readOwner(root, id), proc);
}

/** Removes a container directory without a readable state, when its owner is proven dead. */
export function removePartial(root: string, id: string, proc?: string): PartialDir {
  const p = judgePartial(root, id, proc);
  if (p.owner === "dead") removeContainer(root, id);
  return p;
}

/**
 * Removes every `.new-…` directory whose maker is dead (nothing was created for a container
 * before its directory was published, so there is nothing else to undo). Returns their names.
 */
export function sweepUnpublished(root: string, proc?: string): string[] {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = NEW_DIR_PATTERN.exec(name);
    if (!m) continue;
    if (judge({ pid: Number(m[2]), startTime: Number(m[3]) }, proc).owner !== "dead") continue;
    rmSync(join(root, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}
