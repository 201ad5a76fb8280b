// The third demo (issue #17): three simulated hosts on one machine — each a throwaway netns with its own nsnet state
// directory and an underlay interface on a shared underlay bridge — and a 3-member etcd cluster in namespaces of its
// own on the same underlay. The hosts join the cluster, an overlay network is made on one of them and appears on
// all, containers on different hosts reach each other by name, a host leaves. Every nsnet command is printed with
// its output and the host it ran on; everything is removed at the end, also after a failure.
import { EtcdCluster } from '../test/helpers/etcd.js';
import { TestHost, waitFor, type Result } from '../test/helpers/host.js';

const hosts: TestHost[] = [];
let etcd: EtcdCluster | null = null;
let failed = false;
const under = (i: number) => `203.0.113.${21 + i}`;

function say(s: string): void {
  process.stdout.write(`\n# ${s}\n`);
}
function nsnet(i: number, ...args: string[]): string {
  const r: Result = hosts[i].nsnet(args, { timeout: 120000 });
  process.stdout.write(`\nhost${i + 1}$ nsnet ${args.map((a) => (/[\s"]/.test(a) ? JSON.stringify(a) : a)).join(' ')}\n${r.stdout}${r.stderr}`);
  if (r.status !== 0) throw new Error(`nsnet ${args.join(' ')} exited ${r.status}`);
  return r.stdout.trim();
}

try {
  say('etcd: 3 members on the underlay 203.0.113.0/24 (203.0.113.11-13), each in its own netns');
  etcd = await EtcdCluster.start(3, 'demo');
  const store = etcd.members.map((m) => `etcd://${m.ip}:2379`).join(',');
  for (let i = 0; i < 3; i++) {
    hosts.push(TestHost.create(`demo${i + 1}`));
    etcd.attach(hosts[i].ns, under(i));
  }
  say('three hosts (host netns, state directory, underlay address 203.0.113.21-23) join the cluster');
  for (let i = 0; i < 3; i++) nsnet(i, 'cluster', 'join', '--store', store, '--advertise', under(i), '--name', `host${i + 1}`);
  nsnet(0, 'cluster', 'ls');
  say('an overlay network made on host1: a VXLAN segment (VNI from etcd) with one subnet across the hosts');
  nsnet(0, 'network', 'create', '-d', 'overlay', '--subnet', '10.90.7.0/24', 'web');
  await waitFor(() => hosts[2].ok(['network', 'ls', '--format', '{{.Name}}']).includes('web'), 15000, 200);
  nsnet(2, 'network', 'ls', '--filter', 'driver=overlay');
  say('api on host1, db on host2: addresses from the cluster, never twice');
  nsnet(0, 'run', '-d', '--name', 'api', '--network', 'web', '--', 'sleep', 'infinity');
  nsnet(1, 'run', '-d', '--name', 'db', '--network', 'web', '--', 'python3', '-m', 'http.server', '--bind', '0.0.0.0', '5432');
  say('api (host1) reaches db (host2) by name: host1\'s resolver knows db from the cluster, the tunnel carries the packets');
  await waitFor(() => hosts[0].exec('api', 'ping -c1 -W1 db').status === 0, 20000, 300);
  nsnet(0, 'exec', 'api', '--', 'ping', '-c2', 'db');
  nsnet(0, 'exec', 'api', '--', 'python3', '-c', "import urllib.request; print(urllib.request.urlopen('http://db:5432/', timeout=5).status)");
  say('on host1, the VXLAN device\'s forwarding entries (db\'s MAC -> host2) come from etcd, not from learning');
  process.stdout.write(hosts[0].sh('bridge fdb show | grep dst').stdout);
  nsnet(0, 'check');
  say('host3 leaves the cluster; api and db are removed');
  nsnet(2, 'cluster', 'leave');
  nsnet(0, 'rm', '-f', 'api');
  nsnet(1, 'rm', '-f', 'db');
  nsnet(0, 'cluster', 'ls');
} catch (e) {
  failed = true;
  process.stderr.write(`\ndemo failed: ${(e as Error).message}\n`);
} finally {
  for (const h of hosts) h.cleanup();
  await etcd?.cleanup();
  say(failed ? 'cleaned up after the failure' : 'done: every namespace, process and file of the demo removed');
}
process.exit(failed ? 1 : 0);
