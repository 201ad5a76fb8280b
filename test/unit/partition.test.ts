// Partitions (issue #15) without root: the group logic (planPartition), --duration, the rules the firewall model
// generates for a partitioned network (golden files), their validation, what check compares, and the evaluator
// on the inet half of the cut.
//
// Regenerate the golden files after an intended change with:
//   UPDATE_GOLDEN=1 node --test dist/test/unit/partition.test.js
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { buildModel, chainRuleCounts, inetRuleCounts, renderModel, renderRuleset, FirewallInputError } from '../../src/firewall/ruleset.js';
import { describePurpose, elementText, findChain, findTable, isPartitionSet, partitionSetName, ruleCounts, type FirewallModel } from '../../src/firewall/model.js';
import { evaluate } from '../../src/firewall/evaluate.js';
import { compareFirewall, type ListedTable } from '../../src/engine/firewall.js';
import { parseDuration, planPartition, type GroupContainer } from '../../src/engine/partitions.js';
import { UserError } from '../../src/util/errors.js';
import type { FirewallState, PartitionMember } from '../../src/types.js';
import { hexId, net, oa, port, quiet } from './firewall-fixtures.js';

const GOLDEN = path.join(process.cwd(), 'test/unit/golden/firewall');
const UPDATE = process.env.UPDATE_GOLDEN === '1';

function golden(name: string, actual: string): void {
  const file = path.join(GOLDEN, `${name}.nft`);
  if (UPDATE) {
    fs.writeFileSync(file, actual);
    return;
  }
  assert.ok(fs.existsSync(file), `golden file ${file} is missing (run from the repo root; UPDATE_GOLDEN=1 creates it)`);
  assert.equal(actual, fs.readFileSync(file, 'utf8'), `${name}.nft differs (UPDATE_GOLDEN=1 regenerates it after an intended change)`);
}

// ------------------------------------------------------------------------------------------------ group logic

const db = hexId('net-db');
const web = hexId('net-web');
const NETS: Record<string, string> = { [db]: 'db', [web]: 'web' };
function ctr(name: string, networks: string[]): GroupContainer {
  return { id: hexId(`ctr-${name}`), name, networks };
}
// n1..n3 on db; n4 on db and web; w1 on web only; s1 stopped (remembered on db).
const CTRS = [ctr('n1', [db]), ctr('n2', [db]), ctr('n3', [db]), ctr('n4', [db, web]), ctr('w1', [web]), ctr('s1', [db])];
const find = (ref: string) => CTRS.find((c) => c.name === ref || c.id.startsWith(ref)) ?? null;
const onNet = (id: string) => CTRS.filter((c) => c.networks.includes(id));
const plan = (args: string[], o: { network?: string; oneway?: boolean } = {}) => planPartition(args, o, find, onNet, (id) => NETS[id] ?? id);
const ids = (...names: string[]) => names.map((n) => hexId(`ctr-${n}`));

test('groups: each argument a group, the unlisted containers of the network one more (Blockade)', () => {
  const p = plan(['n1,n2', 'n3']);
  assert.equal(p.networkId, db);
  assert.deepEqual(p.groups, [ids('n1', 'n2'), ids('n3')]);
  assert.deepEqual(p.rest.sort(), ids('n4', 's1').sort());
  assert.equal(p.oneway, false);
  // One group and the rest: isolate a node.
  const q = plan(['n1']);
  assert.deepEqual(q.groups, [ids('n1')]);
  assert.equal(q.rest.length, 4);
  // Containers by id prefix, spaces around names.
  assert.deepEqual(plan([`${hexId('ctr-n1').slice(0, 10)}, n2`, 'n3']).groups[0], ids('n1', 'n2'));
});

test('groups: without --network, the one network all listed containers share; none or several is an error', () => {
  assert.equal(plan(['n4', 'w1']).networkId, web); // shared: web only
  assert.equal(plan(['n1', 'n4']).networkId, db); // n4 is on two, n1 on db: db
  assert.throws(() => plan(['n1', 'w1']), (e: Error) => e instanceof UserError && e.exitCode === 2 && /share no network/.test(e.message));
  assert.throws(() => plan(['n4']), (e: Error) => e instanceof UserError && /share 2 networks \(db, web\): choose one with --network/.test(e.message));
  assert.equal(plan(['n4'], { network: web }).networkId, web);
  assert.deepEqual(plan(['n4'], { network: web }).rest, ids('w1'));
});

test('groups: refusals, each one UserError with exit 2', () => {
  const cases: Array<[string[], { network?: string; oneway?: boolean }, RegExp]> = [
    [['n1', 'nosuch'], {}, /no such container: nosuch/],
    [['n1,n2', 'n2'], {}, /container n2 is in two groups \(1 and 2\)/],
    [['n1,n1', 'n2'], {}, /container n1 is listed twice in group 1/],
    [['n1,,n2'], {}, /group 1 \("?n1,,n2"?\) has an empty container name/],
    [[''], {}, /has an empty container name/],
    [[], {}, /give the groups/],
    [['n1', 'w1'], { network: db }, /container w1 is not on network db/],
    [['n1,n2,n3,n4,s1'], {}, /only one group on network db/],
    [['n1', 'n2', 'n3'], { oneway: true }, /exactly two groups, FROM and TO/],
    [['n1'], { oneway: true }, /exactly two groups/],
  ];
  for (const [args, o, re] of cases) {
    assert.throws(() => plan(args, o), (e: Error) => e instanceof UserError && e.exitCode === 2 && re.test(e.message) && !e.message.includes('\n'), `${args.join(' ')} ${JSON.stringify(o)}`);
  }
  // Every container of the network in two groups is fine (no rest group); one-way FROM TO is fine.
  assert.deepEqual(plan(['n1,n2', 'n3,n4,s1']).rest, []);
  assert.deepEqual(plan(['n1', 'n2'], { oneway: true }).groups, [ids('n1'), ids('n2')]);
});

test('--duration: Go-style durations, bad ones refused', () => {
  assert.equal(parseDuration('30s'), 30000);
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('1h30m'), 5400000);
  assert.equal(parseDuration('1.5s'), 1500);
  assert.equal(parseDuration('2m'), 120000);
  for (const bad of ['', '30', 's', '-1s', '0s', '1d', '1 s', '169h', '1e3s']) {
    assert.throws(() => parseDuration(bad), (e: Error) => e instanceof UserError && e.exitCode === 2, JSON.stringify(bad));
  }
});

// ------------------------------------------------------------------------------------------------ rules

const m = (name: string, ip: string): PartitionMember => ({ containerId: hexId(`ctr-${name}`), hostIf: `nsv${hexId(`if-${name}`).slice(0, 8)}`, ip });
const dbNet = net('db', '10.88.0.0/24');
const [a, b, c, d, e] = [m('a', '10.88.0.2'), m('b', '10.88.0.3'), m('c', '10.88.0.4'), m('d', '10.88.0.5'), m('e', '10.88.0.6')];
const q1 = m('q1', '172.20.0.2');
const q2 = m('q2', '172.20.0.3');

/** db cut into {a,b} | {c} | rest {d,e}; quiet (icc=false) one way q1 -> q2; a published port on db. */
const partitioned: FirewallState = {
  networks: [dbNet, oa, quiet],
  ports: [port('8080:80', 'c', '10.88.0.4', dbNet)],
  partitions: [
    { networkId: quiet.id, id: 'p-quiet', oneway: true, groups: [[q1], [q2]], rest: [] },
    { networkId: dbNet.id, id: 'p-db', oneway: false, groups: [[b, a], [c]], rest: [e, d] },
  ],
};

test('golden: a partitioned network (groups and rest) next to a one-way partition on an icc=false network', () => {
  const script = renderRuleset(partitioned);
  golden('partition', script);
  // Input order does not matter: members and partitions are sorted.
  const shuffled: FirewallState = { ...partitioned, networks: [...partitioned.networks].reverse(), partitions: [...partitioned.partitions!].reverse().map((p) => ({ ...p, groups: p.groups.map((g) => [...g].reverse()), rest: [...p.rest].reverse() })) };
  assert.equal(renderRuleset(shuffled), script);
  // The renderer writes one line per rule of the model (what check counts).
  assert.deepEqual(chainRuleCounts(script), inetRuleCounts(buildModel(partitioned)));
});

test('golden: a partition alone makes the bridge table (no icc=false network); without partitions nothing changes', () => {
  const only: FirewallState = { networks: [dbNet], ports: [], partitions: [{ networkId: dbNet.id, id: 'p1', oneway: false, groups: [[a]], rest: [b, c] }] };
  golden('partition-only', renderRuleset(only));
  assert.equal(renderRuleset({ networks: [dbNet], ports: [], partitions: [] }), renderRuleset({ networks: [dbNet], ports: [] }));
  assert.doesNotMatch(renderRuleset({ networks: [dbNet], ports: [] }), /^table bridge nsnet \{$/m);
});

test('rules: bridged frames by veth (both ways per group), routed ones by address, all before the established accept', () => {
  const model = buildModel(partitioned);
  const inet = findTable(model, 'inet')!;
  const br = findTable(model, 'bridge')!;
  const fwd = findChain(inet, 'forward')!.rules;
  const firstAccept = fwd.findIndex((r) => r.action.a === 'accept');
  const cuts = fwd.map((r, i) => [r, i] as const).filter(([r]) => r.purpose.kind === 'partition');
  assert.equal(cuts.length, 4); // db: group 1, group 2, rest; quiet: one way
  assert.ok(cuts.every(([, i]) => i < firstAccept), 'partition rules come before any accept (ct state established included)');
  assert.deepEqual(fwd[firstAccept].match, [{ m: 'ct-state', states: ['established', 'related'] }]);
  const brRules = findChain(br, 'forward')!.rules;
  assert.equal(brRules[0].purpose.kind, 'arp'); // ARP first: a one-way cut must not break the other way's neighbour resolution
  assert.equal(brRules.filter((r) => r.purpose.kind === 'partition').length, 5); // 2 per listed group of db, 1 one-way
  // Every partition rule names its network and partition; its description says so.
  for (const r of [...fwd, ...brRules].filter((x) => x.purpose.kind === 'partition')) {
    assert.ok(r.purpose.network && r.purpose.partition, JSON.stringify(r.purpose));
    assert.match(describePurpose(r.purpose), /^partition of network (db|quiet)/);
  }
  // The sets: veths in the bridge table, addresses in the inet table, one per group (the rest only where needed).
  const dbId = dbNet.id;
  const names = (t: typeof inet) => t.sets.filter((s) => isPartitionSet(s.name)).map((s) => s.name).sort();
  assert.deepEqual(names(br), [partitionSetName(dbId, 0), partitionSetName(dbId, 1), partitionSetName(quiet.id, 0), partitionSetName(quiet.id, 1)].sort());
  assert.deepEqual(names(inet), [partitionSetName(dbId, 0), partitionSetName(dbId, 1), partitionSetName(dbId, 'rest'), partitionSetName(quiet.id, 1), partitionSetName(quiet.id, 'not0')].sort());
  const els = (t: typeof inet, n: string) => t.sets.find((s) => s.name === n)!.elements.map(elementText);
  assert.deepEqual(els(br, partitionSetName(dbId, 0)), [a.hostIf, b.hostIf].sort());
  assert.deepEqual(els(inet, partitionSetName(dbId, 'rest')), ['10.88.0.5', '10.88.0.6']);
  assert.deepEqual(els(inet, partitionSetName(quiet.id, 'not0')), ['172.20.0.3']);
});

test('validation: members must be on the network, once each; one partition per network; --oneway has two groups', () => {
  const base = (p: Partial<NonNullable<FirewallState['partitions']>[number]>): FirewallState => ({
    networks: [dbNet], ports: [], partitions: [{ networkId: dbNet.id, id: 'p1', oneway: false, groups: [[a], [b]], rest: [], ...p }],
  });
  const bad: Array<[FirewallState, RegExp]> = [
    [base({ groups: [[{ ...a, ip: '10.99.0.2' }], [b]] }), /address 10\.99\.0\.2 is outside network db/],
    [base({ groups: [[a], [a]] }), /is in partition #0 group 1 #0 and in partition #0 group 2 #0/],
    [base({ groups: [[a], [{ ...b, hostIf: a.hostIf }]] }), /if nsv/],
    [base({ groups: [[a], [b]], rest: [{ ...c, ip: a.ip }] }), /ip 10\.88\.0\.2/],
    [base({ groups: [[{ ...a, hostIf: 'x*' }], [b]] }), /not a valid interface name/],
    [base({ groups: [[{ ...a, ip: 'example.com' }], [b]] }), /ip/],
    [base({ networkId: hexId('net-nosuch') }), /is not in the state/],
    [base({ oneway: true, groups: [[a], [b], [c]] }), /exactly two groups/],
    [base({ groups: [] }), /non-empty/],
    [{ ...base({}), partitions: [...base({}).partitions!, { networkId: dbNet.id, id: 'p2', oneway: false, groups: [[c]], rest: [] }] }, /network db has two partitions/],
  ];
  for (const [st, re] of bad) assert.throws(() => buildModel(st), (err: Error) => err instanceof FirewallInputError && re.test(err.message), re.source);
});

// ------------------------------------------------------------------------------------------------ check

/** A table of the model as the engine reads the kernel's listing (elements flattened, rules counted). */
function listed(model: FirewallModel, family: 'inet' | 'bridge'): ListedTable {
  const t = findTable(model, family)!;
  return { sets: new Map(t.sets.map((s) => [s.name, new Set(s.elements.map(elementText))])), chains: ruleCounts(t) };
}

test('check: a partition rule or set element deleted behind nsnet\'s back is a difference, in either table', () => {
  const want = buildModel(partitioned);
  const inet = () => listed(want, 'inet');
  const br = () => listed(want, 'bridge');
  assert.equal(compareFirewall(want, inet(), br), '');
  assert.equal(compareFirewall(want, inet(), () => true), ''); // presence only: as before
  const noRule = br();
  noRule.chains.set('forward', noRule.chains.get('forward')! - 1);
  assert.match(compareFirewall(want, inet(), () => noRule), /chain forward of table bridge nsnet has \d+ rules, \d+ expected/);
  const noInetRule = inet();
  noInetRule.chains.set('forward', noInetRule.chains.get('forward')! - 1);
  assert.match(compareFirewall(want, noInetRule, br), /^chain forward has/);
  const noElem = br();
  noElem.sets.get(partitionSetName(dbNet.id, 0))!.delete(a.hostIf);
  assert.match(compareFirewall(want, inet(), () => noElem), /partition set part_[0-9a-f]{12}_0 of table bridge nsnet differs \(1 elements, 2 expected\)/);
  const noAddr = inet();
  noAddr.sets.get(partitionSetName(dbNet.id, 'rest'))!.delete('10.88.0.5');
  assert.match(compareFirewall(want, noAddr, br), /partition set part_[0-9a-f]{12}_rest of table inet nsnet differs/);
  const noSet = inet();
  noSet.sets.delete(partitionSetName(quiet.id, 'not0'));
  assert.match(compareFirewall(want, noSet, br), /is missing/);
  // Healed in the store, still in the kernel: the sets (and the rules) are not wanted.
  const healed = buildModel({ ...partitioned, partitions: partitioned.partitions!.filter((p) => p.id === 'p-quiet') });
  assert.match(compareFirewall(healed, inet(), br), /rules|not wanted/);
  const noBridge = buildModel({ networks: [dbNet], ports: [] });
  assert.equal(compareFirewall(noBridge, listed(noBridge, 'inet'), br), 'table bridge nsnet (icc=false) differs');
});

// ------------------------------------------------------------------------------------------------ evaluator

test('evaluator: with br_netfilter, bridged IPv4 between groups meets the inet partition rule first', () => {
  const model = buildModel(partitioned);
  const script = renderModel(model);
  const pkt = (s: PartitionMember, t: PartitionMember) => ({ iif: dbNet.bridge, saddr: s.ip, daddr: t.ip, proto: 'tcp' as const, dport: 80, ct: 'established' as const });
  const cut = evaluate(model, pkt(a, c), { brNetfilter: true });
  assert.equal(cut.verdict, 'drop');
  assert.equal(cut.decidedBy?.purpose.kind, 'partition');
  assert.ok(script.includes(cut.decidedBy!.text));
  assert.equal(evaluate(model, pkt(a, b), { brNetfilter: true }).verdict, 'accept'); // same group
  assert.equal(evaluate(model, pkt(d, e), { brNetfilter: true }).verdict, 'accept'); // both in the rest
  assert.equal(evaluate(model, pkt(d, a), { brNetfilter: true }).verdict, 'drop'); // rest -> group 1
  // A changed source address (not any container's) does not escape.
  assert.equal(evaluate(model, { ...pkt(a, c), saddr: '10.88.0.200' }, { brNetfilter: true }).verdict, 'drop');
});

// ------------------------------------------------------------------------------------------------ the store

test('store: the partitions table is added to an existing state directory; rows go with their network', async () => {
  const os = await import('node:os');
  const { Store } = await import('../../src/store/store.js');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-part-store-'));
  try {
    const file = path.join(dir, 'nsnet.db');
    // A store as it was before this migration: every migration before the partitions table (later ones, such as
    // the dual-stack one, run on it too), with one network in it.
    const { MIGRATIONS } = await import('../../src/store/store.js');
    const upTo = MIGRATIONS.findIndex((m) => m.includes('TABLE IF NOT EXISTS partitions('));
    assert.ok(upTo > 0);
    const version = MIGRATIONS.length;
    const net = {
      id: hexId('net-st'), name: 'st', driver: 'bridge' as const, bridge: 'br-st', subnet: '10.66.0.0/24', gateway: '10.66.0.1', ipRange: null,
      internal: false, icc: true, mtu: 1500, isDefault: false, labels: {}, options: {}, created: new Date(0).toISOString(),
    };
    const Database = (await import('better-sqlite3')).default;
    const old = new Database(file);
    for (const m of MIGRATIONS.slice(0, upTo)) old.exec(m);
    old.pragma(`user_version = ${upTo}`);
    old.prepare(`INSERT INTO networks(id,name,driver,bridge,subnet,gateway,ip_range,internal,icc,mtu,is_default,labels,options,created)
      VALUES(?,?,?,?,?,?,NULL,0,1,1500,0,'{}','{}',?)`).run(net.id, net.name, net.driver, net.bridge, net.subnet, net.gateway, net.created);
    old.close();
    let s = new Store(file);
    try {
      assert.equal(s.db.pragma('user_version', { simple: true }), version);
      assert.deepEqual(s.partitions(), []);
      assert.equal(s.networks().length, 1, 'existing state is kept');
      const rec = { networkId: net.id, id: 'p1', groups: [['a'], ['b', 'c']], oneway: false, created: 'now', expires: 1000, timerPid: null, timerStart: null };
      s.tx(() => s.putPartition(rec));
      assert.deepEqual(s.partitionOf(net.id), rec);
      assert.equal(s.hasExpiredPartitions(999), false);
      assert.equal(s.hasExpiredPartitions(1000), true);
      assert.equal(s.anyPartitioned([hexId('x'), net.id]), true);
      s.tx(() => s.putPartition({ ...rec, id: 'p2', expires: null })); // replaces: one per network
      assert.deepEqual(s.partitions().map((p) => p.id), ['p2']);
      s.tx(() => s.setPartitionTimer(net.id, 'p2', 4242, '77'));
      assert.equal(s.partitionOf(net.id)!.timerPid, 4242);
      s.tx(() => s.deleteNetwork(net.id));
      assert.deepEqual(s.partitions(), [], 'removed with its network');
    } finally {
      s.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
