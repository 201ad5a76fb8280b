// The resolver as a process on a real (throwaway) host, through the CLI: supervised (a SIGKILLed resolver is back
// within a bound, no command needed), following the host's resolv.conf (a changed file takes effect without any
// nsnet command), started with an environment of its own (no secret of the starting command), its files never
// written through a symlink and with tight modes; and the create-time warning for names DNS cannot carry.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import dnsPacket from 'dns-packet';
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
  const check = (pid: number, keys: string[]) => {
    assert.ok(alive(pid));
    const env = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean);
    assert.ok(!env.some((e) => e.includes(SECRET)), `pid ${pid}: the secret is not in its environment`);
    assert.deepEqual(env.map((e) => e.split('=')[0]).sort(), keys, `pid ${pid}: ${env.join(' ')}`);
  };
  check(pidOf(h, 'pid'), ['MALLOC_ARENA_MAX', 'PATH']); // the process the engine started
  // The resolver it runs: the same, plus Node's own variables for the IPC channel to its supervisor.
  check(pidOf(h, 'resolver.pid'), ['MALLOC_ARENA_MAX', 'NODE_CHANNEL_FD', 'NODE_CHANNEL_SERIALIZATION_MODE', 'PATH']);
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

test('supervisor: SIGHUPs while its resolver starts are held back, not fatal; SIGTERM stops both', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-dns-sup-'));
  const view = path.join(dir, 'view.json');
  const NETP = { id: 'e'.repeat(64), name: 'supnet', gateway: '127.0.70.1', subnet: '127.0.70.0/24' };
  fs.writeFileSync(view, JSON.stringify({
    generation: 3, networks: [NETP], upstreams: [],
    entries: [{ networkId: NETP.id, names: ['one'], ip: '127.0.70.2', containerId: '1'.repeat(64) }],
  }));
  const port = 20000 + crypto.randomInt(40000);
  const sup = spawn(process.execPath, [path.join(REPO, 'dist/src/dns/supervisor.js'), '--view', view, '--port', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  sup.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => sup.on('exit', (code) => r(code)));
  // Signals caught (SigCgt has SIGHUP, bit 0): the supervisor itself is up; from then on, blast.
  const catches = (pid: number) => {
    try {
      return (BigInt('0x' + /SigCgt:\s*([0-9a-f]+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) & 1n) === 1n;
    } catch {
      return false;
    }
  };
  try {
    await waitFor(() => catches(sup.pid!), 3000, 2);
    for (let i = 0; i < 30; i++) {
      sup.kill('SIGHUP');
      sup.kill('SIGUSR2');
      await new Promise((r) => setTimeout(r, 10));
    }
    await waitFor(() => fs.existsSync(`${view}.loaded`), 5000, 20);
    const res = Number(fs.readFileSync(path.join(dir, 'resolver.pid'), 'utf8').split(' ')[0]);
    assert.ok(alive(res));
    const reply = await new Promise<Buffer | null>((resolve) => {
      const s = dgram.createSocket('udp4');
      const t = setTimeout(() => (s.close(), resolve(null)), 3000);
      s.on('message', (m) => (clearTimeout(t), s.close(), resolve(m)));
      s.bind(0, '127.0.70.9', () => s.send(dnsPacket.encode({ type: 'query', id: 7, questions: [{ type: 'A', name: 'one' }] }), port, NETP.gateway));
    });
    assert.ok(reply, `an answer; stderr: ${stderr}`);
    assert.deepEqual((dnsPacket.decode(reply).answers ?? []).map((a) => (a as { data: string }).data), ['127.0.70.2']);
    assert.doesNotMatch(stderr, /was killed by|restarting/, 'the resolver was never killed by an early signal');
    sup.kill('SIGTERM');
    assert.equal(await exited, 0);
    await waitFor(() => !alive(res), 3000, 20);
  } finally {
    if (sup.exitCode === null) sup.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('--dns <own gateway>: external names resolve (through the host upstreams), whether the change came as a delta or a full view', (t) => {
  const { h } = setUp(t);
  const gw = JSON.parse(h.ok(['network', 'inspect', 'sup-net']))[0].IPAM.Config[0].Gateway as string;
  // A container started while the resolver runs: its --dns reaches the resolver as a delta.
  h.ok(['run', '-d', '--name', 'own', '--network', 'sup-net', '--dns', gw, '--', 'sleep', '300']);
  assert.equal(getent(h, 'own', 'www.upstream.test'), '203.0.113.7', 'delta path');
  assert.equal(getent(h, 'own', 'b'), getent(h, 'a', 'b'));
  // A full rewrite of the view (a network change): the same answer.
  h.ok(['network', 'create', 'sup-net3']);
  assert.equal(getent(h, 'own', 'www.upstream.test'), '203.0.113.7', 'full view path');
});
