import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { State } from "./schema.ts";
import { readState, readStates, statePath } from "./store.ts";

/**
 * An OCI container's corerun id derives from its OCI id, so that the commands an engine runs for
 * it (state, start, kill, delete, several per container) read its own state instead of every
 * container's under the root: a lookup by reading them all costs ~0.12 ms per container (6 ms
 * of a command with 50 others). The id is the first 12 hex digits of the FNV-1a hash (64 bits)
 * of the OCI id; OCI_SLOTS - 1 more hash it with a NUL and 1, 2, ..., for an id whose first
 * choice another container holds (any container's random id can). FNV is no secret: ids chosen
 * to collide only get the last of them refused.
 */
export const OCI_SLOTS = 8;

/**
 * A file in the root whose presence says that every OCI container under it has a derived id, so
 * that create can trust the slots to tell whether an OCI id is taken. The first create that finds
 * no OCI container with another id (made by a corerun before derived ids) writes it.
 */
export const OCI_IDS_FILE = "oci-ids";

const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const MASK = (1n << 64n) - 1n;

function fnv1a64(text: string): string {
  let h = FNV_OFFSET;
  for (const b of Buffer.from(text)) h = ((h ^ BigInt(b)) * FNV_PRIME) & MASK;
  return h.toString(16).padStart(16, "0");
}

/** The corerun ids an OCI container of this id may have, in the order create takes them. */
export function ociIds(ociId: string): string[] {
  return Array.from({ length: OCI_SLOTS }, (_, k) => fnv1a64(k === 0 ? ociId : `${ociId}\0${k}`).slice(0, 12));
}

/** The OCI container of this OCI id, found in its slots; undefined when no slot holds it. */
export function findOciContainer(root: string, ociId: string): State | undefined {
  for (const id of ociIds(ociId)) {
    const path = statePath(root, id);
    // An empty slot (every slot, for a new id) is no exception: each would cost ~0.15 ms of create.
    if (!existsSync(path)) continue;
    let s: State;
    try {
      s = readState(path);
    } catch {
      continue;
    }
    if (s.oci && s.config.name === ociId) return s;
  }
  return undefined;
}

/**
 * Whether a new OCI container cannot take this id, as runc refuses a second container of one id.
 * Run under the root's names.lock. Until the root holds OCI_IDS_FILE, every container's state is
 * read, as before derived ids: a container of that name, of any kind, takes it.
 */
export function ociIdTaken(root: string, ociId: string): boolean {
  if (findOciContainer(root, ociId)) return true;
  const marker = join(root, OCI_IDS_FILE);
  if (existsSync(marker)) return false;
  const states = readStates(root);
  if (states.some((s) => s.config.name === ociId)) return true;
  if (!states.some((s) => s.oci && s.config.name !== undefined && !ociIds(s.config.name).includes(s.id))) {
    writeFileSync(marker, "Every OCI container under this root has a corerun id derived from its OCI id (corerun's oci-ids.ts).\n", { mode: 0o600 });
  }
  return false;
}
