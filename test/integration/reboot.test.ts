// Reboot-like loss of the kernel state: the host netns (and every container netns) disappears and the host netns
// comes back empty, while the store is kept. reconcile recreates networks and rules, marks containers exited with
// their addresses freed, and `start` rebuilds their sandboxes.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { REPO, TestHost, must, sh, waitFor } from '../helpers/host.js';

const SERV = path.join(REPO, 'test/fixtures/tinyserv.py');

test('reboot-like loss: reconcile recreates networks and rules, containers exited with addresses free, start rebuilds', async (t) => {
  const h = TestHost.create('reboot');
  t.after(() => h.cleanup());
  h.ok(['network', 'create', '--subnet', '10.70.0.0/24', 'n1']);
  h.ok(['run', '-d', '--name', 'web', '--network', 'n1', '-p', '8088:8080', '--', 'python3', SERV, 'whoami', '8080']);
  h.ok(['run', '-d', '--name', 'fixed', '--network', 'n1', '--ip', '10.70.0.50', '--', 'sleep', '300']);
  const ipBefore = JSON.parse(h.ok(['inspect', 'web']))[0].NetworkSettings.Networks.n1.IPAddress;

  // "Reboot": every process in the test's namespaces dies, every namespace goes, the host netns returns empty.
  const inos = new Set([h.ns, ...h.containerNetns()].map((n) => fs.statSync(`/run/netns/${n}`).ino));
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try { if (inos.has(fs.statSync(`/proc/${d}/ns/net`).ino)) process.kill(Number(d), 'SIGKILL'); } catch { /* gone */ }
  }
  for (const n of [h.ns, ...h.containerNetns()]) must(sh(`ip netns del ${n}`), 'netns del');
  must(sh(`ip netns add ${h.ns} && ip -n ${h.ns} link set lo up`), 'recreate host netns');

  assert.equal(h.nsnet(['check']).status, 1, 'check sees the loss');
  h.ok(['reconcile']);
  const chk = h.nsnet(['check']);
  assert.equal(chk.status, 0, chk.stdout);
  const net = JSON.parse(h.ok(['network', 'inspect', 'n1']))[0];
  assert.deepEqual(Object.keys(net.Containers), [], 'addresses freed');
  assert.ok(h.links().includes(net.Options['com.docker.network.bridge.name']), 'bridge recreated');
  assert.match(h.sh('nft list table inet nsnet').stdout, /masquerade/, 'rules recreated');
  const ps = h.ok(['ps', '-a', '--format', 'json']).split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(ps.map((c) => c.State).sort(), ['exited', 'exited']);

  // start rebuilds the sandbox: the static address is kept, the published port works again.
  h.ok(['start', 'web', 'fixed']);
  const web = JSON.parse(h.ok(['inspect', 'web']))[0];
  assert.equal(web.State.Running, true);
  assert.match(web.NetworkSettings.Networks.n1.IPAddress, /^10\.70\.0\.\d+$/, `a fresh address (was ${ipBefore})`);
  assert.equal(JSON.parse(h.ok(['inspect', 'fixed']))[0].NetworkSettings.Networks.n1.IPAddress, '10.70.0.50');
  const got = await waitFor(() => h.sh(`python3 -c "import socket;s=socket.create_connection(('127.0.0.1',8088),timeout=1);print(s.recv(64).decode().strip())" 2>/dev/null`).stdout.trim(), 8000, 100);
  assert.ok(got, 'published port works after the rebuild');
  assert.equal(h.nsnet(['check']).status, 0);
});
