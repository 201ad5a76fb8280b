// The key layout of nsnet's cluster state in etcd (v3 API). Pure.
//
// Everything lives under one prefix, by default /nsnet/v1 (the version of the layout: a new, incompatible layout
// gets /nsnet/v2 and both can coexist while hosts are upgraded). Values are JSON objects with a version field
// `v` (the value schema's version, 1 today; values.ts validates them).
//
//   P/hosts/<hostId>                  HostRecord      bound to the host's lease: gone TTL seconds after the host
//                                                     stops renewing it; rewritten every heartbeat
//   P/netindex                        NetIndex        bumped by every network create and remove: each such
//                                                     transaction compares its mod revision, so network changes
//                                                     are serialised cluster-wide (name, VNI and subnet checks
//                                                     are made against one consistent list)
//   P/networks/<name>                 NetworkRecord   an overlay network's definition (no lease: it outlives hosts)
//   P/vni/<vni>                       VniRecord       the VNI's owner, decimal; 4096..16777215 (vni.ts)
//   P/ipam/<network>/<ip>             AddressRecord   one key per allocated address (canonical text), created by a
//                                                     transaction that compares the key's create revision with 0
//                                                     and the network's with the network's own: bound to the
//                                                     allocating host's lease
//   P/endpoints/<network>/<endpoint>  EndpointRecord  (network, endpoint id) -> host, underlay address, container
//                                                     IPs, MAC, name, aliases; bound to the host's lease
//
// Names and ids inside keys are single path segments of [A-Za-z0-9_.-] (no "/": a key never reaches into
// another's range); addresses are their canonical text (dotted quad, RFC 5952), ":" included.
import { UserError, showValue } from '../util/errors.js';
import { Addr } from '../util/addr.js';

export const DEFAULT_PREFIX = '/nsnet/v1';

/** One key segment: a host id, a network name, an endpoint id. */
export const SEGMENT_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const SEGMENT = SEGMENT_RE;

/** A key segment (host id, network name, endpoint id): one clear error when it is not one. */
export function checkSegment(what: string, s: unknown): string {
  if (typeof s !== 'string' || !SEGMENT.test(s)) {
    throw new UserError(`invalid ${what} ${showValue(s)}: expected 1-128 characters of [A-Za-z0-9_.-], starting with a letter or digit`);
  }
  return s;
}

/** The key builder and parser for one prefix. */
export class Keys {
  readonly prefix: string;

  constructor(prefix = DEFAULT_PREFIX) {
    if (!/^\/[A-Za-z0-9_.\-/]*[A-Za-z0-9_.-]$/.test(prefix) || prefix.includes('//')) {
      throw new UserError(`invalid etcd key prefix ${showValue(prefix)}: expected /a/b (no trailing slash)`);
    }
    this.prefix = prefix;
  }

  host(id: string): string {
    return `${this.prefix}/hosts/${checkSegment('host id', id)}`;
  }

  hostsPrefix(): string {
    return `${this.prefix}/hosts/`;
  }

  netIndex(): string {
    return `${this.prefix}/netindex`;
  }

  network(name: string): string {
    return `${this.prefix}/networks/${checkSegment('network name', name)}`;
  }

  networksPrefix(): string {
    return `${this.prefix}/networks/`;
  }

  vni(vni: number): string {
    return `${this.prefix}/vni/${vni}`;
  }

  address(network: string, ip: string): string {
    const a = Addr.tryParse(ip);
    if (!a) throw new UserError(`invalid IP address ${showValue(ip)}`);
    return `${this.addressesPrefix(network)}${a.toString()}`;
  }

  addressesPrefix(network: string): string {
    return `${this.prefix}/ipam/${checkSegment('network name', network)}/`;
  }

  endpoint(network: string, id: string): string {
    return `${this.endpointsPrefix(network)}${checkSegment('endpoint id', id)}`;
  }

  endpointsPrefix(network: string): string {
    return `${this.prefix}/endpoints/${checkSegment('network name', network)}/`;
  }

  /** What a key under the prefix names, or null for a key of no known kind. */
  parse(key: string): ParsedKey | null {
    if (!key.startsWith(`${this.prefix}/`)) return null;
    const parts = key.slice(this.prefix.length + 1).split('/');
    const ok = (s: string | undefined): s is string => s !== undefined && SEGMENT.test(s);
    switch (parts[0]) {
      case 'hosts':
        return parts.length === 2 && ok(parts[1]) ? { kind: 'host', host: parts[1] } : null;
      case 'netindex':
        return parts.length === 1 ? { kind: 'netindex' } : null;
      case 'networks':
        return parts.length === 2 && ok(parts[1]) ? { kind: 'network', network: parts[1] } : null;
      case 'vni': {
        const n = parts.length === 2 && /^[1-9][0-9]{0,7}$/.test(parts[1]) ? Number(parts[1]) : NaN;
        return Number.isInteger(n) ? { kind: 'vni', vni: n } : null;
      }
      case 'ipam': {
        const a = parts.length === 3 && ok(parts[1]) ? Addr.tryParse(parts[2]) : null;
        return a && a.toString() === parts[2] ? { kind: 'address', network: parts[1], ip: parts[2] } : null;
      }
      case 'endpoints':
        return parts.length === 3 && ok(parts[1]) && ok(parts[2]) ? { kind: 'endpoint', network: parts[1], endpoint: parts[2] } : null;
      default:
        return null;
    }
  }
}

export type ParsedKey =
  | { kind: 'host'; host: string }
  | { kind: 'netindex' }
  | { kind: 'network'; network: string }
  | { kind: 'vni'; vni: number }
  | { kind: 'address'; network: string; ip: string }
  | { kind: 'endpoint'; network: string; endpoint: string };

/** The end of the key range that holds every key starting with `prefix` (etcd's range_end: the prefix with
 *  its last byte plus one, bytes 0xff dropped first). */
export function prefixEnd(prefix: string | Buffer): Buffer {
  const b = Buffer.from(prefix);
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i] < 0xff) {
      const out = Buffer.from(b.subarray(0, i + 1));
      out[i]++;
      return out;
    }
  }
  return Buffer.from([0]); // all keys
}
