export {
  detectCgroupSetup, discoverLayout, parseV1Mounts, readHostCgroupMounts, mountLayout, CGROUP2_SUPER_MAGIC, CGROUP_SUPER_MAGIC, TMPFS_MAGIC, DEFAULT_ROOT, DEFAULT_MOUNTINFO,
  type CgroupSetup, type CgroupLayout, type LayoutOptions, type HostCgroupMounts, type MountLayout,
} from "./detect.ts";
export { nodeCgroupFs, type CgroupFs } from "./fs.ts";
export {
  parseLimits, parseBytes, mergeLimits, devNumbers, deviceRuleText, DEFAULT_DEVICE_RULES, dockerDeviceRules, parseDeviceCgroupRule, parseMemory, parseCpuPercent, parsePids, describeLimits, formatBytes, blockDevice, expandIdList, MEMORY_FLOOR, CPU_PERIOD, CPU_MIN_QUOTA,
  type Limits, type LimitInput, type LimitHost, type DeviceRule, type BlockIO, type DeviceRate,
} from "./limits.ts";
export {
  cgroupManager, oomReport, listCgroups, validateName, normalizeParent, DEFAULT_PARENT, type CgroupManager, type CgroupOptions, type LimitController,
} from "./manager.ts";
export type { CgroupStats } from "./stats.ts";
export { attachDeviceFilter, deviceFilterProgram, effectiveRules } from "./devicefilter.ts";
export { cloneJoin, createForClone, EARLY_JOIN_MEMORY, EARLY_JOIN_QUOTA, joinCgroups, joinCommand, openCgroupProcs, joinCgroupFds, startJoinCgroupFds, JOIN_SCRIPT } from "./join.ts";
export { cgroupTree, mountCgroupTree, type CgroupTree } from "./mount.ts";
export { RESOURCE_ARGS, RESOURCE_OPTIONS, resourceInput, limitArgv, devicePath } from "./args.ts";
