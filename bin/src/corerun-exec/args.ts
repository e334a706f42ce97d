import { readFileSync, readlinkSync } from "node:fs";
import { fdCount, UsageError, type ToolContext } from "@corerun/cli";
import { containerEnv as sharedEnv } from "@corerun/rootfs";
import { parseSysctl, type Sysctl } from "@corerun/oci";
import { capabilitySet, checkGroupName, checkHostname, checkWorkdir, nsPids, parseEnvVars, parseOomScoreAdj, sameNamespace } from "@corerun/state";
import { FD_CLOEXEC, linuxSyscall as sys, SECCOMP_FILTER_FLAGS } from "@corerun/syscall";
import type { ArgsDef } from "citty";

export const args = {
  hostname: { type: "string", valueHint: "NAME", description: "set the hostname (needs a UTS namespace)" },
  domainname: { type: "string", valueHint: "NAME", description: "set the NIS domain name (needs a UTS namespace)" },
  env: { type: "string", alias: "e", valueHint: "KEY=VALUE", description: "set an environment variable (repeatable); KEY alone takes corerun-exec's own value (none when it has none)" },
  workdir: { type: "string", alias: "w", valueHint: "DIR", description: "working directory inside the container, created if missing (default /)" },
  "mount-proc": { type: "boolean", description: "mount a new /proc and apply Docker's /proc masks (needs its own mount namespace; shows its PID namespace, the host's with --pid host)" },
  cgroup: { type: "string", valueHint: "DIR", description: "join the cgroup DIR right before the exec (repeatable: one per hierarchy); opened at start, so it works after pivot_root" },
  "cgroup-fd": { type: "string", valueHint: "FD", description: "join a cgroup through an inherited fd of its cgroup.procs, opened by the caller (repeatable)" },
  cgroupns: { type: "boolean", description: "after joining, create a cgroup namespace, so the command sees its cgroup as the root" },
  "mount-cgroup": { type: "boolean", description: "with --cgroupns: mount the host's cgroup hierarchies at /sys/fs/cgroup, read-only, showing the command's own cgroup" },
  "cap-add": { type: "string", valueHint: "CAP", description: "keep a capability beyond Docker's default set (repeatable; ALL keeps every one)" },
  "cap-drop": { type: "string", valueHint: "CAP", description: "drop a capability of Docker's default set (repeatable; ALL drops every one)" },
  "lo-up": { type: "boolean", description: "bring the loopback interface of its network namespace up" },
  user: { type: "string", alias: "u", valueHint: "USER[:GROUP]", description: "run the command as this user: a name or uid, and a group name or gid (names from the container's /etc/passwd and /etc/group)" },
  "group-add": { type: "string", valueHint: "GROUP", description: "a supplementary group beyond the user's (repeatable): a group of the container's /etc/group, or a gid" },
  sysctl: { type: "string", valueHint: "KEY=VALUE", description: "set a sysctl of a namespace of its own (repeatable): net.* (network), kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.* (IPC), kernel.domainname (UTS); after go" },
  "oom-score-adj": { type: "string", valueHint: "N", description: "the command's OOM score adjustment, -1000 (never killed) to 1000 (killed first); its children inherit it" },
  "sync-dir": { type: "string", valueHint: "DIR", description: "say ready on DIR/ready once loaded, then wait for go on DIR/go (FIFOs)" },
  oci: { type: "string", valueHint: "CONFIG", description: "take the process, hostname, sysctls and masked paths from an OCI config.json (no CMD then)" },
  keyring: { type: "string", valueHint: "NAME", description: "join a new session keyring NAME, so the container does not share its caller's keys" },
  "preserve-fds": { type: "string", valueHint: "N", description: "pass the inherited fds 3 to 3+N-1 on to the command (every other fd but 0-2 is closed)" },
  "listen-fds": { type: "string", valueHint: "N", description: "with --oci: the first N preserved fds are socket-activation sockets: LISTEN_FDS=N and LISTEN_PID (its own pid, 1 in a PID namespace of its own) join the environment" },
  seccomp: { type: "string", valueHint: "FILE", description: "install this compiled seccomp BPF program (struct sock_filter[]) right before the exec; read at start" },
  "seccomp-flag": { type: "string", valueHint: "FLAG", description: "a seccomp(2) filter flag: SECCOMP_FILTER_FLAG_TSYNC, _LOG or _SPEC_ALLOW (repeatable)" },
  "no-new-privs": { type: "boolean", description: "set no_new_privs: setuid and file capabilities grant nothing to the command" },
  unmasked: { type: "boolean", description: "with --mount-proc: no masked or read-only paths in /proc (Docker's --privileged)" },
  "report-fd": { type: "string", valueHint: "FD", description: "an inherited pipe's write end: a failure after go is written on it as {\"t\":\"error\",...}, a failed exec as corerun-exe's {step, errno}; it closes as the command is exec'd" },
} as const satisfies ArgsDef;

export interface ExecOptions {
  hostname: string | undefined;
  domainname: string | undefined;
  env: string[];
  workdir: string;
  mountProc: boolean;
  cgroups: string[];
  cgroupFds: number[];
  cgroupns: boolean;
  mountCgroup: boolean;
  syncDir: string | undefined;
  loUp: boolean;
  /** A compiled seccomp program, read before the root moves, and its seccomp(2) flags. */
  seccomp: { program: Buffer; flags: number } | undefined;
  noNewPrivs: boolean;
  unmasked: boolean;
  /** --user as given; resolved against the container's /etc files once its root is in place. */
  user: string | undefined;
  /** --group-add as given: names are resolved with --user. */
  groupAdd: string[];
  /** --sysctl, checked: each for a namespace this process does not share with its parent. */
  sysctls: Sysctl[];
  oomScoreAdj: number | undefined;
  /** The capabilities the command keeps (its bounding set). */
  capabilities: number[];
  command: string[];
  /** An OCI config.json to take the process from. */
  oci: string | undefined;
  keyring: string | undefined;
  /** Inherited fds 3..3+N-1 passed on to the command. */
  preserveFds: number;
  /** Of those, the socket-activation ones (LISTEN_FDS). */
  listenFds: number;
  /** --report-fd: where a failure after go, or of the exec, is written for corerun run -d. */
  reportFd: number | undefined;
}

/** An inherited fd that must be open on a cgroup.procs file: writing elsewhere would be harmful. */
function cgroupFd(value: string): number {
  let target = "";
  try {
    if (/^\d+$/.test(value) && Number(value) >= 3) target = readlinkSync(`/proc/self/fd/${value}`);
  } catch {
    // not open
  }
  if (!target.endsWith("/cgroup.procs")) {
    throw new UsageError(`--cgroup-fd ${value}: not an inherited fd open on a cgroup.procs file (pass it with, e.g., 3>DIR/cgroup.procs and corerun-ns --preserve-fds)`);
  }
  return Number(value);
}

/** --seccomp FILE: a whole number of 8-byte BPF instructions, read now (the path is the host's). */
function seccompOption(file: string | undefined, flagNames: readonly string[]): ExecOptions["seccomp"] {
  if (file === undefined) {
    if (flagNames.length) throw new UsageError("--seccomp-flag needs --seccomp FILE");
    return undefined;
  }
  let program: Buffer;
  try {
    program = readFileSync(file);
  } catch (err) {
    throw new UsageError(`--seccomp ${file}: cannot be read (${(err as NodeJS.ErrnoException).code}); give a compiled BPF program`);
  }
  if (program.length === 0 || program.length % 8 !== 0 || program.length / 8 > 4096) {
    throw new UsageError(`--seccomp ${file}: ${program.length} bytes is not a BPF program of 1 to 4096 8-byte instructions (seccomp_export_bpf's output)`);
  }
  let flags = 0;
  for (const name of flagNames) {
    const bit = SECCOMP_FILTER_FLAGS[name] ?? SECCOMP_FILTER_FLAGS[`SECCOMP_FILTER_FLAG_${name}`];
    if (bit === undefined) throw new UsageError(`--seccomp-flag ${name}: unknown; use ${Object.keys(SECCOMP_FILTER_FLAGS).join(", ")}`);
    flags |= bit;
  }
  return { program, flags };
}

/**
 * The parent's pid as the /proc mounted here numbers it: getppid() says 0 when the parent is
 * outside this process's PID namespace (corerun-ns made one), while /proc is still the host's.
 */
function parentPid(): number {
  if (process.ppid !== 0) return process.ppid;
  const stat = readFileSync(`/proc/${nsPids("self")[0]}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

/**
 * Whether corerun-exec is in its parent's namespace of this type. Where the parent's namespace
 * file cannot be read (EACCES) the answer is `unreachable` if given, else a refusal.
 */
function sharesParent(type: "mnt" | "uts" | "net" | "ipc", option: string, what: string, unreachable?: boolean): boolean {
  try {
    return sameNamespace(type, "self", parentPid());
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EACCES" && unreachable !== undefined) return unreachable;
    throw new UsageError(`${option}: cannot compare corerun-exec's ${what} namespace with its parent's (${code}); start it with corerun-ns`);
  }
}

/**
 * Sysctls are written through /proc/sys, whose files are the writer's namespaces': one of a
 * namespace corerun-exec shares with its parent (the host's, for corerun) would change it for the
 * parent too. (An OCI config's are checked by corerun create, against corerun's own namespaces.)
 */
function refuseSharedSysctls(sysctls: readonly Sysctl[], option: string): void {
  const nsFile = { network: "net", ipc: "ipc", uts: "uts" } as const;
  for (const { key, value, ns } of sysctls) {
    const what = ns === "network" ? "network" : ns.toUpperCase();
    if (sharesParent(nsFile[ns], option, what, false)) {
      throw new UsageError(`${option} ${key}=${value}: corerun-exec shares its parent's ${what} namespace, whose setting this would change; start it in a new one (corerun-ns --ns ${nsFile[ns]})`);
    }
  }
}

export function parseExecOptions(ctx: Pick<ToolContext, "values" | "flags" | "tail">, hostEnv = process.env): ExecOptions {
  const hostname = checkHostname(ctx.values.hostname?.at(-1));
  const env = parseEnvVars(ctx.values.env ?? [], hostEnv);
  const workdir = checkWorkdir(ctx.values.workdir?.at(-1));
  const oci = ctx.values.oci?.at(-1);
  if (oci !== undefined && ctx.tail.length) throw new UsageError("--oci takes the command from config.json; give no CMD");
  const fromConfig = ["env", "workdir", "hostname", "domainname", "cap-add", "cap-drop", "user", "group-add", "sysctl", "oom-score-adj"].filter((o) => ctx.values[o]?.length);
  if (oci !== undefined && fromConfig.length) {
    throw new UsageError(`--oci takes the process (env, cwd, user, groups, capabilities, oomScoreAdj), hostname and sysctls from config.json; drop ${fromConfig.map((o) => `--${o}`).join(", ")}`);
  }
  if (oci === undefined && ctx.tail.length === 0) throw new UsageError("no command given; usage: corerun-exec [options] -- CMD [ARGS...]");
  // A new /proc over the host's would hide the host's processes from everyone in this namespace.
  // Mounted outside a cgroup namespace, the hierarchies would show the host's whole cgroup tree.
  if (ctx.flags["mount-cgroup"] && !ctx.flags.cgroupns) throw new UsageError("--mount-cgroup needs --cgroupns");
  // Mounted in its starter's mount namespace, a new /proc would cover that /proc for every
  // process there. In a PID namespace of its own (pid 1) or joined (NSpid, read through the /proc
  // still mounted here, has more than one level), corerun-ns made the mount namespace with it;
  // in the host's (--pid host), the mount namespace must differ from its parent's.
  const ownPid = process.pid === 1 || nsPids("self").length > 1;
  if (ctx.flags["mount-proc"] && !ownPid && sharesParent("mnt", "--mount-proc", "mount")) {
    throw new UsageError("--mount-proc needs corerun-exec in a mount namespace of its own (start it with corerun-ns)");
  }
  // sethostname in its starter's UTS namespace would rename the host (or the joined container).
  // In a user namespace of its own, the parent's /proc/PID/ns is out of reach (EACCES); there the
  // kernel refuses sethostname in a UTS namespace that namespace does not own (the host's) anyway.
  const domainname = checkHostname(ctx.values.domainname?.at(-1), "--domainname");
  for (const [option, name] of [["--hostname", hostname], ["--domainname", domainname]] as const) {
    if (name !== undefined && sharesParent("uts", option, "UTS", false)) {
      throw new UsageError(`${option} ${name}: corerun-exec shares its parent's UTS namespace, whose ${option.slice(2)} this would change; start it in a new one (corerun-ns --ns uts)`);
    }
  }
  const sysctls = (ctx.values.sysctl ?? []).map((t) => parseSysctl(t));
  refuseSharedSysctls(sysctls, "--sysctl");
  const groupAdd = (ctx.values["group-add"] ?? []).map((g) => checkGroupName(g, "--group-add"));
  return {
    hostname,
    domainname,
    env,
    groupAdd,
    sysctls,
    oomScoreAdj: parseOomScoreAdj(ctx.values["oom-score-adj"]?.at(-1)),
    workdir,
    mountProc: ctx.flags["mount-proc"] ?? false,
    cgroups: ctx.values.cgroup ?? [],
    cgroupFds: (ctx.values["cgroup-fd"] ?? []).map(cgroupFd),
    cgroupns: ctx.flags.cgroupns ?? false,
    mountCgroup: ctx.flags["mount-cgroup"] ?? false,
    syncDir: ctx.values["sync-dir"]?.at(-1),
    loUp: ctx.flags["lo-up"] ?? false,
    user: ctx.values.user?.at(-1),
    capabilities: capabilitySet(ctx.values["cap-add"] ?? [], ctx.values["cap-drop"] ?? []),
    seccomp: seccompOption(ctx.values.seccomp?.at(-1), ctx.values["seccomp-flag"] ?? []),
    noNewPrivs: ctx.flags["no-new-privs"] ?? false,
    unmasked: ctx.flags.unmasked ?? false,
    command: ctx.tail,
    oci,
    keyring: ctx.values.keyring?.at(-1),
    preserveFds: fdCount(ctx.values["preserve-fds"]?.at(-1), "--preserve-fds"),
    listenFds: fdCount(ctx.values["listen-fds"]?.at(-1), "--listen-fds"),
    reportFd: reportFd(ctx.values["report-fd"]?.at(-1)),
  };
}

/** --report-fd: an inherited fd, made close-on-exec here (corerun-exe's exec passes it on, to its own exec only). */
function reportFd(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const fd = /^\d+$/.test(value) ? Number(value) : NaN;
  try {
    if (!(fd > 2)) throw new Error("not a number above 2");
    sys.setFdFlags(fd, FD_CLOEXEC);
  } catch {
    throw new UsageError(`--report-fd ${value}: not an inherited fd above 2 (pass a pipe's write end, e.g. 3>&1 with --report-fd 3)`);
  }
  return fd;
}

/** The container's environment (see @corerun/rootfs containerEnv). */
export function containerEnv(opts: ExecOptions, hostname: string, home = "/root"): string[] {
  return sharedEnv(opts.env, hostname, home);
}
