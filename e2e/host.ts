/**
 * What a container can leave on the host, looked up for one test's scope (its state root, cgroup
 * parent, bridge, published port and command-line marker): the fault walk and the detached
 * container tests check the host against these after every way a container can end.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { hostMountsUnder, processesWith, run, toolsStartedBy } from "./helpers.ts";

export interface HostScope {
  root: string;
  /** The test's own --cgroup-parent. */
  parent: string;
  /** The test's own bridge (-N), if it uses one. */
  bridge?: string | undefined;
  /** The test's published host port, if any. */
  port?: number | undefined;
  /** Strings on the command lines of the test's processes (its root is always one). */
  markers: readonly string[];
  /** Paths no mount may mention afterwards (the root always). */
  mounts?: readonly string[];
  /** Paths that must not exist afterwards (mount points made in a rootfs). */
  absent?: readonly string[];
}

export function hierarchies(): string[] {
  return readdirSync("/sys/fs/cgroup").map((h) => join("/sys/fs/cgroup", h));
}

/** Container cgroups under a cgroup parent, in every hierarchy. */
export function cgroupsUnder(parent: string): string[] {
  return hierarchies().flatMap((h) => {
    const dir = join(h, parent);
    return existsSync(dir) ? readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => join(dir, d.name)) : [];
  });
}

/**
 * The state root may keep only what outlives containers: locks, the registries, networks, the
 * runtime copy, compiled seccomp filters and the mark that OCI containers' ids are derived.
 */
export function stateLeft(root: string): string[] {
  const keep = new Set(["names.lock", "mountpoints.json", "networks", "runtime", "oci-ids"]);
  return existsSync(root) ? readdirSync(root).filter((n) => !keep.has(n)) : [];
}

export function leases(root: string): unknown[] {
  const path = join(root, "networks/networks.json");
  return existsSync(path) ? (JSON.parse(readFileSync(path, "utf8")) as { leases: unknown[] }).leases : [];
}

/** Published-port rules (DNAT) in any nftables table that mention a port. */
export function natRules(port: number): string[] {
  const r = run("nft", ["list", "ruleset"]);
  return r.stdout.split("\n").filter((l) => l.includes(`dport ${port} `));
}

/** Ports of a bridge (its veths); none once every container is gone. */
export function bridgePorts(bridge: string): string[] {
  const dir = `/sys/class/net/${bridge}/brif`;
  return existsSync(dir) ? readdirSync(dir) : [];
}

/** Polls for up to 3 s: a killed corerun's helpers die with it, within a second. */
export async function settle(check: () => unknown[]): Promise<unknown[]> {
  let left = check();
  for (let i = 0; i < 30 && left.length; i++) {
    await new Promise((r) => setTimeout(r, 100));
    left = check();
  }
  return left;
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z ");
  } catch {
    return false;
  }
}

/** Files under the root that some process holds a lock on (/proc/locks names them by inode). */
export function locksHeld(root: string): string[] {
  const held = new Set(readFileSync("/proc/locks", "utf8").split("\n").map((l) => l.split(/\s+/)[5]?.split(":")[2]).filter(Boolean));
  const files = (readdirSync(root, { recursive: true }) as string[]).map((f) => join(root, f));
  return files.filter((f) => {
    try {
      return held.has(String(statSync(f).ino));
    } catch {
      return false;
    }
  });
}

export async function assertHostClean(scope: HostScope, pids: readonly number[], what: string): Promise<void> {
  const { root } = scope;
  assert.deepEqual(await settle(() => [root, ...scope.markers].flatMap((m) => processesWith(m))), [], `${what}: a process is left`);
  assert.deepEqual(pids.filter(alive), [], `${what}: a recorded process is alive`);
  assert.deepEqual(await settle(() => toolsStartedBy(pids)), [], `${what}: a tool started by corerun is left`);
  assert.deepEqual(stateLeft(root), [], `${what}: state is left`);
  assert.deepEqual(locksHeld(root), [], `${what}: a lock is held`);
  assert.deepEqual(cgroupsUnder(scope.parent), [], `${what}: a cgroup is left`);
  assert.deepEqual([root, ...(scope.mounts ?? [])].flatMap((m) => hostMountsUnder(m)), [], `${what}: a mount is left`);
  for (const p of scope.absent ?? []) assert.equal(existsSync(p), false, `${what}: ${p} is left`);
  if (scope.bridge) assert.deepEqual(bridgePorts(scope.bridge), [], `${what}: a veth is left on ${scope.bridge}`);
  assert.deepEqual(leases(root), [], `${what}: a lease is left`);
  if (scope.port !== undefined) assert.deepEqual(natRules(scope.port), [], `${what}: a published-port rule is left`);
}
