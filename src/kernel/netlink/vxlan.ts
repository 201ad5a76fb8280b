// The vxlan link kind: the attributes of IFLA_LINKINFO/IFLA_INFO_DATA for kind "vxlan" (linux/if_link.h
// IFLA_VXLAN_*), their encoder and their parser. The RTM_NEWLINK around them is link.ts's (encVxlan), which also
// calls parseVxlanData for vxlan links in dumps; the FDB and neighbour entries a vxlan device needs are neigh.ts's.
//
// Byte orders (docs/kernel-notes.md §17): IFLA_VXLAN_PORT is a u16 in NETWORK byte order (4789 = 12 b5), the
// addresses are raw bytes (network order), ID/LINK/AGEING are host-order u32, TTL/LEARNING/PROXY u8.
import { formatIpv4, formatIpv6 } from './text.js';
import { NLA_TYPE_MASK, NlWriter, checkIndex, invalid, ipOf } from './wire.js';

export const IFLA_VXLAN_ID = 1;
export const IFLA_VXLAN_GROUP = 2;
export const IFLA_VXLAN_LINK = 3;
export const IFLA_VXLAN_LOCAL = 4;
export const IFLA_VXLAN_TTL = 5;
export const IFLA_VXLAN_LEARNING = 7;
export const IFLA_VXLAN_PROXY = 11;
export const IFLA_VXLAN_PORT = 15;
export const IFLA_VXLAN_GROUP6 = 16;
export const IFLA_VXLAN_LOCAL6 = 17;

/** The IANA VXLAN UDP port (RFC 7348), nsnet's default; the kernel's own default is 8472 (Linux's pre-IANA one). */
export const VXLAN_PORT = 4789;
/** Largest VNI (24 bits). */
export const VXLAN_VNI_MAX = 0xffffff;

export interface VxlanOptions {
  /** VXLAN network identifier, 0..16777215. Unique per UDP port within a netns (EEXIST otherwise). */
  vni: number;
  /** Underlay source address, IPv4 (IFLA_VXLAN_LOCAL) or IPv6 (IFLA_VXLAN_LOCAL6); FDB destinations must be of its
   *  family (EAFNOSUPPORT otherwise). Omitted: chosen by route lookup per packet (IPv4). */
  local?: string;
  /** Destination UDP port, 4789 by default (VXLAN_PORT). */
  port?: number;
  /** ifindex of the underlay device: the MTU defaults to its MTU − 50 (IPv4) / − 70 (IPv6), a larger `mtu` is
   *  clamped to that at creation (and refused by a later setMtu: EINVAL); without it the MTU defaults to 1500. */
  link?: number;
  /** IP TTL of the encapsulated packets, 1..255 (0 or omitted: the route's default). */
  ttl?: number;
  /** Learn remote MACs from received packets (IFLA_VXLAN_LEARNING); false by default (nsnet programs the FDB). */
  learning?: boolean;
  /** Answer ARP/ND requests from the device's neighbour table (IFLA_VXLAN_PROXY: ARP suppression); false by
   *  default. */
  proxy?: boolean;
  mtu?: number;
  mac?: string;
  /** Alias (set after the create: see encBridge). */
  alias?: string;
  /** ifindex of a bridge to enslave the device to. */
  master?: number;
  up?: boolean;
}

/** A vxlan link's configuration as the kernel reports it (LinkInfo.vxlan). */
export interface VxlanInfo {
  vni: number;
  /** Destination UDP port (host order here). */
  port: number;
  /** Underlay source address, or null if none is set. */
  local: string | null;
  /** Default remote or multicast group (IFLA_VXLAN_GROUP/GROUP6), or null (nsnet sets none: FDB only). */
  group: string | null;
  learning: boolean;
  proxy: boolean;
  /** Underlay ifindex, or null. */
  link: number | null;
  /** 0 = the route's default ("ttl auto"). */
  ttl: number;
}

const scratch = new Uint8Array(16);

/** Validates the vxlan-specific options (before anything is written). */
export function checkVxlan(op: string, o: VxlanOptions): void {
  if (!o || typeof o !== 'object') throw invalid(op, 'missing vxlan options');
  if (!Number.isInteger(o.vni) || o.vni < 0 || o.vni > VXLAN_VNI_MAX) throw invalid(op, `invalid VNI ${String(o.vni)} (0..${VXLAN_VNI_MAX})`);
  if (o.local !== undefined) ipOf(op, o.local, scratch, 'local address');
  if (o.port !== undefined && (!Number.isInteger(o.port) || o.port <= 0 || o.port > 0xffff)) throw invalid(op, `invalid UDP port ${String(o.port)}`);
  if (o.link !== undefined) checkIndex(op, o.link, 'underlay index');
  if (o.ttl !== undefined && (!Number.isInteger(o.ttl) || o.ttl < 0 || o.ttl > 255)) throw invalid(op, `invalid TTL ${String(o.ttl)} (0..255)`);
}

/** Writes the IFLA_INFO_DATA attributes of a vxlan link (checkVxlan first). LEARNING is always written. */
export function encVxlanData(w: NlWriter, op: string, o: VxlanOptions): void {
  w.u32(IFLA_VXLAN_ID, o.vni);
  if (o.local !== undefined) {
    const f = ipOf(op, o.local, scratch, 'local address');
    if (f === 4) w.bytesAttr(IFLA_VXLAN_LOCAL, scratch, 0, 4);
    else w.bytesAttr(IFLA_VXLAN_LOCAL6, scratch, 0, 16);
  }
  if (o.link !== undefined) w.u32(IFLA_VXLAN_LINK, o.link);
  if (o.ttl !== undefined) w.u8(IFLA_VXLAN_TTL, o.ttl);
  w.u8(IFLA_VXLAN_LEARNING, o.learning ? 1 : 0);
  if (o.proxy !== undefined) w.u8(IFLA_VXLAN_PROXY, o.proxy ? 1 : 0);
  w.be16(IFLA_VXLAN_PORT, o.port ?? VXLAN_PORT);
}

/** Parses the IFLA_INFO_DATA attributes b[s..e) of a vxlan link. */
export function parseVxlanData(b: Buffer, s: number, e: number): VxlanInfo {
  const v: VxlanInfo = { vni: 0, port: 0, local: null, group: null, learning: false, proxy: false, link: null, ttl: 0 };
  for (let a = s; a + 4 <= e;) {
    const alen = b.readUInt16LE(a);
    if (alen < 4 || a + alen > e) break;
    const n = alen - 4;
    const p = a + 4;
    switch (b.readUInt16LE(a + 2) & NLA_TYPE_MASK) {
      case IFLA_VXLAN_ID: if (n >= 4) v.vni = b.readUInt32LE(p); break;
      case IFLA_VXLAN_PORT: if (n >= 2) v.port = b.readUInt16BE(p); break;
      case IFLA_VXLAN_LOCAL: if (n >= 4) v.local = formatIpv4(b, p); break;
      case IFLA_VXLAN_LOCAL6: if (n >= 16) v.local = formatIpv6(b, p); break;
      case IFLA_VXLAN_GROUP: if (n >= 4) v.group = formatIpv4(b, p); break;
      case IFLA_VXLAN_GROUP6: if (n >= 16) v.group = formatIpv6(b, p); break;
      case IFLA_VXLAN_LEARNING: if (n >= 1) v.learning = b[p] !== 0; break;
      case IFLA_VXLAN_PROXY: if (n >= 1) v.proxy = b[p] !== 0; break;
      case IFLA_VXLAN_LINK: if (n >= 4) v.link = b.readUInt32LE(p) || null; break;
      case IFLA_VXLAN_TTL: if (n >= 1) v.ttl = b[p]; break;
    }
    a += (alen + 3) & ~3;
  }
  return v;
}
