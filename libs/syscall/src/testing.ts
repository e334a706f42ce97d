import { spawnSync } from "node:child_process";
import { join } from "node:path";

/**
 * For unit tests that need native parts without a build or root: compiles them into dir with
 * native/compile.mjs (the outputs' names: corerun-exe, libcorerun.so, corerun-monitor, ...).
 * False when there is no C compiler (the tests skip); a failed compile throws.
 */
export function compileNative(dir: string, outputs: readonly string[]): boolean {
  const r = spawnSync(process.execPath, [join(import.meta.dirname, "../native/compile.mjs"), dir, ...outputs], { stdio: ["ignore", "inherit", "pipe"], encoding: "utf8" });
  if (r.status === 3) return false;
  if (r.status !== 0) throw new Error(`native/compile.mjs: ${r.stderr.trim() || `exit ${r.status}`}`);
  return true;
}

/** The native helper (and corerun-exe, which it holds) compiled into dir, with CORERUN_NATIVE pointed at it. */
export function compileNativeHelper(dir: string): boolean {
  if (!compileNative(dir, ["corerun-exe", "libcorerun.so"])) return false;
  process.env.CORERUN_NATIVE = join(dir, "libcorerun.so");
  return true;
}
