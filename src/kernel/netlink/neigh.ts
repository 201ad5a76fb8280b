// Neighbour and FDB entries: RTM_NEWNEIGH / DELNEIGH / GETNEIGH (struct ndmsg, 12 bytes). Two uses:
//  - FDB entries of a vxlan device (family AF_BRIDGE, NTF_SELF): "MAC -> remote underlay IP" (NDA_LLADDR +
//    NDA_DST), and the all-zeros MAC's list of remotes that broadcast and unknown unicast are replicated to
//    (head-end replication, built with NLM_F_APPEND);
//  - neighbour entries (family AF_INET / AF_INET6, NUD_PERMANENT): "IP -> MAC" on a device, so that no ARP/ND
//    request has to be answered from afar (with IFLA_VXLAN_PROXY, a vxlan device answers them from this table).
// What the kernel does with each flag (NTF_SELF vs NTF_MASTER, append, replace, delete of an absent remote) is in
// docs/kernel-notes.md §17.
import type { NetlinkSocket } from './socket.js';
import { formatMac, parseMacInto } from './text.js';
import { addrText } from './addr.js';
import {
  AF_BRIDGE, AF_INET, AF_INET6, AF_UNSPEC, NLM_F_APPEND, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST,
  NLA_TYPE_MASK, RTM_DELNEIGH, RTM_GETNEIGH, RTM_NEWNEIGH, NlWriter, checkIndex, invalid, ipOf, macAttr,
} from './wire.js';

// linux/neighbour.h
export const NDA_DST = 1;
export const NDA_LLADDR = 2;
export const NDA_PORT = 6;
export const NDA_VNI = 7;
export const NDA_IFINDEX = 8;
export const NDA_MASTER = 9;

export const NUD_INCOMPLETE = 0x01;
export const NUD_REACHABLE = 0x02;
export const NUD_STALE = 0x04;
export const NUD_NOARP = 0x40;
export const NUD_PERMANENT = 0x80;

export const NTF_SELF = 0x02;
export const NTF_MASTER = 0x04;
export const NTF_PROXY = 0x08;

/** The FDB entry whose remotes receive broadcast, multicast and unknown-unicast frames. */
export const FLOOD_MAC = '00:00:00:00:00:00';

/** One FDB entry (RTM_NEWNEIGH of family AF_BRIDGE). An entry with several remotes (the all-zeros MAC) is reported
 *  once per remote. */
export interface FdbInfo {
  /** The device the entry is on (ndm_ifindex). */
  index: number;
  mac: string;
  /** Remote underlay address (NDA_DST), or null (entries of a bridge's own FDB have none). */
  dst: string | null;
  /** NTF_SELF: the device's own table (a vxlan device's remotes); without it (NTF_MASTER) the entry belongs to the
   *  FDB of the bridge the device is a port of. */
  self: boolean;
  /** The bridge, for entries of a bridge's FDB (NDA_MASTER), else null. */
  master: number | null;
  /** NUD_PERMANENT set (static; never aged out). */
  permanent: boolean;
  /** Raw NUD_* state and NTF_* flags. */
  state: number;
  flags: number;
  /** Remote UDP port and VNI, reported only when they differ from the device's (NDA_PORT, NDA_VNI); else null. */
  port: number | null;
  vni: number | null;
}

/** One neighbour (ARP / ND) entry. */
export interface NeighbourInfo {
  index: number;
  family: 4 | 6;
  ip: string;
  /** Link-layer address, or null (an entry still resolving, or failed). */
  mac: string | null;
  permanent: boolean;
  /** Raw NUD_* state and NTF_* flags. */
  state: number;
  flags: number;
}

const scratch = new Uint8Array(16);

/** Whether `mac` is the all-zeros MAC or a multicast one (group bit); EINVAL if it is not a MAC. */
function floodOrMulticast(op: string, mac: string): boolean {
  if (typeof mac !== 'string' || !parseMacInto(mac, scratch, 0)) {
    throw invalid(op, `invalid MAC address ${JSON.stringify(mac)} (expected aa:bb:cc:dd:ee:ff)`);
  }
  return (scratch[0] & 1) === 1 || scratch.subarray(0, 6).every((x) => x === 0);
}

/** Common part of an FDB request: ndmsg {AF_BRIDGE, index, NUD_PERMANENT, NTF_SELF}, NDA_LLADDR, NDA_DST. */
function encFdb(w: NlWriter, op: string, type: number, flags: number, index: number, mac: string, dst: string | undefined): void {
  const fam = dst !== undefined ? ipOf(op, dst, scratch, 'remote address') : 0;
  w.begin(type, flags);
  w.ndmsg(AF_BRIDGE, index, NUD_PERMANENT, NTF_SELF, 0);
  macAttr(w, op, NDA_LLADDR, mac);
  if (fam !== 0) w.bytesAttr(NDA_DST, scratch, 0, fam === 4 ? 4 : 16);
  w.end(op, `${op}(${index}, ${mac}${dst !== undefined ? ` dst ${dst}` : ''})`);
}

/**
 * RTM_NEWNEIGH of a unicast FDB entry on a vxlan device: frames to `mac` go to the remote `dst`. Exclusive
 * (EEXIST if `mac` has an entry) unless `o.replace`: then created or moved to `dst` (idempotent). The all-zeros and
 * multicast MACs are refused here (EINVAL): they hold a list of remotes, built with encAppendFdb.
 */
export function encAddFdb(w: NlWriter, index: number, mac: string, dst: string, o: { replace?: boolean } = {}): void {
  const op = 'addFdb';
  checkIndex(op, index);
  if (floodOrMulticast(op, mac)) throw invalid(op, `${mac} is not a unicast MAC (use appendFdb for the flood list)`);
  if (typeof dst !== 'string') throw invalid(op, 'missing remote address');
  encFdb(w, op, RTM_NEWNEIGH, NLM_F_REQUEST | NLM_F_CREATE | (o.replace ? NLM_F_REPLACE : NLM_F_EXCL), index, mac, dst);
}

/**
 * RTM_NEWNEIGH with NLM_F_APPEND: adds the remote `dst` to the list of the all-zeros MAC (FLOOD_MAC: broadcast and
 * unknown unicast are sent to every remote of the list) or of a multicast MAC; creates the entry if needed. A
 * remote already in the list is not added twice (no error). Unicast MACs are refused (EINVAL: the kernel would
 * silently keep their old remote).
 */
export function encAppendFdb(w: NlWriter, index: number, mac: string, dst: string): void {
  const op = 'appendFdb';
  checkIndex(op, index);
  if (!floodOrMulticast(op, mac)) throw invalid(op, `${mac} is a unicast MAC (use addFdb)`);
  if (typeof dst !== 'string') throw invalid(op, 'missing remote address');
  encFdb(w, op, RTM_NEWNEIGH, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_APPEND, index, mac, dst);
}

/**
 * RTM_DELNEIGH of an FDB entry (NTF_SELF): with `dst`, only that remote of the entry (the entry goes with its last
 * remote); without, the whole entry. ENOENT if `mac` has no entry; a `dst` that is not among the entry's remotes
 * is NOT an error (the kernel answers 0).
 */
export function encDeleteFdb(w: NlWriter, index: number, mac: string, dst?: string): void {
  const op = 'deleteFdb';
  checkIndex(op, index);
  encFdb(w, op, RTM_DELNEIGH, NLM_F_REQUEST, index, mac, dst);
}

/** RTM_NEWNEIGH of a permanent IPv4 (ARP) or IPv6 (ND) entry `ip` -> `mac` on the device: exclusive (EEXIST if
 *  `ip` has an entry there, even a learned one) unless `o.replace` (created or overwritten: idempotent). */
export function encAddNeighbour(w: NlWriter, index: number, ip: string, mac: string, o: { replace?: boolean } = {}): void {
  const op = 'addNeighbour';
  checkIndex(op, index);
  const fam = ipOf(op, ip, scratch, 'address');
  w.begin(RTM_NEWNEIGH, NLM_F_REQUEST | NLM_F_CREATE | (o.replace ? NLM_F_REPLACE : NLM_F_EXCL));
  w.ndmsg(fam === 4 ? AF_INET : AF_INET6, index, NUD_PERMANENT, 0, 0);
  w.bytesAttr(NDA_DST, scratch, 0, fam === 4 ? 4 : 16);
  macAttr(w, op, NDA_LLADDR, mac);
  w.end(op, `${op}(${index}, ${ip} lladdr ${mac})`);
}

/** RTM_DELNEIGH of the neighbour entry of `ip` on the device (ENOENT if there is none). */
export function encDeleteNeighbour(w: NlWriter, index: number, ip: string): void {
  const op = 'deleteNeighbour';
  checkIndex(op, index);
  const fam = ipOf(op, ip, scratch, 'address');
  w.begin(RTM_DELNEIGH, NLM_F_REQUEST);
  w.ndmsg(fam === 4 ? AF_INET : AF_INET6, index, 0, 0, 0);
  w.bytesAttr(NDA_DST, scratch, 0, fam === 4 ? 4 : 16);
  w.end(op, `${op}(${index}, ${ip})`);
}

// ---- reply parsing ----

/** Parses an RTM_NEWNEIGH payload of family AF_BRIDGE; null for other families. */
export function parseFdb(b: Buffer, off: number, end: number): FdbInfo | null {
  if (end - off < 12 || b[off] !== AF_BRIDGE) return null;
  const state = b.readUInt16LE(off + 8);
  const flags = b[off + 10];
  const f: FdbInfo = {
    index: b.readInt32LE(off + 4), mac: '', dst: null, self: (flags & NTF_SELF) !== 0, master: null,
    permanent: (state & NUD_PERMANENT) !== 0, state, flags, port: null, vni: null,
  };
  for (let a = off + 12; a + 4 <= end;) {
    const alen = b.readUInt16LE(a);
    if (alen < 4 || a + alen > end) break;
    const n = alen - 4;
    switch (b.readUInt16LE(a + 2) & NLA_TYPE_MASK) {
      case NDA_LLADDR: f.mac = formatMac(b, a + 4, n); break;
      case NDA_DST: if (n === 4) f.dst = addrText(b, a + 4, AF_INET); else if (n === 16) f.dst = addrText(b, a + 4, AF_INET6); break;
      case NDA_MASTER: if (n >= 4) f.master = b.readUInt32LE(a + 4) || null; break;
      case NDA_PORT: if (n >= 2) f.port = b.readUInt16BE(a + 4); break;
      case NDA_VNI: if (n >= 4) f.vni = b.readUInt32LE(a + 4); break;
    }
    a += (alen + 3) & ~3;
  }
  return f;
}

/** Parses an RTM_NEWNEIGH payload of family AF_INET / AF_INET6; null for other families, proxy entries, and
 *  entries without an address. */
export function parseNeighbour(b: Buffer, off: number, end: number): NeighbourInfo | null {
  if (end - off < 12) return null;
  const family = b[off];
  if (family !== AF_INET && family !== AF_INET6) return null;
  const flags = b[off + 10];
  if (flags & NTF_PROXY) return null;
  const state = b.readUInt16LE(off + 8);
  const n = family === AF_INET ? 4 : 16;
  let ip: string | null = null;
  let mac: string | null = null;
  for (let a = off + 12; a + 4 <= end;) {
    const alen = b.readUInt16LE(a);
    if (alen < 4 || a + alen > end) break;
    const t = b.readUInt16LE(a + 2) & NLA_TYPE_MASK;
    if (t === NDA_DST && alen - 4 >= n) ip = addrText(b, a + 4, family);
    else if (t === NDA_LLADDR) mac = formatMac(b, a + 4, alen - 4);
    a += (alen + 3) & ~3;
  }
  if (ip === null) return null;
  return {
    index: b.readInt32LE(off + 4), family: family === AF_INET ? 4 : 6, ip, mac, permanent: (state & NUD_PERMANENT) !== 0,
    state, flags,
  };
}

// ---- requests ----

/**
 * FDB entries of one device (RTM_GETNEIGH dump of family AF_BRIDGE, filtered by the kernel): for a vxlan device,
 * its own entries (self, with dst) and, if it is a bridge port, the bridge's entries for that port (self false,
 * `master` the bridge). [] for a device without entries; ENODEV is not reported by the kernel for a dump (an
 * unknown index gives []).
 */
export function fdbEntries(s: NetlinkSocket, index: number): FdbInfo[] {
  const op = 'fdbEntries';
  checkIndex(op, index);
  // An ifinfomsg header (16 bytes, not an ndmsg): without NETLINK_GET_STRICT_CHK the kernel reads ifi_index as the
  // port to dump (rtnl_fdb_dump's legacy parsing, kept for iproute2).
  return s.dump(op, RTM_GETNEIGH, (w) => w.ifinfomsg(AF_BRIDGE, index, 0, 0), parseFdb).filter((f) => f.index === index);
}

/** Neighbour (ARP / ND) entries of this netns, of one device (NDA_IFINDEX: filtered by the kernel) and/or one
 *  family; proxy entries are left out. */
export function neighbours(s: NetlinkSocket, index?: number, family?: 4 | 6): NeighbourInfo[] {
  const op = 'neighbours';
  if (index !== undefined) checkIndex(op, index);
  const af = family === 4 ? AF_INET : family === 6 ? AF_INET6 : AF_UNSPEC;
  const all = s.dump(op, RTM_GETNEIGH, (w) => {
    w.ndmsg(af, 0, 0, 0, 0);
    if (index !== undefined) w.u32(NDA_IFINDEX, index);
  }, parseNeighbour);
  return index === undefined ? all : all.filter((n) => n.index === index);
}
