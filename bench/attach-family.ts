// The library's attach by address family (issue #13), in ONE run, alternated:
//   family:  an IPv4-only network vs a dual-stack one (this build): target dual-stack <= 1.3x IPv4-only;
//   regress: an IPv4-only network, this build vs a build of the commit before IPv6 landed: target <= 1.05x.
// Each round is one child process (this file with --child) that times N library attaches exactly as
// bench/attach.ts's `lib` method does (one Nsnet.create() of a container on the network, netns creation included,
// never started; the first one publishes a port), then removes them (one await Nsnet.remove() each, also timed),
// inside a throwaway host netns it creates and always deletes, with its own state directory under /tmp. Rounds
// go A B B A A B B A ... (ABBA), so that the drift of a shared machine's load hits both arms alike. As root:
//
//   node dist/bench/attach-family.js [--n 100] [--rounds 8] [--base DIR] [--build DIR] [--only family|regress] [--out FILE]
//
//   --base DIR   a worktree of the pre-IPv6 commit, built (npm run build), node_modules symlinked: its
//                dist/src/index.js is the library measured as "base" (default /work/wt/v6base)
//   --build DIR  the build measured as "this build" (default: the worktree this file was built in)
//
// Prints a markdown table (per arm: pooled median and p90 of every attach, the median of the rounds' medians;
// ratios of pooled medians and the median of the per-pair ratios) and writes the raw samples as JSON.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { deleteNamespaces, leakCheck, loadavg, machine, makeHostNetns, median, ownNamespaces, pct, tick } from './common.js';

type Family = 'v4' | 'dual';

interface ChildResult {
  build: string;
  family: Family;
  n: number;
  attachMs: number[];
  detachMs: number[];
  leaks: ReturnType<typeof leakCheck> | null;
  error: string | null;
}

const HERE = path.dirname(new URL(import.meta.url).pathname); // <build>/dist/bench
const THIS_BUILD = path.resolve(HERE, '../..');

// ------------------------------------------------------------------------------------------------ one round
async function child(buildDir: string, family: Family, n: number, out: string): Promise<void> {
  const runId = crypto.randomBytes(3).toString('hex');
  const host = `bnh-${runId}-af`;
  const tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'bn-af-')));
  const nsnetRoot = path.join(tmp, 'nsnet');
  // The namespaces nsnet makes under this state directory (bench/attach.ts's rule).
  const prefix = `nsnet-${crypto.createHash('sha256').update(nsnetRoot).digest('hex').slice(0, 6)}-`;
  const res: ChildResult = { build: buildDir, family, n, attachMs: [], detachMs: [], leaks: null, error: null };
  let interrupted = false;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => { interrupted = true; process.exitCode = 130; });
  let ns: { createNetwork(o: unknown): unknown; create(o: unknown): unknown; remove(ref: string): Promise<unknown>; settle(): Promise<number>; close(): void } | null = null;
  try {
    makeHostNetns(host);
    // The measured build's own modules (its netns entry and its library), never this build's.
    const { enterHostNetns } = await import(path.join(buildDir, 'dist/src/kernel/netns.js'));
    enterHostNetns(`/run/netns/${host}`);
    await fs.promises.stat('/'); // libuv's threadpool born in the right netns
    const { Nsnet } = await import(path.join(buildDir, 'dist/src/index.js'));
    ns = Nsnet.open({ root: nsnetRoot, hostNetns: `/run/netns/${host}` });
    ns!.createNetwork(family === 'dual'
      ? { name: 'bnet', ipv6: true, subnets: ['10.201.0.0/16', 'fd00:201::/64'] }
      : { name: 'bnet', subnet: '10.201.0.0/16' });
    for (let i = 0; i < n && !interrupted; i++) {
      const t = performance.now();
      ns!.create({ name: `c${i}`, network: 'bnet', command: ['sleep', 'infinity'], publish: i === 0 ? ['18080:80'] : [] });
      res.attachMs.push(performance.now() - t);
      await tick();
    }
    for (let i = 0; i < res.attachMs.length && !interrupted; i++) {
      const t = performance.now();
      await ns!.remove(`c${i}`);
      res.detachMs.push(performance.now() - t);
      await tick();
    }
    const forced = await ns!.settle();
    if (forced) res.error = `settle: ${forced} veth(s) had to be deleted explicitly`;
    res.leaks = leakCheck(host, prefix);
    if (interrupted) res.error = 'interrupted';
  } catch (e) {
    res.error = String((e as Error).stack ?? e).slice(0, 2000);
  } finally {
    try { ns?.close(); } catch { /* best effort */ }
    deleteNamespaces([...ownNamespaces([prefix]), host]);
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.writeFileSync(out, JSON.stringify(res));
  }
}

// ------------------------------------------------------------------------------------------------ the run
interface Arm {
  label: string;
  build: string;
  family: Family;
}

interface Comparison {
  name: 'family' | 'regress';
  a: Arm;
  b: Arm;
  target: number;
  /** Per round, in order: which arm, its samples. */
  rounds: Array<{ arm: 'a' | 'b'; attachMs: number[]; detachMs: number[]; loadavg: string }>;
}

function runRound(arm: Arm, n: number): ChildResult {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bn-afr-')), 'r.json');
  try {
    const r = spawnSync(process.execPath, [path.join(HERE, 'attach-family.js'), '--child', arm.build, arm.family, String(n), out], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 600_000 });
    if (!fs.existsSync(out)) throw new Error(`round ${arm.label}: the child wrote no result (status ${r.status}, signal ${r.signal})`);
    const res = JSON.parse(fs.readFileSync(out, 'utf8')) as ChildResult;
    if (res.error) throw new Error(`round ${arm.label}: ${res.error}`);
    if (res.attachMs.length !== n) throw new Error(`round ${arm.label}: ${res.attachMs.length} of ${n} attaches`);
    const l = res.leaks!;
    // The network (bridge, nsnet's table) stays: it is untimed setup, deleted with the host netns, as in attach.ts.
    if (l.veths || l.netns) throw new Error(`round ${arm.label}: left behind ${JSON.stringify(l)}`);
    return res;
  } finally {
    fs.rmSync(path.dirname(out), { recursive: true, force: true });
  }
}

const f2 = (x: number | null) => (x === null ? '-' : x.toFixed(2));

function summarize(c: Comparison): string[] {
  const of = (arm: 'a' | 'b', k: 'attachMs' | 'detachMs') => c.rounds.filter((r) => r.arm === arm).map((r) => r[k]);
  const stat = (arm: 'a' | 'b', k: 'attachMs' | 'detachMs') => {
    const per = of(arm, k);
    const all = per.flat();
    return { med: median(all)!, p90: pct(all, 90)!, medOfMed: median(per.map((x) => median(x)!))!, rounds: per.length, samples: all.length };
  };
  // ABBA pairs: round 2k and 2k+1 are one a and one b (in either order): the ratio of their medians.
  const pairRatios = (k: 'attachMs' | 'detachMs') => {
    const out: number[] = [];
    for (let i = 0; i + 1 < c.rounds.length; i += 2) {
      const [x, y] = [c.rounds[i], c.rounds[i + 1]];
      const a = x.arm === 'a' ? x : y, b = x.arm === 'b' ? x : y;
      out.push(median(b[k])! / median(a[k])!);
    }
    return out;
  };
  const lines: string[] = [];
  lines.push(`### ${c.name}: ${c.b.label} vs ${c.a.label} (target: at most ${c.target}x)`, '');
  lines.push('| arm | what | rounds × N | median | p90 | median of round medians |', '|---|---|---|---|---|---|');
  for (const k of ['attachMs', 'detachMs'] as const) {
    for (const arm of ['a', 'b'] as const) {
      const s = stat(arm, k);
      lines.push(`| ${c[arm].label} | ${k === 'attachMs' ? 'attach' : 'detach'} | ${s.rounds} × ${s.samples / s.rounds} | ${f2(s.med)} | ${f2(s.p90)} | ${f2(s.medOfMed)} |`);
    }
  }
  lines.push('');
  for (const k of ['attachMs', 'detachMs'] as const) {
    const a = stat('a', k), b = stat('b', k);
    const pr = pairRatios(k);
    const ratio = b.med / a.med;
    const verdict = k === 'attachMs' ? ` — target ${c.target}x: **${ratio <= c.target ? 'met' : 'MISSED'}**` : '';
    const spread = `median ${f2(median(pr))}x, quartiles ${f2(pct(pr, 25))}-${f2(pct(pr, 75))}x, ${pr.filter((x) => x > 1).length} of ${pr.length} above 1`;
    lines.push(`- ${k === 'attachMs' ? 'attach' : 'detach'}: pooled median ${f2(ratio)}x, p90 ${f2(b.p90 / a.p90)}x; per ABBA pair (ratio of the two rounds' medians): ${spread}${verdict}`);
    lines.push(`  pairs: ${pr.map(f2).join(' ')}`);
  }
  lines.push('');
  return lines;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child') return child(argv[1], argv[2] as Family, Number(argv[3]), argv[4]);
  if (process.getuid?.() !== 0) throw new Error('run as root (network namespaces)');
  const opt = (k: string, d: string) => {
    const i = argv.indexOf(k);
    return i >= 0 ? argv[i + 1] : d;
  };
  const n = Number(opt('--n', '100'));
  const rounds = Number(opt('--rounds', '8'));
  const base = path.resolve(opt('--base', '/work/wt/v6base'));
  const only = opt('--only', '');
  const outFile = opt('--out', '');
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new Error('--n: 1..1000');
  if (!Number.isInteger(rounds) || rounds < 2 || rounds % 2) throw new Error('--rounds: an even number >= 2 (ABBA pairs)');
  const comps: Comparison[] = [];
  const build = path.resolve(opt('--build', THIS_BUILD));
  if (!fs.existsSync(path.join(build, 'dist/src/index.js'))) throw new Error(`--build ${build}: no dist/src/index.js (npm run build there)`);
  const cur4: Arm = { label: 'this build, IPv4-only', build, family: 'v4' };
  if (only !== 'regress') comps.push({ name: 'family', a: cur4, b: { label: 'this build, dual-stack', build, family: 'dual' }, target: 1.3, rounds: [] });
  if (only !== 'family') {
    if (!fs.existsSync(path.join(base, 'dist/src/index.js'))) throw new Error(`--base ${base}: no dist/src/index.js (build the pre-IPv6 commit there: npm run build)`);
    const rev = spawnSync('git', ['-C', base, 'log', '-1', '--format=%h'], { encoding: 'utf8' }).stdout.trim() || '?';
    comps.push({ name: 'regress', a: { label: `base ${rev}, IPv4-only`, build: base, family: 'v4' }, b: cur4, target: 1.05, rounds: [] });
  }
  const rev = spawnSync('git', ['-C', build, 'log', '-1', '--format=%h'], { encoding: 'utf8' }).stdout.trim() || '?';
  const m = machine();
  console.log(`# attach-family: N=${n}, ${rounds} rounds per comparison (ABBA), this build ${rev}, ${m.nproc} CPUs, ${m.cpu}, kernel ${m.kernel}, node ${m.node}, load ${m.loadavg}`);
  const t0 = performance.now();
  // The comparisons interleaved round by round too (family round, regress round, ...), so both see the same hours.
  for (let i = 0; i < rounds; i++) {
    for (const c of comps) {
      const arm: 'a' | 'b' = [0, 3].includes(i % 4) ? 'a' : 'b';
      const r = runRound(c[arm], n);
      c.rounds.push({ arm, attachMs: r.attachMs, detachMs: r.detachMs, loadavg: loadavg() });
      console.error(`round ${i + 1}/${rounds} ${c.name} ${c[arm].label}: attach median ${f2(median(r.attachMs))} ms, p90 ${f2(pct(r.attachMs, 90))} ms (load ${loadavg()})`);
    }
  }
  const lines = [`load average at the end: ${loadavg()}; ${((performance.now() - t0) / 1000).toFixed(0)} s`, ''];
  for (const c of comps) lines.push(...summarize(c));
  console.log(lines.join('\n'));
  if (outFile) fs.writeFileSync(outFile, JSON.stringify({ machine: m, n, rounds, rev, comparisons: comps }, null, 1));
}

main().catch((e) => {
  console.error(String((e as Error).stack ?? e));
  process.exitCode = 1;
});
