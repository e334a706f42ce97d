/**
 * `corerun stats`: live usage of running containers as `docker stats` shows it: CPU % (of one
 * core, from the cgroup's CPU time between two samples), memory use and limit (the host's memory
 * when unlimited), network I/O (the container's network namespace, from /proc/PID/net/dev), block
 * I/O (the cgroup's blkio or io counts) and its task count. A table refreshed in place on a terminal, one table with --no-stream, or one
 * JSON object per container and sample with --json.
 */
import { readFileSync } from "node:fs";
import { totalmem } from "node:os";
import { defineTool, formatTable, UsageError, writeOut } from "@corerun/cli";
import { isAlive, readStates, stateRoot, type State } from "@corerun/state";
import { liveStatus, mustFind, recordedCgroup } from "./oci.ts";
import { rootArg } from "./oci-calls.ts";

/** Time between two samples: the CPU % is the CPU time used over it. */
const INTERVAL_MS = 1000;

export interface Sample {
  id: string;
  name: string;
  /** Monotonic time of the sample, in microseconds. */
  at: number;
  cpuUsec: number | null;
  memory: number | null;
  memoryLimit: number | null;
  pids: number | null;
  /** Bytes received and sent on every interface but lo; undefined on the host's network. */
  net: { rx: number; tx: number } | undefined;
  /** Bytes read from and written to block devices; null where no blkio or io controller counts them. */
  block: { read: number; write: number } | null;
}

export interface StatsRow {
  id: string;
  name: string;
  cpuPercent: number | null;
  memory: number | null;
  memoryLimit: number;
  memoryPercent: number | null;
  netRx: number | null;
  netTx: number | null;
  blockRead: number | null;
  blockWrite: number | null;
  pids: number | null;
}

/** /proc/net/dev's received and transmitted bytes, summed over every interface but lo. */
export function parseNetDev(text: string): { rx: number; tx: number } {
  let rx = 0;
  let tx = 0;
  for (const line of text.split("\n").slice(2)) {
    const m = /^\s*([^:\s]+):\s*(.*)$/.exec(line);
    if (!m || m[1] === "lo") continue;
    const f = m[2]!.trim().split(/\s+/).map(Number);
    rx += f[0] ?? 0;
    tx += f[8] ?? 0;
  }
  return { rx, tx };
}

function sample(s: State): Sample | undefined {
  const pid = s.init?.pid;
  if (pid === undefined || !isAlive(s.init)) return undefined;
  const cg = s.cgroup ? recordedCgroup(s.cgroup) : undefined;
  const st = cg?.exists() ? cg.stats() : undefined;
  let net: Sample["net"];
  if (s.config.network.mode !== "host") {
    try {
      net = parseNetDev(readFileSync(`/proc/${pid}/net/dev`, "utf8"));
    } catch {
      return undefined;
    }
  }
  return {
    id: s.id, name: s.config.name ?? "-", at: Number(process.hrtime.bigint() / 1000n),
    cpuUsec: st?.cpu.usageUsec ?? null, memory: st?.memory.current ?? null, memoryLimit: st?.memory.limit ?? null,
    pids: st ? (st.pids.current ?? st.processes) : null, net,
    block: st?.blockIO ? { read: st.blockIO.readBytes, write: st.blockIO.writeBytes } : null,
  };
}

/** One row per container sampled both times: CPU % over the time between. */
export function statsRows(before: readonly Sample[], after: readonly Sample[], hostMemory = totalmem()): StatsRow[] {
  return after.flatMap((b) => {
    const a = before.find((x) => x.id === b.id);
    if (!a) return [];
    const cpu = a.cpuUsec !== null && b.cpuUsec !== null && b.at > a.at ? ((b.cpuUsec - a.cpuUsec) / (b.at - a.at)) * 100 : null;
    const limit = b.memoryLimit !== null && b.memoryLimit < hostMemory ? b.memoryLimit : hostMemory;
    return [{
      id: b.id, name: b.name, cpuPercent: cpu === null ? null : Math.max(0, cpu), memory: b.memory, memoryLimit: limit,
      memoryPercent: b.memory === null ? null : (b.memory / limit) * 100, netRx: b.net?.rx ?? null, netTx: b.net?.tx ?? null,
      blockRead: b.block?.read ?? null, blockWrite: b.block?.write ?? null, pids: b.pids,
    }];
  });
}

/** Docker's units: binary for memory (MiB), decimal for network and block I/O bytes (MB). */
export function bytes(n: number | null, binary: boolean): string {
  if (n === null) return "-";
  const base = binary ? 1024 : 1000;
  const units = binary ? ["B", "KiB", "MiB", "GiB", "TiB"] : ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  let v = n;
  while (v >= base && i < units.length - 1) {
    v /= base;
    i++;
  }
  // Three significant digits, as Docker's go-units prints them.
  return `${Number(v.toPrecision(3))}${units[i]}`;
}

const percent = (p: number | null) => (p === null ? "-" : `${p.toFixed(2)}%`);

export function statsTable(rows: readonly StatsRow[]): string {
  return formatTable([
    ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"],
    ...rows.map((r) => [
      r.id, r.name, percent(r.cpuPercent), `${bytes(r.memory, true)} / ${bytes(r.memoryLimit, true)}`, percent(r.memoryPercent),
      r.netRx === null ? "-" : `${bytes(r.netRx, false)} / ${bytes(r.netTx, false)}`,
      r.blockRead === null ? "-" : `${bytes(r.blockRead, false)} / ${bytes(r.blockWrite, false)}`, r.pids === null ? "-" : String(r.pids),
    ]),
  ]);
}

/** The containers to watch: the named ones (each must run), or every running one. */
function watched(root: string, refs: readonly string[]): State[] {
  if (!refs.length) return readStates(root).filter((s) => liveStatus(s) === "running");
  return refs.map((ref) => {
    const s = mustFind(root, ref);
    if (liveStatus(s) !== "running") throw new UsageError(`container "${ref}" is not running (${liveStatus(s)}); stats shows running containers`);
    return s;
  });
}

export const statsTool = defineTool({
  name: "corerun stats",
  description: "Show running containers' CPU %, memory use and limit, network and block I/O and task count, live as docker stats.",
  usage: "[options] [NAME|ID...]",
  args: {
    ...rootArg,
    "no-stream": { type: "boolean", description: "print one table (two samples a second apart) and exit" },
    json: { type: "boolean", description: "one JSON object per container and sample instead of a table" },
  },
  tail: "command",
  notes: [
    "CPU % is the container's CPU time over the last second, in percent of one core (200% = two\ncores busy). MEM is the cgroup's charged memory against its limit, or the host's memory when it\nhas none. NET I/O is what the container's network namespace received and sent on every\ninterface but lo (- on the host's network). BLOCK I/O is what its cgroup read from and wrote to\nblock devices. PIDS counts its tasks (processes and threads).",
    "Without --no-stream the table is refreshed every second (in place on a terminal) until\ninterrupted; named containers that end leave it, and it ends when none is left.",
  ],
  examples: ["sudo corerun stats", "sudo corerun stats --no-stream web", "sudo corerun stats --no-stream --json"],
  async run(ctx) {
    const root = stateRoot(ctx.values.root?.at(-1));
    const refs = ctx.tail;
    const stream = !(ctx.flags["no-stream"] ?? false);
    const json = ctx.flags.json ?? false;
    const tty = process.stdout.isTTY === true;
    let interrupted = false;
    process.once("SIGINT", () => (interrupted = true));
    let before = watched(root, refs).flatMap((s) => sample(s) ?? []);
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, INTERVAL_MS));
      if (interrupted) return 0;
      const states = refs.length ? readStates(root).filter((s) => before.some((b) => b.id === s.id)) : watched(root, []);
      const after = states.flatMap((s) => sample(s) ?? []);
      const rows = statsRows(before, after);
      if (json) for (const r of rows) writeOut(`${JSON.stringify(r)}\n`);
      else writeOut(`${stream && tty ? "\x1b[2J\x1b[H" : ""}${statsTable(rows)}`);
      if (!stream || (refs.length && !after.length)) return 0;
      before = after;
    }
  },
});
