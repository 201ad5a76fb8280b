// A fake kernel for the engine's unit tests: Host.open({ kernel }) (src/engine/host.ts KernelPorts) with links,
// addresses, routes, tc qdiscs and filters, nftables tables, named network namespaces, sysctls and the resolver's
// process held in memory. Nothing here opens a socket, a netns or a libnftables context: a test on it needs no root
// and no CAP_NET_ADMIN, and touches no kernel object. Every call the engine makes is logged (FakeKernel.calls), so a
// test can assert what reached "the kernel" and in which order; FakeKernel.failOn makes chosen calls throw, as a
// kernel request that fails would.
//
// The state is plain data (FakeKernel.state): snapshot() copies it, and `new FakeKernel(copy)` is the kernel as it
// was at that moment (the unit tests' kill -9: test/unit/engine-tx.test.ts).
import fs from 'node:fs';
import path from 'node:path';
import type { KernelPorts } from '../../src/engine/host.js';
import type { ResolverPort } from '../../src/engine/dnsctl.js';
import {
  NetlinkError, encodeSockFilter, type AddrInfo, type BpfFilterSpec, type BridgeOptions, type BridgePortInfo, type LinkInfo, type Netlink,
  type NetlinkBatch, type NetlinkPort, type QdiscInfo, type RouteInfo, type RouteSpec, type TcFilterInfo, type TcTarget, type VethOptions, type VxlanOptions, type FdbInfo, type NeighbourInfo,
} from '../../src/kernel/netlink.js';
import { NftError, type NftPort } from '../../src/kernel/nft.js';

// ------------------------------------------------------------------------------------------------ state

interface FakeLink extends LinkInfo {
  hairpin: boolean;
  isolated: boolean;
}

interface FakeFilter {
  block: number;
  prio: number;
  protocolBe: number;
  handle: number;
  name: string;
  ops: number[];
}

/** One network namespace's rtnetlink objects. */
export interface NetnsState {
  nextIndex: number;
  links: FakeLink[];
  addrs: AddrInfo[];
  routes: RouteInfo[];
  qdiscs: QdiscInfo[];
  filters: FakeFilter[];
}

interface NftSet {
  name: string;
  map: boolean;
  comment: string | null;
  /** Elements as the engine flattens libnftables' JSON: `KEY` or [KEY, VALUE], parts joined with a space. */
  elems: Array<string | [string, string]>;
}

interface NftChain {
  name: string;
  hook: string | null;
  policy: string | null;
  rules: string[];
}

interface NftTable {
  family: string;
  name: string;
  sets: NftSet[];
  chains: NftChain[];
}

export interface KernelState {
  host: NetnsState;
  /** Named namespaces (/run/netns/NAME). */
  netns: Record<string, NetnsState & { inode: number }>;
  nft: NftTable[];
  sysctls: Record<string, string>;
  resolver: { running: boolean };
  nextInode: number;
}

function emptyNetns(): NetnsState {
  return {
    nextIndex: 2,
    links: [{ index: 1, name: 'lo', kind: null, master: null, alias: null, mac: '00:00:00:00:00:00', mtu: 65536, up: false, operUp: false, operState: 'unknown', flags: 8, hairpin: false, isolated: false }],
    addrs: [], routes: [], qdiscs: [], filters: [],
  };
}

export function emptyKernel(): KernelState {
  return { host: emptyNetns(), netns: {}, nft: [], sysctls: {}, resolver: { running: false }, nextInode: 4026532000 };
}

// ------------------------------------------------------------------------------------------------ netlink

const nlError = (op: string, code: string, errno: number, what: string) => new NetlinkError(`${op}: ${what} (${code})`, code, errno, op);

/** The part of Netlink (NetlinkPort) drivers and the diff engine use, on one namespace's state. */
export class FakeNetlink implements NetlinkPort {
  constructor(private readonly k: FakeKernel, private readonly where: string, private readonly ns: () => NetnsState) {}

  private log(op: string, ...args: unknown[]): void {
    this.k.record(`${this.where}.${op}`, args);
  }

  private link(index: number, op: string): FakeLink {
    const l = this.ns().links.find((x) => x.index === index);
    if (!l) throw nlError(op, 'ENODEV', 19, `no link with index ${index}`);
    return l;
  }

  private add(name: string, kind: string, o: { mtu?: number; mac?: string; alias?: string; up?: boolean; master?: number }, op: string): number {
    const s = this.ns();
    if (s.links.some((l) => l.name === name)) throw nlError(op, 'EEXIST', 17, `${name} exists`);
    const index = s.nextIndex++;
    const up = !!o.up;
    s.links.push({
      index, name, kind, master: o.master ?? null, alias: o.alias ?? null, mac: o.mac ?? `02:00:00:00:${(index >> 8).toString(16).padStart(2, '0')}:${(index & 255).toString(16).padStart(2, '0')}`,
      mtu: o.mtu ?? 1500, up, operUp: up, operState: up ? 'up' : 'down', flags: up ? 1 : 0, hairpin: false, isolated: false,
    });
    return index;
  }

  createBridge(name: string, o: BridgeOptions = {}): number {
    this.log('createBridge', name);
    return this.add(name, 'bridge', o, 'createBridge');
  }

  /** Not faked: a veth's peer goes into a container netns given as an fd, and the fake opens none (network
   *  create/rm and reconcile make no veth; attach is the integration tests'). */
  createVeth(hostName: string, peerName: string, _peerNetnsFd: number, _o: VethOptions = {}): number {
    this.log('createVeth', hostName, peerName);
    throw nlError('createVeth', 'EOPNOTSUPP', 95, 'the fake kernel opens no container netns fd');
  }

  createVxlan(name: string, _o: VxlanOptions): number {
    this.log('createVxlan', name);
    throw nlError('createVxlan', 'EOPNOTSUPP', 95, 'the fake kernel has no VXLAN devices');
  }

  fdbEntries(_index: number): FdbInfo[] {
    return [];
  }

  neighbours(_index?: number, _family?: 4 | 6): NeighbourInfo[] {
    return [];
  }

  ifindex(name: string): number | null {
    this.log('ifindex', name);
    return this.ns().links.find((l) => l.name === name)?.index ?? null;
  }

  setUp(index: number): void {
    this.log('setUp', index);
    Object.assign(this.link(index, 'setUp'), { up: true, operUp: true, operState: 'up', flags: 1 });
  }

  setDown(index: number): void {
    this.log('setDown', index);
    Object.assign(this.link(index, 'setDown'), { up: false, operUp: false, operState: 'down', flags: 0 });
  }

  setBridgePort(index: number, o: { hairpin?: boolean; isolated?: boolean }): void {
    this.log('setBridgePort', index, o);
    const l = this.link(index, 'setBridgePort');
    if (o.hairpin !== undefined) l.hairpin = o.hairpin;
    if (o.isolated !== undefined) l.isolated = o.isolated;
  }

  setMaster(index: number, master: number | null): void {
    this.log('setMaster', index, master);
    if (master !== null) this.link(master, 'setMaster');
    this.link(index, 'setMaster').master = master;
  }

  setAlias(index: number, alias: string): void {
    this.log('setAlias', index, alias);
    this.link(index, 'setAlias').alias = alias;
  }

  deleteLink(index: number): void {
    this.log('deleteLink', index);
    const s = this.ns();
    const l = this.link(index, 'deleteLink');
    s.links = s.links.filter((x) => x !== l);
    for (const x of s.links) if (x.master === index) x.master = null;
    s.addrs = s.addrs.filter((a) => a.index !== index);
    s.routes = s.routes.filter((r) => r.oif !== index);
    s.qdiscs = s.qdiscs.filter((q) => q.index !== index);
    // A shared block lives while something is bound to it.
    const bound = new Set(s.qdiscs.flatMap((q) => [q.ingressBlock, q.egressBlock]));
    s.filters = s.filters.filter((f) => bound.has(f.block));
  }

  linkByName(name: string): LinkInfo | null {
    this.log('linkByName', name);
    const l = this.ns().links.find((x) => x.name === name);
    return l ? info(l) : null;
  }

  links(): LinkInfo[] {
    this.log('links');
    return this.ns().links.map(info);
  }

  bridgePorts(): BridgePortInfo[] {
    this.log('bridgePorts');
    return this.ns().links.filter((l) => l.master !== null).map((l) => ({ index: l.index, master: l.master, hairpin: l.hairpin, isolated: l.isolated, learning: true }));
  }

  addAddress(index: number, address: string, prefixLen: number): void {
    this.log('addAddress', index, `${address}/${prefixLen}`);
    this.link(index, 'addAddress');
    const s = this.ns();
    if (s.addrs.some((a) => a.index === index && a.address === address)) throw nlError('addAddress', 'EEXIST', 17, `${address} exists`);
    s.addrs.push({ index, family: address.includes(':') ? 6 : 4, address, prefixLen, scope: 0 });
  }

  addresses(family?: 4 | 6): AddrInfo[] {
    this.log('addresses');
    return this.ns().addrs.filter((a) => family === undefined || a.family === family).map((a) => ({ ...a }));
  }

  routes(family?: 4 | 6): RouteInfo[] {
    this.log('routes');
    return this.ns().routes.filter((r) => family === undefined || r.family === family).map((r) => ({ ...r }));
  }

  addRoute(r: RouteSpec): void {
    this.log('addRoute', `${r.dst}/${r.prefixLen}`);
    this.ns().routes.push({
      family: r.dst.includes(':') ? 6 : 4, dst: r.dst, prefixLen: r.prefixLen, gateway: r.gateway ?? null, oif: r.oif ?? null,
      table: r.table ?? 254, protocol: 3, scope: 0,
    } as RouteInfo);
  }

  addClsact(index: number, o: { ingressBlock?: number; egressBlock?: number } = {}): void {
    this.log('addClsact', index, o);
    this.link(index, 'addClsact');
    const s = this.ns();
    if (s.qdiscs.some((q) => q.index === index && q.kind === 'clsact')) throw nlError('addClsact', 'EEXIST', 17, 'clsact exists');
    s.qdiscs.push({ index, parent: 0xfffffff1, kind: 'clsact', ingressBlock: o.ingressBlock ?? 0, egressBlock: o.egressBlock ?? 0 });
  }

  deleteClsact(index: number): void {
    this.log('deleteClsact', index);
    const s = this.ns();
    s.qdiscs = s.qdiscs.filter((q) => !(q.index === index && q.kind === 'clsact'));
  }

  qdiscs(): QdiscInfo[] {
    this.log('qdiscs');
    return this.ns().qdiscs.map((q) => ({ ...q }));
  }

  addBpfFilter(target: TcTarget, f: BpfFilterSpec): void {
    this.log('addBpfFilter', target, f.name);
    if (!('block' in target)) throw nlError('addBpfFilter', 'EOPNOTSUPP', 95, 'the fake keeps filters of shared blocks only');
    const s = this.ns();
    if (!s.qdiscs.some((q) => q.ingressBlock === target.block || q.egressBlock === target.block)) throw nlError('addBpfFilter', 'EINVAL', 22, `block ${target.block} does not exist`);
    s.filters = s.filters.filter((x) => !(f.replace && x.block === target.block && x.prio === f.prio && x.handle === f.handle));
    s.filters.push({ block: target.block, prio: f.prio, protocolBe: f.protocolBe, handle: f.handle, name: f.name, ops: [...encodeSockFilter(f.prog)] });
  }

  filters(target: TcTarget): TcFilterInfo[] {
    this.log('filters', target);
    if (!('block' in target)) return [];
    return this.ns().filters.filter((f) => f.block === target.block)
      .map((f) => ({ prio: f.prio, protocolBe: f.protocolBe, handle: f.handle, kind: 'bpf', name: null, ops: Buffer.from(f.ops), directAction: true }));
  }

  /** The batch's requests applied one after the other (the kernel applies a batch in order too, stopping at the
   *  first failure). */
  batch(fn: (b: NetlinkBatch) => void): void {
    const ops: Array<() => void> = [];
    const rec: Record<string, (...a: never[]) => unknown> = {};
    const self = this as unknown as Record<string, (...a: unknown[]) => unknown>;
    for (const m of ['setUp', 'setDown', 'setMaster', 'setAlias', 'setBridgePort', 'addClsact', 'addAddress', 'addRoute', 'deleteLink', 'addBpfFilter']) {
      rec[m] = (...a: unknown[]) => { ops.push(() => self[m]!(...a)); return rec; };
    }
    fn(rec as unknown as NetlinkBatch);
    for (const op of ops) op();
  }

  /** netem's read-back of tc objects (src/kernel/tc.ts qdiscsOf, classesOf: raw dumps, outside NetlinkPort). The
   *  fake holds no root qdisc, class or netem leaf, so those dumps are empty: no impairment anywhere. */
  dump<T>(op: string): T[] {
    this.log('dump', op);
    if (op === 'tcQdiscs' || op === 'tcClasses') return [];
    throw nlError(op, 'EOPNOTSUPP', 95, 'not in the fake kernel');
  }

  close(): void {
    /* nothing open */
  }
}

function info(l: FakeLink): LinkInfo {
  const { hairpin: _h, isolated: _i, ...rest } = l;
  return { ...rest };
}

// ------------------------------------------------------------------------------------------------ nftables

const missing = (script: string, what: string) => new NftError(`nftables: Error: No such file or directory; did you mean ${what}?`, script);

const unquote = (s: string) => s.replace(/"((?:[^"\\]|\\.)*)"/g, '$1');
const COMMENT = / ?comment "(?:[^"\\]|\\.)*"/g;

/** An element line of a rendered set or map, flattened as the engine flattens libnftables' JSON listing. */
function parseElement(line: string, map: boolean): string | [string, string] {
  const t = line.trim().replace(/,$/, '').replace(COMMENT, '');
  const flat = (x: string) => unquote(x.trim()).split(' . ').join(' ');
  if (!map) return flat(t);
  const [k, v] = t.split(' : ');
  return [flat(k!), flat(v ?? '')];
}

/** The tables of a rendered script (src/firewall/render.ts's layout: one set/map/chain per block, one element and
 *  one rule per line). */
function parseTable(family: string, name: string, body: string[], script: string): NftTable {
  const t: NftTable = { family, name, sets: [], chains: [] };
  for (let i = 0; i < body.length; i++) {
    const line = body[i]!;
    const m = /^\t(set|map|chain) (\S+) \{$/.exec(line);
    if (!m) {
      if (line.trim() === '' || /^\tcomment /.test(line)) continue;
      throw new NftError(`fake nft: unsupported line in table ${family} ${name}: ${line}`, script);
    }
    const block: string[] = [];
    for (i++; i < body.length && body[i] !== '\t}'; i++) block.push(body[i]!);
    if (m[1] === 'chain') {
      const c: NftChain = { name: m[2]!, hook: null, policy: null, rules: [] };
      for (const b of block) {
        const x = b.trim();
        const base = /^type \S+ hook (\S+) priority [^;]+; policy (\S+);$/.exec(x);
        if (base) { c.hook = base[1]!; c.policy = base[2]!; continue; }
        if (x === '' || /^comment "/.test(x)) continue;
        c.rules.push(x);
      }
      t.chains.push(c);
    } else {
      const s: NftSet = { name: m[2]!, map: m[1] === 'map', comment: null, elems: [] };
      let inElems = false;
      for (const b of block) {
        const x = b.trim();
        if (inElems) { if (x === '}') inElems = false; else s.elems.push(parseElement(x, s.map)); continue; }
        if (x === 'elements = {') inElems = true;
        else if (x.startsWith('comment "')) s.comment = JSON.parse(x.slice('comment '.length)) as string;
      }
      t.sets.push(s);
    }
  }
  return t;
}

function tableListing(t: NftTable): unknown[] {
  return [
    { table: { family: t.family, name: t.name } },
    ...t.sets.map((s) => ({ [s.map ? 'map' : 'set']: { family: t.family, table: t.name, name: s.name, ...(s.comment !== null ? { comment: s.comment } : {}), ...(s.elems.length ? { elem: s.elems } : {}) } })),
    ...t.chains.flatMap((c) => [
      { chain: { family: t.family, table: t.name, name: c.name, ...(c.hook ? { hook: c.hook, policy: c.policy } : {}) } },
      ...c.rules.map((r) => ({ rule: { family: t.family, table: t.name, chain: c.name, text: r } })),
    ]),
  ];
}

/** libnftables on the fake state: the engine's scripts are applied (all or nothing), its listings answered in
 *  libnftables' JSON as far as the engine reads it. `rulesets` keeps every full ruleset rendered. */
export class FakeNft implements NftPort {
  constructor(private readonly k: FakeKernel) {}

  run(script: string, json = false): string {
    const first = script.split('\n').find((l) => l.trim() && !l.startsWith('#'))?.trim() ?? '';
    this.k.record('nft.run', [first + (json ? ' (json)' : '')]);
    const tables = this.k.state.nft;
    let m: RegExpExecArray | null;
    if ((m = /^list set (\S+) (\S+) (\S+)$/.exec(script))) {
      const s = tables.find((t) => t.family === m![1] && t.name === m![2])?.sets.find((x) => x.name === m![3] && !x.map);
      if (!s) throw missing(script, `set ${m[3]}`);
      return JSON.stringify({ nftables: [{ set: { family: m[1], table: m[2], name: s.name, ...(s.comment !== null ? { comment: s.comment } : {}), ...(s.elems.length ? { elem: s.elems } : {}) } }] });
    }
    if (script === 'list tables') return JSON.stringify({ nftables: tables.map((t) => ({ table: { family: t.family, name: t.name } })) });
    if (script === 'list chains') {
      return JSON.stringify({ nftables: tables.flatMap((t) => t.chains.map((c) => ({ chain: { family: t.family, table: t.name, name: c.name, ...(c.hook ? { hook: c.hook, policy: c.policy } : {}) } }))) });
    }
    if ((m = /^list table (\S+) (\S+)$/.exec(script))) {
      const t = tables.find((x) => x.family === m![1] && x.name === m![2]);
      if (!t) throw missing(script, `table ${m[2]}`);
      return JSON.stringify({ nftables: tableListing(t) });
    }
    if ((m = /^list chain (\S+) (\S+) (\S+)$/.exec(script))) {
      const t = tables.find((x) => x.family === m![1] && x.name === m![2]);
      const c = t?.chains.find((x) => x.name === m![3]);
      if (!t || !c) throw missing(script, `chain ${m[3]}`);
      return JSON.stringify({ nftables: tableListing({ ...t, sets: [], chains: [c] }) });
    }
    this.k.failIfAsked('nft.run', [first]);
    // One transaction: applied to a copy, which replaces the tables only when every statement applied.
    const next = structuredClone(tables);
    const lines = script.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      if (line.trim() === '' || line.startsWith('#')) continue;
      if ((m = /^table (\S+) (\S+) \{\}$/.exec(line))) {
        if (!next.some((t) => t.family === m![1] && t.name === m![2])) next.push({ family: m[1]!, name: m[2]!, sets: [], chains: [] });
      } else if ((m = /^delete table (\S+) (\S+)$/.exec(line))) {
        const k = next.findIndex((t) => t.family === m![1] && t.name === m![2]);
        if (k < 0) throw missing(script, `table ${m[2]}`);
        next.splice(k, 1);
      } else if ((m = /^table (\S+) (\S+) \{$/.exec(line))) {
        const body: string[] = [];
        for (i++; i < lines.length && lines[i] !== '}'; i++) body.push(lines[i]!);
        const t = parseTable(m[1]!, m[2]!, body, script);
        const k = next.findIndex((x) => x.family === t.family && x.name === t.name);
        if (k < 0) next.push(t);
        else next[k] = { ...t, sets: [...next[k]!.sets.filter((s) => !t.sets.some((x) => x.name === s.name)), ...t.sets], chains: [...next[k]!.chains.filter((c) => !t.chains.some((x) => x.name === c.name)), ...t.chains] };
      } else if ((m = /^delete chain (\S+) (\S+) (\S+)$/.exec(line))) {
        const t = next.find((x) => x.family === m![1] && x.name === m![2]);
        if (!t || !t.chains.some((c) => c.name === m![3])) throw missing(script, `chain ${m[3]}`);
        t.chains = t.chains.filter((c) => c.name !== m![3]);
      } else {
        throw new NftError(`fake nft: unsupported statement: ${line}`, script);
      }
    }
    this.k.state.nft = next;
    this.k.rulesets.push(script);
    return '';
  }

  listTable(family: string, name: string): unknown | null {
    try {
      return JSON.parse(this.run(`list table ${family} ${name}`, true));
    } catch (e) {
      if (e instanceof NftError && /No such file or directory/.test(e.message)) return null;
      throw e;
    }
  }

  close(): void {
    /* nothing open */
  }
}

// ------------------------------------------------------------------------------------------------ the kernel

export interface Call {
  op: string;
  args: unknown[];
}

/** KernelPorts in memory. */
export class FakeKernel implements KernelPorts {
  state: KernelState;
  /** Every call the engine made, in order. */
  readonly calls: Call[] = [];
  /** Every full script applied by nftables (the last one: the ruleset now). */
  readonly rulesets: string[] = [];
  /** A call matching (op, and args' text) throws this error instead of acting (a kernel request that fails). */
  failOn: { op: string; match?: RegExp; error?: Error } | null = null;

  constructor(state: KernelState = emptyKernel()) {
    this.state = state;
  }

  record(op: string, args: unknown[]): void {
    this.calls.push({ op, args });
    this.failIfAsked(op, args);
  }

  failIfAsked(op: string, args: unknown[]): void {
    const f = this.failOn;
    if (f && f.op === op && (!f.match || f.match.test(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ')))) {
      throw f.error ?? new Error(`fake kernel: ${op} failed (as asked by the test)`);
    }
  }

  /** The operations called (op names only), optionally those starting with `prefix`. */
  ops(prefix = ''): string[] {
    return this.calls.map((c) => c.op).filter((o) => o.startsWith(prefix));
  }

  /** A copy of the state as it is now. */
  snapshot(): KernelState {
    return structuredClone(this.state);
  }

  /** The last full nftables ruleset applied ('' before the first). */
  get ruleset(): string {
    return this.rulesets.at(-1) ?? '';
  }

  // What a test arranges (not calls of the engine).

  /** Adds a link to the host netns as someone (or a crash) left it. */
  addHostLink(name: string, o: { kind?: string; alias?: string | null; master?: number | null } = {}): number {
    const s = this.state.host;
    const index = s.nextIndex++;
    s.links.push({ index, name, kind: o.kind ?? 'dummy', master: o.master ?? null, alias: o.alias ?? null, mac: '02:00:00:00:ff:ff', mtu: 1500, up: true, operUp: true, operState: 'up', flags: 1, hairpin: false, isolated: false });
    return index;
  }

  hostLink(name: string): LinkInfo | null {
    const l = this.state.host.links.find((x) => x.name === name);
    return l ? info(l) : null;
  }

  /** Adds a named netns (its lo carrying `loAlias`, as nsnet marks its sandboxes'). */
  addNetns(name: string, loAlias: string | null = null): void {
    const ns = { ...emptyNetns(), inode: this.state.nextInode++ };
    ns.links[0]!.alias = loAlias;
    this.state.netns[name] = ns;
  }

  // ---- KernelPorts

  inHost<T>(fn: () => T): T {
    this.record('inHost', []);
    return fn();
  }

  openNetlink(): Netlink {
    this.record('openNetlink', []);
    // Typed as Netlink for Host.nl's other users (netem, explain), which these tests do not run: what the fake
    // implements is NetlinkPort, all that drivers and the diff engine may call.
    return new FakeNetlink(this, 'nl', () => this.state.host) as unknown as Netlink;
  }

  openNft(): NftPort {
    this.record('openNft', []);
    return new FakeNft(this);
  }

  writeSysctl(key: string, value: string): void {
    this.record('sysctl', [key, value]);
    this.state.sysctls[key] = value;
  }

  enableIPv6(ifname: string): void {
    this.record('enableIPv6', [ifname]);
    this.state.sysctls[`net.ipv6.conf.${ifname}.disable_ipv6`] = '0';
    this.state.sysctls[`net.ipv6.conf.${ifname}.accept_ra`] = '0';
  }

  ipv6Available(): boolean {
    this.record('ipv6Available', []);
    return true;
  }

  readonly netns: KernelPorts['netns'] = {
    exists: (name) => { this.record('netns.exists', [name]); return name in this.state.netns; },
    list: () => { this.record('netns.list', []); return Object.keys(this.state.netns); },
    remove: (name) => { this.record('netns.remove', [name]); delete this.state.netns[name]; },
    inode: (name) => {
      this.record('netns.inode', [name]);
      const ns = this.state.netns[name];
      if (!ns) throw Object.assign(new Error(`ENOENT: /run/netns/${name}`), { code: 'ENOENT' });
      return ns.inode;
    },
    withNetlink: <T>(name: string, fn: (nl: Netlink) => T): T => {
      this.record('netns.withNetlink', [name]);
      if (!(name in this.state.netns)) throw Object.assign(new Error(`ENOENT: /run/netns/${name}`), { code: 'ENOENT' });
      // As openNetlink: a NetlinkPort (and netem's read-back dumps) typed as Netlink.
      return fn(new FakeNetlink(this, `netns[${name}]`, () => this.state.netns[name]!) as unknown as Netlink);
    },
    killProcesses: (name) => { this.record('netns.killProcesses', [name]); return 0; },
    pids: (inode) => { this.record('netns.pids', [inode]); return []; },
  };

  /** The resolver: "started" and "told" by acknowledging the view's generation as the real one does
   *  (<root>/dns/view.json.loaded), so the engine's wait for it returns at once. */
  readonly resolver: ResolverPort = {
    available: () => true,
    running: () => { this.record('resolver.running', []); return this.state.resolver.running; },
    start: (h) => { this.record('resolver.start', []); this.state.resolver.running = true; acknowledge(h.root); },
    reload: (h) => { this.record('resolver.reload', []); acknowledge(h.root); },
    stop: () => { this.record('resolver.stop', []); this.state.resolver.running = false; },
  };
}

function acknowledge(root: string): void {
  const view = path.join(root, 'dns', 'view.json');
  let gen = (JSON.parse(fs.readFileSync(view, 'utf8')) as { generation: number }).generation;
  try {
    for (const l of fs.readFileSync(`${view}.delta`, 'utf8').split('\n')) if (l) gen = Math.max(gen, (JSON.parse(l) as { generation: number }).generation);
  } catch { /* no delta log */ }
  fs.writeFileSync(`${view}.loaded`, String(gen), { mode: 0o644 });
}
