import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, statfsSync, constants, writeSync } from "node:fs";

/**
 * The few file operations a cgroup needs. The default goes to the kernel; unit tests hand in a
 * fixture that plays the kernel's part on a temporary directory (see _fixture.ts).
 */
export interface CgroupFs {
  /** statfs(2) f_type of the filesystem holding path, or undefined when path does not exist. */
  fsType(path: string): number | undefined;
  exists(path: string): boolean;
  read(path: string): string;
  /** Writes to an existing interface file; never creates one. */
  write(path: string, data: string): void;
  /** Creates one directory level; throws EEXIST when it is there already. */
  mkdir(path: string): void;
  rmdir(path: string): void;
  /** Names of the subdirectories of dir (child cgroups). */
  subdirs(dir: string): string[];
}

export const nodeCgroupFs: CgroupFs = {
  fsType(path) {
    try {
      return statfsSync(path).type;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  },
  exists: (path) => existsSync(path),
  read: (path) => readFileSync(path, "utf8"),
  write(path, data) {
    // cgroupfs has no O_CREAT: opening without it makes a missing file (a controller that is not
    // there) fail with ENOENT instead of silently creating nothing. Kernel interface files take the
    // whole value in one write(2).
    const fd = openSync(path, constants.O_WRONLY);
    try {
      writeSync(fd, data);
    } finally {
      closeSync(fd);
    }
  },
  mkdir: (path) => mkdirSync(path),
  rmdir: (path) => rmdirSync(path),
  subdirs: (dir) => readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name),
};

/** Blocks the thread for ms milliseconds: cgroup teardown is polled from synchronous code. */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Polls cond every few ms until it holds or timeoutMs has passed; returns whether it held. */
export function waitFor(cond: () => boolean, timeoutMs: number): boolean {
  const deadline = Date.now() + timeoutMs;
  let delay = 1;
  for (;;) {
    if (cond()) return true;
    if (Date.now() >= deadline) return false;
    sleepSync(delay);
    delay = Math.min(delay * 2, 20);
  }
}

export function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}
