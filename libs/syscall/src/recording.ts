import type { Syscall } from "./types.ts";

export interface RecordedCall {
  name: keyof Syscall;
  args: unknown[];
}

/**
 * A Syscall that records each call and returns a neutral value (0, or null for waitid).
 * `fail` makes the named call throw the given error instead, to test error paths.
 */
export function recordingSyscall(fail: Partial<Record<keyof Syscall, Error>> = {}): { sys: Syscall; calls: RecordedCall[] } {
  const calls: RecordedCall[] = [];
  const sys = new Proxy({} as Syscall, {
    get(_target, prop: string) {
      return (...args: unknown[]) => {
        calls.push({ name: prop as keyof Syscall, args });
        const err = fail[prop as keyof Syscall];
        if (err) throw err;
        return prop === "waitid" ? null : 0;
      };
    },
  });
  return { sys, calls };
}
