// Container use cases: create/start/run, stop, rm, connect, disconnect, exec.
// A container is a named sandbox: its own netns at /run/netns/<prefix><name> (unless host/container mode), its
// own /etc/resolv.conf and /etc/hosts, and the processes nsnet started in it.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as bridge from '../drivers/bridge.js';
import { allocateIp, checkStaticIp, macFromIp } from '../ipam/ipam.js';
import { Netlink } from '../kernel/netlink.js';
import { closeFd, createNetns, deleteNetns, netnsExists, netnsPath, openNetns } from '../kernel/netns.js';
import {
  findExecutable, isAlive, killNetnsProcesses, launchDetached, launchForeground, runCaptured, signal, type LaunchSpec,
} from '../kernel/proc.js';
import type { ContainerRecord, EndpointRecord, NetworkRecord, PortMapping } from '../types.js';
import { UserError } from '../util/errors.js';
import { isIPv4 } from '../util/ip.js';
import { validateAlias, validateContainerName } from '../util/validate.js';
import { etcPaths, refreshEtc, writeEtc } from './etc.js';
import { containerView } from './views.js';
import { crashPoint } from './faults.js';
import { recoverIfNeeded } from './reconcile.js';
import { exitFile, logFile, refreshState } from './state.js';
import { applyFirewall, applyPortDelta, containerPorts } from './firewall.js';
import type { Host } from './host.js';
import { DEFAULT_NETWORK, ensureDefaultNetwork, resolveNetwork } from './networks.js';
import { resolvePorts } from './ports.js';
import { awaitDns, notifyDnsContainer } from './dnsctl.js';
import { cniInspect, refuseCni } from './cni-state.js';

export interface CreateOptions {
  name?: string;
  /** bridge (default) | host | none | container:NAME | a network name or id */
  network?: string;
  ip?: string;
  aliases?: string[];
  publish?: string[];
  dns?: string[];
  command: string[];
  autoRemove?: boolean;
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
  if (!findExecutable(o.command[0])) {
    throw new UserError(`exec: "${o.command[0]}": executable file not found in $PATH`, 'invalid');
  }
  for (const a of o.aliases ?? []) validateAlias(a);
  for (const d of o.dns ?? []) if (!isIPv4(d)) throw new UserError(`invalid --dns address ${JSON.stringify(d)}: expected an IPv4 address`, 'invalid');
  const netRef = o.network ?? DEFAULT_NETWORK;
  const mode: ContainerRecord['mode'] = netRef === 'host' ? 'host' : netRef === 'none' ? 'none' : netRef.startsWith('container:') ? 'container' : 'bridge';
  if (mode !== 'bridge') {
    if (o.ip !== undefined) throw new UserError(`--ip is only valid with a user-defined network, not --network ${netRef}`, 'invalid');
    if (o.aliases?.length) throw new UserError(`--alias is only valid with a user-defined network, not --network ${netRef}`, 'invalid');
  }
  if (mode === 'container' && o.publish?.length) throw new UserError('conflicting options: port publishing and the container type network mode', 'invalid');
  if (o.name !== undefined) validateContainerName(o.name);

  return h.lock.with(() => {
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
    if (o.ip !== undefined && onDefault) throw new UserError('user specified IP address is supported on user defined networks only', 'invalid');
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
    if (o.publish?.length) {
      if (mode === 'host') warnings.push('Published ports are discarded when using host network mode');
      else if (mode === 'none') warnings.push('Published ports are discarded when using the none network mode');
      else ports = resolvePorts(h, o.publish);
    }
    if (mode === 'bridge') net = existingNet ?? ensureDefaultNetwork(h);
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
      if (net) ep = planEndpoint(h, c, net, 'eth0', o.ip, o.aliases ?? []);
      h.store.insertContainer(c, true);
      if (ep) {
        h.store.insertEndpoint(ep, true);
        if (!ep.staticIp) h.store.setLastIp(net!.id, ep.ip);
      }
    });
    crashPoint('create:persisted');
    try {
      buildSandbox(h, c, ep && net ? [[ep, net]] : []);
      crashPoint('create:sandbox');
      h.store.tx(() => h.store.commitContainer(c.id));
      crashPoint('create:committed');
      if (ports.length) applyPortDelta(h, containerPorts(h, c), []);
      crashPoint('create:firewall');
      // Only logged for the resolver (no signal, no wait): nothing runs in the container yet, and every launch
      // of a process (start, run, exec) has the resolver apply all logged changes first (awaitDns).
      if (net && !net.isDefault) notifyDnsContainer(h, c.id, 'log');
    } catch (e) {
      destroySandbox(h, c, ep ? [ep] : []);
      h.store.tx(() => h.store.deleteContainer(c.id));
      throw e;
    }
    return { container: c, warnings };
  });
}

/** Plans one endpoint (address, MAC, interface names) inside the caller's transaction. */
function planEndpoint(h: Host, c: ContainerRecord, net: NetworkRecord, ifname: string, ip: string | undefined, aliases: string[]): EndpointRecord {
  const inUse = h.store.addressesOf(net.id);
  let addr: string;
  if (ip !== undefined) {
    checkStaticIp(net, ip, inUse);
    addr = ip;
  } else {
    addr = allocateIp(net, inUse, h.store.lastIp(net.id), net.name);
  }
  return {
    containerId: c.id, containerName: c.name, networkId: net.id, ifname, hostIf: hostIfName(), ip: addr,
    mac: macFromIp(addr), aliases, staticIp: ip !== undefined,
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
      // configure addresses from a forged RA: docs/kernel-notes.md 2.)
      fs.writeFileSync('/proc/sys/net/ipv6/conf/default/disable_ipv6', '1');
    });
    try {
      crashPoint('create:netns');
      const nl = cnl as unknown as Netlink;
      if (!eps.length) nl.setUp(1);
      eps.forEach(([ep, net], i) => {
        bridge.attach(h, net, ep, { nsFd: fd, cnl: nl, defaultRoute: i === 0, loUp: i === 0 });
        crashPoint('create:endpoint');
      });
    } finally {
      (cnl as Netlink | null)?.close();
      closeFd(fd);
    }
  }
}

/** Removes everything a container made in the kernel; tolerant of objects already gone. `eps` are detached
 *  explicitly; `dying` are left to die with the netns (taken out of service first: bridge.quiesce). */
function destroySandbox(h: Host, c: ContainerRecord, eps: EndpointRecord[], keepDir = false, dying: EndpointRecord[] = []): void {
  for (const ep of eps) {
    try { bridge.detach(h, ep); } catch { /* reconcile will retry */ }
  }
  if (c.netns) {
    if (dying.length) {
      try { bridge.quiesce(h, dying); } catch { /* reconcile and sweepDyingLinks finish */ }
    }
    try { deleteNetns(c.netns); } catch { /* reconcile will retry */ }
  }
  if (!keepDir) fs.rmSync(h.containerDir(c.id), { recursive: true, force: true });
}

/** Recreates a lost sandbox (after a reboot-like loss) from the remembered attachments: dynamic addresses are
 *  allocated anew, static ones must still be free. */
function rebuildSandbox(h: Host, c: ContainerRecord): void {
  const saved = h.store.savedEndpoints(c.id);
  const nets = networksById(h);
  const planned: Array<[EndpointRecord, NetworkRecord]> = [];
  if (netnsExists(c.netns)) deleteNetns(c.netns); // left by an interrupted earlier attempt
  h.store.tx(() => {
    for (const s of saved) {
      const net = nets.get(s.networkId);
      if (!net) continue; // the network was removed meanwhile
      // Pending until the kernel side exists: a crash in between is rolled back (the attachments stay saved).
      const ep = planEndpoint(h, c, net, s.ifname, s.ip ?? undefined, s.aliases);
      h.store.insertEndpoint(ep, true);
      if (!ep.staticIp) h.store.setLastIp(net.id, ep.ip);
      planned.push([ep, net]);
    }
  });
  try {
    buildSandbox(h, c, planned);
    h.store.tx(() => {
      h.store.commitContainer(c.id);
      h.store.setSavedEndpoints(c.id, []);
    });
  } catch (e) {
    destroySandbox(h, c, planned.map(([ep]) => ep), true);
    h.store.tx(() => {
      for (const [ep] of planned) h.store.deleteEndpoint(c.id, ep.networkId);
    });
    throw e;
  }
  refreshEtc(h, c, planned.map(([ep]) => ep), nets); // the addresses may have changed
  if (c.ports.length) applyFirewall(h);
  notifyDnsContainer(h, c.id);
}

/** Docker-shaped view of a container, its state brought up to date; SandboxKey is the netns it really lives in
 *  (the target's, for --network container:NAME). */
export function inspectContainer(h: Host, c0: ContainerRecord): Record<string, unknown> {
  const c = refreshState(h, c0);
  const owner = netnsOwner(h, c);
  // Attached through CNI: where from (the runtime's container id, its netns as SandboxKey).
  return cniInspect(h, c.id, containerView(c, h.store.endpointsOf(c.id), networksById(h), owner?.netns ?? ''));
}

/** How to start a process in this container. Also what must hold before any process runs there: the netns
 *  owner is marked used (so that rm looks for processes left inside), its /etc files exist, and the resolver
 *  has applied every change made so far (a name just created resolves from the first instruction). */
export function launchSpec(h: Host, c: ContainerRecord, command: string[]): LaunchSpec {
  if (c.mode === 'host') return { command, netnsFd: h.hostFd, netnsPath: null, etc: null };
  const owner = c.mode === 'container' ? netnsOwner(h, c) : c;
  if (!owner || !owner.netns) throw new UserError(`container ${c.name} has no network namespace to join`, 'refused');
  if (!owner.used) h.store.tx(() => h.store.markUsed(owner.id));
  const etc = etcPaths(h, owner);
  if (!fs.existsSync(etc.hosts)) writeEtc(h, owner, h.store.endpointsOf(owner.id), networksById(h));
  awaitDns(h);
  return { command, netnsFd: null, netnsPath: netnsPath(owner.netns), etc };
}

/** Path of the nsnet launcher, for the detached supervisor's `rm` of --rm containers. */
function nsnetBin(): string {
  return process.env.NSNET_BIN ?? path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../../bin/nsnet');
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
    const env = { ...process.env, NSNET_ROOT: h.root };
    // The supervisor lives in the host netns (it enters the container's with nsenter): host-mode commands run
    // there, and the `rm` of --rm containers acts on the right host.
    const { pid, start } = h.inHost(() => launchDetached({ ...spec, netnsFd: null, env }, logFile(h, c), exitFile(h, c),
      c.autoRemove ? { bin: nsnetBin(), id: c.id } : undefined));
    crashPoint('start:launched');
    const upd = { state: 'running' as const, pid, pidStart: start, started: new Date().toISOString(), exitCode: null, finished: null };
    h.store.tx(() => h.store.updateContainer(c.id, upd));
    c = { ...c, ...upd };
    return c;
  });
}

/** Runs the container's command in the foreground, attached to our stdio; returns its exit code. */
export async function runForeground(h: Host, c: ContainerRecord): Promise<number> {
  const spec = launchSpec(h, c, c.command);
  const code = await launchForeground(spec, (pid) => {
    h.store.tx(() => h.store.updateContainer(c.id, { state: 'running', pid, pidStart: null, started: new Date().toISOString() }));
  });
  h.store.tx(() => h.store.updateContainer(c.id, { state: 'exited', exitCode: code, pid: null, pidStart: null, finished: new Date().toISOString() }));
  return code;
}

/** Runs a command inside a running (or created) container; foreground, returns the exit code. */
export async function execIn(h: Host, ref: string, command: string[]): Promise<number> {
  const c = resolveContainer(h, ref);
  if (!command.length) throw new UserError('no command given: nsnet exec CONTAINER -- COMMAND [ARG...]', 'invalid');
  if (!findExecutable(command[0])) throw new UserError(`exec: "${command[0]}": executable file not found in $PATH`, 'invalid');
  return launchForeground(launchSpec(h, c, command));
}

/** exec with captured output (library use and tests). */
export function execCaptured(h: Host, ref: string, command: string[]): { status: number; stdout: string; stderr: string } {
  return runCaptured(launchSpec(h, resolveContainer(h, ref), command));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Ends the container's processes: SIGTERM to its process group, SIGKILL after `timeoutSec`; then any process
 *  still inside its own netns (a daemon that escaped the group) gets SIGKILL too. */
export async function stopContainer(h: Host, ref: string, timeoutSec = 10): Promise<ContainerRecord> {
  const c0 = refreshState(h, resolveContainer(h, ref));
  refuseCni(h, c0, 'stop');
  if (c0.state === 'running' && c0.pid) {
    signal(-c0.pid, timeoutSec <= 0 ? 'SIGKILL' : 'SIGTERM');
    const deadline = Date.now() + timeoutSec * 1000;
    while (isAlive(c0.pid, c0.pidStart) && Date.now() < deadline) await sleep(20);
    if (isAlive(c0.pid, c0.pidStart)) signal(-c0.pid, 'SIGKILL');
    while (isAlive(c0.pid, c0.pidStart)) await sleep(10);
  }
  if (c0.netns && h.store.containerById(c0.id)?.used) killNetnsProcesses(c0.netns);
  const c = refreshState(h, h.store.containerById(c0.id) ?? c0);
  if (c.state === 'running') {
    h.store.tx(() => h.store.updateContainer(c.id, { state: 'exited', pid: null, pidStart: null, exitCode: 137, finished: new Date().toISOString() }));
  }
  return h.store.containerById(c.id) ?? c;
}

/** Removes a container and everything it made. Running containers need force (they are killed first). */
export async function removeContainer(h: Host, ref: string, force = false): Promise<ContainerRecord> {
  let c = refreshState(h, resolveContainer(h, ref));
  refuseCni(h, c, 'remove');
  const users = h.store.dependents(c.id).filter((d) => refreshState(h, d).state === 'running');
  if (users.length) throw new UserError(`container ${c.name} is in use by ${users.map((d) => d.name).join(', ')} (--network container:${c.name}): remove them first`, 'refused');
  if (c.state === 'running') {
    if (!force) throw new UserError(`You cannot remove a running container ${c.name}. Stop the container before attempting removal or force remove`, 'refused');
    c = await stopContainer(h, c.id, 0);
  }
  return h.lock.with(() => {
    recoverIfNeeded(h);
    const deps = h.store.dependents(c.id).filter((d) => refreshState(h, d).state === 'running');
    if (deps.length) throw new UserError(`container ${c.name} is in use by ${deps.map((d) => d.name).join(', ')} (--network container:${c.name}): remove them first`, 'refused');
    const eps = h.store.endpointsOf(c.id);
    const ports = containerPorts(h, c);
    let used = true;
    const ids: number[] = [];
    h.store.tx(() => {
      used = h.store.containerById(c.id)?.used ?? true; // read where the row goes: an exec may have begun since
      // With its own netns, the container's veths die with it: the kernel removes both ends once the netns is
      // gone (≈30 ms per veth when asked one by one, nothing for us to wait for this way). Their rows stay as
      // 'veth' garbage until then (sweepDyingLinks).
      for (const ep of eps) {
        if (c.netns) h.store.addGarbage('veth', ep.hostIf);
        else ids.push(h.store.addGarbage('link', ep.hostIf));
      }
      if (c.netns) ids.push(h.store.addGarbage('netns', c.netns));
      ids.push(h.store.addGarbage('dir', c.id));
      h.store.deleteContainer(c.id);
    });
    crashPoint('rm:persisted');
    if (ports.length) applyPortDelta(h, [], ports);
    crashPoint('rm:firewall');
    if (c.netns && used) killNetnsProcesses(c.netns);
    destroySandbox(h, c, c.netns ? [] : eps, false, eps);
    crashPoint('rm:sandbox');
    h.store.tx(() => h.store.dropGarbage(ids));
    // A container that never ran a process: nothing inside it waits for its name to disappear.
    if (eps.some((e) => !networksById(h).get(e.networkId)?.isDefault)) notifyDnsContainer(h, c.id, used ? 'wait' : 'signal');
    return c;
  });
}

export interface ConnectOptions {
  ip?: string;
  aliases?: string[];
}

/** Adds an interface on another network to a container (multi-homing). */
export function connect(h: Host, netRef: string, ctrRef: string, o: ConnectOptions = {}): EndpointRecord {
  for (const a of o.aliases ?? []) validateAlias(a);
  return h.lock.with(() => {
    recoverIfNeeded(h);
    if (netRef === 'host' || netRef === 'none') throw new UserError(`container cannot be connected to the ${netRef} network`, 'refused');
    const found = h.store.findNetwork(netRef);
    if (!found && netRef !== DEFAULT_NETWORK) throw new UserError(`network ${netRef} not found`, 'notfound');
    const onDefault = found ? found.isDefault : true;
    if (o.ip !== undefined && onDefault) throw new UserError('user specified IP address is supported on user defined networks only', 'invalid');
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
      const e = planEndpoint(h, c, net, `eth${n}`, o.ip, o.aliases ?? []);
      h.store.insertEndpoint(e, true);
      if (!e.staticIp) h.store.setLastIp(net.id, e.ip);
      return e;
    });
    crashPoint('connect:persisted');
    const fd = openNetns(c.netns);
    let cnl: Netlink | null = null;
    try {
      cnl = Netlink.openIn(fd);
      const hasDefault = cnl.routes(4).some((r) => r.prefixLen === 0);
      bridge.attach(h, net, ep, { nsFd: fd, cnl, defaultRoute: !hasDefault });
      crashPoint('connect:attached');
      h.store.tx(() => h.store.commitEndpoint(c.id, net.id));
    } catch (e) {
      try { bridge.detach(h, ep); } catch { /* reconcile */ }
      h.store.tx(() => h.store.deleteEndpoint(c.id, net.id));
      throw e;
    } finally {
      cnl?.close();
      closeFd(fd);
    }
    refreshEtc(h, c, h.store.endpointsOf(c.id), networksById(h));
    if (c.ports.length) applyFirewall(h);
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
    });
    crashPoint('disconnect:persisted');
    bridge.detach(h, ep);
    crashPoint('disconnect:detached');
    h.store.tx(() => h.store.dropGarbage([gid]));
    const rest = h.store.endpointsOf(c.id);
    if (rest.length && c.netns) {
      // If the default route went with that interface, route through the next network's gateway.
      const fd = openNetns(c.netns);
      const cnl = Netlink.openIn(fd);
      try {
        if (!cnl.routes(4).some((r) => r.prefixLen === 0)) {
          const next = h.store.networkById(rest[0].networkId);
          if (next) cnl.addRoute({ dst: '0.0.0.0', prefixLen: 0, gateway: next.gateway });
        }
      } finally {
        cnl.close();
        closeFd(fd);
      }
    }
    refreshEtc(h, c, rest, networksById(h));
    if (c.ports.length) applyFirewall(h);
    if (!net.isDefault) notifyDnsContainer(h, c.id);
  });
}

export { HEX as newId, logFile, refreshState };
