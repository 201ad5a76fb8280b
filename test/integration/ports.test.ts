// Port publishing and the network firewall, through the CLI, with real TCP and UDP traffic from an "upstream"
// machine (a netns linked to the test host), from the host itself, and from containers.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { REPO, TestHost, waitFor, type Result } from '../helpers/host.js';

const SERV = path.join(REPO, 'test/fixtures/tinyserv.py');

/** Python one-liner: connect (TCP or UDP) and print what the server answered ('' on failure). */
function client(ip: string, port: number, proto: 'tcp' | 'udp' = 'tcp'): string {
  const py = proto === 'tcp'
    ? `import socket;s=socket.create_connection(('${ip}',${port}),timeout=1.5);print(s.recv(64).decode().strip())`
    : `import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.settimeout(1.5);s.sendto(b'x',('${ip}',${port}));print(s.recv(64).decode().strip())`;
  return `python3 -c "${py}" 2>/dev/null`;
}
const out = (r: Result) => r.stdout.trim();

test('published ports: from upstream (client address kept), from the host incl. 127.0.0.1, hairpin, UDP, ranges, ephemeral', async (t) => {
  const h = TestHost.create('ports');
  t.after(() => h.cleanup());
  const up = h.addUpstream();
  h.ok(['network', 'create', 'oa-net']);
  h.ok(['network', 'create', 'other']);
  h.ok(['run', '-d', '--name', 'web', '--network', 'oa-net',
    '-p', '8088:8080', '-p', '127.0.0.1:9000:8080', '-p', '5353:5353/udp', '-p', '20000-20002:30000-30002', '-p', '8080',
    '--', '/bin/sh', '-c', `python3 ${SERV} whoami 8080 & python3 ${SERV} whoami 5353 udp & python3 ${SERV} whoami 30001 & wait`]);
  const webIp = JSON.parse(h.ok(['inspect', 'web']))[0].NetworkSettings.Networks['oa-net'].IPAddress;

  // From another machine: reachable on the host's address; the server sees the real client address.
  const seen = await waitFor(() => out(h.shIn(up.ns, client(up.hostIp, 8088))), 8000, 100);
  assert.equal(seen, up.ip, 'no masquerade of external clients');
  assert.equal(out(h.shIn(up.ns, client(up.hostIp, 5353, 'udp'))), up.ip, 'UDP publish keeps the client address');
  assert.equal(out(h.shIn(up.ns, client(up.hostIp, 20001))), up.ip, 'port range maps 20001 -> 30001');
  assert.equal(out(h.shIn(up.ns, client(up.hostIp, 9000))), '', '127.0.0.1-only binding is not reachable from outside');

  // From the host itself: its own addresses and 127.0.0.1.
  assert.notEqual(out(h.sh(client('127.0.0.1', 9000))), '', '127.0.0.1:9000 from the host');
  assert.notEqual(out(h.sh(client('127.0.0.1', 8088))), '', '127.0.0.1:8088 from the host');
  assert.notEqual(out(h.sh(client(up.hostIp, 8088))), '', 'host address from the host');

  // Hairpin: a container on another network reaches the published port through a host address.
  h.ok(['run', '-d', '--name', 'cli', '--network', 'other', '--', 'sleep', '300']);
  assert.notEqual(out(h.exec('cli', client(up.hostIp, 8088))), '', 'hairpin from another network');
  assert.notEqual(out(h.exec('web', client(up.hostIp, 8088))), '', 'hairpin to itself');
  // ...but not directly: networks are isolated from each other.
  assert.equal(out(h.exec('cli', client(webIp, 8080))), '', 'no direct route between networks');
  // The host can still reach containers directly by IP (as Docker).
  assert.notEqual(out(h.sh(client(webIp, 8080))), '', 'host reaches the container directly');
  // Other machines cannot reach an unpublished container port directly even with a route to the subnet.
  h.shIn(up.ns, 'ip route add 172.16.0.0/12 via 198.51.100.1');
  assert.equal(out(h.shIn(up.ns, client(webIp, 8080))), '', 'direct routed access from outside is dropped');

  // `port` lists the mappings, including the ephemeral one.
  const ports = h.ok(['port', 'web']).split('\n');
  assert.ok(ports.includes('8080/tcp -> 0.0.0.0:8088'), ports.join('\n'));
  assert.ok(ports.includes('8080/tcp -> 127.0.0.1:9000'));
  assert.ok(ports.includes('5353/udp -> 0.0.0.0:5353'));
  assert.ok(ports.includes('30001/tcp -> 0.0.0.0:20001'));
  const eph = ports.find((l) => /^8080\/tcp -> 0\.0\.0\.0:(\d+)$/.test(l) && !l.endsWith(':8088'));
  assert.ok(eph, 'ephemeral host port shown');
  const ephPort = Number(eph!.split(':')[1]);
  assert.ok(ephPort >= 1024, `ephemeral port ${ephPort}`);
  assert.equal(out(h.shIn(up.ns, client(up.hostIp, ephPort))), up.ip, 'ephemeral port works');

  // Removing the container removes its ports.
  h.ok(['rm', '-f', 'web']);
  assert.equal(out(h.shIn(up.ns, client(up.hostIp, 8088))), '', 'port gone with the container');
  const nft = h.sh('nft list map inet nsnet dnat_any').stdout;
  assert.doesNotMatch(nft, /8088/);
});

test('port conflicts are refused before anything is created; host mode ignores -p with a warning', async (t) => {
  const h = TestHost.create('pconf');
  t.after(() => h.cleanup());
  h.ok(['network', 'create', 'n1']);
  h.ok(['run', '-d', '--name', 'a', '--network', 'n1', '-p', '8088:80', '--', 'sleep', '300']);
  const before = h.ok(['ps', '-a', '-q']);
  const links = h.links().length;

  const dup = h.nsnet(['run', '-d', '--name', 'b', '--network', 'n1', '-p', '8088:81', '--', 'sleep', '300']);
  assert.notEqual(dup.status, 0);
  assert.match(dup.stderr, /^Error: Bind for 0\.0\.0\.0:8088\/tcp failed: port is already allocated/m);
  assert.equal(dup.stderr.trim().split('\n').length, 1, 'one error line');
  const overlap = h.nsnet(['run', '-d', '--name', 'b', '--network', 'n1', '-p', '127.0.0.1:8080-8090:80-90', '--', 'sleep', '300']);
  assert.notEqual(overlap.status, 0);
  assert.match(overlap.stderr, /already allocated/);

  // A socket listening in the host netns.
  h.sh(`python3 ${SERV} whoami 7777 </dev/null >/dev/null 2>&1 &`);
  await waitFor(() => h.sh('ss -ltn').stdout.includes(':7777'), 5000);
  const busy = h.nsnet(['run', '-d', '--name', 'c', '--network', 'n1', '-p', '7777:80', '--', 'sleep', '300']);
  assert.notEqual(busy.status, 0);
  assert.match(busy.stderr, /7777.*already in use on the host/);

  assert.equal(h.ok(['ps', '-a', '-q']), before, 'no container was created');
  assert.equal(h.links().length, links, 'no link was created');

  const hostMode = h.nsnet(['run', '-d', '--name', 'hm', '--network', 'host', '-p', '9999:80', '--', 'sleep', '300']);
  assert.equal(hostMode.status, 0, hostMode.stderr);
  assert.match(hostMode.stderr, /WARNING: Published ports are discarded when using host network mode/);
  assert.equal(h.ok(['port', 'hm']), '');
});

test('internal networks and icc=false', async (t) => {
  const h = TestHost.create('iso');
  t.after(() => h.cleanup());
  const up = h.addUpstream();
  h.shIn(up.ns, `python3 ${SERV} whoami 7000 </dev/null >/dev/null 2>&1 &`);
  h.ok(['network', 'create', '--internal', 'vault']);
  h.ok(['network', 'create', '-o', 'icc=false', 'noicc']);
  h.ok(['network', 'create', 'open']);
  h.ok(['run', '-d', '--name', 'v1', '--network', 'vault', '--', 'python3', SERV, 'whoami', '8080']);
  h.ok(['run', '-d', '--name', 'v2', '--network', 'vault', '--', 'sleep', '300']);
  h.ok(['run', '-d', '--name', 'n1', '--network', 'noicc', '--', 'python3', SERV, 'whoami', '8080']);
  h.ok(['run', '-d', '--name', 'n2', '--network', 'noicc', '--', 'sleep', '300']);
  h.ok(['run', '-d', '--name', 'o1', '--network', 'open', '--', 'sleep', '300']);
  const ip = (c: string, n: string) => JSON.parse(h.ok(['inspect', c]))[0].NetworkSettings.Networks[n].IPAddress;

  await waitFor(() => out(h.exec('o1', client(up.ip, 7000))), 8000, 100);
  assert.equal(out(h.exec('o1', client(up.ip, 7000))), up.hostIp, 'a normal network reaches the outside (masqueraded)');
  assert.equal(out(h.exec('v2', client(up.ip, 7000))), '', 'internal: no way out');
  await waitFor(() => out(h.exec('v2', client(ip('v1', 'vault'), 8080))), 8000, 100);
  assert.notEqual(out(h.exec('v2', client(ip('v1', 'vault'), 8080))), '', 'internal: containers of the network talk to each other');
  assert.equal(out(h.exec('o1', client(ip('v1', 'vault'), 8080))), '', 'internal: nothing gets in from other networks');
  assert.notEqual(out(h.exec('n2', client(up.ip, 7000))), '', 'icc=false: outside still reachable');
  await waitFor(() => out(h.sh(client(ip('n1', 'noicc'), 8080))), 8000, 100);
  assert.equal(out(h.exec('n2', client(ip('n1', 'noicc'), 8080))), '', 'icc=false: no container-to-container traffic');
  assert.notEqual(out(h.sh(client(ip('n1', 'noicc'), 8080))), '', 'icc=false: the host still reaches the container');
});

test('a flushed ruleset is reported by check and restored by reconcile; other tables are never touched', async (t) => {
  const h = TestHost.create('flush');
  t.after(() => h.cleanup());
  const up = h.addUpstream();
  h.sh('nft add table inet othertool && nft add chain inet othertool c');
  h.ok(['network', 'create', 'n1']);
  h.ok(['run', '-d', '--name', 'web', '--network', 'n1', '-p', '8088:8080', '--', 'python3', SERV, 'whoami', '8080']);
  await waitFor(() => out(h.shIn(up.ns, client(up.hostIp, 8088))), 8000, 100);
  assert.match(h.sh('nft list tables').stdout, /inet othertool/, 'another tool\'s table survives nsnet changes');

  h.sh('nft flush ruleset');  // inside the test's own host netns only
  assert.equal(out(h.shIn(up.ns, client(up.hostIp, 8088))), '');
  const chk = h.nsnet(['check']);
  assert.equal(chk.status, 1);
  assert.match(chk.stdout, /firewall/);
  h.ok(['reconcile']);
  assert.equal(out(h.shIn(up.ns, client(up.hostIp, 8088))), up.ip, 'restored by reconcile');
  assert.equal(h.nsnet(['check']).status, 0);
});
