/**
 * Rootless: a throwaway user made by this test runs a container with its own uid mapped to root.
 * The user gets its own copy of corerun's built files (the checkout may sit under a directory
 * only root can enter) and a rootfs it owns. Everything the test made is removed at the end.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { setTimeout as delay } from "node:timers/promises";
import { gunzipSync } from "node:zlib";
import { join } from "node:path";
import { hostMountsUnder, isRoot, run, until as waitUntil } from "./helpers.ts";
import { blob, cappedLayer, makeFixtures, tarOf, writeOci, type Fixtures } from "./image-fixtures.ts";
import { makeRootlessUser, SUBID_START, type RootlessUser } from "./rootless-user.ts";

describe("rootless containers", { skip: !isRoot && "needs root (to make the throwaway user)" }, () => {
  let user: RootlessUser | undefined;
  let base = "";
  let uid = 0;
  let USER = "";
  let f: Fixtures | undefined;

  before(async () => {
    user = makeRootlessUser("crrl");
    ({ base, uid, name: USER } = user);
    // The image fixtures (owned by root in the image) and a layer with a file of uid 1000, for the user to import.
    f = await makeFixtures();
    cpSync(f.oci, join(base, "oci"), { recursive: true });
    writeOci(join(base, "others-oci"), [{ data: await tarOf([{ name: "home/", type: "directory" }, { name: "home/theirs", body: "x\n", uid: 1000, gid: 1000 }]) }], { Cmd: ["/bin/true"] }, "others:1");
    // The busybox layer and one with a capped copy of busybox (bin/busybox-capped).
    writeOci(join(base, "caps-oci"), [{ data: blob(f, f.layers[0]!.digest) }, { data: cappedLayer(f, join(f.dir, "caps")) }], { Env: ["PATH=/bin"] }, "fixture:caps");
    run("chown", ["-R", `${USER}:${USER}`, join(base, "oci"), join(base, "others-oci"), join(base, "caps-oci")]);
  });

  after(() => {
    user?.remove();
    f?.remove();
  });

  const asUser = (args: string[]) => user!.corerun(args);

  /** CAP_NET_RAW and CAP_SETUID, the capabilities of bin/busybox-capped. */
  const CAPPED = ["CapPrm: 0000000000002080", "CapEff: 0000000000002080"];

  /** CapPrm and CapEff of a program of an image, run by uid 1000 of a rootless container. */
  function capStatus(image: string, exe: string): string[] {
    const r = asUser(["run", "--network", "none", "-u", "1000", "--entrypoint", exe, image, "cat", "/proc/self/status"]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.split("\n").filter((l) => /^Cap(Prm|Eff):/.test(l)).map((l) => l.replace(/\s+/, " "));
  }

  /** bin/busybox-capped as the user's store holds it. */
  function capsLayerFile(): string {
    const layers = join(base, "run/corerun/layers/sha256");
    return readdirSync(layers).map((d) => join(layers, d, "diff/bin/busybox-capped")).find((p) => existsSync(p))!;
  }

  test("the user's own uid is root inside, in a container of its own", () => {
    const r = asUser(["--rootfs", join(base, "build/rootfs"), "--network", "none", "--hostname", "rootless", "/bin/sh", "-c", "id -u; cat /proc/self/uid_map; echo $$; hostname; ls /sys/class/net"]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n").map((l) => l.trim().split(/\s+/).join(" "));
    assert.deepEqual(lines, ["0", `0 ${uid} 1`, "1", "rootless", "lo"]);
  });

  test("rootless --device: the host's node bound read-only (its mode and owner cannot be changed through it); --device-cgroup-rule needs root", () => {
    const before = run("stat", ["-c", "%a %Z", "/dev/null"]).stdout;
    const r = asUser(["--rootfs", join(base, "build/rootfs"), "--network", "none", "--device", "/dev/null:/dev/given", "/bin/sh", "-c",
      "echo x > /dev/given && echo writes; chmod 600 /dev/given 2>/dev/null || echo chmod-refused; grep -c ' /dev/given .* ro,' /proc/self/mounts"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n"), ["writes", "chmod-refused", "1"]);
    assert.equal(run("stat", ["-c", "%a %Z", "/dev/null"]).stdout, before);
    const rule = asUser(["--rootfs", join(base, "build/rootfs"), "--device-cgroup-rule", "c 10:200 rwm", "/bin/true"]);
    assert.equal(rule.code, 125);
    assert.match(rule.stderr, /^corerun: --device-cgroup-rule: cgroup limits of rootless containers .* need a delegated cgroup/);
  });

  test("without a subordinate range, -u 0 and -u 0:0 run: setgroups is denied in the user namespace and passed over, as runc does", () => {
    for (const u of ["0", "0:0"]) {
      const r = asUser(["--rootfs", join(base, "build/rootfs"), "--network", "none", "-u", u, "/bin/sh", "-c", "id -u; id -g; cat /proc/self/setgroups"]);
      assert.equal(r.code, 0, `-u ${u}: ${r.stderr}`);
      assert.deepEqual(r.stdout.trim().split("\n"), ["0", "0", "deny"], `-u ${u}`);
    }
  });

  test("the default seccomp filter holds rootless too; seccomp=unconfined and no-new-privileges work", () => {
    const args = ["--rootfs", join(base, "build/rootfs"), "--network", "none"];
    const r = asUser([...args, "/bin/sh", "-c", "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; unshare -U true; echo \"unshare-U $?\""]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.replace(/\t/g, " "), "NoNewPrivs: 0\nSeccomp: 2\nunshare-U 1\n");
    const open = asUser([...args, "--security-opt", "seccomp=unconfined", "--security-opt", "no-new-privileges", "/bin/sh", "-c", "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; unshare -U true && echo unshared"]);
    assert.equal(open.stdout.replace(/\t/g, " "), "NoNewPrivs: 1\nSeccomp: 0\nunshared\n", open.stderr);
  });

  /** Each look runs a command as the user: every 100 ms. */
  const until = (what: string, check: () => boolean, ms = 10_000) => waitUntil(what, check, ms, 100);

  /** The user's containers as ps --json -a lists them. */
  const psAll = () => JSON.parse(asUser(["ps", "-a", "--json"]).stdout) as { id: string; statusText: string; detached?: { monitor: { pid: number } } }[];

  test("rootless run -d: logs, exec in its namespaces (hostname, pid 1, uid map), stop, rm; rm -f and cleanup of a killed monitor leave nothing", async () => {
    const rootfs = join(base, "build/rootfs");
    const state = join(base, "run", "corerun");
    const name = `rld${process.pid}`;
    const d = asUser(["run", "-d", "--rootfs", rootfs, "--name", name, "--hostname", "rlhost", "/bin/sh", "-c", 'trap "echo bye; exit 0" TERM; echo hello; echo oops >&2; while :; do sleep 0.1; done']);
    assert.equal(d.code, 0, d.stderr);
    const id = d.stdout.trim();
    assert.match(id, /^[0-9a-f]{12}$/);
    assert.match(asUser(["ps"]).stdout, new RegExp(`^${id} +${name} +running +\\d+ +none `, "m"));
    await until("the container's first line in its log", () => asUser(["logs", name]).stdout === "hello\n");
    const e = asUser(["exec", name, "/bin/sh", "-c", "hostname; echo $$; tr '\\0' ' ' < /proc/1/cmdline; echo; id -u; cat /proc/self/uid_map; ls /sys/class/net"]);
    assert.equal(e.code, 0, e.stderr);
    const [host, pid, cmdline, ...rest] = e.stdout.trim().split("\n").map((l) => l.trim().split(/\s+/).join(" "));
    assert.equal(host, "rlhost");
    assert.ok(Number(pid) > 1, `exec's process is not PID 1 of the container: ${pid}`);
    assert.match(cmdline!, /^\/bin\/sh -c trap/, "exec sees the container's first process as PID 1");
    assert.deepEqual(rest, ["0", `0 ${uid} 1`, "lo"]);
    assert.equal(asUser(["exec", name, "/bin/sh", "-c", "exit 7"]).code, 7, "exec's status is its command's");
    const stopped = asUser(["stop", "-t", "5", name]);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.equal(stopped.stdout, `${name}\n`);
    assert.equal(psAll().find((c) => c.id === id)?.statusText, "exited (0)");
    const logs = asUser(["logs", name]);
    assert.equal(logs.stdout, "hello\nbye\n");
    assert.equal(logs.stderr, "oops\n");
    const removed = asUser(["rm", name]);
    assert.equal(removed.code, 0, removed.stderr);
    assert.ok(!existsSync(join(state, id)), "rm removes the state directory");
    // The monitor has exited; the host's init reaps it when it will.
    await until("the user's processes to be gone after rm", () => run("pgrep", ["-u", USER]).code !== 0);

    const f = asUser(["run", "-d", "--rootfs", rootfs, "/bin/sleep", "100"]);
    assert.equal(f.code, 0, f.stderr);
    const forced = asUser(["rm", "-f", f.stdout.trim()]);
    assert.equal(forced.code, 0, forced.stderr);
    assert.ok(!existsSync(join(state, f.stdout.trim())), "rm -f removes the state directory");

    // A monitor killed: its container is found by ps and ended and removed by cleanup.
    const k = asUser(["run", "-d", "--rootfs", rootfs, "/bin/sleep", "100"]);
    assert.equal(k.code, 0, k.stderr);
    const lost = k.stdout.trim();
    process.kill(psAll().find((c) => c.id === lost)!.detached!.monitor.pid, "SIGKILL");
    await until("ps to report the lost monitor", () => psAll().find((c) => c.id === lost)?.statusText === "monitor-lost");
    const c = asUser(["cleanup"]);
    assert.equal(c.code, 0, c.stderr);
    assert.equal(c.stdout, `${lost}\n`);
    assert.deepEqual(readdirSync(state).filter((n) => /^[0-9a-f]{12}$/.test(n)), [], "no container directory is left");
    await until("the user's processes to be gone", () => run("pgrep", ["-u", USER]).code !== 0);
  });

  test("nothing is left behind: no state, mount point, mount or process", () => {
    const state = join(base, "run", "corerun");
    assert.deepEqual(existsSync(state) ? readdirSync(state).filter((n) => /^[0-9a-f]{12}$/.test(n)) : [], []);
    assert.deepEqual(readdirSync(join(base, "build/rootfs/etc")).sort(), ["corerun-rootfs", "group", "passwd"]);
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
    user!.subids(true);
    const r = asUser(["--rootfs", join(base, "build/rootfs"), "--network", "none", "/bin/sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; touch /tmp/f && chown 1000:1000 /tmp/f && stat -c %u:%g /tmp/f"]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n").map((l) => l.trim().split(/\s+/).join(" "));
    assert.deepEqual(lines, [`0 ${uid} 1`, `1 ${SUBID_START} 65536`, `0 ${uid} 1`, `1 ${SUBID_START} 65536`, "1000:1000"]);
    // A host range outside the user's own uid and its subordinate range is not the user's to map.
    const bad = asUser(["--rootfs", join(base, "build/rootfs"), "--uidmap", `0:${uid}:1`, "--uidmap", "1:5000:10", "/bin/true"]);
    assert.equal(bad.code, 125);
    assert.match(bad.stderr, new RegExp(`--uidmap 1:5000:10: corerun run as uid ${uid} may not use host ids 5000-5009; it may use ${uid} \\(yours\\), ${SUBID_START}-${SUBID_START + 65535}`));
  });

  test("what needs root is refused with one line: limits, bridge networking, published ports, other uids", () => {
    for (const [args, message] of [
      [["--memory", "64"], /--memory: cgroup limits of rootless containers .* need a delegated cgroup/],
      [["-P", "8080:80"], /get --network none only; bridge networking and published ports need root/],
      [["--uidmap", "0:100000:65536"], /may not use host ids 100000-165535/],
    ] as const) {
      const r = asUser(["--rootfs", join(base, "build/rootfs"), ...args, "/bin/true"]);
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

  test("rootless run -d of an image with subordinate ids: exec as uid 1000, start again on the kept writable layer, rm removes it", async (t) => {
    if (!existsSync("/usr/bin/newuidmap")) return t.skip("newuidmap (Debian's uidmap package) is not installed");
    assert.equal(asUser(["image", "import", join(base, "oci")]).code, 0);
    const store = join(base, "run/corerun");
    const name = `rldi${process.pid}`;
    const d = asUser(["run", "-d", "--name", name, "-u", "0:0", "--entrypoint", "/bin/sh", "fixture:oci", "-c", "echo run >> /data/runs; chown 1000:1000 /data/runs; cat /data/runs; sleep 100"]);
    assert.equal(d.code, 0, d.stderr);
    const id = d.stdout.trim();
    await until("the first run's output", () => asUser(["logs", name]).stdout === "run\n");
    const e = asUser(["exec", "-u", "1000", name, "/bin/sh", "-c", "id -u; stat -c %u /data/runs"]);
    assert.equal(e.code, 0, e.stderr);
    assert.equal(e.stdout, "1000\n1000\n");
    assert.equal(asUser(["stop", "-t", "0", name]).code, 0);
    const again = asUser(["start", name]);
    assert.equal(again.code, 0, again.stderr);
    await until("the second run's output, on the first run's writes", () => asUser(["logs", name]).stdout === "run\nrun\nrun\n");
    const removed = asUser(["rm", "-f", name]);
    assert.equal(removed.code, 0, removed.stderr);
    assert.ok(!existsSync(join(store, id)), "rm removes the state directory and the writable layer, files of uid 1000 too");
    assert.deepEqual(hostMountsUnder(base), [], "no mount is left");
    await until("the user's processes to be gone", () => run("pgrep", ["-u", USER]).code !== 0);
    assert.equal(asUser(["image", "rm", "fixture:oci"]).code, 0);
  });

  test("rootless, a file capability of the image holds in the user's containers: the store keeps it as revision 3 for the user's uid", (t) => {
    if (!existsSync("/usr/bin/newuidmap")) return t.skip("newuidmap (Debian's uidmap package) is not installed");
    const imp = asUser(["image", "import", join(base, "caps-oci")]);
    assert.equal(imp.code, 0, imp.stderr);
    const file = capsLayerFile();
    // Written by root of the user's namespace: the kernel stores it for that root, the user's uid on the host.
    assert.match(run("getcap", ["-n", file]).stdout, new RegExp(`busybox-capped cap_setuid,cap_net_raw=ep \\[rootid=${uid}\\]$`, "m"));
    assert.deepEqual(capStatus("fixture:caps", "/bin/busybox-capped"), CAPPED, "uid 1000 of the container gets CAP_NET_RAW and CAP_SETUID from the file, as in Podman");
    assert.deepEqual(capStatus("fixture:caps", "/bin/busybox"), ["CapPrm: 0000000000000000", "CapEff: 0000000000000000"]);
    assert.equal(asUser(["image", "rm", "fixture:caps"]).code, 0);
  });

  test("rootless commit: a container's writes, owners and file capabilities become a layer; the new image runs rootless, and after export and import", async (t) => {
    if (!existsSync("/usr/bin/newuidmap")) return t.skip("newuidmap (Debian's uidmap package) is not installed");
    assert.equal(asUser(["image", "import", join(base, "caps-oci")]).code, 0);
    const store = join(base, "run/corerun");
    const name = `rlcommit${process.pid}`;
    const script = "mkdir /home/u && echo theirs > /home/u/f && chown -R 1000:1000 /home/u && mv /bin/busybox-capped /bin/busybox-moved && rm /bin/ls && touch /ready; sleep 30";
    const child = user!.spawnCorerun(["run", "--network", "none", "--name", name, "-u", "0", "--entrypoint", "/bin/sh", "fixture:caps", "-c", script]);
    const exited = new Promise((resolve) => child.on("exit", resolve));
    try {
      const deadline = Date.now() + 20_000;
      while (!readdirSync(store).some((d) => /^[0-9a-f]{12}$/.test(d) && existsSync(join(store, d, "upper/ready")))) {
        assert.ok(Date.now() < deadline && child.exitCode === null, "the container did not start");
        await delay(100);
      }
      const c = asUser(["commit", name, "committed:1"]);
      assert.equal(c.code, 0, c.stderr);
      assert.match(c.stdout, /^sha256:[0-9a-f]{64}$/m);
    } finally {
      asUser(["kill", name]);
      await exited;
    }
    const check = (ref: string) => {
      const r = asUser(["run", "--network", "none", "-u", "0", "--entrypoint", "/bin/sh", ref, "-c", "stat -c '%u:%g %n' /home/u/f; cat /home/u/f; /bin/busybox-moved ls 2>&1 >/dev/null; [ -e /bin/ls ] || echo 'ls whited out'; [ -e /bin/busybox-capped ] || echo 'capped gone'; [ -e /ready ] && echo ready"]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.stdout.trim().split("\n"), ["1000:1000 /home/u/f", "theirs", "ls whited out", "capped gone", "ready"]);
      assert.deepEqual(capStatus(ref, "/bin/busybox-moved"), CAPPED, "the moved file keeps its capability");
    };
    check("committed:1");
    // In the user's own directory: base is root's.
    const file = join(base, "run/committed.tar");
    const exp = asUser(["image", "export", "committed:1", file]);
    assert.equal(exp.code, 0, exp.stderr);
    // The layer holds revision 2, valid in whatever user namespace runs the image (the value the container's root reads).
    const out = join(base, "committed");
    mkdirSync(out);
    assert.equal(run("tar", ["-xf", file, "-C", out]).code, 0);
    const blobOf = (digest: string) => readFileSync(join(out, "blobs/sha256", digest.slice(7)));
    const index = JSON.parse(readFileSync(join(out, "index.json"), "utf8")) as { manifests: { digest: string }[] };
    const manifest = JSON.parse(blobOf(index.manifests[0]!.digest).toString()) as { layers: { digest: string }[] };
    const layer = gunzipSync(blobOf(manifest.layers.at(-1)!.digest));
    const key = "SCHILY.xattr.security.capability=";
    const at = layer.indexOf(key);
    assert.ok(at >= 0, "the committed layer carries the capability");
    assert.equal(layer.readUInt32LE(at + key.length) >>> 24, 2, "as revision 2");
    for (const ref of ["committed:1", "fixture:caps"]) assert.equal(asUser(["image", "rm", ref]).code, 0);
    assert.deepEqual(readdirSync(join(store, "layers/sha256")), [], "the store is empty before the import");
    const imp = asUser(["image", "import", file]);
    assert.equal(imp.code, 0, imp.stderr);
    check("committed:1");
    assert.equal(asUser(["image", "rm", "committed:1"]).code, 0);
    assert.deepEqual(readdirSync(store).filter((n) => /^[0-9a-f]{12}$/.test(n)), [], "no container directory is left");
    assert.deepEqual(hostMountsUnder(base), [], "no mount is left");
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
