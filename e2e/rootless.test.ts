/**
 * Rootless: a throwaway user made by this test runs a container with its own uid mapped to root.
 * The user gets its own copy of corerun's built files (the checkout may sit under a directory
 * only root can enter) and a rootfs it owns. Everything the test made is removed at the end.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, chmodSync, cpSync, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { busyboxRootfs, hostMountsUnder, isRoot, REPO, run, type Result } from "./helpers.ts";
import { makeFixtures, tarOf, writeOci, type Fixtures } from "./image-fixtures.ts";

const USER = `crrl${process.pid % 100000}`;

/** The subordinate range this test gives its user: far above the ids any host hands out. */
const SUBID_START = 2000000000;
const subidLine = () => `${USER}:${SUBID_START}:65536`;

/** Removes the lines of this test's own user. */
function removeUserLines(path: string, user: string): void {
  if (!existsSync(path)) return;
  const lines = readFileSync(path, "utf8").split("\n");
  const kept = lines.filter((l) => !l.startsWith(`${user}:`));
  if (kept.length !== lines.length) writeFileSync(path, kept.join("\n"));
}

/** Removes exactly the line this test added, whatever else the file holds. */
function removeLine(path: string, line: string): void {
  if (!existsSync(path)) return;
  const lines = readFileSync(path, "utf8").split("\n");
  if (lines.includes(line)) writeFileSync(path, lines.filter((l) => l !== line).join("\n"));
}

describe("rootless containers", { skip: !isRoot && "needs root (to make the throwaway user)" }, () => {
  let base = "";
  let uid = 0;
  let f: Fixtures | undefined;

  before(async () => {
    base = mkdtempSync(join(tmpdir(), "corerun-rootless-"));
    chmodSync(base, 0o755);
    const made = run("useradd", ["--no-create-home", "--shell", "/usr/sbin/nologin", USER]);
    assert.equal(made.code, 0, made.stderr);
    uid = Number(run("id", ["-u", USER]).stdout.trim());
    // useradd may give a new user subordinate ranges; the first tests run without any.
    for (const f of ["/etc/subuid", "/etc/subgid"]) removeUserLines(f, USER);
    for (const f of readdirSync(join(REPO, "dist"))) cpSync(join(REPO, "dist", f), join(base, "dist", f));
    for (const m of ["koffi", "@koromix"]) cpSync(join(REPO, "node_modules", m), join(base, "node_modules", m), { recursive: true });
    cpSync(busyboxRootfs(), join(base, "rootfs"), { recursive: true, verbatimSymlinks: true });
    run("chown", ["-R", `${USER}:${USER}`, join(base, "rootfs")]);
    run("install", ["-d", "-o", USER, "-g", USER, "-m", "0700", join(base, "run")]);
    // The image fixtures (owned by root in the image) and a layer with a file of uid 1000, for the user to import.
    f = await makeFixtures();
    cpSync(f.oci, join(base, "oci"), { recursive: true });
    writeOci(join(base, "others-oci"), [{ data: await tarOf([{ name: "home/", type: "directory" }, { name: "home/theirs", body: "x\n", uid: 1000, gid: 1000 }]) }], { Cmd: ["/bin/true"] }, "others:1");
    run("chown", ["-R", `${USER}:${USER}`, join(base, "oci"), join(base, "others-oci")]);
  });

  after(() => {
    for (const f of ["/etc/subuid", "/etc/subgid"]) removeLine(f, subidLine());
    run("pkill", ["-KILL", "-u", USER]);
    run("userdel", [USER]);
    f?.remove();
    // What the user's containers and imports wrote under subordinate ids is removed here by root.
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

  test("the default seccomp filter holds rootless too; seccomp=unconfined and no-new-privileges work", () => {
    const args = ["--rootfs", join(base, "rootfs"), "--network", "none"];
    const r = asUser([...args, "/bin/sh", "-c", "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; unshare -U true; echo \"unshare-U $?\""]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.replace(/\t/g, " "), "NoNewPrivs: 0\nSeccomp: 2\nunshare-U 1\n");
    const open = asUser([...args, "--security-opt", "seccomp=unconfined", "--security-opt", "no-new-privileges", "/bin/sh", "-c", "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; unshare -U true && echo unshared"]);
    assert.equal(open.stdout.replace(/\t/g, " "), "NoNewPrivs: 1\nSeccomp: 0\nunshared\n", open.stderr);
  });

  test("nothing is left behind: no state, mount point, mount or process", () => {
    const state = join(base, "run", "corerun");
    assert.deepEqual(existsSync(state) ? readdirSync(state).filter((n) => /^[0-9a-f]{12}$/.test(n)) : [], []);
    assert.deepEqual(readdirSync(join(base, "rootfs", "etc")).sort(), ["corerun-rootfs", "group", "passwd"]);
    assert.deepEqual(hostMountsUnder(base), []);
    assert.notEqual(run("pgrep", ["-u", USER]).code, 0, "a process of the user is left");
  });

  test("without a subordinate range, a rootless import refuses a layer with files of another uid in one line; the store stays empty", () => {
    const r = asUser(["image", "import", join(base, "others-oci")]);
    assert.equal(r.code, 125, r.stderr);
    assert.match(r.stderr, /^corerun: .*others-oci: layer 1\/1 sha256:[0-9a-f]{64}: entry "home\/theirs" is owned by 1000:1000, which the rootless store's user namespace does not map \(lchown: EINVAL\); give the user a range in \/etc\/subuid and \/etc\/subgid/);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    const layers = join(base, "run/corerun/layers/sha256");
    assert.deepEqual(existsSync(layers) ? readdirSync(layers) : [], []);
  });

  test("with /etc/subuid and /etc/subgid ranges, newuidmap maps container ids 1 and up to them", (t) => {
    if (!existsSync("/usr/bin/newuidmap")) return t.skip("newuidmap (Debian's uidmap package) is not installed");
    for (const f of ["/etc/subuid", "/etc/subgid"]) appendFileSync(f, `${subidLine()}\n`);
    const r = asUser(["--rootfs", join(base, "rootfs"), "--network", "none", "/bin/sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; touch /tmp/f && chown 1000:1000 /tmp/f && stat -c %u:%g /tmp/f"]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n").map((l) => l.trim().split(/\s+/).join(" "));
    assert.deepEqual(lines, [`0 ${uid} 1`, `1 ${SUBID_START} 65536`, `0 ${uid} 1`, `1 ${SUBID_START} 65536`, "1000:1000"]);
    // A host range outside the user's own uid and its subordinate range is not the user's to map.
    const bad = asUser(["--rootfs", join(base, "rootfs"), "--uidmap", `0:${uid}:1`, "--uidmap", "1:5000:10", "/bin/true"]);
    assert.equal(bad.code, 125);
    assert.match(bad.stderr, new RegExp(`--uidmap 1:5000:10: corerun run as uid ${uid} may not use host ids 5000-5009; it may use ${uid} \\(yours\\), ${SUBID_START}-${SUBID_START + 65535}`));
  });

  test("what needs root is refused with one line: limits, bridge networking, published ports, other uids", () => {
    for (const [args, message] of [
      [["--memory", "64"], /--memory: cgroup limits of rootless containers .* need a delegated cgroup/],
      [["-P", "8080:80"], /get --network none only; bridge networking and published ports need root/],
      [["--uidmap", "0:100000:65536"], /may not use host ids 100000-165535/],
    ] as const) {
      const r = asUser(["--rootfs", join(base, "rootfs"), ...args, "/bin/true"]);
      assert.equal(r.code, 125, r.stderr);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.match(r.stderr, message);
    }
  });

  test("a rootless user imports an image and runs it on its own overlayfs: writes stay in the container, nothing is left after it", (t) => {
    if (!existsSync("/usr/bin/newuidmap")) return t.skip("newuidmap (Debian's uidmap package) is not installed");
    // The subordinate ranges of the test above are in place: the image's uid 1000 maps too.
    const imp = asUser(["image", "import", join(base, "oci")]);
    assert.equal(imp.code, 0, imp.stderr);
    assert.match(imp.stdout, /^Loaded image: fixture:oci$/m);
    const store = join(base, "run/corerun");
    const busybox = readdirSync(join(store, "layers/sha256")).map((d) => join(store, "layers/sha256", d, "diff/bin/busybox")).find((p) => existsSync(p))!;
    // Unpacked as root of the user's own user namespace: the image's root is the user on the host.
    assert.equal(lstatSync(busybox).uid, uid);
    const first = asUser(["run", "--network", "none", "fixture:oci"]);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stdout, "from-the-image in /data as 1000:1000\n");
    const script = "echo mine > /data/mine; mkdir /data/d; chown 1000:1000 /data/d; echo s > /data/d/s; chmod 500 /data/d; ls /data; cat /etc/added; ls /etc/doomed 2>&1; stat -c %u:%g /bin/busybox /data/d; grep ' / ' /proc/self/mounts | cut -d' ' -f3";
    const a = asUser(["run", "--network", "none", "-u", "0:0", "--entrypoint", "/bin/sh", "fixture:oci", "-c", script]);
    assert.equal(a.code, 0, a.stderr);
    assert.deepEqual(a.stdout.trim().split("\n"), ["d", "mine", "new", "added by layer 2", "ls: /etc/doomed: No such file or directory", "0:0", "1000:1000", "overlay"]);
    const b = asUser(["run", "--network", "none", "-u", "0:0", "--entrypoint", "/bin/ls", "fixture:oci", "/data"]);
    assert.equal(b.code, 0, b.stderr);
    assert.equal(b.stdout, "new\n", "a second container does not see the first one's writes");
    const ro = asUser(["run", "--network", "none", "--read-only", "-u", "0:0", "--entrypoint", "/bin/sh", "fixture:oci", "-c", "touch /data/x 2>&1; cat /etc/added"]);
    assert.equal(ro.stdout, "touch: /data/x: Read-only file system\nadded by layer 2\n", ro.stderr);
    assert.deepEqual(readdirSync(store).filter((n) => /^[0-9a-f]{12}$/.test(n)), [], "no container directory (upper, work) is left");
    assert.deepEqual(hostMountsUnder(base), [], "no overlay mount is left");
    assert.notEqual(run("pgrep", ["-u", USER]).code, 0, "a process of the user is left");
    const rm = asUser(["image", "rm", "fixture:oci"]);
    assert.equal(rm.code, 0, rm.stderr);
    assert.deepEqual(readdirSync(join(store, "layers/sha256")), [], "the user removes its layers, files of uid 1000 too");
  });

  test("rootless, a layer unpacked through other maps is refused at run in one line", (t) => {
    if (!existsSync("/usr/bin/newuidmap")) return t.skip("newuidmap (Debian's uidmap package) is not installed");
    const imp = asUser(["image", "import", join(base, "oci")]);
    assert.equal(imp.code, 0, imp.stderr);
    const r = asUser(["run", "--network", "none", "--uidmap", `0:${uid}:1`, "--gidmap", `0:${uid}:1`, "fixture:oci"]);
    assert.equal(r.code, 125, r.stderr);
    assert.match(r.stderr, new RegExp(`^corerun: image fixture:oci: its layer [0-9a-f]{12} was unpacked for the maps uid 0:${uid}:1,1:${SUBID_START}:65536 gid 0:${uid}:1,1:${SUBID_START}:65536, and this rootless container maps uid 0:${uid}:1 gid 0:${uid}:1; `));
    assert.equal(r.stderr.trim().split("\n").length, 1);
    assert.equal(asUser(["image", "rm", "fixture:oci"]).code, 0);
  });
});
