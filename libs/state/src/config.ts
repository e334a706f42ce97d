import { readFileSync } from "node:fs";
import { UsageError } from "@corerun/cli";
import { CAPABILITIES } from "@corerun/syscall";

/** RFC 1123 labels, at most 64 bytes in all: the kernel's limit for sethostname(2). */
const HOSTNAME_PATTERN = /^(?=.{1,64}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** A variable name -e and --env-file take. */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Validates a --hostname (or --domainname) value; the error says what is wrong with it. */
export function checkHostname(name: string | undefined, option = "--hostname"): string | undefined {
  if (name === undefined) return undefined;
  if (name.length > 64) throw new UsageError(`${option} "${name}" is ${name.length} characters long; the limit is 64`);
  if (!HOSTNAME_PATTERN.test(name)) {
    throw new UsageError(`${option} "${name}" may hold only letters, digits, '-' and '.', and no label may start or end with '-'`);
  }
  return name;
}

/** A group as --group-add takes it: a gid, or a name looked up in the container's /etc/group at its start. */
export function checkGroupName(group: string, option = "--group-add"): string {
  if (/^\d+$/.test(group) ? Number(group) <= 0xfffffffe : /^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,31}\$?$/.test(group)) return group;
  throw new UsageError(`${option} ${group}: give a group name of the container's /etc/group or a gid (0 to 4294967294)`);
}

/** --oom-score-adj: the kernel's range, -1000 (never chosen by the OOM killer) to 1000. */
export function parseOomScoreAdj(text: string | undefined, option = "--oom-score-adj"): number | undefined {
  if (text === undefined) return undefined;
  if (!/^-?\d+$/.test(text) || Number(text) < -1000 || Number(text) > 1000) throw new UsageError(`${option} ${text}: give a whole number from -1000 to 1000`);
  return Number(text);
}

/**
 * A file of KEY=VALUE lines as Docker reads --env-file and --label-file: the value as written
 * (quotes included), KEY alone allowed; blank lines and lines starting with # are skipped, as is
 * leading whitespace and a trailing CR; a key may not be empty or hold whitespace. `option`
 * names the file in refusals.
 */
export function keyValueLines(text: string, option: string): { line: string; key: string; n: number }[] {
  const lines: { line: string; key: string; n: number }[] = [];
  for (const [i, raw] of text.replace(/^\uFEFF/, "").split("\n").entries()) {
    const line = raw.replace(/\r$/, "").replace(/^[ \t\v\f]+/, "");
    if (line === "" || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    const key = eq < 0 ? line : line.slice(0, eq);
    if (key === "") throw new UsageError(`${option}: line ${i + 1} has no name before "="; give KEY=VALUE`);
    if (/\s/.test(key)) throw new UsageError(`${option}: line ${i + 1}: name "${key}" contains whitespace; give KEY=VALUE`);
    lines.push({ line, key, n: i + 1 });
  }
  return lines;
}

/** --env-file FILE's text: keyValueLines whose names are variable names. Returns the lines as -e takes them. */
export function parseEnvFile(text: string, file: string): string[] {
  return keyValueLines(text, `--env-file ${file}`).map(({ line, key, n }) => {
    if (!ENV_NAME.test(key)) throw new UsageError(`--env-file ${file}: line ${n}: "${key}" is not a valid variable name`);
    return line;
  });
}

/** Reads a file an option names, as a UsageError naming it when it cannot be read. */
function readOptionFile(option: string, file: string, what: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new UsageError(`${option} ${file}: cannot be read (${(err as NodeJS.ErrnoException).code}); give a file of ${what}`);
  }
}

/** --label-file FILE...: their labels (KEY alone is an empty value), a later one winning. */
export function readLabelFiles(files: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const file of files) {
    for (const { line } of keyValueLines(readOptionFile("--label-file", file, "KEY=VALUE lines"), `--label-file ${file}`)) {
      const eq = line.indexOf("=");
      labels[eq < 0 ? line : line.slice(0, eq)] = eq < 0 ? "" : line.slice(eq + 1);
    }
  }
  return labels;
}

/** --label KEY[=VALUE] (Docker's: KEY alone is an empty value) over fromFiles (--label-file's), a later one winning. */
export function parseLabels(values: readonly string[], fromFiles: Record<string, string> = {}): Record<string, string> {
  const labels = { ...fromFiles };
  for (const value of values) {
    const eq = value.indexOf("=");
    const key = eq < 0 ? value : value.slice(0, eq);
    if (key === "" || /\s/.test(key)) throw new UsageError(`--label "${value}": give KEY=VALUE with a name without whitespace, such as com.example.app=web`);
    labels[key] = eq < 0 ? "" : value.slice(eq + 1);
  }
  return labels;
}

/** --env-file FILE...: their lines, each as -e takes it (KEY alone passes hostEnv's value). */
export function readEnvFiles(files: readonly string[], hostEnv: NodeJS.ProcessEnv = process.env): string[] {
  return parseEnvVars(files.flatMap((file) => parseEnvFile(readOptionFile("--env-file", file, "KEY=VALUE lines"), file)), hostEnv);
}

/**
 * -e values as KEY=VALUE; a bare KEY takes its value from `hostEnv`, and is left out when that
 * has none, as Docker does.
 */
export function parseEnvVars(values: readonly string[], hostEnv: NodeJS.ProcessEnv = process.env): string[] {
  return values.flatMap((e) => {
    const eq = e.indexOf("=");
    const key = eq < 0 ? e : e.slice(0, eq);
    if (!ENV_NAME.test(key)) throw new UsageError(`-e "${e}": "${key}" is not a valid variable name`);
    if (eq >= 0) return [e];
    const value = hostEnv[key];
    return value === undefined ? [] : [`${key}=${value}`];
  });
}

/** Validates a --workdir value. */
export function checkWorkdir(dir: string | undefined): string {
  const workdir = dir ?? "/";
  if (!workdir.startsWith("/")) throw new UsageError(`--workdir "${workdir}" must be an absolute path`);
  return workdir;
}

/** Docker's default capability set for a container's processes. */
export const DEFAULT_CAPABILITIES = [
  "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP", "NET_BIND_SERVICE", "NET_RAW",
  "SYS_CHROOT", "MKNOD", "AUDIT_WRITE", "SETFCAP",
] as const;

function capNumbers(option: string, names: readonly string[]): number[] | "ALL" {
  if (names.some((n) => n.toUpperCase() === "ALL")) return "ALL";
  return names.map((n) => {
    const cap = CAPABILITIES[n.toUpperCase().replace(/^CAP_/, "")];
    if (cap === undefined) throw new UsageError(`${option} ${n}: unknown capability; use a name such as NET_ADMIN or CAP_SYS_PTRACE`);
    return cap;
  });
}

/** Docker's set, plus --cap-add, minus --cap-drop (ALL on either side means all). */
export function capabilitySet(add: readonly string[], drop: readonly string[]): number[] {
  const added = capNumbers("--cap-add", add);
  const dropped = capNumbers("--cap-drop", drop);
  const all = Object.values(CAPABILITIES);
  if (dropped === "ALL") return added === "ALL" ? all : added;
  const base = added === "ALL" ? all : [...new Set([...DEFAULT_CAPABILITIES.map((n) => CAPABILITIES[n]!), ...added])];
  return base.filter((c) => !dropped.includes(c)).sort((a, b) => a - b);
}


export interface IdRange {
  /** First id inside the container. */
  container: number;
  /** First id on the host it maps to. */
  host: number;
  size: number;
}

const MAX_ID = 4294967294;

/**
 * Parses --uidmap/--gidmap CTR:HOST:SIZE values (Podman's spelling) and checks what the kernel
 * would refuse later: a zero size, ranges overlapping on either side, ids past 2^32-2, more than
 * the kernel's 340 lines, and a map that leaves container root unmapped.
 */
export function parseIdMap(values: readonly string[], option: "--uidmap" | "--gidmap"): IdRange[] {
  const ranges = values.map((text) => {
    const m = /^(\d+):(\d+):(\d+)$/.exec(text);
    if (!m) throw new UsageError(`${option} ${text}: expected CONTAINER_ID:HOST_ID:SIZE, e.g. 0:100000:65536`);
    const [container, host, size] = [Number(m[1]), Number(m[2]), Number(m[3])];
    if (size === 0) throw new UsageError(`${option} ${text}: the size is 0; map at least one id`);
    if (container + size - 1 > MAX_ID || host + size - 1 > MAX_ID) throw new UsageError(`${option} ${text}: the range goes past id ${MAX_ID}`);
    return { container, host, size };
  });
  if (ranges.length > 340) throw new UsageError(`${option}: ${ranges.length} ranges; the kernel takes at most 340`);
  for (let i = 0; i < ranges.length; i++) {
    for (let j = i + 1; j < ranges.length; j++) {
      const [a, b] = [ranges[i]!, ranges[j]!];
      if (a.container < b.container + b.size && b.container < a.container + a.size) {
        throw new UsageError(`${option} ${values[i]} and ${values[j]} overlap inside the container; give disjoint ranges`);
      }
      if (a.host < b.host + b.size && b.host < a.host + a.size) {
        throw new UsageError(`${option} ${values[i]} and ${values[j]} overlap on the host; give disjoint ranges`);
      }
    }
  }
  if (ranges.length && !ranges.some((r) => r.container === 0)) {
    throw new UsageError(`${option}: nothing maps container id 0; the container's root needs a host id (e.g. 0:100000:65536)`);
  }
  return ranges;
}

/** The host id that container id `id` maps to, if any. */
export function hostIdOf(ranges: readonly IdRange[], id: number): number | undefined {
  const r = ranges.find((x) => id >= x.container && id < x.container + x.size);
  return r === undefined ? undefined : r.host + (id - r.container);
}

/** The container id a host id shows as through the ranges, or the overflow id 65534 as the kernel shows an unmapped one. */
export function containerIdOf(ranges: readonly IdRange[], host: number): number {
  const r = ranges.find((x) => host >= x.host && host < x.host + x.size);
  return r === undefined ? 65534 : r.container + (host - r.host);
}

/** One line for a pair of maps, as a store records the user namespace its layers were unpacked in: "uid 0:1000:1,1:100000:65536 gid …". */
export function mapsKey(uidMap: readonly IdRange[], gidMap: readonly IdRange[]): string {
  const one = (m: readonly IdRange[]) => m.map((r) => `${r.container}:${r.host}:${r.size}`).join(",");
  return `uid ${one(uidMap)} gid ${one(gidMap)}`;
}

/** The ranges of a /proc/PID/uid_map or gid_map text. */
export function parseIdMapText(text: string): IdRange[] {
  return text.trim().split("\n").filter((l) => l.trim()).map((l) => {
    const [container, host, size] = l.trim().split(/\s+/).map(Number);
    return { container: container!, host: host!, size: size! };
  });
}

/** The /proc/PID/uid_map text for ranges. */
export function idMapText(ranges: readonly IdRange[]): string {
  return ranges.map((r) => `${r.container} ${r.host} ${r.size}\n`).join("");
}
