// Unit tests of the pure parts of src/kernel/netlink.ts: address text <-> bytes, interface names, and the
// byte layout of encoded rtnetlink requests. No sockets, no namespaces.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  NetlinkBatch, NetlinkError, NlWriter, formatIp, formatIpv6, formatMac, parseIp, parseLink, parseMac, validIfName,
} from '../../src/kernel/netlink.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

test('IPv4 text <-> bytes', () => {
  assert.equal(hex(parseIp('192.0.2.1')!), 'c0000201');
  assert.equal(hex(parseIp('0.0.0.0')!), '00000000');
  assert.equal(hex(parseIp('255.255.255.255')!), 'ffffffff');
  for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.-4', '1..2.3', ' 1.2.3.4', '1.2.3.4 ', 'a.b.c.d', 'localhost']) {
    assert.equal(parseIp(bad), null, bad);
  }
  assert.equal(formatIp(parseIp('10.0.0.254')!), '10.0.0.254');
});

test('IPv6 text <-> bytes, RFC 5952 output', () => {
  assert.equal(hex(parseIp('::')!), '0'.repeat(32));
  assert.equal(hex(parseIp('::1')!), '0'.repeat(31) + '1');
  assert.equal(hex(parseIp('2001:db8::1')!), '20010db8' + '0'.repeat(23) + '1');
  assert.equal(hex(parseIp('fe80::')!), 'fe80' + '0'.repeat(28));
  assert.equal(hex(parseIp('::ffff:192.0.2.1')!), '0'.repeat(20) + 'ffffc0000201');
  assert.equal(hex(parseIp('1:2:3:4:5:6:7:8')!), '00010002000300040005000600070008');
  assert.equal(hex(parseIp('2001:DB8:0:0:0:0:0:A')!), '20010db8' + '0'.repeat(20) + '000a');
  for (const bad of [':', ':::', '1::2::3', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', '12345::', 'g::', ':1::', '1::2:',
    'fe80::1%eth0', '1.2.3.4::', '::1.2.3', '1:2:3:4:5:6:7:8::']) {
    assert.equal(parseIp(bad), null, bad);
  }
  const round = (s: string): string => formatIp(parseIp(s)!);
  assert.equal(round('2001:0db8:0000:0000:0000:0000:0000:0001'), '2001:db8::1');
  assert.equal(round('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1'); // first of equal runs
  assert.equal(round('2001:db8:0:1:1:1:1:1'), '2001:db8:0:1:1:1:1:1'); // a single 0 group is not compressed
  assert.equal(round('0:0:0:0:0:0:0:0'), '::');
  assert.equal(round('1:0:0:0:0:0:0:0'), '1::');
  assert.equal(round('0:0:0:0:0:ffff:c000:201'), '::ffff:192.0.2.1');
  assert.equal(round('fe80:0:0:0:0:0:0:1'), 'fe80::1');
  assert.equal(formatIpv6(Buffer.from('00000000000000000000000000000001', 'hex')), '::1');
  assert.throws(() => formatIp(new Uint8Array(5)), RangeError);
});

test('MAC text <-> bytes', () => {
  assert.equal(hex(parseMac('02:42:AC:11:00:02')!), '0242ac110002');
  for (const bad of ['', '02:42:ac:11:00', '02:42:ac:11:00:02:03', '0242.ac11.0002', '02-42-ac-11-00-02', 'zz:42:ac:11:00:02']) {
    assert.equal(parseMac(bad), null, bad);
  }
  assert.equal(formatMac(Buffer.from('0242ac110002', 'hex')), '02:42:ac:11:00:02');
  assert.equal(formatMac(Buffer.alloc(0)), '');
});

test('interface names', () => {
  for (const ok of ['eth0', 'br-0123456789ab', 'a', 'veth.1', 'x'.repeat(15)]) assert.ok(validIfName(ok), ok);
  for (const bad of ['', 'x'.repeat(16), '.', '..', 'a/b', 'a:b', 'a b', 'tab\t', 'éééééééé']) assert.ok(!validIfName(bad), bad);
});

/** Minimal attribute walker for checking encodings. */
function attrs(b: Buffer, start: number, end: number): Map<number, Buffer> {
  const m = new Map<number, Buffer>();
  for (let a = start; a + 4 <= end;) {
    const len = b.readUInt16LE(a);
    m.set(b.readUInt16LE(a + 2) & 0x3fff, b.subarray(a + 4, a + len));
    a += (len + 3) & ~3;
  }
  return m;
}

test('encoding: veth create with the peer in another netns', () => {
  const batch = new NetlinkBatch();
  batch.createVeth('vh0', 'eth0', 7, { master: 3, mtu: 1450, peerMac: '02:00:00:00:00:02', up: true });
  assert.equal(batch.size, 1);
  const m = batch.w.bytes();
  assert.equal(m.readUInt32LE(0), m.length, 'nlmsg_len covers the message');
  assert.equal(m.length % 4, 0);
  assert.equal(m.readUInt16LE(4), 16, 'RTM_NEWLINK');
  assert.equal(m.readUInt16LE(6), 0x1 | 0x200 | 0x400, 'REQUEST|EXCL|CREATE (ACK is added when sent)');
  // ifinfomsg: family 0, index 0, flags IFF_UP, change IFF_UP
  assert.equal(m[16], 0);
  assert.equal(m.readInt32LE(20), 0);
  assert.equal(m.readUInt32LE(24), 1);
  assert.equal(m.readUInt32LE(28), 1);
  const top = attrs(m, 32, m.length);
  assert.equal(top.get(3)!.toString(), 'vh0\0', 'IFLA_IFNAME with NUL');
  assert.equal(top.get(4)!.readUInt32LE(0), 1450, 'IFLA_MTU');
  assert.equal(top.get(10)!.readUInt32LE(0), 3, 'IFLA_MASTER');
  assert.equal(top.has(20), false, 'no IFLA_IFALIAS (the kernel ignores it on create)');
  const li = top.get(18)!;
  const info = attrs(li, 0, li.length);
  assert.equal(info.get(1)!.toString(), 'veth', 'IFLA_INFO_KIND');
  const data = attrs(info.get(2)!, 0, info.get(2)!.length);
  const peer = data.get(1)!; // VETH_INFO_PEER = ifinfomsg + attributes
  assert.equal(peer.readUInt32LE(8), 0, 'the peer is not set up in the create (pitfall 7)');
  const pa = attrs(peer, 16, peer.length);
  assert.equal(pa.get(3)!.toString(), 'eth0\0');
  assert.equal(pa.get(28)!.readUInt32LE(0), 7, 'IFLA_NET_NS_FD');
  assert.equal(hex(pa.get(1)!), '020000000002', 'IFLA_ADDRESS');
  assert.equal(pa.get(4)!.readUInt32LE(0), 1450);
});

test('encoding: addresses and routes', () => {
  const b = new NetlinkBatch();
  b.addAddress(5, '192.0.2.10', 24, { broadcast: '+' });
  b.addRoute({ dst: '0.0.0.0', prefixLen: 0, gateway: '192.0.2.1' });
  b.addRoute({ dst: '2001:db8::', prefixLen: 64, oif: 5, table: 1000 });
  assert.equal(b.size, 3);
  const m = b.w.bytes();
  // 1: RTM_NEWADDR, ifaddrmsg {AF_INET, 24, 0, universe, 5}, IFA_LOCAL = IFA_ADDRESS, IFA_BROADCAST computed
  let o = 0;
  assert.equal(m.readUInt16LE(o + 4), 20);
  assert.deepEqual([...m.subarray(o + 16, o + 20)], [2, 24, 0, 0]);
  assert.equal(m.readUInt32LE(o + 20), 5);
  let a = attrs(m, o + 24, o + m.readUInt32LE(o));
  assert.equal(hex(a.get(2)!), 'c000020a');
  assert.equal(hex(a.get(1)!), 'c000020a');
  assert.equal(hex(a.get(4)!), 'c00002ff');
  // 2: RTM_NEWROUTE default via gateway: no RTA_DST, scope universe, proto boot, main table
  o += m.readUInt32LE(o);
  assert.equal(m.readUInt16LE(o + 4), 24);
  assert.deepEqual([...m.subarray(o + 16, o + 24)], [2, 0, 0, 0, 254, 3, 0, 1]);
  a = attrs(m, o + 28, o + m.readUInt32LE(o));
  assert.equal(a.has(1), false);
  assert.equal(hex(a.get(5)!), 'c0000201');
  assert.equal(a.get(15)!.readUInt32LE(0), 254);
  // 3: IPv6 on-link route in table 1000 (rtm_table RT_TABLE_UNSPEC + RTA_TABLE)
  o += m.readUInt32LE(o);
  assert.deepEqual([...m.subarray(o + 16, o + 24)], [10, 64, 0, 0, 0, 3, 0, 1]);
  a = attrs(m, o + 28, o + m.readUInt32LE(o));
  assert.equal(hex(a.get(1)!), '20010db8' + '0'.repeat(24));
  assert.equal(a.get(4)!.readUInt32LE(0), 5);
  assert.equal(a.get(15)!.readUInt32LE(0), 1000);
  assert.equal(o + m.readUInt32LE(o), m.length);
});

test('encoding: invalid arguments throw EINVAL and leave no partial message', () => {
  const b = new NetlinkBatch();
  b.setUp(2);
  const before = b.w.bytes().length;
  for (const f of [
    () => b.createVeth('vh0', 'eth0', 3, { peerMac: 'nope' }),
    () => b.addAddress(2, '10.0.0.1', 40),
    () => b.addRoute({ dst: '10.0.0.0', prefixLen: 8, gateway: '::1' }),
    () => b.setMac(2, '02:00:00:00:00'),
    () => b.createBridge('x'.repeat(16)),
    () => b.setName(2, 'a/b'),
    () => b.setName(2, 'x'.repeat(16)),
  ]) {
    assert.throws(f, (e: unknown) => e instanceof NetlinkError && e.code === 'EINVAL' && e.errno === 22);
  }
  assert.equal(b.size, 1);
  assert.equal(b.w.bytes().length, before);
  b.setDown(2);
  assert.equal(b.size, 2);
  const m = b.w.bytes();
  assert.equal(m.readUInt16LE(m.readUInt32LE(0) + 4), 19, 'the next message follows the first one directly');
});

test('encoding: rename (RTM_SETLINK with a NUL-terminated IFLA_IFNAME)', () => {
  const b = new NetlinkBatch();
  b.setName(7, 'nsd1234');
  const m = b.w.bytes();
  assert.equal(m.readUInt16LE(4), 19, 'RTM_SETLINK');
  assert.equal(m.readInt32LE(16 + 4), 7, 'ifindex');
  assert.equal(m.readUInt16LE(32), 4 + 8, 'attribute length: the name and its NUL');
  assert.equal(m.readUInt16LE(34), 3, 'IFLA_IFNAME');
  assert.equal(m.subarray(36, 44).toString('latin1'), 'nsd1234\0');
});

test('NlWriter grows and pads', () => {
  const w = new NlWriter(16);
  w.begin(19, 1);
  w.ifinfomsg(0, 1, 0, 0);
  w.str(20, 'abcde', false); // 4 + 5 -> padded to 12
  w.end('x', 'x');
  const m = w.bytes();
  assert.equal(m.length, 16 + 16 + 12);
  assert.equal(m.readUInt16LE(32), 9);
  assert.deepEqual([...m.subarray(41, 44)], [0, 0, 0]);
});

test('parseLink reads an RTM_NEWLINK payload', () => {
  const w = new NlWriter();
  w.begin(16, 0);
  w.ifinfomsg(0, 7, 0x1 | 0x40, 0);
  w.str(3, 'br-x', true);
  w.u32(4, 1500);
  w.u32(10, 3);
  w.str(20, 'nsnet', false);
  w.bytesAttr(1, Buffer.from('0242ac110001', 'hex'), 0, 6);
  const li = w.nestStart(18 | 0x8000);
  w.str(1, 'bridge', true);
  w.nestEnd(li);
  w.u32(16, 6); // IFLA_OPERSTATE is a u8; the rest is padding
  w.end('x', 'x');
  const m = w.bytes();
  assert.deepEqual(parseLink(m, 16, m.length), {
    index: 7, name: 'br-x', kind: 'bridge', master: 3, alias: 'nsnet', mac: '02:42:ac:11:00:01', mtu: 1500,
    up: true, operUp: true, operState: 'up', flags: 0x41,
  });
});

test('forEachAttr walks attributes (flags stripped, padding skipped), stops on request and at a malformed one', async () => {
  const { forEachAttr, NLA_F_NESTED } = await import('../../src/kernel/netlink/wire.js');
  const w = new NlWriter();
  w.begin(16, 1);
  w.str(3, 'eth0', true); // 5 bytes of payload, padded to 8
  const n = w.nestStart(18 | NLA_F_NESTED);
  w.u32(1, 7);
  w.nestEnd(n);
  w.u8(4, 9);
  w.end('t', 't');
  const b = w.bytes();
  const seen: Array<[number, number]> = [];
  forEachAttr(b, 16, b.length, (t, s, e) => { seen.push([t, e - s]); });
  assert.deepEqual(seen, [[3, 5], [18, 8], [4, 1]]);
  const first: number[] = [];
  forEachAttr(b, 16, b.length, (t) => { first.push(t); return true; });
  assert.deepEqual(first, [3], 'stops when the callback returns true');
  const bad = Buffer.from(b);
  bad.writeUInt16LE(200, 16 + 12); // the second attribute (after 4 + 5 bytes, padded to 12) claims more bytes than the message has
  const some: number[] = [];
  forEachAttr(bad, 16, bad.length, (t) => { some.push(t); });
  assert.deepEqual(some, [3], 'a malformed attribute ends the walk');
});
