// `nsnet explain --trace` without root: the trace rules' script, the netlink trace-event parser
// (src/kernel/nftrace.ts parseTraceMessages, on hand-made NFT_MSG_TRACE messages), and the comparison of the
// kernel's events with the prediction (src/explain/trace.ts), on events as this kernel reported them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTraceMessages, type TraceEvent } from '../../src/kernel/nftrace.js';
import { compareTrace, formatTrace, traceHooks, traceScript, tracedChains, type RuleIndex } from '../../src/explain/trace.js';
import type { Explanation } from '../../src/explain/plan.js';

// ---------------------------------------------------------------------------------------------- netlink

function attr(type: number, payload: Buffer): Buffer {
  const len = 4 + payload.length;
  const b = Buffer.alloc((len + 3) & ~3);
  b.writeUInt16LE(len, 0);
  b.writeUInt16LE(type, 2);
  payload.copy(b, 4);
  return b;
}
const s = (t: number, v: string) => attr(t, Buffer.from(v + '\0'));
const u32 = (t: number, v: number) => { const b = Buffer.alloc(4); b.writeUInt32BE(v >>> 0); return attr(t, b); };
const i32 = (t: number, v: number) => { const b = Buffer.alloc(4); b.writeInt32BE(v); return attr(t, b); };
const u64 = (t: number, v: number) => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(v)); return attr(t, b); };
function msg(type: number, family: number, attrs: Buffer[]): Buffer {
  const body = Buffer.concat([Buffer.from([family, 0, 0, 0]), ...attrs]);
  const h = Buffer.alloc(16);
  h.writeUInt32LE(16 + body.length, 0);
  h.writeUInt16LE(type, 4);
  return Buffer.concat([h, body]);
}
const TRACE = (10 << 8) | 17;

test('parseTraceMessages: rule (with handle, verdict and jump target), policy and chain-end events; other messages skipped', () => {
  const buf = Buffer.concat([
    msg(TRACE, 1, [s(1, 'nsnet'), s(2, 'prerouting'), u64(3, 16), u32(4, 3), attr(5 | 0x8000, Buffer.concat([i32(1, -3), s(2, 'published')])), u32(6, 0xabcdef01), u32(10, 5), u32(15, 2)]),
    msg(TRACE, 1, [s(1, 'nsnet'), s(2, 'published'), u32(4, 3), attr(5 | 0x8000, i32(1, -1)), u32(6, 0xabcdef01)]),
    msg(0x0a00, 1, [s(1, 'nsnet')]), // NFT_MSG_NEWTABLE: not a trace
    msg(TRACE, 7, [s(1, 'nsnet'), s(2, 'forward'), u32(4, 1), i32(16, 0), u32(6, 7), u32(15, 7)]),
    msg(TRACE, 1, [s(1, 'filter'), s(2, 'forward'), u64(3, 4), u32(4, 3), attr(5 | 0x8000, i32(1, 0)), u32(6, 7), u32(12, 9)]),
  ]);
  const ev = parseTraceMessages(buf);
  assert.deepEqual(ev, [
    { id: 0xabcdef01, type: 'rule', family: 'inet', table: 'nsnet', chain: 'prerouting', handle: 16, verdict: 'jump', target: 'published', iif: 5, nfproto: 'ip' },
    { id: 0xabcdef01, type: 'rule', family: 'inet', table: 'nsnet', chain: 'published', verdict: 'continue' },
    { id: 7, type: 'policy', family: 'bridge', table: 'nsnet', chain: 'forward', policy: 'drop', nfproto: 'bridge' },
    { id: 7, type: 'rule', family: 'inet', table: 'filter', chain: 'forward', handle: 4, verdict: 'drop', oif: 9 },
  ]);
  // A truncated buffer yields what is complete, never throws.
  assert.equal(parseTraceMessages(buf, buf.length - 3).length, 3);
  assert.deepEqual(parseTraceMessages(Buffer.alloc(10)), []);
});

// ---------------------------------------------------------------------------------------------- rules

test('traceScript: one chain per hook the probe may pass, before nsnet\'s chains, matching its source and first packet', () => {
  const c = traceScript({ origin: 'container', saddr: '172.18.0.3', daddr: '172.18.0.2', proto: 'tcp', sport: 40001, dport: 80 }, true);
  assert.equal(c, [
    'table inet nsnet {',
    '\tchain trace_prerouting {', '\t\ttype filter hook prerouting priority -301; policy accept;',
    '\t\tip saddr 172.18.0.3 ip daddr 172.18.0.2 meta l4proto tcp th sport 40001 tcp flags & (syn | ack) == syn meta nftrace set 1 comment "nsnet explain --trace: marks one probe packet, removed right after"', '\t}',
    '\tchain trace_input {', '\t\ttype filter hook input priority -301; policy accept;',
    '\t\tip saddr 172.18.0.3 meta l4proto tcp th sport 40001 tcp flags & (syn | ack) == syn meta nftrace set 1 comment "nsnet explain --trace: marks one probe packet, removed right after"', '\t}',
    '\tchain trace_forward {', '\t\ttype filter hook forward priority -301; policy accept;',
    '\t\tip saddr 172.18.0.3 meta l4proto tcp th sport 40001 tcp flags & (syn | ack) == syn meta nftrace set 1 comment "nsnet explain --trace: marks one probe packet, removed right after"', '\t}',
    '\tchain trace_postrouting {', '\t\ttype filter hook postrouting priority -301; policy accept;',
    '\t\tip saddr 172.18.0.3 meta l4proto tcp th sport 40001 tcp flags & (syn | ack) == syn meta nftrace set 1 comment "nsnet explain --trace: marks one probe packet, removed right after"', '\t}',
    '}',
    'table bridge nsnet {',
    '\tchain trace_prerouting {', '\t\ttype filter hook prerouting priority -201; policy accept;',
    '\t\tip saddr 172.18.0.3 ip daddr 172.18.0.2 meta l4proto tcp th sport 40001 tcp flags & (syn | ack) == syn meta nftrace set 1 comment "nsnet explain --trace: marks one probe packet, removed right after"', '\t}',
    '\tchain trace_forward {', '\t\ttype filter hook forward priority -201; policy accept;',
    '\t\tip saddr 172.18.0.3 meta l4proto tcp th sport 40001 tcp flags & (syn | ack) == syn meta nftrace set 1 comment "nsnet explain --trace: marks one probe packet, removed right after"', '\t}',
    '}',
  ].join('\n') + '\n');
  const host = traceScript({ origin: 'host', daddr: '127.0.0.1', proto: 'udp', sport: 5000, dport: 53 }, true);
  assert.deepEqual(traceHooks('host', true).map((x) => `${x.family} ${x.hook}`), ['inet output', 'inet postrouting', 'inet prerouting', 'inet input']);
  assert.match(host, /chain trace_output \{\n\t\ttype filter hook output priority -301; policy accept;\n\t\tip daddr 127\.0\.0\.1 meta l4proto udp th sport 5000 meta nftrace/);
  assert.doesNotMatch(host, /table bridge/);
  assert.match(traceScript({ origin: 'container', saddr: '10.0.0.2', daddr: '10.0.0.1', proto: 'icmp', icmpId: 77 }, false), /ip saddr 10\.0\.0\.2 ip daddr 10\.0\.0\.1 icmp type echo-request icmp id 77 meta nftrace set 1/);
  // Nothing but literal addresses and numbers is ever written into the script.
  assert.throws(() => traceScript({ origin: 'host', daddr: 'example.com', proto: 'tcp', sport: 1 }, false));
  assert.throws(() => traceScript({ origin: 'host', daddr: '10.0.0.1', proto: 'tcp', sport: 70000 }, false));
});

// ---------------------------------------------------------------------------------------------- comparison

const ev = (chain: string, x: Partial<TraceEvent>, table = 'nsnet', family = 'inet'): TraceEvent => ({ id: 1, type: 'rule', family, table, chain, ...x });
// What this kernel reported for q1 -> host:80 (icc=false network, br_netfilter on): see the integration test.
const toHost: TraceEvent[] = [
  ev('trace_prerouting', { handle: 155, verdict: 'continue' }),
  ev('guard', { verdict: 'continue' }), ev('guard', { type: 'policy', policy: 'accept' }),
  ev('prerouting', { handle: 16, verdict: 'jump', target: 'published' }),
  ev('published', { verdict: 'continue' }),
  ev('prerouting', { verdict: 'continue' }), ev('prerouting', { type: 'policy', policy: 'accept' }),
  { ...ev('input', { verdict: 'continue' }), id: 2 }, { ...ev('input', { type: 'policy', policy: 'accept' }), id: 2 },
];
const index: RuleIndex = new Map([['inet nsnet prerouting', new Map([[15, 0], [16, 1]])], ['inet filter forward', new Map([[4, 2]])]]);

function expl(verdict: 'delivered' | 'dropped', chains: Explanation['chains'], proto: 'tcp' | 'udp' = 'tcp'): Explanation {
  return {
    query: { from: 'a', to: 'b', port: 80, proto }, from: { kind: 'container' }, to: { kind: 'host' }, hops: [], verdict, reason: '', fix: [], names: [], notes: [], warnings: [], chains,
    probe: { from: { kind: 'host' }, daddr: '10.0.0.1', proto, dport: 80, hostHook: 'prerouting' },
  };
}
const C = (chain: string, outcome: Explanation['chains'][number]['outcome'], depth = 0, table = 'inet nsnet', rule?: number) => ({ hook: '', table, chain, depth, outcome, ...(rule !== undefined ? { rule } : {}) });

test('tracedChains: base chains and the chains they jump to, the trace chains left out, across trace ids', () => {
  const t = tracedChains(toHost, index);
  assert.deepEqual(t.chains, [
    { table: 'inet nsnet', chain: 'guard', depth: 0, outcome: 'policy-accept' },
    { table: 'inet nsnet', chain: 'prerouting', depth: 0, outcome: 'policy-accept' },
    { table: 'inet nsnet', chain: 'published', depth: 1, outcome: 'end' },
    { table: 'inet nsnet', chain: 'input', depth: 0, outcome: 'policy-accept' },
  ]);
});

test('compareTrace: agreement; a foreign table\'s drop and a different verdict are differences, said loudly', () => {
  const want = [C('guard', 'policy-accept'), C('prerouting', 'policy-accept'), C('published', 'end', 1), C('input', 'policy-accept')];
  const ok = compareTrace(expl('delivered', want), toHost, index, { outcome: 'refused', detail: 'Connection refused' });
  assert.deepEqual(ok.differences, []);
  assert.equal(ok.verdict, 'delivered');
  assert.match(formatTrace(ok), /the kernel agrees with the prediction/);
  // Another table drops it on forward: nsnet predicted delivery.
  const fwd = [C('guard', 'policy-accept'), C('prerouting', 'policy-accept'), C('forward', 'accept', 0, 'inet nsnet', 3), C('postrouting', 'policy-accept')];
  const events: TraceEvent[] = [
    ev('guard', { type: 'policy', policy: 'accept' }), ev('prerouting', { type: 'policy', policy: 'accept' }),
    ev('forward', { handle: 4, verdict: 'drop' }, 'filter'),
  ];
  const bad = compareTrace(expl('delivered', fwd), events, index, { outcome: 'timeout' });
  assert.equal(bad.verdict, 'dropped');
  assert.deepEqual(bad.differences, [
    'predicted inet nsnet forward next, the kernel ran inet filter forward (drop): another table, which nsnet does not model',
    'predicted DELIVERED, the kernel: DROPPED (probe: timeout)',
  ]);
  assert.equal(bad.chains[2].rule, 2, 'the foreign rule is located by its handle');
  assert.match(formatTrace(bad), /!!! THE KERNEL DISAGREES WITH THE PREDICTION !!!/);
  // Dropped as predicted, by another rule of the same chain.
  const iso = [C('guard', 'policy-accept'), C('prerouting', 'policy-accept'), C('forward', 'drop', 0, 'inet nsnet', 8)];
  const other = compareTrace(expl('dropped', iso), [...events.slice(0, 2), ev('forward', { handle: 99, verdict: 'drop' })], new Map([['inet nsnet forward', new Map([[99, 7]])]]), { outcome: 'timeout' });
  assert.deepEqual(other.differences, ['inet nsnet forward: predicted a drop by rule #8, the kernel dropped it by rule #7']);
  // Nothing traced although chains were predicted.
  assert.match(compareTrace(expl('dropped', iso), [], index, { outcome: 'timeout' }).differences[0], /the kernel traced no chain at all/);
  // UDP without an answer: the verdict is unknown, which is no disagreement by itself.
  const udp = compareTrace(expl('delivered', want, 'udp'), toHost, index, { outcome: 'timeout' });
  assert.equal(udp.verdict, 'unknown');
  assert.deepEqual(udp.differences, []);
});
