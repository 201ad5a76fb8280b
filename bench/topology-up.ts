// Issue #15: `nsnet up` of a 50-container, 5-network topology file against the same topology made with 50 + 5 CLI
// calls (network create, run -d), each in its own throwaway host netns (bnh-*) and state directory, K rounds
// alternated so that the machine's load drift hits both alike. Also `down` against 50 `rm -f` + 5 `network rm`.
//
//   node dist/bench/topology-up.js [K=3] [CONTAINERS=50] [NETWORKS=5]     (root)
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NSNET_BIN, deleteNamespaces, loadavg, makeHostNetns, median, must, ownNamespaces } from './common.js';

function topology(containers: number, networks: number): string {
  const lines = ['services:'];
  for (let i = 0; i < containers; i++) {
    lines.push(`  s${i}:`, `    command: ["sleep", "600"]`, `    networks: [n${i % networks}]`);
  }
  lines.push('networks:');
  for (let j = 0; j < networks; j++) lines.push(`  n${j}:`, '    ipam:', '      config:', `        - subnet: 10.${120 + j}.0.0/24`);
  return lines.join('\n') + '\n';
}

function main(): void {
  const K = Number(process.argv[2] ?? 3);
  const C = Number(process.argv[3] ?? 50);
  const N = Number(process.argv[4] ?? 5);
  const tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'bn-up-')));
  const file = path.join(tmp, 'compose.yaml');
  fs.writeFileSync(file, topology(C, N));
  const prefixOf = (r: string) => `nsnet-${crypto.createHash('sha256').update(r).digest('hex').slice(0, 6)}-`;
  const hosts: string[] = [];
  const roots: string[] = [];
  const t: Record<string, number[]> = {};
  const timed = (what: string, fn: () => void) => {
    const s = process.hrtime.bigint();
    fn();
    (t[what] ??= []).push(Number(process.hrtime.bigint() - s) / 1e6);
  };
  try {
    for (let k = 0; k < K; k++) {
      for (const how of ['file', 'cli'] as const) {
        const id = crypto.randomBytes(2).toString('hex');
        const host = `bnh-${id}-up`;
        const root = path.join(tmp, `${how}-${k}`);
        hosts.push(host);
        roots.push(root);
        makeHostNetns(host);
        const env = { ...process.env, NSNET_ROOT: root, NSNET_RESOLV_CONF: '/dev/null' };
        const nsnet = (args: string[]) => must('nsenter', [`--net=/run/netns/${host}`, NSNET_BIN, ...args], { env, timeout: 600000 });
        if (how === 'file') {
          timed(`up: one file, ${C} containers on ${N} networks`, () => nsnet(['up', '-d', '-f', file, '-p', 'b']));
          timed('down: one command', () => nsnet(['down', '-f', file, '-p', 'b']));
        } else {
          timed(`the same with ${N + C} CLI calls`, () => {
            for (let j = 0; j < N; j++) nsnet(['network', 'create', '--subnet', `10.${120 + j}.0.0/24`, `b_n${j}`]);
            for (let i = 0; i < C; i++) nsnet(['run', '-d', '--name', `b-s${i}-1`, '--network', `b_n${i % N}`, '--', 'sleep', '600']);
          });
          timed(`${C} rm -f + ${N} network rm`, () => {
            for (let i = 0; i < C; i++) nsnet(['rm', '-f', `b-s${i}-1`]);
            for (let j = 0; j < N; j++) nsnet(['network', 'rm', `b_n${j}`]);
          });
        }
      }
    }
    console.log(`topology up/down vs CLI calls, median of ${K} (ms), one run, load ${loadavg()}:`);
    for (const [k, xs] of Object.entries(t)) console.log(`  ${k.padEnd(44)} ${median(xs)!.toFixed(0)}`);
  } finally {
    deleteNamespaces([...ownNamespaces(roots.map(prefixOf)), ...hosts]);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main();
