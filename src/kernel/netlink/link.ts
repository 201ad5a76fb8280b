// Links (interfaces): RTM_NEWLINK / DELLINK / GETLINK / SETLINK, family AF_UNSPEC (bridge, veth, vxlan, flags,
// master, MTU, alias, name, MAC) and AF_BRIDGE (bridge-port flags). Encoders, reply parsers, and the GET/dump
// requests. The vxlan kind's own attributes are vxlan.ts's.
import { SIOCGIFINDEX } from '../libc.js';
import { MODE_GET, type NetlinkSocket } from './socket.js';
import { formatMac, validIfName } from './text.js';
import {
  AF_BRIDGE, AF_UNSPEC, NLA_F_NESTED, NLA_TYPE_MASK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, RTM_DELLINK, RTM_GETLINK,
  RTM_NEWLINK, RTM_SETLINK, NetlinkError, NlWriter, checkAlias, checkIndex, checkMtu, checkName, cstr, forEachAttr, invalid, macAttr,
} from './wire.js';
import { checkVxlan, encVxlanData, parseVxlanData, type VxlanInfo, type VxlanOptions } from './vxlan.js';

// linux/if.h, linux/if_link.h, linux/veth.h
export const IFF_UP = 0x1;
export const IFF_RUNNING = 0x40;

export const IFLA_ADDRESS = 1;
export const IFLA_IFNAME = 3;
export const IFLA_MTU = 4;
export const IFLA_MASTER = 10;
export const IFLA_PROTINFO = 12;
export const IFLA_OPERSTATE = 16;
export const IFLA_LINKINFO = 18;
export const IFLA_IFALIAS = 20;
export const IFLA_NET_NS_FD = 28;
export const IFLA_EXT_MASK = 29;
export const IFLA_INFO_KIND = 1;
export const IFLA_INFO_DATA = 2;
export const VETH_INFO_PEER = 1;
export const IFLA_BRPORT_MODE = 4;
export const IFLA_BRPORT_ISOLATED = 33;
export const IFLA_BRPORT_LEARNING = 8;
export const RTEXT_FILTER_SKIP_STATS = 1 << 3;

const OPER_STATES = ['unknown', 'notpresent', 'down', 'lowerlayerdown', 'testing', 'dormant', 'up'];

/** One network interface as the kernel reports it (RTM_NEWLINK). */
export interface LinkInfo {
  index: number;
  name: string;
  /** IFLA_INFO_KIND: 'bridge', 'veth', 'dummy', ...; null for devices without one (lo, physical NICs). */
  kind: string | null;
  /** ifindex of the master (bridge) this link is enslaved to, or null. */
  master: number | null;
  alias: string | null;
  /** Link-layer address, lowercase colon-separated hex ('' if the device has none). */
  mac: string;
  mtu: number;
  /** Administratively up (IFF_UP). */
  up: boolean;
  /** Operational (IFF_RUNNING: up with carrier; true for operstate 'up' and for 'unknown' devices such as lo). */
  operUp: boolean;
  /** RFC 2863 operational state: 'up', 'down', 'lowerlayerdown', 'unknown', ... */
  operState: string;
  /** Raw IFF_* flags. */
  flags: number;
  /** The vxlan configuration (IFLA_INFO_DATA), present only for kind 'vxlan'. */
  vxlan?: VxlanInfo;
}

export interface BridgeOptions {
  mtu?: number;
  mac?: string;
  alias?: string;
  up?: boolean;
}

export interface VethOptions {
  /** ifindex of a bridge (in this socket's netns) to enslave the host end to. */
  master?: number;
  /** MTU of both ends. */
  mtu?: number;
  /** MAC of the peer (container) end; random if omitted. */
  peerMac?: string;
  /** MAC of the host end; random if omitted. */
  hostMac?: string;
  /** Alias (IFLA_IFALIAS) of the host end. */
  alias?: string;
  /** Bring the host end up (the peer stays down: docs/kernel-notes.md §10). */
  up?: boolean;
}

/** One bridge port's flags (RTM_NEWLINK of family AF_BRIDGE, IFLA_PROTINFO). */
export interface BridgePortInfo {
  index: number;
  master: number | null;
  hairpin: boolean;
  isolated: boolean;
  /** The bridge learns source MACs of frames arriving on this port (the kernel's default: on). */
  learning: boolean;
}

/** Starts an RTM_SETLINK of one interface (the caller adds attributes and ends it). */
export function encSetLink(w: NlWriter, index: number, flags: number, change: number): void {
  w.begin(RTM_SETLINK, NLM_F_REQUEST);
  w.ifinfomsg(AF_UNSPEC, index, flags, change);
}

export function noAliasInBatch(op: string, o: object): void {
  if (o && (o as { alias?: unknown }).alias !== undefined) {
    throw invalid(op, 'alias cannot be set by a batched create (use Netlink.' + op + ', or setAlias in a later batch)');
  }
}

/** RTM_NEWLINK creating a bridge (without alias: the kernel ignores IFLA_IFALIAS on creation, measured on 6.18). */
export function encBridge(w: NlWriter, name: string, o: BridgeOptions): void {
  const op = 'createBridge';
  checkName(op, name);
  if (o.mtu !== undefined) checkMtu(op, o.mtu);
  const up = o.up ? IFF_UP : 0;
  w.begin(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL);
  w.ifinfomsg(AF_UNSPEC, 0, up, up);
  w.str(IFLA_IFNAME, name, true);
  if (o.mtu !== undefined) w.u32(IFLA_MTU, o.mtu);
  if (o.mac !== undefined) macAttr(w, op, IFLA_ADDRESS, o.mac);
  const li = w.nestStart(IFLA_LINKINFO | NLA_F_NESTED);
  w.str(IFLA_INFO_KIND, 'bridge', false);
  w.nestEnd(li);
  w.end(op, `${op}(${name})`);
}

/**
 * RTM_NEWLINK creating a veth pair: IFLA_LINKINFO { IFLA_INFO_KIND "veth", IFLA_INFO_DATA { VETH_INFO_PEER =
 * ifinfomsg + IFLA_IFNAME, IFLA_NET_NS_FD, IFLA_ADDRESS, IFLA_MTU } }. Without alias (see encBridge).
 */
export function encVeth(w: NlWriter, hostName: string, peerName: string, peerNetnsFd: number, o: VethOptions): void {
  const op = 'createVeth';
  checkName(op, hostName);
  checkName(op, peerName);
  if (!Number.isInteger(peerNetnsFd) || peerNetnsFd < 0) throw invalid(op, `invalid netns fd ${String(peerNetnsFd)}`);
  if (o.master !== undefined) checkIndex(op, o.master, 'master index');
  if (o.mtu !== undefined) checkMtu(op, o.mtu);
  const up = o.up ? IFF_UP : 0;
  w.begin(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL);
  w.ifinfomsg(AF_UNSPEC, 0, up, up);
  w.str(IFLA_IFNAME, hostName, true);
  if (o.mtu !== undefined) w.u32(IFLA_MTU, o.mtu);
  if (o.hostMac !== undefined) macAttr(w, op, IFLA_ADDRESS, o.hostMac);
  if (o.master !== undefined) w.u32(IFLA_MASTER, o.master);
  const li = w.nestStart(IFLA_LINKINFO | NLA_F_NESTED);
  w.str(IFLA_INFO_KIND, 'veth', false);
  const data = w.nestStart(IFLA_INFO_DATA | NLA_F_NESTED);
  const peer = w.nestStart(VETH_INFO_PEER);
  w.ifinfomsg(AF_UNSPEC, 0, 0, 0);
  w.str(IFLA_IFNAME, peerName, true);
  w.u32(IFLA_NET_NS_FD, peerNetnsFd);
  if (o.peerMac !== undefined) macAttr(w, op, IFLA_ADDRESS, o.peerMac);
  if (o.mtu !== undefined) w.u32(IFLA_MTU, o.mtu);
  w.nestEnd(peer);
  w.nestEnd(data);
  w.nestEnd(li);
  w.end(op, `${op}(${hostName}, ${peerName})`);
}

/**
 * RTM_NEWLINK creating a vxlan device: IFLA_LINKINFO { IFLA_INFO_KIND "vxlan", IFLA_INFO_DATA { IFLA_VXLAN_* }
 * (vxlan.ts) }, with IFLA_MTU, IFLA_ADDRESS and IFLA_MASTER as for a bridge or veth. Without alias (see encBridge).
 */
export function encVxlan(w: NlWriter, name: string, o: VxlanOptions): void {
  const op = 'createVxlan';
  checkName(op, name);
  checkVxlan(op, o);
  if (o.mtu !== undefined) checkMtu(op, o.mtu);
  if (o.master !== undefined) checkIndex(op, o.master, 'master index');
  const up = o.up ? IFF_UP : 0;
  w.begin(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL);
  w.ifinfomsg(AF_UNSPEC, 0, up, up);
  w.str(IFLA_IFNAME, name, true);
  if (o.mtu !== undefined) w.u32(IFLA_MTU, o.mtu);
  if (o.mac !== undefined) macAttr(w, op, IFLA_ADDRESS, o.mac);
  if (o.master !== undefined) w.u32(IFLA_MASTER, o.master);
  const li = w.nestStart(IFLA_LINKINFO | NLA_F_NESTED);
  w.str(IFLA_INFO_KIND, 'vxlan', false);
  const data = w.nestStart(IFLA_INFO_DATA | NLA_F_NESTED);
  encVxlanData(w, op, o);
  w.nestEnd(data);
  w.nestEnd(li);
  w.end(op, `${op}(${name}, vni ${o.vni})`);
}

/** RTM_GETLINK of one interface by name (no statistics). */
export function encGetLinkByName(w: NlWriter, op: string, name: string): void {
  w.begin(RTM_GETLINK, NLM_F_REQUEST);
  w.ifinfomsg(AF_UNSPEC, 0, 0, 0);
  w.str(IFLA_IFNAME, name, true);
  w.u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  w.end(op, `${op}(${name})`);
}

export function encGetLinkByIndex(w: NlWriter, op: string, index: number): void {
  w.begin(RTM_GETLINK, NLM_F_REQUEST);
  w.ifinfomsg(AF_UNSPEC, index, 0, 0);
  w.u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  w.end(op, `${op}(${index})`);
}

/** RTM_SETLINK setting the interface administratively up. */
export function encSetUp(w: NlWriter, index: number): void {
  checkIndex('setUp', index);
  encSetLink(w, index, IFF_UP, IFF_UP);
  w.end('setUp', `setUp(${index})`);
}

/** RTM_SETLINK setting the interface administratively down. */
export function encSetDown(w: NlWriter, index: number): void {
  checkIndex('setDown', index);
  encSetLink(w, index, 0, IFF_UP);
  w.end('setDown', `setDown(${index})`);
}

/** RTM_SETLINK enslaving the interface to `master` (a bridge's ifindex), or releasing it with null. */
export function encSetMaster(w: NlWriter, index: number, master: number | null): void {
  const op = 'setMaster';
  checkIndex(op, index);
  if (master !== null) checkIndex(op, master, 'master index');
  encSetLink(w, index, 0, 0);
  w.u32(IFLA_MASTER, master ?? 0);
  w.end(op, `${op}(${index}, ${master})`);
}

export function encSetMtu(w: NlWriter, index: number, mtu: number): void {
  const op = 'setMtu';
  checkIndex(op, index);
  checkMtu(op, mtu);
  encSetLink(w, index, 0, 0);
  w.u32(IFLA_MTU, mtu);
  w.end(op, `${op}(${index}, ${mtu})`);
}

/** Flags of a bridge port nsnet sets: hairpin mode, isolation, MAC learning. */
export interface BridgePortFlags {
  hairpin?: boolean;
  isolated?: boolean;
  learning?: boolean;
}

/** Bridge-port flags of an enslaved interface (RTM_SETLINK, family AF_BRIDGE, IFLA_PROTINFO): see
 *  NetlinkBatch.setBridgePort. */
export function encSetBridgePort(w: NlWriter, index: number, o: BridgePortFlags): void {
  const op = 'setBridgePort';
  checkIndex(op, index);
  w.begin(RTM_SETLINK, NLM_F_REQUEST);
  w.ifinfomsg(AF_BRIDGE, index, 0, 0);
  const pi = w.nestStart(IFLA_PROTINFO | NLA_F_NESTED);
  if (o.hairpin !== undefined) w.u8(IFLA_BRPORT_MODE, o.hairpin ? 1 : 0);
  if (o.isolated !== undefined) w.u8(IFLA_BRPORT_ISOLATED, o.isolated ? 1 : 0);
  if (o.learning !== undefined) w.u8(IFLA_BRPORT_LEARNING, o.learning ? 1 : 0);
  w.nestEnd(pi);
  w.end(op, `${op}(${index}, ${JSON.stringify(o)})`);
}

/** RTM_SETLINK setting IFLA_IFALIAS; '' removes the alias. */
export function encSetAlias(w: NlWriter, index: number, alias: string): void {
  const op = 'setAlias';
  checkIndex(op, index);
  checkAlias(op, alias);
  encSetLink(w, index, 0, 0);
  w.str(IFLA_IFALIAS, alias, false);
  w.end(op, `${op}(${index}, ${JSON.stringify(alias)})`);
}

/** RTM_SETLINK renaming the interface (the kernel refuses it while the interface is up: EBUSY). */
export function encSetName(w: NlWriter, index: number, name: string): void {
  const op = 'setName';
  checkIndex(op, index);
  if (!validIfName(name)) throw new NetlinkError(`${op}: invalid interface name ${JSON.stringify(name)}`, 'EINVAL', 22, op);
  encSetLink(w, index, 0, 0);
  w.str(IFLA_IFNAME, name, true);
  w.end(op, `${op}(${index}, ${JSON.stringify(name)})`);
}

export function encSetMac(w: NlWriter, index: number, mac: string): void {
  const op = 'setMac';
  checkIndex(op, index);
  encSetLink(w, index, 0, 0);
  macAttr(w, op, IFLA_ADDRESS, mac);
  w.end(op, `${op}(${index}, ${mac})`);
}

/** RTM_DELLINK of the interface (for a veth, both ends). */
export function encDeleteLink(w: NlWriter, index: number): void {
  const op = 'deleteLink';
  checkIndex(op, index);
  w.begin(RTM_DELLINK, NLM_F_REQUEST);
  w.ifinfomsg(AF_UNSPEC, index, 0, 0);
  w.end(op, `${op}(${index})`);
}

// ---- reply parsing ----

/** IFLA_INFO_KIND of an IFLA_LINKINFO b[s..e), and the vxlan configuration for a vxlan link. */
function linkKind(b: Buffer, s: number, e: number): { kind: string | null; vxlan: VxlanInfo | null } {
  let kind: string | null = null;
  let ds = -1;
  let de = -1;
  forEachAttr(b, s, e, (t, ps, pe) => {
    if (t === IFLA_INFO_KIND) kind = cstr(b, ps, pe);
    else if (t === IFLA_INFO_DATA) { ds = ps; de = pe; }
  });
  return { kind, vxlan: kind === 'vxlan' && ds >= 0 ? parseVxlanData(b, ds, de) : null };
}

/** Parses an AF_BRIDGE RTM_NEWLINK payload; null for entries without port info (the bridge itself). */
export function parseBridgePort(b: Buffer, off: number, end: number): BridgePortInfo | null {
  const index = b.readInt32LE(off + 4);
  let master: number | null = null;
  let hairpin: boolean | null = null;
  let isolated = false;
  let learning = true;
  let a = off + 16;
  while (a + 4 <= end) {
    const alen = b.readUInt16LE(a);
    if (alen < 4 || a + alen > end) break;
    const t = b.readUInt16LE(a + 2) & NLA_TYPE_MASK;
    if (t === IFLA_MASTER) master = b.readUInt32LE(a + 4) || null;
    else if (t === IFLA_PROTINFO) {
      hairpin = false;
      for (let n = a + 4; n + 4 <= a + alen;) {
        const nlen = b.readUInt16LE(n);
        if (nlen < 4 || n + nlen > a + alen) break;
        const nt = b.readUInt16LE(n + 2) & NLA_TYPE_MASK;
        if (nt === IFLA_BRPORT_MODE) hairpin = b[n + 4] !== 0;
        else if (nt === IFLA_BRPORT_ISOLATED) isolated = b[n + 4] !== 0;
        else if (nt === IFLA_BRPORT_LEARNING) learning = b[n + 4] !== 0;
        n += (nlen + 3) & ~3;
      }
    }
    a += (alen + 3) & ~3;
  }
  return hairpin === null ? null : { index, master, hairpin, isolated, learning };
}

/** Parses an RTM_NEWLINK payload b[off..end). Exported for tests. */
export function parseLink(b: Buffer, off: number, end: number): LinkInfo {
  const index = b.readInt32LE(off + 4);
  const flags = b.readUInt32LE(off + 8);
  let name = '';
  let kind: string | null = null;
  let master: number | null = null;
  let alias: string | null = null;
  let mac = '';
  let mtu = 0;
  let oper = 0;
  let vxlan: VxlanInfo | null = null;
  let a = off + 16;
  while (a + 4 <= end) {
    const alen = b.readUInt16LE(a);
    if (alen < 4 || a + alen > end) break;
    switch (b.readUInt16LE(a + 2) & NLA_TYPE_MASK) {
      case IFLA_IFNAME: name = cstr(b, a + 4, a + alen); break;
      case IFLA_MTU: mtu = b.readUInt32LE(a + 4); break;
      case IFLA_MASTER: master = b.readUInt32LE(a + 4) || null; break;
      case IFLA_IFALIAS: alias = cstr(b, a + 4, a + alen) || null; break;
      case IFLA_ADDRESS: mac = formatMac(b, a + 4, alen - 4); break;
      case IFLA_OPERSTATE: oper = b[a + 4]; break;
      case IFLA_LINKINFO: ({ kind, vxlan } = linkKind(b, a + 4, a + alen)); break;
    }
    a += (alen + 3) & ~3;
  }
  const l: LinkInfo = {
    index, name, kind, master, alias, mac, mtu,
    up: (flags & IFF_UP) !== 0, operUp: (flags & IFF_RUNNING) !== 0,
    operState: OPER_STATES[oper] ?? `state${oper}`, flags,
  };
  if (vxlan !== null) l.vxlan = vxlan; // only for vxlan links: the other kinds' objects keep their shape
  return l;
}

// ---- requests ----

/** struct ifreq for SIOCGIFINDEX (shared: nothing here is re-entrant). */
const IFREQ = Buffer.alloc(40);

/** The ifindex of `name` in the socket's netns, or null: one SIOCGIFINDEX ioctl, no netlink message. */
export function ifindex(s: NetlinkSocket, name: string): number | null {
  const op = 'ifindex';
  checkName(op, name);
  const r = IFREQ;
  r.fill(0, 0, 20);
  r.write(name, 0, 'utf8');
  try {
    s.ioctl(op, SIOCGIFINDEX, r);
  } catch (e) {
    if (e instanceof NetlinkError && e.code === 'ENODEV') return null;
    throw e;
  }
  return r.readInt32LE(16);
}

/** The interface named `name`, or null if there is none (ENODEV). */
export function linkByName(s: NetlinkSocket, name: string): LinkInfo | null {
  checkName('linkByName', name);
  const w = s.request();
  encGetLinkByName(w, 'linkByName', name);
  try {
    return s.exec(w, false, MODE_GET, parseLink)[0] ?? null;
  } catch (e) {
    if (e instanceof NetlinkError && e.code === 'ENODEV') return null;
    throw e;
  }
}

/** The interface with ifindex `index`, or null if there is none (ENODEV). */
export function linkByIndex(s: NetlinkSocket, index: number): LinkInfo | null {
  checkIndex('linkByIndex', index);
  const w = s.request();
  encGetLinkByIndex(w, 'linkByIndex', index);
  try {
    return s.exec(w, false, MODE_GET, parseLink)[0] ?? null;
  } catch (e) {
    if (e instanceof NetlinkError && e.code === 'ENODEV') return null;
    throw e;
  }
}

/** All interfaces of the socket's netns (RTM_GETLINK dump, without statistics). */
export function links(s: NetlinkSocket): LinkInfo[] {
  return s.dump('links', RTM_GETLINK, (w) => {
    w.ifinfomsg(AF_UNSPEC, 0, 0, 0);
    w.u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  }, parseLink);
}

/** Flags of every bridge port of the socket's netns (RTM_GETLINK dump of family AF_BRIDGE). */
export function bridgePorts(s: NetlinkSocket): BridgePortInfo[] {
  return s.dump('bridgePorts', RTM_GETLINK, (w) => {
    w.ifinfomsg(AF_BRIDGE, 0, 0, 0);
    w.u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  }, parseBridgePort);
}
