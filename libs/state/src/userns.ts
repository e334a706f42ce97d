import { readFileSync } from "node:fs";
import { UsageError } from "@corerun/cli";
import { isAlive } from "./proc.ts";
import { readStates } from "./store.ts";
import type { IdRange } from "./config.ts";

/** The size of one --userns auto range, as Podman's default. */
export const AUTO_SIZE = 65536;

/** Without /etc/subuid and /etc/subgid entries for "corerun": 64 ranges from id 100000. */
export const DEFAULT_POOL: IdRange = { container: 0, host: 100000, size: 64 * AUTO_SIZE };

/** The first "corerun:START:COUNT" line of a subordinate id file, as a pool. */
export function subidPool(path: string, user = "corerun"): IdRange | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
  for (const line of text.split("\n")) {
    const [name, start, count] = line.trim().split(":");
    if (name === user && /^\d+$/.test(start ?? "") && /^\d+$/.test(count ?? "")) return { container: 0, host: Number(start), size: Number(count) };
  }
  return undefined;
}

/**
 * A free range of AUTO_SIZE ids for --userns auto: the first one of the pool that no live
 * container of this state root holds. Call it under the root's lock, and record the result in
 * the new container's state before releasing it, so that concurrent starts never share a range.
 */
export function allocateAutoUserns(root: string, files = { subuid: "/etc/subuid", subgid: "/etc/subgid" }): { uidMap: IdRange[]; gidMap: IdRange[] } {
  const uidPool = subidPool(files.subuid) ?? DEFAULT_POOL;
  const gidPool = subidPool(files.subgid) ?? DEFAULT_POOL;
  const taken = new Set<number>();
  for (const s of readStates(root)) {
    if (s.config.userns?.auto && s.status !== "stopped" && (isAlive(s.owner) || isAlive(s.init))) taken.add(s.config.userns.uidMap[0]!.host - uidPool.host);
  }
  const blocks = Math.floor(Math.min(uidPool.size, gidPool.size) / AUTO_SIZE);
  for (let b = 0; b < blocks; b++) {
    const offset = b * AUTO_SIZE;
    if (taken.has(offset)) continue;
    return {
      uidMap: [{ container: 0, host: uidPool.host + offset, size: AUTO_SIZE }],
      gidMap: [{ container: 0, host: gidPool.host + offset, size: AUTO_SIZE }],
    };
  }
  throw new UsageError(`--userns auto: all ${blocks} ranges of ${AUTO_SIZE} ids are in use; stop a container or add a larger corerun entry to /etc/subuid and /etc/subgid`);
}

/** Every "USER:START:COUNT" range of a subordinate id file for a user, by name or by uid. */
export function subidRanges(path: string, user: string | undefined, uid: number): IdRange[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return [];
  }
  return text.split("\n").flatMap((line) => {
    const [name, start, count] = line.trim().split(":");
    if ((name !== user && name !== String(uid)) || !/^\d+$/.test(start ?? "") || !/^\d+$/.test(count ?? "")) return [];
    return [{ container: 0, host: Number(start), size: Number(count) }];
  });
}
