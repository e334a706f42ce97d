import { SyscallError } from "@corerun/syscall";

/** The exit-code table shared by every tool; Docker and Podman users know it. */
export const EXIT_RUNTIME = 125;
export const EXIT_CANNOT_EXECUTE = 126;
export const EXIT_NOT_FOUND = 127;

/** Bad input: the message names the input and the fix. Exit status 125. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** The command cannot be run: 126 (not executable) or 127 (not found). */
export class CommandError extends Error {
  override name = "CommandError";
  constructor(message: string, readonly exitCode: typeof EXIT_CANNOT_EXECUTE | typeof EXIT_NOT_FOUND) {
    super(message);
  }
}

/** How a process ended, as waitid or child_process report it. */
export interface ProcessEnd {
  exitCode?: number | null | undefined;
  signal?: number | NodeJS.Signals | null | undefined;
}

const SIGNAL_NUMBERS: Record<string, number> = {
  SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGILL: 4, SIGTRAP: 5, SIGABRT: 6, SIGBUS: 7, SIGFPE: 8,
  SIGKILL: 9, SIGUSR1: 10, SIGSEGV: 11, SIGUSR2: 12, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15,
  SIGSTKFLT: 16, SIGCHLD: 17, SIGCONT: 18, SIGSTOP: 19, SIGTSTP: 20, SIGTTIN: 21, SIGTTOU: 22,
  SIGURG: 23, SIGXCPU: 24, SIGXFSZ: 25, SIGVTALRM: 26, SIGPROF: 27, SIGWINCH: 28, SIGIO: 29,
  SIGPWR: 30, SIGSYS: 31,
};

/** glibc's real-time signals: the kernel's 32 and 33 are its own (threads, cancellation). */
const SIGRTMIN = 34;
const SIGRTMAX = 64;

/** A signal's name: SIGTERM, SIGRTMIN+3 as Docker writes real-time ones. */
export function signalName(n: number): string {
  const named = Object.keys(SIGNAL_NUMBERS).find((name) => SIGNAL_NUMBERS[name] === n);
  if (named) return named;
  if (n === SIGRTMIN) return "SIGRTMIN";
  if (n === SIGRTMAX) return "SIGRTMAX";
  if (n > SIGRTMIN && n < SIGRTMAX) return n - SIGRTMIN <= (SIGRTMAX - SIGRTMIN) / 2 ? `SIGRTMIN+${n - SIGRTMIN}` : `SIGRTMAX-${SIGRTMAX - n}`;
  return String(n);
}

/** A signal by number or name: SIGTERM, and the real-time SIGRTMIN, SIGRTMIN+N, SIGRTMAX-N, SIGRTMAX. */
export function signalNumber(sig: number | string): number {
  if (typeof sig === "number") return sig;
  const rt = /^SIGRT(MIN|MAX)(?:([+-])(\d+))?$/.exec(sig);
  if (rt) {
    const n = (rt[1] === "MIN" ? SIGRTMIN : SIGRTMAX) + (rt[2] === "+" ? 1 : -1) * Number(rt[3] ?? 0);
    if ((rt[1] === "MIN" && rt[2] === "-") || (rt[1] === "MAX" && rt[2] === "+") || n < SIGRTMIN || n > SIGRTMAX) throw new UsageError(`unknown signal ${sig}: real-time signals are SIGRTMIN to SIGRTMAX (${SIGRTMIN}-${SIGRTMAX})`);
    return n;
  }
  const n = SIGNAL_NUMBERS[sig];
  if (n === undefined) throw new UsageError(`unknown signal ${sig}`);
  return n;
}

/** The command's own status, or 128+N when it died of signal N. */
export function exitCodeOf(end: ProcessEnd): number {
  if (end.signal !== null && end.signal !== undefined) return 128 + signalNumber(end.signal);
  if (end.exitCode !== null && end.exitCode !== undefined) return end.exitCode;
  return EXIT_RUNTIME;
}

/** The status a tool exits with when it fails with `err`. */
export function exitCodeForError(err: unknown): number {
  // CommandError, and errors another tool reported as data, carry their own status.
  const carried = (err as { exitCode?: unknown } | null)?.exitCode;
  if (typeof carried === "number" && carried >= 1 && carried <= 255) return carried;
  if (err instanceof SyscallError && err.syscall === "execve") {
    return err.code === "ENOENT" ? EXIT_NOT_FOUND : EXIT_CANNOT_EXECUTE;
  }
  return EXIT_RUNTIME;
}

/** One line: the message and each cause's message, joined. */
export function errorLine(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  while (e !== undefined && e !== null && parts.length < 8) {
    parts.push(e instanceof Error ? e.message : String(e));
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join(": ");
}
