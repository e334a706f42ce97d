import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { statSync } from "node:fs";
import { parseDevice } from "./devices.ts";

// Nodes every Linux host has: /dev/null (c 1:3), /dev/zero (c 1:5), and devpts's ptmx (c 5:2).
describe("parseDevice: Docker's --device HOST[:CONTAINER][:PERMISSIONS]", () => {
  it("a node at its own path with rwm, at another path, with permissions in second or third place", () => {
    assert.deepEqual(parseDevice("/dev/null"), [{ source: "/dev/null", target: "/dev/null", type: "c", major: 1, minor: 3, permissions: "rwm" }]);
    assert.deepEqual(parseDevice("/dev/zero:/dev/myzero"), [{ source: "/dev/zero", target: "/dev/myzero", type: "c", major: 1, minor: 5, permissions: "rwm" }]);
    assert.equal(parseDevice("/dev/zero:r")[0]!.permissions, "r");
    assert.equal(parseDevice("/dev/zero:r")[0]!.target, "/dev/zero");
    assert.equal(parseDevice("/dev/zero:/dev/z:mw")[0]!.permissions, "mw");
  });
  it("a directory: each node under it, at the same place under the container path", () => {
    const found = parseDevice("/dev/pts:/dev/hostpts");
    const ptmx = found.find((d) => d.source === "/dev/pts/ptmx");
    assert.deepEqual(ptmx, { source: "/dev/pts/ptmx", target: "/dev/hostpts/ptmx", type: "c", major: 5, minor: 2, permissions: "rwm" });
    for (const d of found) assert.ok(statSync(d.source).isCharacterDevice(), d.source);
  });
  it("refuses, in one line naming the value: no such path, not a device, a path outside /dev or over /dev's own, bad permissions", () => {
    const cases: [string, RegExp][] = [
      ["/dev/corerun-no-such-device", /cannot stat \/dev\/corerun-no-such-device \(ENOENT\)/],
      ["/etc/hostname", /is not a device node/],
      ["/dev/null:/opt/null", /must be under \/dev/],
      ["/dev/null:/dev/../etc/null", /must be under \/dev/],
      ["/dev/zero:/dev/null", /\/dev\/null is the container's c 1:3 device already/],
      ["/dev/null:/dev/pts/0", /\/dev\/pts is the container's own \(a mount\)/],
      ["/dev/null:/dev/stdout", /\/dev\/stdout is the container's own \(a link\)/],
      ["/dev/null:rwx", /neither an absolute container path nor permissions/],
      ["/dev/null:/dev/n:rr", /permissions "rr"/],
      ["dev/null", /host path "dev\/null" must be absolute/],
      ["/dev/null:/dev/a:r:x", /expected HOST_PATH/],
      ["/dev/null::r", /expected HOST_PATH/],
    ];
    for (const [spec, re] of cases) {
      assert.throws(() => parseDevice(spec), (e: Error) => re.test(e.message) && e.message.startsWith(`--device "${spec}"`) && !e.message.includes("\n"), spec);
    }
  });
});
