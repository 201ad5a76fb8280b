// The arithmetic of cluster-wide allocation: VNIs, overlay subnets, addresses. Pure (callers pass the state
// read from etcd; the Cluster makes the choice stick with a compare-and-swap transaction).
//
// IPAM is per address (a key ipam/<network>/<ip> created only if absent), not per-host blocks:
// - an overlay network is one L2 segment spanning the hosts (a VXLAN, one subnet, as Docker's overlay): blocks
//   per host would buy no routing, only waste: a /24 shared by 30 hosts would need blocks of 8 and a host
//   running its 9th container would be stuck while 200 addresses stand free;
// - each address is bound to its host's lease by itself, so a dead host's addresses come back exactly, and a
//   host that returns re-claims exactly the addresses it still runs with (not a block that others now share);
// - the price, one etcd transaction per allocation (~1 ms on a LAN), is small next to making a container, and
//   a command that must reach etcd anyway (the endpoint is registered there) pays no extra round trip to fail.
// Contention: an allocator reads the taken set and tries the lowest free address (Docker's order; allocations
// in flight in the same process are skipped); one that loses the race (the key was created meanwhile) gets
// the taken set back in its failed transaction's answer and retries, picking at random among the first 2,
// then 4, 8... free addresses, so concurrent losers spread out instead of colliding again.
import { UserError, showValue } from '../util/errors.js';
import { Addr, Prefix, ulaPrefixFromId, ulaSubnet } from '../util/addr.js';

/** VNIs handed out: 4096..16777215, lowest free first. Below 4096 is left alone so a VNI never reads as a
 *  VLAN id (Docker's overlay starts at 4096 too); 24 bits is VXLAN's limit. */
export const VNI_MIN = 4096;
export const VNI_MAX = 0xffffff;

/** Overlay networks created without --subnet get a /24 out of this pool, lowest free first. */
export const OVERLAY_POOL = '10.90.0.0/15';
export const OVERLAY_POOL_BITS = 24;

/** The lowest VNI in VNI_MIN..VNI_MAX not in `used`. */
export function pickVni(used: Iterable<number>): number {
  const taken = new Set(used);
  for (let v = VNI_MIN; v <= VNI_MAX; v++) if (!taken.has(v)) return v;
  throw new UserError('no free VXLAN id (VNI) left in 4096..16777215', 'refused');
}

/** The first /bits block of `pool` overlapping none of `taken` (other networks' subnets, host routes). */
export function pickSubnet(taken: readonly string[], pool = OVERLAY_POOL, bits = OVERLAY_POOL_BITS): string {
  const p = Prefix.parse(pool, 'address pool', { strict: true });
  const blocks = taken.map((t) => Prefix.parse(t, 'subnet'));
  const count = 1n << BigInt(bits - p.bits);
  for (let k = 0n; k < count; k++) {
    const cand = p.subnet(bits, k);
    if (!blocks.some((b) => b.overlaps(cand))) return cand.toString();
  }
  throw new UserError(`no free /${bits} left in the overlay address pool ${pool}`, 'refused');
}

/** The k-th free /64 of the cluster's IPv6 ULA /48 (from `clusterKey`, the layout's prefix). */
export function pickSubnet6(taken: readonly string[], clusterKey: string): string {
  const base = ulaPrefixFromId(`nsnet-overlay:${clusterKey}`);
  const blocks = taken.map((t) => Prefix.parse(t, 'subnet'));
  for (let k = 0; k <= 0xffff; k++) {
    const cand = ulaSubnet(base, k);
    if (!blocks.some((b) => b.overlaps(cand))) return cand.toString();
  }
  throw new UserError(`no free /64 left in the overlay IPv6 pool ${base}`, 'refused');
}

/** An overlay subnet as given (canonical, no host bits) with its gateway: the first usable address unless
 *  `gateway` is given (then it must be a usable address of the subnet). */
export function planSubnet(subnet: string, gateway?: string | null): { subnet: string; gateway: string } {
  const p = Prefix.parse(subnet, 'subnet', { strict: true });
  const max = p.family === 4 ? 30 : 120;
  if (p.bits > max) throw new UserError(`invalid subnet ${subnet}: an overlay subnet must be /${max} or larger`);
  if (p.family === 4 && p.bits < 8) throw new UserError(`invalid subnet ${subnet}: an overlay subnet must be /8 or smaller`);
  if (p.family === 6 && p.bits < 48) throw new UserError(`invalid subnet ${subnet}: an overlay subnet must be /48 or smaller`);
  if (gateway === undefined || gateway === null) return { subnet: p.toString(), gateway: p.nth(1).toString() };
  const g = Addr.parse(gateway, 'gateway');
  if (!isUsable(p, g)) throw new UserError(`invalid gateway ${showValue(gateway)}: not a usable address of ${p}`);
  return { subnet: p.toString(), gateway: g.toString() };
}

/** Whether `a` may be a host's address in `p`: inside, not the network address (IPv6: the subnet-router anycast),
 *  not IPv4's broadcast. */
export function isUsable(p: Prefix, a: Addr): boolean {
  if (!p.contains(a)) return false;
  const i = p.indexOf(a);
  if (i === 0n) return false;
  return !(p.family === 4 && i === p.size() - 1n);
}

/** A requested (--ip) address: usable in the subnet and not the gateway. Returns its canonical text. */
export function checkStaticAddress(subnet: string, gateway: string, ip: string): string {
  const p = Prefix.parse(subnet, 'subnet');
  const a = Addr.parse(ip, 'IP address');
  if (!p.contains(a)) throw new UserError(`invalid address ${showValue(ip)}: it does not belong to the network's subnet ${subnet}`);
  if (!isUsable(p, a)) throw new UserError(`invalid address ${showValue(ip)}: not a usable address of ${subnet}`);
  if (a.equals(Addr.parse(gateway))) throw new UserError(`invalid address ${ip}: it is the network's gateway`, 'conflict');
  return a.toString();
}

/**
 * A free address of `subnet` (not the gateway, not in `taken`: canonical texts), picked at random among the
 * first `window` free ones from the bottom of the subnet; null when the subnet is full. Walks at most
 * |taken| + window + 2 addresses, so a /64 costs what a /24 does.
 */
export function pickAddress(subnet: string, gateway: string, taken: ReadonlySet<string>, window = 1, random: () => number = Math.random): string | null {
  const p = Prefix.parse(subnet, 'subnet');
  const gw = Addr.parse(gateway).toString();
  const free: string[] = [];
  const end = p.family === 4 ? p.size() - 1n : p.size();
  for (let i = 1n; i < end && free.length < Math.max(1, window); i++) {
    const a = p.nth(i).toString();
    if (a !== gw && !taken.has(a)) free.push(a);
  }
  if (free.length === 0) return null;
  return free[Math.min(free.length - 1, Math.floor(random() * free.length))];
}

/** Docker-style locally administered MAC for a container address: 02:42 + the IPv4 address (IPv6-only: 02:42
 *  + the last four bytes). Unique in a network as the address is. */
export function macFor(ip: string): string {
  const b = Addr.parse(ip).bytes();
  const tail = b.subarray(b.length - 4);
  return ['02', '42', ...Array.from(tail, (x) => x.toString(16).padStart(2, '0'))].join(':');
}
