// IP address management, Docker-compatible: subnet pools, gateway, ip-range, dynamic and static allocation,
// conflict checks against other networks and the host's routes. Pure: callers pass in the state.
import { UserError } from '../util/errors.js';
import { canonicalCidr, cidrOverlaps, formatIPv4, parseCidr, parseIPv4, tryParseCidr, tryParseIPv4, type Cidr } from '../util/ip.js';

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

/** Smallest subnet a network may have: a /30 holds the gateway and one container. */
export const MAX_SUBNET_PREFIX = 30;

/** What IPAM needs to know of a network. */
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

/**
 * The blocks of `taken` that can conflict: IPv4 CIDRs (or bare addresses, read as /32). Entries that are not
 * IPv4 (IPv6 routes, garbage) and default routes (prefix 0) are ignored: they never make a subnet unusable.
 */
function takenBlocks(taken: readonly string[]): Array<{ text: string; c: Cidr }> {
  const out: Array<{ text: string; c: Cidr }> = [];
  for (const t of taken) {
    const c = tryParseCidr(t) ?? (tryParseIPv4(t) !== null ? tryParseCidr(`${t}/32`) : null);
    if (c && c.prefix > 0) out.push({ text: t, c });
  }
  return out;
}

/**
 * The first default pool overlapping none of `taken` (existing nsnet subnets and the host's route destinations,
 * default route excluded). Throws UserError('refused') when all are used.
 */
export function pickSubnet(taken: readonly string[]): string {
  const blocks = takenBlocks(taken);
  for (const pool of DEFAULT_POOLS) {
    const p = parseCidr(pool);
    if (!blocks.some((b) => cidrOverlaps(p, b.c))) return pool;
  }
  throw new UserError('could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network', 'refused');
}

function given(v: string | null | undefined): v is string {
  return v !== undefined && v !== null && v !== '';
}

/**
 * Validates (and completes) a network's address plan. Without a subnet one is picked from the default pools;
 * --gateway or --ip-range without --subnet is an error (as in Docker). The subnet must be canonical (no host bits),
 * at most a /30, outside loopback/multicast/reserved blocks and overlap nothing in `taken`; the ip-range must be a
 * canonical block inside the subnet holding at least one assignable address; the gateway must be a host address
 * of the subnet (default: the first one, .1). Empty strings count as "not given".
 */
export function planNetworkIpam(req: IpamRequest, taken: readonly string[]): IpamPlan {
  if (!given(req.subnet)) {
    if (given(req.gateway) || given(req.ipRange)) {
      throw new UserError('every ip-range or gateway must have a corresponding subnet', 'invalid');
    }
    return planNetworkIpam({ subnet: pickSubnet(taken) }, taken);
  }
  const subnet = canonicalCidr(req.subnet, 'subnet');
  const s = parseCidr(subnet);
  if (s.prefix > MAX_SUBNET_PREFIX) {
    throw new UserError(`invalid subnet ${subnet}: too small, a network needs at least a /${MAX_SUBNET_PREFIX} (a gateway and one container)`, 'invalid');
  }
  for (const [block, what] of FORBIDDEN) {
    if (cidrOverlaps(s, block)) throw new UserError(`invalid subnet ${subnet}: overlaps ${what} ${block}`, 'invalid');
  }

  let ipRange: string | null = null;
  let r: Cidr | null = null;
  if (given(req.ipRange)) {
    ipRange = canonicalCidr(req.ipRange, 'ip-range');
    r = parseCidr(ipRange);
    if (r.prefix < s.prefix) throw new UserError(`invalid ip-range ${ipRange}: CIDR block is bigger than its parent subnet ${subnet}`, 'invalid');
    if (r.network < s.network || r.broadcast > s.broadcast) {
      throw new UserError(`invalid ip-range ${ipRange}: parent subnet ${subnet} doesn't contain ip-range`, 'invalid');
    }
  }

  let gw: number;
  if (given(req.gateway)) {
    gw = parseIPv4(req.gateway, 'gateway');
    if (gw < s.network || gw > s.broadcast) {
      throw new UserError(`invalid gateway ${req.gateway}: parent subnet ${subnet} doesn't contain this address`, 'invalid');
    }
    if (gw === s.network) throw new UserError(`invalid gateway ${req.gateway}: it is the network address of ${subnet}`, 'invalid');
    if (gw === s.broadcast) throw new UserError(`invalid gateway ${req.gateway}: it is the broadcast address of ${subnet}`, 'invalid');
  } else {
    gw = s.network + 1;
  }
  const gateway = formatIPv4(gw);

  if (r) {
    const lo = Math.max(r.network, s.network + 1);
    const hi = Math.min(r.broadcast, s.broadcast - 1);
    const count = hi - lo + 1 - (gw >= lo && gw <= hi ? 1 : 0);
    if (count < 1) {
      throw new UserError(`invalid ip-range ${ipRange}: it holds no address for containers (only the network, broadcast or gateway address of ${subnet})`, 'invalid');
    }
  }

  for (const b of takenBlocks(taken)) {
    if (cidrOverlaps(s, b.c)) {
      throw new UserError(`invalid pool request: Pool overlaps with other one on this address space (${subnet} overlaps ${b.text})`, 'conflict');
    }
  }
  return { subnet, gateway, ipRange };
}

/** First and last address dynamic allocation may hand out: the ip-range (or subnet) minus network/broadcast. */
export function dynamicBounds(net: IpamNetwork): { first: number; last: number } {
  const s = parseCidr(net.subnet);
  const r = given(net.ipRange) ? parseCidr(net.ipRange) : s;
  return { first: Math.max(r.network, s.network + 1), last: Math.min(r.broadcast, s.broadcast - 1) };
}

/**
 * Hands out the next free address after `last` (wrapping around), Docker's serial allocation, so an address just
 * released is not reused at once. Never the network, broadcast or gateway address, nothing in `inUse`; only
 * addresses of the ip-range when there is one. Cost: one set lookup per address stepped over, so O(1) in the usual
 * case and a full scan of the range only when it is nearly full. Throws UserError('refused') when none is left.
 */
/** Anything that can answer "is this address taken?" (a Set, or an indexed store lookup). */
export interface AddressSet {
  has(ip: string): boolean;
}

export function allocateIp(net: IpamNetwork, inUse: AddressSet, last?: string | null, name?: string): string {
  const { first, last: end } = dynamicBounds(net);
  const gw = tryParseIPv4(net.gateway);
  const n = end - first + 1;
  if (n > 0) {
    const prev = last ? tryParseIPv4(last) : null;
    let cand = prev !== null && prev >= first && prev < end ? prev + 1 : first;
    for (let i = 0; i < n; i++) {
      if (cand !== gw) {
        const text = formatIPv4(cand);
        if (!inUse.has(text)) return text;
      }
      cand = cand === end ? first : cand + 1;
    }
  }
  throw new UserError(`no available IPv4 addresses on this network's address pools: ${name ?? net.name ?? net.subnet}`, 'refused');
}

/**
 * Checks an address the user asked for (--ip): a strict IPv4 address inside the subnet (it may lie outside the
 * ip-range: that is how static addresses are kept apart from dynamic ones), not the network, broadcast or
 * gateway address and not in use.
 */
export function checkStaticIp(net: IpamNetwork, ip: string, inUse: AddressSet): void {
  const n = parseIPv4(ip, 'IPv4 address');
  const s = parseCidr(net.subnet);
  if (n < s.network || n > s.broadcast) {
    throw new UserError(`no configured subnet or ip-range contain the IP address ${ip} (the network's subnet is ${s.canonical})`, 'invalid');
  }
  if (n === s.network) throw new UserError(`invalid IP address ${ip}: it is the network address of ${s.canonical}`, 'invalid');
  if (n === s.broadcast) throw new UserError(`invalid IP address ${ip}: it is the broadcast address of ${s.canonical}`, 'invalid');
  if (n === tryParseIPv4(net.gateway)) throw new UserError(`Address already in use: ${ip} is the network's gateway`, 'conflict');
  if (inUse.has(ip)) throw new UserError(`Address already in use: ${ip}`, 'conflict');
}

/** Docker's MAC address scheme: 02:42 then the four bytes of the IPv4 address (172.17.0.2 -> 02:42:ac:11:00:02). */
export function macFromIp(ip: string): string {
  const n = parseIPv4(ip);
  const b = [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
  return ['02', '42', ...b.map((x) => x.toString(16).padStart(2, '0'))].join(':');
}
