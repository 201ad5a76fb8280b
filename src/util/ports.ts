// Published ports: Docker's `-p [HOSTIP:][HOSTPORT[-END]:]CPORT[-END][/tcp|udp]`. Pure.
import type { PortMapping, Proto } from '../types.js';
import { UserError, showValue } from './errors.js';
import { Addr, isIPv4 } from './addr.js';

/**
 * A parsed -p spec before ephemeral host ports are chosen. hostPort/hostPortEnd are both null when the host
 * port is to be chosen (`-p 80`, `-p 127.0.0.1::80`, `-p 0:80`); then the chosen block has the container range's length.
 */
export type PortSpec = {
  /** '' = every host address (also what 0.0.0.0 normalizes to). */
  hostIp: string;
  containerPort: number;
  containerPortEnd: number;
  proto: Proto;
} & ({ hostPort: number; hostPortEnd: number } | { hostPort: null; hostPortEnd: null });

const PROTOS: readonly string[] = ['tcp', 'udp'];
const RANGE_RE = /^([0-9]{1,5})(?:-([0-9]{1,5}))?$/;

/**
 * Parses one -p value. Rules follow Docker's (go-connections nat.ParsePortSpec), except:
 * - a host port range with a single container port (Docker: "any one free port of this range") is refused;
 * - an IPv6 host address ([ADDRESS]:HOSTPORT:CPORT) must be one unicast address: [::1] (no route_localnet in
 *   IPv6) and [::] are refused;
 * - sctp is refused (only tcp and udp are published).
 * A host port of exactly `0` means "choose one", as in Docker. The protocol is case-insensitive.
 */
export function parsePortSpec(spec: string): PortSpec {
  const bad = (why: string): never => {
    throw new UserError(`invalid port spec ${showValue(spec)}: ${why}`, 'invalid');
  };
  if (typeof spec !== 'string' || spec === '') return bad('no port specified');
  if (/\s/.test(spec)) return bad('must not contain whitespace');
  // An IPv6 host address is written in brackets: [2001:db8::1]:8080:80 or [2001:db8::1]::80.
  let ip6: string | null = null;
  let rest = spec;
  if (spec.startsWith('[')) {
    const end = spec.indexOf(']');
    if (end < 0 || spec[end + 1] !== ':') return bad('an IPv6 host address is written [ADDRESS]:HOSTPORT:CPORT');
    const inner = spec.slice(1, end);
    const a = Addr.tryParse(inner);
    if (!a || a.family !== 6) return bad(`invalid IPv6 address: ${showValue(inner)}`);
    if (a.isLoopback()) {
      return bad('[::1] cannot be published: IPv6 has no route_localnet, a packet from ::1 never leaves the host\'s loopback (and nsnet has no userland proxy); publish on 127.0.0.1, or on every address');
    }
    if (a.isUnspecified()) return bad('[::] is not supported: publish on every address (both families) with HOSTPORT:CPORT');
    ip6 = a.toString();
    rest = `x${spec.slice(end + 1)}`; // a placeholder host address: the rest parses as HOSTIP:HOSTPORT:CPORT
    if (rest.split(':').length !== 3) return bad('expected [ADDRESS]:HOSTPORT:CPORT');
  } else if (spec.includes('[') || spec.includes(']')) {
    return bad('an IPv6 host address is written [ADDRESS]:HOSTPORT:CPORT');
  }
  if (rest.split(':').length > 3) return bad('too many colons (expected [HOSTIP:][HOSTPORT:]CPORT; an IPv6 host address goes in brackets: [ADDRESS]:HOSTPORT:CPORT)');
  const parts = rest.split(':');
  const cpart = parts[parts.length - 1];
  const hpart = parts.length >= 2 ? parts[parts.length - 2] : '';
  const ipart = parts.length === 3 ? parts[0] : '';

  // container port and protocol
  const slash = cpart.indexOf('/');
  const cports = slash < 0 ? cpart : cpart.slice(0, slash);
  let proto: Proto = 'tcp';
  if (slash >= 0) {
    const p = cpart.slice(slash + 1).toLowerCase();
    if (p === 'sctp') bad('protocol sctp is not supported (only tcp and udp)');
    if (!PROTOS.includes(p)) bad(`invalid proto: ${showValue(cpart.slice(slash + 1))} (expected tcp or udp)`);
    proto = p as Proto;
  }
  if (cports === '') bad('no container port specified');
  const [containerPort, containerPortEnd] = parseRange(cports, 'containerPort', bad);

  // host address
  let hostIp = '';
  if (ip6 !== null) {
    hostIp = ip6;
  } else if (ipart !== '') {
    if (!isIPv4(ipart)) bad(`invalid IP address: ${showValue(ipart)} (expected an IPv4 address of the host)`);
    hostIp = ipart === '0.0.0.0' ? '' : ipart;
  }

  // host port(s)
  const base = { hostIp, containerPort, containerPortEnd, proto };
  if (hpart === '' || hpart === '0') return { ...base, hostPort: null, hostPortEnd: null };
  if (parts.length === 2 && isIPv4(hpart)) {
    bad(`invalid hostPort: ${hpart} (to publish on one host address write ${hpart}::${cpart} or ${hpart}:HOSTPORT:${cpart})`);
  }
  const [hostPort, hostPortEnd] = parseRange(hpart, 'hostPort', bad);
  if (hostPortEnd - hostPort !== containerPortEnd - containerPort) {
    if (containerPort === containerPortEnd) {
      bad(`a host port range needs a container port range of the same length (choosing one free port of a host range is not supported)`);
    }
    bad(`invalid ranges specified for container and host Ports: ${cports} and ${hpart} (they must have the same length)`);
  }
  return { ...base, hostPort, hostPortEnd };
}

function parseRange(s: string, what: string, bad: (why: string) => never): [number, number] {
  const m = RANGE_RE.exec(s);
  if (!m) return bad(`invalid ${what}: ${showValue(s)} (expected a port 1-65535 or a range like 8000-8010)`);
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  if (lo < 1 || lo > 65535 || hi < 1 || hi > 65535) return bad(`invalid ${what}: ${s} (ports are 1-65535)`);
  if (hi < lo) return bad(`invalid ${what}: ${s} (the range ends before it starts)`);
  return [lo, hi];
}

function range(a: number, b: number): string {
  return a === b ? String(a) : `${a}-${b}`;
}

/** The -p spec that parses back to `m`: `[HOSTIP:]HOSTPORT[-END]:CPORT[-END]/proto` (an IPv6 host address in brackets). */
export function formatPortSpec(m: PortMapping): string {
  const ip = m.hostIp.includes(':') ? `[${m.hostIp}]:` : m.hostIp ? `${m.hostIp}:` : '';
  return `${ip}${range(m.hostPort, m.hostPortEnd)}:${range(m.containerPort, m.containerPortEnd)}/${m.proto}`;
}

/** Published ports per container unless NSNET_MAX_PORTS says otherwise. Docker has no cap, but `-p 54-65535`
 *  (65,482 DNAT elements, a 23 MB `inspect`, a socket probe per port) is almost always a typo. */
export const DEFAULT_MAX_PORTS = 1000;

/** The cap in force: NSNET_MAX_PORTS (1..65535) or DEFAULT_MAX_PORTS. A bad value is refused, not ignored. */
export function maxPorts(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.NSNET_MAX_PORTS;
  if (v === undefined || v === '') return DEFAULT_MAX_PORTS;
  if (!/^[0-9]{1,5}$/.test(v) || Number(v) < 1 || Number(v) > 65535) {
    throw new UserError(`invalid NSNET_MAX_PORTS ${showValue(v)}: expected a number of ports from 1 to 65535`, 'invalid');
  }
  return Number(v);
}

/** Refuses a set of -p specs (one container's) that publishes more than `limit` ports in all. Pure. */
export function checkPortCount(specs: Array<{ spec: string; parsed: PortSpec }>, limit: number): void {
  let total = 0;
  for (const { spec, parsed } of specs) {
    const n = parsed.containerPortEnd - parsed.containerPort + 1;
    total += n;
    if (n > limit) {
      throw new UserError(`invalid port spec ${showValue(spec)}: publishes ${n} ports, more than the limit of ${limit} per container (set NSNET_MAX_PORTS to raise it)`, 'invalid');
    }
    if (total > limit) {
      throw new UserError(`too many published ports: ${total} or more, more than the limit of ${limit} per container (set NSNET_MAX_PORTS to raise it)`, 'invalid');
    }
  }
}
