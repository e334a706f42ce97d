import { UsageError } from "@corerun/cli";
import { DEFAULT_PATH } from "./command.ts";

/** Read while the host's /proc is still there: corerun-exec may run without a /proc of its own. */
export interface Credentials {
  uid: number;
  gid: number;
  /** Supplementary groups: the primary one and every group of /etc/group that lists the user. */
  groups: number[];
  home: string;
}

/**
 * USER[:GROUP] as Docker reads it: a name is looked up in the container's /etc/passwd, a number
 * is taken as it is (a uid without an entry gets gid 0, as in Docker); GROUP likewise in
 * /etc/group. --group-add's groups (names in /etc/group, or gids) join the supplementary ones.
 * Pure, so that the rules are tested without a container.
 */
export function resolveUser(spec: string, passwd: string, group: string, groupAdd: readonly string[] = []): Credentials {
  const [user = "", grp] = spec.split(":", 2) as [string, string | undefined];
  const rows = (text: string) => text.split("\n").filter((l) => l && !l.startsWith("#")).map((l) => l.split(":"));
  const users = rows(passwd);
  const groups = rows(group);
  const numeric = /^\d+$/.test(user);
  const entry = users.find((r) => (numeric ? r[2] === user : r[0] === user));
  if (!entry && !numeric) throw new UsageError(`--user ${spec}: no user "${user}" in the container's /etc/passwd; give a uid or a user the image has`);
  const uid = Number(numeric ? user : entry![2]);
  let gid = entry ? Number(entry[3]) : 0;
  if (grp !== undefined) {
    const g = /^\d+$/.test(grp) ? undefined : groups.find((r) => r[0] === grp);
    if (!/^\d+$/.test(grp) && !g) throw new UsageError(`--user ${spec}: no group "${grp}" in the container's /etc/group; give a gid or a group the image has`);
    gid = Number(g ? g[2] : grp);
  }
  const name = entry?.[0];
  const extra = name === undefined || grp !== undefined ? [] : groups.filter((r) => (r[3] ?? "").split(",").includes(name)).map((r) => Number(r[2]));
  const added = groupIds(groupAdd, group);
  return { uid, gid, groups: [...new Set([gid, ...extra, ...added])], home: entry?.[5] || (uid === 0 ? "/root" : "/") };
}

/** --group-add's groups as gids: a gid as it is, a name looked up in the container's /etc/group. */
export function groupIds(groupAdd: readonly string[], group: string): number[] {
  const rows = group.split("\n").filter((l) => l && !l.startsWith("#")).map((l) => l.split(":"));
  return groupAdd.map((g) => {
    if (/^\d+$/.test(g)) return Number(g);
    const row = rows.find((r) => r[0] === g);
    if (!row) throw new UsageError(`--group-add ${g}: no group "${g}" in the container's /etc/group; give a gid or a group the image has`);
    return Number(row[2]);
  });
}

/**
 * The container's environment: nothing from the host unless asked for, then Docker's defaults
 * (PATH, HOSTNAME, HOME) and the -e values, later ones winning. Its first process and every
 * process `corerun exec` adds get the same.
 */
export function containerEnv(vars: readonly string[], hostname: string, home = "/root"): string[] {
  const env = new Map<string, string>([
    ["PATH", DEFAULT_PATH],
    ["HOSTNAME", hostname],
    ["HOME", home],
  ]);
  for (const e of vars) {
    const eq = e.indexOf("=");
    env.set(e.slice(0, eq), e.slice(eq + 1));
  }
  return [...env].map(([k, v]) => `${k}=${v}`);
}
