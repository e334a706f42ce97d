/** Usage of one cgroup; null where the host has no controller to tell. */
export interface CgroupStats {
  memory: {
    /** Bytes charged now (memory.current / memory.usage_in_bytes). */
    current: number | null;
    /** Most bytes ever charged (memory.peak / memory.max_usage_in_bytes). */
    peak: number | null;
    limit: number | null;
  };
  cpu: {
    /** CPU time used by every task, alive or gone, in microseconds. */
    usageUsec: number | null;
    /** The bandwidth limit in percent of one core. */
    limitPercent: number | null;
  };
  pids: {
    /** Tasks (processes and threads) counted by the pids controller. */
    current: number | null;
    limit: number | null;
  };
  /** Bytes read from and written to block devices (the blkio or io controller's counts). */
  blockIO: { readBytes: number; writeBytes: number } | null;
  /** Processes the kernel's OOM killer killed in this cgroup. */
  oomKills: number | null;
  /** Processes in the cgroup now (cgroup.procs). */
  processes: number;
}

export function emptyStats(): CgroupStats {
  return {
    memory: { current: null, peak: null, limit: null },
    cpu: { usageUsec: null, limitPercent: null },
    pids: { current: null, limit: null },
    blockIO: null,
    oomKills: null,
    processes: 0,
  };
}
