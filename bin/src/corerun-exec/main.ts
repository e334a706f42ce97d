import { closeSync, openSync, writeSync } from "node:fs";
import { linuxSyscall as sys, loadNative, O_DIRECTORY, O_PATH, PR_SET_DUMPABLE, PR_SET_PDEATHSIG } from "@corerun/syscall";
import { setOomScoreAdj } from "@corerun/state";
import { groupIds } from "@corerun/rootfs";
import { defineTool, errorLine, exitCodeForError, faultPoint, flushTrace, runTool, saveCodeCache, span } from "@corerun/cli";
import { ExecSide } from "@corerun/sync";
import { args, containerEnv, parseExecOptions, type ExecOptions } from "./args.ts";
import { OCI_OPTION_FIX, readSpecText } from "@corerun/oci";
import { cgroupTree, mountCgroupTree, mountLayout, openCgroupProcs, readHostCgroupMounts, startJoinCgroupFds, type CgroupTree } from "@corerun/cgroup";
import { applyKernelSettings, applyRlimits, applyUserAndCapabilities, loadOciProcess, ociEnv, runStartContainerHooks, takeConsole, takeTerminalAt } from "./oci.ts";
import {
  lockDown, dropCapabilities, lastCapability, enterWorkdir, execCommand, joinCgroup, maskProcAt, mountProc, openProcMasks, prepareFds, readEtc, readonlyProcAt, resolveUser, groupsInNamespace, setHostname, switchUser, writeSysctls,
} from "./steps.ts";

export const tool = defineTool({
  name: "corerun-exec",
  description: "The last step inside a container: /proc, hostname, environment, working directory, fds, then exec CMD.",
  usage: "[options] [--] CMD [ARGS...]",
  args,
  tail: "command",
  notes: [
    "With --sync-dir DIR, corerun-exec opens the FIFO DIR/go first, then DIR/ready (the open waits\nfor a reader; /proc is mounted after it), writes {\"t\":\"ready\"} on ready once it has loaded\neverything (so its root may be pivoted under it), brings up loopback, sets its hostname, drops\nits bounding set and masks /proc, then waits for {\"t\":\"go\"} on go. Make the FIFOs with\nmkfifo. {\"t\":\"go\",\"tty\":N} makes /dev/pts/N (of the container's devpts) its controlling\nterminal and stdio (corerun run -t).",
    "With --oci CONFIG (corerun create's first process) it takes the config's hostname and a new\nsession keyring after ready, and its sysctls, read-only and masked paths and working directory\nonce {\"t\":\"pivoted\"} arrives on go (corerun-mount --oci writes it after pivot_root), as\nrunc's init does before start; from a driver that sends go alone, after go. Without\nstartContainer hooks it then takes every step but the exec and execs into corerun-exe, a\nstub that waits for go itself (its exec FIFO, in runc's words).",
    "--mount-proc mounts a new /proc before saying ready (the kernel allows it in a user namespace\nonly while the host's /proc is still visible); corerun-mount --proc moves it into the rootfs.\nDocker's /proc masks are made after ready, through fds of it, while the root moves.",
    "The command keeps Docker's default capabilities (CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL,\nSETGID, SETUID, SETPCAP, NET_BIND_SERVICE, NET_RAW, SYS_CHROOT, MKNOD, AUDIT_WRITE, SETFCAP):\nthe rest leave its bounding set. --cap-add and --cap-drop change the set.",
    "--user USER[:GROUP] switches to that user (and group; its /etc/group groups otherwise) right\nbefore the exec, after the capabilities are dropped; HOME becomes the user's home. Without it\nthe command runs as root with root's /etc/group groups. --group-add adds groups to either.",
    "--sysctl KEY=VALUE is written after go (the network's interfaces are in place by then), then\n/proc/sys is made read-only; a sysctl of a namespace corerun-exec shares with its parent is\nrefused: it would change the parent's.",
    "The environment starts empty: PATH, HOSTNAME and HOME as Docker sets them, then -e values.\nEvery fd but 0-2 is closed on exec; 0-2 lose close-on-exec and O_NONBLOCK.",
    "--no-new-privs and --seccomp FILE come last, right before the exec, in that order: the\ncommand starts under the filter, and no syscall of corerun-exec's runs after it but execve.\nFILE is a compiled program (corerun compiles profiles with libseccomp and caches them under\nits state root); it is read at start, before the root moves.",
    "Exit status: CMD replaces corerun-exec; 125 when a step fails; 126 when CMD is not\nexecutable; 127 when it is not found.",
  ],
  examples: [
    "sudo corerun-ns -- corerun-exec --mount-proc --hostname demo -- /bin/sh -c 'hostname; ps'",
  ],
  run(ctx) {
    let sync: ExecSide | undefined;
    let report: number | undefined;
    // Not dumpable until the exec, which makes the program dumpable again: this process's
    // /proc/PID/exe (the host's Node), root (the host's until the root moves) and fds are then
    // out of reach of other processes of its uid without CAP_SYS_PTRACE, such as those of a
    // container that shares its PID namespace, also once this process has taken the program's
    // capabilities (until then the kernel wants theirs to include its own) (CVE-2016-9962).
    sys.prctl(PR_SET_DUMPABLE, 0);
    try {
      // The FIFOs first: any later failure, bad options included, then reaches the waiting side.
      const syncDir = ctx.values["sync-dir"]?.at(-1);
      faultPoint("exec:start");
      if (syncDir) sync = span("open sync fifos", { dir: syncDir }, () => new ExecSide(syncDir));
      faultPoint("exec:sync-open");
      const opts = parseExecOptions(ctx);
      report = opts.reportFd;
      // The process keeps its pid through the exec, and its children inherit the value.
      setOomScoreAdj("self", opts.oomScoreAdj, "--oom-score-adj");
      // The native helper holds the stub the program is exec'd from (execCommand): loaded while
      // its file is in reach, before the root moves.
      loadNative();
      const ociText = opts.oci === undefined ? undefined : readSpecText(opts.oci, OCI_OPTION_FIX);
      // The cgroup paths live on the host: open them before the root can move.
      const cgroupFds = [...span("open cgroup.procs", { cgroups: opts.cgroups }, () => openCgroupProcs(opts.cgroups)), ...opts.cgroupFds];
      // The move into the cgroup waits in the kernel for an RCU grace period (5-15 ms): begun on
      // a thread here, it passes while corerun-mount builds the tree and pivots and corerun says
      // go, instead of after. From here to the exec this process only takes a few short steps,
      // waits for go and takes the last ones. With --oci (a cgroup given by hand) it joins after
      // its startContainer hooks, in runc's order; corerun create passes it no cgroup: it moves the
      // process itself, during create.
      const joining = sync && opts.oci === undefined && cgroupFds.length ? span("begin cgroup join", undefined, () => startJoinCgroupFds(cgroupFds)) : undefined;
      const lastCap = lastCapability();
      // The host's hierarchies are read while its /proc and /sys are still in reach (and parsed
      // once ready is said).
      const hostCgroups = opts.mountCgroup ? span("read cgroup layout", undefined, () => readHostCgroupMounts()) : undefined;
      let cgroupFs: CgroupTree | undefined;
      // The reader has read the host's /proc once it has opened ready: only then may a new /proc
      // cover it (rootless, corerun-mount reads it from inside this mount namespace).
      if (sync) span("open ready", undefined, () => sync!.openReady());
      if (opts.mountProc) span("mount /proc", undefined, () => mountProc(sys));
      const masks = opts.mountProc && !opts.unmasked && opts.oci === undefined ? openProcMasks(sys) : undefined;
      faultPoint("exec:proc");
      if (sync) {
        // Traced, the steps so far go to this process's part first: an OCI create merges the
        // trace once corerun-mount, which waits for ready, is done, while this process waits on.
        flushTrace();
        span("send ready", undefined, () => sync!.sendReady());
        faultPoint("exec:ready");
      }
      const oci = ociText === undefined ? undefined : span("check config", { file: opts.oci }, () => loadOciProcess(opts.oci!, ociText));
      // Namespaces of the container's own that no other tool touches: set up after ready, while
      // corerun-mount pivots the root and corerun says go (corerun-mount has long been waiting for
      // ready by then: whatever comes before it delays the start).
      let hostname: string | undefined;
      if (opts.loUp) span("lo up", undefined, () => sys.setLinkUp("lo"));
      if (oci) {
        const { spec } = oci;
        if (opts.keyring !== undefined) span("join keyring", { name: opts.keyring }, () => sys.joinSessionKeyring(opts.keyring!));
        if (spec.hostname !== undefined) span("set hostname", { hostname: spec.hostname }, () => sys.sethostname(spec.hostname!));
        if (spec.domainname !== undefined) sys.setdomainname(spec.domainname);
      } else {
        hostname = span("set hostname", { hostname: opts.hostname }, () => setHostname(sys, opts.hostname));
        if (opts.domainname !== undefined) sys.setdomainname(opts.domainname);
        // The bounding set limits what the exec grants, not what this process holds until then
        // (the mounts and the user switch below use its effective set): dropped while go comes.
        span("drop capabilities", undefined, () => dropCapabilities(sys, opts.capabilities, lastCap));
        if (hostCgroups) cgroupFs = span("cgroup tree", undefined, () => cgroupTree(mountLayout(hostCgroups)));
        // Last: its mounts wait for corerun-mount's move, pivot and unmount, which hold the
        // mount namespace's lock.
        // With --sysctl, /proc/sys is made read-only once they are written, after go.
        if (masks) span("mask /proc", undefined, () => maskProcAt(sys, masks, !opts.sysctls.length));
      }
      // An OCI container waits for go until the engine starts it: what lives inside the new root
      // is set up once corerun-mount says it is in place, as runc's init sets it up before its
      // exec FIFO, so that start has only the process's own steps left.
      let prepared = false;
      const prepare = () => {
        applyKernelSettings(sys, oci!.spec);
        enterWorkdir(oci!.spec.process!.cwd);
        prepared = true;
      };
      let go: ReturnType<ExecSide["waitGo"]> | undefined;
      // With no startContainer hook to run after start, this process takes every step before it
      // and leaves the wait for go to the stub it execs into (execCommand), as runc's init waits
      // on its exec FIFO with only the exec left: the teardown of Node's memory and threads that
      // the exec costs (2-4 ms) is then over before start, not after it.
      let goFd: number | undefined;
      if (sync) {
        const first = oci ? span("wait for pivot", undefined, () => sync!.waitPivotedOrGo()) : undefined;
        if (first?.t === "pivoted") span("prepare the root", undefined, prepare);
        if (first?.t === "pivoted" && !oci!.spec.hooks?.startContainer?.length) goFd = sync.handOver();
        if (goFd === undefined) {
          go = first?.t === "go" ? first : span("wait for go", undefined, () => sync!.waitGo());
          faultPoint("exec:go");
        }
      }
      // A parent-death signal from the clone (corerun run's start) guards the waits only: once
      // started, the container outlives a killed corerun, and corerun cleanup ends it.
      sys.prctl(PR_SET_PDEATHSIG, 0);
      if (goFd === undefined) sync?.release();
      if (!oci && opts.keyring !== undefined) sys.joinSessionKeyring(opts.keyring);
      if (oci) {
        const { spec } = oci;
        if (spec.process!.terminal) takeConsole(sys);
        if (!prepared) prepare();
        runStartContainerHooks(sys, spec, go?.state);
        // Before the limits, the cgroup, the filter and the user, which could refuse its writes.
        // A cache of its own: an OCI start runs functions a run's does not (the config's process,
        // the root's preparation), which a cache made by the other compiles from source.
        saveCodeCache("oci");
        applyRlimits(sys, spec);
        joinCgroup(sys, cgroupFds, opts.cgroupns);
        prepareFds(sys, opts.preserveFds);
        // Without no_new_privs the kernel takes a filter only from a process that still has
        // CAP_SYS_ADMIN: load it before the user and capabilities change (runc's order), else last.
        const nnp = spec.process!.noNewPrivileges ?? false;
        if (!nnp) lockDown(sys, { noNewPrivs: false, seccomp: opts.seccomp });
        applyUserAndCapabilities(sys, spec, oci.caps, lastCap);
        // The program keeps this pid through the execs: 1 in a PID namespace of its own.
        const listen = opts.listenFds ? [`LISTEN_FDS=${opts.listenFds}`, `LISTEN_PID=${process.pid}`] : [];
        faultPoint("exec:exec");
        return execCommand(sys, { command: spec.process!.args!, noNewPrivs: false, seccomp: nnp ? opts.seccomp : undefined }, [...ociEnv(spec), ...listen], goFd);
      }
      // After go: the network's interfaces (net.ipv4.conf.eth0.*) are in place by then.
      if (opts.sysctls.length) span("sysctls", { sysctls: opts.sysctls.map((x) => x.key) }, () => applySysctls(opts.sysctls, Boolean(masks)));
      // corerun run -t: the pty corerun opened in the container's devpts, named in go.
      if (go?.tty !== undefined) takeTerminalAt(sys, `/dev/pts/${go.tty}`);
      enterWorkdir(opts.workdir);
      // Root by default, with the groups the container's /etc/group gives it, as in Docker: not
      // the supplementary groups of whoever started corerun.
      const passwd = readEtc("/etc/passwd");
      const groupFile = readEtc("/etc/group");
      const creds = resolveUser(opts.user ?? "0", passwd, groupFile, opts.groupAdd);
      // In a user namespace: only the gids it maps (the host's /proc/self/gid_map says all of them).
      // (Without a /proc to read the map from, the kernel's answer to setgroups decides.)
      const gidMap = readEtc("/proc/self/gid_map");
      if (gidMap !== "" && gidMap.trim().split(/\s+/).join(" ") !== "0 0 4294967295") {
        creds.groups = groupsInNamespace(creds.groups, groupIds(opts.groupAdd, groupFile), gidMap, readEtc("/proc/self/setgroups").trim());
      }
      const env = containerEnv(opts, hostname!, creds.home);
      // Before the cgroup, the filter and the user, which could refuse its writes.
      saveCodeCache("exec");
      // corerun moved this process into its cgroups as it cloned it (unless a limit could stop its
      // Node's load: cloneJoin): then only the namespace is left.
      const joins = joining !== undefined || cgroupFds.length > 0;
      if (joins || opts.cgroupns) span(joins ? "join cgroup" : "cgroup namespace", { cgroups: opts.cgroups, cgroupns: opts.cgroupns }, () => joinCgroup(sys, joining ?? cgroupFds, opts.cgroupns));
      if (cgroupFs) span("mount /sys/fs/cgroup", undefined, () => mountCgroupTree(sys, cgroupFs, !opts.unmasked));
      prepareFds(sys, opts.preserveFds);
      faultPoint("exec:exec");
      // A user other than root loses CAP_SYS_ADMIN: the filter goes in first unless
      // no_new_privs lets the kernel take it later (the same order as the OCI path above).
      if (!opts.noNewPrivs) lockDown(sys, { noNewPrivs: false, seccomp: opts.seccomp });
      switchUser(sys, creds);
      return execCommand(sys, { ...opts, seccomp: opts.noNewPrivs ? opts.seccomp : undefined }, env);
    } catch (err) {
      // Before "ready", the error goes to the reader as data so that it is reported once. After
      // it (lo, the hostname, the steps after go) this process reports it and exits, and corerun
      // sees it end before or as it says go.
      // corerun run -d reads it once go is taken: the start failed, and why.
      if (report !== undefined) writeReport(report, { t: "error", message: errorLine(err), exitCode: exitCodeForError(err) });
      if (sync?.fail(errorLine(err), exitCodeForError(err))) process.exit(exitCodeForError(err));
      throw err;
    }
  },
});

/** --sysctl's values, then (when /proc is masked) Docker's read-only paths of /proc, /proc/sys among them. */
function applySysctls(sysctls: ExecOptions["sysctls"], readonlyAfter: boolean): void {
  writeSysctls(sysctls, "--sysctl");
  if (!readonlyAfter) return;
  const proc = openSync("/proc", O_PATH | O_DIRECTORY);
  try {
    readonlyProcAt(sys, proc);
  } finally {
    closeSync(proc);
  }
}

function writeReport(fd: number, msg: object): void {
  try {
    writeSync(fd, `${JSON.stringify(msg)}\n`);
  } catch {
    // its reader is gone: the error still goes to stderr
  }
}

void runTool(tool);
