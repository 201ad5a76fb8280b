// Docker-shaped views of nsnet's records (what `inspect` prints), so scripts written for Docker carry over.
import crypto from 'node:crypto';
import { driverOf, hasDriver } from '../drivers/registry.js';
import type { ContainerRecord, EndpointRecord, NetworkRecord, PortMapping } from '../types.js';
import { parsePrefix } from '../util/addr.js';
import { netnsPath } from '../kernel/netns.js';

export function endpointId(containerId: string, networkId: string): string {
  return crypto.createHash('sha256').update(`${containerId}/${networkId}`).digest('hex');
}

/** Prefix length of a subnet ('' or null: 0). */
function bitsOf(subnet: string | null | undefined): number {
  return subnet ? parsePrefix(subnet).bits : 0;
}

export function networkView(n: NetworkRecord, eps: EndpointRecord[]): Record<string, unknown> {
  const prefix = bitsOf(n.subnet);
  const prefix6 = bitsOf(n.subnet6);
  const containers: Record<string, unknown> = {};
  for (const e of eps) {
    containers[e.containerId] = {
      Name: e.containerName, EndpointID: endpointId(e.containerId, n.id), MacAddress: e.mac,
      IPv4Address: e.ip ? `${e.ip}/${prefix}` : '', IPv6Address: e.ip6 ? `${e.ip6}/${prefix6}` : '',
    };
  }
  // One entry per family, IPv4 first (Docker's order).
  const config: Array<Record<string, string>> = [];
  if (n.subnet) config.push({ Subnet: n.subnet, Gateway: n.gateway, ...(n.ipRange ? { IPRange: n.ipRange } : {}) });
  if (n.subnet6) config.push({ Subnet: n.subnet6, Gateway: n.gateway6 ?? '', ...(n.ipRange6 ? { IPRange: n.ipRange6 } : {}) });
  return {
    Name: n.name, Id: n.id, Created: n.created, Scope: scopeOf(n.driver), Driver: n.driver, EnableIPv4: !!n.subnet, EnableIPv6: !!n.enableIPv6,
    IPAM: { Driver: 'default', Options: {}, Config: config },
    Internal: n.internal, Attachable: false, Ingress: false, ConfigFrom: { Network: '' }, ConfigOnly: false,
    Containers: containers,
    Options: {
      'com.docker.network.bridge.name': n.bridge,
      'com.docker.network.bridge.enable_icc': String(n.icc),
      'com.docker.network.driver.mtu': String(n.mtu),
      ...(n.isDefault ? { 'com.docker.network.bridge.default_bridge': 'true' } : {}),
      ...(n.options.masquerade !== undefined ? { 'com.docker.network.bridge.enable_ip_masquerade': n.options.masquerade } : {}),
      ...(n.options.host_binding_ipv4 !== undefined ? { 'com.docker.network.bridge.host_binding_ipv4': n.options.host_binding_ipv4 } : {}),
      ...(n.options.gateway_mode_ipv6 !== undefined ? { 'com.docker.network.bridge.gateway_mode_ipv6': n.options.gateway_mode_ipv6 } : {}),
      // Options nsnet does not know, kept as given (as Docker's).
      ...Object.fromEntries(Object.entries(n.options).filter(([k]) => !['bridge.name', 'mtu', 'icc', 'masquerade', 'host_binding_ipv4', 'gateway_mode_ipv6'].includes(k) && !k.startsWith('nsnet.'))),
    },
    Labels: n.labels,
  };
}

/** The pseudo networks Docker always lists. */
export function pseudoNetworkView(name: 'host' | 'none'): Record<string, unknown> {
  return {
    Name: name, Id: crypto.createHash('sha256').update(`nsnet-pseudo-${name}`).digest('hex'), Created: '', Scope: 'local',
    Driver: name === 'host' ? 'host' : 'null', EnableIPv6: false, IPAM: { Driver: 'default', Options: {}, Config: [] },
    Internal: false, Attachable: false, Ingress: false, ConfigFrom: { Network: '' }, ConfigOnly: false,
    Containers: {}, Options: {}, Labels: {},
  };
}

export function portKey(p: PortMapping, i: number): string {
  return `${p.containerPort + i}/${p.proto}`;
}

/** The families a container's ports are published in (its first non-internal endpoint's addresses). */
export interface PortFamilies { v4: boolean; v6: boolean }

/** Docker's Ports map: "8080/tcp": [{HostIp, HostPort}]. A port without a host address is listed once per family
 *  it is published in, as Docker 27+ does: `0.0.0.0` and, on a network with IPv6, `::`. */
export function portsView(ports: PortMapping[], fam: PortFamilies = { v4: true, v6: false }): Record<string, Array<{ HostIp: string; HostPort: string }>> {
  const out: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  for (const p of ports) {
    const ips = p.hostIp ? [p.hostIp] : [...(fam.v4 || !fam.v6 ? ['0.0.0.0'] : []), ...(fam.v6 ? ['::'] : [])];
    for (let i = 0; i <= p.containerPortEnd - p.containerPort; i++) {
      for (const ip of ips) (out[portKey(p, i)] ??= []).push({ HostIp: ip, HostPort: String(p.hostPort + i) });
    }
  }
  return out;
}

/** The families of the endpoint that carries a container's published ports (see engine/firewall.ts portsOf). */
export function portFamilies(eps: EndpointRecord[], nets: Map<string, NetworkRecord>): PortFamilies {
  const ep = eps.find((e) => nets.has(e.networkId) && !nets.get(e.networkId)!.internal);
  return ep ? { v4: ep.ip !== '', v6: !!ep.ip6 } : { v4: true, v6: false };
}

/** An attachment of a stopped container (its endpoint released): what Docker shows for it, no address. */
export interface ReleasedView { networkId: string; aliases: string[]; ip: string | null; ip6?: string | null }

export function containerView(c: ContainerRecord, eps: EndpointRecord[], nets: Map<string, NetworkRecord>, ownerNetns: string, released: ReleasedView[] = []): Record<string, unknown> {
  const networks: Record<string, unknown> = {};
  for (const r of released) {
    const n = nets.get(r.networkId);
    if (!n) continue;
    networks[n.name] = {
      IPAMConfig: r.ip || r.ip6 ? { ...(r.ip ? { IPv4Address: r.ip } : {}), ...(r.ip6 ? { IPv6Address: r.ip6 } : {}) } : null,
      Aliases: n.isDefault ? null : [...r.aliases, c.id.slice(0, 12)],
      NetworkID: n.id, EndpointID: '', Gateway: '', IPAddress: '', IPPrefixLen: 0, IPv6Gateway: '', GlobalIPv6Address: '',
      GlobalIPv6PrefixLen: 0, MacAddress: '',
    };
  }
  for (const e of eps) {
    const n = nets.get(e.networkId);
    if (!n) continue;
    networks[n.name] = {
      IPAMConfig: e.staticIp || e.staticIp6 ? { ...(e.staticIp ? { IPv4Address: e.ip } : {}), ...(e.staticIp6 && e.ip6 ? { IPv6Address: e.ip6 } : {}) } : null,
      Aliases: n.isDefault ? null : [...e.aliases, c.id.slice(0, 12)],
      NetworkID: n.id, EndpointID: endpointId(c.id, n.id), Gateway: n.gateway, IPAddress: e.ip,
      IPPrefixLen: bitsOf(n.subnet), IPv6Gateway: e.ip6 ? n.gateway6 ?? '' : '', GlobalIPv6Address: e.ip6 ?? '',
      GlobalIPv6PrefixLen: e.ip6 ? bitsOf(n.subnet6) : 0, MacAddress: e.mac, InterfaceName: e.ifname, HostInterface: e.hostIf,
    };
  }
  if (c.mode === 'host') networks.host = { NetworkID: pseudoNetworkView('host').Id, IPAddress: '', Gateway: '', MacAddress: '' };
  if (c.mode === 'none') networks.none = { NetworkID: pseudoNetworkView('none').Id, IPAddress: '', Gateway: '', MacAddress: '' };
  const def = eps.find((e) => nets.get(e.networkId)?.isDefault);
  const defNet = def ? nets.get(def.networkId) : undefined;
  const networkMode = c.mode === 'container' ? `container:${c.modeTarget}` : c.mode === 'bridge' ? (nets.get(eps[0]?.networkId ?? '')?.name ?? 'bridge') : c.mode;
  const portBindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  for (const [k, v] of Object.entries(portsView(c.ports))) portBindings[k] = v.map((b) => ({ HostIp: b.HostIp === '0.0.0.0' ? '' : b.HostIp, HostPort: b.HostPort }));
  return {
    Id: c.id, Created: c.created, Path: c.command[0], Args: c.command.slice(1),
    State: {
      Status: c.state, Running: c.state === 'running', Pid: c.pid ?? 0, ExitCode: c.exitCode ?? 0,
      StartedAt: c.started ?? '0001-01-01T00:00:00Z', FinishedAt: c.finished ?? '0001-01-01T00:00:00Z',
    },
    Name: '/' + c.name,
    HostConfig: { NetworkMode: networkMode, PortBindings: portBindings, AutoRemove: c.autoRemove, Dns: c.dns },
    NetworkSettings: {
      SandboxKey: ownerNetns ? netnsPath(ownerNetns) : '',
      // Bindings exist only while it runs (Docker's); HostConfig.PortBindings keeps what was asked for.
      Ports: c.state === 'running' ? portsView(c.ports, portFamilies(eps, nets)) : {},
      IPAddress: def?.ip ?? '', IPPrefixLen: defNet ? bitsOf(defNet.subnet) : 0,
      Gateway: defNet?.gateway ?? '', GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0, IPv6Gateway: '', MacAddress: def?.mac ?? '',
      Networks: networks,
    },
  };
}

/** Docker's Scope of a network: "local", or "swarm" for one that spans the hosts of a cluster (overlay). */
export function scopeOf(driver: string): string {
  return hasDriver(driver) && driverOf(driver).scope === 'cluster' ? 'swarm' : 'local';
}
