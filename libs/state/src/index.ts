export * from "./schema.ts";
export * from "./store.ts";
export { procStartTime, nsPids, sameInode, sameNamespace, isAlive, openRecorded, setOomScoreAdj } from "./proc.ts";
export { findByRef, mayBeRef } from "./ref.ts";
export { findOciContainer, ociIds, ociIdTaken, OCI_IDS_FILE, OCI_SLOTS } from "./oci-ids.ts";
export {
  checkHostname, checkGroupName, parseEnvFile, parseEnvVars, parseLabels, readEnvFiles, readLabelFiles, parseOomScoreAdj, checkWorkdir, capabilitySet, DEFAULT_CAPABILITIES, parseIdMap, hostIdOf, containerIdOf, idMapText, mapsKey, parseIdMapText, type IdRange,
} from "./config.ts";
export { allocateAutoUserns, subidPool, subidRanges, AUTO_SIZE, DEFAULT_POOL } from "./userns.ts";
export { claimCreatedPaths, releaseCreatedPaths, type CreatedPath } from "./mountpoints.ts";
export { judgePartial, readOwner, removePartial, sweepUnpublished, type PartialDir } from "./partial.ts";
