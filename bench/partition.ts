// Cost of `nsnet partition` / `nsnet heal` on a network of N containers (issue #15: "one transaction; report it").
// Inside a throwaway host netns with its own state directory: one network, N containers (created, not started:
// each has its veth and address), then, alternately, a partition into two halves (N/2 | N/2) and a heal:
//   - lib:    the use case through the library (store, model, render, one nft transaction), median of REPS;
//   - nft:    the nft transaction alone (the same full render handed to libnftables), median of REPS;
//   - render: building and rendering the model (pure), median of REPS; plus the script's size and its elements;
//   - cli:    the whole `nsnet partition` / `nsnet heal` command (process start included), median of CLI_REPS;
//   - baseline: the same full render without a partition (what every render costs anyway).
// usage: node dist/bench/partition.js [N=200] [REPS=20] [CLI_REPS=5]
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Nsnet } from '../src/index.js';
import { buildModel, renderModel } from '../src/firewall/ruleset.js';
import { firewallState, ownerOf } from '../src/engine/firewall.js';
import { heal, partition } from '../src/engine/partitions.js';

const N = Number(process.argv[2] ?? 200);
const REPS = Number(process.argv[3] ?? 20);
const CLI_REPS = Number(process.argv[4] ?? 5);
const host = `bpt-${crypto.randomBytes(3).toString('hex')}`;
const root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-bpt-')));
const hostId = crypto.createHash('sha256').update(root).digest('hex').slice(0, 6);
const NSNET = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../bin/nsnet');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const r3 = (x: number) => +x.toFixed(3);

execFileSync('ip', ['netns', 'add', host]);
let ns: Nsnet | null = null;
try {
  ns = Nsnet.open({ root, hostNetns: `/run/netns/${host}` });
  const h = ns.host;
  ns.createNetwork({ name: 'big', subnet: '10.121.0.0/22' });
  for (let i = 0; i < N; i++) ns.create({ name: `c${i}`, network: 'big', command: ['sleep', '1'] });
  const names = Array.from({ length: N }, (_, i) => `c${i}`);
  const halves = [names.slice(0, N / 2).join(','), names.slice(N / 2).join(',')];

  const baseState = firewallState(h);
  const base: number[] = [];
  for (let i = 0; i < REPS; i++) {
    const script = renderModel(buildModel(baseState, ownerOf(h)));
    const t0 = process.hrtime.bigint();
    h.nft.run(script);
    base.push(ms(t0));
  }

  const lib: number[] = [];
  const libHeal: number[] = [];
  const nft: number[] = [];
  const render: number[] = [];
  let bytes = 0;
  let elements = 0;
  let rules = 0;
  for (let i = 0; i < REPS; i++) {
    let t0 = process.hrtime.bigint();
    partition(h, { network: 'big', groups: halves });
    lib.push(ms(t0));
    const state = firewallState(h);
    t0 = process.hrtime.bigint();
    const model = buildModel(state, ownerOf(h));
    const script = renderModel(model);
    render.push(ms(t0));
    bytes = script.length;
    elements = model.tables.flatMap((t) => t.sets).filter((s) => s.name.startsWith('part_')).reduce((a, s) => a + s.elements.length, 0);
    rules = model.tables.flatMap((t) => t.chains).flatMap((c) => c.rules).filter((r) => r.purpose.kind === 'partition').length;
    t0 = process.hrtime.bigint();
    h.nft.run(script);
    nft.push(ms(t0));
    t0 = process.hrtime.bigint();
    heal(h, { network: 'big' });
    libHeal.push(ms(t0));
  }
  if (h.store.partitions().length) throw new Error('heal left a partition');

  const cli = (args: string[]) => {
    const t0 = process.hrtime.bigint();
    execFileSync('nsenter', [`--net=/run/netns/${host}`, NSNET, ...args], { env: { ...process.env, NSNET_ROOT: root }, stdio: ['ignore', 'ignore', 'inherit'] });
    return ms(t0);
  };
  const cliPart: number[] = [];
  const cliHeal: number[] = [];
  for (let i = 0; i < CLI_REPS; i++) {
    cliPart.push(cli(['partition', '--network', 'big', ...halves]));
    cliHeal.push(cli(['heal', '--network', 'big']));
  }
  console.log(JSON.stringify({
    containers: N, groups: '2 x ' + N / 2, reps: REPS, cli_reps: CLI_REPS,
    partition_lib_median_ms: r3(median(lib)), heal_lib_median_ms: r3(median(libHeal)),
    partition_nft_transaction_median_ms: r3(median(nft)), partition_render_median_ms: r3(median(render)),
    full_render_without_partition_nft_median_ms: r3(median(base)),
    partition_cli_median_ms: r3(median(cliPart)), heal_cli_median_ms: r3(median(cliHeal)),
    script_bytes: bytes, partition_set_elements: elements, partition_rules: rules,
  }));
  for (let i = 0; i < N; i++) await ns.remove(`c${i}`, true);
  ns.removeNetwork('big');
} finally {
  ns?.close();
  // The CLI's resident helper lives in the host netns: end it (by PID) before the netns goes.
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(`${root}/helper/`)) process.kill(Number(d), 'SIGKILL');
    } catch { /* gone */ }
  }
  for (const f of fs.readdirSync('/run/netns')) if (f.startsWith(`nsnet-${hostId}-`)) execFileSync('ip', ['netns', 'del', f]);
  execFileSync('ip', ['netns', 'del', host]);
  fs.rmSync(root, { recursive: true, force: true });
}
