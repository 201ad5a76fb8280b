// The "host" nsnet acts on: a state directory plus a host network namespace (the process's own by default).
// Everything kernel-side is reached through explicit namespace fds, so one process can drive several hosts.
import crypto from 'node:crypto';
import path from 'node:path';
import { FileLock } from '../kernel/flock.js';
import { Netlink } from '../kernel/netlink.js';
import { openPath } from '../kernel/libc.js';
import { inNetns, isCurrentNetns, selfNetnsFd } from '../kernel/netns.js';
import { Nft } from '../kernel/nft.js';
import { Store } from '../store/store.js';
import type { DriverPorts } from '../drivers/driver.js';
import { enableIPv6On, writeSysctl } from '../kernel/sysctl.js';
import { deviceMark, endpointMark, networkMark, ownedBy } from './marks.js';
import { readClusterConfig } from './clusterconf.js';
import { assertSafeName } from '../util/validate.js';
import { checkStateDir, ensureStateSubdir } from './statedir.js';
import { guardStore } from './storeguard.js';

export const DEFAULT_ROOT = '/var/lib/nsnet';

export interface HostOptions {
  /** State directory (default NSNET_ROOT or /var/lib/nsnet). */
  root?: string;
  /** Path of the host netns (default: the netns this process runs in). */
  hostNetns?: string;
  /** The environment the defaults (NSNET_ROOT, NSNET_HOST_NETNS, ...) are read from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Where the engine's warnings go (default: stderr, "WARNING: ..."). */
  warn?: (message: string) => void;
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
  readonly hostFd: number;
  private _nl: Netlink | null = null;
  private _nft: Nft | null = null;
  /** The environment of the command using this host (NSNET_RESOLV_CONF, NSNET_BIN, NSNET_MIN_FREE_KB, PATH for
   *  containers, ...): the process's own, or the client's, set per command by the resident helper's CLI
   *  (src/cli/io.ts). The engine reads it here, never from process.env. */
  env: NodeJS.ProcessEnv = process.env;
  /** Where warnings of the engine go (the CLI gives the command's stderr). */
  warn: (message: string) => void = (m) => { process.stderr.write(`WARNING: ${m}\n`); };

  private constructor(root: string, hostFd: number) {
    this.root = root;
    this.hostFd = hostFd;
    this.lock = new FileLock(path.join(root, 'lock'));
    this.hostId = crypto.createHash('sha256').update(root).digest('hex').slice(0, 6);
    this.netnsPrefix = root === DEFAULT_ROOT ? '' : `nsnet-${this.hostId}-`;
  }

  static open(opts: HostOptions = {}): Host {
    const env = opts.env ?? process.env;
    // Owner, modes, ancestors, pseudo filesystems, control characters: refused before anything is written there.
    const root = checkStateDir(opts.root ?? env.NSNET_ROOT ?? DEFAULT_ROOT);
    const nsPath = opts.hostNetns ?? env.NSNET_HOST_NETNS;
    // Already inside that netns (the CLI enters it at start-up): use our own fd, no switching needed.
    const same = nsPath ? isCurrentNetns(nsPath) : true;
    const hostFd = same ? selfNetnsFd() : openPath(nsPath!);
    const h = new Host(root, hostFd);
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
    if (!this._nl) this._nl = this.inHost(() => Netlink.open());
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
        sysctl: (key, value) => h.inHost(() => writeSysctl(key, value)),
        enableIPv6: (ifname) => h.inHost(() => enableIPv6On(ifname)),
      };
    }
    return this._ports;
  }

  /** libnftables context bound to the host netns. */
  get nft(): Nft {
    if (!this._nft) this._nft = Nft.open(this.hostFd);
    return this._nft;
  }

  inHost<T>(fn: () => T): T {
    return this.hostFd === selfNetnsFd() ? fn() : inNetns(this.hostFd, fn);
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
