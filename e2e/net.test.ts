/**
 * corerun-net on real network namespaces, as root. Containers are started with corerun-ns (net,
 * uts, pid and mount namespaces, on the host's filesystem) and given their network by
 * corerun-net directly; a network namespace made with `ip netns add` and joined to the host by
 * a veth stands in for a remote machine. All traffic stays between the host and namespaces this
 * file creates: bridges crtest0/crtest1 on 10.213.0.0/24 and 10.213.1.0/24, the remote link on
 * 198.18.0.0/24 (the benchmarking range). Only names this file creates are ever deleted, and
 * each test checks that nothing it made is left: veths, leases, nft rules.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createSocket, type Socket } from "node:dgram";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { BIN, busyboxRootfs, isRoot, REPO, removeStateRoot, stateRoot } from "./helpers.ts";
import { netPaths } from "@corerun/net";

const REMOTE_NS = "crtest-remote";
const HOST_END = "crtest-h";
const REMOTE_END = "crtest-r";
const HOST_ADDR = "198.18.0.1";
const REMOTE_ADDR = "198.18.0.2";

let root = "";
let work = "";
let busybox = "";
let table = "";

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Result {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 60_000, ...opts });
  return { code: r.status, stdout: String(r.stdout ?? ""), stderr: String(r.stderr ?? "") };
}

function must(cmd: string, args: string[]): string {
  const r = run(cmd, args);
  assert.equal(r.code, 0, `${cmd} ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** corerun-net COMMAND --root ROOT ARGS... (options go before rm's names). */
function net(command: string, ...args: string[]): Result {
  return run(join(BIN, "corerun-net"), [command, "--root", root, ...args]);
}

function netAsync(command: string, ...args: string[]): Promise<Result> {
  const child = spawn(join(BIN, "corerun-net"), [command, "--root", root, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  return once(child, "exit").then(([code]) => ({ code: code as number | null, stdout, stderr }));
}

interface SetupJson {
  address: string;
  gateway: string;
  interface: string;
  hostInterface: string;
  bridge: string;
  subnet: string;
  prefixLength: number;
  mac: string;
}

function setupOk(...args: string[]): SetupJson {
  const r = net("setup", ...args);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as SetupJson;
}

interface Container {
  pid: number;
  child: ChildProcess;
  etc: string;
}

const containers: Container[] = [];

/**
 * A container: corerun-ns with its own net, uts, pid and mount namespaces. The command sees the
 * host's files; its /etc/hosts is the per-container file, bind-mounted inside its private mount
 * namespace before corerun-net writes it, as corerun does.
 */
async function startContainer(name: string, cmd: string[]): Promise<Container> {
  const etc = join(work, `${name}-etc`);
  mkdirSync(etc);
  for (const f of ["hosts", "resolv.conf", "hostname"]) writeFileSync(join(etc, f), "");
  const pidFile = join(work, `${name}.pid`);
  const script = 'mount --bind "$1/hosts" /etc/hosts && shift && exec "$@"';
  const child = spawn(join(BIN, "corerun-ns"), ["--ns", "net,uts,pid,mount", "--pid-file", pidFile, "--", busybox, "sh", "-c", script, "sh", etc, ...cmd], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  for (let i = 0; i < 400 && !existsSync(pidFile); i++) await sleep(25);
  const pid = Number(readFileSync(pidFile, "utf8"));
  // Wait until the bind mount is in place (the shell has exec'd the command).
  for (let i = 0; i < 400 && readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("mount --bind"); i++) await sleep(10);
  const c = { pid, child, etc };
  containers.push(c);
  return c;
}

async function stopContainer(c: Container): Promise<void> {
  if (c.child.exitCode === null && c.child.signalCode === null) {
    try {
      process.kill(c.pid, "SIGKILL");
    } catch {
      // already gone
    }
    await once(c.child, "exit");
  }
}

function httpd(name: string): string[] {
  const www = join(work, `${name}-www`);
  mkdirSync(www);
  writeFileSync(join(www, "index.html"), `hello from ${name}\n`);
  return [busybox, "httpd", "-f", "-p", "80", "-h", www];
}

/** A command inside a container's network (and mount) namespace. */
function inContainer(c: Container, cmd: string[], mount = false): Result {
  return run("nsenter", ["-t", String(c.pid), "-n", ...(mount ? ["-m"] : []), "--", ...cmd]);
}

/** busybox wget with an outer timeout (this busybox's own -T crashes it). */
function wget(url: string): string[] {
  return ["timeout", "10", busybox, "wget", "-q", "-O", "-", url];
}

const UDP_ECHO = `const s=require("dgram").createSocket("udp4");s.on("message",(m,r)=>s.send(Buffer.concat([Buffer.from("echo "),m]),r.port,r.address));s.bind(53);`;
const UDP_CLIENT = `const [h,p]=process.argv.slice(1);const s=require("dgram").createSocket("udp4");let n=0;const go=()=>s.send("ping",Number(p),h);
s.on("message",(m)=>{process.stdout.write(String(m));process.exit(0)});s.on("error",()=>{});go();setInterval(()=>{if(++n>50)process.exit(1);go()},100);`;

function links(): string[] {
  return must("ip", ["-o", "link", "show"]).split("\n").map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1]).filter((x): x is string => !!x);
}

function records(): { networks: { name: string }[]; leases: { id: string; address: string; veth: string; ports: unknown[] }[] } {
  const p = netPaths(root).records;
  return existsSync(p) ? JSON.parse(readFileSync(p, "utf8")) : { networks: [], leases: [] };
}

/** Our table's handle: a table deleted and made again gets a new one. */
function tableHandle(): number | undefined {
  const r = run("nft", ["-j", "list", "table", "ip", table]);
  if (r.code !== 0) return undefined;
  return (JSON.parse(r.stdout) as { nftables: { table?: { handle: number } }[] }).nftables.find((i) => i.table)?.table?.handle;
}

/** The DNAT rules of our table that mention a container id (the rule comment). */
function nftRulesFor(id: string): number {
  const r = run("nft", ["-j", "list", "table", "ip", table]);
  if (r.code !== 0) return 0;
  const items = (JSON.parse(r.stdout) as { nftables: { rule?: { comment?: string } }[] }).nftables;
  return items.filter((i) => i.rule?.comment === id).length;
}

function snapshot(): string {
  const r = run("nft", ["list", "table", "ip", table]);
  const recs = existsSync(netPaths(root).records) ? readFileSync(netPaths(root).records, "utf8") : "";
  return JSON.stringify({ links: links().sort(), nft: r.code === 0 ? r.stdout : "absent", recs });
}

describe("corerun-net", { skip: !isRoot && "needs root" }, () => {
  let a: Container;
  let b: Container;
  let aVeth = "";
  let bVeth = "";

  before(() => {
    busybox = join(busyboxRootfs(), "bin/busybox");
    root = stateRoot();
    table = netPaths(root).table;
    work = mkdtempSync(join(tmpdir(), "corerun-net-e2e-"));
    const taken = links().filter((n) => /^crtest/.test(n));
    assert.deepEqual(taken, [], "links named crtest* exist already; this test would not own them");
    assert.ok(!existsSync(`/run/netns/${REMOTE_NS}`), `netns ${REMOTE_NS} exists already`);
    // The stand-in for a remote machine: its own namespace, a veth to the host.
    must("ip", ["netns", "add", REMOTE_NS]);
    must("ip", ["link", "add", HOST_END, "type", "veth", "peer", "name", REMOTE_END, "netns", REMOTE_NS]);
    must("ip", ["addr", "add", `${HOST_ADDR}/24`, "dev", HOST_END]);
    must("ip", ["link", "set", HOST_END, "up"]);
    must("ip", ["-n", REMOTE_NS, "addr", "add", `${REMOTE_ADDR}/24`, "dev", REMOTE_END]);
    must("ip", ["-n", REMOTE_NS, "link", "set", REMOTE_END, "up"]);
    must("ip", ["-n", REMOTE_NS, "link", "set", "lo", "up"]);
  });

  after(async () => {
    for (const c of containers) await stopContainer(c);
    // Whatever a failed test left: only our own ids and networks, through the tool itself.
    for (const l of records().leases) net("teardown", "--id", l.id);
    const nets = records().networks.map((n) => n.name);
    if (nets.length) net("rm", ...nets);
    if (links().includes(HOST_END)) run("ip", ["link", "del", HOST_END]);
    if (existsSync(`/run/netns/${REMOTE_NS}`)) run("ip", ["netns", "del", REMOTE_NS]);
    if (work.startsWith(tmpdir() + sep) && work.includes("corerun-net-e2e-")) rmSync(work, { recursive: true, force: true });
    removeStateRoot(root);
  });

  test("bridge: one IPv4 address on eth0 and a default route via the gateway", async () => {
    a = await startContainer("a", httpd("a"));
    const out = setupOk("--pid", String(a.pid), "--id", "ctr-a", "-N", "crtest0", "--subnet", "10.213.0.0/24", "--hostname", "a", "--name", "web-a", "--etc-dir", a.etc, "-P", "8080:80");
    aVeth = out.hostInterface;
    assert.equal(out.address, "10.213.0.2");
    assert.equal(out.gateway, "10.213.0.1");
    assert.equal(out.interface, "eth0");
    assert.equal(out.mac, "02:42:0a:d5:00:02", "the MAC comes from the address");
    const addrs = inContainer(a, ["ip", "-4", "-o", "addr", "show"]).stdout.trim().split("\n").map((l) => l.split(/\s+/).slice(1, 4).join(" "));
    assert.deepEqual(addrs, ["lo inet 127.0.0.1/8", "eth0 inet 10.213.0.2/24"]);
    assert.match(inContainer(a, ["ip", "-4", "route", "show", "default"]).stdout, /^default via 10\.213\.0\.1 dev eth0/);
    assert.match(inContainer(a, ["ip", "-o", "link", "show", "lo"]).stdout, /<LOOPBACK,UP/);
    assert.equal(readFileSync(join(a.etc, "hostname"), "utf8"), "a\n");
    assert.match(readFileSync(join(a.etc, "hosts"), "utf8"), /^10\.213\.0\.2\ta web-a$/m);
    assert.match(readFileSync(join(a.etc, "resolv.conf"), "utf8"), /^nameserver /m);
    assert.equal(must("sysctl", ["-n", "net.ipv4.ip_forward"]).trim(), "1");
    assert.equal(must("sysctl", ["-n", "net.ipv4.conf.crtest0.route_localnet"]).trim(), "1");
  });

  test("two containers on one bridge fetch each other's page by address and by name; the gateway answers", async () => {
    b = await startContainer("b", httpd("b"));
    const out = setupOk("--pid", String(b.pid), "--id", "ctr-b", "-N", "crtest0", "--hostname", "b", "--name", "web-b", "--etc-dir", b.etc);
    bVeth = out.hostInterface;
    assert.equal(out.address, "10.213.0.3");
    assert.equal(inContainer(a, wget("http://10.213.0.3/")).stdout, "hello from b\n");
    assert.equal(inContainer(b, wget("http://10.213.0.2/")).stdout, "hello from a\n");
    // By name: each container's /etc/hosts (bind-mounted inside) lists the other; a's was
    // rewritten in place when b joined.
    assert.equal(inContainer(b, wget("http://web-a/"), true).stdout, "hello from a\n");
    assert.equal(inContainer(a, wget("http://web-b/"), true).stdout, "hello from b\n");
    assert.match(inContainer(a, [busybox, "ping", "-c", "1", "-W", "2", "10.213.0.1"]).stdout, /1 packets received/);
  });

  test("-P 8080:80 serves busybox httpd via 127.0.0.1, the host's address, and to a remote namespace", () => {
    assert.equal(run("timeout", ["10", busybox, "wget", "-q", "-O", "-", "http://127.0.0.1:8080/"]).stdout, "hello from a\n");
    assert.equal(run("timeout", ["10", busybox, "wget", "-q", "-O", "-", `http://${HOST_ADDR}:8080/`]).stdout, "hello from a\n");
    const remote = run("ip", ["netns", "exec", REMOTE_NS, ...wget(`http://${HOST_ADDR}:8080/`)]);
    assert.equal(remote.stdout, "hello from a\n", remote.stderr);
    // From another container through the host's address (hairpin through the gateway).
    assert.equal(inContainer(b, wget(`http://${HOST_ADDR}:8080/`)).stdout, "hello from a\n");
    // From the container itself, through the host's address and the gateway: DNATed back to its
    // own port (bridged back out of it where br_netfilter is loaded: hairpin mode).
    for (const addr of [HOST_ADDR, "10.213.0.1"]) {
      const self = inContainer(a, wget(`http://${addr}:8080/`));
      assert.equal(self.stdout, "hello from a\n", `${addr}: ${self.stderr}`);
    }
    assert.equal(readFileSync(`/sys/class/net/${records().leases.find((l) => l.id === "ctr-a")!.veth}/brport/hairpin_mode`, "utf8"), "1\n");
  });

  test("a published UDP port answers via 127.0.0.1 and the remote namespace", async () => {
    const u = await startContainer("u", [process.execPath, "-e", UDP_ECHO]);
    setupOk("--pid", String(u.pid), "--id", "ctr-u", "-N", "crtest0", "-P", "5353:53/udp");
    assert.equal(run(process.execPath, ["-e", UDP_CLIENT, "127.0.0.1", "5353"]).stdout, "echo ping");
    const remote = run("ip", ["netns", "exec", REMOTE_NS, process.execPath, "-e", UDP_CLIENT, HOST_ADDR, "5353"]);
    assert.equal(remote.stdout, "echo ping", remote.stderr);
    const down = JSON.parse(net("teardown", "--id", "ctr-u").stdout) as { removed: boolean };
    assert.equal(down.removed, true);
    assert.equal(nftRulesFor("ctr-u"), 0);
    await stopContainer(u);
  });

  test("a published port is a rule added to the table, reached at once on an address just freed; a table removed by hand is loaded whole again", async () => {
    const u = await startContainer("u2", [process.execPath, "-e", UDP_ECHO]);
    try {
      // A start adds its rule to the table as loaded (no reload): a's rule stays, u2's follows it.
      // u2 gets the address u had until the test before, which the host has just talked to: with
      // the MAC u had (made from the address), the host's neighbour entry still holds.
      const before = tableHandle();
      const out = setupOk("--pid", String(u.pid), "--id", "ctr-u2", "-N", "crtest0", "-P", "5354:53/udp");
      assert.deepEqual([out.address, out.mac], ["10.213.0.4", "02:42:0a:d5:00:04"]);
      assert.deepEqual(["ctr-a", "ctr-u2"].map(nftRulesFor), [1, 1]);
      assert.equal(tableHandle(), before, "the same table, its rule added (a reload makes a new table)");
      assert.equal(run(process.execPath, ["-e", UDP_CLIENT, "127.0.0.1", "5354"]).stdout, "echo ping");
      net("teardown", "--id", "ctr-u2");
      assert.equal(nftRulesFor("ctr-u2"), 0);
      // Removed behind corerun-net's back, the table is made whole by the next start with a port.
      must("nft", ["delete", "table", "ip", table]);
      setupOk("--pid", String(u.pid), "--id", "ctr-u2", "-N", "crtest0", "-P", "5354:53/udp");
      assert.deepEqual(["ctr-a", "ctr-u2"].map(nftRulesFor), [1, 1]);
      assert.equal(run(process.execPath, ["-e", UDP_CLIENT, "127.0.0.1", "5354"]).stdout, "echo ping");
      assert.equal(run("timeout", ["10", busybox, "wget", "-q", "-O", "-", "http://127.0.0.1:8080/"]).stdout, "hello from a\n");
    } finally {
      net("teardown", "--id", "ctr-u2");
      await stopContainer(u);
    }
  });

  test("none mode: only lo, up; etc files name the container on 127.0.0.1", () => {
    const ns = "crtest-none";
    must("ip", ["netns", "add", ns]);
    try {
      const etc = mkdtempSync(join(work, "none-"));
      const before = snapshot();
      const r = net("setup", "--netns", `/run/netns/${ns}`, "--id", "ctr-none", "--network", "none", "--hostname", "quiet", "--etc-dir", etc);
      assert.equal(r.code, 0, r.stderr);
      const shown = must("ip", ["-n", ns, "-o", "link", "show"]).trim().split("\n");
      assert.equal(shown.length, 1);
      assert.match(shown[0]!, /^1: lo: <LOOPBACK,UP/);
      assert.match(readFileSync(join(etc, "hosts"), "utf8"), /^127\.0\.0\.1\tlocalhost quiet$/m);
      assert.equal(snapshot(), before, "none mode records nothing and creates no link");
    } finally {
      run("ip", ["netns", "del", ns]);
    }
  });

  test("host and container modes need no setup; their /etc files are written by corerun-net etc", () => {
    const host = net("setup", "--pid", String(a.pid), "--id", "ctr-h", "--network", "host");
    assert.equal(host.code, 125);
    assert.match(host.stderr, /needs no setup/);
    const hostEtc = mkdtempSync(join(work, "host-"));
    assert.equal(net("etc", "--id", "ctr-h", "--etc-dir", hostEtc, "--network", "host").code, 0);
    assert.equal(readFileSync(join(hostEtc, "hosts"), "utf8"), readFileSync("/etc/hosts", "utf8"));
    const sideEtc = mkdtempSync(join(work, "side-"));
    const r = net("etc", "--id", "ctr-side", "--etc-dir", sideEtc, "--network", "container:web-a", "--hostname", "side");
    assert.equal(r.code, 0, r.stderr);
    const hosts = readFileSync(join(sideEtc, "hosts"), "utf8");
    assert.match(hosts, /^10\.213\.0\.2\tside$/m);
    assert.match(hosts, /^10\.213\.0\.2\tweb-a a$/m);
    // What sharing a's namespace means: its server on 127.0.0.1.
    assert.equal(inContainer(a, wget("http://127.0.0.1/")).stdout, "hello from a\n");
  });

  test("ten containers set up at once get ten distinct addresses", async () => {
    const ten = await Promise.all(Array.from({ length: 10 }, (_, i) => startContainer(`c${i}`, [busybox, "sleep", "600"])));
    const results = await Promise.all(ten.map((c, i) => netAsync("setup", "--pid", String(c.pid), "--id", `ctr-c${i}`, "-N", "crtest1", "--subnet", "10.213.1.0/24")));
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    const addresses = results.map((r) => (JSON.parse(r.stdout) as SetupJson).address);
    assert.equal(new Set(addresses).size, 10, addresses.join(" "));
    ten.forEach((c, i) => assert.match(inContainer(c, ["ip", "-4", "-o", "addr", "show", "eth0"]).stdout, new RegExp(` ${addresses[i]!.replaceAll(".", "\\.")}/24 `)));
    const veths = results.map((r) => (JSON.parse(r.stdout) as SetupJson).hostInterface);
    const downs = await Promise.all(ten.map((_, i) => netAsync("teardown", "--id", `ctr-c${i}`)));
    for (const r of downs) assert.equal(r.code, 0, r.stderr);
    const left = links();
    assert.deepEqual(veths.filter((v) => left.includes(v)), []);
    assert.deepEqual(records().leases.filter((l) => l.id.startsWith("ctr-c")), []);
    await Promise.all(ten.map(stopContainer));
  });

  test("a container that dies without teardown, or a setup that crashed: leases and ports are reclaimed", async () => {
    const e = await startContainer("e", [busybox, "sleep", "600"]);
    const out = setupOk("--pid", String(e.pid), "--id", "ctr-e", "-N", "crtest1", "-P", "18081:80");
    await stopContainer(e);
    // The kernel deletes the veth pair with the namespace, shortly after the last process exits.
    for (let i = 0; i < 200 && links().includes(out.hostInterface); i++) await sleep(25);
    assert.ok(!links().includes(out.hostInterface));
    // A setup that crashed half-way: its lease is pending and its corerun-net is gone.
    let dead = 4_000_000;
    while (existsSync(`/proc/${dead}`)) dead++;
    const recs = JSON.parse(readFileSync(netPaths(root).records, "utf8"));
    recs.leases.push({
      id: "ctr-ghost", network: "crtest1", address: "10.213.1.250", veth: "cr0000000000ff", state: "pending",
      owner: { pid: dead, startTime: 1 }, ports: [{ hostPort: 18082, containerPort: 80, protocol: "tcp" }], created: new Date().toISOString(),
    });
    writeFileSync(netPaths(root).records, JSON.stringify(recs));
    const f = await startContainer("f", [busybox, "sleep", "600"]);
    const again = setupOk("--pid", String(f.pid), "--id", "ctr-f", "-N", "crtest1", "-P", "18081:80", "-P", "18082:80");
    assert.equal(again.address, out.address, "the address came back");
    assert.deepEqual(records().leases.filter((l) => l.id === "ctr-e" || l.id === "ctr-ghost"), []);
    assert.equal(nftRulesFor("ctr-e"), 0);
    assert.equal(JSON.parse(net("teardown", "--id", "ctr-f").stdout).removed, true);
    await stopContainer(f);
  });

  describe("bad input: exit 125, one line, nothing created", () => {
    let d: Container;
    let listener: Server;
    let wildcard: Server;
    let udp: Socket;
    let busyPort = 0;
    let wildcardPort = 0;
    let udpPort = 0;

    before(async () => {
      d = await startContainer("d", [busybox, "sleep", "600"]);
      listener = createServer().listen(0, "127.0.0.1");
      await once(listener, "listening");
      busyPort = (listener.address() as { port: number }).port;
      // Bound to :: (IPv6, taking IPv4 too; 0.0.0.0 on a host without IPv6), and a UDP socket:
      // what sock_diag reports besides.
      wildcard = createServer().listen(0, existsSync("/proc/net/if_inet6") ? "::" : "0.0.0.0");
      await once(wildcard, "listening");
      wildcardPort = (wildcard.address() as { port: number }).port;
      udp = createSocket("udp4");
      udp.bind(0);
      await once(udp, "listening");
      udpPort = udp.address().port;
    });
    after(() => {
      listener.close();
      wildcard.close();
      udp.close();
    });

    const hostRoute = () => {
      // A route this host has (other than the default): a subnet overlapping it must be refused.
      const line = must("ip", ["-4", "route", "show", "scope", "link"]).split("\n")
        .find((l) => /^\d+\.\d+\.\d+\.\d+\/\d+ /.test(l) && !/ dev (crtest|cr[0-9a-f]{12})/.test(l));
      return line?.split(" ")[0];
    };

    const cases: [string, () => string[], RegExp][] = [
      ["port 0", () => ["-P", "0:80"], /host port 0 is out of range/],
      ["port > 65535", () => ["-P", "8081:65536"], /container port 65536 is out of range/],
      ["unknown protocol", () => ["-P", "8081:80/sctp"], /unknown protocol "sctp"/],
      ["unknown mode", () => ["--network", "bogus"], /unknown mode/],
      ["invalid bridge name", () => ["-N", "bad/name"], /bridge name starts with a letter/],
      ["too long bridge name", () => ["-N", "crtestwaytoolong0"], /at most 15 characters/],
      ["malformed subnet", () => ["-N", "crtest2", "--subnet", "10.213.2.0/33"], /prefix length/],
      ["subnet with host bits", () => ["-N", "crtest2", "--subnet", "10.213.2.1/24"], /host bits set/],
      ["subnet overlapping another network", () => ["-N", "crtest2", "--subnet", "10.213.0.128/25"], /overlaps corerun network crtest0/],
      ["subnet of an existing network changed", () => ["-N", "crtest0", "--subnet", "10.213.9.0/24"], /exists with subnet 10\.213\.0\.0\/24/],
      ["duplicate name", () => ["-N", "crtest0", "--name", "web-a"], /already used by container ctr-a/],
      ["host port published by another container", () => ["-N", "crtest0", "-P", "8080:80"], /already published by container ctr-a/],
      ["host port held by a host process", () => ["-N", "crtest0", "-P", `${busyPort}:80`], /held by a process on this host \(127\.0\.0\.1\)/],
      ["host port held on :: by a host process", () => ["-N", "crtest0", "-P", `${wildcardPort}:80`], /held by a process on this host \(all addresses\)/],
      ["UDP host port held by a host process", () => ["-N", "crtest0", "-P", `${udpPort}:53/udp`], /\/udp is held by a process on this host/],
      ["-P with none", () => ["--network", "none", "-P", "8081:80"], /needs a bridge network/],
      ["the host's own namespace", () => ["--pid", String(process.pid)], /host's own network namespace/],
    ];

    for (const [name, extra, message] of cases) {
      test(name, () => {
        const before = snapshot();
        const argv = extra();
        const target = argv.includes("--pid") ? [] : ["--pid", String(d.pid)];
        const r = net("setup", ...target, "--id", "ctr-bad", ...argv);
        assert.equal(r.code, 125, r.stderr);
        assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
        assert.match(r.stderr, message);
        assert.equal(r.stdout, "");
        assert.equal(snapshot(), before);
        assert.deepEqual(inContainer(d, ["ip", "-o", "link", "show"]).stdout.trim().split("\n").length, 1, "no eth0 in the container");
      });
    }

    test("subnet overlapping a host route", (t) => {
      const route = hostRoute();
      if (!route) return t.skip("this host has no on-link IPv4 route to overlap");
      const before = snapshot();
      const r = net("setup", "--pid", String(d.pid), "--id", "ctr-bad", "-N", "crtest2", "--subnet", route);
      assert.equal(r.code, 125, r.stderr);
      assert.match(r.stderr, /overlaps the host route/);
      assert.equal(snapshot(), before);
    });

    test("a pid that does not exist, and no target at all", () => {
      let pid = 4_000_000;
      while (existsSync(`/proc/${pid}`)) pid++;
      for (const argv of [["--pid", String(pid)], [], ["--pid", String(d.pid), "--netns", "/proc/self/ns/net"]]) {
        const r = net("setup", ...argv, "--id", "ctr-bad");
        assert.equal(r.code, 125, r.stderr);
        assert.equal(r.stderr.trimEnd().split("\n").length, 1);
      }
    });
  });

  test("teardown leaves no veth, lease or nft rule; rm removes the bridges and the table", async () => {
    assert.deepEqual(records().leases.map((l) => l.id).sort(), ["ctr-a", "ctr-b"]);
    const inUse = net("rm", "crtest0");
    assert.equal(inUse.code, 125);
    assert.match(inUse.stderr, /in use by containers ctr-a, ctr-b/);
    for (const id of ["ctr-a", "ctr-b"]) {
      const r = net("teardown", "--id", id);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).removed, true);
      assert.equal(nftRulesFor(id), 0);
    }
    assert.equal(JSON.parse(net("teardown", "--id", "ctr-a").stdout).removed, false, "teardown is idempotent");
    assert.doesNotMatch(readFileSync(join(b.etc, "hosts"), "utf8"), /web-a/, "a left b's hosts file when it went");
    const left = links();
    assert.deepEqual([aVeth, bVeth].filter((v) => left.includes(v)), [], "no veth left");
    assert.deepEqual(records().leases, []);
    const ls = JSON.parse(net("ls", "--json").stdout) as { name: string; containers: string[] }[];
    assert.deepEqual(ls.map((n) => n.name).sort(), ["crtest0", "crtest1"]);
    const pruned = net("prune");
    assert.equal(pruned.code, 0, pruned.stderr);
    assert.deepEqual(JSON.parse(pruned.stdout).removed.sort(), ["crtest0", "crtest1"]);
    assert.deepEqual(links().filter((n) => n === "crtest0" || n === "crtest1"), []);
    assert.notEqual(run("nft", ["list", "table", "ip", table]).code, 0, "the table is gone with the last network");
    await stopContainer(a);
    await stopContainer(b);
  });

  test("the documented examples run as written", () => {
    const text = readFileSync(join(REPO, "README.md"), "utf8");
    const expect: Record<string, RegExp[]> = {
      "net-netns": [/^10\.213\.7\.2\/24$/m, /^default via 10\.213\.7\.1 dev eth0/m, /"removed":true/, /^\{"removed":\["crdemo0"\]\}$/m],
      "net-publish": [/^hello from corerun$/m, /^crdemo0 +crdemo0 +10\.213\.7\.0\/24 +10\.213\.7\.1 +1$/m, /"removed":true/],
    };
    for (const [name, patterns] of Object.entries(expect)) {
      const block = new RegExp(`<!-- e2e:${name} -->\\n\`\`\`sh\\n([\\s\\S]*?)\`\`\``).exec(text);
      assert.ok(block, `README.md has a block marked e2e:${name}`);
      const r = run("bash", ["-euo", "pipefail", "-c", block[1]!.replace(/\bsudo /g, "")], { cwd: REPO, env: { ...process.env, CORERUN_ROOT: root } });
      assert.equal(r.code, 0, `${name}: ${r.stderr}`);
      for (const p of patterns) assert.match(r.stdout, p, name);
    }
    assert.deepEqual(records().leases, []);
    assert.deepEqual(records().networks, []);
  });
});
