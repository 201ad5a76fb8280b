// The typed firewall model (src/firewall/model.ts, build.ts, render.ts) and the engine's reading of the kernel's
// listing with the model's names (src/engine/firewall.ts parseListing / compareFirewall). No root: the listing is
// a fixture captured from nft 1.0.6 after loading several-networks.nft in a throwaway netns.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  MAP_ADDR, MAP_ANY, TABLE, buildModel, chainRuleCounts, inetRuleCounts, renderModel, renderRuleset,
} from '../../src/firewall/ruleset.js';
import {
  NAMES, addrValue, describePurpose, elementText, findChain, findSet, findTable, prefixContains, prefixOf,
  type FirewallModel, type Rule, type Table,
} from '../../src/firewall/model.js';
import { renderAction, renderMatch, renderRule, renderSet, renderTable } from '../../src/firewall/render.js';
import { compareFirewall, missingDnat, parseListing } from '../../src/engine/firewall.js';
import type { Host } from '../../src/engine/host.js';
import { backend, hexId, net, oa, port, quiet, several, tools } from './firewall-fixtures.js';

const ROOT = process.cwd();
const golden = (name: string) => fs.readFileSync(path.join(ROOT, 'test/unit/golden/firewall', `${name}.nft`), 'utf8');
const listing = () => JSON.parse(fs.readFileSync(path.join(ROOT, 'test/unit/golden/listing/several-networks.inet.json'), 'utf8')) as { nftables: Array<Record<string, Record<string, unknown>>> };

const allRules = (m: FirewallModel): Array<{ t: Table; chain: string; r: Rule }> =>
  m.tables.flatMap((t) => t.chains.flatMap((c) => c.rules.map((r) => ({ t, chain: c.name, r }))));

test('the fixtures are the golden scenario: the model renders several-networks.nft byte for byte', () => {
  assert.equal(renderModel(buildModel(several)), golden('several-networks'));
  assert.equal(renderRuleset(several), golden('several-networks'));
});

test('the model: tables, base chains with hook/priority/policy, typed sets and maps', () => {
  const m = buildModel(several);
  assert.deepEqual(m.tables.map((t) => `${t.family} ${t.name}`), ['inet nsnet', 'bridge nsnet']);
  const inet = findTable(m, 'inet')!;
  assert.deepEqual(inet.chains.map((c) => [c.name, c.base?.hook ?? null, c.base?.priority.value ?? null, c.base?.type ?? null]), [
    ['guard', 'prerouting', -300, 'filter'],
    ['prerouting', 'prerouting', -100, 'nat'],
    ['output', 'output', -100, 'nat'],
    ['published', null, null, null],
    ['input', 'input', 0, 'filter'],
    ['forward', 'forward', 0, 'filter'],
    ['postrouting', 'postrouting', 100, 'nat'],
  ]);
  assert.ok(inet.chains.every((c) => !c.base || c.base.policy === 'accept'));
  assert.equal(findTable(m, 'bridge')!.chains[0].base!.priority.value, -200);
  assert.deepEqual(findSet(inet, NAMES.sets.bridges)!.key, ['ifname']);
  assert.deepEqual(findSet(inet, NAMES.sets.subnets.ipv4)!.key, ['ipv4_addr']);
  const any = findSet(inet, MAP_ANY)!;
  assert.deepEqual([any.key, any.data], [['inet_proto', 'inet_service'], ['ipv4_addr', 'inet_service']]);
  assert.deepEqual(findSet(inet, MAP_ADDR)!.key, ['ipv4_addr', 'inet_proto', 'inet_service']);
  assert.deepEqual(any.elements.map(elementText), ['udp 53 -> 172.17.0.3 53', 'tcp 2222 -> 172.17.0.2 22', 'tcp 8080 -> 172.18.0.2 80', 'tcp 8081 -> 10.99.0.2 80']);
  assert.deepEqual(m.networks.map((n) => n.name), ['backend', 'bridge', 'oa-net', 'quiet', 'tools']);
  assert.deepEqual(m.networks[2].subnets, [{ family: 'ipv4', addr: '172.18.0.0', len: 16 }]);
  assert.equal(findSet(inet, NAMES.sets.owner), undefined, 'no owner given, no owner set');
  assert.ok(findSet(findTable(buildModel(several, { id: 'a1b2c3', root: '/x' }), 'inet'), NAMES.sets.owner));
  assert.equal(buildModel({ networks: [], ports: [] }).tables.length, 0);
});

test('every rule carries a purpose; per-network rules name their network, published-port elements their container', () => {
  const m = buildModel(several);
  const kinds = new Set<string>();
  const byId = new Map(several.networks.map((n) => [n.id, n.name]));
  for (const { chain, r } of allRules(m)) {
    kinds.add(r.purpose.kind);
    assert.ok(describePurpose(r.purpose).length > 5);
    if (['dns-input', 'internal', 'icc', 'masquerade'].includes(r.purpose.kind)) {
      assert.ok(r.purpose.network, `${chain}: ${r.comment}`);
      assert.equal(byId.get(r.purpose.network.id), r.purpose.network.name);
      assert.ok(r.comment.includes(r.purpose.network.name), `${r.comment} names ${r.purpose.network.name}`);
    }
  }
  assert.deepEqual([...kinds].sort(), ['arp', 'dns-input', 'established', 'hairpin', 'host-loopback', 'icc', 'internal', 'isolation', 'loopback-guard', 'loopback-no-dnat', 'masquerade', 'no-direct-access', 'published'].sort());
  // icc: accepted on icc networks, dropped (twice more in the bridge table) on quiet.
  const icc = allRules(m).filter((x) => x.r.purpose.kind === 'icc');
  assert.deepEqual(icc.filter((x) => x.r.purpose.allowed === false).map((x) => `${x.t.family}/${x.r.purpose.network!.name}`), ['inet/quiet', 'bridge/quiet', 'bridge/quiet']);
  // Masquerade: every non-internal network, none for backend.
  assert.deepEqual(allRules(m).filter((x) => x.r.purpose.kind === 'masquerade').map((x) => x.r.purpose.network!.name), ['bridge', 'oa-net', 'quiet', 'tools']);
  // Published-port elements: which container, which port, which network.
  const el = findSet(findTable(m, 'inet'), MAP_ADDR)!.elements[0];
  assert.equal(el.purpose!.kind, 'published-port');
  assert.equal(el.purpose!.container, hexId('ctr-metrics'));
  assert.deepEqual(el.purpose!.network, { id: quiet.id, name: 'quiet' });
  assert.deepEqual(el.purpose!.port, { hostIp: '127.0.0.1', proto: 'tcp', hostPort: 9090, containerIp: '172.20.0.3', containerPort: 9090 });
  assert.match(describePurpose(el.purpose!), /^published port 127\.0\.0\.1:9090\/tcp of container [0-9a-f]{12} \(172\.20\.0\.3:9090\) of network quiet$/);
});

test('rule counts from the model equal those parsed back from the rendered script, for every scenario', () => {
  const scenarios = [
    several, { networks: [oa], ports: [] }, { networks: [quiet], ports: [port('8080:80', 'web', '172.20.0.2', quiet)] },
    { networks: [oa, backend], ports: [port('8080:80', 'web', '172.18.0.2', oa)] },
    { networks: [{ ...tools, masquerade: false }, net('n'.repeat(60), '10.50.0.0/16', { internal: true, icc: false })], ports: [] },
  ];
  for (const s of scenarios) {
    const m = buildModel(s, { id: 'a1b2c3', root: '/var/lib/nsnet' });
    assert.deepEqual([...inetRuleCounts(m)], [...chainRuleCounts(renderModel(m))]);
    // And every rule of the model is one line of the script, in order.
    const script = renderModel(m).split('\n');
    let at = 0;
    for (const { r } of allRules(m)) {
      const i = script.indexOf(`\t\t${renderRule(r)}`, at);
      assert.ok(i >= 0, renderRule(r));
      at = i + 1;
    }
  }
});

test('family-neutral: the same rule shapes render ip6 matches, ipv6_addr sets and dnat ip6 (not generated yet)', () => {
  const s6 = prefixOf('fd00:60::/64');
  assert.deepEqual(s6, { family: 'ipv6', addr: 'fd00:60::', len: 64 });
  assert.equal(renderMatch({ m: 'saddr', family: 'ipv6', op: '==', target: { prefix: s6 } }), 'ip6 saddr fd00:60::/64');
  assert.equal(renderMatch({ m: 'saddr', family: 'ipv4', op: '==', target: { prefix: prefixOf('172.18.0.0/16') } }), 'ip saddr 172.18.0.0/16');
  assert.equal(renderMatch({ m: 'daddr', family: 'ipv6', op: '!=', target: { set: NAMES.sets.subnets.ipv6 } }), 'ip6 daddr != @subnets6');
  assert.equal(renderAction({ a: 'dnat', family: 'ipv6', to: { family: 'ipv6', addr: 'fd00:60::2' }, port: 80 }), 'dnat ip6 to [fd00:60::2]:80');
  assert.equal(renderAction({ a: 'dnat', family: 'ipv4', to: { family: 'ipv4', addr: '172.18.0.2' }, port: 80 }), 'dnat ip to 172.18.0.2:80');
  assert.equal(renderAction({ a: 'dnat-map', family: 'ipv6', key: ['daddr', 'l4proto', 'dport'], map: NAMES.maps.dnatAddr.ipv6 }), 'dnat ip6 to ip6 daddr . meta l4proto . th dport map @dnat_addr6');
  assert.equal(renderMatch({ m: 'mark', op: '==', value: 0x15 }), 'meta mark 0x15');
  assert.equal(renderMatch({ m: 'l4proto', protos: ['udp'] }), 'meta l4proto udp');
  assert.deepEqual(renderSet({
    name: NAMES.sets.subnets.ipv6, key: ['ipv6_addr'], flags: ['interval'], comment: 'v6',
    elements: [{ key: [{ t: 'prefix', prefix: s6 }], comment: 'network dual' }],
  }), ['\tset subnets6 {', '\t\ttype ipv6_addr', '\t\tflags interval', '\t\tcomment "v6"', '\t\telements = {', '\t\t\tfd00:60::/64 comment "network dual"', '\t\t}', '\t}']);
  // A table built by hand renders like the generated ones (the renderer has no IPv4 special case).
  const t: Table = { family: 'inet', name: 'x', sets: [], chains: [{ name: 'c', base: { type: 'filter', hook: 'forward', priority: { value: 5 }, policy: 'drop' }, rules: [] }] };
  assert.deepEqual(renderTable(t), ['table inet x {', '\tchain c {', '\t\ttype filter hook forward priority 5; policy drop;', '\t}', '}']);
});

test('addresses: IPv4 and IPv6 values, prefix containment never across families', () => {
  assert.equal(addrValue('10.0.0.1'), 0x0a000001n);
  assert.equal(addrValue('::1'), 1n);
  assert.equal(addrValue('fd00::1'), (0xfd00n << 112n) | 1n);
  assert.equal(addrValue('::ffff:10.0.0.1'), 0xffff0a000001n);
  assert.equal(addrValue('1:2:3:4:5:6:7:8'), 0x00010002000300040005000600070008n);
  for (const bad of ['10.0.0', '10.0.0.256', '1::2::3', 'fd00:::1', '1:2:3:4:5:6:7:8:9', 'g::1', 'example.com']) assert.equal(addrValue(bad), null, bad);
  assert.ok(prefixContains(prefixOf('172.18.0.0/16'), '172.18.255.254'));
  assert.ok(!prefixContains(prefixOf('172.18.0.0/16'), '172.19.0.1'));
  assert.ok(prefixContains(prefixOf('0.0.0.0/0'), '8.8.8.8'));
  assert.ok(prefixContains(prefixOf('fd00:60::/64'), 'fd00:60::abcd'));
  assert.ok(!prefixContains(prefixOf('fd00:60::/64'), 'fd00:61::1'));
  assert.ok(!prefixContains(prefixOf('0.0.0.0/0'), '::1'), 'an IPv4 prefix never contains an IPv6 address');
});

test('one set of names: the engine reads the kernel listing with the model\'s names', () => {
  assert.equal(TABLE, NAMES.table);
  assert.equal(MAP_ANY, NAMES.maps.dnatAny.ipv4);
  assert.equal(MAP_ADDR, NAMES.maps.dnatAddr.ipv4);
  const l = parseListing(listing());
  assert.deepEqual([...l.chains.keys()].sort(), Object.values(NAMES.chains).sort());
  assert.deepEqual([...l.sets.keys()].sort(), [NAMES.sets.bridges, NAMES.sets.subnets.ipv4, MAP_ADDR, MAP_ANY].sort());
  assert.deepEqual([...l.sets.get(NAMES.sets.subnets.ipv4)!].sort(), ['10.99.0.0/24', '172.17.0.0/16', '172.18.0.0/16', '172.19.0.0/16', '172.20.0.0/16']);
  // What the kernel lists is exactly what the model says, element for element and rule count for rule count.
  const m = buildModel(several);
  for (const s of findTable(m, 'inet')!.sets) assert.deepEqual([...l.sets.get(s.name)!].sort(), s.elements.map(elementText).sort(), s.name);
  assert.deepEqual(new Map([...l.chains].sort()), new Map([...inetRuleCounts(m)].sort()));
});

test('compareFirewall: agreement, then each difference check reports, with the messages check always had', () => {
  const want = buildModel(several);
  const ok = () => parseListing(listing());
  const yes = () => true;
  assert.equal(compareFirewall(want, ok(), yes), '');
  assert.equal(compareFirewall(want, ok(), () => false), 'table bridge nsnet (icc=false) differs');
  assert.equal(compareFirewall(buildModel({ networks: [oa], ports: [] }), null, yes), 'table inet nsnet is missing');
  assert.equal(compareFirewall(buildModel({ networks: [], ports: [] }), null, yes), '');
  assert.equal(compareFirewall(buildModel({ networks: [], ports: [] }), ok(), yes), 'table inet nsnet exists but there are no networks');
  const edit = (f: (j: ReturnType<typeof listing>) => void) => { const j = listing(); f(j); return parseListing(j); };
  const setOf = (j: ReturnType<typeof listing>, kind: string, name: string) => j.nftables.find((o) => o[kind]?.name === name)![kind] as { elem: unknown[] };
  assert.equal(compareFirewall(want, edit((j) => setOf(j, 'set', 'bridges').elem.pop()), yes), 'the bridges set differs from the networks');
  assert.equal(compareFirewall(want, edit((j) => setOf(j, 'map', MAP_ANY).elem.pop()), yes), 'published ports differ (missing 1, unexpected 0)');
  assert.equal(compareFirewall(want, edit((j) => { (setOf(j, 'map', MAP_ANY).elem[0] as unknown[])[1] = { concat: ['172.17.0.9', 53] }; }), yes), 'published ports differ (missing 1, unexpected 1)');
  assert.equal(compareFirewall(want, edit((j) => { j.nftables = j.nftables.filter((o) => o.rule?.chain !== 'forward'); }), yes), `chain forward has 0 rules, ${findChain(findTable(want, 'inet'), 'forward')!.rules.length} expected`);
  assert.equal(compareFirewall(want, edit((j) => { j.nftables = j.nftables.filter((o) => o.chain?.name !== 'guard' && o.rule?.chain !== 'guard'); }), yes), 'chain guard is missing');
  // A model with an owner wants the owner set; the fixture was loaded without one.
  assert.equal(compareFirewall(buildModel(several, { id: 'a1b2c3', root: '/x' }), ok(), yes), 'the owner set is missing');
  // A state with a port fewer: the kernel's extra element is reported.
  assert.equal(compareFirewall(buildModel({ ...several, ports: several.ports.slice(1) }), ok(), yes), 'published ports differ (missing 0, unexpected 1)');
  // bridges set with one network more than the kernel.
  assert.equal(compareFirewall(buildModel({ ...several, networks: [...several.networks, net('extra', '10.98.0.0/24')] }), ok(), yes), 'the bridges set differs from the networks');
});

test('missingDnat (CNI CHECK): the kernel\'s elements are read with the same parser; a port it lacks is named', () => {
  const fake = (l: unknown) => ({ nft: { listTable: (family: string, name: string) => (family === 'inet' && name === TABLE ? l : null) } }) as unknown as Host;
  assert.deepEqual(missingDnat(fake(listing()), several.ports), []);
  assert.deepEqual(missingDnat(fake(listing()), [port('8082:80', 'web3', '10.99.0.3', tools), port('127.0.0.1:9090:9090', 'metrics', '172.20.0.3', quiet)]), ['0.0.0.0:8082/tcp']);
  assert.deepEqual(missingDnat(fake(listing()), [port('127.0.0.1:9090-9091:9090-9091', 'metrics', '172.20.0.3', quiet)]), ['127.0.0.1:9091/tcp']);
  assert.deepEqual(missingDnat(fake(null), [port('8080:80', 'web', '172.18.0.2', oa)]), ['0.0.0.0:8080/tcp']);
});
