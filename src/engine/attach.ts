// The attachment use case: a network namespace nsnet did not make (a runtime's, a sandbox's, a test's), attached
// to an nsnet network later, keyed by (owner id, interface name). CNI ADD/DEL are this use case behind the CNI
// protocol (src/engine/cni.ts); the library calls it as Nsnet.attach / Nsnet.detach.
//
// The owner's netns stays the owner's: nsnet adds or removes only its own interface there, never deletes the
// netns or signals a process in it. A transaction like every other: plan under the host lock, persist as pending,
// apply to the kernel, commit; a crash at any point (crash points cni-add:*) is rolled back or finished by the next
// command (recoverIfNeeded / reconcile), and `check`/`reconcile` cover the attachment (cni-state.ts diffCni).
import crypto from 'node:crypto';
import { allocateIp, checkStaticIp, macFromIp } from '../ipam/ipam.js';
import { NetlinkError, Netlink } from '../kernel/netlink.js';
import { closeFd } from '../kernel/netns.js';
import { writeSysctl } from '../kernel/sysctl.js';
import type { ContainerRecord, EndpointRecord, NetworkRecord, PortMapping } from '../types.js';
import { parsePrefix } from '../util/addr.js';
import { UserError } from '../util/errors.js';
import { validateAlias } from '../util/validate.js';
import { CNI_MARK, cniRow, dropCniRows, insertCniRow, openRuntimeNetns, retireInterface } from './cni-state.js';
import { attachEndpoint, detachEndpoint } from './drivers.js';
import { crashPoint } from './faults.js';
import { applyFirewall, applyPortDelta, containerPorts } from './firewall.js';
import type { Host } from './host.js';
import { resolvePorts } from './ports.js';
import { recoverIfNeeded } from './reconcile.js';
import { notifyDnsContainer } from './dnsctl.js';

/** A refusal the CNI protocol reports with its own codes: the attachment or the interface exists (`exists`), or
 *  the path is not a network namespace (`netns`). */
export class AttachError extends UserError {
  constructor(message: string, readonly reason: 'exists' | 'netns', readonly details = '') {
    super(message, reason === 'exists' ? 'conflict' : 'invalid');
  }
}

export interface AttachRequest {
  /** Path of the network namespace (a bind mount such as /run/netns/X, or /proc/PID/ns/net). */
  netns: string;
  /** The owner's own id for what lives in that netns (a runtime's container id): with ifname, the attachment's key. */
  owner: string;
  /** Interface name inside the netns (eth0, net1, ...). */
  ifname: string;
  /** The network (it must exist), or how to find it, called under the host lock once the netns was opened (CNI
   *  makes the network of its configuration on first use: never for a request that fails on its netns). */
  network: NetworkRecord | (() => NetworkRecord);
  /** DNS names of the attachment on the network. */
  aliases?: string[];
  /** A static IPv4 address (optionally ADDR/PREFIX, which must be the network's prefix). */
  ip?: string;
  mac?: string;
  /** Published ports (`-p` syntax), made with the owner's first attachment. */
  ports?: string[];
  /** DNS servers recorded for the owner (nsnet's own resolver answers on user-defined networks). */
  dns?: string[];
}

export interface AttachResult {
  endpoint: EndpointRecord;
  network: NetworkRecord;
  /** Whether the attachment got the netns's default route (it had none). */
  defaultRoute: boolean;
  prefix: number;
  /** MACs of the network's bridge and of the host side of the attachment (for a CNI result). */
  bridgeMac: string;
  hostMac: string;
}

/** The container row of an owner: one per owner id (its attachments to several networks are its endpoints), with a
 *  stable id so that a retried attach finds what an interrupted one left. */
export function attachmentOwnerId(owner: string): string {
  return crypto.createHash('sha256').update(`nsnet-cni\0${owner}`).digest('hex');
}

function rowName(h: Host, owner: string): string {
  const base = `cni-${owner.slice(0, 12)}`;
  if (!h.store.nameTaken(base)) return base;
  return `${base}-${attachmentOwnerId(owner).slice(0, 8)}`;
}

/** Attaches the netns at `r.netns` to `r.network` as `r.ifname`. */
export function attachNetns(h: Host, r: AttachRequest): AttachResult {
  const names = [...new Set(r.aliases ?? [])];
  for (const a of names) validateAlias(a);
  const fd = openRuntimeNetns(r.netns);
  if (fd === null) throw new AttachError(`${r.netns} is not a network namespace`, 'netns', 'the path does not exist or is not a network namespace');
  let cnl: Netlink;
  try {
    cnl = Netlink.openIn(fd);
  } catch (e) {
    closeFd(fd);
    throw e;
  }
  try {
    return h.lock.with(() => {
      recoverIfNeeded(h);
      const want = typeof r.network === 'function' ? r.network() : r.network;
      const net = h.store.networkById(want.id);
      if (!net) throw new UserError(`network ${want.name} not found`, 'notfound');
      if (cniRow(h, net.id, r.owner, r.ifname)) throw new AttachError(`container ${r.owner} is already attached to network ${net.name} as ${r.ifname}`, 'exists', 'DEL it first');
      if (cnl.ifindex(r.ifname) !== null) throw new AttachError(`interface ${r.ifname} already exists in ${r.netns}`, 'exists');
      const cid = attachmentOwnerId(r.owner);
      const existing = h.store.containerById(cid);
      if (existing && h.store.endpointsOf(cid).some((e) => e.networkId === net.id)) {
        throw new AttachError(`container ${r.owner} is already attached to network ${net.name} (under another interface name)`, 'exists', 'nsnet gives a container one interface per network');
      }
      // IPv6 for attachments (a result with both families) is not built: refused, not half-attached.
      if (!net.subnet) throw new UserError(`network ${net.name} is IPv6-only: attachments of other namespaces are IPv4 only in nsnet`, 'invalid');
      // Published ports belong to the owner: made with its first attachment (a runtime passes the same mappings to
      // every network's ADD; they are published once, on the first network).
      const ports: PortMapping[] = !existing && r.ports?.length && !net.internal ? resolvePorts(h, r.ports) : [];
      const prefix = parsePrefix(net.subnet).bits;
      let staticIp: string | undefined;
      if (r.ip) {
        const [addr, p] = r.ip.split('/');
        if (p !== undefined && Number(p) !== prefix) throw new UserError(`requested address ${r.ip}: the prefix of network ${net.name} is /${prefix} (${net.subnet})`, 'invalid');
        staticIp = addr;
      }
      const now = new Date().toISOString();
      const c: ContainerRecord = existing ?? {
        id: cid, name: rowName(h, r.owner), mode: 'bridge', modeTarget: null, netns: '',
        command: [CNI_MARK, r.owner], ports, dns: r.dns ?? [], autoRemove: false, state: 'running',
        pid: null, pidStart: null, exitCode: null, created: now, started: now, finished: null, used: false,
      };
      let ep!: EndpointRecord;
      h.store.tx(() => {
        const inUse = h.store.addressesOf(net.id);
        let ip: string;
        if (staticIp !== undefined) {
          checkStaticIp(net, staticIp, inUse);
          ip = staticIp;
        } else {
          ip = allocateIp(net, inUse, h.store.lastIp(net.id), net.name);
        }
        ep = {
          containerId: cid, containerName: c.name, networkId: net.id, ifname: r.ifname,
          hostIf: 'nsv' + crypto.randomBytes(4).toString('hex'), ip, mac: r.mac ?? macFromIp(ip), aliases: names, staticIp: staticIp !== undefined,
        };
        if (!existing) h.store.insertContainer(c, true);
        h.store.insertEndpoint(ep, true);
        if (!ep.staticIp) h.store.setLastIp(net.id, ep.ip);
      });
      crashPoint('cni-add:persisted');
      let defaultRoute = false;
      try {
        defaultRoute = !cnl.routes(4).some((x) => x.prefixLen === 0);
        attachEndpoint(h, net, ep, { nsFd: fd, cnl, defaultRoute });
        // IPv4-only, as nsnet's own containers: no IPv6 on this interface (link-local, or addresses from a forged
        // router advertisement), so no IPv6 path between containers bypasses the IPv4 firewall (icc=false). Only our
        // interface: the rest of the netns is the owner's.
        try { writeSysctl(`net.ipv6.conf.${r.ifname.replace(/\./g, '/')}.disable_ipv6`, '1', fd); } catch { /* no IPv6 in this kernel/netns */ }
        crashPoint('cni-add:attached');
        h.store.tx(() => {
          if (existing) h.store.commitEndpoint(cid, net.id);
          else h.store.commitContainer(cid);
          insertCniRow(h, { networkId: net.id, runtimeId: r.owner, ifname: r.ifname, containerId: cid, netnsPath: r.netns, defaultRoute, created: now });
        });
        crashPoint('cni-add:committed');
      } catch (e) {
        try { detachEndpoint(h, ep); } catch { /* reconcile */ }
        h.store.tx(() => {
          h.store.deleteEndpoint(cid, net.id);
          if (!existing) h.store.deleteContainer(cid);
        });
        if (e instanceof NetlinkError && e.code === 'EEXIST') throw new AttachError(`interface ${r.ifname} already exists in ${r.netns}`, 'exists', e.message);
        throw e;
      }
      if (ports.length) applyPortDelta(h, containerPorts(h, c), []);
      crashPoint('cni-add:firewall');
      // The name resolves when attach returns: the owner starts its processes right after.
      if (!net.isDefault) notifyDnsContainer(h, cid, 'wait');
      const brLink = h.nl.linkByName(net.bridge);
      const hostLink = h.nl.linkByName(ep.hostIf);
      return { endpoint: ep, network: net, defaultRoute, prefix, bridgeMac: brLink?.mac ?? macFromIp(net.gateway), hostMac: hostLink?.mac ?? '' };
    });
  } finally {
    cnl.close();
    closeFd(fd);
  }
}

/** Removes attachments and brings the firewall and the resolver in step. Call with the host lock held. `lazy`: the
 *  host-side veth is taken out of service and left to die with the owner's netns (the owner removes it next). */
export function removeAttachments(h: Host, rows: ReturnType<typeof cniRow>[], point: 'cni-del' | 'cni-gc', lazy = false): void {
  const list = rows.filter((r): r is NonNullable<typeof r> => r !== null);
  if (!list.length) return;
  const before = new Map<string, ReturnType<typeof containerPorts>>();
  for (const r of list) {
    const c = h.store.containerById(r.containerId);
    if (c && c.ports.length && !before.has(c.id)) before.set(c.id, containerPorts(h, c));
  }
  const { containers, unfinished } = dropCniRows(h, list, point, lazy);
  // Ports of an owner removed entirely: one delta; of one that keeps another network: they may have moved.
  const removed = [...before.entries()].filter(([id]) => !h.store.containerById(id)).flatMap(([, p]) => p);
  if ([...before.keys()].some((id) => h.store.containerById(id))) applyFirewall(h);
  else if (removed.length) applyPortDelta(h, [], removed);
  crashPoint(`${point}:firewall`);
  h.store.tx(() => h.store.dropGarbage(unfinished));
  for (const id of containers) notifyDnsContainer(h, id, 'signal');
}

/** Detaches (owner, ifname) from the network; idempotent: false when there was no such attachment. The interface in
 *  the owner's netns is emptied first (addresses and routes: nothing answers for the address from there once it is
 *  handed out again), then its host side is left to die with the netns. */
export function detachNetns(h: Host, owner: string, ifname: string, network: NetworkRecord): boolean {
  return h.lock.with(() => {
    recoverIfNeeded(h);
    const row = cniRow(h, network.id, owner, ifname);
    if (!row) return false;
    const ep = h.store.endpointsOf(row.containerId).find((e) => e.networkId === network.id);
    if (ep) retireInterface(row, ep, parsePrefix(network.subnet).bits);
    crashPoint('cni-del:netns');
    removeAttachments(h, [row], 'cni-del', true);
    return true;
  });
}
