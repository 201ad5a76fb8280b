// Facts read from the host netns that planning needs.
import type { Host } from './host.js';

/** Destinations of the host's IPv4 and IPv6 routes of the main table (except default routes and nsnet's own
 *  bridges' routes), as CIDRs: a new network's subnet must not overlap them (Docker does the same check). */
export function hostRouteCidrs(h: Host, ownBridges: string[]): string[] {
  const own = new Set<number>();
  for (const l of h.nl.links()) if (ownBridges.includes(l.name)) own.add(l.index);
  const out: string[] = [];
  for (const r of h.nl.routes()) {
    if (r.prefixLen === 0) continue;
    if (r.oif !== null && own.has(r.oif)) continue;
    if (r.table !== 254) continue;
    out.push(`${r.dst}/${r.prefixLen}`);
  }
  return out;
}
