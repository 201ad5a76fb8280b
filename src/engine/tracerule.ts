// The trace rule of `nsnet explain --trace` as a kernel object nsnet owns: the `trace` chain in nsnet's tables
// (src/explain/trace.ts writes it). It exists only while a probe runs; one left behind (a crash, kill -9) is what
// `check` reports (trace-rule) and `reconcile` removes.
import { NAMES } from '../firewall/model.js';
import { NftError } from '../kernel/nft.js';
import type { Host } from './host.js';

const isMissing = (e: unknown) => e instanceof NftError && /No such file or directory/.test(e.message);

/** The families of nsnet's tables that hold a trace chain now. */
export function traceChains(h: Host): Array<'inet' | 'bridge'> {
  const out: Array<'inet' | 'bridge'> = [];
  for (const f of ['inet', 'bridge'] as const) {
    try {
      h.nft.run(`list chain ${f} ${NAMES.table} ${NAMES.trace.chain}`, true);
      out.push(f);
    } catch (e) {
      if (!isMissing(e)) throw e;
    }
  }
  return out;
}

/** Deletes the trace chains that exist (each on its own: one already gone does not keep the other). Returns the
 *  families it removed one from. */
export function removeTraceChains(h: Host, families: Array<'inet' | 'bridge'> = ['inet', 'bridge']): Array<'inet' | 'bridge'> {
  const done: Array<'inet' | 'bridge'> = [];
  for (const f of families) {
    try {
      h.nft.run(`delete chain ${f} ${NAMES.table} ${NAMES.trace.chain}`);
      done.push(f);
    } catch (e) {
      if (!isMissing(e)) throw e;
    }
  }
  return done;
}
