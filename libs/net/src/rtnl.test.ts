import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { openNetlink, type NetlinkSocket } from "@corerun/syscall";
import { NetlinkError, Rtnl } from "./client.ts";
import {
  decodeAddress, decodeAttrs, decodeError, decodeLink, decodeRoute, deleteLink, dumpLinks, dumpRoutes, encodeAttrs, getLinkByName, ifinfomsg, IFLA_IFNAME,
  IFLA_ADDRESS, IFLA_LINKINFO, IFLA_MASTER, IFLA_NET_NS_FD, macForAddress, newAddress, newBridge, newDefaultRoute, newVethPair, NLM_F_ACK, NLM_F_ACK_TLVS,
  NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, nlmsg, NLMSG_DONE, NLMSG_ERROR, RTM_NEWLINK, RTM_NEWROUTE, rtmsg, setHairpin, setLinkUp, splitMessages,
  type Attr,
} from "./rtnl.ts";

describe("attributes", () => {
  test("a string attribute is NUL-terminated and padded to 4 bytes", () => {
    const b = encodeAttrs([[IFLA_IFNAME, "eth0"]]);
    // len 9 (4 header + "eth0\0"), type 3, then 3 bytes of padding.
    assert.deepEqual([...b], [9, 0, 3, 0, 0x65, 0x74, 0x68, 0x30, 0, 0, 0, 0]);
  });

  test("a nested attribute carries NLA_F_NESTED and its children as data", () => {
    const b = encodeAttrs([[IFLA_LINKINFO, [[1, "veth"]]]]);
    assert.equal(b.readUInt16LE(0), 4 + 12);
    assert.equal(b.readUInt16LE(2), 0x8000 | IFLA_LINKINFO);
    assert.equal(decodeAttrs(decodeAttrs(b).get(IFLA_LINKINFO)!).get(1)!.toString(), "veth\0");
  });

  test("decoding reads back what encoding wrote", () => {
    const attrs: Attr[] = [[IFLA_IFNAME, "crtest0"], [IFLA_MASTER, 7], [5, Buffer.from([1, 2, 3])]];
    const map = decodeAttrs(encodeAttrs(attrs));
    assert.equal(map.get(IFLA_MASTER)!.readUInt32LE(0), 7);
    assert.deepEqual([...map.get(5)!], [1, 2, 3]);
  });
});

describe("requests", () => {
  test("nlmsg: length covers header and payload, type, flags, seq", () => {
    const m = nlmsg(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, 42, Buffer.alloc(16));
    assert.equal(m.readUInt32LE(0), 32);
    assert.equal(m.readUInt16LE(4), RTM_NEWLINK);
    assert.equal(m.readUInt16LE(6), NLM_F_REQUEST | NLM_F_ACK);
    assert.equal(m.readUInt32LE(8), 42);
  });

  test("a bridge is created exclusively, with a fixed MAC and kind bridge", () => {
    const r = newBridge("crtest0", "02:00:00:00:00:01");
    assert.equal(r.flags, NLM_F_CREATE | NLM_F_EXCL);
    const link = decodeLink({ type: RTM_NEWLINK, flags: 0, seq: 0, payload: r.payload });
    assert.deepEqual([link.name, link.kind, link.mac], ["crtest0", "bridge", "02:00:00:00:00:01"]);
  });

  test("a veth pair: host end up on the master, peer eth0 created in the namespace fd, peer down", () => {
    const r = newVethPair({ name: "cr0123456789ab", master: 9, peerName: "eth0", peerNetns: { fd: 19 } });
    const p = r.payload;
    assert.equal(p.readUInt32LE(8) & 1, 1, "host end IFF_UP");
    const attrs = decodeAttrs(p, 16);
    assert.equal(attrs.get(IFLA_MASTER)!.readUInt32LE(0), 9);
    const info = decodeAttrs(attrs.get(IFLA_LINKINFO)!);
    const data = decodeAttrs(info.get(2)!);
    const peer = data.get(1)!;
    assert.equal(peer.readUInt32LE(8), 0, "peer flags: veth_open would refuse it before the pair is linked");
    const peerAttrs = decodeAttrs(peer, 16);
    assert.equal(peerAttrs.get(IFLA_IFNAME)!.toString(), "eth0\0");
    assert.equal(peerAttrs.get(IFLA_NET_NS_FD)!.readUInt32LE(0), 19);
    const byPid = decodeAttrs(decodeAttrs(decodeAttrs(decodeAttrs(
      newVethPair({ name: "x", master: 1, peerName: "eth0", peerNetns: { pid: 4242 } }).payload, 16).get(IFLA_LINKINFO)!).get(2)!).get(1)!, 16);
    assert.equal(byPid.get(19 /* IFLA_NET_NS_PID */)!.readUInt32LE(0), 4242);
    assert.equal(peerAttrs.get(IFLA_ADDRESS), undefined, "no MAC asked: the kernel picks one");
    const withMac = decodeAttrs(decodeAttrs(decodeAttrs(decodeAttrs(
      newVethPair({ name: "x", master: 1, peerName: "eth0", peerNetns: { fd: 3 }, peerMac: "02:42:0a:d5:00:02" }).payload, 16).get(IFLA_LINKINFO)!).get(2)!).get(1)!, 16);
    assert.deepEqual([...withMac.get(IFLA_ADDRESS)!], [2, 0x42, 10, 213, 0, 2]);
  });

  test("hairpin mode: an AF_BRIDGE setlink of the port by index, IFLA_PROTINFO nested with IFLA_BRPORT_MODE 1", () => {
    const r = setHairpin({ index: 42, name: "cr0123456789ab" });
    assert.equal(r.type, 19 /* RTM_SETLINK */);
    assert.equal(r.payload.readUInt8(0), 7 /* AF_BRIDGE */);
    assert.equal(r.payload.readInt32LE(4), 42);
    // The nested flag: the bridge takes an IFLA_PROTINFO without it as the old RSTP port state.
    assert.equal(r.payload.readUInt16LE(16 + 2), 12 | 0x8000);
    const mode = decodeAttrs(decodeAttrs(r.payload, 16).get(12)!).get(4)!;
    assert.deepEqual([...mode], [1]);
  });

  test("a container's MAC comes from its address, as Docker's: 02:42 then the address's bytes", () => {
    assert.equal(macForAddress("10.213.0.2"), "02:42:0a:d5:00:02");
    assert.equal(macForAddress("172.17.255.254"), "02:42:ac:11:ff:fe");
  });

  test("an address: prefix, index, local and broadcast in network order", () => {
    const r = newAddress({ index: 5, name: "eth0", address: "10.213.0.2", prefixLength: 24 });
    const a = decodeAddress({ type: 20, flags: 0, seq: 0, payload: r.payload });
    assert.deepEqual(a, { index: 5, address: "10.213.0.2", prefixLength: 24 });
    assert.deepEqual([...decodeAttrs(r.payload, 8).get(4)!], [10, 213, 0, 255]);
    assert.equal(r.flags & NLM_F_EXCL, NLM_F_EXCL);
    assert.equal(newAddress({ index: 5, name: "b", address: "10.0.0.1", prefixLength: 8, replace: true }).flags & NLM_F_EXCL, 0);
  });

  test("a default route: main table, unicast, gateway and output interface", () => {
    const r = newDefaultRoute({ gateway: "10.213.0.1", index: 3, name: "eth0" });
    assert.equal(r.type, RTM_NEWROUTE);
    const route = decodeRoute({ type: RTM_NEWROUTE, flags: 0, seq: 0, payload: r.payload });
    assert.deepEqual(route, { dst: "0.0.0.0", dstLength: 0, table: 254, type: 1, oif: 3, gateway: "10.213.0.1" });
  });

  test("set up and delete by index, or by name when the index is 0", () => {
    assert.equal(setLinkUp({ name: "lo" }).payload.readInt32LE(4), 0);
    assert.equal(decodeAttrs(setLinkUp({ name: "lo" }).payload, 16).get(IFLA_IFNAME)!.toString(), "lo\0");
    assert.equal(deleteLink({ index: 12, name: "x" }).payload.readInt32LE(4), 12);
    assert.equal(decodeAttrs(deleteLink({ index: 0, name: "x" }).payload, 16).get(IFLA_IFNAME)!.toString(), "x\0");
  });

  test("a route dump entry decodes its destination, table and type", () => {
    const payload = rtmsg({ family: 2, dstLength: 24, table: 254, type: 1 }, [[1, Buffer.from([192, 0, 2, 0])], [4, 2]]);
    assert.deepEqual(decodeRoute({ type: 24, flags: 0, seq: 0, payload }), { dst: "192.0.2.0", dstLength: 24, table: 254, type: 1, oif: 2, gateway: undefined });
  });
});

/** An ack or error for a request, with the kernel's extended-ack message when given. */
function ack(seq: number, errno: number, message?: string): Buffer {
  const body = Buffer.alloc(4 + 16);
  body.writeInt32LE(-errno, 0);
  body.writeUInt32LE(16, 4);
  const tlv = message ? encodeAttrs([[1, message]]) : Buffer.alloc(0);
  return nlmsg(NLMSG_ERROR, message ? 0x100 | NLM_F_ACK_TLVS : 0x100, seq, Buffer.concat([body, tlv]));
}

/** A socket that answers every datagram with the replies `answer` builds from its sequence numbers. */
function fakeSocket(answer: (seqs: number[], types: number[]) => Buffer[]): NetlinkSocket & { sent: Buffer[] } {
  const queue: Buffer[] = [];
  const sent: Buffer[] = [];
  return {
    fd: -1,
    sent,
    send(d) {
      sent.push(d);
      const msgs = splitMessages(d);
      queue.push(...answer(msgs.map((m) => m.seq), msgs.map((m) => m.type)));
    },
    recv(buf) {
      const next = queue.shift();
      if (!next) return 0;
      next.copy(buf);
      return next.length;
    },
    close() {},
  };
}

describe("Rtnl over a real socket (no privileges needed to read)", () => {
  test("lists this namespace's links and routes; lo is there", () => {
    const rtnl = new Rtnl(openNetlink());
    try {
      const links = rtnl.dump(dumpLinks()).map(decodeLink);
      assert.ok(links.some((l) => l.name === "lo" && l.index >= 1));
      const routes = rtnl.dump(dumpRoutes()).map(decodeRoute);
      assert.ok(routes.some((r) => r.dst === "127.0.0.0" && r.dstLength === 8), "the local table's loopback route");
      const [reply] = rtnl.request(getLinkByName("lo"));
      assert.equal(decodeLink(reply!).name, "lo");
    } finally {
      rtnl.close();
    }
  });

  test("a missing link is a NetlinkError with ENODEV", () => {
    const rtnl = new Rtnl(openNetlink());
    try {
      assert.throws(() => rtnl.request(getLinkByName("crtest-none")), (e: unknown) => e instanceof NetlinkError && e.code === "ENODEV" && /look up crtest-none/.test(e.message));
    } finally {
      rtnl.close();
    }
  });
});

describe("Rtnl", () => {
  test("a batch goes out as one datagram and returns each request's replies", () => {
    const sock = fakeSocket((seqs) => [
      ack(seqs[0]!, 0),
      Buffer.concat([nlmsg(RTM_NEWLINK, 0, seqs[1]!, ifinfomsg({ index: 9 }, [[IFLA_IFNAME, "crtest0"]])), ack(seqs[1]!, 0)]),
    ]);
    const rtnl = new Rtnl(sock);
    const [first, second] = rtnl.batch([newBridge("crtest0", "02:00:00:00:00:01"), getLinkByName("crtest0")]);
    assert.equal(sock.sent.length, 1);
    assert.equal(splitMessages(sock.sent[0]!).length, 2);
    assert.deepEqual(first, []);
    assert.equal(decodeLink(second![0]!).index, 9);
  });

  test("a refusal names the request, the errno, the kernel's sentence and a hint", () => {
    const sock = fakeSocket((seqs) => [ack(seqs[0]!, 17, "Device or resource busy")]);
    const rtnl = new Rtnl(sock);
    assert.throws(() => rtnl.batch([newBridge("crtest0", "02:00:00:00:00:01")]), (err: unknown) => {
      assert.ok(err instanceof NetlinkError);
      assert.equal(err.code, "EEXIST");
      assert.equal(err.syscall, "RTM_NEWLINK");
      assert.match(err.message, /^create bridge crtest0: RTM_NEWLINK crtest0: EEXIST \(file already exists\): kernel says "Device or resource busy"; an interface with that name already exists$/);
      return true;
    });
  });

  test("results tell which requests of a batch took effect", () => {
    const sock = fakeSocket((seqs) => [ack(seqs[0]!, 0), ack(seqs[1]!, 19)]);
    const r = new Rtnl(sock).results([setLinkUp({ index: 3, name: "a" }), deleteLink({ index: 4, name: "b" })]);
    assert.equal(r[0]!.ok, true);
    assert.equal(!r[1]!.ok && r[1]!.error.code, "ENODEV");
  });

  test("a dump collects messages until NLMSG_DONE", () => {
    const sock = fakeSocket((seqs) => [
      Buffer.concat([nlmsg(RTM_NEWLINK, 2, seqs[0]!, ifinfomsg({ index: 1 }, [[IFLA_IFNAME, "lo"]]))]),
      Buffer.concat([nlmsg(RTM_NEWLINK, 2, seqs[0]!, ifinfomsg({ index: 2 }, [[IFLA_IFNAME, "eth0"]])), nlmsg(NLMSG_DONE, 2, seqs[0]!, Buffer.alloc(4))]),
    ]);
    const links = new Rtnl(sock).dump({ type: 18, flags: 0x300, payload: ifinfomsg({}), what: "list links", object: "links" }).map(decodeLink);
    assert.deepEqual(links.map((l) => l.name), ["lo", "eth0"]);
  });

  test("no reply at all is an error, not a hang", () => {
    const rtnl = new Rtnl(fakeSocket(() => []));
    assert.throws(() => rtnl.batch([setLinkUp({ name: "lo" })]), /answered 0 of 1/);
  });

  test("decodeError reads a plain ack as errno 0", () => {
    const [m] = splitMessages(ack(5, 0));
    assert.deepEqual(decodeError(m!), { errno: 0, message: undefined });
  });
});
