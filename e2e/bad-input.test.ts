/**
 * Bad input: one clear line on stderr naming the input and the fix, exit 125 (126/127 for the
 * command), and nothing created: no state directory, mount or process.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { busyboxRootfs, hostMountsUnder, isRoot, leftoverState, removeStateRoot, run, stateRoot, tool } from "./helpers.ts";

let rootfs = "";
let root = "";
let scratch = "";

describe("bad input is refused before anything is created", { skip: !isRoot && "needs root" }, () => {
  before(() => {
    rootfs = busyboxRootfs();
    root = stateRoot();
    scratch = mkdtempSync(join(tmpdir(), "corerun-bad-"));
    writeFileSync(join(scratch, "file"), "");
  });
  after(() => {
    try {
      rmSync(scratch, { recursive: true, force: true });
    } finally {
      removeStateRoot(root);
    }
  });

  const cases: [string, () => string[], number, RegExp][] = [
    ["--rootfs missing", () => ["--rootfs", join(scratch, "none"), "/bin/true"], 125, /--rootfs .*none: no such directory/],
    ["--rootfs not a directory", () => ["--rootfs", join(scratch, "file"), "/bin/true"], 125, /--rootfs .*file: not a directory/],
    ["--rootfs without the command", () => ["--rootfs", scratch, "/bin/true"], 127, /\/bin\/true: no such file in the root filesystem/],
    ["a command that is not executable", () => ["--rootfs", rootfs, "/bin/not-executable"], 126, /not an executable file/],
    ["-v with an empty part", () => ["--rootfs", rootfs, "-v", `:/data`, "/bin/true"], 125, /-v ":\/data": expected HOST_PATH:CONTAINER_PATH/],
    ["-v with a relative container path", () => ["--rootfs", rootfs, "-v", `${scratch}:data`, "/bin/true"], 125, /container path "data" must be absolute/],
    ["-v with an unknown mode", () => ["--rootfs", rootfs, "-v", `${scratch}:/data:rx`, "/bin/true"], 125, /unknown mode "rx"; use ro or rw/],
    ["-v with a missing host path", () => ["--rootfs", rootfs, "-v", `${scratch}/nope:/data`, "/bin/true"], 125, /host path .*nope does not exist/],
    ["an unknown flag", () => ["--rootfs", rootfs, "--frobnicate", "/bin/true"], 125, /unknown option --frobnicate; see --help/],
    ["a hostname over 64 characters", () => ["--rootfs", rootfs, "--hostname", "a".repeat(65), "/bin/true"], 125, /--hostname "a+" is 65 characters long; the limit is 64/],
    ["a hostname with bad characters", () => ["--rootfs", rootfs, "--hostname", "bad_name!", "/bin/true"], 125, /--hostname "bad_name!" may hold only/],
    ["a state root that cannot be written", () => ["--rootfs", rootfs, "/bin/true"], 125, /state root .* cannot be written .*--root DIR or set CORERUN_ROOT/],
    ["an unknown network mode", () => ["--rootfs", rootfs, "--network", "carrier-pigeon", "/bin/true"], 125, /--network carrier-pigeon: unknown mode/],
    ["no command", () => ["--rootfs", rootfs], 125, /no command given/],
    ["a published port 0", () => ["--rootfs", rootfs, "-P", "0:80", "/bin/true"], 125, /^corerun: -P 0:80: .*port/],
    ["a published port over 65535", () => ["--rootfs", rootfs, "-P", "70000:80", "/bin/true"], 125, /^corerun: -P 70000:80: .*port/],
    ["an unknown protocol", () => ["--rootfs", rootfs, "-P", "8080:80/sctp", "/bin/true"], 125, /unknown protocol "sctp"; use tcp or udp/],
    ["container: naming no running container", () => ["--rootfs", rootfs, "--network", "container:ghost", "/bin/true"], 125, /no running container has the name or id "ghost"/],
    ["a bridge name that is too long", () => ["--rootfs", rootfs, "-N", "much-too-long-bridge", "/bin/true"], 125, /a bridge name is at most 15 characters/],
    ["a bridge name with bad characters", () => ["--rootfs", rootfs, "-N", "br/0", "/bin/true"], 125, /a bridge name starts with a letter/],
    ["a malformed subnet", () => ["--rootfs", rootfs, "--subnet", "10.1.2.0/40", "/bin/true"], 125, /^corerun: --subnet 10.1.2.0\/40: /],
    ["an unknown capability", () => ["--rootfs", rootfs, "--cap-add", "FLY", "/bin/true"], 125, /--cap-add FLY: unknown capability/],
  ];

  for (const [name, args, code, message] of cases) {
    test(name, () => {
      const stateArgs = name.startsWith("a state root") ? ["--root", join(scratch, "file", "sub")] : ["--root", root];
      const r = tool("corerun", [...stateArgs, ...args()]);
      assert.equal(r.code, code, r.stderr);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, `expected one line, got:\n${r.stderr}`);
      assert.match(lines[0]!, /^corerun: /);
      assert.match(lines[0]!, message);
      assert.equal(r.stdout, "");
      assert.deepEqual(leftoverState(root), []);
      assert.deepEqual(hostMountsUnder(rootfs), []);
    });
  }

  test("not root: what needs root (here a published port) is refused with a clear line, exit 125", () => {
    // CAP_DAC_READ_SEARCH (ambient) lets the unprivileged uid read corerun wherever the checkout
    // is, even under a private directory; it is still not root.
    const r = run("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search", "--",
      join(import.meta.dirname, "../bin/corerun"), "--root", join(scratch, "nobody-root"), "--rootfs", rootfs, "-P", "8080:80", "/bin/true"]);
    assert.equal(r.code, 125, r.stderr);
    assert.match(r.stderr.trim(), /^corerun: rootless containers \(corerun run as uid 65534\) get --network none only; bridge networking and published ports need root$/);
  });


  for (const [name, args, message] of [
    ["overlapping uid ranges", ["--uidmap", "0:100000:100", "--uidmap", "50:200000:100"], /--uidmap 0:100000:100 and 50:200000:100 overlap inside the container/],
    ["a zero-size map", ["--uidmap", "0:100000:0"], /--uidmap 0:100000:0: the size is 0/],
    ["a map past the last id", ["--gidmap", "0:4294967290:100"], /--gidmap 0:4294967290:100: the range goes past id 4294967294/],
    ["a map without container root", ["--uidmap", "1:100000:10"], /nothing maps container id 0/],
    ["an unknown --userns mode", ["--userns", "private"], /--userns private: unknown mode; use auto or host/],
  ] as const) {
    test(`user namespaces: ${name} is refused, nothing created`, () => {
      const r = tool("corerun", ["--root", root, "--rootfs", rootfs, ...args, "/bin/true"]);
      assert.equal(r.code, 125);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.match(r.stderr, message);
      assert.deepEqual(leftoverState(root), []);
    });
  }

  test("the native helper missing (CORERUN_NATIVE): one line naming it and the fix, exit 125, nothing created", () => {
    const missing = join(scratch, "libcorerun.so");
    const r = tool("corerun", ["--root", root, "--rootfs", rootfs, "--network", "none", "/bin/true"], { env: { ...process.env, CORERUN_NATIVE: missing } });
    assert.equal(r.code, 125, r.stderr);
    assert.equal(r.stderr, `corerun: corerun's native helper ${missing} is missing: run npm run build (it needs a C compiler: apt-get install gcc)\n`);
    assert.deepEqual(leftoverState(root), []);
    assert.deepEqual(hostMountsUnder(rootfs), []);
  });

  for (const name of ["corerun-ns", "corerun-mount", "corerun-exec"]) {
    test(`${name}: an unknown flag is one line and exit 125`, () => {
      const r = tool(name, ["--frobnicate"]);
      assert.equal(r.code, 125);
      assert.equal(r.stderr, `${name}: unknown option --frobnicate; see --help\n`);
    });
  }
});
