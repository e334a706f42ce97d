import { posix } from "node:path";
import { UsageError } from "@corerun/cli";

/**
 * A tar entry's name as a path relative to the layer's root, or a refusal. An absolute name or a
 * `..` component would write outside the layer (the "tar slip" of CVE-2018-15664 and friends);
 * `./` prefixes and trailing slashes are ordinary and dropped. "" is the layer's root itself.
 */
export function entryPath(name: string, what: string): string {
  if (name.includes("\0")) throw new UsageError(`${what}: entry name contains a NUL byte; refused`);
  if (name.startsWith("/")) throw new UsageError(`${what}: entry "${name}" is an absolute path; refused (layers hold relative paths only)`);
  const parts = name.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) throw new UsageError(`${what}: entry "${name}" climbs out of the layer with ..; refused`);
  return parts.join("/");
}

/**
 * A symlink's target is read by the container, inside its root: an absolute target is a path of
 * the container and stays in it. A relative target that climbs above the layer's root from the
 * link's own directory can only be meant to reach the host, and is refused.
 */
export function checkSymlink(path: string, target: string, what: string): void {
  if (target.includes("\0")) throw new UsageError(`${what}: symlink "${path}" has a NUL byte in its target; refused`);
  if (target.startsWith("/")) return;
  let depth = 0;
  for (const part of posix.join(posix.dirname(path), target).split("/")) {
    if (part === "..") depth--;
    else if (part !== "" && part !== ".") depth++;
    if (depth < 0) throw new UsageError(`${what}: symlink "${path}" -> "${target}" points out of the layer; refused`);
  }
}

/** Hard links name another entry of the same layer; the target is checked like an entry name. */
export function hardlinkTarget(path: string, target: string, what: string): string {
  const parts = target.replace(/^\/+/, "").split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..") || target.includes("\0")) throw new UsageError(`${what}: hard link "${path}" -> "${target}" points out of the layer; refused`);
  if (!parts.length) throw new UsageError(`${what}: hard link "${path}" points at the layer's root; refused`);
  return parts.join("/");
}

export const WHITEOUT_PREFIX = ".wh.";
export const OPAQUE = ".wh..wh..opq";

/**
 * What an entry means for overlayfs: a whiteout (`.wh.NAME` hides NAME of the layers below; the
 * overlayfs form is a character device 0/0 named NAME), an opaque marker (`.wh..wh..opq` hides
 * everything below in its directory; overlayfs reads the xattr trusted.overlay.opaque=y), aufs
 * metadata to skip (`.wh..wh.*`), or an ordinary entry.
 */
export type EntryKind = { kind: "whiteout"; path: string } | { kind: "opaque"; dir: string } | { kind: "skip" } | { kind: "plain" };

export function classifyEntry(path: string): EntryKind {
  const base = posix.basename(path);
  if (!base.startsWith(WHITEOUT_PREFIX)) return { kind: "plain" };
  const dir = posix.dirname(path) === "." ? "" : posix.dirname(path);
  if (base === OPAQUE) return { kind: "opaque", dir };
  if (base.startsWith(`${WHITEOUT_PREFIX}${WHITEOUT_PREFIX}`)) return { kind: "skip" };
  const name = base.slice(WHITEOUT_PREFIX.length);
  if (name === "" || name === "." || name === "..") return { kind: "skip" };
  return { kind: "whiteout", path: dir ? `${dir}/${name}` : name };
}

/** The entry name a whiteout (or an opaque directory's marker) takes in a layer tar. */
export function whiteoutEntry(path: string): string {
  const dir = posix.dirname(path);
  return `${dir === "." ? "" : `${dir}/`}${WHITEOUT_PREFIX}${posix.basename(path)}`;
}

export function opaqueEntry(dir: string): string {
  return dir ? `${dir}/${OPAQUE}` : OPAQUE;
}

const NAME_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/**
 * An image reference as Docker spells it, `[HOST[:PORT]/]NAME[/NAME...][:TAG]`, with the tag
 * `latest` when none is given. Returned as "NAME:TAG", the key of the store's refs.
 */
export function parseReference(ref: string): string | undefined {
  if (ref.length > 255 || ref.includes("@")) return undefined;
  const slash = ref.lastIndexOf("/");
  const colon = ref.lastIndexOf(":");
  const hasTag = colon > slash;
  const name = hasTag ? ref.slice(0, colon) : ref;
  const tag = hasTag ? ref.slice(colon + 1) : "latest";
  if (!TAG.test(tag)) return undefined;
  const parts = name.split("/");
  // The first component may be a registry host (with a port, dots or capitals).
  const host = parts.length > 1 && /[.:]|^localhost$/.test(parts[0]!) ? parts.shift()! : undefined;
  if (host !== undefined && !/^[A-Za-z0-9.-]+(?::\d+)?$/.test(host)) return undefined;
  if (!parts.length || !parts.every((p) => NAME_COMPONENT.test(p))) return undefined;
  return `${name}:${tag}`;
}

/** parseReference for user input: a bad reference says what a good one looks like. */
export function checkReference(ref: string, what: string): string {
  const parsed = parseReference(ref);
  if (parsed === undefined) throw new UsageError(`${what} "${ref}" is not an image reference; use NAME[:TAG] with lowercase letters, digits and . _ - / (e.g. busybox:1.36)`);
  return parsed;
}
