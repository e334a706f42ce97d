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

/**
 * Times every call of `sys` in place (callers hold the object itself): `onCall` gets the call's
 * name, arguments, start and duration in µs of CLOCK_MONOTONIC, also when it throws. The trace
 * turns the slow ones into spans; nothing is wrapped unless asked.
 */
export function instrumentSyscalls(sys: Syscall, onCall: (name: keyof Syscall, args: unknown[], startUs: number, durUs: number) => void): void {
  const table = sys as unknown as Record<string, unknown>;
  for (const name of Object.keys(table)) {
    const f = table[name];
    if (typeof f !== "function") continue;
    table[name] = function (this: unknown, ...args: unknown[]) {
      const start = process.hrtime.bigint();
      try {
        return (f as (...a: unknown[]) => unknown).apply(this, args);
      } finally {
        const end = process.hrtime.bigint();
        onCall(name as keyof Syscall, args, Number(start) / 1000, Number(end - start) / 1000);
      }
    };
  }
}
