// Container use cases: create/start/run, stop, rm, connect, disconnect, exec.
// A container is a named sandbox: its own netns at /run/netns/<prefix><name> (unless host/container mode), its
// own /etc/resolv.conf and /etc/hosts, and the processes nsnet started in it.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { attachEndpoint, detachEndpoint, quiesceEndpoints } from './drivers.js';
import { clusterAddress, clusterScoped } from './cluster.js';
import { allocateIp, checkStaticIp, macFromIp } from '../ipam/ipam.js';
import { Netlink } from '../kernel/netlink.js';
import { closeFd, createNetns, deleteNetns, netnsExists, netnsPath, openNetns } from '../kernel/netns.js';
import {
  findExecutable, homeOf, isAlive, killNetnsProcesses, launchBackground, launchDetached, launchForeground, resolveUser, runCaptured, signal, type LaunchSpec,
} from '../kernel/proc.js';
import { setSysctl } from '../kernel/sysctl.js';
import type { ContainerRecord, EndpointRecord, NetworkRecord, PortMapping } from '../types.js';
import type { SavedEndpoint } from '../store/store.js';
import { UserError } from '../util/errors.js';
import { isIPv4 } from '../util/addr.js';
import { formatPortSpec } from '../util/ports.js';
import { isSafeName, validateAlias, validateContainerName } from '../util/validate.js';
import { etcPaths, refreshEtc, writeEtc } from './etc.js';
import { DEFAULT_CONFIG, containerConfig, exposedSpecs, validateConfig, validateMac, writeConfig, type ContainerConfig } from './config.js';
import { containerView } from './views.js';
import { crashPoint, type CrashPoint } from './faults.js';
import { recoverIfNeeded } from './reconcile.js';
import { errLogFile, exitFile, logFile, refreshState } from './state.js';
import { applyFirewall, applyPortDelta, containerPorts, foreignFirewallWarning } from './firewall.js';
import { leavePartitions, stopTimers } from './partitions.js';
import type { Host } from './host.js';
import { AUTO_SUBNET, AUTO_SUBNET6, DEFAULT_NETWORK, ensureDefaultNetwork, networkHostBinding, resolveNetwork } from './networks.js';
import { resolvePorts } from './ports.js';
import { ensureSpace, undoOrReport, writeFileNoFollow } from './statedir.js';
import { awaitDns, notifyDnsContainer } from './dnsctl.js';
import { dnsNameProblem } from '../dns/answer.js';
import { cniInspect, refuseCni } from './cni-state.js';
import { containerMark } from './marks.js';
import { writeSavedCopy } from './netcopy.js';
import { forgetContainer, forgetEndpoint, netemInspect, reapplyImpairments, suspendImpairments } from './netem.js';

export interface CreateOptions {
  name?: string;
  /** bridge (default) | host | none | container:NAME | a network name or id */
  network?: string;
  ip?: string;
  /** --ip6: the IPv6 address on a network with IPv6 and a user-configured IPv6 subnet. */
  ip6?: string;
  aliases?: string[];
  publish?: string[];
  dns?: string[];
  command: string[];
  autoRemove?: boolean;
  /** -P: publish every exposed port (config.exposed) on an ephemeral host port. */
  publishAll?: boolean;
  /** --mac-address of the first interface. */
  macAddress?: string;
  /** What a container is besides its network sandbox (hostname, environment, labels, ...): ContainerConfig. */
  config?: Partial<ContainerConfig>;
}

/** The hostname Docker gives: --hostname, else the short id; --network host: the host's; container:X: X's. */
export function containerHostname(h: Host, c: ContainerRecord): string {
  if (c.mode === 'host') return os.hostname();
  if (c.mode === 'container') {
    const owner = netnsOwner(h, c);
    if (owner && owner.id !== c.id) return containerHostname(h, owner);
  }
  return containerConfig(h, c).hostname || c.id.slice(0, 12);
}


export interface Created {
  container: ContainerRecord;
  warnings: string[];
}

const HEX = () => crypto.randomBytes(32).toString('hex');

function hostIfName(): string {
  return 'nsv' + crypto.randomBytes(4).toString('hex');
}

export function resolveContainer(h: Host, ref: string): ContainerRecord {
  const c = h.store.findContainer(ref);
  if (!c) throw new UserError(`No such container: ${ref}`, 'notfound');
  return c;
}

/** The container whose netns `c` lives in (itself, or the target of container:NAME, followed). */
function netnsOwner(h: Host, c: ContainerRecord): ContainerRecord | null {
  let cur: ContainerRecord | null = c;
  for (let i = 0; cur && cur.mode === 'container' && i < 16; i++) cur = cur.modeTarget ? h.store.containerById(cur.modeTarget) : null;
  return cur;
}

function generatedName(h: Host): string {
  for (;;) {
    const n = 'nsnet_' + crypto.randomBytes(3).toString('hex');
    if (!h.store.nameTaken(n)) return n;
  }
}

function networksById(h: Host): Map<string, NetworkRecord> {
  return new Map(h.store.networks().map((n) => [n.id, n]));
}

/** Creates a container: validates everything first (nothing changes on bad input), then persists it as pending,
 *  builds its netns and endpoint, and commits. The process is started separately (startContainer). */
export function createContainer(h: Host, o: CreateOptions): Created {
  const warnings: string[] = [];
  if (!o.command.length) throw new UserError('no command given: nsnet run [OPTIONS] -- COMMAND [ARG...]', 'invalid');
  const cfg: ContainerConfig = { ...DEFAULT_CONFIG, ...(o.config ?? {}) };
  validateConfig(cfg);
  const envPath = [...cfg.env].reverse().find((e) => e.startsWith('PATH='))?.slice(5) ?? callerPath(h);
  if (!findExecutable(o.command[0], envPath, cfg.workdir || undefined)) {
    throw new CommandNotFoundError(`exec: "${o.command[0]}": executable file not found in $PATH`);
  }
  for (const a of o.aliases ?? []) validateAlias(a);
  if (o.macAddress !== undefined) validateMac(o.macAddress);
  if (cfg.user && !resolveUser(cfg.user)) throw new UserError(`unable to find user ${cfg.user}: no matching entries in passwd file`, 'invalid');
  if (cfg.workdir) {
    let dir = false;
    try { dir = fs.statSync(cfg.workdir).isDirectory(); } catch { /* missing */ }
    if (!dir) throw new UserError(`workdir ${JSON.stringify(cfg.workdir)}: no such directory (nsnet does not create it: containers share the host's filesystem)`, 'invalid');
  }
  for (const d of o.dns ?? []) if (!isIPv4(d)) throw new UserError(`invalid --dns address ${JSON.stringify(d)}: expected an IPv4 address`, 'invalid');
  const netRef = o.network ?? DEFAULT_NETWORK;
  const mode: ContainerRecord['mode'] = netRef === 'host' ? 'host' : netRef === 'none' ? 'none' : netRef.startsWith('container:') ? 'container' : 'bridge';
  if (mode !== 'bridge') {
    if (o.ip !== undefined) throw new UserError(`--ip is only valid with a user-defined network, not --network ${netRef}`, 'invalid');
    if (o.ip6 !== undefined) throw new UserError(`--ip6 is only valid with a user-defined network, not --network ${netRef}`, 'invalid');
    if (o.aliases?.length) throw new UserError(`--alias is only valid with a user-defined network, not --network ${netRef}`, 'invalid');
  }
  if (mode === 'container' && (o.publish?.length || o.publishAll)) throw new UserError('conflicting options: port publishing and the container type network mode', 'invalid');
  // Docker's: a container: sandbox has the target's hostname and MAC.
  if (mode === 'container' && cfg.hostname) throw new UserError('conflicting options: hostname and the network mode', 'invalid');
  if (mode === 'container' && o.macAddress !== undefined) throw new UserError('conflicting options: mac-address and the network mode', 'invalid');
  // --network host shares the host's UTS namespace here (Docker gives it a UTS namespace named after the host).
  if (mode === 'host' && cfg.hostname) throw new UserError('--hostname is not supported with --network host: the container shares the host\'s hostname', 'invalid');
  if (mode !== 'bridge' && o.macAddress !== undefined) throw new UserError(`--mac-address needs a network interface: not with --network ${netRef}`, 'invalid');
  // -P publishes each exposed port on an ephemeral host port (those -p already publishes excepted).
  const publish = [...(o.publish ?? []), ...(o.publishAll ? exposedSpecs(cfg.exposed, o.publish ?? []) : [])];
  if (o.name !== undefined) validateContainerName(o.name);
  // A valid container name that no DNS question can carry: accepted (as Docker does), but say so.
  const dnsProblem = o.name !== undefined ? dnsNameProblem(o.name) : null;
  if (dnsProblem) warnings.push(`container name "${o.name}" will not resolve by DNS on user-defined networks: ${dnsProblem}`);

  return h.lock.with(() => {
    ensureSpace(h.root, h.env);
    recoverIfNeeded(h);
    if (o.name !== undefined && h.store.nameTaken(o.name)) {
      throw new UserError(`Conflict. The container name "${o.name}" is already in use`, 'conflict');
    }
    let net: NetworkRecord | null = null;
    let target: ContainerRecord | null = null;
    // Everything that can be refused is checked before the default network is created on first use.
    const existingNet = mode === 'bridge' ? h.store.findNetwork(netRef) : null;
    if (mode === 'bridge' && !existingNet && netRef !== DEFAULT_NETWORK) throw new UserError(`network ${netRef} not found`, 'notfound');
    const onDefault = mode === 'bridge' && (existingNet ? existingNet.isDefault : netRef === DEFAULT_NETWORK);
    if ((o.ip !== undefined || o.ip6 !== undefined) && onDefault) throw new UserError('user specified IP address is supported on user defined networks only', 'invalid');
    if (o.aliases?.length && onDefault) throw new UserError('network-scoped alias is supported only for containers in user defined networks', 'invalid');
    if (mode === 'container') {
      const tref = netRef.slice('container:'.length);
      if (!tref) throw new UserError('--network container: needs a container name', 'invalid');
      target = resolveContainer(h, tref);
      target = netnsOwner(h, target);
      if (!target || target.mode === 'host') throw new UserError(`cannot join the network namespace of ${tref}: it has none of its own`, 'invalid');
      if (refreshState(h, target).state !== 'running') throw new UserError(`cannot join network of a non running container: ${tref}`, 'refused');
    }
    let ports: PortMapping[] = [];
    if (publish.length) {
      if (mode === 'host') warnings.push('Published ports are discarded when using host network mode');
      else if (mode === 'none') warnings.push('Published ports are discarded when using the none network mode');
      else {
        releaseEnded(h);
        ports = resolvePorts(h, publish);
      }
    }
    if (mode === 'bridge') net = existingNet ?? ensureDefaultNetwork(h);
    // host_binding_ipv4: ports published without a host address bind to the network's.
    const binding = net ? networkHostBinding(net) : '';
    if (binding) ports = ports.map((p) => (p.hostIp === '' ? { ...p, hostIp: binding } : p));
    if (net && ports.some((p) => p.hostIp.includes(':')) && !net.subnet6) {
      throw new UserError(`an IPv6 host address in -p needs a network with IPv6: network ${net.name} is IPv4-only`, 'invalid');
    }
    if (net && !net.subnet && ports.some((p) => p.hostIp !== '' && !p.hostIp.includes(':'))) {
      throw new UserError(`an IPv4 host address in -p needs a network with IPv4: network ${net.name} is IPv6-only`, 'invalid');
    }
    if (net?.internal && ports.length) {
      warnings.push(`network ${net.name} is internal: its containers' ports cannot be published`);
    }

    const name = o.name ?? generatedName(h);
    const id = HEX();
    const c: ContainerRecord = {
      id, name, mode, modeTarget: target?.id ?? null,
      netns: mode === 'bridge' || mode === 'none' ? h.netnsPrefix + name : '',
      command: o.command, ports, dns: o.dns ?? [], autoRemove: !!o.autoRemove, state: 'created',
      pid: null, pidStart: null, exitCode: null, created: new Date().toISOString(), started: null, finished: null,
      used: false,
    };
    if (c.netns && netnsExists(c.netns)) {
      throw new UserError(`a network namespace named ${c.netns} already exists (not nsnet's?): choose another name`, 'conflict');
    }
    let ep: EndpointRecord | null = null;
    h.store.tx(() => {
      if (net) ep = planEndpoint(h, c, net, 'eth0', o.ip, o.aliases ?? [], o.macAddress, false, { ip6: o.ip6 });
      h.store.insertContainer(c, true);
      if (ep) {
        h.store.insertEndpoint(ep, true);
        noteLast(h, net!, ep);
      }
    });
    crashPoint('create:persisted');
    try {
      const recovery = { name: c.name, mode: c.mode, modeTarget: c.modeTarget, command: c.command, ports: c.ports, dns: c.dns, autoRemove: c.autoRemove, created: c.created };
      writeConfig(h, c.id, { ...cfg, macAddress: o.macAddress?.toLowerCase() ?? '', recovery });
      buildSandbox(h, c, ep && net ? [[ep, net]] : []);
      crashPoint('create:sandbox');
      // The published ports before the commit: a create killed after its commit must leave nothing undone (the
      // next command, e.g. `up` again, only starts a committed container); one killed before is rolled back by
      // reconcile, whose full firewall from the store drops these elements again.
      if (ports.length) applyPortDelta(h, containerPorts(h, c), []);
      if (net && h.store.anyPartitioned([net.id])) applyFirewall(h); // a partitioned network: its veth and address
      crashPoint('create:firewall');
      h.store.tx(() => h.store.commitContainer(c.id));
      crashPoint('create:committed');
      if (ports.length) {
        const w = foreignFirewallWarning(h);
        if (w) warnings.push(w);
      }
      // Only logged for the resolver (no signal, no wait): nothing runs in the container yet, and every launch
      // of a process (start, run, exec) has the resolver apply all logged changes first (awaitDns).
      if (net && !net.isDefault) notifyDnsContainer(h, c.id, 'log');
    } catch (e) {
      const eps: EndpointRecord[] = ep ? [ep as EndpointRecord] : [];
      rollBack(h, e, `container ${c.name}`, 'create:rollback', () => {
        // Its netns, veth and directory, by name: reconcile finds them by these rows under any state directory
        // (its orphan-netns sweep needs a name prefix, which the default root has not, and the host's mark on
        // the loopback, which a netns that failed this early lacks).
        const ids = eps.map((x) => h.store.addGarbage('link', x.hostIf));
        if (c.netns) ids.push(h.store.addGarbage('netns', c.netns));
        ids.push(h.store.addGarbage('dir', c.id));
        h.store.deleteContainer(c.id);
        return ids;
      }, () => destroySandboxOrThrow(h, c, eps));
    }
    return { container: c, warnings };
  });
}

/** Records the dynamic addresses an endpoint was given (serial allocation goes on after them). */
function noteLast(h: Host, net: NetworkRecord, ep: EndpointRecord): void {
  if (!ep.staticIp && ep.ip) h.store.setLastIp(net.id, ep.ip);
  if (!ep.staticIp6 && ep.ip6) h.store.setLastIp6(net.id, ep.ip6);
}

/** A random locally administered unicast MAC (an IPv6-only endpoint has no IPv4 address to derive one from). */
function randomMac(): string {
  const b = crypto.randomBytes(6);
  b[0] = (b[0] & 0xfc) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

const USER_SUBNET_ONLY = 'user specified IP address is supported only when connecting to networks with user configured subnets';

/** Plans one endpoint (addresses of each family the network has, MAC, interface names) inside the caller's
 *  transaction. The MAC is derived from the IPv4 address (as Docker's); random on an IPv6-only network. */
function planEndpoint(h: Host, c: ContainerRecord, net: NetworkRecord, ifname: string, ip: string | undefined, aliases: string[], mac?: string, reuse = false,
  v6: { ip6?: string; reuse6?: boolean } = {}): EndpointRecord {
  let addr = '';
  if (clusterScoped(net)) {
    // An overlay network's addresses are the cluster's: allocated there, unique across every host (the local
    // store's UNIQUE(network_id, ip) still holds on top).
    const a4 = clusterAddress(h, net, c.id, 4, ip);
    const a6 = net.subnet6 ? clusterAddress(h, net, c.id, 6, v6.ip6) : null;
    return {
      containerId: c.id, containerName: c.name, networkId: net.id, ifname, hostIf: hostIfName(), ip: a4, ip6: a6,
      mac: mac ? mac.toLowerCase() : macFromIp(a4), aliases, staticIp: ip !== undefined, staticIp6: v6.ip6 !== undefined,
    };
  }
  if (ip !== undefined) {
    if (!net.subnet) throw new UserError(`invalid --ip ${ip}: network ${net.name} has no IPv4 (--ipv4=false)`, 'invalid');
    if (net.options[AUTO_SUBNET] === 'true' && !reuse) throw new UserError(USER_SUBNET_ONLY, 'invalid');
    checkStaticIp(net, ip, h.store.addressesOf(net.id));
    addr = ip;
  } else if (net.subnet) {
    addr = allocateIp(net, h.store.addressesOf(net.id), h.store.lastIp(net.id), net.name);
  }
  let addr6: string | null = null;
  if (v6.ip6 !== undefined) {
    if (!net.subnet6 || !net.gateway6) throw new UserError(`invalid --ip6 ${v6.ip6}: network ${net.name} has no IPv6 (create it with --ipv6)`, 'invalid');
    if (net.options[AUTO_SUBNET6] === 'true' && !v6.reuse6) throw new UserError(USER_SUBNET_ONLY, 'invalid');
    addr6 = checkStaticIp({ subnet: net.subnet6, gateway: net.gateway6, ipRange: net.ipRange6 }, v6.ip6, h.store.addresses6Of(net.id));
  } else if (net.subnet6 && net.gateway6) {
    addr6 = allocateIp({ subnet: net.subnet6, gateway: net.gateway6, ipRange: net.ipRange6, name: net.name }, h.store.addresses6Of(net.id), h.store.lastIp6(net.id), net.name);
  }
  return {
    containerId: c.id, containerName: c.name, networkId: net.id, ifname, hostIf: hostIfName(), ip: addr, ip6: addr6,
    mac: mac ? mac.toLowerCase() : addr ? macFromIp(addr) : randomMac(), aliases, staticIp: ip !== undefined,
    staticIp6: v6.ip6 !== undefined,
  };
}

/** Kernel side of create: netns (loopback up), endpoints. The /etc files are written when a process is first
 *  launched in the container (launchSpec): many sandboxes are made and removed without ever running one. */
function buildSandbox(h: Host, c: ContainerRecord, eps: Array<[EndpointRecord, NetworkRecord]>): void {
  if (c.netns) {
    let cnl: Netlink | null = null;
    const fd = createNetns(c.netns, () => {
      cnl = Netlink.open();
      // IPv4-only networks: interfaces created in this netns from now on have IPv6 disabled (as Docker does), so
      // no IPv6 path between containers bypasses the IPv4 firewall (icc=false): no link-local address, and no
      // address from a router advertisement a container could forge either. (Netlink's addr-gen-mode "none" would
      // avoid this /proc/sys write, whose lookup grows with the number of namespaces, but it still lets SLAAC
      // configure addresses from a forged RA: docs/kernel-notes.md §2.)
      setSysctl('net.ipv6.conf.default.disable_ipv6', '1');
    });
    try {
      crashPoint('create:netns');
      const nl = cnl as unknown as Netlink;
      if (!eps.length) nl.batch((b) => b.setUp(1).setAlias(1, containerMark(h.owner, c))); // the mark: see the bridge driver's configureInside
      const first6 = eps.findIndex(([ep]) => ep.ip6);
      eps.forEach(([ep, net], i) => {
        attachEndpoint(h, net, ep, { nsFd: fd, cnl: nl, defaultRoute: i === 0, defaultRoute6: i === first6, loMark: i === 0 ? containerMark(h.owner, c) : undefined });
        crashPoint('create:endpoint');
      });
    } finally {
      (cnl as Netlink | null)?.close();
      closeFd(fd);
    }
  }
}

/** Removes everything a container made in the kernel; tolerant of objects already gone. `eps` are detached
 *  explicitly; `dying` are left to die with the netns (taken out of service first: quiesceEndpoints). What fails is
 *  left to reconcile (the caller has recorded it as garbage) and, with `failures`, said there. */
function destroySandbox(h: Host, c: ContainerRecord, eps: EndpointRecord[], keepDir = false, dying: EndpointRecord[] = [], failures?: string[]): void {
  const failed = (what: string, e: unknown) => failures?.push(`${what}: ${(e as Error)?.message ?? String(e)}`);
  for (const ep of eps) {
    try { detachEndpoint(h, ep); } catch (e) { failed(`veth ${ep.hostIf}`, e); }
  }
  if (c.netns) {
    if (dying.length) {
      try { quiesceEndpoints(h, dying); } catch { /* reconcile and sweepDyingLinks finish */ }
    }
    try { deleteNetns(c.netns); } catch (e) { failed(`netns ${c.netns}`, e); }
  }
  if (!keepDir) fs.rmSync(h.containerDir(c.id), { recursive: true, force: true });
}

/** destroySandbox that throws what it could not remove (after trying everything). */
function destroySandboxOrThrow(h: Host, c: ContainerRecord, eps: EndpointRecord[], keepDir = false): void {
  const failures: string[] = [];
  destroySandbox(h, c, eps, keepDir, [], failures);
  if (failures.length) throw new Error(failures.join('; '));
}

/**
 * The failure path of a use case whose rows were persisted as pending: `record` (one transaction) deletes its
 * rows and records as garbage what it may have made in the kernel, returning the garbage ids; `cleanup` then
 * removes those objects, and the garbage rows go once it has. A clean-up that fails is said in `err`'s message
 * (never swallowed) and, like one interrupted (crash point `point`), leaves its garbage for the next mutating
 * command (recoverIfNeeded) or reconcile. When the store cannot record it (a full disk fails both), the rows stay
 * pending (reconcile rolls them back) and the objects are removed now as far as possible. Throws `err`.
 */
function rollBack(h: Host, err: unknown, left: string, point: CrashPoint | null, record: () => number[], cleanup: () => void): never {
  let ids: number[] = [];
  try {
    ids = h.store.tx(record);
  } catch (u) {
    try { cleanup(); } catch { /* the pending rows: reconcile */ }
    undoOrReport(err, left, () => { throw u; });
  }
  try {
    if (point) crashPoint(point);
    cleanup();
    h.store.tx(() => h.store.dropGarbage(ids));
  } catch (d) {
    const tail = `; removing what it made failed too (${(d as Error)?.message ?? String(d)}): the next nsnet command (or nsnet reconcile) removes the rest`;
    if (err instanceof Error) err.message += tail;
    else err = new Error(String(err) + tail);
  }
  throw err;
}

/** Recreates a lost sandbox (after a reboot-like loss) from the remembered attachments: dynamic addresses are
 *  allocated anew, static ones must still be free. */
function rebuildSandbox(h: Host, c: ContainerRecord): void {
  const saved = h.store.savedEndpoints(c.id) as Released[];
  const nets = networksById(h);
  // Docker: starting a container whose network was removed meanwhile fails ("network X not found").
  for (const s of saved) if (!nets.get(s.networkId) && s.networkName) throw new UserError(`network ${s.networkName} not found`, 'notfound');
  checkPortsFree(h, c);
  const planned: Array<[EndpointRecord, NetworkRecord]> = [];
  if (netnsExists(c.netns)) deleteNetns(c.netns); // left by an interrupted earlier attempt
  h.store.tx(() => {
    for (const s of saved) {
      const net = nets.get(s.networkId);
      if (!net) continue; // the network was removed meanwhile
      // Pending until the kernel side exists: a crash in between is rolled back (the attachments stay saved).
      // The address it had when it was released, if nobody took it meanwhile (as Docker gives it back).
      const prev = s.ip === null && s.prevIp && !h.store.addressesOf(net.id).has(s.prevIp) ? s.prevIp : undefined;
      const prev6 = !s.ip6 && s.prevIp6 && !h.store.addresses6Of(net.id).has(s.prevIp6) ? s.prevIp6 : undefined;
      const mac = s.ifname === 'eth0' ? containerConfig(h, c).macAddress || undefined : undefined;
      const ep0 = planEndpoint(h, c, net, s.ifname, prev ?? s.ip ?? undefined, s.aliases, mac, prev !== undefined,
        { ip6: prev6 ?? s.ip6 ?? undefined, reuse6: prev6 !== undefined });
      const ep = { ...ep0, staticIp: prev !== undefined ? false : ep0.staticIp, staticIp6: prev6 !== undefined ? false : ep0.staticIp6 };
      h.store.insertEndpoint(ep, true);
      noteLast(h, net, ep);
      planned.push([ep, net]);
    }
  });
  try {
    buildSandbox(h, c, planned);
    h.store.tx(() => {
      h.store.commitContainer(c.id);
      h.store.setSavedEndpoints(c.id, []);
      writeSavedCopy(h, c.id, []);
    });
  } catch (e) {
    // The container stays (exited, its attachments saved); its new veths are garbage until removed, its netns goes
    // (a lost sandbox: the next start rebuilds it).
    const eps = planned.map(([ep]) => ep);
    rollBack(h, e, `the start of ${c.name}`, null, () => {
      const ids = eps.map((ep) => h.store.addGarbage('link', ep.hostIf));
      for (const ep of eps) h.store.deleteEndpoint(c.id, ep.networkId);
      return ids;
    }, () => destroySandboxOrThrow(h, c, eps, true));
  }
  refreshEtc(h, c, planned.map(([ep]) => ep), nets); // the addresses may have changed
  if (c.ports.length || h.store.anyPartitioned(planned.map(([ep]) => ep.networkId))) applyFirewall(h); // new veths on a partitioned network
  notifyDnsContainer(h, c.id);
  reapplyImpairments(h, c); // its link impairments (netem.ts) are on the new links too
}

/** A released attachment: SavedEndpoint plus what start needs to give the same address back and to name a
 *  network removed meanwhile (extra fields of the stored JSON). */
type Released = SavedEndpoint & { prevIp?: string; prevIp6?: string; networkName?: string };

/** What Docker releases when a container stops (or its network is removed while it is not running): its
 *  endpoints (addresses back to the pool, no longer listed by network inspect), its published ports, its DNS
 *  names. Its netns stays (loopback only); start rebuilds the endpoints from the saved attachments (the same
 *  address when it is still free). Runs under the lock. */
function releaseSandbox(h: Host, c: ContainerRecord): void {
  if (c.mode !== 'bridge' || !c.netns) return;
  const eps = h.store.endpointsOf(c.id);
  if (!eps.length) return;
  const nets = networksById(h);
  const ports = containerPorts(h, c);
  const ids: number[] = [];
  let saved: Released[] = [];
  h.store.tx(() => {
    saved = [...(h.store.savedEndpoints(c.id) as Released[]), ...eps.map((e) => ({
      networkId: e.networkId, ifname: e.ifname, aliases: e.aliases, ip: e.staticIp ? e.ip : null, prevIp: e.ip || undefined,
      ip6: e.staticIp6 ? e.ip6 : null, prevIp6: e.ip6 ?? undefined, networkName: nets.get(e.networkId)?.name,
    }))];
    h.store.setSavedEndpoints(c.id, saved);
    for (const e of eps) {
      ids.push(h.store.addGarbage('link', e.hostIf));
      h.store.deleteEndpoint(c.id, e.networkId);
    }
  });
  writeSavedCopy(h, c.id, saved);
  crashPoint('release:persisted');
  if (ports.length) applyPortDelta(h, [], ports);
  suspendImpairments(h, c.id); // delay lines end with the links (the impairments stay, applied again at start)
  // Its addresses go back to the pool: a partition must not treat their next holder as this container.
  if (h.store.anyPartitioned(eps.map((e) => e.networkId))) applyFirewall(h);
  for (const e of eps) {
    try { detachEndpoint(h, e); } catch { /* reconcile removes what is left (garbage rows) */ }
  }
  h.store.tx(() => h.store.dropGarbage(ids));
  refreshEtc(h, c, [], nets);
  if (eps.some((e) => !nets.get(e.networkId)?.isDefault)) notifyDnsContainer(h, c.id);
}

/** Detached containers with published ports whose command ended by itself (nsnet does not watch them) release
 *  them now, before ports are allocated: a port held by a container that is gone is free, as in Docker. Only
 *  containers with ports are looked at, and only when ports are being published. Runs under the lock. */
function releaseEnded(h: Host): void {
  for (const p of h.store.publishedPorts()) {
    const c = h.store.containerById(p.id);
    if (!c || c.state === 'created' || c.autoRemove) continue; // --rm ones are removed by their supervisor
    // Exited (already known or found now) but still attached: stopped ones were released by stop.
    if (refreshState(h, c).state === 'exited' && h.store.endpointsOf(c.id).length
      && !h.store.dependents(c.id).some((d) => refreshState(h, d).state === 'running')) {
      const cur = h.store.containerById(c.id);
      if (cur) releaseSandbox(h, cur);
    }
  }
}

/** start of a released container: its published ports must still be free (Docker fails the start otherwise). */
function checkPortsFree(h: Host, c: ContainerRecord): void {
  if (!c.ports.length) return;
  releaseEnded(h);
  resolvePorts(h, c.ports.map(formatPortSpec)); // throws Docker's "port is already allocated" for a port taken meanwhile
}

/** Docker-shaped view of a container, its state brought up to date; SandboxKey is the netns it really lives in
 *  (the target's, for --network container:NAME). */
export function inspectContainer(h: Host, c0: ContainerRecord): Record<string, unknown> {
  const c = refreshState(h, c0);
  const owner = netnsOwner(h, c);
  // Attached through CNI: where from (the runtime's container id, its netns as SandboxKey).
  return netemInspect(h, c.id, cniInspect(h, c.id, containerView(c, h.store.endpointsOf(c.id), networksById(h), owner?.netns ?? '', h.store.savedEndpoints(c.id))));
}

/** How to start a process in this container. Also what must hold before any process runs there: the netns
 *  owner is marked used (so that rm looks for processes left inside), its /etc files exist, and the resolver
 *  has applied every change made so far (a name just created resolves from the first instruction). */
export function launchSpec(h: Host, c: ContainerRecord, command: string[], po: ProcessOptions = {}): LaunchSpec {
  const proc = { ...processSettings(h, c, po), ...(po.foreground ? {} : { stderrFile: errLogFile(h, c) }) };
  if (c.mode === 'host') return { command, netnsFd: h.hostFd, netnsPath: null, etc: null, ...proc };
  const owner = c.mode === 'container' ? netnsOwner(h, c) : c;
  if (!owner || !owner.netns) throw new UserError(`container ${c.name} has no network namespace to join`, 'refused');
  if (!owner.used) h.store.tx(() => h.store.markUsed(owner.id));
  const etc = etcPaths(h, owner);
  if (!fs.existsSync(etc.hosts)) writeEtc(h, owner, h.store.endpointsOf(owner.id), networksById(h));
  awaitDns(h);
  return { command, netnsFd: null, netnsPath: netnsPath(owner.netns), etc, ...proc, hostname: containerHostname(h, c) };
}

/** Per-process settings of `run`/`exec`: what the container was created with, and what exec adds. */
export interface ProcessOptions {
  /** Attached to our stdio (run in the foreground, exec): no stderr log. Otherwise the container's detached
   *  command, whose stderr is logged apart from its stdout. */
  foreground?: boolean;
  /** K=V (exec -e), after the container's own. */
  env?: string[];
  workdir?: string;
  user?: string;
  tty?: boolean;
  interactive?: boolean;
}

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** There is no image to give a PATH: the caller's (the commands are the host's), else Docker's default. */
function callerPath(h: Host): string {
  return h.env.PATH || DEFAULT_PATH;
}

/** A Docker-like process environment: PATH (the caller's), HOSTNAME, HOME (TERM with -t), then the container's -e/--env-file
 *  values, then exec's -e. Nothing of the caller's environment leaks in, as in Docker. */
function processSettings(h: Host, c: ContainerRecord, po: ProcessOptions): Pick<LaunchSpec, 'env' | 'cwd' | 'user' | 'stdin'> {
  const cfg = containerConfig(h, c);
  const userSpec = po.user ?? cfg.user;
  const user = userSpec ? resolveUser(userSpec) : null;
  if (userSpec && !user) throw new UserError(`unable to find user ${userSpec}: no matching entries in passwd file`, 'invalid');
  const env: Record<string, string> = { PATH: callerPath(h), HOSTNAME: containerHostname(h, c) };
  if (po.tty ?? cfg.tty) env.TERM = 'xterm';
  for (const kv of [...cfg.env, ...(po.env ?? [])]) {
    const i = kv.indexOf('=');
    env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  env.HOME ??= homeOf(user?.uid ?? 0);
  const cwd = po.workdir || cfg.workdir || undefined;
  if (cwd !== undefined) {
    let ok = false;
    try { ok = fs.statSync(cwd).isDirectory(); } catch { /* missing */ }
    // Docker creates a missing workdir in the container's filesystem; here that is the host's: refused instead.
    if (!ok) throw new UserError(`workdir ${JSON.stringify(cwd)}: no such directory (nsnet does not create it: containers share the host's filesystem)`, 'invalid');
  }
  return { env, cwd, user, stdin: !!(po.interactive ?? cfg.interactive) };
}

/** Path of the nsnet launcher, for the detached supervisor's `rm` of --rm containers. */
function nsnetBin(h: Host): string {
  return h.env.NSNET_BIN ?? path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../../bin/nsnet');
}

/** Starts the container's command detached (its output goes to `logs`). */
export function startContainer(h: Host, ref: string): ContainerRecord {
  return h.lock.with(() => {
    recoverIfNeeded(h);
    let c = refreshState(h, resolveContainer(h, ref));
    refuseCni(h, c, 'start');
    if (c.state === 'running') return c;
    if (c.netns && (!netnsExists(c.netns) || h.store.savedEndpoints(c.id).length)) rebuildSandbox(h, c);
    const spec = launchSpec(h, c, c.command);
    fs.mkdirSync(h.containerDir(c.id), { recursive: true, mode: 0o711 }); // log and exit code (any mode)
    fs.rmSync(exitFile(h, c), { force: true });
    fs.writeFileSync(errLogFile(h, c), '', { flag: 'a', mode: 0o640 }); // the stderr log exists from the start
    const env = { ...spec.env, NSNET_ROOT: h.root }; // the container's environment; NSNET_ROOT for the --rm supervisor
    // The supervisor lives in the host netns (it enters the container's with nsenter): host-mode commands run
    // there, and the `rm` of --rm containers acts on the right host.
    const { pid, start } = h.inHost(() => launchDetached({ ...spec, netnsFd: null, env }, logFile(h, c), exitFile(h, c),
      c.autoRemove ? { bin: nsnetBin(h), id: c.id } : undefined));
    crashPoint('start:launched');
    const upd = { state: 'running' as const, pid, pidStart: start, started: new Date().toISOString(), exitCode: null, finished: null };
    h.store.tx(() => h.store.updateContainer(c.id, upd));
    c = { ...c, ...upd };
    return c;
  });
}

/** Runs the container's command in the foreground, attached to our stdio (stdin only with -i); returns its exit
 *  code. */
export async function runForeground(h: Host, c: ContainerRecord): Promise<number> {
  const spec = launchSpec(h, c, c.command, { foreground: true });
  const code = await launchForeground(spec, (pid) => {
    h.store.tx(() => h.store.updateContainer(c.id, { state: 'running', pid, pidStart: null, started: new Date().toISOString() }));
  });
  h.store.tx(() => h.store.updateContainer(c.id, { state: 'exited', exitCode: code, pid: null, pidStart: null, finished: new Date().toISOString() }));
  // The exit code also where a detached container's supervisor writes it: the store's rebuild reads it there.
  try { writeFileNoFollow(exitFile(h, c), `${code}\n`); } catch { /* only a rebuild would miss it */ }
  // Exited: it lets go of its addresses, ports and names, as Docker's (start gives them back).
  h.lock.with(() => {
    const cur = h.store.containerById(c.id);
    // (--rm: removed next, the veths die with the netns: no release first.)
    if (cur && cur.state === 'exited' && !cur.autoRemove && !h.store.dependents(cur.id).some((d) => refreshState(h, d).state === 'running')) releaseSandbox(h, cur);
  });
  // --rm: removed when its command ends (as Docker's).
  if (c.autoRemove) await removeContainer(h, c.id, true);
  return code;
}

/** The command of run/create cannot be found (run exits 127 for it, as Docker's). */
export class CommandNotFoundError extends UserError {
  constructor(message: string) {
    super(message, 'invalid');
  }
}

/** An error with the exit status Docker uses for it (126: exec's command cannot be run). */
export class ExitStatusError extends UserError {
  constructor(message: string, readonly status: number) {
    super(message, 'refused');
  }

  override get exitCode(): number {
    return this.status;
  }
}

export interface ExecOptions extends ProcessOptions {
  /** exec -d: start it in the background and return at once. */
  detach?: boolean;
}

/** Runs a command inside a running container (Docker refuses created and stopped ones); foreground unless
 *  detached; returns the exit code (0 when detached). A command that cannot be found exits 126, as Docker's. */
export async function execIn(h: Host, ref: string, command: string[], o: ExecOptions = {}): Promise<number> {
  const c = refreshState(h, resolveContainer(h, ref));
  if (c.state !== 'running') throw new UserError(`Container ${c.id} is not running`, 'refused');
  if (!command.length) throw new UserError('no command given: nsnet exec CONTAINER -- COMMAND [ARG...]', 'invalid');
  const spec = launchSpec(h, c, command, { ...o, foreground: true });
  if (!findExecutable(command[0], spec.env?.PATH, spec.cwd)) {
    throw new ExitStatusError(`exec: "${command[0]}": executable file not found in $PATH`, 126);
  }
  if (o.detach) {
    launchBackground(spec);
    return 0;
  }
  return launchForeground(spec);
}

/** exec with captured output (library use and tests). */
export function execCaptured(h: Host, ref: string, command: string[]): { status: number; stdout: string; stderr: string } {
  return runCaptured(launchSpec(h, resolveContainer(h, ref), command, { foreground: true }));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Ends the container's processes: SIGTERM to its process group, SIGKILL after `timeoutSec`; then any process
 *  still inside its own netns (a daemon that escaped the group) gets SIGKILL too. */
export async function stopContainer(h: Host, ref: string, timeoutSec = 10, release = true): Promise<ContainerRecord> {
  const c0 = refreshState(h, resolveContainer(h, ref));
  refuseCni(h, c0, 'stop');
  if (c0.state === 'running' && c0.pid) {
    signal(-c0.pid, timeoutSec <= 0 ? 'SIGKILL' : 'SIGTERM');
    const deadline = Date.now() + timeoutSec * 1000;
    while (isAlive(c0.pid, c0.pidStart) && Date.now() < deadline) await sleep(20);
    if (isAlive(c0.pid, c0.pidStart)) signal(-c0.pid, 'SIGKILL');
    while (isAlive(c0.pid, c0.pidStart)) await sleep(10);
  }
  // Not while others run in its netns (--network container:): they are not this container's processes.
  const shared = h.store.dependents(c0.id).some((d) => refreshState(h, d).state === 'running');
  // (Not when rm stops it, release=false: rm sweeps the netns itself, under the lock.)
  if (release && c0.netns && isSafeName(c0.netns) && !shared && h.store.containerById(c0.id)?.used) killNetnsProcesses(c0.netns);
  const c = refreshState(h, h.store.containerById(c0.id) ?? c0);
  if (c.state === 'running') {
    h.store.tx(() => h.store.updateContainer(c.id, { state: 'exited', pid: null, pidStart: null, exitCode: 137, finished: new Date().toISOString() }));
  }
  // A stopped container releases its addresses, ports and names, as Docker's (not one whose netns others use:
  // their network would go with it; not an --rm one: removed next).
  h.lock.with(() => {
    const cur = h.store.containerById(c.id);
    if (release && cur && cur.state !== 'running' && !cur.autoRemove && !h.store.dependents(cur.id).some((d) => refreshState(h, d).state === 'running')) releaseSandbox(h, cur);
  });
  const last = h.store.containerById(c.id) ?? c;
  // --rm: a container that stops is removed (as Docker's daemon does); its supervisor may be removing it too.
  if (last.autoRemove && h.store.containerById(c.id)) await removeContainer(h, c.id, true).catch(() => undefined);
  return last;
}

/** A row whose netns is not one file name (a damaged or edited store, `../../x`) names no netns of ours: its
 *  removal leaves the kernel alone (netnsPath would refuse the name anyway) and only deletes the row. */
function saneNetns(c: ContainerRecord): ContainerRecord {
  return c.netns && !isSafeName(c.netns) ? { ...c, netns: '' } : c;
}

/** Removes a container and everything it made. Running containers need force (they are killed first). */
export async function removeContainer(h: Host, ref: string, force = false): Promise<ContainerRecord> {
  let c = saneNetns(refreshState(h, resolveContainer(h, ref)));
  refuseCni(h, c, 'remove');
  const users = h.store.dependents(c.id).filter((d) => refreshState(h, d).state === 'running');
  // Docker's rm -f removes it anyway: the sharers keep running in the netns, with only loopback left.
  if (users.length && !force) throw new UserError(`container ${c.name} is in use by ${users.map((d) => d.name).join(', ')} (--network container:${c.name}): remove them first, or use rm -f`, 'refused');
  if (c.state === 'running') {
    if (!force) throw new UserError(`You cannot remove a running container ${c.name}. Stop the container before attempting removal or force remove`, 'refused');
    c = saneNetns(await stopContainer(h, c.id, 0, false)); // removed next: its veths die with the netns, no release first
  }
  return h.lock.with(() => {
    recoverIfNeeded(h);
    const deps = h.store.dependents(c.id).filter((d) => refreshState(h, d).state === 'running');
    if (deps.length && !force) throw new UserError(`container ${c.name} is in use by ${deps.map((d) => d.name).join(', ')} (--network container:${c.name}): remove them first, or use rm -f`, 'refused');
    const sharedNetns = deps.length > 0;
    const eps = h.store.endpointsOf(c.id);
    const ports = containerPorts(h, c);
    let used = true;
    const ids: number[] = [];
    forgetContainer(h, c.id); // its impairments' healers (the rows go with the row: ON DELETE CASCADE)
    let cut: ReturnType<typeof leavePartitions> = { render: false, timers: [] };
    h.store.tx(() => {
      cut = leavePartitions(h, c.id); // its part of any partition goes with it
      used = h.store.containerById(c.id)?.used ?? true; // read where the row goes: an exec may have begun since
      // With its own netns, the container's veths die with it: the kernel removes both ends once the netns is
      // gone (≈30 ms per veth when asked one by one, nothing for us to wait for this way). Their rows stay as
      // 'veth' garbage until then (sweepDyingLinks).
      for (const ep of eps) {
        // A netns others still run in outlives its name: its veths must be deleted one by one.
        if (c.netns && !sharedNetns) h.store.addGarbage('veth', ep.hostIf);
        else ids.push(h.store.addGarbage('link', ep.hostIf));
      }
      if (c.netns) ids.push(h.store.addGarbage('netns', c.netns));
      ids.push(h.store.addGarbage('dir', c.id));
      h.store.deleteContainer(c.id);
    });
    crashPoint('rm:persisted');
    // The row is gone: whatever the firewall says, the sandbox must go too (never a half-removed container).
    // A failed port removal is reported after the removal, with what is left.
    let fwError: Error | null = null;
    if (ports.length || cut.render) {
      try {
        if (cut.render) applyFirewall(h);
        else applyPortDelta(h, [], ports);
      } catch (e) {
        fwError = e as Error;
      }
    }
    stopTimers(cut.timers);
    crashPoint('rm:firewall');
    if (c.netns && used && !sharedNetns) killNetnsProcesses(c.netns);
    if (sharedNetns) destroySandbox(h, c, eps);
    else destroySandbox(h, c, c.netns ? [] : eps, false, eps);
    crashPoint('rm:sandbox');
    h.store.tx(() => h.store.dropGarbage(ids));
    // A container that never ran a process: nothing inside it waits for its name to disappear.
    if (eps.some((e) => !networksById(h).get(e.networkId)?.isDefault)) notifyDnsContainer(h, c.id, used ? 'wait' : 'signal');
    if (fwError) {
      throw new Error(`container ${c.name} was removed, but its published ports could not be removed from the firewall (${fwError.message}): run nsnet reconcile`);
    }
    return c;
  });
}

export interface ConnectOptions {
  ip?: string;
  /** --ip6 */
  ip6?: string;
  aliases?: string[];
}

/** Adds an interface on another network to a container (multi-homing). */
export function connect(h: Host, netRef: string, ctrRef: string, o: ConnectOptions = {}): EndpointRecord {
  for (const a of o.aliases ?? []) validateAlias(a);
  return h.lock.with(() => {
    ensureSpace(h.root, h.env);
    recoverIfNeeded(h);
    if (netRef === 'host' || netRef === 'none') throw new UserError(`container cannot be connected to the ${netRef} network`, 'refused');
    const found = h.store.findNetwork(netRef);
    if (!found && netRef !== DEFAULT_NETWORK) throw new UserError(`network ${netRef} not found`, 'notfound');
    const onDefault = found ? found.isDefault : true;
    if ((o.ip !== undefined || o.ip6 !== undefined) && onDefault) throw new UserError('user specified IP address is supported on user defined networks only', 'invalid');
    if (o.aliases?.length && onDefault) throw new UserError('network-scoped alias is supported only for containers in user defined networks', 'invalid');
    const c = resolveContainer(h, ctrRef);
    refuseCni(h, c, 'connect');
    if (c.mode !== 'bridge') {
      throw new UserError(`container ${c.name} uses --network ${c.mode === 'container' ? 'container:...' : c.mode}: it cannot be connected to other networks`, 'refused');
    }
    const net = found ?? resolveNetwork(h, netRef);
    const existing = h.store.endpointsOf(c.id);
    if (existing.some((e) => e.networkId === net.id)) throw new UserError(`endpoint with name ${c.name} already exists in network ${net.name}`, 'conflict');
    let n = 0;
    while (existing.some((e) => e.ifname === `eth${n}`)) n++;
    const ep = h.store.tx(() => {
      const e = planEndpoint(h, c, net, `eth${n}`, o.ip, o.aliases ?? [], undefined, false, { ip6: o.ip6 });
      h.store.insertEndpoint(e, true);
      noteLast(h, net, e);
      return e;
    });
    crashPoint('connect:persisted');
    const fd = openNetns(c.netns);
    let cnl: Netlink | null = null;
    try {
      cnl = Netlink.openIn(fd);
      const hasDefault = cnl.routes(4).some((r) => r.prefixLen === 0);
      const hasDefault6 = ep.ip6 ? cnl.routes(6).some((r) => r.prefixLen === 0 && r.gateway !== null) : true;
      attachEndpoint(h, net, ep, { nsFd: fd, cnl, defaultRoute: !hasDefault, defaultRoute6: !hasDefault6 });
      crashPoint('connect:attached');
      h.store.tx(() => h.store.commitEndpoint(c.id, net.id));
    } catch (e) {
      rollBack(h, e, `the connect of ${c.name} to ${net.name}`, 'connect:rollback', () => {
        const id = h.store.addGarbage('link', ep.hostIf);
        h.store.deleteEndpoint(c.id, net.id);
        return [id];
      }, () => detachEndpoint(h, ep));
    } finally {
      cnl?.close();
      closeFd(fd);
    }
    refreshEtc(h, c, h.store.endpointsOf(c.id), networksById(h));
    if (c.ports.length || h.store.anyPartitioned([net.id])) applyFirewall(h);
    if (!net.isDefault) notifyDnsContainer(h, c.id);
    return ep;
  });
}

/** Removes a container's interface on a network; its address returns to the pool. */
export function disconnect(h: Host, netRef: string, ctrRef: string, force = false): void {
  h.lock.with(() => {
    recoverIfNeeded(h);
    const net = h.store.findNetwork(netRef);
    if (!net) throw new UserError(`network ${netRef} not found`, 'notfound');
    const c = h.store.findContainer(ctrRef);
    if (!c) {
      if (force) return;
      throw new UserError(`No such container: ${ctrRef}`, 'notfound');
    }
    refuseCni(h, c, 'disconnect');
    const eps = h.store.endpointsOf(c.id);
    const ep = eps.find((e) => e.networkId === net.id);
    if (!ep) throw new UserError(`container ${c.name} is not connected to network ${net.name}`, 'notfound');
    let gid = 0;
    h.store.tx(() => {
      gid = h.store.addGarbage('link', ep.hostIf);
      h.store.deleteEndpoint(c.id, net.id);
      forgetEndpoint(h, c.id, net.id); // its impairment there goes with the link
    });
    crashPoint('disconnect:persisted');
    detachEndpoint(h, ep);
    crashPoint('disconnect:detached');
    h.store.tx(() => h.store.dropGarbage([gid]));
    const rest = h.store.endpointsOf(c.id);
    if (rest.length && c.netns) {
      // If the default route went with that interface, route through the next network's gateway.
      const fd = openNetns(c.netns);
      const cnl = Netlink.openIn(fd);
      try {
        if (!cnl.routes(4).some((r) => r.prefixLen === 0)) {
          const e4 = rest.find((e) => e.ip);
          const next = e4 ? h.store.networkById(e4.networkId) : null;
          if (next?.gateway) cnl.addRoute({ dst: '0.0.0.0', prefixLen: 0, gateway: next.gateway });
        }
        if (ep.ip6 && !cnl.routes(6).some((r) => r.prefixLen === 0 && r.gateway !== null)) {
          const e6 = rest.find((e) => e.ip6);
          const next = e6 ? h.store.networkById(e6.networkId) : null;
          if (next?.gateway6) cnl.addRoute({ dst: '::', prefixLen: 0, gateway: next.gateway6 });
        }
      } finally {
        cnl.close();
        closeFd(fd);
      }
    }
    refreshEtc(h, c, rest, networksById(h));
    if (c.ports.length || h.store.anyPartitioned([net.id])) applyFirewall(h);
    if (!net.isDefault) notifyDnsContainer(h, c.id);
  });
}

export { releaseSandbox };
export { HEX as newId, errLogFile, logFile, refreshState, containerConfig, type ContainerConfig };
