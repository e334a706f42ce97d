/**
 * `corerun start`: one command for the two kinds of container that can be started, told apart
 * by their state. A created OCI container (corerun create, an engine's) is started as runc
 * starts it: its first process is told to go. An exited detached container (run -d) is started
 * again under a new corerun-monitor, with the command line its state records and RESTART_ENV,
 * the path its monitor takes for a --restart: the same id, name, config, writable layer, log
 * file (appended to) and, on a bridge, the same address and host ports when they are free.
 */
import { closeSync, existsSync, openSync } from "node:fs";
import { join } from "node:path";
import { defineTool, saveCodeCache, UsageError, writeOut } from "@corerun/cli";
import { isAlive, requestStart, startRefusal, stateRoot, statePath, type State } from "@corerun/state";
import { LOCK_EX, linuxSyscall as sys } from "@corerun/syscall";
import { attachTo } from "./attach.ts";
import { DEFAULT_DETACH_KEYS, parseDetachKeys } from "./detachkeys.ts";
import { graceOption, launchMonitor, stopContainers } from "./lifecycle.ts";
import { eachNamed, findEach, mustFind, startOci } from "./oci.ts";
import { rootArg, startSpec } from "./oci-calls.ts";
import { RESTART_ENV, timeArg } from "./restart.ts";

/**
 * One start of a container at a time: a second `corerun start` waits for the first one's answer,
 * then finds the container running. Held until the monitor has answered, not while attached.
 */
async function withStartLock<T>(root: string, id: string, fn: () => Promise<T>): Promise<T> {
  const fd = openSync(join(root, id, "start.lock"), "a", 0o600);
  try {
    sys.flock(fd, LOCK_EX);
    return await fn();
  } finally {
    closeSync(fd);
  }
}

/** Starts an exited detached container again; its id and how to let go of its monitor, or the start's status. */
async function startAgain(root: string, ref: string, s: State, attach: boolean) {
  const recorded = s.detached?.start;
  // Relative paths of its command line (--rootfs ./dir, -v ./data:/data) are its directory's.
  if (recorded && !existsSync(recorded.cwd)) {
    throw new UsageError(`container ${ref} was run from ${recorded.cwd}, which is gone; its command line is read there (corerun inspect ${ref}), so make that directory again or run it anew`);
  }
  return withStartLock(root, s.id, async () => {
    const now = requestStart(statePath(root, s.id), ref, isAlive);
    const { argv, cwd } = now.detached!.start!;
    // The state root is the one the container was found in, whatever the caller's CORERUN_ROOT.
    return launchMonitor({
      root, mode: attach ? "hold-keep" : "keep", words: argv, cwd, env: { ...process.env, CORERUN_ROOT: root, [RESTART_ENV]: s.id },
      sized: attach && (now.detached!.tty ?? false), what: "start", log: now.config.log,
    });
  });
}

/**
 * A container whose exit is recorded may still have its monitor finishing (the last output, the
 * attach clients): a start right after it (start; start -a) waits for that, up to 5 s.
 */
async function exitSettled(root: string, s: State): Promise<State> {
  const d = s.detached;
  if (s.status !== "stopped" || !d || d.restarting) return s;
  for (let i = 0; i < 100 && isAlive(d.monitor); i++) await new Promise((r) => setTimeout(r, 50));
  return mustFind(root, s.id, true);
}

export const start = defineTool({
  ...startSpec,
  async run(ctx) {
    const root = stateRoot(ctx.values.root?.at(-1));
    if (!ctx.tail.length) throw new UsageError("name the containers to start; see corerun ps -a");
    const attach = ctx.flags.attach ?? false;
    const found = findEach(root, ctx.tail);
    if (await startOci(root, found, attach)) return 0;
    if (attach && found.length > 1) throw new UsageError("start -a attaches to one container; name one");
    for (const f of found) f.s = await exitSettled(root, f.s);
    // A detached container that runs already is left as it is, as docker start does (-a attaches to it).
    const running = (s: State) => s.status === "running" && s.detached !== undefined && isAlive(s.detached.monitor);
    // Every refusal before the first start, as the other commands check every name first.
    for (const { ref, s } of found) {
      const why = running(s) ? undefined : startRefusal(s, ref, isAlive);
      if (why) throw new UsageError(why);
    }
    // start -a: output only, as docker start -a; signals go to the first process unless it has a tty.
    const attachOptions = (s: State) => ({ keys: parseDetachKeys(DEFAULT_DETACH_KEYS), stdin: false, proxy: !(s.detached?.tty ?? false) });
    for (const { ref, s } of found) {
      if (running(s)) {
        if (attach) return attachTo(root, ref, s, attachOptions(s));
        writeOut(`${ref}\n`);
        continue;
      }
      const started = await startAgain(root, ref, s, attach);
      if (typeof started === "number") return started;
      if (!attach) {
        started.release();
        writeOut(`${ref}\n`);
        continue;
      }
      try {
        // As run -it's client: until this terminal is set up, this process going (a Ctrl-C while it
        // starts) ends the container, which then stays exited.
        return await attachTo(root, ref, mustFind(root, s.id), { ...attachOptions(s), foreground: true });
      } finally {
        started.release();
      }
    }
    // The whole bundle's start cache: an OCI container's start runs in the engine's bundle.
    saveCodeCache("start");
    return 0;
  },
});

/**
 * `corerun restart`, as docker restart: each detached container stopped as `corerun stop` stops
 * it (its --stop-signal, SIGKILL after -t or its --stop-timeout), then started again as `corerun
 * start` starts an exited one; one that had exited is only started.
 */
export const restart = defineTool({
  name: "corerun restart",
  description: "Stop detached containers (as corerun stop) and start them again (as corerun start).",
  usage: "[options] NAME|ID...",
  args: { ...rootArg, ...timeArg },
  tail: "command",
  examples: ["sudo corerun restart web", "sudo corerun restart -t 2 web db"],
  async run(ctx) {
    const root = stateRoot(ctx.values.root?.at(-1));
    if (!ctx.tail.length) throw new UsageError("name the containers to restart; see corerun ps -a");
    const time = graceOption(ctx.values.time?.at(-1));
    const each = eachNamed(root, ctx.tail, (s, ref) =>
      s.oci ? `container ${ref} is an OCI container: its engine restarts it`
        : !s.detached ? `container ${ref} runs in the foreground of its corerun: only a detached container (run -d) can be started again`
          // Its monitor removes it at the stop.
          : s.detached.rm ? `container ${ref} was run with --rm: a stop removes it, so it cannot be started again; stop it and run it anew`
            : undefined);
    // Each on its own: one that fails to start again leaves the others to go on, as Docker's.
    for (const { ref, state } of each.found) {
      try {
        await stopContainers(root, [state], time);
        const now = await exitSettled(root, mustFind(root, state.id, true));
        const why = startRefusal(now, ref, isAlive);
        if (why) throw new UsageError(why);
        const started = await startAgain(root, ref, now, false);
        if (typeof started === "number") throw new UsageError(`container ${ref} did not start again (status ${started}); see corerun logs ${ref}`);
        started.release();
        writeOut(`${ref}\n`);
      } catch (err) {
        each.fail(err);
      }
    }
    return each.report();
  },
});
