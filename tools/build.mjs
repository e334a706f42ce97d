#!/usr/bin/env node
// Bundles each executable under bin/src into one CommonJS file in dist/, so that a tool starts by
// reading one file: every Node start sits on the container start path. corerun has two smaller
// ones for the commands an engine calls (bin/src/corerun/engine.ts for state, start and delete,
// engine-create.ts for create), which its loader runs for them.
import { build } from "esbuild";
import { readdirSync, existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { Script } from "node:vm";
import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import { compileNative } from "../libs/syscall/native/compile.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const requireHere = createRequire(join(root, "package.json"));
const all = readdirSync(join(root, "bin/src")).filter((n) => existsSync(join(root, "bin/src", n, "main.ts")));
const wanted = process.argv.slice(2);
const names = wanted.length ? wanted : all;

// Node's built-in modules that are not in its own startup snapshot cost milliseconds to load
// (node:child_process with node:net and the streams ~4 ms, node:crypto ~2.5 ms, node:os ~0.5 ms), and a bundle
// loads every import as it starts. These are loaded when first used instead: a command that never
// spawns, hashes or streams (corerun-exec without hooks, corerun start, delete, state) never pays
// for them. Each import is an object whose prototype is a proxy: reading a name loads the module
// and reads it there. A getter for each name the module exports cost ~0.8 ms of corerun's load to
// define (~100 each for node:crypto and node:zlib); the proxy costs nothing until it is read.
// The same holds for tar-stream (with streamx, ~2 ms), bundled but run only by image commands.
// The list is tools/lazy-modules.json: e2e/lazy.test.ts checks that no start or teardown loads one.
const LAZY = new RegExp(JSON.parse(readFileSync(join(root, "tools/lazy-modules.json"), "utf8")).pattern);
// The exports of a module loaded on first use, given `load` (which returns the module): the proxy
// is the exports' prototype, so that they have no own names for each import to copy (esbuild's
// __toESM); __esModule, which __toESM reads as the module is imported, is answered without a
// load (none of these is an ES module compiled to CommonJS).
const LAZY_EXPORTS = 'module.exports = Object.create(new Proxy({}, { get: (_, name) => (name === "__esModule" ? undefined : load()[name]) }));\n';
const lazyModules = {
  name: "lazy-modules",
  setup(b) {
    b.onResolve({ filter: LAZY }, (a) => {
      if (a.pluginData === "real") return undefined;
      if (a.namespace !== "lazy") return { path: a.path, namespace: "lazy" };
      // The module itself, required from the getters' first read: a built-in stays outside.
      return a.path.startsWith("node:") ? { path: a.path, external: true } : b.resolve(a.path, { kind: "require-call", resolveDir: root, pluginData: "real" });
    });
    b.onLoad({ filter: /.*/, namespace: "lazy" }, (a) => ({
      loader: "js",
      contents: `let m;\nconst load = () => (m ??= require(${JSON.stringify(a.path)}));\n${LAZY_EXPORTS}`,
    }));
  },
};

// koffi's loader finds its native addon at every start: a package lookup for
// @koromix/koffi-<platform>, then that package reads Node's ELF header to choose the glibc or
// musl build (~3 ms of each tool's start). The file this Node loads is found here once, and the
// bundle dlopens it by its path from dist/ (koffiPlugin below); if that fails (a checkout moved
// or copied to another kind of machine), koffi's own loader and lookup run as before.
function koffiAddon() {
  const pkg = `@koromix/koffi-${process.platform}-${process.arch}`;
  const before = new Set(Object.keys(requireHere.cache));
  requireHere(pkg);
  const file = Object.keys(requireHere.cache).find((k) => k.endsWith(".node") && !before.has(k)) ?? Object.keys(requireHere.cache).find((k) => k.includes(pkg) && k.endsWith(".node"));
  return { pkg, file };
}
const addon = koffiAddon();

// koffi's own JavaScript, run as each tool loads, finds and checks its addon and wraps a few
// deprecated calls (~1 ms of each tool's load, most of it copying node:util's and node:fs's
// exports). The addon loaded by its path from dist/ is what that returns, without the wrappers:
// the bundle uses it as it is when its version is koffi's, and koffi's JavaScript (bundled, run
// only then) otherwise, as from a copied or moved dist/. Either is loaded when first used, as the
// lazy modules are (LAZY_EXPORTS): a command that makes no call through it
// (corerun state, ps, inspect) does not load it (~1.5 ms).
const koffiVersion = JSON.parse(readFileSync(join(dirname(requireHere.resolve("koffi")), "package.json"), "utf8")).version;
const koffiPlugin = {
  name: "koffi",
  setup(b) {
    b.onResolve({ filter: /^koffi$/ }, (a) => (a.namespace === "koffi" || !addon.file ? { path: requireHere.resolve("koffi") } : { path: "koffi", namespace: "koffi" }));
    b.onLoad({ filter: /.*/, namespace: "koffi" }, () => ({
      loader: "js",
      resolveDir: root,
      contents: `const { join } = require("node:path");
let native;
const load = () => {
  if (native) return native;
  try {
    const m = { exports: {} };
    process.dlopen(m, join(__dirname, ${JSON.stringify(relative(join(root, "dist"), addon.file ?? ""))}));
    if (m.exports.version === ${JSON.stringify(koffiVersion)}) native = m.exports;
  } catch {
    // not there: koffi's own lookup below
  }
  return (native ??= require("koffi"));
};
${LAZY_EXPORTS}`,
    }));
  },
};

// An executable's bundles: main.ts, and engine.ts and engine-create.ts where there are (corerun's:
// the commands an engine runs most, and its create, each in a bundle of a third to a quarter the
// size, which its loader runs for them).
const bundlesOf = (name) =>
  [{ entry: "main.ts", base: `${name}.bundle` }, { entry: "engine.ts", base: `${name}.engine.bundle` }, { entry: "engine-create.ts", base: `${name}.engine-create.bundle` }]
    .filter((b) => existsSync(join(root, "bin/src", name, b.entry)));

await Promise.all(
  names.flatMap((name) => bundlesOf(name).map((b) => ({ name, ...b }))).map(({ name, entry, base }) =>
    build({
      entryPoints: [join(root, "bin/src", name, entry)],
      outfile: join(root, "dist", `${base}.cjs`),
      bundle: true,
      platform: "node",
      target: "node20",
      format: "cjs",
      // koffi's JavaScript is bundled (compiled with the code cache, no package lookup: ~3 ms of
      // every tool's start), as CommonJS: its ES build finds its files through import.meta.url.
      // Its native addon is dlopened by its path (koffiPlugin), else found by koffi's loader in
      // its platform package at run time.
      external: ["@koromix/*"],
      plugins: [koffiPlugin, lazyModules],
      tsconfig: join(root, "tsconfig.base.json"),
      legalComments: "none",
      logLevel: "warning",
    }),
  ),
);

// Each bundle is compiled through a loader, dist/NAME.cjs, with V8's code cache for it made here:
// compiling corerun's bundle from source takes 20-40 ms on every start, from the cache 2-6 ms.
// The cache is only a hint: V8 checks it against the source and its own version and flags, and
// compiles from source when it does not match (another Node, a changed bundle).
// The bundle file holds the function Node's CommonJS loader would wrap it in, so that the loader
// compiles the text it reads as it is: adding the wrapper at every start made V8 copy the whole
// source into a new string (~0.8 ms for corerun's, most of it page faults on the fresh memory).
const HEAD = "(function (exports, require, module, __filename, __dirname) {";
const TAIL = "\n})";
// A bundle of ASCII only is read as latin1 into a one-byte string; a single other character
// anywhere (a comment esbuild keeps) makes V8 hold all of it as two bytes a character, which
// made corerun's bundle 2 ms slower to read and its functions slower to compile at every start.
for (const name of names) {
  const made = bundlesOf(name).map(({ base }) => {
    const bundle = join(root, "dist", `${base}.cjs`);
    const text = readFileSync(bundle, "utf8");
    const other = text.search(/[^\x00-\x7f]/);
    if (other >= 0) console.warn(`build: dist/${base}.cjs line ${text.slice(0, other).split("\n").length} holds a non-ASCII character; the bundle loads as UTF-8, slower`);
    const source = `${HEAD}${text}${TAIL}`;
    writeFileSync(bundle, source);
    // A run cache holds the previous bundle's functions: V8 would refuse it at every start.
    for (const f of readdirSync(join(root, "dist"))) if (f.startsWith(`${base}.run-cache`)) rmSync(join(root, "dist", f), { force: true });
    const cache = join(root, "dist", `${base}.cache`);
    writeFileSync(cache, new Script(source, { filename: bundle }).createCachedData());
    return { base, cache, encoding: other >= 0 ? "utf8" : "latin1", build: createHash("sha256").update(text).digest("hex").slice(0, 16), kinds: cacheKinds(text, name) };
  });
  writeFileSync(join(root, "dist", `${name}.cjs`), loader(made));
  // The engine's bundles keep the cache of their top level: anything short they could run, they
  // hand to the whole bundle; the first call of each kind leaves its run cache.
  warmCache(join(root, "dist", `${name}.cjs`), made[0].cache, name === "corerun" ? "--version" : "--help");
}

// A cache made right after compiling holds the bundle's top level only: every function the
// modules call as they load (koffi's, valibot's schema builders, the option tables) is then
// compiled from source at every start, ~5 ms of each tool's. This runs the bundle once, to its
// shortest command (--version, --help) in a Node started as the launchers start it (V8 takes
// a cache only from a process with the same flags), and keeps the cache made at its exit, which
// holds what ran. Nothing is run that a start depends on: if it fails, the first cache stays.
function warmCache(script, cache, arg) {
  // The loader hands the script it compiled to the process (codecache.ts reads it the same way).
  const run = `const { writeFileSync } = require("node:fs");
const [script, cache, arg] = process.argv.slice(1);
const exit = process.exit.bind(process);
process.exit = (code) => {
  const c = process[Symbol.for("corerun.codeCache")];
  if (c?.cache === "build") writeFileSync(cache + ".warm", c.script.createCachedData());
  exit(code);
};
process.argv = [process.argv[0], script, arg];
require(script);`;
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith("CORERUN_") || k === "NODE_OPTIONS" || k === "NODE_EXTRA_CA_CERTS") delete env[k];
  const r = spawnSync(process.execPath, ["-e", run, script, cache, arg], { stdio: ["ignore", "ignore", "pipe"], env });
  if (r.status === 0 && existsSync(`${cache}.warm`)) renameSync(`${cache}.warm`, cache);
  else console.warn(`build: ${script} ${arg} did not run (${r.status ?? r.error?.code}): its code cache holds its top level only\n${String(r.stderr ?? "")}`);
}

// The kinds of command whose run cache a bundle keeps: the words its code passes to
// saveCodeCache (libs/cli), in the order they appear. The first is the one a command line that
// names none falls back to: corerun's `run` (`corerun [options] CMD`), a tool's own (corerun-exec's
// exec, named after the tool; its other, oci, is chosen by its --oci option).
function cacheKinds(text, name) {
  const kinds = [...new Set([...text.matchAll(/\bsaveCodeCache\d*\("([a-z]+)"\)/g)].map((m) => m[1]))];
  const first = kinds.includes("run") ? "run" : kinds.find((k) => name.endsWith(`-${k}`));
  return first ? [first, ...kinds.filter((k) => k !== first)] : kinds;
}

// The loader compiles the bundle with the code cache the starts of this kind of command on this
// machine left (NAME.bundle.run-cache.KIND: every function such a start ran; see saveCodeCache
// in libs/cli), else with the build's. The kind is the first word of the command line that
// names one, as itself or as an option (corerun create, start, state, delete; corerun-exec --oci),
// else the first kind (corerun's run, a tool's own); a word taken wrongly (a container's command
// named "state") only costs that start the functions the cache lacks. V8 checks a cache against
// its source's length only, so the run cache starts with a line naming the build it was made from
// (the bundle's sha256), its length and its kind; one of another build or kind, or cut short, is
// not used. The loader opens this directory, so that a command whose kind had no cache can leave
// one at its end, whatever root the process has moved to by then.
// With more bundles (corerun's engine.ts and engine-create.ts), a kind of one of those runs the
// first of them that has it, which may hand the command line to the whole one (`whole()`),
// before it has run anything.
function loader(bundles) {
  const kinds = [...new Set(bundles.flatMap((b) => b.kinds))];
  const spec = bundles.map((b) => ({ base: b.base, encoding: b.encoding, build: b.build, kinds: b.kinds }));
  return `"use strict";
// Generated by tools/build.mjs: runs ${bundles.map((b) => `${b.base}.cjs`).join(" or ")} as Node would, compiled with a V8 code cache:
// BUNDLE.run-cache.KIND, left by the starts of that kind here from this build, or BUNDLE.cache, made by the build.
const { openSync, readFileSync } = require("node:fs");
const { createRequire } = require("node:module");
const { join } = require("node:path");
const { Script } = require("node:vm");
const BUNDLES = ${JSON.stringify(spec)};
const KINDS = ${JSON.stringify(kinds)};
const KIND = process.argv.slice(2).map((word) => (word.startsWith("--") ? word.slice(2) : word)).find((word) => KINDS.includes(word)) ?? KINDS[0];
const read = (name) => {
  try {
    return readFileSync(join(__dirname, name));
  } catch {
    return undefined;
  }
};
let dir;
try {
  dir = openSync(__dirname, "r");
} catch {
  // not readable: no run cache is left
}
const run = (b, whole) => {
  const bundle = join(__dirname, b.base + ".cjs");
  // The bundle is the function expression itself (see HEAD in tools/build.mjs).
  const source = readFileSync(bundle, b.encoding);
  // "corerun-code-cache BUILD LENGTH KIND\\n" then V8's data.
  const file = KIND === undefined ? undefined : read(b.base + ".run-cache." + KIND);
  const nl = file ? file.indexOf(10) : -1;
  const head = nl > 0 ? file.subarray(0, Math.min(nl, 256)).toString("latin1").split(" ") : [];
  const learnt = head.length === 4 && head[0] === "corerun-code-cache" && head[1] === b.build && Number(head[2]) === file.length - nl - 1 && head[3] === KIND ? file.subarray(nl + 1) : undefined;
  let script = learnt && new Script(source, { filename: bundle, cachedData: learnt });
  let cache = "run";
  if (!script || script.cachedDataRejected) {
    const built = read(b.base + ".cache");
    script = new Script(source, { filename: bundle, cachedData: built });
    cache = built === undefined ? "none" : script.cachedDataRejected ? "rejected" : "build";
  }
  process[Symbol.for("corerun.codeCache")] = { cache, script, dir, name: b.base + ".run-cache", build: b.build, kind: KIND, whole };
  script.runInThisContext()(module.exports, createRequire(bundle), module, bundle, __dirname);
};
const engine = BUNDLES.slice(1).find((b) => b.kinds.includes(KIND));
if (engine) run(engine, () => run(BUNDLES[0]));
else run(BUNDLES[0]);
`;
}

// The native parts (libs/syscall/native/compile.mjs): a C compiler and, for the static ones, libc.a.
const nativeFailed = compileNative(join(root, "dist"));
if (nativeFailed) {
  console.error(`build: ${nativeFailed === "no C compiler" ? "no C compiler; install one: apt-get install gcc libc6-dev" : nativeFailed}`);
  process.exit(1);
}
console.log(`built ${names.map((n) => `dist/${n}.cjs`).join(" ")} dist/corerun-exe dist/libcorerun.so dist/corerun-monitor dist/corerun-init`);
