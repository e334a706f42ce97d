import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseTmpfs, tmpfsPoints, tmpfsText } from "./tmpfs.ts";

describe("parseTmpfs: Docker's --tmpfs PATH[:OPTIONS]", () => {
  it("noexec, nosuid and nodev by default, read-write, tmpfs's own size", () => {
    assert.deepEqual(parseTmpfs("/tmp"), { target: "/tmp", readonly: false, exec: false, suid: false, dev: false, data: [] });
    assert.equal(tmpfsText(parseTmpfs("/tmp")), "/tmp:rw,noexec,nosuid,nodev");
  });
  it("options override the defaults, the later winning; tmpfs's own options pass as data, one of each", () => {
    const t = parseTmpfs("/run/app/:ro,exec,suid,dev,size=64m,mode=1777,uid=1000,gid=1000,nr_inodes=1k,size=2m,rw");
    assert.deepEqual(t, { target: "/run/app", readonly: false, exec: true, suid: true, dev: true, data: ["mode=1777", "uid=1000", "gid=1000", "nr_inodes=1k", "size=2m"] });
    assert.deepEqual(parseTmpfs(tmpfsText(t)), t, "its text reads back the same");
    assert.deepEqual(tmpfsPoints([t]), [{ source: "", target: "/run/app", readonly: false, kind: "dir" }]);
  });
  it("refuses in one line naming the value: a relative path, .., /, the container's own mounts, unknown or bad options", () => {
    const cases: [string, RegExp][] = [
      ["tmp", /must be absolute/],
      ["/a/../b", /must be absolute, without "\.\."/],
      ["/", /cannot replace the container's \//],
      ["/proc", /\/proc is the container's own mount/],
      ["/sys/x", /\/sys is the container's own mount/],
      ["/dev", /\/dev is the container's own mount/],
      ["/x:shared", /unknown option "shared"/],
      ["/x:size=lots", /size=lots is not valid/],
      ["/x:mode=999", /mode=999 is not valid/],
      ["/x:size", /size= is not valid/],
    ];
    for (const [spec, re] of cases) {
      assert.throws(() => parseTmpfs(spec), (e: Error) => re.test(e.message) && e.message.startsWith(`--tmpfs "${spec}"`) && !e.message.includes("\n"), spec);
    }
    assert.equal(parseTmpfs("/dev/hugepages").target, "/dev/hugepages", "below /dev is the container's to mount");
  });
});
