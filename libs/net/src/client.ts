import { SyscallError, type NetlinkSocket } from "@corerun/syscall";
import {
  decodeError, messageName, NLM_F_ACK, NLM_F_DUMP_INTR, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, nlmsg, splitMessages,
  type NlMessage, type Request,
} from "./rtnl.ts";

/** What to do about a refusal a user can act on, keyed by "MESSAGE:ERRNO" or "ERRNO". */
const HINTS: Record<string, string> = {
  EPERM: "configuring networks needs root (CAP_NET_ADMIN); run with sudo",
  "RTM_NEWLINK:EEXIST": "an interface with that name already exists",
  "RTM_NEWLINK:EOPNOTSUPP": "the kernel lacks the bridge or veth driver; load it (modprobe bridge veth)",
  "RTM_NEWLINK:ENODEV": "the bridge disappeared; run the command again to recreate it",
  "RTM_NEWLINK:EBADF": "the container's network namespace fd is not valid any more",
  "RTM_NEWLINK:EINVAL": "the kernel refused the link settings; the message above says which",
  "RTM_NEWADDR:EEXIST": "the interface already has that address",
  "RTM_NEWROUTE:EEXIST": "the container already has a default route; was setup run twice?",
  "RTM_NEWROUTE:ENETUNREACH": "the gateway is not on the interface's subnet",
  "RTM_NEWROUTE:ENETDOWN": "the container's interface is down",
  ENODEV: "the interface does not exist (any more)",
};

/** A refusal of one netlink request (rtnetlink, sock_diag): which request, errno, the kernel's own sentence, a hint. */
export class NetlinkError extends SyscallError {
  override name = "NetlinkError";
  readonly kernelMessage: string | undefined;

  constructor(req: Pick<Request, "type" | "what" | "object" | "name">, errno: number, kernelMessage?: string) {
    const syscall = req.name ?? messageName(req.type);
    super({ syscall, errno, path: req.object, context: req.what });
    this.kernelMessage = kernelMessage;
    const hint = HINTS[`${syscall}:${this.code}`] ?? HINTS[this.code];
    // SyscallError's own sentence ends with its generic hint; ours is specific to the request.
    const base = this.message.split("; ")[0];
    this.message = `${base}${kernelMessage ? `: kernel says "${kernelMessage}"` : ""}${hint ? `; ${hint}` : ""}`;
  }
}

export type Result = { ok: true; replies: NlMessage[] } | { ok: false; error: NetlinkError };

const RECV_SIZE = 1 << 16;

/**
 * Requests and dumps over one netlink socket (rtnetlink; sock_diag takes dumps only). A batch
 * goes out as one datagram: the kernel handles the messages in order, each with its own ack, and
 * keeps going after a failure, so a batch holds only requests that are safe to run whether or
 * not the ones before them worked.
 */
export class Rtnl {
  private seq = Math.floor(Math.random() * 0x10000) * 0x1000;
  private readonly buf = Buffer.alloc(RECV_SIZE);

  constructor(readonly socket: NetlinkSocket) {}

  /**
   * Runs the requests and returns, for each, its data replies or the kernel's refusal: a caller
   * that must undo a half-done batch learns exactly which requests took effect.
   */
  results(reqs: readonly Request[]): Result[] {
    if (reqs.length === 0) return [];
    const first = this.seq + 1;
    this.seq += reqs.length;
    this.socket.send(Buffer.concat(reqs.map((r, i) => nlmsg(r.type, r.flags | NLM_F_REQUEST | NLM_F_ACK, first + i, r.payload))));
    const replies: NlMessage[][] = reqs.map(() => []);
    const errors: (NetlinkError | undefined)[] = reqs.map(() => undefined);
    let acked = 0;
    while (acked < reqs.length) {
      const n = this.socket.recv(this.buf);
      if (n === 0) throw new Error(`netlink: the kernel answered ${acked} of ${reqs.length} requests (${reqs[acked]?.what})`);
      for (const msg of splitMessages(this.buf.subarray(0, n))) {
        const i = msg.seq - first;
        if (i < 0 || i >= reqs.length) continue;
        if (msg.type === NLMSG_ERROR) {
          const e = decodeError(msg);
          if (e.errno !== 0) errors[i] = new NetlinkError(reqs[i]!, e.errno, e.message);
          acked++;
        } else {
          replies[i]!.push({ ...msg, payload: Buffer.from(msg.payload) });
        }
      }
    }
    return reqs.map((_, i) => (errors[i] ? { ok: false, error: errors[i]! } : { ok: true, replies: replies[i]! }));
  }

  /** Runs the requests; returns each one's data replies; throws the first refusal. */
  batch(reqs: readonly Request[]): NlMessage[][] {
    const results = this.results(reqs);
    const failed = results.find((r) => !r.ok);
    if (failed && !failed.ok) throw failed.error;
    return results.map((r) => (r.ok ? r.replies : []));
  }

  request(req: Request): NlMessage[] {
    return this.batch([req])[0]!;
  }

  /** A dump, repeated when the kernel flags it as interrupted by a concurrent change. */
  dump(req: Request): NlMessage[] {
    for (let attempt = 0; ; attempt++) {
      const seq = ++this.seq;
      this.socket.send(nlmsg(req.type, req.flags | NLM_F_REQUEST, seq, req.payload));
      const out: NlMessage[] = [];
      let interrupted = false;
      for (let done = false; !done; ) {
        const n = this.socket.recv(this.buf);
        if (n === 0) throw new Error(`netlink: the kernel did not finish the dump (${req.what})`);
        for (const msg of splitMessages(this.buf.subarray(0, n))) {
          if (msg.seq !== seq) continue;
          if (msg.flags & NLM_F_DUMP_INTR) interrupted = true;
          if (msg.type === NLMSG_DONE) done = true;
          else if (msg.type === NLMSG_ERROR) {
            const e = decodeError(msg);
            if (e.errno !== 0) throw new NetlinkError(req, e.errno, e.message);
            done = true;
          } else out.push({ ...msg, payload: Buffer.from(msg.payload) });
        }
      }
      if (!interrupted || attempt >= 3) return out;
    }
  }

  close(): void {
    this.socket.close();
  }
}
