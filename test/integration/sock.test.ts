// kernel/sock.ts's port probe, both families, inside a throwaway host netns: a listener on one address and
// family makes exactly that (address, family, protocol) busy.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { REPO, TestHost, must } from '../helpers/host.js';

const SOCK = path.join(REPO, 'dist/src/kernel/sock.js');

test('portFree: IPv4 and IPv6 addresses, TCP and UDP, a non-address refused', (t) => {
  const h = TestHost.create('sock');
  t.after(() => h.cleanup());
  must(h.sh(`ip addr add fd00:5::1/64 dev lo nodad`), 'an IPv6 address on lo');
  const script = `
    import net from 'node:net';
    import dgram from 'node:dgram';
    import { portFree } from ${JSON.stringify(SOCK)};
    const tcp6 = net.createServer().listen(4711, '::1', () => {
      const udp4 = dgram.createSocket('udp4').bind(4712, '127.0.0.1', () => {
        const r = {
          tcp6Busy: portFree('tcp', '::1', 4711), tcp6Other: portFree('tcp', '::1', 4713), tcp6OtherAddr: portFree('tcp', 'fd00:5::1', 4711),
          tcp4Same: portFree('tcp', '127.0.0.1', 4711), tcp4Any: portFree('tcp', '', 4711), udp6Same: portFree('udp', '::1', 4711),
          udp4Busy: portFree('udp', '127.0.0.1', 4712), udp4Any: portFree('udp', '', 4712), udp6: portFree('udp', '::1', 4712),
        };
        try { portFree('tcp', 'nope', 1); r.bad = 'accepted'; } catch (e) { r.bad = e.constructor.name; }
        console.log(JSON.stringify(r));
        tcp6.close();
        udp4.close();
      });
    });`;
  const r = must(h.sh(`node --input-type=module -e '${script.replace(/'/g, `'"'"'`)}'`), 'probe script');
  assert.deepEqual(JSON.parse(r.stdout.trim()), {
    tcp6Busy: false, tcp6Other: true, tcp6OtherAddr: true, tcp4Same: true, tcp4Any: true, udp6Same: true,
    udp4Busy: false, udp4Any: false, udp6: true, bad: 'RangeError',
  });
});
