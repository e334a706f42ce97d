/**
 * A container's teardown: what `corerun run` does at its end, `delete`, `rm` and `cleanup` do
 * for a container that is gone, and a failed start does for what it made.
 */
import { closeSync, lstatSync, realpathSync, rmdirSync, unlinkSync } from "node:fs";
import { dirname, join } from "node:path";
import type { ConsolaInstance } from "consola";
import { cgroupManager, type CgroupManager } from "@corerun/cgroup";
import { faultPoint, span } from "@corerun/cli";
import { openRecorded, readState, releaseCreatedPaths, removeContainer, type CreatedPath, type State } from "@corerun/state";
import { isErrno, linuxSyscall as sys, MNT_DETACH } from "@corerun/syscall";

/**
 * The two steps whose code is not here: a bridge network's (corerun-net's records, veth and
 * rules) and an image's layers. steps.ts, which every corerun command but the engine's calls
 * loads, sets both as it loads; the bundle of the engine's calls (engine.ts) leaves them out and
 * deletes only containers that have neither (engine-call.ts): one that had one would fail that
 * step instead of leaving it undone.
 */
export const teardownParts: {
  network?: (root: string, id: string) => void;
  image?: (root: string, id: string, image: NonNullable<State["image"]>, userns: State["config"]["userns"], keepState: boolean) => void;
} = {};

function part<K extends keyof typeof teardownParts>(name: K): NonNullable<(typeof teardownParts)[K]> {
  const fn = teardownParts[name];
  if (!fn) throw new Error(`the ${name} teardown is not part of this bundle; run corerun cleanup`);
  return fn;
}

/**
 * Removes a path corerun created in the rootfs, if it is still what was made: an empty directory
 * or an empty file, reached without a symlink. The container may have replaced a parent with a
 * link to somewhere else on the host; nothing is removed through one.
 */
function removeCreatedPath(m: CreatedPath): void {
  const parent = dirname(m.path);
  try {
    if (realpathSync(parent) !== parent) return;
    const st = lstatSync(m.path);
    if (m.kind === "dir" && st.isDirectory()) rmdirSync(m.path);
    else if (m.kind === "file" && st.isFile() && st.size === 0) unlinkSync(m.path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "ENOENT" && code !== "ENOTEMPTY" && code !== "EBUSY" && code !== "ENOTDIR") throw err;
  }
}

/** Unmounts a shareable /dev/shm; one that is not mounted (a start that failed before, a second teardown) is fine. */
function unmountShm(path: string): void {
  try {
    sys.umount2(path, MNT_DETACH);
  } catch (err) {
    if (!isErrno(err, "EINVAL", "ENOENT")) throw err;
  }
}

/** The cgroup a state records: its name, its parent, its directories, and whether it holds device rules. */
export function recordedCgroup(cg: NonNullable<State["cgroup"]>): CgroupManager {
  return cgroupManager({ name: cg.name, parent: cg.parent, devices: cg.devices, paths: cg.paths });
}

/**
 * Ends whatever is left of a container and removes everything recorded for it: a live first
 * process is killed (its PID namespace dies with it), then its network, cgroup and mount points
 * go, each step on its own so that one failure does not keep the others from running. The
 * state directory goes last, and only when every step worked, so that `corerun cleanup` can try
 * again. A detached container that has exited keeps its state (keepState) for logs and inspect,
 * and an image's upper and work directories (its writable layer) for commit and start.
 * Returns the failures, already logged.
 */
export function teardown(root: string, id: string, statePath: string, log?: ConsolaInstance, keepState = false): Error[] {
  let state: State | undefined;
  try {
    state = readState(statePath);
  } catch {
    state = undefined;
  }
  const failures: Error[] = [];
  const step = (what: string, fn: () => void) => {
    try {
      span(what, { id }, fn);
    } catch (err) {
      const e = new Error(`cleanup of ${id}: ${what}`, { cause: err });
      failures.push(e);
      log?.error(e);
    }
  };
  const s = state;
  if (s) {
    // Whether the first step killed every process of the cgroup (when it failed, the cgroup step does).
    let killed = false;
    step("first process", () => {
      const fd = openRecorded(sys, s.init);
      if (fd !== undefined) {
        try {
          sys.pidfdSendSignal(fd, 9);
        } finally {
          closeSync(fd);
        }
      }
      // Without a PID namespace of its own (--pid host) the first process's end leaves the rest
      // running: every process of the cgroup goes here, before the network they use is released.
      if (s.cgroup) recordedCgroup(s.cgroup).killAll();
      killed = true;
    });
    faultPoint("teardown:first-process");
    if (s.config.network.mode === "bridge") step("network", () => part("network")(root, id));
    faultPoint("teardown:network");
    if (s.cgroup) {
      const recorded = s.cgroup;
      step("cgroup", () => {
        const cg = recordedCgroup(recorded);
        if (!killed) cg.killAll();
        cg.remove();
      });
      faultPoint("teardown:cgroup");
    }
    step("mount points", () => {
      for (const m of releaseCreatedPaths(root, id, s.mountPoints ?? [])) removeCreatedPath(m);
    });
    // --ipc shareable: its /dev/shm, mounted in its directory (containers that joined it keep their binds).
    if (s.config.ipc === "shareable") step("/dev/shm", () => unmountShm(join(root, id, "shm")));
    // An exited detached container keeps its writable layer, unmounted, until rm.
    if (s.image) step("image rootfs", () => part("image")(root, id, s.image!, s.config.userns, keepState));
    faultPoint("teardown:mount-points");
  }
  if (!failures.length && !keepState) step("state", () => removeContainer(root, id));
  return failures;
}
