export * from "./constants.ts";
export { SyscallError, isErrno, type SyscallErrorInit } from "./error.ts";
export type { Syscall, WaitResult } from "./types.ts";
export { linuxSyscall } from "./linux.ts";
export { recordingSyscall, type RecordedCall } from "./recording.ts";
export { NAMESPACES, namespaceFlags, inNetworkNamespace, inNamespaces, canJoinByPath, type NamespaceName } from "./namespaces.ts";
export * from "./netlink.ts";
export { startInNamespaces, envp, type StartOptions, type IdMapText } from "./spawn.ts";
export { koffiModulesDir } from "./_libc.ts";
