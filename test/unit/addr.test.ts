import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import {
  Addr, Prefix, canonicalAddr, canonicalPrefix, formatBytes, formatV4, isIP, isIPv4, isIPv6, parseInto,
  parseReverseName, parseReverseV4, parseV4, ulaPrefixFromId, ulaSubnet, v4Mask,
} from '../../src/util/addr.js';
import { formatIpv6 as netlinkFormatIpv6, parseIp as netlinkParseIp } from '../../src/kernel/netlink.js';
import { throwsUser } from '../helpers/user-error.js';


const A = (s: string) => {
  const a = Addr.tryParse(s, { zone: true });
  assert.ok(a, `${s} should parse`);
  return a;
};

test('IPv4: strict parse, uint32, canonical text', () => {
  const cases: Array<[string, number]> = [
    ['0.0.0.0', 0], ['1.2.3.4', 0x01020304], ['172.17.0.2', 0xac110002], ['255.255.255.255', 0xffffffff], ['10.0.0.1', 0x0a000001],
  ];
  for (const [s, n] of cases) {
    const a = A(s);
    assert.equal(a.family, 4);
    assert.equal(a.v4, n);
    assert.equal(a.big, BigInt(n));
    assert.equal(a.toString(), s);
    assert.equal(parseV4(s), n);
    assert.equal(formatV4(n), s);
    assert.deepEqual([...a.bytes()], [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
  }
  const bad: unknown[] = [
    '', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.004', '00.0.0.0', ' 1.2.3.4', '1.2.3.4 ', '1..2.3', '1.2.3.',
    '0x7f.0.0.1', '127.1', '2130706433', '1.2.3.4/32', '１.２.３.４', '1.2.3.-4', null, undefined, 16909060, {},
  ];
  for (const s of bad) {
    assert.equal(Addr.tryParse(s), null, JSON.stringify(s));
    assert.equal(parseV4(s as string), -1, JSON.stringify(s));
    assert.equal(isIP(s), 0, JSON.stringify(s));
  }
  assert.throws(() => formatV4(2 ** 32), RangeError);
  assert.throws(() => Addr.fromV4(-1), RangeError);
});

test('IPv6: RFC 5952 canonical text (lowercase, no leading zeros, longest zero run, first of equals)', () => {
  const cases: Array<[string, string]> = [
    ['2001:0db8:0000:0000:0000:0000:0002:0001', '2001:db8::2:1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // equal runs: the first one
    ['2001:db8:0:0:0:1:0:0', '2001:db8::1:0:0'], // the longest run
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // one zero group is never "::"
    ['2001:DB8::ABCD', '2001:db8::abcd'],
    ['2001:db8::0:1', '2001:db8::1'],
    ['0:0:0:0:0:0:0:0', '::'], ['::', '::'], ['0:0:0:0:0:0:0:1', '::1'], ['1:0:0:0:0:0:0:0', '1::'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'], ['::2:3:4:5:6:7:8', '0:2:3:4:5:6:7:8'],
    ['fd00:60:0::10', 'fd00:60::10'], ['FE80::0001', 'fe80::1'],
    ['::ffff:192.0.2.1', '::ffff:192.0.2.1'], ['::FFFF:c000:0201', '::ffff:192.0.2.1'], ['0:0:0:0:0:ffff:0:0', '::ffff:0.0.0.0'],
    ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'], ['::1.2.3.4', '::102:304'],
    ['ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
  ];
  for (const [s, want] of cases) {
    const a = A(s);
    assert.equal(a.family, 6, s);
    assert.equal(a.toString(), want, s);
    assert.equal(canonicalAddr(s), want, s);
    // The canonical text parses back to the same address.
    assert.ok(A(want).equals(a), want);
    assert.equal(isIPv6(s), true, s);
  }
});

test('IPv6: invalid spellings, zones only where allowed', () => {
  const bad = [
    ':::', '1::2::3', '1:2:3:4:5:6:7:8:9', '12345::', '::g', '1:2:3:4:5:6:7', ':1', '1:', '1:2:', '::1.2.3', '::1.2.3.04',
    '::256.1.1.1', '1.2.3.4::', '1:2:3:4:5:6:7:1.2.3.4', '1::2:3:4:5:6:7:8', ' ::1', '::1 ', '[::1]', '::1/128', 'fe80::1%',
    'fe80::1%eth/0', 'fe80::1%a%b', '::ffff:1.2.3.4.5', '1:2:3:4:5:6:1.2.3.4:7', 'g::', '::-1',
  ];
  for (const s of bad) {
    assert.equal(Addr.tryParse(s, { zone: true }), null, s);
    assert.equal(isIP(s), 0, s);
    // Node's own parser and the netlink codec agree these are not addresses.
    if (!s.includes('%')) assert.equal(net.isIP(s), 0, `node: ${s}`);
    assert.equal(netlinkParseIp(s), null, `netlink: ${s}`);
  }
  const z = Addr.tryParse('fe80::1%eth0', { zone: true });
  assert.ok(z);
  assert.equal(z.zone, 'eth0');
  assert.equal(z.toString(), 'fe80::1%eth0');
  assert.equal(z.withoutZone().toString(), 'fe80::1');
  assert.equal(Addr.tryParse('fe80::1%eth0'), null, 'no zone unless asked for');
  assert.equal(Addr.tryParse('1.2.3.4%eth0', { zone: true }), null, 'no zone on IPv4');
  assert.equal(isIPv6('fe80::1%eth0'), false);
  throwsUser(() => Addr.parse('fe80::1%eth0', 'IPv6 address'), 'invalid IPv6 address fe80::1%eth0 (a zone "%..." is not allowed here)');
  throwsUser(() => Addr.parse('10.0.0.01', 'gateway'), 'invalid gateway 10.0.0.01 (leading zeros are not allowed in IPv4 octets)');
  throwsUser(() => Addr.parse('10.0.0.0/8'), 'invalid IP address 10.0.0.0/8 (an address, not a CIDR block)');
  throwsUser(() => Addr.parse(' x'), 'invalid IP address " x"');
});

test('IPv6: agrees with node:net and the netlink codec on random addresses', () => {
  let seed = 12345;
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
  for (let i = 0; i < 3000; i++) {
    // Words with runs of zeros, so that every compression case comes up.
    const w = Array.from({ length: 8 }, () => (rnd() % 3 === 0 ? 0 : rnd() & 0xffff));
    const long = w.map((x) => x.toString(16).padStart(rnd() % 2 ? 4 : 1, '0')).join(':');
    const a = A(long);
    const text = a.toString();
    assert.equal(net.isIPv6(long), true, long);
    const nl = netlinkParseIp(long);
    assert.ok(nl && nl.length === 16);
    assert.equal(netlinkFormatIpv6(nl), text, long);
    assert.deepEqual([...a.bytes()], [...nl], long);
    if (!a.isV4Mapped()) assert.equal(new URL(`http://[${long}]/`).hostname, `[${text}]`, long);
  }
});

test('bytes: fromBytes / bytes / writeBytes / parseInto / formatBytes round trips', () => {
  for (const s of ['0.0.0.0', '192.168.1.254', '::', '::1', 'fd00:60::10', '2001:db8:1:2:3:4:5:6', '::ffff:10.0.0.1']) {
    const a = A(s);
    const b = a.bytes();
    assert.equal(b.length, a.family === 4 ? 4 : 16);
    assert.ok(Addr.fromBytes(b).equals(a), s);
    assert.equal(formatBytes(b), s);
    const out = new Uint8Array(20);
    assert.equal(parseInto(s, out, 2), a.family);
    assert.deepEqual([...out.subarray(2, 2 + b.length)], [...b]);
    assert.equal(formatBytes(out, 2, a.family), s);
    assert.ok(Addr.fromBytes(out, 2, a.family).equals(a));
    const w = new Uint8Array(16);
    assert.equal(a.writeBytes(w, 0), b.length);
    assert.deepEqual([...w.subarray(0, b.length)], [...b]);
  }
  assert.equal(parseInto('nope', new Uint8Array(16)), 0);
  assert.equal(parseInto('fe80::1%eth0', new Uint8Array(16)), 0);
  assert.throws(() => Addr.fromBytes(new Uint8Array(3)), RangeError);
});

test('compare and equals: IPv4 before IPv6, then by value', () => {
  const sorted = ['0.0.0.0', '10.0.0.2', '10.0.0.10', '255.255.255.255', '::', '::1', '::ffff:0.0.0.1', 'fd00::', 'fd00::1', 'ffff::'];
  const shuffled = [...sorted].reverse().map(A);
  shuffled.sort((x, y) => x.compare(y));
  assert.deepEqual(shuffled.map(String), sorted);
  assert.ok(A('fd00:0::1').equals(A('FD00::1')));
  assert.ok(!A('10.0.0.1').equals(A('::ffff:10.0.0.1')), 'an IPv4-mapped address is another family');
  assert.ok(A('::ffff:10.0.0.1').unmap().equals(A('10.0.0.1')));
  assert.ok(A('10.0.0.1').toV4Mapped().equals(A('::ffff:10.0.0.1')));
  assert.ok(A('fd00::1').unmap().equals(A('fd00::1')));
});

test('next, prev, add: both families, null past the ends', () => {
  assert.equal(String(A('10.0.0.255').next()), '10.0.1.0');
  assert.equal(String(A('10.0.1.0').prev()), '10.0.0.255');
  assert.equal(A('255.255.255.255').next(), null);
  assert.equal(A('0.0.0.0').prev(), null);
  assert.equal(String(A('fd00::ffff').next()), 'fd00::1:0');
  assert.equal(String(A('fd00::1:0').prev()), 'fd00::ffff');
  assert.equal(String(A('fd00::').add(2n)), 'fd00::2');
  assert.equal(String(A('::ffff:ffff:ffff:ffff').next()), '0:0:0:1::');
  assert.equal(A('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff').next(), null);
  assert.equal(A('::').prev(), null);
  assert.equal(String(A('10.0.0.1').add(256)), '10.0.1.1');
  assert.equal(String(A('10.0.0.1').add(-2n)), '9.255.255.255');
});

test('classification: loopback, link-local, multicast, unspecified, ULA', () => {
  const cases: Array<[string, string[]]> = [
    ['127.0.0.1', ['loopback']], ['127.255.0.9', ['loopback']], ['::1', ['loopback']], ['::ffff:127.0.0.1', ['loopback']],
    ['169.254.3.4', ['linklocal']], ['fe80::1', ['linklocal']], ['febf::1', ['linklocal']], ['fec0::1', []],
    ['224.0.0.1', ['multicast']], ['239.255.255.255', ['multicast']], ['ff02::1', ['multicast']], ['ff00::', ['multicast']],
    ['0.0.0.0', ['unspecified']], ['::', ['unspecified']],
    ['fd00::1', ['ula']], ['fc00::', ['ula']], ['fdff:ffff::', ['ula']], ['fe00::', []],
    ['10.0.0.1', []], ['2001:db8::1', []], ['::ffff:0.0.0.0', []], ['172.17.0.1', []],
  ];
  for (const [s, want] of cases) {
    const a = A(s);
    const got = [
      a.isLoopback() && 'loopback', a.isLinkLocal() && 'linklocal', a.isMulticast() && 'multicast',
      a.isUnspecified() && 'unspecified', a.isULA() && 'ula',
    ].filter(Boolean);
    assert.deepEqual(got, want, s);
  }
});

test('reverse-DNS names both ways', () => {
  assert.equal(A('10.1.0.2').reverseName(), '2.0.1.10.in-addr.arpa');
  assert.equal(A('2001:db8::567:89ab').reverseName(), 'b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa');
  for (const s of ['0.0.0.0', '255.255.255.255', '172.17.0.2', '::', '::1', 'fd00:60::10', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff']) {
    const a = A(s);
    const back = parseReverseName(a.reverseName());
    assert.ok(back && back.equals(a), s);
  }
  assert.equal(parseReverseV4('4.3.2.1.in-addr.arpa'), 0x01020304);
  const bad = [
    '3.2.1.in-addr.arpa', '04.3.2.1.in-addr.arpa', '256.3.2.1.in-addr.arpa', '5.4.3.2.1.in-addr.arpa', 'in-addr.arpa',
    '4.3.2.1.in-addr.arpa.', 'x.3.2.1.in-addr.arpa', '1.ip6.arpa', 'B.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa',
    'ba.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.', '4.3.2.1.example', '',
  ];
  for (const s of bad) assert.equal(parseReverseName(s), null, s);
  assert.equal(parseReverseV4('5.4.3.2.1.in-addr.arpa'), -1);
});

test('Prefix: parse, canonical text, host bits, errors naming the input', () => {
  const p = Prefix.parse('10.0.0.5/24');
  assert.equal(p.family, 4);
  assert.equal(p.bits, 24);
  assert.equal(String(p.addr), '10.0.0.5');
  assert.equal(String(p.network), '10.0.0.0');
  assert.equal(String(p.last), '10.0.0.255');
  assert.equal(p.mask, 0xffffff00);
  assert.equal(p.toString(), '10.0.0.0/24');
  assert.equal(p.written(), '10.0.0.5/24');
  assert.ok(p.hostBitsSet());
  assert.equal(p.size(), 256n);
  assert.equal(p.masked().toString(), '10.0.0.0/24');
  const q = Prefix.parse('FD00:60:0::/64');
  assert.equal(q.family, 6);
  assert.equal(q.toString(), 'fd00:60::/64');
  assert.equal(String(q.last), 'fd00:60::ffff:ffff:ffff:ffff');
  assert.equal(q.size(), 1n << 64n);
  assert.equal(q.mask, 0);
  assert.equal(Prefix.parse('::/0').toString(), '::/0');
  assert.equal(Prefix.parse('0.0.0.0/0').last.toString(), '255.255.255.255');
  assert.equal(Prefix.parse('10.0.0.1/32').last.toString(), '10.0.0.1');
  assert.equal(Prefix.parse('::1/128').last.toString(), '::1');
  assert.equal(canonicalPrefix('fd00:60:0:0::/64'), 'fd00:60::/64');
  assert.equal(canonicalPrefix('172.18.0.0/16'), '172.18.0.0/16');
  assert.equal(v4Mask(0), 0);
  assert.equal(v4Mask(32), 0xffffffff);

  const errors: Array<[string, string, string]> = [
    ['10.0.0.5/24', 'subnet', 'invalid subnet 10.0.0.5/24: host bits set, it should be 10.0.0.0/24'],
    ['fd00::5/64', 'subnet', 'invalid subnet fd00::5/64: host bits set, it should be fd00::/64'],
    ['fd00:60::1:0:0:0/64', 'subnet', 'it should be fd00:60::/64'],
    ['10.0.0.0/33', 'subnet', 'invalid subnet 10.0.0.0/33: prefix length must be 0..32'],
    ['fd00::/129', 'subnet', 'invalid subnet fd00::/129: prefix length must be 0..128'],
    ['fd00::/064', 'subnet', 'prefix length must be 0..128'],
    ['fd00::/', 'subnet', 'invalid subnet fd00::/: missing prefix length (expected an IPv6 prefix such as fd00::/64)'],
    ['fd00::', 'subnet', 'invalid subnet fd00::: missing prefix length'],
    ['1.2.3.4/', 'subnet', 'invalid subnet 1.2.3.4/: missing prefix length (expected a.b.c.d/N)'],
    ['fd00:::/64', 'ip-range', 'invalid ip-range fd00:::/64: fd00::: is not an IPv6 address (invalid CIDR block notation)'],
    ['256.0.0.0/8', 'subnet', '256.0.0.0 is not an IPv4 address'],
    ['fe80::%eth0/64', 'subnet', 'invalid subnet fe80::%eth0/64: a zone "%..." is not allowed in a prefix'],
    ['', 'subnet', 'invalid subnet "": invalid CIDR block notation'],
  ];
  for (const [s, what, msg] of errors) throwsUser(() => Prefix.parse(s, what, { strict: true }), msg);
  assert.equal(Prefix.tryParse('fd00::5/64', { strict: true }), null);
  assert.ok(Prefix.tryParse('fd00::5/64'));
  assert.equal(Prefix.tryParse(42), null);
});

test('Prefix: containment, overlap, covers, never across families', () => {
  const p = Prefix.parse('fd00:60::/64');
  assert.ok(p.contains(A('fd00:60::')));
  assert.ok(p.contains('fd00:60::ffff:ffff:ffff:ffff'));
  assert.ok(!p.contains('fd00:60:0:1::'));
  assert.ok(!p.contains('fd00:5f:ffff:ffff:ffff:ffff:ffff:ffff'));
  assert.ok(!p.contains('10.0.0.1'));
  assert.ok(!p.contains('garbage'));
  const v4 = Prefix.parse('10.0.0.0/8');
  assert.ok(v4.contains('10.255.255.255'));
  assert.ok(!v4.contains('11.0.0.0'));
  assert.ok(!v4.contains('::ffff:10.0.0.1'), 'an IPv4-mapped address is not in an IPv4 block');
  const cases: Array<[string, string, boolean, boolean]> = [
    // a, b, overlaps, a covers b
    ['10.0.0.0/8', '10.1.0.0/16', true, true], ['10.1.0.0/16', '10.0.0.0/8', true, false], ['10.0.0.0/24', '10.0.1.0/24', false, false],
    ['10.0.0.0/24', '10.0.0.0/24', true, true], ['fd00::/48', 'fd00:0:0:ffff::/64', true, true], ['fd00::/48', 'fd00:0:1::/64', false, false],
    ['fd00::/64', 'fd00::/48', true, false], ['::/0', '2001:db8::/32', true, true], ['0.0.0.0/0', '::/0', false, false],
    ['::ffff:0:0/96', '10.0.0.0/8', false, false],
  ];
  for (const [a, b, ov, cov] of cases) {
    const x = Prefix.parse(a);
    const y = Prefix.parse(b);
    assert.equal(x.overlaps(y), ov, `${a} overlaps ${b}`);
    assert.equal(y.overlaps(x), ov, `${b} overlaps ${a}`);
    assert.equal(x.covers(y), cov, `${a} covers ${b}`);
  }
});

test('Prefix: n-th address, offsets, sub-blocks', () => {
  const p = Prefix.parse('fd00:60::/64');
  assert.equal(String(p.nth(0)), 'fd00:60::');
  assert.equal(String(p.nth(1)), 'fd00:60::1');
  assert.equal(String(p.nth(2n)), 'fd00:60::2');
  assert.equal(String(p.nth((1n << 64n) - 1n)), 'fd00:60::ffff:ffff:ffff:ffff');
  assert.throws(() => p.nth(1n << 64n), RangeError);
  assert.throws(() => p.nth(-1), RangeError);
  assert.equal(p.indexOf(A('fd00:60::1:0')), 65536n);
  assert.throws(() => p.indexOf(A('fd00:61::')), RangeError);
  const v = Prefix.parse('172.18.0.0/16');
  assert.equal(String(v.nth(1)), '172.18.0.1');
  assert.equal(String(v.nth(65535)), '172.18.255.255');
  assert.equal(String(v.last), '172.18.255.255');
  assert.throws(() => v.nth(65536), RangeError);
  assert.equal(v.subnet(24, 3).toString(), '172.18.3.0/24');
  assert.equal(Prefix.parse('fd00::/48').subnet(64, 0xffff).toString(), 'fd00:0:0:ffff::/64');
  assert.throws(() => v.subnet(15, 0), RangeError);
  assert.throws(() => v.subnet(24, 256), RangeError);
});

test('ULA /48 from a stable host id (RFC 4193, as Docker 27+ derives it) and its /64s', () => {
  // Docker's own test vectors (libnetwork ipamutils TestDeriveULABaseNetwork).
  assert.equal(ulaPrefixFromId('').toString(), 'fd42:98fc:1c14::/48');
  assert.equal(ulaPrefixFromId('499d4bc0-b0b3-416f-b1ee-cf6486315593').toString(), 'fd62:fb69:18af::/48');
  const a = ulaPrefixFromId('nsnet/0a1b2c');
  assert.equal(a.toString(), ulaPrefixFromId('nsnet/0a1b2c').toString(), 'stable for one id');
  const b = ulaPrefixFromId('nsnet/0a1b2d');
  assert.notEqual(a.toString(), b.toString(), 'different for two ids');
  for (const p of [a, b]) {
    assert.equal(p.bits, 48);
    assert.ok(p.network.isULA());
    assert.ok(Prefix.parse('fd00::/8').covers(p), `${p} is in fd00::/8 (the L bit set)`);
    assert.ok(!p.hostBitsSet());
  }
  const base = Prefix.parse('fd42:98fc:1c14::/48');
  assert.equal(ulaSubnet(base, 0).toString(), 'fd42:98fc:1c14::/64');
  assert.equal(ulaSubnet(base, 1).toString(), 'fd42:98fc:1c14:1::/64');
  assert.equal(ulaSubnet(base, 0xffff).toString(), 'fd42:98fc:1c14:ffff::/64');
  assert.throws(() => ulaSubnet(base, 0x10000), RangeError);
  assert.throws(() => ulaSubnet(Prefix.parse('fd00::/64'), 0), RangeError);
});

test('isIP / isIPv4 / isIPv6', () => {
  assert.equal(isIP('1.2.3.4'), 4);
  assert.equal(isIP('::1'), 6);
  assert.equal(isIP('fe80::1%eth0'), 0);
  assert.equal(isIPv4('1.2.3.4'), true);
  assert.equal(isIPv4('::ffff:1.2.3.4'), false);
  assert.equal(isIPv6('::ffff:1.2.3.4'), true);
  assert.equal(isIPv6('1.2.3.4'), false);
  assert.equal(isIPv6(undefined), false);
});
