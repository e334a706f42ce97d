import { CLONE_NEWCGROUP, CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWUTS } from "./constants.ts";

export type NamespaceName = "pid" | "mount" | "uts" | "ipc" | "net" | "cgroup";

/**
 * Namespace names as users write them, their clone flag and their /proc/PID/ns entry. Order
 * matters when entering from outside: mount comes last because setns(CLONE_NEWNS) changes the
 * root, after which the other /proc/PID/ns paths would resolve in the container's tree.
 */
export const NAMESPACES: readonly { name: NamespaceName; clone: number; proc: string }[] = [
  { name: "pid", clone: CLONE_NEWPID, proc: "pid" },
  { name: "uts", clone: CLONE_NEWUTS, proc: "uts" },
  { name: "ipc", clone: CLONE_NEWIPC, proc: "ipc" },
  { name: "net", clone: CLONE_NEWNET, proc: "net" },
  { name: "cgroup", clone: CLONE_NEWCGROUP, proc: "cgroup" },
  { name: "mount", clone: CLONE_NEWNS, proc: "mnt" },
];

export function namespaceFlags(names: readonly NamespaceName[]): number {
  return NAMESPACES.filter((n) => names.includes(n.name)).reduce((acc, n) => acc | n.clone, 0);
}
