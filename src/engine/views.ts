// Docker-shaped views of nsnet's records (what `inspect` prints), so scripts written for Docker carry over.
import crypto from 'node:crypto';
import type { ContainerRecord, EndpointRecord, NetworkRecord, PortMapping } from '../types.js';
import { parsePrefix } from '../util/addr.js';
import { netnsPath } from '../kernel/netns.js';

export function endpointId(containerId: string, networkId: string): string {
  return crypto.createHash('sha256').update(`${containerId}/${networkId}`).digest('hex');
}

export function networkView(n: NetworkRecord, eps: EndpointRecord[]): Record<string, unknown> {
  const prefix = parsePrefix(n.subnet).bits;
  const containers: Record<string, unknown> = {};
  for (const e of eps) {
    containers[e.containerId] = {
      Name: e.containerName, EndpointID: endpointId(e.containerId, n.id), MacAddress: e.mac,
      IPv4Address: `${e.ip}/${prefix}`, IPv6Address: '',
    };
  }
  const cfg: Record<string, string> = { Subnet: n.subnet, Gateway: n.gateway };
  if (n.ipRange) cfg.IPRange = n.ipRange;
  return {
    Name: n.name, Id: n.id, Created: n.created, Scope: 'local', Driver: n.driver, EnableIPv6: false,
    IPAM: { Driver: 'default', Options: {}, Config: [cfg] },
    Internal: n.internal, Attachable: false, Ingress: false, ConfigFrom: { Network: '' }, ConfigOnly: false,
    Containers: containers,
    Options: {
      'com.docker.network.bridge.name': n.bridge,
      'com.docker.network.bridge.enable_icc': String(n.icc),
      'com.docker.network.driver.mtu': String(n.mtu),
      ...(n.isDefault ? { 'com.docker.network.bridge.default_bridge': 'true' } : {}),
      ...(n.options.masquerade !== undefined ? { 'com.docker.network.bridge.enable_ip_masquerade': n.options.masquerade } : {}),
      ...(n.options.host_binding_ipv4 !== undefined ? { 'com.docker.network.bridge.host_binding_ipv4': n.options.host_binding_ipv4 } : {}),
      // Options nsnet does not know, kept as given (as Docker's).
      ...Object.fromEntries(Object.entries(n.options).filter(([k]) => !['bridge.name', 'mtu', 'icc', 'masquerade', 'host_binding_ipv4'].includes(k) && !k.startsWith('nsnet.'))),
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

/** Docker's Ports map: "8080/tcp": [{HostIp, HostPort}] */
export function portsView(ports: PortMapping[]): Record<string, Array<{ HostIp: string; HostPort: string }>> {
  const out: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  for (const p of ports) {
    for (let i = 0; i <= p.containerPortEnd - p.containerPort; i++) {
      (out[portKey(p, i)] ??= []).push({ HostIp: p.hostIp || '0.0.0.0', HostPort: String(p.hostPort + i) });
    }
  }
  return out;
}

/** An attachment of a stopped container (its endpoint released): what Docker shows for it, no address. */
export interface ReleasedView { networkId: string; aliases: string[]; ip: string | null }

export function containerView(c: ContainerRecord, eps: EndpointRecord[], nets: Map<string, NetworkRecord>, ownerNetns: string, released: ReleasedView[] = []): Record<string, unknown> {
  const networks: Record<string, unknown> = {};
  for (const r of released) {
    const n = nets.get(r.networkId);
    if (!n) continue;
    networks[n.name] = {
      IPAMConfig: r.ip ? { IPv4Address: r.ip } : null, Aliases: n.isDefault ? null : [...r.aliases, c.id.slice(0, 12)],
      NetworkID: n.id, EndpointID: '', Gateway: '', IPAddress: '', IPPrefixLen: 0, MacAddress: '',
    };
  }
  for (const e of eps) {
    const n = nets.get(e.networkId);
    if (!n) continue;
    networks[n.name] = {
      IPAMConfig: e.staticIp ? { IPv4Address: e.ip } : null,
      Aliases: n.isDefault ? null : [...e.aliases, c.id.slice(0, 12)],
      NetworkID: n.id, EndpointID: endpointId(c.id, n.id), Gateway: n.gateway, IPAddress: e.ip,
      IPPrefixLen: parsePrefix(n.subnet).bits, MacAddress: e.mac, InterfaceName: e.ifname, HostInterface: e.hostIf,
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
      Ports: c.state === 'running' ? portsView(c.ports) : {},
      IPAddress: def?.ip ?? '', IPPrefixLen: defNet ? parsePrefix(defNet.subnet).bits : 0,
      Gateway: defNet?.gateway ?? '', MacAddress: def?.mac ?? '',
      Networks: networks,
    },
  };
}
