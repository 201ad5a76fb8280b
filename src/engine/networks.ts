// Network use cases: create, remove, prune, list. Each mutation: validate and plan (pure), persist as pending,
// apply to the kernel, commit; on failure the kernel work is undone and the pending row removed.
import crypto from 'node:crypto';
import { setupNetwork, teardownNetwork } from './drivers.js';
import { DEFAULT_DRIVER, driverNames, driverOf, hasDriver } from '../drivers/registry.js';
import { VNI_OPTION } from '../drivers/overlay.js';
import { agentCall, clusterScoped, requireCluster } from './cluster.js';
import type { NetworkRecord as ClusterNetwork } from '../cluster/values.js';
import { DEFAULT_BRIDGE_SUBNET, pickSubnet, planDualIpam, planNetworkIpam } from '../ipam/ipam.js';
import type { NetworkRecord } from '../types.js';
import { UserError } from '../util/errors.js';
import { isIPv4, ulaPrefixFromId, type Prefix } from '../util/addr.js';
import { validateIfName, validateLabel, validateMtu, validateNetworkName } from '../util/validate.js';
import { applyFirewall, assertSoleNsnet } from './firewall.js';
import type { Host } from './host.js';
import { hostRouteCidrs } from './hostinfo.js';
import { crashPoint } from './faults.js';
import { notifyDns } from './dnsctl.js';
import { recoverIfNeeded } from './reconcile.js';
import { storeLost } from './storeguard.js';
import { ensureSpace, undoOrReport } from './statedir.js';
import { refreshState } from './state.js';
import { releaseSandbox } from './containers.js';
import { ownedBy } from './marks.js';
import { removeNetworkCopy, writeNetworkCopy } from './netcopy.js';
import { networkRemoved } from './partitions.js';

export const DEFAULT_NETWORK = 'bridge';
export const DEFAULT_BRIDGE_IF = 'nsnet0';
export const PSEUDO_NETWORKS = ['host', 'none'] as const;

export interface NetworkCreateOptions {
  name: string;
  driver?: string;
  subnet?: string;
  gateway?: string;
  ipRange?: string;
  internal?: boolean;
  /** --ipv6: the network also gets an IPv6 subnet (a /64 of the host's ULA /48 unless one is given). */
  ipv6?: boolean;
  /** --ipv4=false (Docker 28): no IPv4 subnet (needs ipv6). Default true. */
  ipv4?: boolean;
  /** Repeated --subnet / --gateway / --ip-range: at most one of each per family (with subnet/gateway/ipRange). */
  subnets?: string[];
  gateways?: string[];
  ipRanges?: string[];
  labels?: Record<string, string>;
  /** --opt key=value: bridge.name, mtu, icc (also Docker's com.docker.network.* spellings). */
  options?: Record<string, string>;
}

const OPT_ALIASES: Record<string, string> = {
  'com.docker.network.bridge.name': 'bridge.name',
  'com.docker.network.driver.mtu': 'mtu',
  'com.docker.network.bridge.enable_icc': 'icc',
  'com.docker.network.bridge.enable_ip_masquerade': 'masquerade',
  'com.docker.network.bridge.host_binding_ipv4': 'host_binding_ipv4',
  'com.docker.network.bridge.gateway_mode_ipv6': 'gateway_mode_ipv6',
};
/** Options with an effect here (stored under these short keys); any other key is kept as given, as Docker
 *  keeps unknown driver options (shown by inspect, no effect). */
export const KNOWN_OPTS = ['bridge.name', 'mtu', 'icc', 'masquerade', 'host_binding_ipv4', 'gateway_mode_ipv6'];

/** Internal option: the subnet was chosen by nsnet (networks made before this key existed count as configured). */
export const AUTO_SUBNET = 'nsnet.auto_subnet';
/** The same for the IPv6 subnet (--ipv6 without an IPv6 --subnet): --ip6 is refused there, as Docker does. */
export const AUTO_SUBNET6 = 'nsnet.auto_subnet6';

/** Docker's gateway_mode_ipv6 of a network with IPv6: 'nat' (default, NAT66 masquerade) or 'routed'. */
export function gatewayMode6(n: NetworkRecord): 'nat' | 'routed' {
  return n.options.gateway_mode_ipv6 === 'routed' ? 'routed' : 'nat';
}

/** The host's ULA /48 (fdXX:XXXX:XXXX::/48), derived from the store's engine id (made once, kept in meta). */
export function ulaBase(h: Host): Prefix {
  return ulaPrefixFromId(h.store.engineId());
}

/** Docker's option keys for the short ones nsnet stores. */
export const DOCKER_OPT_NAMES: Record<string, string> = Object.fromEntries(Object.entries(OPT_ALIASES).map(([k, v]) => [v, k]));

/** Whether containers of the network reach outside through the host's address (Docker's enable_ip_masquerade). */
export function networkMasquerades(n: NetworkRecord): boolean {
  return n.options.masquerade === undefined || /^(true|1|yes)$/i.test(n.options.masquerade);
}

/** The host address ports published on this network bind to when -p names none (host_binding_ipv4). */
export function networkHostBinding(n: NetworkRecord): string {
  const b = n.options.host_binding_ipv4;
  return b === undefined || b === '0.0.0.0' ? '' : b;
}

function newId(): string {
  return crypto.randomBytes(32).toString('hex');
}

/** The default network's id is fixed per host (state directory), so that `network ls` can show "bridge" with
 *  its id before the network is first used and created in the kernel, and the id stays the same after. */
export function defaultNetworkId(h: Host): string {
  return crypto.createHash('sha256').update(`nsnet-default-bridge/${h.hostId}`).digest('hex');
}

/** The default network as it is, or as it will be when first used (nothing is created). */
export function defaultNetworkPreview(h: Host): NetworkRecord {
  const n = h.store.findNetwork(DEFAULT_NETWORK);
  if (n) return n;
  try {
    return { ...planNetwork(h, { name: DEFAULT_NETWORK }, true), created: '' };
  } catch {
    // Its creation would fail right now (e.g. the subnet is taken): still shown, as it is configured.
    return {
      id: defaultNetworkId(h), name: DEFAULT_NETWORK, driver: DEFAULT_DRIVER, bridge: DEFAULT_BRIDGE_IF, subnet: DEFAULT_BRIDGE_SUBNET,
      gateway: '172.17.0.1', ipRange: null, enableIPv6: false, subnet6: null, gateway6: null, ipRange6: null,
      internal: false, icc: true, mtu: 1500, isDefault: true, labels: {}, options: {}, created: '',
    };
  }
}

function parseBool(key: string, v: string): boolean {
  if (/^(true|1|yes)$/i.test(v)) return true;
  if (/^(false|0|no)$/i.test(v)) return false;
  throw new UserError(`invalid value for option ${key}: ${JSON.stringify(v)} (expected true or false)`, 'invalid');
}

/** Pure part of network create: validates everything and returns the record to store. */
export function planNetwork(h: Host, o: NetworkCreateOptions, isDefault = false): NetworkRecord {
  if (!isDefault) {
    validateNetworkName(o.name);
    if ((PSEUDO_NETWORKS as readonly string[]).includes(o.name) || o.name === DEFAULT_NETWORK) {
      throw new UserError(`network name ${o.name} is reserved (a predefined network)`, 'invalid');
    }
  }
  const driver = o.driver ?? DEFAULT_DRIVER;
  if (!hasDriver(driver)) throw new UserError(`unsupported network driver ${JSON.stringify(driver)}: available: ${driverNames().map((d) => JSON.stringify(d)).join(', ')}`, 'invalid');
  if (h.store.findNetwork(o.name) || h.store.allNetworksIncludingPending().some((n) => n.name === o.name)) {
    throw new UserError(`network with name ${o.name} already exists`, 'conflict');
  }
  const opts: Record<string, string> = {};
  for (const [k0, v] of Object.entries(o.options ?? {})) {
    const k = OPT_ALIASES[k0] ?? k0;
    if (!KNOWN_OPTS.includes(k)) {
      // Kept as given, as Docker does; a key that could not be shown back is still refused.
      if (!/^[\x21-\x7e]{1,255}$/.test(k0) || /[\x00-\x1f\x7f]/.test(v)) throw new UserError(`invalid network option ${JSON.stringify(k0)}`, 'invalid');
      opts[k0] = v;
      continue;
    }
    opts[k] = v;
  }
  if (opts.masquerade !== undefined) opts.masquerade = String(parseBool('com.docker.network.bridge.enable_ip_masquerade', opts.masquerade));
  if (opts.host_binding_ipv4 !== undefined && !isIPv4(opts.host_binding_ipv4)) {
    throw new UserError(`invalid value for com.docker.network.bridge.host_binding_ipv4: ${JSON.stringify(opts.host_binding_ipv4)} (expected an IPv4 address)`, 'invalid');
  }
  if (opts.gateway_mode_ipv6 !== undefined && !['nat', 'routed'].includes(opts.gateway_mode_ipv6)) {
    throw new UserError(`invalid value for com.docker.network.bridge.gateway_mode_ipv6: ${JSON.stringify(opts.gateway_mode_ipv6)} (expected nat or routed)`, 'invalid');
  }
  for (const [k, v] of Object.entries(o.labels ?? {})) validateLabel(`${k}=${v}`);
  const mtu = opts.mtu !== undefined ? Number(opts.mtu) : 1500;
  if (opts.mtu !== undefined) validateMtu(opts.mtu);
  const icc = opts.icc !== undefined ? parseBool('icc', opts.icc) : true;
  const id = isDefault ? defaultNetworkId(h) : newId();
  const existing = h.store.allNetworksIncludingPending();
  let bridgeName = opts['bridge.name'] ?? (isDefault ? DEFAULT_BRIDGE_IF : `nsbr-${id.slice(0, 10)}`);
  validateIfName(bridgeName);
  if (existing.some((n) => n.bridge === bridgeName)) throw new UserError(`bridge name ${bridgeName} is already used by another network`, 'conflict');
  const link = h.nl.linkByName(bridgeName);
  if (link && !ownedBy(link.alias, h.owner)) throw new UserError(`interface ${bridgeName} already exists on the host`, 'conflict');
  // A bridge of a lost store's network: adopting it would hand out addresses its unknown containers hold.
  if (link && storeLost(h)) throw new UserError(`interface ${bridgeName} belongs to a network the lost store described: ${storeLost(h)}`, 'refused');
  for (const [what, v] of [['subnet', o.subnet], ['gateway', o.gateway], ['ip-range', o.ipRange]] as const) {
    if (v !== undefined && v.trim() === '') throw new UserError(`invalid ${what} "": must not be empty`, 'invalid');
  }
  if (!isDefault && bridgeName === DEFAULT_BRIDGE_IF) throw new UserError(`bridge name ${DEFAULT_BRIDGE_IF} is reserved for the default network`, 'invalid');
  const taken = [...existing.flatMap((n) => [n.subnet, n.subnet6 ?? '']), ...hostRouteCidrs(h, existing.map((n) => n.bridge))];
  const list = (one: string | undefined, many: string[] | undefined) => [...(one !== undefined ? [one] : []), ...(many ?? [])];
  const subnets = list(o.subnet, o.subnets), gateways = list(o.gateway, o.gateways), ranges = list(o.ipRange, o.ipRanges);
  for (const v of [...subnets, ...gateways, ...ranges]) if (v.trim() === '') throw new UserError('invalid subnet, gateway or ip-range "": must not be empty', 'invalid');
  const dual = !isDefault && (o.ipv6 === true || o.ipv4 === false || subnets.length > 1 || gateways.length > 1 || ranges.length > 1
    || [...subnets, ...gateways, ...ranges].some((v) => v.includes(':')));
  if (opts.gateway_mode_ipv6 !== undefined && !o.ipv6) throw new UserError('option com.docker.network.bridge.gateway_mode_ipv6 needs --ipv6', 'invalid');
  let ipam: { subnet: string; gateway: string; ipRange: string | null } | null;
  let ipam6: { subnet: string; gateway: string; ipRange: string | null } | null = null;
  if (isDefault) {
    ipam = planNetworkIpam({ subnet: o.subnet ?? DEFAULT_BRIDGE_SUBNET, gateway: o.gateway }, taken);
  } else if (dual) {
    const plan = planDualIpam({ ipv4: o.ipv4, ipv6: o.ipv6, subnets, gateways, ipRanges: ranges }, taken, ulaBase(h));
    ipam = plan.ipv4;
    ipam6 = plan.ipv6;
    // Remembered (not shown by inspect): Docker refuses --ip/--ip6 on a network whose subnet of that family it chose.
    if (plan.pickedIPv4) opts[AUTO_SUBNET] = 'true';
    if (plan.pickedIPv6) opts[AUTO_SUBNET6] = 'true';
  } else if (subnets.length || gateways.length || ranges.length) {
    ipam = planNetworkIpam({ subnet: subnets[0], gateway: gateways[0], ipRange: ranges[0] }, taken);
  } else {
    ipam = planNetworkIpam({ subnet: pickSubnet(taken) }, taken);
    // Remembered (not shown by inspect): Docker refuses --ip on a network whose subnet it chose.
    opts[AUTO_SUBNET] = 'true';
  }
  if (ipam6 && !h.kernel.ipv6Available()) throw new UserError('IPv6 is not available in this kernel (booted with ipv6.disable=1?): a network with --ipv6 cannot be made', 'refused');
  if (ipam6 && opts.host_binding_ipv4 !== undefined && !ipam) throw new UserError('option com.docker.network.bridge.host_binding_ipv4 needs IPv4 (the network is IPv6-only)', 'invalid');
  bridgeName = bridgeName.trim();
  return {
    id, name: o.name, driver, bridge: bridgeName, subnet: ipam?.subnet ?? '', gateway: ipam?.gateway ?? '',
    ipRange: ipam?.ipRange ?? null, enableIPv6: !!ipam6, subnet6: ipam6?.subnet ?? null, gateway6: ipam6?.gateway ?? null,
    ipRange6: ipam6?.ipRange ?? null, internal: !!o.internal, icc, mtu, isDefault,
    labels: { ...(o.labels ?? {}) }, options: opts, created: new Date().toISOString(),
  };
}

export function createNetwork(h: Host, o: NetworkCreateOptions, isDefault = false): NetworkRecord {
  const driver = o.driver ?? DEFAULT_DRIVER;
  if (!isDefault && hasDriver(driver) && driverOf(driver).scope === 'cluster') return createClusterNetwork(h, o, driver);
  return persistNetwork(h, () => planNetwork(h, o, isDefault));
}

/** The transaction every network is made by: plan (under the host lock), persist as pending, the driver's kernel
 *  objects, commit, firewall, resolver; on failure the kernel work is undone and the pending row removed. */
function persistNetwork(h: Host, plan: () => NetworkRecord): NetworkRecord {
  return h.lock.with(() => {
    ensureSpace(h.root, h.env);
    // Before anything is written: a second nsnet on this host netns would take over the other's table and
    // bridge nsnet0 (one link dump and one `list set`, only when a network is made).
    assertSoleNsnet(h);
    recoverIfNeeded(h);
    const n = h.store.tx(() => {
      const rec = plan();
      h.store.insertNetwork(rec, true);
      return rec;
    });
    crashPoint('network-create:persisted');
    try {
      writeNetworkCopy(h, n);
      setupNetwork(h, n);
      crashPoint('network-create:bridge');
      h.store.tx(() => h.store.commitNetwork(n.id));
      applyFirewall(h);
      crashPoint('network-create:firewall');
      if (!n.isDefault) notifyDns(h);
    } catch (e) {
      try { teardownNetwork(h, n); } catch { /* best effort */ }
      try { removeNetworkCopy(h, n.id); } catch { /* best effort: a copy without its bridge is never read */ }
      undoOrReport(e, `network ${n.name}`, () => {
        h.store.tx(() => h.store.deleteNetwork(n.id));
        try { applyFirewall(h); } catch { /* best effort */ }
      });
    }
    return n;
  });
}

// ---------------------------------------------------------------------------------------------- cluster networks

/** Overlay networks' MTU: a 1500-byte underlay minus VXLAN's 50 bytes of headers (docs/kernel-notes.md §17). */
export const OVERLAY_MTU = 1450;

/** A network of a cluster-scoped driver (overlay): defined in the cluster (name unique there, VNI, subnet: the
 *  cluster agent's compare-and-swap in etcd), then made on this host as on every other (adoptClusterNetwork). */
function createClusterNetwork(h: Host, o: NetworkCreateOptions, driver: string): NetworkRecord {
  requireCluster(h, `network driver ${JSON.stringify(driver)}`);
  validateNetworkName(o.name);
  if ((PSEUDO_NETWORKS as readonly string[]).includes(o.name) || o.name === DEFAULT_NETWORK) throw new UserError(`network name ${o.name} is reserved (a predefined network)`, 'invalid');
  if (h.store.networks().some((n) => n.name === o.name)) throw new UserError(`network with name ${o.name} already exists`, 'conflict');
  for (const k of Object.keys(o.options ?? {})) throw new UserError(`option ${k} is not supported on ${driver} networks`, 'invalid');
  if (o.ipRange !== undefined || o.ipRanges?.length) throw new UserError(`--ip-range is not supported on ${driver} networks`, 'invalid');
  if (o.ipv4 === false) throw new UserError(`${driver} networks have IPv4 (--ipv4=false is not supported)`, 'invalid');
  for (const [k, v] of Object.entries(o.labels ?? {})) validateLabel(`${k}=${v}`);
  const subnets = [...(o.subnet !== undefined ? [o.subnet] : []), ...(o.subnets ?? [])];
  const gateways = [...(o.gateway !== undefined ? [o.gateway] : []), ...(o.gateways ?? [])];
  const v6 = (x: string) => x.includes(':');
  if (subnets.filter(v6).length > 1 || subnets.filter((x) => !v6(x)).length > 1) throw new UserError('at most one subnet per family', 'invalid');
  if (subnets.some(v6) && !o.ipv6) throw new UserError('an IPv6 subnet needs --ipv6', 'invalid');
  const existing = h.store.allNetworksIncludingPending();
  const avoid = [...existing.flatMap((n) => [n.subnet, n.subnet6 ?? '']), ...hostRouteCidrs(h, existing.map((n) => n.bridge))].filter(Boolean);
  const def = agentCall<ClusterNetwork>(h, 'createNetwork', {
    name: o.name, subnet: subnets.find((x) => !v6(x)) ?? null, gateway: gateways.find((x) => !v6(x)) ?? null,
    ipv6: !!o.ipv6, subnet6: subnets.find(v6) ?? null, gateway6: gateways.find(v6) ?? null,
    internal: !!o.internal, labels: o.labels ?? {}, avoid,
  });
  try {
    return adoptClusterNetwork(h, def);
  } catch (e) {
    try { agentCall(h, 'removeNetwork', { name: def.name }); } catch { /* the cluster keeps it: nsnet network rm */ }
    throw e;
  }
}

/** Makes on this host a network the cluster defines (idempotent: the one with that id is returned). A network of
 *  this host with the same name is a conflict, said; nothing is made. */
export function adoptClusterNetwork(h: Host, def: ClusterNetwork): NetworkRecord {
  return h.lock.with(() => {
    const have = h.store.networkById(def.id);
    if (have) return have;
    if (h.store.allNetworksIncludingPending().some((n) => n.name === def.name)) {
      throw new UserError(`the cluster's network ${def.name} has the name of a network of this host: rename or remove this host's`, 'conflict');
    }
    return persistNetwork(h, () => ({
      id: def.id, name: def.name, driver: def.driver, bridge: `nsov-${def.id.slice(0, 10)}`, subnet: def.subnet, gateway: def.gateway,
      ipRange: null, enableIPv6: !!def.subnet6, subnet6: def.subnet6, gateway6: def.gateway6, ipRange6: null,
      internal: def.internal, icc: true, mtu: OVERLAY_MTU, isDefault: false, labels: { ...def.labels },
      options: { [VNI_OPTION]: String(def.vni) }, created: new Date(def.created).toISOString(),
    }));
  });
}

/** A cluster network that the cluster no longer has: removed here unless a container of this host still holds
 *  it (then false: it stays until those are gone). */
export function dropClusterNetwork(h: Host, n: NetworkRecord): boolean {
  return h.lock.with(() => {
    if (h.store.endpointsOn(n.id).length) return false;
    removeLocal(h, n);
    return true;
  });
}

/** The default network "bridge", created on first use. */
export function ensureDefaultNetwork(h: Host): NetworkRecord {
  const n = h.store.findNetwork(DEFAULT_NETWORK);
  if (n) return n;
  return createNetwork(h, { name: DEFAULT_NETWORK }, true);
}

export function resolveNetwork(h: Host, ref: string): NetworkRecord {
  const n = h.store.findNetwork(ref);
  if (!n) {
    if (ref === DEFAULT_NETWORK) return ensureDefaultNetwork(h);
    throw new UserError(`network ${ref} not found`, 'notfound');
  }
  return n;
}

export function removeNetwork(h: Host, ref: string): NetworkRecord {
  return h.lock.with(() => {
    recoverIfNeeded(h);
    if ((PSEUDO_NETWORKS as readonly string[]).includes(ref)) throw new UserError(`${ref} is a pre-defined network and cannot be removed`, 'refused');
    const n = h.store.findNetwork(ref);
    if (!n) throw new UserError(`network ${ref} not found`, 'notfound');
    if (n.isDefault) throw new UserError(`${n.name} is a pre-defined network and cannot be removed`, 'refused');
    const eps = h.store.endpointsOn(n.id);
    // Only running containers hold a network (as Docker's): created and stopped ones let go of their endpoints
    // (start fails later with "network NAME not found").
    const holders = eps.filter((e) => { const c = h.store.containerById(e.containerId); return !c || refreshState(h, c).state === 'running'; });
    if (holders.length) {
      const names = [...new Set(holders.map((e) => e.containerName))].sort().join(', ');
      throw new UserError(`error while removing network: network ${n.name} id ${n.id} has active endpoints (${names})`, 'refused');
    }
    // A cluster's network goes from the cluster first (refused while any host has an endpoint on it); every other
    // host's agent then removes its copy.
    if (clusterScoped(n)) agentCall(h, 'removeNetwork', { name: n.name });
    removeLocal(h, n);
    return n;
  });
}

/** Removes a network from this host: stopped containers let go of it, the store row, the driver's objects (each
 *  recorded as garbage first), the firewall and the resolver. Call with the host lock held. */
function removeLocal(h: Host, n: NetworkRecord): void {
  for (const e of h.store.endpointsOn(n.id)) {
    const c = h.store.containerById(e.containerId);
    if (c) releaseSandbox(h, c);
  }
  const gids: number[] = [];
  const cut = h.store.partitionOf(n.id); // its partition goes with it (ON DELETE CASCADE), its timer below
  h.store.tx(() => {
    for (const l of driverOf(n).networkLinks(n)) gids.push(h.store.addGarbage('link', l));
    h.store.deleteNetwork(n.id);
  });
  crashPoint('network-rm:persisted');
  teardownNetwork(h, n);
  removeNetworkCopy(h, n.id);
  crashPoint('network-rm:bridge');
  h.store.tx(() => h.store.dropGarbage(gids));
  applyFirewall(h);
  networkRemoved(cut);
  notifyDns(h);
}

/** Removes every user-defined network without endpoints. Returns the removed names. */
export function pruneNetworks(h: Host): string[] {
  return h.lock.with(() => {
    const removed: string[] = [];
    for (const n of h.store.networks()) {
      if (n.isDefault || h.store.endpointsOn(n.id).length) continue;
      removeNetwork(h, n.name);
      removed.push(n.name);
    }
    return removed;
  });
}
