// The attachment use case (issue #13): a network namespace nsnet did not make, attached later through the library
// (Nsnet.attach / detach, what CNI ADD/DEL do), keyed by (owner id, ifname); covered by check and reconcile.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Nsnet, UserError } from '../../src/index.js';
import { TestHost, must, waitFor } from '../helpers/host.js';

test('attach a foreign netns: address, default route, DNS name, reached by a container; check/reconcile cover it; detach leaves the netns', async (t) => {
  const h = TestHost.create('att');
  t.after(() => h.cleanup());
  process.env.NSNET_RESOLV_CONF = `${h.root}/test-resolv.conf`; // never the machine's real resolvers
  const ns = Nsnet.open({ root: h.root, hostNetns: `/run/netns/${h.ns}` });
  t.after(() => ns.close());
  ns.createNetwork({ name: 'an', subnet: '10.64.0.0/24' });
  ns.run({ name: 'peer', network: 'an', command: ['sleep', '300'] });
  const job = `${h.ns}-job`;
  must(h.sh(`ip netns add ${job} && ip -n ${job} link set lo up`), 'a netns nsnet did not make');
  h.extraNs.push(job);

  const r = ns.attach({ netns: `/run/netns/${job}`, owner: 'job-1', ifname: 'net0', network: 'an', aliases: ['job'] });
  assert.equal(r.endpoint.ifname, 'net0');
  assert.match(r.endpoint.ip, /^10\.64\.0\.\d+$/);
  assert.equal(r.defaultRoute, true, 'the netns had no default route: it gets one');
  const addr = h.shIn(job, 'ip -4 -o addr show dev net0').stdout;
  assert.match(addr, new RegExp(`inet ${r.endpoint.ip.replace(/\./g, '\\.')}/24`));
  assert.match(h.shIn(job, 'ip route show default').stdout, /default via 10\.64\.0\.1 dev net0/);
  // The peer container reaches it by its DNS name, on the network.
  const ping = await waitFor(() => { const p = h.exec('peer', 'ping -c1 -W1 job'); return p.status === 0 ? p : null; }, 8000, 200);
  assert.match(ping!.stdout, new RegExp(r.endpoint.ip.replace(/\./g, '\\.')));

  // The key: a second attach of (owner, ifname) is refused, nothing changed.
  assert.throws(() => ns.attach({ netns: `/run/netns/${job}`, owner: 'job-1', ifname: 'net0', network: 'an' }), (e: unknown) => e instanceof UserError && /already attached/.test(e.message));
  assert.throws(() => ns.attach({ netns: `/run/netns/${h.ns}-nothere`, owner: 'job-2', network: 'an' }), (e: unknown) => e instanceof UserError && /not a network namespace/.test(e.message));

  assert.deepEqual(ns.check(), [], 'check: nothing to report');
  must(h.shIn(job, `ip addr del ${r.endpoint.ip}/24 dev net0`), 'the address removed behind nsnet\'s back');
  assert.deepEqual(ns.check().map((d) => d.kind), ['missing-address']);
  const rc = ns.reconcile();
  assert.ok(rc.actions.some((a) => /put back address/.test(a)), rc.actions.join('\n'));
  assert.deepEqual(ns.check(), []);

  assert.equal(ns.detach({ owner: 'job-1', ifname: 'net0', network: 'an' }), true);
  assert.equal(ns.detach({ owner: 'job-1', ifname: 'net0', network: 'an' }), false, 'idempotent');
  assert.doesNotMatch(h.shIn(job, 'ip -4 -o addr').stdout, /10\.64\.0\./, 'no address of the network left in the netns');
  assert.ok(h.shIn(job, 'true').status === 0, 'the netns is still the owner\'s');
  await ns.settle();
  assert.deepEqual(ns.check(), []);
});
