import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";
import { after, before, describe, test } from "node:test";
import { COMMON_ARGS, CommandError, splitArgv, UsageError } from "@corerun/cli";
import { mayBeOnVolume, parseRunConfig, runArgs } from "./args.ts";
import { cloneJoin, dockerDeviceRules, parseDeviceCgroupRule } from "@corerun/cgroup";

let base: string;
let rootfs: string;

before(() => {
  base = mkdtempSync(join(tmpdir(), "corerun-args-test-"));
  rootfs = join(base, "rootfs");
  mkdirSync(join(rootfs, "bin"), { recursive: true });
  writeFileSync(join(rootfs, "bin/sh"), "#!/bin/sh\n");
  chmodSync(join(rootfs, "bin/sh"), 0o755);
  mkdirSync(join(rootfs, "opt/app"), { recursive: true });
  writeFileSync(join(rootfs, "opt/app/serve"), "");
  chmodSync(join(rootfs, "opt/app/serve"), 0o755);
  mkdirSync(join(base, "data"));
});

after(() => {
  if (base.startsWith(tmpdir() + sep) && base.includes("corerun-args-test-")) rmSync(base, { recursive: true, force: true });
});

/** `corerun run ARGV` as main.ts splits it, with --rootfs pointing at the test rootfs. */
function parse(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const ctx = splitArgv(["--rootfs", rootfs, ...argv], { ...runArgs, ...COMMON_ARGS }, { tail: "command", optionalValues: { log: ["true", "false"] } });
  return parseRunConfig(ctx, env, 0, 0);
}

function usageError(argv: string[], message: RegExp): void {
  assert.throws(() => parse(argv), (e: unknown) => {
    assert.ok(e instanceof UsageError, String(e));
    assert.match(e.message, message);
    return true;
  });
}

describe("mayBeOnVolume", () => {
  test("a command on a volume, by path or through PATH, is left to corerun-exec to find", () => {
    const vols = [{ target: "/tools" }, { target: "/data/" }];
    assert.equal(mayBeOnVolume("/tools/prog", "/bin", vols), true);
    assert.equal(mayBeOnVolume("/data/x/prog", "/bin", vols), true);
    assert.equal(mayBeOnVolume("/toolsx/prog", "/bin", vols), false);
    assert.equal(mayBeOnVolume("prog", "/usr/bin:/tools/bin", vols), true);
    assert.equal(mayBeOnVolume("prog", "/usr/bin:/bin", vols), false);
    assert.equal(mayBeOnVolume("/bin/sh", "/bin", []), false);
  });
});

describe("parseRunConfig", () => {
  test("a plain run gets the defaults", () => {
    const { security, ...cfg } = parse(["sh", "-c", "echo hi"], { CORERUN_ROOT: join(base, "state") });
    assert.equal(security.privileged, false);
    assert.equal(security.noNewPrivs, false);
    assert.match(security.seccomp!.program.path, new RegExp(`^${join(base, "state", "runtime", "seccomp")}/[0-9a-f]{16}\\.bpf$`));
    assert.deepEqual(cfg, {
      rootfs,
      command: ["sh", "-c", "echo hi"],
      hostname: undefined,
      env: [],
      workdir: "/",
      volumes: [],
      network: { mode: "bridge", net: undefined, subnet: undefined, ports: [], extras: { hosts: [], dns: [], dnsSearch: [], dnsOptions: [] } },
      name: undefined,
      limits: { devices: dockerDeviceRules() },
      devices: [],
      deviceCgroupRules: [],
      rootless: false,
      userns: undefined,
      capAdd: [],
      capDrop: [],
      cgroupParent: "corerun",
      root: join(base, "state"),
      printScript: false,
      detach: false,
      rm: false,
      readOnly: false,
      pidHost: false,
      ipc: { mode: "private" },
      utsHost: false,
      tmpfs: [],
      ulimits: [],
      tty: false,
      interactive: false,
      groupAdd: [],
      sysctls: [],
      labels: {},
      files: { env: [], labels: {} },
    });
  });

  test("user namespaces: --uidmap (the gid map follows), --gidmap, --userns auto|host", () => {
    assert.deepEqual(parse(["--uidmap", "0:100000:65536", "sh"]).userns, {
      auto: false,
      uidMap: [{ container: 0, host: 100000, size: 65536 }],
      gidMap: [{ container: 0, host: 100000, size: 65536 }],
    });
    assert.deepEqual(parse(["--userns", "auto", "sh"]).userns, { auto: true });
    assert.equal(parse(["--userns", "host", "sh"]).userns, undefined);
    usageError(["--userns", "auto", "--uidmap", "0:1:1", "sh"], /exclude each other/);
    usageError(["--userns", "private", "sh"], /^--userns private: unknown mode; use auto or host$/);
    usageError(["--uidmap", "0:1000:10", "--uidmap", "5:2000:10", "sh"], /overlap inside the container/);
    usageError(["--uidmap", "0:1000:10", "--uidmap", "20:1005:10", "sh"], /overlap on the host/);
    usageError(["--uidmap", "0:1000:0", "sh"], /the size is 0/);
    usageError(["--uidmap", "1:1000:10", "sh"], /nothing maps container id 0/);
    usageError(["--gidmap", "0:x:1", "sh"], /expected CONTAINER_ID:HOST_ID:SIZE/);
  });

  test("rootless (uid 1000): its own uid mapped to root, --network none, no cgroup options", () => {
    const rootless = (argv: string[]) => parseRunConfig(splitArgv(["--rootfs", rootfs, ...argv], { ...runArgs, ...COMMON_ARGS }, { tail: "command" }), {}, 1000, 1000);
    const cfg = rootless(["sh"]);
    assert.equal(cfg.rootless, true);
    assert.deepEqual(cfg.network, { mode: "none", ports: [], extras: { hosts: [], dns: [], dnsSearch: [], dnsOptions: [] } });
    assert.equal(cfg.limits.devices, undefined, "no cgroup, so no device cgroup");
    assert.deepEqual(cfg.userns, { auto: false, uidMap: [{ container: 0, host: 1000, size: 1 }], gidMap: [{ container: 0, host: 1000, size: 1 }] });
    assert.equal(cfg.root, "/tmp/corerun-1000");
    assert.equal(rootless(["--uidmap", "0:1000:1", "sh"]).rootless, true);
    // Detached and -it containers run under corerun-monitor, which needs no privilege.
    assert.equal(rootless(["-d", "sh"]).detach, true);
    assert.equal(rootless(["-i", "-t", "--detach-keys", "ctrl-a", "sh"]).tty, true);
    for (const [argv, message] of [
      [["--memory", "64", "sh"], /--memory: cgroup limits of rootless containers \(corerun run as uid 1000\) need a delegated cgroup/],
      [["--network", "bridge", "sh"], /get --network none only; bridge networking and published ports need root/],
      [["-P", "8080:80", "sh"], /published ports need root/],
      [["--uidmap", "0:100000:65536", "sh"], /--uidmap 0:100000:65536: corerun run as uid 1000 may not use host ids 100000-165535; it may use 1000 \(yours\)/],
      [["--userns", "auto", "sh"], /--userns auto: ranges from \/etc\/subuid/],
      [["--userns", "host", "sh"], /always has a user namespace/],
      [["--ipc", "shareable", "sh"], /--ipc shareable: its \/dev\/shm is mounted in the host's mount namespace, which a rootless container cannot; run as root/],
      [["--device-cgroup-rule", "c 10:200 rwm", "sh"], /--device-cgroup-rule: cgroup limits of rootless containers/],
      [["--pid", "host", "sh"], /--pid host: a container with a user namespace cannot mount/],
    ] as const) {
      assert.throws(() => rootless([...argv]), { name: "UsageError", message }, argv.join(" "));
    }
  });

  test("--network: bridge is the default, multi its other name; none and host are accepted", () => {
    assert.equal(parse(["sh"]).network.mode, "bridge");
    assert.equal(parse(["--network", "multi", "sh"]).network.mode, "bridge");
    assert.equal(parse(["--network", "host", "sh"]).network.mode, "host");
    assert.equal(parse(["--network=none", "sh"]).network.mode, "none");
    assert.equal(parse(["-n", "none", "-l", "false", "sh"]).network.mode, "none", "the short spellings -n and -l");
  });

  test("bridge options: -N, --subnet and published ports are parsed and checked", () => {
    const cfg = parse(["-N", "web0", "--subnet", "10.213.9.0/24", "-P", "8080:80", "--publish", "127.0.0.1:5353:53/udp", "sh"]);
    assert.deepEqual(cfg.network, { mode: "bridge", net: "web0", subnet: "10.213.9.0/24", ports: ["8080:80", "127.0.0.1:5353:53/udp"], extras: { hosts: [], dns: [], dnsSearch: [], dnsOptions: [] } });
    usageError(["-P", "0:80", "sh"], /^-P 0:80: /);
    usageError(["-P", "8080:80/sctp", "sh"], /unknown protocol "sctp"/);
    usageError(["-N", "a-bridge-name-that-is-too-long", "sh"], /at most 15 characters/);
    usageError(["--subnet", "10.0.0.0/33", "sh"], /^--subnet 10.0.0.0\/33: /);
  });

  test("--ip and --network-alias: with a bridge, checked before anything exists", () => {
    const n = parse(["--ip", "10.77.0.20", "--network-alias", "db", "--network-alias", "pg", "sh"]).network;
    assert.deepEqual([n.ip, n.aliases], ["10.77.0.20", ["db", "pg"]]);
    usageError(["--ip", "10.77.0.300", "sh"], /^--ip 10\.77\.0\.300: give an IPv4 address, such as 10\.77\.0\.20$/);
    usageError(["--network-alias", "-x", "sh"], /^--network-alias "-x": use letters, digits/);
    usageError(["--network", "none", "--ip", "10.77.0.20", "sh"], /^--ip needs --network bridge \(it is none\)$/);
    usageError(["--network", "host", "--network-alias", "db", "sh"], /^--network-alias needs --network bridge \(it is host\)$/);
  });

  test("bridge options need --network bridge", () => {
    usageError(["--network", "none", "-P", "8080:80", "sh"], /^-P needs --network bridge \(it is none\)$/);
    usageError(["--network", "host", "-N", "br0", "sh"], /^--net needs --network bridge/);
  });

  test("--network container: names a running container", () => {
    usageError(["--network", "container:nobody-here", "sh"], /^--network container:nobody-here: no running container has the name or id "nobody-here"/);
  });

  test("an unknown network mode is refused", () => {
    usageError(["--network", "wifi", "sh"], /^--network wifi: unknown mode; use bridge, none, host or container:NAME$/);
  });

  test("the first process joins its cgroups at the clone, unless --memory is below 32 MiB or --cpu below 10 % of a core; --cpu, --cpus and --pids wait for go", () => {
    // Device rules are there from the start: they allow what Node opens.
    const devices = dockerDeviceRules();
    assert.deepEqual(cloneJoin(parse(["sh"]).limits), { create: { devices }, beforeGo: {} });
    assert.deepEqual(cloneJoin(parse(["--memory", "64", "--pids", "20", "--cpus", "0.5", "sh"]).limits), { create: { memory: 64 << 20, devices }, beforeGo: { pids: 20, cpu: { quota: 50_000, period: 100_000 } } });
    assert.deepEqual(cloneJoin(parse(["--cpu", "10", "sh"]).limits), { create: { devices }, beforeGo: { cpu: { quota: 10_000, period: 100_000 } } });
    for (const opt of [["--memory", "31"], ["--memory", "6m"], ["--cpu", "9"], ["--cpus", "0.05"]]) assert.equal(cloneJoin(parse([...opt, "sh"]).limits), undefined, opt.join(" "));
  });

  test("limits are parsed: --memory, --cpu/--cpus, --pids", () => {
    const cfg = parse(["--memory", "64", "--cpus", "0.5", "--pids", "20", "sh"]);
    assert.deepEqual(cfg.limits, { memory: 64 * 1024 * 1024, cpu: { quota: 50_000, period: 100_000 }, pids: 20, devices: dockerDeviceRules() });
    usageError(["--memory", "-5", "sh"], /--memory "-5"/);
  });

  test("--ipc, --uts and --pid: Docker's modes; a container to join must be running; refusals name the value", () => {
    assert.deepEqual(parse(["--ipc", "host", "--uts", "host", "sh"]).ipc, { mode: "host" });
    assert.equal(parse(["--uts", "host", "sh"]).utsHost, true);
    for (const mode of ["private", "shareable", "none"] as const) assert.deepEqual(parse(["--ipc", mode, "sh"]).ipc, { mode });
    usageError(["--ipc", "private:x", "sh"], /^--ipc private:x: unknown mode; use private, shareable, none, host or container:NAME$/);
    usageError(["--ipc", "container:nosuch", "sh"], /^--ipc container:nosuch: no running container has the name or id "nosuch"; see corerun ps$/);
    usageError(["--pid", "container:", "sh"], /^--pid container:: no running container has the name or id ""/);
    usageError(["--pid", "vm", "sh"], /^--pid vm: unknown mode; give host or container:NAME$/);
    usageError(["--uts", "private", "sh"], /^--uts private: unknown mode; give host$/);
    usageError(["--uts", "host", "--hostname", "web", "sh"], /^--hostname and --uts host exclude each other/);
    usageError(["--ipc", "shareable", "--print-script", "sh"], /^--print-script does not print --ipc shareable yet/);
  });

  test("--sysctl: a sysctl of a namespace of the container's own, as Docker takes it; a shared namespace's is refused", () => {
    assert.deepEqual(parse(["--sysctl", "net.core.somaxconn=1024", "--sysctl", "kernel/shmmax=1=2", "--network", "none", "sh"]).sysctls, [
      { key: "net.core.somaxconn", value: "1024", ns: "network" },
      { key: "kernel/shmmax", value: "1=2", ns: "ipc" },
    ]);
    assert.equal(parse(["--ipc", "none", "--sysctl", "fs.mqueue.msg_max=20", "sh"]).sysctls.length, 1, "--ipc none still has an IPC namespace of its own");
    usageError(["--network", "host", "--sysctl", "net.core.somaxconn=1", "sh"], /^--sysctl net\.core\.somaxconn=1: the container shares the host's namespace \(--network host\), whose setting this would change; drop one of them$/);
    usageError(["--ipc", "host", "--sysctl", "kernel.sem=1 2 3 4", "sh"], /^--sysctl kernel\.sem=1 2 3 4: the container shares the host's namespace \(--ipc host\)/);
    usageError(["--uts", "host", "--sysctl", "kernel.domainname=x", "sh"], /the container shares the host's namespace \(--uts host\)/);
    usageError(["--sysctl", "vm.swappiness=1", "sh"], /^--sysctl vm\.swappiness=1: vm\.swappiness is not a sysctl of a namespace the container can have of its own; it would be set for the whole host$/);
    usageError(["--sysctl", "kernel.hostname=x", "sh"], /kernel\.hostname is the hostname: give the hostname field \(config\.json\) or --hostname instead$/);
    usageError(["--sysctl", "net.core.somaxconn", "sh"], /^--sysctl net\.core\.somaxconn: give KEY=VALUE/);
    usageError(["--sysctl", "net/../kernel/x=1", "sh"], /is not a sysctl name/);
  });

  test("--domainname, --cidfile, --label: parsed and checked before anything exists", () => {
    const cfg = parse(["--domainname", "corp.example", "--cidfile", join(base, "new.cid"), "--label", "a=1", "--label", "b", "sh"]);
    assert.deepEqual([cfg.domainname, cfg.cidfile, cfg.labels], ["corp.example", join(base, "new.cid"), { a: "1", b: "" }]);
    usageError(["--uts", "host", "--domainname", "x", "sh"], /^--domainname and --uts host exclude each other/);
    usageError(["--cidfile", join(base, "data"), "sh"], /^--cidfile .*data: the file exists; remove it if no container it names is running, or give another path$/);
    usageError(["--cidfile", join(base, "x.cid"), "--print-script", "sh"], /^--print-script does not print --cidfile/);
    assert.equal(parse(["--cidfile", join(base, "data"), "sh"], { CORERUN_RESTART_ID: "0123456789ab" }).cidfile, undefined, "a restart has it already");
    // --env-file and --label-file are read once: a detached start takes what they held, a restart reads neither.
    const handoff = { CORERUN_OPTION_FILES: JSON.stringify({ env: ["A=1"], labels: { a: "1", b: "1" } }), CORERUN_REPORT_FD: "5" };
    const handed = parse(["--env-file", join(base, "gone.env"), "--label-file", join(base, "gone.labels"), "--label", "b=2", "-e", "CORERUN_OPTION_FILES", "sh"], handoff);
    assert.deepEqual([handed.env, handed.labels], [["A=1"], { a: "1", b: "2" }], "no -e KEY takes a handoff's value");
    usageError(["--env-file", join(base, "gone.env"), "sh"], /^--env-file .*gone\.env: cannot be read \(ENOENT\)/);
    assert.throws(() => parse(["--env-file", join(base, "gone.env"), "sh"], { CORERUN_OPTION_FILES: JSON.stringify({ env: ["B=1"], labels: {} }) }), /gone\.env: cannot be read/, "only a start under its monitor takes the handoff");
    assert.throws(() => parse(["sh"], { CORERUN_OPTION_FILES: "{", CORERUN_REPORT_FD: "5" }), /^UsageError: CORERUN_OPTION_FILES: not the contents of --env-file and --label-file/);
    const big = join(base, "big.env");
    writeFileSync(big, Array.from({ length: 2000 }, (_, i) => `VAR_${i}=${"x".repeat(80)}`).join("\n"));
    usageError(["-d", "--env-file", big, "sh"], /^--env-file, --label-file: \d+ KiB of variables and labels in all; a detached start takes up to 120 KiB of them$/);
    assert.equal(parse(["--env-file", big, "sh"]).env.length, 2000, "a foreground run hands nothing over");
    assert.deepEqual(parse(["--env-file", join(base, "gone.env"), "sh"], { CORERUN_RESTART_ID: "0123456789ab" }).env, []);
  });

  test("--log-driver and --log-opt: json-file's max-size and max-file (1 with max-size alone), none; only with a monitor (-d, -it)", () => {
    assert.deepEqual(parse(["-d", "--log-opt", "max-size=1m", "--log-opt", "max-file=3", "sh"]).log, { driver: "json-file", maxSize: 1 << 20, maxFile: 3 });
    assert.deepEqual(parse(["-d", "--log-opt", "max-size=64k", "sh"]).log, { driver: "json-file", maxSize: 64 << 10, maxFile: 1 });
    assert.deepEqual(parse(["-d", "--log-driver", "none", "sh"]).log, { driver: "none", maxSize: 0, maxFile: 0 });
    assert.equal(parse(["-d", "sh"]).log, undefined);
    usageError(["--log-opt", "max-size=1m", "sh"], /^--log-opt max-size=1m: a foreground run's output goes to this terminal; only a detached container \(-d, or run -it\) keeps a log$/);
    usageError(["-d", "--log-driver", "syslog", "sh"], /^--log-driver syslog: corerun keeps json-file logs, or none; syslog is not built$/);
    usageError(["-d", "--log-driver", "none", "--log-opt", "max-size=1m", "sh"], /^--log-opt max-size=1m: --log-driver none keeps no log; drop one of them$/);
    usageError(["-d", "--log-opt", "compress=true", "sh"], /^--log-opt compress=true: json-file takes max-size=SIZE and max-file=N$/);
    usageError(["-d", "--log-opt", "max-file=3", "sh"], /^--log-opt max-file=3: it needs max-size/);
    usageError(["-d", "--log-opt", "max-size=1m", "--log-opt", "max-file=0", "sh"], /^--log-opt max-file=0: give a number of files from 1 to 100$/);
    usageError(["-d", "--log-opt", "max-size=1k", "sh"], /^--log-opt max-size=1k: give at least 4k$/);
  });

  test("--group-add, --oom-score-adj, --stop-signal, --stop-timeout and --env-file are parsed and checked", () => {
    const cfg = parse(["--group-add", "wheel", "--group-add", "1234", "--oom-score-adj", "-500", "--stop-signal", "quit", "--stop-timeout", "-1", "sh"]);
    assert.deepEqual([cfg.groupAdd, cfg.oomScoreAdj, cfg.stopSignal, cfg.stopTimeout], [["wheel", "1234"], -500, 3, -1]);
    assert.equal(parse(["--stop-signal", "SIGUSR1", "sh"]).stopSignal, 10);
    assert.equal(parse(["--stop-signal", "9", "sh"]).stopSignal, 9);
    usageError(["--group-add", "a:b", "sh"], /^--group-add a:b: give a group name of the container's \/etc\/group or a gid/);
    usageError(["--oom-score-adj", "1001", "sh"], /^--oom-score-adj 1001: give a whole number from -1000 to 1000$/);
    usageError(["--oom-score-adj", "1.5", "sh"], /^--oom-score-adj 1\.5:/);
    usageError(["--stop-signal", "NOPE", "sh"], /^--stop-signal NOPE: not a signal; give a name such as SIGQUIT or SIGRTMIN\+3, or a number from 1 to 64$/);
    assert.equal(parse(["--stop-signal", "RTMIN+3", "sh"]).stopSignal, 37);
    usageError(["--stop-timeout", "2147484", "sh"], /at most 2147483/);
    usageError(["--stop-timeout", "1s", "sh"], /^--stop-timeout 1s: give the grace period in whole seconds \(at most 2147483\), or -1 to wait for good$/);
    const file = join(base, "vars.env");
    writeFileSync(file, "A=1\n# a comment\n\n  B=two words \nHOSTVAR\nUNSET\nC=\"q\"\n");
    assert.deepEqual(parse(["--env-file", file, "-e", "A=2", "sh"], { HOSTVAR: "h" }).env, ["A=1", "B=two words ", "HOSTVAR=h", "C=\"q\"", "A=2"]);
    usageError(["--env-file", join(base, "none.env"), "sh"], /^--env-file .*none\.env: cannot be read \(ENOENT\); give a file of KEY=VALUE lines$/);
  });

  test("--tmpfs and --shm-size: parsed; a path mounted twice, a size with no /dev/shm of its own, are refused", () => {
    const cfg = parse(["--tmpfs", "/run:size=1m", "--shm-size", "128m", "sh"]);
    assert.deepEqual(cfg.tmpfs.map((t) => t.target), ["/run"]);
    assert.equal(cfg.shmSize, 128 << 20);
    assert.equal(parse(["--shm-size", "1048576", "sh"]).shmSize, 1 << 20, "a plain number is bytes, as Docker reads it");
    usageError(["-v", `${join(base, "data")}:/run`, "--tmpfs", "/run", "sh"], /^\/run is the target of two mounts \(-v, --mount, --tmpfs\); give each path once$/);
    usageError(["--ipc", "none", "--shm-size", "1g", "sh"], /^--shm-size sizes a \/dev\/shm of the container's own, and with --ipc none it has none; drop one$/);
    usageError(["--shm-size", "lots", "sh"], /^--shm-size "lots" is not a size/);
  });

  test("the device cgroup: Docker's, with --device's nodes and --device-cgroup-rule's rules; none with --privileged (every device) or rootless (no cgroup)", () => {
    const cfg = parse(["--device", "/dev/null:/dev/mynull:r", "--device-cgroup-rule", "c 10:200 rwm", "sh"]);
    assert.deepEqual(cfg.devices, [{ source: "/dev/null", target: "/dev/mynull", type: "c", major: 1, minor: 3, permissions: "r" }]);
    assert.deepEqual(cfg.deviceCgroupRules, ["c 10:200 rwm"]);
    assert.deepEqual(cfg.limits.devices, dockerDeviceRules([parseDeviceCgroupRule("c 1:3 r"), parseDeviceCgroupRule("c 10:200 rwm")]));
    assert.equal(parse(["--privileged", "--device-cgroup-rule", "c 10:200 rwm", "sh"]).limits.devices, undefined);
    usageError(["--privileged", "--device-cgroup-rule", "c 10:200", "sh"], /^--device-cgroup-rule "c 10:200": give TYPE MAJOR:MINOR ACCESS/);
    usageError(["--cpu", "50", "--cpus", "0.5", "sh"], /give one of them/);
  });

  test("a missing command is refused", () => {
    usageError([], /^no command given; usage: corerun/);
    usageError(["--hostname", "box", "--"], /^no command given/);
  });

  test("a bad hostname is refused", () => {
    usageError(["--hostname", "bad_name", "sh"], /--hostname "bad_name"/);
    usageError(["--hostname", "x".repeat(65), "sh"], /the limit is 64/);
  });

  test("a hostname, env, workdir and --print-script are carried over", () => {
    const cfg = parse(["--hostname", "box", "-e", "A=1", "-e", "HOME", "-w", "/tmp", "--print-script", "sh"], { HOME: "/root" });
    assert.equal(cfg.hostname, "box");
    assert.deepEqual(cfg.env, ["A=1", "HOME=/root"]);
    assert.equal(cfg.workdir, "/tmp");
    assert.equal(cfg.printScript, true);
  });

  test("a relative --workdir is refused", () => {
    usageError(["-w", "tmp", "sh"], /--workdir "tmp" must be an absolute path/);
  });

  test("volumes are parsed, in order", () => {
    const data = join(base, "data");
    const cfg = parse(["-v", `${data}:/data:ro`, "--volume", `${data}:/srv/data`, "sh"]);
    assert.deepEqual(cfg.volumes, [
      { source: data, target: "/data", readonly: true, idmap: false },
      { source: data, target: "/srv/data", readonly: false, idmap: false },
    ]);
  });

  test("a bad volume is refused", () => {
    usageError(["-v", `${join(base, "nope")}:/data`, "sh"], /does not exist/);
    usageError(["-v", `${join(base, "data")}:data`, "sh"], /must be absolute/);
  });

  test("the command is looked up in the rootfs with the container's PATH", () => {
    assert.throws(() => parse(["serve"]), (e: unknown) => e instanceof CommandError && e.exitCode === 127);
    assert.deepEqual(parse(["-e", "PATH=/opt/app:/bin", "serve"]).command, ["serve"]);
    assert.deepEqual(parse(["/opt/app/serve", "--help"]).command, ["/opt/app/serve", "--help"]);
  });

  test("a rootfs that does not exist is refused", () => {
    const ctx = splitArgv(["--rootfs", join(base, "missing"), "sh"], { ...runArgs, ...COMMON_ARGS }, { tail: "command" });
    assert.throws(() => parseRunConfig(ctx, {}), { name: "UsageError", message: /no such directory/ });
  });

  test("-d and --rm are recorded; -d does not print a script", () => {
    const cfg = parse(["-d", "--rm", "sh"]);
    assert.equal(cfg.detach, true);
    assert.equal(cfg.rm, true);
    assert.throws(() => parse(["-d", "--print-script", "sh"]), { name: "UsageError", message: /--print-script prints a start in the foreground; drop -d/ });
  });

  test("--root wins over CORERUN_ROOT", () => {
    assert.equal(parse(["--root", join(base, "a"), "sh"], { CORERUN_ROOT: join(base, "b") }).root, join(base, "a"));
  });
});
