import * as v from "valibot";
import { lazy, nulByteRefusal, UsageError } from "@corerun/cli";
import { OciSeccompArg, type OciSeccomp, type OciSyscall } from "./oci.ts";
import DEFAULT_PROFILE_JSON from "../profiles/default.json" with { type: "json" };

/**
 * Docker's seccomp profile format (moby's profiles/seccomp): the runtime spec's `linux.seccomp`
 * plus an `archMap` and rules that apply only under conditions on the container's capabilities,
 * the architecture and the kernel version (`includes`, `excludes`). Unknown fields are ignored,
 * as Docker's JSON decoding does.
 */
const Filter = lazy(() => v.object({
  caps: v.optional(v.nullable(v.array(v.string()))),
  arches: v.optional(v.nullable(v.array(v.string()))),
  minKernel: v.optional(v.nullable(v.string())),
}));
type Filter = v.InferOutput<typeof Filter>;

const ProfileSyscall = lazy(() => v.object({
  name: v.optional(v.string()),
  names: v.optional(v.nullable(v.array(v.string()))),
  action: v.string(),
  errnoRet: v.optional(v.nullable(v.pipe(v.number(), v.integer(), v.minValue(0)))),
  args: v.optional(v.nullable(v.array(OciSeccompArg))),
  includes: v.optional(v.nullable(Filter)),
  excludes: v.optional(v.nullable(Filter)),
}));

export const DockerProfile = lazy(() => v.object({
  defaultAction: v.optional(v.string(), ""),
  defaultErrnoRet: v.optional(v.nullable(v.pipe(v.number(), v.integer(), v.minValue(0)))),
  architectures: v.optional(v.nullable(v.array(v.string()))),
  archMap: v.optional(v.nullable(v.array(v.object({ architecture: v.string(), subArchitectures: v.optional(v.nullable(v.array(v.string()))) })))),
  flags: v.optional(v.nullable(v.array(v.string()))),
  listenerPath: v.optional(v.string()),
  listenerMetadata: v.optional(v.string()),
  syscalls: v.optional(v.nullable(v.array(ProfileSyscall))),
}));
export type DockerProfile = v.InferOutput<typeof DockerProfile>;

/** The container a profile is resolved for. */
export interface ProfileTarget {
  /** Its bounding set, as capability names with the CAP_ prefix. */
  capabilities: readonly string[];
  /** The architecture in libseccomp's spelling Docker uses in `arches` ("amd64", "arm64"). */
  arch: string;
  /** The host kernel's release (os.release()). */
  kernel: string;
}

/** Node's process.arch in the spelling of Docker's `arches` filters (Go's GOARCH through libseccomp's names). */
export const DOCKER_ARCH: Record<string, string> = {
  x64: "amd64", arm64: "arm64", ia32: "x86", arm: "arm", riscv64: "riscv64", s390x: "s390x", ppc64: "ppc64le", loong64: "loong64",
};

/** Docker's arch names → the runtime spec's SCMP_ARCH_* for the native architecture. */
const SPEC_ARCH: Record<string, string> = {
  amd64: "SCMP_ARCH_X86_64", arm64: "SCMP_ARCH_AARCH64", x86: "SCMP_ARCH_X86", arm: "SCMP_ARCH_ARM", riscv64: "SCMP_ARCH_RISCV64",
  s390x: "SCMP_ARCH_S390X", ppc64le: "SCMP_ARCH_PPC64LE", loong64: "SCMP_ARCH_LOONGARCH64",
};

/** "major.minor", as Docker reads minKernel: later parts and suffixes ("-rc5", "-gentoo") do not count. */
function kernelVersion(text: string, what: string): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(text);
  if (!m) throw new UsageError(`${what} "${text}" is not a kernel version; write it as MAJOR.MINOR, e.g. "4.8"`);
  return [Number(m[1]), Number(m[2])];
}

function atLeast(kernel: string, min: string, source: string): boolean {
  if (!/^\d+\.\d+$/.test(min) || min === "0.0") throw new UsageError(`${source}: minKernel "${min}" is not a kernel version; write it as MAJOR.MINOR, e.g. "4.8"`);
  const [a, b] = kernelVersion(kernel, "the kernel release");
  const [c, d] = kernelVersion(min, "minKernel");
  return a > c || (a === c && b >= d);
}

/** Whether a rule's `includes` (all must hold) and `excludes` (any one drops it) keep it. */
function applies(includes: Filter | null | undefined, excludes: Filter | null | undefined, t: ProfileTarget, source: string): boolean {
  if (excludes) {
    if (excludes.arches?.includes(t.arch)) return false;
    if (excludes.caps?.some((c) => t.capabilities.includes(c))) return false;
    if (excludes.minKernel && atLeast(t.kernel, excludes.minKernel, source)) return false;
  }
  if (includes) {
    if (includes.arches?.length && !includes.arches.includes(t.arch)) return false;
    if (includes.caps?.length && !includes.caps.every((c) => t.capabilities.includes(c))) return false;
    if (includes.minKernel && !atLeast(t.kernel, includes.minKernel, source)) return false;
  }
  return true;
}

/** Parses a profile's text; `source` names it in errors (a file path). */
export function parseProfile(text: string, source: string): DockerProfile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${source}: not valid JSON (${(err as Error).message}); give a seccomp profile in Docker's format`);
  }
  const nul = nulByteRefusal(json, source);
  if (nul) throw new UsageError(nul);
  const r = v.safeParse(DockerProfile, json);
  if (!r.success) {
    const issue = r.issues[0]!;
    const path = v.getDotPath(issue) ?? "(top level)";
    throw new UsageError(`${source}: ${path}: ${issue.message}; see Docker's seccomp profile format`);
  }
  return r.output;
}

/**
 * corerun's default profile, equivalent to Docker's (libs/seccomp/profiles/default.json). It is
 * part of the build, so it is checked against DockerProfile by the unit tests rather than at every
 * start, where the check took ~0.5 ms; the keys the schema leaves out (comments) are never read.
 */
export function defaultProfile(): DockerProfile {
  return DEFAULT_PROFILE_JSON as DockerProfile;
}

/**
 * Resolves a Docker profile for one container into the runtime spec's `linux.seccomp`, the way
 * Docker does before it hands the spec to runc: the native architecture's entry of `archMap`,
 * and only the rules whose conditions hold for the container's capabilities, the architecture and
 * the kernel. Returns undefined for a profile with neither a default action nor rules (Docker's
 * reading of an empty profile: no filter).
 */
export function profileToOci(profile: DockerProfile, target: ProfileTarget, source: string): OciSeccomp | undefined {
  const syscalls = profile.syscalls ?? [];
  if (profile.defaultAction === "" && syscalls.length === 0) return undefined;
  if (profile.defaultAction === "") throw new UsageError(`${source}: defaultAction is missing; e.g. "SCMP_ACT_ERRNO"`);
  if (profile.architectures?.length && profile.archMap?.length) {
    throw new UsageError(`${source}: both architectures and archMap are given; use one of them`);
  }
  const native = SPEC_ARCH[target.arch];
  const mapped = profile.archMap?.find((a) => a.architecture === native);
  const architectures = profile.architectures?.length ? profile.architectures : mapped ? [mapped.architecture, ...(mapped.subArchitectures ?? [])] : [];
  const out: OciSyscall[] = [];
  for (const [i, s] of syscalls.entries()) {
    if (s.name !== undefined && s.names?.length) throw new UsageError(`${source}: syscalls[${i}] has both name and names; use names`);
    const names = s.name !== undefined ? [s.name] : (s.names ?? []);
    if (names.length === 0) throw new UsageError(`${source}: syscalls[${i}] names no syscall; give names: ["..."]`);
    if (!applies(s.includes, s.excludes, target, source)) continue;
    out.push({
      names,
      action: s.action,
      ...(s.errnoRet != null ? { errnoRet: s.errnoRet } : {}),
      ...(s.args?.length ? { args: s.args } : {}),
    });
  }
  return {
    defaultAction: profile.defaultAction,
    ...(profile.defaultErrnoRet != null ? { defaultErrnoRet: profile.defaultErrnoRet } : {}),
    ...(architectures.length ? { architectures } : {}),
    ...(profile.flags?.length ? { flags: profile.flags } : {}),
    ...(profile.listenerPath ? { listenerPath: profile.listenerPath } : {}),
    ...(profile.listenerMetadata ? { listenerMetadata: profile.listenerMetadata } : {}),
    syscalls: out,
  };
}
