// Text <-> bytes for what rtnetlink messages carry: IPv4/IPv6 addresses, MAC addresses, interface names.
// Pure (no sockets); exported for tests and reuse by every message family.
import { formatBytes, parseInto } from '../../util/addr.js';

// Addresses: the project's one parser and formatter (src/util/addr.ts), under the names this client's message
// encoders and tests use.

/** Parses dotted-quad IPv4 text (no leading zeros) into out[off..off+4). Returns false if invalid. */
export function parseIpv4Into(s: string, out: Uint8Array, off: number): boolean {
  return typeof s === 'string' && s.indexOf(':') === -1 && parseInto(s, out, off) === 4;
}

/** Parses IPv6 text (RFC 4291 forms, embedded IPv4 tail) into out[off..off+16). Returns false if invalid. */
export function parseIpv6Into(s: string, out: Uint8Array, off: number): boolean {
  return typeof s === 'string' && s.indexOf(':') !== -1 && parseInto(s, out, off) === 6;
}

export function parseIpInto(s: string, out: Uint8Array, off: number): 0 | 4 | 6 {
  return parseInto(s, out, off);
}

/** IPv4 or IPv6 text to its 4 or 16 bytes; null if invalid. */
export function parseIp(s: string): Uint8Array | null {
  const b = new Uint8Array(16);
  const f = parseInto(s, b, 0);
  return f === 4 ? b.subarray(0, 4) : f === 6 ? b : null;
}

/** Dotted quad of b[off..off+4). */
export function formatIpv4(b: Uint8Array, off = 0): string {
  return formatBytes(b, off, 4);
}

/** RFC 5952 text of the IPv6 address b[off..off+16). */
export function formatIpv6(b: Uint8Array, off = 0): string {
  return formatBytes(b, off, 6);
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
