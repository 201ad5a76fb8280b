// Is a host port free? Answered by trying to bind it (in the current netns), the way Docker's own bind would
// fail: a TCP listener or a bound UDP socket makes the bind fail with EADDRINUSE. Costs microseconds, where
// reading /proc/net/tcp walks the whole TCP hash table (milliseconds on a busy machine).
import { Addr } from '../util/addr.js';
import { SOCK_CLOEXEC, SOL_SOCKET, SysError, bind, close, setsockoptInt, socket } from './libc.js';

const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;
const SO_REUSEADDR = 2;
const IPPROTO_IPV6 = 41;
const IPV6_V6ONLY = 26;

/** struct sockaddr_in (16 bytes) or sockaddr_in6 (28 bytes: family, port, flowinfo, address, scope id). */
function sockaddr(a: Addr, port: number): Buffer {
  if (a.family === 4) {
    const b = Buffer.alloc(16);
    b.writeUInt16LE(AF_INET, 0);
    b.writeUInt16BE(port, 2);
    a.writeBytes(b, 4);
    return b;
  }
  const b = Buffer.alloc(28);
  b.writeUInt16LE(AF_INET6, 0);
  b.writeUInt16BE(port, 2);
  a.writeBytes(b, 8);
  return b;
}

/** True when `proto` port `port` can be bound on `ip` ('' = every IPv4 address; an IPv6 address checks that
 *  family only) in the current netns. An `ip` that is not an address is a programming error (RangeError). */
export function portFree(proto: 'tcp' | 'udp', ip: string, port: number): boolean {
  const a = Addr.tryParse(ip || '0.0.0.0');
  if (!a) throw new RangeError(`portFree: not an IP address: ${JSON.stringify(ip)}`);
  const fd = socket(a.family === 4 ? AF_INET : AF_INET6, (proto === 'tcp' ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
  try {
    // TIME_WAIT leftovers of old connections must not count as "in use": only live sockets do.
    if (proto === 'tcp') setsockoptInt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    // "::" must not also claim (and so test) the IPv4 port: each family is asked on its own.
    if (a.family === 6) setsockoptInt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
    bind(fd, sockaddr(a, port));
    return true;
  } catch (e) {
    if (e instanceof SysError && (e.code === 'EADDRINUSE' || e.code === 'EACCES')) return false;
    throw e;
  } finally {
    close(fd);
  }
}
