// The bridge driver: what the seed document does by hand with `ip link add ... type bridge`, veth pairs,
// `ip addr add`, `ip route add default via`, done with a handful of rtnetlink requests.
import crypto from 'node:crypto';
import { NetlinkError, encodeSockFilter, type SockFilter, type TcFilterInfo } from '../kernel/netlink.js';
import { enableIPv6On } from '../kernel/sysctl.js';
import type { EndpointRecord, NetworkRecord } from '../types.js';
import { parsePrefix } from '../util/addr.js';
import { macFromIp } from '../ipam/ipam.js';
import { once, type AttachOptions, type DriverPorts, type DriverView, type Finding, type NetworkDriver } from './driver.js';
import { ownedLink, removeLink } from './links.js';

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
function setupNetwork(p: DriverPorts, n: NetworkRecord): void {
  const nl = p.nl;
  let link = nl.linkByName(n.bridge);
  if (link && !p.marks.owns(link.alias)) {
    throw new NetlinkError(`interface ${n.bridge} already exists and is not nsnet's`, 'EEXIST', 17, 'createBridge');
  }
  // A fixed MAC (derived from the gateway, like containers' own): otherwise the bridge takes the lowest MAC of
  // its ports, changing whenever a container comes or goes, and containers' ARP entries for the gateway go stale.
  const index = link ? link.index : nl.createBridge(n.bridge, { mtu: n.mtu, alias: p.marks.network(n), up: true, mac: bridgeMac(n) });
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
    p.enableIPv6(n.bridge);
    p.sysctl('net.ipv6.conf.all.forwarding', '1');
    const p6 = prefix6Of(n);
    if (!addrs.some((a) => a.index === index && a.address === n.gateway6 && a.prefixLen === p6)) nl.addAddress(index, n.gateway6, p6, { nodad: true });
  }
  link = null;
  // The guard's block before route_localnet is armed (containers come later and bind their ports to it).
  ensureGuardBlock(p, index, n.bridge);
  if (n.gateway) {
    p.sysctl('net.ipv4.ip_forward', '1');
    // Lets DNAT of 127.0.0.1:PORT to a container leave through the bridge (docs/kernel-notes.md §13).
    p.sysctl(`net.ipv4.conf.${n.bridge.replace(/\./g, '/')}.route_localnet`, '1');
  }
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
function hasGuardFilter(p: DriverPorts): boolean {
  return p.nl.filters({ block: GUARD_BLOCK }).some(isGuard);
}

/** Ingress block of each interface's clsact qdisc (0 = a clsact without a block), by ifindex. */
export function clsactBlocks(p: DriverPorts): Map<number, number> {
  return new Map(p.nl.qdiscs().filter((q) => q.kind === 'clsact').map((q) => [q.index, q.ingressBlock]));
}

/** The bridge anchors the block (clsact egress) and the block has the guard filter; idempotent. */
function ensureGuardBlock(p: DriverPorts, bridgeIndex: number, bridgeName: string): void {
  const q = p.nl.qdiscs().find((x) => x.index === bridgeIndex && x.kind === 'clsact');
  if (!q) p.nl.addClsact(bridgeIndex, { egressBlock: GUARD_BLOCK });
  else if (q.egressBlock !== GUARD_BLOCK) throw new Error(`bridge ${bridgeName} has a clsact qdisc nsnet did not make (remove it: tc qdisc del dev ${bridgeName} clsact, then run nsnet reconcile)`);
  const fs = p.nl.filters({ block: GUARD_BLOCK });
  const foreign = fs.filter((f) => f.handle !== 0 && !isGuard(f)); // handle 0: the classifier's own entry
  if (foreign.length) throw new Error(`tc block ${GUARD_BLOCK} holds filters nsnet did not make: it is nsnet's loopback guard (docs/firewall.md)`);
  if (!fs.some(isGuard)) p.nl.addBpfFilter({ block: GUARD_BLOCK }, { ...GUARD_SPEC, replace: true });
}

/** Binds a container port's ingress to the guard block (reconcile: a port without it); replaces a clsact
 *  qdisc on it that is not bound to the block (the port is nsnet's own veth). */
export function ensurePortGuard(p: DriverPorts, index: number, blocks = clsactBlocks(p)): boolean {
  const b = blocks.get(index);
  if (b === GUARD_BLOCK) return false;
  if (b !== undefined) p.nl.deleteClsact(index);
  p.nl.addClsact(index, { ingressBlock: GUARD_BLOCK });
  return true;
}

function teardownNetwork(p: DriverPorts, n: NetworkRecord): void {
  const link = ownedLink(p.nl, p.marks.owns, n.bridge);
  if (link) p.nl.deleteLink(link.index);
}

/** veth pair with the host end on the bridge and the peer (named ep.ifname) inside the container, then the
 *  container side in one batch: up, address, default route. The host port gets hairpin mode (as Docker without
 *  userland proxy): with br_netfilter on, a container reaching its own published port is DNATed back out of
 *  the port it came in through, which a bridge otherwise refuses. */
function attach(p: DriverPorts, n: NetworkRecord, ep: EndpointRecord, o: AttachOptions): void {
  const br = p.nl.ifindex(n.bridge);
  if (br === null) throw new Error(`bridge ${n.bridge} of network ${n.name} is missing (run: nsnet reconcile)`);
  // The veth is created up: its tc loopback guard is in place before the container side is configured (below),
  // so no frame of the container passes unguarded. One send for both requests (no extra round trip).
  const hostIdx = p.nl.createVeth(ep.hostIf, ep.ifname, o.nsFd, { master: br, mtu: n.mtu, peerMac: ep.mac, alias: p.marks.endpoint(ep), up: true });
  // icc=false: the port is isolated (kernel port isolation: isolated ports never exchange frames, whatever the
  // protocol, while each still reaches the bridge itself, i.e. the gateway and the host). The firewall's rules
  // match IPv4 only, and without br_netfilter a container that re-enables IPv6 would talk link-local past them.
  p.nl.batch((b) => {
    b.setBridgePort(hostIdx, { hairpin: true, isolated: !n.icc });
    b.addClsact(hostIdx, { ingressBlock: GUARD_BLOCK });
  });
  configureInside(n, ep, o);
}

/** The container side of an attachment, in one batch: up, addresses, default routes (IPv6 on this interface
 *  only, when the network has it). Shared by every driver whose endpoint is a veth peer named ep.ifname. */
export function configureInside(n: NetworkRecord, ep: EndpointRecord, o: AttachOptions): void {
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
function detach(p: DriverPorts, ep: EndpointRecord): void {
  const link = ownedLink(p.nl, p.marks.owns, ep.hostIf);
  if (link) removeLink(p.nl, link.index);
}

/** Takes the host ends of veths that are left to die with their container's netns out of service at once: a port
 *  that is down gets no frames and the bridge forgets the MACs it learned on it, so an address (and its MAC)
 *  handed out again right away is reached on its new port, never in the dying netns. 0.07 ms per veth, where
 *  deleting it would wait ≈30 ms for the kernel. */
function quiesce(p: DriverPorts, eps: EndpointRecord[]): void {
  for (const ep of eps) {
    const idx = p.nl.ifindex(ep.hostIf);
    if (idx === null) continue;
    try {
      p.nl.setDown(idx);
    } catch (e) {
      // Already gone: the kernel finished deleting the pair between the lookup and now (its netns died).
      if ((e as { code?: string }).code !== 'ENODEV') throw e;
    }
  }
}

/** The bridge driver's kernel objects against its records: bridges and gateway addresses, the loopback guard
 *  (filter, the bridges' anchors, every port's binding), veths on their bridge, port isolation on icc=false
 *  networks, and marks that describe each object (src/engine/marks.ts). */
function diff(p: DriverPorts, v: DriverView): Finding[] {
  const out: Finding[] = [];
  const byName = new Map(v.links.map((l) => [l.name, l]));
  const addrs = v.networks.length ? p.nl.addresses() : [];
  const setups = new Map<string, () => string[]>();
  for (const n of v.networks) {
    const setup = once(() => { setupNetwork(p, n); return [`recreated bridge ${n.bridge} of ${n.name}`]; });
    setups.set(n.id, setup);
    const l = byName.get(n.bridge);
    if (!l) { out.push({ kind: 'missing-bridge', detail: `${n.name}: ${n.bridge}`, repair: setup }); continue; }
    for (const gw of [n.gateway, n.gateway6 ?? '']) {
      if (gw && !addrs.some((a) => a.index === l.index && a.address === gw)) out.push({ kind: 'missing-gateway', detail: `${n.name}: ${gw} on ${n.bridge}`, repair: setup });
    }
  }
  if (v.networks.length && !hasGuardFilter(p)) {
    out.push({
      kind: 'missing-guard', detail: `the tc loopback guard filter (block ${GUARD_BLOCK})`,
      repair: () => {
        for (const n of v.networks) {
          const l = ownedLink(p.nl, p.marks.owns, n.bridge);
          if (l) ensureGuardBlock(p, l.index, n.bridge);
        }
        return ['restored the tc loopback guard filter'];
      },
    });
  }
  const bridgeIndex = new Map(v.networks.map((n) => [n.id, byName.get(n.bridge)?.index]));
  const iccOff = new Set(v.networks.filter((n) => !n.icc).map((n) => n.id));
  const ports = iccOff.size ? new Map(p.nl.bridgePorts().map((x) => [x.index, x])) : null;
  const blocks = v.endpoints.length ? clsactBlocks(p) : new Map<number, number>();
  for (const e of v.endpoints) {
    if (v.lostContainers.has(e.containerId)) continue;
    const l = byName.get(e.hostIf);
    if (!l) { out.push({ kind: 'missing-veth', detail: `${e.containerName}: ${e.hostIf}` }); continue; }
    const br = bridgeIndex.get(e.networkId);
    if (l.master !== br) {
      out.push({
        kind: 'veth-not-on-bridge', detail: `${e.containerName}: ${e.hostIf}`,
        repair: () => {
          const idx = p.nl.ifindex(v.networks.find((n) => n.id === e.networkId)!.bridge);
          if (idx === null || !p.marks.owns(l.alias)) return [];
          p.nl.setMaster(l.index, idx);
          return [`put ${e.hostIf} of ${e.containerName} back on its bridge`];
        },
      });
    }
    if (p.marks.owns(l.alias) && !v.dying.has(e.hostIf) && blocks.get(l.index) !== GUARD_BLOCK) {
      out.push({
        kind: 'missing-guard', detail: `${e.containerName}: ${e.hostIf} is not bound to the tc loopback guard`,
        repair: () => (ensurePortGuard(p, l.index) ? [`bound ${e.hostIf} of ${e.containerName} to the loopback guard`] : []),
      });
    }
    if (l.master === br && ports && iccOff.has(e.networkId) && !ports.get(l.index)?.isolated) {
      out.push({
        kind: 'port-not-isolated', detail: `${e.containerName}: ${e.hostIf} (network has icc=false)`,
        repair: () => { p.nl.setBridgePort(l.index, { isolated: true }); return [`isolated port ${e.hostIf} of ${e.containerName} (icc=false)`]; },
      });
    }
  }
  // Marks that describe: objects made before marks described them get them, so that a lost store can be rebuilt
  // from them (src/engine/rebuild.ts). The engine says how many it described, in one line.
  for (const n of v.networks) {
    const l = byName.get(n.bridge);
    const want = p.marks.network(n);
    if (l && p.marks.owns(l.alias) && l.alias !== want) out.push({ kind: 'old-mark', detail: `${n.bridge} of ${n.name}`, repair: () => { p.nl.setAlias(l.index, want); return []; } });
  }
  for (const e of v.endpoints) {
    const l = byName.get(e.hostIf);
    const want = p.marks.endpoint(e);
    if (l && p.marks.owns(l.alias) && l.alias !== want && !v.dying.has(e.hostIf)) out.push({ kind: 'old-mark', detail: `${e.hostIf} of ${e.containerName}`, repair: () => { p.nl.setAlias(l.index, want); return []; } });
  }
  return out;
}

export const bridgeDriver: NetworkDriver = {
  name: 'bridge',
  scope: 'local',
  setupNetwork,
  teardownNetwork,
  attach,
  detach,
  quiesce,
  networkLinks: (n) => [n.bridge],
  diff,
};
