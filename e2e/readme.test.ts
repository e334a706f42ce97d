/**
 * The README's examples and its hand-composed script, run as written (minus `sudo`: the suite
 * already runs as root), so the documentation cannot drift from what the tools do.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BIN, busyboxRootfs, isRoot, leftoverState, pathThroughATool, processesWith, removeStateRoot, REPO, run, stateRoot, tool } from "./helpers.ts";
import { makeRootlessUser } from "./rootless-user.ts";
import { cgroupsNamed, corerunContainers, corerunWithRoot, hasSysResource, missing, removeWorkDir, startContainerd, startDockerd, stopContainerd, stopDaemon, workDir } from "./engines.ts";

/** The fenced block that follows `<!-- e2e:NAME -->` in README.md. */
export function readmeBlock(name: string): string {
  const text = readFileSync(join(REPO, "README.md"), "utf8");
  const match = new RegExp(`<!-- e2e:${name} -->\\n\`\`\`\\w*\\n([\\s\\S]*?)\`\`\``).exec(text);
  if (!match) throw new Error(`README.md has no block marked e2e:${name}`);
  return match[1]!;
}

let root = "";
let rootfs = "";

function bash(script: string, input?: string, extraEnv: Record<string, string> = {}) {
  const env = { ...process.env, CORERUN_ROOT: root, ...extraEnv };
  return run("bash", ["-euo", "pipefail", "-c", script.replace(/\bsudo /g, "")], { cwd: REPO, env, ...(input === undefined ? {} : { input }) });
}

describe("README", { skip: !isRoot && "needs root" }, () => {
  before(() => {
    rootfs = busyboxRootfs();
    root = stateRoot();
  });
  after(() => {
    try {
      assert.deepEqual(leftoverState(root), []);
    } finally {
      removeStateRoot(root);
    }
  });

  test("the first command's demo prints demo, 1 and the rootfs's directories", () => {
    const text = readFileSync(join(REPO, "README.md"), "utf8");
    const first = /```sh\n(sudo tools\/setup\.sh && (sudo bin\/corerun [^\n]*))\n```/.exec(text);
    assert.ok(first, "the README starts with the setup-and-demo command");
    const r = bash(first[2]!);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n"), ["demo", "1", ...readdirSync(rootfs).sort()]);
  });

  test("the second command runs the checks through Nx, and CI runs exactly it", () => {
    const text = readFileSync(join(REPO, "README.md"), "utf8");
    const second = /```sh\n(sudo tools\/setup\.sh && sudo npm test)\n```/.exec(text);
    assert.ok(second, "the README's second command is setup and npm test");
    const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { scripts: Record<string, string> };
    assert.equal(pkg.scripts.test, "nx run-many -t typecheck lint test && nx run e2e:e2e", "npm test runs typecheck, lint and test with nx run-many, then e2e:e2e");
    const ci = readFileSync(join(REPO, ".ci/run"), "utf8").split("\n");
    assert.ok(ci.includes(second[1]!.replaceAll("sudo ", "")), ".ci/run runs the README's command without sudo");
    // Every project has the targets the command runs, as Nx sees them: none escapes a check.
    const nx = (...args: string[]) => {
      const r = run("npx", ["nx", "show", "projects", "--json", ...args], { cwd: REPO, env: { ...process.env, NX_DAEMON: "false", NX_NO_CLOUD: "true" } });
      assert.equal(r.code, 0, r.stderr);
      return (JSON.parse(r.stdout) as string[]).sort();
    };
    const all = nx();
    assert.deepEqual(nx("--with-target", "typecheck"), all);
    assert.deepEqual(nx("--with-target", "lint"), all);
    assert.deepEqual(nx("--with-target", "e2e"), ["e2e"]);
    // A project with unit tests has a test target that runs them.
    const tested = nx("--with-target", "test");
    for (const p of all.filter((name) => name !== "e2e" && !tested.includes(name))) {
      const dir = existsSync(join(REPO, "libs", p)) ? join(REPO, "libs", p) : join(REPO, "bin/src", p);
      const tests = (readdirSync(dir, { recursive: true }) as string[]).filter((f) => f.endsWith(".test.ts"));
      assert.deepEqual(tests, [], `${p} has unit tests but no test target`);
    }
  });

  test("the corerun examples", () => {
    const r = bash(readmeBlock("examples"));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^demo\n1\n/);
    assert.match(r.stdout, /^hello$/m);
    assert.match(r.stdout, /^lo$/m);
    assert.match(r.stdout, /^hi from \/tmp$/m);
    assert.match(r.stdout, /^files 512$/m);
    assert.match(r.stdout, /^PID 1 is docker-init$/m);
    assert.match(r.stdout, /^0\n0 4242$/m, "the sysctl and the added group");
  });

  test("the exec and terminal examples: exec by name with -u, -w, its status, -i; a pty with -t", () => {
    const r = bash(readmeBlock("exec"));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.split("\n"), ["web", "65534", "/tmp", "status 3", "typed", "/dev/pts/0\r", ""]);
  });

  test("the stats example: one table with the container's memory limit", () => {
    const r = bash(readmeBlock("stats"));
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.match(lines[0]!, /^CONTAINER ID +NAME +CPU % +MEM USAGE \/ LIMIT +MEM % +NET I\/O +BLOCK I\/O +PIDS$/);
    assert.match(lines[1]!, /^[0-9a-f]{12} +db +\d+\.\d\d% +\S+ \/ 64MiB +\d+\.\d\d% +0B \/ 0B +\S+ \/ \S+ +1$/);
    assert.equal(lines.length, 2);
  });

  test("the limits example: --cpuset-cpus 0 with a memory reservation runs the command on CPU 0 alone", () => {
    const r = bash(readmeBlock("limits-more"));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "1\nCpus_allowed_list:\t0\n");
  });

  test("the network example: a published port, a peer by name, a shared network namespace", () => {
    const r = bash(readmeBlock("network"));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n"), ["hello from corerun", "hello from corerun", "hello from corerun"]);
  });

  test("a published port without a host port: a free one, shown by ps", () => {
    const r = bash(readmeBlock("publish-free"));
    assert.equal(r.code, 0, r.stderr);
    const [mapping, body] = r.stdout.trim().split("\n");
    assert.match(mapping!, /^0\.0\.0\.0:\d+->80\/tcp$/);
    assert.equal(body, "hello from corerun");
  });

  test("the trace example prints the critical path of a start", () => {
    const r = bash(readmeBlock("trace"));
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.match(lines[0]!, /^STEP\s+PROCESS\s+START MS\s+DURATION MS\s+SHARE %$/);
    const steps = lines.slice(1).map((l) => l.trim().split(/\s{2,}/)[0]!);
    for (const step of ["node start", "load bundle", "corerun run", "parse options", "container runs", "teardown"]) assert.ok(steps.includes(step), `${step}:\n${r.stdout}`);
    assert.ok(pathThroughATool(steps), `neither corerun-mount's pivot nor corerun-exec's wait for go:\n${r.stdout}`);
  });

  test("the user namespace examples", () => {
    const r = bash(readmeBlock("userns"));
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n").map((l) => l.trim().split(/\s+/).join(" "));
    assert.deepEqual(lines.slice(0, 3), ["0", "0 100000 65536", "0"]);
    assert.match(lines[3]!, /^0 \d+ 65536$/);
  });

  test("the security examples: the default filter, unconfined, no-new-privileges, SYS_ADMIN, --privileged", () => {
    const r = bash(readmeBlock("security"));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n").map((l) => l.replace(/\s+/g, " ")), ["Seccomp: 2", "refused", "allowed", "NoNewPrivs: 1", "mounted", "Seccomp: 0", "/dev/kmsg"]);
    assert.match(r.stderr, /unshare: unshare\(0x10000000\): Operation not permitted/);
  });

  test("the devices example: a node made for another device does not open; --device and --device-cgroup-rule let it", () => {
    const r = bash(readmeBlock("devices"));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "refused\nopened\nopened\n");
    assert.match(r.stderr, /head: \/dev\/fuse: Operation not permitted/);
  });

  test("the images example: import, a container on its own overlayfs, export, rm, import again", () => {
    const r = bash(readmeBlock("images"));
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.ok(lines.includes("Loaded image: busybox:latest"), r.stdout);
    assert.ok(lines.includes("written"));
    assert.ok(lines.includes("not in a second container"));
    const id = lines.find((l) => /^sha256:[0-9a-f]{64}$/.test(l));
    assert.ok(id && lines.includes(`Deleted: ${id}`), "the exported id is the one rm deleted");
    assert.match(r.stdout, /^busybox\s+latest\s+[0-9a-f]{12}\s/m);
    assert.equal(lines.filter((l) => l === "Loaded image: busybox:latest").length, 2, "the export comes back under its name");
    assert.ok(r.stdout.includes(id!.slice(7, 19)), "with the same id");
  });

  test("the images-caps example: a file capability through a user namespace's upper directory, commit, export and import, with and without --userns", () => {
    const r = bash(readmeBlock("images-caps"));
    assert.equal(r.code, 0, r.stderr);
    const ran = ["ls: /bin/busybox-net: No such file or directory", "CapEff: 0000000000002000"];
    assert.deepEqual(r.stdout.trim().split("\n").map((l) => l.replace(/\t/g, " ")), [...ran, ...ran]);
  });

  test("the images-userns example: the image's files are container root's through idmapped layers", () => {
    const r = bash(readmeBlock("images-userns"));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n"), ["0:0", "0", "0 65536"]);
  });

  test("the images-rootless example, run by a user other than root without subordinate ranges", () => {
    const user = makeRootlessUser("crrd");
    try {
      const r = user.bash(readmeBlock("images-rootless"));
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.stdout.trim().split("\n").map((l) => l.trim().split(/\s+/).join(" ")), ["0", `0 ${user.uid} 1`, "0", "overlay", "not in a second container"]);
      const state = join(user.base, "run/corerun");
      assert.deepEqual(readdirSync(state).filter((n) => /^[0-9a-f]{12}$/.test(n)), [], "no container is left");
      assert.deepEqual(readdirSync(join(state, "layers/sha256")), [], "image rm removed the layer");
    } finally {
      user.remove();
    }
  });

  test("the detached-rootless example, run by a user other than root", async () => {
    const user = makeRootlessUser("crrd");
    try {
      const r = user.bash(readmeBlock("detached-rootless"));
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.stdout.trim().split("\n"), ["box", "sh", "box", "box"]);
      const state = join(user.base, "run/corerun");
      assert.deepEqual(readdirSync(state).filter((n) => /^[0-9a-f]{12}$/.test(n)), [], "no container is left");
      // The monitor has exited; the host's init reaps it when it will.
      for (let i = 0; i < 100 && run("pgrep", ["-u", user.name]).code === 0; i++) await new Promise((r) => setTimeout(r, 100));
      assert.notEqual(run("pgrep", ["-u", user.name]).code, 0, "a process of the user is left");
    } finally {
      user.remove();
    }
  });

  test("the corerun-ns examples", () => {
    const r = bash(readmeBlock("corerun-ns"));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^pid 1\n lo\n/);
    assert.match(r.stdout, /^inside\n1$/m);
  });

  test("the corerun-exec example", () => {
    const r = bash(readmeBlock("corerun-exec"));
    assert.equal(r.code, 0, r.stderr);
    const [name, a, count] = r.stdout.trim().split("\n");
    assert.equal(name, "demo");
    assert.equal(a, "1");
    assert.ok(Number(count) <= 4, `the new /proc shows ${count} processes`);
  });

  test("the corerun-exec seccomp example: a program compiled by corerun seccomp, loaded last", () => {
    const r = bash(readmeBlock("corerun-exec-seccomp"));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n").map((l) => l.replace(/\s+/g, " ")), ["NoNewPrivs: 1", "Seccomp: 2"]);
  });

  test("the hand-composed script builds the same container as corerun", () => {
    const r = bash(readmeBlock("hand-script"));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n"), ["demo", "1", ...readdirSync(rootfs).sort()]);
  });

  test("a tool started before its arguments are known reads them from CORERUN_ARGV_FD", () => {
    const r = bash(readmeBlock("argv-fd"));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n"), ["early", "1", ...readdirSync(rootfs).sort()]);
  });

  test("--print-script prints a script that does what corerun does", () => {
    const args = ["--rootfs", rootfs, "--hostname", "printed", "-e", "X=it's", "/bin/sh", "-c", "hostname; echo $$ \"$X\""];
    const script = tool("corerun", ["--root", root, "--print-script", ...args]);
    assert.equal(script.code, 0, script.stderr);
    const direct = tool("corerun", ["--root", root, ...args]);
    const scripted = run("bash", ["-c", script.stdout]);
    assert.equal(scripted.code, 0, scripted.stderr);
    assert.equal(scripted.stdout, direct.stdout);
    assert.equal(direct.stdout, "printed\n1 it's\n");
  });

  test("after kill -9 of corerun, ps shows the container orphaned and cleanup removes it", async () => {
    const marker = `sleep 3${Math.floor(Math.random() * 1000)}`;
    const child = spawn(join(REPO, "bin/corerun"), ["--root", root, "/bin/sh", "-c", `echo started; ${marker}`], { stdio: ["ignore", "pipe", "pipe"] });
    await new Promise((resolve) => child.stdout.once("data", resolve));
    child.kill("SIGKILL");
    await new Promise((resolve) => child.once("exit", resolve));
    assert.equal(leftoverState(root).length, 1);
    assert.equal(processesWith(marker).length, 1, "the container outlives a killed corerun");
    const r = bash(readmeBlock("cleanup"));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /orphaned/);
    assert.match(r.stdout, /^[0-9a-f]{12}$/m);
    assert.deepEqual(leftoverState(root), []);
    for (let i = 0; i < 50 && processesWith(marker).length; i++) await new Promise((res) => setTimeout(res, 20));
    assert.deepEqual(processesWith(marker), []);
  });

  test("the detached example: run -d, ps, logs -f until stop, ps -a with the exit code, inspect, rm", () => {
    const r = bash(readmeBlock("detached"));
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.match(lines[1]!, /^[0-9a-f]{12}\s+web\s+running\s/);
    assert.deepEqual(lines.slice(2, 5), ["hello", "bye", "web"], "logs -f prints the output up to the exit; stop prints the name");
    assert.match(lines[6]!, /^[0-9a-f]{12}\s+web\s+exited \(0\)\s/);
    assert.match(lines[7]!, /"ExitCode": 0,/);
    assert.match(lines[8]!, /"LogPath": ".*\/container\.log"/);
    assert.equal(lines[9], "web");
    assert.deepEqual(leftoverState(root), []);
  });

  test("the wait example: wait for a run's end and its status, restart, wait again", () => {
    const r = bash(readmeBlock("wait"));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "3\njob\n3\njob\n");
    assert.deepEqual(leftoverState(root), []);
  });

  test("the attach example: run -it detached with ctrl-p ctrl-q, attach again until the exit, logs, ps -a, rm", () => {
    const r = bash(readmeBlock("attach"));
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.match(lines[1]!, /^[0-9a-f]{12}\s+box\s+running\s/, "detached: box runs on");
    assert.equal(lines[2], "attach: status 3", "the second attach ends with the container's status");
    assert.equal(lines[3], "one");
    assert.match(lines[5]!, /^[0-9a-f]{12}\s+box\s+exited \(3\)\s/);
    assert.equal(lines[6], "box");
    assert.deepEqual(leftoverState(root), []);
  });

  test("the start example: an exited container runs again, start -a ends with its status, one log for every run", () => {
    const r = bash(readmeBlock("start"));
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.match(lines[0]!, /^[0-9a-f]{12}$/);
    assert.deepEqual(lines.slice(1), ["run", "status 3", "job", "run", "run", "run", "job"]);
    assert.deepEqual(leftoverState(root), []);
  });

  test("the restart example: on-failure:2 runs the command three times, then it stays exited", () => {
    const r = bash(readmeBlock("restart"));
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n").map((l) => l.trim());
    assert.match(lines[0]!, /^[0-9a-f]{12}$/);
    assert.deepEqual(lines.slice(1, 4), ["try", "try", "try"]);
    assert.deepEqual(lines.slice(4), ['"ExitCode": 3,', '"RestartCount": 2,', "flaky"]);
    assert.deepEqual(leftoverState(root), []);
  });

  test("the OCI runtime example: create, state, start, exec, delete of a bundle from runc spec", (t) => {
    if (missing(["runc"])) return t.skip("runc is not installed (tools/setup.sh installs it with containerd)");
    const r = bash(readmeBlock("oci"));
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n").map((l) => l.trim());
    assert.equal(lines[0], '"status": "created",');
    assert.deepEqual(lines.slice(1, 3).sort(), ["demo", "hello from demo"]);
    assert.equal(lines[3], '"status": "stopped",');
    assert.equal(lines.length, 4);
  });

  test("the containerd config: the CRI plugin loads it, with corerun as a runtime's BinaryName", async (t) => {
    const absent = missing(["containerd", "ctr"]);
    if (absent) return t.skip(`${absent} is not installed (tools/setup.sh installs it)`);
    const block = readmeBlock("containerd");
    assert.match(block, /^version = 2\n/, "the snippet is a version 2 config");
    const corerun = join(BIN, "corerun");
    // The test's containerd writes its own `version = 2` header with a private root, state and sockets.
    const snippet = block.replace(/^version = 2\n/, "").replaceAll('"/usr/local/bin/corerun"', JSON.stringify(corerun));
    const dir = workDir();
    try {
      const c = await startContainerd(dir, snippet, true);
      try {
        const cri = c.ctr(["plugins", "ls"]).stdout.split("\n").find((l) => /\bio\.containerd\.grpc\.v1\s+cri\b/.test(l));
        assert.match(cri ?? "", /\sok\s*$/, `the CRI plugin did not load the config:\n${readFileSync(c.log, "utf8").split("\n").filter((l) => /level=(error|warning).*cri/.test(l)).join("\n")}`);
        const dump = run("containerd", ["--config", c.config, "config", "dump"]);
        assert.equal(dump.code, 0, dump.stderr);
        const runtime = /\[plugins\."io\.containerd\.grpc\.v1\.cri"\.containerd\.runtimes\.corerun\.options\]\n([^[]*)/.exec(dump.stdout)?.[1] ?? "";
        assert.match(runtime, new RegExp(`BinaryName = "${corerun}"`));
        assert.match(runtime, /SystemdCgroup = false/);
      } finally {
        await stopContainerd(c);
      }
    } finally {
      removeWorkDir(dir);
    }
  });

  test("the RuntimeClass's handler is the runtime named in the containerd config", () => {
    const handler = /^handler: (\S+)$/m.exec(readmeBlock("runtimeclass"))?.[1];
    assert.ok(handler);
    assert.match(readmeBlock("containerd"), new RegExp(`\\.runtimes\\.${handler}\\.options\\]`));
    assert.match(readmeBlock("runtimeclass"), new RegExp(`runtimeClassName: ${handler}$`, "m"));
  });

  test("the containers.conf drop-in makes corerun podman's runtime", (t) => {
    const absent = missing(["podman", "conmon"]);
    if (absent) return t.skip(`${absent} is not installed (tools/setup.sh installs it)`);
    const dir = workDir();
    try {
      // corerun with a private state root in place of /usr/local/bin/corerun; where the bounding
      // set lacks CAP_SYS_RESOURCE, the ulimits the README gives for such hosts.
      const state = join(dir, "corerun-state");
      const runtime = corerunWithRoot(dir, state);
      let conf = readmeBlock("podman-conf").replaceAll('"/usr/local/bin/corerun"', JSON.stringify(runtime.path));
      assert.notEqual(conf, readmeBlock("podman-conf"), "the snippet names /usr/local/bin/corerun");
      if (!hasSysResource()) conf = `[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=20000:20000"]\n\n${conf}`;
      const file = join(dir, "containers.conf");
      writeFileSync(file, conf);
      // The block's own temporary rootfs is named after it, so that what it leaves can be checked.
      const r = bash(`${readmeBlock("podman")}\necho "rootfs $rootfs"`, undefined, { CONTAINERS_CONF: file });
      assert.equal(r.code, 0, r.stderr);
      const [hello, made] = r.stdout.trim().split("\n");
      const id = /^hello from ([0-9a-f]{12})$/.exec(hello ?? "")?.[1];
      assert.ok(id, r.stdout);
      const rootfs = /^rootfs (\/.+)$/.exec(made ?? "")?.[1];
      assert.ok(rootfs, r.stdout);
      assert.ok(!existsSync(rootfs) && !existsSync(`${rootfs}.tree`), `the block removes ${rootfs} and the tree recorded beside it`);
      assert.match(readFileSync(runtime.calls, "utf8"), /^create --bundle /m, "podman ran corerun");
      assert.deepEqual(corerunContainers(state), []);
      assert.deepEqual(cgroupsNamed(id), []);
    } finally {
      removeWorkDir(dir);
    }
  });

  test("the daemon.json makes corerun a Docker runtime", async (t) => {
    const absent = missing(["dockerd", "docker", "containerd", "ctr"]);
    if (absent) return t.skip(`${absent} is not installed: Docker's engine is not tested on this machine`);
    const dir = workDir();
    try {
      const file = join(dir, "daemon.json");
      writeFileSync(file, readmeBlock("docker").replaceAll('"/usr/local/bin/corerun"', JSON.stringify(join(BIN, "corerun"))));
      const c = await startContainerd(dir);
      try {
        const d = await startDockerd(dir, c, ["--config-file", file]);
        if (typeof d === "string") return t.skip(d);
        try {
          const tar = join(dir, "rootfs.tar");
          assert.equal(run("tar", ["-C", rootfs, "-cf", tar, "."]).code, 0);
          assert.equal(d.docker(["import", tar, "corerun-readme:busybox"]).code, 0);
          const r = d.docker(["run", "--rm", "--runtime", "corerun", "--network", "none", "corerun-readme:busybox", "/bin/echo", "hello from corerun"]);
          assert.equal(r.code, 0, r.stderr);
          assert.equal(r.stdout, "hello from corerun\n");
        } finally {
          await stopDaemon(d);
        }
      } finally {
        await stopContainerd(c);
      }
    } finally {
      removeWorkDir(dir);
    }
  });

  for (const name of ["corerun", "corerun start", "corerun image", "corerun image import", "corerun commit", "corerun trace summary", "corerun-ns", "corerun-mount", "corerun-exec", "corerun-cgroup", "corerun-net"]) {
    test(`${name} --help`, () => {
      const [bin, ...sub] = name.split(" ");
      const r = tool(bin!, [...sub, "--help"]);
      assert.equal(r.code, 0);
      assert.match(r.stdout, new RegExp(`^Usage: ${name} `));
      assert.match(r.stdout, /Options:/);
    });
  }
});
