import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";
import { after, describe, test } from "node:test";
import { etcExtrasArgv, extraHostLines, FALLBACK_NAMESERVERS, hostsFile, hostsFileOf, hostsLine, parseEtcExtras, resolvConf, withDns, writeEtcFiles } from "./etc.ts";

const dir = mkdtempSync(join(tmpdir(), "corerun-net-etc-test-"));
after(() => {
  if (dir.startsWith(tmpdir() + sep) && dir.includes("corerun-net-etc-test-")) rmSync(dir, { recursive: true, force: true });
});

let n = 0;
function file(text: string): string {
  const p = join(dir, `f${n++}`);
  writeFileSync(p, text);
  return p;
}

describe("hosts", () => {
  test("localhost, then the container, then its network's other containers", () => {
    const text = hostsFile({ address: "10.213.0.3", names: ["web", "web", ""] }, [{ address: "10.213.0.2", names: ["db", "c0ffee"] }]);
    const lines = text.trim().split("\n");
    assert.equal(lines[0], "127.0.0.1\tlocalhost");
    assert.ok(lines.includes("10.213.0.3\tweb"));
    assert.equal(lines.at(-1), "10.213.0.2\tdb c0ffee");
  });

  test("without an address the names go on 127.0.0.1", () => {
    assert.match(hostsFile({ names: ["box"] }), /^127\.0\.0\.1\tlocalhost box$/m);
  });

  test("made from the peers' lines made once, the same file; a peer without a name has no line", () => {
    const self = { address: "10.213.0.3", names: ["web"] };
    const peers = [{ address: "10.213.0.2", names: ["db", "db"] }, { address: "10.213.0.4", names: ["", ""] }, { address: "10.213.0.5", names: ["", "c0ffee"] }];
    assert.deepEqual(peers.map(hostsLine), ["10.213.0.2\tdb", undefined, "10.213.0.5\tc0ffee"]);
    const file = hostsFileOf(self, peers.map(hostsLine)).trim().split("\n");
    assert.deepEqual(file.slice(-3), ["10.213.0.3\tweb", "10.213.0.2\tdb", "10.213.0.5\tc0ffee"]);
    assert.equal(file[0], "127.0.0.1\tlocalhost");
  });
});

describe("resolv.conf", () => {
  test("the host's resolvers, search and options are kept", () => {
    const host = file("nameserver 192.0.2.53\nsearch example.test\noptions ndots:2\n");
    const out = resolvConf({ mode: "private", hostPath: host, systemdPath: join(dir, "missing") });
    assert.match(out, /^nameserver 192\.0\.2\.53$/m);
    assert.match(out, /^search example\.test$/m);
    assert.match(out, /^options ndots:2$/m);
  });

  test("loopback resolvers are replaced by systemd-resolved's upstreams", () => {
    const host = file("nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n");
    const systemd = file("nameserver 198.51.100.1\nnameserver 2001:db8::1\nsearch lan\n");
    const out = resolvConf({ mode: "private", hostPath: host, systemdPath: systemd });
    assert.match(out, /^nameserver 198\.51\.100\.1$/m);
    assert.doesNotMatch(out, /127\.0\.0\.53|2001:db8/);
  });

  test("with only loopback resolvers and no systemd-resolved, the documented fallback", () => {
    const host = file("nameserver 127.0.0.1\n");
    const out = resolvConf({ mode: "private", hostPath: host, systemdPath: join(dir, "missing") });
    assert.deepEqual(out.match(/^nameserver .*$/gm), FALLBACK_NAMESERVERS.map((s) => `nameserver ${s}`));
  });

  test("host mode takes the host's file as it is", () => {
    const host = file("nameserver 127.0.0.53\n");
    assert.equal(resolvConf({ mode: "host", hostPath: host }), "nameserver 127.0.0.53\n");
  });
});

describe("writeEtcFiles", () => {
  test("rewrites existing files through their inode (bind mounts of them stay valid)", () => {
    const d = mkdtempSync(join(dir, "etc-"));
    writeFileSync(join(d, "hosts"), "x".repeat(1000));
    const before = statSync(join(d, "hosts")).ino;
    writeEtcFiles(d, { hostname: "box", hosts: "127.0.0.1\tlocalhost\n", resolv: "nameserver 192.0.2.1\n" });
    assert.equal(statSync(join(d, "hosts")).ino, before);
    assert.equal(readFileSync(join(d, "hosts"), "utf8"), "127.0.0.1\tlocalhost\n");
    assert.equal(readFileSync(join(d, "hostname"), "utf8"), "box\n");
    assert.equal(readFileSync(join(d, "resolv.conf"), "utf8"), "nameserver 192.0.2.1\n");
  });
});

describe("--add-host and the --dns options", () => {
  test("parsed as Docker's: NAME:ADDRESS or NAME=ADDRESS, IPv6 (bracketed or not), host-gateway; the words read back the same", () => {
    const e = parseEtcExtras({ addHost: ["db:10.0.0.5", "v6:fd00::1", "b6=[::1]", "gw:host-gateway"], dns: ["1.1.1.1", "2606:4700::1111"], dnsSearch: ["example.com", "."], dnsOption: ["ndots:2", "edns0"] });
    assert.deepEqual(e.hosts, [{ name: "db", address: "10.0.0.5" }, { name: "v6", address: "fd00::1" }, { name: "b6", address: "::1" }, { name: "gw", address: "host-gateway" }]);
    const again = etcExtrasArgv(e);
    const values = (k: string) => again.flatMap((w, i) => (again[i - 1] === k ? [w] : []));
    assert.deepEqual(parseEtcExtras({ addHost: values("--add-host"), dns: values("--dns"), dnsSearch: values("--dns-search"), dnsOption: values("--dns-option") }), e);
    assert.deepEqual(extraHostLines(e.hosts, "10.77.0.1"), ["10.0.0.5\tdb", "fd00::1\tv6", "::1\tb6", "10.77.0.1\tgw"]);
    assert.throws(() => extraHostLines(e.hosts), /--add-host gw:host-gateway needs a bridge network/);
  });
  test("refused in one line naming the value", () => {
    const cases: [Parameters<typeof parseEtcExtras>[0], RegExp][] = [
      [{ addHost: ["db"] }, /--add-host "db": give NAME:ADDRESS/],
      [{ addHost: ["a b:1.2.3.4"] }, /--add-host "a b:1.2.3.4": give NAME:ADDRESS/],
      [{ addHost: ["db:10.0.0.256"] }, /--add-host "db:10.0.0.256": "10.0.0.256" is not an IP address/],
      [{ addHost: ["db:1::2::3"] }, /is not an IP address/],
      [{ dns: ["dns.google"] }, /--dns "dns.google": give a nameserver's IP address/],
      [{ dnsSearch: ["a b"] }, /--dns-search "a b": give a domain name/],
      [{ dnsOption: ["ndots 2"] }, /--dns-option "ndots 2": give a resolv.conf option/],
    ];
    for (const [input, re] of cases) assert.throws(() => parseEtcExtras(input), re, JSON.stringify(input));
  });
  test("resolv.conf: --dns replaces the nameservers, --dns-search the search list (. for none), --dns-option the options; the rest stays", () => {
    const base = "# Generated by corerun-net\nnameserver 10.0.0.1\nsearch corp.example\noptions rotate\nsortlist 10.0.0.0\n";
    assert.equal(withDns(base, {}), base);
    assert.equal(withDns(base, { dns: ["1.1.1.1", "8.8.8.8"] }), "# Generated by corerun-net\nsearch corp.example\noptions rotate\nsortlist 10.0.0.0\nnameserver 1.1.1.1\nnameserver 8.8.8.8\n");
    assert.equal(withDns(base, { dnsSearch: ["."], dnsOptions: ["ndots:2"] }), "# Generated by corerun-net\nnameserver 10.0.0.1\nsortlist 10.0.0.0\noptions ndots:2\n");
  });
  test("hosts: the --add-host lines after localhost's, before the container's own and its peers'", () => {
    const text = hostsFileOf({ address: "10.77.0.2", names: ["web"] }, ["10.77.0.3\tdb"], ["10.0.0.5\tcache"]);
    const lines = text.trim().split("\n");
    assert.deepEqual(lines.slice(-3), ["10.0.0.5\tcache", "10.77.0.2\tweb", "10.77.0.3\tdb"]);
  });
});
