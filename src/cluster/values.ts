// The values stored under the keys of keys.ts: types, JSON encoding, and validation of what is read back. Pure.
//
// Every value is a JSON object with `v` (its schema's version, VALUE_VERSION). A value that does not parse,
// has another version, or lacks a field is reported (ClusterDataError) instead of being half-used: another
// host running a newer nsnet, or a hand-edited key, must not make this one act on guesses.
import { Addr, Prefix } from '../util/addr.js';
import { SEGMENT_RE } from './keys.js';

export const VALUE_VERSION = 1;

export interface HostRecord {
  v: 1;
  host: string;
  /** The underlay address other hosts send VXLAN traffic to. */
  advertise: string;
  /** ms since the epoch: when this host (this lease) joined, and its last heartbeat. */
  joined: number;
  heartbeat: number;
  /** The lease the record (and the host's addresses and endpoints) is bound to, decimal. */
  lease: string;
  labels: Record<string, string>;
}

export interface NetworkRecord {
  v: 1;
  name: string;
  /** 64 hex digits, random: tells a network from a later one of the same name. */
  id: string;
  driver: 'overlay';
  vni: number;
  subnet: string;
  gateway: string;
  subnet6: string | null;
  gateway6: string | null;
  internal: boolean;
  labels: Record<string, string>;
  created: number;
  createdBy: string;
}

export interface NetIndex {
  v: 1;
  /** How many network creates and removes there have been. */
  changes: number;
}

export interface VniRecord {
  v: 1;
  vni: number;
  network: string;
  id: string;
}

export interface AddressRecord {
  v: 1;
  network: string;
  ip: string;
  host: string;
  endpoint: string;
}

export interface EndpointRecord {
  v: 1;
  network: string;
  id: string;
  /** The container's name on the network, and its aliases (DNS). */
  name: string;
  aliases: string[];
  host: string;
  underlay: string;
  mac: string;
  ips: string[];
}

/** A value in etcd that nsnet cannot use. */
export class ClusterDataError extends Error {
  constructor(readonly key: string, why: string) {
    super(`etcd key ${key}: ${why}`);
    this.name = 'ClusterDataError';
  }
}

type Check = (o: Record<string, unknown>, k: string) => string | null;

const str: Check = (o, k) => (typeof o[k] === 'string' ? null : `${k} is not a string`);
const seg: Check = (o, k) => (typeof o[k] === 'string' && SEGMENT_RE.test(o[k] as string) ? null : `${k} is not a name`);
const num: Check = (o, k) => (typeof o[k] === 'number' && Number.isFinite(o[k]) ? null : `${k} is not a number`);
const bool: Check = (o, k) => (typeof o[k] === 'boolean' ? null : `${k} is not a boolean`);
const ip: Check = (o, k) => (Addr.tryParse(o[k]) ? null : `${k} is not an IP address`);
const cidr: Check = (o, k) => (Prefix.tryParse(o[k]) ? null : `${k} is not a CIDR`);
const opt = (c: Check): Check => (o, k) => (o[k] === null || o[k] === undefined ? null : c(o, k));
const ips: Check = (o, k) => (Array.isArray(o[k]) && (o[k] as unknown[]).every((x) => Addr.tryParse(x)) ? null : `${k} is not a list of IP addresses`);
const strs: Check = (o, k) => (Array.isArray(o[k]) && (o[k] as unknown[]).every((x) => typeof x === 'string') ? null : `${k} is not a list of strings`);
const labels: Check = (o, k) => {
  const l = o[k];
  return l && typeof l === 'object' && !Array.isArray(l) && Object.values(l).every((x) => typeof x === 'string') ? null : `${k} is not a map of strings`;
};
const mac: Check = (o, k) => (typeof o[k] === 'string' && /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(o[k] as string) ? null : `${k} is not a MAC address (aa:bb:cc:dd:ee:ff)`);
const vni: Check = (o, k) => (Number.isInteger(o[k]) && (o[k] as number) >= 1 && (o[k] as number) <= 0xffffff ? null : `${k} is not a VNI`);
const lit = (x: unknown): Check => (o, k) => (o[k] === x ? null : `${k} is not ${JSON.stringify(x)}`);

const SCHEMAS = {
  host: { host: seg, advertise: ip, joined: num, heartbeat: num, lease: str, labels },
  network: {
    name: seg, id: str, driver: lit('overlay'), vni, subnet: cidr, gateway: ip, subnet6: opt(cidr), gateway6: opt(ip),
    internal: bool, labels, created: num, createdBy: seg,
  },
  netindex: { changes: num },
  vni: { vni, network: seg, id: str },
  address: { network: seg, ip, host: seg, endpoint: seg },
  endpoint: { network: seg, id: seg, name: str, aliases: strs, host: seg, underlay: ip, mac, ips },
} as const;

export interface Kinds {
  host: HostRecord;
  network: NetworkRecord;
  netindex: NetIndex;
  vni: VniRecord;
  address: AddressRecord;
  endpoint: EndpointRecord;
}

/** Parses and validates the value of `key`, of the given kind. Throws ClusterDataError. */
export function decode<K extends keyof Kinds>(kind: K, key: string, raw: string | Buffer): Kinds[K] {
  let o: unknown;
  try {
    o = JSON.parse(raw.toString());
  } catch {
    throw new ClusterDataError(key, 'the value is not JSON');
  }
  if (!o || typeof o !== 'object' || Array.isArray(o)) throw new ClusterDataError(key, 'the value is not a JSON object');
  const rec = o as Record<string, unknown>;
  if (rec.v !== VALUE_VERSION) {
    throw new ClusterDataError(key, `value version ${JSON.stringify(rec.v)}, this nsnet reads version ${VALUE_VERSION} (a host with another nsnet version?)`);
  }
  for (const [k, check] of Object.entries(SCHEMAS[kind]) as Array<[string, Check]>) {
    const why = check(rec, k);
    if (why) throw new ClusterDataError(key, why);
  }
  return rec as unknown as Kinds[K];
}

/** The JSON text stored for a value (fields in a fixed order, `v` first). */
export function encode<K extends keyof Kinds>(kind: K, value: Omit<Kinds[K], 'v'>): string {
  const o: Record<string, unknown> = { v: VALUE_VERSION };
  const src = value as Record<string, unknown>;
  for (const [k, check] of Object.entries(SCHEMAS[kind]) as Array<[string, Check]>) {
    o[k] = src[k] ?? null;
    const why = check(o, k);
    if (why) throw new Error(`cluster: refusing to store a ${kind} value whose ${why}`);
  }
  return JSON.stringify(o);
}
