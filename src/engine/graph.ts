// `nsnet graph`: the host as the store and the kernel show it, drawn (src/graph/). The differences `check` finds
// are part of the picture (a missing veth drawn in red), so the graph shows what is, not only what should be.
import { buildGraph, type Graph } from '../graph/model.js';
import type { Host } from './host.js';
import { UserError } from '../util/errors.js';
import { check } from './reconcile.js';
import { refreshState } from './state.js';
import { impairmentText } from './netem.js';
import { partitionsView } from './partitions.js';

export function hostGraph(h: Host, only: string[] = []): Graph {
  const networks = h.store.networks();
  const user = new Set(networks.filter((n) => !n.isDefault).map((n) => n.id));
  const containers = h.store.containers().map((c0) => {
    const c = refreshState(h, c0);
    const endpoints = h.store.endpointsOf(c.id);
    // The names the resolver answers for it on each user-defined network (the default bridge has none, as Docker).
    const dnsNames = Object.fromEntries(endpoints.filter((e) => user.has(e.networkId)).map((e) => [e.networkId, [c.name, ...e.aliases, c.id.slice(0, 12)]]));
    return { ...c, endpoints, dnsNames };
  });
  for (const r of only) {
    if (!networks.some((n) => n.name === r || n.id === r)) throw new UserError(`network ${r} not found`, 'notfound');
  }
  const now = Date.now();
  const impairments = h.store.impairments().filter((r) => !r.pending && (r.expires === null || r.expires > now))
    .map((r) => ({ containerId: r.containerId, networkId: r.networkId, text: impairmentText(r) }));
  const idOf = new Map(containers.map((c) => [c.name, c.id]));
  const ids = (names: string[]) => names.map((n) => idOf.get(n)).filter((x): x is string => !!x);
  const partitions = partitionsView(h).filter((p) => !p.expired)
    .map((p) => ({ networkId: p.networkId, oneway: p.oneway, text: p.cut, groups: [...p.groups.map(ids), ...(p.rest.length ? [ids(p.rest)] : [])] }));
  return buildGraph({ networks, containers, differences: check(h), impairments, partitions, only });
}
