// The single source of desired state: SQLite through better-sqlite3 (synchronous, fast, transactional).
// Writers take BEGIN IMMEDIATE transactions; uniqueness that matters (names, bridge names, one address per
// network) is enforced by the schema itself, so even a bug above cannot hand out one address twice.
import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import type { ContainerRecord, EndpointRecord, NetworkRecord, PortMapping, RemoteEndpoint } from '../types.js';
import { UserError } from '../util/errors.js';
import { sleepSync } from '../util/sleep.js';

const require = createRequire(import.meta.url);

export const MIGRATIONS: string[] = [
  `CREATE TABLE networks(
     id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, driver TEXT NOT NULL, bridge TEXT NOT NULL UNIQUE,
     subnet TEXT NOT NULL, gateway TEXT NOT NULL, ip_range TEXT, internal INTEGER NOT NULL, icc INTEGER NOT NULL,
     mtu INTEGER NOT NULL, is_default INTEGER NOT NULL, labels TEXT NOT NULL, options TEXT NOT NULL,
     created TEXT NOT NULL, last_ip TEXT, pending INTEGER NOT NULL DEFAULT 0);
   CREATE TABLE containers(
     id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, mode TEXT NOT NULL, mode_target TEXT, netns TEXT NOT NULL,
     command TEXT NOT NULL, ports TEXT NOT NULL, dns TEXT NOT NULL, auto_remove INTEGER NOT NULL,
     state TEXT NOT NULL, pid INTEGER, pid_start TEXT, exit_code INTEGER, created TEXT NOT NULL, started TEXT,
     finished TEXT, pending INTEGER NOT NULL DEFAULT 0);
   CREATE TABLE endpoints(
     container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
     network_id TEXT NOT NULL REFERENCES networks(id),
     ifname TEXT NOT NULL, host_if TEXT NOT NULL UNIQUE, ip TEXT NOT NULL, mac TEXT NOT NULL, aliases TEXT NOT NULL,
     static_ip INTEGER NOT NULL, pending INTEGER NOT NULL DEFAULT 0,
     PRIMARY KEY(container_id, network_id), UNIQUE(network_id, ip), UNIQUE(container_id, ifname));
   CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
   CREATE TABLE garbage(id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, name TEXT NOT NULL);`,
  // Attachments of a container whose sandbox was lost (reboot-like): its addresses are freed, the attachments are
  // kept so that `start` can rebuild the sandbox.
  `ALTER TABLE containers ADD COLUMN saved_endpoints TEXT NOT NULL DEFAULT '[]';`,
  // hasUnfinished() runs before every mutating command: partial indexes make it O(1).
  `CREATE INDEX networks_pending ON networks(pending) WHERE pending = 1;
   CREATE INDEX containers_pending ON containers(pending) WHERE pending = 1;
   CREATE INDEX endpoints_pending ON endpoints(pending) WHERE pending = 1;
   CREATE INDEX containers_mode_target ON containers(mode_target) WHERE mode_target IS NOT NULL;`,
  // Whether a process was ever started in the container's netns (start, run, exec): only then does removing it
  // scan /proc for processes left inside. Containers from before this column are assumed used.
  `ALTER TABLE containers ADD COLUMN used INTEGER NOT NULL DEFAULT 0;
   UPDATE containers SET used = 1;`,
  // Host ends of veths whose container netns was deleted: the kernel removes them on its own (kind 'veth', since =
  // when, ms since the epoch); see sweepDyingLinks.
  `ALTER TABLE garbage ADD COLUMN since INTEGER NOT NULL DEFAULT 0;
   CREATE INDEX garbage_kind ON garbage(kind, since);`,
  // Attachments made through CNI (src/engine/cni.ts): a runtime's container is a container row (name cni-...)
  // whose endpoints live in the runtime's netns; this table keys them as the runtime does.
  `CREATE TABLE cni_attachments(
     network_id TEXT NOT NULL, runtime_id TEXT NOT NULL, ifname TEXT NOT NULL,
     container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE, netns_path TEXT NOT NULL,
     default_route INTEGER NOT NULL, created TEXT NOT NULL, PRIMARY KEY(network_id, runtime_id, ifname));
   CREATE INDEX cni_attachments_container ON cni_attachments(container_id);`,
  // Link impairments (src/engine/netem.ts): one per container and network; kept while the endpoint is released
  // (a stopped container) and applied again when it comes back. `prev` is the spec an unfinished change replaced.
  `CREATE TABLE impairments(
     container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE, network_id TEXT NOT NULL,
     spec TEXT NOT NULL, prev TEXT, created TEXT NOT NULL, expires INTEGER, healer_pid INTEGER, healer_start TEXT,
     line_pid INTEGER, line_start TEXT, pending INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(container_id, network_id));
   CREATE INDEX impairments_expires ON impairments(expires) WHERE expires IS NOT NULL;`,
  // Partitions (nsnet partition, src/engine/partitions.ts): at most one per network, removed with it. groups: JSON
  // array of arrays of container ids (as listed; the network's other containers are one more group unless
  // oneway). expires: ms since the epoch (--duration), healed by the timer process (timer_pid, timer_start),
  // by the next command or by reconcile. IF NOT EXISTS: harmless if another branch's migration made it first.
  `CREATE TABLE IF NOT EXISTS partitions(
     network_id TEXT PRIMARY KEY REFERENCES networks(id) ON DELETE CASCADE, id TEXT NOT NULL, groups TEXT NOT NULL,
     oneway INTEGER NOT NULL, created TEXT NOT NULL, expires INTEGER, timer_pid INTEGER, timer_start TEXT);
   CREATE INDEX IF NOT EXISTS partitions_expires ON partitions(expires) WHERE expires IS NOT NULL;`,
  // Dual-stack networks (issue #13): a network's IPv6 subnet beside its IPv4 one (at most one per family), and an
  // endpoint's IPv6 address. The endpoints table is rebuilt so that its IPv4 address may be NULL (an IPv6-only
  // network, --ipv4=false) and "one address is never handed out twice on a network" holds in the schema for
  // both families: UNIQUE(network_id, ip) and UNIQUE(network_id, ip6) (NULLs are distinct in SQLite). Existing
  // rows keep everything they had (no IPv6).
  `ALTER TABLE networks ADD COLUMN enable_ipv6 INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE networks ADD COLUMN subnet6 TEXT;
   ALTER TABLE networks ADD COLUMN gateway6 TEXT;
   ALTER TABLE networks ADD COLUMN ip_range6 TEXT;
   ALTER TABLE networks ADD COLUMN last_ip6 TEXT;
   CREATE TABLE endpoints_v6(
     container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
     network_id TEXT NOT NULL REFERENCES networks(id),
     ifname TEXT NOT NULL, host_if TEXT NOT NULL UNIQUE, ip TEXT, mac TEXT NOT NULL, aliases TEXT NOT NULL,
     static_ip INTEGER NOT NULL, pending INTEGER NOT NULL DEFAULT 0, ip6 TEXT, static_ip6 INTEGER NOT NULL DEFAULT 0,
     CHECK(ip IS NOT NULL OR ip6 IS NOT NULL),
     PRIMARY KEY(container_id, network_id), UNIQUE(network_id, ip), UNIQUE(network_id, ip6), UNIQUE(container_id, ifname));
   INSERT INTO endpoints_v6(container_id, network_id, ifname, host_if, ip, mac, aliases, static_ip, pending)
     SELECT container_id, network_id, ifname, host_if, ip, mac, aliases, static_ip, pending FROM endpoints;
   DROP TABLE endpoints;
   ALTER TABLE endpoints_v6 RENAME TO endpoints;
   CREATE INDEX endpoints_pending ON endpoints(pending) WHERE pending = 1;`,
  // Overlay networks (issue #17): the endpoints other hosts of the cluster have on this host's overlay networks, as
  // the cluster agent last read them from etcd (src/cluster/). The overlay driver programs the VXLAN forwarding
  // entries from them and the resolver answers their names; `check`/`reconcile` compare the kernel with them.
  // Cluster-wide uniqueness of addresses is etcd's (compare-and-swap); here each is unique per network too.
  `CREATE TABLE IF NOT EXISTS remote_endpoints(
     network_id TEXT NOT NULL REFERENCES networks(id) ON DELETE CASCADE, key TEXT NOT NULL, host TEXT NOT NULL,
     underlay TEXT NOT NULL, name TEXT NOT NULL, aliases TEXT NOT NULL, ip TEXT, ip6 TEXT, mac TEXT NOT NULL,
     PRIMARY KEY(network_id, key), UNIQUE(network_id, ip), UNIQUE(network_id, ip6));`,
];


/** A link impairment as stored (spec and prev are the engine's JSON). */
export interface ImpairmentRow {
  containerId: string;
  networkId: string;
  spec: string;
  prev: string | null;
  created: string;
  /** ms since the epoch, or null (until cleared). */
  expires: number | null;
  healerPid: number | null;
  healerStart: string | null;
  /** The delay line (src/kernel/delayline.ts) of this link, when the kernel has no netem. */
  linePid: number | null;
  lineStart: string | null;
  pending: boolean;
}

function impFromRow(r: Row): ImpairmentRow {
  return {
    containerId: r.container_id as string, networkId: r.network_id as string, spec: r.spec as string,
    prev: (r.prev as string | null) ?? null, created: r.created as string, expires: (r.expires as number | null) ?? null,
    healerPid: (r.healer_pid as number | null) ?? null, healerStart: (r.healer_start as string | null) ?? null,
    linePid: (r.line_pid as number | null) ?? null, lineStart: (r.line_start as string | null) ?? null, pending: !!r.pending,
  };
}

/** A network's partition as the store holds it. */
export interface PartitionRecord {
  networkId: string;
  /** Random id of this partition (a replaced one has another: its timer must not heal its successor). */
  id: string;
  /** Container ids per group, as listed. */
  groups: string[][];
  oneway: boolean;
  created: string;
  /** ms since the epoch, or null (until healed). */
  expires: number | null;
  timerPid: number | null;
  timerStart: string | null;
}

function partFromRow(r: Row): PartitionRecord {
  return {
    networkId: r.network_id as string, id: r.id as string, groups: JSON.parse(r.groups as string) as string[][],
    oneway: !!r.oneway, created: r.created as string, expires: (r.expires as number | null) ?? null,
    timerPid: (r.timer_pid as number | null) ?? null, timerStart: (r.timer_start as string | null) ?? null,
  };
}

/** A network attachment remembered while its endpoint does not exist. */
export interface SavedEndpoint {
  networkId: string;
  ifname: string;
  aliases: string[];
  /** The user's --ip, if any (dynamic addresses are allocated anew). */
  ip: string | null;
  /** The user's --ip6, if any (absent in rows from before IPv6). */
  ip6?: string | null;
}

type Row = Record<string, unknown>;
/** link: a host-side interface name; netns: a name under /run/netns; dir: a container state directory;
 *  veth: the host end of a veth whose peer's netns was deleted (the kernel removes the pair by itself). */
export type GarbageKind = 'link' | 'netns' | 'dir' | 'veth';
export interface GarbageRow {
  id: number;
  kind: GarbageKind;
  name: string;
  /** When it was recorded (ms since the epoch; 0 for rows from before the column). */
  since: number;
}

function netFromRow(r: Row): NetworkRecord {
  return {
    id: r.id as string, name: r.name as string, driver: r.driver as string, bridge: r.bridge as string,
    subnet: r.subnet as string, gateway: r.gateway as string, ipRange: (r.ip_range as string | null) ?? null,
    internal: !!r.internal, icc: !!r.icc, mtu: r.mtu as number, isDefault: !!r.is_default,
    enableIPv6: !!r.enable_ipv6, subnet6: (r.subnet6 as string | null) ?? null, gateway6: (r.gateway6 as string | null) ?? null,
    ipRange6: (r.ip_range6 as string | null) ?? null,
    labels: JSON.parse(r.labels as string), options: JSON.parse(r.options as string), created: r.created as string,
  };
}

function ctrFromRow(r: Row): ContainerRecord {
  return {
    id: r.id as string, name: r.name as string, mode: r.mode as ContainerRecord['mode'],
    modeTarget: (r.mode_target as string | null) ?? null, netns: r.netns as string,
    command: JSON.parse(r.command as string), ports: JSON.parse(r.ports as string) as PortMapping[],
    dns: JSON.parse(r.dns as string), autoRemove: !!r.auto_remove, state: r.state as ContainerRecord['state'],
    pid: (r.pid as number | null) ?? null, pidStart: (r.pid_start as string | null) ?? null,
    exitCode: (r.exit_code as number | null) ?? null, created: r.created as string,
    started: (r.started as string | null) ?? null, finished: (r.finished as string | null) ?? null,
    used: !!r.used,
  };
}

function epFromRow(r: Row): EndpointRecord {
  return {
    containerId: r.container_id as string, containerName: r.container_name as string, networkId: r.network_id as string,
    ifname: r.ifname as string, hostIf: r.host_if as string, ip: (r.ip as string | null) ?? '', ip6: (r.ip6 as string | null) ?? null,
    mac: r.mac as string, aliases: JSON.parse(r.aliases as string), staticIp: !!r.static_ip, staticIp6: !!r.static_ip6,
  };
}

const EP_SELECT = `SELECT e.*, c.name AS container_name FROM endpoints e JOIN containers c ON c.id = e.container_id`;

/** The store's files: commands (which carry secrets) are in them, so only root reads them. */
const DB_MODE = 0o600;

/** Makes the database file exist with mode 0600 (created O_EXCL, never through a symlink) and brings an existing
 *  one, and its -wal/-shm, to 0600 (stores from before this were 0644). SQLite creates -wal/-shm with the
 *  database file's mode. Returns true when the file is new or empty (an empty store). */
function prepareDbFiles(file: string): boolean {
  let fresh = false;
  if (!fs.lstatSync(file, { throwIfNoEntry: false })) {
    try {
      fs.closeSync(fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, DB_MODE));
      fresh = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e; // made by a concurrent first command
    }
  }
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    const st = fs.lstatSync(f, { throwIfNoEntry: false });
    if (!st) continue;
    if (!st.isFile()) throw new UserError(`the store ${f} is not a regular file (a symbolic link?): move it aside`, 'refused');
    if (f === file && st.size === 0) fresh = true;
    if ((st.mode & 0o777) !== DB_MODE) fs.chmodSync(f, DB_MODE);
  }
  return fresh;
}

/** SQLite's result codes that mean the file is not (or no longer) a usable database, and disk/IO failures: turned
 *  into one error naming the file and what to do ("database disk image is malformed" alone names neither). */
export function storeError(file: string, e: unknown): unknown {
  const code = (e as { code?: unknown }).code;
  if (typeof code !== 'string' || !code.startsWith('SQLITE_')) return e;
  const msg = (e as Error).message;
  if (code === 'SQLITE_CORRUPT' || code.startsWith('SQLITE_CORRUPT_') || code === 'SQLITE_NOTADB') {
    return new UserError(`the store ${file} is damaged (${msg}): move it aside (with its -wal and -shm files) to start ` +
      `with an empty store, or restore it from a backup; then run nsnet check (nsnet will not delete the kernel objects ` +
      `it finds without reconcile --force)`, 'refused');
  }
  if (code === 'SQLITE_FULL' || code === 'SQLITE_IOERR_WRITE' || code === 'SQLITE_IOERR_SHMSIZE' || code === 'SQLITE_IOERR_FSYNC') {
    return new Error(`the store ${file} could not be written (${code === 'SQLITE_FULL' ? 'the disk is full' : `${msg}: is the disk full?`}): this step recorded nothing`);
  }
  if (code.startsWith('SQLITE_IOERR')) return new Error(`the store ${file}: ${msg} (is the disk full?)`);
  if (code === 'SQLITE_READONLY' || code.startsWith('SQLITE_READONLY_') || code === 'SQLITE_CANTOPEN') {
    return new Error(`the store ${file}: ${msg}`);
  }
  return e;
}

/** A prepared statement whose SQLite failures name the store file (see storeError). */
class Stmt {
  constructor(private readonly s: BetterSqlite3.Statement, private readonly file: string) {}
  get(...a: unknown[]): unknown {
    try { return this.s.get(...a); } catch (e) { throw storeError(this.file, e); }
  }
  all(...a: unknown[]): unknown[] {
    try { return this.s.all(...a); } catch (e) { throw storeError(this.file, e); }
  }
  run(...a: unknown[]): BetterSqlite3.RunResult {
    try { return this.s.run(...a); } catch (e) { throw storeError(this.file, e); }
  }
}

const isBusy = (e: unknown) => typeof (e as { code?: unknown }).code === 'string' && (e as { code: string }).code.startsWith('SQLITE_BUSY');

/** Runs `fn`, again after a short pause when SQLite answers SQLITE_BUSY (and `retryable()` agrees), for up to ≈10 s. */
export function retryBusy<T>(fn: () => T, retryable: () => boolean = () => true): T {
  for (let i = 0; ; i++) {
    try {
      return fn();
    } catch (e) {
      if (!isBusy(e) || !retryable() || i >= 200) throw e;
      sleepSync(20 + Math.floor(Math.random() * 30));
    }
  }
}

export class Store {
  readonly db: BetterSqlite3.Database;
  /** The file held no store when opened (missing or empty): see Host.storeLost. */
  readonly fresh: boolean;

  constructor(readonly file: string) {
    const Database = require('better-sqlite3') as typeof BetterSqlite3;
    this.fresh = prepareDbFiles(file);
    try {
      this.db = new Database(file, { timeout: 30000 });
      // Many first commands at once on a new store (50 parallel CNI ADDs on a fresh state directory) race to switch
      // it to WAL: SQLite can answer that switch with SQLITE_BUSY at once, without its busy handler. Retried.
      retryBusy(() => this.db.pragma('journal_mode = WAL'));
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('foreign_keys = ON');
      this.migrate();
    } catch (e) {
      throw storeError(file, e);
    }
  }

  private readonly stmts = new Map<string, Stmt>();
  /** Prepared statements are compiled once per process and reused. */
  private st(sql: string): Stmt {
    let s = this.stmts.get(sql);
    if (!s) {
      try {
        s = new Stmt(this.db.prepare(sql), this.file);
      } catch (e) {
        throw storeError(this.file, e);
      }
      this.stmts.set(sql, s);
    }
    return s;
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version >= MIGRATIONS.length) return;
    this.tx(() => {
      const v = this.db.pragma('user_version', { simple: true }) as number;
      for (let i = v; i < MIGRATIONS.length; i++) this.db.exec(MIGRATIONS[i]);
      this.db.pragma(`user_version = ${MIGRATIONS.length}`);
    });
  }

  /** Runs fn in a BEGIN IMMEDIATE transaction (writers serialize; readers are never blocked under WAL). */
  tx<T>(fn: () => T): T {
    try {
      // A BEGIN IMMEDIATE refused with SQLITE_BUSY before `fn` ran (the busy handler is not always consulted, e.g.
      // while another connection recovers the WAL) is retried; once `fn` has started, an error is the caller's.
      let started = false;
      return retryBusy(() => this.db.transaction(() => { started = true; return fn(); }).immediate(), () => !started);
    } catch (e) {
      throw storeError(this.file, e);
    }
  }

  /** Nothing at all recorded: no network, container or unfinished removal (one indexed probe). */
  isEmpty(): boolean {
    return !this.st(`SELECT 1 WHERE EXISTS(SELECT 1 FROM networks) OR EXISTS(SELECT 1 FROM containers) OR EXISTS(SELECT 1 FROM garbage)`).get();
  }

  close(): void {
    this.db.close();
  }

  // ---- networks
  networks(): NetworkRecord[] {
    return (this.st('SELECT * FROM networks WHERE pending = 0 ORDER BY name').all() as Row[]).map(netFromRow);
  }
  allNetworksIncludingPending(): Array<NetworkRecord & { pending: boolean }> {
    return (this.st('SELECT * FROM networks ORDER BY name').all() as Row[]).map((r) => ({ ...netFromRow(r), pending: !!r.pending }));
  }
  /** By exact name, full id, or unique id prefix (as Docker). */
  findNetwork(ref: string): NetworkRecord | null {
    const byName = this.st('SELECT * FROM networks WHERE name = ? AND pending = 0').get(ref) as Row | undefined;
    if (byName) return netFromRow(byName);
    if (!/^[0-9a-f]{1,64}$/.test(ref)) return null;
    const rows = this.st('SELECT * FROM networks WHERE id LIKE ? AND pending = 0').all(ref + '%') as Row[];
    return rows.length === 1 ? netFromRow(rows[0]) : null;
  }
  networkById(id: string): NetworkRecord | null {
    const r = this.st('SELECT * FROM networks WHERE id = ?').get(id) as Row | undefined;
    return r ? netFromRow(r) : null;
  }
  insertNetwork(n: NetworkRecord, pending: boolean): void {
    this.st(`INSERT INTO networks(id,name,driver,bridge,subnet,gateway,ip_range,internal,icc,mtu,is_default,labels,options,created,pending,enable_ipv6,subnet6,gateway6,ip_range6)
      VALUES(@id,@name,@driver,@bridge,@subnet,@gateway,@ipRange,@internal,@icc,@mtu,@isDefault,@labels,@options,@created,@pending,@enableIPv6,@subnet6,@gateway6,@ipRange6)`).run({
      ...n, internal: n.internal ? 1 : 0, icc: n.icc ? 1 : 0, isDefault: n.isDefault ? 1 : 0,
      enableIPv6: n.enableIPv6 ? 1 : 0, subnet6: n.subnet6 ?? null, gateway6: n.gateway6 ?? null, ipRange6: n.ipRange6 ?? null,
      labels: JSON.stringify(n.labels), options: JSON.stringify(n.options), pending: pending ? 1 : 0,
    });
  }
  commitNetwork(id: string): void {
    this.st('UPDATE networks SET pending = 0 WHERE id = ?').run(id);
  }
  deleteNetwork(id: string): void {
    this.st('DELETE FROM networks WHERE id = ?').run(id);
  }
  lastIp(networkId: string): string | null {
    const r = this.st('SELECT last_ip FROM networks WHERE id = ?').get(networkId) as Row | undefined;
    return (r?.last_ip as string | null) ?? null;
  }
  setLastIp(networkId: string, ip: string): void {
    this.st('UPDATE networks SET last_ip = ? WHERE id = ?').run(ip, networkId);
  }
  /** The IPv6 address handed out last on this network (serial allocation, as lastIp). */
  lastIp6(networkId: string): string | null {
    const r = this.st('SELECT last_ip6 FROM networks WHERE id = ?').get(networkId) as Row | undefined;
    return (r?.last_ip6 as string | null) ?? null;
  }
  setLastIp6(networkId: string, ip: string): void {
    this.st('UPDATE networks SET last_ip6 = ? WHERE id = ?').run(ip, networkId);
  }

  // ---- containers
  containers(): ContainerRecord[] {
    return (this.st('SELECT * FROM containers WHERE pending = 0 ORDER BY created').all() as Row[]).map(ctrFromRow);
  }
  /** Published ports of every container (committed or pending: a pending one is being created right now). */
  publishedPorts(): Array<{ id: string; name: string; ports: PortMapping[] }> {
    return (this.st(`SELECT id, name, ports FROM containers WHERE ports != '[]'`).all() as Row[])
      .map((r) => ({ id: r.id as string, name: r.name as string, ports: JSON.parse(r.ports as string) as PortMapping[] }));
  }
  allContainersIncludingPending(): Array<ContainerRecord & { pending: boolean }> {
    return (this.st('SELECT * FROM containers ORDER BY created').all() as Row[]).map((r) => ({ ...ctrFromRow(r), pending: !!r.pending }));
  }
  findContainer(ref: string): ContainerRecord | null {
    const byName = this.st('SELECT * FROM containers WHERE name = ? AND pending = 0').get(ref) as Row | undefined;
    if (byName) return ctrFromRow(byName);
    if (!/^[0-9a-f]{1,64}$/.test(ref)) return null;
    const rows = this.st('SELECT * FROM containers WHERE id LIKE ? AND pending = 0').all(ref + '%') as Row[];
    return rows.length === 1 ? ctrFromRow(rows[0]) : null;
  }
  containerById(id: string): ContainerRecord | null {
    const r = this.st('SELECT * FROM containers WHERE id = ?').get(id) as Row | undefined;
    return r ? ctrFromRow(r) : null;
  }
  nameTaken(name: string): boolean {
    return !!this.st('SELECT 1 FROM containers WHERE name = ?').get(name);
  }
  insertContainer(c: ContainerRecord, pending: boolean): void {
    this.st(`INSERT INTO containers(id,name,mode,mode_target,netns,command,ports,dns,auto_remove,state,pid,pid_start,exit_code,created,started,finished,used,pending)
      VALUES(@id,@name,@mode,@modeTarget,@netns,@command,@ports,@dns,@autoRemove,@state,@pid,@pidStart,@exitCode,@created,@started,@finished,@used,@pending)`).run({
      ...c, command: JSON.stringify(c.command), ports: JSON.stringify(c.ports), dns: JSON.stringify(c.dns),
      autoRemove: c.autoRemove ? 1 : 0, used: c.used ? 1 : 0, pending: pending ? 1 : 0,
    });
  }
  commitContainer(id: string): void {
    this.st('UPDATE containers SET pending = 0 WHERE id = ?').run(id);
    this.st('UPDATE endpoints SET pending = 0 WHERE container_id = ?').run(id);
  }
  updateContainer(id: string, f: Partial<Pick<ContainerRecord, 'state' | 'pid' | 'pidStart' | 'exitCode' | 'started' | 'finished' | 'ports'>>): void {
    const cols: Record<string, string> = { state: 'state', pid: 'pid', pidStart: 'pid_start', exitCode: 'exit_code', started: 'started', finished: 'finished', ports: 'ports' };
    const sets: string[] = [];
    const vals: unknown[] = [];
    for (const [k, v] of Object.entries(f)) {
      sets.push(`${cols[k]} = ?`);
      vals.push(k === 'ports' ? JSON.stringify(v) : v);
    }
    if (sets.length) this.st(`UPDATE containers SET ${sets.join(', ')} WHERE id = ?`).run(...vals, id);
  }
  /** Records that a process is about to run in this container's netns (see the `used` column). */
  markUsed(id: string): void {
    this.st('UPDATE containers SET used = 1 WHERE id = ? AND used = 0').run(id);
  }
  deleteContainer(id: string): void {
    this.st('DELETE FROM endpoints WHERE container_id = ?').run(id);
    this.st('DELETE FROM containers WHERE id = ?').run(id);
  }
  /** Containers in mode container:<id>. */
  dependents(id: string): ContainerRecord[] {
    return (this.st('SELECT * FROM containers WHERE mode_target = ?').all(id) as Row[]).map(ctrFromRow);
  }

  savedEndpoints(containerId: string): SavedEndpoint[] {
    const r = this.st('SELECT saved_endpoints FROM containers WHERE id = ?').get(containerId) as Row | undefined;
    return r ? JSON.parse(r.saved_endpoints as string) : [];
  }
  setSavedEndpoints(containerId: string, saved: SavedEndpoint[]): void {
    this.st('UPDATE containers SET saved_endpoints = ? WHERE id = ?').run(JSON.stringify(saved), containerId);
  }

  /** Everything the DNS view needs about committed endpoints, in one query (no full-row decoding). */
  /** Every name the resolver answers: local endpoints, then other hosts' endpoints on overlay networks. */
  dnsEntries(): Array<{ networkId: string; ip: string; ip6: string | null; aliases: string[]; containerId: string; name: string; dns: string[] }> {
    const local = (this.st(`SELECT e.network_id, e.ip, e.ip6, e.aliases, c.id, c.name, c.dns FROM endpoints e JOIN containers c ON c.id = e.container_id
      WHERE e.pending = 0 AND c.pending = 0`).all() as Row[]).map((r) => ({
      networkId: r.network_id as string, ip: (r.ip as string | null) ?? '', ip6: (r.ip6 as string | null) ?? null,
      aliases: JSON.parse(r.aliases as string), containerId: r.id as string,
      name: r.name as string, dns: JSON.parse(r.dns as string),
    }));
    const remote = this.remoteEndpoints().map((r) => ({ networkId: r.networkId, ip: r.ip ?? '', ip6: r.ip6, aliases: r.aliases, containerId: r.key, name: r.name, dns: [] as string[] }));
    return remote.length ? [...local, ...remote] : local;
  }

  // ---- other hosts' endpoints on overlay networks
  remoteEndpoints(networkId?: string): RemoteEndpoint[] {
    const rows = (networkId === undefined
      ? this.st('SELECT * FROM remote_endpoints ORDER BY network_id, key').all()
      : this.st('SELECT * FROM remote_endpoints WHERE network_id = ? ORDER BY key').all(networkId)) as Row[];
    return rows.map((r) => ({
      networkId: r.network_id as string, key: r.key as string, host: r.host as string, underlay: r.underlay as string,
      name: r.name as string, aliases: JSON.parse(r.aliases as string), ip: (r.ip as string | null) ?? null,
      ip6: (r.ip6 as string | null) ?? null, mac: r.mac as string,
    }));
  }
  /** Makes the network's remote endpoints exactly `list` (a full resync from etcd); returns whether anything changed. */
  setRemoteEndpoints(networkId: string, list: RemoteEndpoint[]): boolean {
    const key = (e: RemoteEndpoint) => JSON.stringify([e.key, e.host, e.underlay, e.name, e.aliases, e.ip, e.ip6, e.mac]);
    const before = new Set(this.remoteEndpoints(networkId).map(key));
    const after = new Set(list.map(key));
    if (before.size === after.size && [...after].every((k) => before.has(k))) return false;
    this.st('DELETE FROM remote_endpoints WHERE network_id = ?').run(networkId);
    const ins = this.st('INSERT INTO remote_endpoints(network_id,key,host,underlay,name,aliases,ip,ip6,mac) VALUES(?,?,?,?,?,?,?,?,?)');
    for (const e of list) ins.run(networkId, e.key, e.host, e.underlay, e.name, JSON.stringify(e.aliases), e.ip, e.ip6, e.mac);
    return true;
  }

  // ---- endpoints
  endpoints(): EndpointRecord[] {
    return (this.st(`${EP_SELECT} WHERE e.pending = 0 ORDER BY e.container_id, e.ifname`).all() as Row[]).map(epFromRow);
  }
  allEndpointsIncludingPending(): Array<EndpointRecord & { pending: boolean }> {
    return (this.st(`${EP_SELECT} ORDER BY e.container_id, e.ifname`).all() as Row[]).map((r) => ({ ...epFromRow(r), pending: !!r.pending }));
  }
  endpointsOf(containerId: string): EndpointRecord[] {
    return (this.st(`${EP_SELECT} WHERE e.container_id = ? ORDER BY e.ifname`).all(containerId) as Row[]).map(epFromRow);
  }
  endpointsOn(networkId: string): EndpointRecord[] {
    return (this.st(`${EP_SELECT} WHERE e.network_id = ? ORDER BY e.ip, e.ip6`).all(networkId) as Row[]).map(epFromRow);
  }
  /** "Is this address taken on this network?" as an O(1) indexed lookup (UNIQUE(network_id, ip)). */
  addressesOf(networkId: string): { has(ip: string): boolean } {
    const st = this.st('SELECT 1 FROM endpoints WHERE network_id = ? AND ip = ?');
    return { has: (ip: string) => st.get(networkId, ip) !== undefined };
  }
  /** The same for IPv6 addresses (UNIQUE(network_id, ip6); canonical text). */
  addresses6Of(networkId: string): { has(ip: string): boolean } {
    const st = this.st('SELECT 1 FROM endpoints WHERE network_id = ? AND ip6 = ?');
    return { has: (ip: string) => st.get(networkId, ip) !== undefined };
  }

  insertEndpoint(e: EndpointRecord, pending: boolean): void {
    this.st(`INSERT INTO endpoints(container_id,network_id,ifname,host_if,ip,ip6,mac,aliases,static_ip,static_ip6,pending)
      VALUES(@containerId,@networkId,@ifname,@hostIf,@ip,@ip6,@mac,@aliases,@staticIp,@staticIp6,@pending)`).run({
      ...e, ip: e.ip === '' ? null : e.ip, ip6: e.ip6 ?? null, aliases: JSON.stringify(e.aliases), staticIp: e.staticIp ? 1 : 0,
      staticIp6: e.staticIp6 ? 1 : 0, pending: pending ? 1 : 0,
    });
  }
  commitEndpoint(containerId: string, networkId: string): void {
    this.st('UPDATE endpoints SET pending = 0 WHERE container_id = ? AND network_id = ?').run(containerId, networkId);
  }
  deleteEndpoint(containerId: string, networkId: string): void {
    this.st('DELETE FROM endpoints WHERE container_id = ? AND network_id = ?').run(containerId, networkId);
  }

  // ---- garbage: kernel objects whose store rows are gone but which may still exist in the kernel. Written in
  // the same transaction that deletes the rows, removed after the kernel objects are gone; reconcile finishes
  // whatever a crash interrupted.
  addGarbage(kind: GarbageKind, name: string): number {
    return Number(this.st('INSERT INTO garbage(kind, name, since) VALUES(?, ?, ?)').run(kind, name, Date.now()).lastInsertRowid);
  }
  garbage(): GarbageRow[] {
    return this.st('SELECT id, kind, name, since FROM garbage ORDER BY id').all() as GarbageRow[];
  }
  /** Dying veths recorded before `before` (ms since the epoch). */
  dyingLinks(before = Infinity): GarbageRow[] {
    return this.st(`SELECT id, kind, name, since FROM garbage WHERE kind = 'veth' AND since < ? ORDER BY id`)
      .all(before === Infinity ? Number.MAX_SAFE_INTEGER : before) as GarbageRow[];
  }
  dropGarbage(ids: number[]): void {
    const st = this.st('DELETE FROM garbage WHERE id = ?');
    for (const id of ids) st.run(id);
  }

  /** True when an operation was interrupted: pending rows or unfinished removals exist (cheap: indexed probes).
   *  Dying veths are not unfinished work: the kernel is removing them (sweepDyingLinks). */
  hasUnfinished(): boolean {
    return !!this.st(`SELECT 1 WHERE EXISTS(SELECT 1 FROM garbage WHERE kind <> 'veth') OR EXISTS(SELECT 1 FROM networks WHERE pending = 1)
      OR EXISTS(SELECT 1 FROM containers WHERE pending = 1) OR EXISTS(SELECT 1 FROM endpoints WHERE pending = 1)`).get();
  }

  // ---- impairments (src/engine/netem.ts)
  impairments(): ImpairmentRow[] {
    return (this.st('SELECT * FROM impairments ORDER BY created').all() as Row[]).map(impFromRow);
  }
  impairment(containerId: string, networkId: string): ImpairmentRow | null {
    const r = this.st('SELECT * FROM impairments WHERE container_id = ? AND network_id = ?').get(containerId, networkId) as Row | undefined;
    return r ? impFromRow(r) : null;
  }
  impairmentsOf(containerId: string): ImpairmentRow[] {
    return (this.st('SELECT * FROM impairments WHERE container_id = ? ORDER BY created').all(containerId) as Row[]).map(impFromRow);
  }
  putImpairment(i: ImpairmentRow): void {
    this.st(`INSERT INTO impairments(container_id,network_id,spec,prev,created,expires,healer_pid,healer_start,line_pid,line_start,pending)
      VALUES(@containerId,@networkId,@spec,@prev,@created,@expires,@healerPid,@healerStart,@linePid,@lineStart,@pending)
      ON CONFLICT(container_id, network_id) DO UPDATE SET spec = excluded.spec, prev = excluded.prev, created = excluded.created,
        expires = excluded.expires, healer_pid = excluded.healer_pid, healer_start = excluded.healer_start,
        line_pid = excluded.line_pid, line_start = excluded.line_start, pending = excluded.pending`)
      .run({ ...i, pending: i.pending ? 1 : 0 });
  }
  setImpairmentHealer(containerId: string, networkId: string, pid: number | null, start: string | null): void {
    this.st('UPDATE impairments SET healer_pid = ?, healer_start = ? WHERE container_id = ? AND network_id = ?').run(pid, start, containerId, networkId);
  }
  /** The spec as applied (the engine records how: netem or the delay line) and its delay line's process. */
  setImpairmentApplied(containerId: string, networkId: string, spec: string, pid: number | null, start: string | null): void {
    this.st('UPDATE impairments SET spec = ?, line_pid = ?, line_start = ? WHERE container_id = ? AND network_id = ?').run(spec, pid, start, containerId, networkId);
  }
  commitImpairment(containerId: string, networkId: string): void {
    this.st('UPDATE impairments SET pending = 0, prev = NULL WHERE container_id = ? AND network_id = ?').run(containerId, networkId);
  }
  deleteImpairment(containerId: string, networkId: string): void {
    this.st('DELETE FROM impairments WHERE container_id = ? AND network_id = ?').run(containerId, networkId);
  }
  /** Impairments whose --duration has passed (indexed). */
  expiredImpairments(now: number): ImpairmentRow[] {
    return (this.st('SELECT * FROM impairments WHERE expires IS NOT NULL AND expires <= ?').all(now) as Row[]).map(impFromRow);
  }
  hasPendingImpairment(): boolean {
    return !!this.st('SELECT 1 FROM impairments WHERE pending = 1 LIMIT 1').get();
  }

  // ---- partitions
  partitions(): PartitionRecord[] {
    return (this.st('SELECT * FROM partitions ORDER BY network_id').all() as Row[]).map(partFromRow);
  }
  partitionOf(networkId: string): PartitionRecord | null {
    const r = this.st('SELECT * FROM partitions WHERE network_id = ?').get(networkId) as Row | undefined;
    return r ? partFromRow(r) : null;
  }
  /** Inserts or replaces the partition of its network. */
  putPartition(p: PartitionRecord): void {
    this.st(`INSERT OR REPLACE INTO partitions(network_id,id,groups,oneway,created,expires,timer_pid,timer_start)
      VALUES(@networkId,@id,@groups,@oneway,@created,@expires,@timerPid,@timerStart)`).run({ ...p, groups: JSON.stringify(p.groups), oneway: p.oneway ? 1 : 0 });
  }
  setPartitionTimer(networkId: string, id: string, pid: number | null, start: string | null): void {
    this.st('UPDATE partitions SET timer_pid = ?, timer_start = ? WHERE network_id = ? AND id = ?').run(pid, start, networkId, id);
  }
  deletePartition(networkId: string): void {
    this.st('DELETE FROM partitions WHERE network_id = ?').run(networkId);
  }
  /** Is there a partition whose --duration has run out by `now` (ms)? One indexed probe (every mutating command). */
  hasExpiredPartitions(now: number): boolean {
    return !!this.st('SELECT 1 FROM partitions WHERE expires IS NOT NULL AND expires <= ? LIMIT 1').get(now);
  }
  /** Is any of these networks partitioned? (Endpoints changing there re-render the firewall.) */
  anyPartitioned(networkIds: string[]): boolean {
    if (!networkIds.length) return false;
    const st = this.st('SELECT 1 FROM partitions WHERE network_id = ?');
    return networkIds.some((id) => st.get(id) !== undefined);
  }

  // ---- meta
  getMeta(key: string): string | null {
    const r = this.st('SELECT value FROM meta WHERE key = ?').get(key) as Row | undefined;
    return (r?.value as string | undefined) ?? null;
  }
  /** A stable random id of this nsnet host, made once and kept in the store (Docker's engine id): the ULA /48
   *  of IPv6 networks is derived from it (ulaPrefixFromId). Independent of the state directory's path. */
  engineId(): string {
    const have = this.getMeta('engine.id');
    if (have) return have;
    return this.tx(() => {
      this.st('INSERT OR IGNORE INTO meta(key, value) VALUES(?, ?)').run('engine.id', randomBytes(32).toString('hex'));
      return this.getMeta('engine.id')!;
    });
  }
  setMeta(key: string, value: string): void {
    this.st('INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
  }
}
