export { OciSeccomp, OciSyscall, OciSeccompArg } from "./oci.ts";
export { DockerProfile, DOCKER_ARCH, defaultProfile, parseProfile, profileToOci, type ProfileTarget } from "./profile.ts";
export { compileSeccomp, SECCOMP_ACTIONS, prepareSeccompProgram, prepareSeccompProgramById, seccompFlags, seccompProgram, storeSeccompProgram, type CachedProgram } from "./compile.ts";
