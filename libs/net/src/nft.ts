/**
 * corerun's nftables table, generated whole from the records and loaded with one `nft -j -f`
 * transaction that deletes and recreates the table (or, when a container's DNAT rules are all
 * that is new, one that adds them: appendedRules). The kernel applies a transaction atomically,
 * so no packet sees a half-built table; no rule handles are kept, and a crashed run is repaired
 * by the next load, which is whole. A change made by hand inside the table lasts until the next
 * whole load (a removal, a new network). The table belongs to one state root (see netPaths) and
 * holds:
 *
 *   prerouting (nat, dstnat)   fib daddr type local jump ports        from other hosts and containers
 *   output     (nat, -100)     fib daddr type local jump ports        from the host itself, 127.0.0.1 included
 *   ports                      [ip daddr HOST_IP] tcp|udp dport P dnat to ADDR:PORT
 *   postrouting (nat, srcnat)  ip saddr 127.0.0.0/8 ip daddr @subnets ct status dnat masquerade
 *                              ip saddr @subnets ip daddr @subnets ct status dnat masquerade
 *                              ip saddr @subnets ip daddr != @subnets masquerade
 *
 * A connection from 127.0.0.1 keeps its loopback source after DNAT; the kernel routes such a
 * packet out of a non-loopback interface only when that interface has route_localnet=1 (set on
 * each bridge), and the container could not answer it, hence the first masquerade (netavark
 * does the same). The second covers a container reaching a published port of its own network
 * through a host address (hairpin): without it the answer would bypass the host's NAT.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { linuxSyscall, runProgram, type ProgramResult } from "@corerun/syscall";
import type { Records } from "./records.ts";

type Json = Record<string, unknown>;

const payload = (protocol: string, field: string) => ({ payload: { protocol, field } });
const eq = (left: unknown, right: unknown): Json => ({ match: { op: "==", left, right } });
const ne = (left: unknown, right: unknown): Json => ({ match: { op: "!=", left, right } });
const localDaddr = eq({ fib: { result: "type", flags: ["daddr"] } }, "local");

/** The commands for `nft -j -f -` that make the table match the records (or remove it). */
export function rulesetFor(records: Pick<Records, "networks" | "leases">, table: string): Json {
  const t = { family: "ip", table };
  const cmds: Json[] = [
    // add-then-delete: deleting a table that does not exist would fail the whole transaction.
    { add: { table: { family: "ip", name: table } } },
    { delete: { table: { family: "ip", name: table } } },
  ];
  if (records.networks.length > 0) {
    const chain = (name: string, hook?: string, prio?: number): Json =>
      ({ add: { chain: { ...t, name, ...(hook ? { type: "nat", hook, prio, policy: "accept" } : {}) } } });
    const rule = (chainName: string, expr: Json[], comment?: string): Json =>
      ({ add: { rule: { ...t, chain: chainName, expr, ...(comment ? { comment } : {}) } } });
    const subnets = records.networks.map((n) => {
      const [addr, len] = n.subnet.split("/");
      return { prefix: { addr, len: Number(len) } };
    });
    cmds.push(
      { add: { table: { family: "ip", name: table } } },
      { add: { set: { ...t, name: "subnets", type: "ipv4_addr", flags: ["interval"], elem: subnets } } },
      chain("ports"),
      chain("prerouting", "prerouting", -100),
      chain("output", "output", -100),
      chain("postrouting", "postrouting", 100),
      rule("prerouting", [localDaddr, { jump: { target: "ports" } }]),
      rule("output", [localDaddr, { jump: { target: "ports" } }]),
      rule("postrouting", [
        eq(payload("ip", "saddr"), { prefix: { addr: "127.0.0.0", len: 8 } }), eq(payload("ip", "daddr"), "@subnets"),
        { match: { op: "in", left: { ct: { key: "status" } }, right: "dnat" } }, { masquerade: null },
      ], "published ports reached through 127.0.0.1"),
      rule("postrouting", [
        eq(payload("ip", "saddr"), "@subnets"), eq(payload("ip", "daddr"), "@subnets"),
        { match: { op: "in", left: { ct: { key: "status" } }, right: "dnat" } }, { masquerade: null },
      ], "published ports reached from a container"),
      rule("postrouting", [eq(payload("ip", "saddr"), "@subnets"), ne(payload("ip", "daddr"), "@subnets"), { masquerade: null }], "outbound"),
      // route_localnet on the bridges lets published ports answer 127.0.0.1; without this a
      // container could send packets to 127.0.0.0/8 itself and reach the host's loopback-only
      // services (CVE-2020-8558). Replies to 127.0.0.1 clients still carry the gateway's address
      // here, before their masquerade is undone.
      { add: { chain: { ...t, name: "loopback", type: "filter", hook: "prerouting", prio: -300, policy: "accept" } } },
      rule("loopback", [
        eq({ meta: { key: "iifname" } }, { set: records.networks.map((n) => n.bridge) }),
        eq(payload("ip", "daddr"), { prefix: { addr: "127.0.0.0", len: 8 } }), { drop: null },
      ], "no container reaches the host's loopback"),
    );
    for (const lease of records.leases) {
      for (const p of lease.ports) {
        cmds.push(rule("ports", [
          ...(p.hostIp ? [eq(payload("ip", "daddr"), p.hostIp)] : []),
          eq(payload(p.protocol, "dport"), p.hostPort),
          { dnat: { addr: lease.address, port: p.containerPort } },
        ], lease.id));
      }
    }
  }
  return { nftables: cmds };
}

export function bootId(path = "/proc/sys/kernel/random/boot_id"): string {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return "unknown";
  }
}

/**
 * Loads a ruleset with nft(8), whose JSON parser is libnftables', the one its C API takes. The
 * ruleset goes through a file: Node hands a child its stdin as a socket, which nft cannot open
 * as /dev/stdin (ENXIO), and a command-line argument is capped at 128 KiB.
 */
export function loadRuleset(ruleset: Json, file: string, nft = "nft", lockFd?: number): void {
  writeFileSync(file, JSON.stringify(ruleset), { mode: 0o600 });
  let r: ProgramResult;
  try {
    r = runProgram(linuxSyscall, [nft, "-j", "-f", file], { timeoutMs: 30_000, inherit: lockFd === undefined ? [] : [lockFd] });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(code === "ENOENT" ? "nft is not installed; install nftables (apt-get install nftables)" : `cannot run nft: ${(err as Error).message}`);
  }
  if (r.exitCode !== 0) {
    const why = r.stderr.split("\n").map((l) => l.trim()).filter(Boolean).slice(0, 2).join(" ");
    const status = r.signal === undefined ? `exit ${r.exitCode}` : `signal ${r.signal}`;
    throw new Error(`nft refused corerun's ruleset ${file} (${status}): ${why || "no message"}`);
  }
}

/**
 * The rules to add to a table that holds `loaded` (the text of the ruleset last loaded) for it to
 * hold `ruleset`, when that is all that differs: a container with published ports joined, and
 * its DNAT rules come last (rulesetFor writes them in lease order). undefined otherwise. After a
 * transaction that deletes rules or set elements (as reloading the table does), the close of
 * nft's netlink socket waits until the kernel has freed them (strace: close 22 ms): nft takes
 * 15-20 ms here, against ~3 ms for one that only adds. So a start adds its rules, and the table
 * is reloaded whole only when something was removed or changed.
 */
export function appendedRules(loaded: string, ruleset: Json, text = JSON.stringify(ruleset)): Json | undefined {
  // Both texts are `{"nftables":[...]}` of whole commands: the new one extends the loaded one
  // exactly when it starts with the loaded commands followed by a comma.
  const head = loaded.slice(0, -2);
  if (!loaded.endsWith("]}") || !text.startsWith(`${head},`)) return undefined;
  const cmds = (ruleset as { nftables: Json[] }).nftables;
  const count = (JSON.parse(loaded) as { nftables: unknown[] }).nftables.length;
  const added = cmds.slice(count);
  const isPortRule = (c: Json) => (c.add as { rule?: { chain?: string } } | undefined)?.rule?.chain === "ports" && Object.keys(c).length === 1;
  return added.length > 0 && added.every(isPortRule) ? { nftables: added } : undefined;
}

/**
 * Loads the table when the records ask for something other than what was last loaded in this
 * boot; a container without published ports on an existing network changes nothing and costs
 * no process. Returns whether nft ran. The records keep the text of the whole table as it now
 * stands, also when only rules were added to it.
 */
export function syncRuleset(
  records: Records, table: string,
  opts: { boot: string; load: (r: Json) => void; markUnknown?: () => void; log?: ((m: string) => void) | undefined },
): boolean {
  const ruleset = rulesetFor(records, table);
  // Compared as the text itself, not a digest: exact, and no load of node:crypto (~4 ms) on the
  // start and teardown of every bridge container. A few kB in the records, under 300 bytes a port.
  const text = JSON.stringify(ruleset);
  const boot = opts.boot;
  if (records.nft?.ruleset === text && records.nft.bootId === boot) return false;
  // No table was ever loaded in this boot and none is wanted: nothing to remove.
  if (records.networks.length === 0 && (records.nft === undefined || records.nft.bootId !== boot)) {
    records.nft = { bootId: boot, ruleset: text };
    return false;
  }
  const loaded = records.nft?.bootId === boot ? records.nft.ruleset : undefined;
  const added = loaded === undefined ? undefined : appendedRules(loaded, ruleset, text);
  // While nft runs, the records say the table holds something unknown: a process killed before
  // it records the new text leaves the next one to load the table whole, not to add to (or
  // trust as current) a text the kernel no longer holds. A load that fails leaves it so.
  records.nft = { bootId: boot };
  opts.markUnknown?.();
  let whole = added === undefined;
  if (added) {
    try {
      opts.load(added);
    } catch (err) {
      // The table is not as recorded (removed by hand, `nft flush ruleset`): made whole again.
      opts.log?.(`${(err as Error).message}; loading table ip ${table} whole`);
      whole = true;
    }
  }
  if (whole) opts.load(ruleset);
  records.nft = { bootId: boot, ruleset: text };
  return true;
}
