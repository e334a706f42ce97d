import * as v from "valibot";
import { lazy } from "@corerun/cli";

/**
 * The runtime spec's `linux.seccomp` (runtime-spec 1.x config-linux.md): what a Docker profile
 * becomes once its conditions are resolved for one container, and what an OCI bundle carries.
 */
const Uint = lazy(() => v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(Number.MAX_SAFE_INTEGER)));

export const OciSeccompArg = lazy(() => v.object({
  index: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(5)),
  value: Uint,
  valueTwo: v.optional(Uint),
  op: v.string(),
}));
export type OciSeccompArg = v.InferOutput<typeof OciSeccompArg>;

export const OciSyscall = lazy(() => v.object({
  names: v.pipe(v.array(v.string()), v.minLength(1)),
  action: v.string(),
  errnoRet: v.optional(Uint),
  args: v.optional(v.array(OciSeccompArg)),
}));
export type OciSyscall = v.InferOutput<typeof OciSyscall>;

export const OciSeccomp = lazy(() => v.object({
  defaultAction: v.string(),
  defaultErrnoRet: v.optional(Uint),
  architectures: v.optional(v.array(v.string())),
  flags: v.optional(v.array(v.string())),
  listenerPath: v.optional(v.string()),
  listenerMetadata: v.optional(v.string()),
  syscalls: v.optional(v.array(OciSyscall)),
}));
export type OciSeccomp = v.InferOutput<typeof OciSeccomp>;
