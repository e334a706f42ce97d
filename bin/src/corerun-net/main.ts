import { defineTool, dieWithParent, printJson, runTool, saveCodeCache, writeOut } from "@corerun/cli";
import { linuxSyscall as sys } from "@corerun/syscall";
import { etcArgs, listArgs, parseEtc, parseNames, parseSetup, parseTeardown, rootArgs, rootOf, setupArgs, teardownArgs } from "./args.ts";
import { listNetworks, networkTable, remove, removeNetworks, setup, writeEtc } from "./steps.ts";

const EXIT = "Exit status: 0 on success; 125 on bad input or when the kernel refuses a step (the message\nnames the request, the errno and what to do). A refused setup leaves nothing behind.";

const setupCmd = defineTool({
  name: "corerun-net setup",
  description: "Give a network namespace its network and print what was configured as JSON.",
  usage: "(--pid PID | --netns PATH) --id ID [options]",
  args: setupArgs,
  tail: "none",
  notes: [
    "bridge: the bridge NAME (created with the gateway address, the first of its subnet), a veth\npair whose container end is eth0 with the next free address and a default route via the\ngateway, IPv4 forwarding and masquerading of outbound traffic. Published ports are DNAT rules in\ncorerun's nftables table, reachable through 127.0.0.1 and every address of the host.\nnone: loopback only, up.",
    "--etc-dir DIR gets hosts (localhost, this container, the other containers of its network),\nresolv.conf (the host's, loopback resolvers replaced by systemd-resolved's upstreams or\n8.8.8.8/8.8.4.4) and hostname. Existing files are rewritten in place, so bind mounts of them\nstay valid.",
    EXIT,
  ],
  examples: [
    "sudo corerun-net setup --pid 4242 --id c0ffee123456 -P 8080:80",
    "sudo corerun-net setup --netns /run/netns/demo --id demo -N demo0 --subnet 10.213.5.0/24",
  ],
  run(ctx) {
    // A setup whose corerun died is undone by corerun cleanup, which must not race with it.
    if (ctx.flags["die-with-parent"]) dieWithParent(sys);
    printJson(setup(parseSetup(ctx), (m) => ctx.log.info(m)));
    saveCodeCache("setup");
    return 0;
  },
});

const teardownCmd = defineTool({
  name: "corerun-net teardown",
  description: "Remove a container's veth, lease, published ports and their nftables rules.",
  usage: "--id ID [options]",
  args: teardownArgs,
  tail: "none",
  notes: ["Safe to repeat: a container with nothing left prints {\"removed\":false}.", EXIT],
  examples: ["sudo corerun-net teardown --id c0ffee123456"],
  run(ctx) {
    printJson(remove(parseTeardown(ctx), (m) => ctx.log.info(m)));
    return 0;
  },
});

const lsCmd = defineTool({
  name: "corerun-net ls",
  description: "List the networks: bridge, subnet, gateway and how many containers use each.",
  usage: "[options]",
  args: listArgs,
  tail: "none",
  run(ctx) {
    const networks = listNetworks({ root: rootOf(ctx) });
    if (ctx.flags.json) printJson(networks);
    else writeOut(networkTable(networks));
    return 0;
  },
});

const rmCmd = defineTool({
  name: "corerun-net rm",
  description: "Remove networks and their bridges; refused while a container uses one.",
  usage: "[options] NAME...",
  args: rootArgs,
  tail: "command",
  examples: ["sudo corerun-net rm demo0"],
  run(ctx) {
    printJson({ removed: removeNetworks({ root: rootOf(ctx), names: parseNames(ctx), log: (m) => ctx.log.info(m) }) });
    return 0;
  },
});

const pruneCmd = defineTool({
  name: "corerun-net prune",
  description: "Remove every network that no container uses, and its bridge.",
  usage: "[options]",
  args: rootArgs,
  tail: "none",
  run(ctx) {
    printJson({ removed: removeNetworks({ root: rootOf(ctx), log: (m) => ctx.log.info(m) }) });
    return 0;
  },
});

const etcCmd = defineTool({
  name: "corerun-net etc",
  description: "Write hosts, resolv.conf and hostname for a container that needs no network setup.",
  usage: "--id ID --etc-dir DIR [--network none|host|container:ID] [options]",
  args: etcArgs,
  tail: "none",
  notes: [
    "none: the container's names on 127.0.0.1; host: the host's hosts and resolv.conf;\ncontainer:ID (or NAME): the other container's address, its network's containers and its names.",
  ],
  examples: ["sudo corerun-net etc --id c0ffee123456 --etc-dir /tmp/etc --network container:web --hostname side"],
  run(ctx) {
    printJson(writeEtc(parseEtc(ctx)));
    return 0;
  },
});

export const tool = defineTool({
  name: "corerun-net",
  description: "Give a container's network namespace its network, and take it away again.",
  usage: "COMMAND [options]",
  args: {},
  tail: "none",
  notes: [
    "Links, addresses and routes go through rtnetlink; NAT and published ports through one nft -j\ntransaction in corerun's own table. Records (networks, leases, ports) live in\nSTATE_ROOT/networks/networks.json, under a lock.",
    EXIT,
  ],
  examples: [
    "sudo corerun-net setup --pid 4242 --id c0ffee123456 -P 8080:80 --etc-dir /run/corerun/c0ffee123456/etc",
    "sudo corerun-net teardown --id c0ffee123456",
    "sudo corerun-net ls",
  ],
  subCommands: { setup: setupCmd, teardown: teardownCmd, ls: lsCmd, rm: rmCmd, prune: pruneCmd, etc: etcCmd },
});

void runTool(tool);
