// Keeps the embedded resolver (src/dns/main.ts, one long-lived process per host) in step with the store.
// The view (networks, names, upstreams) is written to <root>/dns/view.json; the resolver reloads it on SIGHUP and
// acknowledges by writing the view's generation to view.json.loaded, which we wait for: a container is
// resolvable as soon as the command that started it returns. `create` does not wait (nothing runs yet); every
// launch of a process makes the resolver apply all changes so far and waits for it (awaitDns).
// The process the engine starts is the resolver's supervisor (src/dns/supervisor.ts: <root>/dns/pid), which runs
// the resolver itself (<root>/dns/resolver.pid) and restarts it when it dies. Both get a minimal environment of
// their own, never the starting command's (which may be a client's whole environment, secrets included).
// Files under <root>/dns/ are never opened through a symlink (src/dns/files.ts): view.json and its delta log
// 0600, the log 0600, pid files and the acknowledgement 0644.
import { childProcess } from '../util/lazy.js';
import { syncCluster } from './cluster.js';
import { sleepSync } from '../util/sleep.js';
import fs from 'node:fs';
import path from 'node:path';
import { appendFileSafe, ensurePrivateDir, openAppend, readFileSafe, writeFileAtomic } from '../dns/files.js';
import { isAlive, processStart, signal } from '../kernel/proc.js';
import { hostResolvConf, resolvConfFile } from './etc.js';
import type { Host } from './host.js';

export interface DnsView {
  generation: number;
  networks: Array<{ id: string; name: string; gateway: string; subnet: string; internal: boolean; gateway6?: string; subnet6?: string }>;
  entries: Array<{ networkId: string; names: string[]; ip: string; ip6?: string; containerId: string }>;
  upstreams: string[];
  overrides: Record<string, string[]>;
  /** The host's resolv.conf, which the resolver follows (see src/dns/main.ts). */
  resolvConf: string;
}

/** The resolver's processes as the engine drives them, through Host.kernel.resolver (src/engine/host.ts): the real
 *  ones below ({@link processResolver}), or a unit test's fake. The view files under <root>/dns/ are the engine's
 *  either way. */
export interface ResolverPort {
  /** Whether the resolver is built (src/dns/main.js next to this file): without it nothing is started or told. */
  available(): boolean;
  running(h: Host): boolean;
  /** Starts the supervisor on <root>/dns/view.json (a stale resolver of a killed supervisor stopped first); the
   *  engine then waits for view.json.loaded. */
  start(h: Host): void;
  /** Tells the running resolver to read its view and delta log again (SIGHUP). */
  reload(h: Host): void;
  stop(h: Host): void;
}

export const processResolver: ResolverPort = {
  available: () => fs.existsSync(resolverMain()),
  running: (h) => { const p = readPid(h); return !!p && isAlive(p.pid, p.start); },
  start: (h) => startResolver(h),
  reload: (h) => { signal(readPid(h)!.pid, 'SIGHUP'); },
  stop: (h) => stopResolverProcesses(h),
};

function dir(h: Host): string {
  return path.join(h.root, 'dns');
}
const viewFile = (h: Host) => path.join(dir(h), 'view.json');
const pidFile = (h: Host) => path.join(dir(h), 'pid');
const childPidFile = (h: Host) => path.join(dir(h), 'resolver.pid');


/** The resolver's view, derived from the store: user-defined networks only (the default bridge has no name
 *  service, as Docker). The resolver runs in the host netns, so loopback upstreams (127.0.0.53) work for it. */
export function dnsView(h: Host, generation: number): DnsView {
  const nets = h.store.networks().filter((n) => !n.isDefault);
  const ids = new Set(nets.map((n) => n.id));
  const entries: DnsView['entries'] = [];
  const overrides: DnsView['overrides'] = {};
  for (const e of h.store.dnsEntries()) if (ids.has(e.networkId)) addEntry(entries, overrides, e);
  return {
    generation,
    networks: nets.map((n) => ({
      id: n.id, name: n.name, gateway: n.gateway, subnet: n.subnet, internal: n.internal,
      ...(n.subnet6 && n.gateway6 ? { gateway6: n.gateway6, subnet6: n.subnet6 } : {}),
    })),
    entries, upstreams: hostResolvConf(h.env).nameservers, overrides, resolvConf: resolvConfFile(h.env),
  };
}

/** What the resolver knows of one endpoint: the container's name and aliases, and its --dns servers. */
function addEntry(entries: DnsView['entries'], overrides: DnsView['overrides'],
  e: { networkId: string; ip: string; ip6?: string | null; aliases: string[]; containerId: string; name: string; dns: string[] }): void {
  entries.push({ networkId: e.networkId, names: [e.name, ...e.aliases], ip: e.ip, ...(e.ip6 ? { ip6: e.ip6 } : {}), containerId: e.containerId });
  if (e.dns.length) {
    if (e.ip) overrides[e.ip] = e.dns;
    if (e.ip6) overrides[e.ip6] = e.dns;
  }
}

function nextGeneration(h: Host): number {
  const gen = Number(h.store.getMeta('dns.generation') ?? '0') + 1;
  h.store.setMeta('dns.generation', String(gen));
  return gen;
}

/** A resolver update never fails the network operation itself: it is reported, and `reconcile` restarts it. */
function reported(h: Host, fn: () => void): void {
  if (!h.kernel.resolver.available()) return; // resolver not built
  try {
    fn();
  } catch (e) {
    h.warn((e as Error).message);
  }
}

/** Tells the running resolver to read its view and log again. Not one that has not acknowledged anything since it
 *  was started (no .loaded file): it loads everything when it is up, and its supervisor may not have its signal
 *  handlers yet (a SIGHUP during Node's start-up would end it). */
function hup(h: Host): void {
  try {
    fs.lstatSync(viewFile(h) + '.loaded'); // whatever is there (even something planted): acknowledged before
  } catch {
    return; // none since this start: it loads everything when it is up
  }
  h.kernel.resolver.reload(h);
}

function signalAndWait(h: Host, gen: number): void {
  hup(h);
  if (!waitLoaded(h, gen)) throw new Error(`the DNS resolver did not load its configuration (see ${path.join(dir(h), 'log')})`);
}

/** Makes the resolver apply every change made so far (if one runs) and waits for it: called before a process is
 *  launched in a container, so that changes logged without a signal (create) are visible to it. */
export function awaitDns(h: Host): void {
  reported(h, () => {
    const gen = Number(h.store.getMeta('dns.generation') ?? '0');
    if (!gen || loaded(h) >= gen) return;
    if (!resolverRunning(h)) {
      // Needed (a user-defined network) and not there: started by the network's create and gone since.
      if (dnsView(h, gen).networks.length) throw new Error(`the DNS resolver is not running (see ${path.join(dir(h), 'log')}; nsnet reconcile starts it)`);
      return;
    }
    // Possibly just started by a network create (which does not wait for it): its supervisor holds the signal until
    // the resolver is up, and the resolver loads everything when it starts.
    signalAndWait(h, gen);
  });
}

function loaded(h: Host): number {
  try {
    return Number(readFileSafe(viewFile(h) + '.loaded'));
  } catch {
    return 0;
  }
}

function readPid(h: Host, file = pidFile(h)): { pid: number; start: string } | null {
  try {
    const [pid, start] = readFileSafe(file).trim().split(' ');
    return { pid: Number(pid), start: start ?? '' };
  } catch {
    return null;
  }
}

export function resolverRunning(h: Host): boolean {
  return h.kernel.resolver.running(h);
}

function resolverMain(): string {
  return path.resolve(path.dirname(new URL(import.meta.url).pathname), '../dns/main.js');
}
function supervisorMain(): string {
  return path.resolve(path.dirname(new URL(import.meta.url).pathname), '../dns/supervisor.js');
}

function waitLoaded(h: Host, generation: number, timeoutMs = 5000): boolean {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (loaded(h) >= generation) return true;
    if (Date.now() > end) return false;
    sleepSync(0.25);
  }
}

/** Called after a change to networks (and by reconcile), with the host lock held: rewrites the whole view. */
export function notifyDns(h: Host): void {
  reported(h, () => syncDns(h));
}

function syncDns(h: Host): void {
  ensurePrivateDir(dir(h));
  const gen = nextGeneration(h);
  const view = dnsView(h, gen);
  const running = resolverRunning(h);
  if (!view.networks.length) {
    if (running) stopResolver(h);
    return;
  }
  writeFileAtomic(viewFile(h), JSON.stringify(view), 0o600);
  writeFileAtomic(deltaFile(h), '', 0o600);
  if (running) {
    signalAndWait(h, gen);
  } else {
    // Started, not waited for: its supervisor and then the resolver itself are two Node starts (≈60 ms here), and
    // nothing needs an answer before a process runs in a container — whose launch waits for this generation to be
    // loaded (awaitDns), and says so if the resolver never came up. A network create does not pay for them.
    fs.rmSync(viewFile(h) + '.loaded', { force: true }); // acknowledged again by this start (hup)
    h.kernel.resolver.start(h);
  }
}

const deltaFile = (h: Host) => viewFile(h) + '.delta';
/** Past this size the delta log is folded into a full view (amortized O(1) per change). */
const MAX_DELTA_BYTES = 256 * 1024;

/** How far a change is pushed to the resolver: `log` only appends it (nothing runs in the container yet: the next
 *  launch anywhere applies it, see awaitDns), `signal` also tells the resolver, `wait` waits until it has applied
 *  it (the change concerns a container that has run processes: it must be visible when the command returns). */
export type DnsPush = 'log' | 'signal' | 'wait';

/** Called after a change to one container's names or addresses (create, rm, connect, disconnect): appends a
 *  delta with that container's current entries to the log the resolver applies in place, instead of rewriting
 *  and reloading the whole view (which made every create O(containers)). */
export function notifyDnsContainer(h: Host, containerId: string, push: DnsPush = 'wait'): void {
  reported(h, () => {
    let size = -1;
    try {
      const st = fs.lstatSync(deltaFile(h));
      if (st.isFile()) size = st.size;
    } catch { /* no log yet */ }
    if (size < 0 || size > MAX_DELTA_BYTES || !resolverRunning(h) || !fs.existsSync(viewFile(h))) {
      syncDns(h);
      return;
    }
    const gen = nextGeneration(h);
    const c = h.store.containerById(containerId);
    const add: DnsView['entries'] = [];
    const overrides: DnsView['overrides'] = {};
    if (c) {
      for (const e of h.store.endpointsOf(containerId)) {
        if (h.store.networkById(e.networkId)?.isDefault !== false) continue;
        addEntry(add, overrides, { ...e, name: c.name, dns: c.dns });
      }
    }
    appendFileSafe(deltaFile(h), JSON.stringify({ generation: gen, containers: [containerId], add, overrides }) + '\n', 0o600);
    if (push === 'wait') signalAndWait(h, gen);
    else if (push === 'signal') hup(h);
  });
  syncCluster(h); // the container's endpoints on overlay networks are registered in the cluster
}

/** The resolver's whole environment: nothing of the starting command's (a client's environment may carry
 *  secrets, and NODE_OPTIONS or the like would change what runs as root). It reads no variable itself; PATH is
 *  fixed for completeness. */
export function resolverEnv(): NodeJS.ProcessEnv {
  return {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    // Long-lived: fewer malloc arenas keep its RSS from creeping (glibc per-thread arenas fragment).
    MALLOC_ARENA_MAX: '2',
  };
}

/** A resolver left running by a supervisor that was killed (it exits within a second by itself, but would hold
 *  the ports meanwhile): stop it before starting a new one. */
function stopStaleResolver(h: Host): void {
  const p = readPid(h, childPidFile(h));
  if (p && p.start && isAlive(p.pid, p.start)) {
    signal(p.pid, 'SIGTERM');
    const end = Date.now() + 1000;
    while (isAlive(p.pid, p.start) && Date.now() < end) sleepSync(5);
    if (isAlive(p.pid, p.start)) signal(p.pid, 'SIGKILL');
  }
  fs.rmSync(childPidFile(h), { force: true });
}

function startResolver(h: Host): void {
  stopStaleResolver(h);
  const log = openAppend(path.join(dir(h), 'log'), 0o600);
  try {
    const child = h.inHost(() => childProcess().spawn(process.execPath, [supervisorMain(), '--view', viewFile(h)], {
      detached: true, stdio: ['ignore', log, log], env: resolverEnv(),
    }));
    if (child.pid === undefined) throw new Error('cannot start the DNS resolver');
    child.unref();
    writeFileAtomic(pidFile(h), `${child.pid} ${processStart(child.pid) ?? ''}\n`, 0o644);
  } finally {
    fs.closeSync(log);
  }
}

export function stopResolver(h: Host): void {
  h.kernel.resolver.stop(h);
}

function stopResolverProcesses(h: Host): void {
  const p = readPid(h);
  if (p && isAlive(p.pid, p.start)) {
    // The supervisor passes SIGTERM on and exits once the resolver has (at most 1.5 s).
    signal(p.pid, 'SIGTERM');
    const end = Date.now() + 2500;
    while (isAlive(p.pid, p.start) && Date.now() < end) sleepSync(5);
    if (isAlive(p.pid, p.start)) signal(p.pid, 'SIGKILL');
  }
  stopStaleResolver(h);
  fs.rmSync(pidFile(h), { force: true });
}
