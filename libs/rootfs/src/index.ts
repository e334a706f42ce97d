export { resolveInRoot } from "./resolve.ts";
export { findCommand, DEFAULT_PATH } from "./command.ts";
export { parseVolume, checkRootfs, type VolumeSpec } from "./volume.ts";
export { DEFAULT_DEV_NODES, parseDevice, type DeviceSpec } from "./devices.ts";
export { DEFAULT_SHM_SIZE, parseTmpfs, tmpfsPoints, tmpfsText, type TmpfsSpec } from "./tmpfs.ts";
export { MASKED_PATHS, READONLY_PATHS, maskPaths, maskDir, maskFile, readonlyPaths, readonlyPath, pathsUnder } from "./masks.ts";
export { missingMountPoints, mountPointPaths, BASE_MOUNT_POINTS, type MountPoint } from "./mountpoints.ts";
export { containerEnv, resolveUser, type Credentials } from "./user.ts";
export { mountOverlay, type Overlay } from "./overlay.ts";
