// The NETLINK_ROUTE transport: one raw socket, requests sent and their replies read synchronously, kernel errors
// mapped to NetlinkError. Knows nothing of message families: they encode requests with NlWriter (wire.ts) and
// parse replies with their own parsers; exec() and dump() are the two primitives every family uses.
//
// Why raw and synchronous: it costs nothing to import (the npm `netlink` package costs ~38 ms), a request is one
// send() plus one recv() with no event-loop round trip, and, being synchronous, it is safe inside a temporary
// setns() of the main thread (only synchronous work belongs inside a switch: docs/kernel-notes.md §7).
//
// A socket acts in the network namespace of the thread that CREATED it, for its whole life: to work in another
// netns, setns() there, open, setns() back, and keep using the object from anywhere.
//
// Requests are encoded into a reusable buffer; replies are read into one module-wide 64 KiB buffer (safe:
// nothing here is re-entrant or asynchronous).
//
// Acks: within one send() only the LAST request carries NLM_F_ACK. The kernel answers every failing request with
// an NLMSG_ERROR whether or not it asked for an ack, and processes the requests strictly in order, so the ack of
// the last request means "everything before it has been processed": one recv() per send() when all succeeds.
import {
  AF_NETLINK, CLONE_NEWNET, MSG_TRUNC, NETLINK_CAP_ACK, NETLINK_EXT_ACK, NETLINK_ROUTE, SOCK_CLOEXEC, SOCK_RAW, SOL_NETLINK,
  SOL_SOCKET, SO_RCVTIMEO, SysError, close as closeFd, errnoName, ioctlPtr, recv, sendPart,
  openPath, setns, setsockoptBuf, setsockoptInt, socket, strerror,
} from '../libc.js';
import {
  NLMSGERR_ATTR_MSG, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLMSG_NOOP, NLMSG_OVERRUN, NLM_F_ACK, NLM_F_ACK_TLVS,
  NLM_F_CAPPED, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST, NetlinkError, NlWriter, cstr, forEachAttr,
} from './wire.js';

const RCV_TIMEOUT_S = 30;

/** How exec() knows the last request of a send() is answered. */
export const MODE_ACK = 0; // the last request is a mutation: ends at its ack
export const MODE_GET = 1; // the last request is a non-dump GET: ends at its reply (or error)
export const MODE_DUMP = 2; // the last request is a dump: ends at NLMSG_DONE (or error)

/** Parses one data reply's payload b[off..end) (after the nlmsghdr); null skips it. */
export type Parser<T> = (b: Buffer, off: number, end: number) => T | null;

/**
 * Sequence numbers of one socket. Assigned at send time, so messages queued in a batch and direct requests
 * made while the batch is being built never interleave their numbers.
 */
class SeqCounter {
  n = 0;
  /** Reserves `count` consecutive numbers and returns the first. */
  take(count: number): number {
    const first = (this.n + 1) >>> 0;
    this.n = (this.n + count) >>> 0;
    return first;
  }
}

/** Receive buffer shared by all sockets: every transaction finishes before another starts (no re-entrancy). */
const RBUF = Buffer.alloc(64 * 1024);

/** The kernel's extended-ack message in an NLMSG_ERROR / NLMSG_DONE at b[off..off+len), if any. */
function extackMessage(b: Buffer, off: number, len: number, flags: number, type: number): string | null {
  if (!(flags & NLM_F_ACK_TLVS)) return null;
  const end = off + len;
  let a = off + NLMSG_HDRLEN + 4;
  if (type === NLMSG_ERROR) {
    if (flags & NLM_F_CAPPED) a += NLMSG_HDRLEN;
    else if (a + 4 <= end) a += (b.readUInt32LE(a) + 3) & ~3;
  }
  let msg: string | null = null;
  forEachAttr(b, a, end, (t, s, e) => {
    if (t !== NLMSGERR_ATTR_MSG) return false;
    msg = cstr(b, s, e);
    return true;
  });
  return msg;
}

/**
 * Opens a NETLINK_ROUTE socket in the calling thread's current netns (setns() there first to act in another one;
 * the socket keeps acting there after switching back) and returns its fd. Enables extended acks (kernel error
 * text) and capped acks.
 */
export function openRouteSocket(): number {
  let fd: number;
  try {
    fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  } catch (e) {
    throw sysToNl(e, 'open');
  }
  try {
    setsockoptInt(fd, SOL_NETLINK, NETLINK_EXT_ACK, 1);
    setsockoptInt(fd, SOL_NETLINK, NETLINK_CAP_ACK, 1);
    // A safety net, never expected to fire: a reply that never comes becomes an EAGAIN error, not a hang.
    const tv = Buffer.alloc(16);
    tv.writeBigInt64LE(BigInt(RCV_TIMEOUT_S), 0);
    setsockoptBuf(fd, SOL_SOCKET, SO_RCVTIMEO, tv);
  } catch (e) {
    closeFd(fd);
    throw sysToNl(e, 'open');
  }
  return fd;
}

/**
 * Opens a NETLINK_ROUTE socket bound to the netns open as `nsFd`: switches the calling thread there, opens, and
 * switches it back to the netns it was in (synchronously, so nothing else runs while switched). Returns its fd.
 */
export function openRouteSocketIn(nsFd: number): number {
  const back = openPath('/proc/thread-self/ns/net');
  try {
    setns(nsFd, CLONE_NEWNET);
    try {
      return openRouteSocket();
    } finally {
      setns(back, CLONE_NEWNET);
    }
  } finally {
    closeFd(back);
  }
}

/**
 * One NETLINK_ROUTE socket, acting in the network namespace of the thread that opened it: the transport under
 * Netlink (../netlink.ts). All methods are synchronous (one send() and, normally, one recv()); failures throw
 * NetlinkError. Message families call exec() and dump() with requests encoded by an NlWriter.
 */
export class NetlinkSocket {
  private fd: number;
  private readonly seq = new SeqCounter();
  /** Encoder of GET and dump requests (request()). */
  private readonly rw = new NlWriter(512);

  protected constructor(fd: number) {
    this.fd = fd;
  }

  /** True after close(). */
  get closed(): boolean {
    return this.fd < 0;
  }

  /** Closes the socket (idempotent). An open socket keeps its netns alive (docs/kernel-notes.md §8). */
  close(): void {
    if (this.fd >= 0) closeFd(this.fd);
    this.fd = -1;
  }

  /** The socket's encoder for one GET request, emptied: valid until the next request()/dump() of this socket. */
  request(): NlWriter {
    this.rw.reset();
    return this.rw;
  }

  /**
   * Dumps every object of one kind: sends one `type` request with NLM_F_DUMP (its family header and attributes
   * written by `header`) and returns what `parse` made of each reply. Dumps again (at most 4 more times) when the
   * kernel flags the dump as interrupted (NLM_F_DUMP_INTR: the set changed meanwhile).
   */
  dump<T>(op: string, type: number, header: (w: NlWriter) => void, parse: Parser<T>): T[] {
    for (let attempt = 0; ; attempt++) {
      const w = this.request();
      w.begin(type, NLM_F_REQUEST | NLM_F_DUMP);
      header(w);
      w.end(op, `${op}()`);
      const out: T[] = [];
      if (!this.execRaw(w, false, MODE_DUMP, parse, out) || attempt >= 4) return out;
      // NLM_F_DUMP_INTR: the set changed during the dump; the result may be inconsistent: dump again.
    }
  }

  /**
   * Sends the finished messages of `w` in one send() and returns the parsed data replies of its last request
   * (see execRaw): `mode` MODE_ACK when the last request is a mutation (NLM_F_ACK is set on it here), MODE_GET
   * for a non-dump GET, MODE_DUMP for a dump. `isBatch`: errors name the failing request's position.
   */
  exec<T>(w: NlWriter, isBatch: boolean, mode: number, parse: Parser<T> | null): T[] {
    const out: T[] = [];
    this.execRaw(w, isBatch, mode, parse, out);
    return out;
  }

  /** An ioctl on this socket's fd (SIOCGIFINDEX...: it acts in the socket's netns); errors as NetlinkError. */
  ioctl(op: string, request: number, arg: Buffer): void {
    if (this.fd < 0) throw closedError(op);
    try {
      ioctlPtr(this.fd, request, arg);
    } catch (e) {
      throw sysToNl(e, op);
    }
  }

  /**
   * Sends the messages of `w` in one send() and reads replies until the last one is answered. Data replies of
   * the last request are passed to `parse` and collected in `out`; replies with other sequence numbers (left
   * over from an interrupted earlier transaction) are skipped. Throws the first error. Returns true if a dump
   * reply was flagged NLM_F_DUMP_INTR.
   */
  private execRaw<T>(w: NlWriter, isBatch: boolean, mode: number, parse: Parser<T> | null, out: T[]): boolean {
    if (this.fd < 0) throw closedError(w.ops[0] ?? 'netlink');
    const count = w.count;
    if (count === 0) return false;
    const buf = w.buf;
    // Sequence numbers are assigned now, consecutive, so a reply's request is (seq - seq0).
    const seq0 = this.seq.take(count);
    for (let o = 0, i = 0; i < count; i++) {
      buf.writeUInt32LE((seq0 + i) >>> 0, o + 8);
      o += (buf.readUInt32LE(o) + 3) & ~3;
    }
    if (mode === MODE_ACK) buf.writeUInt16LE(buf.readUInt16LE(w.lastMsg + 6) | NLM_F_ACK, w.lastMsg + 6);
    try {
      sendPart(this.fd, buf, w.done);
    } catch (e) {
      throw sysToNl(e, w.ops[0] ?? 'send');
    }
    let err: NetlinkError | null = null;
    let intr = false;
    let done = false;
    const last = count - 1;
    while (!done) {
      const n = this.recvOne(w.ops[last]);
      let off = 0;
      while (off + NLMSG_HDRLEN <= n) {
        const len = RBUF.readUInt32LE(off);
        if (len < NLMSG_HDRLEN || off + len > n) break;
        const k = (RBUF.readUInt32LE(off + 8) - seq0) >>> 0;
        if (k < count) {
          const type = RBUF.readUInt16LE(off + 4);
          const flags = RBUF.readUInt16LE(off + 6);
          if (type === NLMSG_ERROR || type === NLMSG_DONE) {
            const e = len >= NLMSG_HDRLEN + 4 ? RBUF.readInt32LE(off + NLMSG_HDRLEN) : 0;
            if (e < 0 && err === null) err = this.error(w, isBatch, k, -e, extackMessage(RBUF, off, len, flags, type));
            if (k === last) done = true;
          } else if (type === NLMSG_OVERRUN) {
            throw new NetlinkError(`${w.ops[k]}: netlink overrun`, 'ENOBUFS', 105, w.ops[k]);
          } else if (type !== NLMSG_NOOP) {
            if (flags & NLM_F_DUMP_INTR) intr = true;
            if (parse !== null && k === last) {
              const v = parse(RBUF, off + NLMSG_HDRLEN, off + len);
              if (v !== null) out.push(v);
            }
            if (k === last && mode === MODE_GET) done = true;
          }
        }
        off += (len + 3) & ~3;
      }
    }
    if (err !== null) throw err;
    return intr;
  }

  private recvOne(op: string): number {
    for (;;) {
      let n: number;
      try {
        n = recv(this.fd, RBUF, MSG_TRUNC);
      } catch (e) {
        if (e instanceof SysError && e.code === 'EINTR') continue;
        throw sysToNl(e, op);
      }
      if (n > RBUF.length) {
        throw new NetlinkError(`${op}: a ${n}-byte netlink reply exceeds the ${RBUF.length}-byte receive buffer`, 'EMSGSIZE', 90, op);
      }
      return n;
    }
  }

  private error(w: NlWriter, isBatch: boolean, k: number, errno: number, km: string | null): NetlinkError {
    const code = errnoName(errno);
    const where = isBatch ? `batch request ${k + 1} of ${w.count}: ` : '';
    const msg = `${where}${w.details[k]}: ${code} (${strerror(errno)})${km ? `: ${km}` : ''}`;
    return new NetlinkError(msg, code, errno, w.ops[k], isBatch ? k : -1, km);
  }
}

export function closedError(op: string): NetlinkError {
  return new NetlinkError(`${op}: the netlink socket is closed`, 'EBADF', 9, op);
}

export function sysToNl(e: unknown, op: string): unknown {
  if (e instanceof SysError) return new NetlinkError(`${op}: ${e.message}`, e.code, e.errno, op);
  return e;
}
