import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { appendedRules, rulesetFor, syncRuleset } from "./nft.ts";
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
type Json = Record<string, unknown>;

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

  test("the records keep the text of the table nft was given; a record with only a digest (an earlier version's) loads once more", () => {
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

  test("a container with published ports joining: only its rules are added, and the records hold the whole table", () => {
    const r = records();
    const loaded: Json[] = [];
    const opts = { boot: "b1", load: (x: Json) => loaded.push(x) };
    syncRuleset(r, "t", opts);
    r.leases.push({ ...r.leases[0]!, id: "c2", address: "10.213.0.3", veth: "cr000000000002", ports: [{ hostPort: 8081, containerPort: 80, protocol: "tcp" }] });
    assert.equal(syncRuleset(r, "t", opts), true);
    assert.deepEqual(loaded[1], { nftables: [{ add: { rule: { family: "ip", table: "t", chain: "ports", comment: "c2", expr: [
      { match: { op: "==", left: { payload: { protocol: "tcp", field: "dport" } }, right: 8081 } },
      { dnat: { addr: "10.213.0.3", port: 80 } },
    ] } } }] });
    assert.equal(r.nft?.ruleset, JSON.stringify(rulesetFor(r, "t")));
    assert.equal(syncRuleset(r, "t", opts), false);
  });

  test("a container leaving, a new network or a changed rule: the table is reloaded whole", () => {
    const r = records();
    const loaded: Json[] = [];
    const opts = { boot: "b1", load: (x: Json) => loaded.push(x) };
    syncRuleset(r, "t", opts);
    const whole = (x: Json | undefined) => (x as { nftables: Cmd[] }).nftables[1]?.delete?.table !== undefined;
    r.leases[0]!.ports = r.leases[0]!.ports.slice(1);
    syncRuleset(r, "t", opts);
    assert.ok(whole(loaded.at(-1)), "a port gone");
    r.networks.push({ ...r.networks[0]!, name: "crtest1", bridge: "crtest1", subnet: "10.213.1.0/24" });
    syncRuleset(r, "t", opts);
    assert.ok(whole(loaded.at(-1)), "a network added");
    r.leases[0]!.ports[0]!.hostPort = 5354;
    syncRuleset(r, "t", opts);
    assert.ok(whole(loaded.at(-1)), "a rule changed");
    assert.equal(loaded.length, 4);
  });

  test("added rules that nft refuses (the table was removed by hand): the table is loaded whole after them", () => {
    const r = records();
    const loaded: Json[] = [];
    syncRuleset(r, "t", { boot: "b1", load: (x) => loaded.push(x) });
    r.leases.push({ ...r.leases[0]!, id: "c2", ports: [{ hostPort: 8081, containerPort: 80, protocol: "tcp" }] });
    syncRuleset(r, "t", { boot: "b1", load: (x) => {
      if (loaded.push(x) === 2) throw new Error("nft refused corerun's ruleset: No such file or directory");
    } });
    assert.equal(loaded.length, 3);
    assert.deepEqual(loaded[2], rulesetFor(r, "t"));
  });
});

describe("syncRuleset and a process killed while nft runs", () => {
  /** The records as a command reads them, and what it writes: only what it saved, or the marker. */
  function onDisk(first: Records) {
    let disk = structuredClone(first);
    return {
      read: () => structuredClone(disk),
      save: (r: Records) => (disk = structuredClone(r)),
      markUnknown: () => (disk = { ...disk, nft: { bootId: "b1" } }),
    };
  }

  test("the records on disk say the table is unknown while nft runs; killed then, the next start loads it whole", () => {
    const r = records();
    syncRuleset(r, "t", { boot: "b1", load: () => {} });
    const disk = onDisk(r);
    // A start: its lease, with a port, is recorded before nft runs; it is killed during the load.
    r.leases.push({ ...r.leases[0]!, id: "c2", ports: [{ hostPort: 8081, containerPort: 80, protocol: "tcp" }] });
    disk.save(r);
    const loads: Json[] = [];
    syncRuleset(r, "t", { boot: "b1", load: (x) => loads.push(x), markUnknown: disk.markUnknown });
    assert.equal(loads.length, 1);
    // The next command: c2 is reclaimed, c3 joins with a port.
    const next = disk.read();
    assert.deepEqual(next.nft, { bootId: "b1" }, "marked before the load, without a text");
    next.leases = next.leases.filter((l) => l.id !== "c2");
    next.leases.push({ ...next.leases[0]!, id: "c3", ports: [{ hostPort: 8082, containerPort: 80, protocol: "tcp" }] });
    const after: Json[] = [];
    syncRuleset(next, "t", { boot: "b1", load: (x) => after.push(x) });
    assert.deepEqual(after, [rulesetFor(next, "t")], "the whole table, without c2's rule");
  });

  test("a load nft refuses leaves the records as they were saved, marked: the command can be run again", () => {
    const r = records();
    syncRuleset(r, "t", { boot: "b1", load: () => {} });
    const disk = onDisk(r);
    // A teardown: the lease leaves the records in memory, then nft fails.
    r.leases = [];
    const refuse = () => {
      throw new Error("nft refused corerun's ruleset");
    };
    assert.throws(() => syncRuleset(r, "t", { boot: "b1", load: refuse, markUnknown: disk.markUnknown }), /refused/);
    const again = disk.read();
    assert.equal(again.leases.length, 1, "the lease is still recorded, for the teardown to be run again");
    assert.deepEqual(again.nft, { bootId: "b1" });
    again.leases = [];
    const loads: Json[] = [];
    assert.equal(syncRuleset(again, "t", { boot: "b1", load: (x) => loads.push(x) }), true);
    assert.deepEqual(loads, [rulesetFor(again, "t")]);
  });

  test("the last network removed while nft runs: the next sync still removes the table", () => {
    const r = records();
    syncRuleset(r, "t", { boot: "b1", load: () => {} });
    const disk = onDisk(r);
    r.networks = [];
    r.leases = [];
    disk.save(r);
    syncRuleset(r, "t", { boot: "b1", load: () => {}, markUnknown: disk.markUnknown });
    const after: Json[] = [];
    assert.equal(syncRuleset(disk.read(), "t", { boot: "b1", load: (x) => after.push(x) }), true);
    assert.deepEqual(after, [rulesetFor(emptyRecords(), "t")]);
  });

  test("added rules nft refuses: said in the log, and the table is loaded whole", () => {
    const r = records();
    syncRuleset(r, "t", { boot: "b1", load: () => {} });
    r.leases.push({ ...r.leases[0]!, id: "c2", ports: [{ hostPort: 8081, containerPort: 80, protocol: "tcp" }] });
    const said: string[] = [];
    let n = 0;
    syncRuleset(r, "t", { boot: "b1", load: () => {
      if (n++ === 0) throw new Error("nft refused corerun's ruleset: No such file or directory");
    }, log: (m) => said.push(m) });
    assert.equal(n, 2);
    assert.match(said[0]!, /No such file or directory; loading table ip t whole/);
  });
});

describe("appendedRules", () => {
  const text = (r: Records) => JSON.stringify(rulesetFor(r, "t"));
  test("only DNAT rules appended to what was loaded", () => {
    const r = records();
    const before = text(r);
    assert.equal(appendedRules(before, rulesetFor(r, "t")), undefined, "nothing added");
    r.leases.push({ ...r.leases[0]!, id: "c2" });
    assert.equal((appendedRules(before, rulesetFor(r, "t")) as { nftables: Cmd[] }).nftables.length, 2);
  });

  test("a text that is not a loaded ruleset's, or one whose commands differ before the new ones, adds nothing", () => {
    const r = records();
    r.leases.push({ ...r.leases[0]!, id: "c2" });
    assert.equal(appendedRules("", rulesetFor(r, "t")), undefined);
    assert.equal(appendedRules('{"nftables":[]}', rulesetFor(r, "t")), undefined);
    const other = records();
    other.leases[0]!.address = "10.213.0.9";
    assert.equal(appendedRules(text(other), rulesetFor(r, "t")), undefined);
  });
});
