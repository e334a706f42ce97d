/**
 * A value built on its first use instead of as its module loads. A bundle runs every module's
 * top level as a tool starts: the valibot schemas of the state file, the OCI config and the
 * seccomp profiles are ~100 calls into valibot that cost ~2 ms of each tool's load, on the start's
 * critical path, when most commands use a few of them or none (corerun-exec and corerun-mount
 * run from argv; only their --oci form reads a config).
 *
 * The value stands in for the object itself (a proxy that builds it and forwards every operation
 * to it), so that a schema made lazy is used, nested and typed as before (v.parse(State, x),
 * v.array(Volume), v.InferOutput<typeof State>). Only objects: a function or a primitive cannot be
 * stood in for this way.
 */
export function lazy<T extends object>(make: () => T): T {
  let value: T | undefined;
  const get = () => (value ??= make());
  return new Proxy({} as T, {
    get: (_, key) => Reflect.get(get(), key),
    has: (_, key) => Reflect.has(get(), key),
    ownKeys: () => Reflect.ownKeys(get()),
    getOwnPropertyDescriptor: (_, key) => {
      const d = Reflect.getOwnPropertyDescriptor(get(), key);
      // A proxy may not report a property its (empty) target lacks as non-configurable.
      return d && { ...d, configurable: true };
    },
    getPrototypeOf: () => Reflect.getPrototypeOf(get()),
    set: () => false,
    defineProperty: () => false,
    deleteProperty: () => false,
  });
}
