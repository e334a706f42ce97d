import { check, nativeFn } from "./_libc.ts";
import { SyscallError } from "./error.ts";

/**
 * Writes `data` to each fd in order on a thread of the native helper's while the caller goes on,
 * for a write that blocks in the kernel: joining a cgroup through cgroup.procs waits for an RCU
 * grace period. The returned function waits for the writes and throws the first failure. Made
 * before the caller's root moves (the helper is loaded from the host's path); the fds stay open.
 */
export function writeInBackground(fds: readonly number[], data: string): () => void {
  const start = nativeFn("int corerun_write_start(const int *fds, int n, const char *data)");
  const wait = nativeFn("int corerun_write_wait(_Out_ int *err)");
  check(start(Int32Array.from(fds), fds.length, data), "pthread_create");
  return () => {
    const err = new Int32Array(1);
    const failed = wait(err);
    if (failed >= 0) throw new SyscallError({ syscall: "write", errno: err[0]!, path: `fd ${fds[failed] ?? "?"}` });
  };
}
