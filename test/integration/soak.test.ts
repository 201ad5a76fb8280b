// Soak: 2,000 run/rm cycles through the library API (in-process, against a throwaway host netns) must show no
// growth of open fds, memory, kernel objects or store rows. Numbers are printed as test diagnostics.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { Nsnet } from '../../src/index.js';
import { TestHost } from '../helpers/host.js';

const CYCLES = Number(process.env.NSNET_SOAK_CYCLES ?? 2000);

// RSS after returning the allocator's free pages to the kernel: what is still resident is what is still allocated,
// so fragmentation (freed but cached memory) does not count as growth, and a real leak does.
const require = createRequire(import.meta.url);
const koffi = require('koffi') as typeof import('koffi');
const mallocTrim = koffi.load('libc.so.6').func('int malloc_trim(size_t pad)') as (pad: number) => number;
function liveRss(): number {
  global.gc?.();
  mallocTrim(0);
  return process.memoryUsage().rss;
}
/** RSS outside V8's heap (native: SQLite, koffi, netlink buffers, malloc), after the same trim. V8 keeps the pages
 *  its heap once committed (its young generation grows in steps up to a fixed cap with the allocation rate: 16 →
 *  25 → 42 MiB measured here, heapUsed flat), so RSS alone shows steps that are no leak. */
function nativeRss(): number {
  const r = liveRss();
  return r - process.memoryUsage().heapTotal;
}

function fds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

test(`soak: ${CYCLES} run/rm cycles leave no growth`, async (t) => {
  const h = TestHost.create('soak');
  t.after(() => h.cleanup());
  process.env.NSNET_RESOLV_CONF = `${h.root}/test-resolv.conf`; // never the machine's real resolvers
  const ns = Nsnet.open({ root: h.root, hostNetns: `/run/netns/${h.ns}` });
  t.after(() => ns.close());
  ns.createNetwork({ name: 'soak', subnet: '10.60.0.0/24' });
  const rows = () => {
    const db = ns.host.store.db;
    const n = (tbl: string) => (db.prepare(`SELECT count(*) AS n FROM ${tbl}`).get() as { n: number }).n;
    return { containers: n('containers'), endpoints: n('endpoints'), garbage: n('garbage'), networks: n('networks') };
  };
  const snapshot = () => ({ fds: fds(), rss: liveRss(), links: h.links().length, netns: h.containerNetns().length, ...rows() });

  const cycle = async (i: number) => {
    ns.run({ name: `s${i}`, network: 'soak', publish: ['8080'], command: ['sleep', '300'] });
    await ns.remove(`s${i}`, true);
  };
  for (let i = 0; i < 100; i++) await cycle(i); // warm-up: caches, prepared statements, JIT
  await ns.settle(); // removed containers' veths are deleted by the kernel, a moment later
  global.gc?.();
  const before = snapshot();
  const heap = () => process.memoryUsage().heapUsed;
  const t0 = Date.now();
  const mid = Math.floor((100 + CYCLES) / 2);
  let midRss = 0;
  let midNative = 0;
  let midHeap = 0;
  for (let i = 100; i < CYCLES; i++) {
    await cycle(i);
    if (i === mid) {
      midRss = liveRss();
      midNative = nativeRss();
      midHeap = heap();
    }
  }
  assert.equal(await ns.settle(), 0, 'the kernel removed every veth by itself');
  global.gc?.();
  const after = snapshot();
  const endHeap = heap();
  const endNative = nativeRss();
  const ms = Date.now() - t0;
  t.diagnostic(`cycles=${CYCLES} ms=${ms} per-cycle=${(ms / (CYCLES - 100)).toFixed(2)}ms`);
  t.diagnostic(`before ${JSON.stringify(before)}`);
  t.diagnostic(`after  ${JSON.stringify(after)}`);
  assert.equal(after.fds, before.fds, 'open fds');
  assert.equal(after.links, before.links, 'links in the host netns');
  assert.equal(after.netns, 0, 'container namespaces');
  assert.deepEqual({ c: after.containers, e: after.endpoints, g: after.garbage, n: after.networks }, { c: 0, e: 0, g: 0, n: 1 }, 'store rows');
  // Memory. Our own data lives in the JS heap: after warm-up it must not grow with the cycles (a leaked record
  // per cycle would show at once). Native memory (RSS minus V8's committed heap, after malloc_trim) must not
  // either: a native leak of 2 KB per cycle would fail. RSS as a whole also carries V8's committed heap, which
  // grows in steps up to a cap (see nativeRss): it only gets an absolute bound; the trend is printed.
  const half = CYCLES - mid;
  t.diagnostic(`second half: rss ${((after.rss - midRss) / 1024).toFixed(0)} KiB, native ${((endNative - midNative) / 1024).toFixed(0)} KiB, heap ${((endHeap - midHeap) / 1024).toFixed(0)} KiB over ${half} cycles`);
  assert.ok(endHeap - midHeap < half * 1024, `heap grew ${(endHeap - midHeap) / 1024} KiB in the second half`);
  assert.ok(endNative - midNative < half * 2048, `native memory grew ${(endNative - midNative) / 1024} KiB in the second half`);
  assert.ok(after.rss - before.rss < 64 * 1024 * 1024, `rss grew ${(after.rss - before.rss) / 1024} KiB overall`);
  const nft = h.sh('nft list map inet nsnet dnat_any').stdout;
  assert.doesNotMatch(nft, /10\.60\.0\./, 'no DNAT elements left');
});
