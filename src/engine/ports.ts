// Published ports: parse -p specs, choose ephemeral host ports, refuse conflicts before anything is created.
import type { PortMapping, Proto } from '../types.js';
import { UserError } from '../util/errors.js';
import { checkPortCount, maxPorts, parsePortSpec } from '../util/ports.js';
import type { Host } from './host.js';
import { portFree } from '../kernel/sock.js';
import { readSysctl } from '../kernel/sysctl.js';

function overlaps(a: { hostIp: string; proto: Proto; lo: number; hi: number }, b: { hostIp: string; proto: Proto; lo: number; hi: number }): boolean {
  return a.proto === b.proto && (a.hostIp === '' || b.hostIp === '' || a.hostIp === b.hostIp) && a.lo <= b.hi && b.lo <= a.hi;
}

function ephemeralRange(h: Host): [number, number] {
  try {
    const [lo, hi] = h.inHost(() => readSysctl('net.ipv4.ip_local_port_range')).split(/\s+/).map(Number);
    if (lo > 0 && hi >= lo) return [lo, hi];
  } catch { /* default below */ }
  return [49153, 60999];
}

/** Turns -p specs into mappings with concrete host ports; throws on any conflict. Call under the host lock. */
export function resolvePorts(h: Host, specs: string[]): PortMapping[] {
  const taken: Array<{ hostIp: string; proto: Proto; lo: number; hi: number; who: string }> = [];
  for (const c of h.store.publishedPorts()) {
    // A container whose endpoints were released (stopped, as Docker's) holds no ports.
    if (!h.store.endpointsOf(c.id).length && h.store.savedEndpoints(c.id).length) continue;
    for (const p of c.ports) taken.push({ hostIp: p.hostIp, proto: p.proto, lo: p.hostPort, hi: p.hostPortEnd, who: `container ${c.name}` });
  }
  // A socket bound in the host netns on any port of the range: the port that cannot be bound, or null.
  const conflictsSocket = (m: { hostIp: string; proto: Proto; lo: number; hi: number }) =>
    h.inHost(() => {
      for (let port = m.lo; port <= m.hi; port++) if (!portFree(m.proto, m.hostIp, port)) return { port, proto: m.proto };
      return null;
    });
  const out: PortMapping[] = [];
  let hostAddrs: Set<string> | null = null;
  // Every spec counted before any port is probed (a host range with one container port publishes one port).
  const rangeOne = /^((?:\d{1,3}\.){3}\d{1,3}:)?(\d{1,5})-(\d{1,5}):(\d{1,5})(\/(?:tcp|udp))?$/;
  checkPortCount(specs.filter((s) => !rangeOne.test(s)).map((spec) => ({ spec, parsed: parsePortSpec(spec) })), maxPorts(h.env));
  for (const spec0 of specs) {
    // Docker's -p 8000-8010:80 (a host range, one container port): the first free port of the host range.
    let spec = spec0;
    const any = /^((?:\d{1,3}\.){3}\d{1,3}:)?(\d{1,5})-(\d{1,5}):(\d{1,5})(\/(?:tcp|udp))?$/.exec(spec0);
    if (any && Number(any[3]) > Number(any[2])) {
      const ip = any[1] ? any[1].slice(0, -1) : '';
      const proto = (any[5]?.slice(1) ?? 'tcp') as Proto;
      let free = -1;
      for (let port = Number(any[2]); port <= Number(any[3]) && port <= 65535; port++) {
        const cand = { hostIp: ip, proto, lo: port, hi: port };
        if (taken.some((t) => overlaps(t, cand)) || conflictsSocket(cand)) continue;
        free = port;
        break;
      }
      if (free < 0) throw new UserError(`Bind for ${ip || '0.0.0.0'}:${any[2]}-${any[3]}/${proto} failed: every port of the range is already allocated`, 'conflict');
      spec = `${any[1] ?? ''}${free}:${any[4]}${any[5] ?? ''}`;
    }
    const p = parsePortSpec(spec);
    if (p.hostIp && !p.hostIp.startsWith('127.')) {
      // As Docker's bind would: the address must be one the host has (not multicast, broadcast or foreign).
      hostAddrs ??= new Set(h.nl.addresses().map((a) => a.address));
      if (!hostAddrs.has(p.hostIp)) {
        const shown = p.hostIp.includes(':') ? `[${p.hostIp}]` : p.hostIp;
        throw new UserError(`Bind for ${shown}:${p.hostPort ?? p.containerPort} failed: ${p.hostIp} is not an address of this host`, 'invalid');
      }
    }
    let m: PortMapping;
    if (p.hostPort === null) {
      const [elo, ehi] = ephemeralRange(h);
      const len = p.containerPortEnd - p.containerPort;
      let chosen = -1;
      for (let port = elo; port + len <= ehi; port++) {
        const cand = { hostIp: p.hostIp, proto: p.proto, lo: port, hi: port + len };
        if (taken.some((t) => overlaps(t, cand)) || conflictsSocket(cand)) continue;
        chosen = port;
        break;
      }
      if (chosen < 0) throw new UserError(`no free host port for ${spec} in the ephemeral range ${elo}-${ehi}`, 'conflict');
      m = { hostIp: p.hostIp, hostPort: chosen, hostPortEnd: chosen + len, containerPort: p.containerPort, containerPortEnd: p.containerPortEnd, proto: p.proto };
    } else {
      m = { hostIp: p.hostIp, hostPort: p.hostPort, hostPortEnd: p.hostPortEnd, containerPort: p.containerPort, containerPortEnd: p.containerPortEnd, proto: p.proto };
    }
    const cand = { hostIp: m.hostIp, proto: m.proto, lo: m.hostPort, hi: m.hostPortEnd };
    const t = taken.find((x) => overlaps(x, cand));
    const where = `${m.hostIp.includes(':') ? `[${m.hostIp}]` : m.hostIp || '0.0.0.0'}:${m.hostPort}${m.hostPortEnd !== m.hostPort ? '-' + m.hostPortEnd : ''}/${m.proto}`;
    if (t) throw new UserError(`Bind for ${where} failed: port is already allocated (by ${t.who})`, 'conflict');
    const s = conflictsSocket(cand);
    if (s) throw new UserError(`Bind for ${where} failed: port ${s.port}/${s.proto} is already in use on the host`, 'conflict');
    taken.push({ ...cand, who: 'this container' });
    out.push(m);
  }
  return out;
}
