// The bridge driver: what the seed document does by hand with `ip link add ... type bridge`, veth pairs,
// `ip addr add`, `ip route add default via`, done with a handful of rtnetlink requests.
import { Netlink, NetlinkError } from '../kernel/netlink.js';
import { writeSysctl } from '../kernel/sysctl.js';
import type { EndpointRecord, NetworkRecord } from '../types.js';
import { parseCidr } from '../util/ip.js';
import { macFromIp } from '../ipam/ipam.js';
import type { Host } from '../engine/host.js';

function prefixOf(n: NetworkRecord): number {
  return parseCidr(n.subnet).prefix;
}

/** Creates (or adopts, if it is already ours) the bridge with the gateway address, and enables forwarding. */
export function setupNetwork(h: Host, n: NetworkRecord): void {
  const nl = h.nl;
  let link = nl.linkByName(n.bridge);
  if (link && link.alias !== h.owner) {
    throw new NetlinkError(`interface ${n.bridge} already exists and is not nsnet's`, 'EEXIST', 17, 'createBridge');
  }
  // A fixed MAC (derived from the gateway, like containers' own): otherwise the bridge takes the lowest MAC of
  // its ports, changing whenever a container comes or goes, and containers' ARP entries for the gateway go stale.
  const index = link ? link.index : nl.createBridge(n.bridge, { mtu: n.mtu, alias: h.owner, up: true, mac: macFromIp(n.gateway) });
  if (link) nl.setUp(index);
  const prefix = prefixOf(n);
  const has = nl.addresses().some((a) => a.index === index && a.address === n.gateway && a.prefixLen === prefix);
  if (!has) nl.addAddress(index, n.gateway, prefix);
  link = null;
  h.inHost(() => {
    writeSysctl('net.ipv4.ip_forward', '1');
    // Lets DNAT of 127.0.0.1:PORT to a container leave through the bridge (KERNEL-NOTES pitfall 10).
    writeSysctl(`net.ipv4.conf.${n.bridge.replace(/\./g, '/')}.route_localnet`, '1');
  });
}

export function teardownNetwork(h: Host, n: NetworkRecord): void {
  const link = ownedLink(h, n.bridge);
  if (link) h.nl.deleteLink(link.index);
}

/** The link named `name` if nsnet made it on this host (it carries the host's owner alias), else null. */
export function ownedLink(h: Host, name: string): { index: number } | null {
  const link = h.nl.linkByName(name);
  return link && link.alias === h.owner ? link : null;
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
  /** Also bring the container's loopback (always ifindex 1 in a new netns) up in the same batch. */
  loUp?: boolean;
}

/** veth pair with the host end on the bridge and the peer (named ep.ifname) inside the container, then the
 *  container side in one batch: up, address, default route. The host port gets hairpin mode (as Docker without
 *  userland proxy): with br_netfilter on, a container reaching its own published port is DNATed back out of
 *  the port it came in through, which a bridge otherwise refuses. */
export function attach(h: Host, n: NetworkRecord, ep: EndpointRecord, o: AttachOptions): void {
  const br = h.nl.ifindex(n.bridge);
  if (br === null) throw new Error(`bridge ${n.bridge} of network ${n.name} is missing (run: nsnet reconcile)`);
  const hostIdx = h.nl.createVeth(ep.hostIf, ep.ifname, o.nsFd, { master: br, mtu: n.mtu, peerMac: ep.mac, alias: h.owner, up: true });
  h.nl.setBridgePort(hostIdx, { hairpin: true });
  const peer = o.cnl.ifindex(ep.ifname);
  if (peer === null) throw new Error(`veth peer ${ep.ifname} did not appear in the container`);
  const prefix = prefixOf(n);
  o.cnl.batch((b) => {
    // lo also carries the host's mark (in the same send): reconcile recognises the netns as nsnet's by it, not by
    // its name alone (a user's `ip netns add nsnet-<hostid>-x` is left alone).
    if (o.loUp) b.setUp(1).setAlias(1, h.owner);
    b.setUp(peer);
    b.addAddress(peer, ep.ip, prefix);
    if (o.defaultRoute) b.addRoute({ dst: '0.0.0.0', prefixLen: 0, gateway: n.gateway });
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
    if (idx !== null) h.nl.setDown(idx);
  }
}
