// IP addresses and prefixes of both families: the one parser and formatter of the project. Pure.
//
// - `Addr`: an IPv4 or IPv6 address (IPv4-mapped IPv6 is family 6, see unmap()), with an optional zone only
//   when the caller asked for it (`{ zone: true }`). Text out is canonical: dotted quad, RFC 5952 for IPv6.
// - `Prefix`: an address block (a subnet, a route destination): containment, overlap, the n-th address, the
//   last one (IPv4's broadcast), canonical text, and errors that name the input (`invalid subnet X: ...`).
// - Fast paths for the hot IPv4 code (IPAM in the attach path, the resolver per query): `parseV4` / `formatV4`
//   on uint32 numbers, and `parseInto` / `formatBytes` without allocation (netlink messages).
// - Reverse-DNS names (in-addr.arpa, ip6.arpa) both ways, and the ULA /48 of a host (RFC 4193 global id from a
//   hash of a stable id, as Docker 27+ derives it from its engine id) with its /64 subnets.
// IPv6 arithmetic is on bigint (128 bits); IPv4 keeps a uint32 `v4` next to it.
import { createHash } from 'node:crypto';
import { UserError, showValue } from './errors.js';

export type Family = 4 | 6;

export interface ParseOptions {
  /** Accept a zone ("fe80::1%eth0", IPv6 only). Default false: "%" is an error. */
  zone?: boolean;
}

const MASK128 = (1n << 128n) - 1n;
const MAPPED_HI = 0xffffn << 32n;

// ---- the low-level, allocation-free layer -------------------------------------------------------------------

function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * Strict dotted quad in s[start..end) to a uint32, or -1: four decimal octets 0..255 without leading zeros
 * ("0" itself is fine, "01" is not: some parsers read it as octal), nothing else (no whitespace, no shorthand).
 */
function parse4Range(s: string, start: number, end: number): number {
  const len = end - start;
  if (len < 7 || len > 15) return -1;
  let ip = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return -1;
      ip = ip * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return -1; // a leading zero
      part = part * 10 + (c - 48);
      if (part > 255) return -1;
      digits++;
    } else {
      return -1;
    }
  }
  if (digits === 0 || dots !== 3) return -1;
  return ip * 256 + part;
}

/** A strict dotted quad to a uint32, or -1 (the IPv4 fast path: no allocation, no regex). */
export function parseV4(s: string): number {
  return typeof s === 'string' ? parse4Range(s, 0, s.length) : -1;
}

/** uint32 -> dotted quad. A non-integer or out-of-range number is a programming error (RangeError). */
export function formatV4(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`not an IPv4 address number: ${n}`);
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** Netmask of an IPv4 prefix length as uint32 (0 -> 0, 24 -> 0xffffff00, 32 -> 0xffffffff). */
export function v4Mask(bits: number): number {
  return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
}

const words = new Uint16Array(8);

/**
 * IPv6 text in s[0..end) (RFC 4291 2.2 forms: hex groups of 1-4 digits, one "::" standing for at least one zero
 * group, an optional trailing strict dotted quad; no zone) into `words`. False when invalid.
 */
function parse6Words(s: string, end: number): boolean {
  if (end < 2 || end > 45) return false;
  let n = 0;
  let dbl = -1;
  let i = 0;
  if (s.charCodeAt(0) === 58) {
    if (s.charCodeAt(1) !== 58) return false;
    dbl = 0;
    i = 2;
  }
  while (i < end) {
    if (n === 8) return false;
    let v = 0;
    let d = 0;
    let j = i;
    for (; j < end; j++) {
      const h = hexVal(s.charCodeAt(j));
      if (h < 0) break;
      if (++d > 4) return false;
      v = v * 16 + h;
    }
    if (d === 0) return false;
    if (j < end && s.charCodeAt(j) === 46) {
      // A dotted quad: only as the last 32 bits.
      if (n > 6) return false;
      const v4 = parse4Range(s, i, end);
      if (v4 < 0) return false;
      words[n++] = v4 >>> 16;
      words[n++] = v4 & 0xffff;
      break;
    }
    words[n++] = v;
    if (j === end) break;
    if (s.charCodeAt(j) !== 58) return false;
    j++;
    if (j === end) return false; // a trailing single ":"
    if (s.charCodeAt(j) === 58) {
      if (dbl >= 0) return false; // a second "::"
      dbl = n;
      j++;
    }
    i = j;
  }
  if (dbl < 0) return n === 8;
  if (n > 7) return false; // "::" stands for at least one group
  const zeros = 8 - n;
  for (let k = n - 1; k >= dbl; k--) words[k + zeros] = words[k];
  for (let k = dbl; k < dbl + zeros; k++) words[k] = 0;
  return true;
}

/** IPv4 or IPv6 text (no zone) into out[off..off+4) or out[off..off+16). Returns 4, 6, or 0 when invalid. */
export function parseInto(s: string, out: Uint8Array, off = 0): 0 | 4 | 6 {
  if (typeof s !== 'string') return 0;
  if (s.indexOf(':') === -1) {
    const v = parse4Range(s, 0, s.length);
    if (v < 0) return 0;
    out[off] = v >>> 24;
    out[off + 1] = (v >>> 16) & 255;
    out[off + 2] = (v >>> 8) & 255;
    out[off + 3] = v & 255;
    return 4;
  }
  if (!parse6Words(s, s.length)) return 0;
  for (let k = 0; k < 8; k++) {
    out[off + 2 * k] = words[k] >>> 8;
    out[off + 2 * k + 1] = words[k] & 255;
  }
  return 6;
}

/** RFC 5952 text of eight 16-bit groups: lowercase, no leading zeros, the longest run (first of equals) of two
 *  or more zero groups as "::", and ::ffff:a.b.c.d for IPv4-mapped addresses (RFC 5952 section 5). */
function format6Words(w: ArrayLike<number>): string {
  if (w[0] === 0 && w[1] === 0 && w[2] === 0 && w[3] === 0 && w[4] === 0 && w[5] === 0xffff) {
    return `::ffff:${w[6] >>> 8}.${w[6] & 255}.${w[7] >>> 8}.${w[7] & 255}`;
  }
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  let s = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestAt) {
      s += '::';
      i += bestLen - 1;
      continue;
    }
    if (s !== '' && s.charCodeAt(s.length - 1) !== 58) s += ':';
    s += w[i].toString(16);
  }
  return s;
}

const fmtWords = [0, 0, 0, 0, 0, 0, 0, 0];

/** Canonical text of the 4 or 16 bytes at b[off..): `family` says which (the length of b when omitted). */
export function formatBytes(b: Uint8Array, off = 0, family: Family = b.length - off === 16 ? 6 : 4): string {
  if (family === 4) return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
  for (let i = 0; i < 8; i++) fmtWords[i] = (b[off + 2 * i] << 8) | b[off + 2 * i + 1];
  return format6Words(fmtWords);
}

/** 0 when `s` is not an address, else its family (strict; no zone). */
export function isIP(s: unknown): 0 | 4 | 6 {
  if (typeof s !== 'string') return 0;
  if (s.indexOf(':') === -1) return parse4Range(s, 0, s.length) < 0 ? 0 : 4;
  return parse6Words(s, s.length) ? 6 : 0;
}

/** True only for a strict dotted quad ("10.0.0.1"): no hostnames, no leading zeros, no whitespace, no shorthand. */
export function isIPv4(s: unknown): s is string {
  return typeof s === 'string' && parse4Range(s, 0, s.length) >= 0;
}

/** True only for IPv6 text without a zone (any RFC 4291 spelling, canonical or not). */
export function isIPv6(s: unknown): s is string {
  return typeof s === 'string' && s.indexOf(':') !== -1 && parse6Words(s, s.length);
}

// ---- Addr ---------------------------------------------------------------------------------------------------

/** Zone: an interface name or index; printable ASCII without "%", "/", "[" or "]". */
const ZONE = /^[\x21-\x24\x26-\x2e\x30-\x5a\x5c\x5e-\x7e]{1,64}$/;

function words6ToBig(w: ArrayLike<number>): bigint {
  const a = (w[0] << 16 | w[1]) >>> 0;
  const b = (w[2] << 16 | w[3]) >>> 0;
  const c = (w[4] << 16 | w[5]) >>> 0;
  const d = (w[6] << 16 | w[7]) >>> 0;
  return (BigInt(a) << 96n) | (BigInt(b) << 64n) | (BigInt(c) << 32n) | BigInt(d);
}

/** An IPv4 or IPv6 address. Immutable; compare with `equals`/`compare`, not ===. */
export class Addr {
  /** 4 or 6. An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is 6: see isV4Mapped() and unmap(). */
  readonly family: Family;
  /** IPv4: the address as uint32 (the fast paths); -1 for IPv6. */
  readonly v4: number;
  /** The zone of a scoped IPv6 address ("eth0" of fe80::1%eth0), '' when none. */
  readonly zone: string;
  #big: bigint | undefined;
  #text: string | undefined;

  private constructor(family: Family, v4: number, big: bigint | undefined, zone: string) {
    this.family = family;
    this.v4 = v4;
    this.#big = big;
    this.zone = zone;
  }

  /** An IPv4 address from its uint32 value. */
  static fromV4(n: number): Addr {
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`not an IPv4 address number: ${n}`);
    return new Addr(4, n, undefined, '');
  }

  /** An address from its unsigned value (32 bits for IPv4, 128 for IPv6). RangeError when out of range. */
  static fromBigInt(family: Family, v: bigint): Addr {
    if (family === 4) {
      if (v < 0n || v > 0xffffffffn) throw new RangeError(`not an IPv4 address number: ${v}`);
      return new Addr(4, Number(v), v, '');
    }
    if (v < 0n || v > MASK128) throw new RangeError(`not an IPv6 address number: ${v}`);
    return new Addr(6, -1, v, '');
  }

  /** The address of 4 or 16 bytes at b[off..): `family` says which (the length of b when omitted). */
  static fromBytes(b: Uint8Array, off = 0, family: Family = b.length - off === 16 ? 6 : 4): Addr {
    if (family === 4) {
      if (b.length - off < 4) throw new RangeError('fromBytes: fewer than 4 bytes');
      return new Addr(4, ((b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]) >>> 0, undefined, '');
    }
    if (b.length - off < 16) throw new RangeError('fromBytes: fewer than 16 bytes');
    const w = [0, 0, 0, 0, 0, 0, 0, 0];
    for (let i = 0; i < 8; i++) w[i] = (b[off + 2 * i] << 8) | b[off + 2 * i + 1];
    return new Addr(6, -1, words6ToBig(w), '');
  }

  /** Parses strictly (see isIPv4 / isIPv6; a zone only with `{ zone: true }`), or null. */
  static tryParse(s: unknown, opts: ParseOptions = {}): Addr | null {
    if (typeof s !== 'string') return null;
    if (s.indexOf(':') === -1) {
      const v = parse4Range(s, 0, s.length);
      return v < 0 ? null : new Addr(4, v, undefined, '');
    }
    let end = s.length;
    let zone = '';
    const pct = s.indexOf('%');
    if (pct !== -1) {
      if (!opts.zone) return null;
      zone = s.slice(pct + 1);
      if (!ZONE.test(zone)) return null;
      end = pct;
    }
    if (!parse6Words(s, end)) return null;
    return new Addr(6, -1, words6ToBig(words), zone);
  }

  /**
   * Parses strictly; throws UserError('invalid ' + what + ' X', 'invalid') naming the input, with the reason
   * when it is a common one (a zone where none is allowed, a leading zero in an IPv4 octet).
   */
  static parse(s: string, what = 'IP address', opts: ParseOptions = {}): Addr {
    const a = Addr.tryParse(s, opts);
    if (a) return a;
    throw new UserError(`invalid ${what} ${showValue(s)}${whyNotAddr(s, opts)}`, 'invalid');
  }

  /** The value as an unsigned integer (32 or 128 bits). */
  get big(): bigint {
    return this.#big ??= BigInt(this.v4);
  }

  /** Number of bits of the family: 32 or 128. */
  get bitLen(): 32 | 128 {
    return this.family === 4 ? 32 : 128;
  }

  is4(): boolean {
    return this.family === 4;
  }

  is6(): boolean {
    return this.family === 6;
  }

  /** ::ffff:a.b.c.d */
  isV4Mapped(): boolean {
    return this.family === 6 && (this.big >> 32n) === 0xffffn;
  }

  /** The IPv4 address of an IPv4-mapped one; any other address unchanged. */
  unmap(): Addr {
    return this.isV4Mapped() ? new Addr(4, Number(this.big & 0xffffffffn), undefined, '') : this;
  }

  /** The IPv4-mapped IPv6 form of an IPv4 address (::ffff:a.b.c.d); an IPv6 address unchanged. */
  toV4Mapped(): Addr {
    return this.family === 4 ? new Addr(6, -1, MAPPED_HI | this.big, '') : this;
  }

  /** Without its zone. */
  withoutZone(): Addr {
    return this.zone === '' ? this : new Addr(6, -1, this.big, '');
  }

  /** Canonical text: dotted quad, or RFC 5952 (lowercase, shortest, "::" for the longest zero run), "%zone". */
  toString(): string {
    if (this.#text !== undefined) return this.#text;
    let t: string;
    if (this.family === 4) {
      t = formatV4(this.v4);
    } else {
      const v = this.big;
      const w = [0, 0, 0, 0, 0, 0, 0, 0];
      for (let i = 0; i < 8; i++) w[i] = Number((v >> BigInt(112 - 16 * i)) & 0xffffn);
      t = format6Words(w);
      if (this.zone) t += `%${this.zone}`;
    }
    return (this.#text = t);
  }

  toJSON(): string {
    return this.toString();
  }

  /** The 4 or 16 bytes, network order (a new Buffer). */
  bytes(): Buffer {
    const b = Buffer.alloc(this.family === 4 ? 4 : 16);
    this.writeBytes(b, 0);
    return b;
  }

  /** Writes the 4 or 16 bytes into out at off; returns how many. */
  writeBytes(out: Uint8Array, off = 0): 4 | 16 {
    if (this.family === 4) {
      const v = this.v4;
      out[off] = v >>> 24;
      out[off + 1] = (v >>> 16) & 255;
      out[off + 2] = (v >>> 8) & 255;
      out[off + 3] = v & 255;
      return 4;
    }
    const v = this.big;
    for (let i = 0; i < 16; i++) out[off + i] = Number((v >> BigInt(120 - 8 * i)) & 0xffn);
    return 16;
  }

  /** Order: IPv4 before IPv6, then by value, then by zone. */
  compare(o: Addr): number {
    return compareAddr(this, o);
  }

  equals(o: Addr): boolean {
    return compareAddr(this, o) === 0;
  }

  /** This address plus `n` (may be negative); null past either end of the family's space. */
  add(n: number | bigint): Addr | null {
    if (this.family === 4 && typeof n === 'number') {
      const v = this.v4 + n;
      return Number.isInteger(v) && v >= 0 && v <= 0xffffffff ? new Addr(4, v, undefined, '') : null;
    }
    const v = this.big + BigInt(n);
    const max = this.family === 4 ? 0xffffffffn : MASK128;
    if (v < 0n || v > max) return null;
    return this.family === 4 ? new Addr(4, Number(v), v, '') : new Addr(6, -1, v, this.zone);
  }

  /** The next address (null after 255.255.255.255 / ffff:...:ffff). */
  next(): Addr | null {
    return this.add(1);
  }

  /** The previous address (null before 0.0.0.0 / ::). */
  prev(): Addr | null {
    return this.add(-1);
  }

  /** 0.0.0.0 or :: */
  isUnspecified(): boolean {
    return this.family === 4 ? this.v4 === 0 : this.big === 0n;
  }

  /** 127.0.0.0/8 or ::1 (an IPv4-mapped address is classified as its IPv4 address, here and below). */
  isLoopback(): boolean {
    const a = this.unmap();
    return a.family === 4 ? a.v4 >>> 24 === 127 : a.big === 1n;
  }

  /** Link-local unicast: 169.254.0.0/16 or fe80::/10. */
  isLinkLocal(): boolean {
    const a = this.unmap();
    return a.family === 4 ? a.v4 >>> 16 === 0xa9fe : a.big >> 118n === 0x3fan;
  }

  /** 224.0.0.0/4 or ff00::/8. */
  isMulticast(): boolean {
    const a = this.unmap();
    return a.family === 4 ? a.v4 >>> 28 === 0xe : a.big >> 120n === 0xffn;
  }

  /** IPv6 unique local (RFC 4193): fc00::/7. Never an IPv4 address. */
  isULA(): boolean {
    return this.family === 6 && this.big >> 121n === 0x7en;
  }

  /** The reverse-DNS name, without a trailing dot: "4.3.2.1.in-addr.arpa" or 32 nibbles + ".ip6.arpa". */
  reverseName(): string {
    if (this.family === 4) {
      const v = this.v4;
      return `${v & 255}.${(v >>> 8) & 255}.${(v >>> 16) & 255}.${v >>> 24}.in-addr.arpa`;
    }
    const hex = this.big.toString(16).padStart(32, '0');
    let s = '';
    for (let i = 31; i >= 0; i--) s += `${hex[i]}.`;
    return `${s}ip6.arpa`;
  }
}

/** Why `s` is not an address, for the error message ('' when nothing specific to say). */
function whyNotAddr(s: unknown, opts: ParseOptions): string {
  if (typeof s !== 'string') return '';
  if (s.includes('%')) {
    if (!opts.zone) return ' (a zone "%..." is not allowed here)';
    return ' (invalid zone)';
  }
  if (s.includes('/')) return ' (an address, not a CIDR block)';
  if (/^[0-9.]+$/.test(s) && /(?:^|\.)0[0-9]/.test(s)) return ' (leading zeros are not allowed in IPv4 octets)';
  return '';
}

export function compareAddr(a: Addr, b: Addr): number {
  if (a.family !== b.family) return a.family - b.family;
  if (a.family === 4) return a.v4 < b.v4 ? -1 : a.v4 > b.v4 ? 1 : 0;
  const x = a.big;
  const y = b.big;
  if (x !== y) return x < y ? -1 : 1;
  return a.zone < b.zone ? -1 : a.zone > b.zone ? 1 : 0;
}

/** The canonical text of an address (lowercase, compressed IPv6), or null when `s` is not one. */
export function canonicalAddr(s: unknown): string | null {
  return Addr.tryParse(s)?.toString() ?? null;
}

// ---- Prefix -------------------------------------------------------------------------------------------------

export interface PrefixParseOptions {
  /** Refuse an address with bits set past the prefix length (a subnet must be a block's first address). */
  strict?: boolean;
}

function maskBig(family: Family, bits: number): bigint {
  const len = family === 4 ? 32 : 128;
  if (bits === 0) return 0n;
  const all = family === 4 ? 0xffffffffn : MASK128;
  return (all >> BigInt(len - bits)) << BigInt(len - bits);
}

/** An address block "address/bits" of either family. `addr` keeps the address as written (host bits too). */
export class Prefix {
  readonly addr: Addr;
  readonly bits: number;
  /** The block's first address. */
  readonly network: Addr;
  /** The block's last address (IPv4's broadcast address). */
  readonly last: Addr;

  private constructor(addr: Addr, bits: number, network: Addr, last: Addr) {
    this.addr = addr;
    this.bits = bits;
    this.network = network;
    this.last = last;
  }

  /** The block of `bits` around `addr` (host bits dropped from network/last, kept in `addr`). */
  static from(addr: Addr, bits: number): Prefix {
    const len = addr.bitLen;
    if (!Number.isInteger(bits) || bits < 0 || bits > len) throw new RangeError(`prefix length ${bits} out of 0..${len}`);
    const a = addr.withoutZone();
    if (a.family === 4) {
      const mask = v4Mask(bits);
      const net = (a.v4 & mask) >>> 0;
      return new Prefix(a, bits, Addr.fromV4(net), Addr.fromV4((net | (~mask >>> 0)) >>> 0));
    }
    const m = maskBig(6, bits);
    const net = a.big & m;
    return new Prefix(a, bits, Addr.fromBigInt(6, net), Addr.fromBigInt(6, net | (MASK128 ^ m)));
  }

  /**
   * Parses "ADDRESS/N" of either family (an IPv6 one when the text has a ":"). Errors name the input and what
   * it is (`what`: "subnet", "ip-range", ...): `invalid subnet 10.0.0.0/33: prefix length must be 0..32`,
   * `invalid subnet fd00::5/64: host bits set, it should be fd00::/64` (with `strict`).
   */
  static parse(s: string, what = 'CIDR', opts: PrefixParseOptions = {}): Prefix {
    const r = parsePrefixText(s);
    if (typeof r === 'string') throw new UserError(`invalid ${what} ${showValue(s)}: ${r}`, 'invalid');
    if (opts.strict && r.hostBitsSet()) {
      throw new UserError(`invalid ${what} ${showValue(s)}: host bits set, it should be ${r}`, 'invalid');
    }
    return r;
  }

  /** Prefix.parse for a value that may be anything (stored or kernel-reported data); null instead of throwing. */
  static tryParse(s: unknown, opts: PrefixParseOptions = {}): Prefix | null {
    if (typeof s !== 'string') return null;
    const r = parsePrefixText(s);
    if (typeof r === 'string' || (opts.strict && r.hostBitsSet())) return null;
    return r;
  }

  get family(): Family {
    return this.addr.family;
  }

  /** IPv4 netmask as uint32 (0 for IPv6). */
  get mask(): number {
    return this.family === 4 ? v4Mask(this.bits) : 0;
  }

  /** Number of addresses in the block. */
  size(): bigint {
    return 1n << BigInt(this.addr.bitLen - this.bits);
  }

  /** Whether the written address has bits set past the prefix length. */
  hostBitsSet(): boolean {
    return !this.addr.equals(this.network);
  }

  /** The block itself (network/bits), e.g. after parsing "10.0.0.5/24". */
  masked(): Prefix {
    return this.hostBitsSet() ? new Prefix(this.network, this.bits, this.network, this.last) : this;
  }

  /** Canonical text: network address / bits ("10.0.0.0/24", "fd00:60::/64"). */
  toString(): string {
    return `${this.network}/${this.bits}`;
  }

  toJSON(): string {
    return this.toString();
  }

  /** The text as written, canonicalised: the address as given (host bits kept) / bits. */
  written(): string {
    return `${this.addr}/${this.bits}`;
  }

  /** Whether `a` (an Addr, or text) lies in the block. An address of the other family never does. */
  contains(a: Addr | string): boolean {
    const x = typeof a === 'string' ? Addr.tryParse(a) : a;
    if (!x || x.family !== this.family) return false;
    if (x.family === 4) return x.v4 >= this.network.v4 && x.v4 <= this.last.v4;
    const v = x.big;
    return v >= this.network.big && v <= this.last.big;
  }

  /** Whether two blocks share at least one address (never across families). */
  overlaps(p: Prefix): boolean {
    if (p.family !== this.family) return false;
    if (this.family === 4) return this.network.v4 <= p.last.v4 && p.network.v4 <= this.last.v4;
    return this.network.big <= p.last.big && p.network.big <= this.last.big;
  }

  /** Whether every address of `inner` is in this block (a block covers itself). */
  covers(inner: Prefix): boolean {
    if (inner.family !== this.family) return false;
    if (this.family === 4) return inner.network.v4 >= this.network.v4 && inner.last.v4 <= this.last.v4;
    return inner.network.big >= this.network.big && inner.last.big <= this.last.big;
  }

  /** The n-th address of the block (0 = the network address); RangeError outside the block. */
  nth(n: number | bigint): Addr {
    const k = BigInt(n);
    if (k < 0n || k >= this.size()) throw new RangeError(`address #${k} is outside ${this} (${this.size()} addresses)`);
    if (this.family === 4) return Addr.fromV4(this.network.v4 + Number(k));
    return Addr.fromBigInt(6, this.network.big + k);
  }

  /** Offset of `a` in the block (nth's inverse); RangeError when outside. */
  indexOf(a: Addr): bigint {
    if (!this.contains(a)) throw new RangeError(`${a} is outside ${this}`);
    return a.big - this.network.big;
  }

  /** The k-th sub-block of `bits` inside this block (k = 0 is the first); RangeError when out of range. */
  subnet(bits: number, k: number | bigint): Prefix {
    const len = this.addr.bitLen;
    if (!Number.isInteger(bits) || bits < this.bits || bits > len) throw new RangeError(`/${bits} is not a sub-block length of ${this}`);
    const count = 1n << BigInt(bits - this.bits);
    const i = BigInt(k);
    if (i < 0n || i >= count) throw new RangeError(`sub-block #${i} of /${bits} is outside ${this} (${count} of them)`);
    const start = this.network.big + (i << BigInt(len - bits));
    return Prefix.from(Addr.fromBigInt(this.family, start), bits);
  }
}

/** The parse of "ADDRESS/N", or the reason it is not one (the text after "invalid WHAT X: "). */
function parsePrefixText(s: string): Prefix | string {
  if (typeof s !== 'string' || s === '') return 'invalid CIDR block notation (expected a.b.c.d/N)';
  const v6 = s.indexOf(':') !== -1;
  const expected = v6 ? 'an IPv6 prefix such as fd00::/64' : 'a.b.c.d/N';
  const slash = s.indexOf('/');
  if (slash < 0) return `missing prefix length (expected ${expected})`;
  const a = s.slice(0, slash);
  const p = s.slice(slash + 1);
  if (v6 && a.includes('%')) return 'a zone "%..." is not allowed in a prefix';
  const addr = Addr.tryParse(a);
  if (!addr || (addr.family === 6) !== v6) {
    return `${showValue(a)} is not an IPv${v6 ? 6 : 4} address (invalid CIDR block notation)`;
  }
  const max = v6 ? 128 : 32;
  if (p === '') return `missing prefix length (expected ${expected})`;
  // Decimal without leading zeros, 0..max.
  if (!/^(?:0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > max) return `prefix length must be 0..${max}`;
  return Prefix.from(addr, Number(p));
}

/** Prefix.parse. */
export function parsePrefix(s: string, what = 'CIDR', opts: PrefixParseOptions = {}): Prefix {
  return Prefix.parse(s, what, opts);
}

/**
 * The canonical text of a CIDR that must name a block (a subnet, an ip-range): refuses host bits, as Docker
 * does: `invalid subnet 10.0.0.5/24: host bits set, it should be 10.0.0.0/24`. Either family.
 */
export function canonicalPrefix(s: string, what = 'subnet'): string {
  return Prefix.parse(s, what, { strict: true }).toString();
}

// ---- reverse DNS --------------------------------------------------------------------------------------------

/** The address a reverse-DNS name stands for ("4.3.2.1.in-addr.arpa", 32 nibbles + ".ip6.arpa", lowercase,
 *  no trailing dot), or null: only complete names (4 octets without leading zeros, 32 single hex nibbles). */
export function parseReverseName(name: string): Addr | null {
  if (typeof name !== 'string') return null;
  if (name.endsWith('.in-addr.arpa')) {
    const v = parseReverseV4(name);
    return v < 0 ? null : Addr.fromV4(v);
  }
  if (!name.endsWith('.ip6.arpa') || name.length !== 64 + 8) return null;
  let hex = '';
  for (let i = 62; i >= 0; i -= 2) {
    const c = name.charCodeAt(i);
    if (hexVal(c) < 0 || (c >= 65 && c <= 70) || name.charCodeAt(i + 1) !== 46) return null;
    hex += name[i];
  }
  return Addr.fromBigInt(6, BigInt(`0x${hex}`));
}

/** "d.c.b.a.in-addr.arpa" (lowercase, no trailing dot) -> uint32 a.b.c.d, or -1. The resolver's fast path. */
export function parseReverseV4(name: string): number {
  const suffix = 13; // ".in-addr.arpa"
  if (typeof name !== 'string' || name.length < 7 + suffix || name.length > 15 + suffix || !name.endsWith('.in-addr.arpa')) return -1;
  const end = name.length - suffix;
  // The octets in reverse order: parse as a dotted quad and swap the bytes.
  const v = parse4Range(name, 0, end);
  if (v < 0) return -1;
  return (((v & 255) << 24) | (((v >>> 8) & 255) << 16) | (((v >>> 16) & 255) << 8) | (v >>> 24)) >>> 0;
}

// ---- ULA ----------------------------------------------------------------------------------------------------

/**
 * The unique local /48 of a host (RFC 4193): fd00::/8 (the L bit set) and a 40-bit global id from a hash of
 * the host's stable id, as Docker 27+ derives it from its engine id: the 40 low bits of the first 64 bits of
 * SHA-256(id), i.e. bytes 3..7 of the digest. Same id, same /48; Docker's own test vectors hold (the empty id
 * gives fd42:98fc:1c14::/48).
 */
export function ulaPrefixFromId(id: string): Prefix {
  const d = createHash('sha256').update(id, 'utf8').digest();
  const b = new Uint8Array(16);
  b[0] = 0xfd;
  for (let i = 0; i < 5; i++) b[1 + i] = d[3 + i];
  return Prefix.from(Addr.fromBytes(b, 0, 6), 48);
}

/** The k-th /64 (k = 0..65535) of a /48 (the 16-bit subnet id of RFC 4193). RangeError outside. */
export function ulaSubnet(base: Prefix, k: number): Prefix {
  if (base.family !== 6 || base.bits !== 48) throw new RangeError(`${base} is not an IPv6 /48`);
  if (!Number.isInteger(k) || k < 0 || k > 0xffff) throw new RangeError(`subnet id ${k} is outside 0..65535`);
  return base.subnet(64, k);
}
