// Make the kernel match the store (and finish what a crash interrupted), or just report the differences.
import fs from 'node:fs';
import * as bridge from '../drivers/bridge.js';
import { Netlink } from '../kernel/netlink.js';
import { closeFd, deleteNetns, listNetns, netnsExists, openNetns } from '../kernel/netns.js';
import { killNetnsProcesses } from '../kernel/proc.js';
import { applyFirewall, firewallState } from './firewall.js';
import type { Host } from './host.js';
import type { ContainerRecord } from '../types.js';
import { refreshState } from './state.js';
import { notifyDns, resolverRunning } from './dnsctl.js';
import { checkCni, reconcileCni } from './cni-state.js';

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
  const dying = new Set<string>();
  for (const g of h.store.garbage()) {
    if (g.kind === 'veth') {
      dying.add(g.name);
      if (!bridge.ownedLink(h, g.name) || Date.now() - g.since < DYING_GRACE_MS) continue;
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
    if (!addrs.some((a) => a.index === l.index && a.address === n.gateway)) diffs.push({ kind: 'missing-gateway', detail: `${n.name}: ${n.gateway} on ${n.bridge}` });
  }
  const containers = new Map(h.store.containers().map((c) => [c.id, c]));
  for (const e of endpoints) {
    const c = containers.get(e.containerId);
    if (c && c.netns && !netnsExists(c.netns)) continue; // reported below
    if (!byName.has(e.hostIf)) diffs.push({ kind: 'missing-veth', detail: `${e.containerName}: ${e.hostIf}` });
  }
  const bridgeIndex = new Map(networks.map((n) => [n.id, byName.get(n.bridge)?.index]));
  for (const e of endpoints) {
    const l = byName.get(e.hostIf);
    if (l && l.master !== bridgeIndex.get(e.networkId)) diffs.push({ kind: 'veth-not-on-bridge', detail: `${e.containerName}: ${e.hostIf}` });
  }
  for (const c of containers.values()) {
    if (!c.netns) continue;
    if (!netnsExists(c.netns)) {
      // A lost sandbox of an exited container (reboot-like) is a known state: `start` rebuilds it.
      const lost = c.state !== 'running' && !endpoints.some((e) => e.containerId === c.id);
      if (!lost) diffs.push({ kind: 'missing-netns', detail: `${c.name}: ${c.netns}` });
      continue;
    }
    // Inside the container: every endpoint's interface carries its address.
    const fd = openNetns(c.netns);
    try {
      const cnl = Netlink.openIn(fd);
      try {
        const clinks = new Map(cnl.links().map((l) => [l.name, l.index]));
        const caddrs = cnl.addresses();
        for (const e of endpoints.filter((x) => x.containerId === c.id)) {
          const idx = clinks.get(e.ifname);
          if (idx === undefined || !caddrs.some((a) => a.index === idx && a.address === e.ip)) {
            diffs.push({ kind: 'missing-address', detail: `${c.name}: ${e.ifname} ${e.ip}` });
          }
        }
      } finally {
        cnl.close();
      }
    } finally {
      closeFd(fd);
    }
  }
  const knownLinks = new Set([...networks.map((n) => n.bridge), ...endpoints.map((e) => e.hostIf)]);
  for (const l of links) if (l.alias === h.owner && !knownLinks.has(l.name) && !dying.has(l.name)) diffs.push({ kind: 'orphan-link', detail: l.name });
  const knownNs = new Set([...containers.values()].map((c) => c.netns).filter(Boolean));
  if (h.netnsPrefix) {
    for (const ns of listNetns()) if (ns.startsWith(h.netnsPrefix) && !knownNs.has(ns)) diffs.push({ kind: 'orphan-netns', detail: ns });
  }
  diffs.push(...checkCni(h)); // attachments made through CNI: the runtime's netns and what is inside
  const fw = firewallDiff(h);
  if (fw) diffs.push({ kind: 'firewall', detail: fw });
  const needDns = networks.some((n) => !n.isDefault);
  if (needDns !== resolverRunning(h)) diffs.push({ kind: 'dns', detail: needDns ? 'the resolver is not running' : 'a resolver runs without user-defined networks' });
  return diffs;
}

type Elem = [unknown, unknown];
function flat(v: unknown): string {
  // Elements with a comment come wrapped: {"elem": {"val": ..., "comment": ...}}.
  if (v && typeof v === 'object' && 'elem' in (v as object)) return flat((v as { elem: { val: unknown } }).elem.val);
  if (v && typeof v === 'object' && 'concat' in (v as object)) return (v as { concat: unknown[] }).concat.map(String).join(' ');
  return String(v);
}

/** Compares nsnet's tables in the kernel with the store: table presence, bridges set, every published port's
 *  DNAT element. Returns what differs ('' when they agree). */
function firewallDiff(h: Host): string {
  const state = firewallState(h);
  const listing = h.nft.listTable('inet', 'nsnet') as { nftables: Array<Record<string, { name: string; elem?: unknown[] }>> } | null;
  if (!listing) return state.networks.length ? 'table inet nsnet is missing' : '';
  if (!state.networks.length) return 'table inet nsnet exists but there are no networks';
  const objs = listing.nftables;
  const named = (kind: string, name: string) => objs.find((o) => o[kind]?.name === name)?.[kind];
  const bridges = new Set(((named('set', 'bridges')?.elem ?? []) as unknown[]).map(flat));
  const wantBridges = new Set(state.networks.map((n) => n.bridge));
  if (bridges.size !== wantBridges.size || [...wantBridges].some((b) => !bridges.has(b))) return 'the bridges set differs from the networks';
  const have = new Set<string>();
  for (const m of ['dnat_any', 'dnat_addr']) {
    for (const e of (named('map', m)?.elem ?? []) as Elem[]) have.add(`${m} ${flat(e[0])} -> ${flat(e[1])}`);
  }
  const want = new Set<string>();
  for (const p of state.ports) {
    for (let i = 0; i <= p.hostPortEnd - p.hostPort; i++) {
      const key = p.hostIp ? `dnat_addr ${p.hostIp} ${p.proto} ${p.hostPort + i}` : `dnat_any ${p.proto} ${p.hostPort + i}`;
      want.add(`${key} -> ${p.containerIp} ${p.containerPort + i}`);
    }
  }
  const missing = [...want].filter((w) => !have.has(w));
  const extra = [...have].filter((x) => !want.has(x));
  if (missing.length || extra.length) return `published ports differ (missing ${missing.length}, unexpected ${extra.length})`;
  const needBridgeTable = state.networks.some((n) => !n.icc);
  if ((h.nft.listTable('bridge', 'nsnet') !== null) !== needBridgeTable) return 'table bridge nsnet (icc=false) differs';
  return '';
}

function removeNetnsAndProcesses(name: string): void {
  if (!netnsExists(name)) return;
  killNetnsProcesses(name);
  deleteNetns(name);
}

/** Completes or rolls back interrupted operations, removes orphans nsnet owns, recreates what is missing. */
export function reconcile(h: Host): { actions: string[] } {
  return h.lock.with(() => {
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
        removeNetnsAndProcesses(g.name);
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
    for (const l of h.nl.links()) {
      if (l.alias === h.owner && !known.has(l.name)) {
        h.nl.deleteLink(l.index);
        actions.push(`removed orphan link ${l.name}`);
      }
    }
    const containers = h.store.containers();
    if (h.netnsPrefix) {
      const knownNs = new Set(containers.map((c) => c.netns));
      for (const ns of listNetns()) {
        if (ns.startsWith(h.netnsPrefix) && !knownNs.has(ns)) {
          removeNetnsAndProcesses(ns);
          actions.push(`removed orphan netns ${ns}`);
        }
      }
    }
    // 4. Recreate networks' bridges and gateways.
    for (const n of networks) {
      const l = h.nl.linkByName(n.bridge);
      const has = l && h.nl.addresses().some((a) => a.index === l.index && a.address === n.gateway);
      if (!has) {
        bridge.setupNetwork(h, n);
        actions.push(`recreated bridge ${n.bridge} of ${n.name}`);
      }
    }
    // 5. Containers whose processes ended or whose namespace is gone (reboot-like loss).
    for (const c0 of containers) {
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
    // 6. Firewall from the store, in one transaction.
    applyFirewall(h);
    notifyDns(h);
    return { actions };
  });
}

function lostSandbox(h: Host, c: ContainerRecord): void {
  const eps = h.store.endpointsOf(c.id);
  h.store.tx(() => {
    const saved = [...h.store.savedEndpoints(c.id), ...eps.map((e) => ({ networkId: e.networkId, ifname: e.ifname, aliases: e.aliases, ip: e.staticIp ? e.ip : null }))];
    h.store.setSavedEndpoints(c.id, saved);
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
  if (h.store.hasUnfinished()) reconcile(h);
  else sweepDyingLinks(h);
}
