import { existsSync } from "node:fs";
import { userInfo } from "node:os";
import { join } from "node:path";
import { AUTO_SIZE, subidRanges, type IdRange } from "@corerun/state";

/**
 * The maps of a rootless user's containers and image store: its own uid as root and, with
 * /etc/subuid and /etc/subgid ranges and the uidmap helpers, container ids 1 and up on its first
 * subordinate range, as Podman does.
 */
export function rootlessMaps(uid: number, gid: number, files = { subuid: "/etc/subuid", subgid: "/etc/subgid" }): {
  maps: { uidMap: IdRange[]; gidMap: IdRange[] }; helpers: boolean; subuid: IdRange[]; subgid: IdRange[];
} {
  const own = { uidMap: [{ container: 0, host: uid, size: 1 }], gidMap: [{ container: 0, host: gid, size: 1 }] };
  const user = userInfoName(uid);
  const subuid = subidRanges(files.subuid, user, uid);
  const subgid = subidRanges(files.subgid, user, uid);
  const helpers = subuid.length > 0 && subgid.length > 0 && hasCommand("newuidmap") && hasCommand("newgidmap");
  const maps = helpers
    ? {
      uidMap: [...own.uidMap, { container: 1, host: subuid[0]!.host, size: Math.min(subuid[0]!.size, AUTO_SIZE) }],
      gidMap: [...own.gidMap, { container: 1, host: subgid[0]!.host, size: Math.min(subgid[0]!.size, AUTO_SIZE) }],
    }
    : own;
  return { maps, helpers, subuid, subgid };
}

function userInfoName(uid: number): string | undefined {
  try {
    return userInfo().uid === uid ? userInfo().username : undefined;
  } catch {
    return undefined;
  }
}

function hasCommand(name: string): boolean {
  return (process.env.PATH ?? "/usr/bin:/bin").split(":").some((d) => d && existsSync(join(d, name)));
}
