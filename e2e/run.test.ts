/**
 * corerun end to end: real containers on the busybox rootfs, as root. Each test checks what the
 * container sees and that the host is left as it was: no state directory, mount or process.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, readdirSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { BIN, busyboxRootfs, hostMountsUnder, isRoot, leftoverState, removeStateRoot, run, stateRoot, tool, type Result } from "./helpers.ts";

let rootfs = "";
let root = "";

function corerun(args: string[], input?: string): Result {
  return tool("corerun", ["--root", root, ...args], input === undefined ? {} : { input });
}

/** Runs a container on the busybox rootfs and asserts that it left nothing behind. */
function container(args: string[], input?: string): Result {
  const r = corerun(["--rootfs", rootfs, ...args], input);
  assertClean();
  return r;
}

function assertClean(): void {
  assert.deepEqual(leftoverState(root), [], "a state directory is left");
  assert.deepEqual(hostMountsUnder(rootfs), [], "a mount of the rootfs is left on the host");
}

describe("corerun run", { skip: !isRoot && "needs root" }, () => {
  before(() => {
    rootfs = busyboxRootfs();
    root = stateRoot();
  });
  after(() => {
    try {
      assertClean();
    } finally {
      removeStateRoot(root);
    }
  });

  test("the README demo: hostname, PID 1 and the rootfs's own top-level directories", () => {
    const r = container(["--hostname", "demo", "/bin/sh", "-c", "hostname; echo $$; ls /"]);
    assert.equal(r.code, 0, r.stderr);
    const [name, pid, ...entries] = r.stdout.trim().split("\n");
    assert.equal(name, "demo");
    assert.equal(pid, "1");
    const expected = readdirSync(rootfs).sort();
    assert.deepEqual(entries.sort(), expected);
  });

  test("the same through `corerun run`", () => {
    const r = tool("corerun", ["run", "--root", root, "--rootfs", rootfs, "/bin/echo", "hi"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "hi\n");
    assertClean();
  });

  test("the container sees only its own processes, in its own /proc", () => {
    const r = container(["/bin/sh", "-c", "ls /proc | grep -c '^[0-9]'; ps -o pid,comm; true"]);
    assert.equal(r.code, 0, r.stderr);
    const [count] = r.stdout.split("\n");
    assert.ok(Number(count) <= 4, `container sees ${count} processes:\n${r.stdout}`);
    assert.match(r.stdout, /^\s*1 sh$/m);
  });

  test("hostname is set inside and the host's is unchanged", () => {
    const before_ = hostname();
    const r = container(["--hostname", "inside-name", "/bin/hostname"]);
    assert.equal(r.stdout.trim(), "inside-name");
    assert.equal(hostname(), before_);
  });

  test("without --hostname the container is named after its id", () => {
    const r = container(["/bin/hostname"]);
    assert.match(r.stdout.trim(), /^[0-9a-f]{12}$/);
  });

  test("/ is the rootfs: a file only the rootfs has is there, a host-only path is not", () => {
    const r = container(["/bin/sh", "-c", `cat /etc/corerun-rootfs; test -e ${join(import.meta.dirname, "run.test.ts")} && echo host-visible; echo done`]);
    assert.equal(r.stdout, "corerun busybox rootfs\ndone\n");
  });

  test("/sys and the read-only /proc paths refuse writes", () => {
    const r = container(["/bin/sh", "-c", "echo 1 > /proc/sys/kernel/domainname && echo wrote-proc; echo 1 > /proc/sysrq-trigger && echo wrote-sysrq; touch /sys/x && echo wrote-sys; grep -E ' /sys | /proc/sys ' /proc/self/mounts"]);
    assert.doesNotMatch(r.stdout, /wrote-/);
    assert.match(r.stderr, /Read-only file system/);
    for (const line of r.stdout.trim().split("\n")) assert.match(line, /\sro[,\s]/, line);
  });

  test("masked paths read empty", () => {
    const r = container(["/bin/sh", "-c", "for p in /proc/timer_list /proc/keys; do printf '%s=%s\\n' $p $(wc -c < $p); done; ls -A /sys/firmware | wc -l; ls -A /proc/acpi | wc -l"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "/proc/timer_list=0\n/proc/keys=0\n0\n0\n");
  });

  test("/dev holds only the usual devices and a private devpts", () => {
    const r = container(["/bin/sh", "-c", "ls /dev | tr '\\n' ' '; echo; echo x > /dev/null && head -c 4 /dev/zero | wc -c; ls /dev/pts"]);
    assert.equal(r.code, 0, r.stderr);
    const [list, zero, pts] = r.stdout.split("\n");
    assert.deepEqual(list!.trim().split(" ").sort(), ["core", "fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout", "tty", "urandom", "zero"]);
    assert.equal(zero, "4");
    assert.equal(pts, "ptmx");
  });

  test("--tmpfs and --shm-size: tmpfs mounts of the container's own with Docker's defaults (noexec, nosuid, nodev) and options; a volume below one lands in it; the mount points made in the rootfs go again", (t) => {
    const vol = mkdtempSync(join(tmpdir(), "corerun-tmpfs-"));
    t.after(() => rmSync(vol, { recursive: true, force: true }));
    writeFileSync(join(vol, "given"), "from host\n");
    const before = readdirSync(rootfs).sort();
    const r = container(["--network", "none", "--read-only", "--tmpfs", "/tmp", "--tmpfs", "/scratch/deep:size=1m,mode=700,exec", "-v", `${vol}:/scratch/deep/data:ro`, "--shm-size", "128m", "/bin/sh", "-c",
      "touch /tmp/x && echo tmp-writable; cat /scratch/deep/data/given; awk '$2 == \"/tmp\" || $2 == \"/scratch/deep\" || $2 == \"/dev/shm\" { print $2, $4 }' /proc/self/mounts"]);
    assert.equal(r.code, 0, r.stderr);
    const [tmpOk, given, ...mounts] = r.stdout.trim().split("\n");
    assert.equal(tmpOk, "tmp-writable");
    assert.equal(given, "from host");
    const opts = Object.fromEntries(mounts.map((l) => l.split(" ") as [string, string]));
    const has = (path: string, ...want: string[]) => want.every((w) => opts[path]!.split(",").includes(w));
    assert.ok(has("/tmp", "rw", "noexec", "nosuid", "nodev"), opts["/tmp"]);
    assert.ok(has("/scratch/deep", "nosuid", "nodev", "size=1024k", "mode=700") && !has("/scratch/deep", "noexec"), opts["/scratch/deep"]);
    assert.ok(has("/dev/shm", "size=131072k"), opts["/dev/shm"]);
    assert.deepEqual(readdirSync(rootfs).sort(), before, "/scratch, made in the rootfs for the tmpfs, is gone");
    const bad = container(["--network", "none", "--tmpfs", "/x:shared", "/bin/true"]);
    assert.equal(bad.code, 125);
    assert.match(bad.stderr, /^corerun: --tmpfs "\/x:shared": unknown option "shared"; use rw, ro, exec/);
  });

  test("--mount: Docker's type=bind (readonly) and type=tmpfs (tmpfs-size, tmpfs-mode) fields, a quoted source with a comma; type=volume refused", (t) => {
    const dir = mkdtempSync(join(tmpdir(), "corerun-mount-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const src = join(dir, "a,b");
    mkdirSync(src);
    writeFileSync(join(src, "given"), "from host\n");
    const r = container(["--network", "none", "--mount", `type=bind,"source=${src}",target=/srv/data,readonly`, "--mount", "type=tmpfs,destination=/cache,tmpfs-size=2m,tmpfs-mode=1770", "/bin/sh", "-c",
      "cat /srv/data/given; touch /srv/data/new || echo ro; awk '$2 == \"/srv/data\" || $2 == \"/cache\" { print $2, $4 }' /proc/self/mounts; stat -c %a /cache"]);
    assert.equal(r.code, 0, r.stderr);
    const [given, ro, ...rest] = r.stdout.trim().split("\n");
    assert.deepEqual([given, ro], ["from host", "ro"]);
    const opts = Object.fromEntries(rest.slice(0, -1).map((l) => l.split(" ") as [string, string]));
    assert.ok(opts["/srv/data"]!.split(",").includes("ro"), opts["/srv/data"]);
    assert.ok(["rw", "noexec", "nosuid", "nodev", "size=2048k", "mode=1770"].every((o) => opts["/cache"]!.split(",").includes(o)), opts["/cache"]);
    assert.equal(rest.at(-1), "1770");
    assert.equal(existsSync(join(src, "new")), false);
    const volume = container(["--network", "none", "--mount", "source=cache,target=/cache", "/bin/true"]);
    assert.equal(volume.code, 125);
    assert.equal(volume.stderr, 'corerun: --mount "source=cache,target=/cache": named volumes (type=volume, Docker\'s default type) are not built yet; give type=bind with a host path, or type=tmpfs\n');
  });

  test("an ro volume refuses writes and an rw volume's writes show on the host", (t) => {
    const ro = mkdtempSync(join(tmpdir(), "corerun-ro-"));
    const rw = mkdtempSync(join(tmpdir(), "corerun-rw-"));
    t.after(() => {
      rmSync(ro, { recursive: true, force: true });
      rmSync(rw, { recursive: true, force: true });
    });
    writeFileSync(join(ro, "given"), "from host\n");
    const r = container(["-v", `${ro}:/ro:ro`, "-v", `${rw}:/data`, "/bin/sh", "-c", "cat /ro/given; echo x > /ro/new && echo wrote-ro; echo written > /data/out"]);
    assert.equal(r.stdout, "from host\n");
    assert.match(r.stderr, /Read-only file system/);
    assert.equal(existsSync(join(ro, "new")), false);
    assert.equal(readFileSync(join(rw, "out"), "utf8"), "written\n");
    // The mount points corerun had to create in the rootfs are gone again.
    assert.equal(existsSync(join(rootfs, "ro")), false);
    assert.equal(existsSync(join(rootfs, "data")), false);
  });

  test("a relative host path is resolved against the current directory", (t) => {
    const dir = mkdtempSync(join(tmpdir(), "corerun-rel-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, "f"), "relative\n");
    const r = tool("corerun", ["--root", root, "--rootfs", rootfs, "-v", ".:/mnt/rel:ro", "/bin/cat", "/mnt/rel/f"], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "relative\n");
    assertClean();
  });

  for (const [name, cmd, code] of [
    ["0", ["/bin/true"], 0],
    ["3", ["/bin/sh", "-c", "exit 3"], 3],
    ["126 for a file that is not executable", ["/bin/not-executable"], 126],
    ["127 for a command that is not in the rootfs", ["/bin/no-such-command"], 127],
    ["127 for a command not found in PATH", ["no-such-command"], 127],
  ] as const) {
    test(`exit status ${name}`, () => {
      const r = container([...cmd]);
      assert.equal(r.code, code, r.stderr);
    });
  }

  test("exit status 137 when the container's first process is killed with SIGKILL", async () => {
    const child = spawn(join(import.meta.dirname, "../bin/corerun"), ["--root", root, "--rootfs", rootfs, "/bin/sh", "-c", "echo started; sleep 30"], { stdio: ["ignore", "pipe", "pipe"] });
    await new Promise((resolve) => child.stdout.once("data", resolve));
    const [state] = JSON.parse(tool("corerun", ["ps", "--root", root, "--json"]).stdout) as { init: { pid: number } }[];
    process.kill(state!.init.pid, "SIGKILL");
    const code = await new Promise((resolve) => child.once("exit", resolve));
    assert.equal(code, 137);
    assertClean();
  });

  test("a command's own status 137 passes through: sh -c 'kill -9 $$' in a child shell", () => {
    // The first process is PID 1 of its namespace, and the kernel ignores a SIGKILL that PID 1
    // sends itself; a shell below it dies of it as anywhere else.
    const r = container(["/bin/sh", "-c", "/bin/sh -c 'kill -9 $$'; exit $?"]);
    assert.equal(r.code, 137);
  });

  test("stdin is piped through with -i, and is /dev/null without it (Docker's rule)", () => {
    assert.equal(container(["-i", "/bin/cat"], "hi\n").stdout, "hi\n");
    const r = container(["/bin/sh", "-c", "cat; readlink /proc/self/fd/0"], "hi\n");
    assert.equal(r.stdout, "/dev/null\n");
  });

  test("SIGTERM sent to corerun reaches the container's handler", async () => {
    const child = spawn(join(import.meta.dirname, "../bin/corerun"), ["--root", root, "--rootfs", rootfs, "/bin/sh", "-c", "trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.1; done"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    await new Promise((resolve) => child.stdout.once("data", resolve));
    child.kill("SIGTERM");
    const code = await new Promise((resolve) => child.once("exit", resolve));
    assert.equal(code, 7);
    assert.match(out, /got-term/);
    assertClean();
  });

  test("the container's PID 1 holds no fd beyond 0-2", () => {
    // PID 1 is ls itself (a shell would show its own pipe and saved fds); fd 3 is the directory
    // it is listing, anything more came from outside.
    const r = container(["/bin/ls", "/proc/self/fd"]);
    assert.deepEqual(r.stdout.trim().split(/\s+/), ["0", "1", "2", "3"]);
  });

  test("the environment is the container's own: PATH, HOSTNAME, HOME and -e", () => {
    const r = container(["--hostname", "envtest", "-e", "FOO=bar", "-w", "/tmp", "/bin/sh", "-c", "env | sort; pwd"]);
    const lines = r.stdout.trim().split("\n");
    assert.ok(lines.includes("FOO=bar"));
    assert.ok(lines.includes("HOSTNAME=envtest"));
    assert.ok(lines.includes("HOME=/root"));
    assert.ok(lines.includes("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
    assert.equal(lines.at(-1), "/tmp");
    assert.ok(!lines.some((l) => l.startsWith("CORERUN_")), "corerun's own variables leaked");
  });

  test("-e KEY alone passes corerun's value, and leaves KEY unset when corerun has none (Docker's rule)", () => {
    process.env.E2E_FROM_HOST = "passed";
    delete process.env.E2E_NOT_ON_HOST;
    try {
      const r = container(["-e", "E2E_FROM_HOST", "-e", "E2E_NOT_ON_HOST", "/bin/sh", "-c", 'echo "$E2E_FROM_HOST ${E2E_NOT_ON_HOST-unset}"']);
      assert.equal(r.stdout, "passed unset\n", r.stderr);
    } finally {
      delete process.env.E2E_FROM_HOST;
    }
  });

  test("--env-file: Docker's KEY=VALUE lines before -e's; a command word --env-file is the command's, not Node's", (t) => {
    const dir = mkdtempSync(join(tmpdir(), "corerun-envfile-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, "app.env");
    writeFileSync(file, "# settings\nMODE=file\n  QUOTED=\"kept\"\nE2E_FROM_HOST\nOVERRIDDEN=file\n");
    process.env.E2E_FROM_HOST = "host";
    try {
      const r = container(["--env-file", file, "-e", "OVERRIDDEN=flag", "/bin/sh", "-c", 'echo "$MODE $QUOTED $E2E_FROM_HOST $OVERRIDDEN" "$@"', "sh", "--env-file", "/nonexistent"]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'file "kept" host flag --env-file /nonexistent\n');
    } finally {
      delete process.env.E2E_FROM_HOST;
    }
    const bad = join(dir, "bad.env");
    writeFileSync(bad, "GOOD=1\nBAD NAME=2\n");
    const refused = container(["--env-file", bad, "/bin/true"]);
    assert.equal(refused.code, 125);
    assert.equal(refused.stderr, `corerun: --env-file ${bad}: line 2: name "BAD NAME" contains whitespace; give KEY=VALUE\n`);
  });

  test("--sysctl: set in the container's own network and IPC namespaces after its network is up, /proc/sys read-only after; the host's values unchanged", () => {
    const hostPorts = readFileSync("/proc/sys/net/ipv4/ip_unprivileged_port_start", "utf8");
    const hostShm = readFileSync("/proc/sys/kernel/shmmni", "utf8");
    const r = container([
      "--network", "none", "--sysctl", "net.ipv4.ip_unprivileged_port_start=99", "--sysctl", "kernel.shmmni=1234", "--sysctl", "net/ipv4/conf/lo/accept_local=1",
      "/bin/sh", "-c", "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shmmni /proc/sys/net/ipv4/conf/lo/accept_local; echo 1 > /proc/sys/kernel/shmmni || echo read-only",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "99\n1234\n1\nread-only\n");
    assert.match(r.stderr, /Read-only file system/);
    assert.equal(readFileSync("/proc/sys/net/ipv4/ip_unprivileged_port_start", "utf8"), hostPorts);
    assert.equal(readFileSync("/proc/sys/kernel/shmmni", "utf8"), hostShm);
    const unknown = container(["--network", "none", "--sysctl", "net.ipv4.no_such_setting=1", "/bin/true"]);
    assert.equal(unknown.code, 125);
    assert.equal(unknown.stderr, "corerun-exec: --sysctl net.ipv4.no_such_setting=1: write /proc/sys/net/ipv4/no_such_setting: ENOENT; this kernel has no such sysctl (sysctl -a lists them)\n");
  });

  test("container root has the groups of the container's /etc/group (and --group-add's), not the supplementary groups of whoever ran corerun", () => {
    const r = run("setpriv", ["--groups", "6,10", join(BIN, "corerun"), "--root", root, "--rootfs", rootfs, "--network", "none", "--group-add", "nogroup", "/bin/sh", "-c", "grep ^Groups: /proc/self/status"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "Groups:\t0 65534 \n");
    assertClean();
    // Looked up in the container's /etc/group once its root is in place, as --user's names are.
    const unknown = container(["--network", "none", "--group-add", "video", "/bin/true"]);
    assert.equal(unknown.code, 125);
    assert.equal(unknown.stderr, "corerun-exec: --group-add video: no group \"video\" in the container's /etc/group; give a gid or a group the image has\n");
  });

  test("--domainname sets the container's NIS domain name, not the host's; --cidfile gets the id, refuses a file that exists, and goes again when the start fails", (t) => {
    const dir = mkdtempSync(join(tmpdir(), "corerun-cidfile-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const hostDomain = readFileSync("/proc/sys/kernel/domainname", "utf8");
    const cid = join(dir, "cid");
    const r = container(["--network", "none", "--domainname", "corp.example", "--cidfile", cid, "/bin/sh", "-c", "cat /proc/sys/kernel/domainname; echo $HOSTNAME"]);
    assert.equal(r.code, 0, r.stderr);
    const [domain, id] = r.stdout.trim().split("\n");
    assert.equal(domain, "corp.example");
    assert.equal(readFileSync(cid, "utf8"), id, "the cidfile holds the container's id (its default hostname)");
    assert.equal(readFileSync("/proc/sys/kernel/domainname", "utf8"), hostDomain);
    const again = container(["--network", "none", "--cidfile", cid, "/bin/true"]);
    assert.equal(again.code, 125);
    assert.equal(again.stderr, `corerun: --cidfile ${cid}: the file exists; remove it if no container it names is running, or give another path\n`);
    // corerun-mount cannot put a directory over the rootfs's busybox binary: the start fails before the command.
    const failed = container(["--network", "none", "--cidfile", join(dir, "failed"), "-v", "/etc:/bin/busybox", "/bin/true"]);
    assert.equal(failed.code, 125, failed.stderr);
    assert.equal(existsSync(join(dir, "failed")), false);
  });

  test("a container's own --help is not corerun's", () => {
    const r = container(["/bin/ls", "--help"]);
    assert.match(r.stdout + r.stderr, /Usage: ls/);
    assert.doesNotMatch(r.stdout, /corerun/);
  });

  test("--network none gives a loopback that is up and nothing else", () => {
    const r = container(["--network", "none", "/bin/sh", "-c", "ls /sys/class/net; ip link show lo"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^lo$/m);
    assert.equal(r.stdout.split("\n").filter((l) => /^\w+$/.test(l)).length, 1);
    assert.match(r.stdout, /UP/);
  });

  test("--network host shares the host's interfaces, and takes the host's hostname unless given one (Docker's rule)", () => {
    const host = readdirSync("/sys/class/net").sort();
    const r = container(["--network", "host", "/bin/ls", "/sys/class/net"]);
    assert.deepEqual(r.stdout.trim().split("\n").sort(), host);
    assert.equal(container(["--network", "host", "/bin/hostname"]).stdout, `${hostname()}\n`);
    assert.equal(container(["--network", "host", "--hostname", "given", "/bin/hostname"]).stdout, "given\n");
  });
});
