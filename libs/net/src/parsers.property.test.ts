import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { refusesCleanly } from "@corerun/cli/testing";
import { UsageError } from "@corerun/cli";
import { cidrString, contains, formatIPv4, mask, parseCidr, parseIPv4 } from "./ip.ts";
import { checkId, checkName, checkNetworkName, parseSubnet } from "./network.ts";
import { decodeProcAddress, parsePublish, portString } from "./ports.ts";
import { decodeAttrs, splitMessages } from "./rtnl.ts";

const uint32 = fc.integer({ min: 0, max: 0xffffffff });
const port = fc.integer({ min: 1, max: 65535 });

describe("network parsers, on generated input", () => {
  test("an IPv4 address survives formatting and parsing", () => {
    fc.assert(fc.property(uint32, (n) => assert.equal(parseIPv4(formatIPv4(n)), n)));
  });

  test("what parseIPv4 accepts formats back to the same four numbers", () => {
    fc.assert(fc.property(fc.oneof(fc.string({ maxLength: 20 }), fc.ipV4(), fc.ipV4Extended()), (s) => {
      const n = parseIPv4(s);
      if (n === undefined) return;
      assert.ok(n >= 0 && n <= 0xffffffff && Number.isInteger(n));
      assert.equal(parseIPv4(formatIPv4(n)), n);
    }));
  });

  test("a network address survives formatting and parsing, and contains every address of its block", () => {
    fc.assert(fc.property(uint32, fc.integer({ min: 0, max: 32 }), (addr, prefix) => {
      const base = (addr & mask(prefix)) >>> 0;
      const c = parseCidr(`${formatIPv4(base)}/${prefix}`);
      assert.deepEqual(c, { base, prefix });
      if (typeof c === "string") return;
      assert.deepEqual(parseCidr(cidrString(c)), c);
      assert.ok(contains(c, addr));
      // The same address with host bits set is refused, and the reason names the network.
      if (addr !== base) assert.equal(parseCidr(`${formatIPv4(addr)}/${prefix}`), `has host bits set; the network is ${formatIPv4(base)}/${prefix}`);
    }));
  });

  test("parseCidr and --subnet never throw anything but a reason, on any text", () => {
    fc.assert(fc.property(fc.string({ maxLength: 24 }), (s) => {
      const c = parseCidr(s);
      assert.ok(typeof c === "string" || (Number.isInteger(c.prefix) && c.prefix >= 0 && c.prefix <= 32));
      refusesCleanly(() => parseSubnet(s));
    }));
  });

  test("-P [IP:]HOST:CTR[/proto] round-trips through portString", () => {
    fc.assert(fc.property(fc.option(fc.ipV4(), { nil: undefined }), port, port, fc.constantFrom("tcp", "udp"), (ip, host, ctr, proto) => {
      const spec = `${ip === undefined ? "" : `${ip}:`}${host}:${ctr}/${proto}`;
      const p = parsePublish(spec);
      assert.equal(p.hostPort, host);
      assert.equal(p.containerPort, ctr);
      assert.equal(p.protocol, proto);
      assert.deepEqual(parsePublish(portString(p)), p);
    }));
  });

  test("-P on arbitrary text returns a valid port or refuses in one line", () => {
    fc.assert(fc.property(fc.string({ maxLength: 30 }), (s) => {
      try {
        const p = parsePublish(s);
        assert.ok(p.hostPort >= 0 && p.hostPort <= 65535 && p.containerPort >= 1 && p.containerPort <= 65535);
      } catch (err) {
        assert.ok(err instanceof UsageError, String(err));
      }
    }));
  });

  test("names, ids and bridge names: accepted as given, or refused in one line", () => {
    fc.assert(fc.property(fc.string({ maxLength: 140 }), (s) => {
      for (const check of [checkId, checkName, (x: string) => checkNetworkName(x)]) {
        try {
          assert.equal(check(s), s);
        } catch (err) {
          assert.ok(err instanceof UsageError, String(err));
        }
      }
    }));
  });

  test("netlink decoding of arbitrary bytes ends, and fails only with an Error", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => {
      const buf = Buffer.from(bytes);
      for (const decode of [() => decodeAttrs(buf), () => splitMessages(buf)]) {
        try {
          decode();
        } catch (err) {
          assert.ok(err instanceof Error);
        }
      }
    }));
  });

  test("/proc/net addresses: an IPv4 address printed as the kernel does decodes to itself", () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 0xffffffff }), (n) => {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(n);
      const hex = b.readUInt32LE().toString(16).toUpperCase().padStart(8, "0");
      assert.equal(decodeProcAddress(hex, false), formatIPv4(n));
      assert.equal(decodeProcAddress(`0000000000000000FFFF0000${hex}`, true), formatIPv4(n));
    }));
  });
});
