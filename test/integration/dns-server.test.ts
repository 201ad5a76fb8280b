// The resolver over real sockets, on loopback only: two "gateways" 127.0.0.2 (net front, containers 127.0.1.x)
// and 127.0.0.3 (net back, containers 127.0.2.x); fake upstreams on 127.0.0.4 and 127.0.0.5 (tiny DNS servers
// of this test); a client binds a source address to play a given container. Also the process entry
// (dist/src/dns/main.js): view file, SIGHUP reload with acknowledgement, SIGTERM.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import { promises as dnsp } from 'node:dns';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import dnsPacket from 'dns-packet';
import { Resolver } from '../../src/dns/server.js';
import type { DnsView } from '../../src/dns/answer.js';

type Reply = ReturnType<typeof dnsPacket.decode> & { rcode: string };
const GW1 = '127.0.0.2';
const GW2 = '127.0.0.3';
const UP1 = '127.0.0.4';
const UP2 = '127.0.0.5';
const DEAD = '127.0.0.6';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rport(): number {
  return 20000 + crypto.randomInt(40000);
}

function q(name: string, type = 'A', id = crypto.randomInt(65536), edns?: number): Buffer {
  return dnsPacket.encode({
    type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: type as 'A', name, class: 'IN' }],
    additionals: (edns ? [{ type: 'OPT', name: '.', udpPayloadSize: edns }] : []) as never,
  });
}

/** One UDP query from `source` (a "container" address); resolves with the raw reply or null on timeout. */
function udpRaw(server: string, port: number, msg: Buffer, source = '127.0.1.10', timeoutMs = 3000): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    const t = setTimeout(() => {
      s.close();
      resolve(null);
    }, timeoutMs);
    s.on('error', (e) => {
      clearTimeout(t);
      s.close();
      reject(e);
    });
    s.on('message', (m) => {
      clearTimeout(t);
      s.close();
      resolve(m);
    });
    s.bind(0, source, () => s.send(msg, port, server));
  });
}

async function udp(server: string, port: number, msg: Buffer, source?: string): Promise<Reply> {
  const r = await udpRaw(server, port, msg, source);
  assert.ok(r, `no UDP reply from ${server}:${port}`);
  assert.equal(r.readUInt16BE(0), msg.readUInt16BE(0), 'reply id = query id');
  return dnsPacket.decode(r) as Reply;
}

/** Several queries over one TCP connection (pipelined); resolves with the replies in arrival order. */
function tcp(server: string, port: number, msgs: Buffer[], source = '127.0.1.10'): Promise<Reply[]> {
  return new Promise((resolve, reject) => {
    const out: Reply[] = [];
    let buf = Buffer.alloc(0);
    const c = net.connect({ host: server, port, localAddress: source });
    const t = setTimeout(() => {
      c.destroy();
      reject(new Error(`TCP: ${out.length}/${msgs.length} replies`));
    }, 5000);
    c.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    c.on('connect', () => c.write(Buffer.concat(msgs.map((m) => Buffer.concat([Buffer.from([m.length >> 8, m.length & 255]), m])))));
    c.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        out.push(dnsPacket.decode(buf.subarray(2, 2 + buf.readUInt16BE(0))) as Reply);
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
      if (out.length === msgs.length) {
        clearTimeout(t);
        c.end();
        resolve(out);
      }
    });
  });
}

const ips = (r: Reply) => (r.answers ?? []).map((a) => (a as { data: string }).data);

// ------------------------------------------------------------------------------------------- fake upstreams
interface FakeUpstream {
  port: number;
  seen: Array<{ name: string; proto: 'udp' | 'tcp'; id: number }>;
  close(): Promise<void>;
}

/** A tiny authoritative server for a few names. `tag` goes in the answers so a test sees which upstream
 *  answered: example.com A -> tag. big.example: TC over UDP, 120 A records over TCP. fail.example: SERVFAIL.
 *  silent.example: no reply at all. */
async function fakeUpstream(host: string, tag: string): Promise<FakeUpstream> {
  const seen: FakeUpstream['seen'] = [];
  const reply = (msg: Buffer, proto: 'udp' | 'tcp'): Buffer | null => {
    try {
      return replyOrThrow(msg, proto);
    } catch {
      return null; // fuzzed queries the codec cannot handle: silence
    }
  };
  const replyOrThrow = (msg: Buffer, proto: 'udp' | 'tcp'): Buffer | null => {
    const p = dnsPacket.decode(msg);
    const qq = p.questions![0];
    seen.push({ name: qq.name, proto, id: p.id! });
    const base = { type: 'response' as const, id: p.id, flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE, questions: p.questions };
    const name = qq.name.toLowerCase();
    if (name === 'silent.example') return null;
    if (name === 'fail.example') return dnsPacket.encode({ ...base, flags: base.flags | 2 });
    if (name === 'big.example') {
      if (proto === 'udp') return dnsPacket.encode({ ...base, flags: base.flags | dnsPacket.TRUNCATED_RESPONSE });
      return dnsPacket.encode({
        ...base, answers: Array.from({ length: 120 }, (_, i) => ({ type: 'A' as const, name: qq.name, ttl: 60, data: `198.18.${i >> 8}.${i & 255}` })),
      });
    }
    if (qq.type === 'A') return dnsPacket.encode({ ...base, answers: [{ type: 'A', name: qq.name, ttl: 60, data: tag }] });
    if (qq.type === 'PTR') return dnsPacket.encode({ ...base, answers: [{ type: 'PTR', name: qq.name, ttl: 60, data: `ptr.${tag}.example` }] });
    return dnsPacket.encode({ ...base, flags: base.flags | 3 });
  };
  for (let attempt = 0; ; attempt++) {
    const port = rport();
    try {
      const u = dgram.createSocket('udp4');
      await new Promise<void>((res, rej) => {
        u.once('error', rej);
        u.bind(port, host, () => res());
      });
      u.on('message', (m, r) => {
        const out = reply(m, 'udp');
        if (out) u.send(out, r.port, r.address);
      });
      const conns = new Set<net.Socket>();
      const srv = net.createServer((c) => {
        conns.add(c);
        c.on('close', () => conns.delete(c));
        let buf = Buffer.alloc(0);
        c.on('error', () => {});
        c.on('data', (d) => {
          buf = Buffer.concat([buf, d]);
          while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
            const out = reply(buf.subarray(2, 2 + buf.readUInt16BE(0)), 'tcp');
            buf = buf.subarray(2 + buf.readUInt16BE(0));
            if (out) c.write(Buffer.concat([Buffer.from([out.length >> 8, out.length & 255]), out]));
          }
        });
      });
      await new Promise<void>((res, rej) => {
        srv.once('error', (e) => {
          u.close();
          rej(e);
        });
        srv.listen(port, host, () => res());
      });
      return {
        port, seen,
        close: () => new Promise((res) => {
          u.close();
          for (const c of conns) c.destroy();
          srv.close(() => res());
        }),
      };
    } catch (e) {
      if (attempt > 10) throw e;
    }
  }
}

// ------------------------------------------------------------------------------------------- the resolver
const NET1 = { id: 'f'.repeat(64), name: 'front', gateway: GW1, subnet: '127.0.1.0/24' };
const NET2 = { id: 'b'.repeat(64), name: 'back', gateway: GW2, subnet: '127.0.2.0/24' };
const cid = (n: number) => n.toString(16).padStart(64, '0');

let up1: FakeUpstream;
let up2: FakeUpstream;
let deadPort: number;
let port: number;
let resolver: Resolver;
const logs: string[] = [];
let baseView: DnsView;

before(async () => {
  up1 = await fakeUpstream(UP1, '192.0.2.1');
  up2 = await fakeUpstream(UP2, '192.0.2.2');
  deadPort = rport();
  baseView = {
    generation: 1,
    networks: [NET1, NET2],
    entries: [
      { networkId: NET1.id, names: ['web', 'www'], ip: '127.0.1.2', containerId: cid(1) },
      { networkId: NET2.id, names: ['web'], ip: '127.0.2.2', containerId: cid(1) },
      { networkId: NET2.id, names: ['db'], ip: '127.0.2.3', containerId: cid(2) },
      { networkId: NET1.id, names: ['client'], ip: '127.0.1.10', containerId: cid(3) },
      { networkId: NET1.id, names: ['special'], ip: '127.0.1.20', containerId: cid(4) },
      ...Array.from({ length: 60 }, (_, i) => ({ networkId: NET1.id, names: [`m${i}`, 'many'], ip: `127.0.1.${100 + i}`, containerId: cid(100 + i) })),
    ],
    upstreams: [`${UP1}:${up1.port}`],
    overrides: { '127.0.1.20': [`${UP2}:${up2.port}`] },
  };
  for (let attempt = 0; ; attempt++) {
    port = rport();
    resolver = new Resolver({ port, log: (m) => logs.push(m), tcpIdleMs: 400, forwardBudgetMs: 2000, rebindMs: 100 });
    await resolver.setView(baseView);
    if (resolver.addresses().length === 2) break;
    await resolver.close();
    if (attempt > 10) throw new Error(`cannot bind: ${logs.join('\n')}`);
  }
});

after(async () => {
  await resolver?.close();
  await up1?.close();
  await up2?.close();
});

test('per-network answers: the same name gives each network its own address; aliases; case', async () => {
  assert.deepEqual(ips(await udp(GW1, port, q('web'), '127.0.1.10')), ['127.0.1.2']);
  assert.deepEqual(ips(await udp(GW1, port, q('WWW.'), '127.0.1.10')), ['127.0.1.2']);
  assert.deepEqual(ips(await udp(GW2, port, q('web'), '127.0.2.9')), ['127.0.2.2']);
  assert.deepEqual(ips(await udp(GW2, port, q('db'), '127.0.2.9')), ['127.0.2.3']);
  assert.deepEqual(ips(await udp(GW1, port, q('web.front'), '127.0.1.10')), ['127.0.1.2']);
  const aaaa = await udp(GW1, port, q('web', 'AAAA'), '127.0.1.10');
  assert.equal(aaaa.rcode, 'NOERROR');
  assert.equal(aaaa.answers!.length, 0);
});

test('no leaks across networks; a multi-network container sees both; foreign askers are refused', async () => {
  const r = await udp(GW1, port, q('db'), '127.0.1.10');
  assert.equal(r.rcode, 'NXDOMAIN');
  assert.equal(r.answers!.length, 0);
  // web (127.0.1.2) is on back too: it resolves db through front's gateway, as in Docker
  assert.deepEqual(ips(await udp(GW1, port, q('db'), '127.0.1.2')), ['127.0.2.3']);
  // a back container asking front's gateway
  assert.equal((await udp(GW1, port, q('web'), '127.0.2.3')).rcode, 'REFUSED');
  // and nothing ever forwarded for these
  assert.ok(!up1.seen.some((s) => s.name === 'db' || s.name === 'web'));
});

test('PTR and NXDOMAIN', async () => {
  const p = await udp(GW1, port, q('2.1.0.127.in-addr.arpa', 'PTR'), '127.0.1.10');
  assert.deepEqual(ips(p), ['web.front']);
  const p2 = await udp(GW2, port, q('2.2.0.127.in-addr.arpa', 'PTR'), '127.0.2.3');
  assert.deepEqual(ips(p2), ['web.back']);
  assert.equal((await udp(GW1, port, q('250.1.0.127.in-addr.arpa', 'PTR'), '127.0.1.10')).rcode, 'NXDOMAIN');
  assert.equal((await udp(GW1, port, q('nosuchthing'), '127.0.1.10')).rcode, 'NXDOMAIN');
  // an address outside our subnets goes upstream
  assert.deepEqual(ips(await udp(GW1, port, q('1.2.0.192.in-addr.arpa', 'PTR'), '127.0.1.10')), ['ptr.192.0.2.1.example']);
});

test('forwarding: upstream answer relayed with the client\'s id; per-container override', async () => {
  const id = 0xbeef;
  const raw = await udpRaw(GW1, port, q('example.com', 'A', id), '127.0.1.10');
  assert.ok(raw);
  assert.equal(raw.readUInt16BE(0), id);
  const r = dnsPacket.decode(raw) as Reply;
  assert.deepEqual(ips(r), ['192.0.2.1']);
  assert.equal(r.flag_aa, false);
  const seen = up1.seen.filter((s) => s.name === 'example.com');
  assert.equal(seen.length, 1);
  assert.equal(seen[0].proto, 'udp');
  // the upstream saw a random id of ours, not the client's
  // (1 in 65536 to collide by chance: accept that)
  // override: 127.0.1.20 runs with --dns UP2
  assert.deepEqual(ips(await udp(GW1, port, q('example.com'), '127.0.1.20')), ['192.0.2.2']);
  assert.equal(up2.seen.filter((s) => s.name === 'example.com').length, 1);
  // over TCP from the client: TCP to the upstream
  const [t] = await tcp(GW1, port, [q('tcp.example.com')], '127.0.1.10');
  assert.deepEqual(ips(t), ['192.0.2.1']);
  assert.equal(up1.seen.find((s) => s.name === 'tcp.example.com')?.proto, 'tcp');
});

test('forwarding: SERVFAIL or silence moves on to the next upstream; all silent -> SERVFAIL within the budget', async () => {
  await resolver.setView({ ...baseView, upstreams: [`${DEAD}:${deadPort}`, `${UP1}:${up1.port}`] });
  const t0 = Date.now();
  assert.deepEqual(ips(await udp(GW1, port, q('next.example.com'), '127.0.1.10')), ['192.0.2.1']);
  const waited = Date.now() - t0;
  // The answer itself proves the resolver moved on within the 2 s budget.
  assert.ok(waited >= 900, `the first (dead) upstream got its share of the budget: ${waited} ms`);
  await resolver.setView({ ...baseView, upstreams: [`${UP1}:${up1.port}`, `${UP2}:${up2.port}`] });
  assert.deepEqual(ips(await udp(GW1, port, q('fail.example'), '127.0.1.10')), []);
  assert.ok(up2.seen.some((s) => s.name === 'fail.example'), 'SERVFAIL from the first upstream: asked the second');
  const t1 = Date.now();
  const s = await udp(GW1, port, q('silent.example'), '127.0.1.10');
  assert.equal(s.rcode, 'SERVFAIL');
  const took = Date.now() - t1;
  assert.ok(took >= 1900 && took < 4000, `SERVFAIL after the 2 s budget: ${took} ms`);
  await resolver.setView(baseView);
});

test('TCP fallback: truncated upstream answer fetched over TCP; too big for the client -> TC; client retries over TCP', async () => {
  const r = await udp(GW1, port, q('big.example'), '127.0.1.10');
  assert.equal(r.flag_tc, true, 'the 120 records do not fit in 512 bytes: client told to use TCP');
  const big = up1.seen.filter((s) => s.name === 'big.example');
  assert.deepEqual(big.map((s) => s.proto), ['udp', 'tcp'], 'resolver retried the upstream over TCP');
  // with a big EDNS buffer the client gets it all over UDP
  const e = await udp(GW1, port, q('big.example', 'A', 7, 4096), '127.0.1.10');
  assert.equal(e.flag_tc, false);
  assert.equal(e.answers!.length, 120);
  const [t] = await tcp(GW1, port, [q('big.example')], '127.0.1.10');
  assert.equal(t.flag_tc, false);
  assert.equal(t.answers!.length, 120);
  // our own big answer: 60 containers share the alias "many"
  const m = await udp(GW1, port, q('many'), '127.0.1.10');
  assert.equal(m.flag_tc, true);
  assert.ok(m.answers!.length > 0 && m.answers!.length < 60, `partial: ${m.answers!.length}`);
  const [mt] = await tcp(GW1, port, [q('many')], '127.0.1.10');
  assert.equal(mt.flag_tc, false);
  assert.equal(mt.answers!.length, 60);
});

test('TCP: several queries on one connection, answered in any order; idle connections closed', async () => {
  const msgs = [q('web', 'A', 1), q('www', 'A', 2), q('nosuch', 'A', 3), q('example.com', 'A', 4), q('m5', 'A', 5)];
  const rs = await tcp(GW1, port, msgs, '127.0.1.10');
  const byId = new Map(rs.map((r) => [r.id, r]));
  assert.deepEqual(ips(byId.get(1)!), ['127.0.1.2']);
  assert.deepEqual(ips(byId.get(2)!), ['127.0.1.2']);
  assert.equal(byId.get(3)!.rcode, 'NXDOMAIN');
  assert.deepEqual(ips(byId.get(4)!), ['192.0.2.1']);
  assert.deepEqual(ips(byId.get(5)!), ['127.0.1.105']);
  // idle: the server closes a silent connection (tcpIdleMs 400 here)
  const closedAfter = await new Promise<number>((resolve, reject) => {
    const t0 = Date.now();
    const c = net.connect({ host: GW1, port, localAddress: '127.0.1.10' });
    c.on('error', reject);
    c.on('close', () => resolve(Date.now() - t0));
    setTimeout(() => {
      c.destroy();
      reject(new Error('idle connection not closed'));
    }, 3000);
  });
  assert.ok(closedAfter >= 300 && closedAfter < 2500, `${closedAfter} ms`);
});

test('setView: new and removed names, networks and addresses take effect at once', async () => {
  assert.equal((await udp(GW1, port, q('newbie'), '127.0.1.10')).rcode, 'NXDOMAIN');
  const NET3 = { id: 'c'.repeat(64), name: 'third', gateway: '127.0.0.7', subnet: '127.0.3.0/24' };
  const v2: DnsView = {
    ...baseView,
    generation: 2,
    networks: [NET1, NET3], // back removed, third added
    entries: [
      ...baseView.entries.filter((e) => e.networkId === NET1.id && e.names[0] !== 'web'),
      { networkId: NET1.id, names: ['newbie'], ip: '127.0.1.30', containerId: cid(30) },
      { networkId: NET1.id, names: ['web'], ip: '127.0.1.31', containerId: cid(31) }, // web recreated, new address
      { networkId: NET3.id, names: ['third-one'], ip: '127.0.3.2', containerId: cid(32) },
    ],
  };
  await resolver.setView(v2);
  assert.deepEqual(ips(await udp(GW1, port, q('newbie'), '127.0.1.10')), ['127.0.1.30']);
  assert.deepEqual(ips(await udp(GW1, port, q('web'), '127.0.1.10')), ['127.0.1.31']);
  assert.deepEqual(ips(await udp('127.0.0.7', port, q('third-one'), '127.0.3.9')), ['127.0.3.2']);
  assert.equal((await udp('127.0.0.7', port, q('newbie'), '127.0.3.9')).rcode, 'NXDOMAIN');
  assert.deepEqual(resolver.addresses().sort(), [GW1, '127.0.0.7']);
  // back's address is no longer served
  assert.equal(await udpRaw(GW2, port, q('db'), '127.0.2.9', 500), null);
  await assert.rejects(tcp(GW2, port, [q('db')], '127.0.2.9'), /ECONNREFUSED/);
  await resolver.setView(baseView);
  assert.deepEqual(resolver.addresses().sort(), [GW1, GW2]);
  assert.deepEqual(ips(await udp(GW2, port, q('db'), '127.0.2.9')), ['127.0.2.3']);
  assert.equal((await udp(GW1, port, q('newbie'), '127.0.1.10')).rcode, 'NXDOMAIN');
});

test('setView: an address that cannot be bound yet is retried until it can; rapid setViews apply in order', async () => {
  const NET9 = { id: '9'.repeat(64), name: 'late', gateway: '127.0.0.9', subnet: '127.0.9.0/24' };
  // Something else holds 127.0.0.9:port (as a gateway address that is not there yet would fail).
  const blocker = dgram.createSocket('udp4');
  await new Promise<void>((r) => blocker.bind(port, '127.0.0.9', () => r()));
  const nlogs = logs.length;
  await resolver.setView({
    ...baseView, networks: [NET1, NET2, NET9],
    entries: [...baseView.entries, { networkId: NET9.id, names: ['late-one'], ip: '127.0.9.2', containerId: cid(90) }],
  });
  assert.ok(!resolver.addresses().includes('127.0.0.9'));
  assert.match(logs.slice(nlogs).join('\n'), /cannot listen on 127\.0\.0\.9:\d+ \(udp: .*EADDRINUSE.*\); retrying/);
  // the other networks are not held up
  assert.deepEqual(ips(await udp(GW1, port, q('web'), '127.0.1.10')), ['127.0.1.2']);
  await new Promise<void>((r) => blocker.close(() => r()));
  for (let i = 0; i < 50 && !resolver.addresses().includes('127.0.0.9'); i++) await sleep(50);
  assert.deepEqual(ips(await udp('127.0.0.9', port, q('late-one'), '127.0.9.5')), ['127.0.9.2']);
  assert.match(logs.slice(nlogs).join('\n'), /listening on 127\.0\.0\.9:\d+ after \d+ failed attempts/);
  // many views in a row, not awaited one by one: they apply in order, the last one wins
  const all: Promise<void>[] = [];
  for (let i = 0; i < 20; i++) {
    all.push(resolver.setView({
      ...baseView, generation: 100 + i,
      entries: [...baseView.entries, { networkId: NET1.id, names: ['counter'], ip: `127.0.1.${200 + i}`, containerId: cid(200) }],
    }));
  }
  await Promise.all(all);
  assert.deepEqual(ips(await udp(GW1, port, q('counter'), '127.0.1.10')), ['127.0.1.219']);
  assert.equal(resolver.stats().generation, 119);
  await resolver.setView(baseView);
  assert.deepEqual(resolver.addresses().sort(), [GW1, GW2]);
});

test('a real client (c-ares, node:dns Resolver) resolves names, forwards and PTR', async () => {
  const r = new dnsp.Resolver({ timeout: 2000, tries: 1 });
  r.setServers([`${GW1}:${port}`]);
  r.setLocalAddress('127.0.1.10');
  assert.deepEqual(await r.resolve4('web'), ['127.0.1.2']);
  assert.deepEqual(await r.resolve4('WWW.front'), ['127.0.1.2']);
  assert.deepEqual(await r.resolve4('example.com'), ['192.0.2.1']);
  assert.deepEqual(await r.reverse('127.0.1.2'), ['web.front']);
  assert.deepEqual((await r.resolve4('many')).length, 60, 'c-ares retried over TCP after TC');
  await assert.rejects(r.resolve4('db'), (e: NodeJS.ErrnoException) => e.code === 'ENOTFOUND');
  await assert.rejects(r.resolve6('web'), (e: NodeJS.ErrnoException) => e.code === 'ENODATA');
});

test('fuzz: thousands of random and truncated packets (UDP and TCP); the server keeps answering, no error, no leak', async () => {
  const seeds = [q('web'), q('example.com', 'A', 1, 1232), q('2.1.0.127.in-addr.arpa', 'PTR'), q('many', 'ANY')];
  const before = resolver.stats();
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.1.10', () => r()));
  let sent = 0;
  for (let i = 0; i < 6000; i++) {
    let m: Buffer;
    if (i % 3 === 0) m = crypto.randomBytes(crypto.randomInt(0, 100));
    else {
      m = Buffer.from(seeds[i % seeds.length]);
      for (let f = 0; f < 1 + (i % 4); f++) m[crypto.randomInt(m.length)] = crypto.randomInt(256);
      if (i % 3 === 2) m = m.subarray(0, crypto.randomInt(m.length));
    }
    sock.send(m, port, i % 2 ? GW1 : GW2);
    sent++;
    if (i % 200 === 0) await sleep(5);
  }
  // TCP garbage: random bytes, absurd lengths, half frames, and connections dropped mid-frame
  for (let i = 0; i < 60; i++) {
    await new Promise<void>((resolve) => {
      const c = net.connect({ host: GW1, port, localAddress: '127.0.1.10' });
      c.on('error', () => resolve());
      c.on('close', () => resolve());
      c.on('connect', () => {
        const kind = i % 4;
        if (kind === 0) c.write(crypto.randomBytes(crypto.randomInt(1, 300)));
        else if (kind === 1) c.write(Buffer.from([0xff, 0xff, 1, 2, 3]));
        else if (kind === 2) c.write(Buffer.from([0, 5, 1, 2, 3, 4, 5]));
        else c.write(Buffer.concat([Buffer.from([0, 40]), q('web').subarray(0, 10)]));
        setTimeout(() => c.destroy(), kind === 3 ? 0 : 20);
      });
    });
  }
  sock.close();
  await sleep(300);
  assert.deepEqual(ips(await udp(GW1, port, q('web'), '127.0.1.10')), ['127.0.1.2']);
  assert.deepEqual(ips(await udp(GW2, port, q('db'), '127.0.2.9')), ['127.0.2.3']);
  const [t] = await tcp(GW1, port, [q('www')], '127.0.1.10');
  assert.deepEqual(ips(t), ['127.0.1.2']);
  const st = resolver.stats();
  assert.equal(st.errors, 0, `no handler errors: ${logs.join('\n')}`);
  assert.ok(st.udpQueries - before.udpQueries >= sent * 0.9, `received most of the ${sent} packets (${st.udpQueries - before.udpQueries})`);
  assert.ok(st.dropped > before.dropped, 'some dropped');
  assert.ok(st.replies.formerr > before.replies.formerr, 'some FORMERR');
  // no TCP connection left behind, no forwards stuck
  await sleep(2500);
  assert.equal(resolver.stats().forwarder.inflight, 0);
  assert.equal((resolver as unknown as { listeners: Map<string, { conns: Set<unknown> }> }).listeners.get(GW1)!.conns.size, 0);
});

test('load: 20000 queries from 4 sources, all answered correctly', async () => {
  const socks = await Promise.all(['127.0.1.10', '127.0.1.11', '127.0.1.12', '127.0.1.13'].map((src) => new Promise<dgram.Socket>((r) => {
    const s = dgram.createSocket('udp4');
    s.bind(0, src, () => r(s));
  })));
  let ok = 0;
  let bad = 0;
  const N = 5000;
  const t0 = Date.now();
  await Promise.all(socks.map((s) => new Promise<void>((resolve) => {
    let got = 0;
    let next = 0;
    const send = () => {
      const i = next++;
      s.send(q(`m${i % 60}`, 'A', i), port, GW1);
    };
    s.on('message', (m) => {
      const r = dnsPacket.decode(m) as Reply;
      if (ips(r)[0] === `127.0.1.${100 + (r.id! % 60)}`) ok++;
      else bad++;
      if (++got === N) resolve();
      else if (next < N) send();
    });
    for (let i = 0; i < 64; i++) send();
    setTimeout(resolve, 10000);
  })));
  for (const s of socks) s.close();
  assert.equal(bad, 0);
  assert.equal(ok, 4 * N, `answered ${ok}/${4 * N} in ${Date.now() - t0} ms`);
});

// ------------------------------------------------------------------------------------------- process entry
test('process entry: --view, --pidfile, SIGHUP reload with acknowledgement, bad view kept out, SIGTERM', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-dns-test-'));
  const viewFile = path.join(dir, 'view.json');
  const pidFile = path.join(dir, 'pid');
  const main = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../src/dns/main.js');
  const p2 = rport();
  const NETP = { id: 'e'.repeat(64), name: 'procnet', gateway: '127.0.0.8', subnet: '127.0.4.0/24' };
  const write = (v: DnsView) => fs.writeFileSync(viewFile, JSON.stringify(v));
  write({ generation: 5, networks: [NETP], entries: [{ networkId: NETP.id, names: ['one'], ip: '127.0.4.2', containerId: cid(1) }], upstreams: [] });
  const child = spawn(process.execPath, [main, '--view', viewFile, '--port', String(p2), '--pidfile', pidFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const loaded = async (gen: number) => {
    for (let i = 0; i < 200; i++) {
      try {
        if (Number(fs.readFileSync(viewFile + '.loaded', 'utf8')) >= gen) return;
      } catch { /* not yet */ }
      await sleep(25);
    }
    throw new Error(`generation ${gen} not acknowledged; stderr: ${stderr}`);
  };
  try {
    await loaded(5);
    assert.equal(fs.readFileSync(pidFile, 'utf8').trim(), String(child.pid));
    assert.deepEqual(ips(await udp('127.0.0.8', p2, q('one'), '127.0.4.9')), ['127.0.4.2']);
    assert.equal((await udp('127.0.0.8', p2, q('two'), '127.0.4.9')).rcode, 'NXDOMAIN');
    write({ generation: 6, networks: [NETP], entries: [{ networkId: NETP.id, names: ['two'], ip: '127.0.4.3', containerId: cid(2) }], upstreams: [] });
    child.kill('SIGHUP');
    await loaded(6);
    assert.deepEqual(ips(await udp('127.0.0.8', p2, q('two'), '127.0.4.9')), ['127.0.4.3']);
    assert.equal((await udp('127.0.0.8', p2, q('one'), '127.0.4.9')).rcode, 'NXDOMAIN');
    // a broken view file: logged, not acknowledged, the previous view kept
    fs.writeFileSync(viewFile, '{"generation": 7, "networks": [');
    child.kill('SIGHUP');
    await sleep(300);
    assert.equal(Number(fs.readFileSync(viewFile + '.loaded', 'utf8')), 6);
    assert.deepEqual(ips(await udp('127.0.0.8', p2, q('two'), '127.0.4.9')), ['127.0.4.3']);
    assert.match(stderr, /reload failed, keeping the previous view: .*invalid JSON/);
    assert.equal(stderr.trim().split('\n').length, 1, `one line per error: ${stderr}`);
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.ok(!fs.existsSync(pidFile), 'pid file removed');
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('process entry: exits by itself when its view file (state directory) is removed', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-dns-test-'));
  const viewFile = path.join(dir, 'view.json');
  const main = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../src/dns/main.js');
  const NETP = { id: 'e'.repeat(64), name: 'procnet', gateway: '127.0.0.8', subnet: '127.0.4.0/24' };
  fs.writeFileSync(viewFile, JSON.stringify({ generation: 1, networks: [NETP], entries: [], upstreams: [] }));
  const child = spawn(process.execPath, [main, '--view', viewFile, '--port', String(rport())], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  try {
    for (let i = 0; i < 200 && !fs.existsSync(viewFile + '.loaded'); i++) await sleep(25);
    assert.ok(fs.existsSync(viewFile + '.loaded'), stderr);
    fs.rmSync(dir, { recursive: true, force: true });
    const code = await Promise.race([exited, sleep(6000).then(() => 'still running')]);
    assert.equal(code, 0, stderr);
    assert.match(stderr, /view file .* is gone; exiting/);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('process entry: an unreadable view at start exits 1 with one line on stderr', async () => {
  const main = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../src/dns/main.js');
  const child = spawn(process.execPath, [main, '--view', '/nonexistent/view.json', '--port', String(rport())], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  assert.equal(code, 1);
  assert.match(stderr, /cannot load the view: .*ENOENT/);
  assert.equal(stderr.trim().split('\n').length, 1);
});
