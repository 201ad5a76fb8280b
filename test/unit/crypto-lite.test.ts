// The CLI bundle's stand-in for node:crypto (src/cli/crypto-lite.ts): byte for byte node:crypto's SHA-256, random
// bytes of the size asked, and node:crypto's own for everything else.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import lite, { createHash, randomBytes, sha256 } from '../../src/cli/crypto-lite.js';

const nodeSha = (b: Uint8Array) => crypto.createHash('sha256').update(b).digest();

test('sha256: equal to node:crypto at every length across the padding boundaries, and on random data', () => {
  for (let n = 0; n <= 300; n++) {
    const b = Buffer.alloc(n, n & 0xff);
    assert.deepEqual(sha256(b), nodeSha(b), `length ${n}`);
  }
  for (const n of [1000, 4096, 65537, 1 << 20]) {
    const b = crypto.randomBytes(n);
    assert.deepEqual(sha256(b), nodeSha(b), `length ${n}`);
  }
  // FIPS 180-4's own examples.
  assert.equal(sha256(Buffer.from('abc')).toString('hex'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.equal(sha256(Buffer.alloc(0)).toString('hex'), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
});

test('createHash("sha256"): strings (UTF-8 by default, or the encoding given), buffers, typed-array views, several updates, digest as Buffer or text', () => {
  const cases: Array<Array<[string | Uint8Array, BufferEncoding?]>> = [
    [['/var/lib/nsnet']],
    [['nsnet-default-bridge/abc123'], ['']],
    [['héllo wörld ✓ 🙂']],
    [['héllo', 'utf8'], [' wörld', 'latin1']],
    [['6e736e6574', 'hex']],
    [[Buffer.from('abc')], ['def'], [new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]).subarray(2, 6)]],
    [[JSON.stringify({ a: [1, 2, 3], b: 'x'.repeat(500) })]],
  ];
  for (const parts of cases) {
    const a = createHash('sha256');
    const b = crypto.createHash('sha256');
    for (const [d, enc] of parts) {
      if (typeof d === 'string') {
        a.update(d, enc as BufferEncoding);
        b.update(d, enc as BufferEncoding);
      } else {
        a.update(d);
        b.update(d);
      }
    }
    assert.equal(a.digest('hex'), b.digest('hex'), JSON.stringify(parts));
  }
  assert.deepEqual(createHash('SHA256').update('x').digest(), crypto.createHash('sha256').update('x').digest());
  assert.equal(createHash('sha256').update('x').digest('base64'), crypto.createHash('sha256').update('x').digest('base64'));
  // A buffer changed after update: hashed as it was (as node:crypto does).
  const buf = Buffer.from('before');
  const h = createHash('sha256').update(buf);
  buf.write('after!');
  assert.equal(h.digest('hex'), crypto.createHash('sha256').update('before').digest('hex'));
});

test('createHash: a second digest or an update after it throws, as node:crypto', () => {
  const h = createHash('sha256').update('x');
  h.digest();
  assert.throws(() => h.digest(), { code: 'ERR_CRYPTO_HASH_FINALIZED' });
  assert.throws(() => h.update('y'), { code: 'ERR_CRYPTO_HASH_FINALIZED' });
});

test('createHash: other algorithms and options are node:crypto\'s', () => {
  assert.equal(createHash('md5').update('x').digest('hex'), crypto.createHash('md5').update('x').digest('hex'));
  assert.equal(createHash('sha512').update('x').digest('hex'), crypto.createHash('sha512').update('x').digest('hex'));
  assert.throws(() => createHash('no-such-hash'));
});

test('randomBytes: a Buffer of the size asked, different each time; a callback or a bad size goes to node:crypto', async () => {
  for (const n of [0, 1, 3, 4, 6, 8, 32, 4096]) {
    const b = randomBytes(n);
    assert.ok(Buffer.isBuffer(b));
    assert.equal(b.length, n);
  }
  assert.notEqual(randomBytes(32).toString('hex'), randomBytes(32).toString('hex'));
  // Not all zero (a read that returned nothing would leave zeros): 64 bytes of zeros has probability 2^-512.
  assert.ok(randomBytes(64).some((x) => x !== 0));
  const viaCallback = await new Promise<Buffer>((resolve, reject) => randomBytes(16, (e, b) => (e ? reject(e) : resolve(b))));
  assert.equal(viaCallback.length, 16);
  assert.throws(() => randomBytes(-1), { code: 'ERR_OUT_OF_RANGE' });
});

test('default export: the two above, and node:crypto for any other name', () => {
  assert.equal(lite.createHash, createHash);
  assert.equal(lite.randomBytes, randomBytes);
  assert.equal(lite.createHmac, crypto.createHmac);
  assert.equal(lite.timingSafeEqual, crypto.timingSafeEqual);
  assert.ok('createHash' in lite && 'randomUUID' in lite && !('noSuchExport' in lite));
});
