// A Unix stream socket server for the resident helper (src/cli/helper.ts), driven synchronously through libc:
// the helper serves one client at a time, and a blocking, synchronous conversation lets engine code that runs in
// the middle of a command (the launch of a container's process, which the client does: kernel/proc.ts) ask the
// client and wait for its answer without turning the engine asynchronous. Peer credentials come from the kernel
// (SO_PEERCRED, SO_PEERPIDFD), never from what the client says.
//
// Frames, both ways: one type byte, a little-endian u32 payload length, the payload.
import fs from 'node:fs';
import {
  SOL_SOCKET, SOCK_CLOEXEC, SysError, accept4, bind, close, connectErrno, getsockoptBuf, listen, pidfdSignal,
  pollOne, recv, sendPart, socket,
} from './libc.js';

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SO_PEERCRED = 17;
const SO_PEERPIDFD = 77;
const MSG_NOSIGNAL = 0x4000;
export const POLLIN = 0x1;
export const POLLHUP = 0x10;
export const POLLRDHUP = 0x2000;
/** Largest frame accepted from a client (a request: argv, cwd, environment). */
const MAX_FRAME = 8 << 20;

export interface Frame {
  type: string;
  payload: Buffer;
}

function sockaddrUn(file: string): Buffer {
  const p = Buffer.from(file);
  if (p.length >= 108) throw new Error(`socket path too long (${p.length} bytes, at most 107): ${file}`);
  const b = Buffer.alloc(2 + 108);
  b.writeUInt16LE(AF_UNIX, 0);
  p.copy(b, 2);
  return b;
}

export class UnixConn {
  private closed = false;
  constructor(readonly fd: number) {}

  /** Connects to the server at `file` (blocking; a local socket answers at once or refuses). Throws a SysError
   *  (ENOENT: no socket there, ECONNREFUSED: nobody listens). */
  static connect(file: string): UnixConn {
    const fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const errno = connectErrno(fd, sockaddrUn(file));
    if (errno) {
      close(fd);
      throw new SysError('connect', errno);
    }
    return new UnixConn(fd);
  }

  /** Sends one frame; false if the peer is gone (EPIPE/ECONNRESET). */
  send(type: string, payload: Buffer | string = ''): boolean {
    const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
    const buf = Buffer.allocUnsafe(5 + body.length);
    buf.write(type, 0, 1, 'latin1');
    buf.writeUInt32LE(body.length, 1);
    body.copy(buf, 5);
    for (let off = 0; off < buf.length;) {
      try {
        off += sendPart(this.fd, off ? buf.subarray(off) : buf, buf.length - off, MSG_NOSIGNAL);
      } catch (e) {
        const code = (e as SysError).code;
        if (code === 'EINTR') continue;
        if (code === 'EPIPE' || code === 'ECONNRESET') return false;
        throw e;
      }
    }
    return true;
  }

  /** Reads exactly `n` bytes; null on end of stream or when `deadline` (ms since epoch) passes first. */
  private readExact(n: number, deadline: number): Buffer | null {
    const buf = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const left = deadline - Date.now();
      if (left <= 0) return null;
      if (!(pollOne(this.fd, POLLIN, Math.min(left, 1000)) & (POLLIN | POLLHUP))) continue;
      let got: number;
      try {
        const chunk = off ? Buffer.allocUnsafe(n - off) : buf;
        got = recv(this.fd, chunk);
        if (off && got > 0) chunk.copy(buf, off, 0, got);
      } catch (e) {
        const code = (e as SysError).code;
        if (code === 'EINTR' || code === 'EAGAIN') continue;
        if (code === 'ECONNRESET') return null;
        throw e;
      }
      if (got === 0) return null;
      off += got;
    }
    return buf;
  }

  /** The next frame, or null (end of stream, a frame too large, or nothing within `timeoutMs`). */
  recv(timeoutMs: number): Frame | null {
    const deadline = Date.now() + timeoutMs;
    const head = this.readExact(5, deadline);
    if (!head) return null;
    const len = head.readUInt32LE(1);
    if (len > MAX_FRAME) return null;
    const payload = len ? this.readExact(len, deadline) : Buffer.alloc(0);
    if (!payload) return null;
    return { type: head.toString('latin1', 0, 1), payload };
  }

  /** The peer has shut its end down (or gone): nothing it sent is still unread. */
  peerGone(): boolean {
    return (pollOne(this.fd, POLLRDHUP, 0) & (POLLRDHUP | POLLHUP)) !== 0;
  }

  /** The connecting process as the kernel recorded it at connect(2). */
  peerCred(): { pid: number; uid: number; gid: number } {
    const b = Buffer.alloc(12);
    getsockoptBuf(this.fd, SOL_SOCKET, SO_PEERCRED, b);
    return { pid: b.readInt32LE(0), uid: b.readUInt32LE(4), gid: b.readUInt32LE(8) };
  }

  /** A pidfd of the connecting process (Linux ≥ 6.5), or null where the kernel has none. It pins the process's
   *  identity: what is read from /proc/<pid> is about that process only while `pidfdAlive` still holds. */
  peerPidfd(): number | null {
    const b = Buffer.alloc(4);
    try {
      getsockoptBuf(this.fd, SOL_SOCKET, SO_PEERPIDFD, b);
    } catch {
      return null;
    }
    return b.readInt32LE(0);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    close(this.fd);
  }
}

/** Whether the process a pidfd refers to still exists (signal 0). */
export function pidfdAlive(pidfd: number): boolean {
  return pidfdSignal(pidfd, 0);
}

export function closeFd(fd: number): void {
  close(fd);
}

export class UnixListener {
  private constructor(readonly fd: number, readonly path: string, readonly ino: number) {}

  /** Binds a listening socket at `file` (a stale socket file there is replaced: the caller holds the lock that
   *  makes it the only server of that path), mode 0600. */
  static listen(file: string, backlog = 128): UnixListener {
    const fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    try {
      try {
        const st = fs.lstatSync(file);
        if (!st.isSocket()) throw new Error(`${file} exists and is not a socket`);
        fs.unlinkSync(file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
      bind(fd, sockaddrUn(file));
      fs.chmodSync(file, 0o600);
      listen(fd, backlog);
      return new UnixListener(fd, file, fs.lstatSync(file).ino);
    } catch (e) {
      close(fd);
      throw e;
    }
  }

  /** The next connection, or null when none came within `timeoutMs`. */
  accept(timeoutMs: number): UnixConn | null {
    if (!(pollOne(this.fd, POLLIN, timeoutMs) & POLLIN)) return null;
    try {
      return new UnixConn(accept4(this.fd, SOCK_CLOEXEC));
    } catch (e) {
      if (e instanceof SysError && (e.code === 'EAGAIN' || e.code === 'EINTR' || e.code === 'ECONNABORTED')) return null;
      throw e;
    }
  }

  /** Our socket file is still in place (not removed or replaced by someone else). */
  inPlace(): boolean {
    try {
      return fs.lstatSync(this.path).ino === this.ino;
    } catch {
      return false;
    }
  }

  /** Stops listening; removes the socket file if it is still ours. Connections waiting in the backlog are reset. */
  close(): void {
    if (this.inPlace()) {
      try { fs.unlinkSync(this.path); } catch { /* gone */ }
    }
    close(this.fd);
  }
}

