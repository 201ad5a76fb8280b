// The pure planner of `nsnet explain` on partitioned networks (issue #16 x #15): the bridge half of a partition
// (frames between two containers of one bridge, cut by the host-side veth sets of `table bridge nsnet`), which the
// evaluator does not model, and the routed half (a published port reached through a host address), which it does.
// Two listed groups and the rest; a one-way cut in both directions. No root, no kernel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildModel } from '../../src/firewall/ruleset.js';
import { partitionCut, partitionGroupOf } from '../../src/engine/partitions.js';
import { explain, formatExplanation, parseTo, type ExplainInput, type Explanation } from '../../src/explain/plan.js';
import { compareTrace } from '../../src/explain/trace.js';
import type { ContainerRecord, EndpointRecord, FirewallState, NetworkRecord, PartitionMember, PartitionState, PortMapping } from '../../src/types.js';
import { hexId } from './firewall-fixtures.js';

function network(name: string, subnet: string, o: Partial<NetworkRecord> = {}): NetworkRecord {
  const id = hexId(`net-${name}`);
  return {
    id, name, driver: 'bridge', bridge: `nsbr-${id.slice(0, 10)}`, subnet, gateway: subnet.replace(/\.0\/\d+$/, '.1'),
    ipRange: null, internal: false, icc: true, mtu: 1500, isDefault: false, labels: {}, options: {}, created: '2026-01-01T00:00:00Z', ...o,
  };
}
const cut = network('cut', '172.30.0.0/24');
const one = network('one', '172.31.0.0/24');
const free = network('free', '172.29.0.0/24');
const networks = [cut, one, free];

const containers: ContainerRecord[] = [];
const endpoints: EndpointRecord[] = [];
const pm = (hostPort: number, containerPort: number): PortMapping => ({ hostIp: '', hostPort, hostPortEnd: hostPort, containerPort, containerPortEnd: containerPort, proto: 'tcp' });
function ctr(name: string, n: NetworkRecord, ip: string, ports: PortMapping[] = []): ContainerRecord {
  const id = hexId(`ctr-${name}`);
  const c: ContainerRecord = {
    id, name, mode: 'bridge', modeTarget: null, netns: `nsnet-x-${name}`, command: ['sleep', 'inf'], ports, dns: [], autoRemove: false,
    state: 'running', pid: 100, pidStart: '1', exitCode: null, created: '', started: '', finished: null, used: true,
  };
  containers.push(c);
  endpoints.push({ containerId: id, containerName: name, networkId: n.id, ifname: 'eth0', hostIf: `nsv${name}0`, ip, mac: '', aliases: [], staticIp: false });
  return c;
}
// cut: a,b | c | (rest) d,e; c publishes 8080 -> 80.
ctr('a', cut, '172.30.0.2');
ctr('b', cut, '172.30.0.3');
ctr('c', cut, '172.30.0.4', [pm(8080, 80)]);
ctr('d', cut, '172.30.0.5');
ctr('e', cut, '172.30.0.6');
// one: x -> y one way (z is neither).
ctr('x', one, '172.31.0.2');
ctr('y', one, '172.31.0.3', [pm(8090, 80)]);
ctr('z', one, '172.31.0.4');
ctr('f1', free, '172.29.0.2');
ctr('f2', free, '172.29.0.3');

const member = (name: string): PartitionMember => {
  const e = endpoints.find((x) => x.containerName === name)!;
  return { containerId: e.containerId, hostIf: e.hostIf, ip: e.ip };
};
const partitions: PartitionState[] = [
  { networkId: cut.id, id: 'p-cut', oneway: false, groups: [[member('a'), member('b')], [member('c')]], rest: [member('d'), member('e')] },
  { networkId: one.id, id: 'p-one', oneway: true, groups: [[member('x')], [member('y')]], rest: [member('z')] },
];

function fwState(parts: PartitionState[]): FirewallState {
  const ports: FirewallState['ports'] = [];
  for (const c of containers) {
    const ep = endpoints.find((e) => e.containerId === c.id)!;
    for (const p of c.ports) ports.push({ ...p, containerId: c.id, containerIp: ep.ip, networkId: ep.networkId });
  }
  return { networks: networks.map((n) => ({ id: n.id, name: n.name, bridge: n.bridge, subnet: n.subnet, gateway: n.gateway, internal: n.internal, icc: n.icc })), ports, ...(parts.length ? { partitions: parts } : {}) };
}

function input(o: { brNetfilter?: boolean; parts?: PartitionState[] } = {}): ExplainInput {
  const parts = o.parts ?? partitions;
  return {
    networks, containers, endpoints, model: buildModel(fwState(parts)),
    dns: {
      networks: networks.map((n) => ({ id: n.id, name: n.name, gateway: n.gateway })),
      entries: endpoints.map((e) => ({ networkId: e.networkId, names: [e.containerName], ip: e.ip, containerId: e.containerId })),
    },
    host: {
      addrs: [{ ifname: 'lo', address: '127.0.0.1', prefixLen: 8 }, { ifname: 'eth0', address: '192.0.2.10', prefixLen: 24 },
        ...networks.map((n) => ({ ifname: n.bridge, address: n.gateway, prefixLen: 24 }))],
      routes: [{ dst: '0.0.0.0', prefixLen: 0, gateway: '192.0.2.1', ifname: 'eth0' }, { dst: '192.0.2.0', prefixLen: 24, gateway: null, ifname: 'eth0' },
        ...networks.map((n) => ({ dst: n.subnet.split('/')[0], prefixLen: 24, gateway: null, ifname: n.bridge }))],
      brNetfilter: o.brNetfilter ?? true,
    },
    partitions: parts,
  };
}

function ex(from: string, to: string, o: Parameters<typeof input>[0] = {}): Explanation {
  const e = explain(input(o), from, parseTo(to));
  assert.match(formatExplanation(e), new RegExp(`verdict: ${e.verdict.toUpperCase()}`));
  return e;
}
const why = (e: Explanation) => formatExplanation(e);

/** The rule the prediction names is the model's own: bridge nsnet forward, purpose partition, of that network. */
function assertBridgeRule(e: Explanation, n: NetworkRecord): void {
  assert.equal(e.decidedBy?.purpose, 'partition', why(e));
  assert.equal(e.decidedBy?.table, 'bridge nsnet', why(e));
  assert.equal(e.decidedBy?.chain, 'forward', why(e));
  assert.ok(e.decidedBy!.index > 0, why(e)); // rule #0 is ARP's accept
  assert.match(e.decidedBy!.text, /iifname|oifname/, why(e));
  const model = input().model;
  const chain = model.tables.find((t) => t.family === 'bridge')!.chains.find((c) => c.name === 'forward')!;
  const r = chain.rules[e.decidedBy!.index];
  assert.equal(r.purpose.kind, 'partition');
  assert.equal(r.purpose.network?.id, n.id);
  assert.equal(r.action.a, 'drop');
  // The prediction ends in the bridge family's forward hook: nothing after it runs.
  const last = e.chains[e.chains.length - 1];
  assert.deepEqual([last.table, last.chain, last.outcome, last.rule], ['bridge nsnet', 'forward', 'drop', e.decidedBy!.index], why(e));
  assert.ok(!e.chains.some((c) => c.table === 'inet nsnet' && c.hook === 'forward'), why(e));
  assert.deepEqual(e.fix, [`nsnet heal --network ${n.name}`]);
}

test('the group helpers of src/engine/partitions.ts: listed groups, the rest, one way', () => {
  const [p, q] = partitions;
  const id = (n: string) => hexId(`ctr-${n}`);
  assert.equal(partitionGroupOf(p, id('a')), 0);
  assert.equal(partitionGroupOf(p, id('c')), 1);
  assert.equal(partitionGroupOf(p, id('d')), 'rest');
  assert.equal(partitionGroupOf(p, hexId('ctr-newcomer')), 'rest');
  assert.deepEqual(partitionCut(p, id('a'), id('c')), { from: 0, to: 1 });
  assert.deepEqual(partitionCut(p, id('d'), id('b')), { from: 'rest', to: 0 });
  assert.equal(partitionCut(p, id('a'), id('b')), null);
  assert.equal(partitionCut(p, id('d'), id('e')), null);
  assert.deepEqual(partitionCut(q, id('x'), id('y')), { from: 0, to: 1 });
  assert.equal(partitionCut(q, id('y'), id('x')), null);
  assert.equal(partitionCut(q, id('x'), id('z')), null);
  assert.equal(partitionCut(q, id('z'), id('y')), null);
});

test('two listed groups: cut both ways in the bridge, by the partition rule, naming the network and the groups', () => {
  for (const brNetfilter of [true, false]) {
    const ac = ex('a', 'c:80', { brNetfilter });
    assert.equal(ac.verdict, 'dropped', why(ac));
    assertBridgeRule(ac, cut);
    assert.match(ac.reason, /^dropped by bridge nsnet forward rule #\d+: partition: network cut is partitioned: a is in group 1 \(a, b\), c in group 2 \(c\)/, why(ac));
    assert.match(ac.decidedBy!.why, /network cut.*group 1 \(a, b\).*group 2 \(c\)/);
    assert.ok(ac.hops.some((h) => h.at === `bridge ${cut.bridge}` && /from port nsva0 to port nsvc0/.test(h.text)), why(ac));
    // The probe is what a real attempt sends: the kernel's trace is compared with these chains.
    assert.equal(ac.probe?.daddr, '172.30.0.4');
    const ca = ex('c', 'a:80', { brNetfilter });
    assert.equal(ca.verdict, 'dropped', why(ca));
    assertBridgeRule(ca, cut);
    assert.match(ca.reason, /c is in group 2 \(c\), a in group 1 \(a, b\)/);
    // A ping is cut the same way.
    const ping = ex('b', 'c', { brNetfilter });
    assert.equal(ping.verdict, 'dropped', why(ping));
    assertBridgeRule(ping, cut);
  }
  // With br_netfilter the inet hooks before the bridge's forward hook are predicted, none after it.
  const e = ex('a', 'c:80');
  assert.ok(e.chains.some((c) => c.hook === 'prerouting' && c.table === 'inet nsnet'), why(e));
  // Without br_netfilter only the bridge family sees the frame.
  const off = ex('a', 'c:80', { brNetfilter: false });
  assert.ok(off.chains.every((c) => c.table === 'bridge nsnet'), why(off));
});

test('the same group, and the rest among itself: delivered; the rest and a listed group: cut', () => {
  for (const [from, to] of [['a', 'b:80'], ['b', 'a:80'], ['d', 'e:80'], ['e', 'd']]) {
    const e = ex(from, to);
    assert.equal(e.verdict, 'delivered', `${from} -> ${to}: ${why(e)}`);
    assert.equal(e.warnings.length, 0, why(e));
    assert.ok(!e.replyCut);
  }
  for (const [from, to, text] of [['d', 'a:80', /d is in the containers not listed \(d, e\), a in group 1 \(a, b\)/], ['c', 'e:80', /c is in group 2 \(c\), e in the containers not listed \(d, e\)/]] as const) {
    const e = ex(from, to);
    assert.equal(e.verdict, 'dropped', why(e));
    assertBridgeRule(e, cut);
    assert.match(e.reason, text, why(e));
  }
  // Another network's containers are not concerned.
  assert.equal(ex('f1', 'f2:80').verdict, 'delivered');
  // Healed (no partition): delivered again, and no bridge rule claims anything.
  const healed = ex('a', 'c:80', { parts: [] });
  assert.equal(healed.verdict, 'delivered', why(healed));
});

test('one way: x -> y dropped by the one-way rule; y -> x delivered with a warning that its answers are cut', () => {
  const xy = ex('x', 'y:80');
  assert.equal(xy.verdict, 'dropped', why(xy));
  assertBridgeRule(xy, one);
  assert.match(xy.reason, /network one is partitioned one way: group 1 \(x\) -> group 2 \(y\) is dropped \(x -> y\)/, why(xy));
  assert.equal(input().model.tables.find((t) => t.family === 'bridge')!.chains[0].rules[xy.decidedBy!.index].purpose.partition?.oneway, true);

  for (const to of ['x:80', 'x', 'x:53/udp']) {
    const yx = ex('y', to);
    assert.equal(yx.verdict, 'delivered', why(yx));
    assert.ok(yx.replyCut, why(yx));
    assert.match(yx.replyCut!, /answers are dropped: network one is partitioned one way: group 1 \(x\) -> group 2 \(y\) is dropped \(x -> y\)/);
    assert.ok(yx.warnings.includes(yx.replyCut!), why(yx));
    assert.match(yx.replyCut!, to === 'x:80' ? /TCP connection is never established/ : to === 'x' ? /ping gets no reply/ : /UDP datagram arrives/);
    assert.match(yx.replyCut!, /nsnet heal --network one/);
  }
  // z is in no group of a one-way partition: nothing cut either way.
  for (const [f, t] of [['z', 'x:80'], ['x', 'z:80'], ['z', 'y:80'], ['y', 'z:80']]) {
    const e = ex(f, t);
    assert.equal(e.verdict, 'delivered', `${f} -> ${t}: ${why(e)}`);
    assert.ok(!e.replyCut, why(e));
  }
});

test('the routed half: a published port of another group through a host address is cut too (bridged DNAT or routed)', () => {
  // br_netfilter on: DNATed back into the bridge, the frame is bridged: the bridge rule drops it first.
  const on = ex('a', 'host:8080');
  assert.equal(on.verdict, 'dropped', why(on));
  assertBridgeRule(on, cut);
  assert.ok(on.hops.some((h) => h.at === 'nat' && /DNAT .*172\.30\.0\.4:80/.test(h.text)), why(on));
  assert.ok(on.notes.some((n) => /would drop it too: inet nsnet forward/.test(n)), why(on));
  // br_netfilter off: routed back onto the bridge, the inet half (addresses) drops it in inet forward.
  const off = ex('a', 'host:8080', { brNetfilter: false });
  assert.equal(off.verdict, 'dropped', why(off));
  assert.equal(off.decidedBy?.purpose, 'partition', why(off));
  assert.equal(off.decidedBy?.table, 'inet nsnet');
  assert.equal(off.decidedBy?.chain, 'forward');
  assert.match(off.reason, /partition: network cut is partitioned: a is in group 1 \(a, b\), c in group 2 \(c\)/, why(off));
  assert.deepEqual(off.fix, ['nsnet heal --network cut']);
  // The same group's published port, and c's own: delivered.
  for (const o of [{}, { brNetfilter: false }]) {
    assert.equal(ex('c', 'host:8080', o).verdict, 'delivered');
  }
  // One way: x reaching y's published port is cut; from outside and from the host nothing is.
  const xy = ex('x', 'host:8090', { brNetfilter: false });
  assert.equal(xy.verdict, 'dropped', why(xy));
  assert.equal(xy.decidedBy?.purpose, 'partition');
  assert.match(xy.reason, /one way: group 1 \(x\) -> group 2 \(y\)/);
  assert.equal(ex('outside', 'c:80').verdict, 'delivered');
  assert.equal(ex('host', 'c:80').verdict, 'delivered');
});

test('--trace: the other direction of a one-way cut is "unknown" with a note, not a disagreement', () => {
  const yx = ex('y', 'x:80');
  const r = compareTrace(yx, [], new Map(), { outcome: 'timeout' });
  assert.equal(r.verdict, 'unknown');
  assert.ok(r.notes.some((n) => /answers are dropped/.test(n)), r.notes.join('\n'));
  assert.ok(!r.differences.some((d) => /predicted DELIVERED/.test(d)), r.differences.join('\n'));
  // A real drop by a chain is still a drop.
  const plain = ex('a', 'b:80');
  const r2 = compareTrace(plain, [], new Map(), { outcome: 'timeout' });
  assert.equal(r2.verdict, 'dropped');
  assert.ok(r2.differences.some((d) => /predicted DELIVERED, the kernel: DROPPED/.test(d)));
});
