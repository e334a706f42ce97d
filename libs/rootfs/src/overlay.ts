import { UsageError } from "@corerun/cli";
import type { Syscall } from "@corerun/syscall";
import { relative } from "node:path";

/** The page the kernel copies mount options into: lowerdir= must fit in it. */
const MOUNT_DATA_MAX = 4095;

export interface Overlay {
  /** Top first. */
  lower: readonly string[];
  upper?: string | undefined;
  work?: string | undefined;
  /**
   * overlayfs's own attributes (opaque directories) as user.overlay.*: what a mount inside a user
   * namespace reads and writes (trusted.* needs CAP_SYS_ADMIN of the host).
   */
  userxattr?: boolean;
}

/**
 * Mounts an overlayfs at target. The lowers are given relative to `base`, the working directory
 * for the call, so that every lower of a deep image fits in the one page of mount options.
 */
export function mountOverlay(sys: Syscall, target: string, o: Overlay, base: string, what: string): void {
  const rw = o.upper !== undefined ? `,upperdir=${o.upper},workdir=${o.work}` : "";
  const data = `lowerdir=${o.lower.map((l) => relative(base, l)).join(":")}${rw}${o.userxattr ? ",userxattr" : ""}`;
  if (data.length > MOUNT_DATA_MAX) throw new UsageError(`${what} has ${o.lower.length} layers, more than one overlayfs mount can take here; flatten it (corerun commit of a container, or fewer layers)`);
  const cwd = process.cwd();
  process.chdir(base);
  try {
    sys.mount("overlay", target, "overlay", 0, data);
  } finally {
    process.chdir(cwd);
  }
}
