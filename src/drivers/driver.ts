// The network driver interface: where a kind of network plugs into nsnet.
//
// The engine (src/engine/) owns the store, IPAM, transactions, the firewall and DNS; a driver owns the kernel
// objects that make one kind of network exist in the host netns and connect an endpoint to it: for the `bridge`
// driver (src/drivers/bridge.ts) a Linux bridge with the gateway address and a veth per endpoint; for an overlay, a
// bridge plus a VXLAN device and its forwarding entries. The engine reaches a driver only through the registry
// (src/drivers/registry.ts), keyed by NetworkRecord.driver, and never names one.
//
// A new driver:
//   1. implements NetworkDriver (below) in src/drivers/<name>.ts, using only the DriverPorts it is given (the host
//      netns's netlink handle, the owner tag, host sysctls): it never imports the engine or opens the store;
//   2. registers itself in src/drivers/registry.ts;
//   3. gives `diff` every kernel object it makes, with a repair for each, so that `nsnet check` reports them and
//      `nsnet reconcile` restores them (the engine's diff engine, src/engine/reconcile.ts, runs it).
// The firewall treats `NetworkRecord.bridge` as the network's interface in the host netns for every driver: a
// driver whose endpoints do not meet on one L2 device there must say what the firewall should match instead
// (not needed yet: the overlay's VXLAN device is a port of its bridge).
import type { LinkInfo, NetlinkPort } from '../kernel/netlink.js';
import type { EndpointRecord, NetworkRecord, RemoteEndpoint } from '../types.js';

/** What a driver may use of the host: nothing else. */
export interface DriverPorts {
  /** rtnetlink socket of the host netns. */
  readonly nl: NetlinkPort;
  /** The marks of this nsnet host (src/engine/marks.ts): every link a driver makes carries one in its alias,
   *  and a driver deletes or adopts only links whose alias `owns` says are this host's. */
  readonly marks: {
    network(n: NetworkRecord): string;
    endpoint(ep: EndpointRecord): string;
    /** Another device a driver makes for a network (the overlay's VXLAN device: role 'vxlan'). */
    device(n: NetworkRecord, role: string): string;
    owns(alias: string | null | undefined): boolean;
  };
  /** Multi-host drivers: this host in its cluster (nsnet cluster join), or null when it is in none. */
  readonly cluster: {
    /** This host's underlay address (--advertise): the local end of tunnels. */
    advertise: string;
    /** The endpoints other hosts have on a network, as the store last mirrored them from the cluster. */
    remoteEndpoints(networkId: string): RemoteEndpoint[];
  } | null;
  /** Writes a net.* sysctl of the host netns (only if it differs). */
  sysctl(key: string, value: string): void;
  /** Turns IPv6 on for one interface of the host netns (accept_ra=0 first). */
  enableIPv6(ifname: string): void;
}

export interface AttachOptions {
  /** Container netns fd. */
  nsFd: number;
  /** Netlink socket bound to the container netns. */
  cnl: NetlinkPort;
  defaultRoute: boolean;
  /** The IPv6 default route via this network's IPv6 gateway (default: defaultRoute). */
  defaultRoute6?: boolean;
  /** Also bring the container's loopback (always ifindex 1 in a new netns) up in the same batch, with this mark
   *  (src/engine/marks.ts containerMark). */
  loMark?: string;
}

/** One difference between what the store says and what the kernel (or the store's own bookkeeping) holds. `check`
 *  lists it; `reconcile` runs its repair, which returns what it did (for the user: one line each). */
export interface Finding {
  kind: string;
  detail: string;
  /** Absent: nothing nsnet can do about it (the user is told by check; reconcile leaves it). */
  repair?: () => string[];
  /** Housekeeping, not a difference the user is told about by `check` (reconcile still does it). */
  hidden?: boolean;
}

/** What a driver's diff compares: the records of its networks and of their endpoints, and one listing of the host's
 *  links taken by the caller. */
export interface DriverView {
  networks: NetworkRecord[];
  endpoints: EndpointRecord[];
  /** Host ends of veths left to die with their netns (not a difference while the kernel removes them). */
  dying: Set<string>;
  links: LinkInfo[];
  /** Containers whose sandbox is gone: their endpoints' links are not looked for. */
  lostContainers: Set<string>;
}

export interface NetworkDriver {
  readonly name: string;
  /** 'local': a network of this host only (the store is the truth); 'cluster': one network across the hosts of a
   *  cluster, defined in the cluster store (its id, subnet and driver options come from there, its addresses are
   *  allocated there: src/engine/cluster.ts). Docker's network Scope ("local", "swarm"). */
  readonly scope: 'local' | 'cluster';
  /** Creates (or adopts, if it is already ours) the network's kernel objects in the host netns; idempotent. */
  setupNetwork(p: DriverPorts, n: NetworkRecord): void;
  /** Removes them; tolerates their being gone. */
  teardownNetwork(p: DriverPorts, n: NetworkRecord): void;
  /** Connects an endpoint: its interface `ep.ifname` inside the container netns, with its addresses and routes. */
  attach(p: DriverPorts, n: NetworkRecord, ep: EndpointRecord, o: AttachOptions): void;
  /** Disconnects an endpoint (its host-side objects; the container side goes with them). Tolerates them gone. */
  detach(p: DriverPorts, ep: EndpointRecord): void;
  /** Takes endpoints that are left to die with their netns out of service at once (no deletion). */
  quiesce(p: DriverPorts, eps: EndpointRecord[]): void;
  /** Host-netns link names the driver made for a network (orphan detection: an owned link nobody claims). */
  networkLinks(n: NetworkRecord): string[];
  /** Every difference of its kernel objects in the host netns, each with its repair. */
  diff(p: DriverPorts, v: DriverView): Finding[];
}

/** One repair shared by several findings (a network missing its bridge and both gateways is set up once). */
export function once(fn: () => string[]): () => string[] {
  let done = false;
  return () => {
    if (done) return [];
    done = true;
    return fn();
  };
}
