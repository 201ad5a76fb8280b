// Text <-> bytes for what rtnetlink messages carry: IPv4/IPv6 addresses, MAC addresses, interface names.
// Pure (no sockets); exported for tests and reuse by every message family.

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
