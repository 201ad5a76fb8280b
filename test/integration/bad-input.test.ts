// Hostile input through the real CLI: names, CIDRs, addresses, ports, aliases, labels, options, files and
// environment. Every case must be refused with a non-zero exit and exactly one `Error: ...` line on stderr (no
// stack trace), must never reach a shell (a marker file is never created, a canary directory never removed), and
// must change nothing: network ls, ps -a, the host netns links/addresses/routes, container netns, the container
// directories, the nftables ruleset and every row of the state database are compared before and after each case.
// (Arguments cannot hold a NUL byte, so "NUL-ish" names use other control characters and encodings of NUL.)
//
// Table-driven. One throwaway host for the main table (a baseline is built once); a case that wrongly changes
// the state is reported and the baseline restored, so later cases are not affected. A few cases need a host
// whose default network "bridge" does not exist yet (it is created on first use): each of them gets a small
// host of its own.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { test, type TestContext } from 'node:test';
import type BetterSqlite3 from 'better-sqlite3';
import { TestHost, type Result } from '../helpers/host.js';

interface Case {
  /** Subtest name (default: the arguments). */
  name?: string;
  args: string[];
  /** The one stderr line must match this (it must also start with "Error: "). */
  expect: RegExp;
  /** Extra environment for the CLI. */
  env?: NodeJS.ProcessEnv;
}

type Snapshot = Record<string, string>;

const RAND = crypto.randomBytes(4).toString('hex');
/** Created by any injected shell command that runs. */
const MARKER = path.join(os.tmpdir(), `pwned-${RAND}`);
/** Removed by any injected `rm -rf` that runs. */
const CANARY = path.join(os.tmpdir(), `nsnet-canary-${RAND}`);
const TOUCH = `touch ${MARKER}`;

// ------------------------------------------------------------------------------------------------ snapshots

const require = createRequire(import.meta.url);

/** Every row of every table of the state database (read-only), schema-agnostic. */
function storeDump(h: TestHost): string {
  const file = path.join(h.root, 'nsnet.db');
  if (!fs.existsSync(file)) return '(no database)';
  const Database = require('better-sqlite3') as typeof BetterSqlite3;
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as Array<{ name: string }>;
    return tables.map(({ name }) => {
      const rows = (db.prepare(`SELECT * FROM "${name.replace(/"/g, '""')}"`).all() as unknown[]).map((r) => JSON.stringify(r)).sort();
      return [`[${name}]`, ...rows].join('\n');
    }).join('\n');
  } finally {
    db.close();
  }
}

function jsonLines(s: string): Array<Record<string, unknown>> {
  return s.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Record<string, unknown>);
}

function snapshot(h: TestHost): Snapshot {
  const nets = h.nsnet(['network', 'ls', '--format', 'json']);
  const ps = h.nsnet(['ps', '-a', '--format', 'json']);
  let containers: string;
  try {
    // Status and RunningFor hold relative times ("Exited (0) 2 seconds ago"); State carries what matters.
    containers = jsonLines(ps.stdout).map((c) => JSON.stringify({ ...c, Status: undefined, RunningFor: undefined })).join('\n');
  } catch {
    containers = ps.stdout;
  }
  let dirs: string;
  try {
    dirs = fs.readdirSync(path.join(h.root, 'containers')).sort().join('\n');
  } catch (e) {
    dirs = String(e);
  }
  return {
    'network ls': `${nets.status} ${nets.stdout}${nets.stderr}`,
    'ps -a': `${ps.status} ${containers}${ps.stderr}`,
    'host links': [...h.links()].sort().join('\n'),
    'container netns': h.containerNetns().sort().join('\n'),
    'host addresses and routes': h.sh('ip -4 -o addr show; ip -4 route show table all').stdout,
    'nft ruleset': h.sh('nft list ruleset').stdout.replace(/counter packets \d+ bytes \d+/g, 'counter'),
    'container dirs': dirs,
    'state database': storeDump(h),
  };
}

/** Lines added (+) and removed (-) between two snapshot values. */
function lineDiff(a: string, b: string): string {
  const la = a.split('\n');
  const lb = b.split('\n');
  const sa = new Set(la);
  const sb = new Set(lb);
  const out = [...la.filter((l) => !sb.has(l)).map((l) => `      - ${l}`), ...lb.filter((l) => !sa.has(l)).map((l) => `      + ${l}`)];
  return (out.length ? out : ['      (same lines, different order)']).slice(0, 12).join('\n');
}

function stateChanges(before: Snapshot, after: Snapshot): string[] {
  const out: string[] = [];
  for (const k of Object.keys(before)) {
    if (before[k] !== after[k]) out.push(`state changed (${k}):\n${lineDiff(before[k], after[k])}`);
  }
  return out;
}

// ------------------------------------------------------------------------------------------------ checking

/** Everything wrong with one refused command's outcome (empty = correct). */
function problems(c: Case, r: Result, before: Snapshot, after: Snapshot): string[] {
  const p: string[] = [];
  if (r.status === 0) p.push('exit status 0 (expected non-zero)');
  if (/\n\s+at /.test(r.stderr) || /\n\s+at /.test(r.stdout)) p.push('stack trace printed');
  const lines = r.stderr.replace(/\n$/, '').split('\n');
  if (r.stderr === '') p.push('nothing on stderr (expected one "Error: ..." line)');
  else if (lines.length !== 1) p.push(`stderr has ${lines.length} lines (expected exactly one "Error: ..." line)`);
  else if (!lines[0].startsWith('Error: ')) p.push('stderr does not start with "Error: "');
  else if (!c.expect.test(lines[0])) p.push(`stderr does not match ${c.expect}`);
  if (fs.existsSync(MARKER)) p.push(`an injected shell command ran: ${MARKER} exists`);
  if (!fs.existsSync(CANARY)) p.push(`an injected shell command ran: ${CANARY} was removed`);
  p.push(...stateChanges(before, after));
  return p;
}

function report(c: Case, r: Result, p: string[]): string {
  const shown = (s: string) => (s.length > 600 ? s.slice(0, 600) + '...' : s);
  return [
    `nsnet ${c.args.map((a) => JSON.stringify(a)).join(' ')}${c.env ? `  (env ${JSON.stringify(c.env)})` : ''}`,
    ...p.map((x) => `  - ${x}`),
    `  exit ${r.status}; stderr: ${JSON.stringify(shown(r.stderr))}; stdout: ${JSON.stringify(shown(r.stdout))}`,
  ].join('\n');
}

function caseName(c: Case): string {
  if (c.name) return c.name;
  const s = c.args.map((a) => (a.length > 40 ? `${a.slice(0, 20)}…(${a.length} chars)` : a)).map((a) => JSON.stringify(a)).join(' ');
  return (c.env ? `${JSON.stringify(c.env)} ` : '') + s;
}

// ------------------------------------------------------------------------------------------------ the table

const long = (n: number, ch = 'a') => ch.repeat(n);
const NC = (...a: string[]) => ['network', 'create', ...a];
/** run on the user network `base`, detached (a wrongly accepted case must not block). */
const RUN = (...opts: string[]) => ['run', '-d', '--network', 'base', ...opts, '--', 'sleep', '300'];
/** run without --network. */
const RUNX = (...opts: string[]) => ['run', '-d', ...opts, '--', 'sleep', '300'];

/** Names refused by Docker's rule [a-zA-Z0-9][a-zA-Z0-9_.-]* (for networks and containers alike). */
const BAD_NAMES: Array<[string, string]> = [
  ['../x', 'path traversal'],
  ['a/b', 'slash'],
  ['.', 'dot'],
  ['..', 'dot-dot'],
  ['_x', 'leading underscore'],
  ['.x', 'leading dot'],
  ['ñet', 'unicode (latin)'],
  ['сеть', 'unicode (cyrillic)'],
  ['net🚀', 'emoji'],
  ['a\u200bb', 'zero-width space'],
  ['ｎｅｔ', 'full-width letters'],
  [' x', 'leading space'],
  ['x ', 'trailing space'],
  ['x y', 'inner space'],
  ['x\ty', 'tab'],
  ['x\ny', 'newline'],
  ['\u00a0x', 'no-break space'],
  ['x\u0001', 'control character (NUL-ish: argv cannot hold NUL)'],
  ['\u001b[31mred\u001b[0m', 'ANSI escape'],
  ['x\u007f', 'DEL'],
  ['%00x', 'URL-encoded NUL'],
  ['x\\0', 'backslash zero'],
  ['x:y', 'colon'],
  ['x*', 'glob'],
  [`$(${TOUCH})`, 'shell: command substitution'],
  [`\`${TOUCH}\``, 'shell: backticks'],
  [`x;${TOUCH}`, 'shell: semicolon'],
  [`x;rm -rf ${CANARY}`, 'shell: ;rm -rf'],
  [`x|${TOUCH}`, 'shell: pipe'],
  [`x&&${TOUCH}`, 'shell: &&'],
];

function mainCases(v: { baseBridge: string; c1Ip: string }): Case[] {
  const cases: Case[] = [];
  const add = (args: string[], expect: RegExp, extra: Partial<Case> = {}) => cases.push({ args, expect, ...extra });

  // ---- network create: names
  add(NC(''), /network name must not be empty/);
  add(NC(long(65)), /invalid network name .*longer than 64 characters/);
  add(NC(long(5000)), /invalid network name .*longer than 64 characters/);
  for (const [n, why] of BAD_NAMES) add(NC(n), /invalid network name/, { name: `network create: name ${why} ${JSON.stringify(n)}` });
  add(NC('-x'), /unknown option '-x'/, { name: 'network create: name -x (taken as an option)' });
  add(NC('--', '-x'), /invalid network name -x/, { name: 'network create: name -x after --' });
  add(NC('--', '-'), /invalid network name/);
  add(NC('bridge'), /network name bridge is reserved/);
  add(NC('host'), /network name host is reserved/);
  add(NC('none'), /network name none is reserved/);
  add(NC('container:x'), /network mode of run/);
  add(NC('base'), /network with name base already exists/);
  add(NC('a', 'b'), /too many arguments/);
  add(NC(), /missing required argument 'name'/);

  // ---- network create: --subnet
  add(NC('--subnet', '10.0.0.0/33', 's1'), /invalid subnet 10\.0\.0\.0\/33: prefix length/);
  add(NC('--subnet', '10.0.0.5/24', 's1'), /invalid subnet 10\.0\.0\.5\/24: host bits set, it should be 10\.0\.0\.0\/24/);
  add(NC('--subnet', '256.0.0.0/8', 's1'), /invalid subnet 256\.0\.0\.0\/8: .*not an IPv4 address/);
  add(NC('--subnet', 'abc', 's1'), /invalid subnet abc/);
  add(NC('--subnet', '', 's1'), /subnet/, { name: 'network create: --subnet "" (empty)' });
  add(NC('--subnet', '10.0.0.0', 's1'), /invalid subnet 10\.0\.0\.0: missing prefix length/);
  add(NC('--subnet', '10.10.0.128/25', 's1'), /overlaps/, { name: "network create: --subnet inside base's subnet" });
  add(NC('--subnet', '10.0.0.0/8', 's1'), /overlaps/, { name: "network create: --subnet containing base's subnet" });
  add(NC('--subnet', '172.17.0.0/16', 's1'), /overlaps/, { name: "network create: --subnet of the default bridge" });
  add(NC('--subnet', '10.99.0.0/16', 's1'), /overlaps/, { name: 'network create: --subnet overlapping a host route (hostif0)' });
  add(NC('--subnet', '127.0.0.0/8', 's1'), /loopback/);
  add(NC('--subnet', '224.0.0.0/24', 's1'), /multicast/);
  add(NC('--subnet', '240.0.0.0/24', 's1'), /reserved/);
  add(NC('--subnet', '0.0.0.0/0', 's1'), /invalid subnet 0\.0\.0\.0\/0/);
  add(NC('--subnet', '10.1.0.0/31', 's1'), /too small/);
  add(NC('--subnet', '10.1.0.0/32', 's1'), /too small/);
  add(NC('--subnet', '10.1.0.0/08', 's1'), /prefix length/);
  add(NC('--subnet', '10.1.0.0/-1', 's1'), /prefix length/);
  add(NC('--subnet', '10.1.0.0/16/16', 's1'), /invalid subnet/);
  add(NC('--subnet', '010.1.0.0/16', 's1'), /not an IPv4 address/);
  add(NC('--subnet', ' 10.1.0.0/16', 's1'), /invalid subnet/);
  add(NC('--subnet', '10.1.0.0/16\n', 's1'), /invalid subnet/);
  add(NC('--subnet', 'fd00::/64', 's1'), /an IPv6 subnet needs --ipv6/);
  add(NC('--subnet', `$(${TOUCH})/24`, 's1'), /invalid subnet/);

  // ---- network create: --gateway, --ip-range
  add(NC('--subnet', '10.1.0.0/24', '--gateway', '10.2.0.1', 's1'), /invalid gateway 10\.2\.0\.1: parent subnet 10\.1\.0\.0\/24 doesn't contain this address/);
  add(NC('--gateway', '10.1.0.1', 's1'), /every ip-range or gateway must have a corresponding subnet/);
  add(NC('--subnet', '10.1.0.0/24', '--gateway', '10.1.0.0', 's1'), /network address/);
  add(NC('--subnet', '10.1.0.0/24', '--gateway', '10.1.0.255', 's1'), /broadcast address/);
  add(NC('--subnet', '10.1.0.0/24', '--gateway', 'abc', 's1'), /invalid gateway abc/);
  add(NC('--subnet', '10.1.0.0/24', '--gateway', '10.1.0.1/24', 's1'), /invalid gateway/);
  add(NC('--subnet', '10.1.0.0/24', '--gateway', '', 's1'), /gateway/, { name: 'network create: --gateway "" (empty)' });
  add(NC('--subnet', '10.1.0.0/24', '--ip-range', '10.2.0.0/25', 's1'), /invalid ip-range 10\.2\.0\.0\/25: parent subnet 10\.1\.0\.0\/24 doesn't contain ip-range/);
  add(NC('--subnet', '10.1.0.0/24', '--ip-range', '10.1.0.0/16', 's1'), /bigger than its parent subnet/);
  add(NC('--subnet', '10.1.0.0/24', '--ip-range', '10.1.0.5/30', 's1'), /invalid ip-range 10\.1\.0\.5\/30: host bits set/);
  add(NC('--subnet', '10.1.0.0/24', '--ip-range', '10.1.0.0/32', 's1'), /holds no address/);
  add(NC('--ip-range', '10.1.0.0/25', 's1'), /every ip-range or gateway must have a corresponding subnet/);
  add(NC('--subnet', '10.1.0.0/24', '--ip-range', '', 's1'), /ip-range/, { name: 'network create: --ip-range "" (empty)' });

  // ---- network create: -o bridge.name / mtu / icc / unknown
  add(NC('-o', `bridge.name=${long(16)}`, 's1'), /invalid interface name .*longer than 15 bytes/);
  add(NC('-o', `bridge.name=${long(8, 'ü')}`, 's1'), /invalid interface name .*longer than 15 bytes/, { name: 'network create: bridge.name of 8 chars but 16 bytes' });
  add(NC('-o', 'bridge.name=br/x', 's1'), /invalid interface name br\/x: must not contain '\/'/);
  add(NC('-o', 'bridge.name=br x', 's1'), /invalid interface name "br x": must not contain whitespace/);
  add(NC('-o', 'bridge.name=br:0', 's1'), /must not contain ':'/);
  add(NC('-o', 'bridge.name=br%d', 's1'), /must not contain '%'/);
  add(NC('-o', 'bridge.name=brü', 's1'), /only printable ASCII/);
  add(NC('-o', 'bridge.name=..', 's1'), /invalid interface name/);
  add(NC('-o', 'bridge.name=', 's1'), /invalid interface name "": must not be empty/);
  add(NC('-o', `bridge.name=$(${TOUCH})`, 's1'), /invalid interface name/);
  add(NC('-o', 'bridge.name=lo', 's1'), /interface lo already exists on the host/);
  add(NC('-o', 'bridge.name=hostif0', 's1'), /interface hostif0 already exists on the host/);
  add(NC('-o', 'com.docker.network.bridge.name=lo', 's1'), /interface lo already exists on the host/);
  add(NC('-o', `bridge.name=${v.baseBridge}`, 's1'), new RegExp(`bridge name ${v.baseBridge} is already used by another network`), { name: "network create: bridge.name of base's bridge" });
  add(NC('-o', 'bridge.name=nsnet0', 's1'), /bridge name nsnet0 is already used by another network/, { name: "network create: bridge.name of the default bridge" });
  for (const m of ['0', 'abc', '70000', '65536', '67', '-1', '1500.5', '', ' 1500', '0x5dc', `$(${TOUCH})`]) {
    add(NC('-o', `mtu=${m}`, 's1'), /invalid MTU .*must be an integer from 68 to 65535/);
  }
  add(NC('-o', 'com.docker.network.driver.mtu=10', 's1'), /invalid MTU 10/);
  add(NC('-o', 'icc=maybe', 's1'), /invalid value for option icc: "maybe"/);
  add(NC('-o', 'icc=', 's1'), /invalid value for option icc/);
  add(NC('-o', 'foo', 's1'), /invalid option "foo": expected key=value/); // unknown keys are kept, as Docker's
  add(NC('-o', 'mtu', 's1'), /invalid option "mtu": expected key=value/);
  add(NC('-o', '=x', 's1'), /invalid option "=x": expected key=value/);
  add(NC('-o', '', 's1'), /invalid option "": expected key=value/);

  // ---- network create: --label, --driver, options
  add(NC('--label', '=v', 's1'), /invalid label "=v"/);
  add(NC('--label', '', 's1'), /invalid label ""/);
  add(NC('--label', 'a b=c', 's1'), /invalid label/);
  add(NC('--label', 'ké=v', 's1'), /invalid label/);
  add(NC('--label', 'k=a\nb', 's1'), /invalid label .*control characters/);
  add(NC('--label', 'k=a\u2028b', 's1'), /invalid label .*control characters or line breaks/);
  add(NC('--label', `${long(256, 'k')}=v`, 's1'), /the key is longer than 255 characters/);
  add(NC('--label', `k=${long(4097, 'v')}`, 's1'), /the value is longer than 4096 characters/);
  add(NC('--label', `$(${TOUCH})=v`, 's1'), /invalid label/);
  add(NC('--label', `k=$(${TOUCH})`, '--subnet', '10.0.0.0/33', 's1'), /invalid subnet/, { name: 'network create: label value $(touch) with a bad subnet' });
  add(NC('--label', `k=\`${TOUCH}\``, '--driver', 'macvlan', 's1'), /unsupported network driver/, { name: 'network create: label value `touch` with a bad driver' });
  add(NC('--label', `\`touch\${IFS}${MARKER}\`=v`, '--driver', 'macvlan', 's1'), /unsupported network driver/, { name: 'network create: label key `touch${IFS}...` with a bad driver' });
  add(NC('--driver', 'overlay', 's1'), /network driver "overlay" needs this host in a cluster: nsnet cluster join/);
  add(['cluster', 'join', '--store', 'etcd://127.0.0.1:1', '--advertise', '192.0.2.250'], /--advertise 192\.0\.2\.250: not an address of this host/);
  add(['cluster', 'join', '--store', 'etcd://127.0.0.1:1'], /--advertise is required/);
  add(['cluster', 'join', '--store', 'etcd://a b', '--advertise', '127.0.0.1'], /invalid etcd endpoint "etcd:\/\/a b"/);
  add(['cluster', 'join', '--store', 'etcd://127.0.0.1:2379', '--advertise', '127.0.0.1', '--ttl', 'x'], /invalid --ttl "x"/);
  add(['cluster', 'ls'], /nsnet cluster ls needs this host in a cluster/);
  add(['cluster', 'leave'], /this host is in no cluster/);
  add(NC('--driver', 'macvlan', 's1'), /unsupported network driver "macvlan"/);
  add(NC('--driver', 'host', 's1'), /unsupported network driver "host"/);
  add(NC('--driver', '', 's1'), /unsupported network driver ""/);
  add(NC('--internal=yes', 's1'), /unknown option '--internal=yes'/);
  add(NC('--bogus', 's1'), /unknown option '--bogus'/);

  // ---- network rm / inspect / ls
  add(['network', 'rm', 'nope'], /network nope not found/);
  add(['network', 'rm', ''], /not found/);
  add(['network', 'rm', 'base'], /network base id [0-9a-f]+ has active endpoints \(c1\)/);
  add(['network', 'rm', 'host'], /host is a pre-defined network and cannot be removed/);
  add(['network', 'rm', 'none'], /none is a pre-defined network and cannot be removed/);
  add(['network', 'rm', 'bridge'], /bridge is a pre-defined network and cannot be removed/);
  add(['network', 'rm'], /missing required argument/);
  add(['network', 'inspect', 'nope'], /network nope not found/);
  add(['network', 'inspect', ''], /not found/);
  add(['network', 'inspect', '../../etc/passwd'], /not found/);
  add(['network', 'ls', '--format', '{{.Nope}}'], /can't evaluate field Nope/);
  add(['network', 'ls', '--format', '{{.Name'], /unclosed action/);
  add(['network', 'ls', '-z'], /unknown option '-z'/);

  // ---- network connect / disconnect
  add(['network', 'connect', 'nope', 'c1'], /network nope not found/);
  add(['network', 'connect', 'base', 'nope'], /No such container: nope/);
  add(['network', 'connect', 'host', 'c1'], /cannot be connected to the host network/);
  add(['network', 'connect', 'none', 'c1'], /cannot be connected to the none network/);
  add(['network', 'connect', 'base', 'c1'], /endpoint with name c1 already exists in network base/, { name: 'network connect: twice (c1 is already on base)' });
  add(['network', 'connect', '--ip', '10.99.9.9', 'base', 'c2'], /no configured subnet or ip-range contain the IP address 10\.99\.9\.9/);
  add(['network', 'connect', '--ip', v.c1Ip, 'base', 'c2'], new RegExp(`Address already in use: ${v.c1Ip.replace(/\./g, '\\.')}`), { name: "network connect: --ip of c1 (already used)" });
  add(['network', 'connect', '--ip', '10.10.0.1', 'base', 'c2'], /gateway/);
  add(['network', 'connect', '--ip', '10.10.0.0', 'base', 'c2'], /network address/);
  add(['network', 'connect', '--ip', '10.10.0.255', 'base', 'c2'], /broadcast address/);
  add(['network', 'connect', '--ip', '1.2.3', 'base', 'c2'], /invalid IPv4 address 1\.2\.3/);
  add(['network', 'connect', '--ip', 'abc', 'base', 'c2'], /invalid IPv4 address abc/);
  add(['network', 'connect', '--ip', '', 'base', 'c2'], /IP|address/, { name: 'network connect: --ip "" (empty)' });
  add(['network', 'connect', '--ip', '172.17.0.9', 'bridge', 'c2'], /user specified IP address is supported on user defined networks only/, { name: 'network connect: --ip on the default bridge' });
  add(['network', 'connect', '--alias', 'x', 'bridge', 'c2'], /network-scoped alias is supported only for containers in user defined networks/);
  add(['network', 'connect', '--alias', 'a..b', 'base', 'c2'], /invalid alias a\.\.b: empty label/);
  add(['network', 'connect', '--alias', '', 'base', 'c2'], /invalid alias ""/);
  add(['network', 'connect', '--alias', `;${TOUCH}`, 'base', 'c2'], /invalid alias/);
  add(['network', 'connect', 'base'], /missing required argument 'container'/);
  add(['network', 'disconnect', 'nope', 'c1'], /network nope not found/);
  add(['network', 'disconnect', 'base', 'nope'], /No such container: nope/);
  add(['network', 'disconnect', 'aux', 'c1'], /container c1 is not connected to network aux/);
  add(['network', 'disconnect', 'host', 'c1'], /host/);
  add(['network', 'disconnect'], /missing required argument/);

  // ---- run: names
  add(RUN('--name', ''), /container name must not be empty/);
  add(RUN('--name', long(65)), /Invalid container name .*longer than 64 characters/);
  add(RUN('--name', long(5000)), /Invalid container name .*longer than 64 characters/);
  for (const [n, why] of BAD_NAMES) add(RUN('--name', n), /Invalid container name/, { name: `run: --name ${why} ${JSON.stringify(n)}` });
  add(RUN('--name', '-x'), /Invalid container name/, { name: 'run: --name -x' });
  add(RUN('--name', 'c1'), /Conflict\. The container name "c1" is already in use/);
  add(RUN('--name', 'c0'), /Conflict\. The container name "c0" is already in use/, { name: 'run: --name c0 (a created, never started container)' });
  add(['create', '--name', 'c1', '--network', 'base', '--', 'sleep', '300'], /Conflict\. The container name "c1" is already in use/);
  add(['run', '--name'], /option '--name <name>' argument missing/);

  // ---- run: networks
  add(RUNX('--network', 'nope'), /network nope not found/);
  add(RUNX('--network', ''), /not found/, { name: 'run: --network "" (empty)' });
  add(RUNX('--network', 'container:nope'), /No such container: nope/);
  add(RUNX('--network', 'container:'), /--network container: needs a container name/);
  add(RUNX('--network', `container:$(${TOUCH})`), /No such container/);
  add(RUNX('--network', 'container:c0'), /cannot join network of a non running container: c0/);
  add(RUNX('--network', 'container:c1', '-p', '80'), /conflicting options: port publishing and the container type network mode/);
  add(RUNX('--network', 'host', '--ip', '1.2.3.4'), /--ip is only valid with a user-defined network, not --network host/);
  add(RUNX('--network', 'none', '--ip', '1.2.3.4'), /--ip is only valid with a user-defined network/);
  add(RUNX('--network', 'none', '--alias', 'x'), /--alias is only valid with a user-defined network, not --network none/);
  add(RUNX('--network', 'container:c1', '--alias', 'x'), /--alias is only valid with a user-defined network/);

  // ---- run: --ip
  add(RUNX('--ip', '172.17.0.9'), /user specified IP address is supported on user defined networks only/, { name: 'run: --ip on the default bridge' });
  add(RUNX('--network', 'bridge', '--ip', '172.17.0.9'), /user specified IP address is supported on user defined networks only/);
  add(RUN('--ip', '10.99.9.9'), /no configured subnet or ip-range contain the IP address 10\.99\.9\.9/, { name: 'run: --ip outside the subnet' });
  add(RUN('--ip', '1.2.3'), /invalid IPv4 address 1\.2\.3/);
  add(RUN('--ip', v.c1Ip), /Address already in use/, { name: "run: --ip of c1 (already used)" });
  add(RUN('--ip', '10.10.0.1'), /Address already in use: 10\.10\.0\.1 is the network's gateway/);
  add(RUN('--ip', '10.10.0.0'), /it is the network address/);
  add(RUN('--ip', '10.10.0.255'), /it is the broadcast address/);
  add(RUN('--ip', '010.10.0.5'), /invalid IPv4 address 010\.10\.0\.5/);
  add(RUN('--ip', '10.10.0.5 '), /invalid IPv4 address/);
  add(RUN('--ip', '::1'), /invalid IPv4 address ::1 \(an IPv6 address is given with --ip6/);
  add(RUN('--ip', ''), /IP|address/, { name: 'run: --ip "" (empty)' });

  // ---- run: --alias
  add(RUN('--alias', 'a..b'), /invalid alias a\.\.b: empty label/);
  add(RUN('--alias', '-x'), /invalid alias -x/, { name: 'run: --alias -x (a DNS label cannot start with "-")' });
  add(RUN('--alias', long(64, 'x')), /a label is longer than 63 characters/);
  add(RUN('--alias', `${long(60)}.`.repeat(5) + 'a'), /longer than 253 characters/);
  add(RUN('--alias', 'a b'), /invalid alias "a b"/);
  add(RUN('--alias', ''), /invalid alias ""/);
  add(RUN('--alias', 'a.'), /empty label/);
  add(RUN('--alias', '.a'), /empty label/);
  add(RUN('--alias', 'ñ'), /invalid alias/);
  add(RUN('--alias', `$(${TOUCH})`), /invalid alias/);
  add(RUN('--alias', `\`${TOUCH}\``), /invalid alias/);
  add(RUN('--alias', 'ok', '--alias', 'a..b'), /invalid alias a\.\.b/);
  add(RUNX('--alias', 'x'), /network-scoped alias is supported only for containers in user defined networks/, { name: 'run: --alias on the default bridge' });

  // ---- run: -p
  const P = (spec: string, expect: RegExp, name?: string) => add(RUN('-p', spec), expect, name ? { name } : {});
  P('80:0', /invalid containerPort: 0 \(ports are 1-65535\)/);
  P('0', /invalid containerPort: 0/);
  P('70000:80', /invalid hostPort: 70000 \(ports are 1-65535\)/);
  P('80:70000', /invalid containerPort: 70000/);
  P('65536', /invalid containerPort: 65536/);
  P('-1:80', /invalid hostPort/);
  P('80-70:80', /the range ends before it starts/);
  // 8080-8081:80 is accepted (one free port of the range, as Docker's: compat-run).
  P('8080-8081:80-80:1', /invalid/);
  P('8080-8082:80-81', /invalid ranges specified for container and host Ports/);
  P('a:b', /invalid containerPort: b/);
  P('a:80', /invalid hostPort: a/);
  P('1.2.3.4.5:80:80', /invalid IP address: 1\.2\.3\.4\.5/);
  P('999.1.1.1:80:80', /invalid IP address: 999\.1\.1\.1/);
  P('[::1]:80:80', /\[::1\] cannot be published: IPv6 has no route_localnet/);
  P('::1:80:80', /too many colons/);
  P('80/sctp', /protocol sctp is not supported/);
  P('80/icmp', /invalid proto: icmp/);
  P('80/', /invalid proto/);
  P('80/tcp/udp', /invalid proto/);
  P('', /invalid port spec "": no port specified/, 'run: -p "" (empty)');
  P(':::', /too many colons/);
  P('80:', /no container port specified/);
  P('127.0.0.1:80', /invalid hostPort: 127\.0\.0\.1/);
  P('80 80', /must not contain whitespace/);
  P(`$(${TOUCH}):80`, /invalid port spec/);
  P('224.0.0.1:9100:80', /224\.0\.0\.1/, 'run: -p on a multicast host address');
  P('255.255.255.255:9100:80', /255\.255\.255\.255/, 'run: -p on the broadcast address');
  P('192.0.2.55:9100:80', /192\.0\.2\.55/, 'run: -p on an address the host does not have');
  P('8080:80', /Bind for 0\.0\.0\.0:8080\/tcp failed: port is already allocated \(by container c1\)/, 'run: -p 8080:80 (published by c1)');
  P('54-65535', /publishes 65482 ports, more than the limit of 1000 per container \(set NSNET_MAX_PORTS/, 'run: -p 54-65535 (over the port cap)');
  P('10000-11000:10000-11000', /publishes 1001 ports, more than the limit of 1000/, 'run: -p of 1001 ports (one over the cap)');
  add(RUN('-p', '20000-20999:20000-20999', '-p', '21000:81'), /too many published ports/, { name: 'run: two -p specs over the cap together' });
  add(RUN('-p', '80'), /invalid NSNET_MAX_PORTS lots/, { env: { NSNET_MAX_PORTS: 'lots' }, name: 'env: NSNET_MAX_PORTS=lots' });
  add(RUN('-p', '9000:80', '-p', '9000:81'), /Bind for 0\.0\.0\.0:9000\/tcp failed: port is already allocated/, { name: 'run: the same host port twice in one run' });

  // ---- run: command, --dns
  add(['run', '-d', '--network', 'base'], /no command given/);
  add(['run', '-d', '--network', 'base', '--'], /no command given/);
  add(['run', '-d', '--network', 'base', '--', `nonexistent-cmd-${RAND}`], /executable file not found/);
  add(['run', '-d', '--network', 'base', '--', '/etc/passwd'], /executable file not found/, { name: 'run: command is a non-executable file' });
  add(['run', '-d', '--network', 'base', '--', '/tmp'], /executable file not found/, { name: 'run: command is a directory' });
  add(['run', '-d', '--network', 'base', '--', ''], /executable file not found/, { name: 'run: command "" (empty)' });
  add(['run', '-d', '--network', 'base', '--', '-x'], /executable file not found/, { name: 'run: command "-x"' });
  add(['run', '-d', '--network', 'base', '--', `$(${TOUCH})`], /executable file not found/);
  add(['run', '-d', '--network', 'base', '--', `sh -c ${TOUCH}`], /executable file not found/, { name: 'run: command "sh -c touch ..." as one word' });
  add(['create', '--network', 'base'], /no command given/);
  add(RUN('--dns', 'x'), /invalid --dns address "x"/);
  add(RUN('--dns', ''), /invalid --dns address ""/);
  add(RUN('--dns', '1.2.3.4.5'), /invalid --dns address/);
  add(RUN('--dns', '::1'), /invalid --dns address/);
  add(RUN('--dns', `$(${TOUCH})`), /invalid --dns address/);
  add(RUN('--bogus'), /unknown option '--bogus'/);

  // ---- other container commands on unknown or refused containers
  for (const cmd of ['stop', 'rm', 'logs', 'port', 'start']) add([cmd, 'nope'], /No such container: nope/);
  add(['inspect', 'nope'], /No such object: nope/); // docker inspect looks for containers and networks
  add(['exec', 'nope', '--', 'true'], /No such container: nope/);
  add(['exec', `$(${TOUCH})`, '--', 'true'], /No such container/);
  add(['exec', 'c1', '--', `nonexistent-cmd-${RAND}`], /executable file not found/);
  add(['exec', 'c1', '--', `$(${TOUCH})`], /executable file not found/);
  add(['exec', 'c1', '--', ''], /executable file not found/);
  add(['exec', 'c1'], /missing required argument 'command'/);
  add(['rm', ''], /No such container/);
  add(['inspect', ''], /No such object/);
  add(['rm', 'c1'], /You cannot remove a running container c1/);
  add(['rm', '--bogus', 'c1'], /unknown option '--bogus'/);
  add(['stop', '--bogus', 'c1'], /unknown option '--bogus'/);
  add(['stop', '-t'], /argument missing/);
  add(['ps', '--format', '{{.Nope}}'], /can't evaluate field Nope/);
  add(['ps', '--format', '{{if .Names}}'], /unexpected EOF/);
  add(['inspect', '-f', '{{nosuch .Id}}', 'c1'], /function "nosuch" not defined/);
  for (const cmd of ['rm', 'stop', 'inspect', 'port', 'logs', 'start']) add([cmd], /missing required argument/);

  // ---- unknown commands and options
  add(['frob'], /unknown command 'frob'/);
  add(['network', 'frob'], /unknown command 'frob'/);
  add(['container', 'ls'], /unknown command 'container'/);
  add(['RUN'], /unknown command 'RUN'/);
  add(['--bogus', 'ps'], /unknown option '--bogus'/);
  add(['ps', '--bogus'], /unknown option '--bogus'/);
  add(['--root'], /argument missing/);

  // ---- environment and global options (state files, host netns)
  const file = path.join(os.tmpdir(), `nsnet-badroot-${RAND}`);
  add(NC('envnet'), new RegExp(file), { env: { NSNET_ROOT: file }, name: 'env: NSNET_ROOT is a regular file' });
  add(NC('envnet'), new RegExp(file), { env: { NSNET_ROOT: `${file}/sub` }, name: 'env: NSNET_ROOT below a regular file' });
  add(['--root', file, ...NC('envnet')], new RegExp(file), { name: '--root is a regular file' });
  add(NC('envnet'), /''|root/i, { env: { NSNET_ROOT: '' }, name: 'env: NSNET_ROOT "" (empty)' });
  add(['--root', '', ...NC('envnet')], /''|root/i, { name: '--root "" (empty)' });
  // The state directory checks are the engine's (Host.open); the resident helper's client writes in <root>/helper
  // before that (src/cli/client.ts, being rewritten), so these run in-process (NSNET_NO_HELPER) for now.
  const IP = { NSNET_NO_HELPER: '1' };
  add(NC('envnet'), /\/proc\/1 .*proc filesystem/, { env: { ...IP, NSNET_ROOT: '/proc/1' }, name: 'env: NSNET_ROOT=/proc/1 (a pseudo filesystem)' });
  add(['--root', '/sys/kernel', ...NC('envnet')], /sysfs filesystem/, { env: IP, name: '--root /sys/kernel (a pseudo filesystem)' });
  add(NC('envnet'), /control characters/, { env: { ...IP, NSNET_ROOT: `${file}-dir\nError: forged` }, name: 'env: NSNET_ROOT with a newline' });
  add(['--root', `${file}-dir\r`, ...NC('envnet')], /control characters/, { env: IP, name: '--root with a carriage return' });
  add(NC('envnet'), /writable by others/, { env: { ...IP, NSNET_ROOT: '/tmp' }, name: 'env: NSNET_ROOT=/tmp (writable by everyone)' });
  add(NC('envnet'), /\/nonexistent-netns/, { env: { NSNET_HOST_NETNS: `/nonexistent-netns-${RAND}` }, name: 'env: NSNET_HOST_NETNS does not exist' });
  add(NC('envnet'), new RegExp(file), { env: { NSNET_HOST_NETNS: file }, name: 'env: NSNET_HOST_NETNS is a regular file' });
  add(NC('envnet'), /\/tmp/, { env: { NSNET_HOST_NETNS: '/tmp' }, name: 'env: NSNET_HOST_NETNS is a directory' });
  add(NC('envnet'), /\/proc\/self\/ns\/mnt/, { env: { NSNET_HOST_NETNS: '/proc/self/ns/mnt' }, name: 'env: NSNET_HOST_NETNS is a mount namespace' });
  add(NC('envnet'), /pwned/, { env: { NSNET_HOST_NETNS: `$(${TOUCH})` }, name: 'env: NSNET_HOST_NETNS is $(touch ...)' });
  add(['--host-netns', `/nonexistent-netns-${RAND}`, ...NC('envnet')], /\/nonexistent-netns/, { name: '--host-netns does not exist' });
  add(['--host-netns', '', ...NC('envnet')], /host-netns/, { name: '--host-netns "" (empty)' });

  // ---- stop -t (last: a wrongly accepted stop would stop c1; it is restarted afterwards)
  add(['stop', '-t', '-1', 'c1'], /invalid --time "-1"/);
  add(['stop', '-t', 'abc', 'c1'], /invalid --time "abc"/);
  add(['stop', '-t', '1e999', 'c1'], /invalid --time "1e999"/);
  add(['stop', '-t', '', 'c1'], /invalid --time ""/, { name: 'stop -t "" (empty)' });
  return cases;
}

// ------------------------------------------------------------------------------------------------ running

/** Removes what a wrongly accepted case added to the baseline (extra containers, endpoints, networks) and restarts
 *  baseline containers it stopped, so later cases start from the baseline again. */
function restore(h: TestHost, base: Snapshot): void {
  const psNow = jsonLines(h.nsnet(['ps', '-a', '--format', 'json']).stdout);
  const psBase = new Map(jsonLines(base['ps -a'].replace(/^\d+ /, '')).map((c) => [c.Names as string, c]));
  for (const c of psNow) {
    const name = c.Names as string;
    const b = psBase.get(name);
    if (!b) { h.nsnet(['rm', '-f', name]); continue; }
    const was = new Set(String(b.Networks).split(','));
    for (const n of String(c.Networks).split(',')) if (n && !was.has(n)) h.nsnet(['network', 'disconnect', n, name]);
    if (b.State === 'running' && c.State !== 'running') h.nsnet(['start', name]);
  }
  const netBase = new Set(jsonLines(base['network ls'].replace(/^\d+ /, '')).map((n) => n.Name as string));
  for (const n of jsonLines(h.nsnet(['network', 'ls', '--format', 'json']).stdout)) {
    if (!netBase.has(n.Name as string)) h.nsnet(['network', 'rm', n.Name as string]);
  }
}

async function runCases(t: TestContext, h: TestHost | null, cases: Case[], failures: string[], fresh?: () => TestHost): Promise<void> {
  let before = h && !fresh ? snapshot(h) : null;
  for (const c of cases) {
    await t.test(caseName(c), () => {
      const host = fresh ? fresh() : h!;
      const b = before ?? snapshot(host);
      const r = host.nsnet(c.args, { env: c.env });
      let after = snapshot(host);
      // A difference must persist: one re-read rules out a transient observation (e.g. a CLI run during a rebuild).
      if (stateChanges(b, after).length) after = snapshot(host);
      const p = problems(c, r, b, after);
      if (p.length) {
        failures.push(report(c, r, p));
        fs.rmSync(MARKER, { force: true });
        fs.mkdirSync(CANARY, { recursive: true });
        if (!fresh && stateChanges(b, after).length) {
          restore(host, b);
          after = snapshot(host);
        }
      }
      if (!fresh) before = after;
      if (p.length) assert.fail(report(c, r, p));
    });
  }
}

test('hostile input is refused with one Error line, no stack trace, no shell, no state change', async (t) => {
  fs.mkdirSync(CANARY, { recursive: true });
  const badRoot = path.join(os.tmpdir(), `nsnet-badroot-${RAND}`);
  fs.writeFileSync(badRoot, 'not a directory\n');
  const h = TestHost.create('bad');
  t.after(() => {
    h.cleanup();
    fs.rmSync(CANARY, { recursive: true, force: true });
    fs.rmSync(badRoot, { force: true });
    fs.rmSync(MARKER, { force: true });
  });

  // Baseline: a host interface and route (hostif0, 10.99.0.0/24), two user networks with a running container each (c1 publishes 8080), the
  // default network with a created container c0.
  const hv = h.sh('ip link add hostif0 type veth peer name hostif1 && ip addr add 10.99.0.1/24 dev hostif0 && ip link set hostif0 up && ip link set hostif1 up');
  assert.equal(hv.status, 0, hv.stderr);
  h.ok(['network', 'create', '--subnet', '10.10.0.0/24', 'base']);
  h.ok(['network', 'create', '--subnet', '10.20.0.0/24', 'aux']);
  h.ok(['run', '-d', '--name', 'c1', '--network', 'base', '-p', '8080:80', '--', 'sleep', '300']);
  h.ok(['run', '-d', '--name', 'c2', '--network', 'aux', '--', 'sleep', '300']);
  h.ok(['create', '--name', 'c0', '--', 'sleep', '300']);
  const baseNet = JSON.parse(h.ok(['network', 'inspect', 'base']))[0];
  const baseBridge = baseNet.Options['com.docker.network.bridge.name'] as string;
  const c1Ip = JSON.parse(h.ok(['inspect', 'c1']))[0].NetworkSettings.Networks.base.IPAddress as string;
  assert.equal(c1Ip, '10.10.0.2');
  assert.equal(JSON.parse(h.ok(['inspect', 'c0']))[0].NetworkSettings.Networks.bridge.IPAddress, '172.17.0.2');

  const cases = mainCases({ baseBridge, c1Ip });
  assert.ok(cases.length >= 150, `${cases.length} cases`);
  const failures: string[] = [];
  await runCases(t, h, cases, failures);
  t.diagnostic(`${cases.length} cases, ${failures.length} failed`);
  for (const f of failures) for (const l of f.split('\n')) t.diagnostic(l);
});

test('hostile input before the default network exists does not create it', async (t) => {
  // Each case gets a host of its own where the default network "bridge" (created on first use) does not exist
  // yet: a refused command must not create it as a side effect. c1 (created, not started) is on `base` and
  // reserves host port 8080.
  fs.mkdirSync(CANARY, { recursive: true });
  const hosts: TestHost[] = [];
  t.after(() => {
    for (const x of hosts) x.cleanup();
    fs.rmSync(CANARY, { recursive: true, force: true });
    fs.rmSync(MARKER, { force: true });
  });
  const fresh = () => {
    const x = TestHost.create('bad');
    hosts.push(x);
    x.ok(['network', 'create', '--subnet', '10.10.0.0/24', 'base']);
    x.ok(['create', '--name', 'c1', '--network', 'base', '-p', '8080:80', '--', 'sleep', '300']);
    return x;
  };
  const cases: Case[] = [
    { args: RUNX('--ip', '172.17.0.9'), expect: /user specified IP address is supported on user defined networks only/, name: 'run: --ip on the default bridge (not yet created)' },
    { args: RUNX('--alias', 'x'), expect: /network-scoped alias is supported only for containers in user defined networks/, name: 'run: --alias on the default bridge (not yet created)' },
    { args: RUNX('-p', '70000:80'), expect: /invalid hostPort: 70000/, name: 'run: bad -p on the default bridge (not yet created)' },
    { args: RUNX('-p', '8080:80'), expect: /port is already allocated/, name: 'run: taken -p on the default bridge (not yet created)' },
    { args: ['network', 'connect', '--ip', '172.17.0.9', 'bridge', 'c1'], expect: /user specified IP address is supported on user defined networks only/, name: 'network connect: --ip on the default bridge (not yet created)' },
    { args: ['network', 'connect', '--alias', 'x', 'bridge', 'c1'], expect: /network-scoped alias is supported only/, name: 'network connect: --alias on the default bridge (not yet created)' },
    { args: NC('-o', 'bridge.name=nsnet0', 'x'), expect: /nsnet0/, name: "network create: bridge.name=nsnet0 (the default bridge's interface, not yet created)" },
  ];
  const failures: string[] = [];
  await runCases(t, null, cases, failures, fresh);
  t.diagnostic(`${cases.length} cases, ${failures.length} failed`);
  for (const f of failures) for (const l of f.split('\n')) t.diagnostic(l);
});
