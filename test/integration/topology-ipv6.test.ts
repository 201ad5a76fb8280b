// IPv6 in topology files (issues #13 and #15): `nsnet up` of a Compose file with a dual-stack network (both
// subnets given), an IPv6-only one (enable_ipv4: false) and one with enable_ipv6 alone (subnets chosen by nsnet),
// services with static ipv6_address; real TCP and UDP over IPv6 between services by a static address and by name
// (AAAA from nsnet's resolver, through the container's own resolver configuration); a second `up` changes nothing;
// a changed IPv6 subnet re-creates that network and its containers only, enable_ipv6 turned off likewise; bad
// IPv6 input is one error line with file, line and key, nothing made; `down` removes everything (check clean).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { NSNET, REPO, TestHost, waitFor, type Result } from '../helpers/host.js';

const WHOAMI = path.join(REPO, 'test/fixtures/whoami6.py');
const DNSQ = path.join(REPO, 'test/fixtures/dnsq.py');
const out = (r: Result) => r.stdout.trim();

/** The file: `v6` is the IPv6-only network's /64 without its "::" (srv's address on it is its ::10); `auto6`
 *  enable_ipv6 of the third network. */
const FILE = (v6: string, auto6: boolean) => `
name: six
services:
  srv:
    command: [python3, ${JSON.stringify(WHOAMI)}, "80"]
    networks:
      dual:
        ipv4_address: 10.86.0.10
        ipv6_address: fd00:86::10
      v6only:
        ipv6_address: "${v6}::10"
  cli:
    command: [sleep, "600"]
    networks:
      dual:
        ipv6_address: fd00:86::20
      v6only: {}
  only6:
    command: [sleep, "600"]
    networks: [v6only]
  auto:
    command: [python3, ${JSON.stringify(WHOAMI)}, "80"]
    networks: [autonet]
  autocli:
    command: [sleep, "600"]
    networks: [autonet]
networks:
  dual:
    enable_ipv6: true
    ipam:
      config:
        - subnet: 10.86.0.0/24
        - subnet: fd00:86::/64
          gateway: fd00:86::1
  v6only:
    enable_ipv6: true
    enable_ipv4: false
    ipam:
      config:
        - subnet: "${v6}::/64"
  autonet:
    enable_ipv6: ${auto6}
`;

/** TCP or UDP to ip:port over IPv6: what the server saw as our address ('' on failure). */
const to6 = (ip: string, proto: 'tcp' | 'udp' = 'tcp') => proto === 'tcp'
  ? `python3 -c "import socket;s=socket.socket(socket.AF_INET6);s.settimeout(1);s.connect(('${ip}',80));print(s.recv(64).decode().strip())" 2>/dev/null`
  : `python3 -c "import socket;s=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM);s.settimeout(1);s.sendto(b'x',('${ip}',80));print(s.recv(64).decode().strip())" 2>/dev/null`;
/** By name, IPv6 only (getaddrinfo through the container's resolv.conf, AAAA): "ADDRESS-CONNECTED-TO SEEN-AS". */
const byName6 = (name: string) =>
  `python3 -c "import socket;a=socket.getaddrinfo('${name}',80,socket.AF_INET6,socket.SOCK_STREAM)[0][4];s=socket.socket(socket.AF_INET6);s.settimeout(1);s.connect(a);print(a[0],s.recv(64).decode().strip())" 2>/dev/null`;

test('up/down: IPv6 networks from a Compose file, traffic by address and by name, converging, bad input, removed exactly', { timeout: 240000 }, async (t) => {
  const h = TestHost.create('top6');
  t.after(() => h.cleanup());
  const dir = path.join(h.root, 'proj');
  fs.mkdirSync(dir);
  const file = path.join(dir, 'compose.yaml');
  const up = (text: string): Result => {
    fs.writeFileSync(file, text);
    return h.sh(`cd ${dir} && NSNET_ROOT=${h.root} NSNET_RESOLV_CONF=/dev/null ${NSNET} up -d`, { timeout: 120000 });
  };
  const linksBefore = h.links().sort();
  const names = (args: string[]) => h.ok(args).split('\n').filter(Boolean).sort();
  const net = (name: string) => JSON.parse(h.ok(['network', 'inspect', name]))[0];
  const ep = (ctr: string, n: string) => JSON.parse(h.ok(['inspect', ctr]))[0].NetworkSettings.Networks[n];

  // Bad IPv6 input first: one error line naming file, line and key; nothing made.
  const good = FILE('fd00:87', true);
  const bad: Array<[string, string]> = [
    [good.replace('  v6only:\n    enable_ipv6: true\n', '  v6only:\n'),
      'compose.yaml:36: networks.v6only.enable_ipv4: IPv4 and IPv6 cannot both be disabled: an IPv6-only network (enable_ipv4: false) needs enable_ipv6: true'],
    [good.replace('  dual:\n    enable_ipv6: true\n', '  dual:\n'),
      'compose.yaml:32: networks.dual.ipam.config[1].subnet: an IPv6 subnet needs enable_ipv6: true on the network'],
    [good.replace('          gateway: fd00:86::1\n', '          gateway: fd00:86::1\n        - subnet: fd00:99::/64\n'),
      'compose.yaml:35: networks.dual.ipam.config[2].subnet: a second IPv6 entry (networks.dual.ipam.config[1] is one): a network has at most one subnet per family'],
    [FILE('fd00:87', false).replace('    networks: [autonet]\n  autocli:', '    networks:\n      autonet: {ipv6_address: "fd00:88::5"}\n  autocli:'),
      'compose.yaml:24: services.auto.networks.autonet.ipv6_address: network autonet has no IPv6: set enable_ipv6: true on it (networks.autonet)'],
    [good.replace('ipv6_address: "fd00:87::10"', 'ipv6_address: "fd00:86::10"'),
      'compose.yaml:11: services.srv.networks.v6only.ipv6_address: no configured subnet or ip-range contain the IP address fd00:86::10 (the network\'s subnet is fd00:87::/64)'],
  ];
  for (const [text, msg] of bad) {
    const r = up(text);
    assert.equal(r.status, 2, r.stdout + r.stderr);
    assert.equal(r.stderr, `Error: ${msg}\n`);
    assert.equal(r.stdout, '');
  }
  assert.deepEqual(names(['network', 'ls', '--format', '{{.Name}}']).filter((n) => n.startsWith('six')), [], 'no network made');
  assert.deepEqual(names(['ps', '-a', '--format', '{{.Names}}']), [], 'no container made');
  assert.deepEqual(h.links().sort(), linksBefore, 'no link made');

  // up: the three networks as the file says.
  const first = up(good);
  assert.equal(first.status, 0, first.stdout + first.stderr);
  for (const l of ['Network six_dual  Created', 'Network six_v6only  Created', 'Network six_autonet  Created', 'Container six-srv-1  Started', 'Container six-only6-1  Started']) {
    assert.ok(first.stdout.includes(l), `${l}\n${first.stdout}`);
  }
  const nd = net('six_dual');
  assert.equal(nd.EnableIPv6, true);
  assert.deepEqual(nd.IPAM.Config, [{ Subnet: '10.86.0.0/24', Gateway: '10.86.0.1' }, { Subnet: 'fd00:86::/64', Gateway: 'fd00:86::1' }]);
  const n6 = net('six_v6only');
  assert.deepEqual([n6.EnableIPv6, n6.IPAM.Config], [true, [{ Subnet: 'fd00:87::/64', Gateway: 'fd00:87::1' }]], 'IPv6-only: one entry');
  const na = net('six_autonet');
  assert.equal(na.EnableIPv6, true);
  assert.equal(na.IPAM.Config.length, 2);
  assert.match(na.IPAM.Config[1].Subnet, /^fd[0-9a-f]{2}:[0-9a-f:]+\/64$/, 'a /64 of the host\'s ULA /48');
  // Endpoints: the static addresses; none IPv4 on the IPv6-only network.
  assert.deepEqual([ep('six-srv-1', 'six_dual').IPAddress, ep('six-srv-1', 'six_dual').GlobalIPv6Address], ['10.86.0.10', 'fd00:86::10']);
  assert.deepEqual([ep('six-srv-1', 'six_v6only').IPAddress, ep('six-srv-1', 'six_v6only').GlobalIPv6Address], ['', 'fd00:87::10']);
  assert.equal(ep('six-cli-1', 'six_dual').GlobalIPv6Address, 'fd00:86::20');
  const only6 = ep('six-only6-1', 'six_v6only').GlobalIPv6Address;
  const cli6 = ep('six-cli-1', 'six_v6only').GlobalIPv6Address;
  assert.match(only6, /^fd00:87::[0-9a-f]+$/);

  // Traffic over IPv6 by static address, TCP and UDP, the real client address seen, on both networks.
  assert.equal(await waitFor(() => out(h.exec('six-cli-1', to6('fd00:86::10'))), 10000, 100), 'fd00:86::20');
  assert.equal(out(h.exec('six-cli-1', to6('fd00:86::10', 'udp'))), 'fd00:86::20');
  assert.equal(out(h.exec('six-cli-1', to6('fd00:87::10'))), cli6);
  assert.equal(out(h.exec('six-only6-1', to6('fd00:87::10', 'udp'))), only6);
  assert.equal(out(h.exec('six-cli-1', 'python3 -c "import socket;s=socket.socket();s.settimeout(1);s.connect((\'10.86.0.10\',80));print(s.recv(64).decode().strip())"')),
    ep('six-cli-1', 'six_dual').IPAddress, 'IPv4 on the dual-stack network too');
  // By name: AAAA from nsnet's resolver (on the IPv6 gateway of each network), and a connection through the
  // container's own resolver configuration, IPv6 only.
  assert.equal(out(h.exec('six-cli-1', `python3 ${DNSQ} fd00:86::1 srv AAAA`)), 'NOERROR fd00:86::10');
  assert.equal(out(h.exec('six-only6-1', `python3 ${DNSQ} fd00:87::1 srv AAAA`)), 'NOERROR fd00:87::10');
  assert.equal(out(h.exec('six-only6-1', `python3 ${DNSQ} fd00:87::1 srv A`)), 'NOERROR', 'no IPv4 address on the IPv6-only network: NODATA');
  assert.equal(out(h.exec('six-only6-1', byName6('srv'))), `fd00:87::10 ${only6}`);
  const auto6 = ep('six-auto-1', 'six_autonet').GlobalIPv6Address;
  const autocli6 = ep('six-autocli-1', 'six_autonet').GlobalIPv6Address;
  assert.ok(auto6 && autocli6, 'addresses from the chosen IPv6 subnet');
  assert.equal(await waitFor(() => out(h.exec('six-autocli-1', byName6('auto'))), 10000, 100), `${auto6} ${autocli6}`);
  assert.equal(h.nsnet(['check']).status, 0, 'check: clean after up');

  // A second up changes nothing.
  const again = up(good);
  assert.equal(again.status, 0, again.stderr);
  assert.doesNotMatch(again.stdout, /Created|Removed|Started/, again.stdout);

  // Another IPv6 subnet for the IPv6-only network: it and the containers on it are re-created, nothing else.
  const moved = up(FILE('fd00:88', true));
  assert.equal(moved.status, 0, moved.stdout + moved.stderr);
  for (const l of ['Network six_v6only  Removed', 'Network six_v6only  Created', 'Container six-srv-1  Started', 'Container six-cli-1  Started', 'Container six-only6-1  Started']) {
    assert.ok(moved.stdout.includes(l), `${l}\n${moved.stdout}`);
  }
  assert.doesNotMatch(moved.stdout, /six_dual|six_autonet|six-auto-1|six-autocli-1/, moved.stdout);
  assert.deepEqual(net('six_v6only').IPAM.Config, [{ Subnet: 'fd00:88::/64', Gateway: 'fd00:88::1' }]);
  const only6b = ep('six-only6-1', 'six_v6only').GlobalIPv6Address;
  assert.equal(await waitFor(() => out(h.exec('six-only6-1', to6('fd00:88::10'))), 10000, 100), only6b);
  assert.equal(out(h.exec('six-only6-1', byName6('srv'))), `fd00:88::10 ${only6b}`);

  // enable_ipv6 turned off: that network and its containers re-created, IPv4 only now.
  const off = up(FILE('fd00:88', false));
  assert.equal(off.status, 0, off.stdout + off.stderr);
  for (const l of ['Network six_autonet  Removed', 'Network six_autonet  Created', 'Container six-auto-1  Started', 'Container six-autocli-1  Started']) {
    assert.ok(off.stdout.includes(l), `${l}\n${off.stdout}`);
  }
  assert.doesNotMatch(off.stdout, /six_dual|six_v6only|six-srv-1|six-only6-1/, off.stdout);
  assert.equal(net('six_autonet').EnableIPv6, false);
  assert.equal(ep('six-auto-1', 'six_autonet').GlobalIPv6Address, '');
  assert.equal(h.nsnet(['check']).status, 0, 'check: clean after the changes');

  // down: everything of the project, and nothing of it left in the host netns.
  const down = h.sh(`cd ${dir} && NSNET_ROOT=${h.root} NSNET_RESOLV_CONF=/dev/null ${NSNET} down`, { timeout: 120000 });
  assert.equal(down.status, 0, down.stdout + down.stderr);
  assert.deepEqual(names(['ps', '-a', '--format', '{{.Names}}']), []);
  assert.deepEqual(names(['network', 'ls', '--format', '{{.Name}}']).filter((n) => n.startsWith('six')), []);
  assert.deepEqual(h.containerNetns(), [], 'no container netns left');
  assert.deepEqual(h.links().sort(), linksBefore, 'no bridge or veth left');
  assert.equal(out(h.sh('ip -6 route show | grep -c "^fd00:8[678]::" || true')), '0', 'no IPv6 route of the project left');
  assert.equal(h.nsnet(['check']).status, 0, 'check: clean after down');
});

const FAULT_FILE = `services:
  web:
    command: ["sleep", "300"]
    ports: ["8089:80"]
    networks:
      dual:
        ipv6_address: "fd00:89::10"
      v6only: {}
  db:
    command: ["sleep", "300"]
    networks: [v6only]
networks:
  dual:
    enable_ipv6: true
    ipam:
      config:
        - subnet: 10.89.0.0/24
        - subnet: "fd00:89::/64"
  v6only:
    enable_ipv6: true
    enable_ipv4: false
`;

test('up of IPv6 networks killed at every crash point: the next up finishes it, check is exact, up again changes nothing, down removes everything', { timeout: 600000 }, async (t) => {
  const tmpFile = (h: TestHost) => {
    const f = path.join(h.root, '..', `compose6-${path.basename(h.root)}.yaml`);
    fs.writeFileSync(f, FAULT_FILE);
    return f;
  };
  const probe = TestHost.create('fu6p');
  let pts: string[];
  try {
    const f = tmpFile(probe);
    try {
      const r = probe.nsnet(['up', '-d', '-f', f, '-p', 'fu6'], { env: { NSNET_TRACE_POINTS: '1' } });
      assert.equal(r.status, 0, r.stderr);
      pts = [...new Set(r.stderr.split('\n').filter((l) => l.startsWith('crashpoint ')).map((l) => l.slice(11)))];
    } finally {
      fs.rmSync(f, { force: true });
    }
  } finally {
    probe.cleanup();
  }
  assert.ok(pts.length >= 8, `up passes its use cases' crash points (got ${pts.join(', ')})`);
  for (const p of pts) {
    await t.test(`up @ ${p}`, () => {
      const h = TestHost.create('fu6');
      const f = tmpFile(h);
      try {
        const killed = h.nsnet(['up', '-d', '-f', f, '-p', 'fu6'], { env: { NSNET_CRASH_AT: p } });
        assert.equal(killed.status, 128, `killed at ${p} (status ${killed.status}: ${killed.stderr})`);
        const again = h.nsnet(['up', '-d', '-f', f, '-p', 'fu6']);
        assert.equal(again.status, 0, `up after the kill at ${p}: ${again.stderr}`);
        const chk = h.nsnet(['check']);
        assert.equal(chk.status, 0, `check after up at ${p}:\n${chk.stdout}${chk.stderr}`);
        assert.deepEqual(h.ok(['ps', '-a', '--format', '{{.Names}} {{.State}}']).split('\n').sort(), ['fu6-db-1 running', 'fu6-web-1 running']);
        const web = JSON.parse(h.ok(['inspect', 'fu6-web-1']))[0].NetworkSettings.Networks;
        assert.equal(web.fu6_dual.GlobalIPv6Address, 'fd00:89::10', 'the static IPv6 address, held once');
        assert.equal(web.fu6_v6only.IPAddress, '');
        const third = h.nsnet(['up', '-d', '-f', f, '-p', 'fu6']);
        assert.equal(third.status, 0, third.stderr);
        assert.doesNotMatch(third.stdout, /Created|Removed|Started/, `a third up changes nothing: ${third.stdout}`);
        h.ok(['down', '-f', f, '-p', 'fu6']);
        assert.equal(h.nsnet(['check']).status, 0);
        assert.deepEqual(h.containerNetns(), []);
        assert.equal(h.ok(['ps', '-a', '-q']), '');
        assert.equal(h.ok(['network', 'ls', '--format', '{{.Name}}']).split('\n').filter((n) => n.startsWith('fu6')).length, 0);
      } finally {
        h.cleanup();
        fs.rmSync(f, { force: true });
      }
    });
  }
});
