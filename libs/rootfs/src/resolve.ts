import { lstatSync, readlinkSync, statSync, type Stats } from "node:fs";
import { posix } from "node:path";
import { UsageError } from "@corerun/cli";

const MAX_LINKS = 40;

/**
 * lstat, or undefined for a path that cannot be reached (missing, a component not a directory,
 * no search permission). A missing path is answered without an exception: Node builds an Error
 * with its stack for each (~25 us, ~0.3 ms for a process's first), and a start looks up paths
 * that a root filesystem often lacks (/etc/resolv.conf, /proc/asound).
 */
export function lstatIfAny(path: string): Stats | undefined {
  try {
    return lstatSync(path, { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
}

/** stat (links followed), or undefined as for lstatIfAny. */
export function statIfAny(path: string): Stats | undefined {
  try {
    return statSync(path, { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
}

/**
 * The host path that `path` names inside `root`, following symlinks as the kernel would after
 * chroot(root): an absolute link target restarts at root and ".." stops at root. Without this,
 * a rootfs symlink such as /data -> /etc could make a mount land on the host (CVE-2021-30465).
 * Components that do not exist are appended as they are.
 */
export function resolveInRoot(root: string, path: string): string {
  const parts = path.split("/").filter((p) => p && p !== ".");
  const done: string[] = [];
  let links = 0;
  // Once a component is missing, nothing below it can be a symlink: the rest is appended, but
  // ".." still stops at the root.
  let missing = false;
  while (parts.length) {
    const part = parts.shift()!;
    if (part === "..") {
      done.pop();
      continue;
    }
    if (missing) {
      done.push(part);
      continue;
    }
    const host = posix.join(root, ...done, part);
    const st = lstatIfAny(host);
    if (!st) {
      missing = true;
      done.push(part);
      continue;
    }
    if (st.isSymbolicLink()) {
      if (++links > MAX_LINKS) throw new UsageError(`${path} in the root filesystem ${root}: too many levels of symbolic links (a loop, such as /etc -> /etc); make its links point inside it`);
      const target = readlinkSync(host);
      if (target.startsWith("/")) done.length = 0;
      parts.unshift(...target.split("/").filter((p) => p && p !== "."));
      continue;
    }
    done.push(part);
  }
  return posix.join(root, ...done);
}
