// Keeps the embedded resolver in step with the store (wired to src/dns by the DNS work).
import type { Host } from './host.js';

/** Called after any change to names or addresses on user-defined networks. */
export function notifyDns(_h: Host): void {
  // The resolver is started and signalled here once src/dns/main.ts exists (issue 4).
}
