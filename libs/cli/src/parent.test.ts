import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { recordingSyscall } from "@corerun/syscall";
import { dieWithParent, PARENT_PID_ENV } from "./parent.ts";

const parent = fileURLToPath(new URL("./parent.ts", import.meta.url));

/** A Node process that asks to die with its parent, then prints what it still sees. */
function child(env: Record<string, string>) {
  const script = `import { dieWithParent } from ${JSON.stringify(parent)}; import { linuxSyscall } from "@corerun/syscall";
dieWithParent(linuxSyscall); console.log("alive", process.env.${PARENT_PID_ENV} ?? "unset");`;
  return spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { encoding: "utf8", env: { ...process.env, ...env } });
}

describe("dieWithParent", () => {
  test("asks the kernel for SIGKILL when the parent dies", () => {
    const { sys, calls } = recordingSyscall();
    dieWithParent(sys, {});
    assert.deepEqual(calls, [{ name: "prctl", args: [1, 9] }]);
  });

  test("a parent that names itself is the parent: the process goes on, and its children do not inherit the name", () => {
    const r = child({ [PARENT_PID_ENV]: String(process.pid) });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, "alive unset\n");
  });

  test("a named parent that is not the parent any more (it died while the tool started): the process stops dead", () => {
    const r = child({ [PARENT_PID_ENV]: "1" });
    assert.equal(r.signal, "SIGKILL", r.stderr);
    assert.equal(r.stdout, "");
  });

  test("without a name, started by hand, the process goes on", () => {
    const r = child({});
    assert.equal(r.status, 0, r.stderr);
  });
});
