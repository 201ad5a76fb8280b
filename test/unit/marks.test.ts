// src/engine/marks.ts: the marks on nsnet's kernel objects, written and read back (the store's rebuild).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ALIAS_MAX, containerMark, endpointMark, markOwner, networkMark, ownedBy, parseMark } from '../../src/engine/marks.js';

const OWNER = 'nsnet/0a1b2c';
const ID = 'f'.repeat(64);

test('ownership: the plain and the describing forms, never a prefix of another owner', () => {
  assert.equal(ownedBy(OWNER, OWNER), true);
  assert.equal(ownedBy(`${OWNER} net ${ID} - n`, OWNER), true);
  assert.equal(ownedBy('nsnet/0a1b2cd', OWNER), false);
  assert.equal(ownedBy('nsnet/0a1b2c-x', OWNER), false);
  assert.equal(ownedBy(null, OWNER), false);
  assert.equal(markOwner(`${OWNER} ep ${ID} eth0 - `), OWNER);
  assert.equal(markOwner('nsnet/zzzzzz'), null);
  assert.equal(markOwner('someone else'), null);
});

test('network, container and endpoint marks round-trip', () => {
  const n = parseMark(networkMark(OWNER, { id: ID, name: 'my.net-1', isDefault: false, internal: true, icc: false }), OWNER);
  assert.deepEqual(n, { kind: 'net', id: ID, name: 'my.net-1', isDefault: false, internal: true, icc: false });
  const d = parseMark(networkMark(OWNER, { id: ID, name: 'bridge', isDefault: true, internal: false, icc: true }), OWNER);
  assert.deepEqual(d, { kind: 'net', id: ID, name: 'bridge', isDefault: true, internal: false, icc: true });
  assert.deepEqual(parseMark(containerMark(OWNER, { id: ID, name: 'web', mode: 'none' }), OWNER), { kind: 'ctr', id: ID, name: 'web', mode: 'none' });
  const e = parseMark(endpointMark(OWNER, { containerId: ID, ifname: 'eth1', staticIp: true, aliases: ['www', 'a.b'] }), OWNER);
  assert.deepEqual(e, { kind: 'ep', containerId: ID, ifname: 'eth1', staticIp: true, aliases: ['www', 'a.b'], truncated: false });
  const none = parseMark(endpointMark(OWNER, { containerId: ID, ifname: 'eth0', staticIp: false, aliases: [] }), OWNER);
  assert.deepEqual(none, { kind: 'ep', containerId: ID, ifname: 'eth0', staticIp: false, aliases: [], truncated: false });
  assert.deepEqual(parseMark(OWNER, OWNER), { kind: 'plain' });
  assert.equal(parseMark(`${OWNER} net nothex - n`, OWNER), null, 'malformed');
  assert.equal(parseMark(networkMark('nsnet/ffffff', { id: ID, name: 'n', isDefault: false, internal: false, icc: true }), OWNER), null, 'another owner');
});

test('endpoint marks: aliases that do not fit are cut at a whole alias and flagged', () => {
  const aliases = Array.from({ length: 30 }, (_, i) => `alias-number-${i}`);
  const m = endpointMark(OWNER, { containerId: ID, ifname: 'eth0', staticIp: false, aliases });
  assert.ok(m.length <= ALIAS_MAX, `${m.length}`);
  const e = parseMark(m, OWNER);
  assert.ok(e && e.kind === 'ep');
  assert.equal(e.truncated, true);
  assert.ok(e.aliases.length > 0 && e.aliases.length < 30);
  assert.deepEqual(e.aliases, aliases.slice(0, e.aliases.length));
  const long = endpointMark(OWNER, { containerId: ID, ifname: 'eth0', staticIp: false, aliases: ['x'.repeat(200)] });
  assert.deepEqual(parseMark(long, OWNER), { kind: 'ep', containerId: ID, ifname: 'eth0', staticIp: false, aliases: [], truncated: true });
  // The longest names still fit whole.
  const n = networkMark(OWNER, { id: ID, name: 'n'.repeat(64), isDefault: true, internal: true, icc: false });
  assert.equal((parseMark(n, OWNER) as { name: string }).name, 'n'.repeat(64));
});
