// Network partitions (issue #15): `nsnet partition [--network NET] A,B C,D [--oneway] [--duration 30s]` and
// `nsnet heal [--network NET]`.
//
// Semantics (Blockade's groups, Jepsen's one-way grudges):
//   - each argument is a group of containers; the containers of the network that are not listed form one more
//     group ("the rest", computed whenever the firewall is rendered: a container that joins the network later is
//     in it); traffic between two different groups is dropped, both ways, established connections included;
//   - --oneway FROM TO: exactly two groups; FROM -> TO is dropped, nothing else (the rest is not a group);
//   - one partition per network: a new one replaces the previous one (and its timer);
//   - without --network, the network is the one every listed container is on; none, or more than one, is an error
//     naming them (a partition of two networks is two commands, each with --network);
//   - the partition is state (the store's `partitions` table) and the firewall is generated from it
//     (src/firewall/build.ts, purpose `partition`), so check compares it and reconcile restores it.
//   - --duration: the expiry is recorded; a small detached process (sh sleeping, then `nsnet heal --expired ID`)
//     heals on time, and the next mutating command, check/reconcile and every render treat an expired partition
//     as healed even if that process is gone.
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import type { FirewallState, PartitionMember, PartitionState } from '../types.js';
import type { PartitionRecord } from '../store/store.js';
import { UserError, showValue } from '../util/errors.js';
import { isAlive, processStart } from '../kernel/pidstat.js';
import { spawnDetached } from '../kernel/pspawn.js';
import { crashPoint } from './faults.js';
import { applyFirewall } from './firewall.js';
import type { Host } from './host.js';
import { recoverIfNeeded } from './reconcile.js';

export interface PartitionOptions {
  /** Network name, id or id prefix; absent: the one network every listed container is on. */
  network?: string;
  /** Each a comma-separated list of container names or ids. */
  groups: string[];
  oneway?: boolean;
  /** --duration in ms (parseDuration). */
  durationMs?: number;
  /** Prefix of the partition's random id, marking who made it (`nsnet up`: TOPOLOGY_PARTITION_PREFIX). */
  idPrefix?: string;
}

/** Longest --duration: a week (the timer is a sleeping process). */
const MAX_DURATION_MS = 7 * 24 * 3600 * 1000;

/** Go-style durations as Docker and Pumba take them: `30s`, `500ms`, `2m`, `1h30m`, `1.5s`. A bare number is
 *  refused (which unit?). Throws UserError (exit 2). */
export function parseDuration(s: string): number {
  const t = s.trim();
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/y;
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60000, h: 3600000 };
  let ms = 0;
  let i = 0;
  if (!t) throw new UserError(`invalid --duration ${showValue(s)}: expected a duration such as 30s, 500ms, 2m or 1h30m`);
  while (i < t.length) {
    re.lastIndex = i;
    const m = re.exec(t);
    if (!m) throw new UserError(`invalid --duration ${showValue(s)}: expected a duration such as 30s, 500ms, 2m or 1h30m`);
    ms += Number(m[1]) * unit[m[2]];
    i = re.lastIndex;
  }
  ms = Math.round(ms);
  if (ms < 1) throw new UserError(`invalid --duration ${showValue(s)}: must be more than 0`);
  if (ms > MAX_DURATION_MS) throw new UserError(`invalid --duration ${showValue(s)}: at most 168h`);
  return ms;
}

// ------------------------------------------------------------------------------------------------ group logic

/** What the group logic needs to know about one container. */
export interface GroupContainer {
  id: string;
  name: string;
  /** Networks it is attached to (endpoints), or remembered on while stopped (saved attachments). */
  networks: string[];
}

export interface PlannedPartition {
  networkId: string;
  /** Container ids per listed group. */
  groups: string[][];
  /** Ids of the network's containers not listed (one more group unless oneway). */
  rest: string[];
  oneway: boolean;
}

/**
 * PURE: the group logic. `args` as typed (`A,B` `C`), `find` resolves one reference (name, id, id prefix) to a
 * container or null, `networkNames` names networks for errors, `onNetwork` lists the containers of a network,
 * `network` is --network resolved (or undefined). Every refusal is a UserError (bad input, exit 2) and is raised
 * before anything is changed:
 *   an empty group or name, an unknown container, a container listed twice (in one group or in two), a container
 *   not on the network, no network shared by all listed containers or more than one (without --network), fewer
 *   than two groups once the rest is counted (nothing would be cut), --oneway without exactly two groups.
 */
export function planPartition(
  args: string[],
  opts: { network?: string; oneway?: boolean },
  find: (ref: string) => GroupContainer | null,
  onNetwork: (networkId: string) => GroupContainer[],
  networkNames: (id: string) => string,
): PlannedPartition {
  if (!args.length) throw new UserError('partition: give the groups, e.g. nsnet partition a,b c (each argument one group of containers)');
  const seen = new Map<string, number>();
  const groups: GroupContainer[][] = args.map((arg, gi) => {
    const refs = arg.split(',').map((r) => r.trim());
    if (refs.some((r) => r === '')) throw new UserError(`partition: group ${gi + 1} (${showValue(arg)}) has an empty container name`);
    return refs.map((ref) => {
      const c = find(ref);
      if (!c) throw new UserError(`partition: no such container: ${showValue(ref)}`);
      const prev = seen.get(c.id);
      if (prev !== undefined) {
        throw new UserError(prev === gi
          ? `partition: container ${c.name} is listed twice in group ${gi + 1}`
          : `partition: container ${c.name} is in two groups (${prev + 1} and ${gi + 1}): a container belongs to one group`);
      }
      seen.set(c.id, gi);
      return c;
    });
  });
  const all = groups.flat();
  let networkId: string;
  if (opts.network !== undefined) {
    networkId = opts.network;
    const off = all.filter((c) => !c.networks.includes(networkId));
    if (off.length) throw new UserError(`partition: container ${off[0].name} is not on network ${networkNames(networkId)}`);
  } else {
    // The rule without --network: the networks every listed container is on; exactly one is needed.
    let shared = all[0].networks;
    for (const c of all.slice(1)) shared = shared.filter((n) => c.networks.includes(n));
    shared = [...new Set(shared)];
    if (!shared.length) {
      throw new UserError(`partition: containers ${all.map((c) => c.name).join(', ')} share no network: they must all be on the network to partition`);
    }
    if (shared.length > 1) {
      const names = shared.map(networkNames).sort();
      throw new UserError(`partition: containers ${all.map((c) => c.name).join(', ')} share ${shared.length} networks (${names.join(', ')}): choose one with --network (a partition cuts one network)`);
    }
    networkId = shared[0];
  }
  const listed = new Set(all.map((c) => c.id));
  const rest = [...new Set(onNetwork(networkId).map((c) => c.id))].filter((id) => !listed.has(id));
  const ids = groups.map((g) => g.map((c) => c.id));
  if (opts.oneway) {
    if (ids.length !== 2) throw new UserError(`partition --oneway: give exactly two groups, FROM and TO (traffic FROM -> TO is dropped), not ${ids.length}`);
  } else if (ids.length + (rest.length ? 1 : 0) < 2) {
    throw new UserError(`partition: only one group on network ${networkNames(networkId)} (every container of it is listed in it): nothing to cut; give two groups or leave some containers out`);
  }
  return { networkId, groups: ids, rest, oneway: !!opts.oneway };
}

// ------------------------------------------------------------------------------------------------ the store's view

/** Which networks every container is on: its endpoints (one query for all), or, for one without any (stopped:
 *  its endpoints released), the attachments it remembers. */
function membership(h: Host): Map<string, GroupContainer> {
  const m = new Map<string, GroupContainer>();
  for (const e of h.store.endpoints()) {
    const g = m.get(e.containerId) ?? { id: e.containerId, name: e.containerName, networks: [] };
    if (!g.networks.includes(e.networkId)) g.networks.push(e.networkId);
    m.set(e.containerId, g);
  }
  for (const c of h.store.containers()) {
    if (m.has(c.id) || c.mode !== 'bridge') continue;
    const saved = [...new Set(h.store.savedEndpoints(c.id).map((x) => x.networkId))];
    if (saved.length) m.set(c.id, { id: c.id, name: c.name, networks: saved });
  }
  return m;
}

/** The containers of a network: attached now, or remembered on it while stopped. */
function containersOn(h: Host, networkId: string, m = membership(h)): GroupContainer[] {
  return [...m.values()].filter((c) => c.networks.includes(networkId));
}

const live = (p: PartitionRecord, now: number) => p.expires === null || p.expires > now;

/** The partitions the firewall must hold now (expired ones are healed, whatever is left to do): each group's
 *  members that have an endpoint on the network, and the rest. */
export function partitionFirewallState(h: Host, now = Date.now()): FirewallState['partitions'] {
  const out: NonNullable<FirewallState['partitions']> = [];
  for (const p of h.store.partitions()) {
    if (!live(p, now)) continue;
    const eps = h.store.endpointsOn(p.networkId);
    const byContainer = new Map(eps.map((e) => [e.containerId, e]));
    const member = (id: string): PartitionMember[] => {
      const e = byContainer.get(id);
      return e ? [{ containerId: id, hostIf: e.hostIf, ip: e.ip }] : [];
    };
    const listed = new Set(p.groups.flat());
    out.push({
      networkId: p.networkId, id: p.id, oneway: p.oneway,
      groups: p.groups.map((g) => g.flatMap(member)),
      rest: eps.filter((e) => !listed.has(e.containerId)).map((e) => ({ containerId: e.containerId, hostIf: e.hostIf, ip: e.ip })),
    });
  }
  return out;
}

/** PURE: which group of a partition (as the firewall holds it: partitionFirewallState) a container of its network
 *  is in: a listed group's index, or 'rest' (the containers not listed, and one that joined since). */
export function partitionGroupOf(p: PartitionState, containerId: string): number | 'rest' {
  const k = p.groups.findIndex((g) => g.some((m) => m.containerId === containerId));
  return k >= 0 ? k : 'rest';
}

/** PURE: whether the partition drops traffic from one container of its network to another (as the firewall cuts
 *  it: different groups, the rest counting as one; --oneway: only from the first group to the second), and the
 *  groups of both. null: not cut. */
export function partitionCut(p: PartitionState, fromId: string, toId: string): { from: number | 'rest'; to: number | 'rest' } | null {
  const from = partitionGroupOf(p, fromId);
  const to = partitionGroupOf(p, toId);
  if (p.oneway) return from === 0 && to === 1 ? { from, to } : null;
  return from !== to ? { from, to } : null;
}

// ------------------------------------------------------------------------------------------------ the timer

function nsnetBin(h: Host): string {
  return h.env.NSNET_BIN ?? path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../../bin/nsnet');
}

/** Starts the detached timer of a partition with an expiry: `sh -c 'sleep S; exec nsnet --root R heal --network
 *  ID --expired PID'` in its own session (so that heal or a replacement can end it, sleep included, by its process
 *  group), in the host netns (it inherits the netns it is started in), run in-process (NSNET_NO_HELPER, as
 *  netem's healer). Returns its pid and start time. */
function startTimer(h: Host, p: PartitionRecord): { pid: number; start: string | null } {
  const secs = Math.max(0, (p.expires! - Date.now()) / 1000).toFixed(3);
  const env: Record<string, string> = { PATH: h.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', NSNET_ROOT: h.root, NSNET_NO_HELPER: '1' };
  const log = fs.openSync(path.join(h.root, 'partition-timer.log'), fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o600);
  try {
    // posix_spawn (src/kernel/pspawn.ts: koffi is loaded at its first call, not by the import).
    const pid = h.inHost(() => spawnDetached('/bin/sh', ['sh', '-c', 's=$1; shift; sleep "$s" && exec "$0" "$@"', nsnetBin(h), secs,
      '--root', h.root, 'heal', '--network', p.networkId, '--expired', p.id], env, '/', log));
    return { pid, start: processStart(pid) };
  } finally {
    fs.closeSync(log);
  }
}

/** Ends a partition's timer (its whole process group: the shell and its sleep), if it is still the process that
 *  was started (start time), and not this process itself (the timer's own heal). */
function stopTimer(p: { timerPid: number | null; timerStart: string | null }): void {
  const pid = p.timerPid;
  if (!pid || pid === process.pid || !isAlive(pid, p.timerStart)) return;
  try {
    process.kill(-pid, 'SIGTERM');
  } catch {
    try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
  }
}

// ------------------------------------------------------------------------------------------------ use cases

export interface PartitionResult {
  network: string;
  groups: string[][];
  rest: string[];
  oneway: boolean;
  expires: string | null;
  replaced: boolean;
}

function resolveNetworkRef(h: Host, ref: string) {
  const n = h.store.findNetwork(ref);
  if (!n) throw new UserError(`partition: network ${showValue(ref)} not found`);
  return n;
}

/** `nsnet partition`: validates everything first (nothing changes on a refusal), records the partition (replacing
 *  the network's previous one), renders the firewall in one transaction, starts the timer of a --duration, ends
 *  the replaced partition's timer. */
export function partition(h: Host, o: PartitionOptions): PartitionResult {
  return h.lock.with(() => {
    recoverIfNeeded(h);
    const netId = o.network !== undefined ? resolveNetworkRef(h, o.network).id : undefined;
    const m = membership(h);
    const find = (ref: string): GroupContainer | null => {
      const c = h.store.findContainer(ref);
      return c ? m.get(c.id) ?? { id: c.id, name: c.name, networks: [] } : null;
    };
    const names = (id: string) => h.store.networkById(id)?.name ?? id.slice(0, 12);
    const plan = planPartition(o.groups, { network: netId, oneway: o.oneway }, find, (id) => containersOn(h, id, m), names);
    const net = h.store.networkById(plan.networkId)!;
    const prev = h.store.partitionOf(net.id);
    const rec: PartitionRecord = {
      networkId: net.id, id: (o.idPrefix ?? '') + crypto.randomBytes(8).toString('hex'), groups: plan.groups, oneway: plan.oneway,
      created: new Date().toISOString(), expires: o.durationMs !== undefined ? Date.now() + o.durationMs : null, timerPid: null, timerStart: null,
    };
    h.store.tx(() => h.store.putPartition(rec));
    crashPoint('partition:persisted');
    try {
      applyFirewall(h);
    } catch (e) {
      // The kernel transaction changed nothing: the store goes back to what it said before.
      h.store.tx(() => (prev ? h.store.putPartition(prev) : h.store.deletePartition(net.id)));
      throw e;
    }
    crashPoint('partition:firewall');
    if (rec.expires !== null) {
      const t = startTimer(h, rec);
      h.store.tx(() => h.store.setPartitionTimer(net.id, rec.id, t.pid, t.start));
      crashPoint('partition:timer');
    }
    if (prev) stopTimer(prev);
    const name = (id: string) => h.store.containerById(id)?.name ?? id.slice(0, 12);
    return {
      network: net.name, groups: plan.groups.map((g) => g.map(name)), rest: plan.rest.map(name).sort(), oneway: plan.oneway,
      expires: rec.expires !== null ? new Date(rec.expires).toISOString() : null, replaced: !!prev,
    };
  });
}

export interface HealOptions {
  /** Network name, id or prefix; absent: every partition. */
  network?: string;
  /** The timer's heal: only this partition id, and only once it has expired (a replaced or healed one is left). */
  expired?: string;
}

/** `nsnet heal`: removes the partition of a network (or all of them) and renders the firewall in one
 *  transaction. Returns the names of the networks healed (none is not an error: heal is idempotent). */
export function heal(h: Host, o: HealOptions): string[] {
  return h.lock.with(() => {
    if (o.expired === undefined) recoverIfNeeded(h);
    let list = h.store.partitions();
    if (o.network !== undefined) {
      const n = o.expired !== undefined ? h.store.networkById(o.network) ?? h.store.findNetwork(o.network) : h.store.findNetwork(o.network);
      if (!n) {
        if (o.expired !== undefined) return []; // the network was removed meanwhile, and its partition with it
        throw new UserError(`heal: network ${showValue(o.network)} not found`);
      }
      list = list.filter((p) => p.networkId === n.id);
    }
    if (o.expired !== undefined) list = list.filter((p) => p.id === o.expired && p.expires !== null && p.expires <= Date.now());
    if (!list.length) return [];
    h.store.tx(() => { for (const p of list) h.store.deletePartition(p.networkId); });
    crashPoint('heal:persisted');
    applyFirewall(h);
    crashPoint('heal:firewall');
    if (o.expired === undefined) for (const p of list) stopTimer(p);
    return list.map((p) => h.store.networkById(p.networkId)?.name ?? p.networkId.slice(0, 12));
  });
}

/** Partitions whose --duration ran out: their rows are removed. Returns the networks' names. The caller renders
 *  the firewall (render=true: done here). Call with the lock held. Costs one indexed probe when there are none. */
export function expirePartitions(h: Host, render = true): string[] {
  const now = Date.now();
  if (!h.store.hasExpiredPartitions(now)) return [];
  const gone = h.store.partitions().filter((p) => !live(p, now));
  h.store.tx(() => { for (const p of gone) h.store.deletePartition(p.networkId); });
  if (render) applyFirewall(h);
  for (const p of gone) stopTimer(p);
  return gone.map((p) => h.store.networkById(p.networkId)?.name ?? p.networkId.slice(0, 12));
}

/** Partitions with an expiry whose timer process is gone (killed, a crash before it was started, a reboot):
 *  check reports them, reconcile starts a new timer. */
export function missingTimers(h: Host, now = Date.now()): PartitionRecord[] {
  return h.store.partitions().filter((p) => p.expires !== null && p.expires > now && !isAlive(p.timerPid, p.timerStart));
}

/** reconcile: starts the timers missing (see missingTimers). Returns what it did. Call with the lock held. */
export function restartTimers(h: Host): string[] {
  const out: string[] = [];
  for (const p of missingTimers(h)) {
    const t = startTimer(h, p);
    h.store.tx(() => h.store.setPartitionTimer(p.networkId, p.id, t.pid, t.start));
    out.push(`restarted the --duration timer of the partition of network ${h.store.networkById(p.networkId)?.name ?? p.networkId.slice(0, 12)}`);
  }
  return out;
}

/** A container leaves the partitions it is listed in (rm). Inside the caller's transaction. Returns true when the
 *  firewall must be rendered again (it was listed, or it has an endpoint on a partitioned network). A partition
 *  left with no listed container is removed; its timer is returned to be ended. */
export function leavePartitions(h: Host, containerId: string): { render: boolean; timers: PartitionRecord[] } {
  const nets = new Set(h.store.endpointsOf(containerId).map((e) => e.networkId));
  let render = false;
  const timers: PartitionRecord[] = [];
  for (const p of h.store.partitions()) {
    if (nets.has(p.networkId)) render = true;
    if (!p.groups.some((g) => g.includes(containerId))) continue;
    render = true;
    const groups = p.groups.map((g) => g.filter((id) => id !== containerId));
    if (groups.every((g) => !g.length)) {
      h.store.deletePartition(p.networkId);
      timers.push(p);
    } else {
      // A group left empty stays (its place keeps --oneway's FROM/TO meaning; an empty group cuts nothing).
      h.store.putPartition({ ...p, groups });
    }
  }
  return { render, timers };
}

/** Ends the timers leavePartitions handed back (after its transaction). */
export function stopTimers(ps: PartitionRecord[]): void {
  for (const p of ps) stopTimer(p);
}

/** The partition of a network being removed: its row goes with the network (ON DELETE CASCADE); its timer is
 *  ended here. */
export function networkRemoved(p: PartitionRecord | null): void {
  if (p) stopTimer(p);
}

// ------------------------------------------------------------------------------------------------ listing

/** One row per partition, for `nsnet partition --list` and `nsnet faults`. */
export interface PartitionRow {
  kind: 'partition';
  network: string;
  networkId: string;
  oneway: boolean;
  /** Container names per group as listed, then the rest (not for --oneway). */
  groups: string[][];
  rest: string[];
  /** What is cut, in one line: `a,b | c | (rest) d,e` or `a -> b` for --oneway. */
  cut: string;
  created: string;
  /** ISO time, or null (until healed). */
  until: string | null;
  /** Expired but not healed yet (the next nsnet command or reconcile heals it). */
  expired: boolean;
}

/** The partitions as rows (read-only: an expired one is shown as such, healed by the next mutating command). */
export function partitionsView(h: Host, now = Date.now()): PartitionRow[] {
  const name = (id: string) => h.store.containerById(id)?.name ?? id.slice(0, 12);
  const rows = h.store.partitions().map((p): PartitionRow => {
    const net = h.store.networkById(p.networkId);
    const listed = new Set(p.groups.flat());
    const rest = p.oneway ? [] : containersOn(h, p.networkId).filter((c) => !listed.has(c.id)).map((c) => c.name).sort();
    const groups = p.groups.map((g) => g.map(name));
    const show = (g: string[]) => (g.length ? g.join(',') : '(none)');
    const cut = p.oneway ? `${show(groups[0])} -> ${show(groups[1])}` : [...groups.map(show), ...(rest.length ? [`(rest) ${rest.join(',')}`] : [])].join(' | ');
    return {
      kind: 'partition', network: net?.name ?? p.networkId.slice(0, 12), networkId: p.networkId, oneway: p.oneway, groups, rest, cut,
      created: p.created, until: p.expires !== null ? new Date(p.expires).toISOString() : null, expired: !live(p, now),
    };
  });
  return rows.sort((a, b) => (a.network < b.network ? -1 : a.network > b.network ? 1 : 0));
}

/** The partitions in force as rows of `nsnet faults` (the shape of netem.ts's Fault: kind, container, network,
 *  detail, until, state). CONTAINER holds the groups as listed, DETAIL what is cut (with the rest). */
export function partitionFaults(h: Host, now = Date.now()): Array<{ kind: string; container: string; network: string; detail: string; until: string | null; state: string }> {
  return partitionsView(h, now).filter((r) => !r.expired).map((r) => ({
    kind: r.oneway ? 'partition (one way)' : 'partition',
    container: r.groups.map((g) => (g.length ? g.join(',') : '(none)')).join(' '),
    network: r.network,
    detail: r.oneway ? `${r.cut} dropped` : `cut: ${r.cut}`,
    until: r.until,
    state: 'active',
  }));
}

/** `network inspect`: the network's partition, if any, under an nsnet key (Docker has none), as netem's are on
 *  containers: its groups as listed, the rest, one way or not, until when. */
export function partitionInspect(h: Host, networkId: string, view: Record<string, unknown>): Record<string, unknown> {
  const r = partitionsView(h).find((x) => x.networkId === networkId && !x.expired);
  if (!r) return view;
  return { ...view, Partition: { Groups: r.groups, Rest: r.rest, OneWay: r.oneway, Created: r.created, Until: r.until } };
}
