// The overlay driver (issue #17): one L2 segment across the hosts of a cluster. On each host a network is what the
// bridge driver makes (a bridge holding the gateway address, a veth per local endpoint, the loopback guard) plus a
// VXLAN device on that bridge:
//   - VNI from the cluster (network option com.docker.network.driver.overlay.vxlanid_list, Docker's key), UDP port
//     4789 (IANA; the kernel's default without the attribute would be 8472: docs/kernel-notes.md §17), the local
//     end this host's --advertise address, learning off, ARP/ND proxy on;
//   - its forwarding entries programmed from the cluster, never learned and never multicast: for every endpoint of
//     another host, MAC -> that host's underlay address, and a permanent neighbour entry IP -> MAC that the proxy
//     answers ARP/ND from (no ARP crosses the underlay); for every such host, one all-zeros entry (broadcast and
//     unknown traffic, head-end replicated);
//   - MTU: the network's (the underlay's minus 50, set on the bridge, the VXLAN device and every container
//     interface: a container MTU above the VXLAN port's loses big packets silently at the bridge).
// Every host's bridge holds the same gateway address and MAC (a distributed gateway, as EVPN's anycast gateway):
// each host routes and masquerades its own containers' traffic out of its own uplink, answers DNS on it, and
// publishes its own ports. The proxy never answers for the gateway (no neighbour entry): a container's ARP for it
// is answered by its own host's bridge only.
//
// The other hosts' endpoints come from the store's mirror of the cluster (remote_endpoints, kept by the cluster
// agent, src/cluster/agent.ts): setup, check and reconcile compare the kernel with that mirror only, synchronously;
// talking to etcd is the agent's.
import { FLOOD_MAC, NetlinkError, VXLAN_PORT, type FdbInfo, type LinkInfo, type NeighbourInfo } from '../kernel/netlink.js';
import type { NetworkRecord, RemoteEndpoint } from '../types.js';
import { bridgeDriver, ensurePortGuard } from './bridge.js';
import type { DriverPorts, DriverView, Finding, NetworkDriver } from './driver.js';
import { ownedLink } from './links.js';

/** Docker's option for an overlay network's VXLAN id(s). */
export const VNI_OPTION = 'com.docker.network.driver.overlay.vxlanid_list';

export function vxlanName(n: NetworkRecord): string {
  return `nsvx-${n.id.slice(0, 10)}`;
}

export function vniOf(n: NetworkRecord): number {
  const v = Number(n.options[VNI_OPTION]);
  if (!Number.isInteger(v) || v < 1 || v > 0xffffff) throw new Error(`overlay network ${n.name} has no valid VXLAN id (${VNI_OPTION}=${JSON.stringify(n.options[VNI_OPTION])})`);
  return v;
}

function clusterOf(p: DriverPorts, n: NetworkRecord): NonNullable<DriverPorts['cluster']> {
  const c = p.cluster;
  if (!c) throw new Error(`network ${n.name} is an overlay network and this host is in no cluster (nsnet cluster join)`);
  return c;
}

function vxlanMatches(l: LinkInfo, n: NetworkRecord, local: string): boolean {
  const v = l.vxlan;
  return !!v && v.vni === vniOf(n) && v.port === VXLAN_PORT && v.local === local && !v.learning && v.proxy;
}

/** The bridge (bridge driver), then the VXLAN device on it (re-made if its configuration is not nsnet's: the kernel
 *  cannot change a VXLAN device's settings in place), then its forwarding entries. Idempotent. */
function setupNetwork(p: DriverPorts, n: NetworkRecord): void {
  const c = clusterOf(p, n);
  bridgeDriver.setupNetwork(p, n);
  const br = p.nl.ifindex(n.bridge);
  if (br === null) throw new Error(`bridge ${n.bridge} of network ${n.name} did not appear`);
  const name = vxlanName(n);
  let vx = p.nl.linkByName(name);
  if (vx && !p.marks.owns(vx.alias)) throw new NetlinkError(`interface ${name} already exists and is not nsnet's`, 'EEXIST', 17, 'createVxlan');
  if (vx && !vxlanMatches(vx, n, c.advertise)) {
    p.nl.deleteLink(vx.index);
    vx = null;
  }
  const index = vx ? vx.index : p.nl.createVxlan(name, {
    vni: vniOf(n), local: c.advertise, port: VXLAN_PORT, learning: false, proxy: true, mtu: n.mtu, master: br,
    alias: p.marks.device(n, 'vxlan'), up: true,
  });
  if (vx) {
    if (vx.master !== br) p.nl.setMaster(index, br);
    if (!vx.up) p.nl.setUp(index);
  }
  // No MAC learning on the VXLAN port: the bridge would keep a remote MAC there after its container moved (an
  // address, and the MAC derived from it, handed out again on this host would get its frames sent back into the
  // tunnel, where they are dropped). Frames for remote MACs are flooded to the VXLAN port, whose own entries send
  // each to its host. And frames arriving from the underlay pass the same loopback guard as local containers'.
  const port = p.nl.bridgePorts().find((x) => x.index === index);
  if (!port || port.learning) p.nl.setBridgePort(index, { learning: false });
  ensurePortGuard(p, index);
  programPeers(p, n, index, c.remoteEndpoints(n.id));
}

function teardownNetwork(p: DriverPorts, n: NetworkRecord): void {
  const vx = ownedLink(p.nl, p.marks.owns, vxlanName(n));
  if (vx) p.nl.deleteLink(vx.index);
  bridgeDriver.teardownNetwork(p, n);
}

interface PeerPlan {
  fdb: { add: Array<{ mac: string; dst: string; flood: boolean }>; del: Array<{ mac: string; dst: string }> };
  neigh: { add: Array<{ ip: string; mac: string }>; del: string[] };
}

/** What the VXLAN device's entries must become for `remotes` (pure). */
export function planPeers(remotes: readonly RemoteEndpoint[], fdb: readonly FdbInfo[], neigh: readonly NeighbourInfo[]): PeerPlan {
  const wantFdb = new Map<string, { mac: string; dst: string; flood: boolean }>();
  for (const r of remotes) {
    wantFdb.set(`${r.mac} ${r.underlay}`, { mac: r.mac, dst: r.underlay, flood: false });
    wantFdb.set(`${FLOOD_MAC} ${r.underlay}`, { mac: FLOOD_MAC, dst: r.underlay, flood: true });
  }
  const haveFdb = new Set<string>();
  const plan: PeerPlan = { fdb: { add: [], del: [] }, neigh: { add: [], del: [] } };
  for (const f of fdb) {
    if (!f.self || f.dst === null) continue;
    const k = `${f.mac} ${f.dst}`;
    haveFdb.add(k);
    if (!wantFdb.has(k)) plan.fdb.del.push({ mac: f.mac, dst: f.dst });
  }
  for (const [k, v] of wantFdb) if (!haveFdb.has(k)) plan.fdb.add.push(v);
  const wantNeigh = new Map<string, string>();
  for (const r of remotes) for (const ip of [r.ip, r.ip6]) if (ip) wantNeigh.set(ip, r.mac);
  const haveNeigh = new Map(neigh.filter((x) => x.permanent).map((x) => [x.ip, x.mac]));
  for (const [ip, mac] of haveNeigh) if (wantNeigh.get(ip) !== mac) plan.neigh.del.push(ip);
  for (const [ip, mac] of wantNeigh) if (haveNeigh.get(ip) !== mac) plan.neigh.add.push({ ip, mac });
  return plan;
}

function planFor(p: DriverPorts, index: number, remotes: readonly RemoteEndpoint[]): PeerPlan {
  return planPeers(remotes, p.nl.fdbEntries(index), p.nl.neighbours(index));
}

function planSize(x: PeerPlan): number {
  return x.fdb.add.length + x.fdb.del.length + x.neigh.add.length + x.neigh.del.length;
}

/** Makes the VXLAN device's entries exactly what `remotes` need; returns how many entries changed. */
function programPeers(p: DriverPorts, n: NetworkRecord, index: number, remotes: readonly RemoteEndpoint[]): number {
  const plan = planFor(p, index, remotes);
  if (!planSize(plan)) return 0;
  p.nl.batch((b) => {
    for (const d of plan.neigh.del) b.deleteNeighbour(index, d);
    for (const d of plan.fdb.del) b.deleteFdb(index, d.mac, d.dst);
    for (const a of plan.fdb.add) {
      if (a.flood) b.appendFdb(index, a.mac, a.dst);
      else b.addFdb(index, a.mac, a.dst, { replace: true });
    }
    for (const a of plan.neigh.add) b.addNeighbour(index, a.ip, a.mac, { replace: true });
  });
  void n;
  return planSize(plan);
}

/** The bridge driver's findings for the bridge side, then the VXLAN device (present, configured as nsnet makes it)
 *  and its forwarding entries against the store's mirror of the other hosts' endpoints. */
function diff(p: DriverPorts, v: DriverView): Finding[] {
  const out = bridgeDriver.diff(p, v);
  const c = p.cluster;
  const byName = new Map(v.links.map((l) => [l.name, l]));
  let portMap: Map<number, { learning: boolean }> | null = null;
  const ports = () => (portMap ??= new Map(p.nl.bridgePorts().map((x) => [x.index, x])));
  for (const n of v.networks) {
    const setup = () => { setupNetwork(p, n); return [`recreated the VXLAN device ${vxlanName(n)} of ${n.name}`]; };
    if (!c) {
      out.push({ kind: 'overlay-no-cluster', detail: `${n.name}: an overlay network, and this host is in no cluster (nsnet cluster join, or nsnet network rm ${n.name})` });
      continue;
    }
    const vx = byName.get(vxlanName(n));
    if (!vx) { out.push({ kind: 'missing-vxlan', detail: `${n.name}: ${vxlanName(n)}`, repair: setup }); continue; }
    if (!vxlanMatches(vx, n, c.advertise)) { out.push({ kind: 'vxlan-config', detail: `${n.name}: ${vxlanName(n)} is not VNI ${vniOf(n)}, port ${VXLAN_PORT}, local ${c.advertise}, learning off, proxy on`, repair: setup }); continue; }
    const br = byName.get(n.bridge);
    if (br && vx.master !== br.index) out.push({ kind: 'veth-not-on-bridge', detail: `${n.name}: ${vxlanName(n)} is not on ${n.bridge}`, repair: setup });
    else if (ports().get(vx.index)?.learning !== false) out.push({ kind: 'vxlan-learning', detail: `${n.name}: the bridge learns MACs on ${vxlanName(n)}`, repair: () => { p.nl.setBridgePort(vx.index, { learning: false }); return [`turned MAC learning off on ${vxlanName(n)} of ${n.name}`]; } });
    const remotes = c.remoteEndpoints(n.id);
    const plan = planFor(p, vx.index, remotes);
    if (planSize(plan)) {
      const parts = [
        plan.fdb.add.length ? `${plan.fdb.add.length} forwarding entr${plan.fdb.add.length > 1 ? 'ies' : 'y'} missing` : '',
        plan.fdb.del.length ? `${plan.fdb.del.length} forwarding entr${plan.fdb.del.length > 1 ? 'ies' : 'y'} of no known endpoint` : '',
        plan.neigh.add.length ? `${plan.neigh.add.length} neighbour entr${plan.neigh.add.length > 1 ? 'ies' : 'y'} missing` : '',
        plan.neigh.del.length ? `${plan.neigh.del.length} neighbour entr${plan.neigh.del.length > 1 ? 'ies' : 'y'} of no known endpoint` : '',
      ].filter(Boolean).join(', ');
      out.push({
        kind: 'overlay-peers', detail: `${n.name}: ${parts} on ${vxlanName(n)}`,
        repair: () => { const k = programPeers(p, n, vx.index, c.remoteEndpoints(n.id)); return k ? [`programmed ${k} forwarding/neighbour entr${k > 1 ? 'ies' : 'y'} of ${n.name}`] : []; },
      });
    }
  }
  return out;
}

/** Re-programs one network's forwarding entries from the store's mirror (the cluster agent, after a change);
 *  returns how many entries changed, 0 when the network's VXLAN device is not there (reconcile makes it). */
export function syncPeers(p: DriverPorts, n: NetworkRecord): number {
  const c = p.cluster;
  const vx = c ? ownedLink(p.nl, p.marks.owns, vxlanName(n)) : null;
  return c && vx ? programPeers(p, n, vx.index, c.remoteEndpoints(n.id)) : 0;
}

export const overlayDriver: NetworkDriver = {
  name: 'overlay',
  scope: 'cluster',
  setupNetwork,
  teardownNetwork,
  attach: bridgeDriver.attach,
  detach: bridgeDriver.detach,
  quiesce: bridgeDriver.quiesce,
  networkLinks: (n) => [n.bridge, vxlanName(n)],
  diff,
};
