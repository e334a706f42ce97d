import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

const base = mkdtempSync(join(tmpdir(), "corerun-fault-test-"));
after(() => {
  if (base.startsWith(tmpdir() + sep) && base.includes("corerun-fault-test-")) rmSync(base, { recursive: true, force: true });
});

const fault = fileURLToPath(new URL("./fault.ts", import.meta.url));

/** A Node process that passes the points a, b and c in order, then exits 0. */
function passPoints(env: Record<string, string>) {
  const script = `import { faultPoint } from ${JSON.stringify(fault)}; for (const p of ["a", "b", "c"]) faultPoint(p); console.log("done");`;
  return spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { encoding: "utf8", env: { ...process.env, ...env } });
}

describe("faultPoint", () => {
  test("without CORERUN_FAULT the process runs through every point", () => {
    const r = passPoints({ CORERUN_FAULT: "" });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, "done\n");
  });

  test("the named point stops the process dead with SIGKILL, as kill -9 would", () => {
    const trace = join(base, "trace-b");
    const r = passPoints({ CORERUN_FAULT: "b", CORERUN_FAULT_TRACE: trace });
    assert.equal(r.signal, "SIGKILL");
    assert.equal(r.stdout, "");
    assert.equal(readFileSync(trace, "utf8"), "a\nb\n");
  });

  test("the trace lists every point passed, in order", () => {
    const trace = join(base, "trace-all");
    const r = passPoints({ CORERUN_FAULT_TRACE: trace });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(readFileSync(trace, "utf8"), "a\nb\nc\n");
  });

  test("a trace file that cannot be written does not stop the process", () => {
    const r = passPoints({ CORERUN_FAULT_TRACE: join(base, "missing-dir", "trace") });
    assert.equal(r.status, 0, r.stderr);
  });
});
