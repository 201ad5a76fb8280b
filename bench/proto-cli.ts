// Prototype comparison of two builds of the CLI entry point (e.g. dist/src/cli/main.js vs a single-file bundle of
// it, see bench/proto-bundle.sh): K `create` and K `rm` processes with each, alternating A/B so that the machine's
// load drift hits both alike, in a throwaway host netns (bnh-*) with a state directory per build.
//
//   node dist/bench/proto-cli.js MAIN_A.js MAIN_B.js [K=20]      (root)
// Each process is `nsenter --net=HOST env -u NODE_EXTRA_CA_CERTS node MAIN create ...`, as bin/nsnet runs it.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NSNET_BIN, deleteNamespaces, makeHostNetns, median, ownNamespaces, run } from './common.js';

async function main(): Promise<void> {
  const [a, b, kArg] = process.argv.slice(2);
  if (!a || !b) throw new Error('usage: proto-cli.js MAIN_A.js MAIN_B.js [K]');
  const K = Number(kArg ?? 20);
  const id = crypto.randomBytes(2).toString('hex');
  const host = `bnh-${id}-pcmp`;
  const tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'bn-pcmp-')));
  const roots = [path.join(tmp, 'a', 'nsnet'), path.join(tmp, 'b', 'nsnet')];
  const prefixes = roots.map((r) => `nsnet-${crypto.createHash('sha256').update(r).digest('hex').slice(0, 6)}-`);
  const mains = [path.resolve(a), path.resolve(b)];
  const nsnet = (which: number, args: string[]) => {
    const r = run('nsenter', [`--net=/run/netns/${host}`, 'env', '-u', 'NODE_EXTRA_CA_CERTS', `NSNET_ROOT=${roots[which]}`, `NSNET_BIN=${NSNET_BIN}`,
      process.execPath, mains[which], ...args]);
    if (r.status !== 0) throw new Error(`${mains[which]} ${args.join(' ')}: ${r.stderr}`);
    return r.ms;
  };
  try {
    makeHostNetns(host);
    nsnet(0, ['network', 'create', '--subnet', '10.201.0.0/16', 'na']);
    nsnet(1, ['network', 'create', '--subnet', '10.202.0.0/16', 'nb']);
    const c: number[][] = [[], []];
    const r: number[][] = [[], []];
    for (let i = 0; i < K; i++) for (const w of i % 2 ? [1, 0] : [0, 1]) c[w].push(nsnet(w, ['create', '--network', w ? 'nb' : 'na', '--name', `x${i}`, '--', 'sleep', '1']));
    for (let i = 0; i < K; i++) for (const w of i % 2 ? [1, 0] : [0, 1]) r[w].push(nsnet(w, ['rm', `x${i}`]));
    console.log(`CLI builds compared, K=${K} each, alternating, whole process (ms, median):`);
    console.log(`  A ${a}: create ${median(c[0])!.toFixed(1)}, rm ${median(r[0])!.toFixed(1)}`);
    console.log(`  B ${b}: create ${median(c[1])!.toFixed(1)}, rm ${median(r[1])!.toFixed(1)}`);
  } finally {
    deleteNamespaces([...ownNamespaces(prefixes), host]);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
