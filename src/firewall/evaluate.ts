// PURE: walk a packet through nsnet's firewall model the way the kernel would, and say what happens to it: every
// chain visited (hook by hook, base chains in priority order, jumps and returns), the rule that decided in each
// (with its purpose), the final verdict, and the address translations on the way. The basis of `nsnet explain`
// (issue #16) and of partitions (issue #15).
//
// What it models:
//   - a packet from an interface: prerouting (raw guard, then nat), the routing decision (after DNAT), then input
//     (for the host itself) or forward, then postrouting;
//   - a packet between two containers of one bridge (the destination is in the subnet of the bridge it arrived on):
//     bridged, so only `table bridge` sees it, plus the inet hooks with iifname = oifname = the bridge when
//     br_netfilter is on (option `brNetfilter`, default on as in every new netns of this kernel);
//   - a packet the host sends (no `iif`): routing, output (nat), postrouting; delivered to the host itself
//     through `lo` (prerouting without nat, then input) when the destination is one of its addresses;
//   - conntrack as far as the rules need it: nat chains see only a connection's first packet (ct state new), and
//     `ct status dnat` holds once a DNAT happened (or `ctDnat` for a packet of an existing connection).
// What it does not model: other tables (a drop in any base chain is final: `check` reports those), routes other
// than "nsnet subnet -> its bridge, the host's addresses -> local, anything else -> the uplink", rp_filter, bridge
// port isolation (icc=false also isolates ports, outside the firewall). br_netfilter's bridged DNAT (a hairpin
// back into the same bridge) is modelled as far as the hooks go: the bridge family's forward hook runs too.
import {
  LOOPBACK, addrValue, describePurpose, familyOf, findSet, prefixContains,
  type AddrTarget, type Chain, type CtState, type Family, type FirewallModel, type Hook, type IfTarget, type Match,
  type ModelNetwork, type Purpose, type Rule, type SetElement, type Table, type Value,
} from './model.js';
import { renderElement, renderRule } from './render.js';

export type Proto = 'tcp' | 'udp' | 'icmp' | 'arp';

export interface Packet {
  /** Input interface: a bridge, the uplink (`eth0`), `lo`. Absent: the host itself sends the packet. */
  iif?: string;
  /** Output interface for a destination that is neither the host's nor in an nsnet subnet (default: `uplink`). */
  oif?: string;
  saddr: string;
  daddr: string;
  proto: Proto;
  /** tcp/udp destination port. */
  dport?: number;
  /** Conntrack state of the packet (default `new`: the first packet of a connection). */
  ct?: CtState;
  /** A packet of an existing connection (ct not new) that was DNATed when it began (a reply: `ct status dnat`). */
  ctDnat?: boolean;
  mark?: number;
}

export interface EvalOptions {
  /** The host's own addresses besides the gateways of nsnet networks and 127.0.0.0/8 (its uplink address...). */
  localAddrs?: string[];
  /** The interface of the default route (default `eth0`). */
  uplink?: string;
  /** br_netfilter: bridged IPv4 also passes the inet hooks (default true). */
  brNetfilter?: boolean;
}

/** A rule as the evaluator reports it: where it is, its nft text, what it is for. */
export interface RuleRef {
  table: string;
  chain: string;
  /** 0-based position in its chain. */
  index: number;
  text: string;
  purpose: Purpose;
  /** describePurpose(purpose). */
  why: string;
}

export interface ChainVisit {
  hook: Hook;
  /** `inet nsnet`, `bridge nsnet`. */
  table: string;
  chain: string;
  /** 0 for a base chain, 1.. for chains reached by jump. */
  depth: number;
  /** How the chain ended: a rule's verdict, a NAT statement, the end of a regular chain (`end`: back to the
   *  caller), the policy of a base chain. */
  outcome: 'accept' | 'drop' | 'return' | 'dnat' | 'masquerade' | 'end' | 'policy-accept' | 'policy-drop';
  /** The rule that ended it (absent for `end` and policies). */
  rule?: RuleRef;
  /** The map element a DNAT used (with its purpose: the published port). */
  element?: { text: string; purpose?: Purpose };
}

export interface Translation {
  kind: 'dnat' | 'masquerade';
  rule: RuleRef;
  /** dnat: destination before and after; masquerade: the source is replaced by the address of `oif`. */
  from?: { addr: string; port?: number };
  to?: { addr: string; port?: number };
  oif?: string;
  element?: { text: string; purpose?: Purpose };
}

export interface PathResult {
  verdict: 'accept' | 'drop';
  /** How it travelled: to the host itself, routed to `oif`, or bridged within one bridge. */
  delivery: 'local' | 'routed' | 'bridged';
  /** The interface it leaves through (absent when delivered locally). */
  oif?: string;
  visits: ChainVisit[];
  /** The rule that dropped it; or, when accepted, the last rule of a filter chain that accepted it (absent: no
   *  rule decided, the policies let it through). */
  decidedBy?: RuleRef;
  /** Dropped by the kernel, not by a rule (a 127/8 destination arriving from outside: a martian). */
  kernelDrop?: string;
  translations: Translation[];
  /** The packet as it leaves (after DNAT; masquerade is in `translations`, its new source depends on `oif`). */
  packet: Packet;
  notes: string[];
}

// ---------------------------------------------------------------------------------------------- context

interface Ctx {
  m: FirewallModel;
  p: Packet;
  /** Current iif/oif as a rule in this hook sees them ('' when not known there, as nft). */
  iif: string;
  oif: string;
  family: Family;
  ctDnat: boolean;
  visits: ChainVisit[];
  translations: Translation[];
  local: (a: string) => boolean;
}

function addrEq(a: string, b: string): boolean {
  const x = addrValue(a), y = addrValue(b);
  return x !== null && x === y && familyOf(a) === familyOf(b);
}

function inSet(t: Table, name: string, test: (v: Value) => boolean): boolean {
  return (findSet(t, name)?.elements ?? []).some((e) => e.key.length === 1 && test(e.key[0]));
}

function ifMatch(t: Table, target: IfTarget, name: string): boolean {
  if ('set' in target) return inSet(t, target.set, (v) => v.t === 'ifname' && v.name === name);
  return target.names.includes(name);
}

function addrMatch(t: Table, target: AddrTarget, a: string): boolean {
  if ('set' in target) {
    return inSet(t, target.set, (v) => (v.t === 'prefix' ? prefixContains(v.prefix, a) : v.t === 'addr' ? addrEq(v.addr.addr, a) : false));
  }
  if ('prefix' in target) return prefixContains(target.prefix, a);
  return addrEq(target.addr.addr, a);
}

function matches(t: Table, m: Match, c: Ctx): boolean {
  const p = c.p;
  const ip = p.proto !== 'arp';
  switch (m.m) {
    case 'iifname':
    case 'oifname': {
      const hit = ifMatch(t, m.target, m.m === 'iifname' ? c.iif : c.oif);
      return m.op === '==' ? hit : !hit;
    }
    case 'saddr':
    case 'daddr': {
      // A payload match of another family never matches, `!=` included (nft adds the family as a dependency).
      if (!ip || m.family !== c.family) return false;
      const hit = addrMatch(t, m.target, m.m === 'saddr' ? p.saddr : p.daddr);
      return m.op === '==' ? hit : !hit;
    }
    case 'l4proto': return ip && (m.protos as string[]).includes(p.proto);
    case 'dport': return (p.proto === 'tcp' || p.proto === 'udp') && p.dport === m.port;
    case 'ct-state': return m.states.includes(p.ct ?? 'new');
    case 'ct-status': return m.status === 'dnat' && c.ctDnat;
    case 'fib-daddr-local': return ip && c.local(p.daddr);
    case 'ether-type': return m.type === (p.proto === 'arp' ? 'arp' : c.family === 'ipv4' ? 'ip' : 'ip6');
    case 'mark': return m.op === '==' ? (p.mark ?? 0) === m.value : (p.mark ?? 0) !== m.value;
    case 'lookup': return ip && m.family === c.family && mapLookup(t, m.set, m.key, p) !== undefined;
  }
}

/** The element of a DNAT map whose key is this packet's (host address, protocol, port). */
function mapLookup(t: Table, map: string, key: Array<'daddr' | 'l4proto' | 'dport'>, p: Packet): SetElement | undefined {
  const want = key.map((k) => (k === 'daddr' ? p.daddr : k === 'l4proto' ? p.proto : p.dport));
  return (findSet(t, map)?.elements ?? []).find((e) => e.key.length === want.length && e.key.every((v, i) => {
    const w = want[i];
    if (w === undefined) return false;
    if (v.t === 'addr') return typeof w === 'string' && addrEq(v.addr.addr, w);
    if (v.t === 'proto') return v.proto === w;
    if (v.t === 'port') return v.port === w;
    return false;
  }));
}

function ref(t: Table, chain: Chain, index: number, r: Rule): RuleRef {
  return { table: `${t.family} ${t.name}`, chain: chain.name, index, text: renderRule(r), purpose: r.purpose, why: describePurpose(r.purpose) };
}

type Outcome = { kind: 'accept' | 'drop'; rule?: RuleRef } | { kind: 'continue' };

/** Runs one chain; returns a final verdict for the hook (accept/drop) or `continue` (return / end of a regular
 *  chain: the caller goes on with its next rule). */
function runChain(t: Table, chain: Chain, hook: Hook, c: Ctx, depth: number): Outcome {
  const visit: ChainVisit = { hook, table: `${t.family} ${t.name}`, chain: chain.name, depth, outcome: 'end' };
  c.visits.push(visit);
  for (let i = 0; i < chain.rules.length; i++) {
    const r = chain.rules[i];
    if (!r.match.every((m) => matches(t, m, c))) continue;
    const a = r.action;
    switch (a.a) {
      case 'accept':
      case 'drop':
        visit.outcome = a.a;
        visit.rule = ref(t, chain, i, r);
        return { kind: a.a, rule: visit.rule };
      case 'return':
        visit.outcome = 'return';
        visit.rule = ref(t, chain, i, r);
        if (depth > 0) return { kind: 'continue' };
        return policy(chain, visit);
      case 'jump': {
        const target = t.chains.find((x) => x.name === a.chain);
        if (!target) continue; // nft refuses such a script; nothing to follow
        const callee = c.visits.length;
        const o = runChain(t, target, hook, c, depth + 1);
        if (o.kind !== 'continue') {
          visit.outcome = c.visits[callee].outcome; // as the chain jumped to ended: accept, drop, dnat, ...
          if (c.visits[callee].element) visit.element = c.visits[callee].element;
          visit.rule = ref(t, chain, i, r);
          return o;
        }
        continue;
      }
      case 'masquerade': {
        visit.outcome = 'masquerade';
        visit.rule = ref(t, chain, i, r);
        c.translations.push({ kind: 'masquerade', rule: visit.rule, from: { addr: c.p.saddr }, oif: c.oif });
        return { kind: 'accept', rule: visit.rule };
      }
      case 'dnat':
      case 'dnat-map': {
        if (a.family !== c.family) continue;
        let to: { addr: string; port?: number };
        let element: ChainVisit['element'];
        if (a.a === 'dnat') {
          to = { addr: a.to.addr, ...(a.port !== undefined ? { port: a.port } : {}) };
        } else {
          const e = mapLookup(t, a.map, a.key, c.p);
          if (!e || !e.value) continue; // a map miss: the rule does not match, the next one is tried
          const [addr, port] = e.value;
          to = { addr: addr.t === 'addr' ? addr.addr.addr : '', ...(port?.t === 'port' ? { port: port.port } : {}) };
          element = { text: renderElement(e), ...(e.purpose ? { purpose: e.purpose } : {}) };
        }
        visit.outcome = 'dnat';
        visit.rule = ref(t, chain, i, r);
        if (element) visit.element = element;
        c.translations.push({
          kind: 'dnat', rule: visit.rule, from: { addr: c.p.daddr, ...(c.p.dport !== undefined ? { port: c.p.dport } : {}) }, to,
          ...(element ? { element } : {}),
        });
        c.p = { ...c.p, daddr: to.addr, ...(to.port !== undefined ? { dport: to.port } : {}) };
        c.ctDnat = true;
        return { kind: 'accept', rule: visit.rule };
      }
    }
  }
  if (depth > 0) return { kind: 'continue' };
  return policy(chain, visit);
}

function policy(chain: Chain, visit: ChainVisit): Outcome {
  const pol = chain.base?.policy ?? 'accept';
  visit.outcome = pol === 'drop' ? 'policy-drop' : 'policy-accept';
  return { kind: pol };
}

/** Base chains on this hook of the tables that see the packet, in the order the kernel runs them (priority). */
function baseChains(m: FirewallModel, families: string[], hook: Hook): Array<{ t: Table; c: Chain }> {
  const out: Array<{ t: Table; c: Chain; order: number }> = [];
  let n = 0;
  for (const t of m.tables) {
    if (!families.includes(t.family)) continue;
    for (const c of t.chains) if (c.base?.hook === hook) out.push({ t, c, order: n++ });
  }
  return out.sort((a, b) => a.c.base!.priority.value - b.c.base!.priority.value || a.order - b.order);
}

/** Runs every base chain of a hook; a drop anywhere is final. Nat chains only for a connection's first packet. */
function runHook(c: Ctx, hook: Hook, families: string[], opts: { nat: boolean }): Outcome {
  let last: Outcome = { kind: 'accept' };
  for (const { t, c: chain } of baseChains(c.m, families, hook)) {
    if (chain.base!.type === 'nat' && !opts.nat) continue;
    const o = runChain(t, chain, hook, c, 0);
    if (o.kind === 'drop') return o;
    if (o.kind === 'accept' && o.rule && chain.base!.type === 'filter') last = o;
  }
  return last;
}

// ---------------------------------------------------------------------------------------------- the walk

function networkOfBridge(m: FirewallModel, ifname: string): ModelNetwork | undefined {
  return m.networks.find((n) => n.bridge === ifname);
}

function networkOfAddr(m: FirewallModel, a: string): ModelNetwork | undefined {
  return m.networks.find((n) => n.subnets.some((s) => prefixContains(s, a)));
}

/**
 * Walks `packet` through the model. Never throws for a well-formed model; addresses are compared by value, so
 * any spelling the model's own family accepts works.
 */
export function evaluate(m: FirewallModel, packet: Packet, o: EvalOptions = {}): PathResult {
  const uplink = o.uplink ?? 'eth0';
  // br_netfilter passes IPv4/IPv6 to the inet hooks, never ARP.
  const brnf = (o.brNetfilter ?? true) && packet.proto !== 'arp';
  const family = familyOf(packet.daddr);
  const locals = [...m.networks.flatMap((n) => n.gateways.map((g) => g.addr)), ...(o.localAddrs ?? [])];
  const local = (a: string) => prefixContains(LOOPBACK[familyOf(a)], a) || locals.some((l) => addrEq(l, a));
  const inetFamilies = ['inet', family === 'ipv4' ? 'ip' : 'ip6'];
  const c: Ctx = {
    m, p: { ...packet }, iif: packet.iif ?? '', oif: '', family, ctDnat: packet.ctDnat ?? false, visits: [], translations: [], local,
  };
  const isNew = (packet.ct ?? 'new') === 'new';
  const notes: string[] = [];
  if (!isNew) notes.push('not the first packet of its connection: nat chains are not consulted (conntrack applies the connection\'s translations)');
  const route = (daddr: string): string | null => {
    if (local(daddr)) return null;
    return networkOfAddr(m, daddr)?.bridge ?? packet.oif ?? uplink;
  };
  const done = (verdict: 'accept' | 'drop', delivery: PathResult['delivery'], oif: string | undefined, decided: Outcome, extra: Partial<PathResult> = {}): PathResult => ({
    verdict, delivery, ...(oif !== undefined ? { oif } : {}), visits: c.visits,
    ...('rule' in decided && decided.rule ? { decidedBy: decided.rule } : {}),
    translations: c.translations, packet: c.p, notes, ...extra,
  });

  // The host sends it: routing, output, postrouting (and through lo to itself).
  if (packet.iif === undefined) {
    c.iif = '';
    c.oif = route(c.p.daddr) ?? 'lo';
    let o1 = runHook(c, 'output', inetFamilies, { nat: isNew });
    if (o1.kind === 'drop') return done('drop', 'routed', c.oif, o1);
    c.oif = route(c.p.daddr) ?? 'lo'; // re-routed after a DNAT
    const o2 = runHook(c, 'postrouting', inetFamilies, { nat: isNew });
    if (o2.kind === 'drop') return done('drop', 'routed', c.oif, o2);
    if (c.oif !== 'lo') return done('accept', 'routed', c.oif, decider(o1, o2));
    c.iif = 'lo';
    c.oif = '';
    const o3 = runHook(c, 'prerouting', inetFamilies, { nat: false });
    if (o3.kind === 'drop') return done('drop', 'local', undefined, o3);
    o1 = runHook(c, 'input', inetFamilies, { nat: false });
    return done(o1.kind === 'drop' ? 'drop' : 'accept', 'local', undefined, o1);
  }

  // Bridged: between two ports of the bridge it arrived on.
  const inNet = networkOfBridge(m, packet.iif);
  if (inNet && !local(packet.daddr) && inNet.subnets.some((s) => prefixContains(s, packet.daddr))) {
    c.oif = '';
    if (brnf) {
      const pre = runHook(c, 'prerouting', inetFamilies, { nat: isNew });
      if (pre.kind === 'drop') return done('drop', 'bridged', packet.iif, pre);
    } else {
      notes.push(packet.proto === 'arp' ? 'ARP is not IP: only the bridge family\'s hooks see it' : 'br_netfilter off: traffic within one bridge passes only the bridge family\'s hooks');
    }
    const br = runHook(c, 'forward', ['bridge'], { nat: false });
    if (br.kind === 'drop') return done('drop', 'bridged', packet.iif, br);
    let decided: Outcome = br;
    if (brnf) {
      c.oif = packet.iif;
      const fw = runHook(c, 'forward', inetFamilies, { nat: false });
      if (fw.kind === 'drop') return done('drop', 'bridged', packet.iif, fw);
      if ('rule' in fw && fw.rule) decided = fw;
      const post = runHook(c, 'postrouting', inetFamilies, { nat: isNew });
      if (post.kind === 'drop') return done('drop', 'bridged', packet.iif, post);
    }
    return done('accept', 'bridged', packet.iif, decided);
  }

  // Routed (or for the host itself): prerouting, routing, input | forward + postrouting.
  c.oif = '';
  const pre = runHook(c, 'prerouting', inetFamilies, { nat: isNew });
  if (pre.kind === 'drop') return done('drop', 'routed', undefined, pre);
  const dest = route(c.p.daddr);
  if (dest === null) {
    if (family === 'ipv4' && prefixContains(LOOPBACK.ipv4, c.p.daddr) && packet.iif !== 'lo' && !networkOfBridge(m, packet.iif)) {
      // route_localnet is set on nsnet's bridges only: anywhere else a 127/8 destination is a martian.
      return done('drop', 'local', undefined, { kind: 'drop' }, { kernelDrop: `martian destination ${c.p.daddr} arriving on ${packet.iif} (route_localnet is off there)` });
    }
    const inp = runHook(c, 'input', inetFamilies, { nat: false });
    return done(inp.kind === 'drop' ? 'drop' : 'accept', 'local', undefined, inp);
  }
  c.oif = dest;
  // br_netfilter's "bridged DNAT": a frame DNATed back into the bridge it arrived on is bridged (out of a port of
  // that bridge; the port needs hairpin mode, which nsnet sets), so it passes the bridge family's forward hook
  // before the inet forward hook (with iifname = oifname = the bridge). Measured with the kernel's trace.
  const bridgedDnat = brnf && isNew && c.translations.some((t) => t.kind === 'dnat') && !!networkOfBridge(m, packet.iif) && dest === packet.iif;
  const how = bridgedDnat ? 'bridged' : 'routed';
  if (bridgedDnat) {
    notes.push('br_netfilter: DNATed back into the bridge it came from, the frame is bridged (bridged DNAT, hairpin mode on the port) and also passes the bridge family\'s forward hook');
    const br = runHook(c, 'forward', ['bridge'], { nat: false });
    if (br.kind === 'drop') return done('drop', how, dest, br);
  }
  const fw = runHook(c, 'forward', inetFamilies, { nat: false });
  if (fw.kind === 'drop') return done('drop', how, dest, fw);
  const post = runHook(c, 'postrouting', inetFamilies, { nat: isNew });
  if (post.kind === 'drop') return done('drop', how, dest, post);
  return done('accept', how, dest, decider(fw, post));
}

/** The last outcome that names a rule (runHook only names filter-chain accepts and drops). */
function decider(...outs: Outcome[]): Outcome {
  return [...outs].reverse().find((o) => 'rule' in o && o.rule) ?? { kind: 'accept' };
}

/** One line per visited chain, for people and test failures: `forward/inet nsnet forward: drop by #7 (isolation...)`. */
export function formatPath(r: PathResult): string {
  const L = r.visits.map((v) => `${'  '.repeat(v.depth)}${v.hook} ${v.table} ${v.chain}: ${v.outcome}${v.rule ? ` (#${v.rule.index}: ${v.rule.why})` : ''}${v.element ? ` [${v.element.text}]` : ''}`);
  for (const t of r.translations) {
    L.push(t.kind === 'dnat' ? `dnat ${t.from?.addr}:${t.from?.port ?? ''} -> ${t.to?.addr}:${t.to?.port ?? ''}` : `masquerade ${t.from?.addr} via ${t.oif}`);
  }
  if (r.kernelDrop) L.push(`kernel: ${r.kernelDrop}`);
  L.push(`verdict: ${r.verdict} (${r.delivery}${r.oif ? ` via ${r.oif}` : ''})${r.decidedBy ? ` by ${r.decidedBy.chain} #${r.decidedBy.index}: ${r.decidedBy.why}` : ''}`);
  return L.join('\n');
}
