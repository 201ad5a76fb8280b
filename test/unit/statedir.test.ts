// The state directory checks (src/engine/statedir.ts) on directories this test makes: owner and modes are those
// of the running user, so this needs no root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UserError } from '../../src/util/errors.js';
import { appendFileNoFollow, checkStateDir, ensureSpace, openNoFollow, undoOrReport, writeFileNoFollow } from '../../src/engine/statedir.js';

function refused(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof UserError, String(e));
    assert.match(e.message, re);
    assert.ok(!/[\n\r]/.test(e.message), 'one line');
    return true;
  });
}

function tmp(): string {
  const d = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-sd-')));
  return d;
}

test('checkStateDir: creates a missing directory 0711 and returns its real path', (t) => {
  const base = tmp();
  t.after(() => fs.rmSync(base, { recursive: true, force: true }));
  const p = path.join(base, 'a', 'b');
  assert.equal(checkStateDir(p), p);
  assert.equal(fs.statSync(p).mode & 0o777, 0o711 & ~process.umask());
  fs.symlinkSync(p, path.join(base, 'link'));
  assert.equal(checkStateDir(path.join(base, 'link')), p, 'the real path');
});

test('checkStateDir: refuses group/other-writable directories, subdirectories, symlinked subdirectories', (t) => {
  const d = tmp();
  t.after(() => fs.rmSync(d, { recursive: true, force: true }));
  for (const mode of [0o777, 0o770, 0o1777, 0o722]) {
    fs.chmodSync(d, mode);
    refused(() => checkStateDir(d), /writable by (others|its group)/);
  }
  fs.chmodSync(d, 0o700);
  checkStateDir(d);
  fs.mkdirSync(path.join(d, 'dns'));
  fs.chmodSync(path.join(d, 'dns'), 0o757);
  refused(() => checkStateDir(d), /dns\/ is writable by others/);
  fs.rmdirSync(path.join(d, 'dns'));
  fs.symlinkSync('/', path.join(d, 'helper'));
  refused(() => checkStateDir(d), /helper\/ is a symbolic link/);
  fs.unlinkSync(path.join(d, 'helper'));
  fs.writeFileSync(path.join(d, 'containers'), '');
  refused(() => checkStateDir(d), /containers is not a directory/);
});

test('checkStateDir: refuses a non-sticky other-writable ancestor, accepts a sticky one', (t) => {
  const base = tmp();
  t.after(() => fs.rmSync(base, { recursive: true, force: true }));
  const p = path.join(base, 'state');
  fs.mkdirSync(p, { mode: 0o700 });
  fs.chmodSync(base, 0o777);
  refused(() => checkStateDir(p), new RegExp(`parent directory ${base} is writable by others without the sticky bit`));
  // Nothing is created below such an ancestor either.
  refused(() => checkStateDir(path.join(base, 'new', 'state')), /without the sticky bit/);
  assert.ok(!fs.existsSync(path.join(base, 'new')), 'no directory made below an unsafe ancestor');
  fs.chmodSync(base, 0o1777);
  assert.equal(checkStateDir(p), p);
  assert.equal(checkStateDir(path.join(base, 'new', 'state')), path.join(base, 'new', 'state'));
});

test('checkStateDir: refuses empty names, control characters and pseudo filesystems', () => {
  assert.throws(() => checkStateDir(''), /must not be empty/);
  refused(() => checkStateDir('/tmp/x\ny'), /control characters/);
  refused(() => checkStateDir('/tmp/x\ty'), /control characters/);
  assert.ok(!fs.existsSync('/tmp/x\ny'));
  refused(() => checkStateDir('/proc/1'), /on a proc filesystem/);
  refused(() => checkStateDir('/proc/1/nsnet-new'), /on a proc filesystem/);
  refused(() => checkStateDir('/sys/kernel'), /on a sysfs filesystem/);
});

test('openNoFollow and friends: write files, refuse a symlink at the name', (t) => {
  const d = tmp();
  t.after(() => fs.rmSync(d, { recursive: true, force: true }));
  const target = path.join(d, 'target');
  fs.writeFileSync(target, 'keep');
  const f = path.join(d, 'f');
  writeFileNoFollow(f, 'one', 0o640);
  appendFileNoFollow(f, '+two');
  assert.equal(fs.readFileSync(f, 'utf8'), 'one+two');
  writeFileNoFollow(f, 'x');
  assert.equal(fs.readFileSync(f, 'utf8'), 'x', 'truncated in place');
  fs.symlinkSync(target, path.join(d, 'l'));
  for (const fn of [() => writeFileNoFollow(path.join(d, 'l'), 'evil'), () => appendFileNoFollow(path.join(d, 'l'), 'evil'), () => fs.closeSync(openNoFollow(path.join(d, 'l'), 'r+'))]) {
    assert.throws(fn, (e: NodeJS.ErrnoException) => e.code === 'ELOOP');
  }
  assert.equal(fs.readFileSync(target, 'utf8'), 'keep');
});

test('ensureSpace and undoOrReport', () => {
  const prev = process.env.NSNET_MIN_FREE_KB;
  try {
    process.env.NSNET_MIN_FREE_KB = '999999999';
    refused(() => ensureSpace(os.tmpdir()), /is full \(\d+ KiB free, nsnet needs 999999999 KiB.*nothing was changed/);
    process.env.NSNET_MIN_FREE_KB = '0';
    ensureSpace(os.tmpdir());
  } finally {
    if (prev === undefined) delete process.env.NSNET_MIN_FREE_KB;
    else process.env.NSNET_MIN_FREE_KB = prev;
  }
  const orig = new Error('disk full');
  assert.throws(() => undoOrReport(orig, 'network n', () => {}), (e) => e === orig);
  assert.throws(() => undoOrReport(orig, 'network n', () => { throw new Error('still full'); }),
    /^Error: disk full; undoing it failed too \(still full\): network n is left unfinished: run nsnet reconcile/);
});
