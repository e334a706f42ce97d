/**
 * Security defaults, for real: the seccomp filter of Docker's default profile, no_new_privs on
 * request, --privileged, and what --cap-add changes in the filter. Calls busybox cannot make
 * come from a small static C probe (e2e/fixtures/seccomp-probe.c), built here into the test's
 * own directory and handed to the containers as a read-only volume.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";
import { busyboxRootfs, isRoot, leftoverState, removeStateRoot, REPO, run, stateRoot, tool } from "./helpers.ts";

let rootfs = "";
let root = "";
let scratch = "";
/** Why the probe could not be built, if it could not. */
let noProbe: string | undefined;

/** A writable volume of its own for one test. */
function volume(name: string): string {
  const dir = join(scratch, name);
  mkdirSync(dir, { mode: 0o777 });
  chmodSync(dir, 0o777);
  return dir;
}

function corerun(args: string[], script: string) {
  const r = tool("corerun", ["--root", root, "--rootfs", rootfs, "--network", "none", "-v", `${join(scratch, "probe")}:/probe:ro`, ...args, "/bin/sh", "-c", script]);
  assert.deepEqual(leftoverState(root), []);
  return r;
}

/** The probe's answers, "NAME: ok" or "NAME: ERRNO", as a record. */
function probe(args: string[], calls: string[]): Record<string, string> {
  const r = corerun(args, `/probe/probe ${calls.join(" ")}`);
  assert.equal(r.code, 0, r.stderr);
  return Object.fromEntries(r.stdout.trim().split("\n").map((l) => l.split(": ") as [string, string]));
}

function status(args: string[]): Record<string, string> {
  const r = corerun(args, "cat /proc/self/status");
  assert.equal(r.code, 0, r.stderr);
  return Object.fromEntries(r.stdout.trim().split("\n").map((l) => l.split(/:\s+/) as [string, string]));
}

/** The rootfs, a state root and a scratch directory (with the probe's directory) of one describe. */
function setUp(): void {
  rootfs = busyboxRootfs();
  root = stateRoot();
  scratch = mkdtempSync(join(tmpdir(), "corerun-security-"));
  // Reached by container root mapped to an unprivileged host uid too.
  chmodSync(scratch, 0o755);
  mkdirSync(join(scratch, "probe"), { mode: 0o755 });
}

function tearDown(): void {
  try {
    assert.deepEqual(leftoverState(root), []);
  } finally {
    if (scratch.startsWith(join(tmpdir(), "corerun-security-"))) rmSync(scratch, { recursive: true, force: true });
    removeStateRoot(root);
  }
}

describe("security defaults", { skip: !isRoot && "needs root" }, () => {
  before(() => {
    setUp();
    const cc = run("cc", ["-static", "-O2", "-o", join(scratch, "probe", "probe"), join(REPO, "e2e/fixtures/seccomp-probe.c")]);
    if (cc.code !== 0) noProbe = `cc -static cannot build the probe (static glibc is in libc6-dev): ${cc.stderr.trim().split("\n")[0]}`;
  });
  after(tearDown);

  test("a program whose interpreter is /proc/self/exe gets corerun's sealed stub, not the host's Node (CVE-2019-5736): in run and in exec", () => {
    // The kernel resolves /proc/self/exe in the process that execs the program: a handle on the
    // host's Node there could be written through once no Node runs.
    // In a root filesystem of its own: corerun looks for the program there before it starts.
    const own = join(scratch, "rootfs-self-exe");
    assert.equal(run("cp", ["-a", rootfs, own]).code, 0);
    writeFileSync(join(own, "bin", "self-exe"), "#!/proc/self/exe\nthis line is never read\n", { mode: 0o755 });
    const refused = /^corerun-exe: not a program to run by hand or as an interpreter/m;
    const r = tool("corerun", ["--root", root, "--rootfs", own, "--network", "none", "/bin/self-exe"]);
    assert.equal(r.code, 125, r.stderr);
    assert.match(r.stderr, refused);
    const d = tool("corerun", ["--root", root, "run", "-d", "--rootfs", own, "--network", "none", "sleep", "60"]);
    assert.equal(d.code, 0, d.stderr);
    const id = d.stdout.trim();
    try {
      const e = tool("corerun", ["--root", root, "exec", id, "/bin/self-exe"]);
      assert.equal(e.code, 125, e.stderr);
      assert.match(e.stderr, refused);
      // The stub passes the program's exit status and stdio through.
      const ok = tool("corerun", ["--root", root, "exec", id, "sh", "-c", "echo through; exit 7"]);
      assert.deepEqual([ok.code, ok.stdout], [7, "through\n"]);
    } finally {
      assert.equal(tool("corerun", ["--root", root, "rm", "-f", id]).code, 0);
    }
    assert.deepEqual(leftoverState(root), []);
  });

  test("vm.memfd_noexec=2 (in a PID namespace of the test's own): run refuses with memfd_create's EACCES and the sysctl to change, leaving nothing", (t) => {
    if (!existsSync("/proc/sys/vm/memfd_noexec")) return t.skip("this kernel has no vm.memfd_noexec (Linux 6.3 and later)");
    // The sysctl is the PID namespace's own (and can only go up there): the host keeps its value.
    const r = run("unshare", ["--pid", "--fork", "--mount-proc", "sh", "-c", 'echo 2 > /proc/sys/vm/memfd_noexec && exec "$@"', "sh",
      join(REPO, "bin/corerun"), "--root", root, "--rootfs", rootfs, "--network", "none", "/bin/true"]);
    assert.equal(r.code, 125, r.stderr);
    assert.match(r.stderr, /memfd_create corerun-exe: EACCES \(permission denied\); vm\.memfd_noexec is 2.*sysctl vm\.memfd_noexec=1/);
    assert.deepEqual(leftoverState(root), []);
  });

  test("a default container runs under a seccomp filter, without no_new_privs", () => {
    const s = status([]);
    assert.equal(s.Seccomp, "2");
    assert.equal(s.NoNewPrivs, "0");
  });

  test("unshare -U, unshare -m, mount and umount are refused with EPERM", () => {
    const r = corerun([], "unshare -U true; echo \"unshare-U $?\"; unshare -m true; echo \"unshare-m $?\"; mount -t tmpfs t /mnt; echo \"mount $?\"; umount /proc; echo \"umount $?\"");
    assert.deepEqual(r.stdout.trim().split("\n"), ["unshare-U 1", "unshare-m 1", "mount 1", "umount 1"]);
    // busybox mount words EPERM as "permission denied (are you root?)".
    assert.equal(r.stderr.match(/Operation not permitted/g)?.length, 3, r.stderr);
    assert.match(r.stderr, /^mount: permission denied/m);
  });

  test("calls busybox cannot make are refused with the profile's EPERM; ptrace is allowed, as in Docker on kernels from 4.8", (t) => {
    if (noProbe) return t.skip(noProbe);
    const calls = ["add_key", "keyctl", "bpf", "perf_event_open", "userfaultfd", "open_by_handle_at", "kexec_load", "personality", "kcmp", "ptrace"];
    assert.deepEqual(probe([], calls), {
      add_key: "EPERM", keyctl: "EPERM", bpf: "EPERM", perf_event_open: "EPERM", userfaultfd: "EPERM", open_by_handle_at: "EPERM",
      kexec_load: "EPERM", personality: "EPERM", kcmp: "EPERM", ptrace: "ok",
    });
  });

  test("--security-opt seccomp=unconfined: no filter; unshare -U and the calls the kernel itself allows work", (t) => {
    assert.equal(status(["--security-opt", "seccomp=unconfined"]).Seccomp, "0");
    const r = corerun(["--security-opt", "seccomp=unconfined"], "unshare -U true && echo unshared");
    assert.equal(r.stdout, "unshared\n", r.stderr);
    if (noProbe) return t.skip(noProbe);
    assert.deepEqual(probe(["--security-opt", "seccomp=unconfined"], ["add_key", "userfaultfd", "personality", "kcmp"]), { add_key: "ok", userfaultfd: "ok", personality: "ok", kcmp: "ok" });
  });

  test("ordinary programs still work: applets, a pipeline, ping with NET_RAW, httpd", () => {
    const www = volume("www");
    writeFileSync(join(www, "index.html"), "served under seccomp\n");
    const r = tool("corerun", ["--root", root, "--rootfs", rootfs, "--network", "none", "-v", `${www}:/www:ro`, "/bin/sh", "-c",
      "echo pipeline | tr a-z A-Z | cat; ls /bin | grep -c . >/dev/null && echo ls; ping -c 1 -W 2 127.0.0.1 >/dev/null && echo ping; httpd -p 8080 -h /www && sleep 0.2 && wget -q -O - http://127.0.0.1:8080/"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "PIPELINE\nls\nping\nserved under seccomp\n");
  });

  test("--security-opt no-new-privileges: NoNewPrivs 1, and a setuid-root program run as uid 1000 stays uid 1000", (t) => {
    assert.equal(status(["--security-opt", "no-new-privileges"]).NoNewPrivs, "1");
    assert.equal(status(["--security-opt", "no-new-privileges=false"]).NoNewPrivs, "0");
    if (noProbe) return t.skip(noProbe);
    const setuid = "cp /probe/probe /rw/suid && chmod 4755 /rw/suid && /probe/probe asuser 1000 /rw/suid ids";
    const without = corerun(["-v", `${volume("suid-plain")}:/rw`], setuid);
    assert.equal(without.stdout, "uid=1000 euid=0\n", without.stderr);
    const nnp = corerun(["--security-opt", "no-new-privileges=true", "-v", `${volume("suid-nnp")}:/rw`], setuid);
    assert.equal(nnp.stdout, "uid=1000 euid=1000\n", nnp.stderr);
  });

  test("a custom profile that denies mkdir makes mkdir fail with the profile's errno", () => {
    const profile = join(scratch, "deny-mkdir.json");
    writeFileSync(profile, JSON.stringify({
      defaultAction: "SCMP_ACT_ALLOW",
      syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 122 }],
    }));
    const r = corerun(["--security-opt", `seccomp=${profile}`, "-v", `${volume("mkdir")}:/rw`], "mkdir /rw/d; echo \"mkdir $?\"; touch /rw/f && echo touched");
    assert.equal(r.stdout, "mkdir 1\ntouched\n");
    assert.match(r.stderr, /can't create directory '\/rw\/d': Disk quota exceeded/);
  });

  test("--cap-add follows Docker's profile: SYS_ADMIN allows mount and unshare -m, DAC_READ_SEARCH allows open_by_handle_at", (t) => {
    const r = corerun(["--cap-add", "SYS_ADMIN"], "unshare -m true && echo unshared; mount -t tmpfs t /mnt && echo mounted; unshare -U true; echo \"unshare-U $?\"");
    assert.equal(r.stdout, "unshared\nmounted\nunshare-U 0\n", r.stderr);
    if (noProbe) return t.skip(noProbe);
    // The filter lets it through; the kernel then rejects the made-up handle, not the caller.
    assert.notEqual(probe(["--cap-add", "DAC_READ_SEARCH"], ["open_by_handle_at"]).open_by_handle_at, "EPERM");
    // --cap-drop takes the capability's group away: no chroot without SYS_CHROOT.
    const chroot = corerun(["--cap-drop", "SYS_CHROOT"], "chroot / true; echo \"chroot $?\"");
    assert.match(chroot.stderr, /Operation not permitted/);
  });

  test("--privileged: every capability, no filter, no masks, a writable /sys, the host's devices; it can mount", () => {
    const r = corerun(["--privileged"], "grep -E '^(Seccomp|CapBnd):' /proc/self/status; mount -t tmpfs t /mnt && echo mounted; grep ' /sys ' /proc/self/mounts | cut -d' ' -f4 | cut -d, -f1; grep -c ' /proc/keys ' /proc/self/mounts; ls /dev/loop-control /dev/kmsg");
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    // Every capability the host's bounding set has.
    assert.equal(lines[0], run("grep", ["^CapBnd:", "/proc/self/status"]).stdout.trim());
    assert.equal(lines[1], "Seccomp:\t0");
    assert.deepEqual(lines.slice(2), ["mounted", "rw", "0", "/dev/kmsg", "/dev/loop-control"]);
  });

  test("the default container keeps Docker's masks: /proc/keys is empty, /sys read-only", () => {
    const r = corerun([], "wc -c < /proc/keys; grep ' /sys ' /proc/self/mounts | cut -d' ' -f4 | cut -d, -f1");
    assert.equal(r.stdout, "0\nro\n", r.stderr);
  });

  test("/sys/fs/cgroup is read-only and shows the container's own cgroup, its limits included", () => {
    // v1 (hybrid) paths first, then the pure v2 ones; only one of each pair exists.
    const script = "cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max 2>/dev/null; mkdir /sys/fs/cgroup/pids/x /sys/fs/cgroup/x 2>/dev/null || echo read-only";
    const r = tool("corerun", ["--root", root, "--rootfs", rootfs, "--network", "none", "--memory", "64", "--pids", "50", "/bin/sh", "-c", script]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n"), ["50", String(64 * 1024 * 1024), "read-only"]);
  });

  test("--privileged: a writable /sys/fs/cgroup; child cgroups the container makes go with it", () => {
    const r = corerun(["--privileged"], "mkdir /sys/fs/cgroup/pids/child && echo made");
    assert.equal(r.stdout, "made\n", r.stderr);
    assert.equal(r.stderr, "");
  });

  test("in a user namespace the same filter holds, and no-new-privileges too", (t) => {
    const userns = ["--uidmap", "0:100000:65536"];
    assert.equal(status(userns).Seccomp, "2");
    const r = corerun(userns, "unshare -U true; echo \"unshare-U $?\"; mkdir /sys/fs/cgroup/x 2>/dev/null || echo read-only");
    assert.equal(r.stdout, "unshare-U 1\nread-only\n", r.stderr);
    if (noProbe) return t.skip(noProbe);
    assert.deepEqual(probe(userns, ["add_key", "userfaultfd", "personality", "kcmp"]), { add_key: "EPERM", userfaultfd: "EPERM", personality: "EPERM", kcmp: "EPERM" });
    assert.deepEqual(probe([...userns, "--security-opt", "seccomp=unconfined"], ["userfaultfd", "personality"]), { userfaultfd: "ok", personality: "ok" });
    const setuid = "cp /probe/probe /rw/suid && chmod 4755 /rw/suid && /probe/probe asuser 1000 /rw/suid ids";
    assert.equal(corerun([...userns, "-v", `${volume("userns-suid")}:/rw`], setuid).stdout, "uid=1000 euid=0\n");
    assert.equal(corerun([...userns, "--security-opt", "no-new-privileges", "-v", `${volume("userns-suid-nnp")}:/rw`], setuid).stdout, "uid=1000 euid=1000\n");
  });

  test("a bad profile: one line naming the profile and the entry, exit 125, nothing created", () => {
    const fresh = stateRoot();
    try {
      const cases: [string, string, RegExp][] = [
        ["not-json.json", "{ nope", /: not valid JSON \(/],
        ["unknown-syscall.json", '{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdri"],"action":"SCMP_ACT_ERRNO"}]}', /: syscalls\[0\] \(mkdri\): unknown syscall "mkdri"/],
        ["unknown-action.json", '{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_DENY"}]}', /: syscalls\[0\] \(mkdir\): unknown action "SCMP_ACT_DENY"/],
        ["unknown-arch.json", '{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_VAX"]}', /: architectures: SCMP_ARCH_VAX is not an architecture libseccomp/],
      ];
      for (const [name, text, message] of cases) {
        const path = join(scratch, name);
        writeFileSync(path, text);
        const r = tool("corerun", ["--root", fresh, "--rootfs", rootfs, "--network", "none", "--security-opt", `seccomp=${path}`, "/bin/true"]);
        assert.equal(r.code, 125, name);
        const lines = r.stderr.trim().split("\n");
        assert.equal(lines.length, 1, r.stderr);
        assert.ok(lines[0]!.startsWith(`corerun: ${path}: `), lines[0]);
        assert.match(lines[0]!, message);
      }
      assert.deepEqual(readdirSync(fresh), []);
      assert.equal(existsSync(join(fresh, "runtime", "seccomp")), false);
    } finally {
      if (fresh.startsWith(tmpdir() + sep)) removeStateRoot(fresh);
    }
  });
});

describe("devices: Docker's device cgroup, --device, --device-cgroup-rule", { skip: !isRoot && "needs root" }, () => {
  // /dev/fuse (c 10:229) opens, for reading or writing, for anyone the device cgroup lets through;
  // head -c0 opens it and reads nothing. /dev/loop0 (b 7:0) opens too while unattached. Both
  // are on any host this suite runs on (the fuse module and loop devices).
  const opens = (path: string, as = path) => `head -c0 ${path} 2>/dev/null && echo ${as}-opens || echo ${as}-refused`;
  const writes = (path: string, as = path) => `{ printf "" > ${path}; } 2>/dev/null && echo ${as}-writes || echo ${as}-write-refused`;
  before(setUp);
  after(tearDown);

  test("by default a node made for another device does not open (mknod is allowed, as in Docker), the usual ones and tun do, and the container's /dev nodes are its own: the host's are not changed through them", () => {
    const before = run("stat", ["-c", "%a %Z", "/dev/null", "/dev/full"]).stdout;
    const r = corerun([], `mknod /dev/t c 10 229 && ${opens("/dev/t")}; mknod /root/t c 10 229 && ${opens("/root/t", "rootfs-t")}; rm /root/t; mknod /dev/tun c 10 200 && ${opens("/dev/tun")}; echo x > /dev/null && head -c 4 /dev/zero | wc -c; chmod 600 /dev/null /dev/full && touch /dev/full && echo changed-own`);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n"), ["/dev/t-refused", "rootfs-t-refused", "/dev/tun-opens", "4", "changed-own"]);
    assert.equal(run("stat", ["-c", "%a %Z", "/dev/null", "/dev/full"]).stdout, before, "the host's /dev/null and /dev/full as they were");
  });

  test("--device gives a host node with its permissions (rwm by default, r for reading only), at another path, or a directory's nodes; inspect shows them", () => {
    const r = corerun(["--device", "/dev/fuse", "--device", "/dev/loop0:/dev/xloop:r", "--device", "/dev/net:/dev/hostnet"],
      `${opens("/dev/fuse")}; ${opens("/dev/xloop")}; ${writes("/dev/xloop")}; ${opens("/dev/hostnet/tun")}; stat -c '%F %t:%T %a' /dev/fuse /dev/xloop`);
    assert.equal(r.code, 0, r.stderr);
    const mode = (p: string) => (run("stat", ["-c", "%a", p]).stdout.trim());
    assert.deepEqual(r.stdout.trim().split("\n"), [
      "/dev/fuse-opens", "/dev/xloop-opens", "/dev/xloop-write-refused", "/dev/hostnet/tun-opens",
      `character special file a:e5 ${mode("/dev/fuse")}`, `block special file 7:0 ${mode("/dev/loop0")}`,
    ]);
    const d = tool("corerun", ["--root", root, "run", "-d", "--rootfs", rootfs, "--network", "none", "--device", "/dev/loop0:/dev/xloop:rw", "--device-cgroup-rule", "c 10:229 r", "sleep", "60"]);
    assert.equal(d.code, 0, d.stderr);
    const id = d.stdout.trim();
    try {
      const host = JSON.parse(tool("corerun", ["--root", root, "inspect", id]).stdout)[0].HostConfig;
      assert.deepEqual(host.Devices, [{ PathOnHost: "/dev/loop0", PathInContainer: "/dev/xloop", CgroupPermissions: "rw" }]);
      assert.deepEqual(host.DeviceCgroupRules, ["c 10:229 r"]);
      // exec joins the device cgroup too.
      const e = tool("corerun", ["--root", root, "exec", id, "/bin/sh", "-c", `mknod /dev/t c 10 229; ${opens("/dev/t")}; ${writes("/dev/t")}; ${writes("/dev/xloop")}`]);
      assert.deepEqual(e.stdout.trim().split("\n"), ["/dev/t-opens", "/dev/t-write-refused", "/dev/xloop-writes"], e.stderr);
    } finally {
      assert.equal(tool("corerun", ["--root", root, "rm", "-f", id]).code, 0);
    }
  });

  test("--device-cgroup-rule lets a node made in the container open; --privileged allows every device", () => {
    const r = corerun(["--device-cgroup-rule", "c 10:* rwm"], `mknod /dev/t c 10 229 && ${opens("/dev/t")}; mknod /dev/l b 7 0 && ${opens("/dev/l")}`);
    assert.deepEqual(r.stdout.trim().split("\n"), ["/dev/t-opens", "/dev/l-refused"], r.stderr);
    const p = corerun(["--privileged"], `mknod /dev/l b 7 0 && ${opens("/dev/l")}; ${opens("/dev/fuse")}`);
    assert.deepEqual(p.stdout.trim().split("\n"), ["/dev/l-opens", "/dev/fuse-opens"], p.stderr);
  });

  test("in a user namespace the nodes given are container root's (host root, unmapped there, would be nobody and a 0600 node would not open)", () => {
    const r = corerun(["--uidmap", "0:100000:65536", "--device", "/dev/fuse"], `stat -c '%U %a' /dev/fuse /dev/null; ${opens("/dev/fuse")}; mknod /dev/t c 10 229 2>/dev/null || echo mknod-refused`);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n"), [`root ${run("stat", ["-c", "%a", "/dev/fuse"]).stdout.trim()}`, "root 666", "/dev/fuse-opens", "mknod-refused"]);
  });
});

