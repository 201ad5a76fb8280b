// Fault injection for the crash-safety tests. NSNET_CRASH_AT=<point> makes nsnet kill itself with SIGKILL when
// it reaches that named point, exactly as `kill -9` would; `fail:<point>` makes it throw an error there instead,
// as a kernel request that fails would (the use case's failure path runs); several, comma-separated, combine
// (`fail:create:netns,create:rollback`: a create fails after its netns was made, and nsnet is killed while it
// rolls back). NSNET_TRACE_POINTS=1 prints every point passed to stderr. Test-only; costs one boolean test
// otherwise.
const killAt = new Set<string>();
const failAt = new Set<string>();
let armed = false;
/** What a kill point does in place of SIGKILL (unit tests: see armFaults). */
let killer: ((point: CrashPoint) => never) | null = null;

function arm(spec: string): void {
  killAt.clear();
  failAt.clear();
  for (const p of spec.split(',')) {
    if (p.startsWith('fail:')) failAt.add(p.slice(5));
    else if (p) killAt.add(p);
  }
  armed = killAt.size + failAt.size > 0;
}
arm(process.env.NSNET_CRASH_AT ?? '');

/**
 * For the unit tests (test/unit/engine-tx.test.ts), which run the engine in their own process on a fake kernel:
 * arms the points as NSNET_CRASH_AT=`spec` would ('' disarms). A kill point calls `kill` instead of sending
 * SIGKILL to the test's process; it must throw (nothing after the point runs, as after kill -9), and the test
 * takes the state as the kill left it (the store and the fake kernel, copied at that moment).
 */
export function armFaults(spec: string, kill?: (point: CrashPoint) => never): void {
  arm(spec);
  killer = kill ?? null;
}

/**
 * Every crash point, per operation in the order it passes them. crashPoint() takes only these names, so this is
 * the complete list: test/integration/faults.test.ts walks every one of them that is not a CNI command's or
 * netem's (and fails when one is missed); test/integration/cni.test.ts walks those of ADD and DEL,
 * test/integration/netem.test.ts those of netem, test/integration/partition.test.ts those of partition and heal.
 */
export const CRASH_POINTS = [
  'network-create:persisted', 'network-create:bridge', 'network-create:firewall',
  'network-rm:persisted', 'network-rm:bridge',
  'create:persisted', 'create:netns', 'create:endpoint', 'create:sandbox', 'create:committed', 'create:firewall',
  // A create's failure path: its row is gone and what it made is recorded as garbage, not yet removed.
  'create:rollback',
  'start:launched',
  // stop (and a network rm or an ended container) releasing a container's endpoints.
  'release:persisted',
  'rm:persisted', 'rm:firewall', 'rm:sandbox',
  'connect:persisted', 'connect:attached',
  // A connect's failure path, as create:rollback.
  'connect:rollback',
  'disconnect:persisted', 'disconnect:detached',
  'cni-add:persisted', 'cni-add:attached', 'cni-add:committed', 'cni-add:firewall',
  'cni-del:netns', 'cni-del:persisted', 'cni-del:detached', 'cni-del:firewall',
  'cni-gc:persisted', 'cni-gc:detached', 'cni-gc:firewall',
  'cni-reconcile:persisted', 'cni-reconcile:detached',
  // nsnet netem (src/engine/netem.ts): a change (the container side is applied before the host side), and a clear.
  // Walked by test/integration/netem.test.ts.
  'netem:persisted', 'netem:container-side', 'netem:applied', 'netem:committed', 'netem-clear:persisted',
  // nsnet partition / heal (src/engine/partitions.ts). Walked by test/integration/partition.test.ts.
  'partition:persisted', 'partition:firewall', 'partition:timer', 'heal:persisted', 'heal:firewall',
  // nsnet explain --trace (src/engine/explain.ts): its trace rules added, the probe sent, the rules being removed.
  // Walked by test/integration/explain.test.ts (a rule left behind is check's trace-rule, reconcile removes it).
  'explain:trace-added', 'explain:probe-sent', 'explain:trace-remove',
] as const;

export type CrashPoint = (typeof CRASH_POINTS)[number];

export function crashPoint(name: CrashPoint): void {
  if (armed) {
    if (killAt.has(name)) {
      if (killer) killer(name);
      process.kill(process.pid, 'SIGKILL');
    }
    if (failAt.has(name)) throw new Error(`injected fault at ${name} (NSNET_CRASH_AT=fail:${name})`);
  }
  if (process.env.NSNET_TRACE_POINTS) process.stderr.write(`crashpoint ${name}\n`);
}
