// Dual-stack IPv6 networks (issue #13), through the CLI, with real TCP and UDP traffic over IPv6: addresses,
// routes and inspect; traffic inside one network and isolation between networks; NAT66 and published ports in
// both families from an "upstream" machine on an IPv6 uplink (2001:db8:1::/64, a documentation prefix, inside the
// test's namespaces only); hairpin; --internal and icc=false; routed mode; DNS (AAAA, NODATA, ip6.arpa); check
// and reconcile of IPv6 addresses and rules; bad input. Each test has its own throwaway host netns.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { REPO, TestHost, must, waitFor, type Result } from '../helpers/host.js';
import { Addr, Prefix, ulaSubnet } from '../../src/util/addr.js';

const WHOAMI = path.join(REPO, 'test/fixtures/whoami6.py');
const DNSQ = path.join(REPO, 'test/fixtures/dnsq.py');
const out = (r: Result) => r.stdout.trim();

/** Connect (TCP or UDP) to ip:port and print what the server answered ('' on failure). Either family. */
function client(ip: string, port: number, proto: 'tcp' | 'udp' = 'tcp', timeout = 0.6): string {
  const fam = ip.includes(':') ? 'socket.AF_INET6' : 'socket.AF_INET';
  const py = proto === 'tcp'
    ? `import socket;s=socket.socket(${fam});s.settimeout(${timeout});s.connect(('${ip}',${port}));print(s.recv(64).decode().strip())`
    : `import socket;s=socket.socket(${fam},socket.SOCK_DGRAM);s.settimeout(${timeout});s.sendto(b'x',('${ip}',${port}));print(s.recv(64).decode().strip())`;
  return `python3 -c "${py}" 2>/dev/null`;
}

/** Like `client`, but says how the connection failed: 'refused', 'timeout' or the answer. */
function probe(ip: string, port: number): string {
  const py = `import socket;s=socket.socket(socket.AF_INET6);s.settimeout(0.6)\ntry:\n  s.connect(('${ip}',${port}));print(s.recv(64).decode().strip())\nexcept ConnectionRefusedError: print('refused')\nexcept OSError: print('timeout')`;
  return `python3 -c "${py}"`;
}

const serve = (port: number) => ['--', 'python3', WHOAMI, String(port)];

/** An IPv6 uplink to the upstream netns (next to the IPv4 one of addUpstream): host 2001:db8:1::1, upstream ::2. */
function addUpstream6(h: TestHost): { ns: string; hostIp: string; hostIp6: string; ip: string; ip6: string } {
  const up = h.addUpstream();
  must(h.sh('ip addr add 2001:db8:1::1/64 dev upl0 nodad'), 'host IPv6 uplink address');
  must(h.shIn(up.ns, 'ip addr add 2001:db8:1::2/64 dev eth0 nodad'), 'upstream IPv6 address');
  return { ...up, hostIp6: '2001:db8:1::1', ip6: '2001:db8:1::2' };
}

function inspect(h: TestHost, ref: string): any {
  return JSON.parse(h.ok(['inspect', ref]))[0];
}

// Each test has its own host netns and state directory: they run side by side (the file's run time bounded).
describe('IPv6 networks', { concurrency: true }, () => {
test('dual-stack and IPv6-only networks: addresses, routes, inspect, traffic within a network, isolation, IPv6 only where asked, check/reconcile', async (t) => {
  const h = TestHost.create('v6net');
  t.after(() => h.cleanup());
  h.ok(['network', 'create', '--ipv6', 'dual']);
  h.ok(['network', 'create', '--ipv6', '--subnet', '10.60.0.0/24', '--subnet', 'fd00:60::/64', '--gateway', 'fd00:60::1', 'dual2']);
  h.ok(['network', 'create', '--ipv6', '--subnet', 'fd00:61::/64', '--ipv4=false', 'v6only']);
  h.ok(['network', 'create', 'plain']);

  // inspect: EnableIPv6 and one IPAM entry per family; the automatic IPv6 subnet is a /64 of a ULA /48, gateway ::1.
  const nd = JSON.parse(h.ok(['network', 'inspect', 'dual']))[0];
  assert.equal(nd.EnableIPv6, true);
  assert.equal(nd.IPAM.Config.length, 2);
  assert.match(nd.IPAM.Config[0].Subnet, /^172\.18\.0\.0\/16$/);
  const [ula, ulaLen] = nd.IPAM.Config[1].Subnet.split('/');
  assert.match(ula, /^fd[0-9a-f]{2}:/, 'a ULA subnet');
  assert.equal(ulaLen, '64');
  assert.equal(nd.IPAM.Config[1].Gateway, ula.replace(/::$/, '::1'));
  const n6 = JSON.parse(h.ok(['network', 'inspect', 'v6only']))[0];
  assert.deepEqual(n6.IPAM.Config, [{ Subnet: 'fd00:61::/64', Gateway: 'fd00:61::1' }], 'IPv6-only: one entry');
  assert.equal(JSON.parse(h.ok(['network', 'inspect', 'plain']))[0].EnableIPv6, false);
  // A second --ipv6 network gets a later /64 of the same /48 (the engine id is kept in the store), never one
  // that overlaps a route of the host: with the next /64 routed on the host, the one after it.
  const base48 = Prefix.from(Addr.parse(ula), 48);
  assert.equal(ulaSubnet(base48, 0).toString(), `${ula}/64`, 'the first /64 of the /48 first');
  must(h.sh(`ip -6 route add ${ulaSubnet(base48, 1)} dev lo`), 'a host route over the next /64');
  h.ok(['network', 'create', '--ipv6', 'dual3']);
  const d3 = JSON.parse(h.ok(['network', 'inspect', 'dual3']))[0].IPAM.Config[1].Subnet;
  assert.equal(d3, ulaSubnet(base48, 2).toString(), 'the /64 after the routed one');
  // The bridge: both gateways; IPv6 forwarding on in the host netns.
  const br = nd.Options['com.docker.network.bridge.name'];
  assert.match(out(h.sh(`ip -6 addr show dev ${br}`)), new RegExp(`${ula}1/64`));
  assert.equal(out(h.sh('cat /proc/sys/net/ipv6/conf/all/forwarding')), '1');

  h.ok(['run', '-d', '--name', 'a', '--network', 'dual2', '--ip6', 'fd00:60::10', ...serve(80)]);
  h.ok(['run', '-d', '--name', 'b', '--network', 'dual2', '--', 'sleep', '300']);
  h.ok(['run', '-d', '--name', 'c', '--network', 'dual', ...serve(80)]);
  h.ok(['run', '-d', '--name', 'd', '--network', 'v6only', ...serve(80)]);
  h.ok(['run', '-d', '--name', 'e', '--network', 'plain', '--', 'sleep', '300']);
  h.ok(['network', 'connect', '--ip6', 'fd00:60::20', 'dual2', 'e']);

  // Addresses: static, then sequential after the gateway; inspect names them as Docker does.
  const na = inspect(h, 'a').NetworkSettings.Networks.dual2;
  assert.equal(na.GlobalIPv6Address, 'fd00:60::10');
  assert.equal(na.GlobalIPv6PrefixLen, 64);
  assert.equal(na.IPv6Gateway, 'fd00:60::1');
  assert.deepEqual(na.IPAMConfig, { IPv6Address: 'fd00:60::10' });
  assert.equal(na.IPAddress, '10.60.0.2');
  assert.equal(na.MacAddress, '02:42:0a:3c:00:02', 'MAC from the IPv4 address');
  const nb = inspect(h, 'b').NetworkSettings.Networks.dual2;
  assert.equal(nb.GlobalIPv6Address, 'fd00:60::2', 'dynamic addresses start at ::2');
  const nd6 = inspect(h, 'd').NetworkSettings.Networks.v6only;
  assert.equal(nd6.IPAddress, '');
  assert.equal(nd6.GlobalIPv6Address, 'fd00:61::2');
  assert.match(nd6.MacAddress, /^[0-9a-f][26ae](:[0-9a-f]{2}){5}$/, 'IPv6-only: a random locally administered MAC');
  const nwi = JSON.parse(h.ok(['network', 'inspect', 'dual2']))[0].Containers;
  assert.ok(Object.values(nwi).some((c: any) => c.IPv6Address === 'fd00:60::10/64' && c.IPv4Address === '10.60.0.2/24'));

  // Inside: default IPv6 route via the gateway, no router advertisement accepted; IPv6 only on IPv6 interfaces.
  assert.match(out(h.exec('b', 'ip -6 route show default')), /^default via fd00:60::1 dev eth0/);
  assert.equal(out(h.exec('b', 'cat /proc/sys/net/ipv6/conf/eth0/accept_ra')), '0');
  assert.equal(out(h.exec('e', 'cat /proc/sys/net/ipv6/conf/eth0/disable_ipv6 /proc/sys/net/ipv6/conf/eth1/disable_ipv6')), '1\n0');
  assert.doesNotMatch(out(h.exec('e', 'ip -6 addr show dev eth0')), /inet6/, 'the IPv4-only interface keeps IPv6 disabled');
  assert.match(out(h.exec('e', 'ip -6 route show default')), /via fd00:60::1 dev eth1/, 'IPv6 default route through the IPv6 network');

  // Traffic over IPv6 inside a network: TCP and UDP, the real address seen.
  assert.equal(await waitFor(() => out(h.exec('b', client('fd00:60::10', 80))), 5000, 100), 'fd00:60::2');
  assert.equal(out(h.exec('b', client('fd00:60::10', 80, 'udp'))), 'fd00:60::2');
  assert.equal(out(h.exec('e', client('fd00:60::10', 80))), 'fd00:60::20', 'connected with --ip6');
  assert.equal(out(h.exec('b', client('10.60.0.2', 80))), '10.60.0.3', 'IPv4 still works on the same network');
  // Isolation between networks, both families.
  const c6 = inspect(h, 'c').NetworkSettings.Networks.dual.GlobalIPv6Address;
  assert.equal(out(h.exec('b', client(c6, 80))), '', 'no IPv6 between networks');
  assert.equal(out(h.exec('b', client(inspect(h, 'c').NetworkSettings.Networks.dual.IPAddress, 80))), '', 'no IPv4 between networks');
  assert.equal(out(h.exec('d', client('fd00:60::10', 80))), '', 'IPv6-only network isolated too');
  assert.equal(out(h.exec('d', client('fd00:60::10', 80, 'udp'))), '', 'UDP isolated too');
  // The host reaches containers directly (as Docker), over IPv6 too.
  assert.equal(out(h.sh(client('fd00:61::2', 80))), 'fd00:61::1');

  // stop releases both addresses, start gives the same ones back (static and dynamic).
  h.ok(['stop', '-t', '0', 'a', 'b']);
  assert.equal(JSON.parse(h.ok(['network', 'inspect', 'dual2']))[0].Containers[inspect(h, 'a').Id], undefined, 'released');
  h.ok(['start', 'a', 'b']);
  assert.equal(inspect(h, 'a').NetworkSettings.Networks.dual2.GlobalIPv6Address, 'fd00:60::10');
  assert.equal(inspect(h, 'b').NetworkSettings.Networks.dual2.GlobalIPv6Address, 'fd00:60::2');
  assert.equal(await waitFor(() => out(h.exec('b', client('fd00:60::10', 80))), 5000, 100), 'fd00:60::2', 'traffic again after start');

  // check is clean; an IPv6 gateway or container address removed by hand is found, and reconcile puts the
  // gateway back.
  assert.equal(h.nsnet(['check']).status, 0, h.nsnet(['check']).stdout);
  must(h.sh(`ip addr del fd00:60::1/64 dev ${JSON.parse(h.ok(['network', 'inspect', 'dual2']))[0].Options['com.docker.network.bridge.name']}`), 'del gw6');
  must(h.shIn(h.netnsName('b'), 'ip addr del fd00:60::2/64 dev eth0'), 'del ip6');
  const diff = h.nsnet(['check']);
  assert.equal(diff.status, 1);
  assert.match(diff.stdout, /missing-gateway.*fd00:60::1/);
  assert.match(diff.stdout, /missing-address.*eth0 fd00:60::2/);
  h.ok(['reconcile']);
  assert.doesNotMatch(h.nsnet(['check']).stdout, /missing-gateway/, 'the IPv6 gateway is back');
  // A firewall rule of IPv6 removed by hand (the IPv6 DNAT of published ports) is found and restored.
  must(h.sh('nft flush chain inet nsnet published'), 'flush');
  assert.match(h.nsnet(['check']).stdout, /firewall.*chain published/);
  h.ok(['reconcile']);
  assert.doesNotMatch(h.nsnet(['check']).stdout, /firewall/);

  // Removal takes everything with it.
  h.ok(['rm', '-f', 'a', 'b', 'c', 'd', 'e']);
  for (const n of ['dual', 'dual2', 'dual3', 'v6only', 'plain']) h.ok(['network', 'rm', n]);
  assert.equal(out(h.sh('nft list tables')), '');
});

test('bad input for IPv6: one clear error line, non-zero exit, nothing changed', (t) => {
  const h = TestHost.create('v6bad');
  t.after(() => h.cleanup());
  h.ok(['network', 'create', '--ipv6', '--subnet', 'fd00:60::/64', 'dual2']);
  h.ok(['network', 'create', 'plain']);
  h.ok(['network', 'create', '--ipv6', 'auto6']);
  h.ok(['run', '-d', '--name', 'x', '--network', 'plain', '--', 'sleep', '300']);
  must(h.sh('ip addr add 2001:db8::1/64 dev lo nodad'), 'an IPv6 address of the host');
  const before = h.ok(['network', 'ls', '--format', '{{.Name}}']);
  const ctrs = h.ok(['ps', '-a', '-q']);
  const cases: Array<[string[], RegExp]> = [
    [['network', 'create', '--subnet', 'fd00:70::/64', 'n1'], /an IPv6 subnet needs --ipv6/],
    [['network', 'create', '--ipv6', '--subnet', 'fd00:70::/121', 'n1'], /too small.*\/120/],
    [['network', 'create', '--ipv6', '--subnet', 'fd00::/47', 'n1'], /too large.*\/48/],
    [['network', 'create', '--ipv6', '--subnet', 'fe80::/64', 'n1'], /link-local/],
    [['network', 'create', '--ipv6', '--subnet', 'ff00::/64', 'n1'], /multicast/],
    [['network', 'create', '--ipv6', '--subnet', 'fd00:60::/64', 'n1'], /overlaps/],
    [['network', 'create', '--ipv6', '--subnet', 'fd00:60::/56', 'n1'], /overlaps/],
    [['network', 'create', '--ipv6', '--subnet', 'fd00:70::/64', '--subnet', 'fd00:71::/64', 'n1'], /at most one IPv6 subnet/],
    [['network', 'create', '--ipv4=false', 'n1'], /cannot both be disabled/],
    [['network', 'create', '--ipv6', '--subnet', 'fd00:70::/64', '--gateway', 'fd00:71::1', 'n1'], /doesn't contain this address/],
    [['network', 'create', '--ipv6', '-o', 'com.docker.network.bridge.gateway_mode_ipv6=isolated', 'n1'], /expected nat or routed/],
    [['run', '-d', '--name', 'y', '--network', 'dual2', '--ip6', 'fd00:99::5', '--', 'sleep', '1'], /no configured subnet or ip-range contain the IP address fd00:99::5/],
    [['run', '-d', '--name', 'y', '--network', 'plain', '--ip6', 'fd00:60::5', '--', 'sleep', '1'], /network plain has no IPv6/],
    [['run', '-d', '--name', 'y', '--network', 'auto6', '--ip6', 'fd00:60::5', '--', 'sleep', '1'], /user configured subnets/],
    [['run', '-d', '--name', 'y', '--network', 'dual2', '--ip6', 'fd00:60::1', '--', 'sleep', '1'], /is the network's gateway/],
    [['run', '-d', '--name', 'y', '--network', 'dual2', '--ip6', 'bogus', '--', 'sleep', '1'], /invalid IPv6 address bogus/],
    [['run', '-d', '--name', 'y', '--network', 'plain', '-p', '[2001:db8::1]:80:80', '--', 'sleep', '1'], /needs a network with IPv6/],
    [['run', '-d', '--name', 'y', '--network', 'dual2', '-p', '[::1]:80:80', '--', 'sleep', '1'], /no route_localnet/],
    [['run', '-d', '--name', 'y', '--network', 'dual2', '-p', '[2001:db8::2]:80:80', '--', 'sleep', '1'], /Bind for \[2001:db8::2\]:80 failed: 2001:db8::2 is not an address of this host/],
    [['network', 'connect', '--ip6', 'fd00:60::5', 'plain', 'x'], /already exists in network plain|has no IPv6/],
  ];
  for (const [args, re] of cases) {
    const r = h.nsnet(args);
    assert.notEqual(r.status, 0, `${args.join(' ')} must fail`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `one line for ${args.join(' ')}: ${r.stderr}`);
    assert.match(lines[0], re, args.join(' '));
  }
  assert.equal(h.ok(['network', 'ls', '--format', '{{.Name}}']), before, 'no network made');
  assert.equal(h.ok(['ps', '-a', '-q']), ctrs, 'no container made');
  assert.equal(h.nsnet(['check']).status, 0);
});

test('NAT66 and published ports in both families: upstream over IPv4 and IPv6 (client address kept), -p [v6addr], [::1], hairpin, outbound NAT66, no direct access, internal, icc=false, IPv4-only stays IPv4', async (t) => {
  const h = TestHost.create('v6nat');
  t.after(() => h.cleanup());
  const up = addUpstream6(h);
  h.ok(['network', 'create', '--ipv6', '--subnet', 'fd00:70::/64', 'web']);
  h.ok(['network', 'create', '--ipv6', '--subnet', 'fd00:71::/64', 'other']);
  h.ok(['network', 'create', 'plain']);
  h.ok(['network', 'create', '--ipv6', '--subnet', 'fd00:72::/64', '--internal', 'inner']);
  h.ok(['network', 'create', '--ipv6', '--subnet', 'fd00:73::/64', '-o', 'icc=false', 'quiet']);
  h.ok(['run', '-d', '--name', 'w', '--network', 'web', '-p', '8080:80', '-p', '8081:80/udp', '-p', `[${up.hostIp6}]:8082:80`, ...serve(80)]);
  h.ok(['run', '-d', '--name', 'p', '--network', 'plain', '-p', '9090:80', ...serve(80)]);
  h.ok(['run', '-d', '--name', 'o', '--network', 'other', '--', 'sleep', '300']);
  h.ok(['run', '-d', '--name', 'i', '--network', 'inner', '--', 'sleep', '300']);
  h.ok(['run', '-d', '--name', 'q1', '--network', 'quiet', ...serve(80)]);
  h.ok(['run', '-d', '--name', 'q2', '--network', 'quiet', '--', 'sleep', '300']);
  const upServer = h.shIn(up.ns, `nohup python3 ${WHOAMI} 9000 >/dev/null 2>&1 & echo started`);
  assert.match(upServer.stdout, /started/);

  // From the upstream machine: the host's IPv6 and IPv4 addresses, TCP and UDP; the client address is kept.
  assert.equal(await waitFor(() => out(h.shIn(up.ns, client(up.hostIp6, 8080))), 5000, 100), up.ip6, 'DNAT over IPv6, no masquerade');
  assert.equal(out(h.shIn(up.ns, client(up.hostIp, 8080))), up.ip, 'DNAT over IPv4 on the same port');
  assert.equal(out(h.shIn(up.ns, client(up.hostIp6, 8081, 'udp'))), up.ip6, 'UDP over IPv6');
  assert.equal(out(h.shIn(up.ns, client(up.hostIp, 8081, 'udp'))), up.ip, 'UDP over IPv4');
  // -p [v6addr]:H:C: that one IPv6 address only.
  assert.equal(out(h.shIn(up.ns, client(up.hostIp6, 8082))), up.ip6);
  assert.equal(out(h.shIn(up.ns, client(up.hostIp, 8082))), '', 'not on IPv4');
  const portLines = h.ok(['port', 'w']).split('\n');
  for (const l of ['80/tcp -> [2001:db8:1::1]:8082', '80/tcp -> 0.0.0.0:8080', '80/tcp -> [::]:8080', '80/udp -> [::]:8081']) assert.ok(portLines.includes(l), `${l} in\n${portLines.join('\n')}`);
  assert.deepEqual(inspect(h, 'w').NetworkSettings.Ports['80/udp'], [{ HostIp: '0.0.0.0', HostPort: '8081' }, { HostIp: '::', HostPort: '8081' }]);
  assert.deepEqual(inspect(h, 'p').NetworkSettings.Ports['80/tcp'], [{ HostIp: '0.0.0.0', HostPort: '9090' }], 'IPv4-only network: IPv4 binding only');
  // From the host: its own IPv6 address works; [::1] is never DNATed (no route_localnet in IPv6): refused at once.
  assert.equal(out(h.sh(client(up.hostIp6, 8080))), up.hostIp6);
  assert.equal(out(h.sh(probe('::1', 8080))), 'refused');
  // Hairpin from another network over IPv6, and from the container to itself.
  assert.notEqual(out(h.exec('o', client(up.hostIp6, 8080))), '', 'hairpin from another network');
  assert.notEqual(out(h.exec('w', client(up.hostIp6, 8080))), '', 'hairpin to itself');
  // Outbound: NAT66, the upstream sees the host's address.
  assert.equal(out(h.exec('o', client(up.ip6, 9000))), up.hostIp6, 'NAT66 masquerade');
  assert.equal(out(h.exec('o', client(up.ip6, 9000, 'udp'))), up.hostIp6, 'NAT66 masquerade, UDP');
  // No direct routed access from outside to container addresses (published or not), either family.
  must(h.shIn(up.ns, `ip -6 route add fd00::/16 via ${up.hostIp6}`), 'route');
  assert.equal(out(h.shIn(up.ns, client('fd00:70::2', 80))), '', 'no direct IPv6 access from outside');
  // IPv4-only network: -p stays IPv4 (an IPv6 client is refused: nothing listens there on the host).
  assert.equal(out(h.shIn(up.ns, client(up.hostIp, 9090))), up.ip);
  assert.equal(out(h.shIn(up.ns, probe(up.hostIp6, 9090))), 'refused', 'an IPv4-only network publishes IPv4 only');
  // --internal: nothing out over IPv6 either.
  assert.equal(out(h.exec('i', client(up.ip6, 9000))), '', 'internal: no IPv6 out');
  assert.equal(out(h.exec('i', client('fd00:70::2', 80))), '', 'internal: no IPv6 to other networks');
  // icc=false: containers of one network do not talk over IPv6.
  assert.equal(out(h.exec('q2', client('fd00:73::2', 80))), '', 'icc=false over IPv6');
  assert.equal(out(h.exec('q2', client('fd00:73::2', 80, 'udp'))), '', 'icc=false over IPv6, UDP');
  assert.equal(h.nsnet(['check']).status, 0, h.nsnet(['check']).stdout);
  // The published ports are gone with the container, in both families.
  h.ok(['rm', '-f', 'w']);
  assert.equal(out(h.shIn(up.ns, client(up.hostIp6, 8080))), '');
  assert.doesNotMatch(out(h.sh('nft list map inet nsnet dnat_any6')), /8080/);
});

test('gateway_mode_ipv6=routed: no NAT66, only published container ports reachable at the container address', async (t) => {
  const h = TestHost.create('v6routed');
  t.after(() => h.cleanup());
  const up = addUpstream6(h);
  h.ok(['network', 'create', '--ipv6', '--subnet', 'fd00:74::/64', '-o', 'com.docker.network.bridge.gateway_mode_ipv6=routed', 'r']);
  assert.equal(JSON.parse(h.ok(['network', 'inspect', 'r']))[0].Options['com.docker.network.bridge.gateway_mode_ipv6'], 'routed');
  h.ok(['run', '-d', '--name', 's', '--network', 'r', '-p', '8080:80', '-p', '8081:80/udp', '--', '/bin/sh', '-c', `python3 ${WHOAMI} 80 & python3 ${WHOAMI} 81 & wait`]);
  h.shIn(up.ns, `nohup python3 ${WHOAMI} 9000 >/dev/null 2>&1 &`);
  must(h.shIn(up.ns, `ip -6 route add fd00:74::/64 via ${up.hostIp6}`), 'route to the routed subnet');
  assert.equal(await waitFor(() => out(h.shIn(up.ns, client('fd00:74::2', 80))), 5000, 100), up.ip6, 'published port at the container address');
  assert.equal(out(h.shIn(up.ns, client('fd00:74::2', 80, 'udp'))), up.ip6, 'UDP too');
  assert.equal(out(h.shIn(up.ns, client('fd00:74::2', 81))), '', 'an unpublished port is not reachable');
  assert.equal(out(h.exec('s', client(up.ip6, 9000))), 'fd00:74::2', 'no NAT66: the container address is seen');
  assert.equal(out(h.shIn(up.ns, client(up.hostIp, 8080))), up.ip, 'IPv4 side: DNAT as usual');
  assert.equal(h.nsnet(['check']).status, 0, h.nsnet(['check']).stdout);
});

test('DNS over IPv6: AAAA, NODATA for a name without that family, PTR in ip6.arpa, the resolver on the IPv6 gateway', async (t) => {
  const h = TestHost.create('v6dns');
  t.after(() => h.cleanup());
  h.ok(['network', 'create', '--ipv6', '--subnet', '10.61.0.0/24', '--subnet', 'fd00:75::/64', 'dual']);
  h.ok(['network', 'create', 'plain']);
  h.ok(['network', 'create', '--ipv6', '--ipv4=false', '--subnet', 'fd00:76::/64', 'v6only']);
  h.ok(['run', '-d', '--name', 'a', '--network', 'dual', '--', 'sleep', '300']);
  h.ok(['run', '-d', '--name', 'b', '--network', 'dual', '--', 'sleep', '300']);
  h.ok(['run', '-d', '--name', 'p1', '--network', 'plain', '--', 'sleep', '300']);
  h.ok(['run', '-d', '--name', 'p2', '--network', 'plain', '--', 'sleep', '300']);
  h.ok(['run', '-d', '--name', 'v1', '--network', 'v6only', '--', 'sleep', '300']);
  h.ok(['run', '-d', '--name', 'v2', '--network', 'v6only', '--', 'sleep', '300']);
  const q = (ctr: string, server: string, name: string, type: string) => out(h.exec(ctr, `python3 ${DNSQ} ${server} ${name} ${type}`));
  // The resolver on both gateways of a dual-stack network; AAAA and A.
  assert.equal(await waitFor(() => q('a', 'fd00:75::1', 'b', 'AAAA'), 5000, 100), 'NOERROR fd00:75::3');
  assert.equal(q('a', '10.61.0.1', 'b', 'AAAA'), 'NOERROR fd00:75::3');
  assert.equal(q('a', 'fd00:75::1', 'b', 'A'), 'NOERROR 10.61.0.3');
  assert.equal(q('a', 'fd00:75::1', 'b.dual', 'AAAA'), 'NOERROR fd00:75::3');
  // PTR of an IPv6 address; an address of the subnet nobody holds is NXDOMAIN.
  const rev = (a: string) => out(h.sh(`python3 -c "import ipaddress;print(ipaddress.ip_address('${a}').reverse_pointer)"`));
  assert.equal(q('a', 'fd00:75::1', rev('fd00:75::3'), 'PTR'), 'NOERROR b.dual');
  assert.equal(q('a', '10.61.0.1', rev('fd00:75::99'), 'PTR'), 'NXDOMAIN');
  // A name with only an IPv4 address: AAAA is NODATA (NOERROR, no answer), never NXDOMAIN.
  assert.equal(q('p1', '172.18.0.1', 'p2', 'AAAA'), 'NOERROR');
  assert.equal(q('p1', '172.18.0.1', 'p2', 'A'), 'NOERROR 172.18.0.3');
  // IPv6-only: the resolver on the IPv6 gateway, resolv.conf names it; A is NODATA.
  assert.match(out(h.exec('v1', 'cat /etc/resolv.conf')), /^nameserver fd00:76::1$/m);
  assert.equal(q('v1', 'fd00:76::1', 'v2', 'AAAA'), 'NOERROR fd00:76::3');
  assert.equal(q('v1', 'fd00:76::1', 'v2', 'A'), 'NOERROR');
  // Ordinary programs: glibc resolves the IPv6 address of a name through the resolver.
  assert.equal(out(h.exec('v1', `getent ahostsv6 v2 | awk 'NR==1{print $1}'`)), 'fd00:76::3');
  // Dual-stack resolv.conf: one nameserver, the IPv4 gateway (as Docker's single embedded resolver address).
  assert.match(out(h.exec('a', 'cat /etc/resolv.conf')), /^nameserver 10\.61\.0\.1$/m);
  // Another network's container cannot ask this network's IPv6 gateway.
  assert.equal(q('v1', 'fd00:75::1', 'b', 'AAAA'), '', 'no route or refused from another network');
});
  test('a partition of a dual-stack and of an IPv6-only network cuts IPv6 between its groups too; heal restores it', async (t) => {
    const h = TestHost.create('v6part');
    t.after(() => h.cleanup());
    h.ok(['network', 'create', '--ipv6', '--subnet', '10.64.0.0/24', '--subnet', 'fd00:64::/64', 'dual']);
    h.ok(['network', 'create', '--ipv6', '--ipv4=false', '--subnet', 'fd00:65::/64', 'six']);
    for (const [c, n] of [['a', 'dual'], ['b', 'dual'], ['x', 'six'], ['y', 'six']]) h.ok(['run', '-d', '--name', c, '--network', n, ...serve(80)]);
    assert.equal(await waitFor(() => out(h.exec('a', client('fd00:64::3', 80))), 5000, 100), 'fd00:64::2');
    assert.equal(await waitFor(() => out(h.exec('x', client('fd00:65::3', 80))), 5000, 100), 'fd00:65::2');
    h.ok(['partition', '--network', 'dual', 'a', 'b']);
    h.ok(['partition', '--network', 'six', 'x', 'y']);
    assert.equal(out(h.exec('a', client('fd00:64::3', 80))), '', 'cut over IPv6');
    assert.equal(out(h.exec('a', client('10.64.0.3', 80))), '', 'cut over IPv4');
    assert.equal(out(h.exec('x', client('fd00:65::3', 80, 'udp'))), '', 'IPv6-only network cut, UDP');
    assert.equal(h.nsnet(['check']).status, 0, h.nsnet(['check']).stdout);
    h.ok(['heal', '--network', 'dual']);
    h.ok(['heal', '--network', 'six']);
    assert.equal(await waitFor(() => out(h.exec('a', client('fd00:64::3', 80))), 5000, 100), 'fd00:64::2', 'healed');
    assert.equal(await waitFor(() => out(h.exec('x', client('fd00:65::3', 80))), 5000, 100), 'fd00:65::2', 'healed');
  });

  test('a lost store is rebuilt with its IPv6: networks (from their copies), endpoints\' IPv6 addresses, then traffic and names as before', async (t) => {
    const h = TestHost.create('v6rebuild');
    t.after(() => h.cleanup());
    h.ok(['network', 'create', '--ipv6', '--subnet', '10.62.0.0/24', '--subnet', 'fd00:62::/64', 'dual']);
    h.ok(['network', 'create', '--ipv6', '--ipv4=false', '--subnet', 'fd00:63::/64', 'six']);
    h.ok(['run', '-d', '--name', 'a', '--network', 'dual', ...serve(80)]);
    h.ok(['run', '-d', '--name', 'b', '--network', 'six', '--', 'sleep', '300']);
    h.ok(['network', 'connect', 'dual', 'b']);
    const before = [inspect(h, 'a').NetworkSettings.Networks, inspect(h, 'b').NetworkSettings.Networks];
    const file = path.join(h.root, 'nsnet.db');
    fs.truncateSync(file, 0);
    fs.rmSync(`${file}-wal`, { force: true });
    fs.rmSync(`${file}-shm`, { force: true });
    h.ok(['reconcile', '--rebuild']);
    const after = [inspect(h, 'a').NetworkSettings.Networks, inspect(h, 'b').NetworkSettings.Networks];
    for (const [i, nets] of after.entries()) {
      for (const [name, n] of Object.entries(nets as Record<string, any>)) {
        const b = (before[i] as Record<string, any>)[name];
        assert.deepEqual([n.IPAddress, n.GlobalIPv6Address, n.GlobalIPv6PrefixLen, n.IPv6Gateway], [b.IPAddress, b.GlobalIPv6Address, b.GlobalIPv6PrefixLen, b.IPv6Gateway], `${name} after the rebuild`);
      }
    }
    assert.equal(JSON.parse(h.ok(['network', 'inspect', 'six']))[0].EnableIPv6, true);
    assert.equal(h.nsnet(['check']).status, 0, h.nsnet(['check']).stdout);
    assert.equal(await waitFor(() => out(h.exec('b', client('fd00:62::2', 80))), 5000, 100), 'fd00:62::3');
    assert.equal(await waitFor(() => out(h.exec('b', `python3 ${DNSQ} fd00:62::1 a AAAA`)), 5000, 100), 'NOERROR fd00:62::2');
  });
});
