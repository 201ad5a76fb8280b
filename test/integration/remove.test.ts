// `rm` leaves a container's veths to the kernel: it deletes the netns and the kernel removes the pair with it, a
// moment later. These tests pin down what must hold meanwhile and afterwards.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { Nsnet } from '../../src/index.js';
import path from 'node:path';
import { REPO, TestHost, waitFor } from '../helpers/host.js';

const SERV = path.join(REPO, 'test/fixtures/tinyserv.py');
// Connects, prints what the server sent (exit 1 on any error, e.g. refused or reset by the wrong netns).
const READ = 'import socket,sys; s=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=1); print(s.recv(100).decode())';

function openLib(h: TestHost): Nsnet {
  process.env.NSNET_RESOLV_CONF = `${h.root}/test-resolv.conf`; // never the machine's real resolvers
  return Nsnet.open({ root: h.root, hostNetns: `/run/netns/${h.ns}` });
}

test('rm: the kernel removes the veth; check is clean at once; an address reused at once is reached on its new port', async (t) => {
  const h = TestHost.create('rmk');
  t.after(() => h.cleanup());
  const ns = openLib(h);
  t.after(() => ns.close());
  ns.createNetwork({ name: 'rk', subnet: '10.62.0.0/24' });
  ns.run({ name: 'peer', network: 'rk', command: ['sleep', '300'] });
  const baseLinks = h.links().length; // lo, bridge, peer's veth
  ns.run({ name: 'old', network: 'rk', ip: '10.62.0.50', command: ['sleep', '300'] });
  const oldC = ns.host.store.findContainer('old')!;
  const oldIf = ns.host.store.endpointsOf(oldC.id)[0].hostIf;
  // The peer learns the address's MAC on the old port.
  assert.equal(ns.exec('peer', ['ping', '-c1', '-W1', '10.62.0.50']).status, 0);
  // Keep the old netns alive a while (as a slow kernel clean-up or a stray holder would): with its port still up
  // it would keep answering for 10.62.0.50 and the bridge would keep sending that MAC's frames to it.
  const hold = fs.openSync(`/run/netns/${oldC.netns}`, 'r');
  try {
    await ns.remove('old', true);
    assert.deepEqual(ns.check(), [], 'a veth the kernel is removing is no difference');
    assert.ok(!fs.existsSync(`/run/netns/${oldC.netns}`), 'netns name gone at once');
    // Same address, same MAC, new port: a server there answers at once.
    ns.run({ name: 'new', network: 'rk', ip: '10.62.0.50', command: ['python3', SERV, 'whoami', '80'] });
    const got = await waitFor(() => {
      const r = ns.exec('peer', ['python3', '-c', READ, '10.62.0.50', '80']);
      return r.status === 0 ? r.stdout : '';
    }, 3000, 100);
    assert.match(got, /^10\.62\.0\.2\b/, 'the new container answered (it saw the peer\'s address)');
  } finally {
    fs.closeSync(hold);
  }
  assert.equal(await ns.settle(), 0, 'the kernel removed the veth by itself once the netns was released');
  assert.ok(!h.links().includes(oldIf), `${oldIf} is gone`);
  assert.equal(h.links().length, baseLinks + 1, 'only the new container\'s veth was added');
  const g = ns.host.store.db.prepare('SELECT count(*) AS n FROM garbage').get() as { n: number };
  assert.equal(g.n, 0, 'no garbage rows left');
  assert.deepEqual(ns.check(), []);
});

test('rm: a veth whose netns something else keeps alive is deleted by nsnet after the grace period', async (t) => {
  const h = TestHost.create('rmh');
  t.after(() => h.cleanup());
  const ns = openLib(h);
  t.after(() => ns.close());
  ns.createNetwork({ name: 'rh', subnet: '10.63.0.0/24' });
  ns.create({ name: 'held', network: 'rh', command: ['sleep', '300'] });
  const c = ns.host.store.findContainer('held')!;
  const hostIf = ns.host.store.endpointsOf(c.id)[0].hostIf;
  // Another program holds the container's netns open: unmounting it does not end it, its veth stays.
  const fd = fs.openSync(`/run/netns/${c.netns}`, 'r');
  try {
    await ns.remove('held');
    assert.ok(h.links().includes(hostIf), 'the veth is still there while the netns is held');
    assert.deepEqual(ns.check(), [], 'within the grace period: no difference');
    const down = h.sh(`ip -o link show ${hostIf}`).stdout;
    assert.match(down, /state DOWN|<[^>]*BROADCAST,MULTICAST,M-DOWN|,M-DOWN/, 'the port is taken out of service');
    assert.doesNotMatch(down, /[<,]UP[,>]/, 'administratively down');
    assert.equal(await ns.settle(300), 1, 'deleted explicitly after the timeout');
    assert.ok(!h.links().includes(hostIf), 'gone');
    assert.deepEqual(ns.check(), []);
  } finally {
    fs.closeSync(fd);
  }
});

test('rm through the CLI: a later command sweeps the rows of veths the kernel removed; reconcile leaves young ones to the kernel', async (t) => {
  const h = TestHost.create('rmc');
  t.after(() => h.cleanup());
  h.ok(['network', 'create', '--subnet', '10.64.0.0/24', 'rc']);
  for (let i = 0; i < 5; i++) h.ok(['create', '--network', 'rc', '--name', `c${i}`, '--', 'sleep', '1']);
  const before = h.links().length;
  for (let i = 0; i < 5; i++) h.ok(['rm', `c${i}`]);
  assert.equal(h.ok(['check']).trim(), '', 'check: nothing to report right after the removals');
  h.ok(['reconcile']);
  // Rows are swept by the next mutating command once their veths are gone (kernel: well under a second here).
  const ns = openLib(h);
  t.after(() => ns.close());
  assert.equal(await ns.settle(), 0);
  h.ok(['network', 'create', '--subnet', '10.65.0.0/24', 'other']);
  const g = ns.host.store.db.prepare('SELECT count(*) AS n FROM garbage').get() as { n: number };
  assert.equal(g.n, 0);
  assert.equal(h.links().length, before - 5 + 1, 'five veths gone, one bridge added');
});
