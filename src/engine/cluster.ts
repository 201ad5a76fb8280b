// The engine's side of a cluster (issue #17): this host's cluster agent (src/engine/cluster-agent.ts, a long-lived
// process per host that holds the host's etcd lease, watches the cluster and mirrors it into the store), and the
// synchronous calls the use cases make to it.
//
// The engine stays synchronous: a use case that needs the cluster (an overlay network's definition, an address of
// an overlay network) asks the agent over a Unix socket in the state directory and blocks for its answer, bounded
// (CLUSTER_TIMEOUT_MS): etcd unreachable is one clear error line and nothing half-made. The agent never calls
// back into a command: it takes the host lock only with tryAcquire, so a command that holds the lock while it
// waits for the agent never deadlocks with it.
//
// Frames on the socket, both ways (src/kernel/usock.ts): 'q' + JSON {op, args} from the engine, 'a' + JSON
// {ok: true, result} or {ok: false, error, code} from the agent.
import fs from 'node:fs';
import path from 'node:path';
import { driverOf } from '../drivers/registry.js';
import { isAlive, processStart } from '../kernel/pidstat.js';
import { UnixConn } from '../kernel/usock.js';
import type { NetworkRecord } from '../types.js';
import { UserError, type UserErrorCode } from '../util/errors.js';
import { childProcess } from '../util/lazy.js';
import { sleepSync } from '../util/sleep.js';
import { openAppend, readFileSafe, writeFileAtomic } from '../dns/files.js';
import { readClusterConfig, removeClusterConfig, writeClusterConfig, type ClusterConfig } from './clusterconf.js';
import { dropClusterNetwork } from './networks.js';
import type { Host } from './host.js';
import { ensureStateSubdir } from './statedir.js';

/** Bound on one call to the agent (it bounds each etcd call at 5 s itself). */
export const CLUSTER_TIMEOUT_MS = 12000;
/** Set in the agent's own environment: engine code running inside the agent never calls the agent. */
export const AGENT_ENV = 'NSNET_CLUSTER_AGENT';

export function clusterScoped(n: NetworkRecord): boolean {
  return driverOf(n).scope === 'cluster';
}

function agentDir(h: Host): string {
  return ensureStateSubdir(h.root, 'cluster', 0o700);
}
export function agentSocket(h: Host): string {
  return path.join(h.root, 'cluster', 'agent.sock');
}
function agentPidFile(h: Host): string {
  return path.join(h.root, 'cluster', 'agent.pid');
}
export function agentLog(h: Host): string {
  return path.join(h.root, 'cluster', 'agent.log');
}
function agentMain(): string {
  // '../engine/': this module runs as dist/src/engine/cluster.js, or inside the CLI's bundle (as dist/src/cli/main.js).
  return path.resolve(path.dirname(new URL(import.meta.url).pathname), '../engine/cluster-agent.js');
}

export function inAgent(h: Host): boolean {
  return h.env[AGENT_ENV] === '1';
}

/** This host's membership, or a UserError saying how to join. */
export function requireCluster(h: Host, what: string): ClusterConfig {
  const c = readClusterConfig(h.root);
  if (!c) throw new UserError(`${what} needs this host in a cluster: nsnet cluster join --store etcd://HOST:PORT --advertise ADDRESS`, 'refused');
  return c;
}

function readAgentPid(h: Host): { pid: number; start: string } | null {
  try {
    const [pid, start] = readFileSafe(agentPidFile(h)).trim().split(' ');
    return { pid: Number(pid), start: start ?? '' };
  } catch {
    return null;
  }
}

export function agentPid(h: Host): number | null {
  const p = readAgentPid(h);
  return p && p.start && isAlive(p.pid, p.start) ? p.pid : null;
}

export function agentRunning(h: Host): boolean {
  return agentPid(h) !== null;
}

/** Starts the agent if it is not running (detached, in the host netns, its log in the state directory) and waits
 *  until its socket answers. */
export function ensureAgent(h: Host): void {
  if (inAgent(h)) throw new Error('internal: the cluster agent called itself');
  requireCluster(h, 'this command');
  if (agentRunning(h) && fs.existsSync(agentSocket(h))) return;
  agentDir(h);
  const log = openAppend(agentLog(h), 0o600);
  let pid: number;
  try {
    const child = h.inHost(() => childProcess().spawn(process.execPath, [agentMain(), '--root', h.root], {
      detached: true, stdio: ['ignore', log, log],
      env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', MALLOC_ARENA_MAX: '2', NSNET_ROOT: h.root, [AGENT_ENV]: '1' },
    }));
    if (child.pid === undefined) throw new Error('cannot start the cluster agent');
    child.unref();
    pid = child.pid;
    writeFileAtomic(agentPidFile(h), `${pid} ${processStart(pid) ?? ''}\n`, 0o600);
  } finally {
    fs.closeSync(log);
  }
  const end = Date.now() + 10000;
  while (Date.now() < end) {
    try {
      UnixConn.connect(agentSocket(h)).close();
      return;
    } catch {
      if (!isAlive(pid, processStart(pid))) break;
      sleepSync(20);
    }
  }
  let last = '';
  try {
    const lines = readFileSafe(agentLog(h)).trim().split('\n');
    last = [...lines].reverse().find((l) => /error/i.test(l)) ?? lines[lines.length - 1] ?? '';
  } catch { /* no log */ }
  throw new Error(`the cluster agent did not start${last ? `: ${last.replace(/^\S+ /, '')}` : ''} (see ${agentLog(h)})`);
}

/** Stops the agent (SIGTERM, then SIGKILL after 3 s). */
export function stopAgent(h: Host): void {
  const p = readAgentPid(h);
  if (p && p.start && isAlive(p.pid, p.start)) {
    try { process.kill(p.pid, 'SIGTERM'); } catch { /* gone */ }
    const end = Date.now() + 3000;
    while (isAlive(p.pid, p.start) && Date.now() < end) sleepSync(10);
    if (isAlive(p.pid, p.start)) try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
  }
  fs.rmSync(agentPidFile(h), { force: true });
}

/** One request to the agent, answered within CLUSTER_TIMEOUT_MS; its refusals come back as UserErrors. */
export function agentCall<T>(h: Host, op: string, args: Record<string, unknown> = {}, timeoutMs = CLUSTER_TIMEOUT_MS): T {
  ensureAgent(h);
  let conn: UnixConn;
  try {
    conn = UnixConn.connect(agentSocket(h));
  } catch (e) {
    throw new UserError(`the cluster agent of this host does not answer (${(e as Error).message}; see ${agentLog(h)})`, 'refused');
  }
  try {
    if (!conn.send('q', JSON.stringify({ op, args }))) throw new UserError('the cluster agent closed the connection', 'refused');
    const f = conn.recv(timeoutMs);
    if (!f) throw new UserError(`the cluster agent did not answer ${op} within ${Math.round(timeoutMs / 1000)} s (etcd unreachable? see ${agentLog(h)})`, 'refused');
    const r = JSON.parse(f.payload.toString()) as { ok: boolean; result?: T; error?: string; code?: UserErrorCode };
    if (!r.ok) throw new UserError(r.error ?? `the cluster agent refused ${op}`, r.code ?? 'refused');
    return r.result as T;
  } finally {
    conn.close();
  }
}

/** After a change of this host's endpoints: the agent registers them (or removes them) in the cluster right after
 *  (the caller holds the host lock its pass needs: this only tells it). A failure is a warning: the agent's periodic
 *  pass (and reconcile) catch up. No-op outside a cluster and inside the agent. */
export function syncCluster(h: Host): void {
  if (inAgent(h) || !readClusterConfig(h.root)) return;
  if (!h.store.networks().some(clusterScoped)) return;
  try {
    agentCall(h, 'sync', {}, 6000);
  } catch (e) {
    h.warn(`the cluster was not told of this change yet: ${(e as Error).message}`);
  }
}

/** An address for `endpoint` on an overlay network, allocated in the cluster (unique across every host). */
export function clusterAddress(h: Host, n: NetworkRecord, endpoint: string, family: 4 | 6, ip?: string): string {
  return agentCall<string>(h, 'allocate', { network: n.name, endpoint, family, ip: ip ?? null });
}

// ---------------------------------------------------------------------------------------------- join / leave

export interface JoinOptions {
  /** etcd endpoints: etcd://HOST:PORT[,...] (or http://, or HOST[:PORT]). */
  store: string;
  /** This host's underlay address: one of its own addresses in the host netns. */
  advertise: string;
  /** This host's name in the cluster (default: the machine's host name and this state directory's id). */
  name?: string;
  /** Lease TTL in seconds (default 10): how long a host that stopped answering keeps its endpoints. */
  ttl?: number;
}

const HOST_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** Joins this host to a cluster: the membership written, the agent started and joined (its lease taken) before
 *  this returns; on failure nothing is left (no membership, no agent). Joining again with the same settings is a
 *  no-op; with others it is refused. */
export function joinCluster(h: Host, o: JoinOptions): ClusterConfig {
  // Not under the host lock: the agent's first pass takes it (this waits for that pass).
  {
    const store = o.store.trim();
    if (!store) throw new UserError('--store is required (etcd://HOST:PORT[,etcd://HOST:PORT...])', 'invalid');
    for (const item of store.split(',')) {
      if (!/^(?:(?:etcd|http):\/\/)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::[0-9]{1,5})?\/?$/.test(item.trim())) {
        throw new UserError(`invalid etcd endpoint ${JSON.stringify(item.trim())}: expected etcd://HOST:PORT`, 'invalid');
      }
    }
    const advertise = o.advertise.trim();
    const own = h.nl.addresses().some((a) => a.address === advertise);
    if (!own) throw new UserError(`--advertise ${advertise}: not an address of this host (its underlay address, which other hosts reach it at)`, 'invalid');
    const name = o.name ?? `${h.hostId}`;
    if (!HOST_NAME.test(name)) throw new UserError(`invalid host name ${JSON.stringify(name)}: letters, digits, "_", "." or "-", at most 63`, 'invalid');
    const ttl = o.ttl ?? 10;
    if (!Number.isInteger(ttl) || ttl < 2 || ttl > 3600) throw new UserError(`invalid --ttl ${o.ttl}: whole seconds, 2..3600`, 'invalid');
    const have = readClusterConfig(h.root);
    if (have) {
      if (have.store === store && have.advertise === advertise && have.hostId === name && have.ttl === ttl) {
        ensureAgent(h);
        return have;
      }
      throw new UserError(`this host is in a cluster already (store ${have.store}, as ${have.hostId}): nsnet cluster leave first`, 'conflict');
    }
    const cfg: ClusterConfig = { store, advertise, hostId: name, ttl, joined: new Date().toISOString() };
    h.lock.with(() => {
      if (readClusterConfig(h.root)) throw new UserError('this host joined a cluster meanwhile (another nsnet cluster join)', 'conflict');
      writeClusterConfig(h.root, cfg);
    });
    try {
      ensureAgent(h);
      const end = Date.now() + 12000;
      for (;;) {
        const s = agentCall<{ joined: boolean; lastError: string }>(h, 'status');
        if (s.joined) break;
        if (Date.now() > end) throw new UserError(`could not join the cluster: ${s.lastError || 'no answer from etcd'}`, 'refused');
        sleepSync(100);
      }
      agentCall(h, 'sync-wait', {}, 15000);
    } catch (e) {
      stopAgent(h);
      removeClusterConfig(h.root);
      throw e;
    }
    return cfg;
  }
}

/** Leaves the cluster: refused while containers of this host use an overlay network (unless `force`); the host's
 *  records leave etcd with its lease, the agent stops, the local copies of the cluster's networks go. */
export function leaveCluster(h: Host, force = false): string[] {
  return h.lock.with(() => {
    const cfg = readClusterConfig(h.root);
    if (!cfg) throw new UserError('this host is in no cluster', 'refused');
    const nets = h.store.networks().filter(clusterScoped);
    const users = nets.flatMap((n) => h.store.endpointsOn(n.id).map((e) => e.containerName));
    if (users.length && !force) throw new UserError(`containers of this host use overlay networks (${[...new Set(users)].sort().join(', ')}): remove them first, or nsnet cluster leave --force`, 'refused');
    const notes: string[] = [];
    try {
      agentCall(h, 'leave', {}, 8000);
    } catch (e) {
      if (!force) throw e;
      notes.push(`the cluster was not told (${(e as Error).message}): this host's records expire with its lease`);
    }
    stopAgent(h);
    // Out of the cluster first (nothing below may start an agent again), then the cluster's networks go with it
    // (those a container still holds, after --force, stay: check says so).
    removeClusterConfig(h.root);
    h.store.tx(() => { for (const n of nets) h.store.setRemoteEndpoints(n.id, []); });
    for (const n of nets) if (!dropClusterNetwork(h, n)) notes.push(`network ${n.name} stays: containers of this host still use it`);
    return notes;
  });
}

/** The cluster's hosts, as etcd has them. */
export function clusterHosts(h: Host): Array<{ host: string; advertise: string; joined: number; heartbeat: number; labels: Record<string, string> }> {
  requireCluster(h, 'nsnet cluster ls');
  return agentCall(h, 'hosts');
}
