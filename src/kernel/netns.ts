// Named network namespaces, in-process (what `ip netns add/del/exec` do, without spawning `ip`).
// A named netns is a bind mount of an nsfs inode on /run/netns/NAME; /run/netns is made a shared mount
// (as iproute2 does) so that unmounting a netns there also unmounts the copies inside the mount namespaces of
// containers' processes; otherwise a deleted netns would stay pinned by those copies and leak its veths.
import fs from 'node:fs';
import {
  CLONE_NEWNET, MNT_DETACH, MS_BIND, MS_REC, MS_SHARED, SysError, close, mount, openPath, setns, umount2, unshare,
} from './libc.js';
import { assertSafeName } from '../util/validate.js';

export const NETNS_DIR = '/run/netns';

let selfFd = -1;
/** fd of the netns this thread was in when nsnet started (or was pointed at with enterHostNetns). */
export function selfNetnsFd(): number {
  if (selfFd < 0) selfFd = openPath('/proc/thread-self/ns/net');
  return selfFd;
}

/** Moves the whole process (its main thread, before any helper thread exists) into the host netns at `path`.
 *  Used by `--host-netns` / NSNET_HOST_NETNS; afterwards "the host" is that namespace. */
export function enterHostNetns(path: string): void {
  const fd = openPath(path);
  try {
    setns(fd, CLONE_NEWNET);
  } finally {
    close(fd);
  }
  if (selfFd >= 0) close(selfFd);
  selfFd = -1;
  selfNetnsFd();
}

/** Runs `fn` synchronously with the main thread inside the netns `fd`, then switches back. Only synchronous
 *  work belongs here: anything deferred (promises, timers, async I/O) would run in the host netns. */
export function inNetns<T>(fd: number, fn: () => T): T {
  setns(fd, CLONE_NEWNET);
  try {
    const r = fn();
    if (r && typeof (r as { then?: unknown }).then === 'function') {
      throw new Error('inNetns: callback must be synchronous');
    }
    return r;
  } finally {
    setns(selfNetnsFd(), CLONE_NEWNET);
  }
}

let dirReady = false;
function ensureNetnsDir(): void {
  if (dirReady) return;
  fs.mkdirSync(NETNS_DIR, { recursive: true, mode: 0o755 });
  try {
    mount('none', NETNS_DIR, null, MS_SHARED | MS_REC);
  } catch (e) {
    if (!(e instanceof SysError) || e.code !== 'EINVAL') throw e;
    // Not a mount point yet: bind it onto itself first, then make it shared (iproute2 does the same).
    mount(NETNS_DIR, NETNS_DIR, 'none', MS_BIND | MS_REC);
    mount('none', NETNS_DIR, null, MS_SHARED | MS_REC);
  }
  dirReady = true;
}

/** /run/netns/NAME. Names come from the store: one that is not a single file name (`../../x`) is refused here,
 *  where every create, open, kill and delete of a named netns passes. */
export function netnsPath(name: string): string {
  assertSafeName('network namespace name', name);
  return `${NETNS_DIR}/${name}`;
}

export function netnsExists(name: string): boolean {
  return fs.existsSync(netnsPath(name));
}

/**
 * Creates /run/netns/NAME holding a new network namespace and returns an open fd to it. `inside`, if given, runs
 * synchronously while the main thread is in the new namespace (e.g. to open a netlink socket bound to it).
 * Fails with EEXIST if the name is taken.
 */
export function createNetns(name: string, inside?: () => void): number {
  ensureNetnsDir();
  const path = netnsPath(name);
  const fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o444);
  fs.closeSync(fd);
  let nsFd = -1;
  try {
    unshare(CLONE_NEWNET);
    try {
      mount('/proc/thread-self/ns/net', path, 'none', MS_BIND);
      nsFd = openPath('/proc/thread-self/ns/net');
      inside?.();
    } finally {
      setns(selfNetnsFd(), CLONE_NEWNET);
    }
    return nsFd;
  } catch (e) {
    if (nsFd >= 0) close(nsFd);
    try { umount2(path, MNT_DETACH); } catch { /* not mounted */ }
    try { fs.unlinkSync(path); } catch { /* gone */ }
    throw e;
  }
}

/** True if the netns file at `path` (a /run/netns bind mount, /proc/PID/ns/net) is the calling thread's own
 *  network namespace (same nsfs inode). */
export function isCurrentNetns(path: string): boolean {
  return fs.statSync(path).ino === fs.statSync('/proc/thread-self/ns/net').ino;
}

/** The nsfs inode of the named netns /run/netns/NAME (what /proc/PID/ns/net of its processes shows). */
export function netnsInode(name: string): number {
  return fs.statSync(netnsPath(name)).ino;
}

export function openNetns(name: string): number {
  return openPath(netnsPath(name));
}

/** Unmounts and removes /run/netns/NAME. The namespace itself dies when nothing else holds it. */
export function deleteNetns(name: string): void {
  const path = netnsPath(name);
  try {
    umount2(path, MNT_DETACH);
  } catch (e) {
    if (!(e instanceof SysError) || (e.code !== 'EINVAL' && e.code !== 'ENOENT')) throw e;
  }
  try {
    fs.unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

export function listNetns(): string[] {
  try {
    return fs.readdirSync(NETNS_DIR);
  } catch {
    return [];
  }
}

export { close as closeFd };
