import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { cidrString, formatIPv4, overlaps, parseCidr, parseIPv4, type Cidr } from "./ip.ts";
import { allocateAddress, checkSubnet, chooseSubnet, fixedAddressRefusal, gatewayOf } from "./subnet.ts";

const cidr = (text: string): Cidr => {
  const c = parseCidr(text);
  if (typeof c === "string") throw new Error(c);
  return c;
};

describe("IPv4", () => {
  test("dotted quads parse and format back", () => {
    assert.equal(formatIPv4(parseIPv4("10.213.0.254")!), "10.213.0.254");
    assert.equal(parseIPv4("255.255.255.255"), 0xffffffff);
  });

  test("anything else is refused, leading zeros included (inet_aton reads them as octal)", () => {
    for (const bad of ["10.0.0", "10.0.0.256", "010.0.0.1", "1.2.3.4.5", "a.b.c.d", " 1.2.3.4", ""]) assert.equal(parseIPv4(bad), undefined, bad);
  });

  test("CIDR: the reason comes back for malformed input", () => {
    assert.match(parseCidr("10.1.2.0") as string, /a\.b\.c\.d\/N/);
    assert.match(parseCidr("10.1.2.0/33") as string, /prefix length/);
    assert.match(parseCidr("10.1.2.3/24") as string, /host bits set; the network is 10\.1\.2\.0\/24/);
    assert.match(parseCidr("10.1.2/24") as string, /not an IPv4 address/);
    assert.equal(cidrString(cidr("10.1.2.0/24")), "10.1.2.0/24");
  });

  test("overlap is containment either way", () => {
    assert.ok(overlaps(cidr("10.0.0.0/8"), cidr("10.213.0.0/24")));
    assert.ok(overlaps(cidr("10.213.0.128/25"), cidr("10.213.0.0/24")));
    assert.ok(!overlaps(cidr("10.213.1.0/24"), cidr("10.213.0.0/24")));
  });
});

describe("subnets", () => {
  test("the first /24 of the pool that overlaps nothing taken", () => {
    const taken = [{ cidr: cidr("10.77.0.0/23"), what: "route" }, { cidr: cidr("10.77.3.0/24"), what: "net" }];
    assert.equal(cidrString(chooseSubnet(taken)), "10.77.2.0/24");
  });

  test("an exhausted pool asks for --subnet", () => {
    assert.throws(() => chooseSubnet([{ cidr: cidr("10.0.0.0/8"), what: "vpn" }]), /pass --subnet/);
  });

  test("--subnet must not overlap a host route, another network, or a reserved block", () => {
    const taken = [{ cidr: cidr("192.0.2.0/24"), what: "the host route 192.0.2.0/24" }];
    assert.throws(() => checkSubnet(cidr("192.0.2.128/25"), taken), /--subnet 192\.0\.2\.128\/25 overlaps the host route 192\.0\.2\.0\/24/);
    assert.throws(() => checkSubnet(cidr("127.1.0.0/16"), []), /loopback/);
    assert.throws(() => checkSubnet(cidr("10.0.0.0/31"), []), /\/30/);
    assert.equal(cidrString(checkSubnet(cidr("10.213.0.0/24"), taken)), "10.213.0.0/24");
  });

  test("addresses: gateway first, then the lowest free one, never the broadcast address", () => {
    const c = cidr("10.213.0.0/30");
    assert.equal(formatIPv4(gatewayOf(c)), "10.213.0.1");
    assert.equal(formatIPv4(allocateAddress(c, new Set())!), "10.213.0.2");
    assert.equal(allocateAddress(c, new Set([parseIPv4("10.213.0.2")!])), undefined);
    const big = cidr("10.213.0.0/24");
    assert.equal(formatIPv4(allocateAddress(big, new Set([parseIPv4("10.213.0.2")!, parseIPv4("10.213.0.4")!]))!), "10.213.0.3");
    // A restarted container's own address when free; never the gateway, broadcast or another subnet's.
    assert.equal(formatIPv4(allocateAddress(big, new Set([parseIPv4("10.213.0.2")!]), parseIPv4("10.213.0.9"))!), "10.213.0.9");
    assert.equal(formatIPv4(allocateAddress(big, new Set([parseIPv4("10.213.0.9")!]), parseIPv4("10.213.0.9"))!), "10.213.0.2");
    for (const bad of ["10.213.0.1", "10.213.0.255", "10.213.1.9"]) assert.equal(formatIPv4(allocateAddress(big, new Set(), parseIPv4(bad))!), "10.213.0.2");
  });

  test("a fixed address (--ip): in the subnet, not its network, broadcast or gateway address, and free", () => {
    const big = cidr("10.213.0.0/24");
    const used = new Set([parseIPv4("10.213.0.7")!]);
    assert.equal(fixedAddressRefusal(big, used, parseIPv4("10.213.0.50")!), undefined);
    assert.equal(fixedAddressRefusal(big, used, parseIPv4("10.213.0.7")!), "another container of the network has it");
    assert.equal(fixedAddressRefusal(big, used, parseIPv4("10.213.0.1")!), "it is the network's gateway");
    assert.equal(fixedAddressRefusal(big, used, parseIPv4("10.213.0.0")!), "it is the subnet's network or broadcast address");
    assert.equal(fixedAddressRefusal(big, used, parseIPv4("10.213.0.255")!), "it is the subnet's network or broadcast address");
    assert.equal(fixedAddressRefusal(big, used, parseIPv4("10.213.1.5")!), "it is outside the network's subnet");
  });
});
