/**
 * The corerun-exec half of the handshake, for the sync tests: `exec-side.ts DIR ok` sends ready,
 * waits for go and prints "went"; `exec-side.ts DIR fail` reports an error before ready. Any
 * error is printed as "NAME: message" with exit status 3.
 */
import { ExecSide } from "../index.ts";

const [dir, mode] = process.argv.slice(2);
try {
  const side = new ExecSide(dir!);
  if (mode === "fail") {
    const first = side.fail("sh: not found in the root filesystem", 127);
    const second = side.fail("reported twice", 125);
    process.stdout.write(`fail ${first} ${second}\n`);
    process.exit(0);
  }
  side.sendReady();
  process.stdout.write(`after ready, fail gives ${side.fail("too late", 125)}\n`);
  side.waitGo();
  side.release();
  process.stdout.write("went\n");
} catch (err) {
  process.stdout.write(`${(err as Error).name}: ${(err as Error).message}\n`);
  process.exit(3);
}
