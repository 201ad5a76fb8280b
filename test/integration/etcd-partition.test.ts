// Issue #15's proof on a real distributed system: a 3-member etcd cluster (Debian etcd-server) brought up from a
// topology file; `nsnet partition` isolates the leader; the majority elects a new leader and accepts writes within a
// bound measured here, the isolated member refuses writes; `nsnet heal`; the cluster converges and all members
// return the same value. All inside a throwaway host netns.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { TestHost, waitFor } from '../helpers/host.js';
import { etcdCommand, initialCluster, parseEndpointStatus } from '../helpers/etcd.js';

const IPS = ['10.79.0.11', '10.79.0.12', '10.79.0.13'];
const NAMES = ['e1', 'e2', 'e3'];

function topology(dir: string): string {
  const cluster = initialCluster(NAMES, IPS);
  const svc = NAMES.map((n, i) => {
    const ip = IPS[i];
    const cmd = etcdCommand({ name: n, ip, dataDir: path.join(dir, n), initialCluster: cluster });
    return `  ${n}:\n    command: ${JSON.stringify(cmd)}\n    networks:\n      etcd:\n        ipv4_address: ${ip}\n`;
  }).join('');
  return `services:\n${svc}networks:\n  etcd:\n    ipam:\n      config:\n        - subnet: 10.79.0.0/24\n`;
}

test('etcd: the leader partitioned away, the majority elects a new one and takes writes, the isolated member refuses them; heal converges', async (t) => {
  assert.ok(fs.existsSync('/usr/bin/etcd'), 'etcd-server is installed (scripts/setup.sh installs it)');
  const h = TestHost.create('etcd');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-etcd-'));
  t.after(() => {
    h.cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const file = path.join(dir, 'compose.yaml');
  fs.writeFileSync(file, topology(dir));
  h.ok(['up', '-d', '-f', file, '-p', 'et'], { timeout: 120000 });
  const ctl = (member: number, args: string, timeout = '3s') =>
    h.exec(`et-${NAMES[member]}-1`, `etcdctl --endpoints=http://${IPS[member]}:2379 --dial-timeout=2s --command-timeout=${timeout} ${args}`, { timeout: 15000 });
  const status = (member: number): { leader: string; id: string } | null => {
    const r = ctl(member, 'endpoint status -w json', '1s');
    // Member ids are 64-bit: read as text (JSON.parse would round them).
    return r.status === 0 ? parseEndpointStatus(r.stdout) : null;
  };
  const leaderIndex = (): number => {
    for (let i = 0; i < 3; i++) {
      const s = status(i);
      if (s && s.leader !== '0' && s.leader === s.id) return i;
    }
    return -1;
  };
  const first = await waitFor(() => { const i = leaderIndex(); return i >= 0 ? { i } : null; }, 30000, 200);
  assert.equal(ctl(0, 'put k v1').status, 0);
  const old = first!.i;
  const rest = [0, 1, 2].filter((i) => i !== old);

  // Cut the leader off: one group, the other two members form the second.
  const t0 = Date.now();
  h.ok(['partition', '--network', 'et_etcd', `et-${NAMES[old]}-1`]);
  const elected = await waitFor(() => {
    const s = status(rest[0]);
    return s && s.leader !== '0' && s.leader !== status(old)?.id && rest.some((i) => status(i)?.id === s.leader) ? s.leader : null;
  }, 20000, 100);
  const electionMs = Date.now() - t0;
  assert.ok(elected, 'the majority elected a new leader');
  // The bound: etcd's default election timeout is 1 s; the measured time is reported by the test's name output.
  assert.ok(electionMs < 15000, `new leader after ${electionMs} ms`);
  t.diagnostic(`new leader elected ${electionMs} ms after the partition`);
  const w = await waitFor(() => (ctl(rest[0], 'put k v2').status === 0 ? true : null), 10000, 200);
  assert.ok(w, 'the majority accepts writes');
  const refused = ctl(old, 'put k lost', '2s');
  assert.notEqual(refused.status, 0, `the isolated member refuses a write: ${refused.stdout}`);

  h.ok(['heal', '--network', 'et_etcd']);
  const converged = await waitFor(() => {
    const vals = [0, 1, 2].map((i) => ctl(i, 'get k --print-value-only', '2s'));
    return vals.every((v) => v.status === 0 && v.stdout.trim() === 'v2') ? true : null;
  }, 30000, 300);
  assert.ok(converged, 'all members return the same value after heal');
  h.ok(['down', '-f', file, '-p', 'et'], { timeout: 120000 });
  assert.deepEqual(h.containerNetns(), []);
});
