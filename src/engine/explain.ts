// `nsnet explain`: the engine glue of the pure planner (src/explain/plan.ts). It reads the store, the firewall
// model built from it, the resolver's view (dnsView), the host's routes and addresses and FROM's routes from the
// kernel (netlink), and what `check` finds; it changes nothing. `--trace` (traceExplanation) adds one trace rule
// to nsnet's table, sends one probe packet from FROM's netns, reads the kernel's trace events over netlink
// (src/kernel/nftrace.ts) and removes the rule again, whatever happens; a crash leaves it for `reconcile`.
import fs from 'node:fs';
import { buildModel } from '../firewall/ruleset.js';
import { NAMES, type FirewallModel } from '../firewall/model.js';
import { Netlink, withNetnsNetlink, type LinkInfo } from '../kernel/netlink.js';
import { closeFd, netnsExists, openNetns } from '../kernel/netns.js';
import { TraceSocket, type TraceEvent } from '../kernel/nftrace.js';
import { Probe } from '../kernel/probe.js';
import { explain, isIPv4, type Explanation, type ExplainInput, type NsAddr, type NsRoute, type Target } from '../explain/plan.js';
import { compareTrace, traceChainName, traceHooks, traceScript, type RuleIndex, type TraceReport } from '../explain/trace.js';
import type { ContainerRecord } from '../types.js';
import { UserError } from '../util/errors.js';
import { isSafeName } from '../util/validate.js';
import { dnsView } from './dnsctl.js';
import { crashPoint } from './faults.js';
import { firewallState, ownerOf, tableOwner } from './firewall.js';
import type { Host } from './host.js';
import { check } from './reconcile.js';
import { refreshState } from './state.js';
import { removeTraceChains, type TraceChain } from './tracerule.js';

const RTN_UNICAST = 1;

function routesOf(nl: Netlink, links: LinkInfo[]): NsRoute[] {
  const names = new Map(links.map((l) => [l.index, l.name]));
  return nl.routes(4).filter((r) => r.type === RTN_UNICAST && r.oif !== null && names.has(r.oif))
    .map((r) => ({ dst: r.dst, prefixLen: r.prefixLen, gateway: r.gateway, ifname: names.get(r.oif!)! }));
}

function addrsOf(nl: Netlink, links: LinkInfo[]): NsAddr[] {
  const names = new Map(links.map((l) => [l.index, l.name]));
  return nl.addresses(4).filter((a) => names.has(a.index)).map((a) => ({ ifname: names.get(a.index)!, address: a.address, prefixLen: a.prefixLen }));
}

/** A container's routes as the kernel has them (null: its netns cannot be read). */
function containerRoutes(c: ContainerRecord): NsRoute[] | null {
  if (!c.netns || !isSafeName(c.netns) || !netnsExists(c.netns)) return null;
  try {
    return withNetnsNetlink(c.netns, (nl) => routesOf(nl, nl.links()));
  } catch {
    return null;
  }
}

/** The container whose netns a FROM reference sends from (for its kernel routes), if any. */
function fromOwner(h: Host, ref: string, all: ContainerRecord[]): ContainerRecord | undefined {
  let c: ContainerRecord | undefined;
  if (isIPv4(ref)) {
    const ep = h.store.endpoints().find((e) => e.ip === ref);
    c = ep ? all.find((x) => x.id === ep.containerId) : undefined;
  } else {
    const f = h.store.findContainer(ref);
    c = f ? all.find((x) => x.id === f.id) : undefined;
  }
  if (c?.mode === 'container') c = all.find((x) => x.id === c!.modeTarget) ?? c;
  return c;
}

function brNetfilter(h: Host): boolean {
  try {
    return h.inHost(() => fs.readFileSync('/proc/sys/net/bridge/bridge-nf-call-iptables', 'utf8')).trim() === '1';
  } catch {
    return false; // no br_netfilter at all
  }
}

/** Everything the planner needs, read from the store and the kernel (nothing is changed). */
export function explainInput(h: Host, fromRef: string): { input: ExplainInput; model: FirewallModel } {
  const networks = h.store.networks();
  const containers = h.store.containers().map((c) => refreshState(h, c));
  const endpoints = h.store.endpoints();
  const fw = firewallState(h);
  const model = buildModel(fw, ownerOf(h));
  const view = dnsView(h, 0);
  const links = h.nl.links();
  const host = { addrs: addrsOf(h.nl, links), routes: routesOf(h.nl, links), brNetfilter: brNetfilter(h) };
  const nsRoutes = new Map<string, NsRoute[]>();
  const owner = fromOwner(h, fromRef, containers);
  if (owner) {
    const r = containerRoutes(owner);
    if (r) nsRoutes.set(owner.id, r);
  }
  const exists = new Set(containers.filter((c) => c.netns && isSafeName(c.netns) && netnsExists(c.netns)).map((c) => c.id));
  let differences: string[] = [];
  try {
    differences = check(h).map((d) => `${d.kind}: ${d.detail}`);
  } catch (e) {
    differences = [`check failed: ${(e as Error).message}`];
  }
  return {
    input: {
      networks, containers, endpoints, model,
      dns: { networks: view.networks, entries: view.entries },
      host, nsRoutes, netnsExists: exists, differences,
      // The partitions the model was built from (the firewall's state: expired ones left out).
      partitions: fw.partitions ?? [],
    },
    model,
  };
}

/** `nsnet explain FROM TO`: the prediction. */
export function explainOn(h: Host, fromRef: string, to: Target): { e: Explanation; model: FirewallModel } {
  const { input, model } = explainInput(h, fromRef);
  return { e: explain(input, fromRef, to), model };
}

/** Positions of the rules (by handle) of every chain of one table, from its JSON listing. */
function indexRules(listing: unknown, into: RuleIndex): void {
  const objs = ((listing as { nftables?: unknown[] } | null)?.nftables ?? []) as Array<{ rule?: { family: string; table: string; chain: string; handle: number } }>;
  const next = new Map<string, number>();
  for (const o of objs) {
    const r = o.rule;
    if (!r) continue;
    const key = `${r.family} ${r.table} ${r.chain}`;
    const i = next.get(key) ?? 0;
    next.set(key, i + 1);
    if (!into.has(key)) into.set(key, new Map());
    into.get(key)!.set(r.handle, i);
  }
}

/** How long the probe waits for an answer (and the trace for its events). */
const PROBE_MS = { tcp: 900, udp: 500, icmp: 900 } as const;

/**
 * `--trace`: one real probe packet, marked with `meta nftrace set 1` by a rule of nsnet's own table narrowly
 * matching its 5-tuple, sent from FROM's netns; the kernel's trace events (NFNLGRP_NFTRACE) next to the
 * prediction. The rule is added and removed under the host lock; removal runs whatever happened (a crash in
 * between leaves it to `reconcile`, which `check` asks for).
 */
export function traceExplanation(h: Host, e: Explanation, model: FirewallModel): TraceReport {
  const spec = e.probe;
  if (!spec) throw new UserError(`--trace: ${e.noProbe ?? 'there is no packet to send'}`, 'invalid');
  if (spec.hostHook !== 'none') {
    const owner = tableOwner(h);
    if (owner === null) throw new UserError(`--trace needs nsnet's firewall, and table inet ${NAMES.table} does not exist (no networks, or it was removed: nsnet reconcile)`, 'refused');
    if (owner !== 'unmarked' && owner.id !== h.hostId) throw new UserError(`--trace: table inet ${NAMES.table} belongs to another nsnet (state directory ${owner.root})`, 'refused');
  }
  return h.lock.with(() => {
    let nsFd = -1;
    let sock: TraceSocket | null = null;
    let probe: Probe | null = null;
    let added: TraceChain[] = [];
    const events: TraceEvent[] = [];
    const index: RuleIndex = new Map();
    try {
      if (spec.from.kind === 'container') {
        const c = h.store.containerById(spec.from.id);
        if (!c || !c.netns || !isSafeName(c.netns) || !netnsExists(c.netns)) throw new UserError(`--trace: ${spec.from.name} has no network namespace to send from`, 'refused');
        nsFd = openNetns(c.netns);
      }
      sock = h.inHost(() => TraceSocket.open());
      probe = Probe.open(spec.proto, spec.daddr, spec.dport ?? 0, nsFd >= 0 ? nsFd : undefined);
      if (spec.hostHook !== 'none') {
        const bridgeTable = traceBridgeTable(h);
        const m = {
          origin: spec.hostHook === 'output' ? 'host' as const : 'container' as const, ...(spec.saddr ? { saddr: spec.saddr } : {}), daddr: spec.daddr, proto: spec.proto,
          ...(spec.proto !== 'icmp' ? { sport: probe.sport, ...(spec.dport !== undefined ? { dport: spec.dport } : {}) } : { icmpId: probe.icmpId }),
        };
        added = traceHooks(m.origin, bridgeTable).map((x) => ({ family: x.family, chain: traceChainName(x.hook) }));
        h.nft.run(traceScript(m, bridgeTable));
        crashPoint('explain:trace-added');
      }
      let answer: ReturnType<Probe['outcome']> | null = probe.send();
      crashPoint('explain:probe-sent');
      const end = Date.now() + PROBE_MS[spec.proto];
      let settleUntil = answer ? Date.now() + 100 : 0;
      while (Date.now() < (answer ? settleUntil : end)) {
        events.push(...sock.read(10));
        if (!answer) {
          const o = probe.outcome(10);
          if (o.outcome !== 'timeout') { answer = o; settleUntil = Date.now() + 100; }
        }
      }
      events.push(...sock.read(0));
      if (spec.hostHook !== 'none') {
        indexRules(h.nft.listTable('inet', NAMES.table), index);
        if (traceBridgeTable(h)) indexRules(h.nft.listTable('bridge', NAMES.table), index);
        for (const t of new Set(events.filter((x) => x.table !== NAMES.table).map((x) => `${x.family} ${x.table}`))) {
          try { indexRules(h.nft.listTable(t.split(' ')[0], t.split(' ')[1]), index); } catch { /* gone meanwhile */ }
        }
      }
      return compareTrace(e, events, index, answer ?? { outcome: 'timeout' }, model);
    } finally {
      try {
        if (added.length) {
          crashPoint('explain:trace-remove');
          removeTraceChains(h, added);
        }
      } finally {
        probe?.close();
        sock?.close();
        if (nsFd >= 0) closeFd(nsFd);
      }
    }
  });
}

/** Whether `table bridge nsnet` exists (networks with icc=false): the trace rule goes there too. */
function traceBridgeTable(h: Host): boolean {
  return h.nft.listTable('bridge', NAMES.table) !== null;
}

