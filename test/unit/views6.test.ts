// Unit test of the Docker-shaped views for IPv6 (issue #13): network inspect's EnableIPv6 and IPAM.Config per
// family, the endpoints' IPv6Address; container inspect's GlobalIPv6Address, GlobalIPv6PrefixLen, IPv6Gateway.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { containerView, networkView } from '../../src/engine/views.js';
import type { ContainerRecord, EndpointRecord, NetworkRecord } from '../../src/types.js';

const base: NetworkRecord = {
  id: 'n'.repeat(64), name: 'dual', driver: 'bridge', bridge: 'nsbr-1', subnet: '10.60.0.0/24', gateway: '10.60.0.1', ipRange: null,
  enableIPv6: true, subnet6: 'fd00:60::/64', gateway6: 'fd00:60::1', ipRange6: 'fd00:60::/80', internal: false, icc: true, mtu: 1500,
  isDefault: false, labels: {}, options: { gateway_mode_ipv6: 'routed' }, created: 't',
};
const ep: EndpointRecord = {
  containerId: 'c'.repeat(64), containerName: 'a', networkId: base.id, ifname: 'eth0', hostIf: 'nsv1', ip: '10.60.0.2', ip6: 'fd00:60::10',
  mac: '02:42:0a:3c:00:02', aliases: [], staticIp: false, staticIp6: true,
};
const ctr: ContainerRecord = {
  id: ep.containerId, name: 'a', mode: 'bridge', modeTarget: null, netns: 'x', command: ['sleep'], ports: [], dns: [], autoRemove: false,
  state: 'created', pid: null, pidStart: null, exitCode: null, created: 't', started: null, finished: null, used: false,
};

test('network inspect: EnableIPv6, one IPAM entry per family (IPv4 first), IPv6Address of endpoints, gateway_mode_ipv6', () => {
  const v = networkView(base, [ep]) as any;
  assert.equal(v.EnableIPv6, true);
  assert.deepEqual(v.IPAM.Config, [{ Subnet: '10.60.0.0/24', Gateway: '10.60.0.1' }, { Subnet: 'fd00:60::/64', Gateway: 'fd00:60::1', IPRange: 'fd00:60::/80' }]);
  assert.equal(v.Containers[ep.containerId].IPv6Address, 'fd00:60::10/64');
  assert.equal(v.Containers[ep.containerId].IPv4Address, '10.60.0.2/24');
  assert.equal(v.Options['com.docker.network.bridge.gateway_mode_ipv6'], 'routed');
  const six = networkView({ ...base, subnet: '', gateway: '' }, [{ ...ep, ip: '' }]) as any;
  assert.deepEqual(six.IPAM.Config.map((c: any) => c.Subnet), ['fd00:60::/64']);
  assert.equal(six.Containers[ep.containerId].IPv4Address, '');
  const v4 = networkView({ ...base, enableIPv6: false, subnet6: null, gateway6: null, ipRange6: null }, [{ ...ep, ip6: null }]) as any;
  assert.equal(v4.EnableIPv6, false);
  assert.equal(v4.IPAM.Config.length, 1);
  assert.equal(v4.Containers[ep.containerId].IPv6Address, '');
});

test('container inspect: GlobalIPv6Address, GlobalIPv6PrefixLen, IPv6Gateway per endpoint; IPAMConfig names --ip6', () => {
  const v = containerView(ctr, [ep], new Map([[base.id, base]]), 'x') as any;
  const n = v.NetworkSettings.Networks.dual;
  assert.equal(n.GlobalIPv6Address, 'fd00:60::10');
  assert.equal(n.GlobalIPv6PrefixLen, 64);
  assert.equal(n.IPv6Gateway, 'fd00:60::1');
  assert.deepEqual(n.IPAMConfig, { IPv6Address: 'fd00:60::10' });
  const v4 = containerView(ctr, [{ ...ep, ip6: null, staticIp6: false }], new Map([[base.id, { ...base, subnet6: null, gateway6: null }]]), 'x') as any;
  assert.equal(v4.NetworkSettings.Networks.dual.GlobalIPv6Address, '');
  assert.equal(v4.NetworkSettings.Networks.dual.IPv6Gateway, '');
  assert.equal(v4.NetworkSettings.Networks.dual.IPAMConfig, null);
});

test('Ports: a port without a host address is listed per family it is published in (0.0.0.0, ::), as Docker 27+', () => {
  const p = { hostIp: '', hostPort: 8080, hostPortEnd: 8080, containerPort: 80, containerPortEnd: 80, proto: 'tcp' as const };
  const v = containerView({ ...ctr, state: 'running', ports: [p, { ...p, hostIp: '2001:db8::1', hostPort: 8082, hostPortEnd: 8082 }] }, [ep], new Map([[base.id, base]]), 'x') as any;
  assert.deepEqual(v.NetworkSettings.Ports['80/tcp'], [{ HostIp: '0.0.0.0', HostPort: '8080' }, { HostIp: '::', HostPort: '8080' }, { HostIp: '2001:db8::1', HostPort: '8082' }]);
  assert.deepEqual(v.HostConfig.PortBindings['80/tcp'][0], { HostIp: '', HostPort: '8080' }, 'what was asked for is unchanged');
  const six = containerView({ ...ctr, state: 'running', ports: [p] }, [{ ...ep, ip: '' }], new Map([[base.id, { ...base, subnet: '', gateway: '' }]]), 'x') as any;
  assert.deepEqual(six.NetworkSettings.Ports['80/tcp'], [{ HostIp: '::', HostPort: '8080' }], 'IPv6-only: :: only');
});
