// One method, one N: attach N namespaces to one bridge network (IPAM, gateway, default route, masquerade, one
// published port on the first), then detach them all, inside a throwaway host netns this process creates and
// always deletes. Writes one JSON result. Run by bench/compare.ts (one process per method and N, so that peak
// memory and state never mix); can be run alone:
//
//   node dist/bench/attach.js METHOD N OUT.json [RUNID]      (root)
//   METHOD: lib | cli | nsnetcni | netavark | cni | ipscript | ipbatch
//
// Timing boundaries (all wall clock, performance.now() in this process):
//   lib      one Nsnet.create() (netns creation included: nsnet makes its own) / one await Nsnet.remove()
//            (netns deletion included). The container is created, never started: no process is involved.
//   cli      one `nsenter --net=HOST bin/nsnet create --network bnet --name cI -- sleep 1` process, whole (Node
//            start-up included) / one `bin/nsnet rm cI` process. Netns creation/deletion included.
//   nsnetcni one `nsenter --net=HOST bin/cni/nsnet` process with CNI_COMMAND=ADD (config on stdin, as a runtime
//            execs a plugin; the network is created by the first ADD, untimed setup() makes it) / one DEL process.
//            The runtime's netns is made in-process and timed separately, as for the peers.
//   netavark one `nsenter --net=HOST netavark setup NS` process / one `teardown` process.
//   cni      the CNI exec protocol by hand, as a runtime with the conflist [bridge(+host-local), portmap] does it:
//            ADD = bridge ADD (which execs host-local) then portmap ADD with prevResult (every container: the
//            chain is the network's; only the first has a mapping); DEL = portmap DEL then bridge DEL.
//   ipscript one `ip`/`nft` process per step (6 per attach, plus one `nft` for the published port).
//   ipbatch  one `ip -batch` for the host side + one `ip -n NS -batch` for the container side (+ one `nft`).
// For the peers, netns creation/deletion is timed SEPARATELY (netnsCreate/netnsDelete) so that the report can
// show them both without and with it: netavark/cni get theirs in-process (unshare + bind mount, as a Go
// runtime does it: the cheapest way), ipscript/ipbatch with `ip netns add/del` processes (as a script does).
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  CNI_DIR, NETAVARK, NSNET_BIN, childrenMaxRssKiB, deleteNamespaces, inNs, ipOf, leakCheck, makeHostNetns, must,
  ownNamespaces, run, tick, type Leaks,
} from './common.js';

const METHODS = ['lib', 'cli', 'nsnetcni', 'netavark', 'cni', 'ipscript', 'ipbatch'] as const;
type Method = (typeof METHODS)[number];

export interface AttachResult {
  method: Method;
  n: number;
  attachMs: number[];
  detachMs: number[];
  /** Peers only: per-namespace creation / deletion time, measured separately. */
  netnsCreateMs: number[] | null;
  netnsDeleteMs: number[] | null;
  netnsHow: string;
  totalS: number;
  /** Peak RSS (KiB): of this process for lib (Node included), else of the largest spawned process. */
  peakRssKiB: number;
  /** lib: RSS of this process before Nsnet.open (the Node baseline). */
  baseRssKiB: number | null;
  rulesetLines: { beforeFirst: number; afterAttach: number; afterDetach: number };
  /** Paired growth probe (N >= 100): with N attached, P rounds of one attach+detach on this full host and one on a
   *  second host with only one container attached (an anchor that keeps its network up), alternating (ABBA), so
   *  that the machine's load drift hits both alike. Round 0 is dropped (warm-up). Peers: netns creation excluded. */
  probe: { rounds: number; attachEmpty: number[]; attachFull: number[]; detachEmpty: number[]; detachFull: number[] } | null;
  leaks: Leaks | null;
  /** ms from the end of the last detach until the host netns holds no veth any more (nsnet's rm leaves the veth
   *  to the kernel, which removes it with the netns; the peers delete theirs synchronously: ≈0). */
  cleanAfterMs: number | null;
  /** cli: peak RSS (KiB) of nsnet's resident helper (not a child of ours, so not in peakRssKiB). */
  helperRssKiB: number | null;
  check: string | null;
  error: string | null;
}

interface Impl {
  setup(): void | Promise<void>;
  /** Creates the container netns (peers only); returns ms. */
  mkNs?(i: number): number;
  rmNs?(i: number): number;
  attach(i: number): void;
  detach(i: number): void | Promise<void>;
  /** Called once the host is clean, before check (lib: Nsnet.settle, which also drops nsnet's bookkeeping rows). */
  settle?(): Promise<void>;
  check?(): string;
  /** Peak RSS (KiB) of a long-lived process of the method that is not our child (cli: the helper). */
  otherRssKiB?(): number | null;
  close?(): void;
}

const PORT_HOST = 18080;
const PORT_CTR = 80;

function vethCount(host: string): number {
  return run('ip', ['-n', host, '-o', 'link', 'show', 'type', 'veth']).stdout.split('\n').filter((l) => l.trim()).length;
}

function nftLines(host: string): number {
  return run('nsenter', [`--net=/run/netns/${host}`, 'nft', 'list', 'ruleset']).stdout.split('\n').filter((l) => l.trim()).length;
}

async function main(): Promise<void> {
  const [method, nArg, out, runArg] = process.argv.slice(2) as [Method, string, string, string | undefined];
  if (!METHODS.includes(method)) throw new Error(`method must be one of ${METHODS.join(', ')}`);
  const n = Number(nArg);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new Error('N must be 1..1000 (a bridge has at most 1024 ports)');
  const runId = runArg ?? crypto.randomBytes(2).toString('hex');
  const host = `bnh-${runId}-${method}`;
  const ctrPrefix = `bnc-${runId}-${method}-`;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `bn-${method}-`));
  const root = fs.realpathSync(tmp);
  const nsnetRoot = path.join(root, 'nsnet');
  const nsnetPrefix = `nsnet-${crypto.createHash('sha256').update(nsnetRoot).digest('hex').slice(0, 6)}-`;
  const prefix = method === 'lib' || method === 'cli' ? nsnetPrefix : ctrPrefix;

  // A Ctrl-C (or a kill by the orchestrator) while we run synchronously is handled after the cleanup below.
  let interrupted = false;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => { interrupted = true; process.exitCode = 130; });

  const res: AttachResult = {
    method, n, attachMs: [], detachMs: [], netnsCreateMs: null, netnsDeleteMs: null, netnsHow: '', totalS: 0,
    peakRssKiB: 0, baseRssKiB: null, rulesetLines: { beforeFirst: 0, afterAttach: 0, afterDetach: 0 }, probe: null, leaks: null, cleanAfterMs: null, helperRssKiB: null, check: null, error: null,
  };
  const emptyHost = `${host}-e`;
  const emptyNsnetRoot = path.join(root, 'e', 'nsnet');
  const emptyPrefix = `nsnet-${crypto.createHash('sha256').update(emptyNsnetRoot).digest('hex').slice(0, 6)}-`;
  let impl: Impl | null = null;
  try {
    makeHostNetns(host);
    if (method === 'lib') {
      // The library acts on the netns its process is in: enter the throwaway host before any helper thread exists
      // (docs/kernel-notes.md §7), exactly as the CLI does for --host-netns.
      const { enterHostNetns } = await import('../src/kernel/netns.js');
      enterHostNetns(`/run/netns/${host}`);
    }
    await fs.promises.stat('/'); // libuv threadpool born now, in the right netns
    impl = await makeImpl(method, { host, ctrPrefix, root, nsnetRoot, res });
    await impl.setup();
    res.rulesetLines.beforeFirst = nftLines(host);
    const created: number[] = [];
    const t0 = performance.now();
    for (let i = 0; i < n && !interrupted; i++) {
      if (impl.mkNs) { res.netnsCreateMs!.push(impl.mkNs(i)); created.push(i); }
      const t = performance.now();
      impl.attach(i);
      res.attachMs.push(performance.now() - t);
      await tick();
    }
    res.rulesetLines.afterAttach = nftLines(host);
    if (n >= 100 && !interrupted) await probe(method, impl, { host: emptyHost, ctrPrefix: `${ctrPrefix}e`, root: path.join(root, 'e'), nsnetRoot: emptyNsnetRoot, res }, n, res, () => interrupted);
    for (let i = 0; i < res.attachMs.length && !interrupted; i++) {
      const t = performance.now();
      await impl.detach(i);
      res.detachMs.push(performance.now() - t);
      if (impl.rmNs) res.netnsDeleteMs!.push(impl.rmNs(i));
      await tick();
    }
    res.totalS = (performance.now() - t0) / 1000;
    const tc = performance.now();
    while (vethCount(host) > 0 && performance.now() - tc < 10_000) await new Promise((r) => setTimeout(r, 10));
    res.cleanAfterMs = performance.now() - tc;
    await impl.settle?.();
    res.rulesetLines.afterDetach = nftLines(host);
    res.leaks = leakCheck(host, prefix);
    if (impl.check) res.check = impl.check();
    res.helperRssKiB = impl.otherRssKiB?.() ?? null;
    if (interrupted) res.error = 'interrupted';
  } catch (e) {
    res.error = String((e as Error).stack ?? e).slice(0, 2000);
    console.error(`[${method} N=${n}] ${res.error}`);
  } finally {
    try { impl?.close?.(); } catch { /* best effort */ }
    res.peakRssKiB = method === 'lib' ? process.resourceUsage().maxRSS : childrenMaxRssKiB();
    // Everything this run made: its container namespaces (ours or nsnet's under our state dir), the host netns.
    try { impl2?.close?.(); } catch { /* best effort */ }
    deleteNamespaces([...ownNamespaces([prefix, emptyPrefix]), host, emptyHost]);
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.writeFileSync(out, JSON.stringify(res));
  }
}

let impl2: Impl | null = null;

/** See AttachResult.probe. Container indexes N.. on the full host, 0.. on the empty one. */
async function probe(method: Method, full: Impl, ec: Ctx, n: number, res: AttachResult, stop: () => boolean): Promise<void> {
  const P = 31;
  fs.mkdirSync(ec.root, { recursive: true });
  makeHostNetns(ec.host);
  // The empty host's own implementation; its netns timings are not recorded.
  const scratch = { ...res, netnsCreateMs: [] as number[], netnsDeleteMs: [] as number[] };
  impl2 = await makeImpl(method, { ...ec, res: scratch as AttachResult });
  await impl2.setup();
  const pr = { rounds: 0, attachEmpty: [] as number[], attachFull: [] as number[], detachEmpty: [] as number[], detachFull: [] as number[] };
  const once = async (impl: Impl, i: number, a: number[], d: number[], keep: boolean) => {
    impl.mkNs?.(i);
    let t = performance.now();
    impl.attach(i);
    const ta = performance.now() - t;
    t = performance.now();
    await impl.detach(i);
    const td = performance.now() - t;
    impl.rmNs?.(i);
    if (keep) { a.push(ta); d.push(td); }
    await tick();
  };
  // An anchor container stays attached on the "empty" host, so that its network (bridge, NAT) stays up between
  // rounds: netavark deletes a bridge with its last container, and every round would pay for making it again.
  impl2.mkNs?.(0);
  impl2.attach(0);
  for (let j = 0; j < P && !stop(); j++) {
    const keep = j > 0;
    const e = () => once(impl2!, j + 1, pr.attachEmpty, pr.detachEmpty, keep);
    const f = () => once(full, n + j, pr.attachFull, pr.detachFull, keep);
    if (j % 2 === 0) { await e(); await f(); } else { await f(); await e(); }
    if (keep) pr.rounds++;
  }
  await impl2.detach(0);
  impl2.rmNs?.(0);
  res.probe = pr;
}

interface Ctx {
  host: string;
  ctrPrefix: string;
  root: string;
  nsnetRoot: string;
  res: AttachResult;
}

async function makeImpl(method: Method, c: Ctx): Promise<Impl> {
  switch (method) {
    case 'lib': return libImpl(c);
    case 'cli': return cliImpl(c);
    case 'nsnetcni': return nsnetCniImpl(c);
    case 'netavark': return netavarkImpl(c);
    case 'cni': return cniImpl(c);
    case 'ipscript': return scriptImpl(c, false);
    case 'ipbatch': return scriptImpl(c, true);
  }
}

// ---------------------------------------------------------------------------------------------- (a) library
async function libImpl(c: Ctx): Promise<Impl> {
  const { Nsnet } = await import('../src/index.js');
  c.res.baseRssKiB = Math.round(process.memoryUsage.rss() / 1024);
  let ns: ReturnType<typeof Nsnet.open> | null = null;
  c.res.netnsHow = 'inside Nsnet.create/remove (in-process unshare + bind mount)';
  return {
    setup() {
      // hostNetns: the netns this process entered (Host.open sees it is its own), or the probe's empty host.
      ns = Nsnet.open({ root: c.nsnetRoot, hostNetns: `/run/netns/${c.host}` });
      // BENCH_IPV6=1: a dual-stack network (issue #13: a dual-stack attach next to an IPv4-only one).
      ns.createNetwork(process.env.BENCH_IPV6 === '1'
        ? { name: 'bnet', ipv6: true, subnets: ['10.201.0.0/16', 'fd00:201::/64'] }
        : { name: 'bnet', subnet: '10.201.0.0/16' });
    },
    attach(i) {
      ns!.create({ name: `c${i}`, network: 'bnet', command: ['sleep', 'infinity'], publish: i === 0 ? [`${PORT_HOST}:${PORT_CTR}`] : [] });
    },
    async detach(i) {
      await ns!.remove(`c${i}`);
    },
    async settle() {
      const forced = await ns!.settle();
      if (forced) c.res.error = `settle: ${forced} veth(s) had to be deleted explicitly`;
    },
    check() {
      return JSON.stringify(ns!.check());
    },
    close() {
      ns?.close();
    },
  };
}

// ---------------------------------------------------------------------------------------------- (b) CLI
function cliImpl(c: Ctx): Impl {
  const env: NodeJS.ProcessEnv = { ...process.env, NSNET_ROOT: c.nsnetRoot };
  delete env.NSNET_HOST_NETNS;
  const nsnet = (args: string[]) => inNs(c.host, [NSNET_BIN, ...args], { env });
  c.res.netnsHow = 'inside `nsnet create`/`nsnet rm` (in-process)';
  return {
    setup() {
      nsnet(['network', 'create', '--subnet', '10.201.0.0/16', 'bnet']);
    },
    attach(i) {
      nsnet(['create', '--network', 'bnet', '--name', `c${i}`, ...(i === 0 ? ['-p', `${PORT_HOST}:${PORT_CTR}`] : []), '--', 'sleep', '1']);
    },
    detach(i) {
      nsnet(['rm', `c${i}`]);
    },
    check() {
      const r = run('nsenter', [`--net=/run/netns/${c.host}`, NSNET_BIN, 'check'], { env });
      return `exit ${r.status}${r.stdout.trim() ? ': ' + r.stdout.trim().slice(0, 300) : ''}`;
    },
    otherRssKiB() {
      // The helper of this state dir (src/cli/helper.ts): the process started as `... --nsnet-helper <root>/helper/...`.
      const want = `--nsnet-helper\0${c.nsnetRoot}/helper/`;
      for (const d of fs.readdirSync('/proc')) {
        if (!/^\d+$/.test(d)) continue;
        try {
          if (!fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(want)) continue;
          const hwm = /VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${d}/status`, 'utf8'));
          if (hwm) return Number(hwm[1]);
        } catch { /* gone */ }
      }
      return null;
    },
  };
}

// ---------------------------------------------------------------------------------------------- (b2) nsnet as a CNI plugin
async function nsnetCniImpl(c: Ctx): Promise<Impl> {
  const plugin = path.join(path.dirname(NSNET_BIN), 'cni/nsnet');
  const conf = (i: number) => JSON.stringify({
    cniVersion: '1.0.0', name: 'bnet', type: 'nsnet', subnet: '10.201.0.0/16',
    runtimeConfig: { portMappings: i === 0 ? [{ hostPort: PORT_HOST, containerPort: PORT_CTR, protocol: 'tcp' }] : [] },
  });
  const env = (cmd: string, i: number): NodeJS.ProcessEnv => {
    const e: NodeJS.ProcessEnv = { ...process.env, NSNET_ROOT: c.nsnetRoot, CNI_COMMAND: cmd, CNI_CONTAINERID: `c${i}`,
      CNI_NETNS: `/run/netns/${c.ctrPrefix}${i}`, CNI_IFNAME: 'eth0', CNI_PATH: path.dirname(plugin) };
    delete e.NSNET_HOST_NETNS;
    return e;
  };
  const cli = cliImpl(c);
  const ns = await inProcessNetns(c);
  return {
    ...ns,
    setup() {
      // The network, untimed (as for the other methods): a first ADD/DEL creates it from the configuration.
      ns.mkNs!(-1);
      inNs(c.host, [plugin], { input: conf(1), env: env('ADD', -1) });
      inNs(c.host, [plugin], { input: conf(1), env: env('DEL', -1) });
      ns.rmNs!(-1);
      c.res.netnsCreateMs!.length = 0;
      c.res.netnsDeleteMs!.length = 0;
    },
    attach(i) {
      const r = inNs(c.host, [plugin], { input: conf(i), env: env('ADD', i) });
      if (!r.stdout.includes('"ips"')) throw new Error(`ADD c${i}: ${r.stdout}`);
    },
    detach(i) {
      inNs(c.host, [plugin], { input: conf(i), env: env('DEL', i) });
    },
    check: cli.check,
    otherRssKiB: cli.otherRssKiB,
  };
}

// ---------------------------------------------------------------------------------------------- peers' netns
async function inProcessNetns(c: Ctx): Promise<Pick<Impl, 'mkNs' | 'rmNs'>> {
  const { createNetns, deleteNetns, closeFd } = await import('../src/kernel/netns.js');
  c.res.netnsCreateMs = [];
  c.res.netnsDeleteMs = [];
  c.res.netnsHow = 'in-process unshare(CLONE_NEWNET) + bind mount (as a Go runtime does), timed separately';
  return {
    mkNs(i) {
      const t = performance.now();
      closeFd(createNetns(`${c.ctrPrefix}${i}`));
      return performance.now() - t;
    },
    rmNs(i) {
      const t = performance.now();
      deleteNetns(`${c.ctrPrefix}${i}`);
      return performance.now() - t;
    },
  };
}

// ---------------------------------------------------------------------------------------------- (c) netavark
async function netavarkImpl(c: Ctx): Promise<Impl> {
  const cfg = path.join(c.root, 'netavark');
  fs.mkdirSync(cfg, { recursive: true });
  const saved = new Map<number, string>();
  const opts = (i: number) => JSON.stringify({
    container_id: crypto.randomBytes(32).toString('hex'), container_name: `c${i}`,
    networks: { bnet: { static_ips: [ipOf(i)], interface_name: 'eth0' } },
    network_info: {
      bnet: {
        dns_enabled: false, driver: 'bridge', id: 'ab'.repeat(32), internal: false, ipv6_enabled: false, name: 'bnet',
        network_interface: 'bnbr0', subnets: [{ gateway: '10.201.0.1', subnet: '10.201.0.0/16' }],
      },
    },
    port_mappings: i === 0 ? [{ host_ip: '', container_port: PORT_CTR, host_port: PORT_HOST, range: 1, protocol: 'tcp' }] : [],
  });
  return {
    ...(await inProcessNetns(c)),
    setup() {
      if (!fs.existsSync(NETAVARK)) throw new Error(`${NETAVARK} missing (Debian package netavark)`);
    },
    attach(i) {
      saved.set(i, opts(i));
      inNs(c.host, [NETAVARK, '--config', cfg, 'setup', `/run/netns/${c.ctrPrefix}${i}`], { input: saved.get(i) });
    },
    detach(i) {
      inNs(c.host, [NETAVARK, '--config', cfg, 'teardown', `/run/netns/${c.ctrPrefix}${i}`], { input: saved.get(i) });
    },
  };
}

// ---------------------------------------------------------------------------------------------- (d) CNI
async function cniImpl(c: Ctx): Promise<Impl> {
  const dataDir = path.join(c.root, 'cni');
  const base = { cniVersion: '1.0.0', name: 'bnet' };
  const bridgeConf = {
    ...base, type: 'bridge', bridge: 'bnbr0', isGateway: true, ipMasq: true,
    ipam: { type: 'host-local', dataDir, ranges: [[{ subnet: '10.201.0.0/16', gateway: '10.201.0.1' }]], routes: [{ dst: '0.0.0.0/0' }] },
  };
  const portmapConf = (i: number, prevResult: unknown) => ({
    ...base, type: 'portmap', capabilities: { portMappings: true },
    runtimeConfig: { portMappings: i === 0 ? [{ hostPort: PORT_HOST, containerPort: PORT_CTR, protocol: 'tcp' }] : [] },
    prevResult,
  });
  const env = (cmd: string, i: number) => ({
    ...process.env, CNI_COMMAND: cmd, CNI_CONTAINERID: `c${i}`, CNI_NETNS: `/run/netns/${c.ctrPrefix}${i}`, CNI_IFNAME: 'eth0',
    CNI_PATH: CNI_DIR,
  });
  const results = new Map<number, unknown>();
  return {
    ...(await inProcessNetns(c)),
    setup() {
      for (const p of ['bridge', 'host-local', 'portmap']) if (!fs.existsSync(`${CNI_DIR}/${p}`)) throw new Error(`${CNI_DIR}/${p} missing (Debian package containernetworking-plugins)`);
    },
    attach(i) {
      const r = inNs(c.host, [`${CNI_DIR}/bridge`], { input: JSON.stringify(bridgeConf), env: env('ADD', i) });
      const prev = JSON.parse(r.stdout);
      const r2 = inNs(c.host, [`${CNI_DIR}/portmap`], { input: JSON.stringify(portmapConf(i, prev)), env: env('ADD', i) });
      results.set(i, JSON.parse(r2.stdout));
    },
    detach(i) {
      const prev = results.get(i);
      inNs(c.host, [`${CNI_DIR}/portmap`], { input: JSON.stringify(portmapConf(i, prev)), env: env('DEL', i) });
      inNs(c.host, [`${CNI_DIR}/bridge`], { input: JSON.stringify({ ...bridgeConf, prevResult: prev }), env: env('DEL', i) });
    },
  };
}

// ---------------------------------------------------------------------------------------------- (e)/(f) ip
function scriptImpl(c: Ctx, batch: boolean): Impl {
  const h = c.host;
  const ns = (i: number) => `${c.ctrPrefix}${i}`;
  c.res.netnsCreateMs = [];
  c.res.netnsDeleteMs = [];
  c.res.netnsHow = '`ip netns add` / `ip netns del` processes (as a script does), timed separately';
  const nftTable = [
    'table ip bnat {',
    '  map ports { type inet_service : ipv4_addr . inet_service; }',
    '  chain pre { type nat hook prerouting priority dstnat; policy accept; fib daddr type local dnat ip to tcp dport map @ports; }',
    '  chain out { type nat hook output priority -100; policy accept; fib daddr type local dnat ip to tcp dport map @ports; }',
    '  chain post { type nat hook postrouting priority srcnat; policy accept; ip saddr 10.201.0.0/16 oifname != "bnbr0" masquerade; }',
    '}',
  ].join('\n');
  const elem = `${PORT_HOST} : ${ipOf(0)} . ${PORT_CTR}`;
  return {
    setup() {
      // The network (untimed, as `nsnet network create`): bridge with the gateway address, forwarding, NAT table.
      if (batch) {
        inNs(h, ['ip', '-batch', '-'], { input: 'link add bnbr0 type bridge\naddr add 10.201.0.1/16 dev bnbr0\nlink set bnbr0 up\n' });
      } else {
        inNs(h, ['ip', 'link', 'add', 'bnbr0', 'type', 'bridge']);
        inNs(h, ['ip', 'addr', 'add', '10.201.0.1/16', 'dev', 'bnbr0']);
        inNs(h, ['ip', 'link', 'set', 'bnbr0', 'up']);
      }
      inNs(h, ['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
      inNs(h, ['nft', '-f', '-'], { input: nftTable });
    },
    mkNs(i) {
      return must('ip', ['netns', 'add', ns(i)]).ms;
    },
    rmNs(i) {
      return must('ip', ['netns', 'del', ns(i)]).ms;
    },
    attach(i) {
      const hv = `bv${i}`;
      const ip = ipOf(i);
      if (batch) {
        inNs(h, ['ip', '-batch', '-'], { input: `link add ${hv} type veth peer name eth0 netns ${ns(i)}\nlink set ${hv} master bnbr0 up\n` });
        must('ip', ['-n', ns(i), '-batch', '-'], { input: `link set lo up\naddr add ${ip}/16 dev eth0\nlink set eth0 up\nroute add default via 10.201.0.1\n` });
      } else {
        inNs(h, ['ip', 'link', 'add', hv, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns(i)]);
        inNs(h, ['ip', 'link', 'set', hv, 'master', 'bnbr0', 'up']);
        must('ip', ['-n', ns(i), 'link', 'set', 'lo', 'up']);
        must('ip', ['-n', ns(i), 'addr', 'add', `${ip}/16`, 'dev', 'eth0']);
        must('ip', ['-n', ns(i), 'link', 'set', 'eth0', 'up']);
        must('ip', ['-n', ns(i), 'route', 'add', 'default', 'via', '10.201.0.1']);
      }
      if (i === 0) inNs(h, ['nft', `add element ip bnat ports { ${elem} }`]);
    },
    detach(i) {
      if (i === 0) inNs(h, ['nft', `delete element ip bnat ports { ${PORT_HOST} }`]);
      inNs(h, ['ip', 'link', 'del', `bv${i}`]);
    },
  };
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
