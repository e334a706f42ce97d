import { UsageError } from "@corerun/cli";
import type { State } from "./schema.ts";

/**
 * A container as users name it, as Docker resolves it: its name, its id, or a unique prefix of
 * its id. An exact name or id always wins over a prefix, so that a full id an engine passes can
 * never reach another container; `exact` turns prefixes off (runc's commands take whole ids).
 */
export function findByRef(states: readonly State[], ref: string, exact = false): State | undefined {
  const found = states.find((s) => s.config.name === ref) ?? states.find((s) => s.id === ref);
  if (found || exact || !/^[0-9a-f]{1,11}$/.test(ref)) return found;
  const matches = states.filter((s) => s.id.startsWith(ref));
  if (matches.length > 1) {
    throw new UsageError(`container id prefix "${ref}" is ambiguous (${matches.map((s) => s.id).join(", ")}); give more of the id, or the name`);
  }
  return matches[0];
}
