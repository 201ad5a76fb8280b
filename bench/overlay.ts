// Overlay networks across hosts (issue #17): throughput between hosts over the overlay against the underlay itself,
// and the cost of the k-th cross-host attach. All on this machine: two simulated hosts (throwaway namespaces with
// their own state directories) on an underlay bridge, a 1-member etcd in a namespace of its own
// (test/helpers/etcd.ts); everything removed at the end, also on failure.
//   throughput  iperf3 (TCP, 5 s, one stream) container on host1 -> container on host2 over the overlay (VXLAN, MTU
//               1450), and host1's netns -> host2's netns over the underlay (veths and a bridge, MTU 1500): REPS
//               alternated pairs, medians and the ratio;
//   attach      K sequential `nsnet run -d` on host1 on the overlay network (the CLI through its helper): each
//               command's wall time, and the time from the command's return until host2's VXLAN device forwards the
//               container's MAC to host1 (the registration in etcd, host2's watch, its mirror, its forwarding entries);
//               first/last five medians show whether the k-th costs more than the first.
// usage: node dist/bench/overlay.js [K=30] [REPS=3]
import { spawnSync } from 'node:child_process';
import { EtcdCluster } from '../test/helpers/etcd.js';
import { TestHost } from '../test/helpers/host.js';

const K = Number(process.argv[2] ?? 30);
const REPS = Number(process.argv[3] ?? 3);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const r2 = (x: number) => +x.toFixed(2);
const under = (i: number) => `203.0.113.${21 + i}`;

function iperf(client: string[], target: string): number {
  const r = spawnSync(client[0], [...client.slice(1), 'iperf3', '-c', target, '-t', '5', '-J'], { encoding: 'utf8', timeout: 60000 });
  if (r.status !== 0) throw new Error(`iperf3 -c ${target}: ${r.stderr || r.stdout.slice(0, 300)}`);
  return (JSON.parse(r.stdout).end.sum_received.bits_per_second as number) / 1e9;
}

const hosts: TestHost[] = [];
let etcd: EtcdCluster | null = null;
let failed = false;
try {
  etcd = await EtcdCluster.start(1, 'bov');
  const store = `etcd://${etcd.members[0].ip}:2379`;
  for (let i = 0; i < 2; i++) {
    hosts.push(TestHost.create(`bov${i + 1}`));
    etcd.attach(hosts[i].ns, under(i));
    hosts[i].ok(['cluster', 'join', '--store', store, '--advertise', under(i), '--name', `host${i + 1}`]);
  }
  const [h1, h2] = hosts;
  h1.ok(['network', 'create', '-d', 'overlay', '--subnet', '10.90.9.0/24', 'ov']);
  for (let t = 0; t < 100 && !h2.ok(['network', 'ls', '--format', '{{.Name}}']).split('\n').includes('ov'); t++) spawnSync('sleep', ['0.1']);
  h2.ok(['run', '-d', '--name', 'srv', '--network', 'ov', '--', 'iperf3', '-s']);
  h1.ok(['run', '-d', '--name', 'cli', '--network', 'ov', '--', 'sleep', 'infinity']);
  const srvIp = JSON.parse(h2.ok(['inspect', 'srv']))[0].NetworkSettings.Networks.ov.IPAddress as string;
  // The underlay's own iperf3 server, in host2's netns (started here, ended by its PID).
  const us = spawnSync('sh', ['-c', `nsenter --net=/run/netns/${h2.ns} iperf3 -s -D -I /tmp/bov-iperf.pid`]);
  if (us.status !== 0) throw new Error('iperf3 -s on the underlay');
  for (let t = 0; t < 100 && h1.exec('cli', `ping -c1 -W1 ${srvIp}`).status !== 0; t++) spawnSync('sleep', ['0.1']);
  const overlay: number[] = [];
  const underlay: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const o = () => overlay.push(iperf(['nsenter', `--net=/run/netns/${h1.netnsName('cli')}`], srvIp));
    const u = () => underlay.push(iperf(['nsenter', `--net=/run/netns/${h1.ns}`], under(1)));
    if (r % 2 === 0) { o(); u(); } else { u(); o(); }
  }
  try { process.kill(Number(spawnSync('cat', ['/tmp/bov-iperf.pid'], { encoding: 'utf8' }).stdout.trim()), 'SIGTERM'); } catch { /* gone */ }
  const vx = /^\d+: (nsvx-[0-9a-f]+)/m.exec(h2.sh('ip -o link show type vxlan').stdout)![1];
  const cmdMs: number[] = [];
  const seenMs: number[] = [];
  for (let k = 0; k < K; k++) {
    const t0 = performance.now();
    h1.ok(['run', '-d', '--name', `k${k}`, '--network', 'ov', '--', 'sleep', 'infinity']);
    const t1 = performance.now();
    const t2 = performance.now();
    // host2 has the endpoint once its VXLAN device forwards the container's MAC to host1 (programmed from etcd).
    // (Not a ping from host2: one sent before the entries exist leaves a failed ARP entry that the kernel retries
    // only after a second.)
    const mac = JSON.parse(h1.ok(['inspect', `k${k}`]))[0].NetworkSettings.Networks.ov.MacAddress as string;
    for (let t = 0; t < 2000; t++) {
      const f = spawnSync('nsenter', [`--net=/run/netns/${h2.ns}`, 'bridge', 'fdb', 'show', 'dev', vx], { encoding: 'utf8' });
      if (f.stdout.includes(`${mac} dst ${under(0)}`)) break;
    }
    cmdMs.push(t1 - t0);
    seenMs.push(performance.now() - t2); // from the run's return (the inspect for the MAC, ≈10 ms, included); polled every ≈5 ms
  }
  const report = {
    throughputGbps: { overlay: overlay.map(r2), underlay: underlay.map(r2), medianOverlay: r2(median(overlay)), medianUnderlay: r2(median(underlay)), ratio: r2(median(overlay) / median(underlay)) },
    attach: {
      k: K, runMs: cmdMs.map(r2), firstFiveMedian: r2(median(cmdMs.slice(0, 5))), lastFiveMedian: r2(median(cmdMs.slice(-5))),
      seenFromOtherHostMs: seenMs.map(r2), seenFirstFiveMedian: r2(median(seenMs.slice(0, 5))), seenLastFiveMedian: r2(median(seenMs.slice(-5))),
    },
  };
  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
} catch (e) {
  failed = true;
  process.stderr.write(`bench/overlay: ${(e as Error).stack ?? e}\n`);
} finally {
  for (const h of hosts) h.cleanup();
  await etcd?.cleanup();
}
process.exit(failed ? 1 : 0);
