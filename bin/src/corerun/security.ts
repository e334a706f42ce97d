import { readFileSync } from "node:fs";
import { buildId, defineTool, UsageError, writeOut, type ToolContext } from "@corerun/cli";
import { defaultProfile, DOCKER_ARCH, parseProfile, prepareSeccompProgram, prepareSeccompProgramById, profileToOci, storeSeccompProgram, type CachedProgram, type DockerProfile } from "@corerun/seccomp";
import { capabilitySet, stateRoot } from "@corerun/state";
import { CAPABILITIES, uname } from "@corerun/syscall";
import type { ArgsDef } from "citty";

const runCapArgs = {
  "cap-add": { type: "string", valueHint: "CAP", description: "a capability beyond Docker's default set (repeatable; ALL for every one)" },
  "cap-drop": { type: "string", valueHint: "CAP", description: "a capability of Docker's default set to leave out (repeatable; ALL for every one)" },
} as const satisfies ArgsDef;

export const securityArgs = {
  "security-opt": { type: "string", valueHint: "OPT", description: "seccomp=unconfined|PROFILE.json, no-new-privileges[=true|false] (repeatable)" },
  privileged: { type: "boolean", description: "all capabilities, no seccomp filter, no /proc or /sys masks, a writable /sys and the host's devices in /dev" },
} as const satisfies ArgsDef;

export interface Security {
  privileged: boolean;
  noNewPrivs: boolean;
  /** The compiled filter (its place in the state root's cache) and its seccomp(2) flags; none when unconfined. */
  seccomp: { program: CachedProgram; flags: string[] } | undefined;
}

/** --security-opt values in Docker's spellings: KEY=VALUE, the older KEY:VALUE, or a bare flag. */
function splitOpt(opt: string): [string, string | undefined] {
  const m = /^([a-z-]+)(?:[=:](.*))?$/.exec(opt);
  return m ? [m[1]!, m[2]] : [opt, undefined];
}

/**
 * --security-opt and --privileged, checked and resolved before anything is created: a profile
 * is read, resolved for the container's capabilities (Docker's capability-conditional rules) and
 * compiled unless the state root's cache has it, so a bad profile is refused with exit 125
 * before anything is written.
 */
export function parseSecurity(ctx: Pick<ToolContext, "values" | "flags">, root: string): Security {
  const profileArg = seccompOpt(ctx);
  const noNewPrivs = noNewPrivsOpt(ctx);
  const privileged = ctx.flags.privileged ?? false;
  // As Docker: a privileged container gets every capability and no filter, unless a profile is named.
  if (profileArg === "unconfined" || (privileged && profileArg === undefined)) return { privileged, noNewPrivs, seccomp: undefined };
  const program = containerProgram(root, profileArg, privileged ? Object.values(CAPABILITIES) : capabilitySet(ctx.values["cap-add"] ?? [], ctx.values["cap-drop"] ?? []));
  return { privileged, noNewPrivs, seccomp: program };
}

function noNewPrivsOpt(ctx: Pick<ToolContext, "values">): boolean {
  let noNewPrivs = false;
  for (const opt of ctx.values["security-opt"] ?? []) {
    const [key, value] = splitOpt(opt);
    if (key !== "no-new-privileges") continue;
    if (value !== undefined && value !== "true" && value !== "false") throw new UsageError(`--security-opt ${opt}: use no-new-privileges, no-new-privileges=true or no-new-privileges=false`);
    noNewPrivs = value !== "false";
  }
  return noNewPrivs;
}

/** The last seccomp= value; every --security-opt is checked here. */
function seccompOpt(ctx: Pick<ToolContext, "values">): string | undefined {
  let profile: string | undefined;
  for (const opt of ctx.values["security-opt"] ?? []) {
    const [key, value] = splitOpt(opt);
    if (key === "no-new-privileges") continue;
    if (key !== "seccomp") throw new UsageError(`--security-opt ${opt}: not supported; corerun takes seccomp=unconfined|PROFILE.json and no-new-privileges[=true|false]`);
    if (!value) throw new UsageError(`--security-opt ${opt}: give seccomp=unconfined or seccomp=PROFILE.json`);
    profile = value;
  }
  return profile;
}

/** A profile (default: corerun's), resolved for a capability set and compiled unless cached. */
function containerProgram(root: string, profileArg: string | undefined, capabilities: readonly number[]): Security["seccomp"] {
  const source = profileArg ?? "corerun's default seccomp profile";
  let profile: DockerProfile;
  if (profileArg === undefined) profile = defaultProfile();
  else {
    let text: string;
    try {
      text = readFileSync(profileArg, "utf8");
    } catch (err) {
      throw new UsageError(`${profileArg}: cannot be read (${(err as NodeJS.ErrnoException).code}); give a seccomp profile file in Docker's format, or unconfined`);
    }
    profile = parseProfile(text, profileArg);
  }
  const names = Object.entries(CAPABILITIES).filter(([, n]) => capabilities.includes(n)).map(([name]) => `CAP_${name}`);
  const conditions = { capabilities: names, arch: DOCKER_ARCH[process.arch] ?? process.arch, kernel: uname().release };
  // The built-in profile is part of the build: its program is known by the build and conditions.
  const build = profileArg === undefined ? buildId() : undefined;
  if (build !== undefined) {
    const resolve = () => profileToOci(profile, conditions, source)!;
    return { program: prepareSeccompProgramById(root, { profile: "default", build, ...conditions }, resolve, source), flags: profile.flags ?? [] };
  }
  const oci = profileToOci(profile, conditions, source);
  return oci && { program: prepareSeccompProgram(root, oci, source), flags: oci.flags ?? [] };
}

/** corerun-exec's options for them; a newly compiled filter is stored in the cache first. */
export function securityExecArgs(s: Security): string[] {
  return [
    ...(s.privileged ? ["--unmasked"] : []),
    ...(s.noNewPrivs ? ["--no-new-privs"] : []),
    ...(s.seccomp ? ["--seccomp", storeSeccompProgram(s.seccomp.program), ...s.seccomp.flags.flatMap((f) => ["--seccomp-flag", f])] : []),
  ];
}

/** corerun-mount's options for them. */
export function securityMountArgs(s: Security): string[] {
  return s.privileged ? ["--unmasked", "--host-devices"] : [];
}

/**
 * `corerun seccomp`: the program corerun-exec --seccomp loads, for composing the tools by hand.
 * The same resolution and cache as corerun run's.
 */
export const seccompCommand = defineTool({
  name: "corerun seccomp",
  description: "Compile a seccomp profile for a capability set and print the path of the program (corerun-exec --seccomp FILE).",
  usage: "[options] [PROFILE.json]",
  args: {
    root: { type: "string", valueHint: "DIR", description: "state directory whose cache holds the program (default /run/corerun; env CORERUN_ROOT)" },
    "cap-add": runCapArgs["cap-add"],
    "cap-drop": runCapArgs["cap-drop"],
  },
  tail: "command",
  notes: ["PROFILE.json is in Docker's format; without it, corerun's default profile (Docker's). Its\ncapability-conditional rules follow Docker's default set changed by --cap-add and --cap-drop.\nThe program is stored once under ROOT/runtime/seccomp/ and its path printed. A profile's flags are\nnot part of the program: give them to corerun-exec as --seccomp-flag."],
  examples: ["prog=$(sudo corerun seccomp --cap-add SYS_PTRACE) && sudo corerun-ns -- corerun-exec --mount-proc --seccomp \"$prog\" -- /bin/sh"],
  run(ctx) {
    if (ctx.tail.length > 1) throw new UsageError("give at most one profile file; usage: corerun seccomp [options] [PROFILE.json]");
    const root = stateRoot(ctx.values.root?.at(-1));
    const program = containerProgram(root, ctx.tail[0], capabilitySet(ctx.values["cap-add"] ?? [], ctx.values["cap-drop"] ?? []));
    if (!program) throw new UsageError(`${ctx.tail[0]}: the profile is empty (no defaultAction, no rules): it means no filter`);
    writeOut(`${storeSeccompProgram(program.program)}\n`);
    return 0;
  },
});
