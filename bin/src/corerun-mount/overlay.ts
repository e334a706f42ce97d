import { dirname } from "node:path";
import { mountOverlay } from "@corerun/rootfs";
import { SyscallError, type Syscall } from "@corerun/syscall";

/**
 * An image's overlayfs at rootfs, in the container's mount namespace. Inside a user namespace
 * (`userxattr`) overlayfs keeps its attributes as user.overlay.*, as the rootless store's layers
 * have them. A refusal names the mount, its errno and what the kernel needs.
 */
export function mountImageOverlay(sys: Syscall, rootfs: string, o: { lower: string[]; upper: string; work: string }, userxattr: boolean): void {
  try {
    // The lowers are relative to the store's layers directory (ROOT/layers/sha256/HEX/diff).
    mountOverlay(sys, rootfs, { ...o, userxattr }, dirname(dirname(dirname(o.lower[0]!))), `the image at ${rootfs}`);
  } catch (err) {
    if (!(err instanceof SyscallError)) throw err;
    const need = userxattr ? "overlayfs inside a user namespace needs Linux 5.11 or later, lowers the user namespace can read, and a state root on a filesystem with user extended attributes (not tmpfs before Linux 6.6)" : "overlayfs needs the lowers, upper and work directories on filesystems it supports";
    throw new Error(`mount overlay ${rootfs}: ${err.code} (${need})`, { cause: err });
  }
}
