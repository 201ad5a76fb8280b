// Shared helpers of the side-by-side benchmark (bench/compare.ts, bench/attach.ts, bench/traffic.ts):
// statistics, timed process spawning, peak RSS of child processes, and the namespace bookkeeping that keeps every
// run inside throwaway namespaces it created (names start with bnh- / bnc- / bnu-, or nsnet-<hostid>- for the
// namespaces nsnet itself creates under a state directory of ours).
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

const require = createRequire(import.meta.url);

export const REPO = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
export const NSNET_BIN = path.join(REPO, 'bin/nsnet');
export const NETAVARK = '/usr/lib/podman/netavark';
export const CNI_DIR = '/usr/lib/cni';
/** Not the pyenv shim (a bash script): the system interpreter. */
export const PYTHON = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

// ------------------------------------------------------------------------------------------------ statistics
export function sorted(xs: number[]): number[] {
  return [...xs].sort((a, b) => a - b);
}
export function median(xs: number[]): number | null {
  if (!xs.length) return null;
  const s = sorted(xs);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
/** Nearest-rank percentile (p in 0..100). */
export function pct(xs: number[], p: number): number | null {
  if (!xs.length) return null;
  const s = sorted(xs);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
export function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}
/** Element-wise a[i] + b[i] (both arrays must have the same length). */
export function addWise(a: number[], b: number[]): number[] {
  return a.map((x, i) => x + (b[i] ?? 0));
}
/** How many leading/trailing samples "first k vs last k" compares for a run of n. */
export function edgeCount(n: number): number {
  return n >= 500 ? 50 : Math.max(1, Math.floor(n / 10));
}
export function firstLast(xs: number[]): { k: number; first: number | null; last: number | null } {
  const k = edgeCount(xs.length);
  return { k, first: median(xs.slice(0, k)), last: median(xs.slice(-k)) };
}

/** Lets pending signal handlers run (a synchronous loop would never see a Ctrl-C otherwise). Call between
 *  measurements, never inside one. */
export function tick(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

// ------------------------------------------------------------------------------------------------ processes
export interface Run {
  status: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a command to completion; `ms` is its wall time as seen by the caller (fork/exec included). */
export function run(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeout?: number } = {}): Run {
  const t = performance.now();
  const r: SpawnSyncReturns<string> = spawnSync(cmd, args, {
    encoding: 'utf8', input: opts.input, env: opts.env ?? process.env, timeout: opts.timeout ?? 120000, maxBuffer: 64 << 20,
  });
  const ms = performance.now() - t;
  return {
    status: r.status ?? (r.signal ? 128 : 1), stdout: r.stdout ?? '', ms,
    stderr: (r.stderr ?? '') + (r.error ? String(r.error) : '') + (r.signal ? ` (killed by ${r.signal})` : ''),
  };
}

/** Like run(), but throws with the command's output when it fails. */
export function must(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeout?: number } = {}): Run {
  const r = run(cmd, args, opts);
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ').slice(0, 300)} -> ${r.status}: ${r.stderr.trim().slice(0, 600)} ${r.stdout.trim().slice(0, 300)}`);
  }
  return r;
}

/** A command inside the netns /run/netns/NAME (nsenter: same mount namespace, docs/kernel-notes.md §11). */
export function inNs(ns: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeout?: number } = {}): Run {
  return must('nsenter', [`--net=/run/netns/${ns}`, ...args], opts);
}

let _getrusage: ((who: number, buf: Buffer) => number) | null = null;
/** Peak RSS (KiB) of the largest descendant this process has waited for (getrusage(RUSAGE_CHILDREN).ru_maxrss):
 *  a spawned nsenter execs the tool itself, so this covers netavark, the CNI plugins, nsnet's CLI, ip, nft. */
export function childrenMaxRssKiB(): number {
  if (!_getrusage) {
    const koffi = require('koffi') as typeof import('koffi');
    _getrusage = koffi.load('libc.so.6').func('int getrusage(int who, _Out_ uint8_t *usage)') as unknown as (who: number, buf: Buffer) => number;
  }
  const b = Buffer.alloc(256);
  if (_getrusage(-1, b) !== 0) return -1;
  return Number(b.readBigInt64LE(32)); // two struct timeval (16 bytes each), then long ru_maxrss
}

// ------------------------------------------------------------------------------------------------ namespaces
export function netnsList(): string[] {
  try {
    return fs.readdirSync('/run/netns');
  } catch {
    return [];
  }
}

function nsIno(name: string): number | null {
  try {
    return fs.statSync(`/run/netns/${name}`).ino;
  } catch {
    return null;
  }
}

/** PIDs of processes whose netns is one of `names` (all of them were started by this benchmark). */
export function pidsIn(names: string[]): number[] {
  const inos = new Set(names.map(nsIno).filter((x): x is number => x !== null));
  if (!inos.size) return [];
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      if (inos.has(fs.statSync(`/proc/${d}/ns/net`).ino)) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** Deletes the named namespaces (our own: the caller passes names it created), after killing, by PID, any
 *  process inside them (servers this benchmark started there). */
export function deleteNamespaces(names: string[]): void {
  const existing = names.filter((n) => nsIno(n) !== null);
  for (const pid of pidsIn(existing)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  for (const n of existing) run('ip', ['netns', 'del', n]);
}

/** Namespaces of this run: every name under /run/netns starting with one of `prefixes`. */
export function ownNamespaces(prefixes: string[]): string[] {
  return netnsList().filter((n) => prefixes.some((p) => n.startsWith(p)));
}

export function makeHostNetns(name: string): void {
  if (!/^bn[a-z]-/.test(name)) throw new Error(`refusing to create a namespace not named bn?-...: ${name}`);
  must('ip', ['netns', 'add', name]);
  must('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
}

/** What is left in a (throwaway) host netns: veths, all links, nftables tables, and netns matching `prefix`. */
export interface Leaks {
  veths: number;
  links: string[];
  nftTables: string[];
  netns: number;
}
export function leakCheck(hostNs: string, netnsPrefix: string): Leaks {
  const veth = run('ip', ['-n', hostNs, '-o', 'link', 'show', 'type', 'veth']).stdout.trim();
  const links = run('ip', ['-n', hostNs, '-o', 'link', 'show']).stdout.trim().split('\n').filter(Boolean)
    .map((l) => l.split(':')[1].trim().split('@')[0]);
  const tables = run('nsenter', [`--net=/run/netns/${hostNs}`, 'nft', 'list', 'tables']).stdout.trim().split('\n').filter(Boolean)
    .map((l) => l.replace(/^table /, ''));
  return { veths: veth ? veth.split('\n').length : 0, links, nftTables: tables, netns: ownNamespaces([netnsPrefix]).length };
}

export function loadavg(): string {
  return fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

export function machine(): { nproc: number; kernel: string; node: string; cpu: string; memGiB: number; date: string; loadavg: string } {
  const cpu = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) ?? [])[1] ?? 'unknown';
  const mem = Number((fs.readFileSync('/proc/meminfo', 'utf8').match(/MemTotal:\s*(\d+)/) ?? [])[1] ?? 0);
  return {
    nproc: Number(run('nproc', []).stdout.trim()), kernel: fs.readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
    node: process.version, cpu, memGiB: Math.round(mem / 1048576), date: new Date().toISOString(), loadavg: loadavg(),
  };
}

export function ipOf(i: number): string {
  return `10.201.${(i + 2) >> 8}.${(i + 2) & 255}`;
}
