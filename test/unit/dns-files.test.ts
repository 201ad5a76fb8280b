// The resolver's file helpers (src/dns/files.ts): never through a symlink, never into a FIFO, modes as asked.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { appendFileSafe, ensurePrivateDir, openAppend, readFileSafe, writeFileAtomic } from '../../src/dns/files.js';

test('files: atomic writes replace a planted symlink, appends and reads refuse one, FIFOs are refused without blocking', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-dns-files-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const victim = path.join(dir, 'victim');
  fs.writeFileSync(victim, 'precious');
  const link = path.join(dir, 'view.json');
  fs.symlinkSync(victim, link);

  assert.throws(() => readFileSafe(link), /ELOOP/);
  assert.throws(() => appendFileSafe(link, 'x', 0o600), /ELOOP/);
  writeFileAtomic(link, 'new', 0o600);
  assert.equal(fs.lstatSync(link).isFile(), true);
  assert.equal(fs.readFileSync(link, 'utf8'), 'new');
  assert.equal(fs.readFileSync(victim, 'utf8'), 'precious');
  assert.equal(fs.statSync(link).mode & 0o777, 0o600, 'mode as asked, whatever the umask');
  const old = process.umask(0o077);
  try {
    writeFileAtomic(path.join(dir, 'pid'), '1\n', 0o644);
  } finally {
    process.umask(old);
  }
  assert.equal(fs.statSync(path.join(dir, 'pid')).mode & 0o777, 0o644);
  assert.deepEqual(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], 'no temporary left');

  // An existing file with a loose mode is tightened when appended to.
  const log = path.join(dir, 'log');
  fs.writeFileSync(log, 'a\n', { mode: 0o666 });
  fs.chmodSync(log, 0o666);
  appendFileSafe(log, 'b\n', 0o600);
  assert.equal(fs.readFileSync(log, 'utf8'), 'a\nb\n');
  assert.equal(fs.statSync(log).mode & 0o777, 0o600);

  // A FIFO where a file should be: refused at once (a blocking open would hang root's command).
  const fifo = path.join(dir, 'view.json.delta');
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
  assert.throws(() => readFileSafe(fifo), /not a regular file/);
  assert.throws(() => openAppend(fifo, 0o600), /not a regular file|ENXIO/);

  // The directory itself: a symlink in its place is refused.
  fs.symlinkSync(dir, path.join(dir, 'dns'));
  assert.throws(() => ensurePrivateDir(path.join(dir, 'dns')), /not a directory/);
  ensurePrivateDir(path.join(dir, 'real'));
  assert.equal(fs.statSync(path.join(dir, 'real')).mode & 0o777, 0o700);
});
