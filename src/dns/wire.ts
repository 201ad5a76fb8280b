// DNS wire format, the small part the resolver needs, hand-written for speed: parse the header and the single
// question of a query (plus its EDNS OPT record), and build replies by copying the question and appending
// precomputed resource records. No allocation on the hot path beyond the reply buffer and the name string.
// (RFC 1035 section 4, RFC 6891 for EDNS.)

export const TYPE_A = 1;
export const TYPE_PTR = 12;
export const TYPE_AAAA = 28;
export const TYPE_OPT = 41;
export const TYPE_ANY = 255;
export const CLASS_IN = 1;
export const CLASS_ANY = 255;

export const RCODE_NOERROR = 0;
export const RCODE_FORMERR = 1;
export const RCODE_SERVFAIL = 2;
export const RCODE_NXDOMAIN = 3;
export const RCODE_NOTIMP = 4;
export const RCODE_REFUSED = 5;

const FLAG_QR = 0x8000;
const FLAG_AA = 0x0400;
const FLAG_TC = 0x0200;
const FLAG_RD = 0x0100;
const FLAG_RA = 0x0080;
const FLAG_CD = 0x0010;

/** The largest UDP reply we send for our own answers, whatever the client's EDNS buffer says: fits a 1280-byte
 *  IPv6 minimum MTU path and every bridge without fragmentation (the "DNS flag day 2020" value). */
export const MAX_UDP_LOCAL = 1232;
/** What we advertise in our OPT record. */
export const EDNS_ADVERTISED = 1232;

export interface ParsedQuery {
  id: number;
  flags: number;
  opcode: number;
  /** Lowercased (ASCII), labels joined by '.', no trailing dot; '' for the root. */
  qname: string;
  labels: number;
  /** Every label byte is printable ASCII other than '.', so `qname` is an unambiguous key. */
  plain: boolean;
  qtype: number;
  qclass: number;
  /** Offset just past the question: msg[12, qEnd) is the question, copied verbatim into replies. */
  qEnd: number;
  edns: boolean;
  ednsSize: number;
  ednsVersion: number;
  ednsDo: boolean;
}

export function newParsedQuery(): ParsedQuery {
  return {
    id: 0, flags: 0, opcode: 0, qname: '', labels: 0, plain: true, qtype: 0, qclass: 0, qEnd: 0,
    edns: false, ednsSize: 512, ednsVersion: 0, ednsDo: false,
  };
}

/** parseQuery results */
export const PARSE_OK = 0;
/** Not a query we should answer at all (too short for a header, or a response): drop silently. */
export const PARSE_DROP = 1;
/** Header readable, the rest malformed: answer FORMERR. */
export const PARSE_FORMERR = 2;
/** Opcode other than QUERY: answer NOTIMP. */
export const PARSE_NOTIMP = 3;

const scratch = Buffer.allocUnsafe(256);

/** Skips one resource record starting at `off`; returns the offset after it, or -1 when malformed. Used only
 *  when a query carries records besides the question (normally just the EDNS OPT). */
function skipRR(msg: Buffer, off: number, len: number): number {
  for (;;) {
    if (off >= len) return -1;
    const l = msg[off];
    if (l === 0) {
      off += 1;
      break;
    }
    if ((l & 0xc0) === 0xc0) {
      off += 2;
      break;
    }
    if (l > 63) return -1;
    off += 1 + l;
  }
  if (off + 10 > len) return -1;
  off += 10 + msg.readUInt16BE(off + 8);
  return off > len ? -1 : off;
}

/** Parses `msg` into `q` (reused between calls). Never throws for any input. */
export function parseQuery(msg: Buffer, q: ParsedQuery): number {
  const len = msg.length;
  if (len < 12) return PARSE_DROP;
  const flags = (msg[2] << 8) | msg[3];
  if (flags & FLAG_QR) return PARSE_DROP;
  q.id = (msg[0] << 8) | msg[1];
  q.flags = flags;
  q.opcode = (flags >> 11) & 15;
  q.edns = false;
  q.ednsSize = 512;
  q.ednsVersion = 0;
  q.ednsDo = false;
  q.qEnd = 12;
  if (q.opcode !== 0) return PARSE_NOTIMP;
  if (msg[4] !== 0 || msg[5] !== 1) return PARSE_FORMERR;

  let off = 12;
  let n = 0;
  let labels = 0;
  let plain = true;
  for (;;) {
    if (off >= len) return PARSE_FORMERR;
    const l = msg[off++];
    if (l === 0) break;
    // Compression pointers cannot point anywhere useful from the first name of a message; extended label
    // types are obsolete.
    if (l > 63 || off + l > len || n + l + 2 > 255) return PARSE_FORMERR;
    if (labels > 0) scratch[n++] = 0x2e;
    const end = off + l;
    for (let i = off; i < end; i++) {
      let c = msg[i];
      if (c >= 0x41 && c <= 0x5a) c |= 0x20;
      else if (c === 0x2e || c < 0x21 || c > 0x7e) plain = false;
      scratch[n++] = c;
    }
    off = end;
    labels++;
  }
  if (off + 4 > len) return PARSE_FORMERR;
  q.qname = n === 0 ? '' : scratch.toString('latin1', 0, n);
  q.labels = labels;
  q.plain = plain;
  q.qtype = (msg[off] << 8) | msg[off + 1];
  q.qclass = (msg[off + 2] << 8) | msg[off + 3];
  off += 4;
  q.qEnd = off;

  const an = (msg[6] << 8) | msg[7];
  const ns = (msg[8] << 8) | msg[9];
  const ar = (msg[10] << 8) | msg[11];
  if (an === 0 && ns === 0 && ar === 0) return PARSE_OK;
  for (let i = an + ns; i > 0; i--) {
    off = skipRR(msg, off, len);
    if (off < 0) return PARSE_FORMERR;
  }
  for (let i = 0; i < ar; i++) {
    const start = off;
    off = skipRR(msg, off, len);
    if (off < 0) return PARSE_FORMERR;
    // OPT: root owner name (one zero byte), type 41.
    if (msg[start] === 0 && msg[start + 1] === 0 && msg[start + 2] === TYPE_OPT) {
      if (q.edns) return PARSE_FORMERR; // RFC 6891 6.1.1: more than one OPT
      q.edns = true;
      const size = msg.readUInt16BE(start + 3);
      q.ednsSize = size < 512 ? 512 : size;
      q.ednsVersion = msg[start + 6];
      q.ednsDo = (msg[start + 7] & 0x80) !== 0;
    }
  }
  return PARSE_OK;
}

/** The biggest reply the client accepts over UDP for our own answers. */
export function udpLimitLocal(q: ParsedQuery): number {
  if (!q.edns) return 512;
  return q.ednsSize > MAX_UDP_LOCAL ? MAX_UDP_LOCAL : q.ednsSize;
}

/** The biggest reply the client accepts over UDP, for relayed upstream answers (the client's own number). */
export function udpLimitClient(q: ParsedQuery): number {
  return q.edns ? q.ednsSize : 512;
}

function replyFlags(q: ParsedQuery, rcode: number, aa: boolean, tc: boolean): number {
  return (
    FLAG_QR | (q.opcode << 11) | (aa ? FLAG_AA : 0) | (tc ? FLAG_TC : 0) | (q.flags & (FLAG_RD | FLAG_CD)) | FLAG_RA |
    (rcode & 15)
  );
}

function writeOpt(out: Buffer, off: number, q: ParsedQuery, extRcode: number): void {
  out[off] = 0; // root
  out[off + 1] = 0;
  out[off + 2] = TYPE_OPT;
  out[off + 3] = EDNS_ADVERTISED >> 8;
  out[off + 4] = EDNS_ADVERTISED & 255;
  out[off + 5] = extRcode;
  out[off + 6] = 0; // version
  out[off + 7] = q.ednsDo ? 0x80 : 0;
  out[off + 8] = 0;
  out[off + 9] = 0; // rdlen
  out[off + 10] = 0;
}
const OPT_LEN = 11;

/** Allocates a reply of `len` bytes and writes its header and the question copied from `msg`; returns the
 *  buffer and the offset after the question. */
function startReply(msg: Buffer, q: ParsedQuery, rcode: number, aa: boolean, tc: boolean, an: number, len: number): Buffer {
  const out = Buffer.allocUnsafe(len);
  out[0] = q.id >> 8;
  out[1] = q.id & 255;
  const f = replyFlags(q, rcode, aa, tc);
  out[2] = f >> 8;
  out[3] = f & 255;
  out[4] = 0;
  out[5] = 1;
  out[6] = an >> 8;
  out[7] = an & 255;
  out[8] = 0;
  out[9] = 0;
  out[10] = 0;
  out[11] = q.edns ? 1 : 0;
  msg.copy(out, 12, 12, q.qEnd);
  return out;
}

/** How many records of `rrSize` bytes fit after the fixed part within `limit`; sets `fit.tc` when not all. */
function fitting(q: ParsedQuery, count: number, rrSize: number, limit: number): { n: number; tc: boolean; fixed: number } {
  const fixed = q.qEnd + (q.edns ? OPT_LEN : 0);
  if (count === 0 || fixed + count * rrSize <= limit) return { n: count, tc: false, fixed };
  return { n: Math.max(0, Math.floor((limit - fixed) / rrSize)), tc: true, fixed };
}

/**
 * A reply to a parsed query: header, the question copied from `msg`, then `count` answer records of `rrSize`
 * bytes each taken from `rrs`, then an OPT record when the query had one. When the records do not all fit in
 * `limit` bytes, as many as fit are sent and TC is set. `rcode` may be BADVERS (16): it goes to the OPT
 * record's extended bits.
 */
export function buildReply(
  msg: Buffer, q: ParsedQuery, rcode: number, aa: boolean, rrs: Buffer | null, count: number, rrSize: number, limit: number,
): Buffer {
  const { n, tc, fixed } = fitting(q, count, rrSize, limit);
  const out = startReply(msg, q, rcode, aa, tc, n, fixed + n * rrSize);
  let off = q.qEnd;
  if (n > 0 && rrs) {
    rrs.copy(out, off, 0, n * rrSize);
    off += n * rrSize;
  }
  if (q.edns) writeOpt(out, off, q, rcode >> 4);
  return out;
}

/** A NOERROR authoritative reply with A records for `ips` (uint32), owner = the question's name, starting at
 *  index `first` and wrapping around (round robin), truncated (TC) to what fits in `limit`. */
export function buildAReply(msg: Buffer, q: ParsedQuery, ips: number[], first: number, ttl: number, limit: number): Buffer {
  const count = ips.length;
  const { n, tc, fixed } = fitting(q, count, 16, limit);
  const out = startReply(msg, q, 0, true, tc, n, fixed + n * 16);
  let off = q.qEnd;
  const t0 = (ttl >>> 24) & 255;
  const t1 = (ttl >>> 16) & 255;
  const t2 = (ttl >>> 8) & 255;
  const t3 = ttl & 255;
  for (let i = 0; i < n; i++) {
    let j = first + i;
    if (j >= count) j -= count;
    const ip = ips[j];
    out[off] = 0xc0;
    out[off + 1] = 0x0c;
    out[off + 2] = 0;
    out[off + 3] = TYPE_A;
    out[off + 4] = 0;
    out[off + 5] = CLASS_IN;
    out[off + 6] = t0;
    out[off + 7] = t1;
    out[off + 8] = t2;
    out[off + 9] = t3;
    out[off + 10] = 0;
    out[off + 11] = 4;
    out[off + 12] = (ip >>> 24) & 255;
    out[off + 13] = (ip >>> 16) & 255;
    out[off + 14] = (ip >>> 8) & 255;
    out[off + 15] = ip & 255;
    off += 16;
  }
  if (q.edns) writeOpt(out, off, q, 0);
  return out;
}

/** A reply with the question and no records (NXDOMAIN, NODATA, SERVFAIL, REFUSED...). */
export function emptyReply(msg: Buffer, q: ParsedQuery, rcode: number, aa: boolean): Buffer {
  return buildReply(msg, q, rcode, aa, null, 0, 0, 65535);
}

/** A 12-byte header-only reply (FORMERR, NOTIMP): for queries whose question could not be read. Returns null when
 *  even the header is unusable. */
export function headerReply(msg: Buffer, rcode: number): Buffer | null {
  if (msg.length < 12 || msg[2] & 0x80) return null;
  const out = Buffer.alloc(12);
  out[0] = msg[0];
  out[1] = msg[1];
  const flags = FLAG_QR | (((msg[2] >> 3) & 15) << 11) | (msg[2] & 1 ? FLAG_RD : 0) | FLAG_RA | rcode;
  out[2] = flags >> 8;
  out[3] = flags & 255;
  return out;
}

/** Encodes a dotted name as wire-format labels (uncompressed, with the final root label). Null when a label is
 *  empty or longer than 63 bytes, or the whole name longer than 255. */
export function encodeName(name: string): Buffer | null {
  const trimmed = name.endsWith('.') ? name.slice(0, -1) : name;
  if (trimmed === '') return Buffer.from([0]);
  const parts = trimmed.split('.');
  const out = Buffer.allocUnsafe(trimmed.length + 2);
  let off = 0;
  for (const p of parts) {
    const b = Buffer.from(p, 'latin1');
    if (b.length === 0 || b.length > 63) return null;
    out[off++] = b.length;
    b.copy(out, off);
    off += b.length;
  }
  out[off++] = 0;
  return off > 255 ? null : out.subarray(0, off);
}

/** One answer record whose owner is the question's name (compression pointer to offset 12). */
export function encodeRR(type: number, ttl: number, rdata: Buffer): Buffer {
  const out = Buffer.allocUnsafe(12 + rdata.length);
  out.writeUInt16BE(0xc00c, 0);
  out.writeUInt16BE(type, 2);
  out.writeUInt16BE(CLASS_IN, 4);
  out.writeUInt32BE(ttl >>> 0, 6);
  out.writeUInt16BE(rdata.length, 10);
  rdata.copy(out, 12);
  return out;
}

/** True when the reply's TC bit is set. */
export function isTruncated(reply: Buffer): boolean {
  return reply.length >= 3 && (reply[2] & 0x02) !== 0;
}

/** True when `reply` answers the question msg[12, qEnd) (same name ignoring ASCII case, type and class): a
 *  forwarded answer must match what was asked. */
export function sameQuestion(reply: Buffer, msg: Buffer, qEnd: number): boolean {
  if (reply.length < qEnd || reply[4] !== 0 || reply[5] !== 1) return false;
  for (let i = 12; i < qEnd; i++) {
    let a = reply[i];
    let b = msg[i];
    if (a === b) continue;
    if (a >= 0x41 && a <= 0x5a) a |= 0x20;
    if (b >= 0x41 && b <= 0x5a) b |= 0x20;
    if (a !== b) return false;
  }
  return true;
}
