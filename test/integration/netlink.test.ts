// Integration tests of src/kernel/netlink.ts against the real kernel. Every test works only inside throwaway
// network namespaces (nlt-<random>) it creates with `ip netns add` and deletes afterwards, even on failure; the
// sockets under test are opened inside them (setns there, Netlink.open(), setns back). The host's own interfaces,
// addresses and routes are never touched. Needs root.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { CLONE_NEWNET, close, openPath, setns } from '../../src/kernel/libc.js';
import { Netlink, NetlinkError, type LinkInfo } from '../../src/kernel/netlink.js';

/** The netns this thread started in; every switch returns here. */
const SELF = openPath('/proc/thread-self/ns/net');
const SELF_INO = fs.statSync('/proc/thread-self/ns/net').ino;

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

interface IpLink {
  ifindex: number;
  ifname: string;
  mtu: number;
  address: string;
  operstate: string;
  flags: string[];
  master?: string;
  ifalias?: string;
  link_netnsid?: number;
  linkinfo?: { info_kind?: string };
}
interface IpAddr { ifname: string; addr_info: Array<{ family: string; local: string; prefixlen: number; broadcast?: string; tentative?: boolean }> }
interface IpRoute { dst: string; gateway?: string; dev?: string; protocol?: string; scope?: string; table?: string }

function ipJson<T>(ns: string, ...args: string[]): T {
  return JSON.parse(ip('-n', ns, '-j', ...args)) as T;
}
function ipLink(ns: string, dev: string): IpLink {
  return ipJson<IpLink[]>(ns, '-d', 'link', 'show', 'dev', dev)[0];
}

interface Ns {
  name: string;
  /** fd of /run/netns/<name> (for IFLA_NET_NS_FD). */
  fd: number;
  /** A socket bound to this netns. */
  nl: Netlink;
}

/** A throwaway netns with a Netlink socket inside it; both are removed when the test ends, whatever happens. */
function netns(t: TestContext): Ns {
  const name = `nlt-${crypto.randomBytes(4).toString('hex')}`;
  ip('netns', 'add', name);
  const ns: { name: string; fd: number; nl: Netlink | null } = { name, fd: -1, nl: null };
  t.after(() => {
    ns.nl?.close();
    if (ns.fd >= 0) close(ns.fd);
    spawnSync('ip', ['netns', 'del', name]);
  });
  ns.fd = openPath(`/run/netns/${name}`);
  setns(ns.fd, CLONE_NEWNET);
  try {
    ns.nl = Netlink.open();
  } finally {
    setns(SELF, CLONE_NEWNET);
  }
  assert.equal(fs.statSync('/proc/thread-self/ns/net').ino, SELF_INO, 'switched back to the original netns');
  return ns as Ns;
}

function must<T>(v: T | null | undefined, what: string): T {
  assert.ok(v !== null && v !== undefined, `${what} is missing`);
  return v;
}

/** What src/drivers/bridge.ts attach() does: veth into `c` enslaved to `br` in `h`, then address and route. */
function attach(h: Ns, br: number, c: Ns, hostIf: string, addr: string, prefix: number, gw: string): number {
  const hostIndex = h.nl.createVeth(hostIf, 'eth0', c.fd, { master: br, up: true, alias: 'nlt' });
  const peer = must(c.nl.ifindex('eth0'), 'eth0');
  c.nl.batch((b) => {
    b.setUp(1);
    b.setUp(peer);
    b.addAddress(peer, addr, prefix);
    b.addRoute({ dst: '0.0.0.0', prefixLen: 0, gateway: gw });
  });
  return hostIndex;
}

/** Runs `fn`, which must throw a NetlinkError with code `expected`; returns the error. */
function fails(fn: () => unknown, expected: string): NetlinkError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof NetlinkError, `expected a NetlinkError, got ${String(e)}`);
    assert.equal(e.code, expected, e.message);
    return e;
  }
  assert.fail(`expected ${expected}`);
}

test('a fresh netns: only lo (ifindex 1, down); sockets act in their own netns', (t) => {
  const a = netns(t);
  const b = netns(t);
  const links = a.nl.links();
  assert.equal(links.length, 1);
  assert.deepEqual(
    { index: links[0].index, name: links[0].name, kind: links[0].kind, up: links[0].up, mac: links[0].mac },
    { index: 1, name: 'lo', kind: null, up: false, mac: '00:00:00:00:00:00' },
  );
  a.nl.createBridge('only-in-a');
  assert.equal(b.nl.linkByName('only-in-a'), null);
  assert.equal(ipLink(a.name, 'only-in-a').ifname, 'only-in-a');
  assert.equal(spawnSync('ip', ['link', 'show', 'dev', 'only-in-a'], { stdio: 'ignore' }).status !== 0, true,
    'the bridge is not in the test process\'s netns');
});

test('Netlink.openIn(fd) binds the socket to that netns and leaves the thread where it was', (t) => {
  const a = netns(t);
  a.nl.createBridge('nlt-marker');
  const nl = Netlink.openIn(a.fd);
  try {
    assert.equal(fs.statSync('/proc/thread-self/ns/net').ino, SELF_INO);
    assert.ok(nl.linkByName('nlt-marker'));
  } finally {
    nl.close();
  }
});

test('bridge: create with mtu/mac/alias/up, read back, change, delete', (t) => {
  const h = netns(t);
  const br = h.nl.createBridge('nlt-br0', { mtu: 1400, mac: '02:42:ac:11:00:01', alias: 'nsnet-test', up: true });
  assert.ok(br > 1);
  const l = must(h.nl.linkByName('nlt-br0'), 'bridge');
  assert.deepEqual(
    { index: l.index, kind: l.kind, mtu: l.mtu, mac: l.mac, alias: l.alias, up: l.up, master: l.master },
    { index: br, kind: 'bridge', mtu: 1400, mac: '02:42:ac:11:00:01', alias: 'nsnet-test', up: true, master: null },
  );
  assert.equal(l.operUp, false, 'a bridge without ports has no carrier');
  assert.deepEqual(h.nl.linkByIndex(br), l);
  const j = ipLink(h.name, 'nlt-br0');
  assert.equal(j.ifindex, br);
  assert.equal(j.mtu, 1400);
  assert.equal(j.address, '02:42:ac:11:00:01');
  assert.equal(j.ifalias, 'nsnet-test');
  assert.equal(j.linkinfo?.info_kind, 'bridge');
  assert.ok(j.flags.includes('UP'));

  h.nl.setMtu(br, 1300);
  h.nl.setMac(br, '02:00:00:00:00:aa');
  h.nl.setAlias(br, 'renamed alias');
  h.nl.setDown(br);
  const j2 = ipLink(h.name, 'nlt-br0');
  assert.equal(j2.mtu, 1300);
  assert.equal(j2.address, '02:00:00:00:00:aa');
  assert.equal(j2.ifalias, 'renamed alias');
  assert.ok(!j2.flags.includes('UP'));
  h.nl.setAlias(br, '');
  assert.equal(must(h.nl.linkByName('nlt-br0'), 'bridge').alias, null);
  h.nl.setUp(br);
  assert.equal(must(h.nl.linkByIndex(br), 'bridge').up, true);

  assert.equal(h.nl.ifindex('nlt-br0'), br);
  h.nl.deleteLink(br);
  assert.equal(h.nl.linkByName('nlt-br0'), null);
  assert.equal(h.nl.linkByIndex(br), null);
  assert.equal(h.nl.ifindex('nlt-br0'), null);
});

test('veth: peer created inside a second netns, host end enslaved, up and labelled', (t) => {
  const h = netns(t);
  const c = netns(t);
  const br = h.nl.createBridge('nlt-br0', { up: true });
  const v = h.nl.createVeth('nlt-v0', 'eth0', c.fd, {
    master: br, mtu: 1450, hostMac: '02:00:00:00:01:01', peerMac: '02:00:00:00:01:02', alias: 'nsnet-ep', up: true,
  });
  const host = must(h.nl.linkByName('nlt-v0'), 'host end');
  assert.deepEqual(
    { index: host.index, kind: host.kind, master: host.master, mtu: host.mtu, mac: host.mac, alias: host.alias, up: host.up },
    { index: v, kind: 'veth', master: br, mtu: 1450, mac: '02:00:00:00:01:01', alias: 'nsnet-ep', up: true },
  );
  assert.equal(host.operUp, false, 'no carrier while the peer is down');
  assert.equal(h.nl.linkByName('eth0'), null, 'the peer is not in the host netns');

  const jh = ipLink(h.name, 'nlt-v0');
  assert.equal(jh.master, 'nlt-br0');
  assert.equal(jh.ifalias, 'nsnet-ep');
  assert.equal(jh.mtu, 1450);
  assert.ok(jh.flags.includes('UP'));
  assert.equal(typeof jh.link_netnsid, 'number', 'the peer lives in another netns');

  const peer = must(c.nl.linkByName('eth0'), 'peer');
  assert.deepEqual(
    { kind: peer.kind, mtu: peer.mtu, mac: peer.mac, up: peer.up, master: peer.master },
    { kind: 'veth', mtu: 1450, mac: '02:00:00:00:01:02', up: false, master: null },
  );
  const jc = ipLink(c.name, 'eth0');
  assert.equal(jc.address, '02:00:00:00:01:02');
  assert.ok(!jc.flags.includes('UP'));

  c.nl.setUp(peer.index);
  assert.equal(ipLink(c.name, 'eth0').operstate, 'UP');
  const hostAfter = must(h.nl.linkByIndex(v), 'host end');
  assert.equal(hostAfter.operUp, true);
  assert.equal(hostAfter.operState, 'up');

  h.nl.setMaster(v, null);
  assert.equal(must(h.nl.linkByIndex(v), 'host end').master, null);
  h.nl.setMaster(v, br);
  assert.equal(ipLink(h.name, 'nlt-v0').master, 'nlt-br0');

  h.nl.deleteLink(v);
  assert.equal(h.nl.linkByName('nlt-v0'), null);
  assert.equal(c.nl.linkByName('eth0'), null, 'deleting one end deletes the pair');
});

test('addresses: IPv4 with broadcast, IPv6, dump by family, delete', (t) => {
  const h = netns(t);
  const br = h.nl.createBridge('nlt-br0', { up: true });
  h.nl.addAddress(br, '192.0.2.1', 24, { broadcast: '+' });
  h.nl.addAddress(br, '198.51.100.7', 25, { broadcast: '198.51.100.127' });
  h.nl.addAddress(br, '2001:db8:0:1::1', 64, { nodad: true });

  const mine = (fam?: 4 | 6) => h.nl.addresses(fam).filter((a) => a.index === br && a.scope === 0)
    .map((a) => `${a.family} ${a.address}/${a.prefixLen}`).sort();
  assert.deepEqual(mine(), ['4 192.0.2.1/24', '4 198.51.100.7/25', '6 2001:db8:0:1::1/64']);
  assert.deepEqual(mine(4), ['4 192.0.2.1/24', '4 198.51.100.7/25']);
  assert.deepEqual(mine(6), ['6 2001:db8:0:1::1/64']);

  const j = ipJson<IpAddr[]>(h.name, 'addr', 'show', 'dev', 'nlt-br0')[0].addr_info;
  const v4 = j.find((a) => a.local === '192.0.2.1');
  assert.equal(v4?.prefixlen, 24);
  assert.equal(v4?.broadcast, '192.0.2.255');
  assert.equal(j.find((a) => a.local === '198.51.100.7')?.broadcast, '198.51.100.127');
  const v6 = j.find((a) => a.local === '2001:db8:0:1::1');
  assert.equal(v6?.prefixlen, 64);
  assert.ok(!v6?.tentative, 'nodad: not tentative');

  const e = fails(() => h.nl.addAddress(br, '192.0.2.1', 24), 'EEXIST');
  assert.equal(e.op, 'addAddress');
  h.nl.deleteAddress(br, '192.0.2.1', 24);
  h.nl.deleteAddress(br, '2001:db8:0:1::1', 64);
  assert.deepEqual(mine(), ['4 198.51.100.7/25']);
  fails(() => h.nl.deleteAddress(br, '192.0.2.1', 24), 'EADDRNOTAVAIL');
});

test('routes: default route via a gateway inside the peer netns, IPv6, other tables, delete', (t) => {
  const h = netns(t);
  const c = netns(t);
  const br = h.nl.createBridge('nlt-br0', { up: true });
  h.nl.addAddress(br, '192.0.2.1', 24);
  attach(h, br, c, 'nlt-v0', '192.0.2.2', 24, '192.0.2.1');
  const eth0 = must(c.nl.ifindex('eth0'), 'eth0');

  const def = c.nl.routes(4).find((r) => r.prefixLen === 0);
  assert.deepEqual(def, {
    family: 4, dst: '0.0.0.0', prefixLen: 0, gateway: '192.0.2.1', oif: eth0, table: 254, protocol: 3, scope: 0,
    type: 1, metric: null,
  });
  const connected = c.nl.routes(4).find((r) => r.dst === '192.0.2.0');
  assert.equal(connected?.prefixLen, 24);
  assert.equal(connected?.protocol, 2, 'kernel route of the address');
  assert.equal(connected?.scope, 253);
  assert.equal(connected?.gateway, null);
  const j = ipJson<IpRoute[]>(c.name, 'route');
  // ip leaves out "proto boot" (what `ip route add` uses, as we do).
  assert.ok(j.some((r) => r.dst === 'default' && r.gateway === '192.0.2.1' && r.dev === 'eth0' && (r.protocol ?? 'boot') === 'boot'),
    JSON.stringify(j));

  // IPv6 default route over the same link, and an on-link route with a metric.
  c.nl.addAddress(eth0, '2001:db8::2', 64, { nodad: true });
  c.nl.addRoute({ dst: '::', prefixLen: 0, gateway: '2001:db8::1' });
  c.nl.addRoute({ dst: '198.18.0.0', prefixLen: 15, oif: eth0, metric: 50 });
  const def6 = c.nl.routes(6).find((r) => r.prefixLen === 0);
  assert.equal(def6?.gateway, '2001:db8::1');
  assert.equal(def6?.dst, '::');
  assert.equal(def6?.oif, eth0);
  const onlink = c.nl.routes(4).find((r) => r.dst === '198.18.0.0');
  assert.equal(onlink?.scope, 253);
  assert.equal(onlink?.metric, 50);
  assert.equal(onlink?.gateway, null);
  assert.ok(c.nl.routes().some((r) => r.family === 6) && c.nl.routes().some((r) => r.family === 4));
  assert.ok(ipJson<IpRoute[]>(c.name, '-6', 'route').some((r) => r.dst === 'default' && r.gateway === '2001:db8::1'));

  // Another table: not in main, visible with its number or 0 (all).
  c.nl.addRoute({ dst: '203.0.113.0', prefixLen: 24, gateway: '192.0.2.1', table: 1000 });
  assert.ok(!c.nl.routes(4).some((r) => r.dst === '203.0.113.0'));
  assert.equal(c.nl.routes(4, 1000).length, 1);
  assert.equal(c.nl.routes(4, 1000)[0].table, 1000);
  assert.ok(c.nl.routes(4, 0).some((r) => r.dst === '203.0.113.0' && r.table === 1000));
  assert.ok(c.nl.routes(4, 0).some((r) => r.table === 255), 'all tables includes local');
  c.nl.deleteRoute({ dst: '203.0.113.0', prefixLen: 24, table: 1000 });
  assert.equal(c.nl.routes(4, 1000).length, 0);

  fails(() => c.nl.addRoute({ dst: '0.0.0.0', prefixLen: 0, gateway: '192.0.2.1' }), 'EEXIST');
  c.nl.deleteRoute({ dst: '0.0.0.0', prefixLen: 0 });
  c.nl.deleteRoute({ dst: '::', prefixLen: 0, gateway: '2001:db8::1' });
  assert.ok(!c.nl.routes().some((r) => r.prefixLen === 0));
  fails(() => c.nl.deleteRoute({ dst: '0.0.0.0', prefixLen: 0 }), 'ESRCH');
});

test('ping between two namespaces over a bridge', (t) => {
  const h = netns(t);
  const a = netns(t);
  const b = netns(t);
  const br = h.nl.createBridge('nlt-br0', { up: true });
  h.nl.addAddress(br, '192.0.2.1', 24);
  attach(h, br, a, 'nlt-va', '192.0.2.2', 24, '192.0.2.1');
  attach(h, br, b, 'nlt-vb', '192.0.2.3', 24, '192.0.2.1');
  const ports = h.nl.links().filter((l) => l.master === br).map((l) => l.name).sort();
  assert.deepEqual(ports, ['nlt-va', 'nlt-vb']);
  for (const [from, to] of [[a.name, '192.0.2.3'], [b.name, '192.0.2.2'], [a.name, '192.0.2.1']]) {
    const r = spawnSync('ip', ['netns', 'exec', from, 'ping', '-c1', '-W2', to], { encoding: 'utf8', timeout: 10000 });
    assert.equal(r.status, 0, `ping ${to} from ${from}: ${r.stdout}${r.stderr}`);
  }
  // Unplugging A from the bridge cuts it off.
  const va = must(h.nl.ifindex('nlt-va'), 'nlt-va');
  h.nl.setMaster(va, null);
  const r = spawnSync('ip', ['netns', 'exec', a.name, 'ping', '-c1', '-W1', '192.0.2.3'], { encoding: 'utf8', timeout: 10000 });
  assert.notEqual(r.status, 0, 'no path once the port left the bridge');
});

test('dumps spanning many recv() calls: 150 links, 600 addresses, 300 routes', (t) => {
  const h = netns(t);
  h.nl.batch((b) => {
    for (let i = 0; i < 150; i++) b.createBridge(`nlt-b${i}`, { mtu: 1000 + i });
  });
  const links = h.nl.links();
  assert.equal(links.length, 151);
  const byName = new Map<string, LinkInfo>(links.map((l) => [l.name, l]));
  for (let i = 0; i < 150; i++) assert.equal(byName.get(`nlt-b${i}`)?.mtu, 1000 + i);
  assert.equal(ipJson<IpLink[]>(h.name, 'link').length, 151);

  const br = must(h.nl.ifindex('nlt-b0'), 'nlt-b0');
  h.nl.setUp(br);
  h.nl.batch((b) => {
    for (let i = 0; i < 600; i++) b.addAddress(br, `10.${i >> 8}.${i & 255}.1`, 32);
    for (let i = 0; i < 300; i++) b.addRoute({ dst: `172.${16 + (i >> 8)}.${i & 255}.0`, prefixLen: 24, oif: br });
  });
  assert.equal(h.nl.addresses(4).filter((a) => a.index === br).length, 600);
  assert.equal(h.nl.routes(4).filter((r) => r.oif === br && r.dst.startsWith('172.')).length, 300);
  const fromIp = ipJson<IpAddr[]>(h.name, '-4', 'addr', 'show', 'dev', 'nlt-b0')[0].addr_info.map((a) => a.local).sort();
  const fromNl = h.nl.addresses(4).filter((a) => a.index === br).map((a) => a.address).sort();
  assert.deepEqual(fromNl, fromIp);
});

test('errors: EEXIST, ENODEV, kernel extended-ack text, invalid arguments, closed socket', (t) => {
  const h = netns(t);
  const c = netns(t);
  const br = h.nl.createBridge('nlt-br0');

  let e = fails(() => h.nl.createBridge('nlt-br0'), 'EEXIST');
  assert.equal(e.op, 'createBridge');
  assert.equal(e.errno, 17);
  assert.equal(e.request, -1);
  assert.match(e.message, /createBridge\(nlt-br0\): EEXIST/);

  // A refused create does not touch the existing interface (its alias in particular).
  fails(() => h.nl.createBridge('nlt-br0', { alias: 'not-mine' }), 'EEXIST');
  assert.equal(must(h.nl.linkByIndex(br), 'bridge').alias, null);

  // The peer name is taken inside the container netns: the host end must not be left behind.
  h.nl.createVeth('nlt-v0', 'eth0', c.fd);
  e = fails(() => h.nl.createVeth('nlt-v1', 'eth0', c.fd), 'EEXIST');
  assert.equal(e.op, 'createVeth');
  assert.equal(h.nl.linkByName('nlt-v1'), null);

  fails(() => h.nl.setUp(99999), 'ENODEV');
  fails(() => h.nl.deleteLink(99999), 'ENODEV');
  fails(() => h.nl.setMaster(99999, br), 'ENODEV');
  assert.equal(h.nl.linkByName('nlt-nope'), null);
  assert.equal(h.nl.linkByIndex(99999), null);
  assert.equal(h.nl.ifindex('nlt-nope'), null);

  e = fails(() => h.nl.addRoute({ dst: '192.0.2.1', prefixLen: 24, oif: br }), 'EINVAL');
  assert.equal(e.kernelMessage, 'Invalid prefix for given prefix length');
  assert.match(e.message, /Invalid prefix for given prefix length/);

  // Refused before anything is sent.
  for (const f of [
    () => h.nl.createBridge('a-name-longer-than-15'),
    () => h.nl.createBridge(''),
    () => h.nl.createBridge('a/b'),
    () => h.nl.createBridge('nlt-x', { mac: '02:00:00:00:00' }),
    () => h.nl.createBridge('nlt-x', { mac: 'zz:00:00:00:00:01' }),
    () => h.nl.createVeth('nlt-x', 'eth1', -1),
    () => h.nl.setMac(br, '0200.0000.0001'),
    () => h.nl.setMtu(br, 0),
    () => h.nl.setUp(0),
    () => h.nl.addAddress(br, '300.1.1.1', 24),
    () => h.nl.addAddress(br, '10.0.0.01', 24),
    () => h.nl.addAddress(br, '10.0.0.1', 33),
    () => h.nl.addAddress(br, '2001:db8::1::2', 64),
    () => h.nl.addAddress(br, 'fe80::1%eth0', 64),
    () => h.nl.addAddress(br, 'localhost', 8),
    () => h.nl.addAddress(br, '2001:db8::1', 64, { broadcast: '+' }),
    () => h.nl.addRoute({ dst: '0.0.0.0', prefixLen: 0, gateway: '2001:db8::1' }),
    () => h.nl.setAlias(br, 'x'.repeat(256)),
  ]) {
    e = fails(f, 'EINVAL');
    assert.equal(e.kernelMessage, null, e.message);
  }
  assert.equal(h.nl.links().length, 3, 'lo, nlt-br0, nlt-v0: nothing else was created');

  h.nl.close();
  assert.equal(h.nl.closed, true);
  fails(() => h.nl.setUp(br), 'EBADF');
  fails(() => h.nl.links(), 'EBADF');
  h.nl.close(); // idempotent
});

test('batch: one send; the first failure is reported with its position; the socket stays usable', (t) => {
  const h = netns(t);
  const c = netns(t);
  const br = h.nl.createBridge('nlt-br0');

  // Everything succeeds: a whole attach in two batches.
  h.nl.batch((b) => {
    b.createVeth('nlt-v0', 'eth0', c.fd, { master: br, up: true }).setUp(br).addAddress(br, '192.0.2.1', 24);
  });
  const eth0 = must(c.nl.ifindex('eth0'), 'eth0');
  c.nl.batch((b) => b.setUp(1).setUp(eth0).addAddress(eth0, '192.0.2.2', 24).addRoute({ dst: '0.0.0.0', prefixLen: 0, gateway: '192.0.2.1' }));
  assert.ok(c.nl.routes(4).some((r) => r.prefixLen === 0 && r.gateway === '192.0.2.1'));
  assert.equal(must(h.nl.linkByName('nlt-v0'), 'veth').master, br);

  // Request 2 of 4 fails: reported as such; the kernel still carries out 3 and 4 (documented behaviour).
  const e = fails(() => h.nl.batch((b) => {
    b.setMtu(br, 1400);
    b.addAddress(99999, '198.51.100.1', 24);
    b.setMtu(br, 1300);
    b.setAlias(br, 'after-the-failure');
  }), 'ENODEV');
  assert.equal(e.request, 1);
  assert.equal(e.op, 'addAddress');
  assert.match(e.message, /^batch request 2 of 4: addAddress\(99999, 198\.51\.100\.1\/24\): ENODEV/);
  const l = must(h.nl.linkByIndex(br), 'bridge');
  assert.equal(l.mtu, 1300);
  assert.equal(l.alias, 'after-the-failure');

  // Two failures: the first one is thrown.
  const e2 = fails(() => h.nl.batch((b) => {
    b.addAddress(br, '192.0.2.1', 24); // EEXIST
    b.deleteLink(99998); // ENODEV
  }), 'EEXIST');
  assert.equal(e2.request, 0);

  // An invalid argument throws at once and nothing is sent; so does an exception in the callback.
  fails(() => h.nl.batch((b) => {
    b.setMtu(br, 1200);
    b.addAddress(br, 'not-an-ip', 24);
  }), 'EINVAL');
  assert.throws(() => h.nl.batch((b) => {
    b.setMtu(br, 1100);
    throw new Error('changed my mind');
  }), /changed my mind/);
  assert.equal(must(h.nl.linkByIndex(br), 'bridge').mtu, 1300);

  // An alias cannot be set by a batched create (it would have to go by name); an empty batch sends nothing.
  fails(() => h.nl.batch((b) => b.createBridge('nlt-br1', { alias: 'x' } as never)), 'EINVAL');
  assert.equal(h.nl.linkByName('nlt-br1'), null);
  h.nl.batch(() => {});

  // Direct calls and a nested batch inside a batch callback do not disturb the outer batch.
  h.nl.batch((b) => {
    b.setMtu(br, 1000);
    assert.equal(h.nl.linkByIndex(br)?.mtu, 1300, 'not sent yet');
    h.nl.batch((inner) => inner.setAlias(br, 'inner'));
    b.setUp(br);
  });
  const after = must(h.nl.linkByIndex(br), 'bridge');
  assert.deepEqual({ mtu: after.mtu, alias: after.alias, up: after.up }, { mtu: 1000, alias: 'inner', up: true });
});
