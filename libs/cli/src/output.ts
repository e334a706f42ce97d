import { closeSync, fstatSync, openSync, writeSync } from "node:fs";
import { linuxSyscall, POLLOUT, type Syscall } from "@corerun/syscall";

/**
 * A command's output and messages, written straight to fd 1 and fd 2. `process.stdout` and
 * `process.stderr` are made on first use and load Node's streams as they are (node:stream and
 * its parts, ~5 ms, and node:net when the fd is a pipe, as an engine's `corerun state` has), for
 * output that is a few lines written once. Both are written synchronously on Linux, as these
 * are, so output written either way stays in order.
 */

/** stdout's reader has gone (EPIPE): the command stops, exit status 141 as after SIGPIPE. */
export class OutputClosed extends Error {
  override name = "OutputClosed";
  readonly exitCode = 141;
  constructor() {
    super("stdout is closed");
  }
}

/** Writes all of `data` to `fd`, waiting while a non-blocking fd (its reader's choice) is full. */
export function writeAll(fd: number, data: string | Uint8Array, sys: Pick<Syscall, "poll"> = linuxSyscall): void {
  const buf = typeof data === "string" ? Buffer.from(data) : data;
  let off = 0;
  while (off < buf.length) {
    try {
      off += writeSync(fd, buf, off, buf.length - off);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EAGAIN") sys.poll([fd], -1, POLLOUT);
      else if (code !== "EINTR") throw err;
    }
  }
}

/** Output on stdout; throws OutputClosed when its reader has gone. */
export function writeOut(data: string | Uint8Array): void {
  try {
    writeAll(1, data);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EPIPE") throw new OutputClosed();
    throw err;
  }
}

/** A message on stderr. With stderr closed there is nowhere to say anything, so nothing is. */
export function writeErr(data: string): void {
  try {
    writeAll(2, data);
  } catch {
    // stderr closed or gone: no one to tell
  }
}

/**
 * koffi's native addon fsyncs fds 1 and 2 as the process exits (the destructors of its own stream
 * writers, run by libc's exit): with output redirected to a file, each corerun process's exit
 * forced that file to disk, twice a container start (corerun's and corerun-mount's): 1-5 ms here.
 * Once Node has run the exit listeners nothing is written there any more, so a regular file at fd
 * 1 or 2 is swapped for /dev/null right before Node's own exit (`process.reallyExit`, which
 * process.exit calls last). Pipes and terminals, whose flags and mode Node restores at exit, stay.
 */
export function noFsyncAtExit(sys: Pick<Syscall, "dup2"> = linuxSyscall): void {
  const p = process as unknown as { reallyExit(code: number): never };
  const exit = p.reallyExit;
  p.reallyExit = (code: number) => {
    for (const fd of [1, 2]) {
      try {
        if (!fstatSync(fd).isFile()) continue;
        const devNull = openSync("/dev/null", "w");
        sys.dup2(devNull, fd);
        closeSync(devNull);
      } catch {
        // closed, or /dev/null missing: the fsync stays
      }
    }
    return exit.call(process, code);
  };
}
