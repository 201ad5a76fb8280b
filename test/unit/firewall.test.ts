// Golden-file tests of the pure firewall generator: one scenario per file under test/unit/golden/firewall/.
// The .nft files are the exact scripts nsnet hands to libnftables; they double as documentation (docs/firewall.md).
// Regenerate after an intended change with:  UPDATE_GOLDEN=1 node --test dist/test/unit/firewall.test.js
// (then review the diff: it is the change in behaviour).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  FirewallInputError, MAP_ANY, MAP_ADDR, TABLE, chainRuleCounts, ownerComment, parseOwnerComment, renderDeleteAll, renderPortDelta, renderRuleset,
} from '../../src/firewall/ruleset.js';
import { buildModel } from '../../src/firewall/build.js';
import { elementText } from '../../src/firewall/model.js';
import { renderRule } from '../../src/firewall/render.js';
import type { FirewallState } from '../../src/types.js';
import { judgeDropChain, type JRule } from '../../src/engine/firewall.js';

// Tests run from the repository root (npm test, node --test dist/...): goldens are read from the source tree.
const GOLDEN = path.join(process.cwd(), 'test/unit/golden/firewall');
const UPDATE = process.env.UPDATE_GOLDEN === '1';

function golden(name: string, actual: string): void {
  const file = path.join(GOLDEN, `${name}.nft`);
  if (UPDATE) {
    fs.mkdirSync(GOLDEN, { recursive: true });
    fs.writeFileSync(file, actual);
    return;
  }
  assert.ok(fs.existsSync(file), `golden file ${file} is missing (run from the repo root; UPDATE_GOLDEN=1 creates it)`);
  assert.equal(actual, fs.readFileSync(file, 'utf8'), `${name}.nft differs (UPDATE_GOLDEN=1 regenerates it after an intended change)`);
}

type Net = FirewallState['networks'][number];
type Port = FirewallState['ports'][number];

/** A 64-hex id derived from a label, as Docker's ids look. */
function hexId(label: string): string {
  return createHash('sha256').update(label).digest('hex');
}

function net(name: string, subnet: string, o: Partial<Net> = {}): Net {
  const id = hexId(`net-${name}`);
  const gateway = subnet.replace(/\.0\/\d+$/, '.1');
  return { id, name, bridge: `br-${id.slice(0, 12)}`, subnet, gateway, internal: false, icc: true, ...o };
}

/** `-p [HOSTIP:]HOSTPORT[-END]:CPORT[-END][/proto]` for container `container` at `ip` on network `n`. */
function port(spec: string, container: string, ip: string, n: Net): Port {
  const m = /^(?:(\d+\.\d+\.\d+\.\d+):)?(\d+)(?:-(\d+))?:(\d+)(?:-(\d+))?(?:\/(tcp|udp))?$/.exec(spec);
  if (!m) throw new Error(`bad spec ${spec}`);
  const hp = Number(m[2]);
  const cp = Number(m[4]);
  return {
    hostIp: m[1] ?? '', hostPort: hp, hostPortEnd: m[3] ? Number(m[3]) : hp, containerPort: cp, containerPortEnd: m[5] ? Number(m[5]) : cp,
    proto: (m[6] as 'tcp' | 'udp' | undefined) ?? 'tcp', containerId: hexId(`ctr-${container}`), containerIp: ip, networkId: n.id,
  };
}

const bridge = net('bridge', '172.17.0.0/16', { bridge: 'nsnet0' });
const oa = net('oa-net', '172.18.0.0/16');
const backend = net('backend', '172.19.0.0/16', { internal: true });
const quiet = net('quiet', '172.20.0.0/16', { icc: false });
const tools = net('tools', '10.99.0.0/24');

// Dual-stack networks (issue #13): an IPv6 subnet and gateway beside the IPv4 ones; ports reach both addresses.
const dual = net('dual', '172.21.0.0/16', { subnet6: 'fd00:21::/64', gateway6: 'fd00:21::1' });
const dualInternal = net('dual-internal', '172.22.0.0/16', { subnet6: 'fd00:22::/64', gateway6: 'fd00:22::1', internal: true });
const dualQuiet = net('dual-quiet', '172.23.0.0/16', { subnet6: 'fd00:23::/64', gateway6: 'fd00:23::1', icc: false });
const dualRouted = net('dual-routed', '172.24.0.0/16', { subnet6: 'fd00:24::/64', gateway6: 'fd00:24::1', gatewayMode6: 'routed' });
const v6only = net('v6only', '', { subnet: '', gateway: '', subnet6: 'fd00:25::/64', gateway6: 'fd00:25::1' });
/** A port of a dual-stack container: its IPv4 and IPv6 addresses (hostIp may be an IPv6 address). */
function port6(spec: string, container: string, ip: string, ip6: string, n: Net, hostIp?: string): Port {
  return { ...port(spec, container, ip, n), containerIp6: ip6, ...(hostIp !== undefined ? { hostIp } : {}), ...(n.gatewayMode6 === 'routed' ? { routed6: true } : {}) };
}

const scenarios: Record<string, FirewallState> = {
  // No networks: nsnet's tables are removed (they exist exactly when nsnet has networks).
  empty: { networks: [], ports: [] },
  // One user network, no published port: masquerade, isolation, no direct access.
  plain: { networks: [oa], ports: [] },
  // Every -p form: any address, one host address, 127.0.0.1 only, udp, a range, 0.0.0.0 spelled out.
  'published-ports': {
    networks: [oa],
    ports: [
      port('8080:80', 'web', '172.18.0.2', oa),
      port('198.51.100.1:8443:443', 'web', '172.18.0.2', oa),
      port('127.0.0.1:5432:5432', 'db', '172.18.0.3', oa),
      port('5353:53/udp', 'dns', '172.18.0.4', oa),
      port('9000-9002:7000-7002/tcp', 'app', '172.18.0.5', oa),
      { ...port('6379:6379', 'redis', '172.18.0.6', oa), hostIp: '0.0.0.0' },
    ],
  },
  // An internal network next to a normal one: nothing in or out of the internal bridge, no masquerade for it.
  internal: { networks: [oa, backend], ports: [port('8080:80', 'web', '172.18.0.2', oa)] },
  // icc=false: the inet forward rule (routed / br_netfilter) plus the bridge table (bridged frames).
  'icc-off': { networks: [quiet], ports: [port('8080:80', 'web', '172.20.0.2', quiet)] },
  // Several networks given in no particular order, ports on several of them: output is sorted by network name.
  'several-networks': {
    networks: [tools, quiet, oa, bridge, backend],
    ports: [
      port('8081:80', 'web2', '10.99.0.2', tools),
      port('8080:80', 'web', '172.18.0.2', oa),
      port('2222:22', 'ssh', '172.17.0.2', bridge),
      port('127.0.0.1:9090:9090', 'metrics', '172.20.0.3', quiet),
      port('53:53/udp', 'dns', '172.17.0.3', bridge),
    ],
  },
  // Dual-stack, nothing published: NAT66 next to the IPv4 masquerade, subnets6, the IPv6 DNAT maps (empty), the
  // resolver's IPv6 gateway, [::1] never DNATed; an IPv4-only network next to it stays as it was.
  'dual-plain': { networks: [dual, oa], ports: [] },
  // Dual-stack ports: -p 8080:80 in both families, -p HOST4:..., -p [HOST6]:..., udp, a range; a port of an
  // IPv4-only network stays IPv4; an IPv6-only network's port is IPv6 only.
  'dual-ports': {
    networks: [dual, oa, v6only],
    ports: [
      port6('8080:80', 'web', '172.21.0.2', 'fd00:21::2', dual),
      port6('198.51.100.1:8443:443', 'web', '172.21.0.2', 'fd00:21::2', dual),
      port6('8444:443', 'web', '172.21.0.2', 'fd00:21::2', dual, '2001:db8::1'),
      port6('5353:53/udp', 'dns', '172.21.0.3', 'fd00:21::3', dual),
      port6('9000-9001:7000-7001', 'app', '172.21.0.4', 'fd00:21::4', dual),
      port('9090:80', 'old', '172.18.0.2', oa),
      { ...port6('7070:80', 'six', '', 'fd00:25::2', v6only) },
    ],
  },
  // Dual-stack --internal: nothing in or out in either family but DNS on both gateways.
  'dual-internal': { networks: [dual, dualInternal], ports: [port6('8080:80', 'web', '172.21.0.2', 'fd00:21::2', dual)] },
  // Dual-stack icc=false: the bridge table drops both families between its ports.
  'dual-icc-off': { networks: [dualQuiet], ports: [port6('8080:80', 'web', '172.23.0.2', 'fd00:23::2', dualQuiet)] },
  // gateway_mode_ipv6=routed: no NAT66; published ports open at the container's IPv6 address (set routed6); the
  // IPv4 side is DNATed as usual.
  'dual-routed': {
    networks: [dualRouted, dual],
    ports: [
      port6('8080:80', 'web', '172.24.0.2', 'fd00:24::2', dualRouted),
      port6('8081:80', 'web', '172.24.0.2', 'fd00:24::2', dualRouted),
      port6('5353:53/udp', 'dns', '172.24.0.3', 'fd00:24::3', dualRouted),
      port6('8082:80', 'other', '172.21.0.2', 'fd00:21::2', dual),
    ],
  },
};

for (const [name, state] of Object.entries(scenarios)) {
  test(`golden: ${name}`, () => {
    golden(name, renderRuleset(state));
  });
}

test('golden: owner (the set whose comment names the nsnet that owns the table)', () => {
  golden('owner', renderRuleset({ networks: [oa], ports: [] }, { id: 'a1b2c3', root: '/var/lib/nsnet' }));
});

test('owner comment: round trip; a state directory nft cannot quote is shortened, never breaks the script', () => {
  const o = { id: 'a1b2c3', root: '/srv/nsnet state' };
  assert.deepEqual(parseOwnerComment(ownerComment(o)), o);
  const odd = ownerComment({ id: 'a1b2c3', root: '/tmp/a"b\nc' });
  assert.equal(odd, 'nsnet/a1b2c3 /tmp/a?b?c');
  const long = ownerComment({ id: 'a1b2c3', root: '/' + 'x'.repeat(300) });
  assert.ok(long.length <= 128, String(long.length));
  assert.match(long, /^nsnet\/a1b2c3 \.\.\.x+$/);
  assert.equal(parseOwnerComment('the bridge of every nsnet network'), null);
  assert.throws(() => ownerComment({ id: 'a"b', root: '/x' }), FirewallInputError);
  // Every render with an owner still passes the comment checks for any directory.
  assert.match(renderRuleset({ networks: [oa], ports: [] }, { id: 'a1b2c3', root: '/tmp/"; flush ruleset; "' }), /comment "nsnet\/a1b2c3 \/tmp\/\?; flush ruleset; \?"/);
});

test('prerouting never DNATs a 127.0.0.0/8 destination that arrives from outside, before the published jump', () => {
  const s = renderRuleset(scenarios['published-ports']);
  const pre = /chain prerouting \{([\s\S]*?)\n\t\}/.exec(s)![1];
  const lines = pre.split('\n').map((l) => l.trim()).filter(Boolean);
  assert.match(lines[1], /^iifname != "lo" ip daddr 127\.0\.0\.0\/8 counter return /);
  assert.match(lines[2], /jump published/);
});

test('input: DNS on every gateway only from its own bridge (and lo); internal networks reach only DNS on their gateway', () => {
  const s = renderRuleset(scenarios.internal);
  const input = /chain input \{([\s\S]*?)\n\t\}/.exec(s)![1];
  for (const n of [oa, backend]) {
    assert.match(input, new RegExp(`ip daddr ${n.gateway.replace(/\./g, '\\.')} meta l4proto \\{ tcp, udp \\} th dport 53 iifname != \\{ "${n.bridge}", "lo" \\} counter drop`));
  }
  const b = backend.bridge;
  const rules = input.split('\n').map((l) => l.trim()).filter((l) => l.startsWith(`iifname "${b}"`));
  assert.equal(rules.length, 3);
  assert.match(rules[0], /ct state established,related accept/);
  assert.match(rules[1], /ip daddr 172\.19\.0\.1 meta l4proto \{ tcp, udp \} th dport 53 accept/);
  assert.match(rules[2], /counter drop/);
  assert.doesNotMatch(input, new RegExp(`iifname "${oa.bridge}" counter drop`), 'a normal network still reaches the host');
});

test('golden: port-delta (one container removed, one added with a range and a host address)', () => {
  const removed = [port('8080:80', 'web', '172.18.0.2', oa), port('198.51.100.1:8443:443', 'web', '172.18.0.2', oa)];
  const added = [port('8080:8000', 'web-v2', '172.18.0.7', oa), port('5000-5001:5000-5001/udp', 'web-v2', '172.18.0.7', oa), port('127.0.0.1:8443:443', 'web-v2', '172.18.0.7', oa)];
  golden('port-delta', renderPortDelta(added, removed));
});

test('empty state renders exactly the tolerant delete of nsnet\'s tables', () => {
  assert.equal(renderRuleset({ networks: [], ports: [] }), renderDeleteAll());
  const del = renderDeleteAll();
  assert.match(del, /^table inet nsnet \{\}\ndelete table inet nsnet\ntable bridge nsnet \{\}\ndelete table bridge nsnet\n$/m);
});

test('a full render first removes both nsnet tables, then defines them, and never touches anything else', () => {
  for (const [name, state] of Object.entries(scenarios)) {
    const s = renderRuleset(state);
    assert.doesNotMatch(s, /flush\s+ruleset/, name);
    const code = s.split('\n').filter((l) => !l.startsWith('#'));
    for (const l of code) {
      const m = /^\s*(?:add |delete |flush )?table\s+(\S+)\s+(\S+)/.exec(l);
      if (m) assert.equal(m[2], TABLE, `${name}: only nsnet's tables: ${l}`);
    }
    assert.deepEqual(code.slice(0, 4), ['table inet nsnet {}', 'delete table inet nsnet', 'table bridge nsnet {}', 'delete table bridge nsnet'], name);
    if (state.networks.length) assert.equal(code.filter((l) => l === 'table inet nsnet {').length, 1, name);
    assert.equal(code.filter((l) => l === 'table bridge nsnet {').length, state.networks.some((n) => !n.icc) ? 1 : 0, `${name}: bridge table only with icc=false`);
  }
});

test('output does not depend on the order of the input', () => {
  const s = scenarios['several-networks'];
  const expected = renderRuleset(s);
  for (let seed = 1; seed <= 5; seed++) {
    const shuffle = <T>(a: T[]) => a.map((x, i) => [((i + 1) * 7919 * seed) % 101, x] as const).sort((x, y) => x[0] - y[0]).map((x) => x[1]);
    assert.equal(renderRuleset({ networks: shuffle(s.networks), ports: shuffle(s.ports) }), expected);
  }
  const a = [port('8080:80', 'web', '172.18.0.2', oa), port('5353:53/udp', 'dns', '172.18.0.4', oa)];
  assert.equal(renderPortDelta(a, []), renderPortDelta([...a].reverse(), []));
});

test('every rule, set, map and chain comment fits nft\'s 128-character limit, even for a long network name', () => {
  const long = net('n'.repeat(200), '10.50.0.0/16', { internal: true, icc: false });
  const s = renderRuleset({ networks: [long, oa], ports: [port('8080:80', 'web', '172.18.0.2', oa)] });
  const comments = [...s.matchAll(/comment "([^"]*)"/g)].map((m) => m[1]);
  assert.ok(comments.length > 20);
  for (const c of comments) assert.ok(c.length <= 128, c);
  assert.match(s, /network n{37}\.\.\. is internal/);
});

test('every rule carries a comment saying why', () => {
  const s = renderRuleset(scenarios['several-networks']);
  const rules = s.split('\n').filter((l) => /^\t\t(?:iifname|oifname|ip |ct |fib |dnat |ether )/.test(l));
  assert.ok(rules.length > 15);
  for (const r of rules) assert.match(r, / comment "[^"]+"$/, r);
});

test('500 published ports: still one script, one table definition, one map element per port', () => {
  const big = net('big', '10.128.0.0/16');
  const ports: Port[] = [];
  for (let i = 0; i < 500; i++) ports.push(port(`${20000 + i}:80`, `c${i}`, `10.128.${(i + 2) >> 8}.${(i + 2) & 255}`, big));
  const t0 = performance.now();
  const s = renderRuleset({ networks: [big], ports });
  const ms = performance.now() - t0;
  assert.equal(s.split('\n').filter((l) => l === 'table inet nsnet {').length, 1);
  assert.equal([...s.matchAll(/^\t\t\ttcp \. \d+ comment "container [0-9a-f]{12}" : 10\.128\.\d+\.\d+ \. 80,?$/gm)].length, 500);
  assert.ok(ms < 500, `rendering 500 ports took ${ms} ms`);
});

test('ranges are expanded port by port: host port i leads to container port i', () => {
  const s = renderPortDelta([port('9000-9002:7000-7002/udp', 'app', '172.18.0.5', oa)], []);
  assert.match(s, /udp \. 9000 comment "[^"]+" : 172\.18\.0\.5 \. 7000,\n\tudp \. 9001 comment "[^"]+" : 172\.18\.0\.5 \. 7001,\n\tudp \. 9002 comment "[^"]+" : 172\.18\.0\.5 \. 7002\n/);
});

test('port delta: removals come first, each as add-then-delete (tolerant), additions last', () => {
  const web = port('8080:80', 'web', '172.18.0.2', oa);
  const moved = port('8080:80', 'web-v2', '172.18.0.9', oa);
  const s = renderPortDelta([moved], [web]);
  const lines = s.split('\n').filter((l) => l && !l.startsWith('#'));
  assert.deepEqual(lines, [
    `add element inet nsnet ${MAP_ANY} { tcp . 8080 comment "container ${web.containerId.slice(0, 12)}" : 172.18.0.2 . 80 }`,
    `delete element inet nsnet ${MAP_ANY} { tcp . 8080 }`,
    `add element inet nsnet ${MAP_ANY} { tcp . 8080 comment "container ${moved.containerId.slice(0, 12)}" : 172.18.0.9 . 80 }`,
  ]);
  assert.equal(renderPortDelta([], []), '');
  assert.match(renderPortDelta([port('127.0.0.1:80:80', 'x', '172.18.0.2', oa)], []), new RegExp(`add element inet nsnet ${MAP_ADDR} \\{ 127\\.0\\.0\\.1 \\. tcp \\. 80 `));
});

test('invalid input is refused before anything is emitted (nft would resolve a non-address as a host name)', () => {
  const ok = scenarios['published-ports'];
  const bad = (mutate: (s: FirewallState) => void, re: RegExp) => {
    const s: FirewallState = structuredClone(ok);
    mutate(s);
    assert.throws(() => renderRuleset(s), (e: unknown) => e instanceof FirewallInputError && re.test((e as Error).message));
  };
  bad((s) => { s.ports[0].containerIp = 'example.com'; }, /containerIp: "example.com" is not an IPv4 address/);
  bad((s) => { s.ports[0].containerIp = '172.18.0.02'; }, /not an IPv4 address/);
  bad((s) => { s.ports[0].hostIp = 'localhost'; }, /hostIp: "localhost" is not an IPv4 address/);
  bad((s) => { s.ports[0].hostIp = '::1'; }, /host address ::1 is IPv6 but the container has no IPv6 address/);
  bad((s) => { s.ports[0].hostIp = '2001:DB8::1'; }, /hostIp: "2001:DB8::1" is not an IPv6 address in canonical form/);
  bad((s) => { s.ports[0].hostPort = 0; }, /not a port number/);
  bad((s) => { s.ports[0].containerPort = 65536; s.ports[0].containerPortEnd = 65536; }, /not a port number/);
  bad((s) => { s.ports[0].hostPortEnd = 8081; }, /differ in length/);
  bad((s) => { s.ports[0].hostPort = 8090; }, /reversed/);
  bad((s) => { (s.ports[0] as { proto: string }).proto = 'sctp'; }, /not tcp or udp/);
  bad((s) => { s.ports[1] = { ...s.ports[0], containerId: hexId('other') }; }, /0\.0\.0\.0:8080\/tcp is published twice/);
  bad((s) => { s.ports[0].containerIp = '10.1.2.3'; }, /outside network oa-net/);
  bad((s) => { s.ports[0].networkId = hexId('nope'); }, /is not in the state/);
  bad((s) => { s.networks[0].bridge = 'br"; flush ruleset'; }, /not a valid interface name/);
  bad((s) => { s.networks[0].bridge = 'br*'; }, /not a valid interface name/);
  bad((s) => { s.networks[0].bridge = 'a-very-long-bridge-name'; }, /not a valid interface name/);
  bad((s) => { s.networks[0].subnet = '172.18.0.1/16'; }, /host bits set/);
  bad((s) => { s.networks[0].subnet = 'oa.example/16'; }, /not a canonical IPv4 CIDR/);
  bad((s) => { s.networks[0].gateway = '10.0.0.1'; }, /outside its subnet/);
  bad((s) => { s.networks[0].name = 'oa net'; }, /not a valid name/);
  bad((s) => { (s.networks[0] as { internal: unknown }).internal = 'no'; }, /not a boolean/);
  bad((s) => { s.networks.push({ ...s.networks[0], id: hexId('x'), name: 'twin', subnet: '172.18.128.0/17', gateway: '172.18.128.1', bridge: 'br-twin' }); }, /overlapping subnets/);
  bad((s) => { s.networks.push({ ...s.networks[0], id: hexId('x'), name: 'twin', subnet: '172.30.0.0/16', gateway: '172.30.0.1' }); }, /same bridge/);
  assert.throws(() => renderPortDelta([{ ...ok.ports[0], containerIp: 'evil.example' }], []), FirewallInputError);
  assert.throws(() => renderPortDelta([], [{ ...ok.ports[0], hostIp: 'x' }]), FirewallInputError);
});

test('foreign drop-policy chains: accepts for each bridge (literal, wildcard, anonymous set) are recognised; the advice names what lacks', () => {
  const nets = [{ bridge: 'nsnet0', isDefault: true }, { bridge: 'nsbr-0123456789', isDefault: false }];
  const m = (key: string, right: unknown, verdict = 'accept', extra: JRule['expr'] = []): JRule => ({
    expr: [{ match: { op: '==', left: { meta: { key } }, right } }, ...(extra ?? []), { [verdict]: null }],
  });
  // An empty drop chain: everything is missing, in both directions.
  assert.deepEqual(judgeDropChain('inet', 'forward', [], nets), {
    bridges: ['nsnet0', 'nsbr-0123456789'],
    add: 'iifname { "nsnet0", "nsbr-0123456789" } accept; oifname { "nsnet0", "nsbr-0123456789" } accept',
  });
  // One direction only is not enough.
  assert.deepEqual(judgeDropChain('inet', 'forward', [m('iifname', 'nsnet0'), m('iifname', 'nsbr-0123456789')], nets)?.bridges, ['nsnet0', 'nsbr-0123456789']);
  // Literal + wildcard + set: covered; a drop verdict does not count.
  const ok = [m('iifname', 'nsnet0'), m('oifname', { set: ['nsnet0', 'x'] }), m('iifname', 'nsbr-*'), m('oifname', 'nsbr-*', 'accept', [{ counter: null }])];
  assert.equal(judgeDropChain('ip', 'forward', ok, nets), null);
  assert.deepEqual(judgeDropChain('ip', 'forward', [...ok.slice(0, 3), m('oifname', 'nsbr-*', 'drop')], nets)?.bridges, ['nsbr-0123456789']);
  assert.equal(judgeDropChain('ip', 'forward', [m('iifname', 'nsbr-\\*'), m('oifname', 'nsbr-\\*')], [nets[1]])?.bridges.length, 1, 'an escaped * is a literal');
  // input: only user-defined networks (the resolver), iifname only.
  assert.deepEqual(judgeDropChain('inet', 'input', [], nets), { bridges: ['nsbr-0123456789'], add: 'iifname "nsbr-0123456789" meta l4proto { tcp, udp } th dport 53 accept' });
  assert.equal(judgeDropChain('inet', 'input', [m('iifname', 'nsbr-0123456789', 'accept', [{ match: { op: '==', left: { payload: { protocol: 'udp', field: 'dport' } }, right: 53 } }])], nets), null);
  // bridge family: ibrname/obrname.
  assert.match(judgeDropChain('bridge', 'forward', [], nets)!.add, /^meta ibrname \{ "nsnet0", "nsbr-0123456789" \} accept; meta obrname/);
});

test('chainRuleCounts: the chains of table inet nsnet and their rule counts, from the script itself', () => {
  const c = chainRuleCounts(renderRuleset(scenarios.internal));
  assert.deepEqual([...c.keys()], ['guard', 'prerouting', 'output', 'published', 'input', 'forward', 'postrouting']);
  assert.equal(c.get('guard'), 2);
  assert.equal(c.get('prerouting'), 2);
  assert.equal(c.get('input'), 5, 'two DNS rules, three for the internal network');
  assert.equal(chainRuleCounts(renderRuleset(scenarios['icc-off'])).has('forward'), true, 'the bridge table\'s chain is not counted as inet');
  assert.equal(chainRuleCounts(renderRuleset(scenarios['icc-off'])).get('forward'), chainRuleCounts(renderRuleset({ networks: [{ ...quiet, icc: true }], ports: [] })).get('forward'));
});

test('dual-stack: a port is published in each family its container has; an IPv4-only network stays IPv4; routed IPv6 opens the container port once', () => {
  const m = buildModel(scenarios['dual-ports']);
  const inet = m.tables[0];
  const elems = (name: string) => (inet.sets.find((x) => x.name === name)?.elements ?? []).map(elementText);
  assert.ok(elems('dnat_any').includes('tcp 8080 -> 172.21.0.2 80'));
  assert.ok(elems('dnat_any6').includes('tcp 8080 -> fd00:21::2 80'), 'the same -p in IPv6');
  assert.ok(elems('dnat_any').includes('tcp 9090 -> 172.18.0.2 80'));
  assert.ok(!elems('dnat_any6').some((e) => e.includes(' 9090 ')), 'an IPv4-only network publishes IPv4 only');
  assert.deepEqual(elems('dnat_addr6'), ['2001:db8::1 tcp 8444 -> fd00:21::2 443'], '-p [v6addr] in IPv6 only');
  assert.ok(!elems('dnat_addr').some((e) => e.includes('8444')));
  assert.ok(!elems('dnat_any').some((e) => e.includes(' 7070 ')), 'an IPv6-only network publishes IPv6 only');
  // Without any IPv6 network the IPv6 sets, maps and rules do not exist at all.
  assert.ok(!buildModel(scenarios['published-ports']).tables[0].sets.some((x) => x.name.endsWith('6')));
  const r = buildModel(scenarios['dual-routed']).tables[0];
  assert.deepEqual((r.sets.find((x) => x.name === 'routed6')?.elements ?? []).map(elementText), ['fd00:24::3 udp 53', 'fd00:24::2 tcp 80'], '8080 and 8081 lead to one container port');
  assert.ok(!(r.sets.find((x) => x.name === 'dnat_any6')?.elements ?? []).some((e) => elementText(e).includes('fd00:24::')), 'routed: no DNAT66');
  const post = r.chains.find((c) => c.name === 'postrouting')!.rules.map(renderRule);
  assert.ok(!post.some((l) => l.includes('fd00:24::/64')), 'routed: no NAT66');
  assert.ok(post.some((l) => l.includes('ip saddr 172.24.0.0/16')), 'routed IPv6 keeps IPv4 NAT');
});

test('dual-stack port delta: both families, the routed set, tolerant removal; invalid IPv6 input refused', () => {
  const web = port6('8080:80', 'web', '172.21.0.2', 'fd00:21::2', dual);
  const s = renderPortDelta([web, port6('8090:80', 'r', '172.24.0.2', 'fd00:24::2', dualRouted)], []);
  assert.match(s, /# added to dnat_any\nadd element inet nsnet dnat_any \{\n\ttcp \. 8080 comment "[^"]+" : 172\.21\.0\.2 \. 80,/);
  assert.match(s, /# added to dnat_any6\nadd element inet nsnet dnat_any6 \{ tcp \. 8080 comment "[^"]+" : fd00:21::2 \. 80 \}/);
  assert.match(s, /add element inet nsnet routed6 \{ fd00:24::2 \. tcp \. 80 comment "[^"]+" \}/);
  const d = renderPortDelta([], [web]);
  assert.match(d, /delete element inet nsnet dnat_any6 \{ tcp \. 8080 \}/);
  const bad = (mutate: (s: FirewallState) => void, re: RegExp) => {
    const st: FirewallState = structuredClone(scenarios['dual-ports']);
    mutate(st);
    assert.throws(() => renderRuleset(st), (e: unknown) => e instanceof FirewallInputError && re.test((e as Error).message));
  };
  bad((st) => { st.networks[0].subnet6 = 'fd00:21::1/64'; }, /not a canonical IPv6 prefix/);
  bad((st) => { st.networks[0].gateway6 = 'fd00:99::1'; }, /gateway6 fd00:99::1 is outside its subnet/);
  bad((st) => { st.networks[0].gateway6 = 'FD00:21::1'; }, /not an IPv6 address in canonical form/);
  bad((st) => { st.ports[0].containerIp6 = 'fd00:99::2'; }, /container address fd00:99::2 is outside network dual/);
  bad((st) => { st.networks[2].subnet6 = 'fd00:21::/64'; st.networks[2].gateway6 = 'fd00:21::1'; }, /overlapping subnets/);
});
