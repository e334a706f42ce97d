import type { ConsolaInstance } from "consola";
import { errorLine, OutputClosed, writeOut } from "@corerun/cli";
import { isAlive, listContainers, readState, removePartial, statePath, sweepUnpublished } from "@corerun/state";
import { teardown } from "./steps.ts";

/**
 * `corerun cleanup`: each container is handled on its own, so that one that cannot be cleaned
 * up does not keep the others from it. A directory without a readable state (its corerun died
 * while making it) is removed when the owner it records is dead, and never while it lives.
 * Prints the ids removed; returns how many failed.
 */
export function cleanupContainers(root: string, given: readonly string[], force: boolean, log: ConsolaInstance): number {
  const ids = given.length ? given : listContainers(root);
  let failed = 0;
  if (!given.length) {
    for (const name of sweepUnpublished(root)) log.info(`${name}: removed (its corerun died while making it)`);
  }
  for (const id of ids) {
    try {
      const path = statePath(root, id);
      let state;
      try {
        state = readState(path);
      } catch (err) {
        const p = removePartial(root, id);
        if (p.owner === "dead") writeOut(`${id}\n`);
        else if (p.owner === "alive") log.info(`${id}: being created by pid ${p.ref.pid}; skipped`);
        else throw new Error(`${errorLine(err)}, and no owner is recorded in ${root}/${id}; remove that directory by hand once no corerun uses it`);
        continue;
      }
      if (isAlive(state.owner) && !force) {
        log.info(`${id}: still managed by corerun pid ${state.owner!.pid}; skipped (use --force)`);
        continue;
      }
      // An exited detached container is kept, released, for its log and exit status: rm's to remove.
      if (state.detached?.finished && !force) {
        log.info(`${id}: exited detached container, kept for corerun logs; skipped (corerun rm removes it)`);
        continue;
      }
      // An OCI container outlives its create by design: its engine deletes it. Only a create
      // that died halfway is cleanup's.
      if (state.oci && state.status !== "creating" && !force) {
        log.info(`${id}: OCI container ${state.config.name} is its engine's to delete (corerun delete); skipped (use --force)`);
        continue;
      }
      if (teardown(root, id, path, log).length) {
        failed++;
        continue;
      }
      writeOut(`${id}\n`);
    } catch (err) {
      // No one reads the ids any more: the cleanup stops (runTool exits 141).
      if (err instanceof OutputClosed) throw err;
      failed++;
      log.error(`${id}: ${errorLine(err)}`);
    }
  }
  return failed;
}
