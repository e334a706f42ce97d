/**
 * `corerun run --ulimit NAME=SOFT[:HARD]`: resource limits of the container's processes, in
 * Docker's names and spelling. Set on the waiting first process with prlimit(2) right before
 * "go", inherited by the command, and recorded so that `corerun exec` gives them too.
 */
import { UsageError } from "@corerun/cli";
import { linuxSyscall as sys, RLIMIT_NUMBERS } from "@corerun/syscall";

export interface Ulimit {
  /** The runtime-spec's name: RLIMIT_NOFILE. */
  type: string;
  soft: number;
  hard: number;
}

/** RLIM_INFINITY, as prlimit's wrapper takes it (any value past 2^53). */
export const UNLIMITED = 2 ** 64;

const NAMES = ["as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack"];

function limitValue(text: string, opt: string): number {
  if (text === "unlimited" || text === "-1") return UNLIMITED;
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) throw new UsageError(`--ulimit ${opt}: ${text} is not a limit; give a whole number, -1 or unlimited`);
  return Number(text);
}

/** Every --ulimit, checked; a name given twice keeps its last value, as in Docker. */
export function parseUlimits(values: readonly string[]): Ulimit[] {
  const byType = new Map<string, Ulimit>();
  for (const opt of values) {
    const m = /^([a-z]+)=([^:]+)(?::([^:]+))?$/.exec(opt);
    if (!m) throw new UsageError(`--ulimit ${opt}: give NAME=SOFT[:HARD], such as nofile=1024:2048`);
    const [, name, softText, hardText] = m;
    if (!NAMES.includes(name!)) throw new UsageError(`--ulimit ${opt}: unknown limit "${name}"; use one of ${NAMES.join(", ")}`);
    const soft = limitValue(softText!, opt);
    const hard = hardText === undefined ? soft : limitValue(hardText, opt);
    if (soft > hard) throw new UsageError(`--ulimit ${opt}: the soft limit is above the hard one; give SOFT <= HARD`);
    byType.set(name!, { type: `RLIMIT_${name!.toUpperCase()}`, soft, hard });
  }
  return [...byType.values()];
}

/** Sets them on a process (the waiting first process of a container) from outside. */
export function applyUlimits(pid: number, limits: readonly Ulimit[]): void {
  for (const l of limits) {
    try {
      sys.setrlimit(RLIMIT_NUMBERS[l.type]!, l.soft, l.hard, pid);
    } catch (err) {
      if ((err as { code?: string }).code !== "EPERM") throw err;
      const name = l.type.slice(7).toLowerCase();
      throw new UsageError(`--ulimit ${name}: prlimit: EPERM: raising a hard limit above corerun's own needs CAP_SYS_RESOURCE, which this host's bounding set lacks; give at most the current hard limit (ulimit -H${name === "nofile" ? "n" : name === "nproc" ? "u" : "a"})`);
    }
  }
}
