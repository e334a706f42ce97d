import { linuxSyscall } from "@corerun/syscall";
import { defineTool, runTool } from "@corerun/cli";
import { args, parseNsOptions } from "./args.ts";
import { createNamespaces, protectStatusFd, reportStart, startCommand, waitCommand } from "./steps.ts";

export const tool = defineTool({
  name: "corerun-ns",
  description: "Create PID, mount, UTS, IPC, network and cgroup namespaces and start CMD in them as PID 1.",
  usage: "[options] [--] CMD [ARGS...]",
  args,
  tail: "command",
  notes: [
    "The mount namespace gets private propagation and the network namespace a loopback that is up.",
    "Without --detach, corerun-ns waits for CMD, forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1\nand SIGUSR2 to it, and exits with its status (128+N when it died of signal N).\nWith --detach, CMD is re-parented to the nearest child subreaper (corerun is one).",
    "Exit status: CMD's own; 125 when corerun-ns fails; 126/127 when CMD cannot be run.",
  ],
  examples: [
    "sudo corerun-ns -- /bin/sh -c 'echo $$'                 # prints 1",
    "sudo corerun-ns --ns pid,mount --pid-file /tmp/p -- sleep 5",
  ],
  async run(ctx) {
    const opts = parseNsOptions(ctx);
    protectStatusFd(linuxSyscall, opts.statusFd);
    createNamespaces(linuxSyscall, opts);
    const child = await startCommand(opts);
    reportStart(opts, child.pid!);
    if (opts.detach) {
      child.unref();
      return 0;
    }
    return waitCommand(opts, child);
  },
});

void runTool(tool);
