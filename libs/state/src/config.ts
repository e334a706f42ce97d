import { UsageError } from "@corerun/cli";
import { CAPABILITIES } from "@corerun/syscall";

/** RFC 1123 labels, at most 64 bytes in all: the kernel's limit for sethostname(2). */
const HOSTNAME_PATTERN = /^(?=.{1,64}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** Validates a --hostname value; the error says what is wrong with it. */
export function checkHostname(name: string | undefined): string | undefined {
  if (name === undefined) return undefined;
  if (name.length > 64) throw new UsageError(`--hostname "${name}" is ${name.length} characters long; the limit is 64`);
  if (!HOSTNAME_PATTERN.test(name)) {
    throw new UsageError(`--hostname "${name}" may hold only letters, digits, '-' and '.', and no label may start or end with '-'`);
  }
  return name;
}

/** -e values as KEY=VALUE; a bare KEY takes its value from `hostEnv`, as Docker does. */
export function parseEnvVars(values: readonly string[], hostEnv: NodeJS.ProcessEnv = process.env): string[] {
  return values.map((e) => {
    const eq = e.indexOf("=");
    const key = eq < 0 ? e : e.slice(0, eq);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw new UsageError(`-e "${e}": "${key}" is not a valid variable name`);
    return eq < 0 ? `${key}=${hostEnv[key] ?? ""}` : e;
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

