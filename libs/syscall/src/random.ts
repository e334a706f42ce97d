import { closeSync, openSync, readSync } from "node:fs";

/**
 * n random bytes from the kernel (/dev/urandom), for ids and MAC addresses: node:crypto would
 * cost its ~4 ms load in the process that asks, on a container's start path.
 */
export function kernelRandom(n: number): Buffer {
  const fd = openSync("/dev/urandom", "r");
  try {
    const b = Buffer.alloc(n);
    if (readSync(fd, b, 0, n, null) !== n) throw new Error("/dev/urandom: short read");
    return b;
  } finally {
    closeSync(fd);
  }
}
