// nsnet's command line: argument parsing and output only; every use case lives in the engine.
// Engine modules are imported lazily per command so that start-up stays lean.
import fs from 'node:fs';
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { json } from './format.js';
import { registerCni } from './cni.js';
import type { Host } from '../engine/host.js';
import { io, processIO, withIO, type CommandIO } from './io.js';
import { ignoreEpipe } from './stdio.js';

const collect = (v: string, prev: string[]) => [...prev, v];

/** `docker port`'s HOSTIP:PORT, an IPv6 address in brackets ([2001:db8::1]:8080). */
function hostPortText(b: { HostIp: string; HostPort: string }): string {
  return `${b.HostIp.includes(':') ? `[${b.HostIp}]` : b.HostIp}:${b.HostPort}`;
}

/** A boolean flag Docker spells --flag, --flag=true or --flag=false. */
function boolFlag(name: string): (v: string) => boolean {
  return (v: string) => {
    if (/^(true|1)$/i.test(v)) return true;
    if (/^(false|0)$/i.test(v)) return false;
    throw new CliError(`invalid argument ${JSON.stringify(v)} for "${name}" flag: expected true or false`, 2);
  };
}

function kv(list: string[], what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list) {
    const i = item.indexOf('=');
    if (i <= 0) throw new CliError(`invalid ${what} ${JSON.stringify(item)}: expected key=value`, 2);
    out[item.slice(0, i)] = item.slice(i + 1);
  }
  return out;
}

class CliError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}

/** Hosts opened by this process: one per command line, or kept across commands by the resident helper. */
const hosts = new Map<string, Host>();
async function openHost(rootOverride?: string): Promise<Host> {
  const g = program.opts<{ root?: string; hostNetns?: string }>();
  const env = io().env;
  const root = rootOverride ?? g.root ?? env.NSNET_ROOT;
  const key = `${root === undefined ? '' : path.resolve(root)}\0${g.hostNetns ?? env.NSNET_HOST_NETNS ?? ''}`;
  const warn = (m: string) => io().err(`WARNING: ${m}\n`);
  let h = hosts.get(key);
  // Kept by the resident helper between commands: this command's environment and stderr, the store opened again
  // and the state directory checked again, as a command run in-process does.
  if (h) {
    h.env = env;
    h.warn = warn;
    h.refresh();
  }
  if (!h) {
    const { Host } = await import('../engine/host.js');
    h = Host.open({ root, hostNetns: g.hostNetns, env, warn });
    hosts.set(key, h);
  }
  // The state directories this process used: only for one of those does the start path (client.ts) start a
  // resident helper afterwards (a CNI VERSION probe, or a command that failed before, uses none).
  ((globalThis as { __nsnetRoots?: Set<string> }).__nsnetRoots ??= new Set()).add(h.root);
  // ... and starts it with posix_spawn (src/kernel/pspawn.ts), not child_process.
  const { spawnDetached } = await import('../kernel/pspawn.js');
  (globalThis as { __nsnetSpawnDetached?: typeof spawnDetached }).__nsnetSpawnDetached = spawnDetached;
  return h;
}

function out(s: string): void {
  io().out(s);
}

/** As Docker's multi-argument commands: act on each, print its name on success, one error line per failure,
 *  exit 1 if any failed. */
async function eachRef(refs: string[], fn: (ref: string) => unknown): Promise<void> {
  for (const r of refs) {
    try {
      // fn returns false: nothing was done and the error is already reported (rm -f of a missing container).
      if ((await fn(r)) !== false) out(r + '\n');
    } catch (e) {
      io().err(`Error: ${(e as Error).message}\n`);
      io().status = 1;
    }
  }
}

/** A listing as Docker's `--format`: the default table, json lines, or a Go template (`table ...` aligned). A
 *  template that cannot be parsed is bad input (exit 2); one that fails on the data exits 1. Nothing is printed
 *  unless every row rendered. */
async function renderRows(format: string | undefined, rows: Array<{ row: Record<string, unknown>; json: Record<string, string> }>,
  lf: import('./template.js').ListFormat): Promise<string> {
  const T = await import('./template.js');
  try {
    return T.renderList(format === undefined || format === '' ? 'table' : format, rows.map((r) => r.row), lf, rows.map((r) => r.json));
  } catch (e) {
    if (e instanceof T.TemplateError) throw new CliError(e.message, /^template: :\d|EOF|not defined|not supported/.test(e.message) && !/executing/.test(e.message) ? 2 : 1);
    throw e;
  }
}

/** `inspect` output: the JSON array (no format, or json), else the template executed on each object, one
 *  line each (as Docker's). */
async function inspectOutput(format: string | undefined, views: unknown[]): Promise<string> {
  if (format === undefined || format === '' || format === 'json') return json(views);
  const T = await import('./template.js');
  let t;
  try {
    t = T.parseTemplate(format);
  } catch (e) {
    if (e instanceof T.TemplateError) throw new CliError(`template parsing error: ${e.message}`, 2);
    throw e;
  }
  try {
    return views.map((v) => T.execute(t, v) + '\n').join('');
  } catch (e) {
    if (e instanceof T.TemplateError) throw new CliError(e.message, 1);
    throw e;
  }
}

/** A network's Docker-shaped view by name, id or id prefix (src/engine/catalog.ts). */
async function networkViewOf(h: Host, ref: string): Promise<Record<string, unknown> | null> {
  const { findNetworkView } = await import('../engine/catalog.js');
  const v = findNetworkView(h, ref);
  if (!v || typeof v.Id !== 'string' || !h.store.partitions().length) return v;
  const { partitionInspect } = await import('../engine/partitions.js'); // its partition (an nsnet key)
  return partitionInspect(h, v.Id, v);
}

/** One line from stdin ('' at end of input, or when stdin cannot be read). */
function readLine(): Promise<string> {
  return new Promise((resolve) => {
    let buf = '';
    const done = (v: string) => { process.stdin.off('data', onData); process.stdin.off('end', onEnd); process.stdin.off('error', onEnd); process.stdin.pause(); resolve(v); };
    const onData = (d: Buffer) => { buf += d.toString('utf8'); const i = buf.indexOf('\n'); if (i >= 0) done(buf.slice(0, i)); };
    const onEnd = () => done(buf);
    process.stdin.on('data', onData);
    process.stdin.on('end', onEnd);
    process.stdin.on('error', onEnd);
    process.stdin.resume();
  });
}

function warn(ws: string[]): void {
  for (const w of ws) io().err(`WARNING: ${w}\n`);
}

const program = new Command('nsnet')
  .description("Docker's container network model on plain Linux network namespaces")
  .option('--root <dir>', 'state directory (env NSNET_ROOT, default /var/lib/nsnet)')
  .option('--host-netns <path>', 'act on this network namespace as the host (env NSNET_HOST_NETNS)')
  .enablePositionalOptions()
  .showHelpAfterError(false)
  .configureOutput({
    writeOut: (str) => io().out(str),
    writeErr: (str) => io().err(str),
    outputError: (str, write) => write(`Error: ${str.replace(/^error: /, '').trim()}\n`),
  })
  .exitOverride();

// ---------------------------------------------------------------- network
const network = program.command('network').description('manage networks');
// Docker reports a network command's refused input (names, subnets, options) as a daemon error: exit 1.
let networkCommand = false;
network.hook('preAction', () => { networkCommand = true; });

network.command('create')
  .description('create a network: bridge (this host), or overlay (across the hosts of a cluster)')
  .option('-d, --driver <driver>', 'driver: bridge, or overlay (needs nsnet cluster join)', 'bridge')
  .option('--subnet <cidr>', 'subnet in CIDR form (one IPv4 and, with --ipv6, one IPv6)', collect, [])
  .option('--gateway <ip>', 'gateway address (default: first address of the subnet; one per family)', collect, [])
  .option('--ip-range <cidr>', 'allocate container addresses from this sub-range (one per family)', collect, [])
  .option('--ipv6', 'enable IPv6 (an IPv6 subnet: --subnet, or a /64 of the host\'s ULA /48)')
  .option('--ipv4 <bool>', '--ipv4=false: no IPv4 (an IPv6-only network, with --ipv6)', boolFlag('--ipv4'))
  .option('--internal', 'no traffic leaves or enters the subnet')
  .option('-o, --opt <key=value>', 'driver option: bridge.name=IFNAME, mtu=N, icc=false', collect, [])
  .option('--label <key=value>', 'label', collect, [])
  .argument('<name>')
  .action(async (name: string, o) => {
    const h = await openHost();
    const { createNetwork } = await import('../engine/networks.js');
    const n = createNetwork(h, {
      name, driver: o.driver, subnets: o.subnet, gateways: o.gateway, ipRanges: o.ipRange, internal: !!o.internal,
      ipv6: o.ipv6 === true, ...(o.ipv4 === false ? { ipv4: false } : {}),
      options: kv(o.opt, 'option'), labels: kv(o.label, 'label'),
    });
    const { foreignFirewallWarning } = await import('../engine/firewall.js');
    const w = foreignFirewallWarning(h);
    if (w) warn([w]);
    out(n.id + '\n');
  });

network.command('ls').alias('list')
  .description('list networks')
  .option('--format <format>', 'table (default), json, or a Go template: table {{.Name}}\\t{{.ID}}')
  .option('-f, --filter <key=value>', 'name=, id=, driver=, label=KEY[=VALUE], type=custom|builtin', collect, [])
  .option('--no-trunc', 'full network ids')
  .option('-q, --quiet', 'only IDs')
  .action(async (o) => {
    const h = await openHost();
    const L = await import('./listing.js');
    const filters = L.parseFilters(o.filter, L.NETWORK_FILTERS);
    const { listNetworks } = await import('../engine/catalog.js');
    const nets = listNetworks(h).filter((n) => L.networkFilter(filters, n));
    const rows = nets.map((n) => L.networkRow(n, o.trunc !== false));
    if (o.quiet) return out(rows.map((r) => r.json.ID + '\n').join(''));
    out(await renderRows(o.format, rows, L.NETWORK_FORMAT));
  });

network.command('inspect')
  .description('show networks as JSON, or through a Go template (-f)')
  .option('-f, --format <template>', 'Go template, e.g. {{.IPAM.Config}}; json (default) prints the JSON array')
  .argument('<network...>')
  .action(async (refs: string[], o) => {
    const h = await openHost();
    const views: unknown[] = [];
    const missing: string[] = [];
    for (const r of refs) {
      const v = await networkViewOf(h, r);
      if (v) views.push(v);
      else missing.push(r);
    }
    out(await inspectOutput(o.format, views));
    if (missing.length) throw new CliError(missing.map((m) => `network ${m} not found`).join('\n'));
  });

network.command('rm').alias('remove')
  .description('remove networks')
  .argument('<network...>')
  .action(async (refs: string[]) => {
    const h = await openHost();
    const { removeNetwork } = await import('../engine/networks.js');
    await eachRef(refs, (r) => removeNetwork(h, r));
  });

network.command('prune')
  .description('remove all networks without containers (asks first unless -f)')
  .option('-f, --force', 'do not prompt for confirmation')
  .action(async (o) => {
    if (!o.force) {
      // As Docker's: the question on stdout, the answer read from stdin; anything but y/yes (an empty or closed
      // stdin included, so a script without a terminal) removes nothing.
      out('WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ');
      const answer = await readLine();
      if (!/^\s*y(es)?\s*$/i.test(answer)) return;
    }
    const h = await openHost();
    const { pruneNetworks } = await import('../engine/networks.js');
    const removed = pruneNetworks(h);
    if (removed.length) out('Deleted Networks:\n' + removed.map((r) => r + '\n').join(''));
  });

network.command('connect')
  .description('connect a container to a network')
  .option('--ip <ip>', 'IPv4 address')
  .option('--ip6 <ip>', 'IPv6 address')
  .option('--alias <name>', 'network-scoped alias', collect, [])
  .argument('<network>')
  .argument('<container>')
  .action(async (net: string, ctr: string, o) => {
    const h = await openHost();
    const { connect } = await import('../engine/containers.js');
    connect(h, net, ctr, { ip: o.ip, ip6: o.ip6, aliases: o.alias });
  });

network.command('disconnect')
  .description('disconnect a container from a network')
  .option('-f, --force', 'succeed even if the container is gone')
  .argument('<network>')
  .argument('<container>')
  .action(async (net: string, ctr: string, o) => {
    const h = await openHost();
    const { disconnect } = await import('../engine/containers.js');
    disconnect(h, net, ctr, !!o.force);
  });

// ---------------------------------------------------------------- cluster (issue #17)
const cluster = program.command('cluster').description('this host in a cluster of nsnet hosts (overlay networks across hosts, coordinated by etcd)');

cluster.command('join')
  .description('join this host to a cluster: its etcd, and the address other hosts reach it at')
  .option('--store <endpoints>', 'etcd endpoints: etcd://HOST:PORT[,etcd://HOST:PORT...] (default NSNET_CLUSTER)')
  .option('--advertise <address>', "this host's underlay address (default NSNET_ADVERTISE)")
  .option('--name <name>', "this host's name in the cluster (default: this state directory's id)")
  .option('--ttl <seconds>', 'how long a host that stopped answering keeps its endpoints (default 10)')
  .action(async (o) => {
    const env = io().env;
    const store = o.store ?? env.NSNET_CLUSTER;
    const advertise = o.advertise ?? env.NSNET_ADVERTISE;
    if (!store) throw new CliError('--store is required (or NSNET_CLUSTER): etcd://HOST:PORT[,...]', 2);
    if (!advertise) throw new CliError('--advertise is required (or NSNET_ADVERTISE): this host\'s underlay address', 2);
    let ttl: number | undefined;
    if (o.ttl !== undefined) {
      if (!/^[0-9]{1,4}$/.test(o.ttl)) throw new CliError(`invalid --ttl ${JSON.stringify(o.ttl)}: whole seconds`, 2);
      ttl = Number(o.ttl);
    }
    const h = await openHost();
    const { joinCluster } = await import('../engine/cluster.js');
    const c = joinCluster(h, { store, advertise, name: o.name, ttl });
    out(`${c.hostId}\n`);
  });

cluster.command('ls').alias('list')
  .description("the cluster's hosts: name, underlay address, last heartbeat")
  .option('--format <format>', 'table (default) or json')
  .action(async (o) => {
    const h = await openHost();
    const { clusterHosts } = await import('../engine/cluster.js');
    const hosts = clusterHosts(h).sort((a, b) => a.host.localeCompare(b.host));
    if (o.format === 'json') return out(JSON.stringify(hosts.map((x) => ({ Host: x.host, Address: x.advertise, Joined: new Date(x.joined).toISOString(), Heartbeat: new Date(x.heartbeat).toISOString() })), null, 2) + '\n');
    if (o.format !== undefined && o.format !== 'table') throw new CliError(`invalid --format ${JSON.stringify(o.format)}: table or json`, 2);
    const now = Date.now();
    const ago = (t: number) => `${Math.max(0, Math.round((now - t) / 1000))} s ago`;
    const rows = [['HOST', 'ADDRESS', 'JOINED', 'LAST HEARTBEAT'], ...hosts.map((x) => [x.host, x.advertise, new Date(x.joined).toISOString(), ago(x.heartbeat)])];
    const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
    out(rows.map((r) => r.map((c, i) => (i < r.length - 1 ? c.padEnd(w[i] + 3) : c)).join('')).join('\n') + '\n');
  });

cluster.command('leave')
  .description('leave the cluster (refused while containers of this host use an overlay network, unless --force)')
  .option('-f, --force', 'leave even so, and even if etcd does not answer')
  .action(async (o) => {
    const h = await openHost();
    const { leaveCluster } = await import('../engine/cluster.js');
    warn(leaveCluster(h, !!o.force));
  });

// ---------------------------------------------------------------- containers
function addCreateOptions(c: Command): Command {
  return c
    // -h is --hostname, as Docker's (help is --help only).
    .helpOption('--help', 'display help for command')
    .option('--name <name>', 'container name')
    .option('-h, --hostname <name>', "the container's hostname (own UTS namespace; default: its short id)")
    .option('--domainname <name>', "the container's NIS domain name")
    .addOption(new Option('--network <network>', 'bridge | host | none | container:NAME | NETWORK').default('bridge'))
    .addOption(new Option('--net <network>').hideHelp())
    .option('--ip <ip>', 'IPv4 address (user-defined networks with --subnet only)')
    .option('--ip6 <ip>', 'IPv6 address (networks with --ipv6 and an IPv6 --subnet only)')
    .option('--mac-address <mac>', 'MAC address of the first interface')
    .option('--alias <name>', 'network-scoped alias', collect, [])
    .addOption(new Option('--network-alias <name>').hideHelp().argParser(collect).default([]))
    .option('-p, --publish <spec>', 'publish [HOSTIP:][HOSTPORT[-END]:]CPORT[-END][/tcp|udp]', collect, [])
    .option('-P, --publish-all', 'publish every --expose port on an ephemeral host port')
    .option('--expose <port>', 'expose PORT[-END][/PROTO] (published by -P)', collect, [])
    .option('--dns <ip>', 'DNS server for this container', collect, [])
    .option('--dns-search <domain>', 'DNS search domain (replaces the host\'s)', collect, [])
    .addOption(new Option('--dns-option <option>', 'resolv.conf option (replaces the host\'s)').argParser(collect).default([]))
    .addOption(new Option('--dns-opt <option>').hideHelp().argParser(collect).default([]))
    .option('--add-host <host:ip>', 'add a line to /etc/hosts (ip may be host-gateway)', collect, [])
    .option('-e, --env <K=V>', 'environment variable (K alone: taken from this environment)', collect, [])
    .option('--env-file <file>', 'read environment variables from a file', collect, [])
    .option('-w, --workdir <dir>', 'working directory of the command (must exist: the host\'s filesystem)')
    .option('-u, --user <user[:group]>', 'run as this user (name or uid, from the host\'s passwd)')
    .option('-l, --label <key=value>', 'label', collect, [])
    .option('-i, --interactive', 'keep stdin attached (foreground run)')
    .option('-t, --tty', 'the command gets our terminal (no pseudo-terminal is allocated)')
    .option('--init', 'accepted: the command already runs under nsnet\'s supervisor (no PID namespace)')
    .option('--restart <policy>', 'only "no": nsnet does not restart containers')
    .option('--rm', 'remove the container when it exits')
    .argument('[command...]', 'the command to run (after --)')
    .passThroughOptions();
}

type CreateOpts = {
  name?: string; hostname?: string; domainname?: string; network: string; net?: string; ip?: string; ip6?: string; macAddress?: string;
  alias: string[]; networkAlias: string[]; publish: string[]; publishAll?: boolean; expose: string[]; dns: string[];
  dnsSearch: string[]; dnsOption: string[]; dnsOpt: string[]; addHost: string[]; env: string[]; envFile: string[];
  workdir?: string; user?: string; label: string[]; interactive?: boolean; tty?: boolean; init?: boolean; restart?: string;
  rm?: boolean; detach?: boolean;
};

/** -e K=V, and Docker's -e K: the value of K in this environment, dropped if unset; --env-file lines likewise
 *  (# comments and blank lines skipped, no quote processing). Files first, then -e, as Docker. */
function envList(o: CreateOpts | { env: string[]; envFile?: string[] }): string[] {
  const out: string[] = [];
  const one = (item: string, where: string) => {
    const i = item.indexOf('=');
    const key = i < 0 ? item : item.slice(0, i);
    if (key === '' || /\s/.test(key)) throw new CliError(`invalid environment variable${where}: ${JSON.stringify(item)}`, 2);
    if (i >= 0) out.push(item);
    else if (io().env[key] !== undefined) out.push(`${key}=${io().env[key]}`);
  };
  for (const f of ('envFile' in o ? o.envFile : undefined) ?? []) {
    let text: string;
    try {
      text = fs.readFileSync(f, 'utf8');
    } catch (e) {
      throw new CliError(`open ${f}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (e as Error).message}`, 2);
    }
    for (const line of text.split(/\r?\n/)) {
      const l = line.replace(/^\s+/, '');
      if (l === '' || l.startsWith('#')) continue;
      one(l, ` in ${f}`);
    }
  }
  for (const e of o.env) one(e, '');
  return out;
}

async function doCreate(command: string[], o: CreateOpts) {
  if (command[0] === '--') command = command.slice(1);
  if (o.restart !== undefined && o.restart !== 'no') {
    // A restart policy needs a supervisor that outlives nsnet's commands and the machine's reboots: not built.
    throw new CliError(`--restart ${JSON.stringify(o.restart)} is not supported: nsnet does not restart containers (only --restart no)`, 2);
  }
  if (o.interactive && o.tty && !o.detach && !process.stdin.isTTY) throw new CliError('the input device is not a TTY', 1);
  const h = await openHost();
  const { createContainer } = await import('../engine/containers.js');
  const r = createContainer(h, {
    name: o.name, network: o.net ?? o.network, ip: o.ip, ip6: o.ip6, aliases: [...o.alias, ...o.networkAlias], publish: o.publish,
    dns: o.dns, command, autoRemove: !!o.rm, publishAll: !!o.publishAll, macAddress: o.macAddress,
    config: {
      hostname: o.hostname ?? '', domainname: o.domainname ?? '', env: envList(o), workdir: o.workdir ?? '',
      labels: kv(o.label.map((l) => (l.includes('=') ? l : l + '=')), 'label'), extraHosts: o.addHost.map(addHost),
      dnsSearch: o.dnsSearch, dnsOptions: [...o.dnsOption, ...o.dnsOpt], exposed: o.expose, tty: !!o.tty,
      interactive: !!o.interactive, init: !!o.init, user: o.user ?? '',
    },
  });
  warn(r.warnings);
  return { h, c: r.container };
}

/** --add-host NAME:IP (Docker's format; the IP may be IPv6, which has colons itself). */
function addHost(s: string): [string, string] {
  const i = s.indexOf(':');
  if (i <= 0 || i === s.length - 1) throw new CliError(`invalid argument ${JSON.stringify(s)} for "--add-host" flag: bad format for add-host: ${JSON.stringify(s)}`, 2);
  return [s.slice(0, i), s.slice(i + 1)];
}

addCreateOptions(program.command('create').description('create a container (its network sandbox) without starting it'))
  .action(async (command: string[], o: CreateOpts) => {
    const { c } = await doCreate(command, o);
    out(c.id + '\n');
  });

addCreateOptions(program.command('run').description('create and start a container'))
  .option('-d, --detach', 'run in the background and print the container id')
  .action(async (command: string[], o: CreateOpts) => {
    let created;
    try {
      created = await doCreate(command, o);
    } catch (e) {
      // As `docker run`: 127 when the command cannot be found, 125 when the container could not be created.
      const E = await import('../engine/containers.js');
      throw new CliError((e as Error).message, e instanceof E.CommandNotFoundError ? 127 : 125);
    }
    const { h, c } = created;
    const E = await import('../engine/containers.js');
    if (o.detach) {
      E.startContainer(h, c.id);
      out(c.id + '\n');
      return;
    }
    io().status = await E.runForeground(h, c);
  });

program.command('start')
  .description('start created or stopped containers')
  .argument('<container...>')
  .action(async (refs: string[]) => {
    const h = await openHost();
    const { startContainer } = await import('../engine/containers.js');
    await eachRef(refs, (r) => startContainer(h, r));
  });

program.command('ps')
  .description('list containers (newest first)')
  .option('-a, --all', 'show all containers (default shows running)')
  .option('-q, --quiet', 'only IDs')
  .option('-f, --filter <key=value>', 'name=, id=, label=KEY[=VALUE], status=, network=, publish=PORT[/PROTO], expose=, exited=CODE', collect, [])
  .option('-n, --last <n>', 'the n last created containers (all states)')
  .option('-l, --latest', 'the last created container (all states)')
  .option('--no-trunc', 'do not truncate ids and commands')
  .option('-s, --size', 'add the SIZE column (always 0B: nsnet has no container filesystem)')
  .option('--format <format>', 'table (default), json, or a Go template: table {{.Names}}\\t{{.Status}}')
  .action(async (o) => {
    const L = await import('./listing.js');
    const filters = L.parseFilters(o.filter, L.PS_FILTERS);
    let last: number | undefined;
    if (o.last !== undefined) {
      if (!/^-?\d{1,9}$/.test(o.last)) throw new CliError(`invalid argument ${JSON.stringify(o.last)} for "-n, --last" flag: expected a number`, 2);
      last = Number(o.last);
    }
    if (o.latest) last = 1;
    const h = await openHost();
    const { listContainers } = await import('../engine/catalog.js');
    const all = o.all || (last !== undefined && last > 0) || filters.has('status') || filters.has('exited');
    let list = listContainers(h, all).filter((x) => L.psFilter(filters, x));
    if (last !== undefined && last > 0) list = list.slice(0, last);
    const now = Date.now();
    const rows = list.map((x) => L.psRow(x, o.trunc !== false, now));
    if (o.quiet) return out(rows.map((r) => r.json.ID + '\n').join(''));
    const fmt = { ...L.PS_FORMAT, defaultTable: L.PS_FORMAT.defaultTable + (o.size ? '\t{{.Size}}' : '') };
    out(await renderRows(o.format, rows, fmt));
  });

program.command('inspect')
  .description('show containers and networks as JSON (Docker-shaped), or through a Go template (-f)')
  .option('-f, --format <template>', 'Go template, e.g. {{.NetworkSettings.IPAddress}}; json (default) prints the JSON array')
  .option('--type <type>', 'container or network (default: either, containers first)')
  .argument('<name...>')
  .action(async (refs: string[], o) => {
    if (o.type !== undefined && o.type !== 'container' && o.type !== 'network') {
      throw new CliError(`"${o.type}" is not a valid value for --type (container or network)`, 2);
    }
    const h = await openHost();
    const { inspectContainer } = await import('../engine/containers.js');
    const views: unknown[] = [];
    const missing: string[] = [];
    for (const r of refs) {
      const c = o.type === 'network' ? null : h.store.findContainer(r);
      const v = c ? inspectContainer(h, c) : o.type === 'container' ? null : await networkViewOf(h, r);
      if (v) views.push(v);
      else missing.push(r);
    }
    out(await inspectOutput(o.format, views));
    const what = o.type === 'network' ? 'network' : o.type === 'container' ? 'container' : 'object'; // Docker's words
    if (missing.length) throw new CliError(missing.map((m) => `No such ${what}: ${m}`).join('\n'));
  });

program.command('port')
  .description("list a container's published ports, or the host address of one: port NAME 80[/tcp]")
  .argument('<container>')
  .argument('[private]', 'PORT[/PROTO]')
  .action(async (ref: string, priv: string | undefined) => {
    let want: string | undefined;
    if (priv !== undefined) {
      const m = /^(\d{1,5})(?:\/(tcp|udp))?$/.exec(priv);
      if (!m || Number(m[1]) < 1 || Number(m[1]) > 65535) throw new CliError(`invalid port ${JSON.stringify(priv)}: expected PORT[/tcp|udp]`, 2);
      want = `${Number(m[1])}/${m[2] ?? 'tcp'}`;
    }
    const h = await openHost();
    const { resolveContainer, refreshState } = await import('../engine/containers.js');
    const { portsView, portFamilies } = await import('../engine/views.js');
    const c = refreshState(h, resolveContainer(h, ref));
    // A container that is not running holds no ports (Docker releases them when it stops).
    const view = c.state === 'running' ? portsView(c.ports, portFamilies(h.store.endpointsOf(c.id), new Map(h.store.networks().map((n) => [n.id, n])))) : {};
    if (want === undefined) {
      for (const [k, bs] of Object.entries(view)) for (const b of bs) out(`${k} -> ${hostPortText(b)}\n`);
      return;
    }
    const bs = view[want];
    if (!bs?.length) throw new CliError(`No public port '${want}' published for ${ref}`);
    out(bs.map((b) => `${hostPortText(b)}\n`).join(''));
  });

program.command('exec')
  .description('run a command inside a running container')
  .option('-d, --detach', 'run it in the background')
  .option('-i, --interactive', 'keep stdin attached')
  .option('-t, --tty', 'the command gets our terminal (no pseudo-terminal is allocated)')
  .option('-e, --env <K=V>', 'environment variable (K alone: taken from this environment)', collect, [])
  .option('-w, --workdir <dir>', 'working directory (must exist)')
  .option('-u, --user <user[:group]>', 'run as this user (name or uid)')
  .argument('<container>')
  .argument('<command...>')
  .passThroughOptions()
  .action(async (ref: string, command: string[], o) => {
    if (command[0] === '--') command = command.slice(1);
    if (o.workdir !== undefined && !o.workdir.startsWith('/')) throw new CliError(`the working directory '${o.workdir}' is invalid, it needs to be an absolute path`, 2);
    if (o.interactive && o.tty && !o.detach && !process.stdin.isTTY) throw new CliError('the input device is not a TTY', 1);
    const env = envList({ env: o.env });
    const h = await openHost();
    const { execIn } = await import('../engine/containers.js');
    io().status = await execIn(h, ref, command, { env, workdir: o.workdir, user: o.user, tty: !!o.tty, interactive: !!o.interactive, detach: !!o.detach });
  });

program.command('logs')
  .description("show a detached container's output: its stdout on stdout, its stderr on stderr")
  .option('-f, --follow', 'keep printing new output until the container stops')
  .option('-n, --tail <n>', 'only the last n lines of each ("all" for every line)', 'all')
  .option('-t, --timestamps', 'refused: the log records no times')
  .argument('<container>')
  .action(async (ref: string, o) => {
    if (o.timestamps) throw new CliError('--timestamps is not supported: nsnet\'s log records no times', 2);
    if (o.tail !== 'all' && !/^\d{1,9}$/.test(o.tail)) throw new CliError(`invalid --tail ${JSON.stringify(o.tail)}: a number of lines or "all"`, 2);
    const h = await openHost();
    const { resolveContainer, logFile, errLogFile, refreshState } = await import('../engine/containers.js');
    const c = resolveContainer(h, ref);
    // (Containers started before stderr was logged apart have everything in the stdout log.)
    const streams = [{ file: logFile(h, c), to: (b: string | Uint8Array) => io().out(b), pos: 0 }, { file: errLogFile(h, c), to: (b: string | Uint8Array) => io().err(b), pos: 0 }];
    for (const st of streams) {
      let text = '';
      try {
        text = fs.readFileSync(st.file, 'utf8');
        st.pos = Buffer.byteLength(text);
      } catch {
        /* never started detached: no output */
      }
      if (o.tail !== 'all') {
        const lines = text.split('\n');
        const last = lines[lines.length - 1] === '' ? lines.slice(0, -1) : lines;
        const n = Number(o.tail);
        text = n === 0 || !last.length ? '' : last.slice(-n).join('\n') + '\n';
      }
      st.to(text);
    }
    if (!o.follow) return;
    // Follow: print what is appended, until the container is no longer running (then a last read).
    const more = () => {
      for (const st of streams) {
        let size = 0;
        try { size = fs.statSync(st.file).size; } catch { continue; }
        if (size < st.pos) st.pos = 0; // the log was started anew
        if (size === st.pos) continue;
        const fd = fs.openSync(st.file, 'r');
        try {
          const buf = Buffer.alloc(size - st.pos);
          fs.readSync(fd, buf, 0, buf.length, st.pos);
          st.pos = size;
          st.to(buf);
        } finally {
          fs.closeSync(fd);
        }
      }
    };
    for (;;) {
      more();
      const cur = h.store.containerById(c.id);
      if (!cur || refreshState(h, cur).state !== 'running') { more(); return; }
      await new Promise((r) => setTimeout(r, 100));
    }
  });

program.command('stop')
  .description('stop containers (SIGTERM, then SIGKILL after the timeout)')
  .option('-t, --time <seconds>', 'seconds to wait before killing', '10')
  .argument('<container...>')
  .action(async (refs: string[], o) => {
    if (!/^\d{1,6}$/.test(String(o.time))) throw new CliError(`invalid --time ${JSON.stringify(o.time)}: expected a number of seconds`, 2);
    const t = Number(o.time);
    const h = await openHost();
    const E = await import('../engine/containers.js');
    await eachRef(refs, async (r) => {
      await E.stopContainer(h, r, t);
    });
  });

program.command('rm')
  .description('remove containers')
  .option('-f, --force', 'kill running containers first; a missing container is not an error')
  .argument('<container...>')
  .action(async (refs: string[], o) => {
    const h = await openHost();
    const { removeContainer } = await import('../engine/containers.js');
    const { UserError } = await import('../util/errors.js');
    await eachRef(refs, async (r) => {
      try {
        await removeContainer(h, r, !!o.force);
      } catch (e) {
        // As Docker's: with -f, a container that does not exist is reported and the exit status stays 0 (the
        // `rm -f x || true` of every clean-up script).
        if (o.force && e instanceof UserError && e.code === 'notfound') {
          io().err(`Error: ${e.message}\n`);
          return false;
        }
        throw e;
      }
      return true;
    });
  });

program.command('reconcile')
  .description('finish interrupted operations, remove orphans, recreate what is missing')
  .option('--force', 'also when the store was lost: remove the kernel objects it does not know (and their processes)')
  .option('--rebuild', 'when the store was lost: rebuild it from the kernel objects nsnet marked, then reconcile')
  .action(async (o) => {
    const h = await openHost();
    const { reconcile } = await import('../engine/reconcile.js');
    if (o.rebuild) {
      if (o.force) throw new CliError('--rebuild and --force exclude each other: --rebuild keeps what the kernel holds, --force removes what the store does not know', 2);
      const { rebuildAndReconcile, rebuildLines } = await import('../engine/rebuild.js');
      const r = rebuildAndReconcile(h);
      for (const l of [...rebuildLines(r.report), ...r.actions]) out(l + '\n');
      return;
    }
    for (const a of reconcile(h, { force: !!o.force }).actions) out(a + '\n');
  });

program.command('check')
  .description('report differences between the store and the kernel (changes nothing; exit 1 if any)')
  .option('--format <format>', 'table or json', 'table')
  .action(async (o) => {
    const h = await openHost();
    const { check } = await import('../engine/reconcile.js');
    const d = check(h);
    if (o.format === 'json') out(json(d));
    else for (const x of d) out(`${x.kind}\t${x.detail}\n`);
    if (d.length) io().status = 1;
  });

// ---------------------------------------------------------------- faults: link impairment
program.command('netem')
  .description("impair a container's link on a network (both directions: a 100ms delay adds about 200ms to a round trip)")
  .argument('[container]')
  .option('--network <network>', 'the network of the link (needed when the container is on several)')
  .option('--delay <time>', 'added delay, each direction (100ms, 1.5s)')
  .option('--jitter <time>', 'random variation of the delay (10ms)')
  .option('--loss <percent>', 'packets dropped (1%)')
  .option('--rate <rate>', 'bandwidth (10mbit, 1gbit; kbps/mbps are bytes per second, as tc)')
  .option('--duplicate <percent>', 'packets duplicated (1%)')
  .option('--corrupt <percent>', 'packets corrupted (0.1%)')
  .option('--reorder <percent>', 'packets sent at once, before delayed ones (25%; needs --delay)')
  .option('--to <peer>', 'only traffic between the container and this container or CIDR (repeatable)', collect, [])
  .option('--duration <time>', 'heal by itself after this long (30s, 5m), even with no nsnet process left')
  .option('--clear', "remove the container's impairment (on --network, or on all its networks)")
  .option('--clear-all', 'remove every impairment of this host')
  .addOption(new Option('--expire', 'remove what has expired (run by the healer)').hideHelp())
  .action(async (ref: string | undefined, o) => {
    const E = await import('../engine/netem.js');
    const impair = ['delay', 'jitter', 'loss', 'rate', 'duplicate', 'corrupt', 'reorder', 'duration'].filter((k) => o[k] !== undefined);
    if (o.to.length) impair.push('to');
    const modes = [o.clear, o.clearAll, o.expire].filter(Boolean).length;
    if (modes > 1 || (modes && impair.length)) throw new CliError('--clear, --clear-all and --expire take no impairment options, and only one of them', 2);
    if ((o.clearAll || o.expire) && ref !== undefined) throw new CliError(`--${o.clearAll ? 'clear-all' : 'expire'} takes no container`, 2);
    if (!o.clearAll && !o.expire && ref === undefined) throw new CliError('nsnet netem CONTAINER [--network NET] [--delay T] [--loss P] [--rate R] ... | CONTAINER --clear | --clear-all', 2);
    if (o.expire) {
      const h = await openHost();
      E.expireNow(h);
      return;
    }
    if (o.clearAll) {
      const h = await openHost();
      out(`cleared ${E.clearAllNetem(h)} impairment(s)\n`);
      return;
    }
    // Bad values are refused before the state directory is opened.
    if (!o.clear) E.parseNetemInput({ ...o, to: o.to });
    const h = await openHost();
    if (o.clear) {
      out(`cleared ${E.clearNetem(h, ref!, o.network)} impairment(s) of ${ref}\n`);
      return;
    }
    const r = E.setNetem(h, ref!, o.network, { ...o, to: o.to });
    out(`${r.container} on ${r.network}: ${r.description} (each direction)${r.expires !== null ? `, until ${new Date(r.expires).toISOString()}` : ''}\n`);
  });

program.command('faults')
  .description('list the faults in force (link impairments, partitions), and until when')
  .option('--format <format>', 'table or json', 'table')
  .action(async (o) => {
    if (o.format !== 'table' && o.format !== 'json') throw new CliError(`unknown --format ${JSON.stringify(o.format)} (table or json)`, 2);
    const h = await openHost();
    const { netemFaults } = await import('../engine/netem.js');
    const { partitionFaults } = await import('../engine/partitions.js');
    // Each kind of fault adds its rows here.
    const rows = [...netemFaults(h), ...partitionFaults(h)];
    if (o.format === 'json') return out(json(rows));
    const now = Date.now();
    const { table } = await import('./format.js');
    out(table(['KIND', 'CONTAINER', 'NETWORK', 'STATE', 'UNTIL', 'DETAIL'], rows.map((f) => [
      f.kind, f.container, f.network, f.state,
      f.until ? `${f.until} (in ${Math.max(0, Math.round((Date.parse(f.until) - now) / 1000))}s)` : 'until cleared', f.detail,
    ])));
  });

// ---------------------------------------------------------------- partitions (issue #15)
program.command('partition')
  .description('cut a network into groups of containers: traffic between groups is dropped (established connections too) until heal')
  .option('--network <network>', 'the network to cut (default: the one network every listed container is on)')
  .option('--oneway', 'exactly two groups FROM TO: only FROM -> TO is dropped')
  .option('--duration <duration>', 'heal by itself after this long (30s, 500ms, 2m, 1h30m)')
  .option('--list', 'list the partitions instead (nsnet faults lists them with the link impairments)')
  .option('--format <format>', 'with --list: table (default) or json')
  .argument('[groups...]', 'each a comma-separated group of containers (names or ids); the containers of the network not listed form one more group')
  .action(async (groups: string[], o) => {
    if (o.list) {
      if (groups.length || o.oneway || o.duration !== undefined || o.network !== undefined) throw new CliError('partition --list takes no groups and no other option but --format', 2);
      if (o.format !== undefined && o.format !== 'table' && o.format !== 'json') throw new CliError(`unknown --format ${JSON.stringify(o.format)} (table, json)`, 2);
      const h = await openHost();
      const { partitionsView } = await import('../engine/partitions.js');
      const rows = partitionsView(h);
      if (o.format === 'json') return out(json(rows));
      const until = (r: (typeof rows)[number]) => (r.expired ? `${r.until} (expired)` : r.until ?? '-');
      const table = [['NETWORK', 'KIND', 'CUT', 'UNTIL'], ...rows.map((r) => [r.network, r.oneway ? 'one-way' : 'partition', r.cut, until(r)])];
      const w = table[0].map((_, i) => Math.max(...table.map((r) => r[i].length)));
      return out(table.map((r) => r.map((c, i) => (i < r.length - 1 ? c.padEnd(w[i] + 3) : c)).join('') + '\n').join(''));
    }
    if (o.format !== undefined) throw new CliError('--format goes with --list', 2);
    const P = await import('../engine/partitions.js');
    const durationMs = o.duration !== undefined ? P.parseDuration(o.duration) : undefined;
    const h = await openHost();
    const r = P.partition(h, { network: o.network, groups, oneway: !!o.oneway, durationMs });
    const cut = r.oneway ? `${r.groups[0].join(',')} -> ${r.groups[1].join(',')}` : [...r.groups.map((g) => g.join(',')), ...(r.rest.length ? [`(rest) ${r.rest.join(',')}`] : [])].join(' | ');
    out(`network ${r.network}: ${cut}${r.expires ? ` until ${r.expires}` : ''}${r.replaced ? ' (replaces its previous partition)' : ''}\n`);
  });

program.command('heal')
  .description('remove the partition of a network (default: every partition)')
  .option('--network <network>', 'only this network')
  .addOption(new Option('--expired <id>', 'the --duration timer: heal that partition only, once expired').hideHelp())
  .action(async (o) => {
    const h = await openHost();
    const { heal } = await import('../engine/partitions.js');
    for (const n of heal(h, { network: o.network, expired: o.expired })) out(n + '\n');
  });

// ---------------------------------------------------------------- topologies (compose files)
/** -f FILE, else nsnet.yaml, compose.yaml, compose.yml, docker-compose.yml, docker-compose.yaml in the cwd. */
function topologyFile(f: string | undefined): string {
  if (f !== undefined) return f;
  for (const n of ['nsnet.yaml', 'compose.yaml', 'compose.yml', 'docker-compose.yml', 'docker-compose.yaml']) if (fs.existsSync(n)) return n;
  throw new CliError('no topology file: nsnet.yaml, compose.yaml or docker-compose.yml in this directory, or -f FILE', 2);
}

async function loadTopologyFile(f: string | undefined, project: string | undefined) {
  const file = topologyFile(f);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new CliError(`${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, 2);
  }
  const { loadTopology } = await import('../topology/compose.js');
  return loadTopology(text, { file, project, dirName: path.basename(path.dirname(path.resolve(file))), env: io().env });
}

program.command('up')
  .description('create and start a topology from a Compose file (networks, services), converging')
  .option('-f, --file <file>', 'topology file (default: nsnet.yaml, compose.yaml, docker-compose.yml)')
  .option('-p, --project-name <name>', 'project name (default: the file\'s name:, else its directory)')
  .option('-d, --detach', 'return once everything runs (without it: follow the logs, Ctrl-C stops the project)')
  .action(async (o) => {
    const t = await loadTopologyFile(o.file, o.projectName);
    warn(t.warnings);
    const h = await openHost();
    const { up, followProject } = await import('../engine/topology.js');
    await up(h, t, (l) => out(l + '\n'));
    if (!o.detach) io().status = await followProject(h, t.project, (s) => out(s));
  });

program.command('down')
  .description("remove a topology's containers and networks (only what carries its project label)")
  .option('-f, --file <file>', 'topology file (default: nsnet.yaml, compose.yaml, docker-compose.yml)')
  .option('-p, --project-name <name>', 'project name (default: the file\'s name:, else its directory)')
  .action(async (o) => {
    const project = o.projectName ?? (await loadTopologyFile(o.file, undefined)).project;
    const h = await openHost();
    const { down } = await import('../engine/topology.js');
    await down(h, project, (l) => out(l + '\n'));
  });

// ---------------------------------------------------------------- graph
program.command('graph')
  .description('draw the networks, containers, veth pairs and published ports (html, svg, dot, mermaid, json)')
  .option('-o, --output <file>', 'write to this file (default: standard output)')
  .option('--format <format>', 'html | svg | dot | mermaid | json (default: from the -o file\'s extension, else html)')
  .option('--network <network>', 'only this network and what is on it (repeatable)', collect, [])
  .action(async (o) => {
    const { GRAPH_FORMATS, render } = await import('../graph/render.js');
    const ext = o.output ? path.extname(o.output).slice(1).replace(/^htm$/, 'html').replace(/^mmd$/, 'mermaid').replace(/^gv$/, 'dot') : '';
    const format = o.format ?? (GRAPH_FORMATS.includes(ext as never) ? ext : 'html');
    if (!GRAPH_FORMATS.includes(format)) throw new CliError(`unknown --format ${JSON.stringify(format)} (${GRAPH_FORMATS.join(', ')})`, 2);
    const h = await openHost();
    const { hostGraph } = await import('../engine/graph.js');
    const text = render(hostGraph(h, o.network), format, `nsnet: ${h.root}`);
    if (!o.output) return out(text);
    try {
      fs.writeFileSync(o.output, text);
    } catch (e) {
      throw new CliError(`${o.output}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, 1);
    }
  });
// ---------------------------------------------------------------- explain
program.command('explain')
  .description('why a packet from FROM does or does not reach TO: the path hop by hop, the deciding rule, the fix (exit 0 delivered, 1 dropped)')
  .argument('<from>', 'a container, host, outside, or an address')
  .argument('<to>', 'TO[:PORT][/tcp|udp]: a container, host, outside, or an address (no port: an ICMP echo)')
  .option('--trace', 'send one real probe packet, trace it through the kernel\'s nftables and compare')
  .option('--format <format>', 'text or json', 'text')
  .action(async (fromRef: string, toRef: string, o) => {
    if (o.format !== 'text' && o.format !== 'json') throw new CliError(`unknown --format ${JSON.stringify(o.format)} (text, json)`, 2);
    const P = await import('../explain/plan.js');
    P.parseFrom(fromRef);
    const target = P.parseTo(toRef);
    const h = await openHost();
    const E = await import('../engine/explain.js');
    const { e, model } = E.explainOn(h, fromRef, target);
    let trace: import('../explain/trace.js').TraceReport | undefined;
    let interrupted = false;
    if (o.trace) {
      // The probe is synchronous and short (≤ 1 s): Ctrl-C waits for it, so the trace rule is always removed.
      const onSignal = () => { interrupted = true; };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        trace = E.traceExplanation(h, e, model);
        await new Promise((r) => setTimeout(r, 20)); // a signal that came during the probe is handled now
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    }
    if (o.format === 'json') out(json(trace ? { ...e, trace } : e));
    else {
      out(P.formatExplanation(e));
      if (trace) out((await import('../explain/trace.js')).formatTrace(trace));
    }
    if (interrupted) throw new CliError('interrupted (the trace rule was removed)', 130);
    // 0 delivered, 1 dropped (the prediction); 3: --trace found the kernel disagreeing with the prediction.
    io().status = trace?.differences.length ? 3 : e.verdict === 'delivered' ? 0 : 1;
  });
registerCni(program, openHost); // `nsnet cni`: the CNI plugin (bin/cni/nsnet, src/cli/cni.ts)

// ---------------------------------------------------------------- entry
/** Enters the host netns given by --host-netns / NSNET_HOST_NETNS. Must run before any helper thread exists
 *  (docs/kernel-notes.md §7); then one async fs call makes the libuv threadpool be born in the host netns, never
 *  inside a temporary switch. */
async function enterHost(argv: string[]): Promise<void> {
  const hn = hostNetnsArg(argv) ?? process.env.NSNET_HOST_NETNS;
  if (hn !== undefined) {
    const { enterHostNetns } = await import('../kernel/netns.js');
    try {
      if (hn === '') throw new Error('empty path');
      enterHostNetns(hn);
    } catch (e) {
      const why = (e as { code?: string }).code === 'EINVAL' ? 'not a network namespace' : (e as { code?: string }).code ?? (e as Error).message;
      throw new CliError(`--host-netns / NSNET_HOST_NETNS ${JSON.stringify(hn)}: ${why}`, 2);
    }
  }
  // The libuv threadpool's threads are born here, in the host netns (docs/kernel-notes.md). A callback stat,
  // not fs.promises: that module costs ≈1 ms to load.
  await new Promise<void>((resolve) => fs.stat('/', () => resolve()));
}

function reportError(e: unknown): void {
  if (e instanceof CommanderError) {
    io().status = e.exitCode === 0 ? 0 : 2;
    return;
  }
  // UserError (bad input: 2, refused/not found/conflict: 1) and CliError carry their exit status; anything
  // else is an unexpected failure: 1, one line (NSNET_DEBUG=1 shows the stack).
  const err = e as Error & { exitCode?: number };
  if (io().env.NSNET_DEBUG) io().err(String(err.stack) + '\n');
  io().err(`Error: ${err.message.split('\n').join('\nError: ')}\n`);
  io().status = typeof err.exitCode === 'number' ? (networkCommand && err.exitCode === 2 ? 1 : err.exitCode) : 1;
}

/** Runs one command line. In the resident helper (`inHelper`) the process already is in the host netns (a helper
 *  serves one host netns) and keeps its hosts open between commands. */
async function runCli(argv: string[], inHelper = false, cmd: CommandIO = processIO()): Promise<number> {
  networkCommand = false;
  return withIO(cmd, async () => {
    try {
      if (!inHelper) await enterHost(argv);
      await program.parseAsync(argv);
    } catch (e) {
      reportError(e);
    } finally {
      if (!inHelper) {
        for (const h of hosts.values()) h.close();
        hosts.clear();
      } else {
        for (const h of hosts.values()) h.detachStore();
      }
    }
  });
}

async function main(argv: string[]): Promise<void> {
  // A command's output goes through io() (src/cli/stdio.ts in-process: a reader that went away drops the rest of the
  // output and the command goes on to its end); process.stdout and process.stderr are not even created: that
  // costs every in-process start ≈3-4 ms.
  if (argv[2] !== '--nsnet-helper') {
    process.exitCode = await runCli(argv);
    return;
  }
  // The helper's own messages go to its log through the streams.
  ignoreEpipe(process.stdout);
  ignoreEpipe(process.stderr);
  // `nsnet-start.cjs --nsnet-helper SOCKET`, started after a command ran in-process (src/cli/client.ts): serve
  // until idle.
  try {
    await enterHost(argv.slice(0, 2));
  } catch (e) {
    return reportError(e);
  }
  const { serveHelper } = await import('./helper.js');
  // Fault injection reads NSNET_CRASH_AT when its module loads: here, with the helper's own environment (its
  // requests run with their clients' environments, which never carry it: such clients run in-process).
  await import('../engine/faults.js');
  // The build it serves: the bundle next to the start script (dist/nsnet-start.cjs, dist/nsnet.cjs).
  await serveHelper(argv[3], (a, cmd) => runCli(a, true, cmd), path.join(path.dirname(argv[1]), 'nsnet.cjs'));
  for (const h of hosts.values()) h.close();
  hosts.clear(); // a command that still arrives while the process ends opens what it needs again
}

function hostNetnsArg(argv: string[]): string | undefined {
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('-')) return undefined;
    if (a === '--host-netns') return argv[i + 1];
    if (a.startsWith('--host-netns=')) return a.slice('--host-netns='.length);
    if (a === '--root') i++;
  }
  return undefined;
}


void main(process.argv);
