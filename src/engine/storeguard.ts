// A lost store is not a fresh install. When nsnet.db is gone or emptied (truncated, deleted, restored from
// nothing) while the kernel still holds objects marked with this host's id, the old store described running
// containers: treating the kernel objects as orphans would delete every veth and netns and kill every process in
// them. This module recognises that state, records it in the (new) store so it survives the next create, and
// makes reconcile refuse destructive orphan removal until the operator says `reconcile --force`.
import { isSafeName } from '../util/validate.js';
import type { Host } from './host.js';
import { ownedBy } from './marks.js';

const LOST_KEY = 'store.lost';

/** Whether the netns `name` (under /run/netns) is one nsnet made for this host: its loopback carries the host's
 *  mark (set in the request that brings it up, bridge.attach / buildSandbox). Namespaces from before the mark
 *  are not recognised (they are only removed through the store's own records). */
export function markedNetns(h: Host, name: string): boolean {
  if (!isSafeName(name)) return false;
  try {
    return h.kernel.netns.withNetlink(name, (nl) => nl.links().some((l) => l.index === 1 && ownedBy(l.alias, h.owner)));
  } catch {
    return false; // gone meanwhile, or not a netns
  }
}

/** The kernel objects marked with this host's id: links (bridges, veths) and namespaces (under the default root,
 *  whose namespaces have no prefix, every one under /run/netns is looked at: this runs on an empty store only). */
export function markedObjects(h: Host): { links: string[]; netns: string[] } {
  const links = h.nl.links().filter((l) => ownedBy(l.alias, h.owner)).map((l) => l.name);
  // No prefix to narrow them down: only when links say there was something (a netns opened per name otherwise).
  const netns = h.netnsPrefix || links.length ? h.kernel.netns.list().filter((n) => n.startsWith(h.netnsPrefix) && markedNetns(h, n)) : [];
  return { links, netns };
}

/** Called when a host is opened: an empty store (nothing recorded) while marked kernel objects exist is recorded
 *  as lost. Costs one indexed probe on a store that records something; a link dump on an empty one. Returns the
 *  warning to show, or null. */
export function guardStore(h: Host): string | null {
  let lost = h.store.getMeta(LOST_KEY);
  if (!lost && h.store.isEmpty()) {
    const m = markedObjects(h);
    // Looked at again after the kernel: another command may have recorded its first network between the two
    // looks (it records before it makes the bridge, so a bridge seen here means its row is visible now).
    if ((m.links.length || m.netns.length) && h.store.isEmpty()) {
      const some = (xs: string[]) => (xs.length ? ` (${[...xs].sort().slice(0, 8).join(', ')}${xs.length > 8 ? ', ...' : ''})` : '');
      lost = `${m.links.length} link(s)${some(m.links)} and ${m.netns.length} network namespace(s)${some(m.netns)} marked nsnet/${h.hostId}`;
      const seen = lost;
      h.store.tx(() => h.store.setMeta(LOST_KEY, seen));
    }
  }
  return lost ? lostMessage(h, lost) : null;
}

export function lostMessage(h: Host, what: string): string {
  return `the store ${h.store.file} was empty while the kernel held ${what} (the store was lost, emptied or replaced): ` +
    `nsnet does not know those containers and networks. Rebuild the store from them with nsnet reconcile --rebuild ` +
    `(or restore nsnet.db from a backup); ` +
    `nsnet reconcile will not remove them (nor kill their processes) unless you run nsnet reconcile --force`;
}

/** The recorded loss, or null. */
export function storeLost(h: Host): string | null {
  const v = h.store.getMeta(LOST_KEY);
  return v ? lostMessage(h, v) : null;
}

/** Records the store as lost, with what the kernel holds that it does not know (the rebuild's leftovers). */
export function setStoreLost(h: Host, what: string): void {
  h.store.tx(() => h.store.setMeta(LOST_KEY, what));
}

/** After `reconcile --force` has removed the orphans, or a rebuild placed everything: the store is the truth again. */
export function clearStoreLost(h: Host): void {
  h.store.tx(() => h.store.setMeta(LOST_KEY, ''));
}

/** Namespaces marked as this host's that the store knows nothing of (no row, pending or not, no garbage) and that
 *  still have processes inside. nsnet records every namespace before making it and before removing it, so these
 *  are not leftovers of a crash: the store does not match the kernel (lost, replaced, restored from an older
 *  backup), and removing them would kill containers someone runs. Cheap when there are none: one readdir. */
export function busyOrphanNetns(h: Host): Array<{ name: string; pids: number }> {
  if (!h.netnsPrefix) return [];
  const known = new Set<string>(h.store.allContainersIncludingPending().map((c) => c.netns));
  for (const g of h.store.garbage()) if (g.kind === 'netns') known.add(g.name);
  const out: Array<{ name: string; pids: number }> = [];
  for (const ns of h.kernel.netns.list()) {
    if (!ns.startsWith(h.netnsPrefix) || known.has(ns) || !markedNetns(h, ns)) continue;
    let pids = 0;
    try {
      pids = h.kernel.netns.pids(h.kernel.netns.inode(ns)).filter((p) => p !== process.pid).length;
    } catch { /* gone meanwhile */ }
    if (pids) out.push({ name: ns, pids });
  }
  return out;
}
