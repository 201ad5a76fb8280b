#!/usr/bin/env node
// Runs the compiled test files with Node's built-in runner.
// usage: node scripts/run-tests.mjs [unit|integration] [extra node --test flags...]
// Node 20's `node --test` has no glob support, so the file list is collected here.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const args = process.argv.slice(2);
const kinds = args.filter((a) => a === 'unit' || a === 'integration');
const flags = args.filter((a) => a !== 'unit' && a !== 'integration');
const roots = (kinds.length ? kinds : ['unit', 'integration']).map((k) => join('dist', 'test', k));

function collect(dir, out) {
  let entries;
  try { entries = readdirSync(dir); } catch { return out; }
  for (const e of entries.sort()) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) collect(p, out);
    else if (e.endsWith('.test.js')) out.push(p);
  }
  return out;
}
const files = roots.flatMap((r) => collect(r, []));
if (files.length === 0) { console.error('no test files found under ' + roots.join(', ')); process.exit(1); }
// Leak guard: integration tests must remove every namespace they create, even when they fail.
const netns = () => { try { return new Set(readdirSync('/run/netns')); } catch { return new Set(); } };
const before = netns();
// One malloc arena: glibc's per-thread arenas fragment and make RSS creep in long loops, which would hide or fake
// leaks in the soak test; with one arena RSS follows what is really allocated.
const env = { ...process.env, MALLOC_ARENA_MAX: '1' };
// Two phases. The end-to-end files that start whole clusters (etcd members, several nsnet hosts and their agents),
// a browser or Podman, or that measure memory or timing by traffic (soak, netem), run last and one at a time: on
// this machine kind (2 CPUs) they would otherwise share the CPUs with three other files, and their bounds (a lease
// TTL, an etcd outage, a memory bound, a --duration) would measure the neighbours. The rest runs four at a time.
const HEAVY = /[\\/](overlay|cluster-etcd|etcd-partition|cni-podman|graph|soak|netem)\.test\.js$/;
const light = files.filter((f) => !HEAVY.test(f));
const heavy = files.filter((f) => HEAVY.test(f));
const runPhase = (list, concurrency) => (list.length
  ? spawnSync(process.execPath, ['--expose-gc', '--test', `--test-concurrency=${concurrency}`, ...flags, ...list], { stdio: 'inherit', env }).status ?? 1
  : 0);
const status = [runPhase(light, 4), runPhase(heavy, 1)].find((x) => x !== 0) ?? 0;
const r = { status };
const leaked = [...netns()].filter((n) => !before.has(n) && /^(nst-|nsu-|nsnet-|nlt-|fwt-)/.test(n));
if (leaked.length) {
  console.error(`LEAK: network namespaces left behind by the tests: ${leaked.join(' ')}`);
  process.exit(1);
}
process.exit(r.status ?? 1);
