// The pure planner of `nsnet explain` (src/explain/plan.ts) on a store-like topology: same network, across
// networks, internal, icc=false (port isolation), published ports from outside, hairpin, outbound, names, modes,
// a stopped container, bad input. No root, no kernel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildModel } from '../../src/firewall/ruleset.js';
import { explain, formatExplanation, parseTo, type ExplainInput, type Explanation } from '../../src/explain/plan.js';
import type { ContainerRecord, EndpointRecord, FirewallState, NetworkRecord, PortMapping } from '../../src/types.js';
import { UserError } from '../../src/util/errors.js';
import { hexId } from './firewall-fixtures.js';

function network(name: string, subnet: string, o: Partial<NetworkRecord> = {}): NetworkRecord {
  const id = hexId(`net-${name}`);
  return {
    id, name, driver: 'bridge', bridge: o.isDefault ? 'nsnet0' : `nsbr-${id.slice(0, 10)}`, subnet, gateway: subnet.replace(/\.0\/\d+$/, '.1'),
    ipRange: null, internal: false, icc: true, mtu: 1500, isDefault: false, labels: {}, options: {}, created: '2026-01-01T00:00:00Z', ...o,
  };
}
const bridgeNet = network('bridge', '172.17.0.0/16', { isDefault: true });
const oa = network('oa-net', '172.18.0.0/16');
const backend = network('backend', '172.19.0.0/16', { internal: true });
const quiet = network('quiet', '172.20.0.0/16', { icc: false });
const tools = network('tools', '10.99.0.0/24');
const networks = [bridgeNet, oa, backend, quiet, tools];

const containers: ContainerRecord[] = [];
const endpoints: EndpointRecord[] = [];
function ctr(name: string, eps: Array<[NetworkRecord, string, string[]?]>, o: Partial<ContainerRecord> = {}): ContainerRecord {
  const id = hexId(`ctr-${name}`);
  const c: ContainerRecord = {
    id, name, mode: 'bridge', modeTarget: null, netns: `nsnet-x-${name}`, command: ['sleep', 'inf'], ports: [], dns: [], autoRemove: false,
    state: 'running', pid: 100, pidStart: '1', exitCode: null, created: '', started: '', finished: null, used: true, ...o,
  };
  containers.push(c);
  eps.forEach(([n, ip, aliases], i) => endpoints.push({
    containerId: id, containerName: name, networkId: n.id, ifname: `eth${i}`, hostIf: `nsv${name.slice(0, 6)}${i}`, ip, mac: '', aliases: aliases ?? [], staticIp: false,
  }));
  return c;
}
const pm = (hostPort: number, containerPort: number, proto: 'tcp' | 'udp' = 'tcp', hostIp = ''): PortMapping => ({ hostIp, hostPort, hostPortEnd: hostPort, containerPort, containerPortEnd: containerPort, proto });

ctr('web', [[oa, '172.18.0.2', ['www']]], { ports: [pm(8080, 80), pm(5353, 53, 'udp')] });
ctr('db', [[oa, '172.18.0.3'], [backend, '172.19.0.2']], { ports: [pm(5432, 5432, 'tcp', '127.0.0.1')] });
ctr('cache', [[backend, '172.19.0.3']]);
ctr('q1', [[quiet, '172.20.0.2']]);
ctr('q2', [[quiet, '172.20.0.3']], { ports: [pm(8081, 80)] });
ctr('tool', [[tools, '10.99.0.2']]);
ctr('legacy', [[bridgeNet, '172.17.0.2']]);
ctr('legacy2', [[bridgeNet, '172.17.0.3']]);
ctr('hostc', [], { mode: 'host', netns: '' });
ctr('lonely', [], { mode: 'none' });
ctr('sidecar', [], { mode: 'container', modeTarget: hexId('ctr-web'), netns: '' });
ctr('stopped', [[oa, '172.18.0.9']], { state: 'exited', pid: null });

function fwState(): FirewallState {
  const ports: FirewallState['ports'] = [];
  for (const c of containers) {
    const ep = endpoints.find((e) => e.containerId === c.id && !networks.find((n) => n.id === e.networkId)!.internal);
    if (!ep || c.mode !== 'bridge') continue;
    for (const p of c.ports) ports.push({ ...p, containerId: c.id, containerIp: ep.ip, networkId: ep.networkId });
  }
  return { networks: networks.map((n) => ({ id: n.id, name: n.name, bridge: n.bridge, subnet: n.subnet, gateway: n.gateway, internal: n.internal, icc: n.icc })), ports };
}

const HOST = '192.0.2.10';
function input(o: Partial<ExplainInput> = {}): ExplainInput {
  const user = networks.filter((n) => !n.isDefault);
  return {
    networks, containers, endpoints, model: buildModel(fwState()),
    dns: {
      networks: user.map((n) => ({ id: n.id, name: n.name, gateway: n.gateway })),
      entries: endpoints.filter((e) => user.some((n) => n.id === e.networkId)).map((e) => ({ networkId: e.networkId, names: [e.containerName, ...e.aliases], ip: e.ip, containerId: e.containerId })),
    },
    host: {
      addrs: [{ ifname: 'lo', address: '127.0.0.1', prefixLen: 8 }, { ifname: 'eth0', address: HOST, prefixLen: 24 },
        ...networks.map((n) => ({ ifname: n.bridge, address: n.gateway, prefixLen: Number(n.subnet.split('/')[1]) }))],
      routes: [{ dst: '0.0.0.0', prefixLen: 0, gateway: '192.0.2.1', ifname: 'eth0' }, { dst: '192.0.2.0', prefixLen: 24, gateway: null, ifname: 'eth0' },
        ...networks.map((n) => ({ dst: n.subnet.split('/')[0], prefixLen: Number(n.subnet.split('/')[1]), gateway: null, ifname: n.bridge }))],
      brNetfilter: true,
    },
    ...o,
  };
}

function ex(from: string, to: string, o: Partial<ExplainInput> = {}): Explanation {
  const e = explain(input(o), from, parseTo(to));
  // Every explanation is printable, and says its verdict.
  assert.match(formatExplanation(e), new RegExp(`verdict: ${e.verdict.toUpperCase()}`));
  return e;
}
const why = (e: Explanation) => formatExplanation(e);

test('same network: bridged, accepted by the icc rule, the name resolves on that network', () => {
  const e = ex('web', 'db:5432');
  assert.equal(e.verdict, 'delivered', why(e));
  assert.equal(e.packet?.saddr, '172.18.0.2');
  assert.equal(e.packet?.daddr, '172.18.0.3');
  assert.equal(e.packet?.iif, oa.bridge);
  assert.equal(e.decidedBy, undefined);
  assert.deepEqual(e.names, [`db resolves to 172.18.0.3 on network oa-net from web (nsnet's resolver on 172.18.0.1)`]);
  assert.ok(e.chains.some((c) => c.chain === 'forward' && c.outcome === 'accept'), why(e));
  assert.ok(e.hops.some((h) => /arrives on eth0 172\.18\.0\.3 of db/.test(h.text)), why(e));
  assert.equal(e.to.name, 'db');
  assert.deepEqual(e.probe, { from: { kind: 'container', id: hexId('ctr-web'), name: 'web' }, saddr: '172.18.0.2', daddr: '172.18.0.3', proto: 'tcp', dport: 5432, hostHook: 'prerouting' });
  // Without br_netfilter only the bridge family could see it: no nsnet chain at all (no icc=false bridge table rule matches).
  const off = ex('web', 'db:5432', { host: { ...input().host, brNetfilter: false } });
  assert.equal(off.verdict, 'delivered');
  assert.ok(off.chains.every((c) => c.table === 'bridge nsnet'), why(off));
  // An alias resolves too.
  const alias = ex('db', 'www:80');
  assert.equal(alias.verdict, 'delivered', why(alias));
  assert.match(alias.names[0], /^www resolves to 172\.18\.0\.2 on network oa-net from db/);
});

test('across networks: routed via the gateway and dropped by isolation; the fix connects FROM to TO\'s network', () => {
  const e = ex('web', 'tool:80');
  assert.equal(e.verdict, 'dropped', why(e));
  assert.equal(e.decidedBy?.purpose, 'isolation');
  assert.equal(e.decidedBy?.chain, 'forward');
  assert.match(e.hops[0].text, /route default via 172\.18\.0\.1 dev eth0/);
  assert.deepEqual(e.fix, ['nsnet network connect tools web']);
  assert.match(e.names[0], /^tool does not resolve from web: they share no user-defined network \(web: oa-net; tool: tools\)/);
  // Published port of the other side: the hairpin way is offered.
  const q = ex('tool', 'q2:80');
  assert.equal(q.verdict, 'dropped');
  assert.ok(q.fix.includes('nsnet network connect quiet tool'), why(q));
  assert.ok(q.fix.some((f) => /published port: HOSTADDR:8081/.test(f)), why(q));
});

test('hairpin: a container reaches a published port through a host address: DNAT, masquerade, delivered', () => {
  const e = ex('tool', 'host:8080');
  assert.equal(e.verdict, 'delivered', why(e));
  assert.equal(e.packet?.daddr, '10.99.0.1', 'host = the gateway of its network');
  assert.ok(e.hops.some((h) => /^DNAT 10\.99\.0\.1:8080 -> 172\.18\.0\.2:80 \(published port of web\)/.test(h.text)), why(e));
  assert.ok(e.hops.some((h) => /^masquerade: source 10\.99\.0\.2 -> 172\.18\.0\.1/.test(h.text)), why(e));
  assert.equal(e.to.name, 'web');
  // Its own published port via the host's uplink address: with br_netfilter the DNATed frame is bridged back
  // (bridged DNAT), so the bridge family's forward hook runs too, as the kernel's trace shows.
  const own = ex('web', `${HOST}:8080`);
  assert.equal(own.verdict, 'delivered', why(own));
  assert.equal(own.to.name, 'web');
  assert.deepEqual(own.chains.filter((c) => c.depth === 0).map((c) => `${c.table} ${c.chain}`),
    ['inet nsnet guard', 'inet nsnet prerouting', 'bridge nsnet forward', 'inet nsnet forward', 'inet nsnet postrouting']);
  const off = ex('web', `${HOST}:8080`, { host: { ...input().host, brNetfilter: false } });
  assert.ok(!off.chains.some((c) => c.table === 'bridge nsnet'), 'routed without br_netfilter');
  // Inside an icc=false network a hairpin stays in the bridge: port isolation drops it.
  const q = ex('q1', 'host:8081');
  assert.equal(q.verdict, 'dropped', why(q));
  assert.equal(q.decidedBy?.purpose, 'port-isolation');
  assert.ok(q.fix.includes('nsnet network create NET && nsnet network connect NET q1 && nsnet network connect NET q2'), why(q));
  assert.ok(!q.chains.some((c) => c.hook !== 'prerouting'), 'the bridge drops it before any forward hook');
  // From another network it works (routed in, DNAT, masquerade).
  assert.equal(ex('tool', 'host:8081').verdict, 'delivered');
});

test('FROM and TO as addresses: a container\'s, the host\'s, an outside machine\'s', () => {
  const e = ex('172.18.0.2', '172.18.0.3:5432');
  assert.equal(e.from.name, 'web');
  assert.equal(e.to.name, 'db');
  assert.deepEqual(e.names, [], 'no name asked');
  const up = ex('198.51.100.7', `${HOST}:8080`);
  assert.equal(up.verdict, 'delivered');
  assert.equal(up.packet?.saddr, '198.51.100.7');
  assert.equal(up.packet?.iif, 'eth0');
  const gw = ex('web', '172.18.0.1:53/udp');
  assert.equal(gw.to.kind, 'host');
  assert.equal(gw.verdict, 'delivered');
  const h = ex(HOST, 'web:80');
  assert.equal(h.from.kind, 'host');
  assert.equal(h.probe?.hostHook, 'output');
});

test('internal network: nothing leaves it; the host only for DNS; the fix joins a normal network', () => {
  const out = ex('cache', 'outside:443');
  assert.equal(out.verdict, 'dropped', why(out));
  assert.equal(out.decidedBy?.purpose, 'internal');
  assert.match(out.decidedBy!.text, /nothing leaves its bridge/);
  assert.ok(out.fix[0].startsWith('nsnet network connect ') && out.fix[0].endsWith(' cache'), why(out));
  const web = ex('cache', 'web:80');
  assert.equal(web.verdict, 'dropped');
  assert.deepEqual(web.fix, ['nsnet network connect oa-net cache']);
  const ssh = ex('cache', 'host:22');
  assert.equal(ssh.verdict, 'dropped');
  assert.match(ssh.decidedBy!.text, /nothing else reaches the host/);
  const dns = ex('cache', 'host:53/udp');
  assert.equal(dns.verdict, 'delivered', why(dns));
  // Into the internal network from another network: dropped, the fix joins it.
  const into = ex('tool', '172.19.0.3:6379');
  assert.equal(into.verdict, 'dropped');
  assert.equal(into.decidedBy?.purpose, 'internal');
  assert.deepEqual(into.fix, ['nsnet network connect backend tool']);
  // db is on both: it reaches cache over backend.
  const db = ex('db', 'cache:6379');
  assert.equal(db.verdict, 'delivered', why(db));
  assert.equal(db.packet?.saddr, '172.19.0.2');
});

test('icc=false: dropped by kernel port isolation in the bridge, the firewall would agree; gateway still reachable', () => {
  for (const brNetfilter of [true, false]) {
    const e = ex('q1', 'q2:80', { host: { ...input().host, brNetfilter } });
    assert.equal(e.verdict, 'dropped', why(e));
    assert.equal(e.decidedBy?.purpose, 'port-isolation');
    assert.match(e.reason, /icc=false: bridge port isolation/);
    assert.ok(e.notes.some((n) => /nsnet's firewall would drop it too: bridge nsnet forward/.test(n)), why(e));
    assert.ok(!e.chains.some((c) => c.hook === 'forward'), 'the forward hooks are never reached');
    assert.ok(e.fix.some((f) => /nsnet network create NET && nsnet network connect NET q1 && nsnet network connect NET q2/.test(f)), why(e));
  }
  assert.equal(ex('q1', 'host:53/udp').verdict, 'delivered');
  assert.equal(ex('q1', 'outside:443').verdict, 'delivered');
});

test('published port from outside: DNAT keeps the client address; an unpublished port is refused by no-direct-access', () => {
  const e = ex('outside', 'web:80');
  assert.equal(e.verdict, 'delivered', why(e));
  assert.equal(e.packet?.iif, 'eth0');
  assert.equal(e.packet?.daddr, HOST);
  assert.equal(e.packet?.dport, 8080);
  assert.ok(e.notes.some((n) => /published as 0\.0\.0\.0:8080/.test(n)));
  assert.ok(!e.hops.some((h) => h.text.startsWith('masquerade')), 'the server sees the client');
  assert.equal(e.noProbe !== undefined, true, 'nsnet cannot send from outside');
  const host = ex('outside', 'host:8080');
  assert.equal(host.verdict, 'delivered');
  assert.equal(host.to.name, 'web');
  const direct = ex('outside', 'tool:80');
  assert.equal(direct.verdict, 'dropped', why(direct));
  assert.equal(direct.decidedBy?.purpose, 'no-direct-access');
  assert.match(direct.fix[0], /^publish the port: -p HOSTPORT:80 /);
  assert.ok(direct.notes.some((n) => /nobody published tool's port 80\/tcp/.test(n)));
  // A loopback-only port is not for outside.
  const lo = ex('outside', 'db:5432');
  assert.equal(lo.verdict, 'dropped');
  assert.ok(lo.notes.some((n) => /published on 127\.0\.0\.1 only/.test(n)), why(lo));
  // Nobody published 9999: the host itself gets it.
  const none = ex('outside', 'host:9999');
  assert.equal(none.verdict, 'delivered');
  assert.ok(none.notes.some((n) => /no container publishes 9999\/tcp/.test(n)));
});

test('the host: reaches containers directly (internal too), its 127.0.0.1 published port is DNATed and masqueraded', () => {
  const e = ex('host', 'cache:6379');
  assert.equal(e.verdict, 'delivered', why(e));
  assert.equal(e.packet?.saddr, '172.19.0.1');
  assert.equal(e.probe?.hostHook, 'output');
  const lo = ex('host', '127.0.0.1:5432');
  assert.equal(lo.verdict, 'delivered', why(lo));
  assert.equal(lo.to.name, 'db');
  assert.ok(lo.hops.some((h) => /^masquerade: source 127\.0\.0\.1 -> 172\.18\.0\.1/.test(h.text)), why(lo));
  assert.equal(ex('host', 'outside:443').verdict, 'delivered');
});

test('outbound: masqueraded to the uplink address; a host without a default route drops it', () => {
  const e = ex('web', 'outside:443');
  assert.equal(e.verdict, 'delivered', why(e));
  assert.equal(e.packet?.daddr, '192.0.2.1', 'outside = the default gateway');
  assert.ok(e.hops.some((h) => /^masquerade: source 172\.18\.0\.2 -> 192\.0\.2\.10 \(leaving via eth0\)/.test(h.text)), why(e));
  const nodef = input();
  nodef.host = { ...nodef.host, routes: nodef.host.routes.filter((r) => r.prefixLen !== 0) };
  const n = explain(nodef, 'web', parseTo('8.8.8.8:53/udp'));
  assert.equal(n.verdict, 'dropped', formatExplanation(n));
  assert.match(n.reason, /the host has no route to 8\.8\.8\.8/);
});

test('names: the default network has none; a container not on a shared network does not resolve', () => {
  const e = ex('legacy', 'legacy2:80');
  assert.equal(e.verdict, 'delivered', why(e));
  assert.match(e.names[0], /^legacy2 does not resolve from legacy: its first network is the default network bridge, which has no name service/);
  assert.equal(e.packet?.daddr, '172.17.0.3', 'still reachable by address');
  const w = ex('web', 'legacy:80');
  assert.match(w.names[0], /legacy is only on the default network bridge, which has no name service/);
  assert.equal(w.verdict, 'dropped');
  // "name.network" works as the resolver answers it, only for networks the asker is on.
  const q = ex('db', 'cache.backend:6379');
  assert.equal(q.verdict, 'delivered', why(q));
  assert.match(q.names[0], /^cache\.backend resolves to 172\.19\.0\.3 on network backend from db/);
  assert.throws(() => ex('web', 'cache.backend:6379'), /no such container: cache\.backend/);
});

test('modes and states: none, host, container:, not running, no such address', () => {
  const none = ex('lonely', 'web:80');
  assert.equal(none.verdict, 'dropped');
  assert.equal(none.decidedBy?.purpose, 'mode');
  assert.match(none.reason, /network mode none/);
  assert.equal(ex('web', 'lonely:80').verdict, 'dropped');
  const hostc = ex('hostc', 'web:80');
  assert.equal(hostc.verdict, 'delivered', why(hostc));
  assert.ok(hostc.notes.some((n) => /hostc has network mode host/.test(n)));
  const side = ex('sidecar', 'db:5432');
  assert.equal(side.verdict, 'delivered');
  assert.equal(side.packet?.saddr, '172.18.0.2', 'sends as web');
  assert.equal(ex('sidecar', 'web:80').hops[0].text, 'web is in the same network namespace: over lo');
  const stopped = ex('web', 'stopped:80');
  assert.equal(stopped.verdict, 'delivered');
  assert.ok(stopped.warnings.some((x) => /stopped is not running \(exited\)/.test(x)), why(stopped));
  assert.deepEqual(stopped.fix, ['nsnet start stopped']);
  const nobody = ex('web', '172.18.0.77:80');
  assert.equal(nobody.verdict, 'dropped');
  assert.match(nobody.reason, /no container has 172\.18\.0\.77 on network oa-net/);
  const own = ex('web', '127.0.0.1:80');
  assert.equal(own.verdict, 'delivered');
  assert.match(own.reason, /web's own loopback/);
  // The loopback guard: a container aiming at the host's 127.0.0.1 through its gateway route cannot (own lo).
  const guard = ex('web', 'host:5432');
  assert.ok(guard.notes.some((n) => /published on 127\.0\.0\.1 only/.test(n)), why(guard));
});

test('the check differences are said; bad input is one UserError with exit status 2', () => {
  const e = ex('web', 'db:5432', { differences: ['firewall: chain forward is missing'] });
  assert.match(e.warnings.at(-1)!, /nsnet check finds 1 difference\(s\).*chain forward is missing/);
  for (const [from, to, re] of [
    ['nope', 'web:80', /^no such container: nope/],
    ['web', 'nope:80', /^no such container: nope/],
    ['web', 'db:0', /^invalid port 0/],
    ['web', 'db:65536', /^invalid port 65536/],
    ['web', 'db:x', /^invalid port x/],
    ['web', 'db:80/sctp', /^invalid protocol sctp/],
    ['web', 'db/udp', /needs a port/],
    ['we b', 'db:80', /^invalid FROM "we b"/],
    ['outside', 'outside:80', /outside to outside/],
    ['172.18.0.77', 'web:80', /no container has 172\.18\.0\.77/],
  ] as const) {
    assert.throws(() => explain(input(), from, parseTo(to)), (err: unknown) => err instanceof UserError && err.exitCode === 2 && re.test(err.message) && !err.message.includes('\n'), `${from} ${to}`);
  }
});
