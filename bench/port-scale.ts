// Cost of publishing one more port as the number already published grows (issue: "adding one published port to a
// host that already has 500 costs about the same as adding the first").
// Inside a throwaway host netns: N containers, each `create -p HOSTPORT:80`; we time (a) the whole create and
// (b) the nftables transaction alone (one `add element` into nsnet's DNAT map), for the first and the last ones.
// usage: node dist/bench/port-scale.js [N=500]
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Nsnet } from '../src/index.js';
import { renderPortDelta } from '../src/firewall/ruleset.js';
import { containerPorts } from '../src/engine/firewall.js';

const N = Number(process.argv[2] ?? 500);
const host = `bps-${crypto.randomBytes(3).toString('hex')}`;
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-bps-'));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

execFileSync('ip', ['netns', 'add', host]);
let ns: Nsnet | null = null;
try {
  ns = Nsnet.open({ root, hostNetns: `/run/netns/${host}` });
  ns.createNetwork({ name: 'ps', subnet: '10.120.0.0/20' });
  const create: number[] = [];
  const nftOnly: number[] = [];
  for (let i = 0; i < N; i++) {
    const t0 = process.hrtime.bigint();
    const { container } = ns.create({ name: `p${i}`, network: 'ps', publish: [`${10000 + i}:80`], command: ['sleep', '1'] });
    create.push(Number(process.hrtime.bigint() - t0) / 1e6);
    // The nftables part alone: remove and re-add this container's element, timing the add (one transaction).
    const ports = containerPorts(ns.host, container);
    ns.host.nft.run(renderPortDelta([], ports));
    const t1 = process.hrtime.bigint();
    ns.host.nft.run(renderPortDelta(ports, []));
    nftOnly.push(Number(process.hrtime.bigint() - t1) / 1e6);
  }
  const k = Math.min(20, Math.floor(N / 4));
  const res = {
    n: N,
    create_first_median_ms: +median(create.slice(0, k)).toFixed(3),
    create_last_median_ms: +median(create.slice(-k)).toFixed(3),
    nft_add_first_median_ms: +median(nftOnly.slice(0, k)).toFixed(3),
    nft_add_last_median_ms: +median(nftOnly.slice(-k)).toFixed(3),
  };
  console.log(JSON.stringify({ ...res, create_ratio_last_vs_first: +(res.create_last_median_ms / res.create_first_median_ms).toFixed(2), nft_ratio_last_vs_first: +(res.nft_add_last_median_ms / res.nft_add_first_median_ms).toFixed(2) }));
  for (let i = 0; i < N; i++) await ns.remove(`p${i}`, true);
  ns.removeNetwork('ps'); // also stops the host's DNS resolver
} finally {
  ns?.close();
  for (const f of fs.readdirSync('/run/netns')) if (f.startsWith('nsnet-') && fs.existsSync(root) && f.includes(crypto.createHash('sha256').update(fs.realpathSync(root)).digest('hex').slice(0, 6))) execFileSync('ip', ['netns', 'del', f]);
  execFileSync('ip', ['netns', 'del', host]);
  fs.rmSync(root, { recursive: true, force: true });
}
