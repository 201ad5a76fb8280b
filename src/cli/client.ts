// The CLI's thin client for the resident helper (src/cli/helper.ts). Bundled alone (dist/nsnet-client.cjs, Node
// built-ins only) and run by dist/nsnet-start.cjs before anything else: when the command is one the helper serves,
// it is handed to a long-lived nsnet process of the same state directory, host netns, mount namespace and build,
// which runs it exactly as the CLI would (same code; the client's argv, environment and working directory) and
// hands back its output and exit status. The client never loads the engine, SQLite, koffi or even `net`: a command
// costs Node's own start, a few synchronous file operations and one signal, plus the engine work (BENCHMARKS.md).
//
// Protocol (all in <root>/helper/<key>/, mode 0700, root's only): `pid` holds the helper's pid and start time; the
// client writes q/req-<id> (atomically: written aside, then renamed) and sends SIGUSR2; the helper claims it by
// renaming it to q/run-<id>, runs it, and writes q/rep-<id> (again atomically); the client polls for that file.
// If the helper dies before claiming, the client takes its request back (its unlink succeeds) and runs the command
// itself; once claimed, a dead helper is an error, never a silent re-run: the command may be half done (the next
// mutating command finishes or rolls it back, as after any crash).
//
// No helper (first use, idle exit, NSNET_NO_HELPER=1, fault injection): the command runs in-process as always, and
// a helper is started in the background, on exit, for the next command.
import type { spawn as Spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { isAlive } from '../kernel/pidstat.js';

/** Commands the helper runs: short, non-interactive, no stdin, no terminal. `run -d` too (see servedCommand);
 *  `run` in the foreground, `exec`, `logs` (they attach to the terminal or stream), `stop` (it may wait for long),
 *  `reconcile` and `check` stay in-process. */
const SERVED = new Set(['create', 'rm', 'start', 'ps', 'inspect', 'port']);
const SERVED_NETWORK = new Set(['create', 'rm', 'remove', 'ls', 'list', 'inspect', 'connect', 'disconnect', 'prune']);
/** Any of these in the environment keeps the command in-process. */
const IN_PROCESS_ENV = ['NSNET_NO_HELPER', 'NSNET_CRASH_AT', 'NSNET_TRACE_POINTS'];
export const DEFAULT_ROOT = '/var/lib/nsnet';

export interface HelperPlan {
  /** The helper's directory: <root>/helper/<host netns ino>-<mount ns ino>-<build> */
  dir: string;
  /** Host netns path to give a helper started for this plan (from --host-netns), if any. */
  hostNetns: string | undefined;
}

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

/** The helper for this command line, or null when the command must run in-process. The key holds everything a
 *  resident process must share with the client to act exactly as the CLI would: the state directory (real path),
 *  the host netns and the mount namespace (inode numbers), and the build (the bundle's mtime and size: a rebuild
 *  gets a new helper, the old one exits when idle). */
export function helperPlan(args: string[], env: NodeJS.ProcessEnv, bundle: string): HelperPlan | null {
  if (IN_PROCESS_ENV.some((k) => env[k])) return null;
  if (process.getuid?.() !== 0 || !servedCommand(args)) return null;
  const g = globals(args)!;
  const hostNetns = g.hostNetns ?? env.NSNET_HOST_NETNS;
  const rawRoot = g.root ?? env.NSNET_ROOT ?? DEFAULT_ROOT;
  if (hostNetns === '' || rawRoot === '') return null;
  try {
    const root = fs.realpathSync(rawRoot); // missing: the in-process path creates it (and reports errors)
    const netIno = fs.statSync(hostNetns ?? '/proc/self/ns/net').ino;
    const mntIno = fs.statSync('/proc/self/ns/mnt').ino;
    const b = fs.statSync(bundle);
    const build = Math.floor(b.mtimeMs).toString(36) + b.size.toString(36);
    return { dir: path.join(root, 'helper', `${netIno}-${mntIno}-${build}`), hostNetns: g.hostNetns };
  } catch {
    return null;
  }
}

export interface Reply {
  code: number;
  out: string;
  err: string;
}

/** The helper serving `dir` (same pid and start time as it recorded), or null. */
export function helperPid(dir: string): number | null {
  return serving(dir)?.pid ?? null;
}

function serving(dir: string): { pid: number; start: string } | null {
  try {
    const [pid, start] = fs.readFileSync(path.join(dir, 'pid'), 'utf8').trim().split(' ');
    return start && isAlive(Number(pid), start) ? { pid: Number(pid), start } : null;
  } catch {
    return null;
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** The helper that claimed request `id` (it renamed it to run-<id>.<pid>.<start>) is still running. */
function claimantAlive(q: string, id: string): boolean {
  const claim = fs.readdirSync(q).find((n) => n.startsWith(`run-${id}.`));
  if (!claim) return false;
  const [pid, start] = claim.slice(`run-${id}.`.length).split('.');
  return isAlive(Number(pid), start);
}

/** Hands the command to the helper and waits for its reply; null when no helper took it (run it in-process). */
export function ask(dir: string, args: string[]): Reply | null {
  const helper = serving(dir);
  if (!helper) return null;
  const id = `${Date.now().toString(36)}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const q = path.join(dir, 'q');
  const req = path.join(q, `req-${id}`);
  const rep = path.join(q, `rep-${id}`);
  const takeBack = () => {
    try {
      fs.unlinkSync(req); // succeeds only while no helper has claimed it
      return true;
    } catch {
      return false;
    }
  };
  try {
    fs.writeFileSync(path.join(q, `.new-${id}`), JSON.stringify({ argv: args, env: process.env, cwd: process.cwd() }), { mode: 0o600 });
    fs.renameSync(path.join(q, `.new-${id}`), req);
  } catch {
    try { fs.unlinkSync(path.join(q, `.new-${id}`)); } catch { /* not written */ }
    return null;
  }
  try {
    process.kill(helper.pid, 'SIGUSR2');
  } catch {
    if (takeBack()) return null; // else a helper claimed it anyway: wait for its reply
  }
  let nextCheck = Date.now() + 20;
  for (let wait = 0.05; ; wait = Math.min(wait * 1.25, 2)) {
    try {
      const text = fs.readFileSync(rep, 'utf8');
      fs.unlinkSync(rep);
      return JSON.parse(text) as Reply;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (Date.now() >= nextCheck) {
      nextCheck = Date.now() + 20;
      // The process we signalled, not its pid file: a helper ending removes the file first, then serves what was
      // already written. Whoever claimed the request answers it as long as it lives (a newer helper may have).
      if (!isAlive(helper.pid, helper.start) && !claimantAlive(q, id)) {
        if (takeBack()) return null; // nobody claimed it: run it here
        if (!fs.existsSync(rep)) {
          throw new Error(`the nsnet helper ended during the command (see ${path.join(path.dirname(dir), 'log')}); the next command finishes or rolls back what it left`);
        }
      }
    }
    Atomics.wait(sleeper, 0, 0, wait);
  }
}

/** Starts a helper for the plan in the background (detached, its own session, output to <root>/helper/log). */
export function startHelper(plan: HelperPlan, start: string): void {
  fs.mkdirSync(plan.dir, { recursive: true, mode: 0o700 });
  // One start at a time: commands finishing while the helper boots do not start more (they would exit at once).
  const marker = path.join(plan.dir, 'starting');
  try {
    if (Date.now() - fs.statSync(marker).mtimeMs < 5000) return;
  } catch { /* none */ }
  fs.writeFileSync(marker, '');
  const log = fs.openSync(path.join(path.dirname(plan.dir), 'log'), 'a', 0o600);
  const env = { ...process.env };
  // The helper starts in /: a relative --host-netns means the same file from there.
  if (plan.hostNetns !== undefined) env.NSNET_HOST_NETNS = path.resolve(plan.hostNetns);
  // Loaded here only: child_process would cost every command ≈0.5 ms at start-up. (In the CJS bundle `require`
  // exists; process.getBuiltinModule, Node ≥ 20.16, serves the ESM build the unit tests import.)
  const { spawn } = (typeof require === 'function' ? require('node:child_process') : process.getBuiltinModule('node:child_process')) as { spawn: typeof Spawn };
  const child = spawn(process.execPath, [start, '--nsnet-helper', plan.dir], {
    detached: true, stdio: ['ignore', log, log], env, cwd: '/',
  });
  child.unref();
  fs.closeSync(log);
}

function startIfPossible(args: string[], start: string, bundle: string): void {
  const plan = helperPlan(args, process.env, bundle);
  if (!plan || helperPid(plan.dir) !== null) return;
  try {
    startHelper(plan, start);
  } catch { /* no helper: commands keep running in-process */ }
}

/** Entry from dist/nsnet-start.cjs: hands the command to a helper, or calls `inProcess` (the whole CLI). */
export function main(start: string, bundle: string, inProcess: () => void): void {
  const args = process.argv.slice(2);
  const plan = helperPlan(args, process.env, bundle);
  if (!plan) {
    // The first command on a new state directory makes it: start the helper once it exists.
    if (servedCommand(args)) process.once('exit', () => startIfPossible(args, start, bundle));
    return inProcess();
  }
  let r: Reply | null;
  try {
    r = ask(plan.dir, args);
  } catch (e) {
    writeAll(2, `Error: ${(e as Error).message}\n`);
    process.exitCode = 1;
    return;
  }
  if (!r) {
    process.once('exit', () => startIfPossible(args, start, bundle));
    return inProcess();
  }
  writeAll(1, r.out);
  writeAll(2, r.err);
  if (process.env.NSNET_HELPER_TRACE) writeAll(2, `nsnet: served by the helper in ${plan.dir}\n`);
  process.exitCode = r.code;
}

/** Plain write(2): touching process.stdout/stderr would build a stream (and load `net` for a pipe), ≈2 ms. */
function writeAll(fd: number, text: string): void {
  const buf = Buffer.from(text);
  for (let off = 0; off < buf.length;) {
    try {
      off += fs.writeSync(fd, buf, off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
      Atomics.wait(sleeper, 0, 0, 1); // a non-blocking pipe that is full: wait for the reader
    }
  }
}
