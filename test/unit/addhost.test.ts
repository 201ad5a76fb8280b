// --add-host addresses go through the one parser (util/addr.ts): either family, strict, no zone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UserError } from '../../src/util/errors.js';
import { DEFAULT_CONFIG, validateConfig } from '../../src/engine/config.js';

test('--add-host: IPv4, IPv6 (any spelling) and host-gateway accepted; anything else refused with one line', () => {
  const withHost = (ip: string) => ({ ...DEFAULT_CONFIG, extraHosts: [['db', ip]] as Array<[string, string]> });
  for (const ip of ['10.9.9.9', '::1', 'fd00:60::10', 'FD00:60:0::0010', '::ffff:10.0.0.1', 'host-gateway']) {
    assert.doesNotThrow(() => validateConfig(withHost(ip)), ip);
  }
  for (const ip of ['10.9.9.09', '1::2::3', ':::', '1:2', 'fe80::1%eth0', 'abc', '10.0.0.1/24', '']) {
    assert.throws(() => validateConfig(withHost(ip)), (e: unknown) => {
      assert.ok(e instanceof UserError, String(e));
      assert.ok(e.message.startsWith('invalid IP address in add-host: '), e.message);
      assert.ok(!/[\n\r]/.test(e.message));
      return true;
    }, ip);
  }
});
