import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, posix, sep } from "node:path";
import { after, describe, test } from "node:test";
import fc from "fast-check";
import { UsageError } from "@corerun/cli";
import { resolveInRoot } from "./resolve.ts";
import { parseVolume } from "./volume.ts";

const base = mkdtempSync(join(tmpdir(), "corerun-rootfs-prop-"));
after(() => {
  if (base.startsWith(tmpdir() + sep) && base.includes("corerun-rootfs-prop-")) rmSync(base, { recursive: true, force: true });
});

/** A root with links that try to leave it: absolute, climbing, and looping. */
const root = join(base, "root");
mkdirSync(join(root, "etc"), { recursive: true });
symlinkSync("/etc", join(root, "abs"));
symlinkSync("../../../../..", join(root, "up"));
symlinkSync("loop", join(root, "loop"));
symlinkSync("etc/../abs/x", join(root, "mixed"));

const segment = fc.oneof(fc.constantFrom("..", ".", "", "etc", "abs", "up", "loop", "mixed", "x"), fc.stringMatching(/^[a-z]{1,6}$/));
const inRootPath = fc.array(segment, { maxLength: 8 }).map((parts) => `/${parts.join("/")}`);

describe("path and volume parsers, on generated input", () => {
  test("whatever the path and the links it meets, resolveInRoot stays inside the root, or refuses a loop", () => {
    fc.assert(fc.property(inRootPath, (p) => {
      try {
        const r = resolveInRoot(root, p);
        assert.ok(r === root || r.startsWith(`${root}/`), `${p} -> ${r}`);
      } catch (err) {
        assert.ok(err instanceof UsageError && /too many levels of symbolic links/.test(err.message), String(err));
      }
    }));
  });

  test("without links, resolveInRoot is the path normalized below the root", () => {
    fc.assert(fc.property(fc.array(fc.oneof(fc.constantFrom("..", "."), fc.stringMatching(/^n[a-z]{0,5}$/)), { maxLength: 8 }), (parts) => {
      const p = `/${parts.join("/")}`;
      assert.equal(resolveInRoot(root, p), posix.join(root, posix.normalize(p)).replace(/\/$/, ""));
    }));
  });

  test("-v HOST:CTR[:ro|rw] with an existing host path and a clean target round-trips", () => {
    fc.assert(fc.property(fc.array(fc.stringMatching(/^[a-z][a-z0-9_-]{0,7}$/), { minLength: 1, maxLength: 4 }), fc.constantFrom("", ":ro", ":rw", ":ro,idmap", ":idmap"), (parts, mode) => {
      const target = `/${parts.join("/")}`;
      const v = parseVolume(`${base}:${target}${mode}`);
      assert.deepEqual(v, { source: base, target, readonly: mode.includes("ro"), idmap: mode.includes("idmap") });
    }));
  });

  test("-v on arbitrary text returns a clean absolute target or refuses in one line", () => {
    fc.assert(fc.property(fc.string({ maxLength: 40 }), (s) => {
      try {
        const v = parseVolume(s, base);
        assert.ok(v.target.startsWith("/") && v.target !== "/" && !v.target.split("/").includes(".."), v.target);
      } catch (err) {
        assert.ok(err instanceof UsageError, String(err));
        assert.ok(!err.message.includes("\n"), err.message);
      }
    }));
  });
});
