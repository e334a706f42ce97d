import { UsageError } from "@corerun/cli";
import type { State } from "./schema.ts";
import type { RawState } from "./store.ts";

const PREFIX = /^[0-9a-f]{1,11}$/;

/**
 * Whether findByRef could return this state (its name or id is `ref`, or its id starts with it):
 * readStates' pick, so that only those states are read in full.
 */
export function mayBeRef(raw: RawState, ref: string, exact = false): boolean {
  if (raw.config?.name === ref || raw.id === ref) return true;
  return !exact && PREFIX.test(ref) && typeof raw.id === "string" && raw.id.startsWith(ref);
}

/**
 * A container as users name it, as Docker resolves it: its name, its id, or a unique prefix of
 * its id. An exact name or id always wins over a prefix, so that a full id an engine passes can
 * never reach another container; `exact` turns prefixes off (runc's commands take whole ids).
 */
export function findByRef(states: readonly State[], ref: string, exact = false): State | undefined {
  const found = states.find((s) => s.config.name === ref) ?? states.find((s) => s.id === ref);
  if (found || exact || !PREFIX.test(ref)) return found;
  const matches = states.filter((s) => s.id.startsWith(ref));
  if (matches.length > 1) {
    throw new UsageError(`container id prefix "${ref}" is ambiguous (${matches.map((s) => s.id).join(", ")}); give more of the id, or the name`);
  }
  return matches[0];
}
