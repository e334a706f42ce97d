import { spawn, type ChildProcess } from "node:child_process";
import { DEFAULT_PATH, findCommand } from "@corerun/rootfs";
import type { ConsolaInstance } from "consola";
import { CommandError, EXIT_CANNOT_EXECUTE, EXIT_NOT_FOUND, exitCodeOf, FORWARDED_SIGNALS } from "@corerun/cli";
import { cgroupManager, describeLimits, joinCommand, oomReport, type CgroupManager, type Limits } from "@corerun/cgroup";
import type { Place, RunOptions } from "./args.ts";

export const SUBCOMMANDS = ["create", "add", "stats", "freeze", "thaw", "kill", "rm", "ls", "run"];

export function openCgroup(place: Place): CgroupManager {
  return cgroupManager({ name: place.name, parent: place.parent, root: place.root, everyHierarchy: true });
}

export function mustExist(m: CgroupManager): void {
  if (!m.exists()) throw new Error(`no cgroup ${m.name} under ${m.parent} in ${m.layout.root}`);
}


export function createCgroup(m: CgroupManager, limits: Limits, log: ConsolaInstance): Record<string, string> {
  const paths = m.create(limits);
  log.info(`created cgroup ${m.name} (${describeLimits(limits)}) on a ${m.layout.setup} host: ${m.dirs().join(" ")}`);
  return paths;
}

/** Kills what is left, then removes the cgroup from every hierarchy. */
export function destroyCgroup(m: CgroupManager, log: ConsolaInstance): void {
  const left = m.pids();
  if (left.length) {
    log.info(`killing ${left.length} process(es) left in cgroup ${m.name}: ${left.join(" ")}`);
    m.killAll();
  }
  m.remove();
  log.info(`removed cgroup ${m.name}`);
}

/**
 * Looks the command up the way the shell step will (PATH, or the path itself when it has a slash),
 * so that a typo fails with 127 before a cgroup is created.
 */
export function checkCommand(command: string, env: NodeJS.ProcessEnv = process.env): void {
  try {
    findCommand("/", command, env.PATH ?? DEFAULT_PATH);
  } catch (err) {
    if (!(err instanceof CommandError)) throw err;
    if (err.exitCode === EXIT_CANNOT_EXECUTE) throw new CommandError(`cannot run ${command}: permission denied or not a file`, EXIT_CANNOT_EXECUTE);
    const hint = command.includes("/") ? "" : `; to use a subcommand, give one of ${SUBCOMMANDS.join(", ")}`;
    throw new CommandError(`cannot run ${command}: command not found${hint}`, EXIT_NOT_FOUND);
  }
}

/**
 * Starts the command through the shell step of joinCommand: the shell writes "0" to cgroup.procs
 * in each directory and execs the command, so it is in the cgroup from its first instruction and no
 * Node code runs under the limits.
 */
export function startInCgroup(m: CgroupManager, command: string[]): Promise<ChildProcess> {
  const [shell, ...args] = joinCommand(m.dirs(), command);
  const child = spawn(shell!, args, { stdio: "inherit" });
  return new Promise((resolve, reject) => {
    child.once("spawn", () => resolve(child));
    child.once("error", (err: NodeJS.ErrnoException) => reject(new CommandError(`cannot run ${shell}: ${err.code ?? err.message}`, err.code === "ENOENT" ? EXIT_NOT_FOUND : EXIT_CANNOT_EXECUTE)));
  });
}

/**
 * Waits for the command, forwarding signals to it; returns its status (128+N for signal N). The
 * handlers stay until the process exits, so a signal that arrives during cleanup does not end
 * corerun-cgroup before the cgroup is removed.
 */
export function waitCommand(child: ChildProcess): Promise<number> {
  const forward = (sig: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
  };
  for (const sig of FORWARDED_SIGNALS) process.on(sig, forward);
  return new Promise((resolve) => {
    child.once("exit", (exitCode, signal) => resolve(exitCodeOf({ exitCode, signal })));
  });
}

/** One line on stderr when the kernel's OOM killer acted in the cgroup. */
export function reportOom(m: CgroupManager, limits: Limits, log: ConsolaInstance): void {
  const line = oomReport(m, limits.memory, `cgroup ${m.name}`);
  if (line) log.error(line);
}

/** run: create, start the command inside, wait, report OOM kills, kill what is left, remove. */
export async function runInCgroup(opts: RunOptions, log: ConsolaInstance): Promise<number> {
  checkCommand(opts.command[0]!);
  const m = openCgroup(opts);
  createCgroup(m, opts.limits, log);
  let code: number;
  try {
    const child = await startInCgroup(m, opts.command);
    code = await waitCommand(child);
    reportOom(m, opts.limits, log);
  } finally {
    destroyCgroup(m, log);
  }
  return code;
}
