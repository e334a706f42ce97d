import { readFileSync } from "node:fs";
import { release } from "node:os";
import { UsageError, type ToolContext } from "@corerun/cli";
import { defaultProfile, DOCKER_ARCH, parseProfile, prepareSeccompProgram, profileToOci, storeSeccompProgram, type CachedProgram, type DockerProfile } from "@corerun/seccomp";
import { capabilitySet } from "@corerun/state";
import { CAPABILITIES } from "@corerun/syscall";
import type { ArgsDef } from "citty";

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
  const privileged = ctx.flags.privileged ?? false;
  let noNewPrivs = false;
  let profileArg: string | undefined;
  for (const opt of ctx.values["security-opt"] ?? []) {
    const [key, value] = splitOpt(opt);
    if (key === "no-new-privileges") {
      if (value !== undefined && value !== "true" && value !== "false") throw new UsageError(`--security-opt ${opt}: use no-new-privileges, no-new-privileges=true or no-new-privileges=false`);
      noNewPrivs = value !== "false";
    } else if (key === "seccomp") {
      if (!value) throw new UsageError(`--security-opt ${opt}: give seccomp=unconfined or seccomp=PROFILE.json`);
      profileArg = value;
    } else {
      throw new UsageError(`--security-opt ${opt}: not supported; corerun takes seccomp=unconfined|PROFILE.json and no-new-privileges[=true|false]`);
    }
  }
  // As Docker: a privileged container gets every capability and no filter, unless a profile is named.
  const capabilities = privileged ? Object.values(CAPABILITIES) : capabilitySet(ctx.values["cap-add"] ?? [], ctx.values["cap-drop"] ?? []);
  if (profileArg === "unconfined" || (privileged && profileArg === undefined)) return { privileged, noNewPrivs, seccomp: undefined };
  const source = profileArg ?? "corerun's default seccomp profile";
  let profile: DockerProfile;
  if (profileArg === undefined) profile = defaultProfile();
  else {
    let text: string;
    try {
      text = readFileSync(profileArg, "utf8");
    } catch (err) {
      throw new UsageError(`--security-opt seccomp=${profileArg}: cannot be read (${(err as NodeJS.ErrnoException).code}); give a profile file in Docker's format, or unconfined`);
    }
    profile = parseProfile(text, profileArg);
  }
  const names = Object.entries(CAPABILITIES).filter(([, n]) => capabilities.includes(n)).map(([name]) => `CAP_${name}`);
  const oci = profileToOci(profile, { capabilities: names, arch: DOCKER_ARCH[process.arch] ?? process.arch, kernel: release() }, source);
  if (!oci) return { privileged, noNewPrivs, seccomp: undefined };
  return { privileged, noNewPrivs, seccomp: { program: prepareSeccompProgram(root, oci, source), flags: oci.flags ?? [] } };
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
