/**
 * corerun-net's own records, one JSON file under <stateRoot>/networks/, read and written under
 * one flock: the networks (bridge, subnet), the leases (one per container: address, veth, ports,
 * names) and what was last loaded into nftables. Every resource is recorded before it is created,
 * so a crash leaves a record that the next run can finish removing.
 */
import { mkdirSync, readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { join } from "node:path";
import * as v from "valibot";
import { lazy, span } from "@corerun/cli";
import { DEFAULT_ROOT, withLock, writeJsonAtomic } from "@corerun/state";

export const RECORDS_VERSION = 1;

const Ipv4 = lazy(() => v.pipe(v.string(), v.regex(/^\d{1,3}(\.\d{1,3}){3}$/)));
const Port = lazy(() => v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(65535)));

export const Protocol = lazy(() => v.picklist(["tcp", "udp"]));
export type Protocol = v.InferOutput<typeof Protocol>;

export const PublishedPort = lazy(() => v.object({
  /** Only packets to this host address; absent: every address of the host, 127.0.0.1 included. */
  hostIp: v.optional(Ipv4),
  hostPort: Port,
  containerPort: Port,
  protocol: Protocol,
}));
export type PublishedPort = v.InferOutput<typeof PublishedPort>;

export const NetworkRecord = lazy(() => v.object({
  name: v.string(),
  bridge: v.string(),
  subnet: v.string(),
  gateway: Ipv4,
  mac: v.string(),
  /** The bridge's ifindex when corerun-net created it: a link of that name and index is ours. */
  bridgeIndex: v.optional(v.number()),
  created: v.string(),
}));
export type NetworkRecord = v.InferOutput<typeof NetworkRecord>;

const ProcessRef = lazy(() => v.object({ pid: v.number(), startTime: v.number() }));

export const Lease = lazy(() => v.object({
  id: v.string(),
  network: v.string(),
  address: Ipv4,
  /** The host end of the veth pair; its peer is eth0 in the container. */
  veth: v.string(),
  vethIndex: v.optional(v.number()),
  /**
   * pending: recorded, being set up by `owner` (the corerun-net process); active: configured.
   * A pending lease whose owner is gone, or an active one whose veth is gone (the kernel deletes
   * the pair with the container's network namespace), belongs to a container that is no more.
   */
  state: v.picklist(["pending", "active"]),
  owner: ProcessRef,
  hostname: v.optional(v.string()),
  name: v.optional(v.string()),
  /** --network-alias: more names of it in the others' hosts files. */
  aliases: v.optional(v.array(v.string())),
  /** Where this container's hosts, resolv.conf and hostname live, to rewrite its hosts file. */
  etcDir: v.optional(v.string()),
  /** --add-host lines of its own hosts file, kept for each rewrite. */
  extraHosts: v.optional(v.array(v.string())),
  ports: v.array(PublishedPort),
  created: v.string(),
}));
export type Lease = v.InferOutput<typeof Lease>;

export const Records = lazy(() => v.object({
  version: v.literal(RECORDS_VERSION),
  networks: v.array(NetworkRecord),
  leases: v.array(Lease),
  /**
   * The table as last loaded into nftables, as the JSON text of the whole table (also when a
   * start only added its rules to it), and the boot it was loaded in. Without `ruleset` its
   * contents are unknown (nft was running, or an earlier version kept a digest): the next load
   * is of the whole table.
   */
  nft: v.optional(v.object({ bootId: v.string(), ruleset: v.optional(v.string()) })),
}));
export type Records = v.InferOutput<typeof Records>;

export function emptyRecords(): Records {
  return { version: RECORDS_VERSION, networks: [], leases: [] };
}

export interface NetPaths {
  dir: string;
  records: string;
  lock: string;
  /** The JSON nft was last given (the whole table, or the rules a start added), for nft -f. */
  ruleset: string;
  /** The nftables table for this state root: each root owns its own table. */
  table: string;
  /** The bridge network a container joins without -N: corerun0, or corerun_<hash> for another root. */
  defaultNetwork: string;
}

export const DEFAULT_TABLE = "corerun";

/**
 * /run/corerun owns table ip corerun and the bridge corerun0; any other state root (a test's, a
 * second installation's) owns corerun_<hash> for both, so that one root's records never claim
 * another root's bridge and regenerating one root's table never drops another root's rules.
 */
export function netPaths(root: string): NetPaths {
  const dir = join(root, "networks");
  const paths = { dir, records: join(dir, "networks.json"), lock: join(dir, "lock"), ruleset: join(dir, "ruleset.json") };
  // The default root's names need no hash, and no load of node:crypto (~4 ms) on its start path.
  if (root === DEFAULT_ROOT) return { ...paths, table: DEFAULT_TABLE, defaultNetwork: "corerun0" };
  const hash = createHash("sha256").update(root).digest("hex");
  return { ...paths, table: `${DEFAULT_TABLE}_${hash.slice(0, 8)}`, defaultNetwork: `corerun_${hash.slice(0, 7)}` };
}

export function readRecords(path: string): Records {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return emptyRecords();
    throw err;
  }
  const result = v.safeParse(Records, JSON.parse(text));
  if (!result.success) {
    const issue = result.issues[0];
    const where = issue.path?.map((p) => String(p.key)).join(".") ?? "";
    throw new Error(`invalid network records ${path}: ${where ? `${where}: ` : ""}${issue.message}`);
  }
  return result.output;
}

/**
 * Temp file and rename: a reader never sees half a file. No fsync: the leases and published
 * ports describe veths and nftables rules, which do not outlive the machine either.
 */
export function writeRecords(path: string, records: Records): string {
  return writeJsonAtomic(path, records, { durable: false });
}

/** What a step that runs nft under the records' lock needs of it (syncRuleset). */
export interface RecordsLock {
  /** The lock's fd, for nft to inherit: held until nft's end, should corerun-net die first. */
  fd: number;
  /**
   * Writes the records as last saved (or read), the table's contents marked unknown: what is on
   * disk while nft runs. The changes not saved yet stay out, so a refused load leaves the records
   * as they were, for the command to be run again.
   */
  markTableUnknown(boot: string): void;
}

/**
 * Runs fn on the records under the lock and writes them back when fn says they changed. Every
 * allocation (addresses, subnets, host ports, names) happens inside, so concurrent setups see
 * each other's leases.
 */
export function withRecords<T>(paths: NetPaths, fn: (records: Records, save: () => void, lock: RecordsLock) => T): T {
  mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
  return withLock(paths.lock, (fd) => {
    const records = span("read records", undefined, () => readRecords(paths.records));
    // The text last written here; until then the file is as it was read.
    let written: string | undefined;
    const write = (r: Records) => (written = writeRecords(paths.records, r));
    return fn(records, () => write(records), {
      fd,
      markTableUnknown(boot) {
        const onDisk = written === undefined ? readRecords(paths.records) : (JSON.parse(written) as Records);
        write({ ...onDisk, nft: { bootId: boot } });
      },
    });
  });
}
