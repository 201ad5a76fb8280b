// Issue #10, the firewall's part: each test reproduces an attack or a fault (inside the test's own throwaway host
// netns, its "upstream" neighbour and its containers only) and checks that nsnet now holds.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { REPO, TestHost, must, waitFor, type Result } from '../helpers/host.js';

const SERV = path.join(REPO, 'test/fixtures/tinyserv.py');
const out = (r: Result) => r.stdout.trim();

/** Python one-liner: connect (TCP or UDP) and print what the server answered ('' on failure). */
function client(ip: string, port: number, proto: 'tcp' | 'udp' = 'tcp'): string {
  const py = proto === 'tcp'
    ? `import socket;s=socket.create_connection(('${ip}',${port}),timeout=1.5);print(s.recv(64).decode().strip())`
    : `import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.settimeout(1.5);s.sendto(b'x',('${ip}',${port}));print(s.recv(64).decode().strip())`;
  return `python3 -c "${py}" 2>/dev/null`;
}

/** A server that logs every UDP datagram and TCP connection it gets (with the peer address) to `log`, and answers. */
function loggingServer(dir: string, name: string): { script: string; log: string } {
  const log = path.join(dir, `${name}.log`);
  const script = path.join(dir, `${name}.py`);
  fs.writeFileSync(script, `import socket, sys, threading
port = int(sys.argv[1]); log = open(${JSON.stringify(log)}, 'a', buffering=1)
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', port))
    while True:
        d, a = s.recvfrom(512); log.write('udp %s\\n' % a[0]); s.sendto(b'got ' + a[0].encode(), a)
def tcp():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', port)); s.listen(16)
    while True:
        c, a = s.accept(); log.write('tcp %s\\n' % a[0]); c.sendall(b'got ' + a[0].encode() + b'\\n'); c.close()
threading.Thread(target=udp, daemon=True).start(); tcp()
`);
  return { script, log };
}
const logged = (log: string) => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '');

/** A DNS query for `name` (type A) as a Python bytes expression. */
function dnsQuery(name: string): string {
  const labels = name.split('.').map((l) => `bytes([${l.length}])+b'${l}'`).join('+');
  return `b'\\x12\\x34\\x01\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00'+${labels}+b'\\x00\\x00\\x01\\x00\\x01'`;
}

function gatewayOf(h: TestHost, net: string): string {
  return JSON.parse(h.ok(['network', 'inspect', net]))[0].IPAM.Config[0].Gateway;
}
/** Packets counted by the rule of `chain` whose comment contains `needle`. */
function counter(h: TestHost, chain: string, needle: string): number {
  const r = h.sh(`nft list chain inet nsnet ${chain}`).stdout.split('\n').find((l) => l.includes(needle));
  const m = r && /counter packets (\d+)/.exec(r);
  return m ? Number(m[1]) : -1;
}

test('HIGH: a port published on 127.0.0.1 is not reachable from a neighbour that routes 127.0.0.1 to the host (udp and tcp)', async (t) => {
  const h = TestHost.create('lo127');
  t.after(() => h.cleanup());
  const up = h.addUpstream();
  const srv = loggingServer(h.root, 'lo-srv');
  h.ok(['network', 'create', 'n1']);
  h.ok(['run', '-d', '--name', 'web', '--network', 'n1', '-p', '127.0.0.1:9009:9000/udp', '-p', '127.0.0.1:9010:9000', '--', 'python3', srv.script, '9000']);
  // Control: the host itself reaches both.
  assert.match(await waitFor(() => out(h.sh(client('127.0.0.1', 9010))), 8000, 100), /^got /);
  assert.match(out(h.sh(client('127.0.0.1', 9009, 'udp'))), /^got /);

  // The attack, inside the neighbour's netns only: accept loopback addresses on its wire, drop its own 127
  // routes and send 127.0.0.1 to the host's uplink address.
  for (const c of [
    'sysctl -qw net.ipv4.conf.all.route_localnet=1', 'sysctl -qw net.ipv4.conf.eth0.route_localnet=1',
    'ip route del local 127.0.0.1 table local', 'ip route del local 127.0.0.0/8 table local',
    `ip route add 127.0.0.1/32 via ${up.hostIp} dev eth0`,
  ]) must(h.shIn(up.ns, c), c);
  fs.writeFileSync(srv.log, '');
  const udp = out(h.shIn(up.ns, client('127.0.0.1', 9009, 'udp')));
  const tcp = out(h.shIn(up.ns, client('127.0.0.1', 9010)));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(udp, '', 'no UDP answer from the container');
  assert.equal(tcp, '', 'no TCP connection to the container');
  assert.doesNotMatch(logged(srv.log), new RegExp(up.ip.replace(/\./g, '\\.')), 'nothing from the neighbour reached the container');
  assert.ok(counter(h, 'prerouting', 'for the host itself') >= 2, 'nsnet\'s rule declined to DNAT them');
  // The host still reaches them.
  assert.match(out(h.sh(client('127.0.0.1', 9009, 'udp'))), /^got /);
});

test('MEDIUM: a second state directory on the same host netns is refused with one error naming the first', async (t) => {
  const h = TestHost.create('two');
  const rootB = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-test-b-')));
  t.after(() => {
    h.cleanup();
    fs.rmSync(rootB, { recursive: true, force: true });
  });
  const up = h.addUpstream();
  const B = (args: string[]) => h.nsnet(args, { env: { NSNET_ROOT: rootB } });
  h.ok(['network', 'create', 'n1']);
  h.ok(['run', '-d', '--name', 'web', '--network', 'n1', '-p', '8088:8080', '--', 'python3', SERV, 'whoami', '8080']);
  assert.equal(await waitFor(() => out(h.shIn(up.ns, client(up.hostIp, 8088))), 8000, 100), up.ip);
  const tableBefore = h.sh('nft list table inet nsnet').stdout;

  for (const args of [['network', 'create', 'x'], ['run', '-d', '--name', 'b1', '-p', '8089:80', '--', 'sleep', '300'], ['create', '--name', 'b2', '--', 'sleep', '1']]) {
    const r = B(args);
    assert.notEqual(r.status, 0, args.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1, `one error line: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^Error: another nsnet \\(state directory ${h.root}, id nsnet/${h.hostId}\\) manages this host network namespace`));
  }
  // B's reconcile (it has no networks) must not remove A's table; B's check is clean.
  must(B(['reconcile']), 'B reconcile');
  assert.equal(B(['check']).status, 0, B(['check']).stdout);
  assert.equal(h.sh('nft list table inet nsnet').stdout, tableBefore, 'A\'s table untouched by B');
  assert.equal(out(h.shIn(up.ns, client(up.hostIp, 8088))), up.ip, 'A\'s published port still answers');
  assert.equal(h.nsnet(['check']).status, 0, h.nsnet(['check']).stdout);
  assert.equal(B(['ps', '-a', '-q']).stdout.trim(), '', 'B created nothing');
  assert.match(tableBefore, new RegExp(`comment "nsnet/${h.hostId} ${h.root}"`), 'the table names its owner');
});

test('MEDIUM: another table\'s drop-policy forward chain is reported by check and warned about once; its advice works', async (t) => {
  const h = TestHost.create('fdrop');
  t.after(() => h.cleanup());
  const up = h.addUpstream();
  // As firewalld/ufw make it, inside the test's host netns only.
  must(h.sh('nft add table inet filter && nft add chain inet filter forward "{ type filter hook forward priority 0; policy drop; }"'), 'drop chain');
  const net = h.nsnet(['network', 'create', 'n1']);
  assert.equal(net.status, 0, net.stderr);
  const warns = net.stderr.trim().split('\n');
  assert.equal(warns.length, 1, net.stderr);
  assert.match(warns[0], /^WARNING: table inet filter chain forward \(hook forward, policy drop\) drops nsnet's published ports, outbound traffic, hairpin .* on nsbr-[0-9a-f]+: add to that chain: iifname "nsbr-[0-9a-f]+" accept; oifname "nsbr-[0-9a-f]+" accept$/);
  const run = h.nsnet(['run', '-d', '--name', 'web', '--network', 'n1', '-p', '8088:8080', '--', 'python3', SERV, 'whoami', '8080']);
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stderr.trim().split('\n').filter((l) => l.startsWith('WARNING: table inet filter chain forward')).length, 1, run.stderr);
  const chk = h.nsnet(['check']);
  assert.equal(chk.status, 1);
  assert.match(chk.stdout, /^foreign-firewall\ttable inet filter chain forward \(hook forward, policy drop\)/m);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(out(h.shIn(up.ns, client(up.hostIp, 8088))), '', 'control: the foreign chain really drops the published port');

  // Following the advice word for word makes the port work and the report go away.
  const advice = /add to that chain: (.*)$/.exec(warns[0])![1];
  for (const rule of advice.split('; ')) must(h.sh(`nft add rule inet filter forward ${rule}`), rule);
  assert.equal(await waitFor(() => out(h.shIn(up.ns, client(up.hostIp, 8088))), 8000, 100), up.ip);
  assert.equal(h.nsnet(['check']).status, 0, h.nsnet(['check']).stdout);
  const again = h.nsnet(['run', '-d', '--name', 'web2', '--network', 'n1', '-p', '8090:8080', '--', 'sleep', '300']);
  assert.equal(again.status, 0, again.stderr);
  assert.doesNotMatch(again.stderr, /WARNING/);

  // A drop-policy INPUT chain breaks the containers' DNS (the resolver is on the gateway): reported, with advice.
  must(h.sh('nft add chain inet filter input "{ type filter hook input priority 0; policy drop; }"'), 'input drop chain');
  const chk2 = h.nsnet(['check']);
  assert.equal(chk2.status, 1);
  const line = chk2.stdout.split('\n').find((l) => l.startsWith('foreign-firewall\ttable inet filter chain input'));
  assert.ok(line, chk2.stdout);
  assert.match(line!, /DNS from containers to the resolver on their gateway on nsbr-[0-9a-f]+: add to that chain: iifname "nsbr-[0-9a-f]+" meta l4proto \{ tcp, udp \} th dport 53 accept$/);
  assert.equal(out(h.exec('web2', 'getent hosts web')), '', 'control: DNS is dropped');
  must(h.sh(`nft add rule inet filter input ${/add to that chain: (.*)$/.exec(line!)![1]}`), 'input advice');
  assert.match(out(h.exec('web2', 'getent hosts web')), /^\d+\.\d+\.\d+\.\d+\s+web/, 'DNS works with the advice');
  assert.equal(h.nsnet(['check']).status, 0, h.nsnet(['check']).stdout);
});

test('MEDIUM: after nft flush ruleset, run -p and rm -f recreate the firewall; rm never half-removes; the loopback guard holds', async (t) => {
  const h = TestHost.create('flush2');
  t.after(() => h.cleanup());
  const up = h.addUpstream();
  h.ok(['network', 'create', 'n1']);
  h.ok(['run', '-d', '--name', 'web', '--network', 'n1', '-p', '8088:8080', '--', 'python3', SERV, 'whoami', '8080']);
  assert.equal(await waitFor(() => out(h.shIn(up.ns, client(up.hostIp, 8088))), 8000, 100), up.ip);

  h.sh('nft flush ruleset'); // the test's own host netns only
  const run = h.nsnet(['run', '-d', '--name', 'web2', '--network', 'n1', '-p', '8090:8080', '--', 'python3', SERV, 'whoami', '8080']);
  assert.equal(run.status, 0, run.stderr);
  assert.equal(await waitFor(() => out(h.shIn(up.ns, client(up.hostIp, 8090))), 8000, 100), up.ip, 'the new port works');
  assert.equal(out(h.shIn(up.ns, client(up.hostIp, 8088))), up.ip, 'the whole firewall came back, the old port too');
  assert.equal(h.nsnet(['check']).status, 0, h.nsnet(['check']).stdout);

  h.sh('nft flush ruleset');
  const rm = h.nsnet(['rm', '-f', 'web2']);
  assert.equal(rm.status, 0, rm.stderr);
  assert.ok(!h.containerNetns().includes(h.netnsName('web2')), 'its netns is gone');
  assert.doesNotMatch(h.ok(['ps', '-a']), /web2/);
  assert.equal(await waitFor(() => out(h.shIn(up.ns, client(up.hostIp, 8088))), 8000, 100), up.ip, 'rm restored the firewall of the others');
  assert.equal(out(h.shIn(up.ns, client(up.hostIp, 8090))), '', 'the removed container\'s port is gone');
  assert.equal(h.nsnet(['check']).status, 0, h.nsnet(['check']).stdout);

  // route_localnet stays on the bridge, so the guard must not depend on nsnet's table: flush once more and
  // try to reach a loopback-only service of the host from a container (CVE-2020-8558's route trick).
  h.sh(`python3 -c "import socket;s=socket.socket();s.setsockopt(1,2,1);s.bind(('127.0.0.2',7070));s.listen(8)
while True:
  c,a=s.accept();c.sendall(b'host-loopback\\n');c.close()" </dev/null >/dev/null 2>&1 &`);
  // And a UDP one: a blind datagram needs no answer, so only the ingress side of the guard can stop it.
  const ulog = path.join(h.root, 'host-udp.log');
  h.sh(`python3 -c "import socket;s=socket.socket(2,2);s.bind(('127.0.0.2',7071));f=open('${ulog}','a',buffering=1)
while True:
  d,a=s.recvfrom(99);f.write(a[0]+'\\n')" </dev/null >/dev/null 2>&1 &`);
  await waitFor(() => h.sh('ss -ltn').stdout.includes('127.0.0.2:7070') && h.sh('ss -lun').stdout.includes('127.0.0.2:7071'), 5000);
  h.sh(`python3 -c "import socket;socket.socket(2,2).sendto(b'x',('127.0.0.2',7071))"`);
  await waitFor(() => /^127\./m.test(logged(ulog)), 5000); // control: the server logs what it gets
  const gw = gatewayOf(h, 'n1');
  for (const c of ['sysctl -qw net.ipv4.conf.all.route_localnet=1', 'sysctl -qw net.ipv4.conf.eth0.route_localnet=1',
    'ip rule add pref 100 lookup local', 'ip rule del pref 0', 'ip rule add to 127.0.0.2 lookup 100 pref 10',
    `ip route add 127.0.0.2 via ${gw} dev eth0 table 100`]) must(h.exec('web', c), c);
  h.sh('nft flush ruleset');
  assert.equal(out(h.exec('web', client('127.0.0.2', 7070))), '', 'no host loopback service from a container, even without nsnet\'s table');
  for (let i = 0; i < 3; i++) h.exec('web', `python3 -c "import socket;socket.socket(2,2).sendto(b'x',('127.0.0.2',7071))"`);
  await new Promise((r) => setTimeout(r, 300));
  assert.doesNotMatch(logged(ulog), /172\./, 'no datagram from a container reached the host\'s loopback-only UDP service');
  const chk = h.nsnet(['check']);
  assert.equal(chk.status, 1);
  assert.match(chk.stdout, /firewall/);
  h.ok(['reconcile']);
  assert.equal(out(h.exec('web', client('127.0.0.2', 7070))), '', 'nor with it');
  assert.equal(h.nsnet(['check']).status, 0);

  // A chain emptied by hand (sets and maps intact) is a difference too, and reconcile restores it.
  must(h.sh('nft flush chain inet nsnet forward'), 'flush chain');
  const partial = h.nsnet(['check']);
  assert.equal(partial.status, 1);
  assert.match(partial.stdout, /^firewall\tchain forward has 0 rules, \d+ expected$/m);
  h.ok(['reconcile']);
  assert.equal(h.nsnet(['check']).status, 0);
});

test('MEDIUM: the resolver does not take queries with a spoofed in-subnet source from the uplink', async (t) => {
  const h = TestHost.create('dnssp');
  t.after(() => h.cleanup());
  const up = h.addUpstream();
  // The upstream resolver of the test host (test-resolv.conf) is the neighbour: log what reaches it.
  const dlog = path.join(h.root, 'upstream-dns.log');
  h.shIn(up.ns, `python3 -c "import socket;s=socket.socket(2,2);s.bind(('${up.ip}',53));f=open('${dlog}','a',buffering=1)
while True:
  d,a=s.recvfrom(512);f.write(repr(d)+'\\n')" </dev/null >/dev/null 2>&1 &`);
  h.ok(['network', 'create', 'n1']);
  const gw = gatewayOf(h, 'n1');
  const subnet = JSON.parse(h.ok(['network', 'inspect', 'n1']))[0].IPAM.Config[0].Subnet as string;
  const spoofed = gw.replace(/\.1$/, '.77');
  h.ok(['run', '-d', '--name', 'c1', '--network', 'n1', '--', 'sleep', '300']);
  const send = (name: string) => `python3 -c "import socket;s=socket.socket(2,2);s.bind(('%SRC%',0));s.sendto(${dnsQuery(name)},('${gw}',53))"`;
  // Control: a container's query for an outside name is forwarded to the neighbour.
  await waitFor(() => {
    h.exec('c1', send('ctl.example').replace('%SRC%', '0.0.0.0'));
    return logged(dlog).includes('ctl');
  }, 10000, 300);

  // The attack, from the neighbour's netns: an address of the container subnet on its own lo, a route to the subnet.
  must(h.shIn(up.ns, `ip addr add ${spoofed}/32 dev lo && ip route add ${subnet} via ${up.hostIp}`), 'spoof setup');
  for (let i = 0; i < 3; i++) must(h.shIn(up.ns, send('spoofed.example').replace('%SRC%', spoofed)), 'send spoofed');
  await new Promise((r) => setTimeout(r, 1000));
  assert.doesNotMatch(logged(dlog), /spoofed/, 'the spoofed query was not forwarded upstream');
  assert.ok(counter(h, 'input', 'DNS on its gateway only from its own bridge') >= 3, 'dropped by nsnet\'s input rule');
  // TCP too: no connection to the resolver from outside.
  assert.equal(out(h.shIn(up.ns, `python3 -c "import socket;s=socket.create_connection(('${gw}',53),timeout=1.5);print('open')" 2>/dev/null`)), '');
  // The container's own queries still work.
  h.exec('c1', send('after.example').replace('%SRC%', '0.0.0.0'));
  await waitFor(() => logged(dlog).includes('after'), 5000, 100);
});

test('LOW: --internal containers reach nothing of the host but DNS on their own gateway', async (t) => {
  const h = TestHost.create('inthost');
  t.after(() => h.cleanup());
  const up = h.addUpstream();
  h.sh(`python3 ${SERV} whoami 7071 </dev/null >/dev/null 2>&1 &`);
  await waitFor(() => h.sh('ss -ltn').stdout.includes(':7071'), 5000);
  h.ok(['network', 'create', '--internal', 'vault']);
  h.ok(['network', 'create', 'open']);
  h.ok(['run', '-d', '--name', 'v1', '--network', 'vault', '--', 'python3', SERV, 'whoami', '8080']);
  h.ok(['run', '-d', '--name', 'v2', '--network', 'vault', '--', 'sleep', '300']);
  h.ok(['run', '-d', '--name', 'o1', '--network', 'open', '--', 'sleep', '300']);
  const vgw = gatewayOf(h, 'vault');
  const ogw = gatewayOf(h, 'open');
  // A normal network reaches the host's services (as Docker).
  assert.notEqual(await waitFor(() => out(h.exec('o1', client(ogw, 7071))), 8000, 100), '');
  for (const addr of [vgw, ogw, up.hostIp, '127.0.0.1']) {
    assert.equal(out(h.exec('v2', client(addr, 7071))), '', `internal: no host service on ${addr}`);
  }
  // DNS on its own gateway works: v2 resolves v1.
  const v1ip = JSON.parse(h.ok(['inspect', 'v1']))[0].NetworkSettings.Networks.vault.IPAddress;
  assert.equal(out(h.exec('v2', 'python3 -c "import socket;print(socket.gethostbyname(\'v1\'))"')), v1ip);
  // The host still reaches the internal containers, and they still reach each other.
  assert.notEqual(await waitFor(() => out(h.sh(client(v1ip, 8080))), 8000, 100), '');
  assert.notEqual(out(h.exec('v2', client(v1ip, 8080))), '');
});

test('LOW: icc=false holds over IPv6 link-local when br_netfilter is off (a container re-enabling IPv6)', async (t) => {
  const h = TestHost.create('icc6');
  t.after(() => h.cleanup());
  // br_netfilter's switches are per netns: only the test's host netns is changed.
  must(h.sh('sysctl -qw net.bridge.bridge-nf-call-iptables=0 net.bridge.bridge-nf-call-ip6tables=0'), 'br_netfilter off');
  h.ok(['network', 'create', '-o', 'icc=false', 'quiet']);
  h.ok(['network', 'create', 'loud']);
  const server = 'python3 -c "import socket;s=socket.socket(socket.AF_INET6);s.setsockopt(1,2,1);s.bind((\'::\',8081));s.listen(8)\nwhile True:\n  c,a=s.accept();c.sendall(b\'v6\\n\');c.close()"';
  for (const [c, n] of [['q1', 'quiet'], ['q2', 'quiet'], ['l1', 'loud'], ['l2', 'loud']]) {
    h.ok(['run', '-d', '--name', c, '--network', n, '--', 'sleep', '300']);
    must(h.exec(c, 'sysctl -qw net.ipv6.conf.eth0.disable_ipv6=0 net.ipv6.conf.lo.disable_ipv6=0'), 'ipv6 on');
  }
  for (const c of ['q1', 'l1']) h.exec(c, `${server} </dev/null >/dev/null 2>&1 &`);
  const ll = async (c: string) => waitFor(() => /inet6 (fe80::[0-9a-f:]+)\/64 scope link\s*\n(?!.*tentative)/.exec(h.exec(c, 'ip -6 addr show dev eth0').stdout)?.[1], 8000, 100);
  const q1 = await ll('q1');
  const l1 = await ll('l1');
  await ll('q2');
  await ll('l2');
  const v6 = (addr: string) => `python3 -c "import socket;s=socket.create_connection(('${addr}%eth0',8081),timeout=1.5);print(s.recv(8).decode().strip())" 2>/dev/null`;
  // Control: on an icc=true network the same works (so the probe itself is sound).
  assert.equal(await waitFor(() => out(h.exec('l2', v6(l1!))), 8000, 200), 'v6');
  assert.equal(out(h.exec('q2', v6(q1!))), '', 'icc=false: no IPv6 link-local between containers');
  assert.equal(out(h.exec('q2', `ping -6 -c1 -W1 ${q1}%eth0 >/dev/null && echo reached`)), '', 'nor ICMPv6');
  // IPv4 on the icc=false network: the gateway still reachable (ARP, ping), the neighbour not.
  const gw = gatewayOf(h, 'quiet');
  assert.equal(out(h.exec('q2', `ping -c1 -W1 ${gw} >/dev/null && echo ok`)), 'ok');
  assert.equal(h.nsnet(['check']).status, 0, h.nsnet(['check']).stdout);
});
