// PURE: what nsnet knows of a host (networks, containers, their interfaces, published ports, and the differences
// `check` reports) -> a graph of what the blog post draws: the host's netns with its bridges and gateway
// addresses, each container's netns with its interfaces, the veth pairs between them, published ports, the
// outside world with masquerade. Renderers (render.ts) turn it into dot, mermaid, JSON, SVG or a page.
import type { ContainerRecord, EndpointRecord, NetworkRecord, PortMapping } from '../types.js';

export type NodeKind = 'host' | 'bridge' | 'container' | 'outside' | 'ports';
export type EdgeKind = 'veth' | 'masquerade' | 'publish' | 'shares-netns' | 'cut';

export interface GraphNode {
  id: string;
  kind: NodeKind;
  /** Lines of text drawn in the node (the first is its title). */
  lines: string[];
  /** Inside which node it is drawn (the host's netns), if any. */
  parent?: string;
  /** A difference `check` reports about it (drawn as such). */
  diff?: string;
  /** What a click shows: Docker-inspect-like facts. */
  details: Record<string, unknown>;
}

export interface GraphEdge {
  id: string;
  kind: EdgeKind;
  from: string;
  to: string;
  label: string;
  diff?: string;
  /** A fault in force on this link (an impairment: "delay 50ms, loss 1%"), drawn on it. */
  fault?: string;
}

export interface Graph {
  nodes: GraphNode[];
  edges: GraphEdge[];
  /** Every difference `check` reported, as `kind: detail`. */
  differences: string[];
}

export interface Snapshot {
  networks: NetworkRecord[];
  containers: Array<ContainerRecord & { endpoints: EndpointRecord[]; dnsNames: Record<string, string[]> }>;
  differences: Array<{ kind: string; detail: string }>;
  /** Partitions in force (`nsnet partition`): container ids per group ("the rest" included as a group unless
   *  one-way), and the cut in words. */
  partitions?: Array<{ networkId: string; groups: string[][]; oneway: boolean; text: string }>;
  /** Impairments in force, by container and network (`nsnet netem`). */
  impairments?: Array<{ containerId: string; networkId: string; text: string }>;
  /** Only these networks (and what is on them); all when empty. */
  only?: string[];
}

function portText(p: PortMapping): string {
  const host = `${p.hostIp || '0.0.0.0'}:${p.hostPort}${p.hostPortEnd !== p.hostPort ? `-${p.hostPortEnd}` : ''}`;
  const ctr = `${p.containerPort}${p.containerPortEnd !== p.containerPort ? `-${p.containerPortEnd}` : ''}/${p.proto}`;
  return `${host} → ${ctr}`;
}

/** The difference naming `token` (an interface, bridge or namespace name) as a whole word, if any. */
function diffFor(diffs: Snapshot['differences'], tokens: string[], notAbout: string[] = []): string | undefined {
  const word = (t: string) => new RegExp(`(^|[\\s:])${t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}($|[\\s:,])`);
  for (const d of diffs) {
    if (notAbout.some((t) => t && word(t).test(d.detail))) continue;
    for (const t of tokens) {
      if (t && word(t).test(d.detail)) return `${d.kind}: ${d.detail}`;
    }
  }
  return undefined;
}

export function buildGraph(s: Snapshot): Graph {
  const only = s.only?.length ? new Set(s.only) : null;
  const nets = s.networks.filter((n) => !only || only.has(n.name) || only.has(n.id));
  const netIds = new Set(nets.map((n) => n.id));
  const nodes: GraphNode[] = [];
  const edges: GraphEdge[] = [];
  nodes.push({ id: 'host', kind: 'host', lines: ['host network namespace'], details: { kind: 'the host netns (nsnet acts on it as "the host")' } });
  const masq = nets.some((n) => !n.internal);
  if (masq) nodes.push({ id: 'outside', kind: 'outside', lines: ['the outside world', '(the host\'s uplink)'], details: { kind: 'anything routed out of the host' } });
  for (const n of nets) {
    const id = `net:${n.id}`;
    nodes.push({
      id, kind: 'bridge', parent: 'host', diff: diffFor(s.differences, [n.bridge]),
      lines: [`bridge ${n.bridge}`, ...(n.subnet ? [`${n.gateway}/${n.subnet.split('/')[1]}`] : []), ...(n.subnet6 ? [`${n.gateway6}/${n.subnet6.split('/')[1]}`] : []),
        `network ${n.name}${n.internal ? ' (internal)' : ''}${n.icc ? '' : ' (icc=false)'}`],
      details: {
        Name: n.name, Id: n.id, Driver: n.driver, Bridge: n.bridge, Subnet: n.subnet, Gateway: n.gateway, IPRange: n.ipRange,
        ...(n.subnet6 ? { SubnetIPv6: n.subnet6, GatewayIPv6: n.gateway6, IPRangeIPv6: n.ipRange6 ?? null } : {}),
        Internal: n.internal, ICC: n.icc, MTU: n.mtu, Labels: n.labels, Options: n.options,
      },
    });
    if (!n.internal) edges.push({ id: `masq:${n.id}`, kind: 'masquerade', from: id, to: 'outside', label: `masquerade ${[n.subnet, n.options.gateway_mode_ipv6 === 'routed' ? '' : n.subnet6].filter(Boolean).join(' ')}` });
  }
  const byId = new Map(s.containers.map((c) => [c.id, c]));
  const shown = s.containers.filter((c) => !only || c.endpoints.some((e) => netIds.has(e.networkId)) || (c.mode === 'container' && c.modeTarget && byId.get(c.modeTarget)?.endpoints.some((e) => netIds.has(e.networkId))));
  let anyPorts = false;
  for (const c of shown) {
    const id = `ctr:${c.id}`;
    const eps = c.endpoints.filter((e) => netIds.has(e.networkId));
    const lines = [c.name, `${c.state}${c.mode !== 'bridge' ? `, --network ${c.mode === 'container' ? `container:${byId.get(c.modeTarget ?? '')?.name ?? '?'}` : c.mode}` : ''}`];
    for (const e of eps) lines.push(`${e.ifname} ${[e.ip, e.ip6].filter(Boolean).join(' ')} ${e.mac}`);
    const names = Object.values(c.dnsNames).flat();
    if (names.length) lines.push(`DNS: ${[...new Set(names)].join(', ')}`);
    nodes.push({
      // Its own differences (netns, addresses), not those of its veths (drawn on the edges).
      id, kind: 'container', parent: c.mode === 'host' ? 'host' : undefined, diff: diffFor(s.differences, [c.netns, c.name], c.endpoints.map((e) => e.hostIf)),
      lines,
      details: {
        Name: c.name, Id: c.id, State: c.state, NetworkMode: c.mode, SandboxKey: c.netns ? `/run/netns/${c.netns}` : '',
        Command: c.command, Networks: Object.fromEntries(eps.map((e) => [nets.find((n) => n.id === e.networkId)?.name ?? e.networkId, {
          Interface: e.ifname, HostVeth: e.hostIf, IPAddress: e.ip, ...(e.ip6 ? { GlobalIPv6Address: e.ip6 } : {}), MacAddress: e.mac, Aliases: e.aliases, DNSNames: c.dnsNames[e.networkId] ?? [],
        }])),
        Ports: c.ports.map(portText),
      },
    });
    for (const e of eps) {
      const fault = s.impairments?.find((i) => i.containerId === c.id && i.networkId === e.networkId)?.text;
      edges.push({
        id: `veth:${e.hostIf}`, kind: 'veth', from: id, to: `net:${e.networkId}`,
        label: `${e.ifname} ⇄ ${e.hostIf}${fault ? ` ⚠ ${fault}` : ''}`,
        diff: diffFor(s.differences, [e.hostIf]), ...(fault ? { fault } : {}),
      });
    }
    if (c.mode === 'container' && c.modeTarget && byId.has(c.modeTarget)) {
      edges.push({ id: `share:${c.id}`, kind: 'shares-netns', from: id, to: `ctr:${c.modeTarget}`, label: 'shares its netns' });
    }
    if (c.ports.length && eps.length) {
      anyPorts = true;
      for (const p of c.ports) edges.push({ id: `port:${c.id}:${p.proto}:${p.hostIp}:${p.hostPort}`, kind: 'publish', from: 'ports', to: id, label: portText(p) });
    }
  }
  // A partition: a cut edge between each pair of its groups (the first container of each stands for its group;
  // one-way: from the first group to the second only), drawn apart from the layout.
  for (const p of s.partitions ?? []) {
    const firsts = p.groups.map((g) => g.find((id) => byId.has(id) && nodes.some((n) => n.id === `ctr:${id}`)));
    const pairs: Array<[number, number]> = p.oneway ? [[0, 1]] : [];
    if (!p.oneway) for (let i = 0; i < firsts.length; i++) for (let j = i + 1; j < firsts.length; j++) pairs.push([i, j]);
    pairs.forEach(([i, j], k) => {
      const a = firsts[i];
      const b = firsts[j];
      if (!a || !b) return;
      edges.push({
        id: `cut:${p.networkId}:${i}:${j}`, kind: 'cut', from: `ctr:${a}`, to: `ctr:${b}`,
        label: k === 0 ? `✂ ${p.text}` : '✂', fault: `partition: ${p.text}`,
      });
    });
    for (const [gi, g] of p.groups.entries()) {
      for (const id of g) {
        const n = nodes.find((x) => x.id === `ctr:${id}`);
        if (n) n.details = { ...n.details, Partition: { network: p.networkId, group: gi + 1, of: p.groups.length, oneway: p.oneway } };
      }
    }
  }
  if (anyPorts) nodes.push({ id: 'ports', kind: 'ports', parent: 'host', lines: ['published ports', '(DNAT in table inet nsnet)'], details: { kind: 'kernel DNAT of the host\'s addresses to containers' } });
  return { nodes, edges, differences: s.differences.map((d) => `${d.kind}: ${d.detail}`) };
}
