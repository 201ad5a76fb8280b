// The tc loopback guard's classic BPF program (src/drivers/bridge.ts), run by a small interpreter of the few
// instructions it uses, on hand-made frames: it drops IPv4 to or from 127.0.0.0/8 and defers on everything else.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GUARD_PROGRAM } from '../../src/drivers/bridge.js';
import { NetlinkBatch, encodeSockFilter, parseQdisc, parseTcFilter } from '../../src/kernel/netlink.js';

const SHOT = 2;
const UNSPEC = 0xffffffff;

/** Classic BPF: ldh/ldb absolute, jeq #k, ret #k (what the guard uses); a load past the end returns 0, as the kernel. */
function run(frame: Buffer): number {
  let a = 0;
  for (let pc = 0; pc < GUARD_PROGRAM.length;) {
    const { code, jt, jf, k } = GUARD_PROGRAM[pc];
    switch (code) {
      case 0x28: if (k + 2 > frame.length) return 0; a = frame.readUInt16BE(k); pc++; break;
      case 0x30: if (k + 1 > frame.length) return 0; a = frame[k]; pc++; break;
      case 0x15: pc += 1 + (a === k ? jt : jf); break;
      case 0x06: return k >>> 0;
      default: throw new Error(`unexpected opcode ${code}`);
    }
  }
  throw new Error('fell off the end');
}

function ipv4(src: string, dst: string, ethertype = 0x0800): Buffer {
  const f = Buffer.alloc(14 + 20 + 8);
  f.writeUInt16BE(ethertype, 12);
  f[14] = 0x45;
  src.split('.').forEach((x, i) => { f[26 + i] = Number(x); });
  dst.split('.').forEach((x, i) => { f[30 + i] = Number(x); });
  return f;
}

test('guard: drops IPv4 to or from 127.0.0.0/8, defers (TC_ACT_UNSPEC) on everything else', () => {
  assert.equal(run(ipv4('172.18.0.2', '127.0.0.1')), SHOT);
  assert.equal(run(ipv4('172.18.0.2', '127.255.0.9')), SHOT);
  assert.equal(run(ipv4('127.0.0.1', '172.18.0.1')), SHOT);
  assert.equal(run(ipv4('172.18.0.2', '172.18.0.1')), UNSPEC, 'to the gateway');
  assert.equal(run(ipv4('172.18.0.2', '128.0.0.1')), UNSPEC);
  assert.equal(run(ipv4('172.18.0.2', '126.255.255.255')), UNSPEC);
  assert.equal(run(ipv4('172.18.0.2', '127.0.0.1', 0x0806)), UNSPEC, 'not IPv4 (ARP): bytes at those offsets mean something else');
  assert.equal(run(ipv4('172.18.0.2', '127.0.0.1', 0x86dd)), UNSPEC, 'IPv6');
});

test('guard: encodes as struct sock_filter and parses back from a filter dump', () => {
  const ops = encodeSockFilter(GUARD_PROGRAM);
  assert.equal(ops.length, GUARD_PROGRAM.length * 8);
  // tcmsg (20 bytes) + TCA_KIND "bpf" + TCA_OPTIONS { TCA_BPF_FLAGS 1, TCA_BPF_OPS }
  const kind = Buffer.from([8, 0, 1, 0, 0x62, 0x70, 0x66, 0]);
  const flags = Buffer.from([8, 0, 8, 0, 1, 0, 0, 0]);
  const opsAttr = Buffer.concat([Buffer.from([(4 + ops.length) & 0xff, (4 + ops.length) >> 8, 5, 0]), ops]);
  const optLen = 4 + flags.length + opsAttr.length;
  const opts = Buffer.concat([Buffer.from([optLen & 0xff, optLen >> 8, 2, 0x80]), flags, opsAttr]);
  const tcm = Buffer.alloc(20);
  tcm.writeUInt32LE(1, 8);
  tcm.writeUInt32LE(0xfffffff2, 12);
  tcm.writeUInt32LE(((0x4e53 << 16) | 0x0300) >>> 0, 16);
  const msg = Buffer.concat([tcm, kind, opts]);
  const f = parseTcFilter(msg, 0, msg.length)!;
  assert.equal(f.kind, 'bpf');
  assert.equal(f.prio, 0x4e53);
  assert.equal(f.protocolBe, 0x0300);
  assert.equal(f.handle, 1);
  assert.equal(f.directAction, true);
  assert.ok(f.ops && f.ops.equals(ops));
});

test('guard: a port binds its clsact ingress to the shared block; the qdisc dump parses back', () => {
  const b = new NetlinkBatch();
  b.addClsact(7, { ingressBlock: 0x4e53 });
  const m = b.w.bytes();
  assert.equal(m.readUInt16LE(4), 36, 'RTM_NEWQDISC');
  const payload = m.subarray(16);
  const q = parseQdisc(payload, 0, payload.length)!;
  assert.deepEqual(q, { index: 7, parent: 0xfffffff1, kind: 'clsact', ingressBlock: 0x4e53, egressBlock: 0 });
  // A filter in a block: tcm_ifindex is TCM_IFINDEX_MAGIC_BLOCK, tcm_parent the block index.
  const f = new NetlinkBatch();
  f.addBpfFilter({ block: 0x4e53 }, { prio: 0x4e53, protocolBe: 0x0300, handle: 1, name: 'x', prog: GUARD_PROGRAM });
  const fm = f.w.bytes();
  assert.equal(fm.readUInt32LE(16 + 4), 0xffffffff);
  assert.equal(fm.readUInt32LE(16 + 12), 0x4e53);
  assert.throws(() => new NetlinkBatch().addClsact(7, { ingressBlock: 0 }), /invalid block index/);
});
