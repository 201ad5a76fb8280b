// The resolver process: `node dist/src/dns/main.js --view FILE [--pidfile FILE] [--port N] [--ttl S] [--parent PID]`.
// Run by its supervisor (supervisor.ts, which the engine starts inside the host netns: src/engine/dnsctl.ts), one
// per host. Loads the view, serves, and on SIGHUP reloads it; after every successful load it writes the view's
// generation to FILE.loaded (the engine waits for that acknowledgement). SIGTERM/SIGINT: close the sockets and
// exit 0. SIGUSR2: one line of stats. When the view file disappears (its state directory was removed), or its
// --parent (the supervisor) is gone, the process exits by itself.
// The host's upstreams: when the view names the host's resolv.conf ("resolvConf"), that file is followed: read
// again whenever its identity, size or times change (checked every second; a file replaced by rename is a new
// inode), so a DHCP renewal or a VPN changing it takes effect without any nsnet command. Otherwise (or while the
// file cannot be read) the view's "upstreams" are used.
// Problems are logged one line each to stderr (rate-limited).
//
// The embedded resolver for user-defined networks (Docker's embedded DNS, Podman's aardvark-dns): this process,
// and the modules of src/dns/ (imported by path; there is no barrel):
//   wire.ts    hand-written DNS wire code for the hot path: parse header + question + EDNS OPT, build replies by
//              copying the question and appending records (no dns-packet at run time; it is used by the tests).
//   answer.ts  the pure core: DnsView (from the engine), indexView() -> IndexedView (per network: Map name ->
//              addresses, Map address -> PTR name; O(entries) to build), answer() (O(1) per query).
//   forward.ts upstream forwarding: UDP from a small socket pool (random ids, replies checked against the upstream
//              and the question), TCP when the client used TCP or the answer came back truncated; upstreams in
//              order within a 2 s budget; SERVFAIL/REFUSED -> next upstream.
//   server.ts  Resolver: one UDP socket + one TCP listener per gateway address (never 0.0.0.0): the local address
//              a query arrives on tells the network. setView swaps the index in one assignment and (re)binds only
//              the addresses that changed; unbindable addresses are retried.
//   load.ts    loadView(): where the process gets its view (today the JSON file the engine writes).
//   main.ts    the long-lived process: --view FILE [--pidfile F] [--port N] [--ttl S]; SIGHUP reloads and
//              acknowledges in FILE.loaded; SIGTERM exits 0; SIGUSR2 prints stats; one stderr line per problem;
//              follows the host's resolv.conf named in the view.
//   supervisor.ts  what the engine starts: runs main.ts as its child and restarts it (with backoff) when it dies.
//   files.ts   the files under <root>/dns/: written aside and renamed, or opened O_NOFOLLOW, regular files only.
//
// Shared resources are shared fairly: TCP connections per listening address (256) with at most 16 per source
// and the heaviest source's oldest connection closed for a newcomer when all are taken, each whole message within
// 3 s, and no more queries read from a connection while 256 KiB of its replies wait to be sent; queries waiting
// for upstreams (4096) with at most 256 per source, the heaviest source's oldest query
// giving way (SERVFAIL) to a newcomer when all are taken.
//
// Semantics: a query arriving on network N's gateway from address X is answered from N's names, then from the
// names of X's other networks (X is a container on several networks: Docker resolves those too); askers outside
// N's subnet are REFUSED (no reading another network's names by routing to its gateway). Names: container name,
// aliases, short id, each also as "name.network" (a real name wins over such a form: container "web.hn" over
// container web's "web.hn"); ASCII case-insensitive; trailing dot optional. "name.network" of a container on a
// network the asker is not on, and PTRs of any nsnet subnet, are NXDOMAIN, never forwarded. A -> addresses
// (several for a shared alias, rotated); AAAA and other types of a known name -> NODATA; PTR for the asker's
// networks' containers ("name.network"); unknown single labels and unknown addresses of those subnets ->
// NXDOMAIN; everything else forwarded (the asker's --dns servers instead of the host's; a --dns that is this
// resolver itself is dropped, leaving the host's), except on internal networks (REFUSED).
// TTL 5 s (see DEFAULT_TTL). Replies over 512 bytes (or the EDNS size, capped at 1232) carry what fits and TC.
import fs from 'node:fs';
import { openRead, writeFileAtomic } from './files.js';
import { loadView } from './load.js';
import { parseResolvConf } from './resolvconf.js';
import { Resolver } from './server.js';
import type { DnsDelta } from './answer.js';

// Before anything else: SIGHUP's default action would kill us.
let reloadRequested = false;
let reload: (() => void) | null = null;
process.on('SIGHUP', () => (reload ? reload() : (reloadRequested = true)));
// SIGUSR2's default action would kill us too.
let printStats: (() => void) | null = null;
process.on('SIGUSR2', () => printStats?.());
// Under the supervisor (an IPC channel): say that signals are safe now (it holds SIGHUPs back until then), and
// end with it: the channel closes when it dies, even by SIGKILL.
let parentGone: (() => void) | null = null;
if (process.send) {
  process.send('ready');
  process.channel?.unref();
  process.on('disconnect', () => (parentGone ? parentGone() : process.exit(0)));
}

const USAGE = 'usage: main.js --view FILE [--pidfile FILE] [--port N] [--ttl SECONDS] [--parent PID]';

interface Args { view: string; pidfile?: string; port: number; ttl?: number; parent?: number }

function parseArgs(argv: string[]): Args {
  const out: Partial<Args> & { port: number } = { port: 53 };
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
    else if (a === '--parent') out.parent = Number(val());
    else throw new Error(`unknown argument ${a}\n${USAGE}`);
  }
  if (!out.view) throw new Error(USAGE);
  if (!Number.isInteger(out.port) || out.port < 1 || out.port > 65535) throw new Error(`invalid --port\n${USAGE}`);
  if (out.ttl !== undefined && (!Number.isInteger(out.ttl) || out.ttl < 0)) throw new Error(`invalid --ttl\n${USAGE}`);
  if (out.parent !== undefined && (!Number.isInteger(out.parent) || out.parent < 1)) throw new Error(`invalid --parent\n${USAGE}`);
  return out as Args;
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

/** Small status files (acknowledgement, pid): readable by all, written aside and renamed, never through a
 *  symlink (files.ts). */
function writeAtomic(file: string, text: string): void {
  writeFileAtomic(file, text, 0o644);
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
      fd = openRead(deltaFile);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') log(`cannot read ${deltaFile}: ${(e as Error).message}`);
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
  // The followed resolv.conf (see the top of this file).
  let resolvPath: string | null = null;
  let resolvKey = '';
  const followResolv = () => {
    if (!resolvPath) return;
    let key: string;
    try {
      const st = fs.statSync(resolvPath);
      key = `${resolvPath}:${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
    } catch (e) {
      key = `${resolvPath}:${(e as NodeJS.ErrnoException).code}`;
      if (key !== resolvKey) log(`cannot read ${resolvPath} (${(e as Error).message}); keeping the upstreams`);
      resolvKey = key;
      return;
    }
    if (key === resolvKey) return;
    resolvKey = key;
    let text: string;
    try {
      text = fs.readFileSync(resolvPath, 'utf8');
    } catch (e) {
      log(`cannot read ${resolvPath} (${(e as Error).message}); keeping the upstreams`);
      return;
    }
    const ns = parseResolvConf(text).nameservers;
    resolver.setHostUpstreams(ns);
    log(`upstreams from ${resolvPath}: ${ns.join(' ') || '(none)'}`);
  };

  const loadOnce = async (): Promise<void> => {
    const key = statKey();
    if (key !== loadedStat) {
      const v = await loadView(args.view);
      const rc = typeof v.resolvConf === 'string' && v.resolvConf ? v.resolvConf : null;
      if (rc !== resolvPath) {
        resolvPath = rc;
        resolvKey = '';
      }
      followResolv();
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
    // The supervisor gone (killed): exit, so that the one `reconcile` starts finds the ports free.
    if (args.parent && process.ppid !== args.parent) {
      log(`the supervisor (${args.parent}) is gone; exiting`);
      void stop();
      return;
    }
    followResolv();
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
  printStats = () => process.stderr.write(`${JSON.stringify(resolver.stats())}\n`);
  parentGone = () => {
    log('the supervisor is gone; exiting');
    void stop();
  };
}

void main();
