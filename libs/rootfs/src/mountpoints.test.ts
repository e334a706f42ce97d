import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";
import { after, before, describe, test } from "node:test";
import { missingMountPoints, type MountPoint } from "./mountpoints.ts";

let base: string;
let n = 0;

before(() => {
  base = mkdtempSync(join(tmpdir(), "corerun-mountpoints-test-"));
  mkdirSync(join(base, "host/dir"), { recursive: true });
  writeFileSync(join(base, "host/file"), "");
});

after(() => {
  if (base.startsWith(tmpdir() + sep) && base.includes("corerun-mountpoints-test-")) rmSync(base, { recursive: true, force: true });
});

function rootfs(...dirs: string[]): string {
  const root = join(base, `rootfs${n++}`);
  mkdirSync(root);
  for (const d of dirs) mkdirSync(join(root, d), { recursive: true });
  return root;
}

/** The result with paths relative to the rootfs, for readable assertions. */
function rel(root: string, points: MountPoint[]): [string, string][] {
  return points.map((p) => [p.path.slice(root.length), p.kind]);
}

const hostDir = () => join(base, "host/dir");
const hostFile = () => join(base, "host/file");

describe("missingMountPoints", () => {
  test("lists /proc, /sys and /dev when an empty rootfs lacks them", () => {
    const root = rootfs();
    const got = rel(root, missingMountPoints(root, []));
    assert.deepEqual(got.sort(), [["/dev", "dir"], ["/proc", "dir"], ["/sys", "dir"]]);
  });

  test("lists nothing when every mount point exists", () => {
    const root = rootfs("proc", "sys", "dev", "data");
    assert.deepEqual(missingMountPoints(root, [{ source: hostDir(), target: "/data", readonly: false }]), []);
  });

  test("lists only what is missing", () => {
    const root = rootfs("proc", "dev");
    assert.deepEqual(rel(root, missingMountPoints(root, [])), [["/sys", "dir"]]);
  });

  test("missing parents come first, outermost first, as directories", () => {
    const root = rootfs("proc", "sys", "dev");
    const got = rel(root, missingMountPoints(root, [{ source: hostDir(), target: "/a/b/c", readonly: false }]));
    assert.deepEqual(got, [["/a", "dir"], ["/a/b", "dir"], ["/a/b/c", "dir"]]);
  });

  test("a file volume gets a file mount point, its parents directories", () => {
    const root = rootfs("proc", "sys", "dev", "etc");
    const got = rel(root, missingMountPoints(root, [
      { source: hostFile(), target: "/etc/app/app.conf", readonly: true },
      { source: hostFile(), target: "/etc/other.conf", readonly: true },
    ]));
    assert.deepEqual(got, [["/etc/app", "dir"], ["/etc/other.conf", "file"], ["/etc/app/app.conf", "file"]]);
  });

  test("a parent shared by two volumes is listed once", () => {
    const root = rootfs("proc", "sys", "dev");
    const got = rel(root, missingMountPoints(root, [
      { source: hostDir(), target: "/mnt/one", readonly: false },
      { source: hostDir(), target: "/mnt/two", readonly: false },
    ]));
    assert.deepEqual(got[0], ["/mnt", "dir"]);
    assert.deepEqual(got.slice(1).sort(), [["/mnt/one", "dir"], ["/mnt/two", "dir"]]);
  });

  test("a mount point behind a rootfs symlink is created where the link leads, inside the rootfs", () => {
    const root = rootfs("proc", "sys", "dev", "srv");
    symlinkSync("/srv/data", join(root, "data"));
    const got = rel(root, missingMountPoints(root, [{ source: hostDir(), target: "/data", readonly: false }]));
    assert.deepEqual(got, [["/srv/data", "dir"]]);
  });

  test("a dangling rootfs symlink makes its target the mount point", () => {
    const root = rootfs("sys", "dev");
    symlinkSync("/nowhere", join(root, "proc"));
    assert.deepEqual(rel(root, missingMountPoints(root, [])), [["/nowhere", "dir"]]);
  });

  // resolveInRoot lets ".." after a missing component climb out (see resolve.test.ts), so a
  // hostile link makes corerun-mount create directories outside the rootfs.
  test("every mount point lies inside the rootfs, whatever its links say", () => {
    const root = rootfs("proc", "sys", "dev");
    symlinkSync("/missing/../../outside-of-rootfs/x", join(root, "data"));
    const got = missingMountPoints(root, [{ source: hostDir(), target: "/data", readonly: false }]);
    for (const p of got) assert.ok(p.path.startsWith(root + sep), p.path);
  });

  test("a missing host source is an error", () => {
    const root = rootfs("proc", "sys", "dev");
    assert.throws(() => missingMountPoints(root, [{ source: join(base, "gone"), target: "/x", readonly: false }]), { code: "ENOENT" });
  });
});
