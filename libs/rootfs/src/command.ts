import { accessSync, constants } from "node:fs";
import { CommandError, EXIT_CANNOT_EXECUTE, EXIT_NOT_FOUND } from "@corerun/cli";
import { DEFAULT_PATH, pathCandidates } from "@corerun/syscall";
import { resolveInRoot, statIfAny } from "./resolve.ts";

export { DEFAULT_PATH };

/**
 * Finds `command` in the tree at `root` (use "/" from inside the container) the way execvp
 * would with `pathEnv`, and returns its path inside the root. Not found → 127; found but not an
 * executable file → 126, with the message saying which.
 */
export function findCommand(root: string, command: string, pathEnv = DEFAULT_PATH): string {
  const candidates = pathCandidates(command, pathEnv);
  let denied: string | undefined;
  for (const c of candidates) {
    const inside = c.startsWith("/") ? c : `/${c}`;
    const host = root === "/" ? c : resolveInRoot(root, inside);
    const st = statIfAny(host);
    if (!st) continue;
    if (st.isFile() && isExecutable(host, st.mode)) return root === "/" ? c : inside;
    denied ??= c;
  }
  const where = root === "/" ? "the container" : `the root filesystem ${root}`;
  if (denied) throw new CommandError(`${command}: ${denied} in ${where} is not an executable file`, EXIT_CANNOT_EXECUTE);
  const how = command.includes("/") ? "no such file" : `not found in PATH ${pathEnv}`;
  throw new CommandError(`${command}: ${how} in ${where}`, EXIT_NOT_FOUND);
}

function isExecutable(path: string, mode: number): boolean {
  if ((mode & 0o111) === 0) return false;
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
