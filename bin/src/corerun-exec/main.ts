import { linuxSyscall as sys, PR_SET_PDEATHSIG } from "@corerun/syscall";
import { defineTool, errorLine, exitCodeForError, faultPoint, runTool } from "@corerun/cli";
import { ExecSide } from "@corerun/sync";
import { args, containerEnv, parseExecOptions } from "./args.ts";
import { openCgroupProcs } from "@corerun/cgroup";
import { dropCapabilities, lastCapability, enterWorkdir, execCommand, joinCgroup, maskProc, mountProc, prepareFds, setHostname } from "./steps.ts";

export const tool = defineTool({
  name: "corerun-exec",
  description: "The last step inside a container: /proc, hostname, environment, working directory, fds, then exec CMD.",
  usage: "[options] [--] CMD [ARGS...]",
  args,
  tail: "command",
  notes: [
    "With --sync-dir DIR, corerun-exec opens the FIFOs DIR/go and DIR/ready first, writes\n{\"t\":\"ready\"} on ready once it has loaded everything (so its root may be pivoted under it),\nthen waits for {\"t\":\"go\"} on go. Make the FIFOs with mkfifo.",
    "--mount-proc mounts a new /proc before saying ready (the kernel allows it in a user namespace\nonly while the host's /proc is still visible); corerun-mount --proc moves it into the rootfs.\nDocker's /proc masks are applied after go.",
    "The command keeps Docker's default capabilities (CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL,\nSETGID, SETUID, SETPCAP, NET_BIND_SERVICE, NET_RAW, SYS_CHROOT, MKNOD, AUDIT_WRITE, SETFCAP):\nthe rest leave its bounding set. --cap-add and --cap-drop change the set.",
    "The environment starts empty: PATH, HOSTNAME and HOME as Docker sets them, then -e values.\nEvery fd but 0-2 is closed on exec; 0-2 lose close-on-exec and O_NONBLOCK.",
    "Exit status: CMD replaces corerun-exec; 125 when a step fails; 126 when CMD is not\nexecutable; 127 when it is not found.",
  ],
  examples: [
    "sudo corerun-ns -- corerun-exec --mount-proc --hostname demo -- /bin/sh -c 'hostname; ps'",
  ],
  run(ctx) {
    let sync: ExecSide | undefined;
    try {
      // The FIFOs first: any later failure, bad options included, then reaches the waiting side.
      const syncDir = ctx.values["sync-dir"]?.at(-1);
      faultPoint("exec:start");
      if (syncDir) sync = new ExecSide(syncDir);
      faultPoint("exec:sync-open");
      const opts = parseExecOptions(ctx);
      // The cgroup paths live on the host: open them before the root can move.
      const cgroupFds = [...openCgroupProcs(opts.cgroups), ...opts.cgroupFds];
      const lastCap = lastCapability();
      if (opts.mountProc) mountProc(sys);
      faultPoint("exec:proc");
      if (sync) {
        sync.sendReady();
        faultPoint("exec:ready");
        sync.waitGo();
        faultPoint("exec:go");
      }
      // A parent-death signal from the clone (corerun run's start) guards the waits only: once
      // started, the container outlives a killed corerun, and corerun cleanup ends it.
      sys.prctl(PR_SET_PDEATHSIG, 0);
      if (opts.mountProc) maskProc(sys);
      if (opts.loUp) sys.setLinkUp("lo");
      const hostname = setHostname(sys, opts.hostname);
      enterWorkdir(opts.workdir);
      const env = containerEnv(opts, hostname);
      joinCgroup(sys, cgroupFds, opts.cgroupns);
      prepareFds(sys);
      dropCapabilities(sys, opts.capabilities, lastCap);
      faultPoint("exec:exec");
      return execCommand(sys, opts, env);
    } catch (err) {
      // Before "ready", the error goes to the reader as data so that it is reported once.
      if (sync?.fail(errorLine(err), exitCodeForError(err))) process.exit(exitCodeForError(err));
      throw err;
    }
  },
});

void runTool(tool);
