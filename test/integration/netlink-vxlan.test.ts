// Integration test of the overlay data plane's kernel side (src/kernel/netlink/vxlan.ts, neigh.ts) against the real
// kernel: two "hosts" (throwaway netns, named nlt-vx*) joined by a veth underlay (192.0.2.1/24 - 192.0.2.2/24), on
// each a bridge, a vxlan device (VNI 42, UDP 4789, learning off, ARP proxy on) and a "container" netns with a veth on
// the bridge, all made, and the FDB and neighbour entries programmed, through nsnet's netlink client only (no
// multicast, no learning). `ip`, `bridge`, `ss` and `ping` only observe. Every netns is deleted when the test ends,
// even on failure. Needs root.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { close, openPath } from '../../src/kernel/libc.js';
import { FLOOD_MAC, Netlink, NetlinkError, type FdbInfo } from '../../src/kernel/netlink.js';

const SELF_INO = fs.statSync('/proc/thread-self/ns/net').ino;

interface Ns {
  name: string;
  fd: number;
  nl: Netlink;
}

/** A throwaway netns with a socket in it (lo up); removed when the test ends, whatever happens. */
function netns(t: TestContext, tag: string): Ns {
  const name = `nlt-vx${tag}-${crypto.randomBytes(3).toString('hex')}`; // nlt-: covered by the suite's leak guard
  const ns: { name: string; fd: number; nl: Netlink | null } = { name, fd: -1, nl: null };
  t.after(() => {
    ns.nl?.close();
    if (ns.fd >= 0) close(ns.fd);
    spawnSync('ip', ['netns', 'del', name]);
  });
  execFileSync('ip', ['netns', 'add', name]);
  ns.fd = openPath(`/run/netns/${name}`);
  ns.nl = Netlink.openIn(ns.fd);
  assert.equal(fs.statSync('/proc/thread-self/ns/net').ino, SELF_INO, 'the thread is back in its own netns');
  ns.nl.setUp(1);
  return ns as Ns;
}

function must<T>(v: T | null | undefined, what: string): T {
  assert.ok(v !== null && v !== undefined, `${what} is missing`);
  return v;
}

/** ping from inside `ns`; true if every echo was answered. */
function ping(ns: Ns, dst: string, args: string[] = []): { ok: boolean; out: string } {
  const r = spawnSync('nsenter', [`--net=/run/netns/${ns.name}`, 'ping', '-n', ...args, dst], { encoding: 'utf8', timeout: 30000 });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

/** Pings until one answer comes (the first may wait for the bridge ports to forward): at most `ms`. */
function pingUntil(ns: Ns, dst: string, ms = 15000): boolean {
  const end = Date.now() + ms;
  do {
    if (ping(ns, dst, ['-c', '1', '-W', '1']).ok) return true;
  } while (Date.now() < end);
  return false;
}

function fails(fn: () => unknown, code: string): NetlinkError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof NetlinkError, `expected a NetlinkError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`expected ${code}`);
}

interface Host {
  ns: Ns;
  underlay: number;
  br: number;
  vx: number;
  container: Ns;
}

const VNI = 42;
const C_MAC = ['02:00:0a:5a:00:01', '02:00:0a:5a:00:02'];
const C_IP = ['10.90.0.1', '10.90.0.2'];
const U_IP = ['192.0.2.1', '192.0.2.2'];

/** One host's bridge, vxlan device and container, through nsnet's client. */
function buildHost(t: TestContext, h: Ns, i: number, underlay: number): Host {
  const c = netns(t, `c${i + 1}`);
  const br = h.nl.createBridge('br0', { up: true });
  const vx = h.nl.createVxlan('vx0', { vni: VNI, local: U_IP[i], link: underlay, proxy: true, master: br, up: true, alias: 'nsnet-test' });
  h.nl.createVeth('vc0', 'eth0', c.fd, { master: br, mtu: 1450, peerMac: C_MAC[i], up: true });
  const eth0 = must(c.nl.ifindex('eth0'), 'container eth0');
  c.nl.batch((b) => b.setUp(eth0).addAddress(eth0, C_IP[i], 24));
  return { ns: h, underlay, br, vx, container: c };
}

/** The FDB and neighbour entries host `i` needs to reach the container of host `j`, in one batch. */
function programPeer(h: Host, j: number): void {
  h.ns.nl.batch((b) => b
    .addFdb(h.vx, C_MAC[j], U_IP[j], { replace: true })
    .appendFdb(h.vx, FLOOD_MAC, U_IP[j])
    .addNeighbour(h.vx, C_IP[j], C_MAC[j], { replace: true }));
}

const own = (l: FdbInfo[]): Array<[string, string | null]> => l.filter((f) => f.self).map((f) => [f.mac, f.dst]);

test('overlay across two hosts: vxlan + FDB + permanent neighbours through nsnet\'s client; ping, MTU, listing, delete, errors', (t) => {
  const h1 = netns(t, 'h1');
  const h2 = netns(t, 'h2');
  // underlay: a veth between the two hosts, MTU 1500
  const u1 = h1.nl.createVeth('ul0', 'ul0', h2.fd, { mtu: 1500, up: true });
  const u2 = must(h2.nl.ifindex('ul0'), 'underlay in h2');
  h2.nl.setUp(u2);
  h1.nl.addAddress(u1, U_IP[0], 24);
  h2.nl.addAddress(u2, U_IP[1], 24);
  assert.ok(ping(h1, U_IP[1], ['-c', '1', '-W', '5']).ok, 'the underlay works');

  const a = buildHost(t, h1, 0, u1);
  const b = buildHost(t, h2, 1, u2);

  // --- the vxlan device as the kernel reports it (nsnet's parser and iproute2 agree)
  const l = must(h1.nl.linkByName('vx0'), 'vx0');
  assert.deepEqual(
    { index: l.index, kind: l.kind, master: l.master, alias: l.alias, up: l.up, mtu: l.mtu },
    { index: a.vx, kind: 'vxlan', master: a.br, alias: 'nsnet-test', up: true, mtu: 1450 },
    'MTU = underlay 1500 - 50 (IFLA_VXLAN_LINK given, no IFLA_MTU)',
  );
  assert.deepEqual(l.vxlan, { vni: VNI, port: 4789, local: U_IP[0], group: null, learning: false, proxy: true, link: u1, ttl: 0 });
  const j = JSON.parse(execFileSync('ip', ['-n', h1.name, '-d', '-j', 'link', 'show', 'dev', 'vx0'], { encoding: 'utf8' }))[0];
  assert.equal(j.linkinfo.info_kind, 'vxlan');
  const d = j.linkinfo.info_data;
  assert.deepEqual(
    { id: d.id, port: d.port, local: d.local, learning: d.learning, proxy: d.proxy, link: d.link },
    { id: VNI, port: 4789, local: U_IP[0], learning: false, proxy: true, link: 'ul0' },
    'iproute2 reads the same configuration',
  );
  assert.equal(j.master, 'br0');
  // The kernel listens on UDP 4789 in the host's netns (the vxlan socket, bound to any address)
  assert.match(execFileSync('nsenter', [`--net=/run/netns/${h1.name}`, 'ss', '-Hlun'], { encoding: 'utf8' }), /:4789\b/);

  // --- FDB only: ARP is suppressed (proxy: answered from the neighbour table, never sent across), so no ping yet
  a.ns.nl.addFdb(a.vx, C_MAC[1], U_IP[1]);
  a.ns.nl.appendFdb(a.vx, FLOOD_MAC, U_IP[1]);
  b.ns.nl.addFdb(b.vx, C_MAC[0], U_IP[0]);
  b.ns.nl.appendFdb(b.vx, FLOOD_MAC, U_IP[0]);
  assert.equal(ping(a.container, C_IP[1], ['-c', '1', '-W', '2']).ok, false, 'no neighbour entry: the ARP request is not sent over the underlay');

  // --- neighbour entries (and the idempotent re-programming of everything, batched): ping across hosts
  programPeer(a, 1);
  programPeer(b, 0);
  assert.ok(pingUntil(a.container, C_IP[1]), 'c1 -> c2 across the overlay');
  assert.ok(ping(b.container, C_IP[0], ['-c', '2', '-W', '2']).ok, 'c2 -> c1');
  const cn = JSON.parse(execFileSync('ip', ['-n', a.container.name, '-j', 'neigh', 'show', C_IP[1]], { encoding: 'utf8' }))[0];
  assert.equal(cn.lladdr, C_MAC[1], 'the container learnt c2\'s MAC from the proxy answer');

  // --- IPv6 inside the overlay: ND is answered by the proxy from permanent IPv6 entries the same way
  for (const [i, h] of [a, b].entries()) {
    const e = must(h.container.nl.ifindex('eth0'), 'eth0');
    h.container.nl.addAddress(e, `fd00:90::${i + 1}`, 64, { nodad: true });
  }
  assert.equal(ping(a.container, 'fd00:90::2', ['-c', '1', '-W', '2']).ok, false, 'no ND entry: the solicitation is not sent across');
  a.ns.nl.addNeighbour(a.vx, 'fd00:90::2', C_MAC[1]);
  b.ns.nl.addNeighbour(b.vx, 'fd00:90::1', C_MAC[0]);
  assert.ok(pingUntil(a.container, 'fd00:90::2'), 'c1 -> c2 over IPv6 in the overlay');

  // --- MTU: a 1400-byte IPv4 packet with DF passes (1372 + 8 ICMP + 20 IP; 1450 outside the tunnel + 50 = 1500 on
  // the underlay); a 1451-byte one is refused at the container's own MTU 1450
  const big = ping(a.container, C_IP[1], ['-M', 'do', '-s', '1372', '-c', '2', '-W', '2']);
  assert.ok(big.ok, big.out);
  assert.match(big.out, /1380 bytes|2 received/);
  const tooBig = ping(a.container, C_IP[1], ['-M', 'do', '-s', '1423', '-c', '1', '-W', '1']);
  assert.equal(tooBig.ok, false, tooBig.out);
  assert.match(tooBig.out, /message too long, mtu ?= ?1450/i, 'refused locally, at the container\'s MTU');
  // a 1450-byte packet (the container MTU) fills the underlay's 1500 exactly: it passes too
  assert.ok(ping(a.container, C_IP[1], ['-M', 'do', '-s', '1422', '-c', '1', '-W', '2']).ok, 'MTU underlay-50 is exact');
  // a container MTU above the vxlan device's: the bridge drops the frames too big for the vx0 port without a word
  // (no ICMP "frag needed", no local error): big packets vanish, small ones pass
  const eth0 = must(a.container.nl.ifindex('eth0'), 'c1 eth0');
  const vc0 = must(a.ns.nl.ifindex('vc0'), 'vc0');
  a.ns.nl.setMtu(vc0, 1500);
  a.container.nl.setMtu(eth0, 1500);
  const lost = ping(a.container, C_IP[1], ['-M', 'do', '-s', '1472', '-c', '1', '-W', '2']);
  assert.equal(lost.ok, false, lost.out);
  assert.doesNotMatch(lost.out, /too long|frag/i, 'nobody tells the sender');
  assert.ok(ping(a.container, C_IP[1], ['-c', '1', '-W', '2']).ok, 'small packets still pass');
  a.container.nl.setMtu(eth0, 1450);
  a.ns.nl.setMtu(vc0, 1450);

  // --- the entries listed back (nsnet's dump and iproute2's agree)
  assert.deepEqual(own(a.ns.nl.fdbEntries(a.vx)).sort(), [[FLOOD_MAC, U_IP[1]], [C_MAC[1], U_IP[1]]]);
  const fdbAll = a.ns.nl.fdbEntries(a.vx);
  assert.ok(fdbAll.every((f) => f.index === a.vx), 'only vx0\'s entries');
  assert.ok(fdbAll.filter((f) => f.self).every((f) => f.permanent), 'NUD_PERMANENT');
  assert.ok(fdbAll.some((f) => !f.self && f.master === a.br), 'and the bridge\'s entries for the vx0 port (learnt on it, NDA_MASTER)');
  const bj = JSON.parse(execFileSync('bridge', ['-n', h1.name, '-j', 'fdb', 'show', 'dev', 'vx0'], { encoding: 'utf8' })) as Array<{ mac: string; dst?: string; flags: string[] }>;
  assert.deepEqual(bj.filter((e) => e.flags.includes('self')).map((e) => [e.mac, e.dst ?? null]).sort(), own(fdbAll).sort());
  const neigh = a.ns.nl.neighbours(a.vx, 4);
  assert.deepEqual(neigh.map((n) => [n.ip, n.mac, n.permanent]), [[C_IP[1], C_MAC[1], true]]);
  const nj = JSON.parse(execFileSync('ip', ['-n', h1.name, '-j', '-4', 'neigh', 'show', 'dev', 'vx0'], { encoding: 'utf8' })) as Array<{ dst: string; lladdr: string; state: string[] }>;
  assert.deepEqual(nj.map((n) => [n.dst, n.lladdr, n.state.includes('PERMANENT')]), [[C_IP[1], C_MAC[1], true]]);
  assert.ok(a.ns.nl.neighbours().some((n) => n.index === a.vx && n.ip === C_IP[1]), 'the unfiltered dump has it too');
  assert.deepEqual(a.ns.nl.fdbEntries(u1).filter((f) => f.dst !== null), [], 'the underlay has no remotes');

  // --- ARP suppression proven: an entry for an address nobody has is answered by the vxlan device itself
  a.ns.nl.addNeighbour(a.vx, '10.90.0.99', '02:00:00:00:00:99');
  ping(a.container, '10.90.0.99', ['-c', '1', '-W', '1']);
  const ghost = JSON.parse(execFileSync('ip', ['-n', a.container.name, '-j', 'neigh', 'show', '10.90.0.99'], { encoding: 'utf8' }))[0];
  assert.equal(ghost?.lladdr, '02:00:00:00:00:99', 'answered from h1\'s neighbour table');
  a.ns.nl.deleteNeighbour(a.vx, '10.90.0.99');
  assert.deepEqual(a.ns.nl.neighbours(a.vx, 4).map((n) => n.ip), [C_IP[1]]);

  // --- deleting the peer's FDB entries stops the traffic to it. The unicast entry alone is not enough: unknown
  // unicast then goes to the flood list's remotes, and that still includes the peer.
  a.ns.nl.deleteFdb(a.vx, C_MAC[1]);
  assert.ok(ping(a.container, C_IP[1], ['-c', '1', '-W', '2']).ok, 'without the unicast entry: through the flood entry');
  a.ns.nl.deleteFdb(a.vx, FLOOD_MAC, U_IP[1]);
  assert.deepEqual(own(a.ns.nl.fdbEntries(a.vx)), [], 'the flood entry went with its last remote');
  assert.equal(ping(a.container, C_IP[1], ['-c', '2', '-W', '1']).ok, false, 'no FDB entry for the peer: no traffic');
  programPeer(a, 1);
  assert.ok(pingUntil(a.container, C_IP[1]), 'programmed again: traffic again');

  // --- head-end replication: several remotes share the all-zeros MAC (append), one is removed alone
  a.ns.nl.appendFdb(a.vx, FLOOD_MAC, '192.0.2.3');
  a.ns.nl.appendFdb(a.vx, FLOOD_MAC, '192.0.2.3'); // already there: no error, not twice
  assert.deepEqual(own(a.ns.nl.fdbEntries(a.vx)).filter(([m]) => m === FLOOD_MAC).map(([, d]) => d).sort(), ['192.0.2.2', '192.0.2.3']);
  a.ns.nl.deleteFdb(a.vx, FLOOD_MAC, '192.0.2.3');
  a.ns.nl.deleteFdb(a.vx, FLOOD_MAC, '192.0.2.77'); // a remote that is not in the list: the kernel answers 0
  assert.deepEqual(own(a.ns.nl.fdbEntries(a.vx)).filter(([m]) => m === FLOOD_MAC).map(([, d]) => d), ['192.0.2.2']);
  // replace moves a unicast entry to another remote
  a.ns.nl.addFdb(a.vx, '02:00:00:00:00:42', '192.0.2.4');
  a.ns.nl.addFdb(a.vx, '02:00:00:00:00:42', '192.0.2.5', { replace: true });
  assert.deepEqual(own(a.ns.nl.fdbEntries(a.vx)).filter(([m]) => m === '02:00:00:00:00:42'), [['02:00:00:00:00:42', '192.0.2.5']]);
  a.ns.nl.deleteFdb(a.vx, '02:00:00:00:00:42');

  // --- errors come back as NetlinkError
  const missing = 0x7ffffff0;
  fails(() => a.ns.nl.addFdb(missing, C_MAC[1], U_IP[1]), 'ENODEV');
  fails(() => a.ns.nl.appendFdb(missing, FLOOD_MAC, U_IP[1]), 'ENODEV');
  fails(() => a.ns.nl.addNeighbour(missing, C_IP[1], C_MAC[1]), 'ENODEV');
  fails(() => a.ns.nl.createVxlan('vx9', { vni: 9, link: missing }), 'ENODEV');
  fails(() => a.ns.nl.createVxlan('vx0', { vni: 77 }), 'EEXIST'); // the name
  const dup = fails(() => a.ns.nl.createVxlan('vx1', { vni: VNI, local: '192.0.2.9' }), 'EEXIST'); // VNI + port taken
  assert.match(dup.kernelMessage ?? '', /VNI already exists/);
  assert.equal(a.ns.nl.linkByName('vx1'), null);
  fails(() => a.ns.nl.addFdb(a.vx, C_MAC[1], U_IP[1]), 'EEXIST'); // exclusive add of an existing unicast entry
  fails(() => a.ns.nl.addNeighbour(a.vx, C_IP[1], C_MAC[1]), 'EEXIST'); // exclusive add of an existing neighbour
  fails(() => a.ns.nl.appendFdb(a.vx, FLOOD_MAC, '2001:db8::2'), 'EAFNOSUPPORT'); // IPv6 remote on an IPv4 vxlan
  fails(() => a.ns.nl.deleteFdb(a.vx, '02:00:00:00:00:77'), 'ENOENT');
  fails(() => a.ns.nl.deleteNeighbour(a.vx, '10.90.0.77'), 'ENOENT');
  const inBatch = fails(() => a.ns.nl.batch((x) => x.addNeighbour(a.vx, '10.90.0.50', '02:00:00:00:00:50').addFdb(missing, C_MAC[1], U_IP[1])), 'ENODEV');
  assert.equal(inBatch.request, 1, 'the failing request of the batch is named');
  a.ns.nl.deleteNeighbour(a.vx, '10.90.0.50'); // the batch's first request was carried out
  assert.deepEqual(a.ns.nl.fdbEntries(missing), [], 'a dump of an unknown index: empty, not an error');
  // a fully programmed overlay still works after all that
  assert.ok(ping(a.container, C_IP[1], ['-c', '1', '-W', '2']).ok);
});

test('vxlan over an IPv6 underlay: LOCAL6, IPv6 remotes, MTU underlay-70; batch create', (t) => {
  const h = netns(t, 'h6');
  const p = netns(t, 'p6');
  const u = h.nl.createVeth('ul0', 'ul0', p.fd, { mtu: 1500, up: true });
  h.nl.addAddress(u, '2001:db8::1', 64, { nodad: true });
  h.nl.batch((b) => b.createVxlan('vx6', { vni: 4242, local: '2001:db8::1', link: u, port: 4790, ttl: 32 }));
  const l = must(h.nl.linkByName('vx6'), 'vx6');
  assert.equal(l.mtu, 1430, 'IPv6 underlay: 1500 - 70');
  assert.equal(l.up, false);
  assert.deepEqual(l.vxlan, { vni: 4242, port: 4790, local: '2001:db8::1', group: null, learning: false, proxy: false, link: u, ttl: 32 });
  h.nl.addFdb(l.index, '02:00:00:00:06:01', '2001:db8::2');
  h.nl.appendFdb(l.index, FLOOD_MAC, '2001:db8::2');
  h.nl.addNeighbour(l.index, '2001:db8:90::2', '02:00:00:00:06:01');
  assert.deepEqual(own(h.nl.fdbEntries(l.index)).sort(), [[FLOOD_MAC, '2001:db8::2'], ['02:00:00:00:06:01', '2001:db8::2']]);
  assert.deepEqual(h.nl.neighbours(l.index, 6).filter((n) => n.permanent).map((n) => [n.ip, n.mac]), [['2001:db8:90::2', '02:00:00:00:06:01']]);
  fails(() => h.nl.addFdb(l.index, '02:00:00:00:06:02', '192.0.2.2'), 'EAFNOSUPPORT');
  // an MTU above underlay-70 asked at creation is clamped; asked later it is refused
  const v2 = h.nl.createVxlan('vx7', { vni: 4243, local: '2001:db8::1', link: u, mtu: 1500 });
  assert.equal(must(h.nl.linkByIndex(v2), 'vx7').mtu, 1430);
  fails(() => h.nl.setMtu(v2, 1431), 'EINVAL');
  h.nl.deleteLink(v2);
  h.nl.deleteLink(l.index);
  assert.equal(h.nl.linkByName('vx6'), null);
});
