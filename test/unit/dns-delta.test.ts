// Incremental updates of the resolver's index must give exactly what a full rebuild gives.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyDelta, indexView, type DnsView, type IndexedView } from '../../src/dns/answer.js';

const NET = { id: 'n1', name: 'oa-net', gateway: '10.1.0.1', subnet: '10.1.0.0/24' };
const NET2 = { id: 'n2', name: 'other', gateway: '10.2.0.1', subnet: '10.2.0.0/24' };
const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const C = 'c'.repeat(64);

function dump(idx: IndexedView): unknown {
  const nets: Record<string, unknown> = {};
  for (const [id, ni] of idx.nets) {
    nets[id] = {
      names: [...ni.names.entries()].map(([k, v]) => [k, [...v].sort()]).sort(),
      qualified: [...ni.qualified.entries()].map(([k, v]) => [k, [...v].sort()]).sort(),
      ptr: [...ni.ptr.entries()].sort(),
      ipToContainer: [...ni.ipToContainer.entries()].sort(),
    };
  }
  const containerNets = [...idx.containerNets.entries()].map(([c, l]) => [c, l.map((n) => n.id).sort()]).sort();
  const overrides = [...idx.overrides.entries()].map(([k, v]) => [k, v.map((u) => u.text)]).sort();
  return { nets, containerNets, overrides };
}

const base: DnsView = {
  networks: [NET, NET2], upstreams: ['192.0.2.1'],
  entries: [
    { networkId: 'n1', names: ['redis-sys', 'cache'], ip: '10.1.0.2', containerId: A },
    { networkId: 'n1', names: ['postgres', 'cache'], ip: '10.1.0.3', containerId: B },
  ],
};

test('delta: add, replace, remove and shared aliases give the same index as a full rebuild', () => {
  const idx = indexView(base);
  // C joins both networks with an override; B is removed; A gets a new alias (replace).
  applyDelta(idx, {
    generation: 2, containers: [C, B, A],
    add: [
      { networkId: 'n1', names: ['oa-java'], ip: '10.1.0.4', containerId: C },
      { networkId: 'n2', names: ['oa-java', 'app'], ip: '10.2.0.4', containerId: C },
      { networkId: 'n1', names: ['redis-sys', 'cache', 'kv'], ip: '10.1.0.2', containerId: A },
    ],
    overrides: { '10.1.0.4': ['192.0.2.53'] },
  });
  const full = indexView({
    ...base, overrides: { '10.1.0.4': ['192.0.2.53'] },
    entries: [
      { networkId: 'n1', names: ['redis-sys', 'cache', 'kv'], ip: '10.1.0.2', containerId: A },
      { networkId: 'n1', names: ['oa-java'], ip: '10.1.0.4', containerId: C },
      { networkId: 'n2', names: ['oa-java', 'app'], ip: '10.2.0.4', containerId: C },
    ],
  });
  assert.deepEqual(dump(idx), dump(full));
  assert.equal(idx.generation, 2);
  // Removing C entirely: back to A only, no trace of C's names, PTRs or override.
  applyDelta(idx, { generation: 3, containers: [C], add: [] });
  const onlyA = indexView({ ...base, entries: [{ networkId: 'n1', names: ['redis-sys', 'cache', 'kv'], ip: '10.1.0.2', containerId: A }] });
  assert.deepEqual(dump(idx), dump(onlyA));
  assert.equal(idx.nets.get('n1')!.names.get('cache')!.length, 1, 'shared alias keeps the remaining container');
});
