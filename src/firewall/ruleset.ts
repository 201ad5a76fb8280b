// PURE: nsnet's desired state -> nftables scripts (native nft syntax, one script = one atomic transaction when
// run by libnftables or `nft -f`). No I/O here; the engine applies the scripts in the host netns.
//
// The firewall is built as data first (build.ts: the typed model of model.ts, every rule with its purpose) and
// rendered to text (render.ts); this file assembles the scripts: the full replacement, the published-port delta,
// the removal. The layout of the tables is described in build.ts and walked through in docs/firewall.md.
//
// Published ports live in the two maps, so adding or removing one is an element update (renderPortDelta),
// not a rebuild; a full render puts every element inline and stays one script however many ports there are.
import type { FirewallState } from '../types.js';
import { buildModel, cmpPortElem, expandPorts, portElement, portMap, type FirewallOwner } from './build.js';
import { NAMES, ruleCounts, findTable, type FirewallModel } from './model.js';
import { renderElement, renderElementKey, renderTable } from './render.js';

export { FirewallInputError } from './validate.js';
export { buildModel, ownerComment, type FirewallOwner } from './build.js';

/** Name of nsnet's tables: `table inet nsnet` always, `table bridge nsnet` when a network has icc=false. */
export const TABLE = NAMES.table;
/** Map for ports published on every host address: `inet_proto . inet_service : ipv4_addr . inet_service`. */
export const MAP_ANY = NAMES.maps.dnatAny.ipv4;
/** Map for ports published on one host address: `ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service`. */
export const MAP_ADDR = NAMES.maps.dnatAddr.ipv4;

/** The maps (and the routed set) a delta touches, in this order: IPv4 first, as it always was. */
const DELTA_ORDER = [MAP_ADDR, MAP_ANY, NAMES.maps.dnatAddr.ipv6, NAMES.maps.dnatAny.ipv6, NAMES.sets.routed6];

/** Header lines shared by every script: what it is, that it is generated. */
function header(title: string, lines: string[] = []): string[] {
  return [`# nsnet firewall: ${title}`, '# Generated from nsnet\'s state by src/firewall/ruleset.ts; do not edit. One script = one nft transaction.', ...lines.map((l) => `# ${l}`)];
}

/** Create-then-delete: removes a table whether or not it exists, inside the same transaction. */
function dropTableLines(): string[] {
  return [`table inet ${TABLE} {}`, `delete table inet ${TABLE}`, `table bridge ${TABLE} {}`, `delete table bridge ${TABLE}`];
}

/** Parses {@link ownerComment}'s text back: null when it is not one. */
export function parseOwnerComment(s: unknown): FirewallOwner | null {
  if (typeof s !== 'string') return null;
  const m = /^nsnet\/([A-Za-z0-9][A-Za-z0-9_.-]*) (.*)$/.exec(s);
  return m ? { id: m[1], root: m[2] } : null;
}

/**
 * Renders nsnet's whole firewall as ONE nft script that atomically REPLACES nsnet's tables: it first creates and
 * deletes `table inet nsnet` and `table bridge nsnet` (so it works whether or not they exist), then defines them
 * again with every rule and every published-port map element inline. Other tables are never touched and there is
 * no `flush ruleset`.
 *
 * With no networks the result equals {@link renderDeleteAll}: nsnet's tables exist exactly when it has networks.
 * `table bridge nsnet` is only defined when some network has `icc: false`.
 *
 * Deterministic, validated (see {@link buildModel}): a FirewallInputError is thrown for anything invalid.
 *
 * Requirements outside the script (set by the engine/driver): `net.ipv4.ip_forward=1` in the host netns and
 * `route_localnet=1` on each bridge (for 127.0.0.1:PORT; see docs/kernel-notes.md §13).
 */
export function renderRuleset(state: FirewallState, owner?: FirewallOwner): string {
  return renderModel(buildModel(state, owner));
}

/** The full replacement script of a model (what {@link renderRuleset} returns for the state it was built from). */
export function renderModel(m: FirewallModel): string {
  if (!m.tables.length) return renderDeleteAll();
  const s = m.summary;
  const L: string[] = header('full ruleset (replaces nsnet\'s tables atomically)', [
    `networks: ${s.networks} (${s.internal} internal, ${s.iccOff} with icc=false); ` +
      `published port mappings: ${s.mappings} (${s.elements} map elements)`,
    ...(s.partitions ? [`partitioned networks: ${s.partitions}`] : []),
  ]);
  L.push(...dropTableLines(), '');
  m.tables.forEach((t, i) => {
    if (i > 0) L.push('');
    L.push(...renderTable(t));
  });
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
  const add = expandPorts(added, 'added port').sort(cmpPortElem);
  const del = expandPorts(removed, 'removed port').sort(cmpPortElem);
  if (!add.length && !del.length) return '';
  const L: string[] = header(`published-port delta (${Array.isArray(added) ? added.length : 0} mapping(s) added, ${Array.isArray(removed) ? removed.length : 0} removed)`);
  const block = (verb: 'add' | 'delete', map: string, items: string[]) => {
    if (!items.length) return;
    if (items.length === 1) L.push(`${verb} element inet ${TABLE} ${map} { ${items[0]} }`);
    else L.push(`${verb} element inet ${TABLE} ${map} {`, ...items.map((x, i) => `\t${x}${i < items.length - 1 ? ',' : ''}`), '}');
  };
  for (const map of DELTA_ORDER) {
    const d = del.filter((e) => portMap(e) === map).map((e) => portElement(e));
    if (!d.length) continue;
    L.push(`# removed from ${map}: add-then-delete, so an element that is already gone is not an error`);
    block('add', map, d.map(renderElement));
    block('delete', map, d.map(renderElementKey));
  }
  for (const map of DELTA_ORDER) {
    const a = add.filter((e) => portMap(e) === map).map((e) => portElement(e));
    if (!a.length) continue;
    L.push(`# added to ${map}`);
    block('add', map, a.map(renderElement));
  }
  return L.join('\n') + '\n';
}

/** Removes nsnet's tables (`inet` and `bridge`) in one transaction; succeeds whether or not they exist. */
export function renderDeleteAll(): string {
  return [...header('remove nsnet\'s tables (tolerant: each is created, then deleted)'), ...dropTableLines()].join('\n') + '\n';
}

/** The chains of the model's `table inet nsnet` and how many rules each has. `check` compares this with the
 *  kernel: a chain flushed or deleted by hand (`nft flush chain`, `nft flush table`) is a difference even when
 *  every set and map is intact. */
export function inetRuleCounts(m: FirewallModel): Map<string, number> {
  return ruleCounts(findTable(m, 'inet'));
}

/**
 * The same counts parsed back from a rendered script (the unit tests hold it equal to {@link inetRuleCounts} for
 * every scenario, so the renderer writes one line per rule of the model).
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
