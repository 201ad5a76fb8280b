// x-partitions in a topology file (issue #15), proved by traffic: `up` cuts as the file says (a group against the
// rest), `up` again changes nothing, a changed file moves the cut, a re-created container is put back in its group,
// one way cuts one way, removing it heals; a partition made by hand on a network the file declares none for is left
// alone by `up`, replaced when the file declares one; a bad file changes nothing; `down` removes it (check clean).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { NSNET, TestHost, sh } from '../helpers/host.js';

const PORT = 7000;
const IP: Record<string, string> = { a: '10.72.0.10', b: '10.72.0.11', c: '10.72.0.12' };

const FILE = (xp: string, cDir = '/') => `
name: lab
services:
${['a', 'b', 'c'].map((s) => `  ${s}:
    command: ["python3", "-m", "http.server", "${PORT}", "--bind", "0.0.0.0", "--directory", "${s === 'c' ? cDir : '/'}"]
    networks:
      net: {ipv4_address: ${IP[s]}}
`).join('')}networks:
  net:
    ipam:
      config:
        - subnet: 10.72.0.0/24
${xp}`;

/** Connects from `src` to every other service at once: the pairs that pass, sorted (`a>b`...). */
const PROBE = `import socket, sys, threading
res = []
def go(name, ip):
    try:
        socket.create_connection((ip, ${PORT}), timeout=0.7).close(); res.append(name)
    except OSError: pass
ts = [threading.Thread(target=go, args=(a.split('=')[0], a.split('=')[1])) for a in sys.argv[2:]]
[t.start() for t in ts]; [t.join() for t in ts]
print(' '.join(sys.argv[1] + '>' + n for n in sorted(res)))
`;

test('up: x-partitions cut by traffic, converge, move and heal', { timeout: 120000 }, async (t) => {
  const h = TestHost.create('xpart');
  t.after(() => h.cleanup());
  const dir = path.join(h.root, 'proj');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(h.root, 'probe.py'), PROBE);
  const file = path.join(dir, 'compose.yaml');
  const inDir = (args: string) => h.sh(`cd ${dir} && NSNET_ROOT=${h.root} NSNET_RESOLV_CONF=/dev/null ${NSNET} ${args}`);
  let cDir = '/';
  const up = (xp: string) => {
    fs.writeFileSync(file, FILE(xp, cDir));
    const r = inDir('up -d');
    assert.equal(r.status, 0, r.stdout + r.stderr);
    return r.stdout;
  };
  /** Every pair that passes, in both directions. */
  const passes = (): string => {
    const out: string[] = [];
    for (const s of ['a', 'b', 'c']) {
      const targets = ['a', 'b', 'c'].filter((x) => x !== s).map((x) => `${x}=${IP[x]}`);
      const r = sh(`nsenter --net=/run/netns/${h.netnsName(`lab-${s}-1`)} python3 ${path.join(h.root, 'probe.py')} ${s} ${targets.join(' ')}`, { timeout: 10000 });
      assert.equal(r.status, 0, r.stderr);
      out.push(...r.stdout.trim().split(' ').filter(Boolean));
    }
    return out.sort().join(' ');
  };
  const ALL = 'a>b a>c b>a b>c c>a c>b';
  const check = () => {
    const r = h.nsnet(['check']);
    assert.equal(r.status, 0, r.stdout + r.stderr);
  };

  // 1. No partition: everything passes (the control; the servers may need a moment to listen).
  up('');
  for (let i = 0; i < 50 && passes() !== ALL; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(passes(), ALL);

  // 2. One group, a and b, against the rest (c): up cuts exactly that.
  const XP1 = 'x-partitions:\n  - network: net\n    groups: [[a, b]]\n';
  const first = up(XP1);
  assert.match(first, /Network lab_net {2}Partitioned \(a,b\)/, first);
  assert.equal(passes(), 'a>b b>a');
  assert.match(h.ok(['partition', '--list']), /lab_net.*lab-a-1,lab-b-1.*\(rest\) lab-c-1/);
  check();

  // 3. up again: nothing changes.
  const again = up(XP1);
  assert.doesNotMatch(again, /Partitioned|Healed|Created|Removed|Started/, again);
  assert.equal(passes(), 'a>b b>a');

  // 4. A changed file moves the cut: a alone, b and c together.
  const moved = up('x-partitions:\n  - network: net\n    groups: [[a], [b, c]]\n');
  assert.match(moved, /Network lab_net {2}Partitioned \(a \| b,c\)/, moved);
  assert.equal(passes(), 'b>c c>b');
  check();

  // A re-created container (c's command changed) is put back in its group by the same up.
  cDir = '/tmp';
  const recreated = up('x-partitions:\n  - network: net\n    groups: [[a], [b, c]]\n');
  assert.match(recreated, /Container lab-c-1 {2}Removed[^]*Container lab-c-1 {2}Started[^]*Network lab_net {2}Partitioned \(a \| b,c\)/, recreated);
  for (let i = 0; i < 50 && passes() !== 'b>c c>b'; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(passes(), 'b>c c>b');
  check();

  // 5. One way: a -> c dropped, nothing else (the answers of c to a's connections are not a's to c).
  const oneway = up('x-partitions:\n  - network: net\n    groups: [[a], [c]]\n    oneway: true\n');
  assert.match(oneway, /Partitioned \(a -> c\)/, oneway);
  assert.equal(passes(), 'a>b b>a b>c c>b');

  // 6. Removed from the file: up heals it.
  const healed = up('');
  assert.match(healed, /Network lab_net {2}Healed/, healed);
  assert.equal(passes(), ALL);
  assert.equal(h.ok(['partition', '--list']).split('\n').filter((l) => l.includes('lab_net')).length, 0);
  check();

  // 7. A hand-made partition on a network the file declares none for: up leaves it alone.
  h.ok(['partition', '--network', 'lab_net', 'lab-c-1']);
  const left = up('');
  assert.doesNotMatch(left, /Partitioned|Healed/, left);
  assert.equal(passes(), 'a>b b>a');
  // ...and a file that declares one for that network replaces it.
  const replaced = up('x-partitions:\n  - network: net\n    groups: [[a], [b, c]]\n');
  assert.match(replaced, /Partitioned \(a \| b,c\)/, replaced);
  assert.equal(passes(), 'b>c c>b');

  // 8. A bad x-partitions: one error line, nothing changed.
  fs.writeFileSync(file, FILE('x-partitions:\n  - network: net\n    groups: [[a], [ghost]]\n', cDir));
  const bad = inDir('up -d');
  assert.equal(bad.status, 2);
  assert.equal(bad.stderr, 'Error: compose.yaml:23: x-partitions[0].groups[1][0]: no service "ghost"\n');
  assert.equal(passes(), 'b>c c>b');

  // 9. down removes the partition with the network.
  fs.writeFileSync(file, FILE('x-partitions:\n  - network: net\n    groups: [[a], [b, c]]\n', cDir)); // down reads the file too
  const down = inDir('down');
  assert.equal(down.status, 0, down.stderr);
  assert.equal(h.ok(['partition', '--list']).split('\n').filter((l) => l.includes('lab_net')).length, 0);
  assert.doesNotMatch(h.ok(['network', 'ls', '--format', '{{.Name}}']), /lab_/);
  check();
});
