// The store rebuilt from what the kernel shows (`nsnet reconcile --rebuild`), for a store that was lost, emptied
// or replaced while nsnet's networks and containers kept running (src/engine/storeguard.ts detects that state).
//
// What each source gives:
//   - bridges' marks (src/engine/marks.ts): network id, name, default/internal/icc; the bridge's address gives
//     the gateway and subnet, its MTU the network's; <root>/networks/<id>.json (netcopy.ts) adds labels, options
//     and the IP range when it survived;
//   - each container namespace's loopback mark: container id, name, network mode; its interfaces give each
//     endpoint's address and MAC; <containerDir>/config.json's `recovery` (written at create) gives the command,
//     published ports, --dns, --rm and creation time when it survived;
//   - host ends of veths' marks: which container and interface they belong to, static address or not, DNS aliases;
//     their bridge says which network;
//   - the running supervisors (by the exit file they write): which containers run, with which pid.
// Whatever cannot be rebuilt (objects made by an nsnet before marks described them, CNI attachments, veths whose
// container was not found) is reported and left alone: the store stays marked lost for them, so reconcile still
// removes nothing without --force.
import fs from 'node:fs';
import path from 'node:path';
import { withNetnsNetlink, type LinkInfo, type Netlink } from '../kernel/netlink.js';
import { listNetns } from '../kernel/netns.js';
import { findSupervisors } from '../kernel/proc.js';
import { startDate } from '../kernel/pidstat.js';
import type { ContainerRecord, EndpointRecord, NetworkRecord } from '../types.js';
import { UserError } from '../util/errors.js';
import { formatIPv4, parseCidr } from '../util/ip.js';
import { isSafeName } from '../util/validate.js';
import type { RecoveryFields } from './config.js';
import type { Host } from './host.js';
import { parseMark } from './marks.js';
import { readNetworkCopy, readSavedCopy } from './netcopy.js';
import type { SavedEndpoint } from '../store/store.js';
import { clearStoreLost, setStoreLost, storeLost } from './storeguard.js';
import { reconcile } from './reconcile.js';

export interface RebuildReport {
  networks: string[];
  containers: string[];
  endpoints: number;
  /** Objects of the kernel that were not rebuilt, and why. */
  left: string[];
  /** What was rebuilt only in part (e.g. no copy of the record: labels unknown). */
  partial: string[];
}

interface SeenNetns {
  netns: string;
  id: string;
  name: string;
  mode: 'bridge' | 'none';
  /** Interfaces inside, by name: MAC and IPv4 address. */
  ifaces: Map<string, { mac: string; ip: string | null; ip6: string | null }>;
}

function readRecovery(h: Host, id: string): RecoveryFields | null {
  try {
    const f = path.join(h.containerDir(id), 'config.json');
    if (!fs.lstatSync(f).isFile()) return null;
    const cfg = JSON.parse(fs.readFileSync(f, 'utf8')) as { recovery?: RecoveryFields };
    const r = cfg.recovery;
    return r && typeof r.name === 'string' && Array.isArray(r.command) && Array.isArray(r.ports) ? r : null;
  } catch {
    return null;
  }
}

function exitCodeOf(h: Host, id: string): { code: number; at: string } | null {
  try {
    const f = path.join(h.containerDir(id), 'exitcode');
    const s = fs.readFileSync(f, 'utf8').trim();
    return /^\d+$/.test(s) ? { code: Number(s), at: fs.statSync(f).mtime.toISOString() } : null;
  } catch {
    return null;
  }
}

/** Namespaces under /run/netns whose loopback carries this host's container mark. */
function markedContainers(h: Host, left: string[]): SeenNetns[] {
  const out: SeenNetns[] = [];
  for (const name of listNetns()) {
    if (!name.startsWith(h.netnsPrefix) || !isSafeName(name)) continue;
    let seen: SeenNetns | 'old' | null = null;
    try {
      seen = withNetnsNetlink(name, (nl) => {
        const links = nl.links();
        const m = parseMark(links.find((l) => l.index === 1)?.alias, h.owner);
        if (!m) return null; // not nsnet's (or another nsnet's)
        if (m.kind !== 'ctr') return 'old';
        const all = nl.addresses();
        const addrs = all.filter((a) => a.family === 4);
        // IPv6: the global address nsnet gave (not the link-local one the kernel adds).
        const addrs6 = all.filter((a) => a.family === 6 && a.scope === 0);
        const ifaces = new Map<string, { mac: string; ip: string | null; ip6: string | null }>();
        for (const l of links) {
          if (l.index !== 1) {
            ifaces.set(l.name, { mac: l.mac, ip: addrs.find((a) => a.index === l.index)?.address ?? null, ip6: addrs6.find((a) => a.index === l.index)?.address ?? null });
          }
        }
        return { netns: name, id: m.id, name: m.name, mode: m.mode as 'bridge' | 'none', ifaces };
      });
    } catch {
      /* gone meanwhile, or not a netns */
    }
    if (seen === 'old') left.push(`network namespace ${name} (made by an nsnet before its marks described containers)`);
    else if (seen) out.push(seen);
  }
  return out;
}

function networkFrom(h: Host, link: LinkInfo, m: Extract<ReturnType<typeof parseMark>, { kind: 'net' }>, hostAddrs: ReturnType<Netlink['addresses']>, partial: string[]): NetworkRecord | null {
  const copy = readNetworkCopy(h, m.id);
  if (copy && copy.bridge === link.name && copy.name === m.name) return copy;
  const a = hostAddrs.find((x) => x.index === link.index && x.family === 4);
  if (!a) return null;
  const c = parseCidr(`${a.address}/${a.prefixLen}`, 'bridge address');
  partial.push(`network ${m.name}: labels, options and IP range not recovered (no copy of its record)`);
  return {
    id: m.id, name: m.name, driver: 'bridge', bridge: link.name, subnet: `${formatIPv4(c.network)}/${c.prefix}`, gateway: a.address,
    ipRange: null, internal: m.internal, icc: m.icc, mtu: link.mtu, isDefault: m.isDefault, labels: {}, options: {},
    created: new Date().toISOString(),
  };
}

/** Rebuilds the store's records of networks, containers and endpoints from the kernel; changes no kernel object.
 *  Refused unless the store was recorded lost (an intact store is the truth: nothing to rebuild). */
export function rebuildStore(h: Host): RebuildReport {
  return h.lock.with(() => {
    if (!storeLost(h)) {
      throw new UserError(`the store ${h.store.file} was not lost: nothing to rebuild (nsnet reconcile repairs the kernel from it)`, 'refused');
    }
    const r: RebuildReport = { networks: [], containers: [], endpoints: 0, left: [], partial: [] };
    const links = h.nl.links();
    const hostAddrs = h.nl.addresses();
    const byIndex = new Map(links.map((l) => [l.index, l]));
    const known = {
      netIds: new Set(h.store.allNetworksIncludingPending().map((n) => n.id)),
      netNames: new Set(h.store.allNetworksIncludingPending().flatMap((n) => [n.name, n.bridge])),
      ctrIds: new Set(h.store.allContainersIncludingPending().map((c) => c.id)),
      ctrNames: new Set(h.store.allContainersIncludingPending().map((c) => c.name)),
    };

    // 1. Networks, from bridges.
    const nets = new Map<number, NetworkRecord>(); // by bridge ifindex
    for (const l of links) {
      const m = parseMark(l.alias, h.owner);
      if (!m || l.kind !== 'bridge') continue;
      if (m.kind !== 'net') {
        r.left.push(`bridge ${l.name} (made by an nsnet before its marks described networks)`);
        continue;
      }
      if (known.netIds.has(m.id) || known.netNames.has(m.name) || known.netNames.has(l.name)) continue; // recorded since
      const n = networkFrom(h, l, m, hostAddrs, r.partial);
      if (!n) {
        r.left.push(`bridge ${l.name} of network ${m.name} (it has no IPv4 address)`);
        continue;
      }
      nets.set(l.index, n);
    }

    // 2. Containers, from their namespaces; their processes from the running supervisors.
    const supervisors = findSupervisors();
    const ctrs = new Map<string, { c: ContainerRecord; seen: SeenNetns }>();
    const now = new Date().toISOString();
    for (const s of markedContainers(h, r.left)) {
      if (known.ctrIds.has(s.id)) continue;
      if (known.ctrNames.has(s.name)) {
        r.left.push(`network namespace ${s.netns} of container ${s.name} (a container of that name was created since)`);
        continue;
      }
      const rec = readRecovery(h, s.id);
      if (!rec) r.partial.push(`container ${s.name}: command, published ports and --dns not recovered (no config.json)`);
      const sup = supervisors.get(path.join(h.containerDir(s.id), 'exitcode'));
      const code = sup ? null : exitCodeOf(h, s.id);
      const c: ContainerRecord = {
        id: s.id, name: s.name, mode: s.mode, modeTarget: null, netns: s.netns,
        command: rec?.command ?? [], ports: rec?.ports ?? [], dns: rec?.dns ?? [], autoRemove: rec?.autoRemove ?? false,
        state: sup ? 'running' : code ? 'exited' : 'created', pid: sup?.pid ?? null, pidStart: sup?.start ?? null,
        exitCode: code?.code ?? null, created: rec?.created ?? now,
        // Started: when its supervisor began (the kernel knows); finished: when the exit code was written.
        started: sup ? (startDate(sup.start)?.toISOString() ?? now) : code ? code.at : null, finished: code?.at ?? null,
        used: !!sup || !!code,
      };
      ctrs.set(s.id, { c, seen: s });
    }

    // 3. Endpoints, from the host ends of veths.
    const eps: EndpointRecord[] = [];
    const taken = new Set<string>(); // network id + address: one address is never handed out twice
    for (const l of links) {
      const m = parseMark(l.alias, h.owner);
      if (!m || l.kind !== 'veth') continue;
      if (m.kind !== 'ep') {
        r.left.push(`interface ${l.name} (made by an nsnet before its marks described endpoints)`);
        continue;
      }
      const owner = ctrs.get(m.containerId);
      const br = l.master !== null ? byIndex.get(l.master) : undefined;
      const net = l.master !== null ? nets.get(l.master) : undefined;
      if (!owner) {
        // A CNI attachment (its namespace is the runtime's), or a container recorded since: not ours to guess.
        if (!known.ctrIds.has(m.containerId)) r.left.push(`interface ${l.name} (container ${m.containerId.slice(0, 12)} not found: a CNI attachment, or its namespace is gone)`);
        continue;
      }
      if (!net) {
        r.left.push(`interface ${l.name} of container ${owner.c.name} (its bridge ${br?.name ?? '?'} is not a rebuilt network)`);
        continue;
      }
      const inside = owner.seen.ifaces.get(m.ifname);
      // The addresses of the network's families (an IPv6 address only on a network with IPv6).
      const ip = net.subnet ? inside?.ip ?? null : null;
      const ip6 = net.subnet6 ? inside?.ip6 ?? null : null;
      if (!inside || (!ip && !ip6)) {
        r.left.push(`interface ${l.name} of container ${owner.c.name} (no ${m.ifname} with an address inside)`);
        continue;
      }
      const dup = [ip, ip6].find((a) => a && taken.has(`${net.id} ${a}`));
      if (dup) {
        r.left.push(`interface ${l.name} of container ${owner.c.name} (${dup} is used twice on network ${net.name})`);
        continue;
      }
      for (const a of [ip, ip6]) if (a) taken.add(`${net.id} ${a}`);
      if (m.truncated) r.partial.push(`container ${owner.c.name} on ${net.name}: some DNS aliases not recovered (they did not fit in the mark)`);
      eps.push({
        containerId: owner.c.id, containerName: owner.c.name, networkId: net.id, ifname: m.ifname, hostIf: l.name,
        ip: ip ?? '', ip6, mac: inside.mac, aliases: m.aliases, staticIp: m.staticIp,
        // Whether the IPv6 address was --ip6 is not in the mark: kept as dynamic (start may give it back anyway).
        staticIp6: false,
      });
    }

    // 4. One transaction: everything or nothing.
    h.store.tx(() => {
      for (const n of nets.values()) h.store.insertNetwork(n, false);
      for (const { c } of ctrs.values()) {
        h.store.insertContainer(c, false);
        // A stopped container's attachments (its namespace holds no interface): start gives them back.
        const saved = readSavedCopy(h, c.id);
        if (saved) h.store.setSavedEndpoints(c.id, saved as unknown as SavedEndpoint[]);
      }
      for (const e of eps) h.store.insertEndpoint(e, false);
    });
    r.networks = [...nets.values()].map((n) => n.name).sort();
    r.containers = [...ctrs.values()].map((x) => x.c.name).sort();
    r.endpoints = eps.length;
    if (r.left.length) setStoreLost(h, `${r.left.length} object(s) the rebuild could not place: ${r.left.slice(0, 5).join('; ')}${r.left.length > 5 ? '; ...' : ''}`);
    else clearStoreLost(h);
    return r;
  });
}

/** `reconcile --rebuild`: the store rebuilt, then the kernel reconciled with it; what could not be placed stays (the
 *  store is still marked lost for it): repaired around, never removed. */
export function rebuildAndReconcile(h: Host): { report: RebuildReport; actions: string[] } {
  const report = rebuildStore(h);
  return { report, actions: reconcile(h, { keepOrphans: report.left.length > 0 }).actions };
}

/** The report as lines for the CLI. */
export function rebuildLines(r: RebuildReport): string[] {
  const out = [
    `rebuilt ${r.networks.length} network(s)${r.networks.length ? ': ' + r.networks.join(', ') : ''}`,
    `rebuilt ${r.containers.length} container(s)${r.containers.length ? ': ' + r.containers.join(', ') : ''} with ${r.endpoints} endpoint(s)`,
  ];
  for (const p of r.partial) out.push(`partly: ${p}`);
  for (const l of r.left) out.push(`not rebuilt: ${l}`);
  return out;
}
