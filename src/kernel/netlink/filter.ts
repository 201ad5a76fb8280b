// Traffic-control filters (tc filter): RTM_NEWTFILTER / DELTFILTER / GETTFILTER (tcmsg). Today classic-BPF
// cls_bpf filters in direct-action mode, on an interface's clsact qdisc (qdisc.ts) or in a shared block: guards
// that must not depend on nftables (which `nft flush ruleset` empties).
import { MODE_ACK, type NetlinkSocket } from './socket.js';
import {
  NLA_F_NESTED, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, RTM_DELTFILTER, RTM_GETTFILTER, RTM_NEWTFILTER, TCA_KIND, TCA_OPTIONS,
  NetlinkError, NlWriter, checkIndex, cstr, forEachAttr, invalid,
} from './wire.js';
import { checkBlock } from './qdisc.js';

// linux/pkt_cls.h
export const TCA_BPF_OPS_LEN = 4;
export const TCA_BPF_OPS = 5;
export const TCA_BPF_NAME = 7;
export const TCA_BPF_FLAGS = 8;
/** The program's return value is the action (TC_ACT_SHOT, ...): no separate action module (act_gact) needed. */
export const TCA_BPF_FLAG_ACT_DIRECT = 1;
/** tcm_ifindex that makes tcm_parent a shared block's index (TCM_IFINDEX_MAGIC_BLOCK). */
export const TCM_IFINDEX_MAGIC_BLOCK = 0xffffffff;

/** One classic BPF instruction (struct sock_filter). */
export interface SockFilter {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

/** A cls_bpf filter as the kernel reports it (RTM_NEWTFILTER in a dump). */
export interface TcFilterInfo {
  /** tcm_info >> 16. */
  prio: number;
  /** tcm_info & 0xffff: the protocol in network byte order, as the kernel keeps it. */
  protocolBe: number;
  handle: number;
  kind: string;
  name: string | null;
  /** The classic BPF program, encoded as the kernel returns it (TCA_BPF_OPS), or null. */
  ops: Buffer | null;
  directAction: boolean;
}

/** Where a tc filter lives: on one interface (under `parent`, e.g. TC_INGRESS), or in a shared block. */
export type TcTarget = { index: number; parent: number } | { block: number };

/** A cls_bpf filter to add. `protocolBe`: its protocol in network byte order (0x0300 = ETH_P_ALL). */
export interface BpfFilterSpec {
  prio: number;
  protocolBe: number;
  handle: number;
  name: string;
  prog: SockFilter[];
  replace?: boolean;
}

/** struct sock_filter[] as bytes (8 each, host byte order). */
export function encodeSockFilter(prog: SockFilter[]): Buffer {
  const b = Buffer.alloc(prog.length * 8);
  prog.forEach((x, i) => {
    b.writeUInt16LE(x.code, i * 8);
    b[i * 8 + 2] = x.jt;
    b[i * 8 + 3] = x.jf;
    b.writeUInt32LE(x.k >>> 0, i * 8 + 4);
  });
  return b;
}

/** tcmsg ifindex/parent for a target. */
export function tcWhere(op: string, t: TcTarget): [number, number] {
  if ('block' in t) {
    checkBlock(op, t.block);
    return [TCM_IFINDEX_MAGIC_BLOCK, t.block];
  }
  checkIndex(op, t.index);
  return [t.index, t.parent];
}

/**
 * RTM_NEWTFILTER adding (or, with `replace`, replacing) a classic-BPF cls_bpf filter in direct-action mode: the
 * program's return value is the verdict (0 TC_ACT_OK, 2 TC_ACT_SHOT, -1 TC_ACT_UNSPEC = go on with the next filter).
 */
export function encAddBpfFilter(w: NlWriter, target: TcTarget, f: BpfFilterSpec): void {
  const op = 'addBpfFilter';
  const [index, parent] = tcWhere(op, target);
  if (!Number.isInteger(f.prio) || f.prio < 1 || f.prio > 0xffff) throw invalid(op, `invalid priority ${String(f.prio)}`);
  if (!f.prog.length || f.prog.length > 4096) throw invalid(op, `invalid program length ${f.prog.length}`);
  w.begin(RTM_NEWTFILTER, NLM_F_REQUEST | NLM_F_CREATE | (f.replace ? 0 : NLM_F_EXCL));
  w.tcmsg(index, f.handle, parent, ((f.prio << 16) | (f.protocolBe & 0xffff)) >>> 0);
  w.str(TCA_KIND, 'bpf', true);
  const o = w.nestStart(TCA_OPTIONS | NLA_F_NESTED);
  w.u32(TCA_BPF_FLAGS, TCA_BPF_FLAG_ACT_DIRECT);
  w.str(TCA_BPF_NAME, f.name, true);
  const ops = encodeSockFilter(f.prog);
  w.bytesAttr(TCA_BPF_OPS_LEN, new Uint8Array([f.prog.length & 0xff, f.prog.length >> 8]), 0, 2);
  w.bytesAttr(TCA_BPF_OPS, ops, 0, ops.length);
  w.nestEnd(o);
  w.end(op, `${op}(${'block' in target ? `block ${target.block}` : target.index}, prio ${f.prio}, ${f.name})`);
}

/** Deletes the filter at `prio` (all handles of it). */
export function deleteFilter(s: NetlinkSocket, target: TcTarget, prio: number, protocolBe: number): void {
  const [index, parent] = tcWhere('deleteFilter', target);
  const w = s.request();
  w.begin(RTM_DELTFILTER, NLM_F_REQUEST);
  w.tcmsg(index, 0, parent, ((prio << 16) | (protocolBe & 0xffff)) >>> 0);
  w.end('deleteFilter', `deleteFilter(${index}, prio ${prio})`);
  s.exec(w, false, MODE_ACK, null);
}

/** Parses an RTM_NEWTFILTER payload (tcmsg + attributes). Exported for tests. */
export function parseTcFilter(b: Buffer, off: number, end: number): TcFilterInfo | null {
  if (end - off < 20) return null;
  const handle = b.readUInt32LE(off + 8);
  const info = b.readUInt32LE(off + 16);
  let kind = '';
  let name: string | null = null;
  let ops: Buffer | null = null;
  let flags = 0;
  forEachAttr(b, off + 20, end, (t, s, e) => {
    if (t === TCA_KIND) kind = cstr(b, s, e);
    else if (t === TCA_OPTIONS) {
      forEachAttr(b, s, e, (nt, ns, ne) => {
        if (nt === TCA_BPF_NAME) name = cstr(b, ns, ne);
        else if (nt === TCA_BPF_OPS) ops = Buffer.from(b.subarray(ns, ne));
        else if (nt === TCA_BPF_FLAGS && ne - ns >= 4) flags = b.readUInt32LE(ns);
      });
    }
  });
  return { prio: info >>> 16, protocolBe: info & 0xffff, handle, kind, name, ops, directAction: (flags & TCA_BPF_FLAG_ACT_DIRECT) !== 0 };
}

/** Filters of an interface's `parent`, or of a shared block (RTM_GETTFILTER dump); [] when there is no such
 *  qdisc or block. */
export function filters(s: NetlinkSocket, target: TcTarget): TcFilterInfo[] {
  const [index, parent] = tcWhere('filters', target);
  try {
    return s.dump('filters', RTM_GETTFILTER, (w) => w.tcmsg(index, 0, parent, 0), parseTcFilter).filter((f) => f.kind !== '');
  } catch (e) {
    // No clsact qdisc: the kernel answers EINVAL ("Cannot find specified qdisc") or ENOENT.
    if (e instanceof NetlinkError && (e.code === 'EINVAL' || e.code === 'ENOENT')) return [];
    throw e;
  }
}
