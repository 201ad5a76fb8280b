// The engine's transaction logic on a fake kernel (test/helpers/fake-kernel.ts): network create and rm, their crash
// points (a kill -9 at each, and `fail:` injection), pending rows and garbage rolled back and removed by reconcile,
// orphans, and a driver registered by the test. No root, no CAP_NET_ADMIN: no netns, netlink socket or nftables
// context is opened. Host.open gets the fake as its kernel ports; every test also checks that nothing it made is
// in the real kernel.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Host } from '../../src/engine/host.js';
import { createNetwork, removeNetwork } from '../../src/engine/networks.js';
import { check, reconcile } from '../../src/engine/reconcile.js';
import { armFaults, CRASH_POINTS, type CrashPoint } from '../../src/engine/faults.js';
import { containerMark, endpointMark, networkMark } from '../../src/engine/marks.js';
import { registerDriver } from '../../src/drivers/registry.js';
import type { DriverPorts, Finding, NetworkDriver } from '../../src/drivers/driver.js';
import type { ContainerRecord, EndpointRecord, NetworkRecord } from '../../src/types.js';
import { FakeKernel, FakeNetlink, type KernelState } from '../helpers/fake-kernel.js';

const roots: string[] = [];
after(() => {
  armFaults('');
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
});

function tmpRoot(): string {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-engine-tx-'));
  roots.push(base);
  return path.join(base, 'root');
}

const warnings: string[] = [];

function open(root: string, kernel: FakeKernel): Host {
  return Host.open({ root, kernel, env: { ...process.env, NSNET_MIN_FREE_KB: '0' }, warn: (m) => warnings.push(m) });
}

/** A fresh state directory and fake kernel. */
function fresh(): { root: string; k: FakeKernel; h: Host } {
  const root = tmpRoot();
  const k = new FakeKernel();
  return { root, k, h: open(root, k) };
}

const realIpForward = fs.readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8');

/** Nothing of the test's in the real kernel: no link of that name in the real (host) netns, no /run/netns entry,
 *  ip_forward as it was; and the Host reached no real handle (its netlink is the fake's, no host netns fd). */
function assertRealKernelUntouched(h: Host, k: FakeKernel, names: { links?: string[]; netns?: string[] } = {}): void {
  assert.equal(h.hostFd, -1);
  assert.ok(h.nl instanceof FakeNetlink, 'Host.nl is the fake');
  for (const l of names.links ?? []) assert.equal(fs.existsSync(`/sys/class/net/${l}`), false, `link ${l} is not in the real kernel`);
  for (const n of names.netns ?? []) assert.equal(fs.existsSync(`/run/netns/${n}`), false, `netns ${n} is not in the real kernel`);
  assert.equal(fs.readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8'), realIpForward, 'the real ip_forward is unchanged');
  assert.ok(k.calls.length > 0, 'the engine reached the kernel through the fake');
}

const kinds = (h: Host) => check(h).map((d) => d.kind).sort();

class Killed extends Error {}

/**
 * Runs `fn` with the process "killed" at crash point `point`: at that moment the store (VACUUM INTO), the other
 * files of the state directory and the fake kernel's state are copied, and an exception stops the use case. Then
 * the host is closed and the state directory put back as the kill left it. Returns the fake kernel as it was then.
 */
function killedAt(point: CrashPoint, root: string, h: Host, k: FakeKernel, fn: () => void): FakeKernel {
  const saved = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-engine-tx-kill-'));
  roots.push(saved);
  let state: KernelState | null = null;
  armFaults(point, (p) => {
    h.store.db.exec(`VACUUM INTO '${path.join(saved, 'nsnet.db')}'`);
    for (const e of fs.readdirSync(root)) if (!/^(nsnet\.db.*|lock)$/.test(e)) fs.cpSync(path.join(root, e), path.join(saved, e), { recursive: true });
    state = k.snapshot();
    throw new Killed(p);
  });
  try {
    assert.throws(fn, (e) => e instanceof Killed && e.message === point, `killed at ${point}`);
  } finally {
    armFaults('');
  }
  h.close();
  fs.rmSync(root, { recursive: true, force: true });
  fs.cpSync(saved, root, { recursive: true });
  assert.ok(state, 'the kill point was reached');
  return new FakeKernel(state);
}

const NET_CREATE = CRASH_POINTS.filter((p) => p.startsWith('network-create:'));
const NET_RM = CRASH_POINTS.filter((p) => p.startsWith('network-rm:'));

test('network create commits the row and the bridge (gateway, loopback guard, sysctls, firewall, resolver); check finds nothing', () => {
  const { k, h } = fresh();
  try {
    const n = createNetwork(h, { name: 'web', subnet: '10.91.0.0/24' });
    const row = h.store.allNetworksIncludingPending().find((x) => x.id === n.id);
    assert.equal(row?.pending, false);
    const br = k.hostLink(n.bridge);
    assert.ok(br, 'the bridge exists in the fake kernel');
    assert.equal(br.kind, 'bridge');
    assert.equal(br.alias, networkMark(h.owner, n));
    assert.equal(br.up, true);
    assert.deepEqual(k.state.host.addrs.filter((a) => a.index === br.index).map((a) => `${a.address}/${a.prefixLen}`), ['10.91.0.1/24']);
    // The loopback guard: the bridge anchors the shared block holding the guard filter.
    assert.ok(k.state.host.qdiscs.some((q) => q.index === br.index && q.kind === 'clsact' && q.egressBlock !== 0));
    assert.equal(k.state.host.filters.length, 1);
    assert.equal(k.state.sysctls['net.ipv4.ip_forward'], '1');
    assert.equal(k.state.sysctls[`net.ipv4.conf.${n.bridge}.route_localnet`], '1');
    assert.match(k.ruleset, new RegExp(`"${n.bridge}" comment "network web"`));
    assert.equal(k.state.resolver.running, true);
    // In this order: the row persisted (no kernel call between), the bridge, then the firewall, then the resolver.
    const ops = k.ops();
    const first = (op: string) => ops.indexOf(op);
    assert.ok(first('nl.createBridge') < ops.lastIndexOf('nft.run') && ops.lastIndexOf('nft.run') < first('resolver.start'), ops.join(' '));
    assert.deepEqual(check(h), []);
    // An IPv6 network: the bridge gets IPv6 (through the ports, never the real sysctls) and its gateway.
    const d = createNetwork(h, { name: 'dual', ipv6: true, subnets: ['10.91.1.0/24', 'fd00:91::/64'] });
    assert.equal(k.state.sysctls[`net.ipv6.conf.${d.bridge}.accept_ra`], '0');
    assert.equal(k.state.sysctls['net.ipv6.conf.all.forwarding'], '1');
    assert.ok(k.state.host.addrs.some((a) => a.address === 'fd00:91::1' && a.prefixLen === 64));
    assert.deepEqual(check(h), []);
    assertRealKernelUntouched(h, k, { links: [n.bridge, d.bridge] });
  } finally {
    h.close();
  }
});

for (const point of NET_CREATE) {
  test(`network create killed at ${point}: check reports it, reconcile finishes or rolls it back, check is clean after`, () => {
    const { root, k: k0, h: h0 } = fresh();
    const k = killedAt(point, root, h0, k0, () => createNetwork(h0, { name: 'kill', subnet: '10.92.0.0/24' }));
    const h = open(root, k);
    try {
      const row = h.store.allNetworksIncludingPending().find((n) => n.name === 'kill');
      assert.ok(row, 'the row was persisted before the first crash point');
      const bridge = row.bridge;
      assert.equal(!!k.hostLink(bridge), point !== 'network-create:persisted', 'the bridge exists once the driver made it');
      const before = kinds(h);
      assert.ok(before.length > 0, `check reports the interrupted create (${point})`);
      const { actions } = reconcile(h);
      assert.deepEqual(check(h), [], `nothing left after reconcile (${point}): ${actions.join('; ')}`);
      if (point === 'network-create:firewall') {
        // Committed before the point: reconcile completes it (the resolver was not told yet).
        assert.equal(row.pending, false);
        assert.deepEqual(before, ['dns']);
        assert.ok(k.hostLink(bridge), 'the committed network keeps its bridge');
        assert.equal(k.state.resolver.running, true);
      } else {
        // Pending: rolled back, the bridge (made or not) removed as garbage.
        assert.equal(row.pending, true);
        assert.ok(before.includes('unfinished-create'), before.join(' '));
        assert.ok(actions.includes('rolled back network kill'), actions.join('; '));
        assert.equal(h.store.allNetworksIncludingPending().length, 0);
        assert.deepEqual(h.store.garbage(), []);
        assert.equal(k.hostLink(bridge), null, 'the bridge is gone');
        assert.equal(k.state.nft.length, 0, 'no table without networks');
        if (point === 'network-create:bridge') assert.ok(actions.includes(`removed link ${bridge}`), actions.join('; '));
      }
      assertRealKernelUntouched(h, k, { links: [bridge] });
    } finally {
      h.close();
    }
  });

  test(`network create with fail:${point}: the failure path undoes it (or leaves the pending row to reconcile)`, () => {
    const { k, h } = fresh();
    try {
      armFaults(`fail:${point}`);
      try {
        assert.throws(() => createNetwork(h, { name: 'failing', subnet: '10.93.0.0/24' }), new RegExp(`injected fault at ${point}`));
      } finally {
        armFaults('');
      }
      const rows = h.store.allNetworksIncludingPending();
      if (point === 'network-create:persisted') {
        // Before the use case's try: the pending row stays, as after a kill there.
        assert.equal(rows.length, 1);
        assert.deepEqual(kinds(h), ['unfinished-create']);
        reconcile(h);
      } else {
        // Its failure path removed the bridge and the row itself.
        assert.equal(rows.length, 0);
      }
      assert.deepEqual(h.store.allNetworksIncludingPending(), []);
      assert.deepEqual(k.state.host.links.filter((l) => l.kind === 'bridge'), []);
      assert.deepEqual(check(h), []);
      if (point !== 'network-create:persisted') assert.ok(k.ops().includes('nl.createBridge') && k.ops().includes('nl.deleteLink'), 'made, then undone');
      assertRealKernelUntouched(h, k);
    } finally {
      h.close();
    }
  });
}

test('network create whose kernel request fails: the bridge made before it is removed, the row deleted, the error told', () => {
  const { k, h } = fresh();
  try {
    k.failOn = { op: 'nl.addAddress', error: new Error('RTM_NEWADDR: Permission denied (fake)') };
    assert.throws(() => createNetwork(h, { name: 'nope', subnet: '10.94.0.0/24' }), /RTM_NEWADDR: Permission denied \(fake\)/);
    k.failOn = null;
    assert.ok(k.ops().includes('nl.createBridge') && k.ops().includes('nl.deleteLink'), k.ops().join(' '));
    assert.deepEqual(k.state.host.links.map((l) => l.name), ['lo']);
    assert.deepEqual(h.store.allNetworksIncludingPending(), []);
    assert.deepEqual(check(h), []);
    // The firewall failing (after the commit): the network is taken back out, bridge and row.
    k.failOn = { op: 'nft.run', match: /^table inet nsnet \{\}/, error: new Error('nftables: Error: Could not process rule (fake)') };
    assert.throws(() => createNetwork(h, { name: 'nope2', subnet: '10.94.1.0/24' }), /Could not process rule \(fake\)/);
    k.failOn = null;
    assert.deepEqual(h.store.allNetworksIncludingPending(), []);
    assert.deepEqual(k.state.host.links.map((l) => l.name), ['lo']);
    assert.deepEqual(check(h), []);
    assertRealKernelUntouched(h, k);
  } finally {
    h.close();
  }
});

test('network rm: removes the bridge, the table and the resolver', () => {
  const { k, h } = fresh();
  try {
    const n = createNetwork(h, { name: 'gone', subnet: '10.95.0.0/24' });
    removeNetwork(h, 'gone');
    assert.equal(k.hostLink(n.bridge), null);
    assert.deepEqual(h.store.allNetworksIncludingPending(), []);
    assert.deepEqual(h.store.garbage(), []);
    assert.equal(k.state.nft.length, 0);
    assert.equal(k.state.resolver.running, false);
    assert.deepEqual(check(h), []);
    assertRealKernelUntouched(h, k, { links: [n.bridge] });
  } finally {
    h.close();
  }
});

for (const point of NET_RM) {
  test(`network rm killed at ${point}: its garbage row is reported by check and finished by reconcile`, () => {
    const { root, k: k0, h: h0 } = fresh();
    const n = createNetwork(h0, { name: 'rmkill', subnet: '10.96.0.0/24' });
    const k = killedAt(point, root, h0, k0, () => removeNetwork(h0, 'rmkill'));
    const h = open(root, k);
    try {
      assert.equal(h.store.findNetwork('rmkill'), null, 'the row went in the first transaction');
      assert.deepEqual(h.store.garbage().map((g) => `${g.kind} ${g.name}`), [`link ${n.bridge}`]);
      assert.equal(!!k.hostLink(n.bridge), point === 'network-rm:persisted', 'the bridge is there until the driver removed it');
      const before = check(h);
      assert.ok(before.some((d) => d.kind === 'unfinished-removal' && d.detail === `link ${n.bridge}`), JSON.stringify(before));
      const { actions } = reconcile(h);
      assert.ok(actions.includes(`removed link ${n.bridge}`), actions.join('; '));
      assert.equal(k.hostLink(n.bridge), null);
      assert.deepEqual(h.store.garbage(), []);
      assert.equal(k.state.nft.length, 0, 'the firewall rendered without the network');
      assert.equal(k.state.resolver.running, false, 'no resolver without user-defined networks');
      assert.deepEqual(check(h), []);
      assertRealKernelUntouched(h, k, { links: [n.bridge] });
    } finally {
      h.close();
    }
  });
}

const hex = (n: number) => crypto.randomBytes(n).toString('hex');

test('a pending connect (a connect killed after its row) is rolled back: its row dropped, its veth removed', () => {
  const { k, h } = fresh();
  try {
    const n = createNetwork(h, { name: 'conn', subnet: '10.97.0.0/24' });
    const c: ContainerRecord = {
      id: hex(32), name: 'box', mode: 'bridge', modeTarget: null, netns: `${h.netnsPrefix}${hex(6)}`, command: ['sleep', '1000'], ports: [],
      dns: [], autoRemove: false, state: 'created', pid: null, pidStart: null, exitCode: null, created: new Date().toISOString(),
      started: null, finished: null, used: false,
    };
    const ep: EndpointRecord = {
      containerId: c.id, containerName: c.name, networkId: n.id, ifname: 'eth0', hostIf: `nsv${hex(4)}`, ip: '10.97.0.2',
      mac: '02:42:0a:61:00:02', aliases: [], staticIp: false,
    };
    // As `connect` leaves them when killed at connect:attached: the container, its netns, the pending endpoint row,
    // and the host end of the veth on the bridge.
    h.store.tx(() => {
      h.store.insertContainer(c, false);
      h.store.insertEndpoint(ep, true);
    });
    k.addNetns(c.netns, containerMark(h.owner, c));
    k.addHostLink(ep.hostIf, { kind: 'veth', alias: endpointMark(h.owner, ep), master: k.hostLink(n.bridge)!.index });
    // Reported once, as the unfinished connect (not also as an orphan link): reconcile rolls it back, then removes the veth.
    assert.deepEqual(check(h).map((d) => `${d.kind} ${d.detail}`).sort(), [`unfinished-connect box ${ep.hostIf}`]);
    const { actions } = reconcile(h);
    assert.ok(actions.includes('rolled back connect of box'), actions.join('; '));
    assert.ok(actions.includes(`removed link ${ep.hostIf}`), actions.join('; '));
    assert.equal(k.hostLink(ep.hostIf), null);
    assert.deepEqual(h.store.allEndpointsIncludingPending(), []);
    assert.ok(h.store.containerById(c.id), 'the container itself stays');
    assert.ok(c.netns in k.state.netns, 'and its sandbox');
    assert.deepEqual(check(h), []);
    assertRealKernelUntouched(h, k, { links: [ep.hostIf], netns: [c.netns] });
  } finally {
    h.close();
  }
});

test('orphans: a link and a netns of ours that the store does not know are removed; someone else\'s are left alone', () => {
  const { k, h } = fresh();
  try {
    createNetwork(h, { name: 'orph', subnet: '10.98.0.0/24' });
    k.addHostLink('nsvdeadbeef', { kind: 'veth', alias: `${h.owner} ep ${hex(32)} eth0 - ` });
    k.addHostLink('theirs0', { kind: 'bridge', alias: 'made by someone else' });
    k.addHostLink('plain0', { kind: 'dummy', alias: null });
    const ours = `${h.netnsPrefix}${hex(6)}`;
    const unmarked = `${h.netnsPrefix}${hex(6)}`;
    k.addNetns(ours, `${h.owner} ctr ${hex(32)} bridge lost`);
    k.addNetns(unmarked, null);
    k.addNetns('user-netns', null);
    assert.deepEqual(check(h).map((d) => `${d.kind} ${d.detail}`).sort(), ['orphan-link nsvdeadbeef', `orphan-netns ${ours}`]);
    const { actions } = reconcile(h);
    assert.ok(actions.includes('removed orphan link nsvdeadbeef') && actions.includes(`removed orphan netns ${ours}`), actions.join('; '));
    assert.equal(k.hostLink('nsvdeadbeef'), null);
    assert.ok(k.hostLink('theirs0') && k.hostLink('plain0'), 'links without our mark are left alone');
    assert.deepEqual(Object.keys(k.state.netns).sort(), [unmarked, 'user-netns'].sort(), 'only the marked netns went');
    assert.deepEqual(check(h), []);
    assertRealKernelUntouched(h, k, { links: ['nsvdeadbeef'], netns: [ours, unmarked] });
  } finally {
    h.close();
  }
});

test('a bridge removed behind nsnet\'s back is recreated by reconcile, with its gateway and guard', () => {
  const { k, h } = fresh();
  try {
    const n = createNetwork(h, { name: 'heal', subnet: '10.99.0.0/24' });
    h.nl.deleteLink(k.hostLink(n.bridge)!.index);
    assert.deepEqual(kinds(h), ['missing-bridge', 'missing-guard']);
    const { actions } = reconcile(h);
    assert.ok(actions.includes(`recreated bridge ${n.bridge} of heal`), actions.join('; '));
    const br = k.hostLink(n.bridge)!;
    assert.ok(k.state.host.addrs.some((a) => a.index === br.index && a.address === '10.99.0.1'));
    assert.deepEqual(check(h), []);
  } finally {
    h.close();
  }
});

// ------------------------------------------------------------------------------------------------ the driver seam

interface DriverCall { op: string; network: string; nlIsFake: boolean }
const driverCalls: DriverCall[] = [];

/** A driver of the test's: one dummy link per network, marked as nsnet's; its diff reports the link missing. */
const testDriver: NetworkDriver = {
  name: 'engine-tx-test',
  scope: 'local',
  setupNetwork(p: DriverPorts, n: NetworkRecord) {
    driverCalls.push({ op: 'setup', network: n.name, nlIsFake: p.nl instanceof FakeNetlink });
    if (!p.nl.linkByName(n.bridge)) p.nl.createBridge(n.bridge, { alias: p.marks.network(n), up: true });
  },
  teardownNetwork(p: DriverPorts, n: NetworkRecord) {
    driverCalls.push({ op: 'teardown', network: n.name, nlIsFake: p.nl instanceof FakeNetlink });
    const l = p.nl.linkByName(n.bridge);
    if (l && p.marks.owns(l.alias)) p.nl.deleteLink(l.index);
  },
  attach() { throw new Error('not used by this test'); },
  detach() { /* no endpoints */ },
  quiesce() { /* no endpoints */ },
  networkLinks: (n) => [n.bridge],
  diff(p, v): Finding[] {
    driverCalls.push({ op: 'diff', network: v.networks.map((n) => n.name).join(','), nlIsFake: p.nl instanceof FakeNetlink });
    return v.networks.filter((n) => !v.links.some((l) => l.name === n.bridge)).map((n) => ({
      kind: 'test-driver-missing', detail: n.bridge,
      repair: () => { testDriver.setupNetwork(p, n); return [`test driver set up ${n.bridge}`]; },
    }));
  },
};
registerDriver(testDriver);

test('a driver registered by the test is the one called for setup, diff (check, reconcile) and teardown, with the fake ports', () => {
  const { k, h } = fresh();
  try {
    driverCalls.length = 0;
    const n = createNetwork(h, { name: 'viadrv', driver: testDriver.name, subnet: '10.100.0.0/24' });
    assert.equal(n.driver, testDriver.name);
    assert.deepEqual(driverCalls, [{ op: 'setup', network: 'viadrv', nlIsFake: true }]);
    assert.ok(k.hostLink(n.bridge), 'its link, made through the ports');
    assert.equal(k.ops('nl.addAddress').length, 0, 'the bridge driver was not called');
    assert.deepEqual(check(h), []);
    assert.deepEqual(driverCalls.at(-1), { op: 'diff', network: 'viadrv', nlIsFake: true });
    h.nl.deleteLink(k.hostLink(n.bridge)!.index);
    assert.deepEqual(check(h).map((d) => `${d.kind} ${d.detail}`), [`test-driver-missing ${n.bridge}`]);
    assert.ok(reconcile(h).actions.includes(`test driver set up ${n.bridge}`));
    assert.ok(k.hostLink(n.bridge));
    assert.deepEqual(check(h), []);
    removeNetwork(h, 'viadrv');
    assert.deepEqual(driverCalls.at(-1), { op: 'teardown', network: 'viadrv', nlIsFake: true });
    assert.equal(k.hostLink(n.bridge), null);
    assert.deepEqual(check(h), []);
    assertRealKernelUntouched(h, k, { links: [n.bridge] });
  } finally {
    h.close();
  }
});

test('the lost-store guard on the fake kernel: an empty store while links of ours exist is recorded as lost; reconcile refuses until --force', () => {
  const root = tmpRoot();
  const k = new FakeKernel();
  const h0 = open(root, k);
  const owner = h0.owner;
  h0.close();
  assert.equal(warnings.filter((w) => w.includes(root)).length, 0);
  k.addHostLink('nsbr-lost', { kind: 'bridge', alias: `${owner} net ${hex(32)} - lost` });
  const h = open(root, k);
  try {
    assert.ok(warnings.some((w) => w.includes('was empty while the kernel held 1 link(s) (nsbr-lost)')), warnings.join('\n'));
    assert.deepEqual(kinds(h), ['orphan-link', 'store-lost']);
    assert.throws(() => reconcile(h), /reconcile --force/);
    assert.ok(k.hostLink('nsbr-lost'), 'nothing removed');
    const { actions } = reconcile(h, { force: true });
    assert.ok(actions.includes('removed orphan link nsbr-lost'), actions.join('; '));
    assert.equal(k.hostLink('nsbr-lost'), null);
    assert.deepEqual(check(h), []);
    assertRealKernelUntouched(h, k, { links: ['nsbr-lost'] });
  } finally {
    h.close();
  }
});
