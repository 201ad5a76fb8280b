// PURE: the parts of `nsnet explain --trace` that need no kernel: the script that adds (and the one that removes)
// the trace rule, and the comparison of the kernel's trace events with the prediction.
import { NAMES, findChain, findTable, type FirewallModel, type TableFamily } from '../firewall/model.js';
import { renderRule } from '../firewall/render.js';
import type { TraceEvent } from '../kernel/nftrace.js';
import type { ProbeOutcome } from '../kernel/probe.js';
import type { Explanation } from './plan.js';

/** The probe's 5-tuple as the trace rule matches it. */
export interface TraceMatch {
  hook: 'prerouting' | 'output';
  saddr?: string;
  daddr: string;
  proto: 'tcp' | 'udp' | 'icmp';
  sport?: number;
  dport?: number;
  icmpId?: number;
}

const TRACE_COMMENT = 'nsnet explain --trace: marks one probe packet, removed right after';

function matchText(m: TraceMatch): string {
  const parts: string[] = [];
  if (m.saddr) parts.push(`ip saddr ${m.saddr}`);
  parts.push(`ip daddr ${m.daddr}`);
  if (m.proto === 'icmp') {
    parts.push('icmp type echo-request');
    if (m.icmpId !== undefined) parts.push(`icmp id ${m.icmpId}`);
  } else {
    parts.push(`meta l4proto ${m.proto}`);
    if (m.sport !== undefined) parts.push(`th sport ${m.sport}`);
    if (m.dport !== undefined) parts.push(`th dport ${m.dport}`);
    if (m.proto === 'tcp') parts.push('tcp flags & (syn | ack) == syn');
  }
  return parts.join(' ');
}

const isAddr = (s: string | undefined) => s === undefined || /^\d{1,3}(\.\d{1,3}){3}$/.test(s);
const isNum = (n: number | undefined) => n === undefined || (Number.isInteger(n) && n >= 0 && n <= 65535);

/** The script adding the trace chain and its one rule: in `table inet nsnet` on the probe's hook, before the
 *  loopback guard (priority raw - 1), and, when `bridgeTable`, in `table bridge nsnet`'s prerouting too (traffic
 *  within one bridge without br_netfilter passes only the bridge family's hooks). One transaction. */
export function traceScript(m: TraceMatch, bridgeTable: boolean): string {
  if (!isAddr(m.saddr) || !isAddr(m.daddr) || !isNum(m.sport) || !isNum(m.dport) || !isNum(m.icmpId)) throw new Error('traceScript: invalid probe tuple');
  const rule = `${matchText(m)} meta nftrace set 1 comment "${TRACE_COMMENT}"`;
  const L = [
    `table inet ${NAMES.table} {`,
    `\tchain ${NAMES.trace.chain} {`,
    `\t\ttype filter hook ${m.hook} priority -301; policy accept;`,
    `\t\t${rule}`,
    '\t}',
    '}',
  ];
  if (bridgeTable && m.hook === 'prerouting') {
    L.push(`table bridge ${NAMES.table} {`, `\tchain ${NAMES.trace.chain} {`, '\t\ttype filter hook prerouting priority -201; policy accept;', `\t\t${rule}`, '\t}', '}');
  }
  return L.join('\n') + '\n';
}

/** The script removing the trace chains that exist (`inet` and/or `bridge`). */
export function untraceScript(families: Array<'inet' | 'bridge'>): string {
  return families.map((f) => `delete chain ${f} ${NAMES.table} ${NAMES.trace.chain}\n`).join('');
}

/** Where each rule handle of the traced chains is: `family table chain` -> handle -> 0-based position. */
export type RuleIndex = Map<string, Map<number, number>>;

/** One chain as the kernel's trace shows the packet going through it. */
export interface TracedChain {
  table: string;
  chain: string;
  /** 0 for a base chain, 1.. for a chain jumped to. */
  depth: number;
  outcome: 'accept' | 'drop' | 'return' | 'end' | 'jump' | 'policy-accept' | 'policy-drop' | 'continue';
  /** Position of the deciding rule in its chain, and its handle. */
  rule?: number;
  handle?: number;
  /** Its nft text, for nsnet's own tables. */
  text?: string;
}

export interface TraceReport {
  /** The packet's trace id (the first traced packet). */
  id?: number;
  chains: TracedChain[];
  probe: { outcome: ProbeOutcome | 'not-sent'; detail?: string };
  /** What the kernel did: from the trace (a drop) and the probe's answer. */
  verdict: 'delivered' | 'dropped' | 'unknown';
  /** One line per disagreement with the prediction (empty: they agree). */
  differences: string[];
  notes: string[];
}

/** PURE: the events of the first traced packet, chain by chain. */
export function tracedChains(events: TraceEvent[], index: RuleIndex, model?: FirewallModel): { id?: number; chains: TracedChain[] } {
  const mine = events.filter((e) => !(e.table === NAMES.table && e.chain === NAMES.trace.chain));
  const id = events[0]?.id;
  const evs = mine.filter((e) => e.id === id);
  const chains: TracedChain[] = [];
  let stack: number[] = [];
  let pendingJump: string | undefined;
  const ruleText = (fam: string, table: string, chain: string, i: number | undefined) => {
    if (i === undefined || table !== NAMES.table || !model) return undefined;
    const r = findChain(findTable(model, fam as TableFamily), chain)?.rules[i];
    return r ? renderRule(r) : undefined;
  };
  for (const e of evs) {
    const table = `${e.family} ${e.table}`;
    let top = stack.length ? chains[stack[stack.length - 1]] : undefined;
    if (!top || top.table !== table || top.chain !== e.chain) {
      const back = stack.findIndex((i) => chains[i].table === table && chains[i].chain === e.chain);
      if (pendingJump === e.chain && top && top.table === table) {
        chains.push({ table, chain: e.chain, depth: stack.length, outcome: 'continue' });
        stack.push(chains.length - 1);
      } else if (back >= 0) {
        stack = stack.slice(0, back + 1);
      } else {
        chains.push({ table, chain: e.chain, depth: 0, outcome: 'continue' });
        stack = [chains.length - 1];
      }
      top = chains[stack[stack.length - 1]];
    }
    pendingJump = undefined;
    const pos = e.handle !== undefined ? index.get(`${table} ${e.chain}`)?.get(e.handle) : undefined;
    const setRule = (c: TracedChain) => {
      if (pos !== undefined) c.rule = pos;
      if (e.handle !== undefined) c.handle = e.handle;
      const t = ruleText(e.family, e.table, e.chain, pos);
      if (t) c.text = t;
    };
    if (e.type === 'policy') {
      top.outcome = e.policy === 'drop' ? 'policy-drop' : 'policy-accept';
      stack = [];
    } else if (e.type === 'return') {
      top.outcome = 'end';
      stack.pop();
    } else if (e.type === 'rule') {
      const v = e.verdict ?? 'continue';
      if (v === 'jump' || v === 'goto') {
        top.outcome = 'jump';
        setRule(top);
        pendingJump = e.target;
      } else if (v === 'accept' || v === 'drop') {
        top.outcome = v;
        setRule(top);
        for (const i of stack) if (chains[i] !== top) chains[i].outcome = v;
        stack = [];
      } else if (v === 'return') {
        top.outcome = 'return';
        setRule(top);
        stack.pop();
      }
    }
  }
  return { ...(id !== undefined ? { id } : {}), chains };
}

const norm = (o: string): 'accept' | 'drop' => (o === 'drop' || o === 'policy-drop' ? 'drop' : 'accept');

/** PURE: the kernel's trace and the probe's answer against the prediction. */
export function compareTrace(e: Explanation, events: TraceEvent[], index: RuleIndex, probe: TraceReport['probe'], model?: FirewallModel): TraceReport {
  const { id, chains } = tracedChains(events, index, model);
  const notes: string[] = [];
  const differences: string[] = [];
  const drop = chains.find((c) => c.depth === 0 && norm(c.outcome) === 'drop' && c.outcome !== 'continue');
  let verdict: TraceReport['verdict'];
  if (drop) verdict = 'dropped';
  else if (probe.outcome === 'connected' || probe.outcome === 'refused' || probe.outcome === 'reply') verdict = 'delivered';
  else if (probe.outcome === 'unreachable') verdict = 'dropped';
  else if (probe.outcome === 'timeout' && e.query.proto === 'udp') {
    verdict = 'unknown';
    notes.push('no answer to the UDP datagram: UDP does not say whether it arrived (the trace shows what the host did with it)');
  } else verdict = probe.outcome === 'not-sent' ? 'unknown' : 'dropped';
  if (verdict === 'delivered' && probe.outcome === 'refused') notes.push(`it arrived: the destination refused it (${probe.detail ?? 'nothing listens'})`);
  if (verdict === 'dropped' && !drop && probe.outcome === 'timeout') notes.push('no rule dropped it, and nothing came back: dropped outside nftables (bridge port isolation, no such address, a route) or by the destination');

  // Base chains in order, each with its final verdict.
  const want = e.chains.filter((c) => (c.depth ?? 0) === 0).map((c) => ({ key: `${c.table} ${c.chain}`, v: norm(c.outcome), rule: c.rule }));
  const got = chains.filter((c) => c.depth === 0).map((c) => ({ key: `${c.table} ${c.chain}`, v: norm(c.outcome), rule: c.rule }));
  if (e.probe?.hostHook !== 'none' && probe.outcome !== 'not-sent') {
    if (!got.length && want.length) differences.push(`the kernel traced no chain at all, nsnet predicted ${want.length} (${want.map((w) => w.key).join(', ')}): the packet never reached the host's hooks, or the trace rule was removed meanwhile`);
    for (let i = 0; i < Math.max(want.length, got.length) && got.length; i++) {
      const w = want[i];
      const g = got[i];
      if (!g) { differences.push(`predicted ${w.key} (${w.v}), the kernel's trace ends before it`); break; }
      if (!w) {
        const foreign = !g.key.endsWith(` ${NAMES.table}`);
        differences.push(`the kernel also ran ${g.key} (${g.v})${foreign ? ': another table, which nsnet does not model (nsnet check reports drop-policy chains of other tables)' : ''}`);
        continue;
      }
      if (w.key !== g.key) { differences.push(`predicted ${w.key} next, the kernel ran ${g.key} (${g.v})${g.key.endsWith(` ${NAMES.table}`) ? '' : ': another table, which nsnet does not model'}`); break; }
      if (w.v !== g.v) differences.push(`${w.key}: predicted ${w.v}${w.rule !== undefined ? ` by rule #${w.rule}` : ''}, the kernel: ${g.v}${g.rule !== undefined ? ` by rule #${g.rule}` : ''}`);
      else if (w.v === 'drop' && w.rule !== undefined && g.rule !== undefined && w.rule !== g.rule) differences.push(`${w.key}: predicted a drop by rule #${w.rule}, the kernel dropped it by rule #${g.rule}`);
    }
  }
  if (verdict !== 'unknown' && verdict !== e.verdict) differences.push(`predicted ${e.verdict.toUpperCase()}, the kernel: ${verdict.toUpperCase()} (probe: ${probe.outcome}${probe.detail ? `, ${probe.detail}` : ''})`);
  return { ...(id !== undefined ? { id } : {}), chains, probe, verdict, differences, notes };
}

/** The trace for people: next to the prediction, differences loudly. */
export function formatTrace(r: TraceReport): string {
  const L: string[] = [];
  L.push(`trace (what the kernel did${r.id !== undefined ? `, packet ${r.id.toString(16)}` : ''}):`);
  if (!r.chains.length) L.push('  (no nftables chain traced)');
  for (const c of r.chains) {
    const how = c.outcome === 'policy-accept' ? 'policy accept' : c.outcome === 'policy-drop' ? 'policy drop' : c.outcome === 'end' ? 'no rule matched: back to the calling chain' : c.outcome;
    L.push(`  ${'  '.repeat(c.depth)}${c.table} ${c.chain}: ${how}${c.rule !== undefined ? ` by rule #${c.rule}` : c.handle !== undefined ? ` by rule handle ${c.handle}` : ''}${c.text ? ` \`${c.text}\`` : ''}`);
  }
  L.push(`  probe: ${r.probe.outcome}${r.probe.detail ? ` (${r.probe.detail})` : ''}`);
  L.push(`trace verdict: ${r.verdict.toUpperCase()}`);
  for (const n of r.notes) L.push(`  note: ${n}`);
  if (r.differences.length) {
    L.push('!!! THE KERNEL DISAGREES WITH THE PREDICTION !!!');
    for (const d of r.differences) L.push(`!!! ${d}`);
    L.push('!!! (a bug in nsnet\'s model, or a rule nsnet does not know: another table, a changed kernel object; see nsnet check)');
  } else {
    L.push('the kernel agrees with the prediction');
  }
  return L.join('\n') + '\n';
}
