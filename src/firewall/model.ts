// PURE: nsnet's firewall as data. Tables, chains (hook, priority, policy), typed sets and maps with their
// elements, and rules made of match expressions and one action, each rule carrying the nsnet policy it implements
// (its purpose) and the network / container it belongs to.
//
//   build.ts     desired state (FirewallState) -> FirewallModel   (the generator; validation lives there)
//   render.ts    FirewallModel -> nft text                         (exactly the scripts of test/unit/golden)
//   evaluate.ts  FirewallModel + a packet -> the path through the hooks and chains, the deciding rule, NAT
//
// The model is family-neutral: an address match knows its family (`ipv4` renders `ip saddr`, `ipv6` renders
// `ip6 saddr`), sets and maps are typed per family, and a DNAT knows the family it translates. The IPv6 sets, maps
// and rules are generated while some network has IPv6 (an IPv4-only host's ruleset is exactly the IPv4 one).
//
// The engine parses the kernel's listing with the names exported here (NAMES), never with its own strings.

// ---------------------------------------------------------------------------------------------- addresses

/** Address family of an address, a prefix, a set or a DNAT. */
export type Family = 'ipv4' | 'ipv6';

/** A single address, in its canonical text form (as nft prints it). Minimal on purpose: src/util/addr.ts will be
 *  the project's one address type; until then this is what the model needs. */
export interface IpAddr {
  family: Family;
  addr: string;
}

/** A prefix (network address + length), canonical (host bits zero). */
export interface Prefix {
  family: Family;
  addr: string;
  len: number;
}

/** `ip` or `ip6`: the payload keyword of an address match in this family. */
export function familyKeyword(f: Family): 'ip' | 'ip6' {
  return f === 'ipv4' ? 'ip' : 'ip6';
}

/** The nft set type of addresses of this family. */
export function addrType(f: Family): 'ipv4_addr' | 'ipv6_addr' {
  return f === 'ipv4' ? 'ipv4_addr' : 'ipv6_addr';
}

/** The family of an address or prefix text ("172.18.0.2", "fd00::/64"), by its spelling. */
export function familyOf(text: string): Family {
  return text.includes(':') ? 'ipv6' : 'ipv4';
}

const BITS: Record<Family, number> = { ipv4: 32, ipv6: 128 };

/** An address as a bigint (IPv4: 32 bits, IPv6: 128 bits), or null when it is not a canonical-enough address of
 *  its family. For containment tests (the evaluator); the generator validates its input strictly elsewhere. */
export function addrValue(a: IpAddr | string): bigint | null {
  const text = typeof a === 'string' ? a : a.addr;
  if (!text.includes(':')) {
    const p = text.split('.');
    if (p.length !== 4 || p.some((x) => !/^\d{1,3}$/.test(x) || Number(x) > 255)) return null;
    return p.reduce((acc, x) => (acc << 8n) | BigInt(Number(x)), 0n);
  }
  let t = text;
  let tailV4: bigint | null = null;
  const lastColon = t.lastIndexOf(':');
  if (t.slice(lastColon + 1).includes('.')) {
    tailV4 = addrValue(t.slice(lastColon + 1));
    if (tailV4 === null) return null;
    t = `${t.slice(0, lastColon + 1)}0:0`;
  }
  const halves = t.split('::');
  if (halves.length > 2) return null;
  const parse = (s: string) => (s === '' ? [] : s.split(':'));
  const head = parse(halves[0]);
  const tail = halves.length === 2 ? parse(halves[1]) : [];
  const fill = 8 - head.length - tail.length;
  if ((halves.length === 1 && fill !== 0) || fill < 0 || (halves.length === 2 && fill < 1)) return null;
  const groups = [...head, ...Array<string>(halves.length === 2 ? fill : 0).fill('0'), ...tail];
  if (groups.some((g) => !/^[0-9a-fA-F]{1,4}$/.test(g))) return null;
  let v = groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
  if (tailV4 !== null) v = (v & ~0xffffffffn) | tailV4;
  return v;
}

/** Is the address inside the prefix (same family, same leading `len` bits)? */
export function prefixContains(p: Prefix, a: IpAddr | string): boolean {
  const fam = typeof a === 'string' ? familyOf(a) : a.family;
  if (fam !== p.family) return false;
  const pv = addrValue(p.addr);
  const av = addrValue(a);
  if (pv === null || av === null) return false;
  const shift = BigInt(BITS[p.family] - p.len);
  return pv >> shift === av >> shift;
}

/** Canonical text of a prefix: `addr/len`. */
export function prefixText(p: Prefix): string {
  return `${p.addr}/${p.len}`;
}

/** Parses `addr/len` (no validation beyond the shape; the generator validates). */
export function prefixOf(text: string): Prefix {
  const i = text.indexOf('/');
  return { family: familyOf(text), addr: text.slice(0, i), len: Number(text.slice(i + 1)) };
}

/** The loopback block of a family (the guard and the 127.0.0.1 publishing rules). */
export const LOOPBACK: Record<Family, Prefix> = {
  ipv4: { family: 'ipv4', addr: '127.0.0.0', len: 8 },
  ipv6: { family: 'ipv6', addr: '::1', len: 128 },
};

// ---------------------------------------------------------------------------------------------- names

/**
 * Every name nsnet gives to an nft object, in one place: the generator writes them, the engine parses the
 * kernel's listing with them (check, reconcile, the owner probe, CNI CHECK). Per-family names: the IPv4 ones are
 * today's; the IPv6 ones exist while some network has IPv6.
 */
export const NAMES = {
  /** `table inet nsnet` always (while there are networks), `table bridge nsnet` when a network has icc=false. */
  table: 'nsnet',
  sets: {
    bridges: 'bridges',
    owner: 'owner',
    subnets: { ipv4: 'subnets', ipv6: 'subnets6' } as Record<Family, string>,
    /** IPv6 of networks in routed mode (gateway_mode_ipv6=routed): the container ports opened at the containers'
     *  own addresses (`container address . proto . port`), no DNAT. */
    routed6: 'routed6',
    /** Partitions (issue #15): `part_<network id, 12>_<group>`, one per group of a partitioned network, in the
     *  bridge table (the group's host-side veths) and in the inet table (its addresses on that network). */
    partitionPrefix: 'part_',
  },
  maps: {
    /** Ports published on one host address: `-p HOSTIP:PORT:CPORT`. */
    dnatAddr: { ipv4: 'dnat_addr', ipv6: 'dnat_addr6' } as Record<Family, string>,
    /** Ports published on every host address: `-p PORT:CPORT`. */
    dnatAny: { ipv4: 'dnat_any', ipv6: 'dnat_any6' } as Record<Family, string>,
  },
  chains: {
    guard: 'guard',
    prerouting: 'prerouting',
    output: 'output',
    published: 'published',
    input: 'input',
    forward: 'forward',
    postrouting: 'postrouting',
  },
  /** The chain of `table bridge nsnet`. */
  bridgeChains: { forward: 'forward' },
  /** `nsnet explain --trace`: chains `trace_<hook>` (in `table inet nsnet`, and `table bridge nsnet` when it
   *  exists), one rule each, setting `meta nftrace` on the probe packet at every hook it may pass (the kernel
   *  clears the mark on the way, e.g. between br_netfilter's prerouting and forward), only while the probe runs.
   *  Never part of the model: check reports a leftover one, reconcile removes it. */
  trace: { prefix: 'trace_' },
} as const;

/** The name of a partition set: `part_<network id, 12 hex>_<group>` (group: its index, `rest`, `not0`). */
export function partitionSetName(networkId: string, group: number | 'rest' | 'not0'): string {
  return `${NAMES.sets.partitionPrefix}${networkId.slice(0, 12)}_${group}`;
}

/** Is this a partition set (what check compares element by element, in both tables)? */
export function isPartitionSet(name: string): boolean {
  return name.startsWith(NAMES.sets.partitionPrefix);
}

/** The maps that hold published ports, every family (what check compares element by element). */
export const DNAT_MAPS: readonly string[] = [NAMES.maps.dnatAny.ipv4, NAMES.maps.dnatAddr.ipv4, NAMES.maps.dnatAny.ipv6, NAMES.maps.dnatAddr.ipv6];

/** Every set or map whose elements are published ports: the DNAT maps and the routed set (check, the delta). */
export const PORT_SETS: readonly string[] = [...DNAT_MAPS, NAMES.sets.routed6];

// ---------------------------------------------------------------------------------------------- purposes

/** Which nsnet policy a rule (or a map element) implements. */
export type PurposeKind =
  /** chain guard: no 127.0.0.0/8 to/from a bridge (route_localnet=1 is set on bridges). */
  | 'loopback-guard'
  /** prerouting: a 127/8 destination arriving from outside is never DNATed. */
  | 'loopback-no-dnat'
  /** the jumps into `published`, its DNAT rules, and forward's `ct status dnat` accept. */
  | 'published'
  /** one map element: port P of container C. */
  | 'published-port'
  /** input: DNS on a network's gateway only from its own bridge. */
  | 'dns-input'
  /** input/forward: an internal network reaches nothing but DNS on its gateway. */
  | 'internal'
  /** forward/input: replies and related packets of allowed connections. */
  | 'established'
  /** forward / bridge forward: containers of one network may (or may not: icc=false) talk to each other. */
  | 'icc'
  /** forward: no traffic between different nsnet networks. */
  | 'isolation'
  /** forward: nothing from outside to container addresses but published ports. */
  | 'no-direct-access'
  /** postrouting: outbound access of a network (masquerade of its subnet). */
  | 'masquerade'
  /** postrouting: a container reaching a published port through a host address. */
  | 'hairpin'
  /** postrouting: published ports used from the host through 127.0.0.1. */
  | 'host-loopback'
  /** bridge forward: ARP between neighbours. */
  | 'arp'
  /** bridge forward / inet forward: `nsnet partition`: traffic between groups of containers of one network is cut. */
  | 'partition';

/** The network a rule belongs to. */
export interface NetRef {
  id: string;
  name: string;
}

/** A published port as one map element knows it (one host port, ranges are expanded). */
export interface PortRef {
  /** '' = every host address. */
  hostIp: string;
  proto: L4Proto;
  hostPort: number;
  containerIp: string;
  containerPort: number;
}

export interface Purpose {
  kind: PurposeKind;
  network?: NetRef;
  /** Container id (published ports). */
  container?: string;
  port?: PortRef;
  /** icc rules: whether the network allows it (true: accept, false: drop). */
  allowed?: boolean;
  /** partition rules and set elements: which partition, which group (0-based as listed; 'rest' = the containers of
   *  the network not listed; 'not0' = everyone but the first group, for --oneway), one way or both. */
  partition?: { id: string; group?: number | 'rest' | 'not0'; oneway: boolean };
}

/** One line saying what a purpose is, for people (explain): "published port 8080/tcp of container 1a2b... (network oa-net)". */
export function describePurpose(p: Purpose): string {
  const net = p.network ? ` of network ${p.network.name}` : '';
  switch (p.kind) {
    case 'loopback-guard': return 'loopback guard: containers never reach or spoof 127.0.0.0/8';
    case 'loopback-no-dnat': return 'a port published on a loopback address is for the host itself: no DNAT from outside';
    case 'published': return 'published ports';
    case 'published-port': {
      const q = p.port!;
      return `published port ${q.hostIp || '0.0.0.0'}:${q.hostPort}/${q.proto} of container ${(p.container ?? '').slice(0, 12)} (${q.containerIp}:${q.containerPort})${net}`;
    }
    case 'dns-input': return `DNS on the gateway${net} only from its own bridge`;
    case 'internal': return `internal network${p.network ? ` ${p.network.name}` : ''}: nothing in or out but DNS on its gateway`;
    case 'established': return 'replies and related packets of allowed connections';
    case 'icc': return `inter-container traffic${net}${p.allowed === false ? ' is off (icc=false)' : ' is allowed'}`;
    case 'isolation': return 'isolation: no traffic between different nsnet networks';
    case 'no-direct-access': return 'no direct access to container addresses from outside: only published ports';
    case 'masquerade': return `masquerade${net}: outbound access`;
    case 'hairpin': return 'hairpin: a container reaching a published port through a host address';
    case 'host-loopback': return 'published ports used from the host through a loopback address';
    case 'arp': return 'ARP between neighbours';
    case 'partition': {
      const q = p.partition;
      const g = q?.group === undefined ? '' : q.group === 'rest' ? ' (the containers not listed)' : q.group === 'not0' ? ' (everyone but the first group)' : ` (group ${q.group + 1})`;
      const who = p.container ? ` container ${p.container.slice(0, 12)}` : '';
      return `partition${net}${q?.oneway ? ', one way' : ''}${g}:${who || ' traffic between its groups is cut'}`;
    }
  }
}

// ---------------------------------------------------------------------------------------------- sets and maps

export type L4Proto = 'tcp' | 'udp';

/** nft data types nsnet uses in sets and maps. */
export type SetType = 'ipv4_addr' | 'ipv6_addr' | 'ifname' | 'inet_proto' | 'inet_service';

/** One typed value of a set or map element. */
export type Value =
  | { t: 'ifname'; name: string }
  | { t: 'addr'; addr: IpAddr }
  | { t: 'prefix'; prefix: Prefix }
  | { t: 'proto'; proto: L4Proto }
  | { t: 'port'; port: number };

export interface SetElement {
  /** One value per key type (a concatenation when the set has several). */
  key: Value[];
  /** Maps only: one value per data type. */
  value?: Value[];
  comment?: string;
  purpose?: Purpose;
}

/** A named set (`data` absent) or map (`data` present). */
export interface NamedSet {
  name: string;
  key: SetType[];
  data?: SetType[];
  flags?: Array<'interval'>;
  comment?: string;
  elements: SetElement[];
}

// ---------------------------------------------------------------------------------------------- rules

export type Op = '==' | '!=';

/** What an interface or address is compared with: literal(s), or a named set (`@bridges`). */
export type IfTarget = { names: string[] } | { set: string };
export type AddrTarget = { addr: IpAddr } | { prefix: Prefix } | { set: string };

export type CtState = 'new' | 'established' | 'related' | 'invalid';

export type Match =
  /** `iifname "x"`, `oifname != { "a", "lo" }`, `iifname @bridges`. */
  | { m: 'iifname' | 'oifname'; op: Op; target: IfTarget }
  /** `ip saddr 10.0.0.0/8`, `ip6 daddr @subnets6`: the family says which. */
  | { m: 'saddr' | 'daddr'; family: Family; op: Op; target: AddrTarget }
  /** `meta l4proto { tcp, udp }` (one protocol: `meta l4proto tcp`). */
  | { m: 'l4proto'; protos: L4Proto[] }
  /** `th dport 53` (the transport header's destination port, any protocol that has one). */
  | { m: 'dport'; port: number }
  /** `ct state established,related`. */
  | { m: 'ct-state'; states: CtState[] }
  /** `ct status dnat`. */
  | { m: 'ct-status'; status: 'dnat' | 'snat' }
  /** `fib daddr type local`: the destination is one of the host's own addresses. */
  | { m: 'fib-daddr-local' }
  /** `ether type arp` (bridge family). */
  | { m: 'ether-type'; type: 'arp' | 'ip' | 'ip6' }
  /** `meta mark 0x1` (partitions and tracing will mark packets). */
  | { m: 'mark'; op: Op; value: number }
  /** `ip6 daddr . meta l4proto . th dport @routed6`: a concatenated key found in a named set. */
  | { m: 'lookup'; family: Family; key: MapKeyPart[]; set: string };

/** Parts of a DNAT map lookup key: `ip daddr . meta l4proto . th dport`. */
export type MapKeyPart = 'daddr' | 'l4proto' | 'dport';

export type Action =
  | { a: 'accept' | 'drop' | 'return' }
  | { a: 'jump'; chain: string }
  | { a: 'masquerade' }
  /** `dnat ip to 172.18.0.2:80` (`dnat ip6 to [fd00::2]:80`). */
  | { a: 'dnat'; family: Family; to: IpAddr; port?: number }
  /** `dnat ip to ip daddr . meta l4proto . th dport map @dnat_addr`: address and port from a map. */
  | { a: 'dnat-map'; family: Family; key: MapKeyPart[]; map: string };

export interface Rule {
  /** All must match (in this order: the order they are rendered and that nft evaluates). */
  match: Match[];
  /** A `counter` statement before the action. */
  counter?: boolean;
  action: Action;
  comment: string;
  purpose: Purpose;
}

// ---------------------------------------------------------------------------------------------- chains, tables

export type TableFamily = 'inet' | 'ip' | 'ip6' | 'bridge';
export type Hook = 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting';

/** A base chain's priority: a standard name (rendered as the name) or a number. */
export interface Priority {
  name?: 'raw' | 'mangle' | 'dstnat' | 'filter' | 'security' | 'srcnat';
  value: number;
}

/** nft's standard priorities (ip/ip6/inet; the bridge family's `filter` is -200, see bridgePriority). */
export const PRIORITY = {
  raw: { name: 'raw', value: -300 },
  dstnat: { name: 'dstnat', value: -100 },
  filter: { name: 'filter', value: 0 },
  srcnat: { name: 'srcnat', value: 100 },
} as const satisfies Record<string, Priority>;

/** The bridge family's standard priority `filter` (-200). */
export const BRIDGE_FILTER: Priority = { name: 'filter', value: -200 };

export interface BaseChain {
  type: 'filter' | 'nat';
  hook: Hook;
  priority: Priority;
  policy: 'accept' | 'drop';
}

export interface Chain {
  name: string;
  /** Absent for a regular chain (reached only by jump). */
  base?: BaseChain;
  comment?: string;
  rules: Rule[];
}

export interface Table {
  family: TableFamily;
  name: string;
  comment?: string;
  sets: NamedSet[];
  chains: Chain[];
}

/** A network as the model knows it (what the evaluator routes with, and explain names). */
export interface ModelNetwork {
  id: string;
  name: string;
  bridge: string;
  subnets: Prefix[];
  gateways: IpAddr[];
  internal: boolean;
  icc: boolean;
  masquerade: boolean;
  /** IPv6 in routed mode (gateway_mode_ipv6=routed): no NAT66, published ports open at the container address. */
  routed6?: boolean;
}

export interface FirewallModel {
  /** Ordered as rendered: `inet nsnet`, then `bridge nsnet` when present. Empty: nsnet has no networks. */
  tables: Table[];
  /** The networks it was built from, ordered by name. */
  networks: ModelNetwork[];
  /** For the script's header. */
  summary: { networks: number; internal: number; iccOff: number; mappings: number; elements: number; partitions?: number };
}

// ---------------------------------------------------------------------------------------------- lookups

export function findTable(m: FirewallModel, family: TableFamily, name: string = NAMES.table): Table | undefined {
  return m.tables.find((t) => t.family === family && t.name === name);
}

export function findSet(t: Table | undefined, name: string): NamedSet | undefined {
  return t?.sets.find((s) => s.name === name);
}

export function findChain(t: Table | undefined, name: string): Chain | undefined {
  return t?.chains.find((c) => c.name === name);
}

/** The chains of a table and how many rules each has (what `check` compares with the kernel's listing). */
export function ruleCounts(t: Table | undefined): Map<string, number> {
  return new Map((t?.chains ?? []).map((c) => [c.name, c.rules.length]));
}

/** A value as libnftables' JSON listing spells it once flattened (ifname, address, `tcp`, port number). */
export function valueText(v: Value): string {
  switch (v.t) {
    case 'ifname': return v.name;
    case 'addr': return v.addr.addr;
    case 'prefix': return prefixText(v.prefix);
    case 'proto': return v.proto;
    case 'port': return String(v.port);
  }
}

/** An element as `check` compares it with the kernel: `KEY` for a set, `KEY -> VALUE` for a map (parts joined
 *  with a space, as the engine flattens the JSON listing's concatenations). */
export function elementText(e: SetElement): string {
  const k = e.key.map(valueText).join(' ');
  return e.value ? `${k} -> ${e.value.map(valueText).join(' ')}` : k;
}
