// What the listings show, decided once for the CLI and the library: which networks exist (the default bridge from
// the first command, as Docker's, even before it is made in the kernel; the pseudo networks host and none), how a
// network reference is found, and which containers a listing covers, newest first, with their state refreshed.
// The CLI only formats and filters these (src/cli/listing.ts).
import type { ContainerRecord, EndpointRecord, NetworkRecord } from '../types.js';
import { containerConfig } from './config.js';
import type { Host } from './host.js';
import { DEFAULT_NETWORK, defaultNetworkPreview } from './networks.js';
import { refreshState } from './state.js';
import { networkView, pseudoNetworkView } from './views.js';

export const PSEUDO_NETWORK_NAMES = ['host', 'none'] as const;

/** One row of `network ls`. */
export interface NetworkSummary {
  id: string;
  name: string;
  /** bridge, host or null (none). */
  driver: string;
  internal: boolean;
  labels: Record<string, string>;
  created: string;
  /** Predefined (bridge, host, none): cannot be created or removed. */
  builtin: boolean;
}

/** Every network a user can name, by name: the default bridge, user-defined networks, host and none. */
export function listNetworks(h: Host): NetworkSummary[] {
  const def = defaultNetworkPreview(h);
  return [
    ...[def, ...h.store.networks().filter((n) => !n.isDefault)].map((n) => ({
      id: n.id, name: n.name, driver: n.driver, internal: n.internal, labels: n.labels, created: n.created, builtin: n.isDefault,
    })),
    ...PSEUDO_NETWORK_NAMES.map((p) => ({ id: pseudoNetworkView(p).Id as string, name: p, driver: p === 'host' ? 'host' : 'null', internal: false, labels: {}, created: '', builtin: true })),
  ].sort((a, b) => a.name.localeCompare(b.name));
}

/** A network's Docker-shaped view by name, id or id prefix (as `network inspect`), or null. */
export function findNetworkView(h: Host, ref: string): Record<string, unknown> | null {
  if ((PSEUDO_NETWORK_NAMES as readonly string[]).includes(ref)) return pseudoNetworkView(ref as 'host' | 'none');
  const n = h.store.findNetwork(ref);
  if (n) return networkView(n, h.store.endpointsOn(n.id));
  if (ref === '') return null;
  const hex = /^[0-9a-f]{1,64}$/.test(ref);
  for (const p of PSEUDO_NETWORK_NAMES) if (hex && (pseudoNetworkView(p).Id as string).startsWith(ref)) return pseudoNetworkView(p);
  const def = defaultNetworkPreview(h);
  if (ref === DEFAULT_NETWORK || (hex && def.id.startsWith(ref))) return networkView(def, h.store.endpointsOn(def.id));
  return null;
}

/** One container of a listing with what filters and rows need. */
export interface ContainerListing {
  c: ContainerRecord;
  eps: EndpointRecord[];
  nets: Map<string, NetworkRecord>;
  labels: Record<string, string>;
}

/** Containers newest first (as Docker's ps), states refreshed; only running ones unless `all`. */
export function listContainers(h: Host, all: boolean): ContainerListing[] {
  const nets = new Map(h.store.networks().map((n) => [n.id, n]));
  // One query for every endpoint (a query per container cost ≈20 µs each).
  const epsOf = new Map<string, EndpointRecord[]>();
  for (const e of h.store.endpoints()) {
    const l = epsOf.get(e.containerId);
    if (l) l.push(e);
    else epsOf.set(e.containerId, [e]);
  }
  return h.store.containers().map((c) => refreshState(h, c))
    .sort((a, b) => (a.created < b.created ? 1 : a.created > b.created ? -1 : 0))
    .filter((c) => all || c.state === 'running')
    .map((c) => {
      let labels: Record<string, string> | undefined;
      // Read from the container's config.json only when a filter or a format asks for them.
      return { c, eps: epsOf.get(c.id) ?? [], nets, get labels() { return (labels ??= containerConfig(h, c).labels); } };
    });
}
