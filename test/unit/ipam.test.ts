import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UserError } from '../../src/util/errors.js';
import { formatIPv4, parseIPv4 } from '../../src/util/ip.js';
import {
  DEFAULT_BRIDGE_SUBNET, DEFAULT_POOLS, allocateIp, checkStaticIp, dynamicBounds, macFromIp, pickSubnet, planNetworkIpam,
  type IpamNetwork,
} from '../../src/ipam/ipam.js';
import { throwsUser } from '../helpers/user-error.js';


const EXHAUSTED_POOLS = 'could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network';

test('default pools: 172.18-31 /16, then 192.168.0.0/16 in /20 blocks', () => {
  assert.equal(DEFAULT_BRIDGE_SUBNET, '172.17.0.0/16');
  assert.equal(DEFAULT_POOLS.length, 14 + 16);
  assert.equal(DEFAULT_POOLS[0], '172.18.0.0/16');
  assert.equal(DEFAULT_POOLS[13], '172.31.0.0/16');
  assert.equal(DEFAULT_POOLS[14], '192.168.0.0/20');
  assert.equal(DEFAULT_POOLS[15], '192.168.16.0/20');
  assert.equal(DEFAULT_POOLS[29], '192.168.240.0/20');
  assert.ok(!DEFAULT_POOLS.includes(DEFAULT_BRIDGE_SUBNET));
});

test('pickSubnet: first pool clear of every taken block', () => {
  const cases: Array<[string[], string, string]> = [
    [[], '172.18.0.0/16', 'nothing taken'],
    [['172.17.0.0/16'], '172.18.0.0/16', 'default bridge taken'],
    [['172.18.0.0/16'], '172.19.0.0/16', 'first pool taken'],
    [['172.18.5.0/24'], '172.19.0.0/16', 'a route inside the first pool'],
    [['172.16.0.0/12'], '192.168.0.0/20', 'a /12 route covering all 172 pools'],
    [['172.16.0.0/12', '192.168.0.0/24'], '192.168.16.0/20', 'and a LAN in 192.168.0.x'],
    [['172.16.0.0/12', '192.168.0.0/16'], '', 'everything'],
    [['0.0.0.0/0'], '172.18.0.0/16', 'a default route is ignored'],
    [['10.0.0.5/8', '172.18.0.1'], '172.19.0.0/16', 'host bits and bare addresses accepted'],
    [['fd00::/64', 'garbage', '', '172.18.0.0/16'], '172.19.0.0/16', 'IPv6 and junk ignored'],
    [['172.18.0.0/15'], '172.20.0.0/16', 'a /15 covers two pools'],
    [[...Array.from({ length: 14 }, (_, i) => `172.${18 + i}.0.0/16`), '192.168.0.0/20'], '192.168.16.0/20', 'filled in order'],
  ];
  for (const [taken, want, why] of cases) {
    if (want) assert.equal(pickSubnet(taken), want, why);
    else throwsUser(() => pickSubnet(taken), EXHAUSTED_POOLS, 'refused', why);
  }
});

test('pickSubnet: many taken routes stay fast', () => {
  const taken: string[] = [];
  for (let i = 0; i < 5000; i++) taken.push(`10.${i >> 8}.${i & 255}.0/24`);
  taken.push('172.16.0.0/12');
  const t0 = performance.now();
  assert.equal(pickSubnet(taken), '192.168.0.0/20');
  assert.ok(performance.now() - t0 < 500);
});

test('planNetworkIpam: valid plans', () => {
  const cases: Array<[Parameters<typeof planNetworkIpam>[0], string[], ReturnType<typeof planNetworkIpam>]> = [
    [{}, [], { subnet: '172.18.0.0/16', gateway: '172.18.0.1', ipRange: null }],
    [{ subnet: '', gateway: '', ipRange: '' }, ['172.18.0.0/16'], { subnet: '172.19.0.0/16', gateway: '172.19.0.1', ipRange: null }],
    [{ subnet: '10.10.0.0/24' }, [], { subnet: '10.10.0.0/24', gateway: '10.10.0.1', ipRange: null }],
    [{ subnet: '10.10.0.0/24', gateway: '10.10.0.254' }, [], { subnet: '10.10.0.0/24', gateway: '10.10.0.254', ipRange: null }],
    [{ subnet: '172.28.0.0/16', ipRange: '172.28.5.0/24', gateway: '172.28.5.254' }, ['172.17.0.0/16'],
      { subnet: '172.28.0.0/16', gateway: '172.28.5.254', ipRange: '172.28.5.0/24' }],
    [{ subnet: '10.0.0.0/30' }, [], { subnet: '10.0.0.0/30', gateway: '10.0.0.1', ipRange: null }],
    [{ subnet: '10.0.0.0/24', ipRange: '10.0.0.0/24' }, [], { subnet: '10.0.0.0/24', gateway: '10.0.0.1', ipRange: '10.0.0.0/24' }],
    [{ subnet: '10.0.0.0/24', ipRange: '10.0.0.2/32' }, [], { subnet: '10.0.0.0/24', gateway: '10.0.0.1', ipRange: '10.0.0.2/32' }],
    [{ subnet: '10.0.0.0/24', ipRange: '10.0.0.0/31', gateway: '10.0.0.254' }, [], { subnet: '10.0.0.0/24', gateway: '10.0.0.254', ipRange: '10.0.0.0/31' }],
    [{ subnet: DEFAULT_BRIDGE_SUBNET }, ['10.0.0.0/8', '0.0.0.0/0'], { subnet: '172.17.0.0/16', gateway: '172.17.0.1', ipRange: null }],
    [{ subnet: '100.64.0.0/10' }, [], { subnet: '100.64.0.0/10', gateway: '100.64.0.1', ipRange: null }],
  ];
  for (const [req, taken, want] of cases) assert.deepEqual(planNetworkIpam(req, taken), want, JSON.stringify(req));
});

test('planNetworkIpam: refused plans, with Docker-like messages', () => {
  const cases: Array<[Parameters<typeof planNetworkIpam>[0], string[], string, UserError['code']]> = [
    [{ gateway: '10.0.0.1' }, [], 'every ip-range or gateway must have a corresponding subnet', 'invalid'],
    [{ ipRange: '10.0.0.0/25' }, [], 'every ip-range or gateway must have a corresponding subnet', 'invalid'],
    [{ subnet: '', gateway: '10.0.0.1' }, [], 'every ip-range or gateway must have a corresponding subnet', 'invalid'],
    [{ subnet: '10.0.0.5/24' }, [], 'invalid subnet 10.0.0.5/24: host bits set, it should be 10.0.0.0/24', 'invalid'],
    [{ subnet: '10.0.0.0/33' }, [], 'invalid subnet 10.0.0.0/33: prefix length must be 0..32', 'invalid'],
    [{ subnet: '1.2.3.4/' }, [], 'invalid subnet 1.2.3.4/: missing prefix length', 'invalid'],
    [{ subnet: '256.1.1.1/8' }, [], 'invalid subnet 256.1.1.1/8: 256.1.1.1 is not an IPv4 address', 'invalid'],
    [{ subnet: 'localhost' }, [], 'invalid subnet localhost: missing prefix length', 'invalid'],
    [{ subnet: ' 10.0.0.0/24' }, [], 'invalid subnet " 10.0.0.0/24"', 'invalid'],
    [{ subnet: 'fd00::/64' }, [], 'invalid subnet fd00::/64: IPv6 is not supported yet', 'invalid'],
    [{ subnet: '10.0.0.0/31' }, [], 'invalid subnet 10.0.0.0/31: too small, a network needs at least a /30', 'invalid'],
    [{ subnet: '10.0.0.1/32' }, [], 'invalid subnet 10.0.0.1/32: too small', 'invalid'],
    [{ subnet: '0.0.0.0/0' }, [], 'invalid subnet 0.0.0.0/0: overlaps the "this network" block 0.0.0.0/8', 'invalid'],
    [{ subnet: '127.0.0.0/16' }, [], 'invalid subnet 127.0.0.0/16: overlaps the loopback block 127.0.0.0/8', 'invalid'],
    [{ subnet: '224.1.0.0/16' }, [], 'overlaps the multicast block 224.0.0.0/4', 'invalid'],
    [{ subnet: '255.255.255.0/24' }, [], 'overlaps the reserved block 240.0.0.0/4', 'invalid'],
    [{ subnet: '10.0.0.0/24', ipRange: '10.0.0.5/25' }, [], 'invalid ip-range 10.0.0.5/25: host bits set, it should be 10.0.0.0/25', 'invalid'],
    [{ subnet: '10.0.0.0/24', ipRange: '10.0.0.0/16' }, [], 'invalid ip-range 10.0.0.0/16: CIDR block is bigger than its parent subnet 10.0.0.0/24', 'invalid'],
    [{ subnet: '10.0.0.0/24', ipRange: '10.0.1.0/25' }, [], "invalid ip-range 10.0.1.0/25: parent subnet 10.0.0.0/24 doesn't contain ip-range", 'invalid'],
    [{ subnet: '10.0.0.0/24', ipRange: 'nope' }, [], 'invalid ip-range nope: missing prefix length', 'invalid'],
    [{ subnet: '10.0.0.0/24', ipRange: '10.0.0.0/32' }, [], 'invalid ip-range 10.0.0.0/32: it holds no address for containers', 'invalid'],
    [{ subnet: '10.0.0.0/24', ipRange: '10.0.0.255/32' }, [], 'it holds no address for containers', 'invalid'],
    [{ subnet: '10.0.0.0/24', ipRange: '10.0.0.0/31' }, [], 'it holds no address for containers', 'invalid'],
    [{ subnet: '10.0.0.0/24', gateway: '10.0.1.1' }, [], "invalid gateway 10.0.1.1: parent subnet 10.0.0.0/24 doesn't contain this address", 'invalid'],
    [{ subnet: '10.0.0.0/24', gateway: '10.0.0.0' }, [], 'invalid gateway 10.0.0.0: it is the network address of 10.0.0.0/24', 'invalid'],
    [{ subnet: '10.0.0.0/24', gateway: '10.0.0.255' }, [], 'invalid gateway 10.0.0.255: it is the broadcast address of 10.0.0.0/24', 'invalid'],
    [{ subnet: '10.0.0.0/24', gateway: 'router' }, [], 'invalid gateway router', 'invalid'],
    [{ subnet: '10.0.0.0/24', gateway: '10.0.0.01' }, [], 'invalid gateway 10.0.0.01', 'invalid'],
    [{ subnet: '10.0.0.0/24', gateway: '::1' }, [], 'invalid gateway ::1 (IPv6 is not supported yet)', 'invalid'],
    [{ subnet: '10.0.0.0/24' }, ['10.0.0.0/24'], 'invalid pool request: Pool overlaps with other one on this address space (10.0.0.0/24 overlaps 10.0.0.0/24)', 'conflict'],
    [{ subnet: '10.0.0.0/16' }, ['192.168.1.0/24', '10.0.200.0/24'], 'Pool overlaps with other one on this address space (10.0.0.0/16 overlaps 10.0.200.0/24)', 'conflict'],
    [{ subnet: '10.1.2.0/24' }, ['10.0.0.0/8'], 'Pool overlaps with other one on this address space (10.1.2.0/24 overlaps 10.0.0.0/8)', 'conflict'],
    [{ subnet: '10.1.2.0/24' }, ['10.1.2.77'], 'Pool overlaps with other one on this address space', 'conflict'],
    [{}, ['172.16.0.0/12', '192.168.0.0/16'], EXHAUSTED_POOLS, 'refused'],
  ];
  for (const [req, taken, msg, code] of cases) throwsUser(() => planNetworkIpam(req, taken), msg, code, JSON.stringify(req));
});

test('planNetworkIpam: an ip-range whose only host address is the gateway is refused', () => {
  throwsUser(() => planNetworkIpam({ subnet: '10.0.0.0/24', ipRange: '10.0.0.6/32', gateway: '10.0.0.6' }, []),
    'invalid ip-range 10.0.0.6/32: it holds no address for containers');
  assert.deepEqual(planNetworkIpam({ subnet: '10.0.0.0/24', ipRange: '10.0.0.6/31', gateway: '10.0.0.6' }, []),
    { subnet: '10.0.0.0/24', gateway: '10.0.0.6', ipRange: '10.0.0.6/31' });
});

function net(subnet: string, gateway: string, ipRange: string | null = null): IpamNetwork {
  return { subnet, gateway, ipRange, name: 'oa-net' };
}

test('dynamicBounds: ip-range or subnet, minus network and broadcast of the subnet', () => {
  const cases: Array<[IpamNetwork, string, string]> = [
    [net('10.0.0.0/24', '10.0.0.1'), '10.0.0.1', '10.0.0.254'],
    [net('10.0.0.0/24', '10.0.0.1', '10.0.0.0/25'), '10.0.0.1', '10.0.0.127'],
    [net('10.0.0.0/24', '10.0.0.1', '10.0.0.128/25'), '10.0.0.128', '10.0.0.254'],
    [net('172.28.0.0/16', '172.28.0.1', '172.28.5.0/24'), '172.28.5.0', '172.28.5.255'],
  ];
  for (const [n, first, last] of cases) {
    const b = dynamicBounds(n);
    assert.deepEqual([formatIPv4(b.first), formatIPv4(b.last)], [first, last], JSON.stringify(n));
  }
});

test('allocateIp: serial allocation after last, skipping gateway, in-use, network and broadcast', () => {
  const n24 = net('10.0.0.0/24', '10.0.0.1');
  const cases: Array<[IpamNetwork, string[], string | null | undefined, string, string]> = [
    [n24, [], undefined, '10.0.0.2', 'first address after the gateway'],
    [n24, [], null, '10.0.0.2', 'null last'],
    [n24, ['10.0.0.2', '10.0.0.3'], null, '10.0.0.4', 'skips in-use'],
    [n24, [], '10.0.0.2', '10.0.0.3', 'after last'],
    [n24, [], '10.0.0.9', '10.0.0.10', 'after last, even if lower ones are free'],
    [n24, [], '10.0.0.254', '10.0.0.2', 'wraps after the last host address, skipping network and gateway'],
    [n24, ['10.0.0.2'], '10.0.0.254', '10.0.0.3', 'wraps and skips in-use'],
    [n24, [], '10.0.0.0', '10.0.0.2', 'a last outside the range starts over'],
    [n24, [], '10.0.1.7', '10.0.0.2', 'a last in another subnet starts over'],
    [n24, [], 'garbage', '10.0.0.2', 'an unparsable last starts over'],
    [net('10.0.0.0/24', '10.0.0.254'), [], null, '10.0.0.1', 'gateway elsewhere: .1 is free'],
    [net('10.0.0.0/24', '10.0.0.254'), [], '10.0.0.253', '10.0.0.1', 'never the gateway or broadcast'],
    [net('10.0.0.0/24', '10.0.0.1', '10.0.0.128/25'), [], null, '10.0.0.128', 'ip-range start (not the subnet network address)'],
    [net('10.0.0.0/24', '10.0.0.1', '10.0.0.128/25'), [], '10.0.0.253', '10.0.0.254', 'ip-range end, before the broadcast'],
    [net('10.0.0.0/24', '10.0.0.1', '10.0.0.128/25'), [], '10.0.0.254', '10.0.0.128', 'wraps inside the ip-range'],
    [net('10.0.0.0/24', '10.0.0.1', '10.0.0.128/25'), [], '10.0.0.5', '10.0.0.128', 'a static last outside the range'],
    [net('10.0.0.0/24', '10.0.0.1', '10.0.0.0/30'), [], null, '10.0.0.2', 'range holding network and gateway'],
    [net('10.0.0.0/30', '10.0.0.1'), [], '10.0.0.2', '10.0.0.2', 'a /30 has one container address'],
    [net('172.28.0.0/16', '172.28.0.1', '172.28.5.0/24'), [], null, '172.28.5.0', 'x.x.5.0 is a host address of a /16'],
  ];
  for (const [n, inUse, last, want, why] of cases) assert.equal(allocateIp(n, new Set(inUse), last), want, why);
});

test('allocateIp: exhaustion', () => {
  throwsUser(() => allocateIp(net('10.0.0.0/30', '10.0.0.1'), new Set(['10.0.0.2']), null),
    "no available IPv4 addresses on this network's address pools: oa-net", 'refused');
  throwsUser(() => allocateIp(net('10.0.0.0/30', '10.0.0.1'), new Set(['10.0.0.2']), null, 'web'),
    "no available IPv4 addresses on this network's address pools: web", 'refused');
  throwsUser(() => allocateIp({ subnet: '10.0.0.0/30', gateway: '10.0.0.1' }, new Set(['10.0.0.2']), '10.0.0.2'),
    "no available IPv4 addresses on this network's address pools: 10.0.0.0/30", 'refused');
  const full = new Set<string>();
  for (let i = 2; i < 255; i++) full.add(`10.0.0.${i}`);
  throwsUser(() => allocateIp(net('10.0.0.0/24', '10.0.0.1'), full, '10.0.0.77'), 'no available IPv4 addresses', 'refused');
  full.delete('10.0.0.50');
  assert.equal(allocateIp(net('10.0.0.0/24', '10.0.0.1'), full, '10.0.0.77'), '10.0.0.50');
  throwsUser(() => allocateIp(net('10.0.0.0/24', '10.0.0.1', '10.0.0.0/31'), new Set(), null), 'no available IPv4 addresses', 'refused');
});

test('allocateIp: a just-released address is not reused at once', () => {
  const n = net('10.0.0.0/29', '10.0.0.1'); // hosts .2 .. .6
  const inUse = new Set<string>();
  let last: string | null = null;
  const order: string[] = [];
  for (let i = 0; i < 5; i++) {
    last = allocateIp(n, inUse, last);
    inUse.add(last);
    order.push(last);
  }
  assert.deepEqual(order, ['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6']);
  inUse.delete('10.0.0.3');
  inUse.delete('10.0.0.6');
  last = allocateIp(n, inUse, last); // after .6 wraps to .2 (used), .3 is the next free
  assert.equal(last, '10.0.0.3');
  inUse.add(last);
  assert.equal(allocateIp(n, inUse, last), '10.0.0.6');
});

test('allocateIp: a /16 with thousands in use stays fast', () => {
  const n = net('172.18.0.0/16', '172.18.0.1');
  const inUse = new Set<string>();
  let last: string | null = null;
  const t0 = performance.now();
  for (let i = 0; i < 20000; i++) {
    last = allocateIp(n, inUse, last);
    inUse.add(last);
  }
  const serial = performance.now() - t0;
  assert.equal(inUse.size, 20000);
  assert.equal(last, formatIPv4(parseIPv4('172.18.0.1') + 20000));
  assert.ok(serial < 2000, `20000 allocations took ${serial} ms`);
  // nearly full: 65533 host addresses, all but one in use; the scan still completes quickly
  for (let a = parseIPv4('172.18.0.2'); a <= parseIPv4('172.18.255.254'); a++) inUse.add(formatIPv4(a));
  inUse.delete('172.18.0.9');
  const t1 = performance.now();
  assert.equal(allocateIp(n, inUse, '172.18.0.9'), '172.18.0.9');
  assert.ok(performance.now() - t1 < 1000);
  inUse.add('172.18.0.9');
  throwsUser(() => allocateIp(n, inUse, null), 'no available IPv4 addresses', 'refused');
});

test('checkStaticIp: accepted addresses', () => {
  const n = net('10.0.0.0/24', '10.0.0.1', '10.0.0.128/25');
  for (const ip of ['10.0.0.2', '10.0.0.5', '10.0.0.128', '10.0.0.254']) assert.doesNotThrow(() => checkStaticIp(n, ip, new Set(['10.0.0.3'])), ip);
});

test('checkStaticIp: refused addresses', () => {
  const n = net('10.0.0.0/24', '10.0.0.1', '10.0.0.128/25');
  const inUse = new Set(['10.0.0.3']);
  const cases: Array<[string, string, UserError['code']]> = [
    ['10.0.0.3', 'Address already in use: 10.0.0.3', 'conflict'],
    ['10.0.0.1', "Address already in use: 10.0.0.1 is the network's gateway", 'conflict'],
    ['10.0.0.0', 'invalid IP address 10.0.0.0: it is the network address of 10.0.0.0/24', 'invalid'],
    ['10.0.0.255', 'invalid IP address 10.0.0.255: it is the broadcast address of 10.0.0.0/24', 'invalid'],
    ['10.0.1.5', "no configured subnet or ip-range contain the IP address 10.0.1.5 (the network's subnet is 10.0.0.0/24)", 'invalid'],
    ['192.168.0.2', 'no configured subnet or ip-range contain the IP address 192.168.0.2', 'invalid'],
    ['', 'invalid IPv4 address ""', 'invalid'],
    ['10.0.0.03', 'invalid IPv4 address 10.0.0.03', 'invalid'],
    ['10.0.0.2 ', 'invalid IPv4 address "10.0.0.2 "', 'invalid'],
    ['10.0.0.2/24', 'invalid IPv4 address 10.0.0.2/24', 'invalid'],
    ['localhost', 'invalid IPv4 address localhost', 'invalid'],
    ['fe80::1', 'an IPv6 address is given with --ip6', 'invalid'],
  ];
  for (const [ip, msg, code] of cases) throwsUser(() => checkStaticIp(n, ip, inUse), msg, code, JSON.stringify(ip));
});

test('macFromIp: 02:42 and the four address bytes', () => {
  const cases: Array<[string, string]> = [
    ['172.17.0.2', '02:42:ac:11:00:02'], ['10.0.0.1', '02:42:0a:00:00:01'], ['192.168.255.254', '02:42:c0:a8:ff:fe'],
    ['0.0.0.0', '02:42:00:00:00:00'], ['255.255.255.255', '02:42:ff:ff:ff:ff'],
  ];
  for (const [ip, mac] of cases) assert.equal(macFromIp(ip), mac, ip);
  throwsUser(() => macFromIp('1.2.3'), 'invalid IPv4 address 1.2.3');
});
