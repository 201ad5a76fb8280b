// The four network modes, foreground runs, --rm, logs, stop, static addresses, connect/disconnect, all through
// the CLI in a throwaway host netns.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TestHost, waitFor } from '../helpers/host.js';

type IpAddr = Array<{ ifname: string; flags: string[]; addr_info: Array<{ local: string; prefixlen: number; family: string }> }>;

test('network modes: bridge (default network), none, host, container:NAME', async (t) => {
  const h = TestHost.create('modes');
  t.after(() => h.cleanup());

  // Default network "bridge": created on first use, Docker's 172.17.0.0/16 and nsnet0.
  h.ok(['run', '-d', '--name', 'plain', '--', 'sleep', '300']);
  const plain = JSON.parse(h.ok(['inspect', 'plain']))[0];
  assert.equal(plain.NetworkSettings.Networks.bridge.IPAddress, '172.17.0.2');
  assert.equal(plain.NetworkSettings.IPAddress, '172.17.0.2', 'legacy top-level field on the default bridge');
  assert.equal(plain.NetworkSettings.SandboxKey, `/run/netns/${h.netnsName('plain')}`);
  assert.ok(h.links().includes('nsnet0'));
  assert.match(h.ok(['network', 'ls']), /\bbridge\s+bridge\s+local/);

  // none: own netns, loopback only, up.
  const none = JSON.parse(h.nsnet(['run', '--rm', '--network', 'none', '--', 'ip', '-j', 'addr']).stdout) as IpAddr;
  assert.deepEqual(none.map((i) => i.ifname), ['lo']);
  assert.ok(none[0].flags.includes('UP'));

  // host: the host's network stack (the test host's links are visible).
  const host = JSON.parse(h.nsnet(['run', '--rm', '--network', 'host', '--', 'ip', '-j', 'link']).stdout) as IpAddr;
  assert.ok(host.some((i) => i.ifname === 'nsnet0'), 'sees the host bridge');

  // container:NAME: the other container's netns (same eth0 and address), and its /etc/hosts.
  const side = JSON.parse(h.nsnet(['run', '--rm', '--network', 'container:plain', '--', 'ip', '-j', 'addr', 'show', 'eth0']).stdout) as IpAddr;
  assert.equal(side[0].addr_info.find((a) => a.family === 'inet')!.local, '172.17.0.2');
  h.ok(['run', '-d', '--name', 'side', '--network', 'container:plain', '--', 'sleep', '300']);
  assert.match(h.exec('side', 'cat /etc/hosts').stdout, /172\.17\.0\.2\s+plain/);
  // Without -f a netns in use by container:plain cannot go; with -f it does, as Docker's (compat-lifecycle).
  const refused = h.nsnet(['rm', 'plain']);
  assert.notEqual(refused.status, 0, 'a netns in use by container:plain cannot go');
  assert.match(refused.stderr, /in use by side/);
  const joinStopped = h.nsnet(['run', '--rm', '--network', 'container:nope', '--', 'true']);
  assert.match(joinStopped.stderr, /No such container: nope/);
  h.ok(['rm', '-f', 'side', 'plain']);
  assert.deepEqual(h.containerNetns(), []);
});

test('foreground runs return the exit code; --rm; logs; stop; rm', async (t) => {
  const h = TestHost.create('fg');
  t.after(() => h.cleanup());
  h.ok(['network', 'create', 'n1']);
  const fg = h.nsnet(['run', '--name', 'fg', '--network', 'n1', '--', 'sh', '-c', 'echo out; echo err >&2; exit 7']);
  assert.equal(fg.status, 7);
  assert.equal(fg.stdout, 'out\n');
  assert.equal(fg.stderr, 'err\n');
  assert.match(h.ok(['ps', '-a']), /Exited \(7\).*fg/);
  h.ok(['rm', 'fg']);

  const rmFg = h.nsnet(['run', '--rm', '--name', 'gone', '--network', 'n1', '--', 'true']);
  assert.equal(rmFg.status, 0);
  assert.equal(h.nsnet(['inspect', 'gone']).status, 1, '--rm removed it');

  h.ok(['run', '-d', '--name', 'talk', '--network', 'n1', '--', 'sh', '-c', 'echo hello from talk; sleep 300']);
  assert.equal(await waitFor(() => h.ok(['logs', 'talk'])), 'hello from talk');
  h.ok(['stop', '-t', '1', 'talk']);
  const st = JSON.parse(h.ok(['inspect', 'talk']))[0].State;
  assert.equal(st.Running, false);
  assert.equal(st.ExitCode, 143, 'ended by SIGTERM');
  h.ok(['start', 'talk']);
  assert.equal(JSON.parse(h.ok(['inspect', 'talk']))[0].State.Running, true, 'restarted');
  const busy = h.nsnet(['rm', 'talk']);
  assert.match(busy.stderr, /You cannot remove a running container talk/);
  h.ok(['rm', '-f', 'talk']);

  // A detached --rm container removes itself when its command ends.
  h.ok(['run', '-d', '--rm', '--name', 'brief', '--network', 'n1', '--', 'sleep', '0.2']);
  await waitFor(() => h.nsnet(['inspect', 'brief']).status !== 0, 8000, 100);
  // The row goes first (with the kernel objects recorded as garbage), the namespace right after.
  await waitFor(() => h.containerNetns().length === 0, 3000, 20);
  assert.equal(h.nsnet(['check']).status, 0);
});

test('static addresses, ip-range, connect/disconnect (multi-homed), addresses returned', async (t) => {
  const h = TestHost.create('conn');
  t.after(() => h.cleanup());
  h.ok(['network', 'create', '--subnet', '10.77.0.0/24', '--gateway', '10.77.0.1', '--ip-range', '10.77.0.128/25', 'app']);
  h.ok(['network', 'create', 'oa-net']);
  h.ok(['run', '-d', '--name', 'fixed', '--network', 'app', '--ip', '10.77.0.200', '--', 'sleep', '300']);
  h.ok(['run', '-d', '--name', 'dyn', '--network', 'app', '--', 'sleep', '300']);
  const ipOf = (c: string, n: string) => JSON.parse(h.ok(['inspect', c]))[0].NetworkSettings.Networks[n]?.IPAddress;
  assert.equal(ipOf('fixed', 'app'), '10.77.0.200');
  assert.equal(ipOf('dyn', 'app'), '10.77.0.128', 'dynamic addresses come from the ip-range');
  const dup = h.nsnet(['run', '-d', '--name', 'dup', '--network', 'app', '--ip', '10.77.0.200', '--', 'sleep', '1']);
  assert.match(dup.stderr, /Address already in use/);

  h.ok(['run', '-d', '--name', 'redis-sys', '--network', 'oa-net', '--', 'sleep', '300']);
  h.ok(['network', 'connect', '--ip', '10.77.0.50', 'app', 'redis-sys']);
  const addrs = JSON.parse(h.exec('redis-sys', 'ip -j addr').stdout) as IpAddr;
  assert.equal(addrs.find((i) => i.ifname === 'eth1')!.addr_info.find((a) => a.family === 'inet')!.local, '10.77.0.50');
  assert.match(h.exec('redis-sys', 'ip route show default').stdout, /via 172\.18\.0\.1 dev eth0/, 'default route stays on the first network');
  // IPv4-only networks: no IPv6 address on any interface nsnet made (a link-local path would bypass the IPv4
  // firewall), also after a connect.
  await new Promise((r) => setTimeout(r, 300));
  for (const i of addrs.filter((x) => x.ifname !== 'lo')) assert.ok(!i.addr_info.some((a) => a.family === 'inet6'), `${i.ifname}: no IPv6`);
  assert.doesNotMatch(h.exec('redis-sys', 'cat /proc/net/if_inet6').stdout, /eth\d/, 'no IPv6 address later either');
  // Both networks reachable from the multi-homed container.
  assert.equal(h.exec('redis-sys', 'ping -c1 -W2 10.77.0.200 >/dev/null && echo ok').stdout.trim(), 'ok');
  const net = JSON.parse(h.ok(['network', 'inspect', 'app']))[0];
  assert.deepEqual(Object.values(net.Containers).map((c) => (c as { Name: string }).Name).sort(), ['dyn', 'fixed', 'redis-sys']);
  assert.match(h.nsnet(['network', 'connect', 'app', 'redis-sys']).stderr, /already exists in network app/);

  h.ok(['network', 'disconnect', 'app', 'redis-sys']);
  const after = JSON.parse(h.exec('redis-sys', 'ip -j addr').stdout) as IpAddr;
  assert.deepEqual(after.map((i) => i.ifname).sort(), ['eth0', 'lo']);
  // The address went back to the pool: it can be taken again.
  h.ok(['run', '-d', '--name', 'again', '--network', 'app', '--ip', '10.77.0.50', '--', 'sleep', '300']);

  // Disconnecting the network that carried the default route moves it to the remaining one.
  h.ok(['network', 'connect', 'app', 'redis-sys']);
  h.ok(['network', 'disconnect', 'oa-net', 'redis-sys']);
  assert.match(h.exec('redis-sys', 'ip route show default').stdout, /via 10\.77\.0\.1 dev eth1/);

  h.ok(['rm', '-f', 'fixed', 'dyn', 'redis-sys', 'again']);
  assert.equal(h.ok(['network', 'prune', '-f']).includes('app'), true);
  assert.equal(h.nsnet(['check']).status, 0);
  await waitFor(() => h.links().every((l) => l === 'lo'), 5000, 50).catch(() => undefined); // veths die with their netns
  assert.deepEqual(h.links().filter((l) => l !== 'lo'), []);
});
