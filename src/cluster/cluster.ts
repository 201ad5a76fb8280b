// nsnet's cluster coordination: what the hosts of an overlay network share, kept in etcd (keys.ts has the key
// layout, values.ts the values, alloc.ts the allocation arithmetic). No kernel access: the overlay driver takes
// what this gives (networks, addresses, the endpoint registry, watches) and programs the kernel.
//
//   const c = await Cluster.connect('etcd://10.0.0.1:2379,etcd://10.0.0.2:2379', { hostId, advertise, ttl: 10 });
//   await c.join();                                 // host record bound to a lease; keep-alive and heartbeat
//   await c.createNetwork({ name: 'web' });        // name unique cluster-wide, a VNI, a subnet (CAS)
//   const ip = await c.allocateAddress('web', epId);
//   await c.registerEndpoint('web', { id: epId, name: 'api', ips: [ip] });
//   const w = await c.watchNetwork('web', (ev) => ...);   // endpoint and peer add/update/remove
//   await c.leave();                                // or close(): then the lease expires after the TTL
//
// Leases: the host record, its addresses and its endpoints are bound to the host's lease. A host that stops
// renewing it (dead, cut off for longer than the TTL) loses all three at once, and the others' watches see
// the removals. When the lease is lost while the process lives (etcd unreachable for longer than the TTL),
// the Cluster joins again with a new lease and re-claims the addresses and endpoints it holds, unless another
// host took them meanwhile ('rejoined' event, with the conflicts). A restarted host does the same from its own
// store with reconcile().
//
// Every call is bounded (timeoutMs, 5 s by default): no answer means ClusterUnavailable, one line.
//
// Events: 'lease-lost'; 'rejoined' (ReconcileResult: what was kept, what another host took); 'warning' (an
// unexpected error while re-joining, retried); 'watch-error' (a value a watch could not use). Never 'error'.
import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Etcd3 } from 'etcd3';
import { UserError, showValue } from '../util/errors.js';
import { Addr, Prefix } from '../util/addr.js';
import { validateNetworkName, validateAlias, validateLabel } from '../util/validate.js';
import { Keys, checkSegment, DEFAULT_PREFIX } from './keys.js';
import { decode, encode, type AddressRecord, type EndpointRecord, type HostRecord, type NetworkRecord } from './values.js';
import { checkStaticAddress, macFor, pickAddress, pickSubnet, pickSubnet6, pickVni, planSubnet } from './alloc.js';
import { ClusterUnavailable, NotJoined, parseEndpoints } from './errors.js';
import { bounded, cmp, op, openClient, txn, type IKeyValue } from './etcd.js';
import { NetworkWatch, PrefixWatch, type HostEvent, type NetworkEvent } from './watch.js';

export interface ClusterOptions {
  /** This host's id: one key segment ([A-Za-z0-9_.-]), unique in the cluster. */
  hostId: string;
  /** The underlay address other hosts reach this one at (VXLAN's remote). */
  advertise: string;
  /** Lease TTL in seconds (default 10): how long a silent host keeps its addresses and endpoints. */
  ttl?: number;
  /** Key prefix (default /nsnet/v1). */
  prefix?: string;
  /** Bound on every etcd call, ms (default 5000). */
  timeoutMs?: number;
  /** Heartbeat period, ms: the keep-alive and the host record's heartbeat time (default and at most a third
   *  of the TTL). */
  heartbeatMs?: number;
  labels?: Record<string, string>;
}

export interface NetworkSpec {
  name: string;
  subnet?: string | null;
  gateway?: string | null;
  ipv6?: boolean;
  subnet6?: string | null;
  gateway6?: string | null;
  internal?: boolean;
  labels?: Record<string, string>;
  /** Blocks the picked subnet must not overlap (the caller's host routes, its bridge networks). */
  avoid?: readonly string[];
}

export interface EndpointSpec {
  id: string;
  name: string;
  aliases?: readonly string[];
  /** Default: 02:42 + the first address (alloc.ts macFor). */
  mac?: string;
  ips: readonly string[];
}

export interface ReconcileResult {
  /** Addresses that were still this host's, now bound to the current lease, or free and claimed again. */
  kept: string[];
  /** Addresses another host holds now: the caller must give those containers new ones. */
  conflicts: Array<{ network: string; endpoint: string; ip: string; owner: string }>;
  /** Endpoints registered again. */
  endpoints: string[];
  /** This host's records in etcd that the caller no longer has, removed. */
  removed: string[];
}

interface Owned {
  network: string;
  endpoint: string;
  ip: string;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class Cluster extends EventEmitter {
  /** The etcd endpoints, http://HOST:PORT each. */
  readonly etcdEndpoints: string[];
  readonly hostId: string;
  readonly advertise: string;
  readonly ttl: number;
  readonly timeoutMs: number;
  readonly keys: Keys;
  private readonly heartbeatMs: number;
  private readonly labels: Record<string, string>;
  private leaseId: string | null = null;
  private joinedAt = 0;
  /** When the lease was last renewed (ms). */
  private renewed = 0;
  private beatTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private wanted = false;
  private rejoining: Promise<void> | null = null;
  /** What this process holds under its lease, to re-claim after the lease was lost. */
  private readonly ownedAddrs = new Map<string, Owned>();
  private readonly ownedEps = new Map<string, EndpointRecord>();
  /** Addresses picked but not yet committed by this process (concurrent allocations avoid each other). */
  private readonly pending = new Set<string>();
  private readonly watches = new Set<{ close(): Promise<void> }>();

  private constructor(readonly client: Etcd3, endpoints: string[], o: Required<Omit<ClusterOptions, 'labels' | 'heartbeatMs'>> & ClusterOptions) {
    super();
    this.etcdEndpoints = endpoints;
    this.hostId = o.hostId;
    this.advertise = o.advertise;
    this.ttl = o.ttl;
    this.timeoutMs = o.timeoutMs;
    this.keys = new Keys(o.prefix);
    this.heartbeatMs = Math.max(200, Math.min(o.heartbeatMs ?? Infinity, Math.floor((o.ttl * 1000) / 3)));
    this.labels = o.labels ?? {};
  }

  /** Connects and checks that etcd answers (within timeoutMs). Does not join. */
  static async connect(endpoints: string | readonly string[], o: ClusterOptions): Promise<Cluster> {
    const eps = parseEndpoints(endpoints);
    checkSegment('host id', o.hostId);
    const adv = Addr.tryParse(o.advertise);
    if (!adv || adv.isUnspecified() || adv.isMulticast()) throw new UserError(`invalid advertise address ${showValue(o.advertise)}: expected this host's underlay IP address`);
    const ttl = o.ttl ?? 10;
    if (!Number.isInteger(ttl) || ttl < 2 || ttl > 3600) throw new UserError(`invalid TTL ${showValue(ttl)}: expected 2..3600 seconds`);
    const timeoutMs = o.timeoutMs ?? 5000;
    for (const [k, v] of Object.entries(o.labels ?? {})) validateLabel(`${k}=${v}`);
    const client = await openClient(eps, timeoutMs);
    const c = new Cluster(client, eps, { ...o, advertise: adv.toString(), ttl, timeoutMs, prefix: o.prefix ?? DEFAULT_PREFIX });
    try {
      await c.call(() => client.maintenance.status());
    } catch (e) {
      client.close();
      throw e;
    }
    return c;
  }

  /** Runs one etcd interaction within the bound. */
  private async call<T>(f: () => Promise<T>): Promise<T> {
    if (this.closed) throw new Error('cluster: the client is closed');
    const lease = this.leaseId;
    try {
      return await bounded(this.etcdEndpoints, this.timeoutMs, f);
    } catch (e) {
      // etcd forgot our lease (it expired while we could not renew it) before the keep-alive noticed.
      if (lease && /requested lease not found/.test(String((e as Error)?.message))) {
        this.onLeaseLost(lease);
        if (!this.wanted) throw new NotJoined(this.hostId);
        throw new ClusterUnavailable(this.etcdEndpoints, null, `the lease of host ${this.hostId} expired; re-joining`);
      }
      throw e;
    }
  }

  private t(compare: Parameters<typeof txn>[1], success: Parameters<typeof txn>[2], failure: Parameters<typeof txn>[3] = []) {
    return this.call(() => txn(this.client, compare, success, failure));
  }

  private requireLease(): string {
    if (this.leaseId) return this.leaseId;
    if (this.wanted && !this.closed) throw new ClusterUnavailable(this.etcdEndpoints, null, `host ${this.hostId} lost its lease and is re-joining`);
    throw new NotJoined(this.hostId);
  }

  get joined(): boolean {
    return this.leaseId !== null;
  }

  // ---- hosts ------------------------------------------------------------------------------------------------

  private hostValue(lease: string): string {
    return encode('host', { host: this.hostId, advertise: this.advertise, joined: this.joinedAt, heartbeat: Date.now(), lease, labels: this.labels });
  }

  /** Grants a lease, writes this host's record bound to it, and keeps both alive (keep-alive, heartbeat). */
  async join(): Promise<HostRecord> {
    this.wanted = true;
    if (this.leaseId) return decode('host', this.keys.host(this.hostId), this.hostValue(this.leaseId));
    const g = await this.call(() => this.client.leaseClient.leaseGrant({ TTL: this.ttl }));
    const id = String(g.ID);
    this.joinedAt = Date.now();
    try {
      await this.t([], [op.put(this.keys.host(this.hostId), this.hostValue(id), id)]);
      if (!this.wanted || this.closed) throw new NotJoined(this.hostId); // leave() or close() meanwhile
    } catch (e) {
      await this.revoke(id).catch(() => undefined);
      throw e;
    }
    this.leaseId = id;
    this.renewed = Date.now();
    this.schedule(id);
    return decode('host', this.keys.host(this.hostId), this.hostValue(id));
  }

  private schedule(id: string, ms = this.heartbeatMs): void {
    this.beatTimer = setTimeout(() => void this.beat(id), ms);
    this.beatTimer.unref();
  }

  /**
   * One keep-alive of the lease, then the heartbeat (the host record rewritten with the time). The lease is
   * taken as lost when etcd says it expired, or when it could not be renewed for a whole TTL (etcd expired
   * it, unless a leader change extended it: joining again is right either way). etcd3's own keep-alive loop
   * is not used: it leaks an interval per reconnect (two error paths each start a new loop).
   */
  private async beat(id: string): Promise<void> {
    if (id !== this.leaseId || this.closed) return;
    try {
      const ttl = await this.keepAliveOnce(id);
      if (id !== this.leaseId) return;
      if (ttl <= 0) {
        this.onLeaseLost(id);
        return;
      }
      this.renewed = Date.now();
      const hk = this.keys.host(this.hostId);
      await this.t([cmp.lease(hk, id)], [op.put(hk, this.hostValue(id), id)]).catch(() => undefined);
    } catch {
      if (id === this.leaseId && Date.now() - this.renewed > this.ttl * 1000) {
        this.onLeaseLost(id);
        return;
      }
      // Failed (the member that was asked is marked down for a second): again soon, through another one.
      if (id === this.leaseId && !this.closed) this.schedule(id, 100);
      return;
    }
    if (id === this.leaseId && !this.closed) this.schedule(id);
  }

  /** The lease's TTL after one keep-alive (0: etcd no longer knows it). Bounded. */
  private keepAliveOnce(id: string): Promise<number> {
    // A third of the TTL per try: a member that does not answer must leave time to ask another one. The
    // deadline fails the stream, which marks that member down (etcd.ts memberPolicy).
    const ms = Math.max(300, Math.min(this.timeoutMs, Math.floor((this.ttl * 1000) / 3)));
    return this.call(async () => {
      const stream = await this.client.leaseClient.leaseKeepAlive({ deadline: Date.now() + ms });
      try {
        return await new Promise<number>((resolve, reject) => {
          const timer = setTimeout(() => reject(new ClusterUnavailable(this.etcdEndpoints, ms)), ms + 200);
          stream.on('data', (res: { TTL: string | number }) => { clearTimeout(timer); resolve(Number(res.TTL)); });
          stream.on('error', (e: Error) => { clearTimeout(timer); reject(e); });
          stream.write({ ID: id });
        });
      } finally {
        const call = stream as unknown as { removeAllListeners(e: string): void; cancel?: () => void };
        call.removeAllListeners('data');
        stream.on('error', () => undefined);
        stream.end();
        call.cancel?.();
      }
    });
  }

  private revoke(id: string): Promise<void> {
    return this.call(async () => {
      try {
        await this.client.leaseClient.leaseRevoke({ ID: id });
      } catch (e) {
        // Already expired: what was bound to it is gone too.
        if (!/lease not found|EtcdLeaseInvalid/.test(`${(e as Error)?.name} ${(e as Error)?.message}`)) throw e;
      }
    });
  }

  private stopLease(): void {
    if (this.beatTimer) clearTimeout(this.beatTimer);
    this.beatTimer = null;
    this.leaseId = null;
  }

  private onLeaseLost(id: string): void {
    if (id !== this.leaseId) return;
    this.stopLease();
    this.emit('lease-lost');
    if (this.wanted && !this.closed) void this.rejoin();
  }

  /** After a lost lease: join again (retrying until etcd answers) and re-claim what this process holds. */
  private rejoin(): Promise<void> {
    if (!this.rejoining) this.rejoining = this.rejoinLoop().finally(() => { this.rejoining = null; });
    return this.rejoining;
  }

  private async rejoinLoop(): Promise<void> {
    while (this.wanted && !this.closed && !this.leaseId) {
      try {
        await this.join();
        const r = await this.reclaim([...this.ownedAddrs.values()], [...this.ownedEps.values()]);
        this.emit('rejoined', r);
      } catch (e) {
        // Not 'error' (an EventEmitter throws that one when nobody listens): retried until etcd answers.
        if (!(e instanceof ClusterUnavailable)) this.emit('warning', e);
        await sleep(500);
      }
    }
  }

  /** Revokes the lease: this host's record, addresses and endpoints go at once. */
  async leave(): Promise<void> {
    this.wanted = false;
    if (this.rejoining) await this.rejoining;
    const id = this.leaseId;
    if (!id) return;
    this.stopLease();
    await this.revoke(id);
    this.ownedAddrs.clear();
    this.ownedEps.clear();
  }

  /** Stops everything without revoking: the lease (and what is bound to it) expires after the TTL. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.wanted = false;
    await Promise.all([...this.watches].map((w) => w.close().catch(() => undefined)));
    this.stopLease();
    this.closed = true;
    this.client.close();
  }

  async hosts(): Promise<HostRecord[]> {
    const r = await this.t([], [op.list(this.keys.hostsPrefix())]);
    return r.ranges[0].map((kv) => decode('host', kv.key.toString(), kv.value)).sort((a, b) => a.host.localeCompare(b.host));
  }

  // ---- networks ---------------------------------------------------------------------------------------------

  private async readNetworks(): Promise<{ nets: Array<{ rec: NetworkRecord; kv: IKeyValue }>; indexRev: string; changes: number }> {
    const r = await this.t([], [op.list(this.keys.networksPrefix()), op.get(this.keys.netIndex())]);
    const nets = r.ranges[0].map((kv) => ({ rec: decode('network', kv.key.toString(), kv.value), kv }));
    const idx = r.ranges[1][0];
    return { nets, indexRev: idx ? idx.mod_revision : '0', changes: idx ? decode('netindex', this.keys.netIndex(), idx.value).changes : 0 };
  }

  /** Creates an overlay network cluster-wide: the name unique, a VNI, a subnet (given, or the first free /24
   *  of the pool), one transaction that compares the network index (so concurrent creates serialise). */
  async createNetwork(spec: NetworkSpec): Promise<NetworkRecord> {
    validateNetworkName(spec.name);
    for (const [k, v] of Object.entries(spec.labels ?? {})) validateLabel(`${k}=${v}`);
    if (spec.subnet && Prefix.tryParse(spec.subnet)?.family === 6) throw new UserError(`invalid subnet ${spec.subnet}: an IPv6 subnet goes in subnet6 (--ipv6 --subnet)`);
    const avoid = (spec.avoid ?? []).map((a) => Prefix.parse(a, 'subnet').masked().toString());
    for (let attempt = 0; attempt < 20; attempt++) {
      const { nets, indexRev, changes } = await this.readNetworks();
      if (nets.some((n) => n.rec.name === spec.name)) throw new UserError(`network with name ${spec.name} already exists`, 'conflict');
      const taken = nets.flatMap((n) => [n.rec.subnet, ...(n.rec.subnet6 ? [n.rec.subnet6] : [])]);
      const overlap = (s: string): void => {
        const p = Prefix.parse(s, 'subnet');
        const other = nets.find((n) => [n.rec.subnet, n.rec.subnet6].some((x) => x && Prefix.parse(x).overlaps(p)));
        if (other) throw new UserError(`invalid pool request: Pool overlaps with other one on this address space (${s} overlaps network ${other.rec.name})`, 'conflict');
      };
      let v4: { subnet: string; gateway: string };
      if (spec.subnet) {
        v4 = planSubnet(spec.subnet, spec.gateway);
        overlap(v4.subnet);
      } else {
        if (spec.gateway) throw new UserError('a gateway needs a subnet (--subnet)');
        v4 = planSubnet(pickSubnet([...taken, ...avoid]));
      }
      let v6: { subnet: string; gateway: string } | null = null;
      if (spec.ipv6 || spec.subnet6) {
        if (spec.subnet6) {
          if (Prefix.parse(spec.subnet6, 'subnet').family !== 6) throw new UserError(`invalid subnet ${spec.subnet6}: not an IPv6 subnet`);
          v6 = planSubnet(spec.subnet6, spec.gateway6);
          overlap(v6.subnet);
        } else {
          v6 = planSubnet(pickSubnet6([...taken, ...avoid], this.keys.prefix));
        }
      }
      const vni = pickVni(nets.map((n) => n.rec.vni));
      const id = crypto.randomBytes(32).toString('hex');
      const rec: Omit<NetworkRecord, 'v'> = {
        name: spec.name, id, driver: 'overlay', vni, subnet: v4.subnet, gateway: v4.gateway, subnet6: v6?.subnet ?? null,
        gateway6: v6?.gateway ?? null, internal: spec.internal ?? false, labels: spec.labels ?? {}, created: Date.now(), createdBy: this.hostId,
      };
      const nk = this.keys.network(spec.name);
      const vk = this.keys.vni(vni);
      const r = await this.t(
        [cmp.mod(this.keys.netIndex(), indexRev), cmp.absent(nk), cmp.absent(vk)],
        [op.put(nk, encode('network', rec)), op.put(vk, encode('vni', { vni, network: spec.name, id })), op.put(this.keys.netIndex(), encode('netindex', { changes: changes + 1 }))],
      );
      if (r.succeeded) return decode('network', nk, encode('network', rec));
      await sleep(Math.random() * 20 * (attempt + 1));
    }
    throw new UserError(`could not create network ${spec.name}: too many concurrent network changes, try again`, 'refused');
  }

  async networks(): Promise<NetworkRecord[]> {
    return (await this.readNetworks()).nets.map((n) => n.rec).sort((a, b) => a.name.localeCompare(b.name));
  }

  async network(name: string): Promise<NetworkRecord | null> {
    return (await this.networkKv(name))?.rec ?? null;
  }

  private async networkKv(name: string): Promise<{ rec: NetworkRecord; kv: IKeyValue } | null> {
    const key = this.keys.network(name);
    const r = await this.t([], [op.get(key)]);
    const kv = r.ranges[0][0];
    return kv ? { rec: decode('network', key, kv.value), kv } : null;
  }

  private async requireNetwork(name: string): Promise<{ rec: NetworkRecord; kv: IKeyValue }> {
    checkSegment('network name', name);
    const n = await this.networkKv(name);
    if (!n) throw new UserError(`network ${name} not found`, 'notfound');
    return n;
  }

  /** Removes an overlay network; refused while any host has an endpoint or address on it. */
  async removeNetwork(name: string): Promise<void> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const { nets, indexRev, changes } = await this.readNetworks();
      const n = nets.find((x) => x.rec.name === name);
      if (!n) throw new UserError(`network ${name} not found`, 'notfound');
      const nk = this.keys.network(name);
      const eps = this.keys.endpointsPrefix(name);
      const ips = this.keys.addressesPrefix(name);
      const r = await this.t(
        [cmp.mod(this.keys.netIndex(), indexRev), cmp.mod(nk, n.kv.mod_revision), cmp.emptyPrefix(eps), cmp.emptyPrefix(ips)],
        [op.del(nk), op.del(this.keys.vni(n.rec.vni)), op.put(this.keys.netIndex(), encode('netindex', { changes: changes + 1 }))],
        [op.list(eps), op.list(ips, true)],
      );
      if (r.succeeded) return;
      const active = r.ranges[0].map((kv) => { try { return decode('endpoint', kv.key.toString(), kv.value); } catch { return null; } });
      if (r.ranges[0].length || r.ranges[1].length) {
        const hosts = [...new Set(active.map((e) => e?.host).filter(Boolean))].join(', ');
        throw new UserError(`error while removing network: network ${name} has active endpoints${hosts ? ` (on ${hosts})` : ''}`, 'refused');
      }
      await sleep(Math.random() * 20 * (attempt + 1));
    }
    throw new UserError(`could not remove network ${name}: too many concurrent network changes, try again`, 'refused');
  }

  // ---- IPAM -------------------------------------------------------------------------------------------------

  /**
   * An address on `network` for `endpoint` (IPv4 unless family 6), bound to this host's lease; `ip` asks for
   * that one (Docker's --ip). No two callers anywhere get the same address: the key is created only if absent.
   */
  async allocateAddress(network: string, endpoint: string, o: { ip?: string | null; family?: 4 | 6 } = {}): Promise<string> {
    const lease = this.requireLease();
    checkSegment('endpoint id', endpoint);
    const n = await this.requireNetwork(network);
    const fam = o.ip ? (Addr.parse(o.ip).family) : (o.family ?? 4);
    const subnet = fam === 4 ? n.rec.subnet : n.rec.subnet6;
    const gateway = fam === 4 ? n.rec.gateway : n.rec.gateway6;
    if (!subnet || !gateway) throw new UserError(`network ${network} has no IPv${fam} subnet`, 'refused');
    const value = (ip: string) => encode('address', { network, ip, host: this.hostId, endpoint });
    const netCmp = cmp.created(this.keys.network(network), n.kv.create_revision);
    if (o.ip) {
      const ip = checkStaticAddress(subnet, gateway, o.ip);
      const key = this.keys.address(network, ip);
      const r = await this.t([netCmp, cmp.absent(key)], [op.put(key, value(ip), lease)], [op.get(this.keys.network(network)), op.get(key)]);
      if (!r.succeeded) {
        if (!r.ranges[0][0] || r.ranges[0][0].create_revision !== n.kv.create_revision) throw new UserError(`network ${network} not found`, 'notfound');
        const cur = r.ranges[1][0] ? decode('address', key, r.ranges[1][0].value) : null;
        if (!(cur && cur.host === this.hostId && cur.endpoint === endpoint && r.ranges[1][0].lease === lease)) {
          throw new UserError(`Address already in use: ${ip} on network ${network}${cur ? ` (endpoint ${cur.endpoint} on host ${cur.host})` : ''}`, 'conflict');
        }
      }
      this.ownedAddrs.set(key, { network, endpoint, ip });
      return ip;
    }
    const prefix = this.keys.addressesPrefix(network);
    let taken = new Set((await this.t([], [op.list(prefix, true)])).ranges[0].map((kv) => kv.key.toString().slice(prefix.length)));
    let window = 1; // the lowest free address first (Docker's order); widened on each lost race
    for (let attempt = 0; attempt < 30; attempt++) {
      const ip = pickAddress(subnet, gateway, new Set([...taken, ...this.pending]), window);
      if (!ip) throw new UserError(`no available IPv${fam} addresses on network ${network} (${subnet})`, 'refused');
      const key = this.keys.address(network, ip);
      this.pending.add(ip);
      let r;
      try {
        r = await this.t([netCmp, cmp.absent(key)], [op.put(key, value(ip), lease)], [op.get(this.keys.network(network)), op.list(prefix, true)]);
      } finally {
        this.pending.delete(ip);
      }
      if (r.succeeded) {
        this.ownedAddrs.set(key, { network, endpoint, ip });
        return ip;
      }
      if (!r.ranges[0][0] || r.ranges[0][0].create_revision !== n.kv.create_revision) throw new UserError(`network ${network} not found`, 'notfound');
      taken = new Set(r.ranges[1].map((kv) => kv.key.toString().slice(prefix.length)));
      window = Math.min(window * 2, 256);
    }
    throw new UserError(`could not allocate an address on network ${network}: too much contention, try again`, 'refused');
  }

  /** Gives an address back (only if it is still this host's). */
  async releaseAddress(network: string, ip: string): Promise<void> {
    const key = this.keys.address(network, ip);
    const lease = this.leaseId;
    this.ownedAddrs.delete(key);
    if (!lease) return;
    await this.t([cmp.lease(key, lease)], [op.del(key)]);
  }

  async addresses(network: string): Promise<AddressRecord[]> {
    const r = await this.t([], [op.list(this.keys.addressesPrefix(network))]);
    return r.ranges[0].map((kv) => decode('address', kv.key.toString(), kv.value));
  }

  // ---- endpoints --------------------------------------------------------------------------------------------

  private endpointRecord(network: string, spec: EndpointSpec): EndpointRecord {
    checkSegment('endpoint id', spec.id);
    if (!spec.ips.length) throw new UserError('an endpoint needs at least one address');
    for (const a of spec.aliases ?? []) validateAlias(a);
    const ips = spec.ips.map((ip) => Addr.parse(ip, 'IP address').toString());
    const mac = (spec.mac ?? macFor(ips[0])).toLowerCase();
    if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(mac)) throw new UserError(`invalid MAC address ${showValue(spec.mac)}`);
    return decode('endpoint', this.keys.endpoint(network, spec.id), encode('endpoint', {
      network, id: spec.id, name: spec.name, aliases: [...(spec.aliases ?? [])], host: this.hostId, underlay: this.advertise, mac, ips,
    }));
  }

  /** Registers (or updates) an endpoint of this host: its addresses must be this host's (allocateAddress). */
  async registerEndpoint(network: string, spec: EndpointSpec): Promise<EndpointRecord> {
    const lease = this.requireLease();
    const n = await this.requireNetwork(network);
    const rec = this.endpointRecord(network, spec);
    for (const ip of rec.ips) {
      const ok = [n.rec.subnet, n.rec.subnet6].some((s) => s && Prefix.parse(s).contains(ip));
      if (!ok) throw new UserError(`invalid address ${ip}: it does not belong to network ${network}`);
    }
    const key = this.keys.endpoint(network, rec.id);
    const ipKeys = rec.ips.map((ip) => this.keys.address(network, ip));
    for (let attempt = 0; ; attempt++) {
      const r = await this.t(
        [cmp.created(this.keys.network(network), n.kv.create_revision), ...ipKeys.map((k) => cmp.lease(k, lease))],
        [op.put(key, encode('endpoint', rec), lease)],
        ipKeys.map((k) => op.get(k)),
      );
      if (r.succeeded) break;
      const bad = rec.ips.findIndex((_, i) => r.ranges[i]?.[0]?.lease !== lease);
      if (bad < 0) throw new UserError(`network ${network} not found`, 'notfound');
      // This host's address for this endpoint, still bound to the lease before a re-join: bind it to this one.
      const kv = r.ranges[bad][0];
      const cur = kv ? decode('address', ipKeys[bad], kv.value) : null;
      const rebound = attempt < rec.ips.length + 1 && cur && cur.host === this.hostId && cur.endpoint === rec.id
        && (await this.t([cmp.mod(ipKeys[bad], kv.mod_revision)], [op.put(ipKeys[bad], kv.value.toString(), lease)])).succeeded;
      if (!rebound) throw new UserError(`address ${rec.ips[bad]} is not allocated to this host on network ${network}`, 'conflict');
    }
    this.ownedEps.set(key, rec);
    return rec;
  }

  /** Removes an endpoint of this host and gives back its addresses (those still this host's). */
  async removeEndpoint(network: string, id: string): Promise<void> {
    const key = this.keys.endpoint(network, id);
    const known = this.ownedEps.get(key);
    this.ownedEps.delete(key);
    const r = await this.t([], [op.get(key)]);
    const cur = r.ranges[0][0] ? decode('endpoint', key, r.ranges[0][0].value) : known;
    const ipKeys = (cur?.ips ?? []).map((ip) => this.keys.address(network, ip));
    for (const k of ipKeys) this.ownedAddrs.delete(k);
    for (const [k, a] of this.ownedAddrs) if (a.network === network && a.endpoint === id) { ipKeys.push(k); this.ownedAddrs.delete(k); }
    const lease = this.leaseId;
    if (cur && cur.host !== this.hostId) throw new UserError(`endpoint ${id} on network ${network} belongs to host ${cur.host}`, 'refused');
    if (!lease) {
      if (r.ranges[0][0]) await this.t([], [op.del(key)]);
      return;
    }
    const mine = [...new Set(ipKeys)];
    // All addresses still ours: delete them with the endpoint; otherwise delete only the endpoint, then ours.
    const d = await this.t(mine.map((k) => cmp.lease(k, lease)), [op.del(key), ...mine.map(op.del)], [op.del(key)]);
    if (!d.succeeded) for (const k of mine) await this.t([cmp.lease(k, lease)], [op.del(k)]);
  }

  async endpoints(network: string): Promise<EndpointRecord[]> {
    const r = await this.t([], [op.list(this.keys.endpointsPrefix(network))]);
    return r.ranges[0].map((kv) => decode('endpoint', kv.key.toString(), kv.value));
  }

  // ---- reconcile ----------------------------------------------------------------------------------------------

  /**
   * A host that comes back (restarted, or its lease expired while cut off): for each endpoint it still runs,
   * re-bind its addresses to the current lease if they are still this host's or free, and register the
   * endpoint again; addresses another host took meanwhile are conflicts for the caller to resolve. This host's
   * endpoints and addresses in etcd that `endpoints` does not list are removed. Needs join() first.
   */
  async reconcile(endpoints: ReadonlyArray<EndpointSpec & { network: string }>): Promise<ReconcileResult> {
    this.requireLease();
    const addrs = endpoints.flatMap((e) => e.ips.map((ip) => ({ network: e.network, endpoint: e.id, ip: Addr.parse(ip).toString() })));
    const recs = endpoints.map((e) => this.endpointRecord(e.network, e));
    const res = await this.reclaim(addrs, recs);
    // Stale records of this host: in networks it no longer runs the endpoint of.
    const keep = new Set([...addrs.map((a) => this.keys.address(a.network, a.ip)), ...recs.map((e) => this.keys.endpoint(e.network, e.id))]);
    for (const n of await this.networks()) {
      const r = await this.t([], [op.list(this.keys.endpointsPrefix(n.name)), op.list(this.keys.addressesPrefix(n.name))]);
      for (const kv of [...r.ranges[0], ...r.ranges[1]]) {
        const key = kv.key.toString();
        if (keep.has(key)) continue;
        let host: string | null = null;
        try { host = JSON.parse(kv.value.toString()).host ?? null; } catch { /* not ours to judge */ }
        if (host !== this.hostId) continue;
        const d = await this.t([cmp.mod(key, kv.mod_revision)], [op.del(key)]);
        if (d.succeeded) res.removed.push(key);
      }
    }
    return res;
  }

  private async reclaim(addrs: readonly Owned[], eps: readonly EndpointRecord[]): Promise<ReconcileResult> {
    const lease = this.requireLease();
    const res: ReconcileResult = { kept: [], conflicts: [], endpoints: [], removed: [] };
    const lostEndpoints = new Set<string>();
    for (const a of addrs) {
      const key = this.keys.address(a.network, a.ip);
      const value = encode('address', { network: a.network, ip: a.ip, host: this.hostId, endpoint: a.endpoint });
      const netKey = this.keys.network(a.network);
      // Free: claim it; ours (an older lease): re-bind it. Both only while the network exists.
      const r = await this.t([cmp.absent(key), cmp.exists(netKey)],
        [op.put(key, value, lease)], [op.get(key), op.get(netKey)]);
      if (r.succeeded) {
        res.kept.push(a.ip);
        this.ownedAddrs.set(key, a);
        continue;
      }
      const cur = r.ranges[0][0];
      let owner = '(network removed)';
      if (cur && r.ranges[1][0]) {
        const rec = decode('address', key, cur.value);
        if (rec.host === this.hostId && rec.endpoint === a.endpoint) {
          const u = await this.t([cmp.mod(key, cur.mod_revision)], [op.put(key, value, lease)]);
          if (u.succeeded) {
            res.kept.push(a.ip);
            this.ownedAddrs.set(key, a);
            continue;
          }
        }
        owner = rec.host;
      }
      res.conflicts.push({ network: a.network, endpoint: a.endpoint, ip: a.ip, owner });
      lostEndpoints.add(`${a.network}/${a.endpoint}`);
      this.ownedAddrs.delete(key);
    }
    for (const e of eps) {
      if (lostEndpoints.has(`${e.network}/${e.id}`)) continue;
      try {
        await this.registerEndpoint(e.network, e);
        res.endpoints.push(e.id);
      } catch (err) {
        if (!(err instanceof UserError) || err instanceof ClusterUnavailable) throw err;
        for (const ip of e.ips) res.conflicts.push({ network: e.network, endpoint: e.id, ip, owner: err.message });
      }
    }
    return res;
  }

  // ---- watches ------------------------------------------------------------------------------------------------

  /** Watches a network's endpoints: the callback first gets an 'endpoint-add' per existing endpoint (and
   *  'peer-add' per host), then every change, resumed from the last revision after a disconnect, or from a
   *  fresh list (the differences delivered as events) when that revision was compacted. */
  async watchNetwork(network: string, onChange: (ev: NetworkEvent) => void): Promise<NetworkWatch> {
    checkSegment('network name', network);
    const w = new NetworkWatch(this.watchDeps(), this.keys.endpointsPrefix(network), onChange);
    await this.startWatch(w);
    return w;
  }

  /** Watches the hosts: 'host-up', 'host-update' (address or labels; not heartbeats), 'host-down'. */
  async watchHosts(onChange: (ev: HostEvent) => void): Promise<PrefixWatch<HostRecord>> {
    const w = new PrefixWatch<HostRecord>(this.watchDeps(), this.keys.hostsPrefix(), 'host', (ev) => {
      onChange({ type: ev.type === 'add' ? 'host-up' : ev.type === 'remove' ? 'host-down' : 'host-update', host: ev.value });
    }, (a, b) => a.advertise === b.advertise && a.lease === b.lease && JSON.stringify(a.labels) === JSON.stringify(b.labels));
    await this.startWatch(w);
    return w;
  }

  private async startWatch(w: { start(): Promise<void>; close(): Promise<void>; onClose?: () => void }): Promise<void> {
    await w.start();
    this.watches.add(w);
    w.onClose = () => this.watches.delete(w);
  }

  private watchDeps() {
    return {
      client: this.client,
      list: (prefix: string) => this.t([], [op.list(prefix)]).then((r) => ({ kvs: r.ranges[0], revision: r.revision })),
      onError: (e: unknown) => this.emit('watch-error', e),
    };
  }
}
