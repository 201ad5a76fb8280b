// Watches that never lose an event: a view of every key under a prefix, kept equal to etcd's.
//
// start() lists the prefix at revision R (an 'add' per key), then watches from R+1. After a disconnect the
// watch is resumed from the last revision it delivered (etcd3 re-creates it; the revision it resumes from is
// set here, see `resumeFrom`); when that revision was compacted meanwhile, etcd cancels the watch and the view
// is rebuilt from a fresh list, the differences delivered as ordinary add/update/remove events (a consumer
// never has to tell a resync from live changes). Values that do not validate are reported, not delivered.
import type { Etcd3, Watcher, IKeyValue } from 'etcd3';
import { decode, type EndpointRecord, type HostRecord, type Kinds } from './values.js';

export interface WatchDeps {
  client: Etcd3;
  list(prefix: string): Promise<{ kvs: IKeyValue[]; revision: string }>;
  onError(e: unknown): void;
}

export interface Change<T> {
  type: 'add' | 'update' | 'remove';
  key: string;
  value: T;
  prev?: T;
}

export type NetworkEvent =
  | { type: 'endpoint-add'; endpoint: EndpointRecord }
  | { type: 'endpoint-update'; endpoint: EndpointRecord; prev: EndpointRecord }
  | { type: 'endpoint-remove'; endpoint: EndpointRecord }
  | { type: 'peer-add' | 'peer-remove'; host: string; underlay: string };

export type HostEvent = { type: 'host-up' | 'host-update' | 'host-down'; host: HostRecord };

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface WatchResponse {
  header: { revision: string };
  events: Array<{ type: string; kv: IKeyValue; prev_kv?: IKeyValue }>;
}

export class PrefixWatch<T> {
  /** key -> value: what etcd holds under the prefix, as of `revision`. */
  readonly view = new Map<string, T>();
  /** The last revision the view reflects. */
  revision = 0;
  /** Whether the watch stream is up now. */
  connected = false;
  /** How many times the view was rebuilt from a list (a compacted revision, a cancelled watch). */
  resyncs = 0;
  onClose?: () => void;
  private watcher: Watcher | null = null;
  private closed = false;
  private recovering = false;

  constructor(
    private readonly deps: WatchDeps,
    readonly prefix: string,
    private readonly kind: keyof Kinds,
    private readonly emit: (c: Change<T>) => void,
    private readonly same: (a: T, b: T) => boolean = (a, b) => JSON.stringify(a) === JSON.stringify(b),
  ) {}

  async start(): Promise<void> {
    await this.load();
    this.watch();
  }

  private deliver(c: Change<T>): void {
    try {
      this.emit(c);
    } catch (e) {
      this.deps.onError(e);
    }
  }

  private decode(kv: IKeyValue): T | null {
    try {
      return decode(this.kind, kv.key.toString(), kv.value) as T;
    } catch (e) {
      this.deps.onError(e);
      return null;
    }
  }

  /** Lists the prefix and makes the view equal to it, delivering the differences. */
  private async load(): Promise<void> {
    const { kvs, revision } = await this.deps.list(this.prefix);
    const next = new Map<string, T>();
    for (const kv of kvs) {
      const v = this.decode(kv);
      if (v !== null) next.set(kv.key.toString(), v);
    }
    for (const [key, prev] of [...this.view]) {
      if (!next.has(key)) {
        this.view.delete(key);
        this.deliver({ type: 'remove', key, value: prev });
      }
    }
    for (const [key, v] of next) this.put(key, v);
    this.revision = Number(revision);
  }

  private put(key: string, v: T): void {
    const prev = this.view.get(key);
    this.view.set(key, v);
    if (prev === undefined) this.deliver({ type: 'add', key, value: v });
    else if (!this.same(prev, v)) this.deliver({ type: 'update', key, value: v, prev });
  }

  /** etcd3 resumes a watch from the revision after the last response's header, which skips events when a
   *  catch-up spans several responses: resume from the last event delivered instead. */
  private resumeFrom(w: Watcher): void {
    (w as unknown as { request: { start_revision?: string } }).request.start_revision = String(this.revision + 1);
  }

  private watch(): void {
    const w = this.deps.client.watch().prefix(this.prefix).withPreviousKV().startRevision(String(this.revision + 1)).watcher();
    this.watcher = w;
    w.on('connected', () => {
      this.connected = true;
      this.resumeFrom(w);
    });
    w.on('disconnected', () => {
      this.connected = false;
    });
    w.on('data', (res: WatchResponse) => {
      if (this.watcher !== w) return;
      let rev = this.revision;
      for (const ev of res.events) {
        const key = ev.kv.key.toString();
        if (ev.type === 'Delete') {
          const prev = this.view.get(key);
          if (prev !== undefined) {
            this.view.delete(key);
            this.deliver({ type: 'remove', key, value: prev });
          }
        } else {
          const v = this.decode(ev.kv);
          if (v !== null) this.put(key, v);
        }
        rev = Math.max(rev, Number(ev.kv.mod_revision));
      }
      // A response without events is a progress notification: everything up to its revision was sent.
      this.revision = res.events.length ? rev : Math.max(rev, Number(res.header.revision));
      this.resumeFrom(w);
    });
    w.on('error', (e: unknown) => {
      // The watch was cancelled by etcd: its revision compacted, most often.
      this.connected = false;
      if (this.watcher === w) void this.recover(e);
    });
  }

  private async recover(e: unknown): Promise<void> {
    if (this.recovering || this.closed) return;
    this.recovering = true;
    const old = this.watcher;
    this.watcher = null;
    void old?.cancel().catch(() => undefined);
    if (!/compacted/i.test(String((e as Error)?.message ?? e))) this.deps.onError(e);
    let delay = 100;
    try {
      while (!this.closed) {
        try {
          await this.load();
          this.resyncs++;
          this.watch();
          return;
        } catch {
          await sleep(delay);
          delay = Math.min(delay * 2, 2000);
        }
      }
    } finally {
      this.recovering = false;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const w = this.watcher;
    this.watcher = null;
    this.onClose?.();
    if (!w) return;
    // A cancel needs etcd's answer: not waited for longer than 2 s (etcd may be gone).
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([w.cancel().catch(() => undefined), new Promise<void>((r) => { timer = setTimeout(r, 2000); })]);
    clearTimeout(timer);
  }
}

/** A network's endpoints, and the peers (hosts with at least one endpoint there) derived from them. */
export class NetworkWatch {
  private readonly inner: PrefixWatch<EndpointRecord>;
  /** host -> its underlay address and how many endpoints it has on the network. */
  readonly peers = new Map<string, { underlay: string; count: number }>();
  onClose?: () => void;

  constructor(deps: WatchDeps, prefix: string, private readonly onChange: (ev: NetworkEvent) => void) {
    this.inner = new PrefixWatch<EndpointRecord>(deps, prefix, 'endpoint', (c) => this.handle(c));
    this.deps = deps;
  }

  private readonly deps: WatchDeps;

  get endpoints(): EndpointRecord[] {
    return [...this.inner.view.values()];
  }

  get revision(): number {
    return this.inner.revision;
  }

  get connected(): boolean {
    return this.inner.connected;
  }

  get resyncs(): number {
    return this.inner.resyncs;
  }

  start(): Promise<void> {
    return this.inner.start();
  }

  private send(ev: NetworkEvent): void {
    try {
      this.onChange(ev);
    } catch (e) {
      this.deps.onError(e);
    }
  }

  private peerIn(e: EndpointRecord): void {
    const p = this.peers.get(e.host);
    if (p && p.underlay === e.underlay) {
      p.count++;
      return;
    }
    if (p) this.send({ type: 'peer-remove', host: e.host, underlay: p.underlay });
    this.peers.set(e.host, { underlay: e.underlay, count: (p?.count ?? 0) + 1 });
    this.send({ type: 'peer-add', host: e.host, underlay: e.underlay });
  }

  private peerOut(e: EndpointRecord): void {
    const p = this.peers.get(e.host);
    if (!p) return;
    if (--p.count > 0) return;
    this.peers.delete(e.host);
    this.send({ type: 'peer-remove', host: e.host, underlay: p.underlay });
  }

  private handle(c: Change<EndpointRecord>): void {
    if (c.type === 'add') {
      this.peerIn(c.value);
      this.send({ type: 'endpoint-add', endpoint: c.value });
    } else if (c.type === 'remove') {
      this.send({ type: 'endpoint-remove', endpoint: c.value });
      this.peerOut(c.value);
    } else {
      const prev = c.prev!;
      if (prev.host !== c.value.host || prev.underlay !== c.value.underlay) {
        this.peerIn(c.value);
        this.peerOut(prev);
      }
      this.send({ type: 'endpoint-update', endpoint: c.value, prev });
    }
  }

  async close(): Promise<void> {
    this.onClose?.();
    await this.inner.close();
  }
}
