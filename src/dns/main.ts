// The resolver process: `node dist/src/dns/main.js --view FILE [--pidfile FILE] [--port N] [--ttl S]`.
// Started by the engine inside the host netns (src/engine/dnsctl.ts), one per host. Loads the view, serves, and
// on SIGHUP reloads it; after every successful load it writes the view's generation to FILE.loaded (the engine
// waits for that acknowledgement). SIGTERM/SIGINT: close the sockets and exit 0. SIGUSR2: one line of stats.
// When the view file disappears (its state directory was removed), the process exits by itself.
// Problems are logged one line each to stderr (rate-limited).
import fs from 'node:fs';
import { loadView } from './load.js';
import { Resolver } from './server.js';
import type { DnsDelta } from './answer.js';

// Before anything else: SIGHUP's default action would kill us.
let reloadRequested = false;
let reload: (() => void) | null = null;
process.on('SIGHUP', () => (reload ? reload() : (reloadRequested = true)));

const USAGE = 'usage: main.js --view FILE [--pidfile FILE] [--port N] [--ttl SECONDS]';

function parseArgs(argv: string[]): { view: string; pidfile?: string; port: number; ttl?: number } {
  const out: { view?: string; pidfile?: string; port: number; ttl?: number } = { port: 53 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value\n${USAGE}`);
      return v;
    };
    if (a === '--view') out.view = val();
    else if (a === '--pidfile') out.pidfile = val();
    else if (a === '--port') out.port = Number(val());
    else if (a === '--ttl') out.ttl = Number(val());
    else throw new Error(`unknown argument ${a}\n${USAGE}`);
  }
  if (!out.view) throw new Error(USAGE);
  if (!Number.isInteger(out.port) || out.port < 1 || out.port > 65535) throw new Error(`invalid --port\n${USAGE}`);
  if (out.ttl !== undefined && (!Number.isInteger(out.ttl) || out.ttl < 0)) throw new Error(`invalid --ttl\n${USAGE}`);
  return out as { view: string; pidfile?: string; port: number; ttl?: number };
}

/** At most `burst` lines per 10 s; then one line saying how many were left out. */
function makeLogger(burst = 50): (msg: string) => void {
  let windowStart = 0;
  let n = 0;
  let suppressed = 0;
  return (msg: string) => {
    const now = Date.now();
    if (now - windowStart > 10000) {
      if (suppressed) process.stderr.write(`${new Date(now).toISOString()} nsnet-dns: (${suppressed} messages suppressed)\n`);
      windowStart = now;
      n = 0;
      suppressed = 0;
    }
    if (++n > burst) {
      suppressed++;
      return;
    }
    process.stderr.write(`${new Date(now).toISOString()} nsnet-dns: ${String(msg).replace(/\s*\n\s*/g, ' | ')}\n`);
  };
}

function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

async function main(): Promise<void> {
  const log = makeLogger();
  let args: ReturnType<typeof parseArgs>;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(2);
  }
  process.on('uncaughtException', (e) => log(`uncaught: ${e.stack ?? e}`));
  process.on('unhandledRejection', (e) => log(`unhandled rejection: ${(e as Error)?.stack ?? e}`));

  const resolver = new Resolver({ port: args.port, ttl: args.ttl, log });

  // The view file is rewritten whole by the engine only now and then (network changes, reconcile); container
  // changes are appended to FILE.delta as JSON lines, each applied in place (O(that container)). A rewritten view
  // (new inode or size or mtime) is loaded whole; deltas not newer than the loaded view are skipped.
  let loadedStat = '';
  let deltaOffset = 0;
  const deltaFile = `${args.view}.delta`;
  const statKey = () => {
    const st = fs.statSync(args.view);
    return `${st.ino}:${st.size}:${st.mtimeMs}`;
  };
  const readDeltas = async (): Promise<void> => {
    let fd: number;
    try {
      fd = fs.openSync(deltaFile, 'r');
    } catch {
      return;
    }
    try {
      const size = fs.fstatSync(fd).size;
      if (size < deltaOffset) deltaOffset = 0; // truncated by a full rewrite
      if (size === deltaOffset) return;
      const buf = Buffer.alloc(size - deltaOffset);
      fs.readSync(fd, buf, 0, buf.length, deltaOffset);
      const text = buf.toString('utf8');
      const end = text.lastIndexOf('\n') + 1; // only complete lines
      for (const line of text.slice(0, end).split('\n')) {
        if (!line) continue;
        const d = JSON.parse(line) as DnsDelta;
        if (d.generation > resolver.generation) await resolver.applyDelta(d);
      }
      deltaOffset += Buffer.byteLength(text.slice(0, end));
    } finally {
      fs.closeSync(fd);
    }
  };
  const loadOnce = async (): Promise<void> => {
    const key = statKey();
    if (key !== loadedStat) {
      const v = await loadView(args.view);
      await resolver.setView(v);
      loadedStat = key;
      deltaOffset = 0;
    }
    await readDeltas();
    writeAtomic(`${args.view}.loaded`, `${resolver.generation}\n`);
  };

  try {
    await loadOnce();
  } catch (e) {
    log(`cannot load the view: ${(e as Error).message}`);
    await resolver.close();
    process.exit(1);
  }
  if (args.pidfile) writeAtomic(args.pidfile, `${process.pid}\n`);

  // Reloads never overlap; a SIGHUP during a reload causes one more reload after it.
  let running = false;
  let again = false;
  reload = () => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    void (async () => {
      do {
        again = false;
        try {
          await loadOnce();
        } catch (e) {
          log(`reload failed, keeping the previous view: ${(e as Error).message}`);
        }
      } while (again);
      running = false;
    })();
  };
  if (reloadRequested) reload();

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    try {
      await resolver.close();
    } catch (e) {
      log(`close: ${(e as Error).message}`);
    }
    if (args.pidfile) {
      try {
        if (fs.readFileSync(args.pidfile, 'utf8').trim() === String(process.pid)) fs.rmSync(args.pidfile, { force: true });
      } catch {
        /* gone */
      }
    }
    process.exit(0);
  };
  // The view file going away means our host's state directory was removed (a throwaway test host, a bench run,
  // a purge): nobody will stop us, and we would keep its network namespace alive. Exit. (Two misses in a row:
  // the engine replaces the file by rename, which is atomic, but be conservative.) This timer also keeps the
  // process up while no address is bound.
  let misses = 0;
  setInterval(() => {
    if (fs.existsSync(args.view)) {
      misses = 0;
      return;
    }
    if (++misses >= 2) {
      log(`view file ${args.view} is gone; exiting`);
      void stop();
    }
  }, 1000);
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
  process.on('SIGUSR2', () => process.stderr.write(`${JSON.stringify(resolver.stats())}\n`));
}

void main();
