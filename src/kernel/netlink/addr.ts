// Interface addresses: RTM_NEWADDR / DELADDR / GETADDR (ifaddrmsg). Encoder, reply parser, dump.
import type { NetlinkSocket } from './socket.js';
import { formatIpv4, formatIpv6, parseIpInto } from './text.js';
import {
  AF_INET, AF_INET6, AF_UNSPEC, NLA_TYPE_MASK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, RTM_DELADDR, RTM_GETADDR, RTM_NEWADDR,
  RT_SCOPE_UNIVERSE, NlWriter, checkIndex, checkPrefix, invalid, ipOf,
} from './wire.js';

// linux/if_addr.h
export const IFA_ADDRESS = 1;
export const IFA_LOCAL = 2;
export const IFA_BROADCAST = 4;
export const IFA_F_NODAD = 0x02;

/** One interface address (RTM_NEWADDR). */
export interface AddrInfo {
  index: number;
  family: 4 | 6;
  /** The local address, canonical text (IPv6 compressed as in RFC 5952). */
  address: string;
  prefixLen: number;
  /** RT_SCOPE_*: 0 global, 253 link, 254 host. */
  scope: number;
}


export interface AddressOptions {
  /** IPv4 broadcast address, or '+' to compute it from the prefix (as `ip addr add ... brd +`). */
  broadcast?: string;
  /** IPv6: skip duplicate address detection (IFA_F_NODAD), so the address is usable at once. */
  nodad?: boolean;
}

const scratchA = new Uint8Array(16);
const scratchB = new Uint8Array(16);

/** RTM_NEWADDR (add) or RTM_DELADDR of one IPv4 or IPv6 address. */
function encAddr(w: NlWriter, op: string, type: number, flags: number, index: number, address: string, prefixLen: number, o: AddressOptions): void {
  checkIndex(op, index);
  const fam = ipOf(op, address, scratchA, 'address');
  checkPrefix(op, fam, prefixLen);
  const n = fam === 4 ? 4 : 16;
  let brd = false;
  if (o.broadcast !== undefined) {
    if (fam !== 4) throw invalid(op, 'a broadcast address is IPv4 only');
    if (o.broadcast === '+') {
      const host = prefixLen === 32 ? 0 : (0xffffffff >>> prefixLen);
      const v = (((scratchA[0] << 24) | (scratchA[1] << 16) | (scratchA[2] << 8) | scratchA[3]) | host) >>> 0;
      scratchB[0] = v >>> 24; scratchB[1] = (v >>> 16) & 0xff; scratchB[2] = (v >>> 8) & 0xff; scratchB[3] = v & 0xff;
    } else if (parseIpInto(o.broadcast, scratchB, 0) !== 4) {
      throw invalid(op, `invalid broadcast address ${JSON.stringify(o.broadcast)}`);
    }
    brd = true;
  }
  w.begin(type, flags);
  w.ifaddrmsg(fam === 4 ? AF_INET : AF_INET6, prefixLen, o.nodad && fam === 6 ? IFA_F_NODAD : 0, RT_SCOPE_UNIVERSE, index);
  w.bytesAttr(IFA_LOCAL, scratchA, 0, n);
  w.bytesAttr(IFA_ADDRESS, scratchA, 0, n);
  if (brd) w.bytesAttr(IFA_BROADCAST, scratchB, 0, 4);
  w.end(op, `${op}(${index}, ${address}/${prefixLen})`);
}

/** RTM_NEWADDR adding an IPv4 or IPv6 address (EEXIST if present). */
export function encAddAddress(w: NlWriter, index: number, address: string, prefixLen: number, o: AddressOptions): void {
  encAddr(w, 'addAddress', RTM_NEWADDR, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL, index, address, prefixLen, o);
}

/** RTM_DELADDR removing an address (EADDRNOTAVAIL if absent). */
export function encDeleteAddress(w: NlWriter, index: number, address: string, prefixLen: number): void {
  encAddr(w, 'deleteAddress', RTM_DELADDR, NLM_F_REQUEST, index, address, prefixLen, {});
}

// ---- reply parsing ----

/** Text of the address at b[o..) of an AF_INET / AF_INET6 message. */
export function addrText(b: Buffer, o: number, family: number): string {
  return family === AF_INET ? formatIpv4(b, o) : formatIpv6(b, o);
}

/** Parses an RTM_NEWADDR payload; null for families other than IPv4/IPv6 and entries without an address. */
export function parseAddr(b: Buffer, off: number, end: number): AddrInfo | null {
  const family = b[off];
  if (family !== AF_INET && family !== AF_INET6) return null;
  const n = family === AF_INET ? 4 : 16;
  let local = -1;
  let address = -1;
  let a = off + 8;
  while (a + 4 <= end) {
    const alen = b.readUInt16LE(a);
    if (alen < 4 || a + alen > end) break;
    const t = b.readUInt16LE(a + 2) & NLA_TYPE_MASK;
    if (alen - 4 >= n) {
      if (t === IFA_LOCAL) local = a + 4;
      else if (t === IFA_ADDRESS) address = a + 4;
    }
    a += (alen + 3) & ~3;
  }
  const at = local >= 0 ? local : address;
  if (at < 0) return null;
  return {
    index: b.readUInt32LE(off + 4), family: family === AF_INET ? 4 : 6, address: addrText(b, at, family),
    prefixLen: b[off + 1], scope: b[off + 3],
  };
}

/** All addresses of the socket's netns, optionally of one family (RTM_GETADDR dump). */
export function addresses(s: NetlinkSocket, family?: 4 | 6): AddrInfo[] {
  const af = family === 4 ? AF_INET : family === 6 ? AF_INET6 : AF_UNSPEC;
  return s.dump('addresses', RTM_GETADDR, (w) => w.ifaddrmsg(af, 0, 0, 0, 0), parseAddr);
}
