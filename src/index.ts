// nsnet's typed library API: the same use cases the CLI runs, in-process.
//
//   import { Nsnet } from 'nsnet';
//   const ns = Nsnet.open({ root: '/var/lib/nsnet' });
//   ns.createNetwork({ name: 'oa-net' });
//   const { container } = ns.create({ name: 'redis-sys', network: 'oa-net', command: ['redis-server'] });
//   ns.start('redis-sys');
//   ...
//   await ns.remove('redis-sys', true);
//   ns.close();
import * as C from './engine/containers.js';
import { Host, type HostOptions } from './engine/host.js';
import * as N from './engine/networks.js';
import * as R from './engine/reconcile.js';
import * as A from './engine/attach.js';
import { rebuildAndReconcile, rebuildLines } from './engine/rebuild.js';
import { UserError } from './util/errors.js';
import { networkView } from './engine/views.js';
import { findNetworkView, listContainers, listNetworks, type NetworkSummary } from './engine/catalog.js';
import type { ContainerRecord, EndpointRecord, NetworkRecord } from './types.js';

export type { ContainerRecord, EndpointRecord, NetworkRecord, PortMapping, NetworkMode, FirewallState } from './types.js';
export type { HostOptions } from './engine/host.js';
export type { CreateOptions, ConnectOptions } from './engine/containers.js';
export type { NetworkCreateOptions } from './engine/networks.js';
export type { NetworkSummary } from './engine/catalog.js';
export type { AttachResult } from './engine/attach.js';

/** A network namespace nsnet did not make, attached to a network (Nsnet.attach). */
export interface AttachOptions {
  /** Path of the netns: /run/netns/NAME, /proc/PID/ns/net, or any bind mount of one. */
  netns: string;
  /** The caller's id for what lives in that netns; (owner, ifname) is the attachment's key. */
  owner: string;
  /** Interface name inside the netns (default eth0). */
  ifname?: string;
  /** Network name or id. */
  network: string;
  aliases?: string[];
  ip?: string;
  mac?: string;
  /** Published ports, `-p` syntax. */
  ports?: string[];
}
export { UserError } from './util/errors.js';

export class Nsnet {
  private constructor(readonly host: Host) {}

  static open(opts: HostOptions = {}): Nsnet {
    return new Nsnet(Host.open(opts));
  }

  createNetwork(o: N.NetworkCreateOptions): NetworkRecord {
    return N.createNetwork(this.host, o);
  }
  removeNetwork(ref: string): NetworkRecord {
    return N.removeNetwork(this.host, ref);
  }
  pruneNetworks(): string[] {
    return N.pruneNetworks(this.host);
  }
  /** The records of the bridge networks made so far (the default one once it was first used). */
  networks(): NetworkRecord[] {
    return this.host.store.networks();
  }
  /** Every network a user can name, as `nsnet network ls` lists them: the default bridge (also before its first
   *  use), user-defined networks, and the pseudo networks host and none. */
  networkList(): NetworkSummary[] {
    return listNetworks(this.host);
  }
  /** As `nsnet network inspect`: host and none too; the default bridge is made on first use. */
  inspectNetwork(ref: string): Record<string, unknown> {
    const v = findNetworkView(this.host, ref);
    if (v) return v;
    const n = N.resolveNetwork(this.host, ref);
    return networkView(n, this.host.store.endpointsOn(n.id));
  }

  create(o: C.CreateOptions): C.Created {
    return C.createContainer(this.host, o);
  }
  start(ref: string): ContainerRecord {
    return C.startContainer(this.host, ref);
  }
  run(o: C.CreateOptions): ContainerRecord {
    const { container } = this.create(o);
    return this.start(container.id);
  }
  stop(ref: string, timeoutSec = 10): Promise<ContainerRecord> {
    return C.stopContainer(this.host, ref, timeoutSec);
  }
  remove(ref: string, force = false): Promise<ContainerRecord> {
    return C.removeContainer(this.host, ref, force);
  }
  exec(ref: string, command: string[]): { status: number; stdout: string; stderr: string } {
    return C.execCaptured(this.host, ref, command);
  }
  connect(network: string, container: string, o: C.ConnectOptions = {}): EndpointRecord {
    return C.connect(this.host, network, container, o);
  }
  disconnect(network: string, container: string, force = false): void {
    C.disconnect(this.host, network, container, force);
  }
  /** Attaches a network namespace nsnet did not make (a runtime's, a sandbox's) to a network: an interface in it with
   *  an address, the default route if it has none, its DNS names, published ports; covered by check and reconcile,
   *  and removed by detach (the netns itself stays the caller's). What CNI ADD does. */
  attach(o: AttachOptions): A.AttachResult {
    const network = N.resolveNetwork(this.host, o.network);
    return A.attachNetns(this.host, { netns: o.netns, owner: o.owner, ifname: o.ifname ?? 'eth0', network, aliases: o.aliases, ip: o.ip, mac: o.mac, ports: o.ports });
  }
  /** Detaches (owner, ifname) from the network; false when there was no such attachment. What CNI DEL does. */
  detach(o: { owner: string; ifname?: string; network: string }): boolean {
    return A.detachNetns(this.host, o.owner, o.ifname ?? 'eth0', N.resolveNetwork(this.host, o.network));
  }

  /** Containers newest first (as `nsnet ps -a`), states refreshed. */
  containers(): ContainerRecord[] {
    return listContainers(this.host, true).map((x) => x.c);
  }
  inspect(ref: string): Record<string, unknown> {
    return C.inspectContainer(this.host, C.resolveContainer(this.host, ref));
  }

  /** As `nsnet reconcile`: `force` also removes what a lost store does not know; `rebuild` first rebuilds a lost
   *  store from the kernel (its report's lines come first in `actions`). */
  reconcile(o: { force?: boolean; rebuild?: boolean } = {}): { actions: string[] } {
    if (o.rebuild && o.force) throw new UserError('rebuild and force exclude each other', 'invalid');
    if (o.rebuild) {
      const r = rebuildAndReconcile(this.host);
      return { actions: [...rebuildLines(r.report), ...r.actions] };
    }
    return R.reconcile(this.host, { force: !!o.force });
  }
  check(): R.Difference[] {
    return R.check(this.host);
  }
  /** Resolves once the kernel has removed the interfaces of removed containers (`remove` leaves them to the
   *  kernel, which takes a fraction of a second); anything left after `timeoutMs` is deleted explicitly (their
   *  number is returned: 0 unless something kept a removed container's netns alive). */
  settle(timeoutMs?: number): Promise<number> {
    return R.settle(this.host, timeoutMs);
  }

  close(): void {
    this.host.close();
  }
}
