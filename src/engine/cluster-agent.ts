// The cluster agent (issue #17): one long-lived process per nsnet host in a cluster, started by `nsnet cluster join`
// (and again by any command that needs it: src/engine/cluster.ts ensureAgent), run as
//   node dist/src/engine/cluster-agent.js --root STATE_DIR          (inside the host netns)
// It is the host's only etcd client (src/cluster/): it holds the host's lease (heartbeats; a host whose agent dies
// loses its endpoints and addresses in the cluster after the TTL), answers the engine's synchronous requests on a
// Unix socket (overlay network definitions, address allocation, sync), and keeps the store in step with the
// cluster:
//   - overlay networks defined in etcd exist locally (created by another host: made here too; removed there:
//     removed here once no local container uses them);
//   - this host's endpoints on overlay networks are registered in etcd (and removed with their containers);
//   - the other hosts' endpoints are mirrored into the store (remote_endpoints) from etcd watches, and from the
//     mirror the overlay driver programs the VXLAN forwarding entries and the resolver answers their names.
// If etcd is unreachable the agent keeps what the store has (running containers keep working), answers requests
// with one clear error, and catches up when etcd returns (watches resume, or resync after compaction).
//
// It never blocks on the host lock (tryAcquire, then waits asynchronously): a command holding the lock may be
// waiting for this agent's answer.
import fs from 'node:fs';
import net from 'node:net';
import { Cluster } from '../cluster/cluster.js';
import { ClusterUnavailable } from '../cluster/errors.js';
import type { NetworkWatch } from '../cluster/watch.js';
import type { NetworkRecord as ClusterNetwork } from '../cluster/values.js';
import { syncPeers } from '../drivers/overlay.js';
import type { RemoteEndpoint } from '../types.js';
import { UserError } from '../util/errors.js';
import { agentSocket, clusterScoped } from './cluster.js';
import { readClusterConfig } from './clusterconf.js';
import { notifyDns } from './dnsctl.js';
import { Host } from './host.js';
import { adoptClusterNetwork, dropClusterNetwork } from './networks.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const log = (m: string) => process.stderr.write(`${new Date().toISOString()} ${m}\n`);

function arg(name: string): string {
  const i = process.argv.indexOf(name);
  if (i < 0 || !process.argv[i + 1]) throw new Error(`usage: cluster-agent.js --root STATE_DIR`);
  return process.argv[i + 1];
}

class Agent {
  private cluster: Cluster | null = null;
  private readonly watches = new Map<string, { id: string; w: NetworkWatch }>();
  /** Endpoints registered by this agent: key network/id -> what was registered (JSON). */
  private readonly registered = new Map<string, { network: string; id: string; spec: string }>();
  /** Addresses allocated for endpoints not seen in the store yet: released if none appears in time. */
  private readonly allocated = new Map<string, { network: string; ip: string; endpoint: string; at: number }>();
  /** Endpoints the cluster refused to register (key network/id -> the spec and the reason), each reason said once. */
  private readonly refused = new Map<string, string>();
  private lastError = '';
  private lastSync = 0;
  private syncing: Promise<void> | null = null;
  private again = false;
  private stopping = false;
  private readonly mirrorTimers = new Map<string, NodeJS.Timeout>();

  constructor(readonly h: Host, readonly cfg: NonNullable<ReturnType<typeof readClusterConfig>>) {}

  /** Runs `fn` under the host lock, waiting for it without blocking the event loop. */
  async locked<T>(fn: () => T): Promise<T> {
    for (;;) {
      if (this.h.lock.tryAcquire()) {
        try {
          this.h.refresh();
          return fn();
        } finally {
          this.h.lock.release();
        }
      }
      await sleep(5 + Math.random() * 10);
    }
  }

  async start(): Promise<void> {
    for (;;) {
      try {
        this.cluster = await Cluster.connect(this.cfg.store, { hostId: this.cfg.hostId, advertise: this.cfg.advertise, ttl: this.cfg.ttl });
        await this.cluster.join();
        break;
      } catch (e) {
        this.lastError = (e as Error).message;
        log(`joining: ${this.lastError} (retrying)`);
        try { await this.cluster?.close(); } catch { /* gone */ }
        this.cluster = null;
        if (this.stopping) return;
        await sleep(1000);
      }
    }
    this.lastError = '';
    log(`joined as ${this.cfg.hostId} (${this.cfg.advertise})`);
    this.cluster.on('rejoined', () => { log('lease lost and joined again: re-claiming'); this.registered.clear(); void this.fullReconcile(); });
    await this.fullReconcile();
  }

  /** This host's endpoints re-claimed under the current lease (a host that comes back), stale records removed. */
  private async fullReconcile(): Promise<void> {
    const c = this.cluster;
    if (!c) return;
    try {
      const eps = await this.locked(() => this.localEndpoints());
      const r = await c.reconcile(eps.map((e) => ({ network: e.network, id: e.id, name: e.name, aliases: e.aliases, mac: e.mac, ips: e.ips })));
      this.registered.clear();
      for (const e of eps) if (r.endpoints.includes(e.id)) this.registered.set(`${e.network}/${e.id}`, { network: e.network, id: e.id, spec: JSON.stringify(e) });
      for (const x of r.conflicts) log(`address ${x.ip} of ${x.endpoint} on ${x.network} is held by ${x.owner} now: that container needs a new one (nsnet restart)`);
    } catch (e) {
      this.lastError = (e as Error).message;
    }
    await this.sync();
  }

  private localEndpoints(): Array<{ network: string; id: string; name: string; aliases: string[]; mac: string; ips: string[] }> {
    const nets = new Map(this.h.store.networks().filter(clusterScoped).map((n) => [n.id, n]));
    const out = [];
    for (const e of this.h.store.endpoints()) {
      const n = nets.get(e.networkId);
      if (!n) continue;
      out.push({ network: n.name, id: e.containerId, name: e.containerName, aliases: e.aliases, mac: e.mac, ips: [e.ip, e.ip6 ?? ''].filter(Boolean) });
    }
    return out;
  }

  /** One pass (serialised; a request during a pass makes one more): networks, this host's endpoints, mirrors. */
  sync(): Promise<void> {
    if (this.syncing) {
      this.again = true;
      return this.syncing;
    }
    this.syncing = (async () => {
      try {
        do {
          this.again = false;
          await this.syncOnce();
        } while (this.again);
      } finally {
        this.syncing = null;
      }
    })();
    return this.syncing;
  }

  private async syncOnce(): Promise<void> {
    const c = this.cluster;
    if (!c) return;
    try {
      const defs = await c.networks();
      await this.networks(defs);
      await this.endpoints();
      for (const d of defs) await this.mirror(d);
      this.lastSync = Date.now();
      this.lastError = '';
    } catch (e) {
      this.lastError = (e as Error).message;
      log(`sync: ${this.lastError}`);
    }
  }

  /** Overlay networks of etcd made here, those gone from etcd removed here (when unused), a watch on each. */
  private async networks(defs: ClusterNetwork[]): Promise<void> {
    const ids = new Set(defs.map((d) => d.id));
    await this.locked(() => {
      for (const d of defs) {
        try {
          adoptClusterNetwork(this.h, d);
        } catch (e) {
          log(`network ${d.name}: ${(e as Error).message}`);
        }
      }
      for (const n of this.h.store.networks().filter(clusterScoped)) {
        if (ids.has(n.id)) continue;
        try {
          if (dropClusterNetwork(this.h, n)) log(`network ${n.name} was removed from the cluster: removed here`);
        } catch (e) {
          log(`network ${n.name}: ${(e as Error).message}`);
        }
      }
    });
    for (const [name, x] of this.watches) {
      if (defs.some((d) => d.name === name && d.id === x.id)) continue;
      this.watches.delete(name);
      await x.w.close().catch(() => undefined);
    }
    for (const d of defs) {
      if (this.watches.has(d.name)) continue;
      const w = await this.cluster!.watchNetwork(d.name, () => this.scheduleMirror(d));
      this.watches.set(d.name, { id: d.id, w });
    }
  }

  /** This host's endpoints in etcd: registered when new or changed, removed with their containers; addresses
   *  allocated for an endpoint that never appeared (a create that failed) released after 30 s. */
  private async endpoints(): Promise<void> {
    const c = this.cluster!;
    const local = await this.locked(() => this.localEndpoints());
    const want = new Map(local.map((e) => [`${e.network}/${e.id}`, e]));
    // One endpoint that cannot be registered (its address taken by another host while this one was away) is said
    // once and skipped: it never holds up the others, nor the removals after it. `check` names it.
    for (const [k, e] of want) {
      const spec = JSON.stringify(e);
      if (this.registered.get(k)?.spec === spec) continue;
      try {
        await this.register(e);
      } catch (err) {
        if (!(err instanceof UserError) || err instanceof ClusterUnavailable) throw err;
        const why = `${spec}\0${(err as Error).message}`;
        if (this.refused.get(k) !== why) log(`${e.name} on ${e.network}: not registered: ${(err as Error).message}`);
        this.refused.set(k, why);
        continue;
      }
      this.refused.delete(k);
      this.registered.set(k, { network: e.network, id: e.id, spec });
      for (const ip of e.ips) this.allocated.delete(`${e.network}/${ip}`);
    }
    for (const k of this.refused.keys()) if (!want.has(k)) this.refused.delete(k);
    for (const [k, r] of this.registered) {
      if (want.has(k)) continue;
      await c.removeEndpoint(r.network, r.id);
      this.registered.delete(k);
    }
    const now = Date.now();
    const held = new Set(local.flatMap((e) => e.ips.map((ip) => `${e.network}/${ip}`)));
    for (const [k, a] of this.allocated) {
      if (held.has(k)) { this.allocated.delete(k); continue; }
      if (now - a.at < 30000) continue;
      await c.releaseAddress(a.network, a.ip).catch(() => undefined);
      this.allocated.delete(k);
    }
  }

  /** Registers a local endpoint; if the cluster no longer holds its addresses for this host (its lease lapsed while
   *  etcd was away, and took them), claims them again where they are still free, then registers. */
  private async register(e: { network: string; id: string; name: string; aliases: string[]; mac: string; ips: string[] }): Promise<void> {
    const c = this.cluster!;
    const spec = { id: e.id, name: e.name, aliases: e.aliases, mac: e.mac, ips: e.ips };
    try {
      await c.registerEndpoint(e.network, spec);
    } catch (err) {
      if (!(err instanceof UserError) || err instanceof ClusterUnavailable || !/not allocated to this host/.test(err.message)) throw err;
      for (const ip of e.ips) {
        try {
          await c.allocateAddress(e.network, e.id, { ip });
        } catch (a) {
          // Ours already (re-bound by a reconcile meanwhile) is fine; another host's is the refusal said above.
          if (!(a instanceof UserError) || a instanceof ClusterUnavailable || !/in use|allocated|taken/i.test(a.message)) throw a;
        }
      }
      await c.registerEndpoint(e.network, spec);
    }
  }

  private scheduleMirror(d: ClusterNetwork): void {
    if (this.mirrorTimers.has(d.name)) return;
    this.mirrorTimers.set(d.name, setTimeout(() => {
      this.mirrorTimers.delete(d.name);
      void this.mirror(d).catch((e) => { this.lastError = (e as Error).message; });
    }, 10));
  }

  /** The other hosts' endpoints of one network into the store; the VXLAN entries and the resolver follow. */
  private async mirror(d: ClusterNetwork): Promise<void> {
    const eps = await this.cluster!.endpoints(d.name);
    const remote: RemoteEndpoint[] = eps.filter((e) => e.host !== this.cfg.hostId).map((e) => ({
      networkId: d.id, key: `${e.host}/${e.id}`, host: e.host, underlay: e.underlay, name: e.name, aliases: e.aliases,
      ip: e.ips.find((x) => !x.includes(':')) ?? null, ip6: e.ips.find((x) => x.includes(':')) ?? null, mac: e.mac,
    }));
    await this.locked(() => {
      const n = this.h.store.networkById(d.id);
      if (!n) return;
      const changed = this.h.store.tx(() => this.h.store.setRemoteEndpoints(d.id, remote));
      // Programmed on every pass (cheap when nothing differs): also puts back what a device flap lost.
      syncPeers(this.h.ports, n);
      if (changed) notifyDns(this.h);
    });
  }

  /** The engine's requests. */
  async handle(op: string, a: Record<string, unknown>): Promise<unknown> {
    const c = this.cluster;
    if (op === 'status') {
      return { host: this.cfg.hostId, advertise: this.cfg.advertise, joined: !!c, lastError: this.lastError, lastSync: this.lastSync, registered: [...this.registered.keys()] };
    }
    if (!c) throw new UserError(`this host has not joined the cluster yet${this.lastError ? `: ${this.lastError}` : ''}`, 'refused');
    switch (op) {
      case 'createNetwork': {
        const d = await c.createNetwork(a as unknown as Parameters<Cluster['createNetwork']>[0]);
        void this.sync();
        return d;
      }
      case 'removeNetwork':
        await c.removeNetwork(String(a.name));
        return null;
      case 'network':
        return c.network(String(a.name));
      case 'networks':
        return c.networks();
      case 'allocate': {
        const ip = await c.allocateAddress(String(a.network), String(a.endpoint), { ip: (a.ip as string | null) ?? null, family: a.family === 6 ? 6 : 4 });
        this.allocated.set(`${a.network}/${ip}`, { network: String(a.network), ip, endpoint: String(a.endpoint), at: Date.now() });
        return ip;
      }
      case 'release':
        await c.releaseAddress(String(a.network), String(a.ip));
        return null;
      case 'sync':
        // Answered at once, the pass runs after: the caller usually holds the host lock, which the pass needs.
        void this.sync();
        return null;
      case 'sync-wait':
        // For a caller that does not hold the lock (check, reconcile, tests).
        await this.sync();
        if (this.lastError) throw new UserError(this.lastError, 'refused');
        return null;
      case 'hosts':
        return c.hosts();
      case 'leave':
        await c.leave();
        setTimeout(() => void this.stop(0), 50);
        return null;
      default:
        throw new UserError(`unknown request ${op}`, 'invalid');
    }
  }

  async stop(code: number): Promise<never> {
    this.stopping = true;
    for (const x of this.watches.values()) await x.w.close().catch(() => undefined);
    try { await this.cluster?.close(); } catch { /* gone */ }
    try { this.h.close(); } catch { /* gone */ }
    process.exit(code);
  }
}

/** Frames: one type byte, a little-endian u32 length, the payload (src/kernel/usock.ts). */
function serve(agent: Agent, file: string): net.Server {
  try { fs.unlinkSync(file); } catch { /* none */ }
  const server = net.createServer((sock) => {
    let buf = Buffer.alloc(0);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length < 5) return;
      const len = buf.readUInt32LE(1);
      if (buf.length < 5 + len) return;
      const frame = buf.subarray(5, 5 + len);
      buf = Buffer.alloc(0);
      const reply = (o: unknown) => {
        const body = Buffer.from(JSON.stringify(o));
        const head = Buffer.alloc(5);
        head.write('a', 0, 1, 'latin1');
        head.writeUInt32LE(body.length, 1);
        sock.end(Buffer.concat([head, body]));
      };
      let req: { op: string; args?: Record<string, unknown> };
      try {
        req = JSON.parse(frame.toString());
      } catch {
        return reply({ ok: false, error: 'bad request', code: 'invalid' });
      }
      agent.handle(req.op, req.args ?? {}).then(
        (result) => reply({ ok: true, result: result ?? null }),
        (e) => reply({ ok: false, error: (e as Error).message, code: e instanceof UserError ? e.code : 'refused' }),
      );
    });
    sock.on('error', () => undefined);
  });
  server.listen(file, () => fs.chmodSync(file, 0o600));
  return server;
}

async function main(): Promise<void> {
  const root = arg('--root');
  const cfg = readClusterConfig(root);
  if (!cfg) throw new Error(`${root}: this host is in no cluster`);
  const h = Host.open({ root, env: process.env });
  h.warn = (m) => log(`WARNING: ${m}`);
  const agent = new Agent(h, cfg);
  process.on('SIGTERM', () => void agent.stop(0));
  process.on('SIGINT', () => void agent.stop(0));
  const server = serve(agent, agentSocket(h));
  void server;
  await agent.start();
  // A pass every 2 s: networks made or removed elsewhere, endpoints missed by a watch, and the membership file
  // (a leave, or a state directory removed, ends the agent).
  for (;;) {
    await sleep(2000);
    if (!readClusterConfig(root)) return void agent.stop(0);
    await agent.sync();
  }
}

main().catch((e) => {
  log(`cluster agent: ${(e as Error).stack ?? e}`);
  process.exit(1);
});
