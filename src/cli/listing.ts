// Docker-shaped rows of `ps` and `network ls`: the fields (Go "methods" of Docker's formatter contexts) that
// `--format` templates use, their table headers, their default tables, and Docker's filters.
import type { ContainerRecord, EndpointRecord, NetworkRecord } from '../types.js';
import { portsView, scopeOf } from '../engine/views.js';
import { UserError } from '../util/errors.js';
import type { ListFormat } from './template.js';

/** Docker's units.HumanDuration (go-units), which `ps` uses for CREATED and STATUS. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.floor(ms / 60000);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.floor(ms / 3600000 + 0.5);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(ms / 3600000 / 24 / 365)} years`;
}

/** Go's time.Time.String() in UTC, as Docker's CreatedAt: "2021-03-01 10:00:00 +0000 UTC". */
export function goTime(iso: string): string {
  if (!iso) return '';
  return new Date(iso).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' +0000 UTC');
}

/** What nsnet puts in IMAGE: there are no images (commands run from the host's filesystem). */
export const NO_IMAGE = '-';

export function containerStatus(c: ContainerRecord, now = Date.now()): string {
  if (c.state === 'running') return `Up ${humanDuration(now - Date.parse(c.started ?? c.created))}`;
  if (c.state === 'exited') return `Exited (${c.exitCode ?? 0}) ${humanDuration(now - Date.parse(c.finished ?? c.created))} ago`;
  return 'Created';
}

/** Docker's PORTS column: "0.0.0.0:8080->80/tcp, 0.0.0.0:8000-8001->80-81/tcp" (a range is one entry). */
export function portsColumn(c: ContainerRecord): string {
  if (c.state !== 'running') return ''; // Docker shows no bindings for a container that is not running
  return c.ports.map((p) => {
    const hp = p.hostPortEnd > p.hostPort ? `${p.hostPort}-${p.hostPortEnd}` : String(p.hostPort);
    const cp = p.containerPortEnd > p.containerPort ? `${p.containerPort}-${p.containerPortEnd}` : String(p.containerPort);
    return `${p.hostIp || '0.0.0.0'}:${hp}->${cp}/${p.proto}`;
  }).join(', ');
}

function ellipsis(s: string, n: number): string {
  const cs = [...s];
  return cs.length <= n ? s : cs.slice(0, n - 1).join('') + '…';
}

const labelsColumn = (l: Record<string, string>) => Object.entries(l).map(([k, v]) => `${k}=${v}`).join(',');

export interface PsInput {
  c: ContainerRecord;
  eps: EndpointRecord[];
  nets: Map<string, NetworkRecord>;
  labels: Record<string, string>;
}

export const PS_FORMAT: ListFormat = {
  defaultTable: '{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}',
  headers: {
    ID: 'CONTAINER ID', Image: 'IMAGE', Command: 'COMMAND', CreatedAt: 'CREATED AT', RunningFor: 'CREATED', Ports: 'PORTS',
    Status: 'STATUS', Size: 'SIZE', Names: 'NAMES', Labels: 'LABELS', Label: 'LABEL', Mounts: 'MOUNTS',
    LocalVolumes: 'LOCAL VOLUMES', Networks: 'NETWORKS', State: 'STATE',
  },
};

function networksColumn(x: PsInput): string {
  if (x.c.mode === 'bridge') return x.eps.map((e) => x.nets.get(e.networkId)?.name ?? '?').sort().join(',');
  if (x.c.mode === 'container') return '';
  return x.c.mode;
}

/** A ps row: the template fields (Label is a method: {{.Label "key"}}) and its JSON (Docker's `{{json .}}` of the
 *  row: every field a string, keys sorted). */
export function psRow(x: PsInput, trunc: boolean, now = Date.now()): { row: Record<string, unknown>; json: Record<string, string> } {
  const { c } = x;
  const cmd = c.command.join(' ');
  const json: Record<string, string> = {
    Command: JSON.stringify(trunc ? ellipsis(cmd, 20) : cmd),
    CreatedAt: goTime(c.created),
    ID: trunc ? c.id.slice(0, 12) : c.id,
    Image: NO_IMAGE,
    Labels: '', // (below: computed when read)
    LocalVolumes: '0',
    Mounts: '',
    Names: c.name,
    Networks: networksColumn(x),
    Ports: portsColumn(c),
    RunningFor: `${humanDuration(now - Date.parse(c.created))} ago`,
    Size: '0B',
    State: c.state,
    Status: containerStatus(c, now),
  };
  // Labels come from each container's config.json: read only by the formats and filters that use them.
  Object.defineProperty(json, 'Labels', { get: () => labelsColumn(x.labels), enumerable: true });
  const row = Object.defineProperties({}, Object.getOwnPropertyDescriptors(json)) as Record<string, unknown>;
  row.Label = (k: unknown) => x.labels[String(k)] ?? '';
  return { row, json };
}

export const NETWORK_FORMAT: ListFormat = {
  defaultTable: '{{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}',
  headers: {
    ID: 'NETWORK ID', Name: 'NAME', Driver: 'DRIVER', Scope: 'SCOPE', IPv6: 'IPV6', Internal: 'INTERNAL', Labels: 'LABELS',
    Label: 'LABEL', CreatedAt: 'CREATED AT',
  },
};

export interface NetInput { id: string; name: string; driver: string; internal: boolean; labels: Record<string, string>; created: string; builtin: boolean }

export function networkRow(n: NetInput, trunc: boolean): { row: Record<string, unknown>; json: Record<string, string> } {
  const json: Record<string, string> = {
    CreatedAt: n.created ? goTime(n.created) : '', Driver: n.driver, ID: trunc ? n.id.slice(0, 12) : n.id, IPv6: 'false',
    Internal: String(n.internal), Labels: labelsColumn(n.labels), Name: n.name, Scope: scopeOf(n.driver),
  };
  return { row: { ...json, Label: (k: unknown) => n.labels[String(k)] ?? '' }, json };
}

// ---------------------------------------------------------------- filters
export type Filters = Map<string, string[]>;

/** Parses `--filter key=value` (repeatable) against the keys a command knows. Docker: the same key given twice
 *  matches either value; different keys must all match. */
export function parseFilters(list: string[], known: string[]): Filters {
  const f: Filters = new Map();
  for (const item of list) {
    const i = item.indexOf('=');
    if (i <= 0) throw new UserError(`bad format of filter (expected name=value): ${item}`, 'invalid');
    const k = item.slice(0, i).trim().toLowerCase();
    const v = item.slice(i + 1);
    if (!known.includes(k)) throw new UserError(`invalid filter '${k}'`, 'invalid');
    f.set(k, [...(f.get(k) ?? []), v]);
  }
  return f;
}

/** Docker's label filter: "key" (present) or "key=value". */
function labelMatch(labels: Record<string, string>, spec: string): boolean {
  const i = spec.indexOf('=');
  if (i < 0) return Object.prototype.hasOwnProperty.call(labels, spec);
  return labels[spec.slice(0, i)] === spec.slice(i + 1);
}

/** Docker matches name= as a regular expression (unanchored) on the name. */
function nameMatch(name: string, spec: string): boolean {
  try {
    return new RegExp(spec).test(name) || new RegExp(spec).test('/' + name);
  } catch {
    throw new UserError(`invalid filter name=${spec}: not a valid regular expression`, 'invalid');
  }
}

const STATUSES = ['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead'];

export function psFilter(f: Filters, x: PsInput): boolean {
  const any = (k: string, fn: (v: string) => boolean) => !f.has(k) || f.get(k)!.some(fn);
  return any('name', (v) => nameMatch(x.c.name, v))
    && any('id', (v) => x.c.id.startsWith(v))
    && (f.get('label') ?? []).every((v) => labelMatch(x.labels, v))
    && any('status', (v) => {
      if (!STATUSES.includes(v)) throw new UserError(`invalid filter 'status=${v}'`, 'invalid');
      return x.c.state === v;
    })
    && any('network', (v) => x.eps.some((e) => { const n = x.nets.get(e.networkId); return !!n && (n.name === v || n.id.startsWith(v)); }) || (v === x.c.mode && x.c.mode !== 'bridge'))
    && any('publish', (v) => {
      const [port, proto = 'tcp'] = v.split('/');
      const [a, b = a] = port.split('-').map(Number);
      return x.c.state === 'running' && x.c.ports.some((p) => p.proto === proto && p.hostPort <= a && b <= p.hostPortEnd);
    })
    && any('expose', (v) => {
      const [port, proto = 'tcp'] = v.split('/');
      const [a, b = a] = port.split('-').map(Number);
      return Object.keys(portsView(x.c.ports)).some((k) => { const [cp, pr] = k.split('/'); return pr === proto && Number(cp) >= a && Number(cp) <= b; });
    })
    && any('exited', (v) => x.c.state === 'exited' && String(x.c.exitCode ?? 0) === v);
}

export const PS_FILTERS = ['name', 'id', 'label', 'status', 'network', 'publish', 'expose', 'exited'];
export const NETWORK_FILTERS = ['name', 'id', 'driver', 'label', 'type', 'scope'];

export function networkFilter(f: Filters, n: NetInput): boolean {
  const any = (k: string, fn: (v: string) => boolean) => !f.has(k) || f.get(k)!.some(fn);
  return any('name', (v) => n.name.includes(v)) // Docker: substring match for network names
    && any('id', (v) => n.id.startsWith(v))
    && any('driver', (v) => n.driver === v)
    && (f.get('label') ?? []).every((v) => labelMatch(n.labels, v))
    && any('scope', (v) => v === 'local')
    && any('type', (v) => {
      if (v !== 'custom' && v !== 'builtin') throw new UserError(`invalid filter: 'type'='${v}'`, 'invalid');
      return (v === 'builtin') === n.builtin;
    });
}
