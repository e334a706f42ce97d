/**
 * OCI hooks (config.md, "POSIX-platform Hooks"): each gets the container's state as JSON on its
 * stdin, runs with exactly its own args and env, and is killed after its timeout. prestart,
 * createRuntime, poststart and poststop run here, in corerun's namespaces; createContainer in the
 * container's namespaces before pivot_root (through the native helper); startContainer inside
 * the container, by corerun-exec, right before the program.
 */
import { spawn } from "node:child_process";
import { closeSync, writeSync } from "node:fs";
import { once } from "node:events";
import { exitCodeOf, waitChild } from "@corerun/cli";
import { hookArgv, hookEnv, type Hook } from "@corerun/oci";
import { inPidNamespace, linuxSyscall as sys } from "@corerun/syscall";

export class HookFailed extends Error {
  override name = "HookFailed";
}

function describe(name: string, i: number, h: Hook): string {
  return `hooks.${name}[${i}] ${h.path}`;
}

/** Runs one hook in corerun's own namespaces. */
async function runHere(name: string, i: number, h: Hook, state: unknown): Promise<void> {
  const [argv0, ...rest] = hookArgv(h);
  const child = spawn(h.path, rest, { argv0: argv0 ?? h.path, env: hookEnv(h), stdio: ["pipe", "inherit", "pipe"] });
  let said = "";
  child.stderr.on("data", (d: Buffer) => (said += d.toString()));
  child.stdin.on("error", () => {});
  child.stdin.end(JSON.stringify(state));
  const timer = h.timeout ? setTimeout(() => child.kill("SIGKILL"), h.timeout * 1000) : undefined;
  const [code, signal] = (await Promise.race([once(child, "exit"), once(child, "error").then(([err]) => { throw err; })])) as [number | null, NodeJS.Signals | null];
  if (timer) clearTimeout(timer);
  if (code !== 0) {
    const why = signal === "SIGKILL" && h.timeout ? `did not finish within its timeout of ${h.timeout} s` : `exited with status ${code ?? signal}`;
    throw new HookFailed(`${describe(name, i, h)} ${why}${said.trim() ? `: ${said.trim().split("\n").at(-1)}` : ""}`);
  }
}

/**
 * Runs one hook in the namespaces given by pidfd and flags (a child of the native helper), born
 * in the PID namespace too when `pid` says so: the container's /proc then shows it itself.
 */
async function runInside(name: string, i: number, h: Hook, state: unknown, join: { pidfd: number; flags: number; pid: boolean }): Promise<void> {
  const input = sys.pipe();
  let pid: number;
  try {
    const clone = () => sys.cloneExec(0, h.path, hookArgv(h), h.env ?? [], { join: { fd: join.pidfd, flags: join.flags }, stdinFd: input[0] });
    pid = join.pid ? inPidNamespace(sys, join.pidfd, clone) : clone();
  } finally {
    closeSync(input[0]);
  }
  try {
    writeSync(input[1], JSON.stringify(state));
  } catch {
    // The hook need not read its stdin.
  } finally {
    closeSync(input[1]);
  }
  const timer = h.timeout ? setTimeout(() => sys.kill(pid, 9), h.timeout * 1000) : undefined;
  const code = exitCodeOf(await waitChild(sys, pid, []));
  if (timer) clearTimeout(timer);
  if (code !== 0) throw new HookFailed(`${describe(name, i, h)} ${code === 137 && h.timeout ? `did not finish within its timeout of ${h.timeout} s` : `exited with status ${code}`}`);
}

/** Runs a list of hooks in order; the first failure stops the list. */
export async function runHooks(name: string, hooks: readonly Hook[] | undefined, state: unknown, join?: { pidfd: number; flags: number; pid: boolean }): Promise<void> {
  for (const [i, h] of (hooks ?? []).entries()) {
    if (join) await runInside(name, i, h, state, join);
    else await runHere(name, i, h, state);
  }
}
