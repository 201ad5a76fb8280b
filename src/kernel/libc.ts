// Direct libc calls through koffi. Every call here is synchronous, so it is safe inside a temporary setns()
// of the main thread (only synchronous work belongs inside a switch: docs/kernel-notes.md §7).
import { createRequire } from 'node:module';
import os from 'node:os';

const require = createRequire(import.meta.url);
// koffi is CommonJS; require() is faster than an ESM import of it and keeps start-up lean.
const koffi = require('koffi') as typeof import('koffi');

const libc = koffi.load('libc.so.6');

export const CLONE_NEWNET = 0x40000000;
export const MS_BIND = 4096;
export const MS_REC = 16384;
export const MS_SHARED = 1 << 20;
export const MNT_DETACH = 2;
export const AF_NETLINK = 16;
export const SOCK_RAW = 3;
export const SOCK_CLOEXEC = 0o2000000;
export const NETLINK_ROUTE = 0;
export const SOL_SOCKET = 1;
/** SO_RCVTIMEO (the struct timeval variant) on x86-64 and arm64. */
export const SO_RCVTIMEO = 20;
export const SOL_NETLINK = 270;
export const NETLINK_EXT_ACK = 11;
export const NETLINK_CAP_ACK = 10;
export const MSG_TRUNC = 0x20;
export const SIOCGIFINDEX = 0x8933;
export const O_RDONLY = 0;
export const O_CLOEXEC = 0o2000000;

const _setns = libc.func('int setns(int fd, int nstype)');
const _unshare = libc.func('int unshare(int flags)');
const _mount = libc.func('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const void *data)');
const _umount2 = libc.func('int umount2(const char *target, int flags)');
const _open = libc.func('int open(const char *path, int flags, int mode)');
const _close = libc.func('int close(int fd)');
const _socket = libc.func('int socket(int domain, int type, int protocol)');
const _bind = libc.func('int bind(int fd, const void *addr, uint32_t addrlen)');
const _connect = libc.func('int connect(int fd, const void *addr, uint32_t addrlen)');
const _getsockname = libc.func('int getsockname(int fd, _Out_ void *addr, _Inout_ uint32_t *addrlen)');
const _send = libc.func('intptr_t send(int fd, const void *buf, size_t len, int flags)');
const _recv = libc.func('intptr_t recv(int fd, _Out_ void *buf, size_t len, int flags)');
const _setsockopt = libc.func('int setsockopt(int fd, int level, int optname, const void *optval, uint32_t optlen)');
const _strerror = libc.func('const char *strerror(int errnum)');
const _listen = libc.func('int listen(int fd, int backlog)');
const _accept4 = libc.func('int accept4(int fd, void *addr, void *addrlen, int flags)');
const _getsockopt = libc.func('int getsockopt(int fd, int level, int optname, _Out_ void *optval, _Inout_ uint32_t *optlen)');
const _poll = libc.func('int poll(_Inout_ void *fds, unsigned long nfds, int timeout)');
const _syscall4 = libc.func('long syscall(long nr, long a, long b, void *c, long d)');
// ioctl is variadic; declaring its one pointer argument is call-compatible on x86-64 and arm64 Linux.
const _ioctl = libc.func('int ioctl(int fd, unsigned long request, void *arg)');

/** An error from a system call, carrying errno and its symbolic name (EEXIST, ENOENT, ...). */
export class SysError extends Error {
  readonly errno: number;
  readonly code: string;
  constructor(call: string, errno: number, detail?: string) {
    const code = errnoName(errno);
    super(`${call}${detail ? ` ${detail}` : ''}: ${code} (${_strerror(errno)})`);
    this.errno = errno;
    this.code = code;
  }
}

const errnoNames = new Map<number, string>();
for (const [name, num] of Object.entries(os.constants.errno)) errnoNames.set(num as number, name);
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `E${errno}`;
}

function check(call: string, rc: number | bigint, detail?: string): number {
  const n = Number(rc);
  if (n < 0) throw new SysError(call, koffi.errno(), detail);
  return n;
}

export function setns(fd: number, nstype: number): void {
  check('setns', _setns(fd, nstype));
}
export function unshare(flags: number): void {
  check('unshare', _unshare(flags));
}
export function mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null = null): void {
  check('mount', _mount(source, target, fstype, flags, data), target);
}
export function umount2(target: string, flags: number): void {
  check('umount2', _umount2(target, flags), target);
}
export function openPath(path: string, flags = O_RDONLY | O_CLOEXEC): number {
  return check('open', _open(path, flags, 0), path);
}
export function close(fd: number): void {
  _close(fd);
}
export function socket(domain: number, type: number, protocol: number): number {
  return check('socket', _socket(domain, type, protocol));
}
export function bind(fd: number, addr: Buffer): void {
  check('bind', _bind(fd, addr, addr.length));
}
/** send(2) of the first `len` bytes of `buf` (no subarray allocation). */
export function sendPart(fd: number, buf: Buffer, len: number, flags = 0): number {
  if (len > buf.length) throw new RangeError(`sendPart: len ${len} > buffer ${buf.length}`);
  return check('send', _send(fd, buf, len, flags));
}
export function recv(fd: number, buf: Buffer, flags = 0): number {
  return check('recv', _recv(fd, buf, buf.length, flags));
}
export function setsockoptInt(fd: number, level: number, name: number, value: number): void {
  const b = Buffer.alloc(4);
  b.writeInt32LE(value, 0);
  check('setsockopt', _setsockopt(fd, level, name, b, 4));
}
/** setsockopt(2) with an arbitrary option value (e.g. a struct timeval). */
export function setsockoptBuf(fd: number, level: number, name: number, value: Buffer): void {
  check('setsockopt', _setsockopt(fd, level, name, value, value.length));
}
/** ioctl(2) with a pointer argument (e.g. a struct ifreq); returns the call's result. */
export function ioctlPtr(fd: number, request: number, arg: Buffer): number {
  return check('ioctl', _ioctl(fd, request, arg));
}
export function listen(fd: number, backlog: number): void {
  check('listen', _listen(fd, backlog));
}
/** accept4(2) without the peer's address; -1 with EAGAIN/EINTR left to the caller (koffi.errno()). */
export function accept4(fd: number, flags: number): number {
  return check('accept4', _accept4(fd, null, null, flags));
}
/** getsockopt(2) into `buf`; returns the option's length. */
/** connect(2): 0, or the errno it failed with (EINPROGRESS of a non-blocking socket is the caller's to judge). */
export function connectErrno(fd: number, addr: Buffer): number {
  return Number(_connect(fd, addr, addr.length)) < 0 ? koffi.errno() : 0;
}
/** getsockname(2) into `buf`; returns the address's length. */
export function getsockname(fd: number, buf: Buffer): number {
  const len = [buf.length];
  check('getsockname', _getsockname(fd, buf, len));
  return len[0];
}
export function getsockoptBuf(fd: number, level: number, name: number, buf: Buffer): number {
  const len = [buf.length];
  check('getsockopt', _getsockopt(fd, level, name, buf, len));
  return len[0];
}
/** poll(2) on one fd: the revents bits, 0 on timeout (EINTR counts as a timeout). */
export function pollOne(fd: number, events: number, timeoutMs: number): number {
  const b = Buffer.alloc(8);
  b.writeInt32LE(fd, 0);
  b.writeInt16LE(events, 4);
  const n = Number(_poll(b, 1, timeoutMs));
  if (n < 0) {
    if (koffi.errno() === 4) return 0;
    throw new SysError('poll', koffi.errno());
  }
  return n === 0 ? 0 : b.readUInt16LE(6);
}
/** pidfd_send_signal(2) (signal 0: does the process the pidfd refers to still exist?). */
export function pidfdSignal(pidfd: number, sig: number): boolean {
  return Number(_syscall4(424, pidfd, sig, null, 0)) === 0;
}
/** strerror(3): the C library's text for an errno value. */
export function strerror(errno: number): string {
  return _strerror(errno);
}
