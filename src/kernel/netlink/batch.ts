// NetlinkBatch: mutating requests of every family queued for one send() (Netlink.batch()), and the encoder of
// Netlink's single requests. Each method is one encoder of a family file; a new family's mutation is one method
// here (and, for single use, one in ../netlink.ts).
import { encAddAddress, encDeleteAddress, type AddressOptions } from './addr.js';
import { encAddBpfFilter, type BpfFilterSpec, type TcTarget } from './filter.js';
import {
  encBridge, encDeleteLink, encSetAlias, encSetBridgePort, encSetDown, encSetMac, encSetMaster, encSetMtu, encSetName, encSetUp,
  encVeth, encVxlan, noAliasInBatch, type BridgeOptions, type BridgePortFlags, type VethOptions,
} from './link.js';
import { encAddFdb, encAddNeighbour, encAppendFdb, encDeleteFdb, encDeleteNeighbour } from './neigh.js';
import type { VxlanOptions } from './vxlan.js';
import { encAddClsact } from './qdisc.js';
import { encAddRoute, encDeleteRoute, type RouteSpec } from './route.js';
import { NlWriter } from './wire.js';

/**
 * Mutating requests queued for one send(). Obtained from Netlink.batch(); each method validates its arguments
 * at once (throwing NetlinkError 'EINVAL'), encodes one request, and returns the batch for chaining.
 */
export class NetlinkBatch {
  /** @internal Encoded requests. */
  readonly w: NlWriter;

  /** @internal */
  constructor(size = 1024) {
    this.w = new NlWriter(size);
  }

  /** Number of queued requests. */
  get size(): number {
    return this.w.count;
  }

  /**
   * Creates a bridge (see Netlink.createBridge). `alias` is refused here: the kernel ignores it on creation, and
   * setting it by name in the same send() would label a pre-existing interface if the create failed with EEXIST.
   */
  createBridge(name: string, o: Omit<BridgeOptions, 'alias'> = {}): this {
    noAliasInBatch('createBridge', o);
    encBridge(this.w, name, o);
    return this;
  }

  /** Creates a veth pair with the peer directly in another netns (see Netlink.createVeth; no `alias` here). */
  createVeth(hostName: string, peerName: string, peerNetnsFd: number, o: Omit<VethOptions, 'alias'> = {}): this {
    noAliasInBatch('createVeth', o);
    encVeth(this.w, hostName, peerName, peerNetnsFd, o);
    return this;
  }

  /** Creates a vxlan device (see Netlink.createVxlan; no `alias` here). */
  createVxlan(name: string, o: Omit<VxlanOptions, 'alias'>): this {
    noAliasInBatch('createVxlan', o);
    encVxlan(this.w, name, o);
    return this;
  }

  /** Sets the interface administratively up. */
  setUp(index: number): this {
    encSetUp(this.w, index);
    return this;
  }

  /** Sets the interface administratively down. */
  setDown(index: number): this {
    encSetDown(this.w, index);
    return this;
  }

  /** Enslaves the interface to `master` (a bridge's ifindex), or releases it with null. */
  setMaster(index: number, master: number | null): this {
    encSetMaster(this.w, index, master);
    return this;
  }

  setMtu(index: number, mtu: number): this {
    encSetMtu(this.w, index, mtu);
    return this;
  }

  /** Adds a clsact qdisc to the interface (the hook point for ingress/egress filters), optionally bound to shared
   *  filter blocks (its ingress and/or egress filters are then those of the block); EEXIST if it has one. */
  addClsact(index: number, o: { ingressBlock?: number; egressBlock?: number } = {}): this {
    encAddClsact(this.w, index, o);
    return this;
  }

  /**
   * Adds (or, with `replace`, replaces) a classic-BPF cls_bpf filter in direct-action mode: the program's return
   * value is the verdict (0 TC_ACT_OK, 2 TC_ACT_SHOT, -1 TC_ACT_UNSPEC = go on with the next filter).
   */
  addBpfFilter(target: TcTarget, f: BpfFilterSpec): this {
    encAddBpfFilter(this.w, target, f);
    return this;
  }

  /** Bridge-port flags of an enslaved interface (RTM_SETLINK, family AF_BRIDGE, IFLA_PROTINFO):
   *  `hairpin` lets frames go back out of the port they came in (a container reaching its own published port
   *  while br_netfilter is on), `isolated` forbids traffic between isolated ports of the bridge. */
  setBridgePort(index: number, o: BridgePortFlags): this {
    encSetBridgePort(this.w, index, o);
    return this;
  }

  /** Sets IFLA_IFALIAS; '' removes the alias. */
  setAlias(index: number, alias: string): this {
    encSetAlias(this.w, index, alias);
    return this;
  }

  /** Renames the interface (the kernel refuses it while the interface is up: EBUSY). */
  setName(index: number, name: string): this {
    encSetName(this.w, index, name);
    return this;
  }

  setMac(index: number, mac: string): this {
    encSetMac(this.w, index, mac);
    return this;
  }

  /** Deletes the interface (for a veth, both ends). */
  deleteLink(index: number): this {
    encDeleteLink(this.w, index);
    return this;
  }

  /** Adds an IPv4 or IPv6 address to the interface. */
  addAddress(index: number, address: string, prefixLen: number, o: AddressOptions = {}): this {
    encAddAddress(this.w, index, address, prefixLen, o);
    return this;
  }

  /** Removes an address from the interface. */
  deleteAddress(index: number, address: string, prefixLen: number): this {
    encDeleteAddress(this.w, index, address, prefixLen);
    return this;
  }

  /** Adds a route (NLM_F_EXCL: EEXIST if an identical one exists). */
  addRoute(r: RouteSpec): this {
    encAddRoute(this.w, r);
    return this;
  }

  /** Deletes a route matching dst/prefixLen (and gateway/oif/table/metric when given). */
  deleteRoute(r: RouteSpec): this {
    encDeleteRoute(this.w, r);
    return this;
  }

  /** Unicast FDB entry `mac` -> remote `dst` on a vxlan device (NTF_SELF, permanent): EEXIST if `mac` has one,
   *  unless `o.replace` (created or moved: idempotent). The all-zeros/multicast MACs: appendFdb. */
  addFdb(index: number, mac: string, dst: string, o: { replace?: boolean } = {}): this {
    encAddFdb(this.w, index, mac, dst, o);
    return this;
  }

  /** Adds the remote `dst` to the flood list (the all-zeros MAC, FLOOD_MAC) or to a multicast MAC's list
   *  (NLM_F_APPEND; a remote already there is not added twice, no error). */
  appendFdb(index: number, mac: string, dst: string): this {
    encAppendFdb(this.w, index, mac, dst);
    return this;
  }

  /** Deletes one remote (`dst`) of an FDB entry, or the whole entry (ENOENT if `mac` has none). */
  deleteFdb(index: number, mac: string, dst?: string): this {
    encDeleteFdb(this.w, index, mac, dst);
    return this;
  }

  /** Permanent ARP (IPv4) / ND (IPv6) entry `ip` -> `mac` on the device: EEXIST if `ip` has one there, unless
   *  `o.replace` (created or overwritten: idempotent). */
  addNeighbour(index: number, ip: string, mac: string, o: { replace?: boolean } = {}): this {
    encAddNeighbour(this.w, index, ip, mac, o);
    return this;
  }

  /** Deletes the neighbour entry of `ip` on the device (ENOENT if none). */
  deleteNeighbour(index: number, ip: string): this {
    encDeleteNeighbour(this.w, index, ip);
    return this;
  }
}
