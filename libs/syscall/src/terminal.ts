/**
 * Ptys and the console-socket protocol engines use for a container's terminal: the runtime
 * allocates a pty from the container's own devpts and sends the master to a caller's AF_UNIX
 * socket as SCM_RIGHTS (one message, the pty's name as data), as runc does.
 */
import { check, fn, nativeFn } from "./_libc.ts";

const O_RDWR = 0o2;
const O_NOCTTY = 0o400;
const O_CLOEXEC = 0o2000000;
const TIOCSPTLCK = 0x40045431;
const TIOCGPTN = 0x80045430;
const TIOCSWINSZ = 0x5414;
const TIOCSCTTY = 0x540e;
const AF_UNIX = 1;
const SOCK_STREAM = 1;

const ioctl = () => fn("int ioctl(int fd, unsigned long request, ...)");
const open = () => fn("int open(const char *path, int flags, ...)");

/**
 * A new pty from the devpts instance at ptsDir (opened through ptsDir/ptmx, so from the
 * container's instance even when the path goes through /proc/PID/root): the master and the
 * peer, both close-on-exec.
 */
export function openPty(ptsDir: string): { master: number; peer: number; index: number } {
  const master = check(open()(`${ptsDir}/ptmx`, O_RDWR | O_NOCTTY | O_CLOEXEC), "open", `${ptsDir}/ptmx`);
  try {
    const unlock = Int32Array.of(0);
    check(ioctl()(master, TIOCSPTLCK, "int *", unlock), "ioctl TIOCSPTLCK", `${ptsDir}/ptmx`);
    const n = Int32Array.of(0);
    check(ioctl()(master, TIOCGPTN, "_Out_ int *", n), "ioctl TIOCGPTN", `${ptsDir}/ptmx`);
    const peer = check(open()(`${ptsDir}/${n[0]}`, O_RDWR | O_NOCTTY | O_CLOEXEC), "open", `${ptsDir}/${n[0]}`);
    return { master, peer, index: n[0]! };
  } catch (err) {
    fn("int close(int fd)")(master);
    throw err;
  }
}

export function setWindowSize(fd: number, rows: number, cols: number): void {
  // struct winsize { unsigned short ws_row, ws_col, ws_xpixel, ws_ypixel }
  const ws = Buffer.alloc(8);
  ws.writeUInt16LE(rows, 0);
  ws.writeUInt16LE(cols, 2);
  check(ioctl()(fd, TIOCSWINSZ, "void *", ws), "ioctl TIOCSWINSZ");
}

// struct termios on Linux (glibc): c_iflag, c_oflag, c_cflag, c_lflag, c_line, c_cc[32], speeds.
const TERMIOS_SIZE = 60;
const OPOST = 0o1;
const TCSADRAIN = 1;

/**
 * Puts the terminal at fd in raw mode (cfmakeraw: no echo, no line editing, no signals from keys,
 * no output processing), or with outputOnly only turns off output processing (OPOST, so ONLCR
 * no longer turns a relayed \r\n into \r\r\n). Returns what puts the terminal back as it was.
 * Node's setRawMode keeps OPOST on, which is why a relay uses this instead.
 */
export function makeRaw(fd: number, outputOnly = false): () => void {
  const saved = Buffer.alloc(TERMIOS_SIZE);
  check(fn("int tcgetattr(int fd, _Out_ uint8_t *termios)")(fd, saved), "tcgetattr", `fd ${fd}`);
  const raw = Buffer.from(saved);
  if (outputOnly) raw.writeUInt32LE(raw.readUInt32LE(4) & ~OPOST, 4);
  else fn("void cfmakeraw(_Inout_ uint8_t *termios)")(raw);
  check(fn("int tcsetattr(int fd, int when, const uint8_t *termios)")(fd, TCSADRAIN, raw), "tcsetattr", `fd ${fd}`);
  return () => void fn("int tcsetattr(int fd, int when, const uint8_t *termios)")(fd, TCSADRAIN, saved);
}

/** Makes fd the calling process's controlling terminal and its stdin, stdout and stderr. */
export function takeTerminal(fd: number): void {
  check(ioctl()(fd, TIOCSCTTY, "int", 0), "ioctl TIOCSCTTY");
  for (const target of [0, 1, 2]) check(fn("int dup2(int oldfd, int newfd)")(fd, target), "dup2", `fd ${target}`);
}

/** A connected AF_UNIX stream socket (close-on-exec) to a filesystem path. */
export function connectUnix(path: string): number {
  const fd = check(fn("int socket(int domain, int type, int protocol)")(AF_UNIX, SOCK_STREAM | O_CLOEXEC, 0), "socket", path);
  // struct sockaddr_un { sa_family_t sun_family; char sun_path[108]; }
  const addr = Buffer.alloc(110);
  addr.writeUInt16LE(AF_UNIX, 0);
  if (Buffer.byteLength(path) > 107) throw new Error(`console socket path ${path} is longer than 107 bytes`);
  addr.write(path, 2);
  try {
    check(fn("int connect(int fd, const void *addr, unsigned int len)")(fd, addr, 110), "connect", path);
  } catch (err) {
    fn("int close(int fd)")(fd);
    throw err;
  }
  return fd;
}

export type FdSender = (sock: number, fd: number, name: string) => void;

/**
 * A sender of fds over a connected socket as the console-socket protocol wants it (native
 * helper). Made before the caller's root moves: the helper is loaded from the host's path.
 */
export function fdSender(): FdSender {
  const send = nativeFn("int corerun_send_fd(int sock, int fd, const char *name)");
  return (sock, fd, name) => void check(send(sock, fd, name), "sendmsg", "console socket");
}
