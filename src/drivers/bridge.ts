// The bridge driver: what the seed document does by hand with `ip link add ... type bridge`, veth pairs,
// `ip addr add`, `ip route add default via`, done with a handful of rtnetlink requests.
import { Netlink, NetlinkError, encodeSockFilter, type SockFilter, type TcFilterInfo } from '../kernel/netlink.js';
import { enableIPv6On, writeSysctl } from '../kernel/sysctl.js';
import crypto from 'node:crypto';
import type { EndpointRecord, NetworkRecord } from '../types.js';
import { parsePrefix } from '../util/addr.js';
import { macFromIp } from '../ipam/ipam.js';
import type { Host } from '../engine/host.js';
import { endpointMark, networkMark, ownedBy } from '../engine/marks.js';

function prefixOf(n: NetworkRecord): number {
  return parsePrefix(n.subnet).bits;
}

function prefix6Of(n: NetworkRecord): number {
  return parsePrefix(n.subnet6!).bits;
}

/** The bridge's fixed MAC: derived from the IPv4 gateway as containers' own are; an IPv6-only network has no
 *  IPv4 address to derive it from: 02:42 then four bytes of the network id's hash (stable, locally administered). */
export function bridgeMac(n: NetworkRecord): string {
  if (n.gateway) return macFromIp(n.gateway);
  const d = crypto.createHash('sha256').update(`nsnet-bridge-mac/${n.id}`).digest();
  return ['02', '42', ...[...d.subarray(0, 4)].map((x) => x.toString(16).padStart(2, '0'))].join(':');
}

/** Creates (or adopts, if it is already ours) the bridge with the gateway address, and enables forwarding. */
export function setupNetwork(h: Host, n: NetworkRecord): void {
  const nl = h.nl;
  let link = nl.linkByName(n.bridge);
  if (link && !ownedBy(link.alias, h.owner)) {
    throw new NetlinkError(`interface ${n.bridge} already exists and is not nsnet's`, 'EEXIST', 17, 'createBridge');
  }
  // A fixed MAC (derived from the gateway, like containers' own): otherwise the bridge takes the lowest MAC of
  // its ports, changing whenever a container comes or goes, and containers' ARP entries for the gateway go stale.
  const index = link ? link.index : nl.createBridge(n.bridge, { mtu: n.mtu, alias: networkMark(h.owner, n), up: true, mac: bridgeMac(n) });
  if (link) nl.setUp(index);
  const addrs = nl.addresses();
  if (n.gateway) {
    const prefix = prefixOf(n);
    const has = addrs.some((a) => a.index === index && a.address === n.gateway && a.prefixLen === prefix);
    if (!has) nl.addAddress(index, n.gateway, prefix);
  }
  if (n.subnet6 && n.gateway6) {
    // IPv6 on the bridge (the host's default may have it off), no router advertisement accepted there, forwarding
    // on in the host netns; the gateway without duplicate address detection (usable at once, as Docker's).
    h.inHost(() => {
      enableIPv6On(n.bridge);
      writeSysctl('net.ipv6.conf.all.forwarding', '1');
    });
    const p6 = prefix6Of(n);
    if (!addrs.some((a) => a.index === index && a.address === n.gateway6 && a.prefixLen === p6)) nl.addAddress(index, n.gateway6, p6, { nodad: true });
  }
  link = null;
  // The guard's block before route_localnet is armed (containers come later and bind their ports to it).
  ensureGuardBlock(h, index, n.bridge);
  if (n.gateway) h.inHost(() => {
    writeSysctl('net.ipv4.ip_forward', '1');
    // Lets DNAT of 127.0.0.1:PORT to a container leave through the bridge (docs/kernel-notes.md §13).
    writeSysctl(`net.ipv4.conf.${n.bridge.replace(/\./g, '/')}.route_localnet`, '1');
  });
}

// ---------------------------------------------------------------------------------------------- loopback guard
//
// route_localnet=1 on a bridge (needed for -p 127.0.0.1:...) also lets a container send packets for 127.0.0.0/8
// to its gateway and reach the host's loopback-only services (Kubernetes' CVE-2020-8558). nsnet's nftables
// `guard` chain drops them, but `nft flush ruleset` (or any tool replacing the ruleset) removes that chain while
// route_localnet stays on. So the same guard also lives in tc, which nftables cannot flush: a clsact ingress
// filter on the host end of every container's veth (a bridge port). There a frame is exactly what the container
// sent, before the bridge and before netfilter. Not on the bridge device: with br_netfilter on, conntrack has
// already undone the masquerade of the host's own 127.0.0.1 connections when a reply is passed up to the bridge
// device (daddr 127.0.0.1 again), so a guard there breaks `-p 127.0.0.1:...`. This kernel has no cls_flower and
// no act_gact: a classic BPF program in direct-action mode (cls_bpf) is the verdict itself, no action module.

/** Name, priority and handle of nsnet's filter (prio: clear of tc's automatic 49152 downwards and of 1..N). */
export const GUARD_NAME = 'nsnet-loopback-guard';
export const GUARD_PRIO = 0x4e53;
const GUARD_HANDLE = 1;
const ETH_P_ALL_BE = 0x0300;

/** Drops IPv4 frames whose destination or source is in 127.0.0.0/8; everything else goes on to the next filter
 *  (TC_ACT_UNSPEC), so nsnet's filter never decides for anyone else's. Offsets: the frame starts at the Ethernet
 *  header (cls_bpf pushes it back at ingress): ethertype at 12, IPv4 saddr at 26, daddr at 30. */
export const GUARD_PROGRAM: SockFilter[] = [
  { code: 0x28, jt: 0, jf: 0, k: 12 }, //        ldh [12]            ethertype
  { code: 0x15, jt: 0, jf: 5, k: 0x0800 }, //    jeq #IPv4 ? next : pass
  { code: 0x30, jt: 0, jf: 0, k: 30 }, //        ldb [30]            first byte of daddr
  { code: 0x15, jt: 2, jf: 0, k: 127 }, //       jeq #127 ? drop : next
  { code: 0x30, jt: 0, jf: 0, k: 26 }, //        ldb [26]            first byte of saddr
  { code: 0x15, jt: 0, jf: 1, k: 127 }, //       jeq #127 ? drop : pass
  { code: 0x06, jt: 0, jf: 0, k: 2 }, //         drop: ret #TC_ACT_SHOT
  { code: 0x06, jt: 0, jf: 0, k: 0xffffffff }, // pass: ret #TC_ACT_UNSPEC
];
const GUARD_BYTES = encodeSockFilter(GUARD_PROGRAM);

const GUARD_SPEC = { prio: GUARD_PRIO, protocolBe: ETH_P_ALL_BE, handle: GUARD_HANDLE, name: GUARD_NAME, prog: GUARD_PROGRAM };

/** The shared tc filter block holding the guard. Each container port binds its ingress to it (one qdisc request
 *  in the same send as the port's flags: the filter itself, whose creation costs ≈0.25 ms with the BPF
 *  translation, exists once per host netns). A block lives while something is bound to it, so each nsnet bridge
 *  anchors it with its clsact EGRESS (frames the host sends into the bridge, after NAT: no legitimate one has a
 *  127/8 address, so the filter there changes nothing). */
export const GUARD_BLOCK = 0x4e53;

function isGuard(f: TcFilterInfo): boolean {
  // Recognised by place and program: the kernel does not report the name of a classic BPF filter.
  return f.kind === 'bpf' && f.prio === GUARD_PRIO && f.directAction && f.ops !== null && f.ops.equals(GUARD_BYTES);
}

/** True when the shared block holds nsnet's guard filter, exactly as nsnet writes it. */
export function hasGuardFilter(h: Host): boolean {
  return h.nl.filters({ block: GUARD_BLOCK }).some(isGuard);
}

/** Ingress block of each interface's clsact qdisc (0 = a clsact without a block), by ifindex. */
export function clsactBlocks(h: Host): Map<number, number> {
  return new Map(h.nl.qdiscs().filter((q) => q.kind === 'clsact').map((q) => [q.index, q.ingressBlock]));
}

/** The bridge anchors the block (clsact egress) and the block has the guard filter; idempotent. */
export function ensureGuardBlock(h: Host, bridgeIndex: number, bridgeName: string): void {
  const q = h.nl.qdiscs().find((x) => x.index === bridgeIndex && x.kind === 'clsact');
  if (!q) h.nl.addClsact(bridgeIndex, { egressBlock: GUARD_BLOCK });
  else if (q.egressBlock !== GUARD_BLOCK) throw new Error(`bridge ${bridgeName} has a clsact qdisc nsnet did not make (remove it: tc qdisc del dev ${bridgeName} clsact, then run nsnet reconcile)`);
  const fs = h.nl.filters({ block: GUARD_BLOCK });
  const foreign = fs.filter((f) => f.handle !== 0 && !isGuard(f)); // handle 0: the classifier's own entry
  if (foreign.length) throw new Error(`tc block ${GUARD_BLOCK} holds filters nsnet did not make: it is nsnet's loopback guard (docs/firewall.md)`);
  if (!fs.some(isGuard)) h.nl.addBpfFilter({ block: GUARD_BLOCK }, { ...GUARD_SPEC, replace: true });
}

/** Binds a container port's ingress to the guard block (reconcile: a port without it); replaces a clsact
 *  qdisc on it that is not bound to the block (the port is nsnet's own veth). */
export function ensurePortGuard(h: Host, index: number, blocks = clsactBlocks(h)): boolean {
  const b = blocks.get(index);
  if (b === GUARD_BLOCK) return false;
  if (b !== undefined) h.nl.deleteClsact(index);
  h.nl.addClsact(index, { ingressBlock: GUARD_BLOCK });
  return true;
}

export function teardownNetwork(h: Host, n: NetworkRecord): void {
  const link = ownedLink(h, n.bridge);
  if (link) h.nl.deleteLink(link.index);
}

/** The link named `name` if nsnet made it on this host (it carries the host's owner alias), else null. */
export function ownedLink(h: Host, name: string): { index: number } | null {
  const link = h.nl.linkByName(name);
  return link && ownedBy(link.alias, h.owner) ? link : null;
}

/** Deletes a link; tolerates its being gone already. */
export function removeLink(h: Host, index: number): void {
  try {
    h.nl.deleteLink(index);
  } catch (e) {
    if (!(e instanceof NetlinkError) || e.code !== 'ENODEV') throw e;
  }
}

export interface AttachOptions {
  /** Container netns fd. */
  nsFd: number;
  /** Netlink socket bound to the container netns. */
  cnl: Netlink;
  defaultRoute: boolean;
  /** The IPv6 default route via this network's IPv6 gateway (default: defaultRoute). */
  defaultRoute6?: boolean;
  /** Also bring the container's loopback (always ifindex 1 in a new netns) up in the same batch, with this mark
   *  (src/engine/marks.ts containerMark). */
  loMark?: string;
}

/** veth pair with the host end on the bridge and the peer (named ep.ifname) inside the container, then the
 *  container side in one batch: up, address, default route. The host port gets hairpin mode (as Docker without
 *  userland proxy): with br_netfilter on, a container reaching its own published port is DNATed back out of
 *  the port it came in through, which a bridge otherwise refuses. */
export function attach(h: Host, n: NetworkRecord, ep: EndpointRecord, o: AttachOptions): void {
  const br = h.nl.ifindex(n.bridge);
  if (br === null) throw new Error(`bridge ${n.bridge} of network ${n.name} is missing (run: nsnet reconcile)`);
  // The veth is created up: its tc loopback guard is in place before the container side is configured (below),
  // so no frame of the container passes unguarded. One send for both requests (no extra round trip).
  const hostIdx = h.nl.createVeth(ep.hostIf, ep.ifname, o.nsFd, { master: br, mtu: n.mtu, peerMac: ep.mac, alias: endpointMark(h.owner, ep), up: true });
  // icc=false: the port is isolated (kernel port isolation: isolated ports never exchange frames, whatever the
  // protocol, while each still reaches the bridge itself, i.e. the gateway and the host). The firewall's rules
  // match IPv4 only, and without br_netfilter a container that re-enables IPv6 would talk link-local past them.
  h.nl.batch((b) => {
    b.setBridgePort(hostIdx, { hairpin: true, isolated: !n.icc });
    b.addClsact(hostIdx, { ingressBlock: GUARD_BLOCK });
  });
  const peer = o.cnl.ifindex(ep.ifname);
  if (peer === null) throw new Error(`veth peer ${ep.ifname} did not appear in the container`);
  // A network with IPv6: IPv6 on this interface only (accept_ra=0 first); every other stays without it.
  if (ep.ip6) enableIPv6On(ep.ifname, o.nsFd);
  o.cnl.batch((b) => {
    // lo also carries the host's mark (in the same send): reconcile recognises the netns as nsnet's by it, not by
    // its name alone (a user's `ip netns add nsnet-<hostid>-x` is left alone).
    if (o.loMark) b.setUp(1).setAlias(1, o.loMark);
    b.setUp(peer);
    if (ep.ip) b.addAddress(peer, ep.ip, prefixOf(n));
    if (ep.ip6) b.addAddress(peer, ep.ip6, prefix6Of(n), { nodad: true });
    if (o.defaultRoute && ep.ip && n.gateway) b.addRoute({ dst: '0.0.0.0', prefixLen: 0, gateway: n.gateway });
    if ((o.defaultRoute6 ?? o.defaultRoute) && ep.ip6 && n.gateway6) b.addRoute({ dst: '::', prefixLen: 0, gateway: n.gateway6 });
  });
}

/** Removes the host end of the veth (the peer goes with it). Tolerates an already missing link. */
export function detach(h: Host, ep: EndpointRecord): void {
  const link = ownedLink(h, ep.hostIf);
  if (link) removeLink(h, link.index);
}

/** Takes the host ends of veths that are left to die with their container's netns out of service at once: a port
 *  that is down gets no frames and the bridge forgets the MACs it learned on it, so an address (and its MAC)
 *  handed out again right away is reached on its new port, never in the dying netns. 0.07 ms per veth, where
 *  deleting it would wait ≈30 ms for the kernel. */
export function quiesce(h: Host, eps: EndpointRecord[]): void {
  for (const ep of eps) {
    const idx = h.nl.ifindex(ep.hostIf);
    if (idx === null) continue;
    try {
      h.nl.setDown(idx);
    } catch (e) {
      // Already gone: the kernel finished deleting the pair between the lookup and now (its netns died).
      if ((e as { code?: string }).code !== 'ENODEV') throw e;
    }
  }
}
