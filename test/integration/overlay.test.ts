// Overlay networks across hosts (issue #17), all on this machine: each "host" a throwaway netns with its own nsnet
// state directory and an underlay interface on a shared underlay bridge (test/helpers/etcd.ts, 203.0.113.0/24),
// etcd a 3-member cluster in its own namespaces on the same underlay. Everything is removed afterwards, also on
// failure: the hosts (their agents, containers, namespaces), the etcd members and the underlay.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { EtcdCluster } from '../helpers/etcd.js';
import { NSNET, TestHost, waitFor } from '../helpers/host.js';

const PORT = 7000;
let etcd: EtcdCluster;
const hosts: TestHost[] = [];
const under = (i: number) => `203.0.113.${21 + i}`;
let store = '';

/** A TCP server that answers "ok" to every connection. */
const SERVER = `import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', ${PORT})); s.listen(64)
while True:
    c, _ = s.accept(); c.sendall(b'ok'); c.close()
`;
/** From one container: for each target (name or address), "T ping:ok|fail tcp:ok|fail". */
const PROBE = `import socket, subprocess, sys
for t in sys.argv[1:]:
    p = subprocess.run(['ping', '-c1', '-W2', t], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
    try:
        s = socket.create_connection((t, ${PORT}), timeout=2); ok = s.recv(2) == b'ok'; s.close()
    except OSError:
        ok = False
    print(t, 'ping:' + ('ok' if p else 'fail'), 'tcp:' + ('ok' if ok else 'fail'))
`;

function script(h: TestHost, name: string, body: string): string {
  const f = path.join(h.root, name);
  if (!fs.existsSync(f)) fs.writeFileSync(f, body);
  return f;
}

function run(h: TestHost, name: string, net: string): string {
  return h.ok(['run', '-d', '--name', name, '--network', net, '--', 'python3', script(h, 'server.py', SERVER)]);
}

function ipOf(h: TestHost, c: string, net: string): string {
  return JSON.parse(h.ok(['inspect', c]))[0].NetworkSettings.Networks[net].IPAddress as string;
}

function probe(h: TestHost, c: string, targets: string[]): Map<string, string> {
  const r = h.nsnet(['exec', c, '--', 'python3', script(h, 'probe.py', PROBE), ...targets], { timeout: 60000 });
  assert.equal(r.status, 0, r.stderr);
  return new Map(r.stdout.trim().split('\n').map((l) => { const [t, ...rest] = l.split(' '); return [t, rest.join(' ')]; }));
}

before(async () => {
  etcd = await EtcdCluster.start(3, 'ov');
  store = etcd.members.map((m) => `etcd://${m.ip}:2379`).join(',');
  for (let i = 0; i < 3; i++) {
    const h = TestHost.create(`ov${i + 1}`);
    hosts.push(h);
    etcd.attach(h.ns, under(i));
  }
});

after(async () => {
  for (const h of hosts) h.cleanup();
  await etcd?.cleanup();
});

test('3 hosts, 2 overlay networks, 12 containers: mesh by name and address, isolation, MTU; check is clean', async (t) => {
  for (let i = 0; i < 3; i++) {
    const r = hosts[i].nsnet(['cluster', 'join', '--store', store, '--advertise', under(i), '--name', `host${i + 1}`, '--ttl', '3']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), `host${i + 1}`);
  }
  const ls = JSON.parse(hosts[0].ok(['cluster', 'ls', '--format', 'json'])) as Array<{ Host: string; Address: string }>;
  assert.deepEqual(ls.map((x) => `${x.Host} ${x.Address}`), ['host1 203.0.113.21', 'host2 203.0.113.22', 'host3 203.0.113.23']);
  hosts[0].ok(['network', 'create', '-d', 'overlay', '--subnet', '10.90.1.0/24', 'web']);
  hosts[1].ok(['network', 'create', '--driver', 'overlay', 'db']);
  // Visible on every host, as Docker shows an overlay network (driver overlay, scope swarm), with its VNI.
  for (const h of hosts) {
    await waitFor(() => { const l = h.ok(['network', 'ls', '--format', '{{.Name}} {{.Driver}} {{.Scope}}']); return l.includes('web overlay swarm') && l.includes('db overlay swarm'); }, 15000, 200);
  }
  const wi = JSON.parse(hosts[2].ok(['network', 'inspect', 'web']))[0];
  assert.equal(wi.IPAM.Config[0].Subnet, '10.90.1.0/24');
  assert.match(wi.Options['com.docker.network.driver.overlay.vxlanid_list'], /^\d+$/);
  assert.equal(JSON.parse(hosts[0].ok(['network', 'inspect', 'web']))[0].Id, wi.Id, 'one network id on every host');
  const names: Record<string, string[]> = { web: [], db: [] };
  for (const net of ['web', 'db']) {
    for (let i = 0; i < 3; i++) {
      for (const k of [1, 2]) {
        const name = `${net}${i + 1}${k}`;
        run(hosts[i], name, net);
        names[net].push(name);
      }
    }
  }
  const where = (c: string) => hosts[Number(c.replace(/^\D+/, '')[0]) - 1];
  const addr: Record<string, string> = {};
  for (const net of ['web', 'db']) for (const c of names[net]) addr[c] = ipOf(where(c), c, net);
  assert.equal(new Set(Object.values(addr)).size, 12, 'no address twice');
  for (const c of names.web) assert.match(addr[c], /^10\.90\.1\./);
  // Every container reaches every other of its network by name and by address, TCP and ping; names of other hosts'
  // containers resolve (each host's resolver has the cluster-wide view).
  for (const net of ['web', 'db']) {
    for (const c of names[net]) {
      const peers = names[net].filter((x) => x !== c);
      const targets = [...peers, ...peers.map((p) => addr[p])];
      const got = await waitFor(() => { const m = probe(where(c), c, targets); return [...m.values()].every((v) => v === 'ping:ok tcp:ok') ? m : null; }, 20000, 500)
        .catch(() => probe(where(c), c, targets));
      assert.deepEqual([...got!.entries()].filter(([, v]) => v !== 'ping:ok tcp:ok'), [], `${c} reaches every peer of ${net}`);
    }
  }
  // Isolation: a web container reaches no db container (by address; their names do not resolve on web).
  const iso = probe(where('web11'), 'web11', names.db.map((c) => addr[c]));
  assert.deepEqual([...iso.values()].filter((v) => v !== 'ping:fail tcp:fail'), [], 'web -> db: nothing passes');
  // MTU: the interface has the overlay's 1450, and 1400-byte packets with DF pass across hosts.
  assert.match(hosts[0].sh(`ip -n ${hosts[0].netnsName('web11')} link show eth0`).stdout, /mtu 1450/);
  const df = hosts[0].exec('web11', `ping -c1 -W2 -M do -s 1372 ${addr.web31}`);
  assert.equal(df.status, 0, df.stdout + df.stderr);
  for (const h of hosts) {
    const chk = h.nsnet(['check']);
    assert.equal(chk.status, 0, chk.stdout + chk.stderr);
  }
  // Isolation from a bridge network of the same host: neither way.
  hosts[0].ok(['network', 'create', '--subnet', '10.77.0.0/24', 'local']);
  hosts[0].ok(['run', '-d', '--name', 'loc', '--network', 'local', '--', 'python3', script(hosts[0], 'server.py', SERVER)]);
  const locIp = ipOf(hosts[0], 'loc', 'local');
  assert.deepEqual([...probe(hosts[0], 'web11', [locIp]).values()], ['ping:fail tcp:fail'], 'overlay -> bridge network: nothing passes');
  assert.deepEqual([...probe(hosts[0], 'loc', [addr.web12, addr.web21]).values()], ['ping:fail tcp:fail', 'ping:fail tcp:fail'], 'bridge network -> overlay: nothing passes');
  // A published port of an overlay container is its host's, reached from that host's upstream as on a bridge network.
  const up = hosts[1].addUpstream();
  hosts[1].ok(['run', '-d', '--name', 'pub', '--network', 'web', '-p', `18090:${PORT}`, '--', 'python3', script(hosts[1], 'server.py', SERVER)]);
  const fetch = `python3 -c "import socket;s=socket.create_connection(('${up.hostIp}',18090),timeout=3);print(s.recv(2).decode())"`;
  assert.equal((await waitFor(() => { const r = hosts[1].shIn(up.ns, fetch); return r.stdout.trim() === 'ok' ? r : null; }, 10000, 200))!.stdout.trim(), 'ok');
  // A forwarding entry removed behind nsnet's back: check says so, reconcile puts it back, traffic flows again.
  const vx = `nsvx-${(wi.Id as string).slice(0, 10)}`;
  const mac21 = JSON.parse(hosts[1].ok(['inspect', 'web21']))[0].NetworkSettings.Networks.web.MacAddress as string;
  hosts[0].sh(`bridge fdb del ${mac21} dev ${vx} dst ${under(1)} self`);
  hosts[0].sh(`ip neigh flush dev ${vx}`);
  // The agent's own pass (every 2 s) also programs the entries from the mirror: it may have put them back first.
  const before = hosts[0].nsnet(['check']);
  if (before.status !== 0) {
    assert.match(before.stdout, /overlay-peers.*web: .*forwarding entr.* missing/);
    const rc = hosts[0].ok(['reconcile']);
    assert.match(rc, /programmed \d+ forwarding\/neighbour entr|^$/);
  } else {
    t.diagnostic('the cluster agent restored the entries before check ran');
  }
  assert.equal(hosts[0].nsnet(['check']).status, 0);
  assert.match(hosts[0].sh(`bridge fdb show dev ${vx}`).stdout, new RegExp(`${mac21} dst ${under(1).replace(/\./g, '\\.')} self permanent`), 'the entry is back');
  assert.deepEqual([...probe(hosts[0], 'web11', ['web21']).values()], ['ping:ok tcp:ok']);
  hosts[0].ok(['rm', '-f', 'loc']);
  hosts[0].ok(['network', 'rm', 'local']);
  hosts[1].ok(['rm', '-f', 'pub']);
});

/** Pings each target once from container `c`; returns the targets that did not answer. */
function unreachable(h: TestHost, c: string, targets: string[]): string[] {
  const r = h.exec(c, `for t in ${targets.join(' ')}; do ping -c1 -W2 $t >/dev/null 2>&1 || echo $t; done`, { timeout: 120000 });
  return r.stdout.trim().split('\n').filter(Boolean);
}

function runAsync(h: TestHost, args: string[]): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn('nsenter', [`--net=/run/netns/${h.ns}`, NSNET, ...args], { env: h.env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => { err += d; });
    p.on('close', (status) => resolve({ status, stderr: err }));
  });
}

test('40 concurrent runs across the 3 hosts: no address twice, every one reachable from another host', async () => {
  const jobs = Array.from({ length: 40 }, (_, k) => ({ h: hosts[k % 3], name: `burst${k}` }));
  const res = await Promise.all(jobs.map((j) => runAsync(j.h, ['run', '-d', '--name', j.name, '--network', 'web', '--', 'sleep', '300'])));
  assert.deepEqual(res.map((r, k) => (r.status === 0 ? '' : `${jobs[k].name}: ${r.stderr.trim()}`)).filter(Boolean), []);
  const ips = jobs.map((j) => ipOf(j.h, j.name, 'web'));
  assert.equal(new Set(ips).size, 40, 'no address twice');
  const all = hosts.flatMap((h) => (JSON.parse(h.ok(['network', 'inspect', 'web']))[0].Containers ? Object.values(JSON.parse(h.ok(['network', 'inspect', 'web']))[0].Containers as Record<string, { IPv4Address: string }>).map((x) => x.IPv4Address.split('/')[0]) : []));
  assert.equal(new Set(all).size, all.length, 'no address twice across the hosts\' own views');
  // From host 1, every burst container of hosts 2 and 3 answers (their forwarding entries are programmed).
  const far = jobs.filter((j) => j.h !== hosts[0]).map((j, k) => ips[jobs.indexOf(j)] ?? String(k));
  const missing = await waitFor(() => { const m = unreachable(hosts[0], 'web11', far); return m.length ? null : m; }, 30000, 1000).catch(() => unreachable(hosts[0], 'web11', far));
  assert.deepEqual(missing, [], 'every address reached across hosts');
  await Promise.all(jobs.map((j) => runAsync(j.h, ['rm', '-f', j.name])));
});

test('a host killed: after the TTL the others drop its endpoints and entries, its addresses are reused; back, it reconciles', async () => {
  const [h1, , h3] = hosts;
  const a31 = ipOf(h3, 'web31', 'web');
  const a32 = ipOf(h3, 'web32', 'web');
  const vx = (h: TestHost) => h.sh('ip -o link show type vxlan').stdout.split('\n').map((l) => /^\d+: (nsvx-[0-9a-f]+)/.exec(l)?.[1]).filter(Boolean) as string[];
  const fdbTo = (h: TestHost, dst: string) => vx(h).map((d) => h.sh(`bridge fdb show dev ${d}`).stdout).join('\n').split('\n').filter((l) => l.includes(`dst ${dst}`)).length;
  assert.ok(fdbTo(h1, under(2)) > 0, 'host 1 has forwarding entries to host 3');
  // Dead: its agent killed (no more heartbeats), its underlay link down.
  const pid = Number(fs.readFileSync(path.join(h3.root, 'cluster', 'agent.pid'), 'utf8').split(' ')[0]);
  process.kill(pid, 'SIGKILL');
  h3.sh('ip link set ul0 down');
  await waitFor(() => fdbTo(h1, under(2)) === 0, 20000, 250);
  assert.deepEqual(unreachable(h1, 'web11', ['web31']), ['web31'], 'its names are gone from the others\' resolvers');
  // Its addresses are free again: host 1 gets one of them on request.
  h1.ok(['run', '-d', '--name', 'reuse', '--network', 'web', '--ip', a31, '--', 'sleep', '300']);
  assert.equal(ipOf(h1, 'reuse', 'web'), a31);
  // Back: reconcile starts its agent, which joins again and re-claims what is still its own.
  h3.sh('ip link set ul0 up');
  const rc = h3.nsnet(['reconcile']);
  assert.equal(rc.status, 0, rc.stderr);
  assert.match(rc.stdout, /started the cluster agent/);
  await waitFor(() => unreachable(h1, 'web11', ['web32', a32]).length === 0, 30000, 500);
  // web31's address is host 1's now: host 3 says so, and nothing answers for it twice.
  const chk = await waitFor(() => { const r = h3.nsnet(['check']); return /web31 on web: not registered/.test(r.stdout) ? r : null; }, 20000, 500);
  assert.equal(chk!.status, 1);
  assert.deepEqual(unreachable(h1, 'web11', [a31]), [], 'the reused address answers (from host 1\'s own container)');
  h1.ok(['rm', '-f', 'reuse']);
});

test('etcd: one member down changes nothing; all down, traffic goes on and a new run fails in one line; back, runs work', async () => {
  const [h1, h2] = hosts;
  await etcd.stopMember(0);
  h1.ok(['run', '-d', '--name', 'm1', '--network', 'web', '--', 'sleep', '300']);
  await waitFor(() => unreachable(h2, 'web21', ['m1']).length === 0, 20000, 500).catch((e) => {
    for (const h of [h1, h2]) process.stderr.write(`--- ${h.ns} agent log:\n${fs.readFileSync(path.join(h.root, 'cluster', 'agent.log'), 'utf8').split('\n').slice(-15).join('\n')}\n`);
    process.stderr.write(`m1 on h1: ${h1.nsnet(['inspect', 'm1']).stdout.slice(0, 300)}\n`);
    process.stderr.write(`h2 remote: ${h2.sh(`python3 -c "import sqlite3;print(sqlite3.connect('${h2.root}/nsnet.db').execute('select name,ip,host,underlay,mac from remote_endpoints').fetchall())"`).stdout}\n`);
    process.stderr.write(`h2 resolve: ${JSON.stringify(h2.exec('web21', 'getent hosts m1; ping -c1 -W1 m1'))}\n`);
    process.stderr.write(`etcdctl: ${JSON.stringify(etcd.ctl(1, 'get --prefix /nsnet/v1/ --keys-only'))}\n`);
    throw e;
  });
  await etcd.stopAll();
  assert.deepEqual(unreachable(h1, 'web11', ['web21', 'web22', 'm1']), [], 'running traffic continues without etcd');
  const t0 = Date.now();
  const r = h2.nsnet(['run', '-d', '--name', 'nope', '--network', 'web', '--', 'sleep', '300'], { timeout: 60000 });
  assert.notEqual(r.status, 0);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /^Error: .*(etcd .*unreachable|did not answer)/);
  assert.ok(Date.now() - t0 < 20000, 'within the bound');
  assert.doesNotMatch(h2.ok(['ps', '-a', '--format', '{{.Names}}']), /nope/, 'no half-made container');
  await etcd.startAll();
  await waitFor(() => h2.nsnet(['run', '-d', '--name', 'again', '--network', 'web', '--', 'sleep', '300']).status === 0, 40000, 1000);
  await waitFor(() => unreachable(h1, 'web11', ['again']).length === 0, 20000, 500);
});

test('an overlay network removed on one host goes from every host; refused while any host has a container on it', async () => {
  const [h1, h2, h3] = hosts;
  h1.ok(['network', 'create', '-d', 'overlay', 'tmp']);
  for (const h of hosts) await waitFor(() => h.ok(['network', 'ls', '--format', '{{.Name}}']).split('\n').includes('tmp'), 15000, 200);
  h3.ok(['run', '-d', '--name', 'holder', '--network', 'tmp', '--', 'sleep', '300']);
  const busy = h2.nsnet(['network', 'rm', 'tmp']);
  assert.equal(busy.status, 1);
  assert.match(busy.stderr, /^Error: error while removing network: network tmp has active endpoints( \(on host3\))?$/m);
  h3.ok(['rm', '-f', 'holder']);
  const dump = (e: unknown) => {
    process.stderr.write(`rm: ${JSON.stringify(h2.nsnet(['network', 'rm', 'tmp']))}\n`);
    for (const h of hosts) process.stderr.write(`--- ${h.ns}: ${h.nsnet(['network', 'ls', '--format', '{{.Name}}']).stdout.replace(/\n/g, ' ')}\n${fs.readFileSync(path.join(h.root, 'cluster', 'agent.log'), 'utf8').split('\n').slice(-6).join('\n')}\n`);
    throw e;
  };
  await waitFor(() => h2.nsnet(['network', 'rm', 'tmp']).status === 0, 15000, 300).catch(dump);
  for (const h of [h1, h3]) await waitFor(() => !h.ok(['network', 'ls', '--format', '{{.Name}}']).split('\n').includes('tmp'), 15000, 200).catch(dump);
  // Clean everywhere, but for host 3's web31, whose address host 1 took while host 3 was away (the test before).
  for (const h of hosts) {
    const diffs = (r: { stdout: string }) => r.stdout.split('\n').filter((l) => l && !/^cluster-endpoint\tweb31 on web: not registered/.test(l));
    const chk = await waitFor(() => { const r = h.nsnet(['check']); return diffs(r).length === 0 ? r : null; }, 10000, 500).catch(() => h.nsnet(['check']));
    assert.deepEqual(diffs(chk!), [], fs.readFileSync(path.join(h.root, 'cluster', 'agent.log'), 'utf8').split('\n').slice(-8).join('\n'));
  }
});
