export * from "./schema.ts";
export * from "./store.ts";
export { procStartTime, isAlive } from "./proc.ts";
export { checkHostname, parseEnvVars, checkWorkdir, capabilitySet, DEFAULT_CAPABILITIES } from "./config.ts";
