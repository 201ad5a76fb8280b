// What one CLI process costs on each of its paths (issue #11): served by the resident helper through the fast
// client (no Node), in-process (NSNET_NO_HELPER=1), and the first command on a new state directory (no helper yet:
// in-process, and it starts one: `ps`, and `network create`). Inside throwaway host netns (bnh-*), K rounds, the
// commands interleaved so that the machine's load drift hits them alike; medians in ms, with the floors: spawning
// /bin/true through nsenter (the harness's own cost) and `node -e 0`.
//
//   node dist/bench/cli-paths.js [K=30] [BASELINE_BIN]     (root)
//
// BASELINE_BIN: another build's bin/nsnet (e.g. a worktree of an earlier commit, built): its in-process and
// first-command figures are measured in the same rounds, for "no slower than before".
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NSNET_BIN, deleteNamespaces, makeHostNetns, median, ownNamespaces, run } from './common.js';

/** Waits (untimed) until no process runs with `root` in its command line: the helper a first command started has
 *  idled out (NSNET_HELPER_IDLE_MS=300). Its start-up (≈100-200 ms of CPU on its own) would otherwise land on the
 *  next command measured, whichever build that is. */
function settle(root: string): void {
  const end = Date.now() + 5000;
  for (;;) {
    let busy = false;
    for (const pid of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      try {
        if (fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(root)) busy = true;
      } catch { /* gone */ }
      if (busy) break;
    }
    if (!busy || Date.now() > end) return;
    run('sleep', ['0.02']);
  }
}

function main(): void {
  const K = Number(process.argv[2] ?? 30);
  const baseline = process.argv[3];
  const id = crypto.randomBytes(2).toString('hex');
  const host = `bnh-${id}-paths`;
  // One nsnet per host netns: the first `network create`s run in a host of their own (their network removed again
  // each time).
  const host2 = `bnh-${id}-first`;
  const tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'bn-paths-')));
  const root = path.join(tmp, 'nsnet');
  const prefixOf = (r: string) => `nsnet-${crypto.createHash('sha256').update(r).digest('hex').slice(0, 6)}-`;
  const env: NodeJS.ProcessEnv = { ...process.env, NSNET_ROOT: root, NSNET_RESOLV_CONF: '/dev/null' };
  delete env.NSNET_HOST_NETNS;
  delete env.NODE_EXTRA_CA_CERTS;
  const inProcess = { ...env, NSNET_NO_HELPER: '1' };
  const roots: string[] = [];
  const t: Record<string, number[]> = {};
  const time = (what: string, bin: string, args: string[], e: NodeJS.ProcessEnv, h = host) => {
    const r = run('nsenter', [`--net=/run/netns/${h}`, bin, ...args], { env: e });
    if (r.status !== 0) throw new Error(`${what}: ${r.stderr}`);
    (t[what] ??= []).push(r.ms);
  };
  const served = () => {
    const r = run('nsenter', [`--net=/run/netns/${host}`, NSNET_BIN, 'ps'], { env: { ...env, NSNET_HELPER_TRACE: '1' } });
    return /served by the helper/.test(r.stderr);
  };
  try {
    makeHostNetns(host);
    makeHostNetns(host2);
    run('nsenter', [`--net=/run/netns/${host}`, NSNET_BIN, 'network', 'create', '--subnet', '10.202.0.0/16', 'bnet'], { env });
    for (let i = 0; i < 100 && !served(); i++) run('sleep', ['0.05']);
    if (!served()) throw new Error('the resident helper did not start');
    const create = (n: string) => ['create', '--network', 'bnet', '--name', n, '--', 'sleep', '1'];
    for (let i = 0; i < K; i++) {
      time('create (helper)', NSNET_BIN, create(`h${i}`), env);
      time('create (in-process)', NSNET_BIN, create(`p${i}`), inProcess);
      time('ps (helper)', NSNET_BIN, ['ps', '-a'], env);
      time('ps (in-process)', NSNET_BIN, ['ps', '-a'], inProcess);
      time('inspect (helper)', NSNET_BIN, ['inspect', `h${i}`], env);
      time('network ls (helper)', NSNET_BIN, ['network', 'ls'], env);
      // The first command on a new state directory: in-process, and it starts a helper (which idles out fast).
      // Two first commands: `ps` (reads a new, empty store) and `network create` (the first thing a user does on a
      // new host: a bridge, its firewall and its resolver; removed again untimed, in-process).
      for (const [b, [tag, bin]] of [['', NSNET_BIN], ...(baseline ? [[' baseline', baseline]] : [])].entries()) {
        const first = () => {
          const r = path.join(tmp, `first-${roots.length}`);
          roots.push(r);
          return { ...env, NSNET_ROOT: r, NSNET_HELPER_IDLE_MS: '300' };
        };
        const ps = first();
        time(`first command: ps${tag}`, bin, ['ps'], ps);
        settle(ps.NSNET_ROOT!);
        const e = first();
        time(`first command: network create${tag}`, bin, ['network', 'create', '--subnet', `10.${210 + b}.${i}.0/24`, 'first'], e, host2);
        const rm = run('nsenter', [`--net=/run/netns/${host2}`, bin, 'network', 'rm', 'first'], { env: { ...e, NSNET_NO_HELPER: '1' } });
        if (rm.status !== 0) throw new Error(`network rm: ${rm.stderr}`);
        settle(e.NSNET_ROOT!);
        if (baseline && bin === baseline) time('ps (in-process) baseline', bin, ['ps', '-a'], inProcess);
      }
      time('floor: nsenter /bin/true', '/bin/true', [], env);
      const n = run(process.execPath, ['-e', '0'], { env });
      (t['floor: node -e 0'] ??= []).push(n.ms);
    }
    for (let i = 0; i < K; i++) {
      time('rm (helper)', NSNET_BIN, ['rm', `h${i}`], env);
      time('rm (in-process)', NSNET_BIN, ['rm', `p${i}`], inProcess);
    }
    console.log(`CLI process wall time by path, median of ${K} (ms), through nsenter, in one run:`);
    for (const [k, xs] of Object.entries(t)) console.log(`  ${k.padEnd(40)} ${median(xs)!.toFixed(2)}`);
    if (baseline) {
      console.log('Against the baseline build in the same rounds (median / median):');
      for (const k of Object.keys(t).filter((k) => t[`${k} baseline`])) {
        console.log(`  ${k.padEnd(40)} ${(median(t[k])! / median(t[`${k} baseline`])!).toFixed(2)}x`);
      }
    }
  } finally {
    deleteNamespaces([...ownNamespaces([prefixOf(root), ...roots.map(prefixOf)]), host, host2]);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main();
