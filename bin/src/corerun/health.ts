/**
 * Health checks, as Docker runs them: a probe command run inside the container (as `corerun
 * exec` runs one) every interval, its status and the last five results kept in the state
 * (Docker's State.Health). A detached container's monitor runs `corerun __health ROOT ID` when a
 * probe is due; that process runs one probe, records it and answers "next MS" on its stdout,
 * when the next one is due. `corerun healthcheck run NAME` runs one probe by hand.
 */
import { closeSync, writeSync } from "node:fs";
import { Socket } from "node:net";
import { defineTool, UsageError, writeErr, writeOut, type ToolContext } from "@corerun/cli";
import type { ExecConfig } from "@corerun/image";
import { isAlive, readState, stateRoot, statePath, updateState, type State } from "@corerun/state";
import { linuxSyscall as sys } from "@corerun/syscall";
import { ociExec } from "./exec.ts";
import { mustFind } from "./oci.ts";
import { rootArg } from "./oci-calls.ts";

/** What the monitor runs when a probe is due: corerun __health ROOT ID. */
export const HEALTH_WORD = "__health";

export type HealthConfig = NonNullable<State["config"]["health"]>;
export type Health = NonNullable<State["health"]>;

/** Docker's defaults. */
const DEFAULTS = { intervalMs: 30_000, timeoutMs: 30_000, startPeriodMs: 0, startIntervalMs: 5_000, retries: 3 };
/** Docker keeps this much of a probe's output, and this many results. */
const OUTPUT_MAX = 4096;
const LOG_MAX = 5;

const UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** The longest wait the monitor's poll(2) takes, in ms (an int). */
const DURATION_MAX_MS = 0x7fffffff;

/** A Go duration as Docker's --health-* options take it (30s, 1m30s, 500ms), in ms (fractions kept). */
export function parseDuration(text: string, option: string): number {
  const parts = /^((?:\d+(?:\.\d+)?(?:ns|us|ms|s|m|h))+|0)$/.test(text) ? [...text.matchAll(/(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)/g)] : undefined;
  if (!parts) throw new UsageError(`${option} ${text}: not a duration; give one such as 30s, 1m30s or 500ms`);
  const ms = parts.reduce((sum, [, n, unit]) => sum + Number(n) * UNITS[unit!]!, 0);
  if (ms > DURATION_MAX_MS) throw new UsageError(`${option} ${text}: give at most 596h`);
  return ms;
}

export const HEALTH_OPTIONS = ["health-cmd", "health-interval", "health-timeout", "health-retries", "health-start-period", "health-start-interval"] as const;

/**
 * The container's health check: --health-cmd (run by /bin/sh -c, Docker's CMD-SHELL) or the
 * image's Healthcheck, with --health-* over the image's values over Docker's defaults;
 * --no-healthcheck, or an image's Test ["NONE"], turns it off.
 */
export function healthConfig(values: Record<string, string[] | undefined>, off: boolean, image: ExecConfig["Healthcheck"] | undefined): HealthConfig | undefined {
  const given = HEALTH_OPTIONS.filter((o) => values[o]?.length);
  if (off) {
    if (given.length) throw new UsageError(`--no-healthcheck and --${given[0]} exclude each other; drop one`);
    return undefined;
  }
  const cmd = values["health-cmd"]?.at(-1);
  const test = cmd !== undefined ? ["CMD-SHELL", cmd] : (image?.Test ?? undefined);
  if (cmd === "") throw new UsageError("--health-cmd: give the command that probes the container, such as 'wget -q -O /dev/null localhost'");
  if (test && test[0] !== "CMD" && test[0] !== "CMD-SHELL" && test[0] !== "NONE") throw new UsageError(`the image's Healthcheck.Test starts with "${test[0]}"; CMD, CMD-SHELL or NONE were expected`);
  if (!test?.length || test[0] === "NONE" || test.length < 2) {
    if (given.length) throw new UsageError(`--${given[0]}: the container has no health check; give --health-cmd (or run an image with a HEALTHCHECK)`);
    return undefined;
  }
  // As Docker: 0 (or an image's 0) is the default; anything else at least 1 ms.
  const ms = (option: (typeof HEALTH_OPTIONS)[number], field: string, ns: number | undefined, dflt: number) => {
    const text = values[option]?.at(-1);
    const v = text !== undefined ? parseDuration(text, `--${option}`) : ns ? ns / 1e6 : 0;
    if (v > 0 && v < 1) throw new UsageError(`${text !== undefined ? `--${option} ${text}` : `the image's Healthcheck.${field} ${ns} ns`}: give 0 for the default, or at least 1 ms`);
    if (v > DURATION_MAX_MS) throw new UsageError(`the image's Healthcheck.${field} ${ns} ns: it may be at most 596h`);
    return v === 0 ? dflt : Math.round(v);
  };
  const retriesText = values["health-retries"]?.at(-1);
  if (retriesText !== undefined && !/^\d+$/.test(retriesText)) throw new UsageError(`--health-retries ${retriesText}: give a whole number`);
  const retries = retriesText !== undefined ? Number(retriesText) : image?.Retries || DEFAULTS.retries;
  return {
    test,
    intervalMs: ms("health-interval", "Interval", image?.Interval, DEFAULTS.intervalMs),
    timeoutMs: ms("health-timeout", "Timeout", image?.Timeout, DEFAULTS.timeoutMs),
    startPeriodMs: ms("health-start-period", "StartPeriod", image?.StartPeriod, DEFAULTS.startPeriodMs),
    startIntervalMs: ms("health-start-interval", "StartInterval", image?.StartInterval, DEFAULTS.startIntervalMs),
    retries: retries || DEFAULTS.retries,
  };
}

/** The probe's command line: CMD's words, or CMD-SHELL's through /bin/sh -c. */
export function probeArgv(test: readonly string[]): string[] {
  return test[0] === "CMD-SHELL" ? ["/bin/sh", "-c", test.slice(1).join(" ")] : test.slice(1);
}

/** The wait before the first probe of a run, and between probes: start-interval in the start period. */
export function nextProbeMs(h: HealthConfig, health: Health | undefined, runningMs: number): number {
  return (health?.status ?? "starting") === "starting" && runningMs < h.startPeriodMs ? h.startIntervalMs : h.intervalMs;
}

/**
 * Docker's rules for one probe's result: a success makes the container healthy; a failure
 * counts toward retries (unhealthy once they are reached) unless it came in the start period
 * before any success.
 */
export function afterProbe(h: HealthConfig, before: Health | undefined, result: Health["log"][number], runningMs: number): Health {
  const status = before?.status ?? "starting";
  const log = [...(before?.log ?? []), result].slice(-LOG_MAX);
  if (result.exitCode === 0) return { status: "healthy", failingStreak: 0, log };
  if (status === "starting" && runningMs < h.startPeriodMs) return { status, failingStreak: before?.failingStreak ?? 0, log };
  const failingStreak = (before?.failingStreak ?? 0) + 1;
  return { status: failingStreak >= h.retries ? "unhealthy" : status, failingStreak, log };
}

/** How long the current run has run, from its start as the state records it. */
function runningMs(s: State): number {
  const started = s.detached?.started ?? s.created;
  return Date.now() - Date.parse(started);
}

/**
 * Reads a pipe's first OUTPUT_MAX bytes and drains the rest, as Docker keeps a probe's output;
 * `close` stops reading and closes it, so that a writer left behind (a probe's child) meets EPIPE
 * instead of filling anything.
 */
function capture(fd: number): { text: () => string; ended: Promise<void>; close: () => void } {
  const chunks: Buffer[] = [];
  let kept = 0;
  const pipe = new Socket({ fd, readable: true, writable: false });
  const ended = new Promise<void>((resolve) => {
    pipe.on("data", (b: Buffer) => {
      if (kept < OUTPUT_MAX) chunks.push(b.subarray(0, OUTPUT_MAX - kept));
      kept += b.length;
    });
    pipe.on("end", resolve);
    pipe.on("close", resolve);
    pipe.on("error", resolve);
  });
  return { text: () => Buffer.concat(chunks).toString("utf8"), ended, close: () => pipe.destroy() };
}

/**
 * One probe: the test run in the container as `corerun exec` runs a command (its user,
 * environment, capabilities and filter), its output (stdout and stderr, the first 4096 bytes)
 * kept, killed after the timeout. Recorded in the state, for the run it was made in; returns the
 * health after it.
 */
export async function probe(root: string, ref: string, s: State): Promise<Health> {
  const h = s.config.health;
  if (!h) throw new UsageError(`container ${ref} has no health check (--health-cmd, or an image's HEALTHCHECK)`);
  if (!isAlive(s.init) || s.status !== "running") throw new UsageError(`container ${ref} is not running`);
  const [readEnd, writeEnd] = sys.pipe();
  const output = capture(readEnd);
  const saved = [sys.dup(1), sys.dup(2)];
  const start = new Date();
  const timeout = { ms: h.timeoutMs, expired: false };
  let exitCode: number;
  let failure: string | undefined;
  try {
    // The probe's stdout and stderr: this process's, for as long as it runs.
    sys.dup2(writeEnd, 1);
    sys.dup2(writeEnd, 2);
    closeSync(writeEnd);
    exitCode = await ociExec({
      root, id: s.id, processFile: undefined, args: probeArgv(h.test), env: [], cwd: undefined, user: undefined, additionalGids: [], caps: [], noNewPrivs: false,
      tty: false, interactive: false, detach: false, pidFile: undefined, consoleSocket: undefined, timeout,
    });
  } catch (err) {
    exitCode = -1;
    failure = (err as Error).message;
  } finally {
    sys.dup2(saved[0]!, 1);
    sys.dup2(saved[1]!, 2);
    for (const fd of saved) closeSync(fd);
  }
  // What the probe wrote last is in the pipe: read to its end, unless a child of the probe
  // still holds it open.
  await Promise.race([output.ended, new Promise((r) => setTimeout(r, 100))]);
  output.close();
  const text = timeout.expired ? `Health check exceeded timeout (${h.timeoutMs} ms)` : failure ?? output.text();
  const result = { start: start.toISOString(), end: new Date().toISOString(), exitCode: timeout.expired ? -1 : exitCode, output: text };
  // A probe of a run that has ended (a restart began meanwhile) says nothing of the new run.
  return updateState(statePath(root, s.id), (now) => (now.detached?.started === s.detached?.started ? { health: afterProbe(h, now.health, result, runningMs(now)) } : {})).health!;
}

/**
 * corerun __health ROOT ID, run by a detached container's monitor when a probe is due: one
 * probe, then "next MS" on stdout (the monitor's pipe). A container that is no longer running
 * answers nothing, and the monitor runs no more probes for this run.
 */
export async function healthHandler(args: readonly string[]): Promise<number> {
  const [root, id] = args;
  if (root === undefined || id === undefined) {
    writeErr(`corerun ${HEALTH_WORD}: usage: ROOT ID (run by corerun-monitor)\n`);
    return 125;
  }
  let s: State;
  try {
    s = readState(statePath(root, id));
  } catch {
    return 0;
  }
  if (!s.config.health || !isAlive(s.init)) return 0;
  // A paused container is probed again once it is resumed, as in Docker.
  if (s.status !== "running") {
    if (s.status === "paused") writeSync(1, `next ${s.config.health.intervalMs}\n`);
    return 0;
  }
  const health = await probe(root, id, s).catch(() => undefined);
  const now = readState(statePath(root, id));
  writeSync(1, `next ${nextProbeMs(s.config.health, health, runningMs(now))}\n`);
  return 0;
}

/** podman healthcheck run: one probe now, recorded as the monitor's are. */
export const healthcheck = defineTool({
  name: "corerun healthcheck",
  description: "Run a container's health check once: healthcheck run NAME (exit status 0 healthy, 1 not).",
  usage: "[options] run NAME|ID",
  args: rootArg,
  tail: "command",
  notes: ["The probe runs as the container's monitor runs it every interval (corerun run -d with\n--health-cmd, or an image's HEALTHCHECK): its result joins the container's State.Health\n(corerun inspect) and may change its status: healthy after a success, unhealthy after\n--health-retries failures in a row. It prints that status."],
  examples: ["sudo corerun healthcheck run web"],
  async run(ctx: ToolContext) {
    const [verb, ref, ...more] = ctx.tail;
    if (verb !== "run" || ref === undefined || more.length) throw new UsageError("usage: corerun healthcheck run NAME|ID");
    const root = stateRoot(ctx.values.root?.at(-1));
    const health = await probe(root, ref, mustFind(root, ref));
    writeOut(`${health.status}\n`);
    return health.status === "healthy" ? 0 : 1;
  },
});
