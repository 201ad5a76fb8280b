// Glue between the store and the pure firewall generator: derive the desired state, apply it in one
// libnftables transaction in the host netns.
import { parseOwnerComment, renderPortDelta, renderRuleset, type FirewallOwner } from '../firewall/ruleset.js';
import { NftError } from '../kernel/nft.js';
import type { ContainerRecord, FirewallState } from '../types.js';
import { UserError } from '../util/errors.js';
import type { Host } from './host.js';
import { markOwner } from './marks.js';

/** The container whose endpoint carries its published ports: its first network (eth0). */
function portsOf(h: Host, c: ContainerRecord, state: FirewallState['ports'], nets: Map<string, FirewallState['networks'][number]>): void {
  if (!c.ports.length || c.mode !== 'bridge') return;
  const eps = h.store.endpointsOf(c.id).filter((e) => nets.has(e.networkId) && !nets.get(e.networkId)!.internal);
  const ep = eps[0];
  if (!ep) return;
  for (const p of c.ports) state.push({ ...p, containerId: c.id, containerIp: ep.ip, networkId: ep.networkId });
}

/** The networks as the firewall generator sees them. */
function fwNetworks(h: Host): FirewallState['networks'] {
  return h.store.networks().map((n) => ({
    id: n.id, name: n.name, bridge: n.bridge, subnet: n.subnet, gateway: n.gateway, internal: n.internal, icc: n.icc,
    ...(n.options.masquerade === 'false' ? { masquerade: false } : {}),
  }));
}

export function firewallState(h: Host): FirewallState {
  const networks = fwNetworks(h);
  const byId = new Map(networks.map((n) => [n.id, n]));
  const ports: FirewallState['ports'] = [];
  for (const c of h.store.containers()) portsOf(h, c, ports, byId);
  return { networks, ports };
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
    out = h.nft.run('list set inet nsnet owner', true);
  } catch (e) {
    if (!isMissing(e)) throw e;
    // No set: is there a table at all? (`list tables` is as small as it gets.)
    const tables = JSON.parse(h.nft.run('list tables', true)) as { nftables: Array<{ table?: { family: string; name: string } }> };
    return tables.nftables.some((o) => o.table?.family === 'inet' && o.table.name === 'nsnet') ? 'unmarked' : null;
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
export function applyFirewall(h: Host): void {
  const state = firewallState(h);
  const other = foreignOwner(h);
  if (other) {
    if (!state.networks.length) return;
    throw refusal(`table inet nsnet belongs to another nsnet (state directory ${other.root}, id nsnet/${other.id})`);
  }
  h.nft.run(renderRuleset(state, ownerOf(h)));
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
    // rebuilt from the store instead, which is the state the delta was heading for (the store changed first).
    if (!isMissing(e)) throw e;
    applyFirewall(h);
  }
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
    if (c.table === 'nsnet' && (c.family === 'inet' || c.family === 'bridge')) continue;
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
