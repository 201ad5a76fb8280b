// The delay line: netem's delay, jitter, duplication, corruption and reordering done in user space, for kernels
// built without sch_netem (this one: docs/kernel-notes.md). One small process per impaired link, started detached
// by src/engine/netem.ts (its PID recorded), so nothing of nsnet's CLI stays running.
//
// Path of a frame, on each end of the link (the container's eth and the host's veth, each in its own netns):
//   egress of DEV -> clsact egress filter (cls_bpf, classic BPF: not marked by us, and to/from a --to peer) ->
//   act_mirred egress redirect -> a tap device (TAP, same netns) -> read() here -> held for the delay ->
//   an AF_PACKET socket bound to DEV with SO_MARK = our mark -> egress of DEV again: the filter skips marked
//   frames, they go through the root qdisc (htb: rate and loss, src/kernel/tc.ts) and out.
// The tap is not persistent: when this process ends (killed, crashed), the tap goes with it and the redirect has
// nowhere to go (the link then drops what the filter matches): `nsnet check` reports a delay line that is not
// running and `nsnet reconcile` starts it again. The tap gets no address and IPv6 off, so the kernel sends nothing
// of its own through it: every frame read from it came through the redirect.
import fs from 'node:fs';
import { Netlink } from './netlink.js';
import { CLONE_NEWNET, O_CLOEXEC, SOCK_CLOEXEC, SOCK_RAW, SOL_SOCKET, bind, ioctlPtr, openPath, setns, setsockoptInt, sendPart, socket, SysError } from './libc.js';

const AF_PACKET = 17;
const SO_MARK = 36;
const O_RDWR = 2;
const TUNSETIFF = 0x400454ca;
const IFF_TAP = 0x0002;
const IFF_NO_PI = 0x1000;

/** What the engine hands the delay line (argv[2], JSON). Probabilities in [0, 1]. */
export interface DelayLineConfig {
  delayMs: number;
  jitterMs: number;
  duplicate: number;
  corrupt: number;
  reorder: number;
  /** Frames held at most (netem's limit). */
  limit: number;
  /** SO_MARK of the frames sent again (the redirect filter skips them). */
  mark: number;
  /** Name of the tap device made in each netns. */
  tap: string;
  mtu: number;
  /** Each end: the netns (a path; null = the one this process runs in) and the device whose egress is delayed. */
  sides: Array<{ netns: string | null; dev: string }>;
  /** The state directory (only to recognise the process: reconcile ends a delay line no row knows). */
  root: string;
}

interface Side {
  tapFd: number;
  sock: number;
}

/** Creates the tap (up, no IPv6, the link's MTU) and the sending socket in the current netns. */
function setupHere(cfg: DelayLineConfig, dev: string): Side {
  const tapFd = openPath('/dev/net/tun', O_RDWR | O_CLOEXEC);
  const ifr = Buffer.alloc(40);
  ifr.write(cfg.tap, 0, 'utf8');
  ifr.writeUInt16LE(IFF_TAP | IFF_NO_PI, 16);
  ioctlPtr(tapFd, TUNSETIFF, ifr);
  // Per-netns sysctl, opened while this thread is in that netns: nothing of the kernel's own (router
  // solicitations, DAD) is ever sent through the tap.
  fs.writeFileSync(`/proc/sys/net/ipv6/conf/${cfg.tap}/disable_ipv6`, '1');
  const nl = Netlink.open();
  try {
    const t = nl.ifindex(cfg.tap);
    const d = nl.ifindex(dev);
    if (t === null || d === null) throw new Error(`delay line: ${t === null ? cfg.tap : dev} not found`);
    nl.setMtu(t, cfg.mtu);
    nl.setUp(t);
    const sock = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0); // protocol 0: sends only, receives nothing
    setsockoptInt(sock, SOL_SOCKET, SO_MARK, cfg.mark);
    const sll = Buffer.alloc(20);
    sll.writeUInt16LE(AF_PACKET, 0);
    sll.writeInt32LE(d, 4);
    bind(sock, sll);
    return { tapFd, sock };
  } finally {
    nl.close();
  }
}

function setup(cfg: DelayLineConfig, s: DelayLineConfig['sides'][number]): Side {
  if (!s.netns) return setupHere(cfg, s.dev);
  const back = openPath('/proc/thread-self/ns/net');
  const fd = openPath(s.netns);
  try {
    setns(fd, CLONE_NEWNET);
    try {
      return setupHere(cfg, s.dev);
    } finally {
      setns(back, CLONE_NEWNET);
    }
  } finally {
    fs.closeSync(fd);
    fs.closeSync(back);
  }
}

/** The time a frame is held: the delay, varied uniformly by ± jitter; 0 for the `reorder` share (as netem's gap 1:
 *  those frames overtake the delayed ones). */
export function holdMs(cfg: DelayLineConfig, r1: number, r2: number): number {
  if (cfg.reorder > 0 && r1 < cfg.reorder) return 0;
  return Math.max(0, cfg.delayMs + (cfg.jitterMs ? (r2 * 2 - 1) * cfg.jitterMs : 0));
}

function run(cfg: DelayLineConfig): void {
  const sides = cfg.sides.map((s) => setup(cfg, s));
  let held = 0;
  const send = (side: Side, frame: Buffer) => {
    held--;
    try {
      sendPart(side.sock, frame, frame.length);
    } catch (e) {
      // The device is gone (the container stopped or was removed): nothing left to delay for.
      if (e instanceof SysError && (e.code === 'ENXIO' || e.code === 'ENODEV' || e.code === 'ENETDOWN')) process.exit(0);
      /* ENOBUFS and the like: the frame is lost, as on a real link */
    }
  };
  const hold = (side: Side, frame: Buffer) => {
    if (held >= cfg.limit) return; // netem's limit: the queue is full, the frame is dropped
    held++;
    const ms = holdMs(cfg, Math.random(), Math.random());
    if (ms === 0) setImmediate(() => send(side, frame));
    else setTimeout(() => send(side, frame), ms);
  };
  for (const side of sides) {
    const buf = Buffer.alloc(65536 + 64);
    const next = () => fs.read(side.tapFd, buf, 0, buf.length, null, (err, n) => {
      if (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN' || (err as NodeJS.ErrnoException).code === 'EINTR') return next();
        process.exit(1);
      }
      if (n > 0) {
        const frame = Buffer.from(buf.subarray(0, n));
        if (cfg.corrupt > 0 && Math.random() < cfg.corrupt && n > 14) {
          const i = 14 + Math.floor(Math.random() * (n - 14));
          frame[i] ^= 1 << Math.floor(Math.random() * 8);
        }
        hold(side, frame);
        if (cfg.duplicate > 0 && Math.random() < cfg.duplicate) hold(side, Buffer.from(frame));
      }
      next();
    });
    next();
  }
  process.on('SIGTERM', () => process.exit(0));
  // Ready: the engine waits for this line before it points the redirect at the taps.
  process.stdout.write('ready\n');
}

if (process.argv[1] && process.argv[1].endsWith('delayline.js') && process.argv[2]) {
  try {
    run(JSON.parse(process.argv[2]) as DelayLineConfig);
  } catch (e) {
    process.stderr.write(`nsnet delay line: ${(e as Error).message}\n`);
    process.exit(1);
  }
}

/** PIDs of the delay lines running for state directory `root` (recognised by their argv: this script and the
 *  config's root). */
export function findDelayLines(root: string): number[] {
  const want = JSON.stringify(root).slice(1, -1);
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const argv = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (argv[1]?.endsWith('/delayline.js') && argv[2]?.includes(`"root":"${want}"`)) out.push(Number(d));
    } catch { /* gone */ }
  }
  return out;
}
