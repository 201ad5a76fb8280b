// One probe packet for `nsnet explain --trace`: a TCP SYN (a non-blocking connect), a UDP datagram or an ICMP
// echo request, from a socket made in a given netns (a socket stays in the netns it was created in), and what
// came back. Synchronous: safe inside a temporary setns (KERNEL-NOTES).
import {
  SOCK_CLOEXEC, SOCK_RAW, SOL_SOCKET, SysError, bind, close, connectErrno, getsockname, getsockoptBuf, pollOne, recv, sendPart, socket, strerror,
} from './libc.js';
import { inNetns } from './netns.js';

const send = (fd: number, b: Buffer) => sendPart(fd, b, b.length);

const AF_INET = 2;
const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const IPPROTO_ICMP = 1;
const SO_ERROR = 4;
const POLLIN = 1;
const POLLOUT = 4;
const MSG_DONTWAIT = 0x40;
const EINPROGRESS = 115;
const ENETUNREACH = 101;
const EHOSTUNREACH = 113;

export type ProbeProto = 'tcp' | 'udp' | 'icmp';

/** What the probe saw: `connected` (a TCP handshake), `refused` (RST, ICMP port unreachable), `reply` (a UDP
 *  answer, an echo reply), `unreachable` (an ICMP error), `timeout` (nothing came back). */
export type ProbeOutcome = 'connected' | 'refused' | 'reply' | 'unreachable' | 'timeout';

function sockaddr(ip: string, port: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt16LE(AF_INET, 0);
  b.writeUInt16BE(port, 2);
  ip.split('.').forEach((x, i) => b.writeUInt8(Number(x), 4 + i));
  return b;
}

export class Probe {
  private constructor(private fd: number, readonly proto: ProbeProto, readonly sport: number, readonly icmpId: number, private daddr: string, private dport: number) {}

  /** A socket for the probe, made in the netns `netnsFd` (absent: the current one), bound to an ephemeral port
   *  (so that the trace rule can match its 5-tuple before anything is sent). */
  static open(proto: ProbeProto, daddr: string, dport: number, netnsFd?: number): Probe {
    const make = () => {
      const type = (proto === 'tcp' ? SOCK_STREAM : proto === 'udp' ? SOCK_DGRAM : SOCK_RAW) | SOCK_NONBLOCK | SOCK_CLOEXEC;
      return socket(AF_INET, type, proto === 'icmp' ? IPPROTO_ICMP : 0);
    };
    const fd = netnsFd === undefined ? make() : inNetns(netnsFd, make);
    try {
      let sport = 0;
      if (proto !== 'icmp') {
        bind(fd, sockaddr('0.0.0.0', 0));
        const b = Buffer.alloc(16);
        getsockname(fd, b);
        sport = b.readUInt16BE(2);
      }
      const icmpId = proto === 'icmp' ? (process.pid ^ Date.now()) & 0xffff : 0;
      return new Probe(fd, proto, sport, icmpId, daddr, dport);
    } catch (e) {
      close(fd);
      throw e;
    }
  }

  /** Sends the one packet. Returns an outcome when the kernel of the sending netns refuses it at once (no route:
   *  ENETUNREACH), null when it was sent. */
  send(): { outcome: ProbeOutcome; detail: string } | null {
    const sa = sockaddr(this.daddr, this.proto === 'icmp' ? 0 : this.dport);
    const errno = connectErrno(this.fd, sa);
    if (errno) {
      if (errno === ENETUNREACH || errno === EHOSTUNREACH) return { outcome: 'unreachable', detail: strerror(errno) };
      if (!(this.proto === 'tcp' && errno === EINPROGRESS)) throw new SysError('connect', errno, `${this.daddr}:${this.dport}`);
    }
    if (this.proto === 'udp') send(this.fd, Buffer.from('nsnet explain --trace probe\n'));
    if (this.proto === 'icmp') {
      const m = Buffer.alloc(16);
      m.writeUInt8(8, 0); // echo request
      m.writeUInt16BE(this.icmpId, 4);
      m.writeUInt16BE(1, 6);
      m.write('nsnet-tr', 8);
      m.writeUInt16BE(checksum(m), 2);
      send(this.fd, m);
    }
    return null;
  }

  /** Waits (at most `timeoutMs`) for what comes back. */
  outcome(timeoutMs: number): { outcome: ProbeOutcome; detail?: string } {
    const end = Date.now() + timeoutMs;
    const buf = Buffer.alloc(2048);
    for (;;) {
      const left = end - Date.now();
      if (left <= 0) return { outcome: 'timeout' };
      const ev = pollOne(this.fd, this.proto === 'tcp' ? POLLOUT : POLLIN, Math.min(left, 50));
      if (!ev) continue;
      if (this.proto === 'tcp') {
        const err = this.soError();
        if (err === 0) return { outcome: 'connected' };
        return err === 111 ? { outcome: 'refused', detail: strerror(err) } : { outcome: 'unreachable', detail: strerror(err) };
      }
      try {
        const n = recv(this.fd, buf, MSG_DONTWAIT);
        if (this.proto === 'udp') return { outcome: 'reply' };
        // Raw ICMP: IP header, then ICMP; our echo reply has type 0 and our id.
        const ihl = (buf.readUInt8(0) & 0x0f) * 4;
        if (n >= ihl + 8 && buf.readUInt8(ihl) === 0 && buf.readUInt16BE(ihl + 4) === this.icmpId) return { outcome: 'reply' };
        if (n >= ihl + 8 && buf.readUInt8(ihl) === 3) return { outcome: 'unreachable', detail: `ICMP destination unreachable (code ${buf.readUInt8(ihl + 1)})` };
      } catch (e) {
        if (e instanceof SysError && e.code === 'ECONNREFUSED') return { outcome: 'refused', detail: 'ICMP port unreachable' };
        if (e instanceof SysError && (e.code === 'EHOSTUNREACH' || e.code === 'ENETUNREACH')) return { outcome: 'unreachable', detail: e.code };
        if (!(e instanceof SysError && e.code === 'EAGAIN')) throw e;
      }
    }
  }

  private soError(): number {
    const b = Buffer.alloc(4);
    getsockoptBuf(this.fd, SOL_SOCKET, SO_ERROR, b);
    return b.readInt32LE(0);
  }

  close(): void {
    if (this.fd >= 0) close(this.fd);
    this.fd = -1;
  }
}

function checksum(b: Buffer): number {
  let s = 0;
  for (let i = 0; i + 1 < b.length; i += 2) s += b.readUInt16BE(i);
  if (b.length % 2) s += b.readUInt8(b.length - 1) << 8;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return ~s & 0xffff;
}
