// The CNI use cases: ADD, DEL, CHECK, GC, STATUS for a runtime's containers (src/cni/protocol.ts parses the request
// and shapes the answers). Each mutation is a transaction like nsnet's own: plan under the host lock, persist as
// pending, apply to the kernel, commit; a crash at any point (NSNET_CRASH_AT=cni-add:...) is rolled back or
// finished by the next command (recoverIfNeeded / reconcile). The runtime owns the netns at CNI_NETNS: nsnet only
// ever adds or removes its own veth there, never deletes the netns or signals a process inside it.
import crypto from 'node:crypto';
import { attachEndpoint, detachEndpoint } from './drivers.js';
import {
  addResult, CniError, CODES, compareVersions, type Attachment, type CniEnv, type NetConf,
} from '../cni/protocol.js';
import { allocateIp, checkStaticIp, macFromIp } from '../ipam/ipam.js';
import { Netlink, NetlinkError } from '../kernel/netlink.js';
import { closeFd } from '../kernel/netns.js';
import { writeSysctl } from '../kernel/sysctl.js';
import type { ContainerRecord, EndpointRecord, NetworkRecord, PortMapping } from '../types.js';
import { UserError } from '../util/errors.js';
import { canonicalPrefix, parsePrefix } from '../util/addr.js';
import { validateAlias } from '../util/validate.js';
import { CNI_MARK, cniRow, cniRowsOn, dropCniRows, insertCniRow, openRuntimeNetns, retireInterface, type CniRow } from './cni-state.js';
import { hostResolvConf, usableUpstreams } from './etc.js';
import { crashPoint } from './faults.js';
import { applyFirewall, applyPortDelta, containerPorts, missingDnat } from './firewall.js';
import { TABLE } from '../firewall/ruleset.js';
import type { Host } from './host.js';
import { createNetwork, DEFAULT_NETWORK, ensureDefaultNetwork } from './networks.js';
import { resolvePorts } from './ports.js';
import { recoverIfNeeded } from './reconcile.js';
import { notifyDnsContainer, resolverRunning } from './dnsctl.js';

/** The container row of a runtime's container: one per CNI_CONTAINERID (its attachments to several networks are
 *  its endpoints), with a stable id so that a retried ADD finds what an interrupted one left. */
export function cniContainerId(runtimeId: string): string {
  return crypto.createHash('sha256').update(`nsnet-cni\0${runtimeId}`).digest('hex');
}

function rowName(h: Host, runtimeId: string): string {
  const base = `cni-${runtimeId.slice(0, 12)}`;
  if (!h.store.nameTaken(base)) return base;
  return `${base}-${cniContainerId(runtimeId).slice(0, 8)}`;
}

/** UserErrors of the engine as CNI errors: bad input is an invalid configuration (7), a taken address or port is
 *  a conflict (101), the rest a refusal (102). */
function asCni(e: unknown, invalidCode: number = CODES.invalidConfig): never {
  if (e instanceof CniError) throw e;
  if (e instanceof UserError) {
    const code = e.code === 'invalid' || e.code === 'notfound' ? invalidCode : e.code === 'conflict' ? CODES.conflict : CODES.refused;
    throw new CniError(code, e.message);
  }
  if (e instanceof NetlinkError) throw new CniError(CODES.internal, `kernel refused ${e.op}: ${e.code}`, e.message);
  throw e;
}

/** The network named by the configuration: created from its keys on first use, else it must match them. */
function ensureNetwork(h: Host, conf: NetConf): NetworkRecord {
  let n = h.store.networks().find((x) => x.name === conf.name) ?? null;
  if (!n) {
    try {
      if (conf.name === DEFAULT_NETWORK) {
        n = ensureDefaultNetwork(h);
      } else {
        const options: Record<string, string> = {};
        if (conf.mtu !== undefined) options.mtu = String(conf.mtu);
        if (conf.icc !== undefined) options.icc = String(conf.icc);
        return createNetwork(h, {
          name: conf.name, subnet: conf.subnet, gateway: conf.gateway, ipRange: conf.ipRange, internal: conf.internal ?? false,
          options, labels: { 'nsnet.cni': 'true' },
        });
      }
    } catch (e) {
      asCni(e);
    }
  }
  const bad: string[] = [];
  const canon = (s: string) => { try { return canonicalPrefix(s); } catch { return s; } };
  if (conf.subnet !== undefined && canon(conf.subnet) !== n.subnet) bad.push(`subnet ${conf.subnet} (the network has ${n.subnet})`);
  if (conf.gateway !== undefined && conf.gateway !== n.gateway) bad.push(`gateway ${conf.gateway} (the network has ${n.gateway})`);
  if (conf.ipRange !== undefined && canon(conf.ipRange) !== (n.ipRange ?? n.subnet)) bad.push(`ipRange ${conf.ipRange} (the network has ${n.ipRange ?? 'none'})`);
  if (conf.internal !== undefined && conf.internal !== n.internal) bad.push(`internal ${conf.internal} (the network has ${n.internal})`);
  if (conf.ipMasq !== undefined && conf.ipMasq === n.internal) bad.push(`ipMasq ${conf.ipMasq} (the network is ${n.internal ? '' : 'not '}internal)`);
  if (conf.icc !== undefined && conf.icc !== n.icc) bad.push(`icc ${conf.icc} (the network has ${n.icc})`);
  if (conf.mtu !== undefined && conf.mtu !== n.mtu) bad.push(`mtu ${conf.mtu} (the network has ${n.mtu})`);
  if (bad.length) {
    throw new CniError(CODES.invalidConfig, `the configuration does not match the existing nsnet network ${n.name}`, bad.join('; '));
  }
  return n;
}

function dnsOf(h: Host, n: NetworkRecord, conf: NetConf): Pick<Attachment, 'nameservers' | 'search' | 'options'> {
  // User networks: nsnet's resolver on the gateway (names of the network's containers, the rest forwarded).
  const ns = !n.isDefault ? [n.gateway] : conf.dns.servers.length ? conf.dns.servers : usableUpstreams(hostResolvConf(h.env).nameservers);
  return { nameservers: ns, search: conf.dns.searches, options: conf.dns.options };
}

function portSpecs(conf: NetConf): string[] {
  return conf.portMappings.map((m) => `${m.hostIP ? m.hostIP + ':' : ''}${m.hostPort}:${m.containerPort}/${m.protocol}`);
}

interface Opened {
  fd: number;
  cnl: Netlink;
}

/** The runtime's netns, or error 4 naming CNI_NETNS. */
function openNetnsOf(env: CniEnv): Opened {
  const fd = openRuntimeNetns(env.netns);
  if (fd === null) throw new CniError(CODES.invalidEnv, `CNI_NETNS ${env.netns} is not a network namespace`, 'the path does not exist or is not a network namespace');
  try {
    return { fd, cnl: Netlink.openIn(fd) };
  } catch (e) {
    closeFd(fd);
    throw e;
  }
}

function closeOpened(o: Opened): void {
  o.cnl.close();
  closeFd(o.fd);
}

export function cniAdd(h: Host, env: CniEnv, conf: NetConf): Record<string, unknown> {
  const names: string[] = [];
  const pod = env.args.K8S_POD_NAME;
  // The runtime's name for its container (Podman: the container name) is a DNS name on the network, when it is one.
  if (pod) {
    try { validateAlias(pod); names.push(pod); } catch { h.warn(`K8S_POD_NAME ${JSON.stringify(pod)} is not a DNS name: not registered`); }
  }
  for (const a of conf.aliases) {
    try { validateAlias(a); } catch (e) { asCni(e); }
    if (!names.includes(a)) names.push(a);
  }
  const o = openNetnsOf(env);
  try {
    return h.lock.with(() => {
      recoverIfNeeded(h);
      const net = ensureNetwork(h, conf);
      if (cniRow(h, net.id, env.containerId, env.ifname)) {
        throw new CniError(CODES.exists, `container ${env.containerId} is already attached to network ${net.name} as ${env.ifname}`, 'DEL it first');
      }
      if (o.cnl.ifindex(env.ifname) !== null) {
        throw new CniError(CODES.exists, `interface ${env.ifname} already exists in ${env.netns}`);
      }
      const cid = cniContainerId(env.containerId);
      const existing = h.store.containerById(cid);
      if (existing && h.store.endpointsOf(cid).some((e) => e.networkId === net.id)) {
        throw new CniError(CODES.exists, `container ${env.containerId} is already attached to network ${net.name} (under another interface name)`, 'nsnet gives a container one interface per network');
      }
      // IPv6 through CNI (an ipam result with both families) is not built: refused, not half-attached.
      if (!net.subnet) throw new CniError(CODES.invalidConfig, `network ${net.name} is IPv6-only: CNI attachments are IPv4 only in nsnet`);
      let ports: PortMapping[] = [];
      // Published ports belong to the container: made with its first attachment (a runtime passes the same
      // mappings to every network's ADD; they are published once, on the container's first network).
      if (!existing && conf.portMappings.length && !net.internal) {
        try { ports = resolvePorts(h, portSpecs(conf)); } catch (e) { asCni(e); }
      }
      const prefix = parsePrefix(net.subnet).bits;
      let staticIp: string | undefined;
      if (conf.ips.length) {
        const [addr, p] = conf.ips[0].split('/');
        if (p !== undefined && Number(p) !== prefix) throw new CniError(CODES.invalidConfig, `requested address ${conf.ips[0]}: the prefix of network ${net.name} is /${prefix} (${net.subnet})`);
        staticIp = addr;
      }
      const now = new Date().toISOString();
      const c: ContainerRecord = existing ?? {
        id: cid, name: rowName(h, env.containerId), mode: 'bridge', modeTarget: null, netns: '',
        command: [CNI_MARK, env.containerId], ports, dns: conf.dns.servers, autoRemove: false, state: 'running',
        pid: null, pidStart: null, exitCode: null, created: now, started: now, finished: null, used: false,
      };
      let ep!: EndpointRecord;
      h.store.tx(() => {
        const inUse = h.store.addressesOf(net.id);
        let ip: string;
        try {
          if (staticIp !== undefined) {
            checkStaticIp(net, staticIp, inUse);
            ip = staticIp;
          } else {
            ip = allocateIp(net, inUse, h.store.lastIp(net.id), net.name);
          }
        } catch (e) {
          asCni(e);
        }
        ep = {
          containerId: cid, containerName: c.name, networkId: net.id, ifname: env.ifname,
          hostIf: 'nsv' + crypto.randomBytes(4).toString('hex'), ip, mac: conf.mac ?? macFromIp(ip), aliases: names, staticIp: staticIp !== undefined,
        };
        if (!existing) h.store.insertContainer(c, true);
        h.store.insertEndpoint(ep, true);
        if (!ep.staticIp) h.store.setLastIp(net.id, ep.ip);
      });
      crashPoint('cni-add:persisted');
      let defaultRoute = false;
      try {
        defaultRoute = !o.cnl.routes(4).some((r) => r.prefixLen === 0);
        attachEndpoint(h, net, ep, { nsFd: o.fd, cnl: o.cnl, defaultRoute });
        // IPv4-only networks, as nsnet's own containers: no IPv6 on this interface (link-local, or addresses from a
        // forged router advertisement), so no IPv6 path between containers bypasses the IPv4 firewall (icc=false).
        // Only our interface: the rest of the netns is the runtime's.
        try { writeSysctl(`net.ipv6.conf.${env.ifname.replace(/\./g, '/')}.disable_ipv6`, '1', o.fd); } catch { /* no IPv6 in this kernel/netns */ }
        crashPoint('cni-add:attached');
        h.store.tx(() => {
          if (existing) h.store.commitEndpoint(cid, net.id);
          else h.store.commitContainer(cid);
          insertCniRow(h, { networkId: net.id, runtimeId: env.containerId, ifname: env.ifname, containerId: cid, netnsPath: env.netns, defaultRoute, created: now });
        });
        crashPoint('cni-add:committed');
      } catch (e) {
        try { detachEndpoint(h, ep); } catch { /* reconcile */ }
        h.store.tx(() => {
          h.store.deleteEndpoint(cid, net.id);
          if (!existing) h.store.deleteContainer(cid);
        });
        if (e instanceof NetlinkError && e.code === 'EEXIST') throw new CniError(CODES.exists, `interface ${env.ifname} already exists in ${env.netns}`, e.message);
        asCni(e);
      }
      if (ports.length) applyPortDelta(h, containerPorts(h, c), []);
      crashPoint('cni-add:firewall');
      // The name resolves when ADD returns: the runtime starts the container's processes right after.
      if (!net.isDefault) notifyDnsContainer(h, cid, 'wait');
      const brLink = h.nl.linkByName(net.bridge);
      const hostLink = h.nl.linkByName(ep.hostIf);
      return addResult(conf.cniVersion, {
        bridge: { name: net.bridge, mac: brLink?.mac ?? macFromIp(net.gateway), mtu: net.mtu },
        host: { name: ep.hostIf, mac: hostLink?.mac ?? '', mtu: net.mtu },
        container: { name: ep.ifname, mac: ep.mac, mtu: net.mtu, sandbox: env.netns },
        address: ep.ip, prefix, gateway: net.gateway, defaultRoute, ...dnsOf(h, net, conf),
      }, conf.prevResult);
    });
  } finally {
    closeOpened(o);
  }
}

/** Removes attachments and brings the firewall and the resolver in step. Call with the host lock held. */
function removeAttachments(h: Host, rows: CniRow[], point: 'cni-del' | 'cni-gc', lazy = false): void {
  if (!rows.length) return;
  const before = new Map<string, ReturnType<typeof containerPorts>>();
  for (const r of rows) {
    const c = h.store.containerById(r.containerId);
    if (c && c.ports.length && !before.has(c.id)) before.set(c.id, containerPorts(h, c));
  }
  const { containers, unfinished } = dropCniRows(h, rows, point, lazy);
  // Ports of a container removed entirely: one delta; of one that keeps another network: they may have moved.
  const removed = [...before.entries()].filter(([id]) => !h.store.containerById(id)).flatMap(([, p]) => p);
  if ([...before.keys()].some((id) => h.store.containerById(id))) applyFirewall(h);
  else if (removed.length) applyPortDelta(h, [], removed);
  crashPoint(`${point}:firewall`);
  h.store.tx(() => h.store.dropGarbage(unfinished));
  for (const id of containers) notifyDnsContainer(h, id, 'signal');
}

/** DEL: best effort and idempotent; success when there is nothing (left) to remove. */
export function cniDel(h: Host, env: CniEnv, conf: NetConf): void {
  h.lock.with(() => {
    recoverIfNeeded(h);
    const net = h.store.networks().find((x) => x.name === conf.name);
    if (!net) return;
    const row = cniRow(h, net.id, env.containerId, env.ifname);
    if (!row) return;
    const ep = h.store.endpointsOf(row.containerId).find((e) => e.networkId === net.id);
    if (ep) retireInterface(row, ep, parsePrefix(net.subnet).bits);
    crashPoint('cni-del:netns');
    removeAttachments(h, [row], 'cni-del', true);
  });
}

/** CHECK: the attachment exists and its interface, address, route, host veth and published ports are in place. */
export function cniCheck(h: Host, env: CniEnv, conf: NetConf): void {
  if (compareVersions(conf.cniVersion, '0.4.0') < 0) throw new CniError(CODES.incompatibleVersion, `CHECK is not defined for cniVersion ${conf.cniVersion}`, 'CHECK exists from 0.4.0 on');
  const net = h.store.networks().find((x) => x.name === conf.name);
  if (!net) throw new CniError(CODES.unknownContainer, `no nsnet network ${conf.name}`);
  const row = cniRow(h, net.id, env.containerId, env.ifname);
  if (!row) throw new CniError(CODES.unknownContainer, `container ${env.containerId} is not attached to network ${net.name} as ${env.ifname}`);
  const ep = h.store.endpointsOf(row.containerId).find((e) => e.networkId === net.id);
  if (!ep) throw new CniError(CODES.unknownContainer, `attachment ${env.containerId} ${env.ifname} has no endpoint (run: nsnet reconcile)`);
  const problems: string[] = [];
  const host = h.nl.linkByName(ep.hostIf);
  const br = h.nl.ifindex(net.bridge);
  if (br === null) problems.push(`bridge ${net.bridge} is missing`);
  if (!host) problems.push(`host interface ${ep.hostIf} is missing`);
  else if (host.master !== br) problems.push(`host interface ${ep.hostIf} is not on bridge ${net.bridge}`);
  const o = openNetnsOf(env);
  try {
    const idx = o.cnl.ifindex(env.ifname);
    if (idx === null) problems.push(`interface ${env.ifname} is missing in ${env.netns}`);
    else {
      const link = o.cnl.links().find((l) => l.index === idx);
      if (link && !link.up) problems.push(`interface ${env.ifname} is down`);
      if (link && link.mac !== ep.mac) problems.push(`interface ${env.ifname} has MAC ${link.mac}, expected ${ep.mac}`);
      const prefix = parsePrefix(net.subnet).bits;
      if (!o.cnl.addresses(4).some((a) => a.index === idx && a.address === ep.ip && a.prefixLen === prefix)) problems.push(`address ${ep.ip}/${prefix} is missing on ${env.ifname}`);
    }
    if (row.defaultRoute && !o.cnl.routes(4).some((r) => r.prefixLen === 0 && r.gateway === net.gateway)) problems.push(`default route via ${net.gateway} is missing`);
  } finally {
    closeOpened(o);
  }
  const c = h.store.containerById(row.containerId);
  if (c && c.ports.length) {
    const missing = missingDnat(h, containerPorts(h, c));
    if (missing.length) problems.push(`DNAT element(s) missing: ${missing.join(', ')}`);
  }
  if (!net.isDefault && !resolverRunning(h)) problems.push('the DNS resolver is not running (run: nsnet reconcile)');
  if (problems.length) throw new CniError(CODES.refused, `attachment ${env.containerId} ${env.ifname} on ${net.name} is not as ADD made it`, problems.join('; '));
}

function needV11(conf: NetConf, what: string): void {
  if (compareVersions(conf.cniVersion, '1.1.0') < 0) throw new CniError(CODES.incompatibleVersion, `${what} is not defined for cniVersion ${conf.cniVersion}`, `${what} exists from 1.1.0 on`);
}

/** GC: every attachment of this network that the runtime no longer lists is removed (its address freed). */
export function cniGc(h: Host, conf: NetConf): string[] {
  needV11(conf, 'GC');
  if (!conf.validAttachments) throw new CniError(CODES.invalidConfig, 'GC needs cni.dev/valid-attachments', 'the list of attachments still valid (may be empty)');
  const valid = new Set(conf.validAttachments.map((a) => `${a.containerID}\0${a.ifname}`));
  return h.lock.with(() => {
    recoverIfNeeded(h);
    const net = h.store.networks().find((x) => x.name === conf.name);
    if (!net) return [];
    const stale = cniRowsOn(h, net.id).filter((r) => !valid.has(`${r.runtimeId}\0${r.ifname}`));
    removeAttachments(h, stale, 'cni-gc');
    return stale.map((r) => `${r.runtimeId} ${r.ifname}`);
  });
}

/** STATUS: whether an ADD could be served now: the state directory is writable, the network (if it exists) has its
 *  bridge and an address left, nsnet's table exists, its resolver runs. */
export function cniStatus(h: Host, conf: NetConf): void {
  needV11(conf, 'STATUS');
  const problems: string[] = [];
  try {
    h.store.tx(() => h.store.setMeta('cni.status', new Date().toISOString()));
  } catch (e) {
    throw new CniError(CODES.unavailable, 'the state directory is not usable', `${h.root}: ${(e as Error).message}`);
  }
  const net = h.store.networks().find((x) => x.name === conf.name);
  if (net) {
    if (h.nl.ifindex(net.bridge) === null) problems.push(`bridge ${net.bridge} of network ${net.name} is missing (run: nsnet reconcile)`);
    if (!h.nft.listTable('inet', TABLE)) problems.push('the table inet nsnet is missing (run: nsnet reconcile)');
    if (!net.isDefault && !resolverRunning(h)) problems.push('the DNS resolver is not running (run: nsnet reconcile)');
    try {
      allocateIp(net, h.store.addressesOf(net.id), h.store.lastIp(net.id), net.name);
    } catch (e) {
      throw new CniError(CODES.unavailable, `network ${net.name} has no address left`, (e as Error).message);
    }
  }
  if (problems.length) throw new CniError(CODES.unavailableLimited, 'nsnet cannot serve ADD on this network now', problems.join('; '));
}
