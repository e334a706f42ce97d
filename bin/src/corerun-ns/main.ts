import { linuxSyscall } from "@corerun/syscall";
import { defineTool, runTool } from "@corerun/cli";
import { args, parseNsOptions } from "./args.ts";
import { joinedPaths, protectStatusFd, reportStart, startCommand, waitCommand } from "./steps.ts";

export const tool = defineTool({
  name: "corerun-ns",
  description: "Start CMD as PID 1 in new PID, mount, UTS, IPC, network and cgroup namespaces.",
  usage: "[options] [--] CMD [ARGS...]",
  args,
  tail: "command",
  notes: [
    "CMD is started with clone(2) directly in its namespaces (corerun-ns itself stays where it is).\nThe mount namespace gets private propagation; a new network namespace gets its loopback up\nbefore CMD runs. CMD is looked up in PATH and gets corerun-ns's environment.",
    "Without --detach, corerun-ns waits for CMD, forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1\nand SIGUSR2 to it, and exits with its status (128+N when it died of signal N).\nWith --detach, it exits once CMD has started; CMD is re-parented (to init, or to the nearest\nchild subreaper).",
    "Exit status: CMD's own; 125 when corerun-ns fails; 126/127 when CMD cannot be run.",
  ],
  examples: [
    "sudo corerun-ns -- /bin/sh -c 'echo $$'                 # prints 1",
    "sudo corerun-ns --ns pid,mount --pid-file /tmp/p -- sleep 5",
  ],
  async run(ctx) {
    const opts = parseNsOptions(ctx);
    joinedPaths(opts);
    protectStatusFd(linuxSyscall, opts.statusFd);
    const pid = startCommand(linuxSyscall, opts);
    reportStart(opts, pid);
    if (opts.detach) return 0;
    return waitCommand(linuxSyscall, opts, pid);
  },
});

void runTool(tool);
