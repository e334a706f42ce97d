import { closeSync, fstatSync, openSync, writeSync } from "node:fs";
import { ffiLoaded, linuxSyscall, POLLOUT, type Syscall } from "@corerun/syscall";

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

/** The Node flags corerun's launchers start every tool with (bin/*, nodeCommand). */
export const LAUNCH_FLAGS: readonly string[] = ["--preserve-symlinks-main"];

/**
 * Node's command line for a bundle's loader and its words, as the launchers start it.
 * --preserve-symlinks-main: Node would otherwise resolve the script's path with realpath, one
 * lstat a component in JavaScript (~0.5 ms of every start); the loader finds its bundle and
 * caches beside the path it was given, whose directory is dist/ itself. A tool's quick exit
 * checks for these flags (nodeExitNeeded). "--" ends
 * Node's own options: Node 20 takes --env-file wherever it appears on its command line, a
 * container command's words included, and exits 9 when that file is missing.
 */
export function nodeCommand(script: string, words: readonly string[] = []): string[] {
  return [process.execPath, ...LAUNCH_FLAGS, "--", script, ...words];
}

/**
 * Whether Node's own exit has work this process needs once the exit listeners have run: a
 * profile, log or coverage to write (--cpu-prof, --prof, NODE_V8_COVERAGE, an inspector: any flag
 * corerun's launchers do not pass, or NODE_OPTIONS), or fds 0-2 to put back as they were
 * (ResetStdio: the O_NONBLOCK flags and terminal modes that Node's streams change), which only a
 * process that used process.stdin, stdout or stderr has.
 */
export function nodeExitNeeded(o: { execArgv: readonly string[]; env: NodeJS.ProcessEnv; stdioUsed: boolean; launchFlags: readonly string[] }): boolean {
  return o.stdioUsed || o.execArgv.some((a) => !o.launchFlags.includes(a)) || Boolean(o.env.NODE_OPTIONS) || o.env.NODE_V8_COVERAGE !== undefined;
}

/**
 * A tool's end, once Node has run the exit listeners (process.exit calls process.reallyExit
 * last). What Node does next (its platform's threads joined, libuv shut down, libc's exit
 * handlers) is ~0.75 ms of each process, and koffi's addon adds an fsync of fds 1 and 2 (the
 * destructors of its stream writers): with output redirected to a file, each exit forced that
 * file to disk, 1-5 ms here. So a process that loaded libc through koffi ends with _exit(2) when
 * Node's exit has nothing it needs (nodeExitNeeded); otherwise a regular file at fd 1 or 2 is
 * swapped for /dev/null first, as nothing is written there any more, and Node exits. A process
 * that never loaded koffi exits as Node does.
 */
export function quickExit(sys: Pick<Syscall, "dup2" | "exit"> = linuxSyscall, launchFlags: readonly string[] = LAUNCH_FLAGS): void {
  let stdioUsed = false;
  for (const name of ["stdin", "stdout", "stderr"] as const) {
    const d = Object.getOwnPropertyDescriptor(process, name);
    const get = d?.get;
    if (!d || !get || !d.configurable) {
      stdioUsed = true;
      continue;
    }
    Object.defineProperty(process, name, {
      ...d,
      get() {
        stdioUsed = true;
        return get.call(this);
      },
    });
  }
  const p = process as unknown as { reallyExit(code: number): never };
  const exit = p.reallyExit;
  p.reallyExit = (code: number) => {
    const loaded = ffiLoaded();
    if (loaded.libc && !nodeExitNeeded({ execArgv: process.execArgv, env: process.env, stdioUsed, launchFlags })) {
      try {
        sys.exit(code);
      } catch {
        // _exit could not be called: Node's exit below
      }
    }
    if (loaded.addon) {
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
    }
    return exit.call(process, code);
  };
}
