import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";
import { after, describe, test } from "node:test";
import { createSocket } from "node:dgram";
import { once } from "node:events";
import { createServer } from "node:net";
import { NETLINK_SOCK_DIAG, openNetlink, SyscallError } from "@corerun/syscall";
import { Rtnl } from "./client.ts";
import { checkOwnPorts, checkPortsFree, choosePorts, decodeDiagSocket, type Listener, decodeProcAddress, diagDump, diagListeners, ephemeralRange, hostListeners, parsePublish, portString, procListeners } from "./ports.ts";
import type { Request } from "./rtnl.ts";
import type { Lease } from "./records.ts";

describe("parsePublish", () => {
  test("HOST:CTR, IP:HOST:CTR and /udp, as Docker spells them", () => {
    assert.deepEqual(parsePublish("8080:80"), { hostPort: 8080, containerPort: 80, protocol: "tcp" });
    assert.deepEqual(parsePublish("127.0.0.1:5353:53/udp"), { hostIp: "127.0.0.1", hostPort: 5353, containerPort: 53, protocol: "udp" });
    assert.deepEqual(parsePublish("0.0.0.0:1:65535/tcp"), { hostPort: 1, containerPort: 65535, protocol: "tcp" });
    assert.equal(portString(parsePublish("127.0.0.1:5353:53/udp")), "127.0.0.1:5353:53/udp");
  });

  test("CTR, :CTR and IP::CTR leave the host port to be chosen (0)", () => {
    assert.deepEqual(parsePublish("80"), { hostPort: 0, containerPort: 80, protocol: "tcp" });
    assert.deepEqual(parsePublish(":53/udp"), { hostPort: 0, containerPort: 53, protocol: "udp" });
    assert.deepEqual(parsePublish("127.0.0.1::80"), { hostIp: "127.0.0.1", hostPort: 0, containerPort: 80, protocol: "tcp" });
    assert.equal(portString(parsePublish("80")), "80/tcp");
    assert.equal(portString(parsePublish("127.0.0.1::80")), "127.0.0.1::80/tcp");
    checkOwnPorts([parsePublish("80"), parsePublish("81")]);
  });

  test("bad input is one line naming the value and the fix", () => {
    assert.throws(() => parsePublish("0:80"), /-P 0:80: host port 0 is out of range; ports go from 1 to 65535/);
    assert.throws(() => parsePublish("8080:65536"), /container port 65536 is out of range/);
    assert.throws(() => parsePublish("8080:80/sctp"), /unknown protocol "sctp"; use tcp or udp/);
    assert.throws(() => parsePublish("1:2:3:4"), /expected \[\[IP:\]HOST_PORT:\]CONTAINER_PORT/);
    assert.throws(() => parsePublish("8080:"), /container port "" is not a number/);
    assert.throws(() => parsePublish("x:80"), /"x" is not a number/);
    assert.throws(() => parsePublish("1.2.3:8080:80"), /not an IPv4 address/);
  });

  test("the same host port twice in one request is refused; tcp and udp may share a number", () => {
    assert.throws(() => checkOwnPorts([parsePublish("8080:80"), parsePublish("127.0.0.1:8080:81")]), /publish the same host port twice/);
    checkOwnPorts([parsePublish("8080:80"), parsePublish("8080:80/udp")]);
  });
});

describe("host ports in use", () => {
  const lease = (ports: Lease["ports"]): Lease => ({
    id: "other", network: "n", address: "10.0.0.2", veth: "cr000000000000", state: "active", owner: { pid: 1, startTime: 1 }, ports, created: "",
  });

  test("a port another container publishes is refused, naming that container", () => {
    assert.throws(() => checkPortsFree([parsePublish("8080:80")], [lease([parsePublish("127.0.0.1:8080:80")])], []), /already published by container other/);
    checkPortsFree([parsePublish("127.0.0.2:8080:80")], [lease([parsePublish("127.0.0.1:8080:80")])], []);
  });

  test("a port a host process listens on is refused", () => {
    assert.throws(() => checkPortsFree([parsePublish("8080:80")], [], [{ protocol: "tcp", address: "127.0.0.1", port: 8080 }]), /held by a process on this host \(127\.0\.0\.1\)/);
    assert.throws(() => checkPortsFree([parsePublish("127.0.0.1:8080:80")], [], [{ protocol: "tcp", address: undefined, port: 8080 }]), /all addresses/);
    checkPortsFree([parsePublish("8080:80/udp")], [], [{ protocol: "tcp", address: undefined, port: 8080 }]);
  });

  test("a free host port is chosen in the range: none another container publishes, a host socket holds, or the request takes", () => {
    const leases = [lease([parsePublish("40001:80")])];
    const listeners = [{ protocol: "tcp" as const, address: undefined, port: 40002 }];
    const got = choosePorts([parsePublish("40000:1"), parsePublish("80"), parsePublish("82/udp")], leases, listeners, [40000, 40003], () => 0);
    assert.deepEqual(got.map(portString), ["40000:1/tcp", "40003:80/tcp", "40000:82/udp"]);
    assert.throws(() => choosePorts([parsePublish("40000:1"), parsePublish("80"), parsePublish("81")], leases, listeners, [40000, 40003], () => 0), /-P 81\/tcp: no free host port left in 40000-40003 \(net\.ipv4\.ip_local_port_range\); give one/);
    const [lo, hi] = ephemeralRange();
    assert.ok(lo >= 1 && lo <= hi && hi <= 65535);
  });

  test("a restarted container's host port is taken again when free, else another free one", () => {
    const leases = [lease([parsePublish("40001:80")])];
    const again = (pref: string) => choosePorts([parsePublish("80")], leases, [], [40000, 40003], () => 0, [parsePublish(pref)]).map(portString);
    assert.deepEqual(again("40002:80"), ["40002:80/tcp"]);
    assert.deepEqual(again("40001:80"), ["40000:80/tcp"], "taken by another container meanwhile");
    assert.deepEqual(again("40002:81"), ["40000:80/tcp"], "another container port's");
    assert.deepEqual(again("40002:80/udp"), ["40000:80/tcp"], "another protocol's");
  });

  const dir = mkdtempSync(join(tmpdir(), "corerun-net-ports-test-"));
  after(() => {
    if (dir.startsWith(tmpdir() + sep) && dir.includes("corerun-net-ports-test-")) rmSync(dir, { recursive: true, force: true });
  });

  test("listeners are read from /proc/net: TCP in LISTEN, UDP unconnected, IPv6 wildcard counts", () => {
    mkdirSync(join(dir, "net"));
    const head = "  sl  local_address rem_address   st\n";
    writeFileSync(join(dir, "net/tcp"), `${head}   0: 0100007F:1F90 00000000:0000 0A\n   1: 0100007F:0016 0100007F:9C40 01\n`);
    writeFileSync(join(dir, "net/tcp6"), `${head}   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A\n`);
    writeFileSync(join(dir, "net/udp"), `${head}   0: 00000000:14E9 00000000:0000 07\n`);
    assert.deepEqual(procListeners(dir), [
      { protocol: "tcp", address: "127.0.0.1", port: 8080 },
      { protocol: "tcp", address: undefined, port: 80 },
      { protocol: "udp", address: undefined, port: 5353 },
    ]);
  });

  test("IPv4-mapped IPv6 addresses read as IPv4; other IPv6 addresses cannot shadow IPv4", () => {
    assert.equal(decodeProcAddress("0000000000000000FFFF00000100007F", true), "127.0.0.1");
    assert.equal(decodeProcAddress("00000000000000000000000001000000", true), "v6");
  });

  /** struct inet_diag_msg: family, then the source port (big-endian) at 4 and address at 8. */
  const diagMsg = (family: number, port: number, address: number[]) => {
    const b = Buffer.alloc(72);
    b.writeUInt8(family, 0);
    b.writeUInt16BE(port, 4);
    Buffer.from(address).copy(b, 8);
    return b;
  };

  test("sock_diag: the four dumps ask for listening TCP and unconnected UDP, IPv4 and IPv6", () => {
    const asked: Request[] = [];
    const replies: Record<string, Buffer[]> = {
      "2/6": [diagMsg(2, 8080, [127, 0, 0, 1])],
      "10/6": [diagMsg(10, 80, Array(16).fill(0))],
      "2/17": [diagMsg(2, 5353, [0, 0, 0, 0])],
      "10/17": [diagMsg(10, 53, [...Array(10).fill(0), 0xff, 0xff, 10, 0, 0, 1]), diagMsg(10, 54, [0xfe, 0x80, ...Array(13).fill(0), 1])],
    };
    const got = diagListeners({
      dump(req: Request) {
        asked.push(req);
        return (replies[`${req.payload[0]}/${req.payload[1]}`] ?? []).map((payload) => ({ type: 20, flags: 0, seq: 0, payload }));
      },
    });
    assert.deepEqual(asked.map((r) => [r.type, r.payload.length, r.payload[0], r.payload[1], r.payload.readUInt32LE(4)]), [
      [20, 56, 2, 6, 1 << 10], [20, 56, 10, 6, 1 << 10], [20, 56, 2, 17, 1 << 7], [20, 56, 10, 17, 1 << 7],
    ]);
    assert.deepEqual(got, [
      { protocol: "tcp", address: "127.0.0.1", port: 8080 },
      { protocol: "tcp", address: undefined, port: 80 },
      { protocol: "udp", address: undefined, port: 5353 },
      { protocol: "udp", address: "10.0.0.1", port: 53 },
      { protocol: "udp", address: "v6", port: 54 },
    ]);
    assert.equal(diagDump(2, "tcp", 10).name, "SOCK_DIAG_BY_FAMILY");
    assert.deepEqual(decodeDiagSocket(diagMsg(2, 443, [10, 1, 2, 3]), "tcp"), { protocol: "tcp", address: "10.1.2.3", port: 443 });
  });

  test("sock_diag: an IPv6-only socket on :: takes no IPv4 port; a message too short is an error", () => {
    // INET_DIAG_SKV6ONLY: nla_len 5, type 11, one byte, padded to 8.
    const v6only = (flag: number) => Buffer.concat([diagMsg(10, 8443, Array(16).fill(0)), Buffer.from([5, 0, 11, 0, flag, 0, 0, 0])]);
    assert.equal(decodeDiagSocket(v6only(1), "tcp").address, "v6");
    assert.equal(decodeDiagSocket(v6only(0), "tcp").address, undefined, "dual-stack :: takes IPv4 too");
    assert.throws(() => decodeDiagSocket(Buffer.alloc(40), "tcp"), /shorter than struct inet_diag_msg/);
  });

  test("a kernel without sock_diag for a protocol: the sockets are read from /proc/net instead; other refusals are errors", () => {
    const refusal = (errno: number) => new SyscallError({ syscall: "SOCK_DIAG_BY_FAMILY", errno, context: "list sockets" });
    let closed = false;
    const got = hostListeners({ open: () => ({ dump: () => { throw refusal(2); }, close: () => { closed = true; } }), proc: dir });
    assert.deepEqual(got, procListeners(dir));
    assert.ok(got.length > 0);
    assert.ok(closed, "the socket is closed");
    assert.deepEqual(hostListeners({ open: () => { throw refusal(93); }, proc: dir }), procListeners(dir), "EPROTONOSUPPORT");
    assert.throws(() => hostListeners({ open: () => ({ dump: () => { throw refusal(22); }, close: () => {} }), proc: dir }), /EINVAL/);
  });

  test("sock_diag of this kernel (no root needed) lists a TCP socket listening here and an unconnected UDP one", async (t) => {
    let diag: Rtnl;
    try {
      diag = new Rtnl(openNetlink({ protocol: NETLINK_SOCK_DIAG }));
    } catch (err) {
      t.skip(`no sock_diag here: ${(err as Error).message}`);
      return;
    }
    const server = createServer();
    const udp = createSocket("udp4");
    const only6 = existsSync("/proc/net/if_inet6") ? createServer() : undefined;
    try {
      await Promise.all([
        once(server.listen(0, "127.0.0.1"), "listening"),
        once(udp.bind(0, "127.0.0.1"), "listening"),
        only6 && once(only6.listen({ port: 0, host: "::", ipv6Only: true }), "listening"),
      ]);
      const got = diagListeners(diag);
      const has = (l: Listener) => got.some((g) => g.protocol === l.protocol && g.address === l.address && g.port === l.port);
      assert.ok(has({ protocol: "tcp", address: "127.0.0.1", port: (server.address() as { port: number }).port }), JSON.stringify(got));
      assert.ok(has({ protocol: "udp", address: "127.0.0.1", port: udp.address().port }), JSON.stringify(got));
      if (only6) assert.ok(has({ protocol: "tcp", address: "v6", port: (only6.address() as { port: number }).port }), JSON.stringify(got));
    } finally {
      diag.close();
      server.close();
      udp.close();
      only6?.close();
    }
  });
});
