// Unit tests of the vxlan, FDB and neighbour messages of nsnet's netlink client (src/kernel/netlink/vxlan.ts,
// neigh.ts, link.ts encVxlan/parseLink): bytes in, bytes out, no sockets. The references are real messages:
// requests iproute2 6.1 sent and replies kernel 6.18 gave it, captured with strace (test/unit/golden/netlink-vxlan/,
// its _about says how).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  FLOOD_MAC, NetlinkBatch, NetlinkError, NlWriter, parseFdb, parseLink, parseNeighbour, type FdbInfo, type NeighbourInfo,
} from '../../src/kernel/netlink.js';
import { fdbEntries, neighbours } from '../../src/kernel/netlink/neigh.js';
import type { NetlinkSocket } from '../../src/kernel/netlink/socket.js';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../..');
const G = JSON.parse(fs.readFileSync(path.join(ROOT, 'test/unit/golden/netlink-vxlan/iproute2-6.1-kernel-6.18.json'), 'utf8')) as
  Record<string, string | string[]>;
const msg = (k: string): Buffer => Buffer.from(G[k] as string, 'hex');
const msgs = (k: string): Buffer[] => (G[k] as string[]).map((h) => Buffer.from(h, 'hex'));
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

const NLM_F_ACK = 0x4;
const RTM_NEWLINK = 16;
const RTM_NEWNEIGH = 28;
const RTM_DELNEIGH = 29;
const RTM_GETNEIGH = 30;

/** Attributes of b[start..end) by type (flags stripped); fails on a duplicate type. */
function attrs(b: Buffer, start: number, end: number): Map<number, Buffer> {
  const m = new Map<number, Buffer>();
  for (let a = start; a + 4 <= end;) {
    const len = b.readUInt16LE(a);
    assert.ok(len >= 4 && a + len <= end, `malformed attribute at ${a}`);
    const t = b.readUInt16LE(a + 2) & 0x3fff;
    assert.ok(!m.has(t), `attribute ${t} twice`);
    m.set(t, b.subarray(a + 4, a + len));
    a += (len + 3) & ~3;
  }
  return m;
}
const asHex = (m: Map<number, Buffer>): Record<number, string> => Object.fromEntries([...m].map(([k, v]) => [k, hex(v)]));

/** The one message queued on a fresh batch by `fn`. */
function one(fn: (b: NetlinkBatch) => void): Buffer {
  const b = new NetlinkBatch();
  fn(b);
  assert.equal(b.size, 1);
  const m = Buffer.from(b.w.bytes());
  assert.equal(m.readUInt32LE(0), m.length, 'nlmsg_len covers the message');
  return m;
}

function einval(fn: () => unknown, what: string): void {
  assert.throws(fn, (e: unknown) => e instanceof NetlinkError && e.code === 'EINVAL' && e.errno === 22, what);
}

test('createVxlan encodes what `ip link add ... type vxlan id 42 local 192.0.2.1 dev u0 dstport 4789 nolearning ttl 64` sends', () => {
  const ref = msg('ipLinkAddVxlan');
  const m = one((b) => b.createVxlan('vx0', { vni: 42, local: '192.0.2.1', link: 3, ttl: 64, mac: '02:00:00:00:aa:01' }));
  assert.equal(m.readUInt16LE(4), RTM_NEWLINK);
  assert.equal(m.readUInt16LE(6), ref.readUInt16LE(6) & ~NLM_F_ACK, 'REQUEST|CREATE|EXCL (the ack flag is added at send)');
  assert.equal(hex(m.subarray(16, 32)), hex(ref.subarray(16, 32)), 'ifinfomsg: AF_UNSPEC, index 0, no flags');
  const top = attrs(m, 32, m.length);
  const rtop = attrs(ref, 32, ref.length);
  assert.deepEqual([...top.keys()].sort(), [...rtop.keys()].sort(), 'IFLA_IFNAME, IFLA_ADDRESS, IFLA_LINKINFO');
  assert.equal(hex(top.get(3)!), hex(rtop.get(3)!), 'IFLA_IFNAME "vx0\\0"');
  assert.equal(hex(top.get(1)!), '02000000aa01', 'IFLA_ADDRESS');
  const li = attrs(top.get(18)!, 0, top.get(18)!.length);
  const rli = attrs(rtop.get(18)!, 0, rtop.get(18)!.length);
  assert.equal(li.get(1)!.toString(), 'vxlan', 'IFLA_INFO_KIND without NUL, as iproute2');
  assert.equal(hex(li.get(1)!), hex(rli.get(1)!));
  // IFLA_INFO_DATA: same attributes, same bytes (iproute2 writes them in another order)
  const data = attrs(li.get(2)!, 0, li.get(2)!.length);
  assert.deepEqual(asHex(data), asHex(attrs(rli.get(2)!, 0, rli.get(2)!.length)));
  assert.deepEqual(asHex(data), {
    1: '2a000000', // IFLA_VXLAN_ID 42, host order
    3: '03000000', // IFLA_VXLAN_LINK (underlay ifindex)
    4: 'c0000201', // IFLA_VXLAN_LOCAL 192.0.2.1
    5: '40', // IFLA_VXLAN_TTL 64
    7: '00', // IFLA_VXLAN_LEARNING off
    15: '12b5', // IFLA_VXLAN_PORT 4789, NETWORK byte order
  });
});

test('createVxlan: IPv6 local (LOCAL6), port, proxy, learning, master, mtu, up; defaults', () => {
  let m = one((b) => b.createVxlan('vx6', { vni: 0xffffff, local: '2001:db8::1', port: 4790, proxy: true, learning: true, master: 5, mtu: 1430, up: true }));
  assert.equal(m.readUInt32LE(24), 1, 'IFF_UP in ifi_flags');
  assert.equal(m.readUInt32LE(28), 1, 'and in ifi_change');
  let top = attrs(m, 32, m.length);
  assert.equal(top.get(4)!.readUInt32LE(0), 1430, 'IFLA_MTU');
  assert.equal(top.get(10)!.readUInt32LE(0), 5, 'IFLA_MASTER');
  assert.equal(top.has(20), false, 'no IFLA_IFALIAS');
  let li = attrs(top.get(18)!, 0, top.get(18)!.length);
  assert.deepEqual(asHex(attrs(li.get(2)!, 0, li.get(2)!.length)), {
    1: 'ffffff00', 17: '20010db8' + '0'.repeat(23) + '1', 7: '01', 11: '01', 15: '12b6',
  });
  m = one((b) => b.createVxlan('vx7', { vni: 7 }));
  top = attrs(m, 32, m.length);
  li = attrs(top.get(18)!, 0, top.get(18)!.length);
  assert.deepEqual(asHex(attrs(li.get(2)!, 0, li.get(2)!.length)), { 1: '07000000', 7: '00', 15: '12b5' },
    'learning off and port 4789 unless asked otherwise; nothing else');
});

test('createVxlan: invalid arguments throw EINVAL and queue nothing', () => {
  const b = new NetlinkBatch();
  b.setUp(2);
  const before = b.w.bytes().length;
  const cases: Array<[string, () => unknown]> = [
    ['VNI too large', () => b.createVxlan('vx0', { vni: 0x1000000 })],
    ['VNI negative', () => b.createVxlan('vx0', { vni: -1 })],
    ['VNI not an integer', () => b.createVxlan('vx0', { vni: 1.5 })],
    ['missing options', () => b.createVxlan('vx0', undefined as unknown as { vni: number })],
    ['port 0', () => b.createVxlan('vx0', { vni: 1, port: 0 })],
    ['port 65536', () => b.createVxlan('vx0', { vni: 1, port: 65536 })],
    ['TTL 256', () => b.createVxlan('vx0', { vni: 1, ttl: 256 })],
    ['bad local', () => b.createVxlan('vx0', { vni: 1, local: '192.0.2.300' })],
    ['bad underlay index', () => b.createVxlan('vx0', { vni: 1, link: 0 })],
    ['bad master', () => b.createVxlan('vx0', { vni: 1, master: -3 })],
    ['bad MAC', () => b.createVxlan('vx0', { vni: 1, mac: '02:00' })],
    ['bad name', () => b.createVxlan('x'.repeat(16), { vni: 1 })],
    ['alias in a batch', () => b.createVxlan('vx0', { vni: 1, alias: 'x' } as never)],
  ];
  for (const [what, f] of cases) einval(f, what);
  assert.equal(b.size, 1);
  assert.equal(b.w.bytes().length, before);
});

test('parseLink reads the vxlan configuration of `ip -d link show` replies (IPv4 with underlay, IPv6 with proxy)', () => {
  // ip -d link show dev vx0: "vxlan id 42 local 192.0.2.1 dev u0 srcport 0 0 dstport 4789 nolearning ttl 64", master br0, mtu 1450
  const a = msg('linkVx0');
  const l = parseLink(a, 16, a.length);
  assert.deepEqual(
    { index: l.index, name: l.name, kind: l.kind, master: l.master, mac: l.mac, mtu: l.mtu, up: l.up },
    { index: 4, name: 'vx0', kind: 'vxlan', master: 5, mac: '02:00:00:00:aa:01', mtu: 1450, up: true },
  );
  assert.deepEqual(l.vxlan, { vni: 42, port: 4789, local: '192.0.2.1', group: null, learning: false, proxy: false, link: 3, ttl: 64 });
  // ip -d link show dev vx6: "vxlan id 43 local 2001:db8::1 srcport 0 0 dstport 4790 nolearning proxy ttl auto", down, mtu 1500
  const b = msg('linkVx6');
  const l6 = parseLink(b, 16, b.length);
  assert.deepEqual({ name: l6.name, kind: l6.kind, mtu: l6.mtu, up: l6.up, master: l6.master }, { name: 'vx6', kind: 'vxlan', mtu: 1500, up: false, master: null });
  assert.deepEqual(l6.vxlan, { vni: 43, port: 4790, local: '2001:db8::1', group: null, learning: false, proxy: true, link: null, ttl: 0 });
  // a bridge keeps its old shape: no vxlan key at all
  const w = new NlWriter();
  w.begin(16, 0);
  w.ifinfomsg(0, 5, 0, 0);
  w.str(3, 'br0', true);
  const li = w.nestStart(18 | 0x8000);
  w.str(1, 'bridge', false);
  const d = w.nestStart(2 | 0x8000);
  w.u32(1, 42);
  w.nestEnd(d);
  w.nestEnd(li);
  w.end('x', 'x');
  const br = parseLink(w.bytes(), 16, w.bytes().length);
  assert.equal(br.kind, 'bridge');
  assert.equal('vxlan' in br, false);
});

test('FDB requests: append / add / delete match what `bridge fdb` sends (but NUD_PERMANENT without NUD_NOARP)', () => {
  // bridge fdb append 00:00:00:00:00:00 dev vx0 dst 192.0.2.2
  let ref = msg('fdbAppend');
  let m = one((b) => b.appendFdb(4, FLOOD_MAC, '192.0.2.2'));
  assert.equal(m.readUInt16LE(4), RTM_NEWNEIGH);
  assert.equal(m.readUInt16LE(6), ref.readUInt16LE(6) & ~NLM_F_ACK, 'REQUEST|CREATE|APPEND');
  assert.equal(m.readUInt16LE(6), 0x1 | 0x400 | 0x800);
  // ndmsg: AF_BRIDGE, ifindex 4, state, NTF_SELF, type 0
  assert.equal(hex(m.subarray(16, 28)), '07000000' + '04000000' + '8000' + '02' + '00');
  assert.equal(hex(ref.subarray(16, 28)), '07000000' + '04000000' + 'c000' + '02' + '00', 'iproute2 adds NUD_NOARP');
  assert.equal(hex(m.subarray(28)), hex(ref.subarray(28)), 'NDA_LLADDR 00:00:00:00:00:00, NDA_DST 192.0.2.2: same bytes');
  // bridge fdb add 02:00:00:00:00:05 dev vx0 dst 192.0.2.3 (NLM_F_EXCL)
  ref = msg('fdbAdd');
  m = one((b) => b.addFdb(4, '02:00:00:00:00:05', '192.0.2.3'));
  assert.equal(m.readUInt16LE(6), ref.readUInt16LE(6) & ~NLM_F_ACK, 'REQUEST|CREATE|EXCL');
  assert.equal(hex(m.subarray(28)), hex(ref.subarray(28)));
  assert.deepEqual(asHex(attrs(m, 28, m.length)), { 2: '020000000005', 1: 'c0000203' });
  // replace: create or move
  m = one((b) => b.addFdb(4, '02:00:00:00:00:05', '192.0.2.3', { replace: true }));
  assert.equal(m.readUInt16LE(6), 0x1 | 0x400 | 0x100, 'REQUEST|CREATE|REPLACE');
  // bridge fdb del 00:00:00:00:00:00 dev vx0 dst 192.0.2.2: one remote of the flood entry
  ref = msg('fdbDel');
  m = one((b) => b.deleteFdb(4, FLOOD_MAC, '192.0.2.2'));
  assert.equal(m.readUInt16LE(4), RTM_DELNEIGH);
  assert.equal(m.readUInt16LE(6), ref.readUInt16LE(6) & ~NLM_F_ACK);
  assert.equal(m[26], 0x02, 'NTF_SELF: the vxlan device\'s table, not its bridge\'s');
  assert.equal(hex(m.subarray(28)), hex(ref.subarray(28)));
  // the whole entry: no NDA_DST; an IPv6 remote: 16 bytes
  m = one((b) => b.deleteFdb(4, '02:00:00:00:00:05'));
  assert.deepEqual(asHex(attrs(m, 28, m.length)), { 2: '020000000005' });
  m = one((b) => b.appendFdb(9, FLOOD_MAC, '2001:db8::2'));
  assert.equal(hex(attrs(m, 28, m.length).get(1)!), '20010db8' + '0'.repeat(23) + '2');
});

test('FDB requests: unicast vs flood MACs, and bad arguments (EINVAL, nothing queued)', () => {
  const b = new NetlinkBatch();
  b.appendFdb(4, '01:00:5e:00:00:01', '192.0.2.2'); // a multicast MAC also holds a list
  const before = b.w.bytes().length;
  const cases: Array<[string, () => unknown]> = [
    ['addFdb of the flood MAC', () => b.addFdb(4, FLOOD_MAC, '192.0.2.2')],
    ['addFdb of a multicast MAC', () => b.addFdb(4, '33:33:00:00:00:01', '192.0.2.2')],
    ['appendFdb of a unicast MAC', () => b.appendFdb(4, '02:00:00:00:00:05', '192.0.2.2')],
    ['bad MAC', () => b.addFdb(4, '02:00:00:00:00', '192.0.2.2')],
    ['bad MAC on delete', () => b.deleteFdb(4, 'nope')],
    ['bad remote', () => b.addFdb(4, '02:00:00:00:00:05', '192.0.2')],
    ['missing remote', () => b.appendFdb(4, FLOOD_MAC, undefined as unknown as string)],
    ['bad index', () => b.addFdb(0, '02:00:00:00:00:05', '192.0.2.2')],
    ['bad index on delete', () => b.deleteFdb(-1, FLOOD_MAC)],
  ];
  for (const [what, f] of cases) einval(f, what);
  assert.equal(b.size, 1);
  assert.equal(b.w.bytes().length, before);
});

test('parseFdb reads a `bridge fdb show dev vx0` dump (vxlan remotes and the bridge\'s entries for the port)', () => {
  // bridge fdb show dev vx0 printed:
  //   02:00:00:00:00:07 master br0 static
  //   02:00:00:00:aa:01 master br0 permanent
  //   02:00:00:00:00:05 dst 192.0.2.3 self permanent
  //   00:00:00:00:00:00 dst 192.0.2.2 self permanent
  //   00:00:00:00:00:00 dst 192.0.2.3 self permanent
  const got = msgs('fdbDumpVx0').map((m) => {
    assert.equal(m.readUInt16LE(4), RTM_NEWNEIGH);
    return parseFdb(m, 16, m.length);
  });
  const e = (mac: string, dst: string | null, self: boolean, master: number | null, permanent: boolean, state: number, flags: number): FdbInfo =>
    ({ index: 4, mac, dst, self, master, permanent, state, flags, port: null, vni: null });
  assert.deepEqual(got, [
    e('02:00:00:00:00:07', null, false, 5, false, 0x40, 0), // static: NUD_NOARP; the bridge's entries carry NDA_MASTER, not NTF_MASTER
    e('02:00:00:00:aa:01', null, false, 5, true, 0x80, 0),
    e('02:00:00:00:00:05', '192.0.2.3', true, null, true, 0xc0, 0x02),
    e(FLOOD_MAC, '192.0.2.2', true, null, true, 0xc0, 0x02), // one message per remote of the flood entry
    e(FLOOD_MAC, '192.0.2.3', true, null, true, 0xc0, 0x02),
  ]);
  // NDA_PORT (network order) and NDA_VNI when they differ from the device's; other families are not FDB entries
  const w = new NlWriter();
  w.begin(28, 0);
  w.ndmsg(7, 4, 0x80, 0x02, 0);
  w.bytesAttr(2, Buffer.from('020000000009', 'hex'), 0, 6);
  w.be16(6, 4790);
  w.u32(7, 99);
  w.end('x', 'x');
  const f = parseFdb(w.bytes(), 16, w.bytes().length)!;
  assert.deepEqual({ port: f.port, vni: f.vni, dst: f.dst }, { port: 4790, vni: 99, dst: null });
  const v4 = msgs('neighDumpVx0')[0];
  assert.equal(parseFdb(v4, 16, v4.length), null);
});

test('neighbour requests match what `ip neigh replace ... nud permanent` / `ip neigh del` send', () => {
  // ip neigh replace 10.90.0.3 lladdr 02:00:00:00:00:05 dev vx0 nud permanent
  let ref = msg('neighReplace');
  let m = one((b) => b.addNeighbour(4, '10.90.0.3', '02:00:00:00:00:05', { replace: true }));
  assert.equal(m.readUInt16LE(4), RTM_NEWNEIGH);
  assert.equal(m.readUInt16LE(6), ref.readUInt16LE(6) & ~NLM_F_ACK, 'REQUEST|CREATE|REPLACE');
  assert.equal(hex(m.subarray(16)), hex(ref.subarray(16)), 'ndmsg {AF_INET, 4, NUD_PERMANENT} + NDA_DST + NDA_LLADDR, byte for byte');
  m = one((b) => b.addNeighbour(4, '10.90.0.3', '02:00:00:00:00:05'));
  assert.equal(m.readUInt16LE(6), 0x1 | 0x400 | 0x200, 'without replace: REQUEST|CREATE|EXCL');
  m = one((b) => b.addNeighbour(4, '2001:db8:90::3', '02:00:00:00:00:05'));
  assert.equal(m[16], 10, 'AF_INET6');
  assert.deepEqual(asHex(attrs(m, 28, m.length)), { 1: '20010db8009' + '0'.repeat(20) + '3', 2: '020000000005' });
  // ip neigh del 10.90.0.3 dev vx0 (iproute2 also sends NUD_PERMANENT in the state; the kernel ignores it)
  ref = msg('neighDel');
  m = one((b) => b.deleteNeighbour(4, '10.90.0.3'));
  assert.equal(m.readUInt16LE(4), RTM_DELNEIGH);
  assert.equal(m.readUInt16LE(6), ref.readUInt16LE(6) & ~NLM_F_ACK);
  assert.equal(hex(m.subarray(16, 24)), hex(ref.subarray(16, 24)), 'family and ifindex');
  assert.equal(hex(m.subarray(28)), hex(ref.subarray(28)), 'NDA_DST');
  const b = new NetlinkBatch();
  for (const [what, f] of [
    ['bad IP', () => b.addNeighbour(4, '10.90.0', '02:00:00:00:00:05')],
    ['bad MAC', () => b.addNeighbour(4, '10.90.0.3', '02:00:00:00:00:0g')],
    ['bad index', () => b.addNeighbour(0, '10.90.0.3', '02:00:00:00:00:05')],
    ['bad IP on delete', () => b.deleteNeighbour(4, 'x')],
  ] as Array<[string, () => unknown]>) einval(f, what);
  assert.equal(b.size, 0);
});

test('parseNeighbour reads an `ip neigh show dev vx0` dump (permanent v4 and v6, and the kernel\'s own NOARP entry)', () => {
  // ip neigh show dev vx0 printed "10.90.0.3 lladdr 02:00:00:00:00:05 PERMANENT" and "2001:db8:90::3 lladdr
  // 02:00:00:00:00:05 PERMANENT"; it hides NOARP entries such as ff02::16 (made by the kernel for MLD)
  const got = msgs('neighDumpVx0').map((m) => {
    assert.equal(m.readUInt16LE(6) & 0x20, 0x20, 'NLM_F_DUMP_FILTERED: the kernel filtered by NDA_IFINDEX');
    return parseNeighbour(m, 16, m.length);
  });
  const n = (family: 4 | 6, ip: string, mac: string, permanent: boolean, state: number): NeighbourInfo =>
    ({ index: 4, family, ip, mac, permanent, state, flags: 0 });
  assert.deepEqual(got, [
    n(4, '10.90.0.3', '02:00:00:00:00:05', true, 0x80),
    n(6, '2001:db8:90::3', '02:00:00:00:00:05', true, 0x80),
    n(6, 'ff02::16', '33:33:00:00:00:16', false, 0x40),
  ]);
  // FDB messages and proxy entries are not neighbours; an entry without lladdr has mac null
  const f = msgs('fdbDumpVx0')[2];
  assert.equal(parseNeighbour(f, 16, f.length), null);
  const w = new NlWriter();
  w.begin(28, 0);
  w.ndmsg(2, 4, 0x01, 0x08, 1);
  w.bytesAttr(1, Buffer.from('0a5a0009', 'hex'), 0, 4);
  w.end('x', 'x');
  assert.equal(parseNeighbour(w.bytes(), 16, w.bytes().length), null, 'NTF_PROXY');
  w.reset();
  w.begin(28, 0);
  w.ndmsg(2, 4, 0x01, 0, 1);
  w.bytesAttr(1, Buffer.from('0a5a0009', 'hex'), 0, 4);
  w.end('x', 'x');
  assert.deepEqual(parseNeighbour(w.bytes(), 16, w.bytes().length),
    { index: 4, family: 4, ip: '10.90.0.9', mac: null, permanent: false, state: 1, flags: 0 });
});

test('dump requests: FDB of one port (ifinfomsg header), neighbours of one device (NDA_IFINDEX, as iproute2)', () => {
  const sent: Buffer[] = [];
  const fake = {
    dump(op: string, type: number, header: (w: NlWriter) => void) {
      const w = new NlWriter();
      w.begin(type, 0x301);
      header(w);
      w.end(op, op);
      sent.push(Buffer.from(w.bytes()));
      return [];
    },
  } as unknown as NetlinkSocket;
  assert.deepEqual(fdbEntries(fake, 4), []);
  assert.equal(sent[0].readUInt16LE(4), RTM_GETNEIGH);
  assert.equal(hex(sent[0].subarray(16)), '07000000' + '04000000' + '00000000' + '00000000',
    'a 16-byte ifinfomsg {AF_BRIDGE, ifindex 4}: without strict checking the kernel takes ifi_index as the port to dump');
  assert.deepEqual(neighbours(fake, 4), []);
  // ip neigh show dev vx0 sent: ndmsg {AF_UNSPEC, 0, ...} + NDA_IFINDEX 4
  assert.equal(hex(sent[1].subarray(16)), '000000000000000000000000' + '08000800' + '04000000');
  neighbours(fake, undefined, 6);
  assert.equal(hex(sent[2].subarray(16)), '0a0000000000000000000000', 'IPv6 only, every device');
  einval(() => fdbEntries(fake, 0), 'fdbEntries(0)');
  einval(() => neighbours(fake, 1.5), 'neighbours(1.5)');
  assert.equal(sent.length, 3);
});
