// IPAM for IPv6 and for both families (the IPv4-only behaviour is ipam.test.ts, unchanged).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UserError } from '../../src/util/errors.js';
import { Prefix, ulaPrefixFromId } from '../../src/util/addr.js';
import {
  MAX_SUBNET6_PREFIX, MIN_SUBNET6_PREFIX, allocateIp, checkStaticIp, dynamicBounds6, pickSubnet6, planDualIpam,
  planNetworkIpam, planNetworkIpam6, type IpamNetwork,
} from '../../src/ipam/ipam.js';
import { throwsUser } from '../helpers/user-error.js';


const ULA = 'fd42:98fc:1c14::/48'; // ulaPrefixFromId('')
const EXHAUSTED6 = 'could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network';

test('pickSubnet6: the first /64 of the ULA /48 clear of every taken IPv6 block', () => {
  assert.equal(ulaPrefixFromId('').toString(), ULA);
  const cases: Array<[string[], string, string]> = [
    [[], 'fd42:98fc:1c14::/64', 'nothing taken'],
    [['fd42:98fc:1c14::/64'], 'fd42:98fc:1c14:1::/64', 'the first taken'],
    [['fd42:98fc:1c14::/64', 'fd42:98fc:1c14:2::/64'], 'fd42:98fc:1c14:1::/64', 'a hole'],
    [['fd42:98fc:1c14::/60'], 'fd42:98fc:1c14:10::/64', 'a /60 route covers sixteen /64s'],
    [['fd42:98fc:1c14:0:8000::/65'], 'fd42:98fc:1c14:1::/64', 'half a /64 makes it unusable'],
    [['fd42:98fc:1c14::1'], 'fd42:98fc:1c14:1::/64', 'a bare address (read as /128)'],
    [['fd42:98fc:1c14::5/64'], 'fd42:98fc:1c14:1::/64', 'host bits accepted'],
    [['::/0', 'fe80::/64', '172.18.0.0/16', 'garbage', '', '10.0.0.1'], 'fd42:98fc:1c14::/64', 'default route, link-local, IPv4 and junk ignored'],
    [['fd42:98fc:1c13::/48', 'fd42:98fc:1c15::/48'], 'fd42:98fc:1c14::/64', 'the neighbours of the /48'],
    [['fd42:98fc:1c14:1::/64', 'fd42:98fc:1c14::/63', 'fd42:98fc:1c14::/64'], 'fd42:98fc:1c14:2::/64', 'nested and unordered'],
  ];
  for (const [taken, want, why] of cases) assert.equal(pickSubnet6(taken, ULA), want, why);
  for (const taken of [['fd42:98fc:1c14::/48'], ['fd00::/8'], ['fd42:98fc:1c14::/49', 'fd42:98fc:1c14:8000::/49']]) {
    throwsUser(() => pickSubnet6(taken, ULA), EXHAUSTED6, 'refused', JSON.stringify(taken));
  }
  assert.equal(pickSubnet6([], Prefix.parse(ULA)), 'fd42:98fc:1c14::/64', 'a Prefix as the base');
});

test('pickSubnet6: thousands of taken /64s stay fast', () => {
  const base = Prefix.parse(ULA);
  const taken: string[] = [];
  for (let k = 0; k < 20000; k++) taken.push(base.subnet(64, k).toString());
  taken.reverse();
  const t0 = performance.now();
  assert.equal(pickSubnet6(taken, ULA), base.subnet(64, 20000).toString());
  assert.ok(performance.now() - t0 < 1000, `${performance.now() - t0} ms`);
});

test('planNetworkIpam6: valid plans', () => {
  const cases: Array<[Parameters<typeof planNetworkIpam6>[0], string[], ReturnType<typeof planNetworkIpam6>]> = [
    [{}, [], { subnet: 'fd42:98fc:1c14::/64', gateway: 'fd42:98fc:1c14::1', ipRange: null }],
    [{ subnet: '', gateway: '', ipRange: '' }, ['fd42:98fc:1c14::/64'], { subnet: 'fd42:98fc:1c14:1::/64', gateway: 'fd42:98fc:1c14:1::1', ipRange: null }],
    [{ subnet: 'fd00:60::/64' }, [], { subnet: 'fd00:60::/64', gateway: 'fd00:60::1', ipRange: null }],
    [{ subnet: 'FD00:0060:0000::/64', gateway: 'fd00:60:0::fe' }, [], { subnet: 'fd00:60::/64', gateway: 'fd00:60::fe', ipRange: null }],
    [{ subnet: 'fd00:60::/64', ipRange: 'fd00:60::100/120' }, [], { subnet: 'fd00:60::/64', gateway: 'fd00:60::1', ipRange: 'fd00:60::100/120' }],
    [{ subnet: '2001:db8:1::/48' }, ['2001:db8:2::/48', '10.0.0.0/8'], { subnet: '2001:db8:1::/48', gateway: '2001:db8:1::1', ipRange: null }],
    [{ subnet: 'fd00:61::/120' }, [], { subnet: 'fd00:61::/120', gateway: 'fd00:61::1', ipRange: null }],
    [{ subnet: 'fd00:61::/64', gateway: 'fd00:61::ffff:ffff:ffff:ffff' }, [], { subnet: 'fd00:61::/64', gateway: 'fd00:61::ffff:ffff:ffff:ffff', ipRange: null }],
    [{ subnet: 'fd00:62::/64' }, ['fe80::/64', '::/0', 'fd00:63::/64'], { subnet: 'fd00:62::/64', gateway: 'fd00:62::1', ipRange: null }],
  ];
  for (const [req, taken, want] of cases) assert.deepEqual(planNetworkIpam6(req, taken, ULA), want, JSON.stringify(req));
  assert.equal(MAX_SUBNET6_PREFIX, 120);
  assert.equal(MIN_SUBNET6_PREFIX, 48);
});

test('planNetworkIpam6: refused plans, one clear line each', () => {
  const cases: Array<[Parameters<typeof planNetworkIpam6>[0], string[], string, UserError['code']]> = [
    [{ gateway: 'fd00::1' }, [], 'every ip-range or gateway must have a corresponding subnet', 'invalid'],
    [{ ipRange: 'fd00::/120' }, [], 'every ip-range or gateway must have a corresponding subnet', 'invalid'],
    [{ subnet: 'fd00:60::/121' }, [], 'invalid subnet fd00:60::/121: too small, an IPv6 network needs at least a /120', 'invalid'],
    [{ subnet: 'fd00::1/128' }, [], 'invalid subnet fd00::1/128: too small', 'invalid'],
    [{ subnet: 'fd00::/47' }, [], 'invalid subnet fd00::/47: too large, an IPv6 network may be at most a /48', 'invalid'],
    [{ subnet: '::/0' }, [], 'invalid subnet ::/0: too large', 'invalid'],
    [{ subnet: 'fe80::/64' }, [], 'invalid subnet fe80::/64: overlaps the link-local block fe80::/10', 'invalid'],
    [{ subnet: 'febf:ffff::/64' }, [], 'overlaps the link-local block fe80::/10', 'invalid'],
    [{ subnet: 'ff02::/64' }, [], 'invalid subnet ff02::/64: overlaps the multicast block ff00::/8', 'invalid'],
    [{ subnet: '::/64' }, [], 'invalid subnet ::/64: overlaps the unspecified address ::/128', 'invalid'],
    [{ subnet: '::ffff:10.0.0.0/120' }, [], 'invalid subnet ::ffff:10.0.0.0/120: overlaps the IPv4-mapped block ::ffff:0:0/96', 'invalid'],
    [{ subnet: 'fd00::5/64' }, [], 'invalid subnet fd00::5/64: host bits set, it should be fd00::/64', 'invalid'],
    [{ subnet: 'fd00::/129' }, [], 'invalid subnet fd00::/129: prefix length must be 0..128', 'invalid'],
    [{ subnet: 'fd00::' }, [], 'invalid subnet fd00::: missing prefix length', 'invalid'],
    [{ subnet: '10.0.0.0/24' }, [], 'invalid subnet 10.0.0.0/24: not an IPv6 subnet', 'invalid'],
    [{ subnet: 'fd00:60::/64', ipRange: 'fd00:61::/120' }, [], "invalid ip-range fd00:61::/120: parent subnet fd00:60::/64 doesn't contain ip-range", 'invalid'],
    [{ subnet: 'fd00:60::/64', ipRange: 'fd00:60::/56' }, [], 'invalid ip-range fd00:60::/56: CIDR block is bigger than its parent subnet fd00:60::/64', 'invalid'],
    [{ subnet: 'fd00:60::/64', ipRange: 'fd00:60::1/120' }, [], 'invalid ip-range fd00:60::1/120: host bits set, it should be fd00:60::/120', 'invalid'],
    [{ subnet: 'fd00:60::/64', ipRange: '10.0.0.0/24' }, [], 'invalid ip-range 10.0.0.0/24: not an IPv6 block', 'invalid'],
    [{ subnet: 'fd00:60::/64', ipRange: 'fd00:60::/127' }, [], 'invalid ip-range fd00:60::/127: it holds no address for containers', 'invalid'],
    [{ subnet: 'fd00:60::/64', ipRange: 'fd00:60::6/128', gateway: 'fd00:60::6' }, [], 'it holds no address for containers', 'invalid'],
    [{ subnet: 'fd00:60::/64', gateway: 'fd00:61::1' }, [], "invalid gateway fd00:61::1: parent subnet fd00:60::/64 doesn't contain this address", 'invalid'],
    [{ subnet: 'fd00:60::/64', gateway: 'fd00:60::' }, [], 'invalid gateway fd00:60::: it is the network address of fd00:60::/64', 'invalid'],
    [{ subnet: 'fd00:60::/64', gateway: '10.0.0.1' }, [], 'invalid gateway 10.0.0.1: not an IPv6 address', 'invalid'],
    [{ subnet: 'fd00:60::/64', gateway: 'fe80::1%eth0' }, [], 'invalid gateway fe80::1%eth0: not an IPv6 address', 'invalid'],
    [{ subnet: 'fd00:60::/64' }, ['fd00:60::/64'], 'invalid pool request: Pool overlaps with other one on this address space (fd00:60::/64 overlaps fd00:60::/64)', 'conflict'],
    [{ subnet: 'fd00:60::/64' }, ['10.0.0.0/8', 'fd00::/16'], 'Pool overlaps with other one on this address space (fd00:60::/64 overlaps fd00::/16)', 'conflict'],
    [{ subnet: 'fd00:60::/48' }, ['fd00:60:0:7::/64'], '(fd00:60::/48 overlaps fd00:60:0:7::/64)', 'conflict'],
    [{ subnet: 'fd00:60::/64' }, ['fd00:60::77'], 'Pool overlaps with other one on this address space', 'conflict'],
    [{}, ['fd42:98fc:1c14::/48'], EXHAUSTED6, 'refused'],
  ];
  for (const [req, taken, msg, code] of cases) throwsUser(() => planNetworkIpam6(req, taken, ULA), msg, code, JSON.stringify(req));
});

test('planDualIpam: both families from Docker options', () => {
  const taken = ['172.18.0.0/16', 'fd42:98fc:1c14::/64'];
  // IPv4 only (the default): exactly planNetworkIpam.
  assert.deepEqual(planDualIpam({}, taken, ULA), {
    ipv4: planNetworkIpam({}, taken), ipv6: null, pickedIPv4: true, pickedIPv6: false,
  });
  assert.deepEqual(planDualIpam({ subnets: ['10.60.0.0/24'], gateways: ['10.60.0.254'] }, taken, ULA), {
    ipv4: { subnet: '10.60.0.0/24', gateway: '10.60.0.254', ipRange: null }, ipv6: null, pickedIPv4: false, pickedIPv6: false,
  });
  // --ipv6 dual: the IPv4 pool + a /64 of the ULA /48.
  assert.deepEqual(planDualIpam({ ipv6: true }, taken, ULA), {
    ipv4: { subnet: '172.19.0.0/16', gateway: '172.19.0.1', ipRange: null },
    ipv6: { subnet: 'fd42:98fc:1c14:1::/64', gateway: 'fd42:98fc:1c14:1::1', ipRange: null }, pickedIPv4: true, pickedIPv6: true,
  });
  // --ipv6 --subnet 10.60.0.0/24 --subnet fd00:60::/64 --gateway fd00:60::1 dual2 (order does not matter).
  assert.deepEqual(planDualIpam({ ipv6: true, subnets: ['fd00:60::/64', '10.60.0.0/24'], gateways: ['fd00:60::1'], ipRanges: ['10.60.0.128/25'] }, taken, ULA), {
    ipv4: { subnet: '10.60.0.0/24', gateway: '10.60.0.1', ipRange: '10.60.0.128/25' },
    ipv6: { subnet: 'fd00:60::/64', gateway: 'fd00:60::1', ipRange: null }, pickedIPv4: false, pickedIPv6: false,
  });
  // --ipv6 --subnet fd00:61::/64 --ipv4=false v6only
  assert.deepEqual(planDualIpam({ ipv6: true, ipv4: false, subnets: ['fd00:61::/64'] }, taken, ULA), {
    ipv4: null, ipv6: { subnet: 'fd00:61::/64', gateway: 'fd00:61::1', ipRange: null }, pickedIPv4: false, pickedIPv6: false,
  });
  // Only the IPv6 subnet given: IPv4 is still picked from the pools.
  assert.equal(planDualIpam({ ipv6: true, subnets: ['fd00:62::/64'] }, taken, ULA).ipv4?.subnet, '172.19.0.0/16');
});

test('planDualIpam: refused combinations', () => {
  const cases: Array<[Parameters<typeof planDualIpam>[0], string[], string, UserError['code']]> = [
    [{ subnets: ['fd00:60::/64'] }, [], 'invalid subnet fd00:60::/64: an IPv6 subnet needs --ipv6', 'invalid'],
    [{ subnets: ['10.0.0.0/24'], gateways: ['fd00::1'] }, [], 'invalid gateway fd00::1: an IPv6 gateway needs --ipv6', 'invalid'],
    [{ ipRanges: ['fd00::/120'] }, [], 'invalid ip-range fd00::/120: an IPv6 ip-range needs --ipv6', 'invalid'],
    [{ ipv4: false, ipv6: true, subnets: ['10.0.0.0/24'] }, [], 'invalid subnet 10.0.0.0/24: IPv4 is disabled on this network (--ipv4=false)', 'invalid'],
    [{ ipv4: false }, [], 'IPv4 and IPv6 cannot both be disabled (--ipv4=false needs --ipv6)', 'invalid'],
    [{ subnets: ['10.0.0.0/24', '10.1.0.0/24'] }, [], 'invalid subnet 10.1.0.0/24: a network has at most one IPv4 subnet (10.0.0.0/24 is given too)', 'invalid'],
    [{ ipv6: true, subnets: ['fd00:1::/64', 'fd00:2::/64'] }, [], 'a network has at most one IPv6 subnet', 'invalid'],
    [{ ipv6: true, subnets: ['fd00:1::/64'], gateways: ['fd00:1::1', 'fd00:1::2'] }, [], 'a network has at most one IPv6 gateway', 'invalid'],
    [{ ipv6: true, gateways: ['fd00:1::1'] }, [], 'every ip-range or gateway must have a corresponding subnet', 'invalid'],
    [{ gateways: ['10.0.0.1'] }, [], 'every ip-range or gateway must have a corresponding subnet', 'invalid'],
    [{ ipv6: true, subnets: ['fd00:60::/64', '10.0.0.5/24'] }, [], 'invalid subnet 10.0.0.5/24: host bits set', 'invalid'],
    [{ ipv6: true, subnets: ['fd00:60::/130'] }, [], 'invalid subnet fd00:60::/130: prefix length must be 0..128', 'invalid'],
    [{ ipv6: true, subnets: ['fe80::/64'] }, [], 'overlaps the link-local block', 'invalid'],
    [{ ipv6: true, subnets: ['fd00:60::/64'] }, ['fd00:60::/56'], 'Pool overlaps with other one on this address space (fd00:60::/64 overlaps fd00:60::/56)', 'conflict'],
  ];
  for (const [req, taken, msg, code] of cases) throwsUser(() => planDualIpam(req, taken, ULA), msg, code, JSON.stringify(req));
});

function net6(subnet: string, gateway: string, ipRange: string | null = null): IpamNetwork {
  return { subnet, gateway, ipRange, name: 'dual' };
}

test('allocateIp on an IPv6 network: ::2, ::3, ... after gateway ::1, serial, wrapping', () => {
  const n = net6('fd00:60::/64', 'fd00:60::1');
  const inUse = new Set<string>();
  let last: string | null = null;
  const got: string[] = [];
  for (let i = 0; i < 5; i++) {
    last = allocateIp(n, inUse, last);
    inUse.add(last);
    got.push(last);
  }
  assert.deepEqual(got, ['fd00:60::2', 'fd00:60::3', 'fd00:60::4', 'fd00:60::5', 'fd00:60::6']);
  inUse.delete('fd00:60::3');
  assert.equal(allocateIp(n, inUse, last), 'fd00:60::7', 'a released address is not reused at once');
  const cases: Array<[IpamNetwork, string[], string | null, string, string]> = [
    [n, [], 'fd00:60::ffff', 'fd00:60::1:0', 'carries into the next group'],
    [n, [], 'fd00:61::9', 'fd00:60::2', 'a last outside the subnet starts over'],
    [n, [], '10.0.0.9', 'fd00:60::2', 'an IPv4 last starts over'],
    [n, [], 'garbage', 'fd00:60::2', 'an unparsable last starts over'],
    [n, [], 'fd00:60::ffff:ffff:ffff:fffe', 'fd00:60::ffff:ffff:ffff:ffff', 'the last address is a host address (no broadcast)'],
    [n, [], 'fd00:60::ffff:ffff:ffff:ffff', 'fd00:60::2', 'wraps, skipping the network and gateway addresses'],
    [net6('fd00:60::/64', 'fd00:60::fe'), [], null, 'fd00:60::1', 'gateway elsewhere: ::1 is free'],
    [net6('fd00:60::/64', 'fd00:60::1', 'fd00:60::100/120'), [], null, 'fd00:60::100', 'ip-range start'],
    [net6('fd00:60::/64', 'fd00:60::1', 'fd00:60::100/120'), ['fd00:60::100'], 'fd00:60::1ff', 'fd00:60::101', 'wraps inside the ip-range'],
    [net6('fd00:60::/120', 'fd00:60::1'), [], 'fd00:60::fe', 'fd00:60::ff', 'a /120 hands out ::ff too'],
  ];
  for (const [nw, used, prev, want, why] of cases) assert.equal(allocateIp(nw, new Set(used), prev), want, why);
  assert.deepEqual(dynamicBounds6(net6('fd00:60::/120', 'fd00:60::1')), { first: Prefix.parse('fd00:60::/120').network.big + 1n, last: Prefix.parse('fd00:60::/120').last.big });
});

test('allocateIp on an IPv6 network: exhaustion', () => {
  const n = net6('fd00:60::/120', 'fd00:60::1');
  const full = new Set<string>();
  for (let i = 2; i <= 255; i++) full.add(`fd00:60::${i.toString(16)}`);
  throwsUser(() => allocateIp(n, full, 'fd00:60::77'), "no available IPv6 addresses on this network's address pools: dual", 'refused');
  throwsUser(() => allocateIp({ subnet: 'fd00:60::/120', gateway: 'fd00:60::1' }, full, null, 'web'), "no available IPv6 addresses on this network's address pools: web", 'refused');
  full.delete('fd00:60::50');
  assert.equal(allocateIp(n, full, 'fd00:60::77'), 'fd00:60::50');
});

test('allocateIp on an IPv6 /64 with thousands in use stays fast', () => {
  const n = net6('fd00:60::/64', 'fd00:60::1');
  const inUse = new Set<string>();
  let last: string | null = null;
  const t0 = performance.now();
  for (let i = 0; i < 5000; i++) {
    last = allocateIp(n, inUse, last);
    inUse.add(last);
  }
  assert.equal(last, `fd00:60::${(5001).toString(16)}`);
  assert.ok(performance.now() - t0 < 2000, `${performance.now() - t0} ms`);
});

test('checkStaticIp on an IPv6 network (--ip6): accepted, returned canonical', () => {
  const n = net6('fd00:60::/64', 'fd00:60::1', 'fd00:60::100/120');
  const inUse = new Set(['fd00:60::3']);
  const cases: Array<[string, string]> = [
    ['fd00:60::10', 'fd00:60::10'], ['FD00:60:0::0010', 'fd00:60::10'], ['fd00:60::ffff:ffff:ffff:ffff', 'fd00:60::ffff:ffff:ffff:ffff'],
    ['fd00:60::150', 'fd00:60::150'],
  ];
  for (const [ip, want] of cases) assert.equal(checkStaticIp(n, ip, inUse), want, ip);
  assert.equal(checkStaticIp({ subnet: '10.0.0.0/24', gateway: '10.0.0.1' }, '10.0.0.9', new Set()), '10.0.0.9', 'IPv4 returns the address too');
});

test('checkStaticIp on an IPv6 network (--ip6): refused', () => {
  const n = net6('fd00:60::/64', 'fd00:60::1');
  const inUse = new Set(['fd00:60::3']);
  const cases: Array<[string, string, UserError['code']]> = [
    ['fd00:60::3', 'Address already in use: fd00:60::3', 'conflict'],
    ['fd00:60:0:0::03', 'Address already in use: fd00:60::3', 'conflict'],
    ['fd00:60::1', "Address already in use: fd00:60::1 is the network's gateway", 'conflict'],
    ['fd00:60::', 'invalid IP address fd00:60::: it is the network address of fd00:60::/64', 'invalid'],
    ['fd00:61::10', "no configured subnet or ip-range contain the IP address fd00:61::10 (the network's subnet is fd00:60::/64)", 'invalid'],
    ['10.0.0.5', 'invalid IPv6 address 10.0.0.5', 'invalid'],
    ['fe80::1%eth0', 'invalid IPv6 address fe80::1%eth0 (a zone is not allowed here)', 'invalid'],
    ['fd00:60::1::2', 'invalid IPv6 address fd00:60::1::2', 'invalid'],
    ['', 'invalid IPv6 address ""', 'invalid'],
  ];
  for (const [ip, msg, code] of cases) throwsUser(() => checkStaticIp(n, ip, inUse), msg, code, JSON.stringify(ip));
});
