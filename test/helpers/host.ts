// Integration-test harness: every test gets its own throwaway "host" network namespace and state directory, runs
// the real CLI inside it (nsenter --net, same mount namespace: docs/kernel-notes.md §11), and removes everything
// it created at the end, even when the test failed: processes in its namespaces, the namespaces, the directory.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const REPO = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../..');
export const NSNET = path.join(REPO, 'bin/nsnet');

export interface Result {
  status: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeout?: number } = {}): Result {
  const r: SpawnSyncReturns<string> = spawnSync(cmd, args, {
    encoding: 'utf8', env: opts.env ?? process.env, input: opts.input, timeout: opts.timeout ?? 60000,
  });
  return { status: r.status ?? (r.signal ? 128 : 1), stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
}

export function sh(cmd: string, opts: { timeout?: number } = {}): Result {
  return run('/bin/sh', ['-c', cmd], opts);
}

/** Throws with the command's output when it fails. */
export function must(r: Result, what: string): Result {
  if (r.status !== 0) throw new Error(`${what} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r;
}

function rand(): string {
  return crypto.randomBytes(3).toString('hex');
}

function nsIno(name: string): number | null {
  try {
    return fs.statSync(`/run/netns/${name}`).ino;
  } catch {
    return null;
  }
}

/** Kills (SIGKILL) every process whose netns is one of `inos`: all of them were started by this test. */
function killIn(inos: Set<number>): void {
  if (!inos.size) return;
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      if (inos.has(fs.statSync(`/proc/${d}/ns/net`).ino)) process.kill(Number(d), 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

export class TestHost {
  readonly ns: string;
  readonly root: string;
  readonly hostId: string;
  readonly extraNs: string[] = [];
  readonly env: NodeJS.ProcessEnv;

  private constructor(tag: string) {
    this.ns = `nst-${tag}-${rand()}`;
    this.root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-test-')));
    this.hostId = crypto.createHash('sha256').update(this.root).digest('hex').slice(0, 6);
    // Upstream resolvers: only ever the test's own "upstream" netns address, never the machine's real ones.
    const resolv = path.join(this.root, 'test-resolv.conf');
    fs.writeFileSync(resolv, 'nameserver 198.51.100.2\n');
    this.env = { ...process.env, NSNET_ROOT: this.root, NSNET_RESOLV_CONF: resolv };
    delete this.env.NSNET_HOST_NETNS;
  }

  /** Creates the host netns (loopback up). Call `cleanup()` in a finally / t.after. */
  static create(tag = 't', env: NodeJS.ProcessEnv = {}): TestHost {
    const h = new TestHost(tag);
    Object.assign(h.env, env);
    must(run('ip', ['netns', 'add', h.ns]), 'ip netns add');
    must(run('ip', ['-n', h.ns, 'link', 'set', 'lo', 'up']), 'lo up');
    return h;
  }

  setEnv(k: string, v: string | undefined): void {
    if (v === undefined) delete this.env[k];
    else this.env[k] = v;
  }

  /** Runs the nsnet CLI with this host's netns as "the host". */
  nsnet(args: string[], opts: { timeout?: number; env?: NodeJS.ProcessEnv } = {}): Result {
    return run('nsenter', [`--net=/run/netns/${this.ns}`, NSNET, ...args], { env: { ...this.env, ...(opts.env ?? {}) }, timeout: opts.timeout });
  }

  /** nsnet that must succeed; returns trimmed stdout. */
  ok(args: string[], opts: { timeout?: number } = {}): string {
    return must(this.nsnet(args, opts), `nsnet ${args.join(' ')}`).stdout.trim();
  }

  /** A shell command inside the host netns. */
  sh(cmd: string, opts: { timeout?: number } = {}): Result {
    return run('nsenter', [`--net=/run/netns/${this.ns}`, '/bin/sh', '-c', cmd], { timeout: opts.timeout });
  }

  /** A shell command in a container's netns (through nsnet exec, so with its /etc files). */
  exec(container: string, cmd: string, opts: { timeout?: number } = {}): Result {
    return this.nsnet(['exec', container, '--', '/bin/sh', '-c', cmd], opts);
  }

  netnsName(container: string): string {
    return `nsnet-${this.hostId}-${container}`;
  }

  /** An "upstream" machine: a netns linked to the host by a veth, host 198.51.100.1/24, upstream .2/24. */
  addUpstream(): { ns: string; hostIp: string; ip: string } {
    const up = `nsu-${rand()}`;
    must(run('ip', ['netns', 'add', up]), 'ip netns add upstream');
    this.extraNs.push(up);
    const cmds = [
      `ip -n ${up} link set lo up`,
      `ip link add upl0 netns ${this.ns} type veth peer name eth0 netns ${up}`,
      `ip -n ${this.ns} addr add 198.51.100.1/24 dev upl0`,
      `ip -n ${this.ns} link set upl0 up`,
      `ip -n ${up} addr add 198.51.100.2/24 dev eth0`,
      `ip -n ${up} link set eth0 up`,
    ];
    for (const c of cmds) must(sh(c), c);
    return { ns: up, hostIp: '198.51.100.1', ip: '198.51.100.2' };
  }

  /** A shell command in another netns created by this test. */
  shIn(ns: string, cmd: string, opts: { timeout?: number } = {}): Result {
    return run('nsenter', [`--net=/run/netns/${ns}`, '/bin/sh', '-c', cmd], { timeout: opts.timeout });
  }

  /** Netns names under /run/netns belonging to this host's containers. */
  containerNetns(): string[] {
    return fs.readdirSync('/run/netns').filter((n) => n.startsWith(`nsnet-${this.hostId}-`));
  }

  /** Links in the host netns, by name. */
  links(): string[] {
    const r = must(run('ip', ['-n', this.ns, '-j', 'link', 'show']), 'ip link');
    return (JSON.parse(r.stdout) as Array<{ ifname: string }>).map((l) => l.ifname);
  }

  cleanup(): void {
    const all = [this.ns, ...this.extraNs, ...(fs.existsSync('/run/netns') ? this.containerNetns() : [])];
    const inos = new Set(all.map(nsIno).filter((x): x is number => x !== null));
    killIn(inos);
    // The resolver and supervisors live in the host netns and were killed above; give the kernel a moment.
    for (const n of all) run('ip', ['netns', 'del', n]);
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

/** Polls `fn` until it returns truthy or the timeout passes. */
export async function waitFor<T>(fn: () => T, timeoutMs = 5000, stepMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
