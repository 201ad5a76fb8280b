// The resolver's sockets: one UDP socket and one TCP listener on each user-defined network's gateway address
// (never 0.0.0.0: the address a query arrived on tells which network asked). setView swaps the index in one
// assignment and rebinds only the addresses that came or went.
import dgram from 'node:dgram';
import net from 'node:net';
import { answerOn, applyDelta as applyDeltaToIndex, indexView, replaceUpstreams, upstreamsFor, type DnsDelta, type DnsView, type IndexedView, type NetIndex } from './answer.js';
import { Forwarder, type ForwarderStats } from './forward.js';
import { RCODE_SERVFAIL, emptyReply, newParsedQuery, udpLimitClient, type ParsedQuery } from './wire.js';

export interface ResolverOptions {
  /** Port on every gateway address. Default 53. */
  port?: number;
  /** One line per problem (the process entry sends it to stderr). */
  log?: (msg: string) => void;
  /** TTL of our own answers, seconds. Default DEFAULT_TTL (5). */
  ttl?: number;
  /** Total time to get an answer from the upstreams. Default 2000 ms. */
  forwardBudgetMs?: number;
  /** A TCP connection that sends nothing (and waits for no answer) for this long is closed. Default 10000 ms. */
  tcpIdleMs?: number;
  /** A whole TCP message (its 2-byte length and the query) must arrive within this long: the first one counted
   *  from the connection's start, each later one from its first byte. Default 3000 ms. */
  tcpMessageMs?: number;
  /** Most TCP connections at once per address. Default 256. */
  maxTcpConnections?: number;
  /** Most TCP connections at once from one source address (per listening address). Default 16. */
  maxTcpPerSource?: number;
  /** Most queries of one source waiting for upstreams at once. Default 256 (of the forwarder's 4096). */
  maxInflightPerSource?: number;
  /** Most queries waiting for upstreams at once, all sources. Default 4096. */
  maxInflight?: number;
  /** Queries one TCP connection may have waiting for upstreams before we stop reading from it. Default 32. */
  maxTcpPending?: number;
  /** Reply bytes one TCP connection may have waiting to be sent (a client that does not read) before we stop
   *  reading its queries. Default 256 KiB. */
  maxTcpBuffered?: number;
  /** Retry interval for addresses that could not be bound (e.g. the bridge address is not there yet). */
  rebindMs?: number;
}

export interface ResolverStats {
  udpQueries: number;
  tcpQueries: number;
  tcpConnections: number;
  /** Replies by rcode: noerror, formerr, servfail, nxdomain, notimp, refused, other. */
  replies: Record<string, number>;
  local: number;
  forwarded: number;
  forwardFailures: number;
  dropped: number;
  truncated: number;
  errors: number;
  /** TCP connections refused at once (their source already held its share), taken back from the source holding
   *  the most when all slots were full, and closed because a message did not arrive in time. */
  tcpRejected: number;
  tcpEvicted: number;
  tcpTimeouts: number;
  forwarder: ForwarderStats;
  listeners: Array<{ address: string; network: string; udp: boolean; tcp: boolean }>;
  generation: number;
}

const RCODES = ['noerror', 'formerr', 'servfail', 'nxdomain', 'notimp', 'refused'];

const syncLookup = (address: string, _opts: unknown, cb: (err: Error | null, address: string, family: number) => void) =>
  cb(null, address, 4);

class Listener {
  udp: dgram.Socket | null = null;
  tcp: net.Server | null = null;
  conns = new Set<net.Socket>();
  /** Open TCP connections by source address, oldest first (per-source cap, fair eviction). */
  bySource = new Map<string, net.Socket[]>();
  net: NetIndex | null = null;
  closed = false;
  retry: NodeJS.Timeout | null = null;
  failures = 0;
  lastProblem = '';
  constructor(readonly address: string) {}
}

export class Resolver {
  private readonly port: number;
  private readonly log: (msg: string) => void;
  private readonly opts: ResolverOptions;
  private view: IndexedView;
  private listeners = new Map<string, Listener>();
  private forwarder: Forwarder;
  private chain: Promise<void> = Promise.resolve();
  private closed = false;
  private hostUpstreams: string[] | null = null;
  /** Reused for every synchronous answer; forwarding copies what it needs. */
  private q: ParsedQuery = newParsedQuery();
  private st = {
    udpQueries: 0, tcpQueries: 0, tcpConnections: 0, local: 0, forwarded: 0, forwardFailures: 0, dropped: 0,
    truncated: 0, errors: 0, replies: [0, 0, 0, 0, 0, 0, 0], tcpRejected: 0, tcpEvicted: 0, tcpTimeouts: 0,
  };

  constructor(opts: ResolverOptions = {}) {
    this.opts = opts;
    this.port = opts.port ?? 53;
    this.log = opts.log ?? (() => {});
    this.view = indexView({ networks: [], entries: [], upstreams: [] }, { ttl: opts.ttl, selfPort: this.port });
    this.forwarder = new Forwarder({
      budgetMs: opts.forwardBudgetMs, log: this.log, maxInflight: opts.maxInflight, maxPerSource: opts.maxInflightPerSource,
    });
  }

  /** Replaces the data (atomically: one assignment) and binds/unbinds gateway addresses as needed. Resolves once
   *  every new address was tried once; addresses that failed are retried in the background. */
  setView(v: DnsView): Promise<void> {
    const run = this.chain.then(() => this.applyView(v));
    this.chain = run.catch(() => {});
    return run;
  }

  /** Applies an incremental change to the current index in place (after any pending setView). */
  applyDelta(d: DnsDelta): Promise<void> {
    const run = this.chain.then(() => {
      if (this.closed) throw new Error('resolver closed');
      for (const w of applyDeltaToIndex(this.view, d)) this.log(`view: ${w}`);
    });
    this.chain = run.catch(() => {});
    return run;
  }

  /** The host's upstreams from now on, instead of the view's (the process follows the host's resolv.conf and
   *  calls this whenever it changes). Takes effect for the next query; later views keep it. */
  setHostUpstreams(list: string[]): void {
    this.hostUpstreams = [...list];
    for (const w of replaceUpstreams(this.view, list)) this.log(`upstreams: ${w}`);
  }

  /** Generation of the data currently served. */
  get generation(): number {
    return this.view.generation;
  }

  private async applyView(v: DnsView): Promise<void> {
    if (this.closed) throw new Error('resolver closed');
    const idx = indexView(this.hostUpstreams ? { ...v, upstreams: this.hostUpstreams } : v, { ttl: this.opts.ttl, selfPort: this.port });
    for (const w of idx.warnings) this.log(`view: ${w}`);
    this.view = idx;
    for (const [addr, l] of this.listeners) {
      const ni = idx.byGateway.get(addr);
      if (ni) l.net = ni;
      else {
        this.listeners.delete(addr);
        this.closeListener(l);
      }
    }
    const binds: Promise<void>[] = [];
    for (const [addr, ni] of idx.byGateway) {
      if (this.listeners.has(addr)) continue;
      const l = new Listener(addr);
      l.net = ni;
      this.listeners.set(addr, l);
      binds.push(this.bind(l));
    }
    await Promise.all(binds);
  }

  private scheduleRebind(l: Listener): void {
    if (l.closed || l.retry) return;
    l.retry = setTimeout(() => {
      l.retry = null;
      if (!l.closed) void this.bind(l);
    }, this.opts.rebindMs ?? 1000);
  }

  private async bind(l: Listener): Promise<void> {
    const problems: string[] = [];
    if (!l.udp) {
      try {
        l.udp = await this.bindUdp(l);
      } catch (e) {
        problems.push(`udp: ${(e as Error).message}`);
      }
    }
    if (!l.tcp) {
      try {
        l.tcp = await this.bindTcp(l);
      } catch (e) {
        problems.push(`tcp: ${(e as Error).message}`);
      }
    }
    if (l.closed) {
      this.closeListener(l);
      return;
    }
    if (problems.length) {
      // Log the first failure, any change, and then once a minute: an address that never comes must not flood
      // the log.
      const problem = problems.join('; ');
      l.failures++;
      if (problem !== l.lastProblem || l.failures % 60 === 1) {
        this.log(`cannot listen on ${l.address}:${this.port} (${problem}); retrying every ${this.opts.rebindMs ?? 1000} ms`);
      }
      l.lastProblem = problem;
      this.scheduleRebind(l);
    } else if (l.failures) {
      this.log(`listening on ${l.address}:${this.port} after ${l.failures} failed attempts`);
      l.failures = 0;
      l.lastProblem = '';
    }
  }

  private bindUdp(l: Listener): Promise<dgram.Socket> {
    return new Promise((resolve, reject) => {
      const s = dgram.createSocket({ type: l.address.includes(':') ? 'udp6' : 'udp4', lookup: syncLookup as never });
      const onErr = (e: Error) => {
        s.close();
        reject(e);
      };
      s.once('error', onErr);
      s.bind({ address: l.address, port: this.port, exclusive: true }, () => {
        s.off('error', onErr);
        s.on('error', (e) => this.log(`udp ${l.address}: ${e.message}`));
        try {
          s.setRecvBufferSize(4 << 20);
          s.setSendBufferSize(1 << 20);
        } catch {
          /* capped by the kernel: fine */
        }
        s.on('message', (msg, rinfo) => this.onUdp(l, s, msg, rinfo));
        resolve(s);
      });
    });
  }

  private bindTcp(l: Listener): Promise<net.Server> {
    return new Promise((resolve, reject) => {
      // No srv.maxConnections: onTcp enforces the limits itself, per source and in all, so that one source
      // cannot take every slot (the kernel-side cap would turn away everyone alike).
      const srv = net.createServer((c) => this.onTcp(l, c));
      const onErr = (e: Error) => {
        srv.close();
        reject(e);
      };
      srv.once('error', onErr);
      srv.listen({ host: l.address, port: this.port, exclusive: true }, () => {
        srv.off('error', onErr);
        srv.on('error', (e) => this.log(`tcp ${l.address}: ${e.message}`));
        resolve(srv);
      });
    });
  }

  private closeListener(l: Listener): void {
    l.closed = true;
    if (l.retry) clearTimeout(l.retry);
    l.retry = null;
    try {
      l.udp?.close();
    } catch {
      /* already closed */
    }
    l.udp = null;
    l.tcp?.close();
    l.tcp = null;
    for (const c of l.conns) c.destroy();
    l.conns.clear();
    l.bySource.clear();
  }

  private untrack(l: Listener, c: net.Socket, src: string): void {
    if (!l.conns.delete(c)) return;
    const list = l.bySource.get(src);
    if (!list) return;
    const i = list.indexOf(c);
    if (i >= 0) list.splice(i, 1);
    if (!list.length) l.bySource.delete(src);
  }

  /** Admits a new TCP connection from `src`, or says no. A source gets at most maxTcpPerSource connections; when
   *  all maxTcpConnections are taken, the oldest connection of the source holding the most is closed to make
   *  room, as long as that source holds more than the newcomer would: a slowloris from one address (or a few)
   *  only ever ties up its own share, never every container's TCP queries. */
  private admitTcp(l: Listener, c: net.Socket, src: string): boolean {
    const mine = l.bySource.get(src);
    const n = mine?.length ?? 0;
    if (n >= (this.opts.maxTcpPerSource ?? 16)) return false;
    if (l.conns.size >= (this.opts.maxTcpConnections ?? 256)) {
      let top: net.Socket[] | undefined;
      let topSrc = '';
      for (const [s, list] of l.bySource) {
        if (!top || list.length > top.length) {
          top = list;
          topSrc = s;
        }
      }
      if (!top || top.length <= n + 1) return false;
      const victim = top[0];
      this.untrack(l, victim, topSrc);
      victim.destroy();
      this.st.tcpEvicted++;
    }
    l.conns.add(c);
    if (mine) mine.push(c);
    else l.bySource.set(src, [c]);
    return true;
  }

  private count(reply: Buffer): void {
    const rc = reply[3] & 15;
    this.st.replies[rc < 6 ? rc : 6]++;
  }

  private onUdp(l: Listener, s: dgram.Socket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    this.st.udpQueries++;
    const ni = l.net;
    if (!ni) return;
    const view = this.view;
    let out: Buffer | 'forward' | null;
    try {
      out = answerOn(view, ni, msg, rinfo.address, false, this.q);
    } catch (e) {
      this.st.errors++;
      this.log(`answer: ${(e as Error).stack ?? e}`);
      return;
    }
    if (out === null) {
      this.st.dropped++;
      return;
    }
    if (out === 'forward') {
      this.forwardUdp(view, l, s, msg, rinfo);
      return;
    }
    this.st.local++;
    if (out[2] & 0x02) this.st.truncated++;
    this.count(out);
    s.send(out, rinfo.port, rinfo.address);
  }

  private forwardUdp(view: IndexedView, l: Listener, s: dgram.Socket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const q = { ...this.q };
    this.st.forwarded++;
    this.forwarder
      .forward(msg, q.qEnd, upstreamsFor(view, rinfo.address), false, rinfo.address)
      .then((resp) => {
        let out: Buffer;
        if (!resp) {
          this.st.forwardFailures++;
          out = emptyReply(msg, q, RCODE_SERVFAIL, false);
        } else if (resp.length > udpLimitClient(q)) {
          // Came over TCP from the upstream and does not fit: tell the client to ask us over TCP.
          this.st.truncated++;
          out = emptyReply(msg, q, resp[3] & 15, false);
          out[2] |= 0x02;
        } else {
          out = resp;
          out.writeUInt16BE(q.id, 0);
        }
        this.count(out);
        // The address may have gone (setView) while the upstream thought.
        if (l.udp === s) s.send(out, rinfo.port, rinfo.address, () => {});
      })
      .catch((e) => {
        this.st.errors++;
        this.log(`forward: ${(e as Error).message}`);
      });
  }

  private onTcp(l: Listener, c: net.Socket): void {
    this.st.tcpConnections++;
    const asker = c.remoteAddress ?? '';
    if (l.closed) {
      c.destroy();
      return;
    }
    c.on('error', () => {});
    if (!this.admitTcp(l, c, asker)) {
      this.st.tcpRejected++;
      c.destroy();
      return;
    }
    const maxPending = this.opts.maxTcpPending ?? 32;
    const maxBuffered = this.opts.maxTcpBuffered ?? 256 * 1024;
    const messageMs = this.opts.tcpMessageMs ?? 3000;
    let buf: Buffer | null = null;
    let pending = 0;
    let paused = false;
    // The whole of each message must arrive in time: the idle timer alone restarts on every byte, so a client
    // feeding one byte every few seconds would hold its connection forever.
    let msgTimer: NodeJS.Timeout | null = null;
    const armMessage = () => {
      if (msgTimer) return;
      msgTimer = setTimeout(() => {
        msgTimer = null;
        // While paused it is we who do not read: not the client's fault. Look again later.
        if (paused) return armMessage();
        this.st.tcpTimeouts++;
        c.destroy();
      }, messageMs);
    };
    const disarmMessage = () => {
      if (msgTimer) clearTimeout(msgTimer);
      msgTimer = null;
    };
    armMessage(); // the first message, counted from the connection's start
    c.setNoDelay(true);
    c.setTimeout(this.opts.tcpIdleMs ?? 10000, () => c.destroy());
    c.on('close', () => {
      disarmMessage();
      this.untrack(l, c, asker);
    });
    const send = (reply: Buffer) => {
      if (c.destroyed) return;
      const frame = Buffer.allocUnsafe(2 + reply.length);
      frame.writeUInt16BE(reply.length, 0);
      reply.copy(frame, 2);
      c.write(frame);
    };
    const handle = (msg: Buffer): boolean => {
      this.st.tcpQueries++;
      const ni = l.net;
      if (!ni) return false;
      const view = this.view;
      const out = answerOn(view, ni, msg, asker, true, this.q);
      if (out === null) {
        this.st.dropped++;
        return false;
      }
      if (out !== 'forward') {
        this.st.local++;
        this.count(out);
        send(out);
        return true;
      }
      const q = { ...this.q };
      this.st.forwarded++;
      pending++;
      this.forwarder
        .forward(Buffer.from(msg), q.qEnd, upstreamsFor(view, asker), true, asker)
        .then((resp) => {
          let out: Buffer;
          if (!resp) {
            this.st.forwardFailures++;
            out = emptyReply(msg, q, RCODE_SERVFAIL, false);
          } else {
            out = resp;
            out.writeUInt16BE(q.id, 0);
          }
          this.count(out);
          send(out);
        })
        .catch((e) => {
          this.st.errors++;
          this.log(`forward: ${(e as Error).message}`);
        })
        .finally(() => {
          pending--;
          flow();
        });
      return true;
    };
    // Flow control: stop taking queries while too many wait for upstreams or too many reply bytes wait for a
    // client that does not read (without it, pipelined queries from a client that never reads would make us
    // buffer replies without bound); go on when both are back under their limits. Queries already received
    // stay in `buf` meanwhile.
    const flow = () => {
      if (c.destroyed) return;
      const stop = pending >= maxPending || c.writableLength > maxBuffered;
      if (stop && !paused) {
        paused = true;
        c.pause();
      } else if (!stop && paused) {
        paused = false;
        consume();
        if (!paused) c.resume();
      }
    };
    c.on('drain', flow);
    const consume = () => {
      try {
        while (!paused && buf && buf.length >= 2) {
          const len = buf.readUInt16BE(0);
          if (buf.length < 2 + len) break;
          const msg = buf.subarray(2, 2 + len);
          buf = buf.subarray(2 + len);
          disarmMessage(); // one message complete: the next one's time starts with its first byte
          // Garbage on a stream cannot be resynchronised: close.
          if (!handle(msg)) {
            c.destroy();
            return;
          }
          flow();
        }
        if (!buf || !buf.length) return;
        armMessage();
        // Keep only the unread tail, not the whole chunk it came in.
        if (buf.byteOffset !== 0) buf = Buffer.from(buf);
      } catch (e) {
        this.st.errors++;
        this.log(`tcp: ${(e as Error).stack ?? e}`);
        c.destroy();
      }
    };
    c.on('data', (d: Buffer) => {
      buf = buf && buf.length ? Buffer.concat([buf, d]) : d;
      consume();
    });
  }

  /** Addresses currently served (bound on both UDP and TCP). */
  addresses(): string[] {
    return [...this.listeners.values()].filter((l) => l.udp && l.tcp).map((l) => l.address);
  }

  stats(): ResolverStats {
    const replies: Record<string, number> = {};
    this.st.replies.forEach((n, i) => (replies[RCODES[i] ?? 'other'] = n));
    return {
      udpQueries: this.st.udpQueries, tcpQueries: this.st.tcpQueries, tcpConnections: this.st.tcpConnections,
      replies, local: this.st.local, forwarded: this.st.forwarded, forwardFailures: this.st.forwardFailures,
      dropped: this.st.dropped, truncated: this.st.truncated, errors: this.st.errors,
      tcpRejected: this.st.tcpRejected, tcpEvicted: this.st.tcpEvicted, tcpTimeouts: this.st.tcpTimeouts,
      forwarder: { ...this.forwarder.st },
      listeners: [...this.listeners.values()].map((l) => ({
        address: l.address, network: l.net?.name ?? '', udp: !!l.udp, tcp: !!l.tcp,
      })),
      generation: this.view.generation,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.chain.catch(() => {});
    const servers: Promise<void>[] = [];
    for (const l of this.listeners.values()) {
      const tcp = l.tcp;
      if (tcp) servers.push(new Promise((r) => tcp.close(() => r())));
      l.tcp = null;
      this.closeListener(l);
    }
    this.listeners.clear();
    this.forwarder.close();
    await Promise.all(servers);
  }
}
