/**
 * Rootless: a throwaway user made by this test runs a container with its own uid mapped to root.
 * The user gets its own copy of corerun's built files (the checkout may sit under a directory
 * only root can enter) and a rootfs it owns. Everything the test made is removed at the end.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, cpSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { busyboxRootfs, hostMountsUnder, isRoot, REPO, run, type Result } from "./helpers.ts";

const USER = `crrl${process.pid % 100000}`;

describe("rootless containers", { skip: !isRoot && "needs root (to make the throwaway user)" }, () => {
  let base = "";
  let uid = 0;

  before(() => {
    base = mkdtempSync(join(tmpdir(), "corerun-rootless-"));
    chmodSync(base, 0o755);
    const made = run("useradd", ["--no-create-home", "--shell", "/usr/sbin/nologin", USER]);
    assert.equal(made.code, 0, made.stderr);
    uid = Number(run("id", ["-u", USER]).stdout.trim());
    for (const f of readdirSync(join(REPO, "dist"))) cpSync(join(REPO, "dist", f), join(base, "dist", f));
    for (const m of ["koffi", "@koromix"]) cpSync(join(REPO, "node_modules", m), join(base, "node_modules", m), { recursive: true });
    cpSync(busyboxRootfs(), join(base, "rootfs"), { recursive: true, verbatimSymlinks: true });
    run("chown", ["-R", `${USER}:${USER}`, join(base, "rootfs")]);
    run("install", ["-d", "-o", USER, "-g", USER, "-m", "0700", join(base, "run")]);
  });

  after(() => {
    run("pkill", ["-KILL", "-u", USER]);
    run("userdel", [USER]);
    if (base.startsWith(join(tmpdir(), "corerun-rootless-"))) rmSync(base, { recursive: true, force: true });
  });

  /** corerun as the throwaway user, with its runtime directory in the test's tree. */
  function asUser(args: string[]): Result {
    return run("runuser", ["-u", USER, "--", "env", `XDG_RUNTIME_DIR=${join(base, "run")}`, process.execPath, join(base, "dist", "corerun.cjs"), ...args], { cwd: base });
  }

  test("the user's own uid is root inside, in a container of its own", () => {
    const r = asUser(["--rootfs", join(base, "rootfs"), "--network", "none", "--hostname", "rootless", "/bin/sh", "-c", "id -u; cat /proc/self/uid_map; echo $$; hostname; ls /sys/class/net"]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n").map((l) => l.trim().split(/\s+/).join(" "));
    assert.deepEqual(lines, ["0", `0 ${uid} 1`, "1", "rootless", "lo"]);
  });

  test("nothing is left behind: no state, mount point, mount or process", () => {
    const state = join(base, "run", "corerun");
    assert.deepEqual(existsSync(state) ? readdirSync(state).filter((n) => /^[0-9a-f]{12}$/.test(n)) : [], []);
    assert.deepEqual(readdirSync(join(base, "rootfs", "etc")).sort(), ["corerun-rootfs", "group", "passwd"]);
    assert.deepEqual(hostMountsUnder(base), []);
    assert.notEqual(run("pgrep", ["-u", USER]).code, 0, "a process of the user is left");
  });

  test("what needs root is refused with one line: limits, bridge networking, published ports, other uids", () => {
    for (const [args, message] of [
      [["--memory", "64"], /--memory: cgroup limits need root here/],
      [["-P", "8080:80"], /get --network none only; bridge networking and published ports need root/],
      [["--uidmap", "0:100000:65536"], /may map only 0:\d+:1/],
    ] as const) {
      const r = asUser(["--rootfs", join(base, "rootfs"), ...args, "/bin/true"]);
      assert.equal(r.code, 125, r.stderr);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.match(r.stderr, message);
    }
  });
});
