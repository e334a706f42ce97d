import { linuxSyscall as sys, PR_SET_PDEATHSIG } from "@corerun/syscall";
import { defineTool, runTool } from "@corerun/cli";
import { waitReady } from "@corerun/sync";
import { args, parseMountOptions } from "./args.ts";
import { bindRootfs, createMountPoints, enterNamespaces, mountDev, mountPointsFor, mountSys, mountVolumes, pivot } from "./steps.ts";

export const tool = defineTool({
  name: "corerun-mount",
  description: "Build a waiting container's filesystem tree from outside: rootfs, /dev, /sys, volumes, then pivot_root.",
  usage: "--pid PID --rootfs DIR [options]",
  args,
  tail: "none",
  notes: [
    "corerun-mount enters the mount namespace of PID (with its network and IPC namespaces, which\nsysfs and mqueue belong to), binds the rootfs, mounts /dev (tmpfs, null zero full random urandom\ntty, a new devpts, shm, mqueue), a read-only /sys with Docker's masks and the volumes, then\npivots PID's root to it and detaches the old root. /proc is left to corerun-exec, which must\nmount it from inside the PID namespace.",
    "Mount points missing from the rootfs are created in it (corerun records and removes them).\nWith --sync-dir, the pivot waits until corerun-exec has said ready.",
  ],
  examples: [
    "sudo corerun-mount --pid 4242 --rootfs ./rootfs -v /srv/data:/data:ro --sync-dir /run/corerun/x",
  ],
  run(ctx) {
    const opts = parseMountOptions(ctx);
    // Blocked on the ready FIFO, corerun-mount would otherwise outlive a corerun killed with -9.
    if (opts.dieWithParent) sys.prctl(PR_SET_PDEATHSIG, 9);
    const points = mountPointsFor(opts);
    enterNamespaces(sys, opts.pid);
    bindRootfs(sys, opts.rootfs);
    createMountPoints(points);
    mountDev(sys, opts.rootfs);
    mountSys(sys, opts.rootfs);
    mountVolumes(sys, opts.rootfs, opts);
    if (opts.syncDir) waitReady(opts.syncDir);
    pivot(sys, opts.rootfs);
    return 0;
  },
});

void runTool(tool);
