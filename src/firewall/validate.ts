// Strict checks for every value the firewall generator writes into an nft script.
//
// nft's parser is permissive in dangerous ways: anything in an address position that is not a literal IP is
// resolved as a HOST NAME through DNS (docs/kernel-notes.md §9), an interface name ending in `*` is a wildcard,
// and a `"` inside a quoted string ends it. So nothing reaches a script without passing one of these checks,
// and each check accepts only the canonical spelling (no leading zeros, no host bits set in a subnet).

import { cidrContains, cidrOverlaps, tryParseCidr, tryParseIPv4, type Cidr } from '../util/ip.js';
import { Addr, Prefix as AddrPrefix } from '../util/addr.js';

/** Thrown when the desired state handed to the firewall generator is not something it can render safely. */
export class FirewallInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FirewallInputError';
  }
}

/** Parses a canonical dotted-quad IPv4 address into an unsigned 32-bit integer, or null (src/util/ip.ts). */
export const parseIpv4 = tryParseIPv4;

/** Throws unless `s` is a canonical dotted-quad IPv4 address; returns it unchanged. */
export function checkIpv4(s: unknown, what: string): string {
  if (parseIpv4(s) === null) throw new FirewallInputError(`${what}: ${JSON.stringify(s)} is not an IPv4 address`);
  return s as string;
}

export type { Cidr };
export { cidrContains, cidrOverlaps as cidrsOverlap };

/** Throws unless `s` is an IPv4 CIDR in canonical form (host bits zero), e.g. "172.18.0.0/16". */
export function checkCidr(s: unknown, what: string): Cidr {
  const c = tryParseCidr(s);
  if (!c) throw new FirewallInputError(`${what}: ${JSON.stringify(s)} is not a canonical IPv4 CIDR (like 172.18.0.0/16)`);
  if (c.addr !== c.network) throw new FirewallInputError(`${what}: ${String(s)} has host bits set (not a network address)`);
  return c;
}

/**
 * Linux interface names as nsnet uses them (1..15 bytes), restricted to characters that are inert inside an
 * nft quoted string: letters, digits, `_`, `.`, `-`. No `*` (a trailing one is an nft wildcard), no quotes,
 * no `/` or whitespace (invalid for Linux anyway), not "." or "..", not starting with `-` or `.`.
 */
const IFNAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/;

export function checkIfname(s: unknown, what: string): string {
  if (typeof s !== 'string' || !IFNAME.test(s)) {
    throw new FirewallInputError(`${what}: ${JSON.stringify(s)} is not a valid interface name (1-15 of [A-Za-z0-9_.-], not starting with . or -)`);
  }
  return s;
}

/** Docker's rule for network (and container) names: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`. Used in comments only. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

export function checkName(s: unknown, what: string): string {
  if (typeof s !== 'string' || !NAME.test(s)) throw new FirewallInputError(`${what}: ${JSON.stringify(s)} is not a valid name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)`);
  return s;
}

/** Object ids (networks, containers): non-empty, same character set as names. */
export function checkId(s: unknown, what: string): string {
  if (typeof s !== 'string' || !NAME.test(s)) throw new FirewallInputError(`${what}: ${JSON.stringify(s)} is not a valid id`);
  return s;
}

export function checkPort(n: unknown, what: string): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 65535) {
    throw new FirewallInputError(`${what}: ${JSON.stringify(n)} is not a port number (1-65535)`);
  }
  return n;
}

export function checkProto(p: unknown, what: string): 'tcp' | 'udp' {
  if (p !== 'tcp' && p !== 'udp') throw new FirewallInputError(`${what}: ${JSON.stringify(p)} is not tcp or udp`);
  return p;
}

export function checkBool(b: unknown, what: string): boolean {
  if (typeof b !== 'boolean') throw new FirewallInputError(`${what}: ${JSON.stringify(b)} is not a boolean`);
  return b;
}

/** Throws unless `s` is an IPv6 address in canonical form (RFC 5952, no zone); returns it unchanged. */
export function checkIpv6(s: unknown, what: string): string {
  const a = Addr.tryParse(s);
  if (!a || a.family !== 6 || a.toString() !== s) throw new FirewallInputError(`${what}: ${JSON.stringify(s)} is not an IPv6 address in canonical form`);
  return s as string;
}

/** Throws unless `s` is an IPv6 prefix in canonical form (host bits zero), e.g. "fd00:1::/64"; returns it parsed. */
export function checkCidr6(s: unknown, what: string): AddrPrefix {
  const p = AddrPrefix.tryParse(s, { strict: true });
  if (!p || p.family !== 6 || p.toString() !== s) throw new FirewallInputError(`${what}: ${JSON.stringify(s)} is not a canonical IPv6 prefix (like fd00:1::/64)`);
  return p;
}

/** nft rejects comments longer than 128 characters; ours are ASCII built from checked parts. */
export const MAX_COMMENT = 128;

/** Shortens a name for use inside a comment, deterministically ("averyverylongname" -> "averyvery..."). */
export function shortName(s: string, max = 40): string {
  return s.length <= max ? s : `${s.slice(0, max - 3)}...`;
}

/** A quoted nft comment; throws if it could break the quoting or exceeds nft's limit. */
export function comment(text: string): string {
  if (!/^[\x20-\x21\x23-\x7e]*$/.test(text)) throw new FirewallInputError(`comment ${JSON.stringify(text)} contains characters not allowed in an nft comment`);
  if (text.length > MAX_COMMENT) throw new FirewallInputError(`comment ${JSON.stringify(text)} is longer than ${MAX_COMMENT} characters`);
  return `comment "${text}"`;
}
