// Unit tests of the resolver's IPv6 side (issue #13): AAAA answers, NODATA for a family a name has no address of,
// PTR in ip6.arpa, askers over the IPv6 gateway, IPv6-only networks, deltas. dns-packet checks the replies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dnsPacket from 'dns-packet';
import { answer, applyDelta, indexView, type DnsView } from '../../src/dns/answer.js';
import { Addr } from '../../src/util/addr.js';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const C = 'c'.repeat(64);
const D = 'd'.repeat(64);

const VIEW: DnsView = {
  networks: [
    { id: 'd', name: 'dual', gateway: '10.1.0.1', subnet: '10.1.0.0/24', gateway6: 'fd00:1::1', subnet6: 'fd00:1::/64' },
    { id: 'p', name: 'plain', gateway: '10.2.0.1', subnet: '10.2.0.0/24' },
    { id: 's', name: 'six', gateway: '', subnet: '', gateway6: 'fd00:3::1', subnet6: 'fd00:3::/64' },
  ],
  entries: [
    { networkId: 'd', names: ['web', 'www'], ip: '10.1.0.2', ip6: 'fd00:1::2', containerId: A },
    { networkId: 'd', names: ['api', 'www'], ip: '10.1.0.3', ip6: 'fd00:1::3', containerId: B },
    { networkId: 'p', names: ['old'], ip: '10.2.0.2', containerId: C },
    { networkId: 's', names: ['v6'], ip: '', ip6: 'fd00:3::2', containerId: D },
    { networkId: 'p', names: ['web'], ip: '10.2.0.3', containerId: A },
  ],
  upstreams: ['192.0.2.53'],
};
const view = indexView(VIEW);

function ask(net: string, asker: string, name: string, type: string, id = 7): ReturnType<typeof dnsPacket.decode> & { rcode: string } {
  const q = dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: type as 'A', name, class: 'IN' }] });
  const r = answer(view, net, q, asker);
  assert.ok(Buffer.isBuffer(r), `${name} ${type}: a reply expected, got ${String(r)}`);
  return dnsPacket.decode(r as Buffer) as never;
}
const data = (r: unknown) => ((r as { answers?: Array<{ data?: unknown }> }).answers ?? []).map((a) => String(a.data));

test('the index: no warnings for dual-stack and IPv6-only networks; both gateways of a network serve it', () => {
  assert.deepEqual(view.warnings, []);
  assert.equal(view.byGateway.get('fd00:1::1'), view.byGateway.get('10.1.0.1'));
  assert.equal(view.byGateway.get('fd00:3::1')?.name, 'six');
  assert.equal(view.byGateway.has(''), false, 'an IPv6-only network has no IPv4 gateway to listen on');
});

test('AAAA for a container\'s IPv6 address, asked over IPv4 or IPv6; A still answers IPv4', () => {
  const r = ask('d', 'fd00:1::3', 'web', 'AAAA');
  assert.equal(r.rcode, 'NOERROR');
  assert.deepEqual(data(r), ['fd00:1::2']);
  assert.equal(r.answers![0].type, 'AAAA');
  assert.deepEqual(data(ask('d', '10.1.0.3', 'web', 'AAAA')), ['fd00:1::2'], 'over the IPv4 gateway too');
  assert.deepEqual(data(ask('d', 'fd00:1::3', 'web', 'A')), ['10.1.0.2']);
  assert.deepEqual(data(ask('d', 'fd00:1::3', 'web.dual', 'AAAA')), ['fd00:1::2'], 'name.network');
  // A shared alias: every address, rotated by the query id.
  assert.deepEqual(data(ask('d', 'fd00:1::3', 'www', 'AAAA', 0)).sort(), ['fd00:1::2', 'fd00:1::3']);
  assert.notDeepEqual(data(ask('d', 'fd00:1::3', 'www', 'AAAA', 0)), data(ask('d', 'fd00:1::3', 'www', 'AAAA', 1)));
});

test('NODATA, never NXDOMAIN, for a family a name has no address of', () => {
  const r = ask('p', '10.2.0.3', 'old', 'AAAA');
  assert.equal(r.rcode, 'NOERROR');
  assert.deepEqual(r.answers, []);
  const s = ask('s', 'fd00:3::9', 'v6', 'A');
  assert.equal(s.rcode, 'NOERROR');
  assert.deepEqual(s.answers, []);
  assert.deepEqual(data(ask('s', 'fd00:3::9', 'v6', 'AAAA')), ['fd00:3::2']);
  assert.equal(ask('s', 'fd00:3::9', 'nobody', 'AAAA').rcode, 'NXDOMAIN');
  // A container on both an IPv4-only and a dual-stack network: on the IPv4-only one its AAAA is NODATA (names
  // answer per network first).
  assert.deepEqual(ask('p', '10.2.0.2', 'web', 'AAAA').answers, []);
});

test('PTR in ip6.arpa: the container\'s name.network; an unheld address of an nsnet subnet is NXDOMAIN', () => {
  const r = ask('d', 'fd00:1::3', Addr.parse('fd00:1::2').reverseName(), 'PTR');
  assert.equal(r.rcode, 'NOERROR');
  assert.deepEqual(data(r), ['web.dual']);
  assert.equal(ask('d', 'fd00:1::3', Addr.parse('fd00:1::99').reverseName(), 'PTR').rcode, 'NXDOMAIN');
  assert.equal(ask('d', 'fd00:1::3', Addr.parse('fd00:3::2').reverseName(), 'PTR').rcode, 'NXDOMAIN', 'another network\'s: never forwarded');
  const q = dnsPacket.encode({ type: 'query', id: 1, questions: [{ type: 'PTR', name: Addr.parse('2001:db8::1').reverseName(), class: 'IN' }] });
  assert.equal(answer(view, 'd', q, 'fd00:1::3'), 'forward', 'an address outside nsnet goes upstream');
});

test('askers over IPv6 must be of the network\'s IPv6 subnet', () => {
  assert.equal(ask('d', 'fd00:3::2', 'web', 'AAAA').rcode, 'REFUSED');
  assert.equal(ask('s', '10.1.0.2', 'v6', 'AAAA').rcode, 'REFUSED', 'an IPv6-only network has no IPv4 askers');
  assert.equal(ask('p', 'fd00:1::2', 'old', 'A').rcode, 'REFUSED', 'an IPv4-only network has no IPv6 askers');
});

test('deltas add and remove IPv6 entries', () => {
  const idx = indexView(VIEW);
  applyDelta(idx, { generation: 2, containers: [D], add: [{ networkId: 's', names: ['v6', 'renamed'], ip: '', ip6: 'fd00:3::7', containerId: D }] });
  const q = (name: string) => dnsPacket.decode(answer(idx, 's', dnsPacket.encode({ type: 'query', id: 1, questions: [{ type: 'AAAA', name, class: 'IN' }] }), 'fd00:3::9') as Buffer);
  assert.deepEqual(data(q('renamed')), ['fd00:3::7']);
  assert.deepEqual(data(q('v6')), ['fd00:3::7']);
  applyDelta(idx, { generation: 3, containers: [D], add: [] });
  assert.equal((q('v6') as { rcode?: string }).rcode, 'NXDOMAIN');
  const ptr = dnsPacket.decode(answer(idx, 's', dnsPacket.encode({ type: 'query', id: 1, questions: [{ type: 'PTR', name: Addr.parse('fd00:3::7').reverseName(), class: 'IN' }] }), 'fd00:3::9') as Buffer) as { rcode?: string };
  assert.equal(ptr.rcode, 'NXDOMAIN', 'the PTR went with it');
});
