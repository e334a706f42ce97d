import { closeSync } from "node:fs";
import { connectUnix, fdSender, linuxSyscall as sys } from "@corerun/syscall";
import { defineTool, dieWithParent, faultPoint, runTool, saveCodeCache, span, UsageError } from "@corerun/cli";
import { openGo, waitReady, writeGo } from "@corerun/sync";
import { args, parseMountOptions } from "./args.ts";
import { nsPids, procStartTime } from "@corerun/state";
import { OCI_OPTION_FIX, parseSpecText, readSpecText } from "@corerun/oci";
import { checkProgram, mountOciTree, pauseForHooks, readonlyRoot, sendConsole } from "./oci.ts";
import { mountImageOverlay } from "./overlay.ts";
import { containerRootIds, hostDevices, makeGivenDevices, bindRootfs, checkOwnMountNamespace, makePrivate, runJoined, takeJoined, openUserns, createMountPoints, enterNamespaces, mountDev, mountPointsFor, mountSys, mountVolumes, moveProc, pivot } from "./steps.ts";

export const tool = defineTool({
  name: "corerun-mount",
  description: "Build a waiting container's filesystem tree from outside: rootfs, /dev, /sys, volumes, then pivot_root.",
  usage: "--pid PID --rootfs DIR [options]",
  args,
  tail: "none",
  notes: [
    "corerun-mount enters the mount namespace of PID (with its network and IPC namespaces, which\nsysfs and mqueue belong to), binds the rootfs, mounts /dev (tmpfs, null zero full random urandom\ntty, a new devpts, shm, mqueue), a read-only /sys with Docker's masks and the volumes, then\npivots PID's root to it and detaches the old root. /proc must be mounted from inside the PID\nnamespace (corerun-exec --mount-proc); --proc moves that mount into the rootfs.",
    "Mount points missing from the rootfs are created in it (corerun records and removes them).\nWith --sync-dir, the pivot waits until corerun-exec has said ready; with --oci\ntoo, {\"t\":\"pivoted\"} on go then tells it the root is in place (see corerun-exec --help).",
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
    if (!joined && process.geteuid?.() !== 0) {
      if (opts.dev) throw new UsageError("--dev makes device nodes with mknod, which needs root outside a user namespace; leave it out (the nodes are then read-only bind mounts)");
      return runJoined(sys, opts.pid);
    }
    if (!joined) checkOwnMountNamespace(opts.pid);
    // Over an overlayfs, the mount points are found once it is mounted.
    let points = opts.overlay ? [] : mountPointsFor(opts);
    // Read before the namespace changes: the path is the host's.
    const spec = opts.oci === undefined ? undefined : span("read config", { file: opts.oci }, () => parseSpecText(readSpecText(opts.oci!, OCI_OPTION_FIX), opts.oci!));
    const consoleFd = opts.consoleSocket === undefined ? undefined : connectUnix(opts.consoleSocket);
    const sendFd = consoleFd === undefined ? undefined : fdSender();
    const startTime = procStartTime(opts.pid);
    // Read from the host's /proc: the target's pid in its own PID namespace, where its /proc is.
    const nsPid = nsPids(opts.pid).at(-1);
    const userns = opts.idmap ? openUserns(opts.pid) : undefined;
    const nodes = { mknod: opts.dev, owner: opts.dev ? containerRootIds(opts.pid) : undefined };
    // The wait for ready ends when the target dies: a pidfd, opened while its pid is its own.
    const target = sys.pidfdOpen(opts.pid);
    // An OCI container's first process hears "pivoted" on go (libs/sync), opened while the host's
    // paths are in reach.
    let pivoted: number | undefined;
    try {
      if (joined) makePrivate(sys);
      else span("enter namespaces", { pid: opts.pid }, () => enterNamespaces(sys, opts.pid));
      faultPoint("mount:namespaces");
      if (opts.overlay) {
        span("mount overlayfs", { lower: opts.overlay.lower.length, userxattr: joined }, () => mountImageOverlay(sys, opts.rootfs, opts.overlay!, joined));
        points = mountPointsFor(opts);
        faultPoint("mount:overlay");
      }
      // Before the bind: host root cannot create files through an idmapped mount (its uid has no
      // mapping there), so missing mount points are made on the rootfs itself.
      span("create mount points", { count: points.length }, () => createMountPoints(points));
      faultPoint("mount:mount-points");
      if (spec) {
        span("bind rootfs", { rootfs: opts.rootfs, idmap: userns !== undefined }, () => bindRootfs(sys, opts.rootfs, userns, { nodev: false }));
        faultPoint("mount:rootfs");
        span("mount config's tree", { mounts: spec.mounts?.length ?? 0 }, () => mountOciTree(sys, opts.rootfs, spec, opts.cgroupDirs));
        faultPoint("mount:oci-mounts");
      } else {
        span("bind rootfs", { rootfs: opts.rootfs, idmap: userns !== undefined }, () => bindRootfs(sys, opts.rootfs, opts.rootfsMapped ? undefined : userns, { nodev: !opts.dev }));
        faultPoint("mount:rootfs");
        span("mount /dev", { target: `${opts.rootfs}/dev`, nodes: opts.dev ? "mknod" : "bind" }, () => mountDev(sys, opts.rootfs, nodes, opts.devShm, opts.shmSize));
        if (opts.hostDevices) span("host devices", undefined, () => hostDevices(sys, opts.rootfs, nodes));
        if (opts.devices.length) span("devices", { devices: opts.devices.map((d) => `${d.source}:${d.target}`).join(" ") }, () => makeGivenDevices(sys, opts.rootfs, opts.devices, nodes));
        faultPoint("mount:dev");
        span("mount /sys", { target: `${opts.rootfs}/sys`, masked: !opts.unmasked }, () => mountSys(sys, opts.rootfs, opts.unmasked));
        faultPoint("mount:sys");
        span("mount volumes", { volumes: opts.volumes.map((v) => `${v.source}:${v.target}`).join(" "), tmpfs: (opts.tmpfs ?? []).map((t) => t.target).join(" ") }, () => mountVolumes(sys, opts.rootfs, opts, userns));
        faultPoint("mount:volumes");
      }
      // While corerun-exec loads, and while this process still sees the host's /proc, through
      // which the run cache is written (the container's /proc does not show this process).
      saveCodeCache("mount");
      if (opts.syncDir) span("wait for ready", { pid: opts.pid }, () => waitReady(opts.syncDir!, { pidfd: target, name: `process ${opts.pid}`, sys }));
      faultPoint("mount:ready");
      if (spec && opts.syncDir) pivoted = openGo(opts.syncDir);
      if (opts.hookPause) pauseForHooks();
      if (opts.proc) span("move /proc", { target: `${opts.rootfs}/proc` }, () => moveProc(sys, opts.rootfs, { nsPid, startTime }));
      faultPoint("mount:proc");
      span("pivot_root", { rootfs: opts.rootfs }, () => pivot(sys, opts.rootfs));
      faultPoint("mount:pivot");
      if (spec) checkProgram(spec);
      if (spec && consoleFd !== undefined) sendConsole(sys, spec, consoleFd, sendFd!);
      if (spec?.root?.readonly || opts.readOnly) readonlyRoot(sys);
      if (pivoted !== undefined) {
        const fd = pivoted;
        pivoted = undefined;
        span("say pivoted", undefined, () => writeGo(fd, { t: "pivoted" }));
      }
    } finally {
      closeSync(target);
      if (pivoted !== undefined) closeSync(pivoted);
    }
    return 0;
  },
});

void runTool(tool);
