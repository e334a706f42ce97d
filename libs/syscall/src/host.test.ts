import { test } from "node:test";
import assert from "node:assert/strict";
import { availableParallelism, hostname, release } from "node:os";
import { cpuCount, uname } from "./host.ts";

test("uname reads what node:os reads: the hostname and the kernel release", () => {
  const u = uname();
  assert.equal(u.sysname, "Linux");
  assert.equal(u.nodename, hostname());
  assert.equal(u.release, release());
  assert.match(u.machine, /^\w+$/);
});

test("cpuCount counts the CPUs of the affinity mask, as availableParallelism does", () => {
  assert.equal(cpuCount(), availableParallelism());
});
