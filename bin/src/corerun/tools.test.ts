import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { describe, test } from "node:test";
import { once } from "node:events";
import { stopTools, ToolFailed, toolsExited, type RunningTool } from "./tools.ts";

/** A RunningTool for a child_process child: its exit as waitid would report it, its whole stderr. */
function running(name: string, child: ChildProcess): RunningTool {
  let said = "";
  child.stderr?.on("data", (d: Buffer) => (said += d.toString()));
  const saidAll = child.stderr ? once(child.stderr, "close") : Promise.resolve();
  const t: RunningTool = {
    name, pid: child.pid!, said: () => saidAll.then(() => said),
    end: (once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>).then(([exitCode, signal]) => ({ exitCode, signal })),
  };
  void t.end.then((end) => (t.ended = end));
  return t;
}

/** A Node process standing in for a tool that said done: it then exits with `code`, after saying `line` on stderr. */
function tool(name: string, code: number, line = ""): RunningTool & { child: ChildProcess } {
  const child = spawn(process.execPath, ["-e", `process.stderr.write(${JSON.stringify(line)}); setTimeout(() => process.exit(${code}), 50)`], { stdio: ["ignore", "ignore", "pipe"] });
  return Object.assign(running(name, child), { child });
}

describe("the tools' exit after their done", () => {
  test("tools that exit 0 after saying done: the start goes on", async () => {
    await toolsExited([tool("corerun-mount", 0), tool("corerun-net", 0)]);
  });

  test("a tool that fails after saying done is reported with its status and its last line", async () => {
    const failed = await toolsExited([tool("corerun-mount", 0), tool("corerun-net", 3, "corerun-net: one\ncorerun-net: broke\n")]).then(() => undefined, (err: unknown) => err);
    assert.ok(failed instanceof ToolFailed);
    assert.equal(failed.tool, "corerun-net");
    assert.equal(failed.exitCode, 3);
    assert.equal(failed.message, "corerun-net: broke");
  });

  test("a tool killed after saying done counts as failed (125)", async () => {
    const t = tool("corerun-mount", 0);
    t.child.kill("SIGKILL");
    await assert.rejects(toolsExited([t]), (err) => err instanceof ToolFailed && err.exitCode === 125);
  });

  test("stopTools kills the tools still running and waits for them", async () => {
    const mount = tool("corerun-mount", 0);
    const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
    await stopTools([mount, running("corerun-net", child)]);
    assert.equal(child.signalCode, "SIGKILL");
    assert.ok(mount.child.exitCode !== null || mount.child.signalCode !== null);
  });
});
