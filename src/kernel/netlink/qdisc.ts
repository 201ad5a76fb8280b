// Queueing disciplines (tc qdisc): RTM_NEWQDISC / DELQDISC / GETQDISC (tcmsg). Today the clsact qdisc, the hook
// point of ingress/egress filters (filter.ts), optionally bound to shared filter blocks.
import { MODE_ACK, type NetlinkSocket } from './socket.js';
import {
  NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, RTM_DELQDISC, RTM_GETQDISC, RTM_NEWQDISC, TCA_KIND, NlWriter, checkIndex, cstr,
  forEachAttr, invalid,
} from './wire.js';

// linux/rtnetlink.h, linux/pkt_sched.h
export const TCA_INGRESS_BLOCK = 13;
export const TCA_EGRESS_BLOCK = 14;
export const TC_H_CLSACT = 0xfffffff1;
/** Parent of ingress filters on a clsact qdisc: TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS). */
export const TC_INGRESS = 0xfffffff2;

/** One qdisc as the kernel reports it (RTM_NEWQDISC in a dump). */
export interface QdiscInfo {
  index: number;
  parent: number;
  kind: string;
  /** Shared block bound as ingress / egress (clsact), or 0. */
  ingressBlock: number;
  egressBlock: number;
}

/** Parses an RTM_NEWQDISC payload. Exported for tests. */
export function parseQdisc(b: Buffer, off: number, end: number): QdiscInfo | null {
  if (end - off < 20) return null;
  const q: QdiscInfo = { index: b.readInt32LE(off + 4), parent: b.readUInt32LE(off + 12), kind: '', ingressBlock: 0, egressBlock: 0 };
  forEachAttr(b, off + 20, end, (t, s, e) => {
    if (t === TCA_KIND) q.kind = cstr(b, s, e);
    else if (t === TCA_INGRESS_BLOCK && e - s >= 4) q.ingressBlock = b.readUInt32LE(s);
    else if (t === TCA_EGRESS_BLOCK && e - s >= 4) q.egressBlock = b.readUInt32LE(s);
  });
  return q;
}

/** Refuses a shared block index outside 1..0xfffffffe. */
export function checkBlock(op: string, block: number): void {
  if (!Number.isInteger(block) || block < 1 || block > 0xfffffffe) throw invalid(op, `invalid block index ${String(block)}`);
}

/** RTM_NEWQDISC adding a clsact qdisc to the interface, optionally bound to shared filter blocks (its ingress
 *  and/or egress filters are then those of the block); EEXIST if it has one. */
export function encAddClsact(w: NlWriter, index: number, o: { ingressBlock?: number; egressBlock?: number }): void {
  const op = 'addClsact';
  checkIndex(op, index);
  if (o.ingressBlock !== undefined) checkBlock(op, o.ingressBlock);
  if (o.egressBlock !== undefined) checkBlock(op, o.egressBlock);
  w.begin(RTM_NEWQDISC, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL);
  w.tcmsg(index, 0xffff0000, TC_H_CLSACT, 0);
  w.str(TCA_KIND, 'clsact', true);
  if (o.ingressBlock !== undefined) w.u32(TCA_INGRESS_BLOCK, o.ingressBlock);
  if (o.egressBlock !== undefined) w.u32(TCA_EGRESS_BLOCK, o.egressBlock);
  w.end(op, `${op}(${index})`);
}

/** Deletes the interface's clsact qdisc (with its filters). */
export function deleteClsact(s: NetlinkSocket, index: number): void {
  checkIndex('deleteClsact', index);
  const w = s.request();
  w.begin(RTM_DELQDISC, NLM_F_REQUEST);
  w.tcmsg(index, 0xffff0000, TC_H_CLSACT, 0);
  w.end('deleteClsact', `deleteClsact(${index})`);
  s.exec(w, false, MODE_ACK, null);
}

/** Every qdisc of the socket's netns (RTM_GETQDISC dump). */
export function qdiscs(s: NetlinkSocket): QdiscInfo[] {
  return s.dump('qdiscs', RTM_GETQDISC, (w) => w.tcmsg(0, 0, 0, 0), parseQdisc);
}
