// Prototype for a faster detach (proposal in BENCHMARKS.md): what nsnet's `rm` pays for deleting the host-side
// veth explicitly, vs only unmounting the container's netns and letting the kernel's namespace clean-up (which
// batches the devices of every dying namespace into one unregister) remove the pair in the background.
//
//   node dist/bench/proto-detach.js [N=200]      (root)
//
// In a throwaway host netns (bnh-*): N namespaces attached as nsnet does (bench/netlink-attach.ts --full), then
//   A: for each: deleteLink(host veth) + deleteNetns  (nsnet today)
//   B: for each: deleteNetns only; then wait until every host-side veth is gone (polled over netlink)
// Reports per-call medians and the time until the host is clean.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { CLONE_NEWNET, close, openPath, setns } from '../src/kernel/libc.js';
import { Netlink } from '../src/kernel/netlink.js';
import { createNetns, deleteNetns, enterHostNetns, netnsPath } from '../src/kernel/netns.js';
import { median, pct } from './common.js';

async function main(): Promise<void> {
  const N = Number(process.argv[2] ?? 200);
  await fs.promises.stat('/');
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => { process.exitCode = 130; });
  const tag = crypto.randomBytes(2).toString('hex');
  const hostNs = `bnh-${tag}-pdet`;
  const origFd = openPath('/proc/thread-self/ns/net');
  const made: string[] = [];
  let nl: Netlink | null = null;
  try {
    close(createNetns(hostNs));
    made.push(hostNs);
    enterHostNetns(netnsPath(hostNs));
    nl = Netlink.open();
    const br = nl.createBridge('bnbr0', { up: true });
    nl.addAddress(br, '10.201.0.1', 16);
    const attachAll = (variant: string): number[] => {
      const idx: number[] = [];
      for (let i = 0; i < N; i++) {
        const name = `bnc-${tag}-${variant}-${i}`;
        let cnl: Netlink | null = null;
        const fd = createNetns(name, () => { cnl = Netlink.open(); });
        made.push(name);
        const c = cnl as unknown as Netlink;
        const h = nl!.createVeth(`bv${variant}${i}`, 'eth0', fd, { master: br, up: true, alias: 'x' });
        nl!.setBridgePort(h, { hairpin: true });
        const peer = c.ifindex('eth0')!;
        c.batch((b) => { b.setUp(1); b.setUp(peer); b.addAddress(peer, `10.201.${(i + 2) >> 8}.${(i + 2) & 255}`, 16); b.addRoute({ dst: '0.0.0.0', prefixLen: 0, gateway: '10.201.0.1' }); });
        c.close();
        close(fd);
        idx.push(h);
      }
      return idx;
    };
    const vethsLeft = () => nl!.links().filter((l) => l.master === br).length;

    const a = attachAll('a');
    const aMs: number[] = [];
    const tA = performance.now();
    a.forEach((h, i) => {
      const t = performance.now();
      nl!.deleteLink(h);
      deleteNetns(`bnc-${tag}-a-${i}`);
      aMs.push(performance.now() - t);
    });
    const totalA = performance.now() - tA;

    const b = attachAll('b');
    const bMs: number[] = [];
    const tB = performance.now();
    b.forEach((_h, i) => {
      const t = performance.now();
      deleteNetns(`bnc-${tag}-b-${i}`);
      bMs.push(performance.now() - t);
    });
    const callsB = performance.now() - tB;
    while (vethsLeft() > 0 && performance.now() - tB < 60000) await new Promise((r) => setTimeout(r, 5));
    const cleanB = performance.now() - tB;
    console.log(`detach prototype, N=${N}, kernel ${fs.readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()}`);
    console.log(`  A deleteLink + deleteNetns (today): per call median ${median(aMs)!.toFixed(3)} ms, p90 ${pct(aMs, 90)!.toFixed(3)}; all ${N}: ${(totalA / 1000).toFixed(2)} s`);
    console.log(`  B deleteNetns only:                 per call median ${median(bMs)!.toFixed(3)} ms, p90 ${pct(bMs, 90)!.toFixed(3)}; all ${N} calls: ${(callsB / 1000).toFixed(3)} s; host clean after ${(cleanB / 1000).toFixed(3)} s (veths left: ${vethsLeft()})`);
  } finally {
    nl?.close();
    setns(origFd, CLONE_NEWNET);
    close(origFd);
    for (const name of made.reverse()) {
      try { deleteNetns(name); } catch { /* gone */ }
    }
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
