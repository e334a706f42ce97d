/**
 * corerun-exec --oci CONFIG: the last step of an OCI container's first process, taken from the
 * bundle's config.json (the copy `corerun create` keeps): the process (args, env, cwd, user,
 * capabilities, rlimits, no_new_privs), hostname, domainname, sysctls, masked and read-only
 * paths. Applied in runc's order, inside the container after pivot_root.
 */
import { closeSync, openSync, readFileSync, statSync } from "node:fs";
import { UsageError } from "@corerun/cli";
import { hookArgv, parseSpecText, planCapabilities, type CapabilityPlan, type Spec } from "@corerun/oci";
import { maskPaths, readonlyPaths } from "@corerun/rootfs";
import { PR_CAPBSET_DROP, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, PR_SET_KEEPCAPS, PR_SET_NO_NEW_PRIVS, RLIMIT_NUMBERS, runContainerProgram, takeTerminal, type Syscall, type WaitResult } from "@corerun/syscall";
import { setGroups, writeSysctls } from "./steps.ts";

export interface OciProcess {
  spec: Spec;
  caps: CapabilityPlan;
}

/**
 * Checks the config, read before ready (its path is the host's, out of reach once the root has
 * moved), after it: while corerun-mount pivots and go is awaited, off the start's path. corerun
 * create has checked the same file before it started anything; a bad config given by hand is
 * reported by this process, which then exits, before or as go comes.
 */
export function loadOciProcess(configPath: string, text: string): OciProcess {
  const spec = parseSpecText(text, configPath);
  if (!spec.process?.args?.length) throw new UsageError(`${configPath}: process.args is empty; name the program to run`);
  return { spec, caps: planCapabilities(spec) };
}

/**
 * Sysctls first, while /proc/sys is still writable; then the read-only and masked paths, from
 * inside, where /proc is the container's own.
 */
export function applyKernelSettings(sys: Syscall, spec: Spec): void {
  writeSysctls(Object.entries(spec.linux?.sysctl ?? {}).map(([key, value]) => ({ key, value })), "linux.sysctl");
  readonlyPaths(sys, "/", spec.linux?.readonlyPaths ?? []);
  maskPaths(sys, "/", spec.linux?.maskedPaths ?? []);
}

/** The environment exactly as config.json gives it, plus HOME from /etc/passwd when missing (as runc). */
export function ociEnv(spec: Spec): string[] {
  const env = [...(spec.process!.env ?? [])];
  if (!env.some((e) => e.startsWith("HOME="))) env.push(`HOME=${homeOf(spec.process!.user.uid)}`);
  return env;
}

function homeOf(uid: number): string {
  try {
    for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
      const f = line.split(":");
      if (f.length >= 6 && Number(f[2]) === uid && f[2] !== "") return f[5] || "/";
    }
  } catch {
    // no /etc/passwd in the image
  }
  return "/";
}

export function applyRlimits(sys: Syscall, spec: Spec): void {
  for (const r of spec.process!.rlimits ?? []) {
    if (r.soft > r.hard) throw new Error(`process.rlimits ${r.type}: soft ${r.soft} is above hard ${r.hard}`);
    try {
      sys.setrlimit(RLIMIT_NUMBERS[r.type]!, r.soft, r.hard);
    } catch (err) {
      throw new Error(`process.rlimits ${r.type} ${r.soft}:${r.hard}: raising a hard limit above the runtime's own needs CAP_SYS_RESOURCE (podman: --ulimit)`, { cause: err });
    }
  }
}

/**
 * runc's order: shrink the bounding set, keep the permitted set across the uid change, change
 * groups, gid and uid, then set the effective, permitted and inheritable sets and raise the
 * ambient ones. The kernel clears the capabilities of a process whose uids all leave 0 unless
 * KEEPCAPS is set.
 */
export function applyUserAndCapabilities(sys: Syscall, spec: Spec, caps: CapabilityPlan, lastCap: number): void {
  const user = spec.process!.user;
  for (let cap = 0; cap <= lastCap; cap++) if (!caps.bounding.includes(cap)) sys.prctl(PR_CAPBSET_DROP, cap);
  sys.prctl(PR_SET_KEEPCAPS, 1);
  setGroups(sys, user.additionalGids ?? []);
  sys.setresgid(user.gid);
  sys.setresuid(user.uid);
  sys.prctl(PR_SET_KEEPCAPS, 0);
  sys.capset({ effective: caps.effective, permitted: caps.permitted, inheritable: caps.inheritable });
  // The kernel raises an ambient capability only if it is permitted and inheritable; bundles
  // (runc spec's own template) list ambient ones without inheritable, which runc and crun then
  // leave out too. For uid 0 it changes nothing: exec gives root its bounding set.
  for (const cap of caps.ambient) if (caps.inheritable.includes(cap) && caps.permitted.includes(cap)) sys.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap);
  if (user.umask !== undefined) process.umask(user.umask);
  if (spec.process!.noNewPrivileges) sys.prctl(PR_SET_NO_NEW_PRIVS, 1);
}

/**
 * process.terminal: the pty peer corerun-mount bound on /dev/console as the controlling terminal
 * and stdio, opened by its own name (/dev/pts/N, from its device number) as runc does, so that
 * tty(1) names it.
 */
export function takeConsole(sys: Syscall): void {
  const rdev = statSync("/dev/console").rdev;
  // Unix98 ptys: majors 136-143, the index spread over them 256 at a time.
  const major = Number((BigInt(rdev) >> 8n) & 0xfffn);
  const minor = Number((BigInt(rdev) & 0xffn) | ((BigInt(rdev) >> 12n) & ~0xffn));
  takeTerminalAt(sys, major >= 136 && major <= 143 ? `/dev/pts/${(major - 136) * 256 + minor}` : "/dev/console");
}

/**
 * A terminal of the container's devpts as the controlling terminal (in a session of its own, so
 * that job control works) and stdio: process.terminal's console, or the pty `corerun run -t`
 * names in go.
 */
export function takeTerminalAt(sys: Syscall, path: string): void {
  sys.setsid();
  const fd = openSync(path, "r+");
  try {
    takeTerminal(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * startContainer hooks: inside the container (their paths are the container's), after start and
 * before the program, with the state `corerun start` sent along with "go".
 */
export function runStartContainerHooks(sys: Syscall, spec: Spec, state: unknown): void {
  for (const [i, h] of (spec.hooks?.startContainer ?? []).entries()) {
    let r: WaitResult;
    try {
      // Through corerun-exe: the hook's path is the container's (CVE-2019-5736; see execStub).
      r = runContainerProgram(sys, h.path, hookArgv(h), h.env ?? [], JSON.stringify(state ?? {}), h.timeout ? h.timeout * 1000 : undefined);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ETIMEDOUT") throw new Error(`hooks.startContainer[${i}] ${h.path} was killed (SIGKILL; timeout ${h.timeout} s)`);
      throw err;
    }
    if (r.exitCode !== 0) throw new Error(`hooks.startContainer[${i}] ${h.path} ${r.signal ? `was killed (signal ${r.signal})` : `exited with status ${r.exitCode}`}`);
  }
}
