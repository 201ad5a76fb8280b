// PURE: a topology file (the networking subset of the Compose file format) -> a validated model nsnet can act on.
// No I/O: the caller reads the file and gives the environment (for `environment: [KEY]` entries).
//
// Validation happens in two steps, both before anything is created: a JSON schema of the subset nsnet supports
// (ajv: unknown keys, wrong types, bad enums), then the cross-references (networks, services, depends_on cycles,
// duplicate static addresses, port specs) and each network's address plan: its `ipam.config` entries sorted by
// family (at most one IPv4 and one IPv6, an IPv6 one only with enable_ipv6, an IPv4 one never with
// enable_ipv4: false), planned as `network create` plans them, overlaps between the file's networks, and every
// static ipv4_address/ipv6_address checked against its network's configured subnet. Every error is one line: `FILE:LINE: KEY: what`, where KEY is the
// dotted path of the offending entry (services.web.ports[0]) and LINE its line in the file. Compose keys nsnet
// does not support are errors, never silently dropped; `x-` extension keys are ignored as Compose ignores them,
// except nsnet's own: `x-netem` under a service's network (a link impairment, applied by `up`), and the top-level
// `x-partitions` (network partitions, `nsnet partition`'s semantics, applied by `up`).
import { Ajv, type ErrorObject } from 'ajv';
import { LineCounter, isMap, isPair, isScalar, parseDocument, type Document, type Node as YNode } from 'yaml';
import { UserError } from '../util/errors.js';
import { Prefix, canonicalAddr, isIPv4, isIPv6 } from '../util/addr.js';
import { checkStaticIp, planNetworkIpam, planNetworkIpam6, type IpamPlan } from '../ipam/ipam.js';
import { parsePortSpec } from '../util/ports.js';
import { validateAlias, validateNetworkName } from '../util/validate.js';
import { parseNetemInput, type NetemInput } from '../engine/netem.js';

export interface TopologyNetwork {
  /** The key under `networks:` (also `default`). */
  key: string;
  /** The nsnet network's name: PROJECT_KEY, or `name:` / the external network's name. */
  name: string;
  /** Made elsewhere (`external: true`): used, never created or removed. */
  external: boolean;
  internal: boolean;
  /** `enable_ipv6`: the network also has IPv6 (a /64 of the host's ULA /48 unless an IPv6 subnet is given). */
  enableIPv6: boolean;
  /** `enable_ipv4` (Compose's key, Docker 28): false for an IPv6-only network. Default true. */
  enableIPv4: boolean;
  /** The IPv4 entry of `ipam.config`. */
  subnet?: string;
  gateway?: string;
  ipRange?: string;
  /** The IPv6 entry of `ipam.config` (at most one per family, as Docker's bridge takes). */
  subnet6?: string;
  gateway6?: string;
  ipRange6?: string;
  options: Record<string, string>;
  labels: Record<string, string>;
}

export interface ServiceNetwork {
  key: string;
  aliases: string[];
  ipv4Address?: string;
  /** `ipv6_address`: on a network with enable_ipv6 and an IPv6 subnet in its ipam config. */
  ipv6Address?: string;
  /** `x-netem` of this service on this network (src/engine/netem.ts): `to` names containers or CIDRs (a service
   *  name given in the file is replaced by its containers' names). */
  netem?: NetemInput;
}

export interface Healthcheck {
  /** argv run inside the container (CMD-SHELL becomes /bin/sh -c). */
  test: string[];
  intervalMs: number;
  timeoutMs: number;
  retries: number;
  startPeriodMs: number;
}

export type DependsCondition = 'service_started' | 'service_healthy' | 'service_completed_successfully';

export interface TopologyService {
  name: string;
  replicas: number;
  /** entrypoint + command, as Compose joins them. */
  command: string[];
  environment: Record<string, string>;
  workingDir?: string;
  /** Empty when networkMode is set. */
  networks: ServiceNetwork[];
  networkMode?: { kind: 'host' | 'none' | 'service' | 'container'; target?: string };
  /** nsnet `-p` specs. */
  ports: string[];
  dns: string[];
  dependsOn: Array<{ service: string; condition: DependsCondition }>;
  healthcheck?: Healthcheck;
  labels: Record<string, string>;
  /** `container_name`, for a single replica. */
  containerName?: string;
}

/** One entry of `x-partitions`: `nsnet partition --network NET [--oneway] G1 G2...` with services for containers.
 *  The services of the network not listed are one more group ("the rest"), unless oneway. */
export interface TopologyPartition {
  /** The key under `networks:` (its nsnet name is the TopologyNetwork's). */
  network: string;
  /** Service names per group, as listed (each service stands for all its replicas). */
  groups: string[][];
  /** Exactly two groups: traffic from the first to the second is dropped, nothing else. */
  oneway: boolean;
}

export interface Topology {
  project: string;
  networks: TopologyNetwork[];
  /** In start order (depends_on first). */
  services: TopologyService[];
  /** `x-partitions`: at most one per network, in file order. */
  partitions: TopologyPartition[];
  warnings: string[];
}

/** Labels nsnet puts on what `up` makes, as Compose does: `down` removes exactly those. */
export const PROJECT_LABEL = 'com.docker.compose.project';
export const SERVICE_LABEL = 'com.docker.compose.service';
export const NETWORK_LABEL = 'com.docker.compose.network';

export class TopologyError extends UserError {
  constructor(message: string) {
    super(message, 'invalid');
  }
}

// ---------------------------------------------------------------------------------------------- the schema
const str = { type: 'string' };
const strList = { type: 'array', items: str };
const strOrList = { anyOf: [str, strList] };
const scalar = { type: ['string', 'number', 'boolean', 'null'] };
const mapOrList = { anyOf: [{ type: 'object', additionalProperties: scalar }, strList] };
const duration = { type: 'string' };
const ext = { '^x-': {} };
/** x-netem: the options of `nsnet netem` (without --duration: a topology's impairment lasts until changed). */
const NETEM = {
  type: 'object', additionalProperties: false,
  properties: { delay: str, jitter: str, loss: str, rate: str, duplicate: str, corrupt: str, reorder: str, to: strOrList },
};

/** x-partitions: a list of {network, groups, oneway?}; a group is a list of services (or one service's name). */
const PARTITIONS = {
  type: 'array',
  items: {
    type: 'object', additionalProperties: false, required: ['network', 'groups'],
    properties: { network: str, groups: { type: 'array', items: strOrList }, oneway: { type: 'boolean' } },
  },
};

const SERVICE = {
  type: 'object',
  patternProperties: ext,
  additionalProperties: false,
  properties: {
    image: str,
    command: strOrList,
    entrypoint: strOrList,
    environment: mapOrList,
    working_dir: str,
    container_name: str,
    labels: mapOrList,
    networks: {
      anyOf: [
        strList,
        {
          type: 'object',
          additionalProperties: {
            anyOf: [{ type: 'null' }, {
              type: 'object', additionalProperties: false, patternProperties: ext,
              properties: { aliases: strList, ipv4_address: str, ipv6_address: str, priority: { type: 'integer' }, 'x-netem': NETEM },
            }],
          },
        },
      ],
    },
    ports: {
      type: 'array',
      items: {
        anyOf: [str, { type: 'integer' }, {
          type: 'object', additionalProperties: false, patternProperties: ext, required: ['target'],
          properties: {
            target: { type: 'integer' }, published: { type: ['string', 'integer'] }, host_ip: str,
            protocol: { enum: ['tcp', 'udp'] }, mode: { enum: ['host', 'ingress'] }, name: str, app_protocol: str,
          },
        }],
      },
    },
    network_mode: str,
    dns: strOrList,
    depends_on: {
      anyOf: [strList, {
        type: 'object',
        additionalProperties: {
          type: 'object', additionalProperties: false, patternProperties: ext,
          properties: {
            condition: { enum: ['service_started', 'service_healthy', 'service_completed_successfully'] },
            required: { type: 'boolean' }, restart: { type: 'boolean' },
          },
        },
      }],
    },
    healthcheck: {
      type: 'object', additionalProperties: false, patternProperties: ext,
      properties: {
        test: strOrList, interval: duration, timeout: duration, retries: { type: 'integer', minimum: 0 },
        start_period: duration, start_interval: duration, disable: { type: 'boolean' },
      },
    },
    deploy: { type: 'object', additionalProperties: false, patternProperties: ext, properties: { replicas: { type: 'integer', minimum: 0 } } },
    scale: { type: 'integer', minimum: 0 },
  },
};

const NETWORK = {
  anyOf: [{ type: 'null' }, {
    type: 'object', additionalProperties: false, patternProperties: ext,
    properties: {
      name: str, driver: { enum: ['bridge'] }, internal: { type: 'boolean' }, enable_ipv6: { type: 'boolean' }, enable_ipv4: { type: 'boolean' },
      external: { type: 'boolean' }, attachable: { type: 'boolean' },
      driver_opts: { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean'] } },
      labels: mapOrList,
      ipam: {
        type: 'object', additionalProperties: false, patternProperties: ext,
        properties: {
          driver: { enum: ['default'] },
          config: {
            type: 'array',
            items: { type: 'object', additionalProperties: false, properties: { subnet: str, gateway: str, ip_range: str } },
          },
        },
      },
    },
  }],
};

const SCHEMA = {
  type: 'object',
  required: ['services'],
  patternProperties: ext,
  additionalProperties: false,
  properties: {
    version: { type: ['string', 'number'] },
    name: str,
    services: { type: 'object', additionalProperties: SERVICE },
    networks: { type: 'object', additionalProperties: NETWORK },
    'x-partitions': PARTITIONS,
  },
};

let validator: ReturnType<Ajv['compile']> | null = null;
function validate(data: unknown): ErrorObject[] {
  validator ??= new Ajv({ allErrors: true, strict: false }).compile(SCHEMA);
  return validator(data) ? [] : (validator.errors ?? []);
}

// ---------------------------------------------------------------------------------------------- positions
type PathSeg = string | number;

/** Dotted form of a path: services.web.ports[0]. */
export function keyOf(p: PathSeg[]): string {
  return p.reduce<string>((acc, s) => (typeof s === 'number' ? `${acc}[${s}]` : acc ? `${acc}.${s}` : s), '');
}

class Source {
  constructor(readonly file: string, private doc: Document, private lines: LineCounter) {}

  /** Line of the node at `p` (of its key when `keyOfLast`), else of the nearest ancestor that exists. */
  line(p: PathSeg[], keyOfLast = false): number {
    for (let n = p.length; n >= 0; n--) {
      const parent = n ? this.doc.getIn(p.slice(0, n - 1), true) : this.doc.contents;
      if (n && keyOfLast && n === p.length && isMap(parent)) {
        const pair = parent.items.find((it) => isPair(it) && isScalar(it.key) && String(it.key.value) === String(p[n - 1]));
        const k = pair && isScalar(pair.key) ? pair.key : null;
        if (k?.range) return this.lines.linePos(k.range[0]).line;
      }
      const node = (n ? this.doc.getIn(p.slice(0, n), true) : this.doc.contents) as YNode | null | undefined;
      if (node && (node as { range?: [number, number, number] }).range) return this.lines.linePos((node as { range: [number, number, number] }).range[0]).line;
    }
    return 1;
  }

  error(p: PathSeg[], what: string, keyOfLast = false): TopologyError {
    const where = p.length ? `${keyOf(p)}: ` : '';
    return new TopologyError(`${this.file}:${this.line(p, keyOfLast)}: ${where}${what}`);
  }
}

function ajvMessage(e: ErrorObject): { path: PathSeg[]; what: string; onKey: boolean } {
  const path: PathSeg[] = e.instancePath.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~')).map((s) => (/^\d+$/.test(s) ? Number(s) : s));
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = (e.params as { additionalProperty: string }).additionalProperty;
      return { path: [...path, key], what: 'not supported by nsnet (it takes the networking subset of Compose, and runs host commands, not images)', onKey: true };
    }
    case 'required':
      return { path, what: `missing ${(e.params as { missingProperty: string }).missingProperty}`, onKey: false };
    case 'enum':
      return { path, what: `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`, onKey: false };
    case 'type':
      return { path, what: `must be ${(e.params as { type: string | string[] }).type.toString().replace(/,/g, ' or ')}`, onKey: false };
    default:
      return { path, what: e.message ?? e.keyword, onKey: false };
  }
}

/** The most useful of ajv's errors: anyOf branches produce one per branch; the deepest one says the most. */
function pickError(errors: ErrorObject[]): ErrorObject {
  const score = (e: ErrorObject) => e.instancePath.split('/').length * 10 + (e.keyword === 'additionalProperties' ? 5 : e.keyword === 'anyOf' ? -5 : 0);
  return [...errors].sort((a, b) => score(b) - score(a))[0];
}

// ---------------------------------------------------------------------------------------------- helpers
/** Splits a command string as Compose does (shell-like words and quotes, no expansion). */
export function shellWords(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let any = false;
  let q: '"' | "'" | null = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (q) {
      if (c === q) q = null;
      else if (c === '\\' && q === '"' && i + 1 < s.length && '"\\$`'.includes(s[i + 1])) cur += s[++i];
      else cur += c;
    } else if (c === '"' || c === "'") {
      q = c;
      any = true;
    } else if (c === '\\' && i + 1 < s.length) {
      cur += s[++i];
      any = true;
    } else if (/\s/.test(c)) {
      if (cur || any) out.push(cur);
      cur = '';
      any = false;
    } else {
      cur += c;
    }
  }
  if (q) throw new Error('unterminated quote');
  if (cur || any) out.push(cur);
  return out;
}

/** Compose durations: 1m30s, 10s, 500ms, 2h, 1.5s. */
export function parseDuration(s: string): number | null {
  if (!/^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/.test(s)) return null;
  const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, ms: 1, s: 1000, m: 60000, h: 3600000 };
  let ms = 0;
  for (const m of s.matchAll(/(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)/g)) ms += Number(m[1]) * unit[m[2]];
  return Math.round(ms);
}

function kvOf(v: unknown, env: Record<string, string | undefined>, fromEnv: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  if (Array.isArray(v)) {
    for (const e of v as string[]) {
      const i = e.indexOf('=');
      if (i > 0) out[e.slice(0, i)] = e.slice(i + 1);
      else if (fromEnv && env[e] !== undefined) out[e] = env[e]!;
      else if (!fromEnv) out[e] = '';
    }
  } else if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      if (x === null) {
        if (fromEnv && env[k] !== undefined) out[k] = env[k]!;
        else if (!fromEnv) out[k] = '';
      } else {
        out[k] = String(x);
      }
    }
  }
  return out;
}

/** Compose's project name rule: lowercase letters, digits, dashes and underscores, starting with a letter or digit. */
export function normalizeProject(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9_-]/g, '').replace(/^[^a-z0-9]+/, '');
}

// ---------------------------------------------------------------------------------------------- the loader
export interface LoadOptions {
  /** Shown in errors. */
  file: string;
  /** -p; else the file's `name:`; else `dirName`. */
  project?: string;
  /** Name of the directory the file is in (the default project name). */
  dirName: string;
  /** For `environment: [KEY]` entries without a value. */
  env: Record<string, string | undefined>;
}

export function loadTopology(text: string, o: LoadOptions): Topology {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length) {
    const e = doc.errors[0];
    const line = e.linePos?.[0]?.line ?? 1;
    throw new TopologyError(`${o.file}:${line}: ${e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')}`);
  }
  const src = new Source(o.file, doc, lines);
  const data = doc.toJS({ maxAliasCount: 1000 }) as Record<string, unknown> | null;
  if (!data || typeof data !== 'object' || Array.isArray(data)) throw new TopologyError(`${o.file}:1: a topology file is a mapping with services:`);
  const errors = validate(data);
  if (errors.length) {
    const m = ajvMessage(pickError(errors));
    throw src.error(m.path, m.what, m.onKey);
  }
  const top = data as { name?: string; services: Record<string, Record<string, unknown>>; networks?: Record<string, Record<string, unknown> | null> };
  for (const k of Object.keys(data)) {
    if (k === 'x-netem') throw src.error([k], 'x-netem belongs under a service\'s network: services.S.networks.NET.x-netem: {delay: 50ms, loss: 1%}', true);
  }
  const warnings: string[] = [];
  const rawProject = o.project ?? top.name ?? o.dirName;
  const project = normalizeProject(rawProject);
  if (!project) throw new TopologyError(`${o.file}:1: project name ${JSON.stringify(rawProject)} has no letter or digit: give one with -p`);

  // Networks (the default network is made only if a service is on it, as Compose does).
  const nets = new Map<string, TopologyNetwork>();
  // The address plan of each network's configured subnets (per family), for the static addresses below.
  const plans = new Map<string, NetPlans>();
  for (const [key, raw] of Object.entries(top.networks ?? {})) {
    const n = raw ?? {};
    const p = ['networks', key];
    const name = typeof n.name === 'string' ? n.name : `${project}_${key}`;
    try {
      validateNetworkName(name);
    } catch (e) {
      throw src.error(p, (e as Error).message, true);
    }
    const config = (n.ipam as { config?: RawIpamEntry[] } | undefined)?.config;
    if (n.external && (config || n.internal !== undefined || n.driver_opts || n.enable_ipv6 !== undefined || n.enable_ipv4 !== undefined)) {
      throw src.error(p, 'an external network is used as it is: no ipam, internal, enable_ipv6, enable_ipv4 or driver_opts', true);
    }
    const options = Object.fromEntries(Object.entries((n.driver_opts as Record<string, unknown>) ?? {}).map(([k, v]) => [k, String(v)]));
    const fam = loadFamilies(src, p, n, config ?? [], options);
    plans.set(key, fam.plans);
    nets.set(key, {
      key, name, external: !!n.external, internal: !!n.internal, enableIPv6: fam.enableIPv6, enableIPv4: fam.enableIPv4,
      subnet: fam.v4.subnet, gateway: fam.v4.gateway, ipRange: fam.v4.ip_range,
      subnet6: fam.v6.subnet, gateway6: fam.v6.gateway, ipRange6: fam.v6.ip_range,
      options, labels: kvOf(n.labels, {}, false),
    });
  }
  refuseOverlaps(src, plans);

  const names = Object.keys(top.services);
  const services: TopologyService[] = [];
  for (const [name, s] of Object.entries(top.services)) {
    const p = ['services', name];
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name)) throw src.error(p, 'a service name is letters, digits, _ . - (starting with a letter or digit)', true);
    for (const k of Object.keys(s)) {
      if (k === 'x-netem') throw src.error([...p, k], 'x-netem belongs under the service\'s network: networks: {NET: {x-netem: {delay: 50ms, loss: 1%}}}', true);
    }
    if (s.image !== undefined) warnings.push(`service ${name}: image ${JSON.stringify(s.image)} is ignored: nsnet runs the service's command on the host`);
    const words = (v: unknown, what: string): string[] => {
      if (v === undefined) return [];
      if (Array.isArray(v)) return v as string[];
      try {
        return shellWords(v as string);
      } catch (e) {
        throw src.error([...p, what], (e as Error).message);
      }
    };
    const command = [...words(s.entrypoint, 'entrypoint'), ...words(s.command, 'command')];
    if (!command.length) throw src.error(p, 'command is required: nsnet runs host commands, not images', true);
    const replicas = (s.deploy as { replicas?: number } | undefined)?.replicas ?? (s.scale as number | undefined) ?? 1;
    if (s.deploy && s.scale !== undefined && (s.deploy as { replicas?: number }).replicas !== undefined && (s.deploy as { replicas: number }).replicas !== s.scale) {
      throw src.error([...p, 'scale'], 'scale and deploy.replicas disagree');
    }
    if (s.container_name !== undefined && replicas > 1) throw src.error([...p, 'container_name'], 'a container name is for one replica only');

    let networkMode: TopologyService['networkMode'];
    if (s.network_mode !== undefined) {
      const m = s.network_mode as string;
      if (s.networks !== undefined) throw src.error([...p, 'network_mode'], 'network_mode and networks cannot both be set', true);
      if (m === 'host' || m === 'none') networkMode = { kind: m };
      else if (m.startsWith('service:') && names.includes(m.slice(8))) networkMode = { kind: 'service', target: m.slice(8) };
      else if (m.startsWith('service:')) throw src.error([...p, 'network_mode'], `no service ${JSON.stringify(m.slice(8))}`);
      else if (m.startsWith('container:') && m.length > 10) networkMode = { kind: 'container', target: m.slice(10) };
      else if (m === 'bridge') networkMode = undefined;
      else throw src.error([...p, 'network_mode'], 'must be host, none, bridge, service:NAME or container:NAME');
    }
    const snets: ServiceNetwork[] = [];
    if (!networkMode) {
      const raw = s.networks ?? ['default'];
      const entries: Array<[string, { aliases?: string[]; ipv4_address?: string; ipv6_address?: string; 'x-netem'?: Record<string, string | string[]> } | null, PathSeg[]]> = Array.isArray(raw)
        ? (raw as string[]).map((k, i) => [k, null, [...p, 'networks', i]])
        : Object.entries(raw as Record<string, never>).map(([k, v]) => [k, v, [...p, 'networks', k]]);
      for (const [key, v, np] of entries) {
        if (key === 'default' && !nets.has('default')) {
          nets.set('default', { key: 'default', name: `${project}_default`, external: false, internal: false, enableIPv6: false, enableIPv4: true, options: {}, labels: {} });
          plans.set('default', {});
        }
        if (!nets.has(key)) throw src.error(np, `no network ${JSON.stringify(key)} under networks:`, !Array.isArray(raw));
        const net = nets.get(key)!;
        for (const [k, family] of [['ipv4_address', 4], ['ipv6_address', 6]] as const) {
          const ip = v?.[k];
          if (ip === undefined) continue;
          const at = [...np, k];
          if (family === 4 ? !isIPv4(ip) : !isIPv6(ip)) {
            const hint = family === 4 && ip.includes(':') ? ' (an IPv6 address is given with ipv6_address)' : family === 6 && isIPv4(ip) ? ' (an IPv4 address is given with ipv4_address)' : '';
            throw src.error(at, `not an IPv${family} address: ${JSON.stringify(ip)}${hint}`);
          }
          if (replicas > 1) throw src.error(at, 'a static address is for one replica only');
          if (net.external) continue; // its subnets are not in this file: the engine checks the address
          if (family === 6 && !net.enableIPv6) throw src.error(at, `network ${key} has no IPv6: set enable_ipv6: true on it (networks.${key})`);
          if (family === 4 && !net.enableIPv4) throw src.error(at, `network ${key} has no IPv4 (enable_ipv4: false)`);
          const plan = plans.get(key)![family];
          if (!plan) {
            throw src.error(at, `network ${key} has no IPv${family} subnet in its ipam config: a static address needs one (Docker refuses one on a subnet it chose)`);
          }
          try {
            checkStaticIp(plan, ip, new Set());
          } catch (e) {
            throw src.error(at, (e as Error).message);
          }
        }
        for (const [i, a] of (v?.aliases ?? []).entries()) {
          try {
            validateAlias(a);
          } catch (e) {
            throw src.error([...np, 'aliases', i], (e as Error).message);
          }
        }
        let netem: NetemInput | undefined;
        const xn = v?.['x-netem'];
        if (xn) {
          const to = xn.to === undefined ? [] : Array.isArray(xn.to) ? xn.to : [xn.to];
          netem = { ...(xn as Record<string, string>), to };
          try {
            parseNetemInput(netem);
          } catch (e) {
            throw src.error([...np, 'x-netem'], (e as Error).message, true);
          }
          if (networkMode) throw src.error([...np, 'x-netem'], 'a shared network namespace has no link of its own to impair');
        }
        snets.push({
          key, aliases: v?.aliases ?? [], ipv4Address: v?.ipv4_address,
          ...(v?.ipv6_address !== undefined ? { ipv6Address: v.ipv6_address } : {}), ...(netem ? { netem } : {}),
        });
      }
    }
    const ports: string[] = [];
    for (const [i, x] of ((s.ports as unknown[]) ?? []).entries()) {
      let spec: string;
      if (typeof x === 'object' && x) {
        const l = x as { target: number; published?: string | number; host_ip?: string; protocol?: string };
        const host = l.host_ip ? (l.host_ip.includes(':') ? `[${l.host_ip}]:` : `${l.host_ip}:`) : '';
        spec = `${host}${l.published !== undefined ? `${l.published}:` : host ? ':' : ''}${l.target}/${l.protocol ?? 'tcp'}`;
      } else {
        spec = String(x);
      }
      try {
        parsePortSpec(spec);
      } catch (e) {
        throw src.error([...p, 'ports', i], (e as Error).message);
      }
      if (networkMode?.kind === 'service' || networkMode?.kind === 'container') throw src.error([...p, 'ports', i], 'ports cannot be published with a shared network namespace (network_mode)');
      ports.push(spec);
    }
    const dependsOn: TopologyService['dependsOn'] = [];
    const dep = s.depends_on as string[] | Record<string, { condition?: DependsCondition }> | undefined;
    for (const [d, c] of Array.isArray(dep) ? dep.map((x) => [x, {}] as const) : Object.entries(dep ?? {})) {
      if (!names.includes(d)) throw src.error([...p, 'depends_on', ...(Array.isArray(dep) ? [dep.indexOf(d)] : [d])], `no service ${JSON.stringify(d)}`);
      if (d === name) throw src.error([...p, 'depends_on'], 'a service cannot depend on itself');
      dependsOn.push({ service: d, condition: (c as { condition?: DependsCondition }).condition ?? 'service_started' });
    }
    if (networkMode?.kind === 'service' && !dependsOn.some((d) => d.service === networkMode!.target)) {
      dependsOn.push({ service: networkMode.target!, condition: 'service_started' }); // its netns must exist first
    }
    let healthcheck: Healthcheck | undefined;
    const hc = s.healthcheck as { test?: string | string[]; interval?: string; timeout?: string; retries?: number; start_period?: string; disable?: boolean } | undefined;
    if (hc && !hc.disable && hc.test !== undefined && !(Array.isArray(hc.test) && hc.test[0] === 'NONE')) {
      const t = hc.test;
      let test: string[];
      if (typeof t === 'string') test = ['/bin/sh', '-c', t];
      else if (t[0] === 'CMD-SHELL' && t.length === 2) test = ['/bin/sh', '-c', t[1]];
      else if (t[0] === 'CMD' && t.length > 1) test = t.slice(1);
      else throw src.error([...p, 'healthcheck', 'test'], 'must be a string, [CMD, arg...], [CMD-SHELL, command] or [NONE]');
      const dur = (k: 'interval' | 'timeout' | 'start_period', dflt: number) => {
        if (hc[k] === undefined) return dflt;
        const ms = parseDuration(hc[k]!);
        if (ms === null) throw src.error([...p, 'healthcheck', k], `not a duration: ${JSON.stringify(hc[k])} (e.g. 10s, 1m30s, 500ms)`);
        return ms;
      };
      healthcheck = { test, intervalMs: dur('interval', 30000), timeoutMs: dur('timeout', 30000), retries: hc.retries ?? 3, startPeriodMs: dur('start_period', 0) };
    }
    for (const d of dependsOn) {
      if (d.condition === 'service_healthy' && !healthcheckOf(top.services[d.service])) {
        throw src.error([...p, 'depends_on', d.service], `service ${d.service} has no healthcheck to wait for`);
      }
    }
    const dns = s.dns === undefined ? [] : Array.isArray(s.dns) ? (s.dns as string[]) : [s.dns as string];
    for (const [i, a] of dns.entries()) if (!isIPv4(a)) throw src.error([...p, 'dns', ...(Array.isArray(s.dns) ? [i] : [])], `not an IPv4 address: ${JSON.stringify(a)}`);
    services.push({
      name, replicas, command, environment: kvOf(s.environment, o.env, true), workingDir: s.working_dir as string | undefined,
      networks: snets, networkMode, ports, dns, dependsOn, healthcheck, labels: kvOf(s.labels, {}, false),
      containerName: s.container_name as string | undefined,
    });
  }

  // Duplicate static addresses on one network.
  const taken = new Map<string, string>();
  for (const s of services) {
    for (const n of s.networks) {
      for (const [k, ip] of [['ipv4_address', n.ipv4Address], ['ipv6_address', n.ipv6Address]] as const) {
        if (!ip) continue;
        const id = `${n.key} ${canonicalAddr(ip) ?? ip}`; // fd00::0a and fd00::a are one address
        const other = taken.get(id);
        if (other) throw src.error(['services', s.name, 'networks', n.key, k], `${ip} is already ${other}'s on network ${n.key}`);
        taken.set(id, s.name);
      }
    }
  }
  // x-netem's `to`: a service of the file stands for its containers.
  for (const s of services) {
    for (const n of s.networks) {
      if (n.netem?.to) n.netem.to = n.netem.to.flatMap((t) => {
        const peer = services.find((x) => x.name === t);
        return peer ? containerNames(project, peer) : [t];
      });
    }
  }
  const partitions = loadPartitions(src, (data as { 'x-partitions'?: RawPartition[] })['x-partitions'] ?? [], nets, services);
  return { project, networks: [...nets.values()], services: startOrder(services, src), partitions, warnings };
}

type RawIpamEntry = { subnet?: string; gateway?: string; ip_range?: string };
/** Per family, the plan of the network's configured subnet and the index of its `ipam.config` entry. */
type NetPlans = { 4?: IpamPlan & { entry: number }; 6?: IpamPlan & { entry: number } };

/** A network's families: enable_ipv6, enable_ipv4 and the `ipam.config` entries sorted by family (at most one
 *  each), each planned as `network create` plans it (syntax, gateway and ip_range inside the subnet, prefix
 *  lengths, forbidden blocks), so that a bad subnet is refused before anything is made. */
function loadFamilies(src: Source, p: PathSeg[], n: Record<string, unknown>, config: RawIpamEntry[], options: Record<string, string>) {
  const enableIPv6 = n.enable_ipv6 === true;
  const enableIPv4 = n.enable_ipv4 !== false;
  if (!enableIPv4 && !enableIPv6) {
    throw src.error([...p, 'enable_ipv4'], 'IPv4 and IPv6 cannot both be disabled: an IPv6-only network (enable_ipv4: false) needs enable_ipv6: true');
  }
  const per: { 4: RawIpamEntry; 6: RawIpamEntry } = { 4: {}, 6: {} };
  const at: { 4?: number; 6?: number } = {};
  for (const [i, e] of config.entries()) {
    const ep = [...p, 'ipam', 'config', i];
    const first = (['subnet', 'gateway', 'ip_range'] as const).find((k) => e[k] !== undefined);
    if (!first) throw src.error(ep, 'an empty entry: give its subnet (and gateway, ip_range)');
    const family = e[first]!.includes(':') ? 6 : 4;
    for (const k of ['gateway', 'ip_range'] as const) {
      if (e[k] !== undefined && (e[k]!.includes(':') ? 6 : 4) !== family) {
        throw src.error([...ep, k], `${e[k]} is IPv${10 - family} and the entry's ${first} ${e[first]} IPv${family}: one entry per family, each with its own subnet, gateway and ip_range`);
      }
    }
    const prev = at[family];
    if (prev !== undefined) {
      throw src.error([...ep, first], `a second IPv${family} entry (networks.${p[1]}.ipam.config[${prev}] is one): a network has at most one subnet per family`);
    }
    if (family === 6 && !enableIPv6) throw src.error([...ep, first], `an IPv6 ${first} needs enable_ipv6: true on the network`);
    if (family === 4 && !enableIPv4) throw src.error([...ep, first], `an IPv4 ${first} on a network with enable_ipv4: false`);
    at[family] = i;
    per[family] = e;
  }
  const plans: NetPlans = {};
  for (const family of [4, 6] as const) {
    const e = per[family];
    const i = at[family];
    if (i === undefined) continue;
    try {
      const req = { subnet: e.subnet, gateway: e.gateway, ipRange: e.ip_range };
      // No ULA base is needed: a family given here has a subnet, or the planner refuses its gateway/ip_range.
      plans[family] = { ...(family === 4 ? planNetworkIpam(req, []) : planNetworkIpam6(req, [], '')), entry: i };
    } catch (err) {
      const msg = (err as Error).message;
      const k = /^invalid gateway/.test(msg) ? 'gateway' : /^invalid ip-range/.test(msg) ? 'ip_range' : /^invalid subnet/.test(msg) ? 'subnet' : null;
      throw src.error([...p, 'ipam', 'config', i, ...(k && e[k] !== undefined ? [k] : [])], msg);
    }
  }
  const mode = Object.keys(options).find((k) => k === 'com.docker.network.bridge.gateway_mode_ipv6' || k === 'gateway_mode_ipv6');
  if (mode && !enableIPv6) throw src.error([...p, 'driver_opts', mode], 'needs enable_ipv6: true on the network');
  return { enableIPv6, enableIPv4, v4: per[4], v6: per[6], plans };
}

/** Two networks of the file whose configured subnets overlap: refused before either is made (the engine would
 *  refuse the second one after making the first). */
function refuseOverlaps(src: Source, plans: Map<string, NetPlans>): void {
  const seen: Array<{ key: string; family: 4 | 6; p: Prefix }> = [];
  for (const [key, pl] of plans) {
    for (const family of [4, 6] as const) {
      const plan = pl[family];
      if (!plan) continue;
      const p = Prefix.parse(plan.subnet);
      const other = seen.find((x) => x.family === family && x.p.overlaps(p));
      if (other) throw src.error(['networks', key, 'ipam', 'config', plan.entry, 'subnet'], `${plan.subnet} overlaps network ${other.key}'s subnet ${other.p}`);
      seen.push({ key, family, p });
    }
  }
}

type RawPartition = { network: string; groups: Array<string | string[]>; oneway?: boolean };

/** x-partitions, checked against the file's networks and services as `nsnet partition` checks its arguments. */
function loadPartitions(src: Source, raw: RawPartition[], nets: Map<string, TopologyNetwork>, services: TopologyService[]): TopologyPartition[] {
  const out: TopologyPartition[] = [];
  const byNet = new Map<string, number>();
  for (const [i, x] of raw.entries()) {
    const p: PathSeg[] = ['x-partitions', i];
    const net = nets.get(x.network);
    if (!net) throw src.error([...p, 'network'], `no network ${JSON.stringify(x.network)} under networks:${x.network === 'default' ? ' (no service is on the default network)' : ''}`);
    if (net.external) throw src.error([...p, 'network'], `network ${x.network} is external (not the project's): partition it with nsnet partition`);
    const prev = byNet.get(x.network);
    if (prev !== undefined) throw src.error([...p, 'network'], `network ${x.network} already has a partition (x-partitions[${prev}]): one partition per network`);
    byNet.set(x.network, i);
    if (!x.groups.length) throw src.error([...p, 'groups'], 'give the groups, e.g. groups: [[db1, db2], [db3]] (the services of the network not listed are one more group)');
    const on = services.filter((s) => s.networks.some((n) => n.key === x.network));
    const seen = new Map<string, number>();
    const groups = x.groups.map((g, gi) => {
      const list = Array.isArray(g) ? g : [g];
      if (!list.length) throw src.error([...p, 'groups', gi], `group ${gi + 1} is empty`);
      return list.map((name, si) => {
        const at: PathSeg[] = Array.isArray(g) ? [...p, 'groups', gi, si] : [...p, 'groups', gi];
        const s = services.find((y) => y.name === name);
        if (!s) throw src.error(at, `no service ${JSON.stringify(name)}`);
        const before = seen.get(name);
        if (before !== undefined) {
          throw src.error(at, before === gi ? `service ${name} is listed twice in group ${gi + 1}` : `service ${name} is in two groups (${before + 1} and ${gi + 1}): a service belongs to one group`);
        }
        seen.set(name, gi);
        if (!on.includes(s)) throw src.error(at, `service ${name} is not on network ${x.network}`);
        if (!s.replicas) throw src.error(at, `service ${name} has no replicas: nothing of it to partition`);
        return name;
      });
    });
    const rest = on.filter((s) => s.replicas && !seen.has(s.name));
    if (x.oneway) {
      if (groups.length !== 2) throw src.error([...p, 'oneway'], `a one-way partition has exactly two groups, FROM and TO (traffic FROM -> TO is dropped), not ${groups.length}`);
    } else if (groups.length + (rest.length ? 1 : 0) < 2) {
      throw src.error([...p, 'groups'], `only one group on network ${x.network} (every service of it is listed in it): nothing to cut; give two groups or leave some services out`);
    }
    out.push({ network: x.network, groups, oneway: !!x.oneway });
  }
  return out;
}

function healthcheckOf(s: Record<string, unknown>): boolean {
  const hc = s.healthcheck as { test?: unknown; disable?: boolean } | undefined;
  return !!hc && !hc.disable && hc.test !== undefined && !(Array.isArray(hc.test) && hc.test[0] === 'NONE');
}

/** depends_on order (a topological sort, file order among equals); a cycle is an error naming it. */
function startOrder(services: TopologyService[], src: Source): TopologyService[] {
  const by = new Map(services.map((s) => [s.name, s]));
  const out: TopologyService[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (s: TopologyService, chain: string[]) => {
    const st = state.get(s.name);
    if (st === 'done') return;
    if (st === 'visiting') {
      const cyc = [...chain.slice(chain.indexOf(s.name)), s.name];
      throw src.error(['services', cyc[0], 'depends_on'], `a cycle: ${cyc.join(' -> ')}`);
    }
    state.set(s.name, 'visiting');
    for (const d of s.dependsOn) visit(by.get(d.service)!, [...chain, s.name]);
    state.set(s.name, 'done');
    out.push(s);
  };
  for (const s of services) visit(s, []);
  return out;
}

/** Names of a service's containers: PROJECT-SERVICE-N (N from 1), or its container_name. */
export function containerNames(project: string, s: TopologyService): string[] {
  if (s.containerName) return [s.containerName];
  return Array.from({ length: s.replicas }, (_, i) => `${project}-${s.name}-${i + 1}`);
}
