// PURE: the typed firewall model -> nft text (native syntax). Each piece has one renderer; the full script, the
// port delta and the table removal are assembled in ruleset.ts. Comments pass through validate.ts's `comment`,
// which refuses anything that could break the quoting or exceeds nft's limit.
import {
  familyKeyword, prefixText,
  type Action, type AddrTarget, type Chain, type IfTarget, type MapKeyPart, type Match, type NamedSet, type Rule, type SetElement,
  type Table, type Value,
} from './model.js';
import { comment } from './validate.js';

const q = (s: string) => `"${s}"`;

function ifTarget(t: IfTarget): string {
  if ('set' in t) return `@${t.set}`;
  return t.names.length === 1 ? q(t.names[0]) : `{ ${t.names.map(q).join(', ')} }`;
}

function addrTarget(t: AddrTarget): string {
  if ('set' in t) return `@${t.set}`;
  if ('prefix' in t) return prefixText(t.prefix);
  return t.addr.addr;
}

const op = (o: '==' | '!='): string => (o === '!=' ? '!= ' : '');

export function renderMatch(m: Match): string {
  switch (m.m) {
    case 'iifname':
    case 'oifname': return `${m.m} ${op(m.op)}${ifTarget(m.target)}`;
    case 'saddr':
    case 'daddr': return `${familyKeyword(m.family)} ${m.m} ${op(m.op)}${addrTarget(m.target)}`;
    case 'l4proto': return `meta l4proto ${m.protos.length === 1 ? m.protos[0] : `{ ${m.protos.join(', ')} }`}`;
    case 'dport': return `th dport ${m.port}`;
    case 'ct-state': return `ct state ${m.states.join(',')}`;
    case 'ct-status': return `ct status ${m.status}`;
    case 'fib-daddr-local': return 'fib daddr type local';
    case 'ether-type': return `ether type ${m.type}`;
    case 'mark': return `meta mark ${op(m.op)}0x${m.value.toString(16)}`;
    case 'lookup': return `${m.key.map((k) => mapKeyPart(k, familyKeyword(m.family))).join(' . ')} @${m.set}`;
  }
}

function mapKeyPart(p: MapKeyPart, fam: 'ip' | 'ip6'): string {
  return p === 'daddr' ? `${fam} daddr` : p === 'l4proto' ? 'meta l4proto' : 'th dport';
}

export function renderAction(a: Action): string {
  switch (a.a) {
    case 'accept':
    case 'drop':
    case 'return':
    case 'masquerade': return a.a;
    case 'jump': return `jump ${a.chain}`;
    case 'dnat': {
      const to = a.family === 'ipv6' && a.port !== undefined ? `[${a.to.addr}]` : a.to.addr;
      return `dnat ${familyKeyword(a.family)} to ${to}${a.port !== undefined ? `:${a.port}` : ''}`;
    }
    case 'dnat-map': {
      const fam = familyKeyword(a.family);
      return `dnat ${fam} to ${a.key.map((p) => mapKeyPart(p, fam)).join(' . ')} map @${a.map}`;
    }
  }
}

/** One rule as nft writes it: matches, `counter`, the action, its comment. */
export function renderRule(r: Rule): string {
  return [...r.match.map(renderMatch), ...(r.counter ? ['counter'] : []), renderAction(r.action), comment(r.comment)].join(' ');
}

export function renderValue(v: Value): string {
  switch (v.t) {
    case 'ifname': return q(v.name);
    case 'addr': return v.addr.addr;
    case 'prefix': return prefixText(v.prefix);
    case 'proto': return v.proto;
    case 'port': return String(v.port);
  }
}

/** An element's key (what `delete element` names). */
export function renderElementKey(e: SetElement): string {
  return e.key.map(renderValue).join(' . ');
}

/** `KEY comment "..." : VALUE` (the value for maps only). */
export function renderElement(e: SetElement): string {
  const c = e.comment !== undefined ? ` ${comment(e.comment)}` : '';
  const v = e.value ? ` : ${e.value.map(renderValue).join(' . ')}` : '';
  return `${renderElementKey(e)}${c}${v}`;
}

/** A set/map `elements = { ... }` block at the given indent, one element per line; nothing for an empty list. */
export function elementsBlock(items: string[], ind: string): string[] {
  if (!items.length) return [];
  return [`${ind}elements = {`, ...items.map((x, i) => `${ind}\t${x}${i < items.length - 1 ? ',' : ''}`), `${ind}}`];
}

export function renderSet(s: NamedSet): string[] {
  return [
    `\t${s.data ? 'map' : 'set'} ${s.name} {`,
    `\t\ttype ${s.key.join(' . ')}${s.data ? ` : ${s.data.join(' . ')}` : ''}`,
    ...(s.flags?.length ? [`\t\tflags ${s.flags.join(',')}`] : []),
    ...(s.comment !== undefined ? [`\t\t${comment(s.comment)}`] : []),
    ...elementsBlock(s.elements.map(renderElement), '\t\t'),
    '\t}',
  ];
}

export function renderChain(c: Chain): string[] {
  const L = [`\tchain ${c.name} {`];
  if (c.base) {
    const b = c.base;
    L.push(`\t\ttype ${b.type} hook ${b.hook} priority ${b.priority.name ?? String(b.priority.value)}; policy ${b.policy};`);
  }
  if (c.comment !== undefined) L.push(`\t\t${comment(c.comment)}`);
  for (const r of c.rules) L.push(`\t\t${renderRule(r)}`);
  L.push('\t}');
  return L;
}

/** `table FAMILY NAME { ... }`: its comment, then every set and every chain, separated by blank lines. */
export function renderTable(t: Table): string[] {
  const L = [`table ${t.family} ${t.name} {`];
  if (t.comment !== undefined) L.push(`\t${comment(t.comment)}`, '');
  const parts = [...t.sets.map(renderSet), ...t.chains.map(renderChain)];
  parts.forEach((p, i) => {
    L.push(...p);
    if (i < parts.length - 1) L.push('');
  });
  L.push('}');
  return L;
}
