import { spawnSync } from "node:child_process";
import { join } from "node:path";

/**
 * For unit tests that need the native helper without a build or root: compiles native/clone.c
 * into dir and points CORERUN_NATIVE at it. False when there is no C compiler (the tests skip).
 */
export function compileNativeHelper(dir: string): boolean {
  const lib = join(dir, "libcorerun.so");
  const cc = spawnSync(process.env.CC ?? "cc", ["-O2", "-shared", "-fPIC", "-o", lib, join(import.meta.dirname, "../native/clone.c")], { stdio: "inherit" });
  process.env.CORERUN_NATIVE = lib;
  return !cc.error && cc.status === 0;
}
