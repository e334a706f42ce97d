/**
 * The exec handshake, over two FIFOs in a sync directory:
 *
 *   corerun-exec (PID 1)              corerun-mount / a script          corerun / a script
 *   open go (O_RDWR: never blocks)
 *   (steps that need no reader)
 *   open ready (O_WRONLY) ─────────── open ready, read to EOF
 *   /proc, write {"t":"ready"}, close ▶ (knows exec loaded everything)
 *                                     pivot_root, exit 0 ─────────────▶
 *   read go (blocks) ◀──────────────────────────────────────────────── write {"t":"go"}
 *   parent-death signal cleared, close go ───────────────────────────▶ (goTaken: no reader left)
 *   /proc, hostname, exec CMD
 *
 * An OCI container (corerun create) waits longer for go: until the engine calls start. There
 * corerun-mount --oci opens go once it has read ready and, its last act after pivot_root,
 * writes {"t":"pivoted"} on it: corerun-exec --oci sets up what lives inside the new root (the
 * config's sysctls, read-only and masked paths, working directory) then, as runc's init does
 * before its exec FIFO, and reads go after it. A driver that sends no "pivoted" sends go alone;
 * those steps then follow go. Without startContainer hooks, corerun-exec hands go over
 * (handOver) to the stub it execs into, corerun-exe, which reads go itself.
 *
 * corerun-exec holds go open read-write so that its read blocks until a message arrives instead
 * of seeing EOF while no writer is there yet, and so that it alone reads go. Each side opens its
 * FIFOs before the root moves: the paths live on the host.
 * The open of ready is also a barrier: it returns only once the reader has opened its end, and
 * corerun-mount opens it after it has read what it needs of the host's /proc (which, rootless,
 * it reads from inside the container's mount namespace). corerun-exec therefore mounts its own
 * /proc only after that open; steps that touch no mount may come before it, while it waits.
 * A failure before "ready" is sent as {"t":"error",...} on ready, so the reader reports it and
 * stops instead of pivoting; after "ready", corerun-exec reports errors itself and exits 125-127.
 */
import { closeSync, openSync, readFileSync, readSync, writeSync, constants } from "node:fs";
import { join } from "node:path";
import type { Syscall } from "@corerun/syscall";
import { UsageError } from "@corerun/cli";

export type SyncMessage =
  | { t: "ready" }
  | { t: "pivoted" }
  | { t: "go"; state?: unknown; tty?: number }
  | { t: "error"; message: string; exitCode: number };

export class UnexpectedMessage extends Error {
  override name = "UnexpectedMessage";
  constructor(readonly expected: SyncMessage["t"], readonly received: string) {
    super(`sync: expected "${expected}", received ${received || "end of file"}`);
  }
}

export function readyPath(dir: string): string {
  return join(dir, "ready");
}

export function goPath(dir: string): string {
  return join(dir, "go");
}

export function encode(msg: SyncMessage): string {
  return `${JSON.stringify(msg)}\n`;
}

export function decode(line: string): SyncMessage {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new Error(`sync: not a message: ${JSON.stringify(line.slice(0, 80))}`);
  }
  const t = typeof value === "object" && value !== null ? (value as { t?: unknown }).t : undefined;
  if (t === "ready" || t === "pivoted") return { t };
  // go may carry the container's OCI state, for the hooks that run just before the exec.
  // and the index of a pty of the container's devpts to take as its terminal (corerun run -t).
  if (t === "go") {
    const { state, tty } = value as { state?: unknown; tty?: unknown };
    if (tty !== undefined && !(typeof tty === "number" && Number.isInteger(tty) && tty >= 0)) throw new Error(`sync: go names no pty: ${JSON.stringify(line.slice(0, 80))}`);
    return { t, ...(state === undefined ? {} : { state }), ...(tty === undefined ? {} : { tty }) };
  }
  if (t === "error") {
    const v = value as { message?: unknown; exitCode?: unknown };
    return { t, message: String(v.message ?? "unknown error"), exitCode: typeof v.exitCode === "number" ? v.exitCode : 125 };
  }
  throw new Error(`sync: unknown message ${JSON.stringify(line.slice(0, 80))}`);
}

/** An error the other side reported, kept with its exit status, reported once by the reader. */
export class ReportedError extends Error {
  override name = "ReportedError";
  constructor(message: string, readonly exitCode: number) {
    super(message);
  }
}

/**
 * The waiting side (corerun-exec): opens go at once and ready with openReady (or when it first
 * sends), both before its root can move.
 */
export class ExecSide {
  private readonly go: number;
  private ready: number | undefined;
  private sent = false;
  /** What a read of go brought after the line it was reading: a message written right behind. */
  private pending = "";

  constructor(private readonly dir: string) {
    try {
      this.go = openSync(goPath(dir), constants.O_RDWR);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      throw new UsageError(`--sync-dir ${dir}: no FIFO ${goPath(dir)}; make both with mkfifo ${readyPath(dir)} ${goPath(dir)}`);
    }
  }

  /** Blocks until a reader opens `ready`: corerun-mount, corerun or a script (the barrier above). */
  openReady(): void {
    if (this.ready !== undefined || this.sent) return;
    try {
      this.ready = openSync(readyPath(this.dir), constants.O_WRONLY);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      throw new UsageError(`--sync-dir ${this.dir}: no FIFO ${readyPath(this.dir)}; make both with mkfifo ${readyPath(this.dir)} ${goPath(this.dir)}`);
    }
  }

  private send(msg: SyncMessage): void {
    if (this.sent) return;
    this.openReady();
    this.sent = true;
    writeSync(this.ready!, encode(msg));
    closeSync(this.ready!);
    this.ready = undefined;
  }

  sendReady(): void {
    this.send({ t: "ready" });
  }

  /** Reports a failure before "ready"; returns false when "ready" was already sent. */
  fail(message: string, exitCode: number): boolean {
    if (this.sent) return false;
    this.send({ t: "error", message, exitCode });
    return true;
  }

  /**
   * Blocks until a whole line has arrived on go, keeping what came after it, and requires it to be
   * one of `kinds` (`expected` names them in the error); returns the message.
   */
  private next<K extends "pivoted" | "go">(kinds: readonly K[], expected: SyncMessage["t"]): SyncMessage & { t: K } {
    const buf = Buffer.alloc(512);
    let text = this.pending;
    while (!text.includes("\n")) {
      const n = readSync(this.go, buf, 0, buf.length, null);
      if (n === 0) break;
      text += buf.toString("utf8", 0, n);
    }
    const nl = text.indexOf("\n");
    this.pending = nl < 0 ? "" : text.slice(nl + 1);
    const line = nl < 0 ? text : text.slice(0, nl);
    const msg = line ? decode(line) : undefined;
    if (!msg || !(kinds as readonly string[]).includes(msg.t)) throw new UnexpectedMessage(expected, line);
    return msg as SyncMessage & { t: K };
  }

  /**
   * Blocks until one line arrives on go, and requires it to be "go"; returns the message. go
   * stays open until release(): its close tells the sender (goTaken) that the message was taken.
   */
  waitGo(): SyncMessage & { t: "go" } {
    return this.next(["go"], "go");
  }

  /** corerun-mount's "pivoted" (see above), or "go" from a driver that sends none. */
  waitPivotedOrGo(): SyncMessage & { t: "pivoted" | "go" } {
    return this.next(["pivoted", "go"], "pivoted");
  }

  release(): void {
    closeSync(this.go);
  }

  /**
   * go's fd, for a process that reads go itself after this one's exec (corerun-exe), while no
   * byte of it has been read ahead; undefined when one has (go came with "pivoted": the message
   * is here already, for waitGo).
   */
  handOver(): number | undefined {
    return this.pending ? undefined : this.go;
  }
}

/** The process on the other end of a FIFO, as a pidfd: a wait on it ends when it dies. */
export interface Peer {
  pidfd: number;
  /** How to name it when it died, e.g. "corerun-exec (pid 4242)". */
  name: string;
  sys: Pick<Syscall, "poll">;
}

/** The peer died before it said anything: there is nothing left to wait for. */
export class PeerGone extends Error {
  override name = "PeerGone";
}

/**
 * Reads `ready` to its end. Without a peer, the open blocks until a writer comes, for ever if
 * none does. With one, the FIFO is opened without blocking (a reader may always do that) and
 * polled with the peer's pidfd: the wait ends when the peer dies. Until a writer has opened a
 * FIFO, Linux reports no hang-up on it to a reader, so the poll sleeps instead of spinning.
 */
function readReady(dir: string, peer: Peer | undefined): string {
  if (!peer) return readFileSync(readyPath(dir), "utf8");
  const fd = openSync(readyPath(dir), constants.O_RDONLY | constants.O_NONBLOCK);
  const buf = Buffer.alloc(4096);
  let text = "";
  try {
    for (;;) {
      const [fifo, gone] = peer.sys.poll([fd, peer.pidfd], -1);
      if (fifo) {
        let n: number;
        try {
          n = readSync(fd, buf, 0, buf.length, null);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === "EAGAIN") continue;
          throw err;
        }
        if (n === 0) return text;
        text += buf.toString("utf8", 0, n);
      } else if (gone) {
        throw new PeerGone(`${peer.name} exited before it said ready`);
      }
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads the one message on `ready` (blocks until corerun-exec writes it, or, given its pidfd,
 * until it dies); throws its error.
 */
export function waitReady(dir: string, peer?: Peer): void {
  const text = readReady(dir, peer);
  const first = text.split("\n")[0] ?? "";
  const msg = first ? decode(first) : undefined;
  if (msg?.t === "error") throw new ReportedError(msg.message, msg.exitCode);
  if (msg?.t !== "ready") throw new UnexpectedMessage("ready", first);
}

/** Opens go for writing. Never blocks: corerun-exec holds go open read-write. */
export function openGo(dir: string): number {
  try {
    return openSync(goPath(dir), constants.O_WRONLY | constants.O_NONBLOCK);
  } catch (err) {
    // ENXIO: no reader holds go open, so the waiting process is gone.
    if ((err as NodeJS.ErrnoException).code === "ENXIO") throw new PeerGone(`the process waiting on ${goPath(dir)} exited before go`);
    throw err;
  }
}

/** Writes one message on go through fd (from openGo), and closes it. */
export function writeGo(fd: number, msg: SyncMessage & { t: "pivoted" | "go" }): void {
  try {
    writeSync(fd, encode(msg));
  } finally {
    closeSync(fd);
  }
}

/** Tells corerun-exec to go on. */
export function sendGo(dir: string, state?: unknown, tty?: number): void {
  writeGo(openGo(dir), { t: "go", ...(state === undefined ? {} : { state }), ...(tty === undefined ? {} : { tty }) });
}

/**
 * Resolves once no process holds go open for reading: corerun-exec has taken "go" and released
 * it (and with it the parent-death signal that guarded its wait), or it died. A detached start
 * waits for this before it exits, or its exit could kill the first process in that instant.
 */
export async function goTaken(dir: string): Promise<void> {
  for (;;) {
    let fd: number;
    try {
      fd = openSync(goPath(dir), constants.O_WRONLY | constants.O_NONBLOCK);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENXIO") return;
      throw err;
    }
    closeSync(fd);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}
