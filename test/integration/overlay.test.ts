// Overlay networks across hosts (issue #17), all on this machine: each "host" a throwaway netns with its own nsnet
// state directory and an underlay interface on a shared underlay bridge (test/helpers/etcd.ts, 203.0.113.0/24),
// etcd a 3-member cluster in its own namespaces on the same underlay. Everything is removed afterwards, also on
// failure: the hosts (their agents, containers, namespaces), the etcd members and the underlay.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { EtcdCluster } from '../helpers/etcd.js';
import { TestHost, waitFor } from '../helpers/host.js';

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

test('3 hosts, 2 overlay networks, 12 containers: mesh by name and address, isolation, MTU; check is clean', async () => {
  for (let i = 0; i < 3; i++) {
    const r = hosts[i].nsnet(['cluster', 'join', '--store', store, '--advertise', under(i), '--name', `host${i + 1}`, '--ttl', '3']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), `host${i + 1}`);
  }
  const ls = JSON.parse(hosts[0].ok(['cluster', 'ls', '--format', 'json'])) as Array<{ Host: string; Address: string }>;
  assert.deepEqual(ls.map((x) => `${x.Host} ${x.Address}`), ['host1 203.0.113.21', 'host2 203.0.113.22', 'host3 203.0.113.23']);
  hosts[0].ok(['network', 'create', '-d', 'overlay', '--subnet', '10.90.1.0/24', 'web']);
  hosts[1].ok(['network', 'create', '--driver', 'overlay', 'db']);
  // Visible on every host.
  for (const h of hosts) {
    await waitFor(() => { const l = h.ok(['network', 'ls', '--format', '{{.Name}} {{.Driver}}']); return l.includes('web overlay') && l.includes('db overlay'); }, 15000, 200);
  }
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
});
