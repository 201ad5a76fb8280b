// The store rebuilt from the kernel (issue #10): nsnet.db lost with containers running; `reconcile --rebuild`
// gives back the networks, containers, endpoints, ports and names from the marks nsnet wrote on its kernel objects
// and the copies it kept, without touching a running process, and what it cannot place is left alone.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { REPO, TestHost, waitFor, type Result } from '../helpers/host.js';

const SERV = path.join(REPO, 'test/fixtures/tinyserv.py');
const tcp = (ip: string, port: number) =>
  `python3 -c "import socket;s=socket.create_connection(('${ip}',${port}),timeout=1.5);print(s.recv(64).decode().strip())" 2>/dev/null`;
const out = (r: Result) => r.stdout.trim();

function loseStore(h: TestHost): void {
  const file = path.join(h.root, 'nsnet.db');
  fs.truncateSync(file, 0);
  fs.rmSync(`${file}-wal`, { force: true });
  fs.rmSync(`${file}-shm`, { force: true });
}

/** What a user sees of the store: ps, network ls and inspect, minus the fields a rebuild may not know exactly. */
function snapshot(h: TestHost, names: string[]): unknown {
  const ps = h.ok(['ps', '-a', '--format', '{{.ID}} {{.Names}} {{.Command}} {{.Ports}} {{.State}}']).trim().split('\n').sort();
  const nets = h.ok(['network', 'ls', '--format', '{{.ID}} {{.Name}} {{.Driver}}']).trim().split('\n').sort();
  const inspect = names.map((n) => {
    const c = JSON.parse(h.ok(['inspect', n]))[0];
    return {
      Id: c.Id, Name: c.Name, Path: c.Path, Args: c.Args, Created: c.Created, Status: c.State.Status, Pid: c.State.Pid,
      ExitCode: c.State.ExitCode, HostConfig: c.HostConfig, Networks: c.NetworkSettings.Networks,
    };
  });
  return { ps, nets, inspect };
}

test('a lost store is rebuilt from the kernel: networks, containers, addresses, aliases, ports, processes; then everything works as before', async (t) => {
  const h = TestHost.create('rebuild');
  t.after(() => h.cleanup());
  const up = h.addUpstream();
  h.ok(['network', 'create', '--subnet', '10.71.0.0/24', '--ip-range', '10.71.0.128/25', '--label', 'team=db', '-o', 'com.docker.network.bridge.enable_icc=false', 'n1']);
  h.ok(['network', 'create', '--internal', '--subnet', '10.72.0.0/24', 'n2']);
  h.ok(['run', '-d', '--name', 'web', '--network', 'n1', '--alias', 'www', '--alias', 'site', '-p', '8088:8080', '-e', 'K=v',
    '--', 'python3', SERV, 'whoami', '8080']);
  h.ok(['run', '-d', '--name', 'db', '--network', 'n1', '--ip', '10.71.0.50', '--', 'sleep', '300']);
  h.ok(['network', 'connect', '--alias', 'store', 'n2', 'db']);
  h.ok(['run', '-d', '--name', 'dflt', '--', 'sleep', '300']);
  h.ok(['create', '--name', 'idle', '--network', 'none', '--', 'true']);
  assert.equal(h.nsnet(['run', '--name', 'done', '--network', 'n2', '--', 'sh', '-c', 'exit 3']).status, 3);
  const names = ['web', 'db', 'dflt', 'idle', 'done'];
  await waitFor(() => out(h.shIn(up.ns, tcp(up.hostIp, 8088))), 8000, 100);
  const before = snapshot(h, names);
  const netInspect = (n: string) => JSON.parse(h.ok(['network', 'inspect', n]))[0];
  const n1Before = netInspect('n1');
  const pids = (before as { inspect: Array<{ Pid: number }> }).inspect.map((c) => c.Pid).filter((p) => p > 0);
  assert.equal(pids.length, 3);

  // An object marked the older way (owner only, as before marks described objects): reconcile describes it.
  const webId = JSON.parse(h.ok(['inspect', 'web']))[0].Id as string;
  const line = h.sh('ip -o link show').stdout.split('\n').find((l) => l.includes(` ep ${webId} `))!;
  const [, ifname, owner] = /^\d+: ([^@:]+)\S* .* alias (nsnet\/[0-9a-f]{6}) ep /.exec(line)!;
  h.sh(`ip link set ${ifname} alias ${owner}`);
  h.sh(`ip -n ${h.netnsName('db')} link set lo alias ${owner}`);
  const rc = h.ok(['reconcile']);
  assert.match(rc, /^described 2 object\(s\) in their marks/m);
  assert.match(h.sh(`ip -o link show ${ifname}`).stdout, new RegExp(`alias ${owner} ep ${webId} eth0 - www,site`));

  loseStore(h);
  const ps = h.nsnet(['ps', '-a']);
  assert.match(ps.stderr, /WARNING: the store .* was empty .*nsnet reconcile --rebuild/);
  assert.equal(out(ps).split('\n').length, 1, 'nothing known');

  const r = h.nsnet(['reconcile', '--rebuild']);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^rebuilt 3 network\(s\): bridge, n1, n2$/m);
  assert.match(r.stdout, /^rebuilt 5 container\(s\): db, dflt, done, idle, web with 4 endpoint\(s\)$/m);
  assert.doesNotMatch(r.stdout, /not rebuilt|partly/, r.stdout);
  assert.equal(h.nsnet(['ps']).stderr, '', 'no more warning');

  // The same as before for a user: ids, names, commands, ports, states, pids, addresses, MACs, aliases.
  const after = snapshot(h, names) as { inspect: Array<{ Status: string }> };
  assert.deepEqual(after, before);
  const n1 = netInspect('n1');
  assert.deepEqual({ ...n1, Containers: undefined }, { ...n1Before, Containers: undefined }, 'labels, options, IP range kept');
  assert.deepEqual(Object.keys(n1.Containers).sort(), Object.keys(n1Before.Containers).sort());
  const chk = h.nsnet(['check']);
  assert.equal(chk.status, 0, chk.stdout + chk.stderr);
  for (const p of pids) assert.ok(fs.existsSync(`/proc/${p}`), `process ${p} untouched`);

  // Everything works: the published port from outside, names, and a new container gets a free address.
  assert.equal(out(h.shIn(up.ns, tcp(up.hostIp, 8088))), up.ip);
  assert.match(out(h.exec('db', 'getent hosts www')), /^10\.71\.0\.\d+\s+www$/);
  h.ok(['run', '-d', '--name', 'new', '--network', 'n1', '--', 'sleep', '300']);
  const ips = ['web', 'db', 'new'].map((n) => JSON.parse(h.ok(['inspect', n]))[0].NetworkSettings.Networks.n1.IPAddress);
  assert.equal(new Set(ips).size, 3, `no address handed out twice: ${ips}`);
  h.ok(['stop', '-t', '1', 'web']);
  h.ok(['start', 'web']);
  await waitFor(() => out(h.shIn(up.ns, tcp(up.hostIp, 8088))), 8000, 100);
  h.ok(['rm', '-f', 'web', 'db', 'dflt', 'idle', 'done', 'new']);
  h.ok(['network', 'rm', 'n1', 'n2']);
  assert.equal(h.nsnet(['check']).status, 0);
  assert.deepEqual(h.containerNetns(), []);
});

test('rebuild: what it cannot place is left alone and keeps reconcile from removing it; refused on an intact store', async (t) => {
  const h = TestHost.create('rebuild2');
  t.after(() => h.cleanup());
  const r0 = h.nsnet(['reconcile', '--rebuild']);
  assert.equal(r0.status, 1);
  assert.match(r0.stderr, /^Error: the store .* was not lost: nothing to rebuild/);
  assert.equal(h.nsnet(['reconcile', '--rebuild', '--force']).status, 2);

  h.ok(['network', 'create', '--subnet', '10.73.0.0/24', 'n1']);
  h.ok(['run', '-d', '--name', 'a', '--network', 'n1', '--', 'sleep', '300']);
  h.ok(['run', '-d', '--name', 'b', '--network', 'n1', '--', 'sleep', '300']);
  const bPid = JSON.parse(h.ok(['inspect', 'b']))[0].State.Pid as number;
  const aDir = path.join(h.root, 'containers', JSON.parse(h.ok(['inspect', 'a']))[0].Id);
  const bNetns = h.netnsName('b');
  loseStore(h);
  // a's config.json is gone too: it comes back without its command. b's namespace lost its mark (as if an older
  // nsnet had made it): not rebuilt, and its veth is not either.
  fs.rmSync(path.join(aDir, 'config.json'));
  h.sh(`ip -n ${bNetns} link set lo alias nsnet/${'0'.repeat(6)}`);
  const r = h.nsnet(['reconcile', '--rebuild']);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^rebuilt 1 container\(s\): a with 1 endpoint\(s\)$/m);
  assert.match(r.stdout, /^partly: container a: command, published ports and --dns not recovered/m);
  assert.match(r.stdout, /^not rebuilt: interface nsv\w+ \(container \w{12} not found/m);
  // Still marked lost for b's veth: plain reconcile refuses, and nothing of b was removed.
  assert.equal(h.nsnet(['reconcile']).status, 1);
  assert.ok(fs.existsSync(`/proc/${bPid}`), 'b\'s process untouched');
  assert.ok(fs.existsSync(`/run/netns/${bNetns}`));
  h.ok(['rm', '-f', 'a']);
  const f = h.nsnet(['reconcile', '--force']);
  assert.equal(f.status, 0, f.stderr);
  assert.equal(h.nsnet(['check']).status, 0);
});
