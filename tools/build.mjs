#!/usr/bin/env node
// Bundles each executable under bin/src into one CommonJS file in dist/, so that a tool starts by
// reading one file: every Node start sits on the container start path.
import { build } from "esbuild";
import { readdirSync, existsSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const all = readdirSync(join(root, "bin/src")).filter((n) => existsSync(join(root, "bin/src", n, "main.ts")));
const wanted = process.argv.slice(2);
const names = wanted.length ? wanted : all;

await Promise.all(
  names.map((name) =>
    build({
      entryPoints: [join(root, "bin/src", name, "main.ts")],
      outfile: join(root, "dist", `${name}.cjs`),
      bundle: true,
      platform: "node",
      target: "node20",
      format: "cjs",
      // koffi loads a native addon next to its own files; it cannot be inlined.
      external: ["koffi"],
      tsconfig: join(root, "tsconfig.base.json"),
      legalComments: "none",
      logLevel: "warning",
    }),
  ),
);
// The native helper: clone(2) into new namespaces without running JavaScript in the child.
const native = join(root, "libs/syscall/native/clone.c");
const lib = join(root, "dist/libcorerun.so");
const cc = spawnSync(process.env.CC ?? "cc", ["-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-o", lib, native], { stdio: "inherit" });
if (cc.error || cc.status !== 0) {
  console.error(`build: cannot compile ${native}${cc.error ? ` (${cc.error.code})` : ""}; install a C compiler: apt-get install gcc`);
  process.exit(1);
}
// corerun run --init's PID 1: static, as it runs from inside any root filesystem (needs libc.a).
const initSource = join(root, "libs/syscall/native/init.c");
const init = spawnSync(process.env.CC ?? "cc", ["-O2", "-Wall", "-Wextra", "-Werror", "-static", "-o", join(root, "dist/corerun-init"), initSource], { stdio: "inherit" });
if (init.error || init.status !== 0) {
  console.error(`build: cannot compile ${initSource} statically; install a C compiler and a static libc: apt-get install gcc libc6-dev`);
  process.exit(1);
}
console.log(`built ${names.map((n) => `dist/${n}.cjs`).join(" ")} dist/libcorerun.so dist/corerun-init`);
