// src/store/store.ts retryBusy: SQLITE_BUSY answered at once (no busy handler) is retried; other errors, and a
// transaction whose body already ran, are not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { retryBusy } from '../../src/store/store.js';

const busy = () => Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });

test('retryBusy: retried while busy, then the result', () => {
  let n = 0;
  assert.equal(retryBusy(() => { if (++n < 3) throw busy(); return 'done'; }), 'done');
  assert.equal(n, 3);
});

test('retryBusy: another error, or a body that already started, is thrown at once', () => {
  let n = 0;
  assert.throws(() => retryBusy(() => { n++; throw Object.assign(new Error('x'), { code: 'SQLITE_CONSTRAINT' }); }), /x/);
  assert.equal(n, 1);
  n = 0;
  assert.throws(() => retryBusy(() => { n++; throw busy(); }, () => false), /database is locked/);
  assert.equal(n, 1);
});
