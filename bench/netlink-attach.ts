// Micro-benchmark of src/kernel/netlink.ts: attaching network namespaces to a bridge.
//
// Everything happens inside a throwaway "host" netns (nlb-<tag>) that the process enters for the whole run; the
// container namespaces (nlb-<tag>-<i>) are created in-process. All of them are deleted at the end, even on error.
//
// One attach = host side: veth created with its peer directly in the container netns, enslaved to the bridge,
// host end up; container side: lo up, eth0 up, address, default route via the bridge's address, i.e.
//   nl.createVeth(...)  +  cnl.ifindex('eth0')  +  cnl.batch(lo up, eth0 up, address, default route)
// = 2 netlink round trips and one ioctl. Not timed as part of attach: creating the container netns and opening
// its socket (reported separately), nor detach (deleteLink of the host end, reported separately).
//
// usage: node dist/bench/netlink-attach.js [--full] [--json] [N=200]   (as root)
//   --full  issue exactly the kernel requests nsnet's create/rm issue for one container (the "kernel floor" of
//           bench/compare.ts): in the new netns IPv6 off by default (sysctl), veth with MTU, peer MAC and alias
//           (alias = a second request), hairpin on the bridge port, then ifindex + batch(lo up, eth0 up, address,
//           route); detach = the host end set down, then the netns is deleted (both timed; the kernel
//           removes the veth with the netns, as after nsnet's rm).
//   --json  also print one JSON line with every sample (attach, netns creation, detach, netns deletion), for
//           bench/compare.ts.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { CLONE_NEWNET, close, openPath, setns } from '../src/kernel/libc.js';
import { Netlink } from '../src/kernel/netlink.js';
import { createNetns, deleteNetns, enterHostNetns, netnsPath } from '../src/kernel/netns.js';
import { writeSysctl } from '../src/kernel/sysctl.js';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}
const fmt = (x: number): string => x.toFixed(3);

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const full = args.includes('--full');
  const asJson = args.includes('--json');
  const N = Number(args.find((a) => !a.startsWith('--')) ?? 200);
  if (!Number.isInteger(N) || N < 1 || N > 5000) throw new Error('N must be 1..5000');
  // Start libuv's threadpool in the original netns before any switch (docs/kernel-notes.md §7).
  await fs.promises.stat('/');
  // The run is synchronous: a Ctrl-C is handled only after the cleanup below, so it cannot leak namespaces.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => { process.exitCode = 130; });

  const tag = crypto.randomBytes(3).toString('hex');
  const hostNs = `nlb-${tag}`;
  const origFd = openPath('/proc/thread-self/ns/net');
  const made: string[] = [];
  const sockets: Netlink[] = [];
  const fds: number[] = [];
  const netnsMs: number[] = [];
  const openMs: number[] = [];
  const attachMs: number[] = [];
  const hostMs: number[] = [];
  const ctrMs: number[] = [];
  const detachMs: number[] = [];
  const netnsDelMs: number[] = [];
  let nl: Netlink | null = null;
  try {
    close(createNetns(hostNs));
    made.push(hostNs);
    enterHostNetns(netnsPath(hostNs)); // from here on, "the host" is the throwaway netns
    nl = Netlink.open();
    const br = nl.createBridge('nlb0', { up: true });
    nl.addAddress(br, '10.77.0.1', 16);

    const hostIfs: number[] = [];
    for (let i = 0; i < N; i++) {
      const name = `${hostNs}-${i}`;
      const t0 = performance.now();
      let opened: Netlink | null = null;
      const fd = createNetns(name, () => {
        const t = performance.now();
        opened = Netlink.open();
        openMs.push(performance.now() - t);
        if (full) writeSysctl('net.ipv6.conf.default.disable_ipv6', '1');
      });
      made.push(name);
      fds.push(fd);
      const cnl = opened as unknown as Netlink;
      sockets.push(cnl);
      const t1 = performance.now();

      const ip = `10.77.${(i + 2) >> 8}.${(i + 2) & 255}`;
      if (full) {
        const mac = `02:42:0a:4d:${((i + 2) >> 8).toString(16).padStart(2, '0')}:${((i + 2) & 255).toString(16).padStart(2, '0')}`;
        const idx = nl.createVeth(`nlb${tag}-${i}`, 'eth0', fd, { master: br, mtu: 1500, peerMac: mac, alias: `nlb/${tag}`, up: true });
        nl.setBridgePort(idx, { hairpin: true });
        hostIfs.push(idx);
      } else {
        hostIfs.push(nl.createVeth(`nlb${tag}-${i}`, 'eth0', fd, { master: br, up: true }));
      }
      const th = performance.now();
      const peer = cnl.ifindex('eth0');
      if (peer === null) throw new Error('peer eth0 missing');
      cnl.batch((b) => {
        b.setUp(1); // lo is ifindex 1 in every netns
        b.setUp(peer);
        b.addAddress(peer, ip, 16);
        b.addRoute({ dst: '0.0.0.0', prefixLen: 0, gateway: '10.77.0.1' });
      });
      const t2 = performance.now();
      netnsMs.push(t1 - t0);
      attachMs.push(t2 - t1);
      hostMs.push(th - t1);
      ctrMs.push(t2 - th);
    }
    // Sanity: every container has its default route, the bridge has every port.
    const ports = nl.links().filter((l) => l.master === br).length;
    if (ports !== N) throw new Error(`expected ${N} bridge ports, found ${ports}`);
    if (!sockets[N - 1].routes(4).some((r) => r.prefixLen === 0 && r.gateway === '10.77.0.1')) throw new Error('no default route');

    for (let i = 0; i < hostIfs.length; i++) {
      const t = performance.now();
      // --full: as nsnet's rm, the host end is taken down and left to die with the netns (deleted below).
      if (full) nl.setDown(hostIfs[i]);
      else nl.deleteLink(hostIfs[i]);
      detachMs.push(performance.now() - t);
      if (full) {
        // As nsnet's rm: every handle on the netns closed first (pitfall 4), then the name is unmounted.
        sockets[i].close();
        close(fds[i]);
        fds[i] = -1;
        const t2 = performance.now();
        deleteNetns(`${hostNs}-${i}`);
        netnsDelMs.push(performance.now() - t2);
      }
    }

    console.log(`netlink attach benchmark${full ? ' (--full: nsnet\'s requests)' : ''}: N=${N}, kernel ${fs.readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()}, node ${process.version}`);
    console.log(`  attach per namespace      median ${fmt(median(attachMs))} ms  p10 ${fmt(pct(attachMs, 10))}  p90 ${fmt(pct(attachMs, 90))}`);
    console.log(`    host: createVeth        median ${fmt(median(hostMs))} ms`);
    console.log(`    container: ifindex + batch(4)  median ${fmt(median(ctrMs))} ms`);
    console.log(`  netns create (in-process, incl. Netlink.open)  median ${fmt(median(netnsMs))} ms`);
    console.log(`  Netlink.open() alone      median ${fmt(median(openMs))} ms`);
    console.log(`  detach: deleteLink(host veth)  median ${fmt(median(detachMs))} ms`);
    if (full) console.log(`  netns delete (umount + unlink)  median ${fmt(median(netnsDelMs))} ms`);
    if (asJson) console.log(JSON.stringify({ full, n: N, attachMs, hostMs, ctrMs, netnsMs, openMs, detachMs, netnsDelMs }));
  } finally {
    for (const s of sockets) s.close();
    for (const fd of fds) if (fd >= 0) close(fd);
    nl?.close();
    setns(origFd, CLONE_NEWNET);
    close(origFd);
    for (const name of made.reverse()) {
      try {
        deleteNetns(name);
      } catch (e) {
        console.error(`could not delete netns ${name}: ${(e as Error).message}`);
      }
    }
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
