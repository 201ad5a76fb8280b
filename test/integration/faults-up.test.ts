// Issue #15: `nsnet up` killed (kill -9, NSNET_CRASH_AT) at every point it passes; the next `up` finishes the
// project, the state is exact (`check`: its x-partitions included), a third `up` changes nothing, and `down` leaves
// nothing behind.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { TestHost } from '../helpers/host.js';

const FILE = `services:
  web:
    command: ["sleep", "300"]
    networks: [front]
    ports: ["8089:80"]
  db:
    command: ["sleep", "300"]
    networks:
      front:
        aliases: [database]
      back: {}
networks:
  front:
    ipam:
      config:
        - subnet: 10.46.0.0/24
  back:
    internal: true
x-partitions:
  - network: front
    groups: [[web]]
`;

function withFile(h: TestHost): string {
  const f = path.join(h.root, '..', `compose-${path.basename(h.root)}.yaml`);
  fs.writeFileSync(f, FILE);
  return f;
}

test('up killed at every crash point: the next up finishes it, check is exact, up again changes nothing, down removes everything', async (t) => {
  const probe = TestHost.create('fupp');
  let pts: string[];
  try {
    const f = withFile(probe);
    const r = probe.nsnet(['up', '-d', '-f', f, '-p', 'fu'], { env: { NSNET_TRACE_POINTS: '1' } });
    assert.equal(r.status, 0, r.stderr);
    pts = [...new Set(r.stderr.split('\n').filter((l) => l.startsWith('crashpoint ')).map((l) => l.slice(11)))];
    fs.rmSync(f, { force: true });
  } finally {
    probe.cleanup();
  }
  assert.ok(pts.length >= 8, `up passes its use cases' crash points (got ${pts.join(', ')})`);
  for (const p of pts) {
    await t.test(`up @ ${p}`, () => {
      const h = TestHost.create('fup');
      const f = withFile(h);
      try {
        const killed = h.nsnet(['up', '-d', '-f', f, '-p', 'fu'], { env: { NSNET_CRASH_AT: p } });
        assert.equal(killed.status, 128, `killed at ${p} (status ${killed.status}: ${killed.stderr})`);
        const again = h.nsnet(['up', '-d', '-f', f, '-p', 'fu']);
        assert.equal(again.status, 0, `up after the kill at ${p}: ${again.stderr}`);
        const chk = h.nsnet(['check']);
        assert.equal(chk.status, 0, `check after up at ${p}:\n${chk.stdout}${chk.stderr}`);
        const names = h.ok(['ps', '-a', '--format', '{{.Names}} {{.State}}']).trim().split('\n').sort();
        assert.deepEqual(names, ['fu-db-1 running', 'fu-web-1 running']);
        const third = h.nsnet(['up', '-d', '-f', f, '-p', 'fu']);
        assert.equal(third.status, 0, third.stderr);
        assert.doesNotMatch(third.stdout, /Created|Recreated|Removed|Partitioned|Healed/, `a third up changes nothing: ${third.stdout}`);
        h.ok(['down', '-f', f, '-p', 'fu']);
        assert.equal(h.nsnet(['check']).status, 0);
        assert.deepEqual(h.containerNetns(), []);
        assert.equal(h.ok(['ps', '-a', '-q']).trim(), '');
      } finally {
        h.cleanup();
        fs.rmSync(f, { force: true });
      }
    });
  }
});
