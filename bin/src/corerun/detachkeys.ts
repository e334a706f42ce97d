/**
 * Detach keys, as Docker spells them: comma-separated keys, each a single character or
 * ctrl-<c> for c in @, a-z, [, \, ], ^, _ (the control codes 0 to 31). The default is
 * ctrl-p,ctrl-q. An empty string turns detaching off (as Podman's --detach-keys "").
 */
import { UsageError } from "@corerun/cli";

export const DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q";

const CTRL = "@abcdefghijklmnopqrstuvwxyz[\\]^_";

/** The byte sequence of a --detach-keys value; [] when detaching is off. */
export function parseDetachKeys(spec: string): number[] {
  if (spec === "") return [];
  return spec.split(",").map((key) => {
    if (key.length === 1) return key.charCodeAt(0);
    const m = /^ctrl-(.)$/i.exec(key);
    const code = m ? CTRL.indexOf(m[1]!.toLowerCase()) : -1;
    if (code < 0) {
      throw new UsageError(`--detach-keys ${JSON.stringify(spec)}: unknown key ${JSON.stringify(key)}; give comma-separated single characters or ctrl-<a-z, @, [, \\, ], ^, _> (default ${DEFAULT_DETACH_KEYS})`);
    }
    return code;
  });
}

/**
 * Watches typed input for the detach sequence. A byte that may begin the sequence is held back
 * until the next one shows whether it does; when the sequence breaks, the held bytes go on first.
 */
export class DetachScanner {
  private held: number[] = [];

  constructor(private readonly keys: readonly number[]) {}

  /** The bytes to pass on, and whether the sequence is complete (bytes after it are dropped). */
  feed(chunk: Uint8Array): { out: Buffer; detach: boolean } {
    const out: number[] = [];
    for (const b of chunk) {
      if (!this.keys.length) {
        out.push(b);
        continue;
      }
      if (b === this.keys[this.held.length]) {
        this.held.push(b);
        if (this.held.length === this.keys.length) {
          this.held = [];
          return { out: Buffer.from(out), detach: true };
        }
        continue;
      }
      out.push(...this.held);
      this.held = [];
      // Not a single key here: that would have completed the sequence above.
      if (b === this.keys[0]) this.held.push(b);
      else out.push(b);
    }
    return { out: Buffer.from(out), detach: false };
  }
}
