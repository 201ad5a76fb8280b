// Prototypes of library speed-ups, measured without touching src/: nsnet's own classes are patched at run time
// (prototype methods only) and each variant is switched on for every 4th container, so that all variants see the
// same number of attached containers and the same machine load (paired, interleaved).
//
//   node dist/bench/proto-lib.js [N=400]      (root)
//
// Variants (create / remove of one container, as bench/attach.ts `lib`):
//   as-is        nsnet unchanged
//   stmt-cache   Store's better-sqlite3 statements prepared once and reused (db.prepare memoized): today every
//                store call compiles its SQL again
//   no-dns-view  Store.dnsEntries() returns nothing: the cost of rebuilding the resolver's whole view (all names
//                of all networks) on every create/rm, i.e. the most an incremental view update could save
//   no-dns-sync  no resolver update at all (notifyDns sees no resolver: fs.existsSync of dns/main.js is false):
//                the whole cost of keeping the resolver in step synchronously (view rebuild, JSON write + rename,
//                SIGHUP, waiting for the resolver to reload and acknowledge), i.e. the most an asynchronous or
//                delta-based update could save
//   no-veth-del  rm does not delete the host-side veth (Netlink.deleteLink is a no-op): the container's netns is
//                unmounted and the kernel's namespace clean-up removes the pair in the background (see
//                bench/proto-detach.ts for the time until the host is clean)
// In a throwaway host netns (bnh-*), state in a temp dir; everything deleted at the end.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { deleteNamespaces, makeHostNetns, median, ownNamespaces, tick } from './common.js';

const VARIANTS = ['as-is', 'stmt-cache', 'no-dns-view', 'no-dns-sync', 'no-veth-del'] as const;
type Variant = (typeof VARIANTS)[number];

async function main(): Promise<void> {
  const N = Number(process.argv[2] ?? 400);
  const id = crypto.randomBytes(2).toString('hex');
  const host = `bnh-${id}-plib`;
  const tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'bn-plib-')));
  const root = path.join(tmp, 'nsnet');
  const prefix = `nsnet-${crypto.createHash('sha256').update(root).digest('hex').slice(0, 6)}-`;
  let interrupted = false;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => { interrupted = true; process.exitCode = 130; });
  try {
    makeHostNetns(host);
    const { enterHostNetns } = await import('../src/kernel/netns.js');
    enterHostNetns(`/run/netns/${host}`);
    await fs.promises.stat('/');
    const { Nsnet } = await import('../src/index.js');
    const { Netlink } = await import('../src/kernel/netlink.js');
    const { Store } = await import('../src/store/store.js');
    let v: Variant = 'as-is';

    const ns = Nsnet.open({ root });
    ns.createNetwork({ name: 'bnet', subnet: '10.201.0.0/16' });
    // stmt-cache: memoize prepare on this store's connection.
    const db = ns.host.store.db as unknown as { prepare: (sql: string) => unknown };
    const prepare = db.prepare.bind(db);
    const cache = new Map<string, unknown>();
    db.prepare = (sql: string) => {
      if (v !== 'stmt-cache') return prepare(sql);
      let st = cache.get(sql);
      if (!st) { st = prepare(sql); cache.set(sql, st); }
      return st;
    };
    // no-dns-view
    const sp = Store.prototype as unknown as Record<string, unknown>;
    const dnsEntries = sp.dnsEntries as ((...a: unknown[]) => unknown) | undefined;
    if (dnsEntries) sp.dnsEntries = function (this: unknown, ...a: unknown[]) { return v === 'no-dns-view' ? [] : dnsEntries.apply(this, a); };
    // no-dns-sync
    const fsAny = fs as unknown as Record<string, (...a: unknown[]) => unknown>;
    const existsSync = fsAny.existsSync;
    fsAny.existsSync = function (this: unknown, ...a: unknown[]) {
      if (v === 'no-dns-sync' && typeof a[0] === 'string' && a[0].endsWith('/dns/main.js')) return false;
      return existsSync.apply(this, a);
    };
    // no-veth-del
    const np = Netlink.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
    const deleteLink = np.deleteLink;
    np.deleteLink = function (this: unknown, ...a: unknown[]) { return v === 'no-veth-del' ? this : deleteLink.apply(this, a); };

    const c = new Map<Variant, number[]>(VARIANTS.map((x) => [x, []]));
    const r = new Map<Variant, number[]>(VARIANTS.map((x) => [x, []]));
    const made: number[] = [];
    for (let i = 0; i < N && !interrupted; i++) {
      v = VARIANTS[i % VARIANTS.length];
      const t = performance.now();
      ns.create({ name: `c${i}`, network: 'bnet', command: ['sleep', 'infinity'], publish: i === 0 ? ['18080:80'] : [] });
      if (i >= VARIANTS.length) c.get(v)!.push(performance.now() - t);
      made.push(i);
      v = 'as-is';
      await tick();
    }
    for (const i of made) {
      if (interrupted) break;
      v = VARIANTS[i % VARIANTS.length];
      const t = performance.now();
      await ns.remove(`c${i}`);
      if (i >= VARIANTS.length) r.get(v)!.push(performance.now() - t);
      v = 'as-is';
      await tick();
    }
    ns.close();
    const base = { c: median(c.get('as-is')!)!, r: median(r.get('as-is')!)! };
    console.log(`library prototypes, N=${N} (each variant on every ${VARIANTS.length}th container), medians in ms:`);
    for (const x of VARIANTS) {
      const mc = median(c.get(x)!)!;
      const mr = median(r.get(x)!)!;
      console.log(`  ${x.padEnd(12)} create ${mc.toFixed(3).padStart(7)} (${(mc - base.c >= 0 ? '+' : '') + (mc - base.c).toFixed(3)})   remove ${mr.toFixed(3).padStart(7)} (${(mr - base.r >= 0 ? '+' : '') + (mr - base.r).toFixed(3)})`);
    }
    if (!dnsEntries) console.log('  (this nsnet has no Store.dnsEntries: no-dns-view equals as-is)');
  } finally {
    deleteNamespaces([...ownNamespaces([prefix]), host]);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
