// `nsnet up` / `nsnet down`: a topology (src/topology/compose.ts) made real, converging. Every object `up` makes
// carries the project's labels (as Compose's) and a hash of what it was made from: a second `up` of the same file
// changes nothing, a changed service or network is re-created (and only it, with what depends on it), a service
// scaled down or removed from the file loses its containers. Each step is one of the engine's own transactions
// (createNetwork, createContainer, startContainer, removeContainer, removeNetwork), so `up` interrupted at any
// point (Ctrl-C, kill -9) leaves a state the next `up` or `reconcile` finishes. `down` removes exactly what carries
// the project's label, nothing else. A file's `x-partitions` are applied last, through `nsnet partition`'s and
// `nsnet heal`'s use cases (one transaction each), and converge the same way (applyTopologyPartitions).
import crypto from 'node:crypto';
import fs from 'node:fs';
import { containerConfig } from './config.js';
import { connect, createContainer, execCaptured, refreshState, removeContainer, startContainer, stopContainer } from './containers.js';
import { logFile } from './state.js';
import type { Host } from './host.js';
import { createNetwork, removeNetwork, type NetworkCreateOptions } from './networks.js';
import {
  NETWORK_LABEL, PROJECT_LABEL, SERVICE_LABEL, containerNames, type Topology, type TopologyNetwork, type TopologyService,
} from '../topology/compose.js';
import type { ContainerRecord, NetworkRecord } from '../types.js';
import { UserError } from '../util/errors.js';
import { ensureNetem } from './netem.js';
import { heal, partition } from './partitions.js';
import { compareFirewall, firewallState, foreignOwner, listedTable, ownerOf } from './firewall.js';
import { buildModel } from '../firewall/ruleset.js';
import { recoverIfNeeded } from './reconcile.js';

/** Prefix of the id of a partition `up` made from the file's x-partitions (a partition made by hand has a bare
 *  hex id): `up` heals its own when the file no longer declares it, and leaves a hand-made one alone. */
export const TOPOLOGY_PARTITION_PREFIX = 'up-';

/** The hash of what an object was made from. */
export const HASH_LABEL = 'nsnet.topology.hash';
const NUMBER_LABEL = 'com.docker.compose.container-number';

const hash = (v: unknown) => crypto.createHash('sha256').update(JSON.stringify(v)).digest('hex').slice(0, 16);

export function networkSpec(n: TopologyNetwork): unknown {
  const spec = { name: n.name, internal: n.internal, subnet: n.subnet ?? null, gateway: n.gateway ?? null, ipRange: n.ipRange ?? null, options: n.options, labels: n.labels };
  // The families only when not the IPv4-only default, so that a network of a file without IPv6 keeps the hash it
  // was made with before IPv6 (an upgraded nsnet's `up` of the same file re-creates nothing).
  if (!hasIPv6(n)) return spec;
  return { ...spec, ipv6: n.enableIPv6, ipv4: n.enableIPv4, subnet6: n.subnet6 ?? null, gateway6: n.gateway6 ?? null, ipRange6: n.ipRange6 ?? null };
}

const hasIPv6 = (n: TopologyNetwork) => n.enableIPv6 || !n.enableIPv4;

/** `network create`'s options for a network of the file: --ipv6 / --ipv4=false and a subnet per family. */
export function createOptions(n: TopologyNetwork): NetworkCreateOptions {
  const common = { name: n.name, internal: n.internal, options: n.options };
  if (!hasIPv6(n)) return { ...common, subnet: n.subnet, gateway: n.gateway, ipRange: n.ipRange };
  const both = (a: string | undefined, b: string | undefined) => [a, b].filter((x): x is string => x !== undefined);
  return {
    ...common, ipv6: n.enableIPv6, ipv4: n.enableIPv4,
    subnets: both(n.subnet, n.subnet6), gateways: both(n.gateway, n.gateway6), ipRanges: both(n.ipRange, n.ipRange6),
  };
}

/** A service's containers' spec: includes the hashes of the networks they are on (a re-created network means
 *  re-created containers: their endpoints went with it). */
function serviceSpec(s: TopologyService, netHash: Map<string, string>): unknown {
  return {
    // x-netem is not part of it: an impairment changes without re-creating the container (applyTopologyNetem).
    command: s.command, env: s.environment, workdir: s.workingDir ?? '', networks: s.networks.map((n) => ({
      key: n.key, aliases: n.aliases, ipv4Address: n.ipv4Address,
      ...(n.ipv6Address !== undefined ? { ipv6Address: n.ipv6Address } : {}), // absent: the hash made before IPv6
      net: netHash.get(n.key),
    })),
    mode: s.networkMode ?? null, ports: s.ports, dns: s.dns, labels: s.labels, healthcheck: s.healthcheck ?? null,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface UpReport {
  lines: string[];
}

function projectContainers(h: Host, project: string): Array<{ c: ContainerRecord; labels: Record<string, string> }> {
  return h.store.containers().map((c) => ({ c, labels: containerConfig(h, c).labels })).filter((x) => x.labels[PROJECT_LABEL] === project);
}

function projectNetworks(h: Host, project: string): NetworkRecord[] {
  return h.store.networks().filter((n) => n.labels[PROJECT_LABEL] === project);
}

/** Waits until a service's condition holds for each of its containers. */
async function waitFor(h: Host, s: TopologyService, names: string[], condition: TopologyService['dependsOn'][number]['condition'], say: (l: string) => void): Promise<void> {
  for (const name of names) {
    if (condition === 'service_started') continue;
    if (condition === 'service_completed_successfully') {
      for (;;) {
        const c = refreshState(h, h.store.findContainer(name)!);
        if (c.state === 'exited') {
          if (c.exitCode === 0) break;
          throw new UserError(`service ${s.name}: container ${name} exited with ${c.exitCode}: its dependents are not started`, 'refused');
        }
        await sleep(100);
      }
      continue;
    }
    const hc = s.healthcheck!;
    await sleep(hc.startPeriodMs);
    let failures = 0;
    for (;;) {
      const r = execCaptured(h, name, hc.test);
      if (r.status === 0) {
        say(`Container ${name}  Healthy`);
        break;
      }
      if (++failures > hc.retries) throw new UserError(`service ${s.name}: container ${name} is unhealthy (${hc.test.join(' ')} exited ${r.status}): its dependents are not started`, 'refused');
      await sleep(hc.intervalMs);
    }
  }
}

export async function up(h: Host, t: Topology, say: (line: string) => void): Promise<void> {
  const P = t.project;
  // External networks must exist before anything is made.
  for (const n of t.networks) {
    if (n.external && !h.store.findNetwork(n.name)) throw new UserError(`network ${n.name} declared as external, but could not be found`, 'notfound');
  }
  // An earlier `up` killed half-way is finished or rolled back first (as every use case does it), so that what
  // is compared below is the state, not a pending row of it (a connect killed at connect:persisted).
  h.lock.with(() => recoverIfNeeded(h));
  const existingCtrs = projectContainers(h, P);
  const netHash = new Map<string, string>();
  // 1. Networks: unchanged, re-created (with every project container on them), or made.
  for (const n of t.networks) {
    if (n.external) {
      netHash.set(n.key, `external:${n.name}`);
      continue;
    }
    const want = hash(networkSpec(n));
    netHash.set(n.key, want);
    const have = h.store.findNetwork(n.name);
    if (have && have.labels[HASH_LABEL] === want) continue;
    if (have) {
      if (have.labels[PROJECT_LABEL] !== P) throw new UserError(`network ${n.name} exists and is not project ${P}'s: remove it or rename the network`, 'conflict');
      for (const x of existingCtrs) {
        if (h.store.endpointsOf(x.c.id).some((e) => e.networkId === have.id) && h.store.containerById(x.c.id)) {
          await removeContainer(h, x.c.id, true);
          say(`Container ${x.c.name}  Removed`);
        }
      }
      removeNetwork(h, have.id);
      say(`Network ${n.name}  Removed`);
    }
    createNetwork(h, { ...createOptions(n), labels: { ...n.labels, [PROJECT_LABEL]: P, [NETWORK_LABEL]: n.key, [HASH_LABEL]: want } });
    say(`Network ${n.name}  Created`);
  }
  // 2. Containers that no longer belong (service gone, scaled down) go first: their names and addresses free up.
  const wanted = new Set(t.services.flatMap((s) => containerNames(P, s)));
  for (const x of projectContainers(h, P)) {
    if (!wanted.has(x.c.name)) {
      await removeContainer(h, x.c.id, true);
      say(`Container ${x.c.name}  Removed`);
    }
  }
  // 3. Services in depends_on order.
  const namesOf = new Map(t.services.map((s) => [s.name, containerNames(P, s)]));
  const netName = (key: string) => t.networks.find((n) => n.key === key)!.name;
  for (const s of t.services) {
    for (const d of s.dependsOn) {
      await waitFor(h, t.services.find((x) => x.name === d.service)!, namesOf.get(d.service)!, d.condition, say);
    }
    const want = hash(serviceSpec(s, netHash));
    const names = namesOf.get(s.name)!;
    for (const [i, name] of names.entries()) {
      const have = h.store.findContainer(name);
      if (have) {
        const labels = containerConfig(h, have).labels;
        if (labels[PROJECT_LABEL] !== P) throw new UserError(`container ${name} exists and is not project ${P}'s: remove it first`, 'conflict');
        if (labels[HASH_LABEL] === want) {
          // An `up` killed between the container's create and its connects (crash points create:committed,
          // connect:*) left it on fewer networks than the file says: connected now, before it is started.
          const on = new Set(h.store.endpointsOf(have.id).map((e) => e.networkId));
          for (const m of s.networkMode ? [] : s.networks) {
            const n = h.store.findNetwork(netName(m.key));
            if (n && on.has(n.id)) continue;
            connect(h, netName(m.key), have.id, { ip: m.ipv4Address, ip6: m.ipv6Address, aliases: [s.name, ...m.aliases] });
            say(`Container ${name}  Connected to ${netName(m.key)}`);
          }
          if (refreshState(h, have).state !== 'running') {
            startContainer(h, have.id);
            say(`Container ${name}  Started`);
          }
          continue;
        }
        await removeContainer(h, have.id, true);
        say(`Container ${name}  Removed`);
      }
      const net = s.networkMode;
      const [first, ...more] = s.networks;
      const mode = !net ? netName(first.key) : net.kind === 'service' ? `container:${namesOf.get(net.target!)![0]}` : net.kind === 'container' ? `container:${net.target}` : net.kind;
      const { container } = createContainer(h, {
        name, network: mode, ip: first?.ipv4Address, ip6: first?.ipv6Address, aliases: first ? [s.name, ...first.aliases] : [], publish: s.ports, dns: s.dns,
        command: s.command,
        config: {
          env: Object.entries(s.environment).map(([k, v]) => `${k}=${v}`), workdir: s.workingDir ?? '',
          labels: { ...s.labels, [PROJECT_LABEL]: P, [SERVICE_LABEL]: s.name, [NUMBER_LABEL]: String(i + 1), [HASH_LABEL]: want },
        },
      });
      for (const m of more) connect(h, netName(m.key), container.id, { ip: m.ipv4Address, ip6: m.ipv6Address, aliases: [s.name, ...m.aliases] });
      startContainer(h, container.id);
      say(`Container ${name}  Started`);
    }
  }
  applyTopologyNetem(h, t, say);
  applyTopologyPartitions(h, t, say);
}

/** The file's x-partitions, once every service is up: per network of the project, the partition in force is
 *  left when it is the file's and cuts the same containers (a re-created container left it: it is made again),
 *  replaced when the file declares another one (a hand-made one included), healed when `up` made it and the file
 *  no longer declares it; a hand-made partition on a network the file declares none for is left alone. */
function applyTopologyPartitions(h: Host, t: Topology, say: (line: string) => void): void {
  const byName = new Map(t.services.map((s) => [s.name, s]));
  const apply = (n: TopologyNetwork, netId: string, groups: string[][], want: Topology['partitions'][number]) => {
    partition(h, { network: netId, groups: groups.map((g) => g.join(',')), oneway: want.oneway, idPrefix: TOPOLOGY_PARTITION_PREFIX });
    say(`Network ${n.name}  Partitioned (${want.groups.map((g) => g.join(',')).join(want.oneway ? ' -> ' : ' | ')})`);
  };
  const unchanged: Array<() => void> = [];
  for (const n of t.networks) {
    if (n.external) continue;
    const net = h.store.findNetwork(n.name);
    if (!net) continue;
    const have = h.store.partitionOf(net.id);
    const mine = !!have && have.id.startsWith(TOPOLOGY_PARTITION_PREFIX) && have.expires === null;
    const want = t.partitions.find((p) => p.network === n.key);
    if (!want) {
      if (mine) {
        heal(h, { network: net.id });
        say(`Network ${n.name}  Healed`);
      }
      continue;
    }
    const groups = want.groups.map((g) => g.flatMap((s) => containerNames(t.project, byName.get(s)!)));
    if (mine && have.oneway === want.oneway) {
      const ids = groups.map((g) => g.map((name) => h.store.findContainer(name)?.id ?? null));
      if (JSON.stringify(ids) === JSON.stringify(have.groups)) {
        unchanged.push(() => apply(n, net.id, groups, want));
        continue;
      }
    }
    apply(n, net.id, groups, want);
  }
  // The store holds the file's partitions as they are: the firewall must too (an `up` killed between the
  // partition's record and its render, crash point partition:persisted, left it behind): made again if not.
  if (unchanged.length && !firewallCurrent(h)) for (const redo of unchanged) redo();
}

/** Do nsnet's tables in the kernel agree with the store (as `check` compares them)? Read-only. */
function firewallCurrent(h: Host): boolean {
  if (foreignOwner(h)) return true; // not this nsnet's tables: partition() would refuse with the reason
  return compareFirewall(buildModel(firewallState(h), ownerOf(h)), listedTable(h, 'inet'), () => listedTable(h, 'bridge')) === '';
}

/** Each container's x-netem on each of its networks, once every service is up (a `to` names other services'
 *  containers): set when it differs from what is in force, cleared when the file no longer has it. */
function applyTopologyNetem(h: Host, t: Topology, say: (line: string) => void): void {
  for (const s of t.services) {
    if (s.networkMode) continue;
    for (const name of containerNames(t.project, s)) {
      for (const n of s.networks) {
        const netName = t.networks.find((x) => x.key === n.key)!.name;
        const did = ensureNetem(h, name, netName, n.netem ?? null);
        if (did) say(`Container ${name}  ${did === 'set' ? 'Impaired' : 'Unimpaired'} on ${netName}`);
      }
    }
  }
}

export async function down(h: Host, project: string, say: (line: string) => void): Promise<void> {
  // Sharers (network_mode service:/container:) before the containers whose netns they share.
  const ctrs = projectContainers(h, project).sort((a, b) => (b.c.mode === 'container' ? 1 : 0) - (a.c.mode === 'container' ? 1 : 0));
  // Stopped all at once, as Compose does (SIGTERM, SIGKILL after 10 s), then removed one by one: one after the
  // other, each stop would wait for its own container's end.
  await Promise.all(ctrs.map((x) => stopContainer(h, x.c.id, 10, false).catch(() => undefined)));
  for (const x of ctrs) {
    if (!h.store.containerById(x.c.id)) continue; // an --rm one removed itself
    await removeContainer(h, x.c.id, true);
    say(`Container ${x.c.name}  Removed`);
  }
  for (const n of projectNetworks(h, project)) {
    removeNetwork(h, n.id);
    say(`Network ${n.name}  Removed`);
  }
}

/** `up` without -d: the project's logs, each line prefixed by its container's name, until every container has
 *  ended (exit 0) or the user interrupts (the project's containers are then stopped, as Compose does; exit 130). */
export async function followProject(h: Host, project: string, write: (s: string) => void): Promise<number> {
  const ctrs = projectContainers(h, project).map((x) => x.c);
  const width = Math.max(0, ...ctrs.map((c) => c.name.length));
  const offsets = new Map<string, number>();
  const partial = new Map<string, string>();
  let interrupted = false;
  const onSignal = () => { interrupted = true; };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    for (;;) {
      let running = 0;
      for (const c of ctrs) {
        const file = logFile(h, c);
        let text = '';
        try {
          const fd = fs.openSync(file, 'r');
          try {
            const size = fs.fstatSync(fd).size;
            const from = offsets.get(c.id) ?? 0;
            if (size > from) {
              const buf = Buffer.alloc(size - from);
              fs.readSync(fd, buf, 0, buf.length, from);
              offsets.set(c.id, size);
              text = buf.toString('utf8');
            }
          } finally {
            fs.closeSync(fd);
          }
        } catch { /* no output yet */ }
        const lines = ((partial.get(c.id) ?? '') + text).split('\n');
        partial.set(c.id, lines.pop()!);
        for (const l of lines) write(`${c.name.padEnd(width)}  | ${l}\n`);
        const now = h.store.containerById(c.id);
        if (now && refreshState(h, now).state === 'running') running++;
      }
      if (interrupted || !running) break;
      await sleep(200);
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (!interrupted) return 0;
  for (const c of ctrs) if (h.store.containerById(c.id)) await stopContainer(h, c.id, 10);
  return 130;
}
