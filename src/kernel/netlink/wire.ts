// The netlink wire format, shared by every rtnetlink message family (link, addr, route, qdisc, filter, ...):
// protocol constants, the request encoder (NlWriter), argument checks that every encoder uses, attribute
// parsing helpers, and NetlinkError.
//
// Wire format (all host byte order, little-endian here): nlmsghdr {u32 len, u16 type, u16 flags, u32 seq,
// u32 pid} (16 bytes), a family header (ifinfomsg 16 / ifaddrmsg 8 / rtmsg 12 / ndmsg 12 / tcmsg 20 bytes), then rtattrs
// {u16 len, u16 type, payload} each padded to 4 bytes.
//
// A new message family is one file beside the others: its attribute constants, encoders `encX(w: NlWriter, ...)`
// that validate (throwing `invalid(op, ...)`) and write one message between w.begin() and w.end(), parsers
// `(b, off, end) => T | null` for replies (forEachAttr walks attributes), and its GET/dump requests through
// NetlinkSocket.exec()/dump() (socket.ts). Netlink and NetlinkBatch (../netlink.ts, batch.ts) expose them.
import { parseIpInto, parseMacInto, validIfName } from './text.js';

// ---- protocol constants (linux/netlink.h, linux/rtnetlink.h) ----
export const NLMSG_HDRLEN = 16;
export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_OVERRUN = 4;
export const NLM_F_REQUEST = 0x1;
export const NLM_F_ACK = 0x4;
export const NLM_F_DUMP_INTR = 0x10;
export const NLM_F_DUMP = 0x300;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
export const NLM_F_REPLACE = 0x100; // in a NEW request: replace an existing object
export const NLM_F_APPEND = 0x800; // in a NEW request: add to the end of an object's list
export const NLM_F_CAPPED = 0x100; // in an NLMSG_ERROR: the request's payload was not echoed
export const NLM_F_ACK_TLVS = 0x200; // in an NLMSG_ERROR: extended-ack attributes follow
export const NLMSGERR_ATTR_MSG = 1;

// Message types of every family (linux/rtnetlink.h).
export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_SETLINK = 19;
export const RTM_NEWADDR = 20;
export const RTM_DELADDR = 21;
export const RTM_GETADDR = 22;
export const RTM_NEWROUTE = 24;
export const RTM_DELROUTE = 25;
export const RTM_GETROUTE = 26;
export const RTM_NEWNEIGH = 28;
export const RTM_DELNEIGH = 29;
export const RTM_GETNEIGH = 30;
export const RTM_NEWQDISC = 36;
export const RTM_DELQDISC = 37;
export const RTM_GETQDISC = 38;
export const RTM_NEWTFILTER = 44;
export const RTM_DELTFILTER = 45;
export const RTM_GETTFILTER = 46;

/** Scopes of addresses and routes (rtnetlink.h RT_SCOPE_*). */
export const RT_SCOPE_UNIVERSE = 0;
export const RT_SCOPE_LINK = 253;
export const RT_SCOPE_NOWHERE = 255;

export const AF_UNSPEC = 0;
export const AF_INET = 2;
export const AF_BRIDGE = 7;
export const AF_INET6 = 10;

/** Attribute type flags (linux/netlink.h): NLA_F_NESTED marks a nested attribute; NLA_TYPE_MASK strips flags. */
export const NLA_F_NESTED = 0x8000;
export const NLA_TYPE_MASK = 0x3fff;

/** Traffic control attributes common to qdiscs, classes and filters (linux/rtnetlink.h TCA_*). */
export const TCA_KIND = 1;
export const TCA_OPTIONS = 2;

export const EINVAL = 22;

/**
 * An rtnetlink request failed (or was refused before sending because an argument was invalid: code 'EINVAL').
 * `code` is the errno name ('EEXIST', 'ENODEV', ...), `op` the Netlink method ('createVeth', 'addAddress', ...).
 */
export class NetlinkError extends Error {
  readonly code: string;
  readonly errno: number;
  readonly op: string;
  /** Position (0-based) of the failing request within a batch(), or -1 outside a batch. */
  readonly request: number;
  /** The kernel's extended-ack message (NLMSGERR_ATTR_MSG), when it sent one. */
  readonly kernelMessage: string | null;
  constructor(message: string, code: string, errno: number, op: string, request = -1, kernelMessage: string | null = null) {
    super(message);
    this.name = 'NetlinkError';
    this.code = code;
    this.errno = errno;
    this.op = op;
    this.request = request;
    this.kernelMessage = kernelMessage;
  }
}

/** An argument error of `op`, raised before anything is sent. */
export function invalid(op: string, what: string): NetlinkError {
  return new NetlinkError(`${op}: ${what}`, 'EINVAL', EINVAL, op);
}

// ---- request encoding ----

/**
 * Builds netlink messages into a reusable buffer. Messages are written with seq 0; the sender assigns sequence
 * numbers when it sends. Starting a message while another is unfinished (an encoder threw half-way) discards the
 * unfinished one. Exported for tests.
 */
export class NlWriter {
  buf: Buffer;
  /** Write cursor. */
  len = 0;
  /** Bytes of finished messages (what is sent); an unfinished message lies between `done` and `len`. */
  done = 0;
  /** Finished messages. */
  count = 0;
  /** Offset of the last finished message. */
  lastMsg = -1;
  /** Method name of each finished message (for errors). */
  readonly ops: string[] = [];
  /** Human description of each finished message (for errors). */
  readonly details: string[] = [];
  private cur = -1;

  constructor(size = 1024) {
    this.buf = Buffer.alloc(size);
  }

  reset(): void {
    this.len = 0;
    this.done = 0;
    this.count = 0;
    this.lastMsg = -1;
    this.cur = -1;
    this.ops.length = 0;
    this.details.length = 0;
  }

  /** The finished messages (a view, valid until the next write). */
  bytes(): Buffer {
    return this.buf.subarray(0, this.done);
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const nb = Buffer.alloc(Math.max(this.buf.length * 2, this.len + n + 256));
    this.buf.copy(nb, 0, 0, this.len);
    this.buf = nb;
  }

  /** Starts a message (nlmsghdr with length patched by end()). */
  begin(type: number, flags: number): void {
    this.len = this.done; // drops an unfinished message (its encoder threw)
    this.reserve(NLMSG_HDRLEN);
    const b = this.buf;
    const o = this.len;
    b.writeUInt32LE(0, o);
    b.writeUInt16LE(type, o + 4);
    b.writeUInt16LE(flags, o + 6);
    b.writeUInt32LE(0, o + 8);
    b.writeUInt32LE(0, o + 12);
    this.cur = o;
    this.len = o + NLMSG_HDRLEN;
  }

  /** Finishes the current message. */
  end(op: string, detail: string): void {
    const o = this.cur;
    if (o < 0) throw new Error('NlWriter.end without begin');
    this.buf.writeUInt32LE(this.len - o, o);
    this.done = this.len;
    this.lastMsg = o;
    this.cur = -1;
    this.count++;
    this.ops.push(op);
    this.details.push(detail);
  }

  /** struct ifinfomsg (16 bytes). */
  ifinfomsg(family: number, index: number, flags: number, change: number): void {
    this.reserve(16);
    const b = this.buf;
    const o = this.len;
    b[o] = family;
    b[o + 1] = 0;
    b.writeUInt16LE(0, o + 2);
    b.writeInt32LE(index, o + 4);
    b.writeUInt32LE(flags >>> 0, o + 8);
    b.writeUInt32LE(change >>> 0, o + 12);
    this.len = o + 16;
  }

  /** struct ifaddrmsg (8 bytes). */
  ifaddrmsg(family: number, prefixLen: number, flags: number, scope: number, index: number): void {
    this.reserve(8);
    const b = this.buf;
    const o = this.len;
    b[o] = family;
    b[o + 1] = prefixLen;
    b[o + 2] = flags;
    b[o + 3] = scope;
    b.writeUInt32LE(index, o + 4);
    this.len = o + 8;
  }

  /** struct tcmsg (20 bytes). */
  tcmsg(index: number, handle: number, parent: number, info: number): void {
    this.reserve(20);
    const b = this.buf;
    const o = this.len;
    b.fill(0, o, o + 4); // family AF_UNSPEC, padding
    b.writeUInt32LE(index >>> 0, o + 4);
    b.writeUInt32LE(handle >>> 0, o + 8);
    b.writeUInt32LE(parent >>> 0, o + 12);
    b.writeUInt32LE(info >>> 0, o + 16);
    this.len = o + 20;
  }

  /** struct ndmsg (12 bytes): neighbour and FDB entries. */
  ndmsg(family: number, index: number, state: number, flags: number, type: number): void {
    this.reserve(12);
    const b = this.buf;
    const o = this.len;
    b[o] = family;
    b[o + 1] = 0;
    b.writeUInt16LE(0, o + 2);
    b.writeInt32LE(index, o + 4);
    b.writeUInt16LE(state, o + 8);
    b[o + 10] = flags;
    b[o + 11] = type;
    this.len = o + 12;
  }

  /** struct rtmsg (12 bytes). */
  rtmsg(family: number, dstLen: number, table: number, protocol: number, scope: number, type: number): void {
    this.reserve(12);
    const b = this.buf;
    const o = this.len;
    b[o] = family;
    b[o + 1] = dstLen;
    b[o + 2] = 0; // src_len
    b[o + 3] = 0; // tos
    b[o + 4] = table;
    b[o + 5] = protocol;
    b[o + 6] = scope;
    b[o + 7] = type;
    b.writeUInt32LE(0, o + 8); // flags
    this.len = o + 12;
  }

  private attrEnd(o: number, payload: number): void {
    const b = this.buf;
    b.writeUInt16LE(4 + payload, o);
    let e = o + 4 + payload;
    const pe = (e + 3) & ~3;
    while (e < pe) b[e++] = 0;
    this.len = pe;
  }

  u8(type: number, v: number): void {
    this.reserve(8);
    const o = this.len;
    this.buf.writeUInt16LE(type, o + 2);
    this.buf.writeUInt8(v & 0xff, o + 4);
    this.attrEnd(o, 1);
  }

  /** A u16 attribute in network byte order (big-endian: IFLA_VXLAN_PORT, NDA_PORT). */
  be16(type: number, v: number): void {
    this.reserve(8);
    const o = this.len;
    this.buf.writeUInt16LE(type, o + 2);
    this.buf.writeUInt16BE(v & 0xffff, o + 4);
    this.attrEnd(o, 2);
  }

  u32(type: number, v: number): void {
    this.reserve(8);
    const o = this.len;
    this.buf.writeUInt16LE(type, o + 2);
    this.buf.writeUInt32LE(v >>> 0, o + 4);
    this.attrEnd(o, 4);
  }

  /** String attribute; `nul` appends a terminating NUL (IFLA_IFNAME wants one, IFLA_IFALIAS does not). */
  str(type: number, s: string, nul: boolean): void {
    this.reserve(s.length * 3 + 12);
    const o = this.len;
    this.buf.writeUInt16LE(type, o + 2);
    let n = this.buf.write(s, o + 4, 'utf8');
    if (nul) this.buf[o + 4 + n++] = 0;
    this.attrEnd(o, n);
  }

  /** Attribute holding bytes src[off..off+n). */
  bytesAttr(type: number, src: Uint8Array, off: number, n: number): void {
    this.reserve(n + 8);
    const o = this.len;
    this.buf.writeUInt16LE(type, o + 2);
    for (let i = 0; i < n; i++) this.buf[o + 4 + i] = src[off + i];
    this.attrEnd(o, n);
  }

  /** MAC attribute from text; false (nothing written) if the text is not a MAC. */
  mac(type: number, s: string): boolean {
    this.reserve(12);
    const o = this.len;
    if (!parseMacInto(s, this.buf, o + 4)) return false;
    this.buf.writeUInt16LE(type, o + 2);
    this.attrEnd(o, 6);
    return true;
  }

  /** Opens a nested attribute; returns its offset for nestEnd(). */
  nestStart(type: number): number {
    this.reserve(4);
    const o = this.len;
    this.buf.writeUInt16LE(type, o + 2);
    this.len = o + 4;
    return o;
  }

  nestEnd(o: number): void {
    this.buf.writeUInt16LE(this.len - o, o);
  }

}

// ---- argument checks shared by the encoders ----

export function checkIndex(op: string, index: number, what = 'interface index'): void {
  if (!Number.isInteger(index) || index <= 0 || index > 0x7fffffff) throw invalid(op, `invalid ${what} ${String(index)}`);
}
export function checkName(op: string, name: string): void {
  if (!validIfName(name)) throw invalid(op, `invalid interface name ${JSON.stringify(name)} (1..15 bytes, no '/', ':' or spaces)`);
}
export function checkMtu(op: string, mtu: number): void {
  if (!Number.isInteger(mtu) || mtu <= 0 || mtu > 0xffffffff) throw invalid(op, `invalid MTU ${String(mtu)}`);
}
export function checkAlias(op: string, alias: string): void {
  if (typeof alias !== 'string' || Buffer.byteLength(alias) > 255 || alias.includes('\0')) {
    throw invalid(op, `invalid alias ${JSON.stringify(alias)} (at most 255 bytes)`);
  }
}
export function macAttr(w: NlWriter, op: string, type: number, mac: string): void {
  if (!w.mac(type, mac)) throw invalid(op, `invalid MAC address ${JSON.stringify(mac)} (expected aa:bb:cc:dd:ee:ff)`);
}
export function checkPrefix(op: string, family: 4 | 6, prefixLen: number): void {
  if (!Number.isInteger(prefixLen) || prefixLen < 0 || prefixLen > (family === 4 ? 32 : 128)) {
    throw invalid(op, `invalid IPv${family} prefix length ${String(prefixLen)}`);
  }
}
export function ipOf(op: string, s: string, out: Uint8Array, what: string): 4 | 6 {
  const f = parseIpInto(s, out, 0);
  if (f === 0) throw invalid(op, `invalid ${what} ${JSON.stringify(s)}`);
  return f;
}

// ---- reply parsing helpers ----

/** The NUL-terminated (or not) string b[s..e), trailing NULs dropped. */
export function cstr(b: Buffer, s: number, e: number): string {
  while (e > s && b[e - 1] === 0) e--;
  return b.toString('utf8', s, e);
}

/**
 * Walks the attributes in b[s..e): calls fn(type, start, end) for each, `type` without its NLA_F_* flags and the
 * payload at b[start..end). Stops at a malformed attribute, or when fn returns true.
 */
export function forEachAttr(b: Buffer, s: number, e: number, fn: (type: number, start: number, end: number) => boolean | void): void {
  let a = s;
  while (a + 4 <= e) {
    const alen = b.readUInt16LE(a);
    if (alen < 4 || a + alen > e) break;
    if (fn(b.readUInt16LE(a + 2) & NLA_TYPE_MASK, a + 4, a + alen) === true) return;
    a += (alen + 3) & ~3;
  }
}
