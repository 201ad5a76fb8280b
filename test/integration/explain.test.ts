// `nsnet explain` against real traffic (root; a throwaway host netns, its containers and an upstream machine).
// A topology with two user networks, the default bridge, an internal network, an icc=false network, published
// ports (any address, 127.0.0.1 only, udp) and the outside; for every case of the matrix the prediction, a real
// connection attempt from FROM and `--trace` (one probe packet traced by the kernel) must agree. Then: a hand-made
// change the store does not know (a flushed chain, another table's drop policy) makes --trace disagree loudly;
// a trace rule left by a crash is reported by check and removed by reconcile; bad input changes nothing. A
// partitioned network (two groups and the rest, a one-way cut) with br_netfilter on and off, the same way.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { CRASH_POINTS } from '../../src/engine/faults.js';
import { REPO, TestHost, waitFor, type Result } from '../helpers/host.js';

const SERV = path.join(REPO, 'test/fixtures/tinyserv.py');

type Outcome = 'connected' | 'refused' | 'reply' | 'timeout' | 'unreachable';

/** A real attempt: prints connected / refused / reply / timeout / unreachable. */
function attempt(ip: string, port: number | undefined, proto: 'tcp' | 'udp' | 'icmp'): string {
  if (proto === 'icmp') return `ping -n -c1 -W1 ${ip} >/dev/null 2>&1 && echo reply || echo timeout`;
  const py = [
    'import socket',
    'try:',
    proto === 'tcp'
      ? ` s=socket.create_connection(("${ip}",${port}),timeout=1.5);print("connected")`
      : ` s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.settimeout(1.5);s.connect(("${ip}",${port}));s.send(b"x");s.recv(64);print("reply")`,
    'except ConnectionRefusedError: print("refused")',
    'except socket.timeout: print("timeout")',
    'except OSError: print("unreachable")',
  ].join('\n');
  return `python3 -c '${py}'`;
}
const delivered = (o: string) => o === 'connected' || o === 'refused' || o === 'reply';

interface Exp {
  verdict: 'delivered' | 'dropped';
  reason: string;
  decidedBy?: { purpose: string; chain: string; index: number };
  packet?: { daddr: string; dport?: number };
  probe?: { daddr: string; dport?: number };
  names: string[];
  fix: string[];
  warnings: string[];
  trace?: { verdict: string; differences: string[]; chains: Array<{ table: string; chain: string; outcome: string }>; probe: { outcome: string } };
}

test('explain: a matrix of 42 cases, each predicted, traced through the kernel and tried for real, all agreeing', { timeout: 600000 }, async (t) => {
  const h = TestHost.create('explain');
  t.after(() => h.cleanup());
  const up = h.addUpstream();
  for (const c of ['ip route add default via 198.51.100.2']) assert.equal(h.sh(c).status, 0, c);
  // The upstream machine: servers, and a route to the containers' addresses (to try direct access).
  h.shIn(up.ns, `ip route add 172.16.0.0/12 via ${up.hostIp}; (python3 ${SERV} whoami 443 & python3 ${SERV} whoami 53 udp &) >/dev/null 2>&1`);
  // A service of the host itself.
  h.sh(`(python3 ${SERV} whoami 7000 &) >/dev/null 2>&1`);

  h.ok(['network', 'create', 'oa']);
  h.ok(['network', 'create', 'tools']);
  h.ok(['network', 'create', '--internal', 'back']);
  h.ok(['network', 'create', '-o', 'icc=false', 'quiet']);
  const serve = (...ports: string[]) => ['--', '/bin/sh', '-c', `${ports.map((p) => `python3 ${SERV} whoami ${p.replace('/udp', ' udp')} &`).join(' ')} wait`];
  h.ok(['run', '-d', '--name', 'web', '--network', 'oa', '-p', '8080:80', '-p', '5353:53/udp', ...serve('80', '53/udp')]);
  h.ok(['run', '-d', '--name', 'db', '--network', 'oa', ...serve('5432')]);
  h.ok(['network', 'connect', 'back', 'db']);
  h.ok(['run', '-d', '--name', 'cache', '--network', 'back', ...serve('6379')]);
  h.ok(['run', '-d', '--name', 'tool', '--network', 'tools', ...serve('80')]);
  h.ok(['run', '-d', '--name', 'lo9', '--network', 'tools', '-p', '127.0.0.1:9090:90', ...serve('90')]);
  h.ok(['run', '-d', '--name', 'q1', '--network', 'quiet', ...serve('80')]);
  h.ok(['run', '-d', '--name', 'q2', '--network', 'quiet', '-p', '8081:80', ...serve('80')]);
  h.ok(['run', '-d', '--name', 'legacy', '-p', '2222:22', ...serve('22')]);
  h.ok(['create', '--name', 'idle', '--network', 'oa', '--', 'sleep', '300']);
  h.ok(['run', '-d', '--name', 'nonec', '--network', 'none', '--', 'sleep', '300']);
  // Every server is up (each answers from the host, which reaches all containers directly).
  const ip = (c: string, n: string) => JSON.parse(h.ok(['inspect', c]))[0].NetworkSettings.Networks[n].IPAddress as string;
  for (const [c, n, p] of [['web', 'oa', 80], ['db', 'oa', 5432], ['cache', 'back', 6379], ['tool', 'tools', 80], ['lo9', 'tools', 90], ['q1', 'quiet', 80], ['q2', 'quiet', 80], ['legacy', 'bridge', 22]] as const) {
    await waitFor(() => h.sh(attempt(ip(c, n), p, 'tcp')).stdout.trim() === 'connected', 8000, 100);
  }
  await waitFor(() => h.shIn(up.ns, attempt(up.ip, 443, 'tcp')).stdout.trim() === 'connected', 8000, 100);
  await waitFor(() => h.sh(attempt('127.0.0.1', 7000, 'tcp')).stdout.trim() === 'connected', 8000, 100);

  // [FROM, TO, expected verdict, the deciding purpose when dropped]
  const matrix: Array<[string, string, 'delivered' | 'dropped', string?]> = [
    ['web', 'db:5432', 'delivered'],
    ['db', 'web:80', 'delivered'],
    ['db', 'cache:6379', 'delivered'],
    ['web', 'tool:80', 'dropped', 'isolation'],
    ['tool', 'web:80', 'dropped', 'isolation'],
    ['tool', 'host:8080', 'delivered'],
    ['web', 'host:8080', 'delivered'],
    ['web', `${up.hostIp}:8080`, 'delivered'],
    ['cache', 'web:80', 'dropped', 'internal'],
    ['cache', 'outside:443', 'dropped', 'internal'],
    ['cache', 'host:7000', 'dropped', 'internal'],
    ['cache', 'host:53', 'delivered'],
    ['q1', 'q2:80', 'dropped', 'port-isolation'],
    ['q1', 'host:7000', 'delivered'],
    ['q1', 'outside:443', 'delivered'],
    ['tool', 'q2:80', 'dropped', 'isolation'],
    ['tool', 'host:8081', 'delivered'],
    ['q1', 'host:8081', 'dropped', 'port-isolation'],
    ['q2', 'host:8081', 'dropped', 'port-isolation'],
    ['web', 'outside:443', 'delivered'],
    ['web', 'outside:53/udp', 'delivered'],
    ['outside', 'web:80', 'delivered'],
    ['outside', 'host:8080', 'delivered'],
    ['outside', 'web:53/udp', 'delivered'],
    ['outside', 'tool:80', 'dropped', 'no-direct-access'],
    ['outside', 'lo9:90', 'dropped', 'no-direct-access'],
    ['outside', 'q2:80', 'delivered'],
    ['outside', 'cache:6379', 'dropped', 'internal'],
    ['outside', 'legacy:22', 'delivered'],
    ['host', 'cache:6379', 'delivered'],
    ['host', 'web:80', 'delivered'],
    ['host', '127.0.0.1:9090', 'delivered'],
    ['host', '127.0.0.1:8080', 'delivered'],
    ['host', 'outside:443', 'delivered'],
    ['legacy', 'web:80', 'dropped', 'isolation'],
    ['legacy', 'outside:443', 'delivered'],
    ['web', 'idle:80', 'delivered'],
    ['nonec', 'web:80', 'dropped', 'mode'],
    ['tool', 'lo9:90', 'delivered'],
    ['web', '127.0.0.1:80', 'delivered'],
    ['web', 'db', 'delivered'],
    ['web', 'tool', 'dropped', 'isolation'],
  ];
  assert.ok(matrix.length >= 30);
  const failures: string[] = [];
  for (const [from, to, want, purpose] of matrix) {
    const label = `${from} -> ${to}`;
    const r = h.nsnet(['explain', '--format', 'json', from, to]);
    if (![0, 1].includes(r.status) || !r.stdout) { failures.push(`${label}: explain failed (${r.status}): ${r.stderr.trim()}`); continue; }
    const e = JSON.parse(r.stdout) as Exp;
    if (r.status !== (want === 'delivered' ? 0 : 1)) failures.push(`${label}: exit ${r.status}`);
    if (e.verdict !== want) failures.push(`${label}: predicted ${e.verdict} (${e.reason}), expected ${want}`);
    if (purpose && e.decidedBy?.purpose !== purpose) failures.push(`${label}: decided by ${e.decidedBy?.purpose}, expected ${purpose}`);
    if (e.verdict === 'dropped' && !e.fix.length && purpose !== 'no-direct-access' && purpose !== 'internal') failures.push(`${label}: no fix offered`);
    // The real attempt, from FROM, to what FROM really sends to.
    const dst = e.probe ?? e.packet!;
    const proto = to.endsWith('/udp') ? 'udp' : to.includes(':') ? 'tcp' : 'icmp';
    const cmd = attempt(dst.daddr, dst.dport, proto);
    const real = (from === 'outside' ? h.shIn(up.ns, cmd) : from === 'host' ? h.sh(cmd) : h.exec(from, cmd)).stdout.trim() as Outcome;
    if (delivered(real) !== (want === 'delivered')) failures.push(`${label}: the real attempt to ${dst.daddr}:${dst.dport ?? ''} got ${real}, predicted ${e.verdict}`);
    // The kernel's trace (nsnet cannot send from outside: that is a clear error, exit 2).
    const tr = h.nsnet(['explain', '--trace', '--format', 'json', from, to]);
    if (from === 'outside') {
      if (tr.status !== 2 || !/^Error: --trace: nsnet cannot send a packet from another machine/.test(tr.stderr)) failures.push(`${label}: --trace from outside: exit ${tr.status} ${tr.stderr}`);
      continue;
    }
    if (![0, 1, 3].includes(tr.status) || !tr.stdout) { failures.push(`${label}: --trace failed (${tr.status}): ${tr.stderr.trim()}`); continue; }
    const te = JSON.parse(tr.stdout) as Exp;
    if (tr.status === 3 || te.trace!.differences.length) failures.push(`${label}: the trace disagrees: ${te.trace!.differences.join('; ')}`);
    if (te.trace!.verdict !== want && !(te.trace!.verdict === 'unknown' && proto === 'udp')) failures.push(`${label}: the trace says ${te.trace!.verdict}`);
    if (from !== 'nonec' && !/127\.0\.0\.1:80$/.test(to) && !te.trace!.chains.length && !(purpose === 'port-isolation' && to === 'q2:80')) failures.push(`${label}: no chain traced`);
  }
  assert.deepEqual(failures, []);
  // The trace rules are gone after every probe, and check finds nothing.
  assert.doesNotMatch(h.sh('nft list chains').stdout, /trace_/);
  const check = h.nsnet(['check']);
  assert.equal(check.status, 0, check.stdout + check.stderr);

  // Names, as the resolver answers them (and does not).
  const names = (from: string, to: string) => (JSON.parse(h.nsnet(['explain', '--format', 'json', from, to]).stdout) as Exp).names;
  assert.deepEqual(names('web', 'db:5432'), [`db resolves to ${ip('db', 'oa')} on network oa from web (nsnet's resolver on ${ip('web', 'oa').replace(/\.\d+$/, '.1')})`]);
  const real = h.exec('web', `getent hosts db | cut -d' ' -f1`).stdout.trim();
  assert.equal(real, ip('db', 'oa'), 'the resolver answers what explain said');
  assert.match(names('web', 'tool:80')[0], /^tool does not resolve from web: they share no user-defined network/);
  assert.equal(h.exec('web', 'getent hosts tool || echo none').stdout.trim(), 'none');
  assert.match(names('legacy', 'web:80')[0], /its first network is the default network bridge, which has no name service/);
  assert.match(names('db', 'cache.back:6379')[0], /^cache\.back resolves to /);

  // The text form: the hops, the verdict, the fix.
  const text = h.nsnet(['explain', 'web', 'tool:80']);
  assert.equal(text.status, 1);
  assert.match(text.stdout, /forward: inet nsnet forward: drop by rule #\d+ `iifname @bridges oifname @bridges counter drop/);
  assert.match(text.stdout, /^verdict: DROPPED: dropped by inet nsnet forward rule #\d+: isolation/m);
  assert.match(text.stdout, /^ {2}fix: nsnet network connect tools web$/m);
  // ...and the fix works.
  h.ok(['network', 'connect', 'tools', 'web']);
  assert.equal(h.nsnet(['explain', 'web', 'tool:80']).status, 0);
  assert.equal(h.exec('web', attempt(ip('tool', 'tools'), 80, 'tcp')).stdout.trim(), 'connected');
  h.ok(['network', 'disconnect', 'tools', 'web']);
});

test('explain: a partitioned network, two groups and the rest, and a one-way cut: predicted, traced and tried, br_netfilter on and off', { timeout: 300000 }, async (t) => {
  const h = TestHost.create('explainp');
  t.after(() => h.cleanup());
  h.ok(['network', 'create', 'cutnet']);
  h.ok(['network', 'create', 'onenet']);
  const serve = ['--', '/bin/sh', '-c', `python3 ${SERV} whoami 80`];
  for (const c of ['p1', 'p2', 'p4']) h.ok(['run', '-d', '--name', c, '--network', 'cutnet', ...serve]);
  h.ok(['run', '-d', '--name', 'p3', '--network', 'cutnet', '-p', '8082:80', ...serve]);
  for (const c of ['o1', 'o2']) h.ok(['run', '-d', '--name', c, '--network', 'onenet', ...serve]);
  const ip = (c: string, n: string) => JSON.parse(h.ok(['inspect', c]))[0].NetworkSettings.Networks[n].IPAddress as string;
  for (const [c, n] of [['p1', 'cutnet'], ['p2', 'cutnet'], ['p3', 'cutnet'], ['p4', 'cutnet'], ['o1', 'onenet'], ['o2', 'onenet']]) {
    await waitFor(() => h.sh(attempt(ip(c, n), 80, 'tcp')).stdout.trim() === 'connected', 8000, 100);
  }
  // Before the partition: the pair to be cut is delivered (control).
  assert.equal(h.nsnet(['explain', 'p1', 'p3:80']).status, 0);
  h.ok(['partition', '--network', 'cutnet', 'p1,p2', 'p3']); // p4: the rest
  h.ok(['partition', '--network', 'onenet', '--oneway', 'o1', 'o2']);

  // [FROM, TO, expected verdict, the deciding purpose when dropped]
  const matrix: Array<[string, string, 'delivered' | 'dropped', string?]> = [
    ['p1', 'p3:80', 'dropped', 'partition'],
    ['p3', 'p1:80', 'dropped', 'partition'],
    ['p2', 'p3', 'dropped', 'partition'],
    ['p1', 'p2:80', 'delivered'],
    ['p2', 'p1', 'delivered'],
    ['p4', 'p1:80', 'dropped', 'partition'],
    ['p3', 'p4:80', 'dropped', 'partition'],
    ['o1', 'o2:80', 'dropped', 'partition'],
    ['p1', 'host:8082', 'dropped', 'partition'],
    ['p3', 'host:8082', 'delivered'],
    ['host', 'p3:80', 'delivered'],
  ];
  const brNetfilter = (on: boolean) => assert.equal(h.sh(`sysctl -qw net.bridge.bridge-nf-call-iptables=${on ? 1 : 0}`).status, 0, 'br_netfilter switch (test host netns only)');
  const inEchos = (c: string) => Number(h.exec(c, `awk '/^Icmp:/ { if (!h) { h = 1; split($0, k); next } split($0, v); for (i in k) if (k[i] == "InEchos") print v[i] }' /proc/net/snmp`).stdout.trim());
  const failures: string[] = [];
  for (const on of [false, true]) {
    brNetfilter(on);
    for (const [from, to, want, purpose] of matrix) {
      const label = `${from} -> ${to} (br_netfilter ${on ? 'on' : 'off'})`;
      const r = h.nsnet(['explain', '--format', 'json', from, to]);
      if (![0, 1].includes(r.status) || !r.stdout) { failures.push(`${label}: explain failed (${r.status}): ${r.stderr.trim()}`); continue; }
      const e = JSON.parse(r.stdout) as Exp & { decidedBy?: { table: string; why: string } };
      if (r.status !== (want === 'delivered' ? 0 : 1)) failures.push(`${label}: exit ${r.status}`);
      if (e.verdict !== want) failures.push(`${label}: predicted ${e.verdict} (${e.reason}), expected ${want}`);
      if (purpose && e.decidedBy?.purpose !== purpose) failures.push(`${label}: decided by ${e.decidedBy?.purpose}, expected ${purpose}`);
      if (purpose === 'partition') {
        const net = from.startsWith('o') ? 'onenet' : 'cutnet';
        if (!e.fix.includes(`nsnet heal --network ${net}`)) failures.push(`${label}: fix ${JSON.stringify(e.fix)}`);
        if (!new RegExp(`network ${net} is partitioned.*group`).test(e.reason)) failures.push(`${label}: the reason names no network and groups: ${e.reason}`);
        // Frames within the bridge (and, with br_netfilter, a DNAT bridged back into it) are cut in the bridge table.
        const bridged = !to.startsWith('host:') || on;
        if (bridged && e.decidedBy?.table !== 'bridge nsnet') failures.push(`${label}: decided in ${e.decidedBy?.table}, expected bridge nsnet`);
        if (!bridged && e.decidedBy?.table !== 'inet nsnet') failures.push(`${label}: decided in ${e.decidedBy?.table}, expected inet nsnet (routed)`);
      }
      const dst = e.probe ?? e.packet!;
      const proto = to.includes(':') ? 'tcp' : 'icmp';
      const cmd = attempt(dst.daddr, dst.dport, proto);
      const real = (from === 'host' ? h.sh(cmd) : h.exec(from, cmd)).stdout.trim() as Outcome;
      if (delivered(real) !== (want === 'delivered')) failures.push(`${label}: the real attempt to ${dst.daddr}:${dst.dport ?? ''} got ${real}, predicted ${e.verdict}`);
      const tr = h.nsnet(['explain', '--trace', '--format', 'json', from, to]);
      if (![0, 1, 3].includes(tr.status) || !tr.stdout) { failures.push(`${label}: --trace failed (${tr.status}): ${tr.stderr.trim()}`); continue; }
      const te = JSON.parse(tr.stdout) as Exp;
      if (tr.status === 3 || te.trace!.differences.length) failures.push(`${label}: the trace disagrees: ${te.trace!.differences.join('; ')}`);
      if (te.trace!.verdict !== want) failures.push(`${label}: the trace says ${te.trace!.verdict}`);
      if (!te.trace!.chains.length) failures.push(`${label}: no chain traced`);
      if (purpose === 'partition' && !te.trace!.chains.some((c) => c.outcome === 'drop' && c.table === (e.decidedBy?.table ?? ''))) failures.push(`${label}: the kernel dropped it elsewhere: ${JSON.stringify(te.trace!.chains)}`);
    }
    // The other direction of the one-way cut: the ping arrives (o1's kernel counts the echo request), its reply
    // does not; explain says delivered and warns, --trace says unknown with the reason, and no disagreement.
    const label = `o2 -> o1 (br_netfilter ${on ? 'on' : 'off'})`;
    const e = JSON.parse(h.nsnet(['explain', '--format', 'json', 'o2', 'o1']).stdout) as Exp & { replyCut?: string };
    if (e.verdict !== 'delivered' || !/answers are dropped: network onenet is partitioned one way/.test(e.replyCut ?? '') || !e.warnings.includes(e.replyCut!)) failures.push(`${label}: ${JSON.stringify(e)}`);
    const before = inEchos('o1');
    if (!Number.isInteger(before)) failures.push(`${label}: cannot read o1's ICMP counters`);
    const real = h.exec('o2', attempt(ip('o1', 'onenet'), undefined, 'icmp')).stdout.trim();
    if (real !== 'timeout') failures.push(`${label}: the real ping got ${real}, its reply should be cut`);
    if (!(inEchos('o1') > before)) failures.push(`${label}: o1 received no echo request`);
    const tr = h.nsnet(['explain', '--trace', '--format', 'json', 'o2', 'o1']);
    const te = JSON.parse(tr.stdout) as Exp & { trace: { notes: string[] } };
    if (tr.status !== 0 || te.trace.verdict !== 'unknown' || te.trace.differences.length || !te.trace.notes.some((n) => /answers are dropped/.test(n))) {
      failures.push(`${label}: --trace exit ${tr.status}: ${JSON.stringify(te.trace)}`);
    }
  }
  assert.deepEqual(failures, []);
  assert.doesNotMatch(h.sh('nft list chains').stdout, /trace_/);
  assert.equal(h.nsnet(['check']).status, 0);

  // The text form names the rule, the network and the groups; the fix works.
  const text = h.nsnet(['explain', 'p1', 'p3:80']);
  assert.equal(text.status, 1);
  assert.match(text.stdout, /^verdict: DROPPED: dropped by bridge nsnet forward rule #\d+: partition: network cutnet is partitioned: p1 is in group 1 \(p1, p2\), p3 in group 2 \(p3\)/m);
  assert.match(text.stdout, /^ {2}fix: nsnet heal --network cutnet$/m);
  assert.match(h.nsnet(['explain', 'p4', 'p3:80']).stdout, /p4 is in the containers not listed \(p4\), p3 in group 2 \(p3\)/);
  h.ok(['heal', '--network', 'cutnet']);
  assert.equal(h.nsnet(['explain', 'p1', 'p3:80']).status, 0);
  assert.equal(h.exec('p1', attempt(ip('p3', 'cutnet'), 80, 'tcp')).stdout.trim(), 'connected');
  h.ok(['heal']);
});

test('explain --trace: a change nsnet does not know makes the kernel disagree, loudly; a crashed trace is reconciled; bad input changes nothing', { timeout: 300000 }, async (t) => {
  const h = TestHost.create('explain2');
  t.after(() => h.cleanup());
  // (Names that are not hex: `network create` refuses a name that is the prefix of an existing network's id.)
  h.ok(['network', 'create', 'neta']);
  h.ok(['network', 'create', 'netb']);
  h.ok(['run', '-d', '--name', 'x', '--network', 'neta', '-p', '8080:80', '--', '/bin/sh', '-c', `python3 ${SERV} whoami 80`]);
  h.ok(['run', '-d', '--name', 'y', '--network', 'netb', '--', '/bin/sh', '-c', `python3 ${SERV} whoami 80`]);
  const yIp = JSON.parse(h.ok(['inspect', 'y']))[0].NetworkSettings.Networks.netb.IPAddress as string;
  await waitFor(() => h.sh(attempt(yIp, 80, 'tcp')).stdout.trim() === 'connected', 8000, 100);

  // The forward chain flushed by hand: nsnet predicts isolation, the kernel lets it through.
  assert.equal(h.sh('nft flush chain inet nsnet forward').status, 0);
  const r = h.nsnet(['explain', '--trace', 'x', 'y:80']);
  assert.equal(r.status, 3, r.stdout + r.stderr);
  assert.match(r.stdout, /^verdict: DROPPED: dropped by inet nsnet forward rule #\d+: isolation/m);
  assert.match(r.stdout, /WARNING: nsnet check finds \d+ difference\(s\).*chain forward has 0 rules/);
  assert.match(r.stdout, /^trace verdict: DELIVERED$/m);
  assert.match(r.stdout, /^!!! THE KERNEL DISAGREES WITH THE PREDICTION !!!$/m);
  assert.match(r.stdout, /^!!! inet nsnet forward: predicted drop by rule #\d+, the kernel: accept$/m);
  assert.equal(h.exec('x', attempt(yIp, 80, 'tcp')).stdout.trim(), 'connected', 'the kernel really delivers it');
  h.ok(['reconcile']);
  assert.equal(h.nsnet(['explain', '--trace', 'x', 'y:80']).status, 1, 'agreement again after reconcile');

  // Another table's drop policy on forward: nsnet predicts the hairpin delivered, the kernel drops it there.
  assert.equal(h.sh('nft add table inet other && nft add chain inet other ffwd "{ type filter hook forward priority 0; policy drop; }"').status, 0);
  try {
    const f = h.nsnet(['explain', '--trace', '--format', 'json', 'y', 'host:8080']);
    assert.equal(f.status, 3, f.stdout + f.stderr);
    const e = JSON.parse(f.stdout) as Exp;
    assert.equal(e.verdict, 'delivered');
    assert.ok(e.warnings.some((w) => /foreign-firewall: table inet other chain ffwd/.test(w)), e.warnings.join('\n'));
    assert.equal(e.trace!.verdict, 'dropped');
    assert.ok(e.trace!.chains.some((c) => c.table === 'inet other' && c.chain === 'ffwd' && c.outcome === 'policy-drop'), JSON.stringify(e.trace!.chains));
    assert.ok(e.trace!.differences.some((d) => /inet other ffwd \(drop\).*another table, which nsnet does not model/.test(d)), e.trace!.differences.join('\n'));
  } finally {
    h.sh('nft delete table inet other');
  }

  // A trace interrupted by a crash (kill -9) at each of its crash points: check reports the rules left behind,
  // reconcile removes them, check is clean again.
  const points = CRASH_POINTS.filter((p) => p.startsWith('explain:'));
  assert.deepEqual(points, ['explain:trace-added', 'explain:probe-sent', 'explain:trace-remove']);
  for (const point of points) {
    const crash = h.nsnet(['explain', '--trace', 'x', 'y:80'], { env: { NSNET_CRASH_AT: point } });
    assert.ok(crash.status === 128 || crash.status === 137, `${point}: killed, not ${crash.status}`);
    assert.match(h.sh('nft list chains').stdout, /chain trace_prerouting/, point);
    const c1 = h.nsnet(['check']);
    assert.equal(c1.status, 1, point);
    assert.match(c1.stdout, /^trace-rule\ttable inet nsnet chain trace_prerouting: left behind by nsnet explain --trace/m, point);
    const rec = h.ok(['reconcile']);
    assert.match(rec, /removed the trace rule nsnet explain --trace left in table inet nsnet chain trace_forward/, point);
    assert.doesNotMatch(h.sh('nft list chains').stdout, /trace_/, point);
    assert.equal(h.nsnet(['check']).status, 0, point);
  }
  // An injected failure after the rules were added (fail:): the command fails, the rules are removed anyway.
  const failed = h.nsnet(['explain', '--trace', 'x', 'y:80'], { env: { NSNET_CRASH_AT: 'fail:explain:probe-sent' } });
  assert.equal(failed.status, 1, failed.stderr);
  assert.match(failed.stderr, /injected fault at explain:probe-sent/);
  assert.doesNotMatch(h.sh('nft list chains').stdout, /trace_/);

  // Bad input: one line, exit 2, nothing changed (not even a trace rule).
  const before = [h.sh('nft list ruleset').stdout, h.ok(['ps', '-a', '-q'])];
  for (const args of [
    ['explain', 'nope', 'y:80'], ['explain', 'x', 'nope:80'], ['explain', 'x', 'y:0'], ['explain', 'x', 'y:99999'],
    ['explain', 'x', 'y:80/sctp'], ['explain', 'x', 'y/udp'], ['explain', '--format', 'yaml', 'x', 'y:80'],
    ['explain', '--trace', 'nope', 'y:80'], ['explain', '--trace', 'outside', 'x:80'], ['explain', 'x'],
  ]) {
    const b: Result = h.nsnet(args);
    assert.equal(b.status, 2, `${args.join(' ')}: ${b.status} ${b.stdout} ${b.stderr}`);
    assert.equal(b.stdout, '', args.join(' '));
    assert.equal(b.stderr.trim().split('\n').length, 1, `${args.join(' ')}: ${b.stderr}`);
    assert.match(b.stderr, /^Error: /);
  }
  assert.deepEqual([h.sh('nft list ruleset').stdout, h.ok(['ps', '-a', '-q'])], before);
});
