// PURE: `nsnet explain FROM TO[:PORT][/tcp|udp]` — why a packet from FROM does (or does not) reach TO, hop by hop,
// from nsnet's own state: the store's networks, containers and endpoints, the typed firewall model (evaluated by
// src/firewall/evaluate.ts), the names the resolver's view holds (src/engine/dnsctl.ts dnsView), and the routes
// and addresses the kernel has (given by the engine: src/engine/explain.ts). No I/O here.
//
// What this adds to the evaluator: which addresses a packet really carries (a container's route and source
// address, the gateway it uses for "host", the host's uplink address for "outside", a published port's host
// address), what nsnet knows outside the firewall (icc=false is kernel port isolation: an isolated port never
// receives a frame from another isolated port; `none` and `host` network modes; a container that is not
// running; a port nobody published; a container name that does not resolve), and what to do about a drop.
import type { ContainerRecord, EndpointRecord, NetworkRecord, PartitionState } from '../types.js';
import { NAMES, describePurpose, findChain, findSet, findTable, prefixContains, prefixOf, type FirewallModel, type Match, type PortRef, type PurposeKind, type Table } from '../firewall/model.js';
import { evaluate, type ChainVisit, type PathResult, type Packet, type RuleRef } from '../firewall/evaluate.js';
import { renderRule } from '../firewall/render.js';
import { partitionCut } from '../engine/partitions.js';
import { UserError, showValue } from '../util/errors.js';

export type L4 = 'tcp' | 'udp' | 'icmp';

/** TO as given: the target, and the port/protocol of the probe (no port: an ICMP echo request, a ping). */
export interface Target {
  ref: string;
  port?: number;
  proto: L4;
}

/** A route as `ip route` shows it (main table). */
export interface NsRoute {
  dst: string;
  prefixLen: number;
  gateway: string | null;
  ifname: string;
}

/** An interface address. */
export interface NsAddr {
  ifname: string;
  address: string;
  prefixLen: number;
}

/** The host network namespace as the kernel shows it. */
export interface HostView {
  addrs: NsAddr[];
  routes: NsRoute[];
  /** net.bridge.bridge-nf-call-iptables in the host netns. */
  brNetfilter: boolean;
}

/** The resolver's view (the same data `dnsView` writes for the resolver). */
export interface NameView {
  networks: Array<{ id: string; name: string; gateway: string }>;
  entries: Array<{ networkId: string; names: string[]; ip: string; containerId: string }>;
}

export interface ExplainInput {
  networks: NetworkRecord[];
  /** With their state refreshed (running / exited). */
  containers: ContainerRecord[];
  endpoints: EndpointRecord[];
  model: FirewallModel;
  dns: NameView;
  host: HostView;
  /** Routes inside a container's netns as the kernel has them, by the id of the container that owns the netns;
   *  absent for a container: derived from the store (on-link subnets, default via the first network's gateway). */
  nsRoutes?: Map<string, NsRoute[]>;
  /** Container ids whose netns exists. Absent: every bridge/none container's netns is assumed to exist. */
  netnsExists?: Set<string>;
  /** What `nsnet check` reports, one line each (the prediction is from the store: the kernel may differ). */
  differences?: string[];
  /** The partitions the firewall holds now (src/engine/partitions.ts partitionFirewallState: expired ones left
   *  out, each group's members with their host-side veth, and the rest). Absent: none. */
  partitions?: PartitionState[];
}

/** One step of the path. */
export interface Hop {
  /** Where: `FROM netns`, `bridge nsbr-..`, `prerouting`, `forward`, `nat`, `TO netns`, `host`, `names`. */
  at: string;
  text: string;
  /** Chain hops: as the evaluator visited them. */
  hook?: string;
  table?: string;
  chain?: string;
  outcome?: ChainVisit['outcome'];
  rule?: RuleInfo;
}

export interface RuleInfo {
  table: string;
  chain: string;
  /** 0-based position in its chain. */
  index: number;
  text: string;
  purpose: PurposeKind | 'port-isolation' | 'route' | 'mode' | 'kernel';
  why: string;
}

export interface SideInfo {
  kind: 'container' | 'host' | 'outside' | 'nobody';
  /** The container's name (container), or the given address. */
  name?: string;
  id?: string;
  /** The address used on the path. */
  addr?: string;
  mode?: ContainerRecord['mode'];
  state?: ContainerRecord['state'];
}

/** What --trace sends: from FROM's netns (container: the id of the container owning the netns; or the host). */
export interface ProbeSpec {
  from: { kind: 'host' } | { kind: 'container'; id: string; name: string };
  saddr?: string;
  daddr: string;
  proto: L4;
  dport?: number;
  /** Where the kernel will first see it in the host netns: a bridge (prerouting) or the host's output. */
  hostHook: 'prerouting' | 'output' | 'none';
}

export interface Explanation {
  query: { from: string; to: string; port?: number; proto: L4 };
  from: SideInfo;
  to: SideInfo;
  /** The packet as it enters the host's firewall (what the evaluator was given), when it passes the host. */
  packet?: Packet;
  hops: Hop[];
  verdict: 'delivered' | 'dropped';
  /** One line: why. */
  reason: string;
  decidedBy?: RuleInfo;
  /** Commands (or the change) that would make it pass. */
  fix: string[];
  names: string[];
  notes: string[];
  warnings: string[];
  /** The chains the evaluator predicts, in order (what --trace compares with the kernel's trace). */
  chains: Array<{ hook: string; table: string; chain: string; depth: number; outcome: ChainVisit['outcome']; rule?: number }>;
  /** What --trace would send (absent: nothing can be sent, e.g. from outside). */
  probe?: ProbeSpec;
  /** Why --trace cannot send a probe for this question. */
  noProbe?: string;
  /** The packet arrives, but its answers are dropped (the other direction of a one-way partition): a TCP
   *  connection or a ping fails although the first packet is delivered. */
  replyCut?: string;
}

// ------------------------------------------------------------------------------------------------ input

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
export const isIPv4 = (s: string) => IPV4.test(s);
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,253}$/;

/** FROM: a container name (or id), `host`, `outside`, or an IPv4 address. */
export function parseFrom(s: string): string {
  if (s === 'host' || s === 'outside' || isIPv4(s) || NAME.test(s)) return s;
  throw new UserError(`invalid FROM ${showValue(s)}: expected a container name, host, outside or an IPv4 address`, 'invalid');
}

/** TO[:PORT][/tcp|udp]. */
export function parseTo(s: string): Target {
  let rest = s;
  let proto: L4 | undefined;
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) {
    const p = rest.slice(slash + 1);
    if (p !== 'tcp' && p !== 'udp') throw new UserError(`invalid protocol ${showValue(p)} in ${showValue(s)}: expected tcp or udp`, 'invalid');
    proto = p;
    rest = rest.slice(0, slash);
  }
  let port: number | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon >= 0) {
    const p = rest.slice(colon + 1);
    if (!/^\d{1,5}$/.test(p) || Number(p) < 1 || Number(p) > 65535) throw new UserError(`invalid port ${showValue(p)} in ${showValue(s)}: expected 1-65535`, 'invalid');
    port = Number(p);
    rest = rest.slice(0, colon);
  }
  if (proto && port === undefined) throw new UserError(`${showValue(s)}: /${proto} needs a port (TO:PORT/${proto})`, 'invalid');
  if (!(rest === 'host' || rest === 'outside' || isIPv4(rest) || NAME.test(rest))) {
    throw new UserError(`invalid TO ${showValue(rest)}: expected a container name, host, outside or an IPv4 address`, 'invalid');
  }
  return { ref: rest, ...(port !== undefined ? { port } : {}), proto: port === undefined ? 'icmp' : proto ?? 'tcp' };
}

// ------------------------------------------------------------------------------------------------ the host

interface HostFacts {
  uplink: string;
  uplinkAddr?: string;
  /** The representative outside address: the default route's gateway, else TEST-NET-3. */
  outside: string;
  hasDefault: boolean;
  locals: string[];
}

const SAMPLE_OUTSIDE = '203.0.113.1';

function hostFacts(inp: ExplainInput): HostFacts {
  const bridges = new Set(inp.networks.map((n) => n.bridge));
  const def = inp.host.routes.find((r) => r.prefixLen === 0);
  const uplink = def?.ifname ?? inp.host.addrs.find((a) => a.ifname !== 'lo' && !bridges.has(a.ifname))?.ifname ?? 'eth0';
  const uplinkAddr = inp.host.addrs.find((a) => a.ifname === uplink)?.address;
  return {
    uplink, ...(uplinkAddr ? { uplinkAddr } : {}), outside: def?.gateway ?? SAMPLE_OUTSIDE, hasDefault: !!def,
    locals: inp.host.addrs.map((a) => a.address),
  };
}

const inPrefix = (dst: string, len: number, a: string) => prefixContains({ family: 'ipv4', addr: dst, len }, a);
const LOOP = (a: string) => inPrefix('127.0.0.0', 8, a);

/** Longest-prefix match. */
export function routeLookup(routes: NsRoute[], daddr: string): NsRoute | undefined {
  let best: NsRoute | undefined;
  for (const r of routes) if (inPrefix(r.dst, r.prefixLen, daddr) && (!best || r.prefixLen > best.prefixLen)) best = r;
  return best;
}

// ------------------------------------------------------------------------------------------------ sides

type Side =
  | { kind: 'container'; c: ContainerRecord; /** owner of the netns (c itself, or its container: target) */ ns: ContainerRecord; eps: EndpointRecord[]; addr?: string; /** The name TO was given as (container name, alias, name.network). */ name?: string }
  | { kind: 'host'; addr?: string; via?: ContainerRecord }
  | { kind: 'outside'; addr: string; given: boolean }
  | { kind: 'nobody'; addr: string; net: NetworkRecord };

const ifOrder = (a: EndpointRecord, b: EndpointRecord) => Number(a.ifname.replace(/\D/g, '') || 0) - Number(b.ifname.replace(/\D/g, '') || 0) || a.ifname.localeCompare(b.ifname);

class World {
  readonly f: HostFacts;
  readonly nets: Map<string, NetworkRecord>;
  constructor(readonly inp: ExplainInput) {
    this.f = hostFacts(inp);
    this.nets = new Map(inp.networks.map((n) => [n.id, n]));
  }
  eps(c: ContainerRecord): EndpointRecord[] {
    return this.inp.endpoints.filter((e) => e.containerId === c.id).sort(ifOrder);
  }
  byId(id: string | null): ContainerRecord | undefined {
    return id ? this.inp.containers.find((c) => c.id === id) : undefined;
  }
  find(ref: string): ContainerRecord | undefined {
    const byName = this.inp.containers.find((c) => c.name === ref);
    if (byName) return byName;
    if (!/^[0-9a-f]{1,64}$/.test(ref)) return undefined;
    const m = this.inp.containers.filter((c) => c.id.startsWith(ref));
    return m.length === 1 ? m[0] : undefined;
  }
  netOfAddr(a: string): NetworkRecord | undefined {
    return this.inp.networks.find((n) => { const p = prefixOf(n.subnet); return inPrefix(p.addr, p.len, a); });
  }
  netOfBridge(b: string): NetworkRecord | undefined {
    return this.inp.networks.find((n) => n.bridge === b);
  }
  isLocal(a: string): boolean {
    return LOOP(a) || this.f.locals.includes(a) || this.inp.networks.some((n) => n.gateway === a);
  }
  /** The side a container name stands for (its netns owner; host mode is the host). */
  containerSide(c: ContainerRecord, name?: string, addr?: string): Side {
    if (c.mode === 'host') return { kind: 'host', via: c };
    const ns = c.mode === 'container' ? this.byId(c.modeTarget) ?? c : c;
    if (ns.mode === 'host') return { kind: 'host', via: c };
    return { kind: 'container', c, ns, eps: this.eps(ns), ...(addr ? { addr } : {}), ...(name ? { name } : {}) };
  }
  side(ref: string, what: 'FROM' | 'TO'): Side {
    if (ref === 'host') return { kind: 'host' };
    if (ref === 'outside') return { kind: 'outside', addr: this.f.outside, given: false };
    if (isIPv4(ref)) {
      const ep = this.inp.endpoints.find((e) => e.ip === ref);
      if (ep) {
        const c = this.byId(ep.containerId);
        if (c) return this.containerSide(c, undefined, ref);
      }
      if (this.isLocal(ref)) return { kind: 'host', addr: ref };
      const n = this.netOfAddr(ref);
      if (n) return { kind: 'nobody', addr: ref, net: n };
      return { kind: 'outside', addr: ref, given: true };
    }
    const c = this.find(ref);
    if (c) return this.containerSide(c, ref);
    throw new UserError(`no such container: ${showValue(ref)} (${what} must be a container name, host, outside or an IPv4 address)`, 'invalid');
  }
  /** A container's routes: the kernel's when known, else what nsnet sets up. */
  routesOf(ns: ContainerRecord, eps: EndpointRecord[]): NsRoute[] {
    const k = this.inp.nsRoutes?.get(ns.id);
    if (k) return k;
    const out: NsRoute[] = [];
    for (const e of eps) {
      const n = this.nets.get(e.networkId);
      if (!n) continue;
      const p = prefixOf(n.subnet);
      out.push({ dst: p.addr, prefixLen: p.len, gateway: null, ifname: e.ifname });
    }
    const first = eps[0] && this.nets.get(eps[0].networkId);
    if (first) out.push({ dst: '0.0.0.0', prefixLen: 0, gateway: first.gateway, ifname: eps[0].ifname });
    return out;
  }
  /** Published ports as the firewall model holds them (one element per host port). */
  published(): Array<PortRef & { container: string }> {
    const inet = findTable(this.inp.model, 'inet');
    const out: Array<PortRef & { container: string }> = [];
    for (const m of [NAMES.maps.dnatAny.ipv4, NAMES.maps.dnatAddr.ipv4]) {
      for (const e of findSet(inet, m)?.elements ?? []) {
        if (e.purpose?.kind === 'published-port' && e.purpose.port) out.push({ ...e.purpose.port, container: e.purpose.container ?? '' });
      }
    }
    return out;
  }
}

function sideInfo(s: Side, addr?: string): SideInfo {
  switch (s.kind) {
    case 'container': return { kind: 'container', name: s.c.name, id: s.c.id, mode: s.c.mode, state: s.c.state, ...(addr ?? s.addr ? { addr: addr ?? s.addr } : {}) };
    case 'host': return { kind: 'host', ...(s.via ? { name: s.via.name, id: s.via.id, mode: s.via.mode, state: s.via.state } : {}), ...(addr ?? s.addr ? { addr: addr ?? s.addr } : {}) };
    case 'outside': return { kind: 'outside', addr: addr ?? s.addr };
    case 'nobody': return { kind: 'nobody', addr: s.addr };
  }
}

// ------------------------------------------------------------------------------------------------ names

/** "TO resolves to ... on network N from FROM", or why not: what the resolver answers FROM for this name. */
function resolveName(w: World, from: Extract<Side, { kind: 'container' }>, name: string): { lines: string[]; ip?: string; net?: NetworkRecord; fix?: string } {
  const who = from.c.name;
  const first = from.eps[0];
  const firstNet = first && w.nets.get(first.networkId);
  if (from.ns.mode === 'none' || !first || !firstNet) return { lines: [`${name} does not resolve from ${who}: ${who} is on no network (no resolver)`] };
  if (firstNet.isDefault) {
    return {
      lines: [`${name} does not resolve from ${who}: its first network is the default network ${firstNet.name}, which has no name service (as Docker's docker0); its resolv.conf points at the host's upstreams`],
      fix: `put both on a user-defined network: nsnet network create NET; nsnet network connect NET ${who}; nsnet network connect NET ${name}`,
    };
  }
  const dnsNets = new Map(w.inp.dns.networks.map((n) => [n.id, n]));
  // The query arrives on the first network's gateway; then the asker's other networks (as src/dns/answer.ts).
  const order = from.eps.map((e) => e.networkId).filter((id, i, a) => a.indexOf(id) === i && dnsNets.has(id));
  let [bare, netName] = [name, ''];
  for (const id of order) {
    const hits = w.inp.dns.entries.filter((e) => e.networkId === id && e.names.includes(name));
    if (hits.length) {
      const n = w.nets.get(id)!;
      const rr = hits.length > 1 ? ` (round robin among ${hits.map((h) => h.ip).join(', ')})` : '';
      return { lines: [`${name} resolves to ${hits[0].ip} on network ${n.name} from ${who} (nsnet's resolver on ${firstNet.gateway})${rr}`], ip: hits[0].ip, net: n };
    }
  }
  const dot = name.lastIndexOf('.');
  if (dot > 0) { bare = name.slice(0, dot); netName = name.slice(dot + 1); }
  if (netName) {
    const n = w.inp.networks.find((x) => x.name === netName);
    if (n && order.includes(n.id)) {
      const hit = w.inp.dns.entries.find((e) => e.networkId === n.id && e.names.includes(bare));
      if (hit) return { lines: [`${name} resolves to ${hit.ip} on network ${n.name} from ${who} (nsnet's resolver on ${firstNet.gateway})`], ip: hit.ip, net: n };
    }
  }
  const to = w.find(name);
  const mine = from.eps.map((e) => w.nets.get(e.networkId)?.name).filter(Boolean);
  if (!to) return { lines: [`${name} does not resolve from ${who}: no container has that name or alias on ${who}'s networks (${mine.join(', ')}); nsnet's resolver answers NXDOMAIN`] };
  const toSide = w.containerSide(to, name);
  if (toSide.kind !== 'container' || !toSide.eps.length) {
    return { lines: [`${name} does not resolve from ${who}: ${name} has no network endpoint (network mode ${to.mode}${to.state !== 'running' ? `, ${to.state}` : ''})`] };
  }
  const theirs = toSide.eps.map((e) => w.nets.get(e.networkId)).filter((n): n is NetworkRecord => !!n);
  if (theirs.every((n) => n.isDefault)) {
    return { lines: [`${name} does not resolve from ${who}: ${name} is only on the default network bridge, which has no name service`], fix: `nsnet network connect ${mine[0]} ${name}` };
  }
  return {
    lines: [`${name} does not resolve from ${who}: they share no user-defined network (${who}: ${mine.join(', ')}; ${name}: ${theirs.map((n) => n.name).join(', ')})`],
    fix: `nsnet network connect ${theirs.find((n) => !n.isDefault)!.name} ${who}`,
  };
}

// ------------------------------------------------------------------------------------------------ the walk

class Builder {
  hops: Hop[] = [];
  notes: string[] = [];
  warnings: string[] = [];
  fix: string[] = [];
  names: string[] = [];
  chains: Explanation['chains'] = [];
  packet?: Packet;
  probe?: ProbeSpec;
  noProbe?: string;
  replyCut?: string;
  hop(at: string, text: string, extra: Partial<Hop> = {}): void {
    this.hops.push({ at, text, ...extra });
  }
  addFix(f: string | undefined): void {
    if (f && !this.fix.includes(f)) this.fix.push(f);
  }
}

type Verdict = { verdict: 'delivered' | 'dropped'; reason: string; decidedBy?: RuleInfo; to?: SideInfo };

const fromRef = (r: NonNullable<PathResult['decidedBy']>): RuleInfo => ({ table: r.table, chain: r.chain, index: r.index, text: r.text, purpose: r.purpose.kind, why: r.why });
const pseudo = (purpose: RuleInfo['purpose'], why: string, where = 'kernel'): RuleInfo => ({ table: where, chain: '', index: -1, text: '', purpose, why });

function visitText(v: ChainVisit): string {
  const out = v.outcome === 'policy-accept' ? 'no rule matched: policy accept' : v.outcome === 'policy-drop' ? 'no rule matched: policy drop'
    : v.outcome === 'end' ? 'no rule matched: back to the calling chain' : v.outcome;
  return `${v.table} ${v.chain}: ${out}${v.rule ? ` by rule #${v.rule.index} \`${v.rule.text}\` (${v.rule.why})` : ''}${v.element ? ` [element ${v.element.text}]` : ''}`;
}

function addEvaluation(b: Builder, r: PathResult, only?: (v: ChainVisit) => boolean): void {
  for (const v of r.visits) {
    if (only && !only(v)) continue;
    b.hop(v.hook, visitText(v), {
      hook: v.hook, table: v.table, chain: v.chain, outcome: v.outcome,
      ...(v.rule ? { rule: fromRef(v.rule) } : {}),
    });
    b.chains.push({ hook: v.hook, table: v.table, chain: v.chain, depth: v.depth, outcome: v.outcome, ...(v.rule ? { rule: v.rule.index } : {}) });
  }
  for (const n of r.notes) b.notes.push(n);
}

function translations(b: Builder, w: World, r: PathResult): void {
  for (const t of r.translations) {
    if (t.kind === 'dnat') {
      const p = t.element?.purpose;
      const who = p?.container ? w.byId(p.container)?.name ?? p.container.slice(0, 12) : '';
      b.hop('nat', `DNAT ${t.from?.addr}:${t.from?.port ?? ''} -> ${t.to?.addr}:${t.to?.port ?? ''}${who ? ` (published port of ${who})` : ''} by ${t.rule.chain} #${t.rule.index}`);
    } else {
      const n = w.netOfBridge(t.oif ?? '');
      const src = n ? n.gateway : w.inp.host.addrs.find((a) => a.ifname === t.oif)?.address ?? `the address of ${t.oif}`;
      b.hop('nat', `masquerade: source ${t.from?.addr} -> ${src} (leaving via ${t.oif}) by ${t.rule.chain} #${t.rule.index} (${t.rule.why})`);
    }
  }
}

/** What to do about a drop by a rule of this purpose. */
function fixFor(w: World, b: Builder, kind: RuleInfo['purpose'], ctx: { from: Side; to: Side; fromNet?: NetworkRecord; toNet?: NetworkRecord; t: Target; ruleText?: string }): void {
  const fromName = ctx.from.kind === 'container' ? ctx.from.c.name : undefined;
  const toName = ctx.to.kind === 'container' ? ctx.to.c.name : undefined;
  const userNet = (avoid?: NetworkRecord) => w.inp.networks.find((n) => !n.internal && !n.isDefault && n.id !== avoid?.id);
  const portHint = ctx.t.port !== undefined ? `${ctx.t.port}${ctx.t.proto === 'udp' ? '/udp' : ''}` : 'PORT';
  switch (kind) {
    case 'isolation':
      if (fromName && ctx.toNet) b.addFix(`nsnet network connect ${ctx.toNet.name} ${fromName}`);
      else if (toName && ctx.fromNet) b.addFix(`nsnet network connect ${ctx.fromNet.name} ${toName}`);
      break;
    case 'internal': {
      const leaving = ctx.fromNet?.internal && (!ctx.ruleText || ctx.ruleText.includes(ctx.fromNet.bridge));
      if (leaving && fromName) {
        if (ctx.to.kind === 'container' && ctx.toNet && !ctx.toNet.internal) b.addFix(`nsnet network connect ${ctx.toNet.name} ${fromName}`);
        else {
          const n = userNet(ctx.fromNet);
          b.addFix(n ? `nsnet network connect ${n.name} ${fromName}` : `nsnet network create NET && nsnet network connect NET ${fromName}`);
        }
        b.notes.push(`network ${ctx.fromNet!.name} is internal (--internal): nothing leaves it and it reaches nothing of the host but DNS on its gateway (stricter than Docker, on purpose: docs/firewall.md)`);
      } else if (ctx.toNet?.internal) {
        if (fromName) b.addFix(`nsnet network connect ${ctx.toNet.name} ${fromName}`);
        b.notes.push(`network ${ctx.toNet.name} is internal (--internal): nothing enters it from other networks or from outside (its ports are never published)`);
      }
      break;
    }
    case 'icc':
    case 'port-isolation': {
      const n = ctx.toNet ?? ctx.fromNet;
      const other = ctx.from.kind === 'container' ? ctx.from.eps.map((e) => w.nets.get(e.networkId)).find((x) => x && x.id !== n?.id && x.icc) : undefined;
      if (other && toName) b.addFix(`nsnet network connect ${other.name} ${toName}`);
      else if (fromName && toName) b.addFix(`nsnet network create NET && nsnet network connect NET ${fromName} && nsnet network connect NET ${toName}`);
      if (n) b.notes.push(`network ${n.name} has icc=false (-o icc=false): its containers never talk to each other; each still reaches the gateway, the host and the outside`);
      break;
    }
    case 'no-direct-access': {
      b.addFix(`publish the port: -p HOSTPORT:${portHint}${toName ? ` (ports are set when a container is created: nsnet rm -f ${toName}, then nsnet run -p HOSTPORT:${portHint} ... --name ${toName} again)` : ''}`);
      break;
    }
    case 'loopback-guard':
      b.addFix(`containers never reach the host's 127.0.0.0/8 (route_localnet guard): use the gateway${ctx.fromNet ? ` ${ctx.fromNet.gateway}` : ''} instead, or publish on 0.0.0.0 (-p PORT:CPORT)`);
      break;
    case 'loopback-no-dnat':
    case 'kernel':
      if (ctx.to.kind !== 'nobody') b.addFix(`a port published on 127.0.0.1 is for the host itself: publish it on every address (-p HOSTPORT:CPORT) or on the uplink address`);
      break;
    case 'partition': {
      const n = ctx.toNet ?? ctx.fromNet;
      if (n) b.addFix(`nsnet heal --network ${n.name}`);
      break;
    }
    case 'dns-input':
      b.addFix(`DNS on a network's gateway answers only that network's containers: ask the resolver on your own network's gateway${ctx.fromNet && !ctx.fromNet.isDefault ? ` (${ctx.fromNet.gateway})` : ''}`);
      break;
    default:
      break;
  }
}

/** After the firewall: what the packet finds at its destination. */
function arrival(w: World, b: Builder, r: PathResult, to: Side, t: Target, daddr: string): Verdict {
  const where = r.delivery === 'local' ? 'host' : r.oif ?? '';
  if (r.delivery === 'local') {
    const pub = t.port !== undefined ? w.published().filter((p) => p.hostPort === t.port && p.proto === t.proto) : [];
    if (pub.length && !r.translations.some((x) => x.kind === 'dnat')) {
      const addrs = pub.map((p) => p.hostIp || '0.0.0.0').join(', ');
      b.notes.push(`${t.port}/${t.proto} is published on ${addrs} only, not on ${daddr}: no DNAT here, the host itself gets the packet`);
    } else if (t.port !== undefined && !pub.length) {
      b.notes.push(`no container publishes ${t.port}/${t.proto}: the packet is for the host itself (whatever listens on its port ${t.port})`);
    }
    b.hop('host', `delivered to the host itself (${daddr})`);
    return { verdict: 'delivered', reason: `delivered to the host (${daddr})`, to: { kind: 'host', addr: daddr } };
  }
  const n = w.netOfBridge(where);
  const final = r.packet.daddr;
  if (n) {
    const ep = w.inp.endpoints.find((e) => e.networkId === n.id && e.ip === final);
    if (!ep) {
      b.hop(`bridge ${n.bridge}`, `no container holds ${final} on network ${n.name}: ARP gets no answer`);
      return { verdict: 'dropped', reason: `no container has ${final} on network ${n.name}`, decidedBy: pseudo('route', `no container has ${final} on network ${n.name}`) };
    }
    const c = w.byId(ep.containerId);
    b.hop(`${c?.name ?? ep.containerName} netns`, `arrives on ${ep.ifname} ${ep.ip} of ${c?.name ?? ep.containerName} (bridge ${n.bridge}, port ${ep.hostIf})`);
    if (c && to.kind === 'container' && c.id !== to.ns.id && r.translations.some((x) => x.kind === 'dnat')) {
      b.notes.push(`the published port leads to ${c.name}, not to ${to.c.name}`);
    }
    if (c && c.state !== 'running') {
      b.warnings.push(`${c.name} is not running (${c.state}): its netns gets the packet but nothing listens (a TCP connection is refused)`);
      b.addFix(`nsnet start ${c.name}`);
    }
    const info: SideInfo = c ? { kind: 'container', name: c.name, id: c.id, addr: final, mode: c.mode, state: c.state } : { kind: 'container', addr: final };
    return { verdict: 'delivered', reason: `delivered to ${c?.name ?? final} (${final}${r.packet.dport !== undefined ? `:${r.packet.dport}` : ''}) on network ${n.name}`, to: info };
  }
  if (!w.f.hasDefault && !w.inp.host.routes.some((x) => inPrefix(x.dst, x.prefixLen, final))) {
    // Routing fails before the forward (or, for the host's own packets, the output) hook.
    const keep = (hook?: string) => hook === 'prerouting';
    b.chains = b.chains.filter((c) => keep(c.hook));
    b.hops = b.hops.filter((h) => (h.hook ? keep(h.hook) : !(h.at === 'nat' && h.text.startsWith('masquerade'))));
    b.hop('host', `the host has no route to ${final} (no default route)`);
    return { verdict: 'dropped', reason: `the host has no route to ${final}`, decidedBy: pseudo('route', `the host has no route to ${final}`) };
  }
  const masq = r.translations.find((x) => x.kind === 'masquerade');
  b.hop(where, `leaves the host through ${where} towards ${final}${masq ? ' (masqueraded)' : ''}`);
  return { verdict: 'delivered', reason: `leaves through ${where} towards ${final}${masq ? `, masqueraded` : ''}`, to: { kind: 'outside', addr: final } };
}

function firewallDrop(w: World, b: Builder, r: PathResult, ctx: { from: Side; to: Side; fromNet?: NetworkRecord; toNet?: NetworkRecord; t: Target }): Verdict {
  if (r.kernelDrop) {
    b.hop('kernel', r.kernelDrop);
    fixFor(w, b, 'kernel', ctx);
    return { verdict: 'dropped', reason: r.kernelDrop, decidedBy: pseudo('kernel', r.kernelDrop) };
  }
  const d = r.decidedBy;
  if (!d) return { verdict: 'dropped', reason: 'dropped by a policy' };
  const toNet = ctx.toNet ?? (r.oif ? w.netOfBridge(r.oif) : undefined);
  fixFor(w, b, d.purpose.kind, { ...ctx, ...(toNet ? { toNet } : {}), ruleText: d.text });
  if (d.purpose.kind === 'partition') {
    // The routed half of a partition (a published port reached through a host address): by addresses, as the
    // evaluator found; in words, the groups.
    const net = w.nets.get(d.purpose.network?.id ?? '');
    const src = net && ctx.from.kind === 'container' ? ctx.from.eps.find((e) => e.networkId === net.id) : undefined;
    const dst = net && w.inp.endpoints.find((e) => e.networkId === net.id && e.ip === r.packet.daddr);
    const cut = net && src && dst ? cutBetween(w, net, src.containerId, dst.containerId) : undefined;
    if (cut) {
      const why = `partition: ${cut.text}`;
      return { verdict: 'dropped', reason: `dropped by ${d.table} ${d.chain} rule #${d.index}: ${why}`, decidedBy: { ...fromRef(d), why } };
    }
  }
  return { verdict: 'dropped', reason: `dropped by ${d.table} ${d.chain} rule #${d.index}: ${d.why}`, decidedBy: fromRef(d) };
}

function run(w: World, p: Packet): PathResult {
  return evaluate(w.inp.model, p, { localAddrs: w.f.locals, uplink: w.f.uplink, brNetfilter: w.inp.host.brNetfilter });
}

function pk(iif: string | undefined, saddr: string, daddr: string, t: Target, dport = t.port): Packet {
  return { ...(iif !== undefined ? { iif } : {}), saddr, daddr, proto: t.proto, ...(dport !== undefined && t.proto !== 'icmp' ? { dport } : {}) };
}

/** The address of `to` that a packet from somewhere with this view would use, and the network of that address. */
function targetAddr(w: World, to: Extract<Side, { kind: 'container' }>, fromEps: EndpointRecord[], resolved?: string): { addr?: string; net?: NetworkRecord } {
  if (to.addr) return { addr: to.addr, net: w.netOfAddr(to.addr) };
  if (resolved) return { addr: resolved, net: w.netOfAddr(resolved) };
  const shared = fromEps.map((e) => to.eps.find((x) => x.networkId === e.networkId)).find(Boolean);
  const ep = shared ?? to.eps[0];
  return ep ? { addr: ep.ip, net: w.nets.get(ep.networkId) } : {};
}

// ------------------------------------------------------------------------------------------------ partitions

/** A partition's group for people: `group 1 (a, b)`, `the containers not listed (c)`. */
function groupText(w: World, p: PartitionState, g: number | 'rest'): string {
  const ms = g === 'rest' ? p.rest : p.groups[g] ?? [];
  const names = ms.map((m) => w.byId(m.containerId)?.name ?? m.containerId.slice(0, 12)).sort();
  const list = names.length ? names.join(', ') : 'no container';
  return g === 'rest' ? `the containers not listed (${list})` : `group ${g + 1} (${list})`;
}

/** An `iifname`/`oifname` match against the bridge ports a frame uses (undefined: not an interface match). */
function ifMatch(t: Table | undefined, m: Match, port: { iif: string; oif: string }): boolean | undefined {
  if (m.m !== 'iifname' && m.m !== 'oifname') return undefined;
  const name = m.m === 'iifname' ? port.iif : port.oif;
  const hit = 'names' in m.target
    ? m.target.names.includes(name)
    : (findSet(t, m.target.set)?.elements ?? []).some((e) => e.key[0]?.t === 'ifname' && e.key[0].name === name);
  return m.op === '!=' ? !hit : hit;
}

/** The bridge half of a partition, which the evaluator does not model (its rules match the bridge ports a frame
 *  arrives on and leaves by, the host-side veths): the first drop rule of `bridge nsnet forward` of this
 *  network's partition matching the ports. */
function bridgePartitionRule(w: World, net: NetworkRecord, iif: string, oif: string): RuleRef | undefined {
  const t = findTable(w.inp.model, 'bridge');
  const chain = findChain(t, NAMES.bridgeChains.forward);
  if (!t || !chain) return undefined;
  for (let i = 0; i < chain.rules.length; i++) {
    const r = chain.rules[i];
    if (r.purpose.kind !== 'partition' || r.purpose.network?.id !== net.id || r.action.a !== 'drop') continue;
    if (r.match.every((m) => ifMatch(t, m, { iif, oif }) === true)) {
      return { table: `bridge ${t.name}`, chain: chain.name, index: i, text: renderRule(r), purpose: r.purpose, why: describePurpose(r.purpose) };
    }
  }
  return undefined;
}

interface Cut { net: NetworkRecord; text: string }

/** Whether the partition of `net` cuts traffic from container `a` to container `b` (ids of netns owners), by
 *  src/engine/partitions.ts's partitionCut, and in words: the network, the groups. */
function cutBetween(w: World, net: NetworkRecord, a: string, b: string): Cut | undefined {
  const p = w.inp.partitions?.find((x) => x.networkId === net.id);
  if (!p) return undefined;
  const c = partitionCut(p, a, b);
  if (!c) return undefined;
  const name = (id: string) => w.byId(id)?.name ?? id.slice(0, 12);
  const text = p.oneway
    ? `network ${net.name} is partitioned one way: ${groupText(w, p, 0)} -> ${groupText(w, p, 1)} is dropped (${name(a)} -> ${name(b)})`
    : `network ${net.name} is partitioned: ${name(a)} is in ${groupText(w, p, c.from)}, ${name(b)} in ${groupText(w, p, c.to)}; traffic between two groups is dropped`;
  return { net, text };
}

/** A frame between two ports of a partitioned bridge, across the cut: `bridge nsnet forward` drops it (before the
 *  inet forward hook: nothing after it runs). */
function partitionDrop(w: World, b: Builder, res: PathResult, cut: Cut, ep: EndpointRecord, target: EndpointRecord): Verdict | undefined {
  const at = res.visits.findIndex((v) => v.hook === 'forward' && v.table.startsWith('bridge '));
  const dropped = (v: ChainVisit) => v.outcome === 'drop' || v.outcome === 'policy-drop';
  // Dropped before the bridge's forward hook (inet prerouting with br_netfilter): that decides, not the partition.
  if (res.visits.findIndex(dropped) >= 0 && (at < 0 || res.visits.findIndex(dropped) < at)) return undefined;
  const rule = bridgePartitionRule(w, cut.net, ep.hostIf, target.hostIf);
  const visits = at >= 0 ? res.visits.slice(0, at + 1) : res.visits.filter((v) => v.hook === 'prerouting');
  if (at >= 0 && rule) visits[at] = { ...visits[at], outcome: 'drop', rule };
  addEvaluation(b, { ...res, visits });
  const dnat = res.translations.find((x) => x.kind === 'dnat');
  if (dnat) translations(b, w, { ...res, translations: [dnat] });
  b.hop(`bridge ${cut.net.bridge}`, `from port ${ep.hostIf} to port ${target.hostIf}: ${cut.text}${rule ? ` (bridge forward rule #${rule.index})` : ''}`);
  if (res.verdict === 'drop' && res.decidedBy) {
    b.notes.push(`were the frame not cut in the bridge, nsnet's firewall would drop it too: ${res.decidedBy.table} ${res.decidedBy.chain} #${res.decidedBy.index} (${res.decidedBy.why})`);
  }
  if (!rule) b.warnings.push(`no rule of table bridge ${NAMES.table} cuts ports ${ep.hostIf} -> ${target.hostIf}, although the partition says so: the firewall is not the one rendered from the store (nsnet check; nsnet reconcile)`);
  b.addFix(`nsnet heal --network ${cut.net.name}`);
  const why = `partition: ${cut.text}`;
  const decidedBy: RuleInfo = rule ? { ...fromRef(rule), why } : pseudo('partition', why, `bridge ${NAMES.table}`);
  return { verdict: 'dropped', reason: `dropped by ${rule ? `${rule.table} ${rule.chain} rule #${rule.index}` : `the partition of network ${cut.net.name}`}: ${why}`, decidedBy };
}

/** A container sends. */
function fromContainer(w: World, b: Builder, from: Extract<Side, { kind: 'container' }>, to: Side, t: Target): Verdict {
  const who = from.c.name;
  if (from.c.id !== from.ns.id) b.notes.push(`${who} shares the network namespace of ${from.ns.name} (--network container:${from.ns.name}): it sends as ${from.ns.name}`);
  if (from.c.state !== 'running') {
    b.warnings.push(`${who} is not running (${from.c.state}): nothing in it sends this now; the path is what its netns would do`);
    b.addFix(`nsnet start ${who}`);
  }
  const nsOk = !w.inp.netnsExists || w.inp.netnsExists.has(from.ns.id);
  if (!nsOk) {
    b.hop(`${who} netns`, `${who} has no network namespace (its sandbox is gone)`);
    b.addFix(`nsnet start ${who}`);
    return { verdict: 'dropped', reason: `${who} has no network namespace`, decidedBy: pseudo('mode', `${who} has no network namespace`) };
  }
  // Its own loopback / itself.
  let daddr: string;
  let resolvedNet: NetworkRecord | undefined;
  if (to.kind === 'container' && to.ns.id === from.ns.id) {
    b.hop(`${who} netns`, `${to.c.name} is in the same network namespace: over lo`);
    b.probe = { from: { kind: 'container', id: from.ns.id, name: from.ns.name }, daddr: '127.0.0.1', proto: t.proto, ...(t.port !== undefined ? { dport: t.port } : {}), hostHook: 'none' };
    return { verdict: 'delivered', reason: 'delivered over loopback inside the same network namespace' };
  }
  if (to.kind === 'host' && to.addr && LOOP(to.addr)) {
    b.hop(`${who} netns`, `${to.addr} is ${who}'s own loopback (a container's 127.0.0.0/8 is its own, never the host's)`);
    b.probe = { from: { kind: 'container', id: from.ns.id, name: from.ns.name }, daddr: to.addr, proto: t.proto, ...(t.port !== undefined ? { dport: t.port } : {}), hostHook: 'none' };
    return { verdict: 'delivered', reason: `delivered over ${who}'s own loopback`, to: { kind: 'container', name: from.ns.name, addr: to.addr } };
  }
  const noNetwork = (dst: string | undefined): Verdict => {
    const why = from.ns.mode === 'none' ? `${who} has network mode none: only loopback, no route anywhere` : `${who} is on no network`;
    b.hop(`${who} netns`, why);
    if (from.ns.mode === 'none') b.addFix(`recreate ${who} on a network: nsnet rm -f ${who}; nsnet run --network NET --name ${who} ...`);
    // What --trace sends: the kernel of FROM's netns refuses it at once (network unreachable).
    if (dst) b.probe = { from: { kind: 'container', id: from.ns.id, name: from.ns.name }, daddr: dst, proto: t.proto, ...(t.port !== undefined ? { dport: t.port } : {}), hostHook: 'none' };
    return { verdict: 'dropped', reason: why, decidedBy: pseudo('mode', why) };
  };
  if (from.ns.mode === 'none' || !from.eps.length) {
    const dst = to.kind === 'container' ? targetAddr(w, to, []).addr : to.kind === 'host' ? to.addr ?? w.inp.networks[0]?.gateway : to.addr;
    return noNetwork(dst);
  }
  const defaultGw = () => {
    const r = routeLookup(w.routesOf(from.ns, from.eps), w.f.outside);
    return r?.gateway ?? (from.eps[0] ? w.nets.get(from.eps[0].networkId)?.gateway : undefined);
  };
  if (to.kind === 'container') {
    if (to.name) {
      const res = resolveName(w, from, to.name);
      b.names.push(...res.lines);
      if (res.fix && !res.ip) b.notes.push(`to use the name: ${res.fix}`);
      resolvedNet = res.net;
      if (to.kind === 'container' && to.c.mode === 'none') {
        b.hop(`${to.c.name}`, `${to.c.name} has network mode none: nothing reaches it (only its own loopback)`);
        return { verdict: 'dropped', reason: `${to.c.name} has network mode none`, decidedBy: pseudo('mode', `${to.c.name} has network mode none`) };
      }
      const a = targetAddr(w, to, from.eps, res.ip);
      if (!a.addr) return noEndpoint(b, to);
      daddr = a.addr;
    } else {
      daddr = to.addr!;
    }
  } else if (to.kind === 'host') {
    if (to.via) b.notes.push(`${to.via.name} has network mode host: it is the host`);
    const pub = t.port !== undefined ? w.published().filter((p) => p.hostPort === t.port && p.proto === t.proto) : [];
    // host: the gateway (how containers reach the host), unless the port is published on one address only.
    const only = pub.length && pub.every((p) => p.hostIp) ? pub[0].hostIp : undefined;
    daddr = to.addr ?? (only && !LOOP(only) ? only : defaultGw()) ?? '';
    if (only && LOOP(only) && !to.addr) b.notes.push(`${t.port}/${t.proto} is published on ${only} only: for the host itself, not for containers (their 127.0.0.1 is their own)`);
    if (!daddr) return { verdict: 'dropped', reason: `${who} has no route to the host`, decidedBy: pseudo('route', 'no route') };
  } else {
    daddr = to.addr;
  }
  // The route inside FROM.
  const routes = w.routesOf(from.ns, from.eps);
  const r = routeLookup(routes, daddr);
  if (!r) {
    b.hop(`${who} netns`, `no route to ${daddr} in ${who} (routes: ${routes.map((x) => `${x.prefixLen ? `${x.dst}/${x.prefixLen}` : 'default'}${x.gateway ? ` via ${x.gateway}` : ''} dev ${x.ifname}`).join('; ') || 'none'})`);
    return { verdict: 'dropped', reason: `${who} has no route to ${daddr}`, decidedBy: pseudo('route', `${who} has no route to ${daddr}`) };
  }
  const ep = from.eps.find((e) => e.ifname === r.ifname);
  const fromNet = ep && w.nets.get(ep.networkId);
  if (!ep || !fromNet) {
    b.hop(`${who} netns`, `the route to ${daddr} leaves through ${r.ifname}, which is no nsnet endpoint`);
    return { verdict: 'dropped', reason: `route through ${r.ifname}: not an nsnet network`, decidedBy: pseudo('route', 'not an nsnet endpoint') };
  }
  const saddr = ep.ip;
  b.hop(`${who} netns`, `${ep.ifname} ${saddr} (network ${fromNet.name}): route ${r.prefixLen ? `${r.dst}/${r.prefixLen}` : 'default'}${r.gateway ? ` via ${r.gateway}` : ' on-link'} dev ${r.ifname}`);
  b.hop(`bridge ${fromNet.bridge}`, `enters bridge ${fromNet.bridge} of network ${fromNet.name} through port ${ep.hostIf}`);
  b.probe = { from: { kind: 'container', id: from.ns.id, name: from.ns.name }, saddr, daddr, proto: t.proto, ...(t.port !== undefined ? { dport: t.port } : {}), hostHook: 'prerouting' };
  if (resolvedNet && resolvedNet.id !== fromNet.id) b.notes.push(`the name resolves on network ${resolvedNet.name}, but ${who} reaches ${daddr} through ${ep.ifname} (network ${fromNet.name})`);
  const packet = pk(fromNet.bridge, saddr, daddr, t);
  b.packet = packet;
  const toNet = w.netOfAddr(daddr);
  const ctx = { from, to, fromNet, ...(toNet ? { toNet } : {}), t };
  const res = run(w, packet);
  // icc=false: kernel port isolation decides in the bridge before the firewall's forward hooks.
  const dnat = res.translations.find((x) => x.kind === 'dnat');
  if (res.delivery === 'bridged' && !fromNet.icc && dnat) {
    // br_netfilter's bridged DNAT back into an icc=false bridge: the frame would go from FROM's port to TO's
    // port (or back out of FROM's own), all isolated: the bridge drops it before its forward hook.
    addEvaluation(b, res, (v) => v.hook === 'prerouting');
    translations(b, w, { ...res, translations: [dnat] });
    const target = w.inp.endpoints.find((e) => e.networkId === fromNet.id && e.ip === res.packet.daddr);
    b.hop(`bridge ${fromNet.bridge}`, `the DNAT leads back into bridge ${fromNet.bridge} (br_netfilter: the frame is bridged): from port ${ep.hostIf} to port ${target?.hostIf ?? '(the destination\'s)'}, both isolated (icc=false: kernel port isolation): the bridge never forwards it`);
    if (res.verdict === 'drop' && res.decidedBy) b.notes.push(`nsnet's firewall would drop it too: ${res.decidedBy.table} ${res.decidedBy.chain} #${res.decidedBy.index} (${res.decidedBy.why})`);
    const server = target ? w.byId(target.containerId) : undefined;
    fixFor(w, b, 'port-isolation', { ...ctx, ...(server ? { to: w.containerSide(server) } : {}), toNet: fromNet });
    const why = `network ${fromNet.name} has icc=false: bridge port isolation (a hairpin through a host address stays inside the bridge)`;
    return { verdict: 'dropped', reason: `dropped by the bridge ${fromNet.bridge}: ${why}`, decidedBy: pseudo('port-isolation', why, `bridge ${fromNet.bridge}`) };
  }
  if (res.delivery === 'bridged' && !fromNet.icc) {
    const target = w.inp.endpoints.find((e) => e.networkId === fromNet.id && e.ip === daddr);
    // Isolated ports never exchange a frame, ARP included: FROM's ARP request for TO gets no answer, so the
    // packet itself is never sent (were the neighbour known, the bridge would drop the frame the same way).
    b.hop(`bridge ${fromNet.bridge}`, `ports ${ep.hostIf} and ${target?.hostIf ?? '(the destination\'s)'} are isolated (icc=false: kernel port isolation): the bridge never forwards a frame between two isolated ports, so ${who}'s ARP request for ${daddr} gets no answer and the packet is never sent`);
    if (res.verdict === 'drop' && res.decidedBy) b.notes.push(`nsnet's firewall would drop it too: ${res.decidedBy.table} ${res.decidedBy.chain} #${res.decidedBy.index} (${res.decidedBy.why})`);
    fixFor(w, b, 'port-isolation', { ...ctx, toNet: fromNet });
    const why = `network ${fromNet.name} has icc=false: bridge port isolation`;
    return { verdict: 'dropped', reason: `dropped by the bridge ${fromNet.bridge}: ${why}`, decidedBy: pseudo('port-isolation', why, `bridge ${fromNet.bridge}`) };
  }
  // A partition: frames between two groups are cut in the bridge (the bridge half, by ports), also a DNAT
  // bridged back into it (br_netfilter); the routed half (inet forward, by addresses) is the evaluator's.
  if (res.delivery === 'bridged') {
    const target = w.inp.endpoints.find((e) => e.networkId === fromNet.id && e.ip === res.packet.daddr);
    const cut = target && cutBetween(w, fromNet, ep.containerId, target.containerId);
    const v = cut && target ? partitionDrop(w, b, res, cut, ep, target) : undefined;
    if (v) return v;
  }
  addEvaluation(b, res);
  translations(b, w, res);
  if (res.verdict === 'drop') {
    const v = firewallDrop(w, b, res, ctx);
    if (v.decidedBy?.purpose === 'isolation' && to.kind === 'container') hairpinHint(w, b, to, t);
    return v;
  }
  if (res.delivery === 'bridged') b.hop(`bridge ${fromNet.bridge}`, `bridged from port ${ep.hostIf} to the destination's port (same network)`);
  const v = arrival(w, b, res, to, t, daddr);
  if (v.verdict === 'delivered' && res.delivery === 'bridged') {
    // The other direction of a one-way partition: this packet arrives, its answers do not.
    const target = w.inp.endpoints.find((e) => e.networkId === fromNet.id && e.ip === res.packet.daddr);
    const back = target && cutBetween(w, fromNet, target.containerId, ep.containerId);
    if (back) {
      const what = t.proto === 'tcp' ? 'a TCP connection is never established (its handshake needs both directions)' : t.proto === 'icmp' ? 'the ping gets no reply' : 'a UDP datagram arrives, an answer does not';
      b.replyCut = `the answers are dropped: ${back.text}: ${what} (nsnet heal --network ${back.net.name})`;
      b.warnings.push(b.replyCut);
    }
  }
  return v;
}

function noEndpoint(b: Builder, to: Extract<Side, { kind: 'container' }>): Verdict {
  const why = to.c.state !== 'running' ? `${to.c.name} has no network endpoint (${to.c.state}, its sandbox is gone)` : `${to.c.name} has no network endpoint`;
  b.hop(to.c.name, why);
  b.addFix(`nsnet start ${to.c.name}`);
  return { verdict: 'dropped', reason: why, decidedBy: pseudo('mode', why) };
}

/** A port of TO published on the host: what FROM could use instead of TO's address. */
function hairpinHint(w: World, b: Builder, to: Extract<Side, { kind: 'container' }>, t: Target): void {
  if (t.port === undefined) return;
  const ips = new Set(to.eps.map((e) => e.ip));
  const p = w.published().find((x) => ips.has(x.containerIp) && x.containerPort === t.port && x.proto === t.proto && !LOOP(x.hostIp));
  if (p) b.addFix(`or use its published port: HOSTADDR:${p.hostPort}${t.proto === 'udp' ? '/udp' : ''} (${p.hostIp || 'any host address'}, e.g. your gateway; hairpin NAT)`);
}

/** The host sends. */
function fromHost(w: World, b: Builder, from: Extract<Side, { kind: 'host' }>, to: Side, t: Target): Verdict {
  if (from.via) b.notes.push(`${from.via.name} has network mode host: it sends as the host`);
  let daddr: string;
  if (to.kind === 'container') {
    if (to.c.mode === 'none') {
      b.hop(to.c.name, `${to.c.name} has network mode none: nothing reaches it`);
      return { verdict: 'dropped', reason: `${to.c.name} has network mode none`, decidedBy: pseudo('mode', `${to.c.name} has network mode none`) };
    }
    const a = targetAddr(w, to, []);
    if (!a.addr) return noEndpoint(b, to);
    daddr = a.addr;
  } else if (to.kind === 'host') {
    daddr = to.addr ?? '127.0.0.1';
  } else {
    daddr = to.addr;
  }
  const hr = routeLookup(w.inp.host.routes, daddr);
  const local = w.isLocal(daddr);
  const n = w.netOfAddr(daddr);
  const saddr = LOOP(daddr) || local ? (LOOP(daddr) ? '127.0.0.1' : daddr) : n ? n.gateway : w.f.uplinkAddr ?? '0.0.0.0';
  b.hop('host', local ? `the host sends to its own address ${daddr}: through lo` : `the host sends from ${saddr}: route ${hr ? `${hr.prefixLen ? `${hr.dst}/${hr.prefixLen}` : 'default'}${hr.gateway ? ` via ${hr.gateway}` : ''} dev ${hr.ifname}` : 'none'}`);
  const packet = pk(undefined, saddr, daddr, t);
  b.packet = packet;
  b.probe = { from: { kind: 'host' }, daddr, proto: t.proto, ...(t.port !== undefined ? { dport: t.port } : {}), hostHook: 'output' };
  const res = run(w, packet);
  addEvaluation(b, res);
  translations(b, w, res);
  if (res.verdict === 'drop') return firewallDrop(w, b, res, { from, to, ...(n ? { toNet: n } : {}), t });
  return arrival(w, b, res, to, t, daddr);
}

/** A packet from outside, arriving on the uplink. */
function fromOutside(w: World, b: Builder, from: Extract<Side, { kind: 'outside' }>, to: Side, t: Target): Verdict {
  b.noProbe = 'nsnet cannot send a packet from another machine: send it from there (nsnet explain without --trace gives the prediction), or give FROM as a container or host';
  let daddr: string;
  let dport = t.port;
  if (to.kind === 'outside') throw new UserError('outside to outside does not pass through this host: give a container, host or a host address as TO', 'invalid');
  if (to.kind === 'container') {
    const ips = new Set(to.eps.map((e) => e.ip));
    const pub = t.port !== undefined ? w.published().filter((p) => ips.has(p.containerIp) && p.containerPort === t.port && p.proto === t.proto) : [];
    const usable = pub.find((p) => !p.hostIp) ?? pub.find((p) => !LOOP(p.hostIp));
    if (usable && !to.addr) {
      daddr = usable.hostIp || w.f.uplinkAddr || '';
      dport = usable.hostPort;
      b.notes.push(`${to.c.name}'s port ${t.port}/${t.proto} is published as ${usable.hostIp || '0.0.0.0'}:${usable.hostPort}: from outside it is reached at ${daddr || 'the host\'s address'}:${usable.hostPort}`);
      if (!daddr) return { verdict: 'dropped', reason: 'the host has no uplink address', decidedBy: pseudo('route', 'no uplink address') };
    } else {
      if (pub.length && !usable) b.notes.push(`${to.c.name}'s port ${t.port}/${t.proto} is published on ${pub.map((p) => p.hostIp).join(', ')} only: for the host itself, not from outside`);
      else if (t.port !== undefined && !to.addr) b.notes.push(`nobody published ${to.c.name}'s port ${t.port}/${t.proto}: from outside only its address is left, and nsnet allows no direct access to container addresses`);
      const a = targetAddr(w, to, []);
      if (!a.addr) return noEndpoint(b, to);
      daddr = a.addr;
    }
  } else if (to.kind === 'host') {
    daddr = to.addr ?? w.f.uplinkAddr ?? '';
    if (!daddr) return { verdict: 'dropped', reason: 'the host has no uplink address', decidedBy: pseudo('route', 'no uplink address') };
  } else {
    daddr = to.addr;
  }
  b.hop(w.f.uplink, `arrives on the uplink ${w.f.uplink} from ${from.addr}${from.given ? '' : ' (a machine outside; the default gateway stands for it)'} for ${daddr}${dport !== undefined ? `:${dport}` : ''}`);
  const packet = pk(w.f.uplink, from.addr, daddr, t, dport);
  b.packet = packet;
  const res = run(w, packet);
  addEvaluation(b, res);
  translations(b, w, res);
  const toNet = w.netOfAddr(res.packet.daddr);
  if (res.verdict === 'drop') return firewallDrop(w, b, res, { from, to, ...(toNet ? { toNet } : {}), t: { ...t } });
  return arrival(w, b, res, to, { ...t, ...(dport !== undefined ? { port: dport } : {}) }, daddr);
}

/**
 * Explains FROM -> TO. Throws UserError (exit 2) for bad input: an unknown container, a bad port or protocol.
 */
export function explain(inp: ExplainInput, fromRef0: string, target: Target): Explanation {
  const w = new World(inp);
  const fromRefText = parseFrom(fromRef0);
  const from = w.side(fromRefText, 'FROM');
  let to: Side;
  try {
    to = w.side(target.ref, 'TO');
  } catch (e) {
    // Not a container name: an alias or "name.network" that FROM's resolver knows.
    const r = from.kind === 'container' && !isIPv4(target.ref) ? resolveName(w, from, target.ref) : undefined;
    const ep = r?.ip ? inp.endpoints.find((x) => x.ip === r.ip) : undefined;
    const c = ep ? w.byId(ep.containerId) : undefined;
    if (!c) throw e;
    to = w.containerSide(c, target.ref);
  }
  const b = new Builder();
  let v: Verdict;
  if (from.kind === 'container') v = fromContainer(w, b, from, to, target);
  else if (from.kind === 'host') {
    v = fromHost(w, b, from, to, target);
    if (to.kind === 'container' && to.name) b.names.push(`the host does not ask nsnet's resolver: ${to.c.name} is reached by its address`);
  } else if (from.kind === 'outside') v = fromOutside(w, b, from, to, target);
  else throw new UserError(`no container has ${from.addr} (network ${from.net.name}): FROM must be a container, host, outside or an address one of them has`, 'invalid');
  if (to.kind === 'nobody' && v.verdict === 'delivered') {
    v = { verdict: 'dropped', reason: `no container has ${to.addr} on network ${to.net.name}`, decidedBy: pseudo('route', `no container has ${to.addr}`) };
  }
  if (to.kind === 'container' && to.c.state !== 'running' && v.verdict === 'delivered' && !b.warnings.some((x) => x.startsWith(to.c.name))) {
    b.warnings.push(`${to.c.name} is not running (${to.c.state}): nothing listens there`);
    b.addFix(`nsnet start ${to.c.name}`);
  }
  if (inp.differences?.length) {
    b.warnings.push(`nsnet check finds ${inp.differences.length} difference(s) between the store and the kernel: this prediction is the store's, the kernel may do otherwise (${inp.differences.slice(0, 3).join('; ')}${inp.differences.length > 3 ? '; ...' : ''})`);
  }
  if (!b.probe && !b.noProbe) b.noProbe = `there is no packet to send: ${v.reason}`;
  if (v.verdict === 'delivered') b.fix = b.fix.filter((f) => f.startsWith('nsnet start'));
  // A name that does not resolve: its fix is said once (it often is the path's fix too).
  b.notes = b.notes.filter((n) => !(n.startsWith('to use the name: ') && b.fix.includes(n.slice('to use the name: '.length))));
  return {
    query: { from: fromRef0, to: target.ref, ...(target.port !== undefined ? { port: target.port } : {}), proto: target.proto },
    from: sideInfo(from, b.packet?.saddr), to: v.to ?? sideInfo(to, b.packet?.daddr),
    ...(b.packet ? { packet: b.packet } : {}),
    hops: b.hops, verdict: v.verdict, reason: v.reason, ...(v.decidedBy ? { decidedBy: v.decidedBy } : {}),
    fix: b.fix, names: b.names, notes: b.notes, warnings: b.warnings, chains: b.chains,
    ...(b.probe ? { probe: b.probe } : {}), ...(b.noProbe ? { noProbe: b.noProbe } : {}),
    ...(b.replyCut && v.verdict === 'delivered' ? { replyCut: b.replyCut } : {}),
  };
}

// ------------------------------------------------------------------------------------------------ output

/** The explanation for people. */
export function formatExplanation(e: Explanation): string {
  const L: string[] = [];
  const q = e.query;
  L.push(`${q.from} -> ${q.to}${q.port !== undefined ? `:${q.port}` : ''} (${q.proto === 'icmp' ? 'icmp echo' : q.proto})`);
  for (const n of e.names) L.push(`  name: ${n}`);
  for (const h of e.hops) L.push(`  ${h.at}: ${h.text}`);
  L.push(`verdict: ${e.verdict.toUpperCase()}: ${e.reason}`);
  for (const f of e.fix) L.push(`  fix: ${f}`);
  for (const n of e.notes) L.push(`  note: ${n}`);
  for (const w of e.warnings) L.push(`  WARNING: ${w}`);
  return L.join('\n') + '\n';
}
