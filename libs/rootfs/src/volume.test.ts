import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, sep } from "node:path";
import { after, before, describe, test } from "node:test";
import { checkRootfs, parseVolume } from "./volume.ts";

let base: string;

before(() => {
  base = mkdtempSync(join(tmpdir(), "corerun-volume-test-"));
  mkdirSync(join(base, "data"));
  writeFileSync(join(base, "file.conf"), "");
});

after(() => {
  if (base.startsWith(tmpdir() + sep) && base.includes("corerun-volume-test-")) rmSync(base, { recursive: true, force: true });
});

describe("parseVolume", () => {
  test("HOST:CTR is a read-write bind", () => {
    assert.deepEqual(parseVolume(`${base}/data:/data`), { source: join(base, "data"), target: "/data", readonly: false, idmap: false });
  });

  test(":ro and :rw set the mode", () => {
    assert.equal(parseVolume(`${base}/data:/data:ro`).readonly, true);
    assert.equal(parseVolume(`${base}/data:/data:rw`).readonly, false);
  });

  test("a relative host path is resolved against the given cwd", () => {
    assert.equal(parseVolume("data:/data", base).source, join(base, "data"));
    assert.equal(parseVolume("./file.conf:/etc/x.conf", base).source, join(base, "file.conf"));
    assert.equal(parseVolume(`${relative(process.cwd(), base)}/data:/d`).source, join(base, "data"));
  });

  test("a trailing slash on the container path is dropped", () => {
    assert.equal(parseVolume(`${base}/data:/data/`).target, "/data");
  });

  test("a missing host path is refused with the resolved path and the fix", () => {
    assert.throws(() => parseVolume("nope:/data", base), {
      name: "UsageError",
      message: `-v "nope:/data": host path ${join(base, "nope")} does not exist; create it first`,
    });
  });

  for (const spec of ["", "/data", ":/data", `${base}:`, `${base}::ro`, `${base}:/a:ro:x`, "a:b:c:d"]) {
    test(`refuses the malformed ${JSON.stringify(spec)}`, () => {
      assert.throws(() => parseVolume(spec, base), { name: "UsageError", message: /expected HOST_PATH:CONTAINER_PATH\[:ro\|rw\]/ });
    });
  }

  test("a relative container path is refused", () => {
    assert.throws(() => parseVolume("data:data", base), { name: "UsageError", message: /container path "data" must be absolute/ });
  });

  test("a container path with .. is refused", () => {
    assert.throws(() => parseVolume("data:/a/../../etc", base), { name: "UsageError", message: /may not contain "\.\."/ });
    assert.throws(() => parseVolume("data:/..", base), { name: "UsageError", message: /may not contain "\.\."/ });
  });

  test("a name that only contains dots is not ..", () => {
    assert.equal(parseVolume("data:/a/..b", base).target, "/a/..b");
  });

  test("mounting over the container's / is refused", () => {
    assert.throws(() => parseVolume("data:/", base), { name: "UsageError", message: /cannot mount over the container's \// });
    assert.throws(() => parseVolume("data://", base), { name: "UsageError", message: /cannot mount over/ });
  });

  test("an unknown mode is refused, naming it", () => {
    assert.throws(() => parseVolume("data:/data:rx", base), { name: "UsageError", message: /unknown mode "rx"; use ro or rw/ });
    assert.throws(() => parseVolume("data:/data:RO", base), { name: "UsageError", message: /unknown mode "RO"/ });
  });
});

describe("checkRootfs", () => {
  test("returns the absolute path of a directory", () => {
    assert.equal(checkRootfs(join(base, "data")), join(base, "data"));
  });

  test("refuses a missing value, a missing path and a file", () => {
    assert.throws(() => checkRootfs(undefined), { name: "UsageError", message: /--rootfs is required/ });
    assert.throws(() => checkRootfs(join(base, "nope")), { name: "UsageError", message: /no such directory/ });
    assert.throws(() => checkRootfs(join(base, "file.conf")), { name: "UsageError", message: /not a directory/ });
  });
});
