// Issue #17, the etcd side: src/cluster/ against a real 3-member etcd cluster (Debian etcd-server) in throwaway
// namespaces (test/helpers/etcd.ts). Three simulated hosts are three Cluster clients in this process, whose
// main thread is in the underlay netns. Hosts join and heartbeat; a network made on one is seen by all and its
// name cannot be taken twice; 40 concurrent allocations from 3 hosts are 40 distinct addresses; a watch sees
// another host's endpoint come and go; a host that stops renewing its lease loses its endpoints and addresses
// after the TTL, they are reused, and the host coming back reconciles; one member down changes nothing; a
// watch cut off from etcd resumes from its revision (and resyncs after a compaction) without losing an event;
// all members down (stopped, or black-holed) fails operations with one clear error within the bound.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EtcdCluster } from '../helpers/etcd.js';
import { Cluster, ClusterUnavailable, type NetworkEvent } from '../../src/cluster/index.js';

const TTL = 3;
const TIMEOUT = 3000;

async function until<T>(what: string, fn: () => T | Promise<T>, ms = 20000, step = 100): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, step));
  }
}

test('cluster: hosts, networks, IPAM, endpoints and watches in a 3-member etcd cluster, through member and cluster outages', { timeout: 240000 }, async (t) => {
  const etcd = await EtcdCluster.start(3, 'cl');
  const clients: Cluster[] = [];
  t.after(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await etcd.cleanup();
    // Everything this test opened is closed: nothing may keep the process alive (a reconnect loop, a timer).
    setTimeout(() => {
      process.stderr.write(`still open 10 s after cleanup: ${process.getActiveResourcesInfo().join(' ')}\n`);
    }, 10000).unref();
  });
  etcd.enter();
  const connect = async (i: number, endpoints: string[] = etcd.endpoints) => {
    const c = await Cluster.connect(endpoints, { hostId: `h${i}`, advertise: `203.0.113.${20 + i}`, ttl: TTL, timeoutMs: TIMEOUT, heartbeatMs: 500 });
    clients.push(c);
    return c;
  };
  const [h1, h2, h3] = [await connect(1), await connect(2), await connect(3)];

  await t.test('3 hosts join; hosts() lists them with their underlay address and a heartbeat that advances', async () => {
    for (const h of [h1, h2, h3]) await h.join();
    const hs = await h2.hosts();
    assert.deepEqual(hs.map((h) => [h.host, h.advertise]), [['h1', '203.0.113.21'], ['h2', '203.0.113.22'], ['h3', '203.0.113.23']]);
    const beat = hs[0].heartbeat;
    assert.ok(Math.abs(Date.now() - beat) < 5000, 'a recent heartbeat');
    await until('h1 heartbeat advances', async () => (await h3.hosts()).find((h) => h.host === 'h1')!.heartbeat > beat);
  });

  await t.test('an overlay network created on host 1 is visible on hosts 2 and 3; the name cannot be taken again', async () => {
    const net = await h1.createNetwork({ name: 'web', subnet: '10.90.7.0/24' });
    assert.equal(net.gateway, '10.90.7.1');
    assert.ok(net.vni >= 4096 && net.vni <= 0xffffff, `VNI ${net.vni}`);
    assert.deepEqual(await h2.network('web'), net);
    assert.deepEqual((await h3.networks()).map((n) => [n.name, n.vni, n.subnet]), [['web', net.vni, '10.90.7.0/24']]);
    await assert.rejects(h2.createNetwork({ name: 'web' }), { message: 'network with name web already exists' });
    await assert.rejects(h3.createNetwork({ name: 'other', subnet: '10.90.7.128/25' }), /Pool overlaps with other one on this address space/);
    // Two hosts creating networks at the same moment: distinct VNIs and subnets.
    const [a, b] = await Promise.all([h2.createNetwork({ name: 'a' }), h3.createNetwork({ name: 'b' })]);
    assert.notEqual(a.vni, b.vni);
    assert.notEqual(a.subnet, b.subnet);
    assert.ok(![a.vni, b.vni].includes(net.vni));
    await h2.removeNetwork('a');
    await h3.removeNetwork('b');
    // Dual stack: an IPv6 /64 of the cluster's ULA block, addresses of both families for one endpoint.
    const d = await h1.createNetwork({ name: 'dual', ipv6: true });
    assert.match(d.subnet6 ?? '', /^fd[0-9a-f:]+::\/64$/);
    const v4 = await h2.allocateAddress('dual', 'e6');
    const v6 = await h2.allocateAddress('dual', 'e6', { family: 6 });
    assert.equal(v6, d.subnet6!.replace('/64', '2'));
    const ep6 = await h2.registerEndpoint('dual', { id: 'e6', name: 'six', ips: [v4, v6] });
    assert.deepEqual(ep6.ips, [v4, v6]);
    await h2.removeEndpoint('dual', 'e6');
    assert.deepEqual(await h1.addresses('dual'), []);
    await h1.removeNetwork('dual');
    assert.deepEqual((await h1.networks()).map((n) => n.name), ['web']);
    await assert.rejects(h1.removeNetwork('a'), { message: 'network a not found' });
  });

  const byHost = new Map<string, string[]>();
  await t.test('40 concurrent address allocations across 3 hosts give 40 distinct addresses', async () => {
    const jobs = Array.from({ length: 40 }, (_, i) => {
      const h = [h1, h2, h3][i % 3];
      return h.allocateAddress('web', `ep${i}`).then((ip) => ({ host: h.hostId, ip }));
    });
    const got = await Promise.all(jobs);
    const ips = got.map((g) => g.ip);
    assert.equal(new Set(ips).size, 40, `distinct: ${ips.join(' ')}`);
    for (const ip of ips) assert.match(ip, /^10\.90\.7\.\d+$/);
    assert.ok(!ips.includes('10.90.7.1'), 'never the gateway');
    for (const g of got) byHost.set(g.host, [...(byHost.get(g.host) ?? []), g.ip]);
    const recs = await h1.addresses('web');
    assert.equal(recs.length, 40);
    await assert.rejects(h2.allocateAddress('web', 'dup', { ip: ips[0] }), /Address already in use/);
    await assert.rejects(h2.removeNetwork('web'), /has active endpoints/);
  });

  const events: NetworkEvent[] = [];
  const seen = (type: string, id: string) => events.some((e) => e.type === type && 'endpoint' in e && e.endpoint.id === id);
  await t.test("a watch on host 2 sees host 1's endpoint (and host 1 as a peer) come and go", async () => {
    const w = await h2.watchNetwork('web', (ev) => events.push(ev));
    assert.equal(w.endpoints.length, 0);
    const ip = byHost.get('h1')![0];
    const ep = await h1.registerEndpoint('web', { id: 'ep0', name: 'api', aliases: ['api.web'], ips: [ip] });
    assert.equal(ep.mac, `02:42:${ip.split('.').map((x) => Number(x).toString(16).padStart(2, '0')).join(':')}`);
    await until('endpoint-add', () => seen('endpoint-add', 'ep0'));
    const add = events.find((e) => e.type === 'endpoint-add')!;
    assert.deepEqual(add, { type: 'endpoint-add', endpoint: ep });
    assert.deepEqual(events[0], { type: 'peer-add', host: 'h1', underlay: '203.0.113.21' });
    // An address that is not the host's own cannot be registered.
    await assert.rejects(h1.registerEndpoint('web', { id: 'ep-x', name: 'x', ips: [byHost.get('h2')![0]] }), /is not allocated to this host/);
    await h1.removeEndpoint('web', 'ep0');
    await until('endpoint-remove', () => seen('endpoint-remove', 'ep0'));
    await until('peer-remove', () => events.some((e) => e.type === 'peer-remove' && e.host === 'h1'));
    assert.ok(!(await h1.addresses('web')).some((a) => a.ip === ip), 'the endpoint took its address along');
    byHost.set('h1', byHost.get('h1')!.slice(1));
  });

  await t.test("a host whose lease stops loses its endpoints and addresses after the TTL; they are reused; it comes back and reconciles", async () => {
    const mine = byHost.get('h3')!;
    const [ip1, ip2] = mine;
    await h3.registerEndpoint('web', { id: 'db', name: 'db', ips: [ip1] });
    await h3.registerEndpoint('web', { id: 'cache', name: 'cache', ips: [ip2] });
    await until('h3 endpoints seen', () => seen('endpoint-add', 'db') && seen('endpoint-add', 'cache'));
    const t0 = Date.now();
    await h3.close(); // no leave: the lease is left to expire
    await until('h3 endpoints removed', () => seen('endpoint-remove', 'db') && seen('endpoint-remove', 'cache'), TTL * 1000 + 10000);
    const after = Date.now() - t0;
    assert.ok(after >= (TTL - 1) * 1000, `not before the TTL (${after} ms)`);
    assert.ok(events.some((e) => e.type === 'peer-remove' && e.host === 'h3'));
    assert.deepEqual((await h1.hosts()).map((h) => h.host), ['h1', 'h2']);
    const left = new Set((await h1.addresses('web')).map((a) => a.ip));
    for (const ip of mine) assert.ok(!left.has(ip), `${ip} reclaimed`);
    // Reused: a new allocation takes the lowest free address (h3's or not), and h3's are free to take.
    const before = new Set((await h1.addresses('web')).map((x) => x.ip));
    let lowest = 2;
    while (before.has(`10.90.7.${lowest}`)) lowest++;
    const again = await h1.allocateAddress('web', 'reuse');
    assert.equal(again, `10.90.7.${lowest}`);
    if (again !== ip1) assert.equal(await h1.allocateAddress('web', 'reuse2', { ip: ip1 }), ip1, "h3's address reused");
    // h3 comes back (a new process): keeps what is still free, reports what another host took meanwhile.
    const h3b = await connect(3);
    await h3b.join();
    const r = await h3b.reconcile([
      { network: 'web', id: 'db', name: 'db', ips: [ip1] },
      { network: 'web', id: 'cache', name: 'cache', ips: [ip2] },
    ]);
    if (again === ip2) {
      assert.deepEqual(r.kept, []);
      assert.deepEqual(r.conflicts.map((c) => [c.ip, c.owner]).sort(), [[ip1, 'h1'], [ip2, 'h1']].sort());
    } else {
      assert.deepEqual(r.kept, [ip2]);
      assert.deepEqual(r.conflicts, [{ network: 'web', endpoint: 'db', ip: ip1, owner: 'h1' }]);
      assert.deepEqual(r.endpoints, ['cache']);
      await until('cache back', () => events.filter((e) => e.type === 'endpoint-add' && e.endpoint.id === 'cache').length === 2);
    }
    byHost.set('h3', [...(again === ip2 ? [] : [ip2])]);
    await h3b.close();
  });

  await t.test('one etcd member down: joins, allocations, registrations and watches still work', async () => {
    const down = Math.max(0, etcd.leader());
    await etcd.stopMember(down);
    try {
      const ip = await h1.allocateAddress('web', 'm1');
      await h1.registerEndpoint('web', { id: 'm1', name: 'm1', ips: [ip] });
      await until('m1 seen by host 2', () => seen('endpoint-add', 'm1'));
      const hostEvents: string[] = [];
      const hw = await h2.watchHosts((ev) => hostEvents.push(`${ev.type} ${ev.host.host}`));
      const h4 = await connect(4);
      await h4.join();
      assert.ok((await h2.hosts()).some((h) => h.host === 'h4'));
      const net = await h4.createNetwork({ name: 'during-outage' });
      await h4.removeNetwork(net.name);
      await until('h4 beats', async () => (await h1.hosts()).find((h) => h.host === 'h4')!.heartbeat > Date.now() - 300);
      await h4.leave();
      await until('host watch: h4 up and down', () => hostEvents.includes('host-down h4'));
      assert.deepEqual(hostEvents.filter((e) => !e.startsWith('host-up h') || e === 'host-up h4'), ['host-up h4', 'host-down h4'], 'heartbeats are not events');
      await hw.close();
    } finally {
      await etcd.startMember(down);
    }
  });

  await t.test('a watch cut off from etcd resumes from its revision without losing an event, and resyncs after a compaction', async () => {
    // A host whose only etcd endpoint is member 3.
    const hw = await connect(5, [etcd.members[2].endpoint]);
    const got: NetworkEvent[] = [];
    const w = await hw.watchNetwork('web', (ev) => got.push(ev));
    const startCount = w.endpoints.length;
    await etcd.stopMember(2);
    const ips: string[] = [];
    for (let i = 0; i < 5; i++) {
      const ip = await h1.allocateAddress('web', `x${i}`);
      ips.push(ip);
      await h1.registerEndpoint('web', { id: `x${i}`, name: `x${i}`, ips: [ip] });
    }
    await h1.removeEndpoint('web', 'x0');
    await etcd.startMember(2);
    await until('resumed watch caught up', () => got.some((e) => e.type === 'endpoint-remove' && e.endpoint.id === 'x0') && w.endpoints.length === startCount + 4);
    const ids = got.filter((e) => e.type === 'endpoint-add').map((e) => (e as { endpoint: { id: string } }).endpoint.id);
    assert.deepEqual(ids.slice(-5), ['x0', 'x1', 'x2', 'x3', 'x4'], 'every add delivered, in order (x0 too, though gone)');
    assert.equal(w.resyncs, 0, 'resumed, not re-listed');

    // Cut off again; meanwhile changes, and the history compacted past the watch's revision.
    await etcd.stopMember(2);
    await h1.removeEndpoint('web', 'x1');
    const y = await h1.allocateAddress('web', 'y');
    await h1.registerEndpoint('web', { id: 'y', name: 'y', ips: [y] });
    const rev = (await h1.client.kv.range({ key: Buffer.from('/') })).header.revision;
    await h1.client.kv.compact({ revision: rev, physical: true });
    await etcd.startMember(2);
    await until('resync after compaction', () => w.resyncs >= 1 && w.endpoints.some((e) => e.id === 'y') && !w.endpoints.some((e) => e.id === 'x1'));
    assert.ok(got.some((e) => e.type === 'endpoint-remove' && e.endpoint.id === 'x1'), 'the removal during the outage delivered');
    assert.ok(got.some((e) => e.type === 'endpoint-add' && e.endpoint.id === 'y'));
    const truth = (await h1.endpoints('web')).map((e) => e.id).sort();
    assert.deepEqual(w.endpoints.map((e) => e.id).sort(), truth);
    await hw.close();
  });

  await t.test('a host cut off for longer than the TTL loses its lease; back, it re-joins and re-claims its addresses (those still free)', async () => {
    // A host that reaches etcd only through member 3; cutting member 3 off cuts the host off, the other two go on.
    const h6 = await connect(6, [etcd.members[2].endpoint]);
    await h6.join();
    const a = await h6.allocateAddress('web', 'r1');
    const b = await h6.allocateAddress('web', 'r2');
    await h6.registerEndpoint('web', { id: 'r1', name: 'r1', ips: [a] });
    await h6.registerEndpoint('web', { id: 'r2', name: 'r2', ips: [b] });
    await until('r1, r2 seen', () => seen('endpoint-add', 'r1') && seen('endpoint-add', 'r2'));
    const lost = new Promise<void>((r) => h6.once('lease-lost', () => r()));
    const rejoined = new Promise<{ kept: string[]; conflicts: Array<{ ip: string; owner: string }>; endpoints: string[] }>((r) => h6.once('rejoined', r));
    etcd.isolate(2, true);
    try {
      await until('h6 expired for the others', () => seen('endpoint-remove', 'r1') && seen('endpoint-remove', 'r2'), TTL * 1000 + 15000);
      assert.ok(!(await h1.hosts()).some((h) => h.host === 'h6'));
      // Meanwhile another host takes one of its addresses.
      assert.equal(await h1.allocateAddress('web', 'took', { ip: b }), b);
    } finally {
      etcd.isolate(2, false);
    }
    await lost;
    const r = await rejoined;
    assert.deepEqual(r.kept, [a]);
    assert.deepEqual(r.conflicts.map((c) => [c.ip, c.owner]), [[b, 'h1']]);
    assert.deepEqual(r.endpoints, ['r1']);
    assert.ok(h6.joined);
    assert.ok((await h1.hosts()).some((h) => h.host === 'h6'));
    await until('r1 back for the others', () => events.filter((e) => e.type === 'endpoint-add' && e.endpoint.id === 'r1').length === 2);
    assert.equal((await h1.addresses('web')).find((x) => x.ip === a)?.host, 'h6');
    await h6.leave();
    await h1.releaseAddress('web', b);
  });

  await t.test('all members down: operations fail with one clear error within the bound; back: the watch resumes', async () => {
    const before = events.length;
    for (const mode of ['stopped', 'black-holed'] as const) {
      if (mode === 'stopped') await etcd.stopAll();
      else for (let i = 0; i < 3; i++) etcd.isolate(i, true);
      try {
        for (const f of [() => h1.allocateAddress('web', 'z'), () => h2.networks(), () => Cluster.connect(etcd.endpoints, { hostId: 'h9', advertise: '203.0.113.29', timeoutMs: TIMEOUT })]) {
          const t0 = Date.now();
          await assert.rejects(f(), (e: Error) => {
            assert.ok(e instanceof ClusterUnavailable, `${mode}: ${e.name}: ${e.message}`);
            assert.match(e.message, /^etcd at http:\/\/203\.0\.113\.11:2379,http:\/\/203\.0\.113\.12:2379,http:\/\/203\.0\.113\.13:2379 unreachable/);
            assert.ok(!e.message.includes('\n'), 'one line');
            return true;
          });
          const ms = Date.now() - t0;
          assert.ok(ms <= TIMEOUT + 1500, `${mode}: failed after ${ms} ms`);
        }
      } finally {
        if (mode === 'stopped') await etcd.startAll();
        else for (let i = 0; i < 3; i++) etcd.isolate(i, false);
      }
    }
    // Back: this host is joined (its lease kept or renewed), and the watch delivers what happens now.
    await until('h1 joined again', () => h1.joined, 30000);
    const ip = await until('allocation works again', () => h1.allocateAddress('web', 'back').catch(() => null), 30000, 500);
    await h1.registerEndpoint('web', { id: 'back', name: 'back', ips: [ip!] });
    await until('watch resumed', () => events.slice(before).some((e) => e.type === 'endpoint-add' && e.endpoint.id === 'back'), 30000);
    // Host 2's long-running watch and a fresh one agree with etcd (host 1 may still be re-registering what it
    // holds if its lease lapsed during the outage: compared until it settles).
    const w = await h2.watchNetwork('web', () => undefined);
    const fromEvents = () => {
      const ids = new Set<string>();
      for (const e of events) {
        if (e.type === 'endpoint-add') ids.add(e.endpoint.id);
        if (e.type === 'endpoint-remove') ids.delete(e.endpoint.id);
      }
      return [...ids].sort().join(' ');
    };
    await until('watches agree with etcd', async () => {
      const truth = (await h1.endpoints('web')).map((e) => e.id).sort().join(' ');
      return w.endpoints.map((e) => e.id).sort().join(' ') === truth && fromEvents() === truth;
    }, 15000, 300);
    await w.close();
  });

  await t.test('leave removes the host, its addresses and endpoints at once', async () => {
    await h2.leave();
    const hs = (await h1.hosts()).map((h) => h.host);
    assert.ok(!hs.includes('h2'));
    assert.ok(!(await h1.addresses('web')).some((a) => a.host === 'h2'));
  });
});
