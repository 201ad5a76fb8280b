// The seed document's walk-through, end to end, in a throwaway host netns: oa-net with redis-sys, postgres and
// oa-java talking over the bridge, outbound traffic masqueraded to an upstream machine, and everything removed.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { REPO, TestHost, waitFor } from '../helpers/host.js';

const SERV = path.join(REPO, 'test/fixtures/tinyserv.py');

test('seed walk-through: oa-net, three servers over the bridge, masquerade, clean removal', async (t) => {
  const h = TestHost.create('seed');
  t.after(() => h.cleanup());
  const up = h.addUpstream();
  h.shIn(up.ns, `python3 ${SERV} whoami 7000 </dev/null >/dev/null 2>&1 &`);

  const netId = h.ok(['network', 'create', 'oa-net']);
  assert.match(netId, /^[0-9a-f]{64}$/);
  const net = JSON.parse(h.ok(['network', 'inspect', 'oa-net']))[0];
  assert.equal(net.Name, 'oa-net');
  assert.equal(net.Id, netId);
  assert.equal(net.IPAM.Config[0].Subnet, '172.18.0.0/16', 'first user network takes 172.18.0.0/16 as Docker');
  assert.equal(net.IPAM.Config[0].Gateway, '172.18.0.1');
  const br = net.Options['com.docker.network.bridge.name'];
  const brAddr = JSON.parse(h.sh(`ip -j addr show dev ${br}`).stdout)[0];
  assert.ok(brAddr.addr_info.some((a: { local: string; prefixlen: number }) => a.local === '172.18.0.1' && a.prefixlen === 16), 'gateway on the bridge');
  assert.equal(h.sh('cat /proc/sys/net/ipv4/ip_forward').stdout.trim(), '1', 'ip_forward on in the host netns');

  h.ok(['run', '-d', '--name', 'redis-sys', '--network', 'oa-net', '--', 'python3', SERV, 'redis', '6379']);
  h.ok(['run', '-d', '--name', 'postgres', '--network', 'oa-net', '--', 'python3', SERV, 'pg', '5432']);
  const redis = JSON.parse(h.ok(['inspect', 'redis-sys']))[0];
  const pg = JSON.parse(h.ok(['inspect', 'postgres']))[0];
  const rip = redis.NetworkSettings.Networks['oa-net'].IPAddress;
  const pip = pg.NetworkSettings.Networks['oa-net'].IPAddress;
  assert.equal(rip, '172.18.0.2');
  assert.equal(pip, '172.18.0.3');
  assert.equal(redis.NetworkSettings.Networks['oa-net'].MacAddress, '02:42:ac:12:00:02', 'MAC derived from the IP as Docker');
  assert.equal(redis.NetworkSettings.Networks['oa-net'].Gateway, '172.18.0.1');
  assert.equal(redis.State.Running, true);

  h.ok(['run', '-d', '--name', 'oa-java', '--network', 'oa-net', '--', 'python3', SERV, 'http', '8088', `redis-sys=${rip}:6379`, `postgres=${pip}:5432`]);
  const java = JSON.parse(h.ok(['inspect', 'oa-java']))[0].NetworkSettings.Networks['oa-net'].IPAddress;

  // The app reaches both backends over the bridge.
  const deps = await waitFor(() => {
    const r = h.sh(`curl -s --max-time 2 http://${java}:8088/deps || python3 -c "import urllib.request;print(urllib.request.urlopen('http://${java}:8088/deps',timeout=2).read().decode())"`);
    return r.stdout.includes('redis-sys=+PONG') ? r.stdout : '';
  }, 10000, 200);
  assert.match(deps, /redis-sys=\+PONG postgres=1/);

  // Inside a container: own netns, loopback up, eth0 with its address, default route via the gateway.
  const addr = h.exec('redis-sys', 'ip -j addr show');
  const ifs = JSON.parse(addr.stdout) as Array<{ ifname: string; operstate: string; flags: string[]; addr_info: Array<{ local: string }> }>;
  assert.ok(ifs.find((i) => i.ifname === 'lo')!.flags.includes('UP'));
  assert.ok(ifs.find((i) => i.ifname === 'eth0')!.addr_info.some((a) => a.local === rip));
  assert.match(h.exec('redis-sys', 'ip route show default').stdout, /default via 172\.18\.0\.1 dev eth0/);

  // Outbound: the upstream server sees the host's address (masquerade), not the container's.
  const seen = await waitFor(() => h.exec('oa-java', `python3 -c "import socket;s=socket.create_connection(('${up.ip}',7000),timeout=2);print(s.recv(64).decode().strip())"`).stdout.trim(), 8000, 200);
  assert.equal(seen, up.hostIp, 'masqueraded to the host address on the uplink');

  // ps lists them, logs are kept.
  const ps = h.ok(['ps']);
  for (const n of ['redis-sys', 'postgres', 'oa-java']) assert.match(ps, new RegExp(n));

  // Removing a network with containers attached is refused and changes nothing.
  const refused = h.nsnet(['network', 'rm', 'oa-net']);
  assert.notEqual(refused.status, 0);
  assert.match(refused.stderr, /has active endpoints/);

  // Remove everything: nothing left behind in the host netns or /run/netns.
  h.ok(['rm', '-f', 'redis-sys', 'postgres', 'oa-java']);
  h.ok(['network', 'rm', 'oa-net']);
  assert.deepEqual(h.containerNetns(), []);
  // Each veth dies with its container's netns (rm leaves it to the kernel): a moment later.
  await waitFor(() => h.links().every((l) => l === 'lo' || l === 'upl0'), 5000, 50).catch(() => undefined);
  assert.deepEqual(h.links().filter((l) => l !== 'lo' && l !== 'upl0'), []);
  assert.equal(h.ok(['ps', '-a', '-q']), '');
  const check = h.nsnet(['check']);
  assert.equal(check.status, 0, check.stdout + check.stderr);
});
