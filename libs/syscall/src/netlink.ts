import { closeSync, openSync } from "node:fs";
import { check, fn } from "./_libc.ts";
import { CLONE_NEWNET } from "./constants.ts";

/** <linux/netlink.h>, <sys/socket.h>. */
export const AF_NETLINK = 16;
export const NETLINK_ROUTE = 0;
export const NETLINK_SOCK_DIAG = 4;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_RCVBUF = 8;
const SOL_NETLINK = 270;
const NETLINK_EXT_ACK = 11;
const MSG_DONTWAIT = 0x40;

/**
 * A bound netlink socket. Requests go to the kernel (port 0); replies are read into a caller's
 * buffer. The socket belongs to the network namespace it was created in for its whole life,
 * whichever namespace the thread that uses it is in later.
 */
export interface NetlinkSocket {
  readonly fd: number;
  /** Sends one datagram; several netlink messages may sit in it and are handled in order. */
  send(datagram: Buffer): void;
  /**
   * Reads one datagram into buf and returns its length, or 0 when nothing is queued. rtnetlink
   * handles a request inside sendmsg, and a dump refills the queue inside recvmsg, so a reply
   * is always queued by the time this runs: waiting would only ever hang.
   */
  recv(buf: Buffer): number;
  close(): void;
}

const SOCKET = "int socket(int domain, int type, int protocol)";
const SETSOCKOPT = "int setsockopt(int fd, int level, int name, const void *value, unsigned int len)";

function int32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(value);
  return b;
}

function createSocket(protocol: number, what: string): number {
  const fd = check(fn(SOCKET)(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol), "socket", what);
  try {
    // struct sockaddr_nl { sa_family_t nl_family; unsigned short nl_pad; u32 nl_pid; u32 nl_groups }:
    // port id 0 lets the kernel pick one, no multicast groups.
    const addr = Buffer.alloc(12);
    addr.writeUInt16LE(AF_NETLINK, 0);
    check(fn("int bind(int fd, const void *addr, unsigned int len)")(fd, addr, 12), "bind", what);
    // Extended acks carry the kernel's own sentence ("Nexthop has invalid gateway") next to
    // errno; kernels before 4.12 refuse the option, which costs only that sentence.
    fn(SETSOCKOPT)(fd, SOL_NETLINK, NETLINK_EXT_ACK, int32(1), 4);
    // A link or route dump of a busy host fills the default buffer before it is read.
    fn(SETSOCKOPT)(fd, SOL_SOCKET, SO_RCVBUF, int32(1 << 20), 4);
    return fd;
  } catch (err) {
    fn("int close(int fd)")(fd);
    throw err;
  }
}

/**
 * Opens a netlink socket (NETLINK_ROUTE by default) in the calling thread's network namespace,
 * or, given `netns` (an fd of /proc/PID/ns/net or of a bind-mounted netns file), in that one.
 * setns(CLONE_NEWNET) moves only Node's main thread, so the switch, the socket() call and the
 * switch back happen here synchronously with nothing in between; the socket keeps its namespace.
 */
export function openNetlink(opts: { protocol?: number; netns?: { fd: number; path: string } } = {}): NetlinkSocket {
  const protocol = opts.protocol ?? NETLINK_ROUTE;
  let fd: number;
  if (opts.netns === undefined) {
    fd = createSocket(protocol, "netlink");
  } else {
    const home = openSync("/proc/thread-self/ns/net", "r");
    try {
      check(fn("int setns(int fd, int nstype)")(opts.netns.fd, CLONE_NEWNET), "setns", opts.netns.path);
      try {
        fd = createSocket(protocol, `netlink in ${opts.netns.path}`);
      } finally {
        check(fn("int setns(int fd, int nstype)")(home, CLONE_NEWNET), "setns", "/proc/thread-self/ns/net");
      }
    } finally {
      closeSync(home);
    }
  }
  return netlinkSocket(fd);
}

function netlinkSocket(fd: number): NetlinkSocket {
  let open = true;
  return {
    fd,
    send(datagram) {
      const n = check(fn("long send(int fd, const void *buf, size_t len, int flags)")(fd, datagram, datagram.length, 0), "send", "netlink");
      if (n !== datagram.length) throw new Error(`netlink send wrote ${n} of ${datagram.length} bytes`);
    },
    recv(buf) {
      const n = fn("long recv(int fd, void *buf, size_t len, int flags)")(fd, buf, buf.length, MSG_DONTWAIT);
      if (n < 0) {
        try {
          check(n, "recv", "netlink");
        } catch (err) {
          if ((err as { code?: string }).code === "EAGAIN") return 0;
          throw err;
        }
      }
      return n;
    },
    close() {
      if (open) fn("int close(int fd)")(fd);
      open = false;
    },
  };
}

/**
 * The index of the calling thread's network namespace's interface of that name, or undefined
 * when there is none: if_nametoindex(3), one ioctl, where a netlink lookup makes the kernel
 * describe the whole link and the caller decode it. For checking many names at once.
 */
export function interfaceIndex(name: string): number | undefined {
  const index = fn("unsigned int if_nametoindex(const char *ifname)")(name);
  return index > 0 ? index : undefined;
}
