// node:crypto as the CLI bundle sees it (scripts/bundle.mjs points src/'s `node:crypto` imports here): SHA-256 and
// randomBytes without loading node:crypto, which pulls in its ciphers, key objects and node:stream (LazyTransform)
// and cost every in-process start ≈5 ms (≈10 ms on a loaded machine; CPU profile of a first `nsnet ps`, issue #11),
// for what nsnet uses of it: a few SHA-256 digests of short strings (the host id, bridge MACs, pseudo ids) and
// random ids. Anything else — another algorithm, options, a callback, any other export — is node:crypto's own,
// loaded on first use. Checked against node:crypto by test/unit/crypto-lite.test.ts.
import fs from 'node:fs';
import type * as CryptoModule from 'node:crypto';

let realCrypto: typeof CryptoModule | undefined;
function real(): typeof CryptoModule {
  return (realCrypto ??= process.getBuiltinModule('node:crypto') as typeof CryptoModule);
}

const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

/** SHA-256 (FIPS 180-4) of `m`, whole. */
export function sha256(m: Uint8Array): Buffer {
  const bits = m.length * 8;
  const n = (((m.length + 9 + 63) >> 6) << 6);
  const p = new Uint8Array(n);
  p.set(m);
  p[m.length] = 0x80;
  const dv = new DataView(p.buffer);
  dv.setUint32(n - 8, Math.floor(bits / 0x100000000));
  dv.setUint32(n - 4, bits >>> 0);
  const h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const w = new Uint32Array(64);
  for (let off = 0; off < n; off += 64) {
    for (let i = 0; i < 16; i++) w[i] = dv.getUint32(off + i * 4);
    for (let i = 16; i < 64; i++) {
      const a = w[i - 15], b = w[i - 2];
      const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
      const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
    }
    let a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (let i = 0; i < 64; i++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (k + S1 + ((e & f) ^ (~e & g)) + K[i] + w[i]) >>> 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      k = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
    }
    h[0] = (h[0] + a) >>> 0; h[1] = (h[1] + b) >>> 0; h[2] = (h[2] + c) >>> 0; h[3] = (h[3] + d) >>> 0;
    h[4] = (h[4] + e) >>> 0; h[5] = (h[5] + f) >>> 0; h[6] = (h[6] + g) >>> 0; h[7] = (h[7] + k) >>> 0;
  }
  const out = Buffer.alloc(32);
  for (let i = 0; i < 8; i++) out.writeUInt32BE(h[i], i * 4);
  return out;
}

/** The part of crypto.Hash nsnet uses: update(data[, encoding]) any number of times, then one digest([encoding]). */
class Sha256 {
  private chunks: Buffer[] = [];
  private done = false;
  update(data: string | NodeJS.ArrayBufferView, encoding?: BufferEncoding): this {
    if (this.done) throw Object.assign(new Error('Digest already called'), { code: 'ERR_CRYPTO_HASH_FINALIZED' });
    if (typeof data === 'string') this.chunks.push(Buffer.from(data, encoding ?? 'utf8'));
    else this.chunks.push(Buffer.from(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))); // a copy, as hashed now
    return this;
  }
  digest(): Buffer;
  digest(encoding: BufferEncoding): string;
  digest(encoding?: BufferEncoding): Buffer | string {
    if (this.done) throw Object.assign(new Error('Digest already called'), { code: 'ERR_CRYPTO_HASH_FINALIZED' });
    this.done = true;
    const d = sha256(Buffer.concat(this.chunks));
    return encoding === undefined || (encoding as string) === 'buffer' ? d : d.toString(encoding);
  }
}

export function createHash(algorithm: string, options?: unknown): CryptoModule.Hash {
  if (options !== undefined || algorithm.toLowerCase() !== 'sha256') return real().createHash(algorithm, options as CryptoModule.HashOptions);
  return new Sha256() as unknown as CryptoModule.Hash;
}

let urandom = -1;
/** randomBytes(size) from the kernel's CSPRNG (/dev/urandom, as node:crypto's own source); with a callback, or
 *  without /dev/urandom, node:crypto's. */
export function randomBytes(size: number, callback?: (err: Error | null, buf: Buffer) => void): Buffer {
  if (callback !== undefined || !Number.isSafeInteger(size) || size < 0) return real().randomBytes(size, callback as never) as unknown as Buffer;
  try {
    if (urandom < 0) urandom = fs.openSync('/dev/urandom', 'r'); // close-on-exec, as every descriptor Node opens
    const b = Buffer.alloc(size);
    for (let got = 0; got < size;) {
      const n = fs.readSync(urandom, b, got, size - got, null);
      if (n <= 0) throw new Error('short read');
      got += n;
    }
    return b;
  } catch {
    return real().randomBytes(size);
  }
}

/** `import crypto from 'node:crypto'`: the two above, and node:crypto's for every other name. */
const lite: Record<string | symbol, unknown> = { createHash, randomBytes };
export default new Proxy(lite, {
  get: (t, k) => (k in t ? t[k] : (real() as unknown as Record<string | symbol, unknown>)[k]),
  has: (t, k) => k in t || k in real(),
}) as unknown as typeof CryptoModule;
