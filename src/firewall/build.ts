// PURE: the generator. nsnet's desired state (networks and published ports, FirewallState) -> the typed firewall
// model (model.ts). Every value is validated here first (validate.ts): nft resolves a non-address as a host name,
// a trailing `*` is a wildcard, a `"` ends a string. render.ts turns the model into nft text.
//
// Layout (docs/firewall.md walks through a real example):
//   table inet nsnet
//     set bridges      every nsnet bridge                      (isolation, hairpin, route_localnet guard)
//     set subnets      every nsnet subnet                      (hairpin masquerade)
//     map dnat_addr    host address . proto . port -> container address . port   (-p HOSTIP:PORT:CPORT)
//     map dnat_any     proto . port -> container address . port                  (-p PORT:CPORT)
//     set owner          (empty) its comment names the nsnet (host id, state directory) whose table this is
//     chain guard        prerouting, raw     : drop 127.0.0.0/8 to/from bridges (route_localnet=1 is set there)
//     chain prerouting   prerouting, dstnat  : packets for a host address -> published (never a 127/8 one from outside)
//     chain output       output, dstnat      : the host's own connections (incl. 127.0.0.1) -> published
//     chain published    (regular)           : DNAT through the two maps
//     chain input        input, filter       : the resolver on a gateway answers only its bridge; internal networks
//                                            reach nothing of the host but DNS on their own gateway
//     chain forward      forward, filter     : internal, icc, isolation, no direct access from outside
//     chain postrouting  postrouting, srcnat : masquerade outbound, hairpin, 127.0.0.1 sources
//     set part_<net>_<g>  (partitions) the addresses of group g of a partitioned network
//   table bridge nsnet   (only when a network has icc=false or a partition)
//     set part_<net>_<g>  (partitions) the host-side veths of group g of a partitioned network
//     chain forward      bridge forward      : ARP, then partitions (frames between groups), then icc=false
//
// Family-neutral where it costs nothing: a network has subnets[] and gateways[] (at most one per family), address
// matches carry the family of the address they compare, and the per-family rules are generated per subnet.
// While some network has IPv6 the table also has set subnets6, maps dnat_any6/dnat_addr6 (and set routed6 for
// gateway_mode_ipv6=routed), their DNAT rules in `published`, `ip6 daddr ::1 return` in `output` and the IPv6
// hairpin masquerade (docs/firewall.md "IPv6"); without one the ruleset is exactly the IPv4 one.
import type { FirewallState, PartitionMember, PartitionState } from '../types.js';
import {
  BRIDGE_FILTER, LOOPBACK, NAMES, PRIORITY, addrType, familyOf, partitionSetName,
  type Chain, type Family, type FirewallModel, type IpAddr, type L4Proto, type MapKeyPart, type Match, type ModelNetwork, type NamedSet,
  type NetRef, type Prefix, type Rule, type SetElement, type Table,
} from './model.js';
import {
  FirewallInputError, checkBool, checkCidr, checkCidr6, checkId, checkIfname, checkIpv4, checkIpv6, checkName, checkPort, checkProto,
  cidrContains, cidrsOverlap, parseIpv4, shortName, type Cidr,
} from './validate.js';
import { Addr, type Prefix as AddrPrefix } from '../util/addr.js';

type NetIn = FirewallState['networks'][number];
type PortIn = FirewallState['ports'][number];

interface Net extends ModelNetwork {
  /** The IPv4 subnet parsed (null: IPv6-only) and the IPv6 one (null: IPv4 only). */
  cidr: Cidr | null;
  cidr6: AddrPrefix | null;
}

/** One map element: a single host port (ranges are expanded, port i of the host range -> port i of the container range). */
export interface PortElem {
  /** '' = every host address (dnat_any), otherwise the host address (dnat_addr). */
  hostIp: string;
  proto: L4Proto;
  hostPort: number;
  containerIp: string;
  containerPort: number;
  containerId: string;
  networkId: string;
  /** The host address as a number (0 for every address, and for IPv6 ones: their text breaks ties): the sort key,
   *  parsed once. */
  hostNum: number;
  /** IPv6 of a network in routed mode (gateway_mode_ipv6=routed): no DNAT, the container port is opened at the
   *  container's own address (an element of `routed6`, keyed by container address . proto . container port). */
  routed?: boolean;
}

/** Who owns nsnet's tables: the host id (the `nsnet/<id>` alias of its links) and its state directory. */
export interface FirewallOwner {
  id: string;
  root: string;
}

const MAX_OWNER_COMMENT = 128;

/** The comment of `set owner`: `nsnet/<id> <state directory>`. A directory that cannot be written into an nft
 *  comment (quotes, control characters, too long) is shortened or replaced by `?`: the id alone identifies the
 *  owner, the directory is for the person reading the error. */
export function ownerComment(o: FirewallOwner): string {
  checkId(o.id, 'owner id');
  let root = o.root.replace(/[^\x20-\x21\x23-\x7e]/g, '?');
  const room = MAX_OWNER_COMMENT - `nsnet/${o.id} `.length;
  if (root.length > room) root = `...${root.slice(root.length - room + 3)}`;
  return `nsnet/${o.id} ${root}`;
}

// ---------------------------------------------------------------------------------------------- validation

const cmp = (a: string | number, b: string | number): number => (a < b ? -1 : a > b ? 1 : 0);

function checkNetworks(list: unknown): Net[] {
  if (!Array.isArray(list)) throw new FirewallInputError('state.networks must be an array');
  const nets = (list as NetIn[]).map((n, i): Net => {
    const where = `network #${i}${n && typeof n.name === 'string' ? ` (${JSON.stringify(n.name)})` : ''}`;
    if (!n || typeof n !== 'object') throw new FirewallInputError(`${where}: not an object`);
    const subnets: Prefix[] = [];
    const gateways: IpAddr[] = [];
    // IPv4: '' on an IPv6-only network (then an IPv6 subnet is required).
    let cidr: Cidr | null = null;
    if (n.subnet !== '' || n.gateway !== '' || n.subnet6 === undefined) {
      cidr = checkCidr(n.subnet, `${where} subnet`);
      const gw = parseIpv4(checkIpv4(n.gateway, `${where} gateway`))!;
      if (!cidrContains(cidr, gw)) throw new FirewallInputError(`${where}: gateway ${n.gateway} is outside its subnet ${n.subnet}`);
      subnets.push({ family: 'ipv4', addr: n.subnet.slice(0, n.subnet.indexOf('/')), len: cidr.prefix });
      gateways.push({ family: 'ipv4', addr: n.gateway });
    }
    let cidr6: AddrPrefix | null = null;
    if (n.subnet6 !== undefined) {
      cidr6 = checkCidr6(n.subnet6, `${where} subnet6`);
      const g6 = checkIpv6(n.gateway6, `${where} gateway6`);
      if (!cidr6.contains(Addr.parse(g6))) throw new FirewallInputError(`${where}: gateway6 ${g6} is outside its subnet ${n.subnet6}`);
      subnets.push({ family: 'ipv6', addr: cidr6.network.toString(), len: cidr6.bits });
      gateways.push({ family: 'ipv6', addr: g6 });
    } else if (n.gateway6 !== undefined) {
      throw new FirewallInputError(`${where}: gateway6 without subnet6`);
    }
    if (n.gatewayMode6 !== undefined && n.gatewayMode6 !== 'nat' && n.gatewayMode6 !== 'routed') {
      throw new FirewallInputError(`${where} gatewayMode6: ${JSON.stringify(n.gatewayMode6)} is not nat or routed`);
    }
    return {
      id: checkId(n.id, `${where} id`),
      name: checkName(n.name, `${where} name`),
      bridge: checkIfname(n.bridge, `${where} bridge`),
      subnets, gateways, cidr, cidr6,
      internal: checkBool(n.internal, `${where} internal`),
      icc: checkBool(n.icc, `${where} icc`),
      masquerade: n.masquerade === undefined ? true : checkBool(n.masquerade, `${where} masquerade`),
      ...(cidr6 && n.gatewayMode6 === 'routed' ? { routed6: true } : {}),
    };
  });
  nets.sort((a, b) => cmp(a.name, b.name) || cmp(a.id, b.id));
  const text = (n: Net) => n.subnets.map((p) => `${p.addr}/${p.len}`).join(', ');
  for (let i = 0; i < nets.length; i++) {
    for (let j = i + 1; j < nets.length; j++) {
      const a = nets[i], b = nets[j];
      if (a.id === b.id) throw new FirewallInputError(`two networks have the id ${a.id}`);
      if (a.name === b.name) throw new FirewallInputError(`two networks are named ${a.name}`);
      if (a.bridge === b.bridge) throw new FirewallInputError(`networks ${a.name} and ${b.name} use the same bridge ${a.bridge}`);
      if ((a.cidr && b.cidr && cidrsOverlap(a.cidr, b.cidr)) || (a.cidr6 && b.cidr6 && a.cidr6.overlaps(b.cidr6))) {
        throw new FirewallInputError(`networks ${a.name} (${text(a)}) and ${b.name} (${text(b)}) have overlapping subnets`);
      }
    }
  }
  return nets;
}

/** Validates published ports and expands each range into single-port elements, one per family the port is
 *  published in (no host address: each family the container has an address of; a host address: its family);
 *  rejects duplicate keys. `routed6`: networks whose IPv6 is routed (their IPv6 elements open the container port). */
export function expandPorts(list: unknown, what: string, routed6: ReadonlySet<string> = new Set()): PortElem[] {
  if (!Array.isArray(list)) throw new FirewallInputError(`${what} must be an array`);
  const out: PortElem[] = [];
  (list as PortIn[]).forEach((p, i) => {
    const where = `${what} #${i}`;
    if (!p || typeof p !== 'object') throw new FirewallInputError(`${where}: not an object`);
    const hostIp = p.hostIp === '' || p.hostIp === '0.0.0.0' ? ''
      : typeof p.hostIp === 'string' && p.hostIp.includes(':') ? checkIpv6(p.hostIp, `${where} hostIp`) : checkIpv4(p.hostIp, `${where} hostIp`);
    const proto = checkProto(p.proto, `${where} proto`);
    const hp = checkPort(p.hostPort, `${where} hostPort`);
    const hpe = checkPort(p.hostPortEnd, `${where} hostPortEnd`);
    const cp = checkPort(p.containerPort, `${where} containerPort`);
    const cpe = checkPort(p.containerPortEnd, `${where} containerPortEnd`);
    if (hpe < hp) throw new FirewallInputError(`${where}: host port range ${hp}-${hpe} is reversed`);
    if (cpe < cp) throw new FirewallInputError(`${where}: container port range ${cp}-${cpe} is reversed`);
    if (hpe - hp !== cpe - cp) {
      throw new FirewallInputError(`${where}: host range ${hp}-${hpe} and container range ${cp}-${cpe} differ in length`);
    }
    const containerIp = p.containerIp === '' && p.containerIp6 !== undefined ? '' : checkIpv4(p.containerIp, `${where} containerIp`);
    const containerIp6 = p.containerIp6 === undefined ? '' : checkIpv6(p.containerIp6, `${where} containerIp6`);
    const containerId = checkId(p.containerId, `${where} containerId`);
    const networkId = checkId(p.networkId, `${where} networkId`);
    const hostFam = hostIp === '' ? null : familyOf(hostIp);
    if (hostFam === 'ipv4' && !containerIp) throw new FirewallInputError(`${where}: host address ${hostIp} is IPv4 but the container has no IPv4 address`);
    if (hostFam === 'ipv6' && !containerIp6) throw new FirewallInputError(`${where}: host address ${hostIp} is IPv6 but the container has no IPv6 address`);
    const targets: Array<[string, boolean]> = [];
    if (containerIp && hostFam !== 'ipv6') targets.push([containerIp, false]);
    if (containerIp6 && hostFam !== 'ipv4') targets.push([containerIp6, p.routed6 === true || routed6.has(networkId)]);
    for (const [cip, routed] of targets) {
      for (let k = 0; k <= hpe - hp; k++) {
        out.push({
          hostIp, proto, hostPort: hp + k, containerIp: cip, containerPort: cp + k, containerId, networkId,
          hostNum: hostIp && hostFam === 'ipv4' ? parseIpv4(hostIp)! : 0, ...(routed ? { routed: true } : {}),
        });
      }
    }
  });
  const seen = new Map<string, PortElem>();
  const kept: PortElem[] = [];
  for (const e of out) {
    // Routed: the container's own port, opened once however many host ports lead to it.
    const k = e.routed ? `routed|${e.containerIp}|${e.proto}|${e.containerPort}` : `${portFamily(e)}|${e.hostIp}|${e.proto}|${e.hostPort}`;
    const prev = seen.get(k);
    if (prev) {
      if (e.routed) continue;
      throw new FirewallInputError(`${what}: ${e.hostIp || '0.0.0.0'}:${e.hostPort}/${e.proto} is published twice (containers ${prev.containerId} and ${e.containerId})`);
    }
    seen.set(k, e);
    kept.push(e);
  }
  return kept;
}

/** Orders by host port, then protocol, then host address ('' first), then container: stable for any input order. */
export function cmpPortElem(a: PortElem, b: PortElem): number {
  return a.hostPort - b.hostPort || cmp(a.proto, b.proto) || a.hostNum - b.hostNum || cmp(a.hostIp, b.hostIp) || cmp(a.containerId, b.containerId);
}

/** The family of a published port (the family of the container address it leads to). */
export function portFamily(e: PortElem): Family {
  return familyOf(e.containerIp);
}

/** The map a published port lives in. */
export function portMap(e: PortElem): string {
  if (e.routed) return NAMES.sets.routed6;
  const f = portFamily(e);
  return e.hostIp ? NAMES.maps.dnatAddr[f] : NAMES.maps.dnatAny[f];
}

/** A published port as a map element: key `[host address .] proto . port`, value `container address . port`;
 *  routed (IPv6, gateway_mode_ipv6=routed): a set element `container address . proto . container port`. */
export function portElement(e: PortElem, networkName?: string): SetElement {
  const f = portFamily(e);
  const purpose: SetElement['purpose'] = {
    kind: 'published-port',
    container: e.containerId,
    ...(networkName ? { network: { id: e.networkId, name: networkName } } : {}),
    port: { hostIp: e.hostIp, proto: e.proto, hostPort: e.hostPort, containerIp: e.containerIp, containerPort: e.containerPort },
  };
  if (e.routed) {
    return {
      key: [{ t: 'addr', addr: { family: f, addr: e.containerIp } }, { t: 'proto', proto: e.proto }, { t: 'port', port: e.containerPort }],
      comment: `container ${e.containerId.slice(0, 12)}`, purpose,
    };
  }
  return {
    key: [
      ...(e.hostIp ? [{ t: 'addr' as const, addr: { family: familyOf(e.hostIp), addr: e.hostIp } }] : []),
      { t: 'proto', proto: e.proto },
      { t: 'port', port: e.hostPort },
    ],
    value: [{ t: 'addr', addr: { family: f, addr: e.containerIp } }, { t: 'port', port: e.containerPort }],
    comment: `container ${e.containerId.slice(0, 12)}`,
    purpose: {
      kind: 'published-port',
      container: e.containerId,
      ...(networkName ? { network: { id: e.networkId, name: networkName } } : {}),
      port: { hostIp: e.hostIp, proto: e.proto, hostPort: e.hostPort, containerIp: e.containerIp, containerPort: e.containerPort },
    },
  };
}

// ---------------------------------------------------------------------------------------------- small builders

const iif = (name: string, op: '==' | '!=' = '=='): Match => ({ m: 'iifname', op, target: { names: [name] } });
const oif = (name: string, op: '==' | '!=' = '=='): Match => ({ m: 'oifname', op, target: { names: [name] } });
const iifSet = (set: string): Match => ({ m: 'iifname', op: '==', target: { set } });
const oifSet = (set: string): Match => ({ m: 'oifname', op: '==', target: { set } });
const saddr = (target: { prefix: Prefix } | { addr: IpAddr } | { set: string }, family: Family): Match => ({ m: 'saddr', family, op: '==', target });
const daddr = (target: { prefix: Prefix } | { addr: IpAddr } | { set: string }, family: Family): Match => ({ m: 'daddr', family, op: '==', target });
const dns: Match[] = [{ m: 'l4proto', protos: ['tcp', 'udp'] }, { m: 'dport', port: 53 }];
const established: Match = { m: 'ct-state', states: ['established', 'related'] };
const ctDnat: Match = { m: 'ct-status', status: 'dnat' };

// ---------------------------------------------------------------------------------------------- partitions

/** A partition checked against the networks: its network, its groups (members sorted by veth), the rest. */
interface Part {
  net: Net;
  id: string;
  oneway: boolean;
  groups: PartitionMember[][];
  rest: PartitionMember[];
}

function checkMembers(list: unknown, n: Net, where: string, seen: Map<string, string>): PartitionMember[] {
  if (!Array.isArray(list)) throw new FirewallInputError(`${where} must be an array`);
  const out = (list as PartitionMember[]).map((m, i): PartitionMember => {
    const w = `${where} #${i}`;
    if (!m || typeof m !== 'object') throw new FirewallInputError(`${w}: not an object`);
    // An IPv6-only network's members have no IPv4 address ('': the veth sets cut them all the same; the address
    // sets, IPv4, stay empty).
    const ip = !n.cidr && m.ip === '' ? '' : checkIpv4(m.ip, `${w} ip`);
    if (ip && (!n.cidr || !cidrContains(n.cidr, parseIpv4(ip)!))) throw new FirewallInputError(`${w}: address ${ip} is outside network ${n.name} (${n.subnets.map((x) => `${x.addr}/${x.len}`).join(', ')})`);
    const hostIf = checkIfname(m.hostIf, `${w} hostIf`);
    const containerId = checkId(m.containerId, `${w} containerId`);
    for (const k of [`if ${hostIf}`, ...(ip ? [`ip ${ip}`] : []), `container ${containerId}`]) {
      const prev = seen.get(k);
      if (prev) throw new FirewallInputError(`partition of network ${n.name}: ${k} is in ${prev} and in ${w}`);
      seen.set(k, w);
    }
    return { containerId, hostIf, ip };
  });
  return out.sort((a, b) => cmp(a.hostIf, b.hostIf));
}

/** Validates partitions: a known network, at most one partition per network, every member once (by container, veth
 *  and address) with an address inside the network's subnet, --oneway with exactly two groups. Ordered as the
 *  networks are (by name). */
function checkPartitions(list: unknown, byId: Map<string, Net>): Part[] {
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw new FirewallInputError('state.partitions must be an array');
  const out = (list as PartitionState[]).map((p, i): Part => {
    const where = `partition #${i}`;
    if (!p || typeof p !== 'object') throw new FirewallInputError(`${where}: not an object`);
    const net = byId.get(checkId(p.networkId, `${where} networkId`));
    if (!net) throw new FirewallInputError(`${where}: network ${p.networkId} is not in the state`);
    const id = checkId(p.id, `${where} id`);
    const oneway = checkBool(p.oneway, `${where} oneway`);
    if (!Array.isArray(p.groups) || !p.groups.length) throw new FirewallInputError(`${where}: groups must be a non-empty array`);
    if (oneway && p.groups.length !== 2) throw new FirewallInputError(`${where}: a one-way partition has exactly two groups (from, to), not ${p.groups.length}`);
    const seen = new Map<string, string>();
    const groups = p.groups.map((g, k) => checkMembers(g, net, `${where} group ${k + 1}`, seen));
    const rest = checkMembers(p.rest ?? [], net, `${where} rest`, seen);
    return { net, id, oneway, groups, rest };
  });
  out.sort((a, b) => cmp(a.net.name, b.net.name) || cmp(a.net.id, b.net.id));
  for (let i = 1; i < out.length; i++) {
    if (out[i].net.id === out[i - 1].net.id) throw new FirewallInputError(`network ${out[i].net.name} has two partitions`);
  }
  const prefixes = new Map<string, string>();
  for (const n of byId.values()) {
    const k = n.id.slice(0, 12);
    if (out.some((p) => p.net.id === n.id) && prefixes.has(k)) throw new FirewallInputError(`networks ${prefixes.get(k)} and ${n.name} share the id prefix ${k}: partition sets would collide`);
    prefixes.set(k, n.name);
  }
  return out;
}

/** The partitions' sets and rules: bridge-family sets of host-side veths and rules on bridged frames (traffic
 *  within one bridge, with or without br_netfilter), inet sets of addresses and rules on traffic routed from the
 *  bridge back onto it (a published port reached through a host address). */
function partitionParts(parts: Part[]): { inetSets: NamedSet[]; bridgeSets: NamedSet[]; inetRules: Rule[]; bridgeRules: Rule[] } {
  const inetSets: NamedSet[] = [];
  const bridgeSets: NamedSet[] = [];
  const inetRules: Rule[] = [];
  const bridgeRules: Rule[] = [];
  const v4 = 'ipv4' as const;
  for (const p of parts) {
    const n = p.net;
    const network: NetRef = { id: n.id, name: n.name };
    const nm = shortName(n.name);
    const purpose = (group?: number | 'rest' | 'not0') => ({ kind: 'partition' as const, network, partition: { id: p.id, ...(group === undefined ? {} : { group }), oneway: p.oneway } });
    const label = (g: number | 'rest' | 'not0') => (g === 'rest' ? 'the containers not listed' : g === 'not0' ? 'everyone but group 1' : `group ${g + 1}`);
    const ifSet = (g: number | 'rest' | 'not0', ms: PartitionMember[]): string => {
      const name = partitionSetName(n.id, g);
      bridgeSets.push({
        name, key: ['ifname'], comment: `partition of network ${nm}: ${label(g)}, host-side veths`,
        elements: ms.map((m) => ({ key: [{ t: 'ifname', name: m.hostIf }], comment: `container ${m.containerId.slice(0, 12)}`, purpose: { ...purpose(g), container: m.containerId } })),
      });
      return name;
    };
    const ipSet = (g: number | 'rest' | 'not0', ms: PartitionMember[]): string => {
      const name = partitionSetName(n.id, g);
      inetSets.push({
        name, key: [addrType(v4)], comment: `partition of network ${nm}: ${label(g)}, addresses`,
        elements: ms.filter((m) => m.ip).sort((a, b) => parseIpv4(a.ip)! - parseIpv4(b.ip)!).map((m) => ({ key: [{ t: 'addr', addr: { family: v4, addr: m.ip } }], comment: `container ${m.containerId.slice(0, 12)}`, purpose: { ...purpose(g), container: m.containerId } })),
      });
      return name;
    };
    const onBridge: Match[] = [iif(n.bridge), oif(n.bridge)];
    if (p.oneway) {
      const [from, to] = p.groups;
      const fi = ifSet(0, from), ti = ifSet(1, to);
      bridgeRules.push({ match: [iifSet(fi), oifSet(ti)], counter: true, action: { a: 'drop' }, comment: `partition of network ${nm}, one way: group 1 -> group 2 dropped`, purpose: purpose() });
      const ta = ipSet(1, to);
      // Everyone the second group may hear from: the network's containers but the first group. A source address
      // outside it (a container of the first group that changed its address) is dropped too.
      const na = ipSet('not0', [...to, ...p.rest]);
      inetRules.push({
        match: [...onBridge, daddr({ set: ta }, v4), { m: 'saddr', family: v4, op: '!=', target: { set: na } }], counter: true, action: { a: 'drop' },
        comment: `partition of network ${nm}, one way: group 1 -> group 2 dropped (through the host too)`, purpose: purpose(),
      });
      continue;
    }
    p.groups.forEach((g, k) => {
      const s = ifSet(k, g);
      // Both directions, by the veth the frame arrives on and the one it leaves by: a container not in any set (the
      // rest, or one that joined the network since) is cut from this group either way.
      bridgeRules.push({ match: [iifSet(s), { m: 'oifname', op: '!=', target: { set: s } }], counter: true, action: { a: 'drop' }, comment: `partition of network ${nm}: group ${k + 1} reaches no other group`, purpose: purpose(k) });
      bridgeRules.push({ match: [oifSet(s), { m: 'iifname', op: '!=', target: { set: s } }], counter: true, action: { a: 'drop' }, comment: `partition of network ${nm}: no other group reaches group ${k + 1}`, purpose: purpose(k) });
    });
    // Routed back onto the bridge (a published port reached through a host address; bridged traffic too when
    // br_netfilter is on): to a group's address only from that group's addresses, so a changed source address
    // does not escape the cut.
    const all: Array<[number | 'rest', PartitionMember[]]> = [...p.groups.map((g, k): [number, PartitionMember[]] => [k, g]), ['rest', p.rest]];
    for (const [k, ms] of all) {
      if (k === 'rest' && !ms.length) continue;
      const s = ipSet(k, ms);
      inetRules.push({
        match: [...onBridge, daddr({ set: s }, v4), { m: 'saddr', family: v4, op: '!=', target: { set: s } }], counter: true, action: { a: 'drop' },
        comment: `partition of network ${nm}: only its own members reach ${label(k)} (also through the host)`, purpose: purpose(k),
      });
    }
  }
  return { inetSets, bridgeSets, inetRules, bridgeRules };
}

// ---------------------------------------------------------------------------------------------- the model

/**
 * Builds nsnet's whole firewall from its desired state. Deterministic: networks ordered by name, port elements by
 * network name then host port, protocol and host address, whatever the input order. Throws FirewallInputError for
 * anything invalid, for duplicate networks/bridges/overlapping subnets, for a host port published twice, and for
 * a port whose network is not in the state or whose container address is outside that network's subnet. With no
 * networks the model has no tables (nsnet's tables exist exactly when it has networks).
 */
export function buildModel(state: FirewallState, owner?: FirewallOwner): FirewallModel {
  if (!state || typeof state !== 'object') throw new FirewallInputError('state must be an object');
  const nets = checkNetworks(state.networks);
  const elems = expandPorts(state.ports, 'published port', new Set(nets.filter((n) => n.routed6).map((n) => n.id)));
  const byId = new Map(nets.map((n) => [n.id, n]));
  for (const e of elems) {
    const n = byId.get(e.networkId);
    if (!n) throw new FirewallInputError(`published port ${e.hostPort}/${e.proto} of container ${e.containerId}: network ${e.networkId} is not in the state`);
    const inside = portFamily(e) === 'ipv4' ? !!n.cidr && cidrContains(n.cidr, parseIpv4(e.containerIp)!) : !!n.cidr6 && n.cidr6.contains(Addr.parse(e.containerIp));
    if (!inside) {
      throw new FirewallInputError(`published port ${e.hostPort}/${e.proto}: container address ${e.containerIp} is outside network ${n.name} (${n.subnets.map((p) => `${p.addr}/${p.len}`).join(', ')})`);
    }
  }
  const parts = checkPartitions(state.partitions, byId);
  const internal = nets.filter((n) => n.internal);
  const iccOff = nets.filter((n) => !n.icc);
  const networks: ModelNetwork[] = nets.map(({ cidr: _cidr, cidr6: _cidr6, ...n }) => n);
  // IPv6 sets, maps and rules only while some network has IPv6: an IPv4-only ruleset stays exactly what it was.
  const has6 = nets.some((n) => n.cidr6);
  const routed = nets.some((n) => n.routed6);
  const summary = {
    networks: nets.length, internal: internal.length, iccOff: iccOff.length,
    mappings: Array.isArray(state.ports) ? state.ports.length : 0, elements: elems.length,
    ...(parts.length ? { partitions: parts.length } : {}),
  };
  if (!nets.length) return { tables: [], networks, summary };

  const netName = (id: string) => byId.get(id)!.name;
  const netRank = new Map(nets.map((n, i) => [n.id, i])); // nets are sorted by name (then id)
  elems.sort((a, b) => netRank.get(a.networkId)! - netRank.get(b.networkId)! || cmpPortElem(a, b));
  const ref = (n: Net): NetRef => ({ id: n.id, name: n.name });
  const nm = (n: Net) => shortName(n.name);
  const v4 = 'ipv4' as const;
  const v6 = 'ipv6' as const;
  const C = NAMES.chains;
  const bridges = NAMES.sets.bridges;

  // Sets and maps.
  const sets: NamedSet[] = [
    {
      name: bridges, key: ['ifname'], comment: 'the bridge of every nsnet network',
      elements: nets.map((n) => ({ key: [{ t: 'ifname', name: n.bridge }], comment: `network ${nm(n)}`, purpose: { kind: 'isolation', network: ref(n) } })),
    },
    {
      name: NAMES.sets.subnets[v4], key: [addrType(v4)], flags: ['interval'], comment: 'the subnet of every nsnet network',
      elements: nets.flatMap((n) => n.subnets.filter((s) => s.family === v4).map((s): SetElement => ({ key: [{ t: 'prefix', prefix: s }], comment: `network ${nm(n)}`, purpose: { kind: 'hairpin', network: ref(n) } }))),
    },
    {
      name: NAMES.maps.dnatAddr[v4], key: [addrType(v4), 'inet_proto', 'inet_service'], data: [addrType(v4), 'inet_service'],
      comment: 'ports published on one host address: -p HOSTIP:PORT:CPORT',
      elements: elems.filter((e) => e.hostIp && portFamily(e) === v4).map((e) => portElement(e, netName(e.networkId))),
    },
    {
      name: NAMES.maps.dnatAny[v4], key: ['inet_proto', 'inet_service'], data: [addrType(v4), 'inet_service'],
      comment: 'ports published on every host address: -p PORT:CPORT',
      elements: elems.filter((e) => !e.hostIp && portFamily(e) === v4).map((e) => portElement(e, netName(e.networkId))),
    },
  ];
  if (has6) {
    sets.push(
      {
        name: NAMES.sets.subnets[v6], key: [addrType(v6)], flags: ['interval'], comment: 'the IPv6 subnet of every nsnet network with IPv6',
        elements: nets.flatMap((n) => n.subnets.filter((p) => p.family === v6).map((p): SetElement => ({ key: [{ t: 'prefix', prefix: p }], comment: `network ${nm(n)}`, purpose: { kind: 'hairpin', network: ref(n) } }))),
      },
      {
        name: NAMES.maps.dnatAddr[v6], key: [addrType(v6), 'inet_proto', 'inet_service'], data: [addrType(v6), 'inet_service'],
        comment: 'ports published on one host IPv6 address: -p [HOSTIP6]:PORT:CPORT',
        elements: elems.filter((e) => e.hostIp && portFamily(e) === v6 && !e.routed).map((e) => portElement(e, netName(e.networkId))),
      },
      {
        name: NAMES.maps.dnatAny[v6], key: ['inet_proto', 'inet_service'], data: [addrType(v6), 'inet_service'],
        comment: 'ports published on every host IPv6 address: -p PORT:CPORT on a network with IPv6',
        elements: elems.filter((e) => !e.hostIp && portFamily(e) === v6 && !e.routed).map((e) => portElement(e, netName(e.networkId))),
      },
    );
    if (routed) {
      sets.push({
        name: NAMES.sets.routed6, key: [addrType(v6), 'inet_proto', 'inet_service'],
        comment: 'gateway_mode_ipv6=routed: container ports open at the container address (no NAT)',
        elements: elems.filter((e) => e.routed).map((e) => portElement(e, netName(e.networkId))),
      });
    }
  }
  if (owner) sets.push({ name: NAMES.sets.owner, key: ['ifname'], comment: ownerComment(owner), elements: [] });
  const cut = partitionParts(parts);
  sets.push(...cut.inetSets);

  const lo4 = { prefix: LOOPBACK[v4] };
  const chains: Chain[] = [];
  chains.push({
    name: C.guard, base: { type: 'filter', hook: 'prerouting', priority: PRIORITY.raw, policy: 'accept' },
    comment: 'before conntrack and NAT: loopback addresses never come from a bridge',
    rules: [
      { match: [iifSet(bridges), daddr(lo4, v4)], counter: true, action: { a: 'drop' }, comment: 'bridges have route_localnet=1: containers must not reach the host\'s 127.0.0.0/8 services', purpose: { kind: 'loopback-guard' } },
      { match: [iifSet(bridges), saddr(lo4, v4)], counter: true, action: { a: 'drop' }, comment: 'no spoofed loopback sources from containers', purpose: { kind: 'loopback-guard' } },
    ],
  });
  chains.push({
    name: C.prerouting, base: { type: 'nat', hook: 'prerouting', priority: PRIORITY.dstnat, policy: 'accept' },
    rules: [
      // A neighbour that routes 127.0.0.1 to this host (route_localnet on ITS side) would otherwise be DNATed into a
      // container bound to 127.0.0.1 only: the DNAT happens before the kernel's martian check (moby#45610). The
      // host's own connections to 127.0.0.1 never come here (their NAT is done in `output`), so this only ever
      // refuses packets from the network. `return`, not drop: nsnet only declines to DNAT them; what the kernel does
      // next (drop them as martians) is the same as without nsnet.
      { match: [iif('lo', '!='), daddr(lo4, v4)], counter: true, action: { a: 'return' }, comment: 'a port published on 127.0.0.0/8 is for the host itself: never DNAT one arriving from outside', purpose: { kind: 'loopback-no-dnat' } },
      { match: [{ m: 'fib-daddr-local' }], action: { a: 'jump', chain: C.published }, comment: 'published ports: only packets addressed to one of the host\'s own addresses', purpose: { kind: 'published' } },
    ],
  });
  chains.push({
    // `priority -100` spelled as a number: the same value as dstnat, the text nsnet has always written.
    name: C.output, base: { type: 'nat', hook: 'output', priority: { value: -100 }, policy: 'accept' },
    rules: [
      // IPv6 has no route_localnet: a packet from ::1 never leaves the host's loopback, so a DNAT of [::1]:PORT
      // would only black-hole the connection. Not DNATed: the host's connection is refused at once instead.
      ...(has6 ? [{ match: [daddr({ addr: { family: v6, addr: '::1' } }, v6)], action: { a: 'return' as const }, comment: 'IPv6 has no route_localnet: [::1]:PORT is never DNATed (refused at once, not black-holed)', purpose: { kind: 'host-loopback' as const } }] : []),
      { match: [{ m: 'fib-daddr-local' }], action: { a: 'jump', chain: C.published }, comment: 'published ports used from the host itself, 127.0.0.1 included', purpose: { kind: 'published' } },
    ],
  });
  chains.push({
    name: C.published,
    comment: 'kernel DNAT to the container, no userland proxy: a specific host address wins over any',
    rules: [
      { match: [], action: { a: 'dnat-map', family: v4, key: ['daddr', 'l4proto', 'dport'], map: NAMES.maps.dnatAddr[v4] }, comment: '-p HOSTIP:PORT:CPORT', purpose: { kind: 'published' } },
      { match: [], action: { a: 'dnat-map', family: v4, key: ['l4proto', 'dport'], map: NAMES.maps.dnatAny[v4] }, comment: '-p PORT:CPORT, on every host address', purpose: { kind: 'published' } },
      // In an inet table a `dnat ip6` statement only acts on IPv6 packets (and `dnat ip` only on IPv4 ones).
      ...(has6 ? [
        { match: [], action: { a: 'dnat-map' as const, family: v6, key: ['daddr', 'l4proto', 'dport'] as MapKeyPart[], map: NAMES.maps.dnatAddr[v6] }, comment: '-p [HOSTIP6]:PORT:CPORT', purpose: { kind: 'published' as const } },
        { match: [], action: { a: 'dnat-map' as const, family: v6, key: ['l4proto', 'dport'] as MapKeyPart[], map: NAMES.maps.dnatAny[v6] }, comment: '-p PORT:CPORT, on every host IPv6 address', purpose: { kind: 'published' as const } },
      ] : []),
    ],
  });

  const input: Rule[] = [];
  for (const n of nets) {
    // The resolver checks the query's source address, not the interface: a spoofed in-subnet source from the
    // uplink (rp_filter off) would be forwarded upstream. The host's own queries arrive on lo.
    for (const g of n.gateways) {
      input.push({
        match: [daddr({ addr: g }, g.family), ...dns, { m: 'iifname', op: '!=', target: { names: [n.bridge, 'lo'] } }], counter: true, action: { a: 'drop' },
        comment: `network ${nm(n)}: DNS on its gateway only from its own bridge`, purpose: { kind: 'dns-input', network: ref(n) },
      });
    }
  }
  for (const n of internal) {
    const p = { kind: 'internal' as const, network: ref(n) };
    input.push({ match: [iif(n.bridge), established], action: { a: 'accept' }, comment: `network ${nm(n)} is internal: replies to the host's own connections`, purpose: p });
    for (const g of n.gateways) {
      input.push({ match: [iif(n.bridge), daddr({ addr: g }, g.family), ...dns], action: { a: 'accept' }, comment: `network ${nm(n)} is internal: DNS on its own gateway`, purpose: p });
    }
    input.push({ match: [iif(n.bridge)], counter: true, action: { a: 'drop' }, comment: `network ${nm(n)} is internal: nothing else reaches the host`, purpose: p });
  }
  chains.push({
    name: C.input, base: { type: 'filter', hook: 'input', priority: PRIORITY.filter, policy: 'accept' },
    comment: 'traffic for the host itself: the resolver on the gateways, internal networks', rules: input,
  });

  // Partitions first: before `ct state established` accepts (an established connection is cut too) and before
  // the accepts of icc and published ports.
  const forward: Rule[] = [...cut.inetRules];
  for (const n of internal) {
    const p = { kind: 'internal' as const, network: ref(n) };
    forward.push({ match: [iif(n.bridge), oif(n.bridge, '!=')], counter: true, action: { a: 'drop' }, comment: `network ${nm(n)} is internal: nothing leaves its bridge`, purpose: p });
    forward.push({ match: [oif(n.bridge), iif(n.bridge, '!=')], counter: true, action: { a: 'drop' }, comment: `network ${nm(n)} is internal: nothing enters its bridge`, purpose: p });
  }
  forward.push({ match: [established], action: { a: 'accept' }, comment: 'replies and related packets (ICMP errors) of allowed connections', purpose: { kind: 'established' } });
  forward.push({ match: [ctDnat, oifSet(bridges)], action: { a: 'accept' }, comment: 'published ports: DNATed connections may enter any bridge (also hairpin)', purpose: { kind: 'published' } });
  for (const n of nets) {
    const p = { kind: 'icc' as const, network: ref(n), allowed: n.icc };
    if (n.icc) forward.push({ match: [iif(n.bridge), oif(n.bridge)], action: { a: 'accept' }, comment: `network ${nm(n)}: its containers may talk to each other`, purpose: p });
    else forward.push({ match: [iif(n.bridge), oif(n.bridge)], counter: true, action: { a: 'drop' }, comment: `network ${nm(n)} has icc=false: its containers may not talk to each other`, purpose: p });
  }
  forward.push({ match: [iifSet(bridges), oifSet(bridges)], counter: true, action: { a: 'drop' }, comment: 'isolation: no traffic between different nsnet networks', purpose: { kind: 'isolation' } });
  if (routed) {
    forward.push({
      match: [oifSet(bridges), { m: 'lookup', family: v6, key: ['daddr', 'l4proto', 'dport'], set: NAMES.sets.routed6 }], action: { a: 'accept' },
      comment: 'gateway_mode_ipv6=routed: published container ports at the container address, no NAT', purpose: { kind: 'published' },
    });
  }
  forward.push({ match: [oifSet(bridges)], counter: true, action: { a: 'drop' }, comment: 'no direct access to container addresses from outside: only published ports', purpose: { kind: 'no-direct-access' } });
  chains.push({
    name: C.forward, base: { type: 'filter', hook: 'forward', priority: PRIORITY.filter, policy: 'accept' },
    comment: 'routed traffic into, out of and between bridges (and bridged traffic when br_netfilter is on)', rules: forward,
  });

  const post: Rule[] = [];
  for (const n of nets) {
    if (n.internal || n.masquerade === false) continue; // enable_ip_masquerade=false: routed, not masqueraded
    for (const s of n.subnets) {
      if (s.family === v6 && n.routed6) continue; // gateway_mode_ipv6=routed: no NAT66
      post.push({
        match: [saddr({ prefix: s }, s.family), oif(n.bridge, '!=')], action: { a: 'masquerade' },
        comment: `network ${nm(n)}: outbound access, its subnet leaving through anything but its bridge`, purpose: { kind: 'masquerade', network: ref(n) },
      });
    }
  }
  post.push({ match: [ctDnat, saddr({ set: NAMES.sets.subnets[v4] }, v4), oifSet(bridges)], action: { a: 'masquerade' }, comment: 'hairpin: a container reaching a published port through a host address', purpose: { kind: 'hairpin' } });
  post.push({ match: [ctDnat, saddr(lo4, v4), oifSet(bridges)], action: { a: 'masquerade' }, comment: 'published ports used from the host through 127.0.0.1 (needs route_localnet=1)', purpose: { kind: 'host-loopback' } });
  if (has6) post.push({ match: [ctDnat, saddr({ set: NAMES.sets.subnets[v6] }, v6), oifSet(bridges)], action: { a: 'masquerade' }, comment: 'hairpin over IPv6: a container reaching a published port through a host address', purpose: { kind: 'hairpin' } });
  chains.push({ name: C.postrouting, base: { type: 'nat', hook: 'postrouting', priority: PRIORITY.srcnat, policy: 'accept' }, rules: post });

  const tables: Table[] = [{
    family: 'inet', name: NAMES.table, comment: 'nsnet: masquerade, published ports (DNAT) and isolation of nsnet bridge networks', sets, chains,
  }];

  if (iccOff.length || parts.length) {
    // ARP stays allowed (also across a partition: a one-way cut must not stop the other direction's neighbour
    // resolution), then partitions, then icc=false.
    const rules: Rule[] = [{ match: [{ m: 'ether-type', type: 'arp' }], action: { a: 'accept' }, comment: 'ARP between neighbours stays allowed', purpose: { kind: 'arp' } }, ...cut.bridgeRules];
    for (const n of iccOff) {
      const p = { kind: 'icc' as const, network: ref(n), allowed: false };
      for (const s of n.subnets) {
        rules.push({ match: [saddr({ prefix: s }, s.family)], counter: true, action: { a: 'drop' }, comment: `network ${nm(n)} has icc=false: no frames from its containers to another port`, purpose: p });
        rules.push({ match: [daddr({ prefix: s }, s.family)], counter: true, action: { a: 'drop' }, comment: `network ${nm(n)} has icc=false: no frames to its containers from another port`, purpose: p });
      }
    }
    tables.push({
      family: 'bridge', name: NAMES.table,
      comment: parts.length ? 'nsnet: partitions and icc=false inside a bridge (frames between two bridge ports skip the inet hooks)' : 'nsnet: icc=false inside a bridge (frames between two bridge ports skip the inet hooks)',
      sets: cut.bridgeSets,
      chains: [{ name: NAMES.bridgeChains.forward, base: { type: 'filter', hook: 'forward', priority: BRIDGE_FILTER, policy: 'accept' }, rules }],
    });
  }
  return { tables, networks, summary };
}
