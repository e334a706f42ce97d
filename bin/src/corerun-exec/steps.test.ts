import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { resolveUser } from "./steps.ts";

const PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n";
const GROUP = "root:x:0:\nnogroup:x:65534:\napp:x:1000:\nwheel:x:10:app,other\naudio:x:29:other\n";

describe("resolveUser", () => {
  test("a name: its uid, gid, home, and the groups that list it", () => {
    assert.deepEqual(resolveUser("app", PASSWD, GROUP), { uid: 1000, gid: 1000, groups: [1000, 10], home: "/home/app" });
    assert.deepEqual(resolveUser("nobody", PASSWD, GROUP), { uid: 65534, gid: 65534, groups: [65534], home: "/nonexistent" });
  });
  test("a uid with an entry takes its gid; without one, gid 0 and home /", () => {
    assert.deepEqual(resolveUser("1000", PASSWD, GROUP), { uid: 1000, gid: 1000, groups: [1000, 10], home: "/home/app" });
    assert.deepEqual(resolveUser("4242", PASSWD, GROUP), { uid: 4242, gid: 0, groups: [0], home: "/" });
    assert.deepEqual(resolveUser("0", "", ""), { uid: 0, gid: 0, groups: [0], home: "/root" });
  });
  test("USER:GROUP by name or number; a given group drops the /etc/group memberships", () => {
    assert.deepEqual(resolveUser("app:audio", PASSWD, GROUP), { uid: 1000, gid: 29, groups: [29], home: "/home/app" });
    assert.deepEqual(resolveUser("1000:1000", "", ""), { uid: 1000, gid: 1000, groups: [1000], home: "/" });
  });
  test("an unknown name is bad input that says where it was looked up", () => {
    assert.throws(() => resolveUser("ghost", PASSWD, GROUP), /^UsageError: --user ghost: no user "ghost" in the container's \/etc\/passwd/);
    assert.throws(() => resolveUser("app:ghosts", PASSWD, GROUP), /no group "ghosts" in the container's \/etc\/group/);
  });
});
