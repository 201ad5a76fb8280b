// DNS load generator: many queries in flight over UDP from one socket, against nsnet's resolver (started here as
// its own process, as the engine starts it) or any server given with --target. Loopback only. Prints JSON.
//
//   node dist/bench/dns-qps.js [--target IP:PORT] [--compare] [--duration S] [--warmup S] [--inflight N]
//                              [--mix a|aaaa|nx|mixed] [--names N] [--clients N]
//
// Without --target it writes a view with one network (gateway 127.0.0.2, --names containers) and runs
// dist/src/dns/main.js on a random port; --compare then runs the same load against Podman's aardvark-dns
// (Debian package aardvark-dns) serving the same names on 127.0.0.5. Latency is measured per query (send ->
// reply) into a 1-µs histogram.
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import dnsPacket from 'dns-packet';

interface Opts {
  target: string;
  duration: number;
  warmup: number;
  inflight: number;
  mix: string;
  names: number;
  clients: number;
  timeoutMs: number;
  compare: boolean;
}

interface ClientResult {
  sent: number;
  received: number;
  lost: number;
  bad: number;
  rcodes: number[];
  hist: number[]; // sparse [us, count, us, count...]
  measuredMs: number;
}

const HIST_MAX_US = 200000;

function isLoopback(host: string): boolean {
  return /^127\.\d+\.\d+\.\d+$/.test(host) || host === '::1';
}

function parseOpts(argv: string[]): Opts {
  const o: Opts = { target: '', duration: 5, warmup: 1, inflight: 128, mix: 'a', names: 1000, clients: 1, timeoutMs: 1000, compare: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--compare') {
      o.compare = true;
      continue;
    }
    const v = argv[++i];
    if (v === undefined) throw new Error(`${a} needs a value`);
    if (a === '--target') o.target = v;
    else if (a === '--duration') o.duration = Number(v);
    else if (a === '--warmup') o.warmup = Number(v);
    else if (a === '--inflight') o.inflight = Number(v);
    else if (a === '--mix') o.mix = v;
    else if (a === '--names') o.names = Number(v);
    else if (a === '--clients') o.clients = Number(v);
    else if (a === '--timeout-ms') o.timeoutMs = Number(v);
    else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

/** The query names of a mix: A for known names, AAAA for known names, NXDOMAIN single labels, or all three. */
function queries(mix: string, names: number): Buffer[] {
  const out: Buffer[] = [];
  const n = Math.min(names, 1000);
  const mk = (name: string, type: 'A' | 'AAAA') =>
    dnsPacket.encode({ type: 'query', id: 0, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name, class: 'IN' }] });
  for (let i = 0; i < n; i++) {
    if (mix === 'a' || mix === 'mixed') out.push(mk(`c${(i * 7919) % names}`, 'A'));
    if (mix === 'aaaa' || mix === 'mixed') out.push(mk(`c${(i * 7919) % names}`, 'AAAA'));
    if (mix === 'nx' || mix === 'mixed') out.push(mk(`nosuch${i}`, 'A'));
  }
  if (!out.length) throw new Error(`unknown --mix ${mix}`);
  return out;
}

/** One client: a connected UDP socket keeping `inflight` queries outstanding. */
function client(o: Opts, host: string, port: number): Promise<ClientResult> {
  return new Promise((resolve, reject) => {
    const qs = queries(o.mix, o.names);
    const sock = dgram.createSocket('udp4');
    const sentAt = new Float64Array(65536); // 0 = free
    const hist = new Uint32Array(HIST_MAX_US + 1);
    const rcodes = new Array(16).fill(0);
    let nextId = Math.floor(Math.random() * 65536);
    let qi = 0;
    let sent = 0;
    let received = 0;
    let lost = 0;
    let bad = 0;
    let measuring = false;
    let stopping = false;
    let measureStart = 0;
    let measureEnd = 0;
    let outstanding = 0;
    const now = () => performance.now();

    const sendOne = () => {
      // Find a free id (never reuse one still waiting).
      for (let tries = 0; tries < 65536; tries++) {
        nextId = (nextId + 1) & 0xffff;
        if (sentAt[nextId] === 0) break;
      }
      const t = qs[qi++ % qs.length];
      const b = Buffer.from(t);
      b[0] = nextId >> 8;
      b[1] = nextId & 255;
      sentAt[nextId] = now();
      outstanding++;
      if (measuring) sent++;
      sock.send(b);
    };

    sock.on('message', (msg) => {
      if (msg.length < 12) {
        bad++;
        return;
      }
      const id = (msg[0] << 8) | msg[1];
      const t0 = sentAt[id];
      if (t0 === 0) return; // late reply to a query counted lost
      sentAt[id] = 0;
      outstanding--;
      if (measuring) {
        const us = Math.min(HIST_MAX_US, Math.round((now() - t0) * 1000));
        hist[us]++;
        received++;
        rcodes[msg[3] & 15]++;
      }
      if (!stopping) sendOne();
    });
    sock.on('error', reject);

    // Queries unanswered after timeoutMs are lost: free their id and send another in their place.
    const sweep = setInterval(() => {
      const limit = now() - o.timeoutMs;
      for (let id = 0; id < 65536; id++) {
        const t = sentAt[id];
        if (t !== 0 && t < limit) {
          sentAt[id] = 0;
          outstanding--;
          if (measuring) lost++;
          if (!stopping) sendOne();
        }
      }
    }, 200);

    sock.connect(port, host, () => {
      try {
        sock.setRecvBufferSize(4 << 20);
      } catch {
        /* capped */
      }
      for (let i = 0; i < o.inflight; i++) sendOne();
      setTimeout(() => {
        measuring = true;
        measureStart = now();
        setTimeout(() => {
          measuring = false;
          stopping = true;
          measureEnd = now();
          setTimeout(() => {
            clearInterval(sweep);
            sock.close();
            const sparse: number[] = [];
            for (let us = 0; us <= HIST_MAX_US; us++) if (hist[us]) sparse.push(us, hist[us]);
            resolve({ sent, received, lost, bad, rcodes, hist: sparse, measuredMs: measureEnd - measureStart });
          }, 300);
        }, o.duration * 1000);
      }, o.warmup * 1000);
    });
  });
}

function percentile(hist: Map<number, number>, total: number, p: number): number {
  const rank = Math.ceil((p / 100) * total);
  let seen = 0;
  for (const us of [...hist.keys()].sort((a, b) => a - b)) {
    seen += hist.get(us)!;
    if (seen >= rank) return us;
  }
  return 0;
}

/** The bench view: one network, gateway `gateway`, `names` containers c<i> (alias alias<i>) at 127.1.x.y. */
function benchView(o: Opts, gateway: string) {
  return {
    generation: 1,
    networks: [{ id: 'bench', name: 'benchnet', gateway, subnet: '127.0.0.0/8' }],
    entries: Array.from({ length: o.names }, (_, i) => ({
      networkId: 'bench', names: [`c${i}`, `alias${i}`], ip: `127.1.${(i >> 8) & 255}.${i & 255}`,
      containerId: i.toString(16).padStart(12, '0') + 'f'.repeat(52),
    })),
    upstreams: [] as string[],
  };
}

interface Server {
  name: string;
  target: string;
  pid: number;
  stop(): void;
}

/** Is something listening on UDP addr:port? */
function udpBusy(addr: string, port: number): Promise<boolean> {
  return new Promise((r) => {
    const s = dgram.createSocket('udp4');
    s.once('error', () => {
      s.close();
      r(true);
    });
    s.bind(port, addr, () => {
      s.close();
      r(false);
    });
  });
}

async function waitFor(fn: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

/** nsnet's resolver as the engine runs it: dist/src/dns/main.js --view FILE, on 127.0.0.2. */
async function startNsnet(o: Opts): Promise<Server> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-dnsbench-'));
  const viewFile = path.join(dir, 'view.json');
  fs.writeFileSync(viewFile, JSON.stringify(benchView(o, '127.0.0.2')));
  const main = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../src/dns/main.js');
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 40000);
    if (await udpBusy('127.0.0.2', port)) continue;
    fs.rmSync(viewFile + '.loaded', { force: true });
    const child = spawn(process.execPath, [main, '--view', viewFile, '--port', String(port)], { stdio: ['ignore', 'inherit', 'inherit'] });
    await waitFor(() => fs.existsSync(viewFile + '.loaded') || child.exitCode !== null, 5000);
    if (child.exitCode === null && (await udpBusy('127.0.0.2', port))) {
      return {
        name: 'nsnet', target: `127.0.0.2:${port}`, pid: child.pid!,
        stop: () => {
          child.kill('SIGTERM');
          fs.rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    child.kill('SIGTERM');
  }
  fs.rmSync(dir, { recursive: true, force: true });
  throw new Error('could not start the resolver');
}

export const AARDVARK = '/usr/lib/podman/aardvark-dns';

/** Podman's aardvark-dns (Debian package aardvark-dns) with the same names, on 127.0.0.5. Its configuration is a
 *  directory with one file per network: first line the listen addresses, then one line per container
 *  "ID IPV4S IPV6S NAMES". `aardvark-dns --config DIR -p PORT run` daemonizes and writes DIR/aardvark.pid. */
async function startAardvark(o: Opts): Promise<Server> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-aardvark-'));
  const v = benchView(o, '127.0.0.5');
  const lines = ['127.0.0.5', ...v.entries.map((e) => `${e.containerId} ${e.ip}  ${e.names.join(',')}`)];
  fs.writeFileSync(path.join(dir, 'benchnet'), lines.join('\n') + '\n');
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 40000);
    if (await udpBusy('127.0.0.5', port)) continue;
    const parent = spawn(AARDVARK, ['--config', dir, '-p', String(port), 'run'], { stdio: 'ignore' });
    await new Promise((r) => parent.once('exit', r));
    const pidFile = path.join(dir, 'aardvark.pid');
    await waitFor(() => fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8').trim() !== '', 5000);
    const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
    if (pid > 0 && (await waitFor(() => udpBusy('127.0.0.5', port), 3000))) {
      return {
        name: 'aardvark-dns', target: `127.0.0.5:${port}`, pid,
        stop: () => {
          try {
            process.kill(pid, 'SIGTERM');
          } catch {
            /* gone */
          }
          fs.rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    if (pid > 0) process.kill(pid, 'SIGTERM');
  }
  throw new Error('could not start aardvark-dns');
}

async function load(o: Opts, target: string, name: string, pid: number | null): Promise<Record<string, unknown>> {
  const i = target.lastIndexOf(':');
  const host = target.slice(0, i);
  const port = Number(target.slice(i + 1));
  if (!isLoopback(host)) throw new Error(`refusing a non-loopback target ${host}`);
  const cpu0 = pid ? cpuOf(pid) : null;
  const results = await Promise.all(
    Array.from({ length: o.clients }, () =>
      new Promise<ClientResult>((resolve, reject) => {
        const w = new Worker(new URL(import.meta.url), { workerData: { o, host, port } });
        w.once('message', resolve);
        w.once('error', reject);
      })),
  );
  const cpu1 = pid ? cpuOf(pid) : null;
  const hist = new Map<number, number>();
  let received = 0;
  let sent = 0;
  let lost = 0;
  let bad = 0;
  const rc = new Array(16).fill(0);
  let ms = 0;
  for (const r of results) {
    for (let k = 0; k < r.hist.length; k += 2) hist.set(r.hist[k], (hist.get(r.hist[k]) ?? 0) + r.hist[k + 1]);
    received += r.received;
    sent += r.sent;
    lost += r.lost;
    bad += r.bad;
    r.rcodes.forEach((n, j) => (rc[j] += n));
    ms = Math.max(ms, r.measuredMs);
  }
  const rnames = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];
  const rcodes: Record<string, number> = {};
  rc.forEach((n, j) => n && (rcodes[rnames[j] ?? `rcode${j}`] = n));
  return {
    server: name, target,
    mix: o.mix, names: o.names, clients: o.clients, inflight_per_client: o.inflight, duration_s: +(ms / 1000).toFixed(2),
    sent, received, lost, bad,
    qps: Math.round(received / (ms / 1000)),
    latency_us: {
      p50: percentile(hist, received, 50), p90: percentile(hist, received, 90), p99: percentile(hist, received, 99),
      p999: percentile(hist, received, 99.9), max: Math.max(0, ...hist.keys()),
    },
    rcodes,
    // CPU of the server process over warm-up + measurement (clock ticks of 10 ms).
    server_cpu_s: cpu0 !== null && cpu1 !== null ? +((cpu1 - cpu0) / 100).toFixed(2) : undefined,
  };
}

async function mainThread(): Promise<void> {
  const o = parseOpts(process.argv.slice(2));
  const out: Record<string, unknown> = { cpus: os.cpus().length, loadavg: os.loadavg().map((x) => +x.toFixed(2)) };
  if (o.target) {
    out.results = [await load(o, o.target, o.target, null)];
  } else {
    const starters = [startNsnet, ...(o.compare ? [startAardvark] : [])];
    const results: Array<Record<string, unknown>> = [];
    for (const start of starters) {
      const srv = await start(o);
      try {
        results.push(await load(o, srv.target, srv.name, srv.pid));
      } finally {
        srv.stop();
      }
    }
    out.results = results;
    if (results.length === 2) out.qps_ratio = +((results[0].qps as number) / (results[1].qps as number)).toFixed(1);
  }
  process.stdout.write(JSON.stringify(out, null, 2) + '\n');
}

/** utime + stime of a process in clock ticks (USER_HZ, 100 on Linux). */
function cpuOf(pid: number): number | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return null;
  }
}

if (isMainThread) {
  mainThread().catch((e) => {
    process.stderr.write(`${(e as Error).stack ?? e}\n`);
    process.exit(1);
  });
} else {
  const { o, host, port } = workerData as { o: Opts; host: string; port: number };
  client(o, host, port).then((r) => parentPort!.postMessage(r));
}
