import { closeSync, readSync, writeSync } from "node:fs";
import { FD_CLOEXEC, linuxSyscall, type Syscall } from "@corerun/syscall";
import { UsageError } from "./exit.ts";

/**
 * A tool started before its command line is known (so that its Node start overlaps the work
 * that decides its arguments, as runc's `runc init` reads its config from _LIBCONTAINER_INITPIPE)
 * reads its words from this inherited fd: each word followed by a NUL byte (`printf '%s\0'`),
 * up to the writer's close. They follow the words of its command line and are parsed as those.
 */
export const ARGV_FD_ENV = "CORERUN_ARGV_FD";
/** A tool that has done its work (status 0) writes "done\n" here before its Node process exits. */
export const DONE_FD_ENV = "CORERUN_DONE_FD";

/** The words as written on an argv fd: each one followed by a NUL byte. */
export function encodeArgv(words: readonly string[]): Buffer {
  for (const w of words) if (w.includes("\0")) throw new UsageError(`argument ${JSON.stringify(w)} holds a NUL byte, which ends a word on ${ARGV_FD_ENV}`);
  return Buffer.from(words.map((w) => `${w}\0`).join(""), "utf8");
}

/** The words of an argv fd's bytes; `source` names the fd in the errors. */
export function decodeArgv(bytes: Buffer, source: string): string[] {
  if (!bytes.length) throw new UsageError(`${source}: closed before any word was written (its writer went away)`);
  if (bytes.at(-1) !== 0) throw new UsageError(`${source}: the last word ends without a NUL byte (cut short, or not written as printf '%s\\0' does)`);
  return bytes.subarray(0, -1).toString("utf8").split("\0");
}

/** The fd an environment variable names: a number from 3 on (stdio stays the tool's own). */
function fdFrom(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const value = env[name];
  if (value === undefined) return undefined;
  delete env[name];
  if (!/^\d+$/.test(value) || Number(value) < 3 || Number(value) > 1024) throw new UsageError(`${name}=${value}: give an inherited fd from 3 on`);
  return Number(value);
}

/**
 * The words on the fd named by CORERUN_ARGV_FD, read to the writer's close (blocking: the
 * tool has nothing else to do until it knows its arguments); undefined without the variable.
 * The variable leaves the environment and the fd is closed: nothing the tool runs inherits them.
 */
export function takeArgvFd(env: NodeJS.ProcessEnv = process.env, sys: Pick<Syscall, "poll"> = linuxSyscall): string[] | undefined {
  const fd = fdFrom(env, ARGV_FD_ENV);
  if (fd === undefined) return undefined;
  const source = `${ARGV_FD_ENV}=${fd}`;
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(65536);
  try {
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // A non-blocking pipe (the writer's choice): wait until it has more to say.
        if (code === "EAGAIN") {
          sys.poll([fd], -1);
          continue;
        }
        throw new UsageError(`${source}: cannot read it (${code}); pass an open fd`);
      }
      if (n === 0) break;
      chunks.push(Buffer.from(buf.subarray(0, n)));
    }
  } finally {
    try {
      closeSync(fd);
    } catch {
      // not open: said above
    }
  }
  return decodeArgv(Buffer.concat(chunks), source);
}

/**
 * The fd named by CORERUN_DONE_FD, taken out of the environment and marked close-on-exec (a
 * process the tool runs does not say done for it); undefined without the variable.
 */
export function takeDoneFd(env: NodeJS.ProcessEnv = process.env, sys: Pick<Syscall, "setFdFlags"> = linuxSyscall): number | undefined {
  const fd = fdFrom(env, DONE_FD_ENV);
  if (fd === undefined) return undefined;
  try {
    sys.setFdFlags(fd, FD_CLOEXEC);
  } catch {
    throw new UsageError(`${DONE_FD_ENV}=${fd}: not an open fd; pass one the tool inherits`);
  }
  return fd;
}

/**
 * Says done on the fd and closes it: the caller may go on without waiting for the Node process
 * to exit (~3 ms), and still waits for its exit status.
 */
export function sayDone(fd: number): void {
  try {
    writeSync(fd, "done\n");
  } catch {
    // its reader went away: nobody waits for the word (the exit status says the same)
  } finally {
    closeSync(fd);
  }
}
