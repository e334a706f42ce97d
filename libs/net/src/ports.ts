import { readFileSync } from "node:fs";
import { UsageError } from "@corerun/cli";
import { NETLINK_SOCK_DIAG, openNetlink, SyscallError } from "@corerun/syscall";
import { Rtnl } from "./client.ts";
import { AF_INET, AF_INET6, decodeAttrs, NLM_F_DUMP, type Request } from "./rtnl.ts";
import { formatIPv4, parseIPv4 } from "./ip.ts";
import { netPaths, readRecords, type Lease, type Protocol, type PublishedPort } from "./records.ts";

const FORM = "[[IP:]HOST_PORT:]CONTAINER_PORT[/tcp|udp]";

function portNumber(text: string, what: string, spec: string): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`-P ${spec}: ${what} "${text}" is not a number; use ${FORM}`);
  const n = Number(text);
  if (n < 1 || n > 65535) throw new UsageError(`-P ${spec}: ${what} ${n} is out of range; ports go from 1 to 65535`);
  return n;
}

/**
 * -P / --publish [[HOST_IP:]HOST_PORT:]CONTAINER_PORT[/tcp|/udp], as Docker spells it (IPv4).
 * Without a host port (80, 127.0.0.1::80) hostPort is 0: a free one is chosen when the
 * container's network is set up (choosePorts), as Docker does.
 */
export function parsePublish(spec: string): PublishedPort {
  const slash = spec.lastIndexOf("/");
  const proto = slash < 0 ? "tcp" : spec.slice(slash + 1);
  if (proto !== "tcp" && proto !== "udp") throw new UsageError(`-P ${spec}: unknown protocol "${proto}"; use tcp or udp`);
  const parts = (slash < 0 ? spec : spec.slice(0, slash)).split(":");
  if (parts.length > 3) throw new UsageError(`-P ${spec}: expected ${FORM}, e.g. 8080:80, 127.0.0.1:8080:80/udp, or 80 for a free host port`);
  const [ipText, hostText, ctrText] = parts.length === 3 ? parts : parts.length === 2 ? [undefined, ...parts] : [undefined, "", parts[0]];
  let hostIp: string | undefined;
  if (ipText !== undefined && ipText !== "" && ipText !== "0.0.0.0") {
    const ip = parseIPv4(ipText);
    if (ip === undefined) throw new UsageError(`-P ${spec}: "${ipText}" is not an IPv4 address of this host`);
    hostIp = formatIPv4(ip);
  }
  const hostPort = hostText === "" ? 0 : portNumber(hostText!, "host port", spec);
  const port: PublishedPort = { hostPort, containerPort: portNumber(ctrText!, "container port", spec), protocol: proto };
  if (hostIp !== undefined) port.hostIp = hostIp;
  return port;
}

export function portString(p: PublishedPort): string {
  const host = p.hostPort === 0 ? "" : String(p.hostPort);
  if (!p.hostIp && !host) return `${p.containerPort}/${p.protocol}`;
  return `${p.hostIp ? `${p.hostIp}:` : ""}${host}:${p.containerPort}/${p.protocol}`;
}

/** Two publications collide when they take the same port of the same protocol on a shared address. */
export function portsCollide(a: PublishedPort, b: PublishedPort): boolean {
  return a.protocol === b.protocol && a.hostPort === b.hostPort && (a.hostIp === undefined || b.hostIp === undefined || a.hostIp === b.hostIp);
}

/** Rejects duplicates within one request (a host port still to be chosen is no duplicate). */
export function checkOwnPorts(ports: readonly PublishedPort[]): void {
  ports.forEach((p, i) => {
    const other = p.hostPort === 0 ? undefined : ports.slice(0, i).find((q) => portsCollide(p, q));
    if (other) throw new UsageError(`-P ${portString(p)} and -P ${portString(other)} publish the same host port twice`);
  });
}

export interface Listener {
  protocol: Protocol;
  /** undefined for a wildcard bind (0.0.0.0 or ::, which also takes IPv4). */
  address: string | undefined;
  port: number;
}

const TCP_LISTEN = 10;
/** An unconnected UDP socket's state (TCP_CLOSE): bound, taking datagrams from anyone. */
const UDP_UNCONNECTED = 7;

/** The sockets that take a port: by protocol, state and family, as /proc/net names their files. */
const LISTENING = [
  { protocol: "tcp", state: TCP_LISTEN, family: AF_INET, file: "tcp" },
  { protocol: "tcp", state: TCP_LISTEN, family: AF_INET6, file: "tcp6" },
  { protocol: "udp", state: UDP_UNCONNECTED, family: AF_INET, file: "udp" },
  { protocol: "udp", state: UDP_UNCONNECTED, family: AF_INET6, file: "udp6" },
] as const;

/** A kernel without sock_diag, or without its module for TCP or UDP (tcp_diag, udp_diag). */
const NO_SOCK_DIAG = new Set(["EPROTONOSUPPORT", "ENOENT", "EOPNOTSUPP"]);

/**
 * Sockets of the calling thread's network namespace that a DNAT of the same port would shadow:
 * listening TCP sockets and bound, unconnected UDP sockets (IPv6 too: a socket bound to :: takes
 * IPv4 connections as well). Asked of sock_diag(7), as `ss -ltun` does; read from /proc/net when
 * the kernel lacks it (as ss falls back). The kernel makes /proc/net/tcp by walking the whole
 * established-connection hash table, sized by the machine's memory (2 ms each for tcp and tcp6
 * here), where a dump of listening TCP sockets walks the listening ones only (~0.2 ms for the
 * four dumps; UDP's walk the UDP table, as /proc/net/udp does).
 */
export function hostListeners(opts: { open?: () => Pick<Rtnl, "dump" | "close">; proc?: string } = {}): Listener[] {
  const open = opts.open ?? (() => new Rtnl(openNetlink({ protocol: NETLINK_SOCK_DIAG })));
  const fallBack = (err: unknown) => {
    if (err instanceof SyscallError && NO_SOCK_DIAG.has(err.code)) return procListeners(opts.proc);
    throw err;
  };
  let diag: Pick<Rtnl, "dump" | "close">;
  try {
    diag = open();
  } catch (err) {
    return fallBack(err);
  }
  try {
    return diagListeners(diag);
  } catch (err) {
    return fallBack(err);
  } finally {
    diag.close();
  }
}

const SOCK_DIAG_BY_FAMILY = 20;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;

/** A dump of one family's sockets of one protocol in one state: struct inet_diag_req_v2. */
export function diagDump(family: number, protocol: Protocol, state: number): Request {
  const req = Buffer.alloc(56);
  req.writeUInt8(family, 0);
  req.writeUInt8(protocol === "tcp" ? IPPROTO_TCP : IPPROTO_UDP, 1);
  req.writeUInt32LE(1 << state, 4);
  const v = family === AF_INET6 ? "IPv6" : "IPv4";
  return { type: SOCK_DIAG_BY_FAMILY, flags: NLM_F_DUMP, payload: req, name: "SOCK_DIAG_BY_FAMILY", what: `list the host's ${v} ${protocol} sockets that take a port`, object: "sockets" };
}

export function diagListeners(diag: Pick<Rtnl, "dump">): Listener[] {
  return LISTENING.flatMap((k) => diag.dump(diagDump(k.family, k.protocol, k.state)).map((msg) => decodeDiagSocket(msg.payload, k.protocol)));
}

/** struct inet_diag_msg's size: its attributes follow it. */
const INET_DIAG_MSG_SIZE = 72;
/** The attribute the kernel adds to every IPv6 socket: IPV6_V6ONLY, one byte. */
const INET_DIAG_SKV6ONLY = 11;

/**
 * struct inet_diag_msg: family (byte 0), then struct inet_diag_sockid from byte 4: the source
 * port (big-endian) and at byte 8 the source address, 4 or 16 bytes. An IPv6 socket bound to ::
 * with IPV6_V6ONLY takes no IPv4 traffic, so an IPv4 DNAT cannot shadow it (/proc/net cannot
 * tell: there it counts as a wildcard).
 */
export function decodeDiagSocket(msg: Buffer, protocol: Protocol): Listener {
  if (msg.length < INET_DIAG_MSG_SIZE) throw new Error(`sock_diag: a socket of ${msg.length} bytes, shorter than struct inet_diag_msg`);
  const v6 = msg.readUInt8(0) === AF_INET6;
  const address = socketAddress(msg.subarray(8, v6 ? 24 : 12), v6);
  const v6only = v6 && decodeAttrs(msg, INET_DIAG_MSG_SIZE).get(INET_DIAG_SKV6ONLY)?.[0] === 1;
  return { protocol, address: address === undefined && v6only ? "v6" : address, port: msg.readUInt16BE(4) };
}

/**
 * A socket's bound address as the DNAT check compares it: the IPv4 address, undefined for a
 * wildcard (0.0.0.0 or ::), or "v6" for an IPv6-only address that IPv4 cannot reach. An
 * IPv4-mapped IPv6 address (::ffff:a.b.c.d) is IPv4.
 */
function socketAddress(bytes: Buffer, v6: boolean): string | undefined {
  const v4 = (b: Buffer) => `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  if (!v6) {
    const a = v4(bytes);
    return a === "0.0.0.0" ? undefined : a;
  }
  if (bytes.every((x) => x === 0)) return undefined;
  const mapped = bytes.subarray(0, 10).every((x) => x === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  return mapped ? v4(bytes.subarray(12)) : "v6";
}

/** The same sockets, read from /proc/net/{tcp,tcp6,udp,udp6}. */
export function procListeners(proc = "/proc"): Listener[] {
  const out: Listener[] = [];
  for (const k of LISTENING) {
    let text: string;
    try {
      text = readFileSync(`${proc}/net/${k.file}`, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4 || parseInt(f[3]!, 16) !== k.state) continue;
      const [hex, portHex] = f[1]!.split(":");
      if (!hex || !portHex) continue;
      out.push({ protocol: k.protocol, address: decodeProcAddress(hex, k.family === AF_INET6), port: parseInt(portHex, 16) });
    }
  }
  return out;
}

/**
 * /proc/net/{tcp,udp}: the address as the kernel's __be32 printed as a host-order u32 (so
 * 127.0.0.1 reads 0100007F on little-endian machines); IPv6 as four such words.
 */
export function decodeProcAddress(hex: string, v6: boolean): string | undefined {
  const word = (h: string) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(parseInt(h, 16) >>> 0);
    return b;
  };
  return socketAddress(Buffer.concat((v6 ? [0, 8, 16, 24] : [0]).map((i) => word(hex.slice(i, i + 8)))), v6);
}

/** Refuses ports that another container publishes or a host process holds. */
export function checkPortsFree(ports: readonly PublishedPort[], leases: readonly Lease[], listeners: readonly Listener[]): void {
  for (const p of ports) {
    for (const lease of leases) {
      const taken = lease.ports.find((q) => portsCollide(p, q));
      if (taken) throw new UsageError(`-P ${portString(p)}: host port ${p.hostPort}/${p.protocol} is already published by container ${lease.id}`);
    }
    const held = heldBy(p, listeners);
    if (held) {
      throw new UsageError(`-P ${portString(p)}: host port ${p.hostPort}/${p.protocol} is held by a process on this host (${held.address ?? "all addresses"}); pick another host port`);
    }
  }
}

/** The host socket a DNAT of this port would shadow, if any. */
function heldBy(p: PublishedPort, listeners: readonly Listener[]): Listener | undefined {
  return listeners.find((l) => l.protocol === p.protocol && l.port === p.hostPort && l.address !== "v6" && (p.hostIp === undefined || l.address === undefined || l.address === p.hostIp));
}

/** The kernel's ephemeral port range (net.ipv4.ip_local_port_range), where Docker takes free host ports too. */
export function ephemeralRange(proc = "/proc"): [number, number] {
  try {
    const [lo, hi] = readFileSync(`${proc}/sys/net/ipv4/ip_local_port_range`, "utf8").trim().split(/\s+/).map(Number);
    if (lo && hi && lo <= hi) return [lo, hi];
  } catch {
    // not readable: Linux's default range
  }
  return [32768, 60999];
}

/**
 * Gives each port without a host port (hostPort 0) a free one: published by no container, held
 * by no host socket, and not taken by this request's other ports. Called under the records' lock,
 * so two containers starting at once never get the same. The search starts at a random place in
 * the range, so that a port a container just gave up is not handed out again at once, unless it
 * is the preferred one of a restarted container.
 */
export function choosePorts(
  ports: readonly PublishedPort[], leases: readonly Lease[], listeners: readonly Listener[], range = ephemeralRange(), random = Math.random, preferred: readonly PublishedPort[] = [],
): PublishedPort[] {
  const [lo, hi] = range;
  const span = hi - lo + 1;
  const chosen = ports.filter((p) => p.hostPort !== 0);
  const free = (q: PublishedPort) => !chosen.some((x) => portsCollide(q, x)) && !leases.some((l) => l.ports.some((x) => portsCollide(q, x))) && !heldBy(q, listeners);
  return ports.map((p) => {
    if (p.hostPort !== 0) return p;
    // A restarted container's host port for this one, when it is still free.
    const again = preferred.find((q) => q.containerPort === p.containerPort && q.protocol === p.protocol && q.hostIp === p.hostIp && q.hostPort !== 0);
    if (again && free(again)) {
      chosen.push(again);
      return again;
    }
    const start = Math.floor(random() * span);
    for (let i = 0; i < span; i++) {
      const q = { ...p, hostPort: lo + ((start + i) % span) };
      if (free(q)) {
        chosen.push(q);
        return q;
      }
    }
    throw new UsageError(`-P ${portString(p)}: no free host port left in ${lo}-${hi} (net.ipv4.ip_local_port_range); give one`);
  });
}

/** Each container's published ports as Docker's ps shows them (0.0.0.0:32768->80/tcp), by id, from the leases. */
export function publishedPorts(root: string): Map<string, string> {
  const leases = readRecords(netPaths(root).records).leases;
  return new Map(leases.map((l) => [l.id, l.ports.map((p) => `${p.hostIp ?? "0.0.0.0"}:${p.hostPort}->${p.containerPort}/${p.protocol}`).join(", ")]));
}
