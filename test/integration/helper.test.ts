// The resident helper (src/cli/helper.ts) and its thin client (src/cli/client.ts): commands handed over behave
// exactly as in-process ones (output, errors, exit status, the client's environment and directory), the helper
// starts on first use, ends when idle, and a helper that dies never loses or repeats a command.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { NSNET, TestHost, waitFor, type Result } from '../helpers/host.js';

const TRACE = { NSNET_HELPER_TRACE: '1' };
const served = (r: Result) => /nsnet: served by the helper/.test(r.stderr);
const strip = (s: string) => s.replace(/nsnet: served by the helper in \S+\n/, '');

function helperDirs(h: TestHost): string[] {
  const d = path.join(h.root, 'helper');
  return fs.existsSync(d) ? fs.readdirSync(d).filter((n) => fs.statSync(path.join(d, n)).isDirectory()).map((n) => path.join(d, n)) : [];
}
function helperPid(h: TestHost): number | null {
  for (const d of helperDirs(h)) {
    try {
      return Number(fs.readFileSync(path.join(d, 'pid'), 'utf8').split(' ')[0]);
    } catch { /* not serving */ }
  }
  return null;
}
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function startedHelper(h: TestHost): Promise<number> {
  const first = h.nsnet(['network', 'create', '--subnet', '10.66.0.0/24', 'hn'], { env: TRACE });
  assert.equal(first.status, 0, first.stderr);
  assert.ok(!served(first), 'the first command runs in-process (no helper yet)');
  return (await waitFor(() => helperPid(h), 10000, 50))!;
}

test('helper: same output, errors and exit status as in-process; the client\'s PATH and working directory apply', async (t) => {
  const h = TestHost.create('hlp');
  t.after(() => h.cleanup());
  await startedHelper(h);
  const viaHelper = (args: string[], env: NodeJS.ProcessEnv = {}) => {
    const r = h.nsnet(args, { env: { ...TRACE, ...env } });
    assert.ok(served(r), `served by the helper: ${args.join(' ')}`);
    return { ...r, stderr: strip(r.stderr) };
  };
  const inProcess = (args: string[], env: NodeJS.ProcessEnv = {}) => h.nsnet(args, { env: { NSNET_NO_HELPER: '1', ...env } });

  const c = viaHelper(['create', '--network', 'hn', '--name', 'a', '-p', '8080:80', '--', 'sleep', '300']);
  assert.equal(c.status, 0, c.stderr);
  assert.match(c.stdout, /^[0-9a-f]{64}\n$/);
  // A second create without -p: options of the previous command line must not leak into this one.
  assert.equal(viaHelper(['create', '--network', 'hn', '--name', 'b', '--', 'sleep', '300']).status, 0);
  assert.deepEqual(JSON.parse(viaHelper(['inspect', 'b']).stdout)[0].HostConfig.PortBindings, {});
  for (const args of [['ps', '-a'], ['inspect', 'a'], ['port', 'a'], ['network', 'ls'], ['network', 'inspect', 'hn'],
    ['rm', 'nosuch'], ['create', '--network', 'hn', '--name', 'a', '--', 'true'], ['create', '--network', 'nonet', '--', 'true'],
    ['create', '--network', 'hn', '-p', '99999', '--', 'true'], ['network', 'create', '--subnet', 'bad', 'x'], ['inspect', 'a', 'nosuch'],
    ['create', '--bogus-option', '--', 'true'], ['start', 'nosuch']]) {
    const a = viaHelper(args);
    const b = inProcess(args);
    assert.deepEqual({ status: a.status, stdout: a.stdout, stderr: a.stderr }, { status: b.status, stdout: b.stdout, stderr: b.stderr }, args.join(' '));
  }
  // The environment is the client's: a command found only on the client's PATH.
  const bin = path.join(h.root, 'bin');
  fs.mkdirSync(bin);
  fs.writeFileSync(path.join(bin, 'only-here'), '#!/bin/sh\nsleep 300\n', { mode: 0o755 });
  const pathEnv = { PATH: `${bin}:${process.env.PATH}` };
  assert.equal(viaHelper(['create', '--network', 'hn', '--name', 'p', '--', 'only-here'], pathEnv).status, 0);
  const missing = viaHelper(['create', '--network', 'hn', '--name', 'q', '--', 'only-here']);
  assert.equal(missing.status, 2, 'bad input');
  assert.match(missing.stderr, /exec: "only-here": executable file not found in \$PATH/);
  // `start` launches the process with the client's environment.
  assert.equal(viaHelper(['start', 'p'], pathEnv).status, 0);
  await waitFor(() => /Up/.test(viaHelper(['ps']).stdout), 5000);
  // `run -d` is served too; its process runs detached, under the supervisor, not in the helper.
  const rd = viaHelper(['run', '-d', '--name', 'r', '--network', 'hn', '--', 'sleep', '300']);
  assert.equal(rd.status, 0, rd.stderr);
  assert.match(rd.stdout, /^[0-9a-f]{64}\n$/);
  assert.equal(JSON.parse(viaHelper(['inspect', 'r']).stdout)[0].State.Status, 'running');
  // The working directory is the client's: a relative --root.
  const rel = h.sh(`cd ${path.dirname(h.root)} && NSNET_HELPER_TRACE=1 NSNET_ROOT= ${NSNET} --root ${path.basename(h.root)} ps -a -q`);
  assert.equal(rel.status, 0, rel.stderr);
  assert.equal(rel.stdout.trim().split('\n').length, 4);
  assert.equal(viaHelper(['rm', '-f', 'a', 'b', 'p', 'r']).status, 0);
  assert.equal(viaHelper(['ps', '-a', '-q']).stdout, '');
  assert.equal(h.nsnet(['check']).status, 0);
});

test('helper: ends when idle; a killed helper is replaced and its commands run in-process meanwhile', async (t) => {
  const h = TestHost.create('hlq', { NSNET_HELPER_IDLE_MS: '400' });
  t.after(() => h.cleanup());
  const pid = await startedHelper(h);
  assert.ok(served(h.nsnet(['network', 'ls'], { env: TRACE })));
  await waitFor(() => !alive(pid), 5000, 50);
  assert.equal(helperPid(h), null, 'its pid file went with it');

  // Killed without notice: the next command finds a stale pid, runs in-process and starts a new helper.
  const pid2 = (await waitFor(() => {
    h.nsnet(['network', 'ls']);
    return helperPid(h);
  }, 10000, 100))!;
  process.kill(pid2, 'SIGKILL');
  await waitFor(() => !alive(pid2), 5000, 20);
  const r = h.nsnet(['ps', '-a'], { env: TRACE });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(!served(r), 'ran in-process');
  const pid3 = await waitFor(() => helperPid(h) !== pid2 && helperPid(h), 10000, 50);
  assert.notEqual(pid3, pid2);
});

test('helper: a command the helper never claimed is taken back and run by the client', async (t) => {
  const h = TestHost.create('hlr', { NSNET_HELPER_IDLE_MS: '600000' });
  t.after(() => h.cleanup());
  const pid = await startedHelper(h);
  process.kill(pid, 'SIGSTOP'); // it cannot claim anything now
  const child = spawn('nsenter', [`--net=/run/netns/${h.ns}`, NSNET, 'create', '--network', 'hn', '--name', 'late', '--', 'true'], {
    env: { ...process.env, NSNET_ROOT: h.root, NSNET_RESOLV_CONF: '/dev/null', ...TRACE },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => { stderr += d; });
  const done = new Promise<number>((r) => child.on('close', (code) => r(code ?? 1)));
  // The request is waiting in the spool; then the helper dies without having claimed it.
  await waitFor(() => helperDirs(h).some((d) => fs.readdirSync(path.join(d, 'q')).some((n) => n.startsWith('req-'))), 5000, 10);
  process.kill(pid, 'SIGKILL');
  process.kill(pid, 'SIGCONT');
  assert.equal(await done, 0, stderr);
  assert.ok(!served({ status: 0, stdout, stderr }), 'run by the client itself');
  assert.match(stdout, /^[0-9a-f]{64}\n$/);
  assert.equal(h.ok(['ps', '-a', '--format', 'json']).split('\n').length, 1, 'created exactly once');
  assert.equal(h.nsnet(['check']).status, 0);
});

test('helper: the first command on a state directory that does not exist yet makes it and starts the helper', async (t) => {
  const h = TestHost.create('hls', { NSNET_HELPER_IDLE_MS: '2000' });
  t.after(() => h.cleanup());
  const root = path.join(h.root, 'new-root');
  const env = { NSNET_ROOT: root, ...TRACE };
  const first = h.nsnet(['network', 'create', '--subnet', '10.67.0.0/24', 'n'], { env });
  assert.equal(first.status, 0, first.stderr);
  assert.ok(!served(first));
  await waitFor(() => {
    const d = path.join(root, 'helper');
    return fs.existsSync(d) && fs.readdirSync(d).some((k) => fs.existsSync(path.join(d, k, 'pid')));
  }, 10000, 50);
  const second = h.nsnet(['network', 'ls', '-q'], { env });
  assert.ok(served(second), 'the second command is served');
  assert.equal(second.stdout.trim().split('\n').length, 4, 'n, bridge, host, none');
});
