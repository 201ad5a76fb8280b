// nsnet's command line: argument parsing and output only; every use case lives in the engine.
// Engine modules are imported lazily per command so that start-up stays lean.
import fs from 'node:fs';
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { ago, json, jsonLines, table } from './format.js';
import { registerCni } from './cni.js';
import type { Host } from '../engine/host.js';

const collect = (v: string, prev: string[]) => [...prev, v];

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
  const root = rootOverride ?? g.root ?? process.env.NSNET_ROOT;
  const key = `${root === undefined ? '' : path.resolve(root)}\0${g.hostNetns ?? process.env.NSNET_HOST_NETNS ?? ''}`;
  let h = hosts.get(key);
  if (!h) {
    const { Host } = await import('../engine/host.js');
    h = Host.open({ root, hostNetns: g.hostNetns });
    hosts.set(key, h);
  }
  return h;
}

function out(s: string): void {
  process.stdout.write(s);
}

/** As Docker's multi-argument commands: act on each, print its name on success, one error line per failure,
 *  exit 1 if any failed. */
async function eachRef(refs: string[], fn: (ref: string) => unknown): Promise<void> {
  for (const r of refs) {
    try {
      await fn(r);
      out(r + '\n');
    } catch (e) {
      process.stderr.write(`Error: ${(e as Error).message}\n`);
      process.exitCode = 1;
    }
  }
}

/** A listing: IDs only (-q), one JSON object per line (--format json, as Docker), or an aligned table. */
function printList<R extends { ID: string }>(o: { quiet?: boolean; format: string }, rows: R[], headers: string[], cells: (r: R) => string[]): void {
  if (o.quiet) return out(rows.map((r) => r.ID + '\n').join(''));
  if (o.format === 'json') return out(jsonLines(rows));
  if (o.format !== 'table') throw new CliError(`unknown --format ${JSON.stringify(o.format)} (table or json)`, 2);
  out(table(headers, rows.map(cells)));
}

function warn(ws: string[]): void {
  for (const w of ws) process.stderr.write(`WARNING: ${w}\n`);
}

const program = new Command('nsnet')
  .description("Docker's container network model on plain Linux network namespaces")
  .option('--root <dir>', 'state directory (env NSNET_ROOT, default /var/lib/nsnet)')
  .option('--host-netns <path>', 'act on this network namespace as the host (env NSNET_HOST_NETNS)')
  .enablePositionalOptions()
  .showHelpAfterError(false)
  .configureOutput({
    outputError: (str, write) => write(`Error: ${str.replace(/^error: /, '').trim()}\n`),
  })
  .exitOverride();

// ---------------------------------------------------------------- network
const network = program.command('network').description('manage networks');

network.command('create')
  .description('create a bridge network')
  .option('-d, --driver <driver>', 'driver (bridge)', 'bridge')
  .option('--subnet <cidr>', 'subnet in CIDR form')
  .option('--gateway <ip>', 'gateway address (default: first address of the subnet)')
  .option('--ip-range <cidr>', 'allocate container addresses from this sub-range')
  .option('--internal', 'no traffic leaves or enters the subnet')
  .option('-o, --opt <key=value>', 'driver option: bridge.name=IFNAME, mtu=N, icc=false', collect, [])
  .option('--label <key=value>', 'label', collect, [])
  .argument('<name>')
  .action(async (name: string, o) => {
    const h = await openHost();
    const { createNetwork } = await import('../engine/networks.js');
    const n = createNetwork(h, {
      name, driver: o.driver, subnet: o.subnet, gateway: o.gateway, ipRange: o.ipRange, internal: !!o.internal,
      options: kv(o.opt, 'option'), labels: kv(o.label, 'label'),
    });
    out(n.id + '\n');
  });

network.command('ls').alias('list')
  .description('list networks')
  .option('--format <format>', 'table or json', 'table')
  .option('-q, --quiet', 'only IDs')
  .action(async (o) => {
    const h = await openHost();
    const { pseudoNetworkView } = await import('../engine/views.js');
    const rows = [
      ...h.store.networks().map((n) => ({ ID: n.id.slice(0, 12), Name: n.name, Driver: n.driver, Scope: 'local', Internal: n.internal, Subnet: n.subnet })),
      ...(['host', 'none'] as const).map((p) => ({ ID: (pseudoNetworkView(p).Id as string).slice(0, 12), Name: p, Driver: p === 'host' ? 'host' : 'null', Scope: 'local', Internal: false, Subnet: '' })),
    ].sort((a, b) => a.Name.localeCompare(b.Name));
    printList(o, rows, ['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE'], (r) => [r.ID, r.Name, r.Driver, r.Scope]);
  });

network.command('inspect')
  .description('show networks as JSON')
  .option('--format <format>', 'json', 'json')
  .argument('<network...>')
  .action(async (refs: string[]) => {
    const h = await openHost();
    const { networkView, pseudoNetworkView } = await import('../engine/views.js');
    const views: unknown[] = [];
    const missing: string[] = [];
    for (const r of refs) {
      if (r === 'host' || r === 'none') { views.push(pseudoNetworkView(r)); continue; }
      const n = h.store.findNetwork(r);
      if (!n) { missing.push(r); continue; }
      views.push(networkView(n, h.store.endpointsOn(n.id)));
    }
    out(json(views));
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
  .description('remove all networks without containers')
  .option('-f, --force', 'do not prompt (nsnet never prompts)')
  .action(async () => {
    const h = await openHost();
    const { pruneNetworks } = await import('../engine/networks.js');
    const removed = pruneNetworks(h);
    if (removed.length) out('Deleted Networks:\n' + removed.map((r) => r + '\n').join(''));
  });

network.command('connect')
  .description('connect a container to a network')
  .option('--ip <ip>', 'IPv4 address')
  .option('--alias <name>', 'network-scoped alias', collect, [])
  .argument('<network>')
  .argument('<container>')
  .action(async (net: string, ctr: string, o) => {
    const h = await openHost();
    const { connect } = await import('../engine/containers.js');
    connect(h, net, ctr, { ip: o.ip, aliases: o.alias });
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

// ---------------------------------------------------------------- containers
function addCreateOptions(c: Command): Command {
  return c
    .option('--name <name>', 'container name')
    .addOption(new Option('--network <network>', 'bridge | host | none | container:NAME | NETWORK').default('bridge'))
    .addOption(new Option('--net <network>').hideHelp())
    .option('--ip <ip>', 'IPv4 address (user-defined networks only)')
    .option('--alias <name>', 'network-scoped alias', collect, [])
    .addOption(new Option('--network-alias <name>').hideHelp().argParser(collect).default([]))
    .option('-p, --publish <spec>', 'publish [HOSTIP:][HOSTPORT[-END]:]CPORT[-END][/tcp|udp]', collect, [])
    .option('--dns <ip>', 'DNS server for this container', collect, [])
    .option('--rm', 'remove the container when it exits')
    .argument('[command...]', 'the command to run (after --)')
    .passThroughOptions();
}

type CreateOpts = { name?: string; network: string; net?: string; ip?: string; alias: string[]; networkAlias: string[]; publish: string[]; dns: string[]; rm?: boolean; detach?: boolean };

async function doCreate(command: string[], o: CreateOpts) {
  if (command[0] === '--') command = command.slice(1);
  const h = await openHost();
  const { createContainer } = await import('../engine/containers.js');
  const r = createContainer(h, {
    name: o.name, network: o.net ?? o.network, ip: o.ip, aliases: [...o.alias, ...o.networkAlias], publish: o.publish,
    dns: o.dns, command, autoRemove: !!o.rm,
  });
  warn(r.warnings);
  return { h, c: r.container };
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
      // As `docker run`: 125 when the container could not be created (the command never ran).
      throw new CliError((e as Error).message, 125);
    }
    const { h, c } = created;
    const E = await import('../engine/containers.js');
    if (o.detach) {
      E.startContainer(h, c.id);
      out(c.id + '\n');
      return;
    }
    const code = await E.runForeground(h, c);
    if (o.rm) await E.removeContainer(h, c.id, true);
    process.exitCode = code;
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
  .description('list containers')
  .option('-a, --all', 'show all containers (default shows running)')
  .option('-q, --quiet', 'only IDs')
  .option('--format <format>', 'table or json', 'table')
  .action(async (o) => {
    const h = await openHost();
    const { refreshState } = await import('../engine/containers.js');
    const nets = new Map(h.store.networks().map((n) => [n.id, n]));
    const { portsView } = await import('../engine/views.js');
    const rows = h.store.containers().map((c) => refreshState(h, c)).filter((c) => o.all || c.state === 'running').map((c) => {
      const eps = h.store.endpointsOf(c.id);
      const ports = Object.entries(portsView(c.ports)).flatMap(([k, bs]) => bs.map((b) => `${b.HostIp}:${b.HostPort}->${k}`)).join(', ');
      const status = c.state === 'running' ? `Up since ${c.started}` : c.state === 'exited' ? `Exited (${c.exitCode ?? 0}) ${ago(c.finished)}` : 'Created';
      return {
        ID: c.id.slice(0, 12), Command: JSON.stringify(c.command.join(' ')), CreatedAt: c.created, State: c.state, Status: status,
        Ports: ports, Names: c.name,
        Networks: c.mode === 'bridge' ? eps.map((e) => nets.get(e.networkId)?.name ?? '?').join(',') : c.mode === 'container' ? 'container' : c.mode,
      };
    });
    printList(o, rows, ['CONTAINER ID', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NETWORKS', 'NAMES'],
      (r) => [r.ID, r.Command.length > 30 ? r.Command.slice(0, 28) + '…"' : r.Command, ago(r.CreatedAt), r.Status.replace(/^Up since .*/, 'Up'), r.Ports, r.Networks, r.Names]);
  });

program.command('inspect')
  .description('show containers as JSON (Docker-shaped)')
  .option('--format <format>', 'json', 'json')
  .argument('<container...>')
  .action(async (refs: string[]) => {
    const h = await openHost();
    const { inspectContainer } = await import('../engine/containers.js');
    const views: unknown[] = [];
    const missing: string[] = [];
    for (const r of refs) {
      const c = h.store.findContainer(r);
      if (c) views.push(inspectContainer(h, c));
      else missing.push(r);
    }
    out(json(views));
    if (missing.length) throw new CliError(missing.map((m) => `No such container: ${m}`).join('\n'));
  });

program.command('port')
  .description("list a container's published ports")
  .argument('<container>')
  .action(async (ref: string) => {
    const h = await openHost();
    const { resolveContainer } = await import('../engine/containers.js');
    const { portsView } = await import('../engine/views.js');
    const c = resolveContainer(h, ref);
    for (const [k, bs] of Object.entries(portsView(c.ports))) for (const b of bs) out(`${k} -> ${b.HostIp}:${b.HostPort}\n`);
  });

program.command('exec')
  .description('run a command inside a container')
  .argument('<container>')
  .argument('<command...>')
  .passThroughOptions()
  .action(async (ref: string, command: string[]) => {
    if (command[0] === '--') command = command.slice(1);
    const h = await openHost();
    const { execIn } = await import('../engine/containers.js');
    process.exitCode = await execIn(h, ref, command);
  });

program.command('logs')
  .description("show a detached container's output")
  .argument('<container>')
  .action(async (ref: string) => {
    const h = await openHost();
    const { resolveContainer, logFile } = await import('../engine/containers.js');
    const c = resolveContainer(h, ref);
    try {
      out(fs.readFileSync(logFile(h, c), 'utf8'));
    } catch {
      /* never started detached: no output */
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
      const c = await E.stopContainer(h, r, t);
      if (c.autoRemove) await E.removeContainer(h, c.id, true).catch(() => undefined);
    });
  });

program.command('rm')
  .description('remove containers')
  .option('-f, --force', 'kill running containers first')
  .argument('<container...>')
  .action(async (refs: string[], o) => {
    const h = await openHost();
    const { removeContainer } = await import('../engine/containers.js');
    await eachRef(refs, (r) => removeContainer(h, r, !!o.force));
  });

program.command('reconcile')
  .description('finish interrupted operations, remove orphans, recreate what is missing')
  .action(async () => {
    const h = await openHost();
    const { reconcile } = await import('../engine/reconcile.js');
    for (const a of reconcile(h).actions) out(a + '\n');
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
    if (d.length) process.exitCode = 1;
  });

registerCni(program, openHost); // `nsnet cni`: the CNI plugin (bin/cni/nsnet, src/cli/cni.ts)

// ---------------------------------------------------------------- entry
/** Enters the host netns given by --host-netns / NSNET_HOST_NETNS. Must run before any helper thread exists
 *  (KERNEL-NOTES pitfall 1); then one async fs call makes the libuv threadpool be born in the host netns, never
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
  await fs.promises.stat('/');
}

function reportError(e: unknown): void {
  if (e instanceof CommanderError) {
    process.exitCode = e.exitCode === 0 ? 0 : 2;
    return;
  }
  // UserError (bad input: 2, refused/not found/conflict: 1) and CliError carry their exit status; anything
  // else is an unexpected failure: 1, one line (NSNET_DEBUG=1 shows the stack).
  const err = e as Error & { exitCode?: number };
  if (process.env.NSNET_DEBUG) process.stderr.write(String(err.stack) + '\n');
  process.stderr.write(`Error: ${err.message.split('\n').join('\nError: ')}\n`);
  process.exitCode = typeof err.exitCode === 'number' ? err.exitCode : 1;
}

/** Runs one command line. In the resident helper (`inHelper`) the process already is in the host netns (a helper
 *  serves one host netns) and keeps its hosts open between commands. */
async function runCli(argv: string[], inHelper = false): Promise<void> {
  try {
    if (!inHelper) await enterHost(argv);
    await program.parseAsync(argv);
  } catch (e) {
    reportError(e);
  } finally {
    if (!inHelper) {
      for (const h of hosts.values()) h.close();
      hosts.clear();
    }
  }
}

async function main(argv: string[]): Promise<void> {
  if (argv[2] !== '--nsnet-helper') return runCli(argv);
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
  await serveHelper(argv[3], (a) => runCli(a, true), path.join(path.dirname(argv[1]), 'nsnet.cjs'));
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
