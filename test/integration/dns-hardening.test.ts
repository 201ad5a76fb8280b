// Attacks on the resolver's shared resources, over real sockets on loopback only (as dns-server.test.ts): a
// network "hard" with gateway 127.0.60.1 and containers 127.0.60.x; a fake upstream on 127.0.61.4 that answers
// every name except stall*, which it never answers (a stalled upstream). Clients bind a source address to play a
// container: 127.0.60.10 is the normal one, 127.0.60.66 (and others) the attacker.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import { Resolver, type ResolverOptions } from '../../src/dns/server.js';
import type { DnsView } from '../../src/dns/answer.js';

type Reply = ReturnType<typeof dnsPacket.decode> & { rcode: string };
const GW = '127.0.60.1';
const UP = '127.0.61.4';
const NORMAL = '127.0.60.10';
const ATTACKER = '127.0.60.66';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rport = () => 20000 + crypto.randomInt(40000);

function q(name: string, id = crypto.randomInt(65536)): Buffer {
  return dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name, class: 'IN' }] });
}
const ips = (r: Reply) => (r.answers ?? []).map((a) => (a as { data: string }).data);

function udp(port: number, msg: Buffer, source: string, timeoutMs = 4000): Promise<Reply | null> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const t = setTimeout(() => {
      s.close();
      resolve(null);
    }, timeoutMs);
    s.on('message', (m) => {
      clearTimeout(t);
      s.close();
      resolve(dnsPacket.decode(m) as Reply);
    });
    s.bind(0, source, () => s.send(msg, port, GW));
  });
}

function tcp(port: number, msg: Buffer, source: string, timeoutMs = 3000): Promise<Reply> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const c = net.connect({ host: GW, port, localAddress: source });
    const t = setTimeout(() => {
      c.destroy();
      reject(new Error('TCP: no reply in time'));
    }, timeoutMs);
    c.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    c.on('close', () => {
      clearTimeout(t);
      reject(new Error('TCP: closed by the server before the reply'));
    });
    c.on('connect', () => c.write(Buffer.concat([Buffer.from([msg.length >> 8, msg.length & 255]), msg])));
    c.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        clearTimeout(t);
        c.removeAllListeners('close');
        c.destroy();
        resolve(dnsPacket.decode(buf.subarray(2, 2 + buf.readUInt16BE(0))) as Reply);
      }
    });
  });
}

/** The fake upstream: A 192.0.2.1 for every name, except stall* (never answered). Counts what it saw. */
async function stallingUpstream(): Promise<{ port: number; seen: { stall: number; other: number }; close(): void }> {
  const seen = { stall: 0, other: 0 };
  for (let attempt = 0; ; attempt++) {
    const port = rport();
    const u = dgram.createSocket('udp4');
    try {
      await new Promise<void>((res, rej) => {
        u.once('error', rej);
        u.bind(port, UP, () => res());
      });
    } catch (e) {
      u.close();
      if (attempt > 10) throw e;
      continue;
    }
    u.on('message', (m, r) => {
      const p = dnsPacket.decode(m);
      const name = p.questions![0].name;
      if (name.startsWith('stall')) {
        seen.stall++;
        return;
      }
      seen.other++;
      u.send(dnsPacket.encode({
        type: 'response', id: p.id, flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
        questions: p.questions, answers: [{ type: 'A', name, ttl: 60, data: '192.0.2.1' }],
      }), r.port, r.address);
    });
    return { port, seen, close: () => u.close() };
  }
}

const NET = { id: 'h'.repeat(64), name: 'hard', gateway: GW, subnet: '127.0.60.0/22' };
let upstream: Awaited<ReturnType<typeof stallingUpstream>>;
const open: Resolver[] = [];
const logs: string[] = [];

async function startResolver(opts: ResolverOptions): Promise<{ resolver: Resolver; port: number }> {
  const view: DnsView = {
    generation: 1, networks: [NET], upstreams: [`${UP}:${upstream.port}`],
    entries: [
      { networkId: NET.id, names: ['web'], ip: '127.0.60.2', containerId: '1'.repeat(64) },
      // "big": 100 addresses, a reply of ~1.6 KB (over TCP, whole).
      ...Array.from({ length: 100 }, (_, i) => ({ networkId: NET.id, names: [`m${i}`, 'big'], ip: `127.0.62.${i + 1}`, containerId: String(1000 + i).padStart(64, '0') })),
    ],
  };
  for (let attempt = 0; ; attempt++) {
    const port = rport();
    const resolver = new Resolver({ port, log: (m) => logs.push(m), ...opts });
    await resolver.setView(view);
    if (resolver.addresses().length === 1) {
      open.push(resolver);
      return { resolver, port };
    }
    await resolver.close();
    if (attempt > 10) throw new Error(`cannot bind: ${logs.join('\n')}`);
  }
}

before(async () => {
  upstream = await stallingUpstream();
});
after(async () => {
  for (const r of open) await r.close();
  upstream?.close();
});

/** Keeps `n` TCP connections from `source` open, re-opening each one the server closes, and feeds each one byte
 *  every `everyMs` (a 2-byte length of 64, then the body, byte by byte: a message that never completes in time).
 *  Records every connection's lifetime. */
function slowloris(port: number, source: string, n: number, everyMs: number) {
  const lifetimes: number[] = [];
  const socks = new Set<net.Socket>();
  let stopped = false;
  const one = () => {
    if (stopped) return;
    const t0 = Date.now();
    const c = net.connect({ host: GW, port, localAddress: source });
    socks.add(c);
    let sent = 0;
    const timer = setInterval(() => {
      if (!c.destroyed) c.write(Buffer.from([sent++ === 1 ? 64 : 0]));
    }, everyMs);
    c.on('connect', () => c.write(Buffer.from([0])) && sent++);
    c.on('error', () => {});
    c.on('close', () => {
      clearInterval(timer);
      socks.delete(c);
      lifetimes.push(Date.now() - t0);
      if (!stopped) setTimeout(one, 20);
    });
  };
  for (let i = 0; i < n; i++) one();
  return {
    lifetimes,
    stop() {
      stopped = true;
      for (const c of socks) c.destroy();
    },
  };
}

test('TCP slowloris: one source trickling a byte at a time cannot hold the slots; nor can several', async () => {
  // Scaled down from 256 slots / a byte every 4 s / a 10 s idle timer: 16 slots, a byte every 300 ms, 2 s idle.
  const { resolver, port } = await startResolver({ maxTcpConnections: 16, maxTcpPerSource: 4, tcpMessageMs: 600, tcpIdleMs: 2000 });
  const attack = slowloris(port, ATTACKER, 32, 300);
  try {
    await sleep(1500); // well past the message deadline: the attacker has been reconnecting all along
    const r = await tcp(port, q('web'), NORMAL);
    assert.deepEqual(ips(r), ['127.0.60.2'], 'the normal container still gets its TCP answer');
  } finally {
    attack.stop();
  }
  const st = resolver.stats();
  assert.ok(st.tcpRejected > 0, 'connections past the per-source cap are refused');
  assert.ok(st.tcpTimeouts > 0, 'trickled messages time out');
  // No trickled connection lived much past the message deadline, though each kept sending bytes.
  const longest = Math.max(...attack.lifetimes);
  assert.ok(attack.lifetimes.length >= 8 && longest < 1500, `lifetimes of ${attack.lifetimes.length} attack connections, longest ${longest} ms`);

  // Several sources, each within its per-source cap, together more than all slots: the source holding the most
  // gives a slot back to a newcomer.
  const many = Array.from({ length: 8 }, (_, i) => slowloris(port, `127.0.60.${100 + i}`, 4, 300));
  try {
    await sleep(300);
    assert.deepEqual(ips(await tcp(port, q('web'), NORMAL)), ['127.0.60.2'], 'answered while 8 sources hold every slot');
  } finally {
    for (const a of many) a.stop();
  }
  assert.ok(resolver.stats().tcpEvicted > 0, 'a slot was taken back from the heaviest source');
  // Nothing left behind once the attack stops.
  await sleep(800);
  const l = (resolver as unknown as { listeners: Map<string, { conns: Set<unknown>; bySource: Map<string, unknown> }> }).listeners.get(GW)!;
  assert.equal(l.conns.size, 0);
  assert.equal(l.bySource.size, 0);
});

/** Sends `n` queries for distinct stall* names from each source, paced so the kernel buffer keeps up. */
async function flood(port: number, sources: string[], n: number): Promise<() => void> {
  const socks = await Promise.all(sources.map((src) => new Promise<dgram.Socket>((r) => {
    const s = dgram.createSocket('udp4');
    s.on('message', () => {});
    s.bind(0, src, () => r(s));
  })));
  for (let i = 0; i < n; i++) {
    for (const s of socks) s.send(q(`stall${i}.example`), port, GW);
    if (i % Math.max(1, Math.floor(100 / socks.length)) === 0) await sleep(3);
  }
  return () => socks.forEach((s) => s.close());
}

test('a stalled upstream and a flooding source: other containers still get their forwarded answers', async () => {
  // Default limits (4096 in flight, 256 per source), a 4 s budget so that the flood stays in flight.
  const { resolver, port } = await startResolver({ forwardBudgetMs: 4000 });
  const done = await flood(port, [ATTACKER], 10000);
  try {
    const st = resolver.stats().forwarder;
    assert.ok(upstream.seen.stall >= 200, `the flood reached the stalled upstream (${upstream.seen.stall})`);
    const t0 = Date.now();
    const r = await udp(port, q('ok.example'), NORMAL);
    assert.ok(r, 'a reply');
    assert.equal(r.rcode, 'NOERROR', `the normal container is not starved (${r.rcode} after ${Date.now() - t0} ms)`);
    assert.deepEqual(ips(r), ['192.0.2.1']);
    assert.ok(st.inflight <= 256, `one source holds at most its share: ${st.inflight} in flight`);
  } finally {
    done();
  }
});

test('a stalled upstream and many flooding sources filling every slot: a newcomer takes one from the heaviest', async () => {
  const { resolver, port } = await startResolver({ forwardBudgetMs: 4000, maxInflight: 1024, maxInflightPerSource: 128 });
  const sources = Array.from({ length: 12 }, (_, i) => `127.0.60.${120 + i}`);
  const done = await flood(port, sources, 200); // 12 x 128 slots wanted > 1024
  try {
    const st = resolver.stats().forwarder;
    assert.equal(st.inflight, 1024, 'every slot taken');
    const r = await udp(port, q('ok.example'), NORMAL);
    assert.equal(r?.rcode, 'NOERROR');
    assert.deepEqual(ips(r!), ['192.0.2.1']);
    assert.ok(resolver.stats().forwarder.evicted > 0, 'a flooding source gave up a slot');
  } finally {
    done();
  }
  // Once the budget runs out everything is released.
  await sleep(4500);
  assert.equal(resolver.stats().forwarder.inflight, 0);
});

test('TCP: a client that pipelines queries and never reads the replies cannot make the resolver buffer without bound', async () => {
  const { resolver, port } = await startResolver({});
  const N = 20000; // ~32 MB of replies, far more than the kernel's socket buffers take
  const one = q('big', 1);
  const frame = Buffer.concat([Buffer.from([one.length >> 8, one.length & 255]), one]);
  const c = net.connect({ host: GW, port, localAddress: ATTACKER });
  c.on('error', () => {});
  await new Promise<void>((r) => c.on('connect', () => r()));
  c.pause(); // never reads
  c.write(Buffer.concat(Array.from({ length: N }, () => frame)));
  await sleep(1500);
  const conns = (resolver as unknown as { listeners: Map<string, { conns: Set<net.Socket> }> }).listeners.get(GW)!.conns;
  const buffered = [...conns].reduce((n, s) => n + s.writableLength, 0);
  assert.ok(buffered <= 256 * 1024 + 4096, `reply bytes held for the non-reading client: ${buffered}`);
  // Meanwhile others are served.
  assert.deepEqual(ips(await tcp(port, q('web'), NORMAL)), ['127.0.60.2']);
  // Once it reads, it gets every reply: flow control paused the queries, it lost none.
  let got = 0;
  let acc = Buffer.alloc(0);
  const all = new Promise<void>((resolve) => {
    c.on('data', (d) => {
      acc = acc.length ? Buffer.concat([acc, d]) : d;
      while (acc.length >= 2 && acc.length >= 2 + acc.readUInt16BE(0)) {
        acc = acc.subarray(2 + acc.readUInt16BE(0));
        if (++got === N) resolve();
      }
    });
  });
  c.resume();
  await Promise.race([all, sleep(20000)]);
  c.destroy();
  assert.equal(got, N, 'every reply arrived');
});
