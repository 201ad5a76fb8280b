// nsnet and its peers side by side, in one run on this machine (issue #6). Run through `bash bench/run.sh`
// (installs the peers, builds, cleans up on Ctrl-C); this is the orchestrator it calls:
//
//   node dist/bench/compare.js [--out DIR] [--methods lib,cli,nsnetcni,netavark,cni,ipscript,ipbatch] [--no-traffic] [N ...]
//
// For each N (default 1 100 1000) and method, one `node dist/bench/attach.js METHOD N` process (see there for the
// exact timing boundaries); then the kernel floor (`dist/bench/netlink-attach.js --full --json N`: the very
// netlink requests nsnet issues, straight); then the data path (`dist/bench/traffic.js run`). Writes DIR/results.json
// (every sample) and DIR/report.md (the tables of BENCHMARKS.md). Everything happens in throwaway namespaces
// named bnh-/bnc-/bnu-<runid>-* (and nsnet-<hostid>-* under our own state directories); afterwards the real
// host's links and nftables tables are compared with what they were before.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { AttachResult } from './attach.js';
import {
  REPO, NETAVARK, addWise, firstLast, loadavg, machine, median, netnsList, pct, run, tick, type Run,
} from './common.js';
import type { TrafficResult } from './traffic.js';

const ALL = ['lib', 'cli', 'nsnetcni', 'netavark', 'cni', 'ipscript', 'ipbatch'];
const PEERS = ['netavark', 'cni', 'ipscript', 'ipbatch'];
const LABEL: Record<string, string> = {
  lib: 'nsnet library (in-process create/remove)',
  cli: 'nsnet CLI (one process per create / rm)',
  nsnetcni: 'nsnet as a CNI plugin (bin/cni/nsnet ADD / DEL)',
  netavark: 'netavark 1.4 setup/teardown',
  cni: 'CNI bridge+host-local+portmap',
  ipscript: 'script: one ip/nft process per step',
  ipbatch: 'ip -batch (host + container)',
};

interface Floor {
  n: number;
  attachMs: number[];
  netnsMs: number[];
  detachMs: number[];
  netnsDelMs: number[];
}

interface Results {
  machine: ReturnType<typeof machine>;
  command: string;
  git: string;
  tools: Record<string, string>;
  startup: Record<string, number | null>;
  attach: AttachResult[];
  floor: Floor[];
  traffic: TrafficResult | null;
  hostCheck: { before: HostState; after: HostState; unchanged: boolean; leftoverNetns: string[] };
  wallS: number;
  loadavgEnd: string;
}

interface HostState {
  links: string[];
  nftTables: string[];
}

function hostState(): HostState {
  return {
    links: run('ip', ['-o', 'link', 'show']).stdout.trim().split('\n').map((l) => l.split(':')[1]?.trim().split('@')[0] ?? '').sort(),
    nftTables: run('nft', ['list', 'tables']).stdout.trim().split('\n').filter(Boolean).sort(),
  };
}

function firstLine(r: Run): string {
  return (r.stdout || r.stderr).trim().split('\n')[0] ?? '';
}

function tools(): Record<string, string> {
  const cniv = run('/usr/lib/cni/bridge', [], { env: { ...process.env, CNI_COMMAND: 'VERSION' } });
  return {
    netavark: fs.existsSync(NETAVARK) ? firstLine(run(NETAVARK, ['--version'])) : 'missing',
    cni: cniv.status === 0 ? `${run('dpkg-query', ['-W', '-f', '${Version}', 'containernetworking-plugins']).stdout} (${cniv.stdout.trim()})` : 'missing',
    iproute2: firstLine(run('ip', ['-V'])),
    nftables: firstLine(run('nft', ['--version'])),
    iptables: firstLine(run('iptables', ['--version'])),
    iperf3: firstLine(run('iperf3', ['--version'])),
  };
}

/** Median wall time of a command run `k` times. */
function medianOf(k: number, cmd: string, args: string[], env?: NodeJS.ProcessEnv): number | null {
  const xs: number[] = [];
  for (let i = 0; i < k; i++) {
    const r = run(cmd, args, { env });
    if (r.status !== 0) return null;
    xs.push(r.ms);
  }
  return median(xs);
}

function startup(): Record<string, number | null> {
  const noCa = { ...process.env };
  delete noCa.NODE_EXTRA_CA_CERTS;
  const withCa = { ...process.env };
  return {
    'node -e 0 (NODE_EXTRA_CA_CERTS unset, as bin/nsnet)': medianOf(15, process.execPath, ['-e', '0'], noCa),
    'node -e 0 (environment as is)': withCa.NODE_EXTRA_CA_CERTS ? medianOf(15, process.execPath, ['-e', '0'], withCa) : null,
    'bin/nsnet --help (launcher + Node + CLI module, no engine)': medianOf(15, path.join(REPO, 'bin/nsnet'), ['--help']),
    'netavark --version': fs.existsSync(NETAVARK) ? medianOf(15, NETAVARK, ['--version']) : null,
    '/bin/true (spawn floor of this harness)': medianOf(15, '/bin/true', []),
    'nsenter --net=/proc/self/ns/net /bin/true': medianOf(15, 'nsenter', ['--net=/proc/self/ns/net', '/bin/true']),
  };
}

// ------------------------------------------------------------------------------------------------ report
const f = (x: number | null | undefined, d = 2): string => (x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(d));
const ratio = (a: number | null, b: number | null): string => (a === null || b === null || b === 0 ? '–' : `${(a / b).toFixed(2)}x`);

/** Per-attach samples "as a runtime pays them": nsnet as measured, peers with their netns creation added. */
function withNetns(r: AttachResult): number[] {
  return r.netnsCreateMs ? addWise(r.attachMs, r.netnsCreateMs) : r.attachMs;
}
function detachWithNetns(r: AttachResult): number[] {
  return r.netnsDeleteMs ? addWise(r.detachMs, r.netnsDeleteMs) : r.detachMs;
}

function leakText(r: AttachResult): string {
  if (!r.leaks) return 'not checked';
  const l = r.leaks;
  const parts = [`${l.veths} veth`, `${l.netns} netns`];
  const extra = l.links.filter((x) => x !== 'lo');
  parts.push(extra.length ? `links: ${extra.join(' ')}` : 'links: lo only');
  parts.push(`nft rules lines ${r.rulesetLines.beforeFirst}→${r.rulesetLines.afterAttach}→${r.rulesetLines.afterDetach}`);
  if (r.cleanAfterMs !== null && r.cleanAfterMs !== undefined) parts.push(`no veth left ${f(r.cleanAfterMs, 0)} ms after the last detach`);
  if (r.helperRssKiB) parts.push(`resident helper peak RSS ${f(r.helperRssKiB / 1024, 1)} MiB`);
  if (r.check !== null) parts.push(`check: ${r.check}`);
  return parts.join('; ');
}

function report(res: Results): string {
  const L: string[] = [];
  const m = res.machine;
  L.push(`Machine: ${m.nproc} CPUs (${m.cpu}), ${m.memGiB} GiB, kernel ${m.kernel}, Node ${m.node}; ${m.date}; ` +
    `load average ${m.loadavg} at the start, ${res.loadavgEnd} at the end (other work shares the machine: medians, ratios).`);
  L.push(`Tools: ${Object.entries(res.tools).map(([k, v]) => `${k} ${v}`).join('; ')}.`);
  L.push(`Source: ${res.git}. Command: \`${res.command}\`. Whole run: ${f(res.wallS / 60, 1)} min.`);
  L.push('');
  const ns = [...new Set(res.attach.map((r) => r.n))].sort((a, b) => a - b);
  for (const n of ns) {
    const rows = res.attach.filter((r) => r.n === n);
    const floor = res.floor.find((x) => x.n === n) ?? null;
    const peers = rows.filter((r) => PEERS.includes(r.method) && !r.error);
    const bestPeer = (fn: (r: AttachResult) => number[]) => {
      let best: { m: string; v: number } | null = null;
      for (const p of peers) {
        const v = median(fn(p));
        if (v !== null && (!best || v < best.v)) best = { m: p.method, v };
      }
      return best;
    };
    const bpA = bestPeer((r) => r.attachMs);
    const bpAN = bestPeer(withNetns);
    const bpD = bestPeer((r) => r.detachMs);
    const bpDN = bestPeer(detachWithNetns);
    L.push(`### N = ${n}`);
    L.push('');
    L.push(`Per attach / detach in ms (median, p90). "+netns": the peers with their namespace creation (deletion) added; ` +
      `nsnet's figures always include it (it makes its own). Ratios: median +netns over the best peer's median +netns ` +
      `(${bpAN?.m ?? '–'}, ${f(bpAN?.v ?? null)} ms attach; ${bpDN?.m ?? '–'}, ${f(bpDN?.v ?? null)} ms detach).`);
    L.push('');
    L.push('| method | attach med | p90 | attach +netns med | p90 | detach med | detach +netns med | ×best peer attach | ×best peer detach | total s | peak RSS MiB |');
    L.push('|---|---|---|---|---|---|---|---|---|---|---|');
    for (const r of rows) {
      if (r.error && !r.attachMs.length) {
        L.push(`| ${LABEL[r.method]} | failed: ${r.error.split('\n')[0].slice(0, 200)} |||||||||| `);
        continue;
      }
      const a = withNetns(r);
      const d = detachWithNetns(r);
      L.push(`| ${LABEL[r.method]} | ${f(median(r.attachMs))} | ${f(pct(r.attachMs, 90))} | ${f(median(a))} | ${f(pct(a, 90))} | ${f(median(r.detachMs))} | ${f(median(d))} | ` +
        `${ratio(median(a), bpAN?.v ?? null)} | ${ratio(median(d), bpDN?.v ?? null)} | ${f(r.totalS, 1)} | ${f(r.peakRssKiB / 1024, 1)} |`);
    }
    if (floor) {
      const a = addWise(floor.attachMs, floor.netnsMs);
      const d = addWise(floor.detachMs, floor.netnsDelMs);
      L.push(`| kernel floor (same netlink requests, straight) | ${f(median(floor.attachMs))} | ${f(pct(floor.attachMs, 90))} | ${f(median(a))} | ${f(pct(a, 90))} | ${f(median(floor.detachMs))} | ${f(median(d))} | ${ratio(median(a), bpAN?.v ?? null)} | ${ratio(median(d), bpDN?.v ?? null)} | – | – |`);
    }
    L.push('');
    if (bpA) L.push(`Best peer without its netns creation: ${bpA.m} ${f(bpA.v)} ms attach, ${bpD?.m} ${f(bpD?.v ?? null)} ms detach.`);
    const netnsRows = rows.filter((r) => r.netnsCreateMs?.length);
    if (netnsRows.length) {
      L.push(`Peers' namespace creation / deletion (median ms): ${netnsRows.map((r) => `${r.method} ${f(median(r.netnsCreateMs!))} / ${f(median(r.netnsDeleteMs ?? []))} (${r.netnsHow.split(',')[0]})`).join('; ')}.`);
    }
    L.push('');
    L.push('Leak check after detaching all (in the throwaway host, before it is deleted):');
    L.push('');
    for (const r of rows) L.push(`- ${LABEL[r.method]}: ${leakText(r)}${r.error ? ` — error: ${r.error.split('\n')[0].slice(0, 300)}` : ''}`);
    L.push('');
  }

  const big = Math.max(...ns);
  if (big >= 100) {
    L.push(`### Growth: the k-th attach, N = ${big}`);
    L.push('');
    L.push('Median of the first k attaches vs the last k (k = 50 for N ≥ 500, else N/10); "+netns" as above.');
    L.push('');
    L.push('| method | first k med ms | last k med ms | last/first | detach first k | detach last k | last/first |');
    L.push('|---|---|---|---|---|---|---|');
    for (const r of res.attach.filter((x) => x.n === big && x.attachMs.length === big)) {
      const a = firstLast(withNetns(r));
      const d = firstLast(detachWithNetns(r));
      L.push(`| ${LABEL[r.method]} | ${f(a.first)} | ${f(a.last)} | ${ratio(a.last, a.first)} | ${f(d.first)} | ${f(d.last)} | ${ratio(d.last, d.first)} |`);
    }
    const fl = res.floor.find((x) => x.n === big);
    const probes = res.attach.filter((x) => x.n === big && x.probe && x.probe.rounds);
    if (probes.length) {
      L.push('');
      L.push(`Paired probe (robust to the machine's load drift): with ${big} attached, ${probes[0].probe!.rounds} rounds of one attach+detach on ` +
        `that full host and one on a second host with 1 attached, alternating; medians in ms (peers without netns creation).`);
      L.push('');
      L.push(`| method | attach, 1 attached | attach, ${big} attached | full/empty | detach, 1 attached | detach, ${big} attached | full/empty |`);
      L.push('|---|---|---|---|---|---|---|');
      for (const r of probes) {
        const p = r.probe!;
        L.push(`| ${LABEL[r.method]} | ${f(median(p.attachEmpty))} | ${f(median(p.attachFull))} | ${ratio(median(p.attachFull), median(p.attachEmpty))} | ` +
          `${f(median(p.detachEmpty))} | ${f(median(p.detachFull))} | ${ratio(median(p.detachFull), median(p.detachEmpty))} |`);
      }
    }
    if (fl) {
      const a = firstLast(addWise(fl.attachMs, fl.netnsMs));
      const d = firstLast(addWise(fl.detachMs, fl.netnsDelMs));
      L.push(`| kernel floor | ${f(a.first)} | ${f(a.last)} | ${ratio(a.last, a.first)} | ${f(d.first)} | ${f(d.last)} | ${ratio(d.last, d.first)} |`);
    }
    L.push('');
  }

  L.push('### Start-up and spawn costs (median of 15, ms)');
  L.push('');
  for (const [k, v] of Object.entries(res.startup)) L.push(`- ${k}: ${f(v)}`);
  L.push('');

  if (res.traffic) {
    const t = res.traffic;
    L.push(`### Data path (iperf3 -t ${t.seconds}, ${t.reps} interleaved repetitions, medians; short connections: 2 s, 8 concurrent)`);
    L.push('');
    L.push('| set-up | path | from | Gbit/s | ×direct | conn/s | ×direct | notes |');
    L.push('|---|---|---|---|---|---|---|---|');
    for (const row of t.rows) {
      // The "direct" reference of a row: same set-up, same origin, the container's address; for nsnet from
      // upstream (blocked by design) the plain set-up's routed path.
      let ref = t.rows.find((x) => x.setup === row.setup && x.from === row.from && x.path.startsWith('container address') && x.medGbps !== null);
      if (!ref && row.from === 'upstream') ref = t.rows.find((x) => x.setup === 'plain');
      const self = ref === row;
      L.push(`| ${row.setup} | ${row.path} | ${row.from} | ${f(row.medGbps)} | ${self ? '1.00x' : ratio(row.medGbps, ref?.medGbps ?? null)}${ref && !self && ref.setup !== row.setup ? ` (vs ${ref.setup})` : ''} | ` +
        `${f(row.medConns, 0)} | ${self ? '1.00x' : ratio(row.medConns, ref?.medConns ?? null)} | ${row.notes.join('; ').slice(0, 200)} |`);
    }
    if (t.errors.length) L.push('', `Errors: ${t.errors.join(' | ')}`);
    L.push('');
  }

  L.push('### Real host after the run');
  L.push('');
  L.push(res.hostCheck.unchanged
    ? `Unchanged: links (${res.hostCheck.after.links.join(', ')}), nftables tables (${res.hostCheck.after.nftTables.length ? res.hostCheck.after.nftTables.join(', ') : 'none'}), no namespace of this run left.`
    : `CHANGED: before ${JSON.stringify(res.hostCheck.before)}, after ${JSON.stringify(res.hostCheck.after)}, left-over netns ${res.hostCheck.leftoverNetns.join(' ')}`);
  L.push('');
  return L.join('\n');
}

// ------------------------------------------------------------------------------------------------ main
async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--report') {
    // Re-render DIR/report.md from DIR/results.json.
    const dir = path.resolve(args[1]);
    fs.writeFileSync(path.join(dir, 'report.md'), report(JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8'))));
    return;
  }
  let out = path.join(REPO, 'bench/results', new Date().toISOString().replace(/[:.]/g, '-'));
  let methods = ALL;
  let traffic = true;
  const ns: number[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--out') out = path.resolve(args[++i]);
    else if (a === '--methods') methods = args[++i].split(',');
    else if (a === '--no-traffic') traffic = false;
    else if (/^\d+$/.test(a)) ns.push(Number(a));
    else throw new Error(`unknown argument ${a}`);
  }
  for (const mth of methods) if (!ALL.includes(mth)) throw new Error(`unknown method ${mth}`);
  if (!ns.length) ns.push(1, 100, 1000);
  if (ns.some((n) => n < 1 || n > 1000)) throw new Error('N must be 1..1000 (a Linux bridge takes at most 1024 ports)');
  fs.mkdirSync(out, { recursive: true });
  const runId = process.env.BENCH_RUNID && /^[0-9a-f]{4}$/.test(process.env.BENCH_RUNID) ? process.env.BENCH_RUNID : crypto.randomBytes(2).toString('hex');
  const ourPrefixes = [`bnh-${runId}`, `bnc-${runId}`, `bnu-${runId}`];
  let interrupted = false;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => { interrupted = true; process.exitCode = 130; });

  const t0 = performance.now();
  const before = hostState();
  // run.sh builds a snapshot of the work tree elsewhere (other work may rebuild dist/ meanwhile) and says which.
  const git = process.env.BENCH_GIT ?? run('git', ['-C', REPO, 'log', '-1', '--format=%h %s']).stdout.trim();
  const dirty = process.env.BENCH_GIT ? '' : run('git', ['-C', REPO, 'status', '--porcelain', '--', 'src']).stdout.trim() ? ' (src/ has uncommitted changes)' : '';
  const res: Results = {
    machine: machine(), command: process.env.BENCH_COMMAND ?? `node dist/bench/compare.js ${args.join(' ')}`, git: git + dirty,
    tools: tools(), startup: {}, attach: [], floor: [], traffic: null,
    hostCheck: { before, after: before, unchanged: true, leftoverNetns: [] }, wallS: 0, loadavgEnd: '',
  };
  const log = (s: string) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${s}`);
  log(`run ${runId}: N=${ns.join(',')} methods=${methods.join(',')} -> ${out}`);
  res.startup = startup();

  // After a run that removed hundreds of namespaces, the kernel keeps cleaning them up for a while, holding the
  // rtnl lock in long stretches (docs/kernel-notes.md §1): the next method waits so as not to pay for that.
  const settleMs = (n: number) => (n >= 500 ? 20_000 : 2_000);
  for (const n of ns) {
    for (const mth of methods) {
      await tick();
      if (interrupted) break;
      await new Promise((r) => setTimeout(r, settleMs(n)));
      const file = path.join(out, `attach-${mth}-${n}.json`);
      const r = run(process.execPath, [path.join(REPO, 'dist/bench/attach.js'), mth, String(n), file, runId], { timeout: 3600_000 });
      if (r.stderr.trim()) console.error(r.stderr.trim().slice(0, 2000));
      let a: AttachResult;
      try {
        a = JSON.parse(fs.readFileSync(file, 'utf8'));
      } catch {
        a = { method: mth, n, attachMs: [], detachMs: [], netnsCreateMs: null, netnsDeleteMs: null, netnsHow: '', totalS: 0, peakRssKiB: 0, baseRssKiB: null, rulesetLines: { beforeFirst: 0, afterAttach: 0, afterDetach: 0 }, probe: null, leaks: null, cleanAfterMs: null, helperRssKiB: null, check: null, error: `runner exit ${r.status}: ${r.stderr.slice(0, 500)}` } as AttachResult;
      }
      res.attach.push(a);
      log(`N=${n} ${mth}: attach med ${f(median(a.attachMs))} ms, detach med ${f(median(a.detachMs))} ms, total ${f(a.totalS, 1)} s${a.error ? ` ERROR ${a.error.split('\n')[0]}` : ''}`);
    }
    await tick();
    if (interrupted) break;
    await new Promise((r) => setTimeout(r, settleMs(n)));
    const fl = run(process.execPath, [path.join(REPO, 'dist/bench/netlink-attach.js'), '--full', '--json', String(n)], { timeout: 600_000 });
    const line = fl.stdout.trim().split('\n').pop() ?? '';
    try {
      const j = JSON.parse(line);
      res.floor.push({ n, attachMs: j.attachMs, netnsMs: j.netnsMs, detachMs: j.detachMs, netnsDelMs: j.netnsDelMs });
      log(`N=${n} kernel floor: attach ${f(median(j.attachMs), 3)} ms + netns ${f(median(j.netnsMs), 3)} ms; detach ${f(median(j.detachMs), 3)} ms + netns ${f(median(j.netnsDelMs), 3)} ms`);
    } catch {
      log(`kernel floor failed: ${fl.stderr.slice(0, 500)}`);
    }
  }
  await tick();
  if (traffic && !interrupted) {
    const file = path.join(out, 'traffic.json');
    log('data path (iperf3, connection rate)');
    const r = run(process.execPath, [path.join(REPO, 'dist/bench/traffic.js'), 'run', file, runId, process.env.BENCH_TRAFFIC_REPS ?? '3', '5'], { timeout: 3600_000 });
    if (r.stderr.trim()) console.error(r.stderr.trim());
    try {
      res.traffic = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch {
      log(`traffic failed: ${r.stderr.slice(0, 500)}`);
    }
  }
  res.wallS = (performance.now() - t0) / 1000;
  res.loadavgEnd = loadavg();
  const after = hostState();
  const leftover = netnsList().filter((n) => ourPrefixes.some((p) => n.startsWith(p)));
  res.hostCheck = { before, after, leftoverNetns: leftover, unchanged: JSON.stringify(before) === JSON.stringify(after) && !leftover.length };
  fs.writeFileSync(path.join(out, 'results.json'), JSON.stringify(res));
  fs.writeFileSync(path.join(out, 'report.md'), report(res));
  log(`wrote ${out}/report.md and results.json`);
  if (!res.hostCheck.unchanged) {
    log('WARNING: the real host differs from before the run (see report)');
    process.exitCode = 3;
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
