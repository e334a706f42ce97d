import { closeSync } from "node:fs";
import { connectUnix, fdSender, linuxSyscall as sys } from "@corerun/syscall";
import { defineTool, dieWithParent, faultPoint, runTool } from "@corerun/cli";
import { waitReady } from "@corerun/sync";
import { args, parseMountOptions } from "./args.ts";
import { procStartTime } from "@corerun/state";
import { readSpec } from "@corerun/oci";
import { dirname } from "node:path";
import { checkProgram, mountOciTree, pauseForHooks, readonlyRoot, sendConsole } from "./oci.ts";
import { bindHostDevices, bindRootfs, checkOwnMountNamespace, makePrivate, runJoined, takeJoined, openUserns, createMountPoints, enterNamespaces, mountDev, mountPointsFor, mountSys, mountVolumes, moveProc, pivot } from "./steps.ts";

export const tool = defineTool({
  name: "corerun-mount",
  description: "Build a waiting container's filesystem tree from outside: rootfs, /dev, /sys, volumes, then pivot_root.",
  usage: "--pid PID --rootfs DIR [options]",
  args,
  tail: "none",
  notes: [
    "corerun-mount enters the mount namespace of PID (with its network and IPC namespaces, which\nsysfs and mqueue belong to), binds the rootfs, mounts /dev (tmpfs, null zero full random urandom\ntty, a new devpts, shm, mqueue), a read-only /sys with Docker's masks and the volumes, then\npivots PID's root to it and detaches the old root. /proc must be mounted from inside the PID\nnamespace (corerun-exec --mount-proc); --proc moves that mount into the rootfs.",
    "Mount points missing from the rootfs are created in it (corerun records and removes them).\nWith --sync-dir, the pivot waits until corerun-exec has said ready.",
    "Run by a user other than root (rootless), corerun-mount starts itself again inside PID's user,\nmount, network and IPC namespaces, through the native helper, and mounts from there.",
  ],
  examples: [
    "sudo corerun-mount --pid 4242 --rootfs ./rootfs -v /srv/data:/data:ro --sync-dir /run/corerun/x",
  ],
  async run(ctx) {
    const opts = parseMountOptions(ctx);
    // Blocked on the ready FIFO, corerun-mount would otherwise outlive a corerun killed with -9.
    if (opts.dieWithParent) dieWithParent(sys);
    faultPoint("mount:start");
    const joined = takeJoined(opts.pid);
    // Not root: only a process inside the container's user namespace may mount there, and Node
    // cannot join one; corerun-mount runs again, started inside by the native helper.
    if (!joined && process.geteuid?.() !== 0) return runJoined(sys, opts.pid);
    if (!joined) checkOwnMountNamespace(opts.pid);
    const points = mountPointsFor(opts);
    // Read before the namespace changes: the path is the host's.
    const spec = opts.oci === undefined ? undefined : readSpec(dirname(opts.oci), opts.oci);
    const consoleFd = opts.consoleSocket === undefined ? undefined : connectUnix(opts.consoleSocket);
    const sendFd = consoleFd === undefined ? undefined : fdSender();
    const startTime = procStartTime(opts.pid);
    const userns = opts.idmap ? openUserns(opts.pid) : undefined;
    // The wait for ready ends when the target dies: a pidfd, opened while its pid is its own.
    const target = sys.pidfdOpen(opts.pid);
    try {
      if (joined) makePrivate(sys);
      else enterNamespaces(sys, opts.pid);
      faultPoint("mount:namespaces");
      // Before the bind: host root cannot create files through an idmapped mount (its uid has no
      // mapping there), so missing mount points are made on the rootfs itself.
      createMountPoints(points);
      faultPoint("mount:mount-points");
      if (spec) {
        bindRootfs(sys, opts.rootfs, userns, { nodev: false });
        faultPoint("mount:rootfs");
        mountOciTree(sys, opts.rootfs, spec, opts.cgroupDirs);
        faultPoint("mount:oci-mounts");
      } else {
        bindRootfs(sys, opts.rootfs, opts.rootfsMapped ? undefined : userns);
        faultPoint("mount:rootfs");
        mountDev(sys, opts.rootfs);
        if (opts.hostDevices) bindHostDevices(sys, opts.rootfs);
        faultPoint("mount:dev");
        mountSys(sys, opts.rootfs, opts.unmasked);
        faultPoint("mount:sys");
        mountVolumes(sys, opts.rootfs, opts, userns);
        faultPoint("mount:volumes");
      }
      if (opts.syncDir) waitReady(opts.syncDir, { pidfd: target, name: `process ${opts.pid}`, sys });
      faultPoint("mount:ready");
      if (opts.hookPause) pauseForHooks();
      if (opts.proc) moveProc(sys, opts.rootfs, startTime);
      faultPoint("mount:proc");
      pivot(sys, opts.rootfs);
      faultPoint("mount:pivot");
      if (spec) checkProgram(spec);
      if (spec && consoleFd !== undefined) sendConsole(sys, spec, consoleFd, sendFd!);
      if (spec?.root?.readonly || opts.readOnly) readonlyRoot(sys);
    } finally {
      closeSync(target);
    }
    return 0;
  },
});

void runTool(tool);
