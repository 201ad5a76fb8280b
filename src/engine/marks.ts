// The marks nsnet writes as the alias (IFLA_IFALIAS) of the kernel objects it makes: whose they are, and enough
// of what they are for the store to be rebuilt from the kernel when it is lost (src/engine/rebuild.ts).
//
//   bridge:                      nsnet/<hostid> net <network id> <flags> <network name>
//   host end of a veth:          nsnet/<hostid> ep <container id> <ifname> <s|-> <alias,alias,...>
//   loopback of a container:     nsnet/<hostid> ctr <container id> <mode> <container name>
//   another device of a network: nsnet/<hostid> dev <network id> <role>     (the overlay's VXLAN device: vxlan)
//
// The first word alone ("nsnet/<hostid>") is the mark of objects made before these forms existed: they are owned
// just the same, only not described. An alias holds at most 255 bytes (IFALIASZ - 1): names are at most 64
// characters and ids 64, so the fixed parts always fit; a veth's DNS aliases are written while they fit (the
// rebuild reports a truncated list). Pure: no kernel access here.
import type { ContainerRecord, EndpointRecord, NetworkRecord } from '../types.js';

export const ALIAS_MAX = 255;

/** Whether `alias` marks an object of the nsnet whose owner word is `owner` ("nsnet/<hostid>"). */
export function ownedBy(alias: string | null | undefined, owner: string): boolean {
  return !!alias && (alias === owner || alias.startsWith(owner + ' '));
}

/** The owner word of any nsnet's mark ("nsnet/<6 hex>"), or null for an alias that is not a mark. */
export function markOwner(alias: string | null | undefined): string | null {
  const m = alias ? /^(nsnet\/[0-9a-f]{6})(?: |$)/.exec(alias) : null;
  return m ? m[1] : null;
}

function flagsOf(n: Pick<NetworkRecord, 'isDefault' | 'internal' | 'icc'>): string {
  const f = `${n.isDefault ? 'd' : ''}${n.internal ? 'i' : ''}${n.icc ? '' : 'x'}`;
  return f || '-';
}

export function networkMark(owner: string, n: Pick<NetworkRecord, 'id' | 'name' | 'isDefault' | 'internal' | 'icc'>): string {
  return `${owner} net ${n.id} ${flagsOf(n)} ${n.name}`.slice(0, ALIAS_MAX);
}

export function deviceMark(owner: string, n: Pick<NetworkRecord, 'id'>, role: string): string {
  return `${owner} dev ${n.id} ${role}`;
}

export function containerMark(owner: string, c: Pick<ContainerRecord, 'id' | 'name' | 'mode'>): string {
  return `${owner} ctr ${c.id} ${c.mode} ${c.name}`.slice(0, ALIAS_MAX);
}

export function endpointMark(owner: string, ep: Pick<EndpointRecord, 'containerId' | 'ifname' | 'staticIp' | 'aliases'>): string {
  const head = `${owner} ep ${ep.containerId} ${ep.ifname} ${ep.staticIp ? 's' : '-'} `;
  const all = head + ep.aliases.join(',');
  if (all.length <= ALIAS_MAX) return all;
  // Those that fit, then '+' (never part of a DNS name): the rebuild knows the list is incomplete.
  let s = head;
  for (const a of ep.aliases) {
    const add = (s === head ? '' : ',') + a;
    if (s.length + add.length + 2 > ALIAS_MAX) break;
    s += add;
  }
  return s + (s === head ? '+' : ',+');
}

export type Mark =
  | { kind: 'plain' }
  | { kind: 'net'; id: string; name: string; isDefault: boolean; internal: boolean; icc: boolean }
  | { kind: 'ctr'; id: string; name: string; mode: string }
  | { kind: 'dev'; networkId: string; role: string }
  | { kind: 'ep'; containerId: string; ifname: string; staticIp: boolean; aliases: string[]; truncated: boolean };

const ID = '[0-9a-f]{64}';

/** What the mark of `owner` in `alias` says; null when the alias is not this owner's mark (or is malformed). */
export function parseMark(alias: string | null | undefined, owner: string): Mark | null {
  if (!ownedBy(alias, owner)) return null;
  const rest = alias!.slice(owner.length + 1);
  if (alias === owner) return { kind: 'plain' };
  let m = new RegExp(`^net (${ID}) ([dix]+|-) (\\S{1,64})$`).exec(rest);
  if (m) return { kind: 'net', id: m[1], name: m[3], isDefault: m[2].includes('d'), internal: m[2].includes('i'), icc: !m[2].includes('x') };
  m = new RegExp(`^dev (${ID}) ([a-z0-9]{1,16})$`).exec(rest);
  if (m) return { kind: 'dev', networkId: m[1], role: m[2] };
  m = new RegExp(`^ctr (${ID}) (bridge|none) (\\S{1,64})$`).exec(rest);
  if (m) return { kind: 'ctr', id: m[1], mode: m[2], name: m[3] };
  m = new RegExp(`^ep (${ID}) (\\S{1,15}) ([s-]) (\\S*)$`).exec(rest);
  if (m) {
    const aliases = m[4] ? m[4].split(',') : [];
    const truncated = aliases[aliases.length - 1] === '+';
    if (truncated) aliases.pop();
    return { kind: 'ep', containerId: m[1], ifname: m[2], staticIp: m[3] === 's', aliases, truncated };
  }
  return null;
}
