/**
 * Bad input, as one table across corerun's subcommands and every tool: each malformed invocation
 * gets one line on stderr, prefixed with the tool's name, naming the input (and, where there is
 * one, the fix), the exit status of the one table (125, or 126/127 for the command), and leaves
 * the host as it was: no state directory, no mount, no process, no cgroup, no lease, nothing
 * added to a rootfs, no host file changed. (A NUL byte cannot reach a program through argv or
 * the environment: the kernel ends each string at the first one.)
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import { setTimeout as delay } from "node:timers/promises";
import { BIN, busyboxRootfs, hostMountsUnder, spawn, isRoot, processesWith, removeStateRoot, run, stateRoot, tool } from "./helpers.ts";

const tag = randomBytes(3).toString("hex");
const PARENT = `corerun-bad-${tag}`;
const LONG = "x".repeat(5000);

interface Ctx {
  root: string;
  rootfs: string;
  scratch: string;
  /** A rootfs whose /etc is a link to the host's /etc. */
  etcLink: string;
  /** A rootfs whose /etc/hosts is a link to itself. */
  hostsLoop: string;
  /** A read-only filesystem, for a state root. */
  readOnly: string;
  /** A link to the busybox rootfs. */
  rootfsLink: string;
}

type Row = [tool: string, args: (c: Ctx) => string[], code: number, message: (c: Ctx) => RegExp];

const re = (s: string) => new RegExp(s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));

/** corerun with the test's state root, rootfs and cgroup parent. */
const corerun = (...args: string[]) => (c: Ctx) => ["--root", c.root, "--rootfs", c.rootfs, "--cgroup-parent", PARENT, ...args];

/** A config.json that runs `args` from `root`, as a bundle's. */
function config(name: string, args: string[], root: string): unknown {
  return {
    ociVersion: "1.0.2", process: { args, cwd: "/", user: { uid: 0, gid: 0 } }, root: { path: root },
    linux: { namespaces: [{ type: "pid" }, { type: "mount" }], cgroupsPath: `/${PARENT}/${name}` },
  };
}

/** JSON files the rows name under the scratch directory, made before the first row ("\0": a NUL byte in a string). */
const FILES: Record<string, (c: Ctx) => unknown> = {
  "nul-args/config.json": (c) => config("nul-args", ["/bin/true\0--frob"], c.rootfs),
  "nul-root/config.json": (c) => config("nul-root", ["/bin/true"], `${c.rootfs}\0/x`),
  "link-root/config.json": (c) => config("link-root", ["/bin/true"], c.rootfsLink),
  "no-args/config.json": (c) => config("no-args", [], c.rootfs),
  "nul-resources.json": () => ({ "memory\0": { limit: 1 } }),
  "nul-profile.json": () => ({ defaultAction: "SCMP_ACT_ERRNO", syscalls: [{ names: ["read\0write"], action: "SCMP_ACT_ALLOW" }] }),
  "nul-layout/oci-layout": () => ({ imageLayoutVersion: "1.0.0" }),
  "nul-layout/index.json": () => ({
    schemaVersion: 2,
    manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", digest: `sha256:${"0".repeat(64)}`, size: 2, annotations: { "org.opencontainers.image.ref.name": "busybox\0:evil" } }],
  }),
};

const ROWS: Row[] = [
  // corerun run: limits
  ["corerun", corerun("--memory", "lots", "/bin/true"), 125, () => /--memory "lots" is not a size; give MiB/],
  ["corerun", corerun("--memory", "5", "/bin/true"), 125, () => /--memory "5" is below the minimum of 6 MiB; give 6 or more/],
  ["corerun", corerun("--memory", "99999999999999999999g", "/bin/true"), 125, () => /--memory "99999999999999999999g" is too large/],
  ["corerun", corerun("--memory", "-5", "/bin/true"), 125, () => /--memory "-5" is not a size/],
  ["corerun", corerun("--memory", LONG, "/bin/true"), 125, () => /--memory "x+" is not a size/],
  ["corerun", corerun("--cpu", "-1", "/bin/true"), 125, () => /--cpu "-1" is not a number; give 50 for half a core/],
  ["corerun", corerun("--cpu", "0", "/bin/true"), 125, () => /--cpu "0" is below the minimum of 1/],
  ["corerun", corerun("--cpu", "abc", "/bin/true"), 125, () => /--cpu "abc" is not a number/],
  ["corerun", corerun("--cpus", "abc", "/bin/true"), 125, () => /--cpus "abc" is not a number; give 0.5 for half a core/],
  ["corerun", corerun("--cpus", "0.5", "--cpu", "50", "/bin/true"), 125, () => /--cpu and --cpus set the same limit/],
  ["corerun", corerun("--pids", "-3", "/bin/true"), 125, () => /--pids "-3" is not a positive integer; give the most tasks/],
  ["corerun", corerun("--pids", "1.5", "/bin/true"), 125, () => /--pids "1.5" is not a positive integer/],
  ["corerun", corerun("--pids", "0", "/bin/true"), 125, () => /--pids "0"/],
  ["corerun", corerun("--memory"), 125, () => /option --memory needs a value; see --help/],
  ["corerun", corerun("--cgroup-parent", "../../etc", "/bin/true"), 125, () => /--cgroup-parent "..\/..\/etc" is not valid; give a path below the cgroup root/],
  // corerun run: /etc files
  ["corerun", corerun("--add-host", "db", "/bin/true"), 125, () => /--add-host "db": give NAME:ADDRESS, such as db:10.0.0.5/],
  ["corerun", corerun("--network", "none", "--add-host", "gw:host-gateway", "/bin/true"), 125, () => /--add-host gw:host-gateway needs --network bridge \(it is none\)/],
  ["corerun", corerun("--dns", "dns.google", "/bin/true"), 125, () => /--dns "dns.google": give a nameserver's IP address/],
  ["corerun-net", (c) => ["etc", "--id", "c0ffee123456", "--etc-dir", c.scratch, "--network", "container:web", "--dns", "1.1.1.1"], 125, () => /--dns and --network container:web exclude each other/],
  // corerun run: shared namespaces
  ["corerun", corerun("--ipc", "container:", "/bin/true"), 125, () => /--ipc container:: no running container has the name or id ""; see corerun ps/],
  ["corerun", corerun("--pid", "container:nosuch", "/bin/true"), 125, () => /--pid container:nosuch: no running container has the name or id "nosuch"/],
  ["corerun", corerun("--uts", "host", "--hostname", "x", "/bin/true"), 125, () => /--hostname and --uts host exclude each other/],
  ["corerun", corerun("--domainname", "-bad-", "/bin/true"), 125, () => /--domainname "-bad-" may hold only letters, digits, '-' and '\.'/],
  ["corerun", corerun("--cidfile", "/nonexistent-dir/cid", "/bin/true"), 125, () => /--cidfile \/nonexistent-dir\/cid: its directory \/nonexistent-dir does not exist/],
  ["corerun-exec", () => ["--domainname", "corp", "--", "/bin/true"], 125, () => /--domainname corp: corerun-exec shares its parent's UTS namespace, whose domainname this would change; start it in a new one \(corerun-ns --ns uts\)/],
  ["corerun", (c) => ["wait", "--root", c.root], 125, () => /name the containers to wait for; see corerun ps/],
  ["corerun", (c) => ["restart", "--root", c.root, "-t", "soon", "web"], 125, () => /-t soon: give the grace period in whole seconds \(at most 2147483\), or -1 to wait for good/],
  ["corerun", (c) => ["port", "--root", c.root, "web", "80", "81"], 125, () => /give one container and at most one port: corerun port NAME \[PORT\[\/tcp\|udp\]\]/],
  ["corerun", corerun("-d", "--log-driver", "journald", "/bin/true"), 125, () => /--log-driver journald: corerun keeps json-file logs, or none; journald is not built/],
  ["corerun", corerun("-d", "--log-opt", "max-size=big", "/bin/true"), 125, () => /--log-opt max-size "big" is not a size/],
  // corerun run: --mount
  ["corerun", corerun("--mount", "type=bind,source=/corerun-none,target=/data", "/bin/true"), 125, () => /--mount "type=bind,source=\/corerun-none,target=\/data": host path \/corerun-none does not exist; create it first/],
  ["corerun", corerun("--mount", "type=tmpfs,target=/x,tmpfs-size=big", "/bin/true"), 125, () => /--mount "type=tmpfs,target=\/x,tmpfs-size=big": tmpfs-size=big is not a size; give bytes or 64m, 1g/],
  // corerun run: sysctls, groups, stop, environment
  ["corerun", corerun("--network", "host", "--sysctl", "net.core.somaxconn=1024", "/bin/true"), 125, () => /--sysctl net\.core\.somaxconn=1024: the container shares the host's namespace \(--network host\), whose setting this would change; drop one of them/],
  ["corerun", corerun("--sysctl", "kernel.core_pattern=|/tmp/x", "/bin/true"), 125, () => /--sysctl kernel\.core_pattern=\|\/tmp\/x: kernel\.core_pattern is not a sysctl of a namespace the container can have of its own; it would be set for the whole host/],
  ["corerun", corerun("--sysctl", "net.ipv4.ip_forward", "/bin/true"), 125, () => /--sysctl net\.ipv4\.ip_forward: give KEY=VALUE, such as net\.ipv4\.ip_unprivileged_port_start=0/],
  ["corerun", corerun("--group-add", "a:b", "/bin/true"), 125, () => /--group-add a:b: give a group name of the container's \/etc\/group or a gid/],
  ["corerun", corerun("--oom-score-adj", "-1001", "/bin/true"), 125, () => /--oom-score-adj -1001: give a whole number from -1000 to 1000/],
  ["corerun", corerun("--stop-signal", "SIGNOPE", "/bin/true"), 125, () => /--stop-signal SIGNOPE: not a signal; give a name such as SIGQUIT or SIGRTMIN\+3, or a number from 1 to 64/],
  ["corerun", corerun("--stop-timeout", "ten", "/bin/true"), 125, () => /--stop-timeout ten: give the grace period in whole seconds \(at most 2147483\), or -1 to wait for good/],
  ["corerun", corerun("--env-file", "/nonexistent/app.env", "/bin/true"), 125, () => /--env-file \/nonexistent\/app\.env: cannot be read \(ENOENT\); give a file of KEY=VALUE lines/],
  // corerun run: devices
  ["corerun", corerun("--device", "/dev/corerun-none", "/bin/true"), 125, () => /--device "\/dev\/corerun-none": cannot stat \/dev\/corerun-none \(ENOENT\); give a device node of the host/],
  ["corerun", corerun("--device", "/etc/hostname", "/bin/true"), 125, () => /--device "\/etc\/hostname": \/etc\/hostname is not a device node/],
  ["corerun", corerun("--device", "/dev/null:/opt/null", "/bin/true"), 125, () => /--device "\/dev\/null:\/opt\/null": the container path \/opt\/null must be under \/dev/],
  ["corerun", corerun("--device", "/dev/zero:/dev/null", "/bin/true"), 125, () => /--device "\/dev\/zero:\/dev\/null": \/dev\/null is the container's c 1:3 device already/],
  ["corerun", corerun("--device", "/dev/null:rwx", "/bin/true"), 125, () => /--device "\/dev\/null:rwx": "rwx" is neither an absolute container path nor permissions of r, w and m/],
  ["corerun", corerun("--device-cgroup-rule", "c 10:200 rwx", "/bin/true"), 125, () => /--device-cgroup-rule "c 10:200 rwx": give TYPE MAJOR:MINOR ACCESS, such as "c 10:200 rwm"/],
  ["corerun", corerun("--privileged", "--device-cgroup-rule", "q 1:3 r", "/bin/true"), 125, () => /--device-cgroup-rule "q 1:3 r": give TYPE MAJOR:MINOR ACCESS/],
  // corerun run: ports, networks, subnets
  ["corerun", corerun("-P", "abc", "/bin/true"), 125, () => /-P abc: container port "abc" is not a number; use \[\[IP:\]HOST_PORT:\]CONTAINER_PORT\[\/tcp\|udp\]/],
  ["corerun", corerun("-P", "8080:", "/bin/true"), 125, () => /-P 8080:: container port "" is not a number/],
  ["corerun", corerun("-P", "1:2:3:4", "/bin/true"), 125, () => /-P 1:2:3:4: expected \[\[IP:\]HOST_PORT:\]CONTAINER_PORT\[\/tcp\|udp\], e.g. 8080:80/],
  ["corerun", corerun("--publish-all", "/bin/true"), 125, () => /--publish-all publishes an image's ExposedPorts, and a --rootfs container has none; give each port with -P CONTAINER_PORT/],
  ["corerun", corerun("-P", "1.2.3.4.5:8080:80", "/bin/true"), 125, () => /-P 1.2.3.4.5:8080:80: "1.2.3.4.5" is not an IPv4 address of this host/],
  ["corerun", corerun("-P", "8080:0", "/bin/true"), 125, () => /-P 8080:0: container port 0 is out of range; ports go from 1 to 65535/],
  ["corerun", corerun("-P", "0:80", "/bin/true"), 125, () => /-P 0:80: .*port/],
  ["corerun", corerun("-P", "70000:80", "/bin/true"), 125, () => /-P 70000:80: .*out of range/],
  ["corerun", corerun("-P", "8080:80/sctp", "/bin/true"), 125, () => /unknown protocol "sctp"; use tcp or udp/],
  ["corerun", corerun("-P", "8080:80/tcp/udp", "/bin/true"), 125, () => /-P 8080:80\/tcp\/udp: container port "80\/tcp" is not a number/],
  ["corerun", corerun("-P", "8080:80", "-P", "8080:81", "/bin/true"), 125, () => /publish the same host port twice/],
  ["corerun", corerun("-P", `${LONG}:80`, "/bin/true"), 125, () => /-P x+:80: /],
  ["corerun", corerun("--network", "host", "-P", "80:80", "/bin/true"), 125, () => /-P needs --network bridge \(it is host\)/],
  ["corerun", corerun("--network", "none", "-N", "x", "/bin/true"), 125, () => /--net needs --network bridge \(it is none\)/],
  ["corerun", corerun("--network", "carrier-pigeon", "/bin/true"), 125, () => /--network carrier-pigeon: unknown mode/],
  ["corerun", corerun("--network", "container:", "/bin/true"), 125, () => /--network container:: no running container has the name or id ""; see corerun ps/],
  ["corerun", corerun("--network", "container:ghost", "/bin/true"), 125, () => /no running container has the name or id "ghost"/],
  ["corerun", corerun("--subnet", "10.0.0.0", "/bin/true"), 125, () => /--subnet 10.0.0.0: is not in the form a.b.c.d\/N/],
  ["corerun", corerun("--subnet", "300.0.0.0/24", "/bin/true"), 125, () => /--subnet 300.0.0.0\/24: "300.0.0.0" is not an IPv4 address/],
  ["corerun", corerun("--subnet", "10.0.0.0/31", "/bin/true"), 125, () => /--subnet 10.0.0.0\/31: use a prefix length from \/8 to \/30/],
  ["corerun", corerun("--subnet", "10.1.2.0/40", "/bin/true"), 125, () => /--subnet 10.1.2.0\/40: /],
  ["corerun", corerun("--subnet", "abc", "/bin/true"), 125, () => /--subnet abc: is not in the form a.b.c.d\/N/],
  ["corerun", corerun("-N", "much-too-long-bridge", "/bin/true"), 125, () => /a bridge name is at most 15 characters/],
  ["corerun", corerun("-N", "br/0", "/bin/true"), 125, () => /a bridge name starts with a letter/],
  ["corerun", corerun("-N", LONG, "/bin/true"), 125, () => /a bridge name is at most 15 characters/],
  // corerun run: user namespaces
  ["corerun", corerun("--uidmap", "0:100000", "/bin/true"), 125, () => /--uidmap 0:100000: expected CONTAINER_ID:HOST_ID:SIZE, e.g. 0:100000:65536/],
  ["corerun", corerun("--uidmap", "a:b:c", "/bin/true"), 125, () => /--uidmap a:b:c: expected CONTAINER_ID:HOST_ID:SIZE/],
  ["corerun", corerun("--uidmap", "0:100000:0", "/bin/true"), 125, () => /--uidmap 0:100000:0: the size is 0; map at least one id/],
  ["corerun", corerun("--uidmap", "0:4294967295:10", "/bin/true"), 125, () => /--uidmap 0:4294967295:10: the range goes past id 4294967294/],
  ["corerun", corerun("--gidmap", "0:100000", "/bin/true"), 125, () => /--gidmap 0:100000: expected CONTAINER_ID:HOST_ID:SIZE/],
  ["corerun", corerun("--userns", "maybe", "/bin/true"), 125, () => /--userns maybe: unknown mode; use auto or host/],
  // corerun run: names, environment, working directory, capabilities
  ["corerun", corerun("--hostname", "a".repeat(65), "/bin/true"), 125, () => /--hostname "a+" is 65 characters long; the limit is 64/],
  ["corerun", corerun("--hostname", LONG, "/bin/true"), 125, () => /--hostname "x+" is 5000 characters long; the limit is 64/],
  ["corerun", corerun("--hostname", "bad_name!", "/bin/true"), 125, () => /--hostname "bad_name!" may hold only letters, digits/],
  ["corerun", corerun("--hostname", "-lead", "/bin/true"), 125, () => /--hostname "-lead" may hold only/],
  ["corerun", corerun("--name", "bad name", "/bin/true"), 125, () => /--name "bad name": use letters, digits, '_', '.' and '-'/],
  ["corerun", corerun("--name", LONG, "/bin/true"), 125, () => /--name "x+": use letters, digits/],
  ["corerun", corerun("--name", "../up", "/bin/true"), 125, () => /--name "..\/up": use letters, digits/],
  ["corerun", corerun("-e", "=x", "/bin/true"), 125, () => /-e "=x": "" is not a valid variable name/],
  ["corerun", corerun("-e", "1A=x", "/bin/true"), 125, () => /-e "1A=x": "1A" is not a valid variable name/],
  ["corerun", corerun("-w", "rel", "/bin/true"), 125, () => /--workdir "rel" must be an absolute path/],
  ["corerun", corerun("--cap-add", "FLY", "/bin/true"), 125, () => /--cap-add FLY: unknown capability; use a name such as NET_ADMIN/],
  ["corerun", corerun("--cap-drop", "NOPE", "/bin/true"), 125, () => /--cap-drop NOPE: unknown capability/],
  ["corerun", corerun("--log-level", "loud", "/bin/true"), 125, () => /unknown log level "loud"; use one of silent, error/],
  ["corerun", corerun("--frobnicate", "/bin/true"), 125, () => /unknown option --frobnicate; see --help/],
  ["corerun", corerun(), 125, () => /no command given/],
  // corerun run: volumes and paths
  ["corerun", (c) => corerun("-v", `${c.scratch}:/../etc`, "/bin/true")(c), 125, () => /container path may not contain "\.\."/],
  ["corerun", (c) => corerun("-v", `${c.scratch}:/data/../../x`, "/bin/true")(c), 125, () => /container path may not contain "\.\."/],
  ["corerun", (c) => corerun("-v", `${c.scratch}:/`, "/bin/true")(c), 125, () => /cannot mount over the container's \//],
  ["corerun", (c) => corerun("-v", `${c.scratch}:/data:ro:rw`, "/bin/true")(c), 125, () => /expected HOST_PATH:CONTAINER_PATH\[:ro\|rw\]\[,idmap\]/],
  ["corerun", (c) => corerun("-v", `${c.scratch}:/data:rx`, "/bin/true")(c), 125, () => /unknown mode "rx"; use ro or rw/],
  ["corerun", (c) => corerun("-v", `${c.scratch}:data`, "/bin/true")(c), 125, () => /container path "data" must be absolute/],
  ["corerun", corerun("-v", ":/data", "/bin/true"), 125, () => /-v ":\/data": expected HOST_PATH:CONTAINER_PATH/],
  ["corerun", (c) => corerun("-v", `${c.scratch}/nope:/data`, "/bin/true")(c), 125, () => /host path .*nope does not exist/],
  ["corerun", (c) => corerun("-v", `${c.scratch}/${LONG}:/data`, "/bin/true")(c), 125, (c) => re(`-v "${c.scratch}/${LONG}:/data"`)],
  ["corerun", (c) => corerun("-v", `${c.scratch}:/data:ro,idmap`, "/bin/true")(c), 125, () => /-v .*:\/data: idmap maps through a user namespace; add --userns auto or --uidmap, or drop idmap/],
  ["corerun", (c) => ["--root", c.root, "--rootfs", join(c.scratch, "none"), "/bin/true"], 125, () => /--rootfs .*none: no such directory/],
  ["corerun", (c) => ["--root", c.root, "--rootfs", join(c.scratch, "file"), "/bin/true"], 125, () => /--rootfs .*file: not a directory/],
  ["corerun", (c) => ["--root", c.root, "--rootfs", join(c.scratch, LONG), "/bin/true"], 125, () => /--rootfs .*x+/],
  ["corerun", (c) => ["--root", c.root, "--rootfs", c.etcLink, "--network", "none", "/bin/true"], 125, () => /\/etc\/hosts in the root filesystem .*etc-link: too many levels of symbolic links .*make its links point inside it/],
  ["corerun", (c) => ["--root", c.root, "--rootfs", c.hostsLoop, "--network", "none", "/bin/true"], 125, () => /\/etc\/hosts in the root filesystem .*hosts-loop: too many levels of symbolic links/],
  ["corerun", (c) => ["--root", join(c.readOnly, "state"), "--rootfs", c.rootfs, "/bin/true"], 125, (c) => re(`state root ${join(c.readOnly, "state")} cannot be written (EROFS); pass --root DIR or set CORERUN_ROOT`)],
  ["corerun", (c) => ["--root", join(c.scratch, "file", "sub"), "--rootfs", c.rootfs, "/bin/true"], 125, () => /state root .* cannot be written \(ENOTDIR\)/],
  // NUL bytes, through the JSON files corerun reads; a rootfs given through a link
  ["corerun", (c) => ["--root", c.root, "create", "--bundle", join(c.scratch, "nul-args"), "nul1"], 125, () => /nul-args\/config\.json: process\.args\[0\] holds a NUL byte, which no path, argument or name can carry; remove it/],
  ["corerun", (c) => ["--root", c.root, "create", "--bundle", join(c.scratch, "nul-root"), "nul2"], 125, () => /nul-root\/config\.json: root\.path holds a NUL byte/],
  ["corerun", (c) => ["--root", c.root, "create", "--bundle", join(c.scratch, "link-root"), "link1"], 125, (c) => re(`root.path ${c.rootfsLink} is a symlink or passes through one (to ${c.rootfs}); give the real path in config.json, as runc requires`)],
  ["corerun", (c) => ["--root", c.root, "update", "--resources", join(c.scratch, "nul-resources.json"), "ghost"], 125, () => /--resources: "memory\\u0000" \(a key\) holds a NUL byte/],
  ["corerun", (c) => corerun("--security-opt", `seccomp=${join(c.scratch, "nul-profile.json")}`, "/bin/true")(c), 125, () => /nul-profile\.json: syscalls\[0\]\.names\[0\] holds a NUL byte/],
  ["corerun", (c) => ["image", "import", "--root", c.root, join(c.scratch, "nul-layout")], 125, () => /nul-layout: index\.json: manifests\[0\]\.annotations\.org\.opencontainers\.image\.ref\.name holds a NUL byte/],
  // corerun run: the command
  ["corerun", corerun("/bin/nonexistent"), 127, () => /\/bin\/nonexistent: no such file in the root filesystem/],
  ["corerun", corerun("nonexistent-command"), 127, () => /nonexistent-command: not found in PATH .* in the root filesystem/],
  ["corerun", corerun("/etc"), 126, () => /\/etc: \/etc in the root filesystem .* is not an executable file/],
  ["corerun", (c) => ["--root", c.root, "--rootfs", c.scratch, "/bin/true"], 127, () => /\/bin\/true: no such file in the root filesystem/],
  // corerun ps, kill, cleanup
  ["corerun", (c) => ["ps", "--root", c.root, "extra"], 125, () => /container "extra" does not exist; see corerun ps -a/],
  ["corerun", (c) => ["ps", "--root", c.root, "--frob"], 125, () => /unknown option --frob; see --help/],
  ["corerun", (c) => ["ps", "--root", c.root, "-q", "--json"], 125, () => /^corerun: --json and -q: give one of them$/],
  ["corerun", (c) => ["ps", "--root", c.root, "--format", "json"], 125, () => /^corerun: --format: it applies to an ID's processes; for the list of containers use --json or -q$/],
  ["corerun", (c) => ["ps", "--root", c.root, "-q", "extra"], 125, () => /^corerun: --quiet: it applies to the list of containers; with an ID, ps lists that container's processes/],
  ["corerun", (c) => ["kill", "--root", c.root], 125, () => /name the containers to signal; see corerun ps/],
  ["corerun", (c) => ["kill", "--root", c.root, "ghost"], 125, () => /container "ghost" does not exist; see corerun ps -a/],
  ["corerun", () => ["ps", "--root", ""], 125, () => /--root "": give the state directory/],
  ["corerun-net", () => ["ls", "--root", ""], 125, () => /--root "": give the state directory/],
  ["corerun", (c) => ["kill", "--root", c.root, "-s", "NOPE", "ghost"], 125, () => /unknown signal SIGNOPE/],
  ["corerun", (c) => ["cleanup", "--root", c.root, "../etc"], 125, () => /\.\.\/etc: invalid container id "\.\.\/etc"/],
  ["corerun", (c) => ["cleanup", "--root", c.root, "abc"], 125, () => /abc: invalid container id "abc"/],
  ["corerun", (c) => ["cleanup", "--root", c.root, "--frob"], 125, () => /unknown option --frob; see --help/],
  ["corerun", corerun("--print-script", "--memory", "0", "/bin/true"), 125, () => /--memory "0" is below the minimum of 6 MiB/],
  // run -d, logs, stop, rm, inspect
  ["corerun", corerun("-d", "--print-script", "/bin/true"), 125, () => /--print-script prints a start in the foreground; drop -d/],
  // --restart
  ["corerun", corerun("-d", "--restart", "sometimes", "/bin/true"), 125, () => /--restart sometimes: use no, on-failure\[:N\], always or unless-stopped/],
  ["corerun", corerun("-d", "--restart", "on-failure:-1", "/bin/true"), 125, () => /--restart on-failure:-1: the retry count must be a whole number, 0 or more/],
  ["corerun", corerun("-d", "--restart", "always:3", "/bin/true"), 125, () => /--restart always:3: a retry count goes only with on-failure \(on-failure:3\)/],
  ["corerun", corerun("-d", "--rm", "--restart", "always", "/bin/true"), 125, () => /Conflicting options: --restart always and --rm/],
  ["corerun", corerun("--restart", "on-failure", "/bin/true"), 125, () => /--restart on-failure needs -d: only a detached container's monitor starts it again/],
  ["corerun", (c) => ["logs", "--root", c.root], 125, () => /logs takes one container name or id; see corerun ps -a/],
  ["corerun", (c) => ["logs", "--root", c.root, "ghost"], 125, () => /"ghost" does not exist/],
  ["corerun", (c) => ["logs", "--root", c.root, "--tail", "x", "ghost"], 125, () => /--tail x: give a number of lines or all/],
  ["corerun", (c) => ["stop", "--root", c.root], 125, () => /name the containers to stop; see corerun ps/],
  ["corerun", (c) => ["stop", "--root", c.root, "-t", "soon", "ghost"], 125, () => /-t soon: give the grace period in whole seconds/],
  ["corerun", (c) => ["stop", "--root", c.root, "ghost"], 125, () => /"ghost" does not exist/],
  ["corerun", (c) => ["rm", "--root", c.root], 125, () => /name the containers to remove; see corerun ps -a/],
  ["corerun", (c) => ["rm", "--root", c.root, "-f", "ghost"], 125, () => /"ghost" does not exist/],
  ["corerun", (c) => ["start", "--root", c.root], 125, () => /name the containers to start; see corerun ps -a/],
  ["corerun", (c) => ["start", "--root", c.root, "-a", "ghost"], 125, () => /container "ghost" does not exist; see corerun ps -a/],
  ["corerun", (c) => ["inspect", "--root", c.root], 125, () => /name the containers to inspect; see corerun ps -a/],
  ["corerun", (c) => ["inspect", "--root", c.root, "ghost"], 125, () => /"ghost" does not exist/],
  // attach, --detach-keys
  ["corerun", (c) => ["attach", "--root", c.root], 125, () => /attach takes one container name or id; see corerun ps/],
  ["corerun", (c) => ["attach", "--root", c.root, "ghost"], 125, () => /container "ghost" does not exist/],
  ["corerun", (c) => ["attach", "--root", c.root, "--detach-keys", "ctrl-1", "ghost"], 125, () => /--detach-keys "ctrl-1": unknown key "ctrl-1"; give comma-separated single characters or ctrl-</],
  ["corerun", (c) => ["attach", "--root", c.root, "--detach-keys", "ctrl-p,,ctrl-q", "ghost"], 125, () => /--detach-keys "ctrl-p,,ctrl-q": unknown key ""/],
  ["corerun", (c) => ["attach", "--root", c.root, "--sig-proxy=maybe", "ghost"], 125, () => /--sig-proxy maybe: give true or false/],
  ["corerun", (c) => ["exec", "--root", c.root, "-it", "--detach-keys", "alt-q", "ghost", "sh"], 125, () => /--detach-keys "alt-q": unknown key "alt-q"/],
  ["corerun", corerun("-t", "--detach-keys", "ctrl-a", "/bin/true"), 125, () => /^corerun: --detach-keys: only run -it \(in the foreground\) reads typed keys; add -i and -t, or with -d give it to corerun attach$/],
  ["corerun", corerun("-dit", "--detach-keys", "ctrl-a", "/bin/true"), 125, () => /--detach-keys: only run -it \(in the foreground\)/],
  ["corerun", corerun("-it", "--detach-keys", "ctrl-1", "/bin/true"), 125, () => /--detach-keys "ctrl-1": unknown key "ctrl-1"/],
  // corerun-cgroup
  ["corerun-cgroup", () => ["create", "--cgroup-parent", PARENT], 125, () => /no cgroup name given; usage: corerun-cgroup create NAME/],
  ["corerun-cgroup", () => ["create", "../x", "--cgroup-parent", PARENT], 125, () => /cgroup name "\.\.\/x" is not valid; use letters, digits/],
  ["corerun-cgroup", () => ["create", "a/b", "--cgroup-parent", PARENT], 125, () => /cgroup name "a\/b" is not valid/],
  ["corerun-cgroup", () => ["create", LONG, "--cgroup-parent", PARENT], 125, () => /cgroup name "x+" is not valid/],
  ["corerun-cgroup", () => ["create", `c${tag}`, "--cgroup-parent", PARENT, "--memory", "0"], 125, () => /--memory "0" is below the minimum of 6 MiB/],
  ["corerun-cgroup", () => ["create", `c${tag}`, "--cgroup-parent", PARENT, "--cpus", "-1"], 125, () => /--cpus "-1" is not a number/],
  ["corerun-cgroup", () => ["create", `c${tag}`, "--cgroup-parent", PARENT, "--pids", "abc"], 125, () => /--pids "abc" is not a positive integer/],
  ["corerun-cgroup", () => ["create", `c${tag}`, "--cgroup-parent", PARENT, "--device-cgroup-rule", "c 1:3"], 125, () => /--device-cgroup-rule "c 1:3": give TYPE MAJOR:MINOR ACCESS/],
  ["corerun-cgroup", () => ["add", `none${tag}`, "--cgroup-parent", PARENT, "--pid", "1"], 125, () => new RegExp(`no cgroup none${tag} under ${PARENT} in /sys/fs/cgroup`)],
  ["corerun-cgroup", () => ["add", `c${tag}`, "--cgroup-parent", PARENT, "--pid", "abc"], 125, () => /--pid "abc" is not a process id/],
  ["corerun-cgroup", () => ["stats", `none${tag}`, "--cgroup-parent", PARENT], 125, () => new RegExp(`no cgroup none${tag} under ${PARENT}`)],
  ["corerun-cgroup", () => ["freeze", `none${tag}`, "--cgroup-parent", PARENT], 125, () => new RegExp(`no cgroup none${tag} under ${PARENT}`)],
  ["corerun-cgroup", () => ["thaw", `none${tag}`, "--cgroup-parent", PARENT], 125, () => new RegExp(`no cgroup none${tag} under ${PARENT}`)],
  ["corerun-cgroup", () => ["kill", `none${tag}`, "--cgroup-parent", PARENT], 125, () => new RegExp(`no cgroup none${tag} under ${PARENT}`)],
  ["corerun-cgroup", () => ["rm", `none${tag}`, "--cgroup-parent", PARENT], 125, () => new RegExp(`no cgroup none${tag} under ${PARENT}`)],
  ["corerun-cgroup", () => [`frob${tag}`], 127, () => new RegExp(`cannot run frob${tag}: command not found; to use a subcommand, give one of create`)],
  ["corerun-cgroup", () => ["run", "--cgroup-parent", PARENT, "--memory", "x", "--", "/bin/true"], 125, () => /--memory "x" is not a size/],
  ["corerun-cgroup", (c) => ["run", "--cgroup-parent", PARENT, "--cgroup-root", join(c.scratch, "file"), "--", "/bin/true"], 125, () => /file is neither cgroup2 nor a tmpfs of cgroup hierarchies/],
  ["corerun-cgroup", () => ["run", "--cgroup-parent", PARENT, "--", `/nonexistent-${tag}`], 127, () => new RegExp(`cannot run /nonexistent-${tag}: command not found`)],
  ["corerun-cgroup", () => ["--cgroup-parent", "../..", "--", "/bin/true"], 125, () => /--cgroup-parent "\.\.\/\.\." is not valid/],
  // corerun-ns
  ["corerun-ns", () => ["--ns", "ipc,mount", "--ipc-ns", "/proc/1/ns/ipc", "--", "/bin/true"], 125, () => /--ipc-ns joins an IPC namespace: leave ipc out of --ns/],
  ["corerun-ns", () => ["--ns", "mount", "--pid-ns", "/proc/999999999/ns/pid", "--", "/bin/true"], 125, () => /--pid-ns \/proc\/999999999\/ns\/pid: no such namespace file; give \/proc\/PID\/ns\/pid of a running process/],
  ["corerun-ns", () => ["--ns", "pid,bogus", "--", "/bin/true"], 125, () => /--ns: unknown namespace "bogus"; use pid,uts,ipc,net,cgroup,mount/],
  ["corerun-ns", () => ["--uidmap", "0:1", "--", "/bin/true"], 125, () => /--uidmap 0:1: expected CONTAINER_ID:HOST_ID:SIZE/],
  ["corerun-ns", () => ["--preserve-fds", "-1", "--", "/bin/true"], 125, () => /--preserve-fds "-1" is not a file descriptor number/],
  ["corerun-ns", () => ["--preserve-fds", "abc", "--", "/bin/true"], 125, () => /--preserve-fds "abc" is not a file descriptor number/],
  ["corerun-ns", () => ["--json-status-fd", "abc", "--", "/bin/true"], 125, () => /--json-status-fd "abc" is not a file descriptor number/],
  ["corerun-ns", (c) => ["--net-ns", join(c.scratch, "file"), "--", "/bin/true"], 125, () => /--net-ns joins a network namespace: leave net out of --ns/],
  ["corerun-ns", (c) => ["--pid-file", join(c.scratch, "none", "pid"), "--", "/bin/true"], 125, () => /--pid-file .*none\/pid: .*none is not a directory; give a path in an existing directory/],
  ["corerun-ns", () => ["--", `/nonexistent-${tag}`], 127, () => new RegExp(`/nonexistent-${tag}: no such file in the container`)],
  ["corerun-ns", () => [], 125, () => /no command given; usage: corerun-ns \[options\] -- CMD/],
  ["corerun-ns", () => ["--frob", "--", "/bin/true"], 125, () => /unknown option --frob; see --help/],
  // corerun-exec
  ["corerun-exec", () => [], 125, () => /no command given; usage: corerun-exec \[options\] -- CMD/],
  ["corerun-exec", () => ["--mount-proc", "--", "/bin/true"], 125, () => /--mount-proc needs corerun-exec in a mount namespace of its own \(start it with corerun-ns\)/],
  ["corerun-exec", () => ["--hostname", "renamed", "--", "/bin/true"], 125, () => /--hostname renamed: corerun-exec shares its parent's UTS namespace, whose hostname this would change; start it in a new one \(corerun-ns --ns uts\)/],
  ["corerun-exec", () => ["--sysctl", "net.core.somaxconn=1", "--", "/bin/true"], 125, () => /--sysctl net\.core\.somaxconn=1: corerun-exec shares its parent's network namespace, whose setting this would change; start it in a new one \(corerun-ns --ns net\)/],
  ["corerun-exec", () => ["--oom-score-adj", "x", "--", "/bin/true"], 125, () => /--oom-score-adj x: give a whole number from -1000 to 1000/],
  ["corerun-exec", () => ["--cgroup-fd", "abc", "--", "/bin/true"], 125, () => /--cgroup-fd abc: not an inherited fd open on a cgroup.procs file/],
  ["corerun-exec", () => ["--cgroup-fd", "1", "--", "/bin/true"], 125, () => /--cgroup-fd 1: not an inherited fd open on a cgroup.procs file/],
  ["corerun-exec", () => ["--cap-add", "FLY", "--", "/bin/true"], 125, () => /--cap-add FLY: unknown capability/],
  ["corerun-exec", () => ["--hostname", "bad_name!", "--", "/bin/true"], 125, () => /--hostname "bad_name!" may hold only letters, digits/],
  ["corerun-exec", () => ["-e", "=1", "--", "/bin/true"], 125, () => /-e "=1": "" is not a valid variable name/],
  ["corerun-exec", () => ["-w", "rel", "--", "/bin/true"], 125, () => /--workdir "rel" must be an absolute path/],
  ["corerun-exec", (c) => ["--sync-dir", join(c.scratch, "none"), "--", "/bin/true"], 125, () => /--sync-dir .*none: no FIFO .*none\/go; make both with mkfifo/],
  ["corerun-exec", () => ["--", `/nonexistent-${tag}`], 127, () => new RegExp(`/nonexistent-${tag}: no such file in the container`)],
  ["corerun-exec", (c) => ["--", join(c.scratch, "file")], 126, () => /file in the container is not an executable file/],
  ["corerun-exec", (c) => ["--oci", join(c.scratch, "no-args/config.json")], 125, () => /no-args\/config.json: process.args is empty; name the program to run/],
  ["corerun-exec", (c) => ["--oci", join(c.scratch, "none.json")], 125, () => /none.json: cannot be read \(ENOENT\); give --oci the path of a config.json/],
  // corerun-mount
  ["corerun-mount", () => [], 125, () => /--pid is required: the pid of the waiting container process/],
  ["corerun-mount", (c) => ["--pid", "abc", "--rootfs", c.rootfs], 125, () => /--pid abc: not a process id/],
  ["corerun-mount", (c) => ["--pid", "1", "--rootfs", c.rootfs, "--device", "/dev/null:/dev/n:r"], 125, () => /--device "\/dev\/null:\/dev\/n:r": corerun-mount makes the node; what the container may do with it is the device cgroup's/],
  ["corerun-mount", (c) => ["--pid", "1", "--rootfs", c.rootfs, "--dev-shm", "shm"], 125, () => /--dev-shm shm: give tmpfs, none or an absolute path to bind/],
  ["corerun-mount", (c) => ["--pid", "1", "--rootfs", c.rootfs, "--device", "/etc/hostname:/dev/h"], 125, () => /--device "\/etc\/hostname:\/dev\/h": \/etc\/hostname is not a device node/],
  ["corerun-mount", (c) => ["--pid", "0", "--rootfs", c.rootfs], 125, () => /--pid 0: not a process id/],
  ["corerun-mount", (c) => ["--pid", "999999999", "--rootfs", c.rootfs], 125, () => /--pid 999999999: no such process/],
  ["corerun-mount", (c) => ["--pid", "1", "--rootfs", c.rootfs, "--overlay-lower", c.rootfs], 125, () => /--overlay-lower, --overlay-upper and --overlay-work go together/],
  ["corerun-mount", (c) => ["--pid", "1", "--rootfs", c.rootfs, "--overlay-upper", c.scratch, "--overlay-work", c.scratch], 125, () => /--overlay-lower, --overlay-upper and --overlay-work go together/],
  ["corerun-mount", () => ["--pid", String(process.pid)], 125, () => /--rootfs is required: the directory to use as the container's \//],
  ["corerun-mount", (c) => ["--pid", String(process.pid), "--rootfs", c.rootfs], 125, () => /the process shares corerun-mount's mount namespace; give the pid of a process in a new one/],
  ["corerun-mount", (c) => ["--pid", String(process.pid), "--rootfs", join(c.scratch, "none")], 125, () => /--rootfs .*none: no such directory; build one with tools\/rootfs\/build.sh/],
  ["corerun-mount", (c) => ["--pid", String(process.pid), "--rootfs", c.rootfs, "-v", "x"], 125, () => /-v "x": expected HOST_PATH:CONTAINER_PATH/],
  ["corerun-mount", (c) => ["--pid", String(process.pid), "--rootfs", c.rootfs, "-v", `${c.scratch}:/d:rw,idmap`], 125, () => /idmap needs --idmap/],
  // corerun-net
  ["corerun-net", (c) => ["setup", "--root", c.root], 125, () => /give exactly one of --pid PID and --netns PATH/],
  ["corerun-net", (c) => ["setup", "--root", c.root, "--pid", "abc", "--id", "x"], 125, () => /--pid "abc" is not a process id/],
  ["corerun-net", (c) => ["setup", "--root", c.root, "--pid", "1", "--netns", "/x", "--id", "x"], 125, () => /give exactly one of --pid PID and --netns PATH/],
  ["corerun-net", (c) => ["setup", "--root", c.root, "--netns", join(c.scratch, "file"), "--id", "bad id"], 125, () => /--id "bad id": use 1 to 128 letters, digits/],
  ["corerun-net", (c) => ["setup", "--root", c.root, "--netns", join(c.scratch, "file"), "--id", LONG], 125, () => /--id "x+": use 1 to 128 letters/],
  ["corerun-net", (c) => ["setup", "--root", c.root, "--netns", join(c.scratch, "none"), "--id", "x"], 125, () => /--netns .*none: no such file/],
  ["corerun-net", (c) => ["setup", "--root", c.root, "--netns", join(c.scratch, "file"), "--id", "x"], 125, () => /setns .*file: EINVAL \(invalid argument\); the fd is not a namespace of that type/],
  ["corerun-net", (c) => ["setup", "--root", c.root, "--netns", join(c.scratch, "file"), "--id", "x", "--network", "weird"], 125, () => /--network weird: unknown mode; use bridge or none/],
  ["corerun-net", (c) => ["setup", "--root", c.root, "--netns", join(c.scratch, "file"), "--id", "x", "-P", "99999:1"], 125, () => /-P 99999:1: host port 99999 is out of range; ports go from 1 to 65535/],
  ["corerun-net", (c) => ["setup", "--root", c.root, "--netns", join(c.scratch, "file"), "--id", "x", "--subnet", "1.2.3.4/33"], 125, () => /--subnet 1.2.3.4\/33: "\/33" is not a prefix length from 0 to 32/],
  ["corerun-net", (c) => ["setup", "--root", c.root, "--netns", join(c.scratch, "file"), "--id", "x", "-N", "-bad"], 125, () => /--net -bad: a bridge name starts with a letter/],
  ["corerun-net", (c) => ["setup", "--root", c.root, "--netns", join(c.scratch, "file"), "--id", "x", "--hostname", "a_b"], 125, () => /--hostname "a_b" may hold only letters, digits/],
  ["corerun-net", (c) => ["teardown", "--root", c.root], 125, () => /--id is required, e.g. --id c0ffee123456/],
  ["corerun-net", (c) => ["teardown", "--root", c.root, "--id", "../x"], 125, () => /--id "\.\.\/x": use 1 to 128 letters/],
  ["corerun-net", (c) => ["rm", "--root", c.root], 125, () => /name the network to remove, e.g. corerun-net rm corerun0/],
  ["corerun-net", (c) => ["rm", "--root", c.root, `none${tag}`], 125, () => new RegExp(`no network named none${tag}; see corerun-net ls`)],
  ["corerun-net", (c) => ["ls", "--root", c.root, "extra"], 125, () => /unexpected argument "extra"; see --help/],
  ["corerun-net", () => ["frob"], 125, () => /unexpected argument "frob"; see --help/],
  ["corerun-net", (c) => ["etc", "--root", c.root, "--id", "x"], 125, () => /--etc-dir is required, e.g. --etc-dir \/run\/corerun\/ID\/etc/],
  ["corerun-net", (c) => ["etc", "--root", c.root, "--id", "x", "--etc-dir", join(c.scratch, "none"), "--network", "bridge"], 125, () => /--network bridge: corerun-net setup writes the files of a bridge container/],
];

function hash(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/** What the host shows of this file's activity; compared before and after each case. */
function snapshot(c: Ctx): unknown {
  const cgroups = readdirSync("/sys/fs/cgroup").flatMap((h) => {
    const p = join("/sys/fs/cgroup", h, PARENT);
    return existsSync(p) ? readdirSync(p, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => join(p, d.name)) : [];
  });
  const leases = join(c.root, "networks/networks.json");
  return {
    // Containers, and what the image store holds (its empty directories and lock are no change).
    state: existsSync(c.root) ? readdirSync(c.root).filter((n) => !["names.lock", "mountpoints.json", "networks", "runtime", "images", "layers", "images.lock", "oci-ids"].includes(n)) : [],
    store: ["images", "layers"].flatMap((d) => (existsSync(join(c.root, d)) ? readdirSync(join(c.root, d), { recursive: true, withFileTypes: true }).filter((e) => !e.isDirectory()).map((e) => join(e.parentPath, e.name)) : [])),
    leases: existsSync(leases) ? (JSON.parse(readFileSync(leases, "utf8")) as { leases: unknown[] }).leases : [],
    cgroups,
    mounts: [...hostMountsUnder(c.scratch), ...hostMountsUnder(c.root)].filter((l) => !l.includes(c.readOnly)),
    processes: processesWith(tag),
    rootfs: readdirSync(c.rootfs).sort(),
    etcLink: readdirSync(c.etcLink).sort(),
    hostsLoop: readdirSync(join(c.hostsLoop, "etc")).sort(),
    scratch: readdirSync(c.scratch).sort(),
    hostEtc: ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"].filter(existsSync).map(hash),
  };
}

describe(`bad input, as a table of ${ROWS.length} invocations: one line, the exit status, nothing left`, { skip: !isRoot && "needs root" }, () => {
  const c = {} as Ctx;
  let before_: unknown;
  before(() => {
    c.rootfs = busyboxRootfs();
    c.root = stateRoot();
    c.scratch = mkdtempSync(join(tmpdir(), "corerun-bad-table-"));
    writeFileSync(join(c.scratch, "file"), "");
    c.etcLink = join(c.scratch, "etc-link");
    cpSync(c.rootfs, c.etcLink, { recursive: true, verbatimSymlinks: true });
    rmSync(join(c.etcLink, "etc"), { recursive: true });
    symlinkSync("/etc", join(c.etcLink, "etc"));
    c.hostsLoop = join(c.scratch, "hosts-loop");
    cpSync(c.rootfs, c.hostsLoop, { recursive: true, verbatimSymlinks: true });
    if (existsSync(join(c.hostsLoop, "etc/hosts"))) unlinkSync(join(c.hostsLoop, "etc/hosts"));
    symlinkSync("/etc/hosts", join(c.hostsLoop, "etc/hosts"));
    c.rootfsLink = join(c.scratch, "rootfs-link");
    symlinkSync(c.rootfs, c.rootfsLink);
    for (const [name, data] of Object.entries(FILES)) {
      mkdirSync(join(c.scratch, name, ".."), { recursive: true });
      writeFileSync(join(c.scratch, name), JSON.stringify(data(c)));
    }
    c.readOnly = join(c.scratch, "read-only");
    mkdirSync(c.readOnly);
    const m = run("mount", ["-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", c.readOnly]);
    assert.equal(m.code, 0, m.stderr);
    before_ = snapshot(c);
  });
  after(() => {
    try {
      run("umount", [c.readOnly]);
      for (const h of readdirSync("/sys/fs/cgroup")) {
        const p = join("/sys/fs/cgroup", h, PARENT);
        if (existsSync(p)) rmdirSync(p);
      }
      if (c.scratch.startsWith(join(tmpdir(), "corerun-bad-table-")) && !hostMountsUnder(c.readOnly).length) rmSync(c.scratch, { recursive: true, force: true });
    } finally {
      removeStateRoot(c.root);
    }
  });

  test("the table has at least 100 invocations across corerun and every tool", () => {
    assert.ok(ROWS.length >= 100, String(ROWS.length));
    const tools = new Set(ROWS.map(([t]) => t));
    assert.deepEqual([...tools].sort(), ["corerun", "corerun-cgroup", "corerun-exec", "corerun-mount", "corerun-net", "corerun-ns"]);
  });

  test("links in a rootfs stay inside it: the rootfs is recorded by its real path, a mount target linking to a host path is made inside the rootfs", async () => {
    const tree = join(c.scratch, "data-link");
    cpSync(c.rootfs, tree, { recursive: true, verbatimSymlinks: true });
    const hostSide = join(c.scratch, "host-side");
    const volume = join(c.scratch, "volume");
    mkdirSync(hostSide);
    mkdirSync(volume);
    // Read on the host, /data would be the host's directory; inside the rootfs it is a path that does not exist yet.
    symlinkSync(hostSide, join(tree, "data"));
    const link = join(c.scratch, "data-link-link");
    symlinkSync(tree, link);
    const treeBefore = readdirSync(tree, { recursive: true }).sort();
    const child = spawn(join(BIN, "corerun"), ["--root", c.root, "--rootfs", link, "--cgroup-parent", PARENT, "--network", "none", "-v", `${volume}:/data`, "/bin/sh", "-c", "echo in-volume > /data/f && exec sleep 30"], { stdio: "ignore" });
    const ended = once(child, "exit");
    let states: { id: string; config: { rootfs: string } }[] = [];
    try {
      for (let i = 0; i < 100 && !existsSync(join(volume, "f")); i++) await delay(100);
      states = JSON.parse(tool("corerun", ["ps", "--json", "--root", c.root]).stdout) as typeof states;
      assert.deepEqual(states.map((st) => st.config.rootfs), [tree]);
      assert.equal(readFileSync(join(volume, "f"), "utf8"), "in-volume\n");
    } finally {
      // The container's end ends its corerun, which removes what it made.
      for (const st of states) tool("corerun", ["kill", "--root", c.root, st.id]);
      if (!states.length) child.kill("SIGKILL");
      await ended;
      if (!states.length) tool("corerun", ["cleanup", "--root", c.root]);
    }
    assert.deepEqual(readdirSync(hostSide), [], "nothing reached the host's directory");
    assert.deepEqual(readdirSync(tree, { recursive: true }).sort(), treeBefore, "the mount point made inside the rootfs is gone");
    rmSync(tree, { recursive: true });
    for (const p of [link, volume, hostSide]) rmSync(p, { recursive: true });
    assert.deepEqual(snapshot(c), before_);
  });

  ROWS.forEach(([name, args, code, message], i) => {
    test(`${i + 1}. ${name} ${args({ root: "ROOT", rootfs: "ROOTFS", scratch: "S", etcLink: "S/etc-link", hostsLoop: "S/hosts-loop", readOnly: "S/read-only", rootfsLink: "S/rootfs-link" }).join(" ").slice(0, 100)}`, () => {
      const r = tool(name, args(c), { env: { ...process.env, CORERUN_ROOT: c.root } });
      const lines = r.stderr.trimEnd().split("\n");
      assert.equal(lines.length, 1, `more than one line:\n${r.stderr}`);
      assert.ok(lines[0]!.startsWith(`${name}: `), lines[0]);
      assert.match(lines[0]!, message(c));
      assert.equal(r.code, code, r.stderr);
      assert.deepEqual(snapshot(c), before_);
    });
  });
});
