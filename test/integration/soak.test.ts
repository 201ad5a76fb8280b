// Soak: 2,000 run/rm cycles through the library API (in-process, against a throwaway host netns) must show no
// growth of open fds, memory, kernel objects or store rows. Numbers are printed as test diagnostics.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { Nsnet } from '../../src/index.js';
import { TestHost } from '../helpers/host.js';

const CYCLES = Number(process.env.NSNET_SOAK_CYCLES ?? 2000);

function fds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

test(`soak: ${CYCLES} run/rm cycles leave no growth`, async (t) => {
  const h = TestHost.create('soak');
  t.after(() => h.cleanup());
  const ns = Nsnet.open({ root: h.root, hostNetns: `/run/netns/${h.ns}` });
  t.after(() => ns.close());
  ns.createNetwork({ name: 'soak', subnet: '10.60.0.0/24' });
  const rows = () => {
    const db = ns.host.store.db;
    const n = (tbl: string) => (db.prepare(`SELECT count(*) AS n FROM ${tbl}`).get() as { n: number }).n;
    return { containers: n('containers'), endpoints: n('endpoints'), garbage: n('garbage'), networks: n('networks') };
  };
  const snapshot = () => ({ fds: fds(), rss: process.memoryUsage().rss, links: h.links().length, netns: h.containerNetns().length, ...rows() });

  const cycle = async (i: number) => {
    ns.run({ name: `s${i}`, network: 'soak', publish: ['8080'], command: ['sleep', '300'] });
    await ns.remove(`s${i}`, true);
  };
  for (let i = 0; i < 100; i++) await cycle(i); // warm-up: caches, prepared statements, JIT
  global.gc?.();
  const before = snapshot();
  const t0 = Date.now();
  for (let i = 100; i < CYCLES; i++) await cycle(i);
  global.gc?.();
  const after = snapshot();
  const ms = Date.now() - t0;
  t.diagnostic(`cycles=${CYCLES} ms=${ms} per-cycle=${(ms / (CYCLES - 100)).toFixed(2)}ms`);
  t.diagnostic(`before ${JSON.stringify(before)}`);
  t.diagnostic(`after  ${JSON.stringify(after)}`);
  assert.equal(after.fds, before.fds, 'open fds');
  assert.equal(after.links, before.links, 'links in the host netns');
  assert.equal(after.netns, 0, 'container namespaces');
  assert.deepEqual({ c: after.containers, e: after.endpoints, g: after.garbage, n: after.networks }, { c: 0, e: 0, g: 0, n: 1 }, 'store rows');
  // Memory: allow GC noise, not growth proportional to the cycles (a leak of even 5 KB/cycle would show 9 MB).
  assert.ok(after.rss - before.rss < 8 * 1024 * 1024, `rss grew ${(after.rss - before.rss) / 1024} KiB`);
  const nft = h.sh('nft list map inet nsnet dnat_any').stdout;
  assert.doesNotMatch(nft, /10\.60\.0\./, 'no DNAT elements left');
});
