import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { rulesetFor, syncRuleset } from "./nft.ts";
import { emptyRecords, type Records } from "./records.ts";

function records(): Records {
  const r = emptyRecords();
  r.networks.push({ name: "crtest0", bridge: "crtest0", subnet: "10.213.0.0/24", gateway: "10.213.0.1", mac: "02:00:00:00:00:01", created: "" });
  r.leases.push({
    id: "c1", network: "crtest0", address: "10.213.0.2", veth: "cr000000000001", state: "active", owner: { pid: 1, startTime: 1 }, created: "",
    ports: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }, { hostIp: "127.0.0.1", hostPort: 5353, containerPort: 53, protocol: "udp" }],
  });
  return r;
}

type Cmd = Record<string, Record<string, Record<string, unknown>>>;

describe("rulesetFor", () => {
  test("deletes and recreates only the table it is given, in one transaction", () => {
    const cmds = (rulesetFor(records(), "corerun_test") as { nftables: Cmd[] }).nftables;
    assert.deepEqual(cmds.slice(0, 3), [
      { add: { table: { family: "ip", name: "corerun_test" } } },
      { delete: { table: { family: "ip", name: "corerun_test" } } },
      { add: { table: { family: "ip", name: "corerun_test" } } },
    ]);
    for (const c of cmds) {
      const obj = Object.values(Object.values(c)[0]!)[0]!;
      assert.equal(obj.table ?? obj.name, "corerun_test");
    }
  });

  test("one DNAT rule per published port, tcp and udp, with the host address when given", () => {
    const cmds = (rulesetFor(records(), "t") as { nftables: Cmd[] }).nftables;
    const dnat = cmds.filter((c) => c.add?.rule?.chain === "ports").map((c) => c.add!.rule!);
    assert.equal(dnat.length, 2);
    assert.deepEqual(dnat[0]!.expr, [
      { match: { op: "==", left: { payload: { protocol: "tcp", field: "dport" } }, right: 8080 } },
      { dnat: { addr: "10.213.0.2", port: 80 } },
    ]);
    assert.deepEqual((dnat[1]!.expr as unknown[])[0], { match: { op: "==", left: { payload: { protocol: "ip", field: "daddr" } }, right: "127.0.0.1" } });
    assert.equal(dnat[0]!.comment, "c1");
  });

  test("masquerade covers every network's subnet through one set", () => {
    const cmds = (rulesetFor(records(), "t") as { nftables: Cmd[] }).nftables;
    const set = cmds.find((c) => c.add?.set)!.add!.set!;
    assert.deepEqual(set.elem, [{ prefix: { addr: "10.213.0.0", len: 24 } }]);
    assert.equal(cmds.filter((c) => c.add?.rule?.chain === "postrouting").length, 3);
  });

  test("no networks: the table is only removed", () => {
    assert.deepEqual((rulesetFor(emptyRecords(), "t") as { nftables: Cmd[] }).nftables.length, 2);
  });
});

describe("syncRuleset", () => {
  test("loads when the ruleset changed, not again when it did not", () => {
    const r = records();
    const loaded: unknown[] = [];
    const opts = { boot: "b1", load: (x: unknown) => loaded.push(x) };
    assert.equal(syncRuleset(r, "t", opts), true);
    assert.equal(syncRuleset(r, "t", opts), false);
    r.leases[0]!.ports = [];
    assert.equal(syncRuleset(r, "t", opts), true);
    assert.equal(loaded.length, 2);
  });

  test("a new boot loads again: the kernel forgot the table", () => {
    const r = records();
    const loaded: unknown[] = [];
    syncRuleset(r, "t", { boot: "b1", load: (x) => loaded.push(x) });
    syncRuleset(r, "t", { boot: "b2", load: (x) => loaded.push(x) });
    assert.equal(loaded.length, 2);
  });

  test("the records keep the text nft was given; a record with only a digest (an earlier version's) loads once more", () => {
    const r = records();
    const loaded: unknown[] = [];
    const opts = { boot: "b1", load: (x: unknown) => loaded.push(x) };
    syncRuleset(r, "t", opts);
    assert.equal(r.nft?.ruleset, JSON.stringify(loaded[0]));
    r.nft = { bootId: "b1" };
    assert.equal(syncRuleset(r, "t", opts), true);
    assert.equal(syncRuleset(r, "t", opts), false);
    assert.equal(loaded.length, 2);
  });

  test("nothing wanted and nothing loaded in this boot: no nft process", () => {
    const loaded: unknown[] = [];
    assert.equal(syncRuleset(emptyRecords(), "t", { boot: "b1", load: (x) => loaded.push(x) }), false);
    assert.equal(loaded.length, 0);
  });
});
