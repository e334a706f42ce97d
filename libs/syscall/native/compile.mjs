#!/usr/bin/env node
// The native parts' compile steps, one C file each: for `npm run build` (tools/build.mjs) and for
// the unit tests that need the helper without a build (libs/syscall/src/testing.ts).
// Usage: node compile.mjs OUT_DIR [OUTPUT...]; when one fails, a line on stderr and exit 1, or 3
// when there is no C compiler.
import { spawnSync } from "node:child_process";
import { join, resolve } from "node:path";

const GCC = "install a C compiler: apt-get install gcc";
const STATIC = "install a C compiler and a static libc: apt-get install gcc libc6-dev";
// corerun-exe without libc where exe.c has its own start (x86-64): no system call of libc's
// startup between the exec into it and the program's.
const FREESTANDING = ["-static", "-nostdlib", "-ffreestanding", "-fno-builtin", "-fno-stack-protector", "-fno-tree-loop-distribute-patterns",
  "-fno-asynchronous-unwind-tables", "-fno-pie", "-no-pie", "-Wl,--build-id=none", "-s"];

/** In build order: clone.c holds corerun-exe, which the assembler finds in the output directory. */
export const NATIVE = [
  // The stub a container's program is exec'd from (exe.c).
  { source: "exe.c", output: "corerun-exe", flags: () => (process.arch === "x64" ? FREESTANDING : ["-static", "-s"]), hint: STATIC },
  // The native helper: clone(2) into new namespaces without running JavaScript in the child.
  { source: "clone.c", output: "libcorerun.so", flags: (out) => ["-shared", "-fPIC", `-Wa,-I,${out}`], hint: GCC },
  // A detached container's monitor: a native process, so that each one costs about a MB, not a Node.
  { source: "monitor.c", output: "corerun-monitor", flags: () => [], hint: GCC },
  // corerun run --init's PID 1: static, as it runs from inside any root filesystem.
  { source: "init.c", output: "corerun-init", flags: () => ["-static"], hint: STATIC },
];

/**
 * Compiles the parts named (all by default) into out. undefined when they all compiled, else
 * why not: "no C compiler" when there is none, else the failing file and the package to install.
 */
export function compileNative(out, outputs = NATIVE.map((n) => n.output)) {
  const dir = resolve(out);
  for (const n of NATIVE.filter((p) => outputs.includes(p.output))) {
    const src = join(import.meta.dirname, n.source);
    // In the output directory: the assembler looks for .incbin's file in its working directory
    // before its include path, and a corerun-exe elsewhere must not be the one linked in.
    const r = spawnSync(process.env.CC ?? "cc", ["-O2", "-Wall", "-Wextra", "-Werror", ...n.flags(dir), "-o", join(dir, n.output), src], { stdio: "inherit", cwd: dir });
    if (r.error?.code === "ENOENT") return "no C compiler";
    if (r.error || r.status !== 0) return `cannot compile ${src}${r.error ? ` (${r.error.code})` : ""}; ${n.hint}`;
  }
  return undefined;
}

if (process.argv[1] === import.meta.filename) {
  const [out, ...outputs] = process.argv.slice(2);
  if (!out) {
    console.error("usage: node compile.mjs OUT_DIR [OUTPUT...]");
    process.exit(2);
  }
  const why = compileNative(out, outputs.length ? outputs : undefined);
  if (why) {
    console.error(`compile: ${why}`);
    process.exit(why === "no C compiler" ? 3 : 1);
  }
}
