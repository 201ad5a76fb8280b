// The CNI protocol, pure: what a runtime hands a plugin (CNI_* environment, the network configuration on stdin) in
// typed form, and the shapes nsnet answers with (results per spec version, errors, the version result). No I/O, no
// engine: unit-tested without root (test/unit/cni.test.ts). Spec: containernetworking/cni SPEC.md (1.1.0) and
// CONVENTIONS.md (capability arguments).
import { isIPv4 } from '../util/addr.js';

/** Versions this plugin speaks. 0.3.0 is where `interfaces`/`ips[].interface` appeared (the result type nsnet
 *  produces); 0.4.0 added CHECK; 1.0.0 dropped ips[].version; 1.1.0 added GC and STATUS. */
export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];
export const COMMANDS = ['ADD', 'DEL', 'CHECK', 'GC', 'STATUS', 'VERSION'] as const;
export type CniCommand = (typeof COMMANDS)[number];

/** Well-known error codes (SPEC.md "Error"); 100+ are nsnet's own. */
export const CODES = {
  incompatibleVersion: 1,
  unsupportedField: 2,
  unknownContainer: 3,
  invalidEnv: 4,
  io: 5,
  decode: 6,
  invalidConfig: 7,
  tryAgain: 11,
  unavailable: 50,
  unavailableLimited: 51,
  /** CNI_IFNAME already exists in the container, or this attachment exists already. */
  exists: 100,
  /** An address or a host port is taken (by another container, or a socket on the host). */
  conflict: 101,
  /** The request is valid but the state does not allow it (e.g. the address pool is exhausted). */
  refused: 102,
  internal: 999,
} as const;

export class CniError extends Error {
  constructor(readonly code: number, msg: string, readonly details = '') {
    super(msg);
    this.name = 'CniError';
  }
}

/** The error object of SPEC.md, printed on stdout with a non-zero exit. */
export function errorResult(version: string, e: CniError): Record<string, unknown> {
  const out: Record<string, unknown> = { cniVersion: version, code: e.code, msg: e.message };
  if (e.details) out.details = e.details;
  return out;
}

export function versionResult(version: string): Record<string, unknown> {
  return { cniVersion: version, supportedVersions: [...SUPPORTED_VERSIONS] };
}

export function isSupported(v: unknown): v is CniVersion {
  return typeof v === 'string' && (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

/** a.b.c compared numerically: <0, 0, >0. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) - (pb[i] ?? 0);
  return 0;
}

// ---------------------------------------------------------------- environment

export interface CniEnv {
  command: CniCommand;
  containerId: string;
  netns: string;
  ifname: string;
  /** CNI_ARGS as key/value pairs (e.g. K8S_POD_NAME, IP, MAC, IgnoreUnknown). */
  args: Record<string, string>;
  path: string;
}

const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** Which variables each command needs (SPEC.md section 2). */
const REQUIRED: Record<CniCommand, Array<'CNI_CONTAINERID' | 'CNI_NETNS' | 'CNI_IFNAME'>> = {
  ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
  CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME'],
  GC: [],
  STATUS: [],
  VERSION: [],
};

/** Interface names as the kernel takes them: 1-15 bytes, no '/', ':' or whitespace, not '.' or '..'. */
function validIfname(s: string): boolean {
  return Buffer.byteLength(s) >= 1 && Buffer.byteLength(s) <= 15 && !/[/:\s]/.test(s) && s !== '.' && s !== '..';
}

export function parseEnv(env: Record<string, string | undefined>): CniEnv {
  const cmd = env.CNI_COMMAND ?? '';
  if (!(COMMANDS as readonly string[]).includes(cmd)) {
    throw new CniError(CODES.invalidEnv, `invalid CNI_COMMAND ${JSON.stringify(cmd)}`, `CNI_COMMAND must be one of ${COMMANDS.join(', ')}`);
  }
  const command = cmd as CniCommand;
  // Commands without an attachment ignore the attachment's variables: libcni's VERSION probe sets them to "dummy".
  if (!REQUIRED[command].length && command !== 'DEL') return { command, containerId: '', netns: '', ifname: '', args: {}, path: env.CNI_PATH ?? '' };
  const bad: string[] = [];
  for (const k of REQUIRED[command]) if (!env[k]) bad.push(k);
  if (bad.length) throw new CniError(CODES.invalidEnv, `missing environment variable(s) ${bad.join(', ')}`, `${command} needs ${REQUIRED[command].join(', ')}`);
  const containerId = env.CNI_CONTAINERID ?? '';
  const ifname = env.CNI_IFNAME ?? '';
  if (containerId && (!CONTAINER_ID.test(containerId) || containerId.length > 256)) {
    throw new CniError(CODES.invalidEnv, 'invalid CNI_CONTAINERID', 'it must start with an alphanumeric character, followed by alphanumerics, "_", "." or "-"');
  }
  if (ifname && !validIfname(ifname)) throw new CniError(CODES.invalidEnv, `invalid CNI_IFNAME ${JSON.stringify(ifname)}`, 'an interface name is 1-15 bytes without "/", ":" or whitespace');
  const netns = env.CNI_NETNS ?? '';
  if (netns && !netns.startsWith('/')) throw new CniError(CODES.invalidEnv, `invalid CNI_NETNS ${JSON.stringify(netns)}`, 'it must be an absolute path to a network namespace');
  return { command, containerId, netns, ifname, args: parseCniArgs(env.CNI_ARGS ?? ''), path: env.CNI_PATH ?? '' };
}

/** "K=V;K2=V2" (SPEC.md: CNI_ARGS). Pairs without '=' are refused unless IgnoreUnknown is set (as libcni's
 *  LoadArgs would: such a pair cannot be meant for anybody). */
export function parseCniArgs(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!s) return out;
  for (const pair of s.split(';')) {
    if (!pair) continue;
    const i = pair.indexOf('=');
    if (i <= 0) throw new CniError(CODES.invalidEnv, `invalid CNI_ARGS pair ${JSON.stringify(pair)}`, 'CNI_ARGS is KEY=VALUE pairs separated by ";"');
    out[pair.slice(0, i)] = pair.slice(i + 1);
  }
  return out;
}

// ---------------------------------------------------------------- network configuration

export interface PortMappingIn {
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
  /** '' = every host address. */
  hostIP: string;
}

export interface NetConf {
  cniVersion: CniVersion;
  name: string;
  type: string;
  /** State directory (else NSNET_ROOT, else the default). */
  root?: string;
  // How the network is created on the first ADD (or what an existing one must match).
  subnet?: string;
  gateway?: string;
  ipRange?: string;
  internal?: boolean;
  icc?: boolean;
  mtu?: number;
  ipMasq?: boolean;
  // runtimeConfig (capability arguments)
  portMappings: PortMappingIn[];
  ips: string[];
  mac?: string;
  dns: { servers: string[]; searches: string[]; options: string[] };
  aliases: string[];
  prevResult?: Record<string, unknown>;
  /** GC: attachments still valid (containerID/ifname pairs); undefined = the key is absent. */
  validAttachments?: Array<{ containerID: string; ifname: string }>;
}

function typeErr(key: string, v: unknown, want: string): CniError {
  return new CniError(CODES.invalidConfig, `invalid network configuration: ${key} must be ${want}`, `${key}: ${JSON.stringify(v)}`);
}
const optStr = (o: Record<string, unknown>, k: string, where = k): string | undefined => {
  const v = o[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw typeErr(where, v, 'a string');
  return v;
};
const optBool = (o: Record<string, unknown>, k: string): boolean | undefined => {
  const v = o[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw typeErr(k, v, 'true or false');
  return v;
};
const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
const strList = (v: unknown, key: string): string[] => {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw typeErr(key, v, 'a list of strings');
  return v as string[];
};

/** Decodes the bytes a runtime wrote on stdin. VERSION needs only cniVersion (and tolerates an empty input). */
export function decodeConfig(raw: Buffer): Record<string, unknown> {
  const text = raw.toString('utf8');
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new CniError(CODES.decode, 'failed to decode the network configuration', (e as Error).message);
  }
  if (!isObj(v)) throw new CniError(CODES.decode, 'failed to decode the network configuration', 'it must be a JSON object');
  return v;
}

/** The configuration's version: supported, or error 1. */
export function configVersion(o: Record<string, unknown>): CniVersion {
  const v = o.cniVersion;
  if (typeof v !== 'string' || v === '') throw new CniError(CODES.incompatibleVersion, 'incompatible CNI version: cniVersion is missing', `supported: ${SUPPORTED_VERSIONS.join(', ')}`);
  if (!isSupported(v)) throw new CniError(CODES.incompatibleVersion, `incompatible CNI version ${JSON.stringify(v)}`, `supported: ${SUPPORTED_VERSIONS.join(', ')}`);
  return v;
}

const NET_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** The plugin's configuration with its runtimeConfig, validated (error 7 or 2 naming the key). */
export function parseConfig(o: Record<string, unknown>, env: Pick<CniEnv, 'args'>): NetConf {
  const cniVersion = configVersion(o);
  const name = o.name;
  if (typeof name !== 'string' || !NET_NAME.test(name) || name.length > 128) {
    throw new CniError(CODES.invalidConfig, 'invalid network configuration: name', `name must start with an alphanumeric character, followed by alphanumerics, "_", "." or "-" (got ${JSON.stringify(name)})`);
  }
  const type = optStr(o, 'type') ?? '';
  const mtu = o.mtu;
  if (mtu !== undefined && mtu !== null && (typeof mtu !== 'number' || !Number.isInteger(mtu) || mtu < 68 || mtu > 65535)) throw typeErr('mtu', mtu, 'an integer from 68 to 65535');
  if (o.ipv6 !== undefined && o.ipv6 !== null && o.ipv6 !== false) {
    throw new CniError(CODES.unsupportedField, `unsupported field ipv6=${JSON.stringify(o.ipv6)}`, 'nsnet networks are IPv4-only');
  }
  const internal = optBool(o, 'internal');
  const ipMasq = optBool(o, 'ipMasq');
  // nsnet masquerades every non-internal network and nothing else: the two keys must agree.
  if (ipMasq === false && internal !== true) throw new CniError(CODES.unsupportedField, 'unsupported field ipMasq=false', 'a non-internal nsnet network always masquerades; set "internal": true for a network without a way out');
  if (ipMasq === true && internal === true) throw new CniError(CODES.unsupportedField, 'unsupported field ipMasq=true', 'an internal network has no masquerade');
  const rc = o.runtimeConfig ?? {};
  if (!isObj(rc)) throw typeErr('runtimeConfig', rc, 'an object');
  const conf: NetConf = {
    cniVersion, name, type, root: optStr(o, 'root'), subnet: optStr(o, 'subnet'), gateway: optStr(o, 'gateway'),
    ipRange: optStr(o, 'ipRange'), internal, icc: optBool(o, 'icc'), mtu: (mtu ?? undefined) as number | undefined, ipMasq,
    portMappings: parsePortMappings(rc.portMappings), ips: parseIps(rc.ips, env.args.IP),
    mac: parseMac(rc.mac ?? env.args.MAC), dns: parseDns(rc.dns), aliases: parseAliases(rc.aliases, name),
  };
  if (conf.root === '') throw typeErr('root', '', 'a non-empty path');
  if (o.prevResult !== undefined && o.prevResult !== null) {
    if (!isObj(o.prevResult)) throw typeErr('prevResult', o.prevResult, 'an object');
    conf.prevResult = o.prevResult;
  }
  const va = o['cni.dev/valid-attachments'] ?? o['cni.dev/attachments'];
  if (va !== undefined) {
    if (!Array.isArray(va) || va.some((a) => !isObj(a) || typeof a.containerID !== 'string' || typeof a.ifname !== 'string')) {
      throw typeErr('cni.dev/valid-attachments', va, 'a list of {containerID, ifname}');
    }
    conf.validAttachments = va as NetConf['validAttachments'];
  }
  return conf;
}

export function parsePortMappings(v: unknown): PortMappingIn[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw typeErr('runtimeConfig.portMappings', v, 'a list');
  const out: PortMappingIn[] = [];
  for (const m of v) {
    if (!isObj(m)) throw typeErr('runtimeConfig.portMappings[]', m, 'an object');
    const port = (k: string) => {
      const p = m[k];
      if (typeof p !== 'number' || !Number.isInteger(p) || p < 1 || p > 65535) throw typeErr(`runtimeConfig.portMappings[].${k}`, p, 'a port number (1-65535)');
      return p;
    };
    const proto = (m.protocol ?? 'tcp') as unknown;
    if (typeof proto !== 'string' || !['tcp', 'udp'].includes(proto.toLowerCase())) {
      throw new CniError(CODES.unsupportedField, `unsupported field runtimeConfig.portMappings[].protocol=${JSON.stringify(proto)}`, 'tcp or udp');
    }
    let hostIP = (m.hostIP ?? '') as unknown;
    if (typeof hostIP !== 'string') throw typeErr('runtimeConfig.portMappings[].hostIP', hostIP, 'a string');
    if (hostIP === '0.0.0.0') hostIP = '';
    if (hostIP !== '' && !isIPv4(hostIP as string)) {
      throw new CniError(CODES.unsupportedField, `unsupported field runtimeConfig.portMappings[].hostIP=${JSON.stringify(hostIP)}`, 'an IPv4 address of the host, or empty for all of them');
    }
    out.push({ hostPort: port('hostPort'), containerPort: port('containerPort'), protocol: proto.toLowerCase() as 'tcp' | 'udp', hostIP: hostIP as string });
  }
  return out;
}

/** Static addresses: runtimeConfig.ips (CONVENTIONS), else CNI_ARGS IP (the older form, what Podman sends for
 *  one address). "a.b.c.d" or "a.b.c.d/prefix"; nsnet gives one IPv4 address per attachment. */
export function parseIps(v: unknown, argIp: string | undefined): string[] {
  const list = v === undefined || v === null ? (argIp ? argIp.split(',') : []) : strList(v, 'runtimeConfig.ips');
  if (list.length > 1) throw new CniError(CODES.unsupportedField, `unsupported field runtimeConfig.ips=${JSON.stringify(list)}`, 'nsnet gives one IPv4 address per attachment');
  for (const ip of list) {
    const [addr, prefix] = ip.split('/');
    if (!isIPv4(addr) || (prefix !== undefined && !/^\d{1,2}$/.test(prefix))) {
      if (addr.includes(':')) throw new CniError(CODES.unsupportedField, `unsupported field ips=${JSON.stringify(ip)}`, 'nsnet networks are IPv4-only');
      throw typeErr('runtimeConfig.ips[]', ip, 'an IPv4 address, optionally with /prefix');
    }
  }
  return list;
}

export function parseMac(v: unknown): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string' || !/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(v)) throw typeErr('runtimeConfig.mac', v, 'a MAC address aa:bb:cc:dd:ee:ff');
  const first = parseInt(v.slice(0, 2), 16);
  if (first & 1) throw typeErr('runtimeConfig.mac', v, 'a unicast MAC address (lowest bit of the first byte clear)');
  return v.toLowerCase();
}

export function parseDns(v: unknown): NetConf['dns'] {
  if (v === undefined || v === null) return { servers: [], searches: [], options: [] };
  if (!isObj(v)) throw typeErr('runtimeConfig.dns', v, 'an object {servers, searches, options}');
  const servers = strList(v.servers, 'runtimeConfig.dns.servers');
  for (const s of servers) if (!isIPv4(s)) throw typeErr('runtimeConfig.dns.servers[]', s, 'an IPv4 address');
  return { servers, searches: strList(v.searches, 'runtimeConfig.dns.searches'), options: strList(v.options, 'runtimeConfig.dns.options') };
}

/** Both forms: a list of names (CONVENTIONS.md) or Podman's {network: [names]} (only this network's). */
export function parseAliases(v: unknown, network: string): string[] {
  if (v === undefined || v === null) return [];
  if (Array.isArray(v)) return strList(v, 'runtimeConfig.aliases');
  if (isObj(v)) return strList(v[network], `runtimeConfig.aliases.${network}`);
  throw typeErr('runtimeConfig.aliases', v, 'a list of names or {network: [names]}');
}

// ---------------------------------------------------------------- results

export interface Attachment {
  bridge: { name: string; mac: string; mtu: number };
  host: { name: string; mac: string; mtu: number };
  container: { name: string; mac: string; mtu: number; sandbox: string };
  address: string;
  prefix: number;
  gateway: string;
  defaultRoute: boolean;
  nameservers: string[];
  search: string[];
  options: string[];
}

/** The ADD result for `version`: 0.3.x/0.4.0 carry ips[].version; 1.1.0 interfaces carry their mtu. A prevResult
 *  (nsnet chained after another plugin) is passed through with nsnet's interfaces appended. */
export function addResult(version: CniVersion, a: Attachment, prev?: Record<string, unknown>): Record<string, unknown> {
  const old = compareVersions(version, '1.0.0') < 0;
  const withMtu = compareVersions(version, '1.1.0') >= 0;
  const iface = (i: { name: string; mac: string; mtu: number; sandbox?: string }) => ({
    name: i.name, mac: i.mac, ...(withMtu ? { mtu: i.mtu } : {}), ...(i.sandbox ? { sandbox: i.sandbox } : {}),
  });
  const prevIfs = Array.isArray(prev?.interfaces) ? (prev!.interfaces as unknown[]) : [];
  const interfaces = [...prevIfs, iface(a.bridge), iface(a.host), iface(a.container)];
  const ip: Record<string, unknown> = { ...(old ? { version: '4' } : {}), address: `${a.address}/${a.prefix}`, gateway: a.gateway, interface: prevIfs.length + 2 };
  const ips = [...(Array.isArray(prev?.ips) ? (prev!.ips as unknown[]) : []), ip];
  const routes = [...(Array.isArray(prev?.routes) ? (prev!.routes as unknown[]) : []), ...(a.defaultRoute ? [{ dst: '0.0.0.0/0', gw: a.gateway }] : [])];
  const dns: Record<string, unknown> = {};
  if (a.nameservers.length) dns.nameservers = a.nameservers;
  if (a.search.length) dns.search = a.search;
  if (a.options.length) dns.options = a.options;
  return { cniVersion: version, interfaces, ips, routes, dns };
}
