// The thin layer over the npm client `etcd3` (etcd's v3 API over gRPC): loading it (lazily: grpc-js costs
// ~100 ms to load and only cluster commands need it), its options, transactions as data, and the bound on
// every call: an operation that gets no answer within `timeoutMs` fails with ClusterUnavailable, never hangs.
import type { Etcd3, IKeyValue, IRequestOp, IResponseOp, ICompare, IOptions } from 'etcd3';
import { UserError } from '../util/errors.js';
import { ClusterUnavailable } from './errors.js';
import { ClusterDataError } from './values.js';
import { prefixEnd } from './keys.js';

export type { IKeyValue };

/** A watch reconnect backoff (etcd3's IBackoff): 100 ms doubling to `max`, so a watch resumes within about a
 *  second of etcd coming back (etcd3's default grows to 30 s). */
function backoff(d: number, max: number): { duration: number; next(): ReturnType<typeof backoff> } {
  return { duration: d, next: () => backoff(Math.min(max, d * 2), max) };
}

/** A member that just failed is skipped for a second (etcd3's default circuit breaker keeps a member out for
 *  5 s after 3 failures, so a cluster that came back stayed refused for 5 s). */
class MemberDown extends Error {
  constructor() {
    super('etcd member failed less than a second ago');
    this.name = 'BrokenCircuitError';
  }
}

function memberPolicy(isRecoverable: (e: Error) => boolean) {
  let downUntil = 0;
  return {
    async execute<T>(fn: (ctx: { signal: AbortSignal }) => PromiseLike<T> | T): Promise<T> {
      if (Date.now() < downUntil) throw new MemberDown();
      try {
        return await fn({ signal: new AbortController().signal });
      } catch (e) {
        if (e instanceof Error && isRecoverable(e)) downUntil = Date.now() + 1000;
        throw e;
      }
    },
  };
}

type Fault = NonNullable<IOptions['faultHandling']>;

export async function openClient(endpoints: readonly string[], timeoutMs: number): Promise<Etcd3> {
  const { Etcd3: Client, isRecoverableError } = await import('etcd3');
  const callMs = Math.max(500, Math.floor(timeoutMs / 2));
  const opts: IOptions = {
    hosts: [...endpoints],
    dialTimeout: callMs,
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + callMs }),
    grpcOptions: {
      // Reconnect to a member that came back within a second (grpc's default backoff grows to 120 s).
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1000,
      // Notice a dead connection (a member whose packets vanish) on open streams (watches, keep-alives): etcd
      // refuses pings more often than every 5 s (--grpc-keepalive-min-time).
      'grpc.keepalive_time_ms': 10000,
      'grpc.keepalive_timeout_ms': 3000,
    },
    faultHandling: {
      watchBackoff: backoff(100, 1000) as unknown as Fault['watchBackoff'],
      host: () => memberPolicy(isRecoverableError) as unknown as ReturnType<NonNullable<Fault['host']>>,
    },
  };
  return new Client(opts);
}

/** Whether `e` says etcd could not serve the call (as opposed to a refused request). */
export function isUnavailable(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  if (e instanceof UserError || e instanceof ClusterDataError) return false;
  const name = e.name ?? '';
  const msg = e.message ?? '';
  return /GRPC(Unavailable|DeadlineExceeded|Cancelled|Internal|Unknown|Aborted|ResourceExhasted)Error|BrokenCircuitError|TaskCancelledError|EtcdWatchStreamEnded|ClientClosedError/.test(`${name} ${e.constructor?.name ?? ''}`)
    || /unavailable|deadline|no leader|timed out|ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|connection|breaker/i.test(msg);
}

/** Runs `f` with the bound; etcd's failures become ClusterUnavailable naming the endpoints. */
export async function bounded<T>(endpoints: readonly string[], timeoutMs: number, f: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ClusterUnavailable(endpoints, timeoutMs)), timeoutMs);
  });
  try {
    return await Promise.race([f(), timeout]);
  } catch (e) {
    if (e instanceof ClusterUnavailable || !isUnavailable(e)) throw e;
    throw new ClusterUnavailable(endpoints, null, `after ${((Date.now() - t0) / 1000).toFixed(1)} s: ${(e as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
}

// ---- transactions as data -----------------------------------------------------------------------------------

const B = (s: string | Buffer): Buffer => (typeof s === 'string' ? Buffer.from(s) : s);

export const cmp = {
  /** The key does not exist (create revision 0), or exists with this create revision. */
  created: (key: string, rev: string | number): ICompare => ({ key: B(key), target: 'Create', result: 'Equal', create_revision: rev }),
  absent: (key: string): ICompare => ({ key: B(key), target: 'Create', result: 'Equal', create_revision: 0 }),
  exists: (key: string): ICompare => ({ key: B(key), target: 'Create', result: 'Greater', create_revision: 0 }),
  /** Last modified at `rev` (0: does not exist). */
  mod: (key: string, rev: string | number): ICompare => ({ key: B(key), target: 'Mod', result: 'Equal', mod_revision: rev }),
  /** Bound to lease `lease`. */
  lease: (key: string, lease: string): ICompare => ({ key: B(key), target: 'Lease', result: 'Equal', lease }),
  /** No key starts with `prefix` (a range compare: holds for every key in the range, and for an empty one). */
  emptyPrefix: (prefix: string): ICompare => ({ key: B(prefix), range_end: prefixEnd(prefix), target: 'Create', result: 'Equal', create_revision: 0 }),
};

export const op = {
  put: (key: string, value: string, lease?: string | null): IRequestOp => ({ request_put: { key: B(key), value: B(value), ...(lease ? { lease } : {}) } }),
  del: (key: string): IRequestOp => ({ request_delete_range: { key: B(key) } }),
  get: (key: string): IRequestOp => ({ request_range: { key: B(key) } }),
  list: (prefix: string, keysOnly = false): IRequestOp => ({ request_range: { key: B(prefix), range_end: prefixEnd(prefix), keys_only: keysOnly } }),
};

export interface TxnResult {
  succeeded: boolean;
  revision: string;
  /** The key-values of each range op of the branch taken, in order (empty arrays for puts and deletes). */
  ranges: IKeyValue[][];
}

export async function txn(client: Etcd3, compare: ICompare[], success: IRequestOp[], failure: IRequestOp[] = []): Promise<TxnResult> {
  const r = await client.kv.txn({ compare, success, failure });
  return {
    succeeded: r.succeeded,
    revision: r.header.revision,
    ranges: r.responses.map((x: IResponseOp) => x.response_range?.kvs ?? []),
  };
}
