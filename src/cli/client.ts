// The CLI's Node-side entry for the resident helper (src/cli/helper.ts). Bundled alone (dist/nsnet-client.cjs,
// Node built-ins only) and run by dist/nsnet-start.cjs before anything else.
//
// The fast path does not start Node at all: bin/nsnet execs dist/nsnet-fast, a small C program
// (src/cli/client.c) that hands the command line to the helper over a Unix socket and relays its output, exit
// status and the launch of container processes; it execs Node (this file, then the whole CLI in-process) only when
// no helper serves the command. This file decides which commands a helper serves (servedCommand: the helper
// asks it too), where a helper's socket is (helperPlan: the C client computes the same socket path) and, after a served
// command ran in-process, starts a helper in the background for the next ones.
import type { spawn as Spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { unrestricted } from '../kernel/creds.js';
/** Commands the helper runs: short, non-interactive, no terminal, no stdin but `cni`'s (the network configuration,
 *  which the fast client reads whole and sends with the request: src/cli/input.ts). `run -d` too (see servedCommand);
 *  `run` in the foreground, `exec`, `logs` (they attach to the terminal or stream), `stop` (it may wait for long),
 *  `reconcile` and `check` stay in-process. */
const SERVED = new Set(['create', 'rm', 'start', 'ps', 'inspect', 'port', 'cni']);
const SERVED_NETWORK = new Set(['create', 'rm', 'remove', 'ls', 'list', 'inspect', 'connect', 'disconnect', 'prune']);
/** Any of these in the environment keeps the command in-process (the C client checks the same list). */
export const IN_PROCESS_ENV = ['NSNET_NO_HELPER', 'NSNET_CRASH_AT', 'NSNET_TRACE_POINTS'];
export const DEFAULT_ROOT = '/var/lib/nsnet';

/** Global options before the command; null when something else (help, version, an unknown flag) comes first. */
function globals(args: string[]): { root?: string; hostNetns?: string; rest: string[] } | null {
  const g: { root?: string; hostNetns?: string } = {};
  let i = 0;
  for (; i < args.length && args[i].startsWith('-'); i++) {
    const a = args[i];
    if (a === '--root' && i + 1 < args.length) g.root = args[++i];
    else if (a.startsWith('--root=')) g.root = a.slice(7);
    else if (a === '--host-netns' && i + 1 < args.length) g.hostNetns = args[++i];
    else if (a.startsWith('--host-netns=')) g.hostNetns = a.slice(14);
    else return null;
  }
  return { ...g, rest: args.slice(i) };
}

/** Whether the helper serves this command line (args = argv without node and script). Pure. */
export function servedCommand(args: string[]): boolean {
  const g = globals(args);
  if (!g || !g.rest.length) return false;
  const [cmd, sub] = g.rest;
  const end = g.rest.indexOf('--');
  const opts = end < 0 ? g.rest : g.rest.slice(0, end);
  // Help output is left to the in-process path (it is not worth a helper).
  if (opts.some((a) => a === '-h' || a === '--help')) return false;
  // `run` only detached, and only when `--` ends nsnet's options: without it, a `-d` could belong to the
  // container's command, and a foreground run must stay attached to this terminal.
  if (cmd === 'run') return end > 0 && opts.some((a) => a === '-d' || a === '--detach');
  return cmd === 'network' ? SERVED_NETWORK.has(sub) : SERVED.has(cmd);
}

export interface HelperPlan {
  /** The helper's socket: <root>/helper/<host netns ino>-<mount ns ino>-<build>.sock */
  socket: string;
  /** Host netns path to give a helper started for this plan (from --host-netns), if any. */
  hostNetns: string | undefined;
}

/** The build's identity, as the C client computes it: the bundle's mtime (ms) and size, in base 36. */
export function buildId(bundle: string): string {
  const b = fs.statSync(bundle);
  return Math.floor(b.mtimeMs).toString(36) + b.size.toString(36);
}

/** The helper socket for this command line, or null when the command must run in-process. The key holds
 *  everything a resident process must share with the client to act exactly as the CLI would: the state directory
 *  (real path), the host netns and the mount namespace (inode numbers), and the build (a rebuild gets a new
 *  helper; the old one exits when idle). `cwd` and `proc` are the client's: the helper computes a client's plan
 *  from its request and /proc/<client pid>, to check that the client is one it serves. */
export function helperPlan(args: string[], env: NodeJS.ProcessEnv, bundle: string, cwd = process.cwd(), proc = '/proc/self'): HelperPlan | null {
  if (IN_PROCESS_ENV.some((k) => env[k])) return null;
  if (!servedCommand(args)) return null;
  const g = globals(args)!;
  const hostNetns = g.hostNetns ?? env.NSNET_HOST_NETNS;
  const rawRoot = g.root ?? env.NSNET_ROOT ?? DEFAULT_ROOT;
  if (hostNetns === '' || rawRoot === '') return null;
  try {
    const root = fs.realpathSync(path.resolve(cwd, rawRoot)); // missing: the in-process path creates it (and reports errors)
    const netIno = fs.statSync(hostNetns === undefined ? `${proc}/ns/net` : path.resolve(cwd, hostNetns)).ino;
    const mntIno = fs.statSync(`${proc}/ns/mnt`).ino;
    return { socket: path.join(root, 'helper', `${netIno}-${mntIno}-${buildId(bundle)}.sock`), hostNetns: g.hostNetns };
  } catch {
    return null;
  }
}

/** A directory nobody but root can change: root's, not writable by group or others, not a symlink. */
export function trustedDir(dir: string): boolean {
  try {
    const st = fs.lstatSync(dir);
    return st.isDirectory() && st.uid === 0 && (st.mode & 0o022) === 0;
  } catch {
    return false;
  }
}

/** Starts a helper for the plan in the background (detached, its own session, output to <root>/helper/log), with
 *  an environment of its own: it serves each request with that client's environment and keeps none. */
export function startHelper(plan: HelperPlan, start: string): void {
  const dir = path.dirname(plan.socket);
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  if (!trustedDir(dir) || !trustedDir(path.dirname(dir))) return;
  // One start at a time: commands finishing while the helper boots do not start more (they would exit at once).
  const marker = plan.socket.replace(/\.sock$/, '.starting');
  try {
    fs.closeSync(fs.openSync(marker, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600));
  } catch {
    try {
      if (Date.now() - fs.lstatSync(marker).mtimeMs < 5000) return;
      fs.unlinkSync(marker); // a start that failed: the next command tries again
    } catch { /* raced with another start */ }
    return;
  }
  const log = fs.openSync(path.join(dir, 'log'), fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o600);
  const env: NodeJS.ProcessEnv = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };
  for (const k of ['NSNET_HELPER_IDLE_MS', 'NSNET_DEBUG']) if (process.env[k]) env[k] = process.env[k];
  // Fault injection (tests only): the helper this command starts kills itself at that crash point.
  if (process.env.NSNET_HELPER_CRASH_AT) env.NSNET_CRASH_AT = process.env.NSNET_HELPER_CRASH_AT;
  // The helper starts in /: a relative --host-netns means the same file from there.
  const hn = plan.hostNetns ?? process.env.NSNET_HOST_NETNS;
  if (hn !== undefined) env.NSNET_HOST_NETNS = path.resolve(hn);
  try {
    // posix_spawn through the CLI's FFI (src/kernel/pspawn.ts, registered by main.ts): no fork of this process
    // and no child_process module to load, which is most of what starting a helper costs the first command.
    const fast = (globalThis as { __nsnetSpawnDetached?: SpawnDetached }).__nsnetSpawnDetached;
    if (fast) {
      fast(process.execPath, [process.execPath, start, '--nsnet-helper', plan.socket], env as Record<string, string>, '/', log);
      return;
    }
    // Loaded here only: child_process costs a command ≈4 ms of start-up. (In the CJS bundle `require` exists;
    // process.getBuiltinModule, Node ≥ 20.16, serves the ESM build the unit tests import.)
    const { spawn } = (typeof require === 'function' ? require('node:child_process') : process.getBuiltinModule('node:child_process')) as { spawn: typeof Spawn };
    const child = spawn(process.execPath, [start, '--nsnet-helper', plan.socket], {
      detached: true, stdio: ['ignore', log, log], env, cwd: '/',
    });
    child.unref();
  } finally {
    fs.closeSync(log);
  }
}

type SpawnDetached = (file: string, argv: string[], env: Record<string, string>, cwd: string, logFd: number) => number;

/** After a served command ran in-process: start a helper, if this client may (root, unrestricted) and the fast
 *  client exists to use it. */
function startIfPossible(args: string[], start: string, bundle: string): void {
  // Only after a command that succeeded: it passed the state directory's checks (engine/statedir.ts), so
  // nothing is made in a directory another user controls (a refused one, /proc/1, ...).
  if (Number(process.exitCode ?? 0) !== 0) return;
  if (process.getuid?.() !== 0 || !fs.existsSync(path.join(path.dirname(start), 'nsnet-fast'))) return;
  // Only for the state directory the command used (main.ts records it): a command that opened none (a CNI VERSION
  // probe, help) must not make a helper directory in the default root. `cni` may have used its configuration's.
  const used = (globalThis as { __nsnetRoots?: Set<string> }).__nsnetRoots;
  const env = globals(args)?.rest[0] === 'cni' && used?.size === 1 ? { ...process.env, NSNET_ROOT: [...used][0] } : process.env;
  const plan = helperPlan(args, env, bundle);
  const root = plan && path.dirname(path.dirname(plan.socket));
  if (!plan || !root || !used?.has(root) || !unrestricted() || !trustedDir(root)) return;
  try {
    startHelper(plan, start);
  } catch { /* no helper: commands keep running in-process */ }
}

/** Entry from dist/nsnet-start.cjs: runs the command in-process (`inProcess`, the whole CLI) and, for a command a
 *  helper would serve, starts one on exit. `helperUp`: the C client found a helper serving and ran the command
 *  here anyway (the helper was busy, or does not serve this client): no helper to start. */
export function main(start: string, bundle: string, inProcess: () => void, helperUp = false): void {
  const args = process.argv.slice(2);
  if (!helperUp && servedCommand(args)) process.once('exit', () => startIfPossible(args, start, bundle));
  inProcess();
}
