// Is a host port free? Answered by trying to bind it (in the current netns), the way Docker's own bind would
// fail: a TCP listener or a bound UDP socket makes the bind fail with EADDRINUSE. Costs microseconds, where
// reading /proc/net/tcp walks the whole TCP hash table (milliseconds on a busy machine).
import { SOCK_CLOEXEC, SOL_SOCKET, SysError, bind, close, setsockoptInt, socket } from './libc.js';

const AF_INET = 2;
const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;
const SO_REUSEADDR = 2;

function sockaddrIn(ip: string, port: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt16LE(AF_INET, 0);
  b.writeUInt16BE(port, 2);
  const parts = (ip || '0.0.0.0').split('.').map(Number);
  for (let i = 0; i < 4; i++) b[4 + i] = parts[i];
  return b;
}

/** True when `proto` port `port` can be bound on `ip` ('' = every address) in the current netns. */
export function portFree(proto: 'tcp' | 'udp', ip: string, port: number): boolean {
  const fd = socket(AF_INET, (proto === 'tcp' ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
  try {
    // TIME_WAIT leftovers of old connections must not count as "in use": only live sockets do.
    if (proto === 'tcp') setsockoptInt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    bind(fd, sockaddrIn(ip, port));
    return true;
  } catch (e) {
    if (e instanceof SysError && (e.code === 'EADDRINUSE' || e.code === 'EACCES')) return false;
    throw e;
  } finally {
    close(fd);
  }
}
