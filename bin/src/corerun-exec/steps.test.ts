import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";
import { after, describe, test } from "node:test";
import { UsageError } from "@corerun/cli";
import { PR_SET_NO_NEW_PRIVS, recordingSyscall } from "@corerun/syscall";
import { parseExecOptions } from "./args.ts";
import { groupsInNamespace, lockDown, resolveUser } from "./steps.ts";

const base = mkdtempSync(join(tmpdir(), "corerun-exec-test-"));
after(() => {
  if (base.startsWith(tmpdir() + sep) && base.includes("corerun-exec-test-")) rmSync(base, { recursive: true, force: true });
});

function options(values: Record<string, string[]>, flags: Record<string, boolean> = {}) {
  return parseExecOptions({ values, flags, tail: ["/bin/true"] }, {});
}

describe("lockDown", () => {
  test("no_new_privs, then the filter: nothing else", () => {
    const { sys, calls } = recordingSyscall();
    const program = Buffer.alloc(16);
    lockDown(sys, { noNewPrivs: true, seccomp: { program, flags: 2 } });
    assert.deepEqual(calls, [{ name: "prctl", args: [PR_SET_NO_NEW_PRIVS, 1] }, { name: "seccompFilter", args: [program, 2] }]);
  });

  test("neither asked: no call", () => {
    const { sys, calls } = recordingSyscall();
    lockDown(sys, { noNewPrivs: false, seccomp: undefined });
    assert.deepEqual(calls, []);
  });
});

describe("--seccomp, --seccomp-flag, --mount-cgroup", () => {
  test("the program is read at start; flags by their OCI names or short ones", () => {
    const file = join(base, "ok.bpf");
    writeFileSync(file, Buffer.alloc(16, 1));
    const opts = options({ seccomp: [file], "seccomp-flag": ["SECCOMP_FILTER_FLAG_LOG", "SPEC_ALLOW"] });
    assert.deepEqual(opts.seccomp, { program: Buffer.alloc(16, 1), flags: 2 | 4 });
  });

  test("what is not a program, or options without their partner, are refused", () => {
    const odd = join(base, "odd.bpf");
    writeFileSync(odd, Buffer.alloc(12));
    assert.throws(() => options({ seccomp: [odd] }), (e: unknown) => e instanceof UsageError && /12 bytes is not a BPF program/.test(e.message));
    assert.throws(() => options({ seccomp: [join(base, "none.bpf")] }), (e: unknown) => e instanceof UsageError && /cannot be read \(ENOENT\)/.test(e.message));
    assert.throws(() => options({ "seccomp-flag": ["LOG"] }), (e: unknown) => e instanceof UsageError && /--seccomp-flag needs --seccomp FILE/.test(e.message));
    writeFileSync(join(base, "ok.bpf"), Buffer.alloc(8));
    assert.throws(() => options({ seccomp: [join(base, "ok.bpf")], "seccomp-flag": ["TURBO"] }), (e: unknown) => e instanceof UsageError && /--seccomp-flag TURBO: unknown/.test(e.message));
    assert.throws(() => options({}, { "mount-cgroup": true }), (e: unknown) => e instanceof UsageError && /--mount-cgroup needs --cgroupns/.test(e.message));
  });
});

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
  test("--group-add: names from /etc/group and gids join any user's groups, once each", () => {
    assert.deepEqual(resolveUser("0", PASSWD, GROUP, ["audio", "4000", "0"]), { uid: 0, gid: 0, groups: [0, 29, 4000], home: "/root" });
    assert.deepEqual(resolveUser("app:audio", PASSWD, GROUP, ["wheel"]).groups, [29, 10]);
    assert.throws(() => resolveUser("app", PASSWD, GROUP, ["video"]), /^UsageError: --group-add video: no group "video" in the container's \/etc\/group; give a gid or a group the image has$/);
  });
});

describe("--sysctl, --group-add, --oom-score-adj", () => {
  test("each is checked before anything runs; --oci takes them from the config instead", () => {
    const refused = (values: Record<string, string[]>, re: RegExp) => assert.throws(() => options(values), (e: unknown) => e instanceof UsageError && re.test(e.message));
    refused({ sysctl: ["vm.swappiness=1"] }, /^--sysctl vm\.swappiness=1: vm\.swappiness is not a sysctl of a namespace/);
    refused({ sysctl: ["nothing"] }, /^--sysctl nothing: give KEY=VALUE/);
    refused({ "group-add": ["a,b"] }, /^--group-add a,b: give a group name/);
    refused({ "oom-score-adj": ["-1001"] }, /^--oom-score-adj -1001: give a whole number from -1000 to 1000$/);
    assert.deepEqual(options({ "group-add": ["wheel", "7"], "oom-score-adj": ["10"] }).groupAdd, ["wheel", "7"]);
    assert.throws(() => parseExecOptions({ values: { oci: ["/x/config.json"], sysctl: ["net.core.somaxconn=1"], "group-add": ["1"] }, flags: {}, tail: [] }, {}),
      (e: unknown) => e instanceof UsageError && /^--oci takes the process .* from config\.json; drop --group-add, --sysctl$/.test(e.message));
  });

  test("a sysctl of a namespace this process shares with its parent is refused (it would change the parent's)", () => {
    // The test runs in its parent's network namespace.
    assert.throws(() => options({ sysctl: ["net.core.somaxconn=1"] }), (e: unknown) => e instanceof UsageError && /^--sysctl net\.core\.somaxconn=1: corerun-exec shares its parent's network namespace, whose setting this would change; start it in a new one \(corerun-ns --ns net\)$/.test(e.message));
  });
});

describe("groupsInNamespace", () => {
  test("the gids a user namespace maps: /etc/group's others left out, --group-add's refused; none where setgroups is denied", () => {
    const map = "         0     100000          1\n      1000     101000         10\n";
    assert.deepEqual(groupsInNamespace([0, 10, 1005], [], map, "allow"), [0, 1005]);
    assert.deepEqual(groupsInNamespace([0, 4242], [], "0 0 4294967295", "allow"), [0, 4242]);
    assert.throws(() => groupsInNamespace([0, 10], [10], map, "allow"), /^UsageError: --group-add: gid 10 is not mapped in the container's user namespace; give a gid its --gidmap maps$/);
    assert.throws(() => groupsInNamespace([0, 5], [5], "0 1000 1", "deny"), /^UsageError: --group-add: this user namespace denies setgroups/);
    assert.deepEqual(groupsInNamespace([0], [], "0 1000 1", "deny"), [0]);
  });
});
