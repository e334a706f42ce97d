export { Spec, Process, Mount, Resources, HOOK_NAMES, NAMESPACE_TYPES, RLIMITS, SpecError, hookArgv, hookEnv, OCI_OPTION_FIX, parseOci, parseSpec, parseSpecText, readSpec, readSpecText, type Hook, type Hooks, type HookName, type NamespaceType, type Rlimit, type Device, type Resources as ResourcesConfig } from "./spec.ts";
export { planMount, bindRemountFlags, MOUNT_OPTIONS, MOUNT_TYPES, MOUNT_FLAGS, type MountPlan } from "./mounts.ts";
export { planNamespaces, planCapabilities, planCgroupPath, planLimits, planMounts, rootPath, type NamespacePlan, type CapabilityPlan } from "./convert.ts";
