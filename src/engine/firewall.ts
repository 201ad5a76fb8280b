// Glue between the store and the pure firewall generator: derive the desired state, apply it in one
// libnftables transaction in the host netns.
import { renderPortDelta, renderRuleset } from '../firewall/ruleset.js';
import type { ContainerRecord, FirewallState } from '../types.js';
import type { Host } from './host.js';

/** The container whose endpoint carries its published ports: its first network (eth0). */
function portsOf(h: Host, c: ContainerRecord, state: FirewallState['ports'], nets: Map<string, FirewallState['networks'][number]>): void {
  if (!c.ports.length || c.mode !== 'bridge') return;
  const eps = h.store.endpointsOf(c.id).filter((e) => nets.has(e.networkId) && !nets.get(e.networkId)!.internal);
  const ep = eps[0];
  if (!ep) return;
  for (const p of c.ports) state.push({ ...p, containerId: c.id, containerIp: ep.ip, networkId: ep.networkId });
}

/** The networks as the firewall generator sees them. */
function fwNetworks(h: Host): FirewallState['networks'] {
  return h.store.networks().map((n) => ({
    id: n.id, name: n.name, bridge: n.bridge, subnet: n.subnet, gateway: n.gateway, internal: n.internal, icc: n.icc,
    ...(n.options.masquerade === 'false' ? { masquerade: false } : {}),
  }));
}

export function firewallState(h: Host): FirewallState {
  const networks = fwNetworks(h);
  const byId = new Map(networks.map((n) => [n.id, n]));
  const ports: FirewallState['ports'] = [];
  for (const c of h.store.containers()) portsOf(h, c, ports, byId);
  return { networks, ports };
}

/** Replaces nsnet's tables with the ruleset derived from the store (one atomic transaction). */
export function applyFirewall(h: Host): void {
  h.nft.run(renderRuleset(firewallState(h)));
}

/** Published ports of one container, in firewall form (for incremental add/remove). */
export function containerPorts(h: Host, c: ContainerRecord): FirewallState['ports'] {
  const nets = new Map(fwNetworks(h).map((n) => [n.id, n]));
  const out: FirewallState['ports'] = [];
  portsOf(h, c, out, nets);
  return out;
}

/** Adds/removes map elements only: O(ports changed), one transaction. */
export function applyPortDelta(h: Host, added: FirewallState['ports'], removed: FirewallState['ports']): void {
  if (!added.length && !removed.length) return;
  h.nft.run(renderPortDelta(added, removed));
}
