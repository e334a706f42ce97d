import { closeSync, openSync } from "node:fs";
import type { Syscall } from "./types.ts";
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

/**
 * Runs fn with Node's main thread in another network namespace (a pid's, a pidfd's, or a
 * namespace file such as /run/netns/NAME), then moves it back. setns moves only the calling thread: fn must be
 * synchronous. A socket or a child created inside stays in that namespace.
 */
export function inNetworkNamespace<T>(sys: Syscall, target: number | string | { pidfd: number }, fn: () => T): T {
  const own = openSync("/proc/self/ns/net", "r");
  let fd: number;
  try {
    fd = typeof target === "number" ? sys.pidfdOpen(target) : typeof target === "string" ? openSync(target, "r") : target.pidfd;
  } catch (err) {
    closeSync(own);
    throw err;
  }
  const label = typeof target === "number" ? `pid ${target}` : typeof target === "string" ? target : "pidfd";
  try {
    sys.setns(fd, CLONE_NEWNET, label);
    try {
      return fn();
    } finally {
      sys.setns(own, CLONE_NEWNET, "/proc/self/ns/net");
    }
  } finally {
    // A pidfd given by the caller stays the caller's to close.
    if (typeof target !== "object") closeSync(fd);
    closeSync(own);
  }
}

/** The clone flag of each namespace Node's main thread can join and leave again by path. */
const JOINABLE: Record<string, { flag: number; proc: string }> = {
  pid: { flag: CLONE_NEWPID, proc: "pid_for_children" },
  uts: { flag: CLONE_NEWUTS, proc: "uts" },
  ipc: { flag: CLONE_NEWIPC, proc: "ipc" },
  network: { flag: CLONE_NEWNET, proc: "net" },
  cgroup: { flag: CLONE_NEWCGROUP, proc: "cgroup" },
};

/** Whether Node's main thread can join a namespace of this type (the user and mount ones it cannot). */
export function canJoinByPath(type: string): boolean {
  return type in JOINABLE;
}

/**
 * Runs fn with Node's main thread in the namespaces at these paths (an OCI bundle's
 * linux.namespaces[].path), or in those of the processes these pidfds hold (another container's
 * first process, checked against its start time), then moves it back. Joining a PID namespace
 * sets the namespace of the thread's next children, not its own: a child cloned inside fn is born
 * in it. fn must be synchronous (only the main thread moves). A pidfd stays the caller's.
 */
export function inNamespaces<T>(sys: Syscall, joins: readonly ({ type: string; path: string } | { type: string; pidfd: number; label: string })[], fn: () => T): T {
  const opened: { own: number; target: number; flag: number; path: string; proc: string; close: boolean }[] = [];
  try {
    for (const j of joins) {
      const ns = JOINABLE[j.type];
      if (!ns) throw new Error(`the ${j.type} namespace cannot be joined by path here`);
      const own = openSync(`/proc/thread-self/ns/${ns.proc}`, "r");
      let target: number;
      try {
        target = "pidfd" in j ? j.pidfd : openSync(j.path, "r");
      } catch (err) {
        closeSync(own);
        throw new Error(`cannot open the ${j.type} namespace ${"path" in j ? j.path : ""} (${(err as NodeJS.ErrnoException).code})`);
      }
      opened.push({ own, target, flag: ns.flag, path: "pidfd" in j ? j.label : j.path, proc: ns.proc, close: !("pidfd" in j) });
    }
    const entered: typeof opened = [];
    try {
      for (const o of opened) {
        sys.setns(o.target, o.flag, o.path);
        entered.push(o);
      }
      return fn();
    } finally {
      for (const o of entered.reverse()) sys.setns(o.own, o.flag, `/proc/thread-self/ns/${o.proc}`);
    }
  } finally {
    for (const o of opened) {
      closeSync(o.own);
      if (o.close) closeSync(o.target);
    }
  }
}
