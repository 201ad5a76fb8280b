// The engine's side of the driver seam (src/drivers/driver.ts): the driver of a network or an endpoint, looked up
// from the records, called with the host's ports (Host.ports). No use case names a driver.
import { driverOf } from '../drivers/registry.js';
import type { AttachOptions, NetworkDriver } from '../drivers/driver.js';
import { removeOwnedLink } from '../drivers/links.js';
import type { EndpointRecord, NetworkRecord } from '../types.js';
import type { Host } from './host.js';

export function driverFor(n: NetworkRecord): NetworkDriver {
  return driverOf(n);
}

export function setupNetwork(h: Host, n: NetworkRecord): void {
  driverOf(n).setupNetwork(h.ports, n);
}

export function teardownNetwork(h: Host, n: NetworkRecord): void {
  driverOf(n).teardownNetwork(h.ports, n);
}

export function attachEndpoint(h: Host, n: NetworkRecord, ep: EndpointRecord, o: AttachOptions): void {
  driverOf(n).attach(h.ports, n, ep, o);
}

/** Disconnects an endpoint through its network's driver; an endpoint whose network row is gone (a damaged store)
 *  has only its marked host-side link removed. */
export function detachEndpoint(h: Host, ep: EndpointRecord): void {
  const n = h.store.networkById(ep.networkId);
  if (n) driverOf(n).detach(h.ports, ep);
  else removeOwnedLink(h.nl, h.ports.marks.owns, ep.hostIf);
}

/** Takes endpoints left to die with their netns out of service, each through its network's driver. */
export function quiesceEndpoints(h: Host, eps: EndpointRecord[]): void {
  const byNet = new Map<string, EndpointRecord[]>();
  for (const ep of eps) byNet.set(ep.networkId, [...(byNet.get(ep.networkId) ?? []), ep]);
  for (const [id, list] of byNet) {
    const n = h.store.networkById(id);
    if (n) driverOf(n).quiesce(h.ports, list);
  }
}
