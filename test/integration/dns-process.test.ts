// The resolver as a process on a real (throwaway) host, through the CLI: supervised (a SIGKILLed resolver is back
// within a bound, no command needed), following the host's resolv.conf (a changed file takes effect without any
// nsnet command), started with an environment of its own (no secret of the starting command), its files never
// written through a symlink and with tight modes; and the create-time warning for names DNS cannot carry.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { REPO, TestHost, waitFor } from '../helpers/host.js';

const UPSTREAM = path.join(REPO, 'test/fixtures/fake-upstream.mjs');
const SECRET = `nsnet-test-secret-${process.pid}-${Date.now()}`;

const pidOf = (h: TestHost, file: string) => Number(fs.readFileSync(path.join(h.root, 'dns', file), 'utf8').split(' ')[0]);
const alive = (pid: number) => {
  try {
    return !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z');
  } catch {
    return false;
  }
};
const mode = (f: string) => (fs.lstatSync(f).mode & 0o777).toString(8);

function getent(h: TestHost, ctr: string, name: string): string {
  return h.exec(ctr, `getent ahostsv4 ${name} | awk 'NR==1{print $1}'`).stdout.trim();
}

/** A host with an uplink neighbour running two fake upstreams (198.51.100.2 and .3), NSNET_RESOLV_CONF naming
 *  the first, a network sup-net with containers a and b. `before` runs before the first network exists. */
function setUp(t: { after: (fn: () => void) => void }, before?: (h: TestHost) => void, env: NodeJS.ProcessEnv = {}) {
  const h = TestHost.create('dnsp');
  t.after(() => h.cleanup());
  const up = h.addUpstream();
  h.shIn(up.ns, 'ip addr add 198.51.100.3/24 dev eth0');
  const start = (ip: string) => Number(h.shIn(up.ns, `node ${UPSTREAM} ${ip} </dev/null >/dev/null 2>&1 & echo $!`).stdout.trim());
  const up1 = start(up.ip);
  start('198.51.100.3');
  const resolv = path.join(h.root, 'upstream-resolv.conf');
  fs.writeFileSync(resolv, `nameserver ${up.ip}\n`);
  h.setEnv('NSNET_RESOLV_CONF', resolv);
  before?.(h);
  const r = h.nsnet(['network', 'create', 'sup-net'], { env });
  assert.equal(r.status, 0, r.stderr);
  h.ok(['run', '-d', '--name', 'a', '--network', 'sup-net', '--', 'sleep', '300']);
  h.ok(['run', '-d', '--name', 'b', '--network', 'sup-net', '--', 'sleep', '300']);
  const ipB = JSON.parse(h.ok(['inspect', 'b']))[0].NetworkSettings.Networks['sup-net'].IPAddress as string;
  assert.equal(getent(h, 'a', 'b'), ipB);
  assert.equal(getent(h, 'a', 'www.upstream.test'), '203.0.113.7');
  return { h, ipB, up1, resolv, dnsDir: path.join(h.root, 'dns') };
}

test('resolver environment: neither the supervisor nor the resolver keeps the starting command\'s (#11)', (t) => {
  // The command that starts the resolver carries a secret in its environment.
  const { h } = setUp(t, undefined, { NSNET_TEST_SECRET: SECRET });
  const check = (pid: number) => {
    assert.ok(alive(pid));
    const env = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean);
    assert.ok(!env.some((e) => e.includes(SECRET)), `pid ${pid}: the secret is not in its environment`);
    assert.deepEqual(env.map((e) => e.split('=')[0]).sort(), ['MALLOC_ARENA_MAX', 'PATH'], `pid ${pid}: ${env.join(' ')}`);
  };
  check(pidOf(h, 'pid')); // the process the engine started
  check(pidOf(h, 'resolver.pid')); // the resolver it runs
});

test('resolver files: modes 0600/0644; symlinks planted at pid, view, delta, acknowledgement are never followed', (t) => {
  let victim = '';
  // A symlink planted where the pid file goes, before the resolver starts.
  const { h, dnsDir } = setUp(t, (h) => {
    victim = path.join(h.root, 'victim');
    fs.writeFileSync(victim, 'precious\n');
    fs.mkdirSync(path.join(h.root, 'dns'), { mode: 0o700 });
    fs.symlinkSync(victim, path.join(h.root, 'dns', 'pid'));
  });
  assert.equal(fs.lstatSync(path.join(dnsDir, 'pid')).isFile(), true, 'the planted symlink was replaced, not followed');
  assert.equal(fs.readFileSync(victim, 'utf8'), 'precious\n');
  const modes = Object.fromEntries(['view.json', 'view.json.delta', 'view.json.loaded', 'log', 'pid']
    .map((f) => [f, mode(path.join(dnsDir, f))]));
  assert.deepEqual(modes, { 'view.json': '600', 'view.json.delta': '600', 'view.json.loaded': '644', log: '600', pid: '644' });
  for (const f of ['view.json', 'view.json.delta', 'view.json.loaded']) {
    fs.rmSync(path.join(dnsDir, f));
    fs.symlinkSync(victim, path.join(dnsDir, f));
  }
  // A delta log that is not a regular file is never appended to (the engine rewrites the whole view instead);
  // whole files are renamed over the links.
  const c = h.nsnet(['run', '-d', '--name', 'c', '--network', 'sup-net', '--', 'sleep', '300']);
  assert.equal(c.status, 0, c.stderr);
  h.ok(['network', 'create', 'sup-net2']);
  for (const f of ['view.json', 'view.json.delta', 'view.json.loaded']) {
    assert.equal(fs.lstatSync(path.join(dnsDir, f)).isFile(), true, `${f} is a regular file again`);
  }
  assert.equal(fs.readFileSync(victim, 'utf8'), 'precious\n', 'nothing was written through a symlink');
  assert.equal(getent(h, 'a', 'c'), JSON.parse(h.ok(['inspect', 'c']))[0].NetworkSettings.Networks['sup-net'].IPAddress);
});

test('supervised resolver: SIGKILLed, names resolve again within 5 s without any command; a killed supervisor leaves no orphan', async (t) => {
  const { h, ipB, dnsDir } = setUp(t);
  const sup = pidOf(h, 'pid');
  // The process that answers: the supervisor's child (without a supervisor, the one the engine started).
  const res = fs.existsSync(path.join(dnsDir, 'resolver.pid')) ? pidOf(h, 'resolver.pid') : sup;
  const t0 = Date.now();
  process.kill(res, 'SIGKILL');
  let back = '';
  while (back !== ipB && Date.now() - t0 < 5000) {
    back = getent(h, 'a', 'b');
    if (back !== ipB) await new Promise((r) => setTimeout(r, 100));
  }
  const took = Date.now() - t0;
  assert.equal(back, ipB, 'names resolve again after the resolver was killed');
  t.diagnostic(`resolver back ${took} ms after SIGKILL`);
  const restarted = pidOf(h, 'resolver.pid');
  assert.ok(restarted !== res && alive(restarted), 'a new resolver process');
  assert.equal(pidOf(h, 'pid'), sup, 'same supervisor');
  assert.equal(getent(h, 'a', 'www.upstream.test'), '203.0.113.7');
  assert.equal(h.nsnet(['check']).status, 0, 'check is clean');
  assert.match(fs.readFileSync(path.join(dnsDir, 'log'), 'utf8'), /the resolver was killed by SIGKILL after \d+ ms; restarting in \d+ ms/);

  // The supervisor itself killed: the resolver does not linger as an orphan; check reports it, reconcile restarts.
  process.kill(sup, 'SIGKILL');
  await waitFor(() => !alive(restarted), 4000, 50);
  assert.equal(h.nsnet(['check']).status, 1, 'check reports the dead resolver');
  h.ok(['reconcile']);
  assert.equal(getent(h, 'a', 'b'), ipB);
  assert.equal(h.nsnet(['check']).status, 0);

  // Last network gone: supervisor and resolver both stop.
  const sup2 = pidOf(h, 'pid');
  const res2 = pidOf(h, 'resolver.pid');
  for (const n of ['a', 'b']) h.ok(['rm', '-f', n]);
  h.ok(['network', 'rm', 'sup-net']);
  await waitFor(() => !alive(sup2) && !alive(res2), 4000, 50);
  assert.equal(fs.existsSync(path.join(dnsDir, 'pid')), false);
});

test('the resolver follows the host\'s resolv.conf: replaced by rename, the new upstream is used without any command', async (t) => {
  const { h, up1, resolv, dnsDir } = setUp(t);
  // Replaced by rename (as resolvconf, NetworkManager, systemd-resolved do), now naming the second upstream;
  // the first one stops, so an answer can only come from the second.
  const tmp = `${resolv}.new`;
  fs.writeFileSync(tmp, 'nameserver 198.51.100.3\n');
  fs.renameSync(tmp, resolv);
  process.kill(up1, 'SIGKILL');
  let ext = '';
  const t1 = Date.now();
  while (ext !== '203.0.113.7' && Date.now() - t1 < 6000) {
    await new Promise((r) => setTimeout(r, 150));
    ext = getent(h, 'a', 'www.upstream.test');
  }
  assert.equal(ext, '203.0.113.7', 'forwarded to the upstream the changed file names');
  t.diagnostic(`new upstream used ${Date.now() - t1} ms after the change`);
  assert.match(fs.readFileSync(path.join(dnsDir, 'log'), 'utf8'), /upstreams from .*upstream-resolv\.conf: 198\.51\.100\.3/);
  // Edited in place (same inode) back to the first address: followed too (mtime and size change).
  fs.writeFileSync(resolv, 'nameserver 198.51.100.2\nnameserver 198.51.100.3\n');
  await waitFor(() => /upstreams from .*: 198\.51\.100\.2 198\.51\.100\.3/.test(fs.readFileSync(path.join(dnsDir, 'log'), 'utf8')), 4000, 100);
});

test('container names that DNS cannot carry are created with a warning', (t) => {
  const h = TestHost.create('dnsw');
  t.after(() => h.cleanup());
  h.ok(['network', 'create', 'w-net']);
  for (const name of ['x'.repeat(64), 'a..b']) {
    const w = h.nsnet(['create', '--name', name, '--network', 'w-net', '--', 'sleep', '1']);
    assert.equal(w.status, 0, w.stderr);
    assert.match(w.stderr, new RegExp(`WARNING: container name "${name.replace(/\./g, '\\.')}" will not resolve by DNS`));
  }
  const ok = h.nsnet(['create', '--name', 'fine.name', '--network', 'w-net', '--', 'sleep', '1']);
  assert.equal(ok.status, 0, ok.stderr);
  assert.doesNotMatch(ok.stderr, /WARNING/);
});
