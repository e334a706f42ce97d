/**
 * A throwaway user for the tests that run corerun rootless. The user gets its own copy of
 * corerun's built files, laid out as a checkout (bin/corerun, dist, the native modules, and a
 * build/rootfs it owns), under a directory every user can enter: the checkout itself may sit
 * under a directory only root enters, and root's rootfs has directories only root reads.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { appendFileSync, chmodSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { busyboxRootfs, REPO, run, type Result } from "./helpers.ts";

/** The subordinate range a test may give its user: far above the ids any host hands out. */
export const SUBID_START = 2000000000;

export interface RootlessUser {
  name: string;
  uid: number;
  /** The user's copy of the checkout; its store is under base/run/corerun. */
  base: string;
  /** bin/corerun as the user, with XDG_RUNTIME_DIR base/run. */
  corerun(args: string[]): Result;
  /** The same in the background (stdio ignored), for a container that must be running. */
  spawnCorerun(args: string[]): ChildProcess;
  /** A bash script (-euo pipefail) as the user in base, with PATH and XDG_RUNTIME_DIR alone as its environment. */
  bash(script: string): Result;
  /** Gives the user SUBID_START:65536 in /etc/subuid and /etc/subgid, or takes exactly that line away. */
  subids(on: boolean): void;
  /** Ends the user's processes, deletes the user and its lines, and removes base (files of subordinate ids too). */
  remove(): void;
}

/** Removes the lines of a file that start with a prefix, whatever else the file holds. */
function removeLines(path: string, keep: (line: string) => boolean): void {
  if (!existsSync(path)) return;
  const lines = readFileSync(path, "utf8").split("\n");
  const kept = lines.filter(keep);
  if (kept.length !== lines.length) writeFileSync(path, kept.join("\n"));
}

/** A new user named `${prefix}${pid}`, without subordinate ranges (useradd may give it some). */
export function makeRootlessUser(prefix: string): RootlessUser {
  const name = `${prefix}${process.pid % 100000}`;
  const base = mkdtempSync(join(tmpdir(), "corerun-rootless-"));
  const line = `${name}:${SUBID_START}:65536`;
  const remove = () => {
    for (const f of ["/etc/subuid", "/etc/subgid"]) removeLines(f, (l) => !l.startsWith(`${name}:`));
    run("pkill", ["-KILL", "-u", name]);
    run("userdel", [name]);
    // What the user's containers and imports wrote under subordinate ids is removed here by root.
    if (base.startsWith(join(tmpdir(), "corerun-rootless-"))) rmSync(base, { recursive: true, force: true });
  };
  try {
    chmodSync(base, 0o755);
    const made = run("useradd", ["--no-create-home", "--shell", "/usr/sbin/nologin", name]);
    if (made.code !== 0) throw new Error(`useradd ${name}: ${made.stderr}`);
    for (const f of ["/etc/subuid", "/etc/subgid"]) removeLines(f, (l) => !l.startsWith(`${name}:`));
    cpSync(join(REPO, "bin/corerun"), join(base, "bin/corerun"));
    for (const f of readdirSync(join(REPO, "dist"))) cpSync(join(REPO, "dist", f), join(base, "dist", f));
    for (const m of ["koffi", "@koromix"]) cpSync(join(REPO, "node_modules", m), join(base, "node_modules", m), { recursive: true });
    cpSync(busyboxRootfs(), join(base, "build/rootfs"), { recursive: true, verbatimSymlinks: true });
    run("chown", ["-R", `${name}:${name}`, join(base, "build/rootfs")]);
    run("install", ["-d", "-o", name, "-g", name, "-m", "0700", join(base, "run")]);
  } catch (err) {
    remove();
    throw err;
  }
  const uid = Number(run("id", ["-u", name]).stdout.trim());
  const env = ["env", "-i", `PATH=${process.env.PATH}`, `XDG_RUNTIME_DIR=${join(base, "run")}`];
  return {
    name,
    uid,
    base,
    corerun: (args) => run("runuser", ["-u", name, "--", ...env, join(base, "bin/corerun"), ...args], { cwd: base }),
    spawnCorerun: (args) => spawn("runuser", ["-u", name, "--", ...env, join(base, "bin/corerun"), ...args], { cwd: base, stdio: "ignore" }),
    bash: (script) => run("runuser", ["-u", name, "--", ...env, "bash", "--norc", "--noprofile", "-euo", "pipefail", "-c", script], { cwd: base }),
    subids(on) {
      for (const f of ["/etc/subuid", "/etc/subgid"]) {
        if (on) appendFileSync(f, `${line}\n`);
        else removeLines(f, (l) => l !== line);
      }
    },
    remove,
  };
}
