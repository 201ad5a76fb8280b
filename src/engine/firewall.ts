// Glue between the store and the pure firewall generator: derive the desired state, apply it in one
// libnftables transaction in the host netns.
import { expandPorts, portElement, portMap } from '../firewall/build.js';
import { PORT_SETS, NAMES, elementText, findSet, findTable, isPartitionSet, ruleCounts, type FirewallModel } from '../firewall/model.js';
import { buildModel, inetRuleCounts, parseOwnerComment, renderModel, renderPortDelta, type FirewallOwner } from '../firewall/ruleset.js';
import { NftError } from '../kernel/nft.js';
import type { ContainerRecord, FirewallState } from '../types.js';
import { UserError } from '../util/errors.js';
import type { Host } from './host.js';
import { markOwner } from './marks.js';
import { gatewayMode6 } from './networks.js';
import { partitionFirewallState } from './partitions.js';

/** The container whose endpoint carries its published ports: its first network (eth0). */
function portsOf(h: Host, c: ContainerRecord, state: FirewallState['ports'], nets: Map<string, FirewallState['networks'][number]>): void {
  if (!c.ports.length || c.mode !== 'bridge') return;
  const eps = h.store.endpointsOf(c.id).filter((e) => nets.has(e.networkId) && !nets.get(e.networkId)!.internal);
  const ep = eps[0];
  if (!ep) return;
  const n = nets.get(ep.networkId)!;
  for (const p of c.ports) {
    // On an IPv4-only network -p stays IPv4 (and an IPv6 host address cannot be served: resolvePorts refuses it).
    if (p.hostIp.includes(':') && !ep.ip6) continue;
    if (p.hostIp !== '' && !p.hostIp.includes(':') && !ep.ip) continue;
    state.push({
      ...p, containerId: c.id, containerIp: ep.ip, networkId: ep.networkId,
      ...(ep.ip6 ? { containerIp6: ep.ip6 } : {}), ...(ep.ip6 && n.gatewayMode6 === 'routed' ? { routed6: true } : {}),
    });
  }
}

/** The networks as the firewall generator sees them. */
function fwNetworks(h: Host): FirewallState['networks'] {
  return h.store.networks().map((n) => ({
    id: n.id, name: n.name, bridge: n.bridge, subnet: n.subnet, gateway: n.gateway, internal: n.internal, icc: n.icc,
    ...(n.options.masquerade === 'false' ? { masquerade: false } : {}),
    ...(n.subnet6 && n.gateway6 ? { subnet6: n.subnet6, gateway6: n.gateway6, ...(gatewayMode6(n) === 'routed' ? { gatewayMode6: 'routed' as const } : {}) } : {}),
  }));
}

export function firewallState(h: Host): FirewallState {
  const networks = fwNetworks(h);
  const byId = new Map(networks.map((n) => [n.id, n]));
  const ports: FirewallState['ports'] = [];
  for (const c of h.store.containers()) portsOf(h, c, ports, byId);
  const partitions = partitionFirewallState(h);
  return { networks, ports, ...(partitions?.length ? { partitions } : {}) };
}

/** This nsnet as the owner of the tables it writes. */
export function ownerOf(h: Host): FirewallOwner {
  return { id: h.hostId, root: h.root };
}

const isMissing = (e: unknown) => e instanceof NftError && /No such file or directory/.test(e.message);

/** Who owns the `table inet nsnet` of this host netns: its `set owner` comment; null when there is no table, and
 *  'unmarked' for a table without the set (made by an nsnet from before the marker: adopted as ours). One small
 *  `list set`, never a listing of the whole table. */
export function tableOwner(h: Host): FirewallOwner | 'unmarked' | null {
  let out: string;
  try {
    out = h.nft.run(`list set inet ${NAMES.table} ${NAMES.sets.owner}`, true);
  } catch (e) {
    if (!isMissing(e)) throw e;
    // No set: is there a table at all? (`list tables` is as small as it gets.)
    const tables = JSON.parse(h.nft.run('list tables', true)) as { nftables: Array<{ table?: { family: string; name: string } }> };
    return tables.nftables.some((o) => o.table?.family === 'inet' && o.table.name === NAMES.table) ? 'unmarked' : null;
  }
  const set = (JSON.parse(out) as { nftables: Array<{ set?: { comment?: string } }> }).nftables.find((o) => o.set)?.set;
  return parseOwnerComment(set?.comment) ?? 'unmarked';
}

/** The other nsnet whose table this host netns holds, or null (none, or it is ours). */
export function foreignOwner(h: Host): FirewallOwner | null {
  const o = tableOwner(h);
  return o && o !== 'unmarked' && o.id !== h.hostId ? o : null;
}

function refusal(what: string): UserError {
  return new UserError(`${what}: one nsnet per host network namespace (as one dockerd per host): use that state directory, or remove its networks first`, 'refused');
}

/** Refuses to go on when another nsnet (another state directory) already manages this host netns: its table
 *  (the owner set says whose) or links carrying another `nsnet/<id>` alias. Both nsnets would otherwise replace
 *  each other's `table inet nsnet` and fight over the default bridge nsnet0. Called where a network is created
 *  (one link dump: not on the container hot path); every full render checks the table owner itself. */
export function assertSoleNsnet(h: Host): void {
  const o = foreignOwner(h);
  if (o) throw refusal(`another nsnet (state directory ${o.root}, id nsnet/${o.id}) manages this host network namespace`);
  const other = h.nl.links().find((l) => { const o = markOwner(l.alias); return o !== null && o !== h.owner; });
  if (other) throw refusal(`another nsnet (id ${markOwner(other.alias)}, its interface ${other.name}) has objects in this host network namespace`);
}

/** Replaces nsnet's tables with the ruleset derived from the store (one atomic transaction). Never replaces (or,
 *  with no networks, deletes) a table another nsnet owns: refuses when it has networks of its own to render,
 *  leaves the other's table alone when it has none (its `reconcile`/last `network rm` must not break the other). */
export function applyFirewall(h: Host, delta?: { added: FirewallState['ports']; removed: FirewallState['ports'] }): void {
  const state = firewallState(h);
  if (delta) {
    // The store's committed state plus the delta on its way (a create publishes its ports before its commit).
    const key = (p: FirewallState['ports'][number]) => `${p.containerId} ${p.hostIp} ${p.hostPort} ${p.proto}`;
    const gone = new Set(delta.removed.map(key));
    const have = new Set(state.ports.map(key));
    state.ports = [...state.ports.filter((p) => !gone.has(key(p))), ...delta.added.filter((p) => !have.has(key(p)))];
  }
  const other = foreignOwner(h);
  if (other) {
    if (!state.networks.length) return;
    throw refusal(`table inet nsnet belongs to another nsnet (state directory ${other.root}, id nsnet/${other.id})`);
  }
  h.nft.run(renderModel(buildModel(state, ownerOf(h))));
}

/** Published ports of one container, in firewall form (for incremental add/remove). */
export function containerPorts(h: Host, c: ContainerRecord): FirewallState['ports'] {
  const nets = new Map(fwNetworks(h).map((n) => [n.id, n]));
  const out: FirewallState['ports'] = [];
  portsOf(h, c, out, nets);
  return out;
}

/** Adds/removes map elements only: O(ports changed), one transaction. */
export function applyPortDelta(h: Host, added: FirewallState['ports'], removed: FirewallState['ports']): void {
  if (!added.length && !removed.length) return;
  try {
    h.nft.run(renderPortDelta(added, removed));
  } catch (e) {
    // The delta needs nsnet's table. Gone (`nft flush ruleset`, another tool deleting it): the whole firewall is
    // rebuilt instead, from the store and the delta (the state the delta was heading for).
    if (!isMissing(e)) throw e;
    applyFirewall(h, { added, removed });
  }
}

// ------------------------------------------------------------------------------------------------ the kernel's view

/** One of nsnet's tables as libnftables lists it, reduced to what `check` compares with the model: the elements
 *  of every set and map (flattened with {@link flatValue}, maps as `KEY -> VALUE`) and the rule count of every
 *  chain. */
export interface ListedTable {
  sets: Map<string, Set<string>>;
  chains: Map<string, number>;
}

/** A value of libnftables' JSON flattened to the text {@link elementText} writes: an element with a comment comes
 *  wrapped (`{"elem": {"val": ...}}`), a concatenation is joined with spaces, a prefix is `addr/len`. */
export function flatValue(v: unknown): string {
  if (v && typeof v === 'object') {
    if ('elem' in v) return flatValue((v as { elem: { val: unknown } }).elem.val);
    if ('concat' in v) return (v as { concat: unknown[] }).concat.map(flatValue).join(' ');
    if ('prefix' in v) {
      const p = (v as { prefix: { addr: unknown; len: unknown } }).prefix;
      return `${String(p.addr)}/${String(p.len)}`;
    }
  }
  return String(v);
}

/** PURE: the listing of one table (`list table FAMILY NAME` as JSON) reduced to a {@link ListedTable}. */
export function parseListing(listing: unknown): ListedTable {
  const objs = ((listing as { nftables?: unknown[] } | null)?.nftables ?? []) as Array<Record<string, Record<string, unknown> | undefined>>;
  const sets = new Map<string, Set<string>>();
  const chains = new Map<string, number>();
  for (const o of objs) {
    const s = o.set ?? o.map;
    if (s && typeof s.name === 'string') {
      const isMap = !!o.map;
      const elems = (Array.isArray(s.elem) ? s.elem : []) as unknown[];
      sets.set(s.name, new Set(elems.map((e) => (isMap && Array.isArray(e) ? `${flatValue(e[0])} -> ${flatValue(e[1])}` : flatValue(e)))));
    }
    if (o.chain && typeof o.chain.name === 'string') chains.set(o.chain.name, chains.get(o.chain.name) ?? 0);
    const r = o.rule as { chain?: unknown } | undefined;
    if (r && typeof r.chain === 'string') chains.set(r.chain, (chains.get(r.chain) ?? 0) + 1);
  }
  return { sets, chains };
}

/** One of nsnet's tables in the kernel of the host netns, or null when it does not exist. */
export function listedTable(h: Host, family: 'inet' | 'bridge'): ListedTable | null {
  const l = h.nft.listTable(family, NAMES.table);
  return l === null ? null : parseListing(l);
}

/** The desired elements of a set or map of the model, as {@link ListedTable} holds the kernel's. */
function wantElements(m: FirewallModel, name: string, family: 'inet' | 'bridge' = 'inet'): Set<string> {
  return new Set((findSet(findTable(m, family), name)?.elements ?? []).map(elementText));
}

/** PURE: the partition sets of one table (`nsnet partition`): every wanted set with exactly its elements, and no
 *  other partition set; '' when they agree. */
function comparePartitionSets(want: FirewallModel, family: 'inet' | 'bridge', have: ListedTable): string {
  const wantSets = (findTable(want, family)?.sets ?? []).filter((s) => isPartitionSet(s.name));
  for (const s of wantSets) {
    const got = have.sets.get(s.name);
    if (!got) return `partition set ${s.name} of table ${family} ${NAMES.table} is missing`;
    const w = wantElements(want, s.name, family);
    if (got.size !== w.size || [...w].some((e) => !got.has(e))) return `partition set ${s.name} of table ${family} ${NAMES.table} differs (${got.size} elements, ${w.size} expected)`;
  }
  const extra = [...have.sets.keys()].find((n) => isPartitionSet(n) && !wantSets.some((s) => s.name === n));
  return extra ? `partition set ${extra} of table ${family} ${NAMES.table} is not wanted (a healed partition?)` : '';
}

/**
 * PURE: what differs between the desired model and the kernel's `table inet nsnet` (null: it does not exist) and
 * whether `table bridge nsnet` exists; '' when they agree. Compared: the table's presence, the `bridges` set, every
 * published port's map element, every chain with its number of rules, the `owner` set, the bridge table's
 * presence (asked last, so that a difference found before costs no second listing). Rule contents are not
 * compared (docs/firewall.md).
 */
export function compareFirewall(want: FirewallModel, inet: ListedTable | null, bridgeTable: () => boolean | ListedTable | null): string {
  const wantInet = findTable(want, 'inet');
  if (!inet) return wantInet ? `table inet ${NAMES.table} is missing` : '';
  if (!wantInet) return `table inet ${NAMES.table} exists but there are no networks`;
  const bridges = inet.sets.get(NAMES.sets.bridges) ?? new Set<string>();
  const wantBridges = wantElements(want, NAMES.sets.bridges);
  if (bridges.size !== wantBridges.size || [...wantBridges].some((b) => !bridges.has(b))) return 'the bridges set differs from the networks';
  const have = new Set<string>();
  const wantPorts = new Set<string>();
  for (const m of PORT_SETS) {
    for (const e of inet.sets.get(m) ?? []) have.add(`${m} ${e}`);
    for (const e of wantElements(want, m)) wantPorts.add(`${m} ${e}`);
  }
  const missing = [...wantPorts].filter((w) => !have.has(w));
  const extra = [...have].filter((x) => !wantPorts.has(x));
  if (missing.length || extra.length) return `published ports differ (missing ${missing.length}, unexpected ${extra.length})`;
  // Every chain with every rule: a chain flushed or deleted by hand leaves the sets and maps intact.
  for (const [chain, n] of inetRuleCounts(want)) {
    if (!inet.chains.has(chain)) return `chain ${chain} is missing`;
    if (inet.chains.get(chain) !== n) return `chain ${chain} has ${inet.chains.get(chain)} rules, ${n} expected`;
  }
  if (findSet(wantInet, NAMES.sets.owner) && !inet.sets.has(NAMES.sets.owner)) return 'the owner set is missing';
  const p = comparePartitionSets(want, 'inet', inet);
  if (p) return p;
  const br = bridgeTable();
  const wantBridge = findTable(want, 'bridge');
  if (!!br !== !!wantBridge) return `table bridge ${NAMES.table} (icc=false${want.summary.partitions ? ', partitions' : ''}) differs`;
  // With the listing (not only its presence): the bridge table's chains, rule by rule count, and partition sets.
  if (br && typeof br === 'object' && wantBridge) {
    for (const [chain, n] of ruleCounts(wantBridge)) {
      if (!br.chains.has(chain)) return `chain ${chain} of table bridge ${NAMES.table} is missing`;
      if (br.chains.get(chain) !== n) return `chain ${chain} of table bridge ${NAMES.table} has ${br.chains.get(chain)} rules, ${n} expected`;
    }
    const q = comparePartitionSets(want, 'bridge', br);
    if (q) return q;
  }
  return '';
}

/** The published-port map elements of these ports that the kernel's `table inet nsnet` lacks, as
 *  `HOSTIP:PORT/PROTO` (CNI CHECK). */
export function missingDnat(h: Host, ports: FirewallState['ports']): string[] {
  const inet = listedTable(h, 'inet');
  const out: string[] = [];
  for (const e of expandPorts(ports, 'published port')) {
    if (!inet?.sets.get(portMap(e))?.has(elementText(portElement(e)))) out.push(`${e.hostIp || '0.0.0.0'}:${e.hostPort}/${e.proto}`);
  }
  return out;
}

// ------------------------------------------------------------------------------------------------ other tables

/** A base chain of another table whose `policy drop` silently drops traffic nsnet relies on. */
export interface ForeignDrop {
  family: string;
  table: string;
  chain: string;
  hook: 'forward' | 'input';
  /** nsnet bridges the chain has no accept rule for (in the direction(s) needed). */
  bridges: string[];
  /** What to add to that chain (nft rule syntax, `;`-separated). */
  add: string;
}

type JExpr = Record<string, unknown>;
/** A rule as libnftables' JSON output has it. */
export interface JRule { expr?: JExpr[] }

/** Interface names a match expression compares `key` with: a literal, an `nsbr-*` style wildcard, an anonymous
 *  set. Returns a predicate, or null when the expression is not such a match (named sets etc. are not followed). */
function ifnameMatch(e: JExpr, key: string): ((name: string) => boolean) | null {
  const m = e.match as { op?: string; left?: { meta?: { key?: string } }; right?: unknown } | undefined;
  if (!m || m.left?.meta?.key !== key || (m.op !== '==' && m.op !== 'in')) return null;
  const one = (v: unknown) => (name: string) => typeof v === 'string' && (v.endsWith('*') && !v.endsWith('\\*') ? name.startsWith(v.slice(0, -1)) : v === name);
  const r = m.right as { set?: unknown[] } | string;
  if (typeof r === 'string') return one(r);
  if (r && Array.isArray(r.set)) return (name) => r.set!.some((v) => one(v)(name));
  return null;
}

/** Does this rule accept traffic whose `key` (iifname/oifname) is `name`? Any rule that matches the name and
 *  ends in `accept` counts (also `iifname "br" tcp dport 53 accept`): nsnet reports chains that plainly lack
 *  an accept for its bridges, it does not audit their policy. */
function accepts(r: JRule, key: string, name: string): boolean {
  const ex = r.expr ?? [];
  if (!ex.length || !('accept' in ex[ex.length - 1])) return false;
  return ex.some((e) => ifnameMatch(e, key)?.(name) ?? false);
}

const setOf = (names: string[]) => (names.length === 1 ? `"${names[0]}"` : `{ ${names.map((n) => `"${n}"`).join(', ')} }`);

/**
 * Base chains of OTHER tables (firewalld, ufw, a hand-made ruleset) with `policy drop` on a hook nsnet's traffic
 * passes: `forward` (ip/inet: published ports, outbound, hairpin, and same-network traffic with br_netfilter;
 * bridge: frames between containers) and `input` (ip/inet: DNS from user-defined networks to the resolver on
 * their gateway). A packet must be accepted by every base chain on its hook, so nsnet's own accepts cannot help:
 * the chain needs accept rules for nsnet's bridges (which nsnet will not add to a table that is not its own).
 * Chains that already accept each bridge (see `accepts`) are not reported. Costs one `list chains` plus one
 * `list chain` per drop-policy chain found; nothing when there are no networks.
 */
export function foreignDrops(h: Host): ForeignDrop[] {
  const nets = h.store.networks();
  if (!nets.length) return [];
  const chains = (JSON.parse(h.nft.run('list chains', true)) as { nftables: Array<{ chain?: { family: string; table: string; name: string; hook?: string; policy?: string } }> })
    .nftables.map((o) => o.chain).filter((c): c is NonNullable<typeof c> => !!c && c.policy === 'drop' && (c.hook === 'forward' || c.hook === 'input'));
  const out: ForeignDrop[] = [];
  for (const c of chains) {
    if (c.table === NAMES.table && (c.family === 'inet' || c.family === 'bridge')) continue;
    if (!['ip', 'inet', 'bridge'].includes(c.family) || (c.family === 'bridge' && c.hook !== 'forward')) continue;
    const rules = (JSON.parse(h.nft.run(`list chain ${c.family} ${c.table} ${c.name}`, true)) as { nftables: Array<{ rule?: JRule }> })
      .nftables.map((o) => o.rule).filter((r): r is JRule => !!r);
    const d = judgeDropChain(c.family, c.hook as 'forward' | 'input', rules, nets);
    if (d) out.push({ family: c.family, table: c.table, chain: c.name, hook: c.hook as 'forward' | 'input', ...d });
  }
  return out;
}

/** PURE: which of nsnet's bridges a drop-policy chain (its rules as libnftables JSON) lacks accepts for, and what
 *  to add; null when it has them all. Exported for the unit tests. */
export function judgeDropChain(family: string, hook: 'forward' | 'input', rules: JRule[], nets: Array<{ bridge: string; isDefault: boolean }>): { bridges: string[]; add: string } | null {
  const covered = (key: string, b: string) => rules.some((r) => accepts(r, key, b));
  let bridges: string[];
  let add: string;
  if (family === 'bridge') {
    // In the bridge family iifname/oifname are the bridge PORTS; the bridge itself is ibrname/obrname.
    bridges = nets.map((n) => n.bridge).filter((b) => !(covered('ibrname', b) && covered('obrname', b)));
    add = `meta ibrname ${setOf(bridges)} accept; meta obrname ${setOf(bridges)} accept`;
  } else if (hook === 'forward') {
    bridges = nets.map((n) => n.bridge).filter((b) => !(covered('iifname', b) && covered('oifname', b)));
    add = `iifname ${setOf(bridges)} accept; oifname ${setOf(bridges)} accept`;
  } else {
    bridges = nets.filter((n) => !n.isDefault).map((n) => n.bridge).filter((b) => !covered('iifname', b));
    add = `iifname ${setOf(bridges)} meta l4proto { tcp, udp } th dport 53 accept`;
  }
  return bridges.length ? { bridges, add } : null;
}

/** One line describing a drop-policy chain and what to add to it. */
export function describeForeignDrop(d: ForeignDrop): string {
  const breaks = d.family === 'bridge'
    ? 'traffic between containers of one network'
    : d.hook === 'forward'
      ? 'published ports, outbound traffic, hairpin and (with br_netfilter) traffic between containers'
      : 'DNS from containers to the resolver on their gateway';
  return `table ${d.family} ${d.table} chain ${d.chain} (hook ${d.hook}, policy drop) drops nsnet's ${breaks} on ${d.bridges.join(', ')}: add to that chain: ${d.add}`;
}

/** The one WARNING `network create` and publishing a port print, or null. Never throws: a warning must not make
 *  a command that succeeded fail. */
export function foreignFirewallWarning(h: Host): string | null {
  try {
    const ds = foreignDrops(h);
    return ds.length ? ds.map(describeForeignDrop).join('; and ') : null;
  } catch {
    return null;
  }
}
