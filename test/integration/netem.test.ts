// Link impairment (`nsnet netem`), measured by traffic: iperf3 through --rate, 2000 UDP datagrams through --loss,
// ping for --to and --duration; check/reconcile against a qdisc deleted behind nsnet's back; removal with the
// container. One throwaway host netns; no resident helper (NSNET_NO_HELPER), so that "no nsnet process left"
// means exactly that.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { CRASH_POINTS } from '../../src/engine/faults.js';
import { TestHost, waitFor } from '../helpers/host.js';

const UDP_RECV = `import socket,sys
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(('0.0.0.0',int(sys.argv[1]))); s.settimeout(3)
open(sys.argv[2],'w').write('ready')
n=0
try:
  while True:
    s.recv(2048); n+=1; s.settimeout(1)
except socket.timeout: pass
print(n)`;
const UDP_SEND = `import socket,sys,time
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)
for i in range(int(sys.argv[3])):
  s.sendto(b'x'*200,(sys.argv[1],int(sys.argv[2])))
  if i % 20 == 19: time.sleep(0.002)`;

/** Processes of this test whose command line mentions its state directory (the healer carries it in argv). */
function procsWith(root: string, word: string): Array<{ pid: number; cmd: string }> {
  const out: Array<{ pid: number; cmd: string }> = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').join(' ');
      if (cmd.includes(root) && cmd.includes(word)) out.push({ pid: Number(d), cmd });
    } catch { /* gone */ }
  }
  return out;
}

/** nsnet processes running in the test's host netns, but its DNS resolver and supervisor. */
function nsnetProcesses(h: TestHost): string[] {
  const ino = fs.statSync(`/run/netns/${h.ns}`).ino;
  const out: string[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (fs.statSync(`/proc/${d}/ns/net`).ino !== ino) continue;
      const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').join(' ');
      if (/nsnet\.cjs|nsnet-start|nsnet-fast|dist\/src\/cli/.test(cmd) && !/\/dns\/|dns|netem --expire/.test(cmd)) out.push(cmd);
    } catch { /* gone */ }
  }
  return out;
}

function pingOk(h: TestHost, from: string, ip: string, count = 3): number {
  const r = h.exec(from, `ping -c ${count} -i 0.2 -W 1 ${ip} 2>&1 | sed -n 's/.* \\([0-9]*\\) received.*/\\1/p'`, { timeout: 15000 });
  return Number(r.stdout.trim() || 0);
}

test('netem: rate, loss, --to, --duration, check/reconcile and removal, measured by traffic', async (t) => {
  const h = TestHost.create('netem', { NSNET_NO_HELPER: '1' });
  t.after(() => h.cleanup());
  h.ok(['network', 'create', '--subnet', '10.93.0.0/24', 'imp']);
  for (const n of ['a', 'b', 'c']) h.ok(['run', '-d', '--name', n, '--network', 'imp', '--', 'sleep', '600']);
  const ip = (n: string) => JSON.parse(h.ok(['inspect', n]))[0].NetworkSettings.Networks.imp.IPAddress as string;
  const [ipB, ipC] = [ip('b'), ip('c')];
  /** The host end of n's veth: the host link whose ifindex is eth0's link index (not /sys: it shows the netns of
   *  whoever mounted it). */
  const hostIfOf = (n: string) => {
    const peer = (JSON.parse(h.exec(n, 'ip -j link show eth0').stdout) as Array<{ link_index: number }>)[0].link_index;
    const l = (JSON.parse(h.sh('ip -j link show').stdout) as Array<{ ifindex: number; ifname: string }>).find((x) => x.ifindex === peer);
    assert.ok(l, `host end of ${n}`);
    return l.ifname;
  };
  const htbOn = (dev: string) => /qdisc htb 4e53:/.test(h.sh(`tc qdisc show dev ${dev}`).stdout);
  const htbIn = (n: string) => /qdisc htb 4e53:/.test(h.exec(n, 'tc qdisc show dev eth0').stdout);
  assert.equal(pingOk(h, 'a', ipB, 1), 1, 'a reaches b before any impairment (ARP warmed)');
  assert.equal(pingOk(h, 'a', ipC, 1), 1);

  // ---- bad input: one clear line, exit non-zero, nothing changed.
  const bad: Array<[string[], RegExp]> = [
    [['netem', 'ghost', '--loss', '1%'], /^Error: No such container: ghost$/],
    [['netem', 'a', '--network', 'nowhere', '--loss', '1%'], /^Error: network nowhere not found$/],
    [['netem', 'a', '--loss', '120%'], /^Error: invalid --loss 120%: must be between 0% and 100%$/],
    [['netem', 'a', '--delay', '-1ms'], /^Error: invalid --delay -1ms: must not be negative$/],
    [['netem', 'a', '--rate', '0'], /^Error: invalid --rate 0: must be more than 0$/],
    [['netem', 'a'], /^Error: no impairment given/],
    [['netem', 'a', '--loss', '1%', '--to', 'ghost'], /^Error: --to ghost: no such container/],
    [['netem', 'a', '--clear', '--loss', '1%'], /^Error: --clear, --clear-all and --expire take no impairment options/],
  ];
  for (const [args, re] of bad) {
    const r = h.nsnet(args);
    assert.notEqual(r.status, 0, args.join(' '));
    assert.match(r.stderr.trim(), re, args.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  }
  assert.equal(h.ok(['faults', '--format', 'json']), '[]');
  assert.ok(!htbIn('a') && !htbOn(hostIfOf('a')), 'nothing made');
  // ---- --delay 50ms: ping RTT is 100 ms ± 10% (both directions delayed): the kernel's netem where it has one,
  // else the delay line (this kernel has no sch_netem).
  const out = h.ok(['netem', 'a', '--delay', '50ms']);
  const via = JSON.parse(h.ok(['inspect', 'a']))[0].Netem.imp.Via as string;
  t.diagnostic(`--delay by ${via}: ${out}`);
  /** The median RTT of 5 pings (one late reply on a loaded machine, or a first ARP, does not move it). */
  const rtt = (from: string, to: string) => {
    const r = h.exec(from, `ping -c 5 -i 0.2 ${to}`, { timeout: 15000 }).stdout;
    const times = [...r.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1])).sort((x, y) => x - y);
    return times.length ? times[Math.floor(times.length / 2)] : NaN;
  };
  const r50 = rtt('a', ipB);
  t.diagnostic(`--delay 50ms: ping RTT ${r50} ms (median of 5)`);
  assert.ok(r50 > 90 && r50 < 110, `RTT ${r50} ms`);
  assert.equal(h.nsnet(['check']).status, 0, h.nsnet(['check']).stdout);
  // --to with a delay: only the named peer is slow.
  h.ok(['netem', 'a', '--delay', '50ms', '--to', 'c']);
  const [toC, toB] = [rtt('a', ipC), rtt('a', ipB)];
  t.diagnostic(`--delay 50ms --to c: RTT to c ${toC} ms, to b ${toB} ms`);
  assert.ok(toC > 90 && toC < 110, `to c: ${toC} ms`);
  assert.ok(toB < 10, `to b untouched: ${toB} ms`);
  if (via === 'delayline') {
    // The delay line killed behind nsnet's back: check reports it, reconcile starts it again.
    const [line] = procsWith(h.root, 'delayline.js');
    assert.ok(line, 'the delay line runs');
    process.kill(line.pid, 'SIGKILL');
    await waitFor(() => procsWith(h.root, 'delayline.js').length === 0, 3000);
    assert.match(h.nsnet(['check']).stdout, /^netem\ta on imp: .*its delay line is not running/m);
    assert.match(h.ok(['reconcile']), /restored the impairment of a on imp/);
    assert.equal(h.nsnet(['check']).status, 0);
    const again = rtt('a', ipC);
    assert.ok(again > 90 && again < 110, `restored: ${again} ms`);
  }
  // Re-applied when the sandbox is rebuilt: a stopped container's impairment is dormant, back at start.
  h.ok(['stop', '-t', '0', 'a']);
  assert.match(h.ok(['faults']), /^netem\s+a\s+imp\s+dormant\s/m);
  assert.equal(procsWith(h.root, 'delayline.js').length, 0, 'no delay line while stopped');
  assert.equal(h.nsnet(['check']).status, 0);
  h.ok(['start', 'a']);
  assert.match(h.ok(['faults']), /^netem\s+a\s+imp\s+active\s/m);
  pingOk(h, 'a', ipC, 1); // the new link's first ARP (delayed too)
  const back = rtt('a', ipC);
  t.diagnostic(`after stop/start: RTT to c ${back} ms`);
  assert.ok(back > 90 && back < 110, `re-applied: ${back} ms`);
  assert.equal(h.nsnet(['check']).status, 0);
  h.ok(['netem', 'a', '--clear']);
  assert.equal(procsWith(h.root, 'delayline.js').length, 0, 'the delay line ends with its impairment');
  assert.ok(rtt('a', ipC) < 10, 'cleared');

  // ---- --rate 10mbit: iperf3 gives 10 Mbit/s ± 10%.
  h.ok(['netem', 'a', '--rate', '10mbit']);
  const view = JSON.parse(h.ok(['inspect', 'a']))[0];
  assert.equal(view.Netem.imp.Rate, '10mbit', 'inspect shows it');
  assert.ok(htbIn('a'), `container side: ${h.exec('a', 'tc qdisc show dev eth0').stdout}`);
  assert.ok(htbOn(hostIfOf('a')), `host side: ${h.sh('tc qdisc show').stdout}`);
  h.exec('b', 'iperf3 -s -D -1 -p 5201 --logfile /dev/null');
  await waitFor(() => h.exec('b', 'ss -ltn | grep -q :5201').status === 0, 5000);
  const ip3 = h.exec('a', `iperf3 -c ${ipB} -p 5201 -t 3 -J`, { timeout: 20000 });
  assert.equal(ip3.status, 0, ip3.stderr);
  const bps = JSON.parse(ip3.stdout).end.sum_received.bits_per_second as number;
  t.diagnostic(`--rate 10mbit: iperf3 measured ${(bps / 1e6).toFixed(2)} Mbit/s`);
  assert.ok(bps > 9e6 && bps < 11e6, `iperf3 measured ${(bps / 1e6).toFixed(2)} Mbit/s`);

  // ---- --loss 20%: 20% ± 5% of 2000 UDP datagrams are lost (replaces the rate: one impairment per link).
  h.ok(['netem', 'a', '--loss', '20%']);
  assert.ok(!/rate/.test(h.ok(['faults'])), 'the rate was replaced');
  const ready = `${h.root}/udp-ready`;
  const recv = h.nsnet(['exec', '-d', 'b', '--', '/bin/sh', '-c', `python3 -c "${UDP_RECV}" 9999 ${ready} > ${h.root}/udp-count`]);
  assert.equal(recv.status, 0, recv.stderr);
  await waitFor(() => fs.existsSync(ready), 5000);
  assert.equal(h.exec('a', `python3 -c "${UDP_SEND}" ${ipB} 9999 2000`).status, 0);
  const got = Number(await waitFor(() => fs.readFileSync(`${h.root}/udp-count`, 'utf8').trim(), 8000, 100));
  const lost = (2000 - got) / 2000;
  t.diagnostic(`--loss 20%: ${2000 - got} of 2000 UDP datagrams lost (${(lost * 100).toFixed(1)}%)`);
  assert.ok(lost > 0.15 && lost < 0.25, `lost ${(lost * 100).toFixed(1)}% (${got} of 2000 received)`);

  // ---- --to: only the named peer is impaired.
  h.ok(['netem', 'a', '--loss', '100%', '--to', 'c']);
  assert.equal(pingOk(h, 'a', ipC), 0, 'a -> c: every packet lost');
  assert.equal(pingOk(h, 'a', ipB), 3, 'a -> b: untouched');
  assert.equal(pingOk(h, 'c', ip('a')), 0, 'c -> a: impaired too (both directions)');

  // ---- check and reconcile: a qdisc deleted behind nsnet's back (host side, then container side).
  assert.equal(h.nsnet(['check']).status, 0, h.nsnet(['check']).stdout);
  h.sh(`tc qdisc del dev ${hostIfOf('a')} root`);
  const chk = h.nsnet(['check']);
  assert.equal(chk.status, 1);
  assert.match(chk.stdout, /^netem\ta on imp: host side \S+ has no impairment$/m);
  assert.match(h.ok(['reconcile']), /restored the impairment of a on imp/);
  assert.equal(h.nsnet(['check']).status, 0);
  assert.equal(pingOk(h, 'c', ip('a')), 0, 'restored: c -> a lost again');
  h.exec('a', 'tc qdisc del dev eth0 root');
  assert.match(h.nsnet(['check']).stdout, /container side eth0 has no impairment/);
  h.ok(['reconcile']);
  assert.equal(h.nsnet(['check']).status, 0);
  assert.equal(pingOk(h, 'a', ipC), 0);
  // And one nsnet did not record: removed by reconcile.
  h.exec('b', 'tc qdisc add dev eth0 root handle 4e53: htb default 0');
  assert.match(h.nsnet(['check']).stdout, /^orphan-netem\tb on imp/m);
  assert.match(h.ok(['reconcile']), /removed an unrecorded impairment of b on imp/);

  // ---- --duration heals on time, with no nsnet process left running (only the healer's sleep).
  // 5 s: long enough that the checks below run while it is in force, even on a loaded machine.
  h.ok(['netem', 'a', '--loss', '100%', '--to', 'c', '--duration', '5s']);
  const until = Date.parse(JSON.parse(h.ok(['faults', '--format', 'json']))[0].until);
  assert.match(h.ok(['faults']), /^netem\s+a\s+imp\s+active\s+\S+Z \(in [1-5]s\)\s+loss 100% to c$/m);
  const healers = procsWith(h.root, 'netem --expire');
  assert.equal(healers.length, 1, JSON.stringify(healers));
  assert.match(healers[0].cmd, /^nsnet-netem-healer |^\/bin\/sh -c sleep/);
  assert.deepEqual(nsnetProcesses(h), [], 'no nsnet process left (but the resolver)');
  if (Date.now() < until - 1500) assert.equal(pingOk(h, 'a', ipC, 2), 0, 'impaired meanwhile');
  else t.diagnostic('the machine was too slow to ping while the impairment was in force: not checked this time');
  await waitFor(() => !htbIn('a'), 9000, 50);
  const late = Date.now() - until;
  t.diagnostic(`--duration 5s: healed ${late} ms after the time it was due`);
  assert.ok(late >= -50 && late < 1500, `healed ${late} ms after it was due`);
  assert.ok(!htbOn(hostIfOf('a')), 'both ends healed');
  assert.equal(pingOk(h, 'a', ipC), 3, 'a reaches c again');
  assert.equal(h.ok(['faults', '--format', 'json']), '[]');
  assert.equal(h.nsnet(['check']).status, 0);

  // A healer that was killed: the next mutating command (or reconcile) enforces the expiry.
  h.ok(['netem', 'a', '--loss', '100%', '--to', 'c', '--duration', '1s']);
  const [healer] = procsWith(h.root, 'netem --expire');
  process.kill(healer.pid, 'SIGKILL');
  await new Promise((r) => setTimeout(r, 1300));
  assert.ok(htbIn('a'), 'nobody healed it yet');
  assert.equal(h.ok(['faults', '--format', 'json']), '[]', 'faults shows what is in force: nothing');
  assert.match(h.nsnet(['check']).stdout, /^netem-expired\ta: expired/m);
  h.ok(['network', 'create', '--subnet', '10.94.0.0/24', 'other']); // any mutating command
  assert.ok(!htbIn('a') && !htbOn(hostIfOf('a')), 'expired impairment removed by the next command');
  assert.equal(h.nsnet(['check']).status, 0);

  // ---- removal: with the disconnection, and with the container (and its healer).
  h.ok(['network', 'connect', 'other', 'b']);
  h.ok(['netem', 'b', '--network', 'other', '--loss', '5%']);
  h.ok(['network', 'disconnect', 'other', 'b']);
  assert.equal(h.ok(['faults', '--format', 'json']), '[]', 'gone with the disconnection');
  h.ok(['netem', 'a', '--rate', '1mbit', '--delay', '10ms', '--duration', '60s']);
  const aHost = hostIfOf('a');
  assert.equal(procsWith(h.root, 'netem --expire').length, 1);
  h.ok(['rm', '-f', 'a']);
  assert.equal(h.ok(['faults', '--format', 'json']), '[]');
  await waitFor(() => procsWith(h.root, 'netem --expire').length === 0 && procsWith(h.root, 'delayline.js').length === 0, 3000);
  assert.ok(!h.links().includes(aHost) || !htbOn(aHost));
  assert.equal(h.nsnet(['check']).status, 0);
});

test('netem: kill -9 at every crash point of a change and of a clear, then reconcile makes the state exact', async (t) => {
  const h = TestHost.create('netemk', { NSNET_NO_HELPER: '1' });
  t.after(() => h.cleanup());
  h.ok(['network', 'create', '--subnet', '10.95.0.0/24', 'kn']);
  h.ok(['run', '-d', '--name', 'k', '--network', 'kn', '--', 'sleep', '600']);
  h.ok(['run', '-d', '--name', 'p', '--network', 'kn', '--', 'sleep', '600']);
  const OLD = ['netem', 'k', '--loss', '5%'];
  const NEW = ['netem', 'k', '--delay', '20ms', '--rate', '50mbit', '--to', 'p'];
  const CLEAR = ['netem', 'k', '--clear'];
  const tracePoints = (cmd: string[]) => {
    const r = h.nsnet(cmd, { env: { NSNET_TRACE_POINTS: '1' } });
    assert.equal(r.status, 0, r.stderr);
    return [...new Set(r.stderr.split('\n').filter((l) => l.startsWith('crashpoint netem')).map((l) => l.slice(11)))];
  };
  h.ok(OLD);
  const change = tracePoints(NEW);
  const clear = tracePoints(CLEAR);
  // Every netem crash point of CRASH_POINTS (src/engine/faults.ts) is walked here (faults.test.ts leaves them to this file).
  assert.deepEqual([...change, ...clear].sort(), CRASH_POINTS.filter((p) => p.startsWith('netem')).sort(), `points: ${change.join(' ')} / ${clear.join(' ')}`);
  const desc = () => (JSON.parse(h.ok(['faults', '--format', 'json'])) as Array<{ detail: string }>).map((f) => f.detail);
  let n = 0;
  for (const [cmd, pts, before] of [[NEW, change, OLD], [CLEAR, clear, NEW]] as const) {
    for (const p of pts) {
      h.ok(['netem', 'k', '--clear']);
      h.ok([...before]);
      const r = h.nsnet([...cmd], { env: { NSNET_CRASH_AT: p } });
      assert.equal(r.status, 128, `killed at ${p}: ${r.stderr}`);
      const c1 = h.nsnet(['check']).stdout;
      assert.equal(h.nsnet(['check']).stdout, c1, 'check changes nothing');
      h.ok(['reconcile']);
      const chk = h.nsnet(['check']);
      assert.equal(chk.status, 0, `${p}: check after reconcile:\n${chk.stdout}`);
      // Either the change happened or it did not: the faults are one of the two, and the kernel agrees (check).
      const d = desc();
      assert.ok(d.length <= 1, JSON.stringify(d));
      const lines = procsWith(h.root, 'delayline.js').length;
      assert.ok(lines <= 1, `${lines} delay lines`);
      h.ok([...cmd]); // and the command works again
      assert.equal(h.nsnet(['check']).status, 0);
      n++;
    }
  }
  h.ok(['netem', '--clear-all']);
  assert.equal(procsWith(h.root, 'delayline.js').length, 0);
  t.diagnostic(`netem crash points exercised: ${n}`);
});

test('netem: x-netem in a topology file: up applies it, a second up changes nothing, a change or its removal converges, down removes it', async (t) => {
  const h = TestHost.create('netemup', { NSNET_NO_HELPER: '1' });
  t.after(() => h.cleanup());
  const file = `${h.root}/nsnet.yaml`;
  const write = (netem: string) => fs.writeFileSync(file, `name: lab
services:
  db:
    command: [sleep, "600"]
    networks:
      back:
        ipv4_address: 10.96.0.10
${netem}
  web:
    command: [sleep, "600"]
    networks:
      back:
        ipv4_address: 10.96.0.20
networks:
  back:
    ipam: {config: [{subnet: 10.96.0.0/24}]}
`);
  write('        x-netem: {delay: 30ms, to: [web]}');
  const up = () => h.ok(['up', '-d', '-f', file]);
  assert.match(up(), /^Container lab-db-1 {2}Impaired on lab_back$/m);
  const rtt = (to: string) => {
    const times = [...h.exec('lab-db-1', `ping -c 5 -i 0.2 ${to}`, { timeout: 15000 }).stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1])).sort((x, y) => x - y);
    return times.length ? times[Math.floor(times.length / 2)] : NaN;
  };
  const r = rtt('10.96.0.20');
  t.diagnostic(`x-netem delay 30ms to web: RTT ${r} ms`);
  assert.ok(r > 54 && r < 66, `RTT ${r} ms`);
  assert.equal(up(), '', 'a second up changes nothing');
  write('        x-netem: {delay: 10ms, to: [web]}');
  assert.match(up(), /^Container lab-db-1 {2}Impaired on lab_back$/m);
  assert.match(h.ok(['faults']), /delay 10ms to lab-web-1/);
  assert.equal(JSON.parse(h.ok(['inspect', 'lab-db-1']))[0].State.Running, true, 'changed without re-creating the container');
  write('');
  assert.match(up(), /^Container lab-db-1 {2}Unimpaired on lab_back$/m);
  assert.equal(h.ok(['faults', '--format', 'json']), '[]');
  write('        x-netem: {delay: 10ms}');
  up();
  h.ok(['down', '-f', file]);
  assert.equal(h.ok(['faults', '--format', 'json']), '[]');
  await waitFor(() => procsWith(h.root, 'delayline.js').length === 0, 3000);
  assert.equal(h.nsnet(['check']).status, 0);
});
