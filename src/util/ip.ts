// IPv4-only compatibility layer over src/util/addr.ts (the project's one address parser, both families): the
// uint32 `Cidr` shape and the functions code written before addr.ts used, same results and messages (an IPv6
// input is refused with "IPv6 is not supported yet", as before). Kept, not removed, because code still being
// written against it in other branches (the firewall's validate.ts first) keeps building when they are merged;
// new code uses addr.ts. Remove this file when nothing imports it.
import { UserError, showValue } from './errors.js';
import { Prefix, formatV4, isIPv4 as isV4, parseV4, v4Mask } from './addr.js';

/** True only for a strict dotted quad ("10.0.0.1"): no hostnames, no leading zeros, no whitespace, no shorthand. */
export const isIPv4 = isV4;

/** Parses a strict dotted quad to a uint32, or null. */
export function tryParseIPv4(s: unknown): number | null {
  if (typeof s !== 'string') return null;
  const n = parseV4(s);
  return n < 0 ? null : n;
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
export const formatIPv4 = formatV4;

/** Netmask of a prefix length as uint32 (0 -> 0, 24 -> 0xffffff00, 32 -> 0xffffffff). */
export const prefixMask = v4Mask;

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

function toCidr(p: Prefix): Cidr {
  return {
    addr: p.addr.v4, prefix: p.bits, mask: v4Mask(p.bits), network: p.network.v4, broadcast: p.last.v4,
    size: 2 ** (32 - p.bits), canonical: p.toString(),
  };
}

/**
 * Parses "a.b.c.d/N" (strict dotted quad, N = 0..32 without leading zeros). Host bits may be set: `addr` keeps
 * them, `network` drops them (use canonicalCidr to refuse them). `what` names the value in error messages
 * ("subnet", "ip-range", ...): `invalid subnet 10.0.0.0/33: prefix length must be 0..32`.
 */
export function parseCidr(s: string, what = 'CIDR'): Cidr {
  if (typeof s === 'string' && s.includes(':')) throw new UserError(`invalid ${what} ${showValue(s)}: IPv6 is not supported yet`, 'invalid');
  return toCidr(Prefix.parse(s, what));
}

/** parseCidr for a value that may be anything (stored or host-provided data); null instead of throwing. */
export function tryParseCidr(s: unknown): Cidr | null {
  const p = Prefix.tryParse(s);
  return p && p.family === 4 ? toCidr(p) : null;
}

/**
 * The canonical form of a CIDR that must name a block (a subnet, an ip-range): refuses host bits, as Docker does:
 * `invalid subnet 10.0.0.5/24: host bits set, it should be 10.0.0.0/24`.
 */
export function canonicalCidr(s: string, what = 'subnet'): string {
  if (typeof s === 'string' && s.includes(':')) throw new UserError(`invalid ${what} ${showValue(s)}: IPv6 is not supported yet`, 'invalid');
  return Prefix.parse(s, what, { strict: true }).toString();
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
