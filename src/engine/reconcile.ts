// Make the kernel match the store (and finish what a crash interrupted), or just report the differences.
import fs from 'node:fs';
import { once, type Finding, type NetworkDriver } from '../drivers/driver.js';
import { ownedLink, removeLink, removeOwnedLink } from '../drivers/links.js';
import { driverFor } from './drivers.js';
import { agentCall, agentRunning, clusterScoped, ensureAgent, inAgent } from './cluster.js';
import { readClusterConfig } from './clusterconf.js';
import { containerMark, ownedBy } from './marks.js';
import { writeSavedCopy } from './netcopy.js';
import { NAMES } from '../firewall/model.js';
import { buildModel } from '../firewall/ruleset.js';
import { applyFirewall, compareFirewall, describeForeignDrop, firewallState, foreignDrops, foreignOwner, listedTable, ownerOf } from './firewall.js';
import type { Host } from './host.js';
import type { ContainerRecord, NetworkRecord } from '../types.js';
import { hasEnded, refreshState } from './state.js';
import { notifyDns, resolverRunning } from './dnsctl.js';
import { isSafeName } from '../util/validate.js';
import { UserError } from '../util/errors.js';
import { busyOrphanNetns, clearStoreLost, markedNetns, storeLost } from './storeguard.js';
import { diffCni } from './cni-state.js';
import { diffNetemLinks, diffNetemRows, expireImpairments } from './netem.js';
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
    const l = ownedLink(h.nl, h.ports.marks.owns, g.name);
    if (l) {
      if (!now && t - g.since < DYING_GRACE_MS) continue;
      forced++;
      removeLink(h.nl, l.index);
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

// ---------------------------------------------------------------------------------------------- the diff engine
//
// One engine for both commands: `check` = diff(store, kernel), `reconcile` = diff + repair. Each detector below
// compares one part of the store with the kernel (or the store's own bookkeeping) and returns Findings, each with
// the repair that removes it (src/drivers/driver.ts). check lists the findings of every detector; reconcile runs
// the detectors in order and each one's repairs before the next detector looks, so that a later one compares with
// what the earlier repairs left (rolled-back rows become garbage the garbage detector then removes, a recreated
// bridge gets its veths back, ...). A detector may skip, when repairing, computing a difference whose repair runs
// anyway (the firewall is rendered whole, the resolver told) — `ctx.repairing`.

interface DiffContext {
  repairing: boolean;
  o: ReconcileOptions;
  lost: string | null;
  busy: Array<{ name: string; pids: number }>;
}

type Detector = (h: Host, ctx: DiffContext) => Finding[];

/** Rows of creates and connects that never committed: rolled back (their kernel objects become garbage). */
const pendingRows: Detector = (h) => {
  const out: Finding[] = [];
  for (const c of h.store.allContainersIncludingPending()) {
    if (!c.pending) continue;
    out.push({
      kind: 'unfinished-create', detail: `container ${c.name}`,
      repair: () => {
        h.store.tx(() => {
          for (const e of h.store.endpointsOf(c.id)) h.store.addGarbage('link', e.hostIf);
          if (c.netns) h.store.addGarbage('netns', c.netns);
          h.store.addGarbage('dir', c.id);
          h.store.deleteContainer(c.id);
        });
        return [`rolled back container ${c.name}`];
      },
    });
  }
  for (const e of h.store.allEndpointsIncludingPending()) {
    if (!e.pending) continue;
    out.push({
      kind: 'unfinished-connect', detail: `${e.containerName} ${e.hostIf}`,
      repair: () => {
        if (!h.store.allEndpointsIncludingPending().some((x) => x.containerId === e.containerId && x.networkId === e.networkId)) return []; // went with its container
        h.store.tx(() => {
          h.store.addGarbage('link', e.hostIf);
          h.store.deleteEndpoint(e.containerId, e.networkId);
        });
        return [`rolled back connect of ${e.containerName}`];
      },
    });
  }
  for (const n of h.store.allNetworksIncludingPending()) {
    if (!n.pending) continue;
    out.push({
      kind: 'unfinished-create', detail: `network ${n.name}`,
      repair: () => {
        h.store.tx(() => {
          for (const l of driverFor(n).networkLinks(n)) h.store.addGarbage('link', l);
          h.store.deleteNetwork(n.id);
        });
        return [`rolled back network ${n.name}`];
      },
    });
  }
  return out;
};

/** Removals a crash interrupted (garbage rows): finished. A veth left to die with its netns is not a difference
 *  while the kernel removes it (sweepDyingLinks deletes it past the grace period); one still up (an rm killed before
 *  it took its ports down) is taken down, so that an address handed out again is never answered from a dying netns. */
const garbage: Detector = (h, ctx) => {
  const out: Finding[] = [];
  if (ctx.repairing) {
    out.push({ kind: 'dying-links', detail: 'veths left to die', hidden: true, repair: () => { sweepDyingLinks(h, 0); return []; } });
    out.push({
      kind: 'dying-links-up', detail: 'veths left to die that are still up', hidden: true,
      repair: () => {
        for (const g of h.store.dyingLinks()) {
          const l = ownedLink(h.nl, h.ports.marks.owns, g.name);
          if (l) h.nl.setDown(l.index);
        }
        return [];
      },
    });
  }
  for (const g of h.store.garbage()) {
    if (g.kind === 'veth') continue;
    const unsafe = (g.kind === 'netns' || g.kind === 'dir') && !isSafeName(g.name);
    out.push({
      kind: unsafe ? 'invalid-name' : 'unfinished-removal',
      detail: unsafe ? `unfinished removal of ${g.kind} ${JSON.stringify(g.name)}: not a file name (reconcile drops the row)` : `${g.kind} ${g.name}`,
      repair: () => {
        if (g.kind === 'link') removeOwnedLink(h.nl, h.ports.marks.owns, g.name);
        // Not a file name: no netns of ours (a damaged row); only the row goes.
        else if (g.kind === 'netns') { if (!unsafe) removeNetnsAndProcesses(h, g.name); }
        else if (g.kind === 'dir' && /^[0-9a-f]{64}$/.test(g.name)) fs.rmSync(h.containerDir(g.name), { recursive: true, force: true });
        h.store.tx(() => h.store.dropGarbage([g.id]));
        return [`removed ${g.kind} ${g.name}`];
      },
    });
  }
  return out;
};

/** Host-netns links and container namespaces carrying this host's mark that the store does not know: removed,
 *  except by the automatic recovery on a lost store or one that misses running namespaces (they may be someone's
 *  running containers). The name prefix alone is not proof for a netns: only one whose lo carries the mark. */
const orphans: Detector = (h, ctx) => {
  const out: Finding[] = [];
  const remove = !(ctx.o.keepOrphans && (ctx.lost || ctx.busy.length));
  // Links of rows still pending are not orphans: the pending detector rolls them back (check reports them there).
  const known = new Set([...h.store.allNetworksIncludingPending().flatMap((n) => driverFor(n).networkLinks(n)), ...h.store.allEndpointsIncludingPending().map((e) => e.hostIf), ...dyingNames(h)]);
  for (const l of h.nl.links()) {
    if (!ownedBy(l.alias, h.owner) || known.has(l.name)) continue;
    out.push({ kind: 'orphan-link', detail: l.name, repair: remove ? () => { removeLink(h.nl, l.index); return [`removed orphan link ${l.name}`]; } : undefined });
  }
  if (h.netnsPrefix) {
    const knownNs = new Set(h.store.containers().map((c) => c.netns).filter(Boolean));
    for (const ns of h.kernel.netns.list()) {
      if (!ns.startsWith(h.netnsPrefix) || knownNs.has(ns) || !markedNetns(h, ns)) continue;
      out.push({ kind: 'orphan-netns', detail: ns, repair: remove ? () => { removeNetnsAndProcesses(h, ns); return [`removed orphan netns ${ns}`]; } : undefined });
    }
  }
  return out;
};

/** Each driver's kernel objects in the host netns (src/drivers/driver.ts diff), for its networks and endpoints. */
const drivers: Detector = (h) => {
  const networks = h.store.networks();
  const endpoints = h.store.endpoints();
  const containers = new Map(h.store.containers().map((c) => [c.id, c]));
  const lostContainers = new Set([...containers.values()].filter((c) => c.netns && (!isSafeName(c.netns) || !h.kernel.netns.exists(c.netns))).map((c) => c.id));
  const dying = dyingNames(h);
  const links = h.nl.links();
  const byDriver = new Map<NetworkDriver, NetworkRecord[]>();
  for (const n of networks) byDriver.set(driverFor(n), [...(byDriver.get(driverFor(n)) ?? []), n]);
  const out: Finding[] = [];
  for (const [d, nets] of byDriver) {
    const ids = new Set(nets.map((n) => n.id));
    out.push(...d.diff(h.ports, { networks: nets, endpoints: endpoints.filter((e) => ids.has(e.networkId)), dying, links, lostContainers }));
  }
  return out;
};

/** Containers: a damaged row (told, left alone), a process that ended (recorded), a sandbox lost while running or
 *  attached (reboot-like: marked exited, attachments remembered for the next start), processes of a container that
 *  is not running (a start interrupted between launch and record: ended), every endpoint's address inside, and
 *  the describing mark on the netns's loopback. A lost sandbox of an exited container is a known state: `start`
 *  rebuilds it. */
const containersDetector: Detector = (h, ctx) => {
  const out: Finding[] = [];
  const endpoints = h.store.endpoints();
  for (const c of h.store.containers()) {
    if (c.netns && (!isSafeName(c.netns) || !isSafeName(c.id))) {
      out.push({
        kind: 'invalid-name',
        detail: `container ${JSON.stringify(c.name)}: netns ${JSON.stringify(c.netns)} / id ${JSON.stringify(c.id)} is not a file name (a damaged store row; nsnet rm removes the row and touches nothing else)`,
        repair: () => [`container ${JSON.stringify(c.name)}: its netns/id is not a file name (a damaged store row): left alone, nsnet rm removes the row`],
      });
      continue;
    }
    if (hasEnded(c)) out.push({ kind: 'exited', detail: `${c.name}: its process ended`, hidden: true, repair: () => { refreshState(h, c); return []; } });
    if (!c.netns) continue;
    const eps = endpoints.filter((e) => e.containerId === c.id);
    if (!h.kernel.netns.exists(c.netns)) {
      if (c.state === 'running' || eps.length) {
        out.push({ kind: 'missing-netns', detail: `${c.name}: ${c.netns}`, repair: () => { lostSandbox(h, h.store.containerById(c.id) ?? c); return [`container ${c.name}: sandbox lost, marked exited`]; } });
      }
      continue;
    }
    if (ctx.repairing && c.state !== 'running') {
      out.push({
        kind: 'stray-processes', detail: `${c.name}: processes of a container that is not running`, hidden: true,
        repair: () => {
          const now = h.store.containerById(c.id);
          if (!now || now.state === 'running' || !h.kernel.netns.exists(c.netns)) return [];
          const strays = h.kernel.netns.killProcesses(c.netns);
          return strays ? [`ended ${strays} unrecorded process(es) of ${c.name}`] : [];
        },
      });
    }
    // Inside the container: every endpoint's interface carries its addresses; lo carries the describing mark.
    try {
      h.kernel.netns.withNetlink(c.netns, (cnl) => {
        const clinks = cnl.links();
        const index = new Map(clinks.map((l) => [l.name, l.index]));
        const caddrs = eps.length ? cnl.addresses() : [];
        for (const e of eps) {
          const idx = index.get(e.ifname);
          for (const ip of [e.ip, e.ip6 ?? '']) {
            if (ip && (idx === undefined || !caddrs.some((a) => a.index === idx && a.address === ip))) out.push({ kind: 'missing-address', detail: `${c.name}: ${e.ifname} ${ip}` });
          }
        }
        const lo = clinks.find((l) => l.index === 1);
        if ((c.mode === 'bridge' || c.mode === 'none') && lo && lo.alias && ownedBy(lo.alias, h.owner) && lo.alias !== containerMark(h.owner, c)) {
          out.push({ kind: 'old-mark', detail: `lo of ${c.name}`, repair: () => { describeNetns(h, c); return []; } });
        }
      });
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
};

/** Partitions whose --duration ran out and that no timer healed yet: healed (before the firewall is rendered). */
const expiredPartitions: Detector = (h) => {
  const now = Date.now();
  const expired = h.store.partitions().filter((p) => p.expires !== null && p.expires <= now);
  if (!expired.length) return [];
  const heal = once(() => expirePartitions(h, false).map((n) => `healed the expired partition of network ${n}`));
  return expired.map((p) => ({ kind: 'partition-expired', detail: `network ${netName(h, p.networkId)}: its partition expired at ${new Date(p.expires!).toISOString()} and is not healed yet`, repair: heal }));
};

/** A trace rule of `nsnet explain --trace` exists only while its probe runs: one found here was left behind. (The
 *  full render would replace it with the table, but not in a table another nsnet owns, and it is said here.) */
const traceRules: Detector = (h) => traceChains(h).map((c) => ({
  kind: 'trace-rule', detail: `table ${c.family} ${NAMES.table} chain ${c.chain}: left behind by nsnet explain --trace (reconcile removes it)`,
  repair: () => removeTraceChains(h, [c]).map((x) => `removed the trace rule nsnet explain --trace left in table ${x.family} ${NAMES.table} chain ${x.chain}`),
}));

/** nsnet's tables against the model built from the store; reconcile renders them whole, in one transaction. */
const firewall: Detector = (h, ctx) => {
  const render = () => { applyFirewall(h); return []; };
  if (ctx.repairing) return [{ kind: 'firewall', detail: 'the firewall rendered from the store', hidden: true, repair: render }];
  const fw = firewallDiff(h);
  return fw ? [{ kind: 'firewall', detail: fw, repair: render }] : [];
};

/** The timer that heals a partition with a --duration: started again when it is gone (after the render). */
const partitionTimers: Detector = (h) => {
  const missing = missingTimers(h, Date.now());
  if (!missing.length) return [];
  const restart = once(() => restartTimers(h));
  return missing.map((p) => ({ kind: 'partition-timer', detail: `network ${netName(h, p.networkId)}: the timer that heals its partition at ${new Date(p.expires!).toISOString()} is not running`, repair: restart }));
};

/** Not a difference nsnet can repair, but one that silently breaks it: another table's drop-policy chain. */
const foreignFirewall: Detector = (h) => foreignDrops(h).map((d) => ({ kind: 'foreign-firewall', detail: describeForeignDrop(d) }));

/** The resolver runs exactly when there are user-defined networks, and knows the store's names. */
const dns: Detector = (h, ctx) => {
  const tell = () => { notifyDns(h); return []; };
  if (ctx.repairing) return [{ kind: 'dns', detail: 'the resolver told the store\'s names', hidden: true, repair: tell }];
  const need = h.store.networks().some((n) => !n.isDefault);
  return need !== resolverRunning(h) ? [{ kind: 'dns', detail: need ? 'the resolver is not running' : 'a resolver runs without user-defined networks', repair: tell }] : [];
};

/** This host in its cluster (src/engine/cluster.ts): the agent runs (without it the lease lapses and the other
 *  hosts drop this host's endpoints), has joined, and has registered every local endpoint of an overlay network
 *  (one made in the last few seconds may be on its way). Never from inside the agent itself. */
const clusterView: Detector = (h) => {
  if (inAgent(h) || !readClusterConfig(h.root)) return [];
  if (!agentRunning(h)) {
    return [{ kind: 'cluster-agent', detail: 'the cluster agent of this host is not running (its lease lapses: the other hosts drop its endpoints)', repair: () => { ensureAgent(h); return ['started the cluster agent']; } }];
  }
  let st: { joined: boolean; lastError: string; registered: string[] };
  try {
    st = agentCall(h, 'status', {}, 5000);
  } catch (e) {
    return [{ kind: 'cluster-agent', detail: (e as Error).message }];
  }
  if (!st.joined) return [{ kind: 'cluster-unjoined', detail: `this host has not joined the cluster: ${st.lastError || 'no answer from etcd yet'}` }];
  const out: Finding[] = [];
  const registered = new Set(st.registered);
  const recent = Date.now() - 5000;
  for (const n of h.store.networks().filter(clusterScoped)) {
    for (const e of h.store.endpointsOn(n.id)) {
      const c = h.store.containerById(e.containerId);
      if (registered.has(`${n.name}/${e.containerId}`) || (c && Date.parse(c.created) > recent)) continue;
      out.push({ kind: 'cluster-endpoint', detail: `${e.containerName} on ${n.name}: not registered in the cluster (other hosts neither resolve nor reach it)`, repair: () => { agentCall(h, 'sync'); return [`asked the cluster agent to register ${e.containerName} on ${n.name}`]; } });
    }
  }
  return out;
};

/** The store recorded as lost (storeguard.ts): told by check; acknowledged by reconcile --force, last. */
const storeState: Detector = (h, ctx) => {
  if (!ctx.lost) return [];
  const ack = ctx.o.force ? () => { clearStoreLost(h); return ['the store is the truth again (its loss was acknowledged with --force)']; } : undefined;
  return [{ kind: 'store-lost', detail: ctx.lost, repair: ack }];
};

/** In the order reconcile repairs. */
const DETECTORS: Detector[] = [
  pendingRows, garbage, orphans, drivers, containersDetector, diffCni, diffNetemRows, diffNetemLinks,
  expiredPartitions, traceRules, firewall, partitionTimers, foreignFirewall, dns, clusterView, storeState,
];

function netName(h: Host, id: string): string {
  return h.store.networkById(id)?.name ?? id.slice(0, 12);
}

function dyingNames(h: Host): Set<string> {
  return new Set(h.store.garbage().filter((g) => g.kind === 'veth').map((g) => g.name));
}

/** Differences between store and kernel, without changing anything. A dying veth (its netns deleted by `rm`) is
 *  not a difference while the kernel is within the grace period of removing it. */
export function check(h: Host): Difference[] {
  const ctx: DiffContext = { repairing: false, o: {}, lost: storeLost(h), busy: [] };
  const out: Difference[] = [];
  for (const d of DETECTORS) for (const f of d(h, ctx)) if (!f.hidden) out.push({ kind: f.kind, detail: f.detail });
  return out;
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

function removeNetnsAndProcesses(h: Host, name: string): void {
  if (!h.kernel.netns.exists(name)) return;
  h.kernel.netns.killProcesses(name);
  h.kernel.netns.remove(name);
}

export interface ReconcileOptions {
  /** Remove marked kernel objects the store does not know even when the store was lost (storeguard.ts). */
  force?: boolean;
  /** Leave orphans alone (recoverIfNeeded on a lost store: only the store's own unfinished work is finished). */
  keepOrphans?: boolean;
}

/** Completes or rolls back interrupted operations, removes orphans nsnet owns, recreates what is missing: every
 *  detector's findings repaired, in order. On a store recorded as lost it refuses (nothing changed) unless
 *  `force`: the "orphans" are the lost store's containers, and removing them would kill their processes. */
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
    const ctx: DiffContext = { repairing: true, o, lost, busy };
    const actions: string[] = [];
    let described = 0;
    for (const d of DETECTORS) {
      for (const f of d(h, ctx)) {
        if (!f.repair) continue;
        actions.push(...f.repair());
        // Marks that describe (src/engine/marks.ts): said in one line, however many objects got them.
        if (f.kind === 'old-mark') described++;
      }
    }
    if (described) {
      // Said where the marks were repaired: after the drivers' and containers' lines, before CNI's.
      actions.push(`described ${described} object(s) in their marks (for a rebuild of a lost store)`);
    }
    return { actions };
  });
}

/** Gives the loopback of a container's netns its describing mark if it has an older one; true if it did. */
function describeNetns(h: Host, c: ContainerRecord): boolean {
  try {
    return h.kernel.netns.withNetlink(c.netns, (nl) => {
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
  for (const e of eps) removeOwnedLink(h.nl, h.ports.marks.owns, e.hostIf);
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
