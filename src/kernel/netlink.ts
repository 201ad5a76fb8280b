// A small, synchronous rtnetlink (NETLINK_ROUTE) client built directly on libc through koffi: the facade of
// src/kernel/netlink/, split by message family as vishvananda/netlink does:
//   netlink/wire.ts    protocol constants, the request encoder (NlWriter), argument checks, attribute parsing
//   netlink/text.ts    address, MAC and interface-name text <-> bytes
//   netlink/socket.ts  the transport (NetlinkSocket: open, exec, dump, errors)
//   netlink/link.ts    links (bridge, veth, vxlan, flags, master, MTU, alias, name, MAC; bridge ports)
//   netlink/vxlan.ts   the vxlan link kind's attributes (VNI, local address, UDP port, learning, proxy, underlay)
//   netlink/neigh.ts   neighbour entries (ARP/ND) and FDB entries (a vxlan device's remotes)
//   netlink/addr.ts    interface addresses
//   netlink/route.ts   routes
//   netlink/qdisc.ts   tc qdiscs (clsact)
//   netlink/filter.ts  tc filters (classic-BPF cls_bpf)
//   netlink/batch.ts   NetlinkBatch: mutations of every family queued for one send()
// Callers import from here only: the Netlink class (one socket) and the types and helpers re-exported below.
// A new family (or link kind, as vxlan.ts) is a file under netlink/ (see the header of
// netlink/wire.ts): its encoders write into an NlWriter, its requests go through the primitives every Netlink has
// (exec(w, isBatch, MODE_*, parser), dump(op, type, header, parser), request(): netlink/socket.ts), and its
// mutations join NetlinkBatch (netlink/batch.ts) so that they can share one send() with the others.
//
// A socket acts in the network namespace of the thread that CREATED it, for its whole life: to work in another
// netns, setns() there, Netlink.open(), setns() back, and keep using the object from anywhere (Netlink.openIn).
import { NetlinkBatch } from './netlink/batch.js';
import { addresses, type AddrInfo, type AddressOptions } from './netlink/addr.js';
import { deleteFilter, filters, type BpfFilterSpec, type TcFilterInfo, type TcTarget } from './netlink/filter.js';
import {
  bridgePorts, encBridge, encVeth, encVxlan, ifindex, linkByIndex, linkByName, links, type BridgeOptions, type BridgePortInfo,
  type BridgePortFlags, type LinkInfo, type VethOptions,
} from './netlink/link.js';
import { fdbEntries, neighbours, type FdbInfo, type NeighbourInfo } from './netlink/neigh.js';
import type { VxlanOptions } from './netlink/vxlan.js';
import { deleteClsact, qdiscs, type QdiscInfo } from './netlink/qdisc.js';
import { RT_TABLE_MAIN, routes, type RouteInfo, type RouteSpec } from './netlink/route.js';
import { MODE_ACK, NetlinkSocket, openRouteSocket, openRouteSocketIn } from './netlink/socket.js';
import { closeFd, openNetns } from './netns.js';
import { NetlinkError, checkAlias } from './netlink/wire.js';

export { NetlinkBatch } from './netlink/batch.js';
export type { AddrInfo, AddressOptions } from './netlink/addr.js';
export { encodeSockFilter, parseTcFilter, type BpfFilterSpec, type SockFilter, type TcFilterInfo, type TcTarget } from './netlink/filter.js';
export { parseBridgePort, parseLink, type BridgeOptions, type BridgePortFlags, type BridgePortInfo, type LinkInfo, type VethOptions } from './netlink/link.js';
export { FLOOD_MAC, parseFdb, parseNeighbour, type FdbInfo, type NeighbourInfo } from './netlink/neigh.js';
export { TC_INGRESS, parseQdisc, type QdiscInfo } from './netlink/qdisc.js';
export { RT_TABLE_MAIN, type RouteInfo, type RouteSpec } from './netlink/route.js';
export { MODE_ACK, MODE_DUMP, MODE_GET, NetlinkSocket, type Parser } from './netlink/socket.js';
export {
  formatIp, formatIpv4, formatIpv6, formatMac, parseIp, parseIpInto, parseIpv4Into, parseIpv6Into, parseMac, parseMacInto, validIfName,
} from './netlink/text.js';
export { VXLAN_PORT, parseVxlanData, type VxlanInfo, type VxlanOptions } from './netlink/vxlan.js';
export { NetlinkError, NlWriter } from './netlink/wire.js';

/**
 * One NETLINK_ROUTE socket, acting in the network namespace of the thread that opened it. All methods are
 * synchronous (one send() and, normally, one recv()); failures throw NetlinkError.
 */
export class Netlink extends NetlinkSocket {
  /** Encoder for single requests made through the methods of this class. */
  private readonly one = new NetlinkBatch(512);
  /** Encoder for batch(), reused; null while a batch is being built. */
  private many: NetlinkBatch | null = null;

  private constructor(fd: number) {
    super(fd);
  }

  /**
   * Opens a socket in the calling thread's current netns (setns() there first to act in another one; the socket
   * keeps acting there after switching back). Enables extended acks (kernel error text) and capped acks.
   */
  static open(): Netlink {
    return new Netlink(openRouteSocket());
  }

  /**
   * Opens a socket bound to the netns open as `nsFd`: switches the calling thread there, opens, and switches it
   * back to the netns it was in (synchronously, so nothing else runs while switched).
   */
  static openIn(nsFd: number): Netlink {
    return new Netlink(openRouteSocketIn(nsFd));
  }

  private single(): NetlinkBatch {
    this.one.w.reset();
    return this.one;
  }

  /**
   * Creates a bridge named `name` (optionally with MTU, MAC, alias, and up) and returns its ifindex.
   * EEXIST if an interface of that name exists.
   */
  createBridge(name: string, o: BridgeOptions = {}): number {
    if (o.alias !== undefined) checkAlias('createBridge', o.alias);
    const w = this.single().w;
    encBridge(w, name, o);
    this.exec(w, false, MODE_ACK, null);
    return this.created('createBridge', name, o.alias);
  }

  /**
   * Creates a veth pair: the host end `hostName` in this socket's netns (optionally enslaved to `o.master`, with
   * `o.alias`, `o.hostMac`, and up if `o.up`), the peer `peerName` created directly inside the netns open as
   * `peerNetnsFd` (with `o.peerMac`; `o.mtu` applies to both ends). The peer is NOT set up here (kernel 6.18
   * answers ENOTCONN: docs/kernel-notes.md §10): set it up through a socket in its netns. Returns the host ifindex.
   */
  createVeth(hostName: string, peerName: string, peerNetnsFd: number, o: VethOptions = {}): number {
    if (o.alias !== undefined) checkAlias('createVeth', o.alias);
    const w = this.single().w;
    encVeth(w, hostName, peerName, peerNetnsFd, o);
    this.exec(w, false, MODE_ACK, null);
    return this.created('createVeth', hostName, o.alias);
  }

  /**
   * Creates a vxlan device `name` (VNI, underlay local address, UDP port 4789 by default, learning off unless
   * `o.learning`, optional underlay `link`, TTL, ARP/ND `proxy`, MTU, MAC, master, alias, up) and returns its
   * ifindex. EEXIST if an interface of that name exists, or another vxlan device of this netns has the same VNI
   * and port. Remotes are FDB entries (addFdb, appendFdb); docs/kernel-notes.md §17.
   */
  createVxlan(name: string, o: VxlanOptions): number {
    if (o && o.alias !== undefined) checkAlias('createVxlan', o.alias);
    const w = this.single().w;
    encVxlan(w, name, o);
    this.exec(w, false, MODE_ACK, null);
    return this.created('createVxlan', name, o.alias);
  }

  /**
   * The ifindex of the interface named `name` in this socket's netns, or null if there is none. Cheaper than
   * linkByName() (one SIOCGIFINDEX ioctl on this socket, no netlink message): use it when only the index is needed.
   */
  ifindex(name: string): number | null {
    return ifindex(this, name);
  }

  /**
   * Index of a link this socket just created, by ioctl (a GETLINK reply for a veth would allocate a netns id for
   * the peer's netns: ~0.05 ms dearer), and its alias, set by index now that the create has succeeded.
   */
  private created(op: string, name: string, alias: string | undefined): number {
    const i = this.ifindex(name);
    if (i === null) throw new NetlinkError(`${op}(${name}): created, but gone at once`, 'ENODEV', 19, op);
    if (alias !== undefined) this.setAlias(i, alias);
    return i;
  }

  /** Sets the interface administratively up. */
  setUp(index: number): void {
    this.exec(this.single().setUp(index).w, false, MODE_ACK, null);
  }

  /** Sets the interface administratively down. */
  setDown(index: number): void {
    this.exec(this.single().setDown(index).w, false, MODE_ACK, null);
  }

  /** See NetlinkBatch.setBridgePort. */
  setBridgePort(index: number, o: BridgePortFlags): void {
    this.exec(this.single().setBridgePort(index, o).w, false, MODE_ACK, null);
  }

  /** Enslaves the interface to the bridge `master`, or releases it (null). */
  setMaster(index: number, master: number | null): void {
    this.exec(this.single().setMaster(index, master).w, false, MODE_ACK, null);
  }

  setMtu(index: number, mtu: number): void {
    this.exec(this.single().setMtu(index, mtu).w, false, MODE_ACK, null);
  }

  /** Sets the interface alias (IFLA_IFALIAS); '' removes it. */
  setAlias(index: number, alias: string): void {
    this.exec(this.single().setAlias(index, alias).w, false, MODE_ACK, null);
  }

  /** Sets the link-layer address ('aa:bb:cc:dd:ee:ff'). */
  setMac(index: number, mac: string): void {
    this.exec(this.single().setMac(index, mac).w, false, MODE_ACK, null);
  }

  /** Deletes the interface (ENODEV if there is none with that index). */
  deleteLink(index: number): void {
    this.exec(this.single().deleteLink(index).w, false, MODE_ACK, null);
  }

  /** The interface named `name`, or null if there is none (ENODEV). */
  linkByName(name: string): LinkInfo | null {
    return linkByName(this, name);
  }

  /** The interface with ifindex `index`, or null if there is none (ENODEV). */
  linkByIndex(index: number): LinkInfo | null {
    return linkByIndex(this, index);
  }

  /** See NetlinkBatch.addClsact. */
  addClsact(index: number, o: { ingressBlock?: number; egressBlock?: number } = {}): void {
    this.exec(this.single().addClsact(index, o).w, false, MODE_ACK, null);
  }

  /** See NetlinkBatch.addBpfFilter. */
  addBpfFilter(target: TcTarget, f: BpfFilterSpec): void {
    this.exec(this.single().addBpfFilter(target, f).w, false, MODE_ACK, null);
  }

  /** Deletes the interface's clsact qdisc (with its filters). */
  deleteClsact(index: number): void {
    deleteClsact(this, index);
  }

  /** Every qdisc of this netns (RTM_GETQDISC dump). */
  qdiscs(): QdiscInfo[] {
    return qdiscs(this);
  }

  /** Deletes the filter at `prio` (all handles of it). */
  deleteFilter(target: TcTarget, prio: number, protocolBe: number): void {
    deleteFilter(this, target, prio, protocolBe);
  }

  /** Filters of an interface's `parent`, or of a shared block (RTM_GETTFILTER dump); [] when there is no such
   *  qdisc or block. */
  filters(target: TcTarget): TcFilterInfo[] {
    return filters(this, target);
  }

  /** Flags of every bridge port of this netns (RTM_GETLINK dump of family AF_BRIDGE). */
  bridgePorts(): BridgePortInfo[] {
    return bridgePorts(this);
  }

  /** All interfaces of this netns (RTM_GETLINK dump, without statistics). */
  links(): LinkInfo[] {
    return links(this);
  }

  /** See NetlinkBatch.addFdb. */
  addFdb(index: number, mac: string, dst: string, o: { replace?: boolean } = {}): void {
    this.exec(this.single().addFdb(index, mac, dst, o).w, false, MODE_ACK, null);
  }

  /** See NetlinkBatch.appendFdb. */
  appendFdb(index: number, mac: string, dst: string): void {
    this.exec(this.single().appendFdb(index, mac, dst).w, false, MODE_ACK, null);
  }

  /** See NetlinkBatch.deleteFdb. */
  deleteFdb(index: number, mac: string, dst?: string): void {
    this.exec(this.single().deleteFdb(index, mac, dst).w, false, MODE_ACK, null);
  }

  /** FDB entries of one device (RTM_GETNEIGH dump, AF_BRIDGE): a vxlan device's own (self) entries, and the
   *  bridge's entries for it when it is a bridge port. */
  fdbEntries(index: number): FdbInfo[] {
    return fdbEntries(this, index);
  }

  /** See NetlinkBatch.addNeighbour. */
  addNeighbour(index: number, ip: string, mac: string, o: { replace?: boolean } = {}): void {
    this.exec(this.single().addNeighbour(index, ip, mac, o).w, false, MODE_ACK, null);
  }

  /** See NetlinkBatch.deleteNeighbour. */
  deleteNeighbour(index: number, ip: string): void {
    this.exec(this.single().deleteNeighbour(index, ip).w, false, MODE_ACK, null);
  }

  /** Neighbour (ARP/ND) entries of this netns, optionally of one device and/or family. */
  neighbours(index?: number, family?: 4 | 6): NeighbourInfo[] {
    return neighbours(this, index, family);
  }

  /** Adds an IPv4 or IPv6 address (EEXIST if present). `o.broadcast` ('+' = computed) and `o.nodad` optional. */
  addAddress(index: number, address: string, prefixLen: number, o: AddressOptions = {}): void {
    this.exec(this.single().addAddress(index, address, prefixLen, o).w, false, MODE_ACK, null);
  }

  /** Removes an address (EADDRNOTAVAIL if absent). */
  deleteAddress(index: number, address: string, prefixLen: number): void {
    this.exec(this.single().deleteAddress(index, address, prefixLen).w, false, MODE_ACK, null);
  }

  /** All addresses of this netns, optionally of one family (RTM_GETADDR dump). */
  addresses(family?: 4 | 6): AddrInfo[] {
    return addresses(this, family);
  }

  /** Adds a route (see RouteSpec; EEXIST if the same route exists). */
  addRoute(r: RouteSpec): void {
    this.exec(this.single().addRoute(r).w, false, MODE_ACK, null);
  }

  /** Deletes a route (ESRCH if none matches). */
  deleteRoute(r: RouteSpec): void {
    this.exec(this.single().deleteRoute(r).w, false, MODE_ACK, null);
  }

  /**
   * Routes of one table (main by default; 0 = all tables), of one family or both. Cloned/cached entries are
   * left out.
   */
  routes(family?: 4 | 6, table: number = RT_TABLE_MAIN): RouteInfo[] {
    return routes(this, family, table);
  }


  /**
   * Queues the requests made by `fn` on a NetlinkBatch and sends them in ONE send(), then reads the replies.
   * If any request fails, throws the NetlinkError of the first failure; `err.request` is its position (0-based)
   * and the message names it. The kernel does not stop at a failure: requests after the failing one are still
   * carried out. If `fn` throws, nothing is sent. Nothing is sent for an empty batch.
   */
  batch(fn: (b: NetlinkBatch) => void): void {
    let b = this.many;
    this.many = null; // a nested batch() gets a fresh encoder
    if (!b) b = new NetlinkBatch(1024);
    b.w.reset();
    try {
      fn(b);
      if (b.w.count > 0) this.exec(b.w, true, MODE_ACK, null);
    } finally {
      b.w.reset();
      this.many = b;
    }
  }
}

/** The part of {@link Netlink} network drivers (src/drivers/) and the engine's diff engine use on the host netns's
 *  handle: what a fake kernel (test/helpers/fake-kernel.ts) implements in memory for the unit tests. */
export type NetlinkPort = Pick<Netlink,
  | 'createBridge' | 'createVeth' | 'ifindex' | 'setUp' | 'setDown' | 'setBridgePort' | 'setMaster' | 'setAlias' | 'deleteLink'
  | 'linkByName' | 'links' | 'bridgePorts' | 'addAddress' | 'addresses' | 'routes' | 'addClsact' | 'deleteClsact' | 'qdiscs'
  | 'addBpfFilter' | 'filters' | 'batch' | 'createVxlan' | 'fdbEntries' | 'neighbours'>;

/** Runs `fn` with a netlink socket inside the named netns (/run/netns/NAME); the socket and the netns fd are closed
 *  afterwards. Errors (the netns gone, not a netns) are the caller's. */
export function withNetnsNetlink<T>(name: string, fn: (nl: Netlink) => T): T {
  const fd = openNetns(name);
  try {
    const nl = Netlink.openIn(fd);
    try {
      return fn(nl);
    } finally {
      nl.close();
    }
  } finally {
    closeFd(fd);
  }
}
