import { closeSync, openSync } from "node:fs";
import { UsageError } from "@corerun/cli";
import {
  checkNotHostNetns, etcFilesFor, etcPaths, listNetworks, removeNetworks, setupBridge, setupNone, teardown, writeEtcFiles,
  type NetnsRef, type NetworkInfo, type SetupResult, type TeardownResult,
} from "@corerun/net";
import type { EtcConfig, SetupConfig } from "./args.ts";

/**
 * Opens the target's network namespace once; the fd pins it for the whole setup, so a process
 * that exits meanwhile cannot make the veth land in a namespace that is being torn down.
 */
export function openNetns(target: SetupConfig["target"]): NetnsRef {
  const path = "pid" in target ? `/proc/${target.pid}/ns/net` : target.path;
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const what = "pid" in target ? `--pid ${target.pid}: no such process` : `--netns ${path}: no such file`;
    if (code === "ENOENT" || code === "ESRCH") throw new UsageError(what);
    throw new Error(`cannot open ${path}: ${code ?? (err as Error).message}`);
  }
  const ref = { fd, path };
  try {
    checkNotHostNetns(ref);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return ref;
}

export function setup(cfg: SetupConfig, log: (m: string) => void): SetupResult {
  const netns = openNetns(cfg.target);
  try {
    if (cfg.mode === "none") return setupNone({ id: cfg.id, netns, hostname: cfg.hostname, etcDir: cfg.etcDir, extras: cfg.extras });
    return setupBridge({
      root: cfg.root, id: cfg.id, netns, network: cfg.network, subnet: cfg.subnet, ports: cfg.ports,
      hostname: cfg.hostname, name: cfg.name, etcDir: cfg.etcDir, extras: cfg.extras, log, prefer: cfg.prefer, ip: cfg.ip, aliases: cfg.aliases,
    });
  } finally {
    closeSync(netns.fd);
  }
}

export function remove(opts: { root: string; id: string }, log: (m: string) => void): TeardownResult {
  return teardown({ ...opts, log });
}

export function writeEtc(cfg: EtcConfig): { id: string; etc: ReturnType<typeof etcPaths> } {
  const files = etcFilesFor({ root: cfg.root, id: cfg.id, hostname: cfg.hostname, name: cfg.name, extras: cfg.extras, ...cfg.mode });
  writeEtcFiles(cfg.etcDir, files);
  return { id: cfg.id, etc: etcPaths(cfg.etcDir) };
}

export function networkTable(networks: NetworkInfo[]): string {
  const rows = [["NAME", "BRIDGE", "SUBNET", "GATEWAY", "CONTAINERS"], ...networks.map((n) => [
    n.name, n.present ? n.bridge : `${n.bridge} (absent)`, n.subnet, n.gateway, String(n.containers.length),
  ])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)) + 2);
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("")).join("\n") + "\n";
}

export { listNetworks, removeNetworks };


