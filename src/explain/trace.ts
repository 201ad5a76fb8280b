// PURE: the parts of `nsnet explain --trace` that need no kernel: the script that adds (and the one that removes)
// the trace rule, and the comparison of the kernel's trace events with the prediction.
import { NAMES, findChain, findTable, type FirewallModel, type TableFamily } from '../firewall/model.js';
import { renderRule } from '../firewall/render.js';
import type { TraceEvent } from '../kernel/nftrace.js';
import type { ProbeOutcome } from '../kernel/probe.js';
import type { Explanation } from './plan.js';

/** The probe as the trace rules match it. `origin`: from a container (enters the host on a bridge) or sent by the
 *  host itself. */
export interface TraceMatch {
  origin: 'container' | 'host';
  saddr?: string;
  daddr: string;
  proto: 'tcp' | 'udp' | 'icmp';
  sport?: number;
  dport?: number;
  icmpId?: number;
}

const TRACE_COMMENT = 'nsnet explain --trace: marks one probe packet, removed right after';

/** The chain of the trace rule on one hook. */
export const traceChainName = (hook: string) => `${NAMES.trace.prefix}${hook}`;

/** What the rules match: the source (address and ephemeral port: unique while the probe runs) and protocol, the
 *  first packet only (a TCP SYN); the destination before NAT only where no NAT happened yet. */
function matchText(m: TraceMatch, withDaddr: boolean): string {
  const parts: string[] = [];
  if (m.saddr) parts.push(`ip saddr ${m.saddr}`);
  if (withDaddr) parts.push(`ip daddr ${m.daddr}`);
  if (m.proto === 'icmp') {
    parts.push('icmp type echo-request');
    if (m.icmpId !== undefined) parts.push(`icmp id ${m.icmpId}`);
  } else {
    parts.push(`meta l4proto ${m.proto}`);
    if (m.sport !== undefined) parts.push(`th sport ${m.sport}`);
    if (m.proto === 'tcp') parts.push('tcp flags & (syn | ack) == syn');
  }
  return parts.join(' ');
}

const isAddr = (s: string | undefined) => s === undefined || /^\d{1,3}(\.\d{1,3}){3}$/.test(s);
const isNum = (n: number | undefined) => n === undefined || (Number.isInteger(n) && n >= 0 && n <= 65535);

/** The hooks the probe may pass in the host netns, per table family. */
export function traceHooks(origin: TraceMatch['origin'], bridgeTable: boolean): Array<{ family: 'inet' | 'bridge'; hook: string }> {
  const inet = origin === 'container' ? ['prerouting', 'input', 'forward', 'postrouting'] : ['output', 'postrouting', 'prerouting', 'input'];
  return [
    ...inet.map((hook) => ({ family: 'inet' as const, hook })),
    ...(bridgeTable && origin === 'container' ? ['prerouting', 'forward'].map((hook) => ({ family: 'bridge' as const, hook })) : []),
  ];
}

/** The script adding the trace chains, one rule each, before every chain of nsnet's on their hook (priority
 *  -301: before the loopback guard at raw; -201 in the bridge family). One transaction. */
export function traceScript(m: TraceMatch, bridgeTable: boolean): string {
  if (!isAddr(m.saddr) || !isAddr(m.daddr) || !isNum(m.sport) || !isNum(m.dport) || !isNum(m.icmpId)) throw new Error('traceScript: invalid probe tuple');
  const L: string[] = [];
  for (const fam of ['inet', 'bridge'] as const) {
    const hooks = traceHooks(m.origin, bridgeTable).filter((x) => x.family === fam);
    if (!hooks.length) continue;
    L.push(`table ${fam} ${NAMES.table} {`);
    for (const { hook } of hooks) {
      // The destination is matched where it is still the one sent to: before any DNAT (the first hook).
      const first = hook === (m.origin === 'container' ? 'prerouting' : 'output');
      L.push(`\tchain ${traceChainName(hook)} {`, `\t\ttype filter hook ${hook} priority ${fam === 'bridge' ? -201 : -301}; policy accept;`,
        `\t\t${matchText(m, first)} meta nftrace set 1 comment "${TRACE_COMMENT}"`, '\t}');
    }
    L.push('}');
  }
  return L.join('\n') + '\n';
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
  /** The kernel's events as received (nsnet's trace chains left out). */
  events: TraceEvent[];
}

/** PURE: the events of the first traced packet, chain by chain. */
export function tracedChains(events: TraceEvent[], index: RuleIndex, model?: FirewallModel): { id?: number; chains: TracedChain[] } {
  // Every packet the rules marked is the probe's first packet (retransmissions come later than the probe waits).
  const evs = events.filter((e) => !(e.table === NAMES.table && e.chain.startsWith(NAMES.trace.prefix)));
  const id = events[0]?.id;
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
      delete top.rule;
      delete top.handle;
      delete top.text;
      stack = [];
    } else if (e.type === 'return' || (e.type === 'rule' && e.handle === undefined && (e.verdict ?? 'continue') === 'continue')) {
      // The end of a chain without a verdict (this kernel reports it as a rule event without a handle): back to
      // the caller; for a base chain its policy event follows.
      if (stack.length > 1) {
        top.outcome = 'end';
        stack.pop();
      }
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
  if (verdict === 'dropped' && !drop && probe.outcome === 'timeout' && e.verdict === 'delivered' && e.replyCut) {
    // The other direction of a one-way partition: the probe passed every chain, its answer was dropped (the
    // answer is not traced: the trace rule marks the probe's own 5-tuple).
    verdict = 'unknown';
    notes.push(`no answer, and no chain dropped the probe: ${e.replyCut}`);
  }
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
  const events0 = events.filter((x) => !(x.table === NAMES.table && x.chain.startsWith(NAMES.trace.prefix)));
  return { ...(id !== undefined ? { id } : {}), chains, probe, verdict, differences, notes, events: events0 };
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
