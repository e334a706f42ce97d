import { UsageError } from "@corerun/cli";
import { tmpfsOf, type TmpfsSpec } from "./tmpfs.ts";
import { bindOf, type VolumeSpec } from "./volume.ts";

/** A --mount: a bind mount (as -v makes it) or a tmpfs (as --tmpfs). */
export type MountSpec = { type: "bind"; bind: VolumeSpec } | { type: "tmpfs"; tmpfs: TmpfsSpec };

/**
 * Docker's --mount value: comma-separated fields as CSV (a field in double quotes may hold a
 * comma; "" is a quote), each KEY=VALUE or a bare KEY.
 */
export function mountFields(spec: string): string[] {
  const fields: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < spec.length; i++) {
    const c = spec[i]!;
    if (quoted && c === '"' && spec[i + 1] === '"') {
      field += '"';
      i++;
    } else if (c === '"') quoted = !quoted;
    else if (c === "," && !quoted) {
      fields.push(field);
      field = "";
    } else field += c;
  }
  if (quoted) throw new UsageError(`--mount "${spec}": a quote is not closed`);
  return [...fields, field];
}

const BOOLEAN: Record<string, boolean> = { "": true, true: true, "1": true, false: false, "0": false };

/**
 * --mount type=bind|tmpfs,... as Docker takes it: source (src), target (destination, dst),
 * readonly (ro) with an optional true/false, bind-propagation (rprivate, the only one corerun
 * makes), tmpfs-size and tmpfs-mode. A tmpfs gets --tmpfs's defaults (noexec, nosuid, nodev).
 * Docker's default type, volume (a named volume), and its other options are refused by name.
 */
export function parseMount(spec: string, cwd = process.cwd()): MountSpec {
  const label = `--mount "${spec}"`;
  const given = new Map<string, string>();
  for (const field of mountFields(spec)) {
    const eq = field.indexOf("=");
    const key = (eq < 0 ? field : field.slice(0, eq)).trim().toLowerCase();
    const value = eq < 0 ? "" : field.slice(eq + 1);
    if (key === "") throw new UsageError(`${label}: an empty field; give KEY=VALUE fields such as type=bind,source=/data,target=/data`);
    const name = { src: "source", destination: "target", dst: "target", ro: "readonly" }[key] ?? key;
    if (given.has(name)) throw new UsageError(`${label}: ${name} is given twice`);
    given.set(name, value);
  }
  const type = (given.get("type") ?? "volume").toLowerCase();
  if (type === "volume") throw new UsageError(`${label}: named volumes (type=volume, Docker's default type) are not built yet; give type=bind with a host path, or type=tmpfs`);
  if (type !== "bind" && type !== "tmpfs") throw new UsageError(`${label}: type=${type} is not one corerun mounts; use bind or tmpfs`);
  const known = type === "bind" ? ["type", "source", "target", "readonly", "bind-propagation"] : ["type", "target", "readonly", "tmpfs-size", "tmpfs-mode"];
  for (const key of given.keys()) {
    if (!known.includes(key)) throw new UsageError(`${label}: ${key} is not an option of type=${type} that corerun takes; use ${known.filter((k) => k !== "type").join(", ")}`);
  }
  const target = given.get("target");
  if (!target) throw new UsageError(`${label}: no target; give target=/path/in/container`);
  const ro = given.get("readonly");
  const readonly = ro === undefined ? false : BOOLEAN[ro.toLowerCase()];
  if (readonly === undefined) throw new UsageError(`${label}: readonly=${ro} is not true or false`);
  if (type === "bind") {
    const source = given.get("source");
    if (!source) throw new UsageError(`${label}: no source; give source=/path/on/host`);
    const propagation = given.get("bind-propagation");
    if (propagation !== undefined && propagation !== "rprivate") {
      throw new UsageError(`${label}: bind-propagation=${propagation} is not built yet; corerun's bind mounts are rprivate (drop the option)`);
    }
    return { type: "bind", bind: bindOf(source, target, { readonly, idmap: false }, label, cwd) };
  }
  const size = given.get("tmpfs-size");
  const mode = given.get("tmpfs-mode");
  if (size !== undefined && !/^\d+[kKmMgG]?$/.test(size)) throw new UsageError(`${label}: tmpfs-size=${size} is not a size; give bytes or 64m, 1g`);
  if (mode !== undefined && !/^0?[0-7]{3,4}$/.test(mode)) throw new UsageError(`${label}: tmpfs-mode=${mode} is not an octal mode such as 1777`);
  const options = [...(readonly ? ["ro"] : []), ...(size === undefined ? [] : [`size=${size}`]), ...(mode === undefined ? [] : [`mode=${mode.replace(/^0(?=[0-7]{4})/, "")}`])];
  return { type: "tmpfs", tmpfs: tmpfsOf(target, options, label) };
}
