/**
 * JSON strings may hold "\u0000"; the kernel's strings (paths, argv, env, names) end at the first
 * NUL, so such a value would reach a syscall cut short and silently mean something else. Every
 * JSON file corerun takes (config.json, process.json, a seccomp profile, an image's manifests and
 * config) is checked for one before its schema.
 */

/** The path (`process.args[1]`, `Env[0]`, or a key's own path) of the first string, key or value, holding a NUL byte. */
export function nulBytePath(data: unknown, path = ""): string | undefined {
  if (typeof data === "string") return data.includes("\0") ? path || "(top level)" : undefined;
  if (Array.isArray(data)) {
    for (const [i, item] of data.entries()) {
      const found = nulBytePath(item, `${path}[${i}]`);
      if (found) return found;
    }
    return undefined;
  }
  if (data !== null && typeof data === "object") {
    for (const [key, value] of Object.entries(data)) {
      const here = path ? `${path}.${key}` : key;
      if (key.includes("\0")) return `${path ? `${path}.` : ""}${JSON.stringify(key)} (a key)`;
      const found = nulBytePath(value, here);
      if (found) return found;
    }
  }
  return undefined;
}

/** The one line for a JSON file holding a NUL byte, or undefined when it holds none. */
export function nulByteRefusal(data: unknown, what: string): string | undefined {
  const at = nulBytePath(data);
  return at === undefined ? undefined : `${what}: ${at} holds a NUL byte, which no path, argument or name can carry; remove it`;
}
