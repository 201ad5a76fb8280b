// Partitions (issue #15) against the real kernel, in one throwaway host netns (TestHost) and its containers:
//   - the matrix: TCP and UDP between every pair of containers, before (control: everything passes), with a
//     partition (exactly the cut pairs dropped), with br_netfilter on and off (set in the test's host netns only);
//     a second network with its own partition, healed on its own; a multi-homed container cut on one network
//     only; the route through the host (a published port reached through the host address) cut too;
//   - --oneway: one way only (UDP datagrams, as logged by the receiver);
//   - an established TCP connection stalled by the cut (no reset) and resumed after heal;
//   - --duration heals on time, by its timer process; heal ends the timer of a partition it removes;
//   - check reports a partition rule or set element deleted behind nsnet's back, reconcile restores it;
//   - bad input: one line, exit 2, the ruleset and the store unchanged;
//   - a container's part goes with rm, a partition with its network.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { TestHost, must, sh, waitFor } from '../helpers/host.js';

const PORT = 7000;
const PUB = 18080; // n3's published port, reached through the host address
let h: TestHost;
let dir: string;
const ip: Record<string, string> = {};
const procs: ChildProcess[] = [];

/** A server (TCP echo, UDP echo) that logs every UDP datagram's payload. */
const SERVER = `import socket, sys, threading
port = int(sys.argv[1]); log = open(sys.argv[2], 'a', buffering=1)
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', port))
    while True:
        d, a = s.recvfrom(512); log.write(d.decode() + '\\n'); s.sendto(d, a)
def conn(c):
    try:
        while True:
            d = c.recv(4096)
            if not d: break
            c.sendall(d)
    except OSError: pass
    c.close()
def tcp():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', port)); s.listen(64)
    while True:
        c, a = s.accept(); threading.Thread(target=conn, args=(c,), daemon=True).start()
threading.Thread(target=udp, daemon=True).start(); tcp()
`;

/** Probes every target (ip:port) at once, TCP and UDP echo, and prints {target: {tcp, udp}} as JSON. */
const PROBE = `import json, socket, sys, threading
tag = sys.argv[1]; res = {}
def tcp(t, r):
    h, p = t.rsplit(':', 1)
    try:
        s = socket.create_connection((h, int(p)), timeout=0.6); s.settimeout(0.6); s.sendall(b'x'); r['tcp'] = s.recv(8) == b'x'; s.close()
    except OSError: pass
def udp(t, r):
    h, p = t.rsplit(':', 1)
    try:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(0.6); msg = (tag + '>' + t).encode(); u.sendto(msg, (h, int(p))); r['udp'] = u.recv(512) == msg
    except OSError: pass
ts = []
for t in sys.argv[2:]:
    res[t] = {'tcp': False, 'udp': False}
    ts += [threading.Thread(target=f, args=(t, res[t])) for f in (tcp, udp)]
[t.start() for t in ts]; [t.join() for t in ts]
print(json.dumps(res))
`;

/** A long-lived TCP connection: sends a line every 50 ms, prints "echo" for each line echoed back. */
const CLIENT = `import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5); s.settimeout(0.05); buf = b''
print('connected', flush=True)
while True:
    try:
        s.sendall(b'p\\n')
    except OSError as e:
        print('ERR', e, flush=True); sys.exit(1)
    t = time.time()
    while time.time() - t < 0.05:
        try:
            d = s.recv(4096)
            if not d:
                print('ERR closed', flush=True); sys.exit(1)
            for _ in range(d.count(b'\\n')): print('echo', flush=True)
        except socket.timeout: pass
        except OSError as e:
            print('ERR', e, flush=True); sys.exit(1)
`;

const netns = (c: string) => `/run/netns/${h.netnsName(c)}`;
/** A shell command in a container's netns, entered directly (cheaper than nsnet exec; no /etc files needed). */
const inCtr = (c: string, cmd: string) => sh(`nsenter --net=${netns(c)} sh -c ${JSON.stringify(cmd).replace(/\$/g, '\\$')}`);

before(async () => {
  h = TestHost.create('part');
  dir = h.root;
  fs.writeFileSync(path.join(dir, 'server.py'), SERVER);
  fs.writeFileSync(path.join(dir, 'probe.py'), PROBE);
  fs.writeFileSync(path.join(dir, 'client.py'), CLIENT);
  h.ok(['network', 'create', '--subnet', '10.71.0.0/24', 'pa']);
  h.ok(['network', 'create', '--subnet', '10.72.0.0/24', 'pb']);
  // pa: n1..n4 (n3 publishes a port); pb: m1, and n4 (multi-homed: pa and pb).
  for (const [name, net, extra] of [['n1', 'pa', []], ['n2', 'pa', []], ['n3', 'pa', ['-p', `${PUB}:${PORT}`]], ['n4', 'pa', []], ['m1', 'pb', []]] as Array<[string, string, string[]]>) {
    h.ok(['run', '-d', '--name', name, '--network', net, ...extra, '--', 'python3', path.join(dir, 'server.py'), String(PORT), path.join(dir, `${name}.udp.log`)]);
  }
  h.ok(['network', 'connect', 'pb', 'n4']);
  for (const c of ['n1', 'n2', 'n3', 'n4', 'm1']) {
    const v = JSON.parse(h.ok(['inspect', c]))[0];
    for (const [net, e] of Object.entries(v.NetworkSettings.Networks as Record<string, { IPAddress: string }>)) ip[`${c}@${net}`] = e.IPAddress;
  }
  assert.ok(fs.existsSync('/proc/sys/net/bridge/bridge-nf-call-iptables'), 'br_netfilter is loaded on this machine');
  // Every server listens (TCP and UDP) before the first probe: on a loaded machine python3 can take longer to start
  // than the commands above (CI once saw the control matrix fail for the last one started).
  const listening = (c: string) => {
    const r = inCtr(c, 'cat /proc/net/tcp /proc/net/udp').stdout;
    const port = `:${PORT.toString(16).toUpperCase().padStart(4, '0')} `;
    return r.split('\n').filter((l) => l.includes(port)).length >= 2;
  };
  for (const c of ['n1', 'n2', 'n3', 'n4', 'm1']) await waitFor(() => listening(c), 15000);
});

after(() => {
  for (const p of procs) if (p.pid && p.exitCode === null && p.signalCode === null) try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
  h?.cleanup();
});

type Reach = Record<string, { tcp: boolean; udp: boolean }>;

/** From each source (its container netns, entered directly), TCP and UDP to each of its targets (`name@net`), all
 *  sources at once. */
async function probeAll(jobs: Array<[string, string[]]>, tag = 'm'): Promise<Map<string, Reach>> {
  const runOne = ([src, targets]: [string, string[]]) => new Promise<[string, Reach]>((resolve, reject) => {
    const p = spawn('nsenter', [`--net=${netns(src)}`, 'python3', path.join(dir, 'probe.py'), `${tag}-${src}`, ...targets.map((t) => `${ip[t]}:${PORT}`)], { stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(p);
    let o = '';
    let e = '';
    p.stdout.on('data', (d) => { o += d; });
    p.stderr.on('data', (d) => { e += d; });
    p.on('close', (code) => {
      if (code !== 0) return reject(new Error(`probe from ${src} failed (${code}): ${e}`));
      const res = JSON.parse(o) as Reach;
      resolve([src, Object.fromEntries(targets.map((t) => [t, res[`${ip[t]}:${PORT}`]]))]);
    });
  });
  return new Map(await Promise.all(jobs.map(runOne)));
}

async function probe(src: string, targets: string[], tag = 'm'): Promise<Reach> {
  return (await probeAll([[src, targets]], tag)).get(src)!;
}

const PAIRS: Array<[string, string]> = [];
for (const s of ['n1', 'n2', 'n3', 'n4']) for (const d of ['n1', 'n2', 'n3', 'n4']) if (s !== d) PAIRS.push([s, `${d}@pa`]);
PAIRS.push(['n4', 'm1@pb'], ['m1', 'n4@pb']);

/** Every pair of PAIRS, as "src -> dst: tcp/udp" lines of what passed; the expectation is computed from `cut`. */
async function matrix(cut: (src: string, dst: string) => boolean, what: string): Promise<void> {
  const got: string[] = [];
  const want: string[] = [];
  const bySrc = new Map<string, string[]>();
  for (const [s, d] of PAIRS) bySrc.set(s, [...(bySrc.get(s) ?? []), d]);
  const res = await probeAll([...bySrc]);
  for (const [s, ds] of bySrc) {
    const r = res.get(s)!;
    for (const d of ds) {
      got.push(`${s} -> ${d}: tcp ${r[d].tcp ? 'passes' : 'cut'}, udp ${r[d].udp ? 'passes' : 'cut'}`);
      const c = cut(s, d);
      want.push(`${s} -> ${d}: tcp ${c ? 'cut' : 'passes'}, udp ${c ? 'cut' : 'passes'}`);
    }
  }
  assert.deepEqual(got, want, what);
}

const brNetfilter = (on: boolean) => must(h.sh(`sysctl -qw net.bridge.bridge-nf-call-iptables=${on ? 1 : 0}`), 'br_netfilter switch (test host netns only)');
const group = (groups: string[][]) => (c: string) => { const i = groups.findIndex((g) => g.includes(c)); return i < 0 ? groups.length : i; };
const list = () => JSON.parse(h.ok(['partition', '--list', '--format', 'json'])) as Array<{ network: string; cut: string; until: string | null; expired: boolean; groups: string[][]; rest: string[] }>;

test('matrix: exactly the cut pairs dropped (TCP and UDP), same network and across networks, br_netfilter on and off', async () => {
  for (const on of [true, false]) {
    brNetfilter(on);
    await matrix(() => false, `no partition, br_netfilter ${on ? 'on' : 'off'}: everything passes (control)`);
  }
  // pa: {n1,n2} | {n3} | rest {n4}; pb: untouched.
  assert.equal(h.ok(['partition', 'n1,n2', 'n3']), 'network pa: n1,n2 | n3 | (rest) n4');
  const g = group([['n1', 'n2'], ['n3']]);
  const cutPa = (s: string, d: string) => d.endsWith('@pa') && g(s) !== g(d.split('@')[0]);
  for (const on of [true, false]) {
    brNetfilter(on);
    await matrix(cutPa, `partition of pa, br_netfilter ${on ? 'on' : 'off'}`);
  }
  // A partition of pb too (m1 alone, n4 the rest): n4 is now cut on both of its networks, independently.
  assert.equal(h.ok(['partition', '--network', 'pb', 'm1']), 'network pb: m1 | (rest) n4');
  assert.deepEqual(list().map((r) => `${r.network}: ${r.cut}`), ['pa: n1,n2 | n3 | (rest) n4', 'pb: m1 | (rest) n4']);
  const faults = JSON.parse(h.ok(['faults', '--format', 'json'])) as Array<Record<string, unknown>>;
  assert.deepEqual(faults.filter((f) => String(f.kind).startsWith('partition')), [
    { kind: 'partition', container: 'n1,n2 n3', network: 'pa', detail: 'cut: n1,n2 | n3 | (rest) n4', until: null, state: 'active' },
    { kind: 'partition', container: 'm1', network: 'pb', detail: 'cut: m1 | (rest) n4', until: null, state: 'active' },
  ], 'nsnet faults lists them');
  const inspected = JSON.parse(h.ok(['network', 'inspect', 'pa']))[0];
  assert.deepEqual({ ...inspected.Partition, Created: undefined }, { Groups: [['n1', 'n2'], ['n3']], Rest: ['n4'], OneWay: false, Created: undefined, Until: null }, 'network inspect shows it');
  const both = (s: string, d: string) => cutPa(s, d) || d.endsWith('@pb');
  await matrix(both, 'partitions of pa and pb, br_netfilter off');
  brNetfilter(true);
  await matrix(both, 'partitions of pa and pb, br_netfilter on');
  // Healing pb leaves pa's partition.
  assert.equal(h.ok(['heal', '--network', 'pb']), 'pb');
  const r = await probeAll([['n4', ['m1@pb', 'n1@pa']], ['m1', ['n4@pb']]]);
  assert.deepEqual([r.get('n4')!['m1@pb'], r.get('m1')!['n4@pb'], r.get('n4')!['n1@pa']], [{ tcp: true, udp: true }, { tcp: true, udp: true }, { tcp: false, udp: false }], 'pb healed, pa still cut');
  assert.equal(h.nsnet(['check']).status, 0, h.nsnet(['check']).stdout);
});

const spoofCmd = (addr: string, port: number) => `python3 -c "import socket;s=socket.create_connection(('${addr}',${port}),timeout=0.6,source_address=('10.71.0.200',0));s.sendall(b'x');print(s.recv(8).decode())"`;

test('the route through the host is cut too: n1 reaches n3\'s published port on the host address only while healed', () => {
  const hostAddr = JSON.parse(h.ok(['network', 'inspect', 'pa']))[0].IPAM.Config[0].Gateway as string;
  const tcp = (src: string) => inCtr(src, `python3 -c "import socket;s=socket.create_connection(('${hostAddr}',${PUB}),timeout=0.6);s.sendall(b'x');print(s.recv(8).decode())"`).stdout.trim();
  assert.equal(tcp('n1'), '', 'n1 (group 1) -> n3 (group 2) through the host: cut');
  assert.equal(tcp('n2'), '', 'n2 (group 1) -> n3 through the host: cut');
  // A container changing its own address does not escape (neither on the bridge nor through the host).
  must(h.sh(`ip netns exec ${h.netnsName('n1')} ip addr add 10.71.0.200/24 dev eth0`), 'n1 adds an address of its own');
  const spoof = inCtr('n1', spoofCmd(hostAddr, PUB)).stdout.trim();
  assert.equal(spoof, '', 'n1 with another source address -> n3 through the host: cut');
  const direct = inCtr('n1', spoofCmd(ip['n3@pa'], PORT)).stdout.trim();
  assert.equal(direct, '', 'n1 with another source address -> n3 directly: cut');
  h.ok(['heal']);
  assert.equal(inCtr('n1', spoofCmd(hostAddr, PUB)).stdout.trim(), 'x', 'control: healed, the other source address reaches n3 through the host');
  assert.equal(inCtr('n1', spoofCmd(ip['n3@pa'], PORT)).stdout.trim(), 'x', 'control: healed, and directly');
  must(h.sh(`ip netns exec ${h.netnsName('n1')} ip addr del 10.71.0.200/24 dev eth0`), 'n1 drops it');
  assert.equal(tcp('n1'), 'x', 'healed: n1 reaches n3 through the host');
});

test('--oneway: n1 -> n3 dropped, n3 -> n1 passes (UDP datagrams as logged by the receiver); nothing else cut', async () => {
  for (const on of [true, false]) {
    brNetfilter(on);
    assert.match(h.ok(['partition', '--oneway', 'n1', 'n3']), /^network pa: n1 -> n3( \(replaces its previous partition\))?$/);
    const tag = `ow${on ? 1 : 0}`;
    await probeAll([['n1', ['n3@pa', 'n2@pa']], ['n3', ['n1@pa', 'n4@pa']]], tag);
    const got = (c: string) => fs.readFileSync(path.join(dir, `${c}.udp.log`), 'utf8');
    assert.ok(!got('n3').includes(`${tag}-n1>${ip['n3@pa']}`), `n3 got nothing from n1 (br_netfilter ${on})`);
    assert.ok(got('n1').includes(`${tag}-n3>${ip['n1@pa']}`), `n1 got n3's datagram (br_netfilter ${on})`);
    assert.ok(got('n2').includes(`${tag}-n1>${ip['n2@pa']}`), 'n1 -> n2 untouched');
    assert.ok(got('n4').includes(`${tag}-n3>${ip['n4@pa']}`), 'n3 -> n4 untouched');
  }
  brNetfilter(true);
  assert.equal(h.ok(['heal', '--network', 'pa']), 'pa');
  assert.equal(h.ok(['heal']), '', 'heal with nothing to heal: nothing, exit 0');
});

test('an established TCP connection is stalled by the cut (no reset) and resumes after heal', async () => {
  const child = spawn('nsenter', [`--net=${netns('n1')}`, 'python3', path.join(dir, 'client.py'), ip['n3@pa'], String(PORT)], { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(child);
  let outText = '';
  child.stdout.on('data', (d) => { outText += d; });
  child.stderr.on('data', (d) => { outText += d; });
  const echoes = () => outText.split('\n').filter((l) => l === 'echo').length;
  await waitFor(() => echoes() >= 5, 5000);
  h.ok(['partition', 'n1', 'n3']);
  await new Promise((r) => setTimeout(r, 300));
  const settled = echoes(); // those that passed before the cut (the output is read while the command runs)
  await new Promise((r) => setTimeout(r, 1200));
  assert.equal(echoes(), settled, 'no echo while cut');
  assert.ok(!outText.includes('ERR') && child.exitCode === null, `the connection is stalled, not reset: ${outText.slice(-200)}`);
  const t0 = Date.now();
  h.ok(['heal']);
  await waitFor(() => echoes() > settled + 3, 8000, 20);
  assert.ok(!outText.includes('ERR'), 'the same connection carries on');
  const resumed = Date.now() - t0;
  process.stderr.write(`# established connection resumed ${resumed} ms after heal\n`);
  child.kill('SIGKILL');
});

test('--duration heals on time by its timer process; heal ends the timer of the partition it removes', async () => {
  const t0 = Date.now();
  const out = h.ok(['partition', '--duration', '2s', 'n1', 'n2']);
  assert.match(out, /^network pa: n1 \| n2 \| \(rest\) n3,n4 until \d{4}-\d\d-\d\dT/);
  const until = Date.parse(list()[0].until!);
  assert.ok(Math.abs(until - (t0 + 2000)) < 1500, 'until is 2 s from now');
  assert.equal((await probe('n1', ['n2@pa']))['n2@pa'].udp, false, 'cut at first');
  const timers = () => fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try { return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(`${h.root}\0heal\0`); } catch { return false; }
  });
  assert.equal(timers().length, 1, 'one timer process');
  // Nothing else runs nsnet meanwhile: the timer alone heals it.
  await waitFor(() => Date.now() >= until - 100, 5000, 20);
  await waitFor(() => list().length === 0, 3000, 50);
  const late = Date.now() - until;
  process.stderr.write(`# --duration 2s healed ${late} ms after its expiry\n`);
  assert.ok(late < 1500, `healed within 1.5 s of its expiry (${late} ms)`);
  assert.deepEqual((await probe('n1', ['n2@pa']))['n2@pa'], { tcp: true, udp: true });
  await waitFor(() => timers().length === 0, 3000);
  assert.equal(h.nsnet(['check']).status, 0);
  // heal ends the timer.
  h.ok(['partition', '--duration', '60s', 'n1', 'n2']);
  assert.equal(timers().length, 1);
  h.ok(['heal']);
  await waitFor(() => timers().length === 0, 2000);
  // A replaced partition's timer ends too, and an expiry passed while no timer ran is healed by the next command.
  h.ok(['partition', '--duration', '60s', 'n1', 'n2']);
  h.ok(['partition', '--duration', '1s', 'n1', 'n3']);
  await waitFor(() => timers().length === 1, 2000);
  for (const p of timers()) process.kill(-Number(p), 'SIGKILL'); // the timer (its process group) is gone, as after a crash
  await new Promise((r) => setTimeout(r, 1300));
  assert.equal(list()[0]?.expired, true, 'expired, not healed yet: listed as such');
  const chk = h.nsnet(['check']);
  assert.equal(chk.status, 1);
  assert.match(chk.stdout, /partition-expired\tnetwork pa/);
  h.ok(['network', 'create', 'pc']); // any mutating command
  assert.deepEqual(list(), []);
  h.ok(['network', 'rm', 'pc']);
  assert.equal(h.nsnet(['check']).status, 0);
});

test('check reports a partition rule or set element deleted behind nsnet\'s back; reconcile restores it', async () => {
  h.ok(['partition', 'n1,n2', 'n3']);
  const handle = (table: string, needle: string) => {
    const l = must(h.sh(`nft -a list chain ${table} nsnet forward`), 'nft list').stdout.split('\n').find((x) => x.includes(needle));
    return /# handle (\d+)/.exec(l ?? '')?.[1];
  };
  const hb = handle('bridge', 'group 1 reaches no other group');
  assert.ok(hb, 'the bridge rule is there');
  must(h.sh(`nft delete rule bridge nsnet forward handle ${hb}`), 'delete the rule');
  assert.equal((await probe('n1', ['n3@pa']))['n3@pa'].udp, false, 'still cut one way by the other rule (n3 is in group 2)');
  let chk = h.nsnet(['check']);
  assert.equal(chk.status, 1);
  assert.match(chk.stdout, /^firewall\tchain forward of table bridge nsnet has \d+ rules, \d+ expected$/m);
  h.ok(['reconcile']);
  assert.equal(h.nsnet(['check']).status, 0);
  assert.ok(handle('bridge', 'group 1 reaches no other group'), 'restored');
  // An address taken out of an inet partition set.
  const netId = JSON.parse(h.ok(['network', 'inspect', 'pa']))[0].Id as string;
  must(h.sh(`nft delete element inet nsnet part_${netId.slice(0, 12)}_1 '{ ${ip['n3@pa']} }'`), 'delete an element');
  chk = h.nsnet(['check']);
  assert.equal(chk.status, 1);
  assert.match(chk.stdout, /partition set part_[0-9a-f]{12}_1 of table inet nsnet differs/);
  h.ok(['reconcile']);
  assert.equal(h.nsnet(['check']).status, 0);
  const r = await probeAll([['n1', ['n3@pa', 'n2@pa']], ['n3', ['n1@pa']]]);
  assert.deepEqual([r.get('n1')!['n3@pa'].udp, r.get('n3')!['n1@pa'].udp, r.get('n1')!['n2@pa'].udp], [false, false, true], 'cut as before');
});

test('kill -9 at every crash point of partition and heal: reconcile makes store and kernel agree', async () => {
  h.ok(['heal']);
  const traced = (args: string[]) => [...new Set(h.nsnet(args, { env: { NSNET_TRACE_POINTS: '1' } }).stderr.split('\n').filter((l) => l.startsWith('crashpoint ')).map((l) => l.slice(11)))];
  const pPoints = traced(['partition', '--duration', '60s', 'n1', 'n3']).filter((p) => p.startsWith('partition:'));
  assert.deepEqual(pPoints, ['partition:persisted', 'partition:firewall', 'partition:timer']);
  const hPoints = traced(['heal']).filter((p) => p.startsWith('heal:'));
  assert.deepEqual(hPoints, ['heal:persisted', 'heal:firewall']);
  for (const [args, pts, cutAfter] of [[['partition', '--duration', '60s', 'n1', 'n3'], pPoints, true], [['heal'], hPoints, false]] as Array<[string[], string[], boolean]>) {
    for (const p of pts) {
      h.ok(cutAfter ? ['heal'] : ['partition', '--duration', '60s', 'n1', 'n3']);
      const r = h.nsnet(args, { env: { NSNET_CRASH_AT: p } });
      assert.equal(r.status, 128, `killed at ${p}: ${r.stderr}`);
      h.ok(['reconcile']);
      const chk = h.nsnet(['check']);
      assert.equal(chk.status, 0, `after a crash at ${p} and reconcile: ${chk.stdout}`);
      // What was recorded is what holds: the partition (it was persisted first) or its removal.
      assert.equal((await probe('n1', ['n3@pa']))['n3@pa'].udp, !cutAfter, `traffic after ${p}`);
    }
  }
  h.ok(['heal']);
});

test('bad input: one line, exit 2, nothing changed', () => {
  const before = [h.sh('nft -s list ruleset').stdout, h.ok(['partition', '--list'])];
  const cases: Array<[string[], RegExp]> = [
    [['partition', 'n1', 'nosuch'], /no such container: nosuch/],
    [['partition', 'n1,n2', 'n2'], /container n2 is in two groups/],
    [['partition', '--network', 'pb', 'n1', 'm1'], /container n1 is not on network pb/],
    [['partition', 'n1,n2,n3,n4'], /only one group on network pa/],
    [['partition', 'n4'], /share 2 networks \(pa, pb\): choose one with --network/],
    [['partition', 'n1', 'm1'], /share no network/],
    [['partition', '--oneway', 'n1', 'n2', 'n3'], /exactly two groups/],
    [['partition', '--duration', '10', 'n1', 'n3'], /invalid --duration 10/],
    [['partition', '--network', 'nosuch', 'n1', 'n3'], /network nosuch not found/],
    [['partition'], /give the groups/],
    [['heal', '--network', 'nosuch'], /network nosuch not found/],
  ];
  for (const [args, re] of cases) {
    const r = h.nsnet(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stdout, '', args.join(' '));
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `${args.join(' ')}: one line: ${r.stderr}`);
    assert.match(lines[0], /^Error: /);
    assert.match(lines[0], re);
  }
  assert.deepEqual([h.sh('nft -s list ruleset').stdout, h.ok(['partition', '--list'])], before, 'nothing changed');
});

test('a container\'s part goes with rm; a partition goes with its network', async () => {
  h.ok(['partition', 'n1,n2', 'n3']);
  // A container that joins the network later is in the rest (with n4), cut from the listed groups.
  h.ok(['run', '-d', '--name', 'n5', '--network', 'pa', '--', 'python3', path.join(dir, 'server.py'), String(PORT), path.join(dir, 'n5.udp.log')]);
  ip['n5@pa'] = JSON.parse(h.ok(['inspect', 'n5']))[0].NetworkSettings.Networks.pa.IPAddress;
  await waitFor(() => h.sh(`python3 ${path.join(dir, 'probe.py')} host ${ip['n5@pa']}:${PORT}`).stdout.includes('"udp": true'), 5000, 100);
  const j = await probeAll([['n5', ['n4@pa', 'n1@pa', 'n3@pa']], ['n1', ['n5@pa']]]);
  assert.deepEqual([j.get('n5')!['n4@pa'].udp, j.get('n5')!['n1@pa'].udp, j.get('n5')!['n3@pa'].udp, j.get('n1')!['n5@pa'].udp], [true, false, false, false], 'n5 joins the rest');
  assert.equal(list()[0].cut, 'n1,n2 | n3 | (rest) n4,n5');
  h.ok(['rm', '-f', 'n5']);
  h.ok(['partition', '--network', 'pb', 'm1']);
  h.ok(['rm', '-f', 'n2']);
  assert.deepEqual(list().map((r) => `${r.network}: ${r.cut}`), ['pa: n1 | n3 | (rest) n4', 'pb: m1 | (rest) n4']);
  assert.equal(h.nsnet(['check']).status, 0);
  // A stopped container stays in its group (it is still remembered on the network); started again, with a new
  // veth and maybe another address, it is cut as before.
  h.ok(['stop', '-t', '1', 'm1']);
  assert.deepEqual(list().map((r) => `${r.network}: ${r.cut}`), ['pa: n1 | n3 | (rest) n4', 'pb: m1 | (rest) n4']);
  assert.equal(h.nsnet(['check']).status, 0);
  h.ok(['start', 'm1']);
  ip['m1@pb'] = JSON.parse(h.ok(['inspect', 'm1']))[0].NetworkSettings.Networks.pb.IPAddress;
  // Control: its server answers the host (not a container: the partition does not apply) before n4 is tried.
  await waitFor(() => h.sh(`python3 ${path.join(dir, 'probe.py')} host ${ip['m1@pb']}:${PORT}`).stdout.includes('"udp": true'), 5000, 100);
  const r = await probeAll([['n4', ['m1@pb']]]);
  assert.deepEqual(r.get('n4')!['m1@pb'], { tcp: false, udp: false }, 'restarted m1 is still cut from n4');
  assert.equal(h.nsnet(['check']).status, 0);
  h.ok(['stop', '-t', '1', 'm1']);
  h.ok(['network', 'disconnect', 'pb', 'n4']);
  h.ok(['network', 'rm', 'pb']);
  assert.deepEqual(list().map((r) => r.network), ['pa'], 'pb\'s partition went with it');
  assert.equal(h.nsnet(['check']).status, 0);
  // The only listed container of a partition removed: the partition goes.
  h.ok(['rm', '-f', 'n1', 'n3']);
  assert.deepEqual(list(), []);
  h.ok(['rm', '-f', 'm1', 'n4']);
  h.ok(['network', 'rm', 'pa']);
  assert.equal(h.nsnet(['check']).status, 0);
  assert.equal(h.sh('nft list tables').stdout.trim(), '', 'nsnet\'s tables are gone with its networks');
});
