// The resolver's upstream list through util/addr.ts: strict addresses of both families, zones only here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseUpstream } from '../../src/dns/answer.js';

test('parseUpstream: both families, a zone on IPv6, strict addresses', () => {
  const ok: Array<[string, string, number, 4 | 6]> = [
    ['8.8.8.8', '8.8.8.8', 53, 4], ['[2001:db8::1]:5353', '2001:db8::1', 5353, 6], ['fe80::1%eth0', 'fe80::1%eth0', 53, 6],
    ['[fe80::1%eth0]:54', 'fe80::1%eth0', 54, 6], ['::ffff:10.0.0.1', '::ffff:10.0.0.1', 53, 6], ['[10.0.0.1]:53', '10.0.0.1', 53, 4],
  ];
  for (const [s, host, port, family] of ok) {
    const u = parseUpstream(s);
    assert.ok(u, s);
    assert.deepEqual([u.host, u.port, u.family], [host, port, family], s);
  }
  for (const s of ['01.2.3.4', '1.2.3.04:53', 'fe80::1%', '[fe80::1%]:53', '1::2::3', '[::1]:0', '[::1]:65536', 'host:53', '[::1]x']) {
    assert.equal(parseUpstream(s), null, s);
  }
});
