// Routes: RTM_NEWROUTE / DELROUTE / GETROUTE (rtmsg). Encoder, reply parser, dump.
import type { NetlinkSocket } from './socket.js';
import { formatIpv4, formatIpv6 } from './text.js';
import { addrText } from './addr.js';
import {
  AF_INET, AF_INET6, AF_UNSPEC, NLA_TYPE_MASK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, RTM_DELROUTE, RTM_GETROUTE, RTM_NEWROUTE,
  RT_SCOPE_LINK, RT_SCOPE_NOWHERE, RT_SCOPE_UNIVERSE, NlWriter, checkIndex, checkPrefix, invalid, ipOf,
} from './wire.js';

// linux/rtnetlink.h
export const RTA_DST = 1;
export const RTA_OIF = 4;
export const RTA_GATEWAY = 5;
export const RTA_PRIORITY = 6;
export const RTA_TABLE = 15;
export const RTA_VIA = 18;
export const RTM_F_CLONED = 0x200;

/** The main routing table (RT_TABLE_MAIN). */
export const RT_TABLE_MAIN = 254;
export const RTPROT_BOOT = 3;
export const RTN_UNICAST = 1;


/** One route (RTM_NEWROUTE). */
export interface RouteInfo {
  family: 4 | 6;
  /** Destination network; '0.0.0.0' / '::' for a default route. */
  dst: string;
  prefixLen: number;
  /** Next hop (RTA_GATEWAY, or RTA_VIA); null for on-link and multipath routes. */
  gateway: string | null;
  /** Output interface index, or null. */
  oif: number | null;
  table: number;
  /** RTPROT_*: 2 kernel, 3 boot (ip route add), 4 static, ... */
  protocol: number;
  /** RT_SCOPE_*: 0 universe, 253 link, 254 host. */
  scope: number;
  /** RTN_*: 1 unicast, 2 local, 7 unreachable, ... */
  type: number;
  /** Metric (RTA_PRIORITY), or null. */
  metric: number | null;
}

/** A route to add or delete. `dst` and `gateway` must be of the same family. */
export interface RouteSpec {
  /** Destination network address ('0.0.0.0' or '::' with prefixLen 0 for the default route). */
  dst: string;
  prefixLen: number;
  gateway?: string;
  /** Output interface index (required for an on-link route, and for an IPv6 link-local gateway). */
  oif?: number;
  /** Routing table, RT_TABLE_MAIN (254) by default. */
  table?: number;
  /** RTA_PRIORITY. */
  metric?: number;
}

const scratchA = new Uint8Array(16);
const scratchC = new Uint8Array(16);

/** RTM_NEWROUTE (NLM_F_EXCL: EEXIST if an identical one exists) or RTM_DELROUTE (`del`) of one route. */
function encRoute(w: NlWriter, op: string, del: boolean, r: RouteSpec): void {
  if (!r || typeof r !== 'object') throw invalid(op, 'missing route');
  const fam = ipOf(op, r.dst, scratchA, 'destination');
  checkPrefix(op, fam, r.prefixLen);
  let gw = false;
  if (r.gateway !== undefined) {
    const gf = ipOf(op, r.gateway, scratchC, 'gateway');
    if (gf !== fam) throw invalid(op, `gateway ${r.gateway} is not of the destination's family`);
    gw = true;
  }
  if (r.oif !== undefined) checkIndex(op, r.oif, 'output interface index');
  const table = r.table ?? RT_TABLE_MAIN;
  if (!Number.isInteger(table) || table <= 0 || table > 0xffffffff) throw invalid(op, `invalid table ${String(table)}`);
  if (r.metric !== undefined && (!Number.isInteger(r.metric) || r.metric < 0 || r.metric > 0xffffffff)) {
    throw invalid(op, `invalid metric ${String(r.metric)}`);
  }
  const n = fam === 4 ? 4 : 16;
  w.begin(del ? RTM_DELROUTE : RTM_NEWROUTE, del ? NLM_F_REQUEST : NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL);
  if (del) {
    w.rtmsg(fam === 4 ? AF_INET : AF_INET6, r.prefixLen, table < 256 ? table : 0, 0, RT_SCOPE_NOWHERE, 0);
  } else {
    const scope = !gw && r.oif !== undefined && fam === 4 ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
    w.rtmsg(fam === 4 ? AF_INET : AF_INET6, r.prefixLen, table < 256 ? table : 0, RTPROT_BOOT, scope, RTN_UNICAST);
  }
  if (r.prefixLen > 0) w.bytesAttr(RTA_DST, scratchA, 0, n);
  if (gw) w.bytesAttr(RTA_GATEWAY, scratchC, 0, n);
  if (r.oif !== undefined) w.u32(RTA_OIF, r.oif);
  if (r.metric !== undefined) w.u32(RTA_PRIORITY, r.metric);
  w.u32(RTA_TABLE, table);
  w.end(op, `${op}(${r.dst}/${r.prefixLen}${gw ? ` via ${r.gateway}` : ''}${r.oif !== undefined ? ` dev ${r.oif}` : ''})`);
}

/** RTM_NEWROUTE adding a route (EEXIST if an identical one exists). */
export function encAddRoute(w: NlWriter, r: RouteSpec): void {
  encRoute(w, 'addRoute', false, r);
}

/** RTM_DELROUTE deleting a route matching dst/prefixLen (and gateway/oif/table/metric when given). */
export function encDeleteRoute(w: NlWriter, r: RouteSpec): void {
  encRoute(w, 'deleteRoute', true, r);
}

// ---- reply parsing ----

/** Parses an RTM_NEWROUTE payload: null for other families, cloned/cached entries, and routes of other tables
 *  than `table` (0: every table). */
export function parseRoute(b: Buffer, off: number, end: number, table: number): RouteInfo | null {
  const family = b[off];
  if (family !== AF_INET && family !== AF_INET6) return null;
  if (b.readUInt32LE(off + 8) & RTM_F_CLONED) return null;
  const n = family === AF_INET ? 4 : 16;
  let tbl = b[off + 4];
  let dst: string | null = null;
  let gateway: string | null = null;
  let oif: number | null = null;
  let metric: number | null = null;
  let a = off + 12;
  while (a + 4 <= end) {
    const alen = b.readUInt16LE(a);
    if (alen < 4 || a + alen > end) break;
    switch (b.readUInt16LE(a + 2) & NLA_TYPE_MASK) {
      case RTA_TABLE: tbl = b.readUInt32LE(a + 4); break;
      case RTA_DST: if (alen - 4 >= n) dst = addrText(b, a + 4, family); break;
      case RTA_GATEWAY: if (alen - 4 >= n) gateway = addrText(b, a + 4, family); break;
      case RTA_VIA: {
        const vf = b.readUInt16LE(a + 4);
        if (vf === AF_INET && alen >= 10) gateway = formatIpv4(b, a + 6);
        else if (vf === AF_INET6 && alen >= 22) gateway = formatIpv6(b, a + 6);
        break;
      }
      case RTA_OIF: oif = b.readUInt32LE(a + 4); break;
      case RTA_PRIORITY: metric = b.readUInt32LE(a + 4); break;
    }
    a += (alen + 3) & ~3;
  }
  if (table !== 0 && tbl !== table) return null;
  return {
    family: family === AF_INET ? 4 : 6, dst: dst ?? (family === AF_INET ? '0.0.0.0' : '::'), prefixLen: b[off + 1],
    gateway, oif, table: tbl, protocol: b[off + 5], scope: b[off + 6], type: b[off + 7], metric,
  };
}

/**
 * Routes of one table (main by default; 0 = all tables), of one family or both (RTM_GETROUTE dump). Cloned/cached
 * entries are left out.
 */
export function routes(s: NetlinkSocket, family?: 4 | 6, table: number = RT_TABLE_MAIN): RouteInfo[] {
  const af = family === 4 ? AF_INET : family === 6 ? AF_INET6 : AF_UNSPEC;
  return s.dump('routes', RTM_GETROUTE, (w) => w.rtmsg(af, 0, 0, 0, 0, 0),
    (b, off, end) => parseRoute(b, off, end, table));
}
