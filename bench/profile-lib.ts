// Where does one library create/remove spend its time? Runs N Nsnet.create() + Nsnet.remove() in a throwaway host
// netns (as bench/attach.ts `lib`), with the methods of nsnet's classes (Netlink, Store, FileLock, Nft) and
// node:fs's synchronous calls wrapped by exclusive-time accounting (time inside nested wrapped calls is charged
// to them, not to the caller). What no wrapper covers (JS logic, libc calls through koffi such as unshare/mount/
// setns in createNetns) is reported as "other".
//
//   node dist/bench/profile-lib.js [N=200]      (root)
// Prints, per phase (create, remove), the median wall time and the mean exclusive time per category (ms).
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { deleteNamespaces, makeHostNetns, median, ownNamespaces } from './common.js';

type Acc = Map<string, { ms: number; calls: number }>;
let acc: Acc = new Map();
const stack: number[] = []; // start times of open wrapped calls, with nested time subtracted via `child`
const child: number[] = [];

function wrap(obj: Record<string, unknown>, key: string, label: string): void {
  const orig = obj[key];
  if (typeof orig !== 'function') return;
  obj[key] = function (this: unknown, ...args: unknown[]) {
    const t = performance.now();
    stack.push(t);
    child.push(0);
    try {
      return (orig as (...a: unknown[]) => unknown).apply(this, args);
    } finally {
      const dt = performance.now() - t;
      stack.pop();
      const nested = child.pop()!;
      const e = acc.get(label) ?? { ms: 0, calls: 0 };
      e.ms += dt - nested;
      e.calls++;
      acc.set(label, e);
      if (child.length) child[child.length - 1] += dt;
    }
  };
}

function wrapProto(cls: { prototype: object }, prefix: string, skip: string[] = []): void {
  const p = cls.prototype as Record<string, unknown>;
  for (const k of Object.getOwnPropertyNames(p)) {
    if (k === 'constructor' || skip.includes(k)) continue;
    const d = Object.getOwnPropertyDescriptor(p, k);
    if (d && typeof d.value === 'function') wrap(p, k, `${prefix}.${k}`);
  }
}

async function main(): Promise<void> {
  const N = Number(process.argv[2] ?? 200);
  const host = `bnh-${crypto.randomBytes(2).toString('hex')}-prof`;
  const tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'bn-prof-')));
  const root = path.join(tmp, 'nsnet');
  const prefix = `nsnet-${crypto.createHash('sha256').update(root).digest('hex').slice(0, 6)}-`;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => { process.exitCode = 130; });
  try {
    makeHostNetns(host);
    const { enterHostNetns } = await import('../src/kernel/netns.js');
    enterHostNetns(`/run/netns/${host}`);
    await fs.promises.stat('/');
    const { Nsnet } = await import('../src/index.js');
    const { Netlink } = await import('../src/kernel/netlink.js');
    const { Store } = await import('../src/store/store.js');
    const { FileLock } = await import('../src/kernel/flock.js');
    const { Nft } = await import('../src/kernel/nft.js');
    wrapProto(Netlink, 'netlink');
    wrapProto(Store, 'sqlite');
    wrapProto(FileLock, 'flock', ['with']);
    wrapProto(Nft, 'nft');
    wrap(Netlink as unknown as Record<string, unknown>, 'open', 'netlink.open');
    const fsAny = fs as unknown as Record<string, unknown>;
    for (const k of Object.keys(fs)) if (k.endsWith('Sync')) wrap(fsAny, k, `fs.${k}`);

    const ns = Nsnet.open({ root });
    ns.createNetwork({ name: 'bnet', subnet: '10.201.0.0/16' });
    // Per iteration: wall time and exclusive time per category; reported as medians over the N iterations.
    const phases: Record<string, { wall: number[]; iters: Acc[] }> = { create: { wall: [], iters: [] }, remove: { wall: [], iters: [] } };
    for (let i = 0; i < N; i++) {
      acc = new Map();
      const t = performance.now();
      ns.create({ name: `c${i}`, network: 'bnet', command: ['sleep', 'infinity'], publish: i === 0 ? ['18080:80'] : [] });
      phases.create.wall.push(performance.now() - t);
      phases.create.iters.push(acc);
    }
    for (let i = 0; i < N; i++) {
      acc = new Map();
      const t = performance.now();
      await ns.remove(`c${i}`);
      phases.remove.wall.push(performance.now() - t);
      phases.remove.iters.push(acc);
    }
    acc = new Map();
    ns.close();
    for (const [name, ph] of Object.entries(phases)) {
      const labels = new Set(ph.iters.flatMap((m) => [...m.keys()]));
      const other = ph.iters.map((m, i) => ph.wall[i] - [...m.values()].reduce((a, b) => a + b.ms, 0));
      const K = Math.min(50, Math.floor(N / 10));
      const edges = (xs: number[]) => K >= 5 ? `${median(xs.slice(0, K))!.toFixed(3).padStart(8)} ${median(xs.slice(-K))!.toFixed(3).padStart(8)}` : '';
      const rows = [...labels].map((k) => {
        const xs = ph.iters.map((m) => m.get(k)?.ms ?? 0);
        const calls = ph.iters.reduce((a, m) => a + (m.get(k)?.calls ?? 0), 0) / N;
        return { k, xs, med: median(xs)!, mean: xs.reduce((a, b) => a + b, 0) / N, calls };
      }).sort((a, b) => b.mean - a.mean);
      const mean = ph.wall.reduce((a, b) => a + b, 0) / N;
      console.log(`${name}: N=${N}, wall median ${median(ph.wall)!.toFixed(3)} ms, mean ${mean.toFixed(3)} ms`);
      console.log(`    median     mean  calls${K >= 5 ? `  first${K}   last${K}` : ''}  (ms per ${name}, exclusive)`);
      console.log(`  ${median(ph.wall)!.toFixed(3).padStart(8)} ${mean.toFixed(3).padStart(8)}       ${edges(ph.wall)}  = wall time`);
      for (const r of rows) {
        if (r.mean >= 0.005) console.log(`  ${r.med.toFixed(3).padStart(8)} ${r.mean.toFixed(3).padStart(8)}  ${r.calls.toFixed(1).padStart(5)}  ${edges(r.xs)}  ${r.k}`);
      }
      console.log(`  ${median(other)!.toFixed(3).padStart(8)} ${(other.reduce((a, b) => a + b, 0) / N).toFixed(3).padStart(8)}         ${edges(other)}  other (JS; libc via koffi: unshare/mount/setns/umount)`);
    }
  } finally {
    deleteNamespaces([...ownNamespaces([prefix]), host]);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
