// IP address management, Docker-compatible, for both families: subnet pools (IPv4: Docker's default pools;
// IPv6: /64s of the host's ULA /48), gateway, ip-range, dynamic and static allocation, conflict checks against
// other networks and the host's routes. Pure: callers pass in the state.
//
// The IPv4 API is the one the engine has always called (planNetworkIpam, pickSubnet, allocateIp, checkStaticIp),
// with the same results and messages. IPv6: planNetworkIpam6 / pickSubnet6, and allocateIp / checkStaticIp given
// a network whose subnet is IPv6 (one IpamNetwork per family); planDualIpam plans both families from Docker's
// command line (--ipv6, --ipv4=false, repeated --subnet/--gateway/--ip-range).
import { UserError, showValue } from '../util/errors.js';
import { Addr, Prefix, formatV4, parseV4, type Family } from '../util/addr.js';

/** The default network's subnet (Docker's docker0). */
export const DEFAULT_BRIDGE_SUBNET = '172.17.0.0/16';

/**
 * Subnets handed to user-defined networks created without --subnet, in order: Docker's default pools without
 * 172.17.0.0/16 (kept for the default network even before it exists): 172.18.0.0/16 ... 172.31.0.0/16, then
 * 192.168.0.0/16 in /20 blocks.
 */
export const DEFAULT_POOLS: readonly string[] = (() => {
  const out: string[] = [];
  for (let b = 18; b <= 31; b++) out.push(`172.${b}.0.0/16`);
  for (let c = 0; c < 256; c += 16) out.push(`192.168.${c}.0/20`);
  return out;
})();

/** Blocks no network may use: "this network", loopback, multicast, reserved (incl. limited broadcast). */
const FORBIDDEN: ReadonlyArray<[string, string]> = [
  ['0.0.0.0/8', 'the "this network" block'],
  ['127.0.0.0/8', 'the loopback block'],
  ['224.0.0.0/4', 'the multicast block'],
  ['240.0.0.0/4', 'the reserved block'],
];

/** IPv6 blocks no network may use (or overlap): a network needs unicast addresses routable beyond one link. */
const FORBIDDEN6: ReadonlyArray<[string, string]> = [
  ['::/128', 'the unspecified address'],
  ['::1/128', 'the loopback address'],
  ['::ffff:0:0/96', 'the IPv4-mapped block'],
  ['fe80::/10', 'the link-local block'],
  ['ff00::/8', 'the multicast block'],
];

/** Smallest subnet a network may have: a /30 holds the gateway and one container. */
export const MAX_SUBNET_PREFIX = 30;

/** IPv6: the longest prefix a network may have (a /120 holds 255 containers), and the shortest (a /48, the
 *  whole ULA block of a host: anything larger cannot be a single link's subnet). */
export const MAX_SUBNET6_PREFIX = 120;
export const MIN_SUBNET6_PREFIX = 48;

/** The prefix length of the IPv6 subnets taken from the ULA /48. */
export const POOL6_PREFIX = 64;

/** What IPAM needs to know of a network, for one family (the family is the subnet's). */
export interface IpamNetwork {
  subnet: string;
  gateway: string;
  ipRange?: string | null;
  name?: string;
}

export interface IpamRequest {
  subnet?: string | null;
  gateway?: string | null;
  ipRange?: string | null;
}

export interface IpamPlan {
  subnet: string;
  gateway: string;
  ipRange: string | null;
}

// Parsed subnets and ranges of the networks the attach path sees again and again (immutable values).
const prefixCache = new Map<string, Prefix>();
function cachedPrefix(s: string): Prefix {
  let p = prefixCache.get(s);
  if (p === undefined) {
    p = Prefix.parse(s);
    if (prefixCache.size >= 256) prefixCache.clear();
    prefixCache.set(s, p);
  }
  return p;
}

function familyOfText(s: string): Family {
  return s.indexOf(':') === -1 ? 4 : 6;
}

/**
 * The blocks of `taken` of one family that can conflict: CIDRs (or bare addresses, read as /32 or /128).
 * Entries of the other family, garbage and default routes (prefix 0) are ignored: they never make a subnet
 * unusable.
 */
function takenBlocks(taken: readonly string[], family: Family): Array<{ text: string; p: Prefix }> {
  const out: Array<{ text: string; p: Prefix }> = [];
  for (const t of taken) {
    if (typeof t !== 'string' || familyOfText(t) !== family) continue;
    let p = Prefix.tryParse(t);
    if (!p) {
      const a = Addr.tryParse(t);
      if (a) p = Prefix.from(a, a.bitLen);
    }
    if (p && p.family === family && p.bits > 0) out.push({ text: t, p });
  }
  return out;
}

/**
 * The first default pool overlapping none of `taken` (existing nsnet subnets and the host's route destinations,
 * default route excluded). Throws UserError('refused') when all are used.
 */
export function pickSubnet(taken: readonly string[]): string {
  const blocks = takenBlocks(taken, 4);
  for (const pool of DEFAULT_POOLS) {
    const p = cachedPrefix(pool);
    if (!blocks.some((b) => p.overlaps(b.p))) return pool;
  }
  throw new UserError('could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network', 'refused');
}

/**
 * The first /64 of the host's ULA /48 (`ulaBase`, see ulaPrefixFromId in util/addr.ts) overlapping none of
 * `taken` (IPv6 subnets of other networks, the host's IPv6 routes; other entries are ignored). O(taken log
 * taken), whatever the number of /64s already used. Throws UserError('refused') when the /48 is full.
 */
export function pickSubnet6(taken: readonly string[], ulaBase: string | Prefix): string {
  const base = typeof ulaBase === 'string' ? Prefix.parse(ulaBase, 'IPv6 pool', { strict: true }) : ulaBase;
  if (base.family !== 6 || base.bits > POOL6_PREFIX) throw new RangeError(`pickSubnet6: ${base} is not an IPv6 pool of /${POOL6_PREFIX}s`);
  const step = 1n << BigInt(128 - POOL6_PREFIX);
  // Taken intervals that touch the pool, in order; walk the candidates past each.
  const spans = takenBlocks(taken, 6)
    .filter((b) => b.p.overlaps(base))
    .map((b) => [b.p.network.big, b.p.last.big] as const)
    .sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  let cand = base.network.big;
  const end = base.last.big;
  for (const [lo, hi] of spans) {
    if (cand > end) break;
    if (hi < cand) continue;
    if (lo > cand + step - 1n) break; // the candidate ends before this span: free
    // Overlaps: the next candidate is the first /64 boundary after the span.
    cand = ((hi - base.network.big) / step + 1n) * step + base.network.big;
  }
  if (cand <= end) {
    const p = base.bits === POOL6_PREFIX ? base : Prefix.from(Addr.fromBigInt(6, cand), POOL6_PREFIX);
    return p.toString();
  }
  throw new UserError('could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network', 'refused');
}

function given(v: string | null | undefined): v is string {
  return v !== undefined && v !== null && v !== '';
}

/** IPv6 is not handed to the IPv4 planner: the message the engine's users saw before IPv6 networks existed. */
function refuseV6(what: string, s: string): void {
  if (s.includes(':')) throw new UserError(`invalid ${what} ${showValue(s)}: IPv6 is not supported yet`, 'invalid');
}

/**
 * Validates (and completes) a network's IPv4 address plan. Without a subnet one is picked from the default
 * pools; --gateway or --ip-range without --subnet is an error (as in Docker). The subnet must be canonical (no
 * host bits), at most a /30, outside loopback/multicast/reserved blocks and overlap nothing in `taken`; the
 * ip-range must be a canonical block inside the subnet holding at least one assignable address; the gateway must
 * be a host address of the subnet (default: the first one, .1). Empty strings count as "not given".
 */
export function planNetworkIpam(req: IpamRequest, taken: readonly string[]): IpamPlan {
  if (!given(req.subnet)) {
    if (given(req.gateway) || given(req.ipRange)) {
      throw new UserError('every ip-range or gateway must have a corresponding subnet', 'invalid');
    }
    return planNetworkIpam({ subnet: pickSubnet(taken) }, taken);
  }
  refuseV6('subnet', req.subnet);
  const s = Prefix.parse(req.subnet, 'subnet', { strict: true });
  const subnet = s.toString();
  if (s.bits > MAX_SUBNET_PREFIX) {
    throw new UserError(`invalid subnet ${subnet}: too small, a network needs at least a /${MAX_SUBNET_PREFIX} (a gateway and one container)`, 'invalid');
  }
  for (const [block, what] of FORBIDDEN) {
    if (s.overlaps(cachedPrefix(block))) throw new UserError(`invalid subnet ${subnet}: overlaps ${what} ${block}`, 'invalid');
  }
  const net = s.network.v4;
  const brd = s.last.v4;

  let ipRange: string | null = null;
  let r: Prefix | null = null;
  if (given(req.ipRange)) {
    refuseV6('ip-range', req.ipRange);
    r = Prefix.parse(req.ipRange, 'ip-range', { strict: true });
    ipRange = r.toString();
    if (r.bits < s.bits) throw new UserError(`invalid ip-range ${ipRange}: CIDR block is bigger than its parent subnet ${subnet}`, 'invalid');
    if (!s.covers(r)) throw new UserError(`invalid ip-range ${ipRange}: parent subnet ${subnet} doesn't contain ip-range`, 'invalid');
  }

  let gw: number;
  if (given(req.gateway)) {
    gw = parseV4(req.gateway);
    if (gw < 0) {
      const hint = req.gateway.includes(':') ? ' (IPv6 is not supported yet)' : '';
      throw new UserError(`invalid gateway ${showValue(req.gateway)}${hint}`, 'invalid');
    }
    if (gw < net || gw > brd) {
      throw new UserError(`invalid gateway ${req.gateway}: parent subnet ${subnet} doesn't contain this address`, 'invalid');
    }
    if (gw === net) throw new UserError(`invalid gateway ${req.gateway}: it is the network address of ${subnet}`, 'invalid');
    if (gw === brd) throw new UserError(`invalid gateway ${req.gateway}: it is the broadcast address of ${subnet}`, 'invalid');
  } else {
    gw = net + 1;
  }
  const gateway = formatV4(gw);

  if (r) {
    const lo = Math.max(r.network.v4, net + 1);
    const hi = Math.min(r.last.v4, brd - 1);
    const count = hi - lo + 1 - (gw >= lo && gw <= hi ? 1 : 0);
    if (count < 1) {
      throw new UserError(`invalid ip-range ${ipRange}: it holds no address for containers (only the network, broadcast or gateway address of ${subnet})`, 'invalid');
    }
  }

  for (const b of takenBlocks(taken, 4)) {
    if (s.overlaps(b.p)) {
      throw new UserError(`invalid pool request: Pool overlaps with other one on this address space (${subnet} overlaps ${b.text})`, 'conflict');
    }
  }
  return { subnet, gateway, ipRange };
}

/**
 * Validates (and completes) a network's IPv6 address plan. Without a subnet a /64 of the host's ULA /48
 * (`ulaBase`) is picked; --gateway or --ip-range without --subnet is an error. The subnet must be canonical,
 * between a /48 and a /120, not link-local, multicast, loopback, unspecified or IPv4-mapped, and overlap nothing
 * of `taken` (its IPv4 entries are ignored); the ip-range a canonical block inside it with an assignable
 * address; the gateway an address of the subnet other than its first one, the Subnet-Router anycast address
 * (default: ::1 of the subnet). IPv6 has no broadcast: the subnet's last address is a host address.
 */
export function planNetworkIpam6(req: IpamRequest, taken: readonly string[], ulaBase: string | Prefix): IpamPlan {
  if (!given(req.subnet)) {
    if (given(req.gateway) || given(req.ipRange)) {
      throw new UserError('every ip-range or gateway must have a corresponding subnet', 'invalid');
    }
    return planNetworkIpam6({ subnet: pickSubnet6(taken, ulaBase) }, taken, ulaBase);
  }
  const s = Prefix.parse(req.subnet, 'subnet', { strict: true });
  const subnet = s.toString();
  if (s.family !== 6) throw new UserError(`invalid subnet ${subnet}: not an IPv6 subnet`, 'invalid');
  if (s.bits > MAX_SUBNET6_PREFIX) {
    throw new UserError(`invalid subnet ${subnet}: too small, an IPv6 network needs at least a /${MAX_SUBNET6_PREFIX}`, 'invalid');
  }
  if (s.bits < MIN_SUBNET6_PREFIX) {
    throw new UserError(`invalid subnet ${subnet}: too large, an IPv6 network may be at most a /${MIN_SUBNET6_PREFIX}`, 'invalid');
  }
  for (const [block, what] of FORBIDDEN6) {
    if (s.overlaps(cachedPrefix(block))) throw new UserError(`invalid subnet ${subnet}: overlaps ${what} ${block}`, 'invalid');
  }

  let ipRange: string | null = null;
  let r: Prefix | null = null;
  if (given(req.ipRange)) {
    r = Prefix.parse(req.ipRange, 'ip-range', { strict: true });
    ipRange = r.toString();
    if (r.family !== 6) throw new UserError(`invalid ip-range ${ipRange}: not an IPv6 block (the subnet is ${subnet})`, 'invalid');
    if (r.bits < s.bits) throw new UserError(`invalid ip-range ${ipRange}: CIDR block is bigger than its parent subnet ${subnet}`, 'invalid');
    if (!s.covers(r)) throw new UserError(`invalid ip-range ${ipRange}: parent subnet ${subnet} doesn't contain ip-range`, 'invalid');
  }

  let gw: Addr;
  if (given(req.gateway)) {
    const g = Addr.tryParse(req.gateway);
    if (!g || g.family !== 6) throw new UserError(`invalid gateway ${showValue(req.gateway)}: not an IPv6 address`, 'invalid');
    if (!s.contains(g)) throw new UserError(`invalid gateway ${req.gateway}: parent subnet ${subnet} doesn't contain this address`, 'invalid');
    if (g.equals(s.network)) throw new UserError(`invalid gateway ${req.gateway}: it is the network address of ${subnet}`, 'invalid');
    gw = g;
  } else {
    gw = s.nth(1);
  }

  if (r) {
    const lo = r.network.big > s.network.big ? r.network.big : s.network.big + 1n;
    const hi = r.last.big;
    const count = hi - lo + 1n - (gw.big >= lo && gw.big <= hi ? 1n : 0n);
    if (count < 1n) {
      throw new UserError(`invalid ip-range ${ipRange}: it holds no address for containers (only the network or gateway address of ${subnet})`, 'invalid');
    }
  }

  for (const b of takenBlocks(taken, 6)) {
    if (s.overlaps(b.p)) {
      throw new UserError(`invalid pool request: Pool overlaps with other one on this address space (${subnet} overlaps ${b.text})`, 'conflict');
    }
  }
  return { subnet, gateway: gw.toString(), ipRange };
}

/** Docker's `network create` address options, both families. */
export interface DualIpamRequest {
  /** --ipv4 (default true; Docker 28's --ipv4=false makes an IPv6-only network). */
  ipv4?: boolean;
  /** --ipv6 (default false). */
  ipv6?: boolean;
  /** --subnet, at most one per family. */
  subnets?: readonly string[];
  /** --gateway, each belongs to the subnet of its family. */
  gateways?: readonly string[];
  /** --ip-range, each belongs to the subnet of its family. */
  ipRanges?: readonly string[];
}

export interface DualIpamPlan {
  ipv4: IpamPlan | null;
  ipv6: IpamPlan | null;
  /** Whether the subnet of that family was picked from the pools (no --subnet of that family was given). */
  pickedIPv4: boolean;
  pickedIPv6: boolean;
}

/**
 * Plans both families of a network from Docker's options: each --subnet, --gateway and --ip-range goes to its
 * family (at most one of each per family), IPv4 as planNetworkIpam, IPv6 as planNetworkIpam6 (a /64 of
 * `ulaBase` when no IPv6 subnet is given). Refused: an IPv6 subnet, gateway or ip-range without --ipv6, an IPv4
 * one with --ipv4=false, both families disabled, a second value of one kind and family.
 */
export function planDualIpam(req: DualIpamRequest, taken: readonly string[], ulaBase: string | Prefix): DualIpamPlan {
  const v4on = req.ipv4 ?? true;
  const v6on = req.ipv6 ?? false;
  if (!v4on && !v6on) throw new UserError('invalid network: IPv4 and IPv6 cannot both be disabled (--ipv4=false needs --ipv6)', 'invalid');
  const per: Record<Family, { subnet?: string; gateway?: string; ipRange?: string }> = { 4: {}, 6: {} };
  const sort = (list: readonly string[] | undefined, kind: 'subnet' | 'gateway' | 'ipRange', what: string) => {
    for (const v of list ?? []) {
      if (!given(v)) continue;
      const fam = familyOfText(v);
      if (fam === 6 && !v6on) throw new UserError(`invalid ${what} ${showValue(v)}: an IPv6 ${what} needs --ipv6`, 'invalid');
      if (fam === 4 && !v4on) throw new UserError(`invalid ${what} ${showValue(v)}: IPv4 is disabled on this network (--ipv4=false)`, 'invalid');
      const prev = per[fam][kind];
      if (prev !== undefined) {
        throw new UserError(`invalid ${what} ${showValue(v)}: a network has at most one IPv${fam} ${what} (${showValue(prev)} is given too)`, 'invalid');
      }
      per[fam][kind] = v;
    }
  };
  sort(req.subnets, 'subnet', 'subnet');
  sort(req.gateways, 'gateway', 'gateway');
  sort(req.ipRanges, 'ipRange', 'ip-range');
  const ipv4 = v4on ? planNetworkIpam(per[4], taken) : null;
  const ipv6 = v6on ? planNetworkIpam6(per[6], taken, ulaBase) : null;
  return { ipv4, ipv6, pickedIPv4: v4on && per[4].subnet === undefined, pickedIPv6: v6on && per[6].subnet === undefined };
}

/** First and last address dynamic allocation may hand out (IPv4): the ip-range (or subnet) minus network and
 *  broadcast. */
export function dynamicBounds(net: IpamNetwork): { first: number; last: number } {
  const s = cachedPrefix(net.subnet);
  const r = given(net.ipRange) ? cachedPrefix(net.ipRange) : s;
  return { first: Math.max(r.network.v4, s.network.v4 + 1), last: Math.min(r.last.v4, s.last.v4 - 1) };
}

/** The same for IPv6 (bigint): the ip-range (or subnet) minus the subnet's first address (no broadcast). */
export function dynamicBounds6(net: IpamNetwork): { first: bigint; last: bigint } {
  const s = cachedPrefix(net.subnet);
  const r = given(net.ipRange) ? cachedPrefix(net.ipRange) : s;
  const sFirst = s.network.big + 1n;
  return { first: r.network.big > sFirst ? r.network.big : sFirst, last: r.last.big };
}

/** Anything that can answer "is this address taken?" (a Set, or an indexed store lookup). Addresses are
 *  compared as canonical text (dotted quad, RFC 5952), which is how allocation hands them out. */
export interface AddressSet {
  has(ip: string): boolean;
}

/**
 * Hands out the next free address after `last` (wrapping around), Docker's serial allocation, so an address just
 * released is not reused at once. Never the network, broadcast (IPv4) or gateway address, nothing in `inUse`;
 * only addresses of the ip-range when there is one. The family is the subnet's: an IPv6 network hands out ::2,
 * ::3, ... after gateway ::1. Cost: one set lookup per address stepped over, so O(1) in the usual case and a full
 * scan of the range only when it is nearly full. Throws UserError('refused') when none is left.
 */
export function allocateIp(net: IpamNetwork, inUse: AddressSet, last?: string | null, name?: string): string {
  if (familyOfText(net.subnet) === 6) return allocateIp6(net, inUse, last, name);
  const { first, last: end } = dynamicBounds(net);
  const gw = parseV4(net.gateway);
  const n = end - first + 1;
  if (n > 0) {
    const prev = last ? parseV4(last) : -1;
    let cand = prev >= first && prev < end ? prev + 1 : first;
    for (let i = 0; i < n; i++) {
      if (cand !== gw) {
        const text = formatV4(cand);
        if (!inUse.has(text)) return text;
      }
      cand = cand === end ? first : cand + 1;
    }
  }
  throw new UserError(`no available IPv4 addresses on this network's address pools: ${name ?? net.name ?? net.subnet}`, 'refused');
}

function allocateIp6(net: IpamNetwork, inUse: AddressSet, last: string | null | undefined, name: string | undefined): string {
  const { first, last: end } = dynamicBounds6(net);
  const g = Addr.tryParse(net.gateway);
  const gw = g && g.family === 6 ? g.big : -1n;
  const n = end - first + 1n;
  if (n > 0n) {
    const p = last ? Addr.tryParse(last) : null;
    const prev = p && p.family === 6 ? p.big : -1n;
    let cand = prev >= first && prev < end ? prev + 1n : first;
    // The loop ends at the first free address: at most inUse's size + 2 steps, whatever the range's size.
    for (let i = 0n; i < n; i++) {
      if (cand !== gw) {
        const text = Addr.fromBigInt(6, cand).toString();
        if (!inUse.has(text)) return text;
      }
      cand = cand === end ? first : cand + 1n;
    }
  }
  throw new UserError(`no available IPv6 addresses on this network's address pools: ${name ?? net.name ?? net.subnet}`, 'refused');
}

/**
 * Checks an address the user asked for (--ip on an IPv4 network, --ip6 on an IPv6 one): a strict address of the
 * subnet's family inside the subnet (it may lie outside the ip-range: that is how static addresses are kept
 * apart from dynamic ones), not the network, broadcast (IPv4) or gateway address and not in use. Returns the
 * address in canonical form (what to store: an IPv6 address may be written in many ways).
 */
export function checkStaticIp(net: IpamNetwork, ip: string, inUse: AddressSet): string {
  if (familyOfText(net.subnet) === 6) return checkStaticIp6(net, ip, inUse);
  const n = parseV4(ip);
  if (n < 0) {
    const hint = typeof ip === 'string' && ip.includes(':') ? ' (an IPv6 address is given with --ip6, on a network with IPv6)' : '';
    throw new UserError(`invalid IPv4 address ${showValue(ip)}${hint}`, 'invalid');
  }
  const s = cachedPrefix(net.subnet);
  if (n < s.network.v4 || n > s.last.v4) {
    throw new UserError(`no configured subnet or ip-range contain the IP address ${ip} (the network's subnet is ${s})`, 'invalid');
  }
  if (n === s.network.v4) throw new UserError(`invalid IP address ${ip}: it is the network address of ${s}`, 'invalid');
  if (n === s.last.v4) throw new UserError(`invalid IP address ${ip}: it is the broadcast address of ${s}`, 'invalid');
  if (n === parseV4(net.gateway)) throw new UserError(`Address already in use: ${ip} is the network's gateway`, 'conflict');
  if (inUse.has(ip)) throw new UserError(`Address already in use: ${ip}`, 'conflict');
  return ip;
}

function checkStaticIp6(net: IpamNetwork, ip: string, inUse: AddressSet): string {
  const a = Addr.tryParse(ip);
  if (!a || a.family !== 6) {
    const hint = typeof ip === 'string' && ip.includes('%') ? ' (a zone is not allowed here)' : '';
    throw new UserError(`invalid IPv6 address ${showValue(ip)}${hint}`, 'invalid');
  }
  const s = cachedPrefix(net.subnet);
  const text = a.toString();
  if (!s.contains(a)) {
    throw new UserError(`no configured subnet or ip-range contain the IP address ${text} (the network's subnet is ${s})`, 'invalid');
  }
  if (a.equals(s.network)) throw new UserError(`invalid IP address ${text}: it is the network address of ${s}`, 'invalid');
  const g = Addr.tryParse(net.gateway);
  if (g && g.equals(a)) throw new UserError(`Address already in use: ${text} is the network's gateway`, 'conflict');
  if (inUse.has(text)) throw new UserError(`Address already in use: ${text}`, 'conflict');
  return text;
}

/** Docker's MAC address scheme: 02:42 then the four bytes of the IPv4 address (172.17.0.2 -> 02:42:ac:11:00:02). */
export function macFromIp(ip: string): string {
  const n = parseV4(ip);
  if (n < 0) {
    const hint = typeof ip === 'string' && ip.includes(':') ? ' (IPv6 is not supported yet)' : '';
    throw new UserError(`invalid IPv4 address ${showValue(ip)}${hint}`, 'invalid');
  }
  const b = [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
  return ['02', '42', ...b.map((x) => x.toString(16).padStart(2, '0'))].join(':');
}
