import { openSync, writeSync } from "node:fs";
import { mark } from "./trace.ts";

let traceFd: number | undefined;

/**
 * Fault injection for developers and the e2e suite: `CORERUN_FAULT=NAME` makes the process that
 * reaches the point NAME stop dead there, as `kill -9` at that instant would. With
 * `CORERUN_FAULT_TRACE=FILE`, every point reached is appended to FILE (one NAME per line): that
 * is how a test learns the steps to walk; `CORERUN_FAULT_PAUSE=NAME` stops the process there
 * (SIGSTOP) for a test to act. They come from the environment, so every tool of a start inherits
 * them from corerun. Without them, a point costs three lookups.
 */
export function faultPoint(name: string, env: NodeJS.ProcessEnv = process.env): void {
  mark(name);
  if (env.CORERUN_FAULT_TRACE) trace(env.CORERUN_FAULT_TRACE, name);
  // Stopped there (SIGSTOP) until someone sends SIGCONT: a test may act at that instant, such as
  // kill the container's first process while corerun or a tool stands at this step.
  if (env.CORERUN_FAULT_PAUSE === name) process.kill(process.pid, "SIGSTOP");
  if (env.CORERUN_FAULT !== name) return;
  // PID 1 of a PID namespace is immune to its own SIGKILL (the kernel drops signals that init
  // has no handler for); its exit ends the namespace as abruptly, with no cleanup run.
  if (process.pid === 1) process.exit(137);
  process.kill(process.pid, "SIGKILL");
}

/**
 * The file is opened once, at the first point: a later point may be reached after pivot_root,
 * where the path no longer names it. A process that cannot open it (a mapped uid) is not traced.
 */
function trace(path: string, name: string): void {
  try {
    traceFd ??= openSync(path, "a");
    writeSync(traceFd, `${name}\n`);
  } catch {
    traceFd = -1;
  }
}
