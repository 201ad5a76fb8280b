// The trace rules of `nsnet explain --trace` as kernel objects nsnet owns: the `trace_<hook>` chains in nsnet's
// tables (src/explain/trace.ts writes them). They exist only while a probe runs; one left behind (a crash,
// kill -9) is what `check` reports (trace-rule) and `reconcile` removes.
import { NAMES } from '../firewall/model.js';
import { NftError } from '../kernel/nft.js';
import type { Host } from './host.js';

const isMissing = (e: unknown) => e instanceof NftError && /No such file or directory/.test(e.message);

export interface TraceChain {
  family: 'inet' | 'bridge';
  chain: string;
}

/** The trace chains in nsnet's tables now (one `list chains`). */
export function traceChains(h: Host): TraceChain[] {
  const l = JSON.parse(h.nft.run('list chains', true)) as { nftables: Array<{ chain?: { family: string; table: string; name: string } }> };
  return l.nftables.map((o) => o.chain)
    .filter((c): c is NonNullable<typeof c> => !!c && c.table === NAMES.table && (c.family === 'inet' || c.family === 'bridge') && c.name.startsWith(NAMES.trace.prefix))
    .map((c) => ({ family: c.family as 'inet' | 'bridge', chain: c.name }));
}

/** Deletes these trace chains (each on its own: one already gone does not keep the others). Returns those it
 *  removed. */
export function removeTraceChains(h: Host, chains: TraceChain[]): TraceChain[] {
  const done: TraceChain[] = [];
  for (const c of chains) {
    try {
      h.nft.run(`delete chain ${c.family} ${NAMES.table} ${c.chain}`);
      done.push(c);
    } catch (e) {
      if (!isMissing(e)) throw e;
    }
  }
  return done;
}
