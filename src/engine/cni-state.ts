// Attachments made through CNI, as the rest of the engine sees them. A runtime's container is a container row
// (mode bridge, name cni-<id>, no netns of nsnet's: netns '') whose endpoints live in the runtime's own netns; the
// table cni_attachments (store migration) keys them as the runtime does: (network, CNI_CONTAINERID, CNI_IFNAME).
// So the firewall (published ports), the DNS view, ps/inspect/network inspect and `network rm` see them like any
// container; this module holds what differs: rm/stop/start/connect refuse them, check/reconcile cover the runtime's
// netns (a netns that vanished without DEL is garbage), inspect shows where they came from.
// Imports nothing from the engine's use cases (reconcile.ts imports this module).
import crypto from 'node:crypto';
import type BetterSqlite3 from 'better-sqlite3';
import { ownedLink, removeLink, removeOwnedLink } from '../drivers/links.js';
import { closeFd } from '../kernel/netns.js';
import { openPath } from '../kernel/libc.js';
import { Netlink } from '../kernel/netlink.js';
import type { ContainerRecord, EndpointRecord } from '../types.js';
import { UserError } from '../util/errors.js';
import { crashPoint } from './faults.js';
import type { Host } from './host.js';
import { attachEndpoint, quiesceEndpoints } from './drivers.js';
import type { Finding } from '../drivers/driver.js';

/** First word of a CNI container row's command: what `ps` shows, and how refreshState knows it has no process of
 *  nsnet's (its processes are the runtime's). */
export const CNI_MARK = '<cni>';

export interface CniRow {
  networkId: string;
  runtimeId: string;
  ifname: string;
  containerId: string;
  netnsPath: string;
  /** nsnet added the default route (there was none in the netns). */
  defaultRoute: boolean;
  created: string;
}

type Row = Record<string, unknown>;
const stmts = new WeakMap<BetterSqlite3.Database, Map<string, BetterSqlite3.Statement>>();
function st(h: Host, sql: string): BetterSqlite3.Statement {
  let m = stmts.get(h.store.db);
  if (!m) stmts.set(h.store.db, (m = new Map()));
  let s = m.get(sql);
  if (!s) m.set(sql, (s = h.store.db.prepare(sql)));
  return s;
}
const fromRow = (r: Row): CniRow => ({
  networkId: r.network_id as string, runtimeId: r.runtime_id as string, ifname: r.ifname as string,
  containerId: r.container_id as string, netnsPath: r.netns_path as string, defaultRoute: !!r.default_route, created: r.created as string,
});

export function cniRows(h: Host): CniRow[] {
  return (st(h, 'SELECT * FROM cni_attachments ORDER BY created').all() as Row[]).map(fromRow);
}
export function cniRowsOf(h: Host, containerId: string): CniRow[] {
  return (st(h, 'SELECT * FROM cni_attachments WHERE container_id = ? ORDER BY created').all(containerId) as Row[]).map(fromRow);
}
export function cniRowsOn(h: Host, networkId: string): CniRow[] {
  return (st(h, 'SELECT * FROM cni_attachments WHERE network_id = ? ORDER BY created').all(networkId) as Row[]).map(fromRow);
}
export function cniRow(h: Host, networkId: string, runtimeId: string, ifname: string): CniRow | null {
  const r = st(h, 'SELECT * FROM cni_attachments WHERE network_id = ? AND runtime_id = ? AND ifname = ?').get(networkId, runtimeId, ifname) as Row | undefined;
  return r ? fromRow(r) : null;
}
/** Inside the caller's transaction. */
export function insertCniRow(h: Host, r: CniRow): void {
  st(h, `INSERT INTO cni_attachments(network_id, runtime_id, ifname, container_id, netns_path, default_route, created)
    VALUES(?, ?, ?, ?, ?, ?, ?)`).run(r.networkId, r.runtimeId, r.ifname, r.containerId, r.netnsPath, r.defaultRoute ? 1 : 0, r.created);
}
export function deleteCniRow(h: Host, r: Pick<CniRow, 'networkId' | 'runtimeId' | 'ifname'>): void {
  st(h, 'DELETE FROM cni_attachments WHERE network_id = ? AND runtime_id = ? AND ifname = ?').run(r.networkId, r.runtimeId, r.ifname);
}

export function isCniContainer(h: Host, containerId: string): boolean {
  return st(h, 'SELECT 1 FROM cni_attachments WHERE container_id = ? LIMIT 1').get(containerId) !== undefined;
}

/** The hook of rm/stop/start/connect/disconnect: a CNI container belongs to its runtime. */
export function refuseCni(h: Host, c: ContainerRecord, what: string): void {
  if (c.command[0] !== CNI_MARK && !isCniContainer(h, c.id)) return;
  const rows = cniRowsOf(h, c.id);
  const rid = rows[0]?.runtimeId ?? c.command[1] ?? '?';
  throw new UserError(`container ${c.name} was attached through CNI by a container runtime (its container ${rid}): ${what} it with the runtime (e.g. podman rm), which then calls the plugin's DEL`, 'refused');
}

/** inspect's view of a container, with what a CNI container adds: where it came from (a `Cni` section: the runtime's
 *  container id, its attachments) and the runtime's netns as NetworkSettings.SandboxKey. Other containers: as is. */
export function cniInspect(h: Host, containerId: string, view: Record<string, unknown>): Record<string, unknown> {
  const rows = cniRowsOf(h, containerId);
  if (!rows.length) return view;
  const ns = view.NetworkSettings as Record<string, unknown> | undefined;
  return {
    ...view,
    ...(ns ? { NetworkSettings: { ...ns, SandboxKey: rows[0].netnsPath } } : {}),
    Cni: {
      ContainerID: rows[0].runtimeId,
      Attachments: rows.map((r) => ({ NetworkID: r.networkId, Netns: r.netnsPath, Interface: r.ifname, DefaultRoute: r.defaultRoute, Created: r.created })),
    },
  };
}

/** The runtime's netns at `path`, if it is still one: an open fd (the caller closes it), else null. */
export function openRuntimeNetns(path: string): number | null {
  let fd: number;
  try {
    fd = openPath(path);
  } catch {
    return null;
  }
  // A bind mount removed leaves (at most) an empty file behind: nsfs files report st_nlink 1 and st_size 0 too,
  // so ask the kernel itself: a netlink socket can only be opened inside a network namespace.
  try {
    Netlink.openIn(fd).close();
    return fd;
  } catch {
    closeFd(fd);
    return null;
  }
}

/** Every CNI attachment's netns exists and holds its interface with its address (repair: put back, or recreate the
 *  interface); a row that lost its endpoint, or whose runtime netns vanished without a DEL (the runtime crashed, or
 *  removed the netns first), is removed with what it holds. (Host-side veths, bridges and published ports are
 *  covered by the generic detectors; reconcile rewrites the firewall and the resolver's view afterwards.) */
export function diffCni(h: Host): Finding[] {
  const out: Finding[] = [];
  const drop = (r: CniRow, line: string) => () => {
    h.store.tx(() => h.store.dropGarbage(dropCniRows(h, [r], 'cni-reconcile').unfinished));
    return [line];
  };
  for (const r of cniRows(h)) {
    const c = h.store.containerById(r.containerId);
    const ep = h.store.endpointsOf(r.containerId).find((e) => e.networkId === r.networkId);
    const who = `${c?.name ?? r.containerId} (CNI ${r.runtimeId} ${r.ifname})`;
    if (!ep) { out.push({ kind: 'cni-orphan', detail: `${who}: no endpoint`, repair: drop(r, `dropped CNI attachment ${r.runtimeId} ${r.ifname} without an endpoint`) }); continue; }
    const fd = openRuntimeNetns(r.netnsPath);
    if (fd === null) { out.push({ kind: 'cni-netns-gone', detail: `${who}: ${r.netnsPath}`, repair: drop(r, `removed CNI attachment ${r.runtimeId} ${r.ifname}: its netns ${r.netnsPath} is gone`) }); continue; }
    let present = false;
    try {
      const cnl = Netlink.openIn(fd);
      try {
        const idx = cnl.ifindex(r.ifname);
        present = idx !== null && cnl.addresses(4).some((a) => a.index === idx && a.address === ep.ip);
      } finally {
        cnl.close();
      }
    } finally {
      closeFd(fd);
    }
    if (present) continue;
    out.push({
      kind: 'missing-address', detail: `${who}: ${r.ifname} ${ep.ip} in ${r.netnsPath}`,
      repair: () => {
        const fd2 = openRuntimeNetns(r.netnsPath);
        if (fd2 === null) return drop(r, `removed CNI attachment ${r.runtimeId} ${r.ifname}: its netns ${r.netnsPath} is gone`)();
        try {
          const a = repairAttachment(h, r, fd2);
          return a ? [a] : [];
        } finally {
          closeFd(fd2);
        }
      },
    });
  }
  return out;
}

/** Removes CNI attachments: their rows, endpoints (addresses back to the pool), container rows once empty, their
 *  host-side veths (their peers in the runtime's netns go with them). Crash-safe: the veth is recorded as garbage in
 *  the transaction that drops the rows. `lazy` (DEL, after retireInterface): the veth is not deleted (≈30 ms of the
 *  kernel's, per veth) but taken out of service and left to die with the runtime's netns, which the runtime deletes
 *  right after DEL; if it is still there after the grace period, the next command deletes it (sweepDyingLinks).
 *  The caller updates the firewall and the resolver (removeAttachments in cni.ts). Call with the host lock held. */
export function dropCniRows(h: Host, rows: CniRow[], point: 'cni-del' | 'cni-gc' | 'cni-reconcile', lazy = false): { containers: string[]; unfinished: number[] } {
  const touched = new Set<string>();
  const links: Array<{ id: number; hostIf: string }> = [];
  const dying: EndpointRecord[] = [];
  const unfinished: number[] = [];
  h.store.tx(() => {
    for (const r of rows) {
      const ep = h.store.endpointsOf(r.containerId).find((e) => e.networkId === r.networkId);
      if (ep) {
        if (lazy) h.store.addGarbage('veth', ep.hostIf);
        else links.push({ id: h.store.addGarbage('link', ep.hostIf), hostIf: ep.hostIf });
        if (lazy) dying.push(ep);
        h.store.deleteEndpoint(r.containerId, r.networkId);
      }
      deleteCniRow(h, r);
      touched.add(r.containerId);
    }
    for (const id of touched) {
      if (h.store.endpointsOf(id).length) continue;
      h.store.deleteContainer(id); // cascade: its other rows
      // As `rm` does: until the caller has taken the container's ports down, the removal counts as unfinished, so
      // that a crash before is finished by the next command (reconcile rewrites the firewall).
      unfinished.push(h.store.addGarbage('dir', id));
    }
  });
  crashPoint(`${point}:persisted`);
  if (dying.length) quiesceEndpoints(h, dying);
  for (const l of links) removeOwnedLink(h.nl, h.ports.marks.owns, l.hostIf);
  crashPoint(`${point}:detached`);
  h.store.tx(() => h.store.dropGarbage(links.map((l) => l.id)));
  return { containers: [...touched], unfinished };
}

/** DEL's first step, in the runtime's netns: CNI_IFNAME is taken out of the way at once (down, its address removed,
 *  renamed to nsd<hex>) so that the runtime may ADD it again right away, without waiting for the kernel to delete
 *  the veth (see dropCniRows). Only the interface nsnet made (its MAC); idempotent: a retried DEL finds nothing to do. */
export function retireInterface(r: CniRow, ep: EndpointRecord, prefix: number): void {
  const fd = openRuntimeNetns(r.netnsPath);
  if (fd === null) return; // the netns is gone, and the veth with it
  try {
    const cnl = Netlink.openIn(fd);
    try {
      const link = cnl.linkByName(r.ifname);
      if (!link || link.mac !== ep.mac) return;
      cnl.setDown(link.index);
      try { cnl.deleteAddress(link.index, ep.ip, prefix); } catch { /* already gone */ }
      cnl.batch((b) => b.setName(link.index, `nsd${crypto.randomBytes(4).toString('hex')}`));
    } finally {
      cnl.close();
    }
  } finally {
    closeFd(fd);
  }
}

/** The runtime's netns is there but nsnet's interface in it (or its host end, which takes the other with it) is
 *  not: made again as ADD made it (same address, MAC, interface name, host veth name), or the address put back.
 *  Returns the action taken, or null. */
function repairAttachment(h: Host, r: CniRow, fd: number): string | null {
  const ep = h.store.endpointsOf(r.containerId).find((e) => e.networkId === r.networkId);
  const net = h.store.networkById(r.networkId);
  if (!ep || !net) return null;
  const prefix = Number(net.subnet.split('/')[1]);
  const cnl = Netlink.openIn(fd);
  try {
    const link = cnl.linkByName(r.ifname);
    const host = ownedLink(h.nl, h.ports.marks.owns, ep.hostIf);
    if (link && host) {
      if (cnl.addresses(4).some((a) => a.index === link.index && a.address === ep.ip)) return null;
      cnl.addAddress(link.index, ep.ip, prefix);
      if (r.defaultRoute && !cnl.routes(4).some((x) => x.prefixLen === 0)) cnl.addRoute({ dst: '0.0.0.0', prefixLen: 0, gateway: net.gateway });
      return `put back address ${ep.ip} of CNI attachment ${r.runtimeId} ${r.ifname}`;
    }
    if (link) return null; // someone else's interface took the name: CHECK reports it, DEL/ADD is the runtime's call
    if (host) removeLink(h.nl, host.index);
    const defaultRoute = r.defaultRoute && !cnl.routes(4).some((x) => x.prefixLen === 0);
    attachEndpoint(h, net, ep, { nsFd: fd, cnl, defaultRoute });
    return `recreated interface ${r.ifname} of CNI attachment ${r.runtimeId} in ${r.netnsPath}`;
  } finally {
    cnl.close();
  }
}

