/**
 * The terminal of `corerun run -t` and `corerun exec -t`: a pty from the container's own devpts
 * (so the container sees /dev/pts/N of its instance), its peer the process's controlling
 * terminal, and the master relayed here to a readable/writable pair: corerun's own stdin and
 * stdout, or any other pair (a socket of a client that attaches later).
 *
 * On a terminal, corerun's side goes raw for the relay (cfmakeraw: Ctrl-C, Ctrl-Z reach the
 * container as bytes, and its line discipline signals its foreground job; no output processing,
 * so the container's bytes reach the screen unchanged), the window size is passed at start and
 * on every resize (SIGWINCH), and the terminal is restored at the end. Without a terminal on
 * corerun's side (a pipe, a file) the bytes are relayed as they are, as `docker run -t` does.
 */
import { spawn } from "node:child_process";
import { closeSync } from "node:fs";
import { dirname, join } from "node:path";
import tty from "node:tty";
import { makeRaw, openPty, setWindowSize } from "@corerun/syscall";
import { DetachScanner } from "./detachkeys.ts";

export interface Terminal {
  master: number;
  peer: number;
  /** N of /dev/pts/N in the container's devpts. */
  index: number;
}

/** How long the relay still drains output once the process has exited. */
const DRAIN_MS = 2000;

/** The size of a pty when corerun's side has no terminal to take it from (a VT100's). */
export const DEFAULT_WINDOW = { height: 24, width: 80 } as const;

/**
 * A new pty from the devpts of the container whose first process is pid, sized as given, or as
 * corerun's own terminal (stdout) is, or else 24x80 (a 0x0 window breaks full-screen programs).
 */
export function openTerminal(pid: number, size?: { height: number; width: number }): Terminal {
  const t = openPty(`/proc/${pid}/root/dev/pts`);
  const own = process.stdout.isTTY ? { height: process.stdout.rows, width: process.stdout.columns } : undefined;
  const s = size ?? own ?? DEFAULT_WINDOW;
  setWindowSize(t.master, s.height, s.width);
  return t;
}

type TtyIn = NodeJS.ReadableStream & Partial<tty.ReadStream>;
type TtyOut = NodeJS.WritableStream & Partial<tty.WriteStream>;

/**
 * Raw mode for a relay: the input terminal fully raw (when it is one and input is relayed), the
 * output terminal without output processing. Returns what restores both (also run at exit, so
 * that a relay ended by an error does not leave the user's terminal raw).
 */
export function rawTerminal(input: TtyIn | undefined, output: TtyOut): () => void {
  const restores: (() => void)[] = [];
  const fdOf = (s: unknown) => (s as { fd?: number }).fd;
  // Output first: when both are one terminal, restoring in reverse order leaves its first state.
  const outFd = fdOf(output);
  if (output.isTTY && outFd !== undefined) restores.push(makeRaw(outFd, true));
  const inFd = input && fdOf(input);
  if (input?.isTTY && inFd !== undefined) restores.push(makeRaw(inFd));
  let done = false;
  const restore = () => {
    if (done) return;
    done = true;
    for (const r of restores.reverse()) r();
    process.off("exit", restore);
  };
  process.on("exit", restore);
  return restore;
}

export interface RelayEnds {
  /** Bytes for the terminal (-i); without it the terminal gets no input from here. */
  input?: NodeJS.ReadableStream | undefined;
  output: NodeJS.WritableStream;
  /** The detach sequence (parseDetachKeys) and what to do when it is typed: it is not relayed. */
  detach?: { keys: readonly number[]; onDetach: () => void } | undefined;
}

export interface Relay {
  /** Stops relaying at once and restores the terminal; the pty master is left open. */
  detach(): void;
  /**
   * Call once the process has exited: closes `peer` (a copy still held here) and waits until
   * every other holder of the peer has closed it (the pty reports EIO) for at most DRAIN_MS, so
   * that the last output is written; then restores the terminal and stops reading.
   */
  finish(peer?: number): Promise<void>;
}

export function relayTerminal(master: number, ends: RelayEnds): Relay {
  const pty = new tty.ReadStream(master);
  const input = ends.input as TtyIn | undefined;
  const output = ends.output as TtyOut;
  const closed = new Promise<void>((resolve) => {
    // EIO: no process holds the peer any more; it is how a pty master sees the end.
    pty.on("error", () => resolve());
    pty.on("close", () => resolve());
    pty.on("end", () => resolve());
  });
  pty.on("data", (chunk: Buffer) => output.write(chunk));
  const restore = rawTerminal(input, output);
  const scanner = ends.detach?.keys.length ? new DetachScanner(ends.detach.keys) : undefined;
  const onInput = (chunk: Buffer) => {
    const { out, detach } = scanner ? scanner.feed(chunk) : { out: chunk, detach: false };
    if (out.length) pty.write(out);
    if (detach) ends.detach!.onDetach();
  };
  // End of input (a pipe): the terminal's EOF character, as a user typing Ctrl-D.
  const onEnd = () => pty.write("\x04");
  if (input) {
    input.on("data", onInput);
    input.on("end", onEnd);
    input.resume();
  }
  const onResize = () => {
    if (output.rows && output.columns) setWindowSize(master, output.rows, output.columns);
  };
  if (output.isTTY) output.on("resize", onResize);
  const stop = () => {
    if (output.isTTY) output.off("resize", onResize);
    if (input) {
      input.off("data", onInput);
      input.off("end", onEnd);
      input.pause();
    }
    restore();
  };
  return {
    detach() {
      pty.removeAllListeners("data");
      pty.pause();
      stop();
    },
    async finish(peer?: number) {
      if (peer !== undefined) closeSync(peer);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([closed, new Promise<void>((resolve) => (timer = setTimeout(resolve, DRAIN_MS)))]);
      clearTimeout(timer);
      stop();
      pty.destroy();
    },
  };
}

/**
 * Keeps a pty's master open and read (its output discarded) until no process holds the peer,
 * in a small process of its own (corerun-monitor --drain): what a process keeps once its client
 * has detached from it, so that it gets no hangup.
 */
export function holdTerminal(master: number): void {
  const monitor = join(dirname(process.argv[1] ?? "."), "corerun-monitor");
  const holder = spawn(monitor, ["--drain"], { stdio: [master, "ignore", "ignore"], detached: true });
  // Without the holder (not built) the process gets the hangup a closed terminal gives.
  holder.on("error", () => {});
  holder.unref();
}
