// src/cluster/'s pure parts, without etcd: key layout, values, allocation arithmetic, endpoint parsing, the
// bound on calls, and the watch logic (resume revision, resync diffs, peers) against a fake etcd3 client.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { Keys, prefixEnd } from '../../src/cluster/keys.js';
import { decode, encode, ClusterDataError, type EndpointRecord } from '../../src/cluster/values.js';
import { checkStaticAddress, isUsable, macFor, pickAddress, pickSubnet, pickSubnet6, pickVni, planSubnet, VNI_MIN } from '../../src/cluster/alloc.js';
import { ClusterUnavailable, parseEndpoints } from '../../src/cluster/errors.js';
import { bounded, isUnavailable } from '../../src/cluster/etcd.js';
import { NetworkWatch, type NetworkEvent, type WatchDeps } from '../../src/cluster/watch.js';
import { Addr, Prefix } from '../../src/util/addr.js';
import { UserError } from '../../src/util/errors.js';

test('keys: the layout under the prefix, parsed back; bad segments refused with one line', () => {
  const k = new Keys();
  assert.equal(k.host('h1'), '/nsnet/v1/hosts/h1');
  assert.equal(k.network('web'), '/nsnet/v1/networks/web');
  assert.equal(k.vni(4096), '/nsnet/v1/vni/4096');
  assert.equal(k.address('web', '10.0.0.2'), '/nsnet/v1/ipam/web/10.0.0.2');
  assert.equal(k.address('web', 'FD00:0:0::5'), '/nsnet/v1/ipam/web/fd00::5', 'canonical IPv6');
  assert.equal(k.endpoint('web', 'abc123'), '/nsnet/v1/endpoints/web/abc123');
  assert.equal(k.netIndex(), '/nsnet/v1/netindex');
  assert.deepEqual(k.parse('/nsnet/v1/hosts/h1'), { kind: 'host', host: 'h1' });
  assert.deepEqual(k.parse('/nsnet/v1/ipam/web/fd00::5'), { kind: 'address', network: 'web', ip: 'fd00::5' });
  assert.deepEqual(k.parse('/nsnet/v1/endpoints/web/e1'), { kind: 'endpoint', network: 'web', endpoint: 'e1' });
  assert.deepEqual(k.parse('/nsnet/v1/vni/4096'), { kind: 'vni', vni: 4096 });
  assert.deepEqual(k.parse('/nsnet/v1/netindex'), { kind: 'netindex' });
  for (const bad of ['/nsnet/v1/ipam/web/10.0.0.02', '/nsnet/v1/hosts/a/b', '/nsnet/v2/hosts/h1', '/nsnet/v1/vni/0x10', '/nsnet/v1/other']) {
    assert.equal(k.parse(bad), null, bad);
  }
  for (const bad of ['', 'a/b', '../x', '-x', 'a b', 'x'.repeat(129)]) {
    assert.throws(() => k.network(bad), (e: Error) => e instanceof UserError && /^invalid network name/.test(e.message) && !e.message.includes('\n'), JSON.stringify(bad));
  }
  assert.throws(() => k.address('web', '10.0.0.300'), /invalid IP address/);
  assert.throws(() => new Keys('nsnet'), /invalid etcd key prefix/);
  assert.throws(() => new Keys('/nsnet/'), /invalid etcd key prefix/);
  assert.equal(new Keys('/lab/nsnet').host('h'), '/lab/nsnet/hosts/h');
});

test('keys: prefixEnd is the end of the prefix range', () => {
  assert.deepEqual(prefixEnd('/a/'), Buffer.from('/a0'));
  assert.deepEqual(prefixEnd(Buffer.from([0x61, 0xff])), Buffer.from([0x62]));
  assert.deepEqual(prefixEnd(Buffer.from([0xff])), Buffer.from([0]));
});

test('values: encoded with v first, decoded and validated; a bad or foreign value is one clear error', () => {
  const ep = { network: 'web', id: 'e1', name: 'api', aliases: ['a'], host: 'h1', underlay: '203.0.113.21', mac: '02:42:0a:00:00:02', ips: ['10.0.0.2'] };
  const text = encode('endpoint', ep);
  assert.ok(text.startsWith('{"v":1,'));
  assert.deepEqual(decode('endpoint', 'k', text), { v: 1, ...ep });
  const bad: Array<[string, RegExp]> = [
    ['not json', /not JSON/],
    ['[1]', /not a JSON object/],
    [JSON.stringify({ ...ep, v: 2 }), /value version 2, this nsnet reads version 1/],
    [JSON.stringify({ ...ep, v: 1, ips: ['x'] }), /ips is not a list of IP addresses/],
    [JSON.stringify({ ...ep, v: 1, mac: 'zz' }), /mac is not a MAC address/],
    [JSON.stringify({ ...ep, v: 1, host: '../h' }), /host is not a name/],
  ];
  for (const [raw, re] of bad) {
    assert.throws(() => decode('endpoint', '/nsnet/v1/endpoints/web/e1', raw), (e: Error) => e instanceof ClusterDataError && re.test(e.message) && e.message.startsWith('etcd key /nsnet/v1/endpoints/web/e1: '), raw);
  }
  // A network: optional IPv6 fields may be null.
  const net = { name: 'web', id: 'x', driver: 'overlay' as const, vni: 4096, subnet: '10.90.0.0/24', gateway: '10.90.0.1', subnet6: null, gateway6: null, internal: false, labels: {}, created: 1, createdBy: 'h1' };
  assert.equal(decode('network', 'k', encode('network', net)).vni, 4096);
  assert.throws(() => decode('network', 'k', JSON.stringify({ ...net, v: 1, vni: 1 << 24 })), /vni is not a VNI/);
  // Storing a bad value is a programming error, caught before it reaches etcd.
  assert.throws(() => encode('address', { network: 'web', ip: 'nope', host: 'h', endpoint: 'e' }), /refusing to store a address value whose ip is not an IP address/);
});

test('alloc: VNIs from 4096, lowest free first', () => {
  assert.equal(pickVni([]), VNI_MIN);
  assert.equal(pickVni([4096, 4097, 4099]), 4098);
  assert.equal(pickVni([1, 2, 3]), 4096);
});

test('alloc: subnets from the pool skip taken and avoided blocks; given subnets checked', () => {
  assert.equal(pickSubnet([]), '10.90.0.0/24');
  assert.equal(pickSubnet(['10.90.0.0/24', '10.90.1.0/25']), '10.90.2.0/24');
  assert.equal(pickSubnet(['10.90.0.0/16']), '10.91.0.0/24');
  assert.throws(() => pickSubnet(['10.90.0.0/15']), /no free \/24 left/);
  const s6 = pickSubnet6([], '/nsnet/v1');
  assert.match(s6, /^fd[0-9a-f:]+\/64$/);
  assert.notEqual(pickSubnet6([s6], '/nsnet/v1'), s6);
  assert.deepEqual(planSubnet('10.90.7.0/24'), { subnet: '10.90.7.0/24', gateway: '10.90.7.1' });
  assert.deepEqual(planSubnet('10.90.7.0/24', '10.90.7.254'), { subnet: '10.90.7.0/24', gateway: '10.90.7.254' });
  assert.throws(() => planSubnet('10.90.7.1/24'), /host bits set/);
  assert.throws(() => planSubnet('10.90.7.0/24', '10.90.7.255'), /not a usable address/);
  assert.throws(() => planSubnet('10.90.7.0/31'), /must be \/30 or larger/);
  assert.deepEqual(planSubnet('fd00:1::/64'), { subnet: 'fd00:1::/64', gateway: 'fd00:1::1' });
});

test('alloc: addresses skip the network address, broadcast, gateway and taken ones; random within the window', () => {
  const taken = new Set(['10.0.0.2', '10.0.0.4']);
  assert.equal(pickAddress('10.0.0.0/24', '10.0.0.1', taken, 1), '10.0.0.3');
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) seen.add(pickAddress('10.0.0.0/24', '10.0.0.1', taken, 3)!);
  assert.deepEqual([...seen].sort(), ['10.0.0.3', '10.0.0.5', '10.0.0.6']);
  // Full: a /30 has one address besides its gateway.
  assert.equal(pickAddress('10.0.0.0/30', '10.0.0.1', new Set(), 4), '10.0.0.2');
  assert.equal(pickAddress('10.0.0.0/30', '10.0.0.1', new Set(['10.0.0.2']), 4), null);
  // IPv6: from ::2, a /64 costs nothing.
  assert.equal(pickAddress('fd00::/64', 'fd00::1', new Set(['fd00::2'])), 'fd00::3');
  assert.equal(checkStaticAddress('10.0.0.0/24', '10.0.0.1', '10.0.0.9'), '10.0.0.9');
  assert.throws(() => checkStaticAddress('10.0.0.0/24', '10.0.0.1', '10.0.1.9'), /does not belong to the network's subnet/);
  assert.throws(() => checkStaticAddress('10.0.0.0/24', '10.0.0.1', '10.0.0.1'), /is the network's gateway/);
  assert.throws(() => checkStaticAddress('10.0.0.0/24', '10.0.0.1', '10.0.0.255'), /not a usable address/);
  const p = Prefix.parse('10.0.0.0/24');
  assert.equal(isUsable(p, Addr.parse('10.0.0.0')), false);
  assert.equal(isUsable(p, Addr.parse('10.0.0.7')), true);
  assert.equal(macFor('10.0.0.2'), '02:42:0a:00:00:02');
  assert.equal(macFor('fd00::a:b'), '02:42:00:0a:00:0b');
});

test('endpoints: etcd://, http:// and bare HOST[:PORT], comma-separated; TLS and junk refused with one line', () => {
  assert.deepEqual(parseEndpoints('etcd://10.0.0.1:2379,etcd://10.0.0.2:2379'), ['http://10.0.0.1:2379', 'http://10.0.0.2:2379']);
  assert.deepEqual(parseEndpoints(['10.0.0.1', 'http://etcd-1.lab:12379', '10.0.0.1:2379']), ['http://10.0.0.1:2379', 'http://etcd-1.lab:12379']);
  assert.deepEqual(parseEndpoints('etcd://[FD00::1]:2379'), ['http://[fd00::1]:2379']);
  const bad: Array<[string, RegExp]> = [
    ['', /no etcd endpoint given/],
    ['https://10.0.0.1:2379', /TLS endpoints are not supported yet/],
    ['ftp://10.0.0.1', /unknown scheme ftp/],
    ['10.0.0.1:99999', /the port must be 1..65535/],
    ['[10.0.0.1]:2379', /expected an IPv6 address/],
    ['a b', /expected an IP address or a host name/],
    ['10.0.0.1/x', /expected etcd:\/\/HOST:PORT/],
  ];
  for (const [s, re] of bad) {
    assert.throws(() => parseEndpoints(s), (e: Error) => e instanceof UserError && re.test(e.message) && !e.message.includes('\n'), s);
  }
});

test('bounded: no answer within the bound is ClusterUnavailable naming the endpoints, on time; other errors pass through', async () => {
  const eps = ['http://203.0.113.11:2379', 'http://203.0.113.12:2379'];
  const t0 = Date.now();
  await assert.rejects(bounded(eps, 300, () => new Promise(() => undefined)), (e: Error) => {
    assert.ok(e instanceof ClusterUnavailable);
    assert.equal(e.message, 'etcd at http://203.0.113.11:2379,http://203.0.113.12:2379 unreachable (no answer within 0.3 s)');
    return true;
  });
  const ms = Date.now() - t0;
  assert.ok(ms >= 290 && ms < 2000, `${ms} ms`);
  const unavailable = Object.assign(new Error('14 UNAVAILABLE: No connection established'), { name: 'GRPCUnavailableError' });
  await assert.rejects(bounded(eps, 1000, () => Promise.reject(unavailable)), /^ClusterUnavailable: etcd at .* unreachable \(after 0\.\d s: 14 UNAVAILABLE: No connection established\)$/);
  const refused = new UserError('network web not found', 'notfound');
  await assert.rejects(bounded(eps, 1000, () => Promise.reject(refused)), (e) => e === refused);
  assert.equal(await bounded(eps, 1000, async () => 42), 42);
  assert.equal(isUnavailable(new UserError('etcd timed out')), false, 'a user error is never re-labelled');
  assert.equal(isUnavailable(Object.assign(new Error('x'), { name: 'GRPCDeadlineExceededError' })), true);
});

// ---- the watch, against a fake etcd3 client -------------------------------------------------------------------

const P = '/nsnet/v1/endpoints/web/';

function kv(id: string, host: string, rev: number, ip = '10.0.0.2') {
  const rec = { network: 'web', id, name: id, aliases: [], host, underlay: host === 'h1' ? '203.0.113.21' : '203.0.113.22', mac: macFor(ip), ips: [ip] };
  return { key: Buffer.from(P + id), value: Buffer.from(encode('endpoint', rec)), mod_revision: String(rev), create_revision: String(rev), lease: '0', version: '1' };
}

class FakeWatcher extends EventEmitter {
  request: { start_revision?: string };
  cancelled = false;
  constructor(start: string) {
    super();
    this.request = { start_revision: start };
  }
  async cancel(): Promise<void> {
    this.cancelled = true;
  }
}

function fake(list: () => { kvs: ReturnType<typeof kv>[]; revision: string }) {
  const watchers: FakeWatcher[] = [];
  const errors: unknown[] = [];
  const builder = () => {
    let start = '';
    const b = {
      prefix: () => b,
      withPreviousKV: () => b,
      startRevision: (r: string) => { start = r; return b; },
      watcher: () => { const w = new FakeWatcher(start); watchers.push(w); return w; },
    };
    return b;
  };
  const deps = { client: { watch: builder }, list: async () => list(), onError: (e: unknown) => errors.push(e) } as unknown as WatchDeps;
  return { deps, watchers, errors };
}

test('watch: the initial list, then events; resumes from the last event delivered; a cancel (compaction) resyncs as diffs; peers derived', async () => {
  let state = { kvs: [kv('a', 'h1', 5, '10.0.0.2')], revision: '7' };
  const f = fake(() => state);
  const got: NetworkEvent[] = [];
  const w = new NetworkWatch(f.deps, P, (ev) => got.push(ev));
  await w.start();
  assert.deepEqual(got.map((e) => e.type), ['peer-add', 'endpoint-add']);
  assert.equal(f.watchers.length, 1);
  assert.equal(f.watchers[0].request.start_revision, '8', 'watch from the list revision + 1');
  assert.equal(w.revision, 7);

  // Two events in one response whose header says 20: the next resume starts after the last event (11), not 21.
  const w1 = f.watchers[0];
  w1.emit('connected', { header: { revision: '20' } });
  w1.request.start_revision = '21'; // what etcd3 itself sets on 'connected' / 'data' (the header + 1)...
  w1.emit('data', { header: { revision: '20' }, events: [{ type: 'Put', kv: kv('b', 'h2', 10, '10.0.0.3') }, { type: 'Delete', kv: { ...kv('a', 'h1', 11), value: Buffer.alloc(0) } }] });
  assert.equal(w1.request.start_revision, '12', '...overridden: resume after the last event delivered');
  assert.equal(w.revision, 11);
  assert.deepEqual(got.slice(2).map((e) => e.type), ['peer-add', 'endpoint-add', 'endpoint-remove', 'peer-remove']);
  assert.deepEqual(got[5], { type: 'peer-remove', host: 'h1', underlay: '203.0.113.21' });
  // A progress notification (no events): everything up to its revision was sent.
  w1.emit('data', { header: { revision: '15' }, events: [] });
  assert.equal(w.revision, 15);
  // An update that changes nothing the consumer sees is not delivered; one that does is.
  w1.emit('data', { header: { revision: '16' }, events: [{ type: 'Put', kv: kv('b', 'h2', 16, '10.0.0.3') }] });
  assert.equal(got.length, 6);
  w1.emit('data', { header: { revision: '17' }, events: [{ type: 'Put', kv: kv('b', 'h2', 17, '10.0.0.9') }] });
  assert.equal(got[6].type, 'endpoint-update');
  // A value that does not validate is reported, not delivered.
  w1.emit('data', { header: { revision: '18' }, events: [{ type: 'Put', kv: { ...kv('c', 'h2', 18), value: Buffer.from('{"v":9}') } }] });
  assert.equal(got.length, 7);
  assert.equal(f.errors.length, 1);

  // Compacted: etcd cancels the watch; the view is rebuilt from a list, the differences delivered as events.
  state = { kvs: [kv('b', 'h2', 17, '10.0.0.9'), kv('d', 'h1', 30, '10.0.0.4')], revision: '31' };
  w1.emit('error', new Error('Watcher canceled: mvcc: required revision has been compacted'));
  await new Promise((r) => setTimeout(r, 20));
  assert.ok(w1.cancelled);
  assert.equal(f.watchers.length, 2);
  assert.equal(f.watchers[1].request.start_revision, '32');
  assert.equal(w.resyncs, 1);
  assert.deepEqual(got.slice(7).map((e) => e.type), ['peer-add', 'endpoint-add']);
  assert.equal((got[8] as { endpoint: EndpointRecord }).endpoint.id, 'd');
  assert.deepEqual(w.endpoints.map((e) => e.id).sort(), ['b', 'd']);
  assert.equal(f.errors.length, 1, 'a compaction is not reported as an error');
  // Events of the old watcher are ignored from now on.
  w1.emit('data', { header: { revision: '40' }, events: [{ type: 'Put', kv: kv('z', 'h1', 40) }] });
  assert.ok(!w.endpoints.some((e) => e.id === 'z'));
  await w.close();
  assert.ok(f.watchers[1].cancelled);
});
