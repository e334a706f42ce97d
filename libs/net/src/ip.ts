/** IPv4 addresses as unsigned 32-bit numbers, and CIDR blocks. */

/** Dotted quad, four decimal parts without leading zeros (inet_aton would read 010 as octal). */
const QUAD = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$/;

export function parseIPv4(text: string): number | undefined {
  const m = QUAD.exec(text);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

export function formatIPv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

export interface Cidr {
  /** The network address (host bits zero). */
  base: number;
  prefix: number;
}

export function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export function cidrString(c: Cidr): string {
  return `${formatIPv4(c.base)}/${c.prefix}`;
}

export function size(c: Cidr): number {
  return 2 ** (32 - c.prefix);
}

export function contains(c: Cidr, addr: number): boolean {
  return ((addr & mask(c.prefix)) >>> 0) === c.base;
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  const p = Math.min(a.prefix, b.prefix);
  return ((a.base & mask(p)) >>> 0) === ((b.base & mask(p)) >>> 0);
}

/** a.b.c.d/N; the reason when it is not one, for the caller's error message. */
export function parseCidr(text: string): Cidr | string {
  const slash = text.indexOf("/");
  if (slash < 0) return "is not in the form a.b.c.d/N";
  const addr = parseIPv4(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (addr === undefined) return `"${text.slice(0, slash)}" is not an IPv4 address`;
  if (!/^(0|[1-9]\d?)$/.test(prefixText) || Number(prefixText) > 32) return `"/${prefixText}" is not a prefix length from 0 to 32`;
  const prefix = Number(prefixText);
  const base = (addr & mask(prefix)) >>> 0;
  if (base !== addr) return `has host bits set; the network is ${formatIPv4(base)}/${prefix}`;
  return { base, prefix };
}

/** Blocks a bridge subnet must stay out of: routing treats them specially or they are not ours. */
export const RESERVED: readonly { cidr: Cidr; why: string }[] = [
  { cidr: { base: 0x00000000, prefix: 8 }, why: "0.0.0.0/8 means \"this network\"" },
  { cidr: { base: 0x7f000000, prefix: 8 }, why: "127.0.0.0/8 is loopback" },
  { cidr: { base: 0xa9fe0000, prefix: 16 }, why: "169.254.0.0/16 is link-local" },
  { cidr: { base: 0xe0000000, prefix: 4 }, why: "224.0.0.0/4 is multicast" },
  { cidr: { base: 0xf0000000, prefix: 4 }, why: "240.0.0.0/4 is reserved" },
];
