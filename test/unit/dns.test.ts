// Unit tests of the resolver's pure core: answer(), the wire parser, the view index, upstream and resolv.conf
// parsing. dns-packet (an independent codec) builds the queries and checks our hand-written replies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import dnsPacket from 'dns-packet';
import { answer, applyDelta, indexView, nameKey, parseUpstream, replaceUpstreams, upstreamsFor, type DnsView, type IndexedView } from '../../src/dns/answer.js';
import { validateView } from '../../src/dns/load.js';
import { parseResolvConf, renderResolvConf } from '../../src/dns/resolvconf.js';
import { encodeName, newParsedQuery, parseQuery, PARSE_DROP, PARSE_FORMERR, PARSE_NOTIMP, PARSE_OK } from '../../src/dns/wire.js';

const A = 'a'.repeat(64); // container ids
const B = 'b'.repeat(64);
const C = 'c'.repeat(64);
const D = 'd'.repeat(64);

const VIEW: DnsView = {
  generation: 7,
  networks: [
    { id: 'n1', name: 'front', gateway: '10.1.0.1', subnet: '10.1.0.0/24' },
    { id: 'n2', name: 'back', gateway: '10.2.0.1', subnet: '10.2.0.0/24' },
    { id: 'n3', name: 'Sealed', gateway: '10.3.0.1', subnet: '10.3.0.0/24', internal: true },
  ],
  entries: [
    // web is on front and back; db only on back; api only on front; cache on the internal network.
    { networkId: 'n1', names: ['web', 'WWW', 'site.example'], ip: '10.1.0.2', containerId: A },
    { networkId: 'n2', names: ['web'], ip: '10.2.0.2', containerId: A },
    { networkId: 'n2', names: ['db', 'pg'], ip: '10.2.0.3', containerId: B },
    { networkId: 'n1', names: ['api', 'svc'], ip: '10.1.0.4', containerId: C },
    { networkId: 'n2', names: ['worker', 'svc'], ip: '10.2.0.5', containerId: D },
    { networkId: 'n2', names: ['worker2', 'svc'], ip: '10.2.0.6', containerId: D.replace(/d/g, 'e') },
    { networkId: 'n3', names: ['cache'], ip: '10.3.0.2', containerId: D.replace(/d/g, 'f') },
  ],
  upstreams: ['192.0.2.53'],
  overrides: { '10.1.0.4': ['198.51.100.7:5353'] },
};

type Q = { name: string; type?: string; id?: number; edns?: number; ednsVersion?: number; dnssecOk?: boolean; cls?: string };

function query(q: Q): Buffer {
  const additionals = q.edns
    ? [{ type: 'OPT', name: '.', udpPayloadSize: q.edns, extendedRcode: 0, ednsVersion: q.ednsVersion ?? 0, flags: q.dnssecOk ? dnsPacket.DNSSEC_OK : 0, options: [] }]
    : [];
  return dnsPacket.encode({
    type: 'query', id: q.id ?? 4242, flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type: (q.type ?? 'A') as 'A', name: q.name, class: (q.cls ?? 'IN') as 'IN' }],
    additionals: additionals as never,
  });
}

type Reply = ReturnType<typeof dnsPacket.decode> & { rcode: string };
function decode(b: Buffer | 'forward' | null, label: string): Reply {
  assert.ok(Buffer.isBuffer(b), `${label}: expected a reply, got ${String(b)}`);
  return dnsPacket.decode(b as Buffer) as Reply;
}
const dec = (b: Buffer) => dnsPacket.decode(b) as Reply;

const view = indexView(VIEW);

function ask(net: string, asker: string, q: Q, tcp = false): Buffer | 'forward' | null {
  return answer(view, net, query(q), asker, tcp);
}

test('names resolve on the network the query arrived on, with aliases, any case, trailing dot, name.network, short id', () => {
  // [network, asker, qname, expected addresses]
  const cases: Array<[string, string, string, string[]]> = [
    ['n1', '10.1.0.4', 'web', ['10.1.0.2']],
    ['n1', '10.1.0.4', 'WeB', ['10.1.0.2']],
    ['n1', '10.1.0.4', 'web.', ['10.1.0.2']],
    ['n1', '10.1.0.4', 'www', ['10.1.0.2']], // alias given as WWW
    ['n1', '10.1.0.4', 'site.example', ['10.1.0.2']], // a dotted alias is a local name, not forwarded
    ['n1', '10.1.0.4', 'web.front', ['10.1.0.2']], // Docker's name.network
    ['n1', '10.1.0.4', 'WEB.FRONT.', ['10.1.0.2']],
    ['n1', '10.1.0.4', 'aaaaaaaaaaaa', ['10.1.0.2']], // the short container id (Docker's DNSNames)
    ['n2', '10.2.0.3', 'web', ['10.2.0.2']], // same container, other network: that network's address
    ['n2', '10.2.0.3', 'db', ['10.2.0.3']],
    ['n2', '10.2.0.1', 'pg', ['10.2.0.3']], // the host itself, from the gateway address
    ['n1', '10.1.0.2', 'db', ['10.2.0.3']], // web is also on back: it sees back's names through front's gateway
    ['n1', '10.1.0.2', 'db.back', ['10.2.0.3']],
    ['n1', '10.1.0.2', 'web', ['10.1.0.2']], // ... but the arriving network's answer wins
    ['n2', '10.2.0.2', 'api', ['10.1.0.4']], // and the other way round
    ['n3', '10.3.0.9', 'cache.sealed', ['10.3.0.2']], // network names are case-insensitive too
  ];
  for (const [net, asker, name, want] of cases) {
    const label = `${name} asked by ${asker} on ${net}`;
    const r = decode(ask(net, asker, { name }), label);
    assert.equal(r.rcode, 'NOERROR', label);
    assert.equal(r.id, 4242, label);
    assert.equal(r.flag_aa, true, label);
    assert.equal(r.flag_rd, true, label);
    assert.equal(r.flag_ra, true, label);
    assert.deepEqual(r.questions, [{ name: name.replace(/\.$/, ''), type: 'A', class: 'IN' }], `${label}: question copied, case kept`);
    assert.deepEqual(r.answers?.map((a) => (a as { data: string }).data), want, label);
    for (const a of r.answers ?? []) {
      assert.equal((a as { ttl: number }).ttl, 5, label);
      assert.equal(a.name, name.replace(/\.$/, ''), label);
    }
  }
});

test('names never leak across networks', () => {
  const cases: Array<[string, string, string]> = [
    ['n1', '10.1.0.4', 'db'], // db is only on back; api is only on front
    ['n1', '10.1.0.4', 'pg'],
    ['n1', '10.1.0.4', 'cache'],
    ['n2', '10.2.0.3', 'api'],
    ['n2', '10.2.0.3', 'cccccccccccc'],
    ['n1', '10.1.0.1', 'db'], // the host on front's gateway sees front only
    ['n1', '10.1.0.99', 'db'], // an unknown address on front
  ];
  for (const [net, asker, name] of cases) {
    const r = decode(ask(net, asker, { name }), `${name} from ${asker}`);
    assert.equal(r.rcode, 'NXDOMAIN', `${name} from ${asker}`);
    assert.equal(r.answers?.length, 0);
  }
  // name.network of a network the asker is not on: never answered from the other network, and never asked of
  // the upstreams either (an internal name); NXDOMAIN as for a name that does not exist. A name under a
  // network's name that no container has is an ordinary name: forwarded.
  const other = decode(ask('n1', '10.1.0.4', { name: 'db.back' }), 'db.back');
  assert.equal(other.rcode, 'NXDOMAIN');
  assert.equal(other.answers?.length, 0);
  assert.equal(ask('n1', '10.1.0.4', { name: 'nosuch.back' }), 'forward');
  // A container of another network reaching this gateway is refused outright.
  const r = decode(ask('n1', '10.2.0.3', { name: 'web' }), 'foreign asker');
  assert.equal(r.rcode, 'REFUSED');
  assert.equal(r.answers?.length, 0);
  // Unknown network id (not ours): dropped.
  assert.equal(ask('nx', '10.1.0.4', { name: 'web' }), null);
});

test('record types: AAAA and others of a known name are NODATA; ANY gives the A records', () => {
  for (const type of ['AAAA', 'MX', 'TXT', 'SRV', 'CNAME', 'NS', 'SOA', 'HTTPS']) {
    const r = decode(ask('n1', '10.1.0.4', { name: 'web', type }), type);
    assert.equal(r.rcode, 'NOERROR', type);
    assert.equal(r.answers?.length, 0, type);
    assert.equal(r.flag_aa, true, type);
  }
  const any = decode(ask('n1', '10.1.0.4', { name: 'web', type: 'ANY' }), 'ANY');
  assert.deepEqual(any.answers?.map((a) => [a.type, (a as { data: string }).data]), [['A', '10.1.0.2']]);
  // Unknown single-label AAAA: NXDOMAIN as for A.
  assert.equal(decode(ask('n1', '10.1.0.4', { name: 'nosuch', type: 'AAAA' }), 'x').rcode, 'NXDOMAIN');
});

test('PTR for container addresses of the asker\'s networks; NXDOMAIN inside any of our subnets; forward elsewhere', () => {
  const cases: Array<[string, string, string, string, string | null]> = [
    // [net, asker, address, rcode, ptr]
    ['n1', '10.1.0.4', '10.1.0.2', 'NOERROR', 'web.front'],
    ['n1', '10.1.0.4', '10.1.0.4', 'NOERROR', 'api.front'],
    ['n2', '10.2.0.3', '10.2.0.2', 'NOERROR', 'web.back'],
    ['n1', '10.1.0.2', '10.2.0.3', 'NOERROR', 'db.back'], // web is on back too
    ['n1', '10.1.0.4', '10.1.0.77', 'NXDOMAIN', null], // in front's subnet, nobody there
    ['n1', '10.1.0.4', '10.2.0.3', 'NXDOMAIN', null], // back is not api's network: not answered, not forwarded
    ['n1', '10.1.0.4', '10.2.0.200', 'NXDOMAIN', null], // ... whether or not a container holds the address
    ['n1', '10.1.0.4', '10.3.0.2', 'NXDOMAIN', null], // the internal network's too
    ['n1', '10.1.0.4', '192.0.2.1', 'forward', null], // not ours: the upstreams'
  ];
  for (const [net, asker, addr, rcode, ptr] of cases) {
    const name = addr.split('.').reverse().join('.') + '.in-addr.arpa';
    const out = ask(net, asker, { name, type: 'PTR' });
    if (rcode === 'forward') {
      assert.equal(out, 'forward', name);
      continue;
    }
    const r = decode(out, name);
    assert.equal(r.rcode, rcode, name);
    assert.deepEqual(r.answers?.map((a) => (a as { data: string }).data), ptr ? [ptr] : [], name);
  }
  // PTR name asked with another type: NODATA.
  const r = decode(ask('n1', '10.1.0.4', { name: '2.0.1.10.in-addr.arpa', type: 'A' }), 'A of a PTR name');
  assert.equal(r.rcode, 'NOERROR');
  assert.equal(r.answers?.length, 0);
  // Malformed reverse names are just names: forwarded.
  for (const name of ['02.0.1.10.in-addr.arpa', '256.0.1.10.in-addr.arpa', '0.1.10.in-addr.arpa', 'x.0.1.10.in-addr.arpa']) {
    assert.equal(ask('n1', '10.1.0.4', { name, type: 'PTR' }), 'forward', name);
  }
});

test('unknown names: single label NXDOMAIN, the rest forwarded (override first), internal refused, no upstreams SERVFAIL', () => {
  assert.equal(decode(ask('n1', '10.1.0.4', { name: 'nosuch' }), 'single').rcode, 'NXDOMAIN');
  assert.equal(decode(ask('n1', '10.1.0.4', { name: 'nosuch.' }), 'single.').rcode, 'NXDOMAIN');
  assert.equal(ask('n1', '10.1.0.4', { name: 'example.com' }), 'forward');
  assert.equal(ask('n1', '10.1.0.4', { name: 'web.example.com' }), 'forward');
  assert.equal(ask('n1', '10.1.0.4', { name: 'version.bind', type: 'TXT', cls: 'CH' }), 'forward');
  assert.equal(ask('n1', '10.1.0.4', { name: '.', type: 'NS' }), 'forward'); // root priming
  // internal network: never forwarded
  const r = decode(ask('n3', '10.3.0.2', { name: 'example.com' }), 'internal');
  assert.equal(r.rcode, 'REFUSED');
  // no upstreams at all: SERVFAIL, except for a container with its own --dns
  const bare = indexView({ ...VIEW, upstreams: [] });
  const q = query({ name: 'example.com' });
  assert.equal(dec(answer(bare, 'n1', q, '10.1.0.2') as Buffer).rcode, 'SERVFAIL');
  assert.equal(answer(bare, 'n1', q, '10.1.0.4'), 'forward');
  assert.deepEqual(bare.overrides.get('10.1.0.4')?.map((u) => [u.host, u.port]), [['198.51.100.7', 5353]]);
});

test('several containers under one alias: all addresses, rotated by query id (round robin)', () => {
  const firsts = new Set<string>();
  for (let id = 0; id < 6; id++) {
    const r = decode(ask('n2', '10.2.0.3', { name: 'svc', id }), `svc id ${id}`);
    const ips = r.answers!.map((a) => (a as { data: string }).data);
    assert.deepEqual([...ips].sort(), ['10.2.0.5', '10.2.0.6']);
    firsts.add(ips[0]);
  }
  assert.equal(firsts.size, 2, 'both addresses come first sometimes');
  // front's svc is api only
  assert.deepEqual(decode(ask('n1', '10.1.0.4', { name: 'svc' }), 'x').answers!.map((a) => (a as { data: string }).data), ['10.1.0.4']);
});

test('large answers: TC with as many records as fit in 512 (or the EDNS size, at most 1232); all of them over TCP', () => {
  const entries = Array.from({ length: 100 }, (_, i) => ({ networkId: 'n1', names: [`m${i}`, 'many'], ip: `10.1.0.${i + 10}`, containerId: `${i}`.padStart(64, '0') }));
  const big = indexView({ ...VIEW, entries });
  const run = (edns: number | undefined, tcp: boolean) => {
    const out = answer(big, 'n1', query({ name: 'many', edns }), '10.1.0.10', tcp) as Buffer;
    return { len: out.length, r: dec(out) };
  };
  const plain = run(undefined, false);
  assert.equal(plain.r.flag_tc, true);
  assert.ok(plain.len <= 512, `${plain.len} <= 512`);
  assert.equal(plain.r.answers!.length, Math.floor((512 - 12 - 10) / 16));
  const e4096 = run(4096, false);
  assert.equal(e4096.r.flag_tc, true);
  assert.ok(e4096.len <= 1232 && e4096.len > 1200, `${e4096.len}`);
  const e2000Fits = run(2000, true);
  assert.equal(e2000Fits.r.flag_tc, false);
  assert.equal(e2000Fits.r.answers!.length, 100);
  const tcp = run(undefined, true);
  assert.equal(tcp.r.flag_tc, false);
  assert.equal(tcp.r.answers!.length, 100);
  assert.deepEqual(new Set(tcp.r.answers!.map((a) => (a as { data: string }).data)), new Set(entries.map((e) => e.ip)));
});

test('EDNS: OPT echoed with our size and the DO bit; unknown version BADVERS; two OPTs FORMERR', () => {
  const r = decode(ask('n1', '10.1.0.4', { name: 'web', edns: 1232, dnssecOk: true }), 'edns');
  assert.equal(r.answers!.length, 1);
  const opt = r.additionals!.find((a) => a.type === 'OPT') as unknown as { udpPayloadSize: number; flags: number; ednsVersion: number };
  assert.ok(opt, 'OPT in reply');
  assert.equal(opt.udpPayloadSize, 1232);
  assert.equal(opt.ednsVersion, 0);
  assert.equal(opt.flags & dnsPacket.DNSSEC_OK, dnsPacket.DNSSEC_OK);
  // NXDOMAIN carries the OPT too
  const nx = decode(ask('n1', '10.1.0.4', { name: 'nosuch', edns: 1232 }), 'edns nx');
  assert.equal(nx.rcode, 'NXDOMAIN');
  assert.equal(nx.additionals!.length, 1);
  // version 1 -> BADVERS (extended rcode 1 in the OPT, header rcode 0)
  const bv = ask('n1', '10.1.0.4', { name: 'web', edns: 1232, ednsVersion: 1 }) as Buffer;
  const d = dnsPacket.decode(bv);
  assert.equal(d.answers!.length, 0);
  assert.equal(bv[3] & 15, 0);
  assert.equal((d.additionals![0] as unknown as { extendedRcode: number }).extendedRcode, 1);
  // two OPT records
  const two = dnsPacket.encode({
    type: 'query', id: 9, questions: [{ type: 'A', name: 'web' }],
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232 }, { type: 'OPT', name: '.', udpPayloadSize: 1232 }] as never,
  });
  assert.equal(dec(answer(view, 'n1', two, '10.1.0.4') as Buffer).rcode, 'FORMERR');
});

/** A raw 12-byte header. */
function header(id: number, flags: number, qd: number, an = 0, ns = 0, ar = 0): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(id, 0);
  b.writeUInt16BE(flags, 2);
  b.writeUInt16BE(qd, 4);
  b.writeUInt16BE(an, 6);
  b.writeUInt16BE(ns, 8);
  b.writeUInt16BE(ar, 10);
  return b;
}

test('malformed input: dropped when the header is unusable, FORMERR/NOTIMP when it is readable', () => {
  const good = query({ name: 'web', id: 0x1234 });
  const cases: Array<[string, Buffer, 'drop' | 'FORMERR' | 'NOTIMP']> = [
    ['empty', Buffer.alloc(0), 'drop'],
    ['11 bytes', good.subarray(0, 11), 'drop'],
    ['a response (QR set)', Buffer.concat([header(1, 0x8180, 1), good.subarray(12)]), 'drop'],
    ['header only', good.subarray(0, 12), 'FORMERR'],
    ['question cut in the name', good.subarray(0, 14), 'FORMERR'],
    ['question cut before type/class', good.subarray(0, good.length - 2), 'FORMERR'],
    ['no question', header(5, 0x0100, 0), 'FORMERR'],
    ['two questions', Buffer.concat([header(5, 0x0100, 2), good.subarray(12), good.subarray(12)]), 'FORMERR'],
    ['compression pointer in the question', Buffer.concat([header(5, 0x0100, 1), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])]), 'FORMERR'],
    ['label of 64', Buffer.concat([header(5, 0x0100, 1), Buffer.from([64]), Buffer.alloc(64, 0x61), Buffer.from([0, 0, 1, 0, 1])]), 'FORMERR'],
    ['name over 255', Buffer.concat([header(5, 0x0100, 1), ...Array.from({ length: 5 }, () => Buffer.concat([Buffer.from([60]), Buffer.alloc(60, 0x61)])), Buffer.from([0, 0, 1, 0, 1])]), 'FORMERR'],
    ['additional count without records', Buffer.concat([header(5, 0x0100, 1, 0, 0, 1), good.subarray(12)]), 'FORMERR'],
    ['answer record cut short', Buffer.concat([header(5, 0x0100, 1, 1), good.subarray(12), Buffer.from([0xc0, 0x0c, 0, 1])]), 'FORMERR'],
    ['opcode STATUS', Buffer.concat([header(5, 0x1000, 1), good.subarray(12)]), 'NOTIMP'],
    ['opcode UPDATE', Buffer.concat([header(5, 0x2800, 1), good.subarray(12)]), 'NOTIMP'],
  ];
  for (const [label, msg, want] of cases) {
    const out = answer(view, 'n1', msg, '10.1.0.4');
    if (want === 'drop') {
      assert.equal(out, null, label);
      continue;
    }
    const r = decode(out, label);
    assert.equal(r.rcode, want, label);
    assert.equal(r.id, msg.readUInt16BE(0), label);
    assert.equal(r.type, 'response', label);
  }
  // Records besides the question (an answer section in a query): tolerated, the question is answered.
  const withAn = Buffer.concat([header(0x77, 0x0100, 1, 1), good.subarray(12), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 1, 2, 3, 4])]);
  assert.deepEqual(decode(answer(view, 'n1', withAn, '10.1.0.4'), 'with an').answers!.map((a) => (a as { data: string }).data), ['10.1.0.2']);
  // Bytes that are not printable ASCII, or a dot inside a label, can never be a container name.
  const odd = Buffer.concat([header(6, 0x0100, 1), Buffer.from([3, 0x77, 0x2e, 0x62]), Buffer.from([0, 0, 1, 0, 1])]);
  assert.equal(decode(answer(view, 'n1', odd, '10.1.0.4'), 'dot in label').rcode, 'NXDOMAIN');
  const odd2 = Buffer.concat([header(6, 0x0100, 1), Buffer.from([3, 0x77, 0x65, 0x62, 3, 0xff, 0x2e, 0x00]), Buffer.from([0, 0, 1, 0, 1])]);
  assert.equal(answer(view, 'n1', odd2, '10.1.0.4'), 'forward');
});

test('parseQuery: fields, and its result codes', () => {
  const q = newParsedQuery();
  assert.equal(parseQuery(query({ name: 'Web.Front.', type: 'AAAA', id: 77, edns: 4000, dnssecOk: true }), q), PARSE_OK);
  assert.equal(q.id, 77);
  assert.equal(q.qname, 'web.front');
  assert.equal(q.labels, 2);
  assert.equal(q.qtype, 28);
  assert.equal(q.qclass, 1);
  assert.equal(q.edns, true);
  assert.equal(q.ednsSize, 4000);
  assert.equal(q.ednsDo, true);
  assert.equal(parseQuery(query({ name: 'x', edns: 100 }), q), PARSE_OK);
  assert.equal(q.ednsSize, 512, 'EDNS sizes below 512 count as 512');
  assert.equal(parseQuery(Buffer.alloc(3), q), PARSE_DROP);
  assert.equal(parseQuery(header(1, 0, 0), q), PARSE_FORMERR);
  assert.equal(parseQuery(header(1, 0x2000, 1), q), PARSE_NOTIMP);
});

test('fuzz: answer() never throws and always returns a well-formed reply, "forward" or null', () => {
  const seeds = [
    query({ name: 'web' }), query({ name: 'example.com', edns: 1232 }), query({ name: '2.0.1.10.in-addr.arpa', type: 'PTR' }),
    query({ name: 'svc', type: 'ANY', edns: 4096, dnssecOk: true }),
  ];
  let replies = 0;
  for (let i = 0; i < 30000; i++) {
    let msg: Buffer;
    const kind = i % 3;
    if (kind === 0) {
      msg = crypto.randomBytes(Math.floor(Math.random() * 80));
    } else {
      msg = Buffer.from(seeds[i % seeds.length]);
      const flips = 1 + Math.floor(Math.random() * 4);
      for (let f = 0; f < flips; f++) msg[Math.floor(Math.random() * msg.length)] = Math.floor(Math.random() * 256);
      if (kind === 2) msg = msg.subarray(0, Math.floor(Math.random() * msg.length));
    }
    const tcp = i % 5 === 0;
    const out = answer(view, i % 2 ? 'n1' : 'n2', msg, i % 7 ? '10.1.0.2' : '10.2.0.3', tcp);
    if (out === null || out === 'forward') continue;
    replies++;
    assert.ok(out.length >= 12 && out.length <= (tcp ? 65535 : 1232), 'size');
    assert.equal(out.readUInt16BE(0), msg.readUInt16BE(0), 'id echoed');
    assert.ok(out[2] & 0x80, 'QR set');
    if (out.length > 12) dnsPacket.decode(out); // decodable by an independent codec
  }
  assert.ok(replies > 1000, `some replies (${replies})`);
});

test('indexView: bad items are skipped with warnings, never thrown', () => {
  const v = indexView({
    networks: [
      { id: 'ok', name: 'ok', gateway: '10.9.0.1', subnet: '10.9.0.0/24' },
      { id: 'badgw', name: 'badgw', gateway: 'nope', subnet: '10.8.0.0/24' },
      { id: 'badsub', name: 'badsub', gateway: '10.7.0.1', subnet: 'x' },
    ],
    entries: [
      { networkId: 'ok', names: ['fine', '', 'bad name', 'x'.repeat(64), 'a..b'], ip: '10.9.0.2', containerId: 'short' },
      { networkId: 'ok', names: ['noip'], ip: '10.9.0.300', containerId: 'z' },
      { networkId: 'missing', names: ['ghost'], ip: '10.6.0.2', containerId: 'z' },
    ],
    upstreams: ['1.1.1.1', 'bogus', '127.0.0.1:5353', '[::1]:53', '::1', '1.1.1.1:0'],
    overrides: { '10.9.0.2': ['nope'] },
  });
  assert.deepEqual([...v.nets.keys()], ['ok', 'badsub']);
  assert.deepEqual([...v.nets.get('ok')!.names.keys()].sort(), ['fine']);
  assert.deepEqual([...v.nets.get('ok')!.qualified.keys()].sort(), ['fine.ok']);
  assert.equal(v.nets.get('badsub')!.mask, 0, 'no subnet check for a network whose subnet is unreadable');
  assert.deepEqual(v.upstreams.map((u) => `${u.family}/${u.host}/${u.port}`), ['4/1.1.1.1/53', '4/127.0.0.1/5353', '6/::1/53', '6/::1/53']);
  assert.equal(v.overrides.size, 0);
  assert.ok(v.warnings.length >= 8, v.warnings.join('\n'));
  assert.equal(indexView(VIEW).generation, 7);
});

test('parseUpstream and nameKey', () => {
  const ups: Array<[string, string | null]> = [
    ['8.8.8.8', '8.8.8.8:53'], ['127.0.0.4:5300', '127.0.0.4:5300'], ['[2001:db8::1]:54', '2001:db8::1:54'],
    ['2001:db8::1', '2001:db8::1:53'], [' 9.9.9.9 ', '9.9.9.9:53'], ['example.com', null], ['1.2.3.4:x', null],
    ['1.2.3.4:70000', null], ['', null], ['[1.2.3.4]:53', '1.2.3.4:53'],
  ];
  for (const [s, want] of ups) {
    const u = parseUpstream(s);
    assert.equal(u ? `${u.host}:${u.port}` : null, want, s);
  }
  const names: Array<[string, string | null]> = [
    ['Web', 'web'], ['web.', 'web'], ['my.App', 'my.app'], ['', null], ['.', null], ['a b', null], ['a..b', null],
    ['ü', null], ['x'.repeat(63), 'x'.repeat(63)], ['x'.repeat(64), null],
  ];
  for (const [s, want] of names) assert.equal(nameKey(s), want, s);
  assert.deepEqual([...encodeName('web.front')!], [3, 0x77, 0x65, 0x62, 5, 0x66, 0x72, 0x6f, 0x6e, 0x74, 0]);
  assert.equal(encodeName('a..b'), null);
});

test('validateView: the view file\'s shape', () => {
  assert.doesNotThrow(() => validateView(JSON.parse(JSON.stringify(VIEW))));
  const bad: Array<[unknown, RegExp]> = [
    [null, /not a JSON object/],
    [[], /not a JSON object/],
    [{ networks: [], entries: [] }, /"upstreams"/],
    [{ networks: {}, entries: [], upstreams: [] }, /"networks"/],
    [{ networks: [{ id: 1 }], entries: [], upstreams: [] }, /bad network/],
    [{ networks: [], entries: [{ networkId: 'x', names: 'a', ip: '1.2.3.4', containerId: 'c' }], upstreams: [] }, /bad entry/],
    [{ networks: [], entries: [], upstreams: [1] }, /non-string/],
    [{ networks: [], entries: [], upstreams: [], overrides: { a: 'b' } }, /non-list/],
    [{ generation: '3', networks: [], entries: [], upstreams: [] }, /generation/],
  ];
  for (const [v, re] of bad) assert.throws(() => validateView(v, 'f'), re, JSON.stringify(v));
});

test('resolv.conf: parse', () => {
  const cases: Array<[string, { nameservers: string[]; search: string[]; options: string[] }]> = [
    ['', { nameservers: [], search: [], options: [] }],
    ['nameserver 1.1.1.1\nnameserver 8.8.8.8\n', { nameservers: ['1.1.1.1', '8.8.8.8'], search: [], options: [] }],
    ['# comment\n; other comment\n  nameserver   10.0.0.2  \n', { nameservers: ['10.0.0.2'], search: [], options: [] }],
    ['nameserver 1.1.1.1 # inline\n', { nameservers: ['1.1.1.1'], search: [], options: [] }],
    ['search a.example b.example\noptions ndots:2 edns0\noptions timeout:1\n', { nameservers: [], search: ['a.example', 'b.example'], options: ['ndots:2', 'edns0', 'timeout:1'] }],
    ['domain x.example\nsearch y.example\n', { nameservers: [], search: ['y.example'], options: [] }], // last one wins
    ['search y.example\ndomain x.example\n', { nameservers: [], search: ['x.example'], options: [] }],
    ['nameserver\nnameserver ::1\r\n', { nameservers: ['::1'], search: [], options: [] }],
    ['nameserver\t127.0.0.53\nsortlist 130.155.160.0\n', { nameservers: ['127.0.0.53'], search: [], options: [] }],
  ];
  for (const [text, want] of cases) assert.deepEqual(parseResolvConf(text), want, JSON.stringify(text));
});

test('resolv.conf: render, and parse(render(x)) = x', () => {
  assert.equal(renderResolvConf(['10.1.0.1'], [], []), '# Generated by nsnet\nnameserver 10.1.0.1\n');
  assert.equal(
    renderResolvConf(['10.1.0.1', '1.1.1.1'], ['corp.example'], ['ndots:0']),
    '# Generated by nsnet\nnameserver 10.1.0.1\nnameserver 1.1.1.1\nsearch corp.example\noptions ndots:0\n',
  );
  const x = { nameservers: ['10.2.0.1'], search: ['a.example', 'b.example'], options: ['ndots:2', 'attempts:3'] };
  assert.deepEqual(parseResolvConf(renderResolvConf(x.nameservers, x.search, x.options)), x);
});

test('a real name wins over a NAME.NETWORK form: container "web.hn" vs container "web"\'s web.hn, full view and delta', () => {
  const W = '1'.repeat(64);
  const X = '2'.repeat(64);
  const v: DnsView = {
    networks: [{ id: 'hn', name: 'hn', gateway: '10.5.0.1', subnet: '10.5.0.0/24' }], upstreams: ['192.0.2.53'],
    entries: [
      { networkId: 'hn', names: ['web'], ip: '10.5.0.2', containerId: W },
      { networkId: 'hn', names: ['web.hn'], ip: '10.5.0.3', containerId: X },
    ],
  };
  const a = (idx: IndexedView, name: string) => {
    const r = decode(answer(idx, 'hn', query({ name, id: 1 }), '10.5.0.9'), name);
    return r.rcode === 'NOERROR' ? (r.answers ?? []).map((x) => (x as { data: string }).data) : r.rcode;
  };
  const full = indexView(v);
  // Every query id (the round robin would have split them): always the container named "web.hn".
  for (let id = 0; id < 8; id++) {
    const r = decode(answer(full, 'hn', query({ name: 'web.hn', id }), '10.5.0.9'), 'web.hn');
    assert.deepEqual(r.answers?.map((x) => (x as { data: string }).data), ['10.5.0.3'], `id ${id}`);
  }
  assert.deepEqual(a(full, 'web'), ['10.5.0.2']);
  assert.deepEqual(a(full, 'web.hn.hn'), ['10.5.0.3'], "web.hn's own NAME.NETWORK form");
  // The same after the containers arrive one by one through deltas, in either order.
  for (const order of [[0, 1], [1, 0]]) {
    const idx = indexView({ ...v, entries: [] });
    for (const i of order) applyDelta(idx, { generation: 2 + i, containers: [v.entries[i].containerId], add: [v.entries[i]] });
    assert.deepEqual(a(idx, 'web.hn'), ['10.5.0.3'], `order ${order}`);
    // "web.hn" removed: web's NAME.NETWORK form answers again.
    applyDelta(idx, { generation: 9, containers: [X], add: [] });
    assert.deepEqual(a(idx, 'web.hn'), ['10.5.0.2']);
  }
});

test('--dns <own gateway>: the full view and a delta agree (the host upstreams, not REFUSED or SERVFAIL)', () => {
  const own = { ...VIEW, overrides: { '10.1.0.4': ['10.1.0.1'], '10.1.0.2': ['10.2.0.1', '198.51.100.9'] } };
  const full = indexView(own, { selfPort: 53 });
  const delta = indexView({ ...VIEW, overrides: {} }, { selfPort: 53 });
  applyDelta(delta, { generation: 8, containers: [C, A], add: VIEW.entries.filter((e) => e.containerId === C || e.containerId === A), overrides: own.overrides });
  for (const idx of [full, delta]) {
    assert.deepEqual(upstreamsFor(idx, '10.1.0.4').map((u) => u.text), ['192.0.2.53'], 'only ourselves: the host upstreams');
    assert.deepEqual(upstreamsFor(idx, '10.1.0.2').map((u) => u.text), ['198.51.100.9'], 'ourselves dropped, the rest kept');
    assert.equal(answer(idx, 'n1', query({ name: 'example.com' }), '10.1.0.4'), 'forward');
  }
  assert.match(full.warnings.join('\n'), /this resolver itself/);
  // On another port, the gateway is somebody else: kept.
  assert.deepEqual(upstreamsFor(indexView(own, { selfPort: 5353 }), '10.1.0.4').map((u) => u.text), ['10.1.0.1']);
  // The host's upstreams go through the same filter, from a view and from the followed resolv.conf alike.
  assert.deepEqual(indexView({ ...VIEW, upstreams: ['10.2.0.1', '192.0.2.53'] }).upstreams.map((u) => u.text), ['192.0.2.53']);
  const idx = indexView(VIEW);
  replaceUpstreams(idx, ['10.1.0.1:53', '192.0.2.54']);
  assert.deepEqual(idx.upstreams.map((u) => u.text), ['192.0.2.54']);
});
