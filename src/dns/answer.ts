// The resolver's pure core: the view (what the engine hands us), its index (built once per change, O(entries)),
// and `answer()`, which turns one query into a reply, 'forward' or nothing, with O(1) work per query.
import { Addr, Prefix, parseReverseName, parseReverseV4, parseV4 } from '../util/addr.js';
import {
  CLASS_ANY, CLASS_IN, PARSE_DROP, PARSE_NOTIMP, RCODE_FORMERR, RCODE_NOERROR, RCODE_NOTIMP,
  RCODE_NXDOMAIN, RCODE_REFUSED, RCODE_SERVFAIL, TYPE_A, TYPE_AAAA, TYPE_ANY, TYPE_PTR, buildAReply, buildReply, emptyReply,
  encodeName, encodeRR, headerReply, newParsedQuery, parseQuery, udpLimitLocal, type ParsedQuery,
} from './wire.js';

/** What the engine hands the resolver (see src/engine/dnsctl.ts, which writes it as JSON). */
export interface DnsView {
  /** Increases with every change; acknowledged by the resolver process after loading (see main.ts). */
  generation?: number;
  /** gateway/subnet: IPv4 ('' on an IPv6-only network); gateway6/subnet6: IPv6, on networks with IPv6 (the
   *  resolver answers on both gateways). */
  networks: Array<{ id: string; name: string; gateway: string; subnet: string; gateway6?: string; subnet6?: string; internal?: boolean }>;
  /** One entry per (container, network) endpoint: names = [containerName, ...aliases]; ip ('' when IPv6-only) and
   *  ip6 (AAAA) are its addresses there. */
  entries: Array<{ networkId: string; names: string[]; ip: string; ip6?: string; containerId: string }>;
  /** Upstream resolvers (from the host's /etc/resolv.conf or NSNET_RESOLV_CONF): "IP", "IP:port", "[IPv6]:port". */
  upstreams: string[];
  /** Per-container upstream override (run --dns), keyed by the container's IP on that network. */
  overrides?: Record<string, string[]>;
  /** The host's resolv.conf (absolute path): the resolver process follows it and uses its nameservers instead
   *  of `upstreams` (which are what the engine read when it wrote the view). */
  resolvConf?: string;
}

/** Docker uses 600 s. We default to 5 s: an answer costs one O(1) lookup one hop away, so caching saves almost
 *  nothing, while a long TTL keeps caching clients (systemd-resolved, nscd, dnsmasq, language runtimes that honour
 *  TTLs) on a dead container's address for minutes after `rm` + `run` gave the name a new one. */
export const DEFAULT_TTL = 5;

export interface Upstream {
  host: string;
  port: number;
  family: 4 | 6;
  /** As given, for logs. */
  text: string;
}

export interface NetIndex {
  id: string;
  name: string;
  gateway: string;
  /** Subnet as uint32 network/mask; mask 0 with base 0 also means "no subnet known" (everything inside). */
  base: number;
  mask: number;
  internal: boolean;
  /** Lowercase name -> its addresses (uint32), usually one; several for an alias shared by containers. Real
   *  names only: container names, aliases, short ids. */
  names: Map<string, number[]>;
  /** The same for the "name.network" forms. Kept apart so that a real name always wins over such a form: a
   *  container named "web.hn" must not take half of the answers for container "web"'s "web.hn". */
  qualified: Map<string, number[]>;
  /** uint32 address -> the PTR target ("container.network"). */
  ptr: Map<number, string>;
  /** Container address on this network -> container id (to find the asker's other networks); IPv6 ones too. */
  ipToContainer: Map<string, string>;
  /** IPv6: the gateway and subnet (null without IPv6), and the AAAA side of `names`/`qualified`/`ptr`, keyed by
   *  the canonical text of the address (answers built from its 16 bytes, kept in `bytes6`). */
  gateway6: string | null;
  sub6: Prefix | null;
  names6: Map<string, string[]>;
  qualified6: Map<string, string[]>;
  ptr6: Map<string, string>;
  bytes6: Map<string, Buffer>;
}

/** What one (container, network) entry put into a NetIndex, so that a delta can take it out again. */
interface EntryRecord {
  ni: NetIndex;
  /** -1: no IPv4 address (an IPv6-only network). */
  ip: number;
  ipText: string;
  /** '' without IPv6. */
  ip6: string;
  keys: string[];
  qkeys: string[];
}

export interface IndexedView {
  nets: Map<string, NetIndex>;
  /** container id -> what each of its entries added (for removal by a delta). */
  entryRecords: Map<string, EntryRecord[]>;
  byGateway: Map<string, NetIndex>;
  /** nameKey(network name) -> the networks of that name (one, normally): to recognise "name.network" forms of
   *  networks the asker is not on, which must not be forwarded upstream. */
  byName: Map<string, NetIndex[]>;
  /** The port this resolver serves: an upstream that is one of our gateways on that port is ourselves (a loop). */
  selfPort: number;
  /** container id -> the networks it is on (for names on the asker's other networks, as Docker does). */
  containerNets: Map<string, NetIndex[]>;
  upstreams: Upstream[];
  overrides: Map<string, Upstream[]>;
  ttl: number;
  /** Problems met while indexing (skipped entries): for the log. */
  warnings: string[];
  generation: number;
}

/** "IP", "IP:port", "IPv6", "[IPv6]:port" -> Upstream, or null. An IPv6 address may carry a zone ("fe80::1%eth0",
 *  as resolv.conf allows for link-local servers); addresses are strict (util/addr.ts). */
export function parseUpstream(s: string): Upstream | null {
  if (typeof s !== 'string') return null;
  const t = s.trim();
  let host = t;
  let port = 53;
  const m6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(t);
  if (m6) {
    host = m6[1];
    if (m6[2] !== undefined) port = Number(m6[2]);
  } else if (t.indexOf(':') !== -1 && t.indexOf(':') === t.lastIndexOf(':')) {
    const i = t.indexOf(':');
    host = t.slice(0, i);
    port = /^\d+$/.test(t.slice(i + 1)) ? Number(t.slice(i + 1)) : NaN;
  }
  const a = Addr.tryParse(host, { zone: true });
  if (a === null || !Number.isInteger(port) || port < 1 || port > 65535) return null;
  return { host, port, family: a.family, text: t };
}

/** A DNS name as a map key: lowercased, without a trailing dot; null when it is not a usable name (empty label,
 *  label > 63 bytes, whitespace or control characters). */
export function nameKey(name: string): string | null {
  if (typeof name !== 'string') return null;
  let end = name.length;
  if (end > 0 && name.charCodeAt(end - 1) === 0x2e) end--;
  if (end === 0 || end > 253) return null;
  let upper = false;
  let label = 0;
  for (let i = 0; i < end; i++) {
    const c = name.charCodeAt(i);
    if (c === 0x2e) {
      if (label === 0) return null;
      label = 0;
      continue;
    }
    if (c < 0x21 || c > 0x7e) return null;
    if (c >= 0x41 && c <= 0x5a) upper = true;
    if (++label > 63) return null;
  }
  if (label === 0) return null;
  const n = end === name.length ? name : name.slice(0, end);
  return upper ? n.replace(/[A-Z]+/g, (c) => c.toLowerCase()) : n;
}

/** Why a container name (Docker's rule allows `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, 64 characters) can never be asked
 *  for in DNS, or null: a dot-separated label longer than 63 bytes or an empty one ("a..b") cannot be carried
 *  by the wire format (RFC 1035 2.3.4), so no client can send the question. For a warning at create. */
export function dnsNameProblem(name: string): string | null {
  const labels = name.replace(/\.$/, '').split('.');
  if (labels.some((l) => l.length > 63)) return 'a dot-separated part is longer than 63 characters';
  if (labels.some((l) => l === '')) return 'it has an empty dot-separated part ("..")';
  return null;
}

function upstreamList(list: unknown, warnings: string[], what: string): Upstream[] {
  const out: Upstream[] = [];
  if (!Array.isArray(list)) return out;
  for (const s of list) {
    const u = parseUpstream(s as string);
    if (u) out.push(u);
    else warnings.push(`ignoring invalid ${what} ${JSON.stringify(s)}`);
  }
  return out;
}

function addName6(names: Map<string, string[]>, key: string, ip: string): void {
  const list = names.get(key);
  if (list === undefined) names.set(key, [ip]);
  else if (!list.includes(ip)) list.push(ip);
}

function addName(names: Map<string, number[]>, key: string, ip: number): void {
  const list = names.get(key);
  if (list === undefined) names.set(key, [ip]);
  // A shared alias: linear duplicate check, fine for the dozens of replicas an alias has in practice.
  else if (!list.includes(ip)) list.push(ip);
}

type EntryTarget = Pick<IndexedView, 'nets' | 'containerNets' | 'entryRecords'>;

/** Adds one (container, network) entry to the index: its names, "name.network", the short id, PTR. */
function addEntry(idx: EntryTarget, e: DnsView['entries'][number], warnings: string[]): void {
  const ni = idx.nets.get(e.networkId);
  if (!ni) return;
  // -1: no IPv4 address (an IPv6-only network's endpoint).
  let ip = -1;
  if (e.ip !== '' || !e.ip6) {
    ip = parseV4(e.ip);
    if (ip < 0) {
      warnings.push(`container ${e.names?.[0]}: invalid address ${JSON.stringify(e.ip)}, skipped`);
      return;
    }
  }
  let ip6 = '';
  if (e.ip6) {
    const a = Addr.tryParse(e.ip6);
    if (!a || a.family !== 6 || !ni.sub6) {
      warnings.push(`container ${e.names?.[0]}: invalid IPv6 address ${JSON.stringify(e.ip6)}, skipped`);
      if (ip < 0) return;
    } else {
      ip6 = a.toString();
      if (!ni.bytes6.has(ip6)) ni.bytes6.set(ip6, a.bytes());
    }
  }
  const netKey = nameKey(ni.name);
  const names = ni.names;
  const keys: string[] = [];
  const qkeys: string[] = [];
  const given = Array.isArray(e.names) ? e.names : [];
  // Docker (>= 25, DNSNames) also resolves the container's short id, which is its hostname.
  const shortId = typeof e.containerId === 'string' && e.containerId.length >= 12 ? e.containerId.slice(0, 12) : null;
  const n = given.length + (shortId ? 1 : 0);
  for (let i = 0; i < n; i++) {
    const raw = i < given.length ? given[i] : (shortId as string);
    const k = nameKey(raw);
    if (!k) {
      warnings.push(`container ${given[0]}: invalid name ${JSON.stringify(raw)}, skipped`);
      continue;
    }
    // "name" and, as Docker, "name.network".
    if (ip >= 0) addName(names, k, ip);
    if (ip6) addName6(ni.names6, k, ip6);
    keys.push(k);
    if (netKey) {
      if (ip >= 0) addName(ni.qualified, `${k}.${netKey}`, ip);
      if (ip6) addName6(ni.qualified6, `${k}.${netKey}`, ip6);
      qkeys.push(`${k}.${netKey}`);
    }
    if (i === 0 && ip >= 0 && !ni.ptr.has(ip)) ni.ptr.set(ip, netKey ? `${k}.${netKey}` : k);
    if (i === 0 && ip6 && !ni.ptr6.has(ip6)) ni.ptr6.set(ip6, netKey ? `${k}.${netKey}` : k);
  }
  if (typeof e.containerId === 'string' && e.containerId) {
    if (ip >= 0) ni.ipToContainer.set(e.ip, e.containerId);
    if (ip6) ni.ipToContainer.set(ip6, e.containerId);
    let cn = idx.containerNets.get(e.containerId);
    if (!cn) idx.containerNets.set(e.containerId, (cn = []));
    if (!cn.includes(ni)) cn.push(ni);
    let recs = idx.entryRecords.get(e.containerId);
    if (!recs) idx.entryRecords.set(e.containerId, (recs = []));
    recs.push({ ni, ip, ipText: e.ip, ip6, keys, qkeys });
  }
}

/** Takes every entry of one container out of the index (the inverse of addEntry). */
function removeContainerEntries(idx: IndexedView, containerId: string): void {
  const take = (map: Map<string, number[]>, k: string, ip: number) => {
    const list = map.get(k);
    if (!list) return;
    const i = list.indexOf(ip);
    if (i >= 0) list.splice(i, 1);
    if (!list.length) map.delete(k);
  };
  const take6 = (map: Map<string, string[]>, k: string, ip: string) => {
    const list = map.get(k);
    if (!list) return;
    const i = list.indexOf(ip);
    if (i >= 0) list.splice(i, 1);
    if (!list.length) map.delete(k);
  };
  for (const r of idx.entryRecords.get(containerId) ?? []) {
    if (r.ip >= 0) {
      for (const k of r.keys) take(r.ni.names, k, r.ip);
      for (const k of r.qkeys) take(r.ni.qualified, k, r.ip);
      if (r.ni.ipToContainer.get(r.ipText) === containerId) {
        r.ni.ipToContainer.delete(r.ipText);
        r.ni.ptr.delete(r.ip);
      }
      idx.overrides.delete(r.ipText);
    }
    if (r.ip6) {
      for (const k of r.keys) take6(r.ni.names6, k, r.ip6);
      for (const k of r.qkeys) take6(r.ni.qualified6, k, r.ip6);
      if (r.ni.ipToContainer.get(r.ip6) === containerId) {
        r.ni.ipToContainer.delete(r.ip6);
        r.ni.ptr6.delete(r.ip6);
        r.ni.bytes6.delete(r.ip6);
      }
      idx.overrides.delete(r.ip6);
    }
  }
  idx.entryRecords.delete(containerId);
  idx.containerNets.delete(containerId);
}

/** A change to some containers' entries (what the engine appends to the view's delta log). */
export interface DnsDelta {
  generation: number;
  /** Containers whose entries are replaced: all their old entries go, `add` brings the current ones. */
  containers: string[];
  add: DnsView['entries'];
  overrides?: Record<string, string[]>;
}

/** Applies a delta to the index in place: O(entries of the containers concerned), not O(view). */
export function applyDelta(idx: IndexedView, d: DnsDelta): string[] {
  const warnings: string[] = [];
  for (const c of d.containers ?? []) removeContainerEntries(idx, c);
  for (const e of d.add ?? []) addEntry(idx, e, warnings);
  setOverrides(idx, d.overrides, warnings);
  if (typeof d.generation === 'number' && d.generation > idx.generation) idx.generation = d.generation;
  return warnings;
}

/** Is `u` this resolver itself (one of our gateway addresses on our port)? Forwarding there is a loop. */
function isSelf(idx: Pick<IndexedView, 'byGateway' | 'selfPort'>, u: Upstream): boolean {
  return u.port === idx.selfPort && idx.byGateway.has(u.host);
}

/** Host upstreams without ourselves. The one filter of every path that sets upstreams (full view, delta, the
 *  followed resolv.conf), so that they all agree. */
export function withoutSelf(idx: Pick<IndexedView, 'byGateway' | 'selfPort'>, list: Upstream[], warnings: string[], what: string): Upstream[] {
  const out = list.filter((u) => !isSelf(idx, u));
  if (out.length !== list.length) warnings.push(`ignoring ${what} that ${out.length + 1 === list.length ? 'is' : 'are'} this resolver itself`);
  return out;
}

/** Replaces the host's upstreams of an index in place (one assignment): for the followed resolv.conf. */
export function replaceUpstreams(idx: IndexedView, list: string[]): string[] {
  const warnings: string[] = [];
  idx.upstreams = withoutSelf(idx, upstreamList(list, warnings, 'upstream'), warnings, 'upstreams');
  return warnings;
}

/** Per-container --dns servers. One that is this resolver itself (`--dns <own gateway>`) is dropped; a container
 *  left with none uses the host's upstreams, as one without --dns does: it asked for nsnet's resolver. */
function setOverrides(idx: IndexedView, overrides: Record<string, string[]> | undefined, warnings: string[]): void {
  for (const [ip, list] of Object.entries(overrides ?? {})) {
    const ups = withoutSelf(idx, upstreamList(list, warnings, `--dns server for ${ip}`), warnings, `the --dns server of ${ip}`);
    if (ups.length) idx.overrides.set(ip, ups);
    else idx.overrides.delete(ip);
  }
}

/** Builds the index: O(entries). Never throws for well-typed input; bad items are skipped with a warning.
 *  `selfPort`: the port this resolver listens on (default 53), to keep itself out of the upstreams. */
export function indexView(v: DnsView, opts: { ttl?: number; selfPort?: number } = {}): IndexedView {
  const ttl = opts.ttl ?? DEFAULT_TTL;
  const warnings: string[] = [];
  const nets = new Map<string, NetIndex>();
  const byGateway = new Map<string, NetIndex>();
  const byName = new Map<string, NetIndex[]>();
  for (const n of v.networks ?? []) {
    // IPv6: both the gateway and the subnet, or neither.
    const g6 = n.gateway6 !== undefined ? Addr.tryParse(n.gateway6) : null;
    const p6 = n.subnet6 !== undefined ? Prefix.tryParse(n.subnet6) : null;
    const has6 = !!g6 && g6.family === 6 && !!p6 && p6.family === 6 && p6.contains(g6);
    if ((n.gateway6 !== undefined || n.subnet6 !== undefined) && !has6) warnings.push(`network ${n.name}: invalid IPv6 gateway or subnet, IPv6 skipped`);
    const v6only = n.gateway === '' && has6;
    if (!v6only && parseV4(n.gateway) < 0) {
      warnings.push(`network ${n.name}: invalid gateway ${JSON.stringify(n.gateway)}, skipped`);
      continue;
    }
    const p = v6only ? null : Prefix.tryParse(n.subnet);
    const c = p && p.family === 4 ? p : null;
    if (!c && !v6only) warnings.push(`network ${n.name}: invalid subnet ${JSON.stringify(n.subnet)}, not checking askers`);
    const ni: NetIndex = {
      id: n.id, name: n.name, gateway: n.gateway, base: c ? c.network.v4 : 0, mask: c ? c.mask : 0,
      internal: !!n.internal, names: new Map(), qualified: new Map(), ptr: new Map(), ipToContainer: new Map(),
      gateway6: has6 ? g6!.toString() : null, sub6: has6 ? p6 : null, names6: new Map(), qualified6: new Map(), ptr6: new Map(), bytes6: new Map(),
    };
    nets.set(n.id, ni);
    const k = nameKey(n.name);
    if (k) {
      const same = byName.get(k);
      if (same) same.push(ni);
      else byName.set(k, [ni]);
    }
    for (const g of [v6only ? '' : n.gateway, ni.gateway6 ?? '']) {
      if (!g) continue;
      if (byGateway.has(g)) warnings.push(`network ${n.name}: gateway ${g} already used by another network`);
      else byGateway.set(g, ni);
    }
  }

  const containerNets = new Map<string, NetIndex[]>();
  const entryRecords = new Map<string, EntryRecord[]>();
  const partial = { nets, containerNets, entryRecords };
  for (const e of v.entries ?? []) addEntry(partial, e, warnings);

  const selfPort = opts.selfPort ?? 53;
  const idx: IndexedView = {
    nets, byGateway, byName, selfPort, containerNets, entryRecords, upstreams: [], overrides: new Map(), ttl, warnings,
    generation: typeof v.generation === 'number' ? v.generation : 0,
  };
  idx.upstreams = withoutSelf(idx, upstreamList(v.upstreams, warnings, 'upstream'), warnings, 'upstreams');
  setOverrides(idx, v.overrides, warnings);
  return idx;
}

/** The upstreams a query from `askerIp` goes to: its --dns override, else the host's. */
export function upstreamsFor(view: IndexedView, askerIp: string): Upstream[] {
  return view.overrides.get(askerIp) ?? view.upstreams;
}

function inNet(ni: NetIndex, ip: number): boolean {
  return ((ip & ni.mask) >>> 0) === ni.base;
}

/** Is `ip` inside any nsnet subnet? O(networks), on the PTR miss path only. */
function inAnySubnet(view: IndexedView, ip: number): boolean {
  for (const ni of view.nets.values()) if (ni.mask !== 0 && inNet(ni, ip)) return true;
  return false;
}

/** Is `qname` "NAME.NETWORK" for a name some container has on a network so named? O(labels). */
function isOtherNetworksName(view: IndexedView, qname: string): boolean {
  for (let i = qname.indexOf('.'); i > 0; i = qname.indexOf('.', i + 1)) {
    const nets = view.byName.get(qname.slice(i + 1));
    if (!nets) continue;
    const name = qname.slice(0, i);
    for (const ni of nets) if (ni.names.has(name)) return true;
  }
  return false;
}

/** The networks whose names the asker sees: the one the query arrived on, then the asker's other networks. */
function otherNets(view: IndexedView, net: NetIndex, askerIp: string): NetIndex[] | undefined {
  const cid = net.ipToContainer.get(askerIp);
  return cid === undefined ? undefined : view.containerNets.get(cid);
}

/** "d.c.b.a.in-addr.arpa" -> uint32 a.b.c.d, or -1 (the label count is the parser's: a cheap first test). */
function reverseAddr(qname: string, labels: number): number {
  return labels === 6 ? parseReverseV4(qname) : -1;
}

const scratchQuery = newParsedQuery();

/** AAAA records for these addresses (canonical text; the bytes from whichever network holds them), rotated by the
 *  query id as A answers are. */
function aaaaReply(view: IndexedView, msg: Buffer, q: ParsedQuery, ips: string[], limit: number, nets: NetIndex[]): Buffer {
  const n = ips.length;
  const first = n > 1 ? q.id % n : 0;
  const rrs = Buffer.allocUnsafe(n * 28);
  for (let i = 0; i < n; i++) {
    const t = ips[(first + i) % n];
    let b: Buffer | undefined;
    for (const ni of nets) if ((b = ni.bytes6.get(t)) !== undefined) break;
    encodeRR(TYPE_AAAA, view.ttl, b ?? Addr.parse(t).bytes()).copy(rrs, i * 28);
  }
  return buildReply(msg, q, RCODE_NOERROR, true, rrs, n, 28, limit);
}

/** PTR of an ip6.arpa name: the container's "name.network", NODATA for other types; NXDOMAIN for an address of
 *  an nsnet IPv6 subnet nobody holds (never forwarded); null when it is not ours (forwarded as before). */
function ptr6Answer(view: IndexedView, net: NetIndex, msg: Buffer, q: ParsedQuery, askerIp: string, limit: number): Buffer | null {
  const a = parseReverseName(q.qname);
  if (!a || a.family !== 6) return null;
  const t = a.toString();
  let ptr = net.ptr6.get(t);
  if (ptr === undefined) {
    for (const o of otherNets(view, net, askerIp) ?? []) if ((ptr = o.ptr6.get(t)) !== undefined) break;
  }
  if (ptr !== undefined) {
    const target = (q.qtype === TYPE_PTR || q.qtype === TYPE_ANY) ? encodeName(ptr) : null;
    if (target) {
      const rr = encodeRR(TYPE_PTR, view.ttl, target);
      return buildReply(msg, q, RCODE_NOERROR, true, rr, 1, rr.length, limit);
    }
    return emptyReply(msg, q, RCODE_NOERROR, true);
  }
  for (const ni of view.nets.values()) if (ni.sub6 && ni.sub6.contains(a)) return emptyReply(msg, q, RCODE_NXDOMAIN, true);
  return null;
}

/**
 * Answers one query that arrived on network `networkId`'s gateway from `askerIp`. Returns the reply, 'forward'
 * (send it to the upstreams: `upstreamsFor(view, askerIp)` is not empty), or null (drop: not a query, or not our
 * network). `tcp` lifts the 512-byte / EDNS size limit on our own answers.
 */
export function answer(view: IndexedView, networkId: string, query: Buffer, askerIp: string, tcp = false): Buffer | 'forward' | null {
  const net = view.nets.get(networkId);
  if (!net) return null;
  return answerOn(view, net, query, askerIp, tcp, scratchQuery);
}

/** `answer` for the server: the network already looked up, and the parsed query left in `q` for forwarding. */
export function answerOn(
  view: IndexedView, net: NetIndex, msg: Buffer, askerIp: string, tcp: boolean, q: ParsedQuery,
): Buffer | 'forward' | null {
  const r = parseQuery(msg, q);
  if (r !== 0) {
    if (r === PARSE_DROP) return null;
    return headerReply(msg, r === PARSE_NOTIMP ? RCODE_NOTIMP : RCODE_FORMERR);
  }
  // Only the network's own members (and the host on the gateway) may ask: a container of another network that
  // can route to this gateway must not read this network's names.
  if (askerIp.indexOf(':') !== -1) {
    // Over IPv6 (the IPv6 gateway): the asker must be of the network's IPv6 subnet (the host asks from it too).
    const a = Addr.tryParse(askerIp);
    if (!a || a.family !== 6 || !net.sub6 || !net.sub6.contains(a)) return emptyReply(msg, q, RCODE_REFUSED, false);
  } else if (net.mask !== 0 || net.sub6) {
    const a = parseV4(askerIp);
    if (a < 0 || net.mask === 0 || !inNet(net, a)) return emptyReply(msg, q, RCODE_REFUSED, false);
  }
  if (q.edns && q.ednsVersion !== 0) return emptyReply(msg, q, 16 /* BADVERS */, false);
  const limit = tcp ? 65535 : udpLimitLocal(q);

  if (q.plain && (q.qclass === CLASS_IN || q.qclass === CLASS_ANY) && q.labels > 0) {
    // Real names first (the arriving network's, then the asker's other networks'), then "name.network" forms;
    // each family on its own (A from names, AAAA from names6), a name known in one family only is NODATA in the
    // other, never NXDOMAIN.
    let rec = net.names.get(q.qname);
    let rec6 = net.names6.get(q.qname);
    let others: NetIndex[] | undefined;
    if (rec === undefined && rec6 === undefined) {
      others = otherNets(view, net, askerIp);
      if (others) {
        for (const o of others) {
          if (o === net) continue;
          rec = o.names.get(q.qname);
          rec6 = o.names6.get(q.qname);
          if (rec !== undefined || rec6 !== undefined) break;
        }
      }
      if (rec === undefined && rec6 === undefined && q.labels > 1) {
        rec = net.qualified.get(q.qname);
        rec6 = net.qualified6.get(q.qname);
        if (rec === undefined && rec6 === undefined && others) {
          for (const o of others) {
            if (o === net) continue;
            rec = o.qualified.get(q.qname);
            rec6 = o.qualified6.get(q.qname);
            if (rec !== undefined || rec6 !== undefined) break;
          }
        }
      }
    }
    if (rec !== undefined || rec6 !== undefined) {
      if (rec !== undefined && (q.qtype === TYPE_A || q.qtype === TYPE_ANY)) {
        // Round robin among several addresses of one name (a shared alias), driven by the random query id.
        return buildAReply(msg, q, rec, rec.length > 1 ? q.id % rec.length : 0, view.ttl, limit);
      }
      if (rec6 !== undefined && (q.qtype === TYPE_AAAA || q.qtype === TYPE_ANY)) {
        return aaaaReply(view, msg, q, rec6, limit, others ?? [net]);
      }
      // Every other type of a known name, and a family it has no address of: NODATA.
      return emptyReply(msg, q, RCODE_NOERROR, true);
    }
    if (q.labels === 34) {
      const r6 = ptr6Answer(view, net, msg, q, askerIp, limit);
      if (r6) return r6;
    }
    const rev = reverseAddr(q.qname, q.labels);
    if (rev >= 0) {
      let ptr = net.ptr.get(rev);
      let inside = inNet(net, rev) && net.mask !== 0;
      if (ptr === undefined) {
        others ??= otherNets(view, net, askerIp);
        if (others) {
          for (const o of others) {
            if (o === net) continue;
            if (o.mask !== 0 && inNet(o, rev)) inside = true;
            if ((ptr = o.ptr.get(rev)) !== undefined) break;
          }
        }
      }
      if (ptr !== undefined) {
        if (q.qtype === TYPE_PTR || q.qtype === TYPE_ANY) {
          const target = encodeName(ptr);
          if (target) {
            const rr = encodeRR(TYPE_PTR, view.ttl, target);
            return buildReply(msg, q, RCODE_NOERROR, true, rr, 1, rr.length, limit);
          }
        }
        return emptyReply(msg, q, RCODE_NOERROR, true);
      }
      // An address of our own subnets that no container holds: upstreams cannot know it either. An address of
      // a network the asker is not on is ours too: never asked of an upstream (internal addresses do not leave
      // the host), and NXDOMAIN whether or not a container holds it (nothing learnt about other networks).
      if (inside || inAnySubnet(view, rev)) return emptyReply(msg, q, RCODE_NXDOMAIN, true);
    }
    // "name.network" of a network the asker is not on, naming one of its containers: an internal name, never
    // forwarded; NXDOMAIN, as for a name that does not exist (the asker learns nothing of that network). Names
    // under a network's name that no container has are forwarded as before: a network may be named like a real
    // domain ("corp", "lan"), whose other names the upstreams know.
    if (q.labels > 1 && isOtherNetworksName(view, q.qname)) return emptyReply(msg, q, RCODE_NXDOMAIN, true);
  }
  // Unknown single-label names never leave the host (Docker's resolver answers them too; they would only leak
  // container names to the upstreams).
  if (q.labels === 1) return emptyReply(msg, q, RCODE_NXDOMAIN, true);
  if (net.internal) return emptyReply(msg, q, RCODE_REFUSED, false);
  if ((view.overrides.get(askerIp) ?? view.upstreams).length === 0) return emptyReply(msg, q, RCODE_SERVFAIL, false);
  return 'forward';
}
