// src/kernel/pspawn.ts: the resident helper's start path (posix_spawn through koffi). The child must be detached
// exactly as child_process.spawn({ detached: true, stdio: ['ignore', log, log] }) would make it: its own session,
// stdin /dev/null, stdout and stderr on the log, the given working directory and nothing but the given environment.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnDetached } from '../../src/kernel/pspawn.js';

async function waitFor(file: string, marker: string): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const s = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    if (s.includes(marker)) return s;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`no ${marker} in ${file}`);
}

test('spawnDetached: own session, /dev/null stdin, log on 1 and 2, cwd, exactly the environment', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-pspawn-'));
  try {
    const log = path.join(dir, 'log');
    const fd = fs.openSync(log, 'a', 0o600);
    const script = 'echo "sid=$(cut -d" " -f6 /proc/$$/stat) pid=$$"; echo "cwd=$(pwd)"; echo "in=$(readlink /proc/$$/fd/0)"; ' +
      'env | sort | tr "\\n" " " | sed "s/^/env=/"; echo; echo oops >&2; echo END';
    let pid: number;
    try {
      pid = spawnDetached('/bin/sh', ['sh', '-c', script], { PATH: '/usr/bin:/bin', NSNET_X: 'a b' }, dir, fd);
    } finally {
      fs.closeSync(fd);
    }
    assert.ok(pid > 0 && pid !== process.pid);
    const out = await waitFor(log, 'END');
    assert.match(out, new RegExp(`sid=${pid} pid=${pid}`), 'a session of its own');
    assert.match(out, new RegExp(`cwd=${fs.realpathSync(dir)}\\n`));
    assert.match(out, /in=\/dev\/null/);
    // sh adds PWD, SHLVL and _ itself: the environment given is there, and nothing of this process's.
    const env = /env=(.*)/.exec(out)![1];
    assert.match(env, /NSNET_X=a b /);
    assert.match(env, /PATH=\/usr\/bin:\/bin /);
    assert.doesNotMatch(env, /HOME=|NODE_|USER=/);
    assert.match(out, /oops/, 'stderr on the log too');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('spawnDetached: a file that cannot be executed is an error, not a silent child', () => {
  const fd = fs.openSync('/dev/null', 'w');
  try {
    assert.throws(() => spawnDetached('/nonexistent/nsnet-x', ['x'], {}, '/', fd), /posix_spawn \/nonexistent\/nsnet-x: errno 2/);
  } finally {
    fs.closeSync(fd);
  }
});
