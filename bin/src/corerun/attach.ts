/**
 * `corerun attach`: this terminal to a detached container's stdio, through its monitor's attach
 * socket (frames described in libs/syscall/native/monitor.c): the output from now on, the typed
 * input when the container was started with -i, the window size of a -t container at start and
 * on every resize. It ends with the container's exit status, or with 0 when the detach keys are
 * typed (the container keeps running). Several clients may be attached at once.
 */
import { once } from "node:events";
import { createConnection, type Socket } from "node:net";
import { defineTool, faultPoint, UsageError, writeOut } from "@corerun/cli";
import { isAlive, readState, stateRoot, statePath, type State } from "@corerun/state";
import { DEFAULT_DETACH_KEYS, DetachScanner, parseDetachKeys } from "./detachkeys.ts";
import type { RunConfig } from "./args.ts";
import { displayStatus, startMonitored } from "./lifecycle.ts";
import { eachNamed, mustFind, ociKill } from "./oci.ts";
import { rootArg } from "./oci-calls.ts";
import { rawTerminal } from "./tty.ts";

/** Signals proxied to a container without a tty (--sig-proxy, as Docker's attach). */
const PROXIED = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1, SIGQUIT: 3, SIGUSR1: 10, SIGUSR2: 12 } as const;

function frame(type: string, data: Buffer): Buffer {
  const head = Buffer.from([type.charCodeAt(0), data.length >> 8, data.length & 0xff]);
  return Buffer.concat([head, data]);
}

function windowFrame(rows: number, cols: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt16BE(rows, 0);
  b.writeUInt16BE(cols, 2);
  return frame("w", b);
}

/** The container to attach to, or one line saying why it cannot be. */
function attachable(root: string, ref: string): State & { detached: NonNullable<State["detached"]> } {
  const s = mustFind(root, ref);
  if (s.oci) throw new UsageError(`container ${ref} is an OCI container: its engine holds its stdio`);
  if (!s.detached) throw new UsageError(`container ${ref} was not started with -d: its stdio is its own corerun's terminal`);
  const status = displayStatus(s);
  // As Docker's: a run's attach ends with it, and a restarting container has no run to attach to yet.
  const hint = status.startsWith("exited") ? " (corerun logs shows its output)" : status.startsWith("restarting") ? " (attach again once it runs)" : "";
  if (status !== "running") throw new UsageError(`cannot attach to container ${ref}: it is ${status}${hint}`);
  if (!s.detached.attach) throw new UsageError(`container ${ref} was started by a corerun without attach; see corerun logs -f`);
  return s as State & { detached: NonNullable<State["detached"]> };
}

async function connect(path: string, ref: string): Promise<Socket> {
  const sock = createConnection(path);
  try {
    await once(sock, "connect");
  } catch (err) {
    throw new UsageError(`cannot attach to container ${ref}: its monitor does not answer on ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return sock;
}

/** The monitor's frames (TYPE, LENGTH in 2 bytes, the body) as they arrive, until `each` says false. */
function onFrames(sock: Socket, each: (type: string, body: Buffer) => boolean): void {
  let pending: Buffer = Buffer.alloc(0);
  sock.on("data", (chunk: Buffer) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    while (pending.length >= 3) {
      const len = pending.readUInt16BE(1);
      if (pending.length < 3 + len) break;
      if (!each(String.fromCharCode(pending[0]!), pending.subarray(3, 3 + len))) return;
      pending = pending.subarray(3 + len);
    }
  });
}

/**
 * The exit status of a detached container's current run, from its monitor's attach socket: the
 * 'x' frame its clients get as the run ends (a --rm container's too, which is gone from the state
 * right after). The output frames are read and dropped. undefined when the socket is not there
 * (the run has ended) or closes without it.
 */
async function exitFrame(path: string): Promise<number | undefined> {
  let sock: Socket;
  try {
    sock = await connect(path, "");
  } catch {
    return undefined;
  }
  let code: number | undefined;
  onFrames(sock, (type, body) => {
    if (type === "x") code = Number(body.toString("latin1"));
    return true;
  });
  await new Promise<void>((resolve) => {
    sock.on("close", () => resolve());
    sock.on("error", () => resolve());
  });
  return code;
}

/**
 * `corerun wait`: blocks until each container has stopped and prints its exit status, a line
 * each, as docker wait: one that has exited already at once; one with a restart policy at the end
 * of its current run. A foreground container's status is its corerun's, and an OCI container's
 * its engine's: both are refused.
 */
export const wait = defineTool({
  name: "corerun wait",
  description: "Wait until detached containers stop, and print the exit status of each.",
  usage: "[options] NAME|ID...",
  args: rootArg,
  tail: "command",
  notes: ["The statuses are printed in the order the containers were named, each once it has stopped\n(128+N for a first process killed by signal N), a --rm container's too."],
  examples: ["sudo corerun wait web", "code=$(sudo corerun wait job)"],
  async run(ctx) {
    const root = stateRoot(ctx.values.root?.at(-1));
    if (!ctx.tail.length) throw new UsageError("name the containers to wait for; see corerun ps");
    const each = eachNamed(root, ctx.tail, (s, ref) => (s.oci ? `container ${ref} is an OCI container: its engine waits for it` : !s.detached ? `container ${ref} runs in the foreground of its corerun (pid ${s.owner?.pid ?? "?"}), whose exit status is its own; wait takes detached containers (run -d)` : undefined));
    for (const { ref, state } of each.found) {
      try {
        writeOut(`${await exitOf(root, ref, state)}\n`);
      } catch (err) {
        each.fail(err);
      }
    }
    return each.report();
  },
});

/** The exit status of a detached container's current run, or of its last one once it has exited. */
async function exitOf(root: string, ref: string, s: State): Promise<number> {
  const ended = (now: State) => now.status === "stopped" && now.detached?.finished !== undefined;
  if (ended(s)) return s.exitCode ?? 0;
  if (s.detached?.attach) {
    const code = await exitFrame(s.detached.attach);
    if (code !== undefined) return code;
  }
  // No socket to ask (it has just ended, or its monitor is gone): the state, as the monitor records it.
  for (;;) {
    let now: State | undefined;
    try {
      now = readState(statePath(root, s.id));
    } catch {
      throw new UsageError(`container ${ref} was removed before its exit status could be read`);
    }
    if (ended(now)) return now.exitCode ?? 0;
    if (!isAlive(now.detached?.monitor)) {
      // It may have recorded the exit as it went.
      const last = readState(statePath(root, s.id));
      if (ended(last)) return last.exitCode ?? 0;
      throw new UsageError(`container ${ref}: its monitor is gone, and with it its exit status (monitor-lost; corerun cleanup removes it)`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

export const attach = defineTool({
  name: "corerun attach",
  description: "Attach this terminal to a detached container's output and input (run -d, -dit); the detach keys leave it running.",
  usage: "[options] NAME|ID",
  args: {
    ...rootArg,
    "detach-keys": { type: "string", valueHint: "KEYS", description: `keys that detach, leaving the container running (default ${DEFAULT_DETACH_KEYS}; "" for none)` },
    "no-stdin": { type: "boolean", description: "do not pass this terminal's input to the container" },
    "sig-proxy": { type: "string", valueHint: "true|false", description: "pass signals this process gets (INT, TERM, HUP, QUIT, USR1, USR2) to the container's first process (default true; containers without -t)" },
  },
  tail: "command",
  notes: [
    "Input reaches the container only if it was started with -i (run -di, -dit); with -t this terminal\ngoes raw and the container's pty takes its size. KEYS: comma-separated single characters or\nctrl-<c> for c in a-z, @, [, \\, ], ^, _. The exit status is the container's, or 0 after detaching.",
  ],
  examples: ["sudo corerun run -dit --name box busybox:latest sh", "sudo corerun attach box            # ctrl-p ctrl-q detaches", "sudo corerun attach --no-stdin --detach-keys ctrl-x box"],
  async run(ctx) {
    const root = stateRoot(ctx.values.root?.at(-1));
    if (ctx.tail.length !== 1) throw new UsageError("attach takes one container name or id; see corerun ps");
    const ref = ctx.tail[0]!;
    const keys = parseDetachKeys(ctx.values["detach-keys"]?.at(-1) ?? DEFAULT_DETACH_KEYS);
    const proxyText = ctx.values["sig-proxy"]?.at(-1);
    if (proxyText !== undefined && proxyText !== "true" && proxyText !== "false") throw new UsageError(`--sig-proxy ${proxyText}: give true or false`);
    const s = attachable(root, ref);
    if (s.detached.tty && proxyText !== undefined) throw new UsageError(`--sig-proxy: container ${ref} has a tty, whose keys (Ctrl-C) are its signals; drop --sig-proxy`);
    return attachTo(root, ref, s, { keys, stdin: !ctx.flags["no-stdin"], proxy: proxyText !== "false" });
  },
});

/**
 * `corerun run -it`: started under corerun-monitor as run -dit is, and attached here before the
 * monitor lets the container's output or exit go, so that nothing it prints is missed.
 */
export async function runAttached(cfg: RunConfig, detachKeys: string | undefined): Promise<number> {
  const keys = parseDetachKeys(detachKeys ?? DEFAULT_DETACH_KEYS);
  const started = await startMonitored(cfg, true);
  if (typeof started === "number") return started;
  try {
    return await attachTo(cfg.root, cfg.name ?? started.id, mustFind(cfg.root, started.id), { keys, stdin: true, proxy: false, eofAtEnd: true, foreground: true });
  } finally {
    started.release();
  }
}

export interface AttachOptions {
  keys: number[];
  stdin: boolean;
  /** Signals to this process go to the first process (containers without a tty). */
  proxy: boolean;
  /** The end of a piped input types the terminal's EOF character (Ctrl-D), as run -t's relay did. */
  eofAtEnd?: boolean;
  /**
   * run -it's own client: tells the monitor once this terminal is set up. Until then, this process
   * going (Ctrl-C while it starts) ends the container rather than leave it running detached.
   */
  foreground?: boolean;
}

/** This terminal to the container until it exits (its status) or the detach keys are typed (0). */
export async function attachTo(root: string, ref: string, s: State, opts: AttachOptions): Promise<number> {
  if (!s.detached?.attach) throw new UsageError(`container ${ref} was started by a corerun without attach; see corerun logs -f`);
  const tty = s.detached.tty ?? false;
  const keys = opts.keys;
  const sock = await connect(s.detached.attach, ref);
  const input = opts.stdin && s.detached.stdin ? process.stdin : undefined;
  const restore = tty ? rawTerminal(input, process.stdout) : () => {};
  // From here on Ctrl-C is a byte for the container, and this process going is a detach.
  if (opts.foreground) {
    faultPoint("attach:connected");
    sock.write(frame("a", Buffer.alloc(0)));
  }
  let code: number | undefined;
  let detached = false;
  onFrames(sock, (type, body) => {
    if (detached) return false;
    if (type === "o") process.stdout.write(body);
    else if (type === "e") process.stderr.write(body);
    else if (type === "x") code = Number(body.toString("latin1"));
    return true;
  });
  const resize = () => void sock.write(windowFrame(process.stdout.rows, process.stdout.columns));
  // A terminal that reports no size (0x0) leaves the pty as it is.
  if (tty && process.stdout.isTTY && process.stdout.rows > 0 && process.stdout.columns > 0) {
    resize();
    process.stdout.on("resize", resize);
  }
  const scanner = new DetachScanner(keys);
  const onInput = (chunk: Buffer) => {
    const { out, detach } = scanner.feed(chunk);
    for (let off = 0; off < out.length; off += 4096) sock.write(frame("i", out.subarray(off, off + 4096)));
    if (detach) {
      // What was typed before the keys still reaches the container; nothing is printed after them.
      detached = true;
      input?.off("data", onInput);
      sock.end();
    }
  };
  const onEnd = () => void (!detached && sock.write(frame("i", Buffer.from("\x04"))));
  input?.on("data", onInput);
  if (tty && opts.eofAtEnd) input?.on("end", onEnd);
  const proxies = !tty && opts.proxy ? Object.entries(PROXIED).map(([name, n]) => {
    const h = () => ociKill(root, s.id, n, false);
    process.on(name, h);
    return [name, h] as const;
  }) : [];
  try {
    await new Promise<void>((resolve) => {
      sock.on("close", () => resolve());
      sock.on("error", () => resolve());
    });
  } finally {
    input?.off("data", onInput);
    input?.off("end", onEnd);
    input?.pause();
    for (const [name, h] of proxies) process.off(name, h);
    restore();
  }
  if (detached) return 0;
  if (code !== undefined) return code;
  // The monitor went away without the status: it was killed (ps shows monitor-lost).
  const now = mustFind(root, s.id);
  if (now.exitCode !== undefined) return now.exitCode;
  throw new Error(`container ${ref}: its monitor ended without its exit status (${isAlive(now.detached?.monitor) ? "it closed the connection" : "the monitor is gone; see corerun ps"})`);
}
