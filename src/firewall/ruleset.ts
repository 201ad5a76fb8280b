// PURE: nsnet's desired state -> nftables scripts (native nft syntax, one script = one atomic transaction when
// run by libnftables or `nft -f`). No I/O here; the engine applies the scripts in the host netns.
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
//   table bridge nsnet   (only when a network has icc=false)
//     chain forward      bridge forward      : drop frames between containers of icc=false networks
//
// Published ports live in the two maps, so adding or removing one is an element update (renderPortDelta),
// not a rebuild; a full render puts every element inline and stays one script however many ports there are.
import type { FirewallState } from '../types.js';
import {
  FirewallInputError, checkBool, checkCidr, checkId, checkIfname, checkIpv4, checkName, checkPort, checkProto,
  cidrContains, cidrsOverlap, comment, parseIpv4, shortName, type Cidr,
} from './validate.js';

export { FirewallInputError } from './validate.js';

/** Name of nsnet's tables: `table inet nsnet` always, `table bridge nsnet` when a network has icc=false. */
export const TABLE = 'nsnet';
/** Map for ports published on every host address: `inet_proto . inet_service : ipv4_addr . inet_service`. */
export const MAP_ANY = 'dnat_any';
/** Map for ports published on one host address: `ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service`. */
export const MAP_ADDR = 'dnat_addr';

type NetIn = FirewallState['networks'][number];
type PortIn = FirewallState['ports'][number];

interface Net {
  id: string;
  name: string;
  bridge: string;
  subnet: string;
  cidr: Cidr;
  gateway: string;
  internal: boolean;
  icc: boolean;
  /** false: outbound traffic is routed, not masqueraded (enable_ip_masquerade=false). */
  masquerade: boolean;
}

/** One map element: a single host port (ranges are expanded, port i of the host range -> port i of the container range). */
interface Elem {
  /** '' = every host address (dnat_any), otherwise the host address (dnat_addr). */
  hostIp: string;
  proto: 'tcp' | 'udp';
  hostPort: number;
  containerIp: string;
  containerPort: number;
  containerId: string;
  networkId: string;
}

// ---------------------------------------------------------------------------------------------- validation

function checkNetworks(list: unknown): Net[] {
  if (!Array.isArray(list)) throw new FirewallInputError('state.networks must be an array');
  const nets = (list as NetIn[]).map((n, i): Net => {
    const where = `network #${i}${n && typeof n.name === 'string' ? ` (${JSON.stringify(n.name)})` : ''}`;
    if (!n || typeof n !== 'object') throw new FirewallInputError(`${where}: not an object`);
    const cidr = checkCidr(n.subnet, `${where} subnet`);
    const gw = parseIpv4(checkIpv4(n.gateway, `${where} gateway`))!;
    if (!cidrContains(cidr, gw)) throw new FirewallInputError(`${where}: gateway ${n.gateway} is outside its subnet ${n.subnet}`);
    return {
      id: checkId(n.id, `${where} id`),
      name: checkName(n.name, `${where} name`),
      bridge: checkIfname(n.bridge, `${where} bridge`),
      subnet: n.subnet,
      cidr,
      gateway: n.gateway,
      internal: checkBool(n.internal, `${where} internal`),
      icc: checkBool(n.icc, `${where} icc`),
      masquerade: n.masquerade === undefined ? true : checkBool(n.masquerade, `${where} masquerade`),
    };
  });
  nets.sort((a, b) => cmp(a.name, b.name) || cmp(a.id, b.id));
  for (let i = 0; i < nets.length; i++) {
    for (let j = i + 1; j < nets.length; j++) {
      const a = nets[i], b = nets[j];
      if (a.id === b.id) throw new FirewallInputError(`two networks have the id ${a.id}`);
      if (a.name === b.name) throw new FirewallInputError(`two networks are named ${a.name}`);
      if (a.bridge === b.bridge) throw new FirewallInputError(`networks ${a.name} and ${b.name} use the same bridge ${a.bridge}`);
      if (cidrsOverlap(a.cidr, b.cidr)) throw new FirewallInputError(`networks ${a.name} (${a.subnet}) and ${b.name} (${b.subnet}) have overlapping subnets`);
    }
  }
  return nets;
}

/** Validates published ports and expands each range into single-port elements; rejects duplicate keys. */
function expandPorts(list: unknown, what: string): Elem[] {
  if (!Array.isArray(list)) throw new FirewallInputError(`${what} must be an array`);
  const out: Elem[] = [];
  (list as PortIn[]).forEach((p, i) => {
    const where = `${what} #${i}`;
    if (!p || typeof p !== 'object') throw new FirewallInputError(`${where}: not an object`);
    const hostIp = p.hostIp === '' || p.hostIp === '0.0.0.0' ? '' : checkIpv4(p.hostIp, `${where} hostIp`);
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
    const containerIp = checkIpv4(p.containerIp, `${where} containerIp`);
    const containerId = checkId(p.containerId, `${where} containerId`);
    const networkId = checkId(p.networkId, `${where} networkId`);
    for (let k = 0; k <= hpe - hp; k++) {
      out.push({ hostIp, proto, hostPort: hp + k, containerIp, containerPort: cp + k, containerId, networkId });
    }
  });
  const seen = new Map<string, Elem>();
  for (const e of out) {
    const k = keyOf(e);
    const prev = seen.get(k);
    if (prev) {
      throw new FirewallInputError(`${what}: ${e.hostIp || '0.0.0.0'}:${e.hostPort}/${e.proto} is published twice (containers ${prev.containerId} and ${e.containerId})`);
    }
    seen.set(k, e);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------- formatting

function cmp(a: string | number, b: string | number): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function keyOf(e: Elem): string {
  return `${e.hostIp}|${e.proto}|${e.hostPort}`;
}

/** Orders by host port, then protocol, then host address ('' first), then container: stable for any input order. */
function cmpElem(a: Elem, b: Elem): number {
  return a.hostPort - b.hostPort || cmp(a.proto, b.proto) || (parseIpv4(a.hostIp || '0.0.0.0')! - parseIpv4(b.hostIp || '0.0.0.0')!) || cmp(a.containerId, b.containerId);
}

function mapOf(e: Elem): string {
  return e.hostIp ? MAP_ADDR : MAP_ANY;
}

function elemKey(e: Elem): string {
  return e.hostIp ? `${e.hostIp} . ${e.proto} . ${e.hostPort}` : `${e.proto} . ${e.hostPort}`;
}

/** `KEY comment "container ID12" : IP . PORT` */
function elemFull(e: Elem): string {
  return `${elemKey(e)} ${comment(`container ${e.containerId.slice(0, 12)}`)} : ${e.containerIp} . ${e.containerPort}`;
}

/** A set/map `elements = { ... }` block at the given indent, one element per line; nothing for an empty list. */
function elementsBlock(items: string[], ind: string): string[] {
  if (!items.length) return [];
  return [`${ind}elements = {`, ...items.map((x, i) => `${ind}\t${x}${i < items.length - 1 ? ',' : ''}`), `${ind}}`];
}

const q = (s: string) => `"${s}"`;

/** Header lines shared by every script: what it is, that it is generated. */
function header(title: string, lines: string[] = []): string[] {
  return [`# nsnet firewall: ${title}`, '# Generated from nsnet\'s state by src/firewall/ruleset.ts; do not edit. One script = one nft transaction.', ...lines.map((l) => `# ${l}`)];
}

/** Create-then-delete: removes a table whether or not it exists, inside the same transaction. */
function dropTableLines(): string[] {
  return [`table inet ${TABLE} {}`, `delete table inet ${TABLE}`, `table bridge ${TABLE} {}`, `delete table bridge ${TABLE}`];
}

// ---------------------------------------------------------------------------------------------- public API

/**
 * Renders nsnet's whole firewall as ONE nft script that atomically REPLACES nsnet's tables: it first creates and
 * deletes `table inet nsnet` and `table bridge nsnet` (so it works whether or not they exist), then defines them
 * again with every rule and every published-port map element inline. Other tables are never touched and there is
 * no `flush ruleset`.
 *
 * With no networks the result equals {@link renderDeleteAll}: nsnet's tables exist exactly when it has networks.
 * `table bridge nsnet` is only defined when some network has `icc: false`.
 *
 * Deterministic: networks are ordered by name, port elements by network name then host port, protocol and host
 * address, whatever the input order. Every address, port and name is validated first (nft would resolve a
 * non-address as a host name); a {@link FirewallInputError} is thrown for anything invalid, for duplicate
 * networks/bridges/overlapping subnets, for a host port published twice, and for a port whose network is not in
 * the state or whose container address is outside that network's subnet.
 *
 * Requirements outside the script (set by the engine/driver): `net.ipv4.ip_forward=1` in the host netns and
 * `route_localnet=1` on each bridge (for 127.0.0.1:PORT; see KERNEL-NOTES pitfall 10).
 */
/** Who owns nsnet's tables: the host id (the `nsnet/<id>` alias of its links) and its state directory. */
export interface FirewallOwner {
  id: string;
  root: string;
}

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
const MAX_OWNER_COMMENT = 128;

/** Parses {@link ownerComment}'s text back: null when it is not one. */
export function parseOwnerComment(s: unknown): FirewallOwner | null {
  if (typeof s !== 'string') return null;
  const m = /^nsnet\/([A-Za-z0-9][A-Za-z0-9_.-]*) (.*)$/.exec(s);
  return m ? { id: m[1], root: m[2] } : null;
}

export function renderRuleset(state: FirewallState, owner?: FirewallOwner): string {
  if (!state || typeof state !== 'object') throw new FirewallInputError('state must be an object');
  const nets = checkNetworks(state.networks);
  const elems = expandPorts(state.ports, 'published port');
  const byId = new Map(nets.map((n) => [n.id, n]));
  for (const e of elems) {
    const n = byId.get(e.networkId);
    if (!n) throw new FirewallInputError(`published port ${e.hostPort}/${e.proto} of container ${e.containerId}: network ${e.networkId} is not in the state`);
    if (!cidrContains(n.cidr, parseIpv4(e.containerIp)!)) {
      throw new FirewallInputError(`published port ${e.hostPort}/${e.proto}: container address ${e.containerIp} is outside network ${n.name} (${n.subnet})`);
    }
  }
  if (!nets.length) return renderDeleteAll();

  const netName = (id: string) => byId.get(id)!.name;
  elems.sort((a, b) => cmp(netName(a.networkId), netName(b.networkId)) || cmpElem(a, b));
  const any = elems.filter((e) => !e.hostIp).map(elemFull);
  const addr = elems.filter((e) => e.hostIp).map(elemFull);
  const internal = nets.filter((n) => n.internal);
  const iccOff = nets.filter((n) => !n.icc);
  const mappings = Array.isArray(state.ports) ? state.ports.length : 0;

  const L: string[] = [];
  const nm = (n: Net) => shortName(n.name);
  L.push(...header('full ruleset (replaces nsnet\'s tables atomically)', [
    `networks: ${nets.length} (${internal.length} internal, ${iccOff.length} with icc=false); ` +
      `published port mappings: ${mappings} (${elems.length} map elements)`,
  ]));
  L.push(...dropTableLines(), '');

  L.push(`table inet ${TABLE} {`);
  L.push(`\t${comment('nsnet: masquerade, published ports (DNAT) and isolation of nsnet bridge networks')}`);
  L.push('');
  L.push('\tset bridges {', '\t\ttype ifname', `\t\t${comment('the bridge of every nsnet network')}`,
    ...elementsBlock(nets.map((n) => `${q(n.bridge)} ${comment(`network ${nm(n)}`)}`), '\t\t'), '\t}', '');
  L.push('\tset subnets {', '\t\ttype ipv4_addr', '\t\tflags interval', `\t\t${comment('the subnet of every nsnet network')}`,
    ...elementsBlock(nets.map((n) => `${n.subnet} ${comment(`network ${nm(n)}`)}`), '\t\t'), '\t}', '');
  L.push(`\tmap ${MAP_ADDR} {`, '\t\ttype ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service',
    `\t\t${comment('ports published on one host address: -p HOSTIP:PORT:CPORT')}`, ...elementsBlock(addr, '\t\t'), '\t}', '');
  L.push(`\tmap ${MAP_ANY} {`, '\t\ttype inet_proto . inet_service : ipv4_addr . inet_service',
    `\t\t${comment('ports published on every host address: -p PORT:CPORT')}`, ...elementsBlock(any, '\t\t'), '\t}', '');

  if (owner) {
    L.push('\tset owner {', '\t\ttype ifname', `\t\t${comment(ownerComment(owner))}`, '\t}', '');
  }

  L.push('\tchain guard {', '\t\ttype filter hook prerouting priority raw; policy accept;',
    `\t\t${comment('before conntrack and NAT: loopback addresses never come from a bridge')}`,
    `\t\tiifname @bridges ip daddr 127.0.0.0/8 counter drop ${comment('bridges have route_localnet=1: containers must not reach the host\'s 127.0.0.0/8 services')}`,
    `\t\tiifname @bridges ip saddr 127.0.0.0/8 counter drop ${comment('no spoofed loopback sources from containers')}`,
    '\t}', '');

  L.push('\tchain prerouting {', '\t\ttype nat hook prerouting priority dstnat; policy accept;',
    // A neighbour that routes 127.0.0.1 to this host (route_localnet on ITS side) would otherwise be DNATed into a
    // container bound to 127.0.0.1 only: the DNAT happens before the kernel's martian check (moby#45610). The
    // host's own connections to 127.0.0.1 never come here (their NAT is done in `output`), so this only ever
    // refuses packets from the network. `return`, not drop: nsnet only declines to DNAT them; what the kernel does
    // next (drop them as martians) is the same as without nsnet.
    `\t\tiifname != "lo" ip daddr 127.0.0.0/8 counter return ${comment('a port published on 127.0.0.0/8 is for the host itself: never DNAT one arriving from outside')}`,
    `\t\tfib daddr type local jump published ${comment('published ports: only packets addressed to one of the host\'s own addresses')}`,
    '\t}', '');
  L.push('\tchain output {', '\t\ttype nat hook output priority -100; policy accept;',
    `\t\tfib daddr type local jump published ${comment('published ports used from the host itself, 127.0.0.1 included')}`,
    '\t}', '');
  L.push('\tchain published {',
    `\t\t${comment('kernel DNAT to the container, no userland proxy: a specific host address wins over any')}`,
    `\t\tdnat ip to ip daddr . meta l4proto . th dport map @${MAP_ADDR} ${comment('-p HOSTIP:PORT:CPORT')}`,
    `\t\tdnat ip to meta l4proto . th dport map @${MAP_ANY} ${comment('-p PORT:CPORT, on every host address')}`,
    '\t}', '');

  L.push('\tchain input {', '\t\ttype filter hook input priority filter; policy accept;',
    `\t\t${comment('traffic for the host itself: the resolver on the gateways, internal networks')}`);
  for (const n of nets) {
    // The resolver checks the query's source address, not the interface: a spoofed in-subnet source from the
    // uplink (rp_filter off) would be forwarded upstream. The host's own queries arrive on lo.
    L.push(`\t\tip daddr ${n.gateway} meta l4proto { tcp, udp } th dport 53 iifname != { ${q(n.bridge)}, "lo" } counter drop ${comment(`network ${nm(n)}: DNS on its gateway only from its own bridge`)}`);
  }
  for (const n of internal) {
    L.push(`\t\tiifname ${q(n.bridge)} ct state established,related accept ${comment(`network ${nm(n)} is internal: replies to the host's own connections`)}`);
    L.push(`\t\tiifname ${q(n.bridge)} ip daddr ${n.gateway} meta l4proto { tcp, udp } th dport 53 accept ${comment(`network ${nm(n)} is internal: DNS on its own gateway`)}`);
    L.push(`\t\tiifname ${q(n.bridge)} counter drop ${comment(`network ${nm(n)} is internal: nothing else reaches the host`)}`);
  }
  L.push('\t}', '');

  L.push('\tchain forward {', '\t\ttype filter hook forward priority filter; policy accept;',
    `\t\t${comment('routed traffic into, out of and between bridges (and bridged traffic when br_netfilter is on)')}`);
  for (const n of internal) {
    L.push(`\t\tiifname ${q(n.bridge)} oifname != ${q(n.bridge)} counter drop ${comment(`network ${nm(n)} is internal: nothing leaves its bridge`)}`);
    L.push(`\t\toifname ${q(n.bridge)} iifname != ${q(n.bridge)} counter drop ${comment(`network ${nm(n)} is internal: nothing enters its bridge`)}`);
  }
  L.push(`\t\tct state established,related accept ${comment('replies and related packets (ICMP errors) of allowed connections')}`);
  L.push(`\t\tct status dnat oifname @bridges accept ${comment('published ports: DNATed connections may enter any bridge (also hairpin)')}`);
  for (const n of nets) {
    if (n.icc) L.push(`\t\tiifname ${q(n.bridge)} oifname ${q(n.bridge)} accept ${comment(`network ${nm(n)}: its containers may talk to each other`)}`);
    else L.push(`\t\tiifname ${q(n.bridge)} oifname ${q(n.bridge)} counter drop ${comment(`network ${nm(n)} has icc=false: its containers may not talk to each other`)}`);
  }
  L.push(`\t\tiifname @bridges oifname @bridges counter drop ${comment('isolation: no traffic between different nsnet networks')}`);
  L.push(`\t\toifname @bridges counter drop ${comment('no direct access to container addresses from outside: only published ports')}`);
  L.push('\t}', '');

  L.push('\tchain postrouting {', '\t\ttype nat hook postrouting priority srcnat; policy accept;');
  for (const n of nets) {
    if (n.internal || n.masquerade === false) continue; // enable_ip_masquerade=false: routed, not masqueraded
    L.push(`\t\tip saddr ${n.subnet} oifname != ${q(n.bridge)} masquerade ${comment(`network ${nm(n)}: outbound access, its subnet leaving through anything but its bridge`)}`);
  }
  L.push(`\t\tct status dnat ip saddr @subnets oifname @bridges masquerade ${comment('hairpin: a container reaching a published port through a host address')}`);
  L.push(`\t\tct status dnat ip saddr 127.0.0.0/8 oifname @bridges masquerade ${comment('published ports used from the host through 127.0.0.1 (needs route_localnet=1)')}`);
  L.push('\t}');
  L.push('}');

  if (iccOff.length) {
    L.push('');
    L.push(`table bridge ${TABLE} {`);
    L.push(`\t${comment('nsnet: icc=false inside a bridge (frames between two bridge ports skip the inet hooks)')}`);
    L.push('');
    L.push('\tchain forward {', '\t\ttype filter hook forward priority filter; policy accept;');
    L.push(`\t\tether type arp accept ${comment('ARP between neighbours stays allowed')}`);
    for (const n of iccOff) {
      L.push(`\t\tip saddr ${n.subnet} counter drop ${comment(`network ${nm(n)} has icc=false: no frames from its containers to another port`)}`);
      L.push(`\t\tip daddr ${n.subnet} counter drop ${comment(`network ${nm(n)} has icc=false: no frames to its containers from another port`)}`);
    }
    L.push('\t}');
    L.push('}');
  }
  return L.join('\n') + '\n';
}

/**
 * Renders the published-port change as map element commands only (O(ports changed), one transaction). Needs
 * nsnet's table to exist (a full render made it). Order: removals, then additions, so a host port moving from
 * one container to another in the same delta works.
 *
 * Removal is tolerant: each removed element is first added with its old value, then deleted, so the script
 * succeeds whether or not the element is still there, and it FAILS (changing nothing) if that host port now
 * leads somewhere else, i.e. it never deletes another container's mapping. Adding an element that already exists
 * with the same value is a no-op; adding one whose host port already leads elsewhere fails.
 *
 * Returns '' when both lists are empty. Throws {@link FirewallInputError} on invalid input or when a host port
 * appears twice in `added` (or twice in `removed`).
 */
export function renderPortDelta(added: FirewallState['ports'], removed: FirewallState['ports']): string {
  const add = expandPorts(added, 'added port').sort(cmpElem);
  const del = expandPorts(removed, 'removed port').sort(cmpElem);
  if (!add.length && !del.length) return '';
  const L: string[] = header(`published-port delta (${Array.isArray(added) ? added.length : 0} mapping(s) added, ${Array.isArray(removed) ? removed.length : 0} removed)`);
  const block = (verb: 'add' | 'delete', map: string, items: string[]) => {
    if (!items.length) return;
    if (items.length === 1) L.push(`${verb} element inet ${TABLE} ${map} { ${items[0]} }`);
    else L.push(`${verb} element inet ${TABLE} ${map} {`, ...items.map((x, i) => `\t${x}${i < items.length - 1 ? ',' : ''}`), '}');
  };
  for (const map of [MAP_ADDR, MAP_ANY]) {
    const d = del.filter((e) => mapOf(e) === map);
    if (!d.length) continue;
    L.push(`# removed from ${map}: add-then-delete, so an element that is already gone is not an error`);
    block('add', map, d.map(elemFull));
    block('delete', map, d.map(elemKey));
  }
  for (const map of [MAP_ADDR, MAP_ANY]) {
    const a = add.filter((e) => mapOf(e) === map);
    if (!a.length) continue;
    L.push(`# added to ${map}`);
    block('add', map, a.map(elemFull));
  }
  return L.join('\n') + '\n';
}

/** Removes nsnet's tables (`inet` and `bridge`) in one transaction; succeeds whether or not they exist. */
export function renderDeleteAll(): string {
  return [...header('remove nsnet\'s tables (tolerant: each is created, then deleted)'), ...dropTableLines()].join('\n') + '\n';
}

/**
 * The chains of `table inet nsnet` a full render defines and how many rules each has (parsed back from the
 * script itself, so it can never disagree with it). `check` compares this with the kernel: a chain flushed or
 * deleted by hand (`nft flush chain`, `nft flush table`) is a difference even when every set and map is intact.
 */
export function chainRuleCounts(script: string): Map<string, number> {
  const out = new Map<string, number>();
  let inTable = false;
  let chain: string | null = null;
  for (const line of script.split('\n')) {
    if (line === `table inet ${TABLE} {`) { inTable = true; continue; }
    if (!inTable) continue;
    if (line === '}') break;
    const m = /^\tchain (\S+) \{$/.exec(line);
    if (m) { chain = m[1]; out.set(chain, 0); continue; }
    if (chain === null) continue;
    if (line === '\t}') { chain = null; continue; }
    const t = line.trim();
    if (!t || t.startsWith('type ') || t.startsWith('comment ')) continue;
    out.set(chain, out.get(chain)! + 1);
  }
  return out;
}
