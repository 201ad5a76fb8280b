// Where does one `nsnet create` / `nsnet rm` process spend its time? In a throwaway host netns (bnh-*), runs K
// creates and K rms of the CLI as bench/attach.ts `cli` does, both ways a command can run: handed to the resident
// helper (the default once it runs: the fast client src/cli/client.c) and in-process (NSNET_NO_HELPER=1), and reports:
//   1. wall time per process (median), against `node -e 0`, `bin/nsnet --help` and a bare import of each module
//      the in-process path loads (fresh process each, median of K): start-up and import costs;
//   2. a CPU profile (node --cpu-prof, the launcher's command line plus that flag) of each in-process run, self
//      time grouped by where the code lives (Node internals = bootstrap and module loader, each npm package, each
//      src/ directory, GC, native);
//   3. `strace -f -c` of one in-process create and rm: syscall time (flock, fsync, mount, ...), if strace is installed.
//
//   node dist/bench/profile-cli.js [K=20]      (root)
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NSNET_BIN, REPO, deleteNamespaces, makeHostNetns, median, ownNamespaces, run } from './common.js';

interface Profile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string }; children?: number[] }>;
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function category(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : `native: ${fn}`;
  if (url.startsWith('node:')) return 'node internals (bootstrap, ESM/CJS loader, fs, child_process)';
  const nm = url.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
  if (nm) return `npm ${nm[1]}`;
  const src = url.match(/dist\/src\/([^/]+)\//);
  if (src) return `src/${src[1]}`;
  return url.replace(/^file:\/\//, '').replace(REPO, '.');
}

function aggregate(files: string[]): Map<string, number[]> {
  const per = new Map<string, number[]>();
  files.forEach((f, k) => {
    const p = JSON.parse(fs.readFileSync(f, 'utf8')) as Profile;
    const cat = new Map(p.nodes.map((n) => [n.id, category(n.callFrame.url, n.callFrame.functionName)]));
    const acc = new Map<string, number>();
    p.samples.forEach((s, i) => acc.set(cat.get(s)!, (acc.get(cat.get(s)!) ?? 0) + (p.timeDeltas[i] ?? 0) / 1000));
    acc.set('= profiled span (profile start to end)', (p.endTime - p.startTime) / 1000);
    for (const [c, ms] of acc) {
      if (!per.has(c)) per.set(c, new Array(files.length).fill(0));
      per.get(c)![k] = ms;
    }
  });
  return per;
}

function printProfile(title: string, per: Map<string, number[]>): void {
  console.log(`  ${title}: CPU profile self time per process, median ms (K=${[...per.values()][0]?.length ?? 0})`);
  const rows = [...per.entries()].map(([c, xs]) => [c, median(xs)!] as const).sort((a, b) => b[1] - a[1]);
  for (const [c, ms] of rows) if (ms >= 0.2) console.log(`    ${ms.toFixed(1).padStart(7)}  ${c}`);
}

async function main(): Promise<void> {
  const K = Number(process.argv[2] ?? 20);
  const id = crypto.randomBytes(2).toString('hex');
  const host = `bnh-${id}-pcli`;
  const tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'bn-pcli-')));
  const root = path.join(tmp, 'nsnet');
  const prefix = `nsnet-${crypto.createHash('sha256').update(root).digest('hex').slice(0, 6)}-`;
  const profDir = path.join(tmp, 'prof');
  fs.mkdirSync(profDir);
  const env: NodeJS.ProcessEnv = { ...process.env, NSNET_ROOT: root };
  delete env.NSNET_HOST_NETNS;
  const noCa = { ...process.env };
  delete noCa.NODE_EXTRA_CA_CERTS;
  // --cpu-prof is refused in NODE_OPTIONS: profiled runs call node the way bin/nsnet does, with the flag added.
  // bin/nsnet runs dist/nsnet-start.cjs (bundle + V8 code cache) where the build made it, else dist/src/cli/main.js.
  const start = fs.existsSync(path.join(REPO, 'dist/nsnet-start.cjs')) ? path.join(REPO, 'dist/nsnet-start.cjs') : path.join(REPO, 'dist/src/cli/main.js');
  const inProcess = { ...env, NSNET_NO_HELPER: '1' };
  const nsnet = (args: string[], nodeFlags: string[] = [], e: NodeJS.ProcessEnv = env) => {
    const cmd = nodeFlags.length
      ? ['env', '-u', 'NODE_EXTRA_CA_CERTS', `NSNET_BIN=${NSNET_BIN}`, process.execPath, ...nodeFlags, start, ...args]
      : [NSNET_BIN, ...args];
    const r = run('nsenter', [`--net=/run/netns/${host}`, ...cmd], { env: e });
    if (r.status !== 0) throw new Error(`nsnet ${args.join(' ')}: ${r.stderr}`);
    return r.ms;
  };
  try {
    makeHostNetns(host);
    nsnet(['network', 'create', '--subnet', '10.201.0.0/16', 'bnet']); // in-process (it makes the state directory)
    // The next command finds the state directory, still runs in-process, and starts the helper.
    const helperDir = path.join(root, 'helper');
    const serving = () => fs.existsSync(helperDir) && fs.readdirSync(helperDir).some((d) => d.endsWith('.sock'));
    for (let i = 0; i < 100 && !serving(); i++) {
      nsnet(['network', 'ls']);
      run('sleep', ['0.1']);
    }
    if (!serving()) throw new Error('the resident helper did not start');
    // 1. Wall times, the two paths interleaved.
    const walls: Record<string, number[]> = { create: [], rm: [], 'create (in-process)': [], 'rm (in-process)': [] };
    for (let i = 0; i < K; i++) {
      walls.create.push(nsnet(['create', '--network', 'bnet', '--name', `w${i}`, '--', 'sleep', '1']));
      walls['create (in-process)'].push(nsnet(['create', '--network', 'bnet', '--name', `x${i}`, '--', 'sleep', '1'], [], inProcess));
    }
    for (let i = 0; i < K; i++) {
      walls.rm.push(nsnet(['rm', `w${i}`]));
      walls['rm (in-process)'].push(nsnet(['rm', `x${i}`], [], inProcess));
    }
    const rep = (cmd: string, args: string[], e: NodeJS.ProcessEnv = noCa) => {
      const xs: number[] = [];
      for (let i = 0; i < K; i++) xs.push(run(cmd, args, { env: e }).ms);
      return median(xs)!;
    };
    const imp = (spec: string) => rep(process.execPath, ['--input-type=module', '-e', `await import(${JSON.stringify(spec)})`]);
    const dist = path.join(REPO, 'dist/src');
    console.log(`CLI process wall time, median of ${K} (ms), through nsenter, NODE_EXTRA_CA_CERTS unset by bin/nsnet; start path ${path.relative(REPO, start)}:`);
    console.log(`  nsnet create (whole process, helper)  ${median(walls.create)!.toFixed(1)}`);
    console.log(`  nsnet rm (whole process, helper)      ${median(walls.rm)!.toFixed(1)}`);
    console.log(`  nsnet create (in-process)             ${median(walls['create (in-process)'])!.toFixed(1)}`);
    console.log(`  nsnet rm (in-process)                 ${median(walls['rm (in-process)'])!.toFixed(1)}`);
    console.log(`  node -e 0                             ${rep(process.execPath, ['-e', '0']).toFixed(1)}`);
    console.log(`  node -e 0 (NODE_EXTRA_CA_CERTS as is) ${process.env.NODE_EXTRA_CA_CERTS ? rep(process.execPath, ['-e', '0'], process.env).toFixed(1) : '(unset)'}`);
    console.log(`  bin/nsnet --help                      ${rep(NSNET_BIN, ['--help']).toFixed(1)}`);
    console.log(`  import commander                      ${imp('commander').toFixed(1)}`);
    console.log(`  import koffi + load libc              ${imp(path.join(dist, 'kernel/libc.js')).toFixed(1)}`);
    console.log(`  import better-sqlite3 (store.js)      ${imp(path.join(dist, 'store/store.js')).toFixed(1)}`);
    console.log(`  import engine/host.js                 ${imp(path.join(dist, 'engine/host.js')).toFixed(1)}`);
    console.log(`  import engine/containers.js           ${imp(path.join(dist, 'engine/containers.js')).toFixed(1)}`);
    console.log(`  import index.js (whole library)       ${imp(path.join(dist, 'index.js')).toFixed(1)}`);

    // 2. CPU profiles of the whole CLI in-process (the helper path starts no Node: bench/cli-paths.ts times it).
    for (const [how, e] of [['in-process', inProcess]] as const) {
      for (const [what, args] of [['create', (i: number) => ['create', '--network', 'bnet', '--name', `p${i}`, '--', 'sleep', '1']], ['rm', (i: number) => ['rm', `p${i}`]]] as const) {
        const dir = path.join(profDir, `${what}-${how.split(',')[0]}`);
        fs.mkdirSync(dir);
        for (let i = 0; i < K; i++) nsnet(args(i), ['--cpu-prof', `--cpu-prof-dir=${dir}`], e);
        printProfile(`nsnet ${what} (${how})`, aggregate(fs.readdirSync(dir).map((f) => path.join(dir, f))));
      }
    }

    // 3. strace -c of one create and one rm.
    if (run('sh', ['-c', 'command -v strace']).status === 0) {
      for (const [what, args] of [['create', ['create', '--network', 'bnet', '--name', 's0', '--', 'sleep', '1']], ['rm', ['rm', 's0']]] as const) {
        const out = path.join(tmp, `strace-${what}.txt`);
        run('nsenter', [`--net=/run/netns/${host}`, 'strace', '-f', '-c', '-S', 'time', '-o', out, NSNET_BIN, ...args], { env: inProcess });
        console.log(`  strace -f -c nsnet ${what} (top 12 by time):`);
        console.log(fs.readFileSync(out, 'utf8').split('\n').slice(0, 14).map((l) => '    ' + l).join('\n'));
      }
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
