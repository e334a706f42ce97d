/**
 * rtnetlink messages as bytes: pure encoding and decoding, no I/O. Layouts follow
 * <linux/netlink.h>, <linux/rtnetlink.h>, <linux/if_link.h>, <linux/if_addr.h> and
 * <linux/veth.h>; every integer is in host byte order except addresses, which are in network
 * order. Attributes are 4-byte aligned; a nested attribute is a list of attributes as its data.
 */

// Message types.
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_SETLINK = 19;
export const RTM_NEWADDR = 20;
export const RTM_GETADDR = 22;
export const RTM_NEWROUTE = 24;
export const RTM_GETROUTE = 26;

// nlmsghdr flags.
export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
export const NLM_F_DUMP_INTR = 0x10;
export const NLM_F_DUMP = 0x300;
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
/** In an ack: the original request was cut (CAPPED), TLVs follow (ACK_TLVS). */
export const NLM_F_CAPPED = 0x100;
export const NLM_F_ACK_TLVS = 0x200;
const NLMSGERR_ATTR_MSG = 1;

export const AF_UNSPEC = 0;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_BRIDGE = 7;

// Link attributes.
export const IFLA_ADDRESS = 1;
export const IFLA_IFNAME = 3;
export const IFLA_MTU = 4;
export const IFLA_MASTER = 10;
export const IFLA_PROTINFO = 12;
/** In IFLA_PROTINFO of an AF_BRIDGE message: a bridge port's hairpin mode (u8). */
export const IFLA_BRPORT_MODE = 4;
export const IFLA_LINKINFO = 18;
export const IFLA_NET_NS_PID = 19;
export const IFLA_NET_NS_FD = 28;
/** u32 of RTEXT_FILTER_* bits: what a link message may leave out. */
export const IFLA_EXT_MASK = 29;
export const RTEXT_FILTER_SKIP_STATS = 1 << 3;
export const IFLA_INFO_KIND = 1;
export const IFLA_INFO_DATA = 2;
export const VETH_INFO_PEER = 1;
export const IFF_UP = 0x1;

// Address attributes.
export const IFA_ADDRESS = 1;
export const IFA_LOCAL = 2;

// Route attributes and values.
export const RTA_DST = 1;
export const RTA_OIF = 4;
export const RTA_GATEWAY = 5;
export const RTA_TABLE = 15;
export const RT_TABLE_MAIN = 254;
export const RTPROT_BOOT = 3;
export const RT_SCOPE_UNIVERSE = 0;
export const RTN_UNICAST = 1;
export const RTN_LOCAL = 2;
export const RTN_BROADCAST = 3;
export const RTN_MULTICAST = 5;

const NLA_F_NESTED = 0x8000;
const NLA_TYPE_MASK = 0x3fff;
export const NLMSG_HDRLEN = 16;

const MESSAGE_NAMES: Record<number, string> = {
  [RTM_NEWLINK]: "RTM_NEWLINK", [RTM_DELLINK]: "RTM_DELLINK", [RTM_GETLINK]: "RTM_GETLINK",
  [RTM_NEWADDR]: "RTM_NEWADDR", [RTM_GETADDR]: "RTM_GETADDR", [RTM_NEWROUTE]: "RTM_NEWROUTE",
  [RTM_GETROUTE]: "RTM_GETROUTE", [RTM_SETLINK]: "RTM_SETLINK",
};

export function messageName(type: number): string {
  return MESSAGE_NAMES[type] ?? `netlink message ${type}`;
}

const align4 = (n: number) => (n + 3) & ~3;

/** One attribute: a payload, or a list of attributes for a nested one. */
export type Attr = [type: number, value: Buffer | string | number | Attr[]];

function attrPayload(value: Attr[1]): { data: Buffer; nested: boolean } {
  if (Array.isArray(value)) return { data: encodeAttrs(value), nested: true };
  if (typeof value === "string") return { data: Buffer.from(`${value}\0`), nested: false };
  if (typeof value === "number") {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(value >>> 0);
    return { data: b, nested: false };
  }
  return { data: value, nested: false };
}

export function encodeAttrs(attrs: readonly Attr[]): Buffer {
  const parts: Buffer[] = [];
  for (const [type, value] of attrs) {
    const { data, nested } = attrPayload(value);
    const head = Buffer.alloc(4);
    head.writeUInt16LE(4 + data.length, 0);
    head.writeUInt16LE(type | (nested ? NLA_F_NESTED : 0), 2);
    parts.push(head, data, Buffer.alloc(align4(data.length) - data.length));
  }
  return Buffer.concat(parts);
}

/** Attributes by type (the last one wins, as in the kernel's nla_parse). */
export function decodeAttrs(buf: Buffer, offset = 0, end = buf.length): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let at = offset;
  while (at + 4 <= end) {
    const len = buf.readUInt16LE(at);
    if (len < 4 || at + len > end) break;
    out.set(buf.readUInt16LE(at + 2) & NLA_TYPE_MASK, buf.subarray(at + 4, at + len));
    at += align4(len);
  }
  return out;
}

export function attrString(b: Buffer | undefined): string | undefined {
  if (!b) return undefined;
  const nul = b.indexOf(0);
  return b.subarray(0, nul < 0 ? b.length : nul).toString("utf8");
}

export function attrU32(b: Buffer | undefined): number | undefined {
  return b && b.length >= 4 ? b.readUInt32LE(0) : undefined;
}

/** struct nlmsghdr + payload; the length field covers both, padding excluded. */
export function nlmsg(type: number, flags: number, seq: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(NLMSG_HDRLEN);
  head.writeUInt32LE(NLMSG_HDRLEN + payload.length, 0);
  head.writeUInt16LE(type, 4);
  head.writeUInt16LE(flags, 6);
  head.writeUInt32LE(seq, 8);
  head.writeUInt32LE(0, 12);
  return Buffer.concat([head, payload, Buffer.alloc(align4(payload.length) - payload.length)]);
}

/** struct ifinfomsg { u8 family, pad; u16 type; i32 index; u32 flags, change } then attributes. */
export function ifinfomsg(h: { family?: number; index?: number; flags?: number; change?: number }, attrs: readonly Attr[] = []): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt8(h.family ?? AF_UNSPEC, 0);
  b.writeInt32LE(h.index ?? 0, 4);
  b.writeUInt32LE(h.flags ?? 0, 8);
  b.writeUInt32LE(h.change ?? 0, 12);
  return Buffer.concat([b, encodeAttrs(attrs)]);
}

/** struct ifaddrmsg { u8 family, prefixlen, flags, scope; u32 index } then attributes. */
export function ifaddrmsg(h: { family: number; prefixLength?: number; scope?: number; index?: number }, attrs: readonly Attr[] = []): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt8(h.family, 0);
  b.writeUInt8(h.prefixLength ?? 0, 1);
  b.writeUInt8(h.scope ?? 0, 3);
  b.writeUInt32LE(h.index ?? 0, 4);
  return Buffer.concat([b, encodeAttrs(attrs)]);
}

/** struct rtmsg { u8 family, dst_len, src_len, tos, table, protocol, scope, type; u32 flags }. */
export function rtmsg(h: { family: number; dstLength?: number; table?: number; protocol?: number; scope?: number; type?: number }, attrs: readonly Attr[] = []): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt8(h.family, 0);
  b.writeUInt8(h.dstLength ?? 0, 1);
  b.writeUInt8(h.table ?? 0, 4);
  b.writeUInt8(h.protocol ?? 0, 5);
  b.writeUInt8(h.scope ?? 0, 6);
  b.writeUInt8(h.type ?? 0, 7);
  return Buffer.concat([b, encodeAttrs(attrs)]);
}

/** An IPv4 address (a.b.c.d) as the four bytes an attribute carries. */
export function ipv4Bytes(addr: string): Buffer {
  const parts = addr.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new Error(`not an IPv4 address: ${addr}`);
  return Buffer.from(parts);
}

export function ipv4String(b: Buffer | undefined): string | undefined {
  return b && b.length === 4 ? `${b[0]}.${b[1]}.${b[2]}.${b[3]}` : undefined;
}

export function macString(b: Buffer | undefined): string | undefined {
  return b && b.length === 6 ? [...b].map((x) => x.toString(16).padStart(2, "0")).join(":") : undefined;
}

/**
 * A container's MAC address, from its IPv4 address as Docker makes it (02:42 then the address's
 * four bytes): a container that gets an address another one had moments before gets its MAC
 * too, so the host's and the other containers' neighbour entries for that address stay right.
 * With a random MAC they would still name the old one (REACHABLE for 15-45 s), and packets
 * to the new container would go to a MAC that no port of the bridge has.
 */
export function macForAddress(address: string): string {
  return macString(Buffer.concat([Buffer.from([0x02, 0x42]), ipv4Bytes(address)]))!;
}

export function macBytes(mac: string): Buffer {
  const parts = mac.split(":").map((p) => parseInt(p, 16));
  if (parts.length !== 6 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new Error(`not a MAC address: ${mac}`);
  return Buffer.from(parts);
}

export interface NlMessage {
  type: number;
  flags: number;
  seq: number;
  /** The bytes after the header. */
  payload: Buffer;
}

/** Splits one received datagram into its messages. */
export function splitMessages(buf: Buffer): NlMessage[] {
  const out: NlMessage[] = [];
  let at = 0;
  while (at + NLMSG_HDRLEN <= buf.length) {
    const len = buf.readUInt32LE(at);
    if (len < NLMSG_HDRLEN || at + len > buf.length) break;
    out.push({ type: buf.readUInt16LE(at + 4), flags: buf.readUInt16LE(at + 6), seq: buf.readUInt32LE(at + 8), payload: buf.subarray(at + NLMSG_HDRLEN, at + len) });
    at += align4(len);
  }
  return out;
}

/** An NLMSG_ERROR payload: errno (0 for an ack) and the kernel's extended-ack sentence, if any. */
export function decodeError(msg: NlMessage): { errno: number; message: string | undefined } {
  const errno = -msg.payload.readInt32LE(0) || 0;
  let message: string | undefined;
  if (msg.flags & NLM_F_ACK_TLVS) {
    // struct nlmsgerr { int error; struct nlmsghdr msg; } then the request's payload unless
    // CAPPED, then the TLVs.
    const requestLen = msg.payload.length >= 8 ? msg.payload.readUInt32LE(4) : NLMSG_HDRLEN;
    const tlvAt = 4 + (msg.flags & NLM_F_CAPPED ? NLMSG_HDRLEN : align4(requestLen));
    message = attrString(decodeAttrs(msg.payload, tlvAt).get(NLMSGERR_ATTR_MSG));
  }
  return { errno, message };
}

export interface Link {
  index: number;
  name: string;
  flags: number;
  kind: string | undefined;
  master: number | undefined;
  mac: string | undefined;
}

export function decodeLink(msg: NlMessage): Link {
  const p = msg.payload;
  const attrs = decodeAttrs(p, 16);
  const info = attrs.get(IFLA_LINKINFO);
  return {
    index: p.readInt32LE(4),
    name: attrString(attrs.get(IFLA_IFNAME)) ?? "",
    flags: p.readUInt32LE(8),
    kind: info ? attrString(decodeAttrs(info).get(IFLA_INFO_KIND)) : undefined,
    master: attrU32(attrs.get(IFLA_MASTER)),
    mac: macString(attrs.get(IFLA_ADDRESS)),
  };
}

export interface Route {
  dst: string;
  dstLength: number;
  table: number;
  type: number;
  oif: number | undefined;
  gateway: string | undefined;
}

export function decodeRoute(msg: NlMessage): Route {
  const p = msg.payload;
  const attrs = decodeAttrs(p, 12);
  return {
    dst: ipv4String(attrs.get(RTA_DST)) ?? "0.0.0.0",
    dstLength: p.readUInt8(1),
    table: attrU32(attrs.get(RTA_TABLE)) ?? p.readUInt8(4),
    type: p.readUInt8(7),
    oif: attrU32(attrs.get(RTA_OIF)),
    gateway: ipv4String(attrs.get(RTA_GATEWAY)),
  };
}

export interface Address {
  index: number;
  address: string;
  prefixLength: number;
}

export function decodeAddress(msg: NlMessage): Address {
  const p = msg.payload;
  const attrs = decodeAttrs(p, 8);
  return {
    index: p.readUInt32LE(4),
    address: ipv4String(attrs.get(IFA_LOCAL) ?? attrs.get(IFA_ADDRESS)) ?? "",
    prefixLength: p.readUInt8(1),
  };
}

// Requests. Each returns the payload for nlmsg(); the client adds header, flags and sequence.

export interface Request {
  type: number;
  flags: number;
  payload: Buffer;
  /** The message's name in errors, for a protocol other than rtnetlink (messageName's). */
  name?: string;
  /** What the request does, for error messages: "create bridge corerun0". */
  what: string;
  /** The object it acts on, for error messages. */
  object: string;
}

export function getLinkByName(name: string): Request {
  // Without the counters: the kernel sums them over every CPU for each link it describes.
  return { type: RTM_GETLINK, flags: 0, payload: ifinfomsg({}, [[IFLA_IFNAME, name], [IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS]]), what: `look up ${name}`, object: name };
}

export function newBridge(name: string, mac: string): Request {
  return {
    type: RTM_NEWLINK,
    flags: NLM_F_CREATE | NLM_F_EXCL,
    // A bridge takes the lowest MAC of its ports unless one is set: a fixed one keeps the
    // gateway's MAC, and so the containers' ARP caches, valid while ports come and go.
    payload: ifinfomsg({}, [[IFLA_IFNAME, name], [IFLA_ADDRESS, macBytes(mac)], [IFLA_LINKINFO, [[IFLA_INFO_KIND, "bridge"]]]]),
    what: `create bridge ${name}`,
    object: name,
  };
}

/**
 * A veth pair whose host end joins `master` and comes up, and whose peer is created directly
 * inside another network namespace (by fd), under its final name: no rename and no move
 * afterwards. The peer stays down: the kernel configures it before the two ends are linked, and
 * veth_open refuses a device without its peer (ENOTCONN), so it is brought up from inside.
 */
export function newVethPair(opts: { name: string; master: number; peerName: string; peerNetns: { fd: number } | { pid: number }; peerMac?: string; mtu?: number }): Request {
  const mtu: Attr[] = opts.mtu ? [[IFLA_MTU, opts.mtu]] : [];
  // By fd, the namespace cannot change under the request; by pid, it is the process's at that moment.
  const ns: Attr = "fd" in opts.peerNetns ? [IFLA_NET_NS_FD, opts.peerNetns.fd] : [IFLA_NET_NS_PID, opts.peerNetns.pid];
  const mac: Attr[] = opts.peerMac ? [[IFLA_ADDRESS, macBytes(opts.peerMac)]] : [];
  const peer = ifinfomsg({}, [[IFLA_IFNAME, opts.peerName], ns, ...mac, ...mtu]);
  return {
    type: RTM_NEWLINK,
    flags: NLM_F_CREATE | NLM_F_EXCL,
    payload: ifinfomsg({ flags: IFF_UP, change: IFF_UP }, [
      [IFLA_IFNAME, opts.name],
      [IFLA_MASTER, opts.master],
      ...mtu,
      [IFLA_LINKINFO, [[IFLA_INFO_KIND, "veth"], [IFLA_INFO_DATA, [[VETH_INFO_PEER, peer]]]]],
    ]),
    what: `create veth ${opts.name} with peer ${opts.peerName} in the container's network namespace`,
    object: opts.name,
  };
}

/**
 * Hairpin mode on a bridge port: the bridge may send a frame back out of the port it came in on.
 * With br_netfilter loaded, a container's connection to a published port of its own (through
 * the gateway or a host address), DNATed back to its own address, is bridged back to the port it
 * came from, which the bridge refuses without it (Docker turns it on too). By index only: the
 * bridge's setlink looks the port up by index.
 */
export function setHairpin(link: { index: number; name: string }): Request {
  return {
    type: RTM_SETLINK,
    flags: 0,
    payload: ifinfomsg({ family: AF_BRIDGE, index: link.index }, [[IFLA_PROTINFO, [[IFLA_BRPORT_MODE, Buffer.from([1])]]]]),
    what: `turn on hairpin mode of bridge port ${link.name}`,
    object: link.name,
  };
}

/** Brings a link up, by index or (index 0) by name. */
export function setLinkUp(link: { index?: number; name?: string }): Request {
  const attrs: Attr[] = link.index ? [] : [[IFLA_IFNAME, link.name ?? ""]];
  return {
    type: RTM_NEWLINK,
    flags: 0,
    payload: ifinfomsg({ index: link.index ?? 0, flags: IFF_UP, change: IFF_UP }, attrs),
    what: `bring ${link.name ?? `link ${link.index}`} up`,
    object: link.name ?? String(link.index),
  };
}

/** Deletes a link by index, or (index 0) by name. */
export function deleteLink(link: { index: number; name: string }): Request {
  const attrs: Attr[] = link.index ? [] : [[IFLA_IFNAME, link.name]];
  return { type: RTM_DELLINK, flags: 0, payload: ifinfomsg({ index: link.index }, attrs), what: `delete ${link.name}`, object: link.name };
}

/** Adds an IPv4 address; with replace, an existing one is updated instead of refused. */
export function newAddress(opts: { index: number; name: string; address: string; prefixLength: number; replace?: boolean }): Request {
  const a = ipv4Bytes(opts.address);
  const host = a.readUInt32BE(0);
  const mask = opts.prefixLength === 0 ? 0 : (0xffffffff << (32 - opts.prefixLength)) >>> 0;
  const brd = Buffer.alloc(4);
  brd.writeUInt32BE((host | ~mask) >>> 0);
  return {
    type: RTM_NEWADDR,
    flags: NLM_F_CREATE | (opts.replace ? NLM_F_REPLACE : NLM_F_EXCL),
    // IFA_LOCAL is the address itself; IFA_ADDRESS the peer (the same on broadcast links).
    payload: ifaddrmsg({ family: AF_INET, prefixLength: opts.prefixLength, scope: RT_SCOPE_UNIVERSE, index: opts.index }, [
      [IFA_LOCAL, a], [IFA_ADDRESS, a], [4 /* IFA_BROADCAST */, brd],
    ]),
    what: `add ${opts.address}/${opts.prefixLength} to ${opts.name}`,
    object: opts.name,
  };
}

export function newDefaultRoute(opts: { gateway: string; index: number; name: string }): Request {
  return {
    type: RTM_NEWROUTE,
    flags: NLM_F_CREATE | NLM_F_EXCL,
    payload: rtmsg({ family: AF_INET, table: RT_TABLE_MAIN, protocol: RTPROT_BOOT, scope: RT_SCOPE_UNIVERSE, type: RTN_UNICAST }, [
      [RTA_GATEWAY, ipv4Bytes(opts.gateway)], [RTA_OIF, opts.index],
    ]),
    what: `add default route via ${opts.gateway} dev ${opts.name}`,
    object: opts.name,
  };
}

export function dumpLinks(): Request {
  return { type: RTM_GETLINK, flags: NLM_F_DUMP, payload: ifinfomsg({}), what: "list links", object: "links" };
}

export function dumpRoutes(): Request {
  return { type: RTM_GETROUTE, flags: NLM_F_DUMP, payload: rtmsg({ family: AF_INET }), what: "list IPv4 routes", object: "routes" };
}

export function dumpAddresses(): Request {
  return { type: RTM_GETADDR, flags: NLM_F_DUMP, payload: ifaddrmsg({ family: AF_INET }), what: "list IPv4 addresses", object: "addresses" };
}
