/**
 * `--restart`: Docker's restart policies for detached containers, kept by corerun-monitor.
 *
 * At each exit of the first process the monitor runs `corerun __monitor-exit`, which releases the
 * container's network, cgroup and mounts, records the exit and asks restartDelay whether (and
 * after how long) the container starts again. The monitor waits that long, then runs the same
 * start again for the same container (CORERUN_RESTART_ID): same id, name, config and log file.
 */
import { UsageError } from "@corerun/cli";
import type { RestartPolicy } from "@corerun/state";

/**
 * The monitor's word to a start: start this container again rather than a new one (a restart, or
 * `corerun start`, whose monitor has it from its birth).
 */
export const RESTART_ENV = "CORERUN_RESTART_ID";

/** Docker's restart manager: 100 ms, doubled at each restart, at most a minute. */
export const BACKOFF_FIRST_MS = 100;
export const BACKOFF_MAX_MS = 60_000;
/** A run at least this long resets the delay to its first value. */
export const BACKOFF_RESET_MS = 10_000;

/** `no`, `on-failure[:N]` (N ≥ 0; 0 means no limit), `always`, `unless-stopped`. */
export function parseRestart(text: string): RestartPolicy {
  const [name, count, ...more] = text.split(":");
  const fix = "use no, on-failure[:N], always or unless-stopped";
  if (more.length) throw new UsageError(`--restart ${text}: ${fix}`);
  if (name === "on-failure") {
    if (count === undefined) return { name, maxRetries: 0 };
    if (!/^\d{1,9}$/.test(count)) throw new UsageError(`--restart ${text}: the retry count must be a whole number, 0 or more (0: no limit)`);
    return { name, maxRetries: Number(count) };
  }
  if (name === "no" || name === "always" || name === "unless-stopped") {
    if (count !== undefined) throw new UsageError(`--restart ${text}: a retry count goes only with on-failure (on-failure:${count})`);
    return { name, maxRetries: 0 };
  }
  throw new UsageError(`--restart ${text}: ${fix}`);
}

/** What the last run left for the decision. */
export interface LastRun {
  exitCode: number;
  /** Restarts so far. */
  restartCount: number;
  /** stop, kill or rm by the user: the container is not started again. */
  stoppedByUser: boolean;
  /** How long the run lasted, and the delay before it (0 for the first run). */
  ranMs: number;
  lastDelayMs: number;
}

/** The delay before the next start, or undefined when the container stays exited (Docker's rules). */
export function restartDelay(policy: RestartPolicy | undefined, run: LastRun): number | undefined {
  if (!policy || policy.name === "no" || run.stoppedByUser) return undefined;
  if (policy.name === "on-failure") {
    if (run.exitCode === 0) return undefined;
    if (policy.maxRetries > 0 && run.restartCount >= policy.maxRetries) return undefined;
  }
  const last = run.ranMs >= BACKOFF_RESET_MS ? 0 : run.lastDelayMs;
  return last === 0 ? BACKOFF_FIRST_MS : Math.min(last * 2, BACKOFF_MAX_MS);
}

/** As inspect and the help show it: on-failure:3, always. */
export function restartText(policy: RestartPolicy | undefined): string {
  if (!policy) return "no";
  return policy.name === "on-failure" && policy.maxRetries > 0 ? `on-failure:${policy.maxRetries}` : policy.name;
}

/** The longest grace period poll(2) can wait for, in seconds (its timeout is an int of ms). */
const GRACE_MAX_S = Math.floor(0x7fffffff / 1000);

/** A grace period before SIGKILL (--stop-timeout, stop -t, restart -t): whole seconds, or -1 to wait for good. */
export function parseGraceSeconds(text: string, option: string): number {
  if (!/^(-1|\d+)$/.test(text) || Number(text) > GRACE_MAX_S) throw new UsageError(`${option} ${text}: give the grace period in whole seconds (at most ${GRACE_MAX_S}), or -1 to wait for good`);
  return Number(text);
}

/** stop's and restart's -t. */
export const timeArg = { time: { type: "string", alias: "t", valueHint: "SECONDS", description: "grace period before SIGKILL (default: the container's --stop-timeout, else 10; -1 waits for good)" } } as const;

/** A detached container's log rotates past this size unless --log-opt max-size says otherwise. */
export const LOG_MAX_BYTES = 10 * 1024 * 1024;
