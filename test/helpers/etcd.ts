// etcd for tests: a 1- or 3-member cluster (Debian etcd-server) in throwaway network namespaces, and what the
// etcd tests share (the member command line, etcdctl's status parsing).
//
//   underlay netns  nsu-XXXXXX        bridge ul0 203.0.113.1/24 (TEST-NET-3: never the upstream helper's
//                                    198.51.100.0/24, so a host netns can have both)
//   member netns    nsu-XXXXXX-e1    eth0 203.0.113.11/24 (e2 .12, e3 .13), veth to ul0; etcd listens on
//                                    http://203.0.113.1N:2379 (clients) and :2380 (peers), and 127.0.0.1:2379
//   more netns      attach(ns, ip)   any other namespace (a simulated host) gets a veth on ul0
//
// Clients in the test process reach the members by entering the underlay netns with the main thread
// (`enter()`: every socket Node makes is made by the main thread; leave() before cleanup). Data directories
// under one temporary directory; etcd's output in DIR/eN.log. Every process is started here and ended by the
// PID it got (SIGTERM, then SIGKILL); cleanup() removes the namespaces and the directory, also after a failure.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLONE_NEWNET, close, openPath, setns } from '../../src/kernel/libc.js';

export const ETCD = '/usr/bin/etcd';
export const ETCDCTL = '/usr/bin/etcdctl';
export const UNDERLAY_SUBNET = '203.0.113.0/24';
export const UNDERLAY_GATEWAY = '203.0.113.1';

/** etcd's command line for one member of a static cluster (`initialCluster`: "e1=http://IP:2380,..."). */
export function etcdCommand(o: { name: string; ip: string; dataDir: string; initialCluster: string; token?: string; loopback?: boolean }): string[] {
  const clients = [`http://${o.ip}:2379`, ...(o.loopback === false ? [] : ['http://127.0.0.1:2379'])].join(',');
  return ['etcd', '--name', o.name, '--data-dir', o.dataDir, '--listen-peer-urls', `http://${o.ip}:2380`,
    '--initial-advertise-peer-urls', `http://${o.ip}:2380`, '--listen-client-urls', clients,
    '--advertise-client-urls', `http://${o.ip}:2379`, '--initial-cluster', o.initialCluster, '--initial-cluster-state', 'new',
    '--initial-cluster-token', o.token ?? 'nsnet-test'];
}

/** "e1=http://IP1:2380,e2=http://IP2:2380,..." */
export function initialCluster(names: readonly string[], ips: readonly string[]): string {
  return names.map((n, i) => `${n}=http://${ips[i]}:2380`).join(',');
}

/** `etcdctl endpoint status -w json` output -> the member's id and its leader's id (as text: they are 64-bit). */
export function parseEndpointStatus(stdout: string): { id: string; leader: string } | null {
  const id = /"member_id":(\d+)/.exec(stdout)?.[1];
  const leader = /"leader":(\d+)/.exec(stdout)?.[1];
  return id && leader ? { id, leader } : null;
}

function must(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}${r.error ?? ''}`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export interface EtcdMember {
  readonly name: string;
  readonly ns: string;
  readonly ip: string;
  readonly dataDir: string;
  /** http://IP:2379 */
  readonly endpoint: string;
  proc: ChildProcess | null;
}

export class EtcdCluster {
  readonly dir: string;
  readonly underlay: string;
  readonly members: EtcdMember[] = [];
  private readonly attached: string[] = [];
  private readonly initial: string;
  private savedNetns = -1;
  private cleaned = false;
  private readonly onExit = () => this.killAll();

  private constructor(n: number, tag: string) {
    const id = crypto.randomBytes(3).toString('hex');
    this.underlay = `nsu-${tag}${id}`;
    this.dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-etcd-')));
    const names = Array.from({ length: n }, (_, i) => `e${i + 1}`);
    const ips = names.map((_, i) => `203.0.113.${11 + i}`);
    this.initial = initialCluster(names, ips);
    names.forEach((name, i) => this.members.push({
      name, ns: `${this.underlay}-${name}`, ip: ips[i], dataDir: path.join(this.dir, name), endpoint: `http://${ips[i]}:2379`, proc: null,
    }));
  }

  /** Starts an n-member cluster (1 or 3) and waits until every member answers. Cleans up itself on failure. */
  static async start(n: 1 | 3 = 3, tag = 'etcd'): Promise<EtcdCluster> {
    if (!fs.existsSync(ETCD)) throw new Error('etcd-server is not installed (bash scripts/setup.sh installs it)');
    const c = new EtcdCluster(n, tag);
    process.once('exit', c.onExit);
    try {
      must('ip', ['netns', 'add', c.underlay]);
      must('ip', ['-n', c.underlay, 'link', 'set', 'lo', 'up']);
      must('ip', ['-n', c.underlay, 'link', 'add', 'ul0', 'type', 'bridge']);
      must('ip', ['-n', c.underlay, 'addr', 'add', `${UNDERLAY_GATEWAY}/24`, 'dev', 'ul0']);
      must('ip', ['-n', c.underlay, 'link', 'set', 'ul0', 'up']);
      for (const m of c.members) {
        must('ip', ['netns', 'add', m.ns]);
        must('ip', ['-n', m.ns, 'link', 'set', 'lo', 'up']);
        c.veth(m.ns, m.name, m.ip);
      }
      for (let i = 0; i < n; i++) c.spawnMember(i);
      for (let i = 0; i < n; i++) await c.waitHealthy(i, 30000);
      return c;
    } catch (e) {
      await c.cleanup();
      throw e;
    }
  }

  /** The client endpoints, http://IP:2379 each. */
  get endpoints(): string[] {
    return this.members.map((m) => m.endpoint);
  }

  /** A veth from netns `ns` (its end `ifname`, address ip/24) to the underlay bridge (its end `brPort`). */
  private veth(ns: string, brPort: string, ip: string, ifname = 'eth0'): void {
    must('ip', ['-n', this.underlay, 'link', 'add', brPort, 'type', 'veth', 'peer', 'name', ifname, 'netns', ns]);
    must('ip', ['-n', this.underlay, 'link', 'set', brPort, 'master', 'ul0', 'up']);
    must('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', ifname]);
    must('ip', ['-n', ns, 'link', 'set', ifname, 'up']);
  }

  /** Puts another namespace (a simulated host, made by the caller) on the underlay: `ifname` with ip/24. */
  attach(ns: string, ip: string, ifname = 'ul0'): void {
    const port = `h${this.attached.length + 1}`;
    this.veth(ns, port, ip, ifname);
    this.attached.push(port);
  }

  private spawnMember(i: number): void {
    const m = this.members[i];
    const log = fs.openSync(path.join(this.dir, `${m.name}.log`), 'a');
    const cmd = etcdCommand({ name: m.name, ip: m.ip, dataDir: m.dataDir, initialCluster: this.initial });
    // nsenter execs etcd: the PID we get is etcd's.
    const p = spawn('nsenter', [`--net=/run/netns/${m.ns}`, ETCD, ...cmd.slice(1)], { stdio: ['ignore', log, log] });
    fs.closeSync(log);
    m.proc = p;
    p.on('exit', () => { if (m.proc === p) m.proc = null; });
  }

  /** etcdctl against member i, run inside its netns. */
  ctl(i: number, args: string, timeout = '2s'): { status: number; stdout: string; stderr: string } {
    const m = this.members[i];
    const r = spawnSync('nsenter', [`--net=/run/netns/${m.ns}`, '/bin/sh', '-c',
      `ETCDCTL_API=3 ${ETCDCTL} --endpoints=http://127.0.0.1:2379 --dial-timeout=2s --command-timeout=${timeout} ${args}`],
    { encoding: 'utf8', timeout: 15000 });
    return { status: r.status ?? 1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  }

  private async waitHealthy(i: number, ms: number): Promise<void> {
    const end = Date.now() + ms;
    for (;;) {
      if (this.ctl(i, 'endpoint health', '1s').status === 0) return;
      if (!this.members[i].proc) throw new Error(`etcd member ${this.members[i].name} exited: ${this.tail(i)}`);
      if (Date.now() > end) throw new Error(`etcd member ${this.members[i].name} not healthy after ${ms} ms: ${this.tail(i)}`);
      await sleep(200);
    }
  }

  private tail(i: number): string {
    try {
      return fs.readFileSync(path.join(this.dir, `${this.members[i].name}.log`), 'utf8').split('\n').slice(-5).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** Stops member i (SIGTERM, SIGKILL after 5 s) and waits for it to exit. */
  async stopMember(i: number): Promise<void> {
    const p = this.members[i].proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(t);
  }

  /** Starts member i again (same data directory) and, with `wait`, waits until it answers (a lone member of a
   *  3-member cluster cannot: it answers once a quorum is back). */
  async startMember(i: number, wait = true): Promise<void> {
    if (this.members[i].proc) return;
    this.spawnMember(i);
    if (wait) await this.waitHealthy(i, 30000);
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.members.map((_, i) => this.stopMember(i)));
  }

  async startAll(): Promise<void> {
    for (let i = 0; i < this.members.length; i++) this.startMember(i, false);
    for (let i = 0; i < this.members.length; i++) await this.waitHealthy(i, 30000);
  }

  /** Member i's bridge port down (packets to it vanish: a black hole, no RST) or up again. */
  isolate(i: number, on = true): void {
    must('ip', ['-n', this.underlay, 'link', 'set', this.members[i].name, on ? 'down' : 'up']);
  }

  /** Index of the current leader, or -1. */
  leader(): number {
    for (let i = 0; i < this.members.length; i++) {
      if (!this.members[i].proc) continue;
      const s = parseEndpointStatus(this.ctl(i, 'endpoint status -w json', '1s').stdout);
      if (s && s.leader !== '0' && s.leader === s.id) return i;
    }
    return -1;
  }

  /** Moves this process's main thread (where Node makes its sockets) into the underlay netns. */
  enter(): void {
    if (this.savedNetns >= 0) return;
    this.savedNetns = openPath('/proc/thread-self/ns/net');
    const fd = openPath(`/run/netns/${this.underlay}`);
    try {
      setns(fd, CLONE_NEWNET);
    } finally {
      close(fd);
    }
  }

  /** Back to the netns the process was in before enter(). */
  leave(): void {
    if (this.savedNetns < 0) return;
    setns(this.savedNetns, CLONE_NEWNET);
    close(this.savedNetns);
    this.savedNetns = -1;
  }

  private killAll(): void {
    for (const m of this.members) {
      if (m.proc && m.proc.exitCode === null && m.proc.signalCode === null) m.proc.kill('SIGKILL');
    }
  }

  /** Stops every member, deletes the namespaces (members, underlay) and the data directory. Idempotent. */
  async cleanup(): Promise<void> {
    if (this.cleaned) return;
    this.cleaned = true;
    this.leave();
    await this.stopAll();
    process.removeListener('exit', this.onExit);
    for (const m of this.members) spawnSync('ip', ['netns', 'del', m.ns]);
    spawnSync('ip', ['netns', 'del', this.underlay]);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
