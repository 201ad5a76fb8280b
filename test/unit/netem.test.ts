// Link impairment, the pure parts: option parsing (src/engine/netem.ts), sizing and the classic BPF programs and
// netlink encoding of src/kernel/tc.ts (the programs run by a small interpreter on hand-made frames).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeSpec, devicePlans, parseNetemInput, parsePercent, parseRate, parseTime, type NetemSpec } from '../../src/engine/netem.js';
import { NlWriter, type SockFilter } from '../../src/kernel/netlink.js';
import * as tc from '../../src/kernel/tc.js';
import { holdMs, type DelayLineConfig } from '../../src/kernel/delayline.js';

test('netem: times, percentages and rates as tc writes them; bad values are one clear error', () => {
  assert.equal(parseTime('100ms', '--delay'), 100);
  assert.equal(parseTime('1.5s', '--delay'), 1500);
  assert.equal(parseTime('250us', '--delay'), 0.25);
  assert.equal(parseTime('2m', '--duration'), 120000);
  assert.equal(parsePercent('0.1%', '--corrupt'), 0.1);
  assert.equal(parseRate('10mbit'), 10e6);
  assert.equal(parseRate('1gbit'), 1e9);
  assert.equal(parseRate('100kbps'), 800e3, 'kbps are bytes per second, as in tc');
  assert.equal(parseRate('1mibit'), 1048576);
  const bad: Array<[() => unknown, RegExp]> = [
    [() => parseTime('-1ms', '--delay'), /^invalid --delay -1ms: must not be negative$/],
    [() => parseTime('100', '--delay'), /expected a duration with a unit/],
    [() => parsePercent('120%', '--loss'), /^invalid --loss 120%: must be between 0% and 100%$/],
    [() => parsePercent('5', '--loss'), /expected a percentage/],
    [() => parseRate('0'), /^invalid --rate 0: must be more than 0$/],
    [() => parseRate('0mbit'), /must be more than 0/],
    [() => parseRate('10 furlongs'), /expected a rate with a unit/],
    [() => parseNetemInput({}), /no impairment given/],
    [() => parseNetemInput({ jitter: '5ms' }), /--jitter needs --delay/],
    [() => parseNetemInput({ delay: '5ms', jitter: '10ms' }), /at most the delay/],
    [() => parseNetemInput({ reorder: '25%' }), /--reorder needs --delay/],
    [() => parseNetemInput({ loss: '1%', duration: '0s' }), /--duration 0s: must be more than 0/],
    [() => parseNetemInput({ loss: '1%', duration: '31d' }), /expected a duration/],
  ];
  for (const [f, re] of bad) assert.throws(f, (e: Error) => re.test(e.message) && !e.message.includes('\n'), re.source);
  const { spec, durationMs } = parseNetemInput({ delay: '100ms', jitter: '10ms', loss: '1%', rate: '10mbit', to: ['b'], duration: '30s' });
  assert.equal(durationMs, 30000);
  assert.equal(describeSpec({ ...spec, toCidrs: [] }), 'delay 100ms jitter 10ms loss 1% rate 10mbit to b');
});

test('netem: sizing: htb burst for the rate and a GSO super-packet, netem limit for rate x delay', () => {
  assert.equal(tc.burstFor(10e6, 1500), 65536 + 1514, 'at 10 Mbit/s one 64 KiB GSO skb dominates');
  assert.equal(tc.burstFor(10e9, 1500), 10e9 / 8 / 100, 'at 10 Gbit/s: 10 ms of the rate');
  assert.equal(tc.netemLimit(null, 0.5e6, 0, 1500), 1000, 'at least netem\'s default');
  assert.equal(tc.netemLimit(null, 1e6, 0, 1500), 1250, '10 Gbit/s assumed without a rate');
  // 1 Gbit/s x 200 ms = 25 MB = 16667 packets of 1500, with 50% headroom.
  assert.equal(tc.netemLimit(1e9, 200e6, 0, 1500), 25000);
  assert.equal(tc.netemLimit(null, 60e9, 0, 1500), 1_000_000, 'capped');
  const s: NetemSpec = { delayMs: 0, jitterMs: 0, loss: 20, duplicate: 0, corrupt: 0, reorder: 0, rate: 10e6, to: ['x'], toCidrs: ['10.1.2.0/24'] };
  const [ctr, host] = devicePlans(s, 1500);
  assert.equal(ctr.peerOffset, 30, 'the container side matches the peer as destination');
  assert.equal(host.peerOffset, 26, 'the host side (towards the container) matches it as source');
  assert.deepEqual(ctr.peers, [{ net: 0x0a010200, mask: 0xffffff00 }]);
  assert.equal(ctr.netem, null, 'rate and loss need no netem');
  assert.ok(tc.needsClass(ctr));
  assert.ok(devicePlans({ ...s, delayMs: 50, rate: null }, 1500)[0].netem, 'a delay needs netem');
});

const RAND = 0xfffff038;
const MARK = 0xfffff014;
/** The classic BPF subset tc.ts emits. `rand` is what `ld rand` yields, `mark` the skb's mark. */
function run(prog: SockFilter[], frame: Buffer, rand = 0, mark = 0): number {
  let a = 0;
  for (let pc = 0; pc < prog.length;) {
    const { code, jt, jf, k } = prog[pc];
    switch (code) {
      case 0x28: a = frame.readUInt16BE(k); pc++; break;
      case 0x20: a = k === RAND ? rand : k === MARK ? mark : frame.readUInt32BE(k); pc++; break;
      case 0x54: a = (a & k) >>> 0; pc++; break;
      case 0x15: pc += 1 + (a === k ? jt : jf); break;
      case 0x35: pc += 1 + (a >= k ? jt : jf); break;
      case 0x05: pc += 1 + k; break;
      case 0x06: return k >>> 0;
      default: throw new Error(`unexpected opcode ${code}`);
    }
  }
  throw new Error('fell off the end');
}

function frame(src: string, dst: string, ethertype = 0x0800): Buffer {
  const f = Buffer.alloc(42);
  f.writeUInt16BE(ethertype, 12);
  src.split('.').forEach((x, i) => { f[26 + i] = Number(x); });
  dst.split('.').forEach((x, i) => { f[30 + i] = Number(x); });
  return f;
}

test('netem: the loss program drops with its probability, only towards the peers when given', () => {
  const SHOT = 2;
  const UNSPEC = 0xffffffff;
  const p = tc.lossProgram(0.2, [], 30);
  const thr = tc.lossThreshold(0.2);
  assert.equal(run(p, frame('10.0.0.2', '10.0.0.3'), thr - 1), SHOT);
  assert.equal(run(p, frame('10.0.0.2', '10.0.0.3'), thr), UNSPEC);
  assert.equal(run(p, frame('0.0.0.0', '0.0.0.0', 0x0806), 0), SHOT, 'without --to, every frame of the link (ARP too)');
  assert.equal(run(tc.lossProgram(1, [], 30), frame('1.1.1.1', '2.2.2.2'), 0xffffffff), SHOT, '100% drops all');
  const peers = [{ net: 0x0a000003, mask: 0xffffffff }, { net: 0x0a010000, mask: 0xffff0000 }];
  const q = tc.lossProgram(0.5, peers, 30);
  assert.equal(run(q, frame('10.0.0.2', '10.0.0.3'), 0), SHOT);
  assert.equal(run(q, frame('10.0.0.2', '10.1.7.7'), 0), SHOT);
  assert.equal(run(q, frame('10.0.0.2', '10.0.0.4'), 0), UNSPEC, 'not a peer');
  assert.equal(run(q, frame('10.0.0.3', '10.0.0.4'), 0), UNSPEC, 'the peer as source does not count on the container side');
  assert.equal(run(q, frame('0.0.0.0', '10.0.0.3', 0x0806), 0), UNSPEC, 'with --to, not ARP');
  assert.equal(run(tc.lossProgram(0.5, peers, 26), frame('10.0.0.3', '10.0.0.2'), 0), SHOT, 'host side: the peer is the source');
  const c = tc.classifyProgram(peers, 30);
  assert.equal(run(c, frame('10.0.0.2', '10.0.0.3')), 0xffffffff, 'matched: the filter\'s class');
  assert.equal(run(c, frame('10.0.0.2', '10.0.0.9')), 0, 'unmatched: unclassified, htb sends it directly');
  assert.equal(run(tc.classifyProgram([], 30), frame('1.1.1.1', '2.2.2.2')), 0xffffffff);
});

test('netem: netlink encoding of the htb class (64-bit rate) and of netem (64-bit latency)', () => {
  const w = new NlWriter();
  tc.encHtbClass(w, 7, 80e9, 1e6);
  const b = w.bytes();
  assert.equal(b.readUInt16LE(4), 40, 'RTM_NEWTCLASS');
  assert.equal(b.readUInt32LE(16 + 4), 7);
  assert.equal(b.readUInt32LE(16 + 8), tc.CLASS_ID);
  assert.equal(b.readUInt32LE(16 + 12), tc.ROOT_HANDLE);
  const hex = b.toString('hex');
  // TCA_HTB_RATE64 (6) = 10e9 bytes/s as u64.
  const r64 = Buffer.alloc(8);
  r64.writeBigUInt64LE(10_000_000_000n);
  assert.ok(hex.includes('0c000600' + r64.toString('hex')), 'RATE64 present beyond 4 GB/s');
  const n = new NlWriter();
  tc.encNetem(n, 7, { delayNs: 50e6, jitterNs: 5e6, duplicate: 0.01, corrupt: 0, reorder: 0.25, limit: 1234 });
  const nb = n.bytes();
  // nlmsghdr 16 + tcmsg 20 + TCA_KIND "netem\0" (4+6 -> 12) + TCA_OPTIONS header 4: then tc_netem_qopt raw.
  const q = 16 + 20 + 12 + 4;
  assert.equal(nb.readUInt32LE(q), Math.round(50e6 / 64), 'latency in ticks');
  assert.equal(nb.readUInt32LE(q + 4), 1234, 'limit');
  assert.equal(nb.readUInt32LE(q + 12), 1, 'gap 1 for reordering');
  assert.equal(nb.readUInt32LE(q + 16), tc.prob32(0.01), 'duplicate');
  const l64 = Buffer.alloc(12);
  l64.writeUInt16LE(12, 0); l64.writeUInt16LE(10, 2); l64.writeBigUInt64LE(50_000_000n, 4);
  assert.ok(nb.toString('hex').includes(l64.toString('hex')), 'TCA_NETEM_LATENCY64');
  assert.equal(nb.readUInt32LE(0), nb.length, 'message length');
});

test('netem: the delay line: its redirect skips what it sent itself, its hold times', () => {
  const peers = [{ net: 0x0a000003, mask: 0xffffffff }];
  const r = tc.redirectProgram(peers, 30);
  assert.equal(run(r, frame('10.0.0.2', '10.0.0.3')), 0xffffffff, 'to the peer: redirected to the tap');
  assert.equal(run(r, frame('10.0.0.2', '10.0.0.3'), 0, tc.DELAY_MARK), 0, 'sent again by the delay line: passes');
  assert.equal(run(r, frame('10.0.0.2', '10.0.0.4')), 0, 'not a peer: passes');
  assert.equal(run(tc.redirectProgram([], 30), frame('0.0.0.0', '0.0.0.0', 0x0806)), 0xffffffff, 'without --to: every frame');
  const cfg: DelayLineConfig = { delayMs: 100, jitterMs: 10, duplicate: 0, corrupt: 0, reorder: 0.25, limit: 1000, mark: 1, tap: 't', mtu: 1500, sides: [], root: '/x' };
  assert.equal(holdMs(cfg, 0.1, 0.5), 0, 'the reorder share is sent at once');
  assert.equal(holdMs(cfg, 0.9, 0.5), 100);
  assert.equal(holdMs(cfg, 0.9, 0), 90, 'jitter: -10 ms');
  assert.equal(holdMs(cfg, 0.9, 1), 110, 'jitter: +10 ms');
  assert.equal(holdMs({ ...cfg, reorder: 0, jitterMs: 0 }, 0, 0), 100);
});
