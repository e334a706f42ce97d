#!/usr/bin/env node
// Bundles each executable under bin/src into one CommonJS file in dist/, so that a tool starts by
// reading one file: every Node start sits on the container start path.
import { build } from "esbuild";
import { readdirSync, existsSync } from "node:fs";
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
console.log(`built ${names.map((n) => `dist/${n}.cjs`).join(" ")}`);
