// Embedded DNS through the CLI: containers find each other by name and alias on user-defined networks, from
// ordinary programs (glibc via getent, Python, Node); names never leak across networks; the default bridge has
// none; other names are forwarded to the upstreams (a fake upstream in a test namespace); changes are immediate;
// the resolver restarts cleanly.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { REPO, TestHost, waitFor } from '../helpers/host.js';

const UPSTREAM = path.join(REPO, 'test/fixtures/fake-upstream.mjs');

function getent(h: TestHost, ctr: string, name: string): string {
  const r = h.exec(ctr, `getent ahostsv4 ${name} | awk 'NR==1{print $1}'`);
  return r.stdout.trim();
}

test('embedded DNS: names, aliases, isolation, forwarding, PTR, immediacy, restart', async (t) => {
  const h = TestHost.create('dns');
  t.after(() => h.cleanup());
  const up = h.addUpstream();
  h.shIn(up.ns, `node ${UPSTREAM} ${up.ip} </dev/null >/dev/null 2>&1 &`);
  const resolv = path.join(h.root, 'upstream-resolv.conf');
  fs.writeFileSync(resolv, `nameserver ${up.ip}\nsearch corp.example\noptions ndots:1 timeout:2\n`);
  h.setEnv('NSNET_RESOLV_CONF', resolv);

  h.ok(['network', 'create', 'oa-net']);
  h.ok(['network', 'create', 'other']);
  h.ok(['run', '-d', '--name', 'redis-sys', '--network', 'oa-net', '--alias', 'cache', '--', 'sleep', '300']);
  h.ok(['run', '-d', '--name', 'postgres', '--network', 'oa-net', '--', 'sleep', '300']);
  h.ok(['run', '-d', '--name', 'oa-java', '--network', 'oa-net', '--', 'sleep', '300']);
  h.ok(['run', '-d', '--name', 'stranger', '--network', 'other', '--', 'sleep', '300']);
  const ip = (c: string, n: string) => JSON.parse(h.ok(['inspect', c]))[0].NetworkSettings.Networks[n].IPAddress as string;
  const gw = JSON.parse(h.ok(['network', 'inspect', 'oa-net']))[0].IPAM.Config[0].Gateway;

  // resolv.conf and hosts of a container.
  const rc = h.exec('oa-java', 'cat /etc/resolv.conf').stdout;
  assert.match(rc, new RegExp(`^nameserver ${gw.replace(/\./g, '\\.')}$`, 'm'));
  assert.match(rc, /^search corp\.example$/m);
  assert.match(rc, /^options ndots:1 timeout:2$/m);
  assert.match(h.exec('oa-java', 'cat /etc/hosts').stdout, new RegExp(`^${ip('oa-java', 'oa-net').replace(/\./g, '\\.')}\\s+oa-java`, 'm'));

  // By name and alias, through glibc, Python and Node.
  assert.equal(getent(h, 'oa-java', 'redis-sys'), ip('redis-sys', 'oa-net'));
  assert.equal(getent(h, 'oa-java', 'postgres'), ip('postgres', 'oa-net'));
  assert.equal(getent(h, 'oa-java', 'cache'), ip('redis-sys', 'oa-net'));
  assert.equal(getent(h, 'oa-java', 'REDIS-SYS'), ip('redis-sys', 'oa-net'), 'case-insensitive');
  assert.equal(h.exec('oa-java', `python3 -c "import socket;print(socket.gethostbyname('postgres'))"`).stdout.trim(), ip('postgres', 'oa-net'));
  assert.equal(h.exec('oa-java', `node -e "require('dns').lookup('redis-sys',4,(e,a)=>console.log(e?e.code:a))"`).stdout.trim(), ip('redis-sys', 'oa-net'));

  // No leaks across networks; multi-homed names answer with the address on the shared network.
  assert.equal(getent(h, 'stranger', 'redis-sys'), '', 'names do not leak across networks');
  h.ok(['network', 'connect', '--alias', 'db', 'other', 'postgres']);
  assert.equal(getent(h, 'stranger', 'postgres'), ip('postgres', 'other'), 'answer on the network shared with the asker');
  assert.equal(getent(h, 'stranger', 'db'), ip('postgres', 'other'), 'connect --alias');
  assert.equal(getent(h, 'oa-java', 'postgres'), ip('postgres', 'oa-net'));
  assert.equal(getent(h, 'oa-java', 'db'), '', 'an alias is scoped to its network');

  // PTR for container addresses.
  const ptr = h.exec('oa-java', `python3 -c "import socket;print(socket.gethostbyaddr('${ip('redis-sys', 'oa-net')}')[0])"`).stdout.trim();
  assert.match(ptr, /^redis-sys/);

  // Forwarding to the upstream; TCP fallback for a large answer; NXDOMAIN passes through.
  assert.equal(getent(h, 'oa-java', 'www.upstream.test'), '203.0.113.7');
  const big = h.exec('oa-java', `node -e "require('dns').resolveTxt('big.upstream.test',(e,r)=>console.log(e?e.code:r.length))"`).stdout.trim();
  assert.equal(big, '40', 'large answer over TCP');
  assert.equal(getent(h, 'oa-java', 'nothing.example.invalid'), '');

  // --dns overrides the upstreams for one container (an unreachable server: the lookup fails).
  h.ok(['run', '-d', '--name', 'odd', '--network', 'oa-net', '--dns', '192.0.2.53', '--', 'sleep', '300']);
  assert.equal(getent(h, 'odd', 'redis-sys'), ip('redis-sys', 'oa-net'), 'local names still answered');
  assert.equal(getent(h, 'odd', 'www.upstream.test'), '', 'forwarding goes to the --dns server instead');

  // The default bridge has no name service: its containers use the upstreams directly.
  h.ok(['run', '-d', '--name', 'plain', '--', 'sleep', '300']);
  assert.match(h.exec('plain', 'cat /etc/resolv.conf').stdout, new RegExp(`^nameserver ${up.ip.replace(/\./g, '\\.')}$`, 'm'));
  assert.equal(getent(h, 'plain', 'redis-sys'), '');

  // Immediate: a new container resolves at once; a removed one disappears at once.
  h.ok(['run', '-d', '--name', 'late', '--network', 'oa-net', '--', 'sleep', '300']);
  assert.equal(getent(h, 'oa-java', 'late'), ip('late', 'oa-net'));
  h.ok(['rm', '-f', 'late']);
  assert.equal(getent(h, 'oa-java', 'late'), '');
  h.ok(['network', 'disconnect', 'other', 'postgres']);
  assert.equal(getent(h, 'stranger', 'postgres'), '');

  // It listens only on nsnet's gateway addresses.
  const listening = h.sh("ss -lnu | awk 'NR>1{print $4}'").stdout.split('\n').filter((l) => l.endsWith(':53'));
  const gws = ['oa-net', 'other'].map((n) => JSON.parse(h.ok(['network', 'inspect', n]))[0].IPAM.Config[0].Gateway + ':53');
  assert.deepEqual(listening.sort(), gws.sort());

  // Killed resolver supervisor (dns/pid; a killed resolver alone is restarted by it: dns-process.test.ts):
  // check reports it, reconcile brings it back; answers continue.
  const pid = Number(fs.readFileSync(path.join(h.root, 'dns', 'pid'), 'utf8').split(' ')[0]);
  process.kill(pid, 'SIGKILL');
  await waitFor(() => !fs.existsSync(`/proc/${pid}`) || fs.readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z'), 3000);
  assert.equal(h.nsnet(['check']).status, 1, 'check reports the dead resolver');
  h.ok(['reconcile']);
  assert.equal(getent(h, 'oa-java', 'redis-sys'), ip('redis-sys', 'oa-net'));
  assert.equal(h.nsnet(['check']).status, 0);

  // Last user-defined network gone: the resolver stops.
  for (const c of ['redis-sys', 'postgres', 'oa-java', 'stranger', 'odd']) h.ok(['rm', '-f', c]);
  h.ok(['network', 'rm', 'oa-net', 'other']);
  assert.equal(fs.existsSync(path.join(h.root, 'dns', 'pid')), false, 'resolver stopped');
});
