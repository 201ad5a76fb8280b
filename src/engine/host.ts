// The "host" nsnet acts on: a state directory plus a host network namespace (the process's own by default).
// Everything kernel-side is reached through explicit namespace fds, so one process can drive several hosts.
import crypto from 'node:crypto';
import path from 'node:path';
import { FileLock } from '../kernel/flock.js';
import { Netlink, withNetnsNetlink } from '../kernel/netlink.js';
import { openPath } from '../kernel/libc.js';
import { deleteNetns, inNetns, isCurrentNetns, listNetns, netnsExists, netnsInode, selfNetnsFd } from '../kernel/netns.js';
import { Nft, type NftPort } from '../kernel/nft.js';
import { killNetnsProcesses, pidsInNetns } from '../kernel/proc.js';
import { Store } from '../store/store.js';
import type { DriverPorts } from '../drivers/driver.js';
import { enableIPv6On, ipv6Available, writeSysctl } from '../kernel/sysctl.js';
import { processResolver, type ResolverPort } from './dnsctl.js';
import { deviceMark, endpointMark, networkMark, ownedBy } from './marks.js';
import { readClusterConfig } from './clusterconf.js';
import { assertSafeName } from '../util/validate.js';
import { checkStateDir, ensureStateSubdir } from './statedir.js';
import { guardStore } from './storeguard.js';

export const DEFAULT_ROOT = '/var/lib/nsnet';

/**
 * The kernel as the engine's network use cases (create, rm), the diff engine (check, reconcile) and the lost-store
 * guard reach it: everything they do to the host netns, to the named container namespaces and to the resolver's
 * processes goes through these ports. {@link hostKernel} (the default) is the real one, built on src/kernel/; the
 * unit tests give Host.open a fake (test/helpers/fake-kernel.ts) that holds links, addresses, tc objects, nftables
 * tables and namespaces in memory, so that the transaction logic (pending rows, garbage, rollback) runs without
 * root and without CAP_NET_ADMIN. Use cases not listed above (containers, CNI, netem, explain) still reach parts
 * of src/kernel/ directly.
 */
export interface KernelPorts {
  /** Runs `fn` with the calling thread in the host netns (sysctls read or written, sockets opened, processes spawned). */
  inHost<T>(fn: () => T): T;
  /** A new rtnetlink socket of the host netns. Typed as Netlink for the engine's other users of Host.nl (netem,
   *  explain); a fake implements NetlinkPort, what drivers and the diff engine use. */
  openNetlink(): Netlink;
  /** A new libnftables context in the host netns. */
  openNft(): NftPort;
  /** Writes a net.* sysctl of the host netns (only if it differs). */
  writeSysctl(key: string, value: string): void;
  /** Turns IPv6 on for one interface of the host netns (accept_ra=0 first). */
  enableIPv6(ifname: string): void;
  /** Whether the kernel has IPv6 at all (not booted with ipv6.disable=1). */
  ipv6Available(): boolean;
  /** Named network namespaces (/run/netns/NAME): the containers' sandboxes. */
  netns: {
    exists(name: string): boolean;
    list(): string[];
    /** Unmounts and removes /run/netns/NAME (the namespace dies with its last user). */
    remove(name: string): void;
    /** Its nsfs inode (what /proc/PID/ns/net of its processes shows). */
    inode(name: string): number;
    /** Runs `fn` with a netlink socket inside it (closed afterwards); throws when it is gone or not a netns. Typed
     *  as Netlink for netem's tc requests; the diff engine uses NetlinkPort's part, what a fake implements. */
    withNetlink<T>(name: string, fn: (nl: Netlink) => T): T;
    /** Ends every process inside it; returns how many there were. */
    killProcesses(name: string): number;
    /** The processes whose netns has this inode. */
    pids(inode: number): number[];
  };
  /** The resolver's supervisor process (src/engine/dnsctl.ts). */
  resolver: ResolverPort;
}

/** The real kernel, reached from the host netns open as `hostFd`. */
export function hostKernel(hostFd: number): KernelPorts {
  const inHost = <T>(fn: () => T): T => (hostFd === selfNetnsFd() ? fn() : inNetns(hostFd, fn));
  return {
    inHost,
    openNetlink: () => inHost(() => Netlink.open()),
    openNft: () => Nft.open(hostFd),
    writeSysctl: (key, value) => inHost(() => writeSysctl(key, value)),
    enableIPv6: (ifname) => inHost(() => enableIPv6On(ifname)),
    ipv6Available: () => inHost(ipv6Available),
    netns: {
      exists: netnsExists,
      list: listNetns,
      remove: deleteNetns,
      inode: netnsInode,
      withNetlink: withNetnsNetlink,
      killProcesses: killNetnsProcesses,
      pids: pidsInNetns,
    },
    resolver: processResolver,
  };
}

export interface HostOptions {
  /** State directory (default NSNET_ROOT or /var/lib/nsnet). */
  root?: string;
  /** Path of the host netns (default: the netns this process runs in). */
  hostNetns?: string;
  /** The environment the defaults (NSNET_ROOT, NSNET_HOST_NETNS, ...) are read from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Where the engine's warnings go (default: stderr, "WARNING: ..."). */
  warn?: (message: string) => void;
  /** The kernel ports (default: the real kernel, {@link hostKernel}, in the host netns). A test's fake kernel
   *  replaces it; hostNetns is not opened then (Host.hostFd is -1). */
  kernel?: KernelPorts;
}

export class Host {
  readonly root: string;
  private _store: Store | null = null;
  /** The store (SQLite), open while a command runs. */
  get store(): Store {
    if (!this._store) throw new Error('nsnet: the store is not open');
    return this._store;
  }
  readonly lock: FileLock;
  /** Short stable id of this host (hash of the state directory): marks every kernel object nsnet makes. */
  readonly hostId: string;
  /** Prefix of container netns names under /run/netns: '' for the default root, so `ip netns exec NAME` works;
   *  `nsnet-<hostId>-` otherwise, so several nsnet hosts on one machine never collide. */
  readonly netnsPrefix: string;
  /** The host netns, open (-1 with a fake kernel). */
  readonly hostFd: number;
  /** Everything kernel-side the network use cases and the diff engine do (see KernelPorts). */
  readonly kernel: KernelPorts;
  private _nl: Netlink | null = null;
  private _nft: NftPort | null = null;
  /** The environment of the command using this host (NSNET_RESOLV_CONF, NSNET_BIN, NSNET_MIN_FREE_KB, PATH for
   *  containers, ...): the process's own, or the client's, set per command by the resident helper's CLI
   *  (src/cli/io.ts). The engine reads it here, never from process.env. */
  env: NodeJS.ProcessEnv = process.env;
  /** Where warnings of the engine go (the CLI gives the command's stderr). */
  warn: (message: string) => void = (m) => { process.stderr.write(`WARNING: ${m}\n`); };

  private constructor(root: string, hostFd: number, kernel: KernelPorts) {
    this.root = root;
    this.hostFd = hostFd;
    this.kernel = kernel;
    this.lock = new FileLock(path.join(root, 'lock'));
    this.hostId = crypto.createHash('sha256').update(root).digest('hex').slice(0, 6);
    this.netnsPrefix = root === DEFAULT_ROOT ? '' : `nsnet-${this.hostId}-`;
  }

  static open(opts: HostOptions = {}): Host {
    const env = opts.env ?? process.env;
    // Owner, modes, ancestors, pseudo filesystems, control characters: refused before anything is written there.
    const root = checkStateDir(opts.root ?? env.NSNET_ROOT ?? DEFAULT_ROOT);
    let hostFd = -1;
    if (!opts.kernel) {
      const nsPath = opts.hostNetns ?? env.NSNET_HOST_NETNS;
      // Already inside that netns (the CLI enters it at start-up): use our own fd, no switching needed.
      const same = nsPath ? isCurrentNetns(nsPath) : true;
      hostFd = same ? selfNetnsFd() : openPath(nsPath!);
    }
    const h = new Host(root, hostFd, opts.kernel ?? hostKernel(hostFd));
    h.env = env;
    if (opts.warn) h.warn = opts.warn;
    try {
      h.attachStore();
    } catch (e) {
      h.close();
      throw e;
    }
    return h;
  }

  /** Marker written as the alias of every link nsnet creates on this host. */
  get owner(): string {
    return `nsnet/${this.hostId}`;
  }

  /** rtnetlink socket bound to the host netns. */
  get nl(): Netlink {
    if (!this._nl) this._nl = this.kernel.openNetlink();
    return this._nl;
  }

  private _ports: DriverPorts | null = null;
  /** What network drivers get of this host (src/drivers/driver.ts): the netlink handle, its marks, host sysctls. */
  get ports(): DriverPorts {
    if (!this._ports) {
      const h = this;
      const owner = this.owner;
      this._ports = {
        get nl() { return h.nl; },
        marks: { network: (n) => networkMark(owner, n), endpoint: (ep) => endpointMark(owner, ep), device: (n, role) => deviceMark(owner, n, role), owns: (a) => ownedBy(a, owner) },
        // Read per use (a join or leave of another command changes it; the file is small).
        get cluster() {
          const c = readClusterConfig(h.root);
          return c ? { advertise: c.advertise, remoteEndpoints: (id: string) => h.store.remoteEndpoints(id) } : null;
        },
        sysctl: (key, value) => h.kernel.writeSysctl(key, value),
        enableIPv6: (ifname) => h.kernel.enableIPv6(ifname),
      };
    }
    return this._ports;
  }

  /** libnftables context bound to the host netns. */
  get nft(): NftPort {
    if (!this._nft) this._nft = this.kernel.openNft();
    return this._nft;
  }

  inHost<T>(fn: () => T): T {
    return this.kernel.inHost(fn);
  }

  /** A container's directory. The id comes from the store: it must be one file name (a damaged row must not
   *  make `rm` delete another directory). */
  containerDir(id: string): string {
    assertSafeName('container id', id);
    return path.join(this.root, 'containers', id);
  }

  /** Opens the store as every command does: the containers/ directory, the store itself, and the lost-store guard
   *  (its warning, on stderr). */
  private attachStore(): void {
    ensureStateSubdir(this.root, 'containers');
    this._store = new Store(path.join(this.root, 'nsnet.db'));
    const lost = guardStore(this);
    if (lost) this.warn(lost);
  }

  /** Closes the store, keeping the kernel handles (the resident helper, between two commands: a store kept open
   *  would not see it replaced, truncated or removed, and closing a stale one would write into its successor). */
  detachStore(): void {
    this._store?.close();
    this._store = null;
  }

  /** The resident helper's next command on a kept Host: the state directory checked and the store opened again,
   *  exactly as Host.open does for a new process; only the netns fd, netlink socket and nftables context are kept. */
  refresh(): void {
    if (this._store) return;
    checkStateDir(this.root);
    this.attachStore();
  }

  close(): void {
    this._nl?.close();
    this._nl = null;
    this._nft?.close();
    this._nft = null;
    this.detachStore();
    this.lock.close();
  }
}
