// The graph of a host (src/graph/): the model from a snapshot, and every rendering of it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildGraph, type Snapshot } from '../../src/graph/model.js';
import { render, renderDot, renderHtml, renderMermaid, renderSvg } from '../../src/graph/render.js';
import type { ContainerRecord, NetworkRecord } from '../../src/types.js';

const net = (id: string, name: string, bridge: string, subnet: string, gateway: string, extra: Partial<NetworkRecord> = {}): NetworkRecord => ({
  id, name, driver: 'bridge', bridge, subnet, gateway, ipRange: null, internal: false, icc: true, mtu: 1500, isDefault: false, labels: {}, options: {}, created: '', ...extra,
});
const ctr = (id: string, name: string, extra: Partial<ContainerRecord> = {}): ContainerRecord => ({
  id, name, mode: 'bridge', modeTarget: null, netns: `ns-${name}`, command: ['sleep', '1'], ports: [], dns: [], autoRemove: false, state: 'running',
  pid: 1, pidStart: '1', exitCode: null, created: '', started: '', finished: null, used: true, ...extra,
});

function snapshot(differences: Snapshot['differences'] = []): Snapshot {
  return {
    networks: [net('n1', 'oa-net', 'nsbr-1', '172.18.0.0/16', '172.18.0.1'), net('n2', 'back', 'nsbr-2', '172.19.0.0/16', '172.19.0.1', { internal: true })],
    containers: [
      { ...ctr('c1', 'web', { ports: [{ hostIp: '', hostPort: 8088, hostPortEnd: 8088, containerPort: 80, containerPortEnd: 80, proto: 'tcp' }] }),
        endpoints: [
          { containerId: 'c1', containerName: 'web', networkId: 'n1', ifname: 'eth0', hostIf: 'nsv1', ip: '172.18.0.2', mac: '02:42:ac:12:00:02', aliases: ['www'], staticIp: false },
          { containerId: 'c1', containerName: 'web', networkId: 'n2', ifname: 'eth1', hostIf: 'nsv2', ip: '172.19.0.2', mac: '02:42:ac:13:00:02', aliases: [], staticIp: false },
        ],
        dnsNames: { n1: ['web', 'www'], n2: ['web'] } },
      { ...ctr('c2', 'side', { mode: 'container', modeTarget: 'c1', netns: '' }), endpoints: [], dnsNames: {} },
    ],
    differences,
  };
}

test('graph: host, bridges with gateways, containers with interfaces, veths, masquerade, ports, shared netns', () => {
  const g = buildGraph(snapshot());
  assert.deepEqual(g.nodes.map((n) => [n.id, n.kind, n.parent ?? null]), [
    ['host', 'host', null], ['outside', 'outside', null], ['net:n1', 'bridge', 'host'], ['net:n2', 'bridge', 'host'],
    ['ctr:c1', 'container', null], ['ctr:c2', 'container', null], ['ports', 'ports', 'host'],
  ]);
  assert.deepEqual(g.nodes.find((n) => n.id === 'net:n1')!.lines, ['bridge nsbr-1', '172.18.0.1/16', 'network oa-net']);
  assert.deepEqual(g.nodes.find((n) => n.id === 'ctr:c1')!.lines, ['web', 'running', 'eth0 172.18.0.2 02:42:ac:12:00:02', 'eth1 172.19.0.2 02:42:ac:13:00:02', 'DNS: web, www']);
  assert.deepEqual(g.edges.map((e) => [e.kind, e.from, e.to, e.label]), [
    ['masquerade', 'net:n1', 'outside', 'masquerade 172.18.0.0/16'],
    ['veth', 'ctr:c1', 'net:n1', 'eth0 ⇄ nsv1'], ['veth', 'ctr:c1', 'net:n2', 'eth1 ⇄ nsv2'],
    ['publish', 'ports', 'ctr:c1', '0.0.0.0:8088 → 80/tcp'],
    ['shares-netns', 'ctr:c2', 'ctr:c1', 'shares its netns'],
  ], 'the internal network has no masquerade');
  const only = buildGraph({ ...snapshot(), only: ['back'] });
  assert.deepEqual(only.nodes.filter((n) => n.kind === 'bridge').map((n) => n.id), ['net:n2']);
  assert.ok(!only.nodes.some((n) => n.id === 'outside'), 'an internal network alone has no way out');
});

test('graph: differences check reports are drawn on the object they name', () => {
  const g = buildGraph(snapshot([{ kind: 'missing-veth', detail: 'web: nsv2' }, { kind: 'missing-bridge', detail: 'oa-net: nsbr-1' }]));
  assert.equal(g.edges.find((e) => e.id === 'veth:nsv2')!.diff, 'missing-veth: web: nsv2');
  assert.equal(g.edges.find((e) => e.id === 'veth:nsv1')!.diff, undefined);
  assert.equal(g.nodes.find((n) => n.id === 'net:n1')!.diff, 'missing-bridge: oa-net: nsbr-1');
  const svg = renderSvg(g);
  assert.match(svg, /<g class="edge veth diff" data-id="veth:nsv2"/);
  assert.match(svg, /<g class="node bridge diff" data-id="net:n1"/);
  assert.match(renderMermaid(g), /class n2 diff/);
  assert.match(renderDot(g), /"ctr:c1" -> "net:n2" \[label="eth1 ⇄ nsv2", dir=both, color=red, fontcolor=red\]/);
});

test('graph: every format; the page is self-contained and its data cannot end its script', () => {
  const s = snapshot();
  s.containers[0].name = '</script><b>x';
  const g = buildGraph(s);
  const svg = renderSvg(g);
  for (const n of g.nodes) assert.ok(svg.includes(`data-id="${n.id}"`), n.id);
  for (const e of g.edges) assert.ok(svg.includes(`data-id="${e.id.replace(/&/g, '&amp;')}"`), e.id);
  assert.ok(svg.includes('&lt;/script&gt;&lt;b&gt;x'), 'text is escaped');
  const html = renderHtml(g, 'nsnet: test');
  assert.equal(html.match(/<\/script>/g)!.length, 2, 'only the page\'s own two scripts end');
  assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//, 'no network access at view time');
  assert.match(renderMermaid(g), /^flowchart LR\n  subgraph host\["host network namespace"\]/);
  assert.match(renderDot(g), /^digraph nsnet \{/);
  assert.deepEqual(JSON.parse(render(g, 'json')).edges.length, g.edges.length);
});

test('graph: an impairment in force is drawn on its link (label, style, details) in every format', () => {
  const g = buildGraph({ ...snapshot(), impairments: [{ containerId: 'c1', networkId: 'n1', text: 'delay 50ms, loss 1%' }] });
  const veth = g.edges.find((e) => e.id === 'veth:nsv1')!;
  assert.equal(veth.fault, 'delay 50ms, loss 1%');
  assert.equal(veth.label, 'eth0 ⇄ nsv1 ⚠ delay 50ms, loss 1%');
  assert.equal(g.edges.find((e) => e.id === 'veth:nsv2')!.fault, undefined, 'only that link');
  assert.match(renderDot(g), /"ctr:c1" -> "net:n1" \[label="eth0 ⇄ nsv1 ⚠ delay 50ms, loss 1%".*darkorange/);
  assert.match(renderMermaid(g), /linkStyle \d+ stroke:#e80/);
  const html = renderHtml(g);
  assert.match(html, /class="edge veth fault" data-fault="delay 50ms, loss 1%"/);
  assert.match(html, /"Impairment":"delay 50ms, loss 1%"/);
});

test('graph: a partition is drawn as cut edges between its groups, outside the layout', () => {
  const s = snapshot();
  s.containers.push({ ...ctr('c3', 'db'), endpoints: [{ containerId: 'c3', containerName: 'db', networkId: 'n1', ifname: 'eth0', hostIf: 'nsv3', ip: '172.18.0.3', mac: '02:42:ac:12:00:03', aliases: [], staticIp: false }], dnsNames: { n1: ['db'] } });
  const g = buildGraph({ ...s, partitions: [{ networkId: 'n1', groups: [['c1'], ['c3']], oneway: false, text: 'web | (rest) db' }] });
  const cuts = g.edges.filter((e) => e.kind === 'cut');
  assert.deepEqual(cuts.map((e) => [e.from, e.to, e.label]), [['ctr:c1', 'ctr:c3', '✂ web | (rest) db']]);
  assert.deepEqual((g.nodes.find((n) => n.id === 'ctr:c3')!.details as { Partition: unknown }).Partition, { network: 'n1', group: 2, of: 2, oneway: false });
  assert.match(renderDot(g), /"ctr:c1" -> "ctr:c3" \[label="✂ web \| \(rest\) db", style=dashed, arrowhead=tee, constraint=false/);
  assert.match(renderMermaid(g), /-\.-x\|"✂ web \| \(rest\) db"\|/);
  const svg = renderSvg(g);
  assert.match(svg, /<g class="edge cut fault" data-fault="partition: web \| \(rest\) db" data-id="cut:n1:0:1"/);
  // Three groups: a cut between every pair; one-way: one cut, from the first group to the second.
  const three = buildGraph({ ...s, partitions: [{ networkId: 'n1', groups: [['c1'], ['c3'], ['c2']], oneway: false, text: 't' }] });
  assert.equal(three.edges.filter((e) => e.kind === 'cut').length, 3);
  const one = buildGraph({ ...s, partitions: [{ networkId: 'n1', groups: [['c3'], ['c1']], oneway: true, text: 'db -> web' }] });
  assert.deepEqual(one.edges.filter((e) => e.kind === 'cut').map((e) => [e.from, e.to]), [['ctr:c3', 'ctr:c1']]);
});
