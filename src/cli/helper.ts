// The resident helper: a long-lived nsnet process that runs CLI commands handed to it by thin clients
// (src/cli/client.ts, which also describes the protocol), so that a command does not pay for loading the engine,
// SQLite, koffi and libnftables, nor for opening the store, the netlink socket and the nftables context.
//
// One helper per state directory, host netns, mount namespace and build (its directory's name says which),
// started by the first client that found none; it exits after NSNET_HELPER_IDLE_MS (default 60 s) without a
// command, or as soon as its directory is removed or taken over by another helper. Commands run one at a time,
// each with the client's argv, environment and working directory, through the very code of the CLI (runCli),
// output captured and handed back with the exit status.
import fs from 'node:fs';
import path from 'node:path';
import { FileLock } from '../kernel/flock.js';
import { processStart } from '../kernel/pidstat.js';

export interface Request {
  argv: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
}
type Reply = { code: number; out: string; err: string };
type RunCli = (argv: string[]) => Promise<void>;

/** Runs one request with the client's environment, directory and output streams in place of the helper's own. */
async function runOne(req: Request, runCli: RunCli): Promise<Reply> {
  const savedEnv = process.env;
  const out: string[] = [];
  const err: string[] = [];
  const wOut = process.stdout.write;
  const wErr = process.stderr.write;
  const capture = (buf: string[]) => ((chunk: string | Uint8Array) => {
    buf.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  }) as typeof process.stdout.write;
  process.chdir(req.cwd);
  process.env = req.env;
  process.exitCode = 0;
  process.stdout.write = capture(out);
  process.stderr.write = capture(err);
  try {
    await runCli(['node', 'nsnet', ...req.argv]);
  } finally {
    process.stdout.write = wOut;
    process.stderr.write = wErr;
    process.env = savedEnv;
    process.chdir('/');
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = 0;
  return { code, out: out.join(''), err: err.join('') };
}

function writeAtomic(file: string, text: string): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}`);
  fs.writeFileSync(tmp, text, { mode: 0o600 });
  fs.renameSync(tmp, file);
}

export async function serveHelper(dir: string, runCli: RunCli): Promise<void> {
  const idleMs = Number(process.env.NSNET_HELPER_IDLE_MS ?? 60000);
  const q = path.join(dir, 'q');
  fs.mkdirSync(q, { recursive: true, mode: 0o700 });
  // Requests are commands run as root: serve only from directories nobody else can write to.
  for (const d of [path.dirname(dir), dir, q]) {
    const st = fs.lstatSync(d);
    if (!st.isDirectory() || st.uid !== process.getuid?.() || (st.mode & 0o022) !== 0) {
      process.stderr.write(`nsnet helper: ${d} must be a directory of ours, not writable by others: not serving\n`);
      return;
    }
  }
  const lock = new FileLock(path.join(dir, 'lock'));
  if (!lock.tryAcquire()) return; // another helper serves this directory
  const pidFile = path.join(dir, 'pid');
  const me = `${process.pid} ${processStart(process.pid)}`;
  const claimTag = me.replace(' ', '.'); // run-<id>.<pid>.<start>: clients see who claimed their request

  let last = Date.now();
  /** One pass: claims and runs every waiting request, oldest first, until none is left. */
  const pass = async () => {
    for (;;) {
      let names: string[];
      try {
        names = fs.readdirSync(q).filter((n) => n.startsWith('req-')).sort(); // ids begin with the time: oldest first
      } catch {
        return; // directory removed: the loop below ends the helper
      }
      if (!names.length) return;
      for (const n of names) {
        const id = n.slice(4);
        const run = path.join(q, `run-${id}.${claimTag}`);
        try {
          fs.renameSync(path.join(q, n), run); // claimed: its client can no longer take it back
        } catch {
          continue; // taken back by its client
        }
        let reply: Reply;
        try {
          const req = JSON.parse(fs.readFileSync(run, 'utf8')) as Request;
          reply = await runOne(req, runCli);
        } catch (e) {
          reply = { code: 1, out: '', err: `Error: ${(e as Error).message}\n` };
        }
        try {
          writeAtomic(path.join(q, `rep-${id}`), JSON.stringify(reply));
          fs.unlinkSync(run);
        } catch { /* directory removed */ }
        last = Date.now();
      }
    }
  };
  // Passes never overlap; a signal during one makes it look again before it ends.
  let running: Promise<void> | null = null;
  let again = false;
  const drain = (): Promise<void> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          await pass();
        } while (again);
      } finally {
        running = null;
      }
    })();
    return running;
  };
  // The handler exists before the pid file tells clients to signal us (SIGUSR2 would otherwise end the process),
  // and stays until the process ends.
  process.on('SIGUSR2', () => void drain());
  writeAtomic(pidFile, me + '\n');
  try { fs.unlinkSync(path.join(dir, 'starting')); } catch { /* none */ }

  const ours = () => {
    try {
      return fs.readFileSync(pidFile, 'utf8').trim() === me;
    } catch {
      return false;
    }
  };
  const tick = Math.min(1000, Math.max(50, idleMs / 4));
  for (;;) {
    await new Promise((r) => setTimeout(r, tick));
    await drain(); // a lost signal costs at most one tick
    if (!ours() || Date.now() - last >= idleMs) break;
  }
  // Ending: new clients stop finding us first; those that read the pid just before get served, then we go (a
  // request written after this last pass is taken back by its client once this process is gone).
  if (ours()) {
    try { fs.unlinkSync(pidFile); } catch { /* gone */ }
  }
  await drain();
  lock.release();
}
