// Traffic control (tc) for link impairments, on nsnet's own netlink client (no `tc` process): an htb root qdisc
// whose unclassified traffic is sent directly (htb's direct queue: the unimpaired band), one shaped class for the
// impaired traffic (its rate, and a netem leaf when the kernel has netem), and classic-BPF filters (cls_bpf):
// one that drops with a probability (loss), one that sends matching traffic to the impaired class (--to peers).
//
// Why htb and not prio + tbf: this kernel (6.18, docs/kernel-notes.md) is built without sch_prio and sch_netem,
// and has no cls_flower nor act_gact; htb, tbf, u32 and cls_bpf are there. htb's `default 0` sends every packet
// no filter classifies straight through (never to the shaped class), which is what prio's priomap would have to
// be tuned for. Loss is a classic BPF program returning TC_ACT_SHOT when `ld rand` falls under the threshold, so
// it needs neither netem nor an action module. Delay, jitter, duplication, corruption and reordering need netem
// (its 64-bit latency/jitter attributes are encoded here); without it the kernel answers ENOENT ("Specified qdisc
// kind is unknown") and the engine reports that.
//
// Every object carries nsnet's handle major 0x4e53 ("NS"): the root qdisc 4e53:, the class 4e53:1, the netem
// leaf 4e54:, the filters at priorities 0x4e53/0x4e54 on 4e53:. Wire layouts: linux/pkt_sched.h, pkt_cls.h.
import { NetlinkError, encodeSockFilter, type Netlink, type NlWriter, type SockFilter } from './netlink.js';

const NLM_F_REQUEST = 0x1;
const NLM_F_EXCL = 0x200;
const NLM_F_CREATE = 0x400;
const RTM_NEWQDISC = 36;
const RTM_DELQDISC = 37;
const RTM_GETQDISC = 38;
const RTM_NEWTCLASS = 40;
const RTM_GETTCLASS = 42;
const RTM_NEWTFILTER = 44;
const NLA_TYPE_MASK = 0x3fff;

const TCA_KIND = 1;
const TCA_OPTIONS = 2;
export const TC_H_ROOT = 0xffffffff;

const TCA_HTB_PARMS = 1;
const TCA_HTB_INIT = 2;
const TCA_HTB_DIRECT_QLEN = 5;
const TCA_HTB_RATE64 = 6;
const TCA_HTB_CEIL64 = 7;
const TC_LINKLAYER_ETHERNET = 1;

const TCA_NETEM_CORR = 1;
const TCA_NETEM_REORDER = 3;
const TCA_NETEM_CORRUPT = 4;
const TCA_NETEM_LATENCY64 = 10;
const TCA_NETEM_JITTER64 = 11;

const TCA_BPF_CLASSID = 3;
const TCA_BPF_OPS_LEN = 4;
const TCA_BPF_OPS = 5;
const TCA_BPF_NAME = 7;
const TCA_BPF_FLAGS = 8;
const TCA_BPF_FLAG_ACT_DIRECT = 1;
const ETH_P_ALL_BE = 0x0300;

/** nsnet's handles and priorities (see the file comment). */
export const ROOT_HANDLE = 0x4e530000;
export const CLASS_ID = 0x4e530001;
export const LEAF_HANDLE = 0x4e540000;
export const LOSS_PRIO = 0x4e53;
export const CLASSIFY_PRIO = 0x4e54;

/** One address block of `--to`, as 32-bit numbers (network order values). */
export interface Peer {
  net: number;
  mask: number;
}

/** netem's parameters (only what nsnet sets). Probabilities in [0, 1]. */
export interface NetemParams {
  delayNs: number;
  jitterNs: number;
  duplicate: number;
  corrupt: number;
  reorder: number;
  /** Packets netem may hold (sized for rate × delay by the engine). */
  limit: number;
}

/** What one device of an impaired link gets. */
export interface DevicePlan {
  /** Bits per second of the impaired class, or null (no rate limit). */
  rateBits: number | null;
  /** Bytes the class may send at line rate (tokens), sized for the rate and the MTU/GSO size. */
  burst: number;
  /** Drop probability in [0, 1]. */
  loss: number;
  netem: NetemParams | null;
  /** --to: only traffic to/from these blocks is impaired; [] = all traffic. */
  peers: Peer[];
  /** Offset of the peer's address in the frame: 30 (destination: the container's own egress) or 26 (source: the
   *  host side's egress, towards the container). */
  peerOffset: 26 | 30;
}

/** True when the plan needs the shaped class (a rate or a netem leaf); loss alone is a filter. */
export function needsClass(p: DevicePlan): boolean {
  return p.rateBits !== null || p.netem !== null;
}

// ---- classic BPF programs

type Ins = { code: number; k: number; jt?: string; jf?: string; label?: string } | { label: string };

/** Resolves symbolic forward jumps into a sock_filter program. */
function assemble(ins: Ins[]): SockFilter[] {
  const real = ins.filter((i): i is Exclude<Ins, { label: string }> & { label?: string } => 'code' in i);
  const at = new Map<string, number>();
  let n = 0;
  for (const i of ins) {
    if ('code' in i) n++;
    else at.set(i.label, n);
  }
  return real.map((i, idx) => {
    const off = (l: string | undefined) => {
      if (l === undefined) return 0;
      const t = at.get(l);
      if (t === undefined || t <= idx) throw new Error(`bpf: bad jump to ${l}`);
      const d = t - idx - 1;
      if (d > 255) throw new Error('bpf: jump too far (too many --to peers)');
      return d;
    };
    return { code: i.code, jt: off(i.jt), jf: off(i.jf), k: i.k >>> 0 };
  });
}

const LDH_ABS = 0x28;
const LD_ABS = 0x20;
const JEQ_K = 0x15;
const JGE_K = 0x35;
const JA = 0x05;
const AND_K = 0x54;
const RET_K = 0x06;
/** ld rand: SKF_AD_OFF + SKF_AD_RANDOM. */
const SKF_AD_RANDOM = (0xfffff000 + 56) >>> 0;
const TC_ACT_SHOT = 2;
const TC_ACT_UNSPEC = 0xffffffff;

/** Jumps to `yes` when the frame is IPv4 with the peer address at `offset` in one of `peers`, else to `no`. */
function peerMatch(peers: Peer[], offset: number, yes: string, no: string): Ins[] {
  const out: Ins[] = [{ code: LDH_ABS, k: 12 }, { code: JEQ_K, k: 0x0800, jf: no }];
  peers.forEach((p, i) => {
    const next = i === peers.length - 1 ? no : `peer${i + 1}`;
    out.push({ code: LD_ABS, k: offset }, { code: AND_K, k: p.mask }, { code: JEQ_K, k: p.net & p.mask, jt: yes, jf: next });
    if (i < peers.length - 1) out.push({ label: `peer${i + 1}` });
  });
  return out;
}

/** Drop threshold: `ld rand` (uniform u32) below it drops. */
export function lossThreshold(p: number): number {
  return Math.min(0xffffffff, Math.round(p * 0x100000000));
}

/** Direct-action program: drops with probability `loss` (traffic of the peers only, when given); anything else
 *  goes on to the next filter (TC_ACT_UNSPEC). */
export function lossProgram(loss: number, peers: Peer[], offset: number): SockFilter[] {
  const ins: Ins[] = [];
  if (peers.length) ins.push(...peerMatch(peers, offset, 'rnd', 'pass'), { label: 'rnd' });
  if (loss >= 1) ins.push({ code: JA, k: 0 }); // always: fall into drop (ja 0 keeps the shape)
  else ins.push({ code: LD_ABS, k: SKF_AD_RANDOM }, { code: JGE_K, k: lossThreshold(loss), jt: 'pass' });
  ins.push({ code: RET_K, k: TC_ACT_SHOT }, { label: 'pass' }, { code: RET_K, k: TC_ACT_UNSPEC });
  return assemble(ins);
}

/** Classifier program (not direct-action): -1 = "the filter's class" (TCA_BPF_CLASSID), 0 = no match. */
export function classifyProgram(peers: Peer[], offset: number): SockFilter[] {
  if (!peers.length) return [{ code: RET_K, jt: 0, jf: 0, k: 0xffffffff }];
  return assemble([...peerMatch(peers, offset, 'yes', 'no'), { label: 'yes' }, { code: RET_K, k: 0xffffffff }, { label: 'no' }, { code: RET_K, k: 0 }]);
}

// ---- sizing

/** htb's token bucket: at least one GSO super-packet (veth aggregates up to 64 KiB: a bucket smaller than one skb
 *  lets it through on credit, and the measured rate overshoots) plus an MTU, and at least 10 ms of the rate. */
export function burstFor(rateBits: number, mtu: number): number {
  return Math.max(65536 + mtu + 14, Math.ceil(rateBits / 8 / 100));
}

/** netem's queue must hold what arrives while the first packet waits: rate × (delay + jitter) in packets of the
 *  MTU, with headroom; at least netem's own default (1000), at most 1,000,000. Without a rate, the link's own rate
 *  is unknown (a veth): 10 Gbit/s is assumed. */
export function netemLimit(rateBits: number | null, delayNs: number, jitterNs: number, mtu: number): number {
  const bps = (rateBits ?? 10e9) / 8;
  const held = (bps * (delayNs + jitterNs)) / 1e9 / Math.max(mtu, 68);
  return Math.min(1_000_000, Math.max(1000, Math.ceil(held * 1.5)));
}

// ---- encoding

/** A probability as netem wants it (u32 scaled: 1.0 = 0xffffffff). */
export function prob32(p: number): number {
  return Math.min(0xffffffff, Math.round(p * 0xffffffff)) >>> 0;
}

function ratespec(b: Buffer, o: number, bytesPerSec: number): void {
  b.fill(0, o, o + 12);
  b[o + 1] = TC_LINKLAYER_ETHERNET; // no rate table needed (the kernel computes the transmission time itself)
  b.writeUInt32LE(Math.min(0xffffffff, bytesPerSec) >>> 0, o + 8);
}

function u64(w: NlWriter, type: number, v: number): void {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(Math.round(v)));
  w.bytesAttr(type, b, 0, 8);
}

/** RTM_NEWQDISC htb root 4e53: default 0 (unclassified traffic: htb's direct queue, unshaped). */
export function encHtbRoot(w: NlWriter, index: number): void {
  w.begin(RTM_NEWQDISC, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL);
  w.tcmsg(index, ROOT_HANDLE, TC_H_ROOT, 0);
  w.str(TCA_KIND, 'htb', true);
  const o = w.nestStart(TCA_OPTIONS);
  const g = Buffer.alloc(20);
  g.writeUInt32LE(3, 0); // version
  g.writeUInt32LE(10, 4); // rate2quantum
  g.writeUInt32LE(0, 8); // defcls 0: direct
  w.bytesAttr(TCA_HTB_INIT, g, 0, 20);
  w.u32(TCA_HTB_DIRECT_QLEN, 1000);
  w.nestEnd(o);
  w.end('tcHtbRoot', `tcHtbRoot(${index})`);
}

/** Bits per second given to the class when only netem needs it (no --rate): effectively unshaped. */
export const UNLIMITED_BITS = 100e9;

/** RTM_NEWTCLASS htb 4e53:1 with rate = ceil (64-bit attributes beyond 4 GB/s), burst in bytes. */
export function encHtbClass(w: NlWriter, index: number, rateBits: number, burst: number): void {
  const bytes = Math.max(1, Math.floor(rateBits / 8));
  // buffer/cbuffer: the time the burst takes at the rate, in psched ticks (64 ns: PSCHED_SHIFT 6).
  const ticks = Math.min(0xffffffff, Math.ceil((burst * 1e9) / bytes / 64));
  const p = Buffer.alloc(44);
  ratespec(p, 0, bytes);
  ratespec(p, 12, bytes);
  p.writeUInt32LE(ticks >>> 0, 24);
  p.writeUInt32LE(ticks >>> 0, 28);
  w.begin(RTM_NEWTCLASS, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL);
  w.tcmsg(index, CLASS_ID, ROOT_HANDLE, 0);
  w.str(TCA_KIND, 'htb', true);
  const o = w.nestStart(TCA_OPTIONS);
  w.bytesAttr(TCA_HTB_PARMS, p, 0, 44);
  if (bytes > 0xffffffff) {
    u64(w, TCA_HTB_RATE64, bytes);
    u64(w, TCA_HTB_CEIL64, bytes);
  }
  w.nestEnd(o);
  w.end('tcHtbClass', `tcHtbClass(${index}, ${rateBits} bit/s)`);
}

/** RTM_NEWQDISC netem 4e54: under the class: struct tc_netem_qopt, then attributes (latency/jitter as 64-bit ns). */
export function encNetem(w: NlWriter, index: number, n: NetemParams): void {
  w.begin(RTM_NEWQDISC, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL);
  w.tcmsg(index, LEAF_HANDLE, CLASS_ID, 0);
  w.str(TCA_KIND, 'netem', true);
  const o = w.nestStart(TCA_OPTIONS);
  const q = Buffer.alloc(24);
  q.writeUInt32LE(Math.min(0xffffffff, Math.round(n.delayNs / 64)) >>> 0, 0); // latency, ticks (LATENCY64 wins)
  q.writeUInt32LE(n.limit >>> 0, 4);
  q.writeUInt32LE(0, 8); // loss: cls_bpf does it (also without netem)
  q.writeUInt32LE(n.reorder > 0 ? 1 : 0, 12); // gap: reordering needs one (as tc sets it)
  q.writeUInt32LE(prob32(n.duplicate), 16);
  q.writeUInt32LE(Math.min(0xffffffff, Math.round(n.jitterNs / 64)) >>> 0, 20);
  rawBytes(w, q); // the struct comes first, not as an attribute (netem's parse_attr)
  w.bytesAttr(TCA_NETEM_CORR, Buffer.alloc(12), 0, 12);
  if (n.reorder > 0) {
    const r = Buffer.alloc(8);
    r.writeUInt32LE(prob32(n.reorder), 0);
    w.bytesAttr(TCA_NETEM_REORDER, r, 0, 8);
  }
  if (n.corrupt > 0) {
    const c = Buffer.alloc(8);
    c.writeUInt32LE(prob32(n.corrupt), 0);
    w.bytesAttr(TCA_NETEM_CORRUPT, c, 0, 8);
  }
  u64(w, TCA_NETEM_LATENCY64, n.delayNs);
  u64(w, TCA_NETEM_JITTER64, n.jitterNs);
  w.nestEnd(o);
  w.end('tcNetem', `tcNetem(${index})`);
}

/** Appends raw bytes (a multiple of 4) at the writer's cursor. NlWriter has no raw append: an attribute of the
 *  same total size makes the room (header 4 + payload length-4), then the bytes overwrite it. */
function rawBytes(w: NlWriter, b: Buffer): void {
  const start = w.len;
  w.bytesAttr(0, b, 0, b.length - 4);
  b.copy(w.buf, start);
  w.len = start + b.length;
}

/** RTM_NEWTFILTER cls_bpf on 4e53: (classic BPF). `classid` null: direct action (the program's value is the
 *  verdict); else the program's -1 means that class. */
export function encBpfFilter(w: NlWriter, index: number, prio: number, prog: SockFilter[], classid: number | null): void {
  w.begin(RTM_NEWTFILTER, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL);
  w.tcmsg(index, 1, ROOT_HANDLE, ((prio << 16) | ETH_P_ALL_BE) >>> 0);
  w.str(TCA_KIND, 'bpf', true);
  const o = w.nestStart(TCA_OPTIONS);
  if (classid === null) w.u32(TCA_BPF_FLAGS, TCA_BPF_FLAG_ACT_DIRECT);
  else w.u32(TCA_BPF_CLASSID, classid);
  w.str(TCA_BPF_NAME, prio === LOSS_PRIO ? 'nsnet-netem-loss' : 'nsnet-netem-class', true);
  const ops = encodeSockFilter(prog);
  w.bytesAttr(TCA_BPF_OPS_LEN, new Uint8Array([prog.length & 0xff, prog.length >> 8]), 0, 2);
  w.bytesAttr(TCA_BPF_OPS, ops, 0, ops.length);
  w.nestEnd(o);
  w.end('tcBpfFilter', `tcBpfFilter(${index}, prio ${prio})`);
}

/** RTM_DELQDISC of nsnet's root qdisc (the kernel checks the handle: someone else's root is never deleted). */
export function encDelRoot(w: NlWriter, index: number): void {
  w.begin(RTM_DELQDISC, NLM_F_REQUEST);
  w.tcmsg(index, ROOT_HANDLE, TC_H_ROOT, 0);
  w.end('tcDelRoot', `tcDelRoot(${index})`);
}

/** Every request that builds `p` on a device, in order. */
export function encPlan(w: NlWriter, index: number, p: DevicePlan): void {
  encHtbRoot(w, index);
  if (needsClass(p)) {
    encHtbClass(w, index, p.rateBits ?? UNLIMITED_BITS, p.burst);
    if (p.netem) encNetem(w, index, p.netem);
  }
  if (p.loss > 0) encBpfFilter(w, index, LOSS_PRIO, lossProgram(p.loss, p.peers, p.peerOffset), null);
  if (needsClass(p)) encBpfFilter(w, index, CLASSIFY_PRIO, classifyProgram(p.peers, p.peerOffset), CLASS_ID);
}

// ---- reading back

export interface QdiscEntry {
  index: number;
  handle: number;
  parent: number;
  kind: string;
}

function parseQdiscEntry(b: Buffer, off: number, end: number): QdiscEntry | null {
  if (end - off < 20) return null;
  const q: QdiscEntry = { index: b.readInt32LE(off + 4), handle: b.readUInt32LE(off + 8), parent: b.readUInt32LE(off + 12), kind: '' };
  for (let a = off + 20; a + 4 <= end;) {
    const alen = b.readUInt16LE(a);
    if (alen < 4 || a + alen > end) break;
    if ((b.readUInt16LE(a + 2) & NLA_TYPE_MASK) === TCA_KIND) q.kind = b.toString('utf8', a + 4, a + alen).replace(/\0+$/, '');
    a += (alen + 3) & ~3;
  }
  return q;
}

export interface ClassEntry {
  handle: number;
  kind: string;
  /** htb: bytes per second (RATE64 when present). */
  rateBytes: number | null;
}

function parseClass(b: Buffer, off: number, end: number): ClassEntry | null {
  if (end - off < 20) return null;
  const c: ClassEntry = { handle: b.readUInt32LE(off + 8), kind: '', rateBytes: null };
  let rate64: number | null = null;
  for (let a = off + 20; a + 4 <= end;) {
    const alen = b.readUInt16LE(a);
    if (alen < 4 || a + alen > end) break;
    const t = b.readUInt16LE(a + 2) & NLA_TYPE_MASK;
    if (t === TCA_KIND) c.kind = b.toString('utf8', a + 4, a + alen).replace(/\0+$/, '');
    else if (t === TCA_OPTIONS) {
      for (let n = a + 4; n + 4 <= a + alen;) {
        const nlen = b.readUInt16LE(n);
        if (nlen < 4 || n + nlen > a + alen) break;
        const nt = b.readUInt16LE(n + 2) & NLA_TYPE_MASK;
        if (nt === TCA_HTB_PARMS && nlen >= 4 + 12) c.rateBytes = b.readUInt32LE(n + 4 + 8);
        else if (nt === TCA_HTB_RATE64 && nlen >= 12) rate64 = Number(b.readBigUInt64LE(n + 4));
        n += (nlen + 3) & ~3;
      }
    }
    a += (alen + 3) & ~3;
  }
  if (rate64 !== null) c.rateBytes = rate64;
  return c;
}

/** The qdiscs of one device. */
export function qdiscsOf(nl: Netlink, index: number): QdiscEntry[] {
  return nl.dump('tcQdiscs', RTM_GETQDISC, (w) => w.tcmsg(index, 0, 0, 0), parseQdiscEntry).filter((q) => q.index === index);
}

/** The classes under nsnet's root qdisc of one device ([] without it). */
export function classesOf(nl: Netlink, index: number): ClassEntry[] {
  try {
    return nl.dump('tcClasses', RTM_GETTCLASS, (w) => w.tcmsg(index, 0, ROOT_HANDLE, 0), parseClass).filter((c) => c.handle === CLASS_ID);
  } catch (e) {
    if (e instanceof NetlinkError && (e.code === 'EINVAL' || e.code === 'ENOENT')) return [];
    throw e;
  }
}

/** What nsnet finds of its impairment on a device, in the same shape as `expectedSignature`. */
export function observedSignature(nl: Netlink, index: number): string | null {
  const qs = qdiscsOf(nl, index);
  const root = qs.find((q) => q.parent === TC_H_ROOT);
  if (!root || root.handle !== ROOT_HANDLE || root.kind !== 'htb') return null;
  const cls = classesOf(nl, index)[0];
  const leaf = qs.find((q) => q.parent === CLASS_ID);
  const filters = nl.filters({ index, parent: ROOT_HANDLE }).filter((f) => f.kind === 'bpf' && f.ops !== null)
    .map((f) => `${f.prio}:${f.directAction ? 'da' : 'cl'}:${f.ops!.toString('hex')}`).sort();
  return JSON.stringify({ rate: cls ? cls.rateBytes : null, leaf: leaf?.kind === 'netem' ? 'netem' : null, filters });
}

/** The signature a device carrying `p` shows (observedSignature). */
export function expectedSignature(p: DevicePlan): string {
  const filters: string[] = [];
  if (p.loss > 0) filters.push(`${LOSS_PRIO}:da:${encodeSockFilter(lossProgram(p.loss, p.peers, p.peerOffset)).toString('hex')}`);
  if (needsClass(p)) filters.push(`${CLASSIFY_PRIO}:cl:${encodeSockFilter(classifyProgram(p.peers, p.peerOffset)).toString('hex')}`);
  // The kernel reports the rate as u32 below 4 GB/s and as TCA_HTB_RATE64 from there: the same number either way.
  const rate = needsClass(p) ? Math.max(1, Math.floor((p.rateBits ?? UNLIMITED_BITS) / 8)) : null;
  return JSON.stringify({ rate, leaf: p.netem ? 'netem' : null, filters: filters.sort() });
}

/** True when the device's root qdisc is nsnet's. */
export function hasOurRoot(nl: Netlink, index: number): boolean {
  return qdiscsOf(nl, index).some((q) => q.parent === TC_H_ROOT && q.handle === ROOT_HANDLE);
}

/** Removes nsnet's impairment from a device (its classes, leaf and filters go with the root); false when there
 *  was none. */
export function removeImpairment(nl: Netlink, index: number): boolean {
  if (!hasOurRoot(nl, index)) return false;
  try {
    nl.batch((b) => encDelRoot(b.w, index));
  } catch (e) {
    if (e instanceof NetlinkError && (e.code === 'ENOENT' || e.code === 'EINVAL' || e.code === 'ENODEV')) return false;
    throw e;
  }
  return true;
}

/** Puts `p` on a device, replacing nsnet's previous impairment there (in one send). On failure nothing of nsnet's
 *  is left on the device, and the error is thrown. A root qdisc of someone else's: EEXIST. */
export function applyImpairment(nl: Netlink, index: number, p: DevicePlan): void {
  removeImpairment(nl, index);
  try {
    nl.batch((b) => encPlan(b.w, index, p));
  } catch (e) {
    try { removeImpairment(nl, index); } catch { /* reported below */ }
    throw e;
  }
}

// ---- the delay line's redirect (src/kernel/delayline.ts): clsact egress -> mirred -> tap

/** Parent of egress filters on a clsact qdisc: TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_EGRESS). */
export const TC_EGRESS = 0xfffffff3;
export const REDIRECT_PRIO = 0x4e55;
/** SO_MARK of the frames the delay line sends again: the redirect filter lets them pass. */
export const DELAY_MARK = 0x4e530001;
const SKF_AD_MARK = (0xfffff000 + 20) >>> 0;
const TCA_BPF_ACT = 1;
const TCA_ACT_KIND = 1;
const TCA_ACT_OPTIONS = 2;
const TCA_MIRRED_PARMS = 2;
const TC_ACT_STOLEN = 4;
const TCA_EGRESS_REDIR = 1;

/** Classifier program of the redirect: frames we sent again (our mark) never match; otherwise the peers (or all). */
export function redirectProgram(peers: Peer[], offset: number): SockFilter[] {
  const head: Ins[] = [{ code: LD_ABS, k: SKF_AD_MARK }, { code: JEQ_K, k: DELAY_MARK, jt: 'no' }];
  if (!peers.length) return assemble([...head, { code: RET_K, k: 0xffffffff }, { label: 'no' }, { code: RET_K, k: 0 }]);
  return assemble([...head, ...peerMatch(peers, offset, 'yes', 'no'), { label: 'yes' }, { code: RET_K, k: 0xffffffff }, { label: 'no' }, { code: RET_K, k: 0 }]);
}

/** RTM_NEWTFILTER on the clsact egress of `index`: cls_bpf with an act_mirred egress redirect to `tapIndex`. */
export function encRedirectFilter(w: NlWriter, index: number, prog: SockFilter[], tapIndex: number): void {
  w.begin(RTM_NEWTFILTER, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL);
  w.tcmsg(index, 1, TC_EGRESS, ((REDIRECT_PRIO << 16) | ETH_P_ALL_BE) >>> 0);
  w.str(TCA_KIND, 'bpf', true);
  const o = w.nestStart(TCA_OPTIONS);
  const ops = encodeSockFilter(prog);
  w.bytesAttr(TCA_BPF_OPS_LEN, new Uint8Array([prog.length & 0xff, prog.length >> 8]), 0, 2);
  w.bytesAttr(TCA_BPF_OPS, ops, 0, ops.length);
  w.str(TCA_BPF_NAME, 'nsnet-netem-delay', true);
  const acts = w.nestStart(TCA_BPF_ACT);
  const a1 = w.nestStart(1);
  w.str(TCA_ACT_KIND, 'mirred', true);
  const ao = w.nestStart(TCA_ACT_OPTIONS);
  const m = Buffer.alloc(28);
  m.writeInt32LE(TC_ACT_STOLEN, 8); // tc_gen.action
  m.writeInt32LE(TCA_EGRESS_REDIR, 20); // eaction
  m.writeUInt32LE(tapIndex, 24);
  w.bytesAttr(TCA_MIRRED_PARMS, m, 0, 28);
  w.nestEnd(ao);
  w.nestEnd(a1);
  w.nestEnd(acts);
  w.nestEnd(o);
  w.end('tcRedirect', `tcRedirect(${index} -> ${tapIndex})`);
}

/** True when the device's clsact egress has nsnet's redirect filter. */
export function hasRedirect(nl: Netlink, index: number): boolean {
  return nl.filters({ index, parent: TC_EGRESS }).some((f) => f.prio === REDIRECT_PRIO && f.kind === 'bpf');
}

/** Points the device's egress at the tap (a clsact is added when the device has none: the container side). */
export function addRedirect(nl: Netlink, index: number, p: DevicePlan, tapIndex: number): void {
  if (!qdiscsOf(nl, index).some((q) => q.kind === 'clsact')) nl.addClsact(index);
  removeRedirect(nl, index);
  nl.batch((b) => encRedirectFilter(b.w, index, redirectProgram(p.peers, p.peerOffset), tapIndex));
}

/** Removes the redirect filter (false when there was none). */
export function removeRedirect(nl: Netlink, index: number): boolean {
  if (!hasRedirect(nl, index)) return false;
  try {
    nl.deleteFilter({ index, parent: TC_EGRESS }, REDIRECT_PRIO, ETH_P_ALL_BE);
  } catch (e) {
    if (e instanceof NetlinkError && (e.code === 'ENOENT' || e.code === 'EINVAL' || e.code === 'ENODEV')) return false;
    throw e;
  }
  return true;
}
