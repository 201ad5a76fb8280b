// Shared by the firewall model and evaluator tests: networks and published ports built the way
// test/unit/firewall.test.ts builds its golden scenarios (same ids, so `several` renders several-networks.nft).
import { createHash } from 'node:crypto';
import type { FirewallState } from '../../src/types.js';

export type Net = FirewallState['networks'][number];
export type Port = FirewallState['ports'][number];

/** A 64-hex id derived from a label, as Docker's ids look. */
export function hexId(label: string): string {
  return createHash('sha256').update(label).digest('hex');
}

export function net(name: string, subnet: string, o: Partial<Net> = {}): Net {
  const id = hexId(`net-${name}`);
  const gateway = subnet.replace(/\.0\/\d+$/, '.1');
  return { id, name, bridge: `br-${id.slice(0, 12)}`, subnet, gateway, internal: false, icc: true, ...o };
}

/** `-p [HOSTIP:]HOSTPORT[-END]:CPORT[-END][/proto]` for container `container` at `ip` on network `n`. */
export function port(spec: string, container: string, ip: string, n: Net): Port {
  const m = /^(?:(\d+\.\d+\.\d+\.\d+):)?(\d+)(?:-(\d+))?:(\d+)(?:-(\d+))?(?:\/(tcp|udp))?$/.exec(spec);
  if (!m) throw new Error(`bad spec ${spec}`);
  const hp = Number(m[2]);
  const cp = Number(m[4]);
  return {
    hostIp: m[1] ?? '', hostPort: hp, hostPortEnd: m[3] ? Number(m[3]) : hp, containerPort: cp, containerPortEnd: m[5] ? Number(m[5]) : cp,
    proto: (m[6] as 'tcp' | 'udp' | undefined) ?? 'tcp', containerId: hexId(`ctr-${container}`), containerIp: ip, networkId: n.id,
  };
}

export const bridge = net('bridge', '172.17.0.0/16', { bridge: 'nsnet0' });
export const oa = net('oa-net', '172.18.0.0/16');
export const backend = net('backend', '172.19.0.0/16', { internal: true });
export const quiet = net('quiet', '172.20.0.0/16', { icc: false });
export const tools = net('tools', '10.99.0.0/24');

/** Exactly the `several-networks` golden scenario. */
export const several: FirewallState = {
  networks: [tools, quiet, oa, bridge, backend],
  ports: [
    port('8081:80', 'web2', '10.99.0.2', tools),
    port('8080:80', 'web', '172.18.0.2', oa),
    port('2222:22', 'ssh', '172.17.0.2', bridge),
    port('127.0.0.1:9090:9090', 'metrics', '172.20.0.3', quiet),
    port('53:53/udp', 'dns', '172.17.0.3', bridge),
  ],
};
