// An exclusive advisory lock on a file (flock(2)), held by the open file description: released when the fd is
// closed or the process dies, so a crashed nsnet never leaves a stale lock behind.
import fs from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
let _flock: ((fd: number, op: number) => number) | null = null;
function flockFn() {
  if (!_flock) {
    const koffi = require('koffi') as typeof import('koffi');
    _flock = koffi.load('libc.so.6').func('int flock(int fd, int op)') as (fd: number, op: number) => number;
  }
  return _flock;
}
const LOCK_EX = 2;
const LOCK_UN = 8;
const LOCK_NB = 4;

export class FileLock {
  private fd: number | null = null;
  private depth = 0;
  constructor(readonly path: string) {}

  /** The lock file stays open between uses (a long-lived process takes the lock thousands of times); close()
   *  closes it. libuv opens it close-on-exec: spawned processes do not inherit it. */
  private open(): number {
    // O_NOFOLLOW: never a symlink planted at the lock's name.
    if (this.fd === null) this.fd = fs.openSync(this.path, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o600);
    return this.fd;
  }

  /** Blocks until the lock is held. Re-entrant within this process. */
  acquire(): void {
    if (this.depth++ > 0) return;
    const fd = this.open();
    for (;;) {
      if (flockFn()(fd, LOCK_EX) === 0) return;
      // EINTR: retry; anything else is fatal.
      const koffi = require('koffi') as typeof import('koffi');
      if (koffi.errno() !== 4) {
        this.depth = 0;
        throw new Error(`flock ${this.path} failed: errno ${koffi.errno()}`);
      }
    }
  }

  /** Takes the lock if nobody holds it (LOCK_NB); false otherwise. */
  tryAcquire(): boolean {
    if (this.depth > 0) {
      this.depth++;
      return true;
    }
    if (flockFn()(this.open(), LOCK_EX | LOCK_NB) !== 0) return false;
    this.depth = 1;
    return true;
  }

  release(): void {
    if (this.depth === 0) return;
    if (--this.depth > 0) return;
    if (this.fd !== null) flockFn()(this.fd, LOCK_UN);
  }

  /** Releases the lock if held and closes the file. */
  close(): void {
    this.depth = 0;
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }

  with<T>(fn: () => T): T {
    this.acquire();
    try {
      return fn();
    } finally {
      this.release();
    }
  }
}
