/**
 * The OCI runtime-spec config.json (1.0-1.2), as far as corerun honours it. Every object is
 * strict: a field corerun does not implement is refused by name, never dropped, so a bundle never
 * runs with less isolation than its author asked for.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import { OciSeccomp } from "@corerun/seccomp";
import { lazy, nulByteRefusal } from "@corerun/cli";

const uint32 = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(4294967295));
const int64 = v.pipe(v.number(), v.integer());
const uint16 = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(65535));
const strings = v.array(v.string());

const IdMapping = lazy(() => v.strictObject({ containerID: uint32, hostID: uint32, size: v.pipe(uint32, v.minValue(1)) }));
export type IdMapping = v.InferOutput<typeof IdMapping>;

const Capabilities = lazy(() => v.strictObject({
  bounding: v.optional(strings),
  effective: v.optional(strings),
  inheritable: v.optional(strings),
  permitted: v.optional(strings),
  ambient: v.optional(strings),
}));

export const RLIMITS = [
  "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE", "RLIMIT_RSS", "RLIMIT_NPROC", "RLIMIT_NOFILE",
  "RLIMIT_MEMLOCK", "RLIMIT_AS", "RLIMIT_LOCKS", "RLIMIT_SIGPENDING", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_RTPRIO", "RLIMIT_RTTIME",
] as const;

const Rlimit = lazy(() => v.strictObject({ type: v.picklist(RLIMITS), hard: v.pipe(v.number(), v.integer(), v.minValue(0)), soft: v.pipe(v.number(), v.integer(), v.minValue(0)) }));
export type Rlimit = v.InferOutput<typeof Rlimit>;

/** Fields an engine may send empty; a value would need an LSM or feature corerun does not drive. */
const emptyOnly = (what: string) => v.optional(v.pipe(v.string(), v.check((s) => s === "", `${what} is not supported by corerun (this host has no such LSM support in corerun); remove it`)));

export const Process = lazy(() => v.strictObject({
  terminal: v.optional(v.boolean()),
  consoleSize: v.optional(v.strictObject({ height: uint32, width: uint32 })),
  user: v.strictObject({
    uid: uint32,
    gid: uint32,
    umask: v.optional(uint32),
    additionalGids: v.optional(v.array(uint32)),
  }),
  args: v.optional(strings),
  env: v.optional(v.array(v.pipe(v.string(), v.check((e) => e.includes("="), "an env entry must be KEY=VALUE")))),
  cwd: v.pipe(v.string(), v.check((c) => c.startsWith("/"), "cwd must be an absolute path")),
  capabilities: v.optional(Capabilities),
  rlimits: v.optional(v.array(Rlimit)),
  noNewPrivileges: v.optional(v.boolean()),
  oomScoreAdj: v.optional(v.pipe(v.number(), v.integer(), v.minValue(-1000), v.maxValue(1000))),
  apparmorProfile: emptyOnly("an AppArmor profile"),
  selinuxLabel: emptyOnly("an SELinux label"),
}));
export type Process = v.InferOutput<typeof Process>;

export const Mount = lazy(() => v.strictObject({
  destination: v.pipe(v.string(), v.minLength(1)),
  type: v.optional(v.string()),
  source: v.optional(v.string()),
  options: v.optional(strings),
}));
export type Mount = v.InferOutput<typeof Mount>;

const Hook = lazy(() => v.strictObject({
  path: v.pipe(v.string(), v.check((p) => p.startsWith("/"), "a hook's path must be absolute")),
  args: v.optional(strings),
  env: v.optional(strings),
  timeout: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
}));
export type Hook = v.InferOutput<typeof Hook>;

export const HOOK_NAMES = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"] as const;
export type HookName = (typeof HOOK_NAMES)[number];
const Hooks = lazy(() => v.strictObject(Object.fromEntries(HOOK_NAMES.map((n) => [n, v.optional(v.array(Hook))])) as Record<HookName, v.OptionalSchema<v.ArraySchema<typeof Hook, undefined>, undefined>>));
export type Hooks = v.InferOutput<typeof Hooks>;

export const NAMESPACE_TYPES = ["pid", "network", "mount", "ipc", "uts", "user", "cgroup"] as const;
export type NamespaceType = (typeof NAMESPACE_TYPES)[number];
const Namespace = lazy(() => v.strictObject({ type: v.picklist(NAMESPACE_TYPES, `a namespace type is one of ${NAMESPACE_TYPES.join(", ")}`), path: v.optional(v.string()) }));

const DeviceRule = lazy(() => v.strictObject({
  allow: v.boolean(),
  type: v.optional(v.picklist(["a", "b", "c"])),
  major: v.optional(v.nullable(int64)),
  minor: v.optional(v.nullable(int64)),
  access: v.optional(v.pipe(v.string(), v.regex(/^[rwm]*$/, "access is a combination of r, w and m"))),
}));
export type DeviceRule = v.InferOutput<typeof DeviceRule>;

const Device = lazy(() => v.strictObject({
  type: v.picklist(["c", "b", "u", "p"]),
  path: v.pipe(v.string(), v.check((p) => p.startsWith("/dev/"), "a device's path must be under /dev/")),
  major: v.optional(int64),
  minor: v.optional(int64),
  fileMode: v.optional(uint32),
  uid: v.optional(uint32),
  gid: v.optional(uint32),
}));
export type Device = v.InferOutput<typeof Device>;

const WeightDevice = lazy(() => v.strictObject({ major: int64, minor: int64, weight: v.optional(uint16), leafWeight: v.optional(uint16) }));
const ThrottleDevice = lazy(() => v.strictObject({ major: int64, minor: int64, rate: v.pipe(v.number(), v.integer(), v.minValue(0)) }));
const ThrottleDevices = lazy(() => v.optional(v.array(ThrottleDevice)));

export const Resources = lazy(() => v.strictObject({
  devices: v.optional(v.array(DeviceRule)),
  memory: v.optional(v.strictObject({
    limit: v.optional(int64),
    reservation: v.optional(int64),
    swap: v.optional(int64),
    swappiness: v.optional(v.nullable(int64)),
    disableOOMKiller: v.optional(v.boolean()),
  })),
  cpu: v.optional(v.strictObject({
    shares: v.optional(int64),
    quota: v.optional(int64),
    period: v.optional(int64),
    cpus: v.optional(v.string()),
    mems: v.optional(v.string()),
  })),
  pids: v.optional(v.strictObject({ limit: int64 })),
  blockIO: v.optional(v.strictObject({
    weight: v.optional(uint16),
    leafWeight: v.optional(uint16),
    weightDevice: v.optional(v.array(WeightDevice)),
    throttleReadBpsDevice: ThrottleDevices,
    throttleWriteBpsDevice: ThrottleDevices,
    throttleReadIOPSDevice: ThrottleDevices,
    throttleWriteIOPSDevice: ThrottleDevices,
  })),
}));
export type Resources = v.InferOutput<typeof Resources>;

export const Linux = lazy(() => v.strictObject({
  namespaces: v.optional(v.array(Namespace)),
  uidMappings: v.optional(v.array(IdMapping)),
  gidMappings: v.optional(v.array(IdMapping)),
  devices: v.optional(v.array(Device)),
  resources: v.optional(Resources),
  cgroupsPath: v.optional(v.string()),
  sysctl: v.optional(v.record(v.string(), v.string())),
  maskedPaths: v.optional(strings),
  readonlyPaths: v.optional(strings),
  rootfsPropagation: v.optional(v.picklist(["private", "rprivate", "slave", "rslave", "shared", "rshared", "unbindable", "runbindable"])),
  mountLabel: emptyOnly("an SELinux mount label"),
  /** Compiled with libseccomp by libs/seccomp, which owns its schema. */
  seccomp: v.optional(OciSeccomp),
}));
export type Linux = v.InferOutput<typeof Linux>;

export const Spec = lazy(() => v.strictObject({
  ociVersion: v.pipe(v.string(), v.regex(/^1\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$/, "corerun runs runtime-spec 1.x bundles")),
  process: v.optional(Process),
  root: v.optional(v.strictObject({ path: v.pipe(v.string(), v.minLength(1)), readonly: v.optional(v.boolean()) })),
  hostname: v.optional(v.string()),
  domainname: v.optional(v.string()),
  mounts: v.optional(v.array(Mount)),
  hooks: v.optional(Hooks),
  annotations: v.optional(v.record(v.string(), v.string())),
  linux: v.optional(Linux),
}));
export type Spec = v.InferOutput<typeof Spec>;

/** A hook's env list (KEY=VALUE) as the object child_process takes. */
export function hookEnv(h: Hook): Record<string, string> {
  return Object.fromEntries((h.env ?? []).map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]));
}

/** A hook's argv: its args, or its path alone when it has none (as runc runs `"args": []`). */
export function hookArgv(h: Hook): string[] {
  return h.args?.length ? h.args : [h.path];
}

/** A config.json that is missing, is not JSON or does not match: one line naming the field. */
export class SpecError extends Error {
  override name = "SpecError";
}

function issueLine(issue: v.BaseIssue<unknown>): string {
  const where = issue.path?.map((p) => (typeof p.key === "number" ? `[${p.key}]` : `.${String(p.key)}`)).join("").replace(/^\./, "") ?? "";
  if (issue.kind === "schema" && issue.expected === "never" && issue.path?.length) {
    return `${where}: corerun does not support this field; remove it`;
  }
  return `${where ? `${where}: ` : ""}${issue.message}`;
}

/**
 * Validates parsed JSON against one of the runtime-spec's schemas (a whole config, a process
 * for exec, resources for update); `what` names the input in the one-line error.
 */
export function parseOci<S extends v.GenericSchema>(schema: S, data: unknown, what: string): v.InferOutput<S> {
  const nul = nulByteRefusal(data, what);
  if (nul) throw new SpecError(nul);
  const result = v.safeParse(schema, data);
  if (!result.success) throw new SpecError(`${what}: ${issueLine(result.issues[0])}`);
  return result.output;
}

/** Validates parsed JSON as a config; `file` names it in errors. */
export function parseSpec(data: unknown, file: string): Spec {
  return parseOci(Spec, data, file);
}

/** Reads BUNDLE/config.json (or another copy of it). */
export function readSpec(bundle: string, file = join(bundle, "config.json")): Spec {
  return parseSpecText(readSpecText(file), file);
}

/** How to name the config to corerun-exec and corerun-mount, whose `--oci` takes its path. */
export const OCI_OPTION_FIX = "give --oci the path of a config.json";

/** A config's text, unchecked (parseSpecText checks it); `fix` says how to name the right one. */
export function readSpecText(file: string, fix = "give --bundle the directory that holds config.json"): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new SpecError(`${file}: cannot be read (${code}); ${fix}`);
  }
}

/** A config from its text; `file` names it in errors. */
export function parseSpecText(text: string, file: string): Spec {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new SpecError(`${file}: not valid JSON (${(err as Error).message})`);
  }
  return parseSpec(data, file);
}
