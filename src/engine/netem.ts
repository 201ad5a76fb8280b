// Link impairment (`nsnet netem`): delay, jitter, loss, rate, duplication, corruption, reordering on a container's
// link on one network, optionally only towards some peers (--to), optionally for a while (--duration).
//
// Both directions of the link are impaired: the container side's egress (its eth) and the host side's egress (the
// veth on the bridge, towards the container), so a delay of 100 ms adds about 200 ms to a round trip. The kernel
// objects are src/kernel/tc.ts's (htb + cls_bpf, netem as the leaf when the kernel has it).
//
// Impairments are state: one row per container and network (store table `impairments`), written as pending, applied,
// committed (crash points netem:*); check compares the kernel with it, reconcile restores it and removes what nsnet
// left without a row; a row whose endpoint is released (a stopped container) is dormant and applied again when the
// sandbox is rebuilt. --duration heals by itself: a small detached healer (its PID recorded) runs `nsnet netem
// --expire` when the time is up, and every later mutating command and reconcile remove what has expired anyway.
import { childProcess } from '../util/lazy.js';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { findDelayLines, type DelayLineConfig } from '../kernel/delayline.js';
import type { Netlink } from '../kernel/netlink.js';
import { netnsPath } from '../kernel/netns.js';
import { isAlive, processStart, signal } from '../kernel/proc.js';
import * as tc from '../kernel/tc.js';
import type { ImpairmentRow } from '../store/store.js';
import type { ContainerRecord, EndpointRecord, NetworkRecord } from '../types.js';
import { UserError, showValue } from '../util/errors.js';
import { parseCidr, tryParseIPv4 } from '../util/ip.js';
import { isSafeName } from '../util/validate.js';
import { crashPoint } from './faults.js';
import type { Host } from './host.js';
import { recoverIfNeeded } from './reconcile.js';
import { sleepSync } from '../util/sleep.js';
import { once, type Finding } from '../drivers/driver.js';

// ---------------------------------------------------------------------------------------------- the spec (pure)

/** An impairment as stored: numbers only, every field present. */
export interface NetemSpec {
  delayMs: number;
  jitterMs: number;
  /** Percentages (0..100). */
  loss: number;
  duplicate: number;
  corrupt: number;
  reorder: number;
  /** Bits per second, or null. */
  rate: number | null;
  /** --to as given (container names or CIDRs), and the address blocks they stood for when applied. */
  to: string[];
  toCidrs: string[];
  /** How delay & co. are applied: the kernel's netem, or the delay line where the kernel has no netem (set when
   *  applied; absent when the spec needs neither). */
  via?: 'netem' | 'delayline';
}

/** What the CLI (and a topology file's x-netem) gives, as text. */
export interface NetemInput {
  delay?: string;
  jitter?: string;
  loss?: string;
  rate?: string;
  duplicate?: string;
  corrupt?: string;
  reorder?: string;
  to?: string[];
  duration?: string;
}

const TIME_UNITS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60000, h: 3600000 };

/** '100ms', '1.5s', '250us', '2m', '1h' in milliseconds. Negative, unitless or malformed: one clear error. */
export function parseTime(v: string, what: string): number {
  const s = String(v).trim();
  const m = /^(-?\d+(?:\.\d+)?)(us|ms|s|m|h)$/.exec(s);
  if (!m) throw new UserError(`invalid ${what} ${showValue(v)}: expected a duration with a unit (250us, 100ms, 1.5s, 2m, 1h)`, 'invalid');
  const n = Number(m[1]) * TIME_UNITS[m[2]];
  if (n < 0) throw new UserError(`invalid ${what} ${showValue(v)}: must not be negative`, 'invalid');
  return n;
}

/** '1%', '0.1%' as a percentage 0..100. */
export function parsePercent(v: string, what: string): number {
  const s = String(v).trim();
  const m = /^(-?\d+(?:\.\d+)?)%$/.exec(s);
  if (!m) throw new UserError(`invalid ${what} ${showValue(v)}: expected a percentage (1%, 0.1%)`, 'invalid');
  const n = Number(m[1]);
  if (n < 0 || n > 100) throw new UserError(`invalid ${what} ${showValue(v)}: must be between 0% and 100%`, 'invalid');
  return n;
}

const RATE_UNITS: Record<string, number> = {
  bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9, tbit: 1e12, kibit: 1024, mibit: 1024 ** 2, gibit: 1024 ** 3, tibit: 1024 ** 4,
  bps: 8, kbps: 8e3, mbps: 8e6, gbps: 8e9, tbps: 8e12, kibps: 8 * 1024, mibps: 8 * 1024 ** 2, gibps: 8 * 1024 ** 3,
};

/** tc's rate units: '10mbit', '1gbit', '500kbit' (bits, SI), 'kibit', ...; 'bps', 'kbps', 'mbps' are BYTES per
 *  second, as in tc. In bits per second; at least 8 bit/s (one byte). */
export function parseRate(v: string, what = '--rate'): number {
  const s = String(v).trim().toLowerCase();
  const m = /^(-?\d+(?:\.\d+)?)([a-z]+)$/.exec(s);
  const unit = m ? RATE_UNITS[m[2]] : undefined;
  if (!m || unit === undefined) {
    if (/^-?\d+(\.\d+)?$/.test(s) && Number(s) <= 0) throw new UserError(`invalid ${what} ${showValue(v)}: must be more than 0`, 'invalid');
    throw new UserError(`invalid ${what} ${showValue(v)}: expected a rate with a unit (10mbit, 1gbit, 500kbit; kbps/mbps are bytes per second)`, 'invalid');
  }
  const bits = Number(m[1]) * unit;
  if (!(bits > 0)) throw new UserError(`invalid ${what} ${showValue(v)}: must be more than 0`, 'invalid');
  if (bits < 8) throw new UserError(`invalid ${what} ${showValue(v)}: at least 8bit (one byte per second)`, 'invalid');
  if (bits > 8e12) throw new UserError(`invalid ${what} ${showValue(v)}: at most 1tbps`, 'invalid');
  return Math.round(bits);
}

const MAX_DURATION_MS = 30 * 24 * 3600 * 1000;
const MAX_DELAY_MS = 60_000;

/** The numeric spec and duration of an input; bad values are one clear error, nothing looked up yet. */
export function parseNetemInput(i: NetemInput): { spec: Omit<NetemSpec, 'toCidrs'>; durationMs: number | null } {
  const delayMs = i.delay !== undefined ? parseTime(i.delay, '--delay') : 0;
  const jitterMs = i.jitter !== undefined ? parseTime(i.jitter, '--jitter') : 0;
  if (delayMs > MAX_DELAY_MS) throw new UserError(`invalid --delay ${showValue(i.delay)}: at most 60s`, 'invalid');
  if (jitterMs > 0 && delayMs === 0) throw new UserError('--jitter needs --delay (jitter varies a delay)', 'invalid');
  if (jitterMs > delayMs) throw new UserError(`invalid --jitter ${showValue(i.jitter)}: at most the delay (${i.delay})`, 'invalid');
  const spec = {
    delayMs, jitterMs,
    loss: i.loss !== undefined ? parsePercent(i.loss, '--loss') : 0,
    duplicate: i.duplicate !== undefined ? parsePercent(i.duplicate, '--duplicate') : 0,
    corrupt: i.corrupt !== undefined ? parsePercent(i.corrupt, '--corrupt') : 0,
    reorder: i.reorder !== undefined ? parsePercent(i.reorder, '--reorder') : 0,
    rate: i.rate !== undefined ? parseRate(i.rate) : null,
    to: i.to ?? [],
  };
  if (spec.reorder > 0 && delayMs === 0) throw new UserError('--reorder needs --delay (reordered packets are the ones sent without it)', 'invalid');
  if (!delayMs && !spec.loss && !spec.duplicate && !spec.corrupt && !spec.reorder && spec.rate === null) {
    throw new UserError('no impairment given: --delay, --jitter, --loss, --rate, --duplicate, --corrupt or --reorder (or --clear)', 'invalid');
  }
  let durationMs: number | null = null;
  if (i.duration !== undefined) {
    durationMs = parseTime(i.duration, '--duration');
    if (durationMs <= 0) throw new UserError(`invalid --duration ${showValue(i.duration)}: must be more than 0`, 'invalid');
    if (durationMs > MAX_DURATION_MS) throw new UserError(`invalid --duration ${showValue(i.duration)}: at most 30 days`, 'invalid');
  }
  return { spec, durationMs };
}

/** Whether the spec needs the kernel's netem qdisc (rate and loss do not: htb and cls_bpf). */
export function needsNetem(s: NetemSpec): boolean {
  return s.delayMs > 0 || s.duplicate > 0 || s.corrupt > 0 || s.reorder > 0;
}

function peersOf(cidrs: string[]): tc.Peer[] {
  return cidrs.map((c) => {
    const p = parseCidr(c);
    return { net: p.network, mask: p.mask };
  });
}

/** The two device plans of a link: [container side (peer = destination), host side (peer = source)]. */
export function devicePlans(s: NetemSpec, mtu: number): [tc.DevicePlan, tc.DevicePlan] {
  const netem = needsNetem(s) ? {
    delayNs: Math.round(s.delayMs * 1e6), jitterNs: Math.round(s.jitterMs * 1e6), duplicate: s.duplicate / 100,
    corrupt: s.corrupt / 100, reorder: s.reorder / 100, limit: tc.netemLimit(s.rate, s.delayMs * 1e6, s.jitterMs * 1e6, mtu),
  } : null;
  const base = { rateBits: s.rate, burst: s.rate !== null ? tc.burstFor(s.rate, mtu) : tc.burstFor(tc.UNLIMITED_BITS, mtu), loss: s.loss / 100, netem, peers: peersOf(s.toCidrs) };
  return [{ ...base, peerOffset: 30 }, { ...base, peerOffset: 26 }];
}

function fmtTime(ms: number): string {
  if (ms >= 1000 && ms % 1000 === 0) return `${ms / 1000}s`;
  if (ms >= 1) return `${+ms.toFixed(3)}ms`;
  return `${Math.round(ms * 1000)}us`;
}

function fmtRate(bits: number): string {
  for (const [u, f] of [['gbit', 1e9], ['mbit', 1e6], ['kbit', 1e3]] as const) if (bits >= f) return `${+(bits / f).toFixed(3)}${u}`;
  return `${bits}bit`;
}

/** One line: 'delay 100ms jitter 10ms loss 1% rate 10mbit to web,10.0.0.0/24'. */
export function describeSpec(s: NetemSpec): string {
  const p: string[] = [];
  if (s.delayMs) p.push(`delay ${fmtTime(s.delayMs)}`);
  if (s.jitterMs) p.push(`jitter ${fmtTime(s.jitterMs)}`);
  if (s.loss) p.push(`loss ${s.loss}%`);
  if (s.rate !== null) p.push(`rate ${fmtRate(s.rate)}`);
  if (s.duplicate) p.push(`duplicate ${s.duplicate}%`);
  if (s.corrupt) p.push(`corrupt ${s.corrupt}%`);
  if (s.reorder) p.push(`reorder ${s.reorder}%`);
  if (s.to.length) p.push(`to ${s.to.join(',')}`);
  return p.join(' ');
}

// ---------------------------------------------------------------------------------------------- kernel side

function specOf(row: ImpairmentRow): NetemSpec {
  return JSON.parse(row.spec) as NetemSpec;
}

/** What an impairment does, in words ("delay 50ms, loss 1%"), for the graph and listings. */
export function impairmentText(row: ImpairmentRow): string {
  return describeSpec(specOf(row));
}

/** The container's netns fd and a socket there, for `fn`. */
function inContainer<T>(h: Host, c: ContainerRecord, fn: (cnl: Netlink) => T): T {
  return h.kernel.netns.withNetlink(c.netns, fn);
}

/** A device plan that puts nothing on the root qdisc (only delay, done by the delay line). */
function emptyPlan(p: tc.DevicePlan): boolean {
  return !tc.needsClass(p) && p.loss === 0;
}

function isUnknownKind(e: unknown): boolean {
  return (e as { code?: string }).code === 'ENOENT' && /qdisc kind is unknown/.test(String((e as Error).message));
}

/** The delay line's tap name for a link (one per netns: the same name on both ends). */
function tapName(containerId: string, networkId: string): string {
  return 'nsd' + createHash('sha256').update(`${containerId} ${networkId}`).digest('hex').slice(0, 8);
}

/** Ends a delay line (SIGKILL, then waits until it is gone: its sockets hold the container's netns). */
function stopLine(pid: number | null, start: string | null): void {
  if (!pid || !start || pid === process.pid || !isAlive(pid, start)) return;
  signal(pid, 'SIGKILL');
  for (let i = 0; i < 200 && isAlive(pid, start); i++) sleepSync(5);
}

/** Starts the delay line of a link and waits until its taps are up. */
function startLine(h: Host, c: ContainerRecord, ep: EndpointRecord, net: NetworkRecord, s: NetemSpec): { pid: number; start: string | null } {
  const dir = path.join(h.root, 'netem');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tap = tapName(c.id, net.id);
  const outFile = path.join(dir, `${tap}.out`);
  // Never through a symlink or a FIFO planted there (the state directory is root's: belt and braces).
  const { O_WRONLY, O_CREAT, O_TRUNC, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
  const cfg: DelayLineConfig = {
    delayMs: s.delayMs, jitterMs: s.jitterMs, duplicate: s.duplicate / 100, corrupt: s.corrupt / 100, reorder: s.reorder / 100,
    limit: tc.netemLimit(s.rate, s.delayMs * 1e6, s.jitterMs * 1e6, net.mtu || 1500), mark: tc.DELAY_MARK, tap, mtu: net.mtu || 1500,
    sides: [{ netns: netnsPath(c.netns), dev: ep.ifname }, { netns: null, dev: ep.hostIf }], root: h.root,
  };
  const script = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../kernel/delayline.js');
  const out = fs.openSync(outFile, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_NONBLOCK, 0o600);
  if (!fs.fstatSync(out).isFile()) {
    fs.closeSync(out);
    throw new Error(`${outFile} is not a regular file: remove it`);
  }
  let child;
  try {
    child = h.inHost(() => childProcess().spawn(process.execPath, [script, JSON.stringify(cfg)], {
      detached: true, stdio: ['ignore', out, out], env: { PATH: h.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', MALLOC_ARENA_MAX: '1' },
    }));
  } finally {
    fs.closeSync(out);
  }
  child.unref();
  const pid = child.pid!;
  const start = processStart(pid);
  for (let i = 0; i < 600; i++) {
    const text = fs.readFileSync(outFile, 'utf8');
    if (text.includes('ready\n')) return { pid, start };
    if (!isAlive(pid, start)) throw new Error(`the delay line of ${c.name} on ${net.name} did not start: ${text.trim().split('\n').pop() ?? 'no output'}`);
    sleepSync(5);
  }
  stopLine(pid, start);
  throw new Error(`the delay line of ${c.name} on ${net.name} did not start within 3s`);
}

export interface Applied {
  spec: NetemSpec;
  line: { pid: number; start: string | null } | null;
}

/** Puts the impairment on both ends of the endpoint's link: the root qdisc (htb: rate, loss; netem when the kernel
 *  has it) and, without netem, the delay line and its redirects. A failure removes what was put and throws. */
function applyLink(h: Host, c: ContainerRecord, ep: EndpointRecord, net: NetworkRecord, s0: NetemSpec, oldLine: { pid: number | null; start: string | null } = { pid: null, start: null }): Applied {
  const mtu = net.mtu || 1500;
  const hi = h.nl.ifindex(ep.hostIf);
  if (hi === null) throw new Error(`the host end ${ep.hostIf} of ${c.name} on ${net.name} is missing: run nsnet reconcile`);
  const s: NetemSpec = { ...s0 };
  if (!needsNetem(s)) delete s.via;
  let line: Applied['line'] = null;
  try {
    removeLink(h, c, ep, oldLine);
    if (needsNetem(s) && s.via !== 'delayline') {
      try {
        inContainer(h, c, (cnl) => tc.applyImpairment(cnl, ifindexIn(cnl, c, ep), devicePlans(s, mtu)[0]));
        s.via = 'netem';
      } catch (e) {
        if (!isUnknownKind(e)) throw e;
        s.via = 'delayline'; // this kernel has no netem: the delay line does it
      }
    }
    const [ctr, host] = devicePlans(s.via === 'delayline' ? { ...s, delayMs: 0, jitterMs: 0, duplicate: 0, corrupt: 0, reorder: 0 } : s, mtu);
    inContainer(h, c, (cnl) => {
      const ci = ifindexIn(cnl, c, ep);
      if (emptyPlan(ctr)) tc.removeImpairment(cnl, ci);
      else tc.applyImpairment(cnl, ci, ctr);
    });
    crashPoint('netem:container-side');
    if (!emptyPlan(host)) tc.applyImpairment(h.nl, hi, host);
    if (s.via === 'delayline') {
      line = startLine(h, c, ep, net, s);
      const tap = tapName(c.id, net.id);
      inContainer(h, c, (cnl) => tc.addRedirect(cnl, ifindexIn(cnl, c, ep), ctr, cnl.ifindex(tap)!));
      const ti = h.nl.ifindex(tap);
      if (ti === null) throw new Error(`the delay line's ${tap} is missing`);
      tc.addRedirect(h.nl, hi, host, ti);
    }
  } catch (e) {
    try { removeLink(h, c, ep, line ?? { pid: null, start: null }); } catch { /* reconcile */ }
    if ((e as { code?: string }).code === 'EEXIST') throw new UserError(`${c.name}'s link on ${net.name} already has a root qdisc nsnet did not make (remove it, then try again)`, 'conflict');
    throw e;
  }
  return { spec: s, line };
}

function ifindexIn(cnl: Netlink, c: ContainerRecord, ep: EndpointRecord): number {
  const ci = cnl.ifindex(ep.ifname);
  if (ci === null) throw new Error(`${c.name} has no interface ${ep.ifname}: run nsnet reconcile`);
  return ci;
}

/** Removes nsnet's impairment from both ends (whatever is there; tolerant of a link or netns gone), its delay line
 *  first. */
function removeLink(h: Host, c: ContainerRecord, ep: EndpointRecord, line: { pid: number | null; start: string | null }): void {
  stopLine(line.pid, line.start);
  const hi = h.nl.ifindex(ep.hostIf);
  if (hi !== null) {
    tc.removeRedirect(h.nl, hi);
    tc.removeImpairment(h.nl, hi);
  }
  if (c.netns && isSafeName(c.netns) && h.kernel.netns.exists(c.netns)) {
    inContainer(h, c, (cnl) => {
      const ci = cnl.ifindex(ep.ifname);
      if (ci === null) return;
      // The container side's clsact is only ever the delay line's.
      if (tc.qdiscsOf(cnl, ci).some((q) => q.kind === 'clsact')) cnl.deleteClsact(ci);
      tc.removeImpairment(cnl, ci);
    });
  }
}

/** What the link shows compared with the row: '' when it matches. */
function linkDiff(h: Host, c: ContainerRecord, ep: EndpointRecord, net: NetworkRecord, row: ImpairmentRow | null): string {
  const s = row ? specOf(row) : null;
  const line = s?.via === 'delayline';
  const plans = s ? devicePlans(line ? { ...s, delayMs: 0, jitterMs: 0, duplicate: 0, corrupt: 0, reorder: 0 } : s, net.mtu || 1500) : null;
  const want = (p: tc.DevicePlan | undefined) => (p && !emptyPlan(p) ? tc.expectedSignature(p) : null);
  const out: string[] = [];
  const side = (nl: Netlink, index: number, what: string, p: tc.DevicePlan | undefined) => {
    const got = tc.observedSignature(nl, index);
    const exp = want(p);
    if (got !== exp) out.push(`${what} ${got === null ? 'has no impairment' : s ? 'differs' : 'is impaired without a record'}`);
    const red = tc.hasRedirect(nl, index);
    if (red !== line) out.push(`${what} ${red ? 'has a delay-line redirect without a record' : 'has no delay-line redirect'}`);
  };
  const hi = h.nl.ifindex(ep.hostIf);
  if (hi !== null) side(h.nl, hi, `host side ${ep.hostIf}`, plans?.[1]);
  if (c.netns && isSafeName(c.netns) && h.kernel.netns.exists(c.netns)) {
    inContainer(h, c, (cnl) => {
      const ci = cnl.ifindex(ep.ifname);
      if (ci !== null) side(cnl, ci, `container side ${ep.ifname}`, plans?.[0]);
    });
  }
  if (line && !(row!.linePid && row!.lineStart && isAlive(row!.linePid, row!.lineStart))) out.push('its delay line is not running');
  return out.join(', ');
}

// ---------------------------------------------------------------------------------------------- use cases

function findEndpoint(h: Host, c: ContainerRecord, netRef: string | undefined): { ep: EndpointRecord; net: NetworkRecord } {
  const eps = h.store.endpointsOf(c.id);
  if (netRef === undefined) {
    if (!eps.length) throw new UserError(`container ${c.name} is not connected to any network (is it stopped? its links exist while it runs)`, 'refused');
    if (eps.length > 1) {
      const names = eps.map((e) => h.store.networkById(e.networkId)?.name ?? e.networkId).join(', ');
      throw new UserError(`container ${c.name} is on several networks (${names}): say which with --network`, 'invalid');
    }
    return { ep: eps[0], net: h.store.networkById(eps[0].networkId)! };
  }
  const net = h.store.findNetwork(netRef);
  if (!net) throw new UserError(`network ${netRef} not found`, 'notfound');
  const ep = eps.find((e) => e.networkId === net.id);
  if (!ep) throw new UserError(`container ${c.name} is not connected to network ${net.name}`, 'notfound');
  return { ep, net };
}

/** --to entries as address blocks: a CIDR, an address (/32), or a container (its addresses on every network). */
function resolvePeers(h: Host, self: ContainerRecord, to: string[]): string[] {
  const out: string[] = [];
  for (const t of to) {
    if (t.includes('/')) out.push(parseCidr(t, '--to').canonical);
    else if (tryParseIPv4(t) !== null) out.push(`${t}/32`);
    else {
      const p = h.store.findContainer(t);
      if (!p) throw new UserError(`--to ${showValue(t)}: no such container (and not an address or CIDR)`, 'notfound');
      if (p.id === self.id) throw new UserError(`--to ${showValue(t)}: that is the impaired container itself`, 'invalid');
      const eps = h.store.endpointsOf(p.id);
      if (!eps.length) throw new UserError(`--to ${showValue(t)}: container ${p.name} has no address (not running?)`, 'refused');
      for (const e of eps) if (e.ip) out.push(`${e.ip}/32`); // IPv4 blocks: an IPv6-only endpoint (ip '') has none
    }
  }
  if (out.length > 60) throw new UserError(`--to: at most 60 address blocks (${out.length} given)`, 'invalid');
  return [...new Set(out)];
}

export interface NetemResult {
  container: string;
  network: string;
  description: string;
  expires: number | null;
  via: 'netem' | 'delayline' | null;
}

function nsnetBin(h: Host): string {
  return h.env.NSNET_BIN ?? path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../../bin/nsnet');
}

/** Starts the healer: a detached `sh` (no nsnet process stays) that sleeps until the impairment expires, then runs
 *  `nsnet netem --expire` on this state directory and host netns. Returns its PID and start time. */
function startHealer(h: Host, expires: number): { pid: number; start: string | null } {
  const secs = Math.max(0, (expires - Date.now()) / 1000).toFixed(3);
  const child = h.inHost(() => childProcess().spawn('/bin/sh', ['-c', 'sleep "$1"; exec "$2" --root "$3" netem --expire', 'nsnet-netem-healer', secs, nsnetBin(h), h.root], {
    detached: true, stdio: 'ignore', env: { PATH: h.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', NSNET_ROOT: h.root, NSNET_NO_HELPER: '1' },
  }));
  child.unref();
  const pid = child.pid!;
  return { pid, start: processStart(pid) };
}

function stopHealer(row: ImpairmentRow): void {
  // The healer execs `nsnet netem --expire`: that process is the healer itself.
  if (row.healerPid && row.healerPid !== process.pid && row.healerStart && isAlive(row.healerPid, row.healerStart)) signal(row.healerPid, 'SIGTERM');
}

/** Impairs a container's link on a network (replacing an impairment it had there). */
export function setNetem(h: Host, ref: string, netRef: string | undefined, input: NetemInput): NetemResult {
  const { spec: partial, durationMs } = parseNetemInput(input);
  return h.lock.with(() => {
    recover(h);
    const c = h.store.findContainer(ref);
    if (!c) throw new UserError(`No such container: ${ref}`, 'notfound');
    if (c.mode !== 'bridge' || !c.netns) throw new UserError(`container ${c.name} uses --network ${c.mode === 'container' ? 'container:...' : c.mode}: it has no link of its own to impair`, 'refused');
    if (c.command[0] === '<cni>') throw new UserError(`container ${c.name} was attached through CNI: its runtime owns its links`, 'refused');
    const { ep, net } = findEndpoint(h, c, netRef);
    const spec: NetemSpec = { ...partial, toCidrs: resolvePeers(h, c, partial.to) };
    const old = h.store.impairment(c.id, net.id);
    const expires = durationMs !== null ? Date.now() + durationMs : null;
    h.store.tx(() => h.store.putImpairment({
      containerId: c.id, networkId: net.id, spec: JSON.stringify(spec), prev: old ? old.spec : null, created: new Date().toISOString(),
      expires, healerPid: null, healerStart: null, linePid: old?.linePid ?? null, lineStart: old?.lineStart ?? null, pending: true,
    }));
    crashPoint('netem:persisted');
    let applied: Applied;
    try {
      applied = applyLink(h, c, ep, net, spec, { pid: old?.linePid ?? null, start: old?.lineStart ?? null });
    } catch (e) {
      // Back to what was there before (or nothing).
      if (old) {
        let back: Applied | null = null;
        try { back = applyLink(h, c, ep, net, specOf(old)); } catch { /* reconcile restores it */ }
        h.store.tx(() => h.store.putImpairment({ ...old, pending: false, prev: null, linePid: back?.line?.pid ?? null, lineStart: back?.line?.start ?? null }));
      } else {
        h.store.tx(() => h.store.deleteImpairment(c.id, net.id));
      }
      throw e;
    }
    h.store.tx(() => h.store.setImpairmentApplied(c.id, net.id, JSON.stringify(applied.spec), applied.line?.pid ?? null, applied.line?.start ?? null));
    crashPoint('netem:applied');
    if (old) stopHealer(old);
    const healer = expires !== null ? startHealer(h, expires) : null;
    h.store.tx(() => {
      if (healer) h.store.setImpairmentHealer(c.id, net.id, healer.pid, healer.start);
      h.store.commitImpairment(c.id, net.id);
    });
    crashPoint('netem:committed');
    return { container: c.name, network: net.name, description: describeSpec(applied.spec), expires, via: applied.spec.via ?? null };
  });
}

/** Makes the impairment of `ref` on `netRef` be `input` (null: none), as `up` wants it: nothing is done when it
 *  already is. Returns what was done. */
export function ensureNetem(h: Host, ref: string, netRef: string, input: NetemInput | null): 'set' | 'cleared' | null {
  const c = h.store.findContainer(ref);
  const net = h.store.findNetwork(netRef);
  if (!c || !net) return null;
  const row = h.store.impairment(c.id, net.id);
  if (!input) {
    if (!row) return null;
    clearNetem(h, c.id, net.id);
    return 'cleared';
  }
  if (row && !row.pending && row.expires === null) {
    const { spec } = parseNetemInput(input);
    const want: NetemSpec = { ...spec, toCidrs: h.lock.with(() => resolvePeers(h, c, spec.to)) };
    const have = specOf(row);
    delete have.via;
    if (JSON.stringify(want) === JSON.stringify(have)) return null;
  }
  setNetem(h, c.id, net.id, input);
  return 'set';
}

/** Removes one impairment: the row first (a crash after it leaves an unrecorded qdisc, which reconcile removes). */
function clearRow(h: Host, row: ImpairmentRow): void {
  h.store.tx(() => h.store.deleteImpairment(row.containerId, row.networkId));
  crashPoint('netem-clear:persisted');
  stopHealer(row);
  const c = h.store.containerById(row.containerId);
  const ep = c ? h.store.endpointsOf(c.id).find((e) => e.networkId === row.networkId) : undefined;
  if (c && ep) removeLink(h, c, ep, { pid: row.linePid, start: row.lineStart });
  else stopLine(row.linePid, row.lineStart);
}

/** Clears a container's impairments (on one network, or all of its networks). Returns how many were removed. */
export function clearNetem(h: Host, ref: string, netRef: string | undefined): number {
  return h.lock.with(() => {
    recover(h);
    const c = h.store.findContainer(ref);
    if (!c) throw new UserError(`No such container: ${ref}`, 'notfound');
    let rows = h.store.impairmentsOf(c.id);
    if (netRef !== undefined) {
      const net = h.store.findNetwork(netRef);
      if (!net) throw new UserError(`network ${netRef} not found`, 'notfound');
      rows = rows.filter((r) => r.networkId === net.id);
    }
    for (const r of rows) clearRow(h, r);
    return rows.length;
  });
}

/** Clears every impairment of this host. */
export function clearAllNetem(h: Host): number {
  return h.lock.with(() => {
    recover(h);
    const rows = h.store.impairments();
    for (const r of rows) clearRow(h, r);
    return rows.length;
  });
}

/** Removes the impairments whose time is up. Call with the lock held (cheap: one indexed query). */
export function expireImpairments(h: Host, now = Date.now()): number {
  const rows = h.store.expiredImpairments(now);
  for (const r of rows) clearRow(h, r);
  return rows.length;
}

/** `nsnet netem --expire` (the healer): what has expired goes. */
export function expireNow(h: Host): number {
  return h.lock.with(() => expireImpairments(h));
}

/** As every mutating command: finish what an interrupted one left (expired impairments included). */
function recover(h: Host): void {
  recoverIfNeeded(h);
}

/** The container's impairments re-applied after its sandbox was rebuilt (start after a release or a reboot-like
 *  loss); a failure is left to check/reconcile (the container is started anyway). */
export function reapplyImpairments(h: Host, c: ContainerRecord): void {
  for (const r of h.store.impairmentsOf(c.id)) {
    if (r.pending) continue;
    const ep = h.store.endpointsOf(c.id).find((e) => e.networkId === r.networkId);
    const net = h.store.networkById(r.networkId);
    if (!ep || !net) continue;
    try {
      const a = applyLink(h, c, ep, net, specOf(r), { pid: r.linePid, start: r.lineStart });
      h.store.tx(() => h.store.setImpairmentApplied(c.id, r.networkId, JSON.stringify(a.spec), a.line?.pid ?? null, a.line?.start ?? null));
    } catch { /* check reports it, reconcile retries */ }
  }
}

/** A container goes: its healers with it (the rows go with the container row: ON DELETE CASCADE). */
export function forgetContainer(h: Host, containerId: string): void {
  for (const r of h.store.impairmentsOf(containerId)) {
    stopHealer(r);
    stopLine(r.linePid, r.lineStart); // before the netns goes: its sockets would keep it (and its veths) alive
  }
}

/** A container's endpoints are released (stopped): its impairments stay recorded (dormant, applied again when it
 *  starts), their delay lines end with the links. */
export function suspendImpairments(h: Host, containerId: string): void {
  for (const r of h.store.impairmentsOf(containerId)) {
    if (!r.linePid) continue;
    stopLine(r.linePid, r.lineStart);
    h.store.tx(() => h.store.setImpairmentApplied(r.containerId, r.networkId, r.spec, null, null));
  }
}

/** A container leaves a network: its impairment there goes (the link goes with the endpoint). Inside the caller's
 *  transaction. */
export function forgetEndpoint(h: Host, containerId: string, networkId: string): void {
  const r = h.store.impairment(containerId, networkId);
  if (!r) return;
  stopHealer(r);
  stopLine(r.linePid, r.lineStart);
  h.store.deleteImpairment(containerId, networkId);
}

// ---------------------------------------------------------------------------------------------- views

/** One fault in force (`nsnet faults`): impairments here; partitions add their own rows. */
export interface Fault {
  kind: string;
  container: string;
  network: string;
  detail: string;
  /** ISO time it heals, or null (until cleared). */
  until: string | null;
  /** 'active', 'dormant' (the container is stopped: applied again at start), 'pending' (being changed). */
  state: string;
}

export function netemFaults(h: Host, now = Date.now()): Fault[] {
  const out: Fault[] = [];
  for (const r of h.store.impairments()) {
    if (r.expires !== null && r.expires <= now) continue;
    const c = h.store.containerById(r.containerId);
    const net = h.store.networkById(r.networkId);
    if (!c || !net) continue;
    const active = h.store.endpointsOf(c.id).some((e) => e.networkId === r.networkId);
    out.push({
      kind: 'netem', container: c.name, network: net.name, detail: describeSpec(specOf(r)),
      until: r.expires !== null ? new Date(r.expires).toISOString() : null, state: r.pending ? 'pending' : active ? 'active' : 'dormant',
    });
  }
  return out;
}

/** `inspect`: the container's impairments, by network name (Docker has none: an nsnet key). */
export function netemInspect(h: Host, containerId: string, view: Record<string, unknown>): Record<string, unknown> {
  const rows = h.store.impairmentsOf(containerId).filter((r) => r.expires === null || r.expires > Date.now());
  if (!rows.length) return view;
  const netem: Record<string, unknown> = {};
  for (const r of rows) {
    const s = specOf(r);
    const name = h.store.networkById(r.networkId)?.name ?? r.networkId;
    netem[name] = {
      Delay: s.delayMs ? fmtTime(s.delayMs) : '', Jitter: s.jitterMs ? fmtTime(s.jitterMs) : '', Loss: s.loss ? `${s.loss}%` : '',
      Rate: s.rate !== null ? fmtRate(s.rate) : '', Duplicate: s.duplicate ? `${s.duplicate}%` : '', Corrupt: s.corrupt ? `${s.corrupt}%` : '',
      Reorder: s.reorder ? `${s.reorder}%` : '', To: s.to, ToCidrs: s.toCidrs, Until: r.expires !== null ? new Date(r.expires).toISOString() : null,
      Via: s.via ?? 'tc', // netem (the kernel's), delayline (nsnet's, without netem), or tc alone (rate, loss)
      Description: describeSpec(s),
    };
  }
  return { ...view, Netem: netem };
}

// ---------------------------------------------------------------------------------------------- check / reconcile

/** Every link an impairment could be on (check and reconcile compare the same ones): each endpoint of a bridge-mode
 *  container whose netns exists (CNI attachments are the runtime's). */
function* impairableLinks(h: Host): Generator<{ c: ContainerRecord; ep: EndpointRecord; net: NetworkRecord }> {
  const nets = new Map(h.store.networks().map((n) => [n.id, n]));
  for (const c of h.store.containers()) {
    if (c.mode !== 'bridge' || !c.netns || !isSafeName(c.netns) || !h.kernel.netns.exists(c.netns) || c.command[0] === '<cni>') continue;
    for (const ep of h.store.endpointsOf(c.id)) {
      const net = nets.get(ep.networkId);
      if (net) yield { c, ep, net };
    }
  }
}

/** Impairments whose change was interrupted (rolled back to the previous spec), whose network is gone (dropped),
 *  or whose --duration ran out (removed). The first of netem's two detectors (src/engine/reconcile.ts runs them in
 *  order, so the second compares the links with what these repairs left). */
export function diffNetemRows(h: Host): Finding[] {
  const out: Finding[] = [];
  const now = Date.now();
  const netIds = new Set(h.store.networks().map((n) => n.id));
  const name = (r: ImpairmentRow) => h.store.containerById(r.containerId)?.name ?? r.containerId;
  const expire = once(() => {
    const expired = expireImpairments(h);
    return expired ? [`removed ${expired} expired impairment(s)`] : [];
  });
  for (const r of h.store.impairments()) {
    if (r.pending) {
      out.push({
        kind: 'unfinished-netem', detail: name(r),
        repair: () => {
          h.store.tx(() => {
            if (r.prev) h.store.putImpairment({ ...r, spec: r.prev, prev: null, pending: false, expires: null, healerPid: null, healerStart: null });
            else h.store.deleteImpairment(r.containerId, r.networkId);
          });
          if (!r.prev) stopLine(r.linePid, r.lineStart);
          return [`rolled back the netem change of ${name(r)}`];
        },
      });
    } else if (!netIds.has(r.networkId)) {
      out.push({
        kind: 'netem-network-gone', detail: `${name(r)}: an impairment on a removed network`, hidden: true,
        repair: () => {
          stopHealer(r);
          stopLine(r.linePid, r.lineStart);
          h.store.tx(() => h.store.deleteImpairment(r.containerId, r.networkId));
          return [`dropped the impairment of a removed network (${name(r)})`];
        },
      });
    } else if (r.expires !== null && r.expires <= now) {
      out.push({ kind: 'netem-expired', detail: `${name(r)}: expired ${new Date(r.expires).toISOString()}, still recorded`, repair: expire });
    }
  }
  return out;
}

/** Links' qdiscs against the impairments recorded (restored, or removed when nothing records them), delay lines no
 *  impairment records (ended), healers of timed impairments that died (started again). */
export function diffNetemLinks(h: Host): Finding[] {
  const out: Finding[] = [];
  const rows = new Map(h.store.impairments().map((r) => [`${r.containerId} ${r.networkId}`, r]));
  const known = new Set([...rows.values()].map((r) => r.linePid).filter((p): p is number => p !== null));
  for (const pid of findDelayLines(h.root)) {
    if (known.has(pid)) continue;
    out.push({ kind: 'orphan-netem', detail: `a delay line no impairment records (pid ${pid})`, repair: () => { stopLine(pid, processStart(pid)); return [`ended an unrecorded delay line (pid ${pid})`]; } });
  }
  for (const { c, ep, net } of impairableLinks(h)) {
    const r = rows.get(`${c.id} ${ep.networkId}`);
    if (r?.pending) continue;
    const d = linkDiff(h, c, ep, net, r ?? null);
    if (!d) continue;
    out.push({
      kind: r ? 'netem' : 'orphan-netem', detail: `${c.name} on ${net.name}: ${d}`,
      repair: () => {
        if (!r) {
          removeLink(h, c, ep, { pid: null, start: null });
          return [`removed an unrecorded impairment of ${c.name} on ${net.name}`];
        }
        try {
          const a = applyLink(h, c, ep, net, specOf(r), { pid: r.linePid, start: r.lineStart });
          h.store.tx(() => h.store.setImpairmentApplied(c.id, r.networkId, JSON.stringify(a.spec), a.line?.pid ?? null, a.line?.start ?? null));
          return [`restored the impairment of ${c.name} on ${net.name}`];
        } catch (e) {
          return [`could not restore the impairment of ${c.name} on ${net.name}: ${(e as Error).message}`];
        }
      },
    });
  }
  // A healer that died (killed, or a reboot) while its impairment has a time: started again.
  for (const r of rows.values()) {
    if (r.expires === null || r.pending || (r.healerPid && r.healerStart && isAlive(r.healerPid, r.healerStart))) continue;
    out.push({
      kind: 'netem-healer', detail: `${h.store.containerById(r.containerId)?.name ?? r.containerId}: the timer that ends its impairment is not running`, hidden: true,
      repair: () => {
        const hl = startHealer(h, r.expires!);
        h.store.tx(() => h.store.setImpairmentHealer(r.containerId, r.networkId, hl.pid, hl.start));
        return [];
      },
    });
  }
  return out;
}
