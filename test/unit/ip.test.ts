import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UserError, showValue } from '../../src/util/errors.js';
import {
  canonicalCidr, cidrContains, cidrInside, cidrOverlaps, formatIPv4, isIPv4, parseCidr, parseIPv4, prefixMask,
  tryParseCidr, tryParseIPv4,
} from '../../src/util/ip.js';
import { throwsUser } from '../helpers/user-error.js';


test('UserError: code, exitCode, name, instanceof', () => {
  const cases: Array<[UserError['code'], number]> = [['invalid', 2], ['notfound', 1], ['conflict', 1], ['refused', 1]];
  for (const [code, exit] of cases) {
    const e = new UserError('network oa-net not found', code);
    assert.ok(e instanceof Error);
    assert.ok(e instanceof UserError);
    assert.equal(e.code, code);
    assert.equal(e.exitCode, exit);
    assert.equal(e.name, 'UserError');
    assert.equal(e.message, 'network oa-net not found');
  }
  assert.equal(new UserError('x').code, 'invalid');
});

test('showValue: plain values bare, hostile values quoted and bounded', () => {
  const cases: Array<[string, string]> = [
    ['10.0.0.0/33', '10.0.0.0/33'],
    ['', '""'],
    [' ', '" "'],
    ['a b', '"a b"'],
    ['a\nb', '"a\\nb"'],
    ['é', '"é"'],
    ['a"b', '"a\\"b"'],
    ['evil\u202etxt.exe', '"evil\\u202etxt.exe"'],
    ['zero\u200bwidth', '"zero\\u200bwidth"'],
    ['line\u2028sep', '"line\\u2028sep"'],
    ['c1\u0085', '"c1\\u0085"'],
  ];
  for (const [input, want] of cases) assert.equal(showValue(input), want, JSON.stringify(input));
  const long = showValue('x'.repeat(10000));
  assert.ok(long.length < 100, long);
  assert.ok(long.includes('(10000 characters)'));
  assert.equal(showValue(42), '42');
});

test('isIPv4 accepts strict dotted quads', () => {
  for (const s of ['0.0.0.0', '255.255.255.255', '10.0.0.1', '172.17.0.2', '1.2.3.4', '192.168.100.200', '100.64.0.1']) {
    assert.equal(isIPv4(s), true, s);
  }
});

test('isIPv4 rejects everything else', () => {
  const bad: unknown[] = [
    '', ' ', '1.2.3', '1.2.3.4.5', '256.1.1.1', '1.256.1.1', '1.1.1.256', '300.0.0.0', '01.2.3.4', '1.02.3.4',
    '1.2.3.004', '00.0.0.0', '1.2.3.4 ', ' 1.2.3.4', '1.2.3.4\n', '1.2.3.-4', '+1.2.3.4', '1..2.3', '.1.2.3', '1.2.3.',
    'localhost', 'example.com', '0x7f.0.0.1', '0x7f000001', '2130706433', '127.1', '::1', '::ffff:1.2.3.4', 'fe80::1',
    '1.2.3.4/32', '1.2.3.4:80', '１.２.３.４', '١.٢.٣.٤', '1.2.3.4\u0000', '1e1.0.0.0', 'a.b.c.d', '1,2,3,4',
    '9'.repeat(1000), null, undefined, 16909060, {}, ['1.2.3.4'],
  ];
  for (const s of bad) assert.equal(isIPv4(s), false, JSON.stringify(s));
});

test('parseIPv4 / formatIPv4 round trip', () => {
  const cases: Array<[string, number]> = [
    ['0.0.0.0', 0], ['0.0.0.1', 1], ['1.2.3.4', 0x01020304], ['172.17.0.2', 0xac110002], ['127.0.0.1', 0x7f000001],
    ['128.0.0.0', 0x80000000], ['255.255.255.255', 0xffffffff], ['192.168.1.255', 0xc0a801ff],
  ];
  for (const [s, n] of cases) {
    assert.equal(parseIPv4(s), n, s);
    assert.equal(formatIPv4(n), s);
    assert.equal(tryParseIPv4(s), n);
  }
});

test('parseIPv4 errors name the value', () => {
  throwsUser(() => parseIPv4('256.1.1.1'), 'invalid IPv4 address 256.1.1.1');
  throwsUser(() => parseIPv4('localhost'), 'invalid IPv4 address localhost');
  throwsUser(() => parseIPv4(''), 'invalid IPv4 address ""');
  throwsUser(() => parseIPv4('01.2.3.4'), 'invalid IPv4 address 01.2.3.4');
  throwsUser(() => parseIPv4('::1'), 'IPv6 is not supported yet');
  throwsUser(() => parseIPv4('1.2.3.4\nrm -rf'), 'invalid IPv4 address "1.2.3.4\\nrm -rf"');
  throwsUser(() => parseIPv4('x', 'gateway'), 'invalid gateway x');
  assert.equal(tryParseIPv4('nope'), null);
});

test('formatIPv4 refuses non-addresses (programming errors)', () => {
  for (const n of [-1, 2 ** 32, 1.5, NaN, Infinity]) assert.throws(() => formatIPv4(n), RangeError, String(n));
});

test('prefixMask', () => {
  const cases: Array<[number, number]> = [[0, 0], [1, 0x80000000], [8, 0xff000000], [16, 0xffff0000], [24, 0xffffff00], [31, 0xfffffffe], [32, 0xffffffff]];
  for (const [p, m] of cases) assert.equal(prefixMask(p), m, String(p));
});

test('parseCidr: fields', () => {
  const cases: Array<[string, { addr: string; prefix: number; network: string; broadcast: string; size: number; canonical: string }]> = [
    ['10.0.0.0/24', { addr: '10.0.0.0', prefix: 24, network: '10.0.0.0', broadcast: '10.0.0.255', size: 256, canonical: '10.0.0.0/24' }],
    ['10.0.0.5/24', { addr: '10.0.0.5', prefix: 24, network: '10.0.0.0', broadcast: '10.0.0.255', size: 256, canonical: '10.0.0.0/24' }],
    ['172.17.0.0/16', { addr: '172.17.0.0', prefix: 16, network: '172.17.0.0', broadcast: '172.17.255.255', size: 65536, canonical: '172.17.0.0/16' }],
    ['192.168.16.0/20', { addr: '192.168.16.0', prefix: 20, network: '192.168.16.0', broadcast: '192.168.31.255', size: 4096, canonical: '192.168.16.0/20' }],
    ['0.0.0.0/0', { addr: '0.0.0.0', prefix: 0, network: '0.0.0.0', broadcast: '255.255.255.255', size: 2 ** 32, canonical: '0.0.0.0/0' }],
    ['1.2.3.4/32', { addr: '1.2.3.4', prefix: 32, network: '1.2.3.4', broadcast: '1.2.3.4', size: 1, canonical: '1.2.3.4/32' }],
    ['255.255.255.255/1', { addr: '255.255.255.255', prefix: 1, network: '128.0.0.0', broadcast: '255.255.255.255', size: 2 ** 31, canonical: '128.0.0.0/1' }],
    ['10.1.2.3/31', { addr: '10.1.2.3', prefix: 31, network: '10.1.2.2', broadcast: '10.1.2.3', size: 2, canonical: '10.1.2.2/31' }],
  ];
  for (const [s, w] of cases) {
    const c = parseCidr(s);
    assert.deepEqual(
      { addr: formatIPv4(c.addr), prefix: c.prefix, network: formatIPv4(c.network), broadcast: formatIPv4(c.broadcast), size: c.size, canonical: c.canonical },
      w, s);
    assert.equal(c.mask, prefixMask(c.prefix));
  }
});

test('parseCidr: bad syntax and prefixes', () => {
  const cases: Array<[string, string]> = [
    ['', 'invalid subnet "": invalid CIDR block notation'],
    [' ', 'invalid subnet " ": missing prefix length'],
    ['10.0.0.0', 'invalid subnet 10.0.0.0: missing prefix length'],
    ['1.2.3.4/', 'invalid subnet 1.2.3.4/: missing prefix length'],
    ['10.0.0.0/33', 'invalid subnet 10.0.0.0/33: prefix length must be 0..32'],
    ['10.0.0.0/-1', 'prefix length must be 0..32'],
    ['10.0.0.0/024', 'prefix length must be 0..32'],
    ['10.0.0.0/08', 'prefix length must be 0..32'],
    ['10.0.0.0/+8', 'prefix length must be 0..32'],
    ['10.0.0.0/8/8', 'prefix length must be 0..32'],
    ['10.0.0.0/ 8', 'prefix length must be 0..32'],
    ['10.0.0.0/8 ', 'prefix length must be 0..32'],
    ['10.0.0.0/1e1', 'prefix length must be 0..32'],
    ['10.0.0.0/99999999999999999999', 'prefix length must be 0..32'],
    ['256.1.1.1/8', 'invalid subnet 256.1.1.1/8: 256.1.1.1 is not an IPv4 address'],
    ['01.2.3.4/8', '01.2.3.4 is not an IPv4 address'],
    ['10.0.0/8', '10.0.0 is not an IPv4 address'],
    ['localhost/8', 'localhost is not an IPv4 address'],
    ['/8', '"" is not an IPv4 address'],
    [' 10.0.0.0/8', '" 10.0.0.0" is not an IPv4 address'],
    ['fd00::/64', 'invalid subnet fd00::/64: IPv6 is not supported yet'],
    ['::ffff:10.0.0.0/104', 'IPv6 is not supported yet'],
    ['10.0.0.0/8\n', 'invalid subnet "10.0.0.0/8\\n"'],
    ['x'.repeat(5000), '(5000 characters)'],
  ];
  for (const [s, msg] of cases) throwsUser(() => parseCidr(s, 'subnet'), msg);
  throwsUser(() => parseCidr('nope'), 'invalid CIDR nope');
  throwsUser(() => parseCidr('1.2.3.4/40', 'ip-range'), 'invalid ip-range 1.2.3.4/40');
});

test('tryParseCidr returns null instead of throwing', () => {
  assert.equal(tryParseCidr('garbage'), null);
  assert.equal(tryParseCidr('fd00::/8'), null);
  assert.equal(tryParseCidr(undefined), null);
  assert.equal(tryParseCidr(12), null);
  assert.equal(tryParseCidr('10.0.0.0/8')?.prefix, 8);
});

test('canonicalCidr: accepts blocks, refuses host bits with the fix', () => {
  for (const s of ['10.0.0.0/24', '0.0.0.0/0', '172.18.0.0/16', '1.2.3.4/32', '192.168.240.0/20']) assert.equal(canonicalCidr(s), s);
  const bad: Array<[string, string, string]> = [
    ['10.0.0.5/24', 'subnet', 'invalid subnet 10.0.0.5/24: host bits set, it should be 10.0.0.0/24'],
    ['172.17.0.1/16', 'subnet', 'it should be 172.17.0.0/16'],
    ['10.0.0.1/0', 'subnet', 'it should be 0.0.0.0/0'],
    ['192.168.17.0/20', 'ip-range', 'invalid ip-range 192.168.17.0/20: host bits set, it should be 192.168.16.0/20'],
    ['10.0.0.0/33', 'subnet', 'prefix length must be 0..32'],
  ];
  for (const [s, what, msg] of bad) throwsUser(() => canonicalCidr(s, what), msg);
});

test('cidrContains', () => {
  const cases: Array<[string, string | number, boolean]> = [
    ['10.0.0.0/24', '10.0.0.0', true], ['10.0.0.0/24', '10.0.0.255', true], ['10.0.0.0/24', '10.0.0.17', true],
    ['10.0.0.0/24', '10.0.1.0', false], ['10.0.0.0/24', '9.255.255.255', false], ['0.0.0.0/0', '255.255.255.255', true],
    ['1.2.3.4/32', '1.2.3.4', true], ['1.2.3.4/32', '1.2.3.5', false], ['10.0.0.5/24', '10.0.0.1', true],
    ['10.0.0.0/8', 0x0a000001, true], ['10.0.0.0/8', 0x0b000000, false],
  ];
  for (const [c, ip, want] of cases) assert.equal(cidrContains(c, ip), want, `${c} ${ip}`);
  throwsUser(() => cidrContains('10.0.0.0/8', 'ten'), 'invalid IPv4 address ten');
  throwsUser(() => cidrContains('10.0.0.0/80', '10.0.0.1'), 'prefix length must be 0..32');
});

test('cidrOverlaps is symmetric', () => {
  const cases: Array<[string, string, boolean]> = [
    ['10.0.0.0/8', '10.1.0.0/16', true], ['10.0.0.0/24', '10.0.1.0/24', false], ['10.0.0.0/24', '10.0.0.0/24', true],
    ['10.0.0.0/23', '10.0.1.0/24', true], ['0.0.0.0/0', '1.2.3.4/32', true], ['172.17.0.0/16', '172.18.0.0/16', false],
    ['192.168.0.0/20', '192.168.15.255/32', true], ['192.168.0.0/20', '192.168.16.0/32', false],
    ['10.0.0.128/25', '10.0.0.0/25', false], ['10.0.0.5/24', '10.0.0.200/30', true],
  ];
  for (const [a, b, want] of cases) {
    assert.equal(cidrOverlaps(a, b), want, `${a} ${b}`);
    assert.equal(cidrOverlaps(b, a), want, `${b} ${a}`);
  }
});

test('cidrInside', () => {
  const cases: Array<[string, string, boolean]> = [
    ['10.1.0.0/16', '10.0.0.0/8', true], ['10.0.0.0/8', '10.1.0.0/16', false], ['10.0.0.0/24', '10.0.0.0/24', true],
    ['10.0.1.0/24', '10.0.0.0/24', false], ['10.0.0.0/23', '10.0.1.0/24', false], ['1.2.3.4/32', '0.0.0.0/0', true],
    ['0.0.0.0/0', '1.2.3.4/32', false], ['172.18.5.0/24', '172.18.0.0/16', true],
  ];
  for (const [i, o, want] of cases) assert.equal(cidrInside(i, o), want, `${i} in ${o}`);
  const parsed = parseCidr('10.0.0.0/8');
  assert.equal(cidrInside(parseCidr('10.9.0.0/16'), parsed), true);
  assert.equal(cidrOverlaps(parsed, '11.0.0.0/8'), false);
  assert.equal(cidrContains(parsed, '10.255.255.255'), true);
});
