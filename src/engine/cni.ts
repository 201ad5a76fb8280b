// The CNI use cases: ADD, DEL, CHECK, GC, STATUS for a runtime's containers (src/cni/protocol.ts parses the request
// and shapes the answers). Each mutation is a transaction like nsnet's own: plan under the host lock, persist as
// pending, apply to the kernel, commit; a crash at any point (NSNET_CRASH_AT=cni-add:...) is rolled back or
// finished by the next command (recoverIfNeeded / reconcile). The runtime owns the netns at CNI_NETNS: nsnet only
// ever adds or removes its own veth there, never deletes the netns or signals a process inside it.
import { AttachError, attachNetns, attachmentOwnerId, detachNetns, removeAttachments, type AttachResult } from './attach.js';
import {
  addResult, CniError, CODES, compareVersions, type Attachment, type CniEnv, type NetConf,
} from '../cni/protocol.js';
import { allocateIp } from '../ipam/ipam.js';
import { Netlink, NetlinkError } from '../kernel/netlink.js';
import { closeFd } from '../kernel/netns.js';
import type { NetworkRecord } from '../types.js';
import { UserError } from '../util/errors.js';
import { canonicalPrefix, parsePrefix } from '../util/addr.js';
import { validateAlias } from '../util/validate.js';
import { cniRow, cniRowsOn, openRuntimeNetns } from './cni-state.js';
import { hostResolvConf, usableUpstreams } from './etc.js';
import { containerPorts, missingDnat } from './firewall.js';
import { TABLE } from '../firewall/ruleset.js';
import type { Host } from './host.js';
import { createNetwork, DEFAULT_NETWORK, ensureDefaultNetwork } from './networks.js';
import { recoverIfNeeded } from './reconcile.js';
import { resolverRunning } from './dnsctl.js';

/** The container row of a runtime's container (src/engine/attach.ts). */
export const cniContainerId = attachmentOwnerId;

/** UserErrors of the engine as CNI errors: bad input is an invalid configuration (7), a taken address or port is
 *  a conflict (101), the rest a refusal (102). */
function asCni(e: unknown, invalidCode: number = CODES.invalidConfig): never {
  if (e instanceof CniError) throw e;
  if (e instanceof AttachError) throw new CniError(e.reason === 'exists' ? CODES.exists : CODES.invalidEnv, e.message, e.details || undefined);
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
  let r: AttachResult;
  try {
    r = attachNetns(h, {
      netns: env.netns, owner: env.containerId, ifname: env.ifname, network: () => ensureNetwork(h, conf), aliases: names,
      ip: conf.ips[0], mac: conf.mac, ports: conf.portMappings.length ? portSpecs(conf) : [], dns: conf.dns.servers,
    });
  } catch (e) {
    if (e instanceof AttachError && e.reason === 'netns') throw new CniError(CODES.invalidEnv, `CNI_NETNS ${env.netns} is not a network namespace`, e.details);
    asCni(e);
  }
  const { endpoint: ep, network: net } = r;
  return addResult(conf.cniVersion, {
    bridge: { name: net.bridge, mac: r.bridgeMac, mtu: net.mtu },
    host: { name: ep.hostIf, mac: r.hostMac, mtu: net.mtu },
    container: { name: ep.ifname, mac: ep.mac, mtu: net.mtu, sandbox: env.netns },
    address: ep.ip, prefix: r.prefix, gateway: net.gateway, defaultRoute: r.defaultRoute, ...dnsOf(h, net, conf),
  }, conf.prevResult);
}

/** DEL: best effort and idempotent; success when there is nothing (left) to remove. */
export function cniDel(h: Host, env: CniEnv, conf: NetConf): void {
  const net = h.store.networks().find((x) => x.name === conf.name);
  if (net) detachNetns(h, env.containerId, env.ifname, net);
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
