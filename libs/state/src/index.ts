export * from "./schema.ts";
export * from "./store.ts";
export { procStartTime, isAlive } from "./proc.ts";
export { checkHostname, parseEnvVars, checkWorkdir } from "./config.ts";
