// The resolver's pure core: the view (what the engine hands us), its index (built once per change, O(entries)),
// and `answer()`, which turns one query into a reply, 'forward' or nothing, with O(1) work per query.
import { isIP } from 'node:net';
import { tryParseCidr, tryParseIPv4 } from '../util/ip.js';
import {
  CLASS_ANY, CLASS_IN, PARSE_DROP, PARSE_NOTIMP, RCODE_FORMERR, RCODE_NOERROR, RCODE_NOTIMP,
  RCODE_NXDOMAIN, RCODE_REFUSED, RCODE_SERVFAIL, TYPE_A, TYPE_ANY, TYPE_PTR, buildAReply, buildReply, emptyReply,
  encodeName, encodeRR, headerReply, newParsedQuery, parseQuery, udpLimitLocal, type ParsedQuery,
} from './wire.js';

/** What the engine hands the resolver (see src/engine/dnsctl.ts, which writes it as JSON). */
export interface DnsView {
  /** Increases with every change; acknowledged by the resolver process after loading (see main.ts). */
  generation?: number;
  networks: Array<{ id: string; name: string; gateway: string; subnet: string; internal?: boolean }>;
  /** One entry per (container, network) endpoint: names = [containerName, ...aliases]. */
  entries: Array<{ networkId: string; names: string[]; ip: string; containerId: string }>;
  /** Upstream resolvers (from the host's /etc/resolv.conf or NSNET_RESOLV_CONF): "IP", "IP:port", "[IPv6]:port". */
  upstreams: string[];
  /** Per-container upstream override (run --dns), keyed by the container's IP on that network. */
  overrides?: Record<string, string[]>;
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
  /** Lowercase name -> its addresses (uint32), usually one; several for an alias shared by containers. */
  names: Map<string, number[]>;
  /** uint32 address -> the PTR target ("container.network"). */
  ptr: Map<number, string>;
  /** Container address on this network -> container id (to find the asker's other networks). */
  ipToContainer: Map<string, string>;
}

/** What one (container, network) entry put into a NetIndex, so that a delta can take it out again. */
interface EntryRecord {
  ni: NetIndex;
  ip: number;
  ipText: string;
  keys: string[];
}

export interface IndexedView {
  nets: Map<string, NetIndex>;
  /** container id -> what each of its entries added (for removal by a delta). */
  entryRecords: Map<string, EntryRecord[]>;
  byGateway: Map<string, NetIndex>;
  /** container id -> the networks it is on (for names on the asker's other networks, as Docker does). */
  containerNets: Map<string, NetIndex[]>;
  upstreams: Upstream[];
  overrides: Map<string, Upstream[]>;
  ttl: number;
  /** Problems met while indexing (skipped entries): for the log. */
  warnings: string[];
  generation: number;
}

/** "IP", "IP:port", "IPv6", "[IPv6]:port" -> Upstream, or null. */
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
  const fam = isIP(host);
  if (fam === 0 || !Number.isInteger(port) || port < 1 || port > 65535) return null;
  return { host, port, family: fam as 4 | 6, text: t };
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
  const ip = tryParseIPv4(e.ip);
  if (ip === null) {
    warnings.push(`container ${e.names?.[0]}: invalid address ${JSON.stringify(e.ip)}, skipped`);
    return;
  }
  const netKey = nameKey(ni.name);
  const names = ni.names;
  const keys: string[] = [];
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
    addName(names, k, ip);
    keys.push(k);
    if (netKey) {
      addName(names, `${k}.${netKey}`, ip);
      keys.push(`${k}.${netKey}`);
    }
    if (i === 0 && !ni.ptr.has(ip)) ni.ptr.set(ip, netKey ? `${k}.${netKey}` : k);
  }
  if (typeof e.containerId === 'string' && e.containerId) {
    ni.ipToContainer.set(e.ip, e.containerId);
    let cn = idx.containerNets.get(e.containerId);
    if (!cn) idx.containerNets.set(e.containerId, (cn = []));
    if (!cn.includes(ni)) cn.push(ni);
    let recs = idx.entryRecords.get(e.containerId);
    if (!recs) idx.entryRecords.set(e.containerId, (recs = []));
    recs.push({ ni, ip, ipText: e.ip, keys });
  }
}

/** Takes every entry of one container out of the index (the inverse of addEntry). */
function removeContainerEntries(idx: IndexedView, containerId: string): void {
  for (const r of idx.entryRecords.get(containerId) ?? []) {
    for (const k of r.keys) {
      const list = r.ni.names.get(k);
      if (!list) continue;
      const i = list.indexOf(r.ip);
      if (i >= 0) list.splice(i, 1);
      if (!list.length) r.ni.names.delete(k);
    }
    if (r.ni.ipToContainer.get(r.ipText) === containerId) {
      r.ni.ipToContainer.delete(r.ipText);
      r.ni.ptr.delete(r.ip);
    }
    idx.overrides.delete(r.ipText);
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
  for (const [ip, list] of Object.entries(d.overrides ?? {})) {
    const ups = upstreamList(list, warnings, `--dns server for ${ip}`);
    if (ups.length) idx.overrides.set(ip, ups);
  }
  if (typeof d.generation === 'number' && d.generation > idx.generation) idx.generation = d.generation;
  return warnings;
}

/** Builds the index: O(entries). Never throws for well-typed input; bad items are skipped with a warning. */
export function indexView(v: DnsView, opts: { ttl?: number } = {}): IndexedView {
  const ttl = opts.ttl ?? DEFAULT_TTL;
  const warnings: string[] = [];
  const nets = new Map<string, NetIndex>();
  const byGateway = new Map<string, NetIndex>();
  for (const n of v.networks ?? []) {
    if (tryParseIPv4(n.gateway) === null) {
      warnings.push(`network ${n.name}: invalid gateway ${JSON.stringify(n.gateway)}, skipped`);
      continue;
    }
    const c = tryParseCidr(n.subnet);
    if (!c) warnings.push(`network ${n.name}: invalid subnet ${JSON.stringify(n.subnet)}, not checking askers`);
    const ni: NetIndex = {
      id: n.id, name: n.name, gateway: n.gateway, base: c ? c.network : 0, mask: c ? c.mask : 0,
      internal: !!n.internal, names: new Map(), ptr: new Map(), ipToContainer: new Map(),
    };
    nets.set(n.id, ni);
    if (byGateway.has(n.gateway)) warnings.push(`network ${n.name}: gateway ${n.gateway} already used by another network`);
    else byGateway.set(n.gateway, ni);
  }

  const containerNets = new Map<string, NetIndex[]>();
  const entryRecords = new Map<string, EntryRecord[]>();
  const partial = { nets, containerNets, entryRecords };
  for (const e of v.entries ?? []) addEntry(partial, e, warnings);

  const overrides = new Map<string, Upstream[]>();
  for (const [ip, list] of Object.entries(v.overrides ?? {})) {
    const ups = upstreamList(list, warnings, `--dns server for ${ip}`);
    if (ups.length) overrides.set(ip, ups);
  }
  return {
    nets, byGateway, containerNets, entryRecords, upstreams: upstreamList(v.upstreams, warnings, 'upstream'), overrides, ttl, warnings,
    generation: typeof v.generation === 'number' ? v.generation : 0,
  };
}

/** The upstreams a query from `askerIp` goes to: its --dns override, else the host's. */
export function upstreamsFor(view: IndexedView, askerIp: string): Upstream[] {
  return view.overrides.get(askerIp) ?? view.upstreams;
}

/** Dotted quad -> uint32, or -1. For addresses the kernel reported (canonical form); cheaper than a regex. */
export function fastIPv4(s: string): number {
  let ip = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x2e) {
      if (digits === 0 || dots === 3) return -1;
      ip = ip * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else if (c >= 0x30 && c <= 0x39 && digits < 3) {
      octet = octet * 10 + (c - 0x30);
      if (octet > 255) return -1;
      digits++;
    } else {
      return -1;
    }
  }
  if (digits === 0 || dots !== 3) return -1;
  return ip * 256 + octet;
}

function inNet(ni: NetIndex, ip: number): boolean {
  return ((ip & ni.mask) >>> 0) === ni.base;
}

/** The networks whose names the asker sees: the one the query arrived on, then the asker's other networks. */
function otherNets(view: IndexedView, net: NetIndex, askerIp: string): NetIndex[] | undefined {
  const cid = net.ipToContainer.get(askerIp);
  return cid === undefined ? undefined : view.containerNets.get(cid);
}

/** "d.c.b.a.in-addr.arpa" -> uint32 a.b.c.d, or -1. */
function reverseAddr(qname: string, labels: number): number {
  if (labels !== 6 || !qname.endsWith('.in-addr.arpa')) return -1;
  const p = qname.split('.', 4);
  let ip = 0;
  for (let i = 3; i >= 0; i--) {
    const s = p[i];
    if (!/^(?:0|[1-9][0-9]{0,2})$/.test(s)) return -1;
    const b = Number(s);
    if (b > 255) return -1;
    ip = ip * 256 + b;
  }
  return ip;
}

const scratchQuery = newParsedQuery();

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
  if (net.mask !== 0) {
    const a = fastIPv4(askerIp);
    if (a < 0 || !inNet(net, a)) return emptyReply(msg, q, RCODE_REFUSED, false);
  }
  if (q.edns && q.ednsVersion !== 0) return emptyReply(msg, q, 16 /* BADVERS */, false);
  const limit = tcp ? 65535 : udpLimitLocal(q);

  if (q.plain && (q.qclass === CLASS_IN || q.qclass === CLASS_ANY) && q.labels > 0) {
    let rec = net.names.get(q.qname);
    let others: NetIndex[] | undefined;
    if (rec === undefined) {
      others = otherNets(view, net, askerIp);
      if (others) {
        for (const o of others) {
          if (o !== net && (rec = o.names.get(q.qname)) !== undefined) break;
        }
      }
    }
    if (rec !== undefined) {
      if (q.qtype === TYPE_A || q.qtype === TYPE_ANY) {
        // Round robin among several addresses of one name (a shared alias), driven by the random query id.
        return buildAReply(msg, q, rec, rec.length > 1 ? q.id % rec.length : 0, view.ttl, limit);
      }
      // AAAA and every other type of a known name: NODATA (we are IPv4-only).
      return emptyReply(msg, q, RCODE_NOERROR, true);
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
      // An address of our own subnets that no container holds: upstreams cannot know it either.
      if (inside) return emptyReply(msg, q, RCODE_NXDOMAIN, true);
    }
  }
  // Unknown single-label names never leave the host (Docker's resolver answers them too; they would only leak
  // container names to the upstreams).
  if (q.labels === 1) return emptyReply(msg, q, RCODE_NXDOMAIN, true);
  if (net.internal) return emptyReply(msg, q, RCODE_REFUSED, false);
  if ((view.overrides.get(askerIp) ?? view.upstreams).length === 0) return emptyReply(msg, q, RCODE_SERVFAIL, false);
  return 'forward';
}
