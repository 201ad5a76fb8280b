// The resolver's supervisor: `node dist/src/dns/supervisor.js --view FILE [main.js's other arguments]`.
// What the engine starts (src/engine/dnsctl.ts) and what <root>/dns/pid names. It runs the resolver
// (main.js, same arguments) as its child and starts it again whenever it dies (killed, crashed, OOM), after a
// backoff: 100 ms, doubling up to 10 s while the child keeps dying within 10 s of its start, back to 100 ms after
// a child that lived longer. A restarted resolver loads the whole view and delta log itself and acknowledges in
// FILE.loaded, so nothing is lost while it was down.
//   SIGHUP, SIGUSR2  passed on to the child (a SIGHUP while none runs is not needed: the next child loads all).
//   SIGTERM, SIGINT  passed on; exits 0 once the child is gone (SIGKILL after 1.5 s).
//   child exit 0     the resolver ended on purpose (its view file is gone, or it was told to stop): exit 0 too.
// The child's pid (and start time) is kept in DIR/resolver.pid, DIR being the view's directory. The child
// exits by itself when this process dies (main.js watches its parent), so no orphan keeps the ports.
// Deliberately small: Node built-ins and pidstat only, nothing of the resolver.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { processStart } from '../kernel/pidstat.js';
import { writeFileAtomic } from './files.js';

const args = process.argv.slice(2);
const vi = args.indexOf('--view');
const view = vi >= 0 ? args[vi + 1] : undefined;
if (!view) {
  process.stderr.write('usage: supervisor.js --view FILE [resolver arguments...]\n');
  process.exit(2);
}
const childPidFile = path.join(path.dirname(view), 'resolver.pid');
const main = path.join(path.dirname(new URL(import.meta.url).pathname), 'main.js');

const MIN_BACKOFF = 100;
const MAX_BACKOFF = 10000;
const HEALTHY_MS = 10000;

let child: ChildProcess | null = null;
/** The child has its signal handlers (its 'ready' message): before that a SIGHUP or SIGUSR2 would kill it. */
let ready = false;
/** A SIGHUP that came before `ready`: passed on then. */
let pendingHup = false;
let stopping = false;
let backoff = MIN_BACKOFF;
let restartTimer: NodeJS.Timeout | null = null;

const log = (msg: string) => process.stderr.write(`${new Date().toISOString()} nsnet-dns supervisor: ${msg}\n`);

function start(): void {
  restartTimer = null;
  if (stopping) return;
  const startedAt = Date.now();
  // The child gets our environment, which the engine already reduced to what the resolver needs.
  const c = spawn(process.execPath, [main, ...args, '--parent', String(process.pid)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  child = c;
  ready = false;
  pendingHup = false;
  c.on('message', (m) => {
    if (m !== 'ready' || child !== c) return;
    ready = true;
    if (pendingHup) {
      pendingHup = false;
      pass('SIGHUP');
    }
  });
  c.on('error', (e) => log(`cannot start the resolver: ${e.message}`));
  if (c.pid !== undefined) {
    try {
      writeFileAtomic(childPidFile, `${c.pid} ${processStart(c.pid) ?? ''}\n`, 0o644);
    } catch (e) {
      log(`cannot write ${childPidFile}: ${(e as Error).message}`);
    }
  }
  c.on('exit', (code, sig) => {
    if (child === c) child = null;
    if (stopping) process.exit(0);
    if (code === 0) {
      log('the resolver ended by itself; exiting');
      process.exit(0);
    }
    if (!fs.existsSync(view!)) {
      log(`view file ${view} is gone; exiting`);
      process.exit(0);
    }
    const lived = Date.now() - startedAt;
    backoff = lived >= HEALTHY_MS ? MIN_BACKOFF : Math.min(backoff * 2, MAX_BACKOFF);
    const wait = lived >= HEALTHY_MS ? MIN_BACKOFF : backoff;
    log(`the resolver ${sig ? `was killed by ${sig}` : `exited with status ${code}`} after ${lived} ms; restarting in ${wait} ms`);
    restartTimer = setTimeout(start, wait);
  });
}

function pass(sig: NodeJS.Signals): void {
  if (!ready && (sig === 'SIGHUP' || sig === 'SIGUSR2')) {
    // No child yet, or one still starting: it will read everything when it loads; a SIGHUP that came meanwhile
    // is passed on once it can take it (it may have read the files just before they changed).
    if (sig === 'SIGHUP') pendingHup = true;
    return;
  }
  try {
    child?.kill(sig);
  } catch {
    /* gone */
  }
}

process.on('SIGHUP', () => pass('SIGHUP'));
process.on('SIGUSR2', () => pass('SIGUSR2'));
const stop = () => {
  if (stopping) return;
  stopping = true;
  if (restartTimer) clearTimeout(restartTimer);
  if (!child) process.exit(0);
  pass('SIGTERM');
  setTimeout(() => {
    pass('SIGKILL');
    process.exit(0);
  }, 1500).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
start();
