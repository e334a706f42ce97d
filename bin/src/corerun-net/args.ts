import { statSync } from "node:fs";
import { resolve } from "node:path";
import { UsageError, type ToolContext } from "@corerun/cli";
import { checkHostname, stateRoot } from "@corerun/state";
import { checkId, checkName, checkNetworkName, checkOwnPorts, DEFAULT_NETWORK, ETC_ARGS, etcExtrasFor, netPaths, parseIp, parsePublish, parseSubnet, type Cidr, type EtcExtras, type PublishedPort } from "@corerun/net";
import type { ArgsDef } from "citty";

const root = { type: "string", valueHint: "DIR", description: "state directory (default /run/corerun; env CORERUN_ROOT)" } as const;
const id = { type: "string", valueHint: "ID", description: "the container's id (its lease and veth are named after it)" } as const;

export const setupArgs = {
  pid: { type: "string", valueHint: "PID", description: "configure the network namespace of process PID" },
  netns: { type: "string", valueHint: "PATH", description: "configure the network namespace at PATH (/proc/PID/ns/net, /run/netns/NAME)" },
  id,
  network: { type: "string", valueHint: "MODE", description: "bridge (default; multi is accepted for it) or none (loopback only)" },
  net: { type: "string", alias: "N", valueHint: "NAME", description: `bridge network to join, created when missing (default ${DEFAULT_NETWORK}; corerun_<hash> for another --root)` },
  subnet: { type: "string", valueHint: "CIDR", description: "subnet of a new network (default: the first free 10.77.N.0/24)" },
  port: { type: "string", alias: ["P", "publish"], valueHint: "[[IP:]HOST:]CTR[/tcp|udp]", description: "publish a container port on the host (repeatable); without HOST, on a free port of the ephemeral range" },
  hostname: { type: "string", valueHint: "NAME", description: "the container's hostname, for /etc/hostname and /etc/hosts (default: ID)" },
  name: { type: "string", valueHint: "NAME", description: "the container's name, listed in its network's /etc/hosts files" },
  alias: { type: "string", valueHint: "NAME", description: "another name of the container in its network's /etc/hosts files (repeatable)" },
  ip: { type: "string", valueHint: "IP", description: "this address in the network instead of the next free one; refused when it is taken, the gateway or outside the subnet" },
  "etc-dir": { type: "string", valueHint: "DIR", description: "write hosts, resolv.conf and hostname into DIR, in place" },
  "prefer-address": { type: "string", valueHint: "IP", description: "take this address when it is free in the network (a restarted container keeps its own)" },
  "prefer-port": { type: "string", valueHint: "IP:HOST:CTR[/tcp|udp]", description: "for a -P without HOST, take this host port when it is free (repeatable)" },
  "die-with-parent": { type: "boolean", description: "get SIGKILL when the parent process dies (as bubblewrap's option)" },
  ...ETC_ARGS,
  root,
} as const satisfies ArgsDef;

export const teardownArgs = { id, root } as const satisfies ArgsDef;
export const listArgs = { json: { type: "boolean", description: "print JSON instead of a table" }, root } as const satisfies ArgsDef;
export const rootArgs = { root } as const satisfies ArgsDef;
export const etcArgs = {
  id,
  "etc-dir": { type: "string", valueHint: "DIR", description: "write hosts, resolv.conf and hostname into DIR, in place" },
  network: { type: "string", valueHint: "MODE", description: "none, host or container:ID|NAME (bridge: setup writes the files)" },
  hostname: setupArgs.hostname,
  name: setupArgs.name,
  ...ETC_ARGS,
  root,
} as const satisfies ArgsDef;

type Ctx = Pick<ToolContext, "values" | "flags" | "tail">;

const last = (ctx: Ctx, key: string) => ctx.values[key]?.at(-1);

function required(ctx: Ctx, key: string, example: string): string {
  const v = last(ctx, key);
  if (v === undefined || v === "") throw new UsageError(`--${key} is required, e.g. --${key} ${example}`);
  return v;
}

export function rootOf(ctx: Ctx): string {
  return stateRoot(last(ctx, "root"));
}

function etcDir(ctx: Ctx): string | undefined {
  const dir = last(ctx, "etc-dir");
  if (dir === undefined) return undefined;
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    // reported below
  }
  if (!isDir) throw new UsageError(`--etc-dir ${dir} is not an existing directory; create it first`);
  return resolve(dir);
}

export interface SetupConfig {
  mode: "bridge" | "none";
  target: { pid: number } | { path: string };
  id: string;
  network: string;
  subnet: Cidr | undefined;
  ports: PublishedPort[];
  hostname: string | undefined;
  name: string | undefined;
  etcDir: string | undefined;
  /** --add-host, --dns, --dns-search, --dns-option. */
  extras: EtcExtras;
  root: string;
  /** A restarted container's last address and host ports, taken again when free. */
  prefer: { address?: string | undefined; ports: PublishedPort[] };
  /** --ip: this address or none. */
  ip: string | undefined;
  /** --alias: more names in the network's hosts files. */
  aliases: string[];
}

function parseMode(value: string | undefined): "bridge" | "none" {
  if (value === undefined || value === "bridge" || value === "multi") return "bridge";
  if (value === "none") return "none";
  if (value === "host" || value.startsWith("container:")) {
    throw new UsageError(`--network ${value} needs no setup: the container uses that namespace as it is; write its /etc files with corerun-net etc --network ${value}`);
  }
  throw new UsageError(`--network ${value}: unknown mode; use bridge or none`);
}

/** Every check that needs no kernel: the whole argv is refused before anything is created. */
export function parseSetup(ctx: Ctx): SetupConfig {
  if (ctx.tail.length) throw new UsageError(`unexpected argument "${ctx.tail[0]}"; see corerun-net setup --help`);
  const mode = parseMode(last(ctx, "network"));
  const pid = last(ctx, "pid");
  const netns = last(ctx, "netns");
  if ((pid === undefined) === (netns === undefined)) throw new UsageError("give exactly one of --pid PID and --netns PATH");
  if (pid !== undefined && (!/^[1-9]\d*$/.test(pid) || Number(pid) > 2 ** 22)) throw new UsageError(`--pid "${pid}" is not a process id`);
  const ports = (ctx.values.port ?? []).map(parsePublish);
  checkOwnPorts(ports);
  const net = last(ctx, "net");
  const subnet = last(ctx, "subnet");
  const ip = parseIp(last(ctx, "ip"));
  const aliases = (ctx.values.alias ?? []).map((a) => checkName(a, "--alias")!);
  if (mode === "none") {
    if (ports.length) throw new UsageError("-P needs a bridge network; --network none has only loopback");
    if (net !== undefined || subnet !== undefined || ip !== undefined || aliases.length) throw new UsageError("--net, --subnet, --ip and --alias need --network bridge");
  }
  return {
    mode,
    target: pid !== undefined ? { pid: Number(pid) } : { path: netns! },
    id: checkId(required(ctx, "id", "c0ffee123456")),
    network: checkNetworkName(net ?? netPaths(rootOf(ctx)).defaultNetwork),
    subnet: parseSubnet(subnet),
    ports,
    hostname: checkHostname(last(ctx, "hostname")),
    name: checkName(last(ctx, "name")),
    etcDir: etcDir(ctx),
    extras: etcExtrasFor(ctx.values, mode),
    root: rootOf(ctx),
    prefer: { address: preferredAddress(last(ctx, "prefer-address")), ports: (ctx.values["prefer-port"] ?? []).map(parsePublish) },
    ip,
    aliases,
  };
}

function preferredAddress(text: string | undefined): string | undefined {
  if (text !== undefined && !/^(\d{1,3})(\.\d{1,3}){3}$/.test(text)) throw new UsageError(`--prefer-address ${text}: give an IPv4 address, e.g. 10.77.0.2`);
  return text;
}

export function parseTeardown(ctx: Ctx): { id: string; root: string } {
  if (ctx.tail.length) throw new UsageError(`unexpected argument "${ctx.tail[0]}"; see corerun-net teardown --help`);
  return { id: checkId(required(ctx, "id", "c0ffee123456")), root: rootOf(ctx) };
}

export function parseNames(ctx: Ctx): string[] {
  if (ctx.tail.length === 0) throw new UsageError("name the network to remove, e.g. corerun-net rm corerun0");
  for (const word of ctx.tail) {
    if (word.startsWith("-")) throw new UsageError(`"${word}": options go before the names: corerun-net rm [--root DIR] NAME...`);
  }
  return ctx.tail.map((name) => checkNetworkName(name, `network "${name}"`));
}

export interface EtcConfig {
  id: string;
  etcDir: string;
  mode: { mode: "none" } | { mode: "host" } | { mode: "container"; container: string };
  hostname: string | undefined;
  name: string | undefined;
  extras: EtcExtras;
  root: string;
}

/** Another container's network namespace has that container's /etc files' names and servers, as in Docker. */
function noExtras(ctx: Ctx, network: string): EtcExtras {
  const given = ["add-host", "dns", "dns-search", "dns-option"].find((k) => ctx.values[k]?.length);
  if (given) throw new UsageError(`--${given} and --network ${network} exclude each other: the container shares that container's network and its names and nameservers`);
  return {};
}

export function parseEtc(ctx: Ctx): EtcConfig {
  if (ctx.tail.length) throw new UsageError(`unexpected argument "${ctx.tail[0]}"; see corerun-net etc --help`);
  const value = last(ctx, "network") ?? "none";
  let mode: EtcConfig["mode"];
  if (value === "none" || value === "host") mode = { mode: value };
  else if (value.startsWith("container:") && value.length > "container:".length) mode = { mode: "container", container: value.slice("container:".length) };
  else if (value === "bridge" || value === "multi") throw new UsageError(`--network ${value}: corerun-net setup writes the files of a bridge container (--etc-dir)`);
  else throw new UsageError(`--network ${value}: unknown mode; use none, host or container:ID`);
  return {
    id: checkId(required(ctx, "id", "c0ffee123456")),
    etcDir: etcDir(ctx) ?? (() => { throw new UsageError("--etc-dir is required, e.g. --etc-dir /run/corerun/ID/etc"); })(),
    mode,
    hostname: checkHostname(last(ctx, "hostname")),
    name: checkName(last(ctx, "name")),
    extras: mode.mode === "container" ? noExtras(ctx, value) : etcExtrasFor(ctx.values, value),
    root: rootOf(ctx),
  };
}
