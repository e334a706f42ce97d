import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { cgroupManager } from "@corerun/cgroup";
import type { RunConfig } from "./args.ts";
import { execArgs, mountArgs, namespacesFor } from "./steps.ts";

/** Quotes a word for a POSIX shell. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

const q = (words: readonly string[]) => words.map((w) => (w.startsWith("$") || w.startsWith('"$') ? w : shellQuote(w))).join(" ");

/**
 * The steps of `corerun run` as a script of corerun's own tools, for a user to read, copy and
 * change. corerun itself runs corerun-ns with --detach and reaps the container as a child
 * subreaper; the script keeps corerun-ns in the foreground so that `wait` returns its status.
 */
export function renderScript(cfg: RunConfig, binDir: string, hostname: string | undefined): string {
  const bin = (name: string) => `"$bin/${name}"`;
  const name = randomBytes(6).toString("hex");
  const cgroupDirs = cgroupManager({ name, parent: cfg.cgroupParent }).dirs();
  const exec = execArgs(cfg, { dir: "$sync", hostname: hostname ?? name, cgroupDirs }).map((w) => (w === "$sync" ? '"$sync"' : w));
  const limits = [
    ...(cfg.limits.memory ? ["--memory", `${cfg.limits.memory}b`] : []),
    ...(cfg.limits.cpu ? ["--cpu", String((cfg.limits.cpu.quota / cfg.limits.cpu.period) * 100)] : []),
    ...(cfg.limits.pids ? ["--pids", String(cfg.limits.pids)] : []),
    "--cgroup-parent", cfg.cgroupParent,
  ];
  const mount = mountArgs(cfg, '"$(cat "$sync/pid")"', "$sync").map((w) => (w === "$sync" ? '"$sync"' : w));
  return `#!/usr/bin/env bash
# What \`corerun\` does for this container, as a chain of its tools.
set -euo pipefail
bin=${shellQuote(binDir)}
sync=$(mktemp -d) && [ -d "$sync" ]
trap 'rm -rf "\${sync:?}"; ${bin("corerun-cgroup")} rm -f ${name} --cgroup-parent ${shellQuote(cfg.cgroupParent)}' EXIT
mkfifo "$sync/ready" "$sync/go"

# 0. The container's cgroup, with its limits; corerun-exec joins it right before the exec.
${bin("corerun-cgroup")} create ${name} ${q(limits)} > /dev/null

# 1. New namespaces; corerun-exec waits in them as PID 1 until it is told to go.
${bin("corerun-ns")} --ns ${namespacesFor(cfg)} --pid-file "$sync/pid" -- \\
  ${bin("corerun-exec")} ${q(exec)} &
ns=$!
until [ -s "$sync/pid" ]; do sleep 0.01; done

# 2. Its filesystem: rootfs, /dev, /sys, volumes, then pivot_root once it is ready.
${bin("corerun-mount")} ${q(mount)}

# 3. Go: corerun-exec mounts /proc, sets the hostname and execs the command.
echo '{"t":"go"}' > "$sync/go"
wait "$ns"
`;
}

export function binDirOf(dist: string): string {
  return join(dist, "..", "bin");
}
