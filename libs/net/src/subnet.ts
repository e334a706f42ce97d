import { UsageError } from "@corerun/cli";
import { cidrString, contains, overlaps, RESERVED, size, type Cidr } from "./ip.ts";

/** Where subnets come from when --subnet is not given: 10.77.0.0/24, 10.77.1.0/24, … */
export const DEFAULT_POOL: Cidr = { base: 0x0a4d0000, prefix: 16 };
export const DEFAULT_PREFIX = 24;

/** Address space in use: a host route, another network of corerun's. */
export interface Taken {
  cidr: Cidr;
  what: string;
}

/**
 * The first /24 of the pool that overlaps nothing taken. A subnet that overlaps a host route
 * would make the host send part of that route's traffic into the bridge, or the reverse.
 */
export function chooseSubnet(taken: readonly Taken[], pool = DEFAULT_POOL, prefix = DEFAULT_PREFIX): Cidr {
  const count = 2 ** (prefix - pool.prefix);
  for (let i = 0; i < count; i++) {
    const c: Cidr = { base: (pool.base + i * 2 ** (32 - prefix)) >>> 0, prefix };
    if (!taken.some((t) => overlaps(t.cidr, c))) return c;
  }
  throw new UsageError(`no free /${prefix} subnet left in ${cidrString(pool)}; pass --subnet CIDR`);
}

/** A --subnet value a bridge can use: room for the gateway and one container, no overlap. */
export function checkSubnet(c: Cidr, taken: readonly Taken[]): Cidr {
  const text = cidrString(c);
  if (c.prefix < 8 || c.prefix > 30) throw new UsageError(`--subnet ${text}: use a prefix length from /8 to /30 (a /30 holds the gateway and one container)`);
  for (const r of RESERVED) {
    if (overlaps(r.cidr, c)) throw new UsageError(`--subnet ${text}: ${r.why}; pick a private range such as 10.77.0.0/24`);
  }
  const clash = taken.find((t) => overlaps(t.cidr, c));
  if (clash) throw new UsageError(`--subnet ${text} overlaps ${clash.what}; pick a subnet that does not`);
  return c;
}

export function gatewayOf(c: Cidr): number {
  return (c.base + 1) >>> 0;
}

/**
 * Why a fixed address (--ip) cannot be a container's in subnet c, or undefined: it must be in
 * the subnet, not its network or broadcast address nor the gateway (its first), and free.
 */
export function fixedAddressRefusal(c: Cidr, used: ReadonlySet<number>, address: number): string | undefined {
  if (!contains(c, address)) return "it is outside the network's subnet";
  if (address === c.base || address === (c.base + size(c) - 1) >>> 0) return "it is the subnet's network or broadcast address";
  if (address === c.base + 1) return "it is the network's gateway";
  if (used.has(address)) return "another container of the network has it";
  return undefined;
}

/**
 * The lowest free container address: after the gateway, before the broadcast address. Leases
 * are given out in order, so a container that comes back after a restart usually gets its old
 * address again.
 */
export function allocateAddress(c: Cidr, used: ReadonlySet<number>, preferred?: number): number | undefined {
  const last = c.base + size(c) - 2;
  // A restarted container's own address, when nobody took it meanwhile.
  if (preferred !== undefined && preferred >= c.base + 2 && preferred <= last && !used.has(preferred) && contains(c, preferred)) return preferred;
  for (let a = c.base + 2; a <= last; a++) {
    if (!used.has(a >>> 0) && contains(c, a >>> 0)) return a >>> 0;
  }
  return undefined;
}
