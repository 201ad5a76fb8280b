// The rendered nftables scripts against the real kernel, inside throwaway namespaces this test creates (fwt-*):
//  1. scripts load with nft 1.0.6; a second full render replaces nsnet's tables atomically; a failed script
//     changes nothing; deltas apply (and are tolerant where documented); another owner's tables survive;
//     every committed golden file loads.
//  2. real traffic: a "host" netns with three bridges (normal, internal, icc=false), five "container" netns on
//     veths, an "upstream" netns on another veth. First without nsnet's rules (controls: each check below can
//     fail), then with them, with br_netfilter off and on (this kernel has it built in and on by default).
// Nothing here touches the real host: every `nft`, `sysctl` and address lives in a namespace created below.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { renderDeleteAll, renderPortDelta, renderRuleset } from '../../src/firewall/ruleset.js';
import type { FirewallState } from '../../src/types.js';

interface Res { status: number; stdout: string; stderr: string }

function run(cmd: string, args: string[], timeout = 30000): Res {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout });
  return { status: r.status ?? 1, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
}

function must(r: Res, what: string): Res {
  if (r.status !== 0) throw new Error(`${what} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** Namespaces and processes created by one test; `cleanup()` removes all of them (and only them). */
class Lab {
  readonly prefix = `fwt-${crypto.randomBytes(3).toString('hex')}`;
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-fwt-'));
  private readonly netns: string[] = [];
  private readonly procs: ChildProcess[] = [];
  private seq = 0;

  /** Creates `<prefix>-<suffix>` with loopback up. */
  ns(suffix: string): string {
    const name = `${this.prefix}-${suffix}`;
    must(run('ip', ['netns', 'add', name]), `ip netns add ${name}`);
    this.netns.push(name);
    must(run('ip', ['-n', name, 'link', 'set', 'lo', 'up']), 'lo up');
    return name;
  }

  ip(ns: string, args: string): void {
    must(run('ip', ['-n', ns, ...args.split(' ')]), `ip -n ${ns} ${args}`);
  }

  sysctl(ns: string, kv: string): void {
    must(run('ip', ['netns', 'exec', ns, 'sysctl', '-qw', kv]), `sysctl ${kv} in ${ns}`);
  }

  /** Runs an nft script (native syntax) in `ns` as one transaction: `ip netns exec NS nft -f FILE`. */
  nft(ns: string, script: string): Res {
    const file = path.join(this.dir, `s${this.seq++}.nft`);
    fs.writeFileSync(file, script);
    return run('ip', ['netns', 'exec', ns, 'nft', '-f', file]);
  }

  nftOk(ns: string, script: string, what: string): void {
    must(this.nft(ns, script), what);
  }

  /** `nft -j list ...` in `ns`, parsed. */
  list(ns: string, what: string): Array<Record<string, any>> {
    const r = must(run('ip', ['netns', 'exec', ns, 'nft', '-j', 'list', ...what.split(' ')]), `nft list ${what}`);
    return JSON.parse(r.stdout).nftables;
  }

  tables(ns: string): string[] {
    return this.list(ns, 'tables').filter((o) => o.table).map((o) => `${o.table.family} ${o.table.name}`).sort();
  }

  /** Starts a long-running process inside `ns`; it is killed by PID in cleanup(). */
  spawnIn(ns: string, args: string[]): void {
    const p = spawn('ip', ['netns', 'exec', ns, ...args], { stdio: 'ignore' });
    this.procs.push(p);
  }

  cleanup(): void {
    for (const p of this.procs) {
      if (p.pid && p.exitCode === null && p.signalCode === null) {
        try { process.kill(p.pid, 'SIGKILL'); } catch { /* already gone */ }
      }
    }
    for (const n of this.netns.reverse()) run('ip', ['netns', 'del', n]);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------------------------------- test states

const hex = (s: string) => crypto.createHash('sha256').update(s).digest('hex');
type Net = FirewallState['networks'][number];
type Port = FirewallState['ports'][number];

function mkNet(name: string, third: number, o: Partial<Net> = {}): Net {
  return { id: hex(name), name, bridge: `br-${name}`, subnet: `10.99.${third}.0/24`, gateway: `10.99.${third}.1`, internal: false, icc: true, ...o };
}

function mkPort(hostIp: string, host: number, ctr: number, proto: 'tcp' | 'udp', container: string, ip: string, n: Net, len = 1): Port {
  return {
    hostIp, hostPort: host, hostPortEnd: host + len - 1, containerPort: ctr, containerPortEnd: ctr + len - 1, proto,
    containerId: hex(`ctr-${container}`), containerIp: ip, networkId: n.id,
  };
}

const WEB = mkNet('web', 1);
const DB = mkNet('db', 2, { internal: true });
const QUIET = mkNet('quiet', 3, { icc: false });

const PORTS: Port[] = [
  mkPort('', 8080, 80, 'tcp', 'c1', '10.99.1.2', WEB),
  mkPort('198.51.100.1', 8081, 80, 'tcp', 'c1', '10.99.1.2', WEB),
  mkPort('127.0.0.1', 8082, 80, 'tcp', 'c1', '10.99.1.2', WEB),
  mkPort('', 5353, 5353, 'udp', 'c1', '10.99.1.2', WEB),
  mkPort('', 9000, 7000, 'tcp', 'c1', '10.99.1.2', WEB, 2),
  mkPort('', 8090, 80, 'tcp', 'c4', '10.99.3.2', QUIET),
];
const STATE: FirewallState = { networks: [WEB, DB, QUIET], ports: PORTS };

/** Element keys of a map, as "tcp . 8080 -> 10.99.1.2 . 80" strings, sorted. */
function mapElems(lab: Lab, ns: string, map: string): string[] {
  const m = lab.list(ns, `map inet nsnet ${map}`).find((o) => o.map)!.map;
  const flat = (v: any): string => {
    if (v && typeof v === 'object' && 'concat' in v) return v.concat.map(flat).join(' . ');
    if (v && typeof v === 'object' && 'elem' in v) return flat(v.elem.val);
    return String(v);
  };
  return (m.elem ?? []).map((e: [unknown, unknown]) => `${flat(e[0])} -> ${flat(e[1])}`).sort();
}

// ------------------------------------------------------------------------------------------- 1. loading

test('scripts load with nft; full render replaces atomically; deltas apply; other owners\' tables survive', (t) => {
  const lab = new Lab();
  t.after(() => lab.cleanup());
  const ns = lab.ns('load');

  // Another owner's tables, in the same families nsnet uses, must survive everything below.
  lab.nftOk(ns, `table inet other {
	chain mychain {
		type filter hook forward priority 0; policy accept;
		counter comment "not nsnet"
	}
}
table bridge other {
	chain mychain {
		type filter hook forward priority 0; policy accept;
	}
}
table ip nat {
	chain post {
		type nat hook postrouting priority 100; policy accept;
	}
}
`, 'other owner\'s tables');
  const others = ['bridge other', 'inet other', 'ip nat'];

  // renderDeleteAll is tolerant when nothing exists.
  lab.nftOk(ns, renderDeleteAll(), 'delete-all on an empty ruleset');
  assert.deepEqual(lab.tables(ns), others);

  // First full render.
  lab.nftOk(ns, renderRuleset(STATE), 'first full render');
  assert.deepEqual(lab.tables(ns), [...others, 'bridge nsnet', 'inet nsnet'].sort());
  assert.deepEqual(mapElems(lab, ns, 'dnat_any'), [
    'tcp . 8080 -> 10.99.1.2 . 80', 'tcp . 8090 -> 10.99.3.2 . 80', 'tcp . 9000 -> 10.99.1.2 . 7000',
    'tcp . 9001 -> 10.99.1.2 . 7001', 'udp . 5353 -> 10.99.1.2 . 5353',
  ]);
  assert.deepEqual(mapElems(lab, ns, 'dnat_addr'), ['127.0.0.1 . tcp . 8082 -> 10.99.1.2 . 80', '198.51.100.1 . tcp . 8081 -> 10.99.1.2 . 80']);

  // A second full render of a different state REPLACES: no leftover element, chain rule or bridge table.
  const other = mkNet('other', 7);
  const second: FirewallState = { networks: [WEB, other], ports: [mkPort('', 8088, 80, 'tcp', 'z', '10.99.7.2', other)] };
  lab.nftOk(ns, renderRuleset(second), 'second full render');
  assert.deepEqual(lab.tables(ns), [...others, 'inet nsnet'].sort(), 'bridge nsnet is gone (no icc=false network left)');
  assert.deepEqual(mapElems(lab, ns, 'dnat_any'), ['tcp . 8088 -> 10.99.7.2 . 80']);
  assert.deepEqual(mapElems(lab, ns, 'dnat_addr'), []);
  const fwd = JSON.stringify(lab.list(ns, 'chain inet nsnet forward'));
  assert.ok(!fwd.includes('br-db') && !fwd.includes('br-quiet') && fwd.includes('br-other'), 'forward chain rebuilt from the new state');

  // Rendering the same state again is idempotent.
  lab.nftOk(ns, renderRuleset(second), 'same full render again');
  assert.deepEqual(mapElems(lab, ns, 'dnat_any'), ['tcp . 8088 -> 10.99.7.2 . 80']);

  // Atomic: a script whose LAST command fails changes nothing (the earlier delete+redefine is not applied).
  const broken = renderRuleset(STATE) + 'delete element inet nsnet dnat_any { tcp . 1 }\n';
  assert.notEqual(lab.nft(ns, broken).status, 0, 'broken script is refused');
  assert.deepEqual(lab.tables(ns), [...others, 'inet nsnet'].sort());
  assert.deepEqual(mapElems(lab, ns, 'dnat_any'), ['tcp . 8088 -> 10.99.7.2 . 80'], 'previous ruleset intact');

  // Deltas: remove one, add a range and a host-address port, in one transaction.
  const old = second.ports[0];
  const added = [mkPort('', 6000, 6000, 'udp', 'y', '10.99.1.5', WEB, 3), mkPort('127.0.0.1', 8443, 443, 'tcp', 'y', '10.99.1.5', WEB)];
  lab.nftOk(ns, renderPortDelta(added, [old]), 'delta');
  assert.deepEqual(mapElems(lab, ns, 'dnat_any'), ['udp . 6000 -> 10.99.1.5 . 6000', 'udp . 6001 -> 10.99.1.5 . 6001', 'udp . 6002 -> 10.99.1.5 . 6002']);
  assert.deepEqual(mapElems(lab, ns, 'dnat_addr'), ['127.0.0.1 . tcp . 8443 -> 10.99.1.5 . 443']);
  // The same delta again: removing an absent element and re-adding identical ones are no-ops, not errors.
  lab.nftOk(ns, renderPortDelta(added, [old]), 'same delta again (tolerant)');
  assert.equal(mapElems(lab, ns, 'dnat_any').length, 3);
  // A removal whose host port now leads to ANOTHER container fails and changes nothing (never deletes theirs).
  const stale = mkPort('', 6000, 6000, 'udp', 'someone-else', '10.99.1.9', WEB);
  assert.notEqual(lab.nft(ns, renderPortDelta([], [stale])).status, 0);
  // Adding a host port that already leads elsewhere fails too.
  assert.notEqual(lab.nft(ns, renderPortDelta([stale], [])).status, 0);
  assert.equal(mapElems(lab, ns, 'dnat_any').length, 3, 'failed deltas changed nothing');
  // A port moving between containers in one delta.
  const moved = mkPort('', 6001, 6001, 'udp', 'w', '10.99.1.6', WEB);
  lab.nftOk(ns, renderPortDelta([moved], [mkPort('', 6001, 6001, 'udp', 'y', '10.99.1.5', WEB)]), 'move a port');
  assert.deepEqual(mapElems(lab, ns, 'dnat_any'), ['udp . 6000 -> 10.99.1.5 . 6000', 'udp . 6001 -> 10.99.1.6 . 6001', 'udp . 6002 -> 10.99.1.5 . 6002']);

  // 500 published ports: one script, one transaction, and a delta on top of it.
  const big = mkNet('big', 8);
  const many: Port[] = [];
  for (let i = 0; i < 500; i++) many.push(mkPort(i % 2 ? '' : '127.0.0.1', 20000 + i, 80, i % 3 ? 'tcp' : 'udp', `b${i}`, `10.99.8.${2 + (i % 250)}`, big));
  const t0 = Date.now();
  lab.nftOk(ns, renderRuleset({ networks: [big], ports: many }), '500 ports');
  const ms = Date.now() - t0;
  assert.equal(mapElems(lab, ns, 'dnat_any').length + mapElems(lab, ns, 'dnat_addr').length, 500);
  t.diagnostic(`full render with 500 published ports applied by nft -f in ${ms} ms (including nft start-up)`);
  lab.nftOk(ns, renderPortDelta([mkPort('', 30000, 80, 'tcp', 'new', '10.99.8.9', big)], [many[1]]), 'delta on 500');
  assert.equal(mapElems(lab, ns, 'dnat_any').length + mapElems(lab, ns, 'dnat_addr').length, 500);

  // Every committed golden file loads, each replacing the previous one.
  const goldenDir = path.join(process.cwd(), 'test/unit/golden/firewall');
  const goldens = fs.readdirSync(goldenDir).filter((f) => f.endsWith('.nft') && f !== 'port-delta.nft').sort();
  assert.ok(goldens.length >= 6);
  for (const g of goldens) {
    lab.nftOk(ns, fs.readFileSync(path.join(goldenDir, g), 'utf8'), `golden ${g}`);
    if (g === 'published-ports.nft') lab.nftOk(ns, fs.readFileSync(path.join(goldenDir, 'port-delta.nft'), 'utf8'), 'golden port-delta.nft');
  }
  // empty.nft sorts first, several-networks.nft last: nsnet's tables exist now.
  assert.deepEqual(lab.tables(ns), [...others, 'bridge nsnet', 'inet nsnet'].sort());

  // Delete-all removes both tables, twice in a row, and leaves the other owner's tables alone.
  lab.nftOk(ns, renderDeleteAll(), 'delete-all');
  lab.nftOk(ns, renderDeleteAll(), 'delete-all again');
  assert.deepEqual(lab.tables(ns), others);
  const otherRule = JSON.stringify(lab.list(ns, 'table inet other'));
  assert.ok(otherRule.includes('not nsnet'), 'the other owner\'s rule is untouched');
});

// ------------------------------------------------------------------------------------------- 2. traffic

/** Serves TCP and UDP ports; answers every connection/datagram with "<label>:<port> <client address>". */
const SERVER = `
import socket, sys, threading
label = sys.argv[1]
def tcp(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', port)); s.listen(64)
    while True:
        c, a = s.accept()
        try: c.sendall(f'{label}:{port} {a[0]}\\n'.encode())
        finally: c.close()
def udp(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', port))
    while True:
        d, a = s.recvfrom(2048); s.sendto(f'{label}:{port} {a[0]}\\n'.encode(), a)
for spec in sys.argv[2:]:
    p, proto = spec.split('/')
    threading.Thread(target=tcp if proto == 'tcp' else udp, args=(int(p),), daemon=True).start()
threading.Event().wait()
`;

/** Probes [host, port, proto] targets in parallel; prints a JSON list of replies or "FAIL <reason>". */
const PROBE = `
import json, socket, sys, threading
targets = json.loads(sys.argv[1]); out = [None] * len(targets)
def one(i, host, port, proto):
    try:
        if proto == 'udp':
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1.0); s.sendto(b'?', (host, port))
            out[i] = s.recvfrom(200)[0].decode().strip()
        else:
            s = socket.create_connection((host, port), timeout=1.0); s.settimeout(1.0)
            out[i] = s.recv(200).decode().strip()
    except Exception as e:
        out[i] = 'FAIL ' + type(e).__name__
ts = [threading.Thread(target=one, args=(i, *t)) for i, t in enumerate(targets)]
[t.start() for t in ts]; [t.join() for t in ts]
print(json.dumps(out))
`;

type Target = [string, number, 'tcp' | 'udp'];
/** [from netns suffix, host, port, proto, expected reply ('FAIL' = any failure)] */
type Check = [string, string, number, 'tcp' | 'udp', string];

function probe(lab: Lab, ns: string, targets: Target[]): string[] {
  const r = must(run('ip', ['netns', 'exec', ns, 'python3', '-c', PROBE, JSON.stringify(targets)]), `probe from ${ns}`);
  return JSON.parse(r.stdout);
}

/** Runs checks grouped by source netns (in parallel inside each group); returns the mismatches. */
function runChecks(lab: Lab, checks: Check[]): string[] {
  const bySrc = new Map<string, Check[]>();
  for (const c of checks) bySrc.set(c[0], [...(bySrc.get(c[0]) ?? []), c]);
  const bad: string[] = [];
  for (const [src, cs] of bySrc) {
    const got = probe(lab, `${lab.prefix}-${src}`, cs.map((c) => [c[1], c[2], c[3]] as Target));
    cs.forEach((c, i) => {
      const ok = c[4] === 'FAIL' ? got[i].startsWith('FAIL') : got[i] === c[4];
      if (!ok) bad.push(`${src} -> ${c[1]}:${c[2]}/${c[3]}: expected ${JSON.stringify(c[4])}, got ${JSON.stringify(got[i])}`);
    });
  }
  return bad;
}

test('real traffic: masquerade, DNAT keeps the client address, hairpin, 127.0.0.1, isolation, internal, icc=false', async (t) => {
  const lab = new Lab();
  t.after(() => lab.cleanup());
  const H = lab.ns('h');
  const U = lab.ns('u');
  const hostNs = H;

  // Host <-> upstream link; upstream routes the container range through the host (so that direct access is
  // possible at all and masquerade is observable: without it upstream would see 10.99.x.x sources).
  must(run('ip', ['link', 'add', 'upl0', 'netns', H, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', U]), 'upstream veth');
  lab.ip(H, 'addr add 198.51.100.1/24 dev upl0');
  lab.ip(H, 'link set upl0 up');
  lab.ip(U, 'addr add 198.51.100.2/24 dev eth0');
  lab.ip(U, 'link set eth0 up');
  lab.ip(U, 'route add 10.99.0.0/16 via 198.51.100.1');
  lab.sysctl(H, 'net.ipv4.ip_forward=1');
  for (const n of [WEB, DB, QUIET]) {
    lab.ip(H, `link add ${n.bridge} type bridge`);
    lab.ip(H, `addr add ${n.gateway}/24 dev ${n.bridge}`);
    lab.ip(H, `link set ${n.bridge} up`);
    lab.sysctl(H, `net.ipv4.conf.${n.bridge}.route_localnet=1`);
  }
  const containers: Array<[string, Net, string]> = [
    ['c1', WEB, '10.99.1.2'], ['c2', WEB, '10.99.1.3'], ['c3', DB, '10.99.2.2'], ['c4', QUIET, '10.99.3.2'], ['c5', QUIET, '10.99.3.3'],
  ];
  for (const [name, n, ip] of containers) {
    const ns = lab.ns(name);
    must(run('ip', ['link', 'add', `vh-${name}`, 'netns', H, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]), `veth ${name}`);
    lab.ip(H, `link set vh-${name} master ${n.bridge} up`);
    lab.ip(ns, `addr add ${ip}/24 dev eth0`);
    lab.ip(ns, 'link set eth0 up');
    lab.ip(ns, `route add default via ${n.gateway}`);
  }
  // c1 plays a hostile container for the route_localnet guard: it routes 127.0.0.2 to its gateway.
  const C1 = `${lab.prefix}-c1`;
  lab.sysctl(C1, 'net.ipv4.conf.all.route_localnet=1');
  lab.sysctl(C1, 'net.ipv4.conf.eth0.route_localnet=1');
  lab.ip(C1, 'rule add pref 100 lookup local');
  lab.ip(C1, 'rule del pref 0');
  lab.ip(C1, 'rule add to 127.0.0.2 lookup 100 pref 10');
  lab.ip(C1, 'route add 127.0.0.2 via 10.99.1.1 dev eth0 table 100');

  // Servers.
  const serve = (suffix: string, label: string, specs: string[]) => lab.spawnIn(`${lab.prefix}-${suffix}`, ['python3', '-c', SERVER, label, ...specs]);
  serve('c1', 'c1', ['80/tcp', '5353/udp', '7000/tcp', '7001/tcp']);
  for (const c of ['c2', 'c3', 'c4', 'c5']) serve(c, c, ['80/tcp']);
  serve('u', 'u', ['7777/tcp', '8080/tcp']);
  serve('h', 'h', ['5300/tcp']);
  const ready: Array<[string, Target[]]> = [
    ['c1', [['127.0.0.1', 80, 'tcp'], ['127.0.0.1', 5353, 'udp'], ['127.0.0.1', 7000, 'tcp'], ['127.0.0.1', 7001, 'tcp']]],
    ['c2', [['127.0.0.1', 80, 'tcp']]], ['c3', [['127.0.0.1', 80, 'tcp']]], ['c4', [['127.0.0.1', 80, 'tcp']]], ['c5', [['127.0.0.1', 80, 'tcp']]],
    ['u', [['127.0.0.1', 7777, 'tcp'], ['127.0.0.1', 8080, 'tcp']]], ['h', [['127.0.0.1', 5300, 'tcp']]],
  ];
  for (const [suffix, targets] of ready) {
    const end = Date.now() + 10000;
    for (;;) {
      if (probe(lab, `${lab.prefix}-${suffix}`, targets).every((r) => !r.startsWith('FAIL'))) break;
      if (Date.now() > end) throw new Error(`servers in ${suffix} did not start`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  const brNf = `/proc/sys/net/bridge/bridge-nf-call-iptables`;
  const hasBrNf = run('ip', ['netns', 'exec', H, 'cat', brNf]).status === 0;
  if (hasBrNf) lab.sysctl(H, 'net.bridge.bridge-nf-call-iptables=0');

  // Controls, without nsnet's rules: everything the rules must prevent or provide is observably different.
  const controls: Check[] = [
    ['u', '10.99.1.2', 80, 'tcp', 'c1:80 198.51.100.2'], // direct routed access to a container works
    ['c1', '198.51.100.2', 7777, 'tcp', 'u:7777 10.99.1.2'], // no masquerade: upstream sees the container address
    ['c4', '10.99.3.3', 80, 'tcp', 'c5:80 10.99.3.2'], // icc within the quiet network
    ['c1', '10.99.3.2', 80, 'tcp', 'c4:80 10.99.1.2'], // no isolation between networks
    ['c3', '198.51.100.2', 7777, 'tcp', 'u:7777 10.99.2.2'], // the internal network reaches upstream
    ['c1', '127.0.0.2', 5300, 'tcp', 'h:5300 10.99.1.2'], // route_localnet exposes the host's loopback
    ['u', '198.51.100.1', 8080, 'tcp', 'FAIL'], // nothing published
  ];
  assert.deepEqual(runChecks(lab, controls), [], 'controls without nsnet rules');

  lab.nftOk(hostNs, renderRuleset(STATE), 'load the ruleset');
  // Forget what the controls taught the neighbour caches, so the ARP check below means something.
  for (const c of ['c4', 'c5']) lab.ip(`${lab.prefix}-${c}`, 'neigh flush dev eth0');

  const checks = (selfHairpin: string): Check[] => [
    // From another machine: DNAT keeps the REAL client address; only published ports, only the host's addresses.
    ['u', '198.51.100.1', 8080, 'tcp', 'c1:80 198.51.100.2'],
    ['u', '198.51.100.1', 8081, 'tcp', 'c1:80 198.51.100.2'], // -p 198.51.100.1:8081:80
    ['u', '198.51.100.1', 8082, 'tcp', 'FAIL'], // -p 127.0.0.1:8082:80 is not reachable from outside
    ['u', '198.51.100.1', 5353, 'udp', 'c1:5353 198.51.100.2'], // udp
    ['u', '198.51.100.1', 9000, 'tcp', 'c1:7000 198.51.100.2'], // range 9000-9001:7000-7001
    ['u', '198.51.100.1', 9001, 'tcp', 'c1:7001 198.51.100.2'],
    ['u', '198.51.100.1', 8090, 'tcp', 'c4:80 198.51.100.2'], // published port on the icc=false network
    ['u', '10.99.1.2', 80, 'tcp', 'FAIL'], // no direct routed access to a container
    ['u', '10.99.2.2', 80, 'tcp', 'FAIL'],
    ['u', '10.99.3.2', 80, 'tcp', 'FAIL'],
    // From the host itself, 127.0.0.1 included (masqueraded to the gateway: route_localnet + masquerade).
    ['h', '127.0.0.1', 8080, 'tcp', 'c1:80 10.99.1.1'],
    ['h', '127.0.0.1', 8082, 'tcp', 'c1:80 10.99.1.1'],
    ['h', '127.0.0.1', 8081, 'tcp', 'FAIL'], // bound to 198.51.100.1 only
    ['h', '198.51.100.1', 8080, 'tcp', 'c1:80 198.51.100.1'],
    ['h', '198.51.100.1', 8081, 'tcp', 'c1:80 198.51.100.1'],
    ['h', '10.99.2.2', 80, 'tcp', 'c3:80 10.99.2.1'], // the host can still talk to an internal network
    // From containers: outbound masquerade; forwarded traffic to other machines' port 8080 is NOT DNATed.
    ['c1', '198.51.100.2', 7777, 'tcp', 'u:7777 198.51.100.1'],
    ['c1', '198.51.100.2', 8080, 'tcp', 'u:8080 198.51.100.1'],
    ['c1', '198.51.100.1', 8080, 'tcp', selfHairpin], // a container reaching its own published port
    ['c1', '127.0.0.2', 5300, 'tcp', 'FAIL'], // guard: no host loopback through route_localnet
    ['c1', '10.99.3.2', 80, 'tcp', 'FAIL'], // isolation between networks
    ['c1', '10.99.2.2', 80, 'tcp', 'FAIL'], // nothing enters the internal network
    ['c2', '10.99.1.2', 80, 'tcp', 'c1:80 10.99.1.3'], // same network: direct, real source
    ['c2', '198.51.100.1', 8080, 'tcp', 'c1:80 10.99.1.1'], // hairpin through a host address
    ['c2', '10.99.1.1', 8080, 'tcp', 'c1:80 10.99.1.1'], // published port through the gateway address
    // icc=false network.
    ['c4', '10.99.3.3', 80, 'tcp', 'FAIL'],
    ['c5', '10.99.3.2', 80, 'tcp', 'FAIL'],
    ['c4', '10.99.3.1', 5300, 'tcp', 'h:5300 10.99.3.2'], // the gateway (host services, DNS) still works
    ['c4', '198.51.100.2', 7777, 'tcp', 'u:7777 198.51.100.1'], // outbound still works
    ['c4', '198.51.100.1', 8080, 'tcp', 'c1:80 10.99.1.1'], // another network's published port
    ['c4', '10.99.1.2', 80, 'tcp', 'FAIL'],
    // Internal network.
    ['c3', '198.51.100.2', 7777, 'tcp', 'FAIL'],
    ['c3', '10.99.2.1', 5300, 'tcp', 'FAIL'], // internal: nothing of the host but DNS on its own gateway (input chain)
    ['c3', '10.99.1.2', 80, 'tcp', 'FAIL'],
    ['c3', '198.51.100.1', 8080, 'tcp', 'FAIL'],
  ];

  // br_netfilter off: the model where bridged frames never reach the inet hooks (the bridge table does icc=false).
  assert.deepEqual(runChecks(lab, checks('c1:80 10.99.1.1')), [], 'with the rules, br_netfilter off');
  // icc=false blocks IP but lets ARP through: c4 resolved c5's MAC.
  const neigh = must(run('ip', ['-n', `${lab.prefix}-c4`, 'neigh', 'show', '10.99.3.3']), 'neigh').stdout;
  assert.match(neigh, /lladdr [0-9a-f:]{17}/, `ARP between icc=false containers still resolves: ${neigh}`);
  const bridgeCounters = JSON.stringify(lab.list(H, 'table bridge nsnet'));
  assert.match(bridgeCounters, /"packets":\s*[1-9]/, 'the bridge table dropped the icc=false frames');

  if (hasBrNf) {
    // br_netfilter on (this kernel's default): bridged IPv4 also traverses the inet hooks (iif = oif = bridge).
    // Same results, except a container reaching ITS OWN published port: br_netfilter turns that DNAT into a
    // bridged frame back out of the port it came from, which the bridge refuses unless the port has hairpin mode.
    lab.sysctl(H, 'net.bridge.bridge-nf-call-iptables=1');
    assert.deepEqual(runChecks(lab, checks('FAIL')), [], 'with the rules, br_netfilter on');
    lab.ip(H, 'link set vh-c1 type bridge_slave hairpin on');
    assert.deepEqual(runChecks(lab, [['c1', '198.51.100.1', 8080, 'tcp', 'c1:80 10.99.1.1']]), [], 'self hairpin with hairpin mode on');
    // icc=false is enforced by the inet forward rule alone, too: remove the bridge table and check again.
    lab.nftOk(H, 'delete table bridge nsnet\n', 'drop the bridge table');
    assert.deepEqual(runChecks(lab, [['c4', '10.99.3.3', 80, 'tcp', 'FAIL'], ['c2', '10.99.1.2', 80, 'tcp', 'c1:80 10.99.1.3']]), [], 'icc=false via inet forward with br_netfilter');
    lab.sysctl(H, 'net.bridge.bridge-nf-call-iptables=0');
    lab.nftOk(H, renderRuleset(STATE), 'reload');
  }

  // Deltas at run time: publish 8100 -> c2:80, unpublish 8080; then the second full render restores the state.
  lab.nftOk(H, renderPortDelta([mkPort('', 8100, 80, 'tcp', 'c2', '10.99.1.3', WEB)], [PORTS[0]]), 'delta');
  assert.deepEqual(runChecks(lab, [
    ['u', '198.51.100.1', 8100, 'tcp', 'c2:80 198.51.100.2'],
    ['u', '198.51.100.1', 8080, 'tcp', 'FAIL'],
    ['h', '127.0.0.1', 8100, 'tcp', 'c2:80 10.99.1.1'],
  ]), [], 'after the delta');
  lab.nftOk(H, renderRuleset(STATE), 'full render again');
  assert.deepEqual(runChecks(lab, [
    ['u', '198.51.100.1', 8100, 'tcp', 'FAIL'],
    ['u', '198.51.100.1', 8080, 'tcp', 'c1:80 198.51.100.2'],
  ]), [], 'after the second full render');

  // Removing nsnet's tables restores the control behaviour (nothing of nsnet's is left behind).
  lab.nftOk(H, renderDeleteAll(), 'delete all');
  assert.deepEqual(runChecks(lab, [['u', '198.51.100.1', 8080, 'tcp', 'FAIL'], ['c4', '10.99.3.3', 80, 'tcp', 'c5:80 10.99.3.2']]), [], 'after delete-all');
});
