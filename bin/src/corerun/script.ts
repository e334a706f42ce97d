import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { cgroupManager, limitArgv } from "@corerun/cgroup";
import type { RunConfig } from "./args.ts";
import { missingMountPoints, tmpfsPoints } from "@corerun/rootfs";
import { etcExtrasArgv, hasEtcExtras } from "@corerun/net";
import { allocateAutoUserns, hostIdOf } from "@corerun/state";
import { UsageError } from "@corerun/cli";
import { etcVolumes, execArgs, mountArgs, netArgs, nsArgs } from "./steps.ts";

/** Quotes a word for a POSIX shell. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

const q = (words: readonly string[]) => words.map((w) => (w.startsWith('"$') ? w : shellQuote(w))).join(" ");

/**
 * The steps of `corerun run` as a script of corerun's own tools, for a user to read, copy and
 * change. corerun itself makes the cgroup and the first process in-process, with the libraries
 * corerun-cgroup and corerun-ns are built on; the script runs the tools, keeping corerun-ns in the
 * foreground so that `wait` returns the container's status.
 */
export function renderScript(given: RunConfig, binDir: string, hostname: string | undefined): string {
  const bin = (name: string) => `"$bin/${name}"`;
  const image = given.image;
  if (image && given.rootless) throw new UsageError(`--print-script: rootless, image ${image.ref}'s overlayfs is mounted by corerun-mount inside the container's user namespace, which the script cannot enter; leave out --print-script`);
  if (image && given.userns) throw new UsageError(`--print-script: image ${image.ref} in a user namespace needs idmapped layers (mount_setattr), which no shell tool makes; leave out --print-script, or --userns/--uidmap`);
  if (image?.readOnly) throw new UsageError(`--print-script: image ${image.ref} with --read-only needs a layer of mount points made on a first mount; leave out --print-script, or --read-only`);
  // An image container's rootfs is an overlayfs the script mounts, with its upper and work directories, in its own directory.
  const cfg = image ? { ...given, rootfs: "$sync/rootfs" } : given;
  const overlay = image
    ? `# The image's overlayfs. (corerun also marks the image in use, so that corerun image rm refuses it; this script does not.)
mkdir "$sync/rootfs" "$sync/upper" "$sync/work"
mount -t overlay overlay -o ${shellQuote(`lowerdir=${image.lower.join(":")}`)}",upperdir=$sync/upper,workdir=$sync/work" "$sync/rootfs"
`
    : "";
  const id = randomBytes(6).toString("hex");
  const cgroupDirs = cgroupManager({ name: id, parent: cfg.cgroupParent, everyHierarchy: true }).dirs();
  // corerun-exec joins its cgroup through fds the shell opens as root, as corerun does: in a
  // user namespace it could not open the host's cgroup files itself.
  const cgroupFds = cgroupDirs.map((_, i) => 3 + i);
  const redirects = cgroupDirs.map((d, i) => `${3 + i}>${shellQuote(join(d, "cgroup.procs"))}`).join(" ");
  const c = { id, dir: "$sync", hostname: hostname ?? id, cgroupDirs, cgroupFds };
  const maps = cfg.userns?.auto ? allocateAutoUserns(cfg.root) : cfg.userns;
  const userns = maps ? [...maps.uidMap.flatMap((r) => ["--uidmap", `${r.container}:${r.host}:${r.size}`]), ...maps.gidMap.flatMap((r) => ["--gidmap", `${r.container}:${r.host}:${r.size}`])] : [];
  const sync = (words: string[]) => q(words.map((w) => w.replaceAll("$sync", '"$sync"').replace(/^"\$sync"(.+)$/, '"$sync$1"')));
  const limits = [...limitArgv(cfg.limits), "--cgroup-parent", cfg.cgroupParent];
  const ns = [...nsArgs(cfg), ...userns];
  const net = cfg.network.mode === "bridge"
    ? `${bin("corerun-net")} ${sync(netArgs(cfg, c, "PID"))} > /dev/null`.replace("--pid PID", '--pid "$pid"')
    : `${bin("corerun-net")} etc --id ${id} --root ${shellQuote(cfg.root)} --etc-dir "$sync/etc" --network ${cfg.network.mode === "container" ? `container:${cfg.network.container}` : cfg.network.mode} --hostname ${shellQuote(c.hostname)}${cfg.name ? ` --name ${shellQuote(cfg.name)}` : ""}${hasEtcExtras(cfg.network.extras) ? ` ${q(etcExtrasArgv(cfg.network.extras))}` : ""} > /dev/null`;
  const undo = [
    `${bin("corerun-cgroup")} rm -f ${id} --cgroup-parent ${shellQuote(cfg.cgroupParent)}`,
    ...(cfg.network.mode === "bridge" ? [`${bin("corerun-net")} teardown --id ${id} --root ${shellQuote(cfg.root)} > /dev/null`] : []),
    // Mount points the rootfs lacked are created in it; they go again when still empty (an image's go with its upper directory).
    ...(image ? [`umount -l "$sync/rootfs"`] : missingMountPoints(cfg.rootfs, [...cfg.volumes, ...etcVolumes("/x", cfg.volumes), ...tmpfsPoints(cfg.tmpfs)])).reverse()
      .map((m) => (typeof m === "string" ? m : m.kind === "dir" ? `rmdir ${shellQuote(m.path)} 2>/dev/null` : `{ [ -s ${shellQuote(m.path)} ] || rm -f ${shellQuote(m.path)}; }`)),
  ];
  return `#!/usr/bin/env bash
# What \`corerun\` does for this container, as a chain of its tools.
set -euo pipefail
bin=${shellQuote(binDir)}
sync=$(mktemp -d) && [ -d "$sync" ]
cleanup() {
${undo.map((u) => `  ${u} || true`).join("\n")}
  rm -rf "\${sync:?}"
}
trap cleanup EXIT
mkfifo "$sync/ready" "$sync/go"
mkdir "$sync/etc" && touch "$sync/etc/hosts" "$sync/etc/resolv.conf" "$sync/etc/hostname"
${maps ? `# Container root is host uid ${hostIdOf(maps.uidMap, 0)} in its user namespace: it must reach the FIFOs.
chmod 711 "$sync" && chown ${hostIdOf(maps.uidMap, 0)}:${hostIdOf(maps.gidMap, 0)} "$sync/ready" "$sync/go" "$sync/etc/"*
` : ""}${overlay}
# 0. The container's cgroup, with its limits; corerun-exec joins it right before the exec.
${bin("corerun-cgroup")} create ${id} ${q(limits)} > /dev/null

# 1. New namespaces; corerun-exec waits in them as PID 1 until it is told to go.
${cfg.userns?.auto ? "# --userns auto: the first range free when this script was printed.\n" : ""}${bin("corerun-ns")} ${q(ns)} --preserve-fds ${cgroupFds.length} --pid-file "$sync/pid" -- \\
  ${bin("corerun-exec")} ${sync(execArgs(cfg, c))} ${redirects} &
ns=$!
until [ -s "$sync/pid" ]; do kill -0 "$ns" 2>/dev/null || exit 125; sleep 0.01; done
pid=$(cat "$sync/pid")

# 2. Its network and its /etc/hosts, /etc/resolv.conf and /etc/hostname.
${net}

# 3. Its filesystem: rootfs, /dev, /sys, volumes, then pivot_root once it is ready.
${bin("corerun-mount")} ${sync(mountArgs(cfg, "PID", "$sync")).replace("--pid PID", '--pid "$pid"')}

# 4. Go: corerun-exec mounts /proc, joins the cgroup, sets the hostname and execs the command.
echo '{"t":"go"}' > "$sync/go"
wait "$ns"
`;
}

export function binDirOf(dist: string): string {
  return join(dist, "..", "bin");
}
