// nftables trace events over netlink (what `nft monitor trace` reads, without running nft): a NETLINK_NETFILTER
// socket joined to the NFNLGRP_NFTRACE group of the netns it is created in. The kernel sends one NFT_MSG_TRACE
// message per rule, chain return and policy a packet with `meta nftrace set 1` meets in any table's base chains
// (and the chains they jump to) of that netns.
import {
  AF_NETLINK, SOCK_CLOEXEC, SOCK_RAW, SOL_NETLINK, SOL_SOCKET, SysError, bind, close, pollOne, recv, setsockoptInt, socket,
} from './libc.js';

export const NETLINK_NETFILTER = 12;
export const NFNLGRP_NFTRACE = 9;
const NETLINK_ADD_MEMBERSHIP = 1;
const NFNL_SUBSYS_NFTABLES = 10;
const NFT_MSG_TRACE = 17;
const MSG_DONTWAIT = 0x40;
const SO_RCVBUF = 8;
const POLLIN = 1;

const A = { TABLE: 1, CHAIN: 2, RULE_HANDLE: 3, TYPE: 4, VERDICT: 5, ID: 6, IIF: 10, OIF: 12, NFPROTO: 15, POLICY: 16 } as const;
const VERDICT_CODE = 1;
const VERDICT_CHAIN = 2;

/** NFPROTO_* numbers (the family of a table, and the protocol a hook processed). */
export const NFPROTO: Record<number, string> = { 1: 'inet', 2: 'ip', 3: 'arp', 5: 'netdev', 7: 'bridge', 10: 'ip6' };

/** Netfilter and nf_tables verdict codes. */
export function verdictName(code: number): string {
  switch (code) {
    case 0: return 'drop';
    case 1: return 'accept';
    case 2: return 'stolen';
    case 3: return 'queue';
    case 4: return 'repeat';
    case -1: return 'continue';
    case -2: return 'break';
    case -3: return 'jump';
    case -4: return 'goto';
    case -5: return 'return';
    default: return `verdict ${code}`;
  }
}

/** One trace event. */
export interface TraceEvent {
  /** Same for every event of one packet. */
  id: number;
  type: 'rule' | 'return' | 'policy' | 'unspec';
  /** The table's family (`inet`, `bridge`, `ip`, ...). */
  family: string;
  table: string;
  chain: string;
  /** The rule's handle (type rule). */
  handle?: number;
  /** Rule events: the rule's verdict (`accept`, `drop`, `continue`, `jump`, `return`, ...); return events too. */
  verdict?: string;
  /** Jump/goto target. */
  target?: string;
  /** Policy events: the chain's policy. */
  policy?: string;
  iif?: number;
  oif?: number;
  /** The protocol the hook processed (`ip`, `bridge`, ...). */
  nfproto?: string;
}

/** PURE: the trace events in one buffer of netlink messages (anything else is skipped). */
export function parseTraceMessages(buf: Buffer, len = buf.length): TraceEvent[] {
  const out: TraceEvent[] = [];
  let off = 0;
  while (off + 16 <= len) {
    const mlen = buf.readUInt32LE(off);
    if (mlen < 16 || off + mlen > len) break;
    const type = buf.readUInt16LE(off + 4);
    if (type === ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_TRACE) && mlen >= 20) {
      const family = NFPROTO[buf.readUInt8(off + 16)] ?? String(buf.readUInt8(off + 16));
      const ev: TraceEvent = { id: 0, type: 'unspec', family, table: '', chain: '' };
      for (const [t, s, e] of attrs(buf, off + 20, off + mlen)) {
        switch (t) {
          case A.TABLE: ev.table = str(buf, s, e); break;
          case A.CHAIN: ev.chain = str(buf, s, e); break;
          case A.RULE_HANDLE: if (e - s >= 8) ev.handle = Number(buf.readBigUInt64BE(s)); break;
          case A.TYPE: if (e - s >= 4) ev.type = (['unspec', 'policy', 'return', 'rule'] as const)[buf.readUInt32BE(s)] ?? 'unspec'; break;
          case A.ID: if (e - s >= 4) ev.id = buf.readUInt32BE(s); break;
          case A.IIF: if (e - s >= 4) ev.iif = buf.readUInt32BE(s); break;
          case A.OIF: if (e - s >= 4) ev.oif = buf.readUInt32BE(s); break;
          case A.NFPROTO: if (e - s >= 4) ev.nfproto = NFPROTO[buf.readUInt32BE(s)] ?? String(buf.readUInt32BE(s)); break;
          case A.POLICY: if (e - s >= 4) ev.policy = verdictName(buf.readInt32BE(s)); break;
          case A.VERDICT:
            for (const [vt, vs, ve] of attrs(buf, s, e)) {
              if (vt === VERDICT_CODE && ve - vs >= 4) ev.verdict = verdictName(buf.readInt32BE(vs));
              if (vt === VERDICT_CHAIN) ev.target = str(buf, vs, ve);
            }
            break;
          default: break;
        }
      }
      out.push(ev);
    }
    off += (mlen + 3) & ~3;
  }
  return out;
}

function* attrs(b: Buffer, start: number, end: number): Generator<[number, number, number]> {
  let o = start;
  while (o + 4 <= end) {
    const l = b.readUInt16LE(o);
    if (l < 4 || o + l > end) return;
    yield [b.readUInt16LE(o + 2) & 0x3fff, o + 4, o + l];
    o += (l + 3) & ~3;
  }
}

function str(b: Buffer, s: number, e: number): string {
  const z = b.indexOf(0, s);
  return b.toString('utf8', s, z >= 0 && z < e ? z : e);
}

/** A subscription to the trace events of the netns this is opened in. */
export class TraceSocket {
  private fd: number;
  private buf = Buffer.alloc(256 * 1024);
  private constructor(fd: number) {
    this.fd = fd;
  }

  /** Opens and subscribes in the CURRENT netns (call inside the host netns). */
  static open(): TraceSocket {
    const fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
    try {
      try { setsockoptInt(fd, SOL_SOCKET, SO_RCVBUF, 4 * 1024 * 1024); } catch { /* the default then */ }
      const sa = Buffer.alloc(12);
      sa.writeUInt16LE(AF_NETLINK, 0);
      bind(fd, sa);
      setsockoptInt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, NFNLGRP_NFTRACE);
    } catch (e) {
      close(fd);
      throw e;
    }
    return new TraceSocket(fd);
  }

  /** The events that arrived within `timeoutMs` (returns early once something arrived and the socket is drained). */
  read(timeoutMs: number): TraceEvent[] {
    const out: TraceEvent[] = [];
    if (!pollOne(this.fd, POLLIN, timeoutMs)) return out;
    for (;;) {
      let n: number;
      try {
        n = recv(this.fd, this.buf, MSG_DONTWAIT);
      } catch (e) {
        if (e instanceof SysError && (e.code === 'EAGAIN' || e.code === 'EWOULDBLOCK')) break;
        if (e instanceof SysError && e.code === 'ENOBUFS') continue; // some events were lost: the rest still count
        throw e;
      }
      if (n <= 0) break;
      out.push(...parseTraceMessages(this.buf, n));
    }
    return out;
  }

  close(): void {
    if (this.fd >= 0) close(this.fd);
    this.fd = -1;
  }
}
