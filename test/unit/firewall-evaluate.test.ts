// The pure evaluator (src/firewall/evaluate.ts) on generated rulesets: for each scenario the path through the
// hooks and chains, the deciding rule with its purpose, the verdict and the translations. These are the cases the
// integration tests prove with real traffic (firewall-rules, hardening-fw); here without root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildModel, renderModel } from '../../src/firewall/ruleset.js';
import { evaluate, formatPath, type EvalOptions, type Packet, type PathResult } from '../../src/firewall/evaluate.js';
import type { FirewallState } from '../../src/types.js';
import { backend, hexId, net, oa, port, quiet, tools } from './firewall-fixtures.js';

// The host: uplink eth0 with 192.0.2.10 and a second address 198.51.100.1; an outside client 203.0.113.5.
const HOST = '192.0.2.10';
const OUT = '203.0.113.5';
const routed = net('routed', '10.60.0.0/24', { masquerade: false });
const state: FirewallState = {
  networks: [oa, tools, backend, quiet, routed],
  ports: [
    port('8080:80', 'web', '172.18.0.2', oa),
    port('198.51.100.1:8443:443', 'web', '172.18.0.2', oa),
    port('127.0.0.1:5432:5432', 'db', '172.18.0.3', oa),
    port('5353:53/udp', 'dns', '172.18.0.4', oa),
    port('8081:80', 'quietweb', '172.20.0.2', quiet),
  ],
};
const model = buildModel(state, { id: 'a1b2c3', root: '/var/lib/nsnet' });
const script = renderModel(model);
const opts: EvalOptions = { localAddrs: [HOST, '198.51.100.1'], uplink: 'eth0' };

function run(p: Packet, o: EvalOptions = {}): PathResult {
  const r = evaluate(model, p, { ...opts, ...o });
  // Every rule the evaluator names is a rule of the rendered script, word for word.
  for (const v of r.visits) if (v.rule) assert.ok(script.includes(`\t\t${v.rule.text}\n`), `not in the script: ${v.rule.text}`);
  return r;
}

const chains = (r: PathResult) => r.visits.map((v) => `${v.table.split(' ')[0]}/${v.chain}:${v.outcome}`);
const tcp = (iif: string | undefined, saddr: string, daddr: string, dport: number, extra: Partial<Packet> = {}): Packet => ({ ...(iif !== undefined ? { iif } : {}), saddr, daddr, proto: 'tcp', dport, ...extra });

test('same network: bridged; with br_netfilter the icc accept decides, without it only the bridge table sees it', () => {
  const r = run(tcp(oa.bridge, '172.18.0.5', '172.18.0.6', 80));
  assert.equal(r.verdict, 'accept', formatPath(r));
  assert.equal(r.delivery, 'bridged');
  assert.equal(r.decidedBy?.purpose.kind, 'icc');
  assert.equal(r.decidedBy?.purpose.allowed, true);
  assert.equal(r.decidedBy?.purpose.network?.name, 'oa-net');
  assert.deepEqual(chains(r), ['inet/guard:policy-accept', 'inet/prerouting:policy-accept', 'bridge/forward:policy-accept', 'inet/forward:accept', 'inet/postrouting:policy-accept']);
  assert.deepEqual(r.translations, [], 'no NAT inside one network');
  const off = run(tcp(oa.bridge, '172.18.0.5', '172.18.0.6', 80), { brNetfilter: false });
  assert.equal(off.verdict, 'accept');
  assert.deepEqual(chains(off), ['bridge/forward:policy-accept']);
  assert.equal(off.decidedBy, undefined, 'no rule decides: the policies let it through');
});

test('across networks: routed through the host and dropped by isolation', () => {
  const r = run(tcp(oa.bridge, '172.18.0.5', '10.99.0.2', 80));
  assert.equal(r.verdict, 'drop', formatPath(r));
  assert.equal(r.delivery, 'routed');
  assert.equal(r.oif, tools.bridge);
  assert.equal(r.decidedBy?.purpose.kind, 'isolation');
  assert.equal(r.decidedBy?.chain, 'forward');
  assert.match(r.decidedBy!.text, /^iifname @bridges oifname @bridges counter drop /);
  // A reply of a connection that was allowed (it cannot have been: still, established passes first).
  assert.equal(run(tcp(oa.bridge, '172.18.0.5', '10.99.0.2', 80, { ct: 'established' })).decidedBy?.purpose.kind, 'established');
});

test('internal network: nothing leaves, nothing enters, the host only for DNS on its own gateway', () => {
  const out = run(tcp(backend.bridge, '172.19.0.2', '198.51.100.7', 443));
  assert.equal(out.verdict, 'drop');
  assert.equal(out.decidedBy?.purpose.kind, 'internal');
  assert.equal(out.decidedBy?.purpose.network?.name, 'backend');
  assert.match(out.decidedBy!.text, /nothing leaves its bridge/);
  const into = run(tcp('eth0', OUT, '172.19.0.2', 22));
  assert.equal(into.verdict, 'drop');
  assert.match(into.decidedBy!.text, /nothing enters its bridge/);
  const toOa = run(tcp(backend.bridge, '172.19.0.2', '172.18.0.2', 80));
  assert.equal(toOa.decidedBy?.purpose.kind, 'internal', 'internal beats isolation: it comes first');
  const dns = run({ iif: backend.bridge, saddr: '172.19.0.2', daddr: '172.19.0.1', proto: 'udp', dport: 53 });
  assert.equal(dns.verdict, 'accept', formatPath(dns));
  assert.equal(dns.delivery, 'local');
  assert.match(dns.decidedBy!.text, /is internal: DNS on its own gateway/);
  const ssh = run(tcp(backend.bridge, '172.19.0.2', HOST, 22));
  assert.equal(ssh.verdict, 'drop');
  assert.match(ssh.decidedBy!.text, /nothing else reaches the host/);
  // A normal network reaches the host's services (as Docker).
  assert.equal(run(tcp(oa.bridge, '172.18.0.2', HOST, 22)).verdict, 'accept');
  // The host reaches internal containers (their replies are established).
  const host = run(tcp(undefined, '172.19.0.1', '172.19.0.2', 80));
  assert.equal(host.verdict, 'accept');
  assert.equal(host.oif, backend.bridge);
  assert.deepEqual(host.translations, []);
  assert.equal(run(tcp(backend.bridge, '172.19.0.2', '172.19.0.1', 40000, { ct: 'established' })).decidedBy?.purpose.kind, 'internal');
});

test('icc=false: frames between two containers of the network are dropped in the bridge table, either br_netfilter mode', () => {
  for (const brNetfilter of [true, false]) {
    const r = run(tcp(quiet.bridge, '172.20.0.5', '172.20.0.6', 80), { brNetfilter });
    assert.equal(r.verdict, 'drop', formatPath(r));
    assert.equal(r.delivery, 'bridged');
    assert.equal(r.decidedBy?.table, 'bridge nsnet');
    assert.equal(r.decidedBy?.purpose.kind, 'icc');
    assert.equal(r.decidedBy?.purpose.allowed, false);
    assert.match(r.decidedBy!.text, /^ip saddr 172\.20\.0\.0\/16 counter drop /);
  }
  // ARP stays allowed.
  const arp = run({ iif: quiet.bridge, saddr: '172.20.0.5', daddr: '172.20.0.6', proto: 'arp' });
  assert.equal(arp.verdict, 'accept');
  assert.equal(arp.decidedBy?.purpose.kind, 'arp');
  // And its containers still reach the gateway (local delivery, not forwarded by the bridge).
  assert.equal(run({ iif: quiet.bridge, saddr: '172.20.0.5', daddr: '172.20.0.1', proto: 'udp', dport: 53 }).verdict, 'accept');
});

test('published port from outside: DNAT to the container, the client address kept, accepted as a published port', () => {
  const r = run(tcp('eth0', OUT, HOST, 8080));
  assert.equal(r.verdict, 'accept', formatPath(r));
  assert.equal(r.delivery, 'routed');
  assert.equal(r.oif, oa.bridge);
  assert.deepEqual(r.translations.map((t) => t.kind), ['dnat'], 'no masquerade: the server sees the client');
  const d = r.translations[0];
  assert.deepEqual([d.from, d.to], [{ addr: HOST, port: 8080 }, { addr: '172.18.0.2', port: 80 }]);
  assert.equal(d.element?.purpose?.kind, 'published-port');
  assert.equal(d.element?.purpose?.container, hexId('ctr-web'));
  assert.equal(d.element?.purpose?.network?.name, 'oa-net');
  assert.equal(r.packet.saddr, OUT);
  assert.equal(r.packet.daddr, '172.18.0.2');
  assert.equal(r.decidedBy?.purpose.kind, 'published');
  assert.match(r.decidedBy!.text, /^ct status dnat oifname @bridges accept /);
  assert.deepEqual(chains(r), ['inet/guard:policy-accept', 'inet/prerouting:dnat', 'inet/published:dnat', 'inet/forward:accept', 'inet/postrouting:policy-accept']);
  assert.equal(r.visits.find((v) => v.chain === 'published')!.rule!.index, 1, 'the second rule: dnat_any');
  // udp, and a port published on one host address only: it leads to the container on that address only.
  const u = run({ iif: 'eth0', saddr: OUT, daddr: HOST, proto: 'udp', dport: 5353 });
  assert.deepEqual(u.translations[0].to, { addr: '172.18.0.4', port: 53 });
  const one = run(tcp('eth0', OUT, '198.51.100.1', 8443));
  assert.deepEqual(one.translations[0].to, { addr: '172.18.0.2', port: 443 });
  assert.equal(one.visits.find((v) => v.chain === 'published')!.rule!.index, 0, 'the first rule: dnat_addr');
  const other = run(tcp('eth0', OUT, HOST, 8443));
  assert.deepEqual(other.translations, []);
  assert.equal(other.delivery, 'local', 'not published on that address: the host\'s own port 8443');
  // Not published at all: nothing translated; a port forwarded to ANOTHER machine is never hijacked.
  assert.deepEqual(run(tcp('eth0', OUT, HOST, 9999)).translations, []);
  const through = run(tcp('eth1', OUT, '198.18.0.1', 8080), { localAddrs: [HOST] });
  assert.deepEqual(through.translations, []);
  assert.equal(through.oif, 'eth0');
  // A reply packet of the published connection: established, no nat chain consulted.
  const reply = run(tcp(oa.bridge, '172.18.0.2', OUT, 40000, { ct: 'established', ctDnat: true }));
  assert.equal(reply.verdict, 'accept');
  assert.ok(!reply.visits.some((v) => v.chain === 'prerouting' || v.chain === 'postrouting'));
  assert.equal(reply.decidedBy?.purpose.kind, 'established');
});

test('no direct access from outside to container addresses: only published ports', () => {
  const r = run(tcp('eth0', OUT, '172.18.0.2', 80));
  assert.equal(r.verdict, 'drop');
  assert.equal(r.decidedBy?.purpose.kind, 'no-direct-access');
  // Also for a network without masquerade (routed): its containers are still not reachable directly.
  assert.equal(run(tcp('eth0', OUT, '10.60.0.2', 80)).decidedBy?.purpose.kind, 'no-direct-access');
});

test('hairpin: a container reaches a published port through a host address, masqueraded back into the bridge', () => {
  const r = run(tcp(oa.bridge, '172.18.0.9', HOST, 8080));
  assert.equal(r.verdict, 'accept', formatPath(r));
  assert.equal(r.oif, oa.bridge);
  assert.deepEqual(r.translations.map((t) => t.kind), ['dnat', 'masquerade']);
  assert.equal(r.translations[1].rule.purpose.kind, 'hairpin');
  assert.equal(r.translations[1].oif, oa.bridge);
  // From another network: DNATed, accepted (published ports beat isolation), masqueraded as that network's outbound.
  const x = run(tcp(tools.bridge, '10.99.0.2', HOST, 8080));
  assert.equal(x.verdict, 'accept');
  assert.equal(x.decidedBy?.purpose.kind, 'published');
  assert.equal(x.translations[1].rule.purpose.kind, 'masquerade');
  assert.equal(x.translations[1].rule.purpose.network?.name, 'tools');
  // From an internal network it stays dropped (internal comes first).
  assert.equal(run(tcp(backend.bridge, '172.19.0.2', HOST, 8080)).decidedBy?.purpose.kind, 'internal');
});

test('outbound: masquerade of the network leaving through the uplink; a routed network is not masqueraded', () => {
  const r = run(tcp(oa.bridge, '172.18.0.2', '198.51.100.7', 443));
  assert.equal(r.verdict, 'accept');
  assert.equal(r.oif, 'eth0');
  assert.equal(r.translations.length, 1);
  assert.equal(r.translations[0].kind, 'masquerade');
  assert.equal(r.translations[0].rule.purpose.kind, 'masquerade');
  assert.equal(r.translations[0].rule.purpose.network?.id, oa.id);
  assert.equal(r.decidedBy, undefined, 'forward lets it through by policy: no rule decides');
  const viaOther = run(tcp(oa.bridge, '172.18.0.2', '198.51.100.7', 443, { oif: 'wg0' }));
  assert.equal(viaOther.oif, 'wg0');
  const rt = run(tcp(routed.bridge, '10.60.0.2', '198.51.100.7', 443));
  assert.equal(rt.verdict, 'accept');
  assert.deepEqual(rt.translations, [], 'masquerade=false: routed with its own source address');
});

test('loopback: the host uses 127.0.0.1-published ports; a neighbour routing 127.0.0.1 here and a container get nothing', () => {
  const h = run(tcp(undefined, '127.0.0.1', '127.0.0.1', 5432));
  assert.equal(h.verdict, 'accept', formatPath(h));
  assert.equal(h.oif, oa.bridge);
  assert.deepEqual(h.translations.map((t) => [t.kind, t.rule.purpose.kind]), [['dnat', 'published'], ['masquerade', 'host-loopback']]);
  assert.deepEqual(h.translations[0].to, { addr: '172.18.0.3', port: 5432 });
  assert.deepEqual(chains(h), ['inet/output:dnat', 'inet/published:dnat', 'inet/postrouting:masquerade']);
  // The host's own port that nsnet did not publish: through lo to itself.
  const lo = run(tcp(undefined, '127.0.0.1', '127.0.0.1', 22));
  assert.equal(lo.delivery, 'local');
  assert.equal(lo.verdict, 'accept');
  const n = run(tcp('eth0', '192.0.2.99', '127.0.0.1', 5432));
  assert.equal(n.verdict, 'drop', formatPath(n));
  assert.equal(n.visits.find((v) => v.chain === 'prerouting')!.rule!.purpose.kind, 'loopback-no-dnat');
  assert.deepEqual(n.translations, []);
  assert.match(n.kernelDrop!, /martian/);
  const c = run(tcp(oa.bridge, '172.18.0.2', '127.0.0.1', 22));
  assert.equal(c.verdict, 'drop');
  assert.equal(c.decidedBy?.purpose.kind, 'loopback-guard');
  assert.equal(c.decidedBy?.chain, 'guard');
  assert.equal(c.visits.length, 1, 'dropped before conntrack and NAT');
  assert.equal(run(tcp(oa.bridge, '127.0.0.5', '172.18.0.1', 22)).decidedBy?.purpose.kind, 'loopback-guard');
});

test('DNS on a gateway only from its own bridge: a spoofed query from the uplink and another network\'s container are dropped', () => {
  const spoof = run({ iif: 'eth0', saddr: '172.18.0.9', daddr: '172.18.0.1', proto: 'udp', dport: 53 });
  assert.equal(spoof.verdict, 'drop');
  assert.equal(spoof.decidedBy?.purpose.kind, 'dns-input');
  assert.equal(spoof.decidedBy?.purpose.network?.name, 'oa-net');
  const other = run({ iif: tools.bridge, saddr: '10.99.0.2', daddr: '172.18.0.1', proto: 'tcp', dport: 53 });
  assert.equal(other.decidedBy?.purpose.network?.name, 'oa-net');
  assert.equal(run({ iif: oa.bridge, saddr: '172.18.0.2', daddr: '172.18.0.1', proto: 'udp', dport: 53 }).verdict, 'accept');
  assert.equal(run({ iif: 'lo', saddr: '127.0.0.1', daddr: '172.18.0.1', proto: 'udp', dport: 53 }).verdict, 'accept');
  // Not DNS: the gateway's other ports are the host's (a normal network reaches them).
  assert.equal(run({ iif: 'eth0', saddr: OUT, daddr: '172.18.0.1', proto: 'icmp' }).verdict, 'accept');
});

test('an empty model lets everything through; an IPv6 packet meets only the family-independent rules', () => {
  const empty = buildModel({ networks: [], ports: [] });
  const r = evaluate(empty, tcp('eth0', OUT, '10.0.0.1', 80));
  assert.equal(r.verdict, 'accept');
  assert.deepEqual(r.visits, []);
  // IPv6 from outside to a published port number: no IPv6 DNAT exists (IPv4-only today); forward by interface.
  const v6 = run(tcp('eth0', '2001:db8::5', '2001:db8::10', 8080), { localAddrs: ['2001:db8::10'] });
  assert.deepEqual(v6.translations, []);
  assert.equal(v6.delivery, 'local');
  const v6in = run(tcp(oa.bridge, 'fe80::1', '2001:db8::99', 80));
  assert.equal(v6in.verdict, 'accept', 'outbound IPv6 is not masqueraded (no IPv6 NAT yet) but not blocked by interface rules');
  assert.deepEqual(v6in.translations, []);
});
