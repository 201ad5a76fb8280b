// Data path: throughput (iperf3) and short-connection rate through a published port vs straight to the
// container's address, all inside throwaway namespaces this process creates and always deletes.
//
//   node dist/bench/traffic.js run OUT.json [RUNID] [REPS=3] [SECONDS=5]      (root; iperf3 installed)
//   node dist/bench/traffic.js serve PORT                 a TCP server: writes one byte to each client and closes
//   node dist/bench/traffic.js connect HOST PORT SECONDS CONCURRENCY
//                                                         short connections (connect, read until EOF, close) in a
//                                                         loop; prints {"conns":N,"seconds":S,"errors":E}
//
// Set-ups, each its own throwaway host netns plus an "upstream" netns linked to it by a veth (host 198.51.100.1/24,
// upstream .2/24, upstream's default route via the host), one container at 10.201.0.2 on bridge 10.201.0.0/16
// running `iperf3 -s -p 5201` and `traffic.js serve 8000`, ports 5201 and 8000 published on the host:
//   nsnet     nsnet CLI: network create + create -p 5201:5201 -p 8000:8000 (the servers are started with nsenter)
//   netavark  netavark setup with the same two port mappings
//   plain     bridge + veth + routes made with `ip`, no nftables at all (no conntrack: the forwarding floor)
// Paths measured (client -> server):
//   upstream -> 198.51.100.1:PORT   published (DNAT)                    nsnet, netavark
//   upstream -> 10.201.0.2:PORT     routed to the container's address   nsnet (its firewall drops it by design:
//                                                                        "only published ports"), netavark, plain
//   host     -> 198.51.100.1:PORT   published, from the host itself (output-hook DNAT)    nsnet
//   host     -> 10.201.0.2:PORT     direct, from the host itself                          nsnet
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { NETAVARK, NSNET_BIN, REPO, deleteNamespaces, inNs, makeHostNetns, median, must, ownNamespaces, run, tick } from './common.js';

const SELF = path.join(REPO, 'dist/bench/traffic.js');
const CIP = '10.201.0.2';
const HOST_IP = '198.51.100.1';

// ------------------------------------------------------------------------------------------------ serve / connect
function serve(port: number): void {
  const srv = net.createServer((s) => {
    s.on('error', () => undefined);
    s.end('x');
  });
  srv.listen(port, '0.0.0.0');
}

async function connect(host: string, port: number, seconds: number, conc: number): Promise<void> {
  const end = Date.now() + seconds * 1000;
  let conns = 0;
  let errors = 0;
  const one = () => new Promise<void>((resolve) => {
    const s = net.connect({ host, port });
    s.setTimeout(2000, () => s.destroy(new Error('timeout')));
    s.on('data', () => undefined);
    s.on('end', () => { conns++; s.destroy(); resolve(); });
    s.on('error', () => { errors++; resolve(); });
  });
  const t0 = Date.now();
  await Promise.all(Array.from({ length: conc }, async () => { while (Date.now() < end) await one(); }));
  console.log(JSON.stringify({ conns, seconds: (Date.now() - t0) / 1000, errors }));
}

// ------------------------------------------------------------------------------------------------ set-ups
interface Setup {
  name: string;
  host: string;
  up: string;
  ctrNs: string;
  servers: ChildProcess[];
  cleanupNs: string[];
}

function linkUpstream(host: string, up: string): void {
  makeHostNetns(up);
  must('ip', ['link', 'add', 'upl0', 'netns', host, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', up]);
  for (const c of [
    ['-n', host, 'addr', 'add', `${HOST_IP}/24`, 'dev', 'upl0'], ['-n', host, 'link', 'set', 'upl0', 'up'],
    ['-n', up, 'addr', 'add', '198.51.100.2/24', 'dev', 'eth0'], ['-n', up, 'link', 'set', 'eth0', 'up'],
    ['-n', up, 'route', 'add', 'default', 'via', HOST_IP],
  ]) must('ip', c);
  inNs(up, ['sysctl', '-qw', 'net.ipv4.ip_local_port_range=1024 65000']);
}

function startServers(s: Setup): void {
  for (const args of [['iperf3', '-s', '-p', '5201'], [process.execPath, SELF, 'serve', '8000']]) {
    const p = spawn('nsenter', [`--net=/run/netns/${s.ctrNs}`, ...args], { stdio: 'ignore' });
    s.servers.push(p);
  }
  // Wait until both listen.
  for (let i = 0; i < 100; i++) {
    const ss = run('nsenter', [`--net=/run/netns/${s.ctrNs}`, 'ss', '-Hltn']).stdout;
    if (ss.includes(':5201') && ss.includes(':8000')) return;
    run('sleep', ['0.05']);
  }
  throw new Error(`${s.name}: servers did not start`);
}

function setupNsnet(runId: string, root: string, reg: (s: Setup) => void): Setup {
  const host = `bnh-${runId}-trs`;
  const up = `bnu-${runId}-trs`;
  const nsRoot = path.join(root, 'nsnet');
  const prefix = `nsnet-${crypto.createHash('sha256').update(nsRoot).digest('hex').slice(0, 6)}-`;
  // nsnet's own container netns are found by their prefix at clean-up.
  const s: Setup = { name: 'nsnet', host, up, ctrNs: '', servers: [], cleanupNs: [host, up, prefix] };
  reg(s);
  makeHostNetns(host);
  linkUpstream(host, up);
  const env: NodeJS.ProcessEnv = { ...process.env, NSNET_ROOT: nsRoot };
  inNs(host, [NSNET_BIN, 'network', 'create', '--subnet', '10.201.0.0/16', 'bnet'], { env });
  inNs(host, [NSNET_BIN, 'create', '--network', 'bnet', '--name', 'srv', '-p', '5201:5201', '-p', '8000:8000', '--', 'sleep', '1'], { env });
  s.ctrNs = `${prefix}srv`;
  return s;
}

function setupNetavark(runId: string, root: string, reg: (s: Setup) => void): Setup {
  const host = `bnh-${runId}-trn`;
  const up = `bnu-${runId}-trn`;
  const ctr = `bnc-${runId}-trn-0`;
  const s: Setup = { name: 'netavark', host, up, ctrNs: ctr, servers: [], cleanupNs: [host, up, ctr] };
  reg(s);
  makeHostNetns(host);
  linkUpstream(host, up);
  must('ip', ['netns', 'add', ctr]);
  const cfg = path.join(root, 'netavark');
  fs.mkdirSync(cfg, { recursive: true });
  const pm = (p: number) => ({ host_ip: '', container_port: p, host_port: p, range: 1, protocol: 'tcp' });
  inNs(host, [NETAVARK, '--config', cfg, 'setup', `/run/netns/${ctr}`], {
    input: JSON.stringify({
      container_id: crypto.randomBytes(32).toString('hex'), container_name: 'srv',
      networks: { bnet: { static_ips: [CIP], interface_name: 'eth0' } },
      network_info: { bnet: { dns_enabled: false, driver: 'bridge', id: 'ab'.repeat(32), internal: false, ipv6_enabled: false, name: 'bnet', network_interface: 'bnbr0', subnets: [{ gateway: '10.201.0.1', subnet: '10.201.0.0/16' }] } },
      port_mappings: [pm(5201), pm(8000)],
    }),
  });
  return s;
}

function setupPlain(runId: string, reg: (s: Setup) => void): Setup {
  const host = `bnh-${runId}-trp`;
  const up = `bnu-${runId}-trp`;
  const ctr = `bnc-${runId}-trp-0`;
  const s: Setup = { name: 'plain', host, up, ctrNs: ctr, servers: [], cleanupNs: [host, up, ctr] };
  reg(s);
  makeHostNetns(host);
  linkUpstream(host, up);
  must('ip', ['netns', 'add', ctr]);
  inNs(host, ['ip', '-batch', '-'], {
    input: `link add bnbr0 type bridge\naddr add 10.201.0.1/16 dev bnbr0\nlink set bnbr0 up\nlink add bv0 type veth peer name eth0 netns ${ctr}\nlink set bv0 master bnbr0 up\n`,
  });
  must('ip', ['-n', ctr, '-batch', '-'], { input: `link set lo up\naddr add ${CIP}/16 dev eth0\nlink set eth0 up\nroute add default via 10.201.0.1\n` });
  inNs(host, ['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  return s;
}

// ------------------------------------------------------------------------------------------------ measuring

function iperf(fromNs: string, dst: string, seconds: number): { gbps: number | null; note: string | null } {
  const r = run('nsenter', [`--net=/run/netns/${fromNs}`, 'iperf3', '-c', dst, '-p', '5201', '-t', String(seconds), '-J', '--connect-timeout', '2000'], { timeout: (seconds + 20) * 1000 });
  try {
    const j = JSON.parse(r.stdout);
    if (j.error) return { gbps: null, note: String(j.error) };
    return { gbps: j.end.sum_received.bits_per_second / 1e9, note: null };
  } catch {
    return { gbps: null, note: `iperf3 exit ${r.status}: ${r.stderr.trim().slice(0, 200)}` };
  }
}

function rate(fromNs: string, dst: string, seconds: number): { connsPerS: number | null; note: string | null } {
  const r = run('nsenter', [`--net=/run/netns/${fromNs}`, process.execPath, SELF, 'connect', dst, '8000', String(seconds), '8'], { timeout: (seconds + 30) * 1000 });
  try {
    const j = JSON.parse(r.stdout.trim().split('\n').pop()!);
    if (!j.conns) return { connsPerS: null, note: `no connection succeeded (${j.errors} errors)` };
    return { connsPerS: j.conns / j.seconds, note: j.errors ? `${j.errors} errors` : null };
  } catch {
    return { connsPerS: null, note: `client exit ${r.status}: ${r.stderr.trim().slice(0, 200)}` };
  }
}

export interface TrafficResult {
  reps: number;
  seconds: number;
  rows: Array<{ setup: string; path: string; from: string; to: string; gbps: number[]; connsPerS: number[]; medGbps: number | null; medConns: number | null; notes: string[] }>;
  errors: string[];
}

async function runAll(out: string, runId: string, reps: number, seconds: number): Promise<void> {
  const tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'bn-traffic-')));
  let interrupted = false;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => { interrupted = true; process.exitCode = 130; });
  const setups: Setup[] = [];
  const res: TrafficResult = { reps, seconds, rows: [], errors: [] };
  try {
    const ok: Setup[] = [];
    const reg = (s: Setup) => setups.push(s);
    for (const mk of [() => setupNsnet(runId, tmp, reg), () => setupNetavark(runId, tmp, reg), () => setupPlain(runId, reg)]) {
      try {
        const s = mk();
        startServers(s);
        ok.push(s);
      } catch (e) {
        res.errors.push(String((e as Error).message).slice(0, 500));
      }
    }
    const paths: Array<{ s: Setup; path: string; from: string; to: string; fromNs: string; dst: string }> = [];
    for (const s of ok) {
      if (s.name !== 'plain') paths.push({ s, path: 'published port', from: 'upstream', to: `${HOST_IP}:port`, fromNs: s.up, dst: HOST_IP });
      paths.push({ s, path: 'container address (routed)', from: 'upstream', to: `${CIP}:port`, fromNs: s.up, dst: CIP });
      if (s.name === 'nsnet') {
        paths.push({ s, path: 'published port, from the host', from: 'host', to: `${HOST_IP}:port`, fromNs: s.host, dst: HOST_IP });
        paths.push({ s, path: 'container address, from the host', from: 'host', to: `${CIP}:port`, fromNs: s.host, dst: CIP });
      }
    }
    const rows = paths.map((p) => ({ setup: p.s.name, path: p.path, from: p.from, to: p.to, gbps: [] as number[], connsPerS: [] as number[], medGbps: null as number | null, medConns: null as number | null, notes: [] as string[] }));
    // Interleaved repetitions (A B C ... A B C ...) so that drift in the machine's load hits every path alike.
    for (let r = 0; r < reps && !interrupted; r++) {
      for (let i = 0; i < paths.length; i++) {
        const p = paths[i];
        await tick();
        if (interrupted) break;
        // A path known to be blocked is tried once only (each try waits for a time-out).
        if (r > 0 && rows[i].notes.length && !rows[i].gbps.length) continue;
        const a = iperf(p.fromNs, p.dst, seconds);
        if (a.gbps !== null) rows[i].gbps.push(a.gbps); else rows[i].notes.push(`iperf3: ${a.note}`);
        const b = rate(p.fromNs, p.dst, Math.min(seconds, 2));
        if (b.connsPerS !== null) rows[i].connsPerS.push(b.connsPerS); else rows[i].notes.push(`connections: ${b.note}`);
        if (b.note && b.connsPerS !== null) rows[i].notes.push(`connections: ${b.note}`);
        console.error(`  traffic ${p.s.name} ${p.path}: ${a.gbps?.toFixed(2) ?? '-'} Gbit/s, ${b.connsPerS?.toFixed(0) ?? '-'} conn/s`);
      }
    }
    for (const row of rows) {
      row.medGbps = median(row.gbps);
      row.medConns = median(row.connsPerS);
      row.notes = [...new Set(row.notes)];
    }
    res.rows = rows;
  } catch (e) {
    res.errors.push(String((e as Error).stack ?? e).slice(0, 1000));
  } finally {
    for (const s of setups) for (const p of s.servers) if (p.pid) { try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ } }
    const names = setups.flatMap((s) => s.cleanupNs.flatMap((n) => (n.startsWith('nsnet-') ? ownNamespaces([n]) : [n])));
    deleteNamespaces(names);
    // Namespaces of set-ups that failed half-way.
    deleteNamespaces(ownNamespaces([`bnh-${runId}-tr`, `bnu-${runId}-tr`, `bnc-${runId}-tr`]));
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.writeFileSync(out, JSON.stringify(res));
  }
}

async function main(): Promise<void> {
  const [cmd, ...a] = process.argv.slice(2);
  if (cmd === 'serve') return serve(Number(a[0]));
  if (cmd === 'connect') return connect(a[0], Number(a[1]), Number(a[2]), Number(a[3]));
  if (cmd === 'run') return runAll(a[0], a[1] ?? crypto.randomBytes(2).toString('hex'), Number(a[2] ?? 3), Number(a[3] ?? 5));
  throw new Error('usage: traffic.js run OUT.json [RUNID] [REPS] [SECONDS] | serve PORT | connect HOST PORT SECONDS CONC');
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
