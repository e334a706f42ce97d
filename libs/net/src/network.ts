/**
 * What corerun-net does: give a network namespace its network (bridge, veth, address, default
 * route, NAT, published ports, /etc files), take it away again, list and remove networks.
 *
 * setup, under the records lock:
 *   1. read the records; list the host's links; reclaim leases of containers that are gone
 *   2. check everything that can be refused (names, subnet, ports) and allocate an address
 *   3. record the lease (and a new network) as pending        ← nothing exists yet
 *   4. host socket:  [create bridge, look it up]  (new network only)
 *                    [bridge address, bridge up, veth pair (peer eth0 created in the container,
 *                     host end up and on the bridge), look the veth up]
 *   5. container socket: [look up eth0], then [eth0 up, its address, lo up, default route]
 *   6. nft, only when the table changes (a new network, published ports)
 *   7. mark the lease active; write the /etc files; refresh the network's other hosts files
 * A failure after 3 removes what was created and the records, so a refused setup leaves nothing.
 */
import { createHash } from "node:crypto";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { interfaceIndex, kernelRandom, openNetlink } from "@corerun/syscall";
import { faultPoint, span, UsageError } from "@corerun/cli";
import { isAlive, procStartTime } from "@corerun/state";
import { Rtnl } from "./client.ts";
import { ETC_FILES, extraHostLines, hostHostsFile, hostsFile, hostsFileOf, hostsLine, resolvConf, withDns, writeEtcFiles, writeHostsFile, type EtcExtras, type EtcFiles, type HostEntry } from "./etc.ts";
import { cidrString, formatIPv4, parseCidr, parseIPv4, type Cidr } from "./ip.ts";
import { bootId, loadRuleset, syncRuleset } from "./nft.ts";
import { checkOwnPorts, checkPortsFree, choosePorts, hostListeners, type Listener } from "./ports.ts";
import { netPaths, withRecords, type Lease, type NetPaths, type NetworkRecord, type PublishedPort, type Records, type RecordsLock } from "./records.ts";
import {
  decodeAddress, decodeLink, decodeRoute, deleteLink, dumpAddresses, dumpLinks, dumpRoutes, getLinkByName, newAddress, newBridge,
  macForAddress, macString, newDefaultRoute, newVethPair, RTN_MULTICAST, setHairpin, setLinkUp, type Link,
} from "./rtnl.ts";
import { allocateAddress, checkSubnet, chooseSubnet, fixedAddressRefusal, gatewayOf, type Taken } from "./subnet.ts";

export const DEFAULT_NETWORK = "corerun0";
export const CONTAINER_IFNAME = "eth0";

/** Everything corerun-net asks of the machine, so that tests can stand in for parts of it. */
export interface NetKernel {
  openHost(): Rtnl;
  openContainer(netns: NetnsRef): Rtnl;
  /** Writes a /proc/sys value (key relative to /proc/sys) unless it already holds it. */
  sysctl(key: string, value: string): void;
  listeners(): Listener[];
  isAlive(ref: { pid: number; startTime: number }): boolean;
  /** The index of the host's interface of that name (in the host socket's namespace), if any. */
  interfaceIndex(name: string): number | undefined;
  /**
   * Loads an nft JSON ruleset; `file` is where it may be kept (the records' directory). nft
   * inherits `lockFd` (the records' lock) and holds it until its end.
   */
  loadNft(ruleset: Record<string, unknown>, file: string, lockFd?: number): void;
  bootId(): string;
}

export interface NetnsRef {
  fd: number;
  path: string;
}

export const linuxNetKernel: NetKernel = {
  openHost: () => new Rtnl(openNetlink()),
  openContainer: (netns) => new Rtnl(openNetlink({ netns })),
  sysctl(key, value) {
    const path = join("/proc/sys", key);
    try {
      if (readFileSync(path, "utf8").trim() !== value) writeFileSync(path, value);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? "error";
      const hint = code === "EROFS" ? "/proc/sys is read-only in this namespace; run corerun-net in the host's" : "run as root";
      throw new Error(`cannot set ${key.replaceAll("/", ".")}=${value}: ${code}; ${hint}`);
    }
  },
  listeners: () => hostListeners(),
  isAlive: (ref) => isAlive(ref),
  interfaceIndex: (name) => interfaceIndex(name),
  loadNft: (ruleset, file, lockFd) => loadRuleset(ruleset, file, "nft", lockFd),
  bootId: () => bootId(),
};

/** Interface names: at most 15 bytes (IFNAMSIZ 16 with the NUL), no '/', ':' or whitespace. */
const BRIDGE_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,14}$/;
const VETH_NAME = /^cr[0-9a-f]{12}$/;
export const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
/** Docker's rule for container names. */
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** A network's name, which is its bridge's; `what` names the input in the error ("--net X"). */
export function checkNetworkName(name: string, what = `--net ${name}`): string {
  if (Buffer.byteLength(name) > 15) throw new UsageError(`${what}: a bridge name is at most 15 characters (it is ${Buffer.byteLength(name)})`);
  if (!BRIDGE_NAME.test(name)) throw new UsageError(`${what}: a bridge name starts with a letter and holds only letters, digits, '_', '.' and '-'`);
  if (VETH_NAME.test(name)) throw new UsageError(`${what}: names of the form cr<12 hex digits> are corerun's veth names; pick another`);
  return name;
}

export function checkId(id: string): string {
  if (!ID_RE.test(id)) throw new UsageError(`--id "${id}": use 1 to 128 letters, digits, '_', '.' or '-', starting with a letter or digit`);
  return id;
}

export function checkName(name: string | undefined, option = "--name"): string | undefined {
  if (name !== undefined && !NAME_RE.test(name)) throw new UsageError(`${option} "${name}": use letters, digits, '_', '.' and '-', starting with a letter or digit, at most 63`);
  return name;
}

/** --ip (corerun run, corerun-net setup): a dotted IPv4 address; whether the network has it free is setup's to say. */
export function parseIp(text: string | undefined, option = "--ip"): string | undefined {
  if (text !== undefined && parseIPv4(text) === undefined) throw new UsageError(`${option} ${text}: give an IPv4 address, such as 10.77.0.20`);
  return text;
}

export function parseSubnet(text: string | undefined): Cidr | undefined {
  if (text === undefined) return undefined;
  const c = parseCidr(text);
  if (typeof c === "string") throw new UsageError(`--subnet ${text}: ${c}`);
  return checkSubnet(c, []);
}

/** The host end of a container's veth pair: cr + the first 12 hex digits of its id (or of a hash). */
export function vethName(id: string): string {
  const hex = /^[0-9a-f]{12,}$/.test(id) ? id : createHash("sha256").update(id).digest("hex");
  return `cr${hex.slice(0, 12)}`;
}

function randomMac(): string {
  const b = kernelRandom(6);
  // Locally administered (bit 1), unicast (bit 0 clear).
  b[0] = (b[0]! & 0xfe) | 0x02;
  return macString(b)!;
}

function selfRef(): { pid: number; startTime: number } {
  return { pid: process.pid, startTime: procStartTime(process.pid) ?? 0 };
}

function cidrOf(text: string): Cidr {
  const c = parseCidr(text);
  if (typeof c === "string") throw new Error(`invalid subnet in the records: ${text}`);
  return c;
}

export interface SetupOptions {
  root: string;
  id: string;
  netns: NetnsRef;
  network: string;
  subnet?: Cidr | undefined;
  ports: PublishedPort[];
  hostname?: string | undefined;
  name?: string | undefined;
  etcDir?: string | undefined;
  /** --add-host, --dns, --dns-search, --dns-option for the /etc files. */
  extras?: EtcExtras | undefined;
  log?: (msg: string) => void;
  /** Taken when free: a restarted container's last address, and host ports for its -P without one. */
  prefer?: { address?: string | undefined; ports: PublishedPort[] } | undefined;
  /** --ip: this address or none (refused when it is taken or outside the subnet). */
  ip?: string | undefined;
  /** --network-alias: more names of the container in its network's hosts files. */
  aliases?: string[] | undefined;
}

export interface SetupResult {
  id: string;
  network: string;
  bridge?: string;
  subnet?: string;
  interface: string;
  hostInterface?: string;
  address?: string;
  prefixLength?: number;
  gateway?: string;
  mac?: string;
  ports: PublishedPort[];
  hostname?: string;
  etc?: { hosts: string; resolv: string; hostname: string };
}

/** A container in its own hosts file: `ADDRESS HOSTNAME NAME`. */
const selfEntry = (l: Lease): HostEntry => ({ address: l.address, names: [l.hostname ?? "", l.name ?? ""] });
/** A container in the others' hosts files: `ADDRESS NAME HOSTNAME ALIAS...`. */
const peerEntry = (l: Lease): HostEntry => ({ address: l.address, names: [l.name ?? "", l.hostname ?? "", ...(l.aliases ?? [])] });

/**
 * The set-up containers of a network, each with its line of the others' hosts files: a network
 * of n containers has n files of n lines, each line made once here for all of them (made per
 * file, they cost ~5 ms of a start or teardown at 50 containers).
 */
function networkHosts(records: Records, network: string): { lease: Lease; line: string | undefined }[] {
  return records.leases.filter((l) => l.network === network && l.state === "active").map((lease) => ({ lease, line: hostsLine(peerEntry(lease)) }));
}

/** A container's hosts file: itself, then the others of its network (networkHosts). */
function hostsOf(lease: Lease, members: ReturnType<typeof networkHosts>): string {
  return hostsFileOf(selfEntry(lease), members.filter((m) => m.lease.id !== lease.id).map((m) => m.line), lease.extraHosts);
}

/** The containers of a network as /etc/hosts lines, the given one left out. */
function peersOf(records: Records, network: string, except: string): HostEntry[] {
  return records.leases.filter((l) => l.network === network && l.id !== except && l.state === "active").map(peerEntry);
}

function leaseHosts(records: Records, lease: Lease): string {
  return hostsOf(lease, networkHosts(records, lease.network));
}

/** Rewrites the hosts file of every other container of the network (a container came or went). */
function refreshPeers(records: Records, network: string, except: string, log?: (m: string) => void): void {
  const members = networkHosts(records, network);
  for (const { lease: l } of members) {
    if (l.id === except || !l.etcDir) continue;
    try {
      writeHostsFile(l.etcDir, hostsOf(l, members));
    } catch (err) {
      // The container's files may be gone with it; its lease is reclaimed later.
      log?.(`cannot refresh ${join(l.etcDir, ETC_FILES.hosts)}: ${(err as Error).message}`);
    }
  }
}

/** Lookups per datagram: their answers (about 1.3 KiB each) stay well within one receive buffer. */
const LOOKUP_BATCH = 32;

/**
 * The host's links of these names, each looked up by name: a start needs a few, never the whole
 * host's list, whose dump costs time in proportion to every interface of the host (every other
 * container's veth, other runtimes' links).
 */
function linksNamed(host: Rtnl, names: Iterable<string>): Link[] {
  const wanted = [...new Set(names)];
  const out: Link[] = [];
  for (let at = 0; at < wanted.length; at += LOOKUP_BATCH) {
    for (const r of host.results(wanted.slice(at, at + LOOKUP_BATCH).map(getLinkByName))) {
      if (r.ok && r.replies[0]) out.push(decodeLink(r.replies[0]));
      else if (!r.ok && r.error.code !== "ENODEV") throw r.error;
    }
  }
  return out;
}

/**
 * Removes the leases of containers that are gone: a pending lease whose corerun-net died (its
 * veth, if it got that far, is deleted: the name was recorded before the link was made), and an
 * active lease whose veth is gone (the kernel deletes the pair with the network namespace).
 * Every lease is checked on every setup and teardown, by interface index (one ioctl each), so
 * the check stays a small part of a start however many containers run.
 */
function reclaim(records: Records, host: Rtnl, kernel: NetKernel, log?: (m: string) => void): Lease[] {
  const stale = records.leases.filter((l) => {
    if (l.state === "pending") return !kernel.isAlive(l.owner);
    const index = kernel.interfaceIndex(l.veth);
    return index === undefined || (l.vethIndex !== undefined && index !== l.vethIndex);
  });
  const links = stale.length ? linksNamed(host, stale.map((l) => l.veth)) : [];
  for (const l of stale) {
    const link = links.find((k) => k.name === l.veth && k.kind === "veth" && (l.vethIndex === undefined || k.index === l.vethIndex));
    if (link) host.results([deleteLink(link)]);
    log?.(`reclaimed ${l.address} of container ${l.id}, which is gone`);
  }
  records.leases = records.leases.filter((l) => !stale.includes(l));
  for (const net of new Set(stale.map((l) => l.network))) refreshPeers(records, net, "", log);
  return stale;
}

/** Fails unless each host IP that a port names is an address of this host (or loopback). */
function checkHostIps(ports: readonly PublishedPort[], host: Rtnl): void {
  const wanted = ports.filter((p) => p.hostIp && !p.hostIp.startsWith("127."));
  if (wanted.length === 0) return;
  const mine = new Set(host.dump(dumpAddresses()).map(decodeAddress).map((a) => a.address));
  for (const p of wanted) {
    if (!mine.has(p.hostIp!)) throw new UsageError(`-P ${p.hostIp}:${p.hostPort}:${p.containerPort}: ${p.hostIp} is not an address of this host`);
  }
}

function takenSpace(records: Records, links: Link[], host: Rtnl, except?: string): Taken[] {
  const ours = new Set(links.filter((l) => records.networks.some((n) => n.bridge === l.name)).map((l) => l.index));
  const routes = host.dump(dumpRoutes()).map(decodeRoute)
    .filter((r) => r.dstLength > 0 && r.type !== RTN_MULTICAST && !(r.oif !== undefined && ours.has(r.oif)));
  return [
    ...routes.map((r) => ({ cidr: { base: parseIPv4(r.dst)!, prefix: r.dstLength }, what: `the host route ${r.dst}/${r.dstLength}` })),
    ...records.networks.filter((n) => n.name !== except).map((n) => ({ cidr: cidrOf(n.subnet), what: `corerun network ${n.name} (${n.subnet})` })),
  ];
}

/** Refuses a target that is the host's own network namespace: setup would rewire the host. */
export function checkNotHostNetns(netns: NetnsRef): void {
  const target = statSync(`/proc/self/fd/${netns.fd}`);
  const own = statSync("/proc/thread-self/ns/net");
  if (target.ino === own.ino && target.dev === own.dev) {
    throw new UsageError(`${netns.path} is the host's own network namespace; give the container's (--pid of a process in it, or --netns)`);
  }
}

export function setupBridge(opts: SetupOptions, kernel: NetKernel = linuxNetKernel): SetupResult {
  const paths = netPaths(opts.root);
  checkOwnPorts(opts.ports);
  const host = kernel.openHost();
  const ctr = kernel.openContainer(opts.netns);
  try {
    return withRecords(paths, (records, save, lock) => {
      const links = span("look up bridge", { bridge: opts.network }, () => linksNamed(host, [opts.network]));
      span("reclaim", { leases: records.leases.length }, () => reclaim(records, host, kernel, opts.log));

      const held = records.leases.find((l) => l.id === opts.id);
      if (held) throw new UsageError(`container ${opts.id} already has ${held.address} on network ${held.network}; run corerun-net teardown --id ${opts.id} first`);
      if (opts.name) {
        const other = records.leases.find((l) => l.name === opts.name);
        if (other) throw new UsageError(`--name ${opts.name} is already used by container ${other.id}`);
      }
      let net = records.networks.find((n) => n.name === opts.network);
      const isNew = net === undefined;
      let bridge = links.find((l) => l.name === opts.network);
      if (net) {
        if (opts.subnet && cidrString(opts.subnet) !== net.subnet) {
          throw new UsageError(`--subnet ${cidrString(opts.subnet)}: network ${net.name} exists with subnet ${net.subnet}; leave --subnet out, or remove the network first (corerun-net rm ${net.name})`);
        }
        if (bridge && (bridge.kind !== "bridge" || (net.bridgeIndex !== undefined && bridge.index !== net.bridgeIndex))) {
          throw new UsageError(`--net ${net.name}: the interface ${bridge.name} is not the bridge corerun created; remove it or pick another network`);
        }
      } else {
        if (bridge) throw new UsageError(`--net ${opts.network}: an interface named ${opts.network} already exists and corerun did not create it; pick another name`);
        const taken = takenSpace(records, linksNamed(host, records.networks.map((n) => n.bridge)), host);
        const subnet = opts.subnet ? checkSubnet(opts.subnet, taken) : chooseSubnet(taken);
        net = { name: opts.network, bridge: opts.network, subnet: cidrString(subnet), gateway: formatIPv4(gatewayOf(subnet)), mac: randomMac(), created: new Date().toISOString() };
      }
      const network: NetworkRecord = net;
      const subnet = cidrOf(network.subnet);
      const { ports, addr } = span("allocate", { network: network.name }, () => {
        // The host's listening sockets (four sock_diag dumps) matter only to a container that
        // publishes ports.
        const listeners = opts.ports.length ? kernel.listeners() : [];
        checkPortsFree(opts.ports.filter((p) => p.hostPort !== 0), records.leases, listeners);
        const ports = choosePorts(opts.ports, records.leases, listeners, undefined, undefined, opts.prefer?.ports);
        checkHostIps(ports, host);
        const used = new Set(records.leases.filter((l) => l.network === network.name).map((l) => parseIPv4(l.address)!));
        if (opts.ip !== undefined) {
          const fixed = parseIPv4(opts.ip)!;
          const why = fixedAddressRefusal(subnet, used, fixed);
          if (why) throw new UsageError(`--ip ${opts.ip}: ${why}; network ${network.name} is ${network.subnet}, give a free address in it`);
          return { ports, addr: fixed };
        }
        const addr = allocateAddress(subnet, used, opts.prefer?.address === undefined ? undefined : parseIPv4(opts.prefer.address));
        if (addr === undefined) throw new UsageError(`network ${network.name} (${network.subnet}) has no free address left`);
        return { ports, addr };
      });

      const lease: Lease = {
        id: opts.id, network: network.name, address: formatIPv4(addr), veth: vethName(opts.id), state: "pending", owner: selfRef(),
        ports, created: new Date().toISOString(),
        hostname: opts.hostname ?? opts.id, ...(opts.name ? { name: opts.name } : {}), ...(opts.aliases?.length ? { aliases: opts.aliases } : {}), ...(opts.etcDir ? { etcDir: opts.etcDir } : {}),
        ...(opts.extras?.hosts?.length ? { extraHosts: extraHostLines(opts.extras.hosts, network.gateway) } : {}),
      };
      if (isNew) records.networks.push(network);
      records.leases.push(lease);
      span("record lease", { address: lease.address }, save);
      faultPoint("net:lease");

      const made = { bridge: false, veth: undefined as Link | undefined };
      try {
        if (!bridge) {
          if (network.bridgeIndex !== undefined) {
            // The recorded bridge is gone; until the new one's index is known, its name is the record.
            delete network.bridgeIndex;
            save();
          }
          const r = span("create bridge", { bridge: network.bridge, subnet: network.subnet }, () => host.results([newBridge(network.bridge, network.mac), getLinkByName(network.bridge)]));
          if (!r[0]!.ok) throw r[0]!.error;
          made.bridge = true;
          if (!r[1]!.ok) throw r[1]!.error;
          bridge = decodeLink(r[1]!.replies[0]!);
          network.bridgeIndex = bridge.index;
          save();
          opts.log?.(`created bridge ${network.bridge} (${network.subnet})`);
          faultPoint("net:bridge");
        }
        // route_localnet lets DNATed connections from 127.0.0.1 leave through the bridge;
        // forwarding lets the host route between the bridge and everything else.
        span("sysctls", { bridge: network.bridge }, () => {
          kernel.sysctl(`net/ipv4/conf/${network.bridge}/route_localnet`, "1");
          kernel.sysctl("net/ipv4/ip_forward", "1");
        });
        const br = bridge;
        const r = span("veth pair", { veth: lease.veth, peer: CONTAINER_IFNAME, bridge: network.bridge }, () => host.results([
          newAddress({ index: br.index, name: network.bridge, address: network.gateway, prefixLength: subnet.prefix, replace: true }),
          setLinkUp({ index: br.index, name: network.bridge }),
          newVethPair({ name: lease.veth, master: br.index, peerName: CONTAINER_IFNAME, peerNetns: { fd: opts.netns.fd }, peerMac: macForAddress(lease.address) }),
          getLinkByName(lease.veth),
        ]));
        if (r[2]!.ok) {
          made.veth = r[3]!.ok ? decodeLink(r[3]!.replies[0]!) : { index: 0, name: lease.veth, flags: 0, kind: "veth", master: undefined, mac: undefined };
          if (made.veth.index) lease.vethIndex = made.veth.index;
        }
        const failed = r.find((x) => !x.ok);
        if (failed && !failed.ok) throw failed.error;
        const port = made.veth!;
        const hairpin = span("hairpin mode", { veth: port.name }, () => host.results([setHairpin(port)]))[0]!;
        if (!hairpin.ok) throw hairpin.error;
        faultPoint("net:veth");

        const eth0 = span("container address", { interface: CONTAINER_IFNAME, address: lease.address, gateway: network.gateway }, () => {
          const [eth0Reply] = ctr.batch([getLinkByName(CONTAINER_IFNAME)])[0]!;
          const eth0 = decodeLink(eth0Reply!);
          ctr.batch([
            setLinkUp({ index: eth0.index, name: CONTAINER_IFNAME }),
            newAddress({ index: eth0.index, name: CONTAINER_IFNAME, address: lease.address, prefixLength: subnet.prefix }),
            setLinkUp({ name: "lo" }),
            newDefaultRoute({ gateway: network.gateway, index: eth0.index, name: CONTAINER_IFNAME }),
          ]);
          return eth0;
        });
        faultPoint("net:address");
        if (span("nft ruleset", { table: paths.table, ports: opts.ports.length }, () => syncRuleset(records, paths.table, nftOpts(kernel, paths, lock, opts.log)))) opts.log?.(`loaded nftables table ip ${paths.table}`);
        faultPoint("net:nft");
        lease.state = "active";
        span("record lease", { state: "active" }, save);
        faultPoint("net:active");

        const result: SetupResult = {
          id: opts.id, network: network.name, bridge: network.bridge, subnet: network.subnet, interface: CONTAINER_IFNAME, hostInterface: lease.veth,
          address: lease.address, prefixLength: subnet.prefix, gateway: network.gateway, ports,
          ...(eth0.mac ? { mac: eth0.mac } : {}), ...(opts.hostname ? { hostname: opts.hostname } : {}),
        };
        if (opts.etcDir) {
          span("write /etc files", { dir: opts.etcDir }, () => writeEtcFiles(opts.etcDir!, { hostname: opts.hostname ?? opts.id, hosts: leaseHosts(records, lease), resolv: withDns(resolvConf({ mode: "private" }), opts.extras ?? {}) }));
          result.etc = etcPaths(opts.etcDir);
          faultPoint("net:etc");
        }
        span("refresh peers", { network: network.name }, () => refreshPeers(records, network.name, opts.id, opts.log));
        return result;
      } catch (err) {
        undoSetup(records, save, { network, isNew, lease, made, host, paths, kernel, lock, log: opts.log });
        throw err;
      }
    });
  } finally {
    host.close();
    ctr.close();
  }
}

function undoSetup(
  records: Records, save: () => void,
  s: { network: NetworkRecord; isNew: boolean; lease: Lease; made: { bridge: boolean; veth: Link | undefined }; host: Rtnl; paths: NetPaths; kernel: NetKernel; lock: RecordsLock; log?: ((m: string) => void) | undefined },
): void {
  const gone = (r: ReturnType<Rtnl["results"]>[number] | undefined) => r === undefined || r.ok || r.error.code === "ENODEV";
  if (s.made.veth) {
    const [r] = s.host.results([deleteLink(s.made.veth)]);
    if (!gone(r)) s.log?.(`cleanup: ${r!.ok ? "" : r!.error.message}`);
  }
  let bridgeGone = true;
  if (s.made.bridge) {
    const [r] = s.host.results([deleteLink({ index: s.network.bridgeIndex ?? 0, name: s.network.bridge })]);
    bridgeGone = gone(r);
    if (!bridgeGone) s.log?.(`cleanup: ${r!.ok ? "" : r!.error.message}`);
  }
  records.leases = records.leases.filter((l) => l !== s.lease);
  // A bridge that could not be deleted keeps its record, so that `corerun-net rm` can retry.
  if (s.isNew && bridgeGone) records.networks = records.networks.filter((n) => n !== s.network);
  try {
    syncRuleset(records, s.paths.table, nftOpts(s.kernel, s.paths, s.lock, s.log));
  } catch (err) {
    s.log?.(`cleanup: ${(err as Error).message}`);
  }
  save();
}

/**
 * How syncRuleset loads this root's table: nft holds the records' lock until its end (a nft that
 * outlived a killed corerun-net could otherwise commit after the next one's load), and the
 * records on disk say the table is unknown while it runs.
 */
function nftOpts(kernel: NetKernel, paths: NetPaths, lock: RecordsLock, log?: (m: string) => void): Parameters<typeof syncRuleset>[2] {
  const boot = kernel.bootId();
  return { boot, load: (r) => kernel.loadNft(r, paths.ruleset, lock.fd), markUnknown: () => lock.markTableUnknown(boot), log };
}

export function etcPaths(dir: string): { hosts: string; resolv: string; hostname: string } {
  return { hosts: join(dir, ETC_FILES.hosts), resolv: join(dir, ETC_FILES.resolv), hostname: join(dir, ETC_FILES.hostname) };
}

/** none mode: loopback up (corerun-ns does it too; a netns from `ip netns add` starts with it down). */
export function setupNone(opts: Pick<SetupOptions, "id" | "netns" | "hostname" | "etcDir" | "extras">, kernel: NetKernel = linuxNetKernel): SetupResult {
  const ctr = kernel.openContainer(opts.netns);
  try {
    ctr.batch([setLinkUp({ name: "lo" })]);
  } finally {
    ctr.close();
  }
  const result: SetupResult = { id: opts.id, network: "none", interface: "lo", ports: [], ...(opts.hostname ? { hostname: opts.hostname } : {}) };
  if (opts.etcDir) {
    const extras = opts.extras ?? {};
    writeEtcFiles(opts.etcDir, { hostname: opts.hostname ?? opts.id, hosts: hostsFileOf({ names: [opts.hostname ?? opts.id] }, [], extraHostLines(extras.hosts)), resolv: withDns(resolvConf({ mode: "private" }), extras) });
    result.etc = etcPaths(opts.etcDir);
  }
  return result;
}

export interface TeardownResult {
  id: string;
  removed: boolean;
  network?: string;
  address?: string;
  hostInterface?: string;
  ports?: PublishedPort[];
}

/**
 * Deletes the container's veth (if the kernel has not already, with its namespace), releases
 * its lease and its ports, and reloads the nft table if it changes. Idempotent: a second call,
 * or one for a container that never had a bridge network, reports removed: false.
 */
export function teardown(opts: { root: string; id: string; log?: (m: string) => void }, kernel: NetKernel = linuxNetKernel): TeardownResult {
  const paths = netPaths(opts.root);
  const host = kernel.openHost();
  try {
    return withRecords(paths, (records, save, lock) => {
      const lease = records.leases.find((l) => l.id === opts.id);
      if (!lease) {
        if (reclaim(records, host, kernel, opts.log).length) {
          syncRuleset(records, paths.table, nftOpts(kernel, paths, lock, opts.log));
          save();
        }
        return { id: opts.id, removed: false };
      }
      const link = linksNamed(host, [lease.veth]).find((k) => k.kind === "veth" && (lease.vethIndex === undefined || k.index === lease.vethIndex));
      if (link) {
        const [r] = span("delete veth", { veth: link.name }, () => host.results([deleteLink(link)]));
        // ENODEV: the kernel deleted the pair meanwhile, with the container's namespace.
        if (r && !r.ok && r.error.code !== "ENODEV") throw r.error;
      }
      // The veth is gone, by this delete or by the kernel with the namespace (which of the two
      // is a race the exit decides), and the lease is still recorded: a step every teardown of a
      // lease passes, so that a kill here is tested whoever removed the veth.
      faultPoint("net:teardown-veth");
      records.leases = records.leases.filter((l) => l !== lease);
      span("reclaim", { leases: records.leases.length }, () => reclaim(records, host, kernel, opts.log));
      span("nft ruleset", { table: paths.table }, () => syncRuleset(records, paths.table, nftOpts(kernel, paths, lock, opts.log)));
      span("record release", undefined, save);
      span("refresh peers", { network: lease.network }, () => refreshPeers(records, lease.network, lease.id, opts.log));
      return { id: opts.id, removed: true, network: lease.network, address: lease.address, hostInterface: lease.veth, ports: lease.ports };
    });
  } finally {
    host.close();
  }
}

export interface NetworkInfo {
  name: string;
  bridge: string;
  subnet: string;
  gateway: string;
  containers: string[];
  /** Whether the bridge exists right now (it is recreated on the next setup otherwise). */
  present: boolean;
}

export function listNetworks(opts: { root: string }, kernel: NetKernel = linuxNetKernel): NetworkInfo[] {
  const paths = netPaths(opts.root);
  const host = kernel.openHost();
  try {
    return withRecords(paths, (records) => {
      const links = host.dump(dumpLinks()).map(decodeLink);
      return records.networks.map((n) => ({
        name: n.name, bridge: n.bridge, subnet: n.subnet, gateway: n.gateway,
        containers: records.leases.filter((l) => l.network === n.name).map((l) => l.id),
        present: links.some((l) => l.name === n.bridge && l.kind === "bridge"),
      }));
    });
  } finally {
    host.close();
  }
}

/**
 * Removes networks and their bridges: the named ones (refused while a container uses one), or
 * with names undefined every network no container uses (prune). Returns the names removed.
 */
export function removeNetworks(opts: { root: string; names?: string[]; log?: (m: string) => void }, kernel: NetKernel = linuxNetKernel): string[] {
  const paths = netPaths(opts.root);
  const host = kernel.openHost();
  try {
    return withRecords(paths, (records, save, lock) => {
      const links = host.dump(dumpLinks()).map(decodeLink);
      reclaim(records, host, kernel, opts.log);
      const unused = (n: NetworkRecord) => !records.leases.some((l) => l.network === n.name);
      let targets: NetworkRecord[];
      if (opts.names) {
        targets = opts.names.map((name) => {
          const n = records.networks.find((x) => x.name === name);
          if (!n) throw new UsageError(`no network named ${name}; see corerun-net ls`);
          if (!unused(n)) {
            const ids = records.leases.filter((l) => l.network === name).map((l) => l.id);
            throw new UsageError(`network ${name} is in use by ${ids.length === 1 ? "container" : "containers"} ${ids.join(", ")}; tear ${ids.length === 1 ? "it" : "them"} down first`);
          }
          return n;
        });
      } else {
        targets = records.networks.filter(unused);
      }
      const doomed = targets
        .map((n) => links.find((l) => l.name === n.bridge && l.kind === "bridge" && (n.bridgeIndex === undefined || l.index === n.bridgeIndex)))
        .filter((l): l is Link => l !== undefined);
      for (const r of host.results(doomed.map(deleteLink))) {
        if (!r.ok && r.error.code !== "ENODEV") throw r.error;
      }
      records.networks = records.networks.filter((n) => !targets.includes(n));
      syncRuleset(records, paths.table, nftOpts(kernel, paths, lock, opts.log));
      save();
      return targets.map((n) => n.name);
    });
  } finally {
    host.close();
  }
}

export type EtcMode = { mode: "none" } | { mode: "host" } | { mode: "container"; container: string };

/**
 * The /etc files for a container that corerun-net does not set up a network for: none (own
 * loopback), host (the host's hosts and resolv.conf), container:ID (another container's network
 * namespace: its address, its network's peers, and its names next to this one's).
 */
export function etcFilesFor(opts: { root: string; id: string; hostname?: string | undefined; name?: string | undefined; extras?: EtcExtras | undefined } & EtcMode): EtcFiles {
  const hostname = opts.hostname ?? opts.id;
  const names = [hostname, opts.name ?? ""];
  const extras = opts.extras ?? {};
  // The host's network: its own files, and the --add-host lines after its hosts file's.
  if (opts.mode === "host") return { hostname, hosts: `${hostHostsFile()}${extraHostLines(extras.hosts).map((l) => `${l}\n`).join("")}`, resolv: withDns(resolvConf({ mode: "host" }), extras) };
  if (opts.mode === "none") return { hostname, hosts: hostsFileOf({ names }, [], extraHostLines(extras.hosts)), resolv: withDns(resolvConf({ mode: "private" }), extras) };
  const other = opts.container;
  const paths = netPaths(opts.root);
  return withRecords(paths, (records) => {
    const lease = records.leases.find((l) => l.id === other || (l.name !== undefined && l.name === other));
    if (!lease) return { hostname, hosts: hostsFile({ names: [...names, other] }), resolv: resolvConf({ mode: "private" }) };
    const peers: HostEntry[] = [peerEntry(lease), ...peersOf(records, lease.network, lease.id)];
    return { hostname, hosts: hostsFile({ address: lease.address, names }, peers), resolv: resolvConf({ mode: "private" }) };
  });
}
