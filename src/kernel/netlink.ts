// A small, synchronous rtnetlink (NETLINK_ROUTE) client built directly on libc through koffi.
//
// Why raw and synchronous: it costs nothing to import (the npm `netlink` package costs ~38 ms), a request is one
// send() plus one recv() with no event-loop round trip, and, being synchronous, it is safe inside a temporary
// setns() of the main thread (KERNEL-NOTES: only synchronous work belongs inside a switch).
//
// A socket acts in the network namespace of the thread that CREATED it, for its whole life: to work in another
// netns, setns() there, Netlink.open(), setns() back, and keep using the object from anywhere.
//
// Wire format (all host byte order, little-endian here): nlmsghdr {u32 len, u16 type, u16 flags, u32 seq,
// u32 pid} (16 bytes), a family header (ifinfomsg 16 / ifaddrmsg 8 / rtmsg 12 bytes), then rtattrs {u16 len,
// u16 type, payload} each padded to 4 bytes. Requests are encoded into a reusable buffer; replies are read into
// one module-wide 64 KiB buffer (safe: nothing here is re-entrant or asynchronous).
//
// Acks: within one send() only the LAST request carries NLM_F_ACK. The kernel answers every failing request with
// an NLMSG_ERROR whether or not it asked for an ack, and processes the requests strictly in order, so the ack of
// the last request means "everything before it has been processed": one recv() per send() when all succeeds.
import {
  AF_NETLINK, CLONE_NEWNET, MSG_TRUNC, NETLINK_CAP_ACK, NETLINK_EXT_ACK, NETLINK_ROUTE, SOCK_CLOEXEC, SOCK_RAW, SOL_NETLINK,
  SIOCGIFINDEX, SOL_SOCKET, SO_RCVTIMEO, SysError, close as closeFd, errnoName, ioctlPtr, recv, sendPart,
  openPath, setns, setsockoptBuf, setsockoptInt, socket, strerror,
} from './libc.js';

// ---- protocol constants (linux/netlink.h, linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h) ----
const NLMSG_HDRLEN = 16;
const NLMSG_NOOP = 1;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const NLMSG_OVERRUN = 4;
const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;
const NLM_F_DUMP_INTR = 0x10;
const NLM_F_DUMP = 0x300;
const NLM_F_EXCL = 0x200;
const NLM_F_CREATE = 0x400;
const NLM_F_CAPPED = 0x100; // in an NLMSG_ERROR: the request's payload was not echoed
const NLM_F_ACK_TLVS = 0x200; // in an NLMSG_ERROR: extended-ack attributes follow
const NLMSGERR_ATTR_MSG = 1;

const RTM_NEWLINK = 16;
const RTM_DELLINK = 17;
const RTM_GETLINK = 18;
const RTM_SETLINK = 19;
const RTM_NEWADDR = 20;
const RTM_DELADDR = 21;
const RTM_GETADDR = 22;
const RTM_NEWROUTE = 24;
const RTM_DELROUTE = 25;
const RTM_GETROUTE = 26;
const RTM_NEWQDISC = 36;
const RTM_DELQDISC = 37;
const RTM_GETQDISC = 38;
const RTM_NEWTFILTER = 44;
const RTM_DELTFILTER = 45;
const RTM_GETTFILTER = 46;

// Traffic control (tc): a clsact qdisc and classic-BPF filters on it (cls_bpf), for guards that must not depend
// on nftables (which `nft flush ruleset` empties).
const TCA_KIND = 1;
const TCA_OPTIONS = 2;
const TCA_BPF_OPS_LEN = 4;
const TCA_BPF_OPS = 5;
const TCA_BPF_NAME = 7;
const TCA_BPF_FLAGS = 8;
/** The program's return value is the action (TC_ACT_SHOT, ...): no separate action module (act_gact) needed. */
const TCA_BPF_FLAG_ACT_DIRECT = 1;
const TCA_INGRESS_BLOCK = 13;
const TCA_EGRESS_BLOCK = 14;
/** tcm_ifindex that makes tcm_parent a shared block's index (TCM_IFINDEX_MAGIC_BLOCK). */
const TCM_IFINDEX_MAGIC_BLOCK = 0xffffffff;
const TC_H_CLSACT = 0xfffffff1;
/** Parent of ingress filters on a clsact qdisc: TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS). */
export const TC_INGRESS = 0xfffffff2;

const AF_UNSPEC = 0;
const AF_INET = 2;
const AF_INET6 = 10;

const IFF_UP = 0x1;
const IFF_RUNNING = 0x40;

const IFLA_ADDRESS = 1;
const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
const IFLA_MASTER = 10;
const IFLA_OPERSTATE = 16;
const IFLA_LINKINFO = 18;
const IFLA_IFALIAS = 20;
const IFLA_NET_NS_FD = 28;
const IFLA_EXT_MASK = 29;
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const VETH_INFO_PEER = 1;
const RTEXT_FILTER_SKIP_STATS = 1 << 3;

const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const IFA_BROADCAST = 4;
const IFA_F_NODAD = 0x02;

const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const RTA_PRIORITY = 6;
const RTA_TABLE = 15;
const RTA_VIA = 18;
const RTM_F_CLONED = 0x200;

/** The main routing table (RT_TABLE_MAIN). */
export const RT_TABLE_MAIN = 254;
const RTPROT_BOOT = 3;
const RT_SCOPE_UNIVERSE = 0;
const RT_SCOPE_LINK = 253;
const RT_SCOPE_NOWHERE = 255;
const RTN_UNICAST = 1;

const NLA_F_NESTED = 0x8000;
const AF_BRIDGE = 7;
const IFLA_PROTINFO = 12;
const IFLA_BRPORT_MODE = 4;
const IFLA_BRPORT_ISOLATED = 33;
const NLA_TYPE_MASK = 0x3fff;

const OPER_STATES = ['unknown', 'notpresent', 'down', 'lowerlayerdown', 'testing', 'dormant', 'up'];

const EINVAL = 22;
const RCV_TIMEOUT_S = 30;

// ---- public types ----

/** One network interface as the kernel reports it (RTM_NEWLINK). */
export interface LinkInfo {
  index: number;
  name: string;
  /** IFLA_INFO_KIND: 'bridge', 'veth', 'dummy', ...; null for devices without one (lo, physical NICs). */
  kind: string | null;
  /** ifindex of the master (bridge) this link is enslaved to, or null. */
  master: number | null;
  alias: string | null;
  /** Link-layer address, lowercase colon-separated hex ('' if the device has none). */
  mac: string;
  mtu: number;
  /** Administratively up (IFF_UP). */
  up: boolean;
  /** Operational (IFF_RUNNING: up with carrier; true for operstate 'up' and for 'unknown' devices such as lo). */
  operUp: boolean;
  /** RFC 2863 operational state: 'up', 'down', 'lowerlayerdown', 'unknown', ... */
  operState: string;
  /** Raw IFF_* flags. */
  flags: number;
}

/** One classic BPF instruction (struct sock_filter). */
export interface SockFilter {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

/** A cls_bpf filter as the kernel reports it (RTM_NEWTFILTER in a dump). */
export interface TcFilterInfo {
  /** tcm_info >> 16. */
  prio: number;
  /** tcm_info & 0xffff: the protocol in network byte order, as the kernel keeps it. */
  protocolBe: number;
  handle: number;
  kind: string;
  name: string | null;
  /** The classic BPF program, encoded as the kernel returns it (TCA_BPF_OPS), or null. */
  ops: Buffer | null;
  directAction: boolean;
}

/** Where a tc filter lives: on one interface (under `parent`, e.g. TC_INGRESS), or in a shared block. */
export type TcTarget = { index: number; parent: number } | { block: number };

/** One qdisc as the kernel reports it (RTM_NEWQDISC in a dump). */
export interface QdiscInfo {
  index: number;
  parent: number;
  kind: string;
  /** Shared block bound as ingress / egress (clsact), or 0. */
  ingressBlock: number;
  egressBlock: number;
}

/** Parses an RTM_NEWQDISC payload. Exported for tests. */
export function parseQdisc(b: Buffer, off: number, end: number): QdiscInfo | null {
  if (end - off < 20) return null;
  const q: QdiscInfo = { index: b.readInt32LE(off + 4), parent: b.readUInt32LE(off + 12), kind: '', ingressBlock: 0, egressBlock: 0 };
  for (let a = off + 20; a + 4 <= end;) {
    const alen = b.readUInt16LE(a);
    if (alen < 4 || a + alen > end) break;
    const t = b.readUInt16LE(a + 2) & NLA_TYPE_MASK;
    if (t === TCA_KIND) q.kind = cstr(b, a + 4, a + alen);
    else if (t === TCA_INGRESS_BLOCK && alen >= 8) q.ingressBlock = b.readUInt32LE(a + 4);
    else if (t === TCA_EGRESS_BLOCK && alen >= 8) q.egressBlock = b.readUInt32LE(a + 4);
    a += (alen + 3) & ~3;
  }
  return q;
}

function checkBlock(op: string, block: number): void {
  if (!Number.isInteger(block) || block < 1 || block > 0xfffffffe) throw invalid(op, `invalid block index ${String(block)}`);
}

/** tcmsg ifindex/parent for a target. */
function tcWhere(op: string, t: TcTarget): [number, number] {
  if ('block' in t) {
    checkBlock(op, t.block);
    return [TCM_IFINDEX_MAGIC_BLOCK, t.block];
  }
  checkIndex(op, t.index);
  return [t.index, t.parent];
}

/** A cls_bpf filter to add. `protocolBe`: its protocol in network byte order (0x0300 = ETH_P_ALL). */
export interface BpfFilterSpec {
  prio: number;
  protocolBe: number;
  handle: number;
  name: string;
  prog: SockFilter[];
  replace?: boolean;
}

/** struct sock_filter[] as bytes (8 each, host byte order). */
export function encodeSockFilter(prog: SockFilter[]): Buffer {
  const b = Buffer.alloc(prog.length * 8);
  prog.forEach((x, i) => {
    b.writeUInt16LE(x.code, i * 8);
    b[i * 8 + 2] = x.jt;
    b[i * 8 + 3] = x.jf;
    b.writeUInt32LE(x.k >>> 0, i * 8 + 4);
  });
  return b;
}

/** One interface address (RTM_NEWADDR). */
export interface AddrInfo {
  index: number;
  family: 4 | 6;
  /** The local address, canonical text (IPv6 compressed as in RFC 5952). */
  address: string;
  prefixLen: number;
  /** RT_SCOPE_*: 0 global, 253 link, 254 host. */
  scope: number;
}

/** One route (RTM_NEWROUTE). */
export interface RouteInfo {
  family: 4 | 6;
  /** Destination network; '0.0.0.0' / '::' for a default route. */
  dst: string;
  prefixLen: number;
  /** Next hop (RTA_GATEWAY, or RTA_VIA); null for on-link and multipath routes. */
  gateway: string | null;
  /** Output interface index, or null. */
  oif: number | null;
  table: number;
  /** RTPROT_*: 2 kernel, 3 boot (ip route add), 4 static, ... */
  protocol: number;
  /** RT_SCOPE_*: 0 universe, 253 link, 254 host. */
  scope: number;
  /** RTN_*: 1 unicast, 2 local, 7 unreachable, ... */
  type: number;
  /** Metric (RTA_PRIORITY), or null. */
  metric: number | null;
}

/** A route to add or delete. `dst` and `gateway` must be of the same family. */
export interface RouteSpec {
  /** Destination network address ('0.0.0.0' or '::' with prefixLen 0 for the default route). */
  dst: string;
  prefixLen: number;
  gateway?: string;
  /** Output interface index (required for an on-link route, and for an IPv6 link-local gateway). */
  oif?: number;
  /** Routing table, RT_TABLE_MAIN (254) by default. */
  table?: number;
  /** RTA_PRIORITY. */
  metric?: number;
}

export interface BridgeOptions {
  mtu?: number;
  mac?: string;
  alias?: string;
  up?: boolean;
}

export interface VethOptions {
  /** ifindex of a bridge (in this socket's netns) to enslave the host end to. */
  master?: number;
  /** MTU of both ends. */
  mtu?: number;
  /** MAC of the peer (container) end; random if omitted. */
  peerMac?: string;
  /** MAC of the host end; random if omitted. */
  hostMac?: string;
  /** Alias (IFLA_IFALIAS) of the host end. */
  alias?: string;
  /** Bring the host end up (the peer stays down: KERNEL-NOTES pitfall 7). */
  up?: boolean;
}

export interface AddressOptions {
  /** IPv4 broadcast address, or '+' to compute it from the prefix (as `ip addr add ... brd +`). */
  broadcast?: string;
  /** IPv6: skip duplicate address detection (IFA_F_NODAD), so the address is usable at once. */
  nodad?: boolean;
}

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

function invalid(op: string, what: string): NetlinkError {
  return new NetlinkError(`${op}: ${what}`, 'EINVAL', EINVAL, op);
}

// ---- address text <-> bytes (exported for tests and reuse) ----

/** Parses dotted-quad IPv4 text (no leading zeros) into out[off..off+4). Returns false if invalid. */
export function parseIpv4Into(s: string, out: Uint8Array, off: number): boolean {
  const n = s.length;
  if (n < 7 || n > 15) return false;
  let part = 0;
  let digits = 0;
  let k = 0;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || k === 3) return false;
      out[off + k++] = part;
      part = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return false; // leading zero
      part = part * 10 + (c - 48);
      if (part > 255) return false;
      digits++;
    } else {
      return false;
    }
  }
  if (digits === 0 || k !== 3) return false;
  out[off + 3] = part;
  return true;
}

function hexGroup(g: string): number {
  const n = g.length;
  if (n < 1 || n > 4) return -1;
  let v = 0;
  for (let i = 0; i < n; i++) {
    const c = g.charCodeAt(i);
    let d: number;
    if (c >= 48 && c <= 57) d = c - 48;
    else if (c >= 97 && c <= 102) d = c - 87;
    else if (c >= 65 && c <= 70) d = c - 55;
    else return -1;
    v = (v << 4) | d;
  }
  return v;
}

/** Parses IPv6 text (RFC 4291 forms, including '::' and a trailing dotted quad; no zone) into out[off..off+16). */
export function parseIpv6Into(s: string, out: Uint8Array, off: number): boolean {
  if (s.length < 2 || s.length > 45) return false;
  const dbl = s.indexOf('::');
  if (dbl !== -1 && s.indexOf('::', dbl + 1) !== -1) return false;
  let head: string[];
  let tail: string[];
  if (dbl === -1) {
    head = s.split(':');
    tail = [];
  } else {
    head = dbl === 0 ? [] : s.slice(0, dbl).split(':');
    const t = s.slice(dbl + 2);
    tail = t === '' ? [] : t.split(':');
  }
  const words: number[] = [];
  const groups = head.length + tail.length;
  for (let i = 0; i < groups; i++) {
    const g = i < head.length ? head[i] : tail[i - head.length];
    // A dotted quad may only end the text (not precede a trailing '::').
    if (i === groups - 1 && (dbl === -1 || tail.length > 0) && g.indexOf('.') !== -1) {
      const v4 = new Uint8Array(4);
      if (!parseIpv4Into(g, v4, 0)) return false;
      words.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      continue;
    }
    const w = hexGroup(g);
    if (w < 0) return false;
    words.push(w);
  }
  const headWords = dbl === -1 ? words.length : head.length;
  if (dbl === -1 ? words.length !== 8 : words.length > 7) return false;
  const zeros = 8 - words.length;
  let j = off;
  for (let i = 0; i < words.length; i++) {
    if (i === headWords) for (let z = 0; z < zeros; z++) { out[j++] = 0; out[j++] = 0; }
    out[j++] = words[i] >> 8;
    out[j++] = words[i] & 0xff;
  }
  if (headWords === words.length) for (let z = 0; z < zeros; z++) { out[j++] = 0; out[j++] = 0; }
  return true;
}

/** Parses IPv4 or IPv6 text into out at off; returns 4, 6, or 0 if `s` is not a valid address. */
export function parseIpInto(s: string, out: Uint8Array, off: number): 0 | 4 | 6 {
  if (typeof s !== 'string') return 0;
  if (s.indexOf(':') !== -1) return parseIpv6Into(s, out, off) ? 6 : 0;
  return parseIpv4Into(s, out, off) ? 4 : 0;
}

/** IPv4 or IPv6 text to its 4 or 16 bytes; null if invalid. */
export function parseIp(s: string): Uint8Array | null {
  const b = new Uint8Array(16);
  const f = parseIpInto(s, b, 0);
  return f === 4 ? b.subarray(0, 4) : f === 6 ? b : null;
}

/** Dotted quad of b[off..off+4). */
export function formatIpv4(b: Uint8Array, off = 0): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

/** RFC 5952 text of the IPv6 address b[off..off+16): lowercase, longest zero run (>= 2 groups) as '::'. */
export function formatIpv6(b: Uint8Array, off = 0): string {
  const w = [0, 0, 0, 0, 0, 0, 0, 0];
  for (let i = 0; i < 8; i++) w[i] = (b[off + 2 * i] << 8) | b[off + 2 * i + 1];
  if (w[0] === 0 && w[1] === 0 && w[2] === 0 && w[3] === 0 && w[4] === 0 && w[5] === 0xffff) {
    return `::ffff:${formatIpv4(b, off + 12)}`;
  }
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (w[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) { bestAt = i; bestLen = j - i; }
    i = j;
  }
  let s = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestAt) {
      s += '::';
      i += bestLen - 1;
      continue;
    }
    if (s !== '' && !s.endsWith(':')) s += ':';
    s += w[i].toString(16);
  }
  return s;
}

/** Text of a 4- or 16-byte address. */
export function formatIp(b: Uint8Array): string {
  if (b.length === 4) return formatIpv4(b);
  if (b.length === 16) return formatIpv6(b);
  throw new RangeError(`formatIp: ${b.length}-byte address`);
}

function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** Parses 'aa:bb:cc:dd:ee:ff' (either case) into out[off..off+6). Returns false if invalid. */
export function parseMacInto(s: string, out: Uint8Array, off: number): boolean {
  if (typeof s !== 'string' || s.length !== 17) return false;
  for (let i = 0; i < 6; i++) {
    const p = i * 3;
    if (i > 0 && s.charCodeAt(p - 1) !== 58) return false;
    const hi = hexVal(s.charCodeAt(p));
    const lo = hexVal(s.charCodeAt(p + 1));
    if (hi < 0 || lo < 0) return false;
    out[off + i] = (hi << 4) | lo;
  }
  return true;
}

/** 'aa:bb:cc:dd:ee:ff' to its 6 bytes; null if invalid. */
export function parseMac(s: string): Uint8Array | null {
  const b = new Uint8Array(6);
  return parseMacInto(s, b, 0) ? b : null;
}

const HEX2: string[] = [];
for (let i = 0; i < 256; i++) HEX2.push(i.toString(16).padStart(2, '0'));

/** Lowercase colon-separated hex of b[off..off+len) (a MAC for len 6). */
export function formatMac(b: Uint8Array, off = 0, len = b.length - off): string {
  let s = '';
  for (let i = 0; i < len; i++) s += i === 0 ? HEX2[b[off]] : `:${HEX2[b[off + i]]}`;
  return s;
}

/** True if `name` is a valid interface name: 1..15 bytes, not '.' or '..', no '/', ':' or whitespace. */
export function validIfName(name: string): boolean {
  if (typeof name !== 'string' || name.length === 0 || name.length > 15) return false;
  if (Buffer.byteLength(name) > 15 || name === '.' || name === '..') return false;
  return !/[/:\s\0]/.test(name);
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

const scratchA = new Uint8Array(16);
const scratchB = new Uint8Array(16);
const scratchC = new Uint8Array(16);

function checkIndex(op: string, index: number, what = 'interface index'): void {
  if (!Number.isInteger(index) || index <= 0 || index > 0x7fffffff) throw invalid(op, `invalid ${what} ${String(index)}`);
}
function checkName(op: string, name: string): void {
  if (!validIfName(name)) throw invalid(op, `invalid interface name ${JSON.stringify(name)} (1..15 bytes, no '/', ':' or spaces)`);
}
function checkMtu(op: string, mtu: number): void {
  if (!Number.isInteger(mtu) || mtu <= 0 || mtu > 0xffffffff) throw invalid(op, `invalid MTU ${String(mtu)}`);
}
function checkAlias(op: string, alias: string): void {
  if (typeof alias !== 'string' || Buffer.byteLength(alias) > 255 || alias.includes('\0')) {
    throw invalid(op, `invalid alias ${JSON.stringify(alias)} (at most 255 bytes)`);
  }
}
function macAttr(w: NlWriter, op: string, type: number, mac: string): void {
  if (!w.mac(type, mac)) throw invalid(op, `invalid MAC address ${JSON.stringify(mac)} (expected aa:bb:cc:dd:ee:ff)`);
}
function checkPrefix(op: string, family: 4 | 6, prefixLen: number): void {
  if (!Number.isInteger(prefixLen) || prefixLen < 0 || prefixLen > (family === 4 ? 32 : 128)) {
    throw invalid(op, `invalid IPv${family} prefix length ${String(prefixLen)}`);
  }
}
function ipOf(op: string, s: string, out: Uint8Array, what: string): 4 | 6 {
  const f = parseIpInto(s, out, 0);
  if (f === 0) throw invalid(op, `invalid ${what} ${JSON.stringify(s)}`);
  return f;
}

/** Starts an RTM_SETLINK of one interface (the caller adds attributes and ends it). */
function encSetLink(w: NlWriter, index: number, flags: number, change: number): void {
  w.begin(RTM_SETLINK, NLM_F_REQUEST);
  w.ifinfomsg(AF_UNSPEC, index, flags, change);
}

function noAliasInBatch(op: string, o: object): void {
  if ((o as { alias?: unknown }).alias !== undefined) {
    throw invalid(op, 'alias cannot be set by a batched create (use Netlink.' + op + ', or setAlias in a later batch)');
  }
}

/** RTM_NEWLINK creating a bridge (without alias: the kernel ignores IFLA_IFALIAS on creation, measured on 6.18). */
function encBridge(w: NlWriter, name: string, o: BridgeOptions): void {
  const op = 'createBridge';
  checkName(op, name);
  if (o.mtu !== undefined) checkMtu(op, o.mtu);
  const up = o.up ? IFF_UP : 0;
  w.begin(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL);
  w.ifinfomsg(AF_UNSPEC, 0, up, up);
  w.str(IFLA_IFNAME, name, true);
  if (o.mtu !== undefined) w.u32(IFLA_MTU, o.mtu);
  if (o.mac !== undefined) macAttr(w, op, IFLA_ADDRESS, o.mac);
  const li = w.nestStart(IFLA_LINKINFO | NLA_F_NESTED);
  w.str(IFLA_INFO_KIND, 'bridge', false);
  w.nestEnd(li);
  w.end(op, `${op}(${name})`);
}

/**
 * RTM_NEWLINK creating a veth pair: IFLA_LINKINFO { IFLA_INFO_KIND "veth", IFLA_INFO_DATA { VETH_INFO_PEER =
 * ifinfomsg + IFLA_IFNAME, IFLA_NET_NS_FD, IFLA_ADDRESS, IFLA_MTU } }. Without alias (see encBridge).
 */
function encVeth(w: NlWriter, hostName: string, peerName: string, peerNetnsFd: number, o: VethOptions): void {
  const op = 'createVeth';
  checkName(op, hostName);
  checkName(op, peerName);
  if (!Number.isInteger(peerNetnsFd) || peerNetnsFd < 0) throw invalid(op, `invalid netns fd ${String(peerNetnsFd)}`);
  if (o.master !== undefined) checkIndex(op, o.master, 'master index');
  if (o.mtu !== undefined) checkMtu(op, o.mtu);
  const up = o.up ? IFF_UP : 0;
  w.begin(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL);
  w.ifinfomsg(AF_UNSPEC, 0, up, up);
  w.str(IFLA_IFNAME, hostName, true);
  if (o.mtu !== undefined) w.u32(IFLA_MTU, o.mtu);
  if (o.hostMac !== undefined) macAttr(w, op, IFLA_ADDRESS, o.hostMac);
  if (o.master !== undefined) w.u32(IFLA_MASTER, o.master);
  const li = w.nestStart(IFLA_LINKINFO | NLA_F_NESTED);
  w.str(IFLA_INFO_KIND, 'veth', false);
  const data = w.nestStart(IFLA_INFO_DATA | NLA_F_NESTED);
  const peer = w.nestStart(VETH_INFO_PEER);
  w.ifinfomsg(AF_UNSPEC, 0, 0, 0);
  w.str(IFLA_IFNAME, peerName, true);
  w.u32(IFLA_NET_NS_FD, peerNetnsFd);
  if (o.peerMac !== undefined) macAttr(w, op, IFLA_ADDRESS, o.peerMac);
  if (o.mtu !== undefined) w.u32(IFLA_MTU, o.mtu);
  w.nestEnd(peer);
  w.nestEnd(data);
  w.nestEnd(li);
  w.end(op, `${op}(${hostName}, ${peerName})`);
}

/** RTM_GETLINK of one interface by name (no statistics). */
function encGetLinkByName(w: NlWriter, op: string, name: string): void {
  w.begin(RTM_GETLINK, NLM_F_REQUEST);
  w.ifinfomsg(AF_UNSPEC, 0, 0, 0);
  w.str(IFLA_IFNAME, name, true);
  w.u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  w.end(op, `${op}(${name})`);
}

function encGetLinkByIndex(w: NlWriter, op: string, index: number): void {
  w.begin(RTM_GETLINK, NLM_F_REQUEST);
  w.ifinfomsg(AF_UNSPEC, index, 0, 0);
  w.u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  w.end(op, `${op}(${index})`);
}

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

/**
 * Mutating requests queued for one send(). Obtained from Netlink.batch(); each method validates its arguments
 * at once (throwing NetlinkError 'EINVAL'), encodes one request, and returns the batch for chaining.
 */
export class NetlinkBatch {
  /** @internal Encoded requests. */
  readonly w: NlWriter;

  /** @internal */
  constructor(size = 1024) {
    this.w = new NlWriter(size);
  }

  /** Number of queued requests. */
  get size(): number {
    return this.w.count;
  }

  /**
   * Creates a bridge (see Netlink.createBridge). `alias` is refused here: the kernel ignores it on creation, and
   * setting it by name in the same send() would label a pre-existing interface if the create failed with EEXIST.
   */
  createBridge(name: string, o: Omit<BridgeOptions, 'alias'> = {}): this {
    noAliasInBatch('createBridge', o);
    encBridge(this.w, name, o);
    return this;
  }

  /** Creates a veth pair with the peer directly in another netns (see Netlink.createVeth; no `alias` here). */
  createVeth(hostName: string, peerName: string, peerNetnsFd: number, o: Omit<VethOptions, 'alias'> = {}): this {
    noAliasInBatch('createVeth', o);
    encVeth(this.w, hostName, peerName, peerNetnsFd, o);
    return this;
  }

  /** Sets the interface administratively up. */
  setUp(index: number): this {
    checkIndex('setUp', index);
    encSetLink(this.w, index, IFF_UP, IFF_UP);
    this.w.end('setUp', `setUp(${index})`);
    return this;
  }

  /** Sets the interface administratively down. */
  setDown(index: number): this {
    checkIndex('setDown', index);
    encSetLink(this.w, index, 0, IFF_UP);
    this.w.end('setDown', `setDown(${index})`);
    return this;
  }

  /** Enslaves the interface to `master` (a bridge's ifindex), or releases it with null. */
  setMaster(index: number, master: number | null): this {
    const op = 'setMaster';
    checkIndex(op, index);
    if (master !== null) checkIndex(op, master, 'master index');
    encSetLink(this.w, index, 0, 0);
    this.w.u32(IFLA_MASTER, master ?? 0);
    this.w.end(op, `${op}(${index}, ${master})`);
    return this;
  }

  setMtu(index: number, mtu: number): this {
    const op = 'setMtu';
    checkIndex(op, index);
    checkMtu(op, mtu);
    encSetLink(this.w, index, 0, 0);
    this.w.u32(IFLA_MTU, mtu);
    this.w.end(op, `${op}(${index}, ${mtu})`);
    return this;
  }

  /** Adds a clsact qdisc to the interface (the hook point for ingress/egress filters), optionally bound to shared
   *  filter blocks (its ingress and/or egress filters are then those of the block); EEXIST if it has one. */
  addClsact(index: number, o: { ingressBlock?: number; egressBlock?: number } = {}): this {
    const op = 'addClsact';
    checkIndex(op, index);
    if (o.ingressBlock !== undefined) checkBlock(op, o.ingressBlock);
    if (o.egressBlock !== undefined) checkBlock(op, o.egressBlock);
    const w = this.w;
    w.begin(RTM_NEWQDISC, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL);
    w.tcmsg(index, 0xffff0000, TC_H_CLSACT, 0);
    w.str(TCA_KIND, 'clsact', true);
    if (o.ingressBlock !== undefined) w.u32(TCA_INGRESS_BLOCK, o.ingressBlock);
    if (o.egressBlock !== undefined) w.u32(TCA_EGRESS_BLOCK, o.egressBlock);
    w.end(op, `${op}(${index})`);
    return this;
  }

  /**
   * Adds (or, with `replace`, replaces) a classic-BPF cls_bpf filter in direct-action mode: the program's return
   * value is the verdict (0 TC_ACT_OK, 2 TC_ACT_SHOT, -1 TC_ACT_UNSPEC = go on with the next filter).
   */
  addBpfFilter(target: TcTarget, f: BpfFilterSpec): this {
    const op = 'addBpfFilter';
    const [index, parent] = tcWhere(op, target);
    if (!Number.isInteger(f.prio) || f.prio < 1 || f.prio > 0xffff) throw invalid(op, `invalid priority ${String(f.prio)}`);
    if (!f.prog.length || f.prog.length > 4096) throw invalid(op, `invalid program length ${f.prog.length}`);
    const w = this.w;
    w.begin(RTM_NEWTFILTER, NLM_F_REQUEST | NLM_F_CREATE | (f.replace ? 0 : NLM_F_EXCL));
    w.tcmsg(index, f.handle, parent, ((f.prio << 16) | (f.protocolBe & 0xffff)) >>> 0);
    w.str(TCA_KIND, 'bpf', true);
    const o = w.nestStart(TCA_OPTIONS | NLA_F_NESTED);
    w.u32(TCA_BPF_FLAGS, TCA_BPF_FLAG_ACT_DIRECT);
    w.str(TCA_BPF_NAME, f.name, true);
    const ops = encodeSockFilter(f.prog);
    w.bytesAttr(TCA_BPF_OPS_LEN, new Uint8Array([f.prog.length & 0xff, f.prog.length >> 8]), 0, 2);
    w.bytesAttr(TCA_BPF_OPS, ops, 0, ops.length);
    w.nestEnd(o);
    w.end(op, `${op}(${'block' in target ? `block ${target.block}` : target.index}, prio ${f.prio}, ${f.name})`);
    return this;
  }

  /** Bridge-port flags of an enslaved interface (RTM_SETLINK, family AF_BRIDGE, IFLA_PROTINFO):
   *  `hairpin` lets frames go back out of the port they came in (a container reaching its own published port
   *  while br_netfilter is on), `isolated` forbids traffic between isolated ports of the bridge. */
  setBridgePort(index: number, o: { hairpin?: boolean; isolated?: boolean }): this {
    const op = 'setBridgePort';
    checkIndex(op, index);
    this.w.begin(RTM_SETLINK, NLM_F_REQUEST);
    this.w.ifinfomsg(AF_BRIDGE, index, 0, 0);
    const pi = this.w.nestStart(IFLA_PROTINFO | NLA_F_NESTED);
    if (o.hairpin !== undefined) this.w.u8(IFLA_BRPORT_MODE, o.hairpin ? 1 : 0);
    if (o.isolated !== undefined) this.w.u8(IFLA_BRPORT_ISOLATED, o.isolated ? 1 : 0);
    this.w.nestEnd(pi);
    this.w.end(op, `${op}(${index}, ${JSON.stringify(o)})`);
    return this;
  }

  /** Sets IFLA_IFALIAS; '' removes the alias. */
  setAlias(index: number, alias: string): this {
    const op = 'setAlias';
    checkIndex(op, index);
    checkAlias(op, alias);
    encSetLink(this.w, index, 0, 0);
    this.w.str(IFLA_IFALIAS, alias, false);
    this.w.end(op, `${op}(${index}, ${JSON.stringify(alias)})`);
    return this;
  }

  /** Renames the interface (the kernel refuses it while the interface is up: EBUSY). */
  setName(index: number, name: string): this {
    const op = 'setName';
    checkIndex(op, index);
    if (!validIfName(name)) throw new NetlinkError(`${op}: invalid interface name ${JSON.stringify(name)}`, 'EINVAL', 22, op);
    encSetLink(this.w, index, 0, 0);
    this.w.str(IFLA_IFNAME, name, true);
    this.w.end(op, `${op}(${index}, ${JSON.stringify(name)})`);
    return this;
  }

  setMac(index: number, mac: string): this {
    const op = 'setMac';
    checkIndex(op, index);
    encSetLink(this.w, index, 0, 0);
    macAttr(this.w, op, IFLA_ADDRESS, mac);
    this.w.end(op, `${op}(${index}, ${mac})`);
    return this;
  }

  /** Deletes the interface (for a veth, both ends). */
  deleteLink(index: number): this {
    const op = 'deleteLink';
    checkIndex(op, index);
    this.w.begin(RTM_DELLINK, NLM_F_REQUEST);
    this.w.ifinfomsg(AF_UNSPEC, index, 0, 0);
    this.w.end(op, `${op}(${index})`);
    return this;
  }

  private addr(op: string, type: number, flags: number, index: number, address: string, prefixLen: number, o: AddressOptions): void {
    checkIndex(op, index);
    const fam = ipOf(op, address, scratchA, 'address');
    checkPrefix(op, fam, prefixLen);
    const n = fam === 4 ? 4 : 16;
    let brd = false;
    if (o.broadcast !== undefined) {
      if (fam !== 4) throw invalid(op, 'a broadcast address is IPv4 only');
      if (o.broadcast === '+') {
        const host = prefixLen === 32 ? 0 : (0xffffffff >>> prefixLen);
        const v = (((scratchA[0] << 24) | (scratchA[1] << 16) | (scratchA[2] << 8) | scratchA[3]) | host) >>> 0;
        scratchB[0] = v >>> 24; scratchB[1] = (v >>> 16) & 0xff; scratchB[2] = (v >>> 8) & 0xff; scratchB[3] = v & 0xff;
      } else if (parseIpInto(o.broadcast, scratchB, 0) !== 4) {
        throw invalid(op, `invalid broadcast address ${JSON.stringify(o.broadcast)}`);
      }
      brd = true;
    }
    const w = this.w;
    w.begin(type, flags);
    w.ifaddrmsg(fam === 4 ? AF_INET : AF_INET6, prefixLen, o.nodad && fam === 6 ? IFA_F_NODAD : 0, RT_SCOPE_UNIVERSE, index);
    w.bytesAttr(IFA_LOCAL, scratchA, 0, n);
    w.bytesAttr(IFA_ADDRESS, scratchA, 0, n);
    if (brd) w.bytesAttr(IFA_BROADCAST, scratchB, 0, 4);
    w.end(op, `${op}(${index}, ${address}/${prefixLen})`);
  }

  /** Adds an IPv4 or IPv6 address to the interface. */
  addAddress(index: number, address: string, prefixLen: number, o: AddressOptions = {}): this {
    this.addr('addAddress', RTM_NEWADDR, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL, index, address, prefixLen, o);
    return this;
  }

  /** Removes an address from the interface. */
  deleteAddress(index: number, address: string, prefixLen: number): this {
    this.addr('deleteAddress', RTM_DELADDR, NLM_F_REQUEST, index, address, prefixLen, {});
    return this;
  }

  private route(op: string, del: boolean, r: RouteSpec): void {
    if (!r || typeof r !== 'object') throw invalid(op, 'missing route');
    const fam = ipOf(op, r.dst, scratchA, 'destination');
    checkPrefix(op, fam, r.prefixLen);
    let gw = false;
    if (r.gateway !== undefined) {
      const gf = ipOf(op, r.gateway, scratchC, 'gateway');
      if (gf !== fam) throw invalid(op, `gateway ${r.gateway} is not of the destination's family`);
      gw = true;
    }
    if (r.oif !== undefined) checkIndex(op, r.oif, 'output interface index');
    const table = r.table ?? RT_TABLE_MAIN;
    if (!Number.isInteger(table) || table <= 0 || table > 0xffffffff) throw invalid(op, `invalid table ${String(table)}`);
    if (r.metric !== undefined && (!Number.isInteger(r.metric) || r.metric < 0 || r.metric > 0xffffffff)) {
      throw invalid(op, `invalid metric ${String(r.metric)}`);
    }
    const n = fam === 4 ? 4 : 16;
    const w = this.w;
    w.begin(del ? RTM_DELROUTE : RTM_NEWROUTE, del ? NLM_F_REQUEST : NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL);
    if (del) {
      w.rtmsg(fam === 4 ? AF_INET : AF_INET6, r.prefixLen, table < 256 ? table : 0, 0, RT_SCOPE_NOWHERE, 0);
    } else {
      const scope = !gw && r.oif !== undefined && fam === 4 ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
      w.rtmsg(fam === 4 ? AF_INET : AF_INET6, r.prefixLen, table < 256 ? table : 0, RTPROT_BOOT, scope, RTN_UNICAST);
    }
    if (r.prefixLen > 0) w.bytesAttr(RTA_DST, scratchA, 0, n);
    if (gw) w.bytesAttr(RTA_GATEWAY, scratchC, 0, n);
    if (r.oif !== undefined) w.u32(RTA_OIF, r.oif);
    if (r.metric !== undefined) w.u32(RTA_PRIORITY, r.metric);
    w.u32(RTA_TABLE, table);
    w.end(op, `${op}(${r.dst}/${r.prefixLen}${gw ? ` via ${r.gateway}` : ''}${r.oif !== undefined ? ` dev ${r.oif}` : ''})`);
  }

  /** Adds a route (NLM_F_EXCL: EEXIST if an identical one exists). */
  addRoute(r: RouteSpec): this {
    this.route('addRoute', false, r);
    return this;
  }

  /** Deletes a route matching dst/prefixLen (and gateway/oif/table/metric when given). */
  deleteRoute(r: RouteSpec): this {
    this.route('deleteRoute', true, r);
    return this;
  }
}

// ---- reply parsing ----

/** struct ifreq for SIOCGIFINDEX (shared, like RBUF). */
const IFREQ = Buffer.alloc(40);

/** Receive buffer shared by all sockets: every transaction finishes before another starts (no re-entrancy). */
const RBUF = Buffer.alloc(64 * 1024);

function cstr(b: Buffer, s: number, e: number): string {
  while (e > s && b[e - 1] === 0) e--;
  return b.toString('utf8', s, e);
}

function linkKind(b: Buffer, s: number, e: number): string | null {
  let a = s;
  while (a + 4 <= e) {
    const alen = b.readUInt16LE(a);
    if (alen < 4 || a + alen > e) break;
    if ((b.readUInt16LE(a + 2) & NLA_TYPE_MASK) === IFLA_INFO_KIND) return cstr(b, a + 4, a + alen);
    a += (alen + 3) & ~3;
  }
  return null;
}

/** One bridge port's flags (RTM_NEWLINK of family AF_BRIDGE, IFLA_PROTINFO). */
export interface BridgePortInfo {
  index: number;
  master: number | null;
  hairpin: boolean;
  isolated: boolean;
}

/** Parses an AF_BRIDGE RTM_NEWLINK payload; null for entries without port info (the bridge itself). */
export function parseBridgePort(b: Buffer, off: number, end: number): BridgePortInfo | null {
  const index = b.readInt32LE(off + 4);
  let master: number | null = null;
  let hairpin: boolean | null = null;
  let isolated = false;
  let a = off + 16;
  while (a + 4 <= end) {
    const alen = b.readUInt16LE(a);
    if (alen < 4 || a + alen > end) break;
    const t = b.readUInt16LE(a + 2) & NLA_TYPE_MASK;
    if (t === IFLA_MASTER) master = b.readUInt32LE(a + 4) || null;
    else if (t === IFLA_PROTINFO) {
      hairpin = false;
      for (let n = a + 4; n + 4 <= a + alen;) {
        const nlen = b.readUInt16LE(n);
        if (nlen < 4 || n + nlen > a + alen) break;
        const nt = b.readUInt16LE(n + 2) & NLA_TYPE_MASK;
        if (nt === IFLA_BRPORT_MODE) hairpin = b[n + 4] !== 0;
        else if (nt === IFLA_BRPORT_ISOLATED) isolated = b[n + 4] !== 0;
        n += (nlen + 3) & ~3;
      }
    }
    a += (alen + 3) & ~3;
  }
  return hairpin === null ? null : { index, master, hairpin, isolated };
}

/** Parses an RTM_NEWTFILTER payload (tcmsg + attributes). Exported for tests. */
export function parseTcFilter(b: Buffer, off: number, end: number): TcFilterInfo | null {
  if (end - off < 20) return null;
  const handle = b.readUInt32LE(off + 8);
  const info = b.readUInt32LE(off + 16);
  let kind = '';
  let name: string | null = null;
  let ops: Buffer | null = null;
  let flags = 0;
  let a = off + 20;
  while (a + 4 <= end) {
    const alen = b.readUInt16LE(a);
    if (alen < 4 || a + alen > end) break;
    const t = b.readUInt16LE(a + 2) & NLA_TYPE_MASK;
    if (t === TCA_KIND) kind = cstr(b, a + 4, a + alen);
    else if (t === TCA_OPTIONS) {
      let n = a + 4;
      while (n + 4 <= a + alen) {
        const nlen = b.readUInt16LE(n);
        if (nlen < 4 || n + nlen > a + alen) break;
        const nt = b.readUInt16LE(n + 2) & NLA_TYPE_MASK;
        if (nt === TCA_BPF_NAME) name = cstr(b, n + 4, n + nlen);
        else if (nt === TCA_BPF_OPS) ops = Buffer.from(b.subarray(n + 4, n + nlen));
        else if (nt === TCA_BPF_FLAGS && nlen >= 8) flags = b.readUInt32LE(n + 4);
        n += (nlen + 3) & ~3;
      }
    }
    a += (alen + 3) & ~3;
  }
  return { prio: info >>> 16, protocolBe: info & 0xffff, handle, kind, name, ops, directAction: (flags & TCA_BPF_FLAG_ACT_DIRECT) !== 0 };
}

/** Parses an RTM_NEWLINK payload b[off..end). Exported for tests. */
export function parseLink(b: Buffer, off: number, end: number): LinkInfo {
  const index = b.readInt32LE(off + 4);
  const flags = b.readUInt32LE(off + 8);
  let name = '';
  let kind: string | null = null;
  let master: number | null = null;
  let alias: string | null = null;
  let mac = '';
  let mtu = 0;
  let oper = 0;
  let a = off + 16;
  while (a + 4 <= end) {
    const alen = b.readUInt16LE(a);
    if (alen < 4 || a + alen > end) break;
    switch (b.readUInt16LE(a + 2) & NLA_TYPE_MASK) {
      case IFLA_IFNAME: name = cstr(b, a + 4, a + alen); break;
      case IFLA_MTU: mtu = b.readUInt32LE(a + 4); break;
      case IFLA_MASTER: master = b.readUInt32LE(a + 4) || null; break;
      case IFLA_IFALIAS: alias = cstr(b, a + 4, a + alen) || null; break;
      case IFLA_ADDRESS: mac = formatMac(b, a + 4, alen - 4); break;
      case IFLA_OPERSTATE: oper = b[a + 4]; break;
      case IFLA_LINKINFO: kind = linkKind(b, a + 4, a + alen); break;
    }
    a += (alen + 3) & ~3;
  }
  return {
    index, name, kind, master, alias, mac, mtu,
    up: (flags & IFF_UP) !== 0, operUp: (flags & IFF_RUNNING) !== 0,
    operState: OPER_STATES[oper] ?? `state${oper}`, flags,
  };
}

function addrText(b: Buffer, o: number, family: number): string {
  return family === AF_INET ? formatIpv4(b, o) : formatIpv6(b, o);
}

function parseAddr(b: Buffer, off: number, end: number): AddrInfo | null {
  const family = b[off];
  if (family !== AF_INET && family !== AF_INET6) return null;
  const n = family === AF_INET ? 4 : 16;
  let local = -1;
  let address = -1;
  let a = off + 8;
  while (a + 4 <= end) {
    const alen = b.readUInt16LE(a);
    if (alen < 4 || a + alen > end) break;
    const t = b.readUInt16LE(a + 2) & NLA_TYPE_MASK;
    if (alen - 4 >= n) {
      if (t === IFA_LOCAL) local = a + 4;
      else if (t === IFA_ADDRESS) address = a + 4;
    }
    a += (alen + 3) & ~3;
  }
  const at = local >= 0 ? local : address;
  if (at < 0) return null;
  return {
    index: b.readUInt32LE(off + 4), family: family === AF_INET ? 4 : 6, address: addrText(b, at, family),
    prefixLen: b[off + 1], scope: b[off + 3],
  };
}

function parseRoute(b: Buffer, off: number, end: number, table: number): RouteInfo | null {
  const family = b[off];
  if (family !== AF_INET && family !== AF_INET6) return null;
  if (b.readUInt32LE(off + 8) & RTM_F_CLONED) return null;
  const n = family === AF_INET ? 4 : 16;
  let tbl = b[off + 4];
  let dst: string | null = null;
  let gateway: string | null = null;
  let oif: number | null = null;
  let metric: number | null = null;
  let a = off + 12;
  while (a + 4 <= end) {
    const alen = b.readUInt16LE(a);
    if (alen < 4 || a + alen > end) break;
    switch (b.readUInt16LE(a + 2) & NLA_TYPE_MASK) {
      case RTA_TABLE: tbl = b.readUInt32LE(a + 4); break;
      case RTA_DST: if (alen - 4 >= n) dst = addrText(b, a + 4, family); break;
      case RTA_GATEWAY: if (alen - 4 >= n) gateway = addrText(b, a + 4, family); break;
      case RTA_VIA: {
        const vf = b.readUInt16LE(a + 4);
        if (vf === AF_INET && alen >= 10) gateway = formatIpv4(b, a + 6);
        else if (vf === AF_INET6 && alen >= 22) gateway = formatIpv6(b, a + 6);
        break;
      }
      case RTA_OIF: oif = b.readUInt32LE(a + 4); break;
      case RTA_PRIORITY: metric = b.readUInt32LE(a + 4); break;
    }
    a += (alen + 3) & ~3;
  }
  if (table !== 0 && tbl !== table) return null;
  return {
    family: family === AF_INET ? 4 : 6, dst: dst ?? (family === AF_INET ? '0.0.0.0' : '::'), prefixLen: b[off + 1],
    gateway, oif, table: tbl, protocol: b[off + 5], scope: b[off + 6], type: b[off + 7], metric,
  };
}

/** The kernel's extended-ack message in an NLMSG_ERROR / NLMSG_DONE at b[off..off+len), if any. */
function extackMessage(b: Buffer, off: number, len: number, flags: number, type: number): string | null {
  if (!(flags & NLM_F_ACK_TLVS)) return null;
  const end = off + len;
  let a = off + NLMSG_HDRLEN + 4;
  if (type === NLMSG_ERROR) {
    if (flags & NLM_F_CAPPED) a += NLMSG_HDRLEN;
    else if (a + 4 <= end) a += (b.readUInt32LE(a) + 3) & ~3;
  }
  while (a + 4 <= end) {
    const alen = b.readUInt16LE(a);
    if (alen < 4 || a + alen > end) break;
    if ((b.readUInt16LE(a + 2) & NLA_TYPE_MASK) === NLMSGERR_ATTR_MSG) return cstr(b, a + 4, a + alen);
    a += (alen + 3) & ~3;
  }
  return null;
}

const MODE_ACK = 0; // the last request is a mutation: ends at its ack
const MODE_GET = 1; // the last request is a non-dump GET: ends at its reply (or error)
const MODE_DUMP = 2; // the last request is a dump: ends at NLMSG_DONE (or error)

type Parser<T> = (b: Buffer, off: number, end: number) => T | null;

/**
 * One NETLINK_ROUTE socket, acting in the network namespace of the thread that opened it. All methods are
 * synchronous (one send() and, normally, one recv()); failures throw NetlinkError.
 */
export class Netlink {
  private fd: number;
  private readonly seq = new SeqCounter();
  /** Encoder for single requests made through the methods of this class. */
  private readonly one = new NetlinkBatch(512);
  /** Encoder for batch(), reused; null while a batch is being built. */
  private many: NetlinkBatch | null = null;

  private constructor(fd: number) {
    this.fd = fd;
  }

  /**
   * Opens a socket in the calling thread's current netns (setns() there first to act in another one; the socket
   * keeps acting there after switching back). Enables extended acks (kernel error text) and capped acks.
   */
  static open(): Netlink {
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
    return new Netlink(fd);
  }

  /**
   * Opens a socket bound to the netns open as `nsFd`: switches the calling thread there, opens, and switches it
   * back to the netns it was in (synchronously, so nothing else runs while switched).
   */
  static openIn(nsFd: number): Netlink {
    const back = openPath('/proc/thread-self/ns/net');
    try {
      setns(nsFd, CLONE_NEWNET);
      try {
        return Netlink.open();
      } finally {
        setns(back, CLONE_NEWNET);
      }
    } finally {
      closeFd(back);
    }
  }

  /** True after close(). */
  get closed(): boolean {
    return this.fd < 0;
  }

  /** Closes the socket (idempotent). An open socket keeps its netns alive (KERNEL-NOTES pitfall 4). */
  close(): void {
    if (this.fd >= 0) closeFd(this.fd);
    this.fd = -1;
  }

  private single(): NetlinkBatch {
    this.one.w.reset();
    return this.one;
  }

  /**
   * Creates a bridge named `name` (optionally with MTU, MAC, alias, and up) and returns its ifindex.
   * EEXIST if an interface of that name exists.
   */
  createBridge(name: string, o: BridgeOptions = {}): number {
    if (o.alias !== undefined) checkAlias('createBridge', o.alias);
    const w = this.single().w;
    encBridge(w, name, o);
    this.exec(w, false, MODE_ACK, null);
    return this.created('createBridge', name, o.alias);
  }

  /**
   * Creates a veth pair: the host end `hostName` in this socket's netns (optionally enslaved to `o.master`, with
   * `o.alias`, `o.hostMac`, and up if `o.up`), the peer `peerName` created directly inside the netns open as
   * `peerNetnsFd` (with `o.peerMac`; `o.mtu` applies to both ends). The peer is NOT set up here (kernel 6.18
   * answers ENOTCONN: KERNEL-NOTES pitfall 7): set it up through a socket in its netns. Returns the host ifindex.
   */
  createVeth(hostName: string, peerName: string, peerNetnsFd: number, o: VethOptions = {}): number {
    if (o.alias !== undefined) checkAlias('createVeth', o.alias);
    const w = this.single().w;
    encVeth(w, hostName, peerName, peerNetnsFd, o);
    this.exec(w, false, MODE_ACK, null);
    return this.created('createVeth', hostName, o.alias);
  }

  /**
   * The ifindex of the interface named `name` in this socket's netns, or null if there is none. Cheaper than
   * linkByName() (one SIOCGIFINDEX ioctl on this socket, no netlink message): use it when only the index is needed.
   */
  ifindex(name: string): number | null {
    const op = 'ifindex';
    checkName(op, name);
    if (this.fd < 0) throw closedError(op);
    const r = IFREQ;
    r.fill(0, 0, 20);
    r.write(name, 0, 'utf8');
    try {
      ioctlPtr(this.fd, SIOCGIFINDEX, r);
    } catch (e) {
      if (e instanceof SysError && e.code === 'ENODEV') return null;
      throw sysToNl(e, op);
    }
    return r.readInt32LE(16);
  }

  /**
   * Index of a link this socket just created, by ioctl (a GETLINK reply for a veth would allocate a netns id for
   * the peer's netns: ~0.05 ms dearer), and its alias, set by index now that the create has succeeded.
   */
  private created(op: string, name: string, alias: string | undefined): number {
    const i = this.ifindex(name);
    if (i === null) throw new NetlinkError(`${op}(${name}): created, but gone at once`, 'ENODEV', 19, op);
    if (alias !== undefined) this.setAlias(i, alias);
    return i;
  }

  /** Sets the interface administratively up. */
  setUp(index: number): void {
    this.exec(this.single().setUp(index).w, false, MODE_ACK, null);
  }

  /** Sets the interface administratively down. */
  setDown(index: number): void {
    this.exec(this.single().setDown(index).w, false, MODE_ACK, null);
  }

  /** See NetlinkBatch.setBridgePort. */
  setBridgePort(index: number, o: { hairpin?: boolean; isolated?: boolean }): void {
    this.exec(this.single().setBridgePort(index, o).w, false, MODE_ACK, null);
  }

  /** Enslaves the interface to the bridge `master`, or releases it (null). */
  setMaster(index: number, master: number | null): void {
    this.exec(this.single().setMaster(index, master).w, false, MODE_ACK, null);
  }

  setMtu(index: number, mtu: number): void {
    this.exec(this.single().setMtu(index, mtu).w, false, MODE_ACK, null);
  }

  /** Sets the interface alias (IFLA_IFALIAS); '' removes it. */
  setAlias(index: number, alias: string): void {
    this.exec(this.single().setAlias(index, alias).w, false, MODE_ACK, null);
  }

  /** Sets the link-layer address ('aa:bb:cc:dd:ee:ff'). */
  setMac(index: number, mac: string): void {
    this.exec(this.single().setMac(index, mac).w, false, MODE_ACK, null);
  }

  /** Deletes the interface (ENODEV if there is none with that index). */
  deleteLink(index: number): void {
    this.exec(this.single().deleteLink(index).w, false, MODE_ACK, null);
  }

  /** The interface named `name`, or null if there is none (ENODEV). */
  linkByName(name: string): LinkInfo | null {
    checkName('linkByName', name);
    const b = this.single();
    encGetLinkByName(b.w, 'linkByName', name);
    try {
      return this.exec(b.w, false, MODE_GET, parseLink)[0] ?? null;
    } catch (e) {
      if (e instanceof NetlinkError && e.code === 'ENODEV') return null;
      throw e;
    }
  }

  /** The interface with ifindex `index`, or null if there is none (ENODEV). */
  linkByIndex(index: number): LinkInfo | null {
    checkIndex('linkByIndex', index);
    const b = this.single();
    encGetLinkByIndex(b.w, 'linkByIndex', index);
    try {
      return this.exec(b.w, false, MODE_GET, parseLink)[0] ?? null;
    } catch (e) {
      if (e instanceof NetlinkError && e.code === 'ENODEV') return null;
      throw e;
    }
  }

  /** See NetlinkBatch.addClsact. */
  addClsact(index: number, o: { ingressBlock?: number; egressBlock?: number } = {}): void {
    this.exec(this.single().addClsact(index, o).w, false, MODE_ACK, null);
  }

  /** See NetlinkBatch.addBpfFilter. */
  addBpfFilter(target: TcTarget, f: BpfFilterSpec): void {
    this.exec(this.single().addBpfFilter(target, f).w, false, MODE_ACK, null);
  }

  /** Deletes the interface's clsact qdisc (with its filters). */
  deleteClsact(index: number): void {
    checkIndex('deleteClsact', index);
    const w = this.single().w;
    w.begin(RTM_DELQDISC, NLM_F_REQUEST);
    w.tcmsg(index, 0xffff0000, TC_H_CLSACT, 0);
    w.end('deleteClsact', `deleteClsact(${index})`);
    this.exec(w, false, MODE_ACK, null);
  }

  /** Every qdisc of this netns (RTM_GETQDISC dump). */
  qdiscs(): QdiscInfo[] {
    return this.dump('qdiscs', RTM_GETQDISC, (w) => w.tcmsg(0, 0, 0, 0), parseQdisc);
  }

  /** Deletes the filter at `prio` (all handles of it). */
  deleteFilter(target: TcTarget, prio: number, protocolBe: number): void {
    const [index, parent] = tcWhere('deleteFilter', target);
    const w = this.single().w;
    w.begin(RTM_DELTFILTER, NLM_F_REQUEST);
    w.tcmsg(index, 0, parent, ((prio << 16) | (protocolBe & 0xffff)) >>> 0);
    w.end('deleteFilter', `deleteFilter(${index}, prio ${prio})`);
    this.exec(w, false, MODE_ACK, null);
  }

  /** Filters of an interface's `parent`, or of a shared block (RTM_GETTFILTER dump); [] when there is no such
   *  qdisc or block. */
  filters(target: TcTarget): TcFilterInfo[] {
    const [index, parent] = tcWhere('filters', target);
    try {
      return this.dump('filters', RTM_GETTFILTER, (w) => w.tcmsg(index, 0, parent, 0), parseTcFilter).filter((f) => f.kind !== '');
    } catch (e) {
      // No clsact qdisc: the kernel answers EINVAL ("Cannot find specified qdisc") or ENOENT.
      if (e instanceof NetlinkError && (e.code === 'EINVAL' || e.code === 'ENOENT')) return [];
      throw e;
    }
  }

  /** Flags of every bridge port of this netns (RTM_GETLINK dump of family AF_BRIDGE). */
  bridgePorts(): BridgePortInfo[] {
    return this.dump('bridgePorts', RTM_GETLINK, (w) => {
      w.ifinfomsg(AF_BRIDGE, 0, 0, 0);
      w.u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
    }, parseBridgePort);
  }

  /** All interfaces of this netns (RTM_GETLINK dump, without statistics). */
  links(): LinkInfo[] {
    return this.dump('links', RTM_GETLINK, (w) => {
      w.ifinfomsg(AF_UNSPEC, 0, 0, 0);
      w.u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
    }, parseLink);
  }

  /** Adds an IPv4 or IPv6 address (EEXIST if present). `o.broadcast` ('+' = computed) and `o.nodad` optional. */
  addAddress(index: number, address: string, prefixLen: number, o: AddressOptions = {}): void {
    this.exec(this.single().addAddress(index, address, prefixLen, o).w, false, MODE_ACK, null);
  }

  /** Removes an address (EADDRNOTAVAIL if absent). */
  deleteAddress(index: number, address: string, prefixLen: number): void {
    this.exec(this.single().deleteAddress(index, address, prefixLen).w, false, MODE_ACK, null);
  }

  /** All addresses of this netns, optionally of one family (RTM_GETADDR dump). */
  addresses(family?: 4 | 6): AddrInfo[] {
    const af = family === 4 ? AF_INET : family === 6 ? AF_INET6 : AF_UNSPEC;
    return this.dump('addresses', RTM_GETADDR, (w) => w.ifaddrmsg(af, 0, 0, 0, 0), parseAddr);
  }

  /** Adds a route (see RouteSpec; EEXIST if the same route exists). */
  addRoute(r: RouteSpec): void {
    this.exec(this.single().addRoute(r).w, false, MODE_ACK, null);
  }

  /** Deletes a route (ESRCH if none matches). */
  deleteRoute(r: RouteSpec): void {
    this.exec(this.single().deleteRoute(r).w, false, MODE_ACK, null);
  }

  /**
   * Routes of one table (main by default; 0 = all tables), of one family or both. Cloned/cached entries are
   * left out.
   */
  routes(family?: 4 | 6, table: number = RT_TABLE_MAIN): RouteInfo[] {
    const af = family === 4 ? AF_INET : family === 6 ? AF_INET6 : AF_UNSPEC;
    return this.dump('routes', RTM_GETROUTE, (w) => w.rtmsg(af, 0, 0, 0, 0, 0),
      (b, off, end) => parseRoute(b, off, end, table));
  }

  /**
   * Queues the requests made by `fn` on a NetlinkBatch and sends them in ONE send(), then reads the replies.
   * If any request fails, throws the NetlinkError of the first failure; `err.request` is its position (0-based)
   * and the message names it. The kernel does not stop at a failure: requests after the failing one are still
   * carried out. If `fn` throws, nothing is sent. Nothing is sent for an empty batch.
   */
  batch(fn: (b: NetlinkBatch) => void): void {
    let b = this.many;
    this.many = null; // a nested batch() gets a fresh encoder
    if (!b) b = new NetlinkBatch(1024);
    b.w.reset();
    try {
      fn(b);
      if (b.w.count > 0) this.exec(b.w, true, MODE_ACK, null);
    } finally {
      b.w.reset();
      this.many = b;
    }
  }

  private dump<T>(op: string, type: number, header: (w: NlWriter) => void, parse: Parser<T>): T[] {
    for (let attempt = 0; ; attempt++) {
      const w = this.single().w;
      w.begin(type, NLM_F_REQUEST | NLM_F_DUMP);
      header(w);
      w.end(op, `${op}()`);
      const out: T[] = [];
      if (!this.execRaw(w, false, MODE_DUMP, parse, out) || attempt >= 4) return out;
      // NLM_F_DUMP_INTR: the set changed during the dump; the result may be inconsistent: dump again.
    }
  }

  /** Sends `w` and returns the parsed data replies of its last request (see execRaw). */
  private exec<T>(w: NlWriter, isBatch: boolean, mode: number, parse: Parser<T> | null): T[] {
    const out: T[] = [];
    this.execRaw(w, isBatch, mode, parse, out);
    return out;
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

function closedError(op: string): NetlinkError {
  return new NetlinkError(`${op}: the netlink socket is closed`, 'EBADF', 9, op);
}

function sysToNl(e: unknown, op: string): unknown {
  if (e instanceof SysError) return new NetlinkError(`${op}: ${e.message}`, e.code, e.errno, op);
  return e;
}
