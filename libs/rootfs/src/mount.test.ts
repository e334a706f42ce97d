import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";
import { mountFields, parseMount } from "./mount.ts";

describe("parseMount: Docker's --mount", () => {
  it("splits its fields as CSV: a quoted field may hold commas and doubled quotes", () => {
    assert.deepEqual(mountFields('type=bind,"source=/a,b",target=/c'), ["type=bind", "source=/a,b", "target=/c"]);
    assert.deepEqual(mountFields('target="/x""y"'), ['target=/x"y']);
    assert.throws(() => mountFields('source="/a'), /a quote is not closed/);
  });

  it("type=bind: source (src), target (destination, dst), readonly (ro) bare or true/false; a relative source is resolved", () => {
    const dir = mkdtempSync(join(tmpdir(), "corerun-mount-test-"));
    try {
      assert.deepEqual(parseMount(`type=bind,src=${dir},dst=/data/,ro`), { type: "bind", bind: { source: dir, target: "/data", readonly: true, idmap: false } });
      assert.deepEqual(parseMount(`type=bind,source=${dir},destination=/d,readonly=false,bind-propagation=rprivate`).type, "bind");
      assert.equal((parseMount(`type=bind,source=.,target=/d,readonly=1`, dir) as { bind: { source: string; readonly: boolean } }).bind.source, dir);
      assert.equal((parseMount(`type=bind,source=${dir},target=/d,readonly=true`) as { bind: { readonly: boolean } }).bind.readonly, true);
    } finally {
      if (dir.startsWith(tmpdir() + sep) && dir.includes("corerun-mount-test-")) rmSync(dir, { recursive: true, force: true });
    }
  });

  it("type=tmpfs: --tmpfs's defaults, tmpfs-size and tmpfs-mode", () => {
    assert.deepEqual(parseMount("type=tmpfs,target=/cache,tmpfs-size=64m,tmpfs-mode=01770"), {
      type: "tmpfs", tmpfs: { target: "/cache", readonly: false, exec: false, suid: false, dev: false, data: ["size=64m", "mode=1770"] },
    });
    assert.equal((parseMount("type=tmpfs,dst=/r,ro") as { tmpfs: { readonly: boolean } }).tmpfs.readonly, true);
  });

  it("refuses in one line naming the value: volumes, unknown types and options, missing fields, bad values", () => {
    const cases: [string, RegExp][] = [
      ["target=/x", /named volumes \(type=volume, Docker's default type\) are not built yet; give type=bind with a host path, or type=tmpfs/],
      ["type=npipe,target=/x", /type=npipe is not one corerun mounts; use bind or tmpfs/],
      ["type=bind,source=/,target=/x,consistency=cached", /consistency is not an option of type=bind that corerun takes; use source, target, readonly, bind-propagation/],
      ["type=tmpfs,target=/x,source=/tmp", /source is not an option of type=tmpfs that corerun takes/],
      ["type=bind,source=/", /no target; give target=\/path\/in\/container/],
      ["type=bind,target=/x", /no source; give source=\/path\/on\/host/],
      ["type=bind,source=/,target=/x,readonly=maybe", /readonly=maybe is not true or false/],
      ["type=bind,source=/,target=/x,bind-propagation=rshared", /bind-propagation=rshared is not built yet/],
      ["type=bind,source=/corerun-no-such,target=/x", /host path \/corerun-no-such does not exist; create it first/],
      ["type=bind,source=/,target=x", /container path "x" must be absolute/],
      ["type=bind,source=/,target=/", /cannot mount over the container's \//],
      ["type=tmpfs,target=/proc", /\/proc is the container's own mount/],
      ["type=tmpfs,target=/x,tmpfs-size=lots", /tmpfs-size=lots is not a size/],
      ["type=tmpfs,target=/x,tmpfs-mode=999", /tmpfs-mode=999 is not an octal mode/],
      ["type=bind,type=tmpfs,target=/x", /type is given twice/],
      ["type=bind,,target=/x", /an empty field/],
    ];
    for (const [spec, re] of cases) {
      assert.throws(() => parseMount(spec), (e: Error) => re.test(e.message) && e.message.startsWith(`--mount "${spec}": `) && !e.message.includes("\n"), spec);
    }
  });
});
