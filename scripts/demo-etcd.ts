// The second demo (issue #15): a 3-member etcd cluster from a topology file, its leader cut off by `nsnet partition`,
// a new leader elected by the majority, writes taken there and refused by the isolated member, then `nsnet heal` and
// the cluster agreeing again. Every nsnet command is printed with its output. Inside a throwaway host netns; the
// cluster's data in a temporary directory; everything removed at the end.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TestHost, waitFor, type Result } from '../test/helpers/host.js';
import { etcdCommand, initialCluster, parseEndpointStatus } from '../test/helpers/etcd.js';

const IPS = ['10.79.0.11', '10.79.0.12', '10.79.0.13'];
const NAMES = ['e1', 'e2', 'e3'];
const h = TestHost.create('demoetcd');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-etcd-demo-'));
let failed = false;

function show(args: string[], r: Result): Result {
  process.stdout.write(`\n$ nsnet ${args.map((a) => (/[\s"]/.test(a) ? JSON.stringify(a) : a)).join(' ')}\n${r.stdout}${r.stderr}`);
  return r;
}
function nsnet(...args: string[]): string {
  const r = show(args, h.nsnet(args, { timeout: 120000 }));
  if (r.status !== 0) throw new Error(`nsnet ${args.join(' ')} exited ${r.status}`);
  return r.stdout.trim();
}
function say(s: string): void {
  process.stdout.write(`\n# ${s}\n`);
}
const ctl = (m: number, args: string, timeout = '3s') =>
  h.exec(`demo-${NAMES[m]}-1`, `etcdctl --endpoints=http://${IPS[m]}:2379 --dial-timeout=2s --command-timeout=${timeout} ${args}`, { timeout: 15000 });
function status(m: number): { id: string; leader: string } | null {
  const r = ctl(m, 'endpoint status -w json', '1s');
  return r.status === 0 ? parseEndpointStatus(r.stdout) : null;
}

try {
  if (!fs.existsSync('/usr/bin/etcd')) throw new Error('etcd-server is not installed (bash scripts/setup.sh installs it)');
  const cluster = initialCluster(NAMES, IPS);
  const services = NAMES.map((n, i) => {
    const ip = IPS[i];
    const cmd = etcdCommand({ name: n, ip, dataDir: path.join(dir, n), initialCluster: cluster, token: 'nsnet-demo' });
    return `  ${n}:\n    command: ${JSON.stringify(cmd)}\n    networks:\n      etcd:\n        ipv4_address: ${ip}\n`;
  }).join('');
  const file = path.join(dir, 'compose.yaml');
  fs.writeFileSync(file, `services:\n${services}networks:\n  etcd:\n    ipam:\n      config:\n        - subnet: 10.79.0.0/24\n`);
  say(`host netns ${h.ns}; the topology file (${file}):`);
  process.stdout.write(fs.readFileSync(file, 'utf8'));

  say('the cluster, from the file');
  nsnet('up', '-d', '-f', file, '-p', 'demo');
  nsnet('ps');
  const leaderOf = () => { for (let i = 0; i < 3; i++) { const s = status(i); if (s && s.leader === s.id) return { i }; } return null; };
  const first = (await waitFor(leaderOf, 30000, 200))!.i;
  say(`the leader is ${NAMES[first]}; a write: k=v1`);
  process.stdout.write(ctl(first, 'put k v1').stdout);

  say(`cut the leader ${NAMES[first]} off from the other two`);
  const t0 = Date.now();
  nsnet('partition', '--network', 'demo_etcd', `demo-${NAMES[first]}-1`);
  nsnet('faults');
  const rest = [0, 1, 2].filter((i) => i !== first);
  await waitFor(() => { const s = status(rest[0]); return s && s.leader !== '0' && rest.some((i) => status(i)?.id === s.leader) ? true : null; }, 20000, 100);
  const leader2 = rest.find((i) => { const s = status(i); return s && s.id === s.leader; });
  say(`the majority elected ${leader2 !== undefined ? NAMES[leader2] : 'a new leader'} ${Date.now() - t0} ms after the cut`);
  const w = await waitFor(() => { const r = ctl(rest[0], 'put k v2'); return r.status === 0 ? r : null; }, 10000, 200);
  process.stdout.write(`write k=v2 on ${NAMES[rest[0]]}: ${w!.stdout}`);
  const refused = ctl(first, 'put k lost', '2s');
  process.stdout.write(`write on the isolated ${NAMES[first]}: ${refused.status === 0 ? 'ACCEPTED (unexpected)' : `refused (${(refused.stderr.trim().split('\n').pop() ?? '').slice(0, 100)})`}\n`);

  say('heal');
  nsnet('heal', '--network', 'demo_etcd');
  await waitFor(() => [0, 1, 2].every((i) => ctl(i, 'get k --print-value-only', '2s').stdout.trim() === 'v2') ? true : null, 30000, 300);
  for (let i = 0; i < 3; i++) process.stdout.write(`${NAMES[i]}: k=${ctl(i, 'get k --print-value-only', '2s').stdout.trim()}\n`);

  say('down');
  nsnet('down', '-f', file, '-p', 'demo');
} catch (e) {
  failed = true;
  process.stderr.write(`demo failed: ${(e as Error).message}\n`);
} finally {
  h.cleanup();
  fs.rmSync(dir, { recursive: true, force: true });
}
process.exitCode = failed ? 1 : 0;
