/**
 * corerun's networking end to end: bridge containers, names, concurrency, and what is left on the
 * host (veths, leases) after containers end, however they end. All traffic stays between the host
 * and containers this test starts.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readdirSync, readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { busyboxRootfs, isRoot, leftoverState, removeStateRoot, REPO, run, stateRoot, tool } from "./helpers.ts";

let rootfs = "";
let root = "";

const veths = () => readdirSync("/sys/class/net").filter((n) => /^cr[0-9a-f]{12}$/.test(n));

function leases(): unknown[] {
  const path = join(root, "networks/networks.json");
  return existsSync(path) ? (JSON.parse(readFileSync(path, "utf8")) as { leases: unknown[] }).leases : [];
}

function corerun(args: string[]) {
  return tool("corerun", ["--root", root, "--rootfs", rootfs, ...args]);
}

/** Starts a long-running container and resolves once it has printed its first line. */
async function background(args: string[]) {
  const child = spawn(join(REPO, "bin/corerun"), ["--root", root, "--rootfs", rootfs, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  await new Promise((resolve) => child.stdout.once("data", resolve));
  return child;
}

describe("corerun networking", { skip: !isRoot && "needs root" }, () => {
  let vethsBefore: string[] = [];
  before(() => {
    rootfs = busyboxRootfs();
    root = stateRoot();
    vethsBefore = veths();
  });
  after(() => {
    try {
      assert.deepEqual(leftoverState(root), []);
      assert.deepEqual(veths(), vethsBefore, "a veth is left");
      assert.deepEqual(leases(), [], "a lease is left");
    } finally {
      removeStateRoot(root);
    }
  });

  test("bridge (the default): one IPv4 address on eth0 and a default route through the gateway", () => {
    const r = corerun(["/bin/sh", "-c", "ip -4 -o addr show | awk '{print $2, $4}'; ip route | grep ^default; ping -c 1 -W 2 $(ip route | awk '/^default/ {print $3}') > /dev/null && echo gateway-reached"]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.match(lines[0]!, /^lo 127\.0\.0\.1\/8$/);
    assert.match(lines[1]!, /^eth0 10\.\d+\.\d+\.\d+\/24$/);
    assert.match(lines[2]!, /^default via 10\.\d+\.\d+\.1 dev eth0/);
    assert.equal(lines[3], "gateway-reached");
    assert.deepEqual(leases(), []);
  });

  test("--add-host (host-gateway too) and the --dns options: /etc/hosts and resolv.conf as Docker writes them, the lines kept when a peer comes and goes; inspect shows them; none and host networks too", async () => {
    const first = await background(["--name", "extras-a", "--add-host", "db:10.1.2.3", "--add-host", "host.docker.internal:host-gateway", "--dns", "1.1.1.1", "--dns-search", "example.com", "--dns-option", "ndots:2",
      "/bin/sh", "-c", "echo up; exec sleep 600"]);
    // exec, inspect and kill take no --rootfs, which corerun() gives.
    const cr = (args: string[]) => tool("corerun", ["--root", root, ...args]);
    try {
      const hosts = () => cr(["exec", "extras-a", "cat", "/etc/hosts"]).stdout;
      const gateway = cr(["exec", "extras-a", "/bin/sh", "-c", "ip route | awk '/^default/ {print $3}'"]).stdout.trim();
      assert.match(hosts(), new RegExp(`^10\\.1\\.2\\.3\\tdb$[\\s\\S]*^${gateway.replace(/\./g, "\\.")}\\thost\\.docker\\.internal$`, "m"));
      const resolv = cr(["exec", "extras-a", "cat", "/etc/resolv.conf"]).stdout;
      assert.deepEqual(resolv.split("\n").filter((l) => /^(nameserver|search|options) /.test(l)), ["nameserver 1.1.1.1", "search example.com", "options ndots:2"]);
      const peer = corerun(["--name", "extras-b", "/bin/true"]);
      assert.equal(peer.code, 0, peer.stderr);
      assert.match(hosts(), /^10\.1\.2\.3\tdb$/m, "the line is kept when the peers' lines are rewritten");
      const [info] = JSON.parse(cr(["inspect", "extras-a"]).stdout) as { HostConfig: Record<string, unknown> }[];
      assert.deepEqual([info!.HostConfig.ExtraHosts, info!.HostConfig.Dns, info!.HostConfig.DnsSearch, info!.HostConfig.DnsOptions], [["db:10.1.2.3", "host.docker.internal:host-gateway"], ["1.1.1.1"], ["example.com"], ["ndots:2"]]);
    } finally {
      const ended = new Promise((resolve) => first.once("exit", resolve));
      cr(["kill", "extras-a"]);
      await ended;
    }
    for (const network of ["none", "host"]) {
      const r = corerun(["--network", network, "--add-host", "db:10.1.2.3", "--dns", "9.9.9.9", "/bin/sh", "-c", "grep -c '^10.1.2.3\tdb$' /etc/hosts; grep '^nameserver' /etc/resolv.conf"]);
      assert.equal(r.stdout, "1\nnameserver 9.9.9.9\n", `${network}: ${r.stderr}`);
    }
    const refused = corerun(["--network", "none", "--add-host", "gw:host-gateway", "/bin/true"]);
    assert.equal(refused.code, 125);
    assert.match(refused.stderr, /^corerun: --add-host gw:host-gateway needs --network bridge \(it is none\)/);
  });

  test("--ip gives a container the address asked for, and --network-alias more names its peers resolve; a taken or outside address, or the gateway, is refused and leaves nothing", async () => {
    const net = `crip${process.pid % 10000}`;
    const db = await background(["-N", net, "--subnet", "10.213.77.0/24", "--ip", "10.213.77.50", "--name", "ipdb", "--network-alias", "database", "--network-alias", "pg", "/bin/sh", "-c", "trap 'exit 0' TERM; echo up; while :; do sleep 0.1; done"]);
    try {
      const peer = corerun(["-N", net, "/bin/sh", "-c", "grep database /etc/hosts; ping -c 1 -W 2 pg > /dev/null && echo pg-reached"]);
      assert.equal(peer.code, 0, peer.stderr);
      // ADDRESS NAME HOSTNAME ALIAS..., as a peer's line of the hosts file.
      assert.match(peer.stdout, /^10\.213\.77\.50\tipdb [0-9a-f]{12} database pg\npg-reached\n$/);
      const inspect = JSON.parse(tool("corerun", ["inspect", "--root", root, "ipdb"]).stdout) as { NetworkSettings: { Networks: Record<string, { IPAddress: string; Aliases: string[] }> } }[];
      assert.deepEqual([inspect[0]!.NetworkSettings.Networks[net]!.IPAddress, inspect[0]!.NetworkSettings.Networks[net]!.Aliases], ["10.213.77.50", ["database", "pg"]]);
      for (const [ip, why] of [["10.213.77.50", "another container of the network has it"], ["10.213.77.1", "it is the network's gateway"], ["10.213.78.9", "it is outside the network's subnet"]] as const) {
        const r = corerun(["-N", net, "--ip", ip, "/bin/true"]);
        assert.deepEqual([r.code, r.stderr], [125, `corerun-net: --ip ${ip}: ${why}; network ${net} is 10.213.77.0/24, give a free address in it\n`]);
      }
      assert.deepEqual(leftoverState(root).length, 1, "only ipdb's state");
    } finally {
      db.kill("SIGTERM");
      await new Promise((resolve) => db.once("exit", resolve));
      tool("corerun-net", ["--root", root, "rm", net]);
    }
  });

  test("ten containers running at once have ten distinct addresses", async () => {
    const runs = Array.from({ length: 10 }, () =>
      new Promise<string>((resolve, reject) => {
        const child = spawn(join(REPO, "bin/corerun"), ["--root", root, "--rootfs", rootfs, "/bin/sh", "-c", "ip -4 -o addr show eth0 | awk '{print $4}'; sleep 8"], { stdio: ["ignore", "pipe", "pipe"] });
        let out = "";
        let err = "";
        child.stdout.on("data", (d) => (out += d));
        child.stderr.on("data", (d) => (err += d));
        child.once("exit", (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`exit ${code}: ${err}`))));
      }),
    );
    const addresses = await Promise.all(runs);
    assert.equal(new Set(addresses).size, 10, addresses.join(" "));
    assert.deepEqual(leases(), []);
  });

  test("a --name is unique among running containers", async () => {
    const first = await background(["--name", "unique", "/bin/sh", "-c", "echo up; sleep 30"]);
    const second = corerun(["--name", "unique", "/bin/true"]);
    assert.equal(second.code, 125);
    assert.match(second.stderr.trim(), /^corerun: --name unique is already used by container ([0-9a-f]{12}); pick another name, or remove that container first \(corerun rm -f \1\)$/);
    const killed = tool("corerun", ["kill", "--root", root, "unique"]);
    assert.equal(killed.code, 0, killed.stderr);
    const code = await new Promise((resolve) => first.once("exit", resolve));
    assert.equal(code, 137);
    // The name is free again once its container has ended.
    assert.equal(corerun(["--name", "unique", "/bin/true"]).code, 0);
  });

  test("after kill -9 of corerun, cleanup removes the veth and the lease", async () => {
    const child = await background(["-P", "18089:80", "/bin/sh", "-c", "echo up; sleep 30"]);
    child.kill("SIGKILL");
    await new Promise((resolve) => child.once("exit", resolve));
    assert.equal(leases().length, 1);
    const r = tool("corerun", ["cleanup", "--root", root]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(leases(), []);
    assert.deepEqual(veths(), vethsBefore);
    assert.doesNotMatch(run("nft", ["list", "ruleset"]).stdout, /18089/);
  });

  test("capabilities are Docker's default set: container root cannot mount or change its network", () => {
    const r = corerun(["/bin/sh", "-c", "grep CapBnd /proc/self/status; mount -t tmpfs t /mnt 2>/dev/null && echo mounted; ip link set eth0 down 2>/dev/null && echo link-changed; echo done"]);
    assert.equal(r.stdout, "CapBnd:\t00000000a80425fb\ndone\n");
  });
});
