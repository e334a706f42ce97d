/**
 * The terminal of `corerun run -t` and `corerun exec -t`: a pty from the container's own devpts
 * (so the container sees /dev/pts/N of its instance), its peer the process's controlling
 * terminal, and the master relayed here to a readable/writable pair: corerun's own stdin and
 * stdout, or any other pair (a socket of a client that attaches later).
 *
 * On a terminal, corerun's side goes raw for the relay (Ctrl-C, Ctrl-Z reach the container as
 * bytes, and its line discipline signals its foreground job), the window size is passed at start
 * and on every resize (SIGWINCH), and the terminal is restored at the end. Without a terminal on
 * corerun's side (a pipe, a file) the bytes are relayed as they are, as `docker run -t` does.
 */
import { closeSync } from "node:fs";
import tty from "node:tty";
import { openPty, setWindowSize } from "@corerun/syscall";

export interface Terminal {
  master: number;
  peer: number;
  /** N of /dev/pts/N in the container's devpts. */
  index: number;
}

/** How long the relay still drains output once the process has exited. */
const DRAIN_MS = 2000;

/**
 * A new pty from the devpts of the container whose first process is pid, sized as given or as
 * corerun's own terminal (stdout) is.
 */
export function openTerminal(pid: number, size?: { height: number; width: number }): Terminal {
  const t = openPty(`/proc/${pid}/root/dev/pts`);
  const own = process.stdout.isTTY ? { height: process.stdout.rows, width: process.stdout.columns } : undefined;
  const s = size ?? own;
  if (s) setWindowSize(t.master, s.height, s.width);
  return t;
}

export interface RelayEnds {
  /** Bytes for the terminal (-i); without it the terminal gets no input from here. */
  input?: NodeJS.ReadableStream | undefined;
  output: NodeJS.WritableStream;
}

export interface Relay {
  /**
   * Call once the process has exited: closes `peer` (a copy still held here) and waits until
   * every other holder of the peer has closed it (the pty reports EIO) for at most DRAIN_MS, so
   * that the last output is written; then restores the terminal and stops reading.
   */
  finish(peer?: number): Promise<void>;
}

export function relayTerminal(master: number, ends: RelayEnds): Relay {
  const pty = new tty.ReadStream(master);
  const input = ends.input as (NodeJS.ReadableStream & Partial<tty.ReadStream>) | undefined;
  const output = ends.output as NodeJS.WritableStream & Partial<tty.WriteStream>;
  const closed = new Promise<void>((resolve) => {
    // EIO: no process holds the peer any more; it is how a pty master sees the end.
    pty.on("error", () => resolve());
    pty.on("close", () => resolve());
    pty.on("end", () => resolve());
  });
  pty.on("data", (chunk: Buffer) => output.write(chunk));
  const raw = input?.isTTY === true && typeof input.setRawMode === "function";
  if (raw) input.setRawMode!(true);
  const onInput = (chunk: Buffer) => pty.write(chunk);
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
  return {
    async finish(peer?: number) {
      if (peer !== undefined) closeSync(peer);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([closed, new Promise<void>((resolve) => (timer = setTimeout(resolve, DRAIN_MS)))]);
      clearTimeout(timer);
      if (output.isTTY) output.off("resize", onResize);
      if (input) {
        input.off("data", onInput);
        input.off("end", onEnd);
        if (raw) input.setRawMode!(false);
        input.pause();
      }
      pty.destroy();
    },
  };
}
