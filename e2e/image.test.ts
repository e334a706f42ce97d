/**
 * Images end to end: import of an OCI layout, an oci-archive, a docker-archive and a rootfs
 * tarball made offline from the busybox rootfs; containers on their own overlayfs; commit,
 * export and import again; refusals that leave the store as it was. After every test no overlay
 * mount, upper directory or state directory of a container is left.
 */
import { after, afterEach, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { gzipSync } from "node:zlib";
import { busyboxRootfs, hostMountsUnder, isRoot, leftoverState, removeStateRoot, run, stateRoot, tool, until, BIN, type Result } from "./helpers.ts";
import { blob, cappedLayer, makeFixtures, sha256, tarOf, writeOci, type Fixtures } from "./image-fixtures.ts";
import { setTimeout as delay } from "node:timers/promises";
import { ephemeralRange } from "@corerun/net";

let f: Fixtures;
let root = "";

function corerun(args: string[], r = root): Result {
  return tool("corerun", withRoot(args, r));
}

/** `--root` goes after the subcommand words (`image ls --root R`, `run --root R …`). */
function withRoot(args: string[], r: string): string[] {
  const words = args[0] === "image" ? 2 : ["commit", "run", "cleanup", "kill", "ps", "start", "rm", "logs"].includes(args[0]!) ? 1 : 0;
  return [...args.slice(0, words), "--root", r, ...args.slice(words)];
}

/** Everything in the store, with sizes and modes: a store that did not change lists the same. */
function storeListing(r = root): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    const abs = join(r, rel);
    if (!existsSync(abs)) return;
    for (const n of readdirSync(abs).sort()) {
      const st = lstatSync(join(abs, n));
      out.push(`${rel}/${n} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.isDirectory() ? "" : st.size} ${st.mtimeMs}`);
      if (st.isDirectory()) walk(`${rel}/${n}`);
    }
  };
  walk("images");
  walk("layers");
  return out;
}

function assertClean(): void {
  assert.deepEqual(leftoverState(root), [], "a container's state directory is left");
  assert.deepEqual(hostMountsUnder(root), [], "an overlay mount or an idmapped layer is left on the host");
}

/** Ends a container started in the background (its PID 1 ignores SIGINT) and waits for its corerun. */
async function stop(child: ChildProcess, name: string, r: string): Promise<void> {
  const exited = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.on("exit", resolve));
  tool("corerun", ["kill", "--root", r, name]);
  await exited;
}

/** A fresh state root with the fixture imported from the OCI layout. */
function withImage(): string {
  const r = stateRoot();
  const imp = corerun(["image", "import", f.oci], r);
  assert.equal(imp.code, 0, imp.stderr);
  return r;
}

describe("corerun image", { skip: !isRoot && "needs root" }, () => {
  before(async () => {
    f = await makeFixtures();
    root = stateRoot();
  });
  afterEach(() => assertClean());
  after(() => {
    try {
      removeStateRoot(root);
    } finally {
      f.remove();
    }
  });

  test("imports an OCI layout, an oci-archive, a docker-archive and a rootfs tarball; layers are stored once", () => {
    for (const [input, out] of [[f.oci, "Loaded image: fixture:oci"], [f.ociArchive, "Loaded image: fixture:oci"], [f.dockerArchive, "Loaded image: fixture:docker"]] as const) {
      const r = corerun(["image", "import", input]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^${out}$`, "m"));
    }
    const rootfs = corerun(["image", "import", "--name", "mini:1", f.rootfsTar]);
    assert.equal(rootfs.code, 0, rootfs.stderr);
    assert.match(rootfs.stdout, /^layer 1\/1 [0-9a-f]{12}: already in the store\nLoaded image: mini:1\n$/);
    const ls = corerun(["image", "ls", "--json"]);
    assert.equal(ls.code, 0, ls.stderr);
    const images = JSON.parse(ls.stdout) as { id: string; tags: string[]; layers: number }[];
    const fixture = images.find((i) => i.tags.includes("fixture:oci"));
    assert.equal(fixture?.id, f.configDigest, "the image id is the config's digest");
    assert.deepEqual(fixture?.tags.sort(), ["fixture:docker", "fixture:oci"], "the docker-archive is the same image");
    assert.equal(images.find((i) => i.tags.includes("mini:1"))?.layers, 1);
    // Two diff ids in all: the rootfs tarball is the fixture's first layer.
    assert.deepEqual(readdirSync(join(root, "layers/sha256")).sort(), f.diffIds.map((d) => d.slice(7)).sort());
    const table = corerun(["image", "ls"]);
    assert.match(table.stdout, /^fixture\s+oci\s+[0-9a-f]{12}\s/m);
    const inspect = corerun(["image", "inspect", "fixture:oci"]);
    assert.equal(inspect.code, 0, inspect.stderr);
    const [info] = JSON.parse(inspect.stdout) as { Id: string; Config: { Entrypoint: string[] }; RootFS: { Layers: string[] } }[];
    assert.equal(info?.Id, f.configDigest);
    assert.deepEqual(info?.Config.Entrypoint, ["/bin/sh", "-c"]);
    assert.deepEqual(info?.RootFS.Layers, f.diffIds);
  });

  test("a zstd layer (through the zstd program) on top of a plain one", () => {
    const r = stateRoot();
    const dir = join(f.dir, "zstd");
    try {
      const plain = readFileSync(f.layers[0]!.path);
      const second = execFileSync("gzip", ["-dc", f.layers[1]!.path]);
      const zst = execFileSync("zstd", ["-q", "-c"], { input: second });
      writeOci(dir, [{ data: plain }, { data: zst, mediaType: "application/vnd.oci.image.layer.v1.tar+zstd", diffId: f.diffIds[1] }], { Cmd: ["/bin/cat", "/etc/added"] }, "zstd:1");
      const i = corerun(["image", "import", dir], r);
      assert.equal(i.code, 0, i.stderr);
      const c = corerun(["run", "--network", "none", "zstd:1"], r);
      assert.equal(c.code, 0, c.stderr);
      assert.equal(c.stdout, "added by layer 2\n");
    } finally {
      rmSync(dir, { recursive: true, force: true });
      removeStateRoot(r);
    }
  });

  test("a container sees the merged tree: the whiteout hides a file, the opaque directory its old content", () => {
    const r = corerun(["run", "--network", "none", "-u", "0", "--entrypoint", "/bin/sh", "fixture:oci", "-c",
      "ls /etc/doomed 2>&1 || true; ls /data; cat /etc/added; ls /bin/busybox"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n"), ["ls: /etc/doomed: No such file or directory", "new", "added by layer 2", "/bin/busybox"]);
  });

  test("Entrypoint, Cmd, Env, WorkingDir, User, StopSignal and Labels come from the config; flags override them as in Docker", async () => {
    const dflt = corerun(["run", "--network", "none", "fixture:oci"]);
    assert.equal(dflt.code, 0, dflt.stderr);
    assert.equal(dflt.stdout, "from-the-image in /data as 1000:1000\n");
    // Words after the image replace Cmd and keep Entrypoint (sh -c).
    const cmd = corerun(["run", "--network", "none", "-e", "GREETING=flag", "-w", "/tmp", "-u", "0:0", "fixture:docker", "echo $GREETING $(pwd) $(id -u) $HOME"]);
    assert.equal(cmd.code, 0, cmd.stderr);
    assert.equal(cmd.stdout, "flag /tmp 0 /root\n");
    // --entrypoint replaces Entrypoint and drops Cmd.
    const ep = corerun(["run", "--network", "none", "--entrypoint", "/bin/echo", "fixture:oci"]);
    assert.equal(ep.code, 0, ep.stderr);
    assert.equal(ep.stdout, "\n");
    const user = corerun(["run", "--network", "none", "-u", "nobody", "fixture:oci", "id -un; id -u; echo $HOME"]);
    assert.equal(user.code, 0, user.stderr);
    assert.equal(user.stdout, "nobody\n65534\n/nonexistent\n");
    const bad = corerun(["run", "--network", "none", "-u", "ghost", "fixture:oci"]);
    assert.equal(bad.code, 125);
    assert.match(bad.stderr, /--user ghost: no user "ghost" in the container's \/etc\/passwd/);
    // StopSignal is what corerun stop sends first: sh as PID 1 has no default action for SIGQUIT,
    // so only its trap ends it with 3 (SIGTERM would not reach it: its status would be 137).
    const quit = corerun(["run", "-d", "--network", "none", "--label", "tier=container", "fixture:oci", 'trap "exit 3" QUIT; while :; do sleep 0.1; done']);
    assert.equal(quit.code, 0, quit.stderr);
    const id = quit.stdout.trim();
    try {
      const config = (JSON.parse(corerun(["inspect", id]).stdout) as { Config: { StopSignal?: string; Labels: Record<string, string> } }[])[0]!.Config;
      assert.equal(config.StopSignal, "SIGQUIT");
      assert.deepEqual(config.Labels, { "org.opencontainers.image.title": "fixture", tier: "container" }, "the image's Labels, under --label's");
      await until("the trap to be set", () => /sleep/.test(corerun(["ps", id]).stdout));
      assert.equal(corerun(["stop", "-t", "5", id]).code, 0);
      assert.match(corerun(["ps", "-a"]).stdout, new RegExp(`^${id} .*exited \\(3\\)`, "m"));
    } finally {
      corerun(["rm", "-f", id]);
    }
  });

  test("--publish-all publishes the ExposedPorts on free host ports, -P CONTAINER_PORT one; corerun ps shows them; no two containers share one", async () => {
    const r = withImage();
    const [lo, hi] = ephemeralRange();
    const serve = (text: string) => ["-u", "0", "--entrypoint", "/bin/sh", "fixture:oci", "-c", `echo ${text} > /data/index.html; exec httpd -f -p 8080 -h /data`];
    const all = spawn(join(BIN, "corerun"), withRoot(["run", "--name", "pub-all", "--publish-all", ...serve("all")], r), { stdio: "ignore" });
    const one = spawn(join(BIN, "corerun"), withRoot(["run", "--name", "pub-one", "-P", "8080", ...serve("one")], r), { stdio: "ignore" });
    try {
      const shown = new Map<string, string>();
      for (let i = 0; i < 100 && shown.size < 2; i++) {
        await delay(100);
        for (const line of corerun(["ps"], r).stdout.split("\n").slice(1)) {
          const [, name, status, , , ...rest] = line.trim().split(/\s+/);
          if (status === "running" && rest.join(" ").includes("->8080")) shown.set(name!, rest.join(" "));
        }
      }
      const ports = (name: string) => [...(shown.get(name) ?? "").matchAll(/0\.0\.0\.0:(\d+)->(\d+\/\w+)/g)].map((m) => [Number(m[1]), m[2]] as const);
      assert.deepEqual(ports("pub-all").map(([, c]) => c), ["8080/tcp", "9090/udp"], shown.get("pub-all"));
      assert.deepEqual(ports("pub-one").map(([, c]) => c), ["8080/tcp"], shown.get("pub-one"));
      const hostPorts = [...ports("pub-all"), ...ports("pub-one")].map(([h]) => h);
      for (const h of hostPorts) assert.ok(h >= lo && h <= hi, `${h} is not in the ephemeral range ${lo}-${hi}`);
      assert.notEqual(ports("pub-all")[0]![0], ports("pub-one")[0]![0]);
      for (const [name, text] of [["pub-all", "all"], ["pub-one", "one"]]) {
        let body = "";
        for (let i = 0; i < 50 && body !== `${text}\n`; i++) {
          body = await fetch(`http://127.0.0.1:${ports(name!)[0]![0]}/index.html`).then((res) => res.text(), () => "");
          if (body !== `${text}\n`) await delay(100);
        }
        assert.equal(body, `${text}\n`, `${name} answers on its host port`);
      }
    } finally {
      await stop(all, "pub-all", r);
      await stop(one, "pub-one", r);
      assert.deepEqual(leftoverState(r), []);
      removeStateRoot(r);
    }
  });

  test("--print-script of an image container: the script mounts its overlayfs and prints what corerun prints", () => {
    const script = corerun(["run", "--print-script", "--network", "none", "fixture:oci"]);
    assert.equal(script.code, 0, script.stderr);
    assert.match(script.stdout, /mount -t overlay overlay -o lowerdir=/);
    const scripted = run("bash", ["-c", script.stdout]);
    assert.equal(scripted.code, 0, scripted.stderr);
    assert.equal(scripted.stdout, corerun(["run", "--network", "none", "fixture:oci"]).stdout);
    assert.equal(scripted.stdout, "from-the-image in /data as 1000:1000\n");
    const userns = corerun(["run", "--print-script", "--userns", "auto", "fixture:oci"]);
    assert.equal(userns.code, 125);
    assert.match(userns.stderr, /^corerun: --print-script: image fixture:oci in a user namespace needs idmapped layers \(mount_setattr\), which no shell tool makes; leave out --print-script, or --userns\/--uidmap\n$/);
  });

  test("in a user namespace the layers are idmapped: container root owns the image's files and its writes", () => {
    const script = "id -u; stat -c %u /bin/busybox /data; touch /data/mine && stat -c %u /data/mine; cat /proc/self/uid_map";
    const r = corerun(["run", "--network", "none", "--uidmap", "0:200000:65536", "-u", "0", "--entrypoint", "/bin/sh", "fixture:oci", "-c", script]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n").map((l) => l.trim().split(/\s+/).join(" ")), ["0", "0", "0", "0", "0 200000 65536"]);
    const auto = corerun(["run", "--network", "none", "--userns", "auto", "fixture:oci"]);
    assert.equal(auto.code, 0, auto.stderr);
    assert.equal(auto.stdout, "from-the-image in /data as 1000:1000\n");
    // --userns auto: the store's files (host root's) show as container root's through the idmapped lowers.
    const owners = corerun(["run", "--network", "none", "--userns", "auto", "-u", "0", "--entrypoint", "/bin/sh", "fixture:oci", "-c", "stat -c %u:%g /bin/busybox /etc/added; awk '{print $1}' /proc/self/uid_map"]);
    assert.equal(owners.code, 0, owners.stderr);
    assert.deepEqual(owners.stdout.trim().split("\n"), ["0:0", "0:0", "0"]);
  });

  test("--read-only: no upper directory, writes refused, the mount points in a layer of the container's own", async () => {
    const name = `ro-${process.pid}`;
    const child = spawn(join(BIN, "corerun"), withRoot(["run", "--network", "none", "--read-only", "--name", name, "-u", "0", "--entrypoint", "/bin/sh", "fixture:oci", "-c",
      "touch /data/x 2>&1; cat /etc/hostname; echo up; sleep 30"], root), { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    const deadline = Date.now() + 20_000;
    while (!out.includes("up")) {
      assert.ok(Date.now() < deadline && child.exitCode === null, `the container did not start: ${out}`);
      await new Promise((res) => setTimeout(res, 50));
    }
    const [id] = leftoverState(root);
    assert.deepEqual(["init", "rootfs", "upper", "work"].filter((d) => existsSync(join(root, id!, d))), ["init", "rootfs"]);
    await stop(child, name, root);
    assert.match(out, /^touch: \/data\/x: Read-only file system\n[0-9a-f]{12}\nup\n$/);
    // A --rootfs container's --read-only is its / remounted read-only (see e2e/interactive.test.ts).
    const rootfs = corerun(["run", "--network", "none", "--read-only", "--rootfs", busyboxRootfs(), "/bin/sh", "-c", "touch /x 2>&1"]);
    assert.notEqual(rootfs.code, 0);
    assert.match(rootfs.stdout, /^touch: \/x: Read-only file system$/m);
  });

  test("two containers of one image write without seeing each other's writes; the store is unchanged", async () => {
    const before_ = storeListing();
    const script = (name: string) => `echo ${name} > /data/mine; echo ${name} >> /etc/added; sleep 1; cat /data/mine /etc/added; ls /data`;
    const start = (name: string) => new Promise<Result>((resolve) => {
      const child = spawn(join(BIN, "corerun"), withRoot(["run", "--network", "none", "-u", "0", "--entrypoint", "/bin/sh", "fixture:oci", "-c", script(name)], root), { stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d) => (stdout += d));
      child.stderr.on("data", (d) => (stderr += d));
      child.on("exit", (code, signal) => resolve({ code, signal, stdout, stderr }));
    });
    const [a, b] = await Promise.all([start("a"), start("b")]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    assert.deepEqual(a.stdout.trim().split("\n"), ["a", "added by layer 2", "a", "mine", "new"]);
    assert.deepEqual(b.stdout.trim().split("\n"), ["b", "added by layer 2", "b", "mine", "new"]);
    assert.deepEqual(storeListing(), before_);
    assertClean();
  });

  test("after kill -9 of corerun, cleanup removes the image container's overlayfs and idmapped layers", async () => {
    const child = spawn(join(BIN, "corerun"), withRoot(["run", "--network", "none", "--userns", "auto", "--entrypoint", "/bin/sh", "fixture:oci", "-c", "echo up; sleep 60"], root), { stdio: ["ignore", "pipe", "ignore"] });
    await new Promise((resolve) => child.stdout.once("data", resolve));
    child.kill("SIGKILL");
    await new Promise((resolve) => child.once("exit", resolve));
    assert.equal(leftoverState(root).length, 1);
    assert.ok(hostMountsUnder(root).length >= 3, "the overlayfs and its two idmapped layers are mounted");
    const c = corerun(["cleanup"]);
    assert.equal(c.code, 0, c.stderr);
    assertClean();
  });

  test("commit, export and import again: the round trip keeps the container's writes and deletions", async () => {
    const name = `commit-${process.pid}`;
    const child = spawn(join(BIN, "corerun"), withRoot(["run", "--network", "none", "--name", name, "-u", "0", "--entrypoint", "/bin/sh", "fixture:oci", "-c",
      "echo kept > /data/kept; rm /etc/added; rm -rf /usr; mkdir /usr; echo only > /usr/only; touch /ready; sleep 30"], root), { stdio: "ignore" });
    try {
      const deadline = Date.now() + 20_000;
      // The container's upper directory shows when it is ready.
      while (!readdirSync(root).some((d) => /^[0-9a-f]{12}$/.test(d) && existsSync(join(root, d, "upper/ready")))) {
        assert.ok(Date.now() < deadline, "the container did not start");
        execFileSync("sleep", ["0.1"]);
      }
      const c = corerun(["commit", name, "snap:1"]);
      assert.equal(c.code, 0, c.stderr);
      assert.match(c.stdout, /^sha256:[0-9a-f]{64}\n$/);
    } finally {
      await stop(child, name, root);
    }
    const file = join(f.dir, "snap.tar");
    const e = corerun(["image", "export", "snap:1", file]);
    assert.equal(e.code, 0, e.stderr);
    const other = stateRoot();
    try {
      const i = corerun(["image", "import", file], other);
      assert.equal(i.code, 0, i.stderr);
      assert.match(i.stdout, /^Loaded image: snap:1\n$/m);
      // The new layer carries the deletion as a whiteout and the replaced /usr as an opaque directory.
      const snap = (JSON.parse(corerun(["image", "inspect", "snap:1"], other).stdout) as { LayerDirs: string[] }[])[0]!.LayerDirs;
      const entries = execFileSync("tar", ["-tzf", join(dirname(snap[2]!), "blob")], { encoding: "utf8" }).split("\n");
      for (const e of ["etc/.wh.added", "usr/.wh..wh..opq", "usr/only", "data/kept"]) assert.ok(entries.includes(e), `${e} in ${entries.join(" ")}`);
      const r = corerun(["run", "--network", "none", "-u", "0", "--entrypoint", "/bin/sh", "snap:1", "-c", "cat /data/kept; ls /etc/added 2>&1 || true; ls /usr; ls /data"], other);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.stdout.trim().split("\n"), ["kept", "ls: /etc/added: No such file or directory", "only", "kept", "new"]);
      // The exported image keeps its id, and its config its defaults.
      const ids = [root, other].map((x) => (JSON.parse(corerun(["image", "inspect", "snap:1"], x).stdout) as { Id: string }[])[0]!.Id);
      assert.equal(ids[0], ids[1]);
      if (existsSync("/usr/bin/skopeo")) {
        const s = run("skopeo", ["inspect", "--raw", `oci-archive:${file}`]);
        assert.equal(s.code, 0, `skopeo reads the export: ${s.stderr}`);
        assert.equal((JSON.parse(s.stdout) as { layers: unknown[] }).layers.length, 3);
      }
    } finally {
      removeStateRoot(other);
    }
  });

  test("image rm: refused while a container uses the image; a tag goes, then the image and its layers", async () => {
    const r = withImage();
    const name = `rm-${process.pid}`;
    try {
      const child = spawn(join(BIN, "corerun"), withRoot(["run", "--network", "none", "--name", name, "--entrypoint", "/bin/sleep", "fixture:oci", "30"], r), { stdio: "ignore" });
      try {
        const deadline = Date.now() + 20_000;
        while (!readdirSync(r).some((d) => /^[0-9a-f]{12}$/.test(d) && existsSync(join(r, d, "upper")))) {
          assert.ok(Date.now() < deadline, "the container did not start");
          execFileSync("sleep", ["0.1"]);
        }
        const refused = corerun(["image", "rm", "fixture:oci"], r);
        assert.equal(refused.code, 125);
        assert.match(refused.stderr, /^corerun: image fixture:oci \([0-9a-f]{12}\) is used by container [0-9a-f]{12}; remove it first/);
        assert.equal(refused.stderr.trim().split("\n").length, 1);
        assert.deepEqual(Object.keys(JSON.parse(readFileSync(join(r, "images/refs.json"), "utf8"))), ["fixture:oci"]);
      } finally {
        await stop(child, name, r);
      }
      const tag = corerun(["image", "tag", "fixture:oci", "other"], r);
      assert.equal(tag.code, 0, tag.stderr);
      const untag = corerun(["image", "rm", "fixture:oci"], r);
      assert.equal(untag.code, 0, untag.stderr);
      assert.equal(untag.stdout, "Untagged: fixture:oci\n");
      const rm = corerun(["image", "rm", "other"], r);
      assert.equal(rm.code, 0, rm.stderr);
      assert.match(rm.stdout, /^Untagged: other:latest\nDeleted: sha256:[0-9a-f]{64}\nDeleted layer: sha256:[0-9a-f]{64}\nDeleted layer: sha256:[0-9a-f]{64}\n$/);
      assert.deepEqual(readdirSync(join(r, "layers/sha256")), []);
      assert.deepEqual(readdirSync(join(r, "images/sha256")), []);
    } finally {
      removeStateRoot(r);
    }
  });

  test("run -d: an exited container keeps its writable layer, unmounted, until rm; commit takes it; start mounts it again", async () => {
    const r = withImage();
    const name = `kept-${process.pid}`;
    try {
      // The first run writes a file; every later one prints it and exits 3.
      const script = "if [ -e /kept ]; then cat /kept; exit 3; fi; echo written > /kept; echo first";
      const d = corerun(["run", "-d", "--network", "none", "--name", name, "-u", "0", "--entrypoint", "/bin/sh", "fixture:oci", "-c", script], r);
      assert.equal(d.code, 0, d.stderr);
      const id = d.stdout.trim();
      const status = () => (JSON.parse(corerun(["ps", "-a", "--json"], r).stdout) as { id: string; statusText: string; detached: { monitor: { pid: number } } }[]).find((s) => s.id === id)!;
      const exited = async (text: string) => {
        for (let i = 0; status().statusText !== text || existsSync(`/proc/${status().detached.monitor.pid}`); i++) {
          assert.ok(i < 200, `the container did not become ${text}: ${status().statusText}`);
          await delay(100);
        }
      };
      await exited("exited (0)");
      assert.equal(readFileSync(join(r, id, "upper/kept"), "utf8"), "written\n", "the upper directory stays in the state directory");
      assert.ok(existsSync(join(r, id, "work")));
      assert.deepEqual(hostMountsUnder(r), [], "no mount is left on the host once it has exited");
      // Its image stays in use, as Docker's image rm says of an exited container.
      const refused = corerun(["image", "rm", "fixture:oci"], r);
      assert.equal(refused.code, 125);
      assert.match(refused.stderr, new RegExp(`^corerun: image fixture:oci \\([0-9a-f]{12}\\) is used by container ${id}; remove it first`));
      assert.equal(refused.stderr.trim().split("\n").length, 1);
      const pruned = corerun(["image", "prune"], r);
      assert.equal(pruned.code, 0, pruned.stderr);

      // docker commit of an exited container: its writes, as a layer of a new image.
      const c = corerun(["commit", name, "kept:1"], r);
      assert.equal(c.code, 0, c.stderr);
      const fromCommit = corerun(["run", "--network", "none", "-u", "0", "--entrypoint", "/bin/cat", "kept:1", "/kept"], r);
      assert.equal(fromCommit.code, 0, fromCommit.stderr);
      assert.equal(fromCommit.stdout, "written\n");

      // start: the same container, its layer mounted again; its log appended to.
      const st = corerun(["start", name], r);
      assert.equal(st.code, 0, st.stderr);
      assert.equal(st.stdout, `${name}\n`);
      await exited("exited (3)");
      const logs = corerun(["logs", name], r);
      assert.equal(logs.stdout, "first\nwritten\n", "the second run sees what the first wrote");
      assert.deepEqual(hostMountsUnder(r), []);
      const attached = corerun(["start", "-a", name], r);
      assert.equal(attached.code, 3, `start -a exits with the container's status: ${attached.stderr}`);
      assert.equal(attached.stdout, "written\n");
      assert.equal(status().id, id, "the same container");

      const rm = corerun(["rm", name], r);
      assert.equal(rm.code, 0, rm.stderr);
      assert.deepEqual(leftoverState(r), [], "rm removes its directory, the upper directory with it");
      assert.deepEqual(hostMountsUnder(r), []);
      const rmi = corerun(["image", "rm", "kept:1", "fixture:oci"], r);
      assert.equal(rmi.code, 0, rmi.stderr);
    } finally {
      removeStateRoot(r);
    }
  });

  test("--restart: a restarted container keeps its writes (its upper directory is mounted again)", async () => {
    const r = withImage();
    try {
      const d = corerun(["run", "-d", "--network", "none", "--restart", "on-failure:3", "-u", "0", "--entrypoint", "/bin/sh", "fixture:oci", "-c",
        "if [ -e /kept ]; then cat /kept; exit 0; fi; echo from-the-first-run > /kept; exit 1"], r);
      assert.equal(d.code, 0, d.stderr);
      const id = d.stdout.trim();
      const entry = () => (JSON.parse(corerun(["ps", "-a", "--json"], r).stdout) as { id: string; statusText: string; detached: { restartCount?: number; monitor: { pid: number } } }[]).find((s) => s.id === id)!;
      for (let i = 0; entry().statusText !== "exited (0)" || existsSync(`/proc/${entry().detached.monitor.pid}`); i++) {
        assert.ok(i < 300, `the restarted run did not end: ${entry().statusText}`);
        await delay(100);
      }
      assert.equal(entry().detached.restartCount, 1, "one restart, which found the file");
      assert.equal(corerun(["logs", id], r).stdout, "from-the-first-run\n");
      assert.deepEqual(hostMountsUnder(r), []);
      const rm = corerun(["rm", id], r);
      assert.equal(rm.code, 0, rm.stderr);
      assert.deepEqual(leftoverState(r), []);
    } finally {
      removeStateRoot(r);
    }
  });

  test("image prune removes untagged images and their layers, not tagged ones", () => {
    const r = withImage();
    try {
      const mini = corerun(["image", "import", f.rootfsTar], r);
      assert.equal(mini.code, 0, mini.stderr);
      assert.match(mini.stdout, /^Loaded image ID: sha256:[0-9a-f]{64}$/m);
      const p = corerun(["image", "prune"], r);
      assert.equal(p.code, 0, p.stderr);
      assert.equal(p.stdout, `Deleted: ${mini.stdout.trim().split(" ").at(-1)}\n`, "its layer is the tagged image's too, so it stays");
      assert.equal(readdirSync(join(r, "images/sha256")).length, 1);
      assert.equal(readdirSync(join(r, "layers/sha256")).length, 2);
    } finally {
      removeStateRoot(r);
    }
  });

  test("a layer whose digest does not match is refused and nothing is added to the store", () => {
    const r = stateRoot();
    const bad = join(f.dir, "bad-digest");
    try {
      cpSync(f.oci, bad, { recursive: true });
      // One byte of the gzip layer's blob changed, under its old name.
      const layer = join(bad, "blobs/sha256", f.layers[1]!.digest.slice(7));
      const data = readFileSync(layer);
      data[data.length - 5] = data[data.length - 5]! ^ 0xff;
      writeFileSync(layer, data);
      const i = corerun(["image", "import", bad], r);
      assert.equal(i.code, 125);
      assert.match(i.stderr, new RegExp(`^corerun: ${bad}: layer 2/2 ${f.layers[1]!.digest}: `));
      assert.equal(i.stderr.trim().split("\n").length, 1, i.stderr);
      assert.deepEqual(readdirSync(join(r, "layers/sha256")), [], "the first layer, which was fine, is not kept either");
      assert.deepEqual(readdirSync(join(r, "images/sha256")), []);
      assert.equal(existsSync(join(r, "images/refs.json")), false);
    } finally {
      rmSync(bad, { recursive: true, force: true });
      removeStateRoot(r);
    }
  });

  test("file capabilities (security.capability in PAX SCHILY.xattr records) are kept through import; overlayfs's own attributes are refused", async () => {
    const r = stateRoot();
    const dir = join(f.dir, "caps");
    try {
      const layer = cappedLayer(f, dir);
      assert.ok(layer.includes("SCHILY.xattr.security.capability"), "the fixture carries the capability");
      writeOci(join(dir, "oci"), [{ data: blob(f, f.layers[0]!.digest) }, { data: layer }], { Env: ["PATH=/bin"] }, "fixture:caps");
      const imp = corerun(["image", "import", join(dir, "oci")], r);
      assert.equal(imp.code, 0, imp.stderr);
      const stored = run("getcap", [join(r, "layers/sha256", sha256(layer).slice(7), "diff/bin/busybox-capped")]);
      assert.match(stored.stdout, /busybox-capped cap_setuid,cap_net_raw=ep$/m, stored.stdout + stored.stderr);
      const status = (exe: string, ...userns: string[]) => {
        const c = corerun(["run", "--network", "none", ...userns, "-u", "1000", "--entrypoint", exe, "fixture:caps", "cat", "/proc/self/status"], r);
        assert.equal(c.code, 0, c.stderr);
        return c.stdout.split("\n").filter((l) => /^Cap(Prm|Eff):/.test(l)).map((l) => l.replace(/\s+/, " "));
      };
      const capped = ["CapPrm: 0000000000002080", "CapEff: 0000000000002080"];
      assert.deepEqual(status("/bin/busybox-capped"), capped, "uid 1000 gets CAP_NET_RAW and CAP_SETUID from the file");
      assert.deepEqual(status("/bin/busybox"), ["CapPrm: 0000000000000000", "CapEff: 0000000000000000"], "and nothing from the same program without them");
      // The revision 2 value is host root's, which the idmapped layers show as the container root's: the same in a user namespace (as Docker's userns-remap and Podman give).
      assert.deepEqual(status("/bin/busybox-capped", "--userns", "auto"), capped, "the same in a user namespace");
      // A layer may not set overlayfs's own attributes: opaque directories come from whiteout entries.
      const bad = await tarOf([{ name: "etc/", type: "directory", pax: { "SCHILY.xattr.trusted.overlay.opaque": "y" } }]);
      writeOci(join(dir, "forged-oci"), [{ data: bad }], { Cmd: ["/bin/true"] }, "fixture:forged");
      const before = storeListing(r);
      const refused = corerun(["image", "import", join(dir, "forged-oci")], r);
      assert.equal(refused.code, 125);
      assert.match(refused.stderr, /^corerun: .*forged-oci: layer 1\/1 sha256:[0-9a-f]{64}: entry "etc" sets trusted\.overlay\.opaque, overlayfs's own attribute; a layer says that with a whiteout entry; refused\n$/);
      assert.deepEqual(storeListing(r), before);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      removeStateRoot(r);
    }
  });

  test("commit keeps file capabilities: a capped binary moved in the container is still capped after export and import", async () => {
    const r = stateRoot();
    const other = stateRoot();
    const dir = join(f.dir, "caps-commit");
    const name = `caps-${process.pid}`;
    try {
      const layer = cappedLayer(f, dir);
      writeOci(join(dir, "oci"), [{ data: blob(f, f.layers[0]!.digest) }, { data: layer }], { Env: ["PATH=/bin"] }, "fixture:caps");
      assert.equal(corerun(["image", "import", join(dir, "oci")], r).code, 0);
      // The rename copies the file up (with its attributes) under a name only the container's layer has.
      const child = spawn(join(BIN, "corerun"), withRoot(["run", "--network", "none", "--name", name, "-u", "0", "--entrypoint", "/bin/sh", "fixture:caps", "-c",
        "mv /bin/busybox-capped /bin/busybox-moved && touch /ready; sleep 30"], r), { stdio: "ignore" });
      try {
        const deadline = Date.now() + 20_000;
        while (!readdirSync(r).some((d) => /^[0-9a-f]{12}$/.test(d) && existsSync(join(r, d, "upper/ready")))) {
          assert.ok(Date.now() < deadline, "the container did not start");
          await delay(100);
        }
        const c = corerun(["commit", name, "capped:1"], r);
        assert.equal(c.code, 0, c.stderr);
      } finally {
        await stop(child, name, r);
      }
      const file = join(dir, "capped.tar");
      assert.equal(corerun(["image", "export", "capped:1", file], r).code, 0);
      const i = corerun(["image", "import", file], other);
      assert.equal(i.code, 0, i.stderr);
      const layers = (JSON.parse(corerun(["image", "inspect", "capped:1"], other).stdout) as { LayerDirs: string[] }[])[0]!.LayerDirs;
      assert.match(run("getcap", [join(layers[2]!, "bin/busybox-moved")]).stdout, /busybox-moved cap_setuid,cap_net_raw=ep$/m, "the committed layer carries the capability");
      const status = corerun(["run", "--network", "none", "-u", "1000", "--entrypoint", "/bin/busybox-moved", "capped:1", "cat", "/proc/self/status"], other);
      assert.equal(status.code, 0, status.stderr);
      assert.equal(/^CapEff:\s*(\w+)$/m.exec(status.stdout)?.[1], "0000000000002080");
      const gone = corerun(["run", "--network", "none", "-u", "0", "--entrypoint", "/bin/ls", "capped:1", "/bin/busybox-capped"], other);
      assert.match(gone.stderr + gone.stdout, /No such file or directory/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      removeStateRoot(r);
      removeStateRoot(other);
    }
  });

  test("kill -9 during an import leaves no layer a later import trusts", async () => {
    const r = stateRoot();
    const big = join(f.dir, "big");
    try {
      // A layer large enough to be caught while it is unpacked.
      const tree = join(big, "tree");
      mkdirSync(tree, { recursive: true });
      writeFileSync(join(tree, "small"), "small\n");
      writeFileSync(join(tree, "large"), "");
      truncateSync(join(tree, "large"), 128 << 20);
      const layer = execFileSync("tar", ["-C", tree, "--numeric-owner", "-cf", "-", "."], { maxBuffer: 200 << 20 });
      writeOci(join(big, "oci"), [{ data: layer }], { Cmd: ["/bin/true"] }, "big:1");
      const child = spawn(join(BIN, "corerun"), withRoot(["image", "import", join(big, "oci")], r), { stdio: "ignore" });
      const exited = new Promise((resolve) => child.on("exit", resolve));
      const tmp = () => (existsSync(join(r, "layers")) ? readdirSync(join(r, "layers")).filter((n) => n.startsWith(".tmp-")) : []);
      const deadline = Date.now() + 30_000;
      while (!tmp().some((t) => existsSync(join(r, "layers", t, "diff", "large")))) {
        assert.ok(Date.now() < deadline, "the import never started unpacking");
        await new Promise((res) => setTimeout(res, 5));
      }
      child.kill("SIGKILL");
      await exited;
      assert.deepEqual(readdirSync(join(r, "layers/sha256")), [], "no half layer under its final name");
      assert.ok(tmp().length > 0, "the half layer is only a .tmp- directory");
      const again = corerun(["image", "import", join(big, "oci")], r);
      assert.equal(again.code, 0, again.stderr);
      assert.deepEqual(tmp(), [], "the next import removed the leftovers");
      const size = statSync(join(r, "layers/sha256", sha256(layer).slice(7), "diff/large")).size;
      assert.equal(size, 128 << 20);
    } finally {
      rmSync(big, { recursive: true, force: true });
      removeStateRoot(r);
    }
  });

  test("bad input: one line naming the file and the entry, exit 125, the store unchanged", async () => {
    const r = withImage();
    const dir = join(f.dir, "bad");
    try {
      const before_ = storeListing(r);
      const layout = async (name: string, entries: Parameters<typeof tarOf>[0], mediaType?: string) => {
        const d = join(dir, name);
        const data = await tarOf(entries);
        writeOci(d, [{ data: mediaType?.endsWith("gzip") ? gzipSync(data) : data, mediaType, diffId: sha256(data) }], { Cmd: ["/bin/true"] }, `bad:${name}`);
        return d;
      };
      mkdirSync(dir, { recursive: true });
      const noImage = join(dir, "random.bin");
      writeFileSync(noImage, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 251)));
      const missing = join(dir, "missing");
      cpSync(f.oci, missing, { recursive: true });
      rmSync(join(missing, "blobs/sha256", f.layers[0]!.digest.slice(7)));
      const cases: [string, RegExp][] = [
        [noImage, /random\.bin: not an image: not a tar archive/],
        [missing, new RegExp(`missing: the blob blobs/sha256/${f.layers[0]!.digest.slice(7)} is missing from the image`)],
        [await layout("dotdot", [{ name: "etc/" , type: "directory" }, { name: "etc/../../escaped", body: "x" }]), /layer 1\/1 sha256:[0-9a-f]{64}: entry "etc\/..\/..\/escaped" climbs out of the layer with \.\.; refused/],
        [await layout("absolute", [{ name: "/tmp/escaped", body: "x" }]), /entry "\/tmp\/escaped" is an absolute path; refused/],
        [await layout("symlink", [{ name: "link", type: "symlink", linkname: "../../../../etc" }]), /symlink "link" -> "..\/..\/..\/..\/etc" points out of the layer; refused/],
        [await layout("through", [{ name: "link", type: "symlink", linkname: "/etc" }, { name: "link/escaped", body: "x" }]), /entry "link\/escaped" goes through the symlink "link"; refused/],
        [await layout("hardlink", [{ name: "passwd", type: "link", linkname: "../../etc/passwd" }]), /hard link "passwd" -> "..\/..\/etc\/passwd" points out of the layer; refused/],
        [await layout("mediatype", [{ name: "f", body: "x" }], "application/vnd.example.layer.v1.squashfs"), /layer sha256:[0-9a-f]{64} has the unsupported media type application\/vnd\.example\.layer\.v1\.squashfs/],
      ];
      for (const [input, message] of cases) {
        const i = corerun(["image", "import", input], r);
        assert.equal(i.code, 125, `${input}: ${i.stderr}`);
        assert.match(i.stderr, message);
        assert.ok(i.stderr.startsWith(`corerun: ${input}`), `names the input: ${i.stderr}`);
        assert.equal(i.stderr.trim().split("\n").length, 1, i.stderr);
        assert.deepEqual(storeListing(r), before_, `${input} changed the store`);
      }
      assert.equal(existsSync("/tmp/escaped"), false);
      const none = corerun(["run", "--network", "none", "no-such-image"], r);
      assert.equal(none.code, 127, "a word that is no image is a command of the default rootfs");
    } finally {
      rmSync(dir, { recursive: true, force: true });
      removeStateRoot(r);
    }
  });
});
