// IP address and CIDR arithmetic. Pure. IPv4 only for now: IPv4 functions say so in their name; the cidr*
// helpers are family-neutral by name and reject IPv6 input with a clear "not supported yet" message.
import { UserError, showValue } from './errors.js';

/** One decimal octet 0..255 without leading zeros ("0" itself is fine; "01" is not: some parsers read it as octal). */
const OCTET = '(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])';
const IPV4_RE = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);
const PREFIX_RE = /^(?:3[0-2]|[12][0-9]|[0-9])$/;

/** True only for a strict dotted quad ("10.0.0.1"): no hostnames, no leading zeros, no whitespace, no shorthand. */
export function isIPv4(s: unknown): s is string {
  return typeof s === 'string' && s.length <= 15 && IPV4_RE.test(s);
}

/** Parses a strict dotted quad to a uint32, or null. */
export function tryParseIPv4(s: unknown): number | null {
  if (!isIPv4(s)) return null;
  const p = s.split('.');
  return ((+p[0] << 24) | (+p[1] << 16) | (+p[2] << 8) | +p[3]) >>> 0;
}

/** Parses a strict dotted quad to a uint32; throws UserError('invalid IPv4 address X', 'invalid'). */
export function parseIPv4(s: string, what = 'IPv4 address'): number {
  const n = tryParseIPv4(s);
  if (n === null) {
    const hint = typeof s === 'string' && s.includes(':') ? ' (IPv6 is not supported yet)' : '';
    throw new UserError(`invalid ${what} ${showValue(s)}${hint}`, 'invalid');
  }
  return n;
}

/** uint32 -> dotted quad. A non-integer or out-of-range number is a programming error (RangeError). */
export function formatIPv4(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`not an IPv4 address number: ${n}`);
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** Netmask of a prefix length as uint32 (0 -> 0, 24 -> 0xffffff00, 32 -> 0xffffffff). */
export function prefixMask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export interface Cidr {
  /** The address as written (may have host bits set). */
  addr: number;
  prefix: number;
  mask: number;
  /** First address of the block. */
  network: number;
  /** Last address of the block. */
  broadcast: number;
  /** Number of addresses in the block (2^(32-prefix)). */
  size: number;
  /** Canonical text of the block: network address / prefix, e.g. "10.0.0.0/24". */
  canonical: string;
}

/**
 * Parses "a.b.c.d/N" (strict dotted quad, N = 0..32 without leading zeros). Host bits may be set: `addr` keeps
 * them, `network` drops them (use canonicalCidr to refuse them). `what` names the value in error messages
 * ("subnet", "ip-range", ...): `invalid subnet 10.0.0.0/33: prefix length must be 0..32`.
 */
export function parseCidr(s: string, what = 'CIDR'): Cidr {
  const bad = (why: string): never => {
    throw new UserError(`invalid ${what} ${showValue(s)}: ${why}`, 'invalid');
  };
  if (typeof s !== 'string' || s === '') return bad('invalid CIDR block notation (expected a.b.c.d/N)');
  if (s.includes(':')) return bad('IPv6 is not supported yet');
  const slash = s.indexOf('/');
  if (slash < 0) return bad('missing prefix length (expected a.b.c.d/N)');
  const a = s.slice(0, slash);
  const p = s.slice(slash + 1);
  const addr = tryParseIPv4(a);
  if (addr === null) return bad(`${showValue(a)} is not an IPv4 address (invalid CIDR block notation)`);
  if (!PREFIX_RE.test(p)) return bad(p === '' ? 'missing prefix length (expected a.b.c.d/N)' : 'prefix length must be 0..32');
  const prefix = Number(p);
  const mask = prefixMask(prefix);
  const network = (addr & mask) >>> 0;
  const size = 2 ** (32 - prefix);
  const broadcast = network + size - 1;
  return { addr, prefix, mask, network, broadcast, size, canonical: `${formatIPv4(network)}/${prefix}` };
}

/** parseCidr for a value that may be anything (stored or host-provided data); null instead of throwing. */
export function tryParseCidr(s: unknown): Cidr | null {
  if (typeof s !== 'string') return null;
  try {
    return parseCidr(s);
  } catch {
    return null;
  }
}

/**
 * The canonical form of a CIDR that must name a block (a subnet, an ip-range): refuses host bits, as Docker does:
 * `invalid subnet 10.0.0.5/24: host bits set, it should be 10.0.0.0/24`.
 */
export function canonicalCidr(s: string, what = 'subnet'): string {
  const c = parseCidr(s, what);
  if (c.addr !== c.network) {
    throw new UserError(`invalid ${what} ${showValue(s)}: host bits set, it should be ${c.canonical}`, 'invalid');
  }
  return c.canonical;
}

function asCidr(c: string | Cidr): Cidr {
  return typeof c === 'string' ? parseCidr(c) : c;
}

/** Whether the block `cidr` contains the address `ip` (a dotted quad or uint32). */
export function cidrContains(cidr: string | Cidr, ip: string | number): boolean {
  const c = asCidr(cidr);
  const n = typeof ip === 'number' ? ip : parseIPv4(ip);
  return n >= c.network && n <= c.broadcast;
}

/** Whether two blocks share at least one address. */
export function cidrOverlaps(a: string | Cidr, b: string | Cidr): boolean {
  const x = asCidr(a);
  const y = asCidr(b);
  return x.network <= y.broadcast && y.network <= x.broadcast;
}

/** Whether every address of `inner` is in `outer` (a block is inside itself). */
export function cidrInside(inner: string | Cidr, outer: string | Cidr): boolean {
  const i = asCidr(inner);
  const o = asCidr(outer);
  return i.network >= o.network && i.broadcast <= o.broadcast;
}
