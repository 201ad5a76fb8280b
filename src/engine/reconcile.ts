// Make the kernel match the store (and finish what a crash interrupted), or just report the differences.
import fs from 'node:fs';
import * as bridge from '../drivers/bridge.js';
import { withNetnsNetlink } from '../kernel/netlink.js';
import { deleteNetns, listNetns, netnsExists } from '../kernel/netns.js';
import { killNetnsProcesses } from '../kernel/proc.js';
import { containerMark, endpointMark, networkMark, ownedBy } from './marks.js';
import { writeSavedCopy } from './netcopy.js';
import { NAMES } from '../firewall/model.js';
import { buildModel } from '../firewall/ruleset.js';
import { applyFirewall, compareFirewall, describeForeignDrop, firewallState, foreignDrops, foreignOwner, listedTable, ownerOf } from './firewall.js';
import type { Host } from './host.js';
import type { ContainerRecord } from '../types.js';
import { refreshState } from './state.js';
import { notifyDns, resolverRunning } from './dnsctl.js';
import { isSafeName } from '../util/validate.js';
import { UserError } from '../util/errors.js';
import { busyOrphanNetns, clearStoreLost, markedNetns, storeLost } from './storeguard.js';
import { checkCni, reconcileCni } from './cni-state.js';
import { checkNetem, expireImpairments, reconcileNetem } from './netem.js';
import { expirePartitions, missingTimers, restartTimers } from './partitions.js';
import { removeTraceChains, traceChains } from './tracerule.js';

export interface Difference {
  kind: string;
  detail: string;
}

/** How long the kernel gets to remove the veth of a deleted container netns before nsnet deletes it itself (a
 *  process nsnet could not end, or another program's open fd, may keep the netns alive). The kernel needs
 *  ≈0.2 s after a burst of hundreds of removals. */
export const DYING_GRACE_MS = 5000;

/** Dying veths: drops the rows of those the kernel has removed; deletes those still there after the grace
 *  period (or all of them with `now`). Cheap enough for every mutating command: rows younger than
 *  `minAgeMs` are not even looked at, so each row is usually probed once. Call with the host lock held. */
export function sweepDyingLinks(h: Host, minAgeMs = 250, now = false): number {
  const t = Date.now();
  const rows = h.store.dyingLinks(t - minAgeMs);
  if (!rows.length) return 0;
  const done: number[] = [];
  let forced = 0;
  for (const g of rows) {
    const l = bridge.ownedLink(h, g.name);
    if (l) {
      if (!now && t - g.since < DYING_GRACE_MS) continue;
      forced++;
      bridge.removeLink(h, l.index);
    }
    done.push(g.id);
  }
  h.store.tx(() => h.store.dropGarbage(done));
  return forced;
}

/** Waits until the kernel has removed the veths of deleted containers (normally within a fraction of a second);
 *  past `timeoutMs` deletes those left itself and returns how many. For callers that count kernel objects right after removals. */
export async function settle(h: Host, timeoutMs = DYING_GRACE_MS): Promise<number> {
  const end = Date.now() + timeoutMs;
  let forced = 0;
  for (;;) {
    const left = h.lock.with(() => {
      forced += sweepDyingLinks(h, 0, Date.now() >= end);
      return h.store.dyingLinks().length;
    });
    if (!left) return forced;
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Differences between store and kernel, without changing anything. A dying veth (its netns deleted by `rm`) is
 *  not a difference while the kernel is within the grace period of removing it. */
export function check(h: Host): Difference[] {
  const diffs: Difference[] = [];
  const lost = storeLost(h);
  if (lost) diffs.push({ kind: 'store-lost', detail: lost });
  const dying = new Set<string>();
  for (const g of h.store.garbage()) {
    if ((g.kind === 'netns' || g.kind === 'dir') && !isSafeName(g.name)) {
      diffs.push({ kind: 'invalid-name', detail: `unfinished removal of ${g.kind} ${JSON.stringify(g.name)}: not a file name (reconcile drops the row)` });
      continue;
    }
    // A veth left to die (its host end out of service, down): the kernel removes it with its netns, or, when a
    // netns outlives the grace period (held by someone, or a CNI runtime's kept after DEL), the next nsnet command
    // deletes it (sweepDyingLinks). Either way nothing is wrong and nothing is asked of the user.
    if (g.kind === 'veth') {
      dying.add(g.name);
      continue;
    }
    diffs.push({ kind: 'unfinished-removal', detail: `${g.kind} ${g.name}` });
  }
  for (const n of h.store.allNetworksIncludingPending()) if (n.pending) diffs.push({ kind: 'unfinished-create', detail: `network ${n.name}` });
  for (const c of h.store.allContainersIncludingPending()) if (c.pending) diffs.push({ kind: 'unfinished-create', detail: `container ${c.name}` });
  for (const e of h.store.allEndpointsIncludingPending()) if (e.pending) diffs.push({ kind: 'unfinished-connect', detail: `${e.containerName} ${e.hostIf}` });

  const links = h.nl.links();
  const byName = new Map(links.map((l) => [l.name, l]));
  const networks = h.store.networks();
  const endpoints = h.store.endpoints();
  const addrs = h.nl.addresses();
  for (const n of networks) {
    const l = byName.get(n.bridge);
    if (!l) { diffs.push({ kind: 'missing-bridge', detail: `${n.name}: ${n.bridge}` }); continue; }
    if (n.gateway && !addrs.some((a) => a.index === l.index && a.address === n.gateway)) diffs.push({ kind: 'missing-gateway', detail: `${n.name}: ${n.gateway} on ${n.bridge}` });
    if (n.gateway6 && !addrs.some((a) => a.index === l.index && a.address === n.gateway6)) diffs.push({ kind: 'missing-gateway', detail: `${n.name}: ${n.gateway6} on ${n.bridge}` });
  }
  const containers = new Map(h.store.containers().map((c) => [c.id, c]));
  for (const e of endpoints) {
    const c = containers.get(e.containerId);
    if (c && c.netns && (!isSafeName(c.netns) || !netnsExists(c.netns))) continue; // reported below
    if (!byName.has(e.hostIf)) diffs.push({ kind: 'missing-veth', detail: `${e.containerName}: ${e.hostIf}` });
  }
  const bridgeIndex = new Map(networks.map((n) => [n.id, byName.get(n.bridge)?.index]));
  const iccOff = new Set(networks.filter((n) => !n.icc).map((n) => n.id));
  const ports = iccOff.size ? new Map(h.nl.bridgePorts().map((p) => [p.index, p])) : null;
  const blocks = endpoints.length ? bridge.clsactBlocks(h) : new Map<number, number>();
  if (networks.length && !bridge.hasGuardFilter(h)) diffs.push({ kind: 'missing-guard', detail: `the tc loopback guard filter (block ${bridge.GUARD_BLOCK})` });
  for (const e of endpoints) {
    const l = byName.get(e.hostIf);
    if (l && l.master !== bridgeIndex.get(e.networkId)) diffs.push({ kind: 'veth-not-on-bridge', detail: `${e.containerName}: ${e.hostIf}` });
    if (l && ownedBy(l.alias, h.owner) && !dying.has(e.hostIf) && blocks.get(l.index) !== bridge.GUARD_BLOCK) diffs.push({ kind: 'missing-guard', detail: `${e.containerName}: ${e.hostIf} is not bound to the tc loopback guard` });
    if (l && l.master === bridgeIndex.get(e.networkId) && ports && iccOff.has(e.networkId) && !ports.get(l.index)?.isolated) {
      diffs.push({ kind: 'port-not-isolated', detail: `${e.containerName}: ${e.hostIf} (network has icc=false)` });
    }
  }
  for (const c of containers.values()) {
    if (!c.netns) continue;
    if (!isSafeName(c.netns) || !isSafeName(c.id)) {
      diffs.push({ kind: 'invalid-name', detail: `container ${JSON.stringify(c.name)}: netns ${JSON.stringify(c.netns)} / id ${JSON.stringify(c.id)} is not a file name (a damaged store row; nsnet rm removes the row and touches nothing else)` });
      continue;
    }
    if (!netnsExists(c.netns)) {
      // A lost sandbox of an exited container (reboot-like) is a known state: `start` rebuilds it.
      const lost = c.state !== 'running' && !endpoints.some((e) => e.containerId === c.id);
      if (!lost) diffs.push({ kind: 'missing-netns', detail: `${c.name}: ${c.netns}` });
      continue;
    }
    // Inside the container: every endpoint's interface carries its address.
    withNetnsNetlink(c.netns, (cnl) => {
      const clinks = new Map(cnl.links().map((l) => [l.name, l.index]));
      const caddrs = cnl.addresses();
      for (const e of endpoints.filter((x) => x.containerId === c.id)) {
        const idx = clinks.get(e.ifname);
        for (const ip of [e.ip, e.ip6 ?? '']) {
          if (ip && (idx === undefined || !caddrs.some((a) => a.index === idx && a.address === ip))) {
            diffs.push({ kind: 'missing-address', detail: `${c.name}: ${e.ifname} ${ip}` });
          }
        }
      }
    });
  }
  const knownLinks = new Set([...networks.map((n) => n.bridge), ...endpoints.map((e) => e.hostIf)]);
  for (const l of links) if (ownedBy(l.alias, h.owner) && !knownLinks.has(l.name) && !dying.has(l.name)) diffs.push({ kind: 'orphan-link', detail: l.name });
  const knownNs = new Set([...containers.values()].map((c) => c.netns).filter(Boolean));
  if (h.netnsPrefix) {
    for (const ns of listNetns()) {
      if (ns.startsWith(h.netnsPrefix) && !knownNs.has(ns) && markedNetns(h, ns)) diffs.push({ kind: 'orphan-netns', detail: ns });
    }
  }
  diffs.push(...checkCni(h)); // attachments made through CNI: the runtime's netns and what is inside
  diffs.push(...checkNetem(h)); // link impairments (src/engine/netem.ts)
  // Partitions: one whose --duration ran out is healed by the next command or reconcile (and not wanted by the
  // firewall any more); one whose timer process is gone gets a new one from reconcile.
  const now = Date.now();
  const netName = (id: string) => h.store.networkById(id)?.name ?? id.slice(0, 12);
  for (const p of h.store.partitions()) {
    if (p.expires !== null && p.expires <= now) diffs.push({ kind: 'partition-expired', detail: `network ${netName(p.networkId)}: its partition expired at ${new Date(p.expires).toISOString()} and is not healed yet` });
  }
  for (const p of missingTimers(h, now)) diffs.push({ kind: 'partition-timer', detail: `network ${netName(p.networkId)}: the timer that heals its partition at ${new Date(p.expires!).toISOString()} is not running` });
  const fw = firewallDiff(h);
  if (fw) diffs.push({ kind: 'firewall', detail: fw });
  // A trace rule of `nsnet explain --trace` exists only while its probe runs: one found here was left behind.
  for (const c of traceChains(h)) diffs.push({ kind: 'trace-rule', detail: `table ${c.family} ${NAMES.table} chain ${c.chain}: left behind by nsnet explain --trace (reconcile removes it)` });
  // Not a difference nsnet can repair, but one that silently breaks it: another table's drop-policy chain.
  for (const d of foreignDrops(h)) diffs.push({ kind: 'foreign-firewall', detail: describeForeignDrop(d) });
  const needDns = networks.some((n) => !n.isDefault);
  if (needDns !== resolverRunning(h)) diffs.push({ kind: 'dns', detail: needDns ? 'the resolver is not running' : 'a resolver runs without user-defined networks' });
  return diffs;
}

/** Compares nsnet's tables in the kernel with the model built from the store (compareFirewall): table presence,
 *  bridges set, every published port's DNAT element, every chain's rule count, the owner set, the bridge table.
 *  Returns what differs ('' when they agree). */
function firewallDiff(h: Host): string {
  const state = firewallState(h);
  const other = foreignOwner(h);
  if (other) {
    return state.networks.length ? `table inet ${NAMES.table} belongs to another nsnet (state directory ${other.root}, id nsnet/${other.id})` : '';
  }
  const want = buildModel(state, ownerOf(h));
  return compareFirewall(want, listedTable(h, 'inet'), () => listedTable(h, 'bridge'));
}

function removeNetnsAndProcesses(name: string): void {
  if (!netnsExists(name)) return;
  killNetnsProcesses(name);
  deleteNetns(name);
}

export interface ReconcileOptions {
  /** Remove marked kernel objects the store does not know even when the store was lost (storeguard.ts). */
  force?: boolean;
  /** Leave orphans alone (recoverIfNeeded on a lost store: only the store's own unfinished work is finished). */
  keepOrphans?: boolean;
}

/** Completes or rolls back interrupted operations, removes orphans nsnet owns, recreates what is missing. On a
 *  store recorded as lost it refuses (nothing changed) unless `force`: the "orphans" are the lost store's
 *  containers, and removing them would kill their processes. */
export function reconcile(h: Host, o: ReconcileOptions = {}): { actions: string[] } {
  return h.lock.with(() => {
    const lost = storeLost(h);
    if (lost && !o.force && !o.keepOrphans) throw new UserError(lost, 'refused');
    const busy = o.force ? [] : busyOrphanNetns(h);
    if (busy.length && !o.keepOrphans) {
      const list = busy.slice(0, 5).map((b) => `${b.name} (${b.pids} process${b.pids > 1 ? 'es' : ''})`).join(', ') + (busy.length > 5 ? `, and ${busy.length - 5} more` : '');
      throw new UserError(`${busy.length} network namespace(s) of this host with running processes are not in the store ${h.store.file}: ${list}. ` +
        `nsnet records every namespace it makes, so the store does not match the kernel (replaced, or restored from an older backup?): ` +
        `nothing was changed; nsnet reconcile --force removes them and kills their processes`, 'refused');
    }
    const actions: string[] = [];
    // 1. Interrupted creates/connects: roll back (their kernel objects become garbage).
    h.store.tx(() => {
      for (const c of h.store.allContainersIncludingPending()) {
        if (!c.pending) continue;
        for (const e of h.store.endpointsOf(c.id)) h.store.addGarbage('link', e.hostIf);
        if (c.netns) h.store.addGarbage('netns', c.netns);
        h.store.addGarbage('dir', c.id);
        h.store.deleteContainer(c.id);
        actions.push(`rolled back container ${c.name}`);
      }
      for (const e of h.store.allEndpointsIncludingPending()) {
        if (!e.pending) continue;
        h.store.addGarbage('link', e.hostIf);
        h.store.deleteEndpoint(e.containerId, e.networkId);
        actions.push(`rolled back connect of ${e.containerName}`);
      }
      for (const n of h.store.allNetworksIncludingPending()) {
        if (!n.pending) continue;
        h.store.addGarbage('link', n.bridge);
        h.store.deleteNetwork(n.id);
        actions.push(`rolled back network ${n.name}`);
      }
    });
    // 2. Finish removals (dying veths the kernel is still removing are left to it: sweepDyingLinks).
    const done: number[] = [];
    sweepDyingLinks(h, 0);
    const dying = new Set(h.store.dyingLinks().map((g) => g.name));
    // An rm interrupted before it took its ports down (kill -9): take them down now, so that an address handed out
    // again is never answered from a dying netns.
    for (const name of dying) {
      const l = bridge.ownedLink(h, name);
      if (l) h.nl.setDown(l.index);
    }
    for (const g of h.store.garbage()) {
      if (g.kind === 'veth') continue;
      if (g.kind === 'link') {
        const l = bridge.ownedLink(h, g.name);
        if (l) h.nl.deleteLink(l.index);
      } else if (g.kind === 'netns') {
        // Not a file name: no netns of ours (a damaged row); only the row goes.
        if (isSafeName(g.name)) removeNetnsAndProcesses(g.name);
      } else if (g.kind === 'dir' && /^[0-9a-f]{64}$/.test(g.name)) {
        fs.rmSync(h.containerDir(g.name), { recursive: true, force: true });
      }
      done.push(g.id);
      actions.push(`removed ${g.kind} ${g.name}`);
    }
    h.store.tx(() => h.store.dropGarbage(done));
    // 3. Orphans nsnet owns but the store does not know.
    const networks = h.store.networks();
    const endpoints = h.store.endpoints();
    const known = new Set([...networks.map((n) => n.bridge), ...endpoints.map((e) => e.hostIf), ...dying]);
    // Automatic recovery (recoverIfNeeded) never removes what might be someone's running containers.
    const orphans = !(o.keepOrphans && (lost || busy.length));
    for (const l of orphans ? h.nl.links() : []) {
      if (ownedBy(l.alias, h.owner) && !known.has(l.name)) {
        h.nl.deleteLink(l.index);
        actions.push(`removed orphan link ${l.name}`);
      }
    }
    const containers = h.store.containers();
    if (h.netnsPrefix && orphans) {
      const knownNs = new Set(containers.map((c) => c.netns));
      for (const ns of listNetns()) {
        // The name prefix alone is not proof: only a netns whose lo carries this host's mark is nsnet's (one the
        // user made with `ip netns add nsnet-<hostid>-x` is left alone, its processes too).
        if (ns.startsWith(h.netnsPrefix) && !knownNs.has(ns) && markedNetns(h, ns)) {
          removeNetnsAndProcesses(ns);
          actions.push(`removed orphan netns ${ns}`);
        }
      }
    }
    // 4. Recreate networks' bridges and gateways.
    for (const n of networks) {
      const l = h.nl.linkByName(n.bridge);
      const addrs = l ? h.nl.addresses().filter((a) => a.index === l.index) : [];
      const has = l && (!n.gateway || addrs.some((a) => a.address === n.gateway)) && (!n.gateway6 || addrs.some((a) => a.address === n.gateway6));
      if (!has) {
        bridge.setupNetwork(h, n);
        actions.push(`recreated bridge ${n.bridge} of ${n.name}`);
      }
    }
    // 4b. The tc loopback guard on every container's bridge port (removed by hand, or a veth from before the
    // guard existed), and port isolation on icc=false networks.
    for (const n of networks) {
      const l = bridge.ownedLink(h, n.bridge);
      if (l && !bridge.hasGuardFilter(h)) actions.push('restored the tc loopback guard filter');
      if (l) bridge.ensureGuardBlock(h, l.index, n.bridge);
    }
    const blocks = bridge.clsactBlocks(h);
    for (const e of endpoints) {
      const l = bridge.ownedLink(h, e.hostIf);
      if (l && bridge.ensurePortGuard(h, l.index, blocks)) actions.push(`bound ${e.hostIf} of ${e.containerName} to the loopback guard`);
    }
    const iccOff = new Set(networks.filter((n) => !n.icc).map((n) => n.id));
    if (iccOff.size) {
      const ports = new Map(h.nl.bridgePorts().map((p) => [p.index, p]));
      for (const e of endpoints) {
        if (!iccOff.has(e.networkId)) continue;
        const l = bridge.ownedLink(h, e.hostIf);
        if (l && !ports.get(l.index)?.isolated) {
          h.nl.setBridgePort(l.index, { isolated: true });
          actions.push(`isolated port ${e.hostIf} of ${e.containerName} (icc=false)`);
        }
      }
    }
    // 4c. Marks that describe (src/engine/marks.ts): objects made before they existed get them, so that a lost
    // store can be rebuilt from them (src/engine/rebuild.ts).
    let described = 0;
    const linkByName = new Map(h.nl.links().map((l) => [l.name, l]));
    for (const n of networks) {
      const l = linkByName.get(n.bridge);
      const want = networkMark(h.owner, n);
      if (l && ownedBy(l.alias, h.owner) && l.alias !== want) { h.nl.setAlias(l.index, want); described++; }
    }
    for (const e of endpoints) {
      const l = linkByName.get(e.hostIf);
      const want = endpointMark(h.owner, e);
      if (l && ownedBy(l.alias, h.owner) && l.alias !== want && !dying.has(e.hostIf)) { h.nl.setAlias(l.index, want); described++; }
    }
    for (const c of containers) {
      if ((c.mode !== 'bridge' && c.mode !== 'none') || !c.netns || !isSafeName(c.netns) || !netnsExists(c.netns)) continue;
      if (describeNetns(h, c)) described++;
    }
    if (described) actions.push(`described ${described} object(s) in their marks (for a rebuild of a lost store)`);
    // 5. Containers whose processes ended or whose namespace is gone (reboot-like loss).
    for (const c0 of containers) {
      if (c0.netns && (!isSafeName(c0.netns) || !isSafeName(c0.id))) {
        actions.push(`container ${JSON.stringify(c0.name)}: its netns/id is not a file name (a damaged store row): left alone, nsnet rm removes the row`);
        continue;
      }
      let c = refreshState(h, c0);
      if (c.netns && !netnsExists(c.netns)) {
        // The sandbox is gone (reboot-like loss): the container is exited, its addresses return to the pools,
        // its attachments are remembered for the next `start`.
        lostSandbox(h, c);
        actions.push(`container ${c.name}: sandbox lost, marked exited`);
        continue;
      }
      // A start interrupted between launching and recording leaves unrecorded processes: end them.
      c = h.store.containerById(c.id) ?? c;
      if (c.state !== 'running' && c.netns && netnsExists(c.netns)) {
        const strays = killNetnsProcesses(c.netns);
        if (strays) actions.push(`ended ${strays} unrecorded process(es) of ${c.name}`);
      }
    }
    actions.push(...reconcileCni(h)); // CNI attachments whose runtime netns vanished without DEL
    actions.push(...reconcileNetem(h)); // link impairments: interrupted changes, expired, lost or unrecorded qdiscs
    // 6. Firewall from the store, in one transaction: partitions whose --duration ran out are healed first, and a
    // trace rule `explain --trace` left behind is removed (the full render would replace it with the table, but not
    // in a table another nsnet owns, and it is said here).
    for (const n of expirePartitions(h, false)) actions.push(`healed the expired partition of network ${n}`);
    for (const c of removeTraceChains(h, traceChains(h))) actions.push(`removed the trace rule nsnet explain --trace left in table ${c.family} ${NAMES.table} chain ${c.chain}`);
    applyFirewall(h);
    actions.push(...restartTimers(h));
    notifyDns(h);
    if (lost && o.force) {
      clearStoreLost(h);
      actions.push('the store is the truth again (its loss was acknowledged with --force)');
    }
    return { actions };
  });
}

/** Gives the loopback of a container's netns its describing mark if it has an older one; true if it did. */
function describeNetns(h: Host, c: ContainerRecord): boolean {
  try {
    return withNetnsNetlink(c.netns, (nl) => {
      const lo = nl.links().find((l) => l.index === 1);
      const want = containerMark(h.owner, c);
      if (!lo || lo.alias === want || (lo.alias && !ownedBy(lo.alias, h.owner))) return false;
      nl.setAlias(1, want);
      return true;
    });
  } catch {
    return false; // gone meanwhile
  }
}

function lostSandbox(h: Host, c: ContainerRecord): void {
  const eps = h.store.endpointsOf(c.id);
  h.store.tx(() => {
    const saved = [...h.store.savedEndpoints(c.id), ...eps.map((e) => ({ networkId: e.networkId, ifname: e.ifname, aliases: e.aliases, ip: e.staticIp ? e.ip : null, ip6: e.staticIp6 ? e.ip6 ?? null : null }))];
    h.store.setSavedEndpoints(c.id, saved);
    writeSavedCopy(h, c.id, saved);
    for (const e of eps) h.store.deleteEndpoint(c.id, e.networkId);
    if (c.state === 'running') h.store.updateContainer(c.id, { state: 'exited', exitCode: 137, pid: null, pidStart: null, finished: new Date().toISOString() });
  });
  for (const e of eps) {
    const l = bridge.ownedLink(h, e.hostIf);
    if (l) h.nl.deleteLink(l.index);
  }
}

/** Every mutating command first finishes what an interrupted one left. Call with the host lock held. */
export function recoverIfNeeded(h: Host): void {
  // A partition whose --duration ran out and whose timer did not heal it (gone, or not yet run): one indexed probe.
  expirePartitions(h);
  if (!h.store.hasUnfinished() && !h.store.hasPendingImpairment()) {
    expireImpairments(h); // --duration is enforced by every mutating command too (one indexed query)
    return void sweepDyingLinks(h);
  }
  try {
    reconcile(h, { keepOrphans: true });
  } catch (e) {
    if (e instanceof UserError) throw e;
    // Said as what it is: the command itself has not begun, an earlier one's leftovers could not be finished.
    throw new Error(`finishing an interrupted earlier operation failed (${(e as Error).message}): nothing of this command was done; run nsnet reconcile`);
  }
}
