// Forwarding to upstream resolvers: UDP from a small pool of sockets (random source ports, random query ids,
// answers checked against the upstream's address and the question), TCP when the client asked over TCP or the
// UDP answer came back truncated. Upstreams are tried in order within one time budget; SERVFAIL and REFUSED
// move on to the next one, as Docker does.
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import type { Upstream } from './answer.js';
import { isTruncated, sameQuestion } from './wire.js';

export interface ForwarderOptions {
  /** Total time for one query over all upstreams. Default 2000 ms. */
  budgetMs?: number;
  /** Most queries waiting for upstreams at once. Past it, a query takes the slot of the oldest query of the
   *  source holding the most slots (which gets SERVFAIL at once), or fails at once if that source holds no more
   *  than the newcomer would. Default 4096. */
  maxInflight?: number;
  /** Most queries of one source (client address) waiting for upstreams at once; past it, SERVFAIL at once.
   *  Default 256. */
  maxPerSource?: number;
  /** UDP sockets in the pool, per address family. Default 4. */
  poolSize?: number;
  log?: (msg: string) => void;
}

/** One query waiting for upstreams, for the per-source accounting: `abort` ends the upstream attempt under way. */
interface Job {
  source: string;
  /** Still holds a slot (false once evicted or finished). */
  holding: boolean;
  abort: (() => void) | null;
}

interface Pending {
  resolve: (b: Buffer | null) => void;
  timer: NodeJS.Timeout;
  up: Upstream;
  query: Buffer;
  qEnd: number;
}

export interface ForwarderStats {
  udpQueries: number;
  tcpQueries: number;
  timeouts: number;
  errors: number;
  mismatched: number;
  truncatedRetries: number;
  inflight: number;
  overloaded: number;
  /** Queries that lost their slot to a source holding fewer. */
  evicted: number;
}

const syncLookup = (address: string, _opts: unknown, cb: (err: Error | null, address: string, family: number) => void) =>
  cb(null, address, address.includes(':') ? 6 : 4);

export class Forwarder {
  private readonly budget: number;
  private readonly maxInflight: number;
  private readonly maxPerSource: number;
  /** source -> its queries in flight, oldest first. */
  private jobs = new Map<string, Job[]>();
  /** n -> the sources with exactly n queries in flight; `top` is the largest n in use (O(1) to find whom to
   *  evict, whatever the number of sources). */
  private buckets = new Map<number, Set<string>>();
  private top = 0;
  private readonly poolSize: number;
  private readonly log: (msg: string) => void;
  private pools: { 4: dgram.Socket[]; 6: dgram.Socket[] } = { 4: [], 6: [] };
  private next = 0;
  /** key: pool socket number * 65536 + query id */
  private pending = new Map<number, Pending>();
  private tcpSockets = new Set<net.Socket>();
  private inflight = 0;
  private closed = false;
  private rnd = Buffer.alloc(0);
  private rndOff = 0;
  readonly st: ForwarderStats = {
    udpQueries: 0, tcpQueries: 0, timeouts: 0, errors: 0, mismatched: 0, truncatedRetries: 0, inflight: 0, overloaded: 0,
    evicted: 0,
  };

  constructor(opts: ForwarderOptions = {}) {
    this.budget = opts.budgetMs ?? 2000;
    this.maxInflight = opts.maxInflight ?? 4096;
    this.maxPerSource = Math.max(1, Math.min(opts.maxPerSource ?? 256, this.maxInflight));
    this.poolSize = opts.poolSize ?? 4;
    this.log = opts.log ?? (() => {});
  }

  private random16(): number {
    if (this.rndOff + 2 > this.rnd.length) {
      this.rnd = crypto.randomBytes(4096);
      this.rndOff = 0;
    }
    const v = this.rnd.readUInt16BE(this.rndOff);
    this.rndOff += 2;
    return v;
  }

  private socket(family: 4 | 6): { sock: dgram.Socket; index: number } {
    const pool = this.pools[family];
    const i = this.next++ % this.poolSize;
    if (this.next > 1e9) this.next = 0;
    let sock = pool[i];
    if (!sock) {
      sock = dgram.createSocket({ type: family === 4 ? 'udp4' : 'udp6', lookup: syncLookup as never });
      const index = (family === 6 ? this.poolSize : 0) + i;
      sock.on('message', (msg, rinfo) => {
        try {
          this.onReply(index, msg, rinfo);
        } catch (e) {
          this.log(`forwarder: ${(e as Error).message}`);
        }
      });
      sock.on('error', (e) => this.log(`forwarder socket: ${e.message}`));
      sock.bind(0);
      sock.unref();
      pool[i] = sock;
    }
    return { sock, index: (family === 6 ? this.poolSize : 0) + i };
  }

  private onReply(index: number, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (msg.length < 12) return;
    const key = index * 65536 + msg.readUInt16BE(0);
    const p = this.pending.get(key);
    if (!p) return;
    // Only the upstream we asked, answering the question we asked.
    if (rinfo.port !== p.up.port || rinfo.address !== p.up.host || !(msg[2] & 0x80) || !sameQuestion(msg, p.query, p.qEnd)) {
      this.st.mismatched++;
      return;
    }
    this.pending.delete(key);
    clearTimeout(p.timer);
    p.resolve(msg);
  }

  private udp(up: Upstream, query: Buffer, qEnd: number, timeoutMs: number, job: Job): Promise<Buffer | null> {
    this.st.udpQueries++;
    return new Promise((resolve) => {
      let sock: dgram.Socket;
      let key: number;
      try {
        const s = this.socket(up.family);
        sock = s.sock;
        let id: number;
        let tries = 0;
        do {
          id = this.random16();
          key = s.index * 65536 + id;
        } while (this.pending.has(key) && ++tries < 16);
        if (this.pending.has(key)) return resolve(null);
        const q = Buffer.from(query);
        q.writeUInt16BE(id, 0);
        const timer = setTimeout(() => {
          this.pending.delete(key);
          this.st.timeouts++;
          resolve(null);
        }, timeoutMs);
        this.pending.set(key, { resolve, timer, up, query, qEnd });
        job.abort = () => {
          if (this.pending.get(key)?.timer !== timer) return;
          this.pending.delete(key);
          clearTimeout(timer);
          resolve(null);
        };
        sock.send(q, up.port, up.host, (err) => {
          if (err && this.pending.get(key)?.timer === timer) {
            this.st.errors++;
            this.pending.delete(key);
            clearTimeout(timer);
            resolve(null);
          }
        });
      } catch (e) {
        this.st.errors++;
        this.log(`forward to ${up.text}: ${(e as Error).message}`);
        resolve(null);
      }
    });
  }

  private tcp(up: Upstream, query: Buffer, qEnd: number, timeoutMs: number, job: Job): Promise<Buffer | null> {
    this.st.tcpQueries++;
    return new Promise((resolve) => {
      let done = false;
      let buf: Buffer = Buffer.alloc(0);
      const id = query.readUInt16BE(0);
      const s = net.connect({ host: up.host, port: up.port });
      this.tcpSockets.add(s);
      const finish = (b: Buffer | null) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.tcpSockets.delete(s);
        s.destroy();
        resolve(b);
      };
      const timer = setTimeout(() => {
        this.st.timeouts++;
        finish(null);
      }, timeoutMs);
      job.abort = () => finish(null);
      s.on('error', () => {
        this.st.errors++;
        finish(null);
      });
      s.on('close', () => finish(null));
      s.on('connect', () => {
        const frame = Buffer.allocUnsafe(2 + query.length);
        frame.writeUInt16BE(query.length, 0);
        query.copy(frame, 2);
        s.write(frame);
      });
      s.on('data', (d: Buffer) => {
        buf = buf.length ? Buffer.concat([buf, d]) : d;
        while (buf.length >= 2) {
          const len = buf.readUInt16BE(0);
          if (buf.length < 2 + len) break;
          const msg = buf.subarray(2, 2 + len);
          buf = buf.subarray(2 + len);
          if (msg.length >= 12 && msg.readUInt16BE(0) === id && msg[2] & 0x80 && sameQuestion(msg, query, qEnd)) {
            return finish(Buffer.from(msg));
          }
          this.st.mismatched++;
        }
      });
    });
  }

  /**
   * Asks the upstreams in turn; resolves with the first usable answer (raw bytes; its id is whatever we used:
   * the caller writes the client's id back), the last SERVFAIL/REFUSED if all failed that way, or null.
   * `qEnd` ends the question in `query`.
   */
  private setCount(source: string, from: number, to: number): void {
    if (from > 0) {
      const b = this.buckets.get(from)!;
      b.delete(source);
      if (!b.size) this.buckets.delete(from);
    }
    if (to > 0) {
      let b = this.buckets.get(to);
      if (!b) this.buckets.set(to, (b = new Set()));
      b.add(source);
    }
    if (to > this.top) this.top = to;
    while (this.top > 0 && !this.buckets.has(this.top)) this.top--;
  }

  /** Gives up `job`'s slot (finished, or evicted). */
  private release(job: Job): void {
    if (!job.holding) return;
    job.holding = false;
    const list = this.jobs.get(job.source)!;
    const i = list.indexOf(job); // the oldest are first: usually found at once
    if (i >= 0) list.splice(i, 1);
    this.setCount(job.source, list.length + 1, list.length);
    if (!list.length) this.jobs.delete(job.source);
    this.inflight--;
    this.st.inflight = this.inflight;
  }

  /** A slot for a query of `source`, or null: fairness between clients, so that one flooding source (or a few)
   *  cannot take every slot while an upstream stalls and make every container's lookups fail. */
  private acquire(source: string): Job | null {
    const mine = this.jobs.get(source);
    const n = mine?.length ?? 0;
    if (n >= this.maxPerSource) return null;
    if (this.inflight >= this.maxInflight) {
      // Full: the oldest query of the source holding the most gives way, if it holds more than we would.
      if (this.top <= n + 1) return null;
      const victimSource = this.buckets.get(this.top)!.values().next().value as string;
      const victim = this.jobs.get(victimSource)![0];
      this.release(victim);
      this.st.evicted++;
      victim.abort?.();
    }
    const job: Job = { source, holding: true, abort: null };
    if (mine) mine.push(job);
    else this.jobs.set(source, [job]);
    this.setCount(source, n, n + 1);
    this.inflight++;
    this.st.inflight = this.inflight;
    return job;
  }

  /**
   * Asks the upstreams in turn; resolves with the first usable answer (raw bytes; its id is whatever we used:
   * the caller writes the client's id back), the last SERVFAIL/REFUSED if all failed that way, or null (also at
   * once when `source`, the client's address, has no slot: see acquire). `qEnd` ends the question in `query`.
   */
  async forward(query: Buffer, qEnd: number, upstreams: Upstream[], viaTcp: boolean, source = ''): Promise<Buffer | null> {
    if (this.closed || upstreams.length === 0) return null;
    const job = this.acquire(source);
    if (!job) {
      this.st.overloaded++;
      return null;
    }
    try {
      const deadline = Date.now() + this.budget;
      const per = Math.max(250, Math.floor(this.budget / upstreams.length));
      let last: Buffer | null = null;
      for (let i = 0; i < upstreams.length && !this.closed && job.holding; i++) {
        const up = upstreams[i];
        const remaining = deadline - Date.now();
        if (remaining <= 0) break;
        const t = i === upstreams.length - 1 ? remaining : Math.min(per, remaining);
        let resp = viaTcp ? await this.tcp(up, query, qEnd, t, job) : await this.udp(up, query, qEnd, t, job);
        if (!job.holding) return null; // evicted while waiting
        if (resp && !viaTcp && isTruncated(resp)) {
          this.st.truncatedRetries++;
          const left = deadline - Date.now();
          const full = left > 0 ? await this.tcp(up, query, qEnd, Math.max(left, 250), job) : null;
          if (!job.holding) return null;
          if (full) resp = full;
        }
        if (!resp) continue;
        const rcode = resp[3] & 15;
        if ((rcode === 2 || rcode === 5) && i < upstreams.length - 1) {
          last = resp;
          continue;
        }
        return resp;
      }
      return last;
    } finally {
      this.release(job);
    }
  }

  close(): void {
    this.closed = true;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.resolve(null);
    }
    this.pending.clear();
    for (const s of this.tcpSockets) s.destroy();
    this.tcpSockets.clear();
    for (const fam of [4, 6] as const) {
      for (const s of this.pools[fam]) {
        try {
          s?.close();
        } catch {
          /* already closed */
        }
      }
      this.pools[fam] = [];
    }
  }
}
